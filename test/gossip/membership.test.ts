import { describe, expect, test } from "bun:test";
import { PEER_EXCHANGE_INTERVAL_MS, peerExchangeSize } from "../../src/defaults.ts";
import { Membership } from "../../src/gossip/membership.ts";
import { PeerScore } from "../../src/gossip/peer-score.ts";
import type { LinkInfo, PeerAddress, PeerId, PeerNetwork } from "../../src/gossip/ports.ts";
import { seededRandom } from "../../src/util/random.ts";
import { MemNetwork, spawn, type MemNode } from "./memnet.ts";

const T = 1337;
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);

/** n nodes with membership of `degree`; node i bootstraps from node i-1 (a chain). Started, not yet run. */
function chain(n: number, degree: number) {
  const net = new MemNetwork();
  const nodes = Array.from({ length: n }, () => net.addNode());
  const peers = nodes.map((node, i) => {
    node.modules.subscribe(T);
    return spawn(net, node, {
      broadcaster: { degree },
      membership: { degree, bootstrappers: i === 0 ? [] : [nodes[i - 1]!.address] },
    });
  });
  for (const p of peers) p.membership!.start();
  return { net, nodes, peers };
}

/** Alive nodes reachable from `start` over links. */
function reachable(start: MemNode, net: MemNetwork): Set<PeerId> {
  const seen = new Set([start.localId]);
  const todo = [start];
  while (todo.length > 0) {
    for (const peer of todo.pop()!.links.keys()) {
      if (seen.has(peer)) continue;
      seen.add(peer);
      todo.push(net.node(peer)!);
    }
  }
  return seen;
}

const dialsFrom = (net: MemNetwork, from: MemNode) => net.dials.filter((d) => d.from === from.localId);

