/**
 * Hand-tuned protobuf for the messages every item travels in: LinkMessage{payload}, LinkMessage{batch}, and the
 * announcements of broadcast trees, LinkMessage{ihave} (one entry per item and lazy link). The
 * generated code (src/p2p/proto/gossip.ts) stays the reference: the encoders here write exactly its bytes, and the
 * decoders accept only the plain shape an honest encoder produces (each field once, in field order, varints that
 * fit their field) and return undefined for anything else, which then takes the generic path of wire.ts. So for any
 * bytes, the result is what the generic path would give (test/p2p/wire-fast.test.ts holds both to that), with one
 * allocation per encode and none of BinaryReader's per-field work per decode.
 * Pure: no state. Decoded `bytes` fields are views into the input, as with the generated code.
 */
import type { IHave, Payload, TreeEntry } from "./proto/gossip.ts";

const varintSize = (n: number) => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

function putVarint(out: Uint8Array, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[at++] = n;
  return at;
}

/** The fields of a Payload: the same inputs as the generated Payload type. */
export interface PayloadFields {
  messageId: Uint8Array;
  ttl: number;
  dataType: number;
  data: Uint8Array;
  hops?: number | undefined;
  replayed?: boolean | undefined;
}

/** encodeLinkMessage({ kind: { $case: "payload", value } }), byte for byte, in one allocation. Fields must be in
 *  their ranges (u32 numbers; the caller's values come from the core or from a decoded Payload). */
export function encodePayloadMessage(p: PayloadFields): Uint8Array {
  let body = 0;
  if (p.messageId.length !== 0) body += 1 + varintSize(p.messageId.length) + p.messageId.length;
  if (p.ttl !== 0) body += 1 + varintSize(p.ttl);
  if (p.dataType !== 0) body += 1 + varintSize(p.dataType);
  if (p.data.length !== 0) body += 1 + varintSize(p.data.length) + p.data.length;
  if (p.hops !== undefined) body += 1 + varintSize(p.hops);
  if (p.replayed !== undefined) body += 2;
  const out = new Uint8Array(1 + varintSize(body) + body);
  out[0] = 0x0a;
  let at = putVarint(out, 1, body);
  if (p.messageId.length !== 0) {
    out[at++] = 0x0a;
    at = putVarint(out, at, p.messageId.length);
    out.set(p.messageId, at);
    at += p.messageId.length;
  }
  if (p.ttl !== 0) {
    out[at++] = 0x10;
    at = putVarint(out, at, p.ttl);
  }
  if (p.dataType !== 0) {
    out[at++] = 0x18;
    at = putVarint(out, at, p.dataType);
  }
  if (p.data.length !== 0) {
    out[at++] = 0x22;
    at = putVarint(out, at, p.data.length);
    out.set(p.data, at);
    at += p.data.length;
  }
  if (p.hops !== undefined) {
    out[at++] = 0x28;
    at = putVarint(out, at, p.hops);
  }
  if (p.replayed !== undefined) {
    out[at++] = 0x30;
    out[at++] = p.replayed ? 1 : 0;
  }
  return out;
}

/** encodeLinkMessage({ kind: { $case: "batch", value: { messages } } }), byte for byte, in one allocation. */
export function encodeBatchMessage(messages: Uint8Array[]): Uint8Array {
  let body = 0;
  for (const m of messages) body += 1 + varintSize(m.length) + m.length;
  const out = new Uint8Array(1 + varintSize(body) + body);
  out[0] = 0x3a;
  let at = putVarint(out, 1, body);
  for (const m of messages) {
    out[at++] = 0x0a;
    at = putVarint(out, at, m.length);
    out.set(m, at);
    at += m.length;
  }
  return out;
}

/** An announced item as the core has it (u32 numbers): its ID prefix goes in `id_prefix`, its hops cut to `maxHops`. */
export interface AnnouncedEntry {
  id: Uint8Array;
  dataType: number;
  hops: number;
}

const treeEntrySize = (e: AnnouncedEntry, hops: number) =>
  (e.id.length !== 0 ? 1 + varintSize(e.id.length) + e.id.length : 0) +
  (e.dataType !== 0 ? 1 + varintSize(e.dataType) : 0) +
  (hops !== 0 ? 1 + varintSize(hops) : 0);

/** encodeLinkMessage({ kind: { $case: "ihave", value: { entries } } }) for entries[from, to) as TreeEntry{id_prefix:
 *  id, data_type, hops: min(hops, maxHops)}, byte for byte, in one allocation (no TreeEntry objects made). */
