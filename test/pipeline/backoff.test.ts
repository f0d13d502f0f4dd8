import {expect} from 'chai'
import {backoffMs} from '../../src/pipeline/backoff.js'

describe('backoff', () => {
  it('backs off exponentially with full jitter (anywhere from a few ms up to the capped ceiling)', () => {
    // full jitter, as AWS describes it: random between 0 and min(cap, base * 2^(attempt-1)); a 10 ms floor
    expect(backoffMs(1, 200, 30_000, () => 0)).to.equal(10)
    expect(backoffMs(1, 200, 30_000, () => 0.25)).to.equal(50)
    expect(backoffMs(1, 200, 30_000, () => 1)).to.equal(200)
    expect(backoffMs(4, 200, 30_000, () => 0)).to.equal(10) // not half the ceiling: that was equal jitter
    expect(backoffMs(4, 200, 30_000, () => 0.5)).to.equal(800)
    expect(backoffMs(4, 200, 30_000, () => 1)).to.equal(1600)
    expect(backoffMs(30, 200, 30_000, () => 0.1)).to.equal(3000)
    expect(backoffMs(30, 200, 30_000, () => 1)).to.equal(30_000)
    expect(backoffMs(1, 4, 30_000, () => 0)).to.equal(4) // the floor never exceeds the ceiling
  })
})
