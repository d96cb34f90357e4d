/* The sqlite storage driver: one connection, used only by the storage thread after open (WAL,
 * synchronous=FULL, foreign keys: IM rows cascade from accounts), numbered migrations run at
 * open, and each batch of requests in one BEGIN IMMEDIATE transaction with a SAVEPOINT per request.
 * Migration 3 adds the message archive with its preferences, and generic documents and logs;
 * migration 5 publish-subscribe nodes, items and affiliations.
 * Cached prepared statements only; values are always bound, never written into SQL text. */
#include "storage/storage.h"

#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUSY_TIMEOUT_MS 5000

/* Migrations: the same numbers and meaning as every other driver's. Reference copies live in
 * server/storage/sql/sqlite/NNNN_*.sql; keep them identical to these strings. */
static const char MIGRATION_0001[] = "CREATE TABLE accounts (\n"
                                     "    username TEXT PRIMARY KEY,\n"
                                     "    admin INTEGER NOT NULL DEFAULT 0,\n"
                                     "    sha1_salt TEXT,\n"
                                     "    sha1_iter INTEGER,\n"
                                     "    sha1_stored TEXT,\n"
                                     "    sha1_server TEXT,\n"
                                     "    sha256_salt TEXT,\n"
                                     "    sha256_iter INTEGER,\n"
                                     "    sha256_stored TEXT,\n"
                                     "    sha256_server TEXT,\n"
                                     "    created_at INTEGER NOT NULL\n"
                                     ");\n"
                                     "CREATE TABLE properties (\n"
                                     "    name TEXT PRIMARY KEY,\n"
                                     "    value TEXT NOT NULL\n"
                                     ");\n";

static const char MIGRATION_0002[] =
    "CREATE TABLE user_state (\n"
    "    username TEXT PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    roster_ver INTEGER NOT NULL DEFAULT 0,\n"
    "    roster_deleted_ver INTEGER NOT NULL DEFAULT 0,\n"
    "    last_logout INTEGER NOT NULL DEFAULT 0,\n"
    "    last_status TEXT\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE roster_items (\n"
    "    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    jid TEXT NOT NULL,\n"
    "    name TEXT,\n"
    "    subscription INTEGER NOT NULL CHECK (subscription BETWEEN 0 AND 3),\n"
    "    ask INTEGER NOT NULL DEFAULT 0,\n"
    "    approved INTEGER NOT NULL DEFAULT 0,\n"
    "    ver INTEGER NOT NULL,\n"
    "    PRIMARY KEY (username, jid)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE roster_groups (\n"
    "    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    jid TEXT NOT NULL,\n"
    "    position INTEGER NOT NULL,\n"
    "    name TEXT NOT NULL,\n"
    "    PRIMARY KEY (username, jid, position),\n"
    "    FOREIGN KEY (username, jid) REFERENCES roster_items (username, jid) ON DELETE CASCADE\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE sub_requests (\n"
    "    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    jid TEXT NOT NULL,\n"
    "    stanza TEXT NOT NULL,\n"
    "    PRIMARY KEY (username, jid)\n"
    ");\n"
    "CREATE TABLE offline_messages (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    stamp_ms INTEGER NOT NULL,\n"
    "    stanza BLOB NOT NULL\n"
    ");\n"
    "CREATE INDEX offline_messages_user ON offline_messages (username, id);\n"
    "CREATE TABLE vcards (\n"
    "    username TEXT PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    xml TEXT NOT NULL\n"
    ");\n"
    "CREATE TABLE private_xml (\n"
    "    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    ns TEXT NOT NULL,\n"
    "    xml TEXT NOT NULL,\n"
    "    PRIMARY KEY (username, ns)\n"
    ");\n"
    "CREATE TABLE blocklist (\n"
    "    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    jid TEXT NOT NULL,\n"
    "    PRIMARY KEY (username, jid)\n"
    ") WITHOUT ROWID;\n";

static const char MIGRATION_0003[] =
    "CREATE TABLE archive (\n"
    "    seq INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    id TEXT NOT NULL,\n"
    "    with_jid TEXT NOT NULL,\n"
    "    stamp_ms INTEGER NOT NULL,\n"
    "    outgoing INTEGER NOT NULL DEFAULT 0,\n"
    "    stanza TEXT NOT NULL,\n"
    "    UNIQUE (username, id)\n"
    ");\n"
    "CREATE INDEX archive_user_seq ON archive (username, seq);\n"
    "CREATE INDEX archive_user_with ON archive (username, with_jid, seq);\n"
    "CREATE INDEX archive_user_stamp ON archive (username, stamp_ms);\n"
    "CREATE INDEX archive_stamp ON archive (stamp_ms);\n"
    "CREATE TABLE archive_prefs (\n"
    "    username TEXT PRIMARY KEY REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    default_mode INTEGER NOT NULL CHECK (default_mode BETWEEN 0 AND 2)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE archive_prefs_jids (\n"
    "    username TEXT NOT NULL REFERENCES archive_prefs (username) ON DELETE CASCADE,\n"
    "    always INTEGER NOT NULL CHECK (always IN (0, 1)),\n"
    "    jid TEXT NOT NULL,\n"
    "    PRIMARY KEY (username, always, jid)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TABLE documents (\n"
    "    kind TEXT NOT NULL,\n"
    "    key TEXT NOT NULL,\n"
    "    xml TEXT NOT NULL,\n"
    "    PRIMARY KEY (kind, key)\n"
    ");\n"
    "CREATE TABLE logs (\n"
    "    id INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    kind TEXT NOT NULL,\n"
    "    key TEXT NOT NULL,\n"
    "    stamp_ms INTEGER NOT NULL,\n"
    "    xml TEXT NOT NULL\n"
    ");\n"
    "CREATE INDEX logs_key ON logs (kind, key, id);\n";

/* Room affiliations out of the room documents: a row naming one of our accounts goes with it. */
static const char MIGRATION_0004[] =
    "CREATE TABLE muc_affiliations (\n"
    "    room TEXT NOT NULL,\n"
    "    jid TEXT NOT NULL,\n"
    "    affiliation TEXT NOT NULL,\n"
    "    nick TEXT,\n"
    "    reason TEXT,\n"
    "    account TEXT REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    PRIMARY KEY (room, jid)\n"
    ");\n"
    "CREATE INDEX muc_affiliations_jid ON muc_affiliations (jid, affiliation);\n"
    "CREATE INDEX muc_affiliations_account ON muc_affiliations (account);\n";

/* Publish-subscribe: a PEP node names its account (it goes with it); items and affiliations go
 * with their node. seq orders items by publication, a republished id taking a new one. */
static const char MIGRATION_0005[] =
    "CREATE TABLE pubsub_nodes (\n"
    "    service TEXT NOT NULL,\n"
    "    node TEXT NOT NULL,\n"
    "    account TEXT REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    config TEXT NOT NULL,\n"
    "    PRIMARY KEY (service, node)\n"
    ");\n"
    "CREATE INDEX pubsub_nodes_account ON pubsub_nodes (account);\n"
    "CREATE TABLE pubsub_items (\n"
    "    seq INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    service TEXT NOT NULL,\n"
    "    node TEXT NOT NULL,\n"
    "    id TEXT NOT NULL,\n"
    "    publisher TEXT NOT NULL,\n"
    "    stamp_ms INTEGER NOT NULL,\n"
    "    payload TEXT NOT NULL,\n"
    "    UNIQUE (service, node, id),\n"
    "    FOREIGN KEY (service, node) REFERENCES pubsub_nodes (service, node) ON DELETE CASCADE\n"
    ");\n"
    "CREATE INDEX pubsub_items_node ON pubsub_items (service, node, seq);\n"
    "CREATE TABLE pubsub_affiliations (\n"
    "    service TEXT NOT NULL,\n"
    "    node TEXT NOT NULL,\n"
    "    jid TEXT NOT NULL,\n"
    "    affiliation TEXT NOT NULL,\n"
    "    account TEXT REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    PRIMARY KEY (service, node, jid),\n"
    "    FOREIGN KEY (service, node) REFERENCES pubsub_nodes (service, node) ON DELETE CASCADE\n"
    ");\n"
    "CREATE INDEX pubsub_affiliations_account ON pubsub_affiliations (account);\n";

/* The archive's seq and the logs' id without AUTOINCREMENT, which cost a read and a write of
 * sqlite_sequence per archived or logged message; the tables are rebuilt with their rows' seq
 * and id kept (see 0006_archive_seq.sql). */
static const char MIGRATION_0006[] =
    "ALTER TABLE archive RENAME TO archive_old;\n"
    "CREATE TABLE archive (\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    id TEXT NOT NULL,\n"
    "    with_jid TEXT NOT NULL,\n"
    "    stamp_ms INTEGER NOT NULL,\n"
    "    outgoing INTEGER NOT NULL DEFAULT 0,\n"
    "    stanza TEXT NOT NULL,\n"
    "    UNIQUE (username, id)\n"
    ");\n"
    "INSERT INTO archive (seq, username, id, with_jid, stamp_ms, outgoing, stanza)\n"
    "    SELECT seq, username, id, with_jid, stamp_ms, outgoing, stanza FROM archive_old;\n"
    "DROP TABLE archive_old;\n"
    "CREATE INDEX archive_user_seq ON archive (username, seq);\n"
    "CREATE INDEX archive_user_with ON archive (username, with_jid, seq);\n"
    "CREATE INDEX archive_user_stamp ON archive (username, stamp_ms);\n"
    "CREATE INDEX archive_stamp ON archive (stamp_ms);\n"
    "ALTER TABLE logs RENAME TO logs_old;\n"
    "CREATE TABLE logs (\n"
    "    id INTEGER PRIMARY KEY,\n"
    "    kind TEXT NOT NULL,\n"
    "    key TEXT NOT NULL,\n"
    "    stamp_ms INTEGER NOT NULL,\n"
    "    xml TEXT NOT NULL\n"
    ");\n"
    "INSERT INTO logs (id, kind, key, stamp_ms, xml) SELECT id, kind, key, stamp_ms, xml FROM "
    "logs_old;\n"
    "DROP TABLE logs_old;\n"
    "CREATE INDEX logs_key ON logs (kind, key, id);\n"
    "DELETE FROM sqlite_sequence WHERE name IN ('archive', 'archive_old', 'logs', 'logs_old');\n";

/* The archive stores a message once for both parties, under a key that orders it and carries
 * its time; the indexes on time and on ids go (see 0007_archive_once.sql and storage.h,
 * "Archive ids"). */
static const char MIGRATION_0007[] =
    "CREATE TABLE archive_msg (\n"
    "    seq INTEGER PRIMARY KEY,\n"
    "    stanza TEXT NOT NULL\n"
    ");\n"
    "CREATE TABLE archive_new (\n"
    "    username TEXT NOT NULL REFERENCES accounts (username) ON DELETE CASCADE,\n"
    "    seq INTEGER NOT NULL,\n"
    "    with_jid TEXT NOT NULL,\n"
    "    outgoing INTEGER NOT NULL DEFAULT 0,\n"
    "    stanza TEXT,\n"
    "    legacy_id TEXT,\n"
    "    PRIMARY KEY (username, seq)\n"
    ") WITHOUT ROWID;\n"
    "CREATE TEMP TABLE archive_keys AS\n"
    "    SELECT old, ((max(ms, 0) << 21) | (127 << 14)) + (row_number() OVER (PARTITION BY ms "
    "ORDER BY old) - 1) AS seq\n"
    "    FROM (SELECT seq AS old, max(stamp_ms) OVER (ORDER BY seq ROWS UNBOUNDED PRECEDING) AS "
    "ms\n"
    "          FROM archive);\n"
    "INSERT INTO archive_msg (seq, stanza)\n"
    "    SELECT k.seq, a.stanza FROM archive a JOIN archive_keys k ON k.old = a.seq;\n"
    "INSERT INTO archive_new (username, seq, with_jid, outgoing, legacy_id)\n"
    "    SELECT a.username, k.seq, a.with_jid, a.outgoing, a.id FROM archive a JOIN archive_keys k "
    "ON k.old = a.seq;\n"
    "DROP TABLE archive_keys;\n"
    "DROP TABLE archive;\n"
    "ALTER TABLE archive_new RENAME TO archive;\n"
    "CREATE INDEX archive_user_with ON archive (username, with_jid, seq);\n"
    "CREATE UNIQUE INDEX archive_legacy ON archive (username, legacy_id) WHERE legacy_id IS NOT "
    "NULL;\n";

/* Named log entries: a ref, an author and an origin per entry (see 0008_log_refs.sql). */
static const char MIGRATION_0008[] = "ALTER TABLE logs ADD COLUMN ref TEXT;\n"
                                     "ALTER TABLE logs ADD COLUMN author TEXT;\n"
                                     "ALTER TABLE logs ADD COLUMN origin TEXT;\n"
                                     "UPDATE logs SET ref = 'log-' || id;\n"
                                     "CREATE UNIQUE INDEX logs_ref ON logs (kind, key, ref);\n"
                                     "CREATE INDEX logs_stamp ON logs (kind, key, stamp_ms);\n";

/* An account an administrator locked: no login, its sessions ended (see 0009_account_locked.sql).
 */
static const char MIGRATION_0009[] =
    "ALTER TABLE accounts ADD COLUMN locked INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1));\n";

