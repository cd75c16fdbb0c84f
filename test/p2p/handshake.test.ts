// The pure handshake: two in-memory parties, a relay between them that can tamper, replay or substitute frames.
import { describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { P2PProtocolError } from "../../src/errors.ts";
import {
  InitiatorHandshake,
  PROTOCOL_VERSION,
  ResponderHandshake,
  type HandshakeResult,
} from "../../src/p2p/handshake.ts";
import { generateEd25519Pem, generateStaticKeyPair, loadIdentity, type Identity } from "../../src/p2p/identity.ts";
import { leadingZeroBits, powDigest, powPrefix, verifyPow } from "../../src/p2p/pow-input.ts";
import { HandshakeInit, Hello } from "../../src/p2p/proto/gossip.ts";
import { decodeMessage, encodeMessage } from "../../src/p2p/wire.ts";
import { codeOf } from "./error-code.ts";

const alice = loadIdentity(generateEd25519Pem());
const bob = loadIdentity(generateEd25519Pem());
// RSA keygen is slow: one 4096-bit key (VoidPhone's size, PKCS#1 PEM as `openssl genrsa -traditional` writes it).
const rsaPem = generateKeyPairSync("rsa", {
  modulusLength: 4096,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
}).privateKey;
const carol = loadIdentity(rsaPem);

/** Plain reference loop: the first nonce (as u64 BE counter) whose digest has ≥ d leading zero bits. */
function solvePow(prefix: Uint8Array, difficulty: number, accept = (_digest: Uint8Array) => true): Uint8Array {
  const nonce = new Uint8Array(8);
  const view = new DataView(nonce.buffer);
  for (let i = 0n; ; i++) {
    view.setBigUint64(0, i);
    const digest = powDigest(prefix, nonce);
    if (leadingZeroBits(digest) >= difficulty && accept(digest)) return nonce;
  }
}

interface Parties {
  responder: ResponderHandshake;
  initiator: InitiatorHandshake;
}

function parties(
  opts: {
    respId?: Identity;
    initId?: Identity;
    difficulty?: number;
    maxDifficulty?: number;
    expectedPeerId?: Uint8Array | string;
    rekeyInterval?: number;
  } = {},
): Parties {
  return {
    responder: new ResponderHandshake({
      identity: opts.respId ?? alice,
      staticKeys: generateStaticKeyPair(),
      difficulty: opts.difficulty ?? 4,
      listenPort: 6001,
      rekeyInterval: opts.rekeyInterval,
    }),
    initiator: new InitiatorHandshake({
      identity: opts.initId ?? bob,
      staticKeys: generateStaticKeyPair(),
      maxDifficulty: opts.maxDifficulty ?? 12,
      expectedPeerId: opts.expectedPeerId,
      listenPort: 7002,
      rekeyInterval: opts.rekeyInterval,
    }),
  };
}

type Tamper = (step: number, body: Uint8Array) => Uint8Array;

/** Runs Hello, M1, M2, M3 through `tamper`; returns both results and the four bodies as sent. */
function runHandshake({ responder, initiator }: Parties, tamper: Tamper = (_s, b) => b) {
  const sent: Uint8Array[] = [];
  const relay = (step: number, body: Uint8Array) => {
    sent.push(body);
    return tamper(step, body);
  };
  const { powPrefix: prefix, difficulty } = initiator.recvHello(relay(0, responder.hello()));
  const m2 = responder.recvInit(relay(1, initiator.init(solvePow(prefix, difficulty))));
  const { send: m3, result: initiatorResult } = initiator.recvResponse(relay(2, m2));
  const responderResult = responder.recvFinal(relay(3, m3));
  return { initiatorResult, responderResult, sent };
}


function expectTalk(a: HandshakeResult, b: HandshakeResult, frames = 5): void {
  for (let i = 0; i < frames; i++) {
    const ping = new TextEncoder().encode(`ping ${i}`);
    expect(b.recvCipher.decrypt(a.sendCipher.encrypt(ping))).toEqual(ping);
    const pong = new TextEncoder().encode(`pong ${i}`);
    expect(a.recvCipher.decrypt(b.sendCipher.encrypt(pong))).toEqual(pong);
  }
}

describe("a full handshake", () => {
  test("Ed25519 identities: both sides learn each other and agree on keys", () => {
    const p = parties({ rekeyInterval: 2 });
    const { initiatorResult: i, responderResult: r } = runHandshake(p);
    expect(i.remoteId).toEqual(alice.id);
    expect(i.remoteIdHex).toBe(alice.idHex);
    expect(i.remoteIdentityKeyDer).toEqual(alice.publicKeyDer);
    expect(i.remoteListenPort).toBe(6001);
    expect(r.remoteId).toEqual(bob.id);
    expect(r.remoteIdHex).toBe(bob.idHex);
    expect(r.remoteIdentityKeyDer).toEqual(bob.publicKeyDer);
    expect(r.remoteListenPort).toBe(7002);
    expect(i.handshakeHash).toEqual(r.handshakeHash);
    // Across several rekeys (every 2 frames), in both directions.
    expectTalk(i, r, 7);
    expect(p.responder.dhCount).toBe(3);
  });

  test("RSA-4096 (PKCS#1) responder and initiator", () => {
    const { initiatorResult: i, responderResult: r } = runHandshake(parties({ respId: carol, initId: bob }));
    expect(carol.kind).toBe("rsa");
    expect(i.remoteIdHex).toBe(carol.idHex);
    expectTalk(i, r);
    const back = runHandshake(parties({ respId: alice, initId: carol }));
    expect(back.responderResult.remoteIdHex).toBe(carol.idHex);
    expectTalk(back.initiatorResult, back.responderResult);
  });

  test("a listener-less initiator reports no port; expectedPeerId as hex matches", () => {
    const responder = new ResponderHandshake({ identity: alice, staticKeys: generateStaticKeyPair(), difficulty: 0 });
    const initiator = new InitiatorHandshake({
      identity: bob,
      staticKeys: generateStaticKeyPair(),
      maxDifficulty: 0,
      expectedPeerId: alice.idHex,
    });
    const { initiatorResult, responderResult } = runHandshake({ responder, initiator });
    expect(responderResult.remoteListenPort).toBeUndefined();
    expect(initiatorResult.remoteListenPort).toBeUndefined();
  });

  test("sessions are independent: a frame from one session does not open in another", () => {
    const one = runHandshake(parties());
    const two = runHandshake(parties());
    expect(one.initiatorResult.handshakeHash).not.toEqual(two.initiatorResult.handshakeHash);
    const frame = one.initiatorResult.sendCipher.encrypt(new Uint8Array([1, 2, 3]));
    expect(codeOf(() => two.responderResult.recvCipher.decrypt(frame))).toBe("decrypt-failed");
  });
});

describe("the proof-of-work gate", () => {
  /** Hello and the initiator's prefix, with M1 left to the test. */
  function atM1(difficulty: number) {
    const p = parties({ difficulty });
    const hello = p.responder.hello();
    const { powPrefix: prefix } = p.initiator.recvHello(hello);
    return { ...p, prefix };
  }

  test("a nonce that misses the difficulty is refused before any Diffie-Hellman", () => {
    const { responder, initiator, prefix } = atM1(8);
    const bad = solvePow(prefix, 0, (d) => leadingZeroBits(d) < 8);
    expect(codeOf(() => responder.recvInit(initiator.init(bad)))).toBe("bad-pow");
    expect(responder.dhCount).toBe(0);
    // The object is dead now.
    expect(codeOf(() => responder.recvInit(new Uint8Array(1)))).toBe("handshake-dead");
  });

  test("work done for another challenge does not count", () => {
    const { responder, initiator, prefix } = atM1(8);
    // Valid for another challenge and (chosen so, to stay deterministic) invalid for ours.
    let nonce: Uint8Array;
    for (let fill = 1; ; fill++) {
      const otherPrefix = new Uint8Array(prefix);
      otherPrefix.fill(fill, 0, 32);
      nonce = solvePow(otherPrefix, 8);
      if (!verifyPow(prefix, nonce, 8)) break;
    }
    expect(codeOf(() => responder.recvInit(initiator.init(nonce)))).toBe("bad-pow");
    expect(responder.dhCount).toBe(0);
  });

  test("work of a lower difficulty than demanded is refused", () => {
    const { responder, initiator, prefix } = atM1(8);
    const weak = solvePow(prefix, 3, (d) => leadingZeroBits(d) < 8);
    expect(codeOf(() => responder.recvInit(initiator.init(weak)))).toBe("bad-pow");
    expect(responder.dhCount).toBe(0);
  });

  test("the exact difficulty passes", () => {
    const { responder, initiator, prefix } = atM1(8);
    const exact = solvePow(prefix, 8);
    responder.recvInit(initiator.init(exact));
    expect(responder.dhCount).toBe(2); // ee and es for M2
  });

  test("the initiator refuses a difficulty above its maximum before doing anything", () => {
    const p = parties({ difficulty: 13, maxDifficulty: 12 });
    expect(codeOf(() => p.initiator.recvHello(p.responder.hello()))).toBe("difficulty-too-high");
    expect(codeOf(() => p.initiator.init(new Uint8Array(8)))).toBe("handshake-dead");
  });

  test("malformed M1 is refused before any Diffie-Hellman", () => {
    const { responder, initiator, prefix } = atM1(0);
    const good = decodeMessage(HandshakeInit, initiator.init(solvePow(prefix, 0)), "M1");
    const short = encodeMessage(HandshakeInit, { ...good, ephemeral: good.ephemeral.subarray(0, 31) });
    expect(codeOf(() => responder.recvInit(short))).toBe("malformed");
    expect(responder.dhCount).toBe(0);
  });

  test("M1 with any byte beyond its canonical encoding (here an unknown field) is refused", () => {
    const { responder, initiator, prefix } = atM1(0);
    const m1 = initiator.init(solvePow(prefix, 0));
    const padded = new Uint8Array([...m1, 0x28, 0x01]); // field 5, varint 1
    expect(decodeMessage(HandshakeInit, padded, "M1")).toEqual(decodeMessage(HandshakeInit, m1, "M1"));
    expect(codeOf(() => responder.recvInit(padded))).toBe("malformed");
    expect(responder.dhCount).toBe(0);
  });

  test("a low-order ephemeral with valid work is refused", () => {
    const p = parties({ difficulty: 2 });
    const hello = decodeMessage(Hello, p.responder.hello(), "Hello");
    const zero = new Uint8Array(32);
    const prefix = powPrefix(hello.challenge, hello.responderId, bob.id, zero);
    const m1 = encodeMessage(HandshakeInit, { ephemeral: zero, initiatorId: bob.id, powNonce: solvePow(prefix, 2) });
    expect(codeOf(() => p.responder.recvInit(m1))).toBe("bad-point");
  });

  test("M1 replayed from an earlier handshake fails against a new responder", () => {
    const first = runHandshake(parties({ difficulty: 8 }));
    const [, oldM1, , oldM3] = first.sent;
    const init = decodeMessage(HandshakeInit, oldM1!, "M1");
    // A new responder (new challenge) on which the old nonce does not happen to meet d = 8 (probability 255/256).
    let responder: ResponderHandshake;
    do {
      responder = parties({ difficulty: 8 }).responder;
      const hello = decodeMessage(Hello, responder.hello(), "Hello");
      const prefix = powPrefix(hello.challenge, alice.id, init.initiatorId, init.ephemeral);
      if (!verifyPow(prefix, init.powNonce, 8)) break;
    } while (true);
    expect(codeOf(() => responder.recvInit(oldM1!))).toBe("bad-pow");
    expect(responder.dhCount).toBe(0);

    // Without a work requirement the replay gets a response, but the replayed M3 cannot complete it.
    const lax = parties({ difficulty: 0 }).responder;
    lax.hello();
    lax.recvInit(oldM1!);
    expect(codeOf(() => lax.recvFinal(oldM3!))).toBe("decrypt-failed");
  });
});

describe("authentication", () => {
  test("expectedPeerId mismatch aborts at Hello", () => {
    const p = parties({ expectedPeerId: bob.id });
    expect(codeOf(() => p.initiator.recvHello(p.responder.hello()))).toBe("unexpected-peer");
  });

  test("a responder whose identity key does not hash to its claimed ID is refused", () => {
    const liar: Identity = { ...alice, id: bob.id, idHex: bob.idHex };
    const p = parties({ respId: liar, initId: carol });
    expect(codeOf(() => runHandshake(p))).toBe("id-mismatch");
  });

  test("an initiator whose identity key does not hash to its claimed ID is refused", () => {
    const liar: Identity = { ...bob, id: carol.id, idHex: carol.idHex };
    const p = parties({ initId: liar });
    const { powPrefix: prefix, difficulty } = p.initiator.recvHello(p.responder.hello());
    const m2 = p.responder.recvInit(p.initiator.init(solvePow(prefix, difficulty)));
    const { send } = p.initiator.recvResponse(m2);
    expect(codeOf(() => p.responder.recvFinal(send))).toBe("id-mismatch");
  });

  test("a signature by the right key over something else is refused, both ways", () => {
    const forger = (who: Identity): Identity => ({ ...who, sign: (m) => who.sign(m.map((b) => b ^ 1)) });
    expect(codeOf(() => runHandshake(parties({ respId: forger(alice) })))).toBe("bad-signature");
    const p = parties({ initId: forger(bob) });
    const { powPrefix: prefix, difficulty } = p.initiator.recvHello(p.responder.hello());
    const { send } = p.initiator.recvResponse(p.responder.recvInit(p.initiator.init(solvePow(prefix, difficulty))));
    expect(codeOf(() => p.responder.recvFinal(send))).toBe("bad-signature");
  });

  test("a Hello with another protocol version is refused", () => {
    const p = parties();
    const hello = decodeMessage(Hello, p.responder.hello(), "Hello");
    const v2 = encodeMessage(Hello, { ...hello, version: PROTOCOL_VERSION + 1 });
    expect(codeOf(() => p.initiator.recvHello(v2))).toBe("bad-version");
  });

  test("dialing ourselves is noticed at Hello", () => {
    const p = parties({ initId: alice });
    expect(codeOf(() => p.initiator.recvHello(p.responder.hello()))).toBe("self-connection");
  });

  test("calls out of order throw and kill the object", () => {
    const p = parties();
    expect(codeOf(() => p.responder.recvFinal(new Uint8Array(10)))).toBe("out-of-order");
    expect(codeOf(() => p.responder.hello())).toBe("handshake-dead");
    expect(codeOf(() => p.initiator.recvResponse(new Uint8Array(10)))).toBe("out-of-order");
  });
});

/**
 * The sizes of the four messages between Ed25519 identities, from proto/gossip.proto (each field: tag, length, bytes):
 * Hello = version (2) + difficulty (2, omitted when 0) + challenge (2 + 32) + responder ID (2 + 32);
 * M1 = ephemeral (2 + 32) + initiator ID (2 + 32) + PoW nonce (2 + 8);
 * an IdentityProof = Ed25519 SPKI key (2 + 44) + signature (2 + 64) + listen port (1 + 2 for 6001 and 7002) = 115;
 * M2 = tag and 2-byte length (3) + Noise e (32) + encrypted s (32 + 16) + encrypted proof (115 + 16);
 * M3 = tag and 2-byte length (3) + encrypted s (32 + 16) + encrypted proof (115 + 16).
 */
const MESSAGE_SIZES = { 4: [72, 78, 214, 182], 0: [70, 78, 214, 182] } as const;

describe("tampering in transit", () => {
  test("flipping any single byte of Hello, M1, M2 or M3 makes the handshake fail", () => {
    const names = ["Hello", "M1", "M2", "M3"];
    let runs = 0;
    // d = 4 keeps the work check in play; d = 0 leaves the handshake hash as the only defence of M1's nonce.
    for (const [mask, difficulty] of [[0xff, 4], [0x01, 0]] as const) {
      const sizes = MESSAGE_SIZES[difficulty];
      expect(runHandshake(parties({ difficulty })).sent.map((m) => m.length)).toEqual([...sizes]);
      for (let step = 0; step < 4; step++) {
        for (let index = 0; index < sizes[step]!; index++) {
          runs++;
          const tamper: Tamper = (s, body) => {
            if (s !== step) return body;
            // Ed25519 identities: every message has the same size in every run.
            if (body.length !== sizes[step]) throw new Error(`${names[step]} changed size`);
            const copy = Uint8Array.from(body);
            copy[index]! ^= mask;
            return copy;
          };
          let outcome: string;
          try {
            runHandshake(parties({ difficulty }), tamper);
            outcome = "completed";
          } catch (e) {
            if (!(e instanceof P2PProtocolError)) throw e;
            outcome = e.code;
          }
          if (outcome === "completed") throw new Error(`${names[step]} byte ${index} ^ ${mask} went unnoticed`);
        }
      }
    }
    // Every byte of both runs was flipped once: 546 + 544.
    expect(runs).toBe(1090);
  }, 30_000);
});
