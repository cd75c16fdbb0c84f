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
}

/** A dialable peer endpoint, with the ID we expect to find there when known. */
export interface PeerAddress {
  host: string;
  port: number;
  id?: PeerId;
}

/** The node's local modules (VoidPhone API side). */
export interface LocalModules {
  /** Some local module subscribed (GOSSIP NOTIFY) to this data type. */
  hasSubscribers(dataType: number): boolean;
  /**
   * Send a NOTIFICATION to every local subscriber of the type and wait for their VALIDATIONs.
   * Resolves true only if there was at least one subscriber and all answered valid within the timeout.
   */
  validate(dataType: number, data: Uint8Array): Promise<boolean>;
}

export interface LinkInfo {
  peer: PeerId;
  /** Where the peer is reachable for dialing: its remote address for outbound links, its advertised listen
   *  address (if it told us) for inbound ones. */
  host: string;
  port: number;
  inbound: boolean;
}

/** The P2P side: authenticated, encrypted links to peers. */
export interface PeerNetwork {
  readonly localId: PeerId;
  linkedPeers(): LinkInfo[];
  /** Best effort: returns false if the item was dropped (peer gone or its send buffer full). */
  sendItem(peer: PeerId, item: GossipItem): boolean;
  requestPeers(peer: PeerId): void;
  sendPeers(peer: PeerId, peers: PeerAddress[]): void;
  /** Resolves with the linked peer's ID; rejects if the dial or handshake fails or the ID differs from addr.id. */
  dial(addr: PeerAddress): Promise<PeerId>;
  disconnect(peer: PeerId, reason: string): void;
}

/** Events the P2P side delivers to the dissemination layer. */
export interface PeerEvents {
  linkUp(info: LinkInfo): void;
  item(from: PeerId, item: GossipItem): void;
  peersRequested(from: PeerId): void;
  peers(from: PeerId, peers: PeerAddress[]): void;
  linkDown(peer: PeerId, reason: string): void;
}
