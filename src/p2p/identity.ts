/**
 * A node's long-term identity: its hostkey (Ed25519, or the RSA key VoidPhone peers already have), the peer ID
 * derived from it (BLAKE3 of the DER SubjectPublicKeyInfo), and the signature that binds the identity to this
 * process's fresh X25519 Noise static key. Everything goes through node:crypto except BLAKE3.
 *
 * Verification handles peer bytes: it must return false, never throw, for any garbage key or signature, and it
 * refuses RSA keys whose size would make verification a denial-of-service lever.
 */
import { blake3 } from "@noble/hashes/blake3.js";
import { constants, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from "node:crypto";
import { ConfigError } from "../errors.ts";
import { generateKeyPair, type KeyPair } from "./noise.ts";

export type IdentityKind = "ed25519" | "rsa";

export interface Identity {
  kind: IdentityKind;
  /** DER SubjectPublicKeyInfo of the identity key. */
  publicKeyDer: Uint8Array;
  /** BLAKE3(publicKeyDer), 32 bytes. */
  id: Uint8Array;
  idHex: string;
  sign(message: Uint8Array): Uint8Array;
  /** The identity's proof of work (src/p2p/identity-pow.ts), sent in every handshake when it has one. */
  identityNonce?: Uint8Array;
}

/** A raw X25519 key pair used as the Noise static key; fresh per process, never stored. */
export type StaticKeyPair = KeyPair;

export const ID_BYTES = 32;
/** VoidPhone hostkeys are 4096-bit; below 2048 is not a key anyone should trust. */
export const RSA_MIN_BITS = 2048;
/** Above this an RSA verification gets expensive enough for a peer to abuse. */
export const RSA_MAX_BITS = 8192;

/** Domain separation: an identity signature over a Noise static key can never be replayed as anything else. */
const STATIC_KEY_LABEL = new TextEncoder().encode("voidphone-gossip-v1 static key");

/** What the identity key signs: the label ‖ the Noise static public key. */
export function staticKeyProofMessage(staticPublicKey: Uint8Array): Uint8Array {
  const message = new Uint8Array(STATIC_KEY_LABEL.length + staticPublicKey.length);
  message.set(STATIC_KEY_LABEL, 0);
  message.set(staticPublicKey, STATIC_KEY_LABEL.length);
  return message;
}

export function peerIdOf(spkiDer: Uint8Array): Uint8Array {
  return blake3(spkiDer);
}

/**
 * A peer's public key as DER SubjectPublicKeyInfo, from SPKI or PKCS#1 RSAPublicKey DER (RPS PEER messages carry
 * "the DER-encoded hostkey", and VoidPhone implementations differ on which). Undefined if it is neither.
 */
export function toSpkiDer(der: Uint8Array): Uint8Array | undefined {
  for (const type of ["spki", "pkcs1"] as const) {
    try {
      const key = createPublicKey({ key: Buffer.from(der), format: "der", type });
      return new Uint8Array(key.export({ format: "der", type: "spki" }));
    } catch {
      // try the next encoding
    }
  }
  return undefined;
}

export function generateStaticKeyPair(): StaticKeyPair {
  return generateKeyPair();
}

/** A new Ed25519 hostkey as PKCS#8 PEM (what `gossip keygen` writes). */
export function generateEd25519Pem(): string {
  const { privateKey } = generateKeyPairSync("ed25519");
  return privateKey.export({ format: "pem", type: "pkcs8" }).toString();
}

// RSA signatures: PSS with SHA-256 and a digest-sized salt, on both sides (no "auto" salt length when verifying).
const RSA_PSS = { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST };

/**
 * Loads a private key PEM: PKCS#8 Ed25519, or RSA as PKCS#8 or PKCS#1 ("BEGIN RSA PRIVATE KEY", what
 * `openssl genrsa -traditional` and older VoidPhone setups produce). Throws ConfigError naming `source`.
 */
export function loadIdentity(pem: string, source = "hostkey"): Identity {
  const problem = (text: string) => new ConfigError(source, "hostkey", text);
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: "pem" });
  } catch (e) {
    throw problem(`not a readable unencrypted private key PEM (${(e as Error).message})`);
  }
  const type = key.asymmetricKeyType;
  if (type !== "ed25519" && type !== "rsa") {
    throw problem(`unsupported key type ${type ?? "unknown"}; use Ed25519 or RSA`);
  }
  if (type === "rsa") {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
      throw problem(`RSA key has ${bits} bits; need ${RSA_MIN_BITS}..${RSA_MAX_BITS}`);
    }
  }
  const publicKeyDer = new Uint8Array(createPublicKey(key).export({ format: "der", type: "spki" }));
  const id = peerIdOf(publicKeyDer);
  return {
    kind: type,
    publicKeyDer,
    id,
    idHex: Buffer.from(id).toString("hex"),
    sign:
      type === "ed25519"
        ? (message) => new Uint8Array(sign(null, message, key))
        : (message) => new Uint8Array(sign("sha256", message, { key, ...RSA_PSS })),
  };
}

/** Ed25519 or RSA-PSS-SHA256 per the key's type. False for anything malformed, unsupported or oversized. */
export function verifyIdentitySignature(spkiDer: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  try {
    const key = createPublicKey({ key: Buffer.from(spkiDer), format: "der", type: "spki" });
    if (key.asymmetricKeyType === "ed25519") {
      return verify(null, message, key, signature);
    }
    if (key.asymmetricKeyType === "rsa") {
      const details = key.asymmetricKeyDetails;
      const bits = details?.modulusLength ?? 0;
      // A huge public exponent is the other way to make one verification expensive.
      const exponent = details?.publicExponent ?? 0n;
      if (bits < RSA_MIN_BITS || bits > RSA_MAX_BITS || exponent > 0xffffffffn) return false;
      return verify("sha256", message, { key, ...RSA_PSS }, signature);
    }
    return false;
  } catch {
    return false;
  }
}
