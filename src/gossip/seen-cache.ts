/**
 * The seen cache: IDs of items this node has already handled, bounded by count and by age, evicting oldest.
 * Every operation is amortised O(1): the keys in insertion order (util/fifo.ts: a Map's own order costs O(capacity)
 * per eviction in JavaScriptCore) put the oldest at the head, and expiry is done lazily from there. Must never grow
 * past `maxEntries` and never refresh an entry's age (a duplicate arriving does not make the original younger, so an
 * ID is forgotten exactly `maxAgeMs` after it was first seen).
 */
import { SEEN_CACHE_MAX_AGE_MS, SEEN_CACHE_MAX_ENTRIES } from "../defaults.ts";
import { Fifo } from "../util/fifo.ts";

export interface SeenCacheOptions {
  maxEntries?: number;
  maxAgeMs?: number;
  /** Milliseconds, monotonic non-decreasing (inject a fake clock in tests). */
  now?: () => number;
}

export class SeenCache {
  readonly maxEntries: number;
  readonly maxAgeMs: number;
  private readonly now: () => number;
  /** key → time first seen. Insertion order = age order because `now` does not go backwards. */
  private readonly entries = new Map<string, number>();
  /** The keys of `entries`, oldest first (nothing is removed except from the head, so the two stay alike). */
  private readonly order = new Fifo<string>();
  /** When the oldest entry was seen, or earlier (Infinity: empty). Lets `expire` return at once when nothing is due:
   *  `has` runs for every copy received. */
  private oldestAt = Infinity;

  constructor(options: SeenCacheOptions = {}) {
    this.maxEntries = options.maxEntries ?? SEEN_CACHE_MAX_ENTRIES;
    this.maxAgeMs = options.maxAgeMs ?? SEEN_CACHE_MAX_AGE_MS;
    this.now = options.now ?? (() => performance.now());
    if (!(this.maxEntries >= 1)) throw new RangeError(`SeenCache: maxEntries must be ≥ 1, got ${this.maxEntries}`);
    if (!(this.maxAgeMs > 0)) throw new RangeError(`SeenCache: maxAgeMs must be > 0, got ${this.maxAgeMs}`);
  }

  get size(): number {
    this.expire();
    return this.entries.size;
  }

  has(key: string): boolean {
    this.expire();
    return this.entries.has(key);
  }

  /** Records `key`; returns false if it was already there (its age is left unchanged). */
  add(key: string): boolean {
    this.expire();
    if (this.entries.has(key)) return false;
    const now = this.now();
    this.entries.set(key, now);
    this.order.push(key);
    if (this.entries.size === 1) this.oldestAt = now;
    // At most one eviction per add, since the bound held before it. (oldestAt stays a lower bound: the next expiry
    // that reaches it walks from the new head.)
    if (this.entries.size > this.maxEntries) this.entries.delete(this.order.shift()!);
    return true;
  }

  /** Drops expired entries from the head. Each entry is removed once, so the total work is O(adds). */
  private expire(): void {
    const cutoff = this.now() - this.maxAgeMs;
    if (this.oldestAt > cutoff) return;
    this.oldestAt = Infinity;
    while (this.order.length > 0) {
      const key = this.order.peek()!;
      const seenAt = this.entries.get(key)!;
      if (seenAt > cutoff) {
        this.oldestAt = seenAt;
        break;
      }
      this.order.shift();
      this.entries.delete(key);
    }
  }
}
