import {Flags} from '@oclif/core'
import {Masker} from '../capture/masking.js'
import {usageError} from '../errors.js'
import {type Delivery, deliverDirectly, sendToRun} from '../events/deliver.js'
import {EventError, eventLine} from '../events/record.js'
import {BaseCommand} from '../base-command.js'
import {hooksFrom} from '../server/hooks.js'
import {eventsUrl, workerSettings} from '../server/settings.js'

/** A flag's JSON text as a value, or a usage error that names the flag. */
function jsonFlag(flag: string, text: string | undefined): unknown {
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch (error) {
    throw usageError(`--${flag} is not JSON (${(error as Error).message}): give an object, e.g. '{"record_count": 120}'`)
  }
}

export default class Event extends BaseCommand<typeof Event> {
  static summary = 'Record one application event (a deploy, a cron job, a manual change) in the audit trail.'
  static description =
    'Sends it to the running `audit-logs run` (its admin listener), or, when none is up, writes it through the journal ' +
    'straight into the configured stores. The event is validated and masked as the ones apps send.'
  static examples = [
    '<%= config.bin %> <%= command.id %> --action DEPLOY --actor ci --reason "release 2026.12.06" --severity INFO',
    '<%= config.bin %> <%= command.id %> --action UPDATE --actor 42 --actor-name alice --target shop.Order:17 --changes \'{"status": {"before": "new", "after": "paid"}}\'',
    '<%= config.bin %> <%= command.id %> --action EXPORT --actor 42 --target "User Data" --extra \'{"record_count": 120, "file_format": "CSV"}\' --json',
  ]
  static flags = {
    action: Flags.string({
      description: 'an upper-case word: CREATE, UPDATE, DELETE, VIEW, LOGIN, LOGIN_FAILED, LOGOUT, EXPORT, or your own',
      required: true,
    }),
    actor: Flags.string({description: 'who did it: a user id'}),
    'actor-name': Flags.string({description: "the actor's name"}),
    target: Flags.string({description: 'what it was done to: TYPE or TYPE:ID, e.g. shop.Order:17'}),
    changes: Flags.string({description: 'JSON: field → {"before": …, "after": …}'}),
    reason: Flags.string({description: 'why'}),
    severity: Flags.option({description: 'for system events', options: ['INFO', 'WARNING', 'ERROR', 'SECURITY', 'PERFORMANCE'] as const})(),
    'request-id': Flags.string({description: 'the request it happened in (X-Request-Id)'}),
    ip: Flags.string({description: 'the address it came from'}),
    extra: Flags.string({description: 'JSON object of anything else'}),
    id: Flags.string({description: 'the event id (a UUID; sent again, the event is kept once) [default: a new one]'}),
    'created-at': Flags.string({description: 'when it happened: an ISO time with offset [default: now]'}),
    'log-dir': Flags.string({description: 'without a run: the directory of the JSONL files [default: the configured logDir]'}),
    'timeout-ms': Flags.integer({description: 'without a run: how long to wait for the stores', default: 30_000, min: 1}),
  }

  protected configFlags() {
    return {logDir: this.flags['log-dir']}
  }

  async run(): Promise<{id: string} & Delivery> {
    const f = this.flags
    const config = await this.resolved()
    const settings = workerSettings(config)
    const colon = f.target?.indexOf(':') ?? -1
    const input = {
      action: f.action,
      id: f.id,
      created_at: f['created-at'],
      actor: f.actor === undefined && f['actor-name'] === undefined ? undefined : {id: f.actor, name: f['actor-name']},
      target:
        f.target === undefined ? undefined : colon < 0 ? {type: f.target} : {type: f.target.slice(0, colon), id: f.target.slice(colon + 1)},
      changes: jsonFlag('changes', f.changes),
      reason: f.reason,
      severity: f.severity,
      request_id: f['request-id'],
      ip: f.ip,
      extra: jsonFlag('extra', f.extra),
    }
    let built: {id: string; line: string}
    const event = JSON.parse(JSON.stringify(input)) as Record<string, unknown> // without the flags not given
    try {
      built = eventLine(event, {
        masker: Masker.of(settings),
        instance: settings.instance,
        mask: (await hooksFrom(settings.configFile)).mask,
      })
    } catch (error) {
      if (error instanceof EventError) throw usageError(`The event is refused: ${error.message}`)
      throw error
    }
    const url = eventsUrl(config)
    // the run validates and masks it again, as it does any app's; with this id and time, it is the same event
    const {id, created_at: createdAt} = JSON.parse(built.line) as {id: string; created_at: string}
    const sent = await sendToRun(url, config.eventsToken, JSON.stringify({...event, id, created_at: createdAt}))
    if (sent) {
      this.log(`event ${sent.id} sent to the run at ${url}`)
      return {id: sent.id, via: 'run', url}
    }
    const delivery = await deliverDirectly(config, [built.line], {
      journalDir: settings.journalDir,
      timeoutMs: f['timeout-ms'],
      log: (m) => this.logToStderr(m),
    })
    const missed = Object.entries(delivery.delivered).filter(([, ok]) => !ok)
    for (const [sink] of missed)
      this.logToStderr(
        `warning: ${sink} did not take the event (${delivery.errors[sink] ?? 'timed out'}); it waits in the journal ${delivery.journalDir} for the next run or event`,
      )
    this.log(`event ${built.id} written${missed.length ? ' to the journal' : ` to ${Object.keys(delivery.delivered).join(' and ')}`}`)
    return {id: built.id, ...delivery}
  }
}
