/**
 * How validated items spread when `dissemination: plumtree`: in full on eager links, as announcements on lazy ones
 * (src/gossip/plumtree.ts decides roles and timers), and served on GRAFT from a bounded store of recent items. The
 * broadcaster (broadcaster.ts) calls `forward` only for items every local subscriber validated (or a local module
 * announced), so an announcement never offers anything the validation gate has not passed.
 *
 * Must never: announce or serve an item that was not forwarded by the broadcaster, hold more than its bounds
 * (recent items by count and bytes, seen prefixes, digest entries), keep a timer while it has nothing recent to
 * digest, or send tree messages to a peer that does not speak trees.
 */
import {
  ANNOUNCE_DELAY_MS,
  GRAFT_RETRY_MS,
  GRAFT_ROUNDS,
  GRAFT_RATE_PER_S,
  GRAFT_BURST,
  GRAFT_TIMEOUT_MS,
  LAZY_FANOUT,
  SEEN_CACHE_MAX_ENTRIES,
  TREE_MAX_ANNOUNCERS,
  TREE_MAX_ENTRIES_PER_MESSAGE,
  TREE_MAX_PENDING,
  TREE_MAX_QUEUED_PER_PEER,
  TREE_MAX_TYPES,
  TREE_OPTIMISATION_HOPS,
  TREE_PRUNE_AFTER_DUPLICATES,
  TREE_CONCURRENCY_WINDOW_MS,
  TREE_EAGER_HOPS,
  TREE_ROOTED,
  TREE_ROOT_MAX_DISTANCE,
  TREE_ROOT_DEFAULT_LINK_MS,
  TREE_ROOT_HOP_MS,
  TREE_ROOT_ADVERT_DELAY_MS,
  TREE_ROOT_ADVERT_BUDGET,
  TREE_ROOT_ADVERT_WINDOW_MS,
  TREE_RECENT_MAX_BYTES,
  TREE_RECENT_MAX_ITEMS,
  TREE_GRAFT_ALLOWANCE,
  TREE_MAX_PROMISES,
  TREE_SERVE_DEADLINE_MS,
  TREE_UNSERVED_RUN,
  TREE_DIGEST_HOPS,
  TREE_DIGEST_INTERVAL_MS,
  TREE_DIGEST_MIN_AGE_MS,
  TREE_DIGEST_MAX_IDS,
  TREE_DIGEST_WINDOW_MS,
} from "../defaults.ts";
import { ANNOUNCED_ID_BYTES, Plumtree, prefixKeyOf } from "./plumtree.ts";
import { Fifo } from "../util/fifo.ts";
import { blake3 } from "../util/blake3-wasm.ts";
import type { PeerScore } from "./peer-score.ts";
import type { Clock, GossipItem, LinkInfo, PeerId, PeerNetwork, TreeEntry, TreeMessage } from "./ports.ts";

/** What the broadcaster hands a TreeSpread. */
export interface TreeSpreadPorts {
  network: PeerNetwork;
  score: PeerScore;
  clock: Clock;
  random: () => number;
  /** Some local module subscribed to the type. */
  wants(dataType: number): boolean;
  /** Sends one item in full and counts it (the broadcaster's send). */
  sendItem(peer: PeerId, item: GossipItem): void;
}

/** Broadcast-tree parameters; each defaults to its entry in src/defaults.ts ("Broadcast trees"). */
export interface TreeTunables {
  graftTimeoutMs: number;
  graftRetryMs: number;
  graftRounds: number;
  graftRate: number;
  graftBurst: number;
  announceDelayMs: number;
  lazyFanout: number;
  optimisationThreshold: number;
  pruneAfterDuplicates: number;
  concurrencyWindowMs: number;
  /** Nodes that got an item within this many hops of its origin push it in full on every link (0: only the tree). */
  eagerHops: number;
  /** Rooted trees with peers that speak them (tree-root.ts), and the largest distance to a root believed. */
  rooted: boolean;
  rootMaxDistance: number;
  /** A link's one-way latency when its round trip is not known (ms). */
  rootDefaultLinkMs: number;
  /** What each link adds to a path besides its latency (ms). */
  rootHopMs: number;
  /** Changes of place within this long go out as one advert. */
  rootAdvertDelayMs: number;
  /** Adverts acted on per peer within the window; past it a peer floods. */
  rootAdvertBudget: number;
  rootAdvertWindowMs: number;
  maxPending: number;
  maxAnnouncers: number;
  maxEntriesPerMessage: number;
  maxQueuedPerPeer: number;
  maxTypes: number;
  /** Items kept to answer GRAFTs: at most this many … */
  recentMaxItems: number;
  /** … and this many data bytes. */
  recentMaxBytes: number;
  /** Prefixes of items seen (received or announced) remembered, so announcements of them are not grafted. */
  seenMaxEntries: number;
  /** Kept promises (src/gossip/tree-promises.ts): the answer deadline of a GRAFT, unserved GRAFTs in a row before
   *  each costs a penalty, GRAFTed IDs allowed beyond what we announced, awaited answers kept. */
  serveDeadlineMs: number;
  unservedRun: number;
  graftAllowance: number;
  maxPromises: number;
  /** Digests (src/defaults.ts TREE_DIGEST_*): how often, of items forwarded how recently (but not too recently), at
   *  most how many IDs. */
  digestIntervalMs: number;
  digestWindowMs: number;
  digestMinAgeMs: number;
  digestMaxIds: number;
}

