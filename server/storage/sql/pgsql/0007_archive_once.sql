-- Migration 7 (pgsql): the message archive stores a message once for both parties, under a key
-- that orders it and carries its time (storage.h, "Archive ids"). The same meaning as
-- sql/sqlite/0007_archive_once.sql: archive_msg holds one row per message by key; archive one
-- row per party, clustered on (username, seq); legacy_id the id of a message archived before
-- this migration (a partial unique index). Old rows get a key from their stamp, in their old
-- order: the greatest stamp so far, the storage's generator (127), the rank in that millisecond.
CREATE TABLE archive_msg (
    seq BIGINT PRIMARY KEY,
    stanza TEXT NOT NULL
);
CREATE TABLE archive_new (
    username TEXT COLLATE "C" NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    seq BIGINT NOT NULL,
    with_jid TEXT COLLATE "C" NOT NULL,
    outgoing INTEGER NOT NULL DEFAULT 0,
    stanza TEXT,
    legacy_id TEXT COLLATE "C",
    PRIMARY KEY (username, seq)
);
CREATE TEMP TABLE archive_keys AS
    SELECT old, ((greatest(ms, 0) << 21) | (127::bigint << 14))
                + (row_number() OVER (PARTITION BY ms ORDER BY old) - 1) AS seq
    FROM (SELECT seq AS old, max(stamp_ms) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) AS ms
          FROM archive) AS stamped;
INSERT INTO archive_msg (seq, stanza)
    SELECT k.seq, a.stanza FROM archive a JOIN archive_keys k ON k.old = a.seq;
INSERT INTO archive_new (username, seq, with_jid, outgoing, legacy_id)
    SELECT a.username, k.seq, a.with_jid, a.outgoing, a.id FROM archive a JOIN archive_keys k ON k.old = a.seq;
DROP TABLE archive_keys;
DROP TABLE archive;
ALTER TABLE archive_new RENAME TO archive;
CREATE INDEX archive_user_with ON archive (username, with_jid, seq);
CREATE UNIQUE INDEX archive_legacy ON archive (username, legacy_id) WHERE legacy_id IS NOT NULL;
