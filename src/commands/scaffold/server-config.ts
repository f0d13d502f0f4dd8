import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {type ServerConfigAnswers, renderServerConfig, writeServerConfig} from '../../scaffold/server-config.js'
import {registerSecret, urlPassword} from '../../util/redact.js'

export default class ScaffoldServerConfig extends BaseCommand<typeof ScaffoldServerConfig> {
  static summary = 'Write the configuration file that `audit-logs run` reads.'
  static description = 'Asks on a terminal (bind, upstream or command, workers, log rotation, database, body bound); --yes takes the flags and defaults without asking. Refuses to overwrite an existing file without --force.'
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --yes --upstream http://127.0.0.1:3000 --workers 2',
    '<%= config.bin %> <%= command.id %> --yes --command "node server.js" --out deploy/audit-logs.config.mjs --force',
  ]
  static flags = {
    out: Flags.string({description: 'file to write', default: 'audit-logs.config.mjs'}),
    yes: Flags.boolean({char: 'y', description: 'do not ask: use the flags and defaults'}),
    force: Flags.boolean({description: 'overwrite an existing file'}),
    bind: Flags.string({description: 'HOST:PORT to listen on'}),
    upstream: Flags.string({description: 'URL of the app to proxy to'}),
    command: Flags.string({description: 'the app to spawn instead, e.g. "node server.js"'}),
    workers: Flags.integer({description: 'proxy worker processes', min: 1, max: 64}),
    'log-dir': Flags.string({description: 'directory of the JSONL files'}),
    'max-body-length': Flags.integer({description: 'bytes of each body kept', min: 0}),
  }

  protected configFlags() {
    const f = this.flags
    registerSecret(urlPassword(f['database-url']))
    return {bind: f.bind, upstream: f.upstream, workers: f.workers, logDir: f['log-dir'], maxBodyLength: f['max-body-length']}
  }

  async run(): Promise<{file: string}> {
    const c = await this.resolved()
    const answers: ServerConfigAnswers = {
      bind: c.bind,
      upstream: c.upstream,
      command: this.flags.command?.split(/\s+/).filter(Boolean),
      workers: c.workers,
      adminBind: c.adminBind,
      logDir: c.logDir,
      logMaxBytes: c.logMaxBytes,
      logBackupCount: c.logBackupCount,
      databaseUrl: this.flags['database-url'],
      dbName: c.dbName,
      maxBodyLength: c.maxBodyLength,
      excludePaths: c.excludePaths,
      excludeExtensions: c.excludeExtensions,
      sensitiveFields: c.sensitiveFields,
      sensitiveHeaders: c.sensitiveHeaders,
      requestRetentionDays: c.requestRetentionDays,
      accessRetentionDays: c.accessRetentionDays,
    }
    if (!this.flags.yes && process.stdin.isTTY && !this.jsonEnabled()) await this.ask(answers)
    const file = writeServerConfig(this.flags.out, renderServerConfig(answers), this.flags.force)
    this.log(`Wrote ${file}. Start with: audit-logs run --config ${this.flags.out}`)
    return {file}
  }

  private async ask(a: ServerConfigAnswers): Promise<void> {
    const {input, number, select} = await import('@inquirer/prompts')
    a.bind = await input({message: 'Listen on (HOST:PORT)', default: a.bind})
    const mode = await select({message: 'The app', choices: [{name: 'proxy to a running app (URL)', value: 'upstream'}, {name: 'spawn it (command)', value: 'command'}], default: a.command ? 'command' : 'upstream'})
    if (mode === 'upstream') {
      a.upstream = await input({message: 'App URL', default: a.upstream ?? 'http://127.0.0.1:3000'})
      a.command = undefined
    } else {
      a.command = (await input({message: 'Command (gets a free port in PORT)', default: a.command?.join(' ') ?? 'node server.js'})).split(/\s+/).filter(Boolean)
      a.upstream = undefined
    }
    a.workers = (await number({message: 'Worker processes', default: a.workers, min: 1, max: 64})) ?? a.workers
    a.logDir = await input({message: 'Log directory', default: a.logDir})
    a.logMaxBytes = (await number({message: 'Rotate log files at (bytes)', default: a.logMaxBytes, min: 1024})) ?? a.logMaxBytes
    a.logBackupCount = (await number({message: 'Rotated files to keep', default: a.logBackupCount, min: 0})) ?? a.logBackupCount
    a.maxBodyLength = (await number({message: 'Body bytes kept per record', default: a.maxBodyLength, min: 0})) ?? a.maxBodyLength
  }
}
