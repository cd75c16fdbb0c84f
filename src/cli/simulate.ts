/**
 * `gossip simulate` (also `bun run sim`): parses its flags, runs the discrete-event simulator (src/sim/simulator.ts)
 * once or once per value of `--sweep`, prints a progress line on stderr and a summary table on stdout, and writes the
 * JSON (`--json FILE`) and the Markdown/SVG report (`--report DIR`). `--inputs a.json,b.json` builds a report from
 * earlier results without running anything. Holds no simulation logic.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { SIM_RAM_HINT_BYTES_PER_NODE, SIM_RAM_HINT_MIN_BYTES } from "../defaults.ts";
import { join } from "node:path";
import { UsageError } from "../errors.ts";
import { reportFiles, TABLE_HEADER, TABLE_RULE, tableRow } from "../sim/report.ts";
import { parseScenario } from "../sim/scenario.ts";
import { DISSEMINATIONS, OVERLAYS, simulate, type Dissemination, type Progress, type SimOptions, type SimOverlay, type SimResult } from "../sim/simulator.ts";
import { parseOptions } from "./common.ts";

const SIMULATE_USAGE = `usage: gossip simulate [--nodes N] [--degree D] [--dissemination flood|plumtree] [--overlay classic|hyparview] [--scenario S] [--items K]
                       [--size BYTES] [--rate PER_S] [--seed N] [--latency MODEL] [--uplink MBIT]
                       [--json FILE|-] [--report DIR] [--sweep KEY=V1,V2,…] [--inputs A.json,B.json,…]
  A deterministic simulation of N nodes (default 1000, degree 6) running the real gossip core on virtual time.
  Scenarios: steady (default), failure:F[:S], churn[:R], partition[:F], attack:BEHAVIOUR:RATIO, newcomer[:K].
  Attacks (src/sim/adversary.ts): censor, invalid, spam, ihave-flood, graft-flood, eclipse, cold-boot, covert-flash.
  Latency: coordinates (default: RTTs ~10–290 ms, median ~100) or fixed:MS (one-way). docs/simulation.md has it all.
  More: --jitter F --loss P --pow-difficulty B --hash-rate H --validation-ms MS --invalid-nodes F --reject-rate P
        --dead-ends F --bootstrappers K --join-rate R --topology join|dials:K --crash reset|silent --warmup-min S --warmup-max S --drain S --quiet-after S
        --views-wait S (after the drain, run on until every view is full, at most S s)
        --scoring on|off (peer-score bans; default on)
        --quiet (no progress line) --strict-drain (check that every promise continuation ran in its event; slow)
  --sweep runs once per value (nodes, degree, scenario, items, size, rate, seed, latency, uplink), and once per
  combination with ";" between keys: --sweep "degree=6,30;scenario=steady,failure:0.5"; --json FILE then holds a
  JSON array (rewritten after each run). --inputs A.json,… --report DIR: a report from earlier results, no run.`;

const FLAGS = {
  nodes: { type: "string" },
  degree: { type: "string" },
  dissemination: { type: "string" },
  overlay: { type: "string" },
  tree: { type: "string" },
  "warmup-items": { type: "string" },
  scenario: { type: "string" },
  items: { type: "string" },
  size: { type: "string" },
  rate: { type: "string" },
  seed: { type: "string" },
  latency: { type: "string" },
  uplink: { type: "string" },
  jitter: { type: "string" },
  loss: { type: "string" },
  "pow-difficulty": { type: "string" },
  "hash-rate": { type: "string" },
  "validation-ms": { type: "string" },
  "invalid-nodes": { type: "string" },
  "reject-rate": { type: "string" },
  "dead-ends": { type: "string" },
  bootstrappers: { type: "string" },
  "join-rate": { type: "string" },
  topology: { type: "string" },
  crash: { type: "string" },
  "warmup-min": { type: "string" },
  "warmup-max": { type: "string" },
  drain: { type: "string" },
  "quiet-after": { type: "string" },
  "views-wait": { type: "string" },
  json: { type: "string" },
  report: { type: "string" },
  sweep: { type: "string" },
  inputs: { type: "string" },
  quiet: { type: "boolean" },
  "strict-drain": { type: "boolean" },
  scoring: { type: "string" },
} as const;

const SWEEPABLE = ["nodes", "degree", "scenario", "items", "size", "rate", "seed", "latency", "uplink"];

type Values = Record<string, string | boolean | undefined>;

function num(values: Values, flag: string, min: number, max: number, integer = false): number | undefined {
  const text = values[flag];
  if (text === undefined) return undefined;
  const n = Number(text);
  if (typeof text !== "string" || text.trim() === "" || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${flag}: expected ${integer ? "an integer" : "a number"} ${min}–${max}, got "${String(text)}"`);
  }
  return n;
}

export function optionsFrom(values: Values): SimOptions {
  const dissemination = (values.dissemination as string | undefined) ?? "flood";
  if (!(DISSEMINATIONS as readonly string[]).includes(dissemination)) {
    throw new UsageError(`--dissemination: expected ${DISSEMINATIONS.join(" or ")}, got "${dissemination}"`);
  }
  const overlay = (values.overlay as string | undefined) ?? "classic";
  if (!(OVERLAYS as readonly string[]).includes(overlay)) throw new UsageError(`--overlay: expected ${OVERLAYS.join(" or ")}, got "${overlay}"`);
  const scenario = (values.scenario as string | undefined) ?? "steady";
  parseScenario(scenario); // a UsageError now, not after the first table line
  const latency = values.latency as string | undefined;
  if (latency !== undefined && latency !== "coordinates" && !/^fixed:\d+(\.\d+)?$/.test(latency)) {
    throw new UsageError(`--latency: expected coordinates or fixed:MS, got "${latency}"`);
  }
  const topology = values.topology as string | undefined;
  if (topology !== undefined && topology !== "join" && !/^dials:\d+$/.test(topology)) throw new UsageError(`--topology: expected join or dials:K`);
  const crash = values.crash as string | undefined;
  if (crash !== undefined && crash !== "reset" && crash !== "silent") throw new UsageError(`--crash: expected reset or silent`);
  return {
    nodes: num(values, "nodes", 2, 1_000_000, true) ?? 1000,
    degree: num(values, "degree", 1, 1000, true) ?? 6,
    dissemination: dissemination as Dissemination,
    overlay: overlay as SimOverlay,
    tree: treeTunables(values.tree as string | undefined),
    warmupItems: num(values, "warmup-items", 0, 100_000, true),
    scenario,
    items: num(values, "items", 0, 1_000_000, true),
    size: num(values, "size", 4, 65_527, true),
    rate: num(values, "rate", 0.001, 1_000_000),
    seed: num(values, "seed", 0, 2 ** 32 - 1, true),
    latency,
    uplinkMbit: num(values, "uplink", 0.001, 1_000_000),
    jitter: num(values, "jitter", 0, 10),
    loss: num(values, "loss", 0, 1),
    powDifficulty: num(values, "pow-difficulty", 0, 40, true),
    hashRate: num(values, "hash-rate", 1, 1e15),
    validationDelayMs: num(values, "validation-ms", 0, 60_000),
    invalidNodes: num(values, "invalid-nodes", 0, 1),
    rejectRate: num(values, "reject-rate", 0, 1),
    deadEnds: num(values, "dead-ends", 0, 1),
    bootstrappers: num(values, "bootstrappers", 1, 1000, true),
    joinRate: num(values, "join-rate", 0.001, 1e9),
    topology,
    crash: crash as "reset" | "silent" | undefined,
    warmupMinS: num(values, "warmup-min", 0, 86_400),
    warmupMaxS: num(values, "warmup-max", 0, 86_400),
    drainMaxS: num(values, "drain", 0, 86_400),
    quietS: num(values, "quiet-after", 0, 86_400),
    viewsWaitS: num(values, "views-wait", 0, 86_400),
    strictDrain: values["strict-drain"] === true,
    scoring: onOff(values.scoring as string | undefined),
  };
}

function onOff(text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  if (text !== "on" && text !== "off") throw new UsageError(`--scoring: expected on or off, got "${text}"`);
  return text === "on";
}

function writeJson(file: string, results: SimResult[], planned: number): void {
  writeFileSync(file, JSON.stringify(planned === 1 ? results[0] : results, null, 2) + "\n");
}

function progressLine(p: Progress): string {
  const rate = p.wallSeconds > 0 ? p.events / p.wallSeconds : 0;
  const perSimSecond = p.simSeconds > 0 ? p.wallSeconds / p.simSeconds : 0;
  const eta = Math.round(p.simSecondsLeft * perSimSecond);
  return `sim ${p.simSeconds.toFixed(1)} s  ${p.phase}  items ${p.published}/${p.items}  events ${(p.events / 1e6).toFixed(2)} M (${Math.round(rate / 1000)}k/s)  wall ${Math.round(p.wallSeconds)} s  ETA ≤ ${eta} s`;
}

/**
 * JSC sizes its garbage collection by the machine's RAM and lets a short-lived allocation storm (the core makes an
 * ID string per received copy) grow the heap far past what is live: at 10,000 nodes the RSS peaked at 2.1–2.5 GB with
 * ~0.4 GB live. Told a smaller RAM (BUN_JSC_forceRAMSize) it collects sooner at no measurable cost (10,000 nodes,
 * 100 items: 1.43 GB, same wall time). The option is read at start, so the command runs itself again with it, scaled
 * to the network (a compiled binary, whose script is not a file, runs as it is).
 */
