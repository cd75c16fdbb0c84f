/**
 * Membership views in the simulator (issue 16), at small N: after half the nodes crash, survivors get every item and
 * their views fill again (the `views` figures: the share of full views at t0, its low, when it is back); a newcomer
 * that joins through one bootstrapper does not end up among that bootstrapper's neighbours (`newcomers`).
 */
import { expect, test } from "bun:test";
import { simulate } from "../../src/sim/simulator.ts";

const base = { nodes: 300, degree: 6, items: 10, size: 256, rate: 20, seed: 3, dissemination: "flood" } as const;

test("failure:0.5 with hyparview: every survivor gets every item, and the views are full again, timed from the crash", async () => {
  const r = await simulate({ ...base, overlay: "hyparview", scenario: "failure:0.5", viewsWaitS: 60 });
  expect(r.delivered_ratio).toBe(1);
  expect(r.views.full_share_t0).toBeGreaterThan(0.97);
  expect(r.views.full_share_min).toBeLessThan(0.2); // the crash took links from nearly everyone
  expect(r.views.back_s).not.toBeNull();
  expect(r.views.back_s!).toBeGreaterThan(0);
  expect(r.views.full_99_s).not.toBeNull();
  expect(r.overlay_end.nodes).toBe(150);
  expect(r.overlay_end.components).toBe(1);
  expect(r.overlay_end.links_max).toBeLessThanOrEqual(base.degree + 1);
}, 60_000);

test("newcomer:4: each newcomer joins through one bootstrapper and, 60 s later, few of its links go to that bootstrapper's neighbours", async () => {
  const r = await simulate({ ...base, overlay: "hyparview", scenario: "newcomer:4", items: 2 });
  const n = r.newcomers!;
  expect(n.newcomers).toBe(4);
  expect(n.links_mean).toBeGreaterThanOrEqual(5);
  expect(n.to_bootstrapper_neighbours_mean).toBeLessThanOrEqual(1 + n.random_expected_mean);
  expect(n.random_expected_mean).toBeGreaterThan(0);
  expect(r.delivered_ratio).toBe(1); // the newcomers are expected receivers of the items after them
}, 60_000);
