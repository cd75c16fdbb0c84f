/**
 * `gossip testnet`: parses its flags, starts a local network (src/testnet/network.ts), prints the nodes' ports, then
 * one summary line per second (links, deliveries, copies and bytes per delivery, probe delivery and last-node p99)
 * until Ctrl-C or --seconds, and a final line; with --adversaries, every figure but links counts honest nodes only. Holds no network logic; never leaves a node running after it returns.
 */
import {
  TESTNET_BASE_PORT,
  TESTNET_DEGREE,
  TESTNET_DIALS_PER_NODE,
  TESTNET_NODES,
  TESTNET_POW_DIFFICULTY,
  TESTNET_PROBE_BYTES,
  TESTNET_DRAIN_MS,
  TESTNET_SHUTDOWN_BOUND_MS,
} from "../defaults.ts";
import { UsageError } from "../errors.ts";
import { startTestnet, type TestnetAdversary, type TestnetStats } from "../testnet/network.ts";
import { startProcessTestnet } from "../testnet/processes.ts";
import { PROBE_DATA_TYPE, PROBE_HEADER_BYTES, ProbeTracker, encodeProbe, percentile, readProbe } from "../testnet/probe.ts";
import { seededRandom } from "../util/random.ts";
import { parseOptions } from "./common.ts";

/** What --behaviour accepts (NodeOptions.behaviour). */
const BEHAVIOURS = ["censor"] as const;

const TESTNET_USAGE = `usage: gossip testnet --nodes N [--announce-rate R] [--size BYTES] [--base-port P] [--control-base-port C]
                      [--difficulty D] [--degree D] [--dissemination plumtree|flood] [--overlay classic|hyparview]
                      [--processes] [--adversaries K [--behaviour censor]] [--types T1,T2,…] [--dir DIR] [--seconds S]
                      [--warmup S]
  Starts N nodes in this process: node i on P2P port P+i and API port P+1000+i (P default ${TESTNET_BASE_PORT}; 0 = any free
  port), hostkeys in DIR (default a temp dir), each dialing ${TESTNET_DIALS_PER_NODE} random others. --processes runs each node
  as its own \`gossip\` process instead (config node-<i>.yaml and log node-<i>.log in DIR, ${TESTNET_DIALS_PER_NODE} random
  others as its bootstrappers, control server on P+2000+i; needs a fixed P). With --control-base-port C,
  node i also serves its control server on C+i (0 = any free port): its dashboard at http://127.0.0.1:C+i/, and
  /metrics and /status. Every node runs a module that subscribes
  to the probe type ${PROBE_DATA_TYPE} and to --types (answering valid), so items of those types from your own module
  propagate. --announce-rate R announces R probe items per second from random nodes. Prints one summary line per
  second until Ctrl-C (or for S seconds): links, items delivered to the testnet's modules, copies/delivery (item
  copies sent on links by all nodes / deliveries) and bytes/delivery (all link bytes sent / deliveries), counted from
  when the network is up, or with --warmup S from S seconds later (lines until then say "warm-up": a broadcast tree
  prunes its links on the first items, as the simulator's --warmup-items), and the probes' delivery (every probe;
  after a warm-up also, in brackets, the probes announced since it ended) and last-node p99. --adversaries K also starts K adversary nodes in this process, with no module, on the ports after
  the honest ones' (node N+j), dialing and dialed at random like them, that run --behaviour B (default censor; one
  of: ${BEHAVIOURS.join(", ")}). A censor links, dials, accepts and keeps membership like an honest node but drops every item
  and tree message it receives: it never validates, forwards or serves anything (as the simulator's, it offers
  neither trees nor views). Probes are announced from honest nodes only, and items, copies, bytes, the probes'
  delivery ("delivered to honest nodes") and last-node p99 count honest nodes only; links counts every link, the
  honest–honest ones in brackets. Not with --processes.`;

interface TestnetRun {
  nodes: number;
  rate: number;
  size: number;
  basePort: number;
  controlBasePort: number | undefined;
  difficulty: number;
  degree: number;
  dissemination: "plumtree" | "flood" | undefined;
  overlay: "hyparview" | "classic" | undefined;
  processes: boolean;
  /** Adversary nodes besides the honest `nodes`, running `behaviour`. */
  adversaries: number;
  behaviour: (typeof BEHAVIOURS)[number];
  seconds: number;
  /** Seconds after the network is up before items, copies and bytes are counted. */
  warmup: number;
  types: number[];
  dir: string | undefined;
}

