/**
 * Flow control on real nodes (issue 20): when busy local subscribers fill the validation table, the node stops
 * reading the sending peer instead of dropping its items, and reads it again as answers come in; a subscriber that
 * stopped answering never pauses anyone (its items are dropped, other types keep flowing).
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { decodeMessage, encodeAnnounce, encodeNotify, encodeValidation } from "../src/api/codec.ts";
import type { GossipNode } from "../src/node.ts";
import { ApiTestClient } from "./api/client.ts";
import { createHarness } from "./net-harness.ts";
import { waitFor } from "./wait-for.ts";

const h = createHarness();
afterEach(() => h.cleanup());
afterAll(() => h.close());

/** A module that subscribes and answers valid, but only `delayMs` after each NOTIFICATION (it is busy, not stalled). */
async function slowSubscriber(n: GossipNode, dataType: number, delayMs: number) {
  const client = await ApiTestClient.connect(n.api.port);
  const received: string[] = [];
  client.send(encodeNotify({ dataType }));
  void (async () => {
    for (;;) {
      let m;
      try {
        m = decodeMessage(await client.next(60_000));
      } catch {
        return;
      }
      if (m.kind !== "notification") continue;
      received.push(new TextDecoder().decode(m.data));
      const id = m.messageId;
      setTimeout(() => client.send(encodeValidation({ messageId: id, valid: true })), delayMs);
    }
  })();
  await waitFor(() => n.api.hasSubscribers(dataType), 3000, "subscription");
  return { client, received };
}

test("a burst into a full validation table is slowed down, not dropped: every item is validated and forwarded", async () => {
  const a = await h.node({ dissemination: "flood" });
  const b = await h.node({ bootstrapPort: a.transport.port, api: { maxOutstanding: 4 }, dissemination: "flood" });
  const c = await h.node({ bootstrapPort: b.transport.port, dissemination: "flood" });
  await waitFor(() => b.transport.linked().length === 2, 5000, "a — b — c");
  // A line: nobody dials any more (dials in flight are let finish), then any shortcut a — c is closed.
  for (const n of [a, b, c]) n.membership.stop();
  await waitFor(() => [a, b, c].every((n) => n.membership.stats().dialing === 0 && n.transport.stats().pendingHandshakes === 0), 5000, "dials settled");
  for (const n of [a, c]) for (const l of n.transport.linked()) if (l.info.peerId !== b.identity.idHex) n.transport.disconnect(l.info.peerId, "test");
  await waitFor(() => a.transport.linked().length === 1 && c.transport.linked().length === 1, 3000, "a and c linked to b only");
  const atB = await slowSubscriber(b, 77, 20);
  const atC = await h.subscriber(c, 77);
  const announcer = await ApiTestClient.connect(a.api.port);
  const items = 60;
  for (let i = 0; i < items; i++) announcer.send(encodeAnnounce({ ttl: 0, dataType: 77, data: new TextEncoder().encode(`burst ${i}`) }));
  await waitFor(() => atC.received.length === items, 20_000, "every item through b to c");
  expect(new Set(atB.received).size).toBe(items);
  expect(b.broadcaster.stats().droppedBusy).toBe(0);
  expect(b.broadcaster.stats().readPauses).toBeGreaterThan(0);
  announcer.close();
}, 30_000);
