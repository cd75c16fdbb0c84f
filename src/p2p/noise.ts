/**
 * Noise_XX_25519_ChaChaPoly_SHA256, exactly as the Noise Protocol Framework (revision 34) defines it: CipherState,
 * SymmetricState, and a HandshakeState for the XX pattern only. X25519 through node:crypto, HKDF over HMAC-SHA256
 * and SHA-256 from @noble/hashes, ChaCha20-Poly1305 from @noble/ciphers.
 *
 * Pure: bytes in, bytes out; no identities, proof of work or sockets (handshake.ts adds those). It must never accept
 * an all-zero DH output (a low-order point), reuse a nonce, or keep going after a failed handshake message.
 */
import { chacha20poly1305 } from "@noble/ciphers/chacha.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { createPrivateKey, createPublicKey, diffieHellman, randomBytes } from "node:crypto";
import { P2PProtocolError } from "../errors.ts";
import { AeadScratch, aeadOpen, aeadSeal } from "./aead.ts";

export const NOISE_PROTOCOL_NAME = "Noise_XX_25519_ChaChaPoly_SHA256";
export const DH_LEN = 32;
export const HASH_LEN = 32;
export const TAG_LEN = 16;
/** The spec's limit on one Noise message. */
export const NOISE_MAX_MESSAGE = 65535;

const EMPTY = new Uint8Array(0);

// ---------------------------------------------------------------------------------------------------- X25519

/** Raw 32-byte X25519 keys. */
export interface KeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

// node:crypto takes raw X25519 keys only inside DER wrappers; these are the fixed headers (RFC 8410).
const PKCS8_X25519_HEADER = Buffer.from("302e020100300506032b656e04220420", "hex");
const SPKI_X25519_HEADER = Buffer.from("302a300506032b656e032100", "hex");

function privateKeyObject(privateKey: Uint8Array) {
  return createPrivateKey({ key: Buffer.concat([PKCS8_X25519_HEADER, privateKey]), format: "der", type: "pkcs8" });
}

function publicKeyObject(publicKey: Uint8Array) {
  return createPublicKey({ key: Buffer.concat([SPKI_X25519_HEADER, publicKey]), format: "der", type: "spki" });
}

/** The key pair of a given raw private key (test vectors fix ephemeral and static keys this way). */
export function keyPairFromPrivateKey(privateKey: Uint8Array): KeyPair {
  if (privateKey.length !== DH_LEN) throw new RangeError(`X25519 private key must be ${DH_LEN} bytes`);
  const spki = createPublicKey(privateKeyObject(privateKey)).export({ format: "der", type: "spki" });
  return { publicKey: new Uint8Array(spki.subarray(SPKI_X25519_HEADER.length)), privateKey: Uint8Array.from(privateKey) };
}

export function generateKeyPair(): KeyPair {
  return keyPairFromPrivateKey(randomBytes(DH_LEN));
}

/** X25519(ours.private, theirs). A low-order `theirs` gives all zeros, which Noise implementations must refuse. */
export function dh(ours: KeyPair, theirs: Uint8Array): Uint8Array {
  if (theirs.length !== DH_LEN) throw new P2PProtocolError("malformed", `X25519 public key must be ${DH_LEN} bytes`);
  let shared: Uint8Array;
  try {
    shared = diffieHellman({ privateKey: privateKeyObject(ours.privateKey), publicKey: publicKeyObject(theirs) });
  } catch {
    // OpenSSL/BoringSSL refuse an all-zero result themselves; either way the point was unusable.
    throw new P2PProtocolError("bad-point", "X25519 rejected the peer's public key");
  }
  let acc = 0;
  for (let i = 0; i < shared.length; i++) acc |= shared[i]!;
  if (acc === 0) throw new P2PProtocolError("bad-point", "X25519 output is all zero (low-order point)");
  return new Uint8Array(shared);
}