static const char *const migrations[] = {
    NULL, /* version 0: empty database */
    MIGRATION_0001, MIGRATION_0002, MIGRATION_0003, MIGRATION_0004, MIGRATION_0005,
    MIGRATION_0006, MIGRATION_0007, MIGRATION_0008, MIGRATION_0009,
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])) - 1)

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SAVEPOINT,
    ST_RELEASE,
    ST_ROLLBACK_TO,
    ST_VERSION_TABLE,
    ST_VERSION_GET,
    ST_VERSION_INSERT,
    ST_VERSION_UPDATE,
    ST_ACCOUNT_GET,
    ST_ACCOUNT_CREATE,
    ST_ACCOUNT_SET_SECRETS,
    ST_ACCOUNT_SET_ADMIN,
    ST_ACCOUNT_SET_LOCKED,
    ST_ACCOUNT_DELETE,
    ST_ACCOUNT_LIST,
    ST_ACCOUNT_PAGE,
    ST_ACCOUNT_MATCHES,
    ST_PROPERTY_GET,
    ST_PROPERTY_SET,
    ST_PROPERTY_DELETE,
    ST_ACCOUNT_EXISTS,
    ST_STATE_GET,
    ST_ROSTER_LIST,
    ST_GROUPS_LIST,
    ST_REQUEST_LIST,
    ST_BLOCK_LIST,
    ST_ROSTER_PUT,
    ST_GROUPS_CLEAR,
    ST_GROUP_ADD,
    ST_ROSTER_DELETE,
    ST_STATE_ROSTER_VER,
    ST_STATE_ROSTER_DELETED,
    ST_STATE_LAST,
    ST_REQUEST_PUT,
    ST_REQUEST_DELETE,
    ST_OFFLINE_COUNT,
    ST_OFFLINE_STORE,
    ST_OFFLINE_FETCH,
    ST_OFFLINE_DELETE,
    ST_VCARD_GET,
    ST_VCARD_SET,
    ST_VCARD_DELETE,
    ST_PRIVATE_GET,
    ST_PRIVATE_SET,
    ST_PRIVATE_DELETE,
    ST_PRIVATE_TOTAL,
    ST_BLOCK_ADD,
    ST_BLOCK_REMOVE,
    ST_BLOCK_CLEAR,
    ST_ARCHIVE_MSG_PUT,
    ST_ARCHIVE_MSG_SAME,
    ST_ARCHIVE_STORE,
    ST_ARCHIVE_SEQ,
    ST_ARCHIVE_SEQ_LEGACY,
    ST_ARCHIVE_COUNT,
    ST_ARCHIVE_COUNT_WITH,
    ST_ARCHIVE_ASC,
    ST_ARCHIVE_ASC_WITH,
    ST_ARCHIVE_DESC,
    ST_ARCHIVE_DESC_WITH,
    ST_ARCHIVE_PURGE,
    ST_ARCHIVE_MSG_PURGE,
    ST_ARCHIVE_LAST,
    ST_COUNT_OFFLINE,
    ST_COUNT_ARCHIVE,
    ST_ARCHIVE_MSG_ORPHANS,
    ST_PREFS_GET,
    ST_PREFS_JIDS,
    ST_PREFS_DELETE,
    ST_PREFS_PUT,
    ST_PREFS_JID_ADD,
    ST_DOC_PUT,
    ST_DOC_GET,
    ST_DOC_DELETE,
    ST_DOC_LIST,
    ST_PRIVATE_LIST,
    ST_LOG_APPEND,
    ST_LOG_FETCH,
    ST_LOG_DELETE,
    ST_LOG_APPEND_ENTRY,
    ST_LOG_ID,
    ST_LOG_GET,
    ST_LOG_REPLACE,
    ST_LOG_COUNT,
    ST_LOG_ASC,
    ST_LOG_DESC,
    ST_MUC_AFFS_CLEAR,
    ST_MUC_AFF_INSERT,
    ST_MUC_AFFS_GET,
    ST_MUC_OWNED,
    ST_PS_NODES,
    ST_PS_ITEMS_META,
    ST_PS_LAST_PAYLOADS,
    ST_PS_AFFS,
    ST_PS_NODE_PUT,
    ST_PS_NODE_DELETE,
    ST_PS_ITEM_DELETE,
    ST_PS_ITEM_INSERT,
    ST_PS_TRIM,
    ST_PS_PURGE,
    ST_PS_ITEMS_ALL,
    ST_PS_ITEMS_NEWEST,
    ST_PS_ITEM_GET,
    ST_PS_AFF_PUT,
    ST_PS_AFF_DELETE,
    ST_COUNT
};

#define ACCOUNT_COLUMNS                                                                            \
    "username, admin, sha1_salt, sha1_iter, sha1_stored, sha1_server, sha256_salt, sha256_iter, "  \
    "sha256_stored, sha256_server, created_at, locked"

/* Archive reads: named parameters, so that one binding helper serves every variant. :lo and :hi
 * are exclusive bounds on seq (the paging position). */
#define ARCHIVE_FILTER "a.username = :user AND a.seq > :lo AND a.seq < :hi"
#define ARCHIVE_FILTER_WITH ARCHIVE_FILTER " AND a.with_jid = :with"
#define ARCHIVE_SELECT                                                                             \
    "SELECT a.seq, a.legacy_id, a.with_jid, a.outgoing, coalesce(a.stanza, m.stanza) "             \
    "FROM archive a JOIN archive_msg m ON m.seq = a.seq WHERE "

/* Log reads as an archive (migration 8): named parameters, as the archive's. */
#define LOG_FILTER                                                                                 \
    "kind = :kind AND key = :key AND stamp_ms BETWEEN :start AND :end AND "                        \
    "(:author IS NULL OR author = :author) AND (:origin IS NULL OR origin = :origin)"
