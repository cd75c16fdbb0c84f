/**
 * Hostile local modules (issue 8, cases 1–11) against a real node while the canary (canary.ts) keeps announcing and
 * receiving through it. Each case ends with canary.check(): no canary item lost, the node serves, descriptors and
 * heap back near baseline. An observer peer (a raw P2P peer linked to the target) sees what the target forwards.
 */
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import fc from "fast-check";
import { MAX_DATA_SIZE, encodeNotify, encodeValidation } from "../../src/api/codec.ts";
import { ApiTestClient, waitFor } from "../api/client.ts";
import { createHarness } from "../net-harness.ts";
import { type Canary, announceBytes, apiCloseReasons, apiModule, heapUsed, startCanary, tuneApi } from "./canary.ts";
import { RawPeer, payload } from "./raw-peer.ts";

const h = createHarness();
// Long enough for a failing case to report what it waited for instead of hitting the test timeout.
setDefaultTimeout(20_000);
let canary: Canary;
let observer: RawPeer;
const clients: ApiTestClient[] = [];
const peers: RawPeer[] = [];
const PARTIAL_DEADLINE_MS = 400;

beforeAll(async () => {
  canary = await startCanary(h);
  tuneApi(canary.target, { partialMessageTimeoutMs: PARTIAL_DEADLINE_MS, maxConnections: 40, maxPendingOutputBytes: 128 << 10 });
  observer = await RawPeer.connect(canary.target.transport.port);
  await observer.handshake();
  await waitFor(() => canary.target.transport.linked().length === 2, 3000, "observer linked");
  canary.rebaseline();
});
afterEach(() => {
  for (const c of clients.splice(0)) if (!c.isClosed) c.close();
  for (const p of peers.splice(0)) p.close();
});
afterAll(async () => {
  observer.close();
  await canary.stop();
  await h.cleanup();
  await h.close();
});

async function connect(): Promise<ApiTestClient> {
  const c = await ApiTestClient.connect(canary.target.api.port);
  clients.push(c);
  return c;
}

async function module(dataType: number | undefined, verdict: Parameters<typeof apiModule>[2] = true, on = canary.target) {
  const m = await apiModule(on, dataType, verdict);
  clients.push(m.client);
  return m;
}

/** An API client on the canary's peer: what it announces reaches the target as an item from a peer. */
async function peerAnnouncer(): Promise<ApiTestClient> {
  const c = await ApiTestClient.connect(canary.peer.api.port);
  clients.push(c);
  return c;
}

function header(size: number, type: number, length = size): Uint8Array {
  const b = new Uint8Array(length);
  new DataView(b.buffer).setUint16(0, size);
  new DataView(b.buffer).setUint16(2, type);
  return b;
}

const observed = (dataType: number) => observer.payloads(dataType).map((p) => new TextDecoder().decode(p.data));
const newReasons = (from: number) => apiCloseReasons(canary.log).slice(from);

test("1. a truncated header, then silence: the per-message deadline closes it; an idle connection stays", async () => {
  const before = apiCloseReasons(canary.log).length;
  const idle = await connect();
  const oneByte = await connect();
  const threeBytes = await connect();
  oneByte.send(new Uint8Array([0x00]));
  threeBytes.send(new Uint8Array([0x00, 0x08, 0x01]));
  await oneByte.waitClosed(5000);
  await threeBytes.waitClosed(5000);
  expect(newReasons(before)).toEqual(["partial-timeout", "partial-timeout"]);
  expect(idle.isClosed).toBe(false);
  const m = await module(0x101);
  idle.send(announceBytes(0x101, "idle still served"));
  await waitFor(() => m.received.length === 1, 3000, "idle connection's announcement");
  await canary.check();
});

test("2. a size below 4 closes the connection as soon as its two bytes arrive", async () => {
  const before = apiCloseReasons(canary.log).length;
  for (const size of [0, 1, 2, 3]) {
    const c = await connect();
    c.send(new Uint8Array([0x00, size]));
    await c.waitClosed();
  }
  expect(newReasons(before)).toEqual(Array(4).fill("size-too-small"));
  await canary.check();
});

