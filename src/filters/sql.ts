import {LOG_TYPE} from '../stores/log-types.js'
import type {Filter, StatusTerm} from './parse.js'

/** A WHERE clause with its parameters; no user text is ever part of `text`. */
export type Where = {text: string; values: unknown[]}

const likePrefix = (s: string) => s.replace(/[\\%_]/g, '\\$&') + '%'

/** Characters of path (url) that its index holds: migrations/0002_bounded_index_keys.sql. */
export const INDEXED_PATH_CHARS = 600
const OPS = {eq: '=', lt: '<', le: '<=', gt: '>', ge: '>='} as const

/** The path filter's regex on the field it matches: an access record's url may go on with `?query`. */
export const pathRegex = (f: Filter): string =>
  LOG_TYPE[f.logType].pathField === 'url' ? f.path!.regex.replace(/\$$/, '(\\?|$)') : f.path!.regex

/** Translates a filter into parameterised SQL, numbering parameters from `first`. */
export function toSql(f: Filter, first = 1): Where {
  const values: unknown[] = []
  const p = (v: unknown) => {
    values.push(v)
    return `$${first + values.length - 1}`
  }
  const and: string[] = []
  const pathColumn = LOG_TYPE[f.logType].pathField ?? 'path'
  if (f.since) and.push(`created_at >= ${p(f.since)}`)
  if (f.until) and.push(`created_at < ${p(f.until)}`)
  if (f.status) {
    const term = (t: StatusTerm) =>
      t.op === 'range' ? `status_code BETWEEN ${p(t.from)} AND ${p(t.to)}` : `status_code ${OPS[t.op]} ${p(t.value)}`
    if (f.status.any.length) and.push(`(${f.status.any.map(term).join(' OR ')})`)
    if (f.status.not.length) and.push(`status_code <> ALL(${p(f.status.not)}::int[])`)
  }
  if (f.methods) and.push(`method = ANY(${p(f.methods)}::text[])`)
  if (f.path) {
    // the literal prefix, compared as the index holds it (the first characters), lets PostgreSQL
    // use the text_pattern_ops index; the regex on the whole value decides
    if (f.path.prefix) {
      const indexed = Array.from(f.path.prefix).slice(0, INDEXED_PATH_CHARS).join('') // characters as PostgreSQL counts them (code points)
      and.push(`left(${pathColumn}, ${INDEXED_PATH_CHARS}) LIKE ${p(likePrefix(indexed))}`)
    }
    const regex = pathRegex(f)
    and.push(`${pathColumn} ~ ${p(regex)}`)
  }
  if (f.user !== undefined) and.push(`user_id = ${p(f.user)}`)
  if (f.ip)
    and.push(
      f.ip.bits === (f.ip.family === 4 ? 32 : 128) ? `ip = ${p(f.ip.address)}::inet` : `ip <<= ${p(`${f.ip.address}/${f.ip.bits}`)}::inet`,
    )
  if (f.minDurationMs !== undefined) and.push(`duration_ms >= ${p(f.minDurationMs)}`)
  if (f.maxDurationMs !== undefined) and.push(`duration_ms <= ${p(f.maxDurationMs)}`)
  if (f.flag)
    and.push(
      f.flag.prefix
        ? `EXISTS (SELECT 1 FROM unnest(flags) AS fl WHERE fl LIKE ${p(likePrefix(f.flag.name))})`
        : `${p(f.flag.name)} = ANY(flags)`,
    )
  if (f.search) {
    const needle = p('%' + f.search.replace(/[\\%_]/g, '\\$&') + '%')
    // the type's own fields (names of ours, from log-types.ts)
    and.push(`(${LOG_TYPE[f.logType].searchFields.map((c) => `${c} ILIKE ${needle}`).join(' OR ')})`)
  }
  if (f.requestId !== undefined) and.push(`request_id = ${p(f.requestId)}`)
  if (f.actions) and.push(`action = ANY(${p(f.actions)}::text[])`)
  if (f.actor !== undefined) and.push(`actor_id = ${p(f.actor)}`)
  if (f.target) and.push(`target_type = ${p(f.target.type)}` + (f.target.id === undefined ? '' : ` AND target_id = ${p(f.target.id)}`))
  if (f.severities) and.push(`severity = ANY(${p(f.severities)}::text[])`)
  return {text: and.length ? and.join(' AND ') : 'TRUE', values}
}
