import path from 'node:path'
import {Flags} from '@oclif/core'
import {BaseCommand} from '../../base-command.js'
import {ExitCode, usageError} from '../../errors.js'
import {parseTime} from '../../filters/parse.js'
import {loadPrivateKey, loadPublicKey} from '../../stores/postgres/integrity.js'
import {assertMigrated} from '../../stores/postgres/partitions.js'
import {integrityInstalled} from '../../stores/postgres/sql/integrity.js'
import {type ChainSource, type VerifyReport, pgChainSource, verifyChainsOf} from '../../stores/postgres/verify.js'
import {createPublicKey} from 'node:crypto'
import {retentionDays, storesOf} from '../../config/stores.js'
import {LOG_TYPES} from '../../stores/log-types.js'

export default class Verify extends BaseCommand<typeof Verify> {
  static summary = "Check the stored records (PostgreSQL, or MongoDB) against each instance's integrity chain and signed digests."
  static description =
    'Recomputes, for every instance with batches since --since, each chained record’s hash from its stored row, each ' +
    'batch’s hashes and link, the missing seqs, and the Ed25519 digests (from the database and <logDir>/digests.jsonl) ' +
    'that sign the chain heads; lists rows written since then that no batch chained. Exit 0 only when all is intact, ' +
    '8 when anything was changed, deleted, inserted or cut. The public key comes from --public-key, or from the ' +
    'configured integrityKey (the private key: its public half). --source mongo checks the MongoDB store’s chains the same way.'
  static examples = [
    '<%= config.bin %> <%= command.id %> --since 7d',
    '<%= config.bin %> <%= command.id %> --since 2026-11-01 --public-key integrity.pub.pem --json',
    '<%= config.bin %> <%= command.id %> --source mongo --since 30d',
    '<%= config.bin %> verify keygen --out integrity.pem',
  ]
  static enableJsonFlag = true
  static flags = {
    since: Flags.string({
      description: 'check the batches whose records reach back to this time (15m, 24h, 7d, or an ISO date)',
      default: '7d',
    }),
    'public-key': Flags.string({
      description: 'the Ed25519 public key that checks the digests: PEM text or a PEM file [default: from integrityKey]',
    }),
    digests: Flags.string({description: 'a digest file to check too [default: <logDir>/digests.jsonl]'}),
    source: Flags.option({
      description: 'which store to check: postgres or mongo [default: mongo when stores = mongo, else postgres]',
      options: ['postgres', 'mongo'] as const,
    })(),
    limit: Flags.integer({description: 'list at most this many records of each kind', default: 1000, min: 1}),
  }

  async run(): Promise<VerifyReport> {
    const since = parseTime('--since', this.flags.since, new Date())
    const config = await this.resolved()
    const publicKey = this.flags['public-key']
      ? loadPublicKey(this.flags['public-key'])
      : config.integrityKey
        ? createPublicKey(loadPrivateKey(config.integrityKey).key)
        : undefined
    const source =
      (this.flags.source ?? (storesOf(config).postgres ? 'postgres' : 'mongo')) === 'mongo'
        ? await this.mongoSource()
        : await this.pgSource()
    const report = await verifyChainsOf(source, {
      since,
      publicKey,
      digestFile: path.resolve(this.flags.digests ?? path.join(config.logDir, 'digests.jsonl')),
      listLimit: this.flags.limit,
      digestIntervalMs: config.integrityDigestIntervalMs,
      retentionDays: Object.fromEntries(LOG_TYPES.map((t) => [t, retentionDays(config, t)])),
    })
    this.print(report)
    if (!report.ok) process.exitCode = ExitCode.tampered
    return report
  }

  private async pgSource(): Promise<ChainSource> {
    const client = await this.client()
    await assertMigrated(client)
    if (!(await client.query(integrityInstalled())).rows[0].ok)
      throw usageError('This database has no integrity tables yet: run `audit-logs setup-db` (migration 0006) first')
    return pgChainSource(client)
  }

  private async mongoSource(): Promise<ChainSource> {
    const store = await this.mongoStore('verify --source mongo')
    const {INTEGRITY_COLLECTIONS} = await import('../../stores/mongo/integrity.js')
    const {mongoChainSource} = await import('../../stores/mongo/verify.js')
    const found = await store.db.listCollections({name: INTEGRITY_COLLECTIONS.batches}, {nameOnly: true}).toArray()
    if (found.length === 0)
      throw usageError(
        `MongoDB database ${store.target.dbName} has no integrity collections yet: run \`audit-logs setup-db --store mongo\` first`,
      )
    return mongoChainSource(store)
  }

  private print(r: VerifyReport): void {
    if (r.instances.length === 0) this.log(`No integrity batches since ${r.since}.`)
    for (const i of r.instances) {
      this.log(
        `${i.instance}: batches ${i.firstSeq ?? '-'}..${i.lastSeq ?? '-'} (${i.batches}), ${i.records} records, ` +
          `${i.digests.checked} digest(s), last signed head ${i.digests.lastSignedSeq ?? 'none'}` +
          (i.removedByRetention ? `, ${i.removedByRetention} removed by retention` : '') +
          (i.pruned ? `, batches 1..${i.pruned.throughSeq} pruned by retention (${i.pruned.records} records)` : ''),
      )
      for (const c of i.changed) this.log(`  CHANGED   ${c.table} ${c.id} (${c.createdAt}, batch ${c.seq})`)
      for (const d of i.deleted) this.log(`  DELETED   ${d.table} ${d.id} (${d.createdAt}, batch ${d.seq})`)
      for (const g of i.gaps) this.log(`  GAP       batch${g.from === g.to ? ` ${g.from}` : `es ${g.from}..${g.to}`} missing`)
      for (const b of i.badBatches) this.log(`  BAD BATCH ${b.seq}: ${b.why}`)
      for (const d of i.badDigests) this.log(`  BAD DIGEST ${d.seq} (${d.source}): ${d.why}`)
      if (i.unsigned)
        this.log(
          `  UNSIGNED  batch${i.unsigned.from === i.unsigned.to ? ` ${i.unsigned.from}` : `es ${i.unsigned.from}..${i.unsigned.to}`}: ${i.unsigned.why}`,
        )
    }
    for (const b of r.badPruning) this.log(`BAD PRUNING ${b.instance} batches 1..${b.throughSeq}: ${b.why}`)
    for (const b of r.badRetention) this.log(`BAD RETENTION ${b.logType} cutoff ${b.cutoff} (recorded ${b.writtenAt}): ${b.why}`)
    for (const x of r.inserted) this.log(`INSERTED  ${x.table} ${x.id} (${x.createdAt}): in no batch`)
    if (r.insertedTruncated) this.log(`(more inserted rows than --limit lists)`)
    for (const w of r.warnings) this.logToStderr(`Warning: ${w}`)
    this.log(r.ok ? 'Intact.' : 'TAMPERED: see above.')
  }
}
