/**
 * Broadcast-tree messages between whole nodes (startNode) on 127.0.0.1: the node's PeerNetwork sends what the
 * gossip core's tree asks for (sendTree), the peer's transport decodes it and its node hands it to its core
 * (events.tree), and the broadcasters' tree counters on both ends agree. A triangle of tree nodes prunes its redundant
 * link, announces on it, and grafts across it once an eager link is cut; a node that does not speak trees (offerTrees:
 * false, like one that predates them) takes part in a mixed triangle and never sends or receives a tree message.
 * Rooted trees (src/gossip/tree-root.ts): TreeRoot adverts cross the wire, the nodes agree on one root and keep two
 * tree links, items from every node at once arrive once each without a PRUNE or GRAFT, and a node that speaks the
 * paper's trees only (offerRoots: false) is never sent an advert and still gets everything.
 */
import { afterAll, afterEach, expect, setDefaultTimeout, test } from "bun:test";
import type { PlumtreeStats } from "../src/gossip/plumtree.ts";
import { startNode, type GossipNode } from "../src/node.ts";
import { silentLogger } from "../src/log.ts";
import { generateEd25519Pem, loadIdentity } from "../src/p2p/identity.ts";
import type { Link } from "../src/p2p/link.ts";
import { FEATURE_ROOTS, FEATURE_TREES, LINK_KIND_FIELD } from "../src/p2p/wire.ts";
import { waitFor } from "./wait-for.ts";
import { RawPeer, payload } from "./hostile/raw-peer.ts";
import { createHarness, testConfig, type NodeSpec } from "./net-harness.ts";

const { node, subscriber, announce, cleanup, close, pow } = createHarness();
setDefaultTimeout(20_000);
afterEach(() => cleanup());
afterAll(() => close());

const TYPE = 4242;
const TREE_FIELDS = [LINK_KIND_FIELD.ihave, LINK_KIND_FIELD.graft, LINK_KIND_FIELD.prune, LINK_KIND_FIELD.dontHave];
type TreeCounter = keyof PlumtreeStats;

/** Three nodes linked to each other by hand (membership stopped, so nothing adds or replaces a link). */
async function triangle(specs: (NodeSpec | GossipNode)[] = [{}, {}, {}]): Promise<GossipNode[]> {
  const ns: GossipNode[] = [];
  for (const spec of specs) {
    const n = "broadcaster" in spec ? spec : await node(spec);
    n.membership.stop();
    ns.push(n);
  }
  for (const [i, j] of [[1, 0], [2, 0], [2, 1]] as const) {
    await ns[i]!.transport.dial("127.0.0.1", ns[j]!.transport.port, ns[j]!.identity.idHex);
  }
  await waitFor(() => ns.every((n) => n.transport.linked().length === 2), 5000, "the triangle's links");
  return ns;
}

const treeStats = (n: GossipNode) => n.broadcaster.stats().tree!;
const total = (ns: GossipNode[], counter: TreeCounter) => ns.reduce((sum, n) => sum + treeStats(n)[counter], 0);
/** Tree messages a link sent and received, counted by the link itself. */
const treeMessagesOn = (l: Link) => TREE_FIELDS.reduce((s, f) => s + l.sentByKind[f]! + l.receivedByKind[f]!, 0);
const peerOf = (n: GossipNode, other: GossipNode) => n.transport.linked().find((l) => l.info.peerId === other.identity.idHex)!;

async function announceAndDeliver(ns: GossipNode[], subs: { received: string[] }[], from: GossipNode, texts: string[]): Promise<void> {
  for (const t of texts) await announce(from, TYPE, t);
  const others = subs.filter((_, i) => ns[i] !== from);
  await waitFor(() => others.every((s) => texts.every((t) => s.received.includes(t))), 5000, `delivery of ${texts.length} items`);
}

