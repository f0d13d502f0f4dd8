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
    expect(s.approximate).to.deep.equal(['topPaths', 'slowPaths']) // no 5xx: no failing path to miscount
    expect(s.topPaths[0].path).to.equal('/hot')
  })

  it('the slowest and the most failing paths: means to 0.1 ms rounded half up, ties by path in byte order', async () => {
    const records: Row[] = [
      // /a: 10.25 and 10.35, mean 10.3; /b: 10.3; /c: 20.05 → 20.1 (half up); /d: no duration
      {path: '/a', duration_ms: 10.25, status_code: 500},
      {path: '/a', duration_ms: 10.35, status_code: 200},
      {path: '/b', duration_ms: 10.3, status_code: 503},
      {path: '/c', duration_ms: 20.05, status_code: 200},
      {path: '/d', duration_ms: null, status_code: 502},
      {path: '/d', duration_ms: null, status_code: 504},
      {path: '/é', duration_ms: 1, status_code: 500},
      {path: '/😀', duration_ms: 1, status_code: 500}, // after /é and after U+FFFD in byte order, before in UTF-16 units
      {path: '/\ufffd', duration_ms: 1, status_code: 500},
      {path: null, duration_ms: 99, status_code: 500},
    ].map((r, i) => ({created_at: at(i), ...r}))
    const s = await statsOfRecords(
      rows(records.length, (i) => records[i]),
      parseFilter({}),
      {bucket: 'day', top: 4},
    )
    expect(s.slowPaths).to.deep.equal([
      {path: '/c', count: 1, avgMs: 20.1, maxMs: 20.05},
      {path: '/a', count: 2, avgMs: 10.3, maxMs: 10.35},
      {path: '/b', count: 1, avgMs: 10.3, maxMs: 10.3},
      {path: '/é', count: 1, avgMs: 1, maxMs: 1},
    ])
    expect(s.failingPaths).to.deep.equal([
      {path: '/d', count: 2, errors: 2},
      {path: '/a', count: 2, errors: 1},
      {path: '/b', count: 1, errors: 1},
      {path: '/é', count: 1, errors: 1},
    ])
    const all = await statsOfRecords(
      rows(records.length, (i) => records[i]),
      parseFilter({}),
      {bucket: 'day', top: 10},
    )
    expect(all.failingPaths.slice(3).map((p) => p.path)).to.deep.equal(['/é', '/\ufffd', '/😀'])
    expect(all.slowPaths.map((p) => p.path)).to.deep.equal(['/c', '/a', '/b', '/é', '/\ufffd', '/😀'])
  })

  it('an access record is listed by its url without the query', async () => {
    const s = await statsOfRecords(
      rows(3, (i) => ({created_at: at(i), url: i ? '/x?q=1' : '/x', duration_ms: i, status_code: 500 + i})),
      parseFilter({logType: 'access'}),
      {bucket: 'day', top: 10},
    )
    expect(s.slowPaths).to.deep.equal([{path: '/x', count: 3, avgMs: 1, maxMs: 2}])
    expect(s.failingPaths).to.deep.equal([{path: '/x', count: 3, errors: 3}])
  })

  it('past its memory bound the path lists are named as estimates, and the slowest path and the most failing one still lead', async () => {
    // 3,000 distinct paths once each, one slow path, one path failing in a tenth of the records
    const s = await statsOfRecords(
      rows(3000, (i) => ({
        created_at: at(i),
        path: i % 10 === 0 ? '/failing' : i === 1501 ? '/slow' : `/p/${i}`,
        duration_ms: i === 1501 ? 5000 : 1,
        status_code: i % 10 === 0 ? 500 : 200,
      })),
      parseFilter({}),
      {bucket: 'day', top: 1},
      {durations: 10_000, keys: 100},
    )
    expect(s.approximate).to.deep.equal(['topPaths', 'slowPaths', 'failingPaths'])
    expect(s.slowPaths).to.deep.equal([{path: '/slow', count: 1, avgMs: 5000, maxMs: 5000}])
    expect(s.failingPaths[0]).to.include({path: '/failing', errors: 300})
  })

  it('the histogram by the minute (UTC), as date_trunc gives it', async () => {
    const s = await statsOfRecords(
      rows(5, (i) => ({created_at: new Date(Date.UTC(2026, 10, 1, 23, 59, 30) + i * 20_000).toISOString(), path: '/', status_code: 500})),
      parseFilter({}),
      {bucket: 'minute', top: 1},
    )
    expect(s.histogram).to.deep.equal([
      {period: '2026-11-01T23:59:00.000Z', count: 2, errors: 2},
      {period: '2026-11-02T00:00:00.000Z', count: 3, errors: 3},
    ])
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