describe("Membership over an in-memory network", () => {
  test("a chain with degree 3 grows links beyond its neighbours by peer exchange", async () => {
    const { net, nodes, peers } = chain(8, 3);
    await net.runFor(10_000);
    for (const node of nodes) expect(node.links.size).toBeGreaterThanOrEqual(3);
    // Links between nodes that were not chain neighbours exist: learned from peer lists.
    const index = (id: PeerId) => nodes.findIndex((n) => n.localId === id);
    const longLinks = nodes.flatMap((n, i) => [...n.links.keys()].filter((p) => Math.abs(index(p) - i) > 1));
    expect(longLinks.length).toBeGreaterThan(0);
    for (const p of peers) p.membership!.stop();
    expect(net.clock.pendingTimers).toBe(0);
  });

  test("churn: kill 30% of 12 nodes; survivors re-link and a new item reaches all of them", async () => {
    const { net, nodes, peers } = chain(12, 3);
    await net.runFor(10_000);
    const victims = [1, 4, 7, 10];
    for (const v of victims) {
      peers[v]!.membership!.stop();
      net.kill(nodes[v]!);
    }
    const survivors = nodes.filter((_, i) => !victims.includes(i));
    await net.runFor(10_000);
    for (const s of survivors) expect(s.links.size).toBeGreaterThanOrEqual(3);
    expect(reachable(survivors[0]!, net).size).toBe(survivors.length);
    peers[0]!.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes("after-churn") });
    await net.settle();
    for (const s of survivors.slice(1)) {
      expect(s.modules.subscribers[0]!.notified.filter((d) => text(d) === "after-churn").length).toBe(1);
    }
  });

  test("behind NAT (own address unknown) it never dials its own ID, and its own address only until it answers with its own ID", async () => {
    const net = new MemNetwork();
    const me = net.addNode();
    me.knowsOwnAddress = false;
    const other = net.addNode();
    const p = spawn(net, me, {
      membership: { degree: 3, bootstrappers: [{ host: me.host, port: me.port }, other.address] },
    });
    spawn(net, other, { membership: { degree: 3 } });
    p.membership!.start();
    await net.settle();
    // A peer advertises us, under our address and under another one.
    p.membership!.peers(other.localId, [me.address, { host: "10.7.7.7", port: 1, id: me.localId }]);
    await net.runFor(5_000, 500);
    // Once our own address answered with our own ID, hearsay without an ID does not bring it back.
    p.membership!.peers(other.localId, [{ host: me.host, port: me.port }]);
    await net.runFor(30_000, 500);
    const mine = dialsFrom(net, me);
    expect(mine.filter((d) => d.to.id === me.localId)).toEqual([]);
    expect(mine.filter((d) => d.to.host === me.host && d.to.port === me.port).length).toBe(1);
    expect(mine.filter((d) => d.to.host === "10.7.7.7")).toEqual([]);
    expect(me.links.size).toBe(1);
  });

  test("redials with exponential backoff, capped, and the backoff resets after a successful dial", async () => {
    const net = new MemNetwork();
    const me = net.addNode();
    const target: PeerAddress = { host: "10.9.9.9", port: 6001 };
    const p = spawn(net, me, { membership: { degree: 3, bootstrappers: [target] } });
    p.membership!.start();
    await net.runFor(120_000, 250);
    const times = dialsFrom(net, me).map((d) => d.at);
    const gaps = times.slice(1).map((t, i) => t - times[i]!);
    // 0.5 s, 1, 2, 4, 8, 16, 30 (cap) on a 1 s tick: each gap at least the backoff, at most one tick more.
    expect(gaps.slice(0, 7)).toEqual([1_000, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000]);
    expect(Math.max(...gaps)).toBe(30_000);

    // The address comes alive: linked at the next attempt.
    const b = net.addNode({ host: target.host, port: target.port });
    spawn(net, b, { membership: { degree: 3 } });
    await net.runFor(31_000, 250);
    expect(me.links.has(b.localId)).toBe(true);
    await net.runFor(10_000, 250); // a stable link, so its loss is not a failed attempt

    net.kill(b);
    const killedAt = net.clock.now();
    const before = dialsFrom(net, me).length;
    await net.runFor(3_000, 250);
    const after = dialsFrom(net, me).slice(before).map((d) => d.at - killedAt);
    // Immediately on linkDown, then again 0.5 s later on the next tick: the backoff started over.
    expect(after.slice(0, 3)).toEqual([0, 1_000, 2_000]);
  });

  test("a peer claiming our own listen address as its own is never stored, shared or dialed (issue 18 item 2)", async () => {
    const net = new MemNetwork();
    const me = net.addNode();
    const liar = net.addNode();
    const third = net.addNode();
    const p = spawn(net, me, { membership: { degree: 3 } });
    spawn(net, liar);
    spawn(net, third);
    p.membership!.start();
    // The liar's inbound link advertises our host and port as its listen address (the handshake lets it say so).
    liar.advertised = { host: me.host, port: me.port };
    void net.connect(liar, me);
    void net.connect(third, me);
    await net.settle();
    expect(me.links.get(liar.localId)).toMatchObject({ inbound: true, host: me.host, port: me.port });
    expect(p.membership!.referrals(third.localId).some((a) => a.port === me.port && a.host === me.host)).toBe(false);
    net.kill(liar);
    await net.runFor(30_000, 500);
    expect(dialsFrom(net, me).filter((d) => d.to.host === me.host && d.to.port === me.port)).toEqual([]);
    expect(p.membership!.stats().candidates).toBe(1); // only the honest third node
  });

  test("a link dropped right after the dial counts as a failure, so it is not redialed every tick", async () => {
    const net = new MemNetwork();
    const me = net.addNode();
    const rude = net.addNode();
    const p = spawn(net, me, { membership: { degree: 3, bootstrappers: [rude.address] } });
    rude.events = {
      linkUp: (info) => rude.disconnect(info.peer, "go away"),
      item() {},
      peersRequested() {},
      tree() {},
      views() {},
      peers() {},
      linkDown() {},
    };
    p.membership!.start();
    await net.runFor(20_000, 250);
    // Without the rule this would be ~20 dials (one per tick).
    expect(dialsFrom(net, me).length).toBeLessThanOrEqual(6);
  });

  test("uses the RPS source when short of links, and stops asking once at degree", async () => {
    const net = new MemNetwork();
    const me = net.addNode();
    const others = Array.from({ length: 6 }, () => net.addNode());
    for (const o of others) spawn(net, o, { membership: { degree: 10 } });
    let calls = 0;
    const rps = async (): Promise<PeerAddress> => {
      const o = others[calls++ % others.length]!;
      // Every third answer names the wrong ID for the address (the dial must fail on the ID check).
      return calls % 3 === 0 ? { ...o.address, id: "not-" + o.localId } : o.address;
    };
    const p = spawn(net, me, { membership: { degree: 3, rps } });
    p.membership!.start();
    await net.runFor(5_000);
    expect(me.links.size).toBe(3);
    const callsAtDegree = calls;
    expect(callsAtDegree).toBeGreaterThan(0);
    expect(p.membership!.stats().dialFailures).toBeGreaterThan(0);
    await net.runFor(10_000);
    expect(calls).toBe(callsAtDegree);
  });

  test("refuses inbound links at 2×degree, and still dials out when inbound links alone reach degree", async () => {
    const net = new MemNetwork();
    const hub = net.addNode();
    const outside = net.addNode();
    spawn(net, outside);
    const h = spawn(net, hub, { membership: { degree: 2, bootstrappers: [outside.address] } });
    const leaves = Array.from({ length: 5 }, () => spawn(net, net.addNode()).net);
    const results = leaves.map((leaf) => net.connect(leaf, hub));
    await net.settle();
    expect((await Promise.all(results)).filter((r) => r instanceof Error).length).toBe(1);
    expect(h.membership!.acceptInbound()).toBe(false);
    h.membership!.start();
    await net.settle();
    expect(hub.links.has(outside.localId)).toBe(true);
  });

  test("spreads outbound links over IPs: at most the per-IP cap to one remote host, loopback exempt", async () => {
    const net = new MemNetwork();
    const me = net.addNode();
    const crowd = Array.from({ length: 6 }, (_, i) => net.addNode({ host: "10.50.0.1", port: 7000 + i }));
    const loners = Array.from({ length: 3 }, (_, i) => net.addNode({ host: `10.60.0.${i + 1}` }));
    const local = Array.from({ length: 3 }, (_, i) => net.addNode({ host: "127.0.0.1", port: 8000 + i }));
    for (const n of [...crowd, ...loners, ...local]) spawn(net, n);
    const p = spawn(net, me, {
      membership: { degree: 10, maxOutboundPerIp: 2, bootstrappers: [...crowd, ...loners, ...local].map((n) => n.address) },
    });
    p.membership!.start();
    // Short of degree the whole time, so it keeps trying: the cap, not a lack of wish, holds the crowd at 2.
    await net.runFor(10_000);
    const hosts = [...me.links.values()].map((l) => l.host);
    expect(hosts.filter((h) => h === "10.50.0.1").length).toBe(2);
    expect(hosts.filter((h) => h.startsWith("10.60.")).length).toBe(3);
    expect(hosts.filter((h) => h === "127.0.0.1").length).toBe(3);
  });

  test("a banned peer is not dialed, cannot link in, and a link from it is dropped", async () => {
    const net = new MemNetwork();
    const me = net.addNode();
    const bad = net.addNode();
    const p = spawn(net, me, { membership: { degree: 3, bootstrappers: [bad.address] } });
    const score = p.score;
    score.ban(bad.localId);
    spawn(net, bad);
    // Banned after it became a candidate (it misbehaved in another role), and before that: neither is dialed.
    const later = net.addNode();
    spawn(net, later);
    p.membership!.peers("someone", [later.address]);
    score.ban(later.localId);
    p.membership!.start();
    await net.runFor(5_000);
    expect(dialsFrom(net, me)).toEqual([]);
    const inbound = net.connect(bad, me);
    await net.settle();
    expect(await inbound).toEqual(new Error("refused"));
    expect(p.score.isBanned(bad.localId)).toBe(true);
    // Had the transport let it in, membership drops it at linkUp.
    me.isBanned = () => false;
    void net.connect(bad, me);
    await net.settle();
    expect(me.links.size).toBe(0);
  });

  test("probe: dials due addresses beyond degree, never a linked or banned peer; each dial answered once, with the peer or undefined", async () => {
    const net = new MemNetwork();
    const me = net.addNode();
    const [a, b, c, d, e] = Array.from({ length: 5 }, () => net.addNode());
    for (const n of [a, b, c, d, e]) spawn(net, n!);
    const p = spawn(net, me, { membership: { degree: 2, bootstrappers: [a!.address, b!.address] } });
    p.membership!.start();
    await net.runFor(2_000);
    expect(me.links.size).toBe(2);
    const dead: PeerAddress = { host: "10.9.9.9", port: 6001 };
    p.membership!.addKnownAddresses([c!.address, d!.address, e!.address, dead]);
    p.score.ban(e!.localId);
    await net.runFor(2_000);
    const before = dialsFrom(net, me).length;
    expect(before).toBe(2); // at degree: no dial of its own
    const answers: (PeerId | undefined)[] = [];
    const asked: PeerId[] = [];
    const requestPeers = me.requestPeers.bind(me);
    me.requestPeers = (peer) => {
      asked.push(peer);
      requestPeers(peer);
    };
    expect(p.membership!.probe!(3, (peer) => answers.push(peer))).toBe(3);
    await net.settle();
    expect(asked).toEqual([]); // a probe's peer is not asked for addresses (most of a cut-off node's are censors) …
    const probed = dialsFrom(net, me).slice(before).map((x) => `${x.to.host}:${x.to.port}`);
    expect(probed.sort()).toEqual([c!, d!, { host: dead.host, port: dead.port }].map((n) => `${n.host}:${n.port}`).sort());
    expect(answers.filter((x) => x !== undefined).sort()).toEqual([c!.localId, d!.localId].sort());
    expect(answers.filter((x) => x === undefined)).toHaveLength(1);
    expect(me.links.size).toBe(4); // beyond degree: probes are extra links
    expect(p.membership!.stats().probes).toBe(3);
    expect(p.membership!.probe!(10, () => {})).toBe(0); // the dead address backs off; the others are linked or banned
  });

  test("probe with too few addresses left asks a neighbour for more (at most once per exchange interval), and its probes' peers", async () => {
    const net = new MemNetwork();
    const me = net.addNode();
    const [a, banned] = [net.addNode(), net.addNode()];
    spawn(net, a);
    const p = spawn(net, me, { membership: { degree: 1, bootstrappers: [a.address] } });
    p.membership!.start();
    await net.runFor(1_000);
    p.membership!.peers(a.localId, [banned.address]); // one spare address (banned): no periodic exchange of its own
    p.score.ban(banned.localId);
    await net.runFor(PEER_EXCHANGE_INTERVAL_MS);
    const asked: PeerId[] = [];
    me.requestPeers = (peer) => void asked.push(peer);
    expect(p.membership!.probe!(3, () => {})).toBe(0);
    expect(p.membership!.probe!(3, () => {})).toBe(0);
    expect(asked).toEqual([a.localId]);
    // … and the peers of the next probes are asked too, while addresses run short.
    const c = net.addNode();
    spawn(net, c);
    p.membership!.addKnownAddresses([c.address]);
    expect(p.membership!.probe!(3, () => {})).toBe(1);
    await net.settle();
    expect(asked).toEqual([a.localId, c.localId]);
  });

  test("probeDone: a closed probe's address is no failed dial (redialed at once when a link is lost), but is not probed again for the rest", async () => {
    const net = new MemNetwork();
    const me = net.addNode();
    const [a, b] = [net.addNode(), net.addNode()];
    for (const n of [a, b]) spawn(net, n);
    const p = spawn(net, me, { membership: { degree: 1, bootstrappers: [a.address] } });
    p.membership!.start();
    await net.runFor(2_000);
    expect(me.links.has(a.localId)).toBe(true);
    p.membership!.addKnownAddresses([b.address]);
    expect(p.membership!.probe!(1, () => {})).toBe(1);
    await net.settle();
    expect(me.links.has(b.localId)).toBe(true);
    await net.runFor(500); // a probe lives a second or so: a link that short is otherwise a failed dial
    p.membership!.probeDone!(b.localId, 60_000);
    me.disconnect(b.localId, "mute-probe");
    await net.settle();
    expect(p.membership!.probe!(1, () => {})).toBe(0); // resting from probes
    expect(me.links.has(b.localId)).toBe(false); // at degree: not redialed either
    // The link to a is lost: b is dialed at once, with no backoff (a failed dial would wait 0.5 s).
    const before = dialsFrom(net, me).length;
    const killedAt = net.clock.now();
    net.kill(a);
    await net.settle();
    expect(dialsFrom(net, me).slice(before).map((d) => [d.to.port, d.at - killedAt])).toEqual([[b.port, 0]]);
    expect(me.links.has(b.localId)).toBe(true);
  });

  test("answers a peer request with its linked peers (up to the exchange size), never the requester itself", async () => {
    const net = new MemNetwork();
    const me = net.addNode();
    const p = spawn(net, me, { membership: { degree: 3 } });
    const others = Array.from({ length: 6 }, () => net.addNode());
    const lists: PeerAddress[][] = [];
    for (const o of others) {
      o.events = { linkUp() {}, item() {}, peersRequested() {}, peers: (_f, l) => void lists.push(l), tree() {}, views() {}, linkDown() {} };
      void net.connect(o, me);
    }
    await net.settle();
    lists.length = 0;
    me.events!.peersRequested(others[0]!.localId);
    await net.settle();
    expect(lists.length).toBe(1);
    // More than `degree` (3): everyone linked but the requester, bounded by peerExchangeSize.
    expect(lists[0]!.length).toBe(Math.min(5, peerExchangeSize(3)));
    expect(lists[0]!.some((a) => a.id === others[0]!.localId)).toBe(false);
    for (const a of lists[0]!) expect(others.map((o) => o.localId)).toContain(a.id!);
    expect(p.membership!.stats().inbound).toBe(6);
  });

  test("the candidate table stays bounded whatever peers tell it", async () => {
    const net = new MemNetwork();
    const me = net.addNode();
    const p = spawn(net, me, { membership: { degree: 3, maxCandidates: 50, bootstrappers: [{ host: "10.1.1.1", port: 1 }] } });
    for (let m = 0; m < 20; m++) {
      const list = Array.from({ length: 200 }, (_, i) => ({ host: `10.2.${m}.${i % 250}`, port: 1000 + i, id: `x${m}-${i}` }));
      p.membership!.peers("someone", list);
    }
    expect(p.membership!.stats().candidates).toBe(50);
    // Malformed entries are ignored, not thrown on.
    p.membership!.peers("someone", [{ host: "", port: 1 }, { host: "h", port: 0 }, { host: "h", port: 70000 }]);
    expect(p.membership!.stats().candidates).toBe(50);
  });
});