test("tree nodes: PRUNE, IHAVE and GRAFT cross the wire and reach the peer's core; every item arrives once", async () => {
  // The paper's rules: nodes that speak trees without rooted trees (as before them).
  const plain = { transport: { offerRoots: false } };
  const ns = await triangle([plain, plain, plain]);
  const subs = await Promise.all(ns.map((n) => subscriber(n, TYPE)));
  for (const n of ns) for (const l of n.transport.linked()) expect(n.broadcaster.roleOf(l.info.peerId)).toBe("eager");

  // The first items reach each node twice: the redundant link turns lazy, and what is PRUNEd on one end arrives on the
  // other. Later items are announced on the lazy link.
  await announceAndDeliver(ns, subs, ns[0]!, ["one", "two", "three"]);
  await waitFor(() => total(ns, "prunesSent") > 0 && total(ns, "prunesReceived") === total(ns, "prunesSent"), 5000, "prunes delivered");
  await announceAndDeliver(ns, subs, ns[0]!, ["four", "five"]);
  await waitFor(() => total(ns, "ihaveSent") > 0 && total(ns, "ihaveReceived") === total(ns, "ihaveSent"), 5000, "announcements delivered");

  // Cut a link that is eager on both ends: the node beyond the lazy link then hears of the next item first by IHAVE
  // and GRAFTs it across the wire; the announcer answers with the item.
  const [x, y] = [[0, 1], [0, 2], [1, 2]]
    .map(([i, j]) => [ns[i]!, ns[j]!] as const)
    .find(([a, b]) => a.broadcaster.roleOf(b.identity.idHex) === "eager" && b.broadcaster.roleOf(a.identity.idHex) === "eager")!;
  x.transport.disconnect(y.identity.idHex, "test-cut");
  await waitFor(() => x.transport.linked().length === 1 && y.transport.linked().length === 1, 3000, "the cut");
  await announceAndDeliver(ns, subs, ns[0]!, ["six"]);
  await waitFor(() => total(ns, "graftsSent") > 0 && total(ns, "graftsReceived") === total(ns, "graftsSent"), 5000, "grafts delivered");
  expect(total(ns, "graftsAnswered")).toBe(total(ns, "graftsReceived"));
  for (const s of subs.slice(1)) expect(s.received.toSorted()).toEqual(["five", "four", "one", "six", "three", "two"]);
});

test("a GRAFT for an item the peer never had is answered with DONT-HAVE, across the wire both ways", async () => {
  const [a, b] = await triangle();
  const linkAB = peerOf(a, b!);
  const before = treeStats(b!).graftsMissed;
  // Sent by a's transport as its PeerNetwork would (the same LinkMessage kind sendTree makes).
  expect(a!.transport.send(b!.identity.idHex, { kind: { $case: "graft", value: { idPrefix: [new Uint8Array(8).fill(0xee)] } } })).toBe(true);
  await waitFor(() => linkAB.receivedByKind[LINK_KIND_FIELD.dontHave] === 1, 3000, "the DONT-HAVE at a");
  expect(treeStats(b!).graftsMissed).toBe(before + 1);
  expect(treeStats(b!).graftsReceived).toBeGreaterThanOrEqual(1);
});

test("a node that does not speak trees links with tree nodes; no tree message to or from it, and every item arrives", async () => {
  const ns = await triangle([{ transport: { offerTrees: false } }, {}, {}]);
  const [older, b, c] = ns as [GossipNode, GossipNode, GossipNode];
  for (const l of older.transport.linked()) expect(l.info.features).toBe(0);
  expect(peerOf(b, c).info.features).toBe(FEATURE_TREES | FEATURE_ROOTS);
  const subs = await Promise.all(ns.map((n) => subscriber(n, TYPE)));
  await announceAndDeliver(ns, subs, older, ["from the older 1", "from the older 2"]);
  await announceAndDeliver(ns, subs, b, ["from b 1", "from b 2", "from b 3"]);
  await announceAndDeliver(ns, subs, c, ["from c 1"]);
  // The tree nodes still prune and announce between themselves; the older one is fed in full by both.
  await waitFor(() => total([b, c], "prunesReceived") === total([b, c], "prunesSent"), 3000, "prunes settled");
  // Counted by the links at both ends of each link to the older node.
  expect([treeMessagesOn(peerOf(older, b)), treeMessagesOn(peerOf(older, c)), treeMessagesOn(peerOf(b, older)), treeMessagesOn(peerOf(c, older))]).toEqual([0, 0, 0, 0]);
  expect([b.broadcaster.roleOf(older.identity.idHex), c.broadcaster.roleOf(older.identity.idHex)]).toEqual(["eager", "eager"]);
  const st = treeStats(older);
  expect([st.prunesSent, st.ihaveSent, st.graftsSent, st.prunesReceived, st.ihaveReceived, st.graftsReceived]).toEqual([0, 0, 0, 0, 0, 0]);
  for (const s of subs) expect(new Set(s.received).size).toBe(s.received.length); // no duplicate deliveries
  expect(older.transport.linked().every((l) => !l.closed)).toBe(true);
});

test("hops travel in Payloads: a node forwards what arrived with hops 5 as hops 6, and its own items with none (0)", async () => {
  const n = await node();
  const sub = await subscriber(n, TYPE);
  const [from, to] = [await RawPeer.connect(n.transport.port), await RawPeer.connect(n.transport.port)];
  try {
    await Promise.all([from.handshake(), to.handshake()]);
    await waitFor(() => n.transport.linked().length === 2, 3000, "both raw peers linked");
    const item = payload(TYPE, "five hops out");
    if (item.kind?.$case === "payload") item.kind.value.hops = 5;
    from.send(item);
    await announce(n, TYPE, "ours");
    await waitFor(() => to.payloads(TYPE).length === 2, 3000, "both items at the other peer");
    const hopsOf = (text: string) => to.payloads(TYPE).find((p) => new TextDecoder().decode(p.data) === text)?.hops;
    expect([hopsOf("five hops out"), hopsOf("ours")]).toEqual([6, undefined]);
    expect(sub.received.toSorted()).toEqual(["five hops out", "ours"]);
  } finally {
    from.close();
    to.close();
  }
});

