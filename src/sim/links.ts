/**
 * The link layer of the simulated transport (the world, world.ts, adds time, dials and the ports on top): links as
 * ordered byte streams with real message sizes and batching, delivery only on a link the receiver still holds, local
 * linkDown at once on disconnect and the remote one when the close arrives, crashes (reset or silent), partitions,
 * idle timeouts, and keep-alive accounting. Mirrors src/p2p/link.ts and transport.ts on the network model.
 *
 * Must never: call into a dead node, deliver on a link the receiver no longer holds, or reorder one direction.
 */
import { LINK_IDLE_TIMEOUT_MS, LINK_PING_INTERVAL_MS, LINK_SEND_BUFFER_BYTES } from "../defaults.ts";
import type { GossipItem, PeerAddress, PeerId, TreeMessage, ViewMessage } from "../gossip/ports.ts";
import { EventQueue } from "./event-queue.ts";
import type { SimMetrics } from "./metrics.ts";
import type { Wire } from "./network-model.ts";
import type { Conn, SimNode } from "./node.ts";
import { FRAME_OVERHEAD_BYTES, PayloadSizer, PING_BYTES, PONG_BYTES, addToTurn, linkErrorBytes, type MessageKind } from "./wire-sizes.ts";

// Event kinds (the world's loop dispatches on them).
export const TIMER = 1;
export const CALL = 2;
export const SYN = 3;
export const INIT_ESTABLISHED = 4;
export const DIAL_FAIL = 5;
export const HANDSHAKE_ABORT = 6;
export const MESSAGE = 7;
export const IDLE_TIMEOUT = 8;
export const ANSWER = 9;

// MESSAGE codes (event x = code * 2 + 1 when it travels to the responder).
export const M_PAYLOAD = 0;
export const M_PEER_REQUEST = 1;
export const M_PEER_LIST = 2;
export const M_CLOSE = 3;
export const M_FINAL = 4;
export const M_TREE = 5;
export const M_VIEWS = 6;

export interface LinkLayerOptions {
  wire: Wire;
  metrics: SimMetrics;
  /** Randomness of the world itself (PoW draws, idle-timeout phases). */
  random: () => number;
  /** What a crash looks like to peers: `reset` (the host is up: RST at once) or `silent` (the host is gone). */
  crash: "reset" | "silent";
}

export abstract class LinkLayer {
  readonly queue = new EventQueue();
  readonly nodes: SimNode[] = [];
  now = 0;
  /** Incremented per event: messages a node sends within one turn share a Batch frame. */
  protected turn = 0;
  /** Calls of the cores into their ports (the loop drains microtasks after an event with any). */
  protected portCalls = 0;
  /** Every node ever added, by "host:port" (addresses are never reused). */
  protected readonly byAddress = new Map<string, SimNode>();
  protected readonly closeBytes = linkErrorBytes("too-many-links") + FRAME_OVERHEAD_BYTES;
  protected readonly wire: Wire;
  protected readonly metrics: SimMetrics;
  protected splitUntil = -Infinity;
  private readonly sizer = new PayloadSizer();
  private lastData: Uint8Array | undefined = undefined;
  private lastTrack: ReturnType<SimMetrics["track"]> = undefined;
  /** Called for each crash, after the node is dead (scenario bookkeeping). */
  onDeath: (node: SimNode) => void = () => {};

  constructor(private readonly linkOptions: LinkLayerOptions) {
    this.wire = linkOptions.wire;
    this.metrics = linkOptions.metrics;
  }

  /** M3 reached the responder: its admission (world.ts, with the dials). */
  protected abstract responderEstablished(conn: Conn): void;

  /** The model's one-way latency between two nodes, without jitter (for analyses: scripts/tree-oracle.ts). */
  oneWayMs(a: SimNode, b: SimNode): number {
    return this.wire.latency.oneWayMs(a.index, b.index);
  }

  add(node: SimNode): void {
    this.nodes.push(node);
    this.wire.place(node.index);
    this.byAddress.set(`${node.host}:${node.listenPort}`, node);
  }

