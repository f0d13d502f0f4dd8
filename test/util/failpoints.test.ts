import {existsSync} from 'node:fs'
import {expect} from 'chai'
import {enabled, failpoint, once, shareFailpoints} from '../../src/util/failpoints.js'

describe('failpoints: AUDIT_LOGS_FAILPOINT, called by name', () => {
  const saved = process.env.AUDIT_LOGS_FAILPOINT
  afterEach(() => {
    if (saved === undefined) delete process.env.AUDIT_LOGS_FAILPOINT
    else process.env.AUDIT_LOGS_FAILPOINT = saved
  })

  it('unset, none does anything', () => {
    delete process.env.AUDIT_LOGS_FAILPOINT
    expect(enabled('proxy-busy')).to.equal(false)
    expect(once('builder-crash')).to.equal(false)
    expect(() => failpoint('builder-crash')).to.not.throw()
    const started = Date.now()
    failpoint('builder-slow')
    expect(Date.now() - started).to.be.lessThan(250)
    expect(shareFailpoints()()).to.equal(undefined)
  })

  it('once fires once in the whole run: the marker directory the primary shares decides, and goes at the end', () => {
    process.env.AUDIT_LOGS_FAILPOINT = 'shipping-crash'
    const release = shareFailpoints()
    const dir = process.env.AUDIT_LOGS_FAILPOINT_MARKERS!
    try {
      expect(existsSync(dir)).to.equal(true)
      expect(once('builder-crash')).to.equal(false) // not the one set
      expect(() => failpoint('shipping-crash')).to.throw('failpoint shipping-crash: the shipping thread dies')
      expect(() => failpoint('shipping-crash')).to.not.throw() // a thread started again, another process: the marker is there
      expect(once('shipping-crash')).to.equal(false)
    } finally {
      release()
    }
    expect(existsSync(dir)).to.equal(false)
    expect(process.env.AUDIT_LOGS_FAILPOINT_MARKERS).to.equal(undefined)
  })

  it('builder-slow stalls the thread that calls it', () => {
    process.env.AUDIT_LOGS_FAILPOINT = 'builder-slow'
    const started = Date.now()
    failpoint('builder-slow')
    expect(Date.now() - started).to.be.at.least(250)
  })
})
