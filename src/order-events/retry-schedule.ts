/** Delays grow from `baseMs` by doubling up to this many times the base (1 s -> 1 h). */
const MAX_FACTOR = 3600;

/**
 * When to try a delivery again after its `attempt`-th failure: exponential
 * backoff with jitter (a random 50-100 % of the delay, so endpoints coming back
 * are not hit by every sender at the same instant), or null once the next try
 * would fall outside the retry window that started at `retryFrom`.
 */
export function nextAttemptAt(attempt: number, now: Date, retryFrom: Date, baseMs: number, giveUpAfterMs: number, random: () => number = Math.random): Date | null {
  const delay = Math.min(baseMs * 2 ** Math.min(attempt - 1, 40), baseMs * MAX_FACTOR);
  const next = new Date(now.getTime() + Math.round(delay * (0.5 + random() * 0.5)));
  return next.getTime() - retryFrom.getTime() > giveUpAfterMs ? null : next;
}