async function rerunWithHeapBound(argv: string[], nodes: number): Promise<number | undefined> {
  if (process.env.BUN_JSC_forceRAMSize !== undefined) return undefined;
  const script = process.argv[1];
  if (script === undefined || !existsSync(script)) return undefined;
  const bytes = Math.max(SIM_RAM_HINT_MIN_BYTES, nodes * SIM_RAM_HINT_BYTES_PER_NODE);
  const child = Bun.spawn([process.execPath, script, "simulate", ...argv], {
    env: { ...process.env, BUN_JSC_forceRAMSize: String(bytes) },
    stdio: ["inherit", "inherit", "inherit"],
  });
  return await child.exited;
}

export async function simulateCommand(argv: string[]): Promise<number | "help"> {
  let values: Values;
  let runs: { options: SimOptions; command: string }[];
  try {
    const parsed = parseOptions(argv, FLAGS);
    values = parsed.values as Values;
    if (values.help) {
      process.stdout.write(SIMULATE_USAGE + "\n");
      return 0;
    }
    if (parsed.positionals.length > 0) throw new UsageError(`unexpected argument "${parsed.positionals[0]}"`);
    runs = planRuns(argv, values);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`gossip simulate: ${e.message}\n${SIMULATE_USAGE}\n`);
    return 2;
  }
  if (values.inputs === undefined) {
    const rerun = await rerunWithHeapBound(argv, Math.max(...runs.map((r) => r.options.nodes)));
    if (rerun !== undefined) return rerun;
  }
  const results: SimResult[] = [];
  const json = values.json as string | undefined;
  if (values.inputs !== undefined) {
    for (const file of (values.inputs as string).split(",")) {
      const parsed = JSON.parse(readFileSync(file, "utf8")) as SimResult | SimResult[];
      results.push(...(Array.isArray(parsed) ? parsed : [parsed]));
    }
  } else {
    process.stdout.write(`${TABLE_HEADER}\n${TABLE_RULE}\n`);
    for (const run of runs) {
      const tty = process.stderr.isTTY;
      const progress = values.quiet ? undefined : (p: Progress) => process.stderr.write(tty ? `\r${progressLine(p)}\x1b[K` : `${progressLine(p)}\n`);
      const result = await simulate({ ...run.options, progress });
      if (progress && tty) process.stderr.write("\n");
      results.push(result);
      process.stdout.write(tableRow(result) + "\n");
      // A long sweep keeps what it has: the file is rewritten after every run.
      if (json !== undefined && json !== "-") writeJson(json, results, runs.length);
    }
  }
  if (json === "-") process.stdout.write(JSON.stringify(results.length === 1 ? results[0] : results, null, 2) + "\n");
  else if (json !== undefined && values.inputs !== undefined) writeJson(json, results, results.length);
  const dir = values.report as string | undefined;
  if (dir !== undefined) {
    mkdirSync(dir, { recursive: true });
    const files = reportFiles(results, values.inputs === undefined ? runs.map((r) => r.command) : []);
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  }
  return 0;
}

