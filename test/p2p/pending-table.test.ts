// The pending-handshake table's rule (src/p2p/pending-table.ts) without sockets: room is given while there is some; a
// full table evens out shares per address by evicting the oldest unpaid connection of the largest share, never a paid
// one, never between equals, never for an address at its own cap.
import { describe, expect, test } from "bun:test";
import { admitPending, type PendingInbound } from "../../src/p2p/pending-table.ts";

const limits = { maxPending: 8, maxPerIp: 4 };
let clock = 0;
const entry = (host: string, awaitingWork = true): PendingInbound => ({ host, openedAt: clock++, awaitingWork });
/** `n` connections from each address, oldest first in the order given. */
const from = (shares: Record<string, number>, awaitingWork = true) =>
  Object.entries(shares).flatMap(([host, n]) => Array.from({ length: n }, () => entry(host, awaitingWork)));

describe("admitPending", () => {
  test("room left: admitted; an address at its cap: refused even with room", () => {
    const table = from({ a: 4, b: 1 });
    expect(admitPending("c", table, table.length, limits)).toEqual({ kind: "admit" });
    expect(admitPending("b", table, table.length, limits)).toEqual({ kind: "admit" });
    expect(admitPending("a", table, table.length, limits)).toEqual({ kind: "refuse" });
  });

  test("full: a newcomer takes the slot of the oldest unpaid connection of the address with the largest share", () => {
    const table = from({ a: 3, b: 4, c: 1 });
    const decision = admitPending("d", table, table.length, limits);
    expect(decision).toEqual({ kind: "evict", victim: table.find((e) => e.host === "b")! });
  });

  test("full: shares only even out; an address one short of the largest cannot push it out, nor can equals", () => {
    const table = from({ a: 4, b: 3, c: 1 });
    expect(admitPending("b", table, table.length, limits)).toEqual({ kind: "refuse" }); // would hold 4, like a
    expect(admitPending("c", table, table.length, limits).kind).toBe("evict"); // would hold 2 < 4
    const even = from({ a: 1, b: 1, c: 1, d: 1, e: 1, f: 1, g: 1, h: 1 });
    expect(admitPending("i", even, even.length, limits)).toEqual({ kind: "refuse" });
  });

  test("equal largest shares: the older connection goes", () => {
    const table = [...from({ a: 2 }), ...from({ b: 3 }), ...from({ c: 3 })];
    const decision = admitPending("d", table, table.length, limits);
    expect(decision).toEqual({ kind: "evict", victim: table.find((e) => e.host === "b")! });
  });

  test("a connection whose proof of work arrived is never evicted; a smaller unpaid share still can be", () => {
    const paid = [...from({ a: 4 }, false), ...from({ b: 3 }), entry("c")];
    const decision = admitPending("d", paid, paid.length, limits);
    expect(decision).toEqual({ kind: "evict", victim: paid.find((e) => e.host === "b")! });
    const allPaid = from({ a: 4, b: 4 }, false);
    expect(admitPending("d", allPaid, allPaid.length, limits)).toEqual({ kind: "refuse" });
  });

  test("our own dials fill the table too but are not in the inbound list: never evicted", () => {
    const table = from({ a: 2 });
    expect(admitPending("b", table, limits.maxPending, limits)).toEqual({ kind: "evict", victim: table[0]! });
    expect(admitPending("b", [], limits.maxPending, limits)).toEqual({ kind: "refuse" });
  });
});
