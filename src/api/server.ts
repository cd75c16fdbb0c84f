/**
 * The VoidPhone API server: local modules subscribe (NOTIFY), announce (ANNOUNCE), and answer our NOTIFICATIONs with
 * VALIDATIONs. The dissemination layer uses it through `onAnnounce`, `hasSubscribers` and `validate`.
 *
 * Bytes ⇄ messages is codec.ts/reader.ts; this file is the socket I/O, the subscription table and the table of
 * outstanding NOTIFICATION IDs. Must never: let one connection's bytes or slowness affect another connection (a
 * violation or an unbounded output queue closes that connection only), reuse a message ID still outstanding on this
 * node, or let validate() reject or hang past its timeout.
 */
import type { Socket, TCPSocketListener } from "bun";
import { ApiProtocolError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { SendQueue } from "../net/send-queue.ts";
import { type ApiMessage, MAX_DATA_SIZE, decodeMessage, encodeNotification } from "./codec.ts";
import { MessageReader } from "./reader.ts";

/** The API server's limits; a node passes them through NodeOptions.api (tests shrink them). */
export type ApiLimits = Pick<
  ApiServerOptions,
  "maxConnections" | "validationTimeoutMs" | "maxOutstanding" | "maxPendingOutputBytes" | "partialMessageTimeoutMs"
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

/** How many timed-out IDs a connection may still answer late without that being a violation. */
const LATE_ANSWER_MEMORY = 1024;
/** After we end() a violating connection, how long its peer gets to close before we drop the socket. */
const CLOSE_LINGER_MS = 2000;

interface Conn {
  socket: Socket<Conn | undefined>;
  remote: string;
  reader: MessageReader;
  subscriptions: Set<number>;
  /** IDs we sent this connection whose VALIDATION is still awaited. */
  awaiting: Set<number>;
  /** IDs given to this connection that timed out or stopped mattering: a late answer is ignored, not a violation. */
  late: Set<number>;
  /** Output the kernel has not taken yet, bounded by maxPendingOutputBytes (past it: "slow-reader"). */
  queue: SendQueue;
  partialTimer: Timer | undefined;
  /** We stopped serving it (violation, slow reader, its close, our stop). */
  closed: boolean;
  /** Bun reported the socket closed: nothing left to end or terminate. */
  socketGone: boolean;
}

/** One NOTIFICATION fan-out: the IDs it still awaits, and (for validate()) who waits for the verdict. */
/** The outcome of one validation round, as the dissemination layer wants it. */
export type Verdict = "valid" | "invalid" | "unanswered";

interface Round {
  ids: Set<number>;
  timer: Timer | undefined;
  /** Set for validate(): any "invalid" or missing answer settles false at once. Unset for local announce copies. */
  verdict: ((verdict: Verdict) => void) | undefined;
  settled: boolean;
  /** performance.now() at the start, for the validation latency metric. */
  startedAt: number;
}

interface Outstanding {
  conn: Conn;
  round: Round;
}

export class ApiServer {
  /** Called after every ANNOUNCE from a local module, with data the callee owns. */
  onAnnounce: ((a: AnnouncedData) => void) | undefined;
  /** Called when a validate() round ends (items from peers only), with its verdict and how long it took. */
  onValidationSettled: ((verdict: Verdict, ms: number) => void) | undefined;

  private readonly log: Logger;
  private readonly maxConnections: number;
  private readonly validationTimeoutMs: number;
  private readonly maxOutstanding: number;
  private readonly maxPendingOutputBytes: number;
  private readonly partialMessageTimeoutMs: number;

  private listener: TCPSocketListener<Conn | undefined> | undefined;
  private liveSockets = 0;
  private readonly conns = new Set<Conn>();
  private readonly subscribers = new Map<number, Set<Conn>>();
  private readonly outstanding = new Map<number, Outstanding>();
  private nextMessageId = 0;

  constructor(private readonly opts: ApiServerOptions) {
    this.log = opts.log;
    this.maxConnections = opts.maxConnections ?? 1024;
    this.validationTimeoutMs = opts.validationTimeoutMs ?? 5000;
    this.maxOutstanding = Math.min(opts.maxOutstanding ?? 1024, 0xffff);
    this.maxPendingOutputBytes = opts.maxPendingOutputBytes ?? 1024 * 1024;
    this.partialMessageTimeoutMs = opts.partialMessageTimeoutMs ?? 10_000;
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
    this.log.info("api listening", { host: this.opts.host, port: this.listener.port });
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
    return { connections: this.conns.size, subscriptions, outstanding: this.outstanding.size };
  }

  /**
   * NOTIFICATION to every subscriber of the type; true only if there is at least one and all answer valid in time.
   * False, without notifying anyone, when the outstanding table has no room for all of them.
   */
  async validate(dataType: number, data: Uint8Array): Promise<boolean> {
    return (await this.validateVerdict(dataType, data)) === "valid";
  }

  /**
   * Like validate(), telling "invalid" (a subscriber said so) apart from "unanswered" (timeout, subscriber gone, no
   * subscriber, no room): only the former is the sending peer's fault.
   */
  validateVerdict(dataType: number, data: Uint8Array): Promise<Verdict> {
    const subs = [...(this.subscribers.get(dataType) ?? [])];
    if (subs.length === 0 || data.length > MAX_DATA_SIZE) return Promise.resolve("unanswered");
    if (this.outstanding.size + subs.length > this.maxOutstanding) {
      this.log.warn("api validation skipped", { reason: "outstanding-full", dataType });
      return Promise.resolve("unanswered");
    }
    return new Promise<Verdict>((resolve) => {
      const round = this.newRound(resolve);
      for (const conn of subs) {
        if (round.settled) break; // a send closed a slow subscriber: the verdict is already false
        this.notify(conn, round, dataType, data);
      }
      if (!round.settled && round.ids.size === 0) this.settle(round, "unanswered");
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
      awaiting: new Set(),
      late: new Set(),
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
    if (others.length > 0) {
      const round = this.newRound(undefined);
      for (const conn of others) {
        if (this.outstanding.size >= this.maxOutstanding) {
          this.log.warn("api notification skipped", { reason: "outstanding-full", dataType, remote: conn.remote });
          continue;
        }
        this.notify(conn, round, dataType, data);
      }
      if (!round.settled && round.ids.size === 0) this.settle(round, "unanswered");
    }
    try {
      // A copy: `data` may view a socket chunk (Buffer#slice would not copy).
      this.onAnnounce?.({ ttl, dataType, data: new Uint8Array(data) });
    } catch (error) {
      this.log.error("api onAnnounce failed", { error });
    }
  }

  private answered(conn: Conn, messageId: number, valid: boolean): void {
    if (conn.awaiting.has(messageId)) {
      this.resolveEntry(messageId, valid ? "valid" : "invalid");
    } else if (conn.late.delete(messageId)) {
      this.log.debug("api late validation ignored", { messageId, remote: conn.remote });
    } else {
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
    // Its pending validations count as not valid.
    for (const id of [...conn.awaiting]) this.resolveEntry(id, "unanswered");
    conn.queue.discard();
    // Drop a half-received message (up to 64 KiB) now: the linger timer below keeps `conn` for a while.
    conn.reader = new MessageReader();
    if (reason === undefined) {
      this.log.debug("api connection closed", { reason: conn.socketGone ? "closed-by-module" : "shutting-down", remote: conn.remote });
    }
    else this.log.warn("api connection closed", { reason, remote: conn.remote });
    if (conn.socketGone) return;
    if (reason === undefined || reason === "slow-reader") {
      conn.socket.terminate(); // stopping, or it does not read: a graceful end would never complete
    } else {
      conn.socket.end();
      // A peer that never closes its side must not keep the socket (and a slot under the cap) forever.
      setTimeout(() => {
        if (!conn.socketGone) conn.socket.terminate();
      }, CLOSE_LINGER_MS).unref();
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
  // Outstanding NOTIFICATIONs

  private newRound(verdict: ((verdict: Verdict) => void) | undefined): Round {
    const round: Round = { ids: new Set(), timer: undefined, verdict, settled: false, startedAt: performance.now() };
    round.timer = setTimeout(() => this.settle(round, "unanswered"), this.validationTimeoutMs);
    return round;
  }

  private notify(conn: Conn, round: Round, dataType: number, data: Uint8Array): void {
    if (conn.closed) return; // never register an ID nobody will answer or clean up
    const messageId = this.allocateMessageId();
    this.outstanding.set(messageId, { conn, round });
    conn.awaiting.add(messageId);
    conn.late.delete(messageId); // a new exchange under this ID supersedes an old, timed-out one
    round.ids.add(messageId);
    this.send(conn, encodeNotification({ messageId, dataType, data }));
  }

  /** Sequential, so an ID comes back as late as possible; the caller has checked there is room. */
  private allocateMessageId(): number {
    for (;;) {
      const id = this.nextMessageId;
      this.nextMessageId = (id + 1) & 0xffff;
      if (!this.outstanding.has(id)) return id;
    }
  }

  private resolveEntry(messageId: number, verdict: Verdict): void {
    const entry = this.outstanding.get(messageId);
    if (entry === undefined) return;
    const { conn, round } = entry;
    this.outstanding.delete(messageId);
    conn.awaiting.delete(messageId);
    round.ids.delete(messageId);
    // The first answer that is not "valid" decides the round; otherwise it is valid once everyone has answered.
    if (verdict !== "valid" && round.verdict !== undefined) this.settle(round, verdict);
    else if (round.ids.size === 0) this.settle(round, "valid");
  }

  /** Ends a round; IDs still awaited stop being outstanding, and their late answers will be ignored. */
  private settle(round: Round, verdict: Verdict): void {
    if (round.settled) return;
    round.settled = true;
    clearTimeout(round.timer);
    for (const id of round.ids) {
      const entry = this.outstanding.get(id);
      if (entry === undefined) continue;
      this.outstanding.delete(id);
      entry.conn.awaiting.delete(id);
      if (!entry.conn.closed) this.rememberLate(entry.conn, id);
    }
    round.ids.clear();
    if (round.verdict !== undefined) this.onValidationSettled?.(verdict, performance.now() - round.startedAt);
    round.verdict?.(verdict);
  }

  private rememberLate(conn: Conn, id: number): void {
    conn.late.add(id);
    if (conn.late.size > LATE_ANSWER_MEMORY) conn.late.delete(conn.late.values().next().value!);
  }
}
