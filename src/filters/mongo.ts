import {ipKey, ipRange} from '../stores/mongo/documents.js'
import type {Order} from '../stores/source.js'
import {LOG_TYPE} from '../stores/log-types.js'
import type {Filter, StatusTerm} from './parse.js'
import {pathRegex} from './sql.js'

/**
 * A MongoDB query document. Every key in it is ours (a field name or an
 * operator written here); user text is only ever the operand of an explicit
 * operator ($eq, $in, $nin, $gte, $lt, $regex), so a value such as
 * `{"$gt": ""}` or `$where` is matched as text, never run.
 */
export type MongoFilter = Record<string, unknown>

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

const OPS = {eq: '$eq', lt: '$lt', le: '$lte', gt: '$gt', ge: '$gte'} as const
const statusTerm = (t: StatusTerm): MongoFilter =>
  t.op === 'range' ? {status_code: {$gte: t.from, $lte: t.to}} : {status_code: {[OPS[t.op]]: t.value}}

/**
 * The filter with the meaning of filters/sql.ts and filters/predicate.ts, on
 * the documents of stores/mongo/documents.ts (the address as `_ip`, a
 * fixed-width key, so a CIDR range is a range of keys).
 */
export function toMongo(f: Filter): MongoFilter {
  const and: MongoFilter[] = []
  if (f.since || f.until) and.push({created_at: {...(f.since ? {$gte: f.since} : {}), ...(f.until ? {$lt: f.until} : {})}})
  if (f.status) {
    if (f.status.any.length) and.push(f.status.any.length === 1 ? statusTerm(f.status.any[0]) : {$or: f.status.any.map(statusTerm)})
    // PostgreSQL's `status_code <> ALL(...)` is NULL, so false, for a row without a status; $nin alone would match it
    if (f.status.not.length) and.push({status_code: {$nin: f.status.not, $ne: null}})
  }
  if (f.methods) and.push({method: {$in: f.methods}})
  if (f.path) {
    // an access record's url may carry a query: the path ends at `?` or at the end, as in sql.ts
    and.push({[LOG_TYPE[f.logType].pathField ?? 'path']: {$regex: pathRegex(f)}})
  }
  if (f.user !== undefined) and.push({user_id: {$eq: f.user}})
  if (f.ip) {
    const whole = f.ip.bits === (f.ip.family === 4 ? 32 : 128)
    const range = ipRange(f.ip.address, f.ip.bits)
    and.push({_ip: whole ? {$eq: ipKey(f.ip.address)} : {$gte: range.from, $lte: range.to}})
  }
  if (f.minDurationMs !== undefined) and.push({duration_ms: {$gte: f.minDurationMs}})
  if (f.maxDurationMs !== undefined) and.push({duration_ms: {$lte: f.maxDurationMs}})
  // an array field matches when one element does: `flags: {$eq: x}` is `x = ANY(flags)`
  if (f.flag) and.push({flags: f.flag.prefix ? {$regex: '^' + escapeRegex(f.flag.name)} : {$eq: f.flag.name}})
  if (f.search) {
    const needle = {$regex: escapeRegex(f.search), $options: 'i'}
    and.push({$or: LOG_TYPE[f.logType].searchFields.map((field) => ({[field]: needle}))})
  }
  if (f.requestId !== undefined) and.push({request_id: {$eq: f.requestId}})
  if (f.actions) and.push({action: {$in: f.actions}})
  if (f.actor !== undefined) and.push({actor_id: {$eq: f.actor}})
  if (f.target) and.push({target_type: {$eq: f.target.type}, ...(f.target.id === undefined ? {} : {target_id: {$eq: f.target.id}})})
  if (f.severities) and.push({severity: {$in: f.severities}})
  return and.length === 0 ? {} : and.length === 1 ? and[0] : {$and: and}
}

/**
 * Documents strictly beyond a cursor in the order of `query`, (created_at, _id) descending for newest: the
 * bound on created_at alone is what the created_at index serves, the $or decides within its millisecond.
 */
export function keysetMongo(position: {at: Date; id: string}, order: Order): MongoFilter {
  const [beyond, orEqual] = order === 'newest' ? (['$lt', '$lte'] as const) : (['$gt', '$gte'] as const)
  return {created_at: {[orEqual]: position.at}, $or: [{created_at: {[beyond]: position.at}}, {_id: {[beyond]: position.id}}]}
}

/** Both conditions (a filter and one of our own). */
export const andMongo = (a: MongoFilter, b: MongoFilter): MongoFilter => (Object.keys(a).length === 0 ? b : {$and: [a, b]})
