/**
 * The handshake's proof-of-work input and its reference check (one BLAKE3 call via @noble/hashes).
 *
 * input = challenge(32) ‖ responder ID(32) ‖ initiator ID(32) ‖ initiator ephemeral e_i(32) ‖ nonce(8) = 136 bytes.
 * The first 128 bytes (the "prefix") are two whole BLAKE3 blocks fixed for one handshake; only the 8-byte nonce
 * varies, so a fast solver absorbs the prefix once. Difficulty d: the 32-byte digest has ≥ d leading zero bits,
 * counted from the most significant bit of byte 0.
 */
import { blake3 } from "@noble/hashes/blake3.js";

export const POW_PREFIX_BYTES = 128;
export const POW_NONCE_BYTES = 8;
/** No honest node demands more; anything above cannot be a sane policy. */
export const POW_MAX_DIFFICULTY = 64;

export function powPrefix(
  challenge: Uint8Array,
  responderId: Uint8Array,
  initiatorId: Uint8Array,
  initiatorEphemeral: Uint8Array,
): Uint8Array {
  for (const [name, part] of [
    ["challenge", challenge],
    ["responderId", responderId],
    ["initiatorId", initiatorId],
    ["initiatorEphemeral", initiatorEphemeral],
  ] as const) {
    if (part.length !== 32) throw new RangeError(`powPrefix: ${name} must be 32 bytes, got ${part.length}`);
  }
  const prefix = new Uint8Array(POW_PREFIX_BYTES);
  prefix.set(challenge, 0);
  prefix.set(responderId, 32);
  prefix.set(initiatorId, 64);
  prefix.set(initiatorEphemeral, 96);
  return prefix;
}

/** Leading zero bits of a digest, MSB of byte 0 first. */
export function leadingZeroBits(digest: Uint8Array): number {
  let bits = 0;
  for (let i = 0; i < digest.length; i++) {
    const byte = digest[i]!;
    if (byte === 0) {
      bits += 8;
      continue;
    }
    return bits + Math.clz32(byte) - 24;
  }
  return bits;
}

/** BLAKE3(prefix ‖ nonce), the reference every faster kernel must match. */
export function powDigest(prefix: Uint8Array, nonce: Uint8Array): Uint8Array {
  if (prefix.length !== POW_PREFIX_BYTES) throw new RangeError(`powDigest: prefix must be ${POW_PREFIX_BYTES} bytes`);
  if (nonce.length !== POW_NONCE_BYTES) throw new RangeError(`powDigest: nonce must be ${POW_NONCE_BYTES} bytes`);
  const input = new Uint8Array(POW_PREFIX_BYTES + POW_NONCE_BYTES);
  input.set(prefix, 0);
  input.set(nonce, POW_PREFIX_BYTES);
  return blake3(input);
}

/** The verifier's whole cost: one hash. */
export function verifyPow(prefix: Uint8Array, nonce: Uint8Array, difficulty: number): boolean {
  if (nonce.length !== POW_NONCE_BYTES) return false;
  return leadingZeroBits(powDigest(prefix, nonce)) >= difficulty;
}
