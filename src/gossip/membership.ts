/**
 * Membership: keeps `degree` healthy links. Dials the bootstrappers, learns addresses by peer exchange (and from an
 * optional RPS source), dials candidates while short of links, redials lost ones with per-address exponential backoff,
 * and caps inbound links so that outbound slots stay available. A maintenance tick (injectable timers) drives it.
 *
 * Must never: dial its own ID or an address that turned out to be itself, dial a linked or banned peer, hold more than
 * `maxCandidates` addresses, or tell a peer about itself. Does no I/O of its own: everything goes through PeerNetwork.
 */
import {
  CANDIDATE_MAX_FAILURES,
  DEFAULT_DEGREE,
  DIAL_BACKOFF_INITIAL_MS,
  DIAL_BACKOFF_MAX_MS,
  INBOUND_CAP_FACTOR,
  LINK_ROTATION_INTERVAL_MS,
  MAX_CANDIDATES,
  MAX_PEERS_PER_EXCHANGE,
  MEMBERSHIP_TICK_MS,
  PEER_EXCHANGE_INTERVAL_MS,
  peerExchangeSize,
  STABLE_LINK_MS,
  minOutbound,
  outboundPerIpCap,
} from "../defaults.ts";
import { pickInPlace } from "./broadcaster.ts";
import { CandidateTable, spreadOverHosts, type Candidate } from "./candidates.ts";
import { RpsQueries } from "./rps-queries.ts";
import type { PeerScore } from "./peer-score.ts";
import type { Clock, GossipItem, LinkInfo, PeerAddress, PeerEvents, PeerId, PeerNetwork } from "./ports.ts";
import { formatHostPort } from "../address.ts";
import { silentLogger, type Logger } from "../log.ts";

/** Probe closes remembered until their linkDown (one that never comes is forgotten oldest first). */
const MAX_CLOSING_PROBES = 64;

export interface MembershipOptions {
  network: PeerNetwork;
  score: PeerScore;
  bootstrappers?: PeerAddress[];
  /** Asks an RPS module for one random peer (host, Gossip P2P port, expected ID). Used while short of links. */
  rps?: () => Promise<PeerAddress>;
  clock: Clock;
  /** [0, 1); seeded in tests and the simulator. */
  random: () => number;
  log?: Logger;
  degree?: number;
  tickMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  stableLinkMs?: number;
  maxCandidates?: number;
  peerExchangeIntervalMs?: number;
  /** How often a node at `degree` swaps one link for a new address (default LINK_ROTATION_INTERVAL_MS). */
  rotationIntervalMs?: number;
  /** Outbound links to one (non-loopback) IP at most; default outboundPerIpCap(degree). */
  maxOutboundPerIp?: number;
}

export interface MembershipStats {
  linked: number;
  inbound: number;
  outbound: number;
  dialing: number;
  candidates: number;
  dials: number;
  dialFailures: number;
  rpsQueries: number;
  rpsFailures: number;
  rotations: number;
  /** Isolation probes dialed (see probe; classic membership only). */
  probes?: number;
}

export class Membership implements PeerEvents {
  readonly degree: number;
  private readonly network: PeerNetwork;
  private readonly score: PeerScore;
  private readonly log: Logger;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly tickMs: number;
  private readonly stableLinkMs: number;
  private readonly peerExchangeIntervalMs: number;
  private readonly rotationIntervalMs: number;
  private nextRotationAt: number;
  /** Peers dropped by rotation: their address rests for one rotation interval instead of being redialed at once. */
  private readonly rotatedOut = new Set<PeerId>();
  private readonly maxOutboundPerIp: number;
  private readonly candidates: CandidateTable;
  /** Probe links being closed (probeDone), until their linkDown: peer → how long its address is not probed again. */
  private readonly closingProbes = new Map<PeerId, number>();
  /** The last probe round found fewer addresses due than it wanted. */
  private probesStarved = false;
  /** Address keys with a probe dial in flight (a subset of `dialing`). */
  private readonly probing = new Set<string>();
  /** Address keys with a dial in flight. */
  private readonly dialing = new Set<string>();
  /** peer → the address we dialed it at (outbound links we made). */
  private readonly dialedAs = new Map<PeerId, string>();
  private handle: unknown = undefined;
  private running = false;
  private readonly rpsQueries: RpsQueries;
  private nextExchangeAt = 0;
  /** The last spare count and what it was counted from: the table's version, `enough`, and each link's peer, host
   *  and port. Links and candidates rarely change between ticks, and counting reads every entry's strings. */
  private spareMemo = { version: -1, enough: 0, links: [] as (string | number)[], count: 0 };
  private counters = { dials: 0, dialFailures: 0, rotations: 0, probes: 0 };

