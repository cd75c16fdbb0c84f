/**
 * A local test network: N whole gossip nodes in this process on consecutive (or ephemeral) loopback ports, hostkeys in
 * one shared directory, each node dialing a few random others, and on every node one module on the VoidPhone API (the
 * shared client, src/client/api-client.ts) that subscribes and validates what it is notified of, and can announce.
 * Optionally K adversary nodes besides them (NodeOptions.behaviour, e.g. censors): whole nodes on the same transport,
 * dialing and dialed like the others, with no module.
 * `gossip testnet` (src/cli/testnet.ts) runs it with a live summary; tests and `bench net` use startTestnet directly.
 *
 * Everything goes through the real parts: real sockets, real handshakes, the VoidPhone API over TCP. Must never: leave
 * a node, socket or temp directory behind after stop(), or let a module's slowness throw out of a socket handler.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "../client/api-client.ts";
import { DEFAULTS, type NodeConfig } from "../config.ts";
import { linkTotals } from "../control/metrics.ts";
import {
  TESTNET_DIAL_RETRIES,
  TESTNET_DIAL_RETRY_MS,
  TESTNET_DEGREE,
  TESTNET_DIALS_PER_NODE,
  TESTNET_MODULE_SEND_LIMIT_BYTES,
  TESTNET_POW_DIFFICULTY,
  TESTNET_SUBSCRIBE_TIMEOUT_MS,
} from "../defaults.ts";
import { silentLogger, type Logger } from "../log.ts";
import { startNode, type GossipNode } from "../node.ts";
import { generateEd25519Pem, loadIdentity } from "../p2p/identity.ts";
import { PowPool } from "../p2p/pow-pool.ts";
import { seededRandom } from "../util/random.ts";
import { randomDials } from "./dials.ts";
import { PROBE_DATA_TYPE, readProbe } from "./probe.ts";

export interface TestnetOptions {
  nodes: number;
  /** Node i listens for peers on basePort + i and serves the API on basePort + 1000 + i; 0 or unset: ephemeral. */
  basePort?: number;
  /** Node i serves its control server (dashboard, /metrics, /status) on controlBasePort + i; 0: ephemeral ports;
   *  unset: no control servers. */
  controlBasePort?: number;
  host?: string;
  /** Shared directory for the hostkeys (node-<i>.pem, created if missing); default a new temp dir, removed on stop. */
  dir?: string;
  powDifficulty?: number;
  degree?: number;
  /** `gossip.dissemination` and `gossip.overlay` of every node (default: the config's defaults). */
  dissemination?: "plumtree" | "flood";
  overlay?: "hyparview" | "classic";
  cacheSize?: number;
  /** Each node dials this many distinct random others (default TESTNET_DIALS_PER_NODE). */
  dialsPerNode?: number;
  validationTimeoutMs?: number;
  /**
   * Keep membership running after the random dials (default), so nodes short of `degree` links dial more by peer
   * exchange. false: the graph stays exactly the dials' (what the benchmark compares).
   */
  membership?: boolean;
  /** Seeds the choice of whom each node dials. */
  seed?: number;
  /** Data types every node's module subscribes to (PROBE_DATA_TYPE always). */
  dataTypes?: number[];
  /** Called for every NOTIFICATION on node `node`; false = invalid. Default: probes must parse, others are valid. */
  onNotification?: (node: number, dataType: number, data: Uint8Array) => boolean | void;
  /**
   * Adversary nodes besides the `nodes` honest ones (default 0), indices nodes…nodes+adversaries-1 (ports, hostkeys
   * and the random dials as an honest node's): whole nodes on the real transport that run `behaviour`
   * (NodeOptions.behaviour), with no module (no probe subscriber). Their layers are the simulator's adversaries'
   * (src/sim/adversary.ts adversaryCore, src/sim/world.ts): classic membership, neither broadcast trees nor views in
   * their handshakes, so honest peers push to them eagerly and must route around them.
   */
  adversaries?: number;
  /** What the adversaries run (default "censor"). */
  behaviour?: "censor";
  log?: Logger;
}

