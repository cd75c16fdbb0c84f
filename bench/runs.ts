/**
 * Runs one benchmark run in a fresh process, so that every run starts from the same memory and JIT state and the
 * RSS per node is that run's own: ours under Bun (`bun bench/index.ts net-run …`), gossipsub under Node (its harness
 * bundled once; see gossipsub/harness.ts for why Node). Installs bench/gossipsub's packages on first use.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { specToArgs, type RunSpec } from "./run-args.ts";
import type { RunResult } from "./workload.ts";

export type Impl = "ours" | "gossipsub" | "gossipsub-unsigned";
export const IMPLS: Impl[] = ["ours", "gossipsub", "gossipsub-unsigned"];

const BENCH_DIR = import.meta.dir;
const GS_DIR = join(BENCH_DIR, "gossipsub");
const GS_BUILD = join(GS_DIR, "node_modules", ".bench");
const RESULTS = join(BENCH_DIR, "results");

async function sh(cmd: string[], cwd: string, log: (line: string) => void): Promise<void> {
  const proc = Bun.spawn(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) {
    log(out + err);
    throw new Error(`${cmd.join(" ")} (in ${cwd}) exited ${code}`);
  }
}

/** `npm ci` (or `npm install` without a lockfile) in bench/gossipsub once, then the Node bundle of the harness. */
export async function prepareGossipsub(log: (line: string) => void): Promise<void> {
  if (!existsSync(join(GS_DIR, "node_modules", "@libp2p", "gossipsub", "package.json"))) {
    const ci = existsSync(join(GS_DIR, "package-lock.json"));
    log(`installing js-libp2p gossipsub into bench/gossipsub (npm ${ci ? "ci" : "install"}) …`);
    const t0 = performance.now();
    await sh(["npm", ci ? "ci" : "install", "--no-audit", "--no-fund", "--loglevel=error"], GS_DIR, log);
    log(`installed in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  mkdirSync(GS_BUILD, { recursive: true });
  const built = await Bun.build({
    entrypoints: [join(GS_DIR, "main.ts")],
    target: "node",
    format: "esm",
    packages: "external",
    outdir: GS_BUILD,
    naming: "harness.mjs",
  });
  if (!built.success) throw new Error(`bundling the gossipsub harness failed: ${built.logs.join("\n")}`);
  // libp2p 3 uses Promise.withResolvers (Node ≥ 22); Node 20 runs it with this one polyfill, loaded before anything.
  writeFileSync(
    join(GS_BUILD, "polyfill.mjs"),
    "Promise.withResolvers ??= function () { let resolve, reject; const promise = new Promise((a, b) => { resolve = a; reject = b; }); return { promise, resolve, reject }; };\n",
  );
}

export function nodeVersion(): string {
  const r = Bun.spawnSync(["node", "--version"]);
  return r.success ? r.stdout.toString().trim() : "node missing";
}

/** One run of `impl` in its own process; progress lines go to `log`. */
export async function runIsolated(impl: Impl, spec: RunSpec, log: (line: string) => void): Promise<RunResult> {
  mkdirSync(RESULTS, { recursive: true });
  const out = join(RESULTS, `run-${process.pid}-${impl}-${spec.nodes}.tmp`);
  const args = [...specToArgs(spec), "--out", out];
  const cmd =
    impl === "ours"
      ? [process.execPath, join(BENCH_DIR, "index.ts"), "net-run", ...args]
      : ["node", "--expose-gc", "--import", join(GS_BUILD, "polyfill.mjs"), join(GS_BUILD, "harness.mjs"), ...args, ...(impl === "gossipsub-unsigned" ? ["--unsigned"] : [])];
  const proc = Bun.spawn(cmd, { stdout: "pipe", stderr: "pipe" });
  const lines = (async () => {
    const decoder = new TextDecoder();
    let rest = "";
    for await (const chunk of proc.stdout) {
      rest += decoder.decode(chunk);
      const parts = rest.split("\n");
      rest = parts.pop()!;
      for (const line of parts) log(`    ${line}`);
    }
  })();
  const [stderr, code] = await Promise.all([new Response(proc.stderr).text(), proc.exited, lines]);
  if (code !== 0 || !existsSync(out)) throw new Error(`${impl} run (N=${spec.nodes}) failed with exit ${code}:\n${stderr.slice(-2000)}`);
  const result = JSON.parse(readFileSync(out, "utf8")) as RunResult;
  rmSync(out, { force: true });
  return result;
}
