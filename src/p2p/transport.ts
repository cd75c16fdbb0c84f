/**
 * The P2P endpoint: listens on p2p_address, dials peers, runs one Connection (connection.ts: Hello → handshake →
 * link) per TCP socket, and keeps one Link per peer ID. It limits pending handshakes (pending-table.ts), admits
 * authenticated peers by the rules of admission.ts, and settles every dial exactly once (linked, or a DialError).
 * It knows nothing of gossip: it reports links up/down and decoded link messages to its owner.
 */
import type { Socket, SocketHandler, TCPSocketListener } from "bun";
import { HANDSHAKE_TIMEOUT_MS, LINK_IDLE_TIMEOUT_MS, LINK_PING_INTERVAL_MS, LINK_SEND_BUFFER_BYTES } from "../defaults.ts";
import { MAX_INBOUND_LINKS_PER_IP, MAX_PENDING_HANDSHAKES, MAX_PENDING_HANDSHAKES_PER_IP } from "../defaults.ts";
import { DialError } from "../errors.ts";
import type { Logger } from "../log.ts";
import { admitLink } from "./admission.ts";
import { DialTable, type PendingDial } from "./dial-table.ts";
import { admitPending, type PendingInbound } from "./pending-table.ts";
import { Connection, type ConnectionEvents, type ConnectionOptions, type PowSolver } from "./connection.ts";
import { generateStaticKeyPair, type Identity, type StaticKeyPair } from "./identity.ts";
import type { Link, LinkDescription, LinkOptions } from "./link.ts";
import { LinkErrorCode, type LinkMessage } from "./proto/gossip.ts";
import { ownerReason, type CloseReason, type HandshakeFailure } from "./reasons.ts";
import { FEATURE_ROOTS, FEATURE_TREES, FEATURE_VIEWS } from "./wire.ts";

export type { PowSolver } from "./connection.ts";

export interface TransportEvents {
  linkUp(link: LinkDescription): void;
  message(peerId: string, message: LinkMessage): void;
  linkDown(peerId: string, reason: CloseReason): void;
}

export interface TransportOptions extends Partial<LinkOptions> {
  identity: Identity;
  host: string;
  port: number;
  /** Leading zero bits demanded from peers that dial us. */
  difficulty: number;
  /** Identity proof-of-work bits demanded of every peer, dialing or dialed (src/p2p/identity-pow.ts); default 0. */
  identityDifficulty?: number;
  /** The most work we do to dial others. */
  maxDifficulty: number;
  pow: PowSolver;
  log: Logger;
  /** Where links up/down and messages go (may also be set later through `events`). */
  events?: TransportEvents;
  handshakeTimeoutMs?: number;
  /** Frames per direction between Noise rekeys (default REKEY_INTERVAL_FRAMES); tests lower it. */
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
   * Inbound links from one IP at most (default MAX_INBOUND_LINKS_PER_IP), so that many IDs from one host cannot take
   * every inbound slot. Loopback is exempt (local test and development nodes all share it) unless `limitLoopback`.
   */
  maxInboundPerIp?: number;
  limitLoopback?: boolean;
  /** Offer broadcast trees in the handshake (default true); false runs a transport that does not speak them, like a
   *  node that predates them (features 0). */
  offerTrees?: boolean;
  /** Offer rooted trees with them (default true; false: a node that speaks the paper's trees only, as before them). */
  offerRoots?: boolean;
  /** Offer membership views in the handshake (default false): a node whose membership is HyParView sets it, so that
   *  peers send joins, shuffles and neighbor requests only to a node that answers them. */
  offerViews?: boolean;
}

export interface TransportStats {
  handshakesOk: number;
  handshakesFailed: Map<HandshakeFailure, number>;
  pendingHandshakes: number;
  /** Dials not settled yet. */
  dialing: number;
  links: number;
  /** Totals of links that have closed, so that byte and drop counters over all links never go down. */
  closedLinks: { bytesIn: number; bytesOut: number; droppedMessages: number };
}

/** One TCP socket: what the transport knows of it before and after its Connection exists. */
interface Slot {
  inbound: boolean;
  host: string;
  port: number;
  expectedId?: string;
  /** Until settled. */
  dial?: PendingDial;
  connection?: Connection;
  /** performance.now() when the socket opened (the pending table evicts the oldest first). */
  openedAt: number;
}