export interface TestnetNode {
  index: number;
  node: GossipNode;
  apiPort: number;
  p2pPort: number;
  /** The node's own testnet module (subscribed to PROBE_DATA_TYPE and `dataTypes`). */
  module: ApiClient;
  /** The control server's port, when the testnet was started with controlBasePort. */
  controlPort?: number;
}

/** An adversary node of the testnet: a whole node, without a module. */
export type TestnetAdversary = Omit<TestnetNode, "module">;

/** Traffic over the whole network since it started, for figures such as copies per delivery. */
export interface TestnetStats {
  /** Distinct links now (each counted once), adversaries' included. */
  links: number;
  /** With adversaries: distinct links between two honest nodes now. */
  honestLinks?: number;
  /** NOTIFICATIONs the testnet's own modules received (one per item per node that validated it; honest nodes only:
   *  adversaries have no module). */
  deliveries: number;
  /** Item copies the (honest) nodes handed to peer links (announcements, forwards, cache replays). */
  copiesSent: number;
  /** Framed bytes all (honest) nodes sent on peer links (items, batches, membership, keep-alives). */
  bytesSent: number;
}

export interface Testnet {
  /** The honest nodes. */
  nodes: TestnetNode[];
  /** The adversary nodes (TestnetOptions.adversaries; empty without). */
  adversaries: TestnetAdversary[];
  dir: string;
  /** Distinct links in the network (each counted once, adversaries' included). */
  links(): number;
  stats(): TestnetStats;
  /** Announces through node `index`'s module (which, as the announcer, is not notified of it). */
  announce(index: number, dataType: number, data: Uint8Array, ttl?: number): void;
  stop(): Promise<void>;
}

export async function startTestnet(options: TestnetOptions): Promise<Testnet> {
  const n = options.nodes;
  const k = options.adversaries ?? 0;
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new RangeError(`nodes must be 1…1000, got ${n}`);
  if (!Number.isInteger(k) || k < 0 || n + k > 1000) throw new RangeError(`adversaries must be 0…${1000 - n}, got ${k}`);
  const behaviour = options.behaviour ?? "censor";
  const host = options.host ?? "127.0.0.1";
  const basePort = options.basePort ?? 0;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "gossip-testnet-"));
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const log = options.log ?? silentLogger;
  const pow = new PowPool({ size: 1 });
  const dataTypes = [PROBE_DATA_TYPE, ...(options.dataTypes ?? []).filter((t) => t !== PROBE_DATA_TYPE)];
  const verdict = options.onNotification ?? ((_node: number, type: number, data: Uint8Array) => type !== PROBE_DATA_TYPE || readProbe(data) !== undefined);
  const nodes: TestnetNode[] = [];
  const adversaries: TestnetAdversary[] = [];
  const difficulty = options.powDifficulty ?? TESTNET_POW_DIFFICULTY;

  const stop = async () => {
    for (const t of nodes) t.module.close();
    await Promise.all([...nodes, ...adversaries].map((t) => t.node.stop()));
    await pow.close();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (let i = 0; i < n + k; i++) {
      const honest = i < n;
      const keyPath = join(dir, `node-${i}.pem`);
      if (!existsSync(keyPath)) writeFileSync(keyPath, generateEd25519Pem(), { mode: 0o600 });
      const config: NodeConfig = {
        source: "<testnet>",
        hostkeyPath: keyPath,
        apiAddress: { host, port: basePort ? basePort + 1000 + i : 0 },
        p2pAddress: { host, port: basePort ? basePort + i : 0 },
        bootstrappers: [],
        degree: options.degree ?? TESTNET_DEGREE,
        // An adversary's layers are the simulator's adversaries': no broadcast trees offered (flood: it forwards
        // nothing anyway) and classic membership (no views).
        dissemination: honest ? options.dissemination : "flood",
        overlay: honest ? options.overlay : "classic",
        cacheSize: options.cacheSize ?? DEFAULTS.cacheSize,
        powDifficulty: difficulty,
        maxPowDifficulty: Math.max(difficulty, TESTNET_POW_DIFFICULTY),
        validationTimeoutMs: options.validationTimeoutMs ?? DEFAULTS.validationTimeoutMs,
        logLevel: "error",
        controlAddress: options.controlBasePort === undefined ? undefined : { host, port: options.controlBasePort ? options.controlBasePort + i : 0 },
      };
      const nodeLog = log.child(honest ? { node: i } : { node: i, behaviour });
      const node = await startNode(config, loadIdentity(readFileSync(keyPath, "utf8")), nodeLog, honest ? { pow } : { pow, behaviour });
      node.membership.stop(); // until the random dials are made: they, not early peer exchange, shape the graph
      const ports = { index: i, node, apiPort: node.api.port, p2pPort: node.transport.port, controlPort: node.control?.port };
      if (!honest) {
        adversaries.push(ports);
        continue;
      }
      const module = await ApiClient.connect(node.api.port, { host, sendLimit: TESTNET_MODULE_SEND_LIMIT_BYTES }).catch(async (e) => {
        await node.stop();
        throw e;
      });
      module.answerNotifications((n) => verdict(i, n.dataType, n.data));
      for (const t of dataTypes) module.subscribe(t);
      nodes.push({ ...ports, module });
    }
    await connect([...nodes, ...adversaries], host, options.dialsPerNode ?? TESTNET_DIALS_PER_NODE, seededRandom(options.seed ?? 1));
    await subscribed(nodes);
    if (options.membership !== false) for (const t of [...nodes, ...adversaries]) t.node.membership.start();
  } catch (e) {
    await stop();
    throw e;
  }

  const links = () => [...nodes, ...adversaries].reduce((sum, t) => sum + t.node.transport.linked().length, 0) / 2;
  const honestIds = new Set(nodes.map((t) => t.node.identity.idHex));
  const honestLinks = () => {
    let ends = 0;
    for (const t of nodes) for (const l of t.node.transport.linked()) if (honestIds.has(l.info.peerId)) ends++;
    return ends / 2;
  };
  return {
    nodes,
    adversaries,
    dir,
    links,
    stats: () => ({
      links: links(),
      honestLinks: k > 0 ? honestLinks() : undefined,
      deliveries: nodes.reduce((sum, t) => sum + t.module.stats().notifications, 0),
      copiesSent: nodes.reduce((sum, t) => sum + t.node.broadcaster.stats().forwarded, 0),
      bytesSent: nodes.reduce((sum, t) => sum + linkTotals(t.node.transport).bytesOut, 0),
    }),
    announce: (index, dataType, data, ttl = 0) => nodes[index]!.module.announce(dataType, data, ttl),
    stop,
  };
}

