/**
 * The gossip core: the ONE place that assembles the dissemination layer (peer score, broadcaster, membership) from
 * its ports. The node (src/node.ts, real sockets), the in-memory test network (test/gossip/memnet.ts) and the
 * simulator (src/sim/) all build their nodes here, so they cannot drift apart.
 *
 * It also judges the links (link-usefulness.ts, on a timer of the Clock): one that stays silent while items flow
 * through the others is dropped as `useless-link` and membership refills the slot.
 * Given a PeerNetwork, LocalModules, a Clock and randomness, it returns the PeerEvents sink the network feeds, the
 * admission answers the network asks (accept inbound? referrals? banned?), and stats. Extra sinks (the peer store)
 * are passed in and told every event after the core's own parts. Must never: do I/O of its own, read the process's
 * clock or Math.random, or be patched after construction.
 */
import { Broadcaster, type BroadcasterOptions, type BroadcasterStats } from "./broadcaster.ts";
import { HyParView, type HyParViewOptions } from "./hyparview.ts";
import {
  IsolationProbes,
  LinkUsefulness,
  type IsolationProbeParams,
  type IsolationProbeStats,
  type LinkUsefulnessParams,
  type LinkUsefulnessStats,
} from "./link-usefulness.ts";
import { Membership, type MembershipOptions, type MembershipStats } from "./membership.ts";
import { PeerScore, type PeerScoreOptions, type PeerScoreStats } from "./peer-score.ts";
import type { Clock, GossipItem, LinkInfo, LocalModules, PeerAddress, PeerEvents, PeerId, PeerNetwork } from "./ports.ts";
import { silentLogger, type Logger } from "../log.ts";
import {
  USEFULNESS_BURST_GAP_MS,
  USEFULNESS_JUDGE_INTERVAL_MS,
  USEFULNESS_MAX_DROPS_PER_JUDGEMENT,
  USEFULNESS_MIN_ITEMS,
  USEFULNESS_MIN_ITEMS_AFTER_TALK,
  USEFULNESS_MIN_LINK_AGE_MS,
  USEFULNESS_PROBE_AGE_MS,
  USEFULNESS_PROBE_BACKOFF_AFTER,
  USEFULNESS_PROBE_DELAY_MS,
  USEFULNESS_PROBE_INTERVAL_MS,
  USEFULNESS_PROBE_MAX_INTERVAL_MS,
  USEFULNESS_PROBE_REST_MS,
  USEFULNESS_PROBES_PER_ROUND,
  USEFULNESS_QUIET_MESSAGES,
  USEFULNESS_REPLAY_WINDOW_MS,
} from "../defaults.ts";

/** Broadcaster parameters a caller may set (the ports, clock and randomness come from CoreOptions). */
export type BroadcasterTunables = Partial<Omit<BroadcasterOptions, "network" | "local" | "score" | "clock" | "random" | "log" | "degree" | "cacheSize">>;
/** Membership parameters a caller may set (those of either overlay; each takes what it knows). */
export type MembershipTunables = Partial<
  Omit<MembershipOptions & HyParViewOptions, "network" | "score" | "clock" | "random" | "log" | "degree" | "bootstrappers" | "rps">
>;

/** Which membership keeps the links: HyParView's active and passive views, or the classic candidate table with peer
 *  exchange (src/gossip/membership.ts). */
export type Overlay = "hyparview" | "classic";

/** What the core needs of a membership, whichever overlay it is. */
export interface MembershipPart extends PeerEvents {
  start(): void;
  stop(): void;
  acceptInbound(): boolean;
  referrals(peer: PeerId): PeerAddress[];
  addKnownAddresses(addresses: PeerAddress[]): void;
  stats(): MembershipStats;
  /** Isolation probes: dial up to `count` more addresses beyond degree (classic membership only). */
  probe?(count: number, answered: (peer: PeerId | undefined) => void): number;
  /** The probe link to `peer` is being closed: no failure of its address, not probed again for `restMs`. */
  probeDone?(peer: PeerId, restMs: number): void;
}

