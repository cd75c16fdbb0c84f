/**
 * The options and counters of the broadcast trees (src/gossip/plumtree.ts), apart so that the state machine's file
 * holds its rules. Every parameter's default is in src/defaults.ts ("Broadcast trees"), passed in by tree-spread.ts.
 */
import type { Clock, PeerId, TreeMessage } from "./ports.ts";
import type { TreePromiseParams } from "./tree-promises.ts";

export interface PlumtreeOptions {
  clock: Clock;
  /** [0, 1): picks which lazy peers get an announcement when there are more than `lazyFanout`. */
  random: () => number;
  send(peer: PeerId, message: TreeMessage): void;
  /** The broadcaster has (or is validating) the item with this prefix key: no GRAFT for it. */
  has(prefixKey: string): boolean;
  /** A peer was the first to tell us of an item we did not have (it is useful to us: the peer score counts it). */
  firstAnnouncement?(peer: PeerId): void;
  /** A peer left a run of our GRAFTs unanswered, or GRAFTed far more than we announced (how promises are judged:
   *  tree-promises.ts, with graftRounds below): the peer score charges it. */
  brokenPromise?(peer: PeerId, how: "unserved" | "graft-flood" | "advert-flood"): void;
  promises: Omit<TreePromiseParams, "graftRounds">;
  /** Some local module subscribed to the type: an announcement of another type is not worth a GRAFT. */
  wants(dataType: number): boolean;
  /** First wait for an announced ID's eager copy before asking its announcer (Plumtree's timer 1). */
  graftTimeoutMs: number;
  /** Wait after a GRAFT before asking the next announcer (timer 2: about one round trip). */
  graftRetryMs: number;
  /** Announcements queued for a peer are sent together after this (one message for many IDs). */
  announceDelayMs: number;
  /** Lazy peers announced to per item, at most (all of them when fewer). */
  lazyFanout: number;
  /** Hops an announcement must be closer to the origin than the eager copy for the links to swap roles. */
  optimisationThreshold: number;
  /** Duplicates in a row (no first copy between them) after which an eager link turns lazy, when other items were in
   *  flight around the same time (one otherwise: alone, an item's duplicates mark exactly the links it did not need). */
  pruneAfterDuplicates: number;
  /** Items whose first copies arrived this close together count as in flight together. */
  concurrencyWindowMs: number;
  /** Rounds of GRAFTs over all announcers before an awaited ID is given up. */
  graftRounds: number;
  /** GRAFTs sent per second at most (a token bucket of graftBurst): past it an awaited ID waits another retry. */
  graftRate: number;
  graftBurst: number;
  /** Rooted trees (tree-root.ts) with peers that speak them: this node's key and the largest distance believed;
   *  undefined: the paper's rules on every link. */
  rooted?: {
    self: string;
    maxDistance: number;
    defaultLinkMs: number;
    hopMs: number;
    advertDelayMs: number;
    advertBudget: number;
    advertWindowMs: number;
  };
  /** Announced IDs awaited at once (each with its announcers and timer); past it new ones are ignored. */
  maxPending: number;
  /** Announcers remembered per awaited ID. */
  maxAnnouncers: number;
  /** Data types with a tree of their own at once; past it the least recently used type's links all turn eager again
   *  (more copies for it, never a loss). */
  maxTypes: number;
  /** Entries in one announcement message; a longer queue is sent at once. */
  maxEntriesPerMessage: number;
  /** Announcements queued per peer at most (past it the oldest are dropped: they only help repair). */
  maxQueuedPerPeer: number;
}

export class PlumtreeStats {
  /** Links turned lazy after a duplicate (PRUNE sent). */
  prunesSent = 0;
  prunesReceived = 0;
  graftsSent = 0;
  graftsReceived = 0;
  /** GRAFTs we could serve (item held) and could not ("don't have" sent). */
  graftsAnswered = 0;
  graftsMissed = 0;
  /** Announcement messages sent and received, and the IDs they carried. */
  ihaveSent = 0;
  ihaveReceived = 0;
  idsAnnounced = 0;
  /** Awaited IDs given up after every announcer was asked graftRounds times. */
  graftsAbandoned = 0;
  /** GRAFTs put off because the GRAFT rate was reached. */
  graftsDeferred = 0;
  /** Role swaps by the optimisation (a faster lazy path became eager). */
  optimisations = 0;
  /** Announcements ignored: bounds reached, or a type nobody here wants. */
  ignored = 0;
  /** Full copies pushed on eager links, and on every link near an item's origin (TREE_EAGER_HOPS). */
  eagerPushes = 0;
  nearOriginPushes = 0;
  /** Digests of recently forwarded IDs sent to a random tree neighbour (tree-spread.ts). */
  digestsSent = 0;
  /** Verdicts passed to the peer score: a run of unserved GRAFTs, a GRAFT flood (its GRAFT then goes unanswered). */
  unservedVerdicts = 0;
  graftFloods = 0;
  /** Rooted trees (tree-root.ts): adverts sent and received, parent changes. */
  rootAdvertsSent = 0;
  rootAdvertsReceived = 0;
  parentChanges = 0;
  /** Peers charged for sending rooted-tree adverts past their budget. */
  advertFloods = 0;
}
