/**
 * Generates src/p2p/pow-wasm.gen.ts: a WebAssembly SIMD search kernel that tries FOUR nonces per compression
 * (one per i32x4 lane), emitted as bytes by this script so no WAT toolchain is needed.
 *
 * Run: `bun scripts/gen-pow-wasm.ts` (rewrites the file; commit the output). The compression plan (which G steps,
 * which message words are zero, the precomputed round-1 columns, the partial last round) is the one of
 * scripts/gen-pow-kernel.ts, so both kernels compute the same thing; only the rendering differs.
 * The module: memory (1 page, exported) holds the 14-word per-prefix table at byte 0 (PowKernel's `pre`), and
 * `search(lo0, hi, count, mask) -> i32` returns the first i < count with (word0(lo0 + i, hi) & mask) == 0, or -1.
 * It must never emit anything machine-dependent: the output is deterministic bytes.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type GStep, plan, round1Diagonals } from "./gen-pow-kernel.ts";
import { name, section, sleb, uleb, vec } from "./wasm-bytes.ts";

// --- encoding helpers: scripts/wasm-bytes.ts ---
const I32 = 0x7f;
const V128 = 0x7b;
const simd = (op: number, ...imm: number[]) => [0xfd, ...uleb(op), ...imm];
const op = {
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  tee: (i: number) => [0x22, ...uleb(i)],
  i32: (n: number) => [0x41, ...sleb(n | 0)],
  i32add: [0x6a],
  i32geu: [0x4f],
  i32ltu: [0x49],
  i32and: [0x71],
  load32Splat: (offset: number) => simd(0x09, 2, ...uleb(offset)),
  splat: simd(0x11),
  v128const: (lanes: number[]) =>
    simd(0x0c, ...lanes.flatMap((x) => [x & 255, (x >>> 8) & 255, (x >>> 16) & 255, x >>> 24])),
  shuffle: (bytes: number[]) => simd(0x0d, ...bytes),
  extract: (lane: number) => simd(0x1b, lane),
  eq: simd(0x37),
  and: simd(0x4e),
  or: simd(0x50),
  xor: simd(0x51),
  anyTrue: simd(0x53),
  shl: simd(0xab),
  shrU: simd(0xad),
  add: simd(0xae),
};
const ROTR16 = [2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13];
const ROTR8 = [1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12];

/** The module bytes. */
export function buildPowWasm(): Uint8Array {
  // --- locals ---
  // params: 0 lo0, 1 hi, 2 count, 3 mask (i32); then i32 locals, then v128 locals.
  const L = { lo0: 0, hi: 1, count: 2, mask: 3, i: 4 };
  const I32_LOCALS = 1;
  let nextV = 5;
  const vLocal = () => nextV++;
  const v = Array.from({ length: 16 }, vLocal); // the state
  const P = Array.from({ length: 14 }, vLocal); // the per-prefix table, splatted
  const lov = vLocal(); // the four low words
  const hiv = vLocal();
  const maskv = vLocal();
  const tmp = vLocal();
  const hit = vLocal();
  const V128_LOCALS = nextV - 5;

  // --- code ---
  const code: number[] = [];
  const emit = (...parts: number[][]) => parts.forEach((p) => code.push(...p));
  const msg = (m: string | null): number | null => (m === "lo" ? lov : m === "hi" ? hiv : null);

  function addInto(a: number, b: number, m: number | null): void {
    emit(op.get(a), op.get(b), op.add);
    if (m !== null) emit(op.get(m), op.add);
    emit(op.set(a));
  }
  function xorRot(d: number, a: number, n: number): void {
    emit(op.get(d), op.get(a), op.xor);
    if (n === 16 || n === 8) emit(op.tee(tmp), op.get(tmp), op.shuffle(n === 16 ? ROTR16 : ROTR8));
    else emit(op.tee(tmp), op.i32(n), op.shrU, op.get(tmp), op.i32(32 - n), op.shl, op.or);
    emit(op.set(d));
  }
  function g(step: GStep): void {
    const [a, b, c, d] = step.abcd.map((k) => v[k]!) as [number, number, number, number];
    addInto(a, b, msg(step.x));
    xorRot(d, a, 16);
    addInto(c, d, null);
    xorRot(b, c, 12);
    addInto(a, b, msg(step.y));
    if (step.upTo === "a2") return;
    xorRot(d, a, 8);
    addInto(c, d, null);
    if (step.upTo === "c2") return;
    xorRot(b, c, 7);
  }

  const IV0 = 0x6a09e667;
  // Setup: splat the table, the nonce lanes lo0 + 0..3, hi and the mask.
  P.forEach((p, k) => emit(op.i32(0), op.load32Splat(4 * k), op.set(p)));
  emit(op.get(L.lo0), op.splat, op.v128const([0, 1, 2, 3]), op.add, op.set(lov));
  emit(op.get(L.hi), op.splat, op.set(hiv), op.get(L.mask), op.splat, op.set(maskv));
  // block $exit (result-less), loop $next
  emit([0x02, 0x40], [0x03, 0x40]);
  emit(op.get(L.i), op.get(L.count), op.i32geu, [0x0d, 1]); // i >= count: br $exit
  // Table layout (PowKernel): c4, p04, then v1 v5 v9 v13, v2 v6 v10 v14, v3 v7 v11 v15 after round 1's columns 1..3.
  const [c4, p04, ...cols] = P as [number, number, ...number[]];
  emit(op.get(p04), op.get(lov), op.add, op.set(v[0]!));
  emit(op.get(c4), op.set(v[4]!), op.v128const([IV0, IV0, IV0, IV0]), op.set(v[8]!));
  [1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15].forEach((k, j) => emit(op.get(cols[j]!), op.set(v[k]!)));
  // Round 1, column 0: v12 starts at 0, so d ^= a is d = a.
  emit(op.get(v[0]!), op.tee(tmp), op.get(tmp), op.shuffle(ROTR16), op.set(v[12]!));
  addInto(v[8]!, v[12]!, null);
  xorRot(v[4]!, v[8]!, 12);
  addInto(v[0]!, v[4]!, hiv);
  xorRot(v[12]!, v[0]!, 8);
  addInto(v[8]!, v[12]!, null);
  xorRot(v[4]!, v[8]!, 7);
  round1Diagonals().forEach(g);
  plan(1, true).forEach(g);
  // hit = lanes whose word 0 has no bit in mask
  emit(op.get(v[0]!), op.get(v[8]!), op.xor, op.get(maskv), op.and, op.v128const([0, 0, 0, 0]), op.eq, op.tee(hit));
  emit(op.anyTrue, [0x04, 0x40]); // if any lane hit
  for (let lane = 0; lane < 4; lane++) {
    // if (extract(hit, lane) & (i + lane < count)) return i + lane
    emit(op.get(hit), op.extract(lane), op.get(L.i), op.i32(lane), op.i32add, op.get(L.count), op.i32ltu, op.i32and);
    emit([0x04, 0x40], op.get(L.i), op.i32(lane), op.i32add, [0x0f], [0x0b]);
  }
  emit([0x0b]); // end if
  emit(op.get(lov), op.v128const([4, 4, 4, 4]), op.add, op.set(lov));
  emit(op.get(L.i), op.i32(4), op.i32add, op.set(L.i), [0x0c, 0]); // br $next
  emit([0x0b], [0x0b]); // end loop, end block
  emit(op.i32(-1), [0x0b]);

  const body = [...vec([[...uleb(I32_LOCALS), I32], [...uleb(V128_LOCALS), V128]]), ...code];
  const module = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32]]), ...vec([[I32]])]])), // type (i32 x4) -> i32
    ...section(3, vec([uleb(0)])), // function 0 has type 0
    ...section(5, vec([[0x00, 1]])), // memory: min 1 page
    ...section(7, vec([[...name("search"), 0x00, 0], [...name("memory"), 0x02, 0]])),
    ...section(10, vec([[...uleb(body.length), ...body]])),
  ];
  const bytes = new Uint8Array(module);
  if (!WebAssembly.validate(bytes)) throw new Error("generated module does not validate");
  return bytes;
}

/** The text of src/p2p/pow-wasm.gen.ts. */
export function generate(): string {
  const module = buildPowWasm();
  const b64 = Buffer.from(module).toString("base64");
  const lines = b64.match(/.{1,112}/g)!.map((l) => `  "${l}"`);
  return `// GENERATED by scripts/gen-pow-wasm.ts: do not edit, run \`bun scripts/gen-pow-wasm.ts\` instead.
/**
 * WebAssembly SIMD search kernel (${module.length} bytes): four nonces per compression. See scripts/gen-pow-wasm.ts
 * for the layout; src/p2p/pow-kernel.ts loads it where the engine has wasm SIMD, else runs the TypeScript kernel.
 */
export const POW_WASM_BASE64 =
${lines.join(" +\n")};
`;
}

if (import.meta.main) {
  const target = fileURLToPath(new URL("../src/p2p/pow-wasm.gen.ts", import.meta.url));
  writeFileSync(target, generate());
  console.log(`wrote ${target}`);
}
