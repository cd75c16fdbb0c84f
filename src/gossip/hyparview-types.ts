/**
 * The options and the stats of HyParView membership (hyparview.ts), apart so that the protocol file stays short.
 * Types only.
 */
import type { PeerScore } from "./peer-score.ts";
import type { Clock, PeerAddress, PeerNetwork } from "./ports.ts";
import type { Logger } from "../log.ts";

export interface HyParViewOptions {
  network: PeerNetwork;
  score: PeerScore;
  clock: Clock;
  random: () => number;
  log?: Logger;
  degree?: number;
  bootstrappers?: PeerAddress[];
  rps?: () => Promise<PeerAddress>;
  tickMs?: number;
  passiveSize?: number;
  shuffleIntervalMs?: number;
  rotationIntervalMs?: number;
  backoffInitialMs?: number;
  backoffMaxMs?: number;
}

export interface HyParViewStats {
  linked: number;
  inbound: number;
  outbound: number;
  dialing: number;
  /** Addresses in the passive view. */
  candidates: number;
  passive: number;
  dials: number;
  dialFailures: number;
  rpsQueries: number;
  rpsFailures: number;
  rotations: number;
  joins: number;
  forwardJoins: number;
  shuffles: number;
  /** Passive entries dialed to fill the active view. */
  promotions: number;
  /** Low-priority NEIGHBOR requests we refused, and links we dropped because the view was full. */
  neighborRefused: number;
  disconnectsSent: number;
  /** Neighbours we asked to start a walk for us while short of links, and walks we started for neighbours. */
  refillAsks: number;
  refillWalks: number;
}
