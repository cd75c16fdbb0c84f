/**
 * Rooted broadcast trees: per data type, the links of one spanning tree shared by every origin, chosen by the nodes
 * from what their neighbours tell them and not from the items in flight (src/gossip/plumtree.ts keeps the paper's
 * rules beside it for peers that do not speak this, and for repair).
 *
 * Why: with the paper's rule a duplicate prunes its link, and with several items in flight from different origins
 * each item prunes the links its own first copies did not take; together they cut the tree apart, GRAFTs re-add
 * links, and the tree churns (docs/decisions.md "Broadcast trees"). A tree whose shape does not depend on the items'
 * origins has nothing to churn: every node keeps the neighbour nearest to the tree's root as its parent
 * (distance-vector, as in a spanning-tree protocol; nearest in time, by the links' round trips the handshakes
 * measured, then in links), the root being the node with the smallest key heard of. A link is a tree link when one
 * end is the other's parent; every other link is lazy.
 *
 * Each node tells its neighbours (root, distance, cost, "you are my parent") per type when that changed, at most
 * once per `flush` (the owner calls it a short while after `dirty`: the changes of a burst, as when a root leaves and
 * the distances count up, go out as one advert); a neighbour whose parent we are is never our parent (poisoned
 * reverse), and distances past `maxDistance` are not believed, so a root that left is forgotten after the count to
 * `maxDistance` (bounded), meanwhile the lazy links repair.
 * An honest neighbour's place changes a few times when a tree forms or its root leaves; a peer sending more than
 * `advertBudget` adverts within `advertWindowMs` is flooding (each of its adverts could move every node's place and
 * so make every link carry one): the rest of its window is ignored, and `flood` is told once per `advertBudget` over.
 * Pure: no sockets; time from `now`. Must never: hold state for more than `maxTypes` types or for a peer after
 * linkDown, send an advert to a peer that does not speak it, or act on more than `advertBudget` adverts of one peer
 * in a window.
 */
import type { PeerId } from "./ports.ts";

/** What a node tells a neighbour about its place in one type's tree. */
export interface RootAdvert {
  dataType: number;
  /** The smallest node key the sender heard of (its own when none smaller): the tree's root. */
  root: string;
  /** Links from the sender to the root (0: it is the root). */
  distance: number;
  /** The sender's path to the root in ms: the sum of its links' costs (half the handshake's round trip + hopMs). */
  cost: number;
  /** The receiver is the sender's parent (its link towards the root). */
  parent: boolean;
}

/** Where a node stands in one type's tree: its root, its path there in links and in ms, its parent. */
export interface RootPlace {
  root: string;
  distance: number;
  cost: number;
  parent: PeerId | undefined;
}

export interface RootedTreeOptions {
  /** This node's key (hex, compared as text: keys of equal length order as numbers). */
  self: string;
  maxTypes: number;
  /** Distances beyond this are not believed (the count to infinity after a root leaves stops here). */
  maxDistance: number;
  /** A link's one-way latency when its round trip is not known, ms. */
  defaultLinkMs: number;
  /** What each link adds to a path besides its latency, ms (a node's own work per item: validation, forwarding), so
   *  that round trips that differ by noise alone (one host, one LAN) do not make the tree deeper. */
  hopMs: number;
  send(peer: PeerId, advert: RootAdvert): void;
  /** Some place changed: call `flush` soon (once for any number of changes until then). */
  dirty(): void;
  /** This node's parent for some type changed (for the stats). */
  parentChanged(): void;
  /** A link became or stopped being a tree link for a type. */
  roleChanged(peer: PeerId, dataType: number, tree: boolean): void;
  now(): number;
  /** Adverts acted on per peer and window at most (all types together). */
  advertBudget: number;
  advertWindowMs: number;
  /** A peer sent past its budget (once per `advertBudget` over it). */
  flood(peer: PeerId): void;
}

interface Heard {
  root: string;
  distance: number;
  cost: number;
  parentIsMe: boolean;
}

interface TypeTree {
  /** We relay this type (a local module subscribed and items of it came by): we advertise and keep a parent. */
  active: boolean;
  root: string;
  distance: number;
  cost: number;
  parent: PeerId | undefined;
  heard: Map<PeerId, Heard>;
}

export class RootedTree {
  /** Peers that speak rooted trees, and each link's cost: its one-way latency estimate plus hopMs (ms). */
  private readonly speakers = new Map<PeerId, number>();
  private readonly types = new Map<number, TypeTree>();
  /** Per peer: when its window began and its adverts in it. */
  private readonly budgets = new Map<PeerId, { start: number; count: number }>();
  /** Adverts ignored because their sender was past its budget. */
  ignored = 0;
  /** Types whose place changed since the last flush. */
  private readonly changed = new Set<number>();
  /** Adverts sent. */
  sent = 0;

  constructor(private readonly o: RootedTreeOptions) {}

  /** A link to a peer that speaks rooted trees: it learns where we are in each tree we keep. */
  linkUp(peer: PeerId, rttMs?: number): void {
    this.speakers.set(peer, Math.round(rttMs === undefined ? this.o.defaultLinkMs : rttMs / 2) + this.o.hopMs);
    for (const [dataType, t] of this.types) if (t.active) this.tell(peer, dataType, t);
  }

  linkDown(peer: PeerId): void {
    if (!this.speakers.delete(peer)) return;
    this.budgets.delete(peer);
    for (const [dataType, t] of this.types) {
      if (!t.heard.delete(peer)) continue;
      if (t.active) this.recompute(dataType, t);
    }
  }

