/**
 * The identity proof of work beside the hostkey (issue 17, identity cost; src/p2p/identity-pow.ts): `/x/node1.pem` →
 * `/x/node1.identity-pow`, one line with the 8-byte nonce in hex. At start a node with identity_pow_difficulty k > 0
 * uses the stored nonce if it proves ≥ k bits for this hostkey's ID, and otherwise solves one (2^k hashes on the PoW
 * pool, once) and stores it (temporary file, rename). Must never store a nonce that does not verify, or fail the start
 * for an unreadable or stale file (it is solved again and replaced).
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { basename, dirname, extname, join } from "node:path";
import type { Logger } from "./log.ts";
import type { Identity } from "./p2p/identity.ts";
import { solveIdentityPow, verifyIdentityPow, type IdentityPowSolver } from "./p2p/identity-pow.ts";

export function identityPowPathFor(hostkeyPath: string): string {
  const name = basename(hostkeyPath, extname(hostkeyPath));
  return join(dirname(hostkeyPath), `${name}.identity-pow`);
}

/** The stored nonce, if the file holds one that proves ≥ `difficulty` bits for `identity`. */
export function readIdentityPow(path: string, identity: Identity, difficulty: number): Uint8Array | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
  if (!/^[0-9a-f]{16}$/.test(text)) return undefined;
  const nonce = Uint8Array.from(Buffer.from(text, "hex"));
  return verifyIdentityPow(identity.id, nonce, difficulty) ? nonce : undefined;
}

/**
 * `identity` with a nonce of ≥ `difficulty` bits: the stored one, or a new one (stored at `path` unless it is
 * undefined: a node without a hostkey file keeps it in memory). Difficulty 0: `identity` as it is.
 */
export async function withIdentityPow(
  identity: Identity,
  difficulty: number,
  solver: IdentityPowSolver,
  path: string | undefined,
  log: Logger,
): Promise<Identity> {
  if (difficulty <= 0) return identity;
  if (identity.identityNonce !== undefined && verifyIdentityPow(identity.id, identity.identityNonce, difficulty)) return identity;
  const stored = path === undefined ? undefined : readIdentityPow(path, identity, difficulty);
  if (stored !== undefined) return { ...identity, identityNonce: stored };
  log.info("identity pow solving", { difficulty });
  const started = performance.now();
  const nonce = await solveIdentityPow(identity.id, difficulty, solver);
  if (!verifyIdentityPow(identity.id, nonce, difficulty)) throw new Error("identity proof of work: the solver returned a nonce that does not verify");
  log.info("identity pow solved", { difficulty, ms: Math.round(performance.now() - started) });
  if (path !== undefined) {
    try {
      const tmp = `${path}.tmp-${process.pid}`;
      writeFileSync(tmp, Buffer.from(nonce).toString("hex") + "\n", { mode: 0o600 });
      renameSync(tmp, path);
    } catch (e) {
      log.warn("identity pow not stored", { path, error: e as Error });
    }
  }
  return { ...identity, identityNonce: nonce };
}
