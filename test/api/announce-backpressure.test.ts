/**
 * When local announcers wait (src/api/announce-backpressure.ts), without sockets: high and low water marks per queue,
 * a queue that stays full stops holding announcers back, queues that went away are forgotten.
 */
import { expect, test } from "bun:test";
import { AnnounceBackpressure } from "../../src/api/announce-backpressure.ts";

const gate = () => new AnnounceBackpressure({ highWaterBytes: 1000, lowWaterBytes: 100, stuckAfterMs: 500 });

test("on above the high-water mark, off only at the low-water mark", () => {
  const g = gate();
  expect(g.update([["p", 1000]], 0)).toBe(false); // at the mark is not above it
  expect(g.update([["p", 1001], ["q", 0]], 1)).toBe(true);
  expect(g.update([["p", 500], ["q", 0]], 2)).toBe(true); // between the marks: still draining
  expect(g.update([["p", 100], ["q", 0]], 3)).toBe(false);
  expect(g.update([["p", 500]], 4)).toBe(false); // between the marks from below: not a new episode
  expect(g.on).toBe(false);
});

test("a queue above the high-water mark for stuckAfterMs stops holding announcers back until it drains", () => {
  const g = gate();
  expect(g.update([["slow", 5000], ["fast", 0]], 0)).toBe(true);
  expect(g.update([["slow", 5000], ["fast", 0]], 499)).toBe(true);
  expect(g.update([["slow", 5000], ["fast", 0]], 500)).toBe(false);
  // Another queue still holds them back on its own …
  expect(g.update([["slow", 5000], ["fast", 2000]], 600)).toBe(true);
  expect(g.update([["slow", 5000], ["fast", 50]], 601)).toBe(false);
  // … and the stuck one counts again only after it drained to the low-water mark.
  expect(g.update([["slow", 900], ["fast", 0]], 700)).toBe(false);
  expect(g.update([["slow", 100], ["fast", 0]], 701)).toBe(false);
  expect(g.update([["slow", 1500], ["fast", 0]], 702)).toBe(true);
});

test("a queue that went away (link down) no longer holds anyone back, and is forgotten", () => {
  const g = gate();
  expect(g.update([["p", 5000]], 0)).toBe(true);
  expect(g.update([], 1)).toBe(false);
  // Back with the same key: a new episode, not the old one's age.
  expect(g.update([["p", 5000]], 10_000)).toBe(true);
});
