/**
 * Protobuf bytes ⇄ messages for the P2P protocol, on top of the generated ts-proto code (src/p2p/proto/), with
 * hand-tuned paths for Payload, Batch and IHave (wire-fast.ts) that give the generated code's results.
 * Decoders here are the only way peer bytes become messages: whatever the bytes, they return a well-formed message
 * or throw P2PProtocolError ("undecodable", "unknown-message", "malformed", "non-canonical"), never anything else.
 *
 * Decoded `bytes` fields are views into the input (ts-proto does not copy): pass a buffer nobody will modify (a
 * decrypted frame is fresh) or copy the fields you keep.
 */
import { BinaryReader } from "@bufbuild/protobuf/wire";
import { P2PProtocolError } from "../errors.ts";
import { decodeBatchMessage, decodeIHaveMessage, decodePayloadMessage, encodeBatchMessage } from "./wire-fast.ts";
import { LinkMessage, type Batch, type IHave, type MessageFns, type Payload, type PeerEntry, type Shuffle } from "./proto/gossip.ts";

export const MESSAGE_ID_BYTES = 32;
export const PEER_ID_BYTES = 32;
/** TTL is a byte in the VoidPhone API. */
export const MAX_TTL = 255;
/** Data types are u16 in the VoidPhone API. */
export const MAX_DATA_TYPE = 0xffff;
/** Longest DNS name, in bytes of UTF-8 (PeerEntry.host); IP literals are shorter. */
export const MAX_HOST_LENGTH = 253;
/** Hop counts (Payload.hops, TreeEntry.hops) at most; a sender saturates here rather than send more. */
export const MAX_HOPS = 255;
/** Bytes of a rooted tree's root key (TreeRoot.root). */
export const ROOT_KEY_BYTES = 8;
/** Entries in one IHave, prefixes in one Graft or DontHave at most (proto/gossip.proto). A protocol bound, not a
 *  tunable: the gossip layer's TREE_MAX_ENTRIES_PER_MESSAGE (src/defaults.ts) must stay at or below it. */
export const MAX_TREE_ENTRIES = 256;
/** An item ID prefix in a tree message: 1 to 32 bytes (a whole ID at most). */
export const MAX_ID_PREFIX_BYTES = MESSAGE_ID_BYTES;

/** Addresses in one Shuffle or ShuffleReply at most, and the longest walk (ForwardJoin.ttl, Shuffle.ttl): protocol
 *  bounds, not tunables; the gossip layer's VIEW_* values (src/defaults.ts) stay well below them. */
export const MAX_VIEW_ENTRIES = 16;
export const MAX_VIEW_TTL = 16;

/** IdentityProof.features bits (proto/gossip.proto). A link uses a feature only when both sides set its bit. */
export const FEATURE_TREES = 1;
export const FEATURE_VIEWS = 2;
/** Rooted broadcast trees (TreeRoot adverts; src/gossip/tree-root.ts), on top of FEATURE_TREES. */
export const FEATURE_ROOTS = 4;
/** Every feature this implementation speaks. */
export const SUPPORTED_FEATURES = FEATURE_TREES | FEATURE_VIEWS | FEATURE_ROOTS;

/** LinkMessage kinds by their field number (proto/gossip.proto). An encoded message's first byte names its kind
 *  (`byte >> 3`) without decoding it: a one-byte tag up to field 15, and from 16 to 31 a two-byte tag whose first byte
 *  is the tag's low byte with the continuation bit, which is the tag itself (it is below 256). */
export const LINK_KIND_FIELD = {
  payload: 1,
  peerRequest: 2,
  peerList: 3,
  error: 4,
  ping: 5,
  pong: 6,
  batch: 7,
  ihave: 8,
  graft: 9,
  prune: 10,
  dontHave: 11,
  join: 12,
  forwardJoin: 13,
  neighbor: 14,
  disconnect: 15,
  shuffle: 16,
  shuffleReply: 17,
  treeRoot: 18,
} as const satisfies Record<NonNullable<LinkMessage["kind"]>["$case"], number>;
export type LinkKind = keyof typeof LINK_KIND_FIELD;
/** Field numbers of the broadcast-tree kinds (IHave 8 … DontHave 11). */
const TREE_FIELDS_FROM = LINK_KIND_FIELD.ihave;
const TREE_FIELDS_TO = LINK_KIND_FIELD.dontHave;

