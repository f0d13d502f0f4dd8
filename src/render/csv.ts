import {Transform} from 'node:stream'

/**
 * A text cell that starts with one of these is run as a formula by Excel,
 * LibreOffice and Google Sheets (CSV injection, OWASP). Records hold text
 * written by strangers (paths, headers, bodies), so such a cell is written
 * with a leading single quote, which spreadsheets show as text. Numbers are
 * never prefixed (a negative number is not an attack). PostgreSQL's COPY
 * path applies the same pattern in SQL (stores/postgres/reader.ts).
 */
export const CSV_FORMULA_START = /^[-=+@\t\r]/

const cellText = (value: unknown): string => {
  if (value === null || value === undefined) return ''
  if (value instanceof Date) return value.toISOString()
  if (typeof value === 'object') return JSON.stringify(value)
  const text = String(value)
  return typeof value === 'string' && CSV_FORMULA_START.test(text) ? `'${text}` : text
}

/** RFC 4180: every field that holds a comma, quote, CR or LF is quoted, quotes doubled; lines end in CRLF. */
export function csvField(value: unknown): string {
  const text = cellText(value)
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

export const csvLine = (values: unknown[]) => values.map(csvField).join(',') + '\r\n'

/**
 * PostgreSQL ends CSV records with LF; RFC 4180 wants CRLF. Line breaks inside
 * quoted fields are data and stay as they are, so quoting is tracked across chunks.
 */
export function crlfRecords(): Transform {
  let quoted = false
  return new Transform({
    transform(chunk: Buffer, _e, done) {
      const out = Buffer.allocUnsafe(chunk.length * 2)
      let n = 0
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i]
        if (b === 0x22) quoted = !quoted
        else if (b === 0x0a && !quoted && (n === 0 || out[n - 1] !== 0x0d)) out[n++] = 0x0d
        out[n++] = b
      }
      done(null, out.subarray(0, n))
    },
  })
}
