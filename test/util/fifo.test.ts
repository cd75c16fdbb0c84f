import { expect, test } from "bun:test";
import { Fifo } from "../../src/util/fifo.ts";

test("Fifo keeps first-in first-out order across growth and wrap-around, against an array model", () => {
  const fifo = new Fifo<number>(2);
  const model: number[] = [];
  let next = 0;
  let seed = 7;
  const random = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let step = 0; step < 20_000; step++) {
    if (random() < 0.55) {
      fifo.push(next);
      model.push(next++);
    } else {
      expect(fifo.shift()).toBe(model.shift());
    }
    expect(fifo.length).toBe(model.length);
    expect(fifo.peek()).toBe(model[0]);
  }
  while (model.length > 0) expect(fifo.shift()).toBe(model.shift());
  expect(fifo.shift()).toBeUndefined();
  expect(fifo.peek()).toBeUndefined();
});

test("Fifo.clear empties it and it works again afterwards", () => {
  const fifo = new Fifo<string>();
  for (let i = 0; i < 100; i++) fifo.push(`k${i}`);
  fifo.clear();
  expect(fifo.length).toBe(0);
  fifo.push("a");
  fifo.push("b");
  expect([fifo.shift(), fifo.shift(), fifo.shift()]).toEqual(["a", "b", undefined]);
});
