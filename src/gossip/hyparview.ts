/**
 * Membership as HyParView (Leitão, Pereira, Rodrigues, DSN 2007) on our links. The active view is the set of links,
 * at most `degree` and symmetric (a link is both ends' neighbour); the passive view is a bounded table of addresses
 * (candidates.ts: bootstrappers, the peer store, RPS answers, walks and shuffles), kept fresh by SHUFFLE random walks.
 * A newcomer's JOIN is spread by FORWARD_JOIN walks, so it links across the network rather than around its
 * bootstrapper. A lost link is replaced from the passive view with a NEIGHBOR request, high priority (must be
 * accepted) when our active view is empty, low otherwise (refused by a full node). A full view drops a random link
 * with DISCONNECT. Two additions to the paper keep views full (docs/decisions.md, "Membership views"): a walk ends
 * early at a node with room (past its first hop), and a node short of links asks a neighbour to start such a walk for
 * it; so holes pair up instead of wandering. Every minute a full node also tries one passive entry with low priority
 * (a target with room takes it, and we drop another link for it), so saturated groups, e.g. the two sides of a healed
 * partition, mix without punching new holes.
 *
 * Peers that do not speak views (older nodes) are kept as neighbours like any link and answered with peer exchange.
 * Must never: exceed `degree` links for longer than one decision (degree + 1 while a low-priority link we dialed from a
 * full view awaits its target's verdict, at most VIEW_ROTATION_SETTLE_MS, one at a time), dial itself, a linked or a
 * banned peer, hold more than its bounds (passive view, walk paths, pending neighbour checks), or do I/O of its own.
 */
import {
  DEFAULT_DEGREE,
  DIAL_BACKOFF_INITIAL_MS,
  DIAL_BACKOFF_MAX_MS,
  INBOUND_CAP_FACTOR,
  LINK_ROTATION_INTERVAL_MS,
  MAX_PEERS_PER_EXCHANGE,
  MEMBERSHIP_TICK_MS,
  STABLE_LINK_MS,
  VIEW_ACTIVE_WALK,
  VIEW_NEIGHBOR_GRACE_MS,
  VIEW_PASSIVE_WALK,
  VIEW_ROTATION_SETTLE_MS,
  VIEW_SHUFFLE_INTERVAL_MS,
  minOutbound,
  passiveViewSize,
  peerExchangeSize,
} from "../defaults.ts";
import type { Candidate } from "./candidates.ts";
import { PassiveView } from "./passive-view.ts";
import { RpsQueries } from "./rps-queries.ts";
import { RefillWalks } from "./view-refill.ts";
import { ShuffleWalks, shuffle } from "./view-shuffle.ts";
import type { PeerScore } from "./peer-score.ts";
import type { Clock, LinkInfo, PeerAddress, PeerEvents, PeerId, PeerNetwork, ViewMessage } from "./ports.ts";
import { formatHostPort } from "../address.ts";
import { silentLogger, type Logger } from "../log.ts";
import type { HyParViewOptions, HyParViewStats } from "./hyparview-types.ts";

export type { HyParViewOptions, HyParViewStats } from "./hyparview-types.ts";

/** Why we dial a passive entry (dial() says what each means). */
type DialPurpose = "join" | "high" | "fits" | "settle";

type Counter = Exclude<
  keyof HyParViewStats,
  "linked" | "inbound" | "outbound" | "dialing" | "candidates" | "passive" | "rpsQueries" | "rpsFailures" | "refillAsks" | "refillWalks"
>;

export class HyParView implements PeerEvents {
  readonly degree: number;
  private readonly o: HyParViewOptions;
  private readonly log: Logger;
  private readonly passive: PassiveView;
  /** Address keys with a dial in flight → why we dial (see dial()). */
  private readonly dialing = new Map<string, DialPurpose>();
  /** Links we dialed → the passive entry and when the link came up (a link that dies at once is a failed dial). */
  private readonly dialed = new Map<PeerId, { c: Candidate; at: number }>();
  /** Inbound view-speaking links that have not said yet why they came (join or neighbor) → when they came. */
  private readonly undecided = new Map<PeerId, number>();
  private readonly shuffles: ShuffleWalks;
  private handle: unknown = undefined;
  private running = false;
  private readonly rpsQueries: RpsQueries;
  private nextShuffleAt = 0;
  /** Low-priority refills wait after a refusal (most nodes are full in a steady network, and every try costs the
   *  dialer a handshake with proof of work): doubled per refusal, back to zero once a promotion sticks. */
  private refillBackoffMs = 0;
  private nextRefillAt = 0;
  private nextRotationAt: number;
  private readonly counters: Record<Counter, number> = {
    dials: 0, dialFailures: 0, rotations: 0, joins: 0, forwardJoins: 0,
    shuffles: 0, promotions: 0, neighborRefused: 0, disconnectsSent: 0,
  };
  private readonly refill: RefillWalks;
  /** Links a full node dialed at low priority (a rotation, the end of a walk) → when: once the target has not refused
   *  them for VIEW_ROTATION_SETTLE_MS, another link is dropped for them. At most one at a time. */
  private readonly settling = new Map<PeerId, number>();

