import type pg from 'pg'
import type {ResolvedConfig} from '../config/resolve.js'
import {AuditLogsError} from '../errors.js'
import {type Target, connect} from '../stores/postgres/connection.js'
import {migrationStatus} from '../stores/postgres/migrations.js'
import {TABLES, defaultPartitionRows, listPartitions, storedInterval, uncovered} from '../stores/postgres/partitions.js'
import {plannedPeriods} from '../stores/postgres/periods.js'
import {roleNames} from '../stores/postgres/setup.js'
import {setLocalRole} from '../stores/postgres/sql/session.js'
import {quoteIdent} from '../stores/postgres/sql/quote.js'
import {redactText} from '../util/redact.js'
import {type Check, fail, ok, skip, warn} from './check.js'

type Privilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE'
const PRIVILEGES: Privilege[] = ['SELECT', 'INSERT', 'UPDATE', 'DELETE']

/**
 * A statement that needs `privilege` on `table` and changes nothing whatever happens: no row
 * matches the UPDATE and DELETE, the INSERT's row breaks NOT NULL (its id has no default), and the
 * transaction around them is rolled back. PostgreSQL checks the privilege when the executor starts,
 * before any of that, so "permission denied" (42501) is the answer to the question asked.
 * TRUNCATE is not tried: it locks the table against run's writes even when it is rolled back.
 */
const probe = (privilege: Privilege, table: string): string => {
  const t = quoteIdent(table)
  return {
    SELECT: `SELECT 1 FROM ${t} LIMIT 0`,
    INSERT: `INSERT INTO ${t} DEFAULT VALUES`,
    UPDATE: `UPDATE ${t} SET created_at = created_at WHERE false`,
    DELETE: `DELETE FROM ${t} WHERE false`,
  }[privilege]
}

/** Tries each privilege on each table in one transaction that is rolled back; which ones were allowed. */
async function tryPrivileges(client: pg.Client, actAs?: string): Promise<Map<string, Set<Privilege>>> {
  const allowed = new Map<string, Set<Privilege>>()
  await client.query('BEGIN')
  try {
    if (actAs) await client.query(setLocalRole(actAs))
    for (const table of TABLES) {
      const set = new Set<Privilege>()
      allowed.set(table, set)
      for (const privilege of PRIVILEGES) {
        await client.query('SAVEPOINT doctor_probe')
        try {
          await client.query(probe(privilege, table))
          set.add(privilege)
        } catch (error) {
          const code = (error as {code?: string}).code ?? ''
          // 23xxx (NOT NULL, no partition for the row): the privilege check had passed
          if (code.startsWith('23')) set.add(privilege)
          else if (code !== '42501') throw error
        }
        await client.query('ROLLBACK TO SAVEPOINT doctor_probe')
      }
    }
  } finally {
    await client.query('ROLLBACK').catch(() => {})
  }
  return allowed
}

function withUser(url: string, user: string, password: string): string {
  const u = new URL(url)
  u.username = encodeURIComponent(user)
  u.password = encodeURIComponent(password)
  return u.toString()
}

const EXPECTED: Record<'writer' | 'reader', Privilege[]> = {writer: ['INSERT'], reader: ['SELECT']}

/**
 * The writer may INSERT and nothing else, the reader SELECT and nothing else: tried as the role,
 * by logging in with its password (writerPassword / readerPassword) where one is configured, else
 * by SET ROLE from the configured user where it may; otherwise it cannot be checked, and says so.
 */
