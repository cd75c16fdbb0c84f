/**
 * `bun run bench hop`: latency and burst throughput of real node processes, measured from outside through the
 * VoidPhone API only (src/client/api-client.ts), so that any VoidPhone Gossip module reading the VoidPhone INI can be
 * measured the same way (`--node 'CMD {config}'`; bench/hop-nodes.ts writes the INI files and runs the processes).
 *
 *  1. one hop: 2 nodes (node 1 bootstrapped from node 0), a subscriber on node 1 that validates every item; items
 *     announced at node 0 one at a time (the next `--gap-ms` after the previous arrived): ANNOUNCE → NOTIFICATION;
 *     the first `--warm-items` (2000) are not counted (the JIT compiles the hot path in tiers over the first thousands).
 *  2. last node: N nodes bootstrapped from node 0, a subscriber on each of nodes 1..N-1; `--items` at `--rate` from
 *     node 0; per item the time until the last subscriber has it.
 *  3. burst: on the same network, `--burst` announcements written at node 0 at once; deliveries per second (first
 *     announcement to last delivery), deliveries lost (missing once nothing arrived for 3 s) and the node processes'
 *     CPU per delivery (/proc). Twice: right after start (before phase 2), and after phase 2 (the figure).
 * Fresh processes every run; medians over `--runs`. Numbers, never assertions.
 *
 * `--client python`: the same phases measured by bench/reference/hop_client.py (Python asyncio, standard library)
 * instead of this process's Bun client; the nodes are still started and configured here, and the Python client is run
 * once per phase with their API ports (and PIDs, for CPU per delivery) and prints JSON read back here. Issue 20's
 * figures were taken with a Python asyncio API client: this measures ours under the same kind of client.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ApiClient } from "../src/client/api-client.ts";
import { PROBE_DATA_TYPE, encodeProbe, percentile, readProbe } from "../src/testnet/probe.ts";
import { NodeSet, type NodeSetOptions, type RunningNode } from "./hop-nodes.ts";

/** Which process measures: this one (Bun, src/client/api-client.ts), or bench/reference/hop_client.py. */
export type HopClient = "bun" | "python";

export interface HopOptions {
  node: NodeSetOptions;
  client: HopClient;
  runs: number;
  hopItems: number;
  /** One-hop items sent the same way before the measured ones, not counted: a JIT (ours: JavaScriptCore's tiers)
   *  compiles the hot path over the first thousands of messages (with 500 our p99 still held the last tiers'
   *  compiles), and a node runs for hours, not seconds. */
  warmItems: number;
  gapMs: number;
  nodes: number;
  items: number;
  rate: number;
  burst: number;
  size: number;
  settleMs: number;
}

export interface HopRun {
  hop: { p50: number; p90: number; p99: number; lost: number };
  lastNode: { p50: number; p99: number; delivered: number; expected: number };
  /** The burst right after start, and the one after it (the figure: a node runs warm). cpuUsPerDelivery: CPU of all
   *  node processes during the burst over its deliveries (the client's not counted). */
  firstBurst: BurstRun;
  burst: BurstRun;
}

export interface BurstRun {
  deliveriesPerSec: number;
  delivered: number;
  expected: number;
  lost: number;
  seconds: number;
  cpuUsPerDelivery: number;
  /** The measuring client's own CPU (its whole process: user + system) during the burst, over the deliveries. */
  clientCpuUsPerDelivery: number;
}

/** A subscriber module on one node: answers every NOTIFICATION valid and reports each probe with its arrival time. */
async function subscriber(apiPort: number, size: number, onProbe: (seq: number, at: number) => void): Promise<ApiClient> {
  const client = await ApiClient.connect(apiPort);
  client.onMessage = (m) => {
    if (m.kind !== "notification") return;
    const at = performance.now();
    client.validate(m.messageId, true);
    const probe = m.dataType === PROBE_DATA_TYPE ? readProbe(m.data, size) : undefined;
    if (probe) onProbe(probe.seq, at);
  };
  client.subscribe(PROBE_DATA_TYPE);
  return client;
}

/** Probe sequence numbers: unique across phases of a run, so no item is a duplicate of an earlier one. */
let nextSeq = 1;
function announce(pub: ApiClient, size: number): { seq: number; at: number } {
  const seq = nextSeq++;
  const at = performance.now();
  pub.announce(PROBE_DATA_TYPE, encodeProbe({ seq, origin: 0, sentAt: at }, size));
  return { seq, at };
}

