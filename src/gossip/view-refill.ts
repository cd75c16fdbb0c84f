/**
 * Holes in the active views find each other (docs/decisions.md, "Membership views"). With views capped at `degree`
 * and symmetric, a node short of links can only be filled by another node with room, or by a full node that drops
 * someone else for it (which moves the hole, not fills it). So a node short of links asks a few neighbours (a
 * low-priority NEIGHBOR on a link already in the view) to start a FORWARD_JOIN walk for it; such a walk ends at the
 * first node with room (hyparview.ts), and a node remembers briefly which neighbours asked, so a walk passing it goes
 * to one of them first. Used by hyparview.ts; sends only through what it is handed.
 * Must never: remember a peer that is not linked, ask more than `missing` × VIEW_REFILL_WALKS neighbours per round,
 * or start more than one walk per ask received.
 */
import { VIEW_ACTIVE_WALK, VIEW_REFILL_ASK_MS, VIEW_REFILL_WALKS } from "../defaults.ts";
import { shuffle } from "./view-shuffle.ts";
import type { LinkInfo, PeerId, ViewMessage } from "./ports.ts";

export interface RefillWalksOptions {
  random: () => number;
  now(): number;
  send(peer: PeerId, message: ViewMessage): void;
}

export class RefillWalks {
  /** Asks we sent, and walks we started for neighbours that asked. */
  asks = 0;
  walks = 0;
  private nextAskAt = 0;
  /** Neighbours that asked lately (they are short of links) → when. Linked peers only (forget() on link loss). */
  private readonly short = new Map<PeerId, number>();

  constructor(private readonly o: RefillWalksOptions) {}

  /** Short by `missing` links (and holding some): asks up to VIEW_REFILL_WALKS neighbours per missing link, once per
   *  VIEW_REFILL_ASK_MS. What arrives past `degree` is refused, so asking several costs dials, never holes. */
  ask(speakers: LinkInfo[], missing: number): void {
    const now = this.o.now();
    if (speakers.length === 0 || missing <= 0 || now < this.nextAskAt) return;
    this.nextAskAt = now + VIEW_REFILL_ASK_MS;
    const pool = speakers.slice();
    shuffle(pool, this.o.random);
    for (const l of pool.slice(0, missing * VIEW_REFILL_WALKS)) {
      this.asks++;
      this.o.send(l.peer, { kind: "neighbor", high: false });
    }
  }

  /** A neighbour asked: a walk for it through `others` (our other view-speaking links), as if it had passed us, so
   *  the next hop may already end it. */
  asked(asker: LinkInfo, others: LinkInfo[]): void {
    if (asker.port <= 0) return; // it does not listen: nobody could link to it
    this.short.set(asker.peer, this.o.now());
    if (others.length === 0) return;
    this.walks++;
    const peer = { host: asker.host, port: asker.port, id: asker.peer };
    this.o.send(this.nextHop(others), { kind: "forward-join", peer, ttl: VIEW_ACTIVE_WALK - 1 });
  }

  /** The next hop of a walk: a neighbour that asked lately (it has room, so the walk ends there), else a random one.
   *  A hint is used once, so that the next walk does not pile onto the same neighbour. */
  nextHop(others: LinkInfo[]): PeerId {
    const now = this.o.now();
    const hinted = others.filter((l) => {
      const at = this.short.get(l.peer);
      return at !== undefined && now - at <= VIEW_REFILL_ASK_MS;
    });
    const pool = hinted.length > 0 ? hinted : others;
    const next = pool[Math.floor(this.o.random() * pool.length)]!.peer;
    this.short.delete(next);
    return next;
  }

  forget(peer: PeerId): void {
    this.short.delete(peer);
  }
}
