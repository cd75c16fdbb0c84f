/**
 * Network faults (issue 8, cases 28–30) over real in-process nodes: a partition and its healing, a minute of churn,
 * and a crash followed by a restart with the same hostkey. Here the delivery checks are the canary: every item must
 * reach every node it should, and after each case descriptors and heap return near the file's baseline.
 */
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import type { TCPSocketListener } from "bun";
import { MSG_RPS_QUERY, encodeRpsPeer } from "../../src/api/codec.ts";
import type { GossipNode } from "../../src/node.ts";
import { ApiTestClient, waitFor } from "../api/client.ts";
import { connected, createHarness, type NodeSpec } from "../net-harness.ts";
import { type Module, type Resources, announceBytes, apiModule, expectNearBaseline, measure } from "./canary.ts";

const h = createHarness();
// Long enough for a failing case to report what it waited for instead of hitting the test timeout.
setDefaultTimeout(20_000);
const listeners: TCPSocketListener<undefined>[] = [];
const clients: ApiTestClient[] = [];
let baseline: Resources;

beforeAll(async () => {
  await h.pow.solve(new Uint8Array(128), 1); // start the PoW worker before the baseline
  baseline = measure();
});
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  for (const l of listeners.splice(0)) l.stop(true);
  await h.cleanup();
  await expectNearBaseline(baseline);
});
afterAll(() => h.close());

async function subscribe(n: GossipNode, dataType: number): Promise<Module> {
  const m = await apiModule(n, dataType);
  clients.push(m.client);
  return m;
}

async function announce(n: GossipNode, dataType: number, text: string): Promise<void> {
  const c = await ApiTestClient.connect(n.api.port);
  clients.push(c);
  c.send(announceBytes(dataType, text));
}

/** `count` nodes, each bootstrapped from the one before, all linked into one component. */
async function network(count: number, spec: NodeSpec = {}): Promise<GossipNode[]> {
  const ns = [await h.node(spec)];
  for (let i = 1; i < count; i++) ns.push(await h.node({ ...spec, bootstrapPort: ns[i - 1]!.transport.port }));
  await waitFor(() => connected(ns) && ns.every((n) => n.transport.linked().length >= 2), 10_000, "one component");
  return ns;
}

const has = (m: Module, ...texts: string[]) => texts.every((t) => m.received.includes(t));

test("28. a partitioned 12-node network delivers within each half, and after healing is one component again", async () => {
  // degree 6: a half of 6 nodes can never give a node 6 links, so after healing every node looks across again.
  const ns = await network(12, { degree: 6 });
  const subs = await Promise.all(ns.map((n) => subscribe(n, 0x300)));
  const halves = [ns.slice(0, 6), ns.slice(6)];
  const half = (n: GossipNode) => (halves[0]!.includes(n) ? 0 : 1);
  const byId = new Map(ns.map((n) => [n.identity.idHex, n]));

  // The partition: nobody dials any more (and dials in flight are let finish, so no link across appears late),
  // every link across is closed, and each half is kept connected by linking neighbours inside it where needed.
  for (const n of ns) n.membership.stop();
  await waitFor(() => ns.every((n) => n.membership.stats().dialing === 0 && n.transport.stats().pendingHandshakes === 0), 5000, "dials settled");
  const crossLinks = () =>
    ns.flatMap((n) => n.transport.linked().filter((l) => byId.has(l.info.peerId) && half(byId.get(l.info.peerId)!) !== half(n)).map((l) => [n, l.info.peerId] as const));
  await waitFor(
    () => {
      for (const [n, peer] of crossLinks()) n.transport.disconnect(peer, "partition");
      return crossLinks().length === 0;
    },
    5000,
    "links across closed",
  );
  for (const side of halves) {
    for (let i = 1; i < side.length; i++) {
      if (!connected(side.slice(0, i + 1))) await side[i]!.transport.dial("127.0.0.1", side[i - 1]!.transport.port);
    }
  }
  await waitFor(() => connected(halves[0]!) && connected(halves[1]!), 3000, "each half connected");
  expect(connected(ns)).toBe(false);

  await announce(ns[2]!, 0x300, "in A");
  await announce(ns[9]!, 0x300, "in B");
  await waitFor(() => subs.every((s, i) => has(s, i < 6 ? "in A" : "in B")), 5000, "delivery within each half");
  expect(subs.some((s, i) => has(s, i < 6 ? "in B" : "in A"))).toBe(false);
  expect(crossLinks().length).toBe(0);

  // Healing: dialing is allowed again.
  for (const n of ns) n.membership.start();
  await waitFor(() => connected(ns), 10_000, "one component again");
  await announce(ns[11]!, 0x300, "after healing");
  await waitFor(() => subs.every((s) => has(s, "after healing")), 5000, "a new item reaches all twelve");
  // What each half said during the partition crosses over too: newly linked peers are sent the cached items.
  await waitFor(() => subs.every((s) => has(s, "in A", "in B")), 5000, "partition-time items everywhere");
  for (const s of subs) expect(new Set(s.received).size).toBe(s.received.length); // each exactly once
}, 40_000);

