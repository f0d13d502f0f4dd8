import {usageError} from '../errors.js'
import {RECORD_ID, type RecordSource, type Row} from './source.js'

/** The record with this id, or a usage error that says what an id looks like, or that none has it. */
export async function findRecord(source: RecordSource, id: string): Promise<Row> {
  if (!RECORD_ID.test(id)) throw usageError(`"${id}" is not a record id: a UUID such as 01a20cc4-2be0-720d-89d3-7a27694234dc`)
  const found = await source.get(id)
  if (!found) throw usageError(`No record with id ${id}`)
  return found.record
}
