import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { ApiProtocolError } from "../../src/errors.ts";
import {
  type ApiMessage,
  MAX_DATA_SIZE,
  decodeMessage,
  encodeAnnounce,
  encodeMessage,
  encodeNotification,
  encodeNotify,
  encodeRpsPeer,
  encodeRpsQuery,
  encodeValidation,
  parseIp,
} from "../../src/api/codec.ts";
import { MessageReader } from "../../src/api/reader.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function header(size: number, type: number, totalLength = size): Uint8Array {
  const bytes = new Uint8Array(Math.max(totalLength, 4));
  new DataView(bytes.buffer).setUint16(0, size);
  new DataView(bytes.buffer).setUint16(2, type);
  return bytes.subarray(0, totalLength);
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (error) {
    if (error instanceof ApiProtocolError) return error.code;
    throw error;
  }
  throw new Error("did not throw");
}

describe("encoding: exact bytes", () => {
  test("the course client's ANNOUNCE (TTL 4, type 1337, deadbeef)", () => {
    const bytes = encodeAnnounce({ ttl: 4, dataType: 1337, data: hex("deadbeef") });
    expect(toHex(bytes)).toBe("000c01f4" + "04" + "00" + "0539" + "deadbeef");
  });
  test("NOTIFY, NOTIFICATION, VALIDATION, RPS QUERY", () => {
    expect(toHex(encodeNotify({ dataType: 1337 }))).toBe("000801f500000539");
    expect(toHex(encodeNotification({ messageId: 0xabcd, dataType: 7, data: hex("01") }))).toBe("000901f6abcd000701");
    expect(toHex(encodeValidation({ messageId: 258, valid: true }))).toBe("000801f701020001");
    expect(toHex(encodeValidation({ messageId: 258, valid: false }))).toBe("000801f701020000");
    expect(toHex(encodeRpsQuery())).toBe("0004021c");
  });
  test("RPS PEER with IPv4 and IPv6", () => {
    const v4 = encodeRpsPeer({
      port: 6001,
      portmap: [
        { moduleId: 500, port: 6002 },
        { moduleId: 520, port: 6003 },
      ],
      address: "192.0.2.1",
      hostkeyDer: hex("3082"),
    });
    expect(toHex(v4)).toBe("0016021d" + "1771" + "02" + "00" + "01f41772" + "02081773" + "c0000201" + "3082");
    const v6 = encodeRpsPeer({ port: 1, portmap: [], address: "2001:db8::1", hostkeyDer: hex("aa") });
    expect(toHex(v6)).toBe("0019021d" + "0001" + "00" + "01" + "20010db8000000000000000000000001" + "aa");
  });
  test("sizes that do not fit 16 bits, and bad field values, are RangeErrors", () => {
    expect(encodeAnnounce({ ttl: 0, dataType: 1, data: new Uint8Array(MAX_DATA_SIZE) }).length).toBe(65535);
    expect(() => encodeAnnounce({ ttl: 0, dataType: 1, data: new Uint8Array(MAX_DATA_SIZE + 1) })).toThrow(RangeError);
    expect(() => encodeNotification({ messageId: 1, dataType: 1, data: new Uint8Array(MAX_DATA_SIZE + 1) })).toThrow(
      RangeError,
    );
    expect(() => encodeAnnounce({ ttl: 256, dataType: 1, data: new Uint8Array() })).toThrow(RangeError);
    expect(() => encodeNotify({ dataType: 65536 })).toThrow(RangeError);
    expect(() => encodeValidation({ messageId: -1, valid: true })).toThrow(RangeError);
    expect(() => encodeRpsPeer({ port: 1, portmap: [], address: "example.org", hostkeyDer: hex("aa") })).toThrow(
      RangeError,
    );
    expect(() => encodeRpsPeer({ port: 1, portmap: [], address: "1.2.3.256", hostkeyDer: hex("aa") })).toThrow(
      RangeError,
    );
  });
});

