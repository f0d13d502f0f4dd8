import {createReadStream, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {execa} from 'execa'
import pg from 'pg'
import {generateRecords} from '../../src/generate/records.js'
import {clientConfig} from '../../src/stores/postgres/connection.js'
import {writeBatchesConcurrently} from '../../src/stores/postgres/writer.js'
import {BIN} from '../helpers/cli.js'
import {type TestDatabase, freshDatabase} from '../helpers/db.js'

async function countLines(file: string): Promise<number> {
  let n = 0
  for await (const chunk of createReadStream(file))
    for (let i = (chunk as Buffer).indexOf(10); i >= 0; i = (chunk as Buffer).indexOf(10, i + 1)) n++
  return n
}

describe('export of 1,000,000 rows (subprocess, real PostgreSQL)', function () {
  this.timeout(300_000)
  let db: TestDatabase
  const ROWS = 1_000_000

  before(async () => {
    db = await freshDatabase({migrated: true})
    const second = new pg.Client(clientConfig(db.url))
    await second.connect()
    function* batches() {
      let batch: string[] = []
      for (const r of generateRecords({rows: ROWS, days: 5, seed: 9, order: 'time'})) {
        batch.push(JSON.stringify(r))
        if (batch.length === 10_000) {
          yield batch
          batch = []
        }
      }
      if (batch.length) yield batch
    }
    await writeBatchesConcurrently([db.client, second], 'request', batches())
    await second.end()
  })
  after(() => db.drop())

  for (const format of ['ndjson', 'csv']) {
    it(`${format}: every row, in bounded memory`, async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-export-large-'))
      const out = path.join(dir, `all.${format}`)
      const child = execa(process.execPath, [BIN, 'export', '--format', format, '--out', out, '--json'], {
        env: {AUDIT_LOGS_DATABASE_URL: db.url, OCLIF_SKIP_NEW_VERSION_CHECK: '1'},
        reject: false,
      })
      let peakKb = 0
      const sampler = setInterval(() => {
        try {
          peakKb = Math.max(peakKb, Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]))
        } catch {
          // the process ended between two samples
        }
      }, 50)
      const result = await child
      clearInterval(sampler)
      try {
        expect(result.exitCode, result.stderr).to.equal(0)
        expect(JSON.parse(result.stdout).rows).to.equal(ROWS)
        // NDJSON: one line per row; CSV: a header, and bodies here hold no line breaks
        expect(await countLines(out)).to.equal(format === 'csv' ? ROWS + 1 : ROWS)
        expect(statSync(out).size).to.be.greaterThan(ROWS * 100)
        expect(peakKb / 1024, 'peak RSS in MB').to.be.lessThan(200)
      } finally {
        rmSync(dir, {recursive: true, force: true})
      }
    })
  }
  for (const format of ['ndjson', 'json']) {
    it(`${format}: Ctrl-C in the middle exits 130 and leaves no file behind`, async () => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-export-int-'))
      const out = path.join(dir, `all.${format}`)
      const child = execa(process.execPath, [BIN, 'export', '--format', format, '--out', out], {
        env: {AUDIT_LOGS_DATABASE_URL: db.url, OCLIF_SKIP_NEW_VERSION_CHECK: '1'},
        reject: false,
      })
      try {
        // interrupt once the partial file has data, well before the end
        const t0 = Date.now()
        while (!(existsSync(`${out}.partial`) && statSync(`${out}.partial`).size > 1_000_000)) {
          if (child.exitCode !== null || Date.now() - t0 > 60_000) throw new Error(`export ended or never started: ${child.exitCode}`)
          await new Promise((r) => setTimeout(r, 20))
        }
        child.kill('SIGINT')
        const result = await child
        expect(result.exitCode, result.stderr).to.equal(130)
        expect(result.stderr).to.match(/interrupt/i)
        expect(readdirSync(dir)).to.deep.equal([])
      } finally {
        child.kill('SIGKILL')
        rmSync(dir, {recursive: true, force: true})
      }
    })
  }
})