  speaks(peer: PeerId): boolean {
    return this.speakers.has(peer);
  }

  /** We relay items of this type: take part in its tree (idempotent). */
  activate(dataType: number): void {
    const t = this.tree(dataType);
    if (t.active) return;
    t.active = true;
    this.recompute(dataType, t, true);
  }

  /** Whether the link's role for the type is decided here (we take part, and the peer told us where it is). */
  decides(peer: PeerId, dataType: number): boolean {
    const t = this.types.get(dataType);
    return t !== undefined && t.active && t.heard.has(peer);
  }

  /** One end is the other's parent. */
  isTreeLink(peer: PeerId, dataType: number): boolean {
    const t = this.types.get(dataType);
    if (t === undefined || !t.active) return false;
    return t.parent === peer || t.heard.get(peer)?.parentIsMe === true;
  }

  /** Tells every neighbour the places that changed since the last flush. */
  flush(): void {
    for (const dataType of this.changed) {
      const t = this.types.get(dataType);
      if (t === undefined || !t.active) continue;
      for (const peer of this.speakers.keys()) this.tell(peer, dataType, t);
    }
    this.changed.clear();
  }

  /** A tree link for some type. */
  treeLinkForAny(peer: PeerId): boolean {
    for (const dataType of this.types.keys()) if (this.isTreeLink(peer, dataType)) return true;
    return false;
  }

  /** An advert from a peer that speaks rooted trees. */
  heard(peer: PeerId, advert: RootAdvert): void {
    if (!this.speakers.has(peer)) return;
    if (!this.withinBudget(peer)) return;
    const t = this.tree(advert.dataType);
    const before = this.isTreeLink(peer, advert.dataType);
    const known = t.heard.has(peer);
    t.heard.set(peer, { root: advert.root, distance: advert.distance, cost: advert.cost, parentIsMe: advert.parent });
    if (!t.active) return;
    this.recompute(advert.dataType, t);
    const after = this.isTreeLink(peer, advert.dataType);
    if (after !== before || !known) this.o.roleChanged(peer, advert.dataType, after);
  }

  /** Root, distance and parent for a type (for /status and tests). */
  placeOf(dataType: number): RootPlace | undefined {
    const t = this.types.get(dataType);
    return t?.active ? { root: t.root, distance: t.distance, cost: t.cost, parent: t.parent } : undefined;
  }

  private tree(dataType: number): TypeTree {
    let t = this.types.get(dataType);
    if (t === undefined) {
      t = { active: false, root: this.o.self, distance: 0, cost: 0, parent: undefined, heard: new Map() };
      this.types.set(dataType, t);
      // Bounded: an inactive type (adverts from neighbours for a type we do not relay) goes first, then the oldest.
      while (this.types.size > this.o.maxTypes) {
        let victim: number | undefined;
        for (const [k, v] of this.types) if (!v.active && k !== dataType) { victim = k; break; }
        victim ??= this.types.keys().next().value as number;
        this.types.delete(victim);
      }
    }
    return t;
  }

  /** Picks the parent; when our place changed, tells every neighbour. */
  private recompute(dataType: number, t: TypeTree, force = false): void {
    let root = this.o.self;
    let distance = 0;
    let cost = 0;
    let parent: PeerId | undefined;
    for (const [peer, h] of t.heard) {
      if (h.parentIsMe || h.distance + 1 > this.o.maxDistance) continue;
      const c = h.cost + (this.speakers.get(peer) ?? this.o.defaultLinkMs + this.o.hopMs);
      // The smallest root; then the shortest path to it in time; then in links; then the smaller ID.
      const better =
        h.root < root ||
        (h.root === root && (c < cost || (c === cost && (h.distance + 1 < distance || (h.distance + 1 === distance && parent !== undefined && peer < parent)))));
      if (!better) continue;
      root = h.root;
      cost = c;
      distance = h.distance + 1;
      parent = peer;
    }
    if (!force && root === t.root && distance === t.distance && cost === t.cost && parent === t.parent) return;
    const oldParent = t.parent;
    t.root = root;
    t.distance = distance;
    t.cost = cost;
    t.parent = parent;
    if (oldParent !== parent) this.o.parentChanged();
    if (this.changed.size === 0) this.o.dirty();
    this.changed.add(dataType);
    if (oldParent !== parent) {
      if (oldParent !== undefined) this.o.roleChanged(oldParent, dataType, this.isTreeLink(oldParent, dataType));
      if (parent !== undefined) this.o.roleChanged(parent, dataType, true);
    }
    if (force) for (const peer of t.heard.keys()) this.o.roleChanged(peer, dataType, this.isTreeLink(peer, dataType));
  }

  private withinBudget(peer: PeerId): boolean {
    const now = this.o.now();
    let b = this.budgets.get(peer);
    if (b === undefined || now - b.start >= this.o.advertWindowMs) {
      b = { start: now, count: 0 };
      this.budgets.set(peer, b);
    }
    const over = ++b.count - this.o.advertBudget;
    if (over <= 0) return true;
    this.ignored++;
    if ((over - 1) % this.o.advertBudget === 0) this.o.flood(peer);
    return false;
  }

  private tell(peer: PeerId, dataType: number, t: TypeTree): void {
    this.sent++;
    this.o.send(peer, { dataType, root: t.root, distance: t.distance, cost: t.cost, parent: t.parent === peer });
  }
}