export class Transport {
  readonly localId: string;
  events: TransportEvents;
  private listener?: TCPSocketListener<Slot>;
  private readonly staticKeys: StaticKeyPair = generateStaticKeyPair();
  private readonly links = new Map<string, Link>();
  /** Each link's connection (for flow control); entries go with their links. */
  private readonly connections = new WeakMap<Link, Connection>();
  /** The links as an array, rebuilt only when one comes or goes (linked() runs for every item sent). */
  private linkList: readonly Link[] = [];
  private readonly dials = new DialTable();
  /** Sockets whose handshake is in progress, inbound and dialed (pending-table.ts decides who gets a slot). */
  private readonly pending = new Set<Slot>();
  private stopping = false;
  private readonly linkOptions: LinkOptions;
  private handshakesOk = 0;
  private readonly handshakesFailed = new Map<HandshakeFailure, number>();
  private readonly closedLinks = { bytesIn: 0, bytesOut: 0, droppedMessages: 0 };
  private readonly socketHandlers: SocketHandler<Slot>;

  constructor(private readonly opts: TransportOptions) {
    this.localId = opts.identity.idHex;
    this.events = opts.events ?? { linkUp() {}, message() {}, linkDown() {} };
    this.linkOptions = {
      sendBufferBytes: opts.sendBufferBytes ?? LINK_SEND_BUFFER_BYTES,
      pingIntervalMs: opts.pingIntervalMs ?? LINK_PING_INTERVAL_MS,
      idleTimeoutMs: opts.idleTimeoutMs ?? LINK_IDLE_TIMEOUT_MS,
    };
    this.socketHandlers = {
      open: (socket) => this.onOpen(socket),
      data: (socket, chunk) => socket.data.connection?.receive(chunk),
      drain: (socket) => socket.data.connection?.drained(),
      close: (socket) => this.onSocketGone(socket, "closed-by-peer"),
      error: (socket, error) => this.onSocketGone(socket, "socket-error", error),
      connectError: (socket, error) => this.connectFailed(socket.data, error),
    };
  }

  get port(): number {
    return this.listener?.port ?? this.opts.port;
  }

  async start(): Promise<void> {
    this.listener = Bun.listen<Slot>({ hostname: this.opts.host, port: this.opts.port, socket: this.socketHandlers });
  }

  /** Dials host:port; resolves with the authenticated peer ID, or rejects with a DialError. An expected ID that
   *  differs aborts the handshake ("unexpected-peer"). */
  dial(host: string, port: number, expectedId?: string): Promise<string> {
    if (expectedId !== undefined && this.links.has(expectedId)) return Promise.resolve(expectedId);
    if (expectedId === this.localId) return Promise.reject(new DialError("self-connection", "refusing to dial ourselves"));
    if (expectedId !== undefined && !/^[0-9a-fA-F]{64}$/.test(expectedId)) {
      return Promise.reject(new RangeError("expectedId must be 64 hex digits"));
    }
    if (this.stopping) return Promise.reject(new DialError("shutting-down", `dial ${host}:${port}: shutting down`));
    const key = `${host}:${port}`;
    const existing = this.dials.get(key);
    if (existing) return existing.promise;
    const dial = this.dials.start(key);
    const slot: Slot = { inbound: false, host, port, expectedId, dial, openedAt: performance.now() };
    Bun.connect<Slot>({ hostname: host, port, data: slot, socket: this.socketHandlers }).catch((e: Error) => this.connectFailed(slot, e));
    return dial.promise;
  }

  /** Sends to a linked peer; false if not linked or dropped. Pass pre-encoded plaintext to fan one message out. */
  send(peerId: string, message: LinkMessage | Uint8Array, droppable = false): boolean {
    return this.links.get(peerId)?.send(message, droppable) ?? false;
  }

  /**
   * Stops reading a linked peer (connection.ts pauseReading: its messages wait, and TCP makes it wait), e.g. while
   * nothing it sends could be validated; false if not linked. resumeReading hands up what waited, in order.
   */
  pauseReading(peerId: string): boolean {
    const connection = this.connectionOf(peerId);
    connection?.pauseReading();
    return connection !== undefined;
  }

  resumeReading(peerId: string): boolean {
    const connection = this.connectionOf(peerId);
    connection?.resumeReading();
    return connection !== undefined;
  }

  /** Whether reading from a linked peer is paused. */
  isReadingPaused = (peerId: string): boolean => this.links.get(peerId)?.paused ?? false;

  private connectionOf(peerId: string): Connection | undefined {
    const link = this.links.get(peerId);
    return link === undefined ? undefined : this.connections.get(link);
  }

  /** Closes the link with a LinkError; `reason` (the owner's own code) is what "link down" reports. */
  disconnect(peerId: string, reason: string, code = LinkErrorCode.MISBEHAVIOUR): void {
    this.links.get(peerId)?.closeWithError(code, ownerReason(reason));
  }

