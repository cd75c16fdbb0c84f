/**
 * ChaCha20-Poly1305 (RFC 8439 §2.8) on the WebAssembly ChaCha20 and Poly1305 of src/p2p/aead-wasm.gen.ts
 * (scripts/gen-aead-wasm.ts; four blocks at a time with SIMD, where the engine has it): the key, the nonce and the MAC
 * input — AD and ciphertext each padded to 16 bytes, then the two lengths — are laid out in the module's memory, so
 * one call computes the one-time Poly1305 key and the keystream together (ChaCha20 over [64 zero bytes ‖ data]) and
 * one the tag, and nothing is allocated but the result. src/p2p/aead.ts uses it where WebAssembly runs (everywhere Bun does) and keeps
 * its TypeScript composition as the fallback; test/p2p/aead.test.ts holds both to noble's AEAD byte for byte.
 * Must never return a view of the module's memory (the next call overwrites it) or release plaintext before the tag
 * has verified.
 */
import { AEAD_SIMD_WASM_BASE64, AEAD_WASM_BASE64 } from "./aead-wasm.gen.ts";

const TAG_BYTES = 16;
// Memory layout (bytes): key and nonce where chacha() reads them, the one-time Poly1305 key, the tag, then the MAC
// input (AD, ciphertext, lengths) with room for 64 bytes before the ciphertext, then (to open) a work area.
const KEY = 0;
const NONCE = 32;
const POLY_KEY = 64;
const TAG = 128;
const MSG = 256;
const PAGE = 65536;

type Exports = {
  memory: WebAssembly.Memory;
  chacha(counter: number, data: number, len: number): void;
  poly(msg: number, blocks: number, key: number, tag: number): void;
};

function instantiate(base64: string): Exports | undefined {
  try {
    return new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(base64, "base64")), {}).exports as unknown as Exports;
  } catch {
    return undefined;
  }
}

const simd = instantiate(AEAD_SIMD_WASM_BASE64);
const wasm = simd ?? instantiate(AEAD_WASM_BASE64);
/** What chacha() may overwrite past its data, rounded up to (scripts/gen-aead-wasm.ts CHACHA_STEP). */
const STEP = simd ? 256 : 64;
let bytes = wasm ? new Uint8Array(wasm.memory.buffer) : new Uint8Array(0);
let words = wasm ? new Uint32Array(wasm.memory.buffer) : new Uint32Array(0);

export const wasmAeadAvailable = wasm !== undefined;
/** "simd", "plain" (WebAssembly without SIMD) or "none". */
export const WASM_AEAD_KIND: "simd" | "plain" | "none" = simd ? "simd" : wasm ? "plain" : "none";

const up16 = (n: number) => (n + 15) & ~15;
const upStep = (n: number) => Math.ceil(n / STEP) * STEP;

/** Key and nonce in place, memory for `length` bytes of data; returns where the ciphertext goes in the MAC input. */
function begin(w: Exports, key: Uint8Array, nonce: Uint8Array, adLength: number, length: number): number {
  const ct = MSG + 64 + up16(adLength);
  // The MAC input ends at ct + up16(length) + 16; chacha over [64 zeros ‖ data] from ct − 64 writes up to a step past
  // it; opening uses a work area after both.
  const top = work(ct, length) + upStep(64 + length);
  if (top > bytes.length) {
    w.memory.grow(Math.ceil((top - bytes.length) / PAGE));
    bytes = new Uint8Array(w.memory.buffer);
    words = new Uint32Array(w.memory.buffer);
  }
  bytes.set(key, KEY);
  bytes.set(nonce, NONCE);
  return ct;
}

const work = (ct: number, length: number) => Math.ceil((ct + Math.max(upStep(64 + length) - 64, up16(length) + 16)) / 64) * 64;

/** The tag over the AD (written here, before the ciphertext) and the `length` ciphertext bytes at `ct`, to `tag`
 *  (poly() writes it once it has read every block, so it may go right after the ciphertext). */
function mac(w: Exports, ad: Uint8Array, ct: number, length: number, polyKey: number, tag: number): void {
  const msg = ct - up16(ad.length);
  bytes.set(ad, msg);
  bytes.fill(0, msg + ad.length, ct);
  const lengths = ct + up16(length);
  bytes.fill(0, ct + length, lengths);
  words[lengths / 4] = ad.length;
  words[lengths / 4 + 1] = 0;
  words[lengths / 4 + 2] = length;
  words[lengths / 4 + 3] = 0;
  w.poly(msg, (lengths + 16 - msg) / 16, polyKey, tag);
}

/** Seals `plaintext` into `output` (plaintext + 16 bytes). */
export function wasmSeal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, output: Uint8Array): void {
  const w = wasm!;
  const length = plaintext.length;
  const ct = begin(w, key, nonce, ad.length, length);
  // ChaCha20 from counter 0 over [64 zeros ‖ plaintext]: block 0 is the Poly1305 key, the rest the ciphertext.
  bytes.fill(0, ct - 64, ct);
  bytes.set(plaintext, ct);
  w.chacha(0, ct - 64, 64 + length);
  bytes.copyWithin(POLY_KEY, ct - 64, ct - 32); // before the AD goes where it was
  mac(w, ad, ct, length, POLY_KEY, ct + length);
  output.set(bytes.subarray(ct, ct + length + TAG_BYTES), 0);
}

/** The plaintext of `sealed`, or undefined when its tag does not verify (the plaintext is computed aside and only
 *  returned once the tag over the ciphertext matched). */
export function wasmOpen(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  const w = wasm!;
  const length = sealed.length - TAG_BYTES;
  const ct = begin(w, key, nonce, ad.length, length);
  const ciphertext = sealed.subarray(0, length);
  bytes.set(ciphertext, ct);
  const out = work(ct, length);
  bytes.fill(0, out, out + 64);
  bytes.set(ciphertext, out + 64);
  w.chacha(0, out, 64 + length);
  mac(w, ad, ct, length, out, TAG);
  // Constant-time comparison: the tag is secret until it matches.
  let diff = 0;
  for (let i = 0; i < TAG_BYTES; i++) diff |= bytes[TAG + i]! ^ sealed[length + i]!;
  if (diff !== 0) return undefined;
  return bytes.slice(out + 64, out + 64 + length);
}