test("a node configured to flood (dissemination: flood) offers no trees, so tree peers keep pushing to it in full", async () => {
  const flooder = await startNode(testConfig({ dissemination: "flood" }), loadIdentity(generateEd25519Pem()), silentLogger, { pow });
  try {
    const ns = await triangle([flooder, {}, {}]);
    const [, b, c] = ns as [GossipNode, GossipNode, GossipNode];
    for (const l of flooder.transport.linked()) expect(l.info.features).toBe(0);
    const subs = await Promise.all(ns.map((n) => subscriber(n, TYPE)));
    // Its pushes would be duplicates at b and c; were it a tree peer, they would prune it and only announce to it.
    await announceAndDeliver(ns, subs, flooder, ["flood 1", "flood 2", "flood 3"]);
    await announceAndDeliver(ns, subs, b, ["b 1", "b 2", "b 3"]);
    await announceAndDeliver(ns, subs, c, ["c 1", "c 2"]);
    expect([b.broadcaster.roleOf(flooder.identity.idHex), c.broadcaster.roleOf(flooder.identity.idHex)]).toEqual(["eager", "eager"]);
    expect(flooder.transport.linked().map(treeMessagesOn)).toEqual([0, 0]);
  } finally {
    await flooder.stop();
  }
});

test("rooted trees on the wire: one root, two tree links, every item once without PRUNE or GRAFT; a node without them gets no advert", async () => {
  const ns = await triangle();
  const subs = await Promise.all(ns.map((n) => subscriber(n, TYPE)));
  await announceAndDeliver(ns, subs, ns[0]!, ["warm"]);
  // Each node's eager links: the two tree links of the triangle (one is lazy at both of its ends), once the adverts
  // (sent 20 ms after a change) have crossed.
  const eagerEnds = () => ns.reduce((sum, n) => sum + n.transport.linked().filter((l) => n.broadcaster.roleOf(l.info.peerId) === "eager").length, 0);
  const places = () => ns.map((n) => n.broadcaster.rootOf(TYPE)!);
  const settled = () => total(ns, "rootAdvertsSent") > 0 && total(ns, "rootAdvertsReceived") === total(ns, "rootAdvertsSent");
  await waitFor(() => settled() && new Set(places().map((p) => p.root)).size === 1 && eagerEnds() === 4, 5000, "one root, two tree links");
  // Paths to the root in time, from the handshakes' round trips: 0 at the root, more than 0 elsewhere.
  expect(places().map((p) => (p.distance === 0 ? p.cost === 0 : p.cost > 0))).toEqual([true, true, true]);
  const [prunes, grafts] = [total(ns, "prunesSent"), total(ns, "graftsSent")];
  const texts = ns.flatMap((_, i) => [0, 1, 2].map((k) => `from ${i} #${k}`));
  await Promise.all(ns.map((n, i) => Promise.all(texts.filter((t) => t.startsWith(`from ${i} `)).map((t) => announce(n, TYPE, t)))));
  await waitFor(() => subs.every((s, i) => texts.filter((t) => !t.startsWith(`from ${i} `)).every((t) => s.received.includes(t))), 5000, "every item everywhere");
  for (const s of subs) expect(new Set(s.received).size).toBe(s.received.length);
  expect([total(ns, "prunesSent") - prunes, total(ns, "graftsSent") - grafts]).toEqual([0, 0]);

  // A fourth node that speaks the paper's trees only: linked to all three, it gets no advert and every item.
  const plain = await node({ transport: { offerRoots: false } });
  plain.membership.stop();
  for (const n of ns) await plain.transport.dial("127.0.0.1", n.transport.port, n.identity.idHex);
  await waitFor(() => plain.transport.linked().length === 3, 5000, "the fourth node's links");
  const sub = await subscriber(plain, TYPE);
  await announceAndDeliver([...ns, plain], [...subs, sub], ns[1]!, ["to the plain one too"]);
  for (const l of plain.transport.linked()) {
    expect(l.info.features).toBe(FEATURE_TREES);
    expect(l.receivedByKind[LINK_KIND_FIELD.treeRoot]! + l.sentByKind[LINK_KIND_FIELD.treeRoot]!).toBe(0);
  }
  expect(plain.broadcaster.rootOf(TYPE)?.parent).toBeUndefined(); // it heard of no tree: its own root
});
