import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {spawn} from 'node:child_process'
import os from 'node:os'
import path from 'node:path'
import {expect} from 'chai'
import {backoffMs} from '../../src/pipeline/backoff.js'
import {JournalWriter, listSegments, readLines} from '../../src/pipeline/journal.js'
import {Shipper, collectSegments} from '../../src/pipeline/shipper.js'
import {type Sink, filesSink} from '../../src/pipeline/sinks.js'
import {ForegroundLoad} from '../../src/server/foreground.js'
import {RotatingWriter, backupName} from '../../src/stores/files/rotating-writer.js'
import {gunzipSync} from 'node:zlib'
import {jsonlLines} from '../helpers/jsonl.js'

const tmp = (p: string) => mkdtempSync(path.join(os.tmpdir(), `audit-logs-${p}-`))
const until = async (check: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 10))
  }
}

function memorySink(failFirst = 0): Sink & {got: string[]; calls: number} {
  const sink = {
    name: 'memory',
    got: [] as string[],
    calls: 0,
    async write(lines: Buffer[]) {
      sink.calls++
      if (sink.calls <= failFirst) throw new Error('sink down')
      sink.got.push(...lines.map(String))
    },
    async close() {},
  }
  return sink
}

describe('journal', () => {
  it('writes every line whole, in order, whatever its length or characters (lines longer than the buffer too)', async () => {
    const dir = tmp('journal-lines')
    const w = new JournalWriter(dir, 'w-1', {maxBufferBytes: 1024})
    const lines: string[] = []
    for (let i = 0; i < 300; i++) lines.push(JSON.stringify({i, t: 'é€😀'.repeat(i % 7) + 'x'.repeat((i * 37) % 1500)}))
    lines.push('y'.repeat(5000), '€'.repeat(3000))
    for (const l of lines) w.append(l)
    w.close()
    const text = listSegments(dir).map((s) => readFileSync(s.file, 'utf8')).join('')
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

describe('shipper', () => {
  it('delivers every line once, in order, and collects shipped segments', async () => {
    const dir = tmp('ship')
    const w = new JournalWriter(dir, `w1-${process.pid}`, {segmentBytes: 1000})
    for (let i = 0; i < 300; i++) w.append(JSON.stringify({i}))
    w.close()
    const sink = memorySink()
    const shipper = new Shipper(dir, sink, {batchLines: 64})
    shipper.start()
    expect(await shipper.drain(10_000)).to.equal(true)
    await shipper.stop()
    expect(sink.got.map((l) => JSON.parse(l).i)).to.deep.equal(Array.from({length: 300}, (_, i) => i))
    expect(collectSegments(dir, [shipper])).to.be.greaterThan(0)
    expect(listSegments(dir)).to.deep.equal([])
  })

  it('delivers every line exactly once while another process appends and seals segments under it', async function () {
    this.timeout(60_000)
    const dir = tmp('ship-race')
    // The journal writer's protocol, in a separate process: append to <key>.open, rename to <key>.jsonl.
    const writer = `
      const fs = require('node:fs'), path = require('node:path')
      const id = Date.now().toString(36) + '-' + process.pid
      let n = 0, seq = 0
      for (let round = 0; round < 12; round++) {
        const keys = Array.from({length: 50}, () => path.join(process.argv[1], id + '.' + String(++seq).padStart(6, '0')))
        for (let k = 0; k < 2; k++) for (const key of keys) fs.appendFileSync(key + '.open', JSON.stringify({n: n++}) + '\\n' + JSON.stringify({n: n++}) + '\\n')
        for (const key of keys) fs.renameSync(key + '.open', key + '.jsonl')
      }`
    const sink = memorySink()
    const shipper = new Shipper(dir, sink, {batchLines: 37, pollMs: 1})
    shipper.start()
    const collector = setInterval(() => collectSegments(dir, [shipper]), 3)
    const child = spawn(process.execPath, ['-e', writer, dir], {stdio: 'inherit'})
    await new Promise((resolve) => child.on('exit', resolve))
    expect(await shipper.drain(20_000)).to.equal(true)
    clearInterval(collector)
    await shipper.stop()
    const got = sink.got.map((l) => JSON.parse(l).n as number)
    expect(got.length, 'lines delivered').to.equal(2400)
    expect(new Set(got).size).to.equal(2400)
  })

  it('retries a failing sink with backoff and resumes from its checkpoint after a restart', async () => {
    const dir = tmp('ship-retry')
    const w = new JournalWriter(dir, `w2-${process.pid}`)
    for (let i = 0; i < 50; i++) w.append(JSON.stringify({i}))
    w.flush(true)
    const sink = memorySink(2)
    const shipper = new Shipper(dir, sink, {batchLines: 20})
    shipper.start()
    await until(() => sink.got.length === 50)
    expect(shipper.stats.retried).to.equal(2)
    await shipper.stop()
    for (let i = 50; i < 60; i++) w.append(JSON.stringify({i}))
    w.close()
    const again = memorySink()
    const restarted = new Shipper(dir, again)
    restarted.start()
    await restarted.drain(5000)
    await restarted.stop()
    expect(again.got.map((l) => JSON.parse(l).i)).to.deep.equal(Array.from({length: 10}, (_, i) => 50 + i))
  })

  for (const [what, text] of [
    ['empty (a power loss)', ''],
    ['cut short', '{"offsets":{"w9-1.000001":12'],
    ['not offsets', '{"offsets":{"w9-1.000001":"twelve"}}'],
  ]) {
    it(`a damaged checkpoint (${what}) is set aside with an alert, and the sink gets what the journal holds again`, async () => {
      const dir = tmp('ship-damaged')
      const w = new JournalWriter(dir, `w9-${process.pid}`)
      for (let i = 0; i < 25; i++) w.append(JSON.stringify({i}))
      w.close()
      mkdirSync(path.join(dir, 'checkpoints'))
      writeFileSync(path.join(dir, 'checkpoints', 'memory.json'), text)
      const logs: string[] = []
      const sink = memorySink()
      const shipper = new Shipper(dir, sink, {batchLines: 10, pollMs: 5, log: (m) => logs.push(m)})
      shipper.start()
      await shipper.drain(5000)
      await shipper.stop()
      expect(sink.got.map((l) => JSON.parse(l).i)).to.deep.equal(Array.from({length: 25}, (_, i) => i))
      const alert = logs.find((m) => m.startsWith('ALERT: the checkpoint of sink memory'))
      expect(alert, logs.join('\n')).to.contain('cannot be read').and.contain('damaged-')
      const names = readdirSync(path.join(dir, 'checkpoints'))
      const aside = names.find((n) => n.startsWith('memory.json.damaged-'))
      expect(aside).to.be.a('string')
      expect(readFileSync(path.join(dir, 'checkpoints', aside!), 'utf8')).to.equal(text) // kept as it was, for inspection
      expect(JSON.parse(readFileSync(path.join(dir, 'checkpoints', 'memory.json'), 'utf8')).offsets).to.have.property(`w9-${process.pid}.000001`)
    })
  }

  it('goes on delivering when its checkpoint cannot be saved, and saves it once the disk allows', async () => {
    const dir = tmp('ship-unsaved')
    const w = new JournalWriter(dir, `w3-${process.pid}`)
    for (let i = 0; i < 30; i++) w.append(JSON.stringify({i}))
    w.flush(true)
    const blocker = path.join(dir, 'checkpoints', 'memory.json.tmp')
    mkdirSync(blocker, {recursive: true}) // the save's temporary file cannot be written: EISDIR, as a full disk would refuse it
    const logs: string[] = []
    const sink = memorySink()
    const shipper = new Shipper(dir, sink, {batchLines: 10, pollMs: 5, log: (m) => logs.push(m)})
    shipper.start()
    await until(() => sink.got.length === 30)
    expect(logs.filter((m) => m.includes('cannot save its checkpoint'))).to.have.length(1)
    rmSync(blocker, {recursive: true})
    for (let i = 30; i < 35; i++) w.append(JSON.stringify({i}))
    w.close()
    await until(() => sink.got.length === 35)
    await shipper.stop()
    expect(logs).to.include('sink memory: its checkpoint is saved again')
    expect(JSON.parse(readFileSync(path.join(dir, 'checkpoints', 'memory.json'), 'utf8')).offsets).to.not.deep.equal({})
    expect(sink.got.map((l) => JSON.parse(l).i)).to.deep.equal(Array.from({length: 35}, (_, i) => i))
  })

  it('waits while mayShip says so (the journal holds the lines), delivers when it allows, and drain() does not wait', async () => {
    const dir = tmp('ship-defer')
    const w = new JournalWriter(dir, `w4-${process.pid}`)
    for (let i = 0; i < 20; i++) w.append(JSON.stringify({i}))
    w.flush(true)
    let allow = false
    const sink = memorySink()
    const shipper = new Shipper(dir, sink, {pollMs: 5, mayShip: () => allow})
    shipper.start()
    await new Promise((r) => setTimeout(r, 100))
    expect(sink.got).to.have.length(0)
    expect(shipper.stats).to.include({deferred: true})
    expect(shipper.stats.lagBytes).to.be.greaterThan(0) // it knows how far behind the sink is
    allow = true
    shipper.poke()
    await until(() => sink.got.length === 20)
    expect(shipper.stats.deferred).to.equal(false)
    allow = false
    for (let i = 20; i < 30; i++) w.append(JSON.stringify({i}))
    w.close()
    expect(await shipper.drain(5000)).to.equal(true) // shutting down: what the journal holds goes now
    await shipper.stop()
    expect(sink.got.map((l) => JSON.parse(l).i)).to.deep.equal(Array.from({length: 30}, (_, i) => i))
  })

  it('knows when the proxy workers are saturated: enters at 85% of a worker\'s event loop, leaves below 60% on all, forgets a silent worker', () => {
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

  it('backs off exponentially with full jitter (anywhere from a few ms up to the capped ceiling)', () => {
    // full jitter, as AWS describes it: random between 0 and min(cap, base * 2^(attempt-1)); a 10 ms floor
    expect(backoffMs(1, 200, 30_000, () => 0)).to.equal(10)
    expect(backoffMs(1, 200, 30_000, () => 0.25)).to.equal(50)
    expect(backoffMs(1, 200, 30_000, () => 1)).to.equal(200)
    expect(backoffMs(4, 200, 30_000, () => 0)).to.equal(10) // not half the ceiling: that was equal jitter
    expect(backoffMs(4, 200, 30_000, () => 0.5)).to.equal(800)
    expect(backoffMs(4, 200, 30_000, () => 1)).to.equal(1600)
    expect(backoffMs(30, 200, 30_000, () => 0.1)).to.equal(3000)
    expect(backoffMs(30, 200, 30_000, () => 1)).to.equal(30_000)
    expect(backoffMs(1, 4, 30_000, () => 0)).to.equal(4) // the floor never exceeds the ceiling
  })
})

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
    for (let i = 0, n = 0; n < 900 * 1024; i++) n += lines[lines.push(JSON.stringify({i, pad: `${i}`.repeat(1 + (i % 97))}) + '\n') - 1].length
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
    await new Promise((r) => setTimeout(r, 50))
    expect(readFileSync(file + '.1', 'utf8')).to.equal(line(0).toString())
    for (let i = 2; i < 6; i++) await w.write(line(i)) // rotations gzip the plain backup first, then go on
    await w.close()
    const backups = readdirSync(dir).filter((n) => n.endsWith('.gz')).sort()
    const all = [readFileSync(file, 'utf8'), ...backups.map((n) => gunzipSync(readFileSync(path.join(dir, n))).toString())].join('')
    expect(all.trim().split('\n').map((l) => JSON.parse(l).i).sort()).to.deep.equal([0, 1, 2, 3, 4, 5])
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
      if (rotate) expect(readdirSync(logs).some((n) => n.endsWith('.gz')), readdirSync(logs).join(' ')).to.equal(true)
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
