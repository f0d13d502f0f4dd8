import {Counter, Gauge, Registry} from 'prom-client'
import type {ShipperStats} from './shipper.js'

export type WorkerCounts = {requests: number; captured: number; dropped: number}

/** Prometheus metrics of the primary: worker counts arrive as deltas over IPC, shipper stats are read at scrape time. */
export class Metrics {
  readonly registry = new Registry()
  readonly totals: WorkerCounts = {requests: 0, captured: 0, dropped: 0}
  private readonly requests = new Counter({name: 'audit_logs_requests_total', help: 'Requests proxied', registers: [this.registry]})
  private readonly captured = new Counter({name: 'audit_logs_records_captured_total', help: 'Records appended to the journal', registers: [this.registry]})
  private readonly dropped = new Counter({name: 'audit_logs_records_dropped_total', help: 'Records dropped because the journal was full', registers: [this.registry]})

  constructor(shippers: () => ShipperStats[], journalBytes: () => number, workers: () => number) {
    const seen = new Map<string, {written: number; retried: number}>()
    const written = new Counter({name: 'audit_logs_records_written_total', help: 'Records delivered to a sink', labelNames: ['sink'], registers: [this.registry]})
    const retried = new Counter({name: 'audit_logs_sink_retries_total', help: 'Failed deliveries retried', labelNames: ['sink'], registers: [this.registry]})
    new Gauge({name: 'audit_logs_sink_lag_bytes', help: 'Journal bytes not yet delivered to a sink', labelNames: ['sink'], registers: [this.registry], collect() {
      for (const s of shippers()) {
        this.set({sink: s.name}, s.lagBytes)
        const prev = seen.get(s.name) ?? {written: 0, retried: 0}
        written.inc({sink: s.name}, s.written - prev.written)
        retried.inc({sink: s.name}, s.retried - prev.retried)
        seen.set(s.name, {written: s.written, retried: s.retried})
      }
    }})
    new Gauge({name: 'audit_logs_journal_bytes', help: 'Bytes held in the journal', registers: [this.registry], collect() {
      this.set(journalBytes())
    }})
    new Gauge({name: 'audit_logs_workers', help: 'Live proxy worker processes', registers: [this.registry], collect() {
      this.set(workers())
    }})
  }

  add(delta: WorkerCounts): void {
    this.requests.inc(delta.requests)
    this.captured.inc(delta.captured)
    this.dropped.inc(delta.dropped)
    this.totals.requests += delta.requests
    this.totals.captured += delta.captured
    this.totals.dropped += delta.dropped
  }
}
