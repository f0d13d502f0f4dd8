import type {Filter} from '../filters/parse.js'

/**
 * `stats --log-type event`: the seeds' get_audit_summary (counts by action,
 * by actor, by target type; failed logins; exports with their record
 * counts), for the filter's time range and, with --actor, one actor.
 */
export type EventSummary = {
  total: number
  byAction: Array<{action: string; count: number}>
  byActor: Array<{actor: string; count: number}>
  byTargetType: Array<{type: string; count: number}>
  bySeverity: Array<{severity: string; count: number}>
  failedLogins: {total: number; byActor: Array<{actor: string; count: number}>; byIp: Array<{ip: string; count: number}>}
  /** EXPORT events, and the records they say they exported (extra.record_count, where it is a number) */
  exports: {total: number; records: number}
}

/** The fields a summary groups by: names of our own, never user text. */
export const EVENT_GROUPS = ['action', 'actor_id', 'target_type', 'severity', 'ip'] as const
export type EventGroup = (typeof EVENT_GROUPS)[number]

/** What each store computes where the events are (PostgreSQL in SQL, MongoDB in pipelines, the files in one pass each). */
export type EventCounter = {
  count(f: Filter): Promise<number>
  /** the `top` most frequent non-null values of `field`, most frequent first, ties by value */
  top(f: Filter, field: EventGroup, top: number): Promise<Array<readonly [string, number]>>
  /** the sum of the numeric `extra.record_count` of the matching events */
  exportedRecords(f: Filter): Promise<number>
}

/** The filter narrowed to one action; undefined when the filter's own actions exclude it (nothing can match). */
function withAction(f: Filter, action: string): Filter | undefined {
  if (f.actions && !f.actions.includes(action)) return undefined
  return {...f, actions: [action]}
}

export async function summarizeEvents(c: EventCounter, f: Filter, top: number): Promise<EventSummary> {
  const pairs = async <K extends string>(field: EventGroup, key: K, filter: Filter | undefined = f) =>
    filter ? (await c.top(filter, field, top)).map(([k, n]) => ({[key]: k, count: n}) as {[P in K]: string} & {count: number}) : []
  const failed = withAction(f, 'LOGIN_FAILED')
  const exported = withAction(f, 'EXPORT')
  return {
    total: await c.count(f),
    byAction: await pairs('action', 'action'),
    byActor: await pairs('actor_id', 'actor'),
    byTargetType: await pairs('target_type', 'type'),
    bySeverity: await pairs('severity', 'severity'),
    failedLogins: {
      total: failed ? await c.count(failed) : 0,
      byActor: await pairs('actor_id', 'actor', failed),
      byIp: await pairs('ip', 'ip', failed),
    },
    exports: {total: exported ? await c.count(exported) : 0, records: exported ? await c.exportedRecords(exported) : 0},
  }
}

/** The same primitives over records in memory (the files source): one pass per figure, bounded by the distinct values counted. */
export function countRecords(records: (f: Filter) => AsyncIterable<Record<string, unknown>>): EventCounter {
  return {
    async count(f) {
      let n = 0
      for await (const _ of records(f)) n++
      return n
    },
    async top(f, field, top) {
      const counts = new Map<string, number>()
      for await (const r of records(f)) {
        const v = r[field]
        if (v !== null && v !== undefined) counts.set(String(v), (counts.get(String(v)) ?? 0) + 1)
      }
      return [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).slice(0, top)
    },
    async exportedRecords(f) {
      let sum = 0
      for await (const r of records(f)) {
        const n = (r.extra as {record_count?: unknown} | null)?.record_count
        if (typeof n === 'number' && Number.isFinite(n)) sum += n
      }
      return sum
    },
  }
}
