import type {KeyObject} from 'node:crypto'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import type {ResolvedConfig} from '../config/resolve.js'
import {STORES} from '../config/schema.js'
import {retentionDays, storesOf} from '../config/stores.js'
import {ExitCode} from '../errors.js'
import {renderTable} from '../render/table.js'
import type {MongoCleanupReport} from '../stores/mongo/retention.js'
import {assertMigrated} from '../stores/postgres/partitions.js'
import {LOG_TYPES, type LogType, logTypeOf} from '../stores/log-types.js'
import {type CleanupReport, cleanup, cleanupNotes} from '../stores/postgres/retention.js'
import type {PruneReport} from '../stores/postgres/prune.js'
import {loadPrivateKey} from '../stores/postgres/integrity.js'
import {formatBytes} from '../util/bytes.js'

/** PostgreSQL's report as before (its fields at the top, when it was cleaned), MongoDB's under `mongo`. */
export type CleanupResult = (CleanupReport | {dryRun: boolean; interrupted: boolean}) & {
  mongo?: MongoCleanupReport
  /** a --days shorter than a log type's configured retention (also on stderr) */
  warnings?: string[]
}
type Retention = Array<{logType: LogType; days: number}>
const configuredDays = (config: ResolvedConfig) => Object.fromEntries(LOG_TYPES.map((t) => [t, retentionDays(config, t)]))

export default class Cleanup extends BaseCommand<typeof Cleanup> {
  static summary = 'Apply retention: drop expired partitions, delete older rows (and MongoDB documents) in batches.'
  static description =
    'Default retention is 90 days for request logs and 120 days for access logs (AUDIT_LOGS_REQUEST_RETENTION_DAYS, ' +
    'AUDIT_LOGS_ACCESS_RETENTION_DAYS); --days overrides both. Safe to interrupt with Ctrl-C: every batch ' +
    'is its own transaction (on MongoDB, its own deleteMany). Cleans the configured stores, or --store.'
  static examples = [
    '<%= config.bin %> <%= command.id %> --dry-run',
    '<%= config.bin %> <%= command.id %> --days 30 --log-type request',
    '<%= config.bin %> <%= command.id %> --log-type gunicorn --batch-size 10000',
    '<%= config.bin %> <%= command.id %> --store mongo --dry-run',
  ]
  static flags = {
    store: Flags.option({description: 'which store to clean [default: the configured stores]', options: STORES})(),
    days: Flags.integer({description: 'keep this many days [default: 90 for request, 120 for access, 365 for event]', min: 1}),
    'dry-run': Flags.boolean({description: 'report what would go (rows and bytes per partition), change nothing'}),
    'batch-size': Flags.integer({description: 'rows per DELETE transaction (documents per deleteMany) [default: 5000]', min: 1}),
    'log-type': Flags.option({
      description: 'which logs (gunicorn is an alias of access)',
      options: [...LOG_TYPES, 'all', 'gunicorn'] as const,
      default: 'all',
    })(),
  }

  protected configFlags() {
    return {cleanupBatchSize: this.flags['batch-size']}
  }

  async run(): Promise<CleanupResult> {
    const config = await this.resolved()
    const stores = storesOf({stores: this.flags.store ?? config.stores})
    const flag = this.flags['log-type']
    const types: LogType[] = flag === 'all' ? [...LOG_TYPES] : [logTypeOf(flag)!]
    const retention = types.map((logType) => ({
      logType,
      days: this.flags.days ?? retentionDays(config, logType),
    }))
    const warnings = this.shorterThanConfigured(config, retention)
    for (const w of warnings) this.logToStderr(`Warning: ${w}`)
    const signal = this.interruptSignal()
    const signingKey = this.signingKey(config)
    const pg = stores.postgres ? await this.cleanupPostgres(config, retention, signal, signingKey) : undefined
    const mongo = stores.mongo && !pg?.interrupted ? await this.cleanupMongo(config, retention, signal, signingKey) : undefined
    const interrupted = !!pg?.interrupted || !!mongo?.interrupted
    if (interrupted) {
      this.logToStderr('Interrupted between batches: the tables are consistent; run cleanup again to finish.')
      process.exitCode = ExitCode.interrupted
    }
    return {...(pg ?? {dryRun: !!this.flags['dry-run']}), interrupted, ...(mongo ? {mongo} : {}), ...(warnings.length ? {warnings} : {})}
  }

