/**
 * Epidemic broadcast trees (Plumtree: Leitão, Pereira, Rodrigues, SRDS 2007) as a state machine on our links. Every
 * link to a peer that speaks trees is eager (full copies) or lazy (announcements of item IDs, batched per peer), per
 * data type: each type has its own tree, because only a type's subscribers relay it (VoidPhone), so a link that is
 * redundant for one type may be the only path for another.
 * A duplicate full copy makes that link lazy (PRUNE); an announced ID that does not arrive in time is asked for
 * (GRAFT), which makes that link eager again and repairs the tree; when an announcement arrives much closer to the
 * origin than the eager copy did, the two links swap roles, so the tree follows the fastest paths. Those are the
 * paper's rules; with peers that speak rooted trees (tree-root.ts) the links' roles come from the rooted tree instead,
 * and GRAFTs there only fetch. GRAFTs are rate-limited either way (under load the tree's copies come late).
 *
 * This module decides roles and timers only: the broadcaster (broadcaster.ts) owns items, validation and sends.
 * Peers that do not speak trees are always eager and are never sent tree messages (they are fed by eager push).
 * Must never: hold more than its bounds (pending IDs, announcers per ID, queued announcements per peer, awaited GRAFT
 * answers), GRAFT an ID the broadcaster already holds, serve a GRAFT flood, or read the process's clock.
 */
import type { PeerId, TreeEntry } from "./ports.ts";
import { TreeRoles } from "./tree-roles.ts";
import { Fifo } from "../util/fifo.ts";
import { TokenBucket } from "../util/token-bucket.ts";
import { TreePromises } from "./tree-promises.ts";
import { RootedTree, type RootAdvert, type RootPlace } from "./tree-root.ts";
import { PlumtreeStats, type PlumtreeOptions } from "./plumtree-types.ts";

export { PlumtreeStats, type PlumtreeOptions };

interface Pending {
  dataType: number;
  /** Peers that announced the ID, in the order heard; the next GRAFT goes to the first one not yet asked. */
  announcers: PeerId[];
  asked: number;
  /** Times every announcer has been asked in turn. */
  rounds: number;
  timer: unknown;
}

/** How an item's first copy reached us (for pruning and the optimisation). */
interface FirstCopy {
  /** Its prefix key (so that the order ring names the entry without a pair per item). */
  key: string;
  peer: PeerId;
  hops: number;
  /** Pushed along the tree (not from near the origin). */
  fromTree: boolean;
  at: number;
  /** When the first copy before it (of another item) arrived. */
  previousAt: number;
}

interface Queue {
  entries: TreeEntry[];
  timer: unknown;
}

export class Plumtree {
  readonly stats = new PlumtreeStats();
  private readonly roles: TreeRoles;
  /** Where rooted trees decide a link's role (a peer that speaks them and told us its place): a tree link is eager,
   *  any other lazy (its GRAFTs only fetch); `roles` then holds only what PRUNEs and empty GRAFTs said. */
  private readonly rooted: RootedTree | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly queues = new Map<PeerId, Queue>();
  /** prefix key → how its first copy came (for pruning and the optimisation), bounded with pending. */
  private readonly firstFrom = new Map<string, FirstCopy>();
  /** `firstFrom`'s entries oldest first (util/fifo.ts says why not the Map's order); one whose record is no longer
   *  the Map's (deleted by the optimisation) is stale and skipped. */
  private readonly firstOrder = new Fifo<FirstCopy>();
  /** When the latest first copy (of any item) arrived. */
  private lastFirstAt = -Infinity;
  private lastFirstKey = "";
  private readonly promises: TreePromises;
  private promiseTimer: unknown = undefined;
  private rootTimer: unknown = undefined;
  /** GRAFTs sent, at most graftRate a second (in bursts of graftBurst). */
  private readonly graftTokens: TokenBucket;

