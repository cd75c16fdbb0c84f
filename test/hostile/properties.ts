/**
 * Property tests of every decoder that peer or module bytes reach: any bytes in, only our protocol error out
 * (ApiProtocolError / P2PProtocolError), with bounded buffers and sane results. Defined once here; run with a few
 * hundred cases by properties.test.ts and for as long as you like by scripts/fuzz.ts (`bun run fuzz`).
 * Inputs mix uniform noise with mutated valid encodings, which reach deeper into the decoders.
 */
import fc from "fast-check";
import { type ApiMessage, MAX_MESSAGE_SIZE, decodeMessage as decodeApi, encodeMessage as encodeApi } from "../../src/api/codec.ts";
import { MessageReader } from "../../src/api/reader.ts";
import { ApiProtocolError, P2PProtocolError } from "../../src/errors.ts";
import { FRAME_HEADER_BYTES, FrameReader, MAX_FRAME_BODY, encodeFrame } from "../../src/p2p/frame.ts";
import { InitiatorHandshake, ResponderHandshake } from "../../src/p2p/handshake.ts";
import { generateEd25519Pem, generateStaticKeyPair, loadIdentity } from "../../src/p2p/identity.ts";
import { LinkErrorCode, type LinkMessage, type PeerEntry } from "../../src/p2p/proto/gossip.ts";
import { decodeLinkMessage, encodeBatch, encodeLinkMessage, unpackBatch } from "../../src/p2p/wire.ts";
import { solvePow } from "./raw-peer.ts";

export interface RunOptions {
  numRuns?: number;
  /** Stop after this long (counted as success); for long fuzzing runs. */
  timeLimitMs?: number;
  seed?: number;
}

export interface NamedProperty {
  name: string;
  /** Runs the property; `failure` is fast-check's report (with the shrunk counterexample and the seed). */
  check(options: RunOptions): { runs: number; failure?: string };
}

function named<Ts>(name: string, property: fc.IProperty<Ts>): NamedProperty {
  return {
    name,
    check({ numRuns, timeLimitMs, seed }) {
      const details = fc.check(property, {
        numRuns: timeLimitMs !== undefined && numRuns === undefined ? Number.MAX_SAFE_INTEGER : numRuns,
        interruptAfterTimeLimit: timeLimitMs,
        markInterruptAsFailure: false,
        seed,
      });
      return { runs: details.numRuns, failure: details.failed ? fc.defaultReportMessage(details) : undefined };
    },
  };
}

/** Lets only `kind` errors through; anything else (a TypeError, a RangeError from a library) fails the property. */
function only<E extends Error>(kind: new (...args: never[]) => E, action: () => void): E | undefined {
  try {
    action();
    return undefined;
  } catch (e) {
    if (e instanceof kind) return e;
    throw e;
  }
}

/** `base` with some bytes changed, maybe cut short, maybe with noise inserted. */
function mutated(bases: Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(
      fc.constantFrom(...bases),
      fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 4 }),
      fc.option(fc.nat()),
      fc.option(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 }))),
    )
    .map(([base, flips, cut, insert]) => {
      let bytes = Uint8Array.from(base);
      for (const [at, mask] of flips) if (bytes.length > 0) bytes[at % bytes.length]! ^= mask;
      if (cut !== null) bytes = bytes.subarray(0, cut % (bytes.length + 1));
      if (insert !== null) {
        const at = insert[0] % (bytes.length + 1);
        bytes = Uint8Array.from([...bytes.subarray(0, at), ...insert[1], ...bytes.subarray(at)]);
      }
      return bytes;
    });
}

/** Cuts `stream` at the given points (deduplicated, in order) into chunks. */
function chunked(stream: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let from = 0;
  for (const to of [...points, stream.length]) {
    chunks.push(Uint8Array.from(stream.subarray(from, to))); // fresh buffers, like Bun's data chunks
    from = to;
  }
  return chunks;
}