/** Field numbers of the membership-view kinds (Join 12 … ShuffleReply 17). */
const VIEW_FIELDS_FROM = LINK_KIND_FIELD.join;
const VIEW_FIELDS_TO = LINK_KIND_FIELD.shuffleReply;

/** The LinkMessage field number an encoded message starts with (see LINK_KIND_FIELD), 0 for no bytes. */
export function linkKindField(encoded: Uint8Array): number {
  return encoded.length > 0 ? encoded[0]! >> 3 : 0;
}

/** Whether an encoded LinkMessage (its first byte) is one of the broadcast-tree kinds. */
export function isTreeField(field: number): boolean {
  return field >= TREE_FIELDS_FROM && field <= TREE_FIELDS_TO;
}

/** Whether a LinkMessage field number is the rooted trees' advert (TreeRoot 18). */
export function isRootField(field: number): boolean {
  return field === LINK_KIND_FIELD.treeRoot;
}

/** Whether a LinkMessage field number is one of the membership-view kinds. */
export function isViewField(field: number): boolean {
  return field >= VIEW_FIELDS_FROM && field <= VIEW_FIELDS_TO;
}

export function encodeMessage<T>(codec: MessageFns<T>, message: T): Uint8Array {
  return codec.encode(message).finish();
}

/**
 * ts-proto decode with its errors (RangeError "premature EOF", invalid wire types, ...) turned into ours. With
 * `nesting` (the fields that hold nested messages), checkWireFormat runs first.
 */
export function decodeMessage<T>(codec: MessageFns<T>, bytes: Uint8Array, what: string, nesting?: Nesting): T {
  try {
    if (nesting !== undefined) checkWireFormat(bytes, nesting, 0, bytes.length);
    return codec.decode(new BinaryReader(bytes));
  } catch (e) {
    throw new P2PProtocolError("undecodable", `${what}: ${(e as Error).message}`);
  }
}

/** Field number → the nesting of the message in that field, for fields that hold messages (proto/gossip.proto). */
export type Nesting = { readonly [field: number]: Nesting };
// Batch (7) holds its messages as bytes: each is walked when it is decoded on its own. IHave (8) holds TreeEntry
// messages; Graft (9) and DontHave (11) hold bytes. ForwardJoin (13) holds a PeerEntry, Shuffle (16) its origin and
// entries, ShuffleReply (17) its entries.
const LINK_MESSAGE_NESTING: Nesting = {
  1: {}, 2: {}, 3: { 1: {} }, 4: {}, 5: {}, 6: {}, 7: {}, 8: { 1: {} }, 9: {}, 10: {}, 11: {},
  12: {}, 13: { 1: {} }, 14: {}, 15: {}, 16: { 3: {}, 4: {} }, 17: { 2: {} },
};

/**
 * Refuses what ts-proto would silently cut short instead of failing: a zero tag or an end-group stops its decode
 * loop, after which the rest of the bytes is ignored or read as fields of the enclosing message. Also refuses groups
 * (unused here), wire types 6 and 7, and varints or lengths that run past their message. Unknown fields pass.
 */
function checkWireFormat(bytes: Uint8Array, nesting: Nesting, from: number, to: number): void {
  walkAt = from;
  while (walkAt < to) {
    const tag = walkVarint(bytes, to);
    const field = Math.floor(tag / 8);
    const wireType = tag % 8;
    if (field === 0) throw new RangeError("field number 0");
    if (wireType === 0) walkVarint(bytes, to);
    else if (wireType === 1) walkAt += 8;
    else if (wireType === 5) walkAt += 4;
    else if (wireType === 2) {
      const length = walkVarint(bytes, to); // read before `walkAt` is: it advances it
      const end = walkAt + length;
      if (end > to) throw new RangeError(`field ${field} runs past the end`);
      const inner = nesting[field];
      if (inner !== undefined) checkWireFormat(bytes, inner, walkAt, end);
      walkAt = end;
    } else throw new RangeError(`wire type ${wireType} (field ${field})`);
    if (walkAt > to) throw new RangeError(`field ${field} runs past the end`);
  }
}

