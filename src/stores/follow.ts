import {setTimeout as sleep} from 'node:timers/promises'
import type {Filter} from '../filters/parse.js'
import type {Order, Row} from './source.js'

/** Records reach a store a little after they start (shipping); look back this far and skip what was shown. */
export const LOOK_BACK_MS = 60_000

/** Waits `ms`, or less when `signal` aborts; false once aborted. Leaves no listener behind either way. */
export async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false
  try {
    await sleep(ms, undefined, {signal})
    return true
  } catch {
    return false
  }
}

/**
 * Follows a store that can only be queried: every interval, the records of the
 * last LOOK_BACK_MS, oldest first, each shown once. Memory holds the ids of that
 * window only.
 */
export async function* followByPolling(
  query: (f: Filter, options: {limit: number; order?: Order}) => Promise<Row[]>,
  f: Filter,
  options: {intervalMs: number; signal: AbortSignal},
): AsyncGenerator<Row> {
  const seen = new Map<string, number>()
  let from = Date.now()
  do {
    const rows = await query({...f, since: new Date(from - LOOK_BACK_MS)}, {limit: 5000, order: 'newest'})
    for (const r of rows.reverse()) {
      const id = String(r.id)
      const at = new Date(r.created_at as string).getTime()
      if (seen.has(id) || at < from - LOOK_BACK_MS) continue
      seen.set(id, at)
      yield r
    }
    for (const [id, at] of seen) if (at < from - LOOK_BACK_MS) seen.delete(id)
    from = Math.max(from, Date.now() - 1000)
  } while (await pause(options.intervalMs, options.signal))
}
