/**
 * PoW benchmark: attempts/s of the kernel (one thread, in-process), of the generic @noble/hashes blake3 over the same
 * 136-byte input, and of a native Rust reference (bench/native, built offline against Debian's librust-blake3-dev),
 * with the ratio kernel/native, all in one run; then the pool's solve time at a few difficulties.
 *
 * Run: `bun bench/pow.ts [--runs N] [--solves N] [--difficulties 12,16,20] [--no-native] [--no-pool]`.
 * `benchPow(args)` is the same as a plain function for bench/index.ts. Every rate is the median of ≥ 3 runs.
 * It must never fail for a missing toolchain: without cargo or the crate it says "native reference unavailable".
 */
import { blake3 } from "@noble/hashes/blake3.js";
import { existsSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { leadingZeroBits, verifyPow } from "../src/p2p/pow-input.ts";
import { PowKernel, type PowKernelImpl } from "../src/p2p/pow-kernel.ts";
import { PowPool } from "../src/p2p/pow-pool.ts";

export interface BenchPowArgs {
  /** Timed runs per rate (median reported), at least 3. */
  runs?: number;
  /** Solves per difficulty for the pool (median reported). */
  solves?: number;
  difficulties?: number[];
  /** Pool size; defaults to navigator.hardwareConcurrency. */
  poolSize?: number;
  native?: boolean;
  pool?: boolean;
  log?: (line: string) => void;
}

export interface BenchPowResult {
  /** The kernel the pool runs (SIMD where available). */
  kernel: number;
  kernelImpl: PowKernelImpl;
  /** The unrolled TypeScript kernel (the fallback without wasm SIMD). */
  kernelTs: number;
  noble: number;
  /** null when the native reference is unavailable. */
  native: { full: number; midstate: number } | null;
  nativeUnavailable?: string;
  ratioKernelNative: number | null;
  pool: { size: number; difficulty: number; medianMs: number; medianAttempts: number }[];
  poolAttemptsPerSecond: number | null;
}

const NATIVE_DIR = fileURLToPath(new URL("./native/", import.meta.url));
const NATIVE_BIN = `${NATIVE_DIR}target/release/pow-native`;
const DEBIAN_REGISTRY = "/usr/share/cargo/registry";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function mps(rate: number): string {
  return `${(rate / 1e6).toFixed(2)} M/s`;
}

/** Attempts per second of the kernel on one thread: a search no nonce can satisfy, so every attempt runs. */
function kernelRate(impl: PowKernelImpl, count: number): number {
  const kernel = new PowKernel(crypto.getRandomValues(new Uint8Array(128)), impl);
  const t0 = performance.now();
  // 64 bits is never met in practice; any hit would only shorten the run, so count what was really done.
  const i = kernel.searchWords(0, 0, count, 64);
  const done = i < 0 ? count : i + 1;
  return (done / (performance.now() - t0)) * 1000;
}

/** The generic path: blake3() over the whole 136-byte input per attempt, as verifyPow computes it. */
function nobleRate(count: number): number {
  const input = crypto.getRandomValues(new Uint8Array(136));
  const view = new DataView(input.buffer);
  let best = 0;
  const t0 = performance.now();
  for (let n = 0; n < count; n++) {
    view.setUint32(128, n, true);
    best = Math.max(best, leadingZeroBits(blake3(input)));
  }
  const ms = performance.now() - t0;
  if (best < 0) throw new Error("unreachable"); // keeps `best` (and every hash) observable
  return (count / ms) * 1000;
}

/**
 * Runs `rate` at least `minRounds` times, then until three rates in a row agree within 10% (the engine has finished
 * tiering up), 8 s at most. The generic blake3 needs this: it can run at a third of its speed, steadily, for its first
 * few hundred thousand calls.
 */
function warmUp(rate: () => number, minRounds: number): void {
  const until = performance.now() + 8000;
  const last: number[] = [];
  for (let round = 1; performance.now() < until; round++) {
    last.push(rate());
    if (last.length > 3) last.shift();
    if (round >= minRounds && last.length === 3 && Math.min(...last) > 0.9 * Math.max(...last)) return;
  }
}

/** Builds bench/native if the toolchain and the Debian crate are here; returns why not otherwise. */
function buildNative(): string | null {
  if (!Bun.which("cargo")) return "cargo not found";
  const crates = existsSync(DEBIAN_REGISTRY) ? readdirSync(DEBIAN_REGISTRY) : [];
  if (!crates.some((c) => c.startsWith("blake3-"))) return "librust-blake3-dev not installed";
  const build = Bun.spawnSync(["cargo", "build", "--release", "--offline", "--quiet"], {
    cwd: NATIVE_DIR,
    stdout: "pipe",
    stderr: "pipe",
  });
  if (build.exitCode !== 0) return `cargo build failed: ${build.stderr.toString().trim().split("\n").at(-1)}`;
  return existsSync(NATIVE_BIN) ? null : "cargo build produced no binary";
}

function nativeRate(mode: "full" | "midstate", count: number): number {
  const run = Bun.spawnSync([NATIVE_BIN, String(count), mode], { stdout: "pipe", stderr: "pipe" });
  if (run.exitCode !== 0) throw new Error(`pow-native failed: ${run.stderr.toString()}`);
  const line = JSON.parse(run.stdout.toString()) as { rate: number };
  return line.rate;
}

export async function benchPow(args: BenchPowArgs = {}): Promise<BenchPowResult> {
  const runs = Math.max(3, args.runs ?? 5);
  const solves = Math.max(3, args.solves ?? 9);
  const difficulties = args.difficulties ?? [12, 16, 20];
  const log = args.log ?? ((line: string) => console.log(line));

  log(`pow: 136-byte input (128-byte prefix ‖ 8-byte nonce), median of ${runs} runs, one thread`);
  const kernelImpl = new PowKernel(new Uint8Array(128)).impl;
  warmUp(() => kernelRate(kernelImpl, 1_000_000), 3); // let the engine tier up before timing
  const kernel = median(Array.from({ length: runs }, () => kernelRate(kernelImpl, 5_000_000)));
  const label = kernelImpl === "wasm" ? "wasm SIMD, 4 nonces per compression" : "TypeScript";
  log(`  kernel (${label})  ${mps(kernel)}`);
  warmUp(() => kernelRate("ts", 1_000_000), 3);
  const kernelTs = median(Array.from({ length: runs }, () => kernelRate("ts", 3_000_000)));
  log(`  kernel (unrolled TypeScript fallback)         ${mps(kernelTs)}`);
  warmUp(() => nobleRate(50_000), 14);
  const noble = median(Array.from({ length: runs }, () => nobleRate(200_000)));
  log(`  @noble/hashes blake3 (whole input)            ${mps(noble)}`);

  let native: BenchPowResult["native"] = null;
  let nativeUnavailable: string | undefined;
  if (args.native === false) nativeUnavailable = "skipped";
  else nativeUnavailable = buildNative() ?? undefined;
  if (nativeUnavailable === undefined) {
    const full = median(Array.from({ length: runs }, () => nativeRate("full", 3_000_000)));
    const midstate = median(Array.from({ length: runs }, () => nativeRate("midstate", 3_000_000)));
    native = { full, midstate };
    log(`  native blake3 crate (Rust, whole input)       ${mps(full)}`);
    log(`  native blake3 crate (Rust, cloned midstate)   ${mps(midstate)}`);
  } else {
    log(`  native reference unavailable (${nativeUnavailable})`);
  }
  const ratioKernelNative = native ? kernel / native.full : null;
  const ratioText = ratioKernelNative === null ? "n/a" : ratioKernelNative.toFixed(2);
  log(`  ratio kernel/native                           ${ratioText}`);
  if (native) log(`  ratio kernel/native midstate                  ${(kernel / native.midstate).toFixed(2)}`);
  if (native) log(`  ratio TypeScript kernel/native               ${(kernelTs / native.full).toFixed(2)}`);
  log(`  ratio kernel/noble                            ${(kernel / noble).toFixed(1)}`);

  const pool: BenchPowResult["pool"] = [];
  let poolAttemptsPerSecond: number | null = null;
  if (args.pool !== false) {
    const solver = new PowPool({ size: args.poolSize });
    try {
      await solver.solve(new Uint8Array(128), 12); // start and warm the workers
      log(`pow pool: ${solver.size} workers, median of ${solves} solves per difficulty (expected attempts 2^d)`);
      for (const difficulty of difficulties) {
        const ms: number[] = [];
        const attempts: number[] = [];
        for (let s = 0; s < solves; s++) {
          const prefix = crypto.getRandomValues(new Uint8Array(128));
          const solution = await solver.solve(prefix, difficulty);
          if (!verifyPow(prefix, solution.nonce, difficulty)) throw new Error("pool returned an invalid nonce");
          ms.push(solution.ms);
          attempts.push(solution.attempts);
        }
        const row = { size: solver.size, difficulty, medianMs: median(ms), medianAttempts: median(attempts) };
        pool.push(row);
        log(`  d=${difficulty}  median ${row.medianMs.toFixed(1)} ms  (median ${row.medianAttempts} attempts)`);
      }
      poolAttemptsPerSecond = solver.stats().attemptsPerSecond;
      log(`  pool throughput                               ${mps(poolAttemptsPerSecond)}`);
    } finally {
      await solver.close();
    }
  }
  return {
    kernel,
    kernelImpl,
    kernelTs,
    noble,
    native,
    nativeUnavailable,
    ratioKernelNative,
    pool,
    poolAttemptsPerSecond,
  };
}

function parseArgs(argv: string[]): BenchPowArgs {
  const out: BenchPowArgs = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--runs") out.runs = Number(argv[++i]);
    else if (a === "--solves") out.solves = Number(argv[++i]);
    else if (a === "--pool-size") out.poolSize = Number(argv[++i]);
    else if (a === "--difficulties") out.difficulties = argv[++i]!.split(",").map(Number);
    else if (a === "--no-native") out.native = false;
    else if (a === "--no-pool") out.pool = false;
    else throw new RangeError(`bench/pow.ts: unknown argument ${a}`);
  }
  return out;
}

if (import.meta.main) {
  await benchPow(parseArgs(process.argv.slice(2)));
}
