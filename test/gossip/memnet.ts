/**
 * An in-memory network for the dissemination layer: many nodes in one process, each with a PeerNetwork and
 * LocalModules, a fake clock and seeded randomness, so tests are fast and deterministic. Messages are queued and
 * delivered in FIFO order by settle(); promise continuations run between deliveries, never in a different order.
 * Must never touch real sockets or real timers; what it simulates of the transport is listed on MemNode.
 */
import type { Broadcaster } from "../../src/gossip/broadcaster.ts";
import { createCore, type BroadcasterTunables, type CoreOptions, type GossipCore, type MembershipPart, type MembershipTunables, type Overlay } from "../../src/gossip/core.ts";
import type { PeerScore, PeerScoreOptions } from "../../src/gossip/peer-score.ts";
import { seededRandom } from "../../src/util/random.ts";
import type {
  Clock,
  GossipItem,
  LinkInfo,
  LocalModules,
  PeerAddress,
  PeerEvents,
  PeerId,
  PeerNetwork,
  TreeMessage,
  Verdict,
  ViewMessage,
} from "../../src/gossip/ports.ts";

// ---- Time and randomness -----------------------------------------------------------------------------------------

interface Timer {
  id: number;
  at: number;
  fn: () => void;
  every?: number;
}

export class FakeClock implements Clock {
  private time = 0;
  private nextId = 1;
  private readonly timers = new Map<number, Timer>();

  readonly now = (): number => this.time;

  setTimeout(fn: () => void, ms: number): number {
    const id = this.nextId++;
    this.timers.set(id, { id, at: this.time + Math.max(0, ms), fn });
    return id;
  }

  setInterval(fn: () => void, ms: number): number {
    const id = this.nextId++;
    this.timers.set(id, { id, at: this.time + ms, fn, every: Math.max(1, ms) });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  clearInterval(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, firing due timers in time order (ties: creation order). */
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      let next: Timer | undefined;
      for (const t of this.timers.values()) if (t.at <= end && (next === undefined || t.at < next.at)) next = t;
      if (next === undefined) break;
      this.time = next.at;
      if (next.every === undefined) this.timers.delete(next.id);
      else next.at += next.every;
      next.fn();
    }
    this.time = end;
  }
}

/** mulberry32, shared with the testnet: the same seed gives the same run. */
export { seededRandom };

// ---- Local modules ----------------------------------------------------------------------------------------------

/** A subscriber's answer: true/false as VALIDATION, "silent" = never answers. */
export type Answer = boolean | "silent";

export interface MemSubscriber {
  dataType: number;
  answer: (data: Uint8Array) => Answer;
  /** Every NOTIFICATION it got (the data). */
  notified: Uint8Array[];
}

/**
 * LocalModules as the API server provides it: notify all subscribers, all must answer valid within the timeout;
 * at most `maxOutstanding` notifications awaiting an answer (the validation bound, counted per subscriber).
 */
export class MemModules implements LocalModules {
  readonly subscribers: MemSubscriber[] = [];
  maxOutstanding = 1024;
  /** Notifications awaiting an answer (only silent subscribers keep one open, until the timeout). */
  outstanding = 0;

  constructor(
    private readonly clock: FakeClock,
    private readonly timeoutMs = 5_000,
  ) {}

  subscribe(dataType: number, answer: (data: Uint8Array) => Answer = () => true): MemSubscriber {
    const s: MemSubscriber = { dataType, answer, notified: [] };
    this.subscribers.push(s);
    return s;
  }

  hasSubscribers(dataType: number): boolean {
    return this.subscribers.some((s) => s.dataType === dataType);
  }

  canValidate(dataType: number): boolean {
    let n = 0;
    for (const s of this.subscribers) if (s.dataType === dataType) n++;
    return this.outstanding + n <= this.maxOutstanding;
  }

