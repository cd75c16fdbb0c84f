import { describe, expect, test } from "bun:test";
import { MAX_ITEM_DATA_BYTES, REPLAY_GRACE_MS } from "../../src/defaults.ts";
import { itemId } from "../../src/gossip/item-id.ts";
import type { GossipItem, LocalModules, Verdict } from "../../src/gossip/ports.ts";
import { MemNetwork, spawn, type GossipPeer, type MemNode } from "./memnet.ts";

const T = 1337; // the course test client's data type
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const item = (s: string, ttl = 0, dataType = T): GossipItem => ({ id: itemId(dataType, bytes(s)), ttl, dataType, data: bytes(s) });

type Opts = Parameters<typeof spawn>[2];

/** n nodes, each subscribed to T (answering valid), linked i → i+1; `extra` adds links [a, b]. */
async function topology(n: number, opts: Opts = {}, extra: [number, number][] = []) {
  const net = new MemNetwork();
  const peers: GossipPeer[] = [];
  for (let i = 0; i < n; i++) {
    const node = net.addNode();
    node.modules.subscribe(T);
    peers.push(spawn(net, node, { ...opts, broadcaster: { degree: 3, ...opts?.broadcaster } }));
  }
  for (let i = 0; i + 1 < n; i++) void net.connect(net.nodes[i]!, net.nodes[i + 1]!);
  for (const [a, b] of extra) void net.connect(net.nodes[a]!, net.nodes[b]!);
  await net.settle();
  return { net, peers, nodes: net.nodes };
}

/** How many NOTIFICATIONs with data `s` node i's subscribers got. */
const notified = (node: MemNode, s: string) =>
  node.modules.subscribers.reduce((n, sub) => n + sub.notified.filter((d) => text(d) === s).length, 0);

