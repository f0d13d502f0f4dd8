import path from 'node:path'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {type ScaffoldResult, dirFlags, emitMany} from '../../scaffold/deploy/output.js'
import {vectorFiles} from '../../scaffold/deploy/vector.js'

export default class ScaffoldVector extends BaseCommand<typeof ScaffoldVector> {
  static summary = 'Write a Vector pipeline that ships the JSONL files to ClickHouse, and the ClickHouse tables.'
  static description =
    "vector.yaml: a file source over every log type's JSONL file and its rotated (gzipped) backups, JSON parsing, a " +
    'route by log_type and one ClickHouse sink per table, with a disk buffer. clickhouse.sql: the CREATE TABLE of ' +
    'each (MergeTree, partitioned by month, a TTL from the retention settings). The log directory comes from the ' +
    'configuration (or --log-dir). Refuses existing files unless --force.'
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --dir deploy/vector --log-dir /var/lib/audit-logs/logs --database audit',
  ]
  static flags = {
    ...dirFlags,
    'log-dir': Flags.string({description: 'the JSONL directory as the Vector host sees it [default: the configured logDir]'}),
    database: Flags.string({description: 'ClickHouse database', default: 'audit_logs'}),
  }

  async run(): Promise<ScaffoldResult> {
    const c = await this.resolved()
    const files = vectorFiles({
      logDir: path.resolve(this.flags['log-dir'] ?? c.logDir),
      database: this.flags.database,
      retentionDays: {
        request: c.requestRetentionDays,
        access: c.accessRetentionDays,
        event: c.eventRetentionDays,
        outbound: c.outboundRetentionDays,
        app: c.appRetentionDays,
      },
    })
    return emitMany(this.flags, files, 'scaffold vector', (l) => this.log(l))
  }
}
