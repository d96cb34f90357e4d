-- Migration 7 (sqlite): the message archive stores a message once for both parties, under a key
-- that orders it and carries its time (storage.h, "Archive ids").
-- Reference copy: the text hearthd runs is embedded in server/storage/sqlite.c (MIGRATION_0007).
--
-- archive_msg: one row per message, keyed by the archive key; archive: one row per party, its
-- own archive's order clustered on (username, seq), nothing else but the index for paging one
-- conversation. Time bounds are bounds on seq, and a new message's id is its seq in decimal,
-- so the indexes on time and on (username, id) are gone: per message they were two random
-- B-tree insertions out of six per party. `stanza` on a party's row holds that party's own
-- copy when it differs from the shared one; legacy_id the id of a message archived before this
-- migration, found by a partial index that new rows (legacy_id NULL) do not enter.
-- Old rows get a key from their stamp, in their old order: the greatest stamp so far (so that
-- the order holds when the clock went back), the storage's generator, the rank within that
-- millisecond. Their time is then the key's.
CREATE TABLE archive_msg (
    seq INTEGER PRIMARY KEY,
    stanza TEXT NOT NULL
);
CREATE TABLE archive_new (
    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    with_jid TEXT NOT NULL,
    outgoing INTEGER NOT NULL DEFAULT 0,
    stanza TEXT,
    legacy_id TEXT,
    PRIMARY KEY (username, seq)
) WITHOUT ROWID;
CREATE TEMP TABLE archive_keys AS
    SELECT old, ((max(ms, 0) << 21) | (127 << 14)) + (row_number() OVER (PARTITION BY ms ORDER BY old) - 1) AS seq
    FROM (SELECT seq AS old, max(stamp_ms) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) AS ms
          FROM archive);
INSERT INTO archive_msg (seq, stanza)
    SELECT k.seq, a.stanza FROM archive a JOIN archive_keys k ON k.old = a.seq;
INSERT INTO archive_new (username, seq, with_jid, outgoing, legacy_id)
    SELECT a.username, k.seq, a.with_jid, a.outgoing, a.id FROM archive a JOIN archive_keys k ON k.old = a.seq;
DROP TABLE archive_keys;
DROP TABLE archive;
ALTER TABLE archive_new RENAME TO archive;
CREATE INDEX archive_user_with ON archive (username, with_jid, seq);
CREATE UNIQUE INDEX archive_legacy ON archive (username, legacy_id) WHERE legacy_id IS NOT NULL;