// ---------------------------------------------------------------------------------------------------- CipherState

const MAX_U32 = 0xffffffff;
/** Nonce 2^64-1, reserved for REKEY: 4 zero bytes ‖ 8 bytes of 0xff. */
const REKEY_NONCE = Uint8Array.from([0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255]);
const ZEROS_32 = new Uint8Array(32);
/** One scratch for every CipherState: all use is synchronous, and opened plaintexts are copied out of it. */
const SCRATCH = new AeadScratch();

/**
 * A key and a 64-bit message counter. The counter is two u32 halves rather than a bigint: it sits on the per-frame
 * hot path, and a JS number would silently lose precision past 2^53.
 */
export class CipherState {
  private k: Uint8Array | undefined;
  private lo = 0;
  private hi = 0;
  /** ChaCha20-Poly1305 nonce for the current counter: 4 zero bytes ‖ counter (u64 little-endian). Reused. */
  private readonly nonce = new Uint8Array(12);
  private readonly nonceView = new DataView(this.nonce.buffer);

  constructor(key?: Uint8Array) {
    this.initializeKey(key);
  }

  initializeKey(key: Uint8Array | undefined): void {
    if (key !== undefined && key.length !== 32) throw new RangeError("cipher key must be 32 bytes");
    this.k = key === undefined ? undefined : Uint8Array.from(key);
    this.lo = 0;
    this.hi = 0;
  }

  hasKey(): boolean {
    return this.k !== undefined;
  }

  setNonce(n: bigint): void {
    if (n < 0n || n > 0xffffffffffffffffn) throw new RangeError("nonce out of range");
    this.lo = Number(n & 0xffffffffn);
    this.hi = Number(n >> 32n);
  }

  /** Messages processed under this state so far (the next nonce). */
  get counter(): bigint {
    return (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  /**
   * ENCRYPT(k, n++, ad, plaintext), or the plaintext itself when there is no key yet (as the spec says).
   * `output`, if given, must be exactly plaintext.length + 16 bytes (lets a caller leave room for a frame header).
   */
  encryptWithAd(ad: Uint8Array, plaintext: Uint8Array, output?: Uint8Array): Uint8Array {
    if (this.k === undefined) {
      if (output === undefined) return Uint8Array.from(plaintext);
      output.set(plaintext);
      return output;
    }
    const sealed = aeadSeal(SCRATCH, this.k, this.currentNonce(), ad, plaintext, output);
    this.advance();
    return sealed;
  }

  /** DECRYPT(k, n++, ad, ciphertext); on failure the counter stays put and P2PProtocolError("decrypt-failed") flies. */
  decryptWithAd(ad: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    if (this.k === undefined) return Uint8Array.from(ciphertext);
    if (ciphertext.length < TAG_LEN) throw new P2PProtocolError("decrypt-failed", "ciphertext shorter than its tag");
    const opened = aeadOpen(SCRATCH, this.k, this.currentNonce(), ad, ciphertext);
    if (opened === undefined) throw new P2PProtocolError("decrypt-failed", "authentication tag mismatch");
    this.advance();
    return opened;
  }

  /** REKEY(k): the first 32 bytes of ENCRYPT(k, 2^64-1, "", 32 zero bytes). The counter is not reset. */
  rekey(): void {
    if (this.k === undefined) throw new RangeError("rekey without a key");
    this.k = chacha20poly1305(this.k, REKEY_NONCE).encrypt(ZEROS_32).slice(0, 32);
  }

  private currentNonce(): Uint8Array {
    // 2^64-1 is reserved (REKEY uses it); reaching it means this key has been used up.
    if (this.lo === MAX_U32 && this.hi === MAX_U32) {
      throw new P2PProtocolError("nonce-exhausted", "cipher state used 2^64-1 nonces");
    }
    this.nonceView.setUint32(4, this.lo, true);
    this.nonceView.setUint32(8, this.hi, true);
    return this.nonce;
  }

  private advance(): void {
    if (this.lo === MAX_U32) {
      this.lo = 0;
      this.hi++;
    } else {
      this.lo++;
    }
  }
}

// ---------------------------------------------------------------------------------------------------- SymmetricState

/** Noise's HKDF(ck, ikm, n) is RFC 5869 HKDF-SHA256 with salt = ck and empty info; returns 32-byte outputs. */
function noiseHkdf(chainingKey: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const okm = hkdf(sha256, ikm, chainingKey, EMPTY, outputs * HASH_LEN);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < outputs; i++) parts.push(okm.slice(i * HASH_LEN, (i + 1) * HASH_LEN));
  return parts;
}

export class SymmetricState {
  private ck: Uint8Array;
  private h: Uint8Array;
  private readonly cs = new CipherState();

