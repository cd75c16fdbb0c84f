/**
 * HyParView membership (src/gossip/hyparview.ts) through the real gossip core on the in-memory network: join walks,
 * symmetric bounded active views, promotion from the passive view after mass failure, the priority rules, shuffles,
 * bounds, and nodes that do not speak views.
 */
import { describe, expect, test } from "bun:test";
import { VIEW_ACTIVE_WALK, passiveViewSize } from "../../src/defaults.ts";
import type { PeerAddress } from "../../src/gossip/ports.ts";
import type { HyParViewStats } from "../../src/gossip/hyparview.ts";
import { MemNetwork, spawn, type GossipPeer, type MemNode } from "./memnet.ts";

const stats = (p: GossipPeer) => p.membership!.stats() as HyParViewStats;

/** `n` nodes joining one by one through node 0 (or `boot`), each started at once; then `settleMs` of virtual time. */
async function grow(n: number, degree: number, settleMs: number, opts: { boot?: (i: number) => number; old?: number[] } = {}) {
  const net = new MemNetwork();
  const peers: GossipPeer[] = [];
  for (let i = 0; i < n; i++) {
    const node = net.addNode();
    if (opts.old?.includes(i)) node.speaksViews = false;
    const boot = i === 0 ? [] : [net.nodes[opts.boot?.(i) ?? 0]!.address];
    // A node that predates views runs the classic membership (src/gossip/membership.ts).
    const overlay = opts.old?.includes(i) ? "classic" : "hyparview";
    const p = spawn(net, node, { overlay, seed: 1000 + i, membership: { degree, bootstrappers: boot } });
    p.membership!.start();
    peers.push(p);
    await net.runFor(200, 100);
  }
  await net.runFor(settleMs, 500);
  return { net, peers, nodes: net.nodes };
}

function componentOf(start: MemNode, net: MemNetwork): Set<string> {
  const seen = new Set([start.localId]);
  const queue = [start];
  while (queue.length > 0) {
    for (const p of queue.pop()!.links.keys()) {
      if (!seen.has(p)) {
        seen.add(p);
        queue.push(net.node(p)!);
      }
    }
  }
  return seen;
}

describe("HyParView over the in-memory network", () => {
  test("200 nodes joining through one bootstrapper form one component of symmetric, nearly all full views of at most `degree` (+1 while a link settles)", async () => {
    const { net, peers, nodes } = await grow(200, 6, 30_000);
    expect(componentOf(nodes[0]!, net).size).toBe(200);
    const degrees = nodes.map((n) => n.links.size);
    // degree + 1 only while a low-priority link from a full view awaits its target's verdict (one per node at most).
    expect(Math.max(...degrees)).toBeLessThanOrEqual(7);
    expect(degrees.filter((d) => d > 6).length).toBeLessThanOrEqual(10);
    // Holes pair up: nearly every view is full.
    expect(degrees.filter((d) => d < 6).length).toBeLessThanOrEqual(4);
    // The joins were spread by walks: the bootstrapper is no hub.
    expect(nodes[0]!.links.size).toBeLessThanOrEqual(6);
    expect(peers.reduce((s, p) => s + stats(p).forwardJoins, 0)).toBeGreaterThan(199);
    for (const p of peers) expect(stats(p).passive).toBeLessThanOrEqual(passiveViewSize(6));
  }, 30_000);

  test("after half the nodes crash at once, the survivors refill their views from the passive view and stay one component", async () => {
    const { net, peers, nodes } = await grow(120, 6, 20_000);
    for (let i = 0; i < nodes.length; i += 2) net.kill(nodes[i]!);
    const alive = nodes.filter((n) => n.alive);
    await net.runFor(20_000, 250);
    expect(componentOf(alive[0]!, net).size).toBe(alive.length);
    for (const n of alive) expect(n.links.size).toBeGreaterThanOrEqual(4);
    const promotions = peers.filter((_, i) => i % 2 === 1).reduce((s, p) => s + stats(p).promotions, 0);
    expect(promotions).toBeGreaterThan(0);
  }, 30_000);

  test("a full node refuses a low-priority neighbour and makes room for a high-priority one", async () => {
    const net = new MemNetwork();
    const hub = net.addNode();
    const hubPeer = spawn(net, hub, { overlay: "hyparview", membership: { degree: 2 } });
    hubPeer.membership!.start();
    const others = Array.from({ length: 4 }, () => net.addNode());
    for (const o of others) spawn(net, o, { overlay: "hyparview", membership: { degree: 2 } });
    for (const o of others.slice(0, 2)) void net.connect(o, hub);
    await net.settle();
    for (const o of others.slice(0, 2)) o.sendViews(hub.localId, { kind: "neighbor", high: false });
    await net.settle();
    expect(hub.links.size).toBe(2);
    // A third, low priority: refused (the hub sends DISCONNECT and drops it).
    void net.connect(others[2]!, hub);
    await net.settle();
    others[2]!.sendViews(hub.localId, { kind: "neighbor", high: false });
    await net.settle();
    expect(hub.links.has(others[2]!.localId)).toBe(false);
    expect(stats(hubPeer).neighborRefused).toBe(1);
    // A fourth, high priority (its view is empty): accepted, and one of the first two makes room.
    void net.connect(others[3]!, hub);
    await net.settle();
    others[3]!.sendViews(hub.localId, { kind: "neighbor", high: true });
    await net.settle();
    expect(hub.links.has(others[3]!.localId)).toBe(true);
    expect(hub.links.size).toBe(2);
    expect(hub.viewsSent.get("disconnect")).toBe(2);
  });

  test("shuffles bring addresses from beyond the neighbours into the passive view", async () => {
    // A ring of 40 with degree 2: without shuffles a node would know little beyond its two neighbours' walks.
    const { peers, nodes } = await grow(40, 2, 60_000, { boot: (i) => i - 1 });
    expect(peers.reduce((s, p) => s + stats(p).shuffles, 0)).toBeGreaterThan(40 * 3);
    const me = nodes[20]!;
    const neighbours = new Set([...me.links.keys()].flatMap((p) => [p, ...nodes.find((n) => n.localId === p)!.links.keys()]));
    const passive = peers[20]!.membership!.referrals("nobody").map((a) => a.id);
    const far = passive.filter((id) => id !== undefined && !neighbours.has(id) && id !== me.localId);
    expect(far.length).toBeGreaterThan(3);
  }, 30_000);

  test("nodes that do not speak views link, are kept like any neighbour, and never get a view message", async () => {
    const old = [3, 7, 11];
    const { net, nodes } = await grow(30, 4, 20_000, { old });
    expect(componentOf(nodes[0]!, net).size).toBe(30);
    for (const i of old) expect(nodes[i]!.links.size).toBeGreaterThan(0);
    // memnet throws on a view message over a link that does not speak views; the old nodes sent none either.
    for (const i of old) expect([...nodes[i]!.viewsSent.values()].reduce((a, b) => a + b, 0)).toBe(0);
  }, 30_000);
});