  constructor(private readonly o: PlumtreeOptions) {
    this.roles = new TreeRoles(o.maxTypes);
    this.promises = new TreePromises({ ...o.promises, graftRounds: o.graftRounds });
    this.graftTokens = new TokenBucket(o.graftRate, o.graftBurst, o.clock.now());
    this.rooted =
      o.rooted === undefined
        ? undefined
        : new RootedTree({
            self: o.rooted.self,
            maxDistance: o.rooted.maxDistance,
            defaultLinkMs: o.rooted.defaultLinkMs,
            hopMs: o.rooted.hopMs,
            maxTypes: o.maxTypes,
            send: (peer, advert) => {
              this.stats.rootAdvertsSent++;
              o.send(peer, { kind: "root", ...advert });
            },
            now: () => o.clock.now(),
            advertBudget: o.rooted.advertBudget,
            advertWindowMs: o.rooted.advertWindowMs,
            flood: (peer) => {
              this.stats.advertFloods++;
              o.brokenPromise?.(peer, "advert-flood");
            },
            dirty: () => (this.rootTimer ??= o.clock.setTimeout(() => {
              this.rootTimer = undefined;
              this.rooted?.flush();
            }, o.rooted!.advertDelayMs)),
            parentChanged: () => void this.stats.parentChanges++,
            // A link that became or stopped being a tree link starts without a GRAFT of its own.
            roleChanged: (peer, dataType) => this.roles.set(peer, dataType, false),
          });
  }

  /** A new link: eager, as in the paper (the tree is pruned to shape by duplicates). */
  linkUp(peer: PeerId, speaksTrees: boolean, speaksRoots = false, rttMs?: number): void {
    if (speaksTrees) this.roles.add(peer);
    if (speaksTrees && speaksRoots) this.rooted?.linkUp(peer, rttMs);
  }

  /** The lost link's roles go; IDs it announced are asked of the others. */
  linkDown(peer: PeerId): void {
    this.roles.remove(peer);
    this.rooted?.linkDown(peer);
    this.promises.forget(peer);
    const q = this.queues.get(peer);
    if (q) this.o.clock.clearTimeout(q.timer);
    this.queues.delete(peer);
    for (const [key, p] of this.pending) {
      const i = p.announcers.indexOf(peer);
      if (i < 0) continue;
      p.announcers.splice(i, 1);
      if (i < p.asked) p.asked--;
      if (p.announcers.length === 0) this.drop(key);
    }
  }

  speaksTrees(peer: PeerId): boolean {
    return this.roles.speaks(peer);
  }

  /** Whether we push items of `dataType` to `peer` in full (without a type: for any type). */
  isEager(peer: PeerId, dataType?: number): boolean {
    if (dataType === undefined) return this.roles.eagerForAny(peer) || (this.rooted?.treeLinkForAny(peer) ?? false);
    return this.roles.isEager(peer, dataType) || (this.rooted?.isTreeLink(peer, dataType) ?? false);
  }

  /** Splits linked peers (minus `except`) into those that get the item in full and those that get its ID. */
  targets(linked: readonly PeerId[], except: readonly PeerId[], dataType: number): { eager: PeerId[]; lazy: PeerId[] } {
    const eager: PeerId[] = [];
    const lazy: PeerId[] = [];
    this.rooted?.activate(dataType); // we relay this type: we take part in its rooted tree
    for (const peer of linked) {
      if (except.includes(peer)) continue;
      if (this.isEager(peer, dataType)) eager.push(peer);
      else lazy.push(peer);
    }
    // A random subset when there are many lazy peers: each announcement costs bytes, and a few suffice to repair.
    for (let i = 0; i < Math.min(this.o.lazyFanout, lazy.length); i++) {
      const j = i + Math.floor(this.o.random() * (lazy.length - i));
      [lazy[i], lazy[j]] = [lazy[j]!, lazy[i]!];
    }
    lazy.length = Math.min(lazy.length, this.o.lazyFanout);
    return { eager, lazy };
  }

