/**
 * Wires one gossip node: the VoidPhone API server, the P2P transport with its proof-of-work pool, and the
 * dissemination layer (broadcaster + membership) through the small interfaces of src/gossip/ports.ts.
 * Adapters only: no protocol decisions live here.
 */
import { ApiServer, type ApiLimits } from "./api/server.ts";
import { queryRps } from "./api/rps.ts";
import type { NodeConfig } from "./config.ts";
import type { Logger } from "./log.ts";
import { Broadcaster } from "./gossip/broadcaster.ts";
import { Membership, fanOutEvents, type MembershipOptions } from "./gossip/membership.ts";
import { PeerScore } from "./gossip/peer-score.ts";
import type { GossipItem, LinkInfo, PeerAddress, PeerEvents, PeerNetwork } from "./gossip/ports.ts";
import type { Identity } from "./p2p/identity.ts";
import { peerIdOf, toSpkiDer } from "./p2p/identity.ts";
import type { LinkDescription } from "./p2p/link.ts";
import { PowPool } from "./p2p/pow-pool.ts";
import type { LinkMessage } from "./p2p/proto/gossip.ts";
import { Transport, type PowSolver, type TransportOptions } from "./p2p/transport.ts";
import { encodeLinkMessage } from "./p2p/wire.ts";
import { formatHostPort, type HostPort } from "./address.ts";
import { ControlServer } from "./control/server.ts";
import { NodeObservations } from "./control/source.ts";
import { PeerStore, peerStorePathFor } from "./peer-store.ts";
import { VERSION, buildCommit } from "./version.ts";

export interface NodeOptions {
  /** Share one pool between many in-process nodes (tests, testnet). */
  pow?: PowSolver;
  /** Overrides for tests: link liveness and handshake timing. */
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
    >
  >;
  membership?: Partial<
    Pick<MembershipOptions, "tickMs" | "backoffInitialMs" | "backoffMaxMs" | "stableLinkMs" | "peerExchangeIntervalMs" | "rotationIntervalMs">
  >;
  /** API limits (connections, deadlines, output bound, outstanding validations); defaults from src/defaults.ts. */
  api?: Partial<ApiLimits>;
  /** Peer store file; default beside the hostkey (none when the config has no hostkey path); null: no store. */
  peerStorePath?: string | null;
}

export interface GossipNode {
  readonly identity: Identity;
  readonly api: ApiServer;
  readonly transport: Transport;
  readonly broadcaster: Broadcaster;
  readonly membership: Membership;
  /** The control HTTP server, when config.controlAddress is set. */
  readonly control?: ControlServer;
  readonly peerStore?: PeerStore;
  readonly observations: NodeObservations;
  stop(): Promise<void>;
}

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

function linkInfo(d: LinkDescription): LinkInfo {
  // Inbound peers are dialable at their observed IP and the listen port they announced in the handshake.
  return { peer: d.peerId, host: d.remoteHost, port: d.inbound ? d.listenPort : d.remotePort, inbound: d.inbound };
}

function peerListMessage(peers: PeerAddress[]): LinkMessage {
  const entries = peers.map((p) => ({ host: p.host, port: p.port, id: p.id ? Buffer.from(p.id, "hex") : new Uint8Array(0) }));
  return { kind: { $case: "peerList", value: { peers: entries } } };
}

