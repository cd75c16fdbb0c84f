// Broadcast trees on real sockets (127.0.0.1): two Transports negotiate them in the handshake and carry every tree
// kind; a Transport with offerTrees: false (what a node that predates trees looks like: features 0) links with one that
// offers them, both ways round, and neither sends the other a single tree message (counted by kind on both links).
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { silentLogger } from "../../src/log.ts";
import { generateEd25519Pem, loadIdentity } from "../../src/p2p/identity.ts";
import type { Link } from "../../src/p2p/link.ts";
import { PowPool } from "../../src/p2p/pow-pool.ts";
import type { LinkMessage } from "../../src/p2p/proto/gossip.ts";
import { Transport, type TransportOptions } from "../../src/p2p/transport.ts";
import { FEATURE_ROOTS, FEATURE_TREES, LINK_KIND_FIELD } from "../../src/p2p/wire.ts";
import { waitFor } from "../wait-for.ts";

const HOST = "127.0.0.1";
const pool = new PowPool({ size: 1 });
const started: Transport[] = [];

afterEach(async () => {
  for (const t of started.splice(0)) await t.stop();
});
afterAll(async () => {
  await pool.close();
});

interface Recorder {
  t: Transport;
  messages: { peerId: string; message: LinkMessage }[];
  downs: string[];
}

async function transport(opts: Partial<TransportOptions> = {}): Promise<Recorder> {
  const t = new Transport({
    identity: loadIdentity(generateEd25519Pem()),
    host: HOST,
    port: 0,
    difficulty: 2,
    maxDifficulty: 8,
    pow: pool,
    log: silentLogger,
    ...opts,
  });
  const r: Recorder = { t, messages: [], downs: [] };
  t.events = {
    linkUp() {},
    linkDown: (_peer, reason) => r.downs.push(reason),
    message: (peerId, message) => r.messages.push({ peerId, message }),
  };
  await t.start();
  started.push(t);
  return r;
}

const treeMessages: LinkMessage[] = [
  { kind: { $case: "ihave", value: { entries: [{ idPrefix: randomBytes(8), dataType: 1337, hops: 4 }] } } },
  { kind: { $case: "graft", value: { idPrefix: [randomBytes(8)] } } },
  { kind: { $case: "prune", value: {} } },
  { kind: { $case: "dontHave", value: { idPrefix: [randomBytes(8)] } } },
  { kind: { $case: "treeRoot", value: { dataType: 1337, root: randomBytes(8), distance: 3, cost: 75, parent: true } } },
];
const TREE_FIELDS = [LINK_KIND_FIELD.ihave, LINK_KIND_FIELD.graft, LINK_KIND_FIELD.prune, LINK_KIND_FIELD.dontHave, LINK_KIND_FIELD.treeRoot];
const payload = (text: string): LinkMessage => ({
  kind: { $case: "payload", value: { messageId: randomBytes(32), ttl: 0, dataType: 540, data: new TextEncoder().encode(text), hops: 7 } },
});
const linkTo = (r: Recorder, peer: Recorder): Link => r.t.linked().find((l) => l.info.peerId === peer.t.localId)!;
const treeCount = (counts: number[]) => TREE_FIELDS.reduce((n, f) => n + counts[f]!, 0);
const kinds = (r: Recorder) => r.messages.map((m) => m.message.kind!.$case);

async function linked(dialer: Recorder, listener: Recorder): Promise<void> {
  expect(await dialer.t.dial(HOST, listener.t.port)).toBe(listener.t.localId);
  await waitFor(() => linkTo(listener, dialer) !== undefined, 3000, "the listener's side of the link");
}

describe("broadcast trees between transports", () => {
  test("two transports negotiate trees; every tree kind and a Payload's hops arrive intact", async () => {
    const a = await transport();
    const b = await transport();
    await linked(a, b);
    expect([linkTo(a, b).info.features, linkTo(b, a).info.features]).toEqual([FEATURE_TREES | FEATURE_ROOTS, FEATURE_TREES | FEATURE_ROOTS]);
    // Both ends measured the handshake's round trip (what rooted trees choose parents by): positive, and within the
    // handshake's own deadline.
    for (const rtt of [linkTo(a, b).info.rttMs, linkTo(b, a).info.rttMs]) expect(rtt! > 0 && rtt! < 10_000).toBe(true);
    for (const m of [...treeMessages, payload("with hops")]) expect(a.t.send(b.t.localId, m)).toBe(true);
    await waitFor(() => b.messages.length === treeMessages.length + 1, 3000, "every message at b");
    expect(b.messages.slice(0, treeMessages.length).map((m) => m.message)).toEqual(treeMessages);
    expect(b.messages[treeMessages.length]!.message.kind).toMatchObject({ $case: "payload", value: { hops: 7 } });
    expect(TREE_FIELDS.map((f) => linkTo(b, a).receivedByKind[f])).toEqual(TREE_FIELDS.map(() => 1));
  });

  for (const olderDials of [true, false]) {
    test(`a transport that does not offer trees links with one that does (${olderDials ? "it dials" : "it is dialed"}); no tree message either way`, async () => {
      const older = await transport({ offerTrees: false });
      const newer = await transport();
      if (olderDials) await linked(older, newer);
      else await linked(newer, older);
      const [toNewer, toOlder] = [linkTo(older, newer), linkTo(newer, older)];
      expect([toNewer.info.features, toOlder.info.features]).toEqual([0, 0]);
      // The newer side's transport refuses tree kinds on this link; items flow both ways.
      for (const m of treeMessages) {
        expect(newer.t.send(older.t.localId, m)).toBe(false);
        expect(older.t.send(newer.t.localId, m)).toBe(false);
      }
      expect(newer.t.send(older.t.localId, payload("to the older"))).toBe(true);
      expect(older.t.send(newer.t.localId, payload("to the newer"))).toBe(true);
      await waitFor(() => older.messages.length === 1 && newer.messages.length === 1, 3000, "one item each way");
      expect([kinds(older), kinds(newer)]).toEqual([["payload"], ["payload"]]);
      for (const l of [toNewer, toOlder]) {
        expect(treeCount(l.sentByKind)).toBe(0);
        expect(treeCount(l.receivedByKind)).toBe(0);
        expect(l.receivedByKind[LINK_KIND_FIELD.payload]).toBe(1);
      }
      expect([older.downs, newer.downs, toNewer.closed, toOlder.closed]).toEqual([[], [], false, false]);
    });
  }
});
