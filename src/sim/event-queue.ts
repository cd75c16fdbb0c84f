/**
 * The simulator's one event queue: a min-heap (4-ary) keyed by (time, sequence number), so events due at the same
 * virtual time run in the order they were scheduled and a run is reproducible event for event.
 *
 * Events live in slots: kind and number side by side in one typed array, the two object references side by side in
 * one array, so an event's payload is two cache lines, not four. The heap itself is three arrays in heap order (time,
 * sequence number, slot), so a sift compares keys that sit side by side (a node's four children share a cache line
 * or two) instead of reading them through the slot, and allocates nothing. Must never: order by anything but
 * (time, seq), scan the queue, or hand out a slot that is still queued.
 */

export interface QueuedEvent {
  time: number;
  kind: number;
  a: unknown;
  b: unknown;
  x: number;
}

export class EventQueue {
  /** Per slot: kind, x. */
  private nums: Float64Array = new Float64Array(2 * 1024);
  /** Per slot: a, b. */
  private refs: unknown[] = new Array<unknown>(2 * 1024).fill(undefined);
  private slotCapacity = 1024;
  /** The heap, in heap order: position 0 is the earliest event (its time, its sequence number, its slot). */
  private heapTimes: Float64Array = new Float64Array(1024);
  private heapSeqs: Float64Array = new Float64Array(1024);
  private heapSlots: Int32Array = new Int32Array(1024);
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
    this.nums[2 * slot] = kind;
    this.nums[2 * slot + 1] = x;
    this.refs[2 * slot] = a;
    this.refs[2 * slot + 1] = b;
    this.scheduled++;
    if (this.count === this.heapSlots.length) this.growHeap();
    this.siftUp(this.count++, time, this.nextSeq++, slot);
  }

  /** Time of the earliest event (Infinity when empty). */
  peekTime(): number {
    return this.count === 0 ? Infinity : this.heapTimes[0]!;
  }

  /**
   * Removes the earliest event and copies it into `out` (reused by the caller: no allocation per event). Returns
   * false when the queue is empty.
   */
  pop(out: QueuedEvent): boolean {
    if (this.count === 0) return false;
    const slot = this.heapSlots[0]!;
    out.time = this.heapTimes[0]!;
    out.kind = this.nums[2 * slot]! | 0;
    out.x = this.nums[2 * slot + 1]!;
    out.a = this.refs[2 * slot];
    out.b = this.refs[2 * slot + 1];
    this.refs[2 * slot] = undefined;
    this.refs[2 * slot + 1] = undefined;
    this.releaseSlot(slot);
    const last = --this.count;
    if (last > 0) this.siftDown(this.heapTimes[last]!, this.heapSeqs[last]!, this.heapSlots[last]!);
    return true;
  }

  // A 4-ary heap: half the depth of a binary one. The entry being placed is held in locals and written once.
  private siftUp(pos: number, time: number, seq: number, slot: number): void {
    const times = this.heapTimes;
    const seqs = this.heapSeqs;
    const slots = this.heapSlots;
    while (pos > 0) {
      const parent = (pos - 1) >> 2;
      const pt = times[parent]!;
      if (pt < time || (pt === time && seqs[parent]! < seq)) break;
      times[pos] = pt;
      seqs[pos] = seqs[parent]!;
      slots[pos] = slots[parent]!;
      pos = parent;
    }
    times[pos] = time;
    seqs[pos] = seq;
    slots[pos] = slot;
  }

  /** Places (time, seq, slot) from the root down (the root's entry has been taken). */
  private siftDown(time: number, seq: number, slot: number): void {
    const times = this.heapTimes;
    const seqs = this.heapSeqs;
    const slots = this.heapSlots;
    const n = this.count;
    let pos = 0;
    for (;;) {
      const first = 4 * pos + 1;
      if (first >= n) break;
      let child = first;
      let ct = times[first]!;
      const end = first + 4 < n ? first + 4 : n;
      for (let c = first + 1; c < end; c++) {
        const t = times[c]!;
        if (t < ct || (t === ct && seqs[c]! < seqs[child]!)) {
          child = c;
          ct = t;
        }
      }
      if (time < ct || (time === ct && seq < seqs[child]!)) break;
      times[pos] = ct;
      seqs[pos] = seqs[child]!;
      slots[pos] = slots[child]!;
      pos = child;
    }
    times[pos] = time;
    seqs[pos] = seq;
    slots[pos] = slot;
  }

  private growHeap(): void {
    const size = this.heapSlots.length * 2;
    this.heapTimes = growF(this.heapTimes, size);
    this.heapSeqs = growF(this.heapSeqs, size);
    this.heapSlots = grow(this.heapSlots);
  }

  private takeSlot(): number {
    if (this.freeCount > 0) return this.free[--this.freeCount]!;
    if (this.slotsUsed === this.slotCapacity) {
      this.slotCapacity *= 2;
      this.nums = growF(this.nums, 2 * this.slotCapacity);
      const refs = this.refs;
      for (let i = refs.length; i < 2 * this.slotCapacity; i++) refs.push(undefined);
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
