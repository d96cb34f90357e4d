-- Migration 8 (pgsql): named log entries, so that a log can serve as an archive (a room's
-- XEP-0313 archive): a ref (unique in its log), an author and an origin per entry; entries
-- written before are named "log-" and their id. The same meaning as sql/sqlite/0008_log_refs.sql.
ALTER TABLE logs ADD COLUMN ref TEXT COLLATE "C";
ALTER TABLE logs ADD COLUMN author TEXT COLLATE "C";
ALTER TABLE logs ADD COLUMN origin TEXT COLLATE "C";
UPDATE logs SET ref = 'log-' || id;
CREATE UNIQUE INDEX logs_ref ON logs (kind, key, ref);
CREATE INDEX logs_stamp ON logs (kind, key, stamp_ms);
