/**
 * Protocol parameters of the dissemination layer, each with its meaning and default, in one place.
 * Config (node.yaml) overrides `degree` and `cache_size`; the rest are operator-invisible defaults that tests shrink.
 * Only numbers and tiny pure functions here: nothing that holds state or does I/O.
 */

// ---- Items -----------------------------------------------------------------------------------------------------

/** Bytes in an item ID: BLAKE3(dataType u16 BE ‖ data), default 32-byte output. */
export const ITEM_ID_BYTES = 32;

/** Largest data type: the VoidPhone API carries it as a u16. */
export const MAX_DATA_TYPE = 0xffff;

/** `degree`: peers each item is pushed to, and links membership keeps (VoidPhone default 30). */
export const DEFAULT_DEGREE = 30;

/** `cache_size`: validated items remembered (with their remaining TTL) for newly linked peers (VoidPhone default 50). */
export const DEFAULT_CACHE_SIZE = 50;

// ---- Seen cache (duplicate suppression) --------------------------------------------------------------------------

/** IDs remembered at most; past it the oldest is forgotten first. 100 000 × ~150 B ≈ 15 MB worst case. */
export const SEEN_CACHE_MAX_ENTRIES = 100_000;

/** How long an ID is remembered. An item still circulating after this is accepted again (and deduplicated by the
 *  item cache while it is cached there). */
export const SEEN_CACHE_MAX_AGE_MS = 2 * 60_000;

// ---- Validation gate ---------------------------------------------------------------------------------------------

/** Items from peers awaiting local VALIDATION at once; past it new items are dropped (counted), never queued. */
export const MAX_OUTSTANDING_VALIDATIONS = 1024;

/** How long the API server waits for all subscribers' VALIDATIONs; a missing answer counts as "not valid".
 *  Enforced by the LocalModules implementation (the API server), listed here so there is one table of numbers. */
export const VALIDATION_TIMEOUT_MS = 5_000;

// ---- Peer score (misbehaviour → temporary ban) -------------------------------------------------------------------

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

// ---- Membership ----------------------------------------------------------------------------------------------------

/** Period of the maintenance tick: redial, ask RPS, refresh candidates. */
export const MEMBERSHIP_TICK_MS = 1_000;

/** First redial delay after a failed dial; doubles with each consecutive failure … */
export const DIAL_BACKOFF_INITIAL_MS = 500;
/** … up to this. Reset to zero after a successful dial. */
export const DIAL_BACKOFF_MAX_MS = 30_000;

/** A link that dies sooner than this after the dial succeeded counts as a failed attempt (a peer that accepts and
 *  drops us at once must not be redialed every tick). */
export const STABLE_LINK_MS = 5_000;

/** Candidate addresses remembered (bootstrappers are never evicted). */
export const MAX_CANDIDATES = 1_000;

/** A learned (non-bootstrap) candidate is forgotten after this many consecutive failures. */
export const CANDIDATE_MAX_FAILURES = 8;

/** Entries taken from one `peers` message, and the most we send in one answer (we send min(degree, this)). Bounds how
 *  much of the candidate table a single peer can fill with one message. */
export const MAX_PEERS_PER_EXCHANGE = 64;

/** While short of links, ask one linked peer for more addresses at most this often. */
export const PEER_EXCHANGE_INTERVAL_MS = 5_000;

/** A node at `degree` links swaps one link for an unlinked known address this often, so that saturated groups
 *  (for example the two sides of a healed partition) keep mixing instead of staying apart. */
export const LINK_ROTATION_INTERVAL_MS = 60_000;

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
