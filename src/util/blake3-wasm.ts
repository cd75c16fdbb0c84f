/**
 * BLAKE3 (default 32-byte output, unkeyed) over the concatenation of a few byte arrays, on the WebAssembly
 * compression of src/util/blake3-wasm.gen.ts (scripts/gen-blake3-wasm.ts): the input is copied once into the
 * module's memory, each chunk is compressed in one call, and the chunk tree (BLAKE3 §2.1, the reference
 * implementation's chaining-value stack) is merged here. About 5–10 times noble's speed in Bun, and no allocation but
 * the 32-byte result. Where WebAssembly cannot be instantiated, @noble/hashes computes the same digest.
 *
 * Shared by the item IDs (src/gossip/item-id.ts) and anything else that hashes; test/util/blake3-wasm.test.ts proves
 * equality with @noble/hashes over many lengths. Must never be used where a key or an extended output is needed
 * (neither is implemented) or return a view into its memory (the next call overwrites it).
 */
import { blake3 as nobleBlake3 } from "@noble/hashes/blake3.js";
import { BLAKE3_WASM_BASE64 } from "./blake3-wasm.gen.ts";

const CHUNK_BYTES = 1024;
const PARENT = 4;
const ROOT = 8;
const IV = Uint32Array.of(0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19);

// Memory layout (bytes): the working chaining value, a parent's 64-byte block, the stack of chunk chaining values
// (at most 54 levels for any input below 2^64 bytes), then the input.
const CV = 0;
const BLOCK = 64;
const STACK = 128;
const INPUT = 4096;
const PAGE = 65536;

type Exports = {
  memory: WebAssembly.Memory;
  compress(cv: number, block: number, blockLen: number, counterLo: number, counterHi: number, flags: number): void;
  chunk(input: number, len: number, counterLo: number, counterHi: number, endFlags: number, cv: number): void;
};

function instantiate(): Exports | undefined {
  try {
    const module = new WebAssembly.Module(Buffer.from(BLAKE3_WASM_BASE64, "base64"));
    return new WebAssembly.Instance(module, {}).exports as unknown as Exports;
  } catch {
    return undefined;
  }
}

const wasm = instantiate();
let bytes = wasm ? new Uint8Array(wasm.memory.buffer) : new Uint8Array(0);
let words = wasm ? new Uint32Array(wasm.memory.buffer) : new Uint32Array(0);

/** Which implementation runs here ("wasm", or "noble" where WebAssembly is unavailable). */
export const BLAKE3_IMPL: "wasm" | "noble" = wasm ? "wasm" : "noble";

/** BLAKE3 of parts[0] ‖ parts[1] ‖ …, 32 bytes, freshly allocated. */
export function blake3(...parts: Uint8Array[]): Uint8Array {
  if (wasm === undefined) {
    const h = nobleBlake3.create();
    for (const p of parts) h.update(p);
    return h.digest();
  }
  let total = 0;
  for (const p of parts) total += p.length;
  const padded = INPUT + total + 64;
  if (padded > bytes.length) grow(padded);
  let at = INPUT;
  for (const p of parts) {
    bytes.set(p, at);
    at += p.length;
  }
  // The last block is read whole: the bytes after the input up to the next 64 must be zero.
  bytes.fill(0, at, INPUT + Math.ceil(Math.max(total, 1) / 64) * 64);
  hashInput(wasm, total);
  return bytes.slice(CV, CV + 32);
}

function grow(needed: number): void {
  const memory = wasm!.memory;
  memory.grow(Math.ceil((needed - memory.buffer.byteLength) / PAGE));
  bytes = new Uint8Array(memory.buffer);
  words = new Uint32Array(memory.buffer);
}

/** The root chaining value of the `total` input bytes at INPUT, left at CV. */
function hashInput(w: Exports, total: number): void {
  const chunks = Math.max(1, Math.ceil(total / CHUNK_BYTES));
  if (chunks === 1) {
    w.chunk(INPUT, total, 0, 0, ROOT, CV);
    return;
  }
  let depth = 0;
  for (let i = 0; i < chunks - 1; i++) {
    w.chunk(INPUT + i * CHUNK_BYTES, CHUNK_BYTES, i >>> 0, Math.floor(i / 2 ** 32), 0, CV);
    // Completed subtrees merge as soon as they are whole: one per trailing zero bit of the chunk count so far.
    for (let n = i + 1; (n & 1) === 0; n >>>= 1) parent(w, STACK + 32 * --depth, 0);
    bytes.copyWithin(STACK + 32 * depth++, CV, CV + 32);
  }
  const last = chunks - 1;
  w.chunk(INPUT + last * CHUNK_BYTES, total - last * CHUNK_BYTES, last >>> 0, Math.floor(last / 2 ** 32), 0, CV);
  while (depth > 0) {
    depth--;
    parent(w, STACK + 32 * depth, depth === 0 ? ROOT : 0);
  }
}

/** CV = the chaining value of the parent of the subtree at `left` and the one at CV. */
function parent(w: Exports, left: number, flags: number): void {
  bytes.copyWithin(BLOCK, left, left + 32);
  bytes.copyWithin(BLOCK + 32, CV, CV + 32);
  words.set(IV, CV / 4);
  w.compress(CV, BLOCK, 64, 0, 0, PARENT | flags);
}
