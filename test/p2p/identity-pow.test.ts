/**
 * Identity cost (issue 17): the identity proof of work's input and check, and the handshake that demands it
 * (pure state machines, in memory). Real-socket nodes are in test/identity-pow-net.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { generateEd25519Pem, generateStaticKeyPair, loadIdentity, peerIdOf, type Identity } from "../../src/p2p/identity.ts";
import { identityPowPrefix, solveIdentityPow, verifyIdentityPow } from "../../src/p2p/identity-pow.ts";
import { InitiatorHandshake, ResponderHandshake } from "../../src/p2p/handshake.ts";
import { leadingZeroBits, powDigest } from "../../src/p2p/pow-input.ts";
import { IdentityProof } from "../../src/p2p/proto/gossip.ts";
import { decodeMessage, encodeMessage } from "../../src/p2p/wire.ts";
import { codeOf } from "./error-code.ts";
import { inlineSolver, solvePow } from "./solve-pow.ts";

const K = 8;

async function withPow(identity: Identity, bits = K): Promise<Identity> {
  return { ...identity, identityNonce: await solveIdentityPow(identity.id, bits, inlineSolver()) };
}

function handshake(o: { resp: Identity; init: Identity; respDemands?: number; initDemands?: number }) {
  const responder = new ResponderHandshake({ identity: o.resp, staticKeys: generateStaticKeyPair(), difficulty: 2, identityDifficulty: o.respDemands });
  const initiator = new InitiatorHandshake({ identity: o.init, staticKeys: generateStaticKeyPair(), maxDifficulty: 8, identityDifficulty: o.initDemands });
  const { powPrefix, difficulty } = initiator.recvHello(responder.hello());
  const m2 = responder.recvInit(initiator.init(solvePow(powPrefix, difficulty)));
  return {
    initiatorSide: () => initiator.recvResponse(m2),
    run: () => {
      const { send, result } = initiator.recvResponse(m2);
      return { initiator: result, responder: responder.recvFinal(send) };
    },
  };
}

describe("identity proof of work", () => {
  test("input: label ‖ peer ID ‖ zeros, the handshake PoW's shape; the check counts leading zero bits", async () => {
    const id = loadIdentity(generateEd25519Pem());
    const prefix = identityPowPrefix(id.id);
    expect(prefix.length).toBe(128);
    expect(new TextDecoder().decode(prefix.subarray(0, 32))).toBe("voidphone-gossip-v1 identity pow");
    expect(prefix.subarray(32, 64)).toEqual(id.id);
    expect(prefix.subarray(64).every((b) => b === 0)).toBe(true);
    const nonce = await solveIdentityPow(id.id, K, inlineSolver());
    expect(leadingZeroBits(powDigest(prefix, nonce))).toBeGreaterThanOrEqual(K);
    expect(verifyIdentityPow(id.id, nonce, K)).toBe(true);
    // Bound to the identity: another ID's check fails (with overwhelming odds at 8 bits: find a nonce that shows it).
    const other = loadIdentity(generateEd25519Pem());
    const weak = solvePow(identityPowPrefix(id.id), K, 257);
    expect(verifyIdentityPow(other.id, weak, 24)).toBe(false);
    expect(verifyIdentityPow(id.id, undefined, K)).toBe(false);
    expect(verifyIdentityPow(id.id, new Uint8Array(7), 0)).toBe(true); // difficulty 0: nothing demanded
    expect(verifyIdentityPow(id.id, new Uint8Array(7), 1)).toBe(false);
    // The peer ID stays BLAKE3(DER key), with or without the work.
    expect((await withPow(id)).id).toEqual(peerIdOf(id.publicKeyDer));
  });

  test("a responder demanding k bits refuses an initiator without (weak-identity), accepts one with", async () => {
    const alice = await withPow(loadIdentity(generateEd25519Pem()));
    const bob = loadIdentity(generateEd25519Pem());
    expect(codeOf(() => handshake({ resp: alice, init: bob, respDemands: K }).run())).toBe("weak-identity");
    const ok = handshake({ resp: alice, init: await withPow(bob), respDemands: K }).run();
    expect(ok.responder.remoteIdHex).toBe(bob.idHex);
  });

  test("an initiator demanding k bits refuses a responder without; work below k is refused too", async () => {
    const alice = loadIdentity(generateEd25519Pem());
    const bob = await withPow(loadIdentity(generateEd25519Pem()));
    expect(codeOf(() => handshake({ resp: alice, init: bob, initDemands: K }).initiatorSide())).toBe("weak-identity");
    const weakAlice = { ...alice, identityNonce: solvePow(identityPowPrefix(alice.id), 0, K) }; // fewer than K bits
    expect(codeOf(() => handshake({ resp: weakAlice, init: bob, initDemands: K }).initiatorSide())).toBe("weak-identity");
    expect(handshake({ resp: await withPow(alice), init: bob, initDemands: K }).run().initiator.remoteIdHex).toBe(alice.idHex);
  });

  test("off (the default): proofs with or without the nonce link, as between nodes that predate it", async () => {
    const plain = loadIdentity(generateEd25519Pem());
    const worked = await withPow(loadIdentity(generateEd25519Pem()));
    expect(handshake({ resp: plain, init: worked }).run().responder.remoteIdHex).toBe(worked.idHex);
    expect(handshake({ resp: worked, init: plain }).run().initiator.remoteIdHex).toBe(worked.idHex);
  });

  test("wire: the nonce is field 5; without it the proof's bytes are those of a node that predates the field", () => {
    const base = { identityKey: new Uint8Array([1, 2]), signature: new Uint8Array([3]), listenPort: 6001, features: 1 };
    const old = encodeMessage(IdentityProof, base);
    const withNonce = encodeMessage(IdentityProof, { ...base, identityNonce: new Uint8Array(8).fill(9) });
    expect(withNonce.subarray(0, old.length)).toEqual(old);
    expect([...withNonce.subarray(old.length, old.length + 2)]).toEqual([42, 8]); // tag 5, wire type 2; 8 bytes
    expect(decodeMessage(IdentityProof, old, "IdentityProof").identityNonce).toBeUndefined();
  });
});
