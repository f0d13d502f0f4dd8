import {mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {spawn} from 'node:child_process'
import path from 'node:path'
import {expect} from 'chai'
import {JournalWriter, listSegments} from '../../src/pipeline/journal.js'
import {Shipper, collectSegments} from '../../src/pipeline/shipper.js'
import {memorySink, tmp, until} from '../helpers/pipeline.js'

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
      expect(JSON.parse(readFileSync(path.join(dir, 'checkpoints', 'memory.json'), 'utf8')).offsets).to.have.property(
        `w9-${process.pid}.000001`,
      )
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
    await until(() => shipper.stats.deferred) // it has looked, found lines, and waits
    expect(sink.got).to.have.length(0)
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
})
