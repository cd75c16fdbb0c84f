/**
 * Whom each testnet node dials at start: k distinct random others, from a seeded PRNG so that the same seed gives the
 * same graph (the gossipsub bench harness builds its graph with this too, under Node). Pure.
 */

/** For each node, `k` distinct random others to dial (fewer if there are fewer others). */
export function randomDials(n: number, k: number, random: () => number): number[][] {
  return Array.from({ length: n }, (_, i) => {
    const others = Array.from({ length: n - 1 }, (_, j) => (j < i ? j : j + 1));
    for (let j = 0; j < Math.min(k, others.length); j++) {
      const r = j + Math.floor(random() * (others.length - j));
      [others[j], others[r]] = [others[r]!, others[j]!];
    }
    return others.slice(0, Math.min(k, others.length));
  });
}
