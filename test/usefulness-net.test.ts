/**
 * Link usefulness on real nodes (real sockets on 127.0.0.1, real handshakes; issue 17, src/gossip/link-usefulness.ts):
 * a raw peer that links to a node and never forwards anything is dropped as useless while items flow through the
 * node's honest links, and banned when it is dropped so a second time; the honest relays, one of which only ever
 * repeats or announces what the node already has, stay linked and unpunished.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { ApiClient } from "../src/client/api-client.ts";
import { SCORE_GOSSIP_THRESHOLD } from "../src/defaults.ts";
import type { GossipNode } from "../src/node.ts";
import { createHarness, linked } from "./net-harness.ts";
import { RawPeer } from "./hostile/raw-peer.ts";
import { waitFor } from "./wait-for.ts";

const h = createHarness();
const raws: RawPeer[] = [];
afterEach(async () => {
  for (const r of raws.splice(0)) r.close();
  await h.cleanup();
});
afterAll(() => h.close());

const T = 0x5e1f;

/** Announces items at `origin`, one every 40 ms (further apart than a burst), until `done` or `max` items. */
async function announceUntil(origin: GossipNode, done: () => boolean, max: number): Promise<number> {
  const client = await ApiClient.connect(origin.api.port);
  let k = 0;
  while (!done() && k < max) {
    client.announce(T, new TextEncoder().encode(`item ${k++}`), 0);
    await Bun.sleep(40);
  }
  await client.end();
  return k;
}

test("a peer that links and never forwards is dropped as useless, then banned when it comes back and does it again; honest relays stay", async () => {
  const target = await h.node({ degree: 4 });
  const origin = await h.node({ bootstrapPort: target.transport.port, degree: 4 });
  const relay = await h.node({ bootstrapPort: target.transport.port, degree: 4 });
  await waitFor(() => linked(target, origin.identity.idHex) && linked(target, relay.identity.idHex), 10_000, "relays linked");
  const module = await h.subscriber(target, T, true);
  await h.subscriber(origin, T, true);
  await h.subscriber(relay, T, true);

  const silent = await RawPeer.connect(target.transport.port);
  raws.push(silent);
  await silent.handshake();
  const id = silent.identity.idHex;
  await waitFor(() => linked(target, id), 3000, "silent peer linked");
  // Every item starts at `origin`: the relay never brings the target anything first, it only repeats or announces.
  await announceUntil(origin, () => silent.closed, 400);
  await silent.waitClosed(5000);
  expect(target.core.stats().usefulness?.judgedUseless).toBe(1);
  expect(target.core.isBanned(id)).toBe(false); // one drop: a small penalty, well above the gossip threshold
  expect(target.core.score.scoreParts(id).penalties).toBeLessThan(0);
  expect(target.core.score.scoreOf(id)).toBeGreaterThan(SCORE_GOSSIP_THRESHOLD);

  // The same identity links again and stays silent: the second drop bans it, and it is refused while banned.
  const again = await RawPeer.connect(target.transport.port, { identity: silent.identity });
  raws.push(again);
  await again.handshake();
  await waitFor(() => linked(target, id), 3000, "silent peer linked again");
  await announceUntil(origin, () => again.closed, 400);
  await again.waitClosed(5000);
  await waitFor(() => target.core.isBanned(id), 3000, "silent peer banned");
  expect(target.core.stats().score.scoreBans).toBe(1);
  const refused = await RawPeer.connect(target.transport.port, { identity: silent.identity });
  raws.push(refused);
  await refused.handshake().catch(() => {});
  await refused.waitClosed(5000);

  // The honest relays: linked, never dropped, never penalised; the target got every item.
  await waitFor(() => target.broadcaster.stats().outstanding === 0, 5000, "verdicts in");
  for (const r of [origin, relay]) {
    const rid = r.identity.idHex;
    expect(linked(target, rid)).toBe(true);
    expect(target.core.isBanned(rid)).toBe(false);
    expect(target.core.score.scoreParts(rid).penalties).toBe(0);
  }
  expect(target.core.stats().usefulness?.judgedUseless).toBe(2);
  expect(module.received.length).toBeGreaterThan(24);
}, 60_000);
