import path from 'node:path'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {SOURCES, type SourceKind} from '../../stores/source.js'
import {ViewerAudit} from '../../ui/audit.js'
import {startUi} from '../../ui/server.js'
import {type SourcePool, filesPool, mongoPool, postgresPool} from '../../ui/sources.js'
import {redactText} from '../../util/redact.js'

export default class Ui extends BaseCommand<typeof Ui> {
  static summary = 'Serve the web viewer: lists with filters, a record in full, a dashboard, a live tail and exports, read-only.'
  static description =
    'Reads from PostgreSQL as the reader role (never writing), from MongoDB, or from the JSONL files (--source). ' +
    'Users log in with a password whose scrypt hash is in uiUsers (make one with `audit-logs ui hash-password`), ' +
    'or a reverse proxy names them in uiAuthHeader from an address in uiAuthProxies. Every page a user opens, ' +
    'every export, login and logout is itself an event in the audit trail. `run --ui` serves the same beside the capture server.'
  static examples = [
    'AUDIT_LOGS_UI_USERS="alice:$(audit-logs ui hash-password < alice.pw)" <%= config.bin %> <%= command.id %> --bind 127.0.0.1:8081',
    '<%= config.bin %> <%= command.id %> --source files --log-dir logs',
  ]
  static flags = {
    bind: Flags.string({description: 'HOST:PORT to serve on [default: uiBind, 127.0.0.1:8081]'}),
    source: Flags.option({
      description:
        'where to read: postgres, mongo, or the JSONL files of run [default: the configured stores: mongo when stores = mongo, else postgres]',
      options: SOURCES,
    })(),
    'log-dir': Flags.string({description: 'directory of the JSONL files (--source files) [default: the configured logDir]'}),
  }

  protected configFlags() {
    return {uiBind: this.flags.bind, logDir: this.flags['log-dir']}
  }

  async run(): Promise<void> {
    const config = await this.resolved()
    // the stores the configuration writes: the files alone when it writes no database (run --ui --no-database)
    const kind: SourceKind = this.flags.source ?? (!config.databaseSink ? 'files' : config.stores === 'mongo' ? 'mongo' : 'postgres')
    let sources: SourcePool
    if (kind === 'files') sources = filesPool(path.resolve(config.logDir))
    else if (kind === 'mongo') sources = mongoPool(await this.mongoStore('The viewer on MongoDB'))
    else {
      const target = await this.target()
      sources = await postgresPool(target.databaseUrl, target.dbName)
    }
    const log = (m: string) => this.logToStderr(redactText(m))
    const ui = await startUi({config, sources, audit: new ViewerAudit(config, log), version: this.config.version, log})
    this.log(`audit-logs ui: serving ${kind === 'files' ? `the files in ${path.resolve(config.logDir)}` : kind} on ${ui.url}`)
    await new Promise<void>((resolve) => {
      const stop = () => resolve()
      process.once('SIGTERM', stop)
      if (process.send) {
        // a child of `run --ui`: run stops it (SIGTERM) in its own order; Ctrl-C at the terminal is run's to handle
        process.on('SIGINT', () => {})
        process.once('disconnect', stop) // run is gone
      } else process.once('SIGINT', stop)
    })
    await ui.close()
    await sources.close()
    this.log('audit-logs ui: stopped')
    if (process.connected) process.disconnect() // the channel to run would keep this process alive
  }
}