describe("decoding", () => {
  test("boundary sizes: NOTIFY exactly 8, ANNOUNCE 8 to 65535", () => {
    expect(decodeMessage(encodeNotify({ dataType: 9 }))).toEqual({ kind: "notify", dataType: 9 });
    expect(decodeMessage(header(8, 500))).toEqual({ kind: "announce", ttl: 0, dataType: 0, data: new Uint8Array() });
    const big = decodeMessage(header(65535, 500));
    expect(big.kind === "announce" && big.data.length).toBe(65535 - 8);
  });

  test("reserved fields are ignored", () => {
    expect(decodeMessage(hex("000801f5 ffff 0539"))).toEqual({ kind: "notify", dataType: 1337 });
    expect(decodeMessage(hex("000901f4 04 ff 0539 aa"))).toMatchObject({ kind: "announce", ttl: 4, dataType: 1337 });
    expect(decodeMessage(hex("000801f7 0001 fffe"))).toEqual({ kind: "validation", messageId: 1, valid: false });
    expect(decodeMessage(hex("000801f7 0001 fe01"))).toEqual({ kind: "validation", messageId: 1, valid: true });
    const rps = decodeMessage(hex("000d021d 0001 00 fe c0000201 aa"));
    expect(rps).toMatchObject({ kind: "rps-peer", address: "192.0.2.1" });
  });

  test("size-too-small", () => {
    expect(codeOf(() => decodeMessage(new Uint8Array(3)))).toBe("size-too-small");
    for (const size of [0, 1, 3]) expect(codeOf(() => decodeMessage(header(size, 501, 4)))).toBe("size-too-small");
  });

  test("size-mismatch", () => {
    expect(codeOf(() => decodeMessage(header(9, 501)))).toBe("size-mismatch"); // NOTIFY of 9
    expect(codeOf(() => decodeMessage(header(7, 501)))).toBe("size-mismatch");
    expect(codeOf(() => decodeMessage(header(9, 503)))).toBe("size-mismatch"); // VALIDATION of 9
    expect(codeOf(() => decodeMessage(header(7, 500)))).toBe("size-mismatch"); // ANNOUNCE below 8
    expect(codeOf(() => decodeMessage(header(7, 502)))).toBe("size-mismatch");
    expect(codeOf(() => decodeMessage(header(8, 540)))).toBe("size-mismatch"); // RPS QUERY is 4
    expect(codeOf(() => decodeMessage(header(10, 500, 8)))).toBe("size-mismatch"); // size field ≠ byte count
    expect(codeOf(() => decodeMessage(header(8, 500, 10)))).toBe("size-mismatch");
  });

  test("RPS PEER must be consistent: N records, the address, and a hostkey", () => {
    const ok = encodeRpsPeer({
      port: 1,
      portmap: [{ moduleId: 500, port: 2 }],
      address: "10.0.0.1",
      hostkeyDer: hex("aa"),
    });
    expect(decodeMessage(ok).kind).toBe("rps-peer");
    const noHostkey = ok.slice(0, ok.length - 1);
    new DataView(noHostkey.buffer).setUint16(0, noHostkey.length);
    expect(codeOf(() => decodeMessage(noHostkey))).toBe("size-mismatch");
    const claimsV6 = ok.slice();
    claimsV6[7] = 1; // 16 address bytes do not fit
    expect(codeOf(() => decodeMessage(claimsV6))).toBe("size-mismatch");
    const claimsMoreRecords = ok.slice();
    claimsMoreRecords[6] = 3;
    expect(codeOf(() => decodeMessage(claimsMoreRecords))).toBe("size-mismatch");
    expect(codeOf(() => decodeMessage(header(7, 541)))).toBe("size-mismatch");
  });

  test("unknown-type for anything but Gossip 500-503 and RPS 540/541", () => {
    for (const type of [0, 499, 504, 519, 520, 560, 65535]) {
      expect(codeOf(() => decodeMessage(header(8, type)))).toBe("unknown-type");
    }
  });

  test("IPv6 text is RFC 5952 (as WHATWG URLs serialize it)", () => {
    const cases: [string, string][] = [
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
      ["0:0:0:0:0:0:0:0", "::"],
      ["::1", "::1"],
      ["FE80::", "fe80::"],
      ["::ffff:192.0.2.1", "::ffff:c000:201"],
    ];
    for (const [input, want] of cases) {
      const bytes = encodeRpsPeer({ port: 1, portmap: [], address: input, hostkeyDer: hex("aa") });
      expect((decodeMessage(bytes) as { address: string }).address).toBe(want);
    }
    for (const bad of ["1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "12345::", "::g", ":1:2:3:4:5:6:7"]) {
      expect(parseIp(bad)).toBeUndefined();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Properties

const u16 = fc.integer({ min: 0, max: 0xffff });
const data = fc.uint8Array({ maxLength: 200 });
const address = fc.oneof(
  fc.uint8Array({ minLength: 4, maxLength: 4 }).map((b) => b.join(".")),
  fc.ipV6(),
);
const message: fc.Arbitrary<ApiMessage> = fc.oneof(
  fc.record({ kind: fc.constant("announce" as const), ttl: fc.integer({ min: 0, max: 255 }), dataType: u16, data }),
  fc.record({ kind: fc.constant("notify" as const), dataType: u16 }),
  fc.record({ kind: fc.constant("notification" as const), messageId: u16, dataType: u16, data }),
  fc.record({ kind: fc.constant("validation" as const), messageId: u16, valid: fc.boolean() }),
  fc.constant({ kind: "rps-query" as const }),
  fc.record({
    kind: fc.constant("rps-peer" as const),
    port: u16,
    portmap: fc.array(fc.record({ moduleId: u16, port: u16 }), { maxLength: 20 }),
    address,
    hostkeyDer: fc.uint8Array({ minLength: 1, maxLength: 100 }),
  }),
);

/**
 * The address as the decoder writes it; a WHATWG URL host is an independent RFC 5952 serializer. (Bun's URL rejects
 * some valid embedded-IPv4 forms such as "0:0:0:0::0.0.0.0", so the dotted tail is rewritten as two hex groups first.)
 */
function canonical(m: ApiMessage): ApiMessage {
  if (m.kind !== "rps-peer" || !m.address.includes(":")) return m;
  const hexTail = m.address.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_, a, b, c, d) =>
    [(+a << 8) | +b, (+c << 8) | +d].map((g) => g.toString(16)).join(":"),
  );
  return { ...m, address: new URL(`http://[${hexTail}]/`).hostname.slice(1, -1) };
}

describe("properties", () => {
  test("decode(encode(m)) = m", () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(decodeMessage(encodeMessage(m))).toEqual(canonical(m));
      }),
      { numRuns: 500 },
    );
  });

  test("any sequence of messages, cut anywhere, comes out of the reader whole and in order", () => {
    fc.assert(
      fc.property(fc.array(message, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), (messages, cuts) => {
        const encoded = messages.map(encodeMessage);
        const stream = Buffer.concat(encoded);
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const reader = new MessageReader();
        const out: Uint8Array[] = [];
        let from = 0;
        for (const to of [...points, stream.length]) {
          out.push(...reader.push(stream.subarray(from, to)));
          from = to;
        }
        expect(reader.pendingBytes).toBe(0);
        expect(out.map(toHex)).toEqual(encoded.map(toHex));
        expect(out.map(decodeMessage)).toEqual(messages.map(canonical));
      }),
      { numRuns: 300 },
    );
  });

  test("random bytes through reader and decoder raise nothing but ApiProtocolError", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }), (chunks) => {
        const reader = new MessageReader();
        try {
          for (const chunk of chunks) for (const bytes of reader.push(chunk)) decodeMessage(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(ApiProtocolError);
        }
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
        try {
          decodeMessage(bytes);
        } catch (error) {
          expect(error).toBeInstanceOf(ApiProtocolError);
        }
      }),
      { numRuns: 2000 },
    );
    // Headers that look plausible reach every decoder branch, not just the size checks.
    const types = fc.constantFrom(0, 499, 500, 501, 502, 503, 504, 540, 541, 65535);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 48 }), types, fc.uint8Array({ maxLength: 48 }), (size, type, rest) => {
        const bytes = Buffer.concat([header(size, type, 4), rest]);
        try {
          const m = decodeMessage(bytes);
          expect(encodeMessage(m).length).toBe(bytes.length);
        } catch (error) {
          expect(error).toBeInstanceOf(ApiProtocolError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe("reader", () => {
  test("many messages in one chunk, one message over many chunks, pendingBytes", () => {
    const a = encodeNotify({ dataType: 1 });
    const b = encodeAnnounce({ ttl: 1, dataType: 2, data: new Uint8Array(100).fill(7) });
    const reader = new MessageReader();
    expect(reader.push(Buffer.concat([a, a, b.subarray(0, 2)])).map(toHex)).toEqual([toHex(a), toHex(a)]);
    expect(reader.pendingBytes).toBe(2);
    expect(reader.push(b.subarray(2, 50))).toEqual([]);
    expect(reader.pendingBytes).toBe(50);
    expect(reader.push(b.subarray(50)).map(toHex)).toEqual([toHex(b)]);
    expect(reader.pendingBytes).toBe(0);
    expect(reader.push(encodeRpsQuery()).map(toHex)).toEqual(["0004021c"]);
  });

  test("a 65535-byte message one byte at a time", () => {
    const big = encodeAnnounce({ ttl: 0, dataType: 3, data: Uint8Array.from({ length: MAX_DATA_SIZE }, (_, i) => i) });
    const reader = new MessageReader();
    const out: Uint8Array[] = [];
    for (let i = 0; i < big.length; i++) out.push(...reader.push(big.subarray(i, i + 1)));
    expect(out.length).toBe(1);
    expect(Buffer.compare(out[0], big)).toBe(0);
  });

  test("size < 4 throws as soon as its two bytes are seen, and the stream stays dead", () => {
    const reader = new MessageReader();
    expect(reader.push(encodeNotify({ dataType: 1 }).subarray(0, 8))).toHaveLength(1);
    expect(reader.push(hex("00"))).toEqual([]);
    expect(codeOf(() => reader.push(hex("03")))).toBe("size-too-small");
    expect(codeOf(() => reader.push(encodeNotify({ dataType: 1 })))).toBe("size-too-small");
    expect(codeOf(() => new MessageReader().push(hex("000801f500000001 0000")))).toBe("size-too-small");
  });
});
