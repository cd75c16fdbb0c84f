/**
 * VoidPhone API message codec: bytes of ONE whole message ⇄ typed messages (GOSSIP 500–503, RPS 540/541).
 *
 * Pure: no sockets, no timers, no state. Framing of a byte stream into whole messages is src/api/reader.ts.
 * Must never: throw anything but ApiProtocolError while decoding (a module's bytes must not crash the node),
 * or write a message whose size field would not fit 16 bits (encoders throw RangeError: that is our bug, not theirs).
 * Reserved fields are ignored on input and written as zero.
 */
import { ApiProtocolError } from "../errors.ts";

export const MSG_ANNOUNCE = 500;
export const MSG_NOTIFY = 501;
export const MSG_NOTIFICATION = 502;
export const MSG_VALIDATION = 503;
export const MSG_RPS_QUERY = 540;
export const MSG_RPS_PEER = 541;

export const HEADER_SIZE = 4;
export const MAX_MESSAGE_SIZE = 65535;
/** ANNOUNCE and NOTIFICATION carry 8 bytes of header and fields before their data. */
export const MAX_DATA_SIZE = MAX_MESSAGE_SIZE - 8;
/** The module ID under which an RPS PEER's portmap lists a peer's Gossip P2P port. */
export const GOSSIP_MODULE_ID = 500;

export interface Announce {
  kind: "announce";
  /** Hops the data should travel; 0 = unlimited. */
  ttl: number;
  dataType: number;
  data: Uint8Array;
}
export interface Notify {
  kind: "notify";
  dataType: number;
}
export interface Notification {
  kind: "notification";
  messageId: number;
  dataType: number;
  data: Uint8Array;
}
export interface Validation {
  kind: "validation";
  messageId: number;
  valid: boolean;
}
export interface RpsQuery {
  kind: "rps-query";
}
export interface PortMapping {
  moduleId: number;
  port: number;
}
export interface RpsPeerMessage {
  kind: "rps-peer";
  port: number;
  portmap: PortMapping[];
  /** IPv4 dotted quad, or IPv6 text (decoded as RFC 5952 compressed lowercase hex). */
  address: string;
  hostkeyDer: Uint8Array;
}

export type ApiMessage = Announce | Notify | Notification | Validation | RpsQuery | RpsPeerMessage;

// ---------------------------------------------------------------------------------------------------------------
// Encoding

function checkUint(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`${name} must be an integer in 0..${max}, got ${value}`);
  }
}

/** Allocates a whole message and writes its header; throws RangeError if it would not fit the u16 size. */
function frame(type: number, size: number): { bytes: Uint8Array; view: DataView } {
  if (size > MAX_MESSAGE_SIZE) throw new RangeError(`message of ${size} bytes exceeds ${MAX_MESSAGE_SIZE}`);
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, size);
  view.setUint16(2, type);
  return { bytes, view };
}

export function encodeAnnounce(m: Omit<Announce, "kind">): Uint8Array {
  checkUint("ttl", m.ttl, 255);
  checkUint("dataType", m.dataType, 0xffff);
  const { bytes, view } = frame(MSG_ANNOUNCE, 8 + m.data.length);
  view.setUint8(4, m.ttl);
  view.setUint16(6, m.dataType);
  bytes.set(m.data, 8);
  return bytes;
}

export function encodeNotify(m: Omit<Notify, "kind">): Uint8Array {
  checkUint("dataType", m.dataType, 0xffff);
  const { bytes, view } = frame(MSG_NOTIFY, 8);
  view.setUint16(6, m.dataType);
  return bytes;
}