/**
 * One run, or one per combination of --sweep values ("KEY=V1,V2;KEY2=W1,W2": every V with every W), each with the
 * command line that reproduces it alone (for the report).
 */
function planRuns(argv: string[], values: Values): { options: SimOptions; command: string }[] {
  optionsFrom(values); // the flags as given must parse on their own
  const dropped = new Set(["--sweep", "--json", "--report", "--quiet", "--inputs"]);
  const plain = argv.filter((a, i) => !dropped.has(a) && !(dropped.has(argv[i - 1] ?? "") && argv[i - 1] !== "--quiet"));
  const sweep = values.sweep as string | undefined;
  let combos: [string, string][][] = [[]];
  for (const part of sweep === undefined ? [] : sweep.split(";")) {
    const m = /^([a-z-]+)=(.+)$/.exec(part.trim());
    if (!m || !SWEEPABLE.includes(m[1]!)) throw new UsageError(`--sweep: expected KEY=V1,V2,… (; between keys) with KEY one of ${SWEEPABLE.join(", ")}`);
    const key = m[1]!;
    combos = combos.flatMap((c) => m[2]!.split(",").map((v) => [...c, [key, v] as [string, string]]));
  }
  return combos.map((combo) => {
    const swept = new Set(combo.map(([k]) => `--${k}`));
    const args = plain.filter((a, i) => !swept.has(a) && !swept.has(plain[i - 1] ?? ""));
    const options = optionsFrom({ ...values, ...Object.fromEntries(combo) });
    return { options, command: ["gossip simulate", ...args, ...combo.flatMap(([k, v]) => [`--${k}`, v])].join(" ") };
  });
}

/** `--tree graftTimeoutMs=100,lazyFanout=8`: broadcast-tree parameters for tuning runs (names as in TreeTunables). */
function treeTunables(text: string | undefined): Record<string, number> | undefined {
  if (text === undefined) return undefined;
  const out: Record<string, number> = {};
  for (const pair of text.split(",")) {
    const [key, value] = pair.split("=");
    const n = Number(value);
    if (!key || !Number.isFinite(n)) throw new UsageError(`--tree: expected key=number pairs, got "${pair}"`);
    out[key.trim()] = n;
  }
  return out;
}
