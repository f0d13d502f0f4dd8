import {randomBytes} from 'node:crypto'
import pg from 'pg'
import {clientConfig, withDatabase} from '../../src/stores/postgres/connection.js'
import {migrate} from '../../src/stores/postgres/migrations.js'

export const serverUrl = (): string => {
  const url = process.env.TEST_SERVER_URL
  if (!url) throw new Error('TEST_SERVER_URL is not set: run the tests through mocha (test/helpers/root-hooks.ts)')
  return url
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(clientConfig(serverUrl()))
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

export type TestDatabase = {name: string; url: string; client: pg.Client; drop(): Promise<void>}

/** A fresh, empty database for one test file, with a connected client; `migrated` also applies the schema. */
export async function freshDatabase(options: {migrated?: boolean; prefix?: string} = {}): Promise<TestDatabase> {
  const name = `${options.prefix ?? 't'}_${randomBytes(5).toString('hex')}`
  await admin((c) => c.query(`CREATE DATABASE "${name}"`))
  const url = withDatabase(serverUrl(), name)
  const client = new pg.Client(clientConfig(url))
  await client.connect()
  if (options.migrated) await migrate(client)
  return {
    name,
    url,
    client,
    async drop() {
      await client.end().catch(() => {})
      await admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`))
    },
  }
}

export async function dropDatabase(name: string): Promise<void> {
  await admin((c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`))
}

export async function dropRoles(prefix: string): Promise<void> {
  await admin(async (c) => {
    const {rows} = await c.query(`SELECT rolname FROM pg_roles WHERE rolname LIKE $1`, [prefix + '%'])
    for (const r of rows) await c.query(`DROP ROLE IF EXISTS "${r.rolname}"`)
  })
}

export async function count(client: pg.Client, table: string, where = 'true'): Promise<number> {
  return Number((await client.query(`SELECT count(*) AS n FROM ${table} WHERE ${where}`)).rows[0].n)
}
