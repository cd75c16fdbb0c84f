/**
 * Hostile handshakes (issue 8, cases 12–18) against a real node while the canary keeps announcing and receiving
 * through it. The target's log tells why each attempt failed and how many Diffie-Hellman operations it cost (`dh`);
 * the pure state machine's own checks are in test/p2p/handshake.test.ts.
 */
import { afterAll, afterEach, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import type { TCPSocketListener } from "bun";
import { randomBytes } from "node:crypto";
import { silentLogger } from "../../src/log.ts";
import { encodeFrame } from "../../src/p2p/frame.ts";
import { generateStaticKeyPair } from "../../src/p2p/identity.ts";
import { generateKeyPair } from "../../src/p2p/noise.ts";
import { leadingZeroBits, powDigest, powPrefix } from "../../src/p2p/pow-input.ts";
import { HandshakeInit, Hello } from "../../src/p2p/proto/gossip.ts";
import { Transport } from "../../src/p2p/transport.ts";
import { decodeMessage, encodeMessage } from "../../src/p2p/wire.ts";
import { waitFor } from "../api/client.ts";
import { createHarness } from "../net-harness.ts";
import { type Canary, handshakeFailures, startCanary } from "./canary.ts";
import { startFrameRelay, type Direction } from "./frame-relay.ts";
import { RawPeer, newIdentity, solvePow } from "./raw-peer.ts";

const h = createHarness();
// Long enough for a failing case to report what it waited for instead of hitting the test timeout.
setDefaultTimeout(20_000);
const DIFFICULTY = 8;
const DEADLINE_MS = 1500;
let canary: Canary;
const peers: RawPeer[] = [];
const cleanups: (() => void)[] = [];

beforeAll(async () => {
  canary = await startCanary(h, { target: { powDifficulty: DIFFICULTY, transport: { handshakeTimeoutMs: DEADLINE_MS } } });
});
afterEach(() => {
  for (const p of peers.splice(0)) p.close();
  for (const c of cleanups.splice(0)) c();
});
afterAll(async () => {
  await canary.stop();
  await h.cleanup();
  await h.close();
});

async function raw(options: Parameters<typeof RawPeer.connect>[1] = {}): Promise<RawPeer> {
  const p = await RawPeer.connect(canary.target.transport.port, options);
  peers.push(p);
  return p;
}

const failuresFrom = (n: number) => handshakeFailures(canary.log).slice(n);
const linkedTo = (id: string) => canary.target.transport.linked().some((l) => l.info.peerId === id);

type Work = (real: Uint8Array, parts: { hello: Hello; id: Uint8Array; ephemeral: Uint8Array }) => Uint8Array;

/** M1 by hand: any ephemeral and ID, and a nonce from `work` (by default honest work over the real PoW prefix). */
function craftedInit(helloBody: Uint8Array, opts: { ephemeral?: Uint8Array; work?: Work } = {}): Uint8Array {
  const hello = decodeMessage(Hello, helloBody, "Hello");
  const id = newIdentity().id;
  const ephemeral = opts.ephemeral ?? generateKeyPair().publicKey;
  const real = powPrefix(hello.challenge, hello.responderId, id, ephemeral);
  const nonce = (opts.work ?? ((prefix) => solvePow(prefix, hello.difficulty)))(real, { hello, id, ephemeral });
  return encodeMessage(HandshakeInit, { ephemeral, initiatorId: id, powNonce: nonce });
}

/** Enough work over a prefix that differs from the real one in one part, and that misses over the real one. */
function workElsewhere(vary: "challenge" | "responderId"): Work {
  return (real, { hello, id, ephemeral }) => {
    for (;;) {
      const other = { ...hello, [vary]: randomBytes(32) };
      const nonce = solvePow(powPrefix(other.challenge, other.responderId, id, ephemeral), hello.difficulty);
      if (leadingZeroBits(powDigest(real, nonce)) < hello.difficulty) return nonce;
    }
  };
}

test("12. garbage, an HTTP request, a TLS ClientHello or an SSH banner: closed at once, no Diffie-Hellman", async () => {
  const from = handshakeFailures(canary.log).length;
  const plausible = new Uint8Array(40);
  plausible.set([0, 0, 0, 36]);
  plausible.set(randomBytes(36), 4); // a sane length and then noise: decoded, refused
  const inputs = [
    randomBytes(64),
    plausible,
    new TextEncoder().encode("GET / HTTP/1.1\r\nHost: gossip\r\n\r\n"),
    Uint8Array.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03, ...randomBytes(32)]),
    new TextEncoder().encode("SSH-2.0-OpenSSH_9.6\r\n"),
  ];
  for (const [i, bytes] of inputs.entries()) {
    const p = await raw();
    if (i % 2 === 0) await p.nextFrame(); // half of them wait for the Hello, half talk first
    p.write(bytes);
    await p.waitClosed();
  }
  // Closed for what the bytes were, not by the deadline: each failure names a framing or decoding reason.
  const failures = failuresFrom(from);
  expect(failures.length).toBe(inputs.length);
  for (const f of failures) expect(["frame-too-large", "malformed"]).toContain(f.reason);
  expect(failures.map((f) => f.dh)).toEqual(Array(inputs.length).fill(0));
  await canary.check();
});