/** Where checkWireFormat's walk is (module state rather than a closure per call: it runs for every frame). */
let walkAt = 0;

function walkVarint(bytes: Uint8Array, to: number): number {
  let value = 0;
  for (let shift = 0; shift < 70; shift += 7) {
    if (walkAt >= to) throw new RangeError("truncated varint");
    const b = bytes[walkAt++]!;
    value += (b & 0x7f) * 2 ** shift; // exact for tags and lengths (< 2^53); other varints are only skipped
    if (b < 0x80) return value;
  }
  throw new RangeError("varint longer than 10 bytes");
}

/**
 * Decodes and insists the bytes are exactly what we would have encoded: no unknown fields, no duplicates, no
 * trailing bytes. For handshake messages, so that every byte is either bound into the handshake or refused.
 */
export function decodeCanonical<T>(codec: MessageFns<T>, bytes: Uint8Array, what: string): T {
  const message = decodeMessage(codec, bytes, what);
  if (!Buffer.from(encodeMessage(codec, message)).equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length))) {
    throw new P2PProtocolError("non-canonical", `${what}: not in canonical encoding`);
  }
  return message;
}

export function encodeLinkMessage(message: LinkMessage): Uint8Array {
  return encodeMessage(LinkMessage, message);
}

/**
 * One transport frame's plaintext → a LinkMessage with a known kind and fields in range. Unknown fields inside a
 * known kind are ignored (forward compatibility); an unset or unknown kind is "unknown-message".
 */
export function decodeLinkMessage(bytes: Uint8Array): LinkMessage {
  // The hot messages in their plain shape skip BinaryReader (wire-fast.ts; anything else returns undefined there).
  if (bytes[0] === 0x0a) {
    const payload = decodePayloadMessage(bytes);
    if (payload !== undefined) {
      checkPayload(payload);
      return { kind: { $case: "payload", value: payload } };
    }
  } else if (bytes[0] === 0x3a) {
    const messages = decodeBatchMessage(bytes);
    if (messages !== undefined) return { kind: { $case: "batch", value: { messages } } };
  } else if (bytes[0] === 0x42) {
    const ihave = decodeIHaveMessage(bytes);
    if (ihave !== undefined) {
      checkIHave(ihave);
      return { kind: { $case: "ihave", value: ihave } };
    }
  }
  return decodeLinkMessageGeneric(bytes);
}

/** decodeLinkMessage by the generated code alone (the reference the fast paths are tested against). */
export function decodeLinkMessageGeneric(bytes: Uint8Array): LinkMessage {
  const message = decodeMessage(LinkMessage, bytes, "LinkMessage", LINK_MESSAGE_NESTING);
  const kind = message.kind;
  if (kind === undefined) throw new P2PProtocolError("unknown-message", "LinkMessage of no known kind");
  switch (kind.$case) {
    case "payload":
      checkPayload(kind.value);
      break;
    case "peerList":
      kind.value.peers.forEach(checkPeerEntry);
      break;
    case "ihave":
      checkIHave(kind.value);
      break;
    case "graft":
      checkPrefixes("Graft", kind.value.idPrefix, 0);
      if ((kind.value.dataType ?? 0) > 0xffff) throw malformed("Graft.data_type is not a u16");
      break;
    case "prune":
      if ((kind.value.dataType ?? 0) > 0xffff) throw malformed("Prune.data_type is not a u16");
      break;
    case "dontHave":
      checkPrefixes("DontHave", kind.value.idPrefix, 1);
      break;
    case "forwardJoin":
      if (kind.value.peer === undefined) throw malformed("ForwardJoin without its peer");
      checkPeerEntry(kind.value.peer);
      checkTtl("ForwardJoin", kind.value.ttl);
      break;
    case "shuffle":
      checkShuffle(kind.value);
      break;
    case "shuffleReply":
      checkViewEntries("ShuffleReply", kind.value.entries);
      break;
    case "treeRoot":
      if (kind.value.dataType > 0xffff) throw malformed("TreeRoot.data_type is not a u16");
      if (kind.value.root.length !== ROOT_KEY_BYTES) throw malformed(`TreeRoot.root is not ${ROOT_KEY_BYTES} bytes`);
      if (kind.value.distance > MAX_HOPS) throw malformed(`TreeRoot.distance is above ${MAX_HOPS}`);
      break;
  }
  return message;
}