export interface CoreOptions {
  network: PeerNetwork;
  local: LocalModules;
  clock: Clock;
  /** [0, 1); the core's only source of randomness. */
  random: () => number;
  log?: Logger;
  /** `degree` (VoidPhone): links kept, and peers each item is pushed to. */
  degree?: number;
  /** `cache_size` (VoidPhone): validated items replayed to newly linked peers. */
  cacheSize?: number;
  bootstrappers?: PeerAddress[];
  /** Addresses known from earlier runs (the peer store), dialed like bootstrappers and kept through failures. */
  knownAddresses?: PeerAddress[];
  /** Asks an RPS module for one random peer; used while short of links. */
  rps?: () => Promise<PeerAddress>;
  /** More sinks told every peer event after the core's own parts (e.g. the peer store). */
  sinks?: PeerEvents[];
  broadcaster?: BroadcasterTunables;
  /** false: no membership (tests that link nodes by hand). */
  membership?: MembershipTunables | false;
  /** The membership overlay (default: classic). */
  overlay?: Overlay;
  score?: Omit<PeerScoreOptions, "now" | "onScoreBan" | "onFirst">;
  /** Link usefulness (src/gossip/link-usefulness.ts): silent links dropped so that membership refills the slot.
   *  Runs only with membership and with scoring on; false turns it off. */
  usefulness?: (Partial<LinkUsefulnessParams> & { judgeIntervalMs?: number; probes?: (Partial<IsolationProbeParams> & { restMs?: number }) | false }) | false;
}

export interface CoreStats {
  broadcaster: BroadcasterStats;
  membership: MembershipStats | undefined;
  score: PeerScoreStats;
  usefulness: LinkUsefulnessStats | undefined;
  probes: IsolationProbeStats | undefined;
}

export interface GossipCore {
  /** What the network reports: links up and down, items, peer exchange. */
  readonly events: PeerEvents;
  readonly broadcaster: Broadcaster;
  readonly membership: MembershipPart | undefined;
  readonly score: PeerScore;
  /** A local module's ANNOUNCE (the API server has already notified the other local subscribers). */
  announce(announce: { ttl: number; dataType: number; data: Uint8Array }): GossipItem;
  /** The network asks before admitting an authenticated inbound link. */
  acceptInbound(peer: PeerId): boolean;
  /** Addresses to hand a peer whose inbound link we refuse for lack of room. */
  referrals(peer: PeerId): PeerAddress[];
  /** Banned peers are neither dialed nor accepted. */
  isBanned(peer: PeerId): boolean;
  /** Starts membership (dialing, ticks). Items flow as soon as the network delivers events. */
  start(): void;
  /** Stops every timer of the core. */
  stop(): void;
  stats(): CoreStats;
}

