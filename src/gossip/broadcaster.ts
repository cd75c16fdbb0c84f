/**
 * The broadcaster: pushes locally announced items to peers, and gates items from peers through de-duplication, the
 * "only subscribed types propagate" rule and local validation before forwarding them with TTL-1. Keeps the item cache
 * for newly linked peers. Talks only through ports.ts (PeerNetwork, LocalModules), so it runs on real sockets in
 * node.ts and in memory in tests.
 *
 * Must never: forward an item that was not validated; validate one item twice; hold more than
 * `maxOutstandingValidations` items in flight; let peer bytes throw out of an event handler.
 *
 * TTL (the item's `ttl` is what the receiver got): 0 = unlimited and stays 0; 1 = delivered locally, not forwarded
 * and not cached (it must not travel further); n > 1 = forwarded and cached with n-1. A local announcement is pushed
 * and cached with the TTL the module gave. There is no hop cap for TTL 0: the Payload carries no hop count, so such an
 * item's flood is bounded by the seen cache (2 min) and by the item cache (an ID still cached counts as seen).
 */
import { DEFAULT_CACHE_SIZE, DEFAULT_DEGREE, MAX_OUTSTANDING_VALIDATIONS } from "../defaults.ts";
import { ItemCache } from "./item-cache.ts";
import { idKey, idMatches, itemId } from "./item-id.ts";
import type { PeerScore } from "./peer-score.ts";
import type { GossipItem, LinkInfo, LocalModules, PeerAddress, PeerEvents, PeerId, PeerNetwork } from "./ports.ts";
import { SeenCache } from "./seen-cache.ts";
import { silentLogger, type Logger } from "../log.ts";

/**
 * Optional richer verdict a LocalModules implementation may offer (not in ports.ts). With it, an item that no
 * subscriber answered in time (a hung local module) or that lost its last subscriber meanwhile is dropped WITHOUT a
 * strike against the peer; with the boolean `validate` alone every "not valid" is a strike, and a hung local module
 * would get honest neighbours banned.
 */
export type Verdict = "valid" | "invalid" | "unanswered";
export interface DetailedValidation {
  validateVerdict(dataType: number, data: Uint8Array): Promise<Verdict>;
}

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
  /** Items of a data type no local module subscribed to (not propagated). */
  notSubscribed = 0;
  /** Items dropped because maxOutstandingValidations were in flight. */
  droppedBusy = 0;
  /** Items from peers that all local subscribers declared valid. */
  valid = 0;
  /** Items a local subscriber declared invalid (sender struck). */
  invalid = 0;
  /** Items no subscriber answered in time (or that lost their subscribers): dropped, no strike. */
  unanswered = 0;
  /** Copies handed to the network (announcements, forwards and cache replays). */
  forwarded = 0;
  /** Copies the network refused (peer gone or its send buffer full). */
  sendFailed = 0;
  /** Cached items sent to newly linked peers. */
  cacheReplayed = 0;
  /** Peers banned by this broadcaster's strikes. */
  bans = 0;
}

export interface BroadcasterOptions {
  network: PeerNetwork;
  local: LocalModules & Partial<DetailedValidation>;
  score: PeerScore;
  logger?: Logger;
  /** Milliseconds, monotonic. */
  now?: () => number;
  degree?: number;
  cacheSize?: number;
  maxOutstandingValidations?: number;
  seenMaxEntries?: number;
  seenMaxAgeMs?: number;
  /** [0, 1); inject a seeded one for deterministic tests. */
  random?: () => number;
  metrics?: BroadcasterMetrics;
}

export interface BroadcasterStats extends BroadcasterMetrics {
  outstanding: number;
  seen: number;
  cached: number;
}

export class Broadcaster implements PeerEvents {
  readonly degree: number;
  readonly maxOutstandingValidations: number;
  readonly metrics: BroadcasterMetrics;
  private readonly network: PeerNetwork;
  private readonly local: LocalModules & Partial<DetailedValidation>;
  private readonly score: PeerScore;
  private readonly log: Logger;
  private readonly random: () => number;
  private readonly seen: SeenCache;
  private readonly cache: ItemCache;
  private outstanding = 0;
  /** Items being validated → the peers that sent us a copy meanwhile (they need no copy from us). */
  private readonly holders = new Map<string, PeerId[]>();

  constructor(options: BroadcasterOptions) {
    this.network = options.network;
    this.local = options.local;
    this.score = options.score;
    this.log = options.logger ?? silentLogger;
    this.random = options.random ?? Math.random;
    this.degree = options.degree ?? DEFAULT_DEGREE;
    this.maxOutstandingValidations = options.maxOutstandingValidations ?? MAX_OUTSTANDING_VALIDATIONS;
    this.metrics = options.metrics ?? new BroadcasterMetrics();
    this.seen = new SeenCache({ maxEntries: options.seenMaxEntries, maxAgeMs: options.seenMaxAgeMs, now: options.now });
    this.cache = new ItemCache(options.cacheSize ?? DEFAULT_CACHE_SIZE);
    if (!(Number.isInteger(this.degree) && this.degree >= 1)) {
      throw new RangeError(`Broadcaster: degree must be an integer ≥ 1, got ${this.degree}`);
    }
  }