  /** Queues an announcement of a validated item for a lazy peer; sent batched after announceDelayMs. */
  announce(peer: PeerId, entry: TreeEntry): void {
    if (!this.roles.speaks(peer)) return;
    let q = this.queues.get(peer);
    if (q === undefined) {
      q = { entries: [], timer: this.o.clock.setTimeout(() => this.flush(peer), this.o.announceDelayMs) };
      this.queues.set(peer, q);
    }
    q.entries.push(entry);
    if (q.entries.length > this.o.maxQueuedPerPeer) q.entries.shift();
    if (q.entries.length >= this.o.maxEntriesPerMessage) this.flush(peer);
  }

  /**
   * A full copy arrived. `first`: the first copy of this item (it goes to validation); a later copy means that
   * link is redundant: it turns lazy (PRUNE). `fromTree` false: the copy was not pushed along the tree (the sender
   * pushes on every link near the origin), so a duplicate of it counts for nothing.
   */
  received(from: PeerId, prefixKey: string, hops: number, first: boolean, dataType: number, fromTree = true): void {
    this.promises.answered(from, prefixKey);
    if (first) {
      this.drop(prefixKey);
      this.roles.firstCopy(from, dataType);
      const now = this.o.clock.now();
      const record: FirstCopy = { key: prefixKey, peer: from, hops, fromTree, at: now, previousAt: this.lastFirstAt };
      this.firstFrom.set(prefixKey, record);
      this.firstOrder.push(record);
      this.lastFirstAt = now;
      this.lastFirstKey = prefixKey;
      this.boundFirstFrom();
      return;
    }
    // One duplicate is not enough: with several items in flight from different origins, each prunes the links its
    // own first copies did not take, and together they would cut the tree apart. A link that keeps bringing only
    // duplicates is redundant for every origin; one that brings first copies in between is a tree link for some.
    // Nor does a tree copy after a first copy from near the origin: the tree's copy was due, its link is needed.
    const record = this.firstFrom.get(prefixKey);
    if (!fromTree || record?.fromTree === false || !this.roles.speaks(from)) return;
    if (this.rooted?.decides(from, dataType)) {
      // The rooted tree's links are never pruned (their shape does not follow the items), and a copy on another of
      // its links is a GRAFT's answer that came late (GRAFTs there do not make links eager): nothing to prune either.
      if (this.rooted.isTreeLink(from, dataType) || !this.roles.isEager(from, dataType)) return;
    } else {
      const run = this.roles.duplicate(from, dataType);
      if (run < (record === undefined || this.concurrent(prefixKey, record) ? this.o.pruneAfterDuplicates : 1)) return;
    }
    // Also when the link is lazy here already: the peer still pushes (its GRAFT crossed our PRUNE), so tell it again.
    this.roles.set(from, dataType, false);
    this.stats.prunesSent++;
    this.o.send(from, { kind: "prune", dataType });
  }

  /** Announcements from a peer: unknown, wanted IDs are awaited (then grafted); known ones feed the optimisation. */
  ihave(from: PeerId, entries: readonly TreeEntry[]): void {
    this.stats.ihaveReceived++;
    for (const e of entries) {
      const key = prefixKeyOf(e.id);
      if (this.o.has(key)) {
        this.optimise(from, key, e.hops, e.dataType);
        continue;
      }
      if (!this.o.wants(e.dataType)) {
        this.stats.ignored++;
        continue;
      }
      let p = this.pending.get(key);
      if (p === undefined) {
        if (this.pending.size >= this.o.maxPending) {
          this.stats.ignored++;
          continue;
        }
        p = { dataType: e.dataType, announcers: [], asked: 0, rounds: 0, timer: undefined };
        p.timer = this.o.clock.setTimeout(() => this.graftNext(key), this.o.graftTimeoutMs);
        this.pending.set(key, p);
      }
      if (p.announcers.length === 0) this.o.firstAnnouncement?.(from);
      if (!p.announcers.includes(from) && p.announcers.length < this.o.maxAnnouncers) p.announcers.push(from);
    }
  }

