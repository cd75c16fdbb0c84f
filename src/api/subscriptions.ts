/**
 * Who subscribed to what: data type → connections, connection → data types, both bounded (a module subscribing to
 * every one of the 65 536 types on many connections must not take the node's memory).
 *
 * No sockets: the server adds and removes connections and asks who gets a NOTIFICATION.
 * Must never: hold more than `maxPerConnection` types for one connection or `maxTotal` (connection, type) pairs in
 * all, keep an empty set for a type, or count a repeated NOTIFY twice.
 */

/** What subscribe() did: added, already there (NOTIFY is idempotent), or refused by one of the two bounds. */
export type SubscribeOutcome = "added" | "already" | "too-many-subscriptions" | "subscription-table-full";

export interface SubscriptionLimits {
  /** Data types one connection may subscribe to. */
  maxPerConnection: number;
  /** (connection, data type) pairs on the node. */
  maxTotal: number;
}

export class SubscriptionTable<C> {
  private readonly byType = new Map<number, Set<C>>();
  private readonly byConn = new Map<C, Set<number>>();
  private total = 0;

  constructor(private readonly limits: SubscriptionLimits) {}

  subscribe(conn: C, dataType: number): SubscribeOutcome {
    let types = this.byConn.get(conn);
    if (types?.has(dataType)) return "already";
    if ((types?.size ?? 0) >= this.limits.maxPerConnection) return "too-many-subscriptions";
    if (this.total >= this.limits.maxTotal) return "subscription-table-full";
    if (types === undefined) this.byConn.set(conn, (types = new Set()));
    types.add(dataType);
    let conns = this.byType.get(dataType);
    if (conns === undefined) this.byType.set(dataType, (conns = new Set()));
    conns.add(conn);
    this.total++;
    return "added";
  }

  /** Every subscription of the connection ends (it closed). */
  remove(conn: C): void {
    const types = this.byConn.get(conn);
    if (types === undefined) return;
    this.byConn.delete(conn);
    for (const dataType of types) {
      const conns = this.byType.get(dataType)!;
      conns.delete(conn);
      if (conns.size === 0) this.byType.delete(dataType);
    }
    this.total -= types.size;
  }

  /** The connections subscribed to the type, in subscription order (a copy). */
  subscribers(dataType: number): C[] {
    const conns = this.byType.get(dataType);
    return conns === undefined ? [] : [...conns];
  }

  count(dataType: number): number {
    return this.byType.get(dataType)?.size ?? 0;
  }

  has(conn: C): boolean {
    return this.byConn.has(conn);
  }

  /** (connection, data type) pairs now. */
  get size(): number {
    return this.total;
  }

  /** Connections with at least one subscription. */
  get connections(): number {
    return this.byConn.size;
  }

  /** Subscribed connections per data type. */
  countsByType(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const [dataType, conns] of this.byType) counts.set(dataType, conns.size);
    return counts;
  }
}
