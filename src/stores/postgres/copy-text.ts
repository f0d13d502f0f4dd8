import {Transform} from 'node:stream'

// How a column's text (COPY's text format) becomes a JSON value, as row_to_json would render it.
const NUMBER = new Set([
  'request_body_size',
  'status_code',
  'response_body_size',
  'duration_ms',
  'response_size',
  'port',
  'bytes_sent',
  'bytes_received',
])
const BOOLEAN = new Set(['request_body_truncated', 'response_body_truncated', 'tunnel', 'truncated'])
const JSON_TEXT = new Set(['query', 'request_headers', 'response_headers', 'extra', 'changes', 'flags']) // jsonb, array_to_json(...)
const TIME = new Set(['created_at'])
const enum Kind {
  string,
  number,
  boolean,
  json,
  time,
}
const kindOf = (c: string) =>
  NUMBER.has(c) ? Kind.number : BOOLEAN.has(c) ? Kind.boolean : JSON_TEXT.has(c) ? Kind.json : TIME.has(c) ? Kind.time : Kind.string

// COPY TO escapes backslash and the control characters its framing uses.
const ESCAPES: Record<string, string> = {b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v'}
const unescapeCopy = (v: string) =>
  v.replace(/\\([0-7]{1,3}|x[0-9a-fA-F]{1,2}|.)/g, (_m, e: string) =>
    e.length > 1 || (e >= '0' && e <= '7')
      ? String.fromCharCode(e[0] === 'x' ? Number.parseInt(e.slice(1), 16) : Number.parseInt(e, 8))
      : (ESCAPES[e] ?? e),
  )

/**
 * Rows of `COPY … TO STDOUT` (text format: tab-separated, `\N` for NULL,
 * backslash escapes) → one JSON object per line, the same text row_to_json
 * gives for these columns. PostgreSQL writes its text format about twice as
 * fast as it renders JSON, and this keeps the JSON building on the other core.
 * Expects the session's DateStyle ISO and TimeZone UTC (set by clientConfig).
 */
export function copyTextToNdjson(columns: string[]): Transform {
  const keys = columns.map((c, i) => (i === 0 ? '{' : ',') + JSON.stringify(c) + ':')
  const kinds = columns.map(kindOf)
  const row = (line: string): string => {
    const fields = line.split('\t')
    if (fields.length !== keys.length) throw new Error(`COPY row with ${fields.length} fields where ${keys.length} were expected`)
    let out = ''
    for (let i = 0; i < fields.length; i++) {
      let v = fields[i]
      out += keys[i]
      if (v === '\\N') {
        out += 'null'
        continue
      }
      if (v.includes('\\')) v = unescapeCopy(v)
      switch (kinds[i]) {
        case Kind.number:
          out += v === 'NaN' || v.endsWith('Infinity') ? `"${v}"` : v
          break
        case Kind.boolean:
          out += v === 't' ? 'true' : 'false'
          break
        case Kind.json:
          out += v
          break
        case Kind.time:
          // 2026-11-24 10:00:00.123+00 → 2026-11-24T10:00:00.123+00:00
          out += `"${v.replace(' ', 'T')}${/[+-]\d\d$/.test(v) ? ':00' : ''}"`
          break
        default:
          out += JSON.stringify(v)
      }
    }
    return out + '}\n'
  }
  let rest: Buffer | undefined
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      const buf = rest ? Buffer.concat([rest, chunk]) : chunk
      const end = buf.lastIndexOf(10)
      if (end < 0) {
        rest = Buffer.from(buf)
        return done()
      }
      rest = end + 1 < buf.length ? Buffer.from(buf.subarray(end + 1)) : undefined
      let out = ''
      try {
        for (const line of buf.toString('utf8', 0, end).split('\n')) out += row(line)
      } catch (error) {
        return done(error as Error)
      }
      done(null, out)
    },
    flush(done) {
      done(rest?.length ? new Error('COPY output ended in the middle of a row') : null)
    },
  })
}
