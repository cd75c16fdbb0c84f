/**
 * Dissemination over real nodes on 127.0.0.1: TTL hop limits, relays without subscribers, silent subscribers, churn,
 * and RPS-driven peer selection with real RPS PEER bytes from a small RPS server run by the test.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import type { TCPSocketListener } from "bun";
import { MSG_RPS_QUERY, encodeRpsPeer } from "../src/api/codec.ts";
import type { GossipNode } from "../src/node.ts";
import { generateEd25519Pem, loadIdentity } from "../src/p2p/identity.ts";
import { waitFor } from "./wait-for.ts";
import { connected, createHarness, type NodeSpec } from "./net-harness.ts";

const { node, subscriber, announce, stop, cleanup, close } = createHarness();
const listeners: TCPSocketListener<undefined>[] = [];

afterEach(async () => {
  for (const l of listeners.splice(0)) l.stop(true);
  await cleanup();
});
afterAll(() => close());

const linkedTo = (n: GossipNode, peer: GossipNode) => n.transport.linked().some((l) => l.info.peerId === peer.identity.idHex);

/**
 * A line of `count` nodes, each linked to its neighbours only. Membership is stopped so that peer exchange cannot add
 * shortcuts; the links are dialed by hand and checked before anyone relies on the shape.
 */
async function line(count: number, spec: (i: number) => NodeSpec = () => ({})): Promise<GossipNode[]> {
  const ns: GossipNode[] = [];
  for (let i = 0; i < count; i++) {
    const n = await node(spec(i));
    n.membership.stop();
    ns.push(n);
  }
  for (let i = 1; i < count; i++) await ns[i]!.transport.dial("127.0.0.1", ns[i - 1]!.transport.port, ns[i - 1]!.identity.idHex);
  await waitFor(
    () => ns.every((n, i) => n.transport.linked().length === (i === 0 || i === count - 1 ? 1 : 2)),
    5000,
    "line links",
  );
  for (let i = 1; i < count; i++) expect(linkedTo(ns[i]!, ns[i - 1]!)).toBe(true);
  return ns;
}


test("TTL 2 on a line of four: the next two hops get the item, the third does not", async () => {
  const ns = await line(4);
  const subs = await Promise.all(ns.slice(1).map((n) => subscriber(n, 11)));
  await announce(ns[0]!, 11, "ttl two", 2);
  await waitFor(() => subs[0]!.received.length === 1 && subs[1]!.received.length === 1, 5000, "hops 1 and 2");
  // The same path with no hop limit: once node 3 has this one, the first item would have been ahead of it.
  await announce(ns[0]!, 11, "unlimited", 0);
  await waitFor(() => subs[2]!.received.length >= 1, 5000, "hop 3 gets the unlimited item");
  expect(subs[0]!.received).toEqual(["ttl two", "unlimited"]);
  expect(subs[1]!.received).toEqual(["ttl two", "unlimited"]);
  expect(subs[2]!.received).toEqual(["unlimited"]);
});

test("a relay with no subscriber for the type does not forward it", async () => {
  const [a, b, c] = await line(3);
  await subscriber(a!, 21);
  const subC = await subscriber(c!, 21);
  await announce(a!, 21, "first");
  await waitFor(() => b!.broadcaster.stats().received === 1, 5000, "b received the item");
  expect(b!.broadcaster.stats().notSubscribed).toBe(1);
  // Once b has a subscriber it relays, and c must then see the second item only.
  await subscriber(b!, 21);
  await announce(a!, 21, "second");
  await waitFor(() => subC.received.length >= 1, 5000, "c gets the second item");
  expect(subC.received).toEqual(["second"]);
});

test("a subscriber that never answers: the item is not forwarded and nothing stays outstanding", async () => {
  const [a, b, c] = await line(3, () => ({ validationTimeoutMs: 300 }));
  const silent = await subscriber(b!, 31, "silent");
  const subC = await subscriber(c!, 31);
  await announce(a!, 31, "unanswered");
  await waitFor(() => silent.received.length === 1, 5000, "b's subscriber notified");
  await waitFor(() => b!.broadcaster.stats().outstanding === 0 && b!.api.stats().outstanding === 0, 3000, "nothing outstanding");
  expect(b!.broadcaster.stats().unanswered).toBe(1);
  expect(b!.broadcaster.stats().valid).toBe(0);

  // Replace the silent module with one that answers: the next item passes b, and c sees that one only.
  silent.client.close();
  await waitFor(() => !b!.api.hasSubscribers(31), 3000, "silent subscriber gone");
  await subscriber(b!, 31);
  await announce(a!, 31, "answered");
  await waitFor(() => subC.received.length >= 1, 5000, "c gets the answered item");
  expect(subC.received).toEqual(["answered"]);
  expect(b!.api.stats().outstanding).toBe(0);
});

test("churn: after 30% of a 12-node network stops, the survivors relink and a new item reaches all of them", async () => {
  const all: GossipNode[] = [await node()];
  for (let i = 1; i < 12; i++) all.push(await node({ bootstrapPort: all[i - 1]!.transport.port }));
  await waitFor(() => all.every((n) => n.transport.linked().length >= 2), 8000, "all linked");

  // Kill every third node from 1: each of 2, 5, 8 and 11 loses its bootstrapper.
  const dead = new Set([1, 4, 7, 10]);
  const survivors = all.filter((_, i) => !dead.has(i));
  const deadIds = new Set(all.filter((_, i) => dead.has(i)).map((n) => n.identity.idHex));
  await Promise.all(all.filter((_, i) => dead.has(i)).map((n) => stop(n)));

  await waitFor(
    () =>
      survivors.every((n) => n.transport.linked().length >= 1 && n.transport.linked().every((l) => !deadIds.has(l.info.peerId))) &&
      connected(survivors),
    8000,
    "survivors relinked into one component",
  );
  const subs = await Promise.all(survivors.map((n) => subscriber(n, 41)));
  await announce(survivors[3]!, 41, "after churn");
  await waitFor(() => subs.every((s) => s.received.length >= 1), 5000, "delivery to every survivor");
  for (const s of subs) expect(s.received).toEqual(["after churn"]);
}, 15_000);