  /** The links now: the same array until a link comes or goes (never modify it). */
  linked(): readonly Link[] {
    return this.linkList;
  }

  private setLink(peerId: string, link: Link): void {
    this.links.set(peerId, link);
    this.linkList = [...this.links.values()];
  }

  stats(): TransportStats {
    return {
      handshakesOk: this.handshakesOk,
      handshakesFailed: new Map(this.handshakesFailed),
      pendingHandshakes: this.pending.size,
      dialing: this.dials.size,
      links: this.links.size,
      closedLinks: { ...this.closedLinks },
    };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    // Links and handshakes first: stopping the listener force-closes accepted sockets, which would log them as
    // "closed-by-peer" and deny the peer its SHUTTING_DOWN error.
    for (const link of [...this.links.values()]) link.closeWithError(LinkErrorCode.SHUTTING_DOWN, "shutting-down");
    for (const slot of [...this.pending]) slot.connection?.abort("shutting-down");
    // Dials whose sockets have not opened yet: they will be ended when they do (onOpen).
    for (const dial of this.dials.all()) dial.reject(new DialError("shutting-down", "the transport stopped"));
    this.listener?.stop(true);
  }

  private onOpen(socket: Socket<Slot>): void {
    // Inbound: Bun gives no data object for accepted sockets.
    const slot = (socket.data ??= { inbound: true, host: socket.remoteAddress, port: socket.remotePort, openedAt: performance.now() });
    if (this.stopping) {
      this.refuse(slot, socket, "shutting-down");
      return;
    }
    if (slot.inbound && !this.makeRoom(slot)) {
      this.countFailure("too-many-pending");
      this.refuse(slot, socket, "too-many-pending");
      return;
    }
    this.pending.add(slot);
    // A Bun socket is a ByteSink: write() takes what the kernel takes, end() sends a FIN.
    slot.connection = new Connection(socket, this.connectionOptions(slot), this.connectionEvents(slot));
    slot.connection.start();
  }

  /** Whether an inbound connection gets a pending slot, evicting an unpaid one by the rule of pending-table.ts. */
  private makeRoom(slot: Slot): boolean {
    const inbound: (PendingInbound & { slot: Slot })[] = [];
    for (const s of this.pending) {
      if (s.inbound) inbound.push({ host: s.host, openedAt: s.openedAt, awaitingWork: s.connection?.awaitingWork ?? true, slot: s });
    }
    const decision = admitPending(slot.host, inbound, this.pending.size, {
      maxPending: this.opts.maxPendingHandshakes ?? MAX_PENDING_HANDSHAKES,
      maxPerIp: this.opts.maxPendingPerIp ?? MAX_PENDING_HANDSHAKES_PER_IP,
    });
    if (decision.kind === "evict") decision.victim.slot.connection?.abort("handshake-evicted"); // leaves the table at once
    return decision.kind !== "refuse";
  }

  private refuse(slot: Slot, socket: Socket<Slot>, reason: HandshakeFailure): void {
    this.opts.log.debug("handshake refused", { address: slot.host, reason });
    socket.end();
    this.rejectDial(slot, reason);
  }

  private connectionOptions(slot: Slot): ConnectionOptions {
    const o = this.opts;
    return {
      ...this.linkOptions,
      role: slot.inbound
        ? { inbound: true, difficulty: o.difficulty }
        : { inbound: false, maxDifficulty: o.maxDifficulty, pow: o.pow, expectedPeerId: slot.expectedId },
      identity: o.identity,
      staticKeys: this.staticKeys,
      listenPort: this.port,
      rekeyInterval: o.rekeyInterval,
      features:
        (o.offerTrees === false ? 0 : FEATURE_TREES | (o.offerRoots === false ? 0 : FEATURE_ROOTS)) |
        (o.offerViews === true ? FEATURE_VIEWS : 0),
      identityDifficulty: o.identityDifficulty,
      handshakeTimeoutMs: o.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS,
      remote: { host: slot.host, port: slot.port },
    };
  }

  private connectionEvents(slot: Slot): ConnectionEvents {
    return {
      established: (_c, link) => this.established(slot, link),
      failed: (connection, reason, error) => this.handshakeFailed(slot, connection, reason, error),
      message: (link, message) => {
        if (this.links.get(link.info.peerId) === link) this.events.message(link.info.peerId, message);
      },
      linkClosed: (link, reason) => this.linkClosed(link, reason),
    };
  }

  private onSocketGone(socket: Socket<Slot>, reason: "closed-by-peer" | "socket-error", error?: Error): void {
    const slot = socket.data;
    if (!slot) return;
    if (error) this.opts.log.debug("socket error", { address: `${slot.host}:${slot.port}`, error });
    if (slot.connection) slot.connection.closed(reason);
    else this.rejectDial(slot, reason, error);
  }

