-- The path and url indexes hold the first 600 characters of the value, not
-- the whole of it. A btree entry must fit in a third of a page (2704 bytes):
-- with the whole value indexed, one request whose URL is longer (a long
-- query string, a scanner's payload) was refused by PostgreSQL and held up
-- every record shipped with it. 600 characters take at most 2400 bytes;
-- the filters compare the same prefix to use the index, and the whole value
-- to decide (src/filters/sql.ts). On a large database the two indexes are
-- rebuilt on every partition while writes wait: the capture server's journal
-- holds the records meanwhile.

-- Up
DROP INDEX request_logs_path_idx;
CREATE INDEX request_logs_path_idx ON request_logs (left(path, 600) text_pattern_ops, created_at);
DROP INDEX access_logs_url_idx;
CREATE INDEX access_logs_url_idx ON access_logs (left(url, 600) text_pattern_ops, created_at);

-- Down
DROP INDEX access_logs_url_idx;
CREATE INDEX access_logs_url_idx ON access_logs (url text_pattern_ops, created_at);
DROP INDEX request_logs_path_idx;
CREATE INDEX request_logs_path_idx ON request_logs (path text_pattern_ops, created_at);
