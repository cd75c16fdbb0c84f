// Two production Connections wired to each other in memory (test/p2p/memory-pair.ts), no sockets: the handshake,
// traffic both ways, rekeys, backpressure, and every reason a handshake or a link ends with, as each side reports it.
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import type { PowSolver } from "../../src/p2p/connection.ts";
import { encodeFrame } from "../../src/p2p/frame.ts";
import { LinkErrorCode, type LinkMessage } from "../../src/p2p/proto/gossip.ts";
import type { CloseReason, HandshakeFailure } from "../../src/p2p/reasons.ts";
import { LINK_KIND_FIELD, SUPPORTED_FEATURES, encodeLinkMessage } from "../../src/p2p/wire.ts";
import { waitFor } from "../wait-for.ts";
import { DIALED, SEEN, memoryPair, newIdentity, nextTurn, payloadTexts, sealAs, type PairOptions, type Side } from "./memory-pair.ts";
import { solvePow } from "./solve-pow.ts";

type Pair = ReturnType<typeof memoryPair>;

const text = (t: string): LinkMessage => ({
  kind: { $case: "payload", value: { messageId: randomBytes(32), ttl: 3, dataType: 540, data: new TextEncoder().encode(t) } },
});

async function linked(options: PairOptions = {}): Promise<Pair> {
  const pair = memoryPair(options);
  await waitFor(() => pair.dialer.link && pair.listener.link, 3000, "both links up");
  return pair;
}

/** How a side ended: its handshake failure, or its link's close reason (undefined while it runs). */
const outcome = (s: Side): HandshakeFailure | CloseReason | undefined => s.failed ?? s.closeReason;

async function ended(pair: Pair): Promise<{ dialer: string; listener: string }> {
  await waitFor(() => outcome(pair.dialer) && outcome(pair.listener), 3000, "both sides to end");
  return { dialer: outcome(pair.dialer)!, listener: outcome(pair.listener)! };
}

const lengthHeader = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
};

/** A solver that works only when aborted (then rejects): the handshake stays in "solving". */
function stuckSolver(): PowSolver & { aborted: () => boolean } {
  let signalSeen: AbortSignal | undefined;
  return {
    solve: (_p, _d, signal) =>
      new Promise((_, reject) => {
        signalSeen = signal;
        signal?.addEventListener("abort", () => reject(signal.reason));
      }),
    aborted: () => signalSeen?.aborted === true,
  };
}

