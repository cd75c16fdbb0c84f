import { afterEach, describe, expect, test } from "bun:test";
import {
  MAX_DATA_SIZE,
  type Notification,
  decodeMessage,
  encodeAnnounce,
  encodeNotification,
  encodeNotify,
  encodeRpsQuery,
  encodeValidation,
} from "../../src/api/codec.ts";
import { type AnnouncedData, ApiServer, type ApiServerOptions } from "../../src/api/server.ts";
import { ApiTestClient, captureLogger, waitFor } from "./client.ts";

const servers: ApiServer[] = [];
const clients: ApiTestClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) if (!c.isClosed) c.close();
  for (const s of servers.splice(0)) await s.stop();
});

async function startServer(opts: Partial<ApiServerOptions> = {}) {
  const log = captureLogger();
  const server = new ApiServer({ host: "127.0.0.1", port: 0, log, validationTimeoutMs: 200, ...opts });
  await server.start();
  servers.push(server);
  const announced: AnnouncedData[] = [];
  server.onAnnounce = (a) => void announced.push(a);
  return { server, log, announced };
}

async function connect(server: ApiServer): Promise<ApiTestClient> {
  const c = await ApiTestClient.connect(server.port);
  clients.push(c);
  return c;
}

/** Connects and subscribes; waits until the server has registered it. */
async function subscriber(server: ApiServer, dataType: number): Promise<ApiTestClient> {
  const before = server.stats().subscriptions;
  const c = await connect(server);
  c.send(encodeNotify({ dataType }));
  await waitFor(() => server.stats().subscriptions > before, 3000, "subscription");
  return c;
}

async function nextNotification(c: ApiTestClient, timeoutMs?: number): Promise<Notification> {
  const m = await c.nextMessage(timeoutMs);
  if (m.kind !== "notification") throw new Error(`expected a NOTIFICATION, got ${m.kind}`);
  return m;
}

async function answerNext(c: ApiTestClient, valid: boolean): Promise<Notification> {
  const n = await nextNotification(c);
  c.send(encodeValidation({ messageId: n.messageId, valid }));
  return n;
}

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const closedReasons = (log: ReturnType<typeof captureLogger>) =>
  log.entries.filter((e) => e.event === "api connection closed" && e.level === "warn").map((e) => e.fields.reason);

/** Proves the server still serves: an announce from `from` reaches `to`. */
async function roundTrip(from: ApiTestClient, to: ApiTestClient, dataType: number, payload: string): Promise<void> {
  from.send(encodeAnnounce({ ttl: 1, dataType, data: bytes(payload) }));
  const n = await answerNext(to, true);
  expect(text(n.data)).toBe(payload);
}

