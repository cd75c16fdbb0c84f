// The Transport over real TCP on 127.0.0.1: linking, message exchange, refusals, hostile pre-handshake bytes,
// handshake deadline, simultaneous open, and a tampered ciphertext frame (via a bit-flipping TCP relay).
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { DialError } from "../../src/errors.ts";
import { silentLogger } from "../../src/log.ts";
import { generateEd25519Pem, loadIdentity, type Identity } from "../../src/p2p/identity.ts";
import { PowPool } from "../../src/p2p/pow-pool.ts";
import type { LinkMessage, Payload } from "../../src/p2p/proto/gossip.ts";
import { Transport, type TransportOptions } from "../../src/p2p/transport.ts";
import { startRelay } from "./relay.ts";

const HOST = "127.0.0.1";
const pool = new PowPool({ size: 1 });
const started: Transport[] = [];
const cleanups: (() => void)[] = [];

afterEach(async () => {
  for (const t of started.splice(0)) await t.stop();
  for (const c of cleanups.splice(0)) c();
});
afterAll(async () => {
  await pool.close();
});

interface Recorder {
  t: Transport;
  ups: string[];
  downs: { peerId: string; reason: string }[];
  messages: { peerId: string; message: LinkMessage }[];
}

async function node(opts: Partial<TransportOptions> = {}, identity: Identity = loadIdentity(generateEd25519Pem())): Promise<Recorder> {
  const t = new Transport({
    identity,
    host: HOST,
    port: 0,
    difficulty: 2,
    maxDifficulty: 8,
    pow: pool,
    log: silentLogger,
    ...opts,
  });
  const r: Recorder = { t, ups: [], downs: [], messages: [] };
  t.events = {
    linkUp: (info) => r.ups.push(info.peerId),
    linkDown: (peerId, reason) => r.downs.push({ peerId, reason }),
    message: (peerId, message) => r.messages.push({ peerId, message }),
  };
  await t.start();
  started.push(t);
  return r;
}

/** Lets the link seal what this turn queued: messages sent within one event-loop turn share a frame. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

async function until(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

function payload(text: string): LinkMessage {
  const value: Payload = { messageId: randomBytes(32), ttl: 3, dataType: 540, data: new TextEncoder().encode(text) };
  return { kind: { $case: "payload", value } };
}

function payloadTexts(r: Recorder, from: string): string[] {
  return r.messages
    .filter((m) => m.peerId === from && m.message.kind?.$case === "payload")
    .map((m) => new TextDecoder().decode((m.message.kind as { value: Payload }).value.data));
}

/** Asserts the dial rejects with a DialError, returning its code. */
async function rejectionCode(p: Promise<string>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(DialError);
    return (e as DialError).code;
  }
  throw new Error("dial resolved but should have rejected");
}

/** A raw client that records whether the server closed the connection. */
async function rawClient(port: number): Promise<{ socket: Socket<undefined>; closed: () => boolean; received: () => number }> {
  let closed = false;
  let received = 0;
  const socket = await Bun.connect({
    hostname: HOST,
    port,
    socket: {
      data(_s, chunk) {
        received += chunk.length;
      },
      end() {
        closed = true;
      },
      close() {
        closed = true;
      },
      error() {
        closed = true;
      },
    },
  });
  cleanups.push(() => socket.end());
  return { socket, closed: () => closed, received: () => received };
}

async function linkPair(a: Recorder, b: Recorder): Promise<void> {
  const id = await a.t.dial(HOST, b.t.port);
  expect(id).toBe(b.t.localId);
  await until(() => a.ups.includes(b.t.localId) && b.ups.includes(a.t.localId), "linkUp on both sides");
}