describe("Membership right after bootstrap", () => {
  test("churn while every node holds one link: survivors whose bootstrapper died still find each other", async () => {
    // A star: every node knows only node 0, which takes 2×degree = 6 inbound links and refuses the rest (with
    // referrals). Kill node 0 and a third of the others as soon as each node has its first link, before periodic
    // peer exchange has run; the survivors must still end up in one component.
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const net = new MemNetwork();
      const nodes = Array.from({ length: 12 }, () => net.addNode());
      const peers = nodes.map((node, i) =>
        spawn(net, node, { seed: seed * 100 + i, membership: { degree: 3, bootstrappers: i === 0 ? [] : [nodes[0]!.address] } }),
      );
      for (const p of peers) p.membership!.start();
      await net.runFor(300);
      const victims = [0, 3, 6, 9];
      for (const v of victims) {
        peers[v]!.membership!.stop();
        net.kill(nodes[v]!);
      }
      const survivors = nodes.filter((_, i) => !victims.includes(i));
      await net.runFor(60_000);
      expect({ seed, component: reachable(survivors[0]!, net).size }).toEqual({ seed, component: survivors.length });
      for (const p of peers) p.membership!.stop();
    }
  });
});

test("addresses from the peer store are dialed, and kept (with backoff) while their peer is down", async () => {
  const net = new MemNetwork();
  const me = net.addNode();
  const other = net.addNode();
  const p = spawn(net, me, { membership: { degree: 1, backoffMaxMs: 2_000 } });
  spawn(net, other, { membership: { degree: 1 } });
  net.kill(other);
  p.membership!.addKnownAddresses([other.address]);
  p.membership!.start();
  await net.runFor(60_000);
  // Far more than CANDIDATE_MAX_FAILURES attempts, and the address is still there.
  expect(dialsFrom(net, me).length).toBeGreaterThan(10);
  expect(p.membership!.stats().candidates).toBe(1);
  p.membership!.stop();
});

