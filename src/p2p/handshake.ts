/**
 * The P2P handshake as two pure state machines (docs/decisions.md, "P2P"): bytes of one frame body in, bytes to
 * send and finally the authenticated session out. No sockets, no timers.
 *
 *   Hello  responder → initiator  version, difficulty, challenge, responder ID (cleartext; its bytes enter the prologue)
 *   M1     initiator → responder  e, initiator ID, PoW nonce (Noise message e ‖ ID ‖ nonce)
 *   M2     responder → initiator  Noise e, ee, s, es + IdentityProof
 *   M3     initiator → responder  Noise s, se + IdentityProof
 *
 * The responder checks the proof of work (one hash) before any Diffie-Hellman; `dhCount` lets tests hold it to that.
 * Any failure throws P2PProtocolError with a reason code and kills the object: every later call throws too.
 */
import { randomBytes } from "node:crypto";
import { P2PProtocolError } from "../errors.ts";
import { TransportCipher } from "./cipher.ts";
import type { P2PErrorCode } from "./reasons.ts";
import {
  ID_BYTES,
  peerIdOf,
  staticKeyProofMessage,
  verifyIdentitySignature,
  type Identity,
  type StaticKeyPair,
} from "./identity.ts";
import { verifyIdentityPow } from "./identity-pow.ts";
import { DH_LEN, XXHandshakeState, generateKeyPair, type KeyPair } from "./noise.ts";
import { POW_MAX_DIFFICULTY, POW_NONCE_BYTES, powPrefix, verifyPow } from "./pow-input.ts";
import {
  HandshakeFinal,
  HandshakeInit,
  HandshakeResponse,
  Hello,
  IdentityProof,
  type MessageFns,
} from "./proto/gossip.ts";
import { decodeCanonical, decodeMessage, encodeMessage } from "./wire.ts";

export const PROTOCOL_VERSION = 1;
export const CHALLENGE_BYTES = 32;
/** Fixed start of the Noise prologue; the Hello bytes follow it. */
const PROLOGUE_LABEL = new TextEncoder().encode("voidphone-gossip/1 handshake prologue\n");

export interface HandshakeResult {
  remoteId: Uint8Array;
  remoteIdHex: string;
  /** DER SubjectPublicKeyInfo of the peer's identity key (BLAKE3 of it = remoteId). */
  remoteIdentityKeyDer: Uint8Array;
  /** The port the peer says it accepts connections on, if it listens. */
  remoteListenPort?: number;
  /** The feature bits the peer offered (IdentityProof.features; 0 from a node that predates them). */
  remoteFeatures: number;
  sendCipher: TransportCipher;
  recvCipher: TransportCipher;
  /** Noise h after the last message: the same on both ends, unique to this session. */
  handshakeHash: Uint8Array;
}

interface CommonOptions {
  identity: Identity;
  /** This process's Noise static key pair (generateStaticKeyPair()). */
  staticKeys: StaticKeyPair;
  /** Our P2P listen port, told to the peer inside the encrypted handshake. */
  listenPort?: number;
  /** Passed to both TransportCiphers; tests lower it. */
  rekeyInterval?: number;
  /** Feature bits we offer (wire.ts FEATURE_*), told to the peer inside the encrypted handshake; default none. */
  features?: number;
  /** Leading zero bits demanded of the peer's identity proof of work (src/p2p/identity-pow.ts); 0 or unset: none. */
  identityDifficulty?: number;
}

export interface ResponderOptions extends CommonOptions {
  /** Leading zero bits demanded from the initiator's proof of work. */
  difficulty: number;
}

export interface InitiatorOptions extends CommonOptions {
  /** The most work we are willing to do; a Hello asking for more aborts the dial. */
  maxDifficulty: number;
  /** When dialing a known peer: its ID (bytes or lowercase hex). Another ID aborts before any work. */
  expectedPeerId?: Uint8Array | string;
}

