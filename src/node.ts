/**
 * Wires one gossip node: the VoidPhone API server, the P2P transport with its proof-of-work pool, the control server
 * and the peer store around the dissemination layer, which src/gossip/core.ts assembles from the ports of
 * src/gossip/ports.ts. build → start → stop. Adapters only: no protocol decisions live here.
 */
import { ApiServer, type ApiLimits } from "./api/server.ts";
import { queryRps } from "./api/rps.ts";
import type { NodeConfig } from "./config.ts";
import type { Logger } from "./log.ts";
import type { Broadcaster } from "./gossip/broadcaster.ts";
import { createCore, systemClock, type CoreOptions, type GossipCore, type MembershipPart, type MembershipTunables } from "./gossip/core.ts";
import type { GossipItem, LinkInfo, PeerAddress, PeerEvents, PeerNetwork } from "./gossip/ports.ts";
import type { Identity } from "./p2p/identity.ts";
import { peerIdOf, toSpkiDer } from "./p2p/identity.ts";
import { speaksRoots, speaksTrees, speaksViews, type LinkDescription } from "./p2p/link.ts";
import { PowPool } from "./p2p/pow-pool.ts";
import { Transport, type PowSolver, type TransportOptions } from "./p2p/transport.ts";
import { MAX_HOPS } from "./p2p/wire.ts";
import { encodePayloadMessage } from "./p2p/wire-fast.ts";
import { dispatch, peerListMessage, treeLinkMessages, viewLinkMessage } from "./peer-messages.ts";
import { networkInterfaces } from "node:os";
import { formatHostPort, type HostPort } from "./address.ts";
import { DialError, RpsError } from "./errors.ts";
import { ControlServer } from "./control/server.ts";
import { NodeObservations } from "./control/source.ts";
import { PeerStore, peerStorePathFor } from "./peer-store.ts";
import { identityPowPathFor, withIdentityPow } from "./identity-pow-store.ts";
import { VERSION, buildCommit } from "./version.ts";

export interface NodeOptions {
  /** Share one pool between many in-process nodes (tests, testnet). */
  pow?: PowSolver;
  /** Overrides for tests: link liveness, handshake timing and limits; `offerTrees: false` runs a node that does not
   *  speak broadcast trees (like one that predates them: its peers feed it by eager push only); `offerViews` is the
   *  config's overlay unless set. */
  transport?: Partial<
    Pick<
      TransportOptions,
      | "handshakeTimeoutMs"
      | "pingIntervalMs"
      | "idleTimeoutMs"
      | "rekeyInterval"
      | "sendBufferBytes"
      | "maxPendingHandshakes"
      | "maxPendingPerIp"
      | "maxInboundPerIp"
      | "limitLoopback"
      | "offerTrees"
      | "offerRoots"
      | "offerViews"
    >
  >;
  membership?: Pick<MembershipTunables, "tickMs" | "backoffInitialMs" | "backoffMaxMs" | "stableLinkMs" | "peerExchangeIntervalMs" | "rotationIntervalMs" | "shuffleIntervalMs">;
  /** API limits (connections, deadlines, output bound, outstanding validations); defaults from src/defaults.ts. */
  api?: Partial<ApiLimits>;
  /** Peer store file; default beside the hostkey (none when the config has no hostkey path); null: no store. */
  peerStorePath?: string | null;
  /** Peer score parameters (tests shrink the ban duration); defaults from src/defaults.ts "Peer score". */
  score?: CoreOptions["score"];
  /** Link usefulness (silent links dropped; src/gossip/link-usefulness.ts); tests of other parts turn it off. */
  usefulness?: CoreOptions["usefulness"];
  /**
   * Test and testnet only (`gossip testnet --adversaries K --behaviour censor`), never from a config: runs the node
   * as an adversary. "censor", as the simulator's (src/sim/adversary.ts): every item and broadcast-tree message from
   * a peer is dropped on arrival, before the core sees it; links, handshakes, membership and views are the honest
   * node's. So it dials, accepts and keeps links like any node, but never validates, forwards, announces or serves.
   */
  behaviour?: "censor";
}

