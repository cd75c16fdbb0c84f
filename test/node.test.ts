/**
 * Whole nodes over real sockets on 127.0.0.1: API server, PoW-gated Noise links, broadcaster and membership.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import type { GossipNode } from "../src/node.ts";
import { waitFor } from "./wait-for.ts";
import { createHarness } from "./net-harness.ts";

const harness = createHarness();
const { subscriber, announce } = harness;
const node = (bootstrapPort?: number) => harness.node({ bootstrapPort });

afterEach(() => harness.cleanup());
afterAll(() => harness.close());

test("two nodes link over a PoW-gated Noise handshake and exchange announcements both ways", async () => {
  const a = await node();
  const b = await node(a.transport.port);
  await waitFor(() => a.transport.linked().length === 1 && b.transport.linked().length === 1, 5000, "link");
  expect(a.transport.linked()[0]!.info.peerId).toBe(b.identity.idHex);

  const subA = await subscriber(a, 7);
  const subB = await subscriber(b, 7);
  await announce(a, 7, "from a");
  await announce(b, 7, "from b");
  // Each subscriber hears its own node's announcement locally and the other's over the link, once each.
  await waitFor(() => subA.received.length === 2 && subB.received.length === 2, 5000, "delivery");
  expect(subA.received.sort()).toEqual(["from a", "from b"]);
  expect(subB.received.sort()).toEqual(["from a", "from b"]);
  expect(a.broadcaster.stats().received).toBe(1);
  expect(b.broadcaster.stats().received).toBe(1);
});

test("10 nodes bootstrapped in a chain: an item reaches every subscriber exactly once; several announcers lose nothing", async () => {
  const chain: GossipNode[] = [await node()];
  for (let i = 1; i < 10; i++) chain.push(await node(chain[i - 1]!.transport.port));
  await waitFor(() => chain.every((n) => n.transport.linked().length >= 1), 10_000, "all linked");
  const subs = await Promise.all(chain.map((n) => subscriber(n, 42)));

  // Announcers are separate API connections, so every subscriber (on the announcing node too) gets each item once.
  await announce(chain[0]!, 42, "one");
  await waitFor(() => subs.every((s) => s.received.length >= 1), 10_000, "chain delivery");
  await Promise.all([3, 6, 9].map((i) => announce(chain[i]!, 42, `from ${i}`)));
  await waitFor(() => subs.every((s) => s.received.length >= 4), 10_000, "multi delivery");
  for (const s of subs) expect(s.received.sort()).toEqual(["from 3", "from 6", "from 9", "one"]);
  // A subscriber has printed an item before its VALIDATION reaches the node: wait for the answers to land.
  await waitFor(() => chain.every((n) => n.broadcaster.stats().outstanding === 0), 5000, "validations settled");
});

test("an item a subscriber declares invalid is not forwarded beyond that node", async () => {
  const a = await node();
  const b = await node(a.transport.port);
  await waitFor(() => b.transport.linked().length === 1, 5000, "a-b link");
  const c = await node(b.transport.port);
  await waitFor(() => c.transport.linked().length >= 1, 5000, "c link");
  // c may also learn a through peer exchange; only b is in a position to stop it if c is linked to b alone.
  const subB = await subscriber(b, 9, (text) => text !== "bad");
  const subC = await subscriber(c, 9, true);
  for (const link of c.transport.linked()) if (link.info.peerId === a.identity.idHex) c.transport.disconnect(a.identity.idHex, "test");
  c.membership.stop();
  a.membership.stop();
  await waitFor(() => c.transport.linked().every((l) => l.info.peerId !== a.identity.idHex), 3000, "c not linked to a");
  await announce(a, 9, "bad");
  await waitFor(() => b.broadcaster.stats().invalid === 1, 5000, "b declared it invalid");
  // Positive control on the same path: a valid item announced after it does reach c. b forwards in verdict order
  // over one FIFO link, so had b forwarded "bad", c would have it by the time "good" arrives.
  await announce(a, 9, "good");
  await waitFor(() => subC.received.includes("good"), 5000, "the valid item reached c through b");
  await waitFor(() => c.broadcaster.stats().outstanding === 0, 5000, "c decided");
  expect(subB.received).toEqual(["bad", "good"]);
  expect(subC.received).toEqual(["good"]);
  expect(c.broadcaster.stats().received).toBe(1);
});

test("a node that joins late receives the cached items: its module subscribed before the link came up", async () => {
  const a = await node();
  await subscriber(a, 5);
  await announce(a, 5, "early");
  await waitFor(() => a.broadcaster.stats().cached === 1, 3000, "cached");
  // The joiner's module is subscribed before the node has any link, so the replay meets a subscriber at once.
  const late = await node();
  const sub = await subscriber(late, 5);
  await late.transport.dial("127.0.0.1", a.transport.port, a.identity.idHex);
  await waitFor(() => sub.received.length === 1, 5000, "catch-up");
  expect(sub.received).toEqual(["early"]);
  expect(late.broadcaster.stats()).toMatchObject({ replayHeld: 0, valid: 1 });
});

test("a module that subscribes a moment after the link came up still gets the replay (held, then validated)", async () => {
  const a = await node();
  await subscriber(a, 5);
  await announce(a, 5, "early");
  await waitFor(() => a.broadcaster.stats().cached === 1, 3000, "cached");
  // A restarted node: links first, its modules reconnect a moment later. The replay is held for them.
  const late = await node();
  await late.transport.dial("127.0.0.1", a.transport.port, a.identity.idHex);
  await waitFor(() => late.broadcaster.stats().replayHeld === 1, 5000, "replay held");
  const sub = await subscriber(late, 5);
  await waitFor(() => sub.received.length === 1, 5000, "catch-up after subscribing");
  expect(sub.received).toEqual(["early"]);
  await waitFor(() => late.broadcaster.stats().valid === 1, 3000, "validated");
  expect(late.broadcaster.stats().held).toBe(0);
});
