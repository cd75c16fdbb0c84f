/**
 * The simulated transport: virtual time, the one event queue, and every node's PeerNetwork port. It does what
 * src/p2p/transport.ts does on sockets, on the network model instead: dials with their TCP and Noise round trips and
 * proof of work, the same admission rules in the same places (refusal with referrals, simultaneous open, banned
 * peers), links as ordered byte streams with real message sizes, local linkDown at once on disconnect, the remote one
 * when the close arrives, crashes (reset or silent) and partitions.
 *
 * The event loop drains microtasks after every event that settled a promise (a validation answer, a dial), so the
 * core's `await` continuations run at that event's virtual time. Must never: call into a dead node, deliver on a link
 * the receiver no longer holds, or use any clock or randomness but its own.
 */
import {
  HANDSHAKE_TIMEOUT_MS,
  LINK_IDLE_TIMEOUT_MS,
  LINK_PING_INTERVAL_MS,
  LINK_SEND_BUFFER_BYTES,
  MAX_PENDING_HANDSHAKES,
  SIM_CONNECT_TIMEOUT_MS,
  SIM_SYN_RETRY_MS,
  SIM_UNKNOWN_ADDRESS_RTT_MS,
} from "../defaults.ts";
import { DialError } from "../errors.ts";
import type { Clock, GossipItem, LinkInfo, PeerAddress, PeerId, PeerNetwork, Verdict } from "../gossip/ports.ts";
import type { HandshakeFailure } from "../p2p/reasons.ts";
import { EventQueue, type QueuedEvent } from "./event-queue.ts";
import type { SimMetrics } from "./metrics.ts";
import { newDirection, powSolveMs, type Wire } from "./network-model.ts";
import type { Conn, SimNode } from "./node.ts";
import {
  PayloadSizer,
  PEER_REQUEST_BYTES,
  PING_BYTES,
  PONG_BYTES,
  FRAME_OVERHEAD_BYTES,
  addToTurn,
  handshakeFrameBytes,
  linkErrorBytes,
  newTurnBatch,
  peerListBytes,
} from "./wire-sizes.ts";

// Event kinds.
const TIMER = 1;
const CALL = 2;
const SYN = 3;
const INIT_ESTABLISHED = 4;
const DIAL_FAIL = 5;
const HANDSHAKE_ABORT = 6;
const MESSAGE = 7;
const IDLE_TIMEOUT = 8;
const ANSWER = 9;

// MESSAGE codes (event x = code * 2 + 1 when it travels to the responder).
const M_PAYLOAD = 0;
const M_PEER_REQUEST = 1;
const M_PEER_LIST = 2;
const M_CLOSE = 3;
const M_FINAL = 4;

interface Timer {
  node: SimNode | undefined;
  fn: () => void;
  every: number;
  cancelled: boolean;
}

export interface WorldOptions {
  wire: Wire;
  metrics: SimMetrics;
  /** Leading zero bits every node demands from dialers. */
  powDifficulty: number;
  hashesPerSecond: number;
  /** Randomness of the world itself (PoW draws, idle-timeout phases). */
  random: () => number;
  /** What a crash looks like to peers: `reset` (the host is up: RST at once) or `silent` (the host is gone). */
  crash: "reset" | "silent";
  /** Microtask turns yielded after an event that settled a promise. */
  drainTurns: number;
  /** Also wait for a macrotask after every event and fail if the core still did something then (tests). */
  strictDrain?: boolean;
}

