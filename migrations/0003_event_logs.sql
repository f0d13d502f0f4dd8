-- Application events (model changes, logins, exports, system events), as
-- DESIGN.md's data model and the README describe them: range-partitioned on
-- created_at like the other audit tables, with a default partition and
-- indexes for the event filters (time; action, actor, target with time; the
-- request id, which links an event to the request it happened in). The
-- ingest bounds every indexed text field (action 64 characters, the others
-- 200), so no entry can pass a btree's limit.

-- Up
CREATE TABLE event_logs (
  id uuid NOT NULL,
  created_at timestamptz NOT NULL,
  action text NOT NULL,
  actor_id text,
  actor_name text,
  target_type text,
  target_id text,
  changes jsonb,
  reason text,
  severity text,
  request_id text,
  ip inet,
  instance text,
  extra jsonb,
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

CREATE INDEX event_logs_created_at_idx ON event_logs (created_at);
CREATE INDEX event_logs_action_idx ON event_logs (action, created_at);
CREATE INDEX event_logs_actor_idx ON event_logs (actor_id, created_at);
CREATE INDEX event_logs_target_idx ON event_logs (target_type, target_id, created_at);
CREATE INDEX event_logs_request_id_idx ON event_logs (request_id);
CREATE INDEX event_logs_ip_idx ON event_logs (ip, created_at);
CREATE TABLE event_logs_default PARTITION OF event_logs DEFAULT;

-- Down
DROP TABLE event_logs;
