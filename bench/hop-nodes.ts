/**
 * Node processes for `bench hop`: any VoidPhone Gossip module that reads the VoidPhone INI convention, started as
 * its own process by a command with `{config}` in it (`gossip --config {config}` by default), one INI file per node
 * written here: a global `hostkey = …`, then `[gossip]` with api_address, p2p_address, bootstrapper, degree and
 * cache_size (and whatever `--set key=value` adds). Must never leave a process running: stop() ends every one it
 * started (SIGTERM, then SIGKILL), by its own process ID.
 */
import type { Subprocess } from "bun";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "../src/client/api-client.ts";

export interface NodeSetOptions {
  /** The command line, `{config}` replaced by the INI path; run by /bin/sh with `exec`. */
  command: string;
  /** Extra `[gossip]` keys (e.g. pow_difficulty = 8 for ours). */
  extra: Record<string, string>;
  /** "rsa": write a 4096-bit RSA hostkey (as `openssl genrsa 4096` would); "none": point at a missing file. */
  hostkey: "rsa" | "none";
  degree: number;
  cacheSize: number;
  /** Keep the directory (configs, hostkeys, each node's stderr) after stop. */
  keep?: boolean;
}

export interface RunningNode {
  index: number;
  apiPort: number;
  p2pPort: number;
  config: string;
  process: Subprocess;
}

/** Free TCP ports on 127.0.0.1, by binding port 0 and releasing it (a small race with other programs). */
function freePorts(n: number): number[] {
  const listeners = Array.from({ length: n }, () => Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }));
  const ports = listeners.map((l) => l.port);
  for (const l of listeners) l.stop(true);
  return ports;
}

export class NodeSet {
  readonly dir = mkdtempSync(join(tmpdir(), "gossip-bench-hop-"));
  readonly nodes: RunningNode[] = [];

  constructor(private readonly o: NodeSetOptions) {}

  /** Starts `n` nodes, node i > 0 bootstrapped from node 0, and waits until every API accepts a connection. */
  async start(n: number): Promise<RunningNode[]> {
    const ports = freePorts(2 * n);
    for (let i = 0; i < n; i++) {
      const apiPort = ports[2 * i]!;
      const p2pPort = ports[2 * i + 1]!;
      const config = this.writeConfig(i, apiPort, p2pPort, i === 0 ? undefined : ports[1]!);
      const stderr = openSync(join(this.dir, `node${i}.log`), "w");
      const cmd = this.o.command.replaceAll("{config}", config);
      const child = Bun.spawn(["/bin/sh", "-c", `exec ${cmd}`], { stdin: "ignore", stdout: stderr, stderr, cwd: this.dir });
      this.nodes.push({ index: i, apiPort, p2pPort, config, process: child });
    }
    await Promise.all(this.nodes.map((node) => waitForApi(node)));
    return this.nodes;
  }

  async stop(): Promise<void> {
    for (const n of this.nodes) n.process.kill("SIGTERM");
    const killer = setTimeout(() => {
      for (const n of this.nodes) if (n.process.exitCode === null) n.process.kill("SIGKILL");
    }, 3000);
    await Promise.all(this.nodes.map((n) => n.process.exited));
    clearTimeout(killer);
    this.nodes.length = 0;
    if (!this.o.keep) rmSync(this.dir, { recursive: true, force: true });
  }

  private writeConfig(i: number, apiPort: number, p2pPort: number, bootstrapPort: number | undefined): string {
    const hostkey = join(this.dir, `node${i}.pem`);
    if (this.o.hostkey === "rsa") {
      const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 4096 });
      writeFileSync(hostkey, privateKey.export({ type: "pkcs8", format: "pem" }), { mode: 0o600 });
    }
    const lines = [
      `hostkey = ${hostkey}`,
      "",
      "[gossip]",
      `api_address = 127.0.0.1:${apiPort}`,
      `p2p_address = 127.0.0.1:${p2pPort}`,
      ...(bootstrapPort === undefined ? [] : [`bootstrapper = 127.0.0.1:${bootstrapPort}`]),
      `degree = ${this.o.degree}`,
      `cache_size = ${this.o.cacheSize}`,
      ...Object.entries(this.o.extra).map(([k, v]) => `${k} = ${v}`),
      "",
    ];
    const path = join(this.dir, `node${i}.ini`);
    writeFileSync(path, lines.join("\n"));
    return path;
  }
}

/** Retries connecting to the node's API until it accepts (the process may take a moment to listen). */
async function waitForApi(node: RunningNode, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (node.process.exitCode !== null) throw new Error(`node ${node.index} exited with ${node.process.exitCode} before listening (see its log)`);
    try {
      const c = await ApiClient.connect(node.apiPort, { connectTimeoutMs: 500 });
      c.close();
      return;
    } catch (e) {
      if (performance.now() > deadline) throw new Error(`node ${node.index}'s API at port ${node.apiPort} did not accept within ${timeoutMs} ms: ${(e as Error).message}`);
      await Bun.sleep(50);
    }
  }
}
