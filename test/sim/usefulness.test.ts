/**
 * Link usefulness in the simulator (issue 17; src/gossip/link-usefulness.ts, judged by the core): censors holding
 * most of the honest nodes' link slots are dropped as useless once items flow, repeat offenders are banned, and the
 * honest nodes find each other, where with scoring off (no judging) the honest graph stays in pieces. No honest peer
 * is banned, and an honest-only network drops no link as useless. Figures at 1,000 honest nodes: docs/decisions.md
 * "Peer scoring".
 */
import { describe, expect, test } from "bun:test";
import type { GossipCore } from "../../src/gossip/core.ts";
import { simulate, type SimOptions } from "../../src/sim/simulator.ts";
import type { World } from "../../src/sim/world.ts";

async function run(more: Partial<SimOptions>) {
  let world: World | undefined;
  const r = await simulate({
    nodes: 30,
    degree: 6,
    items: 50,
    scenario: "attack:censor:10",
    seed: 3,
    dissemination: "plumtree",
    warmupItems: 600,
    inspect: (w) => void (world = w),
    ...more,
  });
  const honest = world!.nodes.filter((n) => n.honest).map((n) => n.logic as unknown as GossipCore);
  const judgedUseless = honest.reduce((a, c) => a + (c.stats().usefulness?.judgedUseless ?? 0), 0);
  return { r, judgedUseless };
}

describe("link usefulness (30 honest nodes, 300 censors)", () => {
  test("censors are dropped and banned once items flow; honest nodes reach each other; none of them is banned", async () => {
    const on = await run({});
    const off = await run({ scoring: false });
    expect(off.judgedUseless).toBe(0);
    expect(off.r.delivered_ratio).toBeLessThan(0.2);
    expect(on.judgedUseless).toBeGreaterThan(100);
    expect(on.r.adversaries_banned).toBeGreaterThan(0);
    // Not yet the 0.999: honest nodes whose every link is a censor from the start get nothing to judge by
    // and wait to be dialed (docs/decisions.md "Peer scoring", what is left).
    expect(on.r.delivered_ratio).toBeGreaterThanOrEqual(0.8);
    expect(on.r.honest_peers_banned).toBe(0);
  }, 120_000);

  test("honest dead ends (30% of the nodes subscribe to nothing, so they relay nothing) are never banned nor dropped", async () => {
    const { r, judgedUseless } = await run({ scenario: "steady", nodes: 60, warmupItems: 100, items: 200, deadEnds: 0.3 });
    expect(judgedUseless).toBe(0);
    expect(r.honest_peers_banned).toBe(0);
    expect(r.delivered_ratio).toBeGreaterThanOrEqual(0.99);
  }, 120_000);

  test("an honest-only network drops no link as useless", async () => {
    const { r, judgedUseless } = await run({ scenario: "steady", nodes: 60, warmupItems: 100, items: 200 });
    expect(judgedUseless).toBe(0);
    expect(r.delivered_ratio).toBeGreaterThanOrEqual(0.999);
    expect(r.honest_peers_banned).toBe(0);
  }, 120_000);
});
