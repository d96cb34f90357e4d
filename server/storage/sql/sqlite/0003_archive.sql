-- Migration 3 (sqlite): the message archive (XEP-0313) with per-user archiving preferences, and
-- generic documents and logs keyed by (kind, key) for services without an account of their own
-- (multi-user chat rooms and their histories).
-- Reference copy: the text hearthd runs is embedded in server/storage/sqlite.c (MIGRATION_0003);
-- keep both identical. The runner sets schema_version to 3 in the same transaction.
-- archive: one row per archived message; (username, id) is the archive id a client pages by,
-- seq (AUTOINCREMENT, never reused) the archive order. Indexes serve paging through a whole
-- archive, paging through one conversation, time bounds, and the retention purge across users.
-- Archive and preference rows cascade from accounts; documents and logs belong to no account.
CREATE TABLE archive (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    id TEXT NOT NULL,
    with_jid TEXT NOT NULL,
    stamp_ms INTEGER NOT NULL,
    outgoing INTEGER NOT NULL DEFAULT 0,
    stanza TEXT NOT NULL,
    UNIQUE (username, id)
);
CREATE INDEX archive_user_seq ON archive (username, seq);
CREATE INDEX archive_user_with ON archive (username, with_jid, seq);
CREATE INDEX archive_user_stamp ON archive (username, stamp_ms);
CREATE INDEX archive_stamp ON archive (stamp_ms);
CREATE TABLE archive_prefs (
    username TEXT PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,
    default_mode INTEGER NOT NULL CHECK (default_mode BETWEEN 0 AND 2)
) WITHOUT ROWID;
CREATE TABLE archive_prefs_jids (
    username TEXT NOT NULL REFERENCES archive_prefs (username) ON DELETE CASCADE,
    always INTEGER NOT NULL CHECK (always IN (0, 1)),
    jid TEXT NOT NULL,
    PRIMARY KEY (username, always, jid)
) WITHOUT ROWID;
CREATE TABLE documents (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    xml TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    stamp_ms INTEGER NOT NULL,
    xml TEXT NOT NULL
);
CREATE INDEX logs_key ON logs (kind, key, id);