describe("Broadcaster over an in-memory network", () => {
  test("12 nodes in a chain: an announced item reaches every subscriber exactly once", async () => {
    const { net, peers, nodes } = await topology(12);
    peers[0]!.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes("deadbeef") });
    await net.settle();
    // The announcer's own subscribers are the API server's business, not the broadcaster's.
    expect(notified(nodes[0]!, "deadbeef")).toBe(0);
    for (const node of nodes.slice(1)) expect(notified(node, "deadbeef")).toBe(1);
    for (const p of peers.slice(1)) expect(p.broadcaster.stats().valid).toBe(1);
  });

  test("a dense mesh produces duplicates, yet each node validates the item once", async () => {
    const extra: [number, number][] = [[0, 5], [0, 9], [2, 7], [3, 11], [4, 8], [1, 10], [6, 11], [2, 9], [5, 10]];
    const { net, peers, nodes } = await topology(12, { broadcaster: { degree: 8 } }, extra);
    peers[3]!.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes("mesh") });
    await net.settle();
    for (const [i, node] of nodes.entries()) expect(notified(node, "mesh")).toBe(i === 3 ? 0 : 1);
    const duplicates = peers.reduce((n, p) => n + p.broadcaster.stats().duplicates, 0);
    expect(duplicates).toBeGreaterThan(0);
    for (const p of peers) expect(p.broadcaster.stats().outstanding).toBe(0);
  });

  test("several announcers at once: nothing is lost", async () => {
    const { net, peers, nodes } = await topology(12, {}, [[0, 6], [3, 9]]);
    const announcers = [0, 4, 7, 11];
    for (const a of announcers) peers[a]!.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes(`from-${a}`) });
    await net.settle();
    for (const [i, node] of nodes.entries()) {
      for (const a of announcers) expect(notified(node, `from-${a}`)).toBe(i === a ? 0 : 1);
    }
  });

  test("an item the first hop's subscriber calls invalid never travels beyond it", async () => {
    const { net, peers, nodes } = await topology(5);
    nodes[1]!.modules.subscribers[0]!.answer = (d) => text(d) !== "bad";
    peers[0]!.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes("bad") });
    peers[0]!.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes("good") });
    await net.settle();
    expect(notified(nodes[1]!, "bad")).toBe(1);
    for (const node of nodes.slice(2)) {
      expect(notified(node, "bad")).toBe(0);
      expect(notified(node, "good")).toBe(1);
    }
    expect(peers[1]!.broadcaster.stats().invalid).toBe(1);
    // Counted against the sender, but not a strike (a module's "invalid" may only mean "not useful to me").
    expect(peers[1]!.score.rejectionsOf(nodes[0]!.localId)).toBe(1);
    expect(peers[1]!.score.strikesOf(nodes[0]!.localId)).toBe(0);
  });

  test("TTL 2 on a line reaches exactly two hops; TTL 1 one hop; TTL 0 stays 0", async () => {
    const { net, peers, nodes } = await topology(6);
    peers[0]!.broadcaster.announceLocal({ ttl: 2, dataType: T, data: bytes("two") });
    peers[0]!.broadcaster.announceLocal({ ttl: 1, dataType: T, data: bytes("one") });
    peers[0]!.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes("inf") });
    await net.settle();
    expect(nodes.map((n) => notified(n, "two"))).toEqual([0, 1, 1, 0, 0, 0]);
    expect(nodes.map((n) => notified(n, "one"))).toEqual([0, 1, 0, 0, 0, 0]);
    expect(nodes.map((n) => notified(n, "inf"))).toEqual([0, 1, 1, 1, 1, 1]);
    const ttlsSeen = (i: number, s: string) => nodes[i]!.inbox.filter((m) => text(m.item.data) === s).map((m) => m.item.ttl);
    expect(ttlsSeen(1, "two")).toEqual([2]);
    expect(ttlsSeen(2, "two")).toEqual([1]);
    expect(ttlsSeen(5, "inf")).toEqual([0]);
  });

  test("a relay with no subscriber for the type does not forward it (and is not notified)", async () => {
    const { net, peers, nodes } = await topology(4);
    nodes[1]!.modules.subscribers.length = 0;
    peers[0]!.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes("x") });
    await net.settle();
    expect(nodes[1]!.inbox.length).toBe(1);
    expect(peers[1]!.broadcaster.stats().notSubscribed).toBe(1);
    expect(nodes[2]!.inbox.length).toBe(0);
    expect(notified(nodes[2]!, "x")).toBe(0);
  });

  test("a local announcement propagates even if no local module subscribed to its type", async () => {
    const { net, peers, nodes } = await topology(3);
    nodes[0]!.modules.subscribers.length = 0;
    peers[0]!.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes("x") });
    await net.settle();
    expect(notified(nodes[2]!, "x")).toBe(1);
  });

  test("flood: pushes to at most `degree` peers, chosen among all links", async () => {
    const net = new MemNetwork();
    const hub = spawn(net, net.addNode(), { broadcaster: { degree: 3, dissemination: "flood" } });
    const leaves = Array.from({ length: 8 }, () => {
      const n = net.addNode();
      n.modules.subscribe(T);
      spawn(net, n);
      void net.connect(n, hub.net);
      return n;
    });
    await net.settle();
    hub.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes("a") });
    hub.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes("b") });
    await net.settle();
    expect(leaves.filter((n) => notified(n, "a") === 1).length).toBe(3);
    expect(leaves.filter((n) => notified(n, "b") === 1).length).toBe(3);
    expect(hub.broadcaster.stats().forwarded).toBe(6);
    // Random choice: over many items every leaf gets some.
    for (let i = 0; i < 40; i++) hub.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes(`m${i}`) });
    await net.settle();
    for (const leaf of leaves) expect(leaf.inbox.length).toBeGreaterThan(2);
  });

  test("a late joiner gets the cached items, oldest first, up to cache_size, with their remaining TTL", async () => {
    const { net, peers, nodes } = await topology(2, { broadcaster: { cacheSize: 3 } });
    for (const [s, ttl] of [["i1", 0], ["i2", 5], ["i3", 0], ["i4", 3], ["i5", 0]] as const) {
      peers[0]!.broadcaster.announceLocal({ ttl, dataType: T, data: bytes(s) });
    }
    peers[0]!.broadcaster.announceLocal({ ttl: 2, dataType: T, data: bytes("last-hop") });
    await net.settle();
    // Node 1 received "last-hop" with TTL 2 and holds it with TTL 1; node 0 holds its own announcements as given.
    const late = net.addNode();
    late.modules.subscribe(T);
    spawn(net, late);
    void net.connect(late, nodes[1]!);
    await net.settle();
    expect(late.inbox.map((m) => [text(m.item.data), m.item.ttl])).toEqual([
      ["i4", 2],
      ["i5", 0],
      ["last-hop", 1],
    ]);
    // It got them through the normal gate: validated once, not forwarded back (already seen there).
    expect(notified(late, "i5")).toBe(1);
  });

  test("an item that arrived with TTL 1 is not cached for later peers", async () => {
    const { net, peers, nodes } = await topology(2);
    peers[0]!.broadcaster.announceLocal({ ttl: 1, dataType: T, data: bytes("one-hop") });
    await net.settle();
    expect(peers[1]!.broadcaster.stats().cached).toBe(0);
    const late = net.addNode();
    spawn(net, late);
    void net.connect(late, nodes[1]!);
    await net.settle();
    expect(late.inbox.length).toBe(0);
  });

  test("a subscriber that never answers: not forwarded, outstanding returns to 0, no strike", async () => {
    const { net, peers, nodes } = await topology(3);
    nodes[1]!.modules.subscribers[0]!.answer = () => "silent";
    peers[0]!.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes("x") });
    await net.settle();
    expect(peers[1]!.broadcaster.stats().outstanding).toBe(1);
    await net.runFor(5_000);
    const s = peers[1]!.broadcaster.stats();
    expect(s.outstanding).toBe(0);
    expect(s.unanswered).toBe(1);
    expect(nodes[2]!.inbox.length).toBe(0);
    expect(peers[1]!.score.strikesOf(nodes[0]!.localId)).toBe(0);
  });

  test("the validation bound counts notifications: an item refused for lack of room is not seen, and is not 'unanswered'", async () => {
    // Defect 1 of issue 13: with two subscribers an item needs two slots. The broadcaster used to mark the item seen
    // and count it "unanswered" when the modules had no room, so every later copy was dropped as a duplicate.
    const { net, peers, nodes } = await topology(2);
    const modules = nodes[1]!.modules;
    modules.subscribers[0]!.answer = () => "silent";
    modules.subscribe(T, () => "silent");
    modules.maxOutstanding = 3;
    nodes[0]!.sendItem(nodes[1]!.localId, item("w0")); // takes 2 of 3 slots
    nodes[0]!.sendItem(nodes[1]!.localId, item("w1")); // needs 2, 1 left: refused
    await net.settle();
    expect(peers[1]!.broadcaster.stats()).toMatchObject({ outstanding: 1, droppedBusy: 1, unanswered: 0 });
    await net.runFor(5_000);
    for (const s of modules.subscribers) s.answer = () => true;
    nodes[0]!.sendItem(nodes[1]!.localId, item("w1"));
    await net.settle();
    expect(peers[1]!.broadcaster.stats()).toMatchObject({ valid: 1, duplicates: 0, droppedBusy: 1, unanswered: 1 });
  });

  test("outstanding validations are bounded: excess items are dropped, and a later copy gets through", async () => {
    const { net, peers, nodes } = await topology(2);
    nodes[1]!.modules.maxOutstanding = 2;
    const sub = nodes[1]!.modules.subscribers[0]!;
    sub.answer = () => "silent";
    for (let i = 0; i < 5; i++) nodes[0]!.sendItem(nodes[1]!.localId, item(`v${i}`));
    await net.settle();
    expect(peers[1]!.broadcaster.stats()).toMatchObject({ outstanding: 2, droppedBusy: 3 });
    await net.runFor(5_000);
    expect(peers[1]!.broadcaster.stats().outstanding).toBe(0);
    sub.answer = () => true;
    nodes[0]!.sendItem(nodes[1]!.localId, item("v4"));
    await net.settle();
    expect(peers[1]!.broadcaster.stats()).toMatchObject({ valid: 1, duplicates: 0 });
  });

  test("a claimed ID that does not match the content: the peer is disconnected and struck", async () => {
    const { net, peers, nodes } = await topology(3);
    const forged = { ...item("real"), data: bytes("fake") };
    nodes[0]!.sendItem(nodes[1]!.localId, forged);
    await net.settle();
    expect(peers[1]!.broadcaster.stats().idMismatch).toBe(1);
    expect(nodes[1]!.links.has(nodes[0]!.localId)).toBe(false);
    expect(peers[1]!.score.strikesOf(nodes[0]!.localId)).toBe(1);
    expect(notified(nodes[1]!, "fake")).toBe(0);
    expect(nodes[2]!.inbox.length).toBe(0);
    // A data type outside u16 whose low bits would hash right is a mismatch too.
    const wide = { ...item("w", 0, 7), dataType: 7 + 0x10000 };
    nodes[2]!.sendItem(nodes[1]!.localId, wide);
    await net.settle();
    expect(peers[1]!.broadcaster.stats().idMismatch).toBe(2);
  });

  test("a peer whose items a module rejects is never banned for it, however many; a peer forging IDs is", async () => {
    const net = new MemNetwork();
    const relay = net.addNode();
    spawn(net, relay);
    const forger = net.addNode();
    spawn(net, forger);
    const victimNode = net.addNode();
    victimNode.modules.subscribe(T, (d) => !text(d).startsWith("junk"));
    const victim = spawn(net, victimNode, { score: { threshold: 5 } });
    void net.connect(relay, victimNode);
    void net.connect(forger, victimNode);
    await net.settle();
    // Ten times the ban threshold of rejections (issue 18: a module rejecting every second item got its honest
    // neighbour banned after ten): the relay stays linked and its next acceptable item is delivered.
    for (let i = 0; i < 50; i++) relay.sendItem(victimNode.localId, item(`junk${i}`));
    await net.settle();
    relay.sendItem(victimNode.localId, item("acceptable"));
    await net.settle();
    expect(victim.broadcaster.stats()).toMatchObject({ invalid: 50, valid: 1, bans: 0 });
    expect(victim.score.isBanned(relay.localId)).toBe(false);
    expect(victimNode.links.has(relay.localId)).toBe(true);
    expect(victim.score.rejectionsOf(relay.localId)).toBe(50);
    // Forged IDs are protocol violations: each one disconnects, and the threshold of them bans.
    for (let i = 0; i < 5; i++) {
      if (!victimNode.links.has(forger.localId)) {
        void net.connect(forger, victimNode);
        await net.settle();
      }
      forger.sendItem(victimNode.localId, { ...item(`real${i}`), data: bytes(`fake${i}`) });
      await net.settle();
    }
    expect(victim.score.isBanned(forger.localId)).toBe(true);
    expect(victim.broadcaster.stats()).toMatchObject({ idMismatch: 5, bans: 1 });
    // Frames still in flight from a banned peer are ignored without a look.
    const before = victimNode.modules.subscribers[0]!.notified.length;
    victim.broadcaster.item(forger.localId, item("late"));
    expect(victimNode.modules.subscribers[0]!.notified.length).toBe(before);
    const redial = net.connect(forger, victimNode);
    await net.settle();
    expect(await redial).toEqual(new Error("refused"));
    // The ban lapses.
    await net.runFor(10 * 60_000, 60_000);
    expect(victim.score.isBanned(forger.localId)).toBe(false);
  });

  test("items from peers of a type nobody here subscribed to are seen once, then cheap duplicates", async () => {
    const { net, peers, nodes } = await topology(2);
    nodes[1]!.modules.subscribers.length = 0;
    nodes[0]!.sendItem(nodes[1]!.localId, item("x"));
    nodes[0]!.sendItem(nodes[1]!.localId, { ...item("x"), ttl: 7 });
    await net.settle();
    expect(peers[1]!.broadcaster.stats()).toMatchObject({ received: 2, notSubscribed: 1, duplicates: 1 });
  });
});

