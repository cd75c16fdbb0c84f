/**
 * Hostile peers on established links (issue 8, cases 19–27) against a real node while the canary keeps announcing
 * and receiving through it. The whole file runs with the rekey threshold lowered to 3 frames (case 27), so every
 * case also crosses rekey boundaries. Raw peers (raw-peer.ts) run the real handshake and then misbehave.
 */
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { HandshakeInit, LinkMessage, Payload } from "../../src/p2p/proto/gossip.ts";
import { INVALID_THRESHOLD } from "../../src/defaults.ts";
import type { HandshakeFailure } from "../../src/p2p/reasons.ts";
import { encodeLinkMessage, encodeMessage } from "../../src/p2p/wire.ts";
import { itemId } from "../../src/gossip/item-id.ts";
import { ApiTestClient, waitFor } from "../api/client.ts";
import { createHarness } from "../net-harness.ts";
import { type Canary, type Module, announceBytes, apiModule, handshakeFailures, startCanary } from "./canary.ts";
import { RawPeer, newIdentity, payload } from "./raw-peer.ts";

const h = createHarness();
// Long enough for a failing case to report what it waited for instead of hitting the test timeout.
setDefaultTimeout(20_000);
const REKEY = 3;
const GOOD = 0x200; // validated by a module that says valid
const BAD = 0x201; // ... and by one that says invalid
let canary: Canary;
let good: Module;
let bad: Module;
const peers: RawPeer[] = [];
const cleanups: (() => unknown)[] = [];

beforeAll(async () => {
  const transport = { rekeyInterval: REKEY, sendBufferBytes: 128 << 10 };
  // Every peer here comes from 127.0.0.1: the target applies its per-IP inbound cap (3) to loopback too (case 26).
  const target = { transport: { ...transport, maxInboundPerIp: 3, limitLoopback: true } };
  canary = await startCanary(h, { target, peer: { transport } });
  good = await apiModule(canary.target, GOOD, true);
  bad = await apiModule(canary.target, BAD, false);
  canary.rebaseline();
});
afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  for (const c of cleanups.splice(0)) await c();
  // Each case starts with the canary's link alone, so the target's fan-out reaches every peer a case links.
  await waitFor(() => canary.target.transport.linked().length === 1, 3000, "only the canary's link left");
});
afterAll(async () => {
  good.client.close();
  bad.client.close();
  await canary.stop();
  await h.cleanup();
  await h.close();
});

async function linked(options: Parameters<typeof RawPeer.connect>[1] = {}): Promise<RawPeer> {
  const p = await RawPeer.connect(canary.target.transport.port, { rekeyInterval: REKEY, ...options });
  peers.push(p);
  await p.handshake();
  await waitFor(() => isLinked(p), 3000, "raw peer linked");
  return p;
}

const isLinked = (p: RawPeer) => canary.target.transport.linked().some((l) => l.info.peerId === p.identity.idHex);

/** Why the target dropped this peer's link (waits for it; each call takes the next such event of that peer). */
const reported = new Map<string, number>();
async function downReason(p: RawPeer): Promise<string> {
  const id = p.identity.idHex;
  const downs = () => canary.log.filter((e) => e.event === "link down" && e.fields.peer === id);
  const seen = reported.get(id) ?? 0;
  await waitFor(() => downs().length > seen && p.closed, 3000, "the target to drop the link");
  reported.set(id, seen + 1);
  return String(downs()[seen]!.fields.reason);
}

function frameHeader(length: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, length);
  return b;
}

const goodTexts = () => new Set(good.received);

/** The label test 22 writes after a 4-byte fill at the start of its items' data. */
const label = (p: Payload) => new TextDecoder().decode(p.data.subarray(4, p.data.indexOf(0, 4)));

test("19. frame lengths 0, 15 and 2^32-1 close the link, before and after the handshake", async () => {
  const reasons: string[] = [];
  for (const bytes of [frameHeader(0), Buffer.concat([frameHeader(15), new Uint8Array(15)]), frameHeader(0xffffffff)]) {
    const p = await linked();
    p.write(bytes);
    reasons.push(await downReason(p));
  }
  expect(reasons).toEqual(["empty-frame", "decrypt-failed", "frame-too-large"]);

  const from = handshakeFailures(canary.log).length;
  for (const bytes of [frameHeader(0), Buffer.concat([frameHeader(15), new Uint8Array(15)]), frameHeader(0xffffffff)]) {
    const p = await RawPeer.connect(canary.target.transport.port);
    peers.push(p);
    await p.nextFrame();
    p.write(bytes);
    await p.waitClosed();
  }
  expect(handshakeFailures(canary.log).slice(from).map((f) => f.reason)).toEqual(["empty-frame", "malformed", "frame-too-large"]);
  await canary.check();
});