  /** A peer asks for items (and so makes our link to it eager). Returns the prefix keys it asked for. */
  graft(from: PeerId, ids: readonly Uint8Array[], dataType: number): string[] {
    this.stats.graftsReceived++;
    if (this.promises.graftedBy(from, ids.length)) {
      this.stats.graftFloods++;
      this.o.brokenPromise?.(from, "graft-flood");
      return []; // nothing we announced to it: not served
    }
    // On a rooted tree's link a GRAFT asks for the items only (the tree keeps its shape); elsewhere it also makes the
    // link eager, as in the paper.
    if (this.roles.speaks(from) && (ids.length === 0 || !this.rooted?.decides(from, dataType))) this.roles.set(from, dataType, true);
    return ids.map(prefixKeyOf);
  }

  /** The peer made its link to us lazy for a type: we announce that type's items to it from now on. */
  prune(from: PeerId, dataType: number): void {
    this.stats.prunesReceived++;
    if (this.roles.speaks(from)) this.roles.set(from, dataType, false);
  }

  /** A rooted-tree advert from a peer (tree-root.ts). */
  rootAdvert(from: PeerId, advert: RootAdvert): void {
    this.stats.rootAdvertsReceived++;
    this.rooted?.heard(from, advert);
  }

  /** This node's place in a type's rooted tree (undefined: no rooted trees, or not relaying the type). */
  rootOf(dataType: number): RootPlace | undefined {
    return this.rooted?.placeOf(dataType);
  }

  /** The peer we grafted does not hold the item (any more): ask the next announcer at once. */
  dontHave(from: PeerId, ids: readonly Uint8Array[]): void {
    for (const id of ids) {
      const key = prefixKeyOf(id);
      this.promises.answered(from, key);
      const p = this.pending.get(key);
      if (p === undefined || p.announcers[p.asked - 1] !== from) continue;
      this.o.clock.clearTimeout(p.timer);
      this.graftNext(key);
    }
  }

  /** How many announced IDs are awaited now. */
  get awaiting(): number {
    return this.pending.size;
  }

  /** Links that are lazy for at least one type, and the others (peers that do not speak trees count as eager). */
  roleCounts(linked: readonly PeerId[]): { eager: number; lazy: number } {
    let lazy = 0;
    const rooted = this.rooted;
    for (const p of linked) if (this.roles.lazyForAny(p, rooted && ((t) => rooted.isTreeLink(p, t)))) lazy++;
    return { eager: linked.length - lazy, lazy };
  }

  /** Cancels every timer (the node stops). */
  clear(): void {
    if (this.promiseTimer !== undefined) this.o.clock.clearTimeout(this.promiseTimer);
    if (this.rootTimer !== undefined) this.o.clock.clearTimeout(this.rootTimer);
    this.rootTimer = undefined;
    for (const key of [...this.pending.keys()]) this.drop(key);
    for (const q of this.queues.values()) this.o.clock.clearTimeout(q.timer);
    this.queues.clear();
  }

  private flush(peer: PeerId): void {
    const q = this.queues.get(peer);
    if (q === undefined) return;
    this.o.clock.clearTimeout(q.timer);
    this.queues.delete(peer);
    if (q.entries.length === 0 || !this.roles.speaks(peer)) return;
    this.stats.ihaveSent++;
    this.stats.idsAnnounced += q.entries.length;
    this.promises.announcedTo(peer, q.entries.length);
    this.o.send(peer, { kind: "ihave", entries: q.entries });
  }

  private graftNext(key: string): void {
    const p = this.pending.get(key);
    if (p === undefined) return;
    if (this.o.has(key) || p.announcers.length === 0) {
      this.drop(key);
      return;
    }
    if (!this.graftTokens.take(this.o.clock.now())) {
      // Past the GRAFT rate: under load the tree's copies come late, and GRAFTing them all would add a copy each
      // and more load. Wait for the tree (or a token) a little longer.
      this.stats.graftsDeferred++;
      p.timer = this.o.clock.setTimeout(() => this.graftNext(key), this.o.graftRetryMs);
      return;
    }
    if (p.asked >= p.announcers.length) {
      // Every announcer was asked and none served (an answer may have been dropped at a full send buffer under
      // load): go round again, a bounded number of times.
      if (++p.rounds >= this.o.graftRounds) {
        this.stats.graftsAbandoned++;
        this.drop(key);
        return;
      }
      p.asked = 0;
    }
    const peer = p.announcers[p.asked++]!;
    if (!this.rooted?.decides(peer, p.dataType)) this.roles.set(peer, p.dataType, true);
    this.stats.graftsSent++;
    this.o.send(peer, { kind: "graft", ids: [prefixBytesOf(key)], dataType: p.dataType });
    p.timer = this.o.clock.setTimeout(() => this.graftNext(key), this.o.graftRetryMs);
    this.promises.grafted(peer, key, this.o.clock.now());
    this.armPromiseTimer();
  }