test("13. wrong work, work for another challenge or responder, too little work: refused before any Diffie-Hellman", async () => {
  const from = handshakeFailures(canary.log).length;
  const attempts: Work[] = [
    (real) => solvePow(real, 0, DIFFICULTY), // whatever nonce comes first and misses
    (real) => solvePow(real, DIFFICULTY - 2, DIFFICULTY), // honest work, too little of it
    workElsewhere("challenge"), // work done for another connection
    workElsewhere("responderId"), // work done for another node
  ];
  for (const attempt of attempts) {
    const p = await raw();
    p.sendFrame(craftedInit(await p.nextFrame(), { work: attempt }));
    await p.waitClosed();
  }
  expect(failuresFrom(from)).toEqual(Array(attempts.length).fill({ reason: "bad-pow", dh: 0 }));
  await canary.check();
});

test("14. a replayed M1, or a whole replayed transcript, never makes a session", async () => {
  const honest = await raw();
  await honest.handshake();
  await waitFor(() => linkedTo(honest.identity.idHex), 3000, "the honest link");
  const [m1, m3] = honest.sentFrames;
  const from = handshakeFailures(canary.log).length;
  // While the honest link is up, and after it is gone.
  for (const honestUp of [true, false]) {
    if (!honestUp) {
      honest.close();
      await waitFor(() => !linkedTo(honest.identity.idHex), 3000, "the honest link gone");
    }
    for (const whole of [false, true]) {
      const p = await raw();
      await p.nextFrame();
      p.sendFrame(m1!);
      if (whole) p.sendFrame(m3!);
      await p.waitClosed();
    }
  }
  const failures = failuresFrom(from);
  expect(failures.length).toBe(4);
  // A fresh challenge makes the old work miss; had it hit (1 in 256), M3 cannot open under the new keys.
  for (const f of failures) expect(["bad-pow", "decrypt-failed"]).toContain(f.reason);
  expect(linkedTo(honest.identity.idHex)).toBe(false);
  await canary.check();
});

test("15. every single byte of Hello, M1, M2 and M3 flipped in transit: every flip fails, never a half-open session", async () => {
  const relay = startFrameRelay(canary.target.transport.port);
  cleanups.push(relay.stop);
  // Not listening: it tells the target port 0, so the target's membership has no address to dial it back on.
  const probe = new Transport({ identity: newIdentity(), host: "127.0.0.1", port: 0, difficulty: 0, maxDifficulty: 12, pow: h.pow, log: silentLogger });
  cleanups.push(() => void probe.stop());
  const target = canary.target;
  const idle = () =>
    probe.linked().length === 0 && !linkedTo(probe.localId) && relay.connections === 0 && target.transport.stats().pendingHandshakes === 0;

  // A clean run through the relay learns the message sizes (fixed for Ed25519 identities).
  const sizes: Record<Direction, number[]> = { toTarget: [], toDialer: [] };
  relay.setTamper((d, i, body) => ((sizes[d][i] = body.length), body));
  await probe.dial("127.0.0.1", relay.port);
  probe.disconnect(target.identity.idHex, "clean run done");
  await waitFor(idle, 3000, "clean run torn down");
  // As proto/gossip.proto makes them for Ed25519 identities (test/p2p/handshake.test.ts spells the sums out): Hello
  // at difficulty 8 and M1 have fixed sizes; M2 and M3 carry an IdentityProof of 112 bytes plus the sender's listen
  // port field (none for the probe, which listens nowhere) and its features field (2 bytes: both offer trees).
  const portField = (port: number) => (port === 0 ? 0 : 1 + (port < 128 ? 1 : port < 16384 ? 2 : 3));
  const featuresField = 2;
  const handshakeSizes = { toDialer: sizes.toDialer.slice(0, 2), toTarget: sizes.toTarget.slice(0, 2) }; // then link frames
  expect(handshakeSizes).toEqual({ toDialer: [72, 211 + portField(target.transport.port) + featuresField], toTarget: [78, 179 + featuresField] });

  const steps: [string, Direction, number][] = [["Hello", "toDialer", 0], ["M1", "toTarget", 0], ["M2", "toDialer", 1], ["M3", "toTarget", 1]];
  const outcomes = new Map<string, number>();
  let flips = 0;
  for (const [name, direction, index] of steps) {
    for (let at = 0; at < sizes[direction][index]!; at++) {
      relay.setTamper((d, i, body) => {
        if (d === direction && i === index) {
          if (body.length !== sizes[direction][index]) throw new Error(`${name} changed size`);
          body[at]! ^= 0x01;
          flips++;
        }
        return body;
      });
      const outcome = await probe.dial("127.0.0.1", relay.port).then(
        () => "initiator-done", // only a flipped M3 gets this far: the responder must then refuse it
        (e: { code?: string }) => e.code ?? "error",
      );
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      if (outcome === "initiator-done" && name !== "M3") throw new Error(`${name} byte ${at} went unnoticed`);
      await waitFor(idle, 3000, `no session left after flipping ${name} byte ${at}`);
    }
  }
  expect(flips).toBe(72 + 78 + 211 + portField(target.transport.port) + featuresField + 179 + featuresField);
  expect(outcomes.get("initiator-done")).toBe(179 + featuresField); // every flip of M3, and only those
  await canary.check();
}, 60_000);

