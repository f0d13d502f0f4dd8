import {stat} from 'node:fs/promises'
import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import {BaseCommand} from '../base-command.js'
import {Masker} from '../capture/masking.js'
import {STORES} from '../config/schema.js'
import {storesOf} from '../config/stores.js'
import {ExitCode, usageError} from '../errors.js'
import {
  type ImportFile,
  type ImportReport,
  MAX_HAR_BYTES,
  MAX_REFUSALS_LISTED,
  type Progress,
  type StoreWrite,
  displayName,
  importFiles,
  where,
} from '../import/importer.js'
import {blamePostgres, type Rejection, writeIsolating} from '../pipeline/sinks.js'
import {logFiles, logTypeOfFile} from '../stores/files/reader.js'
import {LOG_TYPE, LOG_TYPES, LOG_TYPE_NAMES, type LogType, logTypeOf} from '../stores/log-types.js'
import {assertMigrated, defaultPartitionRows, partitionInterval, repair} from '../stores/postgres/partitions.js'
import {writeLines} from '../stores/postgres/writer.js'
import {Chain, chainUnavailable, integrityOptions} from '../stores/postgres/integrity.js'
import {createPrivateKey} from 'node:crypto'
import {formatBytes} from '../util/bytes.js'

const HAR = /\.har(\.gz)?$/i
/** The names of the files `run` writes. */
const names = () => LOG_TYPES.map((t) => LOG_TYPE[t].file).join(', ')

export default class Import extends BaseCommand<typeof Import> {
  static summary = 'Backfill the stores from JSONL files `run` wrote (rotated .gz ones too) and HAR files.'
  static description =
    'Each record is checked and written to the configured stores (or --stores) in batches; the stores keep one copy per ' +
    'id, so importing a file again adds nothing. A line that is not JSON or not a valid record is refused and named ' +
    'with its file and line number; the others are imported, and the command exits with 7. HAR entries are masked ' +
    'with the configured rules (sensitiveFields, sensitiveHeaders); JSONL lines from `run` were masked when captured ' +
    'and are stored as they are. A directory stands for every JSONL file `run` wrote in it.'
  static examples = [
    '<%= config.bin %> <%= command.id %> logs/requests.jsonl logs/requests.jsonl.1.gz logs/access.jsonl',
    '<%= config.bin %> <%= command.id %> logs/',
    '<%= config.bin %> <%= command.id %> --log-type event old-events.log',
    '<%= config.bin %> <%= command.id %> session.har --stores both',
    '<%= config.bin %> <%= command.id %> logs/ --dry-run --json',
  ]
  static strict = false
  static args = {
    file: Args.string({description: 'JSONL files (.gz ones too), HAR files (.har), or a log directory', required: true}),
  }
  static flags = {
    'log-type': Flags.option({
      description: 'the type of the JSONL files, when their name does not say it (gunicorn is an alias of access)',
      options: LOG_TYPE_NAMES,
    })(),
    'dry-run': Flags.boolean({description: 'read and check every record, count; write nothing (nor connect to a store)'}),
    'batch-size': Flags.integer({description: 'records per write (and transaction)', min: 1, max: 100_000, default: 1000}),
    stores: Flags.option({description: 'which stores to write to [default: the configured stores]', options: STORES})(),
  }

  protected configFlags() {
    return {stores: this.flags.stores}
  }

  async run(): Promise<ImportReport> {
    const {argv} = await this.parse(Import)
    const files = await this.plan(argv as string[])
    const config = await this.resolved()
    const stores: Record<string, StoreWrite> = {}
    if (!this.flags['dry-run']) {
      const chosen = storesOf(config)
      if (chosen.postgres) stores.postgres = await this.postgresWriter(config)
      if (chosen.mongo) stores.mongo = await this.mongoWriter(config)
    }
    const spin = await this.spinner(`Importing ${files.length} file(s)`)
    let shown = 0
    const onProgress = (p: Progress) => {
      if (Date.now() - shown < 100) return
      shown = Date.now()
      const share = p.bytesTotal ? Math.min(1, p.bytesRead / p.bytesTotal) : 1
      const bar = '█'.repeat(Math.round(share * 24)).padEnd(24, '░')
      spin.text = `${bar} ${Math.floor(share * 100)}% ${p.records.toLocaleString('en-US')} records · ${displayName(p.file)}`
    }
    const report = await importFiles(files, {
      stores,
      batchSize: this.flags['batch-size'],
      masker: Masker.of(config),
      onProgress,
    }).finally(() => spin.stop())
    for (const sign of this.signers) await sign()
    if (this.partitionImported) report.partitions = await this.partitionImported()
    report.files = report.files.map((f) => ({...f, file: displayName(f.file)}))
    report.refusals = report.refusals.map((r) => ({...r, file: displayName(r.file)}))
    this.summarize(report)
    if (report.refused > 0) process.exitCode = ExitCode.refused
    return report
  }