function fail(code: P2PErrorCode, text: string): P2PProtocolError {
  return new P2PProtocolError(code, text);
}

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("hex");
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function prologue(helloBytes: Uint8Array): Uint8Array {
  return concat(PROLOGUE_LABEL, helloBytes);
}

/** Handshake frames must decode canonically; every decoding problem is "malformed" here. */
function decodeStrict<T>(codec: MessageFns<T>, body: Uint8Array, what: string): T {
  try {
    return decodeCanonical(codec, body, what);
  } catch (e) {
    throw e instanceof P2PProtocolError ? fail("malformed", e.message) : e;
  }
}

function checkPort(port: number | undefined): void {
  if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 0xffff)) {
    throw new RangeError(`listenPort ${port} out of range`);
  }
}

/** Our IdentityProof: the identity key signs the Noise static key. */
function ownProof(options: CommonOptions): Uint8Array {
  return encodeMessage(IdentityProof, {
    identityKey: options.identity.publicKeyDer,
    signature: options.identity.sign(staticKeyProofMessage(options.staticKeys.publicKey)),
    listenPort: options.listenPort ?? 0,
    // Left out when 0: a node offering nothing sends the very bytes a node that predates the field does.
    features: options.features || undefined,
    // Left out without one: the bytes of a node that predates the field.
    identityNonce: options.identity.identityNonce,
  });
}

/** Checks the peer's IdentityProof against the ID it claimed, the identity work we demand, and the static key Noise
 *  authenticated. */
function checkProof(payload: Uint8Array, claimedId: Uint8Array, remoteStatic: Uint8Array, identityDifficulty = 0): IdentityProof {
  // Not canonical: the proof is inside the AEAD, so tampering is impossible and new fields may be added later.
  let proof: IdentityProof;
  try {
    proof = decodeMessage(IdentityProof, payload, "IdentityProof");
  } catch (e) {
    throw fail("malformed", (e as Error).message);
  }
  if (proof.listenPort > 0xffff) throw fail("malformed", `IdentityProof.listen_port ${proof.listenPort}`);
  // The hash first: it is cheap, an RSA verification is not.
  if (!equal(peerIdOf(proof.identityKey), claimedId)) {
    throw fail("id-mismatch", `identity key does not hash to the claimed ID ${hex(claimedId)}`);
  }
  if (!verifyIdentityPow(claimedId, proof.identityNonce, identityDifficulty)) {
    throw fail("weak-identity", `identity proof of work below difficulty ${identityDifficulty}`);
  }
  if (!verifyIdentitySignature(proof.identityKey, staticKeyProofMessage(remoteStatic), proof.signature)) {
    throw fail("bad-signature", "identity signature over the Noise static key does not verify");
  }
  return proof;
}

function finish(
  noise: XXHandshakeState,
  initiator: boolean,
  remoteId: Uint8Array,
  proof: IdentityProof,
  rekeyInterval: number | undefined,
): HandshakeResult {
  const [toResponder, toInitiator] = noise.split();
  const send = new TransportCipher(initiator ? toResponder : toInitiator, { rekeyInterval });
  const recv = new TransportCipher(initiator ? toInitiator : toResponder, { rekeyInterval });
  return {
    remoteId: Uint8Array.from(remoteId),
    remoteIdHex: hex(remoteId),
    remoteIdentityKeyDer: Uint8Array.from(proof.identityKey),
    remoteListenPort: proof.listenPort === 0 ? undefined : proof.listenPort,
    remoteFeatures: proof.features ?? 0,
    sendCipher: send,
    recvCipher: recv,
    handshakeHash: noise.handshakeHash,
  };
}

/** Step bookkeeping shared by both roles: calls in order, and nothing after a failure. */
abstract class Steps<S extends string> {
  private dead = false;
  protected constructor(protected step: S) {}

  protected run<T>(expected: S, next: S, action: () => T): T {
    if (this.dead) throw fail("handshake-dead", "the handshake already failed");
    if (this.step !== expected) {
      this.dead = true;
      throw fail("out-of-order", `expected state ${expected}, in ${this.step}`);
    }
    try {
      const result = action();
      this.step = next;
      return result;
    } catch (e) {
      this.dead = true;
      throw e;
    }
  }
}