const cuts = fc.array(fc.nat(), { maxLength: 16 });
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// ---- VoidPhone API: reader + codec -------------------------------------------------------------------------------

const apiExamples: ApiMessage[] = [
  { kind: "announce", ttl: 4, dataType: 1337, data: Uint8Array.from([0xde, 0xad, 0xbe, 0xef]) },
  { kind: "notify", dataType: 7 },
  { kind: "notification", messageId: 9, dataType: 7, data: new Uint8Array(20).fill(1) },
  { kind: "validation", messageId: 9, valid: true },
  { kind: "rps-query" },
  { kind: "rps-peer", port: 6001, portmap: [{ moduleId: 500, port: 6001 }], address: "10.0.0.1", hostkeyDer: new Uint8Array(44).fill(3) },
  { kind: "rps-peer", port: 1, portmap: [], address: "2001:db8::1", hostkeyDer: new Uint8Array([1]) },
];
const apiStreams = [
  ...apiExamples.map(encodeApi),
  Buffer.concat(apiExamples.map(encodeApi)),
  Buffer.concat([encodeApi(apiExamples[1]!), encodeApi(apiExamples[0]!), encodeApi(apiExamples[3]!)]),
];
const apiBytes = fc.oneof(fc.uint8Array({ maxLength: 120 }), mutated(apiStreams));

const apiAnyBytes = named(
  "api: any bytes in any chunks give whole messages or an ApiProtocolError, with at most one message buffered",
  fc.property(apiBytes, cuts, (stream, at) => {
    const reader = new MessageReader();
    only(ApiProtocolError, () => {
      for (const chunk of chunked(stream, at)) {
        for (const bytes of reader.push(chunk)) {
          const size = (bytes[0]! << 8) | bytes[1]!;
          if (size !== bytes.length || size < 4 || size > MAX_MESSAGE_SIZE) throw new Error(`reader gave ${bytes.length} bytes for size ${size}`);
          const m = decodeApi(bytes);
          if (encodeApi(m).length !== bytes.length) throw new Error("a decoded message does not re-encode to its size");
        }
        if (reader.pendingBytes > MAX_MESSAGE_SIZE) throw new Error(`reader holds ${reader.pendingBytes} bytes`);
      }
    });
  }),
);

const apiChunking = named(
  "api: a valid stream cut anywhere gives the same messages as one write",
  fc.property(fc.array(fc.constantFrom(...apiExamples.map(encodeApi)), { minLength: 1, maxLength: 8 }), cuts, (messages, at) => {
    const stream = Buffer.concat(messages);
    const reader = new MessageReader();
    const whole = new MessageReader().push(Uint8Array.from(stream)).map(hex);
    const parts = chunked(stream, at).flatMap((c) => reader.push(c)).map(hex);
    if (JSON.stringify(parts) !== JSON.stringify(whole) || whole.length !== messages.length) throw new Error("chunking changed the messages");
  }),
);

// ---- P2P framing ---------------------------------------------------------------------------------------------------

/** A protobuf varint (for tags of fields from 16 on). */
function varint(n: number): number[] {
  const out: number[] = [];
  for (; n >= 0x80; n >>>= 7) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return out;
}

const lengthHeader = (n: number) => Uint8Array.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
const frameStreams = [
  Buffer.concat([encodeFrame(Uint8Array.of(1)), encodeFrame(new Uint8Array(15).fill(2)), encodeFrame(new Uint8Array(300).fill(3))]),
  encodeFrame(new Uint8Array(MAX_FRAME_BODY).fill(4)),
  ...[0, 15, MAX_FRAME_BODY, MAX_FRAME_BODY + 1, 0xffffffff].map((n) => Uint8Array.from([...lengthHeader(n), 9, 9, 9])),
];
const frameBytes = fc.oneof(fc.uint8Array({ maxLength: 120 }), mutated(frameStreams));

