import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {STORES} from '../../config/schema.js'
import {storesOf} from '../../config/stores.js'
import {renderMongoState} from '../../render/mongo-state.js'
import {renderTable} from '../../render/table.js'
import type {MongoState} from '../../stores/mongo/status.js'
import {type MigrationStatus, migrationStatus} from '../../stores/postgres/migrations.js'

export default class MigrateStatus extends BaseCommand<typeof MigrateStatus> {
  static summary = 'List migrations: applied (when) or pending.'
  static description =
    'MongoDB has no migrations: for it, the state of what setup-db makes (collections, validators, indexes) is shown, and `pending` counts what is missing.'
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
    '<%= config.bin %> <%= command.id %> --store mongo',
  ]
  static flags = {
    store: Flags.option({description: 'which store [default: the configured stores]', options: STORES})(),
  }

  async run(): Promise<{migrations: MigrationStatus[]; pending: number; mongo?: MongoState}> {
    const config = await this.resolved()
    const stores = storesOf({stores: this.flags.store ?? config.stores})
    let migrations: MigrationStatus[] = []
    if (stores.postgres) {
      const client = await this.client()
      migrations = await migrationStatus(client)
      this.log(
        renderTable(
          ['version', 'name', 'state', 'applied at'],
          migrations.map((m) => [String(m.version).padStart(4, '0'), m.name, m.state, m.appliedAt]),
        ),
      )
    }
    let pending = migrations.filter((m) => m.state === 'pending').length
    if (!stores.mongo) return {migrations, pending}
    const target = await this.mongoTarget('--store mongo')
    const {readMongoState} = await import('../../stores/mongo/status.js')
    const mongo = await readMongoState(target)
    this.log(renderMongoState(mongo, 'migrations'))
    pending += mongo.missing
    return {migrations, pending, mongo}
  }
}
