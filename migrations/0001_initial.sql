-- The audit tables, as DESIGN.md describes them: range-partitioned on
-- created_at, primary key (id, created_at), a default partition so a row
-- whose period has no partition yet is never refused, and indexes for the
-- filters users run (time, status, user, path, ip). The ip index is a btree:
-- PostgreSQL turns `ip << '10.0.0.0/8'` into a range scan on it, and it costs
-- the writer less than GiST.

-- Up
CREATE TABLE audit_logs_settings (
  key text PRIMARY KEY,
  value text NOT NULL
);

CREATE TABLE request_logs (
  id uuid NOT NULL,
  created_at timestamptz NOT NULL,
  method text NOT NULL,
  scheme text,
  host text,
  path text NOT NULL,
  query jsonb,
  request_headers jsonb,
  request_body text,
  request_body_size bigint,
  request_body_truncated boolean,
  status_code integer,
  response_headers jsonb,
  response_body text,
  response_body_size bigint,
  response_body_truncated boolean,
  duration_ms double precision,
  ip inet,
  user_id text,
  user_agent text,
  session_id text,
  trace_id text,
  request_id text,
  flags text[],
  error text,
  extra jsonb,
  instance text,
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX request_logs_created_at_idx ON request_logs (created_at);
CREATE INDEX request_logs_status_idx ON request_logs (status_code, created_at);
CREATE INDEX request_logs_user_idx ON request_logs (user_id, created_at);
CREATE INDEX request_logs_path_idx ON request_logs (path text_pattern_ops, created_at);
CREATE INDEX request_logs_ip_idx ON request_logs (ip, created_at);
CREATE TABLE request_logs_default PARTITION OF request_logs DEFAULT;

CREATE TABLE access_logs (
  id uuid NOT NULL,
  created_at timestamptz NOT NULL,
  method text NOT NULL,
  url text NOT NULL,
  status_code integer,
  duration_ms double precision,
  response_size bigint,
  ip inet,
  user_id text,
  user_agent text,
  referer text,
  instance text,
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX access_logs_created_at_idx ON access_logs (created_at);
CREATE INDEX access_logs_status_idx ON access_logs (status_code, created_at);
CREATE INDEX access_logs_user_idx ON access_logs (user_id, created_at);
CREATE INDEX access_logs_url_idx ON access_logs (url text_pattern_ops, created_at);
CREATE INDEX access_logs_ip_idx ON access_logs (ip, created_at);
CREATE TABLE access_logs_default PARTITION OF access_logs DEFAULT;

-- Down
DROP TABLE access_logs;
DROP TABLE request_logs;
DROP TABLE audit_logs_settings;