test("a full bootstrapper refuses a joiner's link but hands it referrals, so the joiner links elsewhere", async () => {
  // Degree 1: the bootstrapper admits 2×1 = 2 inbound links. Two nodes fill it; the third is refused.
  const boot = await node({ degree: 1 });
  const first = [await node({ degree: 1, bootstrapPort: boot.transport.port }), await node({ degree: 1, bootstrapPort: boot.transport.port })];
  await waitFor(() => first.every((n) => linkedTo(n, boot)), 5000, "bootstrapper full");
  const joiner = await node({ degree: 1, bootstrapPort: boot.transport.port });
  await waitFor(() => joiner.transport.linked().some((l) => first.some((f) => f.identity.idHex === l.info.peerId)), 5000, "joiner linked via a referral");
  expect(boot.transport.stats().handshakesFailed.get("too-many-links") ?? 0).toBeGreaterThanOrEqual(1);
  expect(linkedTo(joiner, boot)).toBe(false);
});

/** An RPS module stand-in: answers every RPS QUERY with the given RPS PEER bytes. */
function rpsServer(reply: () => Uint8Array): { port: number; queries: () => number } {
  let queries = 0;
  const listener = Bun.listen<undefined>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s, chunk) {
        // A query is exactly one 4-byte header; the client sends nothing else.
        if (chunk.length >= 4 && ((chunk[2]! << 8) | chunk[3]!) === MSG_RPS_QUERY) {
          queries++;
          s.write(reply());
        }
      },
    },
  });
  listeners.push(listener);
  return { port: listener.port, queries: () => queries };
}

function rpsPeerFor(target: GossipNode, host: string, hostkeyDer: Uint8Array): Uint8Array {
  return encodeRpsPeer({ port: target.transport.port, portmap: [{ moduleId: 500, port: target.transport.port }], address: host, hostkeyDer });
}

test("link rotation: two groups whose nodes are all at degree merge once one node learns an address across", async () => {
  // Degree 3 in groups of 4: each group becomes a K4 in which no node wants another link, the state two halves of a
  // healed partition can be left in. Rotation (every 300 ms here, 60 s by default) must link them anyway.
  const spec: NodeSpec = { degree: 3, membership: { rotationIntervalMs: 300 } };
  const group = async () => {
    const first = await node(spec);
    const rest = await Promise.all([1, 2, 3].map(() => node({ ...spec, bootstrapPort: first.transport.port })));
    return [first, ...rest];
  };
  const a = await group();
  const b = await group();
  await waitFor(() => [...a, ...b].every((n) => n.transport.linked().length === 3), 8000, "two saturated groups");
  expect(connected([...a, ...b])).toBe(false);
  a[1]!.membership.addKnownAddresses([{ host: "127.0.0.1", port: b[2]!.transport.port, id: b[2]!.identity.idHex }]);
  await waitFor(() => connected([...a, ...b]), 8000, "one component");
  expect(a[1]!.membership.stats().rotations).toBeGreaterThan(0);
  const subs = await Promise.all([...a, ...b].map((n) => subscriber(n, 43)));
  await announce(b[0]!, 43, "across");
  await waitFor(() => subs.every((s) => s.received.length >= 1), 5000, "delivery across");
  for (const s of subs) expect(s.received).toEqual(["across"]);
}, 20_000);

test("RPS-driven peer selection: a node with only an RPS module links to the peer RPS names", async () => {
  const target = await node();
  const rps = rpsServer(() => rpsPeerFor(target, "127.0.0.1", target.identity.publicKeyDer));
  const seeker = await node({ rpsPort: rps.port });
  await waitFor(() => linkedTo(seeker, target) && linkedTo(target, seeker), 5000, "link via RPS");
  expect(rps.queries()).toBeGreaterThanOrEqual(1);
  expect(seeker.membership.stats().rpsFailures).toBe(0);
});

test("RPS-driven peer selection: a hostkey that does not match the peer is refused (ID mismatch)", async () => {
  const target = await node();
  const impostor = loadIdentity(generateEd25519Pem());
  const rps = rpsServer(() => rpsPeerFor(target, "127.0.0.1", impostor.publicKeyDer));
  const seeker = await node({ rpsPort: rps.port });
  await waitFor(() => seeker.membership.stats().dialFailures >= 2, 5000, "dials refused");
  expect(seeker.transport.linked()).toEqual([]);
  expect(target.transport.linked()).toEqual([]);
});

/** Whether this machine can listen on ::1 (some CI containers have no IPv6 loopback). */
const HAVE_IPV6 = (() => {
  try {
    Bun.listen({ hostname: "::1", port: 0, socket: { data() {} } }).stop(true);
    return true;
  } catch {
    return false;
  }
})();

test.skipIf(!HAVE_IPV6)("RPS-driven peer selection: an IPv6 entry (::1) is dialed over IPv6", async () => {
  const target = await node({ p2pHost: "::1" });
  const rps = rpsServer(() => rpsPeerFor(target, "::1", target.identity.publicKeyDer));
  const seeker = await node({ rpsPort: rps.port });
  await waitFor(() => linkedTo(seeker, target), 5000, "link via RPS over IPv6");
  const link = seeker.transport.linked().find((l) => l.info.peerId === target.identity.idHex)!;
  expect(link.info.remoteHost).toBe("::1");
});
