import path from 'node:path'
import type {Command} from '@oclif/core'
import {BaseCommand} from './base-command.js'
import {openConfiguredSource, openSource, type SourceOpeners} from './stores/open-source.js'
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
      mongo: () => this.mongoStore('Reading from MongoDB'),
    }
    this.opened ??= flags.source
      ? openSource(flags.source, open)
      : this.resolved().then((config) => openConfiguredSource(config.stores, open, warnOnStderr))
    return this.opened
  }
}
