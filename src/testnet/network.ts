/**
 * A local test network: N whole gossip nodes in this process on consecutive (or ephemeral) loopback ports, hostkeys in
 * one shared directory, each node dialing a few random others, and on every node one in-process API module that
 * subscribes, validates what it is notified of, and can announce. `gossip testnet` runs it with a live summary; tests
 * and `bench net` use startTestnet directly.
 *
 * Everything goes through the real parts: real sockets, real handshakes, the VoidPhone API over TCP. Must never: leave
 * a node, socket or temp directory behind after stop(), or let a module's slowness throw out of a socket handler.
 */
import type { Socket } from "bun";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { decodeMessage, encodeAnnounce, encodeNotify, encodeValidation } from "./api/codec.ts";
import { MessageReader } from "./api/reader.ts";
import type { NodeConfig } from "./config.ts";
import { silentLogger, type Logger } from "./log.ts";
import { startNode, type GossipNode } from "./node.ts";
import { generateEd25519Pem, loadIdentity } from "./p2p/identity.ts";
import { PowPool } from "./p2p/pow-pool.ts";
import { SendQueue } from "./net/send-queue.ts";
import { PROBE_DATA_TYPE, PROBE_HEADER_BYTES, ProbeTracker, encodeProbe, percentile, randomDials, readProbe, seededRandom } from "./testnet-probe.ts";

export { PROBE_DATA_TYPE, PROBE_HEADER_BYTES, ProbeTracker, encodeProbe, percentile, randomDials, readProbe, seededRandom } from "./testnet-probe.ts";

/**
 * A local module on the VoidPhone API, in this process: subscribes to types, answers each NOTIFICATION with the
 * verdict `onNotification` returns (valid unless it says false), and announces. Output is queued against a bound;
 * a module that cannot write closes its connection rather than buffer without end.
 */
export class ApiModule {
  onNotification: (dataType: number, data: Uint8Array) => boolean | void = () => true;
  notifications = 0;
  private readonly reader = new MessageReader();
  private answers: Uint8Array[] = [];
  private queue!: SendQueue;
  private socket!: Socket<undefined>;
  closed = false;

  static async connect(port: number, host = "127.0.0.1"): Promise<ApiModule> {
    const m = new ApiModule();
    m.socket = await Bun.connect({
      hostname: host,
      port,
      socket: {
        data: (_s, chunk) => m.received(chunk),
        drain: () => m.queue.flush(),
        close: () => void (m.closed = true),
        error: () => void (m.closed = true),
      },
    });
    m.queue = new SendQueue(m.socket as Socket<unknown>, 64 << 20);
    return m;
  }

  subscribe(dataType: number): void {
    this.write(encodeNotify({ dataType }));
  }

  announce(dataType: number, data: Uint8Array, ttl = 0): void {
    this.write(encodeAnnounce({ ttl, dataType, data }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.end();
  }

  private write(bytes: Uint8Array): void {
    if (!this.closed && !this.queue.write(bytes)) this.close();
  }

  /** VALIDATIONs answered in this event-loop turn leave together in one write (8 bytes each, many per turn). */
  private answer(messageId: number, valid: boolean): void {
    if (this.answers.push(encodeValidation({ messageId, valid })) === 1) {
      setImmediate(() => {
        const batch = this.answers;
        this.answers = [];
        this.write(batch.length === 1 ? batch[0]! : Buffer.concat(batch));
      });
    }
  }

  private received(chunk: Uint8Array): void {
    let messages: Uint8Array[];
    try {
      messages = this.reader.push(chunk);
    } catch {
      this.close();
      return;
    }
    for (const bytes of messages) {
      let m;
      try {
        m = decodeMessage(bytes);
      } catch {
        this.close();
        return;
      }
      if (m.kind !== "notification") continue;
      this.notifications++;
      const valid = this.onNotification(m.dataType, m.data) !== false;
      this.answer(m.messageId, valid);
    }
  }
}

export interface TestnetOptions {
  nodes: number;
  /** Node i listens for peers on basePort + i and serves the API on basePort + 1000 + i; 0 or unset: ephemeral. */
  basePort?: number;
  host?: string;
  /** Shared directory for the hostkeys (node-<i>.pem, created if missing); default a new temp dir, removed on stop. */
  dir?: string;
  powDifficulty?: number;
  degree?: number;
  cacheSize?: number;
  /** Each node dials this many distinct random others (the gossipsub bench harness's shape). */
  dialsPerNode?: number;
  validationTimeoutMs?: number;
  /**
   * Keep membership running after the random dials (default), so nodes short of `degree` links dial more by peer
   * exchange. false: the graph stays exactly the dials' (what the benchmark compares).
   */
  membership?: boolean;
  /** Seeds the choice of whom each node dials. */
  seed?: number;
  /** Data types every node's module subscribes to (PROBE_DATA_TYPE always). */
  dataTypes?: number[];
  /** Called for every NOTIFICATION on node `node`; false = invalid. Default: probes must parse, others are valid. */
  onNotification?: (node: number, dataType: number, data: Uint8Array) => boolean | void;
  log?: Logger;
}

export interface TestnetNode {
  index: number;
  node: GossipNode;
  apiPort: number;
  p2pPort: number;
  module: ApiModule;
}

export interface Testnet {
  nodes: TestnetNode[];
  dir: string;
  /** Distinct links in the network (each counted once). */
  links(): number;
  /** Announces through node `index`'s module (which, as the announcer, is not notified of it). */
  announce(index: number, dataType: number, data: Uint8Array, ttl?: number): void;
  stop(): Promise<void>;
}

export async function startTestnet(options: TestnetOptions): Promise<Testnet> {
  const n = options.nodes;
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new RangeError(`nodes must be 1…1000, got ${n}`);
  const host = options.host ?? "127.0.0.1";
  const basePort = options.basePort ?? 0;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "gossip-testnet-"));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const log = options.log ?? silentLogger;
  const pow = new PowPool({ size: 1 });
  const dataTypes = [PROBE_DATA_TYPE, ...(options.dataTypes ?? []).filter((t) => t !== PROBE_DATA_TYPE)];
  const verdict = options.onNotification ?? ((_node: number, type: number, data: Uint8Array) => type !== PROBE_DATA_TYPE || readProbe(data) !== undefined);
  const nodes: TestnetNode[] = [];