/** Written byte by byte: one per validation and subscriber, the API's hot message (no DataView or object per call). */
export function encodeNotification(m: Omit<Notification, "kind">): Uint8Array {
  checkUint("messageId", m.messageId, 0xffff);
  checkUint("dataType", m.dataType, 0xffff);
  const size = 8 + m.data.length;
  if (size > MAX_MESSAGE_SIZE) throw new RangeError(`message of ${size} bytes exceeds ${MAX_MESSAGE_SIZE}`);
  const bytes = new Uint8Array(size);
  bytes[0] = size >> 8;
  bytes[1] = size & 0xff;
  bytes[2] = MSG_NOTIFICATION >> 8;
  bytes[3] = MSG_NOTIFICATION & 0xff;
  bytes[4] = m.messageId >> 8;
  bytes[5] = m.messageId & 0xff;
  bytes[6] = m.dataType >> 8;
  bytes[7] = m.dataType & 0xff;
  bytes.set(m.data, 8);
  return bytes;
}

export function encodeValidation(m: Omit<Validation, "kind">): Uint8Array {
  checkUint("messageId", m.messageId, 0xffff);
  const { bytes, view } = frame(MSG_VALIDATION, 8);
  view.setUint16(4, m.messageId);
  view.setUint16(6, m.valid ? 1 : 0);
  return bytes;
}

export function encodeRpsQuery(): Uint8Array {
  return frame(MSG_RPS_QUERY, 4).bytes;
}

export function encodeRpsPeer(m: Omit<RpsPeerMessage, "kind">): Uint8Array {
  checkUint("port", m.port, 0xffff);
  checkUint("portmap length", m.portmap.length, 255);
  const ip = parseIp(m.address);
  if (ip === undefined) throw new RangeError(`"${m.address}" is not an IPv4 or IPv6 address`);
  const { bytes, view } = frame(MSG_RPS_PEER, 8 + 4 * m.portmap.length + ip.length + m.hostkeyDer.length);
  view.setUint16(4, m.port);
  view.setUint8(6, m.portmap.length);
  view.setUint8(7, ip.length === 16 ? 1 : 0);
  let at = 8;
  for (const { moduleId, port } of m.portmap) {
    checkUint("moduleId", moduleId, 0xffff);
    checkUint("portmap port", port, 0xffff);
    view.setUint16(at, moduleId);
    view.setUint16(at + 2, port);
    at += 4;
  }
  bytes.set(ip, at);
  bytes.set(m.hostkeyDer, at + ip.length);
  return bytes;
}