const DEFAULT_TUNABLES: TreeTunables = {
  graftTimeoutMs: GRAFT_TIMEOUT_MS,
  graftRetryMs: GRAFT_RETRY_MS,
  graftRounds: GRAFT_ROUNDS,
  graftRate: GRAFT_RATE_PER_S,
  graftBurst: GRAFT_BURST,
  announceDelayMs: ANNOUNCE_DELAY_MS,
  lazyFanout: LAZY_FANOUT,
  optimisationThreshold: TREE_OPTIMISATION_HOPS,
  pruneAfterDuplicates: TREE_PRUNE_AFTER_DUPLICATES,
  concurrencyWindowMs: TREE_CONCURRENCY_WINDOW_MS,
  eagerHops: TREE_EAGER_HOPS,
  rooted: TREE_ROOTED,
  rootMaxDistance: TREE_ROOT_MAX_DISTANCE,
  rootDefaultLinkMs: TREE_ROOT_DEFAULT_LINK_MS,
  rootHopMs: TREE_ROOT_HOP_MS,
  rootAdvertDelayMs: TREE_ROOT_ADVERT_DELAY_MS,
  rootAdvertBudget: TREE_ROOT_ADVERT_BUDGET,
  rootAdvertWindowMs: TREE_ROOT_ADVERT_WINDOW_MS,
  maxPending: TREE_MAX_PENDING,
  maxAnnouncers: TREE_MAX_ANNOUNCERS,
  maxEntriesPerMessage: TREE_MAX_ENTRIES_PER_MESSAGE,
  maxQueuedPerPeer: TREE_MAX_QUEUED_PER_PEER,
  maxTypes: TREE_MAX_TYPES,
  recentMaxItems: TREE_RECENT_MAX_ITEMS,
  recentMaxBytes: TREE_RECENT_MAX_BYTES,
  seenMaxEntries: SEEN_CACHE_MAX_ENTRIES,
  serveDeadlineMs: TREE_SERVE_DEADLINE_MS,
  unservedRun: TREE_UNSERVED_RUN,
  graftAllowance: TREE_GRAFT_ALLOWANCE,
  maxPromises: TREE_MAX_PROMISES,
  digestIntervalMs: TREE_DIGEST_INTERVAL_MS,
  digestWindowMs: TREE_DIGEST_WINDOW_MS,
  digestMinAgeMs: TREE_DIGEST_MIN_AGE_MS,
  digestMaxIds: TREE_DIGEST_MAX_IDS,
};

export class TreeSpread {
  readonly tree: Plumtree;
  private readonly recent = new Map<string, GossipItem>();
  /** The insertion orders of `recent` and `seen`, oldest first (util/fifo.ts says why not their own). */
  private readonly recentOrder = new Fifo<string>();
  private recentBytes = 0;
  private readonly seen = new Set<string>();
  private readonly seenOrder = new Fifo<string>();
  /** What we forwarded lately (oldest first, at most digestMaxIds), for the digests; a timer only while not empty. */
  private readonly lately: { entry: TreeEntry; at: number }[] = [];
  private digestTimer: unknown = undefined;

  private readonly o: TreeSpreadPorts & TreeTunables;

