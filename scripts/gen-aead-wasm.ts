/**
 * Generates src/p2p/aead-wasm.gen.ts: ChaCha20 and Poly1305 (RFC 8439) as a WebAssembly (MVP) module, emitted as
 * bytes by this script (helpers in scripts/wasm-bytes.ts), for the per-frame AEAD of every link. src/p2p/aead.ts
 * lays the message out in the module's memory and composes the AEAD.
 *
 * Run: `bun scripts/gen-aead-wasm.ts` (rewrites the file; commit the output). Two modules, the same exports: one with
 * SIMD (four ChaCha20 blocks at once, one per i32x4 lane, as the PoW kernel does four nonces) and a plain one for
 * engines without SIMD. Each exports `memory` (2 pages, growable) and
 *   chacha(counter, data, len): XORs the ChaCha20 keystream (key at byte 0, nonce at byte 32 of memory, block counter
 *     from `counter`) into `len` bytes at `data`, a whole step at a time: the bytes after `len` up to the next multiple
 *     of CHACHA_STEP (256 with SIMD, 64 without) are overwritten too;
 *   poly(msg, blocks, key, tag): the Poly1305 tag (16 bytes to `tag`) of `blocks` whole 16-byte blocks at `msg` under
 *     the 32-byte one-time key at `key` (the AEAD's MAC input is always whole blocks: both parts are padded to 16 and a
 *     16-byte length block ends it). poly1305-donna's 32-bit form: five 26-bit limbs, 64-bit products.
 * It must never emit anything machine-dependent: the output is deterministic bytes.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { I32, I64, V128, op, simdOp as v, wasmModule } from "./wasm-bytes.ts";

/** Where chacha() reads the key and the nonce. */
export const KEY_AT = 0;
export const NONCE_AT = 32;
const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]; // "expand 32-byte k"

/** chacha: params counter 0, data 1, len 2; locals end 3, k0..k7 4..11, n0..n2 12..14, x0..x15 15..30, ctr 31. */
/** Bytes chacha() may overwrite past `len`, rounded up to: four blocks with SIMD. */
export const CHACHA_STEP = { simd: 256, plain: 64 } as const;

function chachaBody(): number[] {
  const k = (i: number) => 4 + i;
  const n = (i: number) => 12 + i;
  const x = (i: number) => 15 + i;
  const CTR = 31;
  const code: number[] = [];
  for (let i = 0; i < 8; i++) code.push(...op.i32(KEY_AT), ...op.load(4 * i), ...op.set(k(i)));
  for (let i = 0; i < 3; i++) code.push(...op.i32(NONCE_AT), ...op.load(4 * i), ...op.set(n(i)));
  code.push(...op.get(1), ...op.get(2), ...op.add, ...op.set(3)); // end = data + len
  code.push(...op.get(0), ...op.set(CTR));
  code.push(...op.block, ...op.loop);
  code.push(...op.get(1), ...op.get(3), ...op.geU, ...op.brIf(1)); // data ≥ end: done
  const init = (i: number): number[] => (i < 4 ? op.i32(SIGMA[i]!) : i < 12 ? op.get(k(i - 4)) : i === 12 ? op.get(CTR) : op.get(n(i - 13)));
  for (let i = 0; i < 16; i++) code.push(...init(i), ...op.set(x(i)));
  const qr = (a: number, b: number, c: number, d: number) => {
    const step = (p: number, q: number, r: number, bits: number) => {
      code.push(...op.get(x(p)), ...op.get(x(q)), ...op.add, ...op.set(x(p))); // p += q
      code.push(...op.get(x(r)), ...op.get(x(p)), ...op.xor, ...op.i32(bits), ...op.rotl, ...op.set(x(r))); // r = (r ^ p) <<< bits
    };
    step(a, b, d, 16);
    step(c, d, b, 12);
    step(a, b, d, 8);
    step(c, d, b, 7);
  };
  for (let round = 0; round < 10; round++) {
    qr(0, 4, 8, 12);
    qr(1, 5, 9, 13);
    qr(2, 6, 10, 14);
    qr(3, 7, 11, 15);
    qr(0, 5, 10, 15);
    qr(1, 6, 11, 12);
    qr(2, 7, 8, 13);
    qr(3, 4, 9, 14);
  }
  // data[4i] ^= x_i + init_i
  for (let i = 0; i < 16; i++) {
    code.push(...op.get(1), ...op.get(1), ...op.load(4 * i), ...op.get(x(i)), ...init(i), ...op.add, ...op.xor, ...op.store(4 * i));
  }
  code.push(...op.get(1), ...op.i32(64), ...op.add, ...op.set(1));
  code.push(...op.get(CTR), ...op.i32(1), ...op.add, ...op.set(CTR));
  code.push(...op.br(0), ...op.end, ...op.end);
  return code;
}

