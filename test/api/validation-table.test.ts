/**
 * The outstanding-NOTIFICATION table (src/api/validation-table.ts) without sockets: rounds and their verdicts, 16-bit
 * IDs never reused while outstanding, late answers, the bound. Time is a hand-advanced clock.
 */
import { describe, expect, test } from "bun:test";
import { ValidationTable, type ValidationTimers, type ValidationVerdict } from "../../src/api/validation-table.ts";

/** Timers that fire only when the test advances time. */
function handClock() {
  let now = 0;
  let nextHandle = 1;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const timers: ValidationTimers = {
    setTimeout: (fn, ms) => {
      pending.set(nextHandle, { at: now + ms, fn });
      return nextHandle++;
    },
    clearTimeout: (handle) => void pending.delete(handle as number),
    now: () => now,
  };
  return {
    timers,
    advance(ms: number) {
      now += ms;
      for (const [handle, t] of [...pending]) {
        if (t.at > now) continue;
        pending.delete(handle);
        t.fn();
      }
    },
    pendingTimers: () => pending.size,
  };
}

function setup(options: { maxOutstanding?: number; timeoutMs?: number; lateAnswerMemory?: number } = {}) {
  const clock = handClock();
  const table = new ValidationTable<string>({
    maxOutstanding: options.maxOutstanding ?? 16,
    timeoutMs: options.timeoutMs ?? 1000,
    lateAnswerMemory: options.lateAnswerMemory ?? 8,
    timers: clock.timers,
  });
  const verdicts: [ValidationVerdict, number][] = [];
  /** An awaited round (an item from a peer) with one ID per connection, sealed; returns the IDs in order. */
  const round = (...conns: string[]) => {
    const r = table.open((verdict, ms) => void verdicts.push([verdict, ms]));
    const ids = conns.map((c) => table.issue(r, c));
    table.seal(r);
    return { r, ids };
  };
  return { clock, table, verdicts, round };
}

