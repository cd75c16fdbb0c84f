/**
 * Link usefulness: per linked peer, what it gave this node (first copies of items, first announcements) and whether
 * it says anything at all on the item plane (any item copy, first or duplicate, any broadcast-tree message), counted
 * against the new items this node received from others while the link was up. `judge` names the links that stayed
 * silent while enough items flowed through other links: the core disconnects them (`useless-link`) so that
 * membership refills the slot, and charges the peer a score penalty (src/gossip/peer-score.ts) so that a peer
 * dropped as useless again soon after ends below the ban threshold and is neither redialed nor accepted.
 *
 * Why silence and not "fewest first copies": an honest lazy link announces (IHAVE) what it has, an honest eager link
 * sends copies, even when none of them comes first; a censor sends nothing. A tree child (a peer we push to eagerly
 * and that takes its items from us) is silent towards us by design, so the caller exempts such links.
 * First copies are counted whatever the module's verdict: a rejection is the baseline logic's business
 * (score-baseline.ts), never a reason to call a link useless.
 *
 * `youngestMute` names the link a full inbound table gives way to a newcomer for (one that never said anything).
 * `messagesFrom` tells how much the links said since they came up: next to nothing, and the node cannot judge (no
 * item reaches it through any link to compare with), so `IsolationProbes` (below) has it dial a few more addresses.
 *
 * Pure state machine: time comes in as `now`; no timers, no I/O. Must never: call a link useless for what a module
 * rejected, judge a link younger than minLinkAgeMs or one the caller exempts, or hold more than `maxLinks` records
 * (one per linked peer; the oldest record goes first).
 */

export interface LinkUsefulnessParams {
  /** New items the node must receive from other links while a link that never said anything (mute) stays silent
   *  before that link is useless … */
  minItems: number;
  /** … and while one that did say something before stays silent (an honest lazy peer announces to a random few of
   *  its lazy links per item, so it can fall silent towards one for a while by chance). */
  minItemsAfterTalk: number;
  /** A link is judged only once it has been up this long. */
  minLinkAgeMs: number;
  /** Links dropped per judgement at most. */
  maxDropsPerJudgement: number;
  /** Records kept at most (one per linked peer; more only if the network reports more links than it should). */
  maxLinks: number;
  /** First copies from a peer within this long of its last replayed item (a new link's cache replay) are old items:
   *  the other links are not silent for not having sent them. */
  replayWindowMs: number;
  /** First copies from one peer closer together than this count as one for the other links' silence: a burst is
   *  old items (a neighbour that just bridged to another part of the network forwards what it got there), which
   *  the other links did not have either. */
  burstGapMs: number;
}

interface LinkRecord {
  since: number;
  /** The node's count of new items (LinkUsefulness.newItems) when this link last said anything (or came up): it has
   *  been silent for the difference. One counter for the node, not one per link, so a first copy costs O(1). */
  mark: number;
  /** First copies and first announcements from this peer since the link came up. */
  firsts: number;
  /** Item copies and tree messages from this peer since the link came up. */
  messages: number;
  /** Clock time of the last replayed item (cache replay) from this peer. */
  replayAt: number;
  /** Clock time of the last first copy from this peer. */
  firstAt: number;
}

export interface UselessLink {
  peer: string;
  /** It never said anything on the item plane since the link came up (not even one duplicate or announcement). */
  mute: boolean;
}

export interface LinkUsefulnessStats {
  tracked: number;
  /** Links named useless since the start. */
  judgedUseless: number;
}

/** What recordOf shows: the record, with how many new items the link has been silent for. */
export type LinkRecordView = Readonly<Omit<LinkRecord, "mark"> & { silentFor: number }>;

export class LinkUsefulness {
  private readonly links = new Map<string, LinkRecord>();
  private judgedUseless = 0;
  /** New items received (not counting replays and bursts) since the start. */
  private newItems = 0;