/** Announces a probe every 100 ms until one reaches every subscriber (`reached(seq)`), then waits `settleMs`. */
async function warmUp(pub: ApiClient, size: number, reached: (seq: number) => boolean, settleMs: number): Promise<void> {
  const deadline = performance.now() + 30_000;
  const sent: number[] = [];
  while (!sent.some(reached)) {
    if (performance.now() > deadline) throw new Error("the network did not deliver a warm-up item within 30 s");
    sent.push(announce(pub, size).seq);
    await Bun.sleep(100);
  }
  await Bun.sleep(settleMs);
}

async function oneHop(o: HopOptions): Promise<HopRun["hop"]> {
  const set = new NodeSet(o.node);
  try {
    const [a, b] = await set.start(2);
    if (o.client === "python") {
      const r = await pythonClient<{ latencies: number[]; lost: number }>([
        "hop", "--pub", a!.apiPort, "--sub", b!.apiPort, "--warm-items", o.warmItems, "--hop-items", o.hopItems,
        "--gap-ms", o.gapMs, "--size", o.size, "--settle-ms", o.settleMs,
      ]);
      const l = r.latencies;
      return { p50: percentile(l, 50), p90: percentile(l, 90), p99: percentile(l, 99), lost: r.lost };
    }
    let waiting: { seq: number; resolve: (at: number) => void } | undefined;
    const arrived = new Set<number>();
    const sub = await subscriber(b!.apiPort, o.size, (seq, at) => {
      arrived.add(seq);
      if (waiting?.seq === seq) waiting.resolve(at);
    });
    const pub = await ApiClient.connect(a!.apiPort);
    await warmUp(pub, o.size, (seq) => arrived.has(seq), o.settleMs);
    const latencies: number[] = [];
    let lost = 0;
    const warm = o.warmItems;
    for (let i = 0; i < warm + o.hopItems; i++) {
      const delivered = new Promise<number | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), 2000);
        waiting = { seq: nextSeq, resolve: (at) => (clearTimeout(timer), resolve(at)) };
      });
      const { at: sentAt } = announce(pub, o.size);
      const at = await delivered;
      if (i >= warm) {
        if (at === undefined) lost++;
        else latencies.push(at - sentAt);
      }
      await Bun.sleep(o.gapMs);
    }
    sub.close();
    pub.close();
    latencies.sort((x, y) => x - y);
    return { p50: percentile(latencies, 50), p90: percentile(latencies, 90), p99: percentile(latencies, 99), lost };
  } finally {
    await set.stop();
  }
}

async function network(o: HopOptions): Promise<Pick<HopRun, "lastNode" | "firstBurst" | "burst">> {
  const set = new NodeSet(o.node);
  try {
    const nodes = await set.start(o.nodes);
    if (o.client === "python") {
      const r = await pythonClient<{ lastNode: { latencies: number[]; delivered: number; expected: number }; firstBurst: BurstRun; burst: BurstRun }>([
        "network", "--pub", nodes[0]!.apiPort, "--subs", nodes.slice(1).map((n) => n.apiPort).join(","),
        "--pids", nodes.map((n) => n.process.pid).join(","), "--items", o.items, "--rate", o.rate, "--burst", o.burst,
        "--size", o.size, "--settle-ms", o.settleMs,
      ]);
      const l = r.lastNode.latencies;
      return {
        lastNode: { p50: percentile(l, 50), p99: percentile(l, 99), delivered: r.lastNode.delivered, expected: r.lastNode.expected },
        firstBurst: burstRun(r.firstBurst),
        burst: burstRun(r.burst),
      };
    }
    const others = o.nodes - 1;
    const count = new Map<number, number>();
    const sentAt = new Map<number, number>();
    const lastNode: number[] = [];
    let deliveries = 0;
    let lastDeliveryAt = 0;
    const onProbe = (seq: number, at: number) => {
      deliveries++;
      lastDeliveryAt = at;
      const c = (count.get(seq) ?? 0) + 1;
      count.set(seq, c);
      const t = sentAt.get(seq);
      if (c === others && t !== undefined) lastNode.push(at - t);
    };
    const subs = await Promise.all(nodes.slice(1).map((n) => subscriber(n.apiPort, o.size, onProbe)));
    const pub = await ApiClient.connect(nodes[0]!.apiPort);
    await warmUp(pub, o.size, (seq) => count.get(seq) === others, o.settleMs);

    // Burst: every announcement written at once; the first right after start, the second once the first and the
    // latency phase ran (a JIT has compiled the hot path by then: ours runs the first burst at half speed).
    const burst = async (): Promise<HopRun["burst"]> => {
      const before = deliveries;
      const cpuBefore = cpuSeconds(nodes);
      const clientBefore = process.cpuUsage();
      const start = performance.now();
      for (let i = 0; i < o.burst; i++) announce(pub, o.size);
      const expected = o.burst * others;
      await waitQuiet(() => deliveries - before === expected, () => lastDeliveryAt, 3000);
      const delivered = deliveries - before;
      const seconds = (lastDeliveryAt - start) / 1000;
      const cpuUsPerDelivery = ((cpuSeconds(nodes) - cpuBefore) * 1e6) / delivered;
      const client = process.cpuUsage(clientBefore);
      const clientCpuUsPerDelivery = (client.user + client.system) / delivered;
      return { deliveriesPerSec: delivered / seconds, delivered, expected, lost: expected - delivered, seconds, cpuUsPerDelivery, clientCpuUsPerDelivery };
    };
    const firstBurst = await burst();
    await Bun.sleep(o.settleMs);

    // Last-node latency: `items` at `rate`, on a fixed schedule.
    const t0 = performance.now();
    for (let i = 0; i < o.items; i++) {
      await Bun.sleep(Math.max(0, t0 + (i * 1000) / o.rate - performance.now()));
      const { seq, at } = announce(pub, o.size);
      sentAt.set(seq, at);
    }
    await waitQuiet(() => lastNode.length === o.items, () => lastDeliveryAt, 3000);
    const latencyDelivered = lastNode.length;
    lastNode.sort((x, y) => x - y);

    const nextBurst = await burst();
    for (const s of subs) s.close();
    pub.close();
    return {
      lastNode: { p50: percentile(lastNode, 50), p99: percentile(lastNode, 99), delivered: latencyDelivered, expected: o.items },
      firstBurst,
      burst: nextBurst,
    };
  } finally {
    await set.stop();
  }
}

