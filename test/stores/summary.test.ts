import {expect} from 'chai'
import {prng} from '../../src/generate/records.js'
import {Slowest, averageMs, byteOrder} from '../../src/stores/summary.js'
import {type TestDatabase, freshDatabase} from '../helpers/db.js'

describe('the shared pieces of stats', () => {
  it('byteOrder: the order of UTF-8 bytes (COLLATE "C"), surrogate pairs after U+E000–U+FFFF', () => {
    const words = ['', 'a', 'ab', 'b', '/é', '/日本', '/\uffff', '/\ue000', '/😀', '/😀x', '/𝄞', 'Z', '~']
    const bytes = [...words].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    expect([...words].sort(byteOrder)).to.deep.equal(bytes)
    expect([...words].sort()).to.not.deep.equal(bytes) // UTF-16 units order differs
  })

  it('averageMs: to 0.1 ms, half away from zero, whatever the float error of the sum', () => {
    expect(averageMs(20.05, 1)).to.equal(20.1) // 20.05 × 10 is 200.49999999999997 in floats
    expect(averageMs(12.35, 1)).to.equal(12.4)
    expect(averageMs(0.1 + 0.2, 2)).to.equal(0.2) // 0.15
    expect(averageMs(20.6, 2)).to.equal(10.3)
    expect(averageMs(0.0449, 1)).to.equal(0)
    expect(averageMs(7, 3)).to.equal(2.3)
    expect(averageMs(-0.05, 1)).to.equal(-0.1)
  })

  it('Slowest: the `top` slowest by mean, ties by path, in memory for `top` of them', () => {
    const s = new Slowest(3)
    for (const [path, sum, count] of [
      ['/b', 10.3, 1],
      ['/a', 20.6, 2],
      ['/c', 1, 1],
      ['/d', 50, 1],
      ['/0', 10.34, 1],
    ] as const)
      s.add(path, {count, sum, max: sum})
    expect(s.list().map((p) => [p.path, p.avgMs])).to.deep.equal([
      ['/d', 50],
      ['/0', 10.3],
      ['/a', 10.3],
    ])
    const none = new Slowest(0)
    none.add('/x', {count: 1, sum: 1, max: 1})
    expect(none.list()).to.deep.equal([])
  })

  describe('averageMs and PostgreSQL (real PostgreSQL)', function () {
    this.timeout(60_000)
    let db: TestDatabase
    before(async () => {
      db = await freshDatabase()
    })
    after(() => db?.drop())

    it("give the same mean as statsSlowPaths' SQL for 5,000 groups of durations recorded to the 0.01 or 0.001 ms", async () => {
      const rand = prng(5)
      const groups: number[] = []
      const durations: number[] = []
      for (let g = 0; g < 5000; g++) {
        const n = 1 + Math.floor(rand() * 4)
        const scale = g % 2 ? 100 : 1000
        for (let i = 0; i < n; i++) {
          groups.push(g)
          durations.push(Math.round(rand() * 2000 * scale) / scale)
        }
      }
      const {rows} = await db.client.query(
        `SELECT g, round(round(sum(d)::numeric, 3) / count(d), 1) AS avg FROM unnest($1::int[], $2::float8[]) AS t(g, d) GROUP BY g ORDER BY g`,
        [groups, durations],
      )
      const sums = new Map<number, {sum: number; count: number}>()
      groups.forEach((g, i) => {
        const s = sums.get(g) ?? {sum: 0, count: 0}
        s.sum += durations[i]
        s.count++
        sums.set(g, s)
      })
      const fromNode = [...sums.values()].map((s) => averageMs(s.sum, s.count))
      expect(rows.map((r) => Number(r.avg))).to.deep.equal(fromNode)
      // half-way means (x.x5 exactly) are among them, those a float rounding gets wrong
      const halfway = [...sums.values()].filter((s) => {
        const micros = Math.round(s.sum * 1000)
        return micros % (10 * s.count) === 0 && (micros / (10 * s.count)) % 10 === 5
      })
      expect(halfway.length).to.be.greaterThan(20)
    })
  })
})
