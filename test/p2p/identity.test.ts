// Identity keys (Ed25519, RSA incl. VoidPhone's PKCS#1 4096-bit hostkeys), peer IDs and static-key signatures.
import { describe, expect, test } from "bun:test";
import { blake3 } from "@noble/hashes/blake3.js";
import fc from "fast-check";
import { constants, createPrivateKey, createPublicKey, generateKeyPairSync, sign } from "node:crypto";
import { ConfigError } from "../../src/errors.ts";
import {
  generateEd25519Pem,
  generateStaticKeyPair,
  loadIdentity,
  peerIdOf,
  staticKeyProofMessage,
  toSpkiDer,
  verifyIdentitySignature,
} from "../../src/p2p/identity.ts";
import { keyPairFromPrivateKey } from "../../src/p2p/noise.ts";

// One 4096-bit RSA key in PKCS#1 PEM ("BEGIN RSA PRIVATE KEY"), as VoidPhone's `openssl genrsa 4096` hostkeys are.
const rsa4096Pem = generateKeyPairSync("rsa", {
  modulusLength: 4096,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
}).privateKey;

const message = staticKeyProofMessage(generateStaticKeyPair().publicKey);

function loadError(pem: string): ConfigError {
  try {
    loadIdentity(pem, "/etc/gossip/hostkey.pem");
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("Ed25519 identity", () => {
  const pem = generateEd25519Pem();
  const id = loadIdentity(pem);

  test("generated as PKCS#8 PEM and loaded back", () => {
    expect(pem.startsWith("-----BEGIN PRIVATE KEY-----")).toBe(true);
    expect(id.kind).toBe("ed25519");
    expect(id.publicKeyDer.length).toBe(44);
  });

  test("ID = BLAKE3(DER SPKI), also as lowercase hex", () => {
    const spki = createPublicKey(createPrivateKey(pem)).export({ format: "der", type: "spki" });
    expect(id.publicKeyDer).toEqual(new Uint8Array(spki));
    expect(id.id).toEqual(blake3(spki));
    expect(peerIdOf(id.publicKeyDer)).toEqual(id.id);
    expect(id.idHex).toBe(Buffer.from(id.id).toString("hex"));
    expect(id.idHex).toMatch(/^[0-9a-f]{64}$/);
  });

  test("signatures verify for this message and key only", () => {
    const sig = id.sign(message);
    expect(verifyIdentitySignature(id.publicKeyDer, message, sig)).toBe(true);
    const other = Uint8Array.from(message);
    other[other.length - 1]! ^= 1;
    expect(verifyIdentitySignature(id.publicKeyDer, other, sig)).toBe(false);
    expect(verifyIdentitySignature(loadIdentity(generateEd25519Pem()).publicKeyDer, message, sig)).toBe(false);
    expect(verifyIdentitySignature(id.publicKeyDer, message, sig.subarray(0, 63))).toBe(false);
  });
});

describe("RSA identity", () => {
  const rsa = loadIdentity(rsa4096Pem);

  test("VoidPhone's PKCS#1 4096-bit PEM loads", () => {
    expect(rsa4096Pem.startsWith("-----BEGIN RSA PRIVATE KEY-----")).toBe(true);
    expect(rsa.kind).toBe("rsa");
    expect(rsa.id).toEqual(blake3(rsa.publicKeyDer));
  });

  test("the same key as PKCS#8 has the same ID", () => {
    const pkcs8 = createPrivateKey(rsa4096Pem).export({ format: "pem", type: "pkcs8" }).toString();
    expect(loadIdentity(pkcs8).idHex).toBe(rsa.idHex);
  });

  test("signs with RSA-PSS SHA-256; PKCS#1 v1.5 signatures are not accepted", () => {
    const sig = rsa.sign(message);
    expect(sig.length).toBe(512);
    expect(verifyIdentitySignature(rsa.publicKeyDer, message, sig)).toBe(true);
    const v15 = sign("sha256", message, { key: createPrivateKey(rsa4096Pem), padding: constants.RSA_PKCS1_PADDING });
    expect(verifyIdentitySignature(rsa.publicKeyDer, message, v15)).toBe(false);
    expect(verifyIdentitySignature(rsa.publicKeyDer, message.subarray(1), sig)).toBe(false);
  });

  test("an RSA public key in PKCS#1 DER (as some RPS peers send it) maps to the same SPKI", () => {
    const pkcs1 = createPublicKey(rsa4096Pem).export({ format: "der", type: "pkcs1" });
    expect(toSpkiDer(pkcs1)).toEqual(rsa.publicKeyDer);
    expect(toSpkiDer(rsa.publicKeyDer)).toEqual(rsa.publicKeyDer);
    expect(toSpkiDer(new Uint8Array([1, 2, 3]))).toBeUndefined();
  });

  test("keys below 2048 bits are refused, when loading and when verifying", () => {
    const small = generateKeyPairSync("rsa", { modulusLength: 1024 });
    const pem = small.privateKey.export({ format: "pem", type: "pkcs1" }).toString();
    expect(loadError(pem).problem).toContain("1024 bits");
    const der = small.publicKey.export({ format: "der", type: "spki" });
    const sig = sign("sha256", message, {
      key: small.privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
    });
    expect(verifyIdentitySignature(der, message, sig)).toBe(false);
  });
});

describe("refusals", () => {
  test("unusable PEMs give a ConfigError naming the file and the hostkey key", () => {
    const e = loadError("not a key");
    expect(e.file).toBe("/etc/gossip/hostkey.pem");
    expect(e.key).toBe("hostkey");
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ format: "pem", type: "pkcs8" });
    expect(loadError(ec.toString()).problem).toContain("unsupported key type ec");
    const publicOnly = createPublicKey(generateEd25519Pem()).export({ format: "pem", type: "spki" }).toString();
    loadError(publicOnly);
  });

  test("verification returns false, never throws, for garbage keys and signatures", () => {
    const ed = loadIdentity(generateEd25519Pem());
    const sig = ed.sign(message);
    const x25519Spki = generateKeyPairSync("x25519").publicKey.export({ format: "der", type: "spki" });
    expect(verifyIdentitySignature(x25519Spki, message, sig)).toBe(false);
    expect(verifyIdentitySignature(new Uint8Array(0), message, sig)).toBe(false);
    expect(verifyIdentitySignature(ed.publicKeyDer, message, new Uint8Array(0))).toBe(false);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.uint8Array({ maxLength: 600 }), (key, signature) => {
        expect(verifyIdentitySignature(key, message, signature)).toBe(false);
        // A real key corrupted in one place (chosen by the generated bytes).
        if (key.length === 0) return;
        const bent = Uint8Array.from(ed.publicKeyDer);
        bent[key[0]! % bent.length]! ^= key.length | 1;
        expect(verifyIdentitySignature(bent, message, sig)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

describe("static keys and the signed message", () => {
  test("fresh raw X25519 pairs", () => {
    const a = generateStaticKeyPair();
    const b = generateStaticKeyPair();
    expect(a.publicKey.length).toBe(32);
    expect(a.privateKey.length).toBe(32);
    expect(a.publicKey).not.toEqual(b.publicKey);
    expect(keyPairFromPrivateKey(a.privateKey).publicKey).toEqual(a.publicKey);
  });

  test("the identity signs a labelled message, not the bare static key", () => {
    const s = generateStaticKeyPair().publicKey;
    const m = staticKeyProofMessage(s);
    expect(new TextDecoder().decode(m.subarray(0, m.length - 32))).toBe("voidphone-gossip-v1 static key");
    expect(m.subarray(m.length - 32)).toEqual(s);
    const ed = loadIdentity(generateEd25519Pem());
    expect(verifyIdentitySignature(ed.publicKeyDer, s, ed.sign(m))).toBe(false);
  });
});