async function exchange(a: Recorder, b: Recorder, tag: string): Promise<void> {
  expect(a.t.send(b.t.localId, payload(`${tag} a->b`))).toBe(true);
  expect(b.t.send(a.t.localId, payload(`${tag} b->a`))).toBe(true);
  await until(() => payloadTexts(b, a.t.localId).includes(`${tag} a->b`), "payload at b");
  await until(() => payloadTexts(a, b.t.localId).includes(`${tag} b->a`), "payload at a");
}

describe("Transport", () => {
  test("two transports link and exchange payloads both ways", async () => {
    const a = await node();
    const b = await node({ difficulty: 8 });
    await linkPair(a, b);
    expect(a.t.linked().map((l) => l.info.peerId)).toEqual([b.t.localId]);
    expect(b.t.linked().map((l) => l.info.peerId)).toEqual([a.t.localId]);
    expect(a.t.linked()[0]!.info.inbound).toBe(false);
    expect(b.t.linked()[0]!.info.inbound).toBe(true);
    // The payload fields survive the trip intact.
    const sent = payload("hello");
    expect(a.t.send(b.t.localId, sent)).toBe(true);
    await until(() => b.messages.length > 0, "message at b");
    expect(b.messages[0]!.message).toEqual(sent);
    await exchange(a, b, "round");
    // Sending to an unknown peer is refused, not thrown.
    expect(a.t.send("00".repeat(32), payload("nobody"))).toBe(false);
  });

  test("an RSA (PKCS#1) hostkey links with an Ed25519 one", async () => {
    const rsaPem = generateKeyPairSync("rsa", {
      modulusLength: 2048,
      privateKeyEncoding: { type: "pkcs1", format: "pem" },
      publicKeyEncoding: { type: "spki", format: "pem" },
    }).privateKey;
    const rsa = await node({}, loadIdentity(rsaPem));
    const ed = await node();
    await linkPair(rsa, ed);
    await exchange(rsa, ed, "rsa");
  });

  test("dial with a wrong expected ID rejects and leaves no link", async () => {
    const a = await node();
    const b = await node();
    const wrong = randomBytes(32).toString("hex");
    expect(await rejectionCode(a.t.dial(HOST, b.t.port, wrong))).toBe("unexpected-peer");
    await until(() => b.t.stats().handshakesFailed.size > 0, "b sees the aborted handshake end");
    expect(a.t.linked()).toEqual([]);
    expect(b.t.linked()).toEqual([]);
    expect(a.ups).toEqual([]);
    // The right ID still links.
    expect(await a.t.dial(HOST, b.t.port, b.t.localId)).toBe(b.t.localId);
  });

  test("a responder difficulty above our maximum rejects the dial with difficulty-too-high", async () => {
    const a = await node({ maxDifficulty: 4 });
    const b = await node({ difficulty: 8 });
    expect(await rejectionCode(a.t.dial(HOST, b.t.port))).toBe("difficulty-too-high");
    expect(a.t.linked()).toEqual([]);
  });

  test("hostile bytes before the handshake close the connection; a real peer still links", async () => {
    const b = await node();
    const garbage = new Uint8Array(40);
    garbage.set([0, 0, 0, 36]); // a plausible length, then bytes that are no HandshakeInit
    garbage.set(randomBytes(36).fill(0xff, 0, 4), 4);
    const http = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    const hugeLength = Uint8Array.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
    for (const bytes of [garbage, http, hugeLength]) {
      const c = await rawClient(b.t.port);
      await until(() => c.received() > 0, "hello from the transport");
      c.socket.write(bytes);
      await until(c.closed, "transport closes the hostile connection");
    }
    const a = await node();
    await linkPair(a, b);
    await exchange(a, b, "after-garbage");
  });

  test("a dial whose socket opens after stop() is rejected (shutting-down) and leaves the dial table", async () => {
    const a = await node();
    const b = await node();
    let settled: string | undefined;
    const dial = a.t.dial(HOST, b.t.port);
    dial.then(
      () => void (settled = "linked"),
      (e: DialError) => void (settled = e.code),
    );
    expect(a.t.stats().dialing).toBe(1);
    await a.t.stop(); // Bun opens the socket on a later turn: after this
    await until(() => settled !== undefined, "the dial to settle");
    expect(settled).toBe("shutting-down");
    expect(a.t.stats().dialing).toBe(0);
    // The socket did open after the stop: b saw a connection come and go before any M1.
    await until(() => b.t.stats().handshakesFailed.get("closed-by-peer") === 1, "b sees the socket open and close");
    expect(a.t.linked()).toEqual([]);
    expect(await rejectionCode(a.t.dial(HOST, b.t.port))).toBe("shutting-down"); // and a dial after it, at once
    expect(a.t.stats().dialing).toBe(0);
  });

  test("a stalled handshake is closed by the deadline", async () => {
    const b = await node({ handshakeTimeoutMs: 300 });
    const c = await rawClient(b.t.port);
    await until(c.closed, "deadline closes the silent connection", 3000);
    expect(b.t.stats().handshakesFailed.get("handshake-timeout")).toBe(1);
    expect(b.t.linked()).toEqual([]);
  });

  // Both orders of IDs (lower dials first / higher dials first), so a rule that merely keeps whichever link came up
  // first cannot pass by luck: the survivor must be the link initiated by the lower ID on both sides.
  for (const lowerFirst of [true, false]) {
    test(`simultaneous open ends with exactly one link per side (lower ID dials first: ${lowerFirst})`, async () => {
      const ids = [loadIdentity(generateEd25519Pem()), loadIdentity(generateEd25519Pem())].sort((x, y) =>
        x.idHex < y.idHex ? -1 : 1,
      );
      const a = await node({}, lowerFirst ? ids[0] : ids[1]);
      const b = await node({}, lowerFirst ? ids[1] : ids[0]);
      const [ab, ba] = await Promise.all([a.t.dial(HOST, b.t.port), b.t.dial(HOST, a.t.port)]);
      expect(ab).toBe(b.t.localId);
      expect(ba).toBe(a.t.localId);
      const agreed = () => {
        const la = a.t.linked();
        const lb = b.t.linked();
        return la.length === 1 && lb.length === 1 && !la[0]!.closed && !lb[0]!.closed &&
          la[0]!.info.initiatorId === lb[0]!.info.initiatorId;
      };
      await until(agreed, "one agreed link on each side");
      expect(a.t.linked()[0]!.info.initiatorId).toBe(ids[0]!.idHex);
      await exchange(a, b, "simultaneous");
      expect(a.t.linked().length).toBe(1);
      expect(b.t.linked().length).toBe(1);
    });
  }

  test("a frame with a flipped ciphertext bit closes the link", async () => {
    const b = await node();
    const a = await node();
    // A relay A → proxy → B that can flip the last bit (in the AEAD tag) of the next chunk A sends.
    let flipNext = false;
    let flipped = 0;
    const proxy = startRelay(b.t.port, (chunk) => {
      if (!flipNext) return;
      flipNext = false;
      flipped++;
      chunk[chunk.length - 1]! ^= 0x01;
    });
    cleanups.push(proxy.stop);

    expect(await a.t.dial(HOST, proxy.port)).toBe(b.t.localId);
    await until(() => b.ups.includes(a.t.localId), "b sees the link");
    await exchange(a, b, "clean"); // the relay itself is transparent
    const before = b.messages.length;
    flipNext = true;
    expect(a.t.send(b.t.localId, payload("tampered"))).toBe(true);
    await until(() => b.downs.some((d) => d.peerId === a.t.localId), "b drops the link");
    expect(flipped).toBe(1);
    expect(b.messages.length).toBe(before);
    expect(b.t.linked()).toEqual([]);
    await until(() => a.t.linked().length === 0, "a sees the link closed");
  });

  test("a peer that stops reading fills its bound; payloads to it are dropped and other links are not stalled", async () => {
    const b = await node();
    const c = await node();
    const a = await node({ sendBufferBytes: 64 * 1024 });
    // A relay A → proxy → B whose side facing A can stop reading, like a peer that stalls.
    const proxy = startRelay(b.t.port);
    cleanups.push(proxy.stop);
    expect(await a.t.dial(HOST, proxy.port)).toBe(b.t.localId);
    expect(await a.t.dial(HOST, c.t.port)).toBe(c.t.localId);
    await until(() => b.ups.includes(a.t.localId) && c.ups.includes(a.t.localId), "both links up");

    proxy.client()!.pause();
    const big = new Uint8Array(32 * 1024);
    let accepted = 0;
    while (accepted < 2000 && a.t.send(b.t.localId, { kind: { $case: "payload", value: { messageId: randomBytes(32), ttl: 1, dataType: 1, data: big } } }, true)) {
      accepted++;
    }
    expect(accepted).toBeLessThan(2000); // the bound was reached: droppable payloads are refused, not queued forever
    const link = a.t.linked().find((l) => l.info.peerId === b.t.localId)!;
    expect(link.droppedMessages).toBe(1);
    // The stalled link is still up, and the healthy one delivers at once.
    expect(a.t.send(c.t.localId, payload("still flowing"))).toBe(true);
    await until(() => payloadTexts(c, a.t.localId).includes("still flowing"), "c receives while b is stalled");
    expect(a.t.linked().length).toBe(2);
  });

  test("traffic continues across many rekeys both ways (threshold lowered to 3 frames)", async () => {
    const a = await node({ rekeyInterval: 3 });
    const b = await node({ rekeyInterval: 3 });
    await a.t.dial(HOST, b.t.port);
    await until(() => b.ups.length === 1, "b sees the link");
    for (let i = 0; i < 20; i++) {
      expect(a.t.send(b.t.localId, payload(`a${i}`))).toBe(true);
      expect(b.t.send(a.t.localId, payload(`b${i}`))).toBe(true);
      if (i % 2 === 1) await nextTurn(); // messages of one turn share a frame: spread them over 10 frames each way
    }
    await until(() => payloadTexts(b, a.t.localId).length === 20 && payloadTexts(a, b.t.localId).length === 20, "rekeyed traffic");
    expect(payloadTexts(b, a.t.localId)).toEqual(Array.from({ length: 20 }, (_, i) => `a${i}`));
    expect(payloadTexts(a, b.t.localId)).toEqual(Array.from({ length: 20 }, (_, i) => `b${i}`));
  });

  test("frames sent in one turn leave together, arrive in order, and still arrive when the link is closed right after", async () => {
    const a = await node();
    const b = await node();
    await linkPair(a, b);
    const texts = Array.from({ length: 300 }, (_, i) => `m${i}-${"x".repeat(i % 7 === 0 ? 2000 : i % 50)}`);
    for (const t of texts) expect(a.t.send(b.t.localId, payload(t))).toBe(true);
    const link = a.t.linked()[0]!;
    a.t.disconnect(b.t.localId, "done");
    await until(() => b.downs.length === 1, "b sees the close");
    expect(payloadTexts(b, a.t.localId)).toEqual(texts);
    // 300 payloads and the closing error, sealed as Batches of at most 32 KiB: a handful of frames, not 301.
    expect(link.messagesOut).toBe(301);
    expect(link.framesOut).toBeLessThanOrEqual(6);
  });

  test("peers that disagree on the rekey interval cannot talk past the first rekey", async () => {
    const a = await node({ rekeyInterval: 3 });
    const b = await node();
    await a.t.dial(HOST, b.t.port);
    for (let i = 0; i < 6; i++) {
      a.t.send(b.t.localId, payload(`x${i}`));
      await nextTurn(); // one frame each
    }
    await until(() => b.downs.length === 1, "b drops the link");
    expect(payloadTexts(b, a.t.localId)).toEqual(["x0", "x1", "x2"]);
  });
});