/** A Batch's entries, each decoded and checked like a frame of its own; a nested or empty Batch is "malformed". */
export function unpackBatch(batch: Batch): LinkMessage[] {
  if (batch.messages.length === 0) throw malformed("empty Batch");
  return batch.messages.map((bytes) => {
    const inner = decodeLinkMessage(bytes);
    if (inner.kind?.$case === "batch") throw malformed("Batch inside a Batch");
    return inner;
  });
}

/** One frame's plaintext for several encoded LinkMessages (a single one is sent as it is). */
export function encodeBatch(messages: Uint8Array[]): Uint8Array {
  return messages.length === 1 ? messages[0]! : encodeBatchMessage(messages);
}

function malformed(text: string): P2PProtocolError {
  return new P2PProtocolError("malformed", text);
}

function checkPayload(p: Payload): void {
  if (p.messageId.length !== MESSAGE_ID_BYTES) throw malformed(`Payload.message_id has ${p.messageId.length} bytes`);
  if (p.ttl > MAX_TTL) throw malformed(`Payload.ttl ${p.ttl} > ${MAX_TTL}`);
  if (p.dataType > MAX_DATA_TYPE) throw malformed(`Payload.data_type ${p.dataType} > ${MAX_DATA_TYPE}`);
  if (p.hops !== undefined && p.hops > MAX_HOPS) throw malformed(`Payload.hops ${p.hops} > ${MAX_HOPS}`);
}

function checkIHave(m: IHave): void {
  const n = m.entries.length;
  if (n === 0 || n > MAX_TREE_ENTRIES) throw malformed(`IHave with ${n} entries`);
  for (const e of m.entries) {
    checkPrefix("IHave", e.idPrefix);
    if (e.dataType > MAX_DATA_TYPE) throw malformed(`TreeEntry.data_type ${e.dataType} > ${MAX_DATA_TYPE}`);
    if (e.hops > MAX_HOPS) throw malformed(`TreeEntry.hops ${e.hops} > ${MAX_HOPS}`);
  }
}

/** Graft may name no item (it then only asks for full copies from now on); DontHave names at least one. */
function checkPrefixes(what: string, prefixes: Uint8Array[], min: number): void {
  if (prefixes.length < min || prefixes.length > MAX_TREE_ENTRIES) throw malformed(`${what} with ${prefixes.length} prefixes`);
  for (const p of prefixes) checkPrefix(what, p);
}

function checkPrefix(what: string, prefix: Uint8Array): void {
  if (prefix.length < 1 || prefix.length > MAX_ID_PREFIX_BYTES) throw malformed(`${what}: an ID prefix of ${prefix.length} bytes`);
}

function checkShuffle(m: Shuffle): void {
  checkTtl("Shuffle", m.ttl);
  if (m.origin !== undefined) checkPeerEntry(m.origin);
  checkViewEntries("Shuffle", m.entries);
}

function checkViewEntries(what: string, entries: PeerEntry[]): void {
  if (entries.length > MAX_VIEW_ENTRIES) throw malformed(`${what} with ${entries.length} entries`);
  entries.forEach(checkPeerEntry);
}

function checkTtl(what: string, ttl: number): void {
  if (ttl > MAX_VIEW_TTL) throw malformed(`${what}.ttl ${ttl} > ${MAX_VIEW_TTL}`);
}

/** Bytes of `host` in UTF-8 (the wire's measure), without allocating. */
export function hostBytes(host: string): number {
  return Buffer.byteLength(host, "utf8");
}

function checkPeerEntry(e: PeerEntry): void {
  const bytes = hostBytes(e.host);
  if (bytes === 0 || bytes > MAX_HOST_LENGTH) throw malformed(`PeerEntry.host of ${bytes} bytes`);
  if (e.port < 1 || e.port > 0xffff) throw malformed(`PeerEntry.port ${e.port}`);
  if (e.id.length !== 0 && e.id.length !== PEER_ID_BYTES) throw malformed(`PeerEntry.id has ${e.id.length} bytes`);
}
