/**
 * A small seeded PRNG (mulberry32) for reproducible choices: the testnet's and the benchmarks' dial graphs, the
 * in-memory test network. Pure and runtime-neutral (the benchmarks also run under Node). Never use it for anything
 * secret: keys, nonces and challenges come from crypto.getRandomValues.
 */

/** Uniform numbers in [0, 1); the same seed gives the same sequence. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
