/**
 * Link usefulness in the simulator (issue 17; src/gossip/link-usefulness.ts, judged by the core): censors holding
 * most of the honest nodes' link slots are dropped as useless once items flow, repeat offenders are banned, and the
 * honest nodes find each other, where with scoring off (no judging) the honest graph stays in pieces. No honest peer
 * is banned, and an honest-only network drops no link as useless. Honest nodes whose every link is a censor, with
 * nothing to judge by, dial more addresses until one replays items (isolation probes). Figures at 1,000 honest nodes:
 * docs/decisions.md "Peer scoring".
 */
import { describe, expect, test } from "bun:test";
import type { GossipCore } from "../../src/gossip/core.ts";
import { simulate, type SimOptions } from "../../src/sim/simulator.ts";
import type { World } from "../../src/sim/world.ts";

async function run(more: Partial<SimOptions>) {
  let world: World | undefined;
  let cutOff = 0;
  const r = await simulate({
    nodes: 30,
    degree: 6,
    items: 50,
    scenario: "attack:censor:10",
    seed: 3,
    dissemination: "plumtree",
    warmupItems: 600,
    inspect: (w, metrics) => {
      world = w;
      // Honest nodes that received none of the measured items.
      for (const n of w.nodes) if (n.honest && metrics.items.every((t) => t.publisher === n.index || Number.isNaN(t.deliveredAt[n.index]!))) cutOff++;
    },
    ...more,
  });
  const honest = world!.nodes.filter((n) => n.honest).map((n) => n.logic as unknown as GossipCore);
  const judgedUseless = honest.reduce((a, c) => a + (c.stats().usefulness?.judgedUseless ?? 0), 0);
  const probesKept = honest.reduce((a, c) => a + (c.stats().probes?.kept ?? 0), 0);
  const probesDialed = honest.reduce((a, c) => a + (c.stats().probes?.dialed ?? 0), 0);
  return { r, judgedUseless, cutOff, probesKept, probesDialed };
}

describe("link usefulness (30 honest nodes, 300 censors)", () => {
  test("censors are dropped and banned once items flow; honest nodes reach each other; none of them is banned", async () => {
    const on = await run({});
    const off = await run({ scoring: false });
    expect(off.judgedUseless).toBe(0);
    expect(off.r.delivered_ratio).toBeLessThan(0.2);
    expect(on.judgedUseless).toBeGreaterThan(100);
    expect(on.r.adversaries_banned).toBeGreaterThan(0);
    expect(on.r.delivered_ratio).toBeGreaterThanOrEqual(0.999);
    expect(on.r.honest_peers_banned).toBe(0);
  }, 120_000);

  test("honest nodes whose every link is a censor find the others by isolation probes; without them some stay cut off", async () => {
    for (const seed of [2, 4]) {
      const on = await run({ seed });
      const off = await run({ seed, probes: false });
      // Without probes a node linked to censors only receives nothing and waits to be dialed.
      expect(off.cutOff).toBeGreaterThan(0);
      expect(off.r.delivered_ratio).toBeLessThan(0.9);
      expect(on.cutOff).toBe(0);
      expect(on.probesKept).toBeGreaterThan(0);
      expect(on.r.delivered_ratio).toBe(1);
      expect(on.r.honest_peers_banned).toBe(0);
    }
  }, 120_000);

  test("honest dead ends (30% of the nodes subscribe to nothing, so they relay nothing) are never banned nor dropped", async () => {
    const { r, judgedUseless } = await run({ scenario: "steady", nodes: 60, warmupItems: 100, items: 200, deadEnds: 0.3 });
    expect(judgedUseless).toBe(0);
    expect(r.honest_peers_banned).toBe(0);
    expect(r.delivered_ratio).toBeGreaterThanOrEqual(0.99);
  }, 120_000);

  test("an honest-only network drops no link as useless", async () => {
    const { r, judgedUseless, probesDialed } = await run({ scenario: "steady", nodes: 60, warmupItems: 100, items: 200 });
    expect(judgedUseless).toBe(0);
    expect(probesDialed).toBe(0); // items flow within the probe delay: no node is ever all-mute that long
    expect(r.delivered_ratio).toBeGreaterThanOrEqual(0.999);
    expect(r.honest_peers_banned).toBe(0);
  }, 120_000);
});
