import path from 'node:path'
import type {Command} from '@oclif/core'
import {BaseCommand} from './base-command.js'
import {usageError} from './errors.js'
import {openConfiguredSource, openSource, type SourceOpeners} from './stores/open-source.js'
import type {MongoStore} from './stores/mongo/connection.js'
import {mongoTarget} from './stores/mongo/target.js'
import type {RecordSource, SourceKind} from './stores/source.js'
import {redactText} from './util/redact.js'

/** Said on stderr even with --json (oclif's logToStderr and warn are silent then): stdout stays the one JSON document. */
const warnOnStderr = (message: string) => process.stderr.write(`${redactText(message)}\n`)

/** The frame of the commands that read records (query, show, export, stats, tail): their source, from --source (or the configured stores) and --log-dir. */
export abstract class ReadCommand<T extends typeof Command> extends BaseCommand<T> {
  private opened?: Promise<RecordSource>

  protected source(): Promise<RecordSource> {
    const flags = this.flags as {source?: SourceKind; 'log-dir'?: string}
    const open: SourceOpeners = {
      logDir: async () => path.resolve(flags['log-dir'] ?? (await this.resolved()).logDir),
      db: () => this.client(),
      mongo: () => this.mongo(),
    }
    this.opened ??= flags.source
      ? openSource(flags.source, open)
      : this.resolved().then((config) => openConfiguredSource(config.stores, open, warnOnStderr))
    return this.opened
  }

  /** The MongoDB store, closed when the command ends; the driver is loaded only here. */
  private async mongo(): Promise<MongoStore> {
    const target = mongoTarget(await this.resolved())
    if (!target)
      throw usageError('Reading from MongoDB needs its connection string: set AUDIT_LOGS_MONGO_URI or give --mongo-uri', [
        'audit-logs query --source mongo --mongo-uri mongodb://user:password@127.0.0.1:27017/',
      ])
    const {connectMongo} = await import('./stores/mongo/connection.js')
    const store = await connectMongo(target)
    this.onRelease(() => store.close())
    return store
  }
}
