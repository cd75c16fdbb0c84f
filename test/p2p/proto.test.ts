// The committed generated code matches proto/, and wire.ts turns any peer bytes into a valid message or our error.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PROTO_OUT_DIR, REPO_ROOT, generateProto } from "../../scripts/gen-proto.ts";
import { P2PProtocolError } from "../../src/errors.ts";
import { HandshakeInit, LinkErrorCode, LinkMessage } from "../../src/p2p/proto/gossip.ts";
import {
  MAX_TREE_ENTRIES,
  MAX_VIEW_ENTRIES,
  MAX_VIEW_TTL,
  decodeCanonical,
  decodeLinkMessage,
  encodeBatch,
  encodeLinkMessage,
  encodeMessage,
  unpackBatch,
} from "../../src/p2p/wire.ts";
import { codeOf } from "./error-code.ts";
import { entry, viewMessages } from "./view-messages.ts";


const id = new Uint8Array(32).fill(0xab);
const prefix = (n: number, fill = 0xcd) => new Uint8Array(n).fill(fill);
/** Every broadcast-tree kind, at the edges of its bounds. */
const treeExamples: LinkMessage[] = [
  { kind: { $case: "ihave", value: { entries: [{ idPrefix: prefix(8), dataType: 1337, hops: 3 }] } } },
  {
    kind: {
      $case: "ihave",
      value: { entries: Array.from({ length: MAX_TREE_ENTRIES }, (_, i) => ({ idPrefix: prefix(1 + (i % 32), i), dataType: i === 0 ? 65535 : i, hops: i % 256 })) },
    },
  },
  { kind: { $case: "graft", value: { idPrefix: [prefix(8), prefix(1), prefix(32)] } } },
  { kind: { $case: "graft", value: { idPrefix: [] } } },
  { kind: { $case: "graft", value: { idPrefix: Array.from({ length: MAX_TREE_ENTRIES }, (_, i) => prefix(8, i)) } } },
  { kind: { $case: "prune", value: {} } },
  { kind: { $case: "dontHave", value: { idPrefix: [prefix(8)] } } },
  { kind: { $case: "dontHave", value: { idPrefix: Array.from({ length: MAX_TREE_ENTRIES }, (_, i) => prefix(32, i)) } } },
];

