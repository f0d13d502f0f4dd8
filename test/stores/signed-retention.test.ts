import {generateKeyPairSync} from 'node:crypto'
import {expect} from 'chai'
import {signRetention, signedRetention} from '../../src/stores/postgres/integrity.js'
import {type CutoffRow, honouredCutoffs} from '../../src/stores/postgres/prune.js'

const DAY = 86_400_000
const NOW = new Date('2026-12-07T12:00:00Z')

describe('retention cutoffs signed with integrityKey (pure)', () => {
  const {privateKey, publicKey} = generateKeyPairSync('ed25519')
  const other = generateKeyPairSync('ed25519')
  /** A cutoff cleanup applied `ago` days before NOW under a retention of `days`, signed with `key` unless null. */
  const recorded = (days: number, ago: number, key = privateKey as typeof privateKey | null): CutoffRow => {
    const at = new Date(NOW.getTime() - ago * DAY)
    const cutoff = new Date(at.getTime() - days * DAY)
    const signed = key ? signRetention(key, {store: 'postgres', logType: 'request', cutoff, days, at}) : {}
    // as PostgreSQL gives them back: microseconds
    const us = (d: Date) => d.toISOString().replace('Z', '000Z')
    return {log_type: 'request', cutoff: us(cutoff), written_at: us(at), how: `cleanup: ${days} days`, ...signed}
  }

  it('a statement checks only with its key and only for its own row', () => {
    const row = recorded(30, 10)
    expect(signedRetention(row, publicKey)).to.deep.equal({days: 30, at: NOW.getTime() - 10 * DAY})
    expect(signedRetention(row, other.publicKey)).to.equal('invalid')
    expect(signedRetention({...row, log_type: 'access'}, publicKey)).to.equal('invalid')
    expect(signedRetention({...row, cutoff: recorded(20, 10).cutoff}, publicKey)).to.equal('invalid')
    expect(signedRetention({...row, statement: row.statement!.replace('"days":30', '"days":20')}, publicKey)).to.equal('invalid')
    expect(signedRetention({...row, signature: null}, publicKey)).to.equal('invalid')
    expect(signedRetention(recorded(30, 10, null), publicKey)).to.equal(undefined)
  })

  it('a retention raised since: signed cutoffs are honoured by the retention they applied, with a note; unsigned ones are flagged', () => {
    const rows = [recorded(30, 40), recorded(30, 20), recorded(90, 1)]
    const signed = honouredCutoffs(rows, {request: 90}, NOW, publicKey)
    expect(signed.bad).to.deep.equal([])
    expect(signed.cutoffs.get('request')).to.equal(rows[1].cutoff) // the newest: 50 days ago, newer than the 90-day one
    expect(signed.notes).to.deep.equal([
      '2 request retention cutoff(s) were applied under a retention of 30 days, shorter than the 90 configured now: honoured, as the integrity key signed that retention when they were recorded',
    ])
    // no public key to check them with: bounded by the retention configured now, as before
    const unchecked = honouredCutoffs(rows, {request: 90}, NOW)
    expect(unchecked.bad.map((b) => b.cutoff)).to.deep.equal([rows[0].cutoff, rows[1].cutoff])
    expect(unchecked.cutoffs.get('request')).to.equal(rows[2].cutoff)
    expect(unchecked.notes).to.deep.equal([])
  })

  it('a signed cutoff newer than its own signed retention allows, or one signed by another key, is flagged', () => {
    // the statement says 30 days, but the cutoff is 5 days before it was recorded
    const at = new Date(NOW.getTime() - 2 * DAY)
    const cutoff = new Date(at.getTime() - 5 * DAY)
    const early = {
      log_type: 'request',
      cutoff: cutoff.toISOString(),
      written_at: at.toISOString(),
      ...signRetention(privateKey, {store: 'postgres', logType: 'request', cutoff, days: 30, at}),
    }
    const forged = recorded(7, 1, other.privateKey)
    const {bad, cutoffs} = honouredCutoffs([early, forged], {request: 90}, NOW, publicKey)
    expect(cutoffs.size).to.equal(0)
    expect(bad.map((b) => b.cutoff)).to.deep.equal([early.cutoff, forged.cutoff])
    expect(bad[0].why).not.to.contain('signed statement')
    expect(bad[1].why).to.contain('its signed statement does not check with the key')
  })
})
