/**
 * The peer score's arithmetic: per peer, decaying counters of what this node observed of it, and the score they add
 * up to (src/defaults.ts, "Peer score", gives every weight its meaning; docs/decisions.md "Peer scoring" the why):
 *
 *   score = firstDeliveryWeight × min(first deliveries, cap)                        credit for useful work
 *         + violationWeight × violations                                           forged IDs, oversized items
 *         + penaltyWeight × max(0, behaviour penalties − tolerance)²              unserved GRAFTs, floods, eager misses
 *         + rejectionWeight × max(0, Σ_types excess rejections − allowance)        module verdicts against our baseline
 *         − min(colocationMax, |colocationWeight| × max(0, linked peers from its IP or /64 − threshold)²)
 *
 * Module rejections are weighed per data type against the node's own baseline (score-baseline.ts): the share of that
 * type's items from the OTHER peers that delivered valid ones that local modules rejected. A peer is charged only for
 * rejections beyond `baseline + margin × (1 − baseline)` of what it delivered, so an honest relay of an honest stream
 * (whose share matches everyone's, whatever the module's taste) is never charged, a peer that is the only source of
 * a type (no reference) is never judged on it, and garbage senders, however many, are no reference. Pure: time comes in as `now`, and every table is bounded (least recently
 * touched out first; forgetting only ever forgets evidence against a peer, or its capped credit).
 */
import { bump, decayRate, decaying, valueAt, type Decaying } from "./score-decay.ts";
import { RejectionBaselines, type TypeSample } from "./score-baseline.ts";
import { Colocation } from "./score-colocation.ts";
import type { PeerId } from "./ports.ts";

export interface ScoreParams {
  halfLifeMs: number;
  firstDeliveryWeight: number;
  firstDeliveryCap: number;
  violationWeight: number;
  penaltyWeight: number;
  penaltyTolerance: number;
  rejectionWeight: number;
  rejectionMargin: number;
  rejectionAllowance: number;
  rejectionMinReference: number;
  /** Valid items (decayed) a peer must have delivered of a type to count in that type's baseline. */
  rejectionMinValid: number;
  /** How often a type's baseline is recomputed from the peer records. */
  baselineRefreshMs: number;
  colocationWeight: number;
  colocationThreshold: number;
  colocationMaxPenalty: number;
  /** Count loopback peers for colocation (tests; local nodes share 127.0.0.1 and are exempt by default). */
  colocationLoopback: boolean;
  /** Data types with a node-wide baseline at once, and per peer. */
  maxTypes: number;
  maxTypesPerPeer: number;
  /** Peers with a record at once. */
  maxTracked: number;
}

/** The score and its parts (each part already weighted), for /status and tests. */
export interface ScoreParts {
  score: number;
  firstDeliveries: number;
  violations: number;
  penalties: number;
  rejections: number;
  colocation: number;
}

type TypeCounts = TypeSample;

interface PeerRecord {
  firstDeliveries: Decaying;
  violations: Decaying;
  penalties: Decaying;
  types: Map<number, TypeCounts>;
}

export class ScoreTable {
  private readonly rate: number;
  private readonly peers = new Map<PeerId, PeerRecord>();
  private readonly baselines: RejectionBaselines;
  private readonly colocation: Colocation;

  constructor(
    private readonly p: ScoreParams,
    private readonly now: () => number,
  ) {
    this.rate = decayRate(p.halfLifeMs);
    this.colocation = new Colocation(p.colocationLoopback);
    this.baselines = new RejectionBaselines({
      rate: this.rate,
      refreshMs: p.baselineRefreshMs,
      minValid: p.rejectionMinValid,
      minReference: p.rejectionMinReference,
      maxTypes: p.maxTypes,
    });
    if (!(p.rejectionMargin >= 0 && p.rejectionMargin <= 1)) throw new RangeError(`score rejection margin must be in [0, 1], got ${p.rejectionMargin}`);
  }

  /** A first copy of an item from `peer` that every local subscriber found valid. */
  firstDelivery(peer: PeerId, dataType?: number): void {
    const now = this.now();
    const r = this.record(peer, now);
    bump(r.firstDeliveries, now, this.rate, 1, this.p.firstDeliveryCap);
    if (dataType !== undefined) this.countValidated(r, dataType, now, false);
  }

  /** An item from `peer` that a local module rejected. */
  rejection(peer: PeerId, dataType: number): void {
    const now = this.now();
    this.countValidated(this.record(peer, now), dataType, now, true);
  }

  violation(peer: PeerId): void {
    const now = this.now();
    bump(this.record(peer, now).violations, now, this.rate, 1);
  }