test("the committed generated code is what proto/ generates now", async () => {
  const base = mkdtempSync(join(tmpdir(), "gossip-proto-"));
  try {
    await generateProto(base);
    const fresh = join(base, PROTO_OUT_DIR);
    const committed = join(REPO_ROOT, PROTO_OUT_DIR);
    expect(readdirSync(fresh).sort()).toEqual(readdirSync(committed).sort());
    for (const file of readdirSync(fresh)) {
      // toBe on whole files: a diff in the failure message is enough to see the drift; fix with `bun run proto`.
      expect(readFileSync(join(committed, file), "utf8")).toBe(readFileSync(join(fresh, file), "utf8"));
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

describe("link messages", () => {
  const examples: LinkMessage[] = [
    { kind: { $case: "payload", value: { messageId: id, ttl: 4, dataType: 1337, data: new Uint8Array([0xde, 0xad]) } } },
    { kind: { $case: "payload", value: { messageId: id, ttl: 255, dataType: 65535, data: new Uint8Array(65527) } } },
    { kind: { $case: "peerRequest", value: {} } },
    {
      kind: {
        $case: "peerList",
        value: { peers: [{ host: "10.0.0.1", port: 6001, id }, { host: "::1", port: 1, id: new Uint8Array(0) }] },
      },
    },
    { kind: { $case: "error", value: { code: LinkErrorCode.TOO_MANY_LINKS, message: "full" } } },
    { kind: { $case: "ping", value: { nonce: 0xffffffffffffffffn } } },
    { kind: { $case: "pong", value: { nonce: 1n } } },
    ...treeExamples,
    ...viewMessages,
    // Views at the edges of their bounds: 16 entries, walks of 16, a 253-byte host (in bytes of UTF-8), the largest u32.
    {
      kind: {
        $case: "shuffle",
        value: { id: 0xffff_ffff, ttl: MAX_VIEW_TTL, origin: { host: "h".repeat(253), port: 65535, id }, entries: Array.from({ length: MAX_VIEW_ENTRIES }, (_, i) => entry(1 + i, i % 2 === 0)) },
      },
    },
    { kind: { $case: "shuffleReply", value: { id: 0, entries: Array.from({ length: MAX_VIEW_ENTRIES }, (_, i) => ({ host: "é".repeat(126), port: 1 + i, id })) } } },
    { kind: { $case: "shuffleReply", value: { id: 3, entries: [] } } },
    { kind: { $case: "forwardJoin", value: { peer: { host: "::1", port: 1, id }, ttl: MAX_VIEW_TTL } } },
    { kind: { $case: "forwardJoin", value: { peer: { host: "a.example", port: 6001, id: new Uint8Array(0) }, ttl: 0 } } },
    { kind: { $case: "payload", value: { messageId: id, ttl: 0, dataType: 7, data: new Uint8Array(1), hops: 255 } } },
  ];

  test("every kind round-trips", () => {
    for (const m of examples) expect(decodeLinkMessage(encodeLinkMessage(m))).toEqual(m);
  });

  test("the seed's error codes keep their numbers", () => {
    expect([LinkErrorCode.UNDEFINED, LinkErrorCode.INVALID_REQUEST, LinkErrorCode.CHECKSUM_INVALID]).toEqual([0, 1, 2]);
    expect(LinkErrorCode.RESPONSE_TIMEOUT).toBe(3);
  });

  test("no kind, or a kind we do not know, is unknown-message", () => {
    expect(codeOf(() => decodeLinkMessage(encodeLinkMessage({})))).toBe("unknown-message");
    // Fields 19 and 31 (future kinds, two-byte tags), length-delimited, empty.
    expect(codeOf(() => decodeLinkMessage(new Uint8Array([0x9a, 0x01, 0x00])))).toBe("unknown-message");
    expect(codeOf(() => decodeLinkMessage(new Uint8Array([0xfa, 0x01, 0x00])))).toBe("unknown-message");
  });

  test("unknown fields inside a known kind are ignored", () => {
    const ping = encodeLinkMessage({ kind: { $case: "ping", value: { nonce: 5n } } });
    // Inside Ping (field 5 of LinkMessage): nonce, then an unknown field 7 varint.
    const extended = new Uint8Array([0x2a, ping[1]! + 2, ...ping.subarray(2), 0x38, 0x01]);
    expect(decodeLinkMessage(extended)).toEqual({ kind: { $case: "ping", value: { nonce: 5n } } });
  });

  test("fields out of range are malformed", () => {
    const payload = (p: Partial<{ messageId: Uint8Array; ttl: number; dataType: number }>) =>
      encodeLinkMessage({ kind: { $case: "payload", value: { messageId: id, ttl: 1, dataType: 1, data: id, ...p } } });
    expect(codeOf(() => decodeLinkMessage(payload({ messageId: id.subarray(1) })))).toBe("malformed");
    expect(codeOf(() => decodeLinkMessage(payload({ ttl: 256 })))).toBe("malformed");
    expect(codeOf(() => decodeLinkMessage(payload({ dataType: 65536 })))).toBe("malformed");
    const peers = (host: string, port: number, peerId: Uint8Array) =>
      encodeLinkMessage({ kind: { $case: "peerList", value: { peers: [{ host, port, id: peerId }] } } });
    expect(codeOf(() => decodeLinkMessage(peers("", 6001, id)))).toBe("malformed");
    expect(codeOf(() => decodeLinkMessage(peers("h", 0, id)))).toBe("malformed");
    expect(codeOf(() => decodeLinkMessage(peers("h", 65536, id)))).toBe("malformed");
    expect(codeOf(() => decodeLinkMessage(peers("h", 1, id.subarray(2))))).toBe("malformed");
    expect(codeOf(() => decodeLinkMessage(peers("h".repeat(254), 1, id)))).toBe("malformed");
  });

  test("broadcast-tree kinds out of range are malformed: entry counts, prefix lengths, data types, hops, root keys, distances", () => {
    const ihave = (entries: { idPrefix: Uint8Array; dataType: number; hops: number }[]) =>
      encodeLinkMessage({ kind: { $case: "ihave", value: { entries } } });
    const entry = { idPrefix: prefix(8), dataType: 1, hops: 1 };
    const treeRoot = (v: Partial<{ dataType: number; root: Uint8Array; distance: number }>) =>
      encodeLinkMessage({ kind: { $case: "treeRoot", value: { dataType: 1, root: prefix(8), distance: 2, cost: 120, parent: true, ...v } } });
    const rejected: [string, Uint8Array][] = [
      ["an IHave of no entries", ihave([])],
      ["an IHave of 257 entries", ihave(Array(MAX_TREE_ENTRIES + 1).fill(entry))],
      ["an empty prefix", ihave([{ ...entry, idPrefix: prefix(0) }])],
      ["a 33-byte prefix", ihave([entry, { ...entry, idPrefix: prefix(33) }])],
      ["data type 65536", ihave([{ ...entry, dataType: 65536 }])],
      ["hops 256", ihave([{ ...entry, hops: 256 }])],
      ["a Graft of 257 prefixes", encodeLinkMessage({ kind: { $case: "graft", value: { idPrefix: Array(MAX_TREE_ENTRIES + 1).fill(prefix(8)) } } })],
      ["a Graft with an empty prefix", encodeLinkMessage({ kind: { $case: "graft", value: { idPrefix: [prefix(8), prefix(0)] } } })],
      ["a Graft with a 33-byte prefix", encodeLinkMessage({ kind: { $case: "graft", value: { idPrefix: [prefix(33)] } } })],
      ["a DontHave of no prefixes", encodeLinkMessage({ kind: { $case: "dontHave", value: { idPrefix: [] } } })],
      ["a DontHave of 257 prefixes", encodeLinkMessage({ kind: { $case: "dontHave", value: { idPrefix: Array(MAX_TREE_ENTRIES + 1).fill(prefix(8)) } } })],
      ["a DontHave with a 33-byte prefix", encodeLinkMessage({ kind: { $case: "dontHave", value: { idPrefix: [prefix(33)] } } })],
      ["a Payload of hops 256", encodeLinkMessage({ kind: { $case: "payload", value: { messageId: id, ttl: 1, dataType: 1, data: id, hops: 256 } } })],
      ...[0, 7, 9, 32].map((n): [string, Uint8Array] => [`a TreeRoot of a ${n}-byte root`, treeRoot({ root: prefix(n) })]),
      ["a TreeRoot of distance 256", treeRoot({ distance: 256 })],
      ["a TreeRoot of data type 65536", treeRoot({ dataType: 65536 })],
    ];
    expect(decodeLinkMessage(treeRoot({})).kind?.$case).toBe("treeRoot");
    for (const [what, bytes] of rejected) expect([what, codeOf(() => decodeLinkMessage(bytes))]).toEqual([what, "malformed"]);
    // The same bounds hold for a tree message inside a Batch.
    const batch = decodeLinkMessage(encodeBatch([encodeLinkMessage(examples[0]!), ihave([{ ...entry, hops: 256 }])]));
    expect(codeOf(() => batch.kind?.$case === "batch" && unpackBatch(batch.kind.value))).toBe("malformed");
  });

  test("membership-view kinds out of range are malformed: entry counts, walk lengths, hosts (bytes), ports, IDs, a missing peer", () => {
    const enc = (m: LinkMessage) => encodeLinkMessage(m);
    const shuffle = (v: Partial<{ id: number; ttl: number; origin: ReturnType<typeof entry>; entries: ReturnType<typeof entry>[] }>) =>
      enc({ kind: { $case: "shuffle", value: { id: 1, ttl: 3, entries: [], ...v } } });
    const reply = (entries: ReturnType<typeof entry>[]) => enc({ kind: { $case: "shuffleReply", value: { id: 1, entries } } });
    const forward = (peer: ReturnType<typeof entry> | undefined, ttl = 3) => enc({ kind: { $case: "forwardJoin", value: { peer, ttl } } });
    const many = (n: number) => Array.from({ length: n }, (_, i) => entry(1 + i));
    const rejected: [string, Uint8Array][] = [
      ["a Shuffle of 17 entries", shuffle({ entries: many(MAX_VIEW_ENTRIES + 1) })],
      ["a ShuffleReply of 17 entries", reply(many(MAX_VIEW_ENTRIES + 1))],
      ["a Shuffle walk of 17", shuffle({ ttl: MAX_VIEW_TTL + 1 })],
      ["a ForwardJoin walk of 17", forward(entry(1), MAX_VIEW_TTL + 1)],
      ["a ForwardJoin without its peer", forward(undefined)],
      ["an entry with an empty host", reply([{ ...entry(1), host: "" }])],
      ["an entry host of 254 ASCII bytes", reply([{ ...entry(1), host: "h".repeat(254) }])],
      // 127 characters, 254 bytes: the bound is on bytes.
      ["an entry host of 254 UTF-8 bytes", shuffle({ entries: [{ ...entry(1), host: "é".repeat(127) }] })],
      ["an entry of port 0", shuffle({ entries: [entry(0)] })],
      ["an entry of port 65536", reply([entry(65536)])],
      ["an entry ID of 31 bytes", reply([{ ...entry(1), id: id.subarray(1) }])],
      ["an origin of port 0", shuffle({ origin: entry(0) })],
      ["a ForwardJoin peer of a 33-byte ID", forward({ ...entry(1), id: new Uint8Array(33) })],
    ];
    for (const [what, bytes] of rejected) expect([what, codeOf(() => decodeLinkMessage(bytes))]).toEqual([what, "malformed"]);
    // The same bounds inside a Batch.
    const batch = decodeLinkMessage(encodeBatch([encodeLinkMessage(viewMessages[0]!), reply([entry(0)])]));
    expect(codeOf(() => batch.kind?.$case === "batch" && unpackBatch(batch.kind.value))).toBe("malformed");
    // Shuffle is field 16 (a two-byte tag): a zero tag inside it is undecodable, not the end of it.
    expect(codeOf(() => decodeLinkMessage(Uint8Array.from([0x82, 0x01, 0x03, 0x08, 0x01, 0x00])))).toBe("undecodable");
  });

  test("a zero tag inside an IHave's entry, or a Prune's body, is undecodable (not read as the end)", () => {
    // IHave (field 8) { entries (1) { id_prefix (1) = 1 byte, then a zero tag } }.
    expect(codeOf(() => decodeLinkMessage(Uint8Array.from([0x42, 0x06, 0x0a, 0x04, 0x0a, 0x01, 0xcd, 0x00])))).toBe("undecodable");
    // Prune (field 10) { a zero tag }.
    expect(codeOf(() => decodeLinkMessage(Uint8Array.from([0x52, 0x01, 0x00])))).toBe("undecodable");
    // A Graft's prefix whose length runs past the message.
    expect(codeOf(() => decodeLinkMessage(Uint8Array.from([0x4a, 0x03, 0x0a, 0x08, 0xcd])))).toBe("undecodable");
  });

  test("a Batch carries several messages in order; one message is sent bare; nested, empty or bad entries are refused", () => {
    const encoded = examples.map(encodeLinkMessage);
    const batch = decodeLinkMessage(encodeBatch(encoded));
    expect(batch.kind?.$case).toBe("batch");
    if (batch.kind?.$case !== "batch") return;
    expect(unpackBatch(batch.kind.value)).toEqual(examples);
    expect(encodeBatch([encoded[0]!])).toBe(encoded[0]!);
    const unpack = (messages: Uint8Array[]) => () => {
      const m = decodeLinkMessage(encodeLinkMessage({ kind: { $case: "batch", value: { messages } } }));
      if (m.kind?.$case === "batch") unpackBatch(m.kind.value);
    };
    expect(codeOf(unpack([encoded[0]!, encodeBatch(encoded.slice(0, 2))]))).toBe("malformed");
    expect(codeOf(unpack([]))).toBe("malformed");
    expect(codeOf(unpack([encoded[0]!, new Uint8Array([0x0f])]))).toBe("undecodable");
    expect(codeOf(unpack([encoded[0]!, new Uint8Array(0)]))).toBe("unknown-message");
  });

  test("truncated or corrupted encodings are undecodable", () => {
    const bytes = encodeLinkMessage(examples[0]!);
    expect(codeOf(() => decodeLinkMessage(bytes.subarray(0, bytes.length - 1)))).toBe("undecodable");
    expect(codeOf(() => decodeLinkMessage(new Uint8Array([0x0f])))).toBe("undecodable"); // wire type 7
  });

  test("property: random bytes give a message or a P2PProtocolError, nothing else", () => {
    const codes = new Set<string>();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          decodeLinkMessage(bytes);
        } catch (e) {
          if (!(e instanceof P2PProtocolError)) throw e;
          codes.add(e.code);
        }
      }),
      { numRuns: 3000 },
    );
    // Also mutations of valid messages, which reach deeper into the decoder than uniform noise.
    fc.assert(
      fc.property(fc.constantFrom(...examples), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 }))), (m, flips) => {
        const bytes = encodeLinkMessage(m).slice(0, 300);
        for (const [at, mask] of flips) bytes[at % bytes.length]! ^= mask;
        try {
          decodeLinkMessage(bytes);
        } catch (e) {
          if (!(e instanceof P2PProtocolError)) throw e;
          codes.add(e.code);
        }
      }),
      { numRuns: 3000 },
    );
    expect([...codes].sort()).toEqual(["malformed", "undecodable", "unknown-message"]);
  });
});

describe("canonical decoding (handshake messages)", () => {
  const m1 = { ephemeral: id, initiatorId: id, powNonce: new Uint8Array(8) };
  const bytes = encodeMessage(HandshakeInit, m1);

  test("accepts exactly our encoding", () => {
    expect(decodeCanonical(HandshakeInit, bytes, "M1")).toEqual(m1);
  });

  test("refuses trailing bytes, duplicated fields and reordered fields that decode to the same message", () => {
    const trailing = new Uint8Array([...bytes, 0x00]);
    const duplicated = new Uint8Array([0x0a, 0x01, 0x00, ...bytes]);
    const reordered = new Uint8Array([...bytes.subarray(34), ...bytes.subarray(0, 34)]);
    for (const variant of [trailing, duplicated, reordered]) {
      expect(codeOf(() => decodeCanonical(HandshakeInit, variant, "M1"))).toBe("non-canonical");
    }
  });
});
