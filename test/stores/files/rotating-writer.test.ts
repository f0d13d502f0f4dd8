import {existsSync, lstatSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {gunzipSync} from 'node:zlib'
import {expect} from 'chai'
import {JournalWriter} from '../../../src/pipeline/journal.js'
import {Shipper} from '../../../src/pipeline/shipper.js'
import {filesSink} from '../../../src/pipeline/sinks.js'
import {RotatingWriter, backupName} from '../../../src/stores/files/rotating-writer.js'
import {jsonlLines} from '../../helpers/jsonl.js'
import {tmp, until} from '../../helpers/pipeline.js'

const linkExists = (p: string) => {
  try {
    lstatSync(p)
    return true
  } catch {
    return false
  }
}

describe('rotating JSONL files', () => {
  it('rotates past maxBytes, gzips backups and keeps backupCount of them', async () => {
    const dir = tmp('rotate')
    const file = path.join(dir, 'requests.jsonl')
    const w = new RotatingWriter(file, 100, 2)
    for (let i = 0; i < 10; i++) await w.write(Buffer.from(JSON.stringify({i, pad: 'x'.repeat(40)}) + '\n'))
    await w.close()
    const names = readdirSync(dir).sort()
    expect(names).to.deep.equal(['requests.jsonl', 'requests.jsonl.1.gz', 'requests.jsonl.2.gz'])
    const newestBackup = gunzipSync(readFileSync(backupName(file, 1))).toString()
    expect(newestBackup).to.contain('"i":')
    expect(existsSync(file + '.1')).to.equal(false)
    for (const name of names) expect(statSync(path.join(dir, name)).mode & 0o777, name).to.equal(0o640 & ~process.umask()) // owner and group only
  })
  it('a backup larger than one read of the gzip is compressed byte for byte', async () => {
    const dir = tmp('rotate-large')
    const file = path.join(dir, 'requests.jsonl')
    const w = new RotatingWriter(file, 1024 * 1024, 2)
    const lines: string[] = []
    for (let i = 0, n = 0; n < 900 * 1024; i++)
      n += lines[lines.push(JSON.stringify({i, pad: `${i}`.repeat(1 + (i % 97))}) + '\n') - 1].length
    await w.write(Buffer.from(lines.join(''))) // 900 KiB: fourteen reads of 64 KiB, the last one short
    await w.write(Buffer.from(lines.slice(0, 2000).join(''))) // rotates
    await w.close()
    expect(gunzipSync(readFileSync(backupName(file, 1))).toString()).to.equal(lines.join(''))
    expect(readFileSync(file, 'utf8')).to.equal(lines.slice(0, 2000).join(''))
  })
  it('a backup whose gzip fails stays whole and plain until a later rotation gzips it; no line is lost and the writer goes on', async () => {
    const dir = tmp('rotate-gzip-fails')
    const file = path.join(dir, 'requests.jsonl')
    const line = (i: number) => Buffer.from(JSON.stringify({i, pad: 'x'.repeat(40)}) + '\n')
    const w = new RotatingWriter(file, 100, 10)
    symlinkSync(path.join(dir, 'no-such-dir', 'x'), backupName(file, 1)) // the first gzip's output cannot be created (ENOENT), as a full disk would refuse it
    await w.write(line(0))
    await w.write(line(1)) // rotates: requests.jsonl.1 holds line 0, its gzip fails
    await until(() => !linkExists(backupName(file, 1))) // the failed gzip removed its output (the symlink in its way)
    expect(readFileSync(file + '.1', 'utf8')).to.equal(line(0).toString())
    for (let i = 2; i < 6; i++) await w.write(line(i)) // rotations gzip the plain backup first, then go on
    await w.close()
    const backups = readdirSync(dir)
      .filter((n) => n.endsWith('.gz'))
      .sort()
    const all = [readFileSync(file, 'utf8'), ...backups.map((n) => gunzipSync(readFileSync(path.join(dir, n))).toString())].join('')
    expect(
      all
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).i)
        .sort(),
    ).to.deep.equal([0, 1, 2, 3, 4, 5])
    expect(existsSync(file + '.1')).to.equal(false)
  })

  // A crash between a batch's write to the files and the checkpoint after it: the shipper sends
  // the batch again at start, and the files sink first cuts what it wrote after the checkpoint.
  for (const rotate of [false, true]) {
    it(`files sink: a batch written but not checkpointed before a crash is not duplicated at restart${rotate ? ' (the write rotated the file)' : ''}`, async () => {
      const dir = tmp('files-crash')
      const logs = path.join(dir, 'logs')
      const journal = new JournalWriter(path.join(dir, 'journal'), `w-${process.pid}`)
      const line = (i: number, type: string) => JSON.stringify({log_type: type, id: `id-${i}`, pad: 'x'.repeat(60)})
      for (let i = 0; i < 30; i++) journal.append(line(i, i % 2 ? 'access' : 'request'))
      journal.flush(true)
      const maxBytes = rotate ? 1600 : 1024 * 1024 // 15 lines of about 90 bytes per file, then 10 more
      const first = new Shipper(path.join(dir, 'journal'), filesSink(logs, maxBytes, 3))
      first.start()
      expect(await first.drain(5000)).to.equal(true)
      await first.stop()
      // the next batch reaches the files, then the process dies before its checkpoint
      const batch = Array.from({length: 20}, (_, k) => line(30 + k, k % 2 ? 'access' : 'request'))
      for (const l of batch) journal.append(l)
      journal.close()
      const crashed = filesSink(logs, maxBytes, 3)
      await crashed.write(batch.map((l) => Buffer.from(l)))
      await crashed.close()
      // restart
      const again = new Shipper(path.join(dir, 'journal'), filesSink(logs, maxBytes, 3))
      again.start()
      expect(await again.drain(5000)).to.equal(true)
      await again.stop()
      const ids = jsonlLines(logs).map((l) => JSON.parse(l).id as string)
      expect(ids.length, 'lines in the files').to.equal(50)
      expect(new Set(ids).size).to.equal(50)
      if (rotate)
        expect(
          readdirSync(logs).some((n) => n.endsWith('.gz')),
          readdirSync(logs).join(' '),
        ).to.equal(true)
    })
  }

  it('a rotation whose gzip a crash interrupted becomes the newest backup at restart, not lost', async () => {
    const dir = tmp('rotate-crash')
    const file = path.join(dir, 'access.jsonl')
    writeFileSync(file + '.1', '{"n":1}\n{"n":2}\n') // renamed, never gzipped
    writeFileSync(backupName(file, 1), Buffer.from([0x1f, 0x8b, 0x08])) // the gzip's unfinished output
    const w = new RotatingWriter(file, 1024, 3)
    await w.write(Buffer.from('{"n":3}\n'))
    await w.close()
    expect(existsSync(file + '.1')).to.equal(false)
    expect(gunzipSync(readFileSync(backupName(file, 1))).toString()).to.equal('{"n":1}\n{"n":2}\n')
    expect(readFileSync(file, 'utf8')).to.equal('{"n":3}\n')
  })
})
