import {mkdtempSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {defaultJournalBytes, journalBound} from '../../src/pipeline/journal-bound.js'

const GiB = 1024 ** 3

describe('the journal bound', () => {
  it('defaults to a quarter of the free space, at least 1 GiB (never more than half of what is free) and at most 64 GiB', () => {
    expect(defaultJournalBytes(40 * GiB)).to.equal(10 * GiB)
    expect(defaultJournalBytes(3 * GiB)).to.equal(GiB) // the floor
    expect(defaultJournalBytes(GiB)).to.equal(GiB / 2) // a small disk: half of it, not all of it
    expect(defaultJournalBytes(1000 * GiB)).to.equal(64 * GiB) // the cap
  })

  it("is the configured value when there is one, else derived from the journal directory's file system", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'audit-logs-bound-'))
    expect(journalBound(5_000_000, dir)).to.deep.equal({bytes: 5_000_000})
    const derived = journalBound(undefined, dir)
    expect(derived.derived!.freeBytes).to.be.greaterThan(0)
    expect(derived.bytes).to.equal(defaultJournalBytes(derived.derived!.freeBytes))
  })
})
