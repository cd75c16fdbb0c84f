/**
 * The gossip core's peer messages (src/gossip/ports.ts: tree messages, view messages, address lists) as P2P link
 * messages (proto/gossip.proto) and back: what src/node.ts's PeerNetwork adapter sends and what its dispatch hands
 * to the core. Pure translation. It must never produce a message our own decoder (src/p2p/wire.ts) would refuse:
 * lists are cut to the wire's bounds and addresses the wire cannot carry are left out, because a peer closes the
 * link on a message out of bounds.
 */
import type { GossipItem, PeerAddress, PeerEvents, TreeMessage, ViewMessage } from "./gossip/ports.ts";
import type { LinkMessage, PeerEntry } from "./p2p/proto/gossip.ts";
import { encodeIHaveMessage } from "./p2p/wire-fast.ts";
import { MAX_HOPS, MAX_HOST_LENGTH, MAX_TREE_ENTRIES, MAX_VIEW_ENTRIES, MAX_VIEW_TTL, PEER_ID_BYTES, hostBytes } from "./p2p/wire.ts";

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const PEER_ID_HEX = /^[0-9a-f]{64}$/;

/** An address as a PeerEntry, or undefined when the wire cannot carry it (no port, a host too long, a bad ID). */
export function peerEntry(a: PeerAddress): PeerEntry | undefined {
  const bytes = hostBytes(a.host);
  if (bytes === 0 || bytes > MAX_HOST_LENGTH || !Number.isInteger(a.port) || a.port < 1 || a.port > 0xffff) return undefined;
  if (a.id !== undefined && !PEER_ID_HEX.test(a.id)) return undefined;
  return { host: a.host, port: a.port, id: a.id === undefined ? new Uint8Array(0) : Buffer.from(a.id, "hex") };
}

export function peerAddress(e: PeerEntry): PeerAddress {
  return e.id.length === PEER_ID_BYTES ? { host: e.host, port: e.port, id: hex(e.id) } : { host: e.host, port: e.port };
}

function peerEntries(list: PeerAddress[], max: number): PeerEntry[] {
  const out: PeerEntry[] = [];
  for (const a of list) {
    if (out.length >= max) break;
    const e = peerEntry(a);
    if (e !== undefined) out.push(e);
  }
  return out;
}

export function peerListMessage(peers: PeerAddress[]): LinkMessage {
  return { kind: { $case: "peerList", value: { peers: peerEntries(peers, Number.MAX_SAFE_INTEGER) } } };
}

/** A tree message as link messages: one, or several when it names more items than one message may carry. An IHAVE
 *  comes encoded (wire-fast.ts: the generated encoder's bytes, one allocation), being one per lazy link and turn. */
export function treeLinkMessages(message: TreeMessage): (LinkMessage | Uint8Array)[] {
  if (message.kind === "prune") return [{ kind: { $case: "prune", value: { dataType: message.dataType } } }];
  if (message.kind === "root") {
    const value = {
      dataType: message.dataType,
      root: Uint8Array.fromHex(message.root),
      distance: Math.min(message.distance, MAX_HOPS),
      parent: message.parent,
      cost: Math.min(Math.round(message.cost), 0xffffffff),
    };
    return [{ kind: { $case: "treeRoot", value } }];
  }
  const out: (LinkMessage | Uint8Array)[] = [];
  if (message.kind === "ihave") {
    const entries = message.entries;
    for (let i = 0; i < entries.length; i += MAX_TREE_ENTRIES) {
      out.push(encodeIHaveMessage(entries, MAX_HOPS, i, Math.min(entries.length, i + MAX_TREE_ENTRIES)));
    }
    return out;
  }
  const chunks: Uint8Array[][] = [];
  for (let i = 0; i < message.ids.length; i += MAX_TREE_ENTRIES) chunks.push(message.ids.slice(i, i + MAX_TREE_ENTRIES));
  // A GRAFT with no IDs still means "push to me"; a DONT-HAVE with none means nothing and is not sent.
  if (chunks.length === 0 && message.kind === "graft") chunks.push([]);
  for (const idPrefix of chunks) {
    out.push(
      message.kind === "graft"
        ? { kind: { $case: "graft", value: { idPrefix, dataType: message.dataType } } }
        : { kind: { $case: "dontHave", value: { idPrefix } } },
    );
  }
  return out;
}

