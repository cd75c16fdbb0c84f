/**
 * The peer store: the file format, its bounds, atomic writes, corrupt files (warned about and ignored, never a
 * crash), and the reason it exists: a node restarted while its bootstrapper is down rejoins through a peer it
 * remembered. Real files in a temporary folder, real in-process nodes on 127.0.0.1.
 */
import { afterAll, afterEach, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadOrCreateHostkey } from "../src/config.ts";
import { bootstrapAt, testConfig } from "./net-harness.ts";
import { silentLogger, type Logger } from "../src/log.ts";
import { startNode, type GossipNode } from "../src/node.ts";
import { PowPool } from "../src/p2p/pow-pool.ts";
import { PeerStore, parsePeerStore, peerStorePathFor } from "../src/peer-store.ts";
import { captureLogger } from "./api/client.ts";
import { waitFor } from "./wait-for.ts";

const dir = mkdtempSync(join(tmpdir(), "gossip-peer-store-"));
const id = (n: number) => n.toString(16).padStart(64, "0");
let fileNo = 0;
const freshPath = () => join(dir, `store-${++fileNo}.peers.json`);

test("the store sits beside the hostkey, named after it", () => {
  expect(peerStorePathFor("/var/lib/gossip/hostkey.pem")).toBe("/var/lib/gossip/hostkey.peers.json");
  expect(peerStorePathFor("node2.pem")).toBe("node2.peers.json");
  expect(peerStorePathFor("/x/key")).toBe("/x/key.peers.json");
});

test("recorded peers survive a reload, most recently seen first; the file is 0600 and no temporary file is left", () => {
  const path = freshPath();
  let now = 1_700_000_000_000;
  const store = new PeerStore({ path, log: silentLogger, now: () => now });
  expect(store.load()).toEqual([]); // no file yet: an empty store, no warning needed
  store.record({ id: id(1), host: "10.0.0.1", port: 6001 });
  now += 1000;
  store.record({ id: id(2), host: "::1", port: 6002 });
  now += 1000;
  store.touch(id(1));
  store.record({ id: id(3), host: "10.0.0.3", port: 0 }); // no dialable port: not stored
  store.record({ id: "not-an-id", host: "10.0.0.4", port: 6004 });
  store.close();

  expect(statSync(path).mode & 0o777).toBe(0o600);
  expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);
  const again = new PeerStore({ path, log: silentLogger }).load();
  expect(again).toEqual([
    { id: id(1), host: "10.0.0.1", port: 6001, lastSeen: 1_700_000_002_000 },
    { id: id(2), host: "::1", port: 6002, lastSeen: 1_700_000_001_000 },
  ]);
  expect(JSON.parse(readFileSync(path, "utf8")).peers[0].last_seen).toBe("2023-11-14T22:13:22.000Z");
});

test("bounded: only the most recently seen maxPeers are kept", () => {
  const path = freshPath();
  let now = 0;
  const store = new PeerStore({ path, log: silentLogger, maxPeers: 3, now: () => ++now });
  for (let i = 1; i <= 6; i++) store.record({ id: id(i), host: "10.0.0.1", port: 6000 + i });
  store.record({ id: id(2), host: "10.0.0.1", port: 6002 }); // seen again: now the newest
  store.close();
  expect(new PeerStore({ path, log: silentLogger }).load().map((p) => p.id)).toEqual([id(2), id(6), id(5)]);
});

test("a corrupt file logs a warning and is ignored, then replaced; bad entries are skipped, good ones kept", () => {
  for (const garbage of ["{not json", "[]", '{"version":2,"peers":[]}', '{"version":1}', "\u0000\u0001"]) {
    const path = freshPath();
    writeFileSync(path, garbage);
    const log = captureLogger();
    const store = new PeerStore({ path, log });
    expect(store.load()).toEqual([]);
    expect(log.entries.map((e) => [e.level, e.event, e.fields.reason])).toEqual([["warn", "peer store ignored", "corrupt"]]);
    store.record({ id: id(9), host: "10.0.0.9", port: 6009 });
    store.close();
    expect(parsePeerStore(readFileSync(path, "utf8")).peers.map((p) => p.id)).toEqual([id(9)]);
  }
  const mixed = JSON.stringify({
    version: 1,
    peers: [
      { id: id(1), host: "10.0.0.1", port: 6001, last_seen: "2026-01-01T00:00:00Z" },
      { id: id(2), host: "10.0.0.2", port: 70000, last_seen: "2026-01-01T00:00:00Z" },
      { id: "zz", host: "10.0.0.3", port: 6003, last_seen: "2026-01-01T00:00:00Z" },
      { id: id(4), host: "", port: 6004, last_seen: "2026-01-01T00:00:00Z" },
      { id: id(5), host: "10.0.0.5", port: 6005, last_seen: "yesterday" },
      null,
      7,
    ],
  });
  expect(parsePeerStore(mixed)).toEqual({ peers: [{ id: id(1), host: "10.0.0.1", port: 6001, lastSeen: Date.parse("2026-01-01T00:00:00Z") }] });
});

