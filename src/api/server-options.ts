/**
 * The API server's options, limits and stats (src/api/server.ts), and the defaults of its limits (src/defaults.ts).
 * Types and one pure function: nothing here holds state or does I/O.
 */
import {
  API_ANNOUNCE_HIGH_WATER_BYTES,
  API_ANNOUNCE_LOW_WATER_BYTES,
  API_ANNOUNCE_STUCK_MS,
  API_CLOSE_LINGER_MS,
  API_LATE_ANSWER_MEMORY,
  API_MAX_CONNECTIONS,
  API_MAX_OUTSTANDING_NOTIFICATIONS,
  API_MAX_PENDING_OUTPUT_BYTES,
  API_MAX_PROBATION,
  API_MAX_SUBSCRIPTIONS,
  API_MAX_SUBSCRIPTIONS_PER_CONNECTION,
  API_PARTIAL_MESSAGE_TIMEOUT_MS,
  API_PROBATION_MS,
  VALIDATION_TIMEOUT_MS,
} from "../defaults.ts";
import type { Logger } from "../log.ts";
import type { QueueLevel } from "./announce-backpressure.ts";

/** The API server's limits; a node passes them through NodeOptions.api (tests shrink them). Defaults: src/defaults.ts. */
export type ApiLimits = Pick<
  ApiServerOptions,
  | "maxConnections"
  | "maxProbation"
  | "probationMs"
  | "validationTimeoutMs"
  | "maxOutstanding"
  | "maxPendingOutputBytes"
  | "partialMessageTimeoutMs"
  | "lateAnswerMemory"
  | "closeLingerMs"
  | "maxSubscriptionsPerConnection"
  | "maxSubscriptions"
  | "announceHighWaterBytes"
  | "announceLowWaterBytes"
  | "announceStuckMs"
>;

export interface ApiServerOptions {
  host: string;
  port: number;
  log: Logger;
  /** Connections served at once. At the cap a newcomer waits on probation until its first whole message, then takes
   *  the slot of the longest-idle connection that holds nothing ("idle-evicted"); see admission.ts. */
  maxConnections?: number;
  /** Newcomers on probation at once (past it the oldest is refused) … */
  maxProbation?: number;
  /** … and how long one may take to send its first whole message before it is refused ("too-many-connections"). */
  probationMs?: number;
  /** How long a NOTIFICATION waits for its VALIDATION; a missing answer counts as not valid. */
  validationTimeoutMs?: number;
  /** Node-wide bound on NOTIFICATIONs awaiting an answer (≤ 65535: message IDs are 16 bits). */
  maxOutstanding?: number;
  /** A connection whose unsent output passes this is closed ("slow-reader"). */
  maxPendingOutputBytes?: number;
  /** A message whose first byte arrived must be complete within this, or the connection is closed. */
  partialMessageTimeoutMs?: number;
  /** Timed-out IDs a connection may still answer late without that being a violation. */
  lateAnswerMemory?: number;
  /** After we end() a violating connection, how long its module gets to close before we drop the socket. */
  closeLingerMs?: number;
  /** Data types one connection may subscribe to ("too-many-subscriptions" past it) … */
  maxSubscriptionsPerConnection?: number;
  /** … and (connection, type) pairs on the node ("subscription-table-full" past it). */
  maxSubscriptions?: number;
  /**
   * The node's outgoing peer queues (key, bytes queued). While one is above the high-water mark, connections are not
   * read past their next ANNOUNCE (announce-backpressure.ts). Unset: announcements never wait.
   */
  outgoingQueues?: () => Iterable<QueueLevel>;
  announceHighWaterBytes?: number;
  announceLowWaterBytes?: number;
  /** A queue above the high-water mark this long stops holding announcers back (a peer that does not keep up). */
  announceStuckMs?: number;
}

export interface AnnouncedData {
  ttl: number;
  dataType: number;
  data: Uint8Array;
}

export interface ApiServerStats {
  connections: number;
  subscriptions: number;
  outstanding: number;
  /** Connections not read now because an ANNOUNCE of theirs waits for the peer queues. */
  pausedAnnouncers: number;
  /** Bytes of messages read from those connections and not yet handled (at most one socket read each). */
  heldBytes: number;
  /** Newcomers waiting (at the cap) to send their first whole message. */
  onProbation: number;
  /** Connections closed to make room for a new one, since start. */
  idleEvicted: number;
  /** Subscribed connections that let a NOTIFICATION time out and have not answered since. */
  stalledSubscribers: number;
}

/** Options with every limit filled in from src/defaults.ts. */
export type ResolvedApiOptions = ApiServerOptions & Required<ApiLimits>;

export function resolveApiOptions(o: ApiServerOptions): ResolvedApiOptions {
  return {
    ...o,
    maxConnections: o.maxConnections ?? API_MAX_CONNECTIONS,
    maxProbation: o.maxProbation ?? API_MAX_PROBATION,
    probationMs: o.probationMs ?? API_PROBATION_MS,
    validationTimeoutMs: o.validationTimeoutMs ?? VALIDATION_TIMEOUT_MS,
    maxOutstanding: o.maxOutstanding ?? API_MAX_OUTSTANDING_NOTIFICATIONS,
    maxPendingOutputBytes: o.maxPendingOutputBytes ?? API_MAX_PENDING_OUTPUT_BYTES,
    partialMessageTimeoutMs: o.partialMessageTimeoutMs ?? API_PARTIAL_MESSAGE_TIMEOUT_MS,
    lateAnswerMemory: o.lateAnswerMemory ?? API_LATE_ANSWER_MEMORY,
    closeLingerMs: o.closeLingerMs ?? API_CLOSE_LINGER_MS,
    maxSubscriptionsPerConnection: o.maxSubscriptionsPerConnection ?? API_MAX_SUBSCRIPTIONS_PER_CONNECTION,
    maxSubscriptions: o.maxSubscriptions ?? API_MAX_SUBSCRIPTIONS,
    announceHighWaterBytes: o.announceHighWaterBytes ?? API_ANNOUNCE_HIGH_WATER_BYTES,
    announceLowWaterBytes: o.announceLowWaterBytes ?? API_ANNOUNCE_LOW_WATER_BYTES,
    announceStuckMs: o.announceStuckMs ?? API_ANNOUNCE_STUCK_MS,
  };
}