  const stop = async () => {
    for (const t of nodes) t.module.close();
    await Promise.all(nodes.map((t) => t.node.stop()));
    await pow.close();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (let i = 0; i < n; i++) {
      const keyPath = join(dir, `node-${i}.pem`);
      if (!existsSync(keyPath)) writeFileSync(keyPath, generateEd25519Pem(), { mode: 0o600 });
      const config: NodeConfig = {
        source: "<testnet>",
        hostkeyPath: keyPath,
        apiAddress: { host, port: basePort ? basePort + 1000 + i : 0 },
        p2pAddress: { host, port: basePort ? basePort + i : 0 },
        bootstrappers: [],
        degree: options.degree ?? 6,
        cacheSize: options.cacheSize ?? 50,
        powDifficulty: options.powDifficulty ?? 4,
        maxPowDifficulty: Math.max(options.powDifficulty ?? 4, 8),
        validationTimeoutMs: options.validationTimeoutMs ?? 5000,
        logLevel: "error",
      };
      const node = await startNode(config, loadIdentity(readFileSync(keyPath, "utf8")), log.child({ node: i }), { pow });
      node.membership.stop(); // until the random dials are made: they, not early peer exchange, shape the graph
      const module = await ApiModule.connect(node.api.port, host).catch(async (e) => {
        await node.stop();
        throw e;
      });
      module.onNotification = (type, data) => verdict(i, type, data);
      for (const t of dataTypes) module.subscribe(t);
      nodes.push({ index: i, node, apiPort: node.api.port, p2pPort: node.transport.port, module });
    }
    await connect(nodes, host, options.dialsPerNode ?? 4, seededRandom(options.seed ?? 1));
    if (options.membership !== false) for (const t of nodes) t.node.membership.start();
  } catch (e) {
    await stop();
    throw e;
  }

  return {
    nodes,
    dir,
    links: () => nodes.reduce((sum, t) => sum + t.node.transport.linked().length, 0) / 2,
    announce: (index, dataType, data, ttl = 0) => nodes[index]!.module.announce(dataType, data, ttl),
    stop,
  };
}

/**
 * Each node dials its random others, a few handshakes at a time (every dial comes from 127.0.0.1, and a responder
 * admits only 4 pending handshakes per IP), retrying refused ones; then waits until every subscription is in place.
 */
async function connect(nodes: TestnetNode[], host: string, k: number, random: () => number): Promise<void> {
  const pairs = randomDials(nodes.length, k, random).flatMap((targets, i) => targets.map((j) => [i, j] as const));
  let next = 0;
  const worker = async () => {
    while (next < pairs.length) {
      const [i, j] = pairs[next++]!;
      for (let attempt = 0; ; attempt++) {
        try {
          await nodes[i]!.node.transport.dial(host, nodes[j]!.p2pPort);
          break;
        } catch (e) {
          if (attempt >= 5) throw new Error(`testnet: node ${i} could not link to node ${j}: ${(e as Error).message}`);
          await Bun.sleep(20 * 2 ** attempt);
        }
      }
    }
  };
  await Promise.all([worker(), worker(), worker()]);
  const deadline = Date.now() + 10_000;
  while (!nodes.every((t) => t.node.api.stats().subscriptions > 0)) {
    if (Date.now() > deadline) throw new Error("testnet: modules did not subscribe within 10 s");
    await Bun.sleep(5);
  }
}

const TESTNET_USAGE = `usage: gossip testnet --nodes N [--announce-rate R] [--size BYTES] [--base-port P] [--difficulty D]
                      [--degree D] [--types T1,T2,…] [--dir DIR] [--seconds S]
  Starts N nodes in this process: node i on P2P port P+i and API port P+1000+i (P default 6001; 0 = any free port),
  hostkeys in DIR (default a temp dir), each dialing 4 random others. Every node runs a module that subscribes to
  the probe type ${PROBE_DATA_TYPE} and to --types (answering valid), so items of those types from your own module
  propagate. --announce-rate R announces R probe items per second from random nodes. Prints one summary line per
  second until Ctrl-C (or for S seconds).`;

