/**
 * How close can ONE broadcast tree per data type come to flooding's last delivery? An oracle, not a protocol: it
 * runs `simulate` (flooding, to build the overlay the real membership builds), then on the final overlay and the
 * network model's one-way latencies (jitter, queues and per-hop costs left out) compares, for random origins:
 *   flood   every node at its shortest-path time over all links (the best any push can do);
 *   tree    the best shared tree: the shortest-path tree from the most central node (least eccentricity among
 *           `--centres` random candidates), every item travelling on it from its origin; optionally after a
 *           near-origin push (`h` hops of every link, as TREE_EAGER_HOPS does), costing extra copies.
 * Prints the p50/p99 of each origin's last delivery, the deepest hop count, and the tree's p99 over flood's
 * (docs/simulation.md, "How close one tree can come").
 *
 *   bun scripts/tree-oracle.ts [--nodes 1000] [--degree 6] [--seed 1] [--origins 200] [--centres 100]
 *
 * Reads the simulator's world through `inspect` (read only). Must never change what the simulator does.
 */
import { parseArgs } from "node:util";
import { simulate } from "../src/sim/simulator.ts";
import type { World } from "../src/sim/world.ts";
import type { SimNode } from "../src/sim/node.ts";

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "1000" },
    degree: { type: "string", default: "6" },
    seed: { type: "string", default: "1" },
    origins: { type: "string", default: "200" },
    centres: { type: "string", default: "100" },
  },
});
const PUSH_HOPS = [0, 1, 2, 3];

type Graph = [number, number][][];

/** Shortest paths from several sources at given start times (a binary heap of [time, node]). */
function shortestPaths(graph: Graph, sources: [number, number][]): { dist: Float64Array; hops: Int32Array; parent: Int32Array } {
  const n = graph.length;
  const dist = new Float64Array(n).fill(Infinity);
  const hops = new Int32Array(n);
  const parent = new Int32Array(n).fill(-1);
  const heap: [number, number][] = [];
  const push = (e: [number, number]) => {
    heap.push(e);
    for (let i = heap.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (heap[p]![0] <= heap[i]![0]) break;
      [heap[p], heap[i]] = [heap[i]!, heap[p]!];
      i = p;
    }
  };
  const pop = (): [number, number] => {
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        let m = i;
        if (l < heap.length && heap[l]![0] < heap[m]![0]) m = l;
        if (l + 1 < heap.length && heap[l + 1]![0] < heap[m]![0]) m = l + 1;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i]!, heap[m]!];
        i = m;
      }
    }
    return top;
  };
  for (const [s, t] of sources) {
    dist[s] = t;
    push([t, s]);
  }
  while (heap.length > 0) {
    const [d, u] = pop();
    if (d > dist[u]!) continue;
    for (const [v, w] of graph[u]!) {
      if (d + w >= dist[v]!) continue;
      dist[v] = d + w;
      hops[v] = hops[u]! + 1;
      parent[v] = u;
      push([d + w, v]);
    }
  }
  return { dist, hops, parent };
}

const max = (a: ArrayLike<number>) => {
  let m = -Infinity;
  for (let i = 0; i < a.length; i++) if (a[i]! > m) m = a[i]!;
  return m;
};
const percentile = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(p * a.length))]!;

function analyse(world: World): void {
  const nodes = world.nodes.filter((n: SimNode) => n.honest && n.alive);
  const at = new Map<string, number>(nodes.map((n, i) => [n.id, i]));
  const graph: Graph = nodes.map(() => []);
  let links = 0;
  nodes.forEach((n, i) => {
    for (const peer of n.links.keys()) {
      const j = at.get(peer);
      if (j === undefined) continue;
      graph[i]!.push([j, world.oneWayMs(n, nodes[j]!)]);
      links++;
    }
  });
  let state = Number(values.seed) * 2654435761;
  const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const origins = Array.from({ length: Number(values.origins) }, () => Math.floor(random() * nodes.length));
  let centre = 0;
  let centreEcc = Infinity;
  for (let k = 0; k < Number(values.centres); k++) {
    const c = Math.floor(random() * nodes.length);
    const e = max(shortestPaths(graph, [[c, 0]]).dist);
    if (e < centreEcc) [centre, centreEcc] = [c, e];
  }
  const { parent } = shortestPaths(graph, [[centre, 0]]);
  const tree: Graph = nodes.map(() => []);
  for (let v = 0; v < nodes.length; v++) {
    const u = parent[v]!;
    if (u < 0) continue;
    const w = graph[v]!.find(([x]) => x === u)![1];
    tree[u]!.push([v, w]);
    tree[v]!.push([u, w]);
  }
  const flood = origins.map((o) => shortestPaths(graph, [[o, 0]]));
  const floodLast = flood.map((f) => max(f.dist));
  const row = (name: string, last: number[], hops: number, extra: number) =>
    console.log(
      `| ${name} | ${percentile(last, 0.5).toFixed(0)} | ${percentile(last, 0.99).toFixed(0)} | ${(percentile(last, 0.99) / percentile(floodLast, 0.99)).toFixed(2)} | ${hops} | ${extra.toFixed(3)} |`,
    );
  console.log(`${nodes.length} nodes, ${(links / nodes.length).toFixed(2)} links per node, ${origins.length} origins, centre eccentricity ${centreEcc.toFixed(0)} ms`);
  console.log("| dissemination | last delivery p50 ms | p99 ms | p99 / flood's | deepest hops | extra copies per delivery |");
  console.log("|---|---|---|---|---|---|");
  row("flood (shortest paths over every link)", floodLast, Math.max(...flood.map((f) => max(f.hops))), 0);
  for (const h of PUSH_HOPS) {
    const last: number[] = [];
    let deepest = 0;
    let pushes = 0;
    origins.forEach((o, k) => {
      const f = flood[k]!;
      // The push: nodes up to h hops out (on their shortest paths) get it at flood's time and enter the tree there.
      const sources: [number, number][] = [];
      for (let v = 0; v < nodes.length; v++) {
        if (v !== o && f.hops[v]! > h) continue;
        sources.push([v, f.dist[v]!]);
        if (f.hops[v]! < h) pushes += graph[v]!.length;
      }
      const t = shortestPaths(tree, sources);
      last.push(max(t.dist));
      deepest = Math.max(deepest, max(t.hops) + h);
    });
    row(h === 0 ? "one shared tree (oracle)" : `near-origin push of ${h} hop${h > 1 ? "s" : ""}, then the tree`, last, deepest, pushes / origins.length / nodes.length);
  }
}

await simulate({
  nodes: Number(values.nodes),
  degree: Number(values.degree),
  seed: Number(values.seed),
  items: 20,
  size: 1024,
  dissemination: "flood",
  quiet: true,
  inspect: (world) => analyse(world),
} as Parameters<typeof simulate>[0]);
