/**
 * The benchmark workload, the same for our nodes and for js-libp2p gossipsub: N nodes in this process, each with a
 * subscriber that validates every item; probe items of S bytes published from random nodes at a fixed rate.
 *
 *  1. latency: `latencyItems` items at `latencyRate` msg/s; per item the last-node latency (publish → the last of the
 *     N-1 other nodes delivers it), redundancy (copies sent per delivery) and CPU per delivery.
 *  2. sweep: offered rate doubling from `sweepStart`, then two bisections; a step of `stepSeconds` is sustained when
 *     the publisher kept to its schedule (a saturated event loop stretches the window), every item reaches every node
 *     within `graceMs` after the last publish, AND the deliveries made during the window are ≥ 95% of those offered
 *     (a backlog that grows shows up as a deficit). The sweep ends at the first failure that does not drain.
 *
 * A Driver adapts one implementation; this file holds no implementation-specific code and runs under Bun and Node
 * (the gossipsub harness runs under Node). Numbers, never assertions.
 */
import { cpus } from "node:os";
import { encodeProbe, percentile, readProbe } from "../src/testnet/probe.ts";
import { seededRandom } from "../src/util/random.ts";

export interface Driver {
  readonly nodes: number;
  /** Publish `data` from node `origin` (fire and forget). */
  publish(origin: number, data: Uint8Array): void;
  /** Distinct connections between nodes. */
  links(): number;
  /** Message copies handed to the network so far, all nodes together (publishes, forwards, re-sends). */
  copiesSent(): number;
  stop(): Promise<void>;
}

/** What a driver calls on every delivery to a subscriber; returns the verdict its validator should give. */
export type DeliverySink = (node: number, data: Uint8Array) => boolean;

export interface WorkloadOptions {
  sizes: number[];
  latencyItems: number;
  latencyRate: number;
  sweepStart: number;
  sweepMax: number;
  stepSeconds: number;
  graceMs: number;
  /** Seeds the choice of publishers. */
  seed: number;
  log: (line: string) => void;
  /** Called once, after the first latency phase (network warm, idle): where a driver weighs its memory. */
  afterLatency?: () => void;
}

export const DEFAULT_WORKLOAD: Omit<WorkloadOptions, "sizes" | "log"> = {
  latencyItems: 60,
  latencyRate: 10,
  sweepStart: 10,
  sweepMax: 5000,
  stepSeconds: 2,
  graceMs: 1000,
  seed: 7,
};

export interface SweepStep {
  /** Offered msg/s (network-wide publishes). */
  offered: number;
  /** Deliveries per second during the step window. */
  deliveriesPerSec: number;
  delivered: number;
  expected: number;
  p99Ms: number;
  cpuUsPerDelivery: number;
  sustained: boolean;
}

export interface SizeResult {
  size: number;
  latency: {
    items: number;
    rate: number;
    delivered: number;
    expected: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    /** Last-node latency of each item, ms (NaN if it never reached every node). */
    samples: number[];
    copiesPerDelivery: number;
    cpuUsPerDelivery: number;
  };
  sweep: SweepStep[];
  maxSustainedMsgPerSec: number;
  maxSustainedDeliveriesPerSec: number;
  /** CPU µs per delivery at the highest sustained step. */
  cpuUsPerDeliveryAtMax: number;
}

/** Per item: publish time, which nodes delivered it, when the last did. */
export class Recorder {
  readonly sentAt: number[] = [];
  private readonly seenBy: Uint8Array[] = [];
  private readonly count: number[] = [];
  private readonly lastAt: number[] = [];
  delivered = 0;
  duplicates = 0;
  invalid = 0;
  /** The size the current phase publishes; anything else is invalid. */
  size = 0;

  constructor(readonly nodes: number) {}

  published(seq: number, at: number): void {
    this.sentAt[seq] = at;
    this.seenBy[seq] = new Uint8Array(this.nodes);
    this.count[seq] = 0;
  }