#define LOG_SELECT "SELECT id, stamp_ms, xml, ref, author, origin FROM logs WHERE "

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT req",
    [ST_RELEASE] = "RELEASE req",
    [ST_ROLLBACK_TO] = "ROLLBACK TO req",
    [ST_VERSION_TABLE] = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    [ST_VERSION_GET] = "SELECT version FROM schema_version",
    [ST_VERSION_INSERT] = "INSERT INTO schema_version (version) VALUES (?1)",
    [ST_VERSION_UPDATE] = "UPDATE schema_version SET version = ?1",
    [ST_ACCOUNT_GET] = "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE username = ?1",
    [ST_ACCOUNT_CREATE] = "INSERT INTO accounts (" ACCOUNT_COLUMNS
                          ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    [ST_ACCOUNT_SET_SECRETS] = "UPDATE accounts SET sha1_salt = ?2, sha1_iter = ?3, "
                               "sha1_stored = ?4, sha1_server = ?5, sha256_salt = ?6, "
                               "sha256_iter = ?7, sha256_stored = ?8, sha256_server = ?9 "
                               "WHERE username = ?1",
    [ST_ACCOUNT_SET_ADMIN] = "UPDATE accounts SET admin = ?2 WHERE username = ?1",
    [ST_ACCOUNT_SET_LOCKED] = "UPDATE accounts SET locked = ?2 WHERE username = ?1",
    [ST_ACCOUNT_DELETE] = "DELETE FROM accounts WHERE username = ?1",
    [ST_ACCOUNT_LIST] = "SELECT " ACCOUNT_COLUMNS " FROM accounts ORDER BY username",
    /* LIKE is case-blind for ASCII here; the pattern comes lowered, as the names are stored. */
    [ST_ACCOUNT_PAGE] = "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE username LIKE ?1 ESCAPE "
                        "'\\' ORDER BY username LIMIT ?2 OFFSET ?3",
    [ST_ACCOUNT_MATCHES] = "SELECT count(*) FROM accounts WHERE username LIKE ?1 ESCAPE '\\'",
    [ST_PROPERTY_GET] = "SELECT value FROM properties WHERE name = ?1",
    [ST_PROPERTY_DELETE] = "DELETE FROM properties WHERE name = ?1",
    [ST_PROPERTY_SET] = ("INSERT INTO properties (name, value) VALUES (?1, ?2) "
                         "ON CONFLICT (name) DO UPDATE SET value = excluded.value"),
    [ST_ACCOUNT_EXISTS] = "SELECT 1 FROM accounts WHERE username = ?1",
    [ST_STATE_GET] = "SELECT roster_ver, roster_deleted_ver, last_logout, last_status "
                     "FROM user_state WHERE username = ?1",
    [ST_ROSTER_LIST] = "SELECT jid, name, subscription, ask, approved, ver FROM roster_items "
                       "WHERE username = ?1 ORDER BY jid",
    [ST_GROUPS_LIST] = "SELECT jid, name FROM roster_groups WHERE username = ?1 "
                       "ORDER BY jid, position",
    [ST_REQUEST_LIST] = "SELECT jid, stanza FROM sub_requests WHERE username = ?1 ORDER BY jid",
    [ST_BLOCK_LIST] = "SELECT jid FROM blocklist WHERE username = ?1 ORDER BY jid",
    [ST_ROSTER_PUT] = ("INSERT INTO roster_items (username, jid, name, subscription, ask, "
                       "approved, ver) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                       "ON CONFLICT (username, jid) DO UPDATE SET name = excluded.name, "
                       "subscription = excluded.subscription, ask = excluded.ask, "
                       "approved = excluded.approved, ver = excluded.ver"),
    [ST_GROUPS_CLEAR] = "DELETE FROM roster_groups WHERE username = ?1 AND jid = ?2",
    [ST_GROUP_ADD] = "INSERT INTO roster_groups (username, jid, position, name) "
                     "VALUES (?1, ?2, ?3, ?4)",
    [ST_ROSTER_DELETE] = "DELETE FROM roster_items WHERE username = ?1 AND jid = ?2",
    [ST_STATE_ROSTER_VER] =
        ("INSERT INTO user_state (username, roster_ver) VALUES (?1, ?2) "
         "ON CONFLICT (username) DO UPDATE SET roster_ver = excluded.roster_ver"),
    [ST_STATE_ROSTER_DELETED] = ("INSERT INTO user_state (username, roster_ver, "
                                 "roster_deleted_ver) VALUES (?1, ?2, ?2) "
                                 "ON CONFLICT (username) DO UPDATE SET "
                                 "roster_ver = excluded.roster_ver, "
                                 "roster_deleted_ver = excluded.roster_deleted_ver"),
    [ST_STATE_LAST] = ("INSERT INTO user_state (username, last_logout, last_status) "
                       "VALUES (?1, ?2, ?3) ON CONFLICT (username) DO UPDATE SET "
                       "last_logout = excluded.last_logout, last_status = excluded.last_status"),
    [ST_REQUEST_PUT] = ("INSERT INTO sub_requests (username, jid, stanza) VALUES (?1, ?2, ?3) "
                        "ON CONFLICT (username, jid) DO UPDATE SET stanza = excluded.stanza"),
    [ST_REQUEST_DELETE] = "DELETE FROM sub_requests WHERE username = ?1 AND jid = ?2",
    [ST_OFFLINE_COUNT] = "SELECT count(*) FROM offline_messages WHERE username = ?1",
    [ST_OFFLINE_STORE] = "INSERT INTO offline_messages (username, stamp_ms, stanza) "
                         "VALUES (?1, ?2, ?3)",
    [ST_OFFLINE_FETCH] = "SELECT id, stamp_ms, stanza FROM offline_messages WHERE username = ?1 "
                         "ORDER BY id",
    [ST_OFFLINE_DELETE] = "DELETE FROM offline_messages WHERE username = ?1 AND id <= ?2",
    /* A row for every account, xml NULL when it has no vCard: only a missing account is
     * ENOTFOUND (XEP-0054 gives an existing account without a vCard an empty one). */
    [ST_VCARD_GET] = ("SELECT v.xml FROM accounts a LEFT JOIN vcards v ON v.username = a.username "
                      "WHERE a.username = ?1"),
    [ST_VCARD_SET] = ("INSERT INTO vcards (username, xml) VALUES (?1, ?2) "
                      "ON CONFLICT (username) DO UPDATE SET xml = excluded.xml"),
    [ST_VCARD_DELETE] = "DELETE FROM vcards WHERE username = ?1",
    [ST_PRIVATE_GET] = "SELECT xml FROM private_xml WHERE username = ?1 AND ns = ?2",
    [ST_PRIVATE_SET] = ("INSERT INTO private_xml (username, ns, xml) VALUES (?1, ?2, ?3) "
                        "ON CONFLICT (username, ns) DO UPDATE SET xml = excluded.xml"),
    [ST_PRIVATE_DELETE] = "DELETE FROM private_xml WHERE username = ?1 AND ns = ?2",
    [ST_PRIVATE_TOTAL] =
        ("SELECT coalesce(sum(length(CAST(ns AS BLOB)) + length(CAST(xml AS BLOB))), 0) "
         "FROM private_xml WHERE username = ?1 AND ns <> ?2"),
    [ST_BLOCK_ADD] = ("INSERT INTO blocklist (username, jid) VALUES (?1, ?2) "
                      "ON CONFLICT (username, jid) DO NOTHING"),
    [ST_BLOCK_REMOVE] = "DELETE FROM blocklist WHERE username = ?1 AND jid = ?2",
    [ST_BLOCK_CLEAR] = "DELETE FROM blocklist WHERE username = ?1",
    [ST_ARCHIVE_MSG_PUT] = "INSERT INTO archive_msg (seq, stanza) VALUES (?1, ?2) "
                           "ON CONFLICT (seq) DO NOTHING",
    [ST_ARCHIVE_MSG_SAME] = "SELECT stanza = ?2 FROM archive_msg WHERE seq = ?1",
    [ST_ARCHIVE_STORE] =
        "INSERT INTO archive (username, seq, with_jid, outgoing, stanza, legacy_id) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_ARCHIVE_SEQ] = "SELECT seq FROM archive WHERE username = ?1 AND seq = ?2",
    [ST_ARCHIVE_SEQ_LEGACY] = "SELECT seq FROM archive WHERE username = ?1 AND legacy_id = ?2",
    [ST_ARCHIVE_COUNT] = "SELECT count(*) FROM archive a WHERE " ARCHIVE_FILTER,
    [ST_ARCHIVE_COUNT_WITH] = "SELECT count(*) FROM archive a WHERE " ARCHIVE_FILTER_WITH,
    [ST_ARCHIVE_ASC] = ARCHIVE_SELECT ARCHIVE_FILTER " ORDER BY a.seq LIMIT :limit",
    [ST_ARCHIVE_ASC_WITH] = ARCHIVE_SELECT ARCHIVE_FILTER_WITH " ORDER BY a.seq LIMIT :limit",
    [ST_ARCHIVE_DESC] = ARCHIVE_SELECT ARCHIVE_FILTER " ORDER BY a.seq DESC LIMIT :limit",
    [ST_ARCHIVE_DESC_WITH] = ARCHIVE_SELECT ARCHIVE_FILTER_WITH " ORDER BY a.seq DESC LIMIT :limit",
    /* Every user's rows, one range per account through the primary key. */
    [ST_ARCHIVE_PURGE] = "DELETE FROM archive WHERE username IN (SELECT username FROM accounts) "
                         "AND seq < ?1",
    [ST_ARCHIVE_MSG_PURGE] = "DELETE FROM archive_msg WHERE seq < ?1",
    [ST_ARCHIVE_LAST] = "SELECT coalesce(max(seq), 0) FROM archive_msg",
    [ST_COUNT_OFFLINE] = "SELECT count(*) FROM offline_messages",
    [ST_COUNT_ARCHIVE] = "SELECT count(*) FROM archive",
    /* Before an account goes: its messages that no other archive holds. The only other row a
     * message can have is its other party's, whose username is the local part of with_jid. */
    [ST_ARCHIVE_MSG_ORPHANS] =
        ("DELETE FROM archive_msg WHERE seq IN (SELECT a.seq FROM archive a WHERE "
         "a.username = ?1 AND NOT EXISTS (SELECT 1 FROM archive b WHERE "
         "b.username = substr(a.with_jid, 1, instr(a.with_jid, '@') - 1) AND b.username <> ?1 "
         "AND b.seq = a.seq))"),
    [ST_PREFS_GET] = "SELECT default_mode FROM archive_prefs WHERE username = ?1",
    [ST_PREFS_JIDS] = "SELECT always, jid FROM archive_prefs_jids WHERE username = ?1 "
                      "ORDER BY always, jid",
    [ST_PREFS_DELETE] = "DELETE FROM archive_prefs WHERE username = ?1",
    [ST_PREFS_PUT] = "INSERT INTO archive_prefs (username, default_mode) VALUES (?1, ?2)",
    [ST_PREFS_JID_ADD] = ("INSERT INTO archive_prefs_jids (username, always, jid) "
                          "VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING"),
    [ST_DOC_PUT] = ("INSERT INTO documents (kind, key, xml) VALUES (?1, ?2, ?3) "
                    "ON CONFLICT (kind, key) DO UPDATE SET xml = excluded.xml"),
    [ST_DOC_GET] = "SELECT xml FROM documents WHERE kind = ?1 AND key = ?2",
    [ST_DOC_DELETE] = "DELETE FROM documents WHERE kind = ?1 AND key = ?2",
    [ST_DOC_LIST] = "SELECT key, xml FROM documents WHERE kind = ?1 ORDER BY key",
    [ST_PRIVATE_LIST] = "SELECT ns, xml FROM private_xml WHERE username = ?1 ORDER BY ns",
    [ST_LOG_APPEND] = "INSERT INTO logs (kind, key, stamp_ms, xml) VALUES (?1, ?2, ?3, ?4)",
    [ST_LOG_FETCH] = ("SELECT id, stamp_ms, xml, ref, author, origin FROM logs WHERE kind = ?1 "
                      "AND key = ?2 AND stamp_ms >= ?3 ORDER BY id DESC LIMIT ?4"),
    [ST_LOG_DELETE] = "DELETE FROM logs WHERE kind = ?1 AND key = ?2",
    [ST_LOG_APPEND_ENTRY] = ("INSERT INTO logs (kind, key, stamp_ms, xml, ref, author, origin) "
                             "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
    [ST_LOG_ID] = "SELECT id FROM logs WHERE kind = ?1 AND key = ?2 AND ref = ?3",
    [ST_LOG_GET] = (LOG_SELECT "kind = ?1 AND key = ?2 AND ref = ?3"),
    [ST_LOG_REPLACE] = "UPDATE logs SET xml = ?4 WHERE kind = ?1 AND key = ?2 AND ref = ?3",
    [ST_LOG_COUNT] = "SELECT count(*) FROM logs WHERE " LOG_FILTER,
    [ST_LOG_ASC] = LOG_SELECT LOG_FILTER " AND id > :lo AND id < :hi ORDER BY id LIMIT :limit",
    [ST_LOG_DESC] =
        LOG_SELECT LOG_FILTER " AND id > :lo AND id < :hi ORDER BY id DESC LIMIT :limit",
    [ST_MUC_AFFS_CLEAR] = "DELETE FROM muc_affiliations WHERE room = ?1",
    /* account: NULL unless that account exists (a grant to a name nobody holds yet is kept,
     * and is not taken over by whoever registers the name later: it has no account row) */
    [ST_MUC_AFF_INSERT] = ("INSERT INTO muc_affiliations (room, jid, affiliation, nick, reason, "
                           "account) VALUES (?1, ?2, ?3, ?4, ?5, "
                           "(SELECT username FROM accounts WHERE username = ?6))"),
    [ST_MUC_AFFS_GET] = ("SELECT jid, affiliation, nick, reason FROM muc_affiliations "
                         "WHERE room = ?1 ORDER BY jid"),
    [ST_MUC_OWNED] = ("SELECT COUNT(*) FROM muc_affiliations WHERE jid = ?1 AND "
                      "affiliation = 'owner'"),
    [ST_PS_NODES] = "SELECT node, config FROM pubsub_nodes WHERE service = ?1 ORDER BY node",
    [ST_PS_ITEMS_META] = ("SELECT node, id, publisher, stamp_ms, length(CAST(payload AS BLOB)) "
                          "FROM pubsub_items WHERE service = ?1 ORDER BY node, seq"),
    /* Each node's newest item, when small enough to keep at hand. */
    [ST_PS_LAST_PAYLOADS] = ("SELECT node, payload FROM pubsub_items WHERE seq IN "
                             "(SELECT max(seq) FROM pubsub_items WHERE service = ?1 GROUP BY node) "
                             "AND length(CAST(payload AS BLOB)) <= ?2 ORDER BY node"),
    [ST_PS_AFFS] = ("SELECT node, jid, affiliation FROM pubsub_affiliations WHERE service = ?1 "
                    "ORDER BY node, jid"),
    /* account names the PEP owner: a foreign key, so a node for an account that is gone is
     * refused (ENOTFOUND) rather than kept without an owner. */
    [ST_PS_NODE_PUT] = ("INSERT INTO pubsub_nodes (service, node, account, config) "
                        "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (service, node) DO UPDATE SET "
                        "config = excluded.config"),
    [ST_PS_NODE_DELETE] = "DELETE FROM pubsub_nodes WHERE service = ?1 AND node = ?2",
    [ST_PS_ITEM_DELETE] = "DELETE FROM pubsub_items WHERE service = ?1 AND node = ?2 AND id = ?3",
    [ST_PS_ITEM_INSERT] = ("INSERT INTO pubsub_items (service, node, id, publisher, stamp_ms, "
                           "payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
    [ST_PS_TRIM] = ("DELETE FROM pubsub_items WHERE service = ?1 AND node = ?2 AND seq NOT IN "
                    "(SELECT seq FROM pubsub_items WHERE service = ?1 AND node = ?2 "
                    "ORDER BY seq DESC LIMIT ?3)"),
    [ST_PS_PURGE] = "DELETE FROM pubsub_items WHERE service = ?1 AND node = ?2",
    [ST_PS_ITEMS_ALL] = ("SELECT id, publisher, stamp_ms, payload FROM pubsub_items "
                         "WHERE service = ?1 AND node = ?2 ORDER BY seq"),
    [ST_PS_ITEMS_NEWEST] = ("SELECT id, publisher, stamp_ms, payload FROM (SELECT * FROM "
                            "pubsub_items WHERE service = ?1 AND node = ?2 ORDER BY seq DESC "
                            "LIMIT ?3) ORDER BY seq"),
    [ST_PS_ITEM_GET] = ("SELECT id, publisher, stamp_ms, payload, seq FROM pubsub_items "
                        "WHERE service = ?1 AND node = ?2 AND id = ?3"),
    [ST_PS_AFF_PUT] = ("INSERT INTO pubsub_affiliations (service, node, jid, affiliation, account) "
                       "VALUES (?1, ?2, ?3, ?4, (SELECT username FROM accounts WHERE username = "
                       "?5)) ON CONFLICT (service, node, jid) DO UPDATE SET "
                       "affiliation = excluded.affiliation, account = excluded.account"),
    [ST_PS_AFF_DELETE] = ("DELETE FROM pubsub_affiliations WHERE service = ?1 AND node = ?2 AND "
                          "jid = ?3"),
};

typedef struct sqlite_conn {
    sqlite3 *db;
    sqlite3_stmt *stmt[ST_COUNT]; /* prepared on first use, kept until close */
    _Atomic uint64_t commits;
} sqlite_conn_t;

static char *errmsg_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *errmsg_printf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

static int commit_hook(void *arg)
{
    sqlite_conn_t *c = arg;
    atomic_fetch_add(&c->commits, 1);
    return 0; /* let the commit proceed */
}

/* The cached statement, reset and unbound, or NULL (prepare failed). */
static sqlite3_stmt *stmt(sqlite_conn_t *c, enum stmt_id id)
{
    if (c->stmt[id] == NULL) {
        if (sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT, &c->stmt[id],
                               NULL) != SQLITE_OK)
            c->stmt[id] = NULL;
    }
    return c->stmt[id];
}

static void stmt_done(sqlite3_stmt *s)
{
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
}

/* A statement without results or bindings: SQLITE_OK or the error. */
static int exec_stmt(sqlite_conn_t *c, enum stmt_id id)
{
    sqlite3_stmt *s = stmt(c, id);
    if (s == NULL)
        return sqlite3_errcode(c->db) != SQLITE_OK ? sqlite3_errcode(c->db) : SQLITE_ERROR;
    int rc = sqlite3_step(s);
    stmt_done(s);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* ---- binding and reading accounts ---- */

static int bind_text_or_null(sqlite3_stmt *s, int col, const char *text)
{
    if (text[0] == '\0')
        return sqlite3_bind_null(s, col);
    return sqlite3_bind_text(s, col, text, -1, SQLITE_STATIC);
}

/* Binds salt, iterations, stored key, server key at col..col+3. */
static int bind_secret(sqlite3_stmt *s, int col, const hearth_scram_secret_t *sec)
{
    int rc = bind_text_or_null(s, col, sec->salt);
    if (rc == SQLITE_OK)
        rc = sec->iterations == 0 ? sqlite3_bind_null(s, col + 1)
                                  : sqlite3_bind_int64(s, col + 1, sec->iterations);
    if (rc == SQLITE_OK)
        rc = bind_text_or_null(s, col + 2, sec->stored_key);
    if (rc == SQLITE_OK)
        rc = bind_text_or_null(s, col + 3, sec->server_key);
    return rc;
}

static int column_fixed(sqlite3_stmt *s, int col, char *dst, size_t size)
{
    const unsigned char *text = sqlite3_column_text(s, col);
    if (text == NULL) {
        if (sqlite3_column_type(s, col) != SQLITE_NULL)
            return HEARTH_ENOMEM;
        dst[0] = '\0';
        return 0;
    }
    size_t len = (size_t)sqlite3_column_bytes(s, col);
    if (len >= size)
        return HEARTH_ESTORAGE; /* longer than any secret we write: not ours */
    memcpy(dst, text, len);
    dst[len] = '\0';
    return 0;
}

static int column_secret(sqlite3_stmt *s, int col, hearth_scram_secret_t *sec)
{
    sqlite3_int64 iter = sqlite3_column_int64(s, col + 1);
    if (iter < 0 || iter > UINT_MAX)
        return HEARTH_ESTORAGE;
    sec->iterations = (unsigned)iter;
    int rc = column_fixed(s, col, sec->salt, sizeof(sec->salt));
    if (rc == 0)
        rc = column_fixed(s, col + 2, sec->stored_key, sizeof(sec->stored_key));
    if (rc == 0)
        rc = column_fixed(s, col + 3, sec->server_key, sizeof(sec->server_key));
    return rc;
}

/* A row of ACCOUNT_COLUMNS into a (cleared on failure). */
static int column_account(sqlite3_stmt *s, storage_account_t *a)
{
    memset(a, 0, sizeof(*a));
    const unsigned char *name = sqlite3_column_text(s, 0);
    if (name == NULL)
        return sqlite3_column_type(s, 0) == SQLITE_NULL ? HEARTH_ESTORAGE : HEARTH_ENOMEM;
    a->username = strdup((const char *)name);
    if (a->username == NULL)
        return HEARTH_ENOMEM;
    a->admin = sqlite3_column_int64(s, 1) != 0;
    int rc = column_secret(s, 2, &a->sha1);
    if (rc == 0)
        rc = column_secret(s, 6, &a->sha256);
    a->created_at = sqlite3_column_int64(s, 10);
    a->locked = sqlite3_column_int64(s, 11) != 0;
    if (rc != 0)
        storage_account_clear(a);
    return rc;
}

/* ---- one request each ---- */

static int err_of(int src)
{
    if (src == SQLITE_NOMEM)
        return HEARTH_ENOMEM;
    if (src == SQLITE_CONSTRAINT_FOREIGNKEY)
        return HEARTH_ENOTFOUND; /* the account is checked first: not expected */
    return HEARTH_ESTORAGE;
}

/* A write that names one account: ENOTFOUND when it touched no row. */
static int step_account_write(sqlite_conn_t *c, sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_int64 changed = sqlite3_changes64(c->db);
    stmt_done(s);
    if (rc != SQLITE_DONE)
        return err_of(rc);
    return changed > 0 ? 0 : HEARTH_ENOTFOUND;
}

static int account_get(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = stmt(c, ST_ACCOUNT_GET);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int err = HEARTH_ESTORAGE;
    if (sqlite3_bind_text(s, 1, r->acct.username, -1, SQLITE_STATIC) == SQLITE_OK) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW)
            err = column_account(s, &r->result);
        else if (rc == SQLITE_DONE)
            err = HEARTH_ENOTFOUND;
        else
            err = err_of(rc);
    }
    stmt_done(s);
    return err;
}