describe("announce", () => {
  test("reaches every other subscriber of the type, not the announcer, then onAnnounce", async () => {
    const { server, announced } = await startServer();
    const a = await subscriber(server, 1337);
    const b = await subscriber(server, 1337);
    const announcer = await subscriber(server, 1337);
    const other = await subscriber(server, 42);

    announcer.send(encodeAnnounce({ ttl: 4, dataType: 1337, data: bytes("first") }));
    const na = await nextNotification(a);
    const nb = await nextNotification(b);
    expect([na.dataType, text(na.data), nb.dataType, text(nb.data)]).toEqual([1337, "first", 1337, "first"]);
    expect(na.messageId).not.toBe(nb.messageId);
    await waitFor(() => announced.length === 1);
    expect(announced[0]).toEqual({ ttl: 4, dataType: 1337, data: bytes("first") });
    expect(announced[0].data.buffer.byteLength).toBe(5); // its own copy, not a view of a socket chunk

    // Had the announcer or the type-42 subscriber been notified, that would be the first message they read.
    a.send(encodeAnnounce({ ttl: 0, dataType: 1337, data: bytes("second") }));
    other.send(encodeAnnounce({ ttl: 0, dataType: 42, data: bytes("x") })); // nobody else subscribed to 42
    expect(text((await nextNotification(announcer)).data)).toBe("second");
    expect(text((await nextNotification(b)).data)).toBe("second");
    await waitFor(() => announced.length === 3);
    expect(other.queued).toBe(0);

    // Answers to announce notifications are consumed without closing anyone.
    expect(server.stats().outstanding).toBe(4);
    a.send(encodeValidation({ messageId: na.messageId, valid: true }));
    b.send(encodeValidation({ messageId: nb.messageId, valid: false }));
    await waitFor(() => server.stats().outstanding === 2);
    expect(server.stats().connections).toBe(4);
  });

  test("NOTIFY+ANNOUNCE in one write followed at once by close is delivered (the course client)", async () => {
    const { server, announced } = await startServer();
    const sub = await subscriber(server, 1337);
    const quick = await connect(server);
    quick.send(Buffer.concat([encodeNotify({ dataType: 1337 }), encodeAnnounce({ ttl: 4, dataType: 1337, data: Buffer.from("deadbeef", "hex") })]));
    quick.close();
    const n = await nextNotification(sub);
    expect(Buffer.from(n.data).toString("hex")).toBe("deadbeef");
    await waitFor(() => announced.length === 1);
    expect(announced[0].ttl).toBe(4);
    await waitFor(() => server.stats().connections === 1, 3000, "the quick client to be gone");
    expect(server.stats().subscriptions).toBe(1);
  });

  test("a message dribbled one byte per write", async () => {
    const { server, announced } = await startServer();
    const sub = await subscriber(server, 9);
    const slow = await connect(server);
    const message = encodeAnnounce({ ttl: 2, dataType: 9, data: bytes("one byte at a time") });
    for (let i = 0; i < message.length; i++) {
      slow.send(message.subarray(i, i + 1));
      await Bun.sleep(1);
    }
    expect(text((await nextNotification(sub)).data)).toBe("one byte at a time");
    expect(announced).toHaveLength(1);
  });

  test("a 65535-byte ANNOUNCE arrives intact, as one 65535-byte NOTIFICATION", async () => {
    const { server, announced } = await startServer();
    const sub = await subscriber(server, 5);
    const announcer = await connect(server);
    const data = Uint8Array.from({ length: MAX_DATA_SIZE }, (_, i) => (i * 7) & 0xff);
    announcer.send(encodeAnnounce({ ttl: 0, dataType: 5, data }));
    const raw = await sub.next();
    expect(raw.length).toBe(65535);
    const n = decodeMessage(raw) as Notification;
    expect([n.kind, Buffer.compare(n.data, data)]).toEqual(["notification", 0]);
    await waitFor(() => announced.length === 1);
    expect(Buffer.compare(announced[0].data, data)).toBe(0);
  });

  test("a throwing onAnnounce does not close the announcer", async () => {
    const { server, log } = await startServer();
    server.onAnnounce = () => {
      throw new Error("bug elsewhere");
    };
    const a = await subscriber(server, 3);
    const b = await subscriber(server, 3);
    await roundTrip(a, b, 3, "one");
    await roundTrip(a, b, 3, "two");
    expect(log.entries.some((e) => e.event === "api announce handler failed")).toBe(true);
  });
});

