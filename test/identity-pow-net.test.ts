/**
 * Identity cost on real nodes (issue 17; real sockets on 127.0.0.1, real handshakes): nodes with
 * gossip.identity_pow_difficulty k link to each other, refuse a node whose identity carries no work ("weak-identity"),
 * keep the proof beside the hostkey across restarts, and keep their peer IDs; with it off (the default) a node with a
 * proof and one without link as before.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateHostkey, type NodeConfig } from "../src/config.ts";
import { identityPowPathFor } from "../src/identity-pow-store.ts";
import { silentLogger } from "../src/log.ts";
import { startNode, type GossipNode } from "../src/node.ts";
import { generateEd25519Pem, loadIdentity, type Identity } from "../src/p2p/identity.ts";
import { solveIdentityPow, verifyIdentityPow } from "../src/p2p/identity-pow.ts";
import { PowPool } from "../src/p2p/pow-pool.ts";
import { testConfig } from "./net-harness.ts";
import { waitFor } from "./wait-for.ts";

const K = 8;
const pow = new PowPool({ size: 1 });
const nodes: GossipNode[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
afterAll(() => pow.close());

async function node(overrides: Partial<NodeConfig>, identity?: Identity): Promise<GossipNode> {
  const config = testConfig(overrides);
  const id = identity ?? (config.hostkeyPath ? loadOrCreateHostkey(config).identity : loadIdentity(generateEd25519Pem()));
  const n = await startNode(config, id, silentLogger, { pow, membership: { tickMs: 100, backoffInitialMs: 50 } });
  nodes.push(n);
  return n;
}

const linked = (a: GossipNode, b: GossipNode) => a.transport.linked().some((l) => l.info.peerId === b.identity.idHex);
const failures = (n: GossipNode, reason: string) => n.transport.stats().handshakesFailed.get(reason as never) ?? 0;

test("k bits demanded: nodes with the work link; a node without is refused as weak-identity, either way round", async () => {
  const a = await node({ identityPowDifficulty: K });
  const b = await node({ identityPowDifficulty: K });
  expect(verifyIdentityPow(a.identity.id, a.identity.identityNonce, K)).toBe(true);
  await b.transport.dial("127.0.0.1", a.transport.port, a.identity.idHex);
  await waitFor(() => linked(a, b) && linked(b, a), 5000, "a and b linked");
  // A node without identity work (identity cost off, as every node before it) dials a: refused after the proof.
  const plain = await node({});
  expect(plain.identity.identityNonce).toBeUndefined();
  // (The initiator is done once it sent M3; the refusal comes with the responder's check of it, and the link closes.)
  await plain.transport.dial("127.0.0.1", a.transport.port, a.identity.idHex).catch(() => {});
  await waitFor(() => failures(a, "weak-identity") >= 1, 5000, "a refused the plain node");
  await waitFor(() => !linked(plain, a), 5000, "the plain node's side closed");
  // And a refuses it when it dials the plain node (the responder's proof comes in M2).
  await expect(a.transport.dial("127.0.0.1", plain.transport.port, plain.identity.idHex)).rejects.toThrow();
  expect(failures(a, "weak-identity")).toBeGreaterThanOrEqual(2);
  expect(linked(a, plain) || linked(plain, a)).toBe(false);
}, 30_000);

test("identity cost off (the default): a node whose identity carries a proof and one without link as before", async () => {
  const identity = loadIdentity(generateEd25519Pem());
  const carrier = await node({}, { ...identity, identityNonce: await solveIdentityPow(identity.id, K, pow) });
  const plain = await node({});
  await plain.transport.dial("127.0.0.1", carrier.transport.port, carrier.identity.idHex);
  await waitFor(() => linked(carrier, plain) && linked(plain, carrier), 5000, "linked");
  const other = await node({});
  await carrier.transport.dial("127.0.0.1", other.transport.port, other.identity.idHex);
  await waitFor(() => linked(carrier, other), 5000, "linked the other way round");
}, 30_000);

test("the proof is stored beside the hostkey, reused after a restart, solved again when it does not fit; the peer ID stays", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gossip-idpow-"));
  dirs.push(dir);
  const hostkeyPath = join(dir, "node1.pem");
  const first = await node({ hostkeyPath, identityPowDifficulty: K });
  const file = identityPowPathFor(hostkeyPath);
  expect(file).toBe(join(dir, "node1.identity-pow"));
  const stored = readFileSync(file, "utf8").trim();
  expect(stored).toMatch(/^[0-9a-f]{16}$/);
  expect(Buffer.from(first.identity.identityNonce!).toString("hex")).toBe(stored);
  const id = first.identity.idHex;
  expect(id).toBe(loadOrCreateHostkey(testConfig({ hostkeyPath })).identity.idHex); // BLAKE3(DER key), as without
  await first.stop();
  nodes.splice(nodes.indexOf(first), 1);
  const again = await node({ hostkeyPath, identityPowDifficulty: K });
  expect(Buffer.from(again.identity.identityNonce!).toString("hex")).toBe(stored);
  expect(again.identity.idHex).toBe(id);
  await again.stop();
  nodes.splice(nodes.indexOf(again), 1);
  // A corrupt file is solved again and replaced.
  writeFileSync(file, "not a nonce\n");
  const repaired = await node({ hostkeyPath, identityPowDifficulty: K });
  expect(verifyIdentityPow(repaired.identity.id, repaired.identity.identityNonce, K)).toBe(true);
  expect(readFileSync(file, "utf8").trim()).toMatch(/^[0-9a-f]{16}$/);
}, 30_000);
