/**
 * The peer score as operators see it (issue 17): GET /status gives each link its score and the node its bans,
 * GET /metrics counts score bans, and `gossip status` shows a SCORE column. Real in-process nodes on 127.0.0.1.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import type { NodeStatus } from "../src/control/status.ts";
import { silentLogger } from "../src/log.ts";
import { startNode, type GossipNode } from "../src/node.ts";
import { generateEd25519Pem, loadIdentity } from "../src/p2p/identity.ts";
import { PowPool } from "../src/p2p/pow-pool.ts";
import { renderStatus } from "../src/tools/status.ts";
import { ApiClient } from "../src/client/api-client.ts";
import { bootstrapAt, testConfig } from "./net-harness.ts";
import { waitFor } from "./wait-for.ts";

const pow = new PowPool({ size: 1 });
const nodes: GossipNode[] = [];
const clients: ApiClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});
afterAll(() => pow.close());

const T = 0x5c0f;

async function node(bootstrap?: number): Promise<GossipNode> {
  const config = testConfig({ bootstrappers: bootstrapAt(bootstrap), controlAddress: { host: "127.0.0.1", port: 0 } });
  const n = await startNode(config, loadIdentity(generateEd25519Pem()), silentLogger, { pow, membership: { tickMs: 100, backoffInitialMs: 50 } });
  nodes.push(n);
  return n;
}

async function module(n: GossipNode): Promise<ApiClient> {
  const c = await ApiClient.connect(n.api.port);
  clients.push(c);
  c.onMessage = (m) => {
    if (m.kind === "notification") c.validate(m.messageId, true);
  };
  c.subscribe(T);
  await waitFor(() => n.api.hasSubscribers(T), 3000, "subscribed");
  return c;
}

test("/status: each link's score (first deliveries are credit), the node's bans; /metrics and gossip status show them", async () => {
  const a = await node();
  const b = await node(a.transport.port);
  await waitFor(() => a.transport.linked().length === 1, 5000, "linked");
  await module(a);
  const announcer = await module(b);
  for (let i = 0; i < 5; i++) announcer.announce(T, new TextEncoder().encode(`item ${i}`), 0);
  await waitFor(() => a.broadcaster.stats().valid === 5, 5000, "five items validated at a");
  const status = (await (await fetch(`http://127.0.0.1:${a.control!.port}/status`)).json()) as NodeStatus;
  expect(status.links.length).toBe(1);
  expect(status.links[0]!.peer_id).toBe(b.identity.idHex);
  expect(status.links[0]!.score).toBeGreaterThan(4.9); // five first deliveries, hardly decayed
  expect(status.links[0]!.score).toBeLessThanOrEqual(5);
  expect(status.bans).toEqual({ banned: 0, by_score: 0 });
  const text = renderStatus(status);
  expect(text).toMatch(/^PEER +ADDRESS +DIR +AGE +IN +OUT +DROPPED +ROLE +SCORE$/m);
  expect(text).toMatch(/ (4\.9|5\.0)$/m);
  expect(text).toContain("bans           0 now, 0 by score since the start\n");
  const metrics = await (await fetch(`http://127.0.0.1:${a.control!.port}/metrics`)).text();
  expect(metrics).toMatch(/^gossip_peers_score_banned_total 0$/m);
  expect(metrics).toMatch(/^gossip_peers_banned 0$/m);
  // A ban shows at once.
  a.core.score.ban("someone");
  const after = (await (await fetch(`http://127.0.0.1:${a.control!.port}/status`)).json()) as NodeStatus;
  expect(after.bans).toEqual({ banned: 1, by_score: 0 });
}, 30_000);
