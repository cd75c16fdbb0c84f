/**
 * Peer score: strikes against peers that break the protocol (forged item IDs, oversized items), and temporary bans
 * for repeat offenders; a peer with `threshold` strikes inside one window (which opens at its first strike) is banned
 * for `banMs`. Items a local module rejected are only counted (`recordRejection`), never a strike: real modules
 * answer "invalid" for well-formed items that are merely not useful to them, and an honest relay must not be banned
 * for its neighbours' taste (docs/decisions.md).
 * Shared by the broadcaster (records strikes), membership (never dials a banned peer, drops its links) and the
 * transport (refuses inbound links from it, via isBanned). Pure bookkeeping: never touches the network itself, and
 * both tables are bounded (oldest record evicted first).
 */
import {
  BAN_DURATION_MS,
  INVALID_THRESHOLD,
  INVALID_WINDOW_MS,
  PEER_SCORE_MAX_TRACKED,
} from "../defaults.ts";
import type { PeerId } from "./ports.ts";

export interface PeerScoreOptions {
  threshold?: number;
  windowMs?: number;
  banMs?: number;
  maxTracked?: number;
  now?: () => number;
}

interface Strikes {
  windowStart: number;
  count: number;
}

export class PeerScore {
  readonly threshold: number;
  readonly windowMs: number;
  readonly banMs: number;
  readonly maxTracked: number;
  private readonly now: () => number;
  private readonly strikes = new Map<PeerId, Strikes>();
  /** Items a local module rejected, per peer (bounded like the strikes): evidence for later scoring, never a ban. */
  private readonly rejections = new Map<PeerId, number>();
  /** peer → time the ban ends. */
  private readonly bans = new Map<PeerId, number>();

  constructor(options: PeerScoreOptions = {}) {
    this.threshold = options.threshold ?? INVALID_THRESHOLD;
    this.windowMs = options.windowMs ?? INVALID_WINDOW_MS;
    this.banMs = options.banMs ?? BAN_DURATION_MS;
    this.maxTracked = options.maxTracked ?? PEER_SCORE_MAX_TRACKED;
    this.now = options.now ?? (() => performance.now());
    if (!(this.threshold >= 1)) throw new RangeError(`PeerScore: threshold must be ≥ 1, got ${this.threshold}`);
  }

  /**
   * One strike against `peer`. Returns true if this strike got it banned: the caller then disconnects it.
   */
  recordInvalid(peer: PeerId): boolean {
    if (this.isBanned(peer)) return false;
    const now = this.now();
    let record = this.strikes.get(peer);
    if (record === undefined || now - record.windowStart >= this.windowMs) {
      this.strikes.delete(peer); // re-insert at the tail: the map's head stays the stalest record
      record = { windowStart: now, count: 0 };
      this.strikes.set(peer, record);
      evictOldest(this.strikes, this.maxTracked);
    }
    record.count++;
    if (record.count < this.threshold) return false;
    this.ban(peer);
    return true;
  }

  /** An item from `peer` that a local module declared invalid: counted, never banned for. */
  recordRejection(peer: PeerId): void {
    const n = (this.rejections.get(peer) ?? 0) + 1;
    this.rejections.delete(peer); // re-insert at the tail: the map's head stays the stalest record
    this.rejections.set(peer, n);
    evictOldest(this.rejections, this.maxTracked);
  }

  /** Items from `peer` that local modules rejected (since tracking began, while it is among the tracked). */
  rejectionsOf(peer: PeerId): number {
    return this.rejections.get(peer) ?? 0;
  }

  /** Bans `peer` for `ms` (default banMs) from now, whatever its strikes. */
  ban(peer: PeerId, ms: number = this.banMs): void {
    this.strikes.delete(peer);
    this.bans.delete(peer);
    this.bans.set(peer, this.now() + ms);
    evictOldest(this.bans, this.maxTracked);
  }

  isBanned(peer: PeerId): boolean {
    const until = this.bans.get(peer);
    if (until === undefined) return false;
    if (this.now() < until) return true;
    this.bans.delete(peer);
    return false;
  }

  /** Strikes in the peer's current window (0 when none or the window has passed). */
  strikesOf(peer: PeerId): number {
    const record = this.strikes.get(peer);
    if (record === undefined || this.now() - record.windowStart >= this.windowMs) return 0;
    return record.count;
  }

  stats(): { tracked: number; banned: number } {
    return { tracked: this.strikes.size + this.rejections.size, banned: this.bans.size };
  }
}

function evictOldest<K, V>(map: Map<K, V>, max: number): void {
  while (map.size > max) map.delete(map.keys().next().value as K);
}
