/**
 * ChaCha20-Poly1305 (RFC 8439 §2.8) on the WebAssembly ChaCha20 and Poly1305 of src/p2p/aead-wasm.gen.ts
 * (scripts/gen-aead-wasm.ts): the key, the nonce and the MAC input — AD and ciphertext each padded to 16 bytes, then
 * the two lengths — are laid out in the module's memory, so one call computes the keystream and one the tag, and
 * nothing is allocated but the result. src/p2p/aead.ts uses it where WebAssembly runs (everywhere Bun does) and keeps
 * its TypeScript composition as the fallback; test/p2p/aead.test.ts holds both to noble's AEAD byte for byte.
 * Must never return a view of the module's memory (the next call overwrites it) or release plaintext before the tag
 * has verified.
 */
import { AEAD_WASM_BASE64 } from "./aead-wasm.gen.ts";

const TAG_BYTES = 16;
// Memory layout (bytes): key and nonce where chacha() reads them, the one-time Poly1305 key block, the tag, then the
// MAC input (AD, ciphertext, lengths).
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

function instantiate(): Exports | undefined {
  try {
    return new WebAssembly.Instance(new WebAssembly.Module(Buffer.from(AEAD_WASM_BASE64, "base64")), {}).exports as unknown as Exports;
  } catch {
    return undefined;
  }
}

const wasm = instantiate();
let bytes = wasm ? new Uint8Array(wasm.memory.buffer) : new Uint8Array(0);
let words = wasm ? new Uint32Array(wasm.memory.buffer) : new Uint32Array(0);

export const wasmAeadAvailable = wasm !== undefined;

const up16 = (n: number) => (n + 15) & ~15;
const up64 = (n: number) => (n + 63) & ~63;

/** Key, nonce, the Poly1305 key (keystream block 0), the AD padded; returns where the ciphertext goes. */
function begin(w: Exports, key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, length: number): number {
  const ct = MSG + up16(ad.length);
  const top = ct + Math.max(up64(length), up16(length) + 16);
  if (top > bytes.length) {
    w.memory.grow(Math.ceil((top - bytes.length) / PAGE));
    bytes = new Uint8Array(w.memory.buffer);
    words = new Uint32Array(w.memory.buffer);
  }
  bytes.set(key, KEY);
  bytes.set(nonce, NONCE);
  bytes.fill(0, POLY_KEY, POLY_KEY + 64);
  w.chacha(0, POLY_KEY, 64);
  bytes.set(ad, MSG);
  bytes.fill(0, MSG + ad.length, ct);
  return ct;
}

/** The tag over the AD and the `length` ciphertext bytes at `ct` (padding and the length block written here). */
function mac(w: Exports, adLength: number, ct: number, length: number): void {
  const lengths = ct + up16(length);
  bytes.fill(0, ct + length, lengths);
  words[lengths / 4] = adLength;
  words[lengths / 4 + 1] = 0;
  words[lengths / 4 + 2] = length;
  words[lengths / 4 + 3] = 0;
  w.poly(MSG, (lengths + 16 - MSG) / 16, POLY_KEY, TAG);
}

/** Seals `plaintext` into `output` (plaintext + 16 bytes). */
export function wasmSeal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plaintext: Uint8Array, output: Uint8Array): void {
  const w = wasm!;
  const length = plaintext.length;
  const ct = begin(w, key, nonce, ad, length);
  bytes.set(plaintext, ct);
  w.chacha(1, ct, length);
  mac(w, ad.length, ct, length);
  output.set(bytes.subarray(ct, ct + length), 0);
  output.set(bytes.subarray(TAG, TAG + TAG_BYTES), length);
}

/** The plaintext of `sealed`, or undefined (and no plaintext computed) when its tag does not verify. */
export function wasmOpen(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  const w = wasm!;
  const length = sealed.length - TAG_BYTES;
  const ct = begin(w, key, nonce, ad, length);
  bytes.set(sealed.subarray(0, length), ct);
  mac(w, ad.length, ct, length);
  // Constant-time comparison: the tag is secret until it matches.
  let diff = 0;
  for (let i = 0; i < TAG_BYTES; i++) diff |= bytes[TAG + i]! ^ sealed[length + i]!;
  if (diff !== 0) return undefined;
  w.chacha(1, ct, length);
  return bytes.slice(ct, ct + length);
}
