// The hand-tuned Payload and Batch codecs (src/p2p/wire-fast.ts) against the generated code, which stays the
// reference: the encoders write its very bytes, and decodeLinkMessage (fast path first) gives for any bytes what the
// generic path gives (the same message, or the same error code), whether or not the fast path took them.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { P2PProtocolError } from "../../src/errors.ts";
import { LinkMessage, type Payload } from "../../src/p2p/proto/gossip.ts";
import { decodeBatchMessage, decodeIHaveMessage, decodePayloadMessage, encodeBatchMessage, encodeIHaveMessage, encodePayloadMessage } from "../../src/p2p/wire-fast.ts";
import { decodeLinkMessage, decodeLinkMessageGeneric, encodeLinkMessage } from "../../src/p2p/wire.ts";

const u32 = fc.oneof(fc.constantFrom(0, 1, 127, 128, 255, 256, 16383, 16384, 65535, 2 ** 21, 2 ** 28 - 1, 2 ** 28, 2 ** 32 - 1), fc.nat());
const payloadFields = fc.record({
  messageId: fc.oneof(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.uint8Array({ maxLength: 40 })),
  ttl: u32,
  dataType: u32,
  data: fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 70_000 }).map((n) => new Uint8Array(n).fill(n & 0xff))),
  hops: fc.option(u32, { nil: undefined }),
  replayed: fc.option(fc.boolean(), { nil: undefined }),
});
const payloadMessage = (value: Parameters<typeof encodePayloadMessage>[0]): LinkMessage => ({ kind: { $case: "payload", value } });
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

/** The outcome of a decoder: the message, or the P2PProtocolError code (anything else fails the test). */
function outcome(decode: (b: Uint8Array) => LinkMessage, bytes: Uint8Array): LinkMessage | string {
  try {
    return decode(bytes);
  } catch (e) {
    if (e instanceof P2PProtocolError) return e.code;
    throw e;
  }
}

/** `base` with a few bytes flipped, maybe cut short, maybe with bytes inserted. */
const mutated = (bases: fc.Arbitrary<Uint8Array>) =>
  fc.tuple(bases, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { maxLength: 3 }), fc.option(fc.nat()), fc.option(fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 6 })))).map(([base, flips, cut, insert]) => {
    let bytes = Uint8Array.from(base);
    for (const [at, mask] of flips) if (bytes.length > 0) bytes[at % bytes.length]! ^= mask;
    if (cut !== null) bytes = bytes.subarray(0, cut % (bytes.length + 1));
    if (insert !== null) {
      const at = insert[0] % (bytes.length + 1);
      bytes = Uint8Array.from([...bytes.subarray(0, at), ...insert[1], ...bytes.subarray(at)]);
    }
    return bytes;
  });

