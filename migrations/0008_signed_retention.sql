-- A retention cutoff that cleanup signs with integrityKey once its records are gone
-- (src/stores/postgres/integrity.ts signRetention): the statement {store, log_type, cutoff,
-- days, at, heads} and its Ed25519 signature. verify honours a signed cutoff by the
-- retention it was applied under, for the batches up to the chain heads it names, so that
-- raising the retention later does not turn every earlier cleanup into a BAD RETENTION
-- failure; an unsigned one (no key, an interrupted cleanup, or a row someone added) is
-- bounded by the retention configured now, as before. Written by cleanup (the owner's connection); the reader's
-- SELECT on the table covers the new columns.

-- Up
ALTER TABLE integrity_retention ADD COLUMN statement text, ADD COLUMN signature text;

-- Down
ALTER TABLE integrity_retention DROP COLUMN statement, DROP COLUMN signature;
