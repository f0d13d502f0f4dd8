/**
 * A Grafana dashboard over the audit database (PostgreSQL), pure data. Every panel reads access_logs:
 * it has a line for every request, excluded paths included, and only the small fields these need.
 * The datasource is a variable, so the dashboard imports as it is and is pointed at the reader role's
 * datasource (audit_logs_reader may only SELECT).
 */
export const GRAFANA_DATASOURCE_TYPE = 'grafana-postgresql-datasource'

type Panel = {
  title: string
  type: 'timeseries' | 'table' | 'stat'
  format: 'time_series' | 'table'
  unit?: string
  sql: string
  w: number
  h: number
}

const PANELS: Panel[] = [
  {
    title: 'Request rate',
    type: 'timeseries',
    format: 'time_series',
    unit: 'reqps',
    w: 12,
    h: 8,
    sql: `SELECT $__timeGroupAlias(created_at, $__interval),
  count(*) / ($__interval_ms / 1000.0) AS "requests/s"
FROM access_logs
WHERE $__timeFilter(created_at)
GROUP BY 1
ORDER BY 1`,
  },
  {
    title: 'Errors',
    type: 'timeseries',
    format: 'time_series',
    unit: 'short',
    w: 12,
    h: 8,
    sql: `SELECT $__timeGroupAlias(created_at, $__interval),
  count(*) FILTER (WHERE status_code >= 500) AS "5xx",
  count(*) FILTER (WHERE status_code >= 400 AND status_code < 500) AS "4xx"
FROM access_logs
WHERE $__timeFilter(created_at)
GROUP BY 1
ORDER BY 1`,
  },
  {
    title: 'Latency percentiles',
    type: 'timeseries',
    format: 'time_series',
    unit: 'ms',
    w: 12,
    h: 8,
    sql: `SELECT $__timeGroupAlias(created_at, $__interval),
  percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) AS p50,
  percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) AS p95,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ms) AS p99
FROM access_logs
WHERE $__timeFilter(created_at) AND duration_ms IS NOT NULL
GROUP BY 1
ORDER BY 1`,
  },
  {
    title: 'Server error ratio',
    type: 'stat',
    format: 'table',
    unit: 'percent',
    w: 12,
    h: 8,
    sql: `SELECT coalesce(100.0 * count(*) FILTER (WHERE status_code >= 500) / nullif(count(*), 0), 0) AS "5xx %"
FROM access_logs
WHERE $__timeFilter(created_at)`,
  },
  {
    title: 'Top paths',
    type: 'table',
    format: 'table',
    w: 24,
    h: 10,
    sql: `SELECT split_part(url, '?', 1) AS path,
  count(*) AS requests,
  count(*) FILTER (WHERE status_code >= 500) AS "5xx",
  count(*) FILTER (WHERE status_code >= 400 AND status_code < 500) AS "4xx",
  round(percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)::numeric, 1) AS "p95 ms"
FROM access_logs
WHERE $__timeFilter(created_at)
GROUP BY 1
ORDER BY requests DESC
LIMIT 20`,
  },
]

/** The dashboard JSON (Grafana's dashboard model), ready for Dashboards > Import or provisioning. */
export function renderGrafanaDashboard(o: {title: string; uid: string}): string {
  const datasource = {type: GRAFANA_DATASOURCE_TYPE, uid: '${datasource}'}
  let x = 0
  let y = 0
  let rowH = 0
  const panels = PANELS.map((p, i) => {
    if (x + p.w > 24) {
      x = 0
      y += rowH
      rowH = 0
    }
    const gridPos = {x, y, w: p.w, h: p.h}
    x += p.w
    rowH = Math.max(rowH, p.h)
    return {
      id: i + 1,
      title: p.title,
      type: p.type,
      datasource,
      gridPos,
      fieldConfig: {defaults: p.unit ? {unit: p.unit} : {}, overrides: []},
      options: {},
      targets: [{refId: 'A', datasource, editorMode: 'code', rawQuery: true, format: p.format, rawSql: p.sql}],
    }
  })
  const dashboard = {
    uid: o.uid,
    title: o.title,
    tags: ['audit-logs'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    editable: true,
    time: {from: 'now-6h', to: 'now'},
    refresh: '1m',
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Audit database',
          type: 'datasource',
          query: GRAFANA_DATASOURCE_TYPE,
          current: {},
          hide: 0,
          refresh: 1,
          options: [],
        },
      ],
    },
    annotations: {list: []},
    panels,
  }
  return JSON.stringify(dashboard, null, 2) + '\n'
}