export class World {
  readonly queue = new EventQueue();
  readonly nodes: SimNode[] = [];
  now = 0;
  /** Events run. */
  events = 0;
  /** Incremented per event: messages a node sends within one turn share a Batch frame. */
  private turn = 0;
  /** Experimental: ask for a collection every this many events (0 = never). */
  gcEvery = Number(process.env.SIM_GC_EVERY ?? 0);
  private lastGcAt = 0;
  private settled = false;
  private portCalls = 0;
  /** Every node ever added, by "host:port" (addresses are never reused). */
  private readonly byAddress = new Map<string, SimNode>();
  private readonly sizer = new PayloadSizer();
  private lastData: Uint8Array | undefined = undefined;
  private lastTrack: ReturnType<SimMetrics["track"]> = undefined;
  private readonly handshakeBytes: [number, number, number, number];
  private readonly closeBytes: number;
  private readonly wire: Wire;
  private readonly metrics: SimMetrics;
  private splitUntil = -Infinity;
  /** Called for each crash, after the node is dead (scenario bookkeeping). */
  onDeath: (node: SimNode) => void = () => {};
  private readonly ev: QueuedEvent = { time: 0, kind: 0, a: undefined, b: undefined, x: 0 };

  constructor(private readonly options: WorldOptions) {
    this.wire = options.wire;
    this.metrics = options.metrics;
    this.handshakeBytes = handshakeFrameBytes(options.powDifficulty, 6001);
    this.closeBytes = linkErrorBytes("too-many-links") + FRAME_OVERHEAD_BYTES;
  }

  // ---- Time ------------------------------------------------------------------------------------------------------

  clockFor(node: () => SimNode | undefined): Clock {
    const timer = (fn: () => void, ms: number, every: number): Timer => {
      const t: Timer = { node: node(), fn, every, cancelled: false };
      this.queue.push(this.now + Math.max(0, ms), TIMER, t);
      return t;
    };
    const cancel = (h: unknown) => {
      if (h !== undefined && h !== null) (h as Timer).cancelled = true;
    };
    return {
      now: () => this.now,
      setTimeout: (fn, ms) => timer(fn, ms, 0),
      setInterval: (fn, ms) => timer(fn, ms, Math.max(1, ms)),
      clearTimeout: cancel,
      clearInterval: cancel,
    };
  }

  /** Runs `fn` at virtual time `at` (scenario steps: joins, publications, crashes). */
  at(at: number, fn: () => void): void {
    this.queue.push(Math.max(at, this.now), CALL, fn);
  }

  /** A simulated module's VALIDATION answer at `at` (an event, not a closure: there is one per delivery). */
  answerAt(at: number, node: SimNode, resolve: (v: Verdict) => void, verdict: Verdict): void {
    this.queue.push(at, ANSWER, node, resolve, verdict === "valid" ? 1 : 0);
  }

  /** Lets the core's promise continuations run after this event. */
  markSettled(): void {
    this.settled = true;
  }

  /** Counts a call of the core into a port (the loop drains microtasks after any event with one). */
  portCall(): void {
    this.portCalls++;
  }

  /** Runs events until virtual time `until` (or `stop()` returns true at a checkpoint); then now = until. */
  async runUntil(until: number, stop?: () => boolean, progress?: () => void): Promise<void> {
    const q = this.queue;
    const ev = this.ev;
    const turns = this.options.drainTurns;
    const strict = this.options.strictDrain === true;
    let sinceCheck = 0;
    while (q.peekTime() <= until) {
      q.pop(ev);
      this.now = ev.time;
      this.turn++;
      this.events++;
      const calls = this.portCalls;
      this.dispatch(ev);
      if (this.settled || calls !== this.portCalls) {
        this.settled = false;
        for (let i = 0; i < turns; i++) await null;
      }
      if (strict) {
        const drained = this.portCalls;
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (drained !== this.portCalls) throw new Error(`sim: the core acted after the drain at t=${this.now} ms (event kind ${ev.kind})`);
      }
      if (++sinceCheck >= 4096) {
        sinceCheck = 0;
        progress?.();
        if (stop?.()) return;
        if (this.gcEvery > 0 && this.events - this.lastGcAt >= this.gcEvery) {
          this.lastGcAt = this.events;
          Bun.gc(process.env.SIM_GC_FULL === "1");
        }
      }
    }
    this.now = Math.max(this.now, until);
  }