/** `gossip testnet …`: returns the exit code (2 for a usage error, with the testnet's own usage). */
export async function testnetCommand(argv: string[]): Promise<number> {
  let run: TestnetRun | "help";
  try {
    run = parse(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message}\n${TESTNET_USAGE}\n`);
    return 2;
  }
  if (run === "help") {
    process.stdout.write(TESTNET_USAGE + "\n");
    return 0;
  }
  return runTestnet(run);
}

function parse(argv: string[]): TestnetRun | "help" {
  const { values, positionals } = parseOptions(argv, {
    nodes: { type: "string", short: "n" },
    "announce-rate": { type: "string" },
    size: { type: "string" },
    "base-port": { type: "string" },
    "control-base-port": { type: "string" },
    difficulty: { type: "string" },
    degree: { type: "string" },
    dissemination: { type: "string" },
    overlay: { type: "string" },
    processes: { type: "boolean" },
    adversaries: { type: "string" },
    behaviour: { type: "string" },
    types: { type: "string" },
    dir: { type: "string" },
    seconds: { type: "string" },
    warmup: { type: "string" },
  });
  if (values.help) return "help";
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const text = (name: string) => values[name] as string | undefined;
  const num = (name: string, fallback: number, min: number, max: number, value = text(name)): number => {
    if (value === undefined) return fallback;
    const v = Number(value);
    if (value.trim() === "" || !Number.isFinite(v) || v < min || v > max) throw new UsageError(`--${name} must be a number in ${min}…${max}, got "${value}"`);
    return v;
  };
  const nodes = num("nodes", TESTNET_NODES, 1, 1000);
  const adversaries = num("adversaries", 0, 0, 1000 - nodes);
  if (!Number.isInteger(adversaries)) throw new UsageError(`--adversaries must be a whole number, got "${text("adversaries")}"`);
  const choice = <T extends string>(name: string, allowed: readonly T[]): T | undefined => {
    const v = text(name);
    if (v !== undefined && !(allowed as readonly string[]).includes(v)) throw new UsageError(`--${name} must be ${allowed.join(" or ")}, got "${v}"`);
    return v as T | undefined;
  };
  const processes = values.processes === true;
  if (processes && (text("base-port") === "0" || text("control-base-port") !== undefined)) {
    throw new UsageError("--processes needs a fixed --base-port (its configs name every port) and puts control servers on P+2000+i");
  }
  if (processes && adversaries > 0) throw new UsageError("--adversaries runs in-process nodes only, not with --processes");
  return {
    dissemination: choice("dissemination", ["plumtree", "flood"] as const),
    overlay: choice("overlay", ["hyparview", "classic"] as const),
    processes,
    nodes,
    adversaries,
    behaviour: choice("behaviour", BEHAVIOURS) ?? "censor",
    rate: num("announce-rate", 0, 0, 100_000),
    size: num("size", TESTNET_PROBE_BYTES, PROBE_HEADER_BYTES, 65_000),
    basePort: num("base-port", TESTNET_BASE_PORT, 0, 65535 - 1000 - nodes - adversaries),
    controlBasePort: text("control-base-port") === undefined ? undefined : num("control-base-port", 0, 0, 65535 - nodes - adversaries),
    difficulty: num("difficulty", TESTNET_POW_DIFFICULTY, 0, 24),
    degree: num("degree", TESTNET_DEGREE, 1, 1000),
    seconds: num("seconds", Infinity, 0, Infinity),
    warmup: num("warmup", 0, 0, 86_400),
    types: (text("types") ?? "").split(",").filter((t) => t !== "").map((t) => num("types", 0, 0, 0xffff, t)),
    dir: text("dir"),
  };
}

/** `copies/delivery 5.68 | bytes/delivery 6012` over the traffic between two stats() readings ("-" before any delivery). */
export function perDelivery(now: TestnetStats, base: TestnetStats): string {
  const deliveries = now.deliveries - base.deliveries;
  if (deliveries <= 0) return "copies/delivery - | bytes/delivery -";
  const copies = (now.copiesSent - base.copiesSent) / deliveries;
  const bytes = (now.bytesSent - base.bytesSent) / deliveries;
  return `copies/delivery ${copies.toFixed(2)} | bytes/delivery ${Math.round(bytes)}`;
}

/** What the summary loop needs of either kind of testnet (in-process, or one process per node). */
interface RunningTestnet {
  dir: string;
  lines: string[];
  stats(): Promise<TestnetStats> | TestnetStats;
  announce(index: number, dataType: number, data: Uint8Array): void;
  stop(): Promise<void>;
}

async function start(o: TestnetRun, tracker: ProbeTracker): Promise<RunningTestnet> {
  const onNotification = (_i: number, type: number, data: Uint8Array) => {
    if (type !== PROBE_DATA_TYPE) return true;
    const probe = readProbe(data, o.size);
    if (probe !== undefined) tracker.received(probe, performance.now());
    return probe !== undefined;
  };
  const common = { nodes: o.nodes, dir: o.dir, powDifficulty: o.difficulty, degree: o.degree, dissemination: o.dissemination, overlay: o.overlay, dataTypes: o.types, onNotification };
  if (o.processes) {
    const net = await startProcessTestnet({ ...common, basePort: o.basePort });
    const lines = net.nodes.map((t) => `node ${t.index}: api 127.0.0.1:${t.apiPort}  p2p 127.0.0.1:${t.p2pPort}  pid ${t.process.pid}  dashboard http://127.0.0.1:${t.controlPort}/`);
    return { dir: net.dir, lines, stats: () => net.stats(), announce: (i, type, data) => net.announce(i, type, data), stop: () => net.stop() };
  }
  const net = await startTestnet({ ...common, basePort: o.basePort, controlBasePort: o.controlBasePort, adversaries: o.adversaries, behaviour: o.behaviour });
  const line = (what: string) => (t: TestnetAdversary) => {
    const dashboard = t.controlPort === undefined ? "" : `  dashboard http://127.0.0.1:${t.controlPort}/`;
    return `${what} ${t.index}: api 127.0.0.1:${t.apiPort}  p2p 127.0.0.1:${t.p2pPort}  id ${t.node.identity.idHex.slice(0, 16)}…${dashboard}`;
  };
  const lines = [...net.nodes.map(line("node")), ...net.adversaries.map(line(`adversary (${o.behaviour})`))];
  return { dir: net.dir, lines, stats: () => net.stats(), announce: (i, type, data) => net.announce(i, type, data), stop: () => net.stop() };
}

