/**
 * The VoidPhone API server: local modules subscribe (NOTIFY), announce (ANNOUNCE), and answer our NOTIFICATIONs with
 * VALIDATIONs. The dissemination layer uses it through `onAnnounce` and the LocalModules port (src/gossip/ports.ts,
 * matched structurally): `hasSubscribers`, `canValidate`, `validate`.
 *
 * Bytes ⇄ messages is codec.ts/reader.ts (per socket: connection.ts), IDs, rounds and fair shares validation-table.ts,
 * subscriptions subscriptions.ts, who is served under the cap admission.ts, when announcers wait
 * announce-backpressure.ts; this file is the socket I/O and the limits around them.
 * Must never: let one connection's bytes or slowness affect another connection (a violation or an unbounded output
 * queue closes that connection only), notify anyone for an item it has no room to validate, let validate() reject or
 * hang past its timeout, or hold more than one socket read of a connection it stopped reading.
 */
import type { Socket, TCPSocketListener } from "bun";
import { API_ANNOUNCE_POLL_MS } from "../defaults.ts";
import { ApiProtocolError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { AnnounceBackpressure } from "./announce-backpressure.ts";
import { type ApiMessage, MAX_DATA_SIZE, decodeMessage, encodeNotification } from "./codec.ts";
import { Admission } from "./admission.ts";
import { ApiConnection } from "./connection.ts";
import { type AnnouncedData, type ApiServerOptions, type ApiServerStats, type ResolvedApiOptions, resolveApiOptions } from "./server-options.ts";
import { SubscriptionTable } from "./subscriptions.ts";
import { ValidationTable, type ValidationRound, type ValidationVerdict } from "./validation-table.ts";

export type { ValidationVerdict } from "./validation-table.ts";
export type { AnnouncedData, ApiLimits, ApiServerOptions, ApiServerStats } from "./server-options.ts";

type Conn = ApiConnection;
export class ApiServer {
  /** Called after every ANNOUNCE from a local module, with data the callee owns. */
  onAnnounce: ((a: AnnouncedData) => void) | undefined;
  /** Called when a validate() round ends (items from peers only), with its verdict and how long it took. */
  onValidationSettled: ((verdict: ValidationVerdict, ms: number) => void) | undefined;

  private readonly log: Logger;
  private readonly opts: ResolvedApiOptions;
  private listener: TCPSocketListener<Conn | undefined> | undefined;
  /** Who is served, lingering or on probation under the connection cap (admission.ts). */
  private readonly admission: Admission<Conn>;
  private readonly probationTimers = new Map<Conn, Timer>();
  private readonly subscriptions: SubscriptionTable<Conn>;
  private readonly table: ValidationTable<Conn>;
  private idleEvicted = 0;
  private readonly backpressure: AnnounceBackpressure;
  /** Connections holding an ANNOUNCE until the peer queues drain, in the order they were stopped (served in turn). */
  private readonly paused = new Set<Conn>();
  private announcersWait = false;
  private pollTimer: Timer | undefined;

  constructor(options: ApiServerOptions) {
    const opts = (this.opts = resolveApiOptions(options));
    this.log = opts.log;
    this.subscriptions = new SubscriptionTable<Conn>({ maxPerConnection: opts.maxSubscriptionsPerConnection, maxTotal: opts.maxSubscriptions });
    this.table = new ValidationTable<Conn>({
      maxOutstanding: opts.maxOutstanding,
      timeoutMs: opts.validationTimeoutMs,
      lateAnswerMemory: opts.lateAnswerMemory,
    });
    this.backpressure = new AnnounceBackpressure({
      highWaterBytes: opts.announceHighWaterBytes,
      lowWaterBytes: opts.announceLowWaterBytes,
      stuckAfterMs: opts.announceStuckMs,
    });
    this.admission = new Admission<Conn>({
      maxServed: opts.maxConnections,
      maxProbation: opts.maxProbation,
      holdsSomething: (c) => this.subscriptions.has(c) || this.table.awaitedFrom(c) > 0 || c.queuedBytes > 0 || c.isHolding,
      spoke: (c) => c.spoke,
      lastActiveAt: (c) => c.lastActiveAt,
    });
  }

  get port(): number {
    if (this.listener === undefined) throw new Error("ApiServer not started");
    return this.listener.port;
  }

  async start(): Promise<void> {
    this.listener = Bun.listen<Conn | undefined>({
      hostname: this.opts.host,
      port: this.opts.port,
      data: undefined,
      socket: {
        open: (socket) => this.opened(socket),
        data: (socket, chunk) => {
          if (socket.data !== undefined) this.received(socket.data, chunk);
        },
        drain: (socket) => {
          if (socket.data !== undefined) this.flush(socket.data);
        },
        close: (socket) => {
          if (socket.data === undefined) return;
          socket.data.socketGone = true;
          this.admission.gone(socket.data);
          this.closeConn(socket.data, undefined);
        },
        error: (socket, error) => {
          this.log.warn("api socket error", { error, remote: socket.data?.remote });
        },
      },
    });
  }

  async stop(): Promise<void> {
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    for (const conn of [...this.admission.served, ...this.admission.probation]) this.closeConn(conn, undefined);
    this.listener?.stop(true);
    this.listener = undefined;
  }

  hasSubscribers(dataType: number): boolean {
    return this.subscriptions.count(dataType) > 0;
  }

  /** Subscribed connections per data type, for the status page. */
  subscriptionsByType(): Map<number, number> {
    return this.subscriptions.countsByType();
  }

  stats(): ApiServerStats {
    let heldBytes = 0;
    let stalledSubscribers = 0;
    for (const conn of this.paused) heldBytes += conn.heldBytes;
    for (const conn of this.admission.served) if (this.table.isStalled(conn)) stalledSubscribers++;
    return {
      connections: this.admission.served.size,
      onProbation: this.admission.probation.size,
      subscriptions: this.subscriptions.size,
      outstanding: this.table.outstanding,
      pausedAnnouncers: this.paused.size,
      heldBytes,
      idleEvicted: this.idleEvicted,
      stalledSubscribers,
    };
  }

  /** Whether validate() would notify every current subscriber of the type now: room under the node-wide bound for
   *  one NOTIFICATION each, and each subscriber within its fair share (validation-table.ts). */
  canValidate(dataType: number): boolean {
    return this.table.hasRoomFor(this.subscriptions.subscribers(dataType));
  }

  /**
   * Why canValidate() says no: "room" (it does not), "stalled" (a subscriber of the type let a NOTIFICATION time out
   * and has not answered since: waiting for it is pointless) or "busy" (the subscribers answer, but hold their share).
   */
  validationRoom(dataType: number): "room" | "busy" | "stalled" {
    const subs = this.subscriptions.subscribers(dataType);
    if (this.table.hasRoomFor(subs)) return "room";
    return subs.some((c) => this.table.isStalled(c)) ? "stalled" : "busy";
  }

  /**
   * A NOTIFICATION to every subscriber of the type; "valid" once all answer valid in time, "invalid" as soon as one
   * says so, else "unanswered" (timeout, a subscriber gone, no subscriber, or no room, in which case nobody is
   * notified). Only "invalid" is the sending peer's fault. Never rejects.
   */
  validate(dataType: number, data: Uint8Array): Promise<ValidationVerdict> {
    const subs = this.subscriptions.subscribers(dataType);
    if (subs.length === 0 || data.length > MAX_DATA_SIZE) return Promise.resolve("unanswered");
    if (!this.table.hasRoomFor(subs)) {
      // The caller asks canValidate() first; this only guards against one that does not.
      this.log.warn("api validation skipped", { reason: "outstanding-full", dataType });
      return Promise.resolve("unanswered");
    }
    return new Promise<ValidationVerdict>((resolve) => {
      const round = this.table.open((verdict, ms) => {
        this.onValidationSettled?.(verdict, ms);
        resolve(verdict);
      });
      this.notifyAll(round, subs, dataType, data);
    });
  }

  /**
   * On: connections are not read past their next ANNOUNCE (each is paused there, holding what it sent after it).
   * Off: the held connections are served again, in the order they were stopped. Driven by the peer queues through
   * `outgoingQueues`; callable directly too.
   */
  setAnnounceBackpressure(on: boolean): void {
    if (on === this.announcersWait) return;
    this.announcersWait = on;
    if (on) {
      this.pollTimer ??= setInterval(() => this.checkQueues(), API_ANNOUNCE_POLL_MS);
      return;
    }
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
    for (const conn of this.paused) {
      if (this.announcersWait) return; // the released announcements filled a queue again: the rest wait their turn
      this.paused.delete(conn);
      const held = conn.takeHeld();
      this.guarded(conn, () => this.handleAll(conn, held));
      if (!conn.closed && !conn.isHolding) conn.resume();
    }
  }

  private checkQueues(): void {
    if (this.opts.outgoingQueues === undefined) return;
    this.setAnnounceBackpressure(this.backpressure.update(this.opts.outgoingQueues(), performance.now()));
  }

  // -------------------------------------------------------------------------------------------------------------
  // Connections

  private opened(socket: Socket<Conn | undefined>): void {
    const conn = new ApiConnection(socket, this.opts.maxPendingOutputBytes, this.opts.partialMessageTimeoutMs, (c) => this.closeConn(c, "partial-timeout"));
    socket.data = conn;
    this.log.debug("api connection opened", { remote: conn.remote });
    const opened = this.admission.open(conn);
    if (opened.as === "served") return;
    // At the cap: it is served once it says something (in place of an idle one), else refused (admission.ts).
    this.probationTimers.set(conn, setTimeout(() => this.closeConn(conn, "too-many-connections"), this.opts.probationMs));
    if (opened.refuse !== undefined) this.closeConn(opened.refuse, "too-many-connections");
  }

  /** A connection on probation sent a whole message: it takes a slot, or is refused if nobody gives way. */
  private promote(conn: Conn): boolean {
    if (!this.admission.probation.has(conn)) return true;
    clearTimeout(this.probationTimers.get(conn));
    this.probationTimers.delete(conn);
    const promoted = this.admission.promote(conn);
    if (!promoted.ok) {
      this.closeConn(conn, "too-many-connections");
      return false;
    }
    promoted.terminate?.socket.terminate();
    if (promoted.evict !== undefined) {
      this.idleEvicted++;
      this.closeConn(promoted.evict, "idle-evicted");
    }
    return true;
  }

  private received(conn: Conn, chunk: Uint8Array): void {
    if (conn.closed) return; // bytes still arriving after we ended a violating connection
    this.guarded(conn, () => {
      const messages = conn.read(chunk);
      if (messages.length > 0 && !this.promote(conn)) return;
      if (conn.isHolding) {
        this.hold(conn, messages); // read before the pause took effect: kept behind the held ANNOUNCE, in order
        return;
      }
      this.handleAll(conn, messages);
      if (!conn.closed) conn.armPartialDeadline(messages.length > 0);
    });
  }

  /** Runs `step` for the connection; a protocol violation (or our own bug) closes that connection only. */
  private guarded(conn: Conn, step: () => void): void {
    try {
      step();
    } catch (error) {
      if (error instanceof ApiProtocolError) {
        this.closeConn(conn, error.code);
      } else {
        this.log.error("api internal error", { error, remote: conn.remote });
        this.closeConn(conn, "internal-error");
      }
    }
  }

  /** Handles messages in order; at an ANNOUNCE while announcers wait, holds it and the rest and stops reading. */
  private handleAll(conn: Conn, messages: Uint8Array[]): void {
    for (let i = 0; i < messages.length; i++) {
      const message = decodeMessage(messages[i]!);
      conn.spoke = true;
      if (message.kind === "announce") {
        // Before, not after: other traffic (forwards, repairs) may have filled a queue since the last ANNOUNCE.
        this.checkQueues();
        if (this.announcersWait) {
          this.hold(conn, messages.slice(i));
          return;
        }
      }
      this.handle(conn, message);
      if (conn.closed) return;
    }
  }

  private hold(conn: Conn, messages: Uint8Array[]): void {
    conn.hold(messages);
    this.paused.add(conn);
  }

  private handle(conn: Conn, message: ApiMessage): void {
    switch (message.kind) {
      case "notify":
        this.subscribe(conn, message.dataType);
        return;
      case "announce":
        this.announced(conn, message.ttl, message.dataType, message.data);
        return;
      case "validation":
        this.answered(conn, message.messageId, message.valid);
        return;
      default:
        throw new ApiProtocolError("unexpected-type", `a module may not send ${message.kind}`);
    }
  }

  private subscribe(conn: Conn, dataType: number): void {
    const outcome = this.subscriptions.subscribe(conn, dataType);
    if (outcome === "too-many-subscriptions" || outcome === "subscription-table-full") {
      throw new ApiProtocolError(outcome, `NOTIFY for type ${dataType} past the subscription bound`);
    }
    this.table.setSharers(this.subscriptions.connections);
  }

  private announced(from: Conn, ttl: number, dataType: number, data: Uint8Array): void {
    // Local copies are best effort: their answers are matched and consumed, but nothing waits for them.
    const others = this.subscriptions.subscribers(dataType).filter((c) => c !== from);
    if (others.length > 0) this.notifyAll(this.table.open(), others, dataType, data);
    try {
      // A copy: `data` may view a socket chunk (Buffer#slice would not copy).
      this.onAnnounce?.({ ttl, dataType, data: new Uint8Array(data) });
    } catch (error) {
      this.log.error("api announce handler failed", { error });
    }
  }

  private answered(conn: Conn, messageId: number, valid: boolean): void {
    const outcome = this.table.answer(conn, messageId, valid);
    if (outcome === "late") this.log.debug("api late validation ignored", { messageId, remote: conn.remote });
    if (outcome === "unknown") {
      throw new ApiProtocolError("unknown-message-id", `VALIDATION for message ID ${messageId} never given`);
    }
  }

  /** Idempotent. `reason` set: a violation, slow reader or eviction, logged; unset: the socket closed or we stop. */
  private closeConn(conn: Conn, reason: string | undefined): void {
    if (conn.closed) return;
    const queuedBytes = conn.queuedBytes;
    conn.dispose();
    clearTimeout(this.probationTimers.get(conn));
    this.probationTimers.delete(conn);
    const abrupt = reason === undefined || reason === "slow-reader" || reason === "idle-evicted" || reason === "too-many-connections";
    this.admission.stopped(conn, !abrupt && !conn.socketGone);
    this.paused.delete(conn);
    if (this.subscriptions.has(conn)) {
      this.subscriptions.remove(conn);
      this.table.setSharers(this.subscriptions.connections);
    }
    this.table.forget(conn); // its pending validations count as not valid
    if (reason === undefined) {
      this.log.debug("api connection closed", { reason: conn.socketGone ? "closed-by-module" : "shutting-down", remote: conn.remote });
    } else if (reason === "slow-reader") {
      // What it had not read when the next message would have passed the bound: the bound at work, for operators.
      this.log.warn("api connection closed", { reason, remote: conn.remote, queuedBytes, limit: this.opts.maxPendingOutputBytes });
    } else if (reason === "idle-evicted") {
      this.log.warn("api connection closed", { reason, remote: conn.remote, limit: this.opts.maxConnections });
    } else if (reason === "too-many-connections") {
      this.log.warn("api connection refused", { reason, remote: conn.remote }); // never served
    } else {
      this.log.warn("api connection closed", { reason, remote: conn.remote });
    }
    if (conn.socketGone) return;
    if (abrupt) {
      conn.socket.terminate(); // stopping, it does not read, or there is no slot for it: no graceful end
    } else {
      conn.socket.end(); // it lingers (counted under the cap) until its module closes too …
      // … or this long: a module that never closes its side must not keep the socket and the slot forever.
      setTimeout(() => {
        if (!conn.socketGone) conn.socket.terminate();
      }, this.opts.closeLingerMs).unref();
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Output: one write per message while the kernel keeps up, a bounded queue when it does not

  private send(conn: Conn, bytes: Uint8Array): void {
    if (!conn.closed && !conn.send(bytes)) this.closeConn(conn, "slow-reader");
  }

  private flush(conn: Conn): void {
    if (!conn.closed) conn.flush();
  }

  // -------------------------------------------------------------------------------------------------------------
  // NOTIFICATIONs (IDs, rounds and shares: validation-table.ts)

  /** One round's NOTIFICATIONs, as many as there is room for; then the round is sealed. */
  private notifyAll(round: ValidationRound, conns: Conn[], dataType: number, data: Uint8Array): void {
    for (const conn of conns) {
      if (round.settled) break; // a send closed a slow subscriber and that decided the item
      if (conn.closed) continue; // never register an ID nobody will answer
      if (!this.table.hasRoomFor([conn])) {
        // Only a local announcement gets here (validate() checks room for all first): that copy is skipped.
        this.log.debug("api notification skipped", { reason: "outstanding-full", dataType, remote: conn.remote });
        continue;
      }
      const messageId = this.table.issue(round, conn);
      this.send(conn, encodeNotification({ messageId, dataType, data }));
    }
    this.table.seal(round);
  }
}