const walkTtl = (ttl: number) => Math.max(0, Math.min(MAX_VIEW_TTL, Math.floor(ttl)));

/**
 * A view message as a link message, and whether it may be dropped when the peer's send buffer is full: the walks
 * (FORWARD_JOIN, SHUFFLE and its reply) may, like items (a lost walk costs one exchange); JOIN, NEIGHBOR and
 * DISCONNECT steer the views and may not. Undefined when it cannot travel (a FORWARD_JOIN whose newcomer the wire
 * cannot carry).
 */
export function viewLinkMessage(m: ViewMessage): { message: LinkMessage; droppable: boolean } | undefined {
  switch (m.kind) {
    case "join":
      return { message: { kind: { $case: "join", value: {} } }, droppable: false };
    case "neighbor":
      return { message: { kind: { $case: "neighbor", value: { highPriority: m.high } } }, droppable: false };
    case "disconnect":
      return { message: { kind: { $case: "disconnect", value: {} } }, droppable: false };
    case "forward-join": {
      const peer = peerEntry(m.peer);
      if (peer === undefined) return undefined;
      return { message: { kind: { $case: "forwardJoin", value: { peer, ttl: walkTtl(m.ttl) } } }, droppable: true };
    }
    case "shuffle": {
      const origin = m.origin === undefined ? undefined : peerEntry(m.origin);
      const value = { id: m.id >>> 0, ttl: walkTtl(m.ttl), origin, entries: peerEntries(m.entries, MAX_VIEW_ENTRIES) };
      return { message: { kind: { $case: "shuffle", value } }, droppable: true };
    }
    case "shuffle-reply":
      return { message: { kind: { $case: "shuffleReply", value: { id: m.id >>> 0, entries: peerEntries(m.entries, MAX_VIEW_ENTRIES) } } }, droppable: true };
  }
}

/** One decoded link message from a peer to the core's events (kinds the link handles itself never get here). */
export function dispatch(events: PeerEvents, peer: string, message: LinkMessage): void {
  const kind = message.kind;
  switch (kind?.$case) {
    case "payload": {
      const p = kind.value;
      const item: GossipItem = { id: p.messageId, ttl: p.ttl, dataType: p.dataType, data: p.data, hops: p.hops ?? 0, replayed: p.replayed === true };
      events.item(peer, item);
      return;
    }
    case "ihave":
      events.tree(peer, { kind: "ihave", entries: kind.value.entries.map((e) => ({ id: e.idPrefix, dataType: e.dataType, hops: e.hops })) });
      return;
    case "graft":
      events.tree(peer, { kind: "graft", ids: kind.value.idPrefix, dataType: kind.value.dataType ?? 0 });
      return;
    case "prune":
      events.tree(peer, { kind: "prune", dataType: kind.value.dataType ?? 0 });
      return;
    case "dontHave":
      events.tree(peer, { kind: "dont-have", ids: kind.value.idPrefix });
      return;
    case "treeRoot": {
      const v = kind.value;
      events.tree(peer, { kind: "root", dataType: v.dataType, root: v.root.toHex(), distance: v.distance, cost: v.cost, parent: v.parent });
      return;
    }
    case "join":
      events.views(peer, { kind: "join" });
      return;
    case "forwardJoin":
      // wire.ts refuses a ForwardJoin without its peer.
      events.views(peer, { kind: "forward-join", peer: peerAddress(kind.value.peer!), ttl: kind.value.ttl });
      return;
    case "neighbor":
      events.views(peer, { kind: "neighbor", high: kind.value.highPriority });
      return;
    case "disconnect":
      events.views(peer, { kind: "disconnect" });
      return;
    case "shuffle": {
      const s = kind.value;
      const entries = s.entries.map(peerAddress);
      events.views(peer, s.origin ? { kind: "shuffle", id: s.id, ttl: s.ttl, origin: peerAddress(s.origin), entries } : { kind: "shuffle", id: s.id, ttl: s.ttl, entries });
      return;
    }
    case "shuffleReply":
      events.views(peer, { kind: "shuffle-reply", id: kind.value.id, entries: kind.value.entries.map(peerAddress) });
      return;
    case "peerRequest":
      events.peersRequested(peer);
      return;
    case "peerList":
      events.peers(peer, kind.value.peers.map(peerAddress));
      return;
  }
}
