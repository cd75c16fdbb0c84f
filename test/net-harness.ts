/**
 * Whole in-process nodes for tests: real API servers and P2P transports on 127.0.0.1 (port 0), one shared PoW pool,
 * and API modules that subscribe and answer. `cleanup()` after each test, `close()` after the file.
 */
import type { NodeConfig } from "../src/config.ts";
import { silentLogger, type Logger } from "../src/log.ts";
import { startNode, type GossipNode, type NodeOptions } from "../src/node.ts";
import { generateEd25519Pem, loadIdentity, type Identity } from "../src/p2p/identity.ts";
import { PowPool } from "../src/p2p/pow-pool.ts";
import { ApiClient } from "../src/client/api-client.ts";
import { waitFor } from "./wait-for.ts";

export interface NodeSpec {
  bootstrapPort?: number;
  degree?: number;
  validationTimeoutMs?: number;
  rpsPort?: number;
  p2pHost?: string;
  /** 0 (default) = any free port; a fixed one to restart a node where its peers knew it. */
  p2pPort?: number;
  /** Reuse a hostkey (a node restarted after a crash). */
  identity?: Identity;
  powDifficulty?: number;
  cacheSize?: number;
  /** gossip.dissemination (default plumtree) and gossip.overlay (default classic). */
  dissemination?: NodeConfig["dissemination"];
  overlay?: NodeConfig["overlay"];
  log?: Logger;
  membership?: NodeOptions["membership"];
  transport?: NodeOptions["transport"];
  api?: NodeOptions["api"];
  score?: NodeOptions["score"];
  usefulness?: NodeOptions["usefulness"];
  /** An adversary (NodeOptions.behaviour: "censor" drops every item and tree message it receives). */
  behaviour?: NodeOptions["behaviour"];
}

/** A node config for in-process tests: loopback, any free ports, degree 3, PoW difficulty 4; `overrides` win. */
export function testConfig(overrides: Partial<NodeConfig> = {}): NodeConfig {
  return {
    source: "<test>",
    hostkeyPath: "",
    apiAddress: { host: "127.0.0.1", port: 0 },
    p2pAddress: { host: "127.0.0.1", port: 0 },
    bootstrappers: [],
    degree: 3,
    cacheSize: 5,
    powDifficulty: 4,
    maxPowDifficulty: 8,
    validationTimeoutMs: 2000,
    logLevel: "error",
    ...overrides,
  };
}

/** The bootstrapper list for a node on this machine's `port`, or none. */
/** Whether `n` holds a link to the peer with ID `peer` now. */
export const linked = (n: GossipNode, peer: string) => n.transport.linked().some((l) => l.info.peerId === peer);

export const bootstrapAt = (port: number | undefined) => (port ? [{ host: "127.0.0.1", port }] : []);

/** Whether the links among `ns` (links to nodes outside ignored) form one connected graph. */
export function connected(ns: GossipNode[]): boolean {
  const byId = new Map(ns.map((n) => [n.identity.idHex, n]));
  const reached = new Set<GossipNode>([ns[0]!]);
  const queue = [ns[0]!];
  while (queue.length > 0) {
    for (const l of queue.pop()!.transport.linked()) {
      const next = byId.get(l.info.peerId);
      if (next && !reached.has(next)) {
        reached.add(next);
        queue.push(next);
      }
    }
  }
  return reached.size === ns.length;
}

export function createHarness() {
  const pow = new PowPool({ size: 1 });
  const nodes: GossipNode[] = [];
  const clients: ApiClient[] = [];

  async function node(spec: NodeSpec = {}): Promise<GossipNode> {
    const config = testConfig({
      p2pAddress: { host: spec.p2pHost ?? "127.0.0.1", port: spec.p2pPort ?? 0 },
      bootstrappers: bootstrapAt(spec.bootstrapPort),
      degree: spec.degree ?? 3,
      cacheSize: spec.cacheSize ?? 5,
      powDifficulty: spec.powDifficulty ?? 4,
      validationTimeoutMs: spec.validationTimeoutMs ?? 2000,
      rpsApiAddress: spec.rpsPort ? { host: "127.0.0.1", port: spec.rpsPort } : undefined,
      dissemination: spec.dissemination,
      overlay: spec.overlay,
    });
    const n = await startNode(config, spec.identity ?? loadIdentity(generateEd25519Pem()), spec.log ?? silentLogger, {
      pow,
      membership: { tickMs: 100, backoffInitialMs: 50, ...spec.membership },
      transport: spec.transport,
      api: spec.api,
      score: spec.score,
      usefulness: spec.usefulness,
      behaviour: spec.behaviour,
    });
    nodes.push(n);
    return n;
  }

  /** A module that subscribes to a type and answers every NOTIFICATION with the verdict (never, if "silent"; a
   *  function of the item's text decides per item). */
  async function subscriber(n: GossipNode, dataType: number, verdict: boolean | "silent" | ((text: string) => boolean) = true) {
    const client = await ApiClient.connect(n.api.port);
    clients.push(client);
    const received: string[] = [];
    client.onMessage = (m) => {
      if (m.kind !== "notification") return;
      const text = new TextDecoder().decode(m.data);
      received.push(text);
      const valid = typeof verdict === "function" ? verdict(text) : verdict;
      if (valid !== "silent") client.validate(m.messageId, valid);
    };
    client.subscribe(dataType);
    await waitFor(() => n.api.hasSubscribers(dataType), 3000, "subscription");
    return { client, received };
  }

  async function announce(n: GossipNode, dataType: number, text: string, ttl = 0): Promise<void> {
    const client = await ApiClient.connect(n.api.port);
    clients.push(client);
    client.announce(dataType, new TextEncoder().encode(text), ttl);
  }

  /** Stops one node now (churn); cleanup() will not stop it again. */
  async function stop(n: GossipNode): Promise<void> {
    nodes.splice(nodes.indexOf(n), 1);
    await n.stop();
  }

  /** Stops every node but `keep` (a file's long-lived fixtures, such as the hostile suite's canary). */
  async function stopAllBut(keep: GossipNode[]): Promise<void> {
    const going = nodes.filter((n) => !keep.includes(n));
    for (const n of going) nodes.splice(nodes.indexOf(n), 1);
    await Promise.all(going.map((n) => n.stop()));
  }

  async function cleanup(): Promise<void> {
    for (const c of clients.splice(0)) c.close();
    await Promise.all(nodes.splice(0).map((n) => n.stop()));
  }

  return { node, subscriber, announce, stop, stopAllBut, cleanup, pow, close: () => pow.close() };
}
