import {StringDecoder} from 'node:string_decoder'
import {Masker} from '../capture/masking.js'
import {type Hooks, maskedLine, newRecordId} from '../capture/record.js'
import type {OwnRecords} from './own-records.js'
import type {WorkerSettings} from './settings.js'

/**
 * The app's own output as records (captureOutput, spawn mode): each line of
 * its stdout and stderr becomes an `app` record (stream, level, the text,
 * bounded) in the journal, while the bytes go on to the terminal unchanged
 * (the caller pipes them there). A line longer than the bound keeps its
 * first bytes and says it was cut.
 */
export type OutputCapture = {
  /** A chunk of the app's output, as it came. */
  write(stream: 'stdout' | 'stderr', chunk: Buffer): void
  /** Records what is left of an unfinished last line, and closes the journal writer. */
  close(): void
}

export type Level = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL'
const LEVELS: Record<string, Level> = {
  TRACE: 'DEBUG',
  DEBUG: 'DEBUG',
  INFO: 'INFO',
  NOTICE: 'INFO',
  WARN: 'WARNING',
  WARNING: 'WARNING',
  ERROR: 'ERROR',
  ERR: 'ERROR',
  CRITICAL: 'CRITICAL',
  FATAL: 'CRITICAL',
  PANIC: 'CRITICAL',
}
/** pino's and bunyan's numbers. */
const NUMERIC = (n: number): Level => (n >= 60 ? 'CRITICAL' : n >= 50 ? 'ERROR' : n >= 40 ? 'WARNING' : n >= 30 ? 'INFO' : 'DEBUG')
/** `ERROR …`, `[ERROR] …`, `ERROR: …`, `WARNING:root:…` (Python), `[2026-12-06 10:00:00 +0000] [42] [INFO] …` (gunicorn), `level=error` (logfmt). */
const PREFIX = /^(?:\[[^\]]{0,40}\]\s*){0,2}\[?(TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|FATAL|PANIC)\]?(?=[\s:|\]-]|$)/i
const LOGFMT = /(?:^|\s)level=("?)(\w+)\1(?:\s|$)/i
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g

/** The level of one line: from a JSON line's level field, a level word at its start, or logfmt's level=; null when it names none. */
export function levelOf(line: string): Level | null {
  const text = line.trimStart()
  if (text.startsWith('{')) {
    try {
      const o = JSON.parse(text) as Record<string, unknown>
      const v = o.level ?? o.levelname ?? o.severity ?? o.lvl ?? o.log_level
      if (typeof v === 'number') return NUMERIC(v)
      if (typeof v === 'string') return LEVELS[v.toUpperCase()] ?? null
    } catch {
      // not JSON after all: the text rules below
    }
  }
  const m = PREFIX.exec(text)
  if (m) return LEVELS[m[1].toUpperCase()] ?? null
  const l = LOGFMT.exec(text)
  return l ? (LEVELS[l[2].toUpperCase()] ?? null) : null
}

export function outputCapture(
  settings: WorkerSettings,
  options: {maxLineBytes: number; records: OwnRecords; mask?: Hooks['mask']},
): OutputCapture {
  const masker = Masker.of(settings)
  const journal = options.records
  const max = options.maxLineBytes
  let closed = false
  type State = {parts: Buffer[]; bytes: number; cut: boolean}
  const state: Record<'stdout' | 'stderr', State> = {
    stdout: {parts: [], bytes: 0, cut: false},
    stderr: {parts: [], bytes: 0, cut: false},
  }
  const record = (stream: 'stdout' | 'stderr', s: State) => {
    const bytes = Buffer.concat(s.parts, s.bytes)
    // a cut can fall inside a character: the decoder drops the partial one
    let text = new StringDecoder('utf8').write(bytes)
    if (text.endsWith('\r')) text = text.slice(0, -1)
    text = text.replace(ANSI, '')
    const now = Date.now()
    journal.append(
      maskedLine(
        {
          log_type: 'app',
          id: newRecordId(now),
          created_at: new Date(now).toISOString(),
          stream,
          level: levelOf(text),
          message: masker.maskText(text),
          truncated: s.cut,
          instance: settings.instance,
        },
        options.mask,
      ),
    )
    s.parts = []
    s.bytes = 0
    s.cut = false
  }
  const keep = (s: State, piece: Buffer) => {
    const room = max - s.bytes
    if (piece.length > room) s.cut = true
    if (room > 0) {
      const kept = piece.subarray(0, room)
      s.parts.push(Buffer.from(kept)) // a copy: the chunk's buffer may be reused
      s.bytes += kept.length
    }
  }
  return {
    write(stream, chunk) {
      if (closed) return
      const s = state[stream]
      let start = 0
      for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, start)) {
        keep(s, chunk.subarray(start, nl))
        record(stream, s)
        start = nl + 1
      }
      if (start < chunk.length) keep(s, chunk.subarray(start))
    },
    close() {
      if (closed) return
      closed = true
      for (const stream of ['stdout', 'stderr'] as const) if (state[stream].bytes || state[stream].cut) record(stream, state[stream])
      journal.close()
    },
  }
}
