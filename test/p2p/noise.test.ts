// Noise_XX_25519_ChaChaPoly_SHA256 against published vectors (test/p2p/vectors/noise-xx.json), plus the spec's
// rules the vectors do not exercise: nonce layout, REKEY, low-order points, turn order, failure is final.
import { describe, expect, test } from "bun:test";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import {
  CipherState,
  NOISE_PROTOCOL_NAME,
  SymmetricState,
  XXHandshakeState,
  dh,
  generateKeyPair,
  keyPairFromPrivateKey,
} from "../../src/p2p/noise.ts";
import vectorFile from "./vectors/noise-xx.json";
import { codeOf } from "./error-code.ts";

const hex = (s: string) => Uint8Array.from(Buffer.from(s, "hex"));
const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const EMPTY = new Uint8Array(0);


/** The spec's nonce: 4 zero bytes ‖ 64-bit little-endian counter. Built independently of CipherState. */
function nonceBytes(n: bigint): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, n, true);
  return nonce;
}

describe("published test vectors", () => {
  test("the file holds vectors from two sources, one with a handshake hash", () => {
    expect(vectorFile.vectors.length).toBeGreaterThanOrEqual(2);
    expect(vectorFile.vectors.filter((v) => "handshake_hash" in v).length).toBeGreaterThanOrEqual(1);
  });
  for (const v of vectorFile.vectors) {
    test(`${v.protocol_name} from ${v.source.split(":")[0]}`, () => {
      expect(v.protocol_name).toBe(NOISE_PROTOCOL_NAME);
      const initiator = new XXHandshakeState({
        initiator: true,
        prologue: hex(v.init_prologue),
        s: keyPairFromPrivateKey(hex(v.init_static)),
        e: keyPairFromPrivateKey(hex(v.init_ephemeral)),
      });
      const responder = new XXHandshakeState({
        initiator: false,
        prologue: hex(v.resp_prologue),
        s: keyPairFromPrivateKey(hex(v.resp_static)),
        e: keyPairFromPrivateKey(hex(v.resp_ephemeral)),
      });
      // Handshake: messages alternate, initiator first.
      for (let i = 0; i < 3; i++) {
        const { payload, ciphertext } = v.messages[i]!;
        const [sender, receiver] = i % 2 === 0 ? [initiator, responder] : [responder, initiator];
        const written = sender.writeMessage(hex(payload));
        expect(toHex(written)).toBe(ciphertext);
        expect(toHex(receiver.readMessage(written))).toBe(payload);
      }
      expect(initiator.complete && responder.complete).toBe(true);
      expect(initiator.handshakeHash).toEqual(responder.handshakeHash);
      const published = "handshake_hash" in v ? v.handshake_hash : undefined;
      if (published !== undefined) expect(toHex(initiator.handshakeHash)).toBe(published);
      expect(initiator.remoteStaticKey).toEqual(keyPairFromPrivateKey(hex(v.resp_static)).publicKey);
      expect(responder.remoteStaticKey).toEqual(keyPairFromPrivateKey(hex(v.init_static)).publicKey);
      // Transport: the alternation continues (message 3 is the responder's).
      const [i1, i2] = initiator.split();
      const [r1, r2] = responder.split();
      for (let i = 3; i < v.messages.length; i++) {
        const { payload, ciphertext } = v.messages[i]!;
        const [send, recv] = i % 2 === 0 ? [i1, r1] : [r2, i2];
        const written = send.encryptWithAd(EMPTY, hex(payload));
        expect(toHex(written)).toBe(ciphertext);
        expect(toHex(recv.decryptWithAd(EMPTY, written))).toBe(payload);
      }
    });
  }
});