  constructor(options: MembershipOptions) {
    this.network = options.network;
    this.score = options.score;
    this.log = options.log ?? silentLogger;
    this.rpsQueries = new RpsQueries(options.rps, this.log, (addr) => {
      this.learn(addr, {});
      if (this.running) this.maintain();
    });
    this.clock = options.clock;
    this.random = options.random;
    this.degree = options.degree ?? DEFAULT_DEGREE;
    this.tickMs = options.tickMs ?? MEMBERSHIP_TICK_MS;
    this.stableLinkMs = options.stableLinkMs ?? STABLE_LINK_MS;
    this.candidates = new CandidateTable({
      maxCandidates: options.maxCandidates ?? MAX_CANDIDATES,
      backoffInitialMs: options.backoffInitialMs ?? DIAL_BACKOFF_INITIAL_MS,
      backoffMaxMs: options.backoffMaxMs ?? DIAL_BACKOFF_MAX_MS,
      maxFailures: CANDIDATE_MAX_FAILURES,
    });
    this.peerExchangeIntervalMs = options.peerExchangeIntervalMs ?? PEER_EXCHANGE_INTERVAL_MS;
    this.rotationIntervalMs = options.rotationIntervalMs ?? LINK_ROTATION_INTERVAL_MS;
    this.nextRotationAt = this.clock.now() + this.rotationIntervalMs;
    this.maxOutboundPerIp = options.maxOutboundPerIp ?? outboundPerIpCap(this.degree);
    if (!(Number.isInteger(this.degree) && this.degree >= 1)) {
      throw new RangeError(`Membership: degree must be an integer ≥ 1, got ${this.degree}`);
    }
    for (const b of options.bootstrappers ?? []) this.learn(b, { bootstrap: true });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.handle = this.clock.setInterval(() => this.tick(), this.tickMs);
    this.tick();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.clock.clearInterval(this.handle);
    this.handle = undefined;
  }

  /**
   * Addresses remembered from earlier runs (the peer store): dialed like any candidate, and kept through failures
   * with backoff like addresses that were once linked, so a restart can rejoin when the bootstrappers are down.
   */
  addKnownAddresses(addresses: PeerAddress[]): void {
    for (const addr of addresses) this.learn(addr, { proven: true });
    if (this.running) this.maintain();
  }

  /** The transport asks before (and may ask again after) a handshake: false once inbound links reach the cap. */
  acceptInbound(): boolean {
    let inbound = 0;
    for (const l of this.network.linkedPeers()) if (l.inbound) inbound++;
    return inbound < INBOUND_CAP_FACTOR * this.degree;
  }

  linkUp(info: LinkInfo): void {
    if (this.score.isBanned(info.peer) || info.peer === this.network.localId) {
      this.network.disconnect(info.peer, info.peer === this.network.localId ? "link to self" : "banned");
      return;
    }
    // An inbound peer's advertised address becomes a candidate (to redial if the link is lost, and to share).
    if (info.inbound && info.port > 0) this.learn({ host: info.host, port: info.port, id: info.peer }, { proven: true });
    // Not a probe's peers, unless probes are running out of addresses: most probes of a node cut off by censors reach
    // censors, whose answers would fill the table with more of them (the core asks a probe that proved useful).
    if (info.inbound || this.probesStarved || !this.probing.has(addressKeyOf(info))) this.network.requestPeers(info.peer);
  }