interface FrameOutcome {
  bodies: string[];
  error?: string;
}

function readFrames(chunks: Uint8Array[]): FrameOutcome {
  const reader = new FrameReader();
  const bodies: string[] = [];
  const error = only(P2PProtocolError, () => {
    for (const chunk of chunks) {
      for (const body of reader.push(chunk)) {
        if (body.length === 0 || body.length > MAX_FRAME_BODY) throw new Error(`a body of ${body.length} bytes`);
        bodies.push(hex(body));
      }
      if (reader.buffered > FRAME_HEADER_BYTES + MAX_FRAME_BODY) throw new Error(`reader holds ${reader.buffered} bytes`);
    }
  });
  return { bodies, error: error?.code };
}

const framesAnyBytes = named(
  "frames: any bytes in any chunks give bodies or a P2PProtocolError, and the same ones as in one chunk",
  fc.property(frameBytes, cuts, (stream, at) => {
    const whole = readFrames([Uint8Array.from(stream)]);
    const parts = readFrames(chunked(stream, at));
    // A chunk that ends in an error loses the bodies before it in that chunk (the link is closed anyway), so with
    // an error the one-chunk bodies are a prefix of the chunked ones; without one they are the same.
    const prefix = parts.bodies.slice(0, whole.bodies.length);
    const agree = parts.error === whole.error && JSON.stringify(prefix) === JSON.stringify(whole.bodies);
    if (!agree || (whole.error === undefined && parts.bodies.length !== whole.bodies.length)) {
      throw new Error(`chunking changed the outcome: ${JSON.stringify(whole)} vs ${JSON.stringify(parts)}`);
    }
  }),
);

// ---- P2P link messages (protobuf) ----------------------------------------------------------------------------------

const id = new Uint8Array(32).fill(0xab);
const linkExamples: LinkMessage[] = [
  { kind: { $case: "payload", value: { messageId: id, ttl: 4, dataType: 1337, data: Uint8Array.from([0xde, 0xad]) } } },
  { kind: { $case: "peerRequest", value: {} } },
  { kind: { $case: "peerList", value: { peers: [{ host: "10.0.0.1", port: 6001, id }, { host: "::1", port: 1, id: new Uint8Array(0) }] } } },
  { kind: { $case: "error", value: { code: LinkErrorCode.TOO_MANY_LINKS, message: "full" } } },
  { kind: { $case: "ping", value: { nonce: 0xffffffffffffffffn } } },
  { kind: { $case: "pong", value: { nonce: 1n } } },
  // Broadcast trees (each kind small enough for a one-byte length, which linkStopTags relies on).
  { kind: { $case: "payload", value: { messageId: id, ttl: 0, dataType: 7, data: Uint8Array.of(1), hops: 9 } } },
  { kind: { $case: "ihave", value: { entries: [{ idPrefix: id.subarray(0, 8), dataType: 1337, hops: 2 }, { idPrefix: id.subarray(0, 1), dataType: 0, hops: 255 }] } } },
  { kind: { $case: "graft", value: { idPrefix: [id.subarray(0, 8), id] } } },
  { kind: { $case: "graft", value: { idPrefix: [] } } },
  { kind: { $case: "prune", value: {} } },
  { kind: { $case: "dontHave", value: { idPrefix: [id.subarray(0, 8)] } } },
  // Membership views; Shuffle (16) and ShuffleReply (17) have two-byte tags.
  { kind: { $case: "join", value: {} } },
  { kind: { $case: "forwardJoin", value: { peer: { host: "10.0.0.2", port: 6001, id }, ttl: 5 } } },
  { kind: { $case: "neighbor", value: { highPriority: true } } },
  { kind: { $case: "disconnect", value: {} } },
  { kind: { $case: "shuffle", value: { id: 77, ttl: 4, origin: { host: "::1", port: 2, id: new Uint8Array(0) }, entries: [{ host: "h", port: 9, id }] } } },
  { kind: { $case: "shuffleReply", value: { id: 77, entries: [{ host: "10.0.0.3", port: 65535, id: new Uint8Array(0) }] } } },
];
/** Protobuf-shaped noise: fields with any number and wire type, varints of any length, lengths true or not. */
const protobufNoise = fc
  .array(
    fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer({ min: 0, max: 7 }), fc.uint8Array({ maxLength: 12 }), fc.integer({ min: 0, max: 20 })),
    { maxLength: 6 },
  )
  .map((fields) =>
    Uint8Array.from(fields.flatMap(([field, wireType, bytes, length]) => [(field << 3) | wireType, ...(wireType === 2 ? [length] : []), ...bytes])),
  );
