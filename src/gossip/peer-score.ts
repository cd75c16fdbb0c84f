/**
 * Peer score: what this node holds against (and for) each peer, and the temporary bans that follow. Two rules ban:
 * - strikes for protocol violations (forged item IDs, oversized items): `threshold` strikes inside one window (which
 *   opens at the first strike) ban for `banMs`; the caller of recordInvalid disconnects, as it always did;
 * - the score (src/gossip/score-table.ts: first deliveries, violations, behavioural penalties, module rejections
 *   weighed against the node's own baseline, IP colocation; all decaying): evidence that takes it below
 *   `banThreshold` bans for `banMs`, and `onScoreBan` is told so that the core disconnects the peer.
 * A mute link the core drops as useless (it never said anything while items flowed through others,
 * src/gossip/link-usefulness.ts) costs a penalty (recordUselessLink) that bans on the second such drop; first copies
 * (valid or rejected) and first announcements are passed to the core's usefulness count through `onFirst`.
 * A local module's rejection is evidence, never a strike: real modules answer "invalid" for well-formed items that are
 * merely not useful to them, so only rejections well beyond the node's baseline count (docs/decisions.md).
 * Shared by the broadcaster (violations, verdicts), the broadcast trees (penalties), membership (never dials a banned
 * peer, drops its links) and the transport (refuses inbound links from it, via isBanned). Pure bookkeeping: never
 * touches the network itself (onScoreBan does), and every table is bounded (oldest record evicted first).
 */
import {
  BAN_DURATION_MS,
  INVALID_THRESHOLD,
  INVALID_WINDOW_MS,
  PEER_SCORE_MAX_TRACKED,
  SCORE_BAN_THRESHOLD,
  SCORE_COLOCATION_MAX_PENALTY,
  SCORE_COLOCATION_THRESHOLD,
  SCORE_COLOCATION_WEIGHT,
  SCORE_FIRST_DELIVERY_CAP,
  SCORE_FIRST_DELIVERY_WEIGHT,
  SCORE_GOSSIP_THRESHOLD,
  SCORE_HALF_LIFE_MS,
  SCORE_MAX_TYPES,
  SCORE_MAX_TYPES_PER_PEER,
  SCORE_PENALTY_TOLERANCE,
  SCORE_PENALTY_WEIGHT,
  SCORE_REJECTION_ALLOWANCE,
  SCORE_REJECTION_MARGIN,
  SCORE_REJECTION_MIN_REFERENCE,
  SCORE_REJECTION_MIN_VALID,
  SCORE_BASELINE_REFRESH_MS,
  SCORE_REJECTION_WEIGHT,
  SCORE_USELESS_LINK_PENALTY,
  SCORE_VIOLATION_WEIGHT,
} from "../defaults.ts";
import type { GossipItem, LinkInfo, PeerAddress, PeerEvents, PeerId, TreeMessage, ViewMessage } from "./ports.ts";
import { ScoreTable, type ScoreParams, type ScoreParts } from "./score-table.ts";

export interface PeerScoreOptions extends Partial<ScoreParams> {
  threshold?: number;
  windowMs?: number;
  banMs?: number;
  maxTracked?: number;
  /** false: the score is kept (and shown) but never bans; strikes still do. Default true. */
  scoring?: boolean;
  gossipThreshold?: number;
  banThreshold?: number;
  now?: () => number;
  /** A score ban happened (the strikes' bans are their caller's business): disconnect the peer. `evidence` names
   *  what took the score below the threshold (kebab-case: module-rejections, graft-flood, …). */
  onScoreBan?: (peer: PeerId, evidence: string) => void;
  /** `peer` gave us something first: an item (`newItem`; valid or rejected, the verdict is the baseline's business)
   *  or an announcement of an ID we did not have. The core's link usefulness (src/gossip/link-usefulness.ts) counts it. */
  onFirst?: (peer: PeerId, newItem: boolean) => void;
  /** Penalty units for a link dropped as useless (see recordUselessLink). */
  uselessLinkPenalty?: number;
}

interface Strikes {
  windowStart: number;
  count: number;
}

export interface PeerScoreStats {
  tracked: number;
  banned: number;
  /** Bans by the score (not by strikes) since the start. */
  scoreBans: number;
}

export class PeerScore implements PeerEvents {
  readonly threshold: number;
  readonly windowMs: number;
  readonly banMs: number;
  readonly maxTracked: number;
  readonly scoring: boolean;
  readonly gossipThreshold: number;
  readonly banThreshold: number;
  readonly table: ScoreTable;
  private readonly now: () => number;
  private readonly onScoreBan: (peer: PeerId, evidence: string) => void;
  private readonly onFirst: (peer: PeerId, newItem: boolean) => void;
  readonly uselessLinkPenalty: number;
  private readonly strikes = new Map<PeerId, Strikes>();
  /** Items a local module rejected, per peer, since tracking began (a plain count for stats; the score decays). */
  private readonly rejections = new Map<PeerId, number>();
  /** peer → time the ban ends. */
  private readonly bans = new Map<PeerId, number>();
  private scoreBans = 0;

