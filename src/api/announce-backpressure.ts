/**
 * When local announcers must wait: while an outgoing peer queue is above a high-water mark, until it is back at the
 * low-water mark. The API server then stops reading connections at their next ANNOUNCE (src/api/server.ts), so a
 * module announcing faster than the links carry is slowed by TCP instead of having its items dropped at full queues.
 *
 * A queue that stays above the high-water mark for `stuckAfterMs` belongs to a peer that does not keep up (or stopped
 * reading): it stops holding announcers back until it has drained to the low-water mark, and items for it are
 * dropped at its own bound as before, so one slow peer cannot stall the node's modules.
 *
 * Pure: queue levels and the time come in, on/off goes out. Must never: stay on with no queue above its low-water
 * mark, or be held on by a queue for more than `stuckAfterMs` per high-water episode; it remembers only the queues it
 * was last given.
 */

export interface AnnounceBackpressureOptions {
  /** A queue above this many bytes turns backpressure on … */
  highWaterBytes: number;
  /** … until it is at or below this many. */
  lowWaterBytes: number;
  /** A queue above the high-water mark for this long no longer holds announcers back (until it drains). */
  stuckAfterMs: number;
}

/** One outgoing queue: a stable key (the peer) and the bytes waiting in it. */
export type QueueLevel = readonly [key: string, queuedBytes: number];

export class AnnounceBackpressure {
  /** Queues in a high-water episode (crossed the high mark, not yet back at the low mark) → when it began. */
  private aboveSince = new Map<string, number>();
  private holding = false;

  constructor(private readonly options: AnnounceBackpressureOptions) {}

  /** Whether announcers wait, as of the last update. */
  get on(): boolean {
    return this.holding;
  }

  /** The queues now (a queue not listed is gone); returns whether announcers must wait. */
  update(levels: Iterable<QueueLevel>, now: number): boolean {
    const { highWaterBytes, lowWaterBytes, stuckAfterMs } = this.options;
    const next = new Map<string, number>();
    let holding = false;
    for (const [key, bytes] of levels) {
      let since = this.aboveSince.get(key);
      if (bytes > highWaterBytes) since ??= now;
      else if (bytes <= lowWaterBytes) since = undefined;
      if (since === undefined) continue;
      next.set(key, since);
      if (now - since < stuckAfterMs) holding = true;
    }
    this.aboveSince = next;
    this.holding = holding;
    return holding;
  }
}
