import { describe, expect, test } from "bun:test";
import { simulate, type SimResult } from "../../src/sim/simulator.ts";

/** Everything but what the machine decides (wall time, memory). */
function simulated(r: SimResult): Omit<SimResult, "wall_seconds" | "wall_phases" | "peak_rss_mb"> {
  const { wall_seconds: _w, wall_phases: _p, peak_rss_mb: _m, ...rest } = r;
  return rest;
}

describe("gossip simulate", () => {
  test("200 nodes, steady flood: every item reaches every node, with the figures the JSON promises", async () => {
    const r = await simulate({ nodes: 200, degree: 6, items: 20, seed: 3 });
    expect(r.expected).toBe(20 * 199);
    expect(r.delivered_ratio).toBe(1);
    expect(r.items_fully_delivered).toBe(20);
    // Flood pushes each item to `degree` links per node (fewer where the sender or copies-in-validation are skipped).
    expect(r.copies_per_delivery).toBeGreaterThan(4.5);
    expect(r.copies_per_delivery).toBeLessThanOrEqual(6 * (200 / 199));
    expect(r.rmr).toBeCloseTo(r.copies_per_delivery * (r.delivered / (r.delivered)) - 1, 1);
    expect(r.amplification).toBeGreaterThan(r.copies_per_delivery); // framing, IDs, membership traffic
    expect(r.latency_ms.p50).toBeGreaterThan(50);
    expect(r.latency_ms.p99).toBeLessThanOrEqual(r.latency_ms.max);
    expect(r.last_delivery_ms.max).toBe(r.latency_ms.max);
    expect(r.ldh.max).toBeGreaterThanOrEqual(3);
    expect(r.messages.payload).toBeGreaterThan(0);
    expect(r.bytes.payload / r.messages.payload).toBeGreaterThan(1024 + 40);
    expect(r.warmup.messages.handshake).toBeGreaterThan(200 * 6);
    expect(r.overlay.components).toBe(1);
    expect(r.overlay.links_min).toBeGreaterThanOrEqual(1);
  });

  test("determinism: the same seed gives the same JSON (apart from wall time and RSS); another seed does not", async () => {
    const options = { nodes: 120, degree: 4, items: 10, scenario: "failure:0.3:5", seed: 11 };
    const a = await simulate(options);
    const b = await simulate(options);
    expect(simulated(a)).toEqual(simulated(b));
    const c = await simulate({ ...options, seed: 12 });
    expect(simulated(c)).not.toEqual(simulated(a));
  });

  test("strict drain: no core continuation is left for after its event (checked with a macrotask after each)", async () => {
    const options = { nodes: 60, degree: 4, items: 5, seed: 5, validationDelayMs: 0 };
    const strict = await simulate({ ...options, strictDrain: true });
    expect(simulated(strict)).toEqual(simulated(await simulate(options)));
  });
});
