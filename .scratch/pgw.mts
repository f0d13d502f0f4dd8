import {readFileSync} from 'node:fs'
import pg from 'pg'
import {v7 as uuidv7} from 'uuid'
import {acquireEmbedded} from '/work/main/src/embedded/server.ts'
import {clientConfig, withDatabase} from '/work/main/src/stores/postgres/connection.ts'
import {migrate} from '/work/main/src/stores/postgres/migrations.ts'
import {premake} from '/work/main/src/stores/postgres/partitions.ts'
import {writeLines} from '/work/main/src/stores/postgres/writer.ts'
const server = await acquireEmbedded('/tmp/pgw/data')
const admin = new pg.Client(clientConfig(server.adminUrl)); await admin.connect()
await admin.query('DROP DATABASE IF EXISTS pgw'); await admin.query('CREATE DATABASE pgw')
const db = new pg.Client(clientConfig(withDatabase(server.adminUrl, 'pgw'))); await db.connect()
await migrate(db); await premake(db, {interval: 'month', ahead: 1})
if (process.env.EXT) await db.query('ALTER TABLE request_logs ALTER COLUMN request_body SET STORAGE EXTERNAL, ALTER COLUMN response_body SET STORAGE EXTERNAL, ALTER COLUMN request_headers SET STORAGE EXTERNAL, ALTER COLUMN response_headers SET STORAGE EXTERNAL')
const post = readFileSync('/tmp/postlines.jsonl', 'utf8').trim().split('\n')
const access = readFileSync('/tmp/accesslines.jsonl', 'utf8').trim().split('\n')
const pid = (await db.query('SELECT pg_backend_pid() AS p')).rows[0].p
const cpu = () => { const s = readFileSync(`/proc/${pid}/stat`, 'utf8'); const f = s.slice(s.lastIndexOf(')') + 2).split(' '); return (Number(f[11]) + Number(f[12])) / 100 }
const fresh = (l: string) => l.replace(/"id":"[^"]+"/, `"id":"${uuidv7()}"`)
for (const [name, src, type] of [['POST request lines', post, 'request'], ['access lines', access, 'access']] as const) {
  for (let round = 0; round < 2; round++) {
    const N = 20000, B = 1000
    const c0 = cpu(), t0 = performance.now()
    for (let i = 0; i < N; i += B) await writeLines(db, type, Array.from({length: B}, (_, k) => fresh(src[(i + k) % src.length])))
    const t = performance.now() - t0
    console.log(name, `${(t * 1000 / N).toFixed(0)} µs/row wall, backend CPU ${((cpu() - c0) * 1e6 / N).toFixed(0)} µs/row`)
  }
}
console.log((await db.query("SELECT pg_size_pretty(pg_total_relation_size('request_logs_default')) s, (SELECT string_agg(relname||':'||pg_size_pretty(pg_total_relation_size(oid)), ' ') FROM pg_class WHERE relname LIKE 'request_logs_p%' AND relkind='r') p")).rows[0]);
await db.end(); await admin.end(); await server.release()
