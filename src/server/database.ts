import type {ResolvedConfig} from '../config/resolve.js'
import {type Target, connect, resolveTarget} from '../stores/postgres/connection.js'
import {migrationStatus} from '../stores/postgres/migrations.js'
import {partitionInterval, premake} from '../stores/postgres/partitions.js'
import {TABLES} from '../stores/postgres/partitions.js'
import {tableExists} from '../stores/postgres/sql/partitions.js'
import {setupDatabase} from '../stores/postgres/setup.js'
import {redactText} from '../util/redact.js'

/**
 * The database side of `run`: resolve the target (embedded by default),
 * set up the embedded database on first use, and keep partitions made
 * ahead so rows do not pile up in the default partition. Nothing here may
 * stop the proxy: failures are logged and the journal holds the records.
 */
export async function prepareDatabase(config: ResolvedConfig, log: (m: string) => void): Promise<{target: Target; stop(): void}> {
  const target = await resolveTarget(config)
  const ensure = async () => {
    try {
      const setUp = () =>
        setupDatabase(target, {defaultInterval: config.partitionInterval, premake: config.premake, passwords: {}, dryRun: false})
      let client = await connect(target.databaseUrl).catch(async (error) => {
        if (!target.embedded) throw error
        // The embedded default sets itself up: `npx audit-logs run` is all a new user needs.
        log(`setting up the embedded audit database ${target.dbName}`)
        await setUp()
        return connect(target.databaseUrl)
      })
      // ... and keeps itself current: a version that adds a table (event_logs) migrates it on the first run
      if (target.embedded && (await migrationStatus(client)).some((m) => m.state === 'pending')) {
        await client.end()
        log(`applying the pending migrations to the embedded audit database ${target.dbName}`)
        await setUp()
        client = await connect(target.databaseUrl)
      }
      try {
        // the tables of the first migration must be there; a later one's (event_logs, ...) missing is a pending migration, said below
        const tables: string[] = []
        for (const t of TABLES) if ((await client.query(tableExists(t))).rows[0].exists) tables.push(t)
        if (!TABLES.slice(0, 2).every((t) => tables.includes(t)))
          throw new Error(`the audit tables are missing in ${target.dbName}; run \`audit-logs setup-db\` (records wait in the journal)`)
        const interval = await partitionInterval(client, {configured: config.partitionInterval})
        const made = await premake(client, {interval, ahead: config.premake, tables})
        if (made.length) log(`created partitions ${made.map((p) => p.name).join(', ')}`)
        // a schema older than this version works, but misses what the pending migrations fix; a role that may not read the list says nothing
        const pending = await migrationStatus(client).then(
          (all) => all.filter((m) => m.state === 'pending'),
          () => [],
        )
        if (pending.length)
          log(
            `database: ${pending.length} migration(s) pending (${pending.map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`).join(', ')}): run \`audit-logs setup-db\` (it applies them and grants the roles their tables)`,
          )
      } finally {
        await client.end()
      }
    } catch (error) {
      log(`database: ${redactText((error as Error).message)}`)
    }
  }
  await ensure()
  const timer = setInterval(ensure, 6 * 3600_000)
  timer.unref()
  return {target, stop: () => clearInterval(timer)}
}
