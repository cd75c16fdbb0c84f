/**
 * Protocol parameters of the dissemination layer, each with its meaning and default, in one place.
 * Config (node.yaml) overrides `degree` and `cache_size`; the rest are operator-invisible defaults that tests shrink.
 * Only numbers and tiny pure functions here: nothing that holds state or does I/O.
 */

// ---- Configuration (node.yaml / VoidPhone INI; README "Configuration"; degree and cache_size are under Items) -------

/** `gossip.api_address`: where local modules connect. */
export const DEFAULT_API_ADDRESS = "127.0.0.1:7001";

/** `gossip.p2p_address`: where peers connect. */
export const DEFAULT_P2P_ADDRESS = "127.0.0.1:6001";

/** `gossip.pow_difficulty`: leading zero bits of BLAKE3 demanded from peers that connect to us (docs/pow.md). */
export const DEFAULT_POW_DIFFICULTY = 22;

/** `gossip.max_pow_difficulty`: the most work we do to dial others; a peer demanding more is not dialed. */
export const DEFAULT_MAX_POW_DIFFICULTY = 24;

/** `gossip.identity_pow_difficulty`: identity cost (off at 0). Above 0 this node solves once, and stores beside its
 *  hostkey, a proof of work of that many bits for its own identity, and refuses peers whose identity has less
 *  (src/p2p/identity-pow.ts): a fresh ID after a ban then costs 2^k hashes. Every node of a network must agree. */
export const DEFAULT_IDENTITY_POW_DIFFICULTY = 0;

/** Proof-of-work worker threads idle this long end (src/p2p/pow-pool.ts); the next solve starts them again (tens of
 *  ms, beside a solve's ~0.12 s at 22 bits). A node whose links are up needs none, and each idle thread's engine still
 *  collects garbage in step with the main thread's (every collection here showed in all three heaps), on the core
 *  that the event loop needs, and holds memory. */
export const POW_WORKER_IDLE_MS = 30_000;

// ---- Items -----------------------------------------------------------------------------------------------------

/** Bytes in an item ID: BLAKE3(dataType u16 BE ‖ data), default 32-byte output. */
export const ITEM_ID_BYTES = 32;

/** Largest data type: the VoidPhone API carries it as a u16. */
export const MAX_DATA_TYPE = 0xffff;

/** `degree`: peers each item is pushed to, and links membership keeps (VoidPhone default 30). */
export const DEFAULT_DEGREE = 30;

/** `cache_size`: validated items remembered (with their remaining TTL) for newly linked peers (VoidPhone default 50). */
export const DEFAULT_CACHE_SIZE = 50;

/** Most data bytes in one item: a VoidPhone API message is at most 65535 bytes, 8 of them header and type fields.
 *  A peer's Payload with more is a protocol violation (no honest module could have announced it). */
export const MAX_ITEM_DATA_BYTES = 65_527;

// ---- Cache replay to a node whose modules are not subscribed yet ----------------------------------------------------

/** A replayed item of a type no local module subscribed to yet is held this long (a restarted node's modules connect
 *  a moment after its links come up) and validated as soon as a subscriber appears; then dropped as "not subscribed". */
export const REPLAY_GRACE_MS = 5_000;

/** Replayed items held at once (a peer's cache replay is at most its cache_size; a few peers link at start). */
export const REPLAY_HOLD_MAX_ITEMS = 256;

/** How often held items are checked for a new subscriber. */
export const REPLAY_HOLD_CHECK_MS = 100;

// ---- Broadcast trees (Plumtree, src/gossip/plumtree.ts; timers chosen in the simulator: docs/simulation.md) -------

/** `gossip.dissemination`: "plumtree" (full copies on tree links, IDs on the others) or "flood" (full copies to up
 *  to `degree` peers). */
export const DEFAULT_DISSEMINATION = "plumtree" as const;

/** How long an announced ID may stay missing before we GRAFT its announcer (Plumtree's first timer). */
export const GRAFT_TIMEOUT_MS = 150;

/** After a GRAFT, how long before asking the next announcer (Plumtree's second timer: about one round trip). */
export const GRAFT_RETRY_MS = 100;

/** GRAFTs a node sends per second at most, in bursts of up to GRAFT_BURST; past it an awaited ID waits another
 *  GRAFT_RETRY_MS (for its eager copy, or a token). A tree in shape needs few (10,000 nodes: 0.06 per delivery);
 *  under load the tree's copies come late, and GRAFTing each would add a copy and more load (30 nodes in one
 *  process at 300 items/s: 1.04 GRAFTs and 2.2 copies per delivery). */
export const GRAFT_RATE_PER_S = 50;
export const GRAFT_BURST = 100;

/** Rounds of GRAFTs over all of an ID's announcers before it is given up (an answer may be dropped at a full send
 *  buffer under load; the next round asks again). */
export const GRAFT_ROUNDS = 3;

/** Announcements for one peer are collected this long and sent as one message. With rooted trees announcements
 *  are for repair, and one frame per ID cost more CPU than the item itself (30 nodes in one process, 100 items/s:
 *  1.75 IHAVE frames per delivery at 10 ms); the simulator's deliveries are as fast at 50 or 100 ms (1,000 nodes:
 *  last delivery p99 454, 456, 447 ms at 10, 50, 100). */
export const ANNOUNCE_DELAY_MS = 50;