  private dispatch(ev: QueuedEvent): void {
    switch (ev.kind) {
      case MESSAGE:
        return this.message(ev.a as Conn, ev.b, ev.x);
      case TIMER: {
        const t = ev.a as Timer;
        if (t.cancelled || (t.node !== undefined && !t.node.alive)) return;
        if (t.every > 0) this.queue.push(this.now + t.every, TIMER, t);
        t.fn();
        return;
      }
      case CALL:
        return (ev.a as () => void)();
      case SYN:
        return this.synArrived(ev.a as Conn);
      case INIT_ESTABLISHED:
        return this.initiatorEstablished(ev.a as Conn);
      case DIAL_FAIL:
        return this.failDial(ev.a as Conn, ev.b as HandshakeFailure);
      case HANDSHAKE_ABORT:
        (ev.a as Conn).responder.handshakesPending--;
        return;
      case IDLE_TIMEOUT:
        return this.idleTimeout(ev.a as Conn, ev.b as SimNode);
      case ANSWER: {
        const node = ev.a as SimNode;
        if (!node.alive) return;
        node.modules!.answered(ev.b as (v: Verdict) => void, ev.x === 1 ? "valid" : "invalid");
        this.settled = true;
        return;
      }
    }
  }

  // ---- Nodes -----------------------------------------------------------------------------------------------------

  add(node: SimNode): void {
    this.nodes.push(node);
    this.wire.place(node.index);
    this.byAddress.set(`${node.host}:${node.listenPort}`, node);
  }

  /** The node's PeerNetwork port (what the gossip core talks to). */
  portOf(node: SimNode): PeerNetwork {
    const world = this;
    return {
      localId: node.id,
      linkedPeers: () => {
        world.portCalls++;
        return node.linkInfos().slice();
      },
      sendItem: (peer, item) => world.sendItem(node, peer, item),
      requestPeers: (peer) => void world.send(node, peer, M_PEER_REQUEST, undefined, PEER_REQUEST_BYTES, "peer_request", false),
      sendPeers: (peer, peers) => void world.send(node, peer, M_PEER_LIST, peers, peerListBytes(peers), "peer_list", false),
      dial: (addr) => world.dial(node, addr),
      isOwnAddress: (host, port) => host === node.host && port === node.listenPort,
      disconnect: (peer, reason) => world.disconnect(node, peer, reason),
    };
  }

  /** The process on `node` dies: timers stop, and peers see the links close (at once or by idle timeout). */
  crash(node: SimNode): void {
    if (!node.alive) return;
    node.alive = false;
    node.diedAt = this.now;
    for (const conn of node.links.values()) {
      this.countPings(conn, node);
      const other = conn.initiator === node ? conn.responder : conn.initiator;
      if (this.options.crash === "reset") this.sendClose(conn, node, "closed-by-peer", 0);
      else this.scheduleIdleTimeout(conn, other, this.now);
    }
    node.links.clear();
    node.linksChanged();
    node.logic = undefined;
    this.onDeath(node);
  }

  /**
   * Splits the network by `side` until `healAt`: frames across wait for the heal (TCP retransmits them), links
   * across close by idle timeout if the split outlasts it, and dials across get through at the first SYN retry after
   * the heal (or time out).
   */
  partition(healAt: number): void {
    this.splitUntil = healAt;
    for (const node of this.nodes) {
      if (!node.alive) continue;
      for (const conn of node.links.values()) {
        const other = conn.initiator === node ? conn.responder : conn.initiator;
        if (other.side !== node.side) this.scheduleIdleTimeout(conn, node, this.now);
      }
    }
  }

  private blocked(a: SimNode, b: SimNode): boolean {
    return this.now < this.splitUntil && a.side !== b.side;
  }

  // ---- Dials and handshakes (src/p2p/transport.ts, connection.ts, admission.ts) ------------------------------------

