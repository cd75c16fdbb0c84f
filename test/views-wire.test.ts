/**
 * HyParView's messages between whole nodes (startNode, gossip.overlay: hyparview) on 127.0.0.1: the node's
 * PeerNetwork sends what the core's views ask for (sendViews), the peer's transport decodes it and its node hands it to
 * its core (events.views). JOIN, FORWARD_JOIN, NEIGHBOR and SHUFFLE cross the wire, counted by the links at both ends
 * and by the membership counters; a classic node and a HyParView node link and no view message crosses; a node whose
 * links all die refills its active view from its passive view; a node restarted without bootstrappers rejoins through
 * its peer store.
 */
import { afterAll, afterEach, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NodeConfig } from "../src/config.ts";
import type { HyParViewStats } from "../src/gossip/hyparview.ts";
import { silentLogger } from "../src/log.ts";
import { startNode, type GossipNode } from "../src/node.ts";
import { generateEd25519Pem, loadIdentity, type Identity } from "../src/p2p/identity.ts";
import type { Link } from "../src/p2p/link.ts";
import { FEATURE_VIEWS, LINK_KIND_FIELD } from "../src/p2p/wire.ts";
import { viewCount } from "./p2p/view-messages.ts";
import { bootstrapAt, createHarness, testConfig } from "./net-harness.ts";
import { waitFor } from "./wait-for.ts";

