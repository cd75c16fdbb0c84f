/**
 * The VoidPhone API server: local modules subscribe (NOTIFY), announce (ANNOUNCE), and answer our NOTIFICATIONs with
 * VALIDATIONs. The dissemination layer uses it through `onAnnounce` and the LocalModules port (src/gossip/ports.ts,
 * matched structurally): `hasSubscribers`, `canValidate`, `validate`.
 *
 * Bytes ⇄ messages is codec.ts/reader.ts, message IDs and rounds are validation-table.ts; this file is the socket
 * I/O, the subscription table and the limits. Must never: let one connection's bytes or slowness affect another
 * connection (a violation or an unbounded output queue closes that connection only), notify anyone for an item it has
 * no room to validate, or let validate() reject or hang past its timeout.
 */
import type { Socket, TCPSocketListener } from "bun";
import {
  API_CLOSE_LINGER_MS,
  API_LATE_ANSWER_MEMORY,
  API_MAX_CONNECTIONS,
  API_MAX_OUTSTANDING_NOTIFICATIONS,
  API_MAX_PENDING_OUTPUT_BYTES,
  API_PARTIAL_MESSAGE_TIMEOUT_MS,
  VALIDATION_TIMEOUT_MS,
} from "../defaults.ts";
import { ApiProtocolError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { SendQueue } from "../net/send-queue.ts";
import { type ApiMessage, MAX_DATA_SIZE, decodeMessage, encodeNotification } from "./codec.ts";
import { MessageReader } from "./reader.ts";
import { ValidationTable, type ValidationRound, type ValidationVerdict } from "./validation-table.ts";

export type { ValidationVerdict } from "./validation-table.ts";

/** The API server's limits; a node passes them through NodeOptions.api (tests shrink them). Defaults: src/defaults.ts. */
export type ApiLimits = Pick<
  ApiServerOptions,
  | "maxConnections"
  | "validationTimeoutMs"
  | "maxOutstanding"
  | "maxPendingOutputBytes"
  | "partialMessageTimeoutMs"
  | "lateAnswerMemory"
  | "closeLingerMs"
>;

export interface ApiServerOptions {
  host: string;
  port: number;
  log: Logger;
  /** Sockets beyond this are closed at once. */
  maxConnections?: number;
  /** How long a NOTIFICATION waits for its VALIDATION; a missing answer counts as not valid. */
  validationTimeoutMs?: number;
  /** Node-wide bound on NOTIFICATIONs awaiting an answer (≤ 65535: message IDs are 16 bits). */
  maxOutstanding?: number;
  /** A connection whose unsent output passes this is closed ("slow-reader"). */
  maxPendingOutputBytes?: number;
  /** A message whose first byte arrived must be complete within this, or the connection is closed. */
  partialMessageTimeoutMs?: number;
  /** Timed-out IDs a connection may still answer late without that being a violation. */
  lateAnswerMemory?: number;
  /** After we end() a violating connection, how long its module gets to close before we drop the socket. */
  closeLingerMs?: number;
}

export interface AnnouncedData {
  ttl: number;
  dataType: number;
  data: Uint8Array;
}

export interface ApiServerStats {
  connections: number;
  subscriptions: number;
  outstanding: number;
}

interface Conn {
  socket: Socket<Conn | undefined>;
  remote: string;
  reader: MessageReader;
  subscriptions: Set<number>;
  /** Output the kernel has not taken yet, bounded by maxPendingOutputBytes (past it: "slow-reader"). */
  queue: SendQueue;
  partialTimer: Timer | undefined;
  /** We stopped serving it (violation, slow reader, its close, our stop). */
  closed: boolean;
  /** Bun reported the socket closed: nothing left to end or terminate. */
  socketGone: boolean;
}

export class ApiServer {
  /** Called after every ANNOUNCE from a local module, with data the callee owns. */
  onAnnounce: ((a: AnnouncedData) => void) | undefined;
  /** Called when a validate() round ends (items from peers only), with its verdict and how long it took. */
  onValidationSettled: ((verdict: ValidationVerdict, ms: number) => void) | undefined;

  private readonly log: Logger;
  private readonly maxConnections: number;
  private readonly maxPendingOutputBytes: number;
  private readonly partialMessageTimeoutMs: number;
  private readonly closeLingerMs: number;

  private listener: TCPSocketListener<Conn | undefined> | undefined;
  private liveSockets = 0;
  private readonly conns = new Set<Conn>();
  private readonly subscribers = new Map<number, Set<Conn>>();
  private readonly table: ValidationTable<Conn>;

  constructor(private readonly opts: ApiServerOptions) {
    this.log = opts.log;
    this.maxConnections = opts.maxConnections ?? API_MAX_CONNECTIONS;
    this.maxPendingOutputBytes = opts.maxPendingOutputBytes ?? API_MAX_PENDING_OUTPUT_BYTES;
    this.partialMessageTimeoutMs = opts.partialMessageTimeoutMs ?? API_PARTIAL_MESSAGE_TIMEOUT_MS;
    this.closeLingerMs = opts.closeLingerMs ?? API_CLOSE_LINGER_MS;
    this.table = new ValidationTable<Conn>({
      maxOutstanding: opts.maxOutstanding ?? API_MAX_OUTSTANDING_NOTIFICATIONS,
      timeoutMs: opts.validationTimeoutMs ?? VALIDATION_TIMEOUT_MS,
      lateAnswerMemory: opts.lateAnswerMemory ?? API_LATE_ANSWER_MEMORY,
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
          this.liveSockets--;
          if (socket.data === undefined) return;
          socket.data.socketGone = true;
          this.closeConn(socket.data, undefined);
        },
        error: (socket, error) => {
          this.log.warn("api socket error", { error, remote: socket.data?.remote });
        },
      },
    });
  }

  async stop(): Promise<void> {
    for (const conn of [...this.conns]) this.closeConn(conn, undefined);
    this.listener?.stop(true);
    this.listener = undefined;
  }

  hasSubscribers(dataType: number): boolean {
    return (this.subscribers.get(dataType)?.size ?? 0) > 0;
  }

  /** Subscribed connections per data type, for the status page. */
  subscriptionsByType(): Map<number, number> {
    const counts = new Map<number, number>();
    for (const [dataType, conns] of this.subscribers) counts.set(dataType, conns.size);
    return counts;
  }

  stats(): ApiServerStats {
    let subscriptions = 0;
    for (const conns of this.subscribers.values()) subscriptions += conns.size;
    return { connections: this.conns.size, subscriptions, outstanding: this.table.outstanding };
  }

  /** Whether validate() would notify every current subscriber of the type now (the node-wide bound counts
   *  NOTIFICATIONs, so an item costs one per subscriber). */
  canValidate(dataType: number): boolean {
    return this.table.hasRoom(this.subscribers.get(dataType)?.size ?? 0);
  }

  /**
   * A NOTIFICATION to every subscriber of the type; "valid" once all answer valid in time, "invalid" as soon as one
   * says so, else "unanswered" (timeout, a subscriber gone, no subscriber, or no room, in which case nobody is
   * notified). Only "invalid" is the sending peer's fault. Never rejects.
   */
  validate(dataType: number, data: Uint8Array): Promise<ValidationVerdict> {
    const subs = [...(this.subscribers.get(dataType) ?? [])];
    if (subs.length === 0 || data.length > MAX_DATA_SIZE) return Promise.resolve("unanswered");
    if (!this.table.hasRoom(subs.length)) {
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

  // -------------------------------------------------------------------------------------------------------------
  // Connections

  private opened(socket: Socket<Conn | undefined>): void {
    this.liveSockets++;
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    if (this.liveSockets > this.maxConnections) {
      this.log.warn("api connection refused", { reason: "too-many-connections", remote });
      socket.terminate();
      return;
    }
    const conn: Conn = {
      socket,
      remote,
      reader: new MessageReader(),
      subscriptions: new Set(),
      queue: new SendQueue(socket as Socket<unknown>, this.maxPendingOutputBytes),
      partialTimer: undefined,
      closed: false,
      socketGone: false,
    };
    socket.data = conn;
    this.conns.add(conn);
    this.log.debug("api connection opened", { remote });
  }

  private received(conn: Conn, chunk: Uint8Array): void {
    if (conn.closed) return; // bytes still arriving after we ended a violating connection
    try {
      const messages = conn.reader.push(chunk);
      for (const bytes of messages) {
        this.handle(conn, decodeMessage(bytes));
        if (conn.closed) return;
      }
      this.armPartialDeadline(conn, messages.length > 0);
    } catch (error) {
      if (error instanceof ApiProtocolError) {
        this.closeConn(conn, error.code);
      } else {
        this.log.error("api internal error", { error, remote: conn.remote });
        this.closeConn(conn, "internal-error");
      }
    }
  }

  /** A started message must complete within the deadline; a new message restarts it, more bytes do not. */
  private armPartialDeadline(conn: Conn, completedAny: boolean): void {
    if (conn.reader.pendingBytes === 0 || completedAny) {
      clearTimeout(conn.partialTimer);
      conn.partialTimer = undefined;
    }
    if (conn.reader.pendingBytes > 0 && conn.partialTimer === undefined) {
      conn.partialTimer = setTimeout(() => this.closeConn(conn, "partial-timeout"), this.partialMessageTimeoutMs);
    }
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
    conn.subscriptions.add(dataType);
    let conns = this.subscribers.get(dataType);
    if (conns === undefined) this.subscribers.set(dataType, (conns = new Set()));
    conns.add(conn);
  }

  private announced(from: Conn, ttl: number, dataType: number, data: Uint8Array): void {
    // Local copies are best effort: their answers are matched and consumed, but nothing waits for them.
    const others = [...(this.subscribers.get(dataType) ?? [])].filter((c) => c !== from);
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

  /** Idempotent. `reason` set: a violation or slow reader, logged; unset: the socket closed or we are stopping. */
  private closeConn(conn: Conn, reason: string | undefined): void {
    if (conn.closed) return;
    conn.closed = true;
    this.conns.delete(conn);
    clearTimeout(conn.partialTimer);
    for (const dataType of conn.subscriptions) {
      const conns = this.subscribers.get(dataType);
      conns?.delete(conn);
      if (conns?.size === 0) this.subscribers.delete(dataType);
    }
    const queuedBytes = conn.queue.pending;
    this.table.forget(conn); // its pending validations count as not valid
    conn.queue.discard();
    // Drop a half-received message (up to 64 KiB) now: the linger timer below keeps `conn` for a while.
    conn.reader = new MessageReader();
    if (reason === undefined) {
      this.log.debug("api connection closed", { reason: conn.socketGone ? "closed-by-module" : "shutting-down", remote: conn.remote });
    } else if (reason === "slow-reader") {
      // What it had not read when the next message would have passed the bound: the bound at work, for operators.
      this.log.warn("api connection closed", { reason, remote: conn.remote, queuedBytes, limit: this.maxPendingOutputBytes });
    } else {
      this.log.warn("api connection closed", { reason, remote: conn.remote });
    }
    if (conn.socketGone) return;
    if (reason === undefined || reason === "slow-reader") {
      conn.socket.terminate(); // stopping, or it does not read: a graceful end would never complete
    } else {
      conn.socket.end();
      // A peer that never closes its side must not keep the socket (and a slot under the cap) forever.
      setTimeout(() => {
        if (!conn.socketGone) conn.socket.terminate();
      }, this.closeLingerMs).unref();
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // Output: one write per message while the kernel keeps up, a bounded queue when it does not

  private send(conn: Conn, bytes: Uint8Array): void {
    if (!conn.closed && !conn.queue.write(bytes)) this.closeConn(conn, "slow-reader");
  }

  private flush(conn: Conn): void {
    if (!conn.closed) conn.queue.flush();
  }

  // -------------------------------------------------------------------------------------------------------------
  // NOTIFICATIONs (IDs and rounds: validation-table.ts)

  /** One round's NOTIFICATIONs, as many as there is room for; then the round is sealed. */
  private notifyAll(round: ValidationRound, conns: Conn[], dataType: number, data: Uint8Array): void {
    for (const conn of conns) {
      if (round.settled) break; // a send closed a slow subscriber and that decided the item
      if (conn.closed) continue; // never register an ID nobody will answer
      if (!this.table.hasRoom(1)) {
        // Only a local announcement gets here (validate() checks room for all first): its other copies are skipped.
        this.log.warn("api notification skipped", { reason: "outstanding-full", dataType, remote: conn.remote });
        continue;
      }
      const messageId = this.table.issue(round, conn);
      this.send(conn, encodeNotification({ messageId, dataType, data }));
    }
    this.table.seal(round);
  }
}
