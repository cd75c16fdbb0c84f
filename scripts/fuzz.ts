/**
 * Long runs of the decoder properties in test/hostile/properties.ts (issue 8): any bytes into the API codec and
 * reader, the frame reader, the link-message decoder and the handshake must give a result or our protocol error.
 *
 *   bun run fuzz                      100 000 cases per property
 *   bun run fuzz --runs N             N cases per property
 *   bun run fuzz --seconds S          about S seconds in all, shared between the properties
 *   bun run fuzz --seed X             replay a run (fast-check prints the seed of a failure)
 *
 * Exits 1 with fast-check's report (the shrunk counterexample and its seed) on the first failing property.
 */
import { properties } from "../test/hostile/properties.ts";

function usage(message: string): never {
  console.error(`${message}\nusage: bun run fuzz [--runs N] [--seconds S] [--seed X]`);
  process.exit(2);
}

function parse(argv: string[]): { runs?: number; seconds?: number; seed?: number } {
  const out: { runs?: number; seconds?: number; seed?: number } = {};
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i]!, argv[i + 1]];
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n) || n < 0) usage(`${flag} needs a non-negative number`);
    if (flag === "--runs") out.runs = Math.floor(n);
    else if (flag === "--seconds") out.seconds = n;
    else if (flag === "--seed") out.seed = Math.floor(n);
    else usage(`unknown option ${flag}`);
  }
  return out;
}

const args = parse(process.argv.slice(2));
const timeLimitMs = args.seconds === undefined ? undefined : (args.seconds * 1000) / properties.length;
const numRuns = args.runs ?? (timeLimitMs === undefined ? 100_000 : undefined);
let total = 0;
for (const p of properties) {
  const started = performance.now();
  const { runs, failure } = p.check({ numRuns, timeLimitMs, seed: args.seed });
  const seconds = (performance.now() - started) / 1000;
  total += runs;
  console.log(`${failure ? "FAIL" : "ok  "} ${runs.toString().padStart(9)} cases ${seconds.toFixed(1).padStart(6)} s  ${p.name}`);
  if (failure) {
    console.error(failure);
    process.exit(1);
  }
}
console.log(`${total} cases, no failure`);