  constructor(private readonly p: LinkUsefulnessParams) {
    if (!(p.minItems >= 1)) throw new RangeError(`link usefulness: minItems must be ≥ 1, got ${p.minItems}`);
    if (!(p.minItemsAfterTalk >= p.minItems)) throw new RangeError(`link usefulness: minItemsAfterTalk must be ≥ minItems`);
    if (!(p.maxDropsPerJudgement >= 1)) throw new RangeError(`link usefulness: maxDropsPerJudgement must be ≥ 1, got ${p.maxDropsPerJudgement}`);
  }

  linkUp(peer: string, now: number): void {
    this.links.delete(peer);
    this.links.set(peer, { since: now, mark: this.newItems, firsts: 0, messages: 0, replayAt: -Infinity, firstAt: -Infinity });
    while (this.links.size > this.p.maxLinks) this.links.delete(this.links.keys().next().value as string);
  }

  linkDown(peer: string): void {
    this.links.delete(peer);
  }

  /** Something on the item plane from `peer`: an item copy (first or not, valid or not; `replayed`: part of the
   *  cache replay to a new link) or a tree message. */
  message(peer: string, now: number, replayed = false): void {
    const r = this.links.get(peer);
    if (r === undefined) return;
    r.messages++;
    r.mark = this.newItems;
    if (replayed) r.replayAt = now;
  }

  /** `peer` gave us an item first (`newItem`: a first copy, so the node has one item more) or announced first an ID
   *  we did not have (`newItem` false: its copy, from whoever, is counted when it arrives). */
  first(peer: string, newItem: boolean, now: number): void {
    const r = this.links.get(peer);
    let burst = false;
    if (r !== undefined) {
      r.firsts++;
      if (newItem) {
        // Old items (a cache replay, or a burst): the other links were not silent for not sending them.
        burst = now - r.replayAt <= this.p.replayWindowMs || now - r.firstAt < this.p.burstGapMs;
        r.firstAt = now;
      }
    }
    // One more new item that every other link was silent for; the sender's count starts over.
    if (newItem && !burst) this.newItems++;
    if (r !== undefined) r.mark = this.newItems;
  }

  /**
   * The links to drop now: up at least minLinkAgeMs, silent while minItems new items came through others, and not
   * exempt (`exempt`: a tree child). Longest silence first, at most maxDropsPerJudgement.
   */
  judge(now: number, exempt: (peer: string) => boolean = () => false): UselessLink[] {
    const useless: (UselessLink & { silentFor: number })[] = [];
    for (const [peer, r] of this.links) {
      const enough = r.messages === 0 ? this.p.minItems : this.p.minItemsAfterTalk;
      const silentFor = this.newItems - r.mark;
      if (now - r.since < this.p.minLinkAgeMs || silentFor < enough || exempt(peer)) continue;
      useless.push({ peer, mute: r.messages === 0, silentFor });
    }
    useless.sort((a, b) => b.silentFor - a.silentFor);
    const out = useless.slice(0, this.p.maxDropsPerJudgement).map(({ peer, mute }) => ({ peer, mute }));
    this.judgedUseless += out.length;
    return out;
  }

  /**
   * The link among `candidates` that has said nothing since it came up (mute), up at least minLinkAgeMs and not
   * exempt, that came up last: the one a full inbound table gives way to a newcomer for. The youngest, because before
   * any item flows every link is mute, and the oldest are then the neighbours the node had before an attacker came
   * to crowd it (an eclipse); an attacker redialing at once only evicts its own kind. None if there is no such link.
   */
  youngestMute(candidates: readonly string[], now: number, exempt: (peer: string) => boolean = () => false): string | undefined {
    let best: string | undefined;
    let since = -Infinity;
    for (const peer of candidates) {
      const r = this.links.get(peer);
      if (r === undefined || r.messages > 0 || now - r.since < this.p.minLinkAgeMs || r.since <= since || exempt(peer)) continue;
      best = peer;
      since = r.since;
    }
    return best;
  }