test("16. a responder demanding more work than our maximum: the node aborts the dial before any work", async () => {
  const target = canary.target;
  const listeners: TCPSocketListener<undefined>[] = [];
  cleanups.push(() => listeners.forEach((l) => l.stop(true)));
  const fake = (difficulty: number) => {
    const seen = { bytes: 0, closed: false };
    const l = Bun.listen<undefined>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open: (s) => void s.write(encodeFrame(encodeMessage(Hello, { version: 1, difficulty, challenge: randomBytes(32), responderId: randomBytes(32) }))),
        data: (_s, chunk) => void (seen.bytes += chunk.length),
        close: () => void (seen.closed = true),
      },
    });
    listeners.push(l);
    return { port: l.port, seen };
  };
  const work = h.pow.stats().attempts;
  const greedy = fake(40);
  const code = await target.transport.dial("127.0.0.1", greedy.port).then(() => "linked", (e: { code?: string }) => e.code);
  expect(code).toBe("difficulty-too-high");
  await waitFor(() => greedy.seen.closed, 3000, "the node hangs up");
  expect(greedy.seen.bytes).toBe(0); // no M1: no work was done
  expect(h.pow.stats().attempts).toBe(work);

  const fair = fake(8); // exactly the node's maximum (net-harness: maxPowDifficulty 8): it works and sends M1
  const dial = target.transport.dial("127.0.0.1", fair.port).catch(() => {});
  await waitFor(() => fair.seen.bytes > 0, 3000, "M1 at the maximum difficulty");
  listeners.pop()!.stop(true);
  await dial;
  await canary.check();
});

test("17. an identity key that does not hash to the claimed ID, zero or low-order keys: closed, no session", async () => {
  const from = handshakeFailures(canary.log).length;
  const someoneElse = newIdentity();
  const liar = await raw({ identity: { ...newIdentity(), id: someoneElse.id, idHex: someoneElse.idHex } });
  await liar.handshake();
  await liar.waitClosed();

  const lowOrder = Buffer.from("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", "hex");
  for (const ephemeral of [new Uint8Array(32), lowOrder]) {
    const p = await raw();
    p.sendFrame(craftedInit(await p.nextFrame(), { ephemeral }));
    await p.waitClosed();
  }
  for (const publicKey of [new Uint8Array(32), lowOrder]) {
    const p = await raw({ staticKeys: { ...generateStaticKeyPair(), publicKey } });
    await p.handshake();
    await p.waitClosed();
  }
  expect(failuresFrom(from).map((f) => f.reason)).toEqual(["id-mismatch", "bad-point", "bad-point", "bad-point", "bad-point"]);
  expect(linkedTo(someoneElse.idHex)).toBe(false);
  expect(canary.target.transport.linked().length).toBe(1); // the canary's only
  await canary.check();
});

test("18. a handshake whose steps are late but inside the deadline completes; one past it is closed", async () => {
  const from = handshakeFailures(canary.log).length;
  const pause = () => Bun.sleep(DEADLINE_MS / 4);
  const slow = await raw();
  await slow.handshake({ beforeInit: pause, beforeFinal: pause }); // half the deadline in all
  await waitFor(() => linkedTo(slow.identity.idHex), 3000, "the slow but timely link");

  const lateFinal = await raw();
  await lateFinal.handshake({ beforeFinal: () => lateFinal.waitClosed(DEADLINE_MS * 3) });
  const lateInit = await raw();
  await lateInit.nextFrame();
  await lateInit.waitClosed(DEADLINE_MS * 3);
  expect(failuresFrom(from).map((f) => f.reason)).toEqual(["handshake-timeout", "handshake-timeout"]);
  expect(linkedTo(lateFinal.identity.idHex)).toBe(false);
  await canary.check();
}, 20_000);