describe("violations close only the offending connection", () => {
  const header = (size: number, type: number, length = size) => {
    const b = new Uint8Array(length);
    new DataView(b.buffer).setUint16(0, size);
    new DataView(b.buffer).setUint16(2, type);
    return b;
  };
  const cases: [string, Uint8Array, string][] = [
    ["size below 4", header(3, 501, 4), "size-too-small"],
    ["NOTIFY of size 9", header(9, 501), "size-mismatch"],
    ["VALIDATION of size 7", header(7, 503), "size-mismatch"],
    ["unknown type 0", header(8, 0), "unknown-type"],
    ["unknown type 499", header(8, 499), "unknown-type"],
    ["unknown type 65535", header(8, 65535), "unknown-type"],
    ["a NOTIFICATION from a client", encodeNotification({ messageId: 1, dataType: 1, data: bytes("x") }), "unexpected-type"],
    ["an RPS QUERY sent to Gossip", encodeRpsQuery(), "unexpected-type"],
    ["a VALIDATION for an ID never given", encodeValidation({ messageId: 77, valid: true }), "unknown-message-id"],
  ];

  test.each(cases)("%s", async (_name, bad, reason) => {
    const { server, log } = await startServer();
    const a = await subscriber(server, 1);
    const b = await subscriber(server, 1);
    const offender = await subscriber(server, 1);
    offender.send(bad);
    await offender.waitClosed();
    expect(closedReasons(log)).toEqual([reason]);
    expect(log.entries.find((e) => e.event === "api connection closed")?.fields.remote).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(server.stats()).toMatchObject({ connections: 2, subscriptions: 2 });
    await roundTrip(a, b, 1, "still served");
  });

  test("a VALIDATION for an ID already answered", async () => {
    const { server, log } = await startServer({ validationTimeoutMs: 5000 });
    const a = await subscriber(server, 1);
    const b = await subscriber(server, 1);
    const verdict = server.validate(1, bytes("v"));
    const na = await answerNext(a, true);
    await answerNext(b, true);
    expect(await verdict).toBe("valid");
    a.send(encodeValidation({ messageId: na.messageId, valid: true }));
    await a.waitClosed();
    expect(closedReasons(log)).toEqual(["unknown-message-id"]);
    const c = await subscriber(server, 1);
    await roundTrip(c, b, 1, "b still served");
  });

  test("a message left incomplete past the deadline; an idle connection is fine", async () => {
    const { server, log } = await startServer({ partialMessageTimeoutMs: 150 });
    const idle = await subscriber(server, 1);
    const stuck = await connect(server);
    stuck.send(encodeAnnounce({ ttl: 1, dataType: 1, data: bytes("never finished") }).subarray(0, 10));
    await stuck.waitClosed();
    expect(closedReasons(log)).toEqual(["partial-timeout"]);
    const other = await connect(server);
    await roundTrip(other, idle, 1, "idle is still subscribed");
  });

  test("at maxConnections a newcomer that says nothing is refused after its probation; a freed slot is usable", async () => {
    const { server, log } = await startServer({ maxConnections: 2, probationMs: 100 });
    const a = await subscriber(server, 1);
    const b = await subscriber(server, 1);
    const third = await connect(server);
    await third.waitClosed();
    expect(log.entries.some((e) => e.fields.reason === "too-many-connections")).toBe(true);
    await roundTrip(a, b, 1, "first two served");
    a.close();
    await waitFor(() => server.stats().connections === 1);
    const fourth = await subscriber(server, 1);
    await roundTrip(b, fourth, 1, "a freed slot is usable");
  });
});

