import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {type ResolvedConfig, resolveConfig, shown} from '../config/resolve.js'
import {type SettingKey, type SettingSpec, settings} from '../config/schema.js'
import {storesOf} from '../config/stores.js'
import {type Check, fail, skip} from '../doctor/check.js'
import {journalChecks, logDirCheck, runChecks} from '../doctor/local.js'
import {mongoChecks} from '../doctor/mongo.js'
import {postgresChecks} from '../doctor/postgres.js'
import {AuditLogsError, ExitCode} from '../errors.js'
import {renderTable} from '../render/table.js'
import {redactText} from '../util/redact.js'

type Setting = {key: string; value: string; from: string}
export type DoctorResult = {healthy: boolean; exitCode: number; checks: Check[]; settings: Setting[]}

export default class Doctor extends BaseCommand<typeof Doctor> {
  static summary = 'Check the set-up: configuration, stores and their roles, migrations, partitions, journal, log directory, a running run.'
  static description =
    'Each check says ok, warn, fail or skip, why, and the command that fixes it. Reads only: the roles are tried ' +
    '(the writer may not SELECT, UPDATE or DELETE, the reader may not INSERT, UPDATE or DELETE) in transactions that ' +
    'are rolled back, by statements that match no row. Exit 0 when healthy (warnings too, unless --strict: then 1), ' +
    `${ExitCode.unhealthy} when a check failed.`
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --strict',
    '<%= config.bin %> <%= command.id %> --json --config audit-logs.config.mjs',
  ]
  static flags = {
    strict: Flags.boolean({description: `exit 1 on warnings (failures exit ${ExitCode.unhealthy} either way)`}),
    'log-dir': Flags.string({description: 'the log directory run writes (or AUDIT_LOGS_LOG_DIR) [default: logs]'}),
  }

  private sources: Partial<Record<SettingKey, string>> = {}
  private resolving?: Promise<ResolvedConfig>

  protected configFlags() {
    return {logDir: this.flags['log-dir']}
  }

  /** As every command resolves it, and where each value came from. */
  protected resolved(): Promise<ResolvedConfig> {
    this.resolving ??= resolveConfig({
      configFile: this.flags.config,
      flags: {databaseUrl: this.flags['database-url'], mongoUri: this.flags['mongo-uri'], ...this.configFlags()},
      sources: this.sources,
    })
    return this.resolving
  }

  async run(): Promise<DoctorResult> {
    const checks: Check[] = []
    let config: ResolvedConfig | undefined
    try {
      config = await this.resolved()
    } catch (error) {
      if (!(error instanceof AuditLogsError)) throw error
      checks.push(
        fail(
          'configuration',
          redactText(error.message),
          'correct the value named, where it came from (`audit-logs scaffold server-config` lists every setting)',
        ),
      )
    }
    const settingsShown: Setting[] = []
    if (config) {
      const given = (Object.entries(this.sources) as Array<[SettingKey, string]>).filter(([, from]) => from !== 'defaults')
      for (const [key, from] of given) {
        const spec: SettingSpec = settings[key]
        settingsShown.push({key, value: shown(spec, config[key]), from})
      }
      checks.push({
        check: 'configuration',
        state: 'ok',
        message: `valid${config.configFile ? ` (config file ${config.configFile})` : ' (no config file)'}; ${given.length} setting(s) given, the rest defaults`,
      })
      const stores = storesOf(config)
      if (stores.postgres) checks.push(...(await postgresChecks(config, () => this.target())))
      if (stores.mongo) checks.push(...(await mongoChecks(config)))
      checks.push(...journalChecks(config), logDirCheck(config), ...(await runChecks(config)))
    } else {
      checks.push(skip('everything else', 'the configuration is invalid'))
    }

    const failed = checks.some((c) => c.state === 'fail')
    const warned = checks.some((c) => c.state === 'warn')
    const exitCode = failed ? ExitCode.unhealthy : warned && this.flags.strict ? ExitCode.failure : ExitCode.ok
    this.log(
      renderTable(
        ['check', 'state', 'message', 'fix'],
        checks.map((c) => [c.check, c.state, c.message, c.fix]),
      ),
    )
    if (settingsShown.length) {
      this.log('\nSettings given (the rest are defaults):')
      this.log(
        renderTable(
          ['setting', 'value', 'from'],
          settingsShown.map((s) => [s.key, s.value, s.from]),
        ),
      )
    }
    this.log(failed ? '\nUnhealthy: a check failed.' : warned ? '\nHealthy, with warnings.' : '\nHealthy.')
    process.exitCode = exitCode
    return {healthy: !failed, exitCode, checks, settings: settingsShown}
  }
}
