-- The app's calls to other services, recorded by run's egress proxy
-- (outbound_logs: one per plain-HTTP exchange, one per CONNECT tunnel), and
-- the app's own output lines in spawn mode with captureOutput (app_logs).
-- Partitioned on created_at like the other audit tables, with a default
-- partition; the host and path indexes hold bounded prefixes, as 0002 does.

-- Up
CREATE TABLE outbound_logs (
  id uuid NOT NULL,
  created_at timestamptz NOT NULL,
  method text NOT NULL,
  scheme text,
  host text NOT NULL,
  port integer,
  path text,
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
  tunnel boolean,
  bytes_sent bigint,
  bytes_received bigint,
  outcome text,
  error text,
  instance text,
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX outbound_logs_created_at_idx ON outbound_logs (created_at);
CREATE INDEX outbound_logs_host_idx ON outbound_logs (left(host, 255), created_at);
CREATE INDEX outbound_logs_status_idx ON outbound_logs (status_code, created_at);
CREATE INDEX outbound_logs_path_idx ON outbound_logs (left(path, 600) text_pattern_ops, created_at);
CREATE TABLE outbound_logs_default PARTITION OF outbound_logs DEFAULT;

CREATE TABLE app_logs (
  id uuid NOT NULL,
  created_at timestamptz NOT NULL,
  stream text,
  level text,
  message text NOT NULL,
  truncated boolean,
  instance text,
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX app_logs_created_at_idx ON app_logs (created_at);
CREATE INDEX app_logs_level_idx ON app_logs (level, created_at);
CREATE TABLE app_logs_default PARTITION OF app_logs DEFAULT;

-- Down
DROP TABLE app_logs;
DROP TABLE outbound_logs;
