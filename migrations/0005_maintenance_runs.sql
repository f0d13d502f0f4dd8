-- One row per period of `run --maintenance` (partitions premade, retention
-- applied), written by the instance that did that period's work under the
-- advisory lock: the others see the row and skip the period. A failed
-- attempt is kept too (error set); the period is done once a row without an
-- error exists. Not partitioned: one row per period (24 a day at the
-- default hour), and retention drops rows older than a year.

-- Up
CREATE TABLE maintenance_runs (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  period_start timestamptz NOT NULL,
  interval_ms bigint NOT NULL,
  instance text NOT NULL,
  started_at timestamptz NOT NULL,
  finished_at timestamptz NOT NULL,
  partitions_created integer NOT NULL DEFAULT 0,
  partitions_dropped integer NOT NULL DEFAULT 0,
  rows_removed bigint NOT NULL DEFAULT 0,
  documents_removed bigint NOT NULL DEFAULT 0,
  error text
);
CREATE INDEX maintenance_runs_period_idx ON maintenance_runs (period_start, interval_ms);

-- Down
-- DROP TABLE maintenance_runs;