test("20. a flipped ciphertext bit, a reordered or a duplicated frame closes the link and delivers nothing of it", async () => {
  const reasons: string[] = [];
  const flipped = await linked();
  const f = flipped.seal(payload(GOOD, "flipped"));
  f[f.length - 1]! ^= 0x01;
  flipped.write(Buffer.concat([f, flipped.seal(payload(GOOD, "after flipped"))]));
  reasons.push(await downReason(flipped));

  const reordered = await linked();
  const [r1, r2] = [reordered.seal(payload(GOOD, "r1")), reordered.seal(payload(GOOD, "r2"))];
  reordered.write(Buffer.concat([r2, r1]));
  reasons.push(await downReason(reordered));

  const duplicated = await linked();
  const d1 = duplicated.seal(payload(GOOD, "d1"));
  duplicated.write(Buffer.concat([d1, d1, duplicated.seal(payload(GOOD, "after duplicate"))]));
  reasons.push(await downReason(duplicated));

  expect(reasons).toEqual(Array(3).fill("decrypt-failed"));
  await canary.check(); // later traffic has gone through: anything accepted would have been validated by now
  for (const text of ["flipped", "after flipped", "r1", "r2", "after duplicate"]) expect(goodTexts().has(text)).toBe(false);
  expect(good.received.filter((t) => t === "d1")).toEqual(["d1"]); // the genuine first copy only
});

test("21. protobuf: unknown fields are ignored; wrong wire types, truncated varints, lengths past the end close", async () => {
  const item = (text: string) => Payload.encode(payload(GOOD, text).kind!.value as Payload).finish();
  const wrap = (field: number, body: Uint8Array) => Uint8Array.from([(field << 3) | 2, body.length, ...body]);
  const unknownInside = await linked();
  unknownInside.send(wrap(1, Uint8Array.from([...item("unknown inside"), 0x78, 0x01]))); // field 15 in Payload
  // Field 31 of LinkMessage (no kind yet; a two-byte tag) beside the Payload.
  unknownInside.send(Uint8Array.from([0xfa, 0x01, 0x02, 0x01, 0x02, ...encodeLinkMessage(payload(GOOD, "unknown beside"))]));
  await waitFor(() => goodTexts().has("unknown inside") && goodTexts().has("unknown beside"), 3000, "both delivered");
  expect(isLinked(unknownInside)).toBe(true);

  const malformed: [string, Uint8Array][] = [
    ["kind as a varint", Uint8Array.from([0x08, 0x01])],
    ["data as a varint", wrap(1, Uint8Array.from([...item("x").subarray(0, -3), 0x20, 0x05]))], // was 0x22 0x01 "x"
    ["truncated varint", Uint8Array.from([0x2a, 0x02, 0x08, 0xff])],
    ["length past the end", Uint8Array.from([0x0a, 0x7f, 0x0a, 0x20])],
    ["end-group after a payload", Uint8Array.from([...encodeLinkMessage(payload(GOOD, "trailing group")), 0x0c])],
    ["zero tag after a payload", Uint8Array.from([...encodeLinkMessage(payload(GOOD, "trailing zero")), 0x00, 0x01])],
    ["a handshake message", encodeMessage(HandshakeInit, { ephemeral: new Uint8Array(32), initiatorId: new Uint8Array(32), powNonce: new Uint8Array(8) })],
  ];
  const reasons: Record<string, string> = {};
  for (const [name, bytes] of malformed) {
    const p = await linked();
    p.send(bytes);
    reasons[name] = await downReason(p).catch(() => "still linked");
  }
  expect(reasons).toEqual({
    "kind as a varint": "unknown-message",
    "data as a varint": "item-id-mismatch", // the field is skipped, and the ID no longer matches the (empty) data
    "truncated varint": "undecodable",
    "length past the end": "undecodable",
    "end-group after a payload": "undecodable",
    "zero tag after a payload": "undecodable",
    "a handshake message": "undecodable", // its zero-filled keys read as fields numbered 0
  });
  await canary.check();
  expect(goodTexts().has("trailing group") || goodTexts().has("trailing zero")).toBe(false);
});