test("3. a size larger than what follows, then a stall: the deadline closes it, memory stays bounded", async () => {
  const before = apiCloseReasons(canary.log).length;
  const stalled = await Promise.all(Array.from({ length: 36 }, () => connect()));
  const heapBefore = heapUsed();
  // Each declares the largest message and sends a little of it: the server holds one 64 KiB buffer for each.
  for (const c of stalled) c.send(header(65535, 500, 100));
  await Promise.all(stalled.map((c) => c.waitClosed(5000)));
  expect(newReasons(before)).toEqual(Array(36).fill("partial-timeout"));
  // Released when the connection closes, not later (36 × 64 KiB would be 2.3 MiB).
  expect(heapUsed() - heapBefore).toBeLessThan(1 << 20);
  expect(observer.payloads().filter((p) => p.dataType === 0)).toEqual([]); // nothing announced
  await canary.check();
});

test("4. a size the type does not allow closes the connection, and neither it nor what follows takes effect", async () => {
  const before = apiCloseReasons(canary.log).length;
  const subscriptions = canary.target.api.stats().subscriptions;
  const notify12 = header(12, 501);
  new DataView(notify12.buffer).setUint16(6, 0x104);
  const cases = [
    Buffer.concat([notify12, encodeNotify({ dataType: 0x105 })]), // NOTIFY of 12 bytes, then a valid NOTIFY
    Buffer.concat([header(7, 500), announceBytes(0x104, "after")]), // ANNOUNCE too short for its fields
    header(9, 503), // VALIDATION of 9 bytes
    header(8, 540), // RPS QUERY of 8 bytes
  ];
  for (const bytes of cases) {
    const c = await connect();
    c.send(bytes);
    await c.waitClosed();
  }
  expect(newReasons(before)).toEqual(Array(4).fill("size-mismatch"));
  expect(canary.target.api.stats().subscriptions).toBe(subscriptions);
  expect(canary.target.api.hasSubscribers(0x104) || canary.target.api.hasSubscribers(0x105)).toBe(false);
  await canary.check();
  expect(observed(0x104)).toEqual([]); // the canary items after it went out on the same links; this one did not
});

test("5. unknown message types close the connection", async () => {
  const before = apiCloseReasons(canary.log).length;
  for (const type of [0, 499, 504, 539, 542, 65535]) {
    const c = await connect();
    c.send(header(8, type));
    await c.waitClosed();
  }
  expect(newReasons(before)).toEqual(Array(6).fill("unknown-type"));
  await canary.check();
});

test("6. many messages in one write, one message in 1-byte writes, and any chunking give the same result", async () => {
  const m = await module(0x106);
  const writer = await connect();
  const texts = Array.from({ length: 300 }, (_, i) => `segment ${i}`);
  writer.send(Buffer.concat(texts.map((t) => announceBytes(0x106, t))));
  await waitFor(() => m.received.length === 300, 5000, "300 notifications");
  expect(m.received).toEqual(texts);

  const dribbled = announceBytes(0x106, "one byte per write");
  for (let i = 0; i < dribbled.length; i++) {
    writer.send(dribbled.subarray(i, i + 1));
    await Bun.sleep(1); // separate segments
  }
  await waitFor(() => m.received.length === 301, 3000, "the dribbled announcement");
  expect(m.received[300]).toBe("one byte per write");

  // Property over random chunkings: whatever the cut points, the module sees the same announcements in order.
  await fc.assert(
    fc.asyncProperty(fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 12 }), async (items, cuts) => {
      const start = m.received.length;
      const tagged = items.map((t, i) => `${start}:${i}:${t}`);
      const stream = Buffer.concat([encodeNotify({ dataType: 0x106 }), ...tagged.map((t) => announceBytes(0x106, t))]);
      const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
      let from = 0;
      for (const to of [...points, stream.length]) {
        if (to > from) writer.send(stream.subarray(from, to));
        from = to;
        await Bun.sleep(0);
      }
      await waitFor(() => m.received.length >= start + tagged.length, 3000, "chunked announcements");
      expect(m.received.slice(start)).toEqual(tagged);
    }),
    { numRuns: 25 },
  );
  expect(writer.isClosed).toBe(false);
  await canary.check();
});