/** `n` hyparview nodes of `degree`, spawned (membership started, nothing to dial: no bootstrappers), no rotation or
 *  shuffle within a test; `edges` linked by hand, each announced by its dialer as a low-priority NEIGHBOR. */
async function graph(n: number, degree: number, edges: [number, number][], start = true) {
  const net = new MemNetwork();
  const nodes = Array.from({ length: n }, () => net.addNode());
  const peers = nodes.map((node, i) =>
    spawn(net, node, { overlay: "hyparview", seed: 50 + i, membership: { degree, rotationIntervalMs: 1e9, shuffleIntervalMs: 1e9 } }),
  );
  for (const [a, b] of edges) {
    void net.connect(nodes[a]!, nodes[b]!);
    await net.settle();
    nodes[a]!.sendViews(nodes[b]!.localId, { kind: "neighbor", high: false });
  }
  await net.settle();
  if (start) for (const p of peers) p.membership!.start();
  return { net, nodes, peers };
}

/** Dials `from` made to `to`. */
const dialsTo = (net: MemNetwork, from: MemNode, to: MemNode) => net.dials.filter((d) => d.from === from.localId && d.to.id === to.localId).length;

describe("HyParView: holes in the views find each other", () => {
  test("a walk past its first hop ends at the first node with room, which dials the newcomer; its first hop passes it on", async () => {
    // A line 0–1–2–3–4 at degree 3: everyone has room. Membership not started (no ticks: only this walk happens).
    const { net, nodes } = await graph(6, 3, [[0, 1], [1, 2], [2, 3], [3, 4]], false);
    const newcomer = nodes[5]!;
    nodes[0]!.sendViews(nodes[1]!.localId, { kind: "forward-join", peer: newcomer.address, ttl: VIEW_ACTIVE_WALK });
    await net.settle();
    expect(dialsTo(net, nodes[1]!, newcomer)).toBe(0); // the first hop: a neighbour of the walk's start
    expect(dialsTo(net, nodes[2]!, newcomer)).toBe(1); // the first node with room past it
    expect(net.dials.filter((d) => d.to.id === newcomer.localId).length).toBe(1);
    expect(newcomer.links.has(nodes[2]!.localId)).toBe(true);
  });

  test("a node short of links asks a neighbour for a walk, and the walk reaches the other hole: both fill, no link is dropped", async () => {
    // A ring of 8 at degree 3 with chords, except that nodes 0 and 4 lack one link each (far apart, not linked).
    const ring: [number, number][] = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 6], [6, 7], [7, 0]];
    const chords: [number, number][] = [[1, 5], [2, 6], [3, 7]];
    const edges = [...ring, ...chords];
    const { net, nodes, peers } = await graph(8, 3, edges);
    expect(nodes[0]!.links.size).toBe(2);
    expect(nodes[4]!.links.size).toBe(2);
    await net.runFor(20_000, 250);
    expect(nodes[0]!.links.has(nodes[4]!.localId)).toBe(true);
    for (const n of nodes) expect(n.links.size).toBe(3);
    for (const [a, b] of edges) expect(nodes[a]!.links.has(nodes[b]!.localId)).toBe(true);
    expect(stats(peers[0]!).refillAsks + stats(peers[4]!).refillAsks).toBeGreaterThan(0);
    expect(peers.reduce((s, p) => s + stats(p).refillWalks, 0)).toBeGreaterThan(0);
  });

  test("a full node's low-priority rotation: refused by a full target (nobody loses a link); kept by a target with room, and the rotator drops one link for it", async () => {
    // Two triangles at degree 2 (all full) and a pair 6–7 where 6 has room (degree 2, one link).
    const { net, nodes, peers } = await graph(8, 2, [[0, 1], [1, 2], [2, 0], [3, 4], [4, 5], [5, 3], [6, 7]]);
    const rotator = peers[0]!.membership! as unknown as { passive: { learn(a: PeerAddress, f: object): unknown }; rotate(): void };
    // Full target: refused, both views as before.
    rotator.passive.learn(nodes[3]!.address, {});
    rotator.rotate();
    await net.runFor(3_000, 250);
    expect(nodes[0]!.links.has(nodes[3]!.localId)).toBe(false);
    for (const i of [0, 1, 2, 3, 4, 5]) expect(nodes[i]!.links.size).toBe(2);
    expect(stats(peers[3]!).neighborRefused).toBe(1);
    // Target with room: kept; once it has settled the rotator is back at degree, having dropped one of 1 and 2.
    rotator.passive.learn(nodes[6]!.address, {});
    (rotator as unknown as { passive: { pick(): unknown } }).passive;
    await net.runFor(1_000, 250);
    // The refused entry backs off, so the only due entry is 6.
    rotator.rotate();
    await net.runFor(500, 100);
    expect(nodes[0]!.links.size).toBe(3); // waiting for the verdict
    await net.runFor(3_000, 250);
    expect(nodes[0]!.links.has(nodes[6]!.localId)).toBe(true);
    expect(nodes[0]!.links.size).toBe(2);
    expect(nodes[6]!.links.size).toBe(2);
  });

  test("a view short by two or more dials all but one missing link at once; short by one, one at a time", async () => {
    // 0 (degree 4) has one link, so 3 are missing: 2 dials at once (low priority). Membership not started.
    const { net, nodes, peers } = await graph(8, 4, [[0, 1]], false);
    const hv = peers[0]!.membership! as unknown as { passive: { learn(a: PeerAddress, f: object): unknown }; fill(): void };
    for (const n of nodes.slice(2)) hv.passive.learn(n.address, {});
    const before = net.dials.length; // the hand-made link 0–1
    const from0 = () => net.dials.slice(before).filter((d) => d.from === nodes[0]!.localId).length;
    hv.fill();
    expect(from0()).toBe(2);
    hv.fill(); // those two still in flight: nothing more
    expect(from0()).toBe(2);
    await net.settle();
    expect(nodes[0]!.links.size).toBe(3);
    hv.fill(); // short by one: one dial
    expect(from0()).toBe(3);
    await net.settle();
    expect(nodes[0]!.links.size).toBe(4);
  });

  test("a low-priority dial that completes after the view filled up is dropped itself, not a neighbour", async () => {
    // 0 (degree 2) has one link and dials 2 to fill; in the same turn 3 links to 0 and fills it. Membership not
    // started: the fill is called once, by hand.
    const { net, nodes, peers } = await graph(4, 2, [[0, 1]], false);
    const hv = peers[0]!.membership! as unknown as { passive: { learn(a: PeerAddress, f: object): unknown }; fill(): void };
    hv.passive.learn(nodes[2]!.address, {});
    hv.fill(); // dials 2 at low priority ("fits")
    void net.connect(nodes[3]!, nodes[0]!);
    await net.settle();
    expect(net.dials.some((d) => d.from === nodes[0]!.localId && d.to.id === nodes[2]!.localId)).toBe(true);
    expect([...nodes[0]!.links.keys()].sort()).toEqual([nodes[1]!.localId, nodes[3]!.localId].sort());
    expect(nodes[2]!.links.size).toBe(0);
  });
});
