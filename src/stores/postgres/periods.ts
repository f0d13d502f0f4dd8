import {LOG_TYPE, LOG_TYPES, type LogType} from '../log-types.js'

/** Pure date arithmetic for time partitions; every date is UTC. */
export type Interval = 'month' | 'week' | 'day'
export const INTERVALS: Interval[] = ['month', 'week', 'day']
export type {LogType} from '../log-types.js'
export const LOG_TABLES = Object.fromEntries(LOG_TYPES.map((t) => [t, LOG_TYPE[t].table])) as Record<LogType, string>

export function periodStart(date: Date, interval: Interval): Date {
  const y = date.getUTCFullYear()
  const m = date.getUTCMonth()
  const d = date.getUTCDate()
  if (interval === 'month') return new Date(Date.UTC(y, m, 1))
  if (interval === 'day') return new Date(Date.UTC(y, m, d))
  const mondayOffset = (date.getUTCDay() + 6) % 7 // ISO weeks start on Monday, as date_trunc('week') does
  return new Date(Date.UTC(y, m, d - mondayOffset))
}

export function nextPeriod(start: Date, interval: Interval): Date {
  const y = start.getUTCFullYear()
  const m = start.getUTCMonth()
  const d = start.getUTCDate()
  if (interval === 'month') return new Date(Date.UTC(y, m + 1, 1))
  return new Date(Date.UTC(y, m, d + (interval === 'week' ? 7 : 1)))
}

/** The current period and `ahead` more, as [from, to) ranges. */
export function plannedPeriods(now: Date, interval: Interval, ahead: number): Array<{from: Date; to: Date}> {
  const out = []
  let from = periodStart(now, interval)
  for (let i = 0; i <= ahead; i++) {
    const to = nextPeriod(from, interval)
    out.push({from, to})
    from = to
  }
  return out
}

const ymd = (d: Date) => d.toISOString().slice(0, 10).replace(/-/g, '')

/** request_logs_p20261101: sorts by time, says where the range starts. */
export function partitionName(table: string, from: Date): string {
  return `${table}_p${ymd(from)}`
}

export const defaultPartitionName = (table: string) => `${table}_default`

/** The cutoff of a retention of `days` days, measured from `now`. */
export function cutoffFor(now: Date, days: number): Date {
  return new Date(now.getTime() - days * 86_400_000)
}
