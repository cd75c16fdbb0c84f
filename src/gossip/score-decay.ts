/**
 * Decaying counters for the peer score: a value that halves every `halfLifeMs` of the core's Clock, kept as (value,
 * time of the last change) and decayed lazily when read or bumped, so no timer runs per peer. Pure arithmetic on
 * plain records: never reads a clock itself (the caller passes `now`).
 */

export interface Decaying {
  value: number;
  /** Clock time (ms) at which `value` was exact. */
  at: number;
}

export function decaying(now: number): Decaying {
  return { value: 0, at: now };
}

/** Exponential decay rate per ms for a half-life. */
export function decayRate(halfLifeMs: number): number {
  if (!(halfLifeMs > 0)) throw new RangeError(`score half-life must be > 0 ms, got ${halfLifeMs}`);
  return Math.LN2 / halfLifeMs;
}

/** The counter's value at `now` (a time before its last change reads as that change: clocks are monotonic). */
export function valueAt(c: Decaying, now: number, rate: number): number {
  const dt = now - c.at;
  return dt <= 0 ? c.value : c.value * Math.exp(-rate * dt);
}

/** Adds `amount` at `now`, then caps the result at `cap`. */
export function bump(c: Decaying, now: number, rate: number, amount: number, cap = Infinity): void {
  c.value = Math.min(cap, valueAt(c, now, rate) + amount);
  c.at = Math.max(c.at, now);
}
