// The WebAssembly BLAKE3 (src/util/blake3-wasm.ts) against @noble/hashes: every length from 0 to 3 KiB, every chunk
// boundary up to 64 KiB and past it, the BLAKE3 paper's test-vector input pattern, and inputs in several parts.
import { describe, expect, test } from "bun:test";
import { blake3 as noble } from "@noble/hashes/blake3.js";
import { randomBytes } from "node:crypto";
import { blake3Module } from "../../scripts/gen-blake3-wasm.ts";
import { idMatches, itemId } from "../../src/gossip/item-id.ts";
import { BLAKE3_IMPL, blake3 } from "../../src/util/blake3-wasm.ts";
import { BLAKE3_WASM_BASE64 } from "../../src/util/blake3-wasm.gen.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** The official test vectors' input: byte i is i mod 251. */
const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 251);

describe("BLAKE3 in WebAssembly", () => {
  test("runs as WebAssembly here, from the bytes the generator emits now", () => {
    expect(BLAKE3_IMPL).toBe("wasm");
    expect(BLAKE3_WASM_BASE64).toBe(Buffer.from(blake3Module()).toString("base64")); // else: bun scripts/gen-blake3-wasm.ts
  });

  test("the published vector for the empty input and for 1 byte", () => {
    // BLAKE3 test_vectors.json, default hash, first 32 bytes.
    expect(hex(blake3(new Uint8Array(0)))).toBe("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262");
    expect(hex(blake3(pattern(1)))).toBe("2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213");
  });

  test("equals @noble/hashes for every length from 0 to 3072 bytes", () => {
    for (let n = 0; n <= 3072; n++) {
      const data = pattern(n);
      if (hex(blake3(data)) !== hex(noble(data))) throw new Error(`differs at length ${n}`);
    }
  });

  test("equals @noble/hashes around every chunk boundary up to 65 chunks, with random data", () => {
    for (let chunks = 1; chunks <= 65; chunks++) {
      for (const delta of [-1, 0, 1, 63, 64, 65]) {
        const n = chunks * 1024 + delta;
        const data = randomBytes(n);
        expect([n, hex(blake3(data))]).toEqual([n, hex(noble(data))]);
      }
    }
  });

  test("an input in parts hashes as their concatenation; the largest item and a larger input (memory grows)", () => {
    for (const [a, b] of [[0, 0], [2, 0], [2, 64], [2, 1022], [2, 65527], [1000, 30000]] as const) {
      const x = randomBytes(a);
      const y = randomBytes(b);
      expect(hex(blake3(x, y))).toBe(hex(noble(Buffer.concat([x, y]))));
    }
    const big = randomBytes(300_000);
    expect(hex(blake3(big))).toBe(hex(noble(big)));
    // After growing, small inputs still hash right (the padding is cleared each time).
    expect(hex(blake3(pattern(5)))).toBe(hex(noble(pattern(5))));
  });

  test("the result is a fresh array, not a view of the module's memory", () => {
    const first = blake3(pattern(10));
    const copy = Uint8Array.from(first);
    blake3(pattern(2000));
    expect(first).toEqual(copy);
    expect(first.buffer.byteLength).toBe(32);
  });

  test("item IDs are noble's BLAKE3 of the type (u16 big-endian) and the data, for many types and lengths", () => {
    for (const dataType of [0, 1, 255, 256, 1337, 0x7e57, 65535]) {
      for (const n of [0, 1, 62, 63, 64, 65, 1021, 1022, 1023, 2046, 4096, 65527]) {
        const data = randomBytes(n);
        const expected = noble(Uint8Array.from([dataType >>> 8, dataType & 0xff, ...data]));
        expect([dataType, n, hex(itemId(dataType, data))]).toEqual([dataType, n, hex(expected)]);
        expect(idMatches(expected, dataType, data)).toBe(true);
      }
    }
  });
});
