import {JournalWriter} from '../pipeline/journal.js'

/** A journal writer's id: its time and process (the journal seals an open segment whose process is gone), and what writes. */
export const writerId = (name?: string) => `${Date.now().toString(36)}-${process.pid}${name ? `-${name}` : ''}`

/** Records the primary makes itself (the app's output lines, its outbound calls), appended to the journal. */
export type OwnRecords = {append(line: string): void; close(): void}

/**
 * A journal writer for them that keeps the journal's bound as the proxy's records do: at the bound
 * (whatever whenFull says: these records cannot hold a request back) a record is dropped and counted,
 * as one the disk refused; the log says so at most every 10 s.
 */
export function ownRecords(
  journalDir: string,
  name: string,
  o: {full: () => boolean; counts: (c: {captured: number; dropped: number}) => void; log: (m: string) => void},
): OwnRecords {
  let alerted = 0
  let dropped = 0
  const lost = (n: number, why: string) => {
    o.counts({captured: 0, dropped: n})
    dropped += n
    if (Date.now() - alerted < 10_000) return
    alerted = Date.now()
    o.log(`ALERT: ${name} records dropped: ${why}; ${dropped} so far`)
  }
  const journal = new JournalWriter(journalDir, writerId(name), {
    onWritten: (n) => o.counts({captured: n, dropped: 0}),
    onError: (n, error) => n && lost(n, `the journal could not be written: ${error.code ?? error.message}`),
  })
  return {
    append(line) {
      if (o.full()) lost(1, 'the journal is at its bound')
      else journal.append(line)
    },
    close: () => journal.close(),
  }
}
