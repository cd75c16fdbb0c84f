/**
 * The P2P endpoint: listens on p2p_address, dials peers, drives the handshake over cleartext frames, and keeps one
 * Link per peer ID. Limits pending handshakes (globally and per IP) and bounds each handshake with a deadline.
 * It knows nothing of gossip: it reports links up/down and decoded link messages to its owner.
 */
import type { Socket, TCPSocketListener } from "bun";
import { P2PProtocolError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { SendQueue } from "../net/send-queue.ts";
import { admitLink } from "./admission.ts";
import { FrameReader, encodeFrame } from "./frame.ts";
import { InitiatorHandshake, ResponderHandshake, type HandshakeResult } from "./handshake.ts";
import { generateStaticKeyPair, type Identity, type StaticKeyPair } from "./identity.ts";
import { Link, type LinkDescription, type LinkOptions } from "./link.ts";
import { LinkErrorCode, type LinkMessage } from "./proto/gossip.ts";

/** What solves the initiator's proof of work (the worker pool in production). */
export interface PowSolver {
  solve(prefix: Uint8Array, difficulty: number, signal?: AbortSignal): Promise<{ nonce: Uint8Array }>;
}

export interface TransportEvents {
  linkUp(link: LinkDescription): void;
  message(peerId: string, message: LinkMessage): void;
  linkDown(peerId: string, reason: string): void;
}

export interface TransportOptions extends Partial<LinkOptions> {
  identity: Identity;
  host: string;
  port: number;
  /** Leading zero bits demanded from peers that dial us. */
  difficulty: number;
  /** The most work we do to dial others. */
  maxDifficulty: number;
  pow: PowSolver;
  log: Logger;
  handshakeTimeoutMs?: number;
  /** Frames per direction between Noise rekeys (default 2^16); tests lower it. */
  rekeyInterval?: number;
  maxPendingHandshakes?: number;
  maxPendingPerIp?: number;
  /** Peers refused after authentication (banned). */
  isRefused?: (peerId: string) => boolean;
  /** Asked before an authenticated inbound link is admitted (inbound cap). */
  acceptInbound?: (peerId: string) => boolean;
  /** Sent (typically a PeerList) to an inbound peer refused for lack of room, just before the TOO_MANY_LINKS error. */
  referralsOnRefusal?: (peerId: string) => LinkMessage | undefined;
  /**
   * Inbound links from one IP at most (default 8), so that many IDs from one host cannot take every inbound slot.
   * Loopback is exempt (local test and development nodes all share it) unless `limitLoopback` is set.
   */
  maxInboundPerIp?: number;
  limitLoopback?: boolean;
  /** Who is told about links and messages (the node's gossip core). */
  events?: TransportEvents;
}

type Phase = "hello" | "solving" | "response" | "init" | "final" | "link" | "closed";

interface Conn {
  inbound: boolean;
  host: string;
  port: number;
  phase: Phase;
  reader: FrameReader;
  queue: SendQueue;
  deadline?: ReturnType<typeof setTimeout>;
  responder?: ResponderHandshake;
  initiator?: InitiatorHandshake;
  solving?: AbortController;
  link?: Link;
  dial?: PendingDial;
}

interface PendingDial {
  key: string;
  expectedId?: string;
  promise: Promise<string>;
  resolve(id: string): void;
  reject(e: Error): void;
}

export interface TransportStats {
  handshakesOk: number;
  handshakesFailed: Map<string, number>;
  pendingHandshakes: number;
  links: number;
  /** Totals of links that have closed, so that byte and drop counters over all links never go down. */
  closedLinks: { bytesIn: number; bytesOut: number; droppedMessages: number };
}

export class Transport {
  readonly localId: string;
  private listener?: TCPSocketListener<Conn>;
  private readonly staticKeys: StaticKeyPair = generateStaticKeyPair();
  private readonly links = new Map<string, Link>();
  private readonly dials = new Map<string, PendingDial>();
  private readonly pendingPerIp = new Map<string, number>();
  private readonly conns = new Set<Socket<Conn>>();
  private pending = 0;
  private stopping = false;
  private readonly linkOptions: LinkOptions;
  readonly stats: TransportStats = {
    handshakesOk: 0,
    handshakesFailed: new Map(),
    pendingHandshakes: 0,
    links: 0,
    closedLinks: { bytesIn: 0, bytesOut: 0, droppedMessages: 0 },
  };
  events: TransportEvents = { linkUp() {}, message() {}, linkDown() {} };

  constructor(private readonly opts: TransportOptions) {
    this.localId = opts.identity.idHex;
    if (opts.events) this.events = opts.events;
    this.linkOptions = {
      sendBufferBytes: opts.sendBufferBytes ?? 1 << 20,
      pingIntervalMs: opts.pingIntervalMs ?? 15_000,
      idleTimeoutMs: opts.idleTimeoutMs ?? 45_000,
    };
  }

  get port(): number {
    return this.listener?.port ?? this.opts.port;
  }

  async start(): Promise<void> {
    this.listener = Bun.listen<Conn>({
      hostname: this.opts.host,
      port: this.opts.port,
      socket: this.handlers(),
    });
  }

  /** Dials host:port; resolves with the authenticated peer ID. An expected ID that differs aborts the handshake. */
  dial(host: string, port: number, expectedId?: string): Promise<string> {
    if (expectedId && this.links.has(expectedId)) return Promise.resolve(expectedId);
    if (expectedId === this.localId) return Promise.reject(new P2PProtocolError("self", "refusing to dial ourselves"));
    const key = `${host}:${port}`;
    const existing = this.dials.get(key);
    if (existing) return existing.promise;
    let resolve!: (id: string) => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<string>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const dial: PendingDial = { key, expectedId, promise, resolve, reject };
    this.dials.set(key, dial);
    promise.then(
      () => this.dials.delete(key),
      () => this.dials.delete(key),
    );
    const conn: Conn = this.newConn(false, host, port);
    conn.dial = dial;
    conn.initiator = new InitiatorHandshake({
      identity: this.opts.identity,
      staticKeys: this.staticKeys,
      maxDifficulty: this.opts.maxDifficulty,
      expectedPeerId: expectedId,
      listenPort: this.port,
      rekeyInterval: this.opts.rekeyInterval,
    });
    Bun.connect<Conn>({ hostname: host, port, data: conn, socket: this.handlers() }).catch((e: Error) => {
      this.failConn(conn, undefined, "connect-failed", e);
    });
    return promise;
  }

  /** Sends to a linked peer; false if not linked or dropped. Pass pre-encoded plaintext to fan one message out. */
  send(peerId: string, message: LinkMessage | Uint8Array, droppable = false): boolean {
    return this.links.get(peerId)?.send(message, droppable) ?? false;
  }

  disconnect(peerId: string, reason: string, code = LinkErrorCode.MISBEHAVIOUR): void {
    this.links.get(peerId)?.closeWithError(code, reason);
  }

  linked(): Link[] {
    return [...this.links.values()];
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // Links and handshakes first: stopping the listener force-closes accepted sockets, which would log them as
    // "closed-by-peer" and deny the peer its SHUTTING_DOWN error.
    for (const link of this.links.values()) link.closeWithError(LinkErrorCode.SHUTTING_DOWN, "shutting-down");
    for (const socket of this.conns) {
      const conn = socket.data;
      if (conn.phase !== "closed") this.failConn(conn, socket, "shutting-down");
    }
    this.listener?.stop(true);
  }

  private newConn(inbound: boolean, host: string, port: number): Conn {
    return { inbound, host, port, phase: inbound ? "init" : "hello", reader: new FrameReader(), queue: undefined as never };
  }

  private handlers() {
    return {
      open: (socket: Socket<Conn>) => this.onOpen(socket),
      data: (socket: Socket<Conn>, chunk: Uint8Array) => this.onData(socket, chunk),
      drain: (socket: Socket<Conn>) => {
        const conn = socket.data;
        if (conn.link) conn.link.drain();
        else conn.queue?.flush();
      },
      close: (socket: Socket<Conn>) => this.onSocketClosed(socket, "closed-by-peer"),
      error: (socket: Socket<Conn>, error: Error) => this.onSocketClosed(socket, `socket-error:${error.message}`),
      connectError: (socket: Socket<Conn>, error: Error) => this.failConn(socket.data, undefined, "connect-failed", error),
    };
  }

  private onOpen(socket: Socket<Conn>): void {
    if (!socket.data) {
      // Inbound: Bun gives no data object for accepted sockets.
      const ip = socket.remoteAddress;
      socket.data = this.newConn(true, ip, 0);
    }
    const conn = socket.data;
    conn.queue = new SendQueue(socket as Socket<unknown>, this.linkOptions.sendBufferBytes);
    if (this.stopping) {
      this.opts.log.debug("handshake refused", { address: conn.host, reason: "shutting-down" });
      socket.end();
      conn.phase = "closed";
      return;
    }
    if (conn.inbound) {
      const perIp = this.pendingPerIp.get(conn.host) ?? 0;
      if (this.pending >= (this.opts.maxPendingHandshakes ?? 64) || perIp >= (this.opts.maxPendingPerIp ?? 4)) {
        this.countFailure("too-many-pending");
        this.opts.log.debug("handshake refused", { address: conn.host, reason: "too-many-pending" });
        conn.phase = "closed";
        socket.end();
        return;
      }
      this.pendingPerIp.set(conn.host, perIp + 1);
    }
    this.pending++;
    this.stats.pendingHandshakes = this.pending;
    this.conns.add(socket);
    conn.deadline = setTimeout(() => this.failConn(conn, socket, "handshake-timeout"), this.opts.handshakeTimeoutMs ?? 5000);
    if (conn.inbound) {
      conn.responder = new ResponderHandshake({
        identity: this.opts.identity,
        staticKeys: this.staticKeys,
        difficulty: this.opts.difficulty,
        listenPort: this.port,
        rekeyInterval: this.opts.rekeyInterval,
      });
      conn.queue.write(encodeFrame(conn.responder.hello()));
    }
  }

  private onData(socket: Socket<Conn>, chunk: Uint8Array): void {
    const conn = socket.data;
    if (conn.phase === "closed") return;
    let bodies: Uint8Array[];
    try {
      bodies = conn.reader.push(chunk);
    } catch (e) {
      this.protocolFailure(conn, socket, e);
      return;
    }
    for (const body of bodies) {
      if ((conn.phase as Phase) === "closed") return;
      if (conn.link) {
        conn.link.receiveFrame(body);
        continue;
      }
      try {
        this.handshakeStep(conn, socket, body);
      } catch (e) {
        this.protocolFailure(conn, socket, e);
        return;
      }
    }
  }

  private handshakeStep(conn: Conn, socket: Socket<Conn>, body: Uint8Array): void {
    switch (conn.phase) {
      case "hello": {
        const { powPrefix, difficulty } = conn.initiator!.recvHello(body);
        conn.phase = "solving";
        const abort = new AbortController();
        conn.solving = abort;
        this.opts.pow.solve(powPrefix, difficulty, abort.signal).then(
          ({ nonce }) => {
            if (conn.phase !== "solving") return;
            conn.solving = undefined;
            try {
              conn.queue.write(encodeFrame(conn.initiator!.init(nonce)));
              conn.phase = "response";
            } catch (e) {
              this.protocolFailure(conn, socket, e);
            }
          },
          (e: Error) => {
            if (conn.phase === "solving") this.failConn(conn, socket, "pow-failed", e);
          },
        );
        return;
      }
      case "response": {
        const { send, result } = conn.initiator!.recvResponse(body);
        conn.queue.write(encodeFrame(send));
        this.established(conn, socket, result);
        return;
      }
      case "init":
        conn.queue.write(encodeFrame(conn.responder!.recvInit(body)));
        conn.phase = "final";
        return;
      case "final":
        this.established(conn, socket, conn.responder!.recvFinal(body));
        return;
      default:
        throw new P2PProtocolError("unexpected-frame", `frame received while ${conn.phase}`);
    }
  }

  private established(conn: Conn, socket: Socket<Conn>, result: HandshakeResult): void {
    this.endPending(conn);
    this.stats.handshakesOk++;
    const peerId = result.remoteIdHex;
    const info: LinkDescription = {
      peerId,
      remoteHost: conn.host,
      remotePort: conn.inbound ? socket.remotePort : conn.port,
      listenPort: conn.inbound ? (result.remoteListenPort ?? 0) : conn.port,
      inbound: conn.inbound,
      initiatorId: conn.inbound ? peerId : this.localId,
    };
    const link = new Link(
      info,
      socket as Socket<unknown>,
      conn.queue,
      result.sendCipher,
      result.recvCipher,
      this.linkOptions,
      (l, m) => {
        if (this.links.get(l.info.peerId) === l) this.events.message(l.info.peerId, m);
      },
      (l, reason) => this.linkClosed(l, reason),
    );
    conn.link = link;
    conn.phase = "link";
    const dial = conn.dial;
    conn.dial = undefined;

    const existing = this.links.get(peerId);
    const admission = admitLink({
      localId: this.localId,
      peerId,
      inbound: conn.inbound,
      initiatorId: info.initiatorId,
      remoteHost: conn.host,
      banned: this.opts.isRefused?.(peerId) ?? false,
      existingInitiatorId: existing?.info.initiatorId,
      acceptInbound: () => this.opts.acceptInbound?.(peerId) ?? true,
      inboundFromHost: conn.inbound ? this.inboundFrom(conn.host) : 0,
      maxInboundPerIp: this.opts.maxInboundPerIp ?? 8,
      limitLoopback: this.opts.limitLoopback ?? false,
    });
    if (admission.kind === "refuse") {
      const referrals = admission.referrals ? this.opts.referralsOnRefusal?.(peerId) : undefined;
      if (referrals !== undefined) link.send(referrals);
      this.countFailure(admission.reason);
      link.closeWithError(admission.code, admission.reason);
      dial?.reject(new P2PProtocolError(admission.reason, `link to ${peerId.slice(0, 12)} refused: ${admission.reason}`));
      return;
    }
    if (admission.kind === "duplicate") {
      if (admission.keepNew) {
        this.links.set(peerId, link);
        existing!.closeWithError(LinkErrorCode.DUPLICATE_LINK, "duplicate-link");
      } else {
        link.closeWithError(LinkErrorCode.DUPLICATE_LINK, "duplicate-link");
      }
      dial?.resolve(peerId);
      return;
    }
    this.links.set(peerId, link);
    this.stats.links = this.links.size;
    this.opts.log.info("link up", { peer: peerId, address: `${info.remoteHost}:${info.remotePort}`, inbound: info.inbound });
    dial?.resolve(peerId);
    this.events.linkUp(info);
  }

  private inboundFrom(host: string): number {
    let n = 0;
    for (const l of this.links.values()) if (l.info.inbound && l.info.remoteHost === host) n++;
    return n;
  }

  private linkClosed(link: Link, reason: string): void {
    const peerId = link.info.peerId;
    const totals = this.stats.closedLinks;
    totals.bytesIn += link.bytesIn;
    totals.bytesOut += link.bytesOut;
    totals.droppedMessages += link.droppedMessages;
    if (this.links.get(peerId) !== link) {
      // A refused or replaced duplicate: the peer is still linked (or never was), so no "link down".
      this.opts.log.debug("link closed", { peer: peerId, reason });
      return;
    }
    this.links.delete(peerId);
    this.stats.links = this.links.size;
    this.opts.log.info("link down", { peer: peerId, reason });
    this.events.linkDown(peerId, reason);
  }

  private onSocketClosed(socket: Socket<Conn>, reason: string): void {
    const conn = socket.data;
    this.conns.delete(socket);
    if (!conn || conn.phase === "closed") return;
    if (conn.link) conn.link.close(reason);
    else this.failConn(conn, undefined, reason);
  }

  private protocolFailure(conn: Conn, socket: Socket<Conn>, e: unknown): void {
    const code = e instanceof P2PProtocolError ? e.code : "internal-error";
    if (!(e instanceof P2PProtocolError)) this.opts.log.error("handshake bug", { error: e as Error });
    if (conn.link) conn.link.close(code);
    else this.failConn(conn, socket, code, e as Error);
  }

  /** Ends a connection that never became a link. */
  private failConn(conn: Conn, socket: Socket<Conn> | undefined, reason: string, error?: Error): void {
    if (conn.phase === "closed") return;
    const wasPending = conn.deadline !== undefined;
    this.endPending(conn);
    conn.phase = "closed";
    conn.solving?.abort();
    if (wasPending || reason === "connect-failed") this.countFailure(reason);
    // `dh`: Diffie-Hellman operations the failed attempt cost us (0 when the proof of work gate stopped it).
    const dh = conn.responder?.dhCount ?? 0;
    this.opts.log.debug("handshake failed", { address: `${conn.host}:${conn.port}`, inbound: conn.inbound, reason, dh });
    socket?.end();
    conn.dial?.reject(error instanceof P2PProtocolError ? error : new P2PProtocolError(reason, `dial ${conn.host}:${conn.port}: ${error?.message ?? reason}`));
  }

  private endPending(conn: Conn): void {
    if (conn.deadline === undefined) return;
    clearTimeout(conn.deadline);
    conn.deadline = undefined;
    this.pending--;
    this.stats.pendingHandshakes = this.pending;
    if (conn.inbound) {
      const n = (this.pendingPerIp.get(conn.host) ?? 1) - 1;
      if (n <= 0) this.pendingPerIp.delete(conn.host);
      else this.pendingPerIp.set(conn.host, n);
    }
  }

  private countFailure(reason: string): void {
    this.stats.handshakesFailed.set(reason, (this.stats.handshakesFailed.get(reason) ?? 0) + 1);
  }
}
