-- Migration 8 (sqlite): named log entries, so that a log can serve as an archive (a room's
-- XEP-0313 archive): each entry gets a ref (a room's stanza-id, unique in its log), its author
-- as readers see it (an occupant JID) and its origin (a real bare JID, shown to few). Entries
-- written before are named "log-" and their id. The indexes serve paging by ref and time bounds.
-- Reference copy: the text hearthd runs is embedded in server/storage/sqlite.c (MIGRATION_0008);
-- keep both identical. The runner sets schema_version to 7 in the same transaction.
-- Renumbering (when another branch took 7): rename this file, the constant and its slot in
-- sqlite.c's migrations[], and the version checked in tests/unit/test_storage.c.
ALTER TABLE logs ADD COLUMN ref TEXT;
ALTER TABLE logs ADD COLUMN author TEXT;
ALTER TABLE logs ADD COLUMN origin TEXT;
UPDATE logs SET ref = 'log-' || id;
CREATE UNIQUE INDEX logs_ref ON logs (kind, key, ref);
CREATE INDEX logs_stamp ON logs (kind, key, stamp_ms);
