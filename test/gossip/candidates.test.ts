import { expect, test } from "bun:test";
import { CandidateTable } from "../../src/gossip/candidates.ts";

const table = (max = 3) => new CandidateTable({ maxCandidates: max, backoffInitialMs: 100, backoffMaxMs: 400, maxFailures: 3 });
const addr = (i: number) => ({ host: `10.0.0.${i}`, port: 6001 });
const keys = (t: CandidateTable) => [...t.entries()].map(([k]) => k);
const none = new Set<string>();

test("when full, evicts the oldest hearsay first, then proven entries; never bootstrappers or pinned keys", () => {
  const t = table(3);
  t.learn(addr(1), { bootstrap: true }, none);
  t.learn(addr(2), { proven: true }, none);
  t.learn(addr(3), {}, none);
  t.learn(addr(4), {}, none); // evicts 3 (hearsay)
  expect(keys(t)).toEqual(["10.0.0.1:6001", "10.0.0.2:6001", "10.0.0.4:6001"]);
  t.learn(addr(5), {}, new Set(["10.0.0.4:6001"])); // 4 is being dialed: the proven 2 goes
  expect(keys(t)).toEqual(["10.0.0.1:6001", "10.0.0.4:6001", "10.0.0.5:6001"]);
  expect(t.learn(addr(6), {}, new Set(["10.0.0.4:6001", "10.0.0.5:6001"]))).toBeUndefined(); // nothing evictable
  expect(t.size).toBe(3);
});

test("backoff doubles up to its cap; hearsay is forgotten after maxFailures, proven and bootstrap entries are kept", () => {
  const t = table(10);
  const hearsay = t.learn(addr(1), {}, none)!;
  const proven = t.learn(addr(2), { proven: true }, none)!;
  const boot = t.learn(addr(3), { bootstrap: true }, none)!;
  expect([100, 200, 400, 400].map(() => t.fail(proven, 0))).toEqual([100, 200, 400, 400]);
  for (let i = 0; i < 5; i++) [t.fail(hearsay, 0), t.fail(boot, 0)];
  expect(keys(t)).toEqual(["10.0.0.2:6001", "10.0.0.3:6001"]);
});

test("an address that answered with our own ID is never learned again; malformed addresses are ignored", () => {
  const t = table(10);
  t.learn(addr(1), {}, none);
  t.markSelf("10.0.0.1:6001");
  expect(t.learn(addr(1), { bootstrap: true }, none)).toBeUndefined();
  expect(t.learn({ host: "", port: 1 }, {}, none)).toBeUndefined();
  expect(t.learn({ host: "h", port: 70000 }, {}, none)).toBeUndefined();
  expect(t.size).toBe(0);
});

test("an ID once learned is not overwritten by hearsay", () => {
  const t = table(10);
  t.learn({ ...addr(1), id: "aa" }, {}, none);
  expect(t.learn({ ...addr(1), id: "bb" }, {}, none)!.id).toBe("aa");
});
