import {expect} from 'chai'
import {cutoffFor, nextPeriod, partitionName, periodStart, plannedPeriods} from '../../src/stores/postgres/periods.js'

const d = (s: string) => new Date(s)

describe('partition periods', () => {
  it('finds the start of a month, ISO week and day in UTC', () => {
    expect(periodStart(d('2026-11-24T23:59:59Z'), 'month').toISOString()).to.equal('2026-11-01T00:00:00.000Z')
    expect(periodStart(d('2026-11-24T12:00:00Z'), 'week').toISOString()).to.equal('2026-11-23T00:00:00.000Z')
    expect(periodStart(d('2026-11-29T12:00:00Z'), 'week').toISOString()).to.equal('2026-11-23T00:00:00.000Z')
    expect(periodStart(d('2026-11-24T12:34:00Z'), 'day').toISOString()).to.equal('2026-11-24T00:00:00.000Z')
  })

  it('steps across year ends', () => {
    expect(nextPeriod(d('2026-12-01T00:00:00Z'), 'month').toISOString()).to.equal('2027-01-01T00:00:00.000Z')
    expect(nextPeriod(d('2026-12-28T00:00:00Z'), 'week').toISOString()).to.equal('2027-01-04T00:00:00.000Z')
  })

  it('plans the current period plus N ahead, contiguous', () => {
    const periods = plannedPeriods(d('2026-11-24T10:00:00Z'), 'month', 3)
    expect(periods).to.have.length(4)
    expect(periods[0].from.toISOString()).to.equal('2026-11-01T00:00:00.000Z')
    for (let i = 1; i < periods.length; i++) expect(periods[i].from.getTime()).to.equal(periods[i - 1].to.getTime())
    expect(periods[3].to.toISOString()).to.equal('2027-03-01T00:00:00.000Z')
  })

  it('names partitions by their start', () => {
    expect(partitionName('request_logs', d('2026-11-01T00:00:00Z'))).to.equal('request_logs_p20261101')
  })

  it('computes the retention cutoff in whole days', () => {
    expect(cutoffFor(d('2026-11-24T00:00:00Z'), 90).toISOString()).to.equal('2026-08-26T00:00:00.000Z')
  })
})
