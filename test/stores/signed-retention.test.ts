import {generateKeyPairSync, sign as signWith} from 'node:crypto'
import {expect} from 'chai'
import {signRetention, signedRetention} from '../../src/stores/postgres/integrity.js'
import {type CutoffRow, cutoffAt, honouredCutoffs, newestCutoffAt} from '../../src/stores/postgres/prune.js'

const DAY = 86_400_000
const NOW = new Date('2026-12-07T12:00:00Z')

describe('retention cutoffs signed with integrityKey (pure)', () => {
  const {privateKey, publicKey} = generateKeyPairSync('ed25519')
  const other = generateKeyPairSync('ed25519')
  const signer = {publicKey, store: 'postgres' as const}
  const sign_ = (text: string) => signWith(null, Buffer.from(text), privateKey).toString('base64')
  /** A cutoff cleanup applied `ago` days before NOW under a retention of `days`, signed with `key` unless null. */
  const recorded = (
    days: number,
    ago: number,
    key = privateKey as typeof privateKey | null,
    heads: Record<string, number> = {a: 10},
  ): CutoffRow => {
    const at = new Date(NOW.getTime() - ago * DAY)
    const cutoff = new Date(at.getTime() - days * DAY)
    const signed = key ? signRetention(key, {store: 'postgres', logType: 'request', cutoff, days, at, heads}) : {}
    // as PostgreSQL gives them back: microseconds
    const us = (d: Date) => d.toISOString().replace('Z', '000Z')
    return {log_type: 'request', cutoff: us(cutoff), written_at: us(at), how: `cleanup: ${days} days`, ...signed}
  }

  it('a statement checks only with its key, and only for its own row and store', () => {
    const row = recorded(30, 10)
    expect(signedRetention(row, publicKey, 'postgres')).to.deep.equal({days: 30, at: NOW.getTime() - 10 * DAY, heads: {a: 10}})
    expect(signedRetention(row, publicKey, 'mongo')).to.equal('invalid') // a statement of PostgreSQL's copied into MongoDB
    expect(signedRetention(row, other.publicKey, 'postgres')).to.equal('invalid')
    expect(signedRetention({...row, log_type: 'access'}, publicKey, 'postgres')).to.equal('invalid')
    expect(signedRetention({...row, cutoff: recorded(20, 10).cutoff}, publicKey, 'postgres')).to.equal('invalid')
    expect(signedRetention({...row, statement: row.statement!.replace('"days":30', '"days":20')}, publicKey, 'postgres')).to.equal(
      'invalid',
    )
    expect(signedRetention({...row, statement: row.statement!.replace('"a":10', '"a":99')}, publicKey, 'postgres')).to.equal('invalid')
    expect(signedRetention({...row, signature: null}, publicKey, 'postgres')).to.equal('invalid')
    // signed, but not a statement verify reads: another version, or heads that are not seqs
    const sign = (body: object) => {
      const statement = JSON.stringify(body)
      return {...row, statement, signature: sign_(statement)}
    }
    const good = JSON.parse(row.statement!) as Record<string, unknown>
    expect(signedRetention(sign({...good, v: 2}), publicKey, 'postgres')).to.equal('invalid')
    expect(signedRetention(sign({...good, heads: {a: '10'}}), publicKey, 'postgres')).to.equal('invalid')
    expect(signedRetention(sign({...good, heads: undefined}), publicKey, 'postgres')).to.equal('invalid')
    expect(signedRetention(sign(good), publicKey, 'postgres')).to.deep.equal({days: 30, at: NOW.getTime() - 10 * DAY, heads: {a: 10}})
    expect(signedRetention(recorded(30, 10, null), publicKey, 'postgres')).to.equal(undefined)
  })

  it('a retention raised since: signed cutoffs cover the batches they name, by the retention they applied; unsigned ones are flagged', () => {
    const rows = [recorded(30, 40, privateKey, {a: 5}), recorded(30, 20, privateKey, {a: 10, b: 3}), recorded(90, 1)]
    const c = honouredCutoffs(rows, {request: 90}, NOW, signer)
    expect(c.bad).to.deep.equal([])
    expect(c.configured.get('request')).to.equal(rows[2].cutoff) // 91 days ago: covers every batch
    expect(c.notes).to.deep.equal([
      '2 request retention cutoff(s) were applied under a retention of 30 days, shorter than the 90 configured now: honoured for the records chained before them, as the integrity key signed that retention when they were applied',
    ])
    // a record in batch 10 of instance a: the newest signed cutoff that names it (50 days ago)
    expect(cutoffAt(c, 'request', 'a', 10)).to.equal(rows[1].cutoff)
    expect(cutoffAt(c, 'request', 'a', 4)).to.equal(rows[1].cutoff)
    expect(cutoffAt(c, 'request', 'b', 3)).to.equal(rows[1].cutoff)
    // chained after them (an import of old records, a replay): only the configured retention covers it
    expect(cutoffAt(c, 'request', 'a', 11)).to.equal(rows[2].cutoff)
    expect(cutoffAt(c, 'request', 'b', 4)).to.equal(rows[2].cutoff)
    expect(cutoffAt(c, 'request', 'c', 1)).to.equal(rows[2].cutoff)
    expect(cutoffAt(c, 'request')).to.equal(rows[2].cutoff)
    expect(cutoffAt(c, 'access', 'a', 1)).to.equal(undefined)
    expect(newestCutoffAt(c, 'a', 11)).to.equal(rows[2].cutoff)
    expect(newestCutoffAt(c, 'a', 2)).to.equal(rows[1].cutoff)
    // no public key to check them with: bounded by the retention configured now, as before
    const unchecked = honouredCutoffs(rows, {request: 90}, NOW)
    expect(unchecked.bad.map((b) => b.cutoff)).to.deep.equal([rows[0].cutoff, rows[1].cutoff])
    expect(unchecked.signed).to.deep.equal([])
    expect(unchecked.notes).to.deep.equal([])
  })

  it('a signed cutoff newer than its own signed retention allows, one signed by another key, or one that is not a time, is flagged', () => {
    // the statement says 30 days, but the cutoff is 5 days before it was recorded
    const at = new Date(NOW.getTime() - 2 * DAY)
    const cutoff = new Date(at.getTime() - 5 * DAY)
    const early = {
      log_type: 'request',
      cutoff: cutoff.toISOString(),
      written_at: at.toISOString(),
      ...signRetention(privateKey, {store: 'postgres', logType: 'request', cutoff, days: 30, at, heads: {a: 1}}),
    }
    const forged = recorded(7, 1, other.privateKey)
    const notATime = {log_type: 'request', cutoff: 'the day before yesterday', written_at: at.toISOString()}
    const {bad, configured, signed} = honouredCutoffs([early, forged, notATime], {request: 90}, NOW, signer)
    expect(configured.size + signed.length).to.equal(0)
    expect(bad.map((b) => b.cutoff)).to.deep.equal([early.cutoff, forged.cutoff, notATime.cutoff])
    expect(bad[0].why).not.to.contain('signed statement')
    expect(bad[1].why).to.contain('its signed statement does not check with the key')
    expect(bad[2].why).to.equal('its cutoff or the time it was recorded is not a time')
  })
})
