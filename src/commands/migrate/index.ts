import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {migrate} from '../../stores/postgres/migrations.js'

export default class Migrate extends BaseCommand<typeof Migrate> {
  static summary = 'Apply pending schema migrations.'
  static description =
    'Migrations are SQL files in migrations/ (NNNN_name.sql with -- Up / -- Down sections), applied in one ' +
    'transaction under an advisory lock and recorded with a sha256 checksum. An applied file that changed ' +
    'is refused.'
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --dry-run',
    '<%= config.bin %> migrate status',
  ]
  static flags = {
    'dry-run': Flags.boolean({description: 'print the SQL of pending migrations, change nothing'}),
  }

  async run(): Promise<{applied: Array<{version: number; name: string}>; dryRun: boolean}> {
    const client = await this.client()
    const spin = await this.spinner('Applying migrations')
    const result = await migrate(client, {dryRun: this.flags['dry-run']}).finally(() => spin.stop())
    const applied = result.applied.map((m) => ({version: m.version, name: m.name}))
    if (this.flags['dry-run'])
      this.log(result.sql.length ? `-- dry run: nothing was changed\n${result.sql.join('\n\n')}` : 'No pending migrations.')
    else
      this.log(
        applied.length
          ? `Applied ${applied.map((m) => `${String(m.version).padStart(4, '0')}_${m.name}`).join(', ')}.`
          : 'No pending migrations: the schema is up to date.',
      )
    return {applied, dryRun: this.flags['dry-run']}
  }
}