  constructor(protocolName: string) {
    const name = new TextEncoder().encode(protocolName);
    if (name.length <= HASH_LEN) {
      this.h = new Uint8Array(HASH_LEN);
      this.h.set(name);
    } else {
      this.h = sha256(name);
    }
    this.ck = Uint8Array.from(this.h);
  }

  mixKey(inputKeyMaterial: Uint8Array): void {
    const [ck, tempK] = noiseHkdf(this.ck, inputKeyMaterial, 2);
    this.ck = ck!;
    // HASHLEN is 32, so temp_k needs no truncation.
    this.cs.initializeKey(tempK);
  }

  mixHash(data: Uint8Array): void {
    this.h = sha256.create().update(this.h).update(data).digest();
  }

  encryptAndHash(plaintext: Uint8Array): Uint8Array {
    const ciphertext = this.cs.encryptWithAd(this.h, plaintext);
    this.mixHash(ciphertext);
    return ciphertext;
  }

  decryptAndHash(ciphertext: Uint8Array): Uint8Array {
    const plaintext = this.cs.decryptWithAd(this.h, ciphertext);
    this.mixHash(ciphertext);
    return plaintext;
  }

  get handshakeHash(): Uint8Array {
    return Uint8Array.from(this.h);
  }

  /** Two CipherStates: the first for initiator → responder, the second for responder → initiator. */
  split(): [CipherState, CipherState] {
    const [k1, k2] = noiseHkdf(this.ck, EMPTY, 2);
    return [new CipherState(k1), new CipherState(k2)];
  }
}

// ---------------------------------------------------------------------------------------------------- HandshakeState

export interface XXHandshakeOptions {
  initiator: boolean;
  prologue: Uint8Array;
  /** Our static key pair. */
  s: KeyPair;
  /** A fixed ephemeral key pair: test vectors only. Normally generated when the first message that sends it is written. */
  e?: KeyPair;
}

/**
 * The XX pattern:
 *   -> e
 *   <- e, ee, s, es
 *   -> s, se
 * Messages alternate strictly; the initiator writes messages 0 and 2, the responder message 1. Any exception leaves
 * the state failed, and every later call throws.
 */
export class XXHandshakeState {
  /** Diffie-Hellman operations done so far (the PoW gate promises none before the work is checked). */
  dhCount = 0;
  private readonly ss = new SymmetricState(NOISE_PROTOCOL_NAME);
  private readonly initiator: boolean;
  private readonly s: KeyPair;
  private e: KeyPair | undefined;
  private rs: Uint8Array | undefined;
  private re: Uint8Array | undefined;
  /** Index of the next handshake message (0..2); 3 = complete. */
  private step = 0;
  private failed = false;
  private splitDone = false;

  constructor(options: XXHandshakeOptions) {
    this.initiator = options.initiator;
    this.s = options.s;
    this.e = options.e;
    // XX has no pre-messages: only the prologue is hashed before message 0.
    this.ss.mixHash(options.prologue);
  }

  get complete(): boolean {
    return this.step === 3;
  }

