/**
 * Rooted trees (src/gossip/tree-root.ts) as a pure state machine: nodes wired by a message queue, no core. They agree
 * on the smallest key as root, each keeps the neighbour nearest to it as parent (a breadth-first tree), a link is a
 * tree link at both ends or at neither, a root that leaves is replaced after a bounded count, and state is bounded.
 */
import { expect, test } from "bun:test";
import { RootedTree, type RootAdvert, type RootedTreeOptions } from "../../src/gossip/tree-root.ts";
import { randomGraph } from "./graphs.ts";
import { TREE_ROOT_ADVERT_BUDGET, TREE_ROOT_ADVERT_WINDOW_MS, TREE_ROOT_DEFAULT_LINK_MS, TREE_ROOT_MAX_DISTANCE } from "../../src/defaults.ts";

const T = 7;

/** Options for a RootedTree of a test: no-op callbacks, a clock at 0, the defaults' budget. */
function opts(o: Partial<RootedTreeOptions> & { self: string }): RootedTreeOptions {
  return {
    maxTypes: 4,
    maxDistance: TREE_ROOT_MAX_DISTANCE,
    defaultLinkMs: TREE_ROOT_DEFAULT_LINK_MS,
    hopMs: 0,
    send: () => {},
    dirty: () => {},
    parentChanged: () => {},
    roleChanged: () => {},
    now: () => 0,
    advertBudget: TREE_ROOT_ADVERT_BUDGET,
    advertWindowMs: TREE_ROOT_ADVERT_WINDOW_MS,
    flood: () => {},
    ...o,
  };
}

/** `n` RootedTrees with keys from `keyOf`, linked by `edges`; adverts queue and are delivered by `settle`. */
function world(n: number, edges: [number, number][], keyOf: (i: number) => string = (i) => (1000 + i).toString(16).padStart(16, "0")) {
  const queue: { from: number; to: number; advert: RootAdvert }[] = [];
  const alive = new Set<number>(Array.from({ length: n }, (_, i) => i));
  const links = new Set<string>();
  const trees = Array.from(
    { length: n },
    (_, i) =>
      new RootedTree(opts({ self: keyOf(i), send: (peer, advert) => void queue.push({ from: i, to: Number(peer), advert }) })),
  );
  const link = (a: number, b: number) => {
    links.add(`${a}-${b}`).add(`${b}-${a}`);
    trees[a]!.linkUp(String(b));
    trees[b]!.linkUp(String(a));
  };
  for (const [a, b] of edges) link(a, b);
  /** Rounds: every advert in flight is delivered, then every node flushes what changed (as after its delay). */
  const settle = (maxRounds = 1000) => {
    let delivered = 0;
    for (let round = 0; ; round++) {
      for (const t of trees) t.flush();
      if (queue.length === 0) return delivered;
      if (round > maxRounds) throw new Error("adverts did not settle");
      for (const m of queue.splice(0)) {
        if (!alive.has(m.to) || !links.has(`${m.from}-${m.to}`)) continue;
        trees[m.to]!.heard(String(m.from), m.advert);
        delivered++;
      }
    }
  };
  const kill = (i: number) => {
    alive.delete(i);
    for (const key of [...links]) {
      const [a, b] = key.split("-").map(Number) as [number, number];
      if (a !== i) continue;
      links.delete(key);
      links.delete(`${b}-${a}`);
      trees[b]!.linkDown(String(a));
    }
  };
  const treeEdges = () => {
    const out: [number, number][] = [];
    for (const key of links) {
      const [a, b] = key.split("-").map(Number) as [number, number];
      if (a < b && trees[a]!.isTreeLink(String(b), T)) out.push([a, b]);
    }
    return out;
  };
  return { trees, link, settle, kill, alive, links, treeEdges, keyOf };
}

/** Hop distances from `root` over the live links. */
function bfs(n: number, links: Set<string>, root: number): number[] {
  const dist = new Array<number>(n).fill(Infinity);
  dist[root] = 0;
  const queue = [root];
  while (queue.length > 0) {
    const a = queue.shift()!;
    for (let b = 0; b < n; b++) if (links.has(`${a}-${b}`) && dist[b] === Infinity) (dist[b] = dist[a]! + 1), queue.push(b);
  }
  return dist;
}

