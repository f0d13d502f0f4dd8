// What every benchmark sets up: a fresh, migrated audit database.
import pg from 'pg'
import {acquireEmbedded} from '../src/embedded/server.js'
import {recordBatches} from '../src/generate/records.js'
import {ensurePartitions} from '../src/stores/postgres/partitions.js'
import {writeBatchesConcurrently} from '../src/stores/postgres/writer.js'
import {clientConfig, withDatabase} from '../src/stores/postgres/connection.js'
import {migrate} from '../src/stores/postgres/migrations.js'
import {nextPeriod, periodStart} from '../src/stores/postgres/periods.js'

export const fmt = (n: number) => Math.round(n).toLocaleString('en-US')

export type BenchDatabase = {url: string; db: pg.Client; close(): Promise<void>}

/**
 * Creates database `name`, migrated, with a connected client: on an embedded
 * server with its data in `dir` (started at `nice`, as `run` starts it), or,
 * with no `dir`, on the server of AUDIT_LOGS_DATABASE_URL. close() drops it
 * and stops the embedded server.
 */
export async function openBenchDatabase(name: string, options: {dir?: string; nice?: number} = {}): Promise<BenchDatabase> {
  const server = options.dir ? await acquireEmbedded(options.dir, {nice: options.nice}) : undefined
  const serverUrl = server?.adminUrl ?? process.env.AUDIT_LOGS_DATABASE_URL
  if (!serverUrl) throw new Error('no server: give a data directory or AUDIT_LOGS_DATABASE_URL')
  const admin = new pg.Client(clientConfig(serverUrl))
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  const url = withDatabase(serverUrl, name)
  const db = new pg.Client(clientConfig(url))
  await db.connect()
  await migrate(db)
  return {
    url,
    db,
    async close() {
      await db.end()
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await admin.end()
      await server?.release()
    },
  }
}

/** The monthly periods from `days` before `now` to now, as [from, to) ranges. */
export function monthsBack(now: Date, days: number): Array<{from: Date; to: Date}> {
  const periods = []
  for (let from = periodStart(new Date(now.getTime() - days * 86_400_000), 'month'); from <= now; from = nextPeriod(from, 'month'))
    periods.push({from, to: nextPeriod(from, 'month')})
  return periods
}

/**
 * The reading data set (issue 4): `rows` request records over the last `days` days in monthly partitions,
 * loaded in time order with the COPY writer on two connections, then VACUUM ANALYZE. Seconds taken to load.
 */
export async function loadRequestRows(db: pg.Client, url: string, options: {rows: number; days: number; now: Date}): Promise<number> {
  await ensurePartitions(db, monthsBack(options.now, options.days))
  const writers = [db, new pg.Client(clientConfig(url))]
  await writers[1].connect()
  const t0 = performance.now()
  try {
    await writeBatchesConcurrently(
      writers,
      'request',
      recordBatches({rows: options.rows, days: options.days, seed: 5, now: options.now, order: 'time'}),
    )
  } finally {
    await writers[1].end()
  }
  const seconds = (performance.now() - t0) / 1000
  await db.query('VACUUM ANALYZE request_logs')
  return seconds
}
