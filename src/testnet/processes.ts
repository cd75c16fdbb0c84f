/**
 * A local test network of SEPARATE processes: N `gossip` nodes, each its own OS process started from a generated
 * config (node-<i>.yaml in one directory, with its hostkey), each given a few random others as bootstrappers, and in
 * this process one module per node on its VoidPhone API (subscribing to the probe type and answering valid). Figures
 * come from each node's control server (GET /status). `gossip testnet --processes` (src/cli/testnet.ts) and
 * scripts/testnet-kill-half.ts run it; network.ts is the in-process variant.
 *
 * Must never: leave a process, socket or temp directory behind after stop(), or kill a process it did not start.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, openSync, closeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ApiClient } from "../client/api-client.ts";
import {
  TESTNET_DEGREE,
  TESTNET_DIALS_PER_NODE,
  TESTNET_MODULE_SEND_LIMIT_BYTES,
  TESTNET_POW_DIFFICULTY,
  TESTNET_PROCESS_START_TIMEOUT_MS,
  TESTNET_SHUTDOWN_BOUND_MS,
} from "../defaults.ts";
import type { NodeStatus } from "../control/status.ts";
import { seededRandom } from "../util/random.ts";
import { randomDials } from "./dials.ts";
import { PROBE_DATA_TYPE, readProbe } from "./probe.ts";
import type { TestnetStats } from "./network.ts";

export interface ProcessTestnetOptions {
  nodes: number;
  /** Node i: P2P basePort + i, API basePort + 1000 + i, control basePort + 2000 + i. */
  basePort: number;
  host?: string;
  /** Directory for configs, hostkeys and logs (default a new temp dir, removed on stop). */
  dir?: string;
  powDifficulty?: number;
  degree?: number;
  dissemination?: "plumtree" | "flood";
  overlay?: "hyparview" | "classic";
  /** Bootstrappers per node: that many distinct random others (default TESTNET_DIALS_PER_NODE). */
  bootstrappers?: number;
  seed?: number;
  dataTypes?: number[];
  onNotification?: (node: number, dataType: number, data: Uint8Array) => boolean | void;
  /** The command that runs `gossip` (default: this executable, plus src/cli.ts when running from source). */
  command?: string[];
}

export interface ProcessNode {
  index: number;
  apiPort: number;
  p2pPort: number;
  controlPort: number;
  process: Subprocess;
  module: ApiClient;
  alive: boolean;
}

export interface ProcessTestnet {
  nodes: ProcessNode[];
  dir: string;
  /** Every live node's GET /status (undefined for a node that did not answer). */
  status(): Promise<(NodeStatus | undefined)[]>;
  stats(): Promise<TestnetStats>;
  announce(index: number, dataType: number, data: Uint8Array, ttl?: number): void;
  /** SIGKILL: the process dies at once, its links close by reset. */
  kill(index: number): void;
  stop(): Promise<void>;
}

/** How to run `gossip`: the compiled binary is its own CLI; from source, bun runs src/cli.ts. */
function gossipCommand(): string[] {
  const main = Bun.main;
  return main.endsWith(".ts") ? [process.execPath, join(import.meta.dir, "..", "cli.ts")] : [process.execPath];
}

function configText(o: { host: string; api: number; p2p: number; control: number; boot: number[]; degree: number; pow: number; dissemination?: string; overlay?: string }, i: number): string {
  const lines = [
    `hostkey: node-${i}.pem`,
    "gossip:",
    `  api_address: ${o.host}:${o.api}`,
    `  p2p_address: ${o.host}:${o.p2p}`,
    `  control_address: ${o.host}:${o.control}`,
    `  bootstrapper: [${o.boot.map((p) => `"${o.host}:${p}"`).join(", ")}]`,
    `  degree: ${o.degree}`,
    `  pow_difficulty: ${o.pow}`,
    `  max_pow_difficulty: ${Math.max(o.pow, TESTNET_POW_DIFFICULTY)}`,
    `  log_level: warn`,
  ];
  if (o.dissemination) lines.push(`  dissemination: ${o.dissemination}`);
  if (o.overlay) lines.push(`  overlay: ${o.overlay}`);
  return lines.join("\n") + "\n";
}

async function connectModule(port: number, host: string, deadline: number, proc: Subprocess, log: string): Promise<ApiClient> {
  for (;;) {
    try {
      return await ApiClient.connect(port, { host, sendLimit: TESTNET_MODULE_SEND_LIMIT_BYTES });
    } catch (e) {
      // A node that exited (a port taken, a bad config) will never answer: say why at once instead of waiting.
      if (proc.exitCode !== null) throw new Error(`testnet: the node for API ${host}:${port} exited (code ${proc.exitCode}): ${lastLine(log)}`);
      if (Date.now() > deadline) throw new Error(`testnet: no API on ${host}:${port} within ${TESTNET_PROCESS_START_TIMEOUT_MS} ms: ${(e as Error).message}`);
      await Bun.sleep(50);
    }
  }
}