  /** Every file checked before anything is written: each exists, and its type and format are known. */
  private async plan(args: string[]): Promise<ImportFile[]> {
    const forced = this.flags['log-type'] ? logTypeOf(this.flags['log-type']) : undefined
    const out: ImportFile[] = []
    for (const arg of args) {
      const file = path.resolve(arg)
      const st = await stat(file).catch((error: NodeJS.ErrnoException) => {
        throw usageError(error.code === 'ENOENT' ? `${arg} does not exist` : `${arg} cannot be read: ${error.code ?? error.message}`, [
          'Give JSONL files `run` wrote (requests.jsonl, access.jsonl.1.gz, …), HAR files, or their directory',
        ])
      })
      if (st.isDirectory()) {
        const found = LOG_TYPES.flatMap((t) => logFiles(file, t).map((f) => ({f, t})))
        if (found.length === 0) throw usageError(`${arg} holds none of the files \`run\` writes (${names()}, rotated ones .N.gz)`)
        for (const {f, t} of found) out.push({file: f, format: 'jsonl', logType: forced ?? t, bytes: (await stat(f)).size})
        continue
      }
      if (HAR.test(file)) {
        if (forced && forced !== 'request') throw usageError(`${arg} is a HAR file: its entries are request records, not ${forced}`)
        if (st.size > MAX_HAR_BYTES)
          throw usageError(
            `${arg} is ${formatBytes(st.size)}: a HAR file is read whole (it is one JSON document), at most ${formatBytes(MAX_HAR_BYTES)}`,
            ['Split it into smaller HAR files, or export the records as JSONL, which is read line by line whatever its size'],
          )
        out.push({file, format: 'har', logType: 'request', bytes: st.size})
        continue
      }
      const logType = forced ?? logTypeOfFile(file)
      if (!logType)
        throw usageError(`The log type of ${arg} is not in its name: give --log-type (${LOG_TYPES.join(', ')})`, [
          `\`run\` names its files ${names()}, rotated ones .N.gz; a file named .har is read as HAR`,
        ])
      out.push({file, format: 'jsonl', logType, bytes: st.size})
    }
    return out
  }

  /** Gives the imported rows that landed in the default partitions (older than every partition, say) their own partitions. */
  private partitionImported?: () => Promise<ImportReport['partitions']>

  /** Sign each store's import chain head once every file is written (one per store, when a key is configured). */
  private signers: Array<() => Promise<void>> = []

  /**
   * The import's chain in one store (`import@<instance>`), or none when integrity is off or the store lacks the chain's
   * tables or grants (said, with the fix); its head signed at the end when a key is configured.
   */
  private async importChain(
    config: Awaited<ReturnType<typeof this.resolved>>,
    store: {name: 'postgres' | 'mongo'; io: Parameters<Chain['digest']>[0]; unavailable: (signs: boolean) => Promise<string | undefined>},
    off: {what: string; verify: string; fix: string},
  ): Promise<Chain | undefined> {
    const integrity = integrityOptions(config, config.logDir)
    if (!integrity) return undefined
    const key = integrity.keyPem ? createPrivateKey(integrity.keyPem) : undefined
    const why = await store.unavailable(key !== undefined)
    if (why) {
      this.warn(
        `${off.what} NOT chained (${off.verify} will list them as inserted): ${why}; fix: run \`${off.fix}\`, then import again into a fresh database`,
      )
      return undefined
    }
    const chain = new Chain(`import@${integrity.instance}`, undefined, undefined, store.name)
    if (key)
      this.signers.push(async () => {
        try {
          await chain.digest(store.io, key, integrity.digestFile, {seq: -1})
        } catch (error) {
          this.warn(`the import's ${store.name === 'mongo' ? 'MongoDB ' : ''}chain head was not signed: ${(error as Error).message}`)
        }
      })
    return chain
  }

