// TransportCipher: one direction of a link after Split(), with a frame counter nonce and periodic REKEY.
import { describe, expect, test } from "bun:test";
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { DEFAULT_REKEY_INTERVAL, TransportCipher } from "../../src/p2p/cipher.ts";
import { FRAME_HEADER_BYTES, FrameReader, writeFrameHeader } from "../../src/p2p/frame.ts";
import { CipherState, XXHandshakeState, generateKeyPair } from "../../src/p2p/noise.ts";
import { codeOf } from "./error-code.ts";

const key = Uint8Array.from({ length: 32 }, (_, i) => i);
const text = (s: string) => new TextEncoder().encode(s);


function nonceBytes(n: number): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, BigInt(n), true);
  return nonce;
}

const twin = (rekeyInterval?: number) => [
  new TransportCipher(new CipherState(key), { rekeyInterval }),
  new TransportCipher(new CipherState(key), { rekeyInterval }),
] as const;

describe("TransportCipher", () => {
  test("ciphers from a real handshake interoperate both ways, across many rekeys", () => {
    const i = new XXHandshakeState({ initiator: true, prologue: new Uint8Array(0), s: generateKeyPair() });
    const r = new XXHandshakeState({ initiator: false, prologue: new Uint8Array(0), s: generateKeyPair() });
    r.readMessage(i.writeMessage(new Uint8Array(0)));
    i.readMessage(r.writeMessage(new Uint8Array(0)));
    r.readMessage(i.writeMessage(new Uint8Array(0)));
    const [i1, i2] = i.split();
    const [r1, r2] = r.split();
    const iSend = new TransportCipher(i1, { rekeyInterval: 3 });
    const iRecv = new TransportCipher(i2, { rekeyInterval: 3 });
    const rSend = new TransportCipher(r2, { rekeyInterval: 3 });
    const rRecv = new TransportCipher(r1, { rekeyInterval: 3 });
    for (let n = 0; n < 20; n++) {
      expect(rRecv.decrypt(iSend.encrypt(text(`a${n}`)))).toEqual(text(`a${n}`));
      if (n % 2 === 0) expect(iRecv.decrypt(rSend.encrypt(text(`b${n}`)))).toEqual(text(`b${n}`));
    }
    expect(iSend.counter).toBe(20n);
    expect(rSend.counter).toBe(10n);
  });

  test("frame n uses nonce n under the key of its rekey period", () => {
    const [sender] = twin(2);
    let k = key;
    for (let n = 0; n < 7; n++) {
      if (n > 0 && n % 2 === 0) {
        // REKEY, computed independently: ENCRYPT(k, 2^64-1, "", 32 zero bytes)[0..32].
        k = chacha20poly1305(k, nonceBytes(0).fill(0xff, 4)).encrypt(new Uint8Array(32)).slice(0, 32);
      }
      expect(sender.encrypt(text("x"))).toEqual(chacha20poly1305(k, nonceBytes(n)).encrypt(text("x")));
    }
  });

  test("both ends must rekey at the same frame: a receiver with another interval fails right there", () => {
    const sender = new TransportCipher(new CipherState(key), { rekeyInterval: 4 });
    const receiver = new TransportCipher(new CipherState(key), { rekeyInterval: 5 });
    for (let n = 0; n < 4; n++) receiver.decrypt(sender.encrypt(text("ok")));
    expect(codeOf(() => receiver.decrypt(sender.encrypt(text("after rekey"))))).toBe("decrypt-failed");
  });

  test("default interval is 2^16 frames", () => {
    expect(DEFAULT_REKEY_INTERVAL).toBe(65536);
  });

  test("tampered, truncated, replayed and reordered frames are refused", () => {
    const [sender, receiver] = twin();
    const first = sender.encrypt(text("first"));
    const second = sender.encrypt(text("second"));
    for (let i = 0; i < first.length; i++) {
      const bad = Uint8Array.from(first);
      bad[i]! ^= 0x80;
      expect(codeOf(() => receiver.decrypt(bad))).toBe("decrypt-failed");
    }
    expect(codeOf(() => receiver.decrypt(first.subarray(0, 15)))).toBe("decrypt-failed");
    expect(codeOf(() => receiver.decrypt(second))).toBe("decrypt-failed");
    expect(receiver.decrypt(first)).toEqual(text("first"));
    expect(codeOf(() => receiver.decrypt(first))).toBe("decrypt-failed");
    expect(receiver.decrypt(second)).toEqual(text("second"));
  });

  test("an empty plaintext is a 16-byte frame body", () => {
    const [sender, receiver] = twin();
    const sealed = sender.encrypt(new Uint8Array(0));
    expect(sealed.length).toBe(16);
    expect(receiver.decrypt(sealed)).toEqual(new Uint8Array(0));
  });

  test("headroom: the ciphertext lands after room for the frame header, in one buffer", () => {
    const [a, b] = twin();
    const plain = a.encrypt(text("payload"));
    const framed = b.encrypt(text("payload"), FRAME_HEADER_BYTES);
    expect(framed.subarray(FRAME_HEADER_BYTES)).toEqual(plain);
    writeFrameHeader(framed);
    const [receiver] = twin();
    const [body] = new FrameReader().push(framed);
    expect(receiver.decrypt(body!)).toEqual(text("payload"));
  });

  test("a keyless state or a zero interval is a programming error", () => {
    expect(() => new TransportCipher(new CipherState())).toThrow(RangeError);
    expect(() => new TransportCipher(new CipherState(key), { rekeyInterval: 0 })).toThrow(RangeError);
  });
});