  private dial(node: SimNode, addr: PeerAddress): Promise<PeerId> {
    this.portCalls++;
    if (!node.alive) return Promise.reject(new DialError("shutting-down", "node is down"));
    if (addr.id !== undefined && node.links.has(addr.id)) return Promise.resolve(addr.id);
    if (addr.id === node.id) return Promise.reject(new DialError("self-connection", "refusing to dial ourselves"));
    // (These settle at once; the loop drains after any event in which the core called a port.)
    const key = `${addr.host}:${addr.port}`;
    const pending = node.pendingDials.get(key);
    if (pending !== undefined) return pending;
    const target = this.byAddress.get(key);
    let resolve!: (peer: PeerId) => void;
    let reject!: (error: Error) => void;
    const promise = new Promise<PeerId>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    node.pendingDials.set(key, promise);
    if (target === node) {
      // A dial that reaches ourselves resolves with our own ID and no link (PeerNetwork.dial).
      node.pendingDials.delete(key);
      resolve(node.id);
      return promise;
    }
    const responder = target ?? node; // placeholder for an unreachable address (never used as a peer)
    const conn: Conn = {
      initiator: node,
      responder,
      initiatorInfo: { peer: responder.id, host: addr.host, port: addr.port, inbound: false },
      responderInfo: { peer: node.id, host: node.host, port: node.listenPort, inbound: true },
      toResponder: newDirection(),
      toInitiator: newDirection(),
      batchToResponder: newTurnBatch(),
      batchToInitiator: newTurnBatch(),
      dialKey: key,
      expectedId: addr.id,
      resolve,
      reject,
      initiatorSince: NaN,
      responderSince: NaN,
    };
    if (target === undefined) {
      // An address no simulated node ever had (adversary hearsay): refused after a typical RTT.
      this.queue.push(this.now + SIM_UNKNOWN_ADDRESS_RTT_MS, DIAL_FAIL, conn, "connect-failed");
      return promise;
    }
    const d = this.wire.trip(node.index, target.index);
    if (this.blocked(node, target)) {
      const retry = SIM_SYN_RETRY_MS.find((r) => this.now + r >= this.splitUntil);
      if (retry === undefined) this.queue.push(this.now + SIM_CONNECT_TIMEOUT_MS, DIAL_FAIL, conn, "connect-failed");
      else this.queue.push(this.now + retry + d, SYN, conn);
      return promise;
    }
    this.queue.push(this.now + d, SYN, conn);
    return promise;
  }

  /** The SYN reached the responder's host: TCP completes, the Hello goes out, the initiator solves and replies. */
  private synArrived(conn: Conn): void {
    const { initiator, responder } = conn;
    const d = this.wire.trip(initiator.index, responder.index);
    if (!responder.alive) {
      if (this.options.crash === "silent") this.queue.push(this.now - d + SIM_CONNECT_TIMEOUT_MS, DIAL_FAIL, conn, "connect-failed");
      else this.queue.push(this.now + d, DIAL_FAIL, conn, "connect-failed");
      return;
    }
    if (responder.handshakesPending >= MAX_PENDING_HANDSHAKES) {
      this.queue.push(this.now + 3 * d, DIAL_FAIL, conn, "closed-by-peer");
      return;
    }
    if (conn.expectedId !== undefined && conn.expectedId !== responder.id) {
      // The Hello names the responder: the initiator aborts before any work.
      this.queue.push(this.now + 3 * d, DIAL_FAIL, conn, "unexpected-peer");
      return;
    }
    responder.handshakesPending++;
    // From here, one way each: ACK (responder opens, sends Hello), Hello, solve, M1, M2 → the initiator is done.
    const solve = powSolveMs(this.options.powDifficulty, this.options.hashesPerSecond, this.options.random);
    if (4 * d + solve > HANDSHAKE_TIMEOUT_MS) {
      this.queue.push(this.now + 2 * d + HANDSHAKE_TIMEOUT_MS, HANDSHAKE_ABORT, conn);
      this.queue.push(this.now + d + HANDSHAKE_TIMEOUT_MS, DIAL_FAIL, conn, "handshake-timeout");
      return;
    }
    this.queue.push(this.now + 5 * d + solve, INIT_ESTABLISHED, conn);
  }

  private failDial(conn: Conn, code: HandshakeFailure): void {
    const node = conn.initiator;
    node.pendingDials.delete(conn.dialKey);
    const reject = conn.reject;
    conn.resolve = conn.reject = undefined;
    if (reject === undefined || !node.alive) return;
    reject(new DialError(code, `dial ${conn.dialKey}: ${code}`));
    this.markSettled();
  }