/** Lazy peers told about each item at most (all of them when fewer): a few suffice to repair the tree (the digests,
 *  TREE_DIGEST_*, catch what none announced), and each announcement costs bytes on every link and, arriving early,
 *  invites a GRAFT that adds a copy. 3 since rooted trees: at degree 30 announcements to 4 of ~34 lazy links rarely
 *  shared a frame, and 64-byte items cost 5.14 bytes per delivered byte; 1,000 nodes at degree 6 deliver the same
 *  with 3 as with 4, also after a crash and under churn (docs/simulation.md "Rooted trees"). */
export const LAZY_FANOUT = 3;

/** Hops an announcement must be closer to the origin than the eager copy for the two links to swap roles. */
export const TREE_OPTIMISATION_HOPS = 8;

/** Duplicates in a row (no first copy in between) after which an eager link turns lazy (PRUNE). One, as in the
 *  paper, lets concurrent items from different origins cut the tree apart (docs/simulation.md, broadcast trees). */
export const TREE_PRUNE_AFTER_DUPLICATES = 3;

/** Items whose first copies arrive this close together are in flight together (then a duplicate alone is no proof
 *  that its link is redundant); an item alone prunes on its first duplicate, as in the paper. About the time an item
 *  takes to cross a large network. */
export const TREE_CONCURRENCY_WINDOW_MS = 500;

/** A node that got an item within this many hops of its origin (the origin itself: 0) pushes it on every link, not
 *  only the tree's: the one tree serves every origin, and this puts each item into it at many places at once. */
export const TREE_EAGER_HOPS = 0;

/** Rooted trees (src/gossip/tree-root.ts) with peers that speak them: each type's tree links are chosen towards the
 *  node of the smallest key (one tree for every origin, so concurrent items do not prune it apart); false: the
 *  paper's prune-on-duplicate on every link. */
export const TREE_ROOTED = true;

/** Rooted trees: distances to the root beyond this are not believed. A root that left is forgotten after the count
 *  to it (each step a round trip between two neighbours, and an advert per link); above the depth of the trees
 *  simulated (~7 at 10,000 nodes, degree 6). A node farther away keeps a tree of its own and is served by repair. */
export const TREE_ROOT_MAX_DISTANCE = 16;

/** Rooted trees: the one-way latency taken for a link whose round trip the handshake did not measure (ms); parents
 *  are chosen by the sum of their links' latencies to the root, then by links. */
export const TREE_ROOT_DEFAULT_LINK_MS = 50;

/** Rooted trees: what each link adds to a path besides its latency (ms): a node's own work per item, and a margin
 *  so that round trips that differ by noise alone (one host: 1–5 ms, all of it crypto and scheduling) do not make
 *  the tree deeper than breadth-first. */
export const TREE_ROOT_HOP_MS = 10;

/** Rooted trees: a node's changes of place within this long go out as one advert per link (a root that leaves makes
 *  distances count up in many small steps). */
export const TREE_ROOT_ADVERT_DELAY_MS = 20;

/** Rooted trees: adverts acted on per peer within TREE_ROOT_ADVERT_WINDOW_MS (all types together). An honest
 *  neighbour's place changes a few times as a tree forms and up to ~TREE_ROOT_MAX_DISTANCE times when its root
 *  leaves; each advert past the budget is ignored, and every TREE_ROOT_ADVERT_BUDGET of them a penalty unit. */
export const TREE_ROOT_ADVERT_BUDGET = 64;
export const TREE_ROOT_ADVERT_WINDOW_MS = 10_000;

/** Announced IDs awaited at once; announcers remembered per ID. */
export const TREE_MAX_PENDING = 4_096;
export const TREE_MAX_ANNOUNCERS = 8;

/** Data types with a broadcast tree of their own at once (least recently used out: its links turn eager again). */
export const TREE_MAX_TYPES = 256;

/** IDs in one announcement message, and announcements queued for one peer at most. */
export const TREE_MAX_ENTRIES_PER_MESSAGE = 256;
export const TREE_MAX_QUEUED_PER_PEER = 1_024;

/** Recent items kept to answer GRAFTs: at most this many, and this many data bytes. */
export const TREE_RECENT_MAX_ITEMS = 4_096;
export const TREE_RECENT_MAX_BYTES = 16 << 20;

/** A peer we GRAFTed must send the item or say "don't have" within this long (many round trips: a slow honest link
 *  answers in time), else the GRAFT is unserved (src/gossip/tree-promises.ts). */
export const TREE_SERVE_DEADLINE_MS = 5_000;

/** From this many unserved GRAFTs to one peer in a row on (none answered between), each costs it a penalty unit: a
 *  lost answer or two is bad luck, an announcer that never serves is lying (an IHAVE flood). */
export const TREE_UNSERVED_RUN = 3;

/** IDs a peer may GRAFT from us beyond GRAFT_ROUNDS × the IDs we announced to it before each such excess costs it a
 *  penalty unit (a GRAFT flood: honest peers ask only for what was announced to them). */
export const TREE_GRAFT_ALLOWANCE = 32;

/** GRAFTs awaiting an answer kept at most (the oldest goes unjudged). */
export const TREE_MAX_PROMISES = 4 * TREE_MAX_PENDING;