export interface GossipNode {
  readonly identity: Identity;
  readonly api: ApiServer;
  readonly transport: Transport;
  /** The dissemination layer (src/gossip/core.ts); broadcaster and membership are its parts. */
  readonly core: GossipCore;
  readonly broadcaster: Broadcaster;
  readonly membership: MembershipPart;
  /** The control HTTP server, when config.controlAddress is set. */
  readonly control?: ControlServer;
  readonly peerStore?: PeerStore;
  readonly observations: NodeObservations;
  stop(): Promise<void>;
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

function linkInfo(d: LinkDescription): LinkInfo {
  // Inbound peers are dialable at their observed IP and the listen port they announced in the handshake.
  const port = d.inbound ? d.listenPort : d.remotePort;
  return { peer: d.peerId, host: d.remoteHost, port, inbound: d.inbound, trees: speaksTrees(d), roots: speaksRoots(d), views: speaksViews(d), rttMs: d.rttMs };
}

export async function startNode(config: NodeConfig, identity: Identity, log: Logger, options: NodeOptions = {}): Promise<GossipNode> {
  identity = await identityWithPow(config, identity, log, options.pow);
  const parts = buildNode(config, identity, log, options);
  await startListeners(config, parts);
  announceListeners(config, parts, log);
  parts.core.start();
  const { core, ownPool, control, transport, api, peerStore } = parts;
  return {
    identity,
    api,
    transport,
    core,
    broadcaster: core.broadcaster,
    membership: core.membership!,
    control,
    peerStore,
    observations: parts.observations,
    async stop() {
      core.stop();
      await control?.stop();
      await transport.stop();
      peerStore?.close(); // after the links went down, so their last-seen times are in the file
      await api.stop();
      await ownPool?.close();
    },
  };
}

/** With identity cost on (gossip.identity_pow_difficulty > 0): the identity with its proof of work, stored beside the
 *  hostkey or solved (once) on the given pool or a pool of its own. */
async function identityWithPow(config: NodeConfig, identity: Identity, log: Logger, pow: PowSolver | undefined): Promise<Identity> {
  const difficulty = config.identityPowDifficulty ?? 0;
  if (difficulty <= 0) return identity;
  const pool = pow ?? new PowPool();
  try {
    const path = config.hostkeyPath ? identityPowPathFor(config.hostkeyPath) : undefined;
    return await withIdentityPow(identity, difficulty, pool, path, log.child({ part: "p2p" }));
  } finally {
    if (pow === undefined) await (pool as PowPool).close();
  }
}

interface NodeParts {
  core: GossipCore;
  api: ApiServer;
  transport: Transport;
  control?: ControlServer;
  peerStore?: PeerStore;
  observations: NodeObservations;
  ownPool?: PowPool;
}

/** Builds every part and connects them; nothing listens yet. */
function buildNode(config: NodeConfig, identity: Identity, log: Logger, options: NodeOptions): NodeParts {
  const observations = new NodeObservations();
  const ownPool = options.pow ? undefined : new PowPool();
  const pow = timedSolver(options.pow ?? ownPool!, observations);
  const api = new ApiServer({
    host: config.apiAddress.host,
    port: config.apiAddress.port,
    log: log.child({ part: "api" }),
    validationTimeoutMs: config.validationTimeoutMs,
    // Local announcers wait while a link's send queue is above its high-water mark, instead of losing items there.
    outgoingQueues: () => transport.linked().map((l) => [l.info.peerId, l.queuedBytes] as const),
    ...options.api,
  });
  const storePath = options.peerStorePath === undefined ? (config.hostkeyPath ? peerStorePathFor(config.hostkeyPath) : null) : options.peerStorePath;
  const peerStore = storePath === null ? undefined : new PeerStore({ path: storePath, log: log.child({ part: "peer-store" }) });

  // The transport reports to the core and asks it about admission; the core sends through the transport. The
  // closures below reach `core` only once the transport is running (after start), never during construction.
  const transport = new Transport({
    identity,
    host: config.p2pAddress.host,
    port: config.p2pAddress.port,
    difficulty: config.powDifficulty,
    maxDifficulty: config.maxPowDifficulty,
    identityDifficulty: config.identityPowDifficulty,
    pow,
    log: log.child({ part: "p2p" }),
    isRefused: (peer) => core.isBanned(peer),
    acceptInbound: (peer) => core.acceptInbound(peer),
    referralsOnRefusal: (peer) => peerListMessage(core.referrals(peer)),
    events: {
      linkUp: (d) => core.events.linkUp(linkInfo(d)),
      linkDown: (peer, reason) => core.events.linkDown(peer, reason),
      message: (peer, message) => dispatch(peerEvents, peer, message),
    },
    // A flooding node does not offer trees: tree peers would prune it to announcements that it never grafts.
    offerTrees: config.dissemination !== "flood",
    // Only HyParView answers joins, shuffles and neighbor requests: a classic node offering views would swallow them.
    offerViews: config.overlay === "hyparview",
    ...options.transport,
  });
  const network = transportNetwork(transport, identity.idHex, config.p2pAddress.host);
  const core: GossipCore = createCore({
    network,
    local: api,
    clock: systemClock,
    random: Math.random,
    log,
    degree: config.degree,
    cacheSize: config.cacheSize,
    bootstrappers: config.bootstrappers.map((b) => ({ host: b.host, port: b.port })),
    knownAddresses: peerStore?.load().map((p) => ({ host: p.host, port: p.port, id: p.id })),
    rps: config.rpsApiAddress ? rpsSource(config.rpsApiAddress) : undefined,
    sinks: peerStore ? [peerStoreSink(peerStore, network)] : [],
    membership: options.membership,
    broadcaster: { dissemination: config.dissemination },
    overlay: config.overlay,
    score: options.score,
    // A censor links like a connected honest node, which never probes (src/sim/adversary.ts does the same).
    usefulness: options.behaviour === "censor" && options.usefulness !== false ? { ...options.usefulness, probes: false } : options.usefulness,
  });
  const peerEvents = options.behaviour === "censor" ? censoring(core.events) : core.events;
  api.onAnnounce = (a) => core.announce(a);
  api.onValidationSettled = (_verdict, ms) => observations.validation.observe(ms / 1000);
  const control = config.controlAddress ? controlServer(config, identity, log, { api, transport, core, observations }) : undefined;
  return { core, api, transport, control, peerStore, observations, ownPool };
}

/** The core's events with those of the item plane (items, tree messages) dropped: NodeOptions.behaviour "censor". */
function censoring(events: PeerEvents): PeerEvents {
  return {
    linkUp: (info) => events.linkUp(info),
    linkDown: (peer, reason) => events.linkDown(peer, reason),
    peersRequested: (from) => events.peersRequested(from),
    peers: (from, list) => events.peers(from, list),
    views: (from, message) => events.views(from, message),
    item() {},
    tree() {},
  };
}

/** Binds the API, P2P and control listeners in turn; on a failure, what already listens is closed again. */
async function startListeners(config: NodeConfig, parts: NodeParts): Promise<void> {
  const started: (() => Promise<void>)[] = [];
  const steps: [string, HostPort | undefined, () => Promise<void> | void, () => Promise<void>][] = [
    ["gossip.api_address", config.apiAddress, () => parts.api.start(), () => parts.api.stop()],
    ["gossip.p2p_address", config.p2pAddress, () => parts.transport.start(), () => parts.transport.stop()],
    ["gossip.control_address", config.controlAddress, () => parts.control?.start(), async () => parts.control?.stop()],
  ];
  try {
    for (const [key, address, start, stop] of steps) {
      if (address === undefined) continue;
      await listening(key, address, start);
      started.unshift(stop);
    }
  } catch (e) {
    // Nothing may stay listening when the node as a whole failed to start.
    for (const stop of started) await stop();
    await parts.ownPool?.close();
    throw e;
  }
}

/** The "listening" lines, only once every listener is bound: a node that failed to start never claimed to listen. */
function announceListeners(config: NodeConfig, parts: NodeParts, log: Logger): void {
  log.info("api listening", { part: "api", host: config.apiAddress.host, port: parts.api.port });
  log.info("p2p listening", { part: "p2p", host: config.p2pAddress.host, port: parts.transport.port });
  if (parts.control) log.info("control listening", { part: "control", host: config.controlAddress!.host, port: parts.control.port });
}

/** Times every solve this node asks for (the pool may be shared between in-process nodes). */
function timedSolver(solver: PowSolver, observations: NodeObservations): PowSolver {
  return {
    async solve(prefix, difficulty, signal) {
      const started = performance.now();
      const solution = await solver.solve(prefix, difficulty, signal);
      observations.powSolve.observe((performance.now() - started) / 1000);
      return solution;
    },
  };
}

/** The core's PeerNetwork port on the real transport. */
function transportNetwork(transport: Transport, localId: string, bindHost: string): PeerNetwork {
  const ownHosts = localHosts(bindHost);
  // The broadcaster pushes one item object to up to `degree` peers in a row: encode its protobuf once, not per peer.
  let lastItem: GossipItem | undefined;
  let lastEncoded: Uint8Array = new Uint8Array(0);
  const encodedPayload = (item: GossipItem): Uint8Array => {
    if (item !== lastItem) {
      lastItem = item;
      // Hops saturate at the wire's bound; 0 is left out (what nodes that predate the field send).
      const hops = item.hops ? Math.min(item.hops, MAX_HOPS) : undefined;
      // The generated encoder's very bytes, in one allocation (src/p2p/wire-fast.ts).
      lastEncoded = encodePayloadMessage({ messageId: item.id, ttl: item.ttl, dataType: item.dataType, data: item.data, hops, replayed: item.replayed || undefined });
    }
    return lastEncoded;
  };
  // The broadcaster asks for the links with every item: describe them again only when one came or went.
  let described: readonly unknown[] | undefined;
  let infos: LinkInfo[] = [];
  const linkedPeers = (): LinkInfo[] => {
    const links = transport.linked();
    if (links !== described) {
      described = links;
      infos = links.map((l) => linkInfo(l.info));
    }
    return infos.slice();
  };
  return {
    localId,
    linkedPeers,
    sendItem: (peer, item) => transport.send(peer, encodedPayload(item), true),
    requestPeers: (peer) => void transport.send(peer, { kind: { $case: "peerRequest", value: {} } }),
    sendPeers: (peer, peers) => void transport.send(peer, peerListMessage(peers)),
    // An address that leads back to us resolves with our own ID, so membership remembers it as ours.
    dial: (addr) =>
      transport.dial(addr.host, addr.port, addr.id).catch((e: unknown) => {
        if (e instanceof DialError && e.code === "self-connection") return localId;
        throw e;
      }),
    disconnect: (peer, reason) => transport.disconnect(peer, reason),
    // IHAVE may be dropped like an item when the peer's send buffer is full (a lost announcement only leaves the repair
    // to the other announcers); GRAFT, PRUNE and DONT-HAVE are small and steer the tree, so they are never dropped. The
    // link itself refuses tree kinds to a peer that did not negotiate them (false).
    sendTree: (peer, message) => {
      let sent = true;
      for (const m of treeLinkMessages(message)) sent = transport.send(peer, m, message.kind === "ihave") && sent;
      return sent;
    },
    // The walks may be dropped like items; JOIN, NEIGHBOR and DISCONNECT may not (peer-messages.ts). A DISCONNECT
    // followed by disconnect() reaches the peer: the link ends its stream only once its queue is out (connection.ts).
    sendViews: (peer, message) => {
      const m = viewLinkMessage(message);
      return m !== undefined && transport.send(peer, m.message, m.droppable);
    },
    isOwnAddress: (host, port) => port === transport.port && ownHosts.has(host),
    // Flow control: the broadcaster stops reading a peer while busy local subscribers have no room for its items.
    pauseReading: (peer) => transport.pauseReading(peer),
    resumeReading: (peer) => transport.resumeReading(peer),
  };
}

/** Hosts that reach this machine: loopback, the bind address, and every interface address (read once at start). */
function localHosts(bindHost: string): Set<string> {
  const hosts = new Set<string>(["localhost", "127.0.0.1", "::1", "0.0.0.0", "::", bindHost]);
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) hosts.add(a.address);
  }
  return hosts;
}