  private settleDial(conn: Conn, peer: PeerId): void {
    conn.initiator.pendingDials.delete(conn.dialKey);
    const resolve = conn.resolve;
    conn.resolve = conn.reject = undefined;
    resolve?.(peer);
    this.markSettled();
  }

  /** M2 arrived: the initiator sends M3 and holds the link (transport.established for an outbound link). */
  private initiatorEstablished(conn: Conn): void {
    const { initiator: node, responder: peer } = conn;
    const d = this.wire.trip(node.index, peer.index);
    if (!node.alive) {
      this.queue.push(this.now + d, HANDSHAKE_ABORT, conn);
      return;
    }
    if (!peer.alive) return this.failDial(conn, "closed-by-peer");
    const [hello, init, response, final] = this.handshakeBytes;
    this.metrics.count("handshake", hello + init + response, 3);
    this.metrics.count("handshake", final, 1);
    // M3 travels on the stream like any later frame, so what the initiator sends next arrives after it.
    this.queue.push(this.wire.arrival(node.index, peer.index, final, this.now, conn.toResponder, false), MESSAGE, conn, undefined, M_FINAL * 2 + 1);
    if (node.logic?.isBanned(peer.id)) {
      this.sendClose(conn, node, "remote-error:MISBEHAVIOUR", this.closeBytes);
      return this.failDial(conn, "peer-banned");
    }
    const duplicate = this.duplicate(node, peer, conn);
    if (duplicate !== "none") {
      if (duplicate === "keep-old") this.sendClose(conn, node, "remote-error:DUPLICATE_LINK", this.closeBytes);
      return this.settleDial(conn, peer.id);
    }
    this.hold(node, peer, conn);
    this.settleDial(conn, peer.id);
    node.logic?.events.linkUp(conn.initiatorInfo);
  }

  /** M3 arrived: the responder's admission (self, banned, duplicate, room) and its link up. */
  private responderEstablished(conn: Conn): void {
    const { initiator: peer, responder: node } = conn;
    node.handshakesPending--;
    if (!node.alive || node.logic === undefined) return;
    if (node.logic.isBanned(peer.id)) return this.refuse(conn, "remote-error:MISBEHAVIOUR", false);
    const duplicate = this.duplicate(node, peer, conn);
    if (duplicate === "keep-old") return this.refuse(conn, "remote-error:DUPLICATE_LINK", false);
    if (duplicate === "keep-new") return;
    if (!node.logic.acceptInbound(peer.id)) return this.refuse(conn, "remote-error:TOO_MANY_LINKS", true);
    this.hold(node, peer, conn);
    node.logic.events.linkUp(conn.responderInfo);
  }

  /**
   * Simultaneous open: with a link to `peer` already, keep the one the lower ID initiated (both ends agree without
   * talking). "keep-new" has already swapped the links.
   */
  private duplicate(node: SimNode, peer: SimNode, conn: Conn): "none" | "keep-old" | "keep-new" {
    const existing = node.links.get(peer.id);
    if (existing === undefined) return "none";
    const keepNew = existing.initiator !== conn.initiator && conn.initiator.rank < existing.initiator.rank;
    if (!keepNew) return "keep-old";
    // The new link replaces the old without a link-down or link-up; the old one is closed.
    this.countPings(existing, node);
    this.setSince(existing, node, NaN);
    node.links.delete(peer.id);
    this.sendClose(existing, node, "remote-error:DUPLICATE_LINK", this.closeBytes);
    this.hold(node, peer, conn);
    return "keep-new";
  }

  private refuse(conn: Conn, reason: string, referrals: boolean): void {
    const node = conn.responder;
    if (referrals) {
      const list = node.logic!.referrals(conn.initiator.id);
      if (list.length > 0) this.transmit(node, conn, M_PEER_LIST, list, peerListBytes(list), "peer_list");
    }
    this.transmit(node, conn, M_CLOSE, reason, linkErrorBytes("too-many-links"), "link_error");
  }