test("an unreadable store or an unwritable folder is a warning, never a throw", () => {
  const asDir = join(dir, "a-directory.peers.json");
  mkdirSync(asDir);
  const log = captureLogger();
  const store = new PeerStore({ path: asDir, log });
  expect(store.load()).toEqual([]);
  store.record({ id: id(1), host: "10.0.0.1", port: 6001 });
  expect(() => store.close()).not.toThrow();
  expect(log.entries.map((e) => [e.event, e.fields.reason])).toEqual([["peer store ignored", "unreadable"], ["peer store not saved", undefined]]);
  expect(readdirSync(dir).filter((f) => f.includes(".tmp-"))).toEqual([]);

  const nowhere = new PeerStore({ path: join(dir, "missing", "x.peers.json"), log });
  nowhere.record({ id: id(1), host: "10.0.0.1", port: 6001 });
  expect(() => nowhere.close()).not.toThrow();
});

// ---------------------------------------------------------------------------------------------------------------
// Whole nodes

/** Whole-node tests wait for real handshakes (and restarts) on a machine with about one core. */
const NODE_TEST_TIMEOUT = 20_000;
const pow = new PowPool({ size: 1 });
const running: GossipNode[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((n) => n.stop()));
});
afterAll(() => pow.close());

async function node(opts: { hostkeyPath?: string; bootstrapPort?: number; log?: Logger }): Promise<GossipNode> {
  const config = testConfig({ hostkeyPath: opts.hostkeyPath ?? "", bootstrappers: bootstrapAt(opts.bootstrapPort) });
  // With a hostkey path the node keeps its identity across restarts and its peer store beside the key.
  const identity = opts.hostkeyPath ? loadOrCreateHostkey(config).identity : loadOrCreateHostkey({ ...config, hostkeyPath: join(dir, `anon-${++fileNo}.pem`) }).identity;
  const n = await startNode(config, identity, opts.log ?? silentLogger, { pow, membership: { tickMs: 100, backoffInitialMs: 50 } });
  running.push(n);
  return n;
}

async function stop(n: GossipNode): Promise<void> {
  running.splice(running.indexOf(n), 1);
  await n.stop();
}

test("restarted while its bootstrapper is down, a node rejoins through a peer from its store", async () => {
  const hostkeyPath = join(dir, "a.pem");
  const bootstrapper = await node({});
  const a = await node({ hostkeyPath, bootstrapPort: bootstrapper.transport.port });
  const c = await node({ bootstrapPort: a.transport.port }); // c dials a: a learns c's listen port from the handshake
  await waitFor(() => a.transport.linked().length === 2, 5000, "a linked to the bootstrapper and c");
  const bootPort = bootstrapper.transport.port;
  await stop(a);
  await stop(bootstrapper);

  const stored = JSON.parse(readFileSync(join(dir, "a.peers.json"), "utf8")).peers;
  expect(stored.map((p: { id: string }) => p.id).sort()).toEqual([bootstrapper.identity.idHex, c.identity.idHex].sort());
  expect(stored.find((p: { id: string }) => p.id === c.identity.idHex).port).toBe(c.transport.port);

  // Same hostkey and store, a new P2P port (so c cannot find it), the bootstrapper's address dead.
  const a2 = await node({ hostkeyPath, bootstrapPort: bootPort });
  expect(a2.identity.idHex).toBe(a.identity.idHex);
  await waitFor(() => a2.transport.linked().some((l) => l.info.peerId === c.identity.idHex), 4000, "a rejoined through c");
  expect(a2.transport.linked()[0]!.info.inbound).toBe(false);
}, NODE_TEST_TIMEOUT);

test("a node whose peer store is corrupt starts anyway and says so", async () => {
  const hostkeyPath = join(dir, "corrupt.pem");
  writeFileSync(join(dir, "corrupt.peers.json"), "]]] not a peer store");
  const log = captureLogger();
  const n = await node({ hostkeyPath, log });
  expect(n.api.port).toBeGreaterThan(0);
  expect(log.entries.some((e) => e.level === "warn" && e.event === "peer store ignored" && e.fields.reason === "corrupt")).toBe(true);
}, NODE_TEST_TIMEOUT);
