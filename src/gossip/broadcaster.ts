/**
 * The broadcaster: pushes locally announced items to peers, and gates items from peers through de-duplication, the
 * "only subscribed types propagate" rule and local validation before forwarding them with TTL-1. Keeps the item cache
 * for newly linked peers. Talks only through ports.ts (PeerNetwork, LocalModules), so it runs on real sockets in
 * node.ts and in memory in tests.
 *
 * Must never: forward an item that was not validated; validate one item twice; start a validation the local modules
 * have no room for (LocalModules.canValidate owns that bound); let peer bytes throw out of an event handler.
 *
 * TTL (the item's `ttl` is what the receiver got): 0 = unlimited and stays 0; 1 = delivered locally, not forwarded
 * and not cached (it must not travel further); n > 1 = forwarded and cached with n-1. A local announcement is pushed
 * and cached with the TTL the module gave. There is no hop cap for TTL 0: the Payload carries no hop count, so such an
 * item's flood is bounded by the seen cache (2 min) and by the item cache (an ID still cached counts as seen).
 */
import {
  DEFAULT_CACHE_SIZE,
  DEFAULT_DEGREE,
  DEFAULT_DISSEMINATION,
  MAX_ITEM_DATA_BYTES,
  REPLAY_GRACE_MS,
  REPLAY_HOLD_MAX_ITEMS,
} from "../defaults.ts";
import { ItemCache } from "./item-cache.ts";
import { idKey, idMatches, itemId } from "./item-id.ts";
import type { PeerScore } from "./peer-score.ts";
import type { PlumtreeStats } from "./plumtree.ts";
import type { Clock, GossipItem, LinkInfo, LocalModules, PeerAddress, PeerEvents, PeerId, PeerNetwork, TreeMessage, Verdict } from "./ports.ts";
import { PeerIntake } from "./intake.ts";
import { ReplayHold } from "./replay-hold.ts";
import { SeenCache } from "./seen-cache.ts";
import { TreeSpread, type TreeTunables } from "./tree-spread.ts";
import type { RootPlace } from "./tree-root.ts";
import { silentLogger, type Logger } from "../log.ts";

/** Counters only; the broadcaster calls them, whoever exports metrics reads them. */
export class BroadcasterMetrics {
  /** Items announced by local modules. */
  announced = 0;
  /** Item messages received from peers (every copy). */
  received = 0;
  /** Copies dropped because the ID was seen: our redundancy figure. */
  duplicates = 0;
  /** Copies whose claimed ID did not match their content (sender struck and disconnected). */
  idMismatch = 0;
  /** Copies with more data than the VoidPhone API can carry (a protocol violation: sender struck and disconnected). */
  oversized = 0;
  /** Items of a data type no local module subscribed to (not propagated). */
  notSubscribed = 0;
  /** Items from a just-linked peer (its cache replay) held until a local module subscribes to their type. */
  replayHeld = 0;
  /** Items dropped because the local modules' validation table had no room (not marked seen). */
  droppedBusy = 0;
  /** Times a peer was paused (not read) until its item fit in the validation table. */
  readPauses = 0;
  /** Items from peers that all local subscribers declared valid. */
  valid = 0;
  /** Items a local subscriber declared invalid (counted against the sender, never a ban by itself). */
  invalid = 0;
  /** Items no subscriber answered in time (or that lost their subscribers): dropped, no strike. */
  unanswered = 0;
  /** Copies handed to the network (announcements, forwards and cache replays). */
  forwarded = 0;
  /** Copies the network refused (peer gone or its send buffer full). */
  sendFailed = 0;
  /** Cached items sent to newly linked peers. */
  cacheReplayed = 0;
  /** Peers banned by this broadcaster's strikes (protocol violations). */
  bans = 0;
}

export interface BroadcasterOptions {
  network: PeerNetwork;
  local: LocalModules;
  score: PeerScore;
  clock: Clock;
  /** [0, 1); seeded in tests and the simulator. */
  random: () => number;
  log?: Logger;
  degree?: number;
  cacheSize?: number;
  seenMaxEntries?: number;
  seenMaxAgeMs?: number;
  replayGraceMs?: number;
  replayHoldMaxItems?: number;
  /** "plumtree": broadcast trees with peers that speak them (eager push to the others); "flood": push to up to
   *  `degree` random peers. */
  dissemination?: Dissemination;
  /** Broadcast-tree parameters (defaults in src/defaults.ts). */
  tree?: Partial<TreeTunables>;
  metrics?: BroadcasterMetrics;
}

