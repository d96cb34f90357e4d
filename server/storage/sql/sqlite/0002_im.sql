-- Migration 2 (sqlite): what the IM core keeps per user: roster items and their groups, roster
-- versions, pending inbound subscription requests, offline messages (XEP-0160), vCard-temp
-- (XEP-0054), private XML (XEP-0049), the block list (XEP-0191) and last activity (XEP-0012).
-- Reference copy: the text hearthd runs is embedded in server/storage/sqlite.c (MIGRATION_0002);
-- keep both identical. The runner sets schema_version to 2 in the same transaction.
-- Every table keyed by username cascades from accounts: deleting an account removes its IM rows.
-- Lookups are by username (and jid/ns): each primary key or index leads with username, which also
-- serves the cascade. offline_messages ids come from AUTOINCREMENT so they are never reused
-- (storage_offline_delete removes "ids <= upto_id").
CREATE TABLE user_state (
    username TEXT PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,
    roster_ver INTEGER NOT NULL DEFAULT 0,
    roster_deleted_ver INTEGER NOT NULL DEFAULT 0,
    last_logout INTEGER NOT NULL DEFAULT 0,
    last_status TEXT
) WITHOUT ROWID;
CREATE TABLE roster_items (
    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    jid TEXT NOT NULL,
    name TEXT,
    subscription INTEGER NOT NULL CHECK (subscription BETWEEN 0 AND 3),
    ask INTEGER NOT NULL DEFAULT 0,
    approved INTEGER NOT NULL DEFAULT 0,
    ver INTEGER NOT NULL,
    PRIMARY KEY (username, jid)
) WITHOUT ROWID;
CREATE TABLE roster_groups (
    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    jid TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (username, jid, position),
    FOREIGN KEY (username, jid) REFERENCES roster_items (username, jid) ON DELETE CASCADE
) WITHOUT ROWID;
CREATE TABLE sub_requests (
    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    jid TEXT NOT NULL,
    stanza TEXT NOT NULL,
    PRIMARY KEY (username, jid)
);
CREATE TABLE offline_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    stamp_ms INTEGER NOT NULL,
    stanza BLOB NOT NULL
);
CREATE INDEX offline_messages_user ON offline_messages (username, id);
CREATE TABLE vcards (
    username TEXT PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,
    xml TEXT NOT NULL
);
CREATE TABLE private_xml (
    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    ns TEXT NOT NULL,
    xml TEXT NOT NULL,
    PRIMARY KEY (username, ns)
);
CREATE TABLE blocklist (
    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,
    jid TEXT NOT NULL,
    PRIMARY KEY (username, jid)
) WITHOUT ROWID;