export class ResponderHandshake extends Steps<"new" | "hello-sent" | "m2-sent" | "done"> {
  private helloBytes: Uint8Array | undefined;
  private challenge: Uint8Array | undefined;
  private noise: XXHandshakeState | undefined;
  private initiatorId: Uint8Array | undefined;

  constructor(private readonly options: ResponderOptions) {
    super("new");
    const d = options.difficulty;
    if (!Number.isInteger(d) || d < 0 || d > POW_MAX_DIFFICULTY) throw new RangeError(`difficulty ${d} out of range`);
    checkPort(options.listenPort);
  }

  /** Diffie-Hellman operations performed so far; stays 0 until a valid proof of work arrived. */
  get dhCount(): number {
    return this.noise?.dhCount ?? 0;
  }

  /** The Hello frame body, with a fresh random challenge. */
  hello(): Uint8Array {
    return this.run("new", "hello-sent", () => {
      this.challenge = new Uint8Array(randomBytes(CHALLENGE_BYTES));
      this.helloBytes = encodeMessage(Hello, {
        version: PROTOCOL_VERSION,
        difficulty: this.options.difficulty,
        challenge: this.challenge,
        responderId: this.options.identity.id,
      });
      return this.helloBytes;
    });
  }

  /** M1 → M2. Checks shape, then the proof of work, and only then starts Noise. */
  recvInit(body: Uint8Array): Uint8Array {
    return this.run("hello-sent", "m2-sent", () => {
      const init = decodeStrict(HandshakeInit, body, "HandshakeInit");
      if (init.ephemeral.length !== DH_LEN) throw fail("malformed", "HandshakeInit.ephemeral must be 32 bytes");
      if (init.initiatorId.length !== ID_BYTES) throw fail("malformed", "HandshakeInit.initiator_id must be 32 bytes");
      if (init.powNonce.length !== POW_NONCE_BYTES) throw fail("malformed", "HandshakeInit.pow_nonce must be 8 bytes");
      const ownId = this.options.identity.id;
      const prefix = powPrefix(this.challenge!, ownId, init.initiatorId, init.ephemeral);
      if (!verifyPow(prefix, init.powNonce, this.options.difficulty)) {
        throw fail("bad-pow", `proof of work below difficulty ${this.options.difficulty}`);
      }
      if (equal(init.initiatorId, ownId)) throw fail("self-connection", "the initiator has our own ID");
      this.initiatorId = Uint8Array.from(init.initiatorId);
      this.noise = new XXHandshakeState({ initiator: false, prologue: prologue(this.helloBytes!), s: this.options.staticKeys });
      this.noise.readMessage(concat(init.ephemeral, init.initiatorId, init.powNonce));
      return encodeMessage(HandshakeResponse, { noise: this.noise.writeMessage(ownProof(this.options)) });
    });
  }

  /** M3 → the session. */
  recvFinal(body: Uint8Array): HandshakeResult {
    return this.run("m2-sent", "done", () => {
      const final = decodeStrict(HandshakeFinal, body, "HandshakeFinal");
      const noise = this.noise!;
      const payload = noise.readMessage(final.noise);
      const proof = checkProof(payload, this.initiatorId!, noise.remoteStaticKey!, this.options.identityDifficulty);
      return finish(noise, false, this.initiatorId!, proof, this.options.rekeyInterval);
    });
  }
}

export class InitiatorHandshake extends Steps<"new" | "hello-received" | "m1-sent" | "done"> {
  private helloBytes: Uint8Array | undefined;
  private responderId: Uint8Array | undefined;
  private ephemeral: KeyPair | undefined;
  private noise: XXHandshakeState | undefined;
  private readonly expectedPeerId: Uint8Array | undefined;