const linkBytes = fc.oneof(
  fc.uint8Array({ maxLength: 200 }),
  mutated([...linkExamples.map(encodeLinkMessage), encodeBatch(linkExamples.map(encodeLinkMessage))]),
  protobufNoise,
);

const linkAnyBytes = named(
  "link messages: any bytes give a LinkMessage of a known kind or a P2PProtocolError; what is accepted re-encodes to itself",
  fc.property(linkBytes, (bytes) => {
    let message: LinkMessage | undefined;
    only(P2PProtocolError, () => void (message = decodeLinkMessage(bytes)));
    if (message === undefined) return;
    if (message.kind === undefined) throw new Error("accepted a message of no kind");
    // A Batch is opened the way a link opens it: each entry decoded on its own, only our error out.
    const batch = message.kind.$case === "batch" ? message.kind.value : undefined;
    if (batch !== undefined) only(P2PProtocolError, () => void unpackBatch(batch));
    const again = decodeLinkMessage(encodeLinkMessage(message));
    if (hex(encodeLinkMessage(again)) !== hex(encodeLinkMessage(message))) throw new Error("re-encoding changed an accepted message");
  }),
);

/** What wire.ts promises of every accepted message, checked independently of its own checks. */
function withinBounds(m: LinkMessage): string | undefined {
  const prefixOk = (p: Uint8Array) => p.length >= 1 && p.length <= 32;
  const hostOk = (h: string) => new TextEncoder().encode(h).length >= 1 && new TextEncoder().encode(h).length <= 253;
  const entryOk = (e: PeerEntry) => hostOk(e.host) && e.port >= 1 && e.port <= 65535 && (e.id.length === 0 || e.id.length === 32);
  const entriesOk = (es: PeerEntry[]) => es.length <= 16 && es.every(entryOk);
  const k = m.kind!;
  switch (k.$case) {
    case "forwardJoin":
      return k.value.peer !== undefined && entryOk(k.value.peer) && k.value.ttl <= 16 ? undefined : "forwardJoin";
    case "shuffle":
      return k.value.ttl <= 16 && (k.value.origin === undefined || entryOk(k.value.origin)) && entriesOk(k.value.entries) ? undefined : "shuffle";
    case "shuffleReply":
      return entriesOk(k.value.entries) ? undefined : "shuffleReply";
    case "payload":
      return (k.value.hops ?? 0) <= 255 && k.value.messageId.length === 32 ? undefined : "payload";
    case "ihave": {
      const e = k.value.entries;
      const ok = e.length >= 1 && e.length <= 256 && e.every((x) => prefixOk(x.idPrefix) && x.dataType <= 0xffff && x.hops <= 255);
      return ok ? undefined : "ihave";
    }
    case "graft":
      return k.value.idPrefix.length <= 256 && k.value.idPrefix.every(prefixOk) ? undefined : "graft";
    case "dontHave":
      return k.value.idPrefix.length >= 1 && k.value.idPrefix.length <= 256 && k.value.idPrefix.every(prefixOk) ? undefined : "dontHave";
  }
  return undefined;
}