  /** The process on `node` dies: timers stop, and peers see the links close (at once or by idle timeout). */
  crash(node: SimNode): void {
    if (!node.alive) return;
    node.alive = false;
    node.diedAt = this.now;
    for (const conn of node.links.values()) {
      this.countPings(conn, node);
      const other = conn.initiator === node ? conn.responder : conn.initiator;
      if (this.linkOptions.crash === "reset") this.sendClose(conn, node, "closed-by-peer", 0);
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

  protected blocked(a: SimNode, b: SimNode): boolean {
    return this.now < this.splitUntil && a.side !== b.side;
  }

  protected hold(node: SimNode, peer: SimNode, conn: Conn): void {
    node.links.set(peer.id, conn);
    node.linksChanged();
    this.setSince(conn, node, this.now);
  }

  protected sendItem(node: SimNode, peer: PeerId, item: GossipItem): boolean {
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
  protected send(node: SimNode, peer: PeerId, code: number, body: unknown, plain: number, kind: MessageKind, droppable: boolean): boolean {
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

  protected transmit(from: SimNode, conn: Conn, code: number, body: unknown, plain: number, kind: MessageKind): void {
    const toResponder = conn.initiator === from;
    const dir = toResponder ? conn.toResponder : conn.toInitiator;
    const batch = toResponder ? conn.batchToResponder : conn.batchToInitiator;
    const bytes = addToTurn(batch, this.turn, plain, this.wire.unlimited || this.wire.backlog(dir, this.now) === 0);
    const sameFrame = batch.sameFrame;
    this.metrics.count(kind, bytes);
    const toIndex = toResponder ? conn.responderIndex : conn.initiatorIndex;
    let at = this.wire.arrival(from.index, toIndex, bytes, this.now, dir, sameFrame);
    if (this.now < this.splitUntil && this.blocked(from, toResponder ? conn.responder : conn.initiator)) {
      at = Math.max(at, this.splitUntil + this.wire.trip(from.index, toIndex));
      dir.lastArrival = at;
    }
    this.queue.push(at, MESSAGE, conn, body, code * 2 + (toResponder ? 1 : 0));
  }

  protected message(conn: Conn, body: unknown, x: number): void {
    const toResponder = (x & 1) === 1;
    const code = x >> 1;
    const to = toResponder ? conn.responder : conn.initiator;
    if (code === M_FINAL) return this.responderEstablished(conn);
    if (!to.alive || !this.holds(to, conn)) return;
    const events = to.events;
    if (events === undefined) return;
    const fromId = toResponder ? conn.initiatorId : conn.responderId;
    switch (code) {
      case M_PAYLOAD: {
        const item = body as GossipItem;
        const track = this.metrics.track(item.data);
        if (track !== undefined) {
          this.metrics.arrived(track, toResponder ? conn.initiatorIndex : conn.responderIndex, to.index);
        }
        return events.item(fromId, item);
      }
      case M_PEER_REQUEST:
        return events.peersRequested(fromId);
      case M_PEER_LIST:
        return events.peers(fromId, body as PeerAddress[]);
      case M_TREE:
        return events.tree(fromId, body as TreeMessage);
      case M_VIEWS:
        return events.views(fromId, body as ViewMessage);
      case M_CLOSE:
        this.countPings(conn, to);
        this.setSince(conn, to, NaN);
        to.links.delete(fromId);
        to.linksChanged();
        events.linkDown(fromId, body as string);
        return;
    }
  }

  /** PeerNetwork.disconnect: a LinkError to the peer, then linkDown here at once (as the transport does). */
  protected disconnect(node: SimNode, peer: PeerId, reason: string): void {
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

  protected sendClose(conn: Conn, from: SimNode, reason: string, bytes: number): void {
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
  protected scheduleIdleTimeout(conn: Conn, node: SimNode, since: number): void {
    const at = since + LINK_IDLE_TIMEOUT_MS - LINK_PING_INTERVAL_MS * this.linkOptions.random();
    if (at < this.splitUntil || this.splitUntil < since) this.queue.push(at, IDLE_TIMEOUT, conn, node);
  }

  protected idleTimeout(conn: Conn, node: SimNode): void {
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

  /**
   * Whether live `node` holds `conn` as its link (`node.links.get(peer) === conn`), read off the connection itself
   * rather than the node's map: this runs for every message delivered. Each end's `since` is set when it takes the
   * link (hold) and cleared (NaN) wherever it drops it; a dead node's links are cleared with it, so callers check
   * `alive` first.
   */
  protected holds(node: SimNode, conn: Conn): boolean {
    return (conn.initiator === node ? conn.initiatorSince : conn.responderSince) >= 0;
  }

  protected setSince(conn: Conn, node: SimNode, at: number): void {
    if (conn.initiator === node) conn.initiatorSince = at;
    else conn.responderSince = at;
  }

  /**
   * Keep-alive traffic, counted rather than simulated: each end pings every LINK_PING_INTERVAL_MS and answers the
   * other's pings, so an end that held the link for T sends T / interval pings and as many pongs.
   */
  protected countPings(conn: Conn, node: SimNode): void {
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
}
