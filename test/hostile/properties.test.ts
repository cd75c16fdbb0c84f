/**
 * The decoder properties of properties.ts with a few hundred cases each (issue 8: any bytes in, only our protocol
 * error out). `bun run fuzz` runs the same properties for longer.
 */
import { expect, test } from "bun:test";
import { properties } from "./properties.ts";

for (const p of properties) {
  test(p.name, () => {
    const { runs, failure } = p.check({ numRuns: 400 });
    expect(failure).toBeUndefined();
    expect(runs).toBe(400);
  });
}