/** Field values on both sides of every bound (encoded honestly: the decoder's range checks alone decide). */
const edgePrefix = fc.integer({ min: 0, max: 40 }).map((n) => new Uint8Array(n).fill(7));
const edgeEntries = fc.oneof(fc.nat({ max: 3 }), fc.integer({ min: 254, max: 258 }));
const edgeTree = fc.oneof(
  fc
    .tuple(edgeEntries, fc.record({ idPrefix: edgePrefix, dataType: fc.integer({ min: 65530, max: 65540 }), hops: fc.integer({ min: 250, max: 260 }) }))
    .map(([n, e]): LinkMessage => ({ kind: { $case: "ihave", value: { entries: Array(n).fill(e) } } })),
  fc.tuple(edgeEntries, edgePrefix).map(([n, p]): LinkMessage => ({ kind: { $case: "graft", value: { idPrefix: Array(n).fill(p) } } })),
  fc.tuple(edgeEntries, edgePrefix).map(([n, p]): LinkMessage => ({ kind: { $case: "dontHave", value: { idPrefix: Array(n).fill(p) } } })),
  fc.integer({ min: 250, max: 260 }).map((hops): LinkMessage => ({ kind: { $case: "payload", value: { messageId: id, ttl: 1, dataType: 1, data: id, hops } } })),
);

/** Peer entries on both sides of every bound: hosts of 0–2 and 250–256 bytes (some of two-byte characters), ports
 *  around 0 and 65535, IDs of 0, 31, 32 and 33 bytes. */
const edgeEntry = fc.oneof(
  // Mostly valid, so that the list bounds are reached too.
  { weight: 3, arbitrary: fc.constant<PeerEntry>({ host: "10.0.0.9", port: 6001, id }) },
  {
    weight: 2,
    arbitrary: fc.record({
      host: fc.oneof(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 250, max: 256 })).chain((n) => fc.constantFrom("h".repeat(n), "é".repeat(Math.ceil(n / 2)))),
      port: fc.constantFrom(0, 1, 6001, 65535, 65536),
      id: fc.constantFrom(0, 31, 32, 33).map((n) => new Uint8Array(n).fill(5)),
    }),
  },
);
const edgeCount = fc.oneof(fc.nat({ max: 2 }), fc.integer({ min: 15, max: 18 }));
const edgeTtl = fc.oneof(fc.nat({ max: 2 }), fc.integer({ min: 15, max: 18 }));
const edgeView = fc.oneof(
  fc.tuple(fc.option(edgeEntry), edgeTtl).map(([peer, ttl]): LinkMessage => ({ kind: { $case: "forwardJoin", value: { peer: peer ?? undefined, ttl } } })),
  fc
    .tuple(fc.nat(), edgeTtl, fc.option(edgeEntry), edgeCount, edgeEntry)
    .map(([sid, ttl, origin, n, e]): LinkMessage => ({ kind: { $case: "shuffle", value: { id: sid, ttl, origin: origin ?? undefined, entries: Array(n).fill(e) } } })),
  fc.tuple(edgeCount, edgeEntry).map(([n, e]): LinkMessage => ({ kind: { $case: "shuffleReply", value: { id: 1, entries: Array(n).fill(e) } } })),
);

/** Tree and view kinds (fields 8–17) at their bounds, around protobuf noise, or mutated: reaches every bound check. */
const treeBytes = fc.oneof(
  edgeTree.map(encodeLinkMessage),
  edgeView.map(encodeLinkMessage),
  mutated(linkExamples.filter((m) => ["payload", "ihave", "graft", "dontHave", "forwardJoin", "shuffle", "shuffleReply"].includes(m.kind!.$case)).map(encodeLinkMessage)),
  fc.tuple(fc.integer({ min: 8, max: 17 }), protobufNoise).map(([field, inner]) => Uint8Array.from([...varint((field << 3) | 2), inner.length, ...inner])),
  // An IHave whose entries are noise (field 1 of IHave, each a TreeEntry).
  fc.array(protobufNoise, { minLength: 1, maxLength: 3 }).map((entries) => {
    const body = entries.flatMap((e) => [0x0a, e.length, ...e]);
    return Uint8Array.from([0x42, body.length, ...body]);
  }),
);

