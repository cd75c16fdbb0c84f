/**
 * The simulated transport: virtual time, the one event loop, and every node's PeerNetwork port, on the link layer of
 * links.ts. It does what src/p2p/transport.ts does on sockets, on the network model instead: dials with their TCP and
 * Noise round trips and proof of work, and the same admission rules in the same places (refusal with referrals,
 * simultaneous open, banned peers).
 *
 * The event loop drains microtasks after every event that settled a promise (a validation answer, a dial), so the
 * core's `await` continuations run at that event's virtual time. Must never: call into a dead node, deliver on a link
 * the receiver no longer holds, or use any clock or randomness but its own.
 */
import {
  HANDSHAKE_TIMEOUT_MS,
  MAX_PENDING_HANDSHAKES,
  SIM_CONNECT_TIMEOUT_MS,
  SIM_SYN_RETRY_MS,
  SIM_UNKNOWN_ADDRESS_RTT_MS,
} from "../defaults.ts";
import { DialError } from "../errors.ts";
import type { Clock, PeerAddress, PeerId, PeerNetwork, TreeMessage, Verdict, ViewMessage } from "../gossip/ports.ts";
import type { HandshakeFailure } from "../p2p/reasons.ts";
import type { QueuedEvent } from "./event-queue.ts";
import {
  ANSWER,
  CALL,
  DIAL_FAIL,
  HANDSHAKE_ABORT,
  IDLE_TIMEOUT,
  INIT_ESTABLISHED,
  LinkLayer,
  MESSAGE,
  M_CLOSE,
  M_FINAL,
  M_PEER_LIST,
  M_PEER_REQUEST,
  M_TREE,
  M_VIEWS,
  SYN,
  TIMER,
  type LinkLayerOptions,
} from "./links.ts";
import { newDirection, powSolveMs } from "./network-model.ts";
import type { Conn, SimNode } from "./node.ts";
import {
  PEER_REQUEST_BYTES,
  handshakeFrameBytes,
  linkErrorBytes,
  newTurnBatch,
  peerListBytes,
  treeMessageBytes,
  viewMessageBytes,
  type MessageKind,
} from "./wire-sizes.ts";

const TREE_KIND: Record<TreeMessage["kind"], MessageKind> = { ihave: "ihave", graft: "graft", prune: "prune", "dont-have": "dont_have", root: "tree_root" };
const VIEW_KIND: Record<ViewMessage["kind"], MessageKind> = {
  join: "join", "forward-join": "forward_join", neighbor: "neighbor", disconnect: "disconnect", shuffle: "shuffle", "shuffle-reply": "shuffle_reply",
};

interface Timer {
  node: SimNode | undefined;
  fn: () => void;
  every: number;
  cancelled: boolean;
}

export interface WorldOptions extends LinkLayerOptions {
  /** Leading zero bits every node demands from dialers. */
  powDifficulty: number;
  hashesPerSecond: number;
  /** Microtask turns yielded after an event that settled a promise. */
  drainTurns: number;
  /** Also wait for a macrotask after every event and fail if the core still did something then (tests). */
  strictDrain?: boolean;
}

export class World extends LinkLayer {
  /** Events run. */
  events = 0;
  private settled = false;
  private readonly handshakeBytes: [number, number, number, number];
  private readonly ev: QueuedEvent = { time: 0, kind: 0, a: undefined, b: undefined, x: 0 };
  /** Every node's `now()`: one function for all (it is called for nearly every event, so one that stays cached). */
  private readonly clockNow = (): number => this.now;

  constructor(private readonly options: WorldOptions) {
    super(options);
    this.handshakeBytes = handshakeFrameBytes(options.powDifficulty, 6001);
  }

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
      now: this.clockNow,
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
      // Announcements and walks may be dropped at a full send buffer, like items; the rest steer the overlay.
      sendTree: (peer, m) => world.send(node, peer, M_TREE, m, treeMessageBytes(m), TREE_KIND[m.kind], m.kind === "ihave"),
      sendViews: (peer, m) => {
        const droppable = m.kind === "forward-join" || m.kind === "shuffle" || m.kind === "shuffle-reply";
        return world.send(node, peer, M_VIEWS, m, viewMessageBytes(m), VIEW_KIND[m.kind], droppable);
      },
      dial: (addr) => world.dial(node, addr),
      isOwnAddress: (host, port) => host === node.host && port === node.listenPort,
      disconnect: (peer, reason) => world.disconnect(node, peer, reason),
    };
  }

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
    // Each direction's stream state and turn batch in one object: both are read for every message sent that way.
    const toResponder = { ...newDirection(), ...newTurnBatch() };
    const toInitiator = { ...newDirection(), ...newTurnBatch() };
    const conn: Conn = {
      initiator: node,
      responder,
      initiatorSince: NaN,
      responderSince: NaN,
      initiatorId: node.id,
      responderId: responder.id,
      initiatorIndex: node.index,
      responderIndex: responder.index,
      // Honest nodes negotiate trees and views with each other (the features bits); adversaries speak neither, unless
      // their behaviour offers trees (NodeLogic.offersTrees: the tree floods).
      initiatorInfo: { peer: responder.id, host: addr.host, port: addr.port, inbound: false, trees: speaksTrees(node) && speaksTrees(responder), roots: speaksTrees(node) && speaksTrees(responder) && node.honest && responder.honest, views: node.honest && responder.honest },
      responderInfo: { peer: node.id, host: node.host, port: node.listenPort, inbound: true, trees: speaksTrees(node) && speaksTrees(responder), roots: speaksTrees(node) && speaksTrees(responder) && node.honest && responder.honest, views: node.honest && responder.honest },
      toResponder,
      toInitiator,
      batchToResponder: toResponder,
      batchToInitiator: toInitiator,
      dialKey: key,
      expectedId: addr.id,
      resolve,
      reject,
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
    // The round trip the handshake measures (M1 → M2 at the initiator, M2 → M3 at the responder): rooted trees read it.
    conn.initiatorInfo.rttMs = conn.responderInfo.rttMs = 2 * d;
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
  protected responderEstablished(conn: Conn): void {
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

  stats(): { events: number; scheduled: number } {
    return { events: this.events, scheduled: this.queue.scheduled };
  }
}

/** Whether a node offers broadcast trees in its handshakes: honest ones do; an adversary when its behaviour says so. */
function speaksTrees(n: SimNode): boolean {
  return n.logic?.offersTrees ?? n.honest;
}
