// Membership views on real sockets (127.0.0.1): two Transports with offerViews negotiate them in the handshake and
// carry every view kind; a Transport without it (what a classic node, or one that predates views, looks like) links
// with one that offers them, both ways round, and no view message crosses (counted by kind on both links). A
// DISCONNECT sent just before disconnect() reaches the peer before its link goes down, also behind a backlog that
// waits in the link's queue while the peer does not read.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { silentLogger } from "../../src/log.ts";
import { generateEd25519Pem, loadIdentity } from "../../src/p2p/identity.ts";
import type { Link } from "../../src/p2p/link.ts";
import { PowPool } from "../../src/p2p/pow-pool.ts";
import type { LinkMessage } from "../../src/p2p/proto/gossip.ts";
import { Transport, type TransportOptions } from "../../src/p2p/transport.ts";
import { FEATURE_ROOTS, FEATURE_TREES, FEATURE_VIEWS, LINK_KIND_FIELD } from "../../src/p2p/wire.ts";
import { RawPeer } from "../hostile/raw-peer.ts";
import { waitFor } from "../wait-for.ts";
import { viewCount, viewMessages } from "./view-messages.ts";

const HOST = "127.0.0.1";
const pool = new PowPool({ size: 1 });
const started: Transport[] = [];

afterEach(async () => {
  for (const t of started.splice(0)) await t.stop();
});
afterAll(async () => {
  await pool.close();
});

/** A transport and, in order, what it reported: messages by kind, and links going down. */
interface Recorder {
  t: Transport;
  events: string[];
  messages: LinkMessage[];
}

async function transport(opts: Partial<TransportOptions> = {}): Promise<Recorder> {
  const t = new Transport({ identity: loadIdentity(generateEd25519Pem()), host: HOST, port: 0, difficulty: 2, maxDifficulty: 8, pow: pool, log: silentLogger, ...opts });
  const r: Recorder = { t, events: [], messages: [] };
  t.events = {
    linkUp() {},
    linkDown: (_peer, reason) => r.events.push(`down ${reason}`),
    message: (_peer, message) => {
      r.messages.push(message);
      r.events.push(message.kind!.$case);
    },
  };
  await t.start();
  started.push(t);
  return r;
}

const linkTo = (r: Recorder, peer: Recorder): Link => r.t.linked().find((l) => l.info.peerId === peer.t.localId)!;
const payload = (text: string): LinkMessage => ({
  kind: { $case: "payload", value: { messageId: randomBytes(32), ttl: 0, dataType: 540, data: new TextEncoder().encode(text) } },
});

async function linked(dialer: Recorder, listener: Recorder): Promise<void> {
  expect(await dialer.t.dial(HOST, listener.t.port)).toBe(listener.t.localId);
  await waitFor(() => linkTo(listener, dialer) !== undefined, 3000, "the listener's side of the link");
}

describe("membership views between transports", () => {
  test("two transports that offer views negotiate them; every view kind arrives intact", async () => {
    const a = await transport({ offerViews: true });
    const b = await transport({ offerViews: true });
    await linked(a, b);
    expect([linkTo(a, b).info.features, linkTo(b, a).info.features]).toEqual([FEATURE_TREES | FEATURE_ROOTS | FEATURE_VIEWS, FEATURE_TREES | FEATURE_ROOTS | FEATURE_VIEWS]);
    for (const m of viewMessages) expect(a.t.send(b.t.localId, m)).toBe(true);
    await waitFor(() => b.messages.length === viewMessages.length, 3000, "every view message at b");
    expect(b.messages).toEqual(viewMessages);
  });

  test("views are off unless offered: two default transports link without them", async () => {
    const a = await transport();
    const b = await transport();
    await linked(a, b);
    expect([linkTo(a, b).info.features, linkTo(b, a).info.features]).toEqual([FEATURE_TREES | FEATURE_ROOTS, FEATURE_TREES | FEATURE_ROOTS]);
  });

  for (const classicDials of [true, false]) {
    test(`a transport that does not offer views links with one that does (${classicDials ? "it dials" : "it is dialed"}); no view message either way`, async () => {
      const classic = await transport();
      const views = await transport({ offerViews: true });
      if (classicDials) await linked(classic, views);
      else await linked(views, classic);
      const [toViews, toClassic] = [linkTo(classic, views), linkTo(views, classic)];
      expect([toViews.info.features, toClassic.info.features]).toEqual([FEATURE_TREES | FEATURE_ROOTS, FEATURE_TREES | FEATURE_ROOTS]);
      for (const m of viewMessages) {
        expect(views.t.send(classic.t.localId, m)).toBe(false);
        expect(classic.t.send(views.t.localId, m)).toBe(false);
      }
      expect(views.t.send(classic.t.localId, payload("to the classic"))).toBe(true);
      expect(classic.t.send(views.t.localId, payload("to the views"))).toBe(true);
      await waitFor(() => classic.messages.length === 1 && views.messages.length === 1, 3000, "one item each way");
      for (const l of [toViews, toClassic]) {
        expect([viewCount(l.sentByKind), viewCount(l.receivedByKind)]).toEqual([0, 0]);
        expect(l.receivedByKind[LINK_KIND_FIELD.payload]).toBe(1);
      }
      expect([classic.events, views.events, toViews.closed, toClassic.closed]).toEqual([["payload"], ["payload"], false, false]);
    });
  }

  test("a DISCONNECT sent just before disconnect() reaches the peer before its link goes down", async () => {
    const a = await transport({ offerViews: true });
    const b = await transport({ offerViews: true });
    await linked(a, b);
    // What HyParView's drop does: DISCONNECT, then disconnect (a LinkError, then the close).
    expect(a.t.send(b.t.localId, { kind: { $case: "disconnect", value: {} } })).toBe(true);
    a.t.disconnect(b.t.localId, "view-full");
    await waitFor(() => b.events.length === 2, 3000, "b's link to go down");
    expect(b.events).toEqual(["disconnect", "down remote-error:MISBEHAVIOUR"]);
  });

  test("… also when the kernel buffers are full and items wait in the link's queue: the stream ends once they are out", async () => {
    const a = await transport({ offerViews: true });
    const peer = await RawPeer.connect(a.t.port, { features: FEATURE_VIEWS });
    try {
      await peer.handshake();
      await waitFor(() => a.t.linked().length === 1, 3000, "the raw peer linked");
      const link = a.t.linked()[0]!;
      peer.pause();
      // Items until the socket takes no more and some wait in the link's own queue (bounded: 1 MiB at most).
      let sent = 0;
      for (let turn = 0; turn < 400 && link.queuedBytes < 128 * 1024; turn++) {
        for (let i = 0; i < 16; i++, sent++) expect(a.t.send(peer.identity.idHex, payload(`item ${sent}`.padEnd(4000, ".")), true)).toBe(true);
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(link.queuedBytes).toBeGreaterThan(0);
      expect(a.t.send(peer.identity.idHex, { kind: { $case: "disconnect", value: {} } })).toBe(true);
      a.t.disconnect(peer.identity.idHex, "view-full");
      peer.resume();
      await waitFor(() => peer.linkClosedReason !== undefined, 10_000, "the raw peer's link to close");
      expect(peer.linkClosedReason).toBe("remote-error:MISBEHAVIOUR");
      expect(peer.payloads().length).toBe(sent);
      expect(peer.messages.at(-1)).toEqual({ kind: { $case: "disconnect", value: {} } });
    } finally {
      peer.close();
    }
  });
});