  private hold(node: SimNode, peer: SimNode, conn: Conn): void {
    node.links.set(peer.id, conn);
    node.linksChanged();
    this.setSince(conn, node, this.now);
  }

  // ---- Links -----------------------------------------------------------------------------------------------------

  private sendItem(node: SimNode, peer: PeerId, item: GossipItem): boolean {
    const sent = this.send(node, peer, M_PAYLOAD, item, this.sizer.bytes(item), "payload", true);
    if (sent) {
      // A node pushes one item to several peers in a row: remember the last lookup.
      if (item.data !== this.lastData) {
        this.lastData = item.data;
        this.lastTrack = this.metrics.track(item.data);
      }
      if (this.lastTrack !== undefined) this.lastTrack.copies++;
    }
    return sent;
  }

  /** Queues one message on `node`'s link to `peer`; false if not linked or (droppable) its send buffer is full. */
  private send(node: SimNode, peer: PeerId, code: number, body: unknown, plain: number, kind: Parameters<SimMetrics["count"]>[0], droppable: boolean): boolean {
    this.portCalls++;
    const conn = node.links.get(peer);
    if (conn === undefined || !node.alive) return false;
    if (droppable && !this.wire.unlimited) {
      const dir = conn.initiator === node ? conn.toResponder : conn.toInitiator;
      if (this.wire.backlog(dir, this.now) + plain > LINK_SEND_BUFFER_BYTES) return false;
    }
    this.transmit(node, conn, code, body, plain, kind);
    return true;
  }

  private transmit(from: SimNode, conn: Conn, code: number, body: unknown, plain: number, kind: Parameters<SimMetrics["count"]>[0]): void {
    const toResponder = conn.initiator === from;
    const to = toResponder ? conn.responder : conn.initiator;
    const dir = toResponder ? conn.toResponder : conn.toInitiator;
    const batch = toResponder ? conn.batchToResponder : conn.batchToInitiator;
    const bytes = addToTurn(batch, this.turn, plain, this.wire.unlimited || this.wire.backlog(dir, this.now) === 0);
    const sameFrame = batch.sameFrame;
    this.metrics.count(kind, bytes);
    let at = this.wire.arrival(from.index, to.index, bytes, this.now, dir, sameFrame);
    if (this.blocked(from, to)) {
      at = Math.max(at, this.splitUntil + this.wire.trip(from.index, to.index));
      dir.lastArrival = at;
    }
    this.queue.push(at, MESSAGE, conn, body, code * 2 + (toResponder ? 1 : 0));
  }

  private message(conn: Conn, body: unknown, x: number): void {
    const toResponder = (x & 1) === 1;
    const code = x >> 1;
    const to = toResponder ? conn.responder : conn.initiator;
    const from = toResponder ? conn.initiator : conn.responder;
    if (code === M_FINAL) return this.responderEstablished(conn);
    if (!to.alive || to.links.get(from.id) !== conn) return;
    const events = to.logic?.events;
    if (events === undefined) return;
    switch (code) {
      case M_PAYLOAD: {
        const item = body as GossipItem;
        const track = this.metrics.track(item.data);
        if (track !== undefined) this.metrics.arrived(track, from.index, to.index);
        return events.item(from.id, item);
      }
      case M_PEER_REQUEST:
        return events.peersRequested(from.id);
      case M_PEER_LIST:
        return events.peers(from.id, body as PeerAddress[]);
      case M_CLOSE:
        this.countPings(conn, to);
        this.setSince(conn, to, NaN);
        to.links.delete(from.id);
        to.linksChanged();
        events.linkDown(from.id, body as string);
        return;
    }
  }