/** While a node forwarded items lately, it announces their IDs (a digest) to one random tree neighbour this often:
 *  announcements go to LAZY_FANOUT random lazy links only, so a node whose eager path broke for an item is otherwise
 *  told of it by nobody with some small probability (about 1% at 35 links), and the item is lost to it (measured: 1–5
 *  of 59,940 deliveries lost in 3 of 4 seeds at 1,000 nodes, 1–2 of 89,001 on a 100-node testnet; none with digests).
 *  Every 2 s rather than 1: with rooted trees the digests were a sixth of the bytes of 64-byte items (1,000 nodes:
 *  amplification 5.19 at 1 s, 4.77 at 2 s, same delivery; under churn the last delivery p99 945 and 865 ms). */
export const TREE_DIGEST_INTERVAL_MS = 2_000;
/** A digest names the items forwarded this recently, but not those forwarded less than TREE_DIGEST_MIN_AGE_MS ago
 *  (still crossing the network: a digest of them would only invite GRAFTs that race the tree's own copies) … */
export const TREE_DIGEST_WINDOW_MS = 5_000;
export const TREE_DIGEST_MIN_AGE_MS = 1_000;
/** … at most this many (the newest). */
export const TREE_DIGEST_MAX_IDS = 64;
/** The hop count a digest's entries carry: the most the wire allows (src/p2p/wire.ts MAX_HOPS), so that the hop
 *  optimisation never acts on one: a digest only repairs what is missing, it arrives seconds late at a random
 *  neighbour, and the tree's shape is left to the announcements. */
export const TREE_DIGEST_HOPS = 255;

// ---- Seen cache (duplicate suppression) --------------------------------------------------------------------------

/** IDs remembered at most; past it the oldest is forgotten first. 100 000 × ~150 B ≈ 15 MB worst case. */
export const SEEN_CACHE_MAX_ENTRIES = 100_000;

/** How long an ID is remembered. An item still circulating after this is accepted again (and deduplicated by the
 *  item cache while it is cached there). */
export const SEEN_CACHE_MAX_AGE_MS = 2 * 60_000;

// ---- Peer score (strikes, the score per peer, temporary bans) ----------------------------------------------------

/** Invalid items (or ID forgeries) from one peer within INVALID_WINDOW_MS that get it banned. Generous because an
 *  honest peer may run a module version whose verdicts differ from ours now and then. */
export const INVALID_THRESHOLD = 10;

/** The window in which INVALID_THRESHOLD strikes must fall; it starts at the peer's first strike. */
export const INVALID_WINDOW_MS = 60_000;

/** How long a banned peer is neither dialed nor accepted. */
export const BAN_DURATION_MS = 10 * 60_000;

/** Peers whose strikes are tracked at once (oldest record dropped first) and bans remembered at once. Peer IDs cost a
 *  proof of work per link, but memory must stay bounded anyway. */
export const PEER_SCORE_MAX_TRACKED = 10_000;

// The score per peer (src/gossip/score-table.ts has the formula; docs/decisions.md "Peer scoring" the reasons). Every
// counter below decays: it halves every SCORE_HALF_LIFE_MS of the core's clock.

/** Half-life of every score counter: evidence older than a few of these hardly counts any more. */
export const SCORE_HALF_LIFE_MS = 2 * 60_000;

/** Credit per first copy of an item that local modules found valid … */
export const SCORE_FIRST_DELIVERY_WEIGHT = 1;
/** … counted up to this many (decayed), so a peer cannot bank credit for a later attack (covert flash). */
export const SCORE_FIRST_DELIVERY_CAP = 20;

/** Per protocol violation (forged item ID, oversized item); the strikes above ban on their own as well. */
export const SCORE_VIOLATION_WEIGHT = -4;

/** Behavioural penalties (an announced item not served on GRAFT, GRAFT or announcement floods, an eager link that did
 *  not deliver): this many (decayed) are tolerated, since honest peers lose a few to evicted caches and races … */
export const SCORE_PENALTY_TOLERANCE = 6;
/** … and each one beyond costs this times the excess squared (sustained misbehaviour grows fast, slips do not). */
export const SCORE_PENALTY_WEIGHT = -1;

/** Module rejections are charged only beyond the node's own baseline b for that data type (the share of its items
 *  from all other peers that local modules rejected), plus this share of what is left: a peer is charged for the
 *  rejections past b + margin × (1 − b) of the items it delivered … */
export const SCORE_REJECTION_MARGIN = 0.3;
/** … minus this many excess rejections forgiven (small samples) … */
export const SCORE_REJECTION_ALLOWANCE = 10;
/** … each remaining one costing this. */
export const SCORE_REJECTION_WEIGHT = -2;
/** Items of a type (decayed) validated from other reference peers before a peer is judged on that type at all: a
 *  peer that is the only source of a type has no baseline to be compared with and is never charged for it. */
export const SCORE_REJECTION_MIN_REFERENCE = 10;
/** A peer counts in a type's baseline (is a reference peer) once it delivered this many valid items of that type
 *  (decayed): garbage senders, however many, never shape the baseline they are judged by. */
export const SCORE_REJECTION_MIN_VALID = 1;
/** A type's baseline is recomputed from the peer records after this long, or sooner once the items validated since
 *  reach a quarter of its reference (decayed in between). */
export const SCORE_BASELINE_REFRESH_MS = 1_000;