  private connectFailed(slot: Slot, error: Error): void {
    if (slot.connection || !slot.dial) return; // Bun may report a failed connect twice (handler and promise)
    this.countFailure("connect-failed");
    this.opts.log.debug("handshake failed", { address: `${slot.host}:${slot.port}`, inbound: false, reason: "connect-failed", dh: 0 });
    this.rejectDial(slot, "connect-failed", error);
  }

  private established(slot: Slot, link: Link): void {
    this.endPending(slot);
    this.connections.set(link, slot.connection!);
    this.handshakesOk++;
    const info = link.info;
    const peerId = info.peerId;
    const dial = slot.dial;
    slot.dial = undefined;

    const existing = this.links.get(peerId);
    const admission = admitLink({
      localId: this.localId,
      peerId,
      inbound: info.inbound,
      initiatorId: info.initiatorId,
      remoteHost: info.remoteHost,
      banned: this.opts.isRefused?.(peerId) ?? false,
      existingInitiatorId: existing?.info.initiatorId,
      acceptInbound: () => this.opts.acceptInbound?.(peerId) ?? true,
      inboundFromHost: info.inbound ? this.inboundFrom(info.remoteHost) : 0,
      maxInboundPerIp: this.opts.maxInboundPerIp ?? MAX_INBOUND_LINKS_PER_IP,
      limitLoopback: this.opts.limitLoopback ?? false,
    });
    if (admission.kind === "refuse") {
      const referrals = admission.referrals ? this.opts.referralsOnRefusal?.(peerId) : undefined;
      if (referrals !== undefined) link.send(referrals);
      this.countFailure(admission.reason);
      link.closeWithError(admission.code, admission.reason);
      dial?.reject(new DialError(admission.reason, `link to ${peerId.slice(0, 12)} refused: ${admission.reason}`));
      return;
    }
    if (admission.kind === "duplicate") {
      if (admission.keepNew) {
        this.setLink(peerId, link);
        existing!.closeWithError(LinkErrorCode.DUPLICATE_LINK, "duplicate-link");
      } else {
        link.closeWithError(LinkErrorCode.DUPLICATE_LINK, "duplicate-link");
      }
      dial?.resolve(peerId);
      return;
    }
    this.setLink(peerId, link);
    this.opts.log.info("link up", { peer: peerId, address: `${info.remoteHost}:${info.remotePort}`, inbound: info.inbound });
    dial?.resolve(peerId);
    this.events.linkUp(info);
  }

  private inboundFrom(host: string): number {
    let n = 0;
    for (const l of this.links.values()) if (l.info.inbound && l.info.remoteHost === host) n++;
    return n;
  }

  private linkClosed(link: Link, reason: CloseReason): void {
    const peerId = link.info.peerId;
    this.closedLinks.bytesIn += link.bytesIn;
    this.closedLinks.bytesOut += link.bytesOut;
    this.closedLinks.droppedMessages += link.droppedMessages;
    if (this.links.get(peerId) !== link) {
      // A refused or replaced duplicate: the peer is still linked (or never was), so no "link down".
      this.opts.log.debug("link closed", { peer: peerId, reason });
      return;
    }
    this.links.delete(peerId);
    this.linkList = [...this.links.values()];
    this.opts.log.info("link down", { peer: peerId, reason });
    this.events.linkDown(peerId, reason);
  }

  private handshakeFailed(slot: Slot, connection: Connection, reason: HandshakeFailure, error?: Error): void {
    this.endPending(slot);
    this.countFailure(reason);
    if (reason === "internal-error") this.opts.log.error("handshake bug", { error });
    // `dh`: Diffie-Hellman operations the failed attempt cost us (0 when the proof of work gate stopped it).
    const fields = { address: `${slot.host}:${slot.port}`, inbound: slot.inbound, reason, dh: connection.dhCount };
    this.opts.log.debug("handshake failed", fields);
    this.rejectDial(slot, reason, error);
  }

  private rejectDial(slot: Slot, reason: HandshakeFailure, error?: Error): void {
    const dial = slot.dial;
    if (!dial) return;
    slot.dial = undefined;
    dial.reject(new DialError(reason, `dial ${slot.host}:${slot.port}: ${error?.message ?? reason}`, { cause: error }));
  }

  private endPending(slot: Slot): void {
    this.pending.delete(slot);
  }

  private countFailure(reason: HandshakeFailure): void {
    this.handshakesFailed.set(reason, (this.handshakesFailed.get(reason) ?? 0) + 1);
  }
}
