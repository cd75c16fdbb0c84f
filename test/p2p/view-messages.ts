/** One LinkMessage of every membership-view kind (proto/gossip.proto, fields 12–17), for the wire and link tests. */
import { randomBytes } from "node:crypto";
import type { LinkMessage, PeerEntry } from "../../src/p2p/proto/gossip.ts";
import { LINK_KIND_FIELD } from "../../src/p2p/wire.ts";

export const entry = (port: number, withId = true): PeerEntry => ({ host: "127.0.0.1", port, id: withId ? randomBytes(32) : new Uint8Array(0) });

export const viewMessages: LinkMessage[] = [
  { kind: { $case: "join", value: {} } },
  { kind: { $case: "forwardJoin", value: { peer: entry(6001), ttl: 6 } } },
  { kind: { $case: "neighbor", value: { highPriority: true } } },
  { kind: { $case: "neighbor", value: { highPriority: false } } },
  { kind: { $case: "disconnect", value: {} } },
  { kind: { $case: "shuffle", value: { id: 0xffff_ffff, ttl: 5, origin: entry(6002), entries: [entry(6003), entry(6004, false)] } } },
  { kind: { $case: "shuffle", value: { id: 1, ttl: 6, entries: [entry(6005)] } } },
  { kind: { $case: "shuffleReply", value: { id: 7, entries: [entry(6006), entry(6007)] } } },
];

export const VIEW_FIELDS = [
  LINK_KIND_FIELD.join,
  LINK_KIND_FIELD.forwardJoin,
  LINK_KIND_FIELD.neighbor,
  LINK_KIND_FIELD.disconnect,
  LINK_KIND_FIELD.shuffle,
  LINK_KIND_FIELD.shuffleReply,
];

export const viewCount = (counts: number[]) => VIEW_FIELDS.reduce((n, f) => n + counts[f]!, 0);