test("link rotation: two saturated groups that know of each other merge into one component", async () => {
  for (const rotationIntervalMs of [10_000, 10_000_000]) {
    const net = new MemNetwork();
    const nodes = Array.from({ length: 8 }, () => net.addNode());
    // Two groups of 4 with degree 3: each becomes a K4 in which every node is at degree and wants nothing more.
    const peers = nodes.map((node, i) =>
      spawn(net, node, { seed: i, membership: { degree: 3, rotationIntervalMs, bootstrappers: i % 4 === 0 ? [] : [nodes[i < 4 ? 0 : 4]!.address] } }),
    );
    for (const p of peers) p.membership!.start();
    await net.runFor(5_000);
    expect(nodes.map((n) => n.links.size)).toEqual([3, 3, 3, 3, 3, 3, 3, 3]);
    expect(reachable(nodes[0]!, net).size).toBe(4);
    // One node of each group learns one address of the other (as after a healed partition).
    peers[1]!.membership!.addKnownAddresses([nodes[5]!.address]);
    peers[6]!.membership!.addKnownAddresses([nodes[2]!.address]);
    await net.runFor(60_000);
    const merged = reachable(nodes[0]!, net).size === 8;
    expect({ rotationIntervalMs, merged }).toEqual({ rotationIntervalMs, merged: rotationIntervalMs === 10_000 });
    for (const n of nodes) expect(n.links.size).toBeGreaterThanOrEqual(3);
    for (const p of peers) p.membership!.stop();
  }
});

