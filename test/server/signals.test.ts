import {expect} from 'chai'
import {watchSignals} from '../../src/server/signals.js'

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
const counts = () => SIGNALS.map((s) => process.listenerCount(s))

describe('watchSignals: how run ends, and the listeners it adds', () => {
  it('a signal ends the run with 0, SIGHUP calls onHangup while it runs, and stop removes every listener it added (SIGHUP too)', async () => {
    const before = counts()
    const logged: string[] = []
    const shutdown = watchSignals((m) => logged.push(m), 15_000)
    let hangups = 0
    const running = shutdown.running({onHangup: () => hangups++})
    expect(counts()).to.deep.equal(before.map((n) => n + 1))
    process.emit('SIGHUP', 'SIGHUP')
    expect(hangups).to.equal(1)
    expect(shutdown.stopping).to.equal(false)
    process.emit('SIGTERM', 'SIGTERM')
    expect(await running).to.equal(0)
    expect(shutdown.stopping).to.equal(true)
    const deadline = shutdown.begin()
    expect(shutdown.begin()).to.equal(deadline) // one deadline for the whole shutdown
    process.emit('SIGINT', 'SIGINT') // a second signal does not cut it short
    shutdown.stop()
    expect(counts()).to.deep.equal(before)
    expect(logged[0]).to.equal('SIGHUP: reopening log files')
    expect(logged[1]).to.contain('SIGTERM: shutting down')
    expect(logged[2]).to.match(/^SIGINT: already shutting down \(at most 1[45] s more;/)
  })

  it('a signal that came while starting ends the run at once once started; stop removes the listeners also when it never ran', async () => {
    const before = counts()
    const shutdown = watchSignals(() => {}, 5000)
    process.emit('SIGINT', 'SIGINT')
    expect(await shutdown.running({onHangup: () => {}})).to.equal(0)
    shutdown.stop()
    expect(counts()).to.deep.equal(before)
  })

  it("the app's exit ends the run with its exit code", async () => {
    const shutdown = watchSignals(() => {}, 5000)
    try {
      const app = {exited: Promise.resolve(7)} as Parameters<typeof shutdown.running>[0]['app']
      expect(await shutdown.running({app, onHangup: () => {}})).to.equal(7)
    } finally {
      shutdown.stop()
    }
  })
})