describe("validate()", () => {
  test("valid when every subscriber answers valid; unanswered with none", async () => {
    const { server } = await startServer();
    expect(await server.validate(7, bytes("nobody"))).toBe("unanswered");
    const a = await subscriber(server, 7);
    const b = await subscriber(server, 7);
    expect(server.hasSubscribers(7)).toBe(true);
    expect(server.hasSubscribers(8)).toBe(false);
    const verdict = server.validate(7, bytes("good"));
    const na = await answerNext(a, true);
    const nb = await answerNext(b, true);
    expect([text(na.data), na.dataType, text(nb.data)]).toEqual(["good", 7, "good"]);
    expect(await verdict).toBe("valid");
    expect(server.stats().outstanding).toBe(0);
  });

  test("invalid as soon as one subscriber answers invalid, whatever the others say", async () => {
    const { server, log } = await startServer({ validationTimeoutMs: 5000 });
    const a = await subscriber(server, 7);
    const b = await subscriber(server, 7);
    const verdict = server.validate(7, bytes("bad"));
    await answerNext(a, false);
    expect(await verdict).toBe("invalid"); // b has not answered, and nothing waits for it
    expect(server.stats().outstanding).toBe(0);
    await answerNext(b, true); // its answer comes too late to matter, and is no violation
    await roundTrip(a, b, 7, "both kept");
    expect(closedReasons(log)).toEqual([]);
  });

  test("unanswered when a subscriber does not answer in time; its late answer is ignored, not a violation", async () => {
    const { server, log } = await startServer({ validationTimeoutMs: 150 });
    const a = await subscriber(server, 7);
    const b = await subscriber(server, 7);
    const verdict = server.validate(7, bytes("slow"));
    await answerNext(a, true);
    const late = await nextNotification(b);
    expect(await verdict).toBe("unanswered"); // not the sending peer's fault: it must not be counted against it
    expect(server.stats().outstanding).toBe(0);
    b.send(encodeValidation({ messageId: late.messageId, valid: true }));
    await roundTrip(a, b, 7, "b kept");
    expect(closedReasons(log)).toEqual([]);
  });

  test("unanswered when a subscriber disconnects before answering; nothing stays outstanding", async () => {
    const { server } = await startServer({ validationTimeoutMs: 5000 });
    const a = await subscriber(server, 7);
    const b = await subscriber(server, 7);
    const verdict = server.validate(7, bytes("gone"));
    await nextNotification(b);
    expect(server.stats().outstanding).toBe(2);
    b.close();
    expect(await verdict).toBe("unanswered");
    expect(server.stats().outstanding).toBe(0);
    expect(server.stats().subscriptions).toBe(1);
    await nextNotification(a); // a's answer no longer matters, but it got the notification
  });

  test("canValidate counts NOTIFICATIONs per subscriber: each holds at most its share; without room nobody is notified", async () => {
    // 6 outstanding at most, three subscribed connections: a share of 2 each.
    const { server, log } = await startServer({ validationTimeoutMs: 5000, maxOutstanding: 6 });
    const a = await subscriber(server, 7);
    const b = await subscriber(server, 7);
    const lone = await subscriber(server, 8);
    expect(server.canValidate(7)).toBe(true);
    const first = server.validate(7, bytes("one"));
    const second = server.validate(7, bytes("two"));
    expect(server.stats().outstanding).toBe(4);
    // a and b hold their shares; type 8's subscriber does not wait for them.
    expect([server.canValidate(7), server.canValidate(8), server.validationRoom(7)]).toEqual([false, true, "busy"]);
    expect(await server.validate(7, bytes("no room"))).toBe("unanswered");
    expect(log.entries.filter((e) => e.event === "api validation skipped").map((e) => e.fields.reason)).toEqual(["outstanding-full"]);
    expect(server.stats().outstanding).toBe(4);
    const lonely = [server.validate(8, bytes("l1")), server.validate(8, bytes("l2"))];
    expect([server.canValidate(8), server.canValidate(7)]).toEqual([false, false]);
    const ids = new Set<number>();
    for (const c of [a, b]) {
      for (const want of ["one", "two"]) {
        const n = await answerNext(c, true);
        expect(text(n.data)).toBe(want); // "no room" reached nobody
        ids.add(n.messageId);
      }
    }
    expect(ids.size).toBe(4);
    expect(await first).toBe("valid");
    expect(await second).toBe("valid");
    expect([server.canValidate(7), server.canValidate(8)]).toEqual([true, false]);
    for (const want of ["l1", "l2"]) expect(text((await answerNext(lone, true)).data)).toBe(want);
    expect(await Promise.all(lonely)).toEqual(["valid", "valid"]);
    expect(server.canValidate(8)).toBe(true);
  });

  test("a subscriber that never answers holds only its share: another type's items keep being validated", async () => {
    const { server } = await startServer({ validationTimeoutMs: 150, maxOutstanding: 8 });
    const silent = await subscriber(server, 7); // reads, never answers
    const honest = await subscriber(server, 8);
    // Share 4 each: the silent one fills its own.
    const stuck = Array.from({ length: 4 }, (_, i) => server.validate(7, bytes(`t${i}`)));
    expect([server.canValidate(7), server.validationRoom(7)]).toEqual([false, "busy"]);
    for (let i = 0; i < 20; i++) {
      expect(server.canValidate(8)).toBe(true);
      const verdict = server.validate(8, bytes(`u${i}`));
      await answerNext(honest, true);
      expect(await verdict).toBe("valid");
    }
    expect(await Promise.all(stuck)).toEqual(Array(4).fill("unanswered"));
    // It let them time out: stalled until it answers anything, and said so to the caller.
    expect(server.stats().stalledSubscribers).toBe(1);
    const again = Array.from({ length: 4 }, (_, i) => server.validate(7, bytes(`t${4 + i}`)));
    expect(server.validationRoom(7)).toBe("stalled");
    const late = await nextNotification(silent); // t0, answered long after its timeout
    silent.send(encodeValidation({ messageId: late.messageId, valid: true }));
    await waitFor(() => server.stats().stalledSubscribers === 0, 3000, "not stalled once it answers");
    expect(server.validationRoom(7)).toBe("busy");
    await Promise.all(again);
  });

  test("a local announcement beyond the bound notifies as many subscribers as fit and logs the rest", async () => {
    const { server, log } = await startServer({ validationTimeoutMs: 5000, maxOutstanding: 2 });
    const subs = [await subscriber(server, 7), await subscriber(server, 7), await subscriber(server, 7)];
    const announcer = await connect(server);
    announcer.send(encodeAnnounce({ ttl: 1, dataType: 7, data: bytes("crowded") }));
    await waitFor(() => subs.filter((c) => c.queued > 0).length === 2, 3000, "two copies");
    expect(log.entries.filter((e) => e.event === "api notification skipped").map((e) => e.fields.reason)).toEqual(["outstanding-full"]);
    expect(server.stats().outstanding).toBe(2);
    const kept = subs.filter((c) => c.queued > 0);
    const skipped = subs.find((c) => c.queued === 0)!;
    for (const c of kept) expect(text((await answerNext(c, true)).data)).toBe("crowded");
    await waitFor(() => server.stats().outstanding === 0, 3000, "both answered");
    // The third got nothing: with one of the others gone, the next announcement is the first message it reads.
    kept[0]!.close();
    await waitFor(() => server.stats().connections === 3, 3000, "one subscriber gone");
    announcer.send(encodeAnnounce({ ttl: 1, dataType: 7, data: bytes("after") }));
    for (const c of [skipped, kept[1]!]) expect(text((await answerNext(c, true)).data)).toBe("after");
  });
});

