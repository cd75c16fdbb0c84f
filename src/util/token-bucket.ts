/**
 * A token bucket: `rate` tokens a second, at most `burst` saved up; starts full. Time comes from the caller (ms), so
 * the simulator's clock and the process's work alike. Pure.
 */
export class TokenBucket {
  private tokens: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private at: number,
  ) {
    this.tokens = burst;
  }

  /** Takes one token if there is one at `now` (ms). */
  take(now: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.at) * this.rate) / 1000);
    this.at = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }
}