const HOP_CLIENT_PY = join(import.meta.dir, "reference", "hop_client.py");

/** Runs bench/reference/hop_client.py for one phase (python3 from PATH) and returns the JSON it prints. */
async function pythonClient<T>(args: (string | number)[]): Promise<T> {
  const child = Bun.spawn(["python3", HOP_CLIENT_PY, ...args.map(String)], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`hop_client.py ${args[0]} exited with ${code}: ${stderr.trim()}`);
  try {
    return JSON.parse(stdout) as T;
  } catch {
    throw new Error(`hop_client.py ${args[0]} printed no JSON: ${stdout.slice(0, 200)} ${stderr.trim()}`);
  }
}

/** A BurstRun from the Python client's JSON, where null stands for NaN. */
function burstRun(b: { [K in keyof BurstRun]: number | null }): BurstRun {
  const n = (x: number | null) => x ?? NaN;
  return {
    deliveriesPerSec: n(b.deliveriesPerSec),
    delivered: n(b.delivered),
    expected: n(b.expected),
    lost: n(b.lost),
    seconds: n(b.seconds),
    cpuUsPerDelivery: n(b.cpuUsPerDelivery),
    clientCpuUsPerDelivery: n(b.clientCpuUsPerDelivery),
  };
}

/** CPU seconds (user + system) the node processes used so far, from /proc (NaN where there is none). */
function cpuSeconds(nodes: readonly RunningNode[]): number {
  let ticks = 0;
  for (const n of nodes) {
    try {
      // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${n.process.pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      return NaN;
    }
  }
  return ticks / CLOCK_TICKS_PER_SECOND;
}
/** Linux's USER_HZ, what /proc/PID/stat counts in. */
const CLOCK_TICKS_PER_SECOND = 100;

/** Waits until `done`, or until nothing was delivered for `quietMs` (at most 60 s). */
async function waitQuiet(done: () => boolean, lastAt: () => number, quietMs: number): Promise<void> {
  const start = performance.now();
  while (!done()) {
    const now = performance.now();
    if (now - Math.max(lastAt(), start) > quietMs || now - start > 60_000) return;
    await Bun.sleep(10);
  }
}

const median = (xs: number[]) => {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return v.length === 0 ? NaN : v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "–");
const us = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "–");
const kps = (b: BurstRun) => (b.deliveriesPerSec / 1000).toFixed(1);

