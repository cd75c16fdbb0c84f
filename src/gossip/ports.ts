/**
 * The small interfaces the dissemination layer talks through. node.ts adapts the API server and the P2P
 * transport to them, so src/gossip never imports src/api or src/p2p internals and tests can drive it in memory.
 */

/** A peer's ID as lowercase hex of BLAKE3(DER SubjectPublicKeyInfo of its identity key). */
export type PeerId = string;

/** A data item as it travels between peers. `id` = BLAKE3(dataType as u16 BE ‖ data); TTL is not part of it. */
export interface GossipItem {
  id: Uint8Array;
  /** 0 = unlimited; 1 = deliver locally, do not forward; n > 1 = forward with n-1. */
  ttl: number;
  dataType: number;
  data: Uint8Array;
  /** Links crossed since the origin (0 there). Peers that predate it send 0; only the broadcast trees read it. */
  hops?: number;
  /** Part of a cache replay to a newly linked peer (such items may be held for a module that subscribes late). */
  replayed?: boolean;
}

/** One announced item in a broadcast-tree IHAVE: a prefix of its ID (src/gossip/plumtree.ts), its type (so a node
 *  that does not subscribe to it need not ask) and the hops it had travelled at the announcer. */
export interface TreeEntry {
  id: Uint8Array;
  dataType: number;
  hops: number;
}

/** Broadcast-tree control messages between peers that both speak trees (src/gossip/plumtree.ts). */
export type TreeMessage =
  | { kind: "ihave"; entries: TreeEntry[] }
  /** Send me these items, and push items of this type to me eagerly from now on (no IDs: only the latter). */
  | { kind: "graft"; ids: Uint8Array[]; dataType: number }
  /** Announce items of this type to me instead of pushing them. */
  | { kind: "prune"; dataType: number }
  /** The answer to a GRAFT for items the peer does not (or no longer) hold. */
  | { kind: "dont-have"; ids: Uint8Array[] }
  /** Where the sender is in the type's rooted tree (src/gossip/tree-root.ts): its root's key, its distance to it,
   *  and whether the receiver is its parent. */
  | { kind: "root"; dataType: number; root: string; distance: number; cost: number; parent: boolean };

/** A dialable peer endpoint, with the ID we expect to find there when known. */
export interface PeerAddress {
  host: string;
  port: number;
  id?: PeerId;
}

/** The outcome of one validation round: every subscriber said valid; one said invalid; or no verdict (timeout, the
 *  subscribers went away, our own side failed). Only "invalid" is evidence against the peer that sent the item. */
export type Verdict = "valid" | "invalid" | "unanswered";

/** The node's local modules (VoidPhone API side). */
export interface LocalModules {
  /** Some local module subscribed (GOSSIP NOTIFY) to this data type. */
  hasSubscribers(dataType: number): boolean;
  /**
   * Whether validate() for this type would notify every current subscriber now. The bound on outstanding
   * validations lives in the implementation alone (it counts NOTIFICATIONs, i.e. items × subscribers); the caller
   * asks first and, on false, drops the item without marking it seen, so a later copy can still be validated.
   */
  canValidate(dataType: number): boolean;
  /** Why there is no room, when there is none: "busy" (the subscribers answer but hold their share: worth waiting
   *  for) or "stalled" (one let a NOTIFICATION time out: waiting is pointless). Optional: without it, never wait. */
  validationRoom?(dataType: number): "room" | "busy" | "stalled";
  /** Sends a NOTIFICATION to every local subscriber of the type and resolves with their joint verdict. Never rejects. */
  validate(dataType: number, data: Uint8Array): Promise<Verdict>;
}

/** Time and timers of the dissemination layer: the process's in a node, a virtual clock in tests and the simulator. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  setInterval(fn: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
}

export interface LinkInfo {
  peer: PeerId;
  /** Where the peer is reachable for dialing: its remote address for outbound links, its advertised listen
   *  address (if it told us) for inbound ones. */
  host: string;
  port: number;
  inbound: boolean;
  /** The peer speaks broadcast trees (negotiated in the handshake); otherwise it is fed by eager push only. */
  trees?: boolean;
  /** The peer speaks rooted trees too (src/gossip/tree-root.ts; negotiated like trees). */
  roots?: boolean;
  /** The link's round trip as the handshake measured it, ms (rooted trees prefer short paths to their root). */
  rttMs?: number;
  /** The peer speaks membership views (HyParView, negotiated in the handshake): joins, shuffles, neighbor requests. */
  views?: boolean;
}

/** Membership-view messages between peers that both speak views (src/gossip/hyparview.ts). */
export type ViewMessage =
  /** A newcomer's first message to its contact: spread me over the network. */
  | { kind: "join" }
  /** A random walk carrying a newcomer's address: whoever ends it links to the newcomer. */
  | { kind: "forward-join"; peer: PeerAddress; ttl: number }
  /** Sent on a link we dialed to fill our active view; `high` (our view is empty) must be accepted. */
  | { kind: "neighbor"; high: boolean }
  /** We are dropping this link from our active view (full, or refusing a low-priority neighbor). */
  | { kind: "disconnect" }
  /** A random walk exchanging addresses; `origin` is filled in by the first hop (who knows the origin's address). */
  | { kind: "shuffle"; id: number; ttl: number; origin?: PeerAddress; entries: PeerAddress[] }
  /** The answer to a shuffle, sent back along the walk. */
  | { kind: "shuffle-reply"; id: number; entries: PeerAddress[] };

/** The P2P side: authenticated, encrypted links to peers. */
export interface PeerNetwork {
  readonly localId: PeerId;
  linkedPeers(): LinkInfo[];
  /** Best effort: returns false if the item was dropped (peer gone or its send buffer full). */
  sendItem(peer: PeerId, item: GossipItem): boolean;
  requestPeers(peer: PeerId): void;
  sendPeers(peer: PeerId, peers: PeerAddress[]): void;
  /**
   * Resolves with the linked peer's ID, or with our own ID (and no link) when the address turned out to be us;
   * rejects if the dial or handshake fails or the ID differs from addr.id.
   */
  dial(addr: PeerAddress): Promise<PeerId>;
  /** Whether host:port is one of our own listen addresses (never stored, shared or dialed). Optional: a network
   *  that cannot tell (behind NAT) leaves it out, and a dial that reaches us resolves with our own ID instead. */
  isOwnAddress?(host: string, port: number): boolean;
  /** Stops handing up what this peer sends (TCP makes it wait) / resumes, in order. Optional (flow control). */
  pauseReading?(peer: PeerId): boolean;
  resumeReading?(peer: PeerId): boolean;
  disconnect(peer: PeerId, reason: string): void;
  /** Sends a broadcast-tree message to a peer whose LinkInfo says it speaks trees (best effort, like sendItem). */
  sendTree?(peer: PeerId, message: TreeMessage): boolean;
  /** Sends a membership-view message to a peer whose LinkInfo says it speaks views. */
  sendViews?(peer: PeerId, message: ViewMessage): boolean;
}

/** Events the P2P side delivers to the dissemination layer. */
export interface PeerEvents {
  linkUp(info: LinkInfo): void;
  item(from: PeerId, item: GossipItem): void;
  peersRequested(from: PeerId): void;
  peers(from: PeerId, peers: PeerAddress[]): void;
  /** A broadcast-tree message from a peer (only peers that speak trees send them). */
  tree(from: PeerId, message: TreeMessage): void;
  /** A membership-view message from a peer (only peers that speak views send them). */
  views(from: PeerId, message: ViewMessage): void;
  linkDown(peer: PeerId, reason: string): void;
}
