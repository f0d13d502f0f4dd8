import {Flags} from '@oclif/core'
import {filterFlags, filterInput} from '../filters/flags.js'
import {parseFilter} from '../filters/parse.js'
import {ReadCommand} from '../read-command.js'
import {DEFAULT_COLUMNS, cellText} from '../render/records.js'

const {since: _since, until: _until, ...tailFilterFlags} = filterFlags

export default class Tail extends ReadCommand<typeof Tail> {
  static summary = 'Follow new records as they arrive, with the same filters, until Ctrl-C.'
  static description =
    'From PostgreSQL, polled every --interval with a look-back of a minute (records reach it a little after ' +
    'they happen); from MongoDB, a change stream where the deployment offers one (a replica set), polled ' +
    'otherwise; with --source files, the lines appended to the current JSONL file, across rotations.'
  static examples = [
    "<%= config.bin %> <%= command.id %> --status '>=500'",
    '<%= config.bin %> <%= command.id %> --user 42 --format ndjson',
    '<%= config.bin %> <%= command.id %> --source files --log-dir logs',
    '<%= config.bin %> <%= command.id %> --source mongo --flag suspicious',
  ]
  static enableJsonFlag = false
  static flags = {
    ...tailFilterFlags,
    interval: Flags.integer({description: 'poll every N milliseconds', default: 1000, min: 100}),
    format: Flags.option({description: 'line format', options: ['table', 'ndjson'] as const, default: 'table'})(),
  }

  async run(): Promise<void> {
    const f = parseFilter(filterInput(this.flags))
    const source = await this.source()
    const columns = DEFAULT_COLUMNS[f.logType]
    for await (const r of source.follow(f, {intervalMs: this.flags.interval, signal: this.interruptSignal()})) {
      this.log(this.flags.format === 'ndjson' ? JSON.stringify(r) : columns.map((c) => cellText(c, r[c])).join('  '))
    }
  }
}