describe("a connection pair in memory", () => {
  test("the handshake authenticates both sides, and each describes the link from where it stands", async () => {
    const { dialer, listener } = await linked();
    expect(dialer.link!.info).toEqual({
      peerId: listener.identity.idHex,
      remoteHost: DIALED.host,
      remotePort: DIALED.port,
      listenPort: DIALED.port,
      inbound: false,
      initiatorId: dialer.identity.idHex,
      features: SUPPORTED_FEATURES,
      rttMs: expect.any(Number),
    });
    expect(listener.link!.info).toEqual({
      peerId: dialer.identity.idHex,
      remoteHost: SEEN.host,
      remotePort: SEEN.port,
      listenPort: 7002, // what the dialer said it listens on
      inbound: true,
      initiatorId: dialer.identity.idHex,
      features: SUPPORTED_FEATURES,
      rttMs: expect.any(Number),
    });
    expect(dialer.session!.handshakeHash).toEqual(listener.session!.handshakeHash);
    expect([dialer.connection.phase, listener.connection.phase]).toEqual(["link", "link"]);
    expect(listener.connection.dhCount).toBe(3);
    // Hello and M2 one way, M1 and M3 the other.
    expect([dialer.out.writes, listener.out.writes]).toEqual([2, 2]);
  });

  test("messages flow both ways in order; on an idle link the first of a turn leaves at once, under load a turn is one frame", async () => {
    const { dialer, listener } = await linked();
    const batch = (tag: string, from: number) => Array.from({ length: 50 }, (_, i) => `${tag}${from + i}`);
    for (const turn of [0, 50]) {
      for (const t of batch("d", turn)) expect(dialer.link!.send(text(t))).toBe(true);
      for (const t of batch("l", turn)) expect(listener.link!.send(text(t))).toBe(true);
      await nextTurn();
    }
    await waitFor(() => payloadTexts(listener).length === 100 && payloadTexts(dialer).length === 100, 3000, "100 each way");
    expect(payloadTexts(listener)).toEqual([...batch("d", 0), ...batch("d", 50)]);
    expect(payloadTexts(dialer)).toEqual([...batch("l", 0), ...batch("l", 50)]);
    // Turn 1: the first alone, 49 in a Batch; turn 2 follows a turn of many: all 50 in one Batch.
    expect([dialer.link!.framesOut, dialer.link!.messagesOut, listener.link!.framesIn]).toEqual([3, 100, 3]);
  });

  test("a message to an idle link is written before send() returns; one behind a backlog waits for the turn's end", async () => {
    const { dialer } = await linked();
    await nextTurn();
    const before = dialer.out.writes;
    expect(dialer.link!.send(text("alone"))).toBe(true);
    expect([dialer.out.writes - before, dialer.link!.queuedBytes]).toEqual([1, 0]); // in the sink already
    expect(dialer.link!.send(text("second"))).toBe(true);
    expect(dialer.out.writes - before).toBe(1); // waits to share a frame with the rest of the turn
    await nextTurn();
    expect(dialer.out.writes - before).toBe(2);
    // The last turn sent two: this turn's first message waits for the turn's end (one write per turn under load) …
    const writes = dialer.out.writes;
    expect(dialer.link!.send(text("under load"))).toBe(true);
    expect(dialer.out.writes).toBe(writes);
    await nextTurn();
    expect(dialer.out.writes).toBe(writes + 1);
    // … and after a turn of one, the next first message leaves at once again.
    expect(dialer.link!.send(text("idle again"))).toBe(true);
    expect(dialer.out.writes).toBe(writes + 2);
    await nextTurn();
    // The sink takes nothing: the next turn's first message finds bytes waiting and is not written at once.
    dialer.out.paused = true;
    expect(dialer.link!.send(text("blocked"))).toBe(true);
    expect(dialer.link!.queuedBytes).toBeGreaterThan(0);
    expect(dialer.link!.send(text("behind"))).toBe(true);
    const framesBefore = dialer.link!.framesOut;
    await nextTurn();
    expect(dialer.link!.framesOut - framesBefore).toBe(1);
  });

  test("with a rekey every 3 frames, 20 frames each way arrive; a side that does not rekey fails at the 4th", async () => {
    const { dialer, listener } = await linked({ both: { rekeyInterval: 3 } });
    for (let i = 0; i < 20; i++) {
      dialer.link!.send(text(`d${i}`));
      listener.link!.send(text(`l${i}`));
      await nextTurn(); // one frame each way per turn
    }
    const expected = (tag: string) => Array.from({ length: 20 }, (_, i) => `${tag}${i}`);
    await waitFor(() => payloadTexts(listener).length === 20 && payloadTexts(dialer).length === 20, 3000, "20 each way");
    expect(payloadTexts(listener)).toEqual(expected("d"));
    expect(payloadTexts(dialer)).toEqual(expected("l"));
    expect([listener.link!.framesIn, dialer.link!.framesIn]).toEqual([20, 20]);

    const odd = await linked({ dialer: { rekeyInterval: 3 } }); // the listener keeps the default interval
    for (let i = 0; i < 6; i++) {
      odd.dialer.link!.send(text(`x${i}`));
      await nextTurn();
    }
    expect(await ended(odd)).toEqual({ dialer: "closed-by-peer", listener: "decrypt-failed" });
    expect(payloadTexts(odd.listener)).toEqual(["x0", "x1", "x2"]);
  });

  test("while the peer takes no bytes, frames wait in the send queue; they go out in order once it drains", async () => {
    const { dialer, listener } = await linked();
    dialer.out.paused = true;
    const writesBefore = dialer.out.writes;
    for (let i = 0; i < 10; i++) {
      dialer.link!.send(text(`q${i}`));
      await nextTurn();
    }
    expect(dialer.out.writes).toBe(writesBefore);
    expect(payloadTexts(listener)).toEqual([]);
    dialer.out.paused = false;
    dialer.connection.drained();
    await waitFor(() => payloadTexts(listener).length === 10, 3000, "the queued frames");
    expect(payloadTexts(listener)).toEqual(Array.from({ length: 10 }, (_, i) => `q${i}`));
    expect(outcome(dialer)).toBeUndefined();
  });
});

