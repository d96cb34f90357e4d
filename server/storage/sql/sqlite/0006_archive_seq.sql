-- Migration 6 (sqlite): the archive's seq and the logs' id without AUTOINCREMENT.
-- Reference copy: the text hearthd runs is embedded in server/storage/sqlite.c (MIGRATION_0006);
-- keep both identical. The runner sets schema_version to 6 in the same transaction.
-- AUTOINCREMENT made every archived message (and every logged room message) read and rewrite
-- its row of sqlite_sequence, about a quarter of an archive write. A plain INTEGER PRIMARY KEY takes the largest seq plus one, so
-- the order of archiving is kept; a seq can come back only after the newest row of all was
-- deleted, and clients never see seq (they page by id). The tables are rebuilt (SQLite cannot
-- drop AUTOINCREMENT in place), their rows keeping their seq or id; nothing references them.
ALTER TABLE archive RENAME TO archive_old;
CREATE TABLE archive (
    seq INTEGER PRIMARY KEY,
    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    id TEXT NOT NULL,
    with_jid TEXT NOT NULL,
    stamp_ms INTEGER NOT NULL,
    outgoing INTEGER NOT NULL DEFAULT 0,
    stanza TEXT NOT NULL,
    UNIQUE (username, id)
);
INSERT INTO archive (seq, username, id, with_jid, stamp_ms, outgoing, stanza)
    SELECT seq, username, id, with_jid, stamp_ms, outgoing, stanza FROM archive_old;
DROP TABLE archive_old;
CREATE INDEX archive_user_seq ON archive (username, seq);
CREATE INDEX archive_user_with ON archive (username, with_jid, seq);
CREATE INDEX archive_user_stamp ON archive (username, stamp_ms);
CREATE INDEX archive_stamp ON archive (stamp_ms);
ALTER TABLE logs RENAME TO logs_old;
CREATE TABLE logs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    stamp_ms INTEGER NOT NULL,
    xml TEXT NOT NULL
);
INSERT INTO logs (id, kind, key, stamp_ms, xml) SELECT id, kind, key, stamp_ms, xml FROM logs_old;
DROP TABLE logs_old;
CREATE INDEX logs_key ON logs (kind, key, id);
DELETE FROM sqlite_sequence WHERE name IN ('archive', 'archive_old', 'logs', 'logs_old');