describe("X25519", () => {
  test("RFC 7748 section 6.1 key agreement", () => {
    const a = keyPairFromPrivateKey(hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    const b = keyPairFromPrivateKey(hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
    expect(toHex(a.publicKey)).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    expect(toHex(b.publicKey)).toBe("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    const shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    expect(toHex(dh(a, b.publicKey))).toBe(shared);
    expect(toHex(dh(b, a.publicKey))).toBe(shared);
  });

  test("low-order public keys are refused, never turned into an all-zero secret", () => {
    const ours = generateKeyPair();
    // 0, 1, and a point of order 8 (from the libsodium/RFC 7748 blocklists).
    for (const point of [
      "0000000000000000000000000000000000000000000000000000000000000000",
      "0100000000000000000000000000000000000000000000000000000000000000",
      "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    ]) {
      expect(codeOf(() => dh(ours, hex(point)))).toBe("bad-point");
    }
    expect(codeOf(() => dh(ours, new Uint8Array(31)))).toBe("malformed");
  });

  test("generated pairs are consistent and fresh", () => {
    const a = generateKeyPair();
    expect(a.publicKey.length).toBe(32);
    expect(keyPairFromPrivateKey(a.privateKey).publicKey).toEqual(a.publicKey);
    expect(generateKeyPair().privateKey).not.toEqual(a.privateKey);
  });
});

describe("CipherState", () => {
  const key = new Uint8Array(32).fill(9);
  const pt = new TextEncoder().encode("frame");

  test("without a key it passes data through (as the spec says)", () => {
    const cs = new CipherState();
    expect(cs.hasKey()).toBe(false);
    expect(cs.encryptWithAd(EMPTY, pt)).toEqual(pt);
    expect(cs.decryptWithAd(EMPTY, pt)).toEqual(pt);
  });

  test("nonce = 4 zero bytes ‖ u64 LE counter, across the 2^32 boundary", () => {
    const cs = new CipherState(key);
    for (const n of [0n, 1n]) {
      expect(cs.encryptWithAd(EMPTY, pt)).toEqual(chacha20poly1305(key, nonceBytes(n)).encrypt(pt));
    }
    cs.setNonce(0xffffffffn);
    for (const n of [0xffffffffn, 0x100000000n, 0x100000001n]) {
      expect(cs.counter).toBe(n);
      expect(cs.encryptWithAd(EMPTY, pt)).toEqual(chacha20poly1305(key, nonceBytes(n)).encrypt(pt));
    }
  });

  test("associated data is authenticated", () => {
    const sealed = new CipherState(key).encryptWithAd(new Uint8Array([1]), pt);
    expect(codeOf(() => new CipherState(key).decryptWithAd(new Uint8Array([2]), sealed))).toBe("decrypt-failed");
    expect(new CipherState(key).decryptWithAd(new Uint8Array([1]), sealed)).toEqual(pt);
  });

  test("a failed decryption does not consume the nonce", () => {
    const sender = new CipherState(key);
    const receiver = new CipherState(key);
    const sealed = sender.encryptWithAd(EMPTY, pt);
    const bad = Uint8Array.from(sealed);
    bad[0]! ^= 1;
    expect(codeOf(() => receiver.decryptWithAd(EMPTY, bad))).toBe("decrypt-failed");
    expect(codeOf(() => receiver.decryptWithAd(EMPTY, sealed.subarray(0, 15)))).toBe("decrypt-failed");
    expect(receiver.counter).toBe(0n);
    expect(receiver.decryptWithAd(EMPTY, sealed)).toEqual(pt);
  });

  test("REKEY = first 32 bytes of ENCRYPT(k, 2^64-1, '', zeros); the counter is kept", () => {
    const cs = new CipherState(key);
    cs.encryptWithAd(EMPTY, pt);
    cs.rekey();
    const next = chacha20poly1305(key, nonceBytes(0xffffffffffffffffn)).encrypt(new Uint8Array(32)).slice(0, 32);
    expect(cs.counter).toBe(1n);
    expect(cs.encryptWithAd(EMPTY, pt)).toEqual(chacha20poly1305(next, nonceBytes(1n)).encrypt(pt));
  });

  test("nonce 2^64-1 is reserved: the state is used up", () => {
    const cs = new CipherState(key);
    cs.setNonce(0xfffffffffffffffen);
    cs.encryptWithAd(EMPTY, pt);
    expect(codeOf(() => cs.encryptWithAd(EMPTY, pt))).toBe("nonce-exhausted");
  });
});

describe("SymmetricState", () => {
  test("a name of ≤ 32 bytes is zero-padded into h and ck", () => {
    const ss = new SymmetricState(NOISE_PROTOCOL_NAME);
    const expected = new Uint8Array(32);
    expected.set(new TextEncoder().encode(NOISE_PROTOCOL_NAME));
    expect(ss.handshakeHash).toEqual(expected);
  });
});

describe("XX handshake state", () => {
  function pair(prologueA = EMPTY, prologueB = EMPTY) {
    return {
      i: new XXHandshakeState({ initiator: true, prologue: prologueA, s: generateKeyPair() }),
      r: new XXHandshakeState({ initiator: false, prologue: prologueB, s: generateKeyPair() }),
    };
  }

  test("random keys: completes, both agree, three DH each", () => {
    const { i, r } = pair();
    r.readMessage(i.writeMessage(EMPTY));
    i.readMessage(r.writeMessage(new Uint8Array([1])));
    expect(r.readMessage(i.writeMessage(new Uint8Array([2])))).toEqual(new Uint8Array([2]));
    expect(i.handshakeHash).toEqual(r.handshakeHash);
    expect(i.dhCount).toBe(3);
    expect(r.dhCount).toBe(3);
    const [a1, a2] = i.split();
    const [b1, b2] = r.split();
    expect(b1.decryptWithAd(EMPTY, a1.encryptWithAd(EMPTY, new Uint8Array([3])))).toEqual(new Uint8Array([3]));
    expect(a2.decryptWithAd(EMPTY, b2.encryptWithAd(EMPTY, new Uint8Array([4])))).toEqual(new Uint8Array([4]));
    expect(codeOf(() => i.split())).toBe("out-of-order");
  });

  test("different prologues cannot complete", () => {
    const { i, r } = pair(new Uint8Array([1]), new Uint8Array([2]));
    r.readMessage(i.writeMessage(EMPTY));
    expect(codeOf(() => i.readMessage(r.writeMessage(EMPTY)))).toBe("decrypt-failed");
  });

  test("turn order is enforced, and a failed state stays failed", () => {
    const { i, r } = pair();
    expect(codeOf(() => i.readMessage(new Uint8Array(32)))).toBe("out-of-order");
    expect(codeOf(() => i.writeMessage(EMPTY))).toBe("handshake-dead");
    expect(codeOf(() => r.writeMessage(EMPTY))).toBe("out-of-order");
  });

  test("short messages are malformed; a tampered message is fatal", () => {
    const short = pair();
    expect(codeOf(() => short.r.readMessage(new Uint8Array(31)))).toBe("malformed");
    const { i, r } = pair();
    r.readMessage(i.writeMessage(EMPTY));
    const m2 = r.writeMessage(EMPTY);
    const tampered = Uint8Array.from(m2);
    tampered[40]! ^= 1;
    expect(codeOf(() => i.readMessage(tampered))).toBe("decrypt-failed");
    expect(i.remoteStaticKey).toBeUndefined();
    expect(codeOf(() => i.readMessage(m2))).toBe("handshake-dead");
  });

  test("a low-order ephemeral in message 1 is refused when the responder mixes ee", () => {
    const { r } = pair();
    r.readMessage(new Uint8Array(32));
    expect(codeOf(() => r.writeMessage(EMPTY))).toBe("bad-point");
  });

  test("split before completion is refused", () => {
    const { i } = pair();
    expect(codeOf(() => i.split())).toBe("out-of-order");
  });
});
