import type {TestDatabase} from './db.js'

/** A value of a series in a Prometheus text exposition (0 when absent). */
export function metric(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '))
  return line ? Number(line.slice(series.length + 1)) : 0
}

/** The successful runs of run's maintenance per period (maintenance_runs): how many, and which instances did them. */
export async function periodsDone(db: TestDatabase, intervalMs: number): Promise<Array<{period: Date; n: number; instances: string[]}>> {
  const {rows} = await db.client.query(
    `SELECT period_start AS period, count(*)::int AS n, array_agg(instance ORDER BY instance) AS instances
       FROM maintenance_runs WHERE error IS NULL AND interval_ms = $1 GROUP BY 1 ORDER BY 1`,
    [intervalMs],
  )
  return rows
}
