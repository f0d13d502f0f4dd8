import Table from 'cli-table3'
import type {LogType, Row} from '../stores/source.js'
import {csvLine} from './csv.js'

export type {Row}
export const FORMATS = ['table', 'json', 'ndjson', 'csv'] as const
export type Format = (typeof FORMATS)[number]
export const DEFAULT_COLUMNS: Record<LogType, string[]> = {
  request: ['created_at', 'method', 'status_code', 'path', 'duration_ms', 'user_id', 'ip'],
  access: ['created_at', 'method', 'status_code', 'url', 'duration_ms', 'user_id', 'ip'],
  event: ['created_at', 'action', 'actor_id', 'target_type', 'target_id', 'severity', 'request_id'],
  outbound: ['created_at', 'method', 'status_code', 'host', 'path', 'duration_ms', 'outcome'],
  app: ['created_at', 'stream', 'level', 'message'],
}

const HEADINGS: Record<string, string> = {
  created_at: 'time',
  status_code: 'status',
  duration_ms: 'duration',
  user_id: 'user',
  actor_id: 'actor',
  target_type: 'target',
  target_id: 'target id',
}

export function cellText(column: string, value: unknown): string {
  if (value === null || value === undefined) return ''
  if (value instanceof Date) value = value.toISOString()
  if (column === 'created_at')
    return String(value)
      .replace('T', ' ')
      .replace(/\.\d+Z$|Z$/, '')
  if (column === 'duration_ms') return `${Number(value).toFixed(1)} ms`
  return typeof value === 'object' ? JSON.stringify(value) : String(value)
}

function colourStatus(text: string): string {
  const code = Number(text)
  const colour = code >= 500 ? 31 : code >= 400 ? 33 : code >= 300 ? 36 : 32
  return `\u001b[${colour}m${text}\u001b[39m`
}

/** A table that fits `width` columns: the widest column (path/url) gives way first. */
export function renderRecordTable(rows: Row[], columns: string[], options: {width: number; colour: boolean}): string {
  const cells = rows.map((r) => columns.map((c) => cellText(c, r[c])))
  const widths = columns.map((c, i) => Math.max((HEADINGS[c] ?? c).length, ...cells.map((row) => row[i].length)))
  const budget = Math.max(40, options.width) - (columns.length * 3 + 1)
  while (widths.reduce((a, b) => a + b, 0) > budget) {
    const widest = widths.indexOf(Math.max(...widths))
    if (widths[widest] <= 8) break
    widths[widest]--
  }
  const fit = (text: string, w: number) => (text.length > w ? text.slice(0, Math.max(1, w - 1)) + '…' : text)
  const table = new Table({
    head: columns.map((c) => HEADINGS[c] ?? c),
    colWidths: widths.map((w) => w + 2),
    style: {head: [], border: [], compact: true},
    wordWrap: false,
  })
  for (const row of cells) {
    table.push(
      row.map((text, i) => {
        const shown = fit(text, widths[i])
        return options.colour && columns[i] === 'status_code' && shown ? colourStatus(shown) : shown
      }),
    )
  }
  return table.toString()
}

export function renderRecords(rows: Row[], columns: string[], format: Exclude<Format, 'table'>): string {
  if (format === 'json') return JSON.stringify(rows, null, 2)
  if (format === 'ndjson') return rows.map((r) => JSON.stringify(r)).join('\n')
  return csvLine(columns) + rows.map((r) => csvLine(columns.map((c) => r[c]))).join('')
}
/** One record in full: headers and JSON bodies pretty-printed. */
export function renderRecord(r: Record<string, unknown>): string {
  const lines: string[] = []
  for (const [key, value] of Object.entries(r)) {
    if (value === null || value === undefined || value === '') continue
    if (typeof value === 'object' && !(value instanceof Date)) {
      lines.push(
        `${key}:`,
        ...JSON.stringify(value, null, 2)
          .split('\n')
          .map((l) => `  ${l}`),
      )
    } else if ((key === 'request_body' || key === 'response_body') && typeof value === 'string') {
      let pretty = value
      try {
        pretty = JSON.stringify(JSON.parse(value), null, 2)
      } catch {
        // not JSON: shown as recorded
      }
      lines.push(`${key}:`, ...pretty.split('\n').map((l) => `  ${l}`))
    } else lines.push(`${key}: ${cellText(key === 'duration_ms' ? key : '', value)}`)
  }
  return lines.join('\n')
}