export async function benchHop(o: HopOptions, log: (line: string) => void): Promise<HopRun[]> {
  log(`node command: ${o.node.command}`);
  log(`measuring client: ${o.client === "python" ? `python3 ${HOP_CLIENT_PY}` : "this Bun process (src/client/api-client.ts)"}`);
  log(`INI [gossip]: degree ${o.node.degree}, cache_size ${o.node.cacheSize}${Object.entries(o.node.extra).map(([k, v]) => `, ${k} ${v}`).join("")}`);
  log(`one hop: ${o.hopItems} items of ${o.size} B (after ${o.warmItems} not counted), one in flight, ${o.gapMs} ms apart; N=${o.nodes}: ${o.items} items at ${o.rate}/s, then a burst of ${o.burst}`);
  const runs: HopRun[] = [];
  for (let r = 0; r < o.runs; r++) {
    const hop = await oneHop(o);
    const net = await network(o);
    const run = { hop, ...net };
    runs.push(run);
    log(
      `run ${r + 1}/${o.runs}: one hop p50/p90/p99 ${ms(hop.p50)} / ${ms(hop.p90)} / ${ms(hop.p99)} ms (${hop.lost} lost); ` +
        `N=${o.nodes} last node p50/p99 ${ms(net.lastNode.p50)} / ${ms(net.lastNode.p99)} ms (${net.lastNode.delivered}/${net.lastNode.expected}); ` +
        `bursts ${kps(net.firstBurst)} then ${kps(net.burst)} k deliveries/s, ${net.firstBurst.lost} and ${net.burst.lost} of ${net.burst.expected} lost, ` +
        `${us(net.burst.cpuUsPerDelivery)} µs CPU per delivery (the client: ${us(net.burst.clientCpuUsPerDelivery)} µs)`,
    );
  }
  const m = (f: (r: HopRun) => number) => median(runs.map(f));
  log("");
  log(
    `| medians of ${runs.length} runs | one hop p50 / p90 / p99 (ms) | N=${o.nodes} last node p50 / p99 (ms) | burst of ${o.burst}: deliveries/s, first / next | ` +
      `µs CPU per delivery (next burst, all nodes) | lost (all runs, first + next) |`,
  );
  log("|---|---|---|---|---|---|");
  log(
    `| ${o.size} B | ${ms(m((r) => r.hop.p50))} / ${ms(m((r) => r.hop.p90))} / ${ms(m((r) => r.hop.p99))} | ` +
      `${ms(m((r) => r.lastNode.p50))} / ${ms(m((r) => r.lastNode.p99))} | ${(m((r) => r.firstBurst.deliveriesPerSec) / 1000).toFixed(1)} k / ` +
      `${(m((r) => r.burst.deliveriesPerSec) / 1000).toFixed(1)} k | ${us(m((r) => r.burst.cpuUsPerDelivery))} | ` +
      `${runs.map((r) => r.firstBurst.lost + r.burst.lost).join(", ")} |`,
  );
  return runs;
}

/** The command line of `bench hop` (after the name). */
export function hopOptions(argv: string[]): HopOptions & { out?: string } {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      node: { type: "string" },
      client: { type: "string", default: "bun" },
      set: { type: "string", multiple: true },
      hostkey: { type: "string", default: "none" },
      runs: { type: "string", default: "3" },
      "hop-items": { type: "string", default: "1000" },
      "warm-items": { type: "string", default: "2000" },
      "gap-ms": { type: "string", default: "2" },
      nodes: { type: "string", default: "10" },
      items: { type: "string", default: "40" },
      rate: { type: "string", default: "10" },
      burst: { type: "string", default: "1500" },
      size: { type: "string", default: "64" },
      degree: { type: "string", default: "30" },
      "cache-size": { type: "string", default: "50" },
      "settle-ms": { type: "string", default: "2000" },
      keep: { type: "boolean" },
      out: { type: "string" },
    },
  });
  const ours = v.node === undefined;
  const command = v.node ?? `${process.execPath} ${join(import.meta.dir, "..", "src", "cli.ts")} --config {config}`;
  if (!command.includes("{config}")) throw new Error("--node must contain {config}");
  // Our node demands 22 bits of proof of work by default; a cheap one keeps the 10-node setup short (not measured).
  const extra: Record<string, string> = ours ? { pow_difficulty: "8" } : {};
  for (const kv of v.set ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new Error(`--set ${kv}: expected key=value`);
    extra[kv.slice(0, eq).trim()] = kv.slice(eq + 1).trim();
  }
  if (v.client !== "bun" && v.client !== "python") throw new Error(`--client: bun or python, got ${v.client}`);
  if (v.hostkey !== "none" && v.hostkey !== "rsa") throw new Error(`--hostkey: rsa or none, got ${v.hostkey}`);
  const num = (s: string | undefined) => Number(s);
  return {
    node: { command, extra, hostkey: v.hostkey, degree: num(v.degree), cacheSize: num(v["cache-size"]), keep: v.keep },
    client: v.client,
    runs: num(v.runs),
    hopItems: num(v["hop-items"]),
    warmItems: num(v["warm-items"]),
    gapMs: num(v["gap-ms"]),
    nodes: num(v.nodes),
    items: num(v.items),
    rate: num(v.rate),
    burst: num(v.burst),
    size: num(v.size),
    settleMs: num(v["settle-ms"]),
    out: v.out,
  };
}