async function roleCheck(
  kind: 'writer' | 'reader',
  admin: pg.Client,
  target: Target,
  password: string | undefined,
  passwordSetting: string,
): Promise<Check> {
  const name = `${kind} role`
  const role = roleNames(target.dbName)[kind]
  const {rows} = await admin.query(
    `SELECT current_user AS me,
       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS present,
       CASE WHEN EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) THEN pg_has_role(current_user, $1, 'USAGE') ELSE false END AS may_act`,
    [role],
  )
  const {me, present, may_act: mayAct} = rows[0] as {me: string; present: boolean; may_act: boolean}
  if (!present) return fail(name, `the role ${role} does not exist`, 'audit-logs setup-db')
  let client = admin
  let how: string
  let actAs: string | undefined
  if (password) {
    try {
      client = await connect(withUser(target.databaseUrl, role, password))
    } catch (error) {
      return fail(
        name,
        `cannot log in as ${role}: ${redactText((error as Error).message)}`,
        `set ${passwordSetting} to ${role}'s password (or ALTER ROLE ${role} PASSWORD '...' as a superuser)`,
      )
    }
    how = `logged in as ${role}`
  } else if (me === role || mayAct) {
    actAs = me === role ? undefined : role
    how = me === role ? `as ${role}` : `as ${me} acting as ${role} (no ${passwordSetting}: its login was not tried)`
  } else {
    return warn(
      name,
      `cannot be checked: no ${passwordSetting} is configured, and ${me} may not act as ${role}`,
      `set ${passwordSetting} (the password setup-db printed or was given)`,
    )
  }
  try {
    const allowed = await tryPrivileges(client, actAs)
    const excess: string[] = []
    const missing: string[] = []
    for (const [table, set] of allowed) {
      for (const p of PRIVILEGES) {
        const expected = EXPECTED[kind].includes(p)
        if (expected && !set.has(p)) missing.push(`${p} on ${table}`)
        if (!expected && set.has(p)) excess.push(`${p} on ${table}`)
      }
    }
    if (excess.length) {
      const byPrivilege = [...new Set(excess.map((e) => e.split(' ')[0]))]
      const tables = [...new Set(excess.map((e) => e.split(' on ')[1]))]
      return fail(
        name,
        `${role} may ${excess.join(', ')}, beyond ${EXPECTED[kind].join(', ')} (tried ${how}, rolled back)`,
        `REVOKE ${byPrivilege.join(', ')} ON ${tables.join(', ')} FROM ${role};  -- in psql, as a superuser`,
      )
    }
    if (missing.length) return fail(name, `${role} may not ${missing.join(', ')} (tried ${how}, rolled back)`, 'audit-logs setup-db')
    const refused = PRIVILEGES.filter((p) => !EXPECTED[kind].includes(p))
    return ok(name, `${role} may ${EXPECTED[kind].join(', ')}; ${refused.join(', ')} refused (tried ${how}, rolled back)`)
  } catch (error) {
    return fail(name, `could not try ${role}'s privileges: ${redactText((error as Error).message)}`, 'audit-logs setup-db')
  } finally {
    if (client !== admin) await client.end().catch(() => {})
  }
}

/**
 * The integrity chain's tables and the writer's grants on them (stores/postgres/integrity.ts): without them `run`
 * writes its records to PostgreSQL without chaining them.
 */
async function integrityCheck(client: pg.Client, dbName: string, config: ResolvedConfig): Promise<Check> {
  const name = 'integrity grants'
  if (!config.integrity) return skip(name, 'integrity is off')
  const writer = roleNames(dbName).writer
  const {rows} = await client.query(
    `SELECT to_regclass('integrity_batches') IS NOT NULL AND to_regclass('integrity_digests') IS NOT NULL AS tables,
       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1) AS writer`,
    [writer],
  )
  if (!rows[0].tables)
    return fail(name, 'the integrity tables (migration 0006) are missing: run writes records without chaining them', 'audit-logs setup-db')
  if (!rows[0].writer) return skip(name, `the role ${writer} does not exist`)
  const {rows: p} = await client.query(
    `SELECT p FROM unnest(ARRAY['INSERT, SELECT on integrity_batches', 'INSERT on integrity_digests']) p
     WHERE NOT CASE p WHEN 'INSERT on integrity_digests' THEN has_table_privilege($1::name, 'integrity_digests', 'INSERT')
       ELSE has_table_privilege($1::name, 'integrity_batches', 'INSERT') AND has_table_privilege($1::name, 'integrity_batches', 'SELECT') END`,
    [writer],
  )
  if (p.length)
    return fail(
      name,
      `${writer} lacks ${p.map((r: {p: string}) => r.p).join(' and ')}: run writes records without chaining them`,
      'audit-logs setup-db',
    )
  return ok(name, `${writer} may add integrity batches and digests and read its chain's head`)
}