  /** PeerNetwork.disconnect: a LinkError to the peer, then linkDown here at once (as the transport does). */
  private disconnect(node: SimNode, peer: PeerId, reason: string): void {
    this.portCalls++;
    const conn = node.links.get(peer);
    if (conn === undefined) return;
    const other = conn.initiator === node ? conn.responder : conn.initiator;
    if (reason.startsWith("banned") && node.honest) {
      if (other.honest) this.metrics.honestBansOfHonest++;
      else this.metrics.honestBansOfAdversaries++;
    }
    this.countPings(conn, node);
    this.setSince(conn, node, NaN);
    node.links.delete(peer);
    node.linksChanged();
    this.sendClose(conn, node, `remote-error:${reason}`, this.closeBytes);
    node.logic?.events.linkDown(peer, reason);
  }

  private sendClose(conn: Conn, from: SimNode, reason: string, bytes: number): void {
    if (bytes > 0) {
      this.transmit(from, conn, M_CLOSE, reason, bytes - FRAME_OVERHEAD_BYTES, "link_error");
      return;
    }
    // An RST: no bytes of ours, but it still arrives after what was already in flight.
    const toResponder = conn.initiator === from;
    const to = toResponder ? conn.responder : conn.initiator;
    const dir = toResponder ? conn.toResponder : conn.toInitiator;
    let at = Math.max(this.now + this.wire.trip(from.index, to.index), dir.lastArrival);
    if (this.blocked(from, to)) at = Math.max(at, this.splitUntil + this.wire.trip(from.index, to.index)); // not through a cut either
    dir.lastArrival = at;
    this.queue.push(at, MESSAGE, conn, reason, M_CLOSE * 2 + (toResponder ? 1 : 0));
  }

  /** `node` hears nothing on `conn` from `since` on: it closes the link 45 s after the last frame it got. */
  private scheduleIdleTimeout(conn: Conn, node: SimNode, since: number): void {
    const at = since + LINK_IDLE_TIMEOUT_MS - LINK_PING_INTERVAL_MS * this.options.random();
    if (at < this.splitUntil || this.splitUntil < since) this.queue.push(at, IDLE_TIMEOUT, conn, node);
  }

  private idleTimeout(conn: Conn, node: SimNode): void {
    if (!node.alive) return;
    const other = conn.initiator === node ? conn.responder : conn.initiator;
    if (node.links.get(other.id) !== conn) return;
    if (other.alive && !this.blocked(node, other)) return; // healed (or never cut): frames flow again
    this.countPings(conn, node);
    this.setSince(conn, node, NaN);
    node.links.delete(other.id);
    node.linksChanged();
    if (other.alive) this.sendClose(conn, node, "remote-error:idle-timeout", 0);
    node.logic?.events.linkDown(other.id, "idle-timeout");
  }

  private setSince(conn: Conn, node: SimNode, at: number): void {
    if (conn.initiator === node) conn.initiatorSince = at;
    else conn.responderSince = at;
  }

  /**
   * Keep-alive traffic, counted rather than simulated: each end pings every LINK_PING_INTERVAL_MS and answers the
   * other's pings, so an end that held the link for T sends T / interval pings and as many pongs.
   */
  private countPings(conn: Conn, node: SimNode): void {
    const since = conn.initiator === node ? conn.initiatorSince : conn.responderSince;
    if (!(since >= 0)) return;
    const n = Math.floor((this.now - since) / LINK_PING_INTERVAL_MS);
    if (n <= 0) return;
    this.metrics.count("ping", n * (PING_BYTES + FRAME_OVERHEAD_BYTES), n);
    this.metrics.count("pong", n * (PONG_BYTES + FRAME_OVERHEAD_BYTES), n);
  }

  /** Counts the keep-alives of links still up and restarts their count from now (at a phase boundary, at the end). */
  flushPings(): void {
    for (const node of this.nodes) {
      if (!node.alive) continue;
      for (const conn of node.links.values()) {
        this.countPings(conn, node);
        const since = conn.initiator === node ? conn.initiatorSince : conn.responderSince;
        if (since >= 0) this.setSince(conn, node, since + LINK_PING_INTERVAL_MS * Math.floor((this.now - since) / LINK_PING_INTERVAL_MS));
      }
    }
  }

  stats(): { events: number; scheduled: number } {
    return { events: this.events, scheduled: this.queue.scheduled };
  }
}

export type { LinkInfo };
