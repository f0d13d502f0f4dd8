// Benchmark for the audit database (issue 2), on generated rows:
//  1. write rate of the COPY writer vs one INSERT per record (the seeds' pattern);
//  2. `cleanup --days 90` with partition drops vs batched DELETE of the same
//     rows on an unpartitioned copy.
// Run: node bench/run.js database [--rows 1000000] [--days 180] [--insert-rows 20000]
import {execFileSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import pg from 'pg'
import {generateRecords} from '../src/generate/records.js'
import {clientConfig} from '../src/stores/postgres/connection.js'
import {ensurePartitions} from '../src/stores/postgres/partitions.js'
import {periodStart} from '../src/stores/postgres/periods.js'
import {cleanup} from '../src/stores/postgres/retention.js'
import {writeBatchesConcurrently, writeLines} from '../src/stores/postgres/writer.js'
import {REQUEST_COLUMNS} from '../src/stores/source.js'
import {fmt, monthsBack, openBenchDatabase} from './bench-db.js'

const {values} = parseArgs({
  args: process.argv.slice(2),
  options: {
    order: {type: 'string', default: 'time'},
    rows: {type: 'string', default: '1000000'},
    days: {type: 'string', default: '180'},
    'insert-rows': {type: 'string', default: '20000'},
    batch: {type: 'string', default: '10000'},
  },
})
const ROWS = Number(values.rows)
const DAYS = Number(values.days)
const INSERT_ROWS = Number(values['insert-rows'])
const BATCH = Number(values.batch)
const ORDER = values.order === 'random' ? 'random' : 'time'
const NOW = new Date()
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')

const seconds = (t0: number) => (performance.now() - t0) / 1000

const COLUMNS = REQUEST_COLUMNS
const INSERT_SQL = `INSERT INTO request_logs (${COLUMNS.join(', ')}) VALUES (${COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`

async function main() {
  const dir = process.env.AUDIT_LOGS_DATABASE_URL ? undefined : mkdtempSync(path.join(os.tmpdir(), 'audit-logs-bench-'))
  const {url, db, close} = await openBenchDatabase(`bench_${Date.now()}`, {dir})
  const out: string[] = []
  const say = (line: string) => {
    console.log(line)
    out.push(line)
  }
  try {
    // monthly partitions covering the whole generated span
    const periods = monthsBack(NOW, DAYS)
    await ensurePartitions(db, periods)
    say(
      `rows: ${fmt(ROWS)} over ${DAYS} days in ${ORDER === 'time' ? 'time order (as captured)' : 'random time order'}, ${periods.length} monthly partitions; batch ${fmt(BATCH)}`,
    )

    // 1a. COPY writer. Records are generated and serialised first (as the journal
    // holds them), so only the writes are timed.
    const batches: string[][] = []
    let batch: string[] = []
    for (const r of generateRecords({rows: ROWS, days: DAYS, seed: 1, now: NOW, order: ORDER})) {
      batch.push(JSON.stringify(r))
      if (batch.length === BATCH) {
        batches.push(batch)
        batch = []
      }
    }
    if (batch.length) batches.push(batch)
    const half = Math.ceil(batches.length / 2)
    let t0 = performance.now()
    for (const b of batches.slice(0, half)) await writeLines(db, 'request', b)
    const copyRows = batches.slice(0, half).reduce((n, b) => n + b.length, 0)
    const copyRate = copyRows / seconds(t0)
    say(`COPY writer, 1 connection: ${fmt(copyRows)} records in ${seconds(t0).toFixed(1)} s = ${fmt(copyRate)} records/s`)
    const second = new pg.Client(clientConfig(url))
    await second.connect()
    t0 = performance.now()
    await writeBatchesConcurrently([db, second], 'request', batches.slice(half))
    await second.end()
    const parallelRows = ROWS - copyRows
    const parallelRate = parallelRows / seconds(t0)
    say(`COPY writer, 2 connections: ${fmt(parallelRows)} records in ${seconds(t0).toFixed(1)} s = ${fmt(parallelRate)} records/s`)
    batches.length = 0

    // 1b. baseline: one INSERT per record (autocommit), into a scratch copy of the same table
    await db.query('CREATE TABLE insert_target (LIKE request_logs INCLUDING ALL) ')
    const insertSql = INSERT_SQL.replace('INSERT INTO request_logs', 'INSERT INTO insert_target')
    const sample = [...generateRecords({rows: INSERT_ROWS, days: DAYS, seed: 2, now: NOW, order: ORDER})]
    const t1 = performance.now()
    for (const r of sample)
      await db.query(
        insertSql,
        COLUMNS.map((c) => (c === 'query' || c.endsWith('headers') || c === 'extra' ? JSON.stringify(r[c]) : r[c])),
      )
    const insertRate = INSERT_ROWS / seconds(t1)
    say(`one INSERT per record: ${fmt(INSERT_ROWS)} records in ${seconds(t1).toFixed(1)} s = ${fmt(insertRate)} records/s`)
    say(
      `write ratio COPY / INSERT: ${(copyRate / insertRate).toFixed(1)}x with 1 connection, ${(parallelRate / insertRate).toFixed(1)}x with 2`,
    )
    await db.query('DROP TABLE insert_target')

    // 2. cleanup --days 90: an unpartitioned copy of the same rows for the baseline
    await db.query('CREATE TABLE flat_logs (LIKE request_logs INCLUDING DEFAULTS)')
    await db.query('INSERT INTO flat_logs SELECT * FROM request_logs')
    await db.query('ALTER TABLE flat_logs ADD PRIMARY KEY (id, created_at)')
    for (const def of ['(created_at)', '(status_code, created_at)', '(user_id, created_at)', '(path text_pattern_ops, created_at)'])
      await db.query(`CREATE INDEX ON flat_logs ${def}`)
    await db.query('CREATE INDEX ON flat_logs (ip, created_at)')
    await db.query('VACUUM ANALYZE')

    const cutoff = new Date(NOW.getTime() - 90 * 86_400_000)

    const reload = async () => {
      await db.query('TRUNCATE request_logs')
      await db.query('INSERT INTO request_logs SELECT * FROM flat_logs')
      await ensurePartitions(db, periods)
      await db.query('VACUUM ANALYZE request_logs')
    }
    const phases = (report: Awaited<ReturnType<typeof cleanup>>) => {
      const sum = (kind: string) => report.actions.filter((a) => a.action === kind).reduce((n, a) => n + a.rows, 0)
      return `${report.actions.filter((a) => a.action === 'drop').length} partitions dropped (${fmt(sum('drop'))} rows), ${fmt(sum('delete'))} rows deleted in batches`
    }

    // a. the real command, as a user runs it (Node start-up and connection included)
    let t = performance.now()
    const cli = JSON.parse(
      execFileSync(process.execPath, [path.join(ROOT, 'bin/run.js'), 'cleanup', '--days', '90', '--log-type', 'request', '--json'], {
        env: {...process.env, AUDIT_LOGS_DATABASE_URL: url, OCLIF_SKIP_NEW_VERSION_CHECK: '1'},
        cwd: os.tmpdir(), // not the user's directory: its audit-logs.config.mjs or .env (a dbName) would send the command elsewhere
      }).toString(),
    )
    const cliSeconds = seconds(t)
    const left = Number((await db.query('SELECT count(*) FROM request_logs WHERE created_at < $1', [cli.targets[0].cutoff])).rows[0].count)
    say(
      `cleanup --days 90, the CLI command: ${cliSeconds.toFixed(2)} s wall; removed ${fmt(cli.totalRows)} rows (${fmt(left)} older than its cutoff left): ${phases(cli)}`,
    )

    // b. the same cleanup in-process (what the command does, without start-up)
    await reload()
    t = performance.now()
    const inProcess = await cleanup(db, {retention: [{logType: 'request', days: 90}], dryRun: false, batchSize: 5000, now: NOW})
    const partSeconds = seconds(t)
    say(`cleanup in-process: ${partSeconds.toFixed(2)} s; ${phases(inProcess)}`)

    // c. only whole expired partitions (cutoff on a partition boundary): the drop path alone
    await reload()
    const boundary = periodStart(cutoff, 'month')
    t = performance.now()
    const dropOnly = await cleanup(db, {
      retention: [{logType: 'request', days: 90}],
      dryRun: false,
      batchSize: 5000,
      now: new Date(boundary.getTime() + 90 * 86_400_000),
    })
    say(`expired whole partitions only (cutoff ${boundary.toISOString().slice(0, 10)}): ${seconds(t).toFixed(3)} s; ${phases(dropOnly)}`)

    // d. baseline: batched DELETE (5000 rows per transaction) of the same rows on the unpartitioned copy
    t = performance.now()
    let deleted = 0
    for (;;) {
      const n =
        (
          await db.query('DELETE FROM flat_logs WHERE ctid = ANY (ARRAY(SELECT ctid FROM flat_logs WHERE created_at < $1 LIMIT 5000))', [
            cutoff,
          ])
        ).rowCount ?? 0
      deleted += n
      if (n < 5000) break
    }
    const flatSeconds = seconds(t)
    const size = async (table: string) =>
      Number((await db.query(`SELECT sum(pg_total_relation_size(relid)) AS b FROM pg_partition_tree($1::regclass)`, [table])).rows[0].b)
    say(`batched DELETE on an unpartitioned copy: ${fmt(deleted)} rows in ${flatSeconds.toFixed(2)} s`)
    say(
      `space after: partitioned ${fmt((await size('request_logs')) / 1048576)} MB (dropped partitions returned to the OS), unpartitioned ${fmt(Number((await db.query(`SELECT pg_total_relation_size('flat_logs') AS b`)).rows[0].b) / 1048576)} MB (deleted rows are dead tuples until VACUUM, and the file does not shrink)`,
    )
    say(
      `cleanup ratio (batched DELETE time / cleanup time): ${(flatSeconds / partSeconds).toFixed(1)}x in-process, ${(flatSeconds / cliSeconds).toFixed(1)}x against the whole CLI command`,
    )
  } finally {
    await close()
    if (dir) rmSync(dir, {recursive: true, force: true})
  }
}

await main()
