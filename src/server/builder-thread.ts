// The record builder of one proxy worker, on its own thread: masks, serialises
// and appends to the journal, so the proxy's event loop only taps and hands off.
import {parentPort, workerData} from 'node:worker_threads'
import {RecordBuilder, type WireExchange, fromWire} from '../capture/builder.js'
import {Masker} from '../capture/masking.js'
import {JournalWriter} from '../pipeline/journal.js'
import {failpoint} from '../util/failpoints.js'
import type {WorkerSettings} from './settings.js'
import {hooksFrom} from './hooks.js'

export type ToBuilder =
  /** seq: the batch's number in this worker; ack: the proxy holds responses until the batch is written (journaled) */
  | {type: 'batch'; items: WireExchange[]; arena: Uint8Array; bytes: number; seq: number; ack: boolean}
  | {type: 'journal-full'; full: boolean}
  | {type: 'close'}
export type FromBuilder =
  | {type: 'counts'; captured: number; dropped: number; builtBytes: number; problem?: string}
  /** these batches' records are written to the journal's file (or were counted lost): their held responses may end */
  | {type: 'journaled'; seqs: number[]}
  | {type: 'closed'}
  | {type: 'ready'}

const s = workerData as WorkerSettings & {writerId: string}
const port = parentPort!
const counts = {captured: 0, dropped: 0, builtBytes: 0} // builtBytes: of the batches handled, as the worker counted them when it sent them
let problem: string | undefined // why records were lost since the last report, for the operator's alert
const lost = (n: number, why: string) => {
  counts.dropped += n
  problem = why
}
let full = false
const journal = new JournalWriter(s.journalDir, s.writerId, {
  onWritten: (n) => (counts.captured += n),
  onError: (n, error) => lost(n, `the journal could not be ${n ? 'written' : 'synced to disk'}: ${error.code ?? error.message}`),
})
const builder = new RecordBuilder(
  {
    masker: new Masker({fields: s.sensitiveFields, headers: s.sensitiveHeaders}),
    maxBodyLength: s.bodyLimit,
    slowMs: s.slowMs,
    instance: s.instance,
    hooks: await hooksFrom(s.configFile),
  },
  (line) => {
    if (full) {
      counts.dropped++
      return
    }
    journal.append(line)
  },
  (n, error) => lost(n, `a record could not be built: ${error.message}`),
  // loaded only when login routes are configured (the event validation brings zod into the thread)
  s.logins
    ? new (await import('../capture/logins.js')).LoginWatch(s.logins, {
        masker: new Masker({fields: s.sensitiveFields, headers: s.sensitiveHeaders}),
        instance: s.instance,
      })
    : undefined,
)

const report = () => {
  if (counts.captured || counts.dropped || counts.builtBytes || problem) {
    port.postMessage({type: 'counts', ...counts, problem} satisfies FromBuilder)
    counts.captured = counts.dropped = counts.builtBytes = 0
    problem = undefined
  }
}
const timer = setInterval(report, 250)

// Batches whose responses are held (recordBeforeAnswer) and whose records are built: written with one
// write() for all the batches built in the same turn, then acknowledged together.
let built: number[] = []
const journaled = (seq: number) => {
  if (built.push(seq) > 1) return
  setImmediate(() => {
    if (!built.length) return // close() acknowledged them
    journal.flush()
    port.postMessage({type: 'journaled', seqs: built} satisfies FromBuilder)
    built = []
  })
}

port.on('message', async (msg: ToBuilder) => {
  if (msg.type === 'batch') {
    const builds: Array<Promise<void>> = []
    for (const item of msg.items) {
      const {x, full: fullRecord} = fromWire(item, msg.arena, s.bodyLimit)
      builds.push(builder.build(x, fullRecord))
    }
    // build never rejects (a record that cannot be built is counted lost): the responses are let go either way
    if (msg.ack) void Promise.all(builds).then(() => journaled(msg.seq))
    counts.builtBytes += msg.bytes
    failpoint('builder-crash')
    failpoint('builder-slow')
  } else if (msg.type === 'journal-full') {
    full = msg.full
  } else if (msg.type === 'close') {
    // builds still running (a compressed body being decoded) finish first, within 10 s; what is left
    // then is counted lost, not written after the journal closed (which dropped it silently)
    for (let i = 0; i < 2000 && builder.building > 0; i++) await new Promise((r) => setTimeout(r, 5))
    if (builder.pendingRecords > 0) lost(builder.pendingRecords, 'the worker stopped before they were built')
    full = true // a build that ends after this counts its records dropped (already counted above), never appends
    journal.close()
    if (built.length) port.postMessage({type: 'journaled', seqs: built.splice(0)} satisfies FromBuilder)
    clearInterval(timer)
    report()
    port.postMessage({type: 'closed'} satisfies FromBuilder)
  }
})
port.postMessage({type: 'ready'} satisfies FromBuilder)
