-- Tamper evidence (src/stores/postgres/integrity.ts): each instance's hash
-- chain of the batches its writer committed (integrity_batches, one row per
-- batch, in the batch's own transaction), the signed digests of the chain's
-- head (integrity_digests, also appended to <logDir>/digests.jsonl) and the
-- retention that removed records on purpose (integrity_retention, written by
-- cleanup). The writer may INSERT batches and digests and SELECT its chain's
-- head; the reader may SELECT all three (setup-db grants).

-- Up
CREATE TABLE integrity_batches (
  instance text NOT NULL,
  seq bigint NOT NULL,
  log_type text NOT NULL,
  ids uuid[] NOT NULL,
  created_ats timestamptz[] NOT NULL,
  record_hashes bytea NOT NULL,
  records_hash bytea NOT NULL,
  prev_hash bytea NOT NULL,
  hash bytea NOT NULL,
  count integer NOT NULL,
  total bigint NOT NULL,
  min_created_at timestamptz NOT NULL,
  max_created_at timestamptz NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (instance, seq)
);
CREATE INDEX integrity_batches_time_idx ON integrity_batches (instance, max_created_at);

CREATE TABLE integrity_digests (
  instance text NOT NULL,
  seq bigint NOT NULL,
  body text NOT NULL,
  signature text,
  written_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (instance, seq)
);

CREATE TABLE integrity_retention (
  log_type text NOT NULL,
  cutoff timestamptz NOT NULL,
  how text NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now()
);

-- Down
DROP TABLE integrity_retention;
DROP TABLE integrity_digests;
DROP TABLE integrity_batches;
