import {expect} from 'chai'
import {execa} from 'execa'
import path from 'node:path'
import {generateRecords} from '../../src/generate/records.js'
import {ROOT} from '../helpers/cli.js'

const NOW = new Date('2026-11-24T00:00:00Z')

describe('record generator', () => {
  it('is deterministic for a seed', () => {
    const a = [...generateRecords({rows: 50, days: 10, seed: 1, now: NOW})]
    const b = [...generateRecords({rows: 50, days: 10, seed: 1, now: NOW})]
    const c = [...generateRecords({rows: 50, days: 10, seed: 2, now: NOW})]
    expect(a).to.deep.equal(b)
    expect(a).to.not.deep.equal(c)
  })

  it('spreads timestamps over the days asked, with UUIDv7 ids of the same instant', () => {
    const rows = [...generateRecords({rows: 5000, days: 180, seed: 3, now: NOW})]
    const times = rows.map((r) => Date.parse(String(r.created_at)))
    expect(Math.min(...times)).to.be.at.least(NOW.getTime() - 180 * 86_400_000)
    expect(Math.max(...times)).to.be.at.most(NOW.getTime())
    const months = new Set(rows.map((r) => String(r.created_at).slice(0, 7)))
    expect(months.size).to.be.at.least(6)
    const r = rows[0]
    expect(String(r.id)[14]).to.equal('7')
    expect(parseInt(String(r.id).replace(/-/g, '').slice(0, 12), 16)).to.equal(Date.parse(String(r.created_at)))
    expect(new Set(rows.map((x) => x.id)).size).to.equal(5000)
  })

  it('has a realistic status mix: mostly 2xx, some 4xx, a few 5xx', () => {
    const rows = [...generateRecords({rows: 20000, days: 30, seed: 4, now: NOW})]
    const share = (lo: number) => rows.filter((r) => Number(r.status_code) >= lo && Number(r.status_code) < lo + 100).length / rows.length
    expect(share(200)).to.be.within(0.7, 0.9)
    expect(share(400)).to.be.within(0.08, 0.2)
    expect(share(500)).to.be.within(0.002, 0.03)
    expect(new Set(rows.map((r) => r.user_id)).size).to.be.greaterThan(100)
  })

  it('bench/generate.js writes NDJSON', async () => {
    const {stdout, exitCode} = await execa(
      process.execPath,
      [path.join(ROOT, 'bench/generate.js'), '--rows', '20', '--days', '2', '--stdout'],
      {cwd: ROOT},
    )
    expect(exitCode).to.equal(0)
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines).to.have.length(20)
    expect(lines[0]).to.include.keys('id', 'created_at', 'method', 'path', 'status_code', 'duration_ms')
  })
})
