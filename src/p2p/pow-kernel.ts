/**
 * The proof-of-work kernel: BLAKE3(prefix ‖ nonce) specialised to the handshake's 136-byte input (pow-input.ts).
 *
 * The 128-byte prefix is two whole BLAKE3 blocks of the only chunk; they are compressed once per prefix (block 1 with
 * CHUNK_START, block 2 with no flag) into a chaining value, and the part of round 1 that does not read the nonce is
 * precomputed too. Each attempt is then ONE compression of the final block (the nonce; block_len 8, counter 0,
 * CHUNK_END | ROOT), and only output word 0 is formed for difficulties up to 32. The search loop is the WebAssembly
 * SIMD kernel of pow-wasm.gen.ts (four nonces per compression) where the engine has wasm SIMD, else the unrolled
 * TypeScript of pow-kernel.gen.ts; both come from generators in scripts/. This file must never allocate inside
 * search loops, and its digest must always equal powDigest (the test checks it against @noble/hashes).
 */
import { POW_MAX_DIFFICULTY, POW_NONCE_BYTES, POW_PREFIX_BYTES } from "./pow-input.ts";
import { powCompressFinal, powSearchWord0 } from "./pow-kernel.gen.ts";
import { POW_WASM_BASE64 } from "./pow-wasm.gen.ts";

const IV = Uint32Array.of(
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
);
const PERM = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
const CHUNK_START = 1;
const CHUNK_END = 2;
const ROOT = 8;
const BLOCK_LEN = 64;
const TWO_32 = 0x1_0000_0000;

/** Longest run handed to one search call: keeps counts and offsets inside a wasm i32. */
const MAX_RUN = 1 << 30;

/** (pre, lo0, hi, count, mask) → first offset whose output word 0 has no bit in mask, or -1. */
type SearchWord0 = (pre: Int32Array, lo0: number, hi: number, count: number, mask: number) => number;

/** Which search loop a kernel runs: WebAssembly SIMD (four nonces per compression) or unrolled TypeScript. */
export type PowKernelImpl = "wasm" | "ts";

let wasmSearch: SearchWord0 | null | undefined;

/** The SIMD kernel of pow-wasm.gen.ts, instantiated once per thread; null where the engine lacks wasm SIMD. */
function loadWasmSearch(): SearchWord0 | null {
  if (wasmSearch !== undefined) return wasmSearch;
  wasmSearch = null;
  try {
    const bytes = Uint8Array.from(atob(POW_WASM_BASE64), (c) => c.charCodeAt(0));
    if (typeof WebAssembly === "undefined" || !WebAssembly.validate(bytes)) return null;
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes));
    const search = instance.exports.search as (lo0: number, hi: number, count: number, mask: number) => number;
    const table = new Int32Array((instance.exports.memory as WebAssembly.Memory).buffer, 0, 14);
    // One thread runs one search at a time, so the table is simply rewritten before each call.
    wasmSearch = (pre, lo0, hi, count, mask) => {
      table.set(pre);
      return search(lo0, hi, count, mask);
    };
  } catch {
    wasmSearch = null;
  }
  return wasmSearch;
}

function rotr(x: number, n: number): number {
  return (x >>> n) | (x << (32 - n));
}

function g(v: Int32Array, a: number, b: number, c: number, d: number, x: number, y: number): void {
  v[a] = v[a]! + v[b]! + x;
  v[d] = rotr(v[d]! ^ v[a]!, 16);
  v[c] = v[c]! + v[d]!;
  v[b] = rotr(v[b]! ^ v[c]!, 12);
  v[a] = v[a]! + v[b]! + y;
  v[d] = rotr(v[d]! ^ v[a]!, 8);
  v[c] = v[c]! + v[d]!;
  v[b] = rotr(v[b]! ^ v[c]!, 7);
}

