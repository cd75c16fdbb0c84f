/**
 * The addresses membership may dial: a bounded table keyed by host:port, with per-address backoff. Insertion order
 * is eviction order (hearsay before addresses that were once linked, "proven"); bootstrappers are never evicted.
 * Failing hearsay is forgotten after a few attempts; bootstrappers and proven addresses only back off. Pure bookkeeping: it dials nothing and reads no clock of its own.
 */
import { formatHostPort, isLoopback } from "../address.ts";
import type { PeerAddress, PeerId } from "./ports.ts";

export interface Candidate {
  host: string;
  port: number;
  id?: PeerId;
  bootstrap: boolean;
  /** Was linked to us once (a stable outbound link or an inbound link), or came from the peer store. */
  proven: boolean;
  /** Consecutive failed attempts; the backoff is derived from it. */
  failures: number;
  /** Not dialed before this time. */
  nextAttemptAt: number;
  /** When the last dial to it succeeded (to tell a stable link from one dropped at once). */
  linkedAt?: number;
  /** Not dialed as an isolation probe before this time (a probe to it gave nothing; Membership.probeDone). */
  probeRestUntil?: number;
}

export interface CandidateTableOptions {
  maxCandidates: number;
  backoffInitialMs: number;
  backoffMaxMs: number;
  /** Hearsay addresses are forgotten after this many consecutive failures. */
  maxFailures: number;
}

export class CandidateTable {
  private readonly byKey = new Map<string, Candidate>();
  /** Addresses that answered with our own ID: never learned again. */
  private readonly selfAddresses = new Set<string>();
  private changes = 0;

  constructor(private readonly options: CandidateTableOptions) {}

  get size(): number {
    return this.byKey.size;
  }

  /** Changes whenever an address comes or goes or an entry's ID is learned (what `spare` depends on). */
  get version(): number {
    return this.changes;
  }

  get(key: string): Candidate | undefined {
    return this.byKey.get(key);
  }

  entries(): IterableIterator<[string, Candidate]> {
    return this.byKey.entries();
  }

  /**
   * Adds a well-formed address unless it is one of ours; an address already known keeps its ID (an ID once learned
   * is not overwritten by hearsay). When full, evicts the oldest evictable entry not in `pinned` (dials in flight).
   */
  learn(addr: PeerAddress, flags: { bootstrap?: boolean; proven?: boolean }, pinned: { has(key: string): boolean }): Candidate | undefined {
    if (typeof addr.host !== "string" || addr.host.length === 0) return undefined;
    if (!Number.isInteger(addr.port) || addr.port < 1 || addr.port > 65535) return undefined;
    const key = formatHostPort(addr);
    if (this.selfAddresses.has(key)) return undefined;
    let c = this.byKey.get(key);
    if (c === undefined) {
      if (this.byKey.size >= this.options.maxCandidates && !this.evictOne(pinned)) return undefined;
      c = { host: addr.host, port: addr.port, id: addr.id, bootstrap: false, proven: false, failures: 0, nextAttemptAt: 0 };
      this.byKey.set(key, c);
      this.changes++;
    }
    if (c.id === undefined && addr.id !== undefined) this.setId(c, addr.id);
    c.bootstrap ||= flags.bootstrap ?? false;
    c.proven ||= flags.proven ?? false;
    return c;
  }

  /** The address turned out to be our own listener: forget it for good. */
  markSelf(key: string): void {
    this.selfAddresses.add(key);
    if (this.byKey.delete(key)) this.changes++;
  }

  /** The peer at `c` turned out to be `id` (a dial to it succeeded). */
  setId(c: Candidate, id: PeerId): void {
    if (c.id === id) return;
    c.id = id;
    this.changes++;
  }

  /** Records a failed attempt: backs off exponentially; returns the delay. Hearsay is dropped after maxFailures. */
  fail(c: Candidate, now: number): number {
    c.failures++;
    c.linkedAt = undefined;
    const { backoffInitialMs, backoffMaxMs, maxFailures } = this.options;
    const delay = Math.min(backoffMaxMs, backoffInitialMs * 2 ** Math.min(c.failures - 1, 30));
    c.nextAttemptAt = now + delay;
    if (!c.bootstrap && !c.proven && c.failures >= maxFailures) {
      const key = formatHostPort(c);
      if (this.byKey.get(key) === c) {
        this.byKey.delete(key);
        this.changes++;
      }
    }
    return delay;
  }

  /** Entries not linked now (by address or ID): what we could dial if links were lost. Stops counting at `enough`
   *  (membership asks every tick whether there are `degree` of them, and the table may hold a thousand). */
  spare(linkedAddrs: ReadonlySet<string>, linkedIds: ReadonlySet<PeerId>, enough = Infinity): number {
    let spare = 0;
    for (const [key, c] of this.byKey) {
      if (!linkedAddrs.has(key) && (c.id === undefined || !linkedIds.has(c.id)) && ++spare >= enough) break;
    }
    return spare;
  }

  /** Evicts the oldest hearsay entry, else the oldest proven one; never a bootstrapper or a pinned key. */
  private evictOne(pinned: { has(key: string): boolean }): boolean {
    for (const provenToo of [false, true]) {
      for (const [key, c] of this.byKey) {
        if (c.bootstrap || (c.proven && !provenToo) || pinned.has(key)) continue;
        this.byKey.delete(key);
        this.changes++;
        return true;
      }
    }
    return false;
  }
}

/**
 * Picks up to `want` of `due` (already in random order) to dial: repeatedly from the host we have the fewest
 * outbound links to, so slots spread over IPs; a host at `maxPerHost` gets no more (loopback exempt: local nodes all
 * share it), and a peer listed under two addresses is dialed once. Updates `outboundPerHost` for what it picks.
 */
export function spreadOverHosts(
  due: readonly [string, Candidate][],
  want: number,
  outboundPerHost: Map<string, number>,
  maxPerHost: number,
): [string, Candidate][] {
  const byHost = new Map<string, [string, Candidate][]>();
  for (const entry of due) {
    const bucket = byHost.get(entry[1].host);
    if (bucket === undefined) byHost.set(entry[1].host, [entry]);
    else bucket.push(entry);
  }
  const chosen: [string, Candidate][] = [];
  const chosenIds = new Set<PeerId>();
  while (chosen.length < want && byHost.size > 0) {
    let host = "";
    let fewest = Infinity;
    for (const h of byHost.keys()) {
      const count = outboundPerHost.get(h) ?? 0;
      if (count < fewest) [host, fewest] = [h, count];
    }
    const bucket = byHost.get(host)!;
    if ((fewest >= maxPerHost && !isLoopback(host)) || bucket.length === 0) {
      byHost.delete(host);
      continue;
    }
    const entry = bucket.shift()!;
    const id = entry[1].id;
    if (id !== undefined) {
      if (chosenIds.has(id)) continue;
      chosenIds.add(id);
    }
    outboundPerHost.set(host, fewest + 1);
    chosen.push(entry);
  }
  return chosen;
}
