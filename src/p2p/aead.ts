/**
 * ChaCha20-Poly1305 (RFC 8439 §2.8) composed from @noble/ciphers' ChaCha20 and Poly1305, for the per-frame hot path.
 * noble's own AEAD runs ChaCha20 twice per message (counter 0 for the Poly1305 key, then counter 1.. for the data)
 * and validates and allocates per call; at 64-byte frames that fixed cost was most of a link's CPU. Here one
 * ChaCha20 call over [64 zero bytes ‖ data] yields both: block 0 is the one-time key, blocks 1.. the keystream.
 * Byte-for-byte equal to noble's chacha20poly1305 (tested with RFC 8439 vectors and random inputs).
 *
 * Where WebAssembly runs (src/p2p/aead-wasm.ts: ChaCha20 and Poly1305 compiled from scripts/gen-aead-wasm.ts),
 * aeadSeal/aeadOpen use that instead, several times faster and without allocating per frame; the composition here is
 * the fallback (aeadSealPortable/aeadOpenPortable) and is tested against noble as well.
 */
import { Poly1305 } from "@noble/ciphers/_poly1305.js";
import { chacha20 } from "@noble/ciphers/chacha.js";
import { wasmAeadAvailable, wasmOpen, wasmSeal } from "./aead-wasm.ts";

/** Which implementation aeadSeal/aeadOpen run here. */
export const AEAD_IMPL: "wasm" | "portable" = wasmAeadAvailable ? "wasm" : "portable";

export const AEAD_TAG_BYTES = 16;
const PAD = new Uint8Array(16);

/** Reusable working memory: [64-byte key block ‖ data], grown to the largest message seen. */
export class AeadScratch {
  private buffer = new Uint8Array(64 + 1024);

  /** ChaCha20(key, nonce, counter 0) over [zeros(64) ‖ data]: returns [poly key block ‖ data XOR keystream]. */
  keystreamXor(key: Uint8Array, nonce: Uint8Array, data: Uint8Array): Uint8Array {
    const needed = 64 + data.length;
    if (this.buffer.length < needed) this.buffer = new Uint8Array(Math.max(needed, this.buffer.length * 2));
    const work = this.buffer.subarray(0, needed);
    work.fill(0, 0, 64);
    work.set(data, 64);
    return chacha20(key, nonce, work, work, 0);
  }
}

/**
 * noble's Poly1305.update() first copies its input with Uint8Array.from(), which Bun runs through the iterator
 * protocol: for 1 KiB frames that copy was a third of a node's CPU. Whole blocks therefore go to the block function
 * noble's update() itself uses (`process`, private in its typings), only when no partial block is buffered, so the
 * result is the same; the tail still goes through update(). The RFC vector and the property test against noble's
 * AEAD guard this if noble's internals change.
 */
type BlockMac = { process?: (data: Uint8Array, offset: number) => void; pos?: number };

function macUpdate(mac: Poly1305, data: Uint8Array): void {
  const raw = mac as unknown as BlockMac;
  const whole = data.length - (data.length % 16);
  if (typeof raw.process !== "function" || raw.pos !== 0 || whole === 0) {
    mac.update(data);
    return;
  }
  for (let pos = 0; pos < whole; pos += 16) raw.process(data, pos);
  if (whole < data.length) mac.update(data.subarray(whole));
}

function tag(polyKey: Uint8Array, ad: Uint8Array, ciphertext: Uint8Array, out: Uint8Array): void {
  const mac = new Poly1305(polyKey);
  if (ad.length > 0) {
    macUpdate(mac, ad);
    if (ad.length % 16 !== 0) mac.update(PAD.subarray(ad.length % 16));
  }
  macUpdate(mac, ciphertext);
  if (ciphertext.length % 16 !== 0) mac.update(PAD.subarray(ciphertext.length % 16));
  const lengths = new Uint8Array(16);
  const view = new DataView(lengths.buffer);
  view.setUint32(0, ad.length, true);
  view.setUint32(8, ciphertext.length, true);
  mac.update(lengths);
  mac.digestInto(out);
}

/** Seals `plaintext` into `output` (length plaintext + 16, allocated when absent); returns the output. */
export function aeadSeal(
  scratch: AeadScratch,
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  plaintext: Uint8Array,
  output: Uint8Array = new Uint8Array(plaintext.length + AEAD_TAG_BYTES),
): Uint8Array {
  if (!wasmAeadAvailable) return aeadSealPortable(scratch, key, nonce, ad, plaintext, output);
  if (output.length !== plaintext.length + AEAD_TAG_BYTES) throw new RangeError("aeadSeal: output must be plaintext + 16 bytes");
  wasmSeal(key, nonce, ad, plaintext, output);
  return output;
}

/** Opens a sealed message; returns undefined (and no plaintext) when the tag does not verify. */
export function aeadOpen(scratch: AeadScratch, key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  if (!wasmAeadAvailable) return aeadOpenPortable(scratch, key, nonce, ad, sealed);
  if (sealed.length < AEAD_TAG_BYTES) return undefined;
  return wasmOpen(key, nonce, ad, sealed);
}

/** aeadSeal in TypeScript on noble's ChaCha20 and Poly1305 (the fallback). */
export function aeadSealPortable(
  scratch: AeadScratch,
  key: Uint8Array,
  nonce: Uint8Array,
  ad: Uint8Array,
  plaintext: Uint8Array,
  output: Uint8Array = new Uint8Array(plaintext.length + AEAD_TAG_BYTES),
): Uint8Array {
  if (output.length !== plaintext.length + AEAD_TAG_BYTES) throw new RangeError("aeadSeal: output must be plaintext + 16 bytes");
  const work = scratch.keystreamXor(key, nonce, plaintext);
  const ciphertext = output.subarray(0, plaintext.length);
  ciphertext.set(work.subarray(64));
  tag(work.subarray(0, 32), ad, ciphertext, output.subarray(plaintext.length));
  return output;
}

/** aeadOpen in TypeScript on noble's ChaCha20 and Poly1305 (the fallback). */
export function aeadOpenPortable(scratch: AeadScratch, key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Uint8Array | undefined {
  if (sealed.length < AEAD_TAG_BYTES) return undefined;
  const ciphertext = sealed.subarray(0, sealed.length - AEAD_TAG_BYTES);
  const work = scratch.keystreamXor(key, nonce, ciphertext);
  const expected = new Uint8Array(AEAD_TAG_BYTES);
  tag(work.subarray(0, 32), ad, ciphertext, expected);
  // Constant-time comparison: the tag is secret until it matches.
  let diff = 0;
  const given = sealed.subarray(ciphertext.length);
  for (let i = 0; i < AEAD_TAG_BYTES; i++) diff |= expected[i]! ^ given[i]!;
  if (diff !== 0) return undefined;
  return work.slice(64);
}