describe("rounds", () => {
  test("valid once every subscriber answered valid, with how long it took", () => {
    const { clock, table, verdicts, round } = setup();
    const { ids } = round("a", "b");
    expect(table.outstanding).toBe(2);
    clock.advance(30);
    expect(table.answer("a", ids[0]!, true)).toBe("applied");
    expect(verdicts).toEqual([]);
    clock.advance(20);
    expect(table.answer("b", ids[1]!, true)).toBe("applied");
    expect(verdicts).toEqual([["valid", 50]]);
    expect([table.outstanding, clock.pendingTimers()]).toEqual([0, 0]); // its timeout is cancelled
  });

  test("invalid at the first invalid answer; the others' answers are then late, and ignored", () => {
    const { table, verdicts, round } = setup();
    const { ids } = round("a", "b", "c");
    table.answer("b", ids[1]!, false);
    expect(verdicts.map((v) => v[0])).toEqual(["invalid"]);
    expect(table.outstanding).toBe(0);
    expect(table.answer("a", ids[0]!, true)).toBe("late");
    expect(table.answer("c", ids[2]!, false)).toBe("late");
    expect(verdicts).toHaveLength(1);
  });

  test("unanswered at the timeout; a late answer is ignored once, a second one is unknown", () => {
    const { clock, table, verdicts, round } = setup({ timeoutMs: 500 });
    const { ids } = round("a", "b");
    table.answer("a", ids[0]!, true);
    clock.advance(499);
    expect(verdicts).toEqual([]);
    clock.advance(1);
    expect(verdicts).toEqual([["unanswered", 500]]);
    expect(table.outstanding).toBe(0);
    expect(table.answer("b", ids[1]!, true)).toBe("late");
    expect(table.answer("b", ids[1]!, true)).toBe("unknown");
    expect(table.answer("a", ids[0]!, true)).toBe("unknown"); // answered already, in time
  });

  test("a connection that goes away settles its rounds unanswered at once and its late IDs are forgotten", () => {
    const { clock, table, verdicts, round } = setup({ timeoutMs: 100 });
    const first = round("a", "b");
    clock.advance(100); // times out: both IDs late
    const second = round("a", "b");
    table.answer("b", second.ids[1]!, true);
    table.forget("a");
    expect(verdicts.map((v) => v[0])).toEqual(["unanswered", "unanswered"]);
    expect(table.outstanding).toBe(0);
    expect(table.answer("a", first.ids[0]!, true)).toBe("unknown");
    expect(table.answer("b", first.ids[1]!, true)).toBe("late"); // b's own late memory is untouched
  });

  test("an answer from a connection the ID was not given to is unknown, and changes nothing", () => {
    const { table, verdicts, round } = setup();
    const { ids } = round("a");
    expect(table.answer("b", ids[0]!, false)).toBe("unknown");
    expect(table.answer("a", ids[0]! + 1, false)).toBe("unknown");
    expect([verdicts, table.outstanding]).toEqual([[], 1]);
    expect(table.answer("a", ids[0]!, true)).toBe("applied");
    expect(verdicts.map((v) => v[0])).toEqual(["valid"]);
  });

  test("a round that issued no ID settles unanswered when sealed; one that did waits for its answers", () => {
    const { table, verdicts } = setup();
    const empty = table.open((v) => void verdicts.push([v, 0]));
    table.seal(empty);
    expect([empty.settled, verdicts.map((v) => v[0])]).toEqual([true, ["unanswered"]]);

    // A subscriber that goes away in the middle of the fan-out decides an awaited round before it is sealed.
    const r = table.open((v) => void verdicts.push([v, 0]));
    table.issue(r, "a");
    table.forget("a");
    expect(r.settled).toBe(true);
    expect(() => table.issue(r, "b")).toThrow();
  });

  test("a local announcement's round: invalid answers decide nothing, and nobody hears a verdict", () => {
    const { table, verdicts } = setup();
    const r = table.open();
    const ids = ["a", "b"].map((c) => table.issue(r, c));
    table.seal(r);
    table.answer("a", ids[0]!, false);
    expect([r.settled, table.outstanding]).toEqual([false, 1]);
    table.answer("b", ids[1]!, true);
    expect([r.settled, table.outstanding, verdicts]).toEqual([true, 0, []]);
  });

  test("an answer before the round is sealed never settles it early", () => {
    const { table, verdicts } = setup();
    const r = table.open((v) => void verdicts.push([v, 0]));
    const first = table.issue(r, "a");
    table.answer("a", first, true); // cannot happen on a socket within one fan-out, but must not settle "valid"
    expect(r.settled).toBe(false);
    const second = table.issue(r, "b");
    table.seal(r);
    table.answer("b", second, true);
    expect(verdicts.map((v) => v[0])).toEqual(["valid"]);
  });
});

