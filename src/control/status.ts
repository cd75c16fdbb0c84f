/**
 * GET /status: the node's state as one JSON document for operators and `gossip status`. Pure: a ControlSource
 * snapshot in, a plain object out. The shape is documented in README "CLI" and checked by test/control.test.ts;
 * add fields freely, never rename or remove one (scripts read it).
 */
import { formatHostPort } from "../address.ts";
import { linkTotals } from "./metrics.ts";
import type { ControlSource } from "./source.ts";

export interface LinkStatus {
  peer_id: string;
  /** Where the peer is: its remote address; for inbound links also the port it listens on. */
  address: string;
  listen_port: number;
  inbound: boolean;
  age_seconds: number;
  bytes_in: number;
  bytes_out: number;
  dropped: number;
  /** The link's role in the broadcast tree, when the dissemination layer has trees. */
  role?: "eager" | "lazy";
  /** The peer's score now (src/gossip/score-table.ts; 2 decimals): credit above 0, evidence against it below; under
   *  the ban threshold (-50 by default) it is banned. */
  score?: number;
}

/** Item counters since the node started (the same figures as the gossip_items_* metrics). */
export interface ItemCounters {
  announced: number;
  received: number;
  duplicate: number;
  valid: number;
  invalid: number;
  unanswered: number;
  not_subscribed: number;
  dropped_busy: number;
  id_mismatch: number;
  forwarded: number;
  send_failed: number;
}

export interface NodeStatus {
  peer_id: string;
  version: string;
  commit: string;
  uptime_seconds: number;
  listen: { api: string; p2p: string; control?: string };
  links: LinkStatus[];
  /** Data type → number of local connections subscribed to it, ascending by type. */
  subscriptions: { data_type: number; subscribers: number }[];
  api_connections: number;
  validations_outstanding: number;
  cache: { items: number; capacity: number; seen_ids: number };
  membership: { candidates: number; dialing: number };
  handshakes: { completed: number; failed: Record<string, number>; pending: number };
  items: ItemCounters;
  /** gossip_validation_duration_seconds: NOTIFICATION to verdict, cumulative counts per upper bound in seconds. */
  validation: { count: number; sum_seconds: number; buckets: { le: number | "+Inf"; count: number }[] };
  /** Framed bytes over every link since the start (closed links included). */
  link_bytes: { received: number; sent: number };
  /** Peers banned now (by strikes or score), and bans by the score since the start. */
  bans?: { banned: number; by_score: number };
}

export function nodeStatus(s: ControlSource, now: number = Date.now()): NodeStatus {
  const api = s.api.stats();
  const b = s.broadcaster.stats();
  const m = s.membership.stats();
  const t = s.transport.stats();
  const validation = s.observations.validation.snapshot();
  const bytes = linkTotals(s.transport);
  const score = s.score?.stats();
  const links: LinkStatus[] = s.transport
    .linked()
    .map((l) => ({
      peer_id: l.info.peerId,
      address: formatHostPort({ host: l.info.remoteHost, port: l.info.remotePort }),
      listen_port: l.info.listenPort,
      inbound: l.info.inbound,
      age_seconds: round1((now - l.openedAt) / 1000),
      bytes_in: l.bytesIn,
      bytes_out: l.bytesOut,
      dropped: l.droppedMessages,
      ...(s.broadcaster.roleOf ? { role: s.broadcaster.roleOf(l.info.peerId) } : {}),
      ...(s.score ? { score: round2(s.score.scoreOf(l.info.peerId)) } : {}),
    }))
    .sort((x, y) => (x.peer_id < y.peer_id ? -1 : 1));
  return {
    peer_id: s.peerId,
    version: s.version,
    commit: s.commit,
    uptime_seconds: round1((now - s.startedAt) / 1000),
    listen: s.listen(),
    links,
    subscriptions: [...s.api.subscriptionsByType()]
      .sort(([x], [y]) => x - y)
      .map(([data_type, subscribers]) => ({ data_type, subscribers })),
    api_connections: api.connections,
    validations_outstanding: api.outstanding,
    cache: { items: b.cached, capacity: s.cacheCapacity, seen_ids: b.seen },
    membership: { candidates: m.candidates, dialing: m.dialing },
    handshakes: { completed: t.handshakesOk, failed: Object.fromEntries(t.handshakesFailed), pending: t.pendingHandshakes },
    items: {
      announced: b.announced,
      received: b.received,
      duplicate: b.duplicates,
      valid: b.valid,
      invalid: b.invalid,
      unanswered: b.unanswered,
      not_subscribed: b.notSubscribed,
      dropped_busy: b.droppedBusy,
      id_mismatch: b.idMismatch,
      forwarded: b.forwarded,
      send_failed: b.sendFailed,
    },
    validation: { count: validation.count, sum_seconds: validation.sum, buckets: validation.buckets },
    link_bytes: { received: bytes.bytesIn, sent: bytes.bytesOut },
    ...(score ? { bans: { banned: score.banned, by_score: score.scoreBans } } : {}),
  };
}

function round2(x: number): number {
  return Math.round(x * 100) / 100 || 0; // never -0
}

function round1(x: number): number {
  return Math.max(0, Math.round(x * 10) / 10);
}