  /**
   * PostgreSQL through the shipper's writer (idempotent on id): a batch it refuses for some records is halved until
   * they stand alone. With integrity on, what it inserts is chained as the instance `import@<instance>` (its own chain, as
   * a run's: stores/postgres/integrity.ts) and its head signed at the end when integrityKey is configured, so verify
   * finds the imported rows chained; without the integrity tables or grants it imports unchained, and says so.
   */
  private async postgresWriter(config: Awaited<ReturnType<typeof this.resolved>>): Promise<StoreWrite> {
    const client = await this.client()
    await assertMigrated(client)
    const before = Object.values(await defaultPartitionRows(client)).reduce((a, b) => a + b, 0)
    // what partitions repair does, when the import put rows in the default partitions (backfilled months have no
    // partitions yet) and this role may create partitions; otherwise it says how many and what to run
    this.partitionImported = async () => {
      const inDefault = Object.values(await defaultPartitionRows(client)).reduce((a, b) => a + b, 0)
      if (inDefault <= before) return undefined
      try {
        const created = await repair(client, await partitionInterval(client, {configured: config.partitionInterval}))
        return {created: created.length, movedRows: created.reduce((n, p) => n + p.movedRows, 0)}
      } catch (error) {
        this.warn(
          `${inDefault} row(s) are in the default partitions and could not be given their own: ${(error as Error).message}; fix: \`audit-logs partitions repair\` as the database's owner`,
        )
        return {created: 0, movedRows: 0, leftInDefault: inDefault}
      }
    }
    const chain = await this.importChain(
      config,
      {name: 'postgres', io: client, unavailable: (signs) => chainUnavailable(client, signs)},
      {what: 'the imported records are', verify: 'verify', fix: 'audit-logs setup-db'},
    )
    return async (logType: LogType, lines: Buffer[]) => {
      const counts = {imported: 0, alreadyPresent: 0, rejected: [] as Rejection[]}
      await writeIsolating(
        lines,
        async (ls) => {
          const r = await writeLines(client, logType, ls, chain)
          counts.imported += r.inserted
          counts.alreadyPresent += r.duplicates
        },
        blamePostgres,
        counts.rejected,
      )
      return counts
    }
  }

  /**
   * MongoDB through the shipper's insertMany writer: a duplicate key is a record already there. With integrity on, the
   * documents it inserts are chained after them as the instance `import@<instance>` in MongoDB's chain
   * (stores/mongo/integrity.ts) and its head signed at the end, as PostgreSQL's; records already there are not chained
   * again (as PostgreSQL's import).
   */
  private async mongoWriter(config: Awaited<ReturnType<typeof this.resolved>>): Promise<StoreWrite> {
    const store = await this.mongoStore('import to MongoDB (stores = mongo or both)')
    const {blameDocuments, insertLines} = await import('../stores/mongo/writer.js')
    const {chainedOf, mongoChainIO, mongoChainUnavailable} = await import('../stores/mongo/integrity.js')
    const io = mongoChainIO(store.db)
    const chain = await this.importChain(
      config,
      {name: 'mongo', io, unavailable: (signs) => mongoChainUnavailable(store.db, signs)},
      {what: 'the records imported into MongoDB are', verify: 'verify --source mongo', fix: 'audit-logs setup-db --store mongo'},
    )
    return async (logType: LogType, lines: Buffer[]) => {
      const counts = {imported: 0, alreadyPresent: 0, rejected: [] as Rejection[]}
      await writeIsolating(
        lines,
        async (ls) => {
          const r = await insertLines(store, logType, ls)
          if (chain) await chain.commit(io, logType, r.docs.inserted.map(chainedOf))
          counts.imported += r.inserted
          counts.alreadyPresent += r.duplicates
          return r.rejected
        },
        blameDocuments,
        counts.rejected,
      )
      return counts
    }
  }

  private summarize(report: ImportReport): void {
    const n = (x: number) => x.toLocaleString('en-US')
    for (const f of report.files)
      this.log(
        `${f.file} (${f.format === 'har' ? 'HAR, ' : ''}${f.logType}): ${n(f.records)} record(s)${f.refused ? `, ${n(f.refused)} refused` : ''}`,
      )
    if (report.dryRun) this.log(`Dry run: ${n(report.records)} record(s) would be imported; nothing was written.`)
    for (const [store, c] of Object.entries(report.stores))
      this.log(`${store}: ${n(c.imported)} imported, ${n(c.alreadyPresent)} already present`)
    const p = report.partitions
    if (p?.created)
      this.log(`postgres: ${n(p.movedRows)} imported row(s) moved out of the default partitions into ${n(p.created)} new partition(s)`)
    if (report.refused === 0) return
    this.log(`${n(report.refused)} line(s) refused:`)
    for (const r of report.refusals) this.log(`  ${where(r)}: ${r.error}`)
    if (report.refused > report.refusals.length)
      this.log(`  … and ${n(report.refused - report.refusals.length)} more (the first ${MAX_REFUSALS_LISTED} are listed)`)
  }
}
