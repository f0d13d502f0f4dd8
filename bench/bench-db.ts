// What every benchmark sets up: a fresh, migrated audit database.
import pg from 'pg'
import {acquireEmbedded} from '../src/embedded/server.js'
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