/** Encodes any message; the inverse of decodeMessage. */
export function encodeMessage(m: ApiMessage): Uint8Array {
  switch (m.kind) {
    case "announce":
      return encodeAnnounce(m);
    case "notify":
      return encodeNotify(m);
    case "notification":
      return encodeNotification(m);
    case "validation":
      return encodeValidation(m);
    case "rps-query":
      return encodeRpsQuery();
    case "rps-peer":
      return encodeRpsPeer(m);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding

function fail(code: string, message: string): never {
  throw new ApiProtocolError(code, message);
}

function exactly(type: string, size: number, want: number): void {
  if (size !== want) fail("size-mismatch", `${type} must be ${want} bytes, got ${size}`);
}

function atLeast(type: string, size: number, want: number): void {
  if (size < want) fail("size-mismatch", `${type} must be at least ${want} bytes, got ${size}`);
}

/**
 * Decodes exactly one whole message. `data` and `hostkeyDer` are views sharing memory with `bytes`.
 * Codes: size-too-small (fewer than 4 bytes, or a size field below 4), size-mismatch (size field ≠ byte count, or a
 * size the type does not allow), unknown-type (not a Gossip or RPS message type).
 */
export function decodeMessage(bytes: Uint8Array): ApiMessage {
  if (bytes.length < HEADER_SIZE) fail("size-too-small", `${bytes.length} bytes cannot hold a header`);
  // Big-endian u16 fields read byte by byte (no DataView per message: VALIDATION and ANNOUNCE come with every item).
  const size = u16(bytes, 0);
  const type = u16(bytes, 2);
  if (size < HEADER_SIZE) fail("size-too-small", `size field ${size} is below ${HEADER_SIZE}`);
  if (size !== bytes.length) fail("size-mismatch", `size field ${size} but ${bytes.length} bytes`);

  switch (type) {
    case MSG_ANNOUNCE:
      atLeast("ANNOUNCE", size, 8);
      return { kind: "announce", ttl: bytes[4]!, dataType: u16(bytes, 6), data: bytes.subarray(8) };
    case MSG_NOTIFY:
      exactly("NOTIFY", size, 8);
      return { kind: "notify", dataType: u16(bytes, 6) };
    case MSG_NOTIFICATION:
      atLeast("NOTIFICATION", size, 8);
      return {
        kind: "notification",
        messageId: u16(bytes, 4),
        dataType: u16(bytes, 6),
        data: bytes.subarray(8),
      };
    case MSG_VALIDATION:
      exactly("VALIDATION", size, 8);
      return { kind: "validation", messageId: u16(bytes, 4), valid: (bytes[7]! & 1) === 1 };
    case MSG_RPS_QUERY:
      exactly("RPS QUERY", size, 4);
      return { kind: "rps-query" };
    case MSG_RPS_PEER:
      return decodeRpsPeer(bytes, new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    default:
      return fail("unknown-type", `message type ${type}`);
  }
}

const u16 = (bytes: Uint8Array, at: number) => (bytes[at]! << 8) | bytes[at + 1]!;

function decodeRpsPeer(bytes: Uint8Array, view: DataView): RpsPeerMessage {
  atLeast("RPS PEER", bytes.length, 8);
  const count = view.getUint8(6);
  const ipLength = (view.getUint8(7) & 1) === 1 ? 16 : 4;
  const ipAt = 8 + 4 * count;
  // A peer without a hostkey cannot be authenticated: the message is inconsistent, not just short of a field.
  atLeast("RPS PEER", bytes.length, ipAt + ipLength + 1);
  const portmap: PortMapping[] = [];
  for (let at = 8; at < ipAt; at += 4) portmap.push({ moduleId: view.getUint16(at), port: view.getUint16(at + 2) });
  const ip = bytes.subarray(ipAt, ipAt + ipLength);
  return {
    kind: "rps-peer",
    port: view.getUint16(4),
    portmap,
    address: ipLength === 4 ? formatIpv4(ip) : formatIpv6(ip),
    hostkeyDer: bytes.subarray(ipAt + ipLength),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// IP address text ⇄ bytes (RPS PEER carries raw bytes; the rest of the node speaks text)

function formatIpv4(ip: Uint8Array): string {
  return `${ip[0]}.${ip[1]}.${ip[2]}.${ip[3]}`;
}

/** RFC 5952: lowercase hex, no leading zeros, the longest run (≥ 2) of zero groups as "::", the first if tied. */
function formatIpv6(ip: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((ip[i] << 8) | ip[i + 1]);
  let bestAt = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) [bestAt, bestLength] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(":");
  return `${hex.slice(0, bestAt).join(":")}::${hex.slice(bestAt + bestLength).join(":")}`;
}

function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return Uint8Array.from(parts.map(Number));
}

function parseIpv6(text: string): Uint8Array | undefined {
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (i === items.length - 1 && item.includes(".")) {
        const v4 = parseIpv4(item); // embedded IPv4 tail, e.g. ::ffff:192.0.2.1
        if (v4 === undefined) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(item)) {
        out.push(parseInt(item, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groupsOf(halves[0]);
  const tail = halves.length === 2 ? groupsOf(halves[1]) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  const ip = new Uint8Array(16);
  groups.forEach((g, i) => {
    ip[2 * i] = g >> 8;
    ip[2 * i + 1] = g & 0xff;
  });
  return ip;
}

/** 4 bytes for IPv4 text, 16 for IPv6 text, undefined for anything else (host names included). */
export function parseIp(text: string): Uint8Array | undefined {
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}
