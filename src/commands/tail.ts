import {Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {filterFlags, filterInput} from '../filters/flags.js'
import {parseFilter} from '../filters/parse.js'
import {DEFAULT_COLUMNS, cellText} from '../render/records.js'
import {assertMigrated} from '../stores/postgres/partitions.js'
import {queryRecords} from '../stores/postgres/reader.js'

const {source: _source, 'log-dir': _logDir, since: _since, until: _until, ...tailFilterFlags} = filterFlags

/** Records reach the database a little after they start (shipping); look back this far and skip what was shown. */
const LOOK_BACK_MS = 60_000

export default class Tail extends BaseCommand<typeof Tail> {
  static summary = 'Follow new records as they arrive, with the same filters, until Ctrl-C.'
  static examples = ["<%= config.bin %> <%= command.id %> --status '>=500'", '<%= config.bin %> <%= command.id %> --user 42 --format ndjson']
  static enableJsonFlag = false
  static flags = {
    ...tailFilterFlags,
    interval: Flags.integer({description: 'poll every N milliseconds', default: 1000, min: 100}),
    format: Flags.string({description: 'line format', options: ['table', 'ndjson'], default: 'table'}),
  }

  async run(): Promise<void> {
    const base = parseFilter(filterInput(this.flags))
    const client = await this.client()
    await assertMigrated(client)
    const columns = DEFAULT_COLUMNS[base.logType]
    const seen = new Map<string, number>()
    let from = Date.now()
    const signal = this.interruptSignal()
    while (!signal.aborted) {
      const rows = await queryRecords(client, {...base, since: new Date(from - LOOK_BACK_MS)}, {limit: 5000})
      for (const r of rows.reverse()) {
        const id = String(r.id)
        const at = new Date(r.created_at as string).getTime()
        if (seen.has(id) || at < from - LOOK_BACK_MS) continue
        seen.set(id, at)
        this.log(this.flags.format === 'ndjson' ? JSON.stringify(r) : columns.map((c) => cellText(c, r[c])).join('  '))
      }
      for (const [id, at] of seen) if (at < from - LOOK_BACK_MS) seen.delete(id)
      from = Math.max(from, Date.now() - 1000)
      await new Promise((resolve) => {
        const t = setTimeout(resolve, this.flags.interval)
        signal.addEventListener('abort', () => (clearTimeout(t), resolve(undefined)), {once: true})
      })
    }
  }
}