  constructor(options: TreeSpreadPorts & Partial<TreeTunables>) {
    const o = { ...DEFAULT_TUNABLES, ...definedOnly(options) } as TreeSpreadPorts & TreeTunables;
    this.o = o;
    this.tree = new Plumtree({
      clock: o.clock,
      random: o.random,
      send: (peer, message) => this.sendTree(peer, message),
      has: (key) => this.seen.has(key),
      firstAnnouncement: (peer) => o.score.recordFirstAnnouncement(peer),
      brokenPromise: (peer, how) =>
        void (how === "unserved"
          ? o.score.recordUnservedAnnouncement(peer)
          : how === "graft-flood"
            ? o.score.recordGraftFlood(peer)
            : o.score.recordAdvertFlood(peer)),
      promises: { serveDeadlineMs: o.serveDeadlineMs, unservedRun: o.unservedRun, graftAllowance: o.graftAllowance, maxPromises: o.maxPromises },
      wants: o.wants,
      graftTimeoutMs: o.graftTimeoutMs,
      graftRetryMs: o.graftRetryMs,
      graftRounds: o.graftRounds,
      graftRate: o.graftRate,
      graftBurst: o.graftBurst,
      announceDelayMs: o.announceDelayMs,
      lazyFanout: o.lazyFanout,
      optimisationThreshold: o.optimisationThreshold,
      pruneAfterDuplicates: o.pruneAfterDuplicates,
      concurrencyWindowMs: o.concurrencyWindowMs,
      maxPending: o.maxPending,
      maxAnnouncers: o.maxAnnouncers,
      maxEntriesPerMessage: o.maxEntriesPerMessage,
      maxQueuedPerPeer: o.maxQueuedPerPeer,
      maxTypes: o.maxTypes,
      rooted: o.rooted
        ? {
            self: rootKeyOf(o.network.localId),
            maxDistance: o.rootMaxDistance,
            defaultLinkMs: o.rootDefaultLinkMs,
            hopMs: o.rootHopMs,
            advertDelayMs: o.rootAdvertDelayMs,
            advertBudget: o.rootAdvertBudget,
            advertWindowMs: o.rootAdvertWindowMs,
          }
        : undefined,
    });
  }

  linkUp(info: LinkInfo): void {
    this.tree.linkUp(info.peer, info.trees === true && this.o.network.sendTree !== undefined, info.roots === true, info.rttMs);
  }

  linkDown(peer: PeerId): void {
    this.tree.linkDown(peer);
  }

  /** A full copy from a peer: `first` when it is the first copy we see (whatever happens to it next). */
  received(from: PeerId, item: GossipItem, first: boolean, idKey?: string): void {
    const key = prefixKeyFor(item, idKey);
    if (first) this.remember(key);
    // A copy pushed by a node near the origin (which pushes on every link) says nothing about the tree's links. The
    // sender's hop count is the one on the wire: a first copy's was counted up on arrival, a duplicate's was not.
    const senderHops = first ? (item.hops ?? 1) - 1 : (item.hops ?? 0);
    const fromTree = senderHops >= this.o.eagerHops;
    this.tree.received(from, key, item.hops ?? 0, first, item.dataType, fromTree);
  }

  /** A local announcement: seen here (announcements of it are not grafted), then forwarded like any item. */
  announced(item: GossipItem, idKey?: string): void {
    this.remember(prefixKeyFor(item, idKey));
  }

  /** Sends a validated item on: in full to eager peers, as an announcement to (some) lazy ones. */
  forward(item: GossipItem, except: readonly PeerId[], idKey?: string): void {
    this.keep(item, prefixKeyFor(item, idKey));
    const entry: TreeEntry = { id: item.id.subarray(0, 8), dataType: item.dataType, hops: item.hops ?? 0 };
    this.forwardedLately(entry);
    const linked: PeerId[] = [];
    for (const l of this.o.network.linkedPeers()) if (!this.o.score.isBanned(l.peer)) linked.push(l.peer);
    if ((item.hops ?? 0) < this.o.eagerHops) {
      // Near the origin: every link. A few dozen extra copies per item put it at once into many places of the one
      // tree that serves every origin, so no origin is far (in the tree) from anyone (docs/simulation.md).
      for (const peer of linked) {
        if (except.includes(peer)) continue;
        this.tree.stats.nearOriginPushes++;
        this.o.sendItem(peer, item);
      }
      return;
    }
    const { eager, lazy } = this.tree.targets(linked, except, item.dataType);
    this.tree.stats.eagerPushes += eager.length;
    for (const peer of eager) this.o.sendItem(peer, item);
    for (const peer of lazy) this.tree.announce(peer, entry);
  }

