/**
 * `bun run bench compare`: ours and js-libp2p gossipsub (signed defaults, and unsigned) on the same workload, runs
 * alternating (ours, gossipsub, unsigned, ours, …) so that drift in machine load spreads over all of them; medians of
 * the runs; one table with the ratios against the issue's goals; JSON, Markdown and an SVG chart in bench/results/.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { compareChart, type Series } from "./chart.ts";
import { IMPLS, nodeVersion, prepareGossipsub, runIsolated, type Impl } from "./runs.ts";
import type { RunResult } from "./workload.ts";

export interface CompareFlags {
  nodes: number[];
  runs: number;
  sizes: number[];
  latencyItems?: number;
  stepSeconds?: number;
  /** Our nodes' gossip.dissemination (default: the node's default). */
  dissemination?: "plumtree" | "flood";
}

const median = (xs: number[]) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};

export interface Row {
  impl: string;
  size: number;
  runs: number;
  /** Deliveries in the latency phase and the sustained sweep steps (what a network that keeps up must deliver). */
  delivered: number;
  expected: number;
  /** Deliveries missing at the end of steps that overloaded the network (items dropped by send or validation bounds). */
  lostUnderOverload: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  copiesPerDelivery: number;
  maxSustainedMsgPerSec: number;
  maxSustainedDeliveriesPerSec: number;
  cpuUsPerDelivery: number;
  rssPerNodeMB: number;
  meanLinks: number;
}

/** Medians over runs, per implementation and item size (delivered/expected are summed). Runs hold one size each. */
export function summarize(results: RunResult[]): Row[] {
  const rows: Row[] = [];
  for (const impl of [...new Set(results.map((r) => r.impl))]) {
    const sizes = [...new Set(results.filter((r) => r.impl === impl).flatMap((r) => r.sizes.map((s) => s.size)))];
    for (const size of sizes) {
      const runs = results.filter((r) => r.impl === impl && r.sizes.some((s) => s.size === size));
      const per = runs.map((r) => r.sizes.find((s) => s.size === size)!);
      rows.push({
        impl,
        size,
        runs: runs.length,
        delivered: per.reduce((a, s) => a + s.latency.delivered + s.sweep.reduce((b, x) => b + (x.sustained ? x.delivered : 0), 0), 0),
        expected: per.reduce((a, s) => a + s.latency.expected + s.sweep.reduce((b, x) => b + (x.sustained ? x.expected : 0), 0), 0),
        lostUnderOverload: per.reduce((a, s) => a + s.sweep.reduce((b, x) => b + (x.sustained ? 0 : x.expected - x.delivered), 0), 0),
        p50Ms: median(per.map((s) => s.latency.p50Ms)),
        p99Ms: median(per.map((s) => s.latency.p99Ms)),
        maxMs: median(per.map((s) => s.latency.maxMs)),
        copiesPerDelivery: median(per.map((s) => s.latency.copiesPerDelivery)),
        maxSustainedMsgPerSec: median(per.map((s) => s.maxSustainedMsgPerSec)),
        maxSustainedDeliveriesPerSec: median(per.map((s) => s.maxSustainedDeliveriesPerSec)),
        cpuUsPerDelivery: median(per.map((s) => s.cpuUsPerDeliveryAtMax)),
        rssPerNodeMB: median(runs.map((r) => r.rssPerNodeMB)),
        meanLinks: median(runs.map((r) => (2 * r.links) / r.nodes)),
      });
    }
  }
  return rows;
}

const f = (v: number, digits = 1) => (Number.isFinite(v) ? v.toFixed(digits) : "–");