  /** One timer for every awaited GRAFT answer: it fires at the oldest deadline and passes on the verdicts. */
  private armPromiseTimer(): void {
    const due = this.promises.nextDeadline();
    if (this.promiseTimer !== undefined || due === undefined) return;
    this.promiseTimer = this.o.clock.setTimeout(() => {
      this.promiseTimer = undefined;
      // At least `due`, so that the oldest goes (were it kept, the timer would re-arm at once, for ever).
      for (const peer of this.promises.expire(Math.max(due, this.o.clock.now()))) {
        this.stats.unservedVerdicts++;
        this.o.brokenPromise?.(peer, "unserved");
      }
      this.armPromiseTimer();
    }, Math.max(0, due - this.o.clock.now()));
  }

  /** Another item's first copy arrived shortly before this one's, or any time since. */
  private concurrent(key: string, record: FirstCopy): boolean {
    return record.at - record.previousAt <= this.o.concurrencyWindowMs || (this.lastFirstKey !== key && this.lastFirstAt >= record.at);
  }

  /** An announcement for an item we hold: if its path is much shorter than our eager copy's, swap the two links. */
  private optimise(from: PeerId, key: string, hops: number, dataType: number): void {
    const first = this.firstFrom.get(key);
    if (first === undefined || first.peer === from || !this.roles.speaks(from) || this.isEager(from, dataType)) return;
    // Rooted trees keep their shape: no swaps on their links.
    if (this.rooted?.decides(from, dataType) || this.rooted?.decides(first.peer, dataType)) return;
    if (hops + this.o.optimisationThreshold >= first.hops) return;
    this.firstFrom.delete(key);
    this.stats.optimisations++;
    this.roles.set(from, dataType, true);
    this.o.send(from, { kind: "graft", ids: [], dataType }); // an empty GRAFT: "be eager to me", nothing to send now
    if (this.roles.speaks(first.peer) && this.roles.isEager(first.peer, dataType)) {
      this.roles.set(first.peer, dataType, false);
      this.stats.prunesSent++;
      this.o.send(first.peer, { kind: "prune", dataType });
    }
  }

  /** At most maxPending first-copy records, and as many stale order entries again. */
  private boundFirstFrom(): void {
    while (this.firstFrom.size > this.o.maxPending || this.firstOrder.length > 2 * this.o.maxPending) {
      const record = this.firstOrder.shift()!;
      if (this.firstFrom.get(record.key) === record) this.firstFrom.delete(record.key);
    }
  }

  private drop(key: string): void {
    const p = this.pending.get(key);
    if (p === undefined) return;
    this.o.clock.clearTimeout(p.timer);
    this.pending.delete(key);
  }
}

/** Bytes of an item ID that announcements carry: 8 are enough to name an item among those in flight (a second
 *  preimage of 64 bits is out of reach), and keep an announcement ~14 bytes. */
export const ANNOUNCED_ID_BYTES = 8;

/** Map key for an ID's announced prefix (hex). Native hex: a character loop cost ~4 times as much, and this runs
 *  for every copy and every announced entry. */
export function prefixKeyOf(id: Uint8Array): string {
  return (id.length > ANNOUNCED_ID_BYTES ? id.subarray(0, ANNOUNCED_ID_BYTES) : id).toHex();
}

function prefixBytesOf(key: string): Uint8Array {
  const out = new Uint8Array(key.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(key.slice(2 * i, 2 * i + 2), 16);
  return out;
}