static int account_create(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = stmt(c, ST_ACCOUNT_CREATE);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    const storage_account_t *a = &r->acct;
    int64_t created = a->created_at != 0 ? a->created_at : (int64_t)time(NULL);
    int rc = sqlite3_bind_text(s, 1, a->username, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 2, a->admin ? 1 : 0);
    if (rc == SQLITE_OK)
        rc = bind_secret(s, 3, &a->sha1);
    if (rc == SQLITE_OK)
        rc = bind_secret(s, 7, &a->sha256);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 11, created);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 12, a->locked ? 1 : 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    stmt_done(s);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return HEARTH_EEXISTS;
    return err_of(rc);
}

static int account_set_secrets(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = stmt(c, ST_ACCOUNT_SET_SECRETS);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_text(s, 1, r->acct.username, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = bind_secret(s, 2, &r->acct.sha1);
    if (rc == SQLITE_OK)
        rc = bind_secret(s, 6, &r->acct.sha256);
    if (rc != SQLITE_OK) {
        stmt_done(s);
        return err_of(rc);
    }
    return step_account_write(c, s);
}

/* SET_ADMIN or SET_LOCKED: one flag of the account. */
static int account_set_flag(sqlite_conn_t *c, storage_req_t *r, enum stmt_id id, int value)
{
    sqlite3_stmt *s = stmt(c, id);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_text(s, 1, r->acct.username, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 2, value ? 1 : 0);
    if (rc != SQLITE_OK) {
        stmt_done(s);
        return err_of(rc);
    }
    return step_account_write(c, s);
}

static int user_write(sqlite_conn_t *c, enum stmt_id id, const char *username, const char *second,
                      sqlite3_int64 *changes);

static int account_delete(sqlite_conn_t *c, storage_req_t *r)
{
    /* Its archive rows go with it (foreign key); the messages only it held go first. */
    int err = user_write(c, ST_ARCHIVE_MSG_ORPHANS, r->acct.username, NULL, NULL);
    if (err != 0)
        return err;
    sqlite3_stmt *s = stmt(c, ST_ACCOUNT_DELETE);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_text(s, 1, r->acct.username, -1, SQLITE_STATIC);
    if (rc != SQLITE_OK) {
        stmt_done(s);
        return err_of(rc);
    }
    return step_account_write(c, s);
}

/* The accounts a statement reads into r->list (ACCOUNT_LIST, ACCOUNT_PAGE). */
static int account_rows(sqlite3_stmt *s, storage_req_t *r)
{
    storage_account_t *list = NULL;
    size_t n = 0, cap = 0;
    int err = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            storage_account_t *nl = realloc(list, ncap * sizeof(*nl));
            if (nl == NULL) {
                err = HEARTH_ENOMEM;
                break;
            }
            list = nl;
            cap = ncap;
        }
        err = column_account(s, &list[n]);
        if (err != 0)
            break;
        n++;
    }
    if (err == 0 && rc != SQLITE_DONE)
        err = err_of(rc);
    stmt_done(s);
    r->list = list;
    r->list_n = n;
    return err; /* on error the caller clears what was read */
}

static int account_list(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = stmt(c, ST_ACCOUNT_LIST);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    return account_rows(s, r);
}

static int account_page(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = stmt(c, ST_ACCOUNT_MATCHES);
    if (s == NULL || sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC) != SQLITE_OK)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_step(s);
    r->num2 = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    stmt_done(s);
    if (rc != SQLITE_ROW)
        return err_of(rc);
    s = stmt(c, ST_ACCOUNT_PAGE);
    if (s == NULL || sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_int64(s, 2, (sqlite3_int64)r->limit) != SQLITE_OK ||
        sqlite3_bind_int64(s, 3, r->num) != SQLITE_OK)
        return HEARTH_ESTORAGE;
    return account_rows(s, r);
}

static int property_get(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = stmt(c, ST_PROPERTY_GET);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int err = HEARTH_ESTORAGE;
    if (sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC) == SQLITE_OK) {
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            const unsigned char *v = sqlite3_column_text(s, 0);
            r->value = v != NULL ? strdup((const char *)v) : NULL;
            err = r->value != NULL ? 0 : HEARTH_ENOMEM;
        } else if (rc == SQLITE_DONE) {
            err = HEARTH_ENOTFOUND;
        } else {
            err = err_of(rc);
        }
    }
    stmt_done(s);
    return err;
}