  linkDown(peer: PeerId, reason: string): void {
    const key = this.dialedAs.get(peer);
    this.dialedAs.delete(peer);
    const c = key === undefined ? undefined : this.candidates.get(key);
    const probeRest = this.closingProbes.get(peer);
    this.closingProbes.delete(peer);
    if (c !== undefined && probeRest !== undefined) {
      // A probe closed for giving nothing (or not being needed): no failure of the address, which stays dialable
      // as ever; only the next probes go elsewhere.
      c.probeRestUntil = this.clock.now() + probeRest;
      c.linkedAt = undefined;
      // One of the links beyond degree: nothing to refill, no neighbour to ask for more addresses.
      if (this.running) this.maintain();
      return;
    }
    if (c?.linkedAt !== undefined) {
      const lived = this.clock.now() - c.linkedAt;
      if (lived < this.stableLinkMs) {
        this.fail(c, `link dropped after ${Math.round(lived)} ms: ${reason}`);
      } else {
        // A dial that gave a stable link was a success: redial at once (or after a rest if rotation dropped it),
        // and start any backoff over.
        c.proven = true;
        c.failures = 0;
        c.nextAttemptAt = this.rotatedOut.has(peer) ? this.clock.now() + this.rotationIntervalMs : 0;
        c.linkedAt = undefined;
      }
    }
    this.rotatedOut.delete(peer);
    if (!this.running) return;
    this.maintain();
    // Losing a link is when knowledge matters most (the peer may have been our only source of addresses): ask a
    // remaining neighbour for its peers now rather than at the next exchange interval.
    const links = this.network.linkedPeers();
    if (links.length > 0) {
      this.nextExchangeAt = this.clock.now() + this.peerExchangeIntervalMs;
      this.network.requestPeers(links[Math.floor(this.random() * links.length)]!.peer);
    }
  }

  /**
   * Dials up to `count` due candidates beyond `degree` (isolation probes: a node whose links said next to nothing
   * since they came up looks for other peers; src/gossip/link-usefulness.ts). `answered` gets the peer once linked, or
   * undefined if the dial failed, once per dial. Returns the dials started (fewer than asked if few are due). A probe's
   * peer is not asked for addresses; candidates resting from probes (probeDone) are not probed; with too few due, a
   * neighbour is asked for more (at most every peer-exchange interval), and so are the next probes' peers.
   */
  probe(count: number, answered: (peer: PeerId | undefined) => void): number {
    if (!this.running || count <= 0) return 0;
    const links = this.network.linkedPeers();
    const { linkedIds, linkedAddrs, outboundPerHost } = this.linkedNow(links);
    const now = this.clock.now();
    const due = this.dueCandidates(linkedAddrs, linkedIds).filter(([, c]) => (c.probeRestUntil ?? 0) <= now);
    pickInPlace(due, due.length, this.random);
    const chosen = spreadOverHosts(due, count, outboundPerHost, this.maxOutboundPerIp);
    this.counters.probes += chosen.length;
    for (const [key, c] of chosen) {
      this.probing.add(key);
      const done = (peer: PeerId | undefined) => {
        this.probing.delete(key);
        answered(peer);
      };
      this.dial(key, c, done, () => done(undefined));
    }
    // Too few addresses left to probe: ask a neighbour for more (at most every exchange interval), and the next
    // probes' peers too.
    this.probesStarved = chosen.length < count;
    if (this.probesStarved && links.length > 0 && now >= this.nextExchangeAt) {
      this.nextExchangeAt = now + this.peerExchangeIntervalMs;
      this.network.requestPeers(links[Math.floor(this.random() * links.length)]!.peer);
    }
    return chosen.length;
  }

  /** The probe link to `peer` is being closed: not a failure of its address (a probe is closed for giving nothing,
   *  which a quiet network's honest nodes do too), whose later dials are as before; but it is not probed again for
   *  `restMs`, so that the next probes try other addresses. */
  probeDone(peer: PeerId, restMs: number): void {
    this.closingProbes.set(peer, restMs);
    while (this.closingProbes.size > MAX_CLOSING_PROBES) this.closingProbes.delete(this.closingProbes.keys().next().value as PeerId);
  }

  item(_from: PeerId, _item: GossipItem): void {}
  tree(): void {}
  views(): void {}

  /**
   * Answers with up to peerExchangeSize(degree) linked peers' addresses (alive right now), never the requester's own.
   * More than `degree`: a joiner that hears only from its bootstrapper must learn enough to survive the
   * bootstrapper's death.
   */
  peersRequested(from: PeerId): void {
    this.network.sendPeers(from, this.referrals(from));
  }

  /**
   * Addresses to hand a peer: on request, and when we refuse its inbound link for lack of room, so that a joiner
   * turned away by a full bootstrapper still learns where else to go.
   */
  referrals(forPeer: PeerId): PeerAddress[] {
    const list: PeerAddress[] = [];
    const links = [...this.network.linkedPeers()];
    pickInPlace(links, links.length, this.random);
    const limit = peerExchangeSize(this.degree);
    for (const l of links) {
      if (list.length >= limit) break;
      if (l.peer === forPeer || l.port <= 0 || this.network.isOwnAddress?.(l.host, l.port)) continue;
      list.push({ host: l.host, port: l.port, id: l.peer });
    }
    return list;
  }