export async function startNode(config: NodeConfig, identity: Identity, log: Logger, options: NodeOptions = {}): Promise<GossipNode> {
  const score = new PeerScore();
  const ownPool = options.pow ? undefined : new PowPool();
  const observations = new NodeObservations();
  const solver = options.pow ?? ownPool!;
  // Time every solve this node asks for (the pool may be shared between in-process nodes).
  const pow: PowSolver = {
    async solve(prefix, difficulty, signal) {
      const started = performance.now();
      const solution = await solver.solve(prefix, difficulty, signal);
      observations.powSolve.observe((performance.now() - started) / 1000);
      return solution;
    },
  };
  let membership: Membership | undefined;

  const api = new ApiServer({
    host: config.apiAddress.host,
    port: config.apiAddress.port,
    log: log.child({ part: "api" }),
    validationTimeoutMs: config.validationTimeoutMs,
    ...options.api,
  });
  const transport = new Transport({
    identity,
    host: config.p2pAddress.host,
    port: config.p2pAddress.port,
    difficulty: config.powDifficulty,
    maxDifficulty: config.maxPowDifficulty,
    pow,
    log: log.child({ part: "p2p" }),
    isRefused: (peer) => score.isBanned(peer),
    acceptInbound: () => membership?.acceptInbound() ?? true,
    referralsOnRefusal: (peer) => (membership === undefined ? undefined : peerListMessage(membership.referrals(peer))),
    ...options.transport,
  });

  // The broadcaster pushes one item object to up to `degree` peers in a row: encode its protobuf once, not per peer.
  let lastItem: GossipItem | undefined;
  let lastEncoded: Uint8Array = new Uint8Array(0);
  const encodedPayload = (item: GossipItem): Uint8Array => {
    if (item !== lastItem) {
      lastItem = item;
      lastEncoded = encodeLinkMessage({
        kind: { $case: "payload", value: { messageId: item.id, ttl: item.ttl, dataType: item.dataType, data: item.data } },
      });
    }
    return lastEncoded;
  };

  const network: PeerNetwork = {
    localId: identity.idHex,
    linkedPeers: () => transport.linked().map((l) => linkInfo(l.info)),
    sendItem: (peer, item) => transport.send(peer, encodedPayload(item), true),
    requestPeers: (peer) => void transport.send(peer, { kind: { $case: "peerRequest", value: {} } }),
    sendPeers: (peer, peers) => void transport.send(peer, peerListMessage(peers)),
    dial: (addr) => transport.dial(addr.host, addr.port, addr.id),
    disconnect: (peer, reason) => transport.disconnect(peer, reason),
  };

  const broadcaster = new Broadcaster({
    network,
    local: api,
    score,
    logger: log.child({ part: "gossip" }),
    degree: config.degree,
    cacheSize: config.cacheSize,
  });

  const rpsAddress = config.rpsApiAddress;
  const rps = rpsAddress
    ? async (): Promise<PeerAddress> => {
        const peer = await queryRps(rpsAddress, 2000);
        const spki = toSpkiDer(peer.hostkeyDer);
        return { host: peer.host, port: peer.gossipPort, id: spki ? hex(peerIdOf(spki)) : undefined };
      }
    : undefined;
  membership = new Membership({
    network,
    score,
    bootstrappers: config.bootstrappers.map((b) => ({ host: b.host, port: b.port })),
    rps,
    logger: log.child({ part: "membership" }),
    degree: config.degree,
    ...options.membership,
  });

  const events: PeerEvents = fanOutEvents(membership, broadcaster);
  transport.events = {
    linkUp: (d) => events.linkUp(linkInfo(d)),
    linkDown: (peer, reason) => events.linkDown(peer, reason),
    message: (peer, message) => dispatch(events, peer, message),
  };
  api.onAnnounce = (a) => broadcaster.announceLocal(a);
  api.onValidationSettled = (_verdict, ms) => observations.validation.observe(ms / 1000);

  const storePath = options.peerStorePath === undefined ? (config.hostkeyPath ? peerStorePathFor(config.hostkeyPath) : null) : options.peerStorePath;
  const peerStore = storePath === null ? undefined : new PeerStore({ path: storePath, log: log.child({ part: "peer-store" }) });
  if (peerStore) {
    // Peers we were linked to before are dialed like bootstrappers: the way back in when the bootstrappers are down.
    membership.addKnownAddresses(peerStore.load().map((p) => ({ host: p.host, port: p.port, id: p.id })));
    const { linkUp, linkDown } = transport.events;
    transport.events.linkUp = (d) => {
      const info = linkInfo(d);
      peerStore.record({ id: info.peer, host: info.host, port: info.port });
      linkUp(d);
    };
    transport.events.linkDown = (peer, reason) => {
      peerStore.touch(peer);
      linkDown(peer, reason);
    };
  }

  await listening("gossip.api_address", config.apiAddress, () => api.start());
  try {
    await listening("gossip.p2p_address", config.p2pAddress, () => transport.start());
  } catch (e) {
    await api.stop();
    await ownPool?.close();
    throw e;
  }
  let control: ControlServer | undefined;
  if (config.controlAddress) {
    const startedAt = Date.now();
    control = new ControlServer({
      host: config.controlAddress.host,
      port: config.controlAddress.port,
      log: log.child({ part: "control" }),
      source: {
        peerId: identity.idHex,
        version: VERSION,
        commit: buildCommit(),
        startedAt,
        listen: () => ({
          api: formatHostPort({ host: config.apiAddress.host, port: api.port }),
          p2p: formatHostPort({ host: config.p2pAddress.host, port: transport.port }),
          control: formatHostPort({ host: config.controlAddress!.host, port: control!.port }),
        }),
        cacheCapacity: config.cacheSize,
        transport,
        api,
        broadcaster,
        membership,
        observations,
      },
    });
    try {
      await listening("gossip.control_address", config.controlAddress, () => control!.start());
    } catch (e) {
      // Nothing may stay listening when the node as a whole failed to start.
      await transport.stop();
      await api.stop();
      await ownPool?.close();
      throw e;
    }
  }
  membership.start();

  return {
    identity,
    api,
    transport,
    broadcaster,
    membership,
    control,
    peerStore,
    observations,
    async stop() {
      membership!.stop();
      await control?.stop();
      await transport.stop();
      peerStore?.close(); // after the links went down, so their last-seen times are in the file
      await api.stop();
      await ownPool?.close();
    },
  };
}

/** Runs a listener's start; a failure names the config key and address (Bun's own message names neither port nor key). */
async function listening(key: string, address: HostPort, start: () => Promise<void> | void): Promise<void> {
  try {
    await start();
  } catch (e) {
    throw new Error(`cannot listen on ${key} ${formatHostPort(address)}: ${(e as Error).message}`);
  }
}

function dispatch(events: PeerEvents, peer: string, message: LinkMessage): void {
  const kind = message.kind;
  switch (kind?.$case) {
    case "payload": {
      const p = kind.value;
      const item: GossipItem = { id: p.messageId, ttl: p.ttl, dataType: p.dataType, data: p.data };
      events.item(peer, item);
      return;
    }
    case "peerRequest":
      events.peersRequested(peer);
      return;
    case "peerList":
      events.peers(
        peer,
        kind.value.peers.map((e) => ({ host: e.host, port: e.port, id: e.id.length === 32 ? hex(e.id) : undefined })),
      );
      return;
  }
}