  /** The subscriber's check on node `node`: a well-formed probe of the phase's size, published by us. */
  readonly sink: DeliverySink = (node, data) => {
    const now = performance.now();
    const probe = readProbe(data, this.size);
    const seen = probe && this.seenBy[probe.seq];
    if (!probe || !seen) {
      this.invalid++;
      return false;
    }
    if (probe.origin === node) return true; // a publisher seeing its own item is no delivery
    if (seen[node]) {
      this.duplicates++;
      return true;
    }
    seen[node] = 1;
    this.delivered++;
    this.count[probe.seq]!++;
    this.lastAt[probe.seq] = now;
    return true;
  };

  /** Items [from, to) that reached all other nodes. */
  complete(from: number, to: number): boolean {
    for (let s = from; s < to; s++) if (this.count[s] !== this.nodes - 1) return false;
    return true;
  }

  /** Last-node latency of each item in [from, to), NaN for incomplete ones. */
  lastNodeLatencies(from: number, to: number): number[] {
    const out: number[] = [];
    for (let s = from; s < to; s++) out.push(this.count[s] === this.nodes - 1 ? this.lastAt[s]! - this.sentAt[s]! : NaN);
    return out;
  }
}

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitUntil(cond: () => boolean, timeoutMs: number, pollMs = 5): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) return false;
    await sleep(pollMs);
  }
  return true;
}