/** The peer store as one more event sink: it records who linked and when they were last seen. */
function peerStoreSink(store: PeerStore, network: PeerNetwork): PeerEvents {
  return {
    linkUp: (info) => {
      // A peer that claimed our own listen address must not send us dialing ourselves after a restart.
      if (!network.isOwnAddress?.(info.host, info.port)) store.record({ id: info.peer, host: info.host, port: info.port });
    },
    linkDown: (peer) => store.touch(peer),
    item() {},
    peersRequested() {},
    peers() {},
    tree() {},
    views() {},
  };
}

function rpsSource(address: HostPort): () => Promise<PeerAddress> {
  return async () => {
    const peer = await queryRps(address, 2000);
    const spki = toSpkiDer(peer.hostkeyDer);
    // Never dial unpinned on RPS's word: a hostkey we cannot read makes the answer unusable.
    if (spki === undefined) throw new RpsError("bad-hostkey", `RPS named ${peer.host}:${peer.gossipPort} with a hostkey that does not parse`);
    return { host: peer.host, port: peer.gossipPort, id: hex(peerIdOf(spki)) };
  };
}

function controlServer(
  config: NodeConfig,
  identity: Identity,
  log: Logger,
  parts: { api: ApiServer; transport: Transport; core: GossipCore; observations: NodeObservations },
): ControlServer {
  const address = config.controlAddress!;
  const control: ControlServer = new ControlServer({
    host: address.host,
    port: address.port,
    log: log.child({ part: "control" }),
    source: {
      peerId: identity.idHex,
      version: VERSION,
      commit: buildCommit(),
      startedAt: Date.now(),
      listen: () => ({
        api: formatHostPort({ host: config.apiAddress.host, port: parts.api.port }),
        p2p: formatHostPort({ host: config.p2pAddress.host, port: parts.transport.port }),
        control: formatHostPort({ host: address.host, port: control.port }),
      }),
      cacheCapacity: config.cacheSize,
      transport: parts.transport,
      api: parts.api,
      broadcaster: parts.core.broadcaster,
      membership: parts.core.membership!,
      score: parts.core.score,
      observations: parts.observations,
    },
  });
  return control;
}

/** Runs a listener's start; a failure names the config key and address (Bun's own message names neither port nor key). */
async function listening(key: string, address: HostPort, start: () => Promise<void> | void): Promise<void> {
  try {
    await start();
  } catch (e) {
    throw new Error(`cannot listen on ${key} ${formatHostPort(address)}: ${(e as Error).message}`);
  }
}
