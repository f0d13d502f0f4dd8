import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {BIN_PATH} from '../../scaffold/deploy/paths.js'
import {type ScaffoldResult, emitOne, oneFileFlags} from '../../scaffold/deploy/output.js'
import {type SystemdOptions, renderSystemdUnit, systemdWarnings} from '../../scaffold/deploy/systemd.js'

export default class ScaffoldSystemd extends BaseCommand<typeof ScaffoldSystemd> {
  static summary = 'Write a hardened systemd unit that runs `audit-logs run`.'
  static description =
    'The unit reads its settings from an EnvironmentFile (see `scaffold env`), may write only the data, log and journal ' +
    'directories and those of the errorLog and accessLog files (ProtectSystem=strict), has no capabilities unless a port below 1024 is bound, stops gracefully ' +
    '(SIGTERM, TimeoutStopSec above shutdownTimeoutMs) and restarts on failure. The directories and ports come from ' +
    'the configuration (flags, environment, --config). Check it with: systemd-analyze verify audit-logs.service'
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --exec /usr/local/bin/audit-logs --user audit --environment-file /etc/audit-logs/env',
    '<%= config.bin %> <%= command.id %> --stdout --working-directory /srv/audit-logs',
  ]
  static flags = {
    ...oneFileFlags('audit-logs.service'),
    exec: Flags.string({
      description:
        'the audit-logs program, an absolute path (words split on spaces; no control characters) [default: this node and this audit-logs]',
    }),
    user: Flags.string({description: 'system user the service runs as', default: 'audit-logs'}),
    'working-directory': Flags.string({
      description: 'working directory: relative data and log directories are under it',
      default: '/var/lib/audit-logs',
    }),
    'environment-file': Flags.string({
      description: 'EnvironmentFile with the settings (not --env-file: Node 20 takes that for its own option)',
      default: '/etc/audit-logs/audit-logs.env',
    }),
  }

  async run(): Promise<ScaffoldResult> {
    const c = await this.resolved()
    const f = this.flags
    const options: SystemdOptions = {
      // split on spaces alone: a tab or newline in it is refused (a control character), never taken as a separator
      exec: f.exec ? f.exec.split(' ').filter(Boolean) : [process.execPath, BIN_PATH],
      user: f.user,
      workingDirectory: f['working-directory'],
      environmentFile: f['environment-file'],
      configFile: f.config,
      bind: c.bind,
      adminBind: c.adminBind,
      uiBind: c.ui ? c.uiBind : undefined,
      dataDir: c.dataDir,
      logDir: c.logDir,
      journalDir: c.journalDir,
      errorLog: c.errorLog,
      accessLog: c.accessLog,
      // files only read: under ProtectSystem=strict every path is readable but those ProtectHome and PrivateTmp
      // hide (a warning says so); integrityKey given as PEM text is no path and never shown
      readFiles: Object.fromEntries(
        Object.entries({
          'integrityKey (AUDIT_LOGS_INTEGRITY_KEY)': c.integrityKey?.trim().startsWith('-----BEGIN') ? undefined : c.integrityKey,
          'uiTlsCert (AUDIT_LOGS_UI_TLS_CERT)': c.uiTlsCert,
          'uiTlsKey (AUDIT_LOGS_UI_TLS_KEY)': c.uiTlsKey,
        }).filter((e): e is [string, string] => e[1] !== undefined),
      ),
      shutdownTimeoutMs: c.shutdownTimeoutMs,
    }
    const text = renderSystemdUnit(options)
    for (const w of systemdWarnings(options)) this.warn(w)
    return emitOne(f, text, 'scaffold systemd', (l) => this.log(l))
  }
}
