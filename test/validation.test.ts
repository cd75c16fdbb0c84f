/**
 * Validation of items from peers, on whole nodes (real API servers, transports, handshakes on 127.0.0.1) with real API
 * clients as subscribers that answer when the test says so:
 * - the outstanding-validation bound, which lives in the API server alone and counts NOTIFICATIONs (items ×
 *   subscribers): an item without room is dropped busy, not marked seen, and a later copy is validated; the bound at
 *   its default (1024);
 * - the validation timeout at its default (5 s);
 * - copies that arrive while an item is being validated: their senders get no copy from us.
 * Topology: a target T with degree 3; around it nodes with degree 1 (their one link is to T), so each item's path is known.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { type Notification, encodeAnnounce, encodeNotify, encodeValidation } from "../src/api/codec.ts";
import { DEFAULTS } from "../src/config.ts";
import type { GossipNode } from "../src/node.ts";
import { ApiTestClient, waitFor } from "./api/client.ts";
import { createHarness } from "./net-harness.ts";

const h = createHarness();
const clients: ApiTestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) if (!c.isClosed) c.close();
  await h.cleanup();
}, 20_000);
afterAll(async () => {
  await h.close();
});

const TYPE = 0x7a1;
const text = (n: Notification) => new TextDecoder().decode(n.data);

/** A local module that subscribes to TYPE and answers only when told: `answerAll` answers what it has so far. */
async function heldSubscriber(n: GossipNode) {
  const client = await ApiTestClient.connect(n.api.port);
  clients.push(client);
  const notifications: Notification[] = [];
  let answered = 0;
  const before = n.api.subscriptionsByType().get(TYPE) ?? 0;
  client.send(encodeNotify({ dataType: TYPE }));
  void (async () => {
    for (;;) {
      let message;
      try {
        message = await client.nextMessage(600_000);
      } catch {
        return; // closed
      }
      if (message.kind === "notification") notifications.push(message);
    }
  })();
  await waitFor(() => (n.api.subscriptionsByType().get(TYPE) ?? 0) === before + 1, 3000, "subscription");
  return {
    notifications,
    texts: () => notifications.map(text),
    answerAll(valid = true) {
      for (const m of notifications.slice(answered)) client.send(encodeValidation({ messageId: m.messageId, valid }));
      answered = notifications.length;
    },
  };
}

/** A module that announces on `n` (it does not subscribe, so it is never notified itself). */
async function announcer(n: GossipNode) {
  const client = await ApiTestClient.connect(n.api.port);
  clients.push(client);
  return (data: string) => client.send(encodeAnnounce({ ttl: 0, dataType: TYPE, data: new TextEncoder().encode(data) }));
}

/** T (degree 3) and `around` nodes of degree 1 linked to it alone. */
async function star(around: number, target: Parameters<typeof h.node>[0] = {}) {
  const t = await h.node({ degree: 3, validationTimeoutMs: 60_000, ...target });
  const leaves: GossipNode[] = [];
  for (let i = 0; i < around; i++) leaves.push(await h.node({ degree: 1, bootstrapPort: t.transport.port }));
  await waitFor(
    () => t.transport.linked().length === around && leaves.every((l) => l.transport.linked().length === 1),
    5000,
    "the star's links",
  );
  return { t, leaves };
}

test("bound with several subscribers: the item without room for all of them waits (its sender is not read), is notified to nobody, and is validated once there is room", async () => {
  // Room for 7 NOTIFICATIONs and 3 subscribers: two items fit; the third does not, though one slot is still free.
  const { t, leaves } = await star(2, { api: { maxOutstanding: 7 } });
  const [s1, s2] = leaves as [GossipNode, GossipNode];
  const subs = [await heldSubscriber(t), await heldSubscriber(t), await heldSubscriber(t)];
  const fromS1 = await announcer(s1);
  const fromS2 = await announcer(s2);

  fromS1("a");
  fromS1("b");
  await waitFor(() => subs.every((s) => s.notifications.length === 2), 3000, "a and b notified to all three");
  expect(t.api.stats().outstanding).toBe(6);
  fromS1("c");
  // The subscribers answer (they are busy, not stalled): T keeps c and stops reading S1 until there is room.
  await waitFor(() => t.broadcaster.stats().readPauses === 1, 3000, "S1 paused with c waiting");
  expect(t.transport.isReadingPaused(s1.identity.idHex)).toBe(true);
  expect(t.broadcaster.stats()).toMatchObject({ unanswered: 0, invalid: 0, valid: 0, outstanding: 2, droppedBusy: 0 });
  expect(t.api.stats().outstanding).toBe(6); // c notified to nobody yet

  for (const s of subs) s.answerAll();
  await waitFor(() => subs.every((s) => s.notifications.length === 3), 3000, "c notified once a and b were answered");
  expect(t.transport.isReadingPaused(s1.identity.idHex)).toBe(false);
  for (const s of subs) s.answerAll();
  await waitFor(() => t.broadcaster.stats().valid === 3, 3000, "c validated");
  // S2's copy of c is now a duplicate: c was marked seen only when it was validated.
  fromS2("c");
  await waitFor(() => t.broadcaster.stats().duplicates >= 1, 3000, "S2's copy of c a duplicate");
  for (const s of subs) expect(s.texts()).toEqual(["a", "b", "c"]);
  expect(t.broadcaster.stats()).toMatchObject({ droppedBusy: 0, unanswered: 0, invalid: 0 });
}, 20_000);

