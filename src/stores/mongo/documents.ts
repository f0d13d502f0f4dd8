import ipaddr from 'ipaddr.js'
import {type LogType, type Row, columnsOf} from '../source.js'

/**
 * Records as MongoDB documents, and back. A document holds the record's
 * fields under the same names (DESIGN.md, data model) with these changes:
 * - `_id` is the record's id (a replayed batch leaves one copy);
 * - `created_at` is a BSON date (UTC);
 * - keys inside objects (headers, query, extra) are escaped where MongoDB
 *   (or a server that follows its older rules) refuses them: `%` `.` `$` and
 *   NUL become %25 %2E %24 %00, so a header `x.trace$id` is stored and read
 *   back intact;
 * - three derived fields serve the filters and `stats` on any server, with
 *   the operators every MongoDB-compatible server implements: `_ip` (the
 *   address as a fixed-width hex key, so a CIDR range is a range of keys),
 *   `_path` (an access record's url without its query) and `_hour` (the
 *   hour the record started in, for the histogram).
 * Reading a document drops the derived fields and restores the record.
 */
export type Doc = Record<string, unknown> & {_id: string}

/** The derived fields (see above): never shown. */
export const DERIVED = ['_ip', '_path', '_hour'] as const

const ESCAPED_KEY = /[%.$\0]/
const escapeKey = (k: string) =>
  ESCAPED_KEY.test(k) ? k.replace(/[%.$\0]/g, (c) => (c === '%' ? '%25' : c === '.' ? '%2E' : c === '$' ? '%24' : '%00')) : k
const unescapeKey = (k: string) =>
  k.includes('%') ? k.replace(/%(25|2E|24|00)/g, (_m, h: string) => String.fromCharCode(Number.parseInt(h, 16))) : k

function mapKeys(value: unknown, key: (k: string) => string): unknown {
  if (Array.isArray(value)) return value.map((v) => mapKeys(v, key))
  if (value === null || typeof value !== 'object' || value instanceof Date) return value
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) out[key(k)] = mapKeys(v, key)
  return out
}

/**
 * An address as a key whose order is the addresses' order within a family:
 * "4" and 8 hex digits, or "6" and 32. An IPv4-mapped IPv6 address stays
 * IPv6, as PostgreSQL's inet keeps it. Undefined for anything else.
 */
export function ipKey(ip: unknown): string | undefined {
  if (typeof ip !== 'string' || !ipaddr.isValid(ip)) return undefined
  const addr = ipaddr.parse(ip)
  return (addr.kind() === 'ipv4' ? '4' : '6') + Buffer.from(addr.toByteArray()).toString('hex')
}

/** The keys of a CIDR range, first and last: every address in it has a key between them. */
export function ipRange(address: string, bits: number): {from: string; to: string} {
  const addr = ipaddr.parse(address)
  const bytes = addr.toByteArray()
  const lo = bytes.map((b, i) => b & maskByte(bits, i))
  const hi = bytes.map((b, i) => (b & maskByte(bits, i)) | (~maskByte(bits, i) & 0xff))
  const family = addr.kind() === 'ipv4' ? '4' : '6'
  return {from: family + Buffer.from(lo).toString('hex'), to: family + Buffer.from(hi).toString('hex')}
}
const maskByte = (bits: number, i: number) => (bits >= (i + 1) * 8 ? 0xff : bits <= i * 8 ? 0 : (0xff << (8 - (bits - i * 8))) & 0xff)

const HOUR_MS = 3_600_000

/** A record (parsed from its journal line) as the document stored for it. */
export function toDocument(logType: LogType, record: Record<string, unknown>): Doc {
  const doc: Doc = {_id: String(record.id)}
  for (const [k, v] of Object.entries(record)) {
    if (k === 'id' || k === 'log_type') continue
    doc[escapeKey(k)] = k === 'created_at' ? new Date(v as string) : typeof v === 'object' && v !== null ? mapKeys(v, escapeKey) : v
  }
  const created = doc.created_at as Date
  if (Number.isNaN(created.getTime())) throw new Error(`created_at ${JSON.stringify(record.created_at)} is not a date`)
  doc._hour = new Date(Math.floor(created.getTime() / HOUR_MS) * HOUR_MS)
  const ip = ipKey(record.ip)
  if (ip) doc._ip = ip
  if (logType === 'access' && typeof record.url === 'string') doc._path = record.url.split('?', 1)[0]
  return doc
}

/** A stored document as the record it holds: the fields of its log type in their order, as the other stores give them. */
export function fromDocument(logType: LogType, doc: Record<string, unknown>): Row {
  const row: Row = {}
  for (const c of columnsOf(logType)) {
    const v = c === 'id' ? doc._id : doc[c]
    row[c] = v === undefined ? null : typeof v === 'object' && v !== null && !(v instanceof Date) ? mapKeys(v, unescapeKey) : v
  }
  return row
}
