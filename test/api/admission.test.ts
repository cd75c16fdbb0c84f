/**
 * Who gets a slot under the API connection cap (src/api/admission.ts), without sockets: served below the cap,
 * probation at it, promotion in place of the longest-idle connection that holds nothing, lingering ones first,
 * the probation bound.
 */
import { expect, test } from "bun:test";
import { Admission } from "../../src/api/admission.ts";

interface C {
  name: string;
  holds?: boolean;
  spoke?: boolean;
  at: number;
}

function setup(maxServed = 3, maxProbation = 2) {
  return new Admission<C>({
    maxServed,
    maxProbation,
    holdsSomething: (c) => c.holds === true,
    spoke: (c) => c.spoke === true,
    lastActiveAt: (c) => c.at,
  });
}
const conn = (name: string, at: number, more: Partial<C> = {}): C => ({ name, at, ...more });

test("served below the cap; at it a newcomer waits, and speaking replaces the silent one first, then the longest idle", () => {
  const a = setup();
  const [sub, talker, silent] = [conn("sub", 0, { holds: true }), conn("talker", 1, { spoke: true }), conn("silent", 5)];
  for (const c of [sub, talker, silent]) expect(a.open(c)).toEqual({ as: "served" });
  const n1 = conn("n1", 10);
  expect(a.open(n1)).toEqual({ as: "probation", refuse: undefined });
  expect(a.promote(n1)).toEqual({ ok: true, evict: silent }); // never spoke, though more recently active than talker
  n1.spoke = true;
  n1.at = 11;
  const n2 = conn("n2", 12);
  a.open(n2);
  expect(a.promote(n2)).toEqual({ ok: true, evict: talker }); // both spoke: talker idle longer
  expect([...a.served].map((c) => c.name)).toEqual(["sub", "n1", "n2"]);
  expect(a.promote(n2)).toEqual({ ok: true }); // already served: nothing to do
});

test("nobody to replace: refused; lingering sockets give way before anyone served", () => {
  const a = setup(2);
  const [x, y] = [conn("x", 0, { holds: true }), conn("y", 0, { holds: true })];
  a.open(x);
  a.open(y);
  const n = conn("n", 1);
  a.open(n);
  expect(a.promote(n)).toEqual({ ok: false });
  expect(a.probation.size).toBe(0);
  a.stopped(y, true); // a violation: ended, its socket lingers and still counts
  const m = conn("m", 2);
  expect(a.open(m).as).toBe("probation");
  expect(a.promote(m)).toEqual({ ok: true, terminate: y });
  expect([a.served.size, a.lingering.size]).toEqual([2, 0]);
  a.gone(x); // its socket closed: a free slot
  expect(a.open(conn("k", 3))).toEqual({ as: "served" });
});

test("probation is bounded: the oldest newcomer is refused; stopped or gone ones leave it", () => {
  const a = setup(1, 2);
  a.open(conn("served", 0));
  const [p1, p2, p3] = [conn("p1", 1), conn("p2", 2), conn("p3", 3)];
  a.open(p1);
  a.open(p2);
  expect(a.open(p3)).toEqual({ as: "probation", refuse: p1 });
  a.stopped(p2, false);
  a.gone(p3);
  expect(a.probation.size).toBe(0);
});
