import {Flags} from '@oclif/core'
import {usageError} from '../errors.js'
import {filterFlags, filterInput} from '../filters/flags.js'
import {parseFilter} from '../filters/parse.js'
import {renderTable} from '../render/table.js'
import {ReadCommand} from '../read-command.js'
import type {Filter} from '../filters/parse.js'
import type {EventSummary} from '../stores/event-summary.js'
import {STATS_BUCKETS, type Stats} from '../stores/source.js'

/** How much of a period's ISO time the histogram shows: 2026-11-24, 2026-11-24T11, 2026-11-24T11:45. */
const PERIOD_CHARS = {day: 10, hour: 13, minute: 16} as const

export default class StatsCommand extends ReadCommand<typeof StatsCommand> {
  static summary =
    'Summarise: counts by status class, error rate, latency percentiles, top paths, users and IPs, the slowest and the most failing paths.'
  static description =
    'With --log-type event: counts by action, actor, target type and severity, failed logins (by actor and address) and exports with their record counts, for the range and, with --actor, one actor.'
  static examples = [
    '<%= config.bin %> <%= command.id %> --log-type event --since 30d',
    '<%= config.bin %> <%= command.id %> --log-type event --since 7d --actor 42 --json',
    '<%= config.bin %> <%= command.id %> --since 7d',
    "<%= config.bin %> <%= command.id %> --since 24h --path '/api/**' --bucket hour --json",
    '<%= config.bin %> <%= command.id %> --since 1h --bucket minute',
  ]
  static flags = {
    ...filterFlags,
    bucket: Flags.option({description: 'histogram period', options: STATS_BUCKETS, default: 'day'})(),
    top: Flags.integer({description: 'entries in each top list', default: 10, min: 1, max: 1000}),
  }

  async run(): Promise<Stats | EventSummary> {
    const f = parseFilter(filterInput(this.flags))
    if (f.logType === 'event') return this.events(f)
    if (f.logType !== 'request' && f.logType !== 'access')
      throw usageError(`stats summarises request, access and event logs; list ${f.logType} logs with query or export`)
    if (!f.since && this.flags.bucket === 'hour')
      throw usageError('--bucket hour needs --since (an hourly histogram of all time would be huge)')
    if (!f.since && this.flags.bucket === 'minute')
      throw usageError('--bucket minute needs --since (a histogram by the minute of all time would be huge)')
    const s = await (await this.source()).stats(f, {bucket: this.flags.bucket, top: this.flags.top})
    const pct = (v: number) => `${(v * 100).toFixed(2)}%`
    this.log(
      `${s.total} ${f.logType} records; error rate (5xx) ${pct(s.errorRate)}; duration p50 ${s.durationMs.p50 ?? '-'} ` +
        `ms, p95 ${s.durationMs.p95 ?? '-'} ms, p99 ${s.durationMs.p99 ?? '-'} ms; slow ${s.slow}, suspicious ` +
        `${s.suspicious}`,
    )
    if (s.approximate) this.log(`Estimated (past the files source's memory bound): ${s.approximate.join(', ')}`)
    this.log(renderTable(Object.keys(s.byClass), [Object.values(s.byClass)]))
    this.log(
      renderTable(
        ['top path', 'count'],
        s.topPaths.map((r) => [r.path, r.count]),
      ),
    )
    this.log(
      renderTable(
        ['top user', 'count'],
        s.topUsers.map((r) => [r.user, r.count]),
      ),
    )
    this.log(
      renderTable(
        ['top ip', 'count'],
        s.topIps.map((r) => [r.ip, r.count]),
      ),
    )
    this.log(
      renderTable(
        ['slowest path', 'count', 'avg ms', 'max ms'],
        s.slowPaths.map((r) => [r.path, r.count, r.avgMs, r.maxMs]),
      ),
    )
    this.log(
      renderTable(
        ['failing path', 'count', '5xx'],
        s.failingPaths.map((r) => [r.path, r.count, r.errors]),
      ),
    )
    const max = Math.max(1, ...s.histogram.map((h) => h.count))
    this.log(
      renderTable(
        [this.flags.bucket, 'count', '5xx', ''],
        s.histogram.map((h) => [
          h.period.slice(0, PERIOD_CHARS[this.flags.bucket]).replace('T', ' '),
          h.count,
          h.errors,
          '#'.repeat(Math.ceil((h.count / max) * 40)),
        ]),
      ),
    )
    return s
  }

  private async events(f: Filter): Promise<EventSummary> {
    const s = await (await this.source()).eventSummary(f, {top: this.flags.top})
    this.log(`${s.total} events; ${s.failedLogins.total} failed logins; ${s.exports.total} exports (${s.exports.records} records exported)`)
    const table = (heading: string, rows: Array<{count: number}>, key: string) =>
      rows.length &&
      this.log(
        renderTable(
          [heading, 'count'],
          rows.map((r) => [(r as Record<string, unknown>)[key] as string, r.count]),
        ),
      )
    table('action', s.byAction, 'action')
    table('actor', s.byActor, 'actor')
    table('target type', s.byTargetType, 'type')
    table('severity', s.bySeverity, 'severity')
    table('failed logins: actor', s.failedLogins.byActor, 'actor')
    table('failed logins: ip', s.failedLogins.byIp, 'ip')
    return s
  }
}
