import { describe, expect, test } from "bun:test";
import { EventQueue, type QueuedEvent } from "../../src/sim/event-queue.ts";
import { seededRandom } from "../../src/util/random.ts";

const out = (): QueuedEvent => ({ time: 0, kind: 0, a: undefined, b: undefined, x: 0 });

describe("EventQueue", () => {
  test("pops in time order, ties in scheduling order, with the payload it was given", () => {
    const q = new EventQueue();
    q.push(5, 1, "five");
    q.push(1, 2, "one-a");
    q.push(3, 3, "three", "b", 7);
    q.push(1, 4, "one-b");
    q.push(0, 5, "zero");
    const seen: [number, unknown][] = [];
    const ev = out();
    while (q.pop(ev)) seen.push([ev.time, ev.a]);
    expect(seen).toEqual([
      [0, "zero"],
      [1, "one-a"],
      [1, "one-b"],
      [3, "three"],
      [5, "five"],
    ]);
    expect(q.pop(ev)).toBe(false);
    expect(q.peekTime()).toBe(Infinity);
  });

  test("random interleaved pushes and pops match a sorted reference (and slots are reused)", () => {
    const q = new EventQueue();
    const random = seededRandom(42);
    const reference: { time: number; seq: number }[] = [];
    let seq = 0;
    let now = 0;
    const ev = out();
    for (let step = 0; step < 20_000; step++) {
      if (random() < 0.55 || reference.length === 0) {
        const time = now + Math.floor(random() * 100); // many equal times: ties matter
        q.push(time, 1, undefined, undefined, seq);
        reference.push({ time, seq: seq++ });
      } else {
        reference.sort((a, b) => a.time - b.time || a.seq - b.seq);
        const want = reference.shift()!;
        expect(q.pop(ev)).toBe(true);
        expect([ev.time, ev.x]).toEqual([want.time, want.seq]);
        now = ev.time;
      }
      expect(q.size).toBe(reference.length);
    }
    expect(q.scheduled).toBe(seq);
  });

  test("grows past its initial capacity and refuses NaN times", () => {
    const q = new EventQueue();
    for (let i = 5000; i > 0; i--) q.push(i, 1);
    const ev = out();
    for (let i = 1; i <= 5000; i++) {
      q.pop(ev);
      expect(ev.time).toBe(i);
    }
    expect(() => q.push(NaN, 1)).toThrow(RangeError);
  });
});
