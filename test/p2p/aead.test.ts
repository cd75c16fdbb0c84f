import { expect, test } from "bun:test";
import { chacha20, chacha20poly1305 } from "@noble/ciphers/chacha.js";
import fc from "fast-check";
import { aeadModule } from "../../scripts/gen-aead-wasm.ts";
import { AEAD_IMPL, AeadScratch, aeadOpen, aeadOpenPortable, aeadSeal, aeadSealPortable } from "../../src/p2p/aead.ts";
import { WASM_AEAD_KIND } from "../../src/p2p/aead-wasm.ts";
import { AEAD_SIMD_WASM_BASE64, AEAD_WASM_BASE64 } from "../../src/p2p/aead-wasm.gen.ts";

// Both implementations: the WebAssembly one (what runs here) and the TypeScript fallback.
const impls = [
  ["wasm", aeadSeal, aeadOpen],
  ["portable", aeadSealPortable, aeadOpenPortable],
] as const;

test("the WebAssembly AEAD runs here (with SIMD), from the bytes the generator emits now", () => {
  expect([AEAD_IMPL, WASM_AEAD_KIND]).toEqual(["wasm", "simd"]);
  // Else: bun scripts/gen-aead-wasm.ts
  expect(AEAD_SIMD_WASM_BASE64).toBe(Buffer.from(aeadModule(true)).toString("base64"));
  expect(AEAD_WASM_BASE64).toBe(Buffer.from(aeadModule(false)).toString("base64"));
});

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));

for (const [impl, aeadSeal, aeadOpen] of impls) {
test(`${impl}: RFC 8439 §2.8.2 test vector: ciphertext and tag byte for byte, and it opens again`, () => {
  const key = hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f");
  const nonce = hex("070000004041424344454647");
  const ad = hex("50515253c0c1c2c3c4c5c6c7");
  const plaintext = new TextEncoder().encode(
    "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
  );
  const sealed = aeadSeal(new AeadScratch(), key, nonce, ad, plaintext);
  expect(Buffer.from(sealed.subarray(0, 16)).toString("hex")).toBe("d31a8d34648e60db7b86afbc53ef7ec2");
  expect(Buffer.from(sealed.subarray(-16)).toString("hex")).toBe("1ae10b594f09e26a7e902ecbd0600691");
  expect(aeadOpen(new AeadScratch(), key, nonce, ad, sealed)).toEqual(plaintext);
});

test(`${impl}: equal to noble's chacha20poly1305 for random keys, nonces, AD and lengths; any flipped bit fails to open`, () => {
  const scratch = new AeadScratch(); // shared across runs, as in production: reuse must not leak between messages
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.uint8Array({ minLength: 12, maxLength: 12 }),
      fc.uint8Array({ maxLength: 40 }),
      fc.uint8Array({ maxLength: 3000 }),
      fc.nat(),
      (key, nonce, ad, plaintext, flip) => {
        const sealed = aeadSeal(scratch, key, nonce, ad, plaintext);
        expect(sealed).toEqual(chacha20poly1305(key, nonce, ad).encrypt(plaintext));
        expect(aeadOpen(scratch, key, nonce, ad, sealed)).toEqual(plaintext);
        const bit = flip % (sealed.length * 8);
        sealed[bit >> 3]! ^= 1 << (bit & 7);
        expect(aeadOpen(scratch, key, nonce, ad, sealed)).toBeUndefined();
      },
    ),
    { numRuns: 300 },
  );
});

test(`${impl}: too short to hold a tag: does not open`, () => {
  expect(aeadOpen(new AeadScratch(), new Uint8Array(32), new Uint8Array(12), new Uint8Array(0), new Uint8Array(15))).toBeUndefined();
});

test(`${impl}: equal to noble at every length from 0 to 300 and at the largest frames (memory grows), with and without AD`, () => {
  const scratch = new AeadScratch();
  const key = Uint8Array.from({ length: 32 }, (_, i) => i * 7);
  const nonce = Uint8Array.from({ length: 12 }, (_, i) => 255 - i);
  const lengths = [...Array(301).keys(), 1023, 1024, 1025, 32 * 1024, 128 * 1024, 200_000];
  for (const ad of [new Uint8Array(0), new Uint8Array(32).fill(9), new Uint8Array(17).fill(3)]) {
    for (const n of lengths) {
      const plaintext = Uint8Array.from({ length: n }, (_, i) => (i * 31 + n) & 0xff);
      const sealed = aeadSeal(scratch, key, nonce, ad, plaintext);
      if (Buffer.compare(sealed, chacha20poly1305(key, nonce, ad).encrypt(plaintext)) !== 0) throw new Error(`sealed differs at ${n}, AD ${ad.length}`);
      if (Buffer.compare(aeadOpen(scratch, key, nonce, ad, sealed)!, plaintext) !== 0) throw new Error(`opened differs at ${n}, AD ${ad.length}`);
    }
  }
});
}

test("both WebAssembly modules' ChaCha20 (with and without SIMD) give noble's keystream at every length to 600 bytes", () => {
  const key = Uint8Array.from({ length: 32 }, (_, i) => 3 * i + 1);
  const nonce = Uint8Array.from({ length: 12 }, (_, i) => 200 - i);
  for (const base64 of [AEAD_SIMD_WASM_BASE64, AEAD_WASM_BASE64]) {
    const w = new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(base64, "base64")), {}).exports as unknown as {
      memory: WebAssembly.Memory;
      chacha(counter: number, data: number, len: number): void;
    };
    const mem = new Uint8Array(w.memory.buffer);
    mem.set(key, 0);
    mem.set(nonce, 32);
    for (let n = 0; n <= 600; n++) {
      const data = Uint8Array.from({ length: n }, (_, i) => (i * 13) & 0xff);
      mem.set(data, 1024);
      w.chacha(7, 1024, n);
      const expected = chacha20(key, nonce, data, undefined, 7);
      if (Buffer.compare(mem.subarray(1024, 1024 + n), expected) !== 0) throw new Error(`keystream differs at length ${n}`);
    }
  }
});