  /** A tree message from a peer that speaks trees. */
  message(from: PeerId, message: TreeMessage): void {
    switch (message.kind) {
      case "ihave":
        this.tree.ihave(from, message.entries);
        return;
      case "graft": {
        const missing: Uint8Array[] = [];
        for (const key of this.tree.graft(from, message.ids, message.dataType)) {
          const item = this.recent.get(key);
          if (item === undefined) {
            this.tree.stats.graftsMissed++;
            missing.push(prefixBytes(key));
          } else {
            this.tree.stats.graftsAnswered++;
            this.o.sendItem(from, item);
          }
        }
        if (missing.length > 0) this.sendTree(from, { kind: "dont-have", ids: missing });
        return;
      }
      case "prune":
        this.tree.prune(from, message.dataType);
        return;
      case "dont-have":
        this.tree.dontHave(from, message.ids);
        return;
      case "root":
        this.tree.rootAdvert(from, message);
        return;
    }
  }

  stop(): void {
    this.tree.clear();
    if (this.digestTimer !== undefined) this.o.clock.clearTimeout(this.digestTimer);
    this.digestTimer = undefined;
    this.lately.length = 0;
  }

  private forwardedLately(entry: TreeEntry): void {
    this.lately.push({ entry, at: this.o.clock.now() });
    if (this.lately.length > this.o.digestMaxIds) this.lately.shift();
    if (this.digestTimer === undefined) this.digestTimer = this.o.clock.setTimeout(() => this.sendDigest(), this.o.digestIntervalMs);
  }

  /** A digest of what we forwarded lately to one random tree neighbour: it GRAFTs what it lacks (an item's
   *  announcements reach a few lazy links only, so a node whose eager path broke may have heard of it from nobody).
   *  Items still crossing the network are left out (digestMinAgeMs). Any tree neighbour, not only lazy ones: the copy
   *  we pushed to an eager one may have been lost with a link. */
  private sendDigest(): void {
    this.digestTimer = undefined;
    const now = this.o.clock.now();
    while (this.lately.length > 0 && now - this.lately[0]!.at > this.o.digestWindowMs) this.lately.shift();
    if (this.lately.length === 0) return;
    const due = this.lately.filter((l) => now - l.at >= this.o.digestMinAgeMs);
    const speakers: PeerId[] = [];
    for (const l of this.o.network.linkedPeers()) if (this.tree.speaksTrees(l.peer) && !this.o.score.isBanned(l.peer)) speakers.push(l.peer);
    if (due.length > 0 && speakers.length > 0) {
      const peer = speakers[Math.floor(this.o.random() * speakers.length)]!;
      this.tree.stats.digestsSent++;
      for (const { entry } of due) this.tree.announce(peer, { ...entry, hops: TREE_DIGEST_HOPS });
    }
    this.digestTimer = this.o.clock.setTimeout(() => this.sendDigest(), this.o.digestIntervalMs);
  }

  private sendTree(peer: PeerId, message: TreeMessage): void {
    if (this.tree.speaksTrees(peer)) this.o.network.sendTree?.(peer, message);
  }

  private remember(key: string): void {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.seenOrder.push(key);
    if (this.seen.size > this.o.seenMaxEntries) this.seen.delete(this.seenOrder.shift()!);
  }

  private keep(item: GossipItem, key: string): void {
    const old = this.recent.get(key);
    // Kept again (a copy forwarded twice): the newer object in the same place of the order.
    if (old !== undefined) this.recentBytes -= old.data.length;
    else this.recentOrder.push(key);
    this.recent.set(key, item);
    this.recentBytes += item.data.length;
    while (this.recent.size > this.o.recentMaxItems || this.recentBytes > this.o.recentMaxBytes) {
      const k = this.recentOrder.shift()!;
      this.recentBytes -= this.recent.get(k)!.data.length;
      this.recent.delete(k);
    }
  }
}

/** The item's prefix key: the head of its full ID key when the caller has one (item-id.ts idKey, the same hex), so
 *  that no ID is read and converted twice per copy. */
function prefixKeyFor(item: GossipItem, idKey: string | undefined): string {
  return idKey === undefined ? prefixKeyOf(item.id) : idKey.slice(0, 2 * ANNOUNCED_ID_BYTES);
}

/** The options without keys set to undefined (so they do not override the defaults). */
function definedOnly<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

function prefixBytes(key: string): Uint8Array {
  return Uint8Array.from(Buffer.from(key, "hex"));
}

/** A node's key in the rooted trees: 8 bytes of BLAKE3 over its ID, so that the root is a random node whatever the
 *  IDs look like (the simulator's are "n0", "n1", …). Hex of equal length: text order is number order. */
export function rootKeyOf(id: string): string {
  return blake3(new TextEncoder().encode(id)).subarray(0, 8).toHex();
}
