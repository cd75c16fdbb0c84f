/**
 * One simulated node's parts that are not the protocol: its identity and address, its links as the simulated
 * transport holds them, its simulated local module, and the NodeLogic that runs on it (the real gossip core for
 * honest nodes, an adversary behaviour otherwise). The world (world.ts) moves bytes between nodes; this file only
 * holds per-node state and the LocalModules a VoidPhone module would be.
 *
 * Must never: decide anything the gossip core decides (forwarding, membership), or read the process clock.
 */
import { API_MAX_OUTSTANDING_NOTIFICATIONS } from "../defaults.ts";
import type { Clock, LinkInfo, LocalModules, PeerAddress, PeerEvents, PeerId, Verdict } from "../gossip/ports.ts";
import type { Direction } from "./network-model.ts";
import type { TurnBatch } from "./wire-sizes.ts";

/**
 * What runs on a node: the gossip core's surface as the transport sees it (src/gossip/core.ts returns exactly this
 * shape), so an adversary can stand in for it.
 */
export interface NodeLogic {
  readonly events: PeerEvents;
  acceptInbound(peer: PeerId): boolean;
  referrals(peer: PeerId): PeerAddress[];
  isBanned(peer: PeerId): boolean;
  start(): void;
  stop(): void;
  /** A local module's ANNOUNCE (honest nodes only). */
  announce?(announce: { ttl: number; dataType: number; data: Uint8Array }): unknown;
  /** Offers broadcast trees in its handshakes (default: honest nodes do, adversaries do not). */
  readonly offersTrees?: boolean;
}

/** One TCP connection between two nodes, from the dial until both ends have closed it. (Created in world.ts with
 *  the fields read for every message first, so that they share a cache line.) */
export interface Conn {
  readonly initiator: SimNode;
  readonly responder: SimNode;
  /** The ends' IDs and indices, copied here so that delivering a message need not read the sender's node. */
  readonly initiatorId: PeerId;
  readonly responderId: PeerId;
  readonly initiatorIndex: number;
  readonly responderIndex: number;
  /** How each end describes the link (LinkInfo as the real transport reports it). */
  readonly initiatorInfo: LinkInfo;
  readonly responderInfo: LinkInfo;
  readonly toResponder: Direction;
  readonly toInitiator: Direction;
  readonly batchToResponder: TurnBatch;
  readonly batchToInitiator: TurnBatch;
  /** Address key the dial was made to (the initiator's pending-dial map). */
  readonly dialKey: string;
  readonly expectedId: PeerId | undefined;
  resolve?: (peer: PeerId) => void;
  reject?: (error: Error) => void;
  /** When each end made it its link (NaN: not, or no longer): ping traffic is counted from these. */
  initiatorSince: number;
  responderSince: number;
}

export type ModuleAnswer = "valid" | "invalid";

/**
 * The node's VoidPhone module as the broadcaster sees it through LocalModules: one subscriber (or none, a dead end),
 * answering after a delay, valid unless it rejects everything or the item is not one the simulation published.
 * The bound on outstanding notifications is the API server's (API_MAX_OUTSTANDING_NOTIFICATIONS).
 */
export class SimModules implements LocalModules {
  outstanding = 0;

  constructor(
    private readonly node: SimNode,
    private readonly host: ModuleHost,
    readonly subscribed: boolean,
    readonly rejectsAll: boolean,
  ) {}

  hasSubscribers(dataType: number): boolean {
    return this.subscribed && dataType === this.host.dataType;
  }

  canValidate(dataType: number): boolean {
    return this.hasSubscribers(dataType) && this.outstanding + 1 <= API_MAX_OUTSTANDING_NOTIFICATIONS;
  }

  validate(dataType: number, data: Uint8Array): Promise<Verdict> {
    if (!this.canValidate(dataType)) return Promise.resolve("unanswered");
    this.outstanding++;
    const known = this.host.notified(this.node, data);
    const verdict: Verdict = !known || this.rejectsAll || this.host.rejectsNow() ? "invalid" : "valid";
    return new Promise<Verdict>((resolve) => this.host.answerLater(this.node, resolve, verdict));
  }

  /** The answer is in: called by the world at answer time (not when the node has died meanwhile). */
  answered(resolve: (v: Verdict) => void, verdict: Verdict): void {
    this.outstanding--;
    resolve(verdict);
  }
}

/** What a SimModules needs from the world. */
export interface ModuleHost {
  readonly dataType: number;
  /** A NOTIFICATION reached the node's module; true if it is an item the simulation published (valid). */
  notified(node: SimNode, data: Uint8Array): boolean;
  /** One random draw: does this answer reject an item that is valid (the --reject-rate)? */
  rejectsNow(): boolean;
  /** Resolves with `verdict` after the module's validation delay (via SimModules.answered), then lets the core's
   *  continuation run. */
  answerLater(node: SimNode, resolve: (v: Verdict) => void, verdict: Verdict): void;
}

export class SimNode {
  /** Established links by peer, as the transport holds them (one per peer). */
  readonly links = new Map<PeerId, Conn>();
  /** Pending dials by address key: a second dial to the same address shares the first's promise. */
  readonly pendingDials = new Map<string, Promise<PeerId>>();
  /** Inbound handshakes in progress (the responder's MAX_PENDING_HANDSHAKES bound). */
  handshakesPending = 0;
  alive = true;
  diedAt = Infinity;
  /** Partition side (0 or 1). */
  side = 0;
  modules: SimModules | undefined = undefined;
  /** `logic.events`, kept on the node itself: it is read for every message delivered. */
  events: PeerEvents | undefined = undefined;
  private current: NodeLogic | undefined = undefined;
  private linkList: LinkInfo[] | undefined = undefined;

  constructor(
    readonly index: number,
    readonly id: PeerId,
    readonly host: string,
    readonly listenPort: number,
    /** Stands in for the peer ID's order in the simultaneous-open rule (lower initiator keeps its link). */
    readonly rank: number,
    readonly honest: boolean,
    readonly joinedAt: number,
    readonly clock: Clock,
    readonly random: () => number,
  ) {}

  get logic(): NodeLogic | undefined {
    return this.current;
  }

  set logic(logic: NodeLogic | undefined) {
    this.current = logic;
    this.events = logic?.events;
  }

  get address(): PeerAddress {
    return { host: this.host, port: this.listenPort, id: this.id };
  }

  /** The links as LinkInfo, cached until the link set changes (callers get a copy). */
  linkInfos(): LinkInfo[] {
    if (this.linkList === undefined) {
      const list: LinkInfo[] = [];
      for (const c of this.links.values()) list.push(c.initiator === this ? c.initiatorInfo : c.responderInfo);
      this.linkList = list;
    }
    return this.linkList;
  }

  linksChanged(): void {
    this.linkList = undefined;
  }
}