static int property_set(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = stmt(c, r->value ? ST_PROPERTY_SET : ST_PROPERTY_DELETE);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_text(s, 1, r->name, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && r->value)
        rc = sqlite3_bind_text(s, 2, r->value, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    stmt_done(s);
    return rc == SQLITE_DONE ? 0 : err_of(rc);
}

/* ---- IM records (migration 2) ---- */

/* Binds ?1 = username and, unless NULL, ?2 = second. */
static int bind_user(sqlite3_stmt *s, const char *username, const char *second)
{
    int rc = sqlite3_bind_text(s, 1, username, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && second != NULL)
        rc = sqlite3_bind_text(s, 2, second, -1, SQLITE_STATIC);
    return rc;
}

/* Runs a write whose binding returned bind_rc to completion and resets it; *changes (unless NULL)
 * gets the rows it changed (cascades not counted). */
static int finish_write(sqlite_conn_t *c, sqlite3_stmt *s, int bind_rc, sqlite3_int64 *changes)
{
    int rc = bind_rc == SQLITE_OK ? sqlite3_step(s) : bind_rc;
    if (changes != NULL)
        *changes = sqlite3_changes64(c->db);
    stmt_done(s);
    return rc == SQLITE_DONE ? 0 : err_of(rc);
}

/* The statement with ?1 (and ?2 unless NULL) bound, or NULL. */
static sqlite3_stmt *user_stmt(sqlite_conn_t *c, enum stmt_id id, const char *username,
                               const char *second)
{
    sqlite3_stmt *s = stmt(c, id);
    if (s != NULL && bind_user(s, username, second) != SQLITE_OK) {
        stmt_done(s);
        return NULL;
    }
    return s;
}

/* A write of ?1 (and ?2): 0, or the error. */
static int user_write(sqlite_conn_t *c, enum stmt_id id, const char *username, const char *second,
                      sqlite3_int64 *changes)
{
    sqlite3_stmt *s = user_stmt(c, id, username, second);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    return finish_write(c, s, SQLITE_OK, changes);
}

/* 0 when the account exists, HEARTH_ENOTFOUND when not, or the error. */
static int account_exists(sqlite_conn_t *c, const char *username)
{
    sqlite3_stmt *s = user_stmt(c, ST_ACCOUNT_EXISTS, username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_step(s);
    stmt_done(s);
    if (rc == SQLITE_ROW)
        return 0;
    return rc == SQLITE_DONE ? HEARTH_ENOTFOUND : err_of(rc);
}

/* A text column, NULL when SQL NULL; malloc'd. */
static int column_dup(sqlite3_stmt *s, int col, char **out)
{
    *out = NULL;
    if (sqlite3_column_type(s, col) == SQLITE_NULL)
        return 0;
    const unsigned char *text = sqlite3_column_text(s, col);
    if (text == NULL)
        return HEARTH_ENOMEM;
    size_t len = (size_t)sqlite3_column_bytes(s, col);
    *out = malloc(len + 1);
    if (*out == NULL)
        return HEARTH_ENOMEM;
    memcpy(*out, text, len);
    (*out)[len] = '\0';
    return 0;
}

/* A NOT NULL text column: NULL would not be ours. */
static int column_dup_req(sqlite3_stmt *s, int col, char **out)
{
    int err = column_dup(s, col, out);
    return err == 0 && *out == NULL ? HEARTH_ESTORAGE : err;
}

/* Room for element n of an array of cap elements of size: the array (moved or not), or NULL
 * (then the old one is still valid). */
static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return arr;
    size_t ncap = *cap != 0 ? *cap * 2 : 8;
    void *p = realloc(arr, ncap * size);
    if (p != NULL)
        *cap = ncap;
    return p;
}

/* The end of a query loop: err, else the step's error (SQLITE_DONE is none). Resets s. */
static int query_done(sqlite3_stmt *s, int err, int rc)
{
    stmt_done(s);
    if (err == 0 && rc != SQLITE_DONE)
        err = err_of(rc);
    return err;
}

static int load_state(sqlite_conn_t *c, const char *username, storage_user_t *u)
{
    sqlite3_stmt *s = user_stmt(c, ST_STATE_GET, username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int err = 0, rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        u->roster_ver = sqlite3_column_int64(s, 0);
        u->roster_deleted_ver = sqlite3_column_int64(s, 1);
        u->last_logout = sqlite3_column_int64(s, 2);
        err = column_dup(s, 3, &u->last_status);
        rc = SQLITE_DONE;
    }
    return query_done(s, err, rc);
}

static int load_items(sqlite_conn_t *c, const char *username, storage_user_t *u)
{
    sqlite3_stmt *s = user_stmt(c, ST_ROSTER_LIST, username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t cap = 0;
    int err = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        storage_roster_item_t *items = grow(u->items, &cap, u->nitems, sizeof(*items));
        if (items == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        u->items = items;
        storage_roster_item_t *it = &items[u->nitems++]; /* counted now: clearing frees it */
        memset(it, 0, sizeof(*it));
        it->subscription = sqlite3_column_int(s, 2);
        it->ask = sqlite3_column_int(s, 3) != 0;
        it->approved = sqlite3_column_int(s, 4) != 0;
        it->ver = sqlite3_column_int64(s, 5);
        err = column_dup_req(s, 0, &it->jid);
        if (err == 0)
            err = column_dup(s, 1, &it->name);
        if (err != 0)
            break;
    }
    return query_done(s, err, rc);
}

/* Groups come ordered by jid like the items: one merging pass. */
static int load_groups(sqlite_conn_t *c, const char *username, storage_user_t *u)
{
    sqlite3_stmt *s = user_stmt(c, ST_GROUPS_LIST, username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t i = 0;
    int err = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *jid = (const char *)sqlite3_column_text(s, 0);
        if (jid == NULL) {
            err = sqlite3_column_type(s, 0) == SQLITE_NULL ? HEARTH_ESTORAGE : HEARTH_ENOMEM;
            break;
        }
        while (i < u->nitems && strcmp(u->items[i].jid, jid) < 0)
            i++;
        if (i == u->nitems || strcmp(u->items[i].jid, jid) != 0)
            continue; /* no item: the foreign key rules it out */
        storage_roster_item_t *it = &u->items[i];
        char **groups = realloc(it->groups, (it->ngroups + 1) * sizeof(*groups));
        if (groups == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        it->groups = groups;
        err = column_dup_req(s, 1, &groups[it->ngroups]);
        if (err != 0)
            break;
        it->ngroups++;
    }
    return query_done(s, err, rc);
}

static int load_requests(sqlite_conn_t *c, const char *username, storage_user_t *u)
{
    sqlite3_stmt *s = user_stmt(c, ST_REQUEST_LIST, username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t cap = 0;
    int err = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        storage_sub_request_t *reqs = grow(u->requests, &cap, u->nrequests, sizeof(*reqs));
        if (reqs == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        u->requests = reqs;
        storage_sub_request_t *q = &reqs[u->nrequests++];
        memset(q, 0, sizeof(*q));
        err = column_dup_req(s, 0, &q->jid);
        if (err == 0)
            err = column_dup_req(s, 1, &q->stanza);
        if (err != 0)
            break;
    }
    return query_done(s, err, rc);
}

static int load_blocked(sqlite_conn_t *c, const char *username, storage_user_t *u)
{
    sqlite3_stmt *s = user_stmt(c, ST_BLOCK_LIST, username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t cap = 0;
    int err = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char **blocked = grow(u->blocked, &cap, u->nblocked, sizeof(*blocked));
        if (blocked == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        u->blocked = blocked;
        blocked[u->nblocked] = NULL;
        u->nblocked++;
        err = column_dup_req(s, 0, &blocked[u->nblocked - 1]);
        if (err != 0)
            break;
    }
    return query_done(s, err, rc);
}

/* All of it read in the batch's transaction: one consistent picture. */
static int user_load(sqlite_conn_t *c, storage_req_t *r)
{
    const char *username = r->acct.username;
    storage_user_t *u = &r->user;
    int err = account_exists(c, username);
    if (err == HEARTH_ENOTFOUND)
        return 0; /* u->exists stays 0 */
    if (err != 0)
        return err;
    u->exists = 1;
    err = load_state(c, username, u);
    if (err == 0)
        err = load_items(c, username, u);
    if (err == 0)
        err = load_groups(c, username, u);
    if (err == 0)
        err = load_requests(c, username, u);
    if (err == 0)
        err = load_blocked(c, username, u);
    return err; /* on error the caller clears what was read */
}

/* user_state: ?1 username, ?2 the version or stamp, ?3 (LAST) the status. */
static int state_write(sqlite_conn_t *c, enum stmt_id id, const char *username, int64_t num,
                       const char *status)
{
    sqlite3_stmt *s = user_stmt(c, id, username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_int64(s, 2, num);
    if (rc == SQLITE_OK && id == ST_STATE_LAST)
        rc = sqlite3_bind_text(s, 3, status, -1, SQLITE_STATIC); /* NULL binds NULL */
    return finish_write(c, s, rc, NULL);
}

static int roster_put(sqlite_conn_t *c, storage_req_t *r)
{
    const char *username = r->acct.username;
    const storage_roster_item_t *it = &r->item;
    int err = account_exists(c, username);
    if (err != 0)
        return err;

    sqlite3_stmt *s = user_stmt(c, ST_ROSTER_PUT, username, it->jid);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_text(s, 3, it->name, -1, SQLITE_STATIC); /* NULL binds NULL */
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 4, it->subscription);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 5, it->ask ? 1 : 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 6, it->approved ? 1 : 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 7, r->num);
    err = finish_write(c, s, rc, NULL);

    if (err == 0)
        err = user_write(c, ST_GROUPS_CLEAR, username, it->jid, NULL);
    for (size_t i = 0; err == 0 && i < it->ngroups; i++) {
        s = user_stmt(c, ST_GROUP_ADD, username, it->jid);
        if (s == NULL)
            return HEARTH_ESTORAGE;
        rc = sqlite3_bind_int64(s, 3, (sqlite3_int64)i);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(s, 4, it->groups[i], -1, SQLITE_STATIC);
        err = finish_write(c, s, rc, NULL);
    }
    if (err == 0)
        err = state_write(c, ST_STATE_ROSTER_VER, username, r->num, NULL);
    return err;
}

static int roster_delete(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_int64 changed = 0;
    int err = user_write(c, ST_ROSTER_DELETE, r->acct.username, r->item.jid, &changed);
    if (err == 0 && changed == 0)
        err = HEARTH_ENOTFOUND;
    if (err == 0)
        err = state_write(c, ST_STATE_ROSTER_DELETED, r->acct.username, r->num, NULL);
    return err;
}

static int request_put(sqlite_conn_t *c, storage_req_t *r)
{
    int err = account_exists(c, r->acct.username);
    if (err != 0)
        return err;
    sqlite3_stmt *s = user_stmt(c, ST_REQUEST_PUT, r->acct.username, r->item.jid);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    return finish_write(c, s, sqlite3_bind_text(s, 3, r->blob, -1, SQLITE_STATIC), NULL);
}

static int request_delete(sqlite_conn_t *c, storage_req_t *r)
{
    return user_write(c, ST_REQUEST_DELETE, r->acct.username, r->item.jid, NULL);
}

static int offline_count(sqlite_conn_t *c, const char *username, size_t *n)
{
    sqlite3_stmt *s = user_stmt(c, ST_OFFLINE_COUNT, username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *n = (size_t)sqlite3_column_int64(s, 0);
        rc = SQLITE_DONE;
    }
    return query_done(s, 0, rc);
}

static int offline_count_op(sqlite_conn_t *c, storage_req_t *r)
{
    int err = account_exists(c, r->acct.username);
    if (err == 0)
        err = offline_count(c, r->acct.username, &r->msgs_n);
    return err;
}

/* Counted and stored in one savepoint: no other request runs in between. */
static int offline_store(sqlite_conn_t *c, storage_req_t *r)
{
    size_t n = 0;
    int err = account_exists(c, r->acct.username);
    if (err == 0)
        err = offline_count(c, r->acct.username, &n);
    if (err != 0)
        return err;
    if (n >= r->quota)
        return HEARTH_ELIMIT;
    sqlite3_stmt *s = user_stmt(c, ST_OFFLINE_STORE, r->acct.username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_int64(s, 2, r->num);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_blob64(s, 3, r->blob, r->blob_len, SQLITE_STATIC);
    return finish_write(c, s, rc, NULL);
}

static int offline_fetch(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_OFFLINE_FETCH, r->acct.username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t cap = 0;
    int err = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        storage_offline_msg_t *msgs = grow(r->msgs, &cap, r->msgs_n, sizeof(*msgs));
        if (msgs == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        r->msgs = msgs;
        storage_offline_msg_t *m = &msgs[r->msgs_n++];
        memset(m, 0, sizeof(*m));
        m->id = sqlite3_column_int64(s, 0);
        m->stamp_ms = sqlite3_column_int64(s, 1);
        const void *blob = sqlite3_column_blob(s, 2);
        size_t len = (size_t)sqlite3_column_bytes(s, 2);
        if (blob == NULL && len > 0) {
            err = HEARTH_ENOMEM;
            break;
        }
        m->stanza = malloc(len + 1);
        if (m->stanza == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        if (len > 0)
            memcpy(m->stanza, blob, len);
        m->stanza[len] = '\0';
        m->len = len;
    }
    return query_done(s, err, rc);
}

static int offline_delete(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_OFFLINE_DELETE, r->acct.username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    return finish_write(c, s, sqlite3_bind_int64(s, 2, r->num), NULL);
}

/* VCARD_GET (?1 username) or PRIVATE_GET (?1 username, ?2 ns = r->name). */
static int blob_get(sqlite_conn_t *c, storage_req_t *r, enum stmt_id id)
{
    sqlite3_stmt *s = user_stmt(c, id, r->acct.username, id == ST_PRIVATE_GET ? r->name : NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int err = 0, rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        err = id == ST_VCARD_GET ? column_dup(s, 0, &r->blob) : column_dup_req(s, 0, &r->blob);
        rc = SQLITE_DONE;
    } else if (rc == SQLITE_DONE) {
        err = HEARTH_ENOTFOUND;
    }
    return query_done(s, err, rc);
}

/* VCARD_SET/DELETE (?1 username, ?2 xml) or PRIVATE_SET/DELETE (?1 username, ?2 ns, ?3 xml). */
static int blob_set(sqlite_conn_t *c, storage_req_t *r, enum stmt_id id)
{
    bool priv = id == ST_PRIVATE_SET || id == ST_PRIVATE_DELETE;
    if (r->blob != NULL) {
        int err = account_exists(c, r->acct.username);
        if (err != 0)
            return err;
    }
    if (priv && r->blob != NULL && r->num > 0) {
        /* The account's other namespaces and this one together, in the same transaction. */
        sqlite3_stmt *t = user_stmt(c, ST_PRIVATE_TOTAL, r->acct.username, r->name);
        if (t == NULL)
            return HEARTH_ESTORAGE;
        int64_t others = 0;
        int rc = sqlite3_step(t);
        if (rc == SQLITE_ROW) {
            others = sqlite3_column_int64(t, 0);
            rc = SQLITE_DONE;
        }
        int err = query_done(t, 0, rc);
        if (err != 0)
            return err;
        if (others + (int64_t)strlen(r->name) + (int64_t)strlen(r->blob) > r->num)
            return HEARTH_ELIMIT;
    }
    sqlite3_stmt *s = user_stmt(c, id, r->acct.username, priv ? r->name : NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = SQLITE_OK;
    if (r->blob != NULL)
        rc = sqlite3_bind_text(s, priv ? 3 : 2, r->blob, -1, SQLITE_STATIC);
    return finish_write(c, s, rc, NULL);
}

static int block_add(sqlite_conn_t *c, storage_req_t *r)
{
    int err = account_exists(c, r->acct.username);
    for (size_t i = 0; err == 0 && i < r->njids; i++)
        err = user_write(c, ST_BLOCK_ADD, r->acct.username, r->jids[i], NULL);
    return err;
}

static int block_remove(sqlite_conn_t *c, storage_req_t *r)
{
    if (r->njids == 0)
        return user_write(c, ST_BLOCK_CLEAR, r->acct.username, NULL, NULL);
    int err = 0;
    for (size_t i = 0; err == 0 && i < r->njids; i++)
        err = user_write(c, ST_BLOCK_REMOVE, r->acct.username, r->jids[i], NULL);
    return err;
}

static int last_set(sqlite_conn_t *c, storage_req_t *r)
{
    int err = account_exists(c, r->acct.username);
    if (err == 0)
        err = state_write(c, ST_STATE_LAST, r->acct.username, r->num, r->value);
    return err;
}

/* ---- message archive, documents and logs (migration 3) ---- */

/* A key for a message stored under an id of another form: from its stamp, on the storage's own
 * generator, the first of that millisecond's free. */
static int archive_key_given(sqlite_conn_t *c, storage_req_t *r, int64_t *key)
{
    int64_t k = storage_archive_key_of_ms(r->msg.stamp_ms) |
                ((int64_t)STORAGE_ARCHIVE_GEN_STORAGE << STORAGE_ARCHIVE_GEN_SHIFT);
    for (int tries = 0; tries <= STORAGE_ARCHIVE_COUNTER_MAX; tries++, k++) {
        sqlite3_stmt *s = stmt(c, ST_ARCHIVE_MSG_PUT);
        if (s == NULL)
            return HEARTH_ESTORAGE;
        int rc = sqlite3_bind_int64(s, 1, k);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(s, 2, r->blob, (int)r->blob_len, SQLITE_STATIC);
        sqlite3_int64 changed = 0;
        int err = finish_write(c, s, rc, &changed);
        if (err != 0 || changed > 0) {
            *key = k;
            return err;
        }
    }
    return HEARTH_ELIMIT;
}

/* The message under key, stored once: 0 when archive_msg holds it now, EEXISTS when it held
 * another text under that key (the other party's copy in another form), or the error. */
static int archive_msg_put(sqlite_conn_t *c, storage_req_t *r, int64_t key)
{
    sqlite3_stmt *s = stmt(c, ST_ARCHIVE_MSG_PUT);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_int64(s, 1, key);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 2, r->blob, (int)r->blob_len, SQLITE_STATIC);
    sqlite3_int64 changed = 0;
    int err = finish_write(c, s, rc, &changed);
    if (err != 0 || changed > 0)
        return err;
    /* Already there: normally the other party's copy of the same message. */
    s = stmt(c, ST_ARCHIVE_MSG_SAME);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    rc = sqlite3_bind_int64(s, 1, key);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 2, r->blob, (int)r->blob_len, SQLITE_STATIC);
    int same = 0;
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        same = sqlite3_column_int(s, 0);
        rc = SQLITE_DONE;
    }
    err = query_done(s, 0, rc);
    return err != 0 ? err : same ? 0 : HEARTH_EEXISTS;
}

/* A message for one party: the shared text under its key (or the party's own copy when the
 * key's text differs), then the party's row. The account is checked by the foreign key. */
static int archive_store(sqlite_conn_t *c, storage_req_t *r)
{
    int err = 0;
    int64_t key = 0;
    bool legacy = storage_archive_key_parse(r->msg.id, &key) != 0;
    bool own_copy = false;
    if (legacy) {
        err = archive_key_given(c, r, &key);
    } else {
        err = archive_msg_put(c, r, key);
        if (err == HEARTH_EEXISTS) {
            own_copy = true;
            err = 0;
        }
    }
    if (err != 0)
        return err;
    sqlite3_stmt *s = stmt(c, ST_ARCHIVE_STORE);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_text(s, 1, r->acct.username, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 2, key);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 3, r->msg.with, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(s, 4, r->msg.outgoing ? 1 : 0);
    if (rc == SQLITE_OK)
        rc = own_copy ? sqlite3_bind_text(s, 5, r->blob, (int)r->blob_len, SQLITE_STATIC)
                      : sqlite3_bind_null(s, 5);
    if (rc == SQLITE_OK)
        rc = legacy ? sqlite3_bind_text(s, 6, r->msg.id, -1, SQLITE_STATIC)
                    : sqlite3_bind_null(s, 6);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    stmt_done(s);
    if (rc == SQLITE_DONE)
        return 0;
    /* No account, or the party's archive holds the key or the id already: the savepoint undoes
     * the shared row. */
    if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
        return HEARTH_ENOTFOUND;
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return HEARTH_EEXISTS;
    return err_of(rc);
}

/* The key of the user's archive item id: ENOTFOUND when there is none. */
static int archive_seq(sqlite_conn_t *c, const char *username, const char *id, int64_t *seq)
{
    int64_t key;
    bool legacy = storage_archive_key_parse(id, &key) != 0;
    sqlite3_stmt *s =
        user_stmt(c, legacy ? ST_ARCHIVE_SEQ_LEGACY : ST_ARCHIVE_SEQ, username, legacy ? id : NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = legacy ? SQLITE_OK : sqlite3_bind_int64(s, 2, key);
    int err = 0;
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(s, 0);
        rc = SQLITE_DONE;
    } else if (rc == SQLITE_DONE) {
        err = HEARTH_ENOTFOUND;
    }
    return query_done(s, err, rc);
}

static int bind_named_int64(sqlite3_stmt *s, const char *name, int64_t v)
{
    int i = sqlite3_bind_parameter_index(s, name);
    return i == 0 ? SQLITE_OK : sqlite3_bind_int64(s, i, v);
}

/* The exclusive key bounds (lo, hi) narrowed to r's time bounds (start and end in num and num2,
 * inclusive milliseconds). */
static void archive_time_bounds(const storage_req_t *r, int64_t *lo, int64_t *hi)
{
    if (r->num != STORAGE_ARCHIVE_NO_START && r->num > 0) {
        int64_t first = storage_archive_key_of_ms(r->num);
        if (first - 1 > *lo)
            *lo = first - 1;
    }
    if (r->num2 != STORAGE_ARCHIVE_NO_END) {
        int64_t after = r->num2 < 0 ? 0
                        : r->num2 >= STORAGE_ARCHIVE_MS_MAX
                            ? INT64_MAX
                            : storage_archive_key_of_ms(r->num2 + 1);
        if (after < *hi)
            *hi = after;
    }
}

/* An archive read (ST_ARCHIVE_*) bound to r's filter and the key bounds (lo, hi) narrowed to
 * its time bounds; NULL on failure. */
static sqlite3_stmt *archive_stmt(sqlite_conn_t *c, storage_req_t *r, enum stmt_id id, int64_t lo,
                                  int64_t hi, int64_t limit)
{
    sqlite3_stmt *s = stmt(c, id);
    if (s == NULL)
        return NULL;
    archive_time_bounds(r, &lo, &hi);
    int rc = sqlite3_bind_text(s, sqlite3_bind_parameter_index(s, ":user"), r->acct.username, -1,
                               SQLITE_STATIC);
    int wi = sqlite3_bind_parameter_index(s, ":with");
    if (rc == SQLITE_OK && wi != 0)
        rc = sqlite3_bind_text(s, wi, r->msg.with, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = bind_named_int64(s, ":lo", lo);
    if (rc == SQLITE_OK)
        rc = bind_named_int64(s, ":hi", hi);
    if (rc == SQLITE_OK)
        rc = bind_named_int64(s, ":limit", limit);
    if (rc != SQLITE_OK) {
        stmt_done(s);
        return NULL;
    }
    return s;
}

static int archive_count(sqlite_conn_t *c, storage_req_t *r, int64_t lo, int64_t hi, size_t *n)
{
    sqlite3_stmt *s = archive_stmt(
        c, r, r->msg.with != NULL ? ST_ARCHIVE_COUNT_WITH : ST_ARCHIVE_COUNT, lo, hi, 0);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *n = (size_t)sqlite3_column_int64(s, 0);
        rc = SQLITE_DONE;
    }
    return query_done(s, 0, rc);
}

/* The page: up to max items past the paging position in the paging direction, read with one
 * more to tell whether the page is the last one in that direction. */
static int archive_query(sqlite_conn_t *c, storage_req_t *r)
{
    const char *user = r->acct.username;
    const char *after = r->msg.id, *before = r->name;
    int64_t lo = 0, hi = INT64_MAX;
    int err = 0;
    if (after != NULL)
        err = archive_seq(c, user, after, &lo);
    if (err == 0 && before != NULL && before[0] != '\0')
        err = archive_seq(c, user, before, &hi);
    if (err == 0)
        err = archive_count(c, r, 0, INT64_MAX, &r->page.count);
    if (err != 0)
        return err;

    bool backward = before != NULL && after == NULL;
    bool with = r->msg.with != NULL;
    enum stmt_id id = backward ? (with ? ST_ARCHIVE_DESC_WITH : ST_ARCHIVE_DESC)
                               : (with ? ST_ARCHIVE_ASC_WITH : ST_ARCHIVE_ASC);
    sqlite3_stmt *s = archive_stmt(c, r, id, lo, hi, (int64_t)r->limit + 1);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t cap = 0, bytes = 0;
    int rc;
    r->page.complete = 1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(s, 4);
        if (r->amsgs_n == r->limit ||
            (r->limit_bytes && r->amsgs_n > 0 && bytes + len > r->limit_bytes)) {
            r->page.complete = 0; /* one more beyond the page */
            rc = SQLITE_DONE;
            break;
        }
        bytes += len;
        storage_archive_msg_t *msgs = grow(r->amsgs, &cap, r->amsgs_n, sizeof(*msgs));
        if (msgs == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        r->amsgs = msgs;
        storage_archive_msg_t *m = &msgs[r->amsgs_n++];
        memset(m, 0, sizeof(*m));
        int64_t key = sqlite3_column_int64(s, 0);
        m->stamp_ms = storage_archive_ms_of_key(key);
        m->outgoing = sqlite3_column_int(s, 3) != 0;
        if (sqlite3_column_type(s, 1) == SQLITE_NULL) {
            char text[24];
            snprintf(text, sizeof(text), "%" PRId64, key);
            if ((m->id = strdup(text)) == NULL)
                err = HEARTH_ENOMEM;
        } else {
            err = column_dup_req(s, 1, &m->id);
        }
        if (err == 0)
            err = column_dup_req(s, 2, &m->with);
        if (err == 0)
            err = column_dup_req(s, 4, &m->stanza);
        if (err != 0)
            break;
        m->len = (size_t)sqlite3_column_bytes(s, 4);
    }
    err = query_done(s, err, rc);
    if (err != 0)
        return err;
    if (backward) {
        for (size_t i = 0, j = r->amsgs_n; i + 1 < j; i++, j--) {
            storage_archive_msg_t tmp = r->amsgs[i];
            r->amsgs[i] = r->amsgs[j - 1];
            r->amsgs[j - 1] = tmp;
        }
    }
    return err; /* on error the caller clears what was read */
}

static int prefs_get(sqlite_conn_t *c, storage_req_t *r)
{
    storage_archive_prefs_t *p = &r->prefs;
    sqlite3_stmt *s = user_stmt(c, ST_PREFS_GET, r->acct.username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        p->stored = 1;
        p->default_mode = sqlite3_column_int(s, 0);
        rc = SQLITE_DONE;
    }
    int err = query_done(s, 0, rc);
    if (err != 0 || !p->stored)
        return err;
    s = user_stmt(c, ST_PREFS_JIDS, r->acct.username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t cap_always = 0, cap_never = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        bool always = sqlite3_column_int(s, 0) != 0;
        char ***v = always ? &p->always : &p->never;
        size_t *n = always ? &p->nalways : &p->nnever;
        char **nv = grow(*v, always ? &cap_always : &cap_never, *n, sizeof(**v));
        if (nv == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        *v = nv;
        nv[(*n)++] = NULL;
        err = column_dup_req(s, 1, &nv[*n - 1]);
        if (err != 0)
            break;
    }
    return query_done(s, err, rc);
}

static int prefs_set(sqlite_conn_t *c, storage_req_t *r)
{
    const char *user = r->acct.username;
    int err = account_exists(c, user);
    if (err == 0)
        err = user_write(c, ST_PREFS_DELETE, user, NULL, NULL); /* its JIDs cascade */
    if (err != 0)
        return err;
    sqlite3_stmt *s = user_stmt(c, ST_PREFS_PUT, user, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    err = finish_write(c, s, sqlite3_bind_int(s, 2, r->prefs.default_mode), NULL);
    for (int always = 0; always <= 1; always++) {
        char **v = always ? r->prefs.always : r->prefs.never;
        size_t n = always ? r->prefs.nalways : r->prefs.nnever;
        for (size_t i = 0; err == 0 && i < n; i++) {
            s = user_stmt(c, ST_PREFS_JID_ADD, user, NULL);
            if (s == NULL)
                return HEARTH_ESTORAGE;
            int rc = sqlite3_bind_int(s, 2, always);
            if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(s, 3, v[i], -1, SQLITE_STATIC);
            err = finish_write(c, s, rc, NULL);
        }
    }
    return err;
}

static int archive_purge(sqlite_conn_t *c, storage_req_t *r)
{
    int64_t before = storage_archive_key_of_ms(r->num);
    int err = 0;
    for (int i = 0; i < 2 && err == 0; i++) {
        sqlite3_stmt *s = stmt(c, i == 0 ? ST_ARCHIVE_PURGE : ST_ARCHIVE_MSG_PURGE);
        if (s == NULL)
            return HEARTH_ESTORAGE;
        err = finish_write(c, s, sqlite3_bind_int64(s, 1, before), NULL);
    }
    return err;
}

static int count_rows(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = stmt(c, strcmp(r->name, "offline") ? ST_COUNT_ARCHIVE : ST_COUNT_OFFLINE);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        r->num = sqlite3_column_int64(s, 0);
        rc = SQLITE_DONE;
    }
    return query_done(s, 0, rc);
}

static int archive_last(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = stmt(c, ST_ARCHIVE_LAST);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        r->num = sqlite3_column_int64(s, 0);
        rc = SQLITE_DONE;
    }
    return query_done(s, 0, rc);
}

/* DOC_* and LOG_*: ?1 kind, ?2 key (the same binding as a user's statements). */
static int doc_put(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_DOC_PUT, r->name, r->item.jid);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    return finish_write(c, s, sqlite3_bind_text(s, 3, r->blob, -1, SQLITE_STATIC), NULL);
}

static int doc_get(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_DOC_GET, r->name, r->item.jid);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int err = 0, rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        err = column_dup_req(s, 0, &r->blob);
        rc = SQLITE_DONE;
    } else if (rc == SQLITE_DONE) {
        err = HEARTH_ENOTFOUND;
    }
    return query_done(s, err, rc);
}

/* DOC_LIST (the kind in r->name) or PRIVATE_LIST (the account in r->acct.username). */
static int doc_list_by(sqlite_conn_t *c, storage_req_t *r, enum stmt_id id)
{
    sqlite3_stmt *s = user_stmt(c, id, id == ST_DOC_LIST ? r->name : r->acct.username, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t cap = 0;
    int err = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        storage_doc_t *docs = grow(r->docs, &cap, r->docs_n, sizeof(*docs));
        if (docs == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        r->docs = docs;
        storage_doc_t *d = &docs[r->docs_n++];
        memset(d, 0, sizeof(*d));
        err = column_dup_req(s, 0, &d->key);
        if (err == 0)
            err = column_dup_req(s, 1, &d->xml);
        if (err != 0)
            break;
    }
    return query_done(s, err, rc);
}

/* One row of LOG_SELECT's columns (id, stamp_ms, xml, ref, author, origin) into x. */
static int log_row(sqlite3_stmt *s, storage_log_entry_t *x)
{
    memset(x, 0, sizeof(*x));
    x->id = sqlite3_column_int64(s, 0);
    x->stamp_ms = sqlite3_column_int64(s, 1);
    int err = column_dup_req(s, 2, &x->xml);
    err = err ?: column_dup(s, 3, &x->ref);
    err = err ?: column_dup(s, 4, &x->author);
    return err ?: column_dup(s, 5, &x->origin);
}

/* Read newest first: handed back oldest first. */
static void log_reverse(storage_req_t *r)
{
    for (size_t i = 0, j = r->docs_n; i + 1 < j; i++, j--) {
        storage_log_entry_t tmp = r->entries[i];
        r->entries[i] = r->entries[j - 1];
        r->entries[j - 1] = tmp;
    }
}

static int log_append(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_LOG_APPEND, r->name, r->item.jid);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_int64(s, 3, r->num);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 4, r->blob, -1, SQLITE_STATIC);
    return finish_write(c, s, rc, NULL);
}

