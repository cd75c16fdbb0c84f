import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { SeenCache } from "../../src/gossip/seen-cache.ts";

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

describe("SeenCache", () => {
  test("remembers what it saw; a second add reports the duplicate", () => {
    const c = new SeenCache({ now: clock().now });
    expect(c.has("a")).toBe(false);
    expect(c.add("a")).toBe(true);
    expect(c.has("a")).toBe(true);
    expect(c.add("a")).toBe(false);
    expect(c.size).toBe(1);
  });

  test("bounded by count: the oldest is evicted first", () => {
    const c = new SeenCache({ maxEntries: 3, now: clock().now });
    for (const k of ["a", "b", "c", "d"]) c.add(k);
    expect(c.size).toBe(3);
    expect(c.has("a")).toBe(false);
    expect(["b", "c", "d"].every((k) => c.has(k))).toBe(true);
  });

  test("bounded by age: an entry expires exactly maxAgeMs after it was first seen", () => {
    const t = clock();
    const c = new SeenCache({ maxAgeMs: 1_000, now: t.now });
    c.add("a");
    t.advance(500);
    c.add("b");
    t.advance(499);
    expect(c.has("a")).toBe(true);
    t.advance(1);
    expect(c.has("a")).toBe(false);
    expect(c.has("b")).toBe(true);
    t.advance(500);
    expect(c.has("b")).toBe(false);
    expect(c.size).toBe(0);
  });

  test("a duplicate does not make an entry younger", () => {
    const t = clock();
    const c = new SeenCache({ maxAgeMs: 1_000, now: t.now });
    c.add("a");
    t.advance(900);
    expect(c.add("a")).toBe(false);
    t.advance(100);
    expect(c.has("a")).toBe(false);
  });

  test("after expiry the same key can be added again", () => {
    const t = clock();
    const c = new SeenCache({ maxAgeMs: 10, now: t.now });
    c.add("a");
    t.advance(10);
    expect(c.add("a")).toBe(true);
  });

  test("the default bounds are 100 000 IDs and 2 minutes", () => {
    const t = clock();
    const c = new SeenCache({ now: t.now });
    expect(c.maxEntries).toBe(100_000);
    expect(c.maxAgeMs).toBe(120_000);
    for (let i = 0; i < 100_050; i++) c.add(String(i));
    expect(c.size).toBe(100_000);
    expect(c.has("49")).toBe(false);
    expect(c.has("50")).toBe(true);
  });

  test("behaves like a simple reference model under random operations", () => {
    type Op = { kind: "add" | "has"; key: number } | { kind: "wait"; ms: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constantFrom("add" as const, "has" as const), key: fc.integer({ min: 0, max: 12 }) }),
      fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 0, max: 40 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 100 }), fc.array(op, { maxLength: 200 }), (maxEntries, maxAgeMs, ops) => {
        const t = clock();
        const cache = new SeenCache({ maxEntries, maxAgeMs, now: t.now });
        // Model: a list of (key, time) in insertion order, filtered on every step.
        let model: { key: string; at: number }[] = [];
        for (const o of ops) {
          if (o.kind === "wait") {
            t.advance(o.ms);
            continue;
          }
          model = model.filter((e) => t.now() - e.at < maxAgeMs);
          const key = String(o.key);
          const present = model.some((e) => e.key === key);
          if (o.kind === "has") {
            expect(cache.has(key)).toBe(present);
          } else {
            expect(cache.add(key)).toBe(!present);
            if (!present) model.push({ key, at: t.now() });
            if (model.length > maxEntries) model.shift();
          }
          expect(cache.size).toBe(model.length);
        }
      }),
      { numRuns: 300 },
    );
  });
});
