import {expect} from 'chai'
import type {ShipperStats} from '../../src/pipeline/shipper.js'
import {CatchUpTrigger, LagPacer} from '../../src/server/pacing.js'

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

describe('CatchUpTrigger: shipping catches up once a sink is catchUpLagBytes or catchUpLagMs of intake behind', () => {
  it('starts on the bound in time before the bound in bytes, and stops under a quarter of both', () => {
    const t = new CatchUpTrigger(32 * MB, 2000)
    // the journal takes in 4 MB a second; postgres is 4 MB behind: 1 s
    expect(t.wanted([sink('postgres', 0, 4 * MB)], 0)).to.equal(false)
    expect(t.wanted([sink('postgres', 4 * MB, 4 * MB)], 1000)).to.equal(false)
    // 10 MB behind (far under 32 MB), taking in 4 MB/s: 2.5 s
    expect(t.wanted([sink('postgres', 6 * MB, 10 * MB)], 3000)).to.equal(true)
    expect(t.lag.ms).to.be.closeTo(2500, 1)
    t.catchingUp = true
    // 2.5 MB behind at 4 MB/s: 0.625 s, still over a quarter of 2 s: still catching up
    expect(t.wanted([sink('postgres', 21.5 * MB, 2.5 * MB)], 5000)).to.equal(true)
    // 1.5 MB behind: 0.375 s, under a quarter of both bounds: done
    expect(t.wanted([sink('postgres', 26.5 * MB, 1.5 * MB)], 6000)).to.equal(false)
  })

  it('starts on the bytes alone, ignores a sink that is down, and never on a trickle', () => {
    const t = new CatchUpTrigger(32 * MB, 2000)
    expect(t.wanted([sink('postgres', 0, 33 * MB)], 0)).to.equal(true) // no rate known yet: the bytes decide
    const u = new CatchUpTrigger(32 * MB, 2000)
    expect(u.wanted([sink('postgres', 0, 100 * MB, 'connection refused'), sink('files', 0, 0)], 0)).to.equal(false)
    // 100 kB/s of traffic, 500 kB behind: 5 s, but under the 1 MiB floor
    const v = new CatchUpTrigger(32 * MB, 2000)
    expect(v.wanted([sink('postgres', 0, 0)], 0)).to.equal(false)
    expect(v.wanted([sink('postgres', 0, 0.5 * MB)], 5000)).to.equal(false)
  })

  it('a bound in time of 0 turns it off (the bytes alone decide)', () => {
    const t = new CatchUpTrigger(32 * MB, 0)
    expect(t.wanted([sink('postgres', 0, 0)], 0)).to.equal(false)
    expect(t.wanted([sink('postgres', 0, 20 * MB)], 2000)).to.equal(false)
    // catching up (on the bytes), it ends under a quarter of them, however fast the intake
    t.catchingUp = true
    expect(t.wanted([sink('postgres', 40 * MB, 5 * MB)], 4000)).to.equal(false)
  })
})