  /** Links tracked (one per linked peer). */
  get size(): number {
    return this.links.size;
  }

  /** What the links other than those `except` names said on the item plane since each came up (item copies and
   *  tree messages), counted up to `enough`. Few from all links together: every link is a censor, or the node's
   *  only honest links lead to others cut off like it (an island that hears only its own few items), or the network
   *  is quiet. */
  messagesFrom(except: (peer: string) => boolean, enough = Infinity): number {
    let n = 0;
    for (const [peer, r] of this.links) {
      if (except(peer)) continue;
      n += r.messages;
      if (n >= enough) break;
    }
    return n;
  }

  /** Whether `peer`'s link has said nothing since it came up (true for a peer without a record). */
  isMute(peer: string): boolean {
    return (this.links.get(peer)?.messages ?? 0) === 0;
  }

  /** What a link has given so far (tests, /status). */
  recordOf(peer: string): LinkRecordView | undefined {
    const r = this.links.get(peer);
    if (r === undefined) return undefined;
    const { mark, ...rest } = r;
    return { ...rest, silentFor: this.newItems - mark };
  }

  stats(): LinkUsefulnessStats {
    return { tracked: this.links.size, judgedUseless: this.judgedUseless };
  }
}

/**
 * Isolation probes: a node whose links are quiet (together they said next to nothing on the item plane since they
 * came up, LinkUsefulness.messagesFrom) cannot judge any of them, since no item reaches it to compare with; if its
 * links are all censors, or lead only to honest nodes as cut off as itself, it stays so until an honest node happens
 * to dial it. So, once its links have been quiet for `delayMs`, it dials up to `perRound` more addresses (probes,
 * beyond its degree; membership picks them) every `intervalMs`. A probe link that said nothing within `probeAgeMs`
 * of coming up is closed again, without any penalty (a quiet network looks the same: there is no evidence against
 * it), and its address rests (membership); one that said anything (an honest node in a live network replays its
 * cache to a new link at once) while the node's own links stayed quiet stays as an ordinary link, and the node
 * judges its old links with the items it now receives. One that said something when the node's own links did too
 * (a quiet network that came alive) is closed as unneeded once the broadcast tree no longer uses it, so a quiet honest
 * network keeps its links and degree and mostly pays only the probes' handshakes:
 * the interval doubles after every `backoffAfter` failed probes in a row, up to `maxIntervalMs`, and starts over
 * once a link says anything.
 *
 * Pure state machine: time comes in as `now`, the dials and closes go out as actions. Must never: close a link that
 * is not one of its probes, close a probe that talked while the node's own links stayed quiet, have more than
 * `perRound` probes dialed or linked at once, or probe while the links are not quiet.
 */
export interface IsolationProbeParams {
  /** The links quiet this long before the first probe. */
  delayMs: number;
  /** Between probe rounds (at first; see backoffAfter). */
  intervalMs: number;
  /** Probes dialed per round, and dialed or linked at once at most. */
  perRound: number;
  /** A probe link that said nothing this long after it came up is closed. */
  probeAgeMs: number;
  /** Failed probes in a row after which the interval doubles (and again after as many more). */
  backoffAfter: number;
  /** The interval at most. */
  maxIntervalMs: number;
}

export interface ProbeActions {
  /** Probes to dial now. */
  dial: number;
  /** Probe links to close (mute for probeAgeMs, or not needed). */
  close: string[];
  /** Probes kept as ordinary links (the node's way in): worth asking for addresses. */
  kept: string[];
}

export interface IsolationProbeStats {
  /** Probes dialed, closed mute, kept (said something while the node's own links did not), and closed unneeded
   *  (they said something, but so did the node's own links) since the start. */
  dialed: number;
  closed: number;
  kept: number;
  unneeded: number;
  /** Failed probes since the links were last not quiet (drives the backoff). */
  failures: number;
}