export function encodeIHaveMessage(entries: readonly AnnouncedEntry[], maxHops: number, from = 0, to = entries.length): Uint8Array {
  let body = 0;
  for (let i = from; i < to; i++) {
    const size = treeEntrySize(entries[i]!, Math.min(entries[i]!.hops, maxHops));
    body += 1 + varintSize(size) + size;
  }
  const out = new Uint8Array(1 + varintSize(body) + body);
  out[0] = 0x42;
  let at = putVarint(out, 1, body);
  for (let i = from; i < to; i++) {
    const e = entries[i]!;
    const hops = Math.min(e.hops, maxHops);
    out[at++] = 0x0a;
    at = putVarint(out, at, treeEntrySize(e, hops));
    if (e.id.length !== 0) {
      out[at++] = 0x0a;
      at = putVarint(out, at, e.id.length);
      out.set(e.id, at);
      at += e.id.length;
    }
    if (e.dataType !== 0) {
      out[at++] = 0x10;
      at = putVarint(out, at, e.dataType);
    }
    if (hops !== 0) {
      out[at++] = 0x18;
      at = putVarint(out, at, hops);
    }
  }
  return out;
}

/** A reader over one buffer: `pos`, and -1 from varint() for anything outside the plain shape. */
class Cursor {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}

  /** A varint of at most 5 bytes whose value fits 32 bits (what the generated uint32() reads unchanged), else -1. */
  varint(end: number): number {
    const b = this.bytes;
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= end) return -1;
      const byte = b[this.pos++]!;
      if (shift === 28 && byte > 0x0f) return -1;
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
    return -1;
  }

  /** The bytes of a length-delimited field ending by `end`, or undefined. */
  slice(end: number): Uint8Array | undefined {
    const length = this.varint(end);
    if (length < 0 || length > end - this.pos) return undefined;
    const out = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }
}

/** The LinkMessage's one top-level field if it is `tag` and spans the whole input: its body's end, else -1. */
function only(c: Cursor, tag: number): number {
  if (c.bytes.length < 2 || c.bytes[0] !== tag) return -1;
  c.pos = 1;
  const length = c.varint(c.bytes.length);
  return length >= 0 && c.pos + length === c.bytes.length ? c.bytes.length : -1;
}

/** A LinkMessage{payload} in the plain shape, decoded as the generated code would; undefined for anything else. */
export function decodePayloadMessage(bytes: Uint8Array): Payload | undefined {
  const c = new Cursor(bytes);
  const end = only(c, 0x0a);
  if (end < 0) return undefined;
  const p: Payload = { messageId: EMPTY, ttl: 0, dataType: 0, data: EMPTY, hops: undefined, replayed: undefined };
  let last = 0;
  while (c.pos < end) {
    const tag = bytes[c.pos++]!;
    const field = tag >> 3;
    if (field <= last || tag >= 0x80) return undefined; // out of order, repeated, or a field number past 15
    last = field;
    if (tag === 0x0a || tag === 0x22) {
      const value = c.slice(end);
      if (value === undefined) return undefined;
      if (tag === 0x0a) p.messageId = value;
      else p.data = value;
    } else if (tag === 0x10 || tag === 0x18 || tag === 0x28) {
      const value = c.varint(end);
      if (value < 0) return undefined;
      if (tag === 0x10) p.ttl = value;
      else if (tag === 0x18) p.dataType = value;
      else p.hops = value;
    } else if (tag === 0x30) {
      const value = bytes[c.pos++];
      if (c.pos > end || (value !== 0 && value !== 1)) return undefined;
      p.replayed = value === 1;
    } else return undefined;
  }
  return p;
}

/** A LinkMessage{ihave} in the plain shape, decoded as the generated code would; undefined for anything else. */
export function decodeIHaveMessage(bytes: Uint8Array): IHave | undefined {
  const c = new Cursor(bytes);
  const end = only(c, 0x42);
  if (end < 0) return undefined;
  const entries: TreeEntry[] = [];
  while (c.pos < end) {
    if (bytes[c.pos++] !== 0x0a) return undefined;
    const length = c.varint(end);
    if (length < 0 || length > end - c.pos) return undefined;
    const entryEnd = c.pos + length;
    const e: TreeEntry = { idPrefix: EMPTY, dataType: 0, hops: 0 };
    let last = 0;
    while (c.pos < entryEnd) {
      const tag = bytes[c.pos++]!;
      const field = tag >> 3;
      if (field <= last || tag >= 0x80) return undefined;
      last = field;
      if (tag === 0x0a) {
        const value = c.slice(entryEnd);
        if (value === undefined) return undefined;
        e.idPrefix = value;
      } else if (tag === 0x10 || tag === 0x18) {
        const value = c.varint(entryEnd);
        if (value < 0) return undefined;
        if (tag === 0x10) e.dataType = value;
        else e.hops = value;
      } else return undefined;
    }
    entries.push(e);
  }
  return { entries };
}

/** A LinkMessage{batch} in the plain shape: its messages (views into `bytes`); undefined for anything else. */
export function decodeBatchMessage(bytes: Uint8Array): Uint8Array[] | undefined {
  const c = new Cursor(bytes);
  const end = only(c, 0x3a);
  if (end < 0) return undefined;
  const messages: Uint8Array[] = [];
  while (c.pos < end) {
    if (bytes[c.pos++] !== 0x0a) return undefined;
    const m = c.slice(end);
    if (m === undefined) return undefined;
    messages.push(m);
  }
  return messages;
}

const EMPTY = new Uint8Array(0);
