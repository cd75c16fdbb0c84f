/**
 * `bench hop` at a tiny size, real node processes through the VoidPhone API: ours, and the plain-TCP floor
 * (bench/reference/plain_gossip.py) when python3 is here, and ours measured by the Python client
 * (`--client python`, bench/reference/hop_client.py). Nothing lost in any phase and the report's fields sane
 * (positive, ordered percentiles, CPU per delivery read from /proc). No timing figure is asserted.
 */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { benchHop, hopOptions } from "../bench/hop.ts";

const tiny = ["--runs", "1", "--hop-items", "20", "--warm-items", "10", "--nodes", "3", "--items", "4", "--rate", "40", "--burst", "30", "--settle-ms", "200"];
const python3 = Bun.which("python3");

async function runTiny(extra: string[]) {
  const o = hopOptions([...tiny, ...extra]);
  const lines: string[] = [];
  const [run] = await benchHop(o, (l) => lines.push(l));
  return { run: run!, lines };
}

function expectSane(run: Awaited<ReturnType<typeof runTiny>>["run"]) {
  expect(run.hop.lost).toBe(0);
  expect(run.hop.p50).toBeGreaterThan(0);
  expect(run.hop.p50).toBeLessThanOrEqual(run.hop.p90);
  expect(run.hop.p90).toBeLessThanOrEqual(run.hop.p99);
  expect(run.lastNode.delivered).toBe(run.lastNode.expected);
  expect(run.lastNode.expected).toBe(4);
  expect(run.lastNode.p50).toBeGreaterThan(0);
  expect(run.lastNode.p50).toBeLessThanOrEqual(run.lastNode.p99);
  for (const b of [run.firstBurst, run.burst]) {
    expect(b.expected).toBe(30 * 2);
    expect(b.lost).toBe(0);
    expect(b.delivered).toBe(b.expected);
    expect(b.deliveriesPerSec).toBeGreaterThan(0);
    expect(b.seconds).toBeGreaterThan(0);
    expect(b.clientCpuUsPerDelivery).toBeGreaterThanOrEqual(0);
  }
  // Read from /proc (NaN when unreadable); in clock ticks of 10 ms, so a burst this small may measure 0.
  expect(Number.isFinite(run.burst.cpuUsPerDelivery) && run.burst.cpuUsPerDelivery >= 0).toBe(true);
}

describe("bench hop", () => {
  test("ours: nothing lost in the hop, the last-node phase and both bursts; sane fields", async () => {
    const { run, lines } = await runTiny([]);
    expectSane(run);
    expect(lines.some((l) => l.includes("pow_difficulty 8"))).toBe(true);
  }, 60_000);

  test.skipIf(python3 === null)("the plain-TCP floor under the same client: nothing lost either", async () => {
    const { run } = await runTiny(["--node", `python3 ${join(import.meta.dir, "..", "bench", "reference", "plain_gossip.py")} -c {config}`]);
    expectSane(run);
  }, 60_000);

  test.skipIf(python3 === null)("ours under the Python client (--client python): nothing lost; sane fields", async () => {
    const { run, lines } = await runTiny(["--client", "python"]);
    expectSane(run);
    expect(lines.some((l) => l.startsWith("measuring client: python3") && l.endsWith("hop_client.py"))).toBe(true);
    expect(lines.some((l) => l.includes("pow_difficulty 8"))).toBe(true);
  }, 60_000);

  test("--node must name {config}; --client is bun or python", () => {
    expect(() => hopOptions(["--node", "gossip"])).toThrow("{config}");
    expect(hopOptions([]).client).toBe("bun");
    expect(hopOptions(["--client", "python"]).client).toBe("python");
    expect(() => hopOptions(["--client", "rust"])).toThrow("--client");
  });
});
