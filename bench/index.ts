/**
 * `bun run bench [pow|link|net|gossipsub|compare]`: runs the named benchmark (pow and link without a name).
 *   net        our nodes, N = 10, 30, 60 by default (--nodes 30 --sizes 64,1024 --runs 1; --dissemination flood)
 *   gossipsub  js-libp2p gossipsub on the same workload (--unsigned for StrictNoSign); installs its packages first
 *   compare    both, alternating, medians of --runs (3) at --nodes (30); writes bench/results/*.json|md|svg
 *   hop        real node processes through the VoidPhone API: one-hop latency, last-node latency at N=10, a burst
 *              (--node 'CMD {config}' for any module reading the VoidPhone INI; --runs 3; --client python for
 *              bench/reference/hop_client.py as the measuring client; bench/hop.ts)
 *   report     FILE.json: writes the Markdown and SVG of a saved compare again
 *   net-run    internal: one run of ours in this process (what `net` and `compare` spawn)
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { benchCompare, printRuns, rerenderReport } from "./compare.ts";
import { benchHop, hopOptions } from "./hop.ts";
import { benchLink } from "./link.ts";
import { OURS_DEFAULTS, runOurs } from "./net.ts";
import { benchPow } from "./pow.ts";
import { runArgsToOptions } from "./run-args.ts";
import { prepareGossipsub, runIsolated, type Impl } from "./runs.ts";

const [which = "all", ...rest] = process.argv.slice(2);
const log = (line: string) => console.log(line);

function matrixFlags(argv: string[], defaults: { nodes: string; runs: string }) {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      nodes: { type: "string", default: defaults.nodes },
      runs: { type: "string", default: defaults.runs },
      sizes: { type: "string", default: "64,1024" },
      "latency-items": { type: "string" },
      "step-seconds": { type: "string" },
      unsigned: { type: "boolean" },
      dissemination: { type: "string" },
      out: { type: "string" },
    },
  });
  const d = values.dissemination;
  if (d !== undefined && d !== "flood" && d !== "plumtree") throw new Error(`--dissemination: flood or plumtree, got ${d}`);
  const nums = (s: string) => s.split(",").map(Number);
  return {
    nodes: nums(values.nodes!),
    runs: Number(values.runs),
    sizes: nums(values.sizes!),
    latencyItems: values["latency-items"] === undefined ? undefined : Number(values["latency-items"]),
    stepSeconds: values["step-seconds"] === undefined ? undefined : Number(values["step-seconds"]),
    unsigned: values.unsigned ?? false,
    dissemination: d as "flood" | "plumtree" | undefined,
    out: values.out,
  };
}

async function benchOne(impl: Impl, argv: string[]): Promise<void> {
  const f = matrixFlags(argv, { nodes: "10,30,60", runs: "1" });
  if (impl !== "ours") await prepareGossipsub(log);
  const results = [];
  for (const nodes of f.nodes) {
    for (let r = 0; r < f.runs; r++) {
      for (const size of f.sizes) {
        log(`-- ${impl} N=${nodes} run ${r + 1}/${f.runs}, ${size} B`);
        const spec = { nodes, sizes: [size], dialsPerNode: 4, latencyItems: f.latencyItems, stepSeconds: f.stepSeconds, dissemination: f.dissemination };
        results.push(await runIsolated(impl, spec, log));
      }
    }
  }
  printRuns(results, log);
}

const benches: Record<string, (argv: string[]) => Promise<unknown>> = {
  pow: () => benchPow(),
  link: () => benchLink(),
  net: (argv) => benchOne("ours", argv),
  gossipsub: (argv) => benchOne(matrixFlags(argv, { nodes: "", runs: "1" }).unsigned ? "gossipsub-unsigned" : "gossipsub", argv),
  hop: async (argv) => {
    const o = hopOptions(argv);
    const runs = await benchHop(o, log);
    if (o.out) writeFileSync(o.out, JSON.stringify({ options: o, runs }, null, 1));
  },
  compare: (argv) => benchCompare(matrixFlags(argv, { nodes: "30", runs: "3" }), log),
  report: async (argv) => rerenderReport(argv[0] ?? "bench/results/compare-n30.json", log),
  "net-run": async (argv) => {
    const { values } = parseArgs({ args: argv, strict: false, options: { out: { type: "string" } } });
    const { nodes, dialsPerNode, dissemination, workload } = runArgsToOptions(argv, log);
    const result = await runOurs({ ...OURS_DEFAULTS, nodes, dialsPerNode, dissemination }, workload);
    // Internal, but handy by hand: without --out the result goes to stdout (not to a file named "undefined").
    if (typeof values.out === "string") writeFileSync(values.out, JSON.stringify(result));
    else console.log(JSON.stringify(result));
  },
};

if (which !== "all" && !benches[which]) {
  console.error(`unknown benchmark "${which}"; choose one of: ${Object.keys(benches).join(", ")}`);
  process.exit(2);
}
for (const name of which === "all" ? ["pow", "link"] : [which]) {
  if (name !== "net-run" && name !== "report") console.log(`== bench ${name}`);
  await benches[name]!(rest);
}
process.exit(0);