  validate(dataType: number, data: Uint8Array): Promise<Verdict> {
    const subs = this.subscribers.filter((s) => s.dataType === dataType);
    if (subs.length === 0 || !this.canValidate(dataType)) return Promise.resolve("unanswered");
    const answers = subs.map((s) => {
      s.notified.push(data);
      return s.answer(data);
    });
    if (answers.includes(false)) return Promise.resolve("invalid");
    if (answers.includes("silent")) {
      const open = answers.filter((a) => a === "silent").length;
      this.outstanding += open;
      return new Promise((resolve) =>
        this.clock.setTimeout(() => {
          this.outstanding -= open;
          resolve("unanswered");
        }, this.timeoutMs),
      );
    }
    return Promise.resolve("valid");
  }
}

// ---- Network ------------------------------------------------------------------------------------------------------

export interface DialRecord {
  from: PeerId;
  to: PeerAddress;
  at: number;
}

/**
 * One node's view of the network. Simulated transport behaviour: dial fails for a dead/unknown address or a wrong
 * expected ID; the target refuses when its acceptInbound() says so or it has banned the dialer; dialing an address
 * already linked resolves with that peer without a second link; dialing one's own address resolves with one's own ID
 * and no link; disconnect() closes both ends and both get linkDown.
 */
export class MemNode implements PeerNetwork {
  readonly links = new Map<PeerId, LinkInfo>();
  readonly modules: MemModules;
  /** Items delivered to this node, in order. */
  readonly inbox: { from: PeerId; item: GossipItem }[] = [];
  alive = true;
  events: PeerEvents | undefined = undefined;
  acceptInbound: () => boolean = () => true;
  isBanned: (peer: PeerId) => boolean = () => false;
  /** The listen address it claims in its handshakes (a lying peer may claim someone else's); its own by default. */
  advertised: { host: string; port: number } | undefined = undefined;
  /** Speaks broadcast trees (negotiated per link: both ends must); false plays a node that predates them. */
  speaksTrees = true;
  /** Speaks rooted trees on top (src/gossip/tree-root.ts); false plays a node that speaks the paper's trees only. */
  speaksRoots = true;
  /** Speaks membership views (HyParView); false plays a node that predates them. */
  speaksViews = true;
  /** View messages this node sent, by kind. */
  readonly viewsSent = new Map<ViewMessage["kind"], number>();
  /** Tree messages this node sent, by kind (what a test can count on the wire). */
  readonly treeSent = new Map<TreeMessage["kind"], number>();
  /** false: like a node behind NAT, it cannot tell its own address, and learns it only when a dial reaches itself. */
  knowsOwnAddress = true;
  /** Addresses sent to a dialer whose link this node refuses for lack of room (the transport's referrals). */
  referrals: (peer: PeerId) => PeerAddress[] = () => [];

  constructor(
    private readonly net: MemNetwork,
    readonly localId: PeerId,
    readonly host: string,
    readonly port: number,
  ) {
    this.modules = new MemModules(net.clock);
  }

  get address(): PeerAddress {
    return { host: this.host, port: this.port, id: this.localId };
  }

  isOwnAddress(host: string, port: number): boolean {
    return this.knowsOwnAddress && host === this.host && port === this.port;
  }

  linkedPeers(): LinkInfo[] {
    return [...this.links.values()];
  }

  sendItem(peer: PeerId, item: GossipItem): boolean {
    if (!this.alive || !this.links.has(peer)) return false;
    this.net.sentItems++;
    this.net.enqueue(() => {
      const to = this.net.node(peer);
      if (!to?.alive || !to.links.has(this.localId)) return;
      to.inbox.push({ from: this.localId, item });
      to.events?.item(this.localId, item);
    });
    return true;
  }

  sendTree(peer: PeerId, message: TreeMessage): boolean {
    const link = this.links.get(peer);
    if (!this.alive || link === undefined) return false;
    if (!link.trees) throw new Error(`memnet: ${this.localId} sent a tree message to ${peer}, which does not speak trees`);
    this.treeSent.set(message.kind, (this.treeSent.get(message.kind) ?? 0) + 1);
    this.toPeer(peer, (to) => to.events?.tree(this.localId, message));
    return true;
  }

