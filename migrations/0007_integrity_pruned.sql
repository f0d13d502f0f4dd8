-- Retention of the integrity chain (src/stores/postgres/prune.ts): cleanup deletes
-- each instance's oldest batch rows once every record they chained lies before its
-- type's recorded retention cutoff, always a prefix of the chain (seq 1..through_seq)
-- and never the head. One row per instance says where its chain now starts, so that
-- verify checks the first remaining batch's link against the pruned batch's hash
-- and knows the missing seqs are pruned, not deleted; `newest` (log type → the
-- newest record time among the pruned batches of that type) lets verify check the
-- claim against the retention it honours. Written by cleanup (the owner's
-- connection); the reader may SELECT it (setup-db grants).

-- Up
CREATE TABLE integrity_pruned (
  instance text PRIMARY KEY,
  through_seq bigint NOT NULL,
  hash bytea NOT NULL,
  total bigint NOT NULL,
  newest jsonb NOT NULL,
  pruned_at timestamptz NOT NULL DEFAULT now()
);

-- Down
DROP TABLE integrity_pruned;