export function createCore(options: CoreOptions): GossipCore {
  const log = options.log ?? silentLogger;
  const clock = options.clock;
  const u = options.usefulness === false ? undefined : (options.usefulness ?? {});
  const usefulness =
    u === undefined || options.membership === false || options.score?.scoring === false
      ? undefined
      : new LinkUsefulness({
          minItems: u.minItems ?? USEFULNESS_MIN_ITEMS,
          minItemsAfterTalk: u.minItemsAfterTalk ?? USEFULNESS_MIN_ITEMS_AFTER_TALK,
          minLinkAgeMs: u.minLinkAgeMs ?? USEFULNESS_MIN_LINK_AGE_MS,
          maxDropsPerJudgement: u.maxDropsPerJudgement ?? USEFULNESS_MAX_DROPS_PER_JUDGEMENT,
          maxLinks: u.maxLinks ?? 4 * (options.degree ?? 8) + 16,
          replayWindowMs: u.replayWindowMs ?? USEFULNESS_REPLAY_WINDOW_MS,
          burstGapMs: u.burstGapMs ?? USEFULNESS_BURST_GAP_MS,
        });
  const pr = u?.probes === false ? undefined : (u?.probes ?? {});
  const probes =
    usefulness === undefined || pr === undefined
      ? undefined
      : new IsolationProbes({
          delayMs: pr.delayMs ?? USEFULNESS_PROBE_DELAY_MS,
          intervalMs: pr.intervalMs ?? USEFULNESS_PROBE_INTERVAL_MS,
          perRound: pr.perRound ?? USEFULNESS_PROBES_PER_ROUND,
          probeAgeMs: pr.probeAgeMs ?? USEFULNESS_PROBE_AGE_MS,
          backoffAfter: pr.backoffAfter ?? USEFULNESS_PROBE_BACKOFF_AFTER,
          maxIntervalMs: pr.maxIntervalMs ?? USEFULNESS_PROBE_MAX_INTERVAL_MS,
        });
  const probeRestMs = pr?.restMs ?? USEFULNESS_PROBE_REST_MS;
  const score = new PeerScore({
    ...options.score,
    now: () => clock.now(),
    onFirst: usefulness ? (peer, newItem) => usefulness.first(peer, newItem, clock.now()) : undefined,
    onScoreBan: (peer, evidence) => {
      log.child({ part: "gossip" }).warn("peer banned", { peer, why: "low-score", evidence });
      options.network.disconnect(peer, "banned: low-score");
    },
  });
  const broadcaster = new Broadcaster({
    ...options.broadcaster,
    network: options.network,
    local: options.local,
    score,
    clock,
    random: options.random,
    log: log.child({ part: "gossip" }),
    degree: options.degree,
    cacheSize: options.cacheSize,
  });
  const parts = {
    network: options.network,
    score,
    clock,
    random: options.random,
    log: log.child({ part: "membership" }),
    degree: options.degree,
    bootstrappers: options.bootstrappers,
    rps: options.rps,
  };
  const membership: MembershipPart | undefined =
    options.membership === false
      ? undefined
      : options.overlay === "hyparview"
        ? new HyParView({ ...options.membership, ...parts })
        : new Membership({ ...options.membership, ...parts });
  if (membership && options.knownAddresses && options.knownAddresses.length > 0) {
    membership.addKnownAddresses(options.knownAddresses);
  }
  // Membership first: it drops links to banned peers and to ourselves before the broadcaster replays its cache; the
  // score (colocation) before the broadcaster.
  const sinks: PeerEvents[] = [
    ...(membership ? [membership] : []),
    score,
    ...(usefulness ? [usefulnessSink(usefulness, clock, probes)] : []),
    broadcaster,
    ...(options.sinks ?? []),
  ];
  const events = fanOutEvents(sinks);

  // Judging links: a silent one is dropped (its slot refilled by membership); a mute one (it never said anything) is
  // also charged a penalty, so that a peer dropped so twice is banned and no longer redialed. Exempt: a tree child
  // (speaks trees, we push to it eagerly: silent towards us by design), and a peer that speaks trees and has talked
  // on the link (its PRUNE or IHAVE says it is a tree node; a dead end, whose modules subscribe to none of our types,
  // relays nothing and must not be churned or punished for it).
  const treePeers = (links: readonly LinkInfo[]) => {
    const trees = new Set<PeerId>();
    for (const l of links) if (l.trees === true) trees.add(l.peer);
    return trees;
  };
  const treeChild = (trees: ReadonlySet<PeerId>) => (peer: PeerId) => trees.has(peer) && broadcaster.roleOf(peer) === "eager";
  const judgeLinks = () => {
    if (usefulness === undefined) return;
    const trees = treePeers(options.network.linkedPeers());
    const child = treeChild(trees);
    const exempt = (peer: PeerId) => child(peer) || (trees.has(peer) && (usefulness.recordOf(peer)?.messages ?? 0) > 0);
    for (const { peer, mute } of usefulness.judge(clock.now(), exempt)) {
      log.child({ part: "gossip" }).info("link dropped", { peer, why: "useless-link", mute });
      if (!(mute && score.recordUselessLink(peer))) options.network.disconnect(peer, "useless-link"); // a ban disconnects itself
    }
    probeIfIsolated();
  };
  // Isolation probes (IsolationProbes): while the links together said next to nothing since they came up, dial a few
  // more addresses; close the probes that said nothing either (no penalty: a quiet network looks the same), their
  // addresses resting, and those that talked when the node's own links did too (not needed).
  const probeIfIsolated = () => {
    const probe = membership?.probe?.bind(membership);
    if (probes === undefined || usefulness === undefined || probe === undefined) return;
    const now = clock.now();
    const quiet = (except: (peer: PeerId) => boolean) => usefulness.messagesFrom(except, USEFULNESS_QUIET_MESSAGES) < USEFULNESS_QUIET_MESSAGES;
    const links = { quiet: usefulness.size > 0 && quiet(() => false), ownQuiet: quiet((peer) => probes.isProbe(peer)) };
    const { dial, close, kept } = probes.tick(now, links, (peer) => usefulness.isMute(peer), (peer) => broadcaster.roleOf(peer) === "eager");
    for (const peer of kept) options.network.requestPeers(peer); // a way in: its neighbours are likely to be too
    for (const peer of close) {
      const why = usefulness.isMute(peer) ? "mute-probe" : "probe-unneeded";
      log.child({ part: "gossip" }).debug("link dropped", { peer, why });
      membership?.probeDone?.(peer, probeRestMs);
      options.network.disconnect(peer, why);
    }
    if (dial > 0) probes.dialed(probe(dial, (peer) => probes.answered(peer, clock.now())));
  };
  let judgeTimer: unknown;
  // A full inbound table gives way to a newcomer when one of its links has said nothing at all since it came up (the
  // youngest such link, see youngestMute): a node whose every link is a censor receives nothing, so it can never
  // judge them, and without this it would refuse the honest nodes that dial it for as long as the censors hold its
  // slots. No penalty (no evidence).
  const acceptInbound = (peer: PeerId): boolean => {
    if (membership === undefined) return true;
    if (membership.acceptInbound()) return true;
    if (usefulness === undefined) return false;
    const links = options.network.linkedPeers();
    const inbound: PeerId[] = [];
    for (const l of links) if (l.inbound && l.peer !== peer) inbound.push(l.peer);
    const victim = usefulness.youngestMute(inbound, clock.now(), treeChild(treePeers(links)));
    if (victim === undefined) return false;
    log.child({ part: "gossip" }).info("link dropped", { peer: victim, why: "mute-inbound", for: peer });
    usefulness.linkDown(victim); // not offered again should the network ask twice
    options.network.disconnect(victim, "mute-inbound");
    return true;
  };

  return {
    events,
    broadcaster,
    membership,
    score,
    announce: (a) => broadcaster.announceLocal(a),
    acceptInbound,
    referrals: (peer) => membership?.referrals(peer) ?? [],
    isBanned: (peer) => score.isBanned(peer),
    start: () => {
      membership?.start();
      if (usefulness && judgeTimer === undefined) judgeTimer = clock.setInterval(judgeLinks, u?.judgeIntervalMs ?? USEFULNESS_JUDGE_INTERVAL_MS);
    },
    stop: () => {
      if (judgeTimer !== undefined) clock.clearInterval(judgeTimer);
      judgeTimer = undefined;
      membership?.stop();
      broadcaster.stop();
    },
    stats: () => ({
      broadcaster: broadcaster.stats(),
      membership: membership?.stats(),
      score: score.stats(),
      usefulness: usefulness?.stats(),
      probes: probes?.stats(),
    }),
  };
}

