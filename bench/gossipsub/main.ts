/**
 * Entry of one gossipsub run under Node: bundled by ../gossipsub.ts (packages left external, resolved from
 * bench/gossipsub/node_modules) and started as `node --expose-gc --import polyfill.mjs harness.mjs ARGS`.
 * Writes the RunResult as JSON to --out and its progress lines to stdout.
 */
import { writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { runGossipsub } from "./harness.ts";
import { runArgsToOptions } from "../run-args.ts";

const { values } = parseArgs({ args: process.argv.slice(2), strict: false, options: { unsigned: { type: "boolean" }, out: { type: "string" } } });
const { nodes, dialsPerNode, workload } = runArgsToOptions(process.argv.slice(2), (line) => console.log(line));
const result = await runGossipsub({ nodes, dialsPerNode, signed: !values.unsigned }, workload);
writeFileSync(String(values.out), JSON.stringify(result));
process.exit(0);
