/**
 * Generates src/p2p/pow-kernel.gen.ts: the hand-unrolled BLAKE3 compression of the PoW input's final block.
 *
 * Run: `bun scripts/gen-pow-kernel.ts` (rewrites the file; commit the output, CI may diff it).
 * The final block holds only the 8-byte nonce (m0 = low word, m1 = high word, m2..m15 = 0), so the generator knows at
 * build time which message additions vanish, which round-1 columns are fixed per prefix, and which last-round steps a
 * 32-bit difficulty test never reads. It emits straight-line code on local variables only: nothing allocates per try.
 * It must never emit anything that depends on the machine it runs on: the output is plain, deterministic source.
 */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** BLAKE3's message word permutation, applied between rounds. */
const PERM = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];

/** schedule[r][i] = which original message word sits at position i in round r. */
function schedules(): number[][] {
  const out: number[][] = [];
  let s = Array.from({ length: 16 }, (_, i) => i);
  for (let r = 0; r < 7; r++) {
    out.push(s);
    s = PERM.map((p) => s[p]!);
  }
  return out;
}

const COLUMNS: [number, number, number, number][] = [
  [0, 4, 8, 12],
  [1, 5, 9, 13],
  [2, 6, 10, 14],
  [3, 7, 11, 15],
];
const DIAGONALS: [number, number, number, number][] = [
  [0, 5, 10, 15],
  [1, 6, 11, 12],
  [2, 7, 8, 13],
  [3, 4, 9, 14],
];

/** The message word expression at schedule index w: the nonce words or nothing (zero). */
function word(w: number): string | null {
  if (w === 0) return "lo";
  if (w === 1) return "hi";
  return null;
}

function add(a: string, b: string, m: string | null): string {
  return m === null ? `${a} = (${a} + ${b}) | 0;` : `${a} = (${a} + ${b} + ${m}) | 0;`;
}
function rotXor(d: string, a: string, n: number): string {
  return `${d} ^= ${a}; ${d} = (${d} >>> ${n}) | (${d} << ${32 - n});`;
}

/** One G mixing step; `upTo` stops early for the last-round outputs nobody reads. */
function g(
  lines: string[],
  [a, b, c, d]: [number, number, number, number],
  x: string | null,
  y: string | null,
  upTo: "all" | "a2" | "c2" = "all",
): void {
  const [A, B, C, D] = [`v${a}`, `v${b}`, `v${c}`, `v${d}`];
  lines.push(`${add(A, B, x)} ${rotXor(D, A, 16)}`);
  lines.push(`${C} = (${C} + ${D}) | 0; ${rotXor(B, C, 12)}`);
  lines.push(add(A, B, y));
  if (upTo === "a2") return;
  lines.push(`${rotXor(D, A, 8)} ${C} = (${C} + ${D}) | 0;`);
  if (upTo === "c2") return;
  lines.push(rotXor(B, C, 7));
}

/** One mixing step of the plan: state indices, message words (null = zero), and how much of it is needed. */
export interface GStep {
  round: number;
  abcd: [number, number, number, number];
  x: string | null;
  y: string | null;
  upTo: "all" | "a2" | "c2";
}

/**
 * The G steps of rounds `from`..7 (0-based `from`), shared with scripts/gen-pow-wasm.ts. With `lastPartial`, the
 * last round keeps only what output word 0 = v0 ^ v8 needs: v0 is final after diagonal 0's second add, v8 after
 * diagonal 2's second add to c; diagonals 1 and 3 are dropped.
 */
export function plan(from: number, lastPartial: boolean): GStep[] {
  const sched = schedules();
  const steps: GStep[] = [];
  for (let r = from; r < 7; r++) {
    const s = sched[r]!;
    for (let k = 0; k < 4; k++) {
      steps.push({ round: r, abcd: COLUMNS[k]!, x: word(s[2 * k]!), y: word(s[2 * k + 1]!), upTo: "all" });
    }
    for (let k = 0; k < 4; k++) {
      const x = word(s[8 + 2 * k]!);
      const y = word(s[9 + 2 * k]!);
      const step: GStep = { round: r, abcd: DIAGONALS[k]!, x, y, upTo: "all" };
      if (lastPartial && r === 6) {
        if (k === 0) steps.push({ ...step, upTo: "a2" });
        if (k === 2) steps.push({ ...step, upTo: "c2" });
        continue;
      }
      steps.push(step);
    }
  }
  return steps;
}

/** Round 1 of the search: columns 1..3 come precomputed, column 0 is special-cased; these are its diagonals. */
export function round1Diagonals(): GStep[] {
  const s0 = schedules()[0]!;
  if (s0[0] !== 0 || s0[1] !== 1) throw new Error("round 1 must read m0, m1 in column 0");
  for (let i = 2; i < 8; i++) if (s0[i]! < 2) throw new Error("round 1 columns 1..3 must not read the nonce");
  return [0, 1, 2, 3].map((k) => ({
    round: 0,
    abcd: DIAGONALS[k]!,
    x: word(s0[8 + 2 * k]!),
    y: word(s0[9 + 2 * k]!),
    upTo: "all" as const,
  }));
}