/** Linked peers from one IPv4 address or IPv6 /64 tolerated (loopback exempt) … */
export const SCORE_COLOCATION_THRESHOLD = 2;
/** … each one beyond costs every one of them this times the excess squared … */
export const SCORE_COLOCATION_WEIGHT = -1;
/** … at most this much in all: colocation alone lowers a score (below SCORE_GOSSIP_THRESHOLD) but never bans. */
export const SCORE_COLOCATION_MAX_PENALTY = 20;

/** Below this score a peer is neither sent our announcements nor are its announcements grafted (tree code asks
 *  PeerScore.acceptsGossip) … */
export const SCORE_GOSSIP_THRESHOLD = -10;
/** … and below this it is disconnected and banned for BAN_DURATION_MS (checked whenever evidence against it arrives). */
export const SCORE_BAN_THRESHOLD = -50;

/** Data types with a node-wide rejection baseline at once, and per peer (least recently seen type forgotten first). */
export const SCORE_MAX_TYPES = 256;
export const SCORE_MAX_TYPES_PER_PEER = 16;

// Link usefulness (src/gossip/link-usefulness.ts, judged by the core): a link that stays silent on the item plane
// (no item copy, no broadcast-tree message) while items flow through the node's other links is dropped as
// `useless-link`, and membership refills the slot. Only with scoring on and membership running.

/** How often the core judges its links. */
export const USEFULNESS_JUDGE_INTERVAL_MS = 1_000;
/** New items the node must receive through other links while a link that never said anything on the item plane
 *  (mute: no item copy, no tree message since it came up) stays silent before it is useless (a censor). An honest
 *  new link is eager both ways: it sends copies, or it is our tree child (exempt), or it PRUNEs us (a message). */
export const USEFULNESS_MIN_ITEMS = 12;
/** … and for a link that did say something before and does not speak trees (one that does is a tree node and is
 *  not judged once it talked: a dead end, subscribed to none of our types, relays nothing). A flooding peer pushes
 *  each item to `degree` of its links at random, so it can fall silent towards one for a while (towards one of 3 ×
 *  degree links for 40 items in a row with chance (2/3)⁴⁰ ≈ 1e-7); covert-flash relays, silent from their flash on,
 *  are dropped after this many. */
export const USEFULNESS_MIN_ITEMS_AFTER_TALK = 40;
/** A link is judged only once it has been up this long (a new link first gets the cache replay and a tree role). */
export const USEFULNESS_MIN_LINK_AGE_MS = 2_000;
/** First copies from a peer within this long of the last item of its cache replay (a new link's) are old items:
 *  they do not make the other links look silent. */
export const USEFULNESS_REPLAY_WINDOW_MS = 1_000;
/** … and so are first copies from one peer closer together than this (they count as one): a burst is old items that
 *  a neighbour which just bridged to another part of the network forwards, which the other links lacked too. */
export const USEFULNESS_BURST_GAP_MS = 20;
/** Links dropped as useless per judgement at most (each one's slot is refilled by membership). */
export const USEFULNESS_MAX_DROPS_PER_JUDGEMENT = 16;
/** Isolation probes (src/gossip/link-usefulness.ts, IsolationProbes): a node whose links together said fewer than
 *  this many things on the item plane since they came up (item copies, tree messages) is cut off: they are censors,
 *  or honest nodes as cut off as itself (an island that hears only its own few items), or the network is quiet. An
 *  honest link in a live network says that much within a second or two (its cache replay, then every item) … */
export const USEFULNESS_QUIET_MESSAGES = 12;
/** … and after its links have been so quiet this long, it dials a few more addresses (longer than the quiet start of
 *  the simulator's steady, failure and partition runs before their first items, 5–15 s; a live network that an
 *  attack cut a node off from pays this once per such node) … */
export const USEFULNESS_PROBE_DELAY_MS = 20_000;
/** … this often at first (each round tops the probes in flight up to USEFULNESS_PROBES_PER_ROUND) … */
export const USEFULNESS_PROBE_INTERVAL_MS = 2_000;
/** … this many at once: each reaches an honest node that receives items with chance about that share of the
 *  addresses it knows (0.065 measured at ten censors per honest node, 300 honest), so a round of 6 finds one with
 *  chance ≈ 0.33 … */
export const USEFULNESS_PROBES_PER_ROUND = 6;
/** … a probe link that said nothing this long after it came up (an honest peer in a live network replays its cache
 *  at once) is closed, with no penalty (a quiet network looks the same), and its address rests … */
export const USEFULNESS_PROBE_AGE_MS = 1_000;
/** … for this long (so that the next probes go to other addresses) … */
export const USEFULNESS_PROBE_REST_MS = 10 * 60_000;
/** … and after this many failed probes in a row (5 rounds) the interval doubles (again after as many more), up to … */
export const USEFULNESS_PROBE_BACKOFF_AFTER = 30;
/** … this: a quiet honest network pays each node about 260 probe handshakes in its first hour of quiet and 72 an
 *  hour after that (at 22 bits, ~0.12 s of proof of work each). It starts over once the links are no longer quiet. */
export const USEFULNESS_PROBE_MAX_INTERVAL_MS = 5 * 60_000;
/** Behaviour-penalty units charged for a mute link (it never said anything) dropped as useless: one drop stays
 *  within SCORE_PENALTY_TOLERANCE (6), a second within the half-life takes the score below SCORE_BAN_THRESHOLD
 *  ((14 − 6)² = 64), so the peer is neither redialed nor accepted for BAN_DURATION_MS. */
