import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {STORES} from '../../config/schema.js'
import {storesOf} from '../../config/stores.js'
import {renderMongoState} from '../../render/mongo-state.js'
import {renderTable} from '../../render/table.js'
import type {MongoState} from '../../stores/mongo/status.js'
import {type PartitionInfo, assertMigrated, defaultPartitionRows, listPartitions} from '../../stores/postgres/partitions.js'
import {formatBytes} from '../../util/bytes.js'

export default class PartitionsList extends BaseCommand<typeof PartitionsList> {
  static summary = 'List partitions: range, estimated rows, size.'
  static description =
    'Warns when a default partition holds rows: they belong to a period that has no partition yet (see partitions repair). ' +
    'MongoDB has no partitions: for it, each collection is shown with its documents, size, validator, indexes and TTL.'
  static examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
    '<%= config.bin %> <%= command.id %> --store mongo',
  ]
  static flags = {
    store: Flags.option({description: 'which store [default: the configured stores]', options: STORES})(),
  }

  async run(): Promise<{partitions: PartitionInfo[]; defaultRows: Record<string, number>; warnings: string[]; mongo?: MongoState}> {
    const config = await this.resolved()
    const stores = storesOf({stores: this.flags.store ?? config.stores})
    let partitions: PartitionInfo[] = []
    let defaultRows: Record<string, number> = {}
    let warnings: string[] = []
    if (stores.postgres) {
      const client = await this.client()
      await assertMigrated(client)
      partitions = await listPartitions(client)
      defaultRows = await defaultPartitionRows(client)
      warnings = Object.entries(defaultRows)
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
    }
    if (!stores.mongo) return {partitions, defaultRows, warnings}
    const target = await this.mongoTarget('--store mongo')
    const {readMongoState} = await import('../../stores/mongo/status.js')
    const mongo = await readMongoState(target)
    this.log(renderMongoState(mongo, 'partitions'))
    return {partitions, defaultRows, warnings, mongo}
  }
}
