import {Transform} from 'node:stream'
import type {ExportFormat, Row} from '../stores/source.js'
import {csvLine} from './csv.js'
import {HAR_TAIL, harEntry, harHead} from './har.js'

/**
 * Rows → text in an export format, one row at a time (constant memory). A row
 * a store rendered as JSON text already arrives as `{j: '{...}'}` and is
 * copied as it is.
 */
export function encoder(format: ExportFormat, columns: string[], version: string): Transform {
  let first = true
  return new Transform({
    writableObjectMode: true,
    transform(row: Row, _enc, done) {
      delete row.log_type
      const json = typeof row.j === 'string' && Object.keys(row).length === 1 ? row.j : undefined
      let out: string
      if (format === 'csv') out = (first ? csvLine(columns) : '') + csvLine(columns.map((c) => row[c]))
      else if (format === 'ndjson') out = (json ?? JSON.stringify(row)) + '\n'
      else if (format === 'json') out = (first ? '[\n' : ',\n') + (json ?? JSON.stringify(row))
      else out = (first ? harHead(version) : ',') + JSON.stringify(harEntry(row))
      first = false
      done(null, out)
    },
    flush(done) {
      if (format === 'csv' && first) return done(null, csvLine(columns))
      if (format === 'json') return done(null, first ? '[]\n' : '\n]\n')
      if (format === 'har') return done(null, (first ? harHead(version) : '') + HAR_TAIL)
      done()
    },
  })
}
