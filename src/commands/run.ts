import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {type RunSummary, runServer} from '../server/primary.js'
import {missingDirs, removeIfEmpty} from '../util/dirs.js'
import {serverLog} from '../server/server-log.js'

export default class Run extends BaseCommand<typeof Run> {
  static summary = 'Run the capture server in front of an app and record every request.'
  static description =
    `Proxies to --upstream, or spawns the app given after -- with a free port in PORT. Every request and ` +
    `response is recorded (bodies bounded and masked) to a local journal, then shipped to rotating JSONL ` +
    `files and PostgreSQL. While the journal has room the proxied request never waits for logging; at its ` +
    `bound new requests wait for the sinks (whenFull: block, the default) or their records are dropped and ` +
    `counted (drop).`
  static strict = false
  static examples = [
    '<%= config.bin %> <%= command.id %> --upstream http://127.0.0.1:3000 --bind 0.0.0.0:8000',
    '<%= config.bin %> <%= command.id %> --bind 0.0.0.0:8000 --workers 2 -- node server.js',
    '<%= config.bin %> <%= command.id %> --config audit-logs.config.mjs',
  ]
  static flags = {
    upstream: Flags.string({description: 'URL of the app to proxy to'}),
    bind: Flags.string({description: 'HOST:PORT to listen on [default: 0.0.0.0:8000]'}),
    workers: Flags.integer({description: 'proxy worker processes [default: 1]', min: 1, max: 64}),
    'admin-bind': Flags.string({description: 'HOST:PORT of /metrics and /health [default: 127.0.0.1:9464]'}),
    'log-dir': Flags.string({description: 'directory of the rotating JSONL files [default: logs]'}),
    'max-body-length': Flags.integer({description: 'bytes of each body kept in the record [default: 8192]', min: 0}),
    capture: Flags.boolean({description: 'record traffic (--no-capture: proxy only)', allowNo: true}),
    files: Flags.boolean({description: 'write the JSONL files sink', allowNo: true}),
    database: Flags.boolean({description: 'write the database stores (PostgreSQL, MongoDB: see --stores)', allowNo: true}),
    'egress-bind': Flags.string({
      description: "HOST:PORT of a forward proxy that records the app's outbound calls (spawn mode sets HTTP_PROXY)",
    }),
    'capture-output': Flags.boolean({description: "record the app's stdout and stderr lines as app records (run -- CMD)", allowNo: true}),
    ui: Flags.boolean({description: 'serve the web viewer too, on its own listener (--ui-bind), as `audit-logs ui` does', allowNo: true}),
    'ui-bind': Flags.string({description: 'HOST:PORT of the web viewer (--ui) [default: 127.0.0.1:8081]'}),
    maintenance: Flags.boolean({
      description: 'premake partitions and apply retention every maintenanceIntervalMs, one instance per period (PostgreSQL advisory lock)',
      allowNo: true,
    }),
    stores: Flags.option({
      description:
        'database stores to write: postgres, mongo or both (or AUDIT_LOGS_STORES; AUDIT_LOGS_USE_MONGO and AUDIT_LOGS_WRITE_TO_BOTH) [default: postgres]',
      options: ['postgres', 'mongo', 'both'] as const,
    })(),
  }

  protected configFlags() {
    const f = this.flags
    const dash = this.argv.indexOf('--')
    return {
      upstream: f.upstream,
      bind: f.bind,
      workers: f.workers,
      adminBind: f['admin-bind'],
      logDir: f['log-dir'],
      maxBodyLength: f['max-body-length'],
      capture: f.capture,
      fileSink: f.files,
      databaseSink: f.database,
      stores: f.stores,
      captureOutput: f['capture-output'],
      egressBind: f['egress-bind'],
      ui: f.ui,
      uiBind: f['ui-bind'],
      maintenance: f.maintenance,
      command: dash >= 0 && dash < this.argv.length - 1 ? this.argv.slice(dash + 1) : undefined,
    }
  }

  async run(): Promise<RunSummary> {
    const config = await this.resolved()
    // the server's own log: errorLog and logLevel (GUNICORN_ERROR_LOG, GUNICORN_LOG_LEVEL)
    const serverLogger = serverLog(config.errorLog, config.logLevel)
    const log = (message: string) => serverLogger.log(message)
    if (config.workerClass)
      log(
        `workerClass ${JSON.stringify(config.workerClass)} (GUNICORN_WORKER_CLASS) is ignored: every proxy worker is asynchronous, one event loop serving many connections at once; workers sets how many`,
      )
    // a start that fails removes the directories it made while they are still empty: a first start in
    // a directory the embedded server's user cannot enter left an empty .audit-logs/ (and logs/) behind
    const made = missingDirs([config.dataDir, config.journalDir ?? config.dataDir, config.logDir])
    const summary = await runServer(config, log, serverLogger).catch((error) => {
      for (const dir of made) removeIfEmpty(dir)
      serverLogger.close()
      throw error
    })
    const rejected = Object.values(summary.rejected).some((n) => n > 0)
      ? `; refused (kept in the dead-letter files) ${JSON.stringify(summary.rejected)}`
      : ''
    const refused = summary.refused ? `; ${summary.refused} requests refused (503) while the journal was full` : ''
    log(
      `stopped: ${summary.requests} requests, ${summary.captured} records captured, ${summary.dropped} dropped; written ${JSON.stringify(summary.written)}${rejected}${refused}`,
    )
    serverLogger.close()
    process.exitCode = summary.exitCode
    return summary
  }
}