/** Runs the whole workload on a started driver. */
export async function runWorkload(driver: Driver, recorder: Recorder, o: WorkloadOptions): Promise<SizeResult[]> {
  const random = seededRandom(o.seed);
  let seq = 0;

  /** Publishes `count` items at `rate` msg/s from random nodes; returns [first, end) sequence numbers. */
  const publishAt = async (rate: number, count: number, size: number): Promise<[number, number]> => {
    const first = seq;
    const t0 = performance.now();
    while (seq < first + count) {
      const due = Math.min(first + count, first + Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      for (; seq < due; seq++) {
        const origin = Math.floor(random() * driver.nodes);
        const now = performance.now();
        recorder.published(seq, now);
        driver.publish(origin, encodeProbe({ seq, origin, sentAt: now }, size));
      }
      await sleep(2);
    }
    return [first, seq];
  };

  const results: SizeResult[] = [];
  for (const size of o.sizes) {
    recorder.size = size;
    // Warm-up: a few items so that JIT and lazily built paths are in place before anything is measured.
    const [w0, w1] = await publishAt(o.latencyRate * 5, 20, size);
    await waitUntil(() => recorder.complete(w0, w1), 5000);

    const copies0 = driver.copiesSent();
    const cpu0 = cpuUs();
    const d0 = recorder.delivered;
    const [l0, l1] = await publishAt(o.latencyRate, o.latencyItems, size);
    await waitUntil(() => recorder.complete(l0, l1), 5000);
    const lDelivered = recorder.delivered - d0;
    const samples = recorder.lastNodeLatencies(l0, l1);
    const finite = samples.filter((x) => Number.isFinite(x));
    const latency = {
      items: o.latencyItems,
      rate: o.latencyRate,
      delivered: lDelivered,
      expected: o.latencyItems * (driver.nodes - 1),
      p50Ms: percentile(finite, 50),
      p99Ms: percentile(finite, 99),
      maxMs: finite.length ? Math.max(...finite) : NaN,
      samples,
      copiesPerDelivery: (driver.copiesSent() - copies0) / Math.max(1, lDelivered),
      cpuUsPerDelivery: (cpuUs() - cpu0) / Math.max(1, lDelivered),
    };
    if (results.length === 0) o.afterLatency?.();
    o.log(
      `  ${size} B @ ${o.latencyRate} msg/s: delivered ${lDelivered}/${latency.expected}, last-node p50 ${latency.p50Ms.toFixed(1)} ms` +
        ` p99 ${latency.p99Ms.toFixed(1)} ms max ${latency.maxMs.toFixed(1)} ms, ${latency.copiesPerDelivery.toFixed(2)} copies/delivery`,
    );

    const sweep: SweepStep[] = [];
    let drained = true;
    const step = async (rate: number): Promise<SweepStep> => {
      const count = Math.max(1, Math.round(rate * o.stepSeconds));
      const d = recorder.delivered;
      const c = cpuUs();
      const t0 = performance.now();
      const [s0, s1] = await publishAt(rate, count, size);
      const windowSec = (performance.now() - t0) / 1000;
      const inWindow = recorder.delivered - d;
      const cpuInWindow = cpuUs() - c;
      const expected = count * (driver.nodes - 1);
      const complete = await waitUntil(() => recorder.complete(s0, s1), o.graceMs);
      const lat = recorder.lastNodeLatencies(s0, s1).filter((x) => Number.isFinite(x));
      const result: SweepStep = {
        offered: rate,
        deliveriesPerSec: inWindow / windowSec,
        delivered: recorder.delivered - d,
        expected,
        p99Ms: percentile(lat, 99),
        cpuUsPerDelivery: cpuInWindow / Math.max(1, inWindow),
        sustained: complete && inWindow >= 0.95 * expected && windowSec <= 1.1 * o.stepSeconds + 0.05,
      };
      sweep.push(result);
      o.log(
        `  ${size} B sweep ${rate.toFixed(0)} msg/s: ${result.sustained ? "sustained" : "behind   "} ` +
          `${result.deliveriesPerSec.toFixed(0)} deliveries/s in window, ${result.delivered}/${expected} delivered, p99 ${result.p99Ms.toFixed(0)} ms`,
      );
      // Let a backlog drain so the next step starts from an idle network; one that never drains ends the sweep.
      drained = complete || (await waitUntil(() => recorder.complete(s0, s1), 15_000, 20));
      await sleep(100);
      return result;
    };

    let pass = 0;
    let fail = Infinity;
    for (let rate = o.sweepStart; rate <= o.sweepMax; rate *= 2) {
      if ((await step(rate)).sustained) pass = rate;
      else {
        fail = rate;
        break;
      }
    }
    for (let i = 0; i < 2 && drained && Number.isFinite(fail) && pass > 0; i++) {
      const mid = Math.round((pass + fail) / 2);
      if ((await step(mid)).sustained) pass = mid;
      else fail = mid;
    }
    const best = sweep.filter((s) => s.sustained && s.offered === pass)[0];
    results.push({
      size,
      latency,
      sweep,
      maxSustainedMsgPerSec: pass,
      maxSustainedDeliveriesPerSec: pass * (driver.nodes - 1),
      cpuUsPerDeliveryAtMax: best?.cpuUsPerDelivery ?? NaN,
    });
  }
  return results;
}

/** Resident memory after a full GC, bytes. */
export function rssAfterGc(): number {
  const g = globalThis as { Bun?: { gc(sync: boolean): void }; gc?: () => void };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.(); // node --expose-gc
  return process.memoryUsage().rss;
}

export function runtimeName(): string {
  const g = globalThis as { Bun?: { version: string } };
  return g.Bun ? `bun ${g.Bun.version}` : `node ${process.versions.node}`;
}

/** One run's result from what every driver measures the same way (memory in bytes from rssAfterGc). */
export function runResult(r: {
  impl: string;
  variant: string;
  nodes: number;
  links: number;
  setupMs: number;
  rss: { base: number; afterLatency: number; peak: number };
  sizes: SizeResult[];
  recorder: Recorder;
  duplicatesAre: string;
}): RunResult {
  const mb = (b: number) => b / (1 << 20);
  const { recorder } = r;
  return {
    impl: r.impl,
    variant: r.variant,
    nodes: r.nodes,
    links: r.links,
    cores: cpus().length,
    runtime: runtimeName(),
    setupMs: r.setupMs,
    rssBaseMB: mb(r.rss.base),
    rssPerNodeMB: mb(r.rss.afterLatency - r.rss.base) / r.nodes,
    peakRssPerNodeMB: mb(Math.max(r.rss.peak, r.rss.afterLatency) - r.rss.base) / r.nodes,
    sizes: r.sizes,
    notes: recorder.invalid || recorder.duplicates ? [`invalid ${recorder.invalid}, ${r.duplicatesAre} ${recorder.duplicates}`] : [],
  };
}

export interface RunResult {
  impl: string;
  variant: string;
  nodes: number;
  links: number;
  cores: number;
  runtime: string;
  setupMs: number;
  rssBaseMB: number;
  rssPerNodeMB: number;
  peakRssPerNodeMB: number;
  sizes: SizeResult[];
  notes: string[];
}
