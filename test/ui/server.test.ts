import {expect} from 'chai'
import {fillPeriods} from '../../src/ui/server.js'

describe('the dashboard histogram over the range asked for', () => {
  it('has every period of the range, the empty ones as zeros, the stores’ own kept', () => {
    const hist = [{period: '2026-12-06T10:03:00.000Z', count: 4, errors: 1}]
    const out = fillPeriods(hist, 'minute', new Date('2026-12-06T10:00:30Z'), new Date('2026-12-06T10:05:10Z'))
    expect(out.map((h) => h.period.slice(11, 16))).to.deep.equal(['10:00', '10:01', '10:02', '10:03', '10:04', '10:05'])
    expect(out[3]).to.deep.equal(hist[0])
    expect(out.filter((h) => h.count === 0)).to.have.length(5)
  })

  it('without a start, runs from the first period with records; a range too long for the chart keeps the stores’ periods only', () => {
    const hist = [
      {period: '2026-12-01T00:00:00.000Z', count: 1, errors: 0},
      {period: '2026-12-04T00:00:00.000Z', count: 2, errors: 0},
    ]
    expect(fillPeriods(hist, 'day', undefined, new Date('2026-12-04T12:00:00Z'))).to.have.length(4)
    expect(fillPeriods(hist, 'minute', new Date('2000-01-01T00:00:00Z'), new Date('2026-12-04T12:00:00Z'))).to.deep.equal(hist)
    expect(fillPeriods([], 'hour', undefined, new Date())).to.deep.equal([])
  })
})