/** Plain (looped) BLAKE3 compression, used twice per prefix; returns the next chaining value. */
function compressBlock(cv: Uint32Array, block: Uint8Array, blockLen: number, flags: number): Uint32Array {
  const view = new DataView(block.buffer, block.byteOffset, BLOCK_LEN);
  let m = Array.from({ length: 16 }, (_, i) => view.getUint32(i * 4, true));
  const v = new Int32Array(16);
  v.set(cv, 0);
  v.set(IV.subarray(0, 4), 8);
  v[12] = 0; // counter low: the only chunk is chunk 0
  v[13] = 0;
  v[14] = blockLen;
  v[15] = flags;
  for (let r = 0; r < 7; r++) {
    g(v, 0, 4, 8, 12, m[0]!, m[1]!);
    g(v, 1, 5, 9, 13, m[2]!, m[3]!);
    g(v, 2, 6, 10, 14, m[4]!, m[5]!);
    g(v, 3, 7, 11, 15, m[6]!, m[7]!);
    g(v, 0, 5, 10, 15, m[8]!, m[9]!);
    g(v, 1, 6, 11, 12, m[10]!, m[11]!);
    g(v, 2, 7, 8, 13, m[12]!, m[13]!);
    g(v, 3, 4, 9, 14, m[14]!, m[15]!);
    const prev = m;
    m = PERM.map((p) => prev[p]!);
  }
  const out = new Uint32Array(8);
  for (let i = 0; i < 8; i++) out[i] = v[i]! ^ v[i + 8]!;
  return out;
}

/**
 * The little-endian word-0 mask whose bits are the digest's first `bits` bits (MSB of byte 0 first), bits ≤ 32.
 * Word 0 holds digest bytes 0..3 with byte 0 in its low 8 bits, hence the byte swap.
 */
export function leadingBitsMask(bits: number): number {
  if (bits <= 0) return 0;
  const big = bits >= 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
  return ((big >>> 24) | ((big >>> 8) & 0xff00) | ((big << 8) & 0xff0000) | (big << 24)) | 0;
}

function checkDifficulty(difficulty: number): void {
  if (!Number.isInteger(difficulty) || difficulty < 0 || difficulty > POW_MAX_DIFFICULTY) {
    throw new RangeError(`PowKernel: difficulty must be an integer in 0..${POW_MAX_DIFFICULTY}, got ${difficulty}`);
  }
}

/** Splits a 64-bit nonce (number ≤ 2^53 or bigint < 2^64) into its little-endian words. */
export function nonceWords(nonce: number | bigint): [lo: number, hi: number] {
  if (typeof nonce === "bigint") {
    if (nonce < 0n || nonce >= 1n << 64n) throw new RangeError("nonce must be in 0..2^64-1");
    return [Number(nonce & 0xffffffffn), Number(nonce >> 32n)];
  }
  if (!Number.isSafeInteger(nonce) || nonce < 0) throw new RangeError("nonce must be a safe non-negative integer");
  return [nonce % TWO_32, Math.floor(nonce / TWO_32)];
}

/** The 8 nonce bytes of the PoW input: the 64-bit nonce, little-endian. */
export function nonceBytes(lo: number, hi: number): Uint8Array {
  const out = new Uint8Array(POW_NONCE_BYTES);
  const view = new DataView(out.buffer);
  view.setUint32(0, lo >>> 0, true);
  view.setUint32(4, hi >>> 0, true);
  return out;
}

export class PowKernel {
  /** Chaining value after the two prefix blocks. Int32Array, like every word handed to the unrolled code: a
   *  Uint32Array would hand words ≥ 2^31 over as doubles and make the JIT deoptimise the hot loop. */
  readonly #cv = new Int32Array(8);
  /** Per-prefix constants of the unrolled search (see powSearchWord0). */
  readonly #pre = new Int32Array(14);
  /** Scratch for full compressions; reused so a search past 32 bits allocates nothing either. */
  readonly #out = new Int32Array(8);
  readonly #search: SearchWord0;
  readonly impl: PowKernelImpl;

