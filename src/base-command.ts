import {inspect} from 'node:util'
import {Command, Errors, Flags, type Interfaces} from '@oclif/core'
import createDebug from 'debug'
import type pg from 'pg'
import type {Overrides} from './config/resolve.js'
import {type ResolvedConfig, resolveConfig} from './config/resolve.js'
import {AuditLogsError, ExitCode, usageError} from './errors.js'
import type {MongoStore} from './stores/mongo/connection.js'
import {type MongoTarget, mongoTarget} from './stores/mongo/target.js'
import {type Target, connect, resolveTarget} from './stores/postgres/connection.js'
import {redactText, registerUrlPassword} from './util/redact.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type Args<T extends typeof Command> = Interfaces.InferredArgs<T['args']>
type Spinner = {text: string; succeed(text?: string): void; fail(text?: string): void; stop(): void}
/** A spinner that shows nothing: where none is shown, or its output would be the records themselves. */
export const silentSpinner = (text: string): Spinner => ({text, succeed() {}, fail() {}, stop() {}})

const debug = createDebug('audit-logs:cli')

/**
 * Every command's frame: --json, --config, --database-url, resolved
 * configuration, expected errors with documented exit codes and no secrets,
 * and resources (database clients, the embedded server) released in
 * reverse order when the command ends, whatever happened.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static enableJsonFlag = true
  static baseFlags = {
    config: Flags.string({description: 'configuration file (audit-logs.config.mjs or .json)', helpGroup: 'GLOBAL'}),
    'database-url': Flags.string({
      description: 'PostgreSQL URL of the audit database [default: the embedded server]',
      helpGroup: 'GLOBAL',
    }),
    'mongo-uri': Flags.string({
      description: 'MongoDB connection string of the audit store (or AUDIT_LOGS_MONGO_URI) [default: none]',
      helpGroup: 'GLOBAL',
    }),
  }

  protected flags!: BaseFlags<T>
  protected args!: Args<T>
  private releasers: Array<() => Promise<void>> = []
  private settings?: ResolvedConfig
  private targetPromise?: Promise<Target>

  public async init(): Promise<void> {
    await super.init()
    const {args, flags} = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as BaseFlags<T>
    this.args = args as Args<T>
    registerUrlPassword(this.flags['database-url'])
    registerUrlPassword(this.flags['mongo-uri'])
  }

  /** Flags of this command that stand for configuration keys; they win over every other source. */
  protected configFlags(): Overrides {
    return {}
  }

  protected async resolved(): Promise<ResolvedConfig> {
    this.settings ??= await resolveConfig({
      configFile: this.flags.config,
      flags: {databaseUrl: this.flags['database-url'], mongoUri: this.flags['mongo-uri'], ...this.configFlags()},
    })
    return this.settings
  }

  /** The audit database's server and name; starts or joins the embedded server when no URL is configured. */
  protected async target(): Promise<Target> {
    this.targetPromise ??= (async () => {
      const config = await this.resolved()
      const spin = config.databaseUrl ? undefined : await this.spinner('Starting the embedded PostgreSQL')
      try {
        const target = await resolveTarget(config)
        this.onRelease(() => target.release())
        spin?.stop()
        return target
      } catch (error) {
        spin?.fail()
        throw error
      }
    })()
    return this.targetPromise
  }

  /** A client of the audit database, closed when the command ends. */
  protected async client(): Promise<pg.Client> {
    const target = await this.target()
    const client = await connect(target.databaseUrl)
    this.onRelease(() => client.end())
    return client
  }

  /** Where the MongoDB store is; `what` (the command or flag that needs it) and the setting are named in the usage error when none is configured. */
  protected async mongoTarget(what: string): Promise<MongoTarget> {
    const target = mongoTarget(await this.resolved())
    if (!target)
      throw usageError(`${what} needs a MongoDB server: set its connection string, AUDIT_LOGS_MONGO_URI or --mongo-uri`, [
        `e.g. --mongo-uri mongodb://user:password@127.0.0.1:27017/ (or mongoUri in the config file)`,
      ])
    return target
  }

  /** The MongoDB store, connected, closed when the command ends; the driver is loaded only here. */
  protected async mongoStore(what: string): Promise<MongoStore> {
    const target = await this.mongoTarget(what)
    const {connectMongo} = await import('./stores/mongo/connection.js')
    const store = await connectMongo(target)
    this.onRelease(() => store.close())
    return store
  }

  protected onRelease(fn: () => Promise<void>): void {
    this.releasers.push(fn)
  }

  /**
   * A spinner on stderr, only on a terminal that has a width and never with --json. Its library is
   * loaded only then: a command under a service manager never needs it (for `run` it held about
   * 4 MB for nothing). A terminal of 0 columns (`script`, `docker run -t` before the size is set)
   * made the spinner clear lines without end, and the command never finished.
   */
  protected async spinner(text: string): Promise<Spinner> {
    if (!process.stderr.isTTY || !(process.stderr.columns > 0) || this.jsonEnabled()) return silentSpinner(text)
    const {default: ora} = await import('ora')
    return ora({text, stream: process.stderr}).start()
  }

  /** Aborts on the first Ctrl-C so long work can stop between steps; a second one exits at once. */
  protected interruptSignal(): AbortSignal {
    const controller = new AbortController()
    const onSignal = () => {
      if (controller.signal.aborted) process.exit(ExitCode.interrupted)
      this.logToStderr('Interrupted: finishing the current step, then stopping (Ctrl-C again to quit now)')
      controller.abort()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    this.onRelease(async () => {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    })
    return controller.signal
  }

  protected async catch(err: Error & {exitCode?: number; oclif?: {exit?: number}}): Promise<unknown> {
    if (err instanceof AuditLogsError) {
      process.exitCode = err.exit
      return super.catch(new Errors.CLIError(redactText(err.message), {exit: err.exit, suggestions: err.suggestions.map(redactText)}))
    }
    if (err.oclif) {
      // oclif's own errors (bad flags: exit 2) carry their exit code.
      process.exitCode = err.oclif.exit ?? ExitCode.failure
      err.message = redactText(err.message)
      return super.catch(err)
    }
    // the error's own fields may hold a secret (a URL's `input`): the same redaction as every message
    if (debug.enabled) debug('unexpected error: %s', redactText(inspect(err, {depth: 4})))
    process.exitCode = ExitCode.failure
    // A CLIError prints its message alone; the stack is shown with DEBUG=audit-logs:*.
    return super.catch(new Errors.CLIError(redactText(err.message || String(err)), {exit: ExitCode.failure}))
  }

  protected toErrorJson(err: unknown): unknown {
    const e = err as Error & {oclif?: {exit?: number}; suggestions?: string[]}
    return {error: {message: redactText(e.message), exit: e.oclif?.exit ?? process.exitCode ?? 1, suggestions: e.suggestions}}
  }

  protected async finally(err: Error | undefined): Promise<unknown> {
    for (const release of this.releasers.reverse()) {
      await release().catch((error) => debug('release failed: %s', redactText(inspect(error, {depth: 4}))))
    }
    this.releasers = []
    return super.finally(err)
  }
}
