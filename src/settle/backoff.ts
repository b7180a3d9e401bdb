/**
 * Retry delays for an unreachable Substrate node: capped exponential backoff with optional
 * "equal jitter" (half fixed, half random), so a fleet of settlers that lost the same node does
 * not reconnect in lock-step. Pure: the random source is an argument.
 */

export interface BackoffOptions {
  /** First delay. 500 ms: a node restart on the same host usually takes a few seconds. */
  initialMs: number;
  /** Growth per failed attempt. 2: the classic doubling, reaching the cap in ~6 attempts. */
  factor: number;
  /** Cap. 30 s: an anchor is at most half a minute late once the node is back. */
  maxMs: number;
  /** Fraction of each delay that is random, in [0, 1]. 0.5 = equal jitter. */
  jitter: number;
}

export const defaultBackoffOptions: BackoffOptions = { initialMs: 500, factor: 2, maxMs: 30_000, jitter: 0.5 };

/**
 * Delay before retry number `attempt` (0 = the first retry).
 * @throws RangeError when attempt is negative or not an integer.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = defaultBackoffOptions, random: () => number = Math.random): number {
  if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError(`attempt must be a non-negative integer, got ${attempt}`);
  // Math.min before pow would overflow to Infinity only after ~1000 attempts; clamp the exponent.
  const base = Math.min(opts.maxMs, opts.initialMs * Math.pow(opts.factor, Math.min(attempt, 64)));
  const j = Math.min(1, Math.max(0, opts.jitter));
  return Math.round(base * (1 - j) + base * j * random());
}

/** The first `n` delays without jitter (for docs, logs and tests). */
export function backoffSchedule(n: number, opts: BackoffOptions = defaultBackoffOptions): number[] {
  return Array.from({ length: n }, (_, i) => backoffDelay(i, { ...opts, jitter: 0 }));
}