test("the bound at its default: 1024 NOTIFICATIONs outstanding (512 items × 2 subscribers); the 513th item waits for room, then is delivered", async () => {
  const { t, leaves } = await star(2); // no `api` option: maxOutstanding at its default
  const [s1] = leaves as [GossipNode, GossipNode];
  const subs = [await heldSubscriber(t), await heldSubscriber(t)];
  const fromS1 = await announcer(s1);
  for (let i = 0; i < 513; i++) fromS1(`item ${i}`);
  await waitFor(() => t.broadcaster.stats().readPauses === 1, 5000, "the 513th item waiting, S1 not read");
  expect(t.api.stats().outstanding).toBe(1024);
  expect(t.api.canValidate(TYPE)).toBe(false);
  await waitFor(() => subs.every((s) => s.notifications.length === 512), 3000, "512 items notified to both");
  expect(subs[0]!.texts().at(-1)).toBe("item 511");

  for (const s of subs) s.answerAll();
  await waitFor(() => subs.every((s) => s.notifications.length === 513), 5000, "item 512 notified once there was room");
  expect(subs.map((s) => s.texts().at(-1))).toEqual(["item 512", "item 512"]);
  for (const s of subs) s.answerAll();
  await waitFor(() => t.broadcaster.stats().valid === 513, 3000, "item 512 validated");
  expect(t.broadcaster.stats()).toMatchObject({ droppedBusy: 0, unanswered: 0 });
}, 30_000);

test("the validation timeout at its default: a silent subscriber's item is unanswered after 5 s, not before; its late answer is ignored", async () => {
  const { t, leaves } = await star(1, { validationTimeoutMs: DEFAULTS.validationTimeoutMs }); // the config's default
  const sub = await heldSubscriber(t);
  const fromLeaf = await announcer(leaves[0]!);
  fromLeaf("never answered in time");
  await waitFor(() => sub.notifications.length === 1, 3000, "notified");
  const notifiedAt = performance.now();
  await waitFor(() => t.broadcaster.stats().unanswered === 1, 10_000, "the timeout verdict");
  // A lower bound only (a timer never fires early; the notification's transit is well under the margin).
  expect(performance.now() - notifiedAt).toBeGreaterThanOrEqual(4_500);
  expect(t.api.stats().outstanding).toBe(0);
  sub.answerAll(); // late: ignored, not a violation, so the subscriber keeps its subscription
  fromLeaf("after the timeout");
  await waitFor(() => sub.notifications.length === 2, 3000, "the next item reaches the same subscriber");
  sub.answerAll();
  await waitFor(() => t.broadcaster.stats().valid === 1, 3000, "the next item validated");
}, 20_000);

test("flooding: copies that arrive during validation: their senders get no copy; every other link does", async () => {
  // With broadcast trees such a copy prunes its link instead (test/gossip/plumtree.test.ts); this is the flood rule.
  const { t, leaves } = await star(3, { dissemination: "flood" });
  const [s1, s2, other] = leaves as [GossipNode, GossipNode, GossipNode];
  const sub = await heldSubscriber(t);
  const received = () => leaves.map((l) => l.broadcaster.stats().received);

  (await announcer(s1))("x");
  await waitFor(() => sub.notifications.length === 1, 3000, "x being validated");
  const duplicates = t.broadcaster.stats().duplicates;
  (await announcer(s2))("x"); // the same item, so the same ID
  await waitFor(() => t.broadcaster.stats().duplicates === duplicates + 1, 3000, "S2's copy arrived during validation");
  const before = received();

  sub.answerAll();
  await waitFor(() => t.broadcaster.stats().valid === 1, 3000, "x validated");
  // Positive control: x went on to the one link that had not sent it.
  await waitFor(() => other.broadcaster.stats().received === before[2]! + 1, 3000, "x forwarded to the third node");
  // Barrier: an announcement on T goes to all three links, after anything T sent them before.
  (await announcer(t))("barrier");
  await waitFor(() => received().every((n, i) => n >= before[i]! + (i === 2 ? 2 : 1)), 3000, "the barrier on every link");
  expect(received()).toEqual([before[0]! + 1, before[1]! + 1, before[2]! + 2]); // S1 and S2 got only the barrier
  expect(sub.texts()).toEqual(["x", "barrier"]); // x notified once (the barrier is a local announcement)
}, 20_000);