const ROTL16 = [2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13];
const ROTL8 = [3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14];
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
/** Lanes [a0, b0, a1, b1] / [a2, b2, a3, b3] of two vectors, and their halves [a0 a1 b0 b1] / [a2 a3 b2 b3]. */
const INTERLEAVE_LO = [...range(0, 4), ...range(16, 4), ...range(4, 4), ...range(20, 4)];
const INTERLEAVE_HI = [...range(8, 4), ...range(24, 4), ...range(12, 4), ...range(28, 4)];
const HALVES_LO = [...range(0, 8), ...range(16, 8)];
const HALVES_HI = [...range(8, 8), ...range(24, 8)];

/**
 * chacha with SIMD, four blocks per step: params counter 0, data 1, len 2; locals (i32) end 3, ctr 4; (v128) k0..k7
 * 5..12, n0..n2 13..15, x0..x15 16..31, t0..t3 32..35, tmp 36, counters 37.
 */
function chachaSimdBody(): number[] {
  const k = (i: number) => 5 + i;
  const n = (i: number) => 13 + i;
  const x = (i: number) => 16 + i;
  const t = (i: number) => 32 + i;
  const TMP = 36;
  const CTRS = 37;
  const code: number[] = [];
  for (let i = 0; i < 8; i++) code.push(...op.i32(KEY_AT), ...op.load(4 * i), ...v.splat, ...op.set(k(i)));
  for (let i = 0; i < 3; i++) code.push(...op.i32(NONCE_AT), ...op.load(4 * i), ...v.splat, ...op.set(n(i)));
  code.push(...op.get(1), ...op.get(2), ...op.add, ...op.set(3));
  code.push(...op.get(0), ...op.set(4));
  code.push(...op.block, ...op.loop);
  code.push(...op.get(1), ...op.get(3), ...op.geU, ...op.brIf(1));
  code.push(...op.get(4), ...v.splat, ...v.const([0, 1, 2, 3]), ...v.add, ...op.set(CTRS)); // block counters ctr + 0..3
  const init = (i: number): number[] => (i < 4 ? v.const([SIGMA[i]!, SIGMA[i]!, SIGMA[i]!, SIGMA[i]!]) : i < 12 ? op.get(k(i - 4)) : i === 12 ? op.get(CTRS) : op.get(n(i - 13)));
  for (let i = 0; i < 16; i++) code.push(...init(i), ...op.set(x(i)));
  const qr = (a: number, b: number, c: number, d: number) => {
    const add = (p: number, q: number) => code.push(...op.get(x(p)), ...op.get(x(q)), ...v.add, ...op.set(x(p)));
    const xorRotl = (r: number, p: number, bits: number) => {
      code.push(...op.get(x(r)), ...op.get(x(p)), ...v.xor, ...op.tee(TMP));
      if (bits === 16 || bits === 8) code.push(...op.get(TMP), ...v.shuffle(bits === 16 ? ROTL16 : ROTL8));
      else code.push(...op.i32(bits), ...v.shl, ...op.get(TMP), ...op.i32(32 - bits), ...v.shrU, ...v.or);
      code.push(...op.set(x(r)));
    };
    add(a, b);
    xorRotl(d, a, 16);
    add(c, d);
    xorRotl(b, c, 12);
    add(a, b);
    xorRotl(d, a, 8);
    add(c, d);
    xorRotl(b, c, 7);
  };
  for (let round = 0; round < 10; round++) {
    qr(0, 4, 8, 12);
    qr(1, 5, 9, 13);
    qr(2, 6, 10, 14);
    qr(3, 7, 11, 15);
    qr(0, 5, 10, 15);
    qr(1, 6, 11, 12);
    qr(2, 7, 8, 13);
    qr(3, 4, 9, 14);
  }
  for (let i = 0; i < 16; i++) code.push(...op.get(x(i)), ...init(i), ...v.add, ...op.set(x(i)));
  // Lane j of x_i is word i of block j: transpose each group of four words, XOR block j's words 4g..4g+3 at 64j + 16g.
  for (let g = 0; g < 4; g++) {
    const [a, b, c, d] = [x(4 * g), x(4 * g + 1), x(4 * g + 2), x(4 * g + 3)];
    code.push(...op.get(a), ...op.get(b), ...v.shuffle(INTERLEAVE_LO), ...op.set(t(0)));
    code.push(...op.get(a), ...op.get(b), ...v.shuffle(INTERLEAVE_HI), ...op.set(t(1)));
    code.push(...op.get(c), ...op.get(d), ...v.shuffle(INTERLEAVE_LO), ...op.set(t(2)));
    code.push(...op.get(c), ...op.get(d), ...v.shuffle(INTERLEAVE_HI), ...op.set(t(3)));
    const rows: [number, number, number[]][] = [[t(0), t(2), HALVES_LO], [t(0), t(2), HALVES_HI], [t(1), t(3), HALVES_LO], [t(1), t(3), HALVES_HI]];
    rows.forEach(([p, q, halves], j) => {
      const at = 64 * j + 16 * g;
      code.push(...op.get(1), ...op.get(1), ...v.load(at), ...op.get(p), ...op.get(q), ...v.shuffle(halves), ...v.xor, ...v.store(at));
    });
  }
  code.push(...op.get(1), ...op.i32(256), ...op.add, ...op.set(1));
  code.push(...op.get(4), ...op.i32(4), ...op.add, ...op.set(4));
  code.push(...op.br(0), ...op.end, ...op.end);
  return code;
}