describe("why a link closes", () => {
  // Bytes arriving at the listener after an honest "before" frame (a chunk of its own: a framing error discards the
  // whole chunk it is in); an honest "after" frame follows them in their chunk.
  const hostile: [string, (dialer: Side) => Uint8Array, CloseReason][] = [
    ["a zero frame length", () => lengthHeader(0), "empty-frame"],
    ["a frame length over the maximum", () => lengthHeader(0xffffffff), "frame-too-large"],
    ["a frame not sealed by the peer", () => encodeFrame(randomBytes(40)), "decrypt-failed"],
    ["a frame sealed out of order", (d) => sealAs(d, text("skipped")) && sealAs(d, text("out of order")), "decrypt-failed"],
    ["a message whose length runs past its end", (d) => sealAs(d, Uint8Array.from([0x0a, 0x7f, 0x0a, 0x20])), "undecodable"],
    ["a message of no known kind", (d) => sealAs(d, Uint8Array.from([0x08, 0x01])), "unknown-message"],
    ["an empty Batch", (d) => sealAs(d, { kind: { $case: "batch", value: { messages: [] } } }), "malformed"],
    [
      "a Batch inside a Batch",
      (d) => sealAs(d, { kind: { $case: "batch", value: { messages: [encodeLinkMessage({ kind: { $case: "batch", value: { messages: [encodeLinkMessage(text("x"))] } } })] } } }),
      "malformed",
    ],
    ["a LinkError of a code we do not know", (d) => sealAs(d, { kind: { $case: "error", value: { code: 99 as LinkErrorCode, message: "?" } } }), "remote-error:99"],
  ];
  for (const [name, bytes, reason] of hostile) {
    test(`${name}: ${reason}, nothing after it is delivered, the peer sees closed-by-peer`, async () => {
      const pair = await linked();
      const { dialer, listener } = pair;
      const before = sealAs(dialer, text("before"));
      const bad = bytes(dialer);
      pair.dialer.out.inject(before);
      pair.dialer.out.inject(Buffer.concat([bad, sealAs(dialer, text("after"))]));
      expect(await ended(pair)).toEqual({ dialer: "closed-by-peer", listener: reason });
      expect(payloadTexts(listener)).toEqual(["before"]);
      expect(listener.connection.phase).toBe("closed");
    });
  }

  test("a deliberate close sends a LinkError: the peer reports remote-error with its code name", async () => {
    const pair = await linked();
    pair.dialer.link!.send(text("last words"));
    pair.dialer.link!.closeWithError(LinkErrorCode.TOO_MANY_LINKS, "too-many-links");
    expect(await ended(pair)).toEqual({ dialer: "too-many-links", listener: "remote-error:TOO_MANY_LINKS" });
    expect(payloadTexts(pair.listener)).toEqual(["last words"]);
  });

  test("the byte stream failing under one side: socket-error there, closed-by-peer on the other", async () => {
    const pair = await linked();
    pair.dialer.connection.closed("socket-error");
    expect(await ended(pair)).toEqual({ dialer: "socket-error", listener: "closed-by-peer" });
  });

  // The same timings twice: once the dialer's pongs reach the listener, once they cannot (its pipe takes nothing).
  const liveness = { pingIntervalMs: 20, idleTimeoutMs: 500 };
  test("pings are answered with pongs, which keep a link with no other traffic up past its idle timeout", async () => {
    const pair = await linked({ listener: liveness, dialer: { pingIntervalMs: 3_600_000, idleTimeoutMs: 3_600_000 } });
    // 60 pongs answer 60 pings sent ≥ 20 ms apart: more than twice the idle timeout has passed.
    await waitFor(() => pair.listener.link!.framesIn >= 60 || outcome(pair.listener), 10_000, "60 pongs");
    expect(outcome(pair.listener)).toBeUndefined();
    expect(pair.listener.link!.framesIn).toBeGreaterThanOrEqual(60);
    expect(pair.dialer.messages).toEqual([]); // pings and pongs never reach the owner
    pair.dialer.link!.close("shutting-down");
  }, 15_000);

  test("a peer that answers nothing: idle-timeout", async () => {
    const pair = await linked({ listener: liveness, dialer: { pingIntervalMs: 3_600_000, idleTimeoutMs: 3_600_000 } });
    pair.dialer.out.paused = true;
    await waitFor(() => outcome(pair.listener), 5_000, "the listener to give up");
    expect(outcome(pair.listener)).toBe("idle-timeout");
    expect(pair.listener.link!.framesIn).toBe(0);
  }, 10_000);

  test("past the send buffer, droppable messages are dropped and a control message closes the link: send-buffer-full", async () => {
    const pair = await linked({ dialer: { sendBufferBytes: 4096 } });
    const { dialer } = pair;
    dialer.out.paused = true;
    const big = (t: string) => text(t.padEnd(3000, "."));
    expect(dialer.link!.send(big("queued"))).toBe(true);
    await nextTurn(); // sealed and queued: the queue holds ~3 KiB the pipe did not take
    expect(dialer.link!.send(big("dropped"), true)).toBe(false);
    expect(dialer.link!.droppedMessages).toBe(1);
    await nextTurn();
    expect(outcome(dialer)).toBeUndefined(); // dropping is no reason to close
    const peers: LinkMessage = { kind: { $case: "peerList", value: { peers: [{ host: "h".repeat(200), port: 1, id: new Uint8Array(0) }] } } };
    for (let i = 0; i < 20 && !outcome(dialer); i++) {
      dialer.link!.send(peers); // not droppable
      await nextTurn();
    }
    expect(await ended(pair)).toEqual({ dialer: "send-buffer-full", listener: "closed-by-peer" });
  });
});

