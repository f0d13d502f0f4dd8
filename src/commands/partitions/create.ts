import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {renderTable} from '../../render/table.js'
import {type CreatedPartition, assertMigrated, premake, partitionInterval} from '../../stores/postgres/partitions.js'
import {INTERVALS, type Interval} from '../../stores/postgres/periods.js'

export default class PartitionsCreate extends BaseCommand<typeof PartitionsCreate> {
  static summary = 'Create the current partition and N ahead.'
  static description =
    'Rows of a new range already waiting in the default partition are moved into it in the same transaction. The interval is the one setup-db recorded unless --interval is given.'
  static examples = ['<%= config.bin %> <%= command.id %> --ahead 6', '<%= config.bin %> <%= command.id %> --ahead 14 --interval day']
  static flags = {
    ahead: Flags.integer({description: 'periods to create after the current one [default: premake setting, 3]', min: 0, max: 120}),
    interval: Flags.option({description: 'partition period [default: the one setup-db recorded]', options: INTERVALS})(),
    'dry-run': Flags.boolean({description: 'show what would be created, change nothing'}),
  }

  protected configFlags() {
    return {premake: this.flags.ahead}
  }

  async run(): Promise<{interval: Interval; created: CreatedPartition[]; dryRun: boolean}> {
    const config = await this.resolved()
    const client = await this.client()
    await assertMigrated(client)
    const interval = await partitionInterval(client, {asked: this.flags.interval, configured: config.partitionInterval})
    const created = await premake(client, {interval, ahead: config.premake, dryRun: this.flags['dry-run']})
    if (created.length === 0) this.log(`Nothing to do: the ${interval}ly partitions up to ${config.premake} ahead exist.`)
    else {
      this.log(
        renderTable(
          ['partition', 'from', 'to', 'rows moved from default'],
          created.map((p) => [p.name, p.from.slice(0, 10), p.to.slice(0, 10), p.movedRows]),
        ),
      )
      this.log(
        this.flags['dry-run'] ? `Dry run: ${created.length} partition(s) would be created.` : `Created ${created.length} partition(s).`,
      )
    }
    return {interval, created, dryRun: this.flags['dry-run']}
  }
}
