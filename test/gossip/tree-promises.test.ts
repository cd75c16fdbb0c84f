/**
 * Kept and broken tree promises (src/gossip/tree-promises.ts) as a pure state machine: a run of unserved GRAFTs is a
 * verdict, a lost answer or two is not; a retried GRAFT is one promise; a link that goes down takes its promises
 * with it; GRAFTs beyond what we announced are a flood. Through the real core and over real sockets:
 * test/gossip/plumtree.test.ts and test/score-net.test.ts.
 */
import { expect, test } from "bun:test";
import { TreePromises } from "../../src/gossip/tree-promises.ts";

const params = { serveDeadlineMs: 1_000, unservedRun: 3, graftRounds: 3, graftAllowance: 4, maxPromises: 8 };

test("a run of unserved GRAFTs is a verdict from its third on; an answer in between starts the run over", () => {
  const t = new TreePromises(params);
  t.grafted("p", "a", 0);
  t.grafted("p", "b", 0);
  t.grafted("p", "c", 10);
  t.answered("p", "c"); // served (the item came, or "don't have")
  expect(t.expire(999)).toEqual([]);
  expect(t.expire(1_000)).toEqual([]); // a and b unserved: a run of two
  t.grafted("p", "d", 2_000);
  t.answered("p", "d"); // the run starts over
  for (const k of ["e", "f", "g", "h"]) t.grafted("p", k, 3_000);
  expect(t.expire(4_000)).toEqual(["p", "p"]); // e, f: the run of two; g: the third (a verdict); h: the fourth
  expect(t.stats()).toEqual({ awaited: 0 });
});

test("a retried GRAFT is one promise with the first deadline; an answer after the deadline does not undo a verdict", () => {
  const t = new TreePromises({ ...params, unservedRun: 1 });
  t.grafted("p", "a", 0);
  t.grafted("p", "a", 900); // the next round asks again
  expect(t.stats().awaited).toBe(1);
  expect(t.nextDeadline()).toBe(1_000);
  expect(t.expire(1_000)).toEqual(["p"]);
  t.answered("p", "a"); // too late: nothing left to answer, and no verdict taken back
  expect(t.stats().awaited).toBe(0);
  expect(t.expire(10_000)).toEqual([]);
  expect(t.nextDeadline()).toBeUndefined();
});

test("promises are per peer: one peer's answers say nothing of another's", () => {
  const t = new TreePromises({ ...params, unservedRun: 1 });
  t.grafted("liar", "x", 0);
  t.grafted("honest", "x", 0);
  t.answered("honest", "x");
  t.answered("liar", "y"); // an answer to something we never asked is nothing
  expect(t.expire(1_000)).toEqual(["liar"]);
});

test("a link that goes down takes its promises with it: no verdict for what it could not answer", () => {
  const t = new TreePromises({ ...params, unservedRun: 1 });
  t.grafted("p", "a", 0);
  t.grafted("q", "a", 0);
  t.forget("p");
  expect(t.expire(5_000)).toEqual(["q"]);
});

test("awaited answers are bounded: past maxPromises the oldest goes unjudged", () => {
  const t = new TreePromises({ ...params, unservedRun: 1 });
  for (let i = 0; i < 20; i++) t.grafted("p", `k${i}`, i);
  expect(t.stats().awaited).toBe(params.maxPromises);
  expect(t.expire(10_000)).toHaveLength(params.maxPromises);
});

test("GRAFTs within graftRounds × what we announced, plus the allowance, are honest; beyond is a flood, judged afresh after", () => {
  const t = new TreePromises(params);
  t.announcedTo("p", 2);
  expect(t.graftedBy("p", 3 * 2 + 4)).toBe(false); // every ID asked every round, and the allowance
  expect(t.graftedBy("p", 1)).toBe(true);
  // The ledger starts over: the next allowance's worth passes, the one after is another flood.
  expect(t.graftedBy("p", 4)).toBe(false);
  expect(t.graftedBy("p", 1)).toBe(true);
  expect(t.graftedBy("q", 4)).toBe(false); // another peer has its own ledger
  t.forget("p");
  expect(t.graftedBy("p", 4)).toBe(false);
});

test("the deadline nextDeadline() names expires the oldest exactly, whatever the float (no timer that re-arms for ever)", () => {
  const at = 14500.272524857299; // (at + 5000) - at < 5000 in floating point
  const t = new TreePromises({ ...params, serveDeadlineMs: 5_000, unservedRun: 1 });
  t.grafted("p", "a", at);
  expect(t.expire(t.nextDeadline()!)).toEqual(["p"]);
  expect(t.nextDeadline()).toBeUndefined();
});