  /** The peer's static public key, known once message 1 (initiator) or 2 (responder) has been read. */
  get remoteStaticKey(): Uint8Array | undefined {
    return this.rs;
  }

  get handshakeHash(): Uint8Array {
    return this.ss.handshakeHash;
  }

  writeMessage(payload: Uint8Array): Uint8Array {
    return this.guarded(true, () => {
      const parts: Uint8Array[] = [];
      if (this.step === 0) {
        parts.push(this.sendEphemeral());
      } else if (this.step === 1) {
        parts.push(this.sendEphemeral());
        this.mixDh(this.ephemeral(), this.re!); // ee
        parts.push(this.ss.encryptAndHash(this.s.publicKey)); // s
        this.mixDh(this.s, this.re!); // es, as responder
      } else {
        parts.push(this.ss.encryptAndHash(this.s.publicKey)); // s
        this.mixDh(this.s, this.re!); // se, as initiator
      }
      parts.push(this.ss.encryptAndHash(payload));
      return concat(parts);
    });
  }

  readMessage(message: Uint8Array): Uint8Array {
    return this.guarded(false, () => {
      if (message.length > NOISE_MAX_MESSAGE) throw new P2PProtocolError("malformed", "Noise message too long");
      const need = this.step === 0 ? DH_LEN : this.step === 1 ? DH_LEN + DH_LEN + TAG_LEN + TAG_LEN : DH_LEN + 2 * TAG_LEN;
      if (message.length < need) throw new P2PProtocolError("malformed", `Noise message ${this.step} too short`);
      let offset = 0;
      if (this.step === 0 || this.step === 1) {
        this.re = message.slice(0, DH_LEN);
        this.ss.mixHash(this.re);
        offset = DH_LEN;
      }
      if (this.step === 1) {
        this.mixDh(this.ephemeral(), this.re!); // ee
        this.rs = this.ss.decryptAndHash(message.subarray(offset, offset + DH_LEN + TAG_LEN)); // s
        offset += DH_LEN + TAG_LEN;
        this.mixDh(this.ephemeral(), this.rs); // es, as initiator
      } else if (this.step === 2) {
        const rs = this.ss.decryptAndHash(message.subarray(0, DH_LEN + TAG_LEN)); // s
        offset = DH_LEN + TAG_LEN;
        this.mixDh(this.ephemeral(), rs); // se, as responder
        this.rs = rs;
      }
      return this.ss.decryptAndHash(message.subarray(offset));
    });
  }

  /** The transport CipherStates [initiator → responder, responder → initiator]; once, after the last message. */
  split(): [CipherState, CipherState] {
    if (this.failed || this.step !== 3 || this.splitDone) {
      throw new P2PProtocolError("out-of-order", "split() needs a complete handshake and works once");
    }
    this.splitDone = true;
    return this.ss.split();
  }

  private guarded<T>(writing: boolean, action: () => T): T {
    if (this.failed) throw new P2PProtocolError("handshake-dead", "the handshake already failed");
    // Message i is written by the initiator when i is even.
    const initiatorTurn = this.step % 2 === 0;
    if (this.step >= 3 || writing !== (initiatorTurn === this.initiator)) {
      this.failed = true;
      throw new P2PProtocolError("out-of-order", `cannot ${writing ? "write" : "read"} handshake message ${this.step}`);
    }
    try {
      const result = action();
      this.step++;
      return result;
    } catch (e) {
      this.failed = true;
      throw e;
    }
  }

  private sendEphemeral(): Uint8Array {
    this.e ??= generateKeyPair();
    this.ss.mixHash(this.e.publicKey);
    return this.e.publicKey;
  }

  private ephemeral(): KeyPair {
    return this.e!;
  }

  private mixDh(ours: KeyPair, theirs: Uint8Array): void {
    this.dhCount++;
    this.ss.mixKey(dh(ours, theirs));
  }
}

function concat(parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}