describe('CatchUpTrigger.behindWanted: shipping leaves the background priority while a sink lacks a byte catchUpLagMs old', () => {
  it('a backlog there at the start (a crash replayed) with no traffic: at the normal priority once it has waited the bound, back under a quarter of it', () => {
    const t = new CatchUpTrigger(32 * MB, 2000)
    // 10 kB left by the killed run: far under every bound in bytes, and no intake to estimate a time from
    expect(t.behindWanted([sink('mongo', 0, 10_000)], 0)).to.equal(false)
    expect(t.wanted([sink('mongo', 0, 10_000)], 1000)).to.equal(false)
    expect(t.behindWanted([sink('mongo', 0, 10_000)], 1999)).to.equal(false)
    expect(t.behindWanted([sink('mongo', 0, 10_000)], 2000)).to.equal(true)
    expect(t.lag.ageMs).to.equal(2000)
    t.behind = true
    // half of it delivered: the rest is as old (it was there at the start)
    expect(t.behindWanted([sink('mongo', 5000, 5000)], 2500)).to.equal(true)
    // all of it, and a new record since (first seen at 2,700): under a quarter of 2 s
    expect(t.behindWanted([sink('mongo', 10_000, 0)], 2600)).to.equal(false)
    expect(t.behindWanted([sink('mongo', 10_000, 300)], 2700)).to.equal(false)
    expect(t.lag.ageMs).to.equal(0)
  })

  it('a sink that keeps up under steady traffic never is; one that is down does not count; a bound of 0 turns it off', () => {
    const t = new CatchUpTrigger(32 * MB, 2000)
    for (let ms = 0; ms <= 10_000; ms += 250) {
      // 1 MB a second in, each sample delivered within the next tick
      const total = ms * 1000
      expect(t.behindWanted([sink('postgres', Math.max(0, total - 250_000), Math.min(total, 250_000))], ms), String(ms)).to.equal(false)
    }
    expect(t.lag.ageMs).to.be.at.most(250)
    const down = new CatchUpTrigger(32 * MB, 2000)
    expect(down.behindWanted([sink('postgres', 0, 5000, 'connection refused'), sink('files', 5000, 0)], 0)).to.equal(false)
    expect(down.behindWanted([sink('postgres', 0, 5000, 'connection refused'), sink('files', 5000, 0)], 60_000)).to.equal(false)
    const off = new CatchUpTrigger(32 * MB, 0)
    expect(off.behindWanted([sink('postgres', 0, 5000)], 0)).to.equal(false)
    expect(off.behindWanted([sink('postgres', 0, 5000)], 60_000)).to.equal(false)
  })

  it("each sink's own age (sinkAges), a sink that is down included, and measured with the bound off too", () => {
    const t = new CatchUpTrigger(32 * MB, 0)
    t.behindWanted([sink('postgres', 0, 5000, 'connection refused'), sink('files', 5000, 0)], 0)
    expect(t.behindWanted([sink('postgres', 0, 8000, 'connection refused'), sink('files', 8000, 0)], 90_000)).to.equal(false)
    expect(Object.fromEntries(t.sinkAges)).to.deep.equal({postgres: 90_000, files: 0})
    expect(t.lag.ageMs).to.equal(0) // a sink that is down does not count for the priority
    // it comes back and delivers what was there at 0: what it lacks now came at 90 s
    t.behindWanted([sink('postgres', 5000, 3000), sink('files', 8000, 0)], 95_000)
    expect(t.sinkAges.get('postgres')).to.equal(5000)
  })

  it('a sink down for hours: its samples thinned evenly, the age of what it lacks after a first delivery stays within a kept interval', () => {
    const t = new CatchUpTrigger(32 * MB, 2000)
    // an hour down, a sample every 250 ms, 1 kB a sample
    let ms = 0
    for (; ms <= 3_600_000; ms += 250) t.behindWanted([sink('postgres', 0, 1000 + ms * 4, 'connection refused')], ms)
    expect(t.sinkAges.get('postgres')).to.equal(3_600_000)
    // it comes back and delivers the first 10 kB: what it lacks now came in the first seconds of the outage
    t.behindWanted([sink('postgres', 10_000, 1000 + ms * 4 - 10_000)], ms)
    expect(t.sinkAges.get('postgres')).to.be.within(3_600_000 - 3_000, 3_600_250)
  })

  it('a journal that shrank as a sink counts it (a torn line skipped, not delivered): what it lacks is as old as before', () => {
    const t = new CatchUpTrigger(32 * MB, 2000)
    expect(t.behindWanted([sink('files', 0, 1000)], 0)).to.equal(false)
    // 100 bytes of a torn line skipped: 900 left, there since the start
    expect(t.behindWanted([sink('files', 0, 900)], 1500)).to.equal(false)
    expect(t.behindWanted([sink('files', 0, 900)], 2000)).to.equal(true)
    t.behind = true
    expect(t.behindWanted([sink('files', 900, 0)], 2500)).to.equal(false)
    expect(t.behindWanted([sink('files', 900, 50)], 3000)).to.equal(false) // 50 bytes first seen at 3,000
    t.behind = false
    expect(t.behindWanted([sink('files', 900, 50)], 5000)).to.equal(true)
  })
})
