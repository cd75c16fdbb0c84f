/**
 * What the simulator measures: messages and bytes per kind (warm-up apart from the measured phase), and per published
 * item its publisher, publication time, each node's first reception (with its hop count, kept here because the wire
 * carries none) and each honest subscriber's delivery. Turns them into the figures of the result JSON.
 *
 * Must never: influence the run (it only records), or count a node as expected that was not present and live from
 * an item's publication to the end of the run.
 */
import { MESSAGE_KINDS, type MessageKind } from "./wire-sizes.ts";

export interface ItemTrack {
  seq: number;
  data: Uint8Array;
  publisher: number;
  publishedAt: number;
  /** Nodes that existed at publication: later ones are never expected to get it. */
  nodeCount: number;
  /** Only nodes on this partition side are expected (-1: all sides). */
  side: number;
  phase: string;
  /** Per node: delivery time to its module (NaN: none). */
  deliveredAt: Float64Array;
  /** Per node: hops of its first reception (0 at the publisher; NO_HOPS: not received). */
  hops: Uint16Array;
  deliveries: number;
  /** Payload messages carrying this item (every copy, to anyone). */
  copies: number;
}

export const NO_HOPS = 0xffff;

export interface Counters {
  messages: Record<MessageKind, number>;
  bytes: Record<MessageKind, number>;
}

export function newCounters(): Counters {
  const zero = () => Object.fromEntries(MESSAGE_KINDS.map((k) => [k, 0])) as Record<MessageKind, number>;
  return { messages: zero(), bytes: zero() };
}

/** Which nodes an item is expected at: honest subscribers, present at publication, alive until the end. */
export interface Population {
  isExpected(node: number, item: ItemTrack): boolean;
}

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

export interface DeliveryFigures {
  expected: number;
  delivered: number;
  delivered_ratio: number;
  items_fully_delivered: number;
  copies_per_delivery: number;
  rmr: number;
  latency_ms: Percentiles;
  /** Delivery latency at the quantiles 0, 0.05, …, 1 (for the CDF chart). */
  latency_cdf_ms: number[];
  last_delivery_ms: Percentiles;
  ldh: { mean: number; max: number };
}

export class SimMetrics {
  readonly warmup = newCounters();
  readonly measured = newCounters();
  /** Set at the first publication: counters from then on are the measured phase. */
  counting: Counters = this.warmup;
  readonly items: ItemTrack[] = [];
  private readonly byData = new Map<Uint8Array, ItemTrack>();
  /** Time of the latest delivery (-Infinity: none yet). */
  lastDeliveryAt = -Infinity;
  honestBansOfHonest = 0;
  honestBansOfAdversaries = 0;

  startMeasuring(): void {
    this.counting = this.measured;
  }

  count(kind: MessageKind, bytes: number, messages = 1): void {
    this.counting.messages[kind] += messages;
    this.counting.bytes[kind] += bytes;
  }

  published(track: Omit<ItemTrack, "deliveredAt" | "hops" | "deliveries" | "copies">): ItemTrack {
    const t: ItemTrack = {
      ...track,
      deliveredAt: new Float64Array(track.nodeCount).fill(NaN),
      hops: new Uint16Array(track.nodeCount).fill(NO_HOPS),
      deliveries: 0,
      copies: 0,
    };
    t.hops[track.publisher] = 0;
    this.items.push(t);
    this.byData.set(track.data, t);
    return t;
  }

  track(data: Uint8Array): ItemTrack | undefined {
    return this.byData.get(data);
  }

  /** A payload copy of `data` arrived at `to` from `from`: the first one sets `to`'s hop count. */
  arrived(track: ItemTrack, from: number, to: number): void {
    if (to >= track.nodeCount || track.hops[to] !== NO_HOPS) return;
    const h = from < track.nodeCount ? track.hops[from]! : NO_HOPS;
    track.hops[to] = h === NO_HOPS ? NO_HOPS - 1 : h + 1;
  }

  delivered(track: ItemTrack, node: number, at: number): void {
    if (node >= track.nodeCount || track.deliveredAt[node] === track.deliveredAt[node]) return;
    track.deliveredAt[node] = at;
    track.deliveries++;
    this.lastDeliveryAt = at;
  }

  /** Every item reached every node `population` expects now (for ending the run early). */
  allDelivered(population: Population): boolean {
    for (const t of this.items) {
      for (let i = 0; i < t.nodeCount; i++) {
        if (population.isExpected(i, t) && !(t.deliveredAt[i]! >= 0)) return false;
      }
    }
    return true;
  }

  figures(population: Population, items: ItemTrack[] = this.items): DeliveryFigures {
    let expected = 0;
    let delivered = 0;
    let full = 0;
    let copies = 0;
    let reachedMinusOne = 0;
    let allDeliveries = 0;
    const latencies: number[] = [];
    const lasts: number[] = [];
    const ldhs: number[] = [];
    for (const t of items) {
      let exp = 0;
      let got = 0;
      let last = NaN;
      let reached = 0;
      let maxHops = 0;
      for (let i = 0; i < t.nodeCount; i++) {
        const h = t.hops[i]!;
        if (h !== NO_HOPS) {
          reached++;
          if (h < NO_HOPS - 1 && h > maxHops) maxHops = h;
        }
        if (!population.isExpected(i, t)) continue;
        exp++;
        const at = t.deliveredAt[i]!;
        if (at >= 0) {
          got++;
          const ms = at - t.publishedAt;
          latencies.push(ms);
          if (!(last >= ms)) last = ms;
        }
      }
      expected += exp;
      delivered += got;
      if (got === exp) full++;
      copies += t.copies;
      allDeliveries += t.deliveries;
      reachedMinusOne += Math.max(0, reached - 1);
      if (last === last) lasts.push(last);
      if (reached > 1) ldhs.push(maxHops);
    }
    return {
      expected,
      delivered,
      delivered_ratio: expected === 0 ? 1 : delivered / expected,
      items_fully_delivered: full,
      copies_per_delivery: allDeliveries === 0 ? 0 : copies / allDeliveries,
      rmr: reachedMinusOne === 0 ? 0 : copies / reachedMinusOne - 1,
      latency_ms: percentiles(latencies),
      latency_cdf_ms: quantiles(latencies, 20),
      last_delivery_ms: percentiles(lasts),
      ldh: { mean: round(mean(ldhs), 3), max: ldhs.length === 0 ? 0 : Math.max(...ldhs) },
    };
  }
}

export function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: 0, p99: 0, max: 0 };
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
  return { p50: round(at(0.5), 1), p99: round(at(0.99), 1), max: round(sorted[sorted.length - 1]!, 1) };
}

/** Values at the quantiles 0, 1/steps, …, 1. */
export function quantiles(values: number[], steps: number): number[] {
  if (values.length === 0) return [];
  const sorted = Float64Array.from(values).sort();
  return Array.from({ length: steps + 1 }, (_, i) => round(sorted[Math.min(sorted.length - 1, Math.floor((i / steps) * (sorted.length - 1)))]!, 1));
}

function mean(values: number[]): number {
  return values.length === 0 ? 0 : values.reduce((a, b) => a + b, 0) / values.length;
}

export function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