  sendViews(peer: PeerId, message: ViewMessage): boolean {
    const link = this.links.get(peer);
    if (!this.alive || link === undefined) return false;
    if (!link.views) throw new Error(`memnet: ${this.localId} sent a view message to ${peer}, which does not speak views`);
    this.viewsSent.set(message.kind, (this.viewsSent.get(message.kind) ?? 0) + 1);
    this.toPeer(peer, (to) => to.events?.views(this.localId, message));
    return true;
  }

  requestPeers(peer: PeerId): void {
    this.toPeer(peer, (to) => to.events?.peersRequested(this.localId));
  }

  sendPeers(peer: PeerId, peers: PeerAddress[]): void {
    this.toPeer(peer, (to) => to.events?.peers(this.localId, peers));
  }

  dial(addr: PeerAddress): Promise<PeerId> {
    this.net.dials.push({ from: this.localId, to: { ...addr }, at: this.net.clock.now() });
    return new Promise((resolve, reject) => {
      this.net.enqueue(() => {
        const target = this.net.listenerAt(addr.host, addr.port);
        if (!this.alive) return reject(new Error("dialer is dead"));
        if (target === undefined) return reject(new Error("ECONNREFUSED"));
        if (addr.id !== undefined && addr.id !== target.localId) return reject(new Error("peer ID mismatch"));
        if (target === this || this.links.has(target.localId)) return resolve(target.localId);
        if (target.isBanned(this.localId)) return reject(new Error("refused"));
        if (!target.acceptInbound()) {
          const list = target.referrals(this.localId);
          if (list.length > 0) this.events?.peers(target.localId, list);
          return reject(new Error("refused: too many links"));
        }
        const claimed = this.advertised ?? this;
        const trees = this.speaksTrees && target.speaksTrees;
        const views = this.speaksViews && target.speaksViews;
        const roots = trees && this.speaksRoots && target.speaksRoots;
        const theirs: LinkInfo = { peer: this.localId, host: claimed.host, port: claimed.port, inbound: true, trees, roots, views };
        const ours: LinkInfo = { peer: target.localId, host: addr.host, port: addr.port, inbound: false, trees, roots, views };
        target.links.set(this.localId, theirs);
        this.links.set(target.localId, ours);
        // Either side's linkUp handler may close the link at once; the other side then sees linkUp, then linkDown.
        target.events?.linkUp(theirs);
        if (this.links.get(target.localId) === ours) this.events?.linkUp(ours);
        resolve(target.localId);
      });
    });
  }

  disconnect(peer: PeerId, reason: string): void {
    if (!this.links.delete(peer)) return;
    const other = this.net.node(peer);
    other?.links.delete(this.localId);
    this.net.enqueue(() => this.alive && this.events?.linkDown(peer, reason));
    this.net.enqueue(() => other?.alive && other.events?.linkDown(this.localId, `remote: ${reason}`));
  }

  private toPeer(peer: PeerId, deliver: (to: MemNode) => void): void {
    if (!this.alive || !this.links.has(peer)) return;
    this.net.enqueue(() => {
      const to = this.net.node(peer);
      if (to?.alive && to.links.has(this.localId)) deliver(to);
    });
  }
}

export class MemNetwork {
  readonly clock = new FakeClock();
  readonly nodes: MemNode[] = [];
  readonly dials: DialRecord[] = [];
  sentItems = 0;
  private queue: (() => void)[] = [];
  private readonly byId = new Map<PeerId, MemNode>();

  /** Adds a node; by default ID "n<i>", host 10.0.0.<i+1>, port 6001. */
  addNode(options: { id?: PeerId; host?: string; port?: number } = {}): MemNode {
    const i = this.nodes.length;
    const node = new MemNode(this, options.id ?? `n${i}`, options.host ?? `10.0.${(i + 1) >> 8}.${(i + 1) & 255}`, options.port ?? 6001);
    this.nodes.push(node);
    this.byId.set(node.localId, node);
    return node;
  }

