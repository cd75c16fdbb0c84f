import { expect, test } from "bun:test";
import { isLoopback } from "../../src/address.ts";
import { CandidateTable, spreadOverHosts } from "../../src/gossip/candidates.ts";

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

test("dial picks spread over hosts: fewest outbound first, per-host cap (loopback exempt), one address per peer", () => {
  const t = table(20);
  const due = [
    ...[1, 2, 3].map((i) => ["a", i] as const),
    ...[1, 2].map((i) => ["b", i] as const),
    ...[1, 2, 3].map((i) => ["127.0.0.1", i] as const),
  ].map(([host, i]) => {
    const c = t.learn({ host, port: 6000 + i }, {}, none)!;
    return [`${host}:${6000 + i}`, c] as [string, typeof c];
  });
  due[4]![1].id = "same";
  due[3]![1].id = "same"; // host b lists one peer twice
  const perHost = new Map([["a", 1]]);
  const chosen = spreadOverHosts(due, 8, perHost, 2);
  const hosts = chosen.map(([, c]) => c.host);
  expect(hosts.filter((h) => h === "a").length).toBe(1); // already had 1, cap 2
  expect(hosts.filter((h) => h === "b").length).toBe(1); // two addresses, one peer
  expect(hosts.filter((h) => h === "127.0.0.1").length).toBe(3); // loopback: no cap
  expect(perHost.get("a")).toBe(2);
  expect(hosts[0]).not.toBe("a"); // the host we already had a link to comes last
  expect(isLoopback("::ffff:127.0.0.1") && isLoopback("::1") && isLoopback("localhost") && !isLoopback("10.0.0.1")).toBe(true);
});

test("spare counts entries linked neither by address nor by ID, and stops at `enough`", () => {
  const t = table(10);
  for (let i = 1; i <= 6; i++) t.learn({ ...addr(i), id: `p${i}` }, {}, none);
  const linkedAddrs = new Set(["10.0.0.1:6001"]);
  const linkedIds = new Set(["p2"]); // linked at another address
  expect(t.spare(linkedAddrs, linkedIds)).toBe(4);
  expect(t.spare(linkedAddrs, linkedIds, 3)).toBe(3);
  expect(t.spare(linkedAddrs, linkedIds, 10)).toBe(4);
});
