import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {BIN_PATH} from '../../scaffold/deploy/paths.js'
import {type ScaffoldResult, emitOne, oneFileFlags} from '../../scaffold/deploy/output.js'
import {type SystemdOptions, renderSystemdUnit, systemdWarnings} from '../../scaffold/deploy/systemd.js'

export default class ScaffoldSystemd extends BaseCommand<typeof ScaffoldSystemd> {
  static summary = 'Write a hardened systemd unit that runs `audit-logs run`.'
  static description =
    'The unit reads its settings from an EnvironmentFile (see `scaffold env`), may write only the data, log and journal ' +
    'directories (ProtectSystem=strict), has no capabilities unless a port below 1024 is bound, stops gracefully ' +
    '(SIGTERM, TimeoutStopSec above shutdownTimeoutMs) and restarts on failure. The directories and ports come from ' +
    'the configuration (flags, environment, --config). Check it with: systemd-analyze verify audit-logs.service'
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --exec /usr/local/bin/audit-logs --user audit --env-file /etc/audit-logs/env',
    '<%= config.bin %> <%= command.id %> --stdout --working-directory /srv/audit-logs',
  ]
  static flags = {
    ...oneFileFlags('audit-logs.service'),
    exec: Flags.string({
      description: 'the audit-logs program, an absolute path (words split on spaces) [default: this node and this audit-logs]',
    }),
    user: Flags.string({description: 'system user the service runs as', default: 'audit-logs'}),
    'working-directory': Flags.string({
      description: 'working directory: relative data and log directories are under it',
      default: '/var/lib/audit-logs',
    }),
    'env-file': Flags.string({description: 'EnvironmentFile with the settings', default: '/etc/audit-logs/audit-logs.env'}),
  }

  async run(): Promise<ScaffoldResult> {
    const c = await this.resolved()
    const f = this.flags
    const options: SystemdOptions = {
      exec: f.exec ? f.exec.split(/\s+/).filter(Boolean) : [process.execPath, BIN_PATH],
      user: f.user,
      workingDirectory: f['working-directory'],
      environmentFile: f['env-file'],
      configFile: f.config,
      bind: c.bind,
      adminBind: c.adminBind,
      uiBind: c.ui ? c.uiBind : undefined,
      dataDir: c.dataDir,
      logDir: c.logDir,
      journalDir: c.journalDir,
      shutdownTimeoutMs: c.shutdownTimeoutMs,
    }
    const text = renderSystemdUnit(options)
    for (const w of systemdWarnings(options)) this.warn(w)
    return emitOne(f, text, 'scaffold systemd', (l) => this.log(l))
  }
}
