import {Args} from '@oclif/core'
import {sourceFlags} from '../filters/flags.js'
import {ReadCommand} from '../read-command.js'
import {renderRecord} from '../render/records.js'
import {findRecord} from '../stores/find.js'

export default class Show extends ReadCommand<typeof Show> {
  static summary = 'Print one full record: headers, bodies, flags, timing.'
  static examples = [
    '<%= config.bin %> <%= command.id %> 01a20cc4-2be0-720d-89d3-7a27694234dc',
    '<%= config.bin %> <%= command.id %> 01a20cc4-2be0-720d-89d3-7a27694234dc --json',
  ]
  static args = {id: Args.string({description: 'record id (UUID)', required: true})}
  static flags = {...sourceFlags}

  async run(): Promise<Record<string, unknown>> {
    const record = await findRecord(await this.source(), this.args.id as string)
    this.log(renderRecord(record))
    return record
  }
}
