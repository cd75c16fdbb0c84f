/**
 * HyParView membership (src/gossip/hyparview.ts) through the real gossip core on the in-memory network: join walks,
 * symmetric bounded active views, promotion from the passive view after mass failure, the priority rules, shuffles,
 * bounds, and nodes that do not speak views.
 */
import { describe, expect, test } from "bun:test";
import { passiveViewSize } from "../../src/defaults.ts";
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
  test("200 nodes joining through one bootstrapper form one component of symmetric views of at most `degree`", async () => {
    const { net, peers, nodes } = await grow(200, 6, 30_000);
    expect(componentOf(nodes[0]!, net).size).toBe(200);
    const degrees = nodes.map((n) => n.links.size);
    expect(Math.max(...degrees)).toBeLessThanOrEqual(6);
    expect(degrees.reduce((a, b) => a + b) / degrees.length).toBeGreaterThan(5.5);
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
