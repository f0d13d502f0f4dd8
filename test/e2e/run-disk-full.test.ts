import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {appAndDatabase} from '../helpers/app-and-database.js'
import {jsonlLines} from '../helpers/jsonl.js'
import {type RunningServer, request, startRun, until} from '../helpers/run-server.js'
import {skipUnless} from '../helpers/skip.js'

/**
 * The journal and the JSONL files on a real, small file system (tmpfs) that
 * fills up. Mounting needs root (CI runs as root); elsewhere the test says
 * why it is skipped.
 */
describe('audit-logs run: the disk of the journal and the files fills up (subprocess, tmpfs, real PostgreSQL)', function () {
  this.timeout(120_000)
  let run: RunningServer | undefined
  let dir: string
  let journal: string
  let logs: string
  const mounted: string[] = []

  before(async function () {
    dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-diskfull-'))
    journal = path.join(dir, 'data', 'journal')
    logs = path.join(dir, 'logs')
    try {
      for (const fs of [journal, logs]) {
        mkdirSync(fs, {recursive: true})
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', fs], {stdio: 'pipe'})
        mounted.push(fs)
      }
    } catch (error) {
      skipUnless(this, false, `a tmpfs to fill (cannot mount one here: ${(error as Error).message.split('\n')[0]})`)
    }
  })
  after(async () => {
    await run?.stop()
    for (const fs of mounted) execFileSync('umount', ['-l', fs])
    rmSync(dir, {recursive: true, force: true})
  })

  const ctx = appAndDatabase() // registered here: made after the mount, closed after the run has stopped

  it("every request is still answered; the files catch up whole; the records the journal's disk refused are counted and alerted; recording resumes once there is room", async () => {
    run = await startRun(['--upstream', ctx.app.url, '--workers', '1'], {AUDIT_LOGS_DATABASE_URL: ctx.db.url}, {dir})
    const workerPid = () =>
      execFileSync('pgrep', ['-P', String(run!.child.pid)])
        .toString()
        .trim()
    const worker = workerPid()
    expect((await request(`${run.url}/json?phase=before`)).status).to.equal(200)
    await until(
      async () => (await ctx.db.client.query(`SELECT 1 FROM request_logs WHERE query->>'phase' = 'before'`)).rows[0],
      15_000,
      'the first record',
    )

    // a file system filled to the last byte
    const fill = (fs: string) => {
      try {
        execFileSync('dd', ['if=/dev/zero', `of=${path.join(fs, 'filler')}`, 'bs=64k'], {stdio: 'pipe'})
      } catch {
        // dd stops with "No space left on device": that is the point
      }
      return path.join(fs, 'filler')
    }

    // the files' disk is full: the journal holds their records, PostgreSQL gets them, the files sink retries
    let filler = fill(logs)
    for (let i = 0; i < 10; i++) expect((await request(`${run.url}/json?phase=files-full&i=${i}`)).status).to.equal(200)
    await until(
      async () =>
        (await ctx.db.client.query(`SELECT count(*)::int AS n FROM request_logs WHERE query->>'phase' = 'files-full'`)).rows[0].n === 10 ||
        undefined,
      15_000,
      "the records sent while the files' disk was full, in PostgreSQL",
    )
    await until(() => /sink files: .*ENOSPC.*retrying/.test(run!.stderr()) || undefined, 15_000, 'the files sink to retry')
    rmSync(filler)

    // the journal's disk is full: its records are lost, counted
    filler = fill(journal)
    const big = 'x'.repeat(4000)
    for (let i = 0; i < 20; i++) {
      const reply = await request(`${run.url}/echo?phase=full&i=${i}`, {method: 'POST', body: big, headers: {'content-type': 'text/plain'}})
      expect(reply.status).to.equal(200)
      expect(reply.body.toString()).to.equal(big)
    }
    const dropped = async () =>
      Number(/audit_logs_records_dropped_total (\d+)/.exec((await request(`${run!.adminUrl}/metrics`)).body.toString())?.[1] ?? 0)
    await until(async () => (await dropped()) > 0, 15_000, 'records the disk refused to be counted')
    expect(run.stderr()).to.match(/ALERT: \d+ records dropped: the journal could not be written: ENOSPC/)

    // room again: the same worker records again (it never crashed)
    rmSync(filler)
    for (let i = 0; i < 5; i++) expect((await request(`${run.url}/json?phase=after&i=${i}`)).status).to.equal(200)
    const after = await until(
      async () => {
        const n = (await ctx.db.client.query(`SELECT count(*)::int AS n FROM request_logs WHERE query->>'phase' = 'after'`)).rows[0].n
        return n === 5 ? n : undefined
      },
      15_000,
      'the records sent after the disk had room',
    )
    expect(after).to.equal(5)
    expect(workerPid()).to.equal(worker)

    const stopped = await run.stop()
    const stderr = run.stderr()
    run = undefined
    expect(stopped.exitCode).to.equal(0)
    // the drops as counted once everything was reported (the metric can trail the records that reached PostgreSQL)
    const droppedTotal = Number(/stopped: \d+ requests, \d+ records captured, (\d+) dropped/.exec(stderr)?.[1])
    // what was recorded is whole (every line of the files a complete record, the same in PostgreSQL), and
    // each record of the 20 requests sent while the disk was full is either recorded or counted as dropped
    const requests = jsonlLines(logs, 'requests').map((l) => JSON.parse(l))
    const access = jsonlLines(logs, 'access').map((l) => JSON.parse(l))
    expect(requests.filter((r) => r.query.phase === 'files-full')).to.have.length(10)
    expect((await ctx.db.client.query(`SELECT count(*)::int AS n FROM request_logs`)).rows[0].n).to.equal(requests.length)
    expect((await ctx.db.client.query(`SELECT count(*)::int AS n FROM access_logs`)).rows[0].n).to.equal(access.length)
    const recordedWhileFull =
      requests.filter((r) => r.query.phase === 'full').length + access.filter((r) => r.url.includes('phase=full')).length
    expect(droppedTotal).to.be.greaterThan(0)
    expect(recordedWhileFull + droppedTotal, `${recordedWhileFull} recorded, ${droppedTotal} dropped: ${stderr}`).to.equal(40)
  })
})
