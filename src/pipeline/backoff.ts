/** Exponential backoff with full jitter (pure, for tests): attempt 1 → up to base, doubling, capped. */
export function backoffMs(attempt: number, baseMs = 200, capMs = 30_000, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.max(0, attempt - 1))
  return Math.round(ceiling / 2 + random() * (ceiling / 2))
}