test("22. a peer that stops reading fills its own bound only; another peer gets every item", async () => {
  const stalled = await linked();
  stalled.pause();
  const reader = await linked();
  const announcer = await ApiTestClient.connect(canary.target.api.port);
  cleanups.push(() => announcer.close());
  const link = canary.target.transport.linked().find((l) => l.info.peerId === stalled.identity.idHex)!;
  const data = new Uint8Array(60_000);
  let sent = 0;
  for (; link.droppedMessages === 0 && sent < 1000; sent++) {
    data.fill(sent & 0xff, 0, 4).set(new TextEncoder().encode(`big ${sent}`), 4);
    announcer.send(announceBytes(0x202, data, 1));
    await waitFor(() => reader.payloads(0x202).length === sent + 1, 3000, "the reading peer keeps up");
  }
  const dropped = link.droppedMessages;
  expect(dropped).toBeGreaterThan(0);
  expect(link.closed).toBe(false); // items are dropped for it, the link stays
  // Its bound (128 KiB here) took two 60 KB items before anything was dropped: the first drop is the third at the earliest.
  expect(sent).toBeGreaterThanOrEqual(3);
  // The reading peer got each item once and in order, as the items themselves say (big 0, big 1, …).
  const got = reader.payloads(0x202).map(label);
  expect(got).toEqual(Array.from({ length: got.length }, (_, i) => `big ${i}`));
  // Reading again, the stalled peer gets what was queued for it, in order: every item but the dropped ones.
  stalled.resume();
  await waitFor(() => stalled.payloads(0x202).length >= sent - dropped, 5000, "the items queued for the stalled peer");
  const late = stalled.payloads(0x202).map((p) => Number(label(p).slice(4)));
  expect(late.every((n, i) => n < sent && (i === 0 || n > late[i - 1]!))).toBe(true);
  await canary.check();
});

test("23. a disconnect mid-frame discards the partial frame; the peer may reconnect", async () => {
  const identity = newIdentity();
  const first = await linked({ identity });
  const frame = first.seal(payload(GOOD, "half a frame"));
  first.write(frame.subarray(0, frame.length >> 1));
  first.close();
  expect(await downReason(first)).toBe("closed-by-peer");
  const again = await linked({ identity });
  again.send(payload(GOOD, "whole frame"));
  await waitFor(() => goodTexts().has("whole frame"), 3000, "delivery after reconnecting");
  expect(goodTexts().has("half a frame")).toBe(false);
  await canary.check();
});

test("24. a flood of duplicates and of the same item with higher TTLs: dropped cheaply, the peer is not blamed", async () => {
  const p = await linked();
  p.send(payload(GOOD, "once", 2));
  await waitFor(() => goodTexts().has("once"), 3000, "the first copy validated");
  const duplicatesBefore = canary.target.broadcaster.stats().duplicates;
  const copies = Array.from({ length: 2000 }, (_, i) => p.seal(payload(GOOD, "once", i % 2 === 0 ? 2 : 255 - (i % 200))));
  p.write(Buffer.concat(copies));
  await waitFor(() => canary.target.broadcaster.stats().duplicates >= duplicatesBefore + 2000, 5000, "all copies counted");
  expect(good.received.filter((t) => t === "once")).toEqual(["once"]);
  expect(isLinked(p)).toBe(true);
  expect(canary.target.core.isBanned(p.identity.idHex)).toBe(false);
  await canary.check();
});

test("25. invalid items are counted, never a ban; a peer that keeps forging item IDs is dropped each time, then banned and refused", async () => {
  // A module's "invalid" may only mean "not useful to me": the sender stays linked and unbanned.
  const rejected = await linked();
  const invalidBefore = canary.target.broadcaster.stats().invalid;
  rejected.write(Buffer.concat(Array.from({ length: 30 }, (_, i) => rejected.seal(payload(BAD, `invalid ${i}`)))));
  await waitFor(() => canary.target.broadcaster.stats().invalid >= invalidBefore + 30, 5000, "30 invalid verdicts");
  expect(isLinked(rejected)).toBe(true);
  expect(canary.target.core.isBanned(rejected.identity.idHex)).toBe(false);
  rejected.close();
  await waitFor(() => !isLinked(rejected), 3000, "the rejected peer gone");

  // A forged item ID breaks the protocol: the link is dropped at once, and the INVALID_THRESHOLD-th strike bans the ID.
  const identity = newIdentity();
  const reasons: string[] = [];
  for (let i = 0; i < INVALID_THRESHOLD; i++) {
    const forger = await linked({ identity });
    forger.send(payload(GOOD, `forged ${i}`, 0, itemId(GOOD, new TextEncoder().encode("something else"))));
    reasons.push(await downReason(forger));
  }
  expect(reasons).toEqual([...Array(INVALID_THRESHOLD - 1).fill("item-id-mismatch"), "banned: item-id-mismatch"]);
  expect(canary.target.core.isBanned(identity.idHex)).toBe(true);
  const refusedBefore = canary.target.transport.stats().handshakesFailed.get("peer-banned") ?? 0;
  const back = await RawPeer.connect(canary.target.transport.port, { identity, rekeyInterval: REKEY });
  peers.push(back);
  await back.handshake(); // the work and the keys are fine: the node still refuses this ID
  await back.waitClosed();
  expect(canary.target.transport.stats().handshakesFailed.get("peer-banned")).toBe(refusedBefore + 1);
  expect(isLinked(back)).toBe(false);
  await canary.check();
  expect([...goodTexts()].filter((t) => t.startsWith("forged"))).toEqual([]);
});