describe("why a handshake fails", () => {
  const cases: [string, () => Pair, { dialer: string; listener: string }][] = [
    ["the listener's deadline passes while the dialer works", () => memoryPair({ listener: { handshakeTimeoutMs: 50 }, dialerRole: { pow: stuckSolver() } }), { dialer: "closed-by-peer", listener: "handshake-timeout" }],
    ["the dialer's solver fails", () => memoryPair({ dialerRole: { pow: { solve: () => Promise.reject(new Error("no workers")) } } }), { dialer: "pow-failed", listener: "closed-by-peer" }],
    ["the solver returns a nonce of the wrong size (our bug)", () => memoryPair({ dialerRole: { pow: { solve: async () => ({ nonce: new Uint8Array(7) }) } } }), { dialer: "internal-error", listener: "closed-by-peer" }],
    ["a demand above the dialer's maximum", () => memoryPair({ difficulty: 9, dialerRole: { maxDifficulty: 8 } }), { dialer: "difficulty-too-high", listener: "closed-by-peer" }],
    ["another responder than expected", () => memoryPair({ dialerRole: { expectedPeerId: newIdentity().idHex } }), { dialer: "unexpected-peer", listener: "closed-by-peer" }],
    [
      "work that misses the difficulty",
      () => memoryPair({ difficulty: 8, dialerRole: { pow: { solve: async (prefix) => ({ nonce: solvePow(prefix, 0, 8) }) } } }),
      { dialer: "closed-by-peer", listener: "bad-pow" },
    ],
    [
      "an initiator whose key does not hash to the ID it claims",
      () => {
        const other = newIdentity();
        return memoryPair({ dialer: { identity: { ...newIdentity(), id: other.id, idHex: other.idHex } } });
      },
      { dialer: "closed-by-peer", listener: "id-mismatch" }, // the dialer's side completed: its link sees the hang-up
    ],
  ];
  for (const [name, start, reasons] of cases) {
    test(`${name}: ${reasons.dialer} / ${reasons.listener}`, async () => {
      expect(await ended(start())).toEqual(reasons);
    });
  }

  test("dialing our own identity: self-connection at the Hello", async () => {
    const identity = newIdentity();
    const pair = memoryPair({ dialer: { identity }, listener: { identity } });
    expect(await ended(pair)).toEqual({ dialer: "self-connection", listener: "closed-by-peer" });
  });

  test("a deadline ends the work in progress: the solver is aborted", async () => {
    const solver = stuckSolver();
    const pair = memoryPair({ dialer: { handshakeTimeoutMs: 50 }, listener: { handshakeTimeoutMs: 60_000 }, dialerRole: { pow: solver } });
    expect(await ended(pair)).toEqual({ dialer: "handshake-timeout", listener: "closed-by-peer" });
    expect(solver.aborted()).toBe(true);
  });

  test("a frame from the responder while the dialer solves: unexpected-frame", async () => {
    const pair = memoryPair({ dialerRole: { pow: stuckSolver() } });
    await waitFor(() => pair.dialer.connection.phase === "solving", 3000, "the dialer solving");
    pair.listener.out.inject(encodeFrame(randomBytes(20)));
    expect(await ended(pair)).toEqual({ dialer: "unexpected-frame", listener: "closed-by-peer" });
  });

  test("a Hello that does not decode: malformed; M3 changed in transit: decrypt-failed", async () => {
    const hello = memoryPair();
    hello.listener.out.tamper = (bytes, i) => (i === 0 ? encodeFrame(Uint8Array.from([0x0a, 0x7f])) : bytes);
    expect(await ended(hello)).toEqual({ dialer: "malformed", listener: "closed-by-peer" });

    const m3 = memoryPair();
    m3.dialer.out.tamper = (bytes, i) => {
      if (i === 1) bytes[bytes.length - 1]! ^= 1; // the Noise tag of M3
      return bytes;
    };
    expect(await ended(m3)).toEqual({ dialer: "closed-by-peer", listener: "decrypt-failed" });
    expect(m3.listener.link).toBeUndefined();
  });

  test("an oversize length before M1: frame-too-large, without any Diffie-Hellman", async () => {
    const pair = memoryPair({ dialerRole: { pow: stuckSolver() } });
    pair.dialer.out.inject(lengthHeader(0xffffffff));
    expect(await ended(pair)).toEqual({ dialer: "closed-by-peer", listener: "frame-too-large" });
    expect(pair.listener.connection.dhCount).toBe(0);
  });

  test("aborted by its owner (shutting down) on one side, closed-by-peer on the other", async () => {
    const pair = memoryPair({ dialerRole: { pow: stuckSolver() } });
    await waitFor(() => pair.dialer.connection.phase === "solving", 3000, "the dialer solving");
    pair.listener.connection.abort("shutting-down");
    expect(await ended(pair)).toEqual({ dialer: "closed-by-peer", listener: "shutting-down" });
  });
});