test("7. one byte per tick on many connections: the cap refuses the excess, the deadline closes the rest", async () => {
  const refusedBefore = canary.log.filter((e) => e.event === "api connection refused").length;
  const before = apiCloseReasons(canary.log).length;
  await waitFor(() => canary.target.api.stats().connections === 2, 3000, "only the canary's connections left");
  const free = 40 - canary.target.api.stats().connections;
  const conns = await Promise.all(Array.from({ length: free + 20 }, () => connect()));
  const message = announceBytes(0x107, "x".repeat(50));
  let at = 0;
  const ticker = setInterval(() => {
    for (const c of conns) if (!c.isClosed) c.send(message.subarray(at, at + 1));
    at++;
  }, 100);
  try {
    await Promise.all(conns.map((c) => c.waitClosed(5000)));
  } finally {
    clearInterval(ticker);
  }
  expect(canary.log.filter((e) => e.event === "api connection refused").length - refusedBefore).toBe(20);
  expect(newReasons(before)).toEqual(Array(free).fill("partial-timeout"));
  const m = await module(0x107); // a slot is free again
  (await connect()).send(announceBytes(0x107, "after the flood"));
  await waitFor(() => m.received.length === 1, 3000, "a new connection served");
  await canary.check(); // descriptors back near baseline
});

test("8. a subscriber that never validates: the item is dropped and the outstanding tables return to 0", async () => {
  const target = canary.target;
  const silent = await module(0x108, "silent");
  const unanswered = target.broadcaster.stats().unanswered;
  (await peerAnnouncer()).send(announceBytes(0x108, "never validated"));
  await waitFor(() => silent.received.length === 1, 3000, "notification");
  await waitFor(() => target.broadcaster.stats().unanswered === unanswered + 1, 3000, "timeout verdict");
  await waitFor(() => target.api.stats().outstanding === 0 && target.broadcaster.stats().outstanding === 0, 3000, "tables empty");
  await canary.check();
  expect(observed(0x108)).toEqual([]); // not forwarded
});

test("9. a subscriber that stops reading is cut off at its bound; the other subscriber is not slowed", async () => {
  const before = apiCloseReasons(canary.log).length;
  const stalled = await module(0x109);
  stalled.client.pause();
  const good = await module(0x109);
  const announcer = await connect();
  const data = new Uint8Array(60_000).fill(9);
  for (let sent = 0; !newReasons(before).includes("slow-reader") && sent < 1000; sent++) {
    announcer.send(announceBytes(0x109, data, 1));
    await waitFor(() => good.received.length === sent + 1, 3000, "the good subscriber keeps up");
  }
  expect(newReasons(before)).toEqual(["slow-reader"]);
  await stalled.client.waitClosed();
  for (let i = 0; i < 3; i++) announcer.send(announceBytes(0x109, `after ${i}`, 1));
  await waitFor(() => good.received.slice(-3).join() === "after 0,after 1,after 2", 3000, "served after the cut");
  await canary.check();
});

test("10. a VALIDATION for a stale, unknown or duplicate ID never validates the wrong item", async () => {
  const target = canary.target;
  const before = apiCloseReasons(canary.log).length;
  const h10 = await module(0x10a, "silent"); // answered by hand below
  const announcer = await peerAnnouncer();
  const next = async (text: string) => {
    const count = h10.notifications.length;
    announcer.send(announceBytes(0x10a, text));
    await waitFor(() => h10.notifications.length === count + 1, 3000, `notification of ${text}`);
    return h10.notifications[count]!;
  };
  const { unanswered, invalid } = target.broadcaster.stats();
  const a = await next("ten a");
  await waitFor(() => target.broadcaster.stats().unanswered === unanswered + 1, 3000, "a times out");
  const b = await next("ten b");
  expect(b.messageId).not.toBe(a.messageId);
  h10.client.send(encodeValidation({ messageId: a.messageId, valid: true })); // stale: ignored, not applied to b
  h10.client.send(encodeValidation({ messageId: b.messageId, valid: false }));
  await waitFor(() => target.broadcaster.stats().invalid === invalid + 1, 3000, "b judged invalid");
  const c = await next("ten c");
  h10.client.send(encodeValidation({ messageId: c.messageId, valid: true }));
  await waitFor(() => observed(0x10a).length === 1, 3000, "c forwarded");
  expect(observed(0x10a)).toEqual(["ten c"]); // b would have been forwarded before c on the same link
  expect(h10.client.isClosed).toBe(false);
  expect(newReasons(before)).toEqual([]);

  h10.client.send(encodeValidation({ messageId: c.messageId, valid: true })); // duplicate
  await h10.client.waitClosed();
  const stranger = await connect();
  stranger.send(encodeValidation({ messageId: 4242, valid: true })); // never given to it
  await stranger.waitClosed();
  expect(newReasons(before)).toEqual(["unknown-message-id", "unknown-message-id"]);
  await canary.check();
});

