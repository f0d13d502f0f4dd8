import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {ExitCode} from '../errors.js'
import {renderTable} from '../render/table.js'
import {assertMigrated} from '../stores/postgres/partitions.js'
import type {LogType} from '../stores/postgres/periods.js'
import {type CleanupReport, cleanup} from '../stores/postgres/retention.js'
import {formatBytes} from '../util/bytes.js'

export default class Cleanup extends BaseCommand<typeof Cleanup> {
  static summary = 'Apply retention: drop expired partitions, delete older rows in batches.'
  static description =
    'Default retention is 90 days for request logs and 120 days for access logs (AUDIT_LOGS_REQUEST_RETENTION_DAYS, ' +
    'AUDIT_LOGS_ACCESS_RETENTION_DAYS); --days overrides both. Safe to interrupt with Ctrl-C: every batch ' +
    'is its own transaction.'
  static examples = [
    '<%= config.bin %> <%= command.id %> --dry-run',
    '<%= config.bin %> <%= command.id %> --days 30 --log-type request',
    '<%= config.bin %> <%= command.id %> --log-type gunicorn --batch-size 10000',
  ]
  static flags = {
    days: Flags.integer({description: 'keep this many days [default: 90 for request, 120 for access]', min: 1}),
    'dry-run': Flags.boolean({description: 'report what would go (rows and bytes per partition), change nothing'}),
    'batch-size': Flags.integer({description: 'rows per DELETE transaction [default: 5000]', min: 1}),
    'log-type': Flags.option({
      description: 'which logs (gunicorn is an alias of access)',
      options: ['request', 'access', 'all', 'gunicorn'] as const,
      default: 'all',
    })(),
  }

  protected configFlags() {
    return {cleanupBatchSize: this.flags['batch-size']}
  }

  async run(): Promise<CleanupReport> {
    const config = await this.resolved()
    const flag = this.flags['log-type']
    const types: LogType[] = flag === 'all' ? ['request', 'access'] : [flag === 'gunicorn' ? 'access' : (flag as LogType)]
    const retention = types.map((logType) => ({
      logType,
      days: this.flags.days ?? (logType === 'request' ? config.requestRetentionDays : config.accessRetentionDays),
    }))
    const client = await this.client()
    await assertMigrated(client)
    const spin = await this.spinner(this.flags['dry-run'] ? 'Measuring what would go' : 'Cleaning up')
    const report = await cleanup(client, {
      retention,
      dryRun: this.flags['dry-run'],
      batchSize: config.cleanupBatchSize,
      signal: this.interruptSignal(),
      onProgress: (e) => (spin.text = `${e.action === 'drop' ? 'dropped' : 'deleting from'} ${e.partition}: ${e.rows} rows`),
    }).finally(() => spin.stop())

    for (const t of report.targets) this.log(`${t.table}: keeping ${t.days} days (cutoff ${t.cutoff})`)
    if (report.actions.length) {
      const verb = (a: string) => (report.dryRun ? `would ${a}` : a === 'drop' ? 'dropped' : 'deleted')
      this.log(
        renderTable(
          ['partition', 'action', 'rows', 'size'],
          report.actions.map((a) => [a.partition, verb(a.action), a.rows, formatBytes(a.bytes)]),
        ),
      )
    }
    const summary = `${report.totalRows} row(s), ${formatBytes(report.totalBytes)}`
    this.log(
      report.dryRun
        ? `Dry run: ${summary} would be removed; nothing was changed.`
        : report.actions.length
          ? `Removed ${summary}.`
          : 'Nothing to remove.',
    )
    if (report.interrupted) {
      this.logToStderr('Interrupted between batches: the tables are consistent; run cleanup again to finish.')
      process.exitCode = ExitCode.interrupted
    }
    return report
  }
}
