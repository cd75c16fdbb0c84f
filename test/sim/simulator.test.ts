import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/errors.ts";
import { parseScenario } from "../../src/sim/scenario.ts";
import { simulate, type SimResult } from "../../src/sim/simulator.ts";

/** Everything but what the machine decides (wall time, memory). */
function simulated(r: SimResult): Omit<SimResult, "wall_seconds" | "wall_phases" | "peak_rss_mb"> {
  const { wall_seconds: _w, wall_phases: _p, peak_rss_mb: _m, ...rest } = r;
  return rest;
}

describe("gossip simulate", () => {
  test("200 nodes, steady flood: the items reach (nearly) every node, with the figures the JSON promises", async () => {
    const r = await simulate({ nodes: 200, degree: 6, items: 20, seed: 3 });
    expect(r.expected).toBe(20 * 199);
    // Flood pushes to `degree` of ~9 links, so now and then a node hears of an item from nobody: rarely at 200 nodes.
    expect(r.delivered_ratio).toBeGreaterThan(0.99);
    expect(r.items_fully_delivered).toBeGreaterThanOrEqual(18);
    // Flood pushes each item to `degree` links per node (fewer where the sender or copies-in-validation are skipped).
    expect(r.copies_per_delivery).toBeGreaterThan(4.5);
    expect(r.copies_per_delivery).toBeLessThanOrEqual(6 * (200 / 199));
    expect(r.rmr).toBeCloseTo(r.copies_per_delivery - 1, 1); // every node reached is a delivery, bar the publishers
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

describe("network model in a whole run", () => {
  test("a narrow uplink queues the redundant copies: the same run is much slower at 1 Mbit/s; loss delays, never drops", async () => {
    const options = { nodes: 80, degree: 6, items: 10, rate: 20, seed: 13 };
    const free = await simulate(options);
    const narrow = await simulate({ ...options, uplinkMbit: 1 });
    // 6 copies of 1 KiB per node per item at 1 Mbit/s take ~50 ms before the last copy leaves.
    expect(narrow.latency_ms.p50).toBeGreaterThan(free.latency_ms.p50 + 30);
    expect(narrow.uplink_mbit).toBe(1);
    const lossy = await simulate({ ...options, loss: 0.05 });
    expect(lossy.delivered_ratio).toBeGreaterThan(0.95);
    expect(lossy.latency_ms.max).toBeGreaterThan(free.latency_ms.max);
  });
});

describe("scenarios", () => {
  test("failure: half the nodes crash at once; the survivors still get the items published 5 s later", async () => {
    const alive: number[] = [];
    const r = await simulate({
      nodes: 150,
      degree: 6,
      items: 6,
      scenario: "failure:0.5:5",
      seed: 2,
      everySecond: (world) => void alive.push(world.nodes.filter((n) => n.alive).length),
    });
    expect(alive[0]).toBe(150); // all joined (1,000 per second) by the first second
    expect(alive.at(-1)).toBe(75);
    expect(r.scenario).toBe("failure:0.5:5");
    expect(r.expected).toBe(6 * 74); // 75 survivors, minus the publisher
    expect(r.delivered_ratio).toBeGreaterThan(0.9);
  });

  test("churn: nodes replaced while items travel; only nodes present from publication to the end are expected", async () => {
    let joined = 0;
    const r = await simulate({ nodes: 120, degree: 6, items: 6, scenario: "churn:0.5", seed: 4, inspect: (world) => void (joined = world.nodes.length) });
    expect(joined).toBeGreaterThan(120 + 50); // 0.5 × 120 per minute, for over a minute
    expect(r.expected).toBeLessThan(6 * 119);
    expect(r.delivered_ratio).toBeGreaterThan(0.9);
  });

  test("partition: items spread on their own side during the split, and everywhere after the heal", async () => {
    const r = await simulate({ nodes: 120, degree: 6, items: 8, scenario: "partition:0.5", seed: 6 });
    expect(Object.keys(r.phases).sort()).toEqual(["healed", "split"]);
    const split = r.phases.split!;
    const healed = r.phases.healed!;
    expect(split.expected).toBeLessThan(4 * 70); // each split item is expected on its side only (~60 nodes)
    expect(split.delivered_ratio).toBeGreaterThan(0.9);
    expect(healed.expected).toBe(4 * 119);
    expect(healed.delivered_ratio).toBeGreaterThan(0.95);
    expect(r.sim_seconds).toBeGreaterThan(100); // 60 s split + 40 s before the healed items
  });

  test("attack:censor — adversaries link but never forward; honest figures count honest nodes only", async () => {
    const r = await simulate({ nodes: 100, degree: 6, items: 5, scenario: "attack:censor:0.5", seed: 8 });
    expect(r.adversaries).toBe(50);
    expect(r.expected).toBe(5 * 99);
    expect(r.honest_peers_banned).toBe(0);
    expect(r.delivered_ratio).toBeGreaterThan(0.5);
  });

  test("attack:invalid — garbage under correct IDs costs honest nodes validations their modules reject", async () => {
    let rejected = 0;
    const r = await simulate({
      nodes: 100,
      degree: 6,
      items: 5,
      scenario: "attack:invalid:0.2",
      seed: 9,
      inspect: (world) => {
        for (const n of world.nodes) if (n.honest) rejected += (n.logic as unknown as { broadcaster: { stats(): { invalid: number } } }).broadcaster.stats().invalid;
      },
    });
    expect(r.adversaries).toBe(20);
    expect(rejected).toBeGreaterThan(0);
    expect(r.delivered_ratio).toBeGreaterThan(0.9); // garbage is rejected, not forwarded; real items still flood
  });

  test("bad scenario specs are usage errors", () => {
    expect(() => parseScenario("failure")).toThrow(UsageError);
    expect(() => parseScenario("failure:1.5")).toThrow(UsageError);
    expect(() => parseScenario("attack:nonsense:1")).toThrow(UsageError);
    expect(() => parseScenario("steady:1")).toThrow(UsageError);
    expect(parseScenario("churn").name).toBe("churn:0.1");
  });
});
