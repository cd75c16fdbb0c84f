/**
 * Generates src/util/blake3-wasm.gen.ts: a WebAssembly (MVP, no SIMD needed) BLAKE3 compression function and a
 * whole-chunk loop, emitted as bytes by this script so no WAT toolchain is needed (as scripts/gen-pow-wasm.ts does
 * for the proof of work). src/util/blake3-wasm.ts drives it: the chunk tree, the input copy, the fallback.
 *
 * Run: `bun scripts/gen-blake3-wasm.ts` (rewrites the file; commit the output). The module exports `memory` (2 pages,
 * growable) and
 *   compress(cv, block, blockLen, counterLo, counterHi, flags): the 8 words at `cv` become the chaining value of
 *     compressing the 16 words at `block` (little-endian, as BLAKE3 and WebAssembly both are);
 *   chunk(input, len, counterLo, counterHi, endFlags, cv): `cv` = the chaining value of one chunk (len ≤ 1024) whose
 *     blocks start at `input` (the bytes after `len` up to the next 64 must be zero), `endFlags` or-ed into the last
 *     block's flags (ROOT for a one-chunk input).
 * It must never emit anything machine-dependent: the output is deterministic bytes.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { I32, op as ops, wasmModule } from "./wasm-bytes.ts";

export const IV = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
const MSG_PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
export const FLAGS = { CHUNK_START: 1, CHUNK_END: 2, PARENT: 4, ROOT: 8 } as const;

const op = { ...ops, ltu: ops.ltU, gtu: ops.gtU, leu: ops.leU };

/** compress: params cv 0, block 1, blockLen 2, counterLo 3, counterHi 4, flags 5; locals v0..v15 = 6..21, m0..m15 = 22..37. */
function compressBody(): number[] {
  const v = (i: number) => 6 + i;
  const m = (i: number) => 22 + i;
  const code: number[] = [];
  for (let i = 0; i < 16; i++) code.push(...op.get(1), ...op.load(4 * i), ...op.set(m(i)));
  for (let i = 0; i < 8; i++) code.push(...op.get(0), ...op.load(4 * i), ...op.set(v(i)));
  for (let i = 0; i < 4; i++) code.push(...op.i32(IV[i]!), ...op.set(v(8 + i)));
  code.push(...op.get(3), ...op.set(v(12)), ...op.get(4), ...op.set(v(13)), ...op.get(2), ...op.set(v(14)), ...op.get(5), ...op.set(v(15)));
  // a = a + b + x; d = (d ^ a) >>> 16; c = c + d; b = (b ^ c) >>> 12; a = a + b + y; d >>> 8; c; b >>> 7.
  const g = (a: number, b: number, c: number, d: number, x: number, y: number) => {
    const addTo = (to: number, ...from: number[]) => {
      code.push(...op.get(v(to)));
      for (const f of from) code.push(...(f >= 100 ? op.get(m(f - 100)) : op.get(v(f))), ...op.add);
      code.push(...op.set(v(to)));
    };
    const xorRot = (to: number, with_: number, bits: number) => code.push(...op.get(v(to)), ...op.get(v(with_)), ...op.xor, ...op.i32(bits), ...op.rotr, ...op.set(v(to)));
    addTo(a, b, 100 + x);
    xorRot(d, a, 16);
    addTo(c, d);
    xorRot(b, c, 12);
    addTo(a, b, 100 + y);
    xorRot(d, a, 8);
    addTo(c, d);
    xorRot(b, c, 7);
  };
  let s = [...Array(16).keys()];
  for (let round = 0; round < 7; round++) {
    g(0, 4, 8, 12, s[0]!, s[1]!);
    g(1, 5, 9, 13, s[2]!, s[3]!);
    g(2, 6, 10, 14, s[4]!, s[5]!);
    g(3, 7, 11, 15, s[6]!, s[7]!);
    g(0, 5, 10, 15, s[8]!, s[9]!);
    g(1, 6, 11, 12, s[10]!, s[11]!);
    g(2, 7, 8, 13, s[12]!, s[13]!);
    g(3, 4, 9, 14, s[14]!, s[15]!);
    s = MSG_PERMUTATION.map((p) => s[p]!);
  }
  for (let i = 0; i < 8; i++) code.push(...op.get(0), ...op.get(v(i)), ...op.get(v(8 + i)), ...op.xor, ...op.store(4 * i));
  return code;
}

/** chunk: params input 0, len 1, counterLo 2, counterHi 3, endFlags 4, cv 5; locals pos 6, rem 7. */
function chunkBody(): number[] {
  const code: number[] = [];
  for (let i = 0; i < 8; i++) code.push(...op.get(5), ...op.i32(IV[i]!), ...op.store(4 * i));
  code.push(...op.block, ...op.loop);
  code.push(...op.get(1), ...op.get(6), ...op.sub, ...op.set(7)); // rem = len - pos
  code.push(...op.get(5), ...op.get(0), ...op.get(6), ...op.add); // cv, input + pos
  code.push(...op.i32(64), ...op.get(7), ...op.get(7), ...op.i32(64), ...op.gtu, ...op.select); // rem > 64 ? 64 : rem
  code.push(...op.get(2), ...op.get(3));
  code.push(...op.i32(FLAGS.CHUNK_START), ...op.i32(0), ...op.get(6), ...op.eqz, ...op.select); // pos == 0 ? START : 0
  code.push(...op.get(4), ...op.i32(FLAGS.CHUNK_END), ...op.or, ...op.i32(0), ...op.get(7), ...op.i32(64), ...op.leu, ...op.select); // rem ≤ 64 ? END | endFlags : 0
  code.push(...op.or, ...op.call(0));
  code.push(...op.get(6), ...op.i32(64), ...op.add, ...op.set(6)); // pos += 64
  code.push(...op.get(6), ...op.get(1), ...op.ltu, ...op.brIf(0)); // again while pos < len
  code.push(...op.end, ...op.end);
  return code;
}

export function blake3Module(): Uint8Array {
  const params = [I32, I32, I32, I32, I32, I32];
  return wasmModule(2, [
    { name: "compress", params, locals: [[32, I32]], code: compressBody() },
    { name: "chunk", params, locals: [[2, I32]], code: chunkBody() },
  ]);
}

if (import.meta.main) {
  const bytes = blake3Module();
  const b64 = Buffer.from(bytes).toString("base64");
  const lines = b64.match(/.{1,112}/g)!.map((l) => `  "${l}"`);
  const out = [
    "// GENERATED by scripts/gen-blake3-wasm.ts: do not edit, run `bun scripts/gen-blake3-wasm.ts` instead.",
    "/**",
    ` * WebAssembly BLAKE3 compression and chunk loop (${bytes.length} bytes). See scripts/gen-blake3-wasm.ts for the`,
    " * exports; src/util/blake3-wasm.ts drives them.",
    " */",
    "export const BLAKE3_WASM_BASE64 =",
    `${lines.join(" +\n")};`,
    "",
  ].join("\n");
  const target = fileURLToPath(new URL("../src/util/blake3-wasm.gen.ts", import.meta.url));
  writeFileSync(target, out);
  console.log(`wrote ${target} (${bytes.length} bytes of wasm)`);
}
