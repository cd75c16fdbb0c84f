/**
 * The item cache: the last `cache_size` validated items, each with the TTL the NEXT peer should receive, so a newly
 * linked peer can be sent recent knowledge. Oldest goes first. Insertion-ordered Map: O(1) put/has, O(n) listing;
 * the keys also sit in a ring in insertion order, so evicting the oldest needs no iterator (a put per validated item).
 * Must never hold an item that may not travel further (callers do not put those), never exceed its capacity, and
 * never reorder an item that is put again (its place is the time it was first cached).
 */
import type { GossipItem } from "./ports.ts";
import { idKey } from "./item-id.ts";

export class ItemCache {
  readonly capacity: number;
  private readonly items = new Map<string, GossipItem>();
  /** The cached keys, oldest at `oldest` (a ring of `capacity`: keys leave only by eviction, oldest first). */
  private readonly ring: string[] = [];
  private oldest = 0;

  constructor(capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(`ItemCache: capacity must be an integer ≥ 0, got ${capacity}`);
    }
    this.capacity = capacity;
  }

  get size(): number {
    return this.items.size;
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  /** Caches `item` (its `ttl` is the TTL to send onwards) under `key` (its idKey, if the caller has it). Returns
   *  false if already cached or capacity is 0. */
  put(item: GossipItem, key: string = idKey(item.id)): boolean {
    if (this.capacity === 0) return false;
    if (this.items.has(key)) return false;
    if (this.items.size < this.capacity) {
      this.ring.push(key);
    } else {
      this.items.delete(this.ring[this.oldest]!);
      this.ring[this.oldest] = key;
      this.oldest = (this.oldest + 1) % this.capacity;
    }
    this.items.set(key, item);
    return true;
  }

  /** Cached items, oldest first. */
  list(): GossipItem[] {
    return [...this.items.values()];
  }
}