export type Dissemination = "plumtree" | "flood";

export interface BroadcasterStats extends BroadcasterMetrics {
  /** Items being validated right now. */
  outstanding: number;
  seen: number;
  cached: number;
  /** Replayed items waiting for a subscriber. */
  held: number;
  dissemination: Dissemination;
  /** Broadcast-tree counters and link roles (plumtree only). */
  tree?: PlumtreeStats & { eager: number; lazy: number; awaiting: number };
}

export class Broadcaster implements PeerEvents {
  readonly degree: number;
  readonly metrics: BroadcasterMetrics;
  private readonly network: PeerNetwork;
  private readonly local: LocalModules;
  private readonly score: PeerScore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly seen: SeenCache;
  private readonly cache: ItemCache;
  private readonly hold: ReplayHold;
  private readonly intake: PeerIntake;
  private outstanding = 0;
  private readonly spread: TreeSpread | undefined;
  /** Items being validated → the peers that sent us a copy meanwhile (they need no copy from us). */
  private readonly holders = new Map<string, PeerId[]>();

  constructor(options: BroadcasterOptions) {
    this.network = options.network;
    this.local = options.local;
    this.score = options.score;
    this.clock = options.clock;
    this.log = options.log ?? silentLogger;
    this.random = options.random;
    this.degree = options.degree ?? DEFAULT_DEGREE;
    this.metrics = options.metrics ?? new BroadcasterMetrics();
    const now = () => this.clock.now();
    this.seen = new SeenCache({ maxEntries: options.seenMaxEntries, maxAgeMs: options.seenMaxAgeMs, now });
    this.cache = new ItemCache(options.cacheSize ?? DEFAULT_CACHE_SIZE);
    this.hold = new ReplayHold({
      clock: this.clock,
      graceMs: options.replayGraceMs ?? REPLAY_GRACE_MS,
      maxItems: options.replayHoldMaxItems ?? REPLAY_HOLD_MAX_ITEMS,
      hasSubscribers: (dataType) => this.local.hasSubscribers(dataType),
      release: (from, item) => this.item(from, item, true),
    });
    this.intake = new PeerIntake(this.network, this.local, (from, item) => this.item(from, item, true));
    this.spread =
      (options.dissemination ?? DEFAULT_DISSEMINATION) === "plumtree"
        ? new TreeSpread({
            ...options.tree,
            seenMaxEntries: options.tree?.seenMaxEntries ?? options.seenMaxEntries,
            network: this.network,
            score: this.score,
            clock: this.clock,
            random: this.random,
            wants: (dataType) => this.local.hasSubscribers(dataType),
            sendItem: (peer, item) => this.send(peer, item),
          })
        : undefined;
    if (!(Number.isInteger(this.degree) && this.degree >= 1)) {
      throw new RangeError(`Broadcaster: degree must be an integer ≥ 1, got ${this.degree}`);
    }
  }

  /**
   * A local module's ANNOUNCE. (Notifying the node's other local subscribers is the API server's job.) Propagates
   * even if no local module subscribed to the type: a module may announce without subscribing.
   */
  announceLocal(announce: { ttl: number; dataType: number; data: Uint8Array }): GossipItem {
    const item: GossipItem = { id: itemId(announce.dataType, announce.data), ...announce, hops: 0 };
    this.metrics.announced++;
    const key = idKey(item.id);
    this.seen.add(key);
    this.cache.put(item, key);
    this.spread?.announced(item, key);
    this.forward(item, [], key);
    this.log.debug("item announced", { id: key, dataType: item.dataType, ttl: item.ttl });
    return item;
  }