function lastLine(path: string): string {
  try {
    const lines = readFileSync(path, "utf8").trim().split("\n");
    return lines[lines.length - 1] ?? "(empty log)";
  } catch {
    return "(no log)";
  }
}

export async function startProcessTestnet(options: ProcessTestnetOptions): Promise<ProcessTestnet> {
  const n = options.nodes;
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new RangeError(`nodes must be 1…1000, got ${n}`);
  if (!(options.basePort > 0 && options.basePort + 2000 + n <= 65535)) throw new RangeError(`--processes needs a base port P with P+2000+N ≤ 65535`);
  const host = options.host ?? "127.0.0.1";
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "gossip-testnet-"));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pow = options.powDifficulty ?? TESTNET_POW_DIFFICULTY;
  const command = options.command ?? gossipCommand();
  const dataTypes = [PROBE_DATA_TYPE, ...(options.dataTypes ?? []).filter((t) => t !== PROBE_DATA_TYPE)];
  const verdict = options.onNotification ?? ((_i: number, type: number, data: Uint8Array) => type !== PROBE_DATA_TYPE || readProbe(data) !== undefined);
  const boot = randomDials(n, Math.min(options.bootstrappers ?? TESTNET_DIALS_PER_NODE, n - 1), seededRandom(options.seed ?? 1));
  const nodes: ProcessNode[] = [];

  const stop = async () => {
    for (const t of nodes) t.module.close();
    for (const t of nodes) if (t.alive) t.process.kill("SIGTERM");
    const bound = Bun.sleep(TESTNET_SHUTDOWN_BOUND_MS);
    await Promise.race([Promise.all(nodes.map((t) => t.process.exited)), bound]);
    for (const t of nodes) if (t.process.exitCode === null) t.process.kill("SIGKILL");
    await Promise.all(nodes.map((t) => t.process.exited));
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };

  const procs: { index: number; process: Subprocess; api: number; p2p: number; control: number }[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const ports = { api: options.basePort + 1000 + i, p2p: options.basePort + i, control: options.basePort + 2000 + i };
      const cfg = join(dir, `node-${i}.yaml`);
      const text = configText(
        { host, ...ports, boot: boot[i]!.map((j) => options.basePort + j), degree: options.degree ?? TESTNET_DEGREE, pow, dissemination: options.dissemination, overlay: options.overlay },
        i,
      );
      writeFileSync(cfg, text);
      const log = openSync(join(dir, `node-${i}.log`), "a");
      const proc = Bun.spawn([...command, "--config", cfg], { cwd: dir, stdout: log, stderr: log, stdin: "ignore" });
      closeSync(log);
      procs.push({ index: i, process: proc, ...ports });
    }
    const deadline = Date.now() + TESTNET_PROCESS_START_TIMEOUT_MS;
    for (const p of procs) {
      const module = await connectModule(p.api, host, deadline, p.process, join(dir, `node-${p.index}.log`)).catch((e) => {
        // Nodes whose module never connected are still stopped below, with those that did.
        for (const q of procs.slice(nodes.length)) nodes.push({ index: q.index, apiPort: q.api, p2pPort: q.p2p, controlPort: q.control, process: q.process, module: { close() {} } as ApiClient, alive: true });
        throw e;
      });
      module.answerNotifications((m) => verdict(p.index, m.dataType, m.data));
      for (const t of dataTypes) module.subscribe(t);
      nodes.push({ index: p.index, apiPort: p.api, p2pPort: p.p2p, controlPort: p.control, process: p.process, module, alive: true });
    }
  } catch (e) {
    for (const p of procs.slice(nodes.length)) p.process.kill("SIGKILL");
    await stop();
    throw e;
  }

  const status = () =>
    Promise.all(
      nodes.map(async (t) => {
        if (!t.alive) return undefined;
        try {
          const r = await fetch(`http://${host}:${t.controlPort}/status`);
          return r.ok ? ((await r.json()) as NodeStatus) : undefined;
        } catch {
          return undefined;
        }
      }),
    );
  return {
    nodes,
    dir,
    status,
    stats: async () => {
      const all = (await status()).filter((s): s is NodeStatus => s !== undefined);
      return {
        links: all.reduce((sum, s) => sum + s.links.length, 0) / 2,
        deliveries: nodes.reduce((sum, t) => sum + t.module.stats().notifications, 0),
        copiesSent: all.reduce((sum, s) => sum + s.items.forwarded, 0),
        bytesSent: all.reduce((sum, s) => sum + s.link_bytes.sent, 0),
      };
    },
    announce: (index, dataType, data, ttl = 0) => nodes[index]!.module.announce(dataType, data, ttl),
    kill: (index) => {
      const t = nodes[index]!;
      if (!t.alive) return;
      t.alive = false;
      t.module.close();
      t.process.kill("SIGKILL");
    },
    stop,
  };
}
