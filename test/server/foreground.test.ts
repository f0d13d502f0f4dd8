import {expect} from 'chai'
import {ForegroundLoad} from '../../src/server/foreground.js'

describe('foreground load', () => {
  it("knows when the proxy workers are saturated: enters at 85% of a worker's event loop, leaves below 60% on all, forgets a silent worker", () => {
    const load = new ForegroundLoad()
    expect(load.report(1, 0.5, 0)).to.equal(false)
    expect(load.report(2, 0.9, 0)).to.equal(true)
    expect(load.busy).to.equal(true)
    expect(load.report(2, 0.7, 500)).to.equal(false) // between the marks: stays busy
    expect(load.report(2, 0.3, 1000)).to.equal(true)
    expect(load.busy).to.equal(false)
    expect(load.report(1, 0.95, 1500)).to.equal(true)
    expect(load.update(3000)).to.equal(false) // worker 1 reported 1.5 s ago: still counts
    expect(load.update(3600)).to.equal(true) // silent for over 2 s (it died): idle
    expect(load.busy).to.equal(false)
  })
})