const { subscriber, announce, cleanup, close, pow } = createHarness();
setDefaultTimeout(30_000);
const running: GossipNode[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await cleanup();
  await Promise.all(running.splice(0).map((n) => n.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
afterAll(() => close());

const TYPE = 4343;

interface ViewNodeSpec {
  bootstrap?: GossipNode;
  overlay?: NodeConfig["overlay"];
  degree?: number;
  identity?: Identity;
  peerStorePath?: string;
}

/** A node with HyParView (unless told otherwise), quick ticks and a shuffle every 300 ms. */
async function viewNode(spec: ViewNodeSpec = {}): Promise<GossipNode> {
  const config = testConfig({ overlay: spec.overlay ?? "hyparview", degree: spec.degree ?? 3, bootstrappers: bootstrapAt(spec.bootstrap?.transport.port) });
  const n = await startNode(config, spec.identity ?? loadIdentity(generateEd25519Pem()), silentLogger, {
    pow,
    membership: { tickMs: 100, backoffInitialMs: 50, shuffleIntervalMs: 300 },
    peerStorePath: spec.peerStorePath ?? null,
  });
  running.push(n);
  return n;
}

async function stopNode(n: GossipNode): Promise<void> {
  running.splice(running.indexOf(n), 1);
  await n.stop();
}

const views = (n: GossipNode) => n.membership.stats() as unknown as HyParViewStats;
const linkTo = (n: GossipNode, other: GossipNode): Link | undefined => n.transport.linked().find((l) => l.info.peerId === other.identity.idHex);
const linkedTo = (n: GossipNode, other: GossipNode) => linkTo(n, other) !== undefined && linkTo(other, n) !== undefined;
const sent = (ns: GossipNode[], field: number) => ns.reduce((s, n) => s + n.transport.linked().reduce((t, l) => t + l.sentByKind[field]!, 0), 0);
const received = (ns: GossipNode[], field: number) => ns.reduce((s, n) => s + n.transport.linked().reduce((t, l) => t + l.receivedByKind[field]!, 0), 0);

describe("HyParView on the wire", () => {
  test("two HyParView nodes negotiate views; JOIN, FORWARD_JOIN, NEIGHBOR and SHUFFLE cross and reach the peer's core", async () => {
    const a = await viewNode();
    const b = await viewNode({ bootstrap: a });
    await waitFor(() => linkedTo(a, b), 5000, "b linked to its bootstrapper");
    expect([linkTo(a, b)!.info.features & FEATURE_VIEWS, linkTo(b, a)!.info.features & FEATURE_VIEWS]).toEqual([FEATURE_VIEWS, FEATURE_VIEWS]);
    // b's first message to its contact is JOIN, counted by the link at both ends and by a's membership.
    await waitFor(() => views(a).joins === 1, 3000, "the JOIN at a");
    expect([linkTo(b, a)!.sentByKind[LINK_KIND_FIELD.join], linkTo(a, b)!.receivedByKind[LINK_KIND_FIELD.join]]).toEqual([1, 1]);

    // c joins through a too: a forwards the JOIN to b, whose walk ends there (no other neighbour), so b links to c with
    // a high-priority NEIGHBOR.
    const c = await viewNode({ bootstrap: a });
    await waitFor(() => views(a).joins === 2 && views(b).forwardJoins >= 1, 5000, "c's JOIN at a, its FORWARD_JOIN at b");
    await waitFor(() => linkedTo(b, c), 5000, "b linked to c at the walk's end");
    expect(linkTo(b, c)!.sentByKind[LINK_KIND_FIELD.neighbor]).toBeGreaterThanOrEqual(1);
    expect(linkTo(a, b)!.sentByKind[LINK_KIND_FIELD.forwardJoin]).toBeGreaterThanOrEqual(1);

    // Shuffles every 300 ms: walks and their replies cross, and each node's counters agree with its links'.
    const ns = [a, b, c];
    await waitFor(() => ns.every((n) => views(n).shuffles >= 2), 5000, "two shuffles started by every node");
    await waitFor(() => received(ns, LINK_KIND_FIELD.shuffle) >= 6 && received(ns, LINK_KIND_FIELD.shuffleReply) >= 6, 5000, "shuffles and replies");
    for (const n of ns) expect(n.transport.linked().every((l) => (l.info.features & FEATURE_VIEWS) !== 0)).toBe(true);
    // Between three linked nodes nothing is lost: what was sent of each view kind arrived (links still up).
    for (const field of [LINK_KIND_FIELD.join, LINK_KIND_FIELD.forwardJoin, LINK_KIND_FIELD.neighbor]) {
      expect([field, received(ns, field)]).toEqual([field, sent(ns, field)]);
    }
    // Items still flow over the views' links.
    const subs = await Promise.all(ns.map((n) => subscriber(n, TYPE)));
    await announce(a, TYPE, "over the active view");
    await waitFor(() => subs.slice(1).every((s) => s.received.includes("over the active view")), 5000, "the item at b and c");
  });

  for (const classicFirst of [true, false]) {
    test(`a classic node and a HyParView node link (${classicFirst ? "the classic one is the bootstrapper" : "the HyParView one is"}); no view message crosses`, async () => {
      const first = await viewNode({ overlay: classicFirst ? "classic" : "hyparview" });
      const second = await viewNode({ overlay: classicFirst ? "hyparview" : "classic", bootstrap: first });
      await waitFor(() => linkedTo(first, second), 5000, "the link");
      const [l1, l2] = [linkTo(first, second)!, linkTo(second, first)!];
      expect([l1.info.features & FEATURE_VIEWS, l2.info.features & FEATURE_VIEWS]).toEqual([0, 0]);
      const subs = await Promise.all([first, second].map((n) => subscriber(n, TYPE)));
      await announce(first, TYPE, "one way");
      await announce(second, TYPE, "the other way");
      await waitFor(() => subs[0]!.received.includes("the other way") && subs[1]!.received.includes("one way"), 5000, "both items");
      // The HyParView side treats the classic one as an older node: it asks for addresses by peer exchange instead.
      const hyparview = classicFirst ? second : first;
      await waitFor(() => views(hyparview).shuffles === 0 && hyparview.transport.linked().length === 1, 1000, "no shuffle partner");
      for (const l of [l1, l2]) expect([viewCount(l.sentByKind), viewCount(l.receivedByKind), l.closed]).toEqual([0, 0, false]);
      expect(views(hyparview).joins).toBe(0);
    });
  }

  test("a node whose links all die is linked again from passive views (its own or its survivors')", async () => {
    const first = await viewNode({ degree: 2 });
    const ns = [first];
    for (let i = 0; i < 5; i++) ns.push(await viewNode({ degree: 2, bootstrap: first }));
    const x = ns.at(-1)!;
    // Joins and shuffles spread the addresses: x comes to know at least two nodes besides its neighbours (its passive
    // view also holds the addresses of its links).
    const linked = () => x.transport.linked().length;
    await waitFor(() => linked() >= 1 && views(x).passive >= linked() + 2, 15_000, "x to know two nodes it is not linked to");
    const neighbours = ns.filter((n) => n !== x && linkTo(x, n) !== undefined);
    const survivors = ns.filter((n) => n !== x && !neighbours.includes(n));
    expect(survivors.length).toBeGreaterThanOrEqual(1);
    // Refills: x dials a passive entry, or a survivor that lost links too dials x from its own passive view first.
    const promotions = () => [x, ...survivors].reduce((sum, n) => sum + views(n).promotions, 0);
    const promotionsBefore = promotions();
    await Promise.all(neighbours.map(stopNode));
    // Its links to the stopped nodes go down (as x notices), and passive entries take their place.
    const survivorIds = new Set(survivors.map((n) => n.identity.idHex));
    const onlySurvivors = () => x.transport.linked().length >= 1 && x.transport.linked().every((l) => survivorIds.has(l.info.peerId));
    await waitFor(onlySurvivors, 10_000, "x linked to survivors only");
    expect(promotions()).toBeGreaterThan(promotionsBefore);
    // And it still delivers.
    const ss = await Promise.all(survivors.map((n) => subscriber(n, TYPE)));
    await announce(x, TYPE, "after the failure");
    await waitFor(() => ss.every((s) => s.received.includes("after the failure")), 10_000, "the item at every survivor");
  });

  test("a node restarted without bootstrappers rejoins through its peer store, with a NEIGHBOR request", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gossip-views-"));
    dirs.push(dir);
    const store = join(dir, "hostkey.peers.json");
    const identity = loadIdentity(generateEd25519Pem());
    const a = await viewNode();
    const x = await viewNode({ bootstrap: a, identity, peerStorePath: store });
    await waitFor(() => linkedTo(a, x), 5000, "x linked to a");
    await stopNode(x); // saves the store
    await waitFor(() => a.transport.linked().length === 0, 3000, "a to see x go");
    const again = await viewNode({ identity, peerStorePath: store });
    await waitFor(() => linkedTo(a, again), 5000, "the restarted x linked to a from its peer store");
    expect(views(again).promotions).toBeGreaterThanOrEqual(1);
    await waitFor(() => linkTo(a, again)!.receivedByKind[LINK_KIND_FIELD.neighbor] === 1, 3000, "its NEIGHBOR at a");
    expect(linkTo(a, again)!.receivedByKind[LINK_KIND_FIELD.join]).toBe(0); // a known peer, not a bootstrapper
  });
});