/**
 * Each node dials its random others, a few handshakes at a time (every dial comes from 127.0.0.1, and a responder
 * admits only 4 pending handshakes per IP), retrying refused ones.
 */
async function connect(nodes: Pick<TestnetNode, "node" | "p2pPort">[], host: string, k: number, random: () => number): Promise<void> {
  const pairs = randomDials(nodes.length, k, random).flatMap((targets, i) => targets.map((j) => [i, j] as const));
  let next = 0;
  const worker = async () => {
    while (next < pairs.length) {
      const [i, j] = pairs[next++]!;
      for (let attempt = 0; ; attempt++) {
        try {
          await nodes[i]!.node.transport.dial(host, nodes[j]!.p2pPort);
          break;
        } catch (e) {
          if (attempt >= TESTNET_DIAL_RETRIES) throw new Error(`testnet: node ${i} could not link to node ${j}: ${(e as Error).message}`);
          await Bun.sleep(TESTNET_DIAL_RETRY_MS * 2 ** attempt);
        }
      }
    }
  };
  await Promise.all([worker(), worker(), worker()]);
}

/** Waits until every module's subscriptions are in place. */
async function subscribed(nodes: TestnetNode[]): Promise<void> {
  const deadline = Date.now() + TESTNET_SUBSCRIBE_TIMEOUT_MS;
  while (!nodes.every((t) => t.node.api.stats().subscriptions > 0)) {
    if (Date.now() > deadline) throw new Error(`testnet: modules did not subscribe within ${TESTNET_SUBSCRIBE_TIMEOUT_MS} ms`);
    await Bun.sleep(5);
  }
}
