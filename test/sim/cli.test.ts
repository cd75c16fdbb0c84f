/**
 * `gossip simulate` as a command (a subprocess through src/cli.ts): the JSON and report it writes, a sweep, a report
 * from earlier results, and usage errors (exit 2 before anything runs).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = mkdtempSync(join(tmpdir(), "gossip-sim-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function gossip(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "../../src/cli.ts"), ...args], { stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

describe("gossip simulate", () => {
  test("one run: a table row on stdout, the JSON in --json, a Markdown summary and SVG charts in --report", async () => {
    const json = join(dir, "one.json");
    const report = join(dir, "one");
    const r = await gossip("simulate", "--nodes", "40", "--items", "3", "--seed", "2", "--json", json, "--report", report, "--quiet");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("| 40 | 6 | steady |");
    const result = JSON.parse(readFileSync(json, "utf8"));
    expect(result).toMatchObject({ nodes: 40, degree: 6, dissemination: "flood", scenario: "steady", seed: 2, items: 3 });
    for (const key of ["delivered_ratio", "items_fully_delivered", "copies_per_delivery", "rmr", "amplification", "latency_ms", "last_delivery_ms", "ldh", "messages", "bytes", "sim_seconds", "wall_seconds", "peak_rss_mb", "events"]) {
      expect(result).toHaveProperty(key);
    }
    expect(readFileSync(join(report, "README.md"), "utf8")).toContain("gossip simulate --nodes 40 --items 3 --seed 2");
    expect(readFileSync(join(report, "latency-cdf.svg"), "utf8")).toStartWith("<svg");
  }, 30_000);

  test("a sweep: one run per value, a JSON array, the failure chart; a report from those results alone", async () => {
    const json = join(dir, "sweep.json");
    const r = await gossip("simulate", "--nodes", "40", "--items", "2", "--sweep", "scenario=steady,failure:0.5:2", "--json", json, "--quiet");
    expect(r.code).toBe(0);
    const results = JSON.parse(readFileSync(json, "utf8"));
    expect(results.map((x: { scenario: string }) => x.scenario)).toEqual(["steady", "failure:0.5:2"]);
    const report = join(dir, "from-inputs");
    expect((await gossip("simulate", "--inputs", json, "--report", report)).code).toBe(0);
    expect(existsSync(join(report, "delivered-vs-failure.svg"))).toBe(true);
  }, 30_000);

  test("usage errors exit 2 before any run", async () => {
    for (const args of [["--nodes", "x"], ["--scenario", "bogus"], ["--dissemination", "gossipsub"], ["--overlay", "mesh"], ["--tree", "graftTimeoutMs=soon"], ["--latency", "fast"], ["--sweep", "colour=red"]]) {
      const r = await gossip("simulate", ...args);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toContain("usage: gossip simulate");
    }
  }, 30_000);
});
