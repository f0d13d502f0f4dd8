import {BaseCommand} from '../../base-command.js'
import {renderTable} from '../../render/table.js'
import {type PartitionInfo, assertMigrated, defaultPartitionRows, listPartitions} from '../../stores/postgres/partitions.js'
import {formatBytes} from '../../util/bytes.js'

export default class PartitionsList extends BaseCommand<typeof PartitionsList> {
  static summary = 'List partitions: range, estimated rows, size.'
  static description =
    'Warns when a default partition holds rows: they belong to a period that has no partition yet (see partitions repair).'
  static examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<{partitions: PartitionInfo[]; defaultRows: Record<string, number>; warnings: string[]}> {
    const client = await this.client()
    await assertMigrated(client)
    const partitions = await listPartitions(client)
    const defaultRows = await defaultPartitionRows(client)
    const warnings = Object.entries(defaultRows)
      .filter(([, n]) => n > 0)
      .map(([table, n]) => `${table}_default holds ${n} row(s) outside every partition's range: run \`audit-logs partitions repair\``)
    this.log(
      renderTable(
        ['table', 'partition', 'from', 'to', 'rows (est.)', 'size'],
        partitions.map((p) => [
          p.table,
          p.name,
          p.isDefault ? 'DEFAULT' : p.from?.slice(0, 10),
          p.isDefault ? '' : p.to?.slice(0, 10),
          p.isDefault ? defaultRows[p.table] : p.estimatedRows,
          formatBytes(p.bytes),
        ]),
      ),
    )
    for (const w of warnings) this.warn(w)
    return {partitions, defaultRows, warnings}
  }
}