function rounds(lines: string[], steps: GStep[]): void {
  let round = -1;
  for (const step of steps) {
    if (step.round !== round) {
      round = step.round;
      lines.push(`// round ${round + 1}`);
    }
    g(lines, step.abcd, step.x, step.y, step.upTo);
  }
}

function indent(lines: string[], n: number): string {
  const pad = " ".repeat(n);
  return lines.map((l) => pad + l).join("\n");
}

export function generate(): string {
  // Search body: round 1's columns 1..3 and v0 + v4 come precomputed (they do not depend on the nonce).
  const search: string[] = [];
  search.push("let v0 = (p04 + lo) | 0, v4 = c4, v8 = IV0, v12 = 0;");
  search.push("let v1 = p1, v5 = p5, v9 = p9, v13 = p13, v2 = p2, v6 = p6, v10 = p10, v14 = p14;");
  search.push("let v3 = p3, v7 = p7, v11 = p11, v15 = p15;");
  search.push("// round 1, column 0 (v12 starts at 0, so d ^= a is d = a)");
  search.push("v12 = (v0 >>> 16) | (v0 << 16);");
  search.push("v8 = (v8 + v12) | 0; v4 ^= v8; v4 = (v4 >>> 12) | (v4 << 20);");
  search.push("v0 = (v0 + v4 + hi) | 0;");
  search.push("v12 ^= v0; v12 = (v12 >>> 8) | (v12 << 24); v8 = (v8 + v12) | 0;");
  search.push("v4 ^= v8; v4 = (v4 >>> 7) | (v4 << 25);");
  search.push("// round 1, diagonals");
  for (const step of round1Diagonals()) g(search, step.abcd, step.x, step.y);
  rounds(search, plan(1, true));

  // Full compression for the digest of one nonce (used to return and double-check a solution).
  const full: string[] = [];
  full.push("let v0 = cv[0] | 0, v1 = cv[1] | 0, v2 = cv[2] | 0, v3 = cv[3] | 0;");
  full.push("let v4 = cv[4] | 0, v5 = cv[5] | 0, v6 = cv[6] | 0, v7 = cv[7] | 0;");
  full.push("let v8 = IV0, v9 = IV1, v10 = IV2, v11 = IV3;");
  full.push("let v12 = 0, v13 = 0, v14 = FINAL_BLOCK_LEN, v15 = FINAL_FLAGS;");
  rounds(full, plan(0, false));
  for (let i = 0; i < 8; i++) full.push(`out[${i}] = v${i} ^ v${i + 8};`);

  return `// GENERATED by scripts/gen-pow-kernel.ts: do not edit, run \`bun scripts/gen-pow-kernel.ts\` instead.
/**
 * The unrolled BLAKE3 compression of the PoW input's final block (nonce words m0 = lo, m1 = hi, all others zero,
 * counter 0, block_len 8, flags CHUNK_END | ROOT). pow-kernel.ts prepares the inputs; this file must never allocate.
 */

const IV0 = 0x6a09e667 | 0;
const IV1 = 0xbb67ae85 | 0;
const IV2 = 0x3c6ef372 | 0;
const IV3 = 0xa54ff53a | 0;
/** The final block holds the 8 nonce bytes. */
const FINAL_BLOCK_LEN = 8;
/** CHUNK_END (2) | ROOT (8). */
const FINAL_FLAGS = 10;

/**
 * Tries nonces (lo + i, hi) for i in [0, count) and returns the first i whose output word 0 has no bit in \`mask\`,
 * or -1. \`pre\` is the per-prefix table from pow-kernel.ts (cv4, cv0 + cv4, round 1 columns 1..3).
 * The caller keeps lo + count ≤ 2^32 so the low word never wraps inside one call. Every argument is an int32 (words
 * as signed 32-bit values, tables as Int32Array): a word ≥ 2^31 arriving as a double would make the JIT deoptimise.
 */
export function powSearchWord0(pre: Int32Array, lo0: number, hi: number, count: number, mask: number): number {
  const c4 = pre[0] | 0, p04 = pre[1] | 0;
  const p1 = pre[2] | 0, p5 = pre[3] | 0, p9 = pre[4] | 0, p13 = pre[5] | 0;
  const p2 = pre[6] | 0, p6 = pre[7] | 0, p10 = pre[8] | 0, p14 = pre[9] | 0;
  const p3 = pre[10] | 0, p7 = pre[11] | 0, p11 = pre[12] | 0, p15 = pre[13] | 0;
  hi = hi | 0;
  mask = mask | 0;
  for (let i = 0; i < count; i++) {
    const lo = (lo0 + i) | 0;
${indent(search, 4)}
    if (((v0 ^ v8) & mask) === 0) return i;
  }
  return -1;
}

/** The whole compression: the eight output words (the 32-byte digest, little-endian words) of nonce (lo, hi). */
export function powCompressFinal(cv: Int32Array, lo: number, hi: number, out: Int32Array): void {
  lo = lo | 0;
  hi = hi | 0;
${indent(full, 2)}
}
`;
}

if (import.meta.main) {
  const target = fileURLToPath(new URL("../src/p2p/pow-kernel.gen.ts", import.meta.url));
  writeFileSync(target, generate());
  console.log(`wrote ${target}`);
}