  constructor(options: PeerScoreOptions = {}) {
    this.threshold = options.threshold ?? INVALID_THRESHOLD;
    this.windowMs = options.windowMs ?? INVALID_WINDOW_MS;
    this.banMs = options.banMs ?? BAN_DURATION_MS;
    this.maxTracked = options.maxTracked ?? PEER_SCORE_MAX_TRACKED;
    this.scoring = options.scoring ?? true;
    this.gossipThreshold = options.gossipThreshold ?? SCORE_GOSSIP_THRESHOLD;
    this.banThreshold = options.banThreshold ?? SCORE_BAN_THRESHOLD;
    this.now = options.now ?? (() => performance.now());
    this.onScoreBan = options.onScoreBan ?? (() => {});
    this.onFirst = options.onFirst ?? (() => {});
    this.uselessLinkPenalty = options.uselessLinkPenalty ?? SCORE_USELESS_LINK_PENALTY;
    if (!(this.threshold >= 1)) throw new RangeError(`PeerScore: threshold must be ≥ 1, got ${this.threshold}`);
    if (!(this.banThreshold < this.gossipThreshold)) throw new RangeError("PeerScore: the ban threshold must lie below the gossip threshold");
    this.table = new ScoreTable(scoreParams(options, this.maxTracked), this.now);
  }

  /**
   * One strike against `peer` (a protocol violation; it also lowers the score). Returns true if it got the peer
   * banned: the caller then disconnects it.
   */
  recordInvalid(peer: PeerId): boolean {
    if (this.isBanned(peer)) return false;
    this.table.violation(peer);
    const now = this.now();
    let record = this.strikes.get(peer);
    if (record === undefined || now - record.windowStart >= this.windowMs) {
      this.strikes.delete(peer); // re-insert at the tail: the map's head stays the stalest record
      record = { windowStart: now, count: 0 };
      this.strikes.set(peer, record);
      evictOldest(this.strikes, this.maxTracked);
    }
    record.count++;
    if (record.count < this.threshold && !this.belowBan(peer)) return false;
    this.ban(peer);
    return true;
  }

  /** An item from `peer` that a local module declared invalid. Returns true if the score got it banned (the core
   *  has been told to disconnect it). */
  recordRejection(peer: PeerId, dataType: number): boolean {
    const n = (this.rejections.get(peer) ?? 0) + 1;
    this.rejections.delete(peer); // re-insert at the tail: the map's head stays the stalest record
    this.rejections.set(peer, n);
    evictOldest(this.rejections, this.maxTracked);
    if (this.isBanned(peer)) return false;
    this.onFirst(peer, true); // it did bring the item first; whether it is useful is the module's taste
    this.table.rejection(peer, dataType);
    return this.check(peer, "module-rejections");
  }

  /**
   * The first copy of an item came from `peer` and local modules found it valid: credit. Called by the broadcaster
   * once validation is done (only it knows the verdict), never for unvalidated copies.
   */
  recordFirstDelivery(peer: PeerId, dataType?: number): void {
    if (this.isBanned(peer)) return;
    this.table.firstDelivery(peer, dataType);
    this.onFirst(peer, true);
  }

  /** `peer` announced (IHAVE) an ID we did not have yet: the link is of use even when its copies never come first.
   *  No score credit (an announcement costs nothing to invent; unserved ones are penalised). */
  recordFirstAnnouncement(peer: PeerId): void {
    if (!this.isBanned(peer)) this.onFirst(peer, false);
  }

  /**
   * The core dropped the link to `peer` as useless, and it was mute (it never said anything while items flowed
   * through other links, src/gossip/link-usefulness.ts): a behavioural penalty of uselessLinkPenalty units, so that one such drop stays
   * within the tolerance and a second soon after bans (a first one could be a slip: the peer may have lost its own
   * links at the time). Returns true if it got the peer banned.
   */
  recordUselessLink(peer: PeerId): boolean {
    if (this.isBanned(peer)) return false;
    this.table.penalty(peer, this.uselessLinkPenalty);
    return this.check(peer, "useless-link");
  }

  /** We GRAFTed an ID `peer` announced, and it neither sent the item nor said it no longer has it in time. */
  recordUnservedAnnouncement(peer: PeerId): boolean {
    return this.penalise(peer, "unserved-announcements");
  }

  /** `peer` sent GRAFTs faster than any honest repair needs (the tree code decides what a flood is). */
  recordGraftFlood(peer: PeerId): boolean {
    return this.penalise(peer, "graft-flood");
  }

  /** `peer` sent rooted-tree adverts faster than any honest node's place changes (src/gossip/tree-root.ts). */
  recordAdvertFlood(peer: PeerId): boolean {
    return this.penalise(peer, "advert-flood");
  }

  /** `peer` sent announcements faster than any honest node forwards items. */
  recordAnnouncementFlood(peer: PeerId): boolean {
    return this.penalise(peer, "announcement-flood");
  }

  /** An eager link of `peer` delivered an item late (after an announcement of it elsewhere) or never. */
  recordEagerMiss(peer: PeerId): boolean {
    return this.penalise(peer, "eager-miss");
  }

