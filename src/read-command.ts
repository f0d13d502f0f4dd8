import path from 'node:path'
import type {Command} from '@oclif/core'
import {BaseCommand} from './base-command.js'
import {openSource} from './stores/open-source.js'
import type {RecordSource, SourceKind} from './stores/source.js'

/** The frame of the commands that read records (query, show, export, stats, tail): their source, from --source and --log-dir. */
export abstract class ReadCommand<T extends typeof Command> extends BaseCommand<T> {
  private opened?: Promise<RecordSource>

  protected source(): Promise<RecordSource> {
    const flags = this.flags as {source?: SourceKind; 'log-dir'?: string}
    const kind = flags.source ?? 'postgres'
    this.opened ??= openSource(kind, {
      logDir: async () => path.resolve(flags['log-dir'] ?? (await this.resolved()).logDir),
      db: () => this.client(),
    })
    return this.opened
  }
}
