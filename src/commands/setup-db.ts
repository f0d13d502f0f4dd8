import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {renderTable} from '../render/table.js'
import {usageError} from '../errors.js'
import {DEFAULT_DB_NAME, withDatabase} from '../stores/postgres/connection.js'
import {type SetupResult, setupDatabase} from '../stores/postgres/setup.js'
import {INTERVALS} from '../stores/postgres/periods.js'

export default class SetupDb extends BaseCommand<typeof SetupDb> {
  static summary = 'Create the audit database, roles, schema and partitions.'
  static description =
    'Creates the database if missing, an owner role, a writer role that may only INSERT and a reader role ' +
    'that may only SELECT, runs the migrations and creates the partitions. Idempotent: a second run changes ' +
    'nothing and says so. Generated passwords are printed once and stored nowhere.'
  static examples = [
    '<%= config.bin %> <%= command.id %> --db-name audit_logs',
    '<%= config.bin %> <%= command.id %> --db-name audit_logs --admin-url postgres://postgres:secret@db.internal:5432/postgres --interval week --premake 8',
    '<%= config.bin %> <%= command.id %> --dry-run',
  ]
  static flags = {
    'db-name': Flags.string({description: 'name of the audit database [default: audit_logs]'}),
    'admin-url': Flags.string({
      description: 'URL of a role that may create databases and roles (or AUDIT_LOGS_ADMIN_URL) [default: the configured server]',
    }),
    interval: Flags.string({description: 'partition period', options: INTERVALS}),
    premake: Flags.integer({description: 'partitions to create ahead of the current one [default: 3]', min: 0, max: 120}),
    'owner-password': Flags.string({description: 'password of the owner role (or AUDIT_LOGS_OWNER_PASSWORD) [default: generated]'}),
    'writer-password': Flags.string({
      description: 'password of the writer role (INSERT only) (or AUDIT_LOGS_WRITER_PASSWORD) [default: generated]',
    }),
    'reader-password': Flags.string({
      description: 'password of the reader role (SELECT only) (or AUDIT_LOGS_READER_PASSWORD) [default: generated]',
    }),
    'dry-run': Flags.boolean({description: 'print the SQL that would run, change nothing'}),
  }

  protected configFlags() {
    const f = this.flags
    return {
      dbName: f['db-name'],
      partitionInterval: f.interval,
      premake: f.premake,
      adminUrl: f['admin-url'],
      ownerPassword: f['owner-password'],
      writerPassword: f['writer-password'],
      readerPassword: f['reader-password'],
    }
  }

  async run(): Promise<SetupResult> {
    const config = await this.resolved()
    // flags, the environment (.env included) and the config file, resolved with every other setting; registered as secrets there
    const passwords = {owner: config.ownerPassword, writer: config.writerPassword, reader: config.readerPassword}
    const adminUrl = config.adminUrl
    // The admin URL names a server (its database is only where we log in); the audit database is --db-name.
    const dbName = config.dbName ?? DEFAULT_DB_NAME
    const target = adminUrl
      ? {
          serverUrl: adminUrl,
          databaseUrl: withDatabase(adminUrl, dbName),
          dbName,
          embedded: false,
          setting: '--admin-url or AUDIT_LOGS_ADMIN_URL',
          release: async () => {},
        }
      : await this.target()
    if (['postgres', 'template0', 'template1'].includes(target.dbName)) {
      throw usageError(`setup-db will not turn the maintenance database "${target.dbName}" into the audit database`, [
        'Pass --db-name (or set AUDIT_LOGS_DB_NAME), e.g. --db-name audit_logs',
      ])
    }
    const spin = await this.spinner(`Setting up ${target.dbName}`)
    const result = await setupDatabase(target, {
      interval: this.flags.interval as never,
      defaultInterval: config.partitionInterval,
      premake: config.premake,
      passwords,
      dryRun: this.flags['dry-run'],
    }).finally(() => spin.stop())

    if (result.dryRun) {
      this.log(`-- dry run: nothing was changed. SQL that setup-db would run on ${result.database}:`)
      this.log(result.sql.join('\n'))
      return result
    }
    this.log(
      renderTable(
        ['step', 'status'],
        result.steps.map((s) => [s.step, s.status]),
      ),
    )
    this.log(result.changed ? `Database ${result.database} is set up.` : `Nothing to do: database ${result.database} was already set up.`)
    if (result.credentials.length > 0) {
      this.log('\nGenerated passwords, shown this once and stored nowhere; keep them now:')
      this.log(
        renderTable(
          ['role', 'password', 'url'],
          result.credentials.map((c) => [c.role, c.password, c.url]),
        ),
      )
    }
    return result
  }
}