  /** The peer's score now (0 for a peer never seen). */
  scoreOf(peer: PeerId): number {
    return this.table.scoreOf(peer);
  }

  scoreParts(peer: PeerId): ScoreParts {
    return this.table.parts(peer);
  }

  /** Whether we send `peer` announcements and graft what it announces (score at or above the gossip threshold). */
  acceptsGossip(peer: PeerId): boolean {
    return !this.scoring || this.table.scoreOf(peer) >= this.gossipThreshold;
  }

  /** Items from `peer` that local modules rejected (since tracking began, while it is among the tracked). */
  rejectionsOf(peer: PeerId): number {
    return this.rejections.get(peer) ?? 0;
  }

  /** Bans `peer` for `ms` (default banMs) from now, whatever its strikes; its score starts over after it. */
  ban(peer: PeerId, ms: number = this.banMs): void {
    this.strikes.delete(peer);
    this.table.forget(peer);
    this.bans.delete(peer);
    this.bans.set(peer, this.now() + ms);
    evictOldest(this.bans, this.maxTracked);
  }

  isBanned(peer: PeerId): boolean {
    const until = this.bans.get(peer);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.bans.delete(peer);
    return false;
  }

  /** Strikes in the peer's current window (0 when none or the window has passed). */
  strikesOf(peer: PeerId): number {
    const record = this.strikes.get(peer);
    if (record === undefined || this.now() - record.windowStart >= this.windowMs) return 0;
    return record.count;
  }

  stats(): PeerScoreStats {
    return { tracked: this.strikes.size + this.rejections.size, banned: this.bans.size, scoreBans: this.scoreBans };
  }

  // Link events (the core tells the score before the broadcaster): colocation counts linked peers per IP or /64.
  linkUp(info: LinkInfo): void {
    this.table.linkUp(info.peer, info.host);
  }
  linkDown(peer: PeerId, _reason: string): void {
    this.table.linkDown(peer);
  }
  item(_from: PeerId, _item: GossipItem): void {}
  peersRequested(_from: PeerId): void {}
  peers(_from: PeerId, _peers: PeerAddress[]): void {}
  tree(_from: PeerId, _message: TreeMessage): void {}
  views(_from: PeerId, _message: ViewMessage): void {}

  private penalise(peer: PeerId, why: string): boolean {
    if (this.isBanned(peer)) return false;
    this.table.penalty(peer);
    return this.check(peer, why);
  }

  private belowBan(peer: PeerId): boolean {
    return this.scoring && this.table.scoreOf(peer) < this.banThreshold;
  }

  /** Bans `peer` if its score fell below the ban threshold; true if so (onScoreBan has been told). */
  private check(peer: PeerId, why: string): boolean {
    if (!this.belowBan(peer)) return false;
    this.ban(peer);
    this.scoreBans++;
    this.onScoreBan(peer, why);
    return true;
  }
}

function scoreParams(o: Partial<ScoreParams>, maxTracked: number): ScoreParams {
  return {
    halfLifeMs: o.halfLifeMs ?? SCORE_HALF_LIFE_MS,
    firstDeliveryWeight: o.firstDeliveryWeight ?? SCORE_FIRST_DELIVERY_WEIGHT,
    firstDeliveryCap: o.firstDeliveryCap ?? SCORE_FIRST_DELIVERY_CAP,
    violationWeight: o.violationWeight ?? SCORE_VIOLATION_WEIGHT,
    penaltyWeight: o.penaltyWeight ?? SCORE_PENALTY_WEIGHT,
    penaltyTolerance: o.penaltyTolerance ?? SCORE_PENALTY_TOLERANCE,
    rejectionWeight: o.rejectionWeight ?? SCORE_REJECTION_WEIGHT,
    rejectionMargin: o.rejectionMargin ?? SCORE_REJECTION_MARGIN,
    rejectionAllowance: o.rejectionAllowance ?? SCORE_REJECTION_ALLOWANCE,
    rejectionMinReference: o.rejectionMinReference ?? SCORE_REJECTION_MIN_REFERENCE,
    rejectionMinValid: o.rejectionMinValid ?? SCORE_REJECTION_MIN_VALID,
    baselineRefreshMs: o.baselineRefreshMs ?? SCORE_BASELINE_REFRESH_MS,
    colocationWeight: o.colocationWeight ?? SCORE_COLOCATION_WEIGHT,
    colocationThreshold: o.colocationThreshold ?? SCORE_COLOCATION_THRESHOLD,
    colocationMaxPenalty: o.colocationMaxPenalty ?? SCORE_COLOCATION_MAX_PENALTY,
    colocationLoopback: o.colocationLoopback ?? false,
    maxTypes: o.maxTypes ?? SCORE_MAX_TYPES,
    maxTypesPerPeer: o.maxTypesPerPeer ?? SCORE_MAX_TYPES_PER_PEER,
    maxTracked: o.maxTracked ?? maxTracked,
  };
}

function evictOldest<K, V>(map: Map<K, V>, max: number): void {
  while (map.size > max) map.delete(map.keys().next().value as K);
}
