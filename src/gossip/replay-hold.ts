/**
 * The replay hold: items a just-linked peer replays from its cache, of a data type no local module subscribed to
 * yet. Without it a restarted node loses its neighbours' cache replay, because its modules reconnect and subscribe a
 * moment after its links come up. Each item is kept for `graceMs`; as soon as its type has a subscriber it is handed
 * back (`release`) to go through the validation gate like any item; when the grace ends it is simply forgotten.
 *
 * Must never: hold more than `maxItems`, run its timer while empty, or validate anything itself.
 */
import { REPLAY_HOLD_CHECK_MS } from "../defaults.ts";
import type { Clock, GossipItem, PeerId } from "./ports.ts";

export interface ReplayHoldOptions {
  clock: Clock;
  graceMs: number;
  maxItems: number;
  hasSubscribers(dataType: number): boolean;
  release(from: PeerId, item: GossipItem): void;
  checkMs?: number;
}

interface Held {
  from: PeerId;
  item: GossipItem;
  until: number;
}

export class ReplayHold {
  /** ID key → held item, in arrival order (so the oldest expires first). */
  private readonly held = new Map<string, Held>();
  private timer: unknown = undefined;
  private readonly checkMs: number;

  constructor(private readonly opts: ReplayHoldOptions) {
    this.checkMs = opts.checkMs ?? REPLAY_HOLD_CHECK_MS;
  }

  get size(): number {
    return this.held.size;
  }

  /** Keeps the item; false when the hold is full (the caller treats it as not subscribed). A second copy is kept once. */
  keep(key: string, from: PeerId, item: GossipItem): boolean {
    if (this.held.has(key)) return true;
    if (this.held.size >= this.opts.maxItems || this.opts.graceMs <= 0) return false;
    this.held.set(key, { from, item, until: this.opts.clock.now() + this.opts.graceMs });
    if (this.timer === undefined) this.timer = this.opts.clock.setInterval(() => this.check(), this.checkMs);
    return true;
  }

  /** The item came in again and is being handled now: nothing to hold. */
  forget(key: string): void {
    if (this.held.delete(key)) this.stopIfEmpty();
  }

  clear(): void {
    this.held.clear();
    this.stopIfEmpty();
  }

  private check(): void {
    const now = this.opts.clock.now();
    for (const [key, h] of [...this.held]) {
      if (this.opts.hasSubscribers(h.item.dataType)) {
        this.held.delete(key);
        this.opts.release(h.from, h.item);
      } else if (now >= h.until) {
        this.held.delete(key);
      }
    }
    this.stopIfEmpty();
  }

  private stopIfEmpty(): void {
    if (this.held.size > 0 || this.timer === undefined) return;
    this.opts.clock.clearInterval(this.timer);
    this.timer = undefined;
  }
}