export const SCORE_USELESS_LINK_PENALTY = 7;

// ---- Membership ----------------------------------------------------------------------------------------------------

/** Period of the maintenance tick: redial, ask RPS, refresh candidates. */
export const MEMBERSHIP_TICK_MS = 1_000;

/** First redial delay after a failed dial; doubles with each consecutive failure … */
export const DIAL_BACKOFF_INITIAL_MS = 500;
/** … up to this. The count starts over once a dialed link has stayed up STABLE_LINK_MS (a dial that succeeds and is
 *  dropped at once keeps backing off). */
export const DIAL_BACKOFF_MAX_MS = 30_000;

/** A link that dies sooner than this after the dial succeeded counts as a failed attempt (a peer that accepts and
 *  drops us at once must not be redialed every tick). */
export const STABLE_LINK_MS = 5_000;

/** Candidate addresses remembered. When full, the oldest hearsay goes first, then the oldest once-linked ("proven")
 *  address; bootstrappers and addresses pinned to a key are never evicted (src/gossip/candidates.ts). */
export const MAX_CANDIDATES = 1_000;

/** A learned (non-bootstrap) candidate is forgotten after this many consecutive failures. */
export const CANDIDATE_MAX_FAILURES = 8;

/** Entries taken from one `peers` message, and the most we send in one answer. Bounds how much of the candidate
 *  table a single peer can fill with one message. */
export const MAX_PEERS_PER_EXCHANGE = 64;

/** Addresses in one peer-exchange answer (and in the referrals to a refused joiner): more than `degree`, so that a
 *  joiner that hears only from its bootstrapper learns enough to survive the bootstrapper's death. */
export function peerExchangeSize(degree: number): number {
  return Math.min(MAX_PEERS_PER_EXCHANGE, Math.max(2 * degree, 16));
}

/** While short of links, ask one linked peer for more addresses at most this often. */
export const PEER_EXCHANGE_INTERVAL_MS = 5_000;

/** A node at `degree` links swaps one link for an unlinked known address this often, so that saturated groups
 *  (for example the two sides of a healed partition) keep mixing instead of staying apart. */
export const LINK_ROTATION_INTERVAL_MS = 60_000;

// ---- Membership views (HyParView, src/gossip/hyparview.ts; DSN 2007, §4 and §5) ------------------------------------

/** `gossip.overlay`: which membership keeps the links, "hyparview" (src/gossip/hyparview.ts) or "classic"
 *  (src/gossip/membership.ts: a candidate table fed by peer exchange). */
export const DEFAULT_OVERLAY = "classic" as const;

/** Passive view size: addresses kept besides the links. The paper uses log(n)+c active and k(log(n)+c) passive (30
 *  for 10,000 nodes); at least 100 here, since after 95% of the nodes fail at once a survivor's entries are live with
 *  5% chance each: 100 leave about 5 live (30 left under 2, and a fifth of the survivors in islands; measured in
 *  docs/simulation.md, "Membership views"); six times the active view above that. */
export function passiveViewSize(degree: number): number {
  return Math.max(100, 6 * degree);
}

/** Active random walk length (ARWL): hops a FORWARD_JOIN and a SHUFFLE travel (paper: 6). */
export const VIEW_ACTIVE_WALK = 6;

/** Passive random walk length (PRWL): the hop at which a FORWARD_JOIN's newcomer enters the passive view (paper: 3). */
export const VIEW_PASSIVE_WALK = 3;

/** Active and passive entries one SHUFFLE carries (paper: ka = 3, kp = 4), plus the origin itself. */
export const VIEW_SHUFFLE_ACTIVE = 3;
export const VIEW_SHUFFLE_PASSIVE = 4;

/** How often a node starts a shuffle (first one at a random point within the first interval). */
export const VIEW_SHUFFLE_INTERVAL_MS = 10_000;

/** A node short of links (but not without any) asks neighbours this often at most to start a FORWARD_JOIN walk on
 *  its behalf (a NEIGHBOR on a link already in the view): the walk ends at the first node past its first hop that has
 *  room, so two nodes short of links find each other without a proof of work per try (src/gossip/view-refill.ts). */
export const VIEW_REFILL_ASK_MS = 3_000;
/** Neighbours asked per missing link in one round (each walk that finds nobody with room costs one refused dial). */
export const VIEW_REFILL_WALKS = 3;

/** A low-priority rotation link (dialed by a full node) is kept, and another link dropped for it, once it has stayed
 *  up this long without the target refusing it (a refusal, DISCONNECT, comes within a round trip). */
export const VIEW_ROTATION_SETTLE_MS = 2_000;

/** An inbound link that speaks views but says neither JOIN nor NEIGHBOR within this is a low-priority neighbour. */
export const VIEW_NEIGHBOR_GRACE_MS = 2_000;

/** Shuffle walks relayed (and own shuffles awaited) at once, and how long a relay remembers the way back. */
export const VIEW_WALK_MEMORY = 1_024;
export const VIEW_WALK_MEMORY_MS = 10_000;

/** Inbound links are refused once there are INBOUND_CAP_FACTOR × degree of them. Outbound dials are not subject to
 *  that cap, which is how slots stay reserved for the neighbours this node picks itself. */
export const INBOUND_CAP_FACTOR = 2;

