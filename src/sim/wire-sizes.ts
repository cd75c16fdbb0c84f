/**
 * Bytes on the wire of what simulated nodes send, from the real encoders (src/p2p/wire.ts and the generated protobuf
 * code): every link message is a LinkMessage, sealed in a frame of 4 length bytes + ciphertext + 16 AEAD tag bytes;
 * the handshake's four cleartext frames are sized from their real messages with keys and proofs of the real lengths.
 *
 * Batching (src/p2p/link.ts sends the first message of a turn to an idle link at once, and seals the turn's later
 * ones into one Batch frame of at most BATCH_MAX_BYTES) is followed per link and simulator event (a turn): see
 * addToTurn. Exact to within a byte or two of varint growth. Pure.
 */
import type { TreeMessage, ViewMessage } from "../gossip/ports.ts";
import { treeLinkMessages, viewLinkMessage } from "../peer-messages.ts";
import { BATCH_MAX_BYTES } from "../defaults.ts";
import type { GossipItem, PeerAddress } from "../gossip/ports.ts";
import { HandshakeFinal, HandshakeInit, HandshakeResponse, Hello, IdentityProof, type LinkMessage } from "../p2p/proto/gossip.ts";
import { MAX_HOPS, encodeLinkMessage, encodeMessage } from "../p2p/wire.ts";

/** Frame length prefix + Poly1305 tag: what one sealed frame adds to its plaintext. */
export const FRAME_OVERHEAD_BYTES = 4 + 16;

/** Message kinds the simulator counts messages and bytes of. */
export type MessageKind =
  | "payload" | "peer_request" | "peer_list" | "link_error" | "ping" | "pong" | "handshake"
  | "ihave" | "graft" | "prune" | "dont_have" | "tree_root"
  | "join" | "forward_join" | "neighbor" | "disconnect" | "shuffle" | "shuffle_reply";
export const MESSAGE_KINDS: readonly MessageKind[] = [
  "payload", "peer_request", "peer_list", "link_error", "ping", "pong", "handshake",
  "ihave", "graft", "prune", "dont_have", "tree_root", "join", "forward_join", "neighbor", "disconnect", "shuffle", "shuffle_reply",
];

/** Plaintext bytes of a broadcast-tree message: the real translation (src/peer-messages.ts) and the real encoder. */
export function treeMessageBytes(message: TreeMessage): number {
  let n = 0;
  for (const m of treeLinkMessages(message)) n += (m instanceof Uint8Array ? m : encodeLinkMessage(m)).length;
  return n;
}

/** Plaintext bytes of a membership-view message, encoded the same way (0 when the wire could not carry it). */
export function viewMessageBytes(message: ViewMessage): number {
  const m = viewLinkMessage(message);
  return m === undefined ? 0 : encodeLinkMessage(m.message).length;
}

export function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    bytes++;
  }
  return bytes;
}

const zeros = (n: number) => new Uint8Array(n);
const ED25519_SPKI_BYTES = 44;
const ED25519_SIGNATURE_BYTES = 64;
const AEAD_TAG = 16;
const PEER_ID = zeros(32);

function encodedLength(message: LinkMessage): number {
  return encodeLinkMessage(message).length;
}

/** The four handshake frames (Hello, M1, M2, M3) for a responder demanding `difficulty`, framed. */
export function handshakeFrameBytes(difficulty: number, listenPort: number): [number, number, number, number] {
  const proof = encodeMessage(IdentityProof, {
    identityKey: zeros(ED25519_SPKI_BYTES),
    signature: zeros(ED25519_SIGNATURE_BYTES),
    listenPort,
  }).length;
  const hello = encodeMessage(Hello, { version: 1, difficulty, challenge: zeros(32), responderId: zeros(32) }).length;
  const init = encodeMessage(HandshakeInit, { ephemeral: zeros(32), initiatorId: zeros(32), powNonce: zeros(8) }).length;
  // Noise XX: M2 = e ‖ enc(s) ‖ enc(proof); M3 = enc(s) ‖ enc(proof).
  const response = encodeMessage(HandshakeResponse, { noise: zeros(32 + 32 + AEAD_TAG + proof + AEAD_TAG) }).length;
  const final = encodeMessage(HandshakeFinal, { noise: zeros(32 + AEAD_TAG + proof + AEAD_TAG) }).length;
  return [hello + 4, init + 4, response + 4, final + 4];
}

