import {BaseCommand} from '../../base-command.js'
import {renderTable} from '../../render/table.js'
import {type MigrationStatus, migrationStatus} from '../../stores/postgres/migrations.js'

export default class MigrateStatus extends BaseCommand<typeof MigrateStatus> {
  static summary = 'List migrations: applied (when) or pending.'
  static examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<{migrations: MigrationStatus[]; pending: number}> {
    const client = await this.client()
    const migrations = await migrationStatus(client)
    this.log(
      renderTable(
        ['version', 'name', 'state', 'applied at'],
        migrations.map((m) => [String(m.version).padStart(4, '0'), m.name, m.state, m.appliedAt]),
      ),
    )
    const pending = migrations.filter((m) => m.state === 'pending').length
    return {migrations, pending}
  }
}