export class IsolationProbes {
  private isolatedSince: number | undefined = undefined;
  private nextRoundAt = -Infinity;
  private failures = 0;
  /** Probe dials not yet answered. */
  private pending = 0;
  /** Probe links: peer → when it came up. At most perRound. */
  private readonly probes = new Map<string, number>();
  private counters = { dialed: 0, closed: 0, kept: 0, unneeded: 0 };

  constructor(private readonly p: IsolationProbeParams) {
    if (!(Number.isInteger(p.perRound) && p.perRound >= 1)) throw new RangeError(`isolation probes: perRound must be an integer ≥ 1, got ${p.perRound}`);
    if (!(p.intervalMs > 0 && p.maxIntervalMs >= p.intervalMs)) throw new RangeError("isolation probes: need 0 < intervalMs ≤ maxIntervalMs");
    if (!(p.backoffAfter >= 1)) throw new RangeError(`isolation probes: backoffAfter must be ≥ 1, got ${p.backoffAfter}`);
  }

  /**
   * Once per judgement: `quiet` (the links, probes included, said next to nothing since they came up), `ownQuiet`
   * (the same of the links that are not probes), `isMute(peer)` and `inTree(peer)` (a broadcast-tree edge) for the
   * probes. Probes up probeAgeMs are closed if mute, closed as unneeded if the node's own links are not quiet (once
   * they are no tree edge), else kept as ordinary links (the node's way in); then, while the links have been quiet
   * for delayMs and a round is due, as many dials as bring the probes in flight up to perRound.
   */
  tick(now: number, links: { quiet: boolean; ownQuiet: boolean }, isMute: (peer: string) => boolean, inTree: (peer: string) => boolean = () => false): ProbeActions {
    const { quiet, ownQuiet } = links;
    const close: string[] = [];
    const kept: string[] = [];
    for (const [peer, since] of this.probes) {
      if (now - since < this.p.probeAgeMs) continue;
      if (isMute(peer)) {
        this.probes.delete(peer);
        close.push(peer);
        this.counters.closed++;
        this.failures++;
      } else if (!ownQuiet) {
        // The node's own links talk too (the network was only quiet): not needed, and an extra link costs copies
        // for as long as it lasts; but closing a tree edge would cut the items on their way through it, so the
        // probe waits until the tree has pruned it.
        if (inTree(peer)) continue;
        this.probes.delete(peer);
        close.push(peer);
        this.counters.unneeded++;
      } else {
        this.probes.delete(peer);
        kept.push(peer);
        this.counters.kept++;
      }
    }
    if (!quiet) {
      this.isolatedSince = undefined;
      this.failures = 0;
      return { dial: 0, close, kept };
    }
    this.isolatedSince ??= now;
    let dial = 0;
    if (now - this.isolatedSince >= this.p.delayMs && now >= this.nextRoundAt) {
      dial = Math.max(0, this.p.perRound - this.pending - this.probes.size);
      if (dial > 0) this.nextRoundAt = now + this.intervalMs();
    }
    return { dial, close, kept };
  }

  /** `count` probe dials were started (membership may start fewer than asked: too few addresses due). */
  dialed(count: number): void {
    this.pending += count;
    this.counters.dialed += count;
  }

  /** A probe dial was answered: linked to `peer`, or failed (undefined). */
  answered(peer: string | undefined, now: number): void {
    this.pending = Math.max(0, this.pending - 1);
    if (peer !== undefined && this.probes.size < this.p.perRound) this.probes.set(peer, now);
  }

  linkDown(peer: string): void {
    this.probes.delete(peer);
  }

  /** The interval between rounds now: doubled for every backoffAfter failed probes in a row. */
  intervalMs(): number {
    return Math.min(this.p.maxIntervalMs, this.p.intervalMs * 2 ** Math.min(30, Math.floor(this.failures / this.p.backoffAfter)));
  }

  isProbe(peer: string): boolean {
    return this.probes.has(peer);
  }

  stats(): IsolationProbeStats {
    return { ...this.counters, failures: this.failures };
  }
}