  constructor(private readonly options: InitiatorOptions) {
    super("new");
    checkPort(options.listenPort);
    const expected = options.expectedPeerId;
    this.expectedPeerId = typeof expected === "string" ? new Uint8Array(Buffer.from(expected, "hex")) : expected;
    if (this.expectedPeerId !== undefined && this.expectedPeerId.length !== ID_BYTES) {
      throw new RangeError("expectedPeerId must be 32 bytes (64 hex digits)");
    }
  }

  /** Hello → what to solve: the 128-byte PoW prefix and the difficulty. */
  recvHello(body: Uint8Array): { powPrefix: Uint8Array; difficulty: number } {
    return this.run("new", "hello-received", () => {
      // Not canonical: a later version may add fields, and the prologue covers these exact bytes anyway.
      let hello: Hello;
      try {
        hello = decodeMessage(Hello, body, "Hello");
      } catch (e) {
        throw fail("malformed", (e as Error).message);
      }
      if (hello.version !== PROTOCOL_VERSION) throw fail("bad-version", `protocol version ${hello.version}`);
      if (hello.challenge.length !== CHALLENGE_BYTES) throw fail("malformed", "Hello.challenge must be 32 bytes");
      if (hello.responderId.length !== ID_BYTES) throw fail("malformed", "Hello.responder_id must be 32 bytes");
      if (hello.difficulty > this.options.maxDifficulty || hello.difficulty > POW_MAX_DIFFICULTY) {
        throw fail("difficulty-too-high", `difficulty ${hello.difficulty} > our maximum ${this.options.maxDifficulty}`);
      }
      // Ourselves first, whatever ID we expected: an address that leads back to us is remembered as ours (membership).
      if (equal(hello.responderId, this.options.identity.id)) throw fail("self-connection", "we dialed ourselves");
      if (this.expectedPeerId !== undefined && !equal(hello.responderId, this.expectedPeerId)) {
        throw fail("unexpected-peer", `reached ${hex(hello.responderId)}, expected ${hex(this.expectedPeerId)}`);
      }
      this.helloBytes = Uint8Array.from(body);
      this.responderId = Uint8Array.from(hello.responderId);
      this.ephemeral = generateKeyPair();
      const prefix = powPrefix(hello.challenge, hello.responderId, this.options.identity.id, this.ephemeral.publicKey);
      return { powPrefix: prefix, difficulty: hello.difficulty };
    });
  }

  /** The solved nonce → M1. The nonce is not checked here: the responder judges it. */
  init(nonce: Uint8Array): Uint8Array {
    if (nonce.length !== POW_NONCE_BYTES) throw new RangeError(`PoW nonce must be ${POW_NONCE_BYTES} bytes`);
    return this.run("hello-received", "m1-sent", () => {
      const e = this.ephemeral!;
      const id = this.options.identity.id;
      this.noise = new XXHandshakeState({ initiator: true, prologue: prologue(this.helloBytes!), s: this.options.staticKeys, e });
      // Noise message 1 = e ‖ payload, the payload (ID ‖ nonce) in clear: both end up in the handshake hash.
      this.noise.writeMessage(concat(id, nonce));
      return encodeMessage(HandshakeInit, { ephemeral: e.publicKey, initiatorId: id, powNonce: Uint8Array.from(nonce) });
    });
  }

  /** M2 → M3 to send, and the session (usable once the responder has M3). */
  recvResponse(body: Uint8Array): { send: Uint8Array; result: HandshakeResult } {
    return this.run("m1-sent", "done", () => {
      const response = decodeStrict(HandshakeResponse, body, "HandshakeResponse");
      const noise = this.noise!;
      const payload = noise.readMessage(response.noise);
      const proof = checkProof(payload, this.responderId!, noise.remoteStaticKey!, this.options.identityDifficulty);
      const m3 = noise.writeMessage(ownProof(this.options));
      const result = finish(noise, true, this.responderId!, proof, this.options.rekeyInterval);
      return { send: encodeMessage(HandshakeFinal, { noise: m3 }), result };
    });
  }
}
