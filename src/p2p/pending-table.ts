/**
 * Who gets a slot in the table of pending inbound handshakes (docs/decisions.md, "Pending handshakes: a fair share
 * per address"), as a pure function of the table's contents, so the rule is tested without sockets. Until its proof
 * of work arrives a connection has cost its opener nothing, so when the table is full a newcomer may take the slot of
 * the oldest such connection from the address that holds the most slots, but only if that address holds at least two
 * more than the newcomer's would: shares even out, and equals never push each other out. A connection whose proof of
 * work was accepted is never evicted (it paid), nor is any of our own dials.
 * Never does I/O, keeps no state, and never evicts to admit a newcomer whose address is at its own per-IP cap.
 */

/** One inbound connection in its handshake, as the table sees it. */
export interface PendingInbound {
  /** Remote IP. */
  host: string;
  /** When its socket opened (any monotonic milliseconds). */
  openedAt: number;
  /** Still waiting for the proof of work (no valid M1 yet): evictable. */
  awaitingWork: boolean;
}

export interface PendingLimits {
  /** Handshakes in progress at once, inbound and our own dials together. */
  maxPending: number;
  /** Inbound handshakes in progress from one IP at once. */
  maxPerIp: number;
}

export type PendingDecision<T> = { kind: "admit" } | { kind: "evict"; victim: T } | { kind: "refuse" };

/**
 * The decision for a new inbound connection from `host`. `inbound`: the inbound handshakes in progress; `total`: all
 * handshakes in progress (our dials included).
 */
export function admitPending<T extends PendingInbound>(host: string, inbound: readonly T[], total: number, limits: PendingLimits): PendingDecision<T> {
  const perHost = new Map<string, number>();
  for (const p of inbound) perHost.set(p.host, (perHost.get(p.host) ?? 0) + 1);
  const own = perHost.get(host) ?? 0;
  if (own >= limits.maxPerIp) return { kind: "refuse" };
  if (total < limits.maxPending) return { kind: "admit" };
  // The oldest evictable connection of the address with the largest share, if that share is at least two above ours.
  let victim: T | undefined;
  let victimShare = 0;
  for (const p of inbound) {
    if (!p.awaitingWork) continue;
    const share = perHost.get(p.host)!;
    if (share <= own + 1) continue; // evening out only, never between equals
    if (victim === undefined || share > victimShare || (share === victimShare && p.openedAt < victim.openedAt)) {
      victim = p;
      victimShare = share;
    }
  }
  return victim === undefined ? { kind: "refuse" } : { kind: "evict", victim };
}
