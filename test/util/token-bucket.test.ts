import { expect, test } from "bun:test";
import { TokenBucket } from "../../src/util/token-bucket.ts";

test("a token bucket starts full, refills at its rate up to its burst, and time going back gives nothing", () => {
  const b = new TokenBucket(10, 3, 1000); // 10 a second, 3 saved up at most
  expect([b.take(1000), b.take(1000), b.take(1000), b.take(1000)]).toEqual([true, true, true, false]);
  expect(b.take(1050)).toBe(false); // half a token
  expect(b.take(1100)).toBe(true); // one
  expect([b.take(5000), b.take(5000), b.take(5000), b.take(5000)]).toEqual([true, true, true, false]); // never more than 3
  expect(b.take(4000)).toBe(false);
});