  constructor(options: HyParViewOptions) {
    this.o = options;
    this.log = options.log ?? silentLogger;
    this.rpsQueries = new RpsQueries(options.rps, this.log, (addr) => {
      this.learn(addr, {});
      if (this.running) this.fill();
    });
    this.degree = options.degree ?? DEFAULT_DEGREE;
    if (!(Number.isInteger(this.degree) && this.degree >= 1)) {
      throw new RangeError(`HyParView: degree must be an integer ≥ 1, got ${this.degree}`);
    }
    this.passive = new PassiveView({
      size: options.passiveSize ?? passiveViewSize(this.degree),
      degree: this.degree,
      backoffInitialMs: options.backoffInitialMs,
      backoffMaxMs: options.backoffMaxMs,
      random: options.random,
      now: () => this.now(),
      localId: options.network.localId,
      isOwnAddress: options.network.isOwnAddress?.bind(options.network),
      isBanned: (peer) => options.score.isBanned(peer),
      dialing: this.dialing,
    });
    // The first rotation at a random point of the first interval, so that nodes started together do not all rotate
    // in the same second.
    this.nextRotationAt = this.now() + options.random() * (options.rotationIntervalMs ?? LINK_ROTATION_INTERVAL_MS);
    for (const b of options.bootstrappers ?? []) this.learn(b, { bootstrap: true });
    this.refill = new RefillWalks({ random: options.random, now: () => this.now(), send: (peer, m) => void this.o.network.sendViews?.(peer, m) });
    this.shuffles = new ShuffleWalks({
      random: options.random,
      now: () => this.now(),
      links: () => this.links(),
      passive: () => this.passiveEntries(),
      learn: (a) => void this.learn(a, {}),
      send: (peer, m) => void this.o.network.sendViews?.(peer, m),
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.nextShuffleAt = this.now() + this.o.random() * this.shuffleIntervalMs;
    this.handle = this.o.clock.setInterval(() => this.tick(), this.o.tickMs ?? MEMBERSHIP_TICK_MS);
    this.tick();
  }

  stop(): void {
    if (!this.running) return;
    this.running = false;
    this.o.clock.clearInterval(this.handle);
  }

  addKnownAddresses(addresses: PeerAddress[]): void {
    for (const a of addresses) this.learn(a, { proven: true });
    if (this.running) this.fill();
  }

  acceptInbound(): boolean {
    let inbound = 0;
    for (const l of this.links()) if (l.inbound) inbound++;
    return inbound < INBOUND_CAP_FACTOR * this.degree; // the view is trimmed to `degree` once the peer says why
  }

  referrals(forPeer: PeerId): PeerAddress[] {
    const out: PeerAddress[] = [];
    const pool = [...this.links().map((l) => ({ host: l.host, port: l.port, id: l.peer })), ...this.passiveEntries()];
    shuffle(pool, this.o.random);
    for (const a of pool) {
      if (out.length >= peerExchangeSize(this.degree)) break;
      if (a.id !== forPeer && a.port > 0 && !this.o.network.isOwnAddress?.(a.host, a.port)) out.push(a);
    }
    return out;
  }

  stats(): HyParViewStats {
    const links = this.links();
    const inbound = links.filter((l) => l.inbound).length;
    return {
      linked: links.length,
      inbound,
      outbound: links.length - inbound,
      dialing: this.dialing.size,
      candidates: this.passive.size,
      passive: this.passive.size,
      ...this.counters,
      refillAsks: this.refill.asks,
      refillWalks: this.refill.walks,
      rpsQueries: this.rpsQueries.queries,
      rpsFailures: this.rpsQueries.failures,
    };
  }

  // ---- PeerEvents ---------------------------------------------------------------------------------------------

  linkUp(info: LinkInfo): void {
    const self = info.peer === this.o.network.localId;
    if (self || this.o.score.isBanned(info.peer)) {
      this.o.network.disconnect(info.peer, self ? "link to self" : "banned");
      return;
    }
    this.rememberInbound(info);
    // An inbound peer says why it came (JOIN or NEIGHBOR) in its first message; an older node never does and is a
    // low-priority neighbour once the grace period ends, by which time it has had our peer-exchange answer.
    if (info.inbound) this.undecided.set(info.peer, this.now());
    else if (!info.views) {
      this.o.network.requestPeers(info.peer); // older nodes share addresses by peer exchange only
    }
  }

  linkDown(peer: PeerId, reason: string): void {
    this.undecided.delete(peer);
    this.settling.delete(peer);
    this.refill.forget(peer);
    const d = this.dialed.get(peer);
    this.dialed.delete(peer);
    // A link that dies at once (a full node refusing us, a peer dropping us) must not be redialed every tick.
    if (d !== undefined && this.now() - d.at < STABLE_LINK_MS) {
      this.passive.fail(d.c);
      this.refillBackoffMs = Math.min(DIAL_BACKOFF_MAX_MS, Math.max(DIAL_BACKOFF_INITIAL_MS, 2 * this.refillBackoffMs));
      this.nextRefillAt = this.now() + this.refillBackoffMs;
    } else if (d !== undefined) {
      d.c.failures = 0;
      this.refillBackoffMs = 0;
    }
    this.log.debug("link lost", { peer, reason });
    if (this.running) this.fill();
  }

  views(from: PeerId, m: ViewMessage): void {
    const link = this.links().find((l) => l.peer === from);
    if (link === undefined || this.o.score.isBanned(from)) return;
    switch (m.kind) {
      case "join":
        return this.join(link);
      case "forward-join":
        return this.forwardJoin(link, m.peer, m.ttl);
      case "neighbor":
        // On a link already in the view, a low-priority NEIGHBOR is a neighbour short of links asking for a walk.
        if (!this.undecided.delete(from) && !m.high) return this.refill.asked(link, this.speakers(from));
        this.admit(from, m.high);
        return;
      case "disconnect":
        this.learn({ host: link.host, port: link.port, id: from }, { proven: true }, this.shuffleIntervalMs);
        this.o.network.disconnect(from, "view-disconnect");
        return;
      case "shuffle":
        return this.shuffles.received(link, m);
      case "shuffle-reply":
        return this.shuffles.replied(m.id, m.entries);
    }
  }

  peersRequested(from: PeerId): void {
    this.o.network.sendPeers(from, this.referrals(from));
  }

  peers(_from: PeerId, list: PeerAddress[]): void {
    for (const a of list.slice(0, MAX_PEERS_PER_EXCHANGE)) this.learn(a, {});
    if (this.running) this.fill();
  }

  item(): void {}
  tree(): void {}

  // ---- the protocol -------------------------------------------------------------------------------------------

  /** The periodic work: settle undecided links, fill the active view, shuffle, rotate, ask RPS while short. */
  tick(): void {
    if (!this.running) return;
    const now = this.now();
    for (const [peer, at] of this.undecided) {
      if (now - at >= VIEW_NEIGHBOR_GRACE_MS) {
        this.undecided.delete(peer);
        this.admit(peer, false);
      }
    }
    this.shuffles.expire();
    this.fill();
    this.settle(now);
    const links = this.links();
    if (links.length > 0) this.refill.ask(this.speakers(), this.degree - links.length - this.dialing.size);
    this.rpsQueries.ask(this.degree - links.length);
    if (now >= this.nextShuffleAt) {
      this.nextShuffleAt = now + this.shuffleIntervalMs;
      if (this.shuffles.start(links)) this.counters.shuffles++;
    }
    if (now >= this.nextRotationAt) {
      this.nextRotationAt = now + (this.o.rotationIntervalMs ?? LINK_ROTATION_INTERVAL_MS);
      if (links.length >= this.degree && this.dialing.size === 0 && !this.settlingAny()) this.rotate();
    }
  }

  private join(link: LinkInfo): void {
    this.counters.joins++;
    this.undecided.delete(link.peer);
    this.admit(link.peer, true);
    const newcomer: PeerAddress = { host: link.host, port: link.port, id: link.peer };
    if (link.port <= 0) return; // it does not listen: nobody could link to it
    for (const l of this.links()) {
      if (l.peer !== link.peer && l.views) this.o.network.sendViews?.(l.peer, { kind: "forward-join", peer: newcomer, ttl: VIEW_ACTIVE_WALK });
    }
  }

  private forwardJoin(from: LinkInfo, newcomer: PeerAddress, ttl: number): void {
    this.counters.forwardJoins++;
    if (newcomer.id === this.o.network.localId || newcomer.id === undefined) return;
    const links = this.links();
    const linked = links.some((l) => l.peer === newcomer.id);
    // Past its first hop, a walk ends at the first node with room: it links to the newcomer at low priority (a
    // newcomer or a node short of links has room too), so a hole is filled instead of a new one made.
    if (ttl < VIEW_ACTIVE_WALK && !linked && links.length + this.dialing.size < this.degree) {
      this.dialAddress(newcomer, "fits");
      return;
    }
    const others = links.filter((l) => l.views && l.peer !== from.peer && l.peer !== newcomer.id);
    if (ttl <= 0 || others.length === 0) {
      // The walk ends here: link to the newcomer, at low priority (a newcomer has room; a node that asked for a walk
      // and has filled up meanwhile refuses), making room for it once it has not refused.
      // One such link at a time (so never more than degree + 1 links); a walk ending while one waits is dropped.
      if (!linked && !this.settlingAny()) this.dialAddress(newcomer, "settle");
      return;
    }
    if (ttl === VIEW_PASSIVE_WALK) this.learn(newcomer, {});
    this.o.network.sendViews?.(this.refill.nextHop(others), { kind: "forward-join", peer: newcomer, ttl: Math.min(ttl, VIEW_ACTIVE_WALK) - 1 });
  }

  /** Keeps the link `peer` in the active view; `must` (a join, a high-priority request) drops another if full. */
  private admit(peer: PeerId, must: boolean): void {
    const links = this.links();
    if (links.length <= this.degree) return;
    if (!must) {
      this.counters.neighborRefused++;
      this.drop(peer);
      return;
    }
    const victims = this.victims(links.filter((l) => l.peer !== peer));
    if (victims.length > 0) this.drop(victims[Math.floor(this.o.random() * victims.length)]!.peer);
  }

  /** Links that may be dropped: any, but our own outbound ones only while we keep the reserve against eclipse. */
  private victims(links: LinkInfo[]): LinkInfo[] {
    const outbound = links.filter((l) => !l.inbound).length;
    return outbound > minOutbound(this.degree) ? links : links.filter((l) => l.inbound);
  }

  private drop(peer: PeerId): void {
    const link = this.links().find((l) => l.peer === peer);
    if (link === undefined) return;
    this.counters.disconnectsSent++;
    if (link.views) this.o.network.sendViews?.(peer, { kind: "disconnect" });
    this.learn({ host: link.host, port: link.port, id: peer }, { proven: true }, this.shuffleIntervalMs);
    this.o.network.disconnect(peer, "view-full");
  }

  /** Dials passive entries while the active view is short (high priority when it is empty). */
  private fill(): void {
    const links = this.links();
    const missing = this.degree - links.length;
    // An empty view refills at once (high priority). A view short by two or more (after a mass failure most targets
    // have room, and many entries are dead) dials all but one of the missing links at once at low priority; the last
    // one is tried one at a time, after the backoff (in a steady network most nodes are full, and every try costs a
    // proof of work).
    const want = (links.length === 0 ? missing : Math.max(1, missing - 1)) - this.dialing.size;
    if (missing <= 0 || want <= 0) return;
    if (missing === 1 && this.now() < this.nextRefillAt) return;
    const chosen = this.passive.pick(want, links);
    for (const [key, c] of chosen) {
      this.counters.promotions++;
      const bootstrap = links.length === 0 && this.dialing.size === 0 && c.bootstrap;
      this.dial(key, c, bootstrap ? "join" : links.length === 0 ? "high" : "fits");
    }
  }

  /** A full node tries one passive entry at low priority: a target with room keeps us, one without refuses. */
  private rotate(): void {
    const [pick] = this.passive.pick(1, this.links());
    if (pick === undefined) return;
    this.counters.rotations++;
    this.dial(pick[0], pick[1], "settle");
  }

  /** A low-priority link from our full view is dialing or awaiting its target's verdict. */
  private settlingAny(): boolean {
    if (this.settling.size > 0) return true;
    for (const how of this.dialing.values()) if (how === "settle") return true;
    return false;
  }

  /** Links a full node dialed at low priority that have not been refused by now are kept, a random other dropped. */
  private settle(now: number): void {
    for (const [peer, at] of this.settling) {
      if (now - at < VIEW_ROTATION_SETTLE_MS) continue;
      this.settling.delete(peer);
      const links = this.links();
      if (links.length <= this.degree || !links.some((l) => l.peer === peer)) continue;
      const victims = this.victims(links.filter((l) => l.peer !== peer && !this.settling.has(l.peer)));
      if (victims.length > 0) this.drop(victims[Math.floor(this.o.random() * victims.length)]!.peer);
    }
  }

  private dialAddress(addr: PeerAddress, how: "fits" | "settle"): void {
    const c = this.learn(addr, {});
    if (c !== undefined && !this.dialing.has(formatHostPort(c))) this.dial(formatHostPort(c), c, how);
  }

  /**
   * Dials a passive entry and says why in its first message: `join` (to a bootstrapper, our view empty), `high`
   * (our view is empty: the target must take us), `fits` (low priority, we have room), `settle` (low priority from a
   * full view: a rotation or the end of a walk, kept once not refused; see settle()).
   */
  private dial(key: string, c: Candidate, how: DialPurpose): void {
    const hello: ViewMessage = how === "join" ? { kind: "join" } : { kind: "neighbor", high: how === "high" };
    this.dialing.set(key, how);
    this.counters.dials++;
    const addr: PeerAddress = c.id === undefined ? { host: c.host, port: c.port } : { host: c.host, port: c.port, id: c.id };
    this.o.network.dial(addr).then(
      (peer) => {
        this.dialing.delete(key);
        if (peer === this.o.network.localId) return this.passive.markSelf(key);
        c.id = peer;
        this.dialed.set(peer, { c, at: this.now() });
        const links = this.links();
        const link = links.find((l) => l.peer === peer);
        if (link === undefined) return;
        if (how === "fits" && links.length > this.degree) {
          // We filled up while dialing: this request is no longer needed; dropping it makes no hole anywhere.
          this.dialed.delete(peer);
          return this.drop(peer);
        }
        if (link.views) this.o.network.sendViews?.(peer, hello);
        // Our own new link counts toward our view too: a full view drops a random other, at once when the target must
        // take us, or once it has not refused us.
        if (how === "settle") this.settling.set(peer, this.now());
        else if (links.length > this.degree) {
          const victims = this.victims(links.filter((l) => l.peer !== peer));
          if (victims.length > 0) this.drop(victims[Math.floor(this.o.random() * victims.length)]!.peer);
        }
      },
      (error: unknown) => {
        this.dialing.delete(key);
        this.counters.dialFailures++;
        const delay = this.passive.fail(c);
        this.log.debug("dial failed", { host: c.host, port: c.port, retryInMs: delay, why: error instanceof Error ? error.message : String(error) });
        if (this.running) this.fill();
      },
    );
  }

  /** An inbound peer's advertised address is remembered (for after its link is gone). */
  private rememberInbound(info: LinkInfo): void {
    if (info.inbound && info.port > 0) this.learn({ host: info.host, port: info.port, id: info.peer }, { proven: true });
  }

  private passiveEntries(): PeerAddress[] {
    return this.passive.addresses(this.links());
  }

  private learn(addr: PeerAddress, flags: { bootstrap?: boolean; proven?: boolean }, restMs = 0): Candidate | undefined {
    return this.passive.learn(addr, flags, restMs);
  }

  /** Decided view-speaking links (other than `except`): those a walk or an ask may go to. */
  private speakers(except?: PeerId): LinkInfo[] {
    return this.links().filter((l) => l.views && l.peer !== except && !this.undecided.has(l.peer));
  }

  private links(): LinkInfo[] {
    return this.o.network.linkedPeers();
  }

  private now(): number {
    return this.o.clock.now();
  }

  private get shuffleIntervalMs(): number {
    return this.o.shuffleIntervalMs ?? VIEW_SHUFFLE_INTERVAL_MS;
  }
}
