import {AuditLogsError, ExitCode, usageError} from '../errors.js'
import type {LogType} from './log-types.js'
import {RECORD_ID, type RecordSource, type Row} from './source.js'

/** The record with this id, or a usage error that says what an id looks like, or that none has it. */
export async function findRecord(source: RecordSource, id: string): Promise<Row> {
  if (!RECORD_ID.test(id)) throw usageError(`"${id}" is not a record id: a UUID such as 01a20cc4-2be0-720d-89d3-7a27694234dc`)
  const found = await source.get(id)
  if (!found) throw usageError(`No record with id ${id}`)
  return found.record
}

/** A store that holds no events at all (no events.jsonl; no event_logs table yet, a migration pending) has none for a request. */
function noEvents(error: unknown): Row[] {
  const absent = (error instanceof AuditLogsError && error.exit === ExitCode.usage) || (error as {code?: string}).code === '42P01'
  if (absent) return []
  throw error
}

/** Events linked to one request, at most this many (oldest first: the order they happened in). */
const MAX_LINKED = 1000

/**
 * What `show` prints: the record with this id, or else the request whose
 * request id (X-Request-Id) this is; and the events linked to that request
 * (its request_id), which may exist without a request record (a path the
 * proxy does not log in full).
 */
export async function findWithEvents(
  source: RecordSource,
  key: string,
): Promise<{logType?: LogType; record?: Row; events: Row[]; more: boolean}> {
  let found = RECORD_ID.test(key) ? await source.get(key) : undefined
  const requestId = found ? (found.logType === 'request' ? (found.record.request_id as string | null) : null) : key
  if (!found && key.length <= 200) {
    const [request] = await source.query({logType: 'request', requestId: key}, {limit: 1})
    if (request) found = {logType: 'request', record: request}
  }
  const events = requestId
    ? await source.query({logType: 'event', requestId}, {limit: MAX_LINKED + 1, order: 'oldest'}).catch(noEvents)
    : []
  if (!found && events.length === 0) throw usageError(`No record with id ${key}, nor a request or event with it as its request id`)
  return {logType: found?.logType, record: found?.record, events: events.slice(0, MAX_LINKED), more: events.length > MAX_LINKED}
}