/* Read newest first, handed back oldest first. */
static int log_fetch(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_LOG_FETCH, r->name, r->item.jid);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_int64(s, 3, r->num);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 4, r->limit > INT64_MAX ? INT64_MAX : (int64_t)r->limit);
    if (rc != SQLITE_OK) {
        stmt_done(s);
        return err_of(rc);
    }
    size_t cap = 0;
    int err = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        storage_log_entry_t *e = grow(r->entries, &cap, r->docs_n, sizeof(*e));
        if (e == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        r->entries = e;
        err = log_row(s, &e[r->docs_n++]);
        if (err != 0)
            break;
    }
    err = query_done(s, err, rc);
    if (err == 0)
        log_reverse(r);
    return err;
}

/* ---- named log entries (migration 8) ---- */

static int log_append_entry(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_LOG_APPEND_ENTRY, r->name, r->item.jid);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_int64(s, 3, r->num);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 4, r->blob, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 5, r->lg.ref, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = r->lg.author ? sqlite3_bind_text(s, 6, r->lg.author, -1, SQLITE_STATIC)
                          : sqlite3_bind_null(s, 6);
    if (rc == SQLITE_OK)
        rc = r->lg.origin ? sqlite3_bind_text(s, 7, r->lg.origin, -1, SQLITE_STATIC)
                          : sqlite3_bind_null(s, 7);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    stmt_done(s);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return HEARTH_EEXISTS;
    return err_of(rc);
}

/* The id of the entry named ref: ENOTFOUND when there is none. */
static int log_id(sqlite_conn_t *c, storage_req_t *r, const char *ref, int64_t *id)
{
    sqlite3_stmt *s = user_stmt(c, ST_LOG_ID, r->name, r->item.jid);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int err = 0, rc = sqlite3_bind_text(s, 3, ref, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *id = sqlite3_column_int64(s, 0);
        rc = SQLITE_DONE;
    } else if (rc == SQLITE_DONE) {
        err = HEARTH_ENOTFOUND;
    }
    return query_done(s, err, rc);
}

static int log_get(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_LOG_GET, r->name, r->item.jid);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int err = 0, rc = sqlite3_bind_text(s, 3, r->lg.ref, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        r->entries = calloc(1, sizeof(*r->entries));
        if (r->entries == NULL) {
            err = HEARTH_ENOMEM;
        } else {
            r->docs_n = 1;
            err = log_row(s, r->entries);
        }
        rc = SQLITE_DONE;
    } else if (rc == SQLITE_DONE) {
        err = HEARTH_ENOTFOUND;
    }
    return query_done(s, err, rc);
}

static int log_replace(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_LOG_REPLACE, r->name, r->item.jid);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_text(s, 3, r->lg.ref, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 4, r->blob, -1, SQLITE_STATIC);
    sqlite3_int64 changed = 0;
    int err = finish_write(c, s, rc, &changed);
    return err == 0 && changed == 0 ? HEARTH_ENOTFOUND : err;
}

