/**
 * The testnet's pure parts, shared with the benchmarks (which also run under Node): the probe item format, the seeded
 * choice of whom each node dials, and last-node latency bookkeeping. No I/O, no runtime-specific APIs.
 */

/** The data type the testnet's own probe items use (announce-rate, bench): "7E57". */
export const PROBE_DATA_TYPE = 0x7e57;
/** seq u32 ‖ origin node u16 ‖ sent-at f64 (performance.now() ms of this process) ‖ filler. */
export const PROBE_HEADER_BYTES = 14;

export interface Probe {
  seq: number;
  origin: number;
  sentAt: number;
}

/** A probe item of `size` bytes (≥ PROBE_HEADER_BYTES) whose filler depends on seq, so a receiver can check it. */
export function encodeProbe(probe: Probe, size: number): Uint8Array {
  if (!Number.isInteger(size) || size < PROBE_HEADER_BYTES) throw new RangeError(`probe size must be ≥ ${PROBE_HEADER_BYTES}`);
  const data = new Uint8Array(size);
  const view = new DataView(data.buffer);
  view.setUint32(0, probe.seq);
  view.setUint16(4, probe.origin);
  view.setFloat64(6, probe.sentAt);
  for (let i = PROBE_HEADER_BYTES; i < size; i++) data[i] = (probe.seq + i) & 0xff;
  return data;
}

/** The probe in `data`, or undefined if it is not a well-formed probe (wrong size or filler). */
export function readProbe(data: Uint8Array, size?: number): Probe | undefined {
  if (data.length < PROBE_HEADER_BYTES || (size !== undefined && data.length !== size)) return undefined;
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  const seq = view.getUint32(0);
  for (let i = PROBE_HEADER_BYTES; i < data.length; i++) if (data[i] !== ((seq + i) & 0xff)) return undefined;
  return { seq, origin: view.getUint16(4), sentAt: view.getFloat64(6) };
}

/** Small seeded PRNG (mulberry32): the same seed gives the same graph. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** For each node, `k` distinct random others to dial (fewer if there are fewer others). */
export function randomDials(n: number, k: number, random: () => number): number[][] {
  return Array.from({ length: n }, (_, i) => {
    const others = Array.from({ length: n - 1 }, (_, j) => (j < i ? j : j + 1));
    for (let j = 0; j < Math.min(k, others.length); j++) {
      const r = j + Math.floor(random() * (others.length - j));
      [others[j], others[r]] = [others[r]!, others[j]!];
    }
    return others.slice(0, Math.min(k, others.length));
  });
}

/** Last-node latency bookkeeping for probe items: which items reached every other node, and how fast. */
export class ProbeTracker {
  readonly sent: number[] = [];
  private readonly got: number[] = [];
  delivered = 0;
  /** Last-node latencies (ms) of items completed since the last takeCompleted(). */
  private completed: number[] = [];

  constructor(readonly expectedPerItem: number) {}

  published(seq: number, at: number): void {
    this.sent[seq] = at;
    this.got[seq] = 0;
  }

  received(probe: Probe, at: number): void {
    if (this.got[probe.seq] === undefined) return;
    this.delivered++;
    if (++this.got[probe.seq]! === this.expectedPerItem) this.completed.push(at - probe.sentAt);
  }

  takeCompleted(): number[] {
    const out = this.completed;
    this.completed = [];
    return out;
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

