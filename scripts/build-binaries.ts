/**
 * `bun run build`: standalone `gossip` binaries for linux-x64 and linux-arm64 in dist/, plus dist/SHA256SUMS.
 *
 * Usage: bun scripts/build-binaries.ts [--target x64|arm64]   (default: both)
 *
 * The PoW worker is an extra entry point: without it the compiled binary has no worker to start and hangs at the
 * first handshake (bun-notes.md). Options were chosen by measurement (README "Binaries"): --bytecode with
 * --format=esm starts fastest; dotenv/bunfig autoload are off so a daemon's working directory cannot change its
 * environment. Each target is compiled into its own staging folder because `--compile` also writes side files
 * (sourcemaps, already embedded in the binary) whose names would collide between targets; only the binary is kept.
 * This script must never leave a SHA256SUMS that lists a file other than the binaries it just wrote.
 * Exports buildBinary/writeChecksums for test/binary.test.ts.
 */
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

const ROOT = join(import.meta.dir, "..");
const DIST = join(ROOT, "dist");
const ARCHES = ["x64", "arm64"] as const;
type Arch = (typeof ARCHES)[number];

export function binaryName(arch: Arch): string {
  return `gossip-linux-${arch}`;
}

/** The short commit of the checkout, with "-dirty" when tracked files differ; "unknown" without git. */
export function gitCommit(): string {
  const run = (...args: string[]) => Bun.spawnSync(["git", ...args], { cwd: ROOT, stderr: "ignore" });
  const head = run("rev-parse", "--short=12", "HEAD");
  const sha = head.stdout.toString().trim();
  if (head.exitCode !== 0 || !sha) return "unknown";
  const dirty = run("diff", "--quiet", "HEAD", "--").exitCode === 1;
  return dirty ? `${sha}-dirty` : sha;
}

/** Compiles one target into dist/; returns the binary's path. Throws with bun's output when the build fails. */
export function buildBinary(arch: Arch, commit: string = gitCommit()): string {
  mkdirSync(DIST, { recursive: true });
  const stage = mkdtempSync(join(tmpdir(), `gossip-build-${arch}-`));
  try {
    const staged = join(stage, binaryName(arch));
    const result = Bun.spawnSync(
      [
        process.execPath, "build", "--compile",
        "src/cli.ts", "src/p2p/pow-worker.ts",
        `--target=bun-linux-${arch}`,
        "--minify", "--sourcemap", "--bytecode", "--format=esm",
        "--no-compile-autoload-dotenv", "--no-compile-autoload-bunfig",
        "--define", `GOSSIP_BUILD_COMMIT=${JSON.stringify(commit)}`,
        "--outfile", staged,
      ],
      { cwd: ROOT, stdout: "pipe", stderr: "pipe" },
    );
    if (result.exitCode !== 0) {
      throw new Error(`bun build for ${arch} failed (exit ${result.exitCode}):\n${result.stdout}${result.stderr}`);
    }
    const out = join(DIST, binaryName(arch));
    try {
      renameSync(staged, out);
    } catch {
      copyFileSync(staged, out); // staging folder on another filesystem
    }
    return out;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** Writes dist/SHA256SUMS (`sha256sum -c` format) for exactly the given binaries in dist/. */
export function writeChecksums(arches: readonly Arch[]): string {
  const lines: string[] = [];
  for (const arch of arches) {
    const name = binaryName(arch);
    const bytes = readFileSync(join(DIST, name));
    lines.push(`${createHash("sha256").update(bytes).digest("hex")}  ${name}`);
  }
  const path = join(DIST, "SHA256SUMS");
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

if (import.meta.main) {
  const { values } = parseArgs({ args: process.argv.slice(2), options: { target: { type: "string" } } });
  const target = values.target;
  if (target !== undefined && !(ARCHES as readonly string[]).includes(target)) {
    process.stderr.write(`build-binaries: --target must be one of ${ARCHES.join(", ")}\n`);
    process.exit(2);
  }
  const arches = target ? [target as Arch] : [...ARCHES];
  const commit = gitCommit();
  for (const arch of arches) {
    const started = performance.now();
    const path = buildBinary(arch, commit);
    const secs = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`${path.slice(ROOT.length + 1)}  ${mb(statSync(path).size)}  (${statSync(path).size} bytes, ${secs} s, commit ${commit})`);
  }
  // Only what this run built: another target's binary left in dist/ may be from an older commit.
  const sums = writeChecksums(arches);
  console.log(`${sums.slice(ROOT.length + 1)}:\n${readFileSync(sums, "utf8").trimEnd()}`);
}
