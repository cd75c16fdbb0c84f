/**
 * What the control server reads from a running node: stats snapshots and two latency histograms. Structural types
 * only, so src/control depends on no concrete class and node.ts passes its parts as they are. Read-only by contract:
 * nothing in src/control may change node state.
 */
import type { ApiServerStats } from "../api/server.ts";
import type { BroadcasterStats } from "../gossip/broadcaster.ts";
import type { MembershipStats } from "../gossip/membership.ts";
import type { LinkDescription } from "../p2p/link.ts";
import type { TransportStats } from "../p2p/transport.ts";
import { Histogram } from "./prometheus.ts";

/** Upper bounds in seconds. Validation waits on local modules (ms to the 5 s timeout); PoW runs ms to seconds. */
export const VALIDATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
export const POW_SOLVE_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Latencies the node observes as they happen (counters live in the parts' stats). */
export class NodeObservations {
  /** validate() rounds for items from peers: NOTIFICATION sent to all subscribers → verdict. */
  readonly validation = new Histogram(VALIDATION_BUCKETS);
  /** Proofs of work this node solved to dial peers, queueing in the pool included. */
  readonly powSolve = new Histogram(POW_SOLVE_BUCKETS);
}

export interface LinkView {
  readonly info: LinkDescription;
  /** Date.now() when the link came up. */
  readonly openedAt: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly droppedMessages: number;
}

export interface ControlSource {
  peerId: string;
  /** Package version and build commit (src/version.ts). */
  version: string;
  commit: string;
  /** Date.now() when the node started. */
  startedAt: number;
  /** Bound addresses as host:port (ports resolved, so port 0 in the config shows the real one). */
  listen(): { api: string; p2p: string; control?: string };
  cacheCapacity: number;
  transport: { stats(): TransportStats; linked(): readonly LinkView[] };
  api: { stats(): ApiServerStats; subscriptionsByType(): Map<number, number> };
  /** roleOf: the link's broadcast-tree role, where the dissemination layer has one (shown in /status when present). */
  broadcaster: { stats(): BroadcasterStats; roleOf?(peer: string): "eager" | "lazy" };
  membership: { stats(): MembershipStats };
  /** The peer score (src/gossip/peer-score.ts), shown per link and as ban counts when present. */
  score?: { scoreOf(peer: string): number; stats(): { banned: number; scoreBans: number } };
  observations: NodeObservations;
}