  /** `impl` "auto" takes the SIMD kernel where the engine has it; "wasm" throws where it does not. */
  constructor(prefix: Uint8Array, impl: PowKernelImpl | "auto" = "auto") {
    if (!(prefix instanceof Uint8Array) || prefix.length !== POW_PREFIX_BYTES) {
      throw new RangeError(`PowKernel: prefix must be ${POW_PREFIX_BYTES} bytes`);
    }
    const cv1 = compressBlock(IV, prefix.subarray(0, BLOCK_LEN), BLOCK_LEN, CHUNK_START);
    this.#cv.set(compressBlock(cv1, prefix.subarray(BLOCK_LEN, 2 * BLOCK_LEN), BLOCK_LEN, 0));
    // Round 1 of the final block: columns 1..3 read message words 2..7, which are zero, so they are fixed here.
    const v = new Int32Array(16);
    v.set(this.#cv, 0);
    v.set(IV.subarray(0, 4), 8);
    v[14] = POW_NONCE_BYTES;
    v[15] = CHUNK_END | ROOT;
    g(v, 1, 5, 9, 13, 0, 0);
    g(v, 2, 6, 10, 14, 0, 0);
    g(v, 3, 7, 11, 15, 0, 0);
    const pre = this.#pre;
    pre[0] = this.#cv[4]!;
    pre[1] = this.#cv[0]! + this.#cv[4]!;
    [v[1], v[5], v[9], v[13], v[2], v[6], v[10], v[14], v[3], v[7], v[11], v[15]].forEach((x, i) => (pre[2 + i] = x!));
    const wasm = impl === "ts" ? null : loadWasmSearch();
    if (impl === "wasm" && !wasm) throw new RangeError("PowKernel: WebAssembly SIMD is not available here");
    this.#search = wasm ?? powSearchWord0;
    this.impl = wasm ? "wasm" : "ts";
  }

  /** BLAKE3(prefix ‖ nonce), 32 bytes: equal to powDigest(prefix, nonce). */
  digest(nonce: Uint8Array): Uint8Array {
    if (!(nonce instanceof Uint8Array) || nonce.length !== POW_NONCE_BYTES) {
      throw new RangeError(`PowKernel: nonce must be ${POW_NONCE_BYTES} bytes`);
    }
    const view = new DataView(nonce.buffer, nonce.byteOffset, POW_NONCE_BYTES);
    return this.digestWords(view.getUint32(0, true), view.getUint32(4, true));
  }

  /** The digest of nonce words (lo, hi). */
  digestWords(lo: number, hi: number): Uint8Array {
    powCompressFinal(this.#cv, lo | 0, hi | 0, this.#out);
    const bytes = new Uint8Array(32);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < 8; i++) view.setUint32(i * 4, this.#out[i]!, true);
    return bytes;
  }

  /**
   * The hot path: tries nonces (lo, hi), (lo, hi) + 1, … for `count` attempts (64-bit counting, wrapping 2^64 to 0)
   * and returns the offset of the first whose digest has ≥ `difficulty` leading zero bits, or -1. Allocates nothing.
   */
  searchWords(lo: number, hi: number, count: number, difficulty: number): number {
    checkDifficulty(difficulty);
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError("PowKernel: count must be an integer ≥ 0");
    lo >>>= 0;
    hi >>>= 0;
    const mask = leadingBitsMask(difficulty);
    const wideMask = difficulty > 32 ? leadingBitsMask(difficulty - 32) : 0;
    let done = 0;
    while (done < count) {
      // One call must not wrap the low word: split the range at the next multiple of 2^32 (and at MAX_RUN).
      const run = Math.min(count - done, TWO_32 - lo, MAX_RUN);
      let from = 0;
      while (from < run) {
        const i = this.#search(this.#pre, (lo + from) | 0, hi | 0, run - from, mask);
        if (i < 0) break;
        if (difficulty <= 32) return done + from + i;
        // Past 32 bits word 0 is all zero here; word 1 decides (rarely reached: p = 2^-32 per attempt).
        powCompressFinal(this.#cv, (lo + from + i) | 0, hi | 0, this.#out);
        if ((this.#out[1]! & wideMask) === 0) return done + from + i;
        from += i + 1;
      }
      done += run;
      lo = (lo + run) % TWO_32;
      if (lo === 0) hi = (hi + 1) >>> 0;
    }
    return -1;
  }

  /** Convenience form: the first nonce in [start, start + count) meeting `difficulty`, as 8 bytes, or null. */
  search(start: number | bigint, count: number, difficulty: number): Uint8Array | null {
    const [lo, hi] = nonceWords(start);
    const i = this.searchWords(lo, hi, count, difficulty);
    if (i < 0) return null;
    const [flo, fhi] = nonceWords((BigInt(hi) * BigInt(TWO_32) + BigInt(lo) + BigInt(i)) & 0xffffffffffffffffn);
    return nonceBytes(flo, fhi);
  }
}