  /**
   * An item from a peer. Never throws; validation continues asynchronously. `released`: the replay hold or the intake
   * (a paused peer's waiting item) hands back an item it kept (already counted as received, its hops already counted).
   */
  item(from: PeerId, item: GossipItem, released = false): void {
    if (!released) this.metrics.received++;
    if (this.score.isBanned(from)) return; // its link is being closed; nothing it sends counts
    const key = idKey(item.id);
    // The cheap check first: a duplicate costs one map lookup, not a hash. An ID still in the item cache counts as
    // seen so that a TTL-0 item cannot come back around after its seen entry expired.
    if (this.seen.has(key) || this.cache.has(key)) {
      this.metrics.duplicates++;
      // A copy that arrives while the item is being validated tells us this peer has it: we will not send it there.
      if (this.outstanding > 0) this.holders.get(key)?.push(from); // (holders has an entry per validation only)
      this.spread?.received(from, item, false, key); // a redundant link: the tree prunes it
      return;
    }
    if (item.data.length > MAX_ITEM_DATA_BYTES) {
      // The VoidPhone API cannot carry it, so no honest node announced it: a protocol violation, not an item.
      this.metrics.oversized++;
      this.violation(from, "oversized-item");
      return;
    }
    if (!idMatches(item.id, item.dataType, item.data)) {
      // An honest node never does this: the ID is computed, not chosen.
      this.metrics.idMismatch++;
      this.violation(from, "item-id-mismatch");
      return;
    }
    // One more link crossed to get here; and a replayed copy travels on as an ordinary item.
    const replayed = !released && item.replayed === true;
    if (!released) item = { ...item, hops: (item.hops ?? 0) + 1, replayed: undefined };
    if (!this.local.hasSubscribers(item.dataType)) {
      if (replayed && this.hold.keep(key, from, item)) {
        // A module that subscribes a moment after a restart still gets the neighbours' cache replay.
        this.metrics.replayHeld++;
        return;
      }
      this.seen.add(key); // later copies are then cheap duplicates
      this.spread?.received(from, item, true, key);
      this.metrics.notSubscribed++;
      return;
    }
    if (!this.local.canValidate(item.dataType)) {
      // Busy subscribers: stop reading this peer until there is room (nothing it sent is lost). Otherwise drop the
      // item without marking it seen: a later copy may be validated once there is room.
      if (!released && this.intake.wait(from, item)) this.metrics.readPauses++;
      else this.metrics.droppedBusy++;
      return;
    }
    this.hold.forget(key);
    this.seen.add(key);
    this.spread?.received(from, item, true, key);
    this.outstanding++;
    this.holders.set(key, [from]);
    void this.gate(from, item, key);
  }

  /** Sends the cached items, oldest first, to a newly linked peer. */
  linkUp(info: LinkInfo): void {
    if (this.score.isBanned(info.peer)) return;
    this.spread?.linkUp(info);
    for (const item of this.cache.list()) {
      this.metrics.cacheReplayed++;
      this.send(info.peer, { ...item, replayed: true });
    }
  }

  peersRequested(_from: PeerId): void {}
  peers(_from: PeerId, _peers: PeerAddress[]): void {}
  linkDown(peer: PeerId, _reason: string): void {
    this.spread?.linkDown(peer);
    this.intake.linkDown(peer);
  }

  /** This node's place in a type's rooted tree (src/gossip/tree-root.ts); undefined when not relaying the type or
   *  flooding. */
  rootOf(dataType: number): RootPlace | undefined {
    return this.spread?.tree.rootOf(dataType);
  }

  /** The link's role in the broadcast tree ("eager" for every link when flooding or when the peer does not speak trees). */
  roleOf(peer: PeerId): "eager" | "lazy" {
    return this.spread === undefined || this.spread.tree.isEager(peer) ? "eager" : "lazy";
  }

  views(): void {}

  tree(from: PeerId, message: TreeMessage): void {
    if (this.score.isBanned(from)) return;
    this.spread?.message(from, message);
  }

  /** Stops the replay hold's timer (the node or the simulated node is going away). */
  stop(): void {
    this.hold.clear();
    this.spread?.stop();
    this.intake.clear();
  }

  stats(): BroadcasterStats {
    return {
      ...this.metrics,
      outstanding: this.outstanding,
      seen: this.seen.size,
      cached: this.cache.size,
      held: this.hold.size,
      dissemination: this.spread ? "plumtree" : "flood",
      tree: this.spread
        ? {
            ...this.spread.tree.stats,
            ...this.spread.tree.roleCounts(this.network.linkedPeers().map((l) => l.peer)),
            awaiting: this.spread.tree.awaiting,
          }
        : undefined,
    };
  }