/**
 * poly: params msg 0, blocks 1, key 2, tag 3 (i32); locals (i64) r0..r4 4..8, s1..s4 9..12, h0..h4 13..17,
 * d0..d4 18..22, c 23, g0..g4 24..28; (i32) end 29.
 */
function polyBody(): number[] {
  const r = (i: number) => 4 + i;
  const s = (i: number) => 9 + i - 1;
  const h = (i: number) => 13 + i;
  const d = (i: number) => 18 + i;
  const C = 23;
  const g = (i: number) => 24 + i;
  const END = 29;
  const M26 = 0x3ffffff;
  const code: number[] = [];
  const load64 = (ptr: number, offset: number) => [...op.get(ptr), ...op.load32u64(offset)];
  // r, clamped, in 26-bit limbs (key bytes 0, 3, 6, 9, 12).
  const clamp: [number, number, number][] = [[0, 0, 0x3ffffff], [3, 2, 0x3ffff03], [6, 4, 0x3ffc0ff], [9, 6, 0x3f03fff], [12, 8, 0x00fffff]];
  clamp.forEach(([at, shift, mask], i) => code.push(...load64(2, at), ...op.i64(shift), ...op.shrU64, ...op.i64(mask), ...op.and64, ...op.set(r(i))));
  for (let i = 1; i <= 4; i++) code.push(...op.get(r(i)), ...op.i64(5), ...op.mul64, ...op.set(s(i)));
  for (let i = 0; i < 5; i++) code.push(...op.i64(0), ...op.set(h(i)));
  code.push(...op.get(0), ...op.get(1), ...op.i32(16), ...op.mul, ...op.add, ...op.set(END));
  code.push(...op.block, ...op.loop);
  code.push(...op.get(0), ...op.get(END), ...op.geU, ...op.brIf(1));
  // h += m (26-bit limbs at message bytes 0, 3, 6, 9, 12), with the 2^128 bit.
  [[0, 0], [3, 2], [6, 4], [9, 6]].forEach(([at, shift], i) =>
    code.push(...op.get(h(i)), ...load64(0, at!), ...op.i64(shift!), ...op.shrU64, ...op.i64(M26), ...op.and64, ...op.add64, ...op.set(h(i))),
  );
  code.push(...op.get(h(4)), ...load64(0, 12), ...op.i64(8), ...op.shrU64, ...op.i64(1 << 24), ...op.or64, ...op.add64, ...op.set(h(4)));
  // d_i = Σ h_j · (r_{i-j}, or 5·r_{i-j+5} past the top)
  for (let i = 0; i < 5; i++) {
    for (let j = 0; j < 5; j++) {
      const factor = j <= i ? r(i - j) : s(i - j + 5);
      code.push(...op.get(h(j)), ...op.get(factor), ...op.mul64);
      if (j > 0) code.push(...op.add64);
    }
    code.push(...op.set(d(i)));
  }
  // Carry: h_i = d_i mod 2^26, the rest into d_{i+1}; the top carry comes back around times 5.
  const carry = (from: number, to: number) => {
    code.push(...op.get(from), ...op.i64(26), ...op.shrU64, ...op.set(C));
    code.push(...op.get(from), ...op.i64(M26), ...op.and64, ...op.set(to));
  };
  for (let i = 0; i < 5; i++) {
    if (i > 0) code.push(...op.get(d(i)), ...op.get(C), ...op.add64, ...op.set(d(i)));
    carry(d(i), h(i));
  }
  code.push(...op.get(h(0)), ...op.get(C), ...op.i64(5), ...op.mul64, ...op.add64, ...op.set(h(0)));
  carry(h(0), h(0));
  code.push(...op.get(h(1)), ...op.get(C), ...op.add64, ...op.set(h(1)));
  code.push(...op.get(0), ...op.i32(16), ...op.add, ...op.set(0));
  code.push(...op.br(0), ...op.end, ...op.end);

  // Full carry, then h mod 2^130 − 5: g = h + 5 − 2^130, taken when not negative.
  for (let i = 1; i < 5; i++) {
    carry(h(i), h(i));
    if (i < 4) code.push(...op.get(h(i + 1)), ...op.get(C), ...op.add64, ...op.set(h(i + 1)));
  }
  code.push(...op.get(h(0)), ...op.get(C), ...op.i64(5), ...op.mul64, ...op.add64, ...op.set(h(0)));
  carry(h(0), h(0));
  code.push(...op.get(h(1)), ...op.get(C), ...op.add64, ...op.set(h(1)));
  code.push(...op.get(h(0)), ...op.i64(5), ...op.add64, ...op.set(g(0)));
  carry(g(0), g(0));
  for (let i = 1; i < 4; i++) {
    code.push(...op.get(h(i)), ...op.get(C), ...op.add64, ...op.set(g(i)));
    carry(g(i), g(i));
  }
  code.push(...op.get(h(4)), ...op.get(C), ...op.add64, ...op.i64(1 << 26), ...op.sub64, ...op.set(g(4)));
  for (let i = 0; i < 5; i++) code.push(...op.get(g(i)), ...op.get(h(i)), ...op.get(g(4)), ...op.i64(0), ...op.geS64, ...op.select, ...op.set(h(i)));
  // Four 32-bit words, plus s (key bytes 16..31) with carries, to the tag.
  const word = (i: number, lowShift: number, highShift: number) => {
    code.push(...op.get(h(i)), ...op.i64(lowShift), ...op.shrU64, ...op.get(h(i + 1)), ...op.i64(highShift), ...op.shl64, ...op.or64);
    code.push(...op.i64(0xffffffff), ...op.and64);
  };
  const words: [number, number, number][] = [[0, 0, 26], [1, 6, 20], [2, 12, 14], [3, 18, 8]];
  words.forEach(([i, lo, hi], w) => {
    word(i, lo, hi);
    code.push(...load64(2, 16 + 4 * w), ...op.add64);
    if (w > 0) code.push(...op.get(C), ...op.add64);
    code.push(...op.set(d(w)));
    code.push(...op.get(d(w)), ...op.i64(32), ...op.shrU64, ...op.set(C));
    code.push(...op.get(3), ...op.get(d(w)), ...op.store32from64(4 * w));
  });
  return code;
}

