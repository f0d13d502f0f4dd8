import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import type {ResolvedConfig} from '../config/resolve.js'
import {retentionDays, storesOf} from '../config/stores.js'
import {LOG_TYPES, type LogType} from '../stores/log-types.js'
import {STORES} from '../config/schema.js'
import {renderTable} from '../render/table.js'
import {usageError} from '../errors.js'
import type {MongoSetupResult, MongoSetupStep} from '../stores/mongo/setup.js'
import {DEFAULT_DB_NAME, withDatabase} from '../stores/postgres/connection.js'
import {type SetupResult, setupDatabase} from '../stores/postgres/setup.js'
import {INTERVALS} from '../stores/postgres/periods.js'

/** PostgreSQL's result as before (its fields at the top), MongoDB's steps and credentials added to them, and its own under `mongo`. */
export type SetupDbResult = Omit<SetupResult, 'steps'> & {steps: MongoSetupStep[]; mongo?: MongoSetupResult}

export default class SetupDb extends BaseCommand<typeof SetupDb> {
  static summary = 'Create the audit database, roles, schema and partitions (PostgreSQL), collections and indexes (MongoDB).'
  static description =
    'Creates the database if missing, an owner role, a writer role that may only INSERT and a reader role ' +
    'that may only SELECT, runs the migrations and creates the partitions. On MongoDB: the collections with a ' +
    'validator, the indexes of every filter, and a writer (insert only) and a reader (find only) where the ' +
    "URI's user may create users; what the server does not implement is skipped and says so. Idempotent: a " +
    'second run changes nothing and says so. Generated passwords are printed once and stored nowhere.'
  static examples = [
    '<%= config.bin %> <%= command.id %> --db-name audit_logs',
    '<%= config.bin %> <%= command.id %> --db-name audit_logs --admin-url postgres://postgres:secret@db.internal:5432/postgres --interval week --premake 8',
    '<%= config.bin %> <%= command.id %> --dry-run',
    '<%= config.bin %> <%= command.id %> --store mongo --mongo-uri mongodb://admin:secret@127.0.0.1:27017/ --mongo-ttl',
  ]
  static flags = {
    store: Flags.option({description: 'which store to set up [default: the configured stores]', options: STORES})(),
    'mongo-ttl': Flags.boolean({
      description: 'MongoDB: TTL indexes on created_at from the retention settings, so the server expires documents itself',
    }),
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
    'dry-run': Flags.boolean({description: 'print the SQL (and MongoDB commands) that would run, change nothing'}),
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

  async run(): Promise<SetupDbResult> {
    const config = await this.resolved()
    const stores = storesOf({stores: this.flags.store ?? config.stores})
    if (this.flags['mongo-ttl'] && !stores.mongo) throw usageError('--mongo-ttl is for MongoDB', ['Add --store mongo (or both)'])
    // MongoDB first: a --mongo-ttl the server refuses stops the run before PostgreSQL is changed
    const mongo = stores.mongo ? await this.setupMongo(config) : undefined
    const pg = stores.postgres ? await this.setupPostgres(config) : undefined
    const mongoSteps = (mongo?.steps ?? []).map((s) => ({...s, step: `MongoDB ${s.step}`}))
    const result: SetupDbResult = {
      ...(pg ?? {database: mongo!.database, dryRun: mongo!.dryRun, changed: false, credentials: [], sql: []}),
      steps: [...(pg?.steps ?? []), ...mongoSteps],
      changed: !!pg?.changed || !!mongo?.changed,
      credentials: [...(pg?.credentials ?? []), ...(mongo?.credentials ?? [])],
      ...(mongo ? {mongo} : {}),
    }
    if (pg?.dryRun) {
      this.log(`-- dry run: nothing was changed. SQL that setup-db would run on ${pg.database}:`)
      this.log(pg.sql.join('\n'))
    }
    const shown = pg?.dryRun ? mongoSteps : result.steps
    if (shown.length)
      this.log(
        renderTable(
          ['step', 'status'],
          shown.map((s) => [s.step, s.note ? `${s.status}: ${s.note}` : s.status]),
        ),
      )
    if (pg && !pg.dryRun)
      this.log(pg.changed ? `Database ${pg.database} is set up.` : `Nothing to do: database ${pg.database} was already set up.`)
    if (mongo?.dryRun) {
      this.log(`// dry run: nothing was changed. Commands setup-db would run on MongoDB database ${mongo.database} (${mongo.server}):`)
      this.log(mongo.commands.join('\n') || '// none: nothing to do')
    } else if (mongo)
      this.log(
        mongo.changed
          ? `MongoDB database ${mongo.database} is set up (${mongo.server}).`
          : `Nothing to do: MongoDB database ${mongo.database} was already set up (${mongo.server}).`,
      )
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

  private async setupMongo(config: ResolvedConfig): Promise<MongoSetupResult> {
    const store = await this.mongoStore('setup-db --store mongo')
    const {setupMongo} = await import('../stores/mongo/setup.js')
    const spin = await this.spinner(`Setting up MongoDB database ${store.target.dbName}`)
    return setupMongo(store, {
      dryRun: !!this.flags['dry-run'],
      passwords: {writer: config.writerPassword, reader: config.readerPassword},
      ttlDays: this.flags['mongo-ttl']
        ? (Object.fromEntries(LOG_TYPES.map((t) => [t, retentionDays(config, t)])) as Record<LogType, number>)
        : undefined,
    }).finally(() => spin.stop())
  }

  private async setupPostgres(config: ResolvedConfig): Promise<SetupResult> {
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
    return setupDatabase(target, {
      interval: this.flags.interval as never,
      defaultInterval: config.partitionInterval,
      premake: config.premake,
      passwords,
      dryRun: !!this.flags['dry-run'],
    }).finally(() => spin.stop())
  }
}
