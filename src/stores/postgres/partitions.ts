import {AuditLogsError, ExitCode} from '../../errors.js'
import {setLocalRole} from './sql/session.js'
import {type Interval, LOG_TABLES, defaultPartitionName, partitionName, periodStart, nextPeriod, plannedPeriods} from './periods.js'
import {lockSchema} from './sql/migrations.js'
import * as sql from './sql/partitions.js'

import type {Db} from './db.js'
export const TABLES: string[] = Object.values(LOG_TABLES)

export type PartitionInfo = {
  table: string
  name: string
  isDefault: boolean
  from: string | null
  to: string | null
  estimatedRows: number
  bytes: number
}

export async function assertMigrated(db: Db): Promise<void> {
  for (const table of TABLES) {
    const {rows} = await db.query(sql.tableExists(table))
    if (!rows[0].exists) {
      throw new AuditLogsError(`The audit tables are missing (no ${table}).`, {
        exit: ExitCode.database,
        suggestions: ['Run `audit-logs setup-db` (or `audit-logs migrate`) first'],
      })
    }
  }
}

export async function listPartitions(db: Db, tables = TABLES): Promise<PartitionInfo[]> {
  const out: PartitionInfo[] = []
  for (const table of tables) {
    const {rows} = await db.query(sql.listPartitions(table))
    for (const r of rows) {
      out.push({
        table,
        name: r.name,
        isDefault: r.is_default,
        from: r.range_from?.toISOString() ?? null,
        to: r.range_to?.toISOString() ?? null,
        estimatedRows: r.estimated_rows,
        bytes: r.bytes,
      })
    }
  }
  return out
}

/** Exact row counts of the default partitions: rows there belong in a partition that was never made. */
export async function defaultPartitionRows(db: Db, tables = TABLES): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const table of tables) out[table] = (await db.query(sql.defaultHasRows(defaultPartitionName(table)))).rows[0].rows
  return out
}

/** Runs DDL in one transaction, serialised with migrations, as the owner role when one is recorded. */
export async function ddlTransaction<T>(db: Db, fn: () => Promise<T>, options: {rollback?: boolean} = {}): Promise<T> {
  await db.query('BEGIN')
  try {
    await db.query(lockSchema())
    const {rows} = await db.query(sql.ownerRoleToAssume())
    if (rows[0]) await db.query(setLocalRole(rows[0].role))
    const result = await fn()
    await db.query(options.rollback ? 'ROLLBACK' : 'COMMIT')
    return result
  } catch (error) {
    await db.query('ROLLBACK').catch(() => {})
    throw error
  }
}

export type CreatedPartition = {table: string; name: string; from: string; to: string; movedRows: number}

/**
 * Creates the partition for [from, to). Rows of that range already in the
 * default partition are moved into it in the same transaction, since
 * PostgreSQL refuses to create the partition while they sit there.
 * Must run inside ddlTransaction.
 */
async function createPartition(db: Db, table: string, from: Date, to: Date): Promise<CreatedPartition> {
  const name = partitionName(table, from)
  const def = defaultPartitionName(table)
  await db.query(sql.lockTable(def))
  const {rows} = await db.query(sql.hasRowsBetween(def, from, to))
  let movedRows = 0
  if (rows[0].exists) {
    await db.query(sql.createDetached(table, name))
    movedRows = (await db.query(sql.moveRows(def, name, from, to))).rowCount ?? 0
    await db.query(sql.attachPartition(table, name, from, to))
  } else {
    await db.query(sql.createPartitionOf(table, name, from, to))
  }
  return {table, name, from: from.toISOString(), to: to.toISOString(), movedRows}
}

const overlaps = (p: PartitionInfo, from: Date, to: Date) =>
  !p.isDefault && p.from !== null && p.to !== null && new Date(p.from) < to && new Date(p.to) > from

/**
 * The parts of [from, to) that no partition of `table` holds, in order: none when the partitions together
 * cover it. After a change of interval a period can straddle two partitions of the old one (a week across
 * two months), or only part of it be held (the old interval's last month ends inside the week).
 */
export function uncovered(existing: PartitionInfo[], table: string, from: Date, to: Date): Array<{from: Date; to: Date}> {
  const held = existing
    .filter((p) => p.table === table && overlaps(p, from, to))
    .map((p) => ({from: new Date(p.from!).getTime(), to: new Date(p.to!).getTime()}))
    .sort((a, b) => a.from - b.from)
  const gaps: Array<{from: Date; to: Date}> = []
  let at = from.getTime()
  for (const p of held) {
    if (p.from > at) gaps.push({from: new Date(at), to: new Date(p.from)})
    at = Math.max(at, p.to)
  }
  if (at < to.getTime()) gaps.push({from: new Date(at), to})
  return gaps
}

/**
 * Creates the missing partitions among `periods`. A period that partitions of another interval hold in part
 * gets partitions for the rest only (no row of it goes to the default partition); one they hold whole, none.
 */
export async function ensurePartitions(
  db: Db,
  periods: Array<{from: Date; to: Date}>,
  options: {tables?: string[]; dryRun?: boolean} = {},
): Promise<CreatedPartition[]> {
  const tables = options.tables ?? TABLES
  return ddlTransaction(
    db,
    async () => {
      const existing = await listPartitions(db, tables)
      const created: CreatedPartition[] = []
      for (const table of tables) {
        for (const period of periods)
          for (const {from, to} of uncovered(existing, table, period.from, period.to)) {
            const made = await createPartition(db, table, from, to)
            created.push(made)
            existing.push({table, name: made.name, isDefault: false, from: made.from, to: made.to, estimatedRows: 0, bytes: 0})
          }
      }
      return created
    },
    {rollback: options.dryRun},
  )
}

export async function premake(
  db: Db,
  options: {interval: Interval; ahead: number; now?: Date; dryRun?: boolean; tables?: string[]},
): Promise<CreatedPartition[]> {
  return ensurePartitions(db, plannedPeriods(options.now ?? new Date(), options.interval, options.ahead), {
    dryRun: options.dryRun,
    tables: options.tables,
  })
}

/** Moves every row out of the default partitions by creating the partitions they belong to. */
export async function repair(db: Db, interval: Interval): Promise<CreatedPartition[]> {
  const created: CreatedPartition[] = []
  for (const table of TABLES) {
    const {rows} = await db.query(sql.periodsInDefault(defaultPartitionName(table), interval))
    const periods = rows.map((r) => {
      const from = periodStart(r.period, interval)
      return {from, to: nextPeriod(from, interval)}
    })
    if (periods.length > 0) created.push(...(await ensurePartitions(db, periods, {tables: [table]})))
  }
  return created
}

export async function storedInterval(db: Db): Promise<Interval | undefined> {
  const {rows} = await db.query(sql.getSetting('partition_interval'))
  return rows[0]?.value
}

/** The partition period to use: the one asked for, else the one setup-db recorded, else the configured default. */
export async function partitionInterval(db: Db, options: {asked?: Interval; configured: Interval}): Promise<Interval> {
  return options.asked ?? (await storedInterval(db)) ?? options.configured
}
