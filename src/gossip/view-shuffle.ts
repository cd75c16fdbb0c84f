/**
 * HyParView's SHUFFLE (DSN 2007, §4.4): a node sends a few of its active and passive addresses on a random walk;
 * where the walk ends, the node answers with as many of its passive addresses and takes the ones it got. The answer
 * travels back along the walk (each hop remembers where the walk came from, for a short while), so no extra
 * connection is needed. Used by hyparview.ts; knows nothing of links beyond what it is handed.
 * Must never: remember more walks than VIEW_WALK_MEMORY, or take more entries from an answer than it asked for.
 */
import { VIEW_ACTIVE_WALK, VIEW_SHUFFLE_ACTIVE, VIEW_SHUFFLE_PASSIVE, VIEW_WALK_MEMORY, VIEW_WALK_MEMORY_MS } from "../defaults.ts";
import type { LinkInfo, PeerAddress, PeerId, ViewMessage } from "./ports.ts";

export interface ShuffleWalksOptions {
  random: () => number;
  now(): number;
  links(): LinkInfo[];
  /** Passive addresses (not linked now). */
  passive(): PeerAddress[];
  learn(address: PeerAddress): void;
  send(peer: PeerId, message: ViewMessage): void;
}

type Shuffle = Extract<ViewMessage, { kind: "shuffle" }>;

export class ShuffleWalks {
  /** Walks we relayed: id → the hop it came from. */
  private readonly walks = new Map<number, { from: PeerId; at: number }>();
  /** Our own shuffles awaiting their answer. */
  private readonly own = new Set<number>();

  constructor(private readonly o: ShuffleWalksOptions) {}

  /** Starts a shuffle with a random neighbour that speaks views; false when there is none. */
  start(links: LinkInfo[]): boolean {
    const speakers = links.filter((l) => l.views);
    if (speakers.length === 0) return false;
    const target = speakers[Math.floor(this.o.random() * speakers.length)]!;
    const active = links.filter((l) => l.peer !== target.peer && l.port > 0).map((l) => ({ host: l.host, port: l.port, id: l.peer }));
    shuffle(active, this.o.random);
    const passive = this.o.passive();
    shuffle(passive, this.o.random);
    const id = Math.floor(this.o.random() * 0x7fffffff);
    this.own.add(id);
    if (this.own.size > VIEW_WALK_MEMORY) this.own.delete(this.own.values().next().value as number);
    const entries = [...active.slice(0, VIEW_SHUFFLE_ACTIVE), ...passive.slice(0, VIEW_SHUFFLE_PASSIVE)];
    this.o.send(target.peer, { kind: "shuffle", id, ttl: VIEW_ACTIVE_WALK, entries });
    return true;
  }

  /** A shuffle walk reached us: pass it on, or end it here. The first hop adds the origin's address. */
  received(from: LinkInfo, m: Shuffle): void {
    const origin = m.origin ?? (from.port > 0 ? { host: from.host, port: from.port, id: from.peer } : undefined);
    const next = this.o.links().filter((l) => l.views && l.peer !== from.peer && l.peer !== origin?.id);
    if (m.ttl > 1 && next.length > 0 && this.walks.size < VIEW_WALK_MEMORY) {
      this.walks.set(m.id, { from: from.peer, at: this.o.now() });
      const to = next[Math.floor(this.o.random() * next.length)]!;
      this.o.send(to.peer, { ...m, ttl: m.ttl - 1, origin });
      return;
    }
    const reply = this.o.passive();
    shuffle(reply, this.o.random);
    this.o.send(from.peer, { kind: "shuffle-reply", id: m.id, entries: reply.slice(0, m.entries.length + 1) });
    for (const a of [...m.entries.slice(0, VIEW_SHUFFLE_ACTIVE + VIEW_SHUFFLE_PASSIVE), ...(origin ? [origin] : [])]) this.o.learn(a);
  }

  /** An answer: back along the walk, or ours to take. */
  replied(id: number, entries: PeerAddress[]): void {
    const walk = this.walks.get(id);
    if (walk !== undefined) {
      this.walks.delete(id);
      this.o.send(walk.from, { kind: "shuffle-reply", id, entries });
      return;
    }
    if (!this.own.delete(id)) return;
    for (const a of entries.slice(0, VIEW_SHUFFLE_ACTIVE + VIEW_SHUFFLE_PASSIVE + 1)) this.o.learn(a);
  }

  /** Forgets relayed walks older than VIEW_WALK_MEMORY_MS. */
  expire(): void {
    const now = this.o.now();
    for (const [id, w] of this.walks) if (now - w.at > VIEW_WALK_MEMORY_MS) this.walks.delete(id);
  }
}

/** Fisher–Yates, in place. */
export function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
}