/** Outbound links kept even when inbound links alone reach `degree`, so that a node flooded with inbound links still
 *  has neighbours of its own choosing (eclipse resistance). */
export function minOutbound(degree: number): number {
  return Math.max(1, Math.ceil(degree / 3));
}

/** Outbound links to one IP at most. Loopback addresses are exempt: test and development nodes all share 127.0.0.1,
 *  whereas the cap defends against one remote host filling our slots. */
export function outboundPerIpCap(degree: number): number {
  return Math.max(2, Math.ceil(degree / 4));
}

/** RPS queries started in one tick while short of links (they run concurrently; each yields one candidate). */
export const RPS_QUERIES_PER_TICK = 3;

// ---- API (VoidPhone, local modules) --------------------------------------------------------------------------------
// Defaults of ApiServer's limits (src/api/server.ts, ApiLimits); NodeOptions.api overrides them (tests shrink them).

/** API connections served at once. At the cap a newcomer waits on probation until it sends a whole message, then
 *  takes the slot of the longest-idle connection that holds nothing (no subscription, nothing awaited or queued;
 *  those that never sent a whole message first): "idle-evicted". If nobody can give way, or it says nothing within
 *  API_PROBATION_MS, it is refused ("too-many-connections"). Idle connections cannot lock modules out. */
export const API_MAX_CONNECTIONS = 1024;

/** Newcomers on probation at once (past it the oldest of them is refused) … */
export const API_MAX_PROBATION = 256;
/** … and how long one has to send its first whole message. */
export const API_PROBATION_MS = 2_000;

/** Data types one API connection may subscribe to; a NOTIFY past it closes the connection ("too-many-subscriptions"). */
export const API_MAX_SUBSCRIPTIONS_PER_CONNECTION = 1024;

/** (connection, data type) subscriptions on the node, ~350 B each (~22 MiB at the bound, measured); a NOTIFY past it
 *  closes its connection ("subscription-table-full"). */
export const API_MAX_SUBSCRIPTIONS = 65_536;

/** A message whose first byte arrived must be complete within this, or its connection is closed ("partial-timeout").
 *  An idle connection between messages is never closed. */
export const API_PARTIAL_MESSAGE_TIMEOUT_MS = 10_000;

/** A connection whose output the module has not read passes this many bytes: it is closed ("slow-reader"), so a
 *  module that stops reading costs at most this much memory and nobody else waits for it. */
export const API_MAX_PENDING_OUTPUT_BYTES = 1024 * 1024;

/** NOTIFICATIONs awaiting a VALIDATION node-wide (items × subscribers; ≤ 65535, message IDs are 16 bits), each
 *  subscribed connection holding at most an equal share (1024 / subscribed connections), so a module that stops
 *  answering costs other modules' items nothing (docs/decisions.md, "Validation fairness"). An item from a peer
 *  without room for all its subscribers is dropped unvalidated ("dropped busy", not marked seen). */
export const API_MAX_OUTSTANDING_NOTIFICATIONS = 1024;

/** A peer link's unsent bytes above this stop the API reading local modules at their next ANNOUNCE … */
export const API_ANNOUNCE_HIGH_WATER_BYTES = 256 * 1024;
/** … until every such link is back at or below this. */
export const API_ANNOUNCE_LOW_WATER_BYTES = 64 * 1024;
/** A link above the high-water mark this long is a peer that does not keep up: it stops holding announcers back (its
 *  items are dropped at its 1 MiB bound) until it drains. A peer slower than ~192 KiB/s thus slows nobody. */
export const API_ANNOUNCE_STUCK_MS = 1_000;
/** While announcers wait, the link queues are checked this often. */
export const API_ANNOUNCE_POLL_MS = 2;

/** `validation_timeout_ms`: how long the subscribers have to answer a NOTIFICATION; no answer counts as not valid. */
export const VALIDATION_TIMEOUT_MS = 5_000;

/** Timed-out message IDs a connection may still answer (late, ignored) without that being a violation; past it the
 *  oldest is forgotten, and an answer to it closes the connection as "unknown-message-id". */
export const API_LATE_ANSWER_MEMORY = 1024;

/** After we end() a violating connection, how long its module gets to close its side before we drop the socket
 *  (it must not keep a slot under API_MAX_CONNECTIONS forever). */
export const API_CLOSE_LINGER_MS = 2_000;

/** How long one RPS QUERY may take (connect, query, RPS PEER) before it fails with "timeout". */
export const RPS_QUERY_TIMEOUT_MS = 2_000;

// ---- API client (the CLI tools, the testnet's modules, the tests: src/client/api-client.ts) -------------------------

/** How long connecting to a node's API may take before the client gives up ("connect-timeout"). */
export const API_CLIENT_CONNECT_TIMEOUT_MS = 3_000;

/** How long end() waits for the node to close its side after ours, once everything queued was sent. */
export const API_CLIENT_END_TIMEOUT_MS = 2_000;

// ---- Tools (`gossip subscribe --exec`: src/tools/exec-validator.ts) -------------------------------------------------

/** Validator commands running at once; further notifications wait for a free slot, in order. */
export const EXEC_CONCURRENCY = 4;

/** A notification's command must exit within this from the notification's arrival (waiting for a slot included), or
 *  it is killed and the item answered invalid. Below the node's default validation_timeout_ms (5 s), so the answer
 *  still counts there. */
export const EXEC_TIMEOUT_MS = 4_000;

