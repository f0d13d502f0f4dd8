import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {loadConfigFile} from '../../config/file.js'
import {resolveConfig} from '../../config/resolve.js'
import {settings} from '../../config/schema.js'
import {
  type ServerConfigAnswers,
  existingConfig,
  maskUrlPassword,
  renderServerConfig,
  writeServerConfig,
} from '../../scaffold/server-config.js'
import {redactText, registerSecret, urlPassword} from '../../util/redact.js'

export default class ScaffoldServerConfig extends BaseCommand<typeof ScaffoldServerConfig> {
  static summary = 'Write the configuration file that `audit-logs run` reads.'
  static description =
    'Asks on a terminal (bind, upstream or command, workers, log rotation, the audit database: embedded or ' +
    'a URL whose password is never shown, body bound); --yes takes the flags and defaults without asking. ' +
    "Refuses an existing file before asking anything, unless --force: then the file's settings are the defaults " +
    '(flags and the environment still win).'
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
    registerSecret(urlPassword(f['mongo-uri']))
    return {bind: f.bind, upstream: f.upstream, workers: f.workers, logDir: f['log-dir'], maxBodyLength: f['max-body-length']}
  }

  async run(): Promise<{file: string}> {
    const {out, force} = this.flags
    // checked before anything is asked; a file being replaced is the configuration read for the defaults
    if (existingConfig(out, force)) this.flags.config = out
    let c: Awaited<ReturnType<typeof this.resolved>>
    try {
      c = await this.resolved()
    } catch (error) {
      // --force replaces a file that cannot be read (a syntax error, a bad value) too: with the defaults
      if (!force || this.flags.config !== out) throw error
      this.logToStderr(
        `${out} could not be read (${redactText((error as Error).message)}): it is replaced, from the defaults and the flags`,
      )
      c = await resolveConfig({
        flags: {databaseUrl: this.flags['database-url'], mongoUri: this.flags['mongo-uri'], ...this.configFlags()},
        noConfigFile: true,
      })
    }
    // the database URL only from --database-url or the configuration file, never from the environment:
    // a password kept in AUDIT_LOGS_DATABASE_URL stays out of the file
    const file = c.configFile ? await loadConfigFile(c.configFile) : {}
    const command = this.flags.command?.split(/\s+/).filter(Boolean)
    const answers: ServerConfigAnswers = {
      // a flag for the one replaces the other the file had
      bind: c.bind,
      upstream: command && !this.flags.upstream ? undefined : c.upstream,
      command: command ?? (this.flags.upstream ? undefined : c.command),
      workers: c.workers,
      adminBind: c.adminBind,
      logDir: c.logDir,
      logMaxBytes: c.logMaxBytes,
      logBackupCount: c.logBackupCount,
      databaseUrl: this.flags['database-url'] ?? (typeof file.databaseUrl === 'string' ? file.databaseUrl : undefined),
      dbName: c.dbName,
      stores: c.stores,
      // as the database URL: from --mongo-uri or the file, never from the environment
      mongoUri: this.flags['mongo-uri'] ?? (typeof file.mongoUri === 'string' ? file.mongoUri : undefined),
      mongoDbName: c.mongoDbName,
      mongoRequestCollection: c.mongoRequestCollection,
      mongoAccessCollection: c.mongoAccessCollection,
      maxBodyLength: c.maxBodyLength,
      excludePaths: c.excludePaths,
      excludeExtensions: c.excludeExtensions,
      sensitiveFields: c.sensitiveFields,
      sensitiveHeaders: c.sensitiveHeaders,
      requestRetentionDays: c.requestRetentionDays,
      accessRetentionDays: c.accessRetentionDays,
    }
    registerSecret(urlPassword(answers.databaseUrl))
    registerSecret(urlPassword(answers.mongoUri))
    if (!this.flags.yes && process.stdin.isTTY && !this.jsonEnabled()) await this.ask(answers)
    const written = writeServerConfig(out, renderServerConfig(answers), force)
    this.log(`Wrote ${written}. Start with: audit-logs run --config ${out}`)
    return {file: written}
  }

  private async ask(a: ServerConfigAnswers): Promise<void> {
    const {input, number, select} = await import('@inquirer/prompts')
    a.bind = await input({message: 'Listen on (HOST:PORT)', default: a.bind})
    const mode = await select({
      message: 'The app',
      choices: [
        {name: 'proxy to a running app (URL)', value: 'upstream'},
        {name: 'spawn it (command)', value: 'command'},
      ],
      default: a.command ? 'command' : 'upstream',
    })
    if (mode === 'upstream') {
      a.upstream = await input({message: 'App URL', default: a.upstream ?? 'http://127.0.0.1:3000'})
      a.command = undefined
    } else {
      a.command = (await input({message: 'Command (gets a free port in PORT)', default: a.command?.join(' ') ?? 'node server.js'}))
        .split(/\s+/)
        .filter(Boolean)
      a.upstream = undefined
    }
    a.workers = (await number({message: 'Worker processes', default: a.workers, min: 1, max: 64})) ?? a.workers
    a.logDir = await input({message: 'Log directory', default: a.logDir})
    a.logMaxBytes = (await number({message: 'Rotate log files at (bytes)', default: a.logMaxBytes, min: 1024})) ?? a.logMaxBytes
    a.logBackupCount = (await number({message: 'Rotated files to keep', default: a.logBackupCount, min: 0})) ?? a.logBackupCount
    const database = await select({
      message: 'Audit database',
      choices: [
        {name: 'the embedded PostgreSQL (in dataDir)', value: 'embedded'},
        {name: 'a PostgreSQL server (URL)', value: 'server'},
      ],
      default: a.databaseUrl ? 'server' : 'embedded',
    })
    if (database === 'embedded') a.databaseUrl = undefined
    else {
      // the password is starred as it is typed, and the URL shown without it: the default too (Enter keeps it)
      const kept = a.databaseUrl
      const shownKept = kept && maskUrlPassword(kept)
      const answer = await input({
        message: 'Database URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE)',
        default: shownKept,
        transformer: (typed, {isFinal}) => maskUrlPassword(typed, !isFinal),
        validate(typed) {
          if (shownKept && typed === shownKept) return true
          const parsed = settings.databaseUrl.schema.safeParse(typed)
          return parsed.success || (parsed.error.issues[0]?.message ?? 'a postgres:// URL')
        },
      })
      a.databaseUrl = kept && answer === shownKept ? kept : answer
      registerSecret(urlPassword(a.databaseUrl))
    }
    a.maxBodyLength = (await number({message: 'Body bytes kept per record', default: a.maxBodyLength, min: 0})) ?? a.maxBodyLength
  }
}
