/**
 * What broadcast-tree peers promise and whether they keep it (the tree penalties of docs/decisions.md, "Broadcast
 * trees"): an announcement (IHAVE) promises the item, so a GRAFT for it must be answered with the item or "don't
 * have" within a deadline; and a GRAFT asks for something we announced, so a peer asking for far more than we
 * announced to it floods. Plumtree (plumtree.ts) feeds this table and passes on its verdicts; the peer score
 * (peer-score.ts) turns them into penalties.
 *
 * Honest peers must never be judged for what honestly happens: an answer lost at a full send buffer, a slow link (the
 * deadline is many round trips), a retry of the same GRAFT (one promise per peer and ID), a link that went down (its
 * promises go with it). So an unserved GRAFT counts only as part of a run: from the `unservedRun`-th unserved in a
 * row on (none answered between), each is a verdict. A GRAFT flood is judged against what we announced: honest
 * peers ask each announcer at most `graftRounds` times per ID, plus an allowance.
 *
 * Pure state machine: time comes in as `now`, no timers, no I/O. Must never: hold more than `maxPromises` awaited
 * answers (the oldest goes unjudged) or one ledger per linked peer, keep anything of a peer whose link is gone, or
 * judge a peer before its deadline has passed.
 */
import { Fifo } from "../util/fifo.ts";

export interface TreePromiseParams {
  /** A GRAFTed peer must answer (the item, or "don't have") within this long. */
  serveDeadlineMs: number;
  /** From this many unserved GRAFTs in a row on (none answered between), each is a verdict. */
  unservedRun: number;
  /** GRAFT rounds an honest peer may ask one announcer for one ID (Plumtree's graftRounds). */
  graftRounds: number;
  /** IDs a peer may GRAFT beyond graftRounds × the IDs we announced to it before that is a flood. */
  graftAllowance: number;
  /** Awaited answers kept at most. */
  maxPromises: number;
}

interface Awaited {
  /** `${peer} ${key}`, its key in the table (so that the order ring names the entry without a pair per GRAFT). */
  k: string;
  peer: string;
  at: number;
}

interface PeerLedger {
  /** Unserved GRAFTs since the last answered one. */
  run: number;
  /** IDs we announced to the peer, and IDs it GRAFTed from us, since the link came up or the last flood verdict. */
  announced: number;
  grafted: number;
}

export interface TreePromiseStats {
  /** Answers awaited now. (Verdicts are returned to the caller, which counts them: plumtree.ts PlumtreeStats.) */
  awaited: number;
}

export class TreePromises {
  /** `${peer} ${key}` → when we first GRAFTed the peer for the ID. */
  private readonly awaited = new Map<string, Awaited>();
  /** `awaited`'s entries oldest first (util/fifo.ts says why not the Map's order); one whose record is no longer the
   *  Map's (answered, or answered and GRAFTed again) is stale and skipped. */
  private readonly order = new Fifo<Awaited>();
  private readonly peers = new Map<string, PeerLedger>();

  constructor(private readonly p: TreePromiseParams) {
    if (!(p.unservedRun >= 1)) throw new RangeError(`tree promises: unservedRun must be ≥ 1, got ${p.unservedRun}`);
  }

  /** We GRAFTed `peer` for `key` (a retry of the same GRAFT keeps the first deadline). */
  grafted(peer: string, key: string, now: number): void {
    const k = `${peer} ${key}`;
    if (this.awaited.has(k)) return;
    const record: Awaited = { k, peer, at: now };
    this.awaited.set(k, record);
    this.order.push(record);
    this.ledger(peer);
    while (this.awaited.size > this.p.maxPromises || this.order.length > 2 * this.p.maxPromises) {
      const oldest = this.order.shift()!;
      if (this.awaited.get(oldest.k) === oldest) this.awaited.delete(oldest.k);
    }
  }

  /** `peer` sent the item `key` (any copy) or said it does not have it: a promise kept, its run starts over. */
  answered(peer: string, key: string): void {
    if (this.awaited.size === 0 || !this.awaited.delete(`${peer} ${key}`)) return; // (every copy comes here)
    const l = this.peers.get(peer);
    if (l !== undefined) l.run = 0;
  }

  /** The peers whose GRAFT deadline passed unanswered at the end of a run (one entry per verdict). */
  expire(now: number): string[] {
    const verdicts: string[] = [];
    for (let a = this.oldest(); a !== undefined; a = this.oldest()) {
      // `at + deadline`, the very sum nextDeadline() gives the timer (`now - at` may fall a hair short of it).
      if (a.at + this.p.serveDeadlineMs > now) break; // time order: the rest are younger
      this.order.shift();
      this.awaited.delete(a.k);
      const l = this.peers.get(a.peer);
      if (l === undefined) continue;
      if (++l.run >= this.p.unservedRun) verdicts.push(a.peer);
    }
    return verdicts;
  }

  /** When the oldest awaited answer is due (undefined when none is awaited). */
  nextDeadline(): number | undefined {
    const head = this.oldest();
    return head === undefined ? undefined : head.at + this.p.serveDeadlineMs;
  }

  /** The oldest entry still awaited (stale ones at the head are dropped on the way). */
  private oldest(): Awaited | undefined {
    for (let head = this.order.peek(); head !== undefined; head = this.order.peek()) {
      if (this.awaited.get(head.k) === head) return head;
      this.order.shift();
    }
    return undefined;
  }

  /** We sent `peer` announcements of `ids` IDs. */
  announcedTo(peer: string, ids: number): void {
    this.ledger(peer).announced += ids;
  }

  /** `peer` GRAFTed `ids` IDs from us: true if that makes a flood (the ledger then starts over, so each further
   *  allowance's worth is another verdict). */
  graftedBy(peer: string, ids: number): boolean {
    const l = this.ledger(peer);
    l.grafted += ids;
    if (l.grafted <= this.p.graftRounds * l.announced + this.p.graftAllowance) return false;
    l.grafted = 0;
    l.announced = 0;
    return true;
  }

  /** The link is gone: so are its promises (a peer cannot answer on a link that is down). */
  forget(peer: string): void {
    this.peers.delete(peer);
    for (const [k, a] of this.awaited) if (a.peer === peer) this.awaited.delete(k);
  }

  stats(): TreePromiseStats {
    return { awaited: this.awaited.size };
  }

  private ledger(peer: string): PeerLedger {
    let l = this.peers.get(peer);
    if (l === undefined) {
      l = { run: 0, announced: 0, grafted: 0 };
      this.peers.set(peer, l);
    }
    return l;
  }
}