  /** Validates an item from a peer and forwards it if valid; whatever happens, it stops being outstanding at the
   *  end (here rather than in a `.finally` on the call: no closure and promise more per item). */
  private async gate(from: PeerId, item: GossipItem, key: string): Promise<void> {
    try {
      let verdict: Verdict;
      try {
        verdict = await this.local.validate(item.dataType, item.data);
      } catch (error) {
        // Our own side failed (the port promises never to reject); the peer is not to blame.
        this.log.error("validation failed", { error: error as Error });
        verdict = "unanswered";
      }
      if (verdict === "invalid") {
        this.metrics.invalid++;
        this.log.info("item invalid", { peer: from, dataType: item.dataType });
        // Not a strike: a module's "invalid" also means "not useful to me", and the peer may be an honest relay; the
        // score weighs it against the node's own baseline (a ban there disconnects through the core).
        this.score.recordRejection(from, item.dataType);
        return;
      }
      if (verdict === "unanswered") {
        this.metrics.unanswered++;
        return;
      }
      this.metrics.valid++;
      this.score.recordFirstDelivery(from, item.dataType);
      if (item.ttl === 1) return; // delivered locally (the subscribers were notified); must not travel further
      // TTL 0 travels as it came (this node's own copy, made on arrival); otherwise one less.
      const onward: GossipItem = item.ttl === 0 ? item : { ...item, ttl: item.ttl - 1 };
      this.cache.put(onward, key);
      this.forward(onward, this.holders.get(key) ?? [from], key);
    } finally {
      this.outstanding--;
      this.holders.delete(key);
      if (this.intake.paused > 0) this.intake.settled();
    }
  }

  /** Sends an item on to peers other than those in `except` (which already have it): along the broadcast tree, or
   *  by flooding. */
  private forward(item: GossipItem, except: PeerId[], key: string): void {
    if (this.spread) this.spread.forward(item, except, key);
    else this.flood(item, except);
  }

  /** Sends `item` to up to `degree` random linked peers other than those in `except`. */
  private flood(item: GossipItem, except: PeerId[]): void {
    // Filtered in place (linkedPeers hands out a copy), in link order; a loop, since this runs for every link of
    // every forward and `except` holds a handful of peers.
    const targets = this.network.linkedPeers();
    let kept = 0;
    for (let i = 0; i < targets.length; i++) {
      const l = targets[i]!;
      if (!isAmong(except, l.peer) && !this.score.isBanned(l.peer)) targets[kept++] = l;
    }
    targets.length = kept;
    pickInPlace(targets, this.degree, this.random);
    const n = Math.min(this.degree, targets.length);
    for (let i = 0; i < n; i++) this.send(targets[i]!.peer, item);
  }

  private send(peer: PeerId, item: GossipItem): void {
    if (this.network.sendItem(peer, item)) this.metrics.forwarded++;
    else this.metrics.sendFailed++;
  }

  private strike(peer: PeerId, why: string): void {
    if (!this.score.recordInvalid(peer)) return;
    this.metrics.bans++;
    this.log.warn("peer banned", { peer, why });
    this.network.disconnect(peer, `banned: ${why}`);
  }

  /** A peer broke the protocol with an item: struck (counted toward a ban) and disconnected at once. */
  private violation(peer: PeerId, why: string): void {
    this.log.warn("item violation", { peer, why });
    this.strike(peer, why);
    this.network.disconnect(peer, why);
  }
}

function isAmong(peers: readonly PeerId[], peer: PeerId): boolean {
  for (let i = 0; i < peers.length; i++) if (peers[i] === peer) return true;
  return false;
}

/** Partial Fisher–Yates: afterwards the first min(k, n) elements are a uniform random sample. */
export function pickInPlace<T>(items: T[], k: number, random: () => number): void {
  const n = Math.min(k, items.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(random() * (items.length - i));
    const tmp = items[i]!;
    items[i] = items[j]!;
    items[j] = tmp;
  }
}