  peers(_from: PeerId, peers: PeerAddress[]): void {
    for (const p of peers.slice(0, MAX_PEERS_PER_EXCHANGE)) this.learn(p, {});
    if (this.running) this.maintain();
  }

  stats(): MembershipStats {
    const links = this.network.linkedPeers();
    const inbound = links.filter((l) => l.inbound).length;
    return {
      linked: links.length,
      inbound,
      outbound: links.length - inbound,
      dialing: this.dialing.size,
      candidates: this.candidates.size,
      ...this.counters,
      rpsQueries: this.rpsQueries.queries,
      rpsFailures: this.rpsQueries.failures,
    };
  }

  /** The periodic work: dial, ask RPS (while linked < degree), ask a peer for addresses when candidates run short. */
  tick(): void {
    if (!this.running) return;
    const stillWanted = this.maintain();
    const links = this.network.linkedPeers();
    this.rpsQueries.ask(this.degree - links.length);
    // Exchange while short of links, and also while we know too few spare addresses to replace lost links.
    const thin = stillWanted > 0 || this.spareCandidates(links, this.degree) < this.degree;
    if (thin && links.length > 0 && this.clock.now() >= this.nextExchangeAt) {
      this.nextExchangeAt = this.clock.now() + this.peerExchangeIntervalMs;
      this.network.requestPeers(links[Math.floor(this.random() * links.length)]!.peer);
    }
    if (stillWanted === 0 && this.clock.now() >= this.nextRotationAt) {
      this.nextRotationAt = this.clock.now() + this.rotationIntervalMs;
      this.rotate(links);
    }
  }

  /**
   * Link rotation: dial one random unlinked address that is due; once that link is up, drop another link (one we
   * dialed, if any) so the node is back at `degree`. New link first, so connectivity never dips.
   */
  private rotate(links: LinkInfo[]): void {
    if (links.length < this.degree || this.dialing.size > 0) return;
    const linkedIds = new Set(links.map((l) => l.peer));
    const linkedAddrs = new Set(links.filter((l) => l.port > 0).map(addressKeyOf));
    const due = this.dueCandidates(linkedAddrs, linkedIds);
    if (due.length === 0) return;
    const [key, c] = due[Math.floor(this.random() * due.length)]!;
    this.counters.rotations++;
    this.dial(key, c, (joined) => {
      const current = this.network.linkedPeers().filter((l) => l.peer !== joined);
      if (current.length < this.degree) return;
      const outbound = current.filter((l) => !l.inbound);
      const pool = outbound.length > 0 ? outbound : current;
      const victim = pool[Math.floor(this.random() * pool.length)]!;
      this.rotatedOut.add(victim.peer);
      this.network.disconnect(victim.peer, "rotation");
    });
  }

  /** The linked peers' IDs and dialable addresses, and outbound links (ours and those being dialed) per host. */
  private linkedNow(links: readonly LinkInfo[]): { linkedIds: Set<PeerId>; linkedAddrs: Set<string>; outboundPerHost: Map<string, number> } {
    const linkedIds = new Set<PeerId>();
    const linkedAddrs = new Set<string>();
    const outboundPerHost = new Map<string, number>();
    for (const l of links) {
      linkedIds.add(l.peer);
      if (l.port > 0) linkedAddrs.add(addressKeyOf(l));
      if (!l.inbound) bump(outboundPerHost, l.host);
    }
    for (const key of this.dialing) bump(outboundPerHost, this.candidates.get(key)?.host ?? "");
    return { linkedIds, linkedAddrs, outboundPerHost };
  }

  /** Dials due candidates while short of links; returns how many links are still wanted after that. */
  private maintain(): number {
    const links = this.network.linkedPeers();
    let outbound = 0;
    for (const l of links) if (!l.inbound) outbound++;
    const want = Math.max(
      this.degree - links.length - this.dialing.size,
      minOutbound(this.degree) - outbound - this.dialing.size,
    );
    // Nearly every tick of a node at `degree` ends here, so the sets below are only built when there is dialing to do.
    if (want <= 0) return 0;
    const { linkedIds, linkedAddrs, outboundPerHost } = this.linkedNow(links);
    const due = this.dueCandidates(linkedAddrs, linkedIds);
    pickInPlace(due, due.length, this.random);
    const chosen = spreadOverHosts(due, want, outboundPerHost, this.maxOutboundPerIp);
    for (const [key, c] of chosen) this.dial(key, c);
    return want - chosen.length;
  }