  node(id: PeerId): MemNode | undefined {
    return this.byId.get(id);
  }

  listenerAt(host: string, port: number): MemNode | undefined {
    return this.nodes.find((n) => n.alive && n.host === host && n.port === port);
  }

  /** `from` dials `to`; the link is up (or the Error known) once settled. Never an unhandled rejection. */
  connect(from: MemNode, to: MemNode): Promise<PeerId | Error> {
    return from.dial(to.address).catch((error: Error) => error);
  }

  /** Stops a node dead: its links vanish and its neighbours get linkDown. */
  kill(node: MemNode): void {
    node.alive = false;
    for (const peer of [...node.links.keys()]) {
      node.links.delete(peer);
      const other = this.node(peer);
      other?.links.delete(node.localId);
      this.enqueue(() => other?.alive && other.events?.linkDown(node.localId, "connection reset"));
    }
  }

  enqueue(fn: () => void): void {
    this.queue.push(fn);
  }

  /** Delivers queued messages (and whatever they cause) until nothing is left to do at the current time. */
  async settle(maxSteps = 1_000_000): Promise<void> {
    let steps = 0;
    for (;;) {
      // A macrotask boundary: every pending promise continuation runs first.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.queue.length === 0) return;
      const batch = this.queue;
      this.queue = [];
      for (const fn of batch) fn();
      steps += batch.length;
      if (steps > maxSteps) throw new Error("memnet: the network never went quiet");
    }
  }

  /** Advances the fake clock by `ms` in steps of `stepMs`, settling after each step. */
  async runFor(ms: number, stepMs = 100): Promise<void> {
    await this.settle();
    for (let t = 0; t < ms; t += stepMs) {
      this.clock.advance(Math.min(stepMs, ms - t));
      await this.settle();
    }
  }
}

// ---- A whole gossip node in memory --------------------------------------------------------------------------------

export interface GossipPeer {
  net: MemNode;
  core: GossipCore;
  score: PeerScore;
  broadcaster: Broadcaster;
  membership?: MembershipPart;
}

/**
 * Builds a node's gossip core (src/gossip/core.ts, the same function node.ts uses) on a MemNode and wires the
 * MemNode's admission questions to it. Without `membership` options the core has no membership (tests link by hand).
 */
export function spawn(
  net: MemNetwork,
  node: MemNode,
  options: {
    broadcaster?: BroadcasterTunables & { degree?: number; cacheSize?: number; local?: LocalModules };
    membership?: MembershipTunables & { degree?: number; bootstrappers?: PeerAddress[]; rps?: () => Promise<PeerAddress> };
    score?: Omit<PeerScoreOptions, "now">;
    overlay?: Overlay;
    seed?: number;
    usefulness?: CoreOptions["usefulness"];
  } = {},
): GossipPeer {
  const seed = options.seed ?? node.localId.split("").reduce((h, ch) => Math.imul(h ^ ch.charCodeAt(0), 16777619), 2166136261);
  const { degree: bDegree, cacheSize, local, ...broadcaster } = options.broadcaster ?? {};
  const { degree: mDegree, bootstrappers, rps, ...membership } = options.membership ?? {};
  const core = createCore({
    network: node,
    local: local ?? node.modules,
    clock: net.clock,
    random: seededRandom(seed),
    degree: mDegree ?? bDegree,
    cacheSize,
    bootstrappers,
    rps,
    broadcaster,
    membership: options.membership === undefined ? false : membership,
    overlay: options.overlay,
    score: options.score,
    usefulness: options.usefulness,
  });
  node.events = core.events;
  node.acceptInbound = () => core.acceptInbound(node.localId);
  node.referrals = (peer) => core.referrals(peer);
  node.isBanned = (peer) => core.isBanned(peer);
  return { net: node, core, score: core.score, broadcaster: core.broadcaster, membership: core.membership };
}