/** The tree's edges connect every live node, and each node's distance is its BFS distance to the root. */
function expectSpanningBfsTree(w: ReturnType<typeof world>, root: number): void {
  const live = [...w.alive];
  const edges = w.treeEdges();
  expect(edges.length).toBe(live.length - 1);
  const dist = bfs(w.trees.length, w.links, root);
  for (const i of live) {
    const place = w.trees[i]!.placeOf(T)!;
    expect(`${i}: ${place.root} ${place.distance}`).toBe(`${i}: ${w.keyOf(root)} ${dist[i]}`);
    // Tree links agree at both ends: the parent sees us as its child.
    if (place.parent !== undefined) expect(w.trees[Number(place.parent)]!.isTreeLink(String(i), T)).toBe(true);
  }
}

test("every node takes part: one root (the smallest key), a breadth-first spanning tree, tree links agreed at both ends", () => {
  const n = 60;
  const w = world(n, randomGraph(n, 90, 3), (i) => ((i * 7919) % 1000).toString(16).padStart(16, "0"));
  for (const t of w.trees) t.activate(T);
  w.settle();
  const root = [...Array(n).keys()].reduce((best, i) => (w.keyOf(i) < w.keyOf(best) ? i : best), 0);
  expectSpanningBfsTree(w, root);
  // Nothing left to say once settled: no advert without a change.
  expect(w.settle()).toBe(0);
});

test("the root leaves: the others count up to the bound at most, then agree on the next smallest key", () => {
  const n = 40;
  const w = world(n, randomGraph(n, 50, 5));
  for (const t of w.trees) t.activate(T);
  w.settle();
  expectSpanningBfsTree(w, 0);
  const sentBefore = w.trees.reduce((s, t) => s + t.sent, 0);
  w.kill(0);
  w.settle();
  expectSpanningBfsTree(w, 1);
  // Bounded: a node's place changes at most once a round on the way up to the bound, and each round's changes are
  // one advert per link.
  const sent = w.trees.reduce((s, t) => s + t.sent, 0) - sentBefore;
  expect(sent).toBeLessThan(w.links.size * (TREE_ROOT_MAX_DISTANCE + 2));
});

test("a new link with a smaller root re-roots the tree; a new node learns where the others are when it links", () => {
  const w = world(4, [[1, 2], [2, 3]]);
  for (const t of w.trees) t.activate(T);
  w.settle();
  expect(w.trees[3]!.placeOf(T)).toMatchObject({ root: w.keyOf(1), distance: 2, parent: "2" });
  w.link(0, 3); // node 0 holds the smallest key
  w.settle();
  expectSpanningBfsTree(w, 0);
  expect(w.trees[1]!.placeOf(T)).toMatchObject({ root: w.keyOf(0), distance: 3, parent: "2" });
});

test("a neighbour whose parent we are is never our parent (poisoned reverse); distances past the bound are not believed", () => {
  const sent: { peer: string; advert: RootAdvert }[] = [];
  const t = new RootedTree(opts({ self: "00000000000000ff", maxDistance: 24, send: (peer, advert) => void sent.push({ peer, advert }) }));
  t.linkUp("a");
  t.linkUp("b");
  t.activate(T);
  t.heard("a", { dataType: T, root: "0000000000000001", distance: 3, cost: 150, parent: true });
  expect(t.placeOf(T)!.parent).toBeUndefined();
  t.heard("b", { dataType: T, root: "0000000000000001", distance: 24, cost: 1200, parent: false });
  expect(t.placeOf(T)!.parent).toBeUndefined();
  t.heard("b", { dataType: T, root: "0000000000000001", distance: 23, cost: 1150, parent: false });
  expect(t.placeOf(T)).toMatchObject({ root: "0000000000000001", distance: 24, parent: "b" });
  expect(t.isTreeLink("a", T) && t.isTreeLink("b", T)).toBe(true);
  t.flush();
  // The last adverts tell b it is our parent, and a that it is not.
  const last = (peer: string) => sent.findLast((s) => s.peer === peer)!.advert;
  expect([last("a").parent, last("b").parent]).toEqual([false, true]);
});

