/**
 * Exponential backoff with full jitter (pure, for tests): the wait is random between 0 and a ceiling
 * that starts at base for attempt 1 and doubles with each attempt up to cap, as AWS's "Exponential
 * Backoff And Jitter" describes it. Spread over the whole range, retries of many clients (workers,
 * sinks, restarted threads) that failed together do not come back together.
 *
 * A floor of 10 ms (never above the ceiling): a random draw near 0 would retry at once, in the same
 * breath as the failure, which for the failures retried here (a refused connection, a thread that
 * crashed as it started) only fails again and spins the loop.
 */
export function backoffMs(attempt: number, baseMs = 200, capMs = 30_000, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.max(Math.min(10, ceiling), Math.round(random() * ceiling))
}