test("29. a minute of churn (10% of the nodes replaced every 3 s): every item reaches every node alive throughout", async () => {
  // Every node runs a subscriber, as a real network would: a node with no subscriber for a type does not relay it
  // (VoidPhone: only subscribed types propagate), and nodes pushing to it would then be pushing into a dead end.
  const spec: NodeSpec = { degree: 4, cacheSize: 50 };
  const stable = await network(5, spec);
  const subs = await Promise.all(stable.map((n) => subscribe(n, 0x301)));
  const churners: GossipNode[] = [];
  const churner = async (bootstrap: GossipNode) => {
    const n = await h.node({ ...spec, bootstrapPort: bootstrap.transport.port });
    await subscribe(n, 0x301);
    churners.push(n);
  };
  for (let i = 0; i < 5; i++) await churner(stable[i]!);
  await waitFor(() => connected([...stable, ...churners]), 10_000, "ten nodes in one component");
  const announcers = await Promise.all(stable.map((n) => ApiTestClient.connect(n.api.port)));
  clients.push(...announcers);
  const items: string[] = [];
  let replaced = 0;
  const end = Date.now() + 60_000;
  let nextChurn = Date.now() + 3000;
  while (Date.now() < end) {
    const text = `churn item ${items.length}`;
    items.push(text);
    announcers[items.length % announcers.length]!.send(announceBytes(0x301, text));
    if (Date.now() >= nextChurn) {
      nextChurn += 3000;
      // Replace a random churner by a new node that bootstraps from a random live node.
      await h.stop(churners.splice(Math.floor(Math.random() * churners.length), 1)[0]!);
      const live = [...stable, ...churners];
      await churner(live[Math.floor(Math.random() * live.length)]!);
      replaced++;
    }
    await Bun.sleep(400); // the pace of announcements, not a wait for a condition
  }
  expect(replaced).toBeGreaterThanOrEqual(19);
  try {
    await waitFor(() => subs.every((s) => has(s, ...items)), 10_000, "every item at every stable node");
  } catch {
    const missing = subs.map((s) => items.filter((t) => !s.received.includes(t)).length);
    throw new Error(`items missing per stable node: ${missing.join(", ")} of ${items.length}`);
  }
  for (const s of subs) expect(new Set(s.received).size).toBe(s.received.length);
}, 90_000);

/** An RPS module stand-in: answers RPS QUERY with `peer` once `ready` is set, and hangs up before that. */
function rpsStub(peer: GossipNode) {
  const state = { ready: false, queries: 0 };
  listeners.push(
    Bun.listen<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        data(s, chunk) {
          if (chunk.length < 4 || ((chunk[2]! << 8) | chunk[3]!) !== MSG_RPS_QUERY) return void s.end();
          state.queries++;
          if (!state.ready) return void s.end();
          const port = peer.transport.port;
          s.write(encodeRpsPeer({ port, portmap: [{ moduleId: 500, port }], address: "127.0.0.1", hostkeyDer: peer.identity.publicKeyDer }));
        },
      },
    }),
  );
  return { port: listeners.at(-1)!.port, state };
}

test("30. a node that crashes and restarts with the same hostkey rejoins and catches up from its peers' caches", async () => {
  const spec: NodeSpec = { degree: 3, cacheSize: 20 };
  const ns = await network(6, spec);
  const subs = await Promise.all(ns.map((n) => subscribe(n, 0x302)));
  await announce(ns[0]!, 0x302, "before");
  await waitFor(() => subs.every((s) => has(s, "before")), 5000, "before the crash");

  const crashed = ns[3]!;
  await h.stop(crashed);
  const others = ns.filter((n) => n !== crashed);
  const otherSubs = subs.filter((_, i) => i !== 3);
  const missed = ["while down 1", "while down 2", "while down 3"];
  for (const [i, text] of missed.entries()) await announce(others[i]!, 0x302, text);
  await waitFor(() => otherSubs.every((s) => has(s, ...missed)), 5000, "the others get what it missed");

  // The restart finds peers through its RPS module, which answers only once the node's own module has subscribed:
  // items replayed before any local subscriber exists are dropped as unsubscribed (README, "Security and
  // robustness"). It listens on a new port so that old neighbours redialing its old address cannot race the
  // subscription either.
  const rps = rpsStub(others[0]!);
  const restarted = await h.node({ ...spec, identity: crashed.identity, rpsPort: rps.port });
  const sub = await subscribe(restarted, 0x302);
  rps.state.ready = true;
  await waitFor(() => has(sub, ...missed), 5000, "catch-up from the peers' caches");
  await waitFor(() => restarted.transport.linked().length >= 2, 5000, "rejoined beyond the first peer");
  await announce(others[4]!, 0x302, "after the restart");
  await waitFor(() => has(sub, "after the restart") && otherSubs.every((s) => has(s, "after the restart")), 5000, "new items");
  expect(restarted.identity.idHex).toBe(crashed.identity.idHex);
  expect(others.some((n) => n.transport.linked().some((l) => l.info.peerId === crashed.identity.idHex))).toBe(true);
});
