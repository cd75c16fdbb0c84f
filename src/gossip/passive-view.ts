/**
 * HyParView's passive view: the addresses a node may promote to its active view (bootstrappers, the peer store, RPS
 * answers, walks, shuffles, peers it dropped or was dropped by), on a bounded CandidateTable (candidates.ts) with its
 * per-address backoff. Used by hyparview.ts. Must never: hold our own address, a banned peer's, or more than its
 * bound; evict an address being dialed.
 */
import { CANDIDATE_MAX_FAILURES, DIAL_BACKOFF_INITIAL_MS, DIAL_BACKOFF_MAX_MS, outboundPerIpCap } from "../defaults.ts";
import { formatHostPort } from "../address.ts";
import { CandidateTable, spreadOverHosts, type Candidate } from "./candidates.ts";
import { shuffle } from "./view-shuffle.ts";
import type { LinkInfo, PeerAddress, PeerId } from "./ports.ts";

export interface PassiveViewOptions {
  size: number;
  degree: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  random: () => number;
  now(): number;
  localId: PeerId;
  isOwnAddress?(host: string, port: number): boolean;
  isBanned(peer: PeerId): boolean;
  /** Address keys with a dial in flight (never evicted, never picked). */
  dialing: ReadonlyMap<string, unknown>;
}

export class PassiveView {
  private readonly table: CandidateTable;

  constructor(private readonly o: PassiveViewOptions) {
    this.table = new CandidateTable({
      maxCandidates: o.size,
      backoffInitialMs: o.backoffInitialMs ?? DIAL_BACKOFF_INITIAL_MS,
      backoffMaxMs: o.backoffMaxMs ?? DIAL_BACKOFF_MAX_MS,
      maxFailures: CANDIDATE_MAX_FAILURES,
    });
  }

  get size(): number {
    return this.table.size;
  }

  /** Adds an address unless it is us or banned; `restMs` delays dialing it. */
  learn(addr: PeerAddress, flags: { bootstrap?: boolean; proven?: boolean }, restMs = 0): Candidate | undefined {
    if (addr.id !== undefined && (addr.id === this.o.localId || this.o.isBanned(addr.id))) return undefined;
    if (this.o.isOwnAddress?.(addr.host, addr.port)) return undefined;
    const c = this.table.learn(addr, flags, this.o.dialing); // the dials in flight, by key: never evicted
    if (c && restMs > 0) c.nextAttemptAt = Math.max(c.nextAttemptAt, this.o.now() + restMs);
    return c;
  }

  /** A dial of `c` failed: it backs off (and hearsay is forgotten after a few failures); returns the delay. */
  fail(c: Candidate): number {
    return this.table.fail(c, this.o.now());
  }

  markSelf(key: string): void {
    this.table.markSelf(key);
  }

  /** Random due entries, spread over hosts (per-IP cap), never linked, banned, dialing or ourselves. */
  pick(want: number, links: LinkInfo[]): [string, Candidate][] {
    const now = this.o.now();
    const linkedIds = new Set(links.map((l) => l.peer));
    const linkedAddrs = new Set(links.filter((l) => l.port > 0).map((l) => formatHostPort(l)));
    const perHost = new Map<string, number>();
    for (const l of links) if (!l.inbound) perHost.set(l.host, (perHost.get(l.host) ?? 0) + 1);
    const due: [string, Candidate][] = [];
    for (const [key, c] of this.table.entries()) {
      if (c.nextAttemptAt > now || this.o.dialing.has(key) || linkedAddrs.has(key)) continue;
      if (c.id !== undefined && (c.id === this.o.localId || linkedIds.has(c.id) || this.o.isBanned(c.id))) continue;
      due.push([key, c]);
    }
    shuffle(due, this.o.random);
    return spreadOverHosts(due, want, perHost, outboundPerIpCap(this.o.degree));
  }

  /** The entries not linked now, as addresses (for shuffles and referrals). */
  addresses(links: LinkInfo[]): PeerAddress[] {
    const linked = new Set(links.map((l) => l.peer));
    const out: PeerAddress[] = [];
    for (const [, c] of this.table.entries()) if (c.id === undefined || !linked.has(c.id)) out.push({ host: c.host, port: c.port, id: c.id });
    return out;
  }
}
