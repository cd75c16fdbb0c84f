/** Graphs for tests of the trees (plumtree.test.ts, tree-root.test.ts). */
import { seededRandom } from "../../src/util/random.ts";

/** A random connected graph on `n` nodes: a ring (connected also without any one node) plus `extra` random chords. */
export function randomGraph(n: number, extra: number, seed: number): [number, number][] {
  const random = seededRandom(seed);
  const edges: [number, number][] = [];
  const seen = new Set<string>();
  const add = (a: number, b: number) => {
    const key = a < b ? `${a}-${b}` : `${b}-${a}`;
    if (a !== b && !seen.has(key)) {
      seen.add(key);
      edges.push([a, b]);
    }
  };
  for (let i = 0; i < n; i++) add(i, (i + 1) % n);
  while (edges.length < n + extra) add(Math.floor(random() * n), Math.floor(random() * n));
  return edges;
}
