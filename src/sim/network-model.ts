/**
 * The simulator's model of the wire between nodes: one-way latency from per-node coordinates (or a constant), jitter
 * per frame, optional loss (as a TCP retransmission delay, since links are TCP streams and lose nothing), an optional
 * per-node uplink with a FIFO send queue (so redundant copies cost time), and the proof-of-work solve time of a dial.
 * Pure arithmetic on numbers it is given plus its own seeded randomness: it knows nothing of nodes, links or the core.
 *
 * Must never: reorder frames of one direction of one link (TCP delivers in order), or draw from any randomness but
 * the one it was given.
 */
import {
  SIM_ACCESS_DELAY_MAX_MS,
  SIM_ACCESS_DELAY_MIN_MS,
  SIM_DISTANCE_MS,
  SIM_RETRANSMIT_MIN_MS,
} from "../defaults.ts";

/** A pair's one-way latency (without jitter), in ms. */
export interface LatencyModel {
  /** Gives node `index` its place (coordinates); called once per node, in index order. */
  place(index: number): void;
  oneWayMs(a: number, b: number): number;
  readonly description: string;
}

/**
 * Nodes on a unit square plus an access delay each: one-way = access(a) + access(b) + SIM_DISTANCE_MS × distance.
 * Access delays are skewed (most nodes close to the minimum, a few on slow last miles), which spreads RTTs over about
 * 10–290 ms with the median near 100 ms (test/sim/network-model.test.ts measures it).
 */
export class CoordinateLatency implements LatencyModel {
  readonly description = "coordinates";
  /** Per node x, y, access delay side by side (one cache line per node: this is read for every frame). */
  private points: Float64Array = new Float64Array(3 * 1024);

  constructor(private readonly random: () => number) {}

  place(index: number): void {
    if (3 * index + 3 > this.points.length) this.points = grown(this.points, Math.max(3 * index + 3, this.points.length * 2));
    const p = this.points;
    p[3 * index] = this.random();
    p[3 * index + 1] = this.random();
    const u = this.random();
    p[3 * index + 2] = SIM_ACCESS_DELAY_MIN_MS + (SIM_ACCESS_DELAY_MAX_MS - SIM_ACCESS_DELAY_MIN_MS) * u * u * u;
  }

  oneWayMs(a: number, b: number): number {
    const p = this.points;
    const dx = p[3 * a]! - p[3 * b]!;
    const dy = p[3 * a + 1]! - p[3 * b + 1]!;
    return p[3 * a + 2]! + p[3 * b + 2]! + SIM_DISTANCE_MS * Math.sqrt(dx * dx + dy * dy);
  }
}

/** Every pair at the same one-way latency. */
export class FixedLatency implements LatencyModel {
  readonly description: string;
  constructor(private readonly ms: number) {
    this.description = `fixed:${ms}`;
  }
  place(): void {}
  oneWayMs(): number {
    return this.ms;
  }
}

/** `coordinates` (the default) or `fixed:MS` (MS = one-way latency in ms, so RTT = 2 × MS). */
export function parseLatency(spec: string, random: () => number): LatencyModel {
  if (spec === "coordinates" || spec === "default") return new CoordinateLatency(random);
  const m = /^fixed:(\d+(?:\.\d+)?)$/.exec(spec);
  if (m) return new FixedLatency(Number(m[1]));
  throw new RangeError(`--latency: expected "coordinates" or "fixed:MS", got "${spec}"`);
}

export interface WireOptions {
  latency: LatencyModel;
  /** Extra delay per frame, uniform in [0, jitter × one-way]. */
  jitter: number;
  /** Probability that a frame is lost once and retransmitted (TCP). */
  loss: number;
  /** Uplink of every node in bit/s; Infinity = unlimited. */
  uplinkBitsPerSecond: number;
  random: () => number;
}

/** One direction of one link: the in-order constraint and, with a finite uplink, what is still queued on it. */
export interface Direction {
  /** Arrival time of the last frame sent this way: the next may not arrive earlier (TCP order). */
  lastArrival: number;
  /** Departure times and sizes of frames not yet on the wire (FIFO), when the uplink is finite. */
  queued: number[];
  queuedBytes: number;
}

export function newDirection(): Direction {
  return { lastArrival: 0, queued: [], queuedBytes: 0 };
}

export class Wire {
  /** Per node: when its uplink is free again (ms). */
  private uplinkFreeAt: Float64Array = new Float64Array(1024);
  readonly unlimited: boolean;
  private readonly msPerByte: number;

  constructor(private readonly options: WireOptions) {
    this.unlimited = !Number.isFinite(options.uplinkBitsPerSecond);
    this.msPerByte = this.unlimited ? 0 : (8 * 1000) / options.uplinkBitsPerSecond;
  }

  get latency(): LatencyModel {
    return this.options.latency;
  }

  place(index: number): void {
    this.options.latency.place(index);
    if (index >= this.uplinkFreeAt.length) this.uplinkFreeAt = grown(this.uplinkFreeAt, Math.max(index + 1, this.uplinkFreeAt.length * 2));
  }

  rttMs(a: number, b: number): number {
    return 2 * this.options.latency.oneWayMs(a, b);
  }

  /** Bytes still queued on `dir` at `now` (0 with an unlimited uplink): the link's send-buffer occupancy. */
  backlog(dir: Direction, now: number): number {
    const q = dir.queued;
    let head = 0;
    while (head < q.length && q[head]! <= now) {
      dir.queuedBytes -= q[head + 1]!;
      head += 2;
    }
    if (head > 0) q.splice(0, head);
    return dir.queuedBytes;
  }

  /**
   * When a frame of `bytes` sent by `from` to `to` at `now` arrives. `sameFrame`: it rides in the frame sent just
   * before on this direction in the same turn (a Batch), so it needs no own jitter or loss draw.
   */
  arrival(from: number, to: number, bytes: number, now: number, dir: Direction, sameFrame: boolean): number {
    let departs = now;
    if (!this.unlimited) {
      departs = Math.max(now, this.uplinkFreeAt[from]!) + bytes * this.msPerByte;
      this.uplinkFreeAt[from] = departs;
      dir.queued.push(departs, bytes);
      dir.queuedBytes += bytes;
    }
    const oneWay = this.options.latency.oneWayMs(from, to);
    let at = departs + oneWay;
    if (!sameFrame) {
      if (this.options.jitter > 0) at += this.options.jitter * oneWay * this.options.random();
      // A lost segment is resent after the retransmission timeout (at least 200 ms on Linux, about an RTT more).
      if (this.options.loss > 0 && this.options.random() < this.options.loss) at += SIM_RETRANSMIT_MIN_MS + 2 * oneWay;
    }
    if (at < dir.lastArrival) at = dir.lastArrival;
    dir.lastArrival = at;
    return at;
  }

  /** A control packet's one-way trip (TCP handshake, RST): latency only, no uplink queue. */
  trip(from: number, to: number): number {
    return this.options.latency.oneWayMs(from, to);
  }
}

/**
 * Proof-of-work solve time in ms: the number of nonces tried is geometric with p = 2^-difficulty, which for these
 * difficulties is an exponential with mean 2^difficulty tries; divided by the solver's hash rate.
 */
export function powSolveMs(difficulty: number, hashesPerSecond: number, random: () => number): number {
  if (difficulty <= 0) return 0;
  const tries = -Math.log(1 - random()) * 2 ** difficulty;
  return (tries / hashesPerSecond) * 1000;
}

function grown(a: Float64Array, size: number): Float64Array {
  const b = new Float64Array(size);
  b.set(a);
  return b;
}
