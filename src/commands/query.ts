import {Flags} from '@oclif/core'
import {usageError} from '../errors.js'
import {filterFlags, filterInput} from '../filters/flags.js'
import {parseFilter} from '../filters/parse.js'
import {ReadCommand} from '../read-command.js'
import {DEFAULT_COLUMNS, FORMATS, type Row, renderRecord, renderRecordTable, renderRecords} from '../render/records.js'
import {findRecord} from '../stores/find.js'
import {columnsOf} from '../stores/source.js'

export default class Query extends ReadCommand<typeof Query> {
  static summary = 'List matching records, newest first.'
  static description =
    'Reads PostgreSQL, or with --source files the JSONL files that run writes (rotated and gzipped ones included), with one filter language.'
  static examples = [
    "<%= config.bin %> <%= command.id %> --status '>=400' --since 24h",
    '<%= config.bin %> <%= command.id %> --user 42 --since 2026-11-23 --until 2026-11-24 --format csv',
    "<%= config.bin %> <%= command.id %> --path '/api/**' --min-duration 1s --limit 20",
    '<%= config.bin %> <%= command.id %> --source files --log-dir logs --flag suspicious',
    '<%= config.bin %> <%= command.id %> --id 01a20cc4-2be0-720d-89d3-7a27694234dc',
  ]
  static flags = {
    ...filterFlags,
    limit: Flags.integer({description: 'at most this many records', default: 50, min: 1, max: 100_000}),
    columns: Flags.string({
      description: 'comma-separated columns for table and csv [default: time, method, status, path, duration, user, ip]',
    }),
    format: Flags.option({description: 'output format', options: FORMATS, default: 'table'})(),
    id: Flags.string({description: 'show one full record by id'}),
  }

  async run(): Promise<{records: Row[]} | {record: Row}> {
    if (this.flags.id) return {record: await this.show(this.flags.id)}
    const f = parseFilter(filterInput(this.flags))
    const all = columnsOf(f.logType)
    const columns = this.flags.columns?.split(',').map((c) => c.trim()) ?? DEFAULT_COLUMNS[f.logType]
    const unknown = columns.filter((c) => !all.includes(c))
    if (unknown.length) throw usageError(`--columns: unknown column(s) ${unknown.join(', ')}. Accepted: ${all.join(', ')}`)
    const records = await (await this.source()).query(f, {limit: this.flags.limit})
    const {format} = this.flags
    if (format === 'table') {
      this.log(
        records.length
          ? renderRecordTable(records, columns, {
              width: process.stdout.columns || 120,
              colour: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
            })
          : 'No matching records.',
      )
    } else this.log(renderRecords(records, format === 'csv' ? columns : all, format))
    return {records}
  }

  private async show(id: string): Promise<Row> {
    const record = await findRecord(await this.source(), id)
    this.log(renderRecord(record))
    return record
  }
}
