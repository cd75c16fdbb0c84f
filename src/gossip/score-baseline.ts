/**
 * The node's own baseline of module rejections, per data type, for the peer score (score-table.ts): of the items of
 * that type delivered by the *reference* peers — those that delivered at least SCORE_REJECTION_MIN_VALID valid items
 * of it (decayed) — the share local modules rejected, leaving out the peer being judged. Peers that never delivered
 * anything valid (garbage senders, however many) are no reference: they cannot raise the baseline to hide behind it.
 * Sums are recomputed from the peer records once `refreshMs` have passed or the items validated since the last pass
 * reach a quarter of the reference (at least `minReference`): a rejection flood costs a pass over the records per
 * many items, never one per item. In between they are decayed. Pure: time comes in as `now`; bounded to `maxTypes` types.
 */
import { valueAt, type Decaying } from "./score-decay.ts";
import type { PeerId } from "./ports.ts";

export interface TypeSample {
  validated: Decaying;
  rejected: Decaying;
}

interface Reference {
  at: number;
  /** Items of the type validated since this pass. */
  since: number;
  validated: number;
  rejected: number;
  /** Each reference peer's share of the sums at `at` (to leave it out). */
  members: Map<PeerId, [validated: number, rejected: number]>;
}

export interface BaselineParams {
  rate: number;
  refreshMs: number;
  minValid: number;
  minReference: number;
  maxTypes: number;
}

export class RejectionBaselines {
  private readonly cache = new Map<number, Reference>();

  constructor(private readonly p: BaselineParams) {}

  /**
   * The baseline for judging `peer` on `dataType`: the rejected share of the other reference peers' items, or
   * undefined when they delivered fewer than `minReference` items of it (nobody to compare with: not judged).
   */
  baselineFor(peer: PeerId, dataType: number, now: number, peers: ReadonlyMap<PeerId, { types: Map<number, TypeSample> }>): number | undefined {
    const ref = this.reference(dataType, now, peers);
    const mine = ref.members.get(peer);
    const decay = Math.exp(-this.p.rate * Math.max(0, now - ref.at));
    const validated = (ref.validated - (mine?.[0] ?? 0)) * decay;
    const rejected = (ref.rejected - (mine?.[1] ?? 0)) * decay;
    if (validated < this.p.minReference) return undefined;
    return Math.min(1, Math.max(0, rejected / validated));
  }

  /** The rejected share over every reference peer (for stats and /status), undefined before any. */
  overall(dataType: number, now: number, peers: ReadonlyMap<PeerId, { types: Map<number, TypeSample> }>): number | undefined {
    const ref = this.reference(dataType, now, peers);
    return ref.validated > 0 ? ref.rejected / ref.validated : undefined;
  }

  /** One more item of `dataType` was validated (from any peer). */
  noteValidated(dataType: number): void {
    const ref = this.cache.get(dataType);
    if (ref !== undefined) ref.since++;
  }

  get types(): number {
    return this.cache.size;
  }

  private reference(dataType: number, now: number, peers: ReadonlyMap<PeerId, { types: Map<number, TypeSample> }>): Reference {
    const cached = this.cache.get(dataType);
    if (cached !== undefined && now - cached.at < this.p.refreshMs && cached.since < Math.max(this.p.minReference, cached.validated / 4)) {
      return cached;
    }
    const ref: Reference = { at: now, since: 0, validated: 0, rejected: 0, members: new Map() };
    for (const [peer, record] of peers) {
      const sample = record.types.get(dataType);
      if (sample === undefined) continue;
      const n = valueAt(sample.validated, now, this.p.rate);
      const k = valueAt(sample.rejected, now, this.p.rate);
      if (n - k < this.p.minValid) continue;
      ref.validated += n;
      ref.rejected += k;
      ref.members.set(peer, [n, k]);
    }
    this.cache.delete(dataType); // re-inserted at the tail: the least recently refreshed type goes first
    this.cache.set(dataType, ref);
    while (this.cache.size > this.p.maxTypes) this.cache.delete(this.cache.keys().next().value as number);
    return ref;
  }
}