export function table(rows: Row[]): string {
  const head =
    "| impl | size | delivered | last-node p50 / p99 / max (ms) at 10 msg/s | copies per delivery | max sustained msg/s (deliveries/s) | CPU µs per delivery | RSS per node (MB) | links per node | lost under overload |";
  const sep = "|---|---|---|---|---|---|---|---|---|---|";
  const lines = rows.map(
    (r) =>
      `| ${r.impl} | ${r.size} B | ${f((100 * r.delivered) / r.expected, 2)}% | ${f(r.p50Ms)} / ${f(r.p99Ms)} / ${f(r.maxMs)} | ${f(r.copiesPerDelivery, 2)} | ` +
      `${f(r.maxSustainedMsgPerSec, 0)} (${f(r.maxSustainedDeliveriesPerSec, 0)}) | ${f(r.cpuUsPerDelivery, 0)} | ${f(r.rssPerNodeMB, 2)} | ${f(r.meanLinks)} | ${r.lostUnderOverload} |`,
  );
  return [head, sep, ...lines].join("\n");
}

/** Ours against one gossipsub variant, per size, with the issue's goals. */
export function ratios(rows: Row[], against: string): string {
  const lines = ["| size | sustained deliveries/s (goal ≥ 10×) | p99 at 10 msg/s (goal ≤ 0.25×) | RSS per node (goal ≤ 0.25×) | ours delivered (goal 100%) |", "|---|---|---|---|---|"];
  for (const ours of rows.filter((r) => r.impl === "ours")) {
    const gs = rows.find((r) => r.impl === against && r.size === ours.size);
    if (!gs) continue;
    const tput = ours.maxSustainedDeliveriesPerSec / gs.maxSustainedDeliveriesPerSec;
    const p99 = ours.p99Ms / gs.p99Ms;
    const rss = ours.rssPerNodeMB / gs.rssPerNodeMB;
    const mark = (ok: boolean) => (ok ? "met" : "missed");
    lines.push(
      `| ${ours.size} B | ${f(tput)}× (${mark(tput >= 10)}) | ${f(p99, 2)}× (${mark(p99 <= 0.25)}) | ${f(rss, 2)}× (${mark(rss <= 0.25)}) | ` +
        `${f((100 * ours.delivered) / ours.expected, 2)}% (${mark(ours.delivered === ours.expected)}) |`,
    );
  }
  return lines.join("\n");
}

export function printRuns(results: RunResult[], log: (line: string) => void): void {
  for (const n of [...new Set(results.map((r) => r.nodes))]) {
    log(`\nN=${n}:`);
    log(table(summarize(results.filter((r) => r.nodes === n))));
  }
}

function chartFor(results: RunResult[], nodes: number): string {
  const colors: Record<string, string> = { ours: "#1f77b4", gossipsub: "#d62728", "gossipsub-unsigned": "#ff7f0e" };
  const latency: Series[] = [];
  const sweep: Series[] = [];
  const sizes = [...new Set(results.flatMap((r) => r.sizes.map((s) => s.size)))].sort((a, b) => a - b);
  for (const impl of [...new Set(results.map((r) => r.impl))]) {
    for (const size of sizes) {
      const per = results.filter((r) => r.impl === impl).flatMap((r) => r.sizes.filter((s) => s.size === size));
      if (per.length === 0) continue;
      const style = { label: `${impl} ${size} B`, color: colors[impl] ?? "#000", dashed: size !== sizes[0] };
      latency.push({ ...style, values: per.flatMap((s) => s.latency.samples) });
      sweep.push({ ...style, points: per.flatMap((s) => s.sweep.map((x) => [x.offered * (nodes - 1), x.deliveriesPerSec] as [number, number])) });
    }
  }
  const rounds = Math.max(...[...new Set(results.map((r) => r.impl))].map((i) => results.filter((r) => r.impl === i).length)) / sizes.length;
  return compareChart(`N=${nodes} nodes in one process on 127.0.0.1, each dialing 4 random others; ${rounds} runs per implementation and size`, latency, sweep);
}

