import {expect} from 'chai'
import type {ShipperStats} from '../../src/pipeline/shipper.js'
import {LagPacer} from '../../src/server/pacing.js'

const MB = 1024 * 1024
const sink = (name: string, deliveredBytes: number, lagBytes: number, lastError?: string): ShipperStats => ({
  name,
  written: 0,
  deliveredBytes,
  retried: 0,
  failures: 0,
  rejected: 0,
  catchUps: 0,
  lagBytes,
  lastError,
  caughtUp: false,
  deferred: false,
})

describe('LagPacer: new requests wait while a delivering sink is too far behind at its own pace', () => {
  it('paces when a sink would need more than maxLagMs at its measured pace, and lets go below 80% of it', () => {
    const pacer = new LagPacer(5000, 32 * MB)
    // postgres delivers 10 MB a second; its lag is 40 MB: 4 s, under the 5 s bound
    expect(pacer.update([sink('postgres', 0, 40 * MB)], 0)).to.equal(false)
    expect(pacer.update([sink('postgres', 20 * MB, 40 * MB)], 2000)).to.equal(false)
    // 60 MB behind at 10 MB/s: 6 s
    expect(pacer.update([sink('postgres', 40 * MB, 60 * MB)], 4000)).to.equal(true)
    expect(pacer.paced).to.equal(true)
    expect(pacer.worst).to.include({name: 'postgres', lagBytes: 60 * MB})
    expect(pacer.worst!.lagMs).to.be.closeTo(6000, 1)
    // 45 MB at 10 MB/s: 4.5 s, still above 80% of the bound
    expect(pacer.update([sink('postgres', 60 * MB, 45 * MB)], 6000)).to.equal(false)
    // 35 MB: 3.5 s, below 4 s: let go
    expect(pacer.update([sink('postgres', 80 * MB, 35 * MB)], 8000)).to.equal(true)
    expect(pacer.paced).to.equal(false)
  })

  it('leaves a sink that fails, or delivers nothing, to the journal (an outage), and ignores lags under minBytes', () => {
    const pacer = new LagPacer(5000, 32 * MB)
    pacer.update([sink('postgres', 0, 500 * MB, 'connect ECONNREFUSED'), sink('files', 0, 100 * MB), sink('x', 0, 10 * MB)], 0)
    // postgres down: huge lag but failing; files stuck on one write: nothing delivered; x: fast but small
    expect(
      pacer.update([sink('postgres', 0, 600 * MB, 'connect ECONNREFUSED'), sink('files', 0, 120 * MB), sink('x', MB, 20 * MB)], 2000),
    ).to.equal(false)
    expect(pacer.paced).to.equal(false)
  })

  it('does nothing with maxLagMs 0, nor before it has a second of pace', () => {
    const off = new LagPacer(0, MB)
    off.update([sink('postgres', 0, 900 * MB)], 0)
    expect(off.update([sink('postgres', MB, 900 * MB)], 5000)).to.equal(false)
    const early = new LagPacer(5000, MB)
    early.update([sink('postgres', 0, 900 * MB)], 0)
    expect(early.update([sink('postgres', MB, 900 * MB)], 500)).to.equal(false)
    expect(early.update([sink('postgres', 2 * MB, 900 * MB)], 1000)).to.equal(true)
  })
})
