// Flow control on a link (Connection.pauseReading / resumeReading, Transport.pauseReading): while paused, nothing is
// handed up, also from the rest of a Batch or of a chunk already read; the peer is made to wait by the byte stream
// (its writes are not taken, its link queue grows), and on resume everything arrives in order, nothing lost.
import { afterAll, afterEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { silentLogger } from "../../src/log.ts";
import { generateEd25519Pem, loadIdentity } from "../../src/p2p/identity.ts";
import { PowPool } from "../../src/p2p/pow-pool.ts";
import type { LinkMessage } from "../../src/p2p/proto/gossip.ts";
import { Transport } from "../../src/p2p/transport.ts";
import { waitFor } from "../wait-for.ts";
import { memoryPair, nextTurn, payloadTexts } from "./memory-pair.ts";

const text = (t: string): LinkMessage => ({
  kind: { $case: "payload", value: { messageId: randomBytes(32), ttl: 0, dataType: 77, data: new TextEncoder().encode(t) } },
});
const texts = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i}`);

async function linkedPair() {
  const pair = memoryPair({});
  await waitFor(() => pair.dialer.link && pair.listener.link, 3000, "both links up");
  return pair;
}

describe("pausing a link's reading, in memory", () => {
  test("while paused nothing is handed up and the peer's bytes are not taken; on resume all arrive in order", async () => {
    const { dialer, listener } = await linkedPair();
    listener.connection.pauseReading();
    expect(listener.link!.paused).toBe(true);
    for (const turn of [0, 1, 2]) {
      for (const t of texts(`t${turn}-`, 10)) expect(dialer.link!.send(text(t))).toBe(true);
      await nextTurn();
    }
    await nextTurn();
    expect(payloadTexts(listener)).toEqual([]);
    expect(dialer.link!.queuedBytes).toBeGreaterThan(0); // the peer waits: its sink takes nothing
    listener.connection.resumeReading();
    await waitFor(() => payloadTexts(listener).length === 30, 3000, "all 30");
    expect(payloadTexts(listener)).toEqual([...texts("t0-", 10), ...texts("t1-", 10), ...texts("t2-", 10)]);
    expect(dialer.link!.queuedBytes).toBe(0);
  });

  test("paused by the handler in the middle of a Batch: the rest of it waits, in order, until resumed", async () => {
    const { dialer, listener } = await linkedPair();
    listener.onMessage = () => {
      if (listener.messages.length === 3) listener.connection.pauseReading();
    };
    await nextTurn();
    for (const t of texts("m", 10)) dialer.link!.send(text(t)); // the first alone, nine in one Batch
    await waitFor(() => listener.messages.length === 3, 3000, "three messages");
    await nextTurn();
    await nextTurn();
    expect(payloadTexts(listener)).toEqual(texts("m", 3));
    listener.onMessage = undefined;
    listener.connection.resumeReading();
    expect(payloadTexts(listener)).toEqual(texts("m", 10)); // handed up synchronously on resume
  });
});

describe("pausing a peer's reading on real sockets", () => {
  const pool = new PowPool({ size: 1 });
  const started: Transport[] = [];
  afterEach(async () => {
    for (const t of started.splice(0)) await t.stop();
  });
  afterAll(() => pool.close());

  test("TCP makes the sender wait (its link queue grows) while the receiver holds the link paused; resumed, nothing is lost", async () => {
    const make = async () => {
      const t = new Transport({ identity: loadIdentity(generateEd25519Pem()), host: "127.0.0.1", port: 0, difficulty: 2, maxDifficulty: 8, pow: pool, log: silentLogger });
      await t.start();
      started.push(t);
      return t;
    };
    const [sender, receiver] = [await make(), await make()];
    const got: string[] = [];
    receiver.events = { linkUp() {}, linkDown() {}, message: (_p, m) => void (m.kind?.$case === "payload" && got.push(new TextDecoder().decode(m.kind.value.data))) };
    await sender.dial("127.0.0.1", receiver.port);
    await waitFor(() => receiver.linked().length === 1, 3000, "the receiver's side");
    const link = sender.linked()[0]!;
    expect(receiver.pauseReading(sender.localId)).toBe(true);
    expect(receiver.isReadingPaused(sender.localId)).toBe(true);
    // Items until the kernel buffers are full and the sender's own queue holds some (bounded by its 1 MiB).
    const filler = "x".repeat(4000);
    let sent = 0;
    for (let turn = 0; turn < 500 && link.queuedBytes < 128 * 1024; turn++) {
      for (let i = 0; i < 16; i++) expect(sender.send(receiver.localId, text(`${sent++} ${filler}`), true)).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    expect(link.queuedBytes).toBeGreaterThan(0);
    const arrivedWhilePaused = got.length;
    expect(arrivedWhilePaused).toBeLessThan(sent);
    expect(receiver.resumeReading(sender.localId)).toBe(true);
    await waitFor(() => got.length === sent, 10_000, "every item after the resume");
    expect(got.map((g) => Number(g.split(" ")[0]))).toEqual(Array.from({ length: sent }, (_, i) => i));
    expect([link.droppedMessages, link.closed]).toEqual([0, false]);
  });
});
