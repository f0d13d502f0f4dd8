import {readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {expect} from 'chai'
import {JournalWriter, listSegments, readLines} from '../../src/pipeline/journal.js'
import {tmp, until} from '../helpers/pipeline.js'

describe('journal', () => {
  it('writes every line whole, in order, whatever its length or characters (lines longer than the buffer too)', async () => {
    const dir = tmp('journal-lines')
    const w = new JournalWriter(dir, 'w-1', {maxBufferBytes: 1024})
    const lines: string[] = []
    for (let i = 0; i < 300; i++) lines.push(JSON.stringify({i, t: 'é€😀'.repeat(i % 7) + 'x'.repeat((i * 37) % 1500)}))
    lines.push('y'.repeat(5000), '€'.repeat(3000))
    for (const l of lines) w.append(l)
    w.close()
    const text = listSegments(dir)
      .map((s) => readFileSync(s.file, 'utf8'))
      .join('')
    expect(text).to.equal(lines.join('\n') + '\n')
  })

  it('appends lines to segments, rotates, and seals on close', async () => {
    const dir = tmp('journal')
    const w = new JournalWriter(dir, `abc-${process.pid}`, {segmentBytes: 100})
    for (let i = 0; i < 20; i++) w.append(JSON.stringify({i}))
    w.flush(true)
    w.append('{"last":true}')
    w.close()
    await until(() => listSegments(dir).every((s) => s.sealed)) // rotated segments seal after their fsync
    const segs = listSegments(dir)
    expect(segs.length).to.be.greaterThan(1)
    const all = segs.flatMap((s) => readFileSync(s.file, 'utf8').trim().split('\n'))
    expect(all).to.have.length(21)
  })

  it('treats an open segment of a dead writer as sealed, and skips a torn last line', async () => {
    const dir = tmp('journal-dead')
    writeFileSync(path.join(dir, 'zz-999999.000001.open'), '{"a":1}\n{"b":2}\n{"torn":')
    const [seg] = listSegments(dir)
    expect(seg.sealed).to.equal(true)
    const first = await readLines(seg, 0, 100, 1 << 20)
    expect(first.lines.map(String)).to.deep.equal(['{"a":1}', '{"b":2}'])
    const rest = await readLines(seg, first.next, 100, 1 << 20)
    expect(rest).to.deep.include({lines: [], next: seg.size, skipped: 1})
  })

  it('lists a segment seen under both names (renamed while the directory was read) once, as sealed', () => {
    const dir = tmp('journal-both')
    const key = `aa-${process.pid}.000001`
    writeFileSync(path.join(dir, `${key}.open`), '{"n":1}\n')
    writeFileSync(path.join(dir, `${key}.jsonl`), '{"n":1}\n{"n":2}\n')
    const segments = listSegments(dir)
    expect(segments).to.have.length(1)
    expect(segments[0]).to.include({key, sealed: true})
  })

  it('reads at most maxLines lines and resumes right after the last one (empty lines skipped)', async () => {
    const dir = tmp('journal-max')
    writeFileSync(path.join(dir, `aa-${process.pid}.000001.jsonl`), '{"n":1}\n\n{"n":"é"}\n{"n":3}\n')
    const [seg] = listSegments(dir)
    const a = await readLines(seg, 0, 2, 1 << 20)
    expect(a.lines.map(String)).to.deep.equal(['{"n":1}', '{"n":"é"}'])
    const b = await readLines(seg, a.next, 2, 1 << 20)
    expect(b.lines.map(String)).to.deep.equal(['{"n":3}'])
    expect(b.next).to.equal(seg.size)
  })

  it('survives a disk that refuses writes: the lines are counted lost, never thrown, and writing goes on in a fresh segment', async () => {
    const dir = tmp('journal-enospc')
    const id = `wf-${process.pid}`
    symlinkSync('/dev/full', path.join(dir, `${id}.000001.open`)) // its first segment is a disk that is always full
    const errors: string[] = []
    const written: number[] = []
    const w = new JournalWriter(dir, id, {onError: (lost, e) => errors.push(`${lost} ${e.code}`), onWritten: (n) => written.push(n)})
    for (let i = 0; i < 5; i++) w.append(JSON.stringify({i}))
    expect(() => w.flush()).to.not.throw()
    expect(errors).to.deep.equal(['5 ENOSPC'])
    for (let i = 5; i < 8; i++) w.append(JSON.stringify({i}))
    w.append(JSON.stringify({i: 8, long: 'x'.repeat(400_000)})) // longer than the buffer: written alone
    w.close()
    expect(errors).to.have.length(1)
    expect(written.reduce((a, b) => a + b, 0)).to.equal(4)
    const segs = listSegments(dir).filter((s) => s.size > 0)
    expect(segs.map((s) => s.key)).to.deep.equal([`${id}.000002`])
    const lines = await readLines(segs[0], 0, 100, 1 << 20)
    expect(lines.lines.map((l) => JSON.parse(l.toString()).i)).to.deep.equal([5, 6, 7, 8])
  })

  it('reads a line longer than the batch bytes whole', async () => {
    const dir = tmp('journal-long')
    const long = JSON.stringify({x: 'y'.repeat(50_000)})
    writeFileSync(path.join(dir, `aa-${process.pid}.000001.jsonl`), long + '\n{"n":2}\n')
    const [seg] = listSegments(dir)
    const r = await readLines(seg, 0, 10, 1000)
    expect(r.lines[0].toString()).to.equal(long)
  })
})