const linkTreeBounds = named(
  "link messages: a tree or view kind or Payload that is accepted holds to its bounds (entries, prefix lengths, data types, hops, walks, hosts, ports, IDs)",
  fc.property(treeBytes, (bytes) => {
    let message: LinkMessage | undefined;
    only(P2PProtocolError, () => void (message = decodeLinkMessage(bytes)));
    if (message === undefined) return;
    const broken = withinBounds(message);
    if (broken !== undefined) throw new Error(`accepted a ${broken} out of bounds`);
  }),
);

/** A zero tag, or a group's start or end, where a field begins: the decoder must refuse it, not stop reading there. */
const stopTag = fc.oneof(fc.constant(0), fc.tuple(fc.integer({ min: 1, max: 15 }), fc.constantFrom(3, 4)).map(([field, wt]) => (field << 3) | wt));
const linkStopTags = named(
  "link messages: a zero or group tag at the top or inside a message is refused, never read as its end",
  fc.property(fc.constantFrom(...linkExamples), stopTag, fc.uint8Array({ maxLength: 6 }), fc.boolean(), (m, tag, rest, inside) => {
    const tail = [tag, ...rest];
    let bytes: Uint8Array;
    if (inside) {
      // The same tail inside the kind's own message, with the kind's length adjusted to cover it. Every example's
      // kind has a one-byte length; its tag has one byte up to field 15, two from 16 on.
      const encoded = encodeLinkMessage(m);
      const tagBytes = encoded[0]! & 0x80 ? 2 : 1;
      const body = [...encoded.subarray(tagBytes + 1), ...tail];
      bytes = Uint8Array.from([...encoded.subarray(0, tagBytes), body.length, ...body]);
    } else {
      bytes = Uint8Array.from([...encodeLinkMessage(m), ...tail]);
    }
    if (only(P2PProtocolError, () => void decodeLinkMessage(bytes)) === undefined) throw new Error("accepted a stop tag");
  }),
);

// ---- The handshake's decoding path -----------------------------------------------------------------------------------

const alice = loadIdentity(generateEd25519Pem());
const bob = loadIdentity(generateEd25519Pem());
const handshakeFrame = fc.oneof(fc.uint8Array({ maxLength: 300 }), protobufNoise);

const handshakeAnyBytes = named(
  "handshake: any bytes as Hello, M1, M2 or M3 are refused with a P2PProtocolError",
  fc.property(fc.integer({ min: 0, max: 3 }), handshakeFrame, (step, bytes) => {
    const responder = new ResponderHandshake({ identity: alice, staticKeys: generateStaticKeyPair(), difficulty: 2 });
    const initiator = new InitiatorHandshake({ identity: bob, staticKeys: generateStaticKeyPair(), maxDifficulty: 8 });
    const hello = responder.hello();
    const error = only(P2PProtocolError, () => {
      if (step === 0) return void initiator.recvHello(bytes);
      const { powPrefix, difficulty } = initiator.recvHello(hello);
      const m1 = initiator.init(solvePow(powPrefix, difficulty));
      if (step === 1) return void responder.recvInit(bytes);
      const m2 = responder.recvInit(m1);
      if (step === 2) return void initiator.recvResponse(bytes);
      initiator.recvResponse(m2);
      responder.recvFinal(bytes);
    });
    if (error === undefined) throw new Error(`step ${step} accepted noise`);
  }),
);

export const properties: NamedProperty[] = [apiAnyBytes, apiChunking, framesAnyBytes, linkAnyBytes, linkTreeBounds, linkStopTags, handshakeAnyBytes];