test("a peer that sends a copy while the item is being validated is not sent the item afterwards", async () => {
  const net = new MemNetwork();
  const hub = net.addNode();
  const leaves = [net.addNode(), net.addNode(), net.addNode()];
  let release: (verdict: Verdict) => void = () => {};
  const slowModule: LocalModules = {
    hasSubscribers: () => true,
    canValidate: () => true,
    validate: () => new Promise<Verdict>((resolve) => (release = resolve)),
  };
  const x = spawn(net, hub, { broadcaster: { degree: 3, local: slowModule } });
  for (const leaf of leaves) spawn(net, leaf);
  for (const leaf of leaves) void net.connect(hub, leaf);
  await net.settle();
  const it = item("held twice");
  x.broadcaster.item(leaves[0]!.localId, it);
  x.broadcaster.item(leaves[1]!.localId, it); // a duplicate during validation: leaf 1 has it too
  release("valid");
  await net.settle();
  const got = leaves.map((l) => l.inbox.filter((m) => text(m.item.data) === "held twice").length);
  expect(got).toEqual([0, 0, 1]);
  expect(x.broadcaster.stats().duplicates).toBe(1);
});

describe("cache replay to a node whose module subscribes a moment after the link comes up", () => {
  async function restarted(subscribeAfterMs: number) {
    const net = new MemNetwork();
    const old = net.addNode();
    old.modules.subscribe(T);
    const a = spawn(net, old, { broadcaster: { degree: 3 } });
    a.broadcaster.announceLocal({ ttl: 0, dataType: T, data: bytes("known before") });
    const fresh = net.addNode();
    const b = spawn(net, fresh, { broadcaster: { degree: 3 } });
    void net.connect(fresh, old); // the cache replay arrives now, before anyone here subscribed
    await net.settle();
    await net.runFor(subscribeAfterMs);
    const sub = fresh.modules.subscribe(T);
    await net.runFor(REPLAY_GRACE_MS + 1_000);
    return { b, sub };
  }

  test("a subscriber that appears within the grace period gets the replayed item, validated", async () => {
    const { b, sub } = await restarted(1_000);
    expect(sub.notified.map(text)).toEqual(["known before"]);
    expect(b.broadcaster.stats()).toMatchObject({ replayHeld: 1, valid: 1, notSubscribed: 0, held: 0 });
  });

  test("after the grace period the held item is gone: nothing is delivered late, nothing stays held", async () => {
    const { b, sub } = await restarted(REPLAY_GRACE_MS + 500);
    expect(sub.notified.length).toBe(0);
    expect(b.broadcaster.stats()).toMatchObject({ replayHeld: 1, valid: 0, held: 0 });
  });

  test("only a cache replay is held: an ordinary item of an unsubscribed type on a brand-new link is not", async () => {
    const net = new MemNetwork();
    const a = net.addNode();
    const b = net.addNode();
    spawn(net, a);
    const pb = spawn(net, b);
    void net.connect(a, b);
    await net.settle();
    a.sendItem(b.localId, item("ordinary")); // right after link up, but not part of a replay
    await net.settle();
    expect(pb.broadcaster.stats()).toMatchObject({ replayHeld: 0, notSubscribed: 1 });
  });
});
