/**
 * The simulator's one event queue: a min-heap (4-ary) keyed by (time, sequence number), so events due at the same
 * virtual time run in the order they were scheduled and a run is reproducible event for event.
 *
 * Events live in slots of parallel arrays (kind, two object references, one number); the heap orders slot numbers,
 * so a sift moves one int and allocates nothing. Must never: order by anything but (time, seq), scan the queue, or
 * hand out a slot that is still queued.
 */

export interface QueuedEvent {
  time: number;
  kind: number;
  a: unknown;
  b: unknown;
  x: number;
}

export class EventQueue {
  private times: Float64Array = new Float64Array(1024);
  private seqs: Float64Array = new Float64Array(1024);
  private kinds: Uint8Array = new Uint8Array(1024);
  private nums: Float64Array = new Float64Array(1024);
  private refA: unknown[] = new Array(1024);
  private refB: unknown[] = new Array(1024);
  /** heap[0] is the slot of the earliest event. */
  private heap: Int32Array = new Int32Array(1024);
  private count = 0;
  private free: Int32Array = new Int32Array(1024);
  private freeCount = 0;
  private slotsUsed = 0;
  private nextSeq = 0;
  /** Events ever scheduled. */
  scheduled = 0;

  get size(): number {
    return this.count;
  }

  /** Schedules an event; ties in `time` keep scheduling order. */
  push(time: number, kind: number, a: unknown = undefined, b: unknown = undefined, x = 0): void {
    if (!(time === time)) throw new RangeError("EventQueue: time is NaN");
    const slot = this.takeSlot();
    this.times[slot] = time;
    this.seqs[slot] = this.nextSeq++;
    this.kinds[slot] = kind;
    this.refA[slot] = a;
    this.refB[slot] = b;
    this.nums[slot] = x;
    this.scheduled++;
    if (this.count === this.heap.length) this.heap = grow(this.heap);
    this.heap[this.count] = slot;
    this.siftUp(this.count++);
  }

  /** Time of the earliest event (Infinity when empty). */
  peekTime(): number {
    return this.count === 0 ? Infinity : this.times[this.heap[0]!]!;
  }

  /**
   * Removes the earliest event and copies it into `out` (reused by the caller: no allocation per event). Returns
   * false when the queue is empty.
   */
  pop(out: QueuedEvent): boolean {
    if (this.count === 0) return false;
    const slot = this.heap[0]!;
    out.time = this.times[slot]!;
    out.kind = this.kinds[slot]!;
    out.a = this.refA[slot];
    out.b = this.refB[slot];
    out.x = this.nums[slot]!;
    this.refA[slot] = undefined;
    this.refB[slot] = undefined;
    this.releaseSlot(slot);
    const last = this.heap[--this.count]!;
    if (this.count > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return true;
  }

  private less(i: number, j: number): boolean {
    const ti = this.times[i]!;
    const tj = this.times[j]!;
    return ti < tj || (ti === tj && this.seqs[i]! < this.seqs[j]!);
  }

  // A 4-ary heap: half the depth of a binary one, and a node's children share a cache line of `heap`.
  private siftUp(pos: number): void {
    const heap = this.heap;
    const slot = heap[pos]!;
    while (pos > 0) {
      const parent = (pos - 1) >> 2;
      const p = heap[parent]!;
      if (!this.less(slot, p)) break;
      heap[pos] = p;
      pos = parent;
    }
    heap[pos] = slot;
  }

  private siftDown(pos: number): void {
    const heap = this.heap;
    const n = this.count;
    const slot = heap[pos]!;
    for (;;) {
      const first = 4 * pos + 1;
      if (first >= n) break;
      let child = first;
      const end = Math.min(first + 4, n);
      for (let c = first + 1; c < end; c++) if (this.less(heap[c]!, heap[child]!)) child = c;
      if (!this.less(heap[child]!, slot)) break;
      heap[pos] = heap[child]!;
      pos = child;
    }
    heap[pos] = slot;
  }

  private takeSlot(): number {
    if (this.freeCount > 0) return this.free[--this.freeCount]!;
    if (this.slotsUsed === this.times.length) {
      const size = this.times.length * 2;
      this.times = growF(this.times, size);
      this.seqs = growF(this.seqs, size);
      this.nums = growF(this.nums, size);
      const kinds = new Uint8Array(size);
      kinds.set(this.kinds);
      this.kinds = kinds;
      this.refA.length = size;
      this.refB.length = size;
    }
    return this.slotsUsed++;
  }

  private releaseSlot(slot: number): void {
    if (this.freeCount === this.free.length) this.free = grow(this.free);
    this.free[this.freeCount++] = slot;
  }
}

function grow(a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

function growF(a: Float64Array, size: number): Float64Array {
  const b = new Float64Array(size);
  b.set(a);
  return b;
}