export async function benchCompare(flags: CompareFlags, log: (line: string) => void): Promise<void> {
  const t0 = performance.now();
  await prepareGossipsub(log);
  const machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? "?",
    loadBefore: loadavg().map((x) => x.toFixed(2)).join(" "),
    bun: Bun.version,
    node: nodeVersion(),
  };
  log(`machine: ${machine.cores} cores reported (${machine.cpu}), load average before ${machine.loadBefore}; bun ${machine.bun}, ${machine.node}`);
  const results: RunResult[] = [];
  for (const nodes of flags.nodes) {
    for (let r = 0; r < flags.runs; r++) {
      for (const size of flags.sizes) {
        // Alternate the order every round too, so no implementation always runs right after another one.
        const order: Impl[] = r % 2 === 0 ? IMPLS : [...IMPLS].reverse();
        for (const impl of order) {
          log(`-- N=${nodes} round ${r + 1}/${flags.runs}, ${size} B: ${impl}`);
          const spec = { nodes, sizes: [size], dialsPerNode: 4, latencyItems: flags.latencyItems, stepSeconds: flags.stepSeconds, dissemination: flags.dissemination };
          results.push(await runIsolated(impl, spec, log));
        }
      }
    }
  }
  const loadAfter = loadavg().map((x) => x.toFixed(2)).join(" ");
  writeReports({ machine: { ...machine, loadAfter }, flags, minutes: (performance.now() - t0) / 60_000, runs: results }, log);
}

interface Saved {
  machine: { cores: number; cpu: string; loadBefore: string; loadAfter: string; bun: string; node: string };
  flags: CompareFlags;
  /** Wall time of the whole compare (absent in saves from before it was recorded). */
  minutes?: number;
  runs: RunResult[];
}

/** `bench report FILE.json`: renders the Markdown and SVG again from a saved compare (e.g. after changing the report). */
export function rerenderReport(file: string, log: (line: string) => void): void {
  const saved = JSON.parse(readFileSync(file, "utf8")) as Saved;
  writeReports(saved, log);
}

function writeReports(saved: Saved, log: (line: string) => void): void {
  const { machine, flags, minutes, runs: results } = saved;
  const dir = join(import.meta.dir, "results");
  mkdirSync(dir, { recursive: true });
  for (const nodes of flags.nodes) {
    const runs = results.filter((r) => r.nodes === nodes);
    const rows = summarize(runs);
    const md = [
      `# gossip vs js-libp2p gossipsub, N=${nodes}`,
      "",
      `Command: \`npx bun run bench compare --nodes ${nodes} --runs ${flags.runs} --sizes ${flags.sizes.join(",")}${flags.dissemination ? ` --dissemination ${flags.dissemination}` : ""}\` ` +
        `(${flags.runs} rounds, implementations alternating; medians of the runs; ${minutes === undefined ? "?" : minutes.toFixed(1)} min in all).`,
      "",
      `Machine: ${machine.cores} cores reported (${machine.cpu}); load average ${machine.loadBefore} before, ${machine.loadAfter} after. ` +
        `Ours on bun ${machine.bun}; gossipsub on node ${machine.node.replace(/^v/, "")} (libp2p's Noise needs node:crypto chacha20-poly1305, which Bun lacks).`,
      "",
      table(rows),
      "",
      "Ours against gossipsub with its defaults (signed):",
      "",
      ratios(rows, "gossipsub"),
      "",
      "Ours against gossipsub unsigned (StrictNoSign):",
      "",
      ratios(rows, "gossipsub-unsigned"),
      "",
      "\"delivered\" counts the latency phase and the sweep steps the network sustained; \"lost under overload\" is what",
      "went missing in steps it did not (both implementations drop under overload: bounded queues). CPU µs per delivery",
      "is the process's user+system time at the highest sustained step over the deliveries in it (all threads, GC included).",
      "RSS per node = (RSS after a full GC, after the first latency phase − RSS before any node started) / N.",
      "",
      "Noise: every node, subscriber and publisher of a run shares one process and the machine's cores with whatever else",
      "runs; the sweep's steps are 2 s, so a step near capacity can pass or fail by chance (the spread is in the JSON).",
      "",
      `![chart](compare-n${nodes}.svg)`,
      "",
    ].join("\n");
    const base = join(dir, `compare-n${nodes}`);
    writeFileSync(`${base}.json`, JSON.stringify({ ...saved, rows, runs }, null, 1));
    writeFileSync(`${base}.md`, md);
    writeFileSync(`${base}.svg`, chartFor(runs, nodes));
    log(`\n${md}`);
    log(`wrote ${base}.json, .md, .svg`);
  }
}