describe("hand-tuned Payload and Batch codecs", () => {
  test("encodePayloadMessage writes the generated encoder's bytes for any fields", () => {
    fc.assert(fc.property(payloadFields, (p) => hex(encodePayloadMessage(p)) === hex(encodeLinkMessage(payloadMessage(p)))), { numRuns: 1000 });
  });

  test("encodeBatchMessage writes the generated encoder's bytes for any list of messages", () => {
    const lists = fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 0, max: 40_000 }).map((n) => new Uint8Array(n))), { maxLength: 40 });
    fc.assert(fc.property(lists, (messages) => hex(encodeBatchMessage(messages)) === hex(encodeLinkMessage({ kind: { $case: "batch", value: { messages } } }))), { numRuns: 500 });
  });

  test("an honest encoding takes the fast path and decodes to what the generated decoder gives", () => {
    fc.assert(
      fc.property(payloadFields, (p) => {
        const bytes = encodePayloadMessage(p);
        const fast = decodePayloadMessage(bytes);
        expect(fast).toBeDefined();
        expect(fast).toEqual(decodeMessageValue(bytes));
      }),
      { numRuns: 500 },
    );
    const batch = encodeBatchMessage([encodePayloadMessage({ messageId: new Uint8Array(32), ttl: 3, dataType: 7, data: Uint8Array.of(1) }), Uint8Array.of(0x12, 0)]);
    const generic = decodeLinkMessageGeneric(batch).kind;
    expect(generic?.$case === "batch" && decodeBatchMessage(batch)).toEqual(generic?.$case === "batch" && generic.value.messages);
  });

  test("shapes an honest encoder never writes go the generic way, with the generic result", () => {
    const id = new Uint8Array(32).fill(1);
    const honest = encodePayloadMessage({ messageId: id, ttl: 5, dataType: 9, data: Uint8Array.of(7, 7) });
    const inner = honest.subarray(2);
    const wrap = (body: number[]) => Uint8Array.from([0x0a, body.length, ...body]);
    const odd: [string, Uint8Array][] = [
      ["a field twice (the last wins)", wrap([...inner, 0x10, 0x09])],
      ["fields out of order", wrap([0x18, 0x09, ...inner.subarray(0, 34), 0x10, 0x05])],
      ["a ttl varint of 6 bytes", wrap([...inner.subarray(0, 34), 0x10, 0x85, 0x80, 0x80, 0x80, 0x80, 0x00])],
      ["a ttl past 32 bits (truncated by the generated code)", wrap([...inner.subarray(0, 34), 0x10, 0x81, 0x80, 0x80, 0x80, 0x10])],
      ["replayed = 2", wrap([...inner, 0x30, 0x02])],
      ["an unknown field", wrap([...inner, 0x78, 0x01])],
      ["a field of the wrong wire type", wrap([...inner, 0x2d, 1, 2, 3, 4])],
      ["a second top-level field", Uint8Array.from([...honest, 0x12, 0x00])],
      ["a Batch with an unknown field", Uint8Array.from([0x3a, 0x04, 0x0a, 0x00, 0x10, 0x01])],
    ];
    for (const [what, bytes] of odd) {
      const fast = bytes[0] === 0x3a ? decodeBatchMessage(bytes) : decodePayloadMessage(bytes);
      expect([what, fast]).toEqual([what, undefined]);
      expect([what, outcome(decodeLinkMessage, bytes)]).toEqual([what, outcome(decodeLinkMessageGeneric, bytes)]);
    }
  });

  test("property: for any bytes (mutated payloads and batches, noise), decodeLinkMessage agrees with the generic decoder", () => {
    const honest = payloadFields.map((p) => encodePayloadMessage(p));
    const batches = fc.array(honest, { minLength: 0, maxLength: 4 }).map(encodeBatchMessage);
    const noise = fc.tuple(fc.constantFrom(0x0a, 0x3a), fc.uint8Array({ maxLength: 60 })).map(([tag, rest]) => Uint8Array.from([tag, rest.length, ...rest]));
    let fastTaken = 0;
    fc.assert(
      fc.property(fc.oneof(mutated(honest), mutated(batches), noise, honest), (bytes) => {
        const a = outcome(decodeLinkMessage, bytes);
        const b = outcome(decodeLinkMessageGeneric, bytes);
        expect(a).toEqual(b);
        if (decodePayloadMessage(bytes) !== undefined || decodeBatchMessage(bytes) !== undefined) fastTaken++;
      }),
      { numRuns: 3000 },
    );
    expect(fastTaken).toBeGreaterThan(300); // the comparison covered the fast path, not only the fallback
  });
});

/** The generated decoder alone, without wire.ts's range checks (the fast decoder does not check ranges either). */
function decodeMessageValue(bytes: Uint8Array): Payload | undefined {
  const m = LinkMessage.decode(bytes);
  return m.kind?.$case === "payload" ? m.kind.value : undefined;
}

