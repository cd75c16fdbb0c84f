/**
 * Asking an RPS module for peers while short of links, for either membership (membership.ts, hyparview.ts): at most
 * RPS_QUERIES_PER_TICK queries at a time, none while some are in flight; each answer is handed to `learned`.
 * Must never: have more than one batch in flight, or let a failed query throw.
 */
import { RPS_QUERIES_PER_TICK } from "../defaults.ts";
import type { PeerAddress } from "./ports.ts";
import type { Logger } from "../log.ts";

export class RpsQueries {
  queries = 0;
  failures = 0;
  private inFlight = 0;

  constructor(
    private readonly rps: (() => Promise<PeerAddress>) | undefined,
    private readonly log: Logger,
    private readonly learned: (address: PeerAddress) => void,
  ) {}

  /** Starts up to min(missing, RPS_QUERIES_PER_TICK) queries, unless some are still in flight. */
  ask(missing: number): void {
    if (this.rps === undefined || this.inFlight > 0 || missing <= 0) return;
    for (let i = 0; i < Math.min(missing, RPS_QUERIES_PER_TICK); i++) {
      this.inFlight++;
      this.queries++;
      this.rps().then(
        (address) => {
          this.inFlight--;
          this.learned(address);
        },
        (error: unknown) => {
          this.inFlight--;
          this.failures++;
          this.log.debug("rps query failed", { error: error instanceof Error ? error.message : String(error) });
        },
      );
    }
  }
}
