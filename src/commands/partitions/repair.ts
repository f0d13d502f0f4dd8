import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {renderTable} from '../../render/table.js'
import {type CreatedPartition, assertMigrated, defaultPartitionRows, repair, partitionInterval} from '../../stores/postgres/partitions.js'
import {INTERVALS} from '../../stores/postgres/periods.js'

export default class PartitionsRepair extends BaseCommand<typeof PartitionsRepair> {
  static summary = 'Move rows out of the default partitions.'
  static description =
    'Creates the partitions that rows in the default partitions belong to and moves the rows there, each in one transaction.'
  static examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --interval day']
  static flags = {
    interval: Flags.option({description: 'partition period [default: the one setup-db recorded]', options: INTERVALS})(),
  }

  async run(): Promise<{created: CreatedPartition[]; movedRows: number; remaining: Record<string, number>}> {
    const config = await this.resolved()
    const client = await this.client()
    await assertMigrated(client)
    const interval = await partitionInterval(client, {asked: this.flags.interval, configured: config.partitionInterval})
    const spin = await this.spinner('Moving rows out of the default partitions')
    const created = await repair(client, interval).finally(() => spin.stop())
    const remaining = await defaultPartitionRows(client)
    const movedRows = created.reduce((n, p) => n + p.movedRows, 0)
    if (created.length)
      this.log(
        renderTable(
          ['partition', 'from', 'to', 'rows moved'],
          created.map((p) => [p.name, p.from.slice(0, 10), p.to.slice(0, 10), p.movedRows]),
        ),
      )
    this.log(
      created.length
        ? `Moved ${movedRows} row(s) into ${created.length} new partition(s).`
        : 'Nothing to do: the default partitions hold no rows that a new partition could take.',
    )
    for (const [table, n] of Object.entries(remaining))
      if (n > 0) this.warn(`${table}_default still holds ${n} row(s): their range overlaps partitions of another interval`)
    return {created, movedRows, remaining}
  }
}
