import path from 'node:path'
import type {Command} from '@oclif/core'
import {BaseCommand} from './base-command.js'
import {openSource} from './stores/open-source.js'
import {type RecordSource, SOURCES, type SourceKind} from './stores/source.js'

/** The frame of the commands that read records (query, show, export, stats, tail): their source, from --source and --log-dir. */
export abstract class ReadCommand<T extends typeof Command> extends BaseCommand<T> {
  private opened?: Promise<RecordSource>

  protected source(): Promise<RecordSource> {
    const flags = this.flags as {source?: string; 'log-dir'?: string}
    const kind = (flags.source ?? 'postgres') as SourceKind
    if (!SOURCES.includes(kind)) throw new Error(`unknown source ${kind}`) // the flag's options keep this from users
    this.opened ??= openSource(kind, {
      logDir: async () => path.resolve(flags['log-dir'] ?? (await this.resolved()).logDir),
      db: () => this.client(),
    })
    return this.opened
  }
}
