import {Args} from '@oclif/core'
import {sourceFlags} from '../filters/flags.js'
import {ReadCommand} from '../read-command.js'
import {renderRecord, renderRecordTable} from '../render/records.js'
import {findWithEvents} from '../stores/find.js'
import type {Row} from '../stores/source.js'

export default class Show extends ReadCommand<typeof Show> {
  static summary = 'Print one full record: headers, bodies, flags, timing; and the events linked to a request.'
  static description =
    'Takes a record id, or a request id (the X-Request-Id the proxy gives every request): then the request with that id, ' +
    'and the events the app sent about it.'
  static examples = [
    '<%= config.bin %> <%= command.id %> 01a20cc4-2be0-720d-89d3-7a27694234dc',
    '<%= config.bin %> <%= command.id %> 01a20cc4-2be0-720d-89d3-7a27694234dc --json',
    '<%= config.bin %> <%= command.id %> 7b0f3c1e-5b7d-4a47-9d3c-1f0e2a9c8d11 --source files --log-dir logs',
  ]
  static args = {id: Args.string({description: 'record id (UUID) or request id', required: true})}
  static flags = {...sourceFlags}

  async run(): Promise<Row> {
    const {record, events, more} = await findWithEvents(await this.source(), this.args.id as string)
    if (record) this.log(renderRecord(record))
    if (events.length) {
      this.log(`${record ? '\n' : ''}events of request ${String(events[0].request_id)}${more ? ' (the first 1000)' : ''}:`)
      this.log(
        renderRecordTable(events, ['created_at', 'action', 'actor_id', 'target_type', 'target_id', 'id'], {
          width: process.stdout.columns || 120,
          colour: false,
        }),
      )
    }
    // --json: the record as it always was, with the events linked to it when there are any
    return {...record, ...(events.length ? {events} : {})}
  }
}
