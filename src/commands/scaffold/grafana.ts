import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {usageError} from '../../errors.js'
import {renderGrafanaDashboard} from '../../scaffold/deploy/grafana.js'
import {type ScaffoldResult, emitOne, oneFileFlags} from '../../scaffold/deploy/output.js'

export default class ScaffoldGrafana extends BaseCommand<typeof ScaffoldGrafana> {
  static summary = 'Write a Grafana dashboard over the audit database: request rate, errors, latency percentiles, top paths.'
  static description =
    'A dashboard JSON for Dashboards > Import (or provisioning). Its panels query access_logs in PostgreSQL through a ' +
    'datasource variable: point it at a PostgreSQL datasource that logs in as the reader role (SELECT only).'
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --out grafana/audit-logs.json --title "Shop: audit"',
  ]
  static flags = {
    ...oneFileFlags('audit-logs-dashboard.json'),
    title: Flags.string({description: 'dashboard title', default: 'audit-logs'}),
    uid: Flags.string({description: 'dashboard uid (letters, digits, - and _; at most 40)', default: 'audit-logs'}),
  }

  async run(): Promise<ScaffoldResult> {
    if (!/^[A-Za-z0-9_-]{1,40}$/.test(this.flags.uid))
      throw usageError(`--uid must be 1-40 letters, digits, - or _; got "${this.flags.uid}"`)
    return emitOne(this.flags, renderGrafanaDashboard(this.flags), 'scaffold grafana', (l) => this.log(l))
  }
}
