/**
 * Flow control for items from peers: when the local modules' validation table has no room because the subscribers
 * are busy (they answer, but hold their share), the broadcaster keeps the one item that did not fit and stops
 * reading that peer (PeerNetwork.pauseReading: TCP then makes the peer wait, and its own bounds apply), instead of
 * dropping what it sent. When a validation settles, waiting items are handed back in arrival order and their peers
 * are read again. A subscriber that has stopped answering ("stalled") never pauses anyone: its items are dropped as
 * before, so it cannot stall items of other types or other peers.
 *
 * Must never: keep more than one item per peer, keep an item of a peer whose link is gone, or pause a peer when the
 * network cannot resume it.
 */
import type { GossipItem, LocalModules, PeerId, PeerNetwork } from "./ports.ts";

export class PeerIntake {
  /** Paused peers → the item that did not fit, in the order they were paused. */
  private readonly waiting = new Map<PeerId, GossipItem>();

  constructor(
    private readonly network: PeerNetwork,
    private readonly local: LocalModules,
    /** Hands a waiting item back to the broadcaster (as if it had just arrived). */
    private readonly deliver: (from: PeerId, item: GossipItem) => void,
  ) {}

  get paused(): number {
    return this.waiting.size;
  }

  /** Keeps `item` and pauses `from` when the table is full of busy (not stalled) work; false: drop it as before. */
  wait(from: PeerId, item: GossipItem): boolean {
    if (this.network.pauseReading === undefined || this.network.resumeReading === undefined) return false;
    if (this.local.validationRoom?.(item.dataType) !== "busy" || this.waiting.has(from)) return false;
    if (!this.network.pauseReading(from)) return false;
    this.waiting.set(from, item);
    return true;
  }

  /** A validation settled: hand back what now fits, in order; each peer handed back is read again. */
  settled(): void {
    for (const [peer, item] of [...this.waiting]) {
      if (!this.local.canValidate(item.dataType) && this.local.validationRoom?.(item.dataType) === "busy") continue;
      this.waiting.delete(peer);
      this.deliver(peer, item);
      this.network.resumeReading!(peer);
    }
  }

  linkDown(peer: PeerId): void {
    this.waiting.delete(peer);
  }

  clear(): void {
    this.waiting.clear();
  }
}
