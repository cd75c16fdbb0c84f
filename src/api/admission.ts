/**
 * Who gets a slot under the API connection cap (issue 18 item 4). Below the cap a connection is served at once. At
 * the cap a newcomer waits on probation (a bounded pool, not counted against the cap) until it sends a whole
 * message: then it takes the slot of the longest-idle served connection that holds nothing (no subscription,
 * nothing awaited or queued, not paused; those that never sent a whole message first). One that says nothing in
 * time, or finds nobody to replace, is refused. So idle connections cannot lock modules out, and connections that
 * never speak only ever replace each other on probation (no reconnect storm reaches the served ones).
 *
 * No sockets and no timers: the server reports what happens and closes what this returns. Must never: serve more
 * than `maxServed` connections (lingering ones included), keep more than `maxProbation` on probation, or let a
 * newcomer replace a connection that holds something.
 */

export interface AdmissionOptions<C> {
  /** Served connections at most, lingering ones (closed by us, socket not gone yet) included. */
  maxServed: number;
  /** Newcomers waiting on probation at most; past it the oldest of them is refused. */
  maxProbation: number;
  /** Whether a served connection holds something (a subscription, answers awaited, output queued, messages held). */
  holdsSomething: (c: C) => boolean;
  /** Whether it has sent a whole message, and when its bytes last arrived. */
  spoke: (c: C) => boolean;
  lastActiveAt: (c: C) => number;
}

export type Opened<C> = { as: "served" } | { as: "probation"; refuse?: C };
export type Promoted<C> = { ok: true; evict?: C; terminate?: C } | { ok: false };

export class Admission<C> {
  /** Served connections (the cap counts them and `lingering`). */
  readonly served = new Set<C>();
  /** Connections we stopped serving whose socket is not gone yet: first to give way at the cap. */
  readonly lingering = new Set<C>();
  /** Newcomers at the cap, oldest first. */
  readonly probation = new Set<C>();

  constructor(private readonly o: AdmissionOptions<C>) {}

  private get full(): boolean {
    return this.served.size + this.lingering.size >= this.o.maxServed;
  }

  /** A new connection: served, or on probation (and, if the pool was full, its oldest member to refuse). */
  open(c: C): Opened<C> {
    if (!this.full) {
      this.served.add(c);
      return { as: "served" };
    }
    let refuse: C | undefined;
    if (this.probation.size >= this.o.maxProbation) {
      refuse = this.probation.values().next().value as C;
      this.probation.delete(refuse);
    }
    this.probation.add(c);
    return { as: "probation", refuse };
  }

  /** A connection on probation sent a whole message: served now, in place of whom, or refused (nobody gives way). */
  promote(c: C): Promoted<C> {
    if (!this.probation.has(c)) return { ok: true };
    this.probation.delete(c);
    if (!this.full) {
      this.served.add(c);
      return { ok: true };
    }
    for (const gone of this.lingering) {
      this.lingering.delete(gone);
      this.served.add(c);
      return { ok: true, terminate: gone };
    }
    const victim = this.idlest();
    if (victim === undefined) return { ok: false };
    this.served.delete(victim);
    this.served.add(c);
    return { ok: true, evict: victim };
  }

  /** We stopped serving it; its socket lingers until `gone`. */
  stopped(c: C, lingers: boolean): void {
    this.probation.delete(c);
    if (this.served.delete(c) && lingers) this.lingering.add(c);
  }

  /** Its socket is gone. */
  gone(c: C): void {
    this.served.delete(c);
    this.lingering.delete(c);
    this.probation.delete(c);
  }

  /** The served connection to replace: holding nothing; never spoke before spoke; then the longest idle. */
  private idlest(): C | undefined {
    const { holdsSomething, spoke, lastActiveAt } = this.o;
    let best: C | undefined;
    for (const c of this.served) {
      if (holdsSomething(c)) continue;
      if (best === undefined) {
        best = c;
        continue;
      }
      const [a, b] = [spoke(best), spoke(c)];
      if ((a && !b) || (a === b && lastActiveAt(c) < lastActiveAt(best))) best = c;
    }
    return best;
  }
}