  /**
   * A local module's ANNOUNCE. (Notifying the node's other local subscribers is the API server's job.) Propagates
   * even if no local module subscribed to the type: a module may announce without subscribing.
   */
  announceLocal(announce: { ttl: number; dataType: number; data: Uint8Array }): GossipItem {
    const item: GossipItem = { id: itemId(announce.dataType, announce.data), ...announce };
    this.metrics.announced++;
    const key = idKey(item.id);
    this.seen.add(key);
    this.cache.put(item);
    this.push(item, []);
    this.log.debug("gossip.announce", { id: key, dataType: item.dataType, ttl: item.ttl });
    return item;
  }

  /** An item from a peer. Never throws; validation continues asynchronously. */
  item(from: PeerId, item: GossipItem): void {
    this.metrics.received++;
    if (this.score.isBanned(from)) return; // its link is being closed; nothing it sends counts
    const key = idKey(item.id);
    // The cheap check first: a duplicate costs one map lookup, not a hash. An ID still in the item cache counts as
    // seen so that a TTL-0 item cannot come back around after its seen entry expired.
    if (this.seen.has(key) || this.cache.has(key)) {
      this.metrics.duplicates++;
      // A copy that arrives while the item is being validated tells us this peer has it: we will not send it there.
      this.holders.get(key)?.push(from);
      return;
    }
    if (!idMatches(item.id, item.dataType, item.data)) {
      // An honest node never does this: the ID is computed, not chosen.
      this.metrics.idMismatch++;
      this.log.warn("gossip.item_id_mismatch", { peer: from });
      this.strike(from, "item id mismatch");
      this.network.disconnect(from, "item id mismatch");
      return;
    }
    if (!this.local.hasSubscribers(item.dataType)) {
      this.seen.add(key); // later copies are then cheap duplicates
      this.metrics.notSubscribed++;
      return;
    }
    if (this.outstanding >= this.maxOutstandingValidations) {
      // Not marked seen: a later copy may be validated once there is room.
      this.metrics.droppedBusy++;
      return;
    }
    this.seen.add(key);
    this.outstanding++;
    this.holders.set(key, [from]);
    void this.gate(from, item).finally(() => {
      this.outstanding--;
      this.holders.delete(key);
    });
  }

  /** Sends the cached items, oldest first, to a newly linked peer. */
  linkUp(info: LinkInfo): void {
    if (this.score.isBanned(info.peer)) return;
    for (const item of this.cache.list()) {
      this.metrics.cacheReplayed++;
      this.send(info.peer, item);
    }
  }

  peersRequested(_from: PeerId): void {}
  peers(_from: PeerId, _peers: PeerAddress[]): void {}
  linkDown(_peer: PeerId, _reason: string): void {}

  stats(): BroadcasterStats {
    return { ...this.metrics, outstanding: this.outstanding, seen: this.seen.size, cached: this.cache.size };
  }

  private async gate(from: PeerId, item: GossipItem): Promise<void> {
    let verdict: Verdict;
    try {
      verdict = this.local.validateVerdict
        ? await this.local.validateVerdict(item.dataType, item.data)
        : (await this.local.validate(item.dataType, item.data))
          ? "valid"
          : "invalid";
    } catch (error) {
      // Our own side failed; the peer is not to blame.
      this.log.error("gossip.validate_failed", { error: error as Error });
      verdict = "unanswered";
    }
    if (verdict === "invalid") {
      this.metrics.invalid++;
      this.log.info("gossip.item_invalid", { peer: from, dataType: item.dataType });
      this.strike(from, "invalid items");
      return;
    }
    if (verdict === "unanswered") {
      this.metrics.unanswered++;
      return;
    }
    this.metrics.valid++;
    if (item.ttl === 1) return; // delivered locally (the subscribers were notified); must not travel further
    const onward: GossipItem = { ...item, ttl: item.ttl === 0 ? 0 : item.ttl - 1 };
    this.cache.put(onward);
    this.push(onward, this.holders.get(idKey(item.id)) ?? [from]);
  }

  /** Sends `item` to up to `degree` random linked peers other than those in `except` (which already have it). */
  private push(item: GossipItem, except: PeerId[]): void {
    const targets = this.network.linkedPeers().filter((l) => !except.includes(l.peer) && !this.score.isBanned(l.peer));
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
    this.log.warn("gossip.peer_banned", { peer, why });
    this.network.disconnect(peer, `banned: ${why}`);
  }
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