static int bind_named_text(sqlite3_stmt *s, const char *name, const char *v)
{
    int i = sqlite3_bind_parameter_index(s, name);
    if (i == 0)
        return SQLITE_OK;
    return v ? sqlite3_bind_text(s, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(s, i);
}

/* A log read (ST_LOG_COUNT, ST_LOG_ASC, ST_LOG_DESC) bound to r's filter and the id bounds (lo,
 * hi); NULL on failure. */
static sqlite3_stmt *log_query_stmt(sqlite_conn_t *c, storage_req_t *r, enum stmt_id id, int64_t lo,
                                    int64_t hi, int64_t limit)
{
    sqlite3_stmt *s = stmt(c, id);
    if (s == NULL)
        return NULL;
    int rc = bind_named_text(s, ":kind", r->name);
    if (rc == SQLITE_OK)
        rc = bind_named_text(s, ":key", r->item.jid);
    if (rc == SQLITE_OK)
        rc = bind_named_text(s, ":author", r->lg.author);
    if (rc == SQLITE_OK)
        rc = bind_named_text(s, ":origin", r->lg.origin);
    if (rc == SQLITE_OK)
        rc = bind_named_int64(s, ":start", r->num);
    if (rc == SQLITE_OK)
        rc = bind_named_int64(s, ":end", r->num2);
    if (rc == SQLITE_OK)
        rc = bind_named_int64(s, ":lo", lo);
    if (rc == SQLITE_OK)
        rc = bind_named_int64(s, ":hi", hi);
    if (rc == SQLITE_OK)
        rc = bind_named_int64(s, ":limit", limit);
    if (rc != SQLITE_OK) {
        stmt_done(s);
        return NULL;
    }
    return s;
}

/* As archive_query: the page past the paging position, read with one more entry to tell
 * whether it is the last one in that direction. */
static int log_query(sqlite_conn_t *c, storage_req_t *r)
{
    int64_t lo = 0, hi = INT64_MAX;
    int err = 0;
    if (r->lg.after != NULL)
        err = log_id(c, r, r->lg.after, &lo);
    if (err == 0 && r->lg.before != NULL && r->lg.before[0] != '\0')
        err = log_id(c, r, r->lg.before, &hi);
    if (err != 0)
        return err;
    sqlite3_stmt *s = log_query_stmt(c, r, ST_LOG_COUNT, 0, INT64_MAX, 0);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        r->lg.page.count = (size_t)sqlite3_column_int64(s, 0);
        rc = SQLITE_DONE;
    }
    err = query_done(s, 0, rc);
    if (err != 0)
        return err;
    bool backward = r->lg.before != NULL && r->lg.after == NULL;
    s = log_query_stmt(c, r, backward ? ST_LOG_DESC : ST_LOG_ASC, lo, hi, (int64_t)r->limit + 1);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t cap = 0, bytes = 0;
    r->lg.page.complete = 1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        size_t len = (size_t)sqlite3_column_bytes(s, 2);
        if (r->docs_n == r->limit ||
            (r->limit_bytes && r->docs_n > 0 && bytes + len > r->limit_bytes)) {
            r->lg.page.complete = 0;
            rc = SQLITE_DONE;
            break;
        }
        bytes += len;
        storage_log_entry_t *e = grow(r->entries, &cap, r->docs_n, sizeof(*e));
        if (e == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        r->entries = e;
        err = log_row(s, &e[r->docs_n++]);
        if (err != 0)
            break;
    }
    err = query_done(s, err, rc);
    if (err == 0 && backward)
        log_reverse(r);
    return err;
}

/* ---- room affiliations (migration 4) ---- */

static int muc_affs_put(sqlite_conn_t *c, storage_req_t *r)
{
    int err = user_write(c, ST_MUC_AFFS_CLEAR, r->item.jid, NULL, NULL);
    for (size_t i = 0; err == 0 && i < r->affs_n; i++) {
        const storage_muc_aff_t *a = &r->affs[i];
        sqlite3_stmt *s = user_stmt(c, ST_MUC_AFF_INSERT, r->item.jid, a->jid);
        if (s == NULL)
            return HEARTH_ESTORAGE;
        int rc = sqlite3_bind_text(s, 3, a->affiliation, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = a->nick ? sqlite3_bind_text(s, 4, a->nick, -1, SQLITE_STATIC)
                         : sqlite3_bind_null(s, 4);
        if (rc == SQLITE_OK)
            rc = a->reason ? sqlite3_bind_text(s, 5, a->reason, -1, SQLITE_STATIC)
                           : sqlite3_bind_null(s, 5);
        if (rc == SQLITE_OK)
            rc = a->account ? sqlite3_bind_text(s, 6, a->account, -1, SQLITE_STATIC)
                            : sqlite3_bind_null(s, 6);
        err = finish_write(c, s, rc, NULL);
    }
    return err;
}

static int muc_affs_get(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_MUC_AFFS_GET, r->item.jid, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t cap = 0;
    int err = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        storage_muc_aff_t *v = grow(r->affs, &cap, r->affs_n, sizeof(*v));
        if (v == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        r->affs = v;
        storage_muc_aff_t *a = &v[r->affs_n++];
        memset(a, 0, sizeof(*a));
        err = column_dup_req(s, 0, &a->jid);
        if (err == 0)
            err = column_dup_req(s, 1, &a->affiliation);
        if (err == 0)
            err = column_dup(s, 2, &a->nick);
        if (err == 0)
            err = column_dup(s, 3, &a->reason);
        if (err != 0)
            break;
    }
    return query_done(s, err, rc);
}

static int muc_owned(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_MUC_OWNED, r->item.jid, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        r->msgs_n = (size_t)sqlite3_column_int64(s, 0);
        rc = SQLITE_DONE;
    }
    return query_done(s, 0, rc);
}

/* ---- publish-subscribe (migration 5) ---- */

/* The statement with ?1 = service, ?2 = node and (unless NULL) ?3 = third bound, or NULL. */
static sqlite3_stmt *ps_stmt(sqlite_conn_t *c, enum stmt_id id, const storage_req_t *r,
                             const char *third)
{
    sqlite3_stmt *s = user_stmt(c, id, r->ps.service, r->ps.node);
    if (s != NULL && third != NULL &&
        sqlite3_bind_text(s, 3, third, -1, SQLITE_STATIC) != SQLITE_OK) {
        stmt_done(s);
        return NULL;
    }
    return s;
}

static int ps_write(sqlite_conn_t *c, enum stmt_id id, const storage_req_t *r, const char *third)
{
    sqlite3_stmt *s = ps_stmt(c, id, r, third);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    return finish_write(c, s, SQLITE_OK, NULL);
}

static int ps_load_nodes(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_PS_NODES, r->ps.service, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t cap = 0;
    int err = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        storage_pubsub_node_t *v = grow(r->ps.nodes, &cap, r->ps.nnodes, sizeof(*v));
        if (v == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        r->ps.nodes = v;
        storage_pubsub_node_t *n = &v[r->ps.nnodes++];
        memset(n, 0, sizeof(*n));
        err = column_dup_req(s, 0, &n->node);
        if (err == 0)
            err = column_dup_req(s, 1, &n->config);
        if (err != 0)
            break;
    }
    return query_done(s, err, rc);
}

static int ps_load_items(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_PS_ITEMS_META, r->ps.service, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t cap = 0;
    int err = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        storage_pubsub_item_t *v = grow(r->ps.items, &cap, r->ps.nitems, sizeof(*v));
        if (v == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        r->ps.items = v;
        storage_pubsub_item_t *it = &v[r->ps.nitems++];
        memset(it, 0, sizeof(*it));
        err = column_dup_req(s, 0, &it->node);
        if (err == 0)
            err = column_dup_req(s, 1, &it->id);
        if (err == 0)
            err = column_dup_req(s, 2, &it->publisher);
        it->stamp_ms = sqlite3_column_int64(s, 3);
        it->size = (size_t)sqlite3_column_int64(s, 4);
        if (err != 0)
            break;
    }
    return query_done(s, err, rc);
}

/* The payloads of each node's newest item, into the rows ps_load_items read (the last row of
 * each node). Both queries are ordered by node (BINARY, strcmp's order): one pass over the
 * items, not one per node. */
static int ps_load_last(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_PS_LAST_PAYLOADS, r->ps.service, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int err = 0, rc = sqlite3_bind_int64(s, 2, (sqlite3_int64)r->ps.inline_max);
    if (rc != SQLITE_OK) {
        stmt_done(s);
        return err_of(rc);
    }
    size_t i = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *node = (const char *)sqlite3_column_text(s, 0);
        storage_pubsub_item_t *last = NULL;
        while (node != NULL && i < r->ps.nitems && strcmp(r->ps.items[i].node, node) < 0)
            i++;
        while (node != NULL && i < r->ps.nitems && !strcmp(r->ps.items[i].node, node))
            last = &r->ps.items[i++];
        if (last != NULL && last->payload == NULL && (err = column_dup_req(s, 1, &last->payload)))
            break;
    }
    return query_done(s, err, rc);
}

