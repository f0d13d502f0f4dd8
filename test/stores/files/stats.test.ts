import {expect} from 'chai'
import {parseFilter} from '../../../src/filters/parse.js'
import {statsOfRecords} from '../../../src/stores/files/stats.js'
import type {Row} from '../../../src/stores/source.js'

async function* rows(n: number, make: (i: number) => Row): AsyncGenerator<Row> {
  for (let i = 0; i < n; i++) yield make(i)
}

const at = (i: number) => new Date(Date.UTC(2026, 10, 1) + i * 1000).toISOString()

describe('stats of the JSONL files (one streaming pass)', () => {
  it('percentiles as percentile_cont gives them, classes, flags and the hourly histogram', async () => {
    const s = await statsOfRecords(
      rows(100, (i) => ({
        created_at: at(i * 60),
        status_code: i % 10 === 0 ? 503 : 200,
        duration_ms: i + 1,
        path: `/p${i % 3}`,
        user_id: i % 2 ? 'u1' : null,
        ip: '10.0.0.1',
        flags: i === 5 ? ['slow', 'suspicious:sqli'] : [],
      })),
      parseFilter({}),
      {bucket: 'hour', top: 2},
    )
    expect(s.total).to.equal(100)
    expect(s.byClass).to.deep.equal({'1xx': 0, '2xx': 90, '3xx': 0, '4xx': 0, '5xx': 10})
    expect(s.errorRate).to.equal(0.1)
    // durations 1..100: p50 = 50.5, p95 = 95.05, p99 = 99.01 (linear interpolation between ranks)
    expect(s.durationMs).to.deep.equal({p50: 50.5, p95: 95.05, p99: 99.01})
    expect([s.slow, s.suspicious]).to.deep.equal([1, 1])
    expect(s.topPaths).to.deep.equal([
      {path: '/p0', count: 34},
      {path: '/p1', count: 33},
    ])
    expect(s.topUsers).to.deep.equal([{user: 'u1', count: 50}])
    expect(s.histogram.map((h) => h.count)).to.deep.equal([60, 40])
    expect(s.histogram[0]).to.deep.equal({period: '2026-11-01T00:00:00.000Z', count: 60, errors: 6})
    expect(s).to.not.have.property('approximate')
  })

  it('past its memory bound: says which figures are estimates, and still finds the heavy hitters', async () => {
    // 20,000 distinct addresses once each, and one address in a fifth of the records
    const s = await statsOfRecords(
      rows(25_000, (i) => ({
        created_at: at(i),
        status_code: 200,
        duration_ms: i % 1000,
        path: '/',
        ip: i % 5 === 0 ? '192.0.2.1' : `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
      })),
      parseFilter({}),
      {bucket: 'day', top: 1},
      {durations: 1000, keys: 100},
    )
    expect(s.total).to.equal(25_000)
    expect(s.approximate).to.deep.equal(['durationMs', 'topIps'])
    expect(s.topIps[0].ip).to.equal('192.0.2.1')
    expect(s.topPaths).to.deep.equal([{path: '/', count: 25_000}]) // one key: exact
    expect(s.durationMs.p50).to.be.within(400, 600) // a uniform sample of 0..999
  })

  it('bounds the text of the keys too: 5,000 distinct 10 kB paths and one frequent short one', async () => {
    const s = await statsOfRecords(
      rows(6000, (i) => ({
        created_at: at(i),
        status_code: 200,
        duration_ms: 1,
        path: i % 6 === 0 ? '/hot' : `/scan/${i}/${'x'.repeat(10_000)}`,
      })),
      parseFilter({}),
      {bucket: 'day', top: 1},
      {durations: 10_000, keys: 100_000, keyChars: 1_000_000},
    )
    expect(s.approximate).to.deep.equal(['topPaths'])
    expect(s.topPaths[0].path).to.equal('/hot')
  })

  it('skips a line that is not one of its records (no created_at) instead of failing', async () => {
    const {parseLine} = await import('../../../src/stores/files/reader.js')
    expect(parseLine('{"msg":"x"}')).to.equal(undefined)
    expect(parseLine('{"created_at":"not a time"}')).to.equal(undefined)
    expect(parseLine('{"created_at":"2026-11-01T00:00:00.000Z","log_type":"request","id":"a"}')).to.deep.equal({
      created_at: '2026-11-01T00:00:00.000Z',
      id: 'a',
    })
  })
})
