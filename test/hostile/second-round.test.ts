/**
 * The second round of hostile testing (issue 18), against real in-process nodes with the canary running beside:
 * RPS answers that would make the node dial unpinned or dial itself, a peer that claims our own listen address, and
 * a module that rejects every second item (its node must not ban the honest relay for it).
 */
import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import type { TCPSocketListener } from "bun";
import { MSG_RPS_QUERY, encodeRpsPeer } from "../../src/api/codec.ts";
import type { GossipNode } from "../../src/node.ts";
import { ApiTestClient, waitFor } from "../api/client.ts";
import { createHarness } from "../net-harness.ts";
import { type Canary, announceBytes, apiModule, startCanary } from "./canary.ts";
import { RawPeer } from "./raw-peer.ts";

const h = createHarness();
let canary: Canary;
const listeners: TCPSocketListener<undefined>[] = [];
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  canary = await startCanary(h);
});
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
  for (const l of listeners.splice(0)) l.stop(true);
  await h.stopAllBut([canary.target, canary.peer]);
  await canary.check();
});
afterAll(async () => {
  await canary.stop();
  await h.cleanup();
  h.close();
});

/** A TCP listener that only counts the connections it gets (whoever dials it unpinned would reach "somebody"). */
function countingListener(): { port: number; connections: () => number } {
  let connections = 0;
  const l = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        connections++;
        s.end();
      },
      data() {},
    },
  });
  listeners.push(l);
  return { port: l.port, connections: () => connections };
}

/** An RPS module stand-in whose RPS PEER answer the test changes as it goes. */
function rpsStub(answer: () => { host: string; port: number; hostkeyDer: Uint8Array }) {
  const l = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s, chunk) {
        if (chunk.length < 4 || ((chunk[2]! << 8) | chunk[3]!) !== MSG_RPS_QUERY) return void s.end();
        const a = answer();
        s.write(encodeRpsPeer({ port: a.port, portmap: [{ moduleId: 500, port: a.port }], address: a.host, hostkeyDer: a.hostkeyDer }));
      },
    },
  });
  listeners.push(l);
  return l.port;
}

const failed = (n: GossipNode, reason: string) => n.transport.stats().handshakesFailed.get(reason as never) ?? 0;

test("1. an RPS PEER whose hostkey does not parse is an RPS failure, never an unpinned dial; a good answer then links", async () => {
  const somebody = countingListener();
  const honest = await h.node();
  const garbage = [new Uint8Array(0), new Uint8Array(40).fill(0x30), new Uint8Array(600).fill(0xff), honest.identity.publicKeyDer.subarray(0, 20)];
  let served = 0;
  let good = false;
  const port = rpsStub(() => {
    served++;
    if (good) return { host: "127.0.0.1", port: honest.transport.port, hostkeyDer: honest.identity.publicKeyDer };
    return { host: "127.0.0.1", port: somebody.port, hostkeyDer: garbage[served % garbage.length]! };
  });
  const n = await h.node({ rpsPort: port });
  await waitFor(() => n.membership.stats().rpsFailures >= 8, 10_000, "eight unusable RPS answers");
  expect(somebody.connections()).toBe(0);
  // Positive control: the same RPS path with a readable hostkey does link.
  good = true;
  await waitFor(() => n.transport.linked().some((l) => l.info.peerId === honest.identity.idHex), 10_000, "linked via RPS");
  expect(somebody.connections()).toBe(0);
}, 30_000);

test("1b. an RPS PEER naming our own address under another key: the node never dials itself", async () => {
  const other = await h.node();
  let n: GossipNode | undefined;
  let served = 0;
  const port = rpsStub(() => {
    served++;
    return { host: "127.0.0.1", port: n?.transport.port ?? 1, hostkeyDer: other.identity.publicKeyDer };
  });
  n = await h.node({ rpsPort: port });
  const selfDials = () => failed(n!, "self-connection") + failed(n!, "unexpected-peer");
  await waitFor(() => served >= 10 && n!.membership.stats().rpsQueries >= 10, 10_000, "ten RPS answers naming us");
  expect(selfDials()).toBeLessThanOrEqual(1);
}, 30_000);

test("2. a peer claiming our listen port as its own: never dialed (we would dial ourselves), while an honest one is redialed", async () => {
  const target = canary.target;
  const control = countingListener();
  const liar = await RawPeer.connect(target.transport.port, { listenPort: target.transport.port });
  const honest = await RawPeer.connect(target.transport.port, { listenPort: control.port });
  cleanups.push(() => liar.close(), () => honest.close());
  await liar.handshake();
  await honest.handshake();
  const linkedTo = (p: RawPeer) => target.transport.linked().some((l) => l.info.peerId === p.identity.idHex);
  await waitFor(() => linkedTo(liar) && linkedTo(honest), 3000, "both linked");
  liar.close();
  honest.close();
  // The honest peer's advertised address is redialed once its link is lost: by then the liar's would have been too.
  await waitFor(() => control.connections() >= 1, 10_000, "the honest peer's address redialed");
  expect(failed(target, "self-connection") + failed(target, "unexpected-peer")).toBe(0);
  expect(target.core.referrals("someone").some((a) => a.port === target.transport.port)).toBe(false);
}, 30_000);

test("8. a module that rejects every second item never gets its node to ban the honest relay; acceptable items keep coming", async () => {
  const T = 0x801;
  const relay = await h.node({ bootstrapPort: canary.target.transport.port });
  await waitFor(() => relay.transport.linked().some((l) => l.info.peerId === canary.target.identity.idHex), 5000, "relay linked");
  await apiModule(relay, T, true).then((m) => cleanups.push(() => m.client.close()));
  let seen = 0;
  const picky = await apiModule(canary.target, T, () => seen++ % 2 === 0);
  cleanups.push(() => picky.client.close());
  const announcer = await ApiTestClient.connect(relay.api.port);
  cleanups.push(() => announcer.close());
  // 40 items: 20 rejected, twice the old ban threshold (10 in a minute).
  for (let i = 0; i < 40; i++) announcer.send(announceBytes(T, `item ${i}`));
  await waitFor(() => picky.received.length === 40, 10_000, "all 40 notified at the picky node");
  await waitFor(() => canary.target.broadcaster.stats().outstanding === 0, 5000, "verdicts in");
  for (let i = 0; i < 10; i++) announcer.send(announceBytes(T, `later ${i}`));
  await waitFor(() => picky.received.length === 50, 10_000, "ten more arrive after twenty rejections");
  expect(canary.target.core.isBanned(relay.identity.idHex)).toBe(false);
  expect(canary.target.transport.linked().some((l) => l.info.peerId === relay.identity.idHex)).toBe(true);
  expect(canary.target.core.score.rejectionsOf(relay.identity.idHex)).toBeGreaterThanOrEqual(20);
}, 30_000);