async function runTestnet(o: TestnetRun): Promise<number> {
  const out = (line: string) => process.stdout.write(line + "\n");
  const tracker = new ProbeTracker(o.nodes - 1);
  let net: RunningTestnet;
  try {
    net = await start(o, tracker);
  } catch (e) {
    process.stderr.write(`gossip testnet: ${(e as Error).message}\n`);
    return 1;
  }
  const kind = o.processes ? " (one process each)" : "";
  const layers = `${o.dissemination ?? "default dissemination"}, ${o.overlay ?? "default overlay"}`;
  const against = o.adversaries > 0 ? ` + ${o.adversaries} adversaries (${o.behaviour})` : "";
  out(`testnet: ${o.nodes} nodes${kind}${against}, hostkeys in ${net.dir}, difficulty ${o.difficulty}, degree ${o.degree}, ${layers}`);
  for (const line of net.lines) out(line);

  // Traffic is counted from here (or from the end of the warm-up): the handshakes and first exchanges of setting up
  // are not the protocol's cost per item, nor are a tree's first items, which flood while its links are pruned.
  let base = await net.stats();
  let warming = o.warmup > 0;
  let seq = 0;
  /** The first probe announced after the warm-up (set when it ends). */
  let firstAfterWarmup: number | undefined;
  const warmupTimer = warming
    ? setTimeout(async () => {
        firstAfterWarmup = seq;
        base = await net.stats();
        warming = false;
      }, o.warmup * 1000)
    : undefined;
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
  const summary = async () => {
    const secs = Math.round((performance.now() - started) / 1000);
    const s = await net.stats();
    const lat = tracker.takeCompleted();
    const p99 = lat.length ? `${percentile(lat, 99).toFixed(1)} ms` : "-";
    const { delivered } = tracker.stats();
    const honest = o.adversaries > 0 ? " to honest nodes" : "";
    const after = firstAfterWarmup === undefined ? "" : ` (after warm-up ${tracker.deliveredFrom(firstAfterWarmup)}/${(seq - firstAfterWarmup) * (o.nodes - 1)})`;
    const probes = o.rate > 0 ? ` | probes ${seq} announced, ${delivered}/${seq * (o.nodes - 1)} delivered${honest}${after}, last-node p99 ${p99}` : "";
    const links = s.honestLinks === undefined ? `${s.links}` : `${s.links} (honest–honest ${s.honestLinks})`;
    return `t=${secs}s${warming ? " (warm-up)" : ""} links ${links} | items delivered ${s.deliveries - base.deliveries} | ${perDelivery(s, base)}${probes}`;
  };
  const ticker = setInterval(() => void summary().then(out), 1000);

  await new Promise<void>((resolve) => {
    const done = () => resolve();
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
    if (Number.isFinite(o.seconds)) setTimeout(done, o.seconds * 1000);
  });
  clearInterval(announcer);
  clearInterval(ticker);
  clearTimeout(warmupTimer);
  // The last probes are still on their way: the total waits (a bounded while) for their deliveries.
  const drainUntil = performance.now() + TESTNET_DRAIN_MS;
  while (tracker.stats().delivered < seq * (o.nodes - 1) && performance.now() < drainUntil) await Bun.sleep(20);
  out(`total: ${await summary()}`);
  // A pending timer keeps the event loop alive while stop() awaits worker exits (unref'd handles would let the
  // process end mid-stop), and bounds shutdown like `gossip` itself does.
  const force = setTimeout(() => process.exit(0), TESTNET_SHUTDOWN_BOUND_MS);
  await net.stop();
  clearTimeout(force);
  out("testnet stopped");
  return 0;
}