/** Feeds link usefulness what each link says on the item plane (items, tree messages) and its ups and downs. */
function usefulnessSink(usefulness: LinkUsefulness, clock: Clock, probes: IsolationProbes | undefined): PeerEvents {
  return {
    linkUp: (info) => usefulness.linkUp(info.peer, clock.now()),
    linkDown: (peer) => {
      usefulness.linkDown(peer);
      probes?.linkDown(peer);
    },
    item: (from, item) => usefulness.message(from, clock.now(), item.replayed === true),
    tree: (from) => usefulness.message(from, clock.now()),
    peersRequested: () => {},
    peers: () => {},
    views: () => {},
  };
}

/** One PeerEvents sink that tells each event to several, in order. */
export function fanOutEvents(sinks: readonly PeerEvents[]): PeerEvents {
  if (sinks.length === 1) return sinks[0]!;
  return {
    linkUp: (info) => {
      for (const s of sinks) s.linkUp(info);
    },
    item: (from, item) => {
      for (const s of sinks) s.item(from, item);
    },
    peersRequested: (from) => {
      for (const s of sinks) s.peersRequested(from);
    },
    peers: (from, list) => {
      for (const s of sinks) s.peers(from, list);
    },
    tree: (from, message) => {
      for (const s of sinks) s.tree(from, message);
    },
    views: (from, message) => {
      for (const s of sinks) s.views(from, message);
    },
    linkDown: (peer, reason) => {
      for (const s of sinks) s.linkDown(peer, reason);
    },
  };
}

/** The process's clock and timers, for a node on real sockets. */
export const systemClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearInterval: (h) => clearInterval(h as ReturnType<typeof setInterval>),
};
