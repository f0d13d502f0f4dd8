import {Counter, Gauge, Registry} from 'prom-client'
import type {SHIPPER_COUNTERS, ShipperStats} from './shipper.js'

export type WorkerCounts = {requests: number; captured: number; dropped: number}
/** What a worker's gate reports (whenFull: block): requests that waited, and were refused after waiting, since its last report. */
export type GateCounts = {waited: number; refused: number}
/** The journal's bound and state, and the requests waiting at the workers' gates now. */
export type JournalState = {journalMax: number; full: () => boolean; paced?: () => boolean; waiting: () => number}

/** Prometheus metrics of the primary: worker counts arrive as deltas over IPC, shipper stats are read at scrape time. */
export class Metrics {
  readonly registry = new Registry()
  readonly totals: WorkerCounts & {refused: number} = {requests: 0, captured: 0, dropped: 0, refused: 0}
  private readonly requests = new Counter({name: 'audit_logs_requests_total', help: 'Requests proxied', registers: [this.registry]})
  private readonly captured = new Counter({
    name: 'audit_logs_records_captured_total',
    help: 'Records appended to the journal',
    registers: [this.registry],
  })
  private readonly dropped = new Counter({
    name: 'audit_logs_records_dropped_total',
    help: 'Records dropped: the journal was full or its disk refused them, the record builder was too far behind, or a record could not be built',
    registers: [this.registry],
  })
  private readonly waited = new Counter({
    name: 'audit_logs_requests_waited_total',
    help: 'Requests held at the door because the journal was full or the record builder far behind (whenFull: block)',
    registers: [this.registry],
  })
  private readonly refused = new Counter({
    name: 'audit_logs_requests_refused_total',
    help: 'Requests answered 503 after waiting blockTimeoutMs for room in the journal, or at shutdown (whenFull: block)',
    registers: [this.registry],
  })
  readonly waiting: () => number

  /** The events endpoint's counts (server/events.ts), read at scrape time. */
  watchEvents(counts: () => {accepted: number; refused: number; rejectedBatches: number}): void {
    const seen = {accepted: 0, refused: 0, rejectedBatches: 0}
    new Counter({
      name: 'audit_logs_events_total',
      help: 'Events sent to /_audit/events: accepted (journaled), refused (one by one, for what they held), batch_refused (whole requests: token, size, rate, a full journal)',
      labelNames: ['outcome'],
      registers: [this.registry],
      collect() {
        const now = counts()
        this.inc({outcome: 'accepted'}, now.accepted - seen.accepted)
        this.inc({outcome: 'refused'}, now.refused - seen.refused)
        this.inc({outcome: 'batch_refused'}, now.rejectedBatches - seen.rejectedBatches)
        Object.assign(seen, now)
      },
    })
  }

  constructor(
    shippers: () => ShipperStats[],
    journalBytes: () => number,
    workers: () => number,
    journal: JournalState = {journalMax: 0, full: () => false, waiting: () => 0},
  ) {
    this.waiting = journal.waiting
    // Shipper totals become counters: each scrape adds what changed since the last one.
    const fromStats = (name: string, help: string, field: (typeof SHIPPER_COUNTERS)[number]) => {
      const seen = new Map<string, number>()
      new Counter({
        name,
        help,
        labelNames: ['sink'],
        registers: [this.registry],
        collect() {
          for (const s of shippers()) {
            this.inc({sink: s.name}, s[field] - (seen.get(s.name) ?? 0))
            seen.set(s.name, s[field])
          }
        },
      })
    }
    fromStats('audit_logs_records_written_total', 'Records delivered to a sink', 'written')
    fromStats('audit_logs_sink_retries_total', 'Failed deliveries retried', 'retried')
    fromStats(
      'audit_logs_sink_catch_ups_total',
      'Times shipping went from the background priority to the normal one because a sink was catchUpLagBytes or catchUpLagMs behind',
      'catchUps',
    )
    fromStats(
      'audit_logs_records_rejected_total',
      'Records a sink refused, kept in its dead-letter file in the journal directory',
      'rejected',
    )
    // Shipper states become gauges, one series per sink.
    const perSink = (name: string, help: string, value: (s: ShipperStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['sink'],
        registers: [this.registry],
        collect() {
          for (const s of shippers()) this.set({sink: s.name}, value(s))
        },
      })
    perSink('audit_logs_sink_deferred', 'A sink waits while the proxy workers are saturated (1), within shippingDeferMs', (s) =>
      s.deferred ? 1 : 0,
    )
    perSink('audit_logs_sink_lag_bytes', 'Journal bytes not yet delivered to a sink', (s) => s.lagBytes)
    perSink(
      'audit_logs_sink_lag_seconds',
      'How long the oldest journal record not yet delivered to a sink has waited (0: none waits), at least: measured every 250 ms, since run started',
      (s) => (s.lagMs ?? 0) / 1000,
    )
    new Gauge({
      name: 'audit_logs_journal_bytes',
      help: 'Bytes held in the journal',
      registers: [this.registry],
      collect() {
        this.set(journalBytes())
      },
    })
    new Gauge({
      name: 'audit_logs_journal_max_bytes',
      help: "The journal's bound (journalMaxBytes, or derived from the free space at start)",
      registers: [this.registry],
      collect() {
        this.set(journal.journalMax)
      },
    })
    new Gauge({
      name: 'audit_logs_journal_full',
      help: 'The journal is at its bound (1): new requests wait (whenFull: block) or their records are dropped (drop)',
      registers: [this.registry],
      collect() {
        this.set(journal.full() ? 1 : 0)
      },
    })
    new Gauge({
      name: 'audit_logs_intake_paced',
      help: 'New requests wait because a delivering sink is more than maxSinkLagMs behind at its pace (1; whenFull: block)',
      registers: [this.registry],
      collect() {
        this.set(journal.paced?.() ? 1 : 0)
      },
    })
    new Gauge({
      name: 'audit_logs_requests_waiting',
      help: 'Requests waiting for room in the journal now (whenFull: block)',
      registers: [this.registry],
      collect() {
        this.set(journal.waiting())
      },
    })
    new Gauge({
      name: 'audit_logs_workers',
      help: 'Live proxy worker processes',
      registers: [this.registry],
      collect() {
        this.set(workers())
      },
    })
  }

  add(delta: WorkerCounts & Partial<GateCounts>): void {
    this.waited.inc(delta.waited ?? 0)
    this.refused.inc(delta.refused ?? 0)
    this.requests.inc(delta.requests)
    this.captured.inc(delta.captured)
    this.dropped.inc(delta.dropped)
    this.totals.requests += delta.requests
    this.totals.captured += delta.captured
    this.totals.dropped += delta.dropped
    this.totals.refused += delta.refused ?? 0
  }
}
