// Benchmark of the record builder (issue 3): the work the builder thread does per exchange, alone on one
// core. Builds the request and access records of exchanges into a real journal, with bodies as the
// capture benchmark's (POST: 2 KiB JSON in, 4 KiB JSON out; GET: 41 bytes out) and some that need
// masking or are not ASCII. Baseline, in the same run: the same builder with every body through the
// text rules (what every body went through before clean ASCII bodies kept their bytes).
// Run: node bench/run.js builder [--exchanges 40000] [--rounds 6]
import {existsSync, mkdtempSync, readdirSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {parseArgs} from 'node:util'
import {RecordBuilder} from '../src/capture/builder.js'
import {Masker} from '../src/capture/masking.js'
import type {Exchange} from '../src/capture/record.js'
import {DEFAULT_SENSITIVE_FIELDS, DEFAULT_SENSITIVE_HEADERS} from '../src/config/schema.js'
import {JournalWriter} from '../src/pipeline/journal.js'
import {ITEMS_4K as big, ORDER_2K as order, SMALL as small} from './bodies.mjs'
import {type Shape as ExchangeShape, benchExchange} from './exchanges.js'

const {values} = parseArgs({
  args: process.argv.slice(2),
  options: {exchanges: {type: 'string', default: '40000'}, rounds: {type: 'string', default: '6'}},
})
const N = Number(values.exchanges)
const ROUNDS = Number(values.rounds)

type Shape = ExchangeShape & {name: string}
const shapes: Shape[] = [
  {name: 'POST 2 KiB → 4 KiB JSON (the capture benchmark)', method: 'POST', request: order, response: big},
  {name: 'GET → 41 B JSON (the capture benchmark)', method: 'GET', response: small},
  {
    name: 'POST with a password field, response as above',
    method: 'POST',
    request: JSON.stringify({user: 'ann', password: 'hunter2', ...JSON.parse(order)}),
    response: big,
  },
  {
    name: 'POST, pretty-printed JSON both ways',
    method: 'POST',
    request: JSON.stringify(JSON.parse(order), null, 2),
    response: JSON.stringify(JSON.parse(big), null, 2),
  },
  {
    name: 'POST, non-ASCII text in both bodies',
    method: 'POST',
    request: order.replaceAll('gift wrap', 'café crème'),
    response: big.replaceAll('item', 'artículo'),
  },
]

function exchanges(shape: Shape): Exchange[] {
  const now = Date.now()
  return Array.from({length: N}, (_, i) => benchExchange(shape, i, now))
}

/** Every body through the text rules, as before clean ASCII bodies kept their bytes. */
class TextRulesOnly extends Masker {
  override isCleanAscii(): boolean {
    return false
  }
}

// The journal goes to memory (/dev/shm) when there is one: gigabytes of it on a disk make the page
// cache's writeback throttle whichever variant runs later, and it is the builder that is measured here.
const dir = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'audit-logs-bench-builder-'))
const masking = {fields: DEFAULT_SENSITIVE_FIELDS, headers: DEFAULT_SENSITIVE_HEADERS}

/** A builder writing into its own journal, and the time of its best round. */
function variant(name: string, masker: Masker) {
  const journal = new JournalWriter(dir, `bench-${process.pid}-${name.length}`)
  let bytes = 0
  const builder = new RecordBuilder({masker, maxBodyLength: 8192, slowMs: 1000, instance: 'bench', hooks: {}}, (line) => {
    bytes += line.length
    journal.append(line)
  })
  return {
    name,
    best: Number.POSITIVE_INFINITY,
    bytes: 0,
    /** One round of N fresh exchanges; µs per exchange. */
    async round(xs: Exchange[]) {
      bytes = 0
      const t0 = process.hrtime.bigint()
      for (const x of xs) await builder.build(x, true)
      journal.flush()
      this.best = Math.min(this.best, Number(process.hrtime.bigint() - t0) / 1000 / xs.length)
      this.bytes = bytes / xs.length
      for (const f of readdirSync(dir)) if (f.endsWith('.jsonl')) rmSync(path.join(dir, f)) // sealed segments: the journal stays small
    },
    close: () => journal.close(),
  }
}

try {
  console.log(
    `record builder, ${N} exchanges a round, best of ${ROUNDS}; node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0].model})`,
  )
  for (const shape of shapes) {
    const base = variant('text rules for every body (baseline)', new TextRulesOnly(masking))
    const now = variant('clean ASCII bodies keep their bytes', new Masker(masking))
    // the variants take turns, round by round: whatever the machine does meanwhile falls on both
    for (let r = 0; r < ROUNDS; r++) for (const v of r % 2 ? [now, base] : [base, now]) await v.round(exchanges(shape))
    base.close()
    now.close()
    console.log(
      `${shape.name}: ${base.best.toFixed(1)} µs → ${now.best.toFixed(1)} µs per exchange, ${(now.best / base.best).toFixed(2)} ` +
        `of the baseline (${(base.best / now.best).toFixed(2)}× as fast); ${Math.round(now.bytes)} bytes of journal ` +
        `lines`,
    )
  }
} finally {
  rmSync(dir, {recursive: true, force: true})
}
