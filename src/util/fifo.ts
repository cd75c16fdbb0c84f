/**
 * A first-in first-out queue on a growable ring: push, peek and shift in O(1).
 *
 * Why not a Map's own order: in JavaScriptCore a fresh `map.keys().next()` (or a `for…of` from the head) skips every
 * slot deleted since the table was last rebuilt, so "evict the oldest" by iterator costs O(capacity) per call (measured
 * here: 0.26 µs at 16 entries, 6 µs at 4,096, 33 µs at 65,536). The bounded tables on the item path keep their
 * insertion order in one of these beside the Map, and delete from the Map by key. Nor an array's shift(): O(length).
 */
export class Fifo<T> {
  private slots: (T | undefined)[];
  private head = 0;
  private count = 0;

  constructor(initialCapacity = 16) {
    this.slots = new Array<T | undefined>(Math.max(2, initialCapacity));
  }

  get length(): number {
    return this.count;
  }

  push(value: T): void {
    if (this.count === this.slots.length) this.grow();
    this.slots[(this.head + this.count) % this.slots.length] = value;
    this.count++;
  }

  /** The oldest value, left in place (undefined when empty). */
  peek(): T | undefined {
    return this.count === 0 ? undefined : this.slots[this.head];
  }

  /** Takes the oldest value out (undefined when empty). */
  shift(): T | undefined {
    if (this.count === 0) return undefined;
    const value = this.slots[this.head];
    this.slots[this.head] = undefined; // let it go
    this.head = (this.head + 1) % this.slots.length;
    this.count--;
    return value;
  }

  clear(): void {
    this.slots = new Array<T | undefined>(16);
    this.head = 0;
    this.count = 0;
  }

  private grow(): void {
    const next = new Array<T | undefined>(this.slots.length * 2);
    for (let i = 0; i < this.count; i++) next[i] = this.slots[(this.head + i) % this.slots.length];
    this.slots = next;
    this.head = 0;
  }
}
