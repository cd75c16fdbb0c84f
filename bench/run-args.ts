/**
 * The command line of one benchmark run (one implementation, one N), shared by our run (`bench net-run`, Bun) and the
 * gossipsub run (Node), so that both parse the same workload the same way. Portable: no Bun APIs.
 */
import { parseArgs } from "node:util";
import { DEFAULT_WORKLOAD, type WorkloadOptions } from "./workload.ts";

export interface RunSpec {
  nodes: number;
  sizes: number[];
  dialsPerNode: number;
  /** Workload overrides (latency items, sweep steps …); DEFAULT_WORKLOAD otherwise. */
  latencyItems?: number;
  stepSeconds?: number;
  sweepStart?: number;
  seed?: number;
  /** Our nodes' gossip.dissemination (default: the node's default); gossipsub ignores it. */
  dissemination?: "plumtree" | "flood";
}

const list = (text: string) => text.split(",").filter((x) => x !== "").map(Number);

export function specToArgs(s: RunSpec): string[] {
  const args = ["--nodes", String(s.nodes), "--sizes", s.sizes.join(","), "--dials", String(s.dialsPerNode)];
  if (s.latencyItems !== undefined) args.push("--latency-items", String(s.latencyItems));
  if (s.stepSeconds !== undefined) args.push("--step-seconds", String(s.stepSeconds));
  if (s.sweepStart !== undefined) args.push("--sweep-start", String(s.sweepStart));
  if (s.seed !== undefined) args.push("--seed", String(s.seed));
  if (s.dissemination !== undefined) args.push("--dissemination", s.dissemination);
  return args;
}

export function runArgsToOptions(
  argv: string[],
  log: (line: string) => void,
): { nodes: number; dialsPerNode: number; dissemination?: "plumtree" | "flood"; workload: WorkloadOptions } {
  const { values: v } = parseArgs({
    args: argv,
    strict: false,
    options: {
      nodes: { type: "string" },
      sizes: { type: "string" },
      dials: { type: "string" },
      "latency-items": { type: "string" },
      "step-seconds": { type: "string" },
      "sweep-start": { type: "string" },
      seed: { type: "string" },
      dissemination: { type: "string" },
    },
  });
  const dissemination = v.dissemination === "flood" || v.dissemination === "plumtree" ? v.dissemination : undefined;
  const num = (x: unknown, fallback: number) => (typeof x === "string" ? Number(x) : fallback);
  return {
    nodes: num(v.nodes, 30),
    dialsPerNode: num(v.dials, 4),
    dissemination,
    workload: {
      ...DEFAULT_WORKLOAD,
      sizes: typeof v.sizes === "string" ? list(v.sizes) : [64, 1024],
      latencyItems: num(v["latency-items"], DEFAULT_WORKLOAD.latencyItems),
      stepSeconds: num(v["step-seconds"], DEFAULT_WORKLOAD.stepSeconds),
      sweepStart: num(v["sweep-start"], DEFAULT_WORKLOAD.sweepStart),
      seed: num(v.seed, DEFAULT_WORKLOAD.seed),
      log,
    },
  };
}
