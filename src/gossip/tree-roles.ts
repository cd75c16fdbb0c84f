/**
 * Link roles of the broadcast trees (src/gossip/plumtree.ts) per data type: which peers speak trees, which links are
 * lazy for a type, and each link's run of duplicates. Pure bookkeeping: Plumtree decides what to do with it.
 * Must never: hold more than `maxTypes` types, or keep state for a peer after `remove`.
 */
import type { PeerId } from "./ports.ts";

/**
 * Link roles per data type: the peers that speak trees, and per type the links that are lazy (eager is the default,
 * as a new link is eager). At most `maxTypes` types, least recently used first out (its links are eager again).
 */
export class TreeRoles {
  private readonly speakers = new Set<PeerId>();
  private readonly lazy = new Map<number, Set<PeerId>>();
  /** Per type, each link's duplicates since its last first copy (only non-zero counts are kept). */
  private readonly duplicates = new Map<number, Map<PeerId, number>>();

  constructor(private readonly maxTypes: number) {}

  add(peer: PeerId): void {
    this.speakers.add(peer);
  }

  remove(peer: PeerId): void {
    this.speakers.delete(peer);
    for (const set of this.lazy.values()) set.delete(peer);
    for (const counts of this.duplicates.values()) counts.delete(peer);
  }

  /** A first copy from the peer: its run of duplicates ends. */
  firstCopy(peer: PeerId, dataType: number): void {
    this.duplicates.get(dataType)?.delete(peer);
  }

  /** A duplicate from the peer: the length of its run of duplicates, this one included. */
  duplicate(peer: PeerId, dataType: number): number {
    let counts = this.duplicates.get(dataType);
    if (counts === undefined) {
      counts = new Map();
      this.duplicates.set(dataType, counts);
      while (this.duplicates.size > this.maxTypes) this.duplicates.delete(this.duplicates.keys().next().value as number);
    }
    const n = (counts.get(peer) ?? 0) + 1;
    counts.set(peer, n);
    return n;
  }

  speaks(peer: PeerId): boolean {
    return this.speakers.has(peer);
  }

  isEager(peer: PeerId, dataType: number): boolean {
    return !this.speakers.has(peer) || !(this.lazy.get(dataType)?.has(peer) ?? false);
  }

  eagerForAny(peer: PeerId): boolean {
    if (!this.speakers.has(peer)) return true;
    for (const set of this.lazy.values()) if (!set.has(peer)) return true;
    return this.lazy.size === 0;
  }

  /** Lazy for some type (leaving out the types for which `eagerAnyway` says the link is eager all the same). */
  lazyForAny(peer: PeerId, eagerAnyway?: (dataType: number) => boolean): boolean {
    for (const [dataType, set] of this.lazy) if (set.has(peer) && !(eagerAnyway?.(dataType) ?? false)) return true;
    return false;
  }

  set(peer: PeerId, dataType: number, eager: boolean): void {
    let set = this.lazy.get(dataType);
    if (set === undefined) {
      if (eager) return;
      set = new Set();
    }
    this.lazy.delete(dataType); // re-insert: the map's order is least recently used first
    this.lazy.set(dataType, set);
    if (eager) set.delete(peer);
    else set.add(peer);
    this.duplicates.get(dataType)?.delete(peer);
    while (this.lazy.size > this.maxTypes) this.lazy.delete(this.lazy.keys().next().value as number);
  }
}
