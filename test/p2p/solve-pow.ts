/** Proof of work for tests, on the event loop: a plain nonce search and a PowSolver (connection.ts) built on it. */
import type { PowSolver } from "../../src/p2p/connection.ts";
import { leadingZeroBits, powDigest } from "../../src/p2p/pow-input.ts";

/** The first nonce whose digest has ≥ `difficulty` leading zero bits (and fewer than `below`, to fake weak work). */
export function solvePow(prefix: Uint8Array, difficulty: number, below = 257): Uint8Array {
  const nonce = new Uint8Array(8);
  const view = new DataView(nonce.buffer);
  for (let i = 0n; ; i++) {
    view.setBigUint64(0, i);
    const bits = leadingZeroBits(powDigest(prefix, nonce));
    if (bits >= difficulty && bits < below) return nonce;
  }
}

/** Solves at once (difficulties 0–8 in tests), after `before` if given (to stall a handshake before its M1). */
export function inlineSolver(before?: () => Promise<void>): PowSolver {
  return {
    async solve(prefix, difficulty, signal) {
      await before?.();
      signal?.throwIfAborted();
      return { nonce: solvePow(prefix, difficulty) };
    },
  };
}