export const PEER_REQUEST_BYTES = encodedLength({ kind: { $case: "peerRequest", value: {} } });
export const PING_BYTES = encodedLength({ kind: { $case: "ping", value: { nonce: 1000n } } });
export const PONG_BYTES = PING_BYTES;

export function linkErrorBytes(reason: string): number {
  return encodedLength({ kind: { $case: "error", value: { code: 16, message: reason } } });
}

export function peerListBytes(peers: readonly PeerAddress[]): number {
  const entries = peers.map((p) => ({ host: p.host, port: p.port, id: p.id === undefined ? zeros(0) : PEER_ID }));
  return encodedLength({ kind: { $case: "peerList", value: { peers: entries } } });
}

/**
 * Encoded Payload sizes by the protobuf rules (test/sim/network-model.test.ts checks them against the encoder):
 * what src/node.ts sends for an item (hops 0 left out, hops capped at MAX_HOPS), without encoding 1 KiB per copy.
 */
export class PayloadSizer {
  bytes(item: GossipItem): number {
    const len = item.data.length;
    let inner = 1 + varintBytes(item.id.length) + item.id.length;
    if (item.ttl > 0) inner += 1 + varintBytes(item.ttl);
    if (item.dataType > 0) inner += 1 + varintBytes(item.dataType);
    if (len > 0) inner += 1 + varintBytes(len) + len;
    const hops = item.hops ? Math.min(item.hops, MAX_HOPS) : 0;
    if (hops > 0) inner += 1 + varintBytes(hops);
    return 1 + varintBytes(inner) + inner;
  }
}

/** A link direction's batch of the current turn (see the header). */
export interface TurnBatch {
  /** The simulator event the batch belongs to (-1: none yet). */
  turn: number;
  /** Plaintext bytes so far and the first message's size (it gets an entry header once a second one joins). */
  bytes: number;
  firstBytes: number;
  count: number;
  /** Messages sent in the turn `turn` (all frames). */
  sent: number;
  /** Whether the last message added joined a frame already started this turn. */
  sameFrame: boolean;
}

export function newTurnBatch(): TurnBatch {
  return { turn: -1, bytes: 0, firstBytes: 0, count: 0, sent: 0, sameFrame: false };
}

/**
 * Wire bytes that one more message of `plain` bytes adds on a direction in turn `turn`; afterwards `batch.sameFrame`
 * says whether it rides in a frame already sent this turn (no allocation: this runs for every message). As in
 * src/p2p/link.ts: the first message of a turn on an idle link (nothing queued, `idle`, and its last sending turn sent
 * one message) leaves at once in a frame of its own; the turn's other messages share one Batch frame (at most
 * BATCH_MAX_BYTES of plaintext, then another).
 */
export function addToTurn(batch: TurnBatch, turn: number, plain: number, idle = true): number {
  if (batch.turn !== turn) {
    // A link whose last sending turn sent several messages is under load: this turn's first one waits too.
    const busy = batch.sent > 1;
    batch.turn = turn;
    batch.count = 0;
    batch.sent = 1;
    if (idle && !busy) {
      batch.sameFrame = false;
      return plain + FRAME_OVERHEAD_BYTES;
    }
  }
  else batch.sent++;
  if (batch.count > 0 && batch.bytes + plain <= BATCH_MAX_BYTES) {
    let bytes = 1 + varintBytes(plain) + plain;
    if (batch.count === 1) bytes += 1 + varintBytes(batch.firstBytes) + 1 + varintBytes(batch.bytes + plain);
    batch.bytes += plain;
    batch.count++;
    batch.sameFrame = true;
    return bytes;
  }
  batch.bytes = plain;
  batch.firstBytes = plain;
  batch.count = 1;
  // The first message of the turn's Batch frame leaves with the ones after it, not with the solo one.
  batch.sameFrame = false;
  return plain + FRAME_OVERHEAD_BYTES;
}