test("11a. a subscriber that disconnects mid-validation settles the item at once; a repeated NOTIFY is idempotent", async () => {
  const target = canary.target;
  tuneApi(target, { validationTimeoutMs: 60_000 }); // only the disconnect can settle it now
  try {
    const leaver = await module(0x10b, "silent");
    const unanswered = target.broadcaster.stats().unanswered;
    (await peerAnnouncer()).send(announceBytes(0x10b, "mid-validation"));
    await waitFor(() => leaver.received.length === 1, 3000, "notification");
    leaver.client.close();
    await waitFor(() => target.broadcaster.stats().unanswered === unanswered + 1, 3000, "settled by the disconnect");
    await waitFor(() => target.api.stats().outstanding === 0 && !target.api.hasSubscribers(0x10b), 3000, "cleaned up");
  } finally {
    tuneApi(target, { validationTimeoutMs: 500 });
  }

  const subscriptions = target.api.stats().subscriptions;
  const twice = await module(undefined);
  twice.client.send(Buffer.concat([encodeNotify({ dataType: 0x10c }), encodeNotify({ dataType: 0x10c })]));
  await waitFor(() => target.api.hasSubscribers(0x10c), 3000, "subscribed");
  twice.client.send(encodeNotify({ dataType: 0x10c }));
  const announcer = await connect();
  announcer.send(Buffer.concat([announceBytes(0x10c, "d1"), announceBytes(0x10c, "d2")]));
  await waitFor(() => twice.received.length >= 2, 3000, "two notifications");
  await canary.check(); // later items have arrived: a third copy would be here by now
  expect(twice.received).toEqual(["d1", "d2"]);
  expect(target.api.stats().subscriptions).toBe(subscriptions + 1);
});

test("11b. TTL 0, 1 and 255 and empty and maximal data, from a module and from a peer", async () => {
  const m = await module(0x10d);
  const announcer = await connect();
  const max = new Uint8Array(MAX_DATA_SIZE).fill(0x5a);
  announcer.send(Buffer.concat([announceBytes(0x10d, "api ttl 0", 0), announceBytes(0x10d, "api ttl 255", 255)]));
  announcer.send(Buffer.concat([announceBytes(0x10d, ""), announceBytes(0x10d, max)]));
  await waitFor(() => observer.payloads(0x10d).length === 4, 3000, "four forwarded");
  expect(observer.payloads(0x10d).map((p) => [p.ttl, p.data.length])).toEqual([[0, 9], [255, 11], [0, 0], [0, MAX_DATA_SIZE]]);
  expect(m.received.map((t) => t.length)).toEqual([9, 11, 0, MAX_DATA_SIZE]);

  const sender = await RawPeer.connect(canary.target.transport.port);
  peers.push(sender);
  await sender.handshake();
  const big = new Uint8Array(MAX_DATA_SIZE).fill(0x42);
  for (const [text, ttl] of [["peer ttl 1", 1], ["peer ttl 255", 255], ["peer ttl 0", 0]] as const) sender.send(payload(0x10d, text, ttl));
  sender.send(payload(0x10d, big, 3));
  sender.send(payload(0x10d, new Uint8Array(MAX_DATA_SIZE + 1), 3)); // cannot be notified: dropped, no strike
  sender.send(payload(0x10d, "peer last", 3));
  await waitFor(() => observer.payloads(0x10d).length === 8, 3000, "peer items forwarded");
  // TTL 1 was delivered locally only; the others went on with one hop less (0 stays unlimited).
  expect(observer.payloads(0x10d).slice(4).map((p) => [p.ttl, p.data.length])).toEqual([[254, 12], [0, 10], [2, MAX_DATA_SIZE], [2, 9]]);
  await waitFor(() => m.received.length === 9, 3000, "module notified");
  expect(m.received.slice(4).map((t) => t.length)).toEqual([10, 12, 10, MAX_DATA_SIZE, 9]);
  expect(sender.closed).toBe(false);
  await canary.check();
});