// ---- Testnet (`gossip testnet`, bench net: src/testnet/) ------------------------------------------------------------

/** Others each testnet node dials at start (the gossipsub bench harness's shape). */
export const TESTNET_DIALS_PER_NODE = 4;

/** Output a testnet node's module may queue for its node before the module closes its connection. */
export const TESTNET_MODULE_SEND_LIMIT_BYTES = 64 << 20;

/** Retries of a refused testnet dial (a responder admits only a few pending handshakes per IP) … */
export const TESTNET_DIAL_RETRIES = 5;
/** … the first after this long, doubling each time. */
export const TESTNET_DIAL_RETRY_MS = 20;

/** How long the testnet waits for every node's module to be subscribed before it gives up. */
export const TESTNET_SUBSCRIBE_TIMEOUT_MS = 10_000;

/** `gossip testnet` without flags: nodes, first P2P port (API ports start 1000 higher), degree, probe item size. */
export const TESTNET_NODES = 10;
export const TESTNET_BASE_PORT = 6001;
export const TESTNET_DEGREE = 6;
export const TESTNET_PROBE_BYTES = 64;

/** Proof-of-work difficulty inside a testnet: cheap handshakes, every node on one machine. */
export const TESTNET_POW_DIFFICULTY = 8;

/** `gossip testnet`: after the last announcement, the total line waits at most this long for the probes in flight. */
export const TESTNET_DRAIN_MS = 2_000;

/** `gossip testnet --processes`: how long every node process has to open its API (N processes start at once on a
 *  shared machine). */
export const TESTNET_PROCESS_START_TIMEOUT_MS = 60_000;

// ---- Peer store (src/peer-store.ts) --------------------------------------------------------------------------------

/** Peers kept in the store beside the hostkey: the most recently seen. */
export const PEER_STORE_MAX_PEERS = 128;

/** The store is written at most this often (and at shutdown). */
export const PEER_STORE_SAVE_DELAY_MS = 1_000;

// ---- CLI ---------------------------------------------------------------------------------------------------------

/** After the signal, `gossip` exits by force past this, so a stuck socket cannot keep it alive (README: within 2 s) … */
export const NODE_SHUTDOWN_BOUND_MS = 1_800;
/** … and `gossip testnet`, which stops N nodes and the PoW workers, past this. */
export const TESTNET_SHUTDOWN_BOUND_MS = 3_000;

// ---- Transport (P2P handshakes and links) ------------------------------------------------------------------------

/** A connection must finish its handshake, proof of work included, within this ("handshake-timeout"). */
export const HANDSHAKE_TIMEOUT_MS = 5_000;

/** Handshakes in progress at once (dials count too). An inbound connection past it takes the slot of the oldest
 *  handshake still without a proof of work from the address holding the most, if that address holds two more than the
 *  newcomer's would ("handshake-evicted": src/p2p/pending-table.ts); otherwise it is refused ("too-many-pending"). */
export const MAX_PENDING_HANDSHAKES = 64;

/** Inbound handshakes in progress from one IP at once; past it the connection is refused ("too-many-pending"). */
export const MAX_PENDING_HANDSHAKES_PER_IP = 4;

/** Inbound links from one IP at most ("too-many-from-ip"), so many IDs from one host cannot take every inbound slot.
 *  Loopback is exempt (local nodes share it) unless the transport's `limitLoopback` is set. */
export const MAX_INBOUND_LINKS_PER_IP = 8;

/** Bytes that may wait unsent on one connection: droppable items past it are dropped, anything else closes the link
 *  ("send-buffer-full"). What a peer that stops reading can cost us. */
export const LINK_SEND_BUFFER_BYTES = 1 << 20;

/** A closed link's last frames still queued (its DISCONNECT and LinkError behind a backlog) get this long to reach a
 *  slow peer before the stream ends without them. */
export const LINK_CLOSE_LINGER_MS = 1_000;

/** A link sends a Ping this often; the Pong, like any frame, shows the peer is alive. */
export const LINK_PING_INTERVAL_MS = 15_000;

/** No frame received for this long (three pings unanswered): the peer is gone ("idle-timeout"). */
export const LINK_IDLE_TIMEOUT_MS = 45_000;

/** Frames per direction under one key; then both ends REKEY at the same frame without talking. */
export const REKEY_INTERVAL_FRAMES = 1 << 16;

/** Largest frame body ("frame-too-large" past it): an item's 65527 data bytes plus protobuf and AEAD overhead fit. */
export const MAX_FRAME_BODY_BYTES = 128 * 1024;

/** Plaintext sealed into one Batch frame at most; a larger single message goes alone. */
export const BATCH_MAX_BYTES = 32 * 1024;

// ---- Simulator (`gossip simulate`, src/sim/) -----------------------------------------------------------------------
// The network model and scenario defaults of the discrete-event simulator; docs/simulation.md explains each choice.

/** Coordinate latency model: a node's one-way access (last-mile) delay lies in [MIN, MAX] ms, skewed towards MIN … */
export const SIM_ACCESS_DELAY_MIN_MS = 2;
export const SIM_ACCESS_DELAY_MAX_MS = 30;
/** … and crossing the whole unit square adds this many ms one way: RTTs spread over about 10–290 ms, median ~100. */
export const SIM_DISTANCE_MS = 66;