test("adverts from a peer that does not speak rooted trees, or for a type we do not relay, decide nothing; types are bounded", () => {
  const sent: string[] = [];
  const t = new RootedTree(opts({ self: "00000000000000ff", maxTypes: 2, send: (peer) => void sent.push(peer) }));
  t.heard("stranger", { dataType: T, root: "0000000000000001", distance: 0, cost: 0, parent: false });
  expect(t.decides("stranger", T)).toBe(false);
  t.linkUp("a");
  t.heard("a", { dataType: 99, root: "0000000000000001", distance: 0, cost: 0, parent: false });
  t.flush();
  expect([t.decides("a", 99), t.isTreeLink("a", 99), sent.length]).toEqual([false, false, 0]);
  for (let type = 1; type <= 5; type++) t.activate(type);
  expect([1, 2, 3, 4, 5].filter((type) => t.placeOf(type) !== undefined)).toEqual([4, 5]);
  t.linkDown("a");
  expect(t.speaks("a")).toBe(false);
});

test("a peer flooding adverts: past its budget in a window they are ignored and charged once per budget; the next window counts afresh", () => {
  let now = 0;
  const floods: string[] = [];
  const t = new RootedTree(opts({ self: "00000000000000ff", now: () => now, advertBudget: 8, advertWindowMs: 1000, flood: (peer) => void floods.push(peer) }));
  t.linkUp("flooder");
  t.linkUp("honest");
  t.activate(T);
  // Each advert moves our place (a root at distance 0, then none): what a flood would make every link carry.
  const flip = (i: number): RootAdvert => ({ dataType: T, root: i % 2 === 0 ? "0000000000000001" : "00000000000000fe", distance: 0, cost: 0, parent: false });
  for (let i = 0; i < 8; i++) t.heard("flooder", flip(i));
  expect(t.placeOf(T)!.root).toBe("00000000000000fe");
  for (let i = 8; i < 25; i++) t.heard("flooder", flip(i)); // 17 over the budget: ignored, charged at the 1st and 9th, 17th
  expect([t.placeOf(T)!.root, t.ignored, floods.length]).toEqual(["00000000000000fe", 17, 3]);
  t.heard("honest", { dataType: T, root: "0000000000000002", distance: 1, cost: 50, parent: false }); // other peers are not held back
  expect(t.placeOf(T)).toMatchObject({ root: "0000000000000002", distance: 2, parent: "honest" });
  now = 1000;
  t.heard("flooder", flip(0));
  expect(t.placeOf(T)).toMatchObject({ root: "0000000000000001", distance: 1, parent: "flooder" });
});

test("the parent is the neighbour nearest to the root in time (half the handshake's round trip per link), then in links", () => {
  const t = new RootedTree(opts({ self: "00000000000000ff" }));
  t.linkUp("far", 400); // a slow link to a neighbour next to the root
  t.linkUp("near", 20); // a fast link to one two links away
  t.linkUp("unmeasured"); // its link counts TREE_ROOT_DEFAULT_LINK_MS
  t.activate(T);
  t.heard("far", { dataType: T, root: "0000000000000001", distance: 1, cost: 10, parent: false });
  expect(t.placeOf(T)).toEqual({ root: "0000000000000001", distance: 2, cost: 210, parent: "far" });
  t.heard("near", { dataType: T, root: "0000000000000001", distance: 2, cost: 60, parent: false });
  expect(t.placeOf(T)).toEqual({ root: "0000000000000001", distance: 3, cost: 70, parent: "near" });
  t.heard("unmeasured", { dataType: T, root: "0000000000000001", distance: 1, cost: 70 - TREE_ROOT_DEFAULT_LINK_MS, parent: false });
  expect(t.placeOf(T)!.parent).toBe("unmeasured"); // 70 ms as well, in 2 links against 3
  expect(t.placeOf(T)!.cost).toBe(70);
});