  /** A behavioural penalty (an announcement not served on GRAFT, a flood, an eager link that did not deliver). */
  penalty(peer: PeerId, amount = 1): void {
    const now = this.now();
    bump(this.record(peer, now).penalties, now, this.rate, amount);
  }

  linkUp(peer: PeerId, host: string): void {
    this.colocation.linkUp(peer, host);
  }

  linkDown(peer: PeerId): void {
    this.colocation.linkDown(peer);
  }

  /** Forgets a peer's counters (its ban is the punishment; it returns with a clean slate). */
  forget(peer: PeerId): void {
    this.peers.delete(peer);
  }

  scoreOf(peer: PeerId): number {
    return this.parts(peer).score;
  }

  parts(peer: PeerId): ScoreParts {
    const now = this.now();
    const p = this.p;
    const r = this.peers.get(peer);
    const sharing = this.colocation.sharing(peer);
    const over = Math.max(0, sharing - p.colocationThreshold);
    const colocation = noNegativeZero(-Math.min(p.colocationMaxPenalty, -p.colocationWeight * over * over));
    if (r === undefined) return { score: colocation, firstDeliveries: 0, violations: 0, penalties: 0, rejections: 0, colocation };
    const firstDeliveries = p.firstDeliveryWeight * valueAt(r.firstDeliveries, now, this.rate);
    const violations = p.violationWeight * valueAt(r.violations, now, this.rate);
    const excessPenalties = Math.max(0, valueAt(r.penalties, now, this.rate) - p.penaltyTolerance);
    const penalties = p.penaltyWeight * excessPenalties * excessPenalties;
    const rejections = p.rejectionWeight * Math.max(0, this.excessRejections(peer, r, now) - p.rejectionAllowance);
    return {
      score: noNegativeZero(firstDeliveries + violations + penalties + rejections + colocation),
      firstDeliveries: noNegativeZero(firstDeliveries),
      violations: noNegativeZero(violations),
      penalties: noNegativeZero(penalties),
      rejections: noNegativeZero(rejections),
      colocation,
    };
  }

  /** Rejections beyond what the node's own baseline of each type allows (decayed items). */
  private excessRejections(peer: PeerId, r: PeerRecord, now: number): number {
    let excess = 0;
    for (const [dataType, mine] of r.types) {
      const n = valueAt(mine.validated, now, this.rate);
      const k = valueAt(mine.rejected, now, this.rate);
      if (k - n * this.p.rejectionMargin <= 0) continue; // within the margin whatever the baseline: skip the lookup
      const baseline = this.baselines.baselineFor(peer, dataType, now, this.peers);
      if (baseline === undefined) continue; // no one to compare with: not judged
      excess += Math.max(0, k - n * (baseline + this.p.rejectionMargin * (1 - baseline)));
    }
    return excess;
  }

  /** The share of a type's items from reference peers (see above) that local modules rejected (undefined before any). */
  baselineOf(dataType: number): number | undefined {
    return this.baselines.overall(dataType, this.now(), this.peers);
  }

  stats(): { tracked: number; types: number; colocated: number } {
    return { tracked: this.peers.size, types: this.baselines.types, colocated: this.colocation.linked };
  }

  private countValidated(r: PeerRecord, dataType: number, now: number, rejected: boolean): void {
    const mine = touch(r.types, dataType, now, this.p.maxTypesPerPeer);
    bump(mine.validated, now, this.rate, 1);
    if (rejected) bump(mine.rejected, now, this.rate, 1);
    this.baselines.noteValidated(dataType);
  }

  private record(peer: PeerId, now: number): PeerRecord {
    let r = this.peers.get(peer);
    if (r === undefined) {
      r = { firstDeliveries: decaying(now), violations: decaying(now), penalties: decaying(now), types: new Map() };
    } else {
      this.peers.delete(peer); // re-inserted at the tail: the map's head is the least recently touched
    }
    this.peers.set(peer, r);
    while (this.peers.size > this.p.maxTracked) this.peers.delete(this.peers.keys().next().value as PeerId);
    return r;
  }
}

/** A zero weighted by a negative weight is −0; scores show plain 0. */
function noNegativeZero(x: number): number {
  return x === 0 ? 0 : x;
}

/** The type's counts in `map`, created if needed and moved to the tail; the least recently touched go past `max`. */
function touch(map: Map<number, TypeCounts>, dataType: number, now: number, max: number): TypeCounts {
  let c = map.get(dataType);
  if (c === undefined) c = { validated: decaying(now), rejected: decaying(now) };
  else map.delete(dataType);
  map.set(dataType, c);
  while (map.size > max) map.delete(map.keys().next().value as number);
  return c;
}