describe("output bound", () => {
  test("a subscriber that stops reading is cut off; another keeps receiving", async () => {
    const bound = 256 * 1024;
    // Nobody answers these local copies: with room for 65535 NOTIFICATIONs the table never decides who is notified,
    // however much the kernel's socket buffers absorb before the stalled one's queue grows (more under load).
    const { server, log } = await startServer({ maxPendingOutputBytes: bound, validationTimeoutMs: 60_000, maxOutstanding: 0xffff });
    const stalled = await subscriber(server, 2);
    stalled.pause();
    const reader = await subscriber(server, 2);
    const announcer = await connect(server);
    const data = new Uint8Array(60_000).fill(1);
    let sent = 0;
    // Kernel buffers on loopback absorb a few MB before the server's own queue grows; 2000 × 60 kB is far beyond.
    while (!closedReasons(log).includes("slow-reader") && sent < 2000) {
      announcer.send(encodeAnnounce({ ttl: 1, dataType: 2, data }));
      sent++;
      const n = await nextNotification(reader, 10_000); // a bound on a wait, generous for a loaded machine
      expect(n.data.length).toBe(60_000);
    }
    expect(closedReasons(log)).toEqual(["slow-reader"]);
    expect(sent * 60_000).toBeGreaterThan(bound);
    // Cut when the next 60 kB NOTIFICATION would have passed the bound, not before.
    const cut = log.entries.find((e) => e.fields.reason === "slow-reader")!.fields;
    expect(Number(cut.queuedBytes)).toBeLessThanOrEqual(bound);
    expect(Number(cut.queuedBytes) + 60_008).toBeGreaterThan(bound);
    expect(server.stats().connections).toBe(2);
    for (let i = 0; i < 3; i++) {
      announcer.send(encodeAnnounce({ ttl: 1, dataType: 2, data }));
      await nextNotification(reader);
    }
  }, 20_000);
});