test("asks for peers while it knows fewer spare addresses than degree, and stops once it learns enough (and again when links take them)", () => {
  // A stub network: the links are whatever `links` holds, dials never finish, peer requests are recorded.
  let now = 0;
  let links: LinkInfo[] = [];
  const requests: PeerId[] = [];
  const network = {
    localId: "me",
    linkedPeers: () => links.slice(),
    sendItem: () => false,
    requestPeers: (peer: PeerId) => void requests.push(peer),
    sendPeers: () => {},
    dial: () => new Promise<PeerId>(() => {}),
    disconnect: () => {},
  } satisfies PeerNetwork;
  const clock = { now: () => now, setTimeout: () => 0, clearTimeout: () => {}, setInterval: () => 0, clearInterval: () => {} };
  const link = (i: number): LinkInfo => ({ peer: `p${i}`, host: `10.0.0.${i}`, port: 6001, inbound: false });
  const m = new Membership({ network, score: new PeerScore({ now: () => now }), clock, random: seededRandom(1), degree: 2 });
  links = [link(1), link(2)];
  m.start(); // at degree, no spare address: asks
  expect(requests.length).toBe(1);
  m.peers("p1", [link(3), link(4)].map((l) => ({ host: l.host, port: l.port, id: l.peer })));
  now += PEER_EXCHANGE_INTERVAL_MS;
  m.tick(); // two spare addresses now: no need to ask
  expect(requests.length).toBe(1);
  links = [link(1), link(3)]; // p3 is linked now (the stub tells nobody): one spare left
  now += PEER_EXCHANGE_INTERVAL_MS;
  m.tick();
  expect(requests.length).toBe(2);
  m.stop();
});
