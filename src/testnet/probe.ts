/**
 * Probe items, shared by the testnet and the benchmarks (which also run under Node): their format (a sequence number,
 * origin and send time, and a filler a validator can check) and last-node latency bookkeeping. Pure: no I/O, no
 * runtime-specific APIs.
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

/** Last-node latency bookkeeping for probe items: which items reached every other node, and how fast. */
export class ProbeTracker {
  private readonly sent: number[] = [];
  private readonly got: number[] = [];
  private delivered = 0;
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

  /** Deliveries of the probes published with a sequence number ≥ `first` (e.g. those announced after a warm-up). */
  deliveredFrom(first: number): number {
    let sum = 0;
    for (let seq = first; seq < this.got.length; seq++) sum += this.got[seq] ?? 0;
    return sum;
  }

  /** Probes published, and deliveries of published probes (a node's module notified of one). */
  stats(): { published: number; delivered: number } {
    return { published: this.sent.length, delivered: this.delivered };
  }
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