describe("message IDs and the bound", () => {
  test("sequential, skipping IDs still outstanding, across the 16-bit wrap", () => {
    const { table, round } = setup({ maxOutstanding: 0xffff, timeoutMs: 1e9 });
    const held = round("a"); // ID 0 stays outstanding throughout
    expect(held.ids).toEqual([0]);
    const second = round("b");
    expect(second.ids).toEqual([1]);
    for (let i = 2; i <= 0xffff; i++) {
      const { ids } = round("b");
      expect(ids[0]).toBe(i);
      table.answer("b", ids[0]!, true);
    }
    // Wrapped: 0 and 1 are still outstanding, so the next ID is 2.
    expect(round("c").ids).toEqual([2]);
  });

  test("hasRoom counts IDs (NOTIFICATIONs), not rounds; issue() without room throws", () => {
    const { table, round } = setup({ maxOutstanding: 5 });
    round("a", "b", "c");
    expect([table.hasRoom(2), table.hasRoom(3)]).toEqual([true, false]);
    const { ids } = round("a", "b");
    expect(table.hasRoom(1)).toBe(false);
    expect(() => table.issue(table.open(), "d")).toThrow();
    table.answer("a", ids[0]!, true);
    expect(table.hasRoom(1)).toBe(true);
  });

  test("a timed-out ID given out again is a new exchange: the answer applies to the new round, once", () => {
    const { clock, table, verdicts, round } = setup({ maxOutstanding: 0xffff, timeoutMs: 100 });
    expect(round("a").ids).toEqual([0]);
    clock.advance(100); // 0 is late on a
    for (let i = 1; i <= 0xffff; i++) table.answer("b", round("b").ids[0]!, true);
    verdicts.length = 0;
    expect(round("a").ids).toEqual([0]); // after the wrap, 0 is free again and goes to a
    expect(table.answer("a", 0, false)).toBe("applied"); // not swallowed as the old round's late answer
    expect(verdicts.map((v) => v[0])).toEqual(["invalid"]);
    expect(table.answer("a", 0, true)).toBe("unknown"); // answered: a second answer is a violation
  });

  test("late answers are remembered per connection up to lateAnswerMemory, oldest forgotten first", () => {
    const { clock, table, round } = setup({ timeoutMs: 10, lateAnswerMemory: 2 });
    const ids = [round("a"), round("a"), round("a")].map((r) => r.ids[0]!);
    clock.advance(10);
    expect(table.answer("a", ids[0]!, true)).toBe("unknown"); // pushed out by the third
    expect(table.answer("a", ids[1]!, true)).toBe("late");
    expect(table.answer("a", ids[2]!, true)).toBe("late");
  });
});

describe("fair shares", () => {
  test("each of n sharers holds at most bound/n; one at its share leaves the others their room", () => {
    const { table, round } = setup({ maxOutstanding: 12 });
    table.setSharers(3);
    expect(table.share).toBe(4);
    for (let i = 0; i < 4; i++) round("silent");
    expect([table.hasRoomFor(["silent"]), table.hasRoomFor(["a"]), table.hasRoomFor(["a", "b"])]).toEqual([false, true, true]);
    expect(table.hasRoomFor(["a", "silent"])).toBe(false); // an item needs room with every subscriber
    expect(() => table.issue(table.open(), "silent")).toThrow();
    for (let i = 0; i < 4; i++) {
      const { ids } = round("a", "b");
      table.answer("a", ids[0]!, true);
      table.answer("b", ids[1]!, true);
    }
    expect(table.outstanding).toBe(4);
    // Fewer sharers, larger shares.
    table.setSharers(2);
    expect([table.share, table.hasRoomFor(["silent"])]).toEqual([6, true]);
  });

  test("a share is at least 1 and never passes the node-wide bound", () => {
    const { table, round } = setup({ maxOutstanding: 4 });
    table.setSharers(10);
    expect(table.share).toBe(1);
    round("a");
    round("b");
    round("c");
    round("d");
    expect([table.hasRoomFor(["e"]), table.hasRoom(1)]).toEqual([false, false]); // the bound, not e's share
  });

  test("a connection that lets an ID time out is stalled until it answers anything, even late", () => {
    const { clock, table, round } = setup({ timeoutMs: 100 });
    const { ids } = round("a", "b");
    table.answer("b", ids[1]!, true);
    expect([table.isStalled("a"), table.isStalled("b")]).toEqual([false, false]);
    clock.advance(100);
    expect([table.isStalled("a"), table.isStalled("b")]).toEqual([true, false]);
    expect(table.answer("a", ids[0]!, true)).toBe("late");
    expect(table.isStalled("a")).toBe(false);
    // A round decided by another's "invalid" stalls nobody: the slow one had no time to be late.
    const second = round("a", "b");
    table.answer("b", second.ids[1]!, false);
    clock.advance(100);
    expect(table.isStalled("a")).toBe(false);
  });
});