  /** Candidates we may dial now: due, not being dialed, not linked (by address or ID), not us, not banned. */
  private dueCandidates(linkedAddrs: ReadonlySet<string>, linkedIds: ReadonlySet<PeerId>): [string, Candidate][] {
    const now = this.clock.now();
    const due: [string, Candidate][] = [];
    for (const [key, c] of this.candidates.entries()) {
      if (c.nextAttemptAt > now || this.dialing.has(key) || linkedAddrs.has(key)) continue;
      if (c.id !== undefined && (c.id === this.network.localId || linkedIds.has(c.id) || this.score.isBanned(c.id))) continue;
      due.push([key, c]);
    }
    return due;
  }

  private dial(key: string, c: Candidate, onLinked?: (peer: PeerId) => void, onFailed?: () => void): void {
    this.dialing.add(key);
    this.counters.dials++;
    const addr: PeerAddress = c.id === undefined ? { host: c.host, port: c.port } : { host: c.host, port: c.port, id: c.id };
    this.network.dial(addr).then(
      (peer) => {
        this.dialing.delete(key);
        if (peer === this.network.localId) {
          // Our own listener: forget the address for good.
          this.candidates.markSelf(key);
          this.network.disconnect(peer, "link to self");
          onFailed?.();
          return;
        }
        if (this.score.isBanned(peer)) {
          this.network.disconnect(peer, "banned");
          this.fail(c, "banned peer");
          onFailed?.();
          return;
        }
        // The failure count is reset when this link goes down after proving stable (see linkDown), not here: a peer
        // that accepts and drops us at once must keep backing off.
        this.candidates.setId(c, peer);
        c.linkedAt = this.clock.now();
        this.dialedAs.set(peer, key);
        onLinked?.(peer);
      },
      (error: unknown) => {
        this.dialing.delete(key);
        this.counters.dialFailures++;
        this.fail(c, error instanceof Error ? error.message : String(error));
        onFailed?.();
      },
    );
  }

  private fail(c: Candidate, why: string): void {
    const delay = this.candidates.fail(c, this.clock.now());
    this.log.debug("dial failed", { host: c.host, port: c.port, failures: c.failures, retryInMs: delay, why });
  }

  /** Adds an address to the candidate table unless it names us or a banned peer. */
  private learn(addr: PeerAddress, flags: { bootstrap?: boolean; proven?: boolean }): void {
    if (addr.id !== undefined && (addr.id === this.network.localId || this.score.isBanned(addr.id))) return;
    if (this.network.isOwnAddress?.(addr.host, addr.port)) return; // e.g. a peer that claimed our port as its own
    this.candidates.learn(addr, flags, this.dialing);
  }

  /** Candidates not linked now (by `links`), counted up to `enough`: what we could dial if links were lost. */
  private spareCandidates(links: readonly LinkInfo[], enough: number): number {
    const memo = this.spareMemo;
    if (memo.version === this.candidates.version && memo.enough === enough && sameLinks(memo.links, links)) return memo.count;
    const linkedIds = new Set<PeerId>();
    const linkedAddrs = new Set<string>();
    const described: (string | number)[] = [];
    for (const l of links) {
      linkedIds.add(l.peer);
      if (l.port > 0) linkedAddrs.add(addressKeyOf(l));
      described.push(l.peer, l.host, l.port);
    }
    const count = this.candidates.spare(linkedAddrs, linkedIds, enough);
    this.spareMemo = { version: this.candidates.version, enough, links: described, count };
    return count;
  }
}

/** `described` lists exactly the peer, host and port of each of `links`, in order. */
function sameLinks(described: readonly (string | number)[], links: readonly LinkInfo[]): boolean {
  if (described.length !== 3 * links.length) return false;
  for (let i = 0; i < links.length; i++) {
    const l = links[i]!;
    if (described[3 * i] !== l.peer || described[3 * i + 1] !== l.host || described[3 * i + 2] !== l.port) return false;
  }
  return true;
}

/** host:port of a link, as the candidate table keys it; made once per LinkInfo (the networks hand out the same
 *  objects until links change, and every tick asks), remade if its address changed. */
const addressKeys = new WeakMap<LinkInfo, { host: string; port: number; key: string }>();
function addressKeyOf(l: LinkInfo): string {
  const known = addressKeys.get(l);
  if (known !== undefined && known.host === l.host && known.port === l.port) return known.key;
  const key = formatHostPort(l);
  addressKeys.set(l, { host: l.host, port: l.port, key });
  return key;
}

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}