describe("hand-tuned IHave codec", () => {
  const entry = fc.record({
    id: fc.oneof(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ maxLength: 40 })),
    dataType: fc.oneof(u32, fc.integer({ min: 0, max: 0xffff })),
    hops: fc.oneof(u32, fc.integer({ min: 0, max: 300 })),
  });
  const entries = fc.array(entry, { minLength: 0, maxLength: 300 });
  const MAX = 2 ** 32 - 1;
  const ihaveMessage = (list: { id: Uint8Array; dataType: number; hops: number }[], maxHops: number): LinkMessage => ({
    kind: { $case: "ihave", value: { entries: list.map((e) => ({ idPrefix: e.id, dataType: e.dataType, hops: Math.min(e.hops, maxHops) })) } },
  });

  test("encodeIHaveMessage writes the generated encoder's bytes for any entries, any slice of them, hops cut to the bound", () => {
    fc.assert(
      fc.property(entries, fc.nat(), fc.nat(), fc.constantFrom(255, MAX), (list, a, b, maxHops) => {
        expect(hex(encodeIHaveMessage(list, maxHops))).toBe(hex(encodeLinkMessage(ihaveMessage(list, maxHops))));
        const from = a % (list.length + 1);
        const to = from + (b % (list.length - from + 1));
        expect(hex(encodeIHaveMessage(list, maxHops, from, to))).toBe(hex(encodeLinkMessage(ihaveMessage(list.slice(from, to), maxHops))));
      }),
      { numRuns: 300 },
    );
  });

  test("an honest IHave takes the fast path and decodes to what the generated decoder gives", () => {
    fc.assert(
      fc.property(entries, (list) => {
        const bytes = encodeIHaveMessage(list, MAX);
        const fast = decodeIHaveMessage(bytes);
        expect(fast).toBeDefined();
        const generic = LinkMessage.decode(bytes).kind;
        expect(fast).toEqual(generic?.$case === "ihave" ? generic.value : undefined);
      }),
      { numRuns: 300 },
    );
  });

  test("odd shapes go the generic way; for any bytes (mutated IHaves, noise) decodeLinkMessage agrees with the generic decoder", () => {
    const one = encodeIHaveMessage([{ id: Uint8Array.of(1, 2), dataType: 3, hops: 4 }], 255);
    const odd: [string, Uint8Array][] = [
      ["entry fields out of order", Uint8Array.from([0x42, 0x08, 0x0a, 0x06, 0x10, 0x03, 0x0a, 0x02, 1, 2])],
      ["an unknown entry field", Uint8Array.from([0x42, 0x04, 0x0a, 0x02, 0x20, 0x01])],
      ["an unknown IHave field", Uint8Array.from([...one.subarray(0, 1), one[1]! + 2, ...one.subarray(2), 0x10, 0x01])],
      ["a second top-level field", Uint8Array.from([...one, 0x12, 0x00])],
      ["hops past 32 bits", Uint8Array.from([0x42, 0x09, 0x0a, 0x07, 0x18, 0x81, 0x80, 0x80, 0x80, 0x10, 0x00].slice(0, 11))],
    ];
    for (const [what, bytes] of odd) {
      expect([what, decodeIHaveMessage(bytes)]).toEqual([what, undefined]);
      expect([what, outcome(decodeLinkMessage, bytes)]).toEqual([what, outcome(decodeLinkMessageGeneric, bytes)]);
    }
    const honest = entries.map((list) => encodeIHaveMessage(list, 255));
    const noise = fc.uint8Array({ maxLength: 60 }).map((rest) => Uint8Array.from([0x42, rest.length, ...rest]));
    let fastTaken = 0;
    fc.assert(
      fc.property(fc.oneof(mutated(honest), noise, honest), (bytes) => {
        expect(outcome(decodeLinkMessage, bytes)).toEqual(outcome(decodeLinkMessageGeneric, bytes));
        if (decodeIHaveMessage(bytes) !== undefined) fastTaken++;
      }),
      { numRuns: 3000 },
    );
    expect(fastTaken).toBeGreaterThan(300);
  });
});