export function aeadModule(simd: boolean): Uint8Array {
  const chacha = simd
    ? { name: "chacha", params: [I32, I32, I32], locals: [[2, I32], [33, V128]] as [number, number][], code: chachaSimdBody() }
    : { name: "chacha", params: [I32, I32, I32], locals: [[29, I32]] as [number, number][], code: chachaBody() };
  return wasmModule(2, [chacha, { name: "poly", params: [I32, I32, I32, I32], locals: [[25, I64], [1, I32]], code: polyBody() }]);
}

export const base64Lines = (bytes: Uint8Array) =>
  Buffer.from(bytes)
    .toString("base64")
    .match(/.{1,112}/g)!
    .map((l) => `  "${l}"`)
    .join(" +\n");

if (import.meta.main) {
  const [simd, plain] = [aeadModule(true), aeadModule(false)];
  const out = [
    "// GENERATED by scripts/gen-aead-wasm.ts: do not edit, run `bun scripts/gen-aead-wasm.ts` instead.",
    "/**",
    ` * WebAssembly ChaCha20 and Poly1305: with SIMD (${simd.length} bytes) and without (${plain.length} bytes). See`,
    " * scripts/gen-aead-wasm.ts for the exports; src/p2p/aead-wasm.ts composes the AEAD from them.",
    " */",
    `export const AEAD_SIMD_WASM_BASE64 =\n${base64Lines(simd)};`,
    "",
    `export const AEAD_WASM_BASE64 =\n${base64Lines(plain)};`,
    "",
  ].join("\n");
  const bytes = simd;
  const target = fileURLToPath(new URL("../src/p2p/aead-wasm.gen.ts", import.meta.url));
  writeFileSync(target, out);
  console.log(`wrote ${target} (${bytes.length} bytes of wasm)`);
}