  /**
   * A `--days` shorter than the retention configured for a log type removes records the configuration says are kept,
   * and verify bounds every cutoff by that configuration (a cutoff recorded at W must be at most W minus the configured
   * days, whenever verify runs): said before anything goes, with the way to make it the policy.
   */
  private shorterThanConfigured(config: ResolvedConfig, retention: Retention): string[] {
    return retention.flatMap(({logType, days}) => {
      const configured = retentionDays(config, logType)
      if (days >= configured) return []
      const setting = `${logType}RetentionDays`
      return [
        `--days ${days} is shorter than the ${configured} days configured for ${logType} logs (${setting}): ` +
          `${this.flags['dry-run'] ? 'it would remove' : 'it removes'} records the configuration keeps` +
          // verify allows a day's slack (RETENTION_SLACK_MS)
          (configured - days > 1
            ? ', and where it removes any, `audit-logs verify` reports its cutoff as BAD RETENTION for as long as the configured retention is longer. '
            : '. ') +
          `If ${days} days is the new policy, set ${setting} ` +
          `(AUDIT_LOGS_${logType.toUpperCase()}_RETENTION_DAYS) to ${days} first.`,
      ]
    })
  }

  /**
   * integrityKey, to sign each cutoff with the retention it applies (stores/postgres/integrity.ts signRetention), so that
   * verify still honours it once the retention is raised. Only the configured retention is signed (configuredDays): a
   * shorter `--days` stays bounded by it, as before. A key that cannot be read does not stop the cleanup: its cutoffs go unsigned.
   */
  private signingKey(config: ResolvedConfig): KeyObject | undefined {
    if (!config.integrityKey) return undefined
    try {
      return loadPrivateKey(config.integrityKey).key
    } catch {
      this.logToStderr(
        'integrityKey is set but cannot be used as the Ed25519 private key (run `audit-logs doctor`): the retention cutoffs are recorded unsigned',
      )
      return undefined
    }
  }

  private async cleanupPostgres(
    config: ResolvedConfig,
    retention: Retention,
    signal: AbortSignal,
    signingKey: KeyObject | undefined,
  ): Promise<CleanupReport> {
    const client = await this.client()
    await assertMigrated(client)
    const spin = await this.spinner(this.flags['dry-run'] ? 'Measuring what would go' : 'Cleaning up')
    const report = await cleanup(client, {
      retention,
      dryRun: !!this.flags['dry-run'],
      batchSize: config.cleanupBatchSize,
      signal,
      // the integrity chains are pruned by cutoffs the configured retention allows, as verify honours them
      configuredDays: configuredDays(config),
      signingKey,
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
    this.logPruned(report.integrity, report.dryRun, 'integrity_batches')
    for (const note of cleanupNotes(report)) this.logToStderr(note)
    return report
  }

  /** What pruning the integrity chains did (or, dry, would do); why it did not where it did not is among cleanupNotes. */
  private logPruned(chains: PruneReport | undefined, dryRun: boolean, where: string): void {
    if (chains?.batches)
      this.log(
        `${where}: ${dryRun ? 'would prune' : 'pruned'} ${chains.batches} batch row(s) holding the hashes of ` +
          `${chains.records} removed record(s): ` +
          chains.instances.map((i) => `${i.instance} ${i.fromSeq}..${i.throughSeq}`).join(', '),
      )
  }

  private async cleanupMongo(
    config: ResolvedConfig,
    retention: Retention,
    signal: AbortSignal,
    signingKey: KeyObject | undefined,
  ): Promise<MongoCleanupReport> {
    const store = await this.mongoStore('cleanup --store mongo')
    const {cleanupMongo} = await import('../stores/mongo/retention.js')
    const spin = await this.spinner(this.flags['dry-run'] ? 'Counting what would go in MongoDB' : 'Cleaning up MongoDB')
    const report = await cleanupMongo(store, {
      retention,
      dryRun: !!this.flags['dry-run'],
      batchSize: config.cleanupBatchSize,
      signal,
      signingKey,
      configuredDays: configuredDays(config),
      onProgress: (e) => (spin.text = `deleting from ${e.collection} (MongoDB): ${e.deleted} of ${e.older} documents`),
    }).finally(() => spin.stop())

    for (const t of report.targets) {
      this.log(`${t.collection} (MongoDB ${report.database}): keeping ${t.days} days (cutoff ${t.cutoff})`)
      // the TTL monitor deletes on its own schedule (once a minute) and by its own time: cleanup still removes what is past the cutoff
      if (t.ttl)
        this.log(
          `  the server expires its documents itself after ${t.ttl.days} days (TTL index ${t.ttl.index}); cleanup removes what is past the cutoff now`,
        )
    }
    const verb = report.dryRun ? 'would delete' : 'deleted'
    this.log(
      renderTable(
        ['collection', 'action', 'documents', 'batches'],
        report.targets.map((t) => [t.collection, verb, report.dryRun ? t.older : t.deleted, report.dryRun ? '' : t.batches]),
      ),
    )
    this.log(
      report.dryRun
        ? `Dry run: ${report.totalDocuments} document(s) would be removed from MongoDB; nothing was changed.`
        : report.totalDocuments
          ? `Removed ${report.totalDocuments} document(s) from MongoDB.`
          : 'MongoDB: nothing to remove.',
    )
    this.logPruned(report.integrity, report.dryRun, `integrity_batches (MongoDB ${report.database})`)
    for (const note of cleanupNotes(report, ` (MongoDB ${report.database})`)) this.logToStderr(note)
    return report
  }
}