function migrationsCheck(status: Awaited<ReturnType<typeof migrationStatus>>): Check {
  const pending = status.filter((m) => m.state === 'pending')
  if (pending.length)
    return fail(
      'migrations',
      `${pending.length} pending: ${pending.map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`).join(', ')}`,
      // setup-db applies them and grants the roles what they add (migrate alone leaves the writer without the new grants)
      'audit-logs setup-db',
    )
  return ok('migrations', `${status.length} applied, checksums match the files`)
}

async function partitionsChecks(client: pg.Client, config: ResolvedConfig): Promise<Check[]> {
  const interval = (await storedInterval(client)) ?? config.partitionInterval
  const partitions = await listPartitions(client)
  const planned = plannedPeriods(new Date(), interval, config.premake)
  const missingNow: string[] = []
  const missingAhead: string[] = []
  for (const table of TABLES) {
    planned.forEach(({from, to}, i) => {
      // held by the partitions together: after a change of interval a week can lie across two monthly ones
      if (uncovered(partitions, table, from, to).length > 0)
        (i === 0 ? missingNow : missingAhead).push(`${table} ${from.toISOString().slice(0, 10)}`)
    })
  }
  const what = `the current ${interval} and ${config.premake} ahead (premake)`
  const out: Check[] = []
  if (missingNow.length)
    out.push(fail('partitions ahead', `no partition for the current ${interval}: ${missingNow.join(', ')}`, 'audit-logs partitions create'))
  else if (missingAhead.length)
    out.push(warn('partitions ahead', `missing among ${what}: ${missingAhead.join(', ')}`, 'audit-logs partitions create'))
  else out.push(ok('partitions ahead', `every table has its partitions for ${what}`))
  const rows = Object.entries(await defaultPartitionRows(client)).filter(([, n]) => n > 0)
  out.push(
    rows.length
      ? warn(
          'default partitions',
          `rows outside every partition's range: ${rows.map(([t, n]) => `${t}_default ${n}`).join(', ')}`,
          'audit-logs partitions repair',
        )
      : ok('default partitions', 'empty'),
  )
  return out
}

/**
 * PostgreSQL's checks: reachable, the roles as setup-db made them (tried), migrations, partitions.
 * Reads only: each privilege is tried in a transaction that is rolled back, by statements that match no row.
 */
export async function postgresChecks(config: ResolvedConfig, target: () => Promise<Target>): Promise<Check[]> {
  const later = ['writer role', 'reader role', 'migrations', 'integrity grants', 'partitions ahead', 'default partitions']
  let t: Target
  let client: pg.Client
  try {
    t = await target()
    client = await connect(t.databaseUrl, t.setting)
  } catch (error) {
    const message = redactText((error as Error).message)
    const suggestion = error instanceof AuditLogsError ? error.suggestions[0] : undefined
    const setUp = /setup-db/.test(suggestion ?? '') // the server answered: its audit database (or a role) is not set up yet
    return [
      fail('PostgreSQL', message, setUp ? 'audit-logs setup-db' : 'check the server runs, then --database-url / AUDIT_LOGS_DATABASE_URL'),
      ...later.map((c) => skip(c, setUp ? 'no connection to the audit database (see PostgreSQL)' : 'PostgreSQL is not reachable')),
    ]
  }
  try {
    const {rows} = await client.query('SELECT current_user AS me, version() AS version')
    const out: Check[] = [
      ok('PostgreSQL', `reachable: database ${t.dbName} as ${rows[0].me} (${String(rows[0].version).split(' ').slice(0, 2).join(' ')})`),
    ]
    out.push(await roleCheck('writer', client, t, config.writerPassword, 'writerPassword (AUDIT_LOGS_WRITER_PASSWORD)'))
    out.push(await roleCheck('reader', client, t, config.readerPassword, 'readerPassword (AUDIT_LOGS_READER_PASSWORD)'))
    let migrated = false
    try {
      const status = await migrationStatus(client)
      out.push(migrationsCheck(status))
      migrated = status.every((m) => m.state === 'applied')
    } catch (error) {
      const e = error as AuditLogsError
      out.push(fail('migrations', redactText(e.message), e.suggestions?.[0] ?? 'audit-logs setup-db'))
    }
    out.push(await integrityCheck(client, t.dbName, config))
    const {rows: tables} = await client.query(`SELECT count(*) FILTER (WHERE to_regclass(t) IS NOT NULL) AS n FROM unnest($1::text[]) t`, [
      TABLES,
    ])
    if (migrated || tables[0].n === TABLES.length) out.push(...(await partitionsChecks(client, config)))
    else out.push(skip('partitions ahead', 'the audit tables are missing'), skip('default partitions', 'the audit tables are missing'))
    return out
  } finally {
    await client.end().catch(() => {})
  }
}
