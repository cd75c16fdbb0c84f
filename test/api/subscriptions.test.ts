/**
 * The subscription table (src/api/subscriptions.ts) without sockets: idempotent NOTIFY, both bounds, removal.
 */
import { expect, test } from "bun:test";
import { SubscriptionTable } from "../../src/api/subscriptions.ts";

test("subscribe is idempotent; subscribers in order; counts per type and in all", () => {
  const t = new SubscriptionTable<string>({ maxPerConnection: 10, maxTotal: 10 });
  expect([t.subscribe("a", 1), t.subscribe("a", 1), t.subscribe("b", 1), t.subscribe("a", 2)]).toEqual(["added", "already", "added", "added"]);
  expect([t.subscribers(1), t.count(1), t.count(3), t.size, t.connections]).toEqual([["a", "b"], 2, 0, 3, 2]);
  expect([...t.countsByType()]).toEqual([[1, 2], [2, 1]]);
});

test("the per-connection bound, then the node-wide one; a refused NOTIFY adds nothing", () => {
  const t = new SubscriptionTable<string>({ maxPerConnection: 2, maxTotal: 3 });
  expect([t.subscribe("a", 1), t.subscribe("a", 2), t.subscribe("a", 3)]).toEqual(["added", "added", "too-many-subscriptions"]);
  expect(t.subscribe("a", 1)).toBe("already"); // a repeat is not past the bound
  expect([t.subscribe("b", 3), t.subscribe("c", 4)]).toEqual(["added", "subscription-table-full"]);
  expect([t.size, t.count(4), t.has("c")]).toEqual([3, 0, false]);
});

test("remove drops every subscription of the connection and empty types", () => {
  const t = new SubscriptionTable<string>({ maxPerConnection: 5, maxTotal: 5 });
  t.subscribe("a", 1);
  t.subscribe("a", 2);
  t.subscribe("b", 2);
  t.remove("a");
  t.remove("nobody");
  expect([t.size, t.connections, t.count(1), t.subscribers(2), [...t.countsByType().keys()]]).toEqual([1, 1, 0, ["b"], [2]]);
  expect(t.subscribe("c", 3)).toBe("added"); // room again
});
