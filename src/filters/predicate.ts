import net from 'node:net'
import {LOG_TYPE} from '../stores/log-types.js'
import type {Order} from '../stores/source.js'
import type {Filter, StatusTerm} from './parse.js'
import {pathRegex} from './sql.js'

type Row = Record<string, unknown>

/**
 * Two records' places in the order of `query`, (created_at, id) ascending: the time to the millisecond,
 * as the databases hold it, then the id (lower-case text orders as PostgreSQL's uuid and MongoDB's _id).
 */
export const comparePositions = (a: {at: number; id: string}, b: {at: number; id: string}): number =>
  a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** Records strictly beyond a cursor in the order of `query`: filters/mongo.ts's keysetMongo, selectRecords' SQL. */
export function keysetPredicate(position: {at: Date; id: string}, order: Order): (row: Row) => boolean {
  const cursor = {at: position.at.getTime(), id: position.id}
  const sign = order === 'newest' ? -1 : 1
  return (row) => sign * comparePositions({at: Date.parse(String(row.created_at)), id: String(row.id)}, cursor) > 0
}

export const statusMatches = (t: StatusTerm, s: number) =>
  t.op === 'range'
    ? s >= t.from && s <= t.to
    : t.op === 'eq'
      ? s === t.value
      : t.op === 'lt'
        ? s < t.value
        : t.op === 'le'
          ? s <= t.value
          : t.op === 'gt'
            ? s > t.value
            : s >= t.value

/** The same filter as an in-memory test of one record (a JSONL line, parsed), for the files source. */
export function toPredicate(f: Filter): (row: Row) => boolean {
  const pathRe = f.path ? new RegExp(pathRegex(f)) : undefined
  const pathField = LOG_TYPE[f.logType].pathField ?? 'path'
  let block: net.BlockList | undefined
  if (f.ip) {
    block = new net.BlockList()
    block.addSubnet(f.ip.address, f.ip.bits, f.ip.family === 4 ? 'ipv4' : 'ipv6')
  }
  const needle = f.search?.toLowerCase()
  const {searchFields} = LOG_TYPE[f.logType]
  return (row) => {
    const created = Date.parse(String(row.created_at))
    if (f.since && !(created >= f.since.getTime())) return false
    if (f.until && !(created < f.until.getTime())) return false
    const status = Number(row.status_code)
    if (f.status) {
      if (row.status_code === null || row.status_code === undefined) return false
      if (f.status.any.length && !f.status.any.some((t) => statusMatches(t, status))) return false
      if (f.status.not.includes(status)) return false
    }
    if (f.methods && !f.methods.includes(String(row.method))) return false
    if (pathRe) {
      const p = String(row[pathField] ?? '')
      if (f.path!.prefix && !p.startsWith(f.path!.prefix)) return false
      if (!pathRe.test(p)) return false
    }
    if (f.user !== undefined && row.user_id !== f.user) return false
    if (block) {
      const ip = typeof row.ip === 'string' ? row.ip : ''
      // the filter's family only, as PostgreSQL's <<= (BlockList alone puts IPv4 addresses inside ::/0)
      if (net.isIP(ip) !== f.ip!.family || !block.check(ip, f.ip!.family === 6 ? 'ipv6' : 'ipv4')) return false
    }
    const d = row.duration_ms === null || row.duration_ms === undefined ? NaN : Number(row.duration_ms) // no duration: no match, as NULL in SQL
    if (f.minDurationMs !== undefined && !(d >= f.minDurationMs)) return false
    if (f.maxDurationMs !== undefined && !(d <= f.maxDurationMs)) return false
    if (f.flag) {
      const flags = Array.isArray(row.flags) ? (row.flags as string[]) : []
      if (!flags.some((x) => (f.flag!.prefix ? x.startsWith(f.flag!.name) : x === f.flag!.name))) return false
    }
    if (needle) {
      const inBody = (b: unknown) => typeof b === 'string' && b.toLowerCase().includes(needle)
      if (!searchFields.some((field) => inBody(row[field]))) return false
    }
    if (f.requestId !== undefined && row.request_id !== f.requestId) return false
    if (f.actions && !f.actions.includes(row.action as string)) return false
    if (f.actor !== undefined && row.actor_id !== f.actor) return false
    if (f.target && (row.target_type !== f.target.type || (f.target.id !== undefined && row.target_id !== f.target.id))) return false
    if (f.severities && !f.severities.includes(row.severity as string)) return false
    return true
  }
}