describe("connection cap: a newcomer that speaks takes the slot of the longest-idle connection that holds nothing", () => {
  test("silent ones first, then the longest idle; subscribed ones never; refused once all hold something", async () => {
    const { server, log, announced } = await startServer({ maxConnections: 3, probationMs: 200 });
    const evicted = () => log.entries.filter((e) => e.fields.reason === "idle-evicted").length;
    const refused = () => log.entries.filter((e) => e.event === "api connection refused").length;
    const say = (c: ApiTestClient, t: string) => c.send(encodeAnnounce({ ttl: 1, dataType: 2, data: bytes(t) }));
    const a = await subscriber(server, 1);
    const b = await connect(server);
    say(b, "b spoke");
    await waitFor(() => announced.length === 1, 3000, "b's announcement");
    const c = await connect(server); // never says anything
    await waitFor(() => server.stats().connections === 3, 3000, "three served");
    const d = await connect(server);
    await waitFor(() => server.stats().onProbation === 1, 3000, "d on probation");
    expect([evicted(), c.isClosed]).toEqual([0, false]); // a newcomer that has said nothing replaces nobody
    say(d, "d spoke");
    await c.waitClosed(); // silent, though younger than b
    expect([evicted(), b.isClosed, text(announced[1]!.data)]).toEqual([1, false, "d spoke"]);
    const e = await connect(server);
    say(e, "e spoke");
    await b.waitClosed(); // b and d both spoke; b is idle longer
    expect([evicted(), d.isClosed, a.isClosed, server.stats().connections]).toEqual([2, false, false, 3]);
    for (const x of [d, e]) x.send(encodeNotify({ dataType: 1 }));
    await waitFor(() => server.stats().subscriptions === 3, 3000, "all three subscribed");
    const f = await connect(server);
    say(f, "f spoke");
    await f.waitClosed(); // nobody can give way
    const g = await connect(server);
    await g.waitClosed(); // silent past its probation
    expect([refused(), evicted(), announced.length]).toEqual([2, 2, 3]);
    await roundTrip(d, e, 1, "the subscribed ones are kept");
    expect(closedReasons(log)).toEqual(["idle-evicted", "idle-evicted"]);
  });

  test("probation is bounded: past it the oldest newcomer is refused at once", async () => {
    const { server, log } = await startServer({ maxConnections: 1, maxProbation: 2, probationMs: 60_000 });
    await subscriber(server, 1);
    const waiting = [await connect(server), await connect(server)];
    await waitFor(() => server.stats().onProbation === 2, 3000, "two on probation");
    const third = await connect(server);
    await waiting[0]!.waitClosed();
    await waitFor(() => server.stats().onProbation === 2, 3000, "still two");
    expect([waiting[1]!.isClosed, third.isClosed]).toEqual([false, false]);
    expect(log.entries.filter((e) => e.event === "api connection refused").map((e) => e.fields.reason)).toEqual(["too-many-connections"]);
  });
});