test("26. many IDs from one IP: per-IP caps on handshakes and on inbound links; a simultaneous open keeps one link", async () => {
  const target = canary.target;
  const failed = (reason: HandshakeFailure) => target.transport.stats().handshakesFailed.get(reason) ?? 0;
  const pendingBefore = failed("too-many-pending");
  const hogs = await Promise.all(Array.from({ length: 10 }, () => RawPeer.connect(target.transport.port)));
  peers.push(...hogs);
  await waitFor(() => hogs.filter((p) => p.closed).length === 6, 3000, "the excess refused");
  expect(failed("too-many-pending") - pendingBefore).toBe(6);
  expect(target.transport.stats().pendingHandshakes).toBe(4);
  hogs.forEach((p) => p.close());
  await waitFor(() => target.transport.stats().pendingHandshakes === 0, 3000, "pending released");

  // Eight IDs, each with its work done, from the IP the canary's peer also uses: the cap of 3 admits two.
  const refusedBefore = failed("too-many-from-ip");
  const sybils: RawPeer[] = [];
  for (let i = 0; i < 8; i++) {
    const p = await RawPeer.connect(target.transport.port, { rekeyInterval: REKEY });
    peers.push(p);
    await p.handshake();
    sybils.push(p);
  }
  await waitFor(() => failed("too-many-from-ip") - refusedBefore === 6, 3000, "six refused");
  expect(sybils.filter(isLinked).length).toBe(2);
  // The canary keeps announcing while they are linked; the check below proves its peer still got every item.
  const mark = canary.sent;
  await waitFor(() => canary.sent >= mark + 10, 3000, "canary items while the sybils are linked");
  sybils.forEach((p) => p.close());
  await waitFor(() => target.transport.linked().length === 1, 3000, "the sybils gone");

  const q = await h.node({ transport: { rekeyInterval: REKEY } });
  q.membership.stop();
  cleanups.push(() => h.stop(q));
  await Promise.all([target.transport.dial("127.0.0.1", q.transport.port), q.transport.dial("127.0.0.1", target.transport.port)]);
  const agreed = () => {
    const a = target.transport.linked().filter((l) => l.info.peerId === q.identity.idHex);
    const b = q.transport.linked();
    return a.length === 1 && b.length === 1 && a[0]!.info.initiatorId === b[0]!.info.initiatorId;
  };
  await waitFor(agreed, 3000, "one agreed link");
  await canary.check(); // includes every canary item announced while the sybils were linked
});

test("27. with the rekey threshold at 3 frames, traffic continues both ways across many rekeys", async () => {
  const p = await linked();
  const start = good.received.length;
  for (let i = 0; i < 30; i++) p.send(payload(GOOD, `rekeyed ${i}`));
  await waitFor(() => good.received.length >= start + 30, 3000, "30 items across 10 rekeys");
  await waitFor(() => p.payloads(0xcafe).length >= 30, 5000, "canary items forwarded to the raw peer");
  expect(p.linkClosedReason).toBeUndefined();
  await waitFor(() => canary.sent > 30 * REKEY, 5000, "the canary's own link to rekey dozens of times");
  // A peer that does not rekey at 3 cannot open the node's fourth frame (cache replay, then canary items): the node does rekey.
  const stubborn = await RawPeer.connect(canary.target.transport.port); // default interval: 2^16
  peers.push(stubborn);
  await stubborn.handshake();
  await waitFor(() => stubborn.linkClosedReason !== undefined, 3000, "the fourth frame to fail");
  expect(stubborn.framesIn).toBe(REKEY);
  expect(stubborn.linkClosedReason).toBe("decrypt-failed");
  await canary.check();
});