/** `gossip testnet …`: returns the exit code (2 for a usage error). */
export async function testnetCommand(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        nodes: { type: "string", short: "n" },
        "announce-rate": { type: "string" },
        size: { type: "string" },
        "base-port": { type: "string" },
        difficulty: { type: "string" },
        degree: { type: "string" },
        types: { type: "string" },
        dir: { type: "string" },
        seconds: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${TESTNET_USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(TESTNET_USAGE + "\n");
    return 0;
  }
  const num = (name: string, text: string | undefined, fallback: number, min: number, max: number): number => {
    if (text === undefined) return fallback;
    const v = Number(text);
    if (text.trim() === "" || !Number.isFinite(v) || v < min || v > max) throw new RangeError(`--${name} must be a number in ${min}…${max}, got "${text}"`);
    return v;
  };
  let opts;
  try {
    const nodes = num("nodes", values.nodes, 10, 1, 1000);
    opts = {
      nodes,
      rate: num("announce-rate", values["announce-rate"], 0, 0, 100_000),
      size: num("size", values.size, 64, PROBE_HEADER_BYTES, 65_000),
      basePort: num("base-port", values["base-port"], 6001, 0, 65535 - 1000 - nodes),
      difficulty: num("difficulty", values.difficulty, 8, 0, 24),
      degree: num("degree", values.degree, 6, 1, 1000),
      seconds: num("seconds", values.seconds, Infinity, 0, Infinity),
      types: (values.types ?? "").split(",").filter((t) => t !== "").map((t) => num("types", t, 0, 0, 0xffff)),
    };
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n${TESTNET_USAGE}\n`);
    return 2;
  }
  return runTestnet(opts, values.dir);
}

async function runTestnet(
  o: { nodes: number; rate: number; size: number; basePort: number; difficulty: number; degree: number; seconds: number; types: number[] },
  dir: string | undefined,
): Promise<number> {
  const out = (line: string) => process.stdout.write(line + "\n");
  const tracker = new ProbeTracker(o.nodes - 1);
  let net: Testnet;
  try {
    net = await startTestnet({
      nodes: o.nodes,
      basePort: o.basePort,
      dir,
      powDifficulty: o.difficulty,
      degree: o.degree,
      dataTypes: o.types,
      onNotification: (_i, type, data) => {
        if (type !== PROBE_DATA_TYPE) return true;
        const probe = readProbe(data, o.size);
        if (probe !== undefined) tracker.received(probe, performance.now());
        return probe !== undefined;
      },
    });
  } catch (e) {
    process.stderr.write(`gossip testnet: ${(e as Error).message}\n`);
    return 1;
  }
  out(`testnet: ${o.nodes} nodes, hostkeys in ${net.dir}, difficulty ${o.difficulty}, degree ${o.degree}`);
  for (const t of net.nodes) out(`node ${t.index}: api 127.0.0.1:${t.apiPort}  p2p 127.0.0.1:${t.p2pPort}  id ${t.node.identity.idHex.slice(0, 16)}…`);

  let seq = 0;
  const started = performance.now();
  const random = seededRandom(Date.now());
  const announcer = o.rate > 0
    ? setInterval(() => {
        const due = Math.floor(((performance.now() - started) / 1000) * o.rate);
        for (; seq < due; seq++) {
          const origin = Math.floor(random() * o.nodes);
          const now = performance.now();
          tracker.published(seq, now);
          net.announce(origin, PROBE_DATA_TYPE, encodeProbe({ seq, origin, sentAt: now }, o.size));
        }
      }, 10)
    : undefined;
  const summary = setInterval(() => {
    const secs = Math.round((performance.now() - started) / 1000);
    const validated = net.nodes.reduce((s, t) => s + t.module.notifications, 0);
    const lat = tracker.takeCompleted();
    const p99 = lat.length ? `${percentile(lat, 99).toFixed(1)} ms` : "-";
    const probes = o.rate > 0 ? ` | probes ${seq} announced, ${tracker.delivered}/${seq * (o.nodes - 1)} delivered, last-node p99 ${p99}` : "";
    out(`t=${secs}s links ${net.links()} | items delivered ${validated}${probes}`);
  }, 1000);

  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
    if (Number.isFinite(o.seconds)) setTimeout(done, o.seconds * 1000);
  });
  clearInterval(announcer);
  clearInterval(summary);
  // A pending timer keeps the event loop alive while stop() awaits worker exits (unref'd handles would let the
  // process end mid-stop), and bounds shutdown like `gossip` itself does.
  const force = setTimeout(() => process.exit(0), 3000);
  await net.stop();
  clearTimeout(force);
  out("testnet stopped");
  return 0;
}

// `bun src/testnet.ts --nodes N …` works as well as `gossip testnet …`.
if (import.meta.main) process.exit(await testnetCommand(process.argv.slice(2)));
