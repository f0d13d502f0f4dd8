// What PostgreSQL spends per record on the writer's statements (issue 16), with and without the integrity
// chain (issue 21). Builds the request and access lines of the capture benchmark's exchanges (POST 2 KiB →
// 4 KiB JSON, GET → 41 B) with the real record builder, then on a fresh embedded PostgreSQL, batch after
// batch: BEGIN; the variant's statements; ROLLBACK (so every batch inserts the same rows into empty
// partitions; VACUUM after each variant's round). The figure is the backend's CPU (/proc) per row, the best
// round of each. Variants: the writer before (a COPY into a staging table, then INSERT … SELECT from it with
// json_populate_record per row), the writer now (one INSERT from json_populate_recordset of the batch as
// one JSON array parameter), the naive proxy's statement (bench/naive-proxy.mjs: no ON CONFLICT), each
// chained or not.
// Run: node bench/run.js chain-sql [--rows 500] [--batches 20] [--rounds 4] (rows a batch, as the sink's 4 MiB batches of POST records hold)
import {randomUUID} from 'node:crypto'
import {mkdtempSync, chmodSync, readFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import {parseArgs} from 'node:util'
import {from as copyFrom} from 'pg-copy-streams'
import {RecordBuilder} from '../src/capture/builder.js'
import {Masker} from '../src/capture/masking.js'
import {DEFAULT_SENSITIVE_FIELDS, DEFAULT_SENSITIVE_HEADERS} from '../src/config/schema.js'
import {LOG_TYPE, type LogType} from '../src/stores/log-types.js'
import {rowHash, utcText} from '../src/stores/postgres/sql/integrity.js'
import {ensurePartitions} from '../src/stores/postgres/partitions.js'
import {nextPeriod, periodStart} from '../src/stores/postgres/periods.js'
import * as sql from '../src/stores/postgres/sql/writer.js'
import {ITEMS_4K as big, ORDER_2K as order, SMALL as small} from './bodies.mjs'
import {openBenchDatabase} from './bench-db.js'
import {benchExchange} from './exchanges.js'

const {values} = parseArgs({
  args: process.argv.slice(2),
  options: {rows: {type: 'string', default: '500'}, batches: {type: 'string', default: '20'}, rounds: {type: 'string', default: '4'}},
})
const N = Number(values.rows)
const BATCHES = Number(values.batches)
const ROUNDS = Number(values.rounds)

/** The journal lines of N exchanges, by log type. */
async function lines(post: boolean): Promise<Record<'request' | 'access', string[]>> {
  const out: Record<'request' | 'access', string[]> = {request: [], access: []}
  const masker = new Masker({fields: DEFAULT_SENSITIVE_FIELDS, headers: DEFAULT_SENSITIVE_HEADERS})
  const builder = new RecordBuilder({masker, maxBodyLength: 8192, slowMs: 1000, instance: 'bench', hooks: {}}, (line) => {
    const text = typeof line === 'string' ? line : Buffer.from(line).toString()
    out[(JSON.parse(text) as {log_type: 'request' | 'access'}).log_type].push(text)
  })
  const now = Date.now()
  const shape = post ? {method: 'POST', request: order, response: big} : {method: 'GET', response: small}
  for (let i = 0; i < N; i++) await builder.build(benchExchange(shape, i, now, randomUUID()), true)
  return out
}

// The writer before this change (sql/writer.ts at commit 9dc7685), kept here as the baseline.
const STAGING_TABLE = `CREATE TEMP TABLE IF NOT EXISTS audit_logs_staging (doc text NOT NULL) ON COMMIT DELETE ROWS;
  ALTER TABLE audit_logs_staging ALTER COLUMN doc SET STORAGE EXTERNAL`
const COPY_STAGING = `COPY audit_logs_staging (doc) FROM STDIN WITH (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')`
const STAGED = (t: LogType) =>
  `SELECT r.* FROM audit_logs_staging s CROSS JOIN LATERAL json_populate_record(NULL::${LOG_TYPE[t].table}, s.doc::json) r`
const fromStaging = (t: LogType) => `INSERT INTO ${LOG_TYPE[t].table} ${STAGED(t)} ON CONFLICT DO NOTHING`
const fromStagingChained = (t: LogType) => `WITH src AS MATERIALIZED (${STAGED(t)}),
  ins AS (INSERT INTO ${LOG_TYPE[t].table} SELECT * FROM src ON CONFLICT DO NOTHING RETURNING 1)
  SELECT (SELECT count(*) FROM ins)::int AS inserted, src.id::text AS id, ${utcText('src.created_at')} AS at, ${rowHash(t, 'src')} AS h FROM src`

const TICK_US = 1e6 / 100 // /proc's clock ticks (USER_HZ)
const cpuUs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(f[11]) + Number(f[12])) * TICK_US
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-bench-chain-'))
chmodSync(dir, 0o755)
const bench = await openBenchDatabase('bench_chain', {dir: path.join(dir, 'pg')})
try {
  const {db} = bench
  const now = new Date()
  await ensurePartitions(db, [{from: periodStart(now, 'month'), to: nextPeriod(periodStart(now, 'month'), 'month')}])
  await db.query(STAGING_TABLE)
  const pid = (await db.query('SELECT pg_backend_pid() AS p')).rows[0].p as number
  const table = (t: LogType) => (t === 'request' ? 'request_logs' : 'access_logs')
  // `staging`: the batch is first copied into the staging table (the writer before this change), the COPY counted
  const variants: Array<{name: string; query: (t: LogType, records: Buffer) => {text: string; values?: unknown[]}; staging?: boolean}> = [
    {name: 'staging, no chain', query: (t) => ({text: fromStaging(t)}), staging: true},
    {name: 'one array, no chain', query: (t, records) => sql.insertFromArray(table(t), records)},
    {
      name: 'naive proxy (no ON CONFLICT)',
      query: (t, records) => ({
        text: `INSERT INTO ${table(t)} SELECT * FROM json_populate_recordset(NULL::${table(t)}, $1::json)`,
        values: [records],
      }),
    },
    {name: 'staging + chain', query: (t) => ({text: fromStagingChained(t)}), staging: true},
    {name: 'one array + chain', query: (t, records) => sql.insertFromArrayChained(t, records)},
  ]
  console.log(
    `PostgreSQL CPU per row, ${BATCHES} batches of ${N} rows a round, best of ${ROUNDS}; ${os.cpus().length} cores (${os.cpus()[0].model})`,
  )
  for (const post of [false, true]) {
    const byType = await lines(post)
    for (const t of ['request', 'access'] as const) {
      const data = byType[t].join('\n') + '\n'
      const array = Buffer.from(`[${byType[t].join(',')}]`)
      const best = variants.map(() => Number.POSITIVE_INFINITY)
      for (let r = 0; r < ROUNDS; r++) {
        for (const [i, v] of (r % 2 ? [...variants.entries()].reverse() : [...variants.entries()]) as Array<
          [number, (typeof variants)[0]]
        >) {
          let used = 0
          for (let b = 0; b < BATCHES; b++) {
            await db.query('BEGIN')
            const before = cpuUs(pid)
            if (v.staging) await pipeline(Readable.from([Buffer.from(data)]), db.query(copyFrom(COPY_STAGING)))
            await db.query(v.query(t, array))
            used += cpuUs(pid) - before
            await db.query('ROLLBACK')
          }
          best[i] = Math.min(best[i], used / N / BATCHES)
          await db.query(`VACUUM ${table(t)}`) // the rolled-back rows' dead entries would weigh on the next variant's unique checks
        }
      }
      console.log(
        `${post ? 'POST' : 'GET'} ${t} rows (${Math.round(data.length / N)} B a line): ` +
          variants.map((v, i) => `${v.name} ${best[i].toFixed(1)} µs`).join('; '),
      )
    }
  }
} finally {
  await bench.close()
}