describe("subscription bounds", () => {
  test("past the per-connection or the node-wide bound the NOTIFY closes its connection; others are kept", async () => {
    const { server, log } = await startServer({ maxSubscriptionsPerConnection: 3, maxSubscriptions: 6 });
    const notify = (c: ApiTestClient, types: number[]) => c.send(Buffer.concat(types.map((dataType) => encodeNotify({ dataType }))));
    const first = await connect(server);
    notify(first, [1, 2, 3, 3]); // the repeat costs nothing
    await waitFor(() => server.stats().subscriptions === 3, 3000, "three subscriptions");
    const second = await connect(server);
    notify(second, [1, 2, 3, 4]);
    await second.waitClosed();
    expect([closedReasons(log), server.stats().subscriptions]).toEqual([["too-many-subscriptions"], 3]);
    const third = await connect(server);
    notify(third, [4, 5]);
    const fourth = await connect(server);
    notify(fourth, [6]);
    await waitFor(() => server.stats().subscriptions === 6, 3000, "six in all");
    notify(fourth, [7]);
    await fourth.waitClosed();
    expect(closedReasons(log)).toEqual(["too-many-subscriptions", "subscription-table-full"]);
    expect([server.stats().subscriptions, server.hasSubscribers(6), server.hasSubscribers(7)]).toEqual([5, false, false]);
    const announcer = await connect(server);
    await roundTrip(announcer, first, 2, "the first is still served");
    await roundTrip(announcer, third, 5, "the third too");
  });
});

describe("announce backpressure", () => {
  test("while a peer queue is above its high-water mark, a connection is not read past its next ANNOUNCE", async () => {
    let queued = 0;
    const { server, log, announced } = await startServer({
      partialMessageTimeoutMs: 150,
      outgoingQueues: () => [["peer", queued]],
      announceHighWaterBytes: 1000,
      announceLowWaterBytes: 100,
      announceStuckMs: 60_000,
    });
    const sub = await subscriber(server, 5);
    const announcer = await connect(server);
    const ann = (t: string) => encodeAnnounce({ ttl: 1, dataType: 5, data: bytes(t) });
    announcer.send(ann("a"));
    await waitFor(() => announced.length === 1, 3000, "a");
    queued = 5000; // a link's queue is past its high-water mark
    // The module's next messages: b waits, and so does everything after it; half of e is unread.
    const e = ann("e");
    announcer.send(Buffer.concat([encodeNotify({ dataType: 8 }), ann("b"), ann("c"), encodeNotify({ dataType: 6 }), ann("d"), e.subarray(0, 6)]));
    await waitFor(() => server.stats().pausedAnnouncers === 1, 3000, "the announcer held");
    expect(server.stats().heldBytes).toBeGreaterThanOrEqual(ann("b").length + ann("c").length);
    expect(announced.map((x) => text(x.data))).toEqual(["a"]);
    expect(server.hasSubscribers(8)).toBe(true); // what came before the ANNOUNCE was handled
    expect(server.hasSubscribers(6)).toBe(false); // the NOTIFY behind the held ANNOUNCE waits too
    // Another connection's partial message is cut at its deadline; the held one's is not (we are not reading it).
    const partial = await connect(server);
    partial.send(ann("partial").subarray(0, 6));
    await partial.waitClosed();
    expect([announcer.isClosed, closedReasons(log)]).toEqual([false, ["partial-timeout"]]);
    // A connection that does not announce is read as usual.
    await subscriber(server, 7);
    queued = 50; // drained: the held messages go, in order, and reading resumes
    await waitFor(() => announced.length === 4, 3000, "b, c and d");
    announcer.send(e.subarray(6));
    await waitFor(() => announced.length === 5, 3000, "e completed");
    expect(announced.map((x) => text(x.data))).toEqual(["a", "b", "c", "d", "e"]);
    expect(server.hasSubscribers(6)).toBe(true);
    expect(server.stats()).toMatchObject({ pausedAnnouncers: 0, heldBytes: 0 });
    const got: string[] = [];
    for (let i = 0; i < 5; i++) got.push(text((await nextNotification(sub)).data));
    expect(got).toEqual(["a", "b", "c", "d", "e"]);
    expect(closedReasons(log)).toEqual(["partial-timeout"]);
  });
});
