/**
 * Identity cost (issue 17, optional, default off): a proof of work per identity, so that a fresh ID after a ban costs
 * 2^k hashes instead of nothing. The peer ID stays BLAKE3(DER key) (RPS hostkeys still name peers); the work is a
 * nonce beside it:
 *
 *   BLAKE3("voidphone-gossip-v1 identity pow"(32) ‖ peer ID(32) ‖ 64 zero bytes ‖ nonce(8)) has ≥ k leading zero bits
 *
 * — the handshake PoW's 128-byte prefix + 8-byte nonce shape (pow-input.ts), so the same kernel and worker pool solve
 * it at native speed. Carried in IdentityProof.identity_nonce; stored beside the hostkey (src/identity-pow-store.ts).
 * Pure: hashing only, no I/O.
 */
import { POW_NONCE_BYTES, POW_PREFIX_BYTES, verifyPow } from "./pow-input.ts";

const LABEL = new TextEncoder().encode("voidphone-gossip-v1 identity pow");
if (LABEL.length !== 32) throw new Error("identity PoW label must be 32 bytes");

/** The fixed 128-byte input before the nonce, for an identity's 32-byte peer ID. */
export function identityPowPrefix(peerId: Uint8Array): Uint8Array {
  if (peerId.length !== 32) throw new RangeError(`identityPowPrefix: the peer ID must be 32 bytes, got ${peerId.length}`);
  const prefix = new Uint8Array(POW_PREFIX_BYTES);
  prefix.set(LABEL, 0);
  prefix.set(peerId, 32);
  return prefix;
}

/** Whether `nonce` proves ≥ `difficulty` bits of work for `peerId` (one hash). Difficulty 0: always. */
export function verifyIdentityPow(peerId: Uint8Array, nonce: Uint8Array | undefined, difficulty: number): boolean {
  if (difficulty <= 0) return true;
  if (nonce === undefined || nonce.length !== POW_NONCE_BYTES) return false;
  return verifyPow(identityPowPrefix(peerId), nonce, difficulty);
}

/** What solves a prefix (the node's PowPool, or a test's inline solver). */
export interface IdentityPowSolver {
  solve(prefix: Uint8Array, difficulty: number): Promise<{ nonce: Uint8Array }>;
}

/** Finds a nonce with ≥ `difficulty` bits for `peerId`. */
export async function solveIdentityPow(peerId: Uint8Array, difficulty: number, solver: IdentityPowSolver): Promise<Uint8Array> {
  const { nonce } = await solver.solve(identityPowPrefix(peerId), difficulty);
  return Uint8Array.from(nonce);
}