static int ps_load_affs(sqlite_conn_t *c, storage_req_t *r)
{
    sqlite3_stmt *s = user_stmt(c, ST_PS_AFFS, r->ps.service, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    size_t cap = 0;
    int err = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        storage_pubsub_aff_t *v = grow(r->ps.affs, &cap, r->ps.naffs, sizeof(*v));
        if (v == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        r->ps.affs = v;
        storage_pubsub_aff_t *a = &v[r->ps.naffs++];
        memset(a, 0, sizeof(*a));
        err = column_dup_req(s, 0, &a->node);
        if (err == 0)
            err = column_dup_req(s, 1, &a->jid);
        if (err == 0)
            err = column_dup_req(s, 2, &a->affiliation);
        if (err != 0)
            break;
    }
    return query_done(s, err, rc);
}

static int ps_load(sqlite_conn_t *c, storage_req_t *r)
{
    int err = ps_load_nodes(c, r);
    err = err ?: ps_load_items(c, r);
    err = err ?: ps_load_last(c, r);
    return err ?: ps_load_affs(c, r);
}

/* Keeps the node's newest r->ps.keep items. */
static int ps_trim(sqlite_conn_t *c, const storage_req_t *r)
{
    sqlite3_stmt *s = ps_stmt(c, ST_PS_TRIM, r, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    sqlite3_int64 keep = r->ps.keep > INT64_MAX ? INT64_MAX : (sqlite3_int64)r->ps.keep;
    return finish_write(c, s, sqlite3_bind_int64(s, 3, keep), NULL);
}

static int ps_node_put(sqlite_conn_t *c, const storage_req_t *r)
{
    sqlite3_stmt *s = ps_stmt(c, ST_PS_NODE_PUT, r, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = r->ps.account ? sqlite3_bind_text(s, 3, r->ps.account, -1, SQLITE_STATIC)
                           : sqlite3_bind_null(s, 3);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 4, r->ps.config, -1, SQLITE_STATIC);
    return finish_write(c, s, rc, NULL);
}

static int ps_publish(sqlite_conn_t *c, storage_req_t *r)
{
    const storage_pubsub_item_t *it = &r->ps.item;
    int err = r->ps.config != NULL ? ps_node_put(c, r) : 0;
    err = err ?: ps_write(c, ST_PS_ITEM_DELETE, r, it->id);
    if (err != 0)
        return err;
    sqlite3_stmt *s = ps_stmt(c, ST_PS_ITEM_INSERT, r, it->id);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = sqlite3_bind_text(s, 4, it->publisher, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(s, 5, it->stamp_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(s, 6, it->payload, -1, SQLITE_STATIC);
    err = finish_write(c, s, rc, NULL);
    return err ?: ps_trim(c, r);
}

/* One item row (id, publisher, stamp_ms, payload) appended to r's items. */
static int ps_item_row(sqlite3_stmt *s, storage_req_t *r, size_t *cap)
{
    storage_pubsub_item_t *v = grow(r->ps.items, cap, r->ps.nitems, sizeof(*v));
    if (v == NULL)
        return HEARTH_ENOMEM;
    r->ps.items = v;
    storage_pubsub_item_t *it = &v[r->ps.nitems++];
    memset(it, 0, sizeof(*it));
    int err = column_dup_req(s, 0, &it->id);
    err = err ?: column_dup_req(s, 1, &it->publisher);
    it->stamp_ms = sqlite3_column_int64(s, 2);
    err = err ?: column_dup_req(s, 3, &it->payload);
    if (err == 0)
        it->size = strlen(it->payload);
    return err;
}

/* The named items (each once; absent ones left out), sorted into publication order. */
static int ps_items_named(sqlite_conn_t *c, storage_req_t *r)
{
    size_t cap = 0;
    int64_t *seqs = calloc(r->ps.nids, sizeof(*seqs)); /* parallel to r->ps.items */
    if (seqs == NULL)
        return HEARTH_ENOMEM;
    int err = 0;
    for (size_t i = 0; err == 0 && i < r->ps.nids; i++) {
        int dup = 0;
        for (size_t k = 0; k < i && !dup; k++)
            dup = !strcmp(r->ps.ids[k], r->ps.ids[i]);
        if (dup)
            continue;
        sqlite3_stmt *s = ps_stmt(c, ST_PS_ITEM_GET, r, r->ps.ids[i]);
        if (s == NULL) {
            err = HEARTH_ESTORAGE;
            break;
        }
        int rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            seqs[r->ps.nitems] = sqlite3_column_int64(s, 4);
            err = ps_item_row(s, r, &cap);
            rc = SQLITE_DONE;
        }
        err = query_done(s, err, rc);
    }
    for (size_t i = 1; err == 0 && i < r->ps.nitems; i++) {
        for (size_t k = i; k > 0 && seqs[k - 1] > seqs[k]; k--) {
            storage_pubsub_item_t t = r->ps.items[k];
            r->ps.items[k] = r->ps.items[k - 1];
            r->ps.items[k - 1] = t;
            int64_t q = seqs[k];
            seqs[k] = seqs[k - 1];
            seqs[k - 1] = q;
        }
    }
    free(seqs);
    return err;
}

static int ps_items(sqlite_conn_t *c, storage_req_t *r)
{
    if (r->ps.nids > 0)
        return ps_items_named(c, r);
    sqlite3_stmt *s = ps_stmt(c, r->ps.max > 0 ? ST_PS_ITEMS_NEWEST : ST_PS_ITEMS_ALL, r, NULL);
    if (s == NULL)
        return HEARTH_ESTORAGE;
    int rc = SQLITE_OK;
    if (r->ps.max > 0)
        rc = sqlite3_bind_int64(s, 3, r->ps.max > INT64_MAX ? INT64_MAX : (sqlite3_int64)r->ps.max);
    if (rc != SQLITE_OK) {
        stmt_done(s);
        return err_of(rc);
    }
    size_t cap = 0;
    int err = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
        if ((err = ps_item_row(s, r, &cap)) != 0)
            break;
    return query_done(s, err, rc);
}

static int ps_affs_set(sqlite_conn_t *c, storage_req_t *r)
{
    int err = 0;
    for (size_t i = 0; err == 0 && i < r->ps.naffs; i++) {
        const storage_pubsub_aff_t *a = &r->ps.affs[i];
        sqlite3_stmt *s = stmt(c, a->affiliation ? ST_PS_AFF_PUT : ST_PS_AFF_DELETE);
        if (s == NULL)
            return HEARTH_ESTORAGE;
        int rc = sqlite3_bind_text(s, 1, r->ps.service, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(s, 2, a->node, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
            rc = sqlite3_bind_text(s, 3, a->jid, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK && a->affiliation)
            rc = sqlite3_bind_text(s, 4, a->affiliation, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK && a->affiliation)
            rc = a->account ? sqlite3_bind_text(s, 5, a->account, -1, SQLITE_STATIC)
                            : sqlite3_bind_null(s, 5);
        err = finish_write(c, s, rc, NULL);
    }
    return err;
}

static int run_one(sqlite_conn_t *c, storage_req_t *r)
{
    switch (r->op) {
    case STORAGE_OP_ACCOUNT_GET:
        return account_get(c, r);
    case STORAGE_OP_ACCOUNT_CREATE:
        return account_create(c, r);
    case STORAGE_OP_ACCOUNT_SET_SECRETS:
        return account_set_secrets(c, r);
    case STORAGE_OP_ACCOUNT_SET_ADMIN:
        return account_set_flag(c, r, ST_ACCOUNT_SET_ADMIN, r->acct.admin);
    case STORAGE_OP_ACCOUNT_SET_LOCKED:
        return account_set_flag(c, r, ST_ACCOUNT_SET_LOCKED, r->acct.locked);
    case STORAGE_OP_ACCOUNT_DELETE:
        return account_delete(c, r);
    case STORAGE_OP_ACCOUNT_LIST:
        return account_list(c, r);
    case STORAGE_OP_ACCOUNT_PAGE:
        return account_page(c, r);
    case STORAGE_OP_PROPERTY_GET:
        return property_get(c, r);
    case STORAGE_OP_PROPERTY_SET:
        return property_set(c, r);
    case STORAGE_OP_USER_LOAD:
        return user_load(c, r);
    case STORAGE_OP_ROSTER_PUT:
        return roster_put(c, r);
    case STORAGE_OP_ROSTER_DELETE:
        return roster_delete(c, r);
    case STORAGE_OP_REQUEST_PUT:
        return request_put(c, r);
    case STORAGE_OP_REQUEST_DELETE:
        return request_delete(c, r);
    case STORAGE_OP_OFFLINE_STORE:
        return offline_store(c, r);
    case STORAGE_OP_OFFLINE_FETCH:
        return offline_fetch(c, r);
    case STORAGE_OP_OFFLINE_DELETE:
        return offline_delete(c, r);
    case STORAGE_OP_OFFLINE_COUNT:
        return offline_count_op(c, r);
    case STORAGE_OP_VCARD_GET:
        return blob_get(c, r, ST_VCARD_GET);
    case STORAGE_OP_VCARD_SET:
        return blob_set(c, r, r->blob != NULL ? ST_VCARD_SET : ST_VCARD_DELETE);
    case STORAGE_OP_PRIVATE_GET:
        return blob_get(c, r, ST_PRIVATE_GET);
    case STORAGE_OP_PRIVATE_SET:
        return blob_set(c, r, r->blob != NULL ? ST_PRIVATE_SET : ST_PRIVATE_DELETE);
    case STORAGE_OP_BLOCK_ADD:
        return block_add(c, r);
    case STORAGE_OP_BLOCK_REMOVE:
        return block_remove(c, r);
    case STORAGE_OP_LAST_SET:
        return last_set(c, r);
    case STORAGE_OP_ARCHIVE_STORE:
        return archive_store(c, r);
    case STORAGE_OP_ARCHIVE_QUERY:
        return archive_query(c, r);
    case STORAGE_OP_ARCHIVE_PREFS_GET:
        return prefs_get(c, r);
    case STORAGE_OP_ARCHIVE_PREFS_SET:
        return prefs_set(c, r);
    case STORAGE_OP_ARCHIVE_PURGE:
        return archive_purge(c, r);
    case STORAGE_OP_ARCHIVE_LAST:
        return archive_last(c, r);
    case STORAGE_OP_COUNT:
        return count_rows(c, r);
    case STORAGE_OP_DOC_PUT:
        return doc_put(c, r);
    case STORAGE_OP_DOC_GET:
        return doc_get(c, r);
    case STORAGE_OP_DOC_DELETE:
        return user_write(c, ST_DOC_DELETE, r->name, r->item.jid, NULL);
    case STORAGE_OP_PRIVATE_LIST:
        return doc_list_by(c, r, ST_PRIVATE_LIST);
    case STORAGE_OP_DOC_LIST:
        return doc_list_by(c, r, ST_DOC_LIST);
    case STORAGE_OP_LOG_APPEND:
        return log_append(c, r);
    case STORAGE_OP_LOG_FETCH:
        return log_fetch(c, r);
    case STORAGE_OP_LOG_DELETE:
        return user_write(c, ST_LOG_DELETE, r->name, r->item.jid, NULL);
    case STORAGE_OP_LOG_APPEND_ENTRY:
        return log_append_entry(c, r);
    case STORAGE_OP_LOG_QUERY:
        return log_query(c, r);
    case STORAGE_OP_LOG_GET:
        return log_get(c, r);
    case STORAGE_OP_LOG_REPLACE:
        return log_replace(c, r);
    case STORAGE_OP_MUC_AFFS_PUT:
        return muc_affs_put(c, r);
    case STORAGE_OP_MUC_AFFS_GET:
        return muc_affs_get(c, r);
    case STORAGE_OP_MUC_OWNED:
        return muc_owned(c, r);
    case STORAGE_OP_PUBSUB_LOAD:
        return ps_load(c, r);
    case STORAGE_OP_PUBSUB_NODE_PUT: {
        int err = ps_node_put(c, r);
        return err ?: ps_trim(c, r);
    }
    case STORAGE_OP_PUBSUB_NODE_DELETE:
        return ps_write(c, ST_PS_NODE_DELETE, r, NULL);
    case STORAGE_OP_PUBSUB_PUBLISH:
        return ps_publish(c, r);
    case STORAGE_OP_PUBSUB_RETRACT:
        return ps_write(c, ST_PS_ITEM_DELETE, r, r->ps.item.id);
    case STORAGE_OP_PUBSUB_PURGE:
        return ps_write(c, ST_PS_PURGE, r, NULL);
    case STORAGE_OP_PUBSUB_ITEMS:
        return ps_items(c, r);
    case STORAGE_OP_PUBSUB_AFFS_SET:
        return ps_affs_set(c, r);
    }
    return HEARTH_EINVAL;
}

/* ---- the batch ---- */

static void fail_all(storage_req_t *first, int err)
{
    for (storage_req_t *r = first; r != NULL; r = r->next) {
        storage__req_clear_result(r);
        r->err = err;
    }
}

static void sqlite_run(void *conn, storage_req_t *first)
{
    sqlite_conn_t *c = conn;

    if (exec_stmt(c, ST_BEGIN) != SQLITE_OK)
        goto lost;
    for (storage_req_t *r = first; r != NULL; r = r->next) {
        if (exec_stmt(c, ST_SAVEPOINT) != SQLITE_OK)
            goto lost;
        r->err = run_one(c, r);
        if (r->err == 0) {
            if (exec_stmt(c, ST_RELEASE) != SQLITE_OK)
                goto lost;
            continue;
        }
        storage__req_clear_result(r);
        /* Some errors (I/O, disk full) roll back the whole transaction: then nothing holds. */
        if (sqlite3_get_autocommit(c->db))
            goto lost;
        if (exec_stmt(c, ST_ROLLBACK_TO) != SQLITE_OK || exec_stmt(c, ST_RELEASE) != SQLITE_OK)
            goto lost;
    }
    if (exec_stmt(c, ST_COMMIT) == SQLITE_OK)
        return;

lost:
    if (!sqlite3_get_autocommit(c->db))
        (void)exec_stmt(c, ST_ROLLBACK);
    fail_all(first, HEARTH_ESTORAGE);
}

/* ---- open, migrations, close ---- */

static void sqlite_close(void *conn)
{
    sqlite_conn_t *c = conn;
    if (c == NULL)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(c->stmt[i]);
    sqlite3_close_v2(c->db);
    free(c);
}

static uint64_t sqlite_commits(void *conn)
{
    sqlite_conn_t *c = conn;
    return atomic_load(&c->commits);
}

/* The database's schema version (0: none yet), inside the current transaction; -1 on error. */
static int version_get(sqlite_conn_t *c, bool *has_row)
{
    *has_row = false;
    if (exec_stmt(c, ST_VERSION_TABLE) != SQLITE_OK)
        return -1;
    sqlite3_stmt *s = stmt(c, ST_VERSION_GET);
    if (s == NULL)
        return -1;
    int version = 0, rows = 0, rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        sqlite3_int64 v = sqlite3_column_int64(s, 0);
        version = v < 0 || v > INT_MAX ? -1 : (int)v;
        rows++;
    }
    stmt_done(s);
    if (rc != SQLITE_DONE || rows > 1)
        return -1;
    *has_row = rows == 1;
    return version;
}

static int version_set(sqlite_conn_t *c, bool has_row, int version)
{
    sqlite3_stmt *s = stmt(c, has_row ? ST_VERSION_UPDATE : ST_VERSION_INSERT);
    if (s == NULL)
        return SQLITE_ERROR;
    int rc = sqlite3_bind_int(s, 1, version);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(s);
    stmt_done(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Each migration in its own transaction, the version row moving with it. */
static int migrate(sqlite_conn_t *c, const char *path, char **errmsg)
{
    for (;;) {
        if (exec_stmt(c, ST_BEGIN) != SQLITE_OK) {
            *errmsg = errmsg_printf("storage: %s: cannot start a transaction: %s", path,
                                    sqlite3_errmsg(c->db));
            return HEARTH_ESTORAGE;
        }
        bool has_row;
        int version = version_get(c, &has_row);
        if (version < 0) {
            *errmsg = errmsg_printf("storage: %s: cannot read schema_version (%s)", path,
                                    sqlite3_errmsg(c->db));
            goto fail;
        }
        if (version > SCHEMA_VERSION) {
            *errmsg = errmsg_printf("storage: %s: database schema version %d is newer than this "
                                    "build supports (%d); use a newer hearthd with this database",
                                    path, version, SCHEMA_VERSION);
            goto fail;
        }
        if (version == SCHEMA_VERSION)
            break;

        int next = version + 1;
        char *sqlerr = NULL;
        if (sqlite3_exec(c->db, migrations[next], NULL, NULL, &sqlerr) != SQLITE_OK) {
            *errmsg = errmsg_printf("storage: %s: migration %d failed: %s", path, next,
                                    sqlerr != NULL ? sqlerr : sqlite3_errmsg(c->db));
            sqlite3_free(sqlerr);
            goto fail;
        }
        if (version_set(c, has_row, next) != SQLITE_OK || exec_stmt(c, ST_COMMIT) != SQLITE_OK) {
            *errmsg = errmsg_printf("storage: %s: migration %d failed: %s", path, next,
                                    sqlite3_errmsg(c->db));
            goto fail;
        }
    }
    if (exec_stmt(c, ST_COMMIT) != SQLITE_OK) {
        *errmsg = errmsg_printf("storage: %s: %s", path, sqlite3_errmsg(c->db));
        goto fail;
    }
    return 0;

fail:
    if (!sqlite3_get_autocommit(c->db))
        (void)exec_stmt(c, ST_ROLLBACK);
    return HEARTH_ESTORAGE;
}

static int pragma_set(sqlite_conn_t *c, const char *path, const char *sql, const char *expect,
                      char **errmsg)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(c->db, sql, -1, &s, NULL);
    bool ok = false;
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(s);
        if (expect == NULL)
            ok = rc == SQLITE_DONE || rc == SQLITE_ROW;
        else
            ok = rc == SQLITE_ROW && sqlite3_column_text(s, 0) != NULL &&
                 strcmp((const char *)sqlite3_column_text(s, 0), expect) == 0;
    }
    sqlite3_finalize(s);
    if (!ok) {
        *errmsg = errmsg_printf("storage: %s: '%s' failed: %s", path, sql, sqlite3_errmsg(c->db));
        return HEARTH_ESTORAGE;
    }
    return 0;
}

static int sqlite_open(const char *dsn, void **conn, char **errmsg)
{
    *conn = NULL;
    if (!sqlite3_threadsafe()) {
        *errmsg = errmsg_printf("storage: this SQLite library was built without thread support");
        return HEARTH_ESTORAGE;
    }
    sqlite_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        *errmsg = errmsg_printf("storage: out of memory");
        return HEARTH_ENOMEM;
    }
    /* NOMUTEX: the connection is used by one thread at a time (this one, then the storage
     * thread, started after open returns). */
    int rc = sqlite3_open_v2(
        dsn, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        *errmsg = errmsg_printf("storage: cannot open %s: %s", dsn,
                                c->db != NULL ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    sqlite3_commit_hook(c->db, commit_hook, c);

    if (pragma_set(c, dsn, "PRAGMA journal_mode = WAL", "wal", errmsg) != 0 ||
        pragma_set(c, dsn, "PRAGMA synchronous = FULL", NULL, errmsg) != 0 ||
        pragma_set(c, dsn, "PRAGMA foreign_keys = ON", NULL, errmsg) != 0 ||
        migrate(c, dsn, errmsg) != 0)
        goto fail;

    *conn = c;
    return 0;

fail:
    sqlite_close(c);
    return HEARTH_ESTORAGE;
}

const storage_driver_t storage__sqlite_driver = {
    .name = "sqlite",
    .open = sqlite_open,
    .run = sqlite_run,
    .close = sqlite_close,
    .commits = sqlite_commits,
};
