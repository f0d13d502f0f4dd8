import {Args} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {usageError} from '../errors.js'
import {cellText} from '../render/records.js'
import type {Db} from '../stores/postgres/db.js'
import {getRecord} from '../stores/postgres/reader.js'

/** One record in full: headers and JSON bodies pretty-printed. */
export function renderRecord(r: Record<string, unknown>): string {
  const lines: string[] = []
  for (const [key, value] of Object.entries(r)) {
    if (value === null || value === undefined || value === '') continue
    if (typeof value === 'object' && !(value instanceof Date)) {
      lines.push(`${key}:`, ...JSON.stringify(value, null, 2).split('\n').map((l) => `  ${l}`))
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

/** The record with this id, or a usage error that says what an id looks like. */
export async function findRecord(db: Db, id: string): Promise<Record<string, unknown>> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) throw usageError(`"${id}" is not a record id: a UUID such as 01a20cc4-2be0-720d-89d3-7a27694234dc`)
  const found = await getRecord(db, id)
  if (!found) throw usageError(`No record with id ${id}`)
  return found.record
}

export default class Show extends BaseCommand<typeof Show> {
  static summary = 'Print one full record: headers, bodies, flags, timing.'
  static examples = ['<%= config.bin %> <%= command.id %> 01a20cc4-2be0-720d-89d3-7a27694234dc', '<%= config.bin %> <%= command.id %> 01a20cc4-2be0-720d-89d3-7a27694234dc --json']
  static args = {id: Args.string({description: 'record id (UUID)', required: true})}

  async run(): Promise<Record<string, unknown>> {
    const record = await findRecord(await this.client(), this.args.id as string)
    this.log(renderRecord(record))
    return record
  }
}
