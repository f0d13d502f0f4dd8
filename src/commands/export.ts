import path from 'node:path'
import {Flags} from '@oclif/core'
import {silentSpinner} from '../base-command.js'
import {ExitCode, usageError} from '../errors.js'
import {filterFlags, filterInput} from '../filters/flags.js'
import {parseFilter} from '../filters/parse.js'
import {ReadCommand} from '../read-command.js'
import {type ExportResult, exportRecords} from '../render/export.js'
import {EXPORT_FORMATS} from '../stores/source.js'
import {writableDir} from '../util/dirs.js'
import {formatBytes} from '../util/bytes.js'

export default class Export extends ReadCommand<typeof Export> {
  static summary = 'Stream every matching record to a file or stdout (CSV, NDJSON, JSON, HAR).'
  static description =
    'CSV and NDJSON come straight from COPY, JSON and HAR through a server-side cursor (from MongoDB, every ' +
    'format from a cursor), so memory stays flat whatever the size. A file is written under NAME.partial and ' +
    'renamed when complete; on failure or Ctrl-C it is removed.'
  static examples = [
    '<%= config.bin %> <%= command.id %> --since 30d --status 5xx --format csv --out 5xx.csv',
    '<%= config.bin %> <%= command.id %> --user 42 --since 7d --format har --out user-42.har',
    '<%= config.bin %> <%= command.id %> --since 24h --format ndjson --gzip --out last-day.ndjson.gz',
    "<%= config.bin %> <%= command.id %> --path '/api/**' --format ndjson | jq .status_code",
  ]
  static flags = {
    ...filterFlags,
    format: Flags.option({description: 'output format (har: request logs only)', options: EXPORT_FORMATS, default: 'ndjson'})(),
    out: Flags.string({description: 'file to write [default: stdout]'}),
    gzip: Flags.boolean({description: 'gzip the output'}),
  }

  async run(): Promise<ExportResult> {
    const f = parseFilter(filterInput(this.flags))
    const {format} = this.flags
    if (format === 'har' && f.logType !== 'request') throw usageError('--format har needs request logs (--log-type request)')
    if (this.jsonEnabled() && !this.flags.out) throw usageError('--json needs --out: without it the records themselves go to stdout')
    if (this.flags.out) writableDir(path.dirname(path.resolve(this.flags.out)), 'directory of --out', '--out', {create: false})
    const source = await this.source()
    const spin = this.flags.out ? await this.spinner('Exporting') : silentSpinner('')
    const started = Date.now()
    const signal = this.interruptSignal()
    let result: ExportResult
    try {
      result = await exportRecords({
        source,
        filter: f,
        format,
        out: this.flags.out ?? null,
        gzip: this.flags.gzip,
        version: this.config.version,
        signal,
        onProgress: (rows) =>
          (spin.text = `Exporting: ${rows} rows, ${Math.round(rows / Math.max(0.001, (Date.now() - started) / 1000))} rows/s`),
      })
    } catch (error) {
      spin.fail()
      if (signal.aborted) {
        this.logToStderr('Interrupted: the partial file was removed.')
        this.exit(ExitCode.interrupted)
      }
      throw error
    }
    spin.stop()
    this.logToStderr(
      `Exported ${result.rows} record(s), ${formatBytes(result.bytes)} in ${result.seconds.toFixed(1)} s${result.file ? ` to ${result.file}` : ''}.`,
    )
    return result
  }
}