/** Extra delay per frame, uniform in [0, SIM_JITTER × one-way latency]. */
export const SIM_JITTER = 0.1;

/** A lost TCP segment arrives after at least this (Linux's minimum RTO) plus an RTT: loss delays, it never drops. */
export const SIM_RETRANSMIT_MIN_MS = 200;

/** BLAKE3 proof-of-work tries per second of a dialing node (one core, native speed measured by the project). */
export const SIM_HASH_RATE = 6.3e6;

/** SYN retransmissions of a dial to a host that does not answer (Linux tcp_syn_retries = 6), ms after the dial … */
export const SIM_SYN_RETRY_MS: readonly number[] = [1_000, 3_000, 7_000, 15_000, 31_000, 63_000];
/** … after which connect() fails (ETIMEDOUT). */
export const SIM_CONNECT_TIMEOUT_MS = 127_000;

/** How long a simulated local module takes to answer VALIDATION (a module on loopback). */
export const SIM_VALIDATION_DELAY_MS = 1;

/** Adversaries (`attack:BEHAVIOUR:RATIO`, src/sim/adversary.ts): the timed ones act every tick … */
export const SIM_ADVERSARY_TICK_MS = 100;
/** … `spam`: garbage items (true IDs) per tick to each honest link (10/s per link) … */
export const SIM_SPAM_PER_TICK = 1;
/** … `ihave-flood` / `graft-flood`: IDs announced or grafted per tick to each honest link that speaks trees … */
export const SIM_FLOOD_IDS_PER_TICK = 16;
/** … `eclipse`: how often an adversary without a link to the target dials it again … */
export const SIM_ECLIPSE_REDIAL_MS = 2_000;
/** … `cold-boot`: links it keeps, as a multiple of `degree` … */
export const SIM_COLD_BOOT_LINK_FACTOR = 4;
/** … `covert-flash`: distinct items it relays honestly before it stops forwarding. */
export const SIM_FLASH_AFTER_ITEMS = 20;

/** Random already-present nodes each joining node is given as bootstrappers. */
export const SIM_BOOTSTRAPPERS = 3;

/** Nodes joining per simulated second while the network forms … */
export const SIM_JOIN_RATE_PER_S = 1_000;
/** … or faster, so that every node has joined within this many seconds (100,000 nodes: 4,000 per second). */
export const SIM_JOIN_WINDOW_MAX_S = 25;

/** topology dials:K — membership starts this long after the testnet-like dials (which take a few RTTs and a PoW). */
export const SIM_DIALS_SETTLE_MS = 5_000;

/** Round trip assumed for a dial to an address no simulated node ever had (adversary hearsay). */
export const SIM_UNKNOWN_ADDRESS_RTT_MS = 100;

/** Warm-up after the last join: at least MIN seconds, then until SETTLED_SHARE of nodes hold `degree` links and no
 *  node is without one, at most MAX seconds. */
export const SIM_WARMUP_MIN_S = 5;
export const SIM_WARMUP_MAX_S = 120;
export const SIM_SETTLED_SHARE = 0.99;

/** After the last item is published, the run ends once every item reached every expected node, or after this. */
export const SIM_DRAIN_MAX_S = 30;
/** … or once no item has been delivered anywhere for this long (flood leaves a few nodes without an item for good). */
export const SIM_QUIET_S = 5;

/** Items, their size and their publication rate (per simulated second) unless the command line says otherwise. */
export const SIM_ITEMS = 100;
export const SIM_ITEM_BYTES = 1024;
export const SIM_RATE_PER_S = 10;

/** The data type every simulated module subscribes to. */
export const SIM_DATA_TYPE = 0x51a1;

/** failure:F — items are published from this many simulated seconds after the crash unless F:S says otherwise. */
export const SIM_FAILURE_PUBLISH_AFTER_S = 10;

/** newcomer:K — K newcomers (default) join this many seconds apart, each through one bootstrapper, and each is looked
 *  at (where its links go) this long after its join. */
export const SIM_NEWCOMERS = 20;
export const SIM_NEWCOMER_GAP_S = 2;
export const SIM_NEWCOMER_WAIT_S = 60;

/** How often the share of full active views is sampled after t0 (the `views` figures of the result). */
export const SIM_VIEW_SAMPLE_MS = 250;

/** churn:R — replacements start this long before the first item, so items travel through a network in churn. */
export const SIM_CHURN_LEAD_S = 60;

/** partition:F — the split lasts this long (past the 45 s idle timeout, so links across it die) … */
export const SIM_PARTITION_S = 60;
/** … and items after the heal are published from this long after it (the redial backoff reaches 30 s). */
export const SIM_HEAL_WAIT_S = 40;

/** Microtask turns the event loop yields after an event that settled a promise, so the core's continuations run at
 *  that event's virtual time (two suffice in Bun for validate → forward → finally; --strict-drain checks it). */
export const SIM_DRAIN_TURNS = 4;

/** Wall-clock interval of the progress line on stderr. */
export const SIM_PROGRESS_MS = 1_000;

/** The RAM `gossip simulate` tells JSC it has (BUN_JSC_forceRAMSize), so it collects before garbage piles up: this
 *  many bytes per simulated node, and at least MIN (src/cli/simulate.ts says why). */
export const SIM_RAM_HINT_BYTES_PER_NODE = 100_000;
export const SIM_RAM_HINT_MIN_BYTES = 1_000_000_000;
