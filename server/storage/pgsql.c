/* The pgsql storage driver: one libpq connection, used only by the storage thread after open
 * (libpq's synchronous calls block that thread, never a worker loop), the numbered migrations of
 * sql/pgsql/ run at open, and each batch of requests in one transaction with a SAVEPOINT per
 * request, as the sqlite driver does. Prepared statements only (PQprepare on first use per
 * connection, PQexecPrepared with every value a parameter); fixed commands without values
 * (BEGIN, SAVEPOINT, the migrations' text) go through PQexec.
 * A lost connection fails the batch in flight (each request gets HEARTH_ESTORAGE: nothing is
 * reported done that was not committed); the next batch reconnects, with a growing delay
 * between attempts during which batches fail at once rather than wait. */
#include "storage/storage.h"

#include <inttypes.h>
#include <libpq-fe.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hearth/buf.h"
#include "storage/pgsql_migrations.h" /* generated from sql/pgsql/NNNN_*.sql */

#define SCHEMA_VERSION ((int)(sizeof(pgsql_migrations) / sizeof(pgsql_migrations[0])) - 1)

/* Seconds a connection attempt may take (a DSN's own connect_timeout wins): the storage thread
 * waits that long at most per attempt. */
#define CONNECT_TIMEOUT "5"
/* Milliseconds a write may stay unacknowledged before the kernel gives the connection up. */
#define TCP_USER_TIMEOUT_MS "30000"
/* Delay before the next attempt after a failed one: doubling from the first to the last. */
#define RECONNECT_FIRST_MS 100
#define RECONNECT_MAX_MS 5000
#define PARAMS_MAX 12 /* parameters of the widest statement (ACCOUNT_CREATE: 11) */

enum stmt_id {
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
    ST_ARCHIVE_MSG_FIRST,
    ST_ARCHIVE_MSG_OURS,
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

/* Archive reads: $1 user, $2 and $3 the exclusive bounds on seq (the paging position), $4 the
 * other party (the _WITH variants); the page reads take their limit last. */
#define ARCHIVE_FILTER "a.username = $1 AND a.seq > $2 AND a.seq < $3"
#define ARCHIVE_FILTER_WITH ARCHIVE_FILTER " AND a.with_jid = $4"
#define ARCHIVE_SELECT                                                                             \
    "SELECT a.seq, a.legacy_id, a.with_jid, a.outgoing, coalesce(a.stanza, m.stanza) "             \
    "FROM archive a JOIN archive_msg m ON m.seq = a.seq WHERE "

/* Log reads as an archive: $1 kind, $2 key, $3/$4 the time bounds, $5 author, $6 origin; the
 * page reads add $7/$8 the exclusive id bounds and $9 the limit. */
#define LOG_FILTER                                                                                 \
    "kind = $1 AND key = $2 AND stamp_ms BETWEEN $3 AND $4 AND "                                   \
    "($5::text IS NULL OR author = $5) AND ($6::text IS NULL OR origin = $6)"
#define LOG_SELECT "SELECT id, stamp_ms, xml, ref, author, origin FROM logs WHERE "

static const char *const stmt_sql[ST_COUNT] = {
    [ST_VERSION_GET] = "SELECT version FROM schema_version",
    [ST_VERSION_INSERT] = "INSERT INTO schema_version (version) VALUES ($1)",
    [ST_VERSION_UPDATE] = "UPDATE schema_version SET version = $1",
    [ST_ACCOUNT_GET] = "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE username = $1",
    [ST_ACCOUNT_CREATE] = "INSERT INTO accounts (" ACCOUNT_COLUMNS
                          ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    [ST_ACCOUNT_SET_SECRETS] = "UPDATE accounts SET sha1_salt = $2, sha1_iter = $3, "
                               "sha1_stored = $4, sha1_server = $5, sha256_salt = $6, "
                               "sha256_iter = $7, sha256_stored = $8, sha256_server = $9 "
                               "WHERE username = $1",
    [ST_ACCOUNT_SET_ADMIN] = "UPDATE accounts SET admin = $2 WHERE username = $1",
    [ST_ACCOUNT_SET_LOCKED] = "UPDATE accounts SET locked = $2 WHERE username = $1",
    [ST_ACCOUNT_DELETE] = "DELETE FROM accounts WHERE username = $1",
    [ST_ACCOUNT_LIST] = "SELECT " ACCOUNT_COLUMNS " FROM accounts ORDER BY username",
    /* LIKE is case-exact here; the pattern comes lowered, as the names are stored. */
    [ST_ACCOUNT_PAGE] = "SELECT " ACCOUNT_COLUMNS " FROM accounts WHERE username LIKE $1 ESCAPE "
                        "'\\' ORDER BY username LIMIT $2 OFFSET $3",
    [ST_ACCOUNT_MATCHES] = "SELECT count(*) FROM accounts WHERE username LIKE $1 ESCAPE '\\'",
    [ST_PROPERTY_GET] = "SELECT value FROM properties WHERE name = $1",
    [ST_PROPERTY_DELETE] = "DELETE FROM properties WHERE name = $1",
    [ST_PROPERTY_SET] = ("INSERT INTO properties (name, value) VALUES ($1, $2) "
                         "ON CONFLICT (name) DO UPDATE SET value = excluded.value"),
    [ST_ACCOUNT_EXISTS] = "SELECT 1 FROM accounts WHERE username = $1",
    [ST_STATE_GET] = "SELECT roster_ver, roster_deleted_ver, last_logout, last_status "
                     "FROM user_state WHERE username = $1",
    [ST_ROSTER_LIST] = "SELECT jid, name, subscription, ask, approved, ver FROM roster_items "
                       "WHERE username = $1 ORDER BY jid",
    [ST_GROUPS_LIST] = "SELECT jid, name FROM roster_groups WHERE username = $1 "
                       "ORDER BY jid, position",
    [ST_REQUEST_LIST] = "SELECT jid, stanza FROM sub_requests WHERE username = $1 ORDER BY jid",
    [ST_BLOCK_LIST] = "SELECT jid FROM blocklist WHERE username = $1 ORDER BY jid",
    [ST_ROSTER_PUT] = ("INSERT INTO roster_items (username, jid, name, subscription, ask, "
                       "approved, ver) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                       "ON CONFLICT (username, jid) DO UPDATE SET name = excluded.name, "
                       "subscription = excluded.subscription, ask = excluded.ask, "
                       "approved = excluded.approved, ver = excluded.ver"),
    [ST_GROUPS_CLEAR] = "DELETE FROM roster_groups WHERE username = $1 AND jid = $2",
    [ST_GROUP_ADD] = "INSERT INTO roster_groups (username, jid, position, name) "
                     "VALUES ($1, $2, $3, $4)",
    [ST_ROSTER_DELETE] = "DELETE FROM roster_items WHERE username = $1 AND jid = $2",
    [ST_STATE_ROSTER_VER] =
        ("INSERT INTO user_state (username, roster_ver) VALUES ($1, $2) "
         "ON CONFLICT (username) DO UPDATE SET roster_ver = excluded.roster_ver"),
    [ST_STATE_ROSTER_DELETED] = ("INSERT INTO user_state (username, roster_ver, "
                                 "roster_deleted_ver) VALUES ($1, $2, $2) "
                                 "ON CONFLICT (username) DO UPDATE SET "
                                 "roster_ver = excluded.roster_ver, "
                                 "roster_deleted_ver = excluded.roster_deleted_ver"),
    [ST_STATE_LAST] = ("INSERT INTO user_state (username, last_logout, last_status) "
                       "VALUES ($1, $2, $3) ON CONFLICT (username) DO UPDATE SET "
                       "last_logout = excluded.last_logout, last_status = excluded.last_status"),
    [ST_REQUEST_PUT] = ("INSERT INTO sub_requests (username, jid, stanza) VALUES ($1, $2, $3) "
                        "ON CONFLICT (username, jid) DO UPDATE SET stanza = excluded.stanza"),
    [ST_REQUEST_DELETE] = "DELETE FROM sub_requests WHERE username = $1 AND jid = $2",
    [ST_OFFLINE_COUNT] = "SELECT count(*) FROM offline_messages WHERE username = $1",
    [ST_OFFLINE_STORE] = "INSERT INTO offline_messages (username, stamp_ms, stanza) "
                         "VALUES ($1, $2, $3)",
    [ST_OFFLINE_FETCH] = "SELECT id, stamp_ms, stanza FROM offline_messages WHERE username = $1 "
                         "ORDER BY id",
    [ST_OFFLINE_DELETE] = "DELETE FROM offline_messages WHERE username = $1 AND id <= $2",
    /* A row for every account, xml NULL when it has no vCard: only a missing account is
     * ENOTFOUND. */
    [ST_VCARD_GET] = ("SELECT v.xml FROM accounts a LEFT JOIN vcards v ON v.username = a.username "
                      "WHERE a.username = $1"),
    [ST_VCARD_SET] = ("INSERT INTO vcards (username, xml) VALUES ($1, $2) "
                      "ON CONFLICT (username) DO UPDATE SET xml = excluded.xml"),
    [ST_VCARD_DELETE] = "DELETE FROM vcards WHERE username = $1",
    [ST_PRIVATE_GET] = "SELECT xml FROM private_xml WHERE username = $1 AND ns = $2",
    [ST_PRIVATE_SET] = ("INSERT INTO private_xml (username, ns, xml) VALUES ($1, $2, $3) "
                        "ON CONFLICT (username, ns) DO UPDATE SET xml = excluded.xml"),
    [ST_PRIVATE_DELETE] = "DELETE FROM private_xml WHERE username = $1 AND ns = $2",
    [ST_PRIVATE_TOTAL] = ("SELECT coalesce(sum(octet_length(ns) + octet_length(xml)), 0) "
                          "FROM private_xml WHERE username = $1 AND ns <> $2"),
    [ST_BLOCK_ADD] = ("INSERT INTO blocklist (username, jid) VALUES ($1, $2) "
                      "ON CONFLICT (username, jid) DO NOTHING"),
    [ST_BLOCK_REMOVE] = "DELETE FROM blocklist WHERE username = $1 AND jid = $2",
    [ST_BLOCK_CLEAR] = "DELETE FROM blocklist WHERE username = $1",
    [ST_ARCHIVE_MSG_PUT] = "INSERT INTO archive_msg (seq, stanza) VALUES ($1, $2) "
                           "ON CONFLICT (seq) DO NOTHING",
    [ST_ARCHIVE_MSG_SAME] = "SELECT (stanza = $2)::int FROM archive_msg WHERE seq = $1",
    /* A batch's shared texts before it (archive_texts_first): keys, texts, usernames as arrays;
     * in key order, for accounts that exist (of two texts under one key, the first in the batch,
     * as when each request inserts its own). Then which are stored as given (1-based). */
    [ST_ARCHIVE_MSG_FIRST] = "INSERT INTO archive_msg (seq, stanza) SELECT v.s, v.t "
                             "FROM unnest($1::bigint[], $2::text[], $3::text[]) WITH ORDINALITY "
                             "AS v(s, t, u, i) "
                             "WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.username = v.u) "
                             "ORDER BY v.s, v.i ON CONFLICT (seq) DO NOTHING",
    [ST_ARCHIVE_MSG_OURS] = "SELECT v.i FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY "
                            "AS v(s, t, i) JOIN archive_msg m ON m.seq = v.s AND m.stanza = v.t",
    [ST_ARCHIVE_STORE] =
        "INSERT INTO archive (username, seq, with_jid, outgoing, stanza, legacy_id) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
    [ST_ARCHIVE_SEQ] = "SELECT seq FROM archive WHERE username = $1 AND seq = $2",
    [ST_ARCHIVE_SEQ_LEGACY] = "SELECT seq FROM archive WHERE username = $1 AND legacy_id = $2",
    [ST_ARCHIVE_COUNT] = "SELECT count(*) FROM archive a WHERE " ARCHIVE_FILTER,
    [ST_ARCHIVE_COUNT_WITH] = "SELECT count(*) FROM archive a WHERE " ARCHIVE_FILTER_WITH,
    [ST_ARCHIVE_ASC] = ARCHIVE_SELECT ARCHIVE_FILTER " ORDER BY a.seq LIMIT $4",
    [ST_ARCHIVE_ASC_WITH] = ARCHIVE_SELECT ARCHIVE_FILTER_WITH " ORDER BY a.seq LIMIT $5",
    [ST_ARCHIVE_DESC] = ARCHIVE_SELECT ARCHIVE_FILTER " ORDER BY a.seq DESC LIMIT $4",
    [ST_ARCHIVE_DESC_WITH] = ARCHIVE_SELECT ARCHIVE_FILTER_WITH " ORDER BY a.seq DESC LIMIT $5",
    [ST_ARCHIVE_PURGE] = "DELETE FROM archive WHERE username IN (SELECT username FROM accounts) "
                         "AND seq < $1",
    [ST_ARCHIVE_MSG_PURGE] = "DELETE FROM archive_msg WHERE seq < $1",
    [ST_ARCHIVE_LAST] = "SELECT coalesce(max(seq), 0) FROM archive_msg",
    [ST_COUNT_OFFLINE] = "SELECT count(*) FROM offline_messages",
    [ST_COUNT_ARCHIVE] = "SELECT count(*) FROM archive",
    /* Before an account goes: its messages that no other archive holds. The only other row a
     * message can have is its other party's, whose username is the local part of with_jid
     * (none when with_jid has no '@'). */
    [ST_ARCHIVE_MSG_ORPHANS] =
        ("DELETE FROM archive_msg WHERE seq IN (SELECT a.seq FROM archive a WHERE "
         "a.username = $1 AND NOT EXISTS (SELECT 1 FROM archive b WHERE "
         "b.username = (CASE WHEN strpos(a.with_jid, '@') > 0 THEN "
         "substr(a.with_jid, 1, strpos(a.with_jid, '@') - 1) ELSE '' END) "
         "AND b.username <> $1 AND b.seq = a.seq))"),
    [ST_PREFS_GET] = "SELECT default_mode FROM archive_prefs WHERE username = $1",
    [ST_PREFS_JIDS] = "SELECT always, jid FROM archive_prefs_jids WHERE username = $1 "
                      "ORDER BY always, jid",
    [ST_PREFS_DELETE] = "DELETE FROM archive_prefs WHERE username = $1",
    [ST_PREFS_PUT] = "INSERT INTO archive_prefs (username, default_mode) VALUES ($1, $2)",
    [ST_PREFS_JID_ADD] = ("INSERT INTO archive_prefs_jids (username, always, jid) "
                          "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"),
    [ST_DOC_PUT] = ("INSERT INTO documents (kind, key, xml) VALUES ($1, $2, $3) "
                    "ON CONFLICT (kind, key) DO UPDATE SET xml = excluded.xml"),
    [ST_DOC_GET] = "SELECT xml FROM documents WHERE kind = $1 AND key = $2",
    [ST_DOC_DELETE] = "DELETE FROM documents WHERE kind = $1 AND key = $2",
    [ST_DOC_LIST] = "SELECT key, xml FROM documents WHERE kind = $1 ORDER BY key",
    [ST_PRIVATE_LIST] = "SELECT ns, xml FROM private_xml WHERE username = $1 ORDER BY ns",
    [ST_LOG_APPEND] = "INSERT INTO logs (kind, key, stamp_ms, xml) VALUES ($1, $2, $3, $4)",
    [ST_LOG_FETCH] = ("SELECT id, stamp_ms, xml, ref, author, origin FROM logs WHERE kind = $1 "
                      "AND key = $2 AND stamp_ms >= $3 ORDER BY id DESC LIMIT $4"),
    [ST_LOG_DELETE] = "DELETE FROM logs WHERE kind = $1 AND key = $2",
    [ST_LOG_APPEND_ENTRY] = ("INSERT INTO logs (kind, key, stamp_ms, xml, ref, author, origin) "
                             "VALUES ($1, $2, $3, $4, $5, $6, $7)"),
    [ST_LOG_ID] = "SELECT id FROM logs WHERE kind = $1 AND key = $2 AND ref = $3",
    [ST_LOG_GET] = (LOG_SELECT "kind = $1 AND key = $2 AND ref = $3"),
    [ST_LOG_REPLACE] = "UPDATE logs SET xml = $4 WHERE kind = $1 AND key = $2 AND ref = $3",
    [ST_LOG_COUNT] = "SELECT count(*) FROM logs WHERE " LOG_FILTER,
    [ST_LOG_ASC] = LOG_SELECT LOG_FILTER " AND id > $7 AND id < $8 ORDER BY id LIMIT $9",
    [ST_LOG_DESC] = LOG_SELECT LOG_FILTER " AND id > $7 AND id < $8 ORDER BY id DESC LIMIT $9",
    [ST_MUC_AFFS_CLEAR] = "DELETE FROM muc_affiliations WHERE room = $1",
    /* account: NULL unless that account exists (a grant to a name nobody holds yet is kept, and
     * not taken over by whoever registers the name later). */
    [ST_MUC_AFF_INSERT] = ("INSERT INTO muc_affiliations (room, jid, affiliation, nick, reason, "
                           "account) VALUES ($1, $2, $3, $4, $5, "
                           "(SELECT username FROM accounts WHERE username = $6))"),
    [ST_MUC_AFFS_GET] = ("SELECT jid, affiliation, nick, reason FROM muc_affiliations "
                         "WHERE room = $1 ORDER BY jid"),
    [ST_MUC_OWNED] = ("SELECT count(*) FROM muc_affiliations WHERE jid = $1 AND "
                      "affiliation = 'owner'"),
    [ST_PS_NODES] = "SELECT node, config FROM pubsub_nodes WHERE service = $1 ORDER BY node",
    [ST_PS_ITEMS_META] = ("SELECT node, id, publisher, stamp_ms, octet_length(payload) "
                          "FROM pubsub_items WHERE service = $1 ORDER BY node, seq"),
    [ST_PS_LAST_PAYLOADS] = ("SELECT node, payload FROM pubsub_items WHERE seq IN "
                             "(SELECT max(seq) FROM pubsub_items WHERE service = $1 GROUP BY node) "
                             "AND octet_length(payload) <= $2 ORDER BY node"),
    [ST_PS_AFFS] = ("SELECT node, jid, affiliation FROM pubsub_affiliations WHERE service = $1 "
                    "ORDER BY node, jid"),
    [ST_PS_NODE_PUT] = ("INSERT INTO pubsub_nodes (service, node, account, config) "
                        "VALUES ($1, $2, $3, $4) ON CONFLICT (service, node) DO UPDATE SET "
                        "config = excluded.config"),
    [ST_PS_NODE_DELETE] = "DELETE FROM pubsub_nodes WHERE service = $1 AND node = $2",
    [ST_PS_ITEM_DELETE] = "DELETE FROM pubsub_items WHERE service = $1 AND node = $2 AND id = $3",
    [ST_PS_ITEM_INSERT] = ("INSERT INTO pubsub_items (service, node, id, publisher, stamp_ms, "
                           "payload) VALUES ($1, $2, $3, $4, $5, $6)"),
    [ST_PS_TRIM] = ("DELETE FROM pubsub_items WHERE service = $1 AND node = $2 AND seq NOT IN "
                    "(SELECT seq FROM pubsub_items WHERE service = $1 AND node = $2 "
                    "ORDER BY seq DESC LIMIT $3)"),
    [ST_PS_PURGE] = "DELETE FROM pubsub_items WHERE service = $1 AND node = $2",
    [ST_PS_ITEMS_ALL] = ("SELECT id, publisher, stamp_ms, payload FROM pubsub_items "
                         "WHERE service = $1 AND node = $2 ORDER BY seq"),
    [ST_PS_ITEMS_NEWEST] = ("SELECT id, publisher, stamp_ms, payload FROM (SELECT * FROM "
                            "pubsub_items WHERE service = $1 AND node = $2 ORDER BY seq DESC "
                            "LIMIT $3) AS newest ORDER BY seq"),
    [ST_PS_ITEM_GET] = ("SELECT id, publisher, stamp_ms, payload, seq FROM pubsub_items "
                        "WHERE service = $1 AND node = $2 AND id = $3"),
    [ST_PS_AFF_PUT] = ("INSERT INTO pubsub_affiliations (service, node, jid, affiliation, account) "
                       "VALUES ($1, $2, $3, $4, (SELECT username FROM accounts WHERE username = "
                       "$5)) ON CONFLICT (service, node, jid) DO UPDATE SET "
                       "affiliation = excluded.affiliation, account = excluded.account"),
    [ST_PS_AFF_DELETE] = ("DELETE FROM pubsub_affiliations WHERE service = $1 AND node = $2 AND "
                          "jid = $3"),
};

typedef struct pg_conn {
    char *dsn;
    PGconn *pg;              /* NULL: lost (or never reached since the last failure) */
    bool prepared[ST_COUNT]; /* on this connection (a new one starts with none) */
    int64_t retry_at_ms;     /* monotonic: no attempt to reconnect before */
    int64_t retry_delay_ms;  /* 0 after a success */
    _Atomic uint64_t commits;
} pg_conn_t;

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

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- parameters and statements ---- */

/* One statement's parameters: text (or SQL NULL), or bytes sent in binary (bytea). Numbers are
 * written into the struct's own buffers. */
typedef struct params {
    int n;
    const char *v[PARAMS_MAX];
    int len[PARAMS_MAX];
    int fmt[PARAMS_MAX];
    char num[PARAMS_MAX][24];
} params_t;

static void p_text(params_t *p, const char *s) /* NULL: SQL NULL */
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n] = 0;
    p->n++;
}

static void p_int(params_t *p, int64_t x)
{
    snprintf(p->num[p->n], sizeof(p->num[p->n]), "%" PRId64, x);
    p_text(p, p->num[p->n]);
}

static void p_size(params_t *p, size_t x)
{
    p_int(p, x > INT64_MAX ? INT64_MAX : (int64_t)x);
}

static void p_bytes(params_t *p, const char *b, size_t len)
{
    p->v[p->n] = b;
    p->len[p->n] = (int)len;
    p->fmt[p->n] = 1;
    p->n++;
}

/* The request's error for a failed result: ENOTFOUND for a foreign key (a row naming what is
 * not there), EEXISTS for a unique key, else ESTORAGE (the connection lost among them). */
static int err_of(const PGresult *res)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (state != NULL && strcmp(state, "23503") == 0)
        return HEARTH_ENOTFOUND;
    if (state != NULL && strcmp(state, "23505") == 0)
        return HEARTH_EEXISTS;
    return HEARTH_ESTORAGE;
}

/* Runs statement id with p: 0 and *out (the caller PQclears it) or the error (*out NULL). Prepared
 * on this connection on first use. */
static int exec(pg_conn_t *c, enum stmt_id id, const params_t *p, PGresult **out)
{
    *out = NULL;
    char name[16];
    snprintf(name, sizeof(name), "h%d", (int)id);
    if (!c->prepared[id]) {
        PGresult *res = PQprepare(c->pg, name, stmt_sql[id], 0, NULL);
        bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        PQclear(res);
        if (!ok)
            return HEARTH_ESTORAGE;
        c->prepared[id] = true;
    }
    PGresult *res = PQexecPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                   p ? p->fmt : NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int err = err_of(res);
        PQclear(res);
        return err;
    }
    *out = res;
    return 0;
}

/* A write: 0 or the error; *changes (unless NULL) the rows it changed. */
static int write_stmt(pg_conn_t *c, enum stmt_id id, const params_t *p, int64_t *changes)
{
    PGresult *res;
    int err = exec(c, id, p, &res);
    if (err == 0 && changes != NULL)
        *changes = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return err;
}

/* A write of $1 (and $2 unless NULL). */
static int user_write(pg_conn_t *c, enum stmt_id id, const char *first, const char *second,
                      int64_t *changes)
{
    params_t p = {0};
    p_text(&p, first);
    if (second != NULL)
        p_text(&p, second);
    return write_stmt(c, id, &p, changes);
}

/* A read of $1 (and $2 unless NULL). */
static int user_read(pg_conn_t *c, enum stmt_id id, const char *first, const char *second,
                     PGresult **out)
{
    params_t p = {0};
    p_text(&p, first);
    if (second != NULL)
        p_text(&p, second);
    return exec(c, id, &p, out);
}

/* A single number (the first column of the first row; 0 when there is no row). */
static int64_t cell_int(const PGresult *res, int row, int col)
{
    if (row >= PQntuples(res) || PQgetisnull(res, row, col))
        return 0;
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* A text cell, NULL when SQL NULL; malloc'd. */
static int cell_dup(const PGresult *res, int row, int col, char **out)
{
    *out = NULL;
    if (PQgetisnull(res, row, col))
        return 0;
    size_t len = (size_t)PQgetlength(res, row, col);
    *out = malloc(len + 1);
    if (*out == NULL)
        return HEARTH_ENOMEM;
    memcpy(*out, PQgetvalue(res, row, col), len);
    (*out)[len] = '\0';
    return 0;
}

/* A NOT NULL text cell: NULL would not be ours. */
static int cell_dup_req(const PGresult *res, int row, int col, char **out)
{
    int err = cell_dup(res, row, col, out);
    return err == 0 && *out == NULL ? HEARTH_ESTORAGE : err;
}

/* A single-number query's answer. */
static int read_int(pg_conn_t *c, enum stmt_id id, const params_t *p, int64_t *v)
{
    PGresult *res;
    int err = exec(c, id, p, &res);
    if (err == 0)
        *v = cell_int(res, 0, 0);
    PQclear(res);
    return err;
}

/* ---- accounts and properties ---- */

static void p_text_or_null(params_t *p, const char *text)
{
    p_text(p, text[0] == '\0' ? NULL : text);
}

static void p_secret(params_t *p, const hearth_scram_secret_t *sec)
{
    p_text_or_null(p, sec->salt);
    if (sec->iterations == 0)
        p_text(p, NULL);
    else
        p_int(p, sec->iterations);
    p_text_or_null(p, sec->stored_key);
    p_text_or_null(p, sec->server_key);
}

static int cell_fixed(const PGresult *res, int row, int col, char *dst, size_t size)
{
    dst[0] = '\0';
    if (PQgetisnull(res, row, col))
        return 0;
    size_t len = (size_t)PQgetlength(res, row, col);
    if (len >= size)
        return HEARTH_ESTORAGE; /* longer than any secret we write: not ours */
    memcpy(dst, PQgetvalue(res, row, col), len);
    dst[len] = '\0';
    return 0;
}

static int cell_secret(const PGresult *res, int row, int col, hearth_scram_secret_t *sec)
{
    int64_t iter = cell_int(res, row, col + 1);
    if (iter < 0 || iter > UINT_MAX)
        return HEARTH_ESTORAGE;
    sec->iterations = (unsigned)iter;
    int err = cell_fixed(res, row, col, sec->salt, sizeof(sec->salt));
    err = err ?: cell_fixed(res, row, col + 2, sec->stored_key, sizeof(sec->stored_key));
    return err ?: cell_fixed(res, row, col + 3, sec->server_key, sizeof(sec->server_key));
}

/* A row of ACCOUNT_COLUMNS into a (cleared on failure). */
static int cell_account(const PGresult *res, int row, storage_account_t *a)
{
    memset(a, 0, sizeof(*a));
    int err = cell_dup_req(res, row, 0, &a->username);
    if (err == 0) {
        a->admin = cell_int(res, row, 1) != 0;
        err = cell_secret(res, row, 2, &a->sha1);
        err = err ?: cell_secret(res, row, 6, &a->sha256);
        a->created_at = cell_int(res, row, 10);
        a->locked = cell_int(res, row, 11) != 0;
    }
    if (err != 0)
        storage_account_clear(a);
    return err;
}

static int account_get(pg_conn_t *c, storage_req_t *r)
{
    PGresult *res;
    int err = user_read(c, ST_ACCOUNT_GET, r->acct.username, NULL, &res);
    if (err == 0)
        err = PQntuples(res) == 0 ? HEARTH_ENOTFOUND : cell_account(res, 0, &r->result);
    PQclear(res);
    return err;
}

static int account_create(pg_conn_t *c, storage_req_t *r)
{
    const storage_account_t *a = &r->acct;
    params_t p = {0};
    p_text(&p, a->username);
    p_int(&p, a->admin ? 1 : 0);
    p_secret(&p, &a->sha1);
    p_secret(&p, &a->sha256);
    p_int(&p, a->created_at != 0 ? a->created_at : (int64_t)time(NULL));
    p_int(&p, a->locked ? 1 : 0);
    return write_stmt(c, ST_ACCOUNT_CREATE, &p, NULL);
}

/* A write that names one account: ENOTFOUND when it touched no row. */
static int account_write(pg_conn_t *c, enum stmt_id id, const params_t *p)
{
    int64_t changed = 0;
    int err = write_stmt(c, id, p, &changed);
    return err == 0 && changed == 0 ? HEARTH_ENOTFOUND : err;
}

static int account_set_secrets(pg_conn_t *c, storage_req_t *r)
{
    params_t p = {0};
    p_text(&p, r->acct.username);
    p_secret(&p, &r->acct.sha1);
    p_secret(&p, &r->acct.sha256);
    return account_write(c, ST_ACCOUNT_SET_SECRETS, &p);
}

/* SET_ADMIN or SET_LOCKED: one flag of the account. */
static int account_set_flag(pg_conn_t *c, storage_req_t *r, enum stmt_id id, int value)
{
    params_t p = {0};
    p_text(&p, r->acct.username);
    p_int(&p, value ? 1 : 0);
    return account_write(c, id, &p);
}

static int account_delete(pg_conn_t *c, storage_req_t *r)
{
    /* Its archive rows go with it (foreign key); the messages only it held go first. */
    int err = user_write(c, ST_ARCHIVE_MSG_ORPHANS, r->acct.username, NULL, NULL);
    if (err != 0)
        return err;
    params_t p = {0};
    p_text(&p, r->acct.username);
    return account_write(c, ST_ACCOUNT_DELETE, &p);
}

/* The accounts of a result into r->list; clears res. */
static int account_rows(PGresult *res, storage_req_t *r)
{
    int err = 0;
    int rows = PQntuples(res);
    if (rows > 0 && (r->list = calloc((size_t)rows, sizeof(*r->list))) == NULL)
        err = HEARTH_ENOMEM;
    for (int i = 0; err == 0 && i < rows; i++) {
        err = cell_account(res, i, &r->list[i]);
        if (err == 0)
            r->list_n++;
    }
    PQclear(res);
    return err; /* on error the caller clears what was read */
}

static int account_list(pg_conn_t *c, storage_req_t *r)
{
    PGresult *res;
    int err = exec(c, ST_ACCOUNT_LIST, NULL, &res);
    return err != 0 ? err : account_rows(res, r);
}

static int account_page(pg_conn_t *c, storage_req_t *r)
{
    PGresult *res;
    params_t p = {0};
    p_text(&p, r->name);
    int err = exec(c, ST_ACCOUNT_MATCHES, &p, &res);
    if (err != 0)
        return err;
    r->num2 = cell_int(res, 0, 0);
    PQclear(res);
    p_int(&p, (int64_t)r->limit);
    p_int(&p, r->num);
    err = exec(c, ST_ACCOUNT_PAGE, &p, &res);
    return err != 0 ? err : account_rows(res, r);
}

static int property_get(pg_conn_t *c, storage_req_t *r)
{
    PGresult *res;
    int err = user_read(c, ST_PROPERTY_GET, r->name, NULL, &res);
    if (err == 0)
        err = PQntuples(res) == 0 ? HEARTH_ENOTFOUND : cell_dup_req(res, 0, 0, &r->value);
    PQclear(res);
    return err;
}

static int property_set(pg_conn_t *c, storage_req_t *r)
{
    /* No value: the property goes (a runtime setting back to the file's or the default). */
    return user_write(c, r->value ? ST_PROPERTY_SET : ST_PROPERTY_DELETE, r->name, r->value, NULL);
}

/* ---- IM records (migration 2) ---- */

/* 0 when the account exists, HEARTH_ENOTFOUND when not, or the error. */
static int account_exists(pg_conn_t *c, const char *username)
{
    PGresult *res;
    int err = user_read(c, ST_ACCOUNT_EXISTS, username, NULL, &res);
    if (err == 0 && PQntuples(res) == 0)
        err = HEARTH_ENOTFOUND;
    PQclear(res);
    return err;
}

/* Room for rows elements of size, zeroed (NULL when rows is 0). */
static int alloc_rows(void **out, int rows, size_t size)
{
    *out = NULL;
    if (rows <= 0)
        return 0;
    *out = calloc((size_t)rows, size);
    return *out != NULL ? 0 : HEARTH_ENOMEM;
}

static int load_state(pg_conn_t *c, const char *username, storage_user_t *u)
{
    PGresult *res;
    int err = user_read(c, ST_STATE_GET, username, NULL, &res);
    if (err == 0 && PQntuples(res) > 0) {
        u->roster_ver = cell_int(res, 0, 0);
        u->roster_deleted_ver = cell_int(res, 0, 1);
        u->last_logout = cell_int(res, 0, 2);
        err = cell_dup(res, 0, 3, &u->last_status);
    }
    PQclear(res);
    return err;
}

static int load_items(pg_conn_t *c, const char *username, storage_user_t *u)
{
    PGresult *res;
    int err = user_read(c, ST_ROSTER_LIST, username, NULL, &res);
    if (err == 0)
        err = alloc_rows((void **)&u->items, PQntuples(res), sizeof(*u->items));
    for (int i = 0; err == 0 && i < PQntuples(res); i++) {
        storage_roster_item_t *it = &u->items[u->nitems++]; /* counted now: clearing frees it */
        it->subscription = (int)cell_int(res, i, 2);
        it->ask = cell_int(res, i, 3) != 0;
        it->approved = cell_int(res, i, 4) != 0;
        it->ver = cell_int(res, i, 5);
        err = cell_dup_req(res, i, 0, &it->jid);
        err = err ?: cell_dup(res, i, 1, &it->name);
    }
    PQclear(res);
    return err;
}

/* Groups come ordered by jid like the items (COLLATE "C": strcmp's order): one merging pass. */
static int load_groups(pg_conn_t *c, const char *username, storage_user_t *u)
{
    PGresult *res;
    int err = user_read(c, ST_GROUPS_LIST, username, NULL, &res);
    size_t i = 0;
    for (int row = 0; err == 0 && row < PQntuples(res); row++) {
        const char *jid = PQgetvalue(res, row, 0);
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
        err = cell_dup_req(res, row, 1, &groups[it->ngroups]);
        if (err == 0)
            it->ngroups++;
    }
    PQclear(res);
    return err;
}

static int load_requests(pg_conn_t *c, const char *username, storage_user_t *u)
{
    PGresult *res;
    int err = user_read(c, ST_REQUEST_LIST, username, NULL, &res);
    if (err == 0)
        err = alloc_rows((void **)&u->requests, PQntuples(res), sizeof(*u->requests));
    for (int i = 0; err == 0 && i < PQntuples(res); i++) {
        storage_sub_request_t *q = &u->requests[u->nrequests++];
        err = cell_dup_req(res, i, 0, &q->jid);
        err = err ?: cell_dup_req(res, i, 1, &q->stanza);
    }
    PQclear(res);
    return err;
}

/* One text column of every row into *v (n of them). */
static int load_strings(PGresult *res, int col, char ***v, size_t *n)
{
    int err = alloc_rows((void **)v, PQntuples(res), sizeof(**v));
    for (int i = 0; err == 0 && i < PQntuples(res); i++) {
        (*n)++;
        err = cell_dup_req(res, i, col, &(*v)[i]);
    }
    return err;
}

static int load_blocked(pg_conn_t *c, const char *username, storage_user_t *u)
{
    PGresult *res;
    int err = user_read(c, ST_BLOCK_LIST, username, NULL, &res);
    if (err == 0)
        err = load_strings(res, 0, &u->blocked, &u->nblocked);
    PQclear(res);
    return err;
}

/* All of it read in the batch's transaction: one consistent picture. */
static int user_load(pg_conn_t *c, storage_req_t *r)
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
    err = err ?: load_items(c, username, u);
    err = err ?: load_groups(c, username, u);
    err = err ?: load_requests(c, username, u);
    return err ?: load_blocked(c, username, u); /* on error the caller clears what was read */
}

/* user_state: $1 username, $2 the version or stamp, $3 (LAST) the status. */
static int state_write(pg_conn_t *c, enum stmt_id id, const char *username, int64_t num,
                       const char *status)
{
    params_t p = {0};
    p_text(&p, username);
    p_int(&p, num);
    if (id == ST_STATE_LAST)
        p_text(&p, status);
    return write_stmt(c, id, &p, NULL);
}

static int roster_put(pg_conn_t *c, storage_req_t *r)
{
    const char *username = r->acct.username;
    const storage_roster_item_t *it = &r->item;
    int err = account_exists(c, username);
    if (err != 0)
        return err;
    params_t p = {0};
    p_text(&p, username);
    p_text(&p, it->jid);
    p_text(&p, it->name);
    p_int(&p, it->subscription);
    p_int(&p, it->ask ? 1 : 0);
    p_int(&p, it->approved ? 1 : 0);
    p_int(&p, r->num);
    err = write_stmt(c, ST_ROSTER_PUT, &p, NULL);
    err = err ?: user_write(c, ST_GROUPS_CLEAR, username, it->jid, NULL);
    for (size_t i = 0; err == 0 && i < it->ngroups; i++) {
        params_t g = {0};
        p_text(&g, username);
        p_text(&g, it->jid);
        p_size(&g, i);
        p_text(&g, it->groups[i]);
        err = write_stmt(c, ST_GROUP_ADD, &g, NULL);
    }
    return err ?: state_write(c, ST_STATE_ROSTER_VER, username, r->num, NULL);
}

static int roster_delete(pg_conn_t *c, storage_req_t *r)
{
    int64_t changed = 0;
    int err = user_write(c, ST_ROSTER_DELETE, r->acct.username, r->item.jid, &changed);
    if (err == 0 && changed == 0)
        err = HEARTH_ENOTFOUND;
    return err ?: state_write(c, ST_STATE_ROSTER_DELETED, r->acct.username, r->num, NULL);
}

static int request_put(pg_conn_t *c, storage_req_t *r)
{
    int err = account_exists(c, r->acct.username);
    if (err != 0)
        return err;
    params_t p = {0};
    p_text(&p, r->acct.username);
    p_text(&p, r->item.jid);
    p_text(&p, r->blob);
    return write_stmt(c, ST_REQUEST_PUT, &p, NULL);
}

static int offline_count(pg_conn_t *c, const char *username, size_t *n)
{
    params_t p = {0};
    p_text(&p, username);
    int64_t v = 0;
    int err = read_int(c, ST_OFFLINE_COUNT, &p, &v);
    *n = (size_t)v;
    return err;
}

static int offline_count_op(pg_conn_t *c, storage_req_t *r)
{
    int err = account_exists(c, r->acct.username);
    return err ?: offline_count(c, r->acct.username, &r->msgs_n);
}

/* Counted and stored in one savepoint: no other request runs in between. */
static int offline_store(pg_conn_t *c, storage_req_t *r)
{
    size_t n = 0;
    int err = account_exists(c, r->acct.username);
    err = err ?: offline_count(c, r->acct.username, &n);
    if (err != 0)
        return err;
    if (n >= r->quota)
        return HEARTH_ELIMIT;
    params_t p = {0};
    p_text(&p, r->acct.username);
    p_int(&p, r->num);
    p_bytes(&p, r->blob, r->blob_len);
    return write_stmt(c, ST_OFFLINE_STORE, &p, NULL);
}

static int offline_fetch(pg_conn_t *c, storage_req_t *r)
{
    PGresult *res;
    int err = user_read(c, ST_OFFLINE_FETCH, r->acct.username, NULL, &res);
    if (err == 0)
        err = alloc_rows((void **)&r->msgs, PQntuples(res), sizeof(*r->msgs));
    for (int i = 0; err == 0 && i < PQntuples(res); i++) {
        storage_offline_msg_t *m = &r->msgs[r->msgs_n++];
        m->id = cell_int(res, i, 0);
        m->stamp_ms = cell_int(res, i, 1);
        /* bytea in text form ("\x..."): decoded here. */
        size_t len = 0;
        unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, i, 2), &len);
        if (raw == NULL) {
            err = HEARTH_ENOMEM;
            break;
        }
        m->stanza = malloc(len + 1);
        if (m->stanza != NULL) {
            memcpy(m->stanza, raw, len);
            m->stanza[len] = '\0';
            m->len = len;
        } else {
            err = HEARTH_ENOMEM;
        }
        PQfreemem(raw);
    }
    PQclear(res);
    return err;
}

static int offline_delete(pg_conn_t *c, storage_req_t *r)
{
    params_t p = {0};
    p_text(&p, r->acct.username);
    p_int(&p, r->num);
    return write_stmt(c, ST_OFFLINE_DELETE, &p, NULL);
}

/* VCARD_GET ($1 username) or PRIVATE_GET ($1 username, $2 ns = r->name). */
static int blob_get(pg_conn_t *c, storage_req_t *r, enum stmt_id id)
{
    PGresult *res;
    int err = user_read(c, id, r->acct.username, id == ST_PRIVATE_GET ? r->name : NULL, &res);
    if (err == 0 && PQntuples(res) == 0)
        err = HEARTH_ENOTFOUND;
    else if (err == 0)
        err =
            id == ST_VCARD_GET ? cell_dup(res, 0, 0, &r->blob) : cell_dup_req(res, 0, 0, &r->blob);
    PQclear(res);
    return err;
}

/* VCARD_SET/DELETE ($1 username, $2 xml) or PRIVATE_SET/DELETE ($1 username, $2 ns, $3 xml). */
static int blob_set(pg_conn_t *c, storage_req_t *r, enum stmt_id id)
{
    bool priv = id == ST_PRIVATE_SET || id == ST_PRIVATE_DELETE;
    if (r->blob != NULL) {
        int err = account_exists(c, r->acct.username);
        if (err != 0)
            return err;
    }
    if (priv && r->blob != NULL && r->num > 0) {
        /* The account's other namespaces and this one together, in the same transaction. */
        params_t t = {0};
        p_text(&t, r->acct.username);
        p_text(&t, r->name);
        int64_t others = 0;
        int err = read_int(c, ST_PRIVATE_TOTAL, &t, &others);
        if (err != 0)
            return err;
        if (others + (int64_t)strlen(r->name) + (int64_t)strlen(r->blob) > r->num)
            return HEARTH_ELIMIT;
    }
    params_t p = {0};
    p_text(&p, r->acct.username);
    if (priv)
        p_text(&p, r->name);
    if (r->blob != NULL)
        p_text(&p, r->blob);
    return write_stmt(c, id, &p, NULL);
}

static int block_add(pg_conn_t *c, storage_req_t *r)
{
    int err = account_exists(c, r->acct.username);
    for (size_t i = 0; err == 0 && i < r->njids; i++)
        err = user_write(c, ST_BLOCK_ADD, r->acct.username, r->jids[i], NULL);
    return err;
}

static int block_remove(pg_conn_t *c, storage_req_t *r)
{
    if (r->njids == 0)
        return user_write(c, ST_BLOCK_CLEAR, r->acct.username, NULL, NULL);
    int err = 0;
    for (size_t i = 0; err == 0 && i < r->njids; i++)
        err = user_write(c, ST_BLOCK_REMOVE, r->acct.username, r->jids[i], NULL);
    return err;
}

static int last_set(pg_conn_t *c, storage_req_t *r)
{
    int err = account_exists(c, r->acct.username);
    return err ?: state_write(c, ST_STATE_LAST, r->acct.username, r->num, r->value);
}

/* ---- message archive, documents and logs (migrations 3, 7, 8) ---- */

/* The archive_msg row under key with r's stanza: 0 when this put it there, 1 when a row was
 * there already, or the error. */
static int archive_msg_insert(pg_conn_t *c, storage_req_t *r, int64_t key)
{
    params_t p = {0};
    p_int(&p, key);
    p_text(&p, r->blob); /* NUL-terminated by storage.c */
    int64_t changed = 0;
    int err = write_stmt(c, ST_ARCHIVE_MSG_PUT, &p, &changed);
    return err != 0 ? err : changed > 0 ? 0 : 1;
}

/* A key for a message stored under an id of another form: from its stamp, on the storage's own
 * generator, the first of that millisecond's free. */
static int archive_key_given(pg_conn_t *c, storage_req_t *r, int64_t *key)
{
    int64_t k = storage_archive_key_of_ms(r->msg.stamp_ms) |
                ((int64_t)STORAGE_ARCHIVE_GEN_STORAGE << STORAGE_ARCHIVE_GEN_SHIFT);
    for (int tries = 0; tries <= STORAGE_ARCHIVE_COUNTER_MAX; tries++, k++) {
        int rc = archive_msg_insert(c, r, k);
        if (rc <= 0) {
            *key = k;
            return rc;
        }
    }
    return HEARTH_ELIMIT;
}

/* The message under key, stored once: 0 when archive_msg holds it now, EEXISTS when it held
 * another text under that key (the other party's copy in another form), or the error. */
static int archive_msg_put(pg_conn_t *c, storage_req_t *r, int64_t key)
{
    int rc = archive_msg_insert(c, r, key);
    if (rc <= 0)
        return rc;
    params_t p = {0};
    p_int(&p, key);
    p_text(&p, r->blob);
    int64_t same = 0;
    int err = read_int(c, ST_ARCHIVE_MSG_SAME, &p, &same);
    return err != 0 ? err : same ? 0 : HEARTH_EEXISTS;
}

/* A message for one party: the shared text under its key (or the party's own copy when the
 * key's text differs), then the party's row. The account is checked by the foreign key. */
static int archive_store(pg_conn_t *c, storage_req_t *r)
{
    int64_t key = 0;
    bool legacy = storage_archive_key_parse(r->msg.id, &key) != 0;
    bool own_copy = false;
    int err;
    if (r->msg_stored) {
        err = 0; /* the shared text went in before the batch (archive_texts_first) */
    } else if (legacy) {
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
    params_t p = {0};
    p_text(&p, r->acct.username);
    p_int(&p, key);
    p_text(&p, r->msg.with);
    p_int(&p, r->msg.outgoing ? 1 : 0);
    p_text(&p, own_copy ? r->blob : NULL);
    p_text(&p, legacy ? r->msg.id : NULL);
    /* No account (ENOTFOUND), or the party's archive holds the key or the id already (EEXISTS):
     * the savepoint undoes the shared row. */
    return write_stmt(c, ST_ARCHIVE_STORE, &p, NULL);
}

/* The key of the user's archive item id: ENOTFOUND when there is none. */
static int archive_seq(pg_conn_t *c, const char *username, const char *id, int64_t *seq)
{
    int64_t key;
    bool legacy = storage_archive_key_parse(id, &key) != 0;
    params_t p = {0};
    p_text(&p, username);
    if (legacy)
        p_text(&p, id);
    else
        p_int(&p, key);
    PGresult *res;
    int err = exec(c, legacy ? ST_ARCHIVE_SEQ_LEGACY : ST_ARCHIVE_SEQ, &p, &res);
    if (err == 0 && PQntuples(res) == 0)
        err = HEARTH_ENOTFOUND;
    else if (err == 0)
        *seq = cell_int(res, 0, 0);
    PQclear(res);
    return err;
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

/* An archive read's parameters: user, bounds (narrowed to the time bounds), with, and the
 * limit unless negative. */
static void archive_params(params_t *p, const storage_req_t *r, int64_t lo, int64_t hi,
                           int64_t limit)
{
    archive_time_bounds(r, &lo, &hi);
    p_text(p, r->acct.username);
    p_int(p, lo);
    p_int(p, hi);
    if (r->msg.with != NULL)
        p_text(p, r->msg.with);
    if (limit >= 0)
        p_int(p, limit);
}

/* The page: up to max items past the paging position in the paging direction, read with one
 * more to tell whether the page is the last one in that direction. */
static int archive_query(pg_conn_t *c, storage_req_t *r)
{
    const char *user = r->acct.username;
    const char *after = r->msg.id, *before = r->name;
    int64_t lo = 0, hi = INT64_MAX;
    bool with = r->msg.with != NULL;
    int err = 0;
    if (after != NULL)
        err = archive_seq(c, user, after, &lo);
    if (err == 0 && before != NULL && before[0] != '\0')
        err = archive_seq(c, user, before, &hi);
    if (err != 0)
        return err;
    params_t cp = {0};
    archive_params(&cp, r, 0, INT64_MAX, -1);
    int64_t count = 0;
    err = read_int(c, with ? ST_ARCHIVE_COUNT_WITH : ST_ARCHIVE_COUNT, &cp, &count);
    if (err != 0)
        return err;
    r->page.count = (size_t)count;

    bool backward = before != NULL && after == NULL;
    enum stmt_id id = backward ? (with ? ST_ARCHIVE_DESC_WITH : ST_ARCHIVE_DESC)
                               : (with ? ST_ARCHIVE_ASC_WITH : ST_ARCHIVE_ASC);
    params_t p = {0};
    archive_params(&p, r, lo, hi, (int64_t)r->limit + 1);
    PGresult *res;
    err = exec(c, id, &p, &res);
    if (err != 0)
        return err;
    int rows = PQntuples(res);
    err = alloc_rows((void **)&r->amsgs, rows, sizeof(*r->amsgs));
    size_t bytes = 0;
    r->page.complete = 1;
    for (int i = 0; err == 0 && i < rows; i++) {
        size_t len = (size_t)PQgetlength(res, i, 4);
        if (r->amsgs_n == r->limit ||
            (r->limit_bytes && r->amsgs_n > 0 && bytes + len > r->limit_bytes)) {
            r->page.complete = 0; /* one more beyond the page */
            break;
        }
        bytes += len;
        storage_archive_msg_t *m = &r->amsgs[r->amsgs_n++];
        int64_t key = cell_int(res, i, 0);
        m->stamp_ms = storage_archive_ms_of_key(key);
        m->outgoing = cell_int(res, i, 3) != 0;
        if (PQgetisnull(res, i, 1)) {
            char text[24];
            snprintf(text, sizeof(text), "%" PRId64, key);
            if ((m->id = strdup(text)) == NULL)
                err = HEARTH_ENOMEM;
        } else {
            err = cell_dup_req(res, i, 1, &m->id);
        }
        err = err ?: cell_dup_req(res, i, 2, &m->with);
        err = err ?: cell_dup_req(res, i, 4, &m->stanza);
        m->len = len;
    }
    PQclear(res);
    if (err == 0 && backward) {
        for (size_t i = 0, j = r->amsgs_n; i + 1 < j; i++, j--) {
            storage_archive_msg_t tmp = r->amsgs[i];
            r->amsgs[i] = r->amsgs[j - 1];
            r->amsgs[j - 1] = tmp;
        }
    }
    return err; /* on error the caller clears what was read */
}

static int prefs_get(pg_conn_t *c, storage_req_t *r)
{
    storage_archive_prefs_t *pr = &r->prefs;
    PGresult *res;
    int err = user_read(c, ST_PREFS_GET, r->acct.username, NULL, &res);
    if (err == 0 && PQntuples(res) > 0) {
        pr->stored = 1;
        pr->default_mode = (int)cell_int(res, 0, 0);
    }
    PQclear(res);
    if (err != 0 || !pr->stored)
        return err;
    err = user_read(c, ST_PREFS_JIDS, r->acct.username, NULL, &res);
    int rows = err == 0 ? PQntuples(res) : 0;
    if (rows > 0) {
        pr->always = calloc((size_t)rows, sizeof(*pr->always));
        pr->never = calloc((size_t)rows, sizeof(*pr->never));
        if (pr->always == NULL || pr->never == NULL)
            err = HEARTH_ENOMEM;
    }
    for (int i = 0; err == 0 && i < rows; i++) {
        bool always = cell_int(res, i, 0) != 0;
        char **v = always ? pr->always : pr->never;
        size_t *n = always ? &pr->nalways : &pr->nnever;
        err = cell_dup_req(res, i, 1, &v[(*n)++]);
    }
    PQclear(res);
    return err;
}

static int prefs_set(pg_conn_t *c, storage_req_t *r)
{
    const char *user = r->acct.username;
    int err = account_exists(c, user);
    err = err ?: user_write(c, ST_PREFS_DELETE, user, NULL, NULL); /* its JIDs cascade */
    if (err != 0)
        return err;
    params_t p = {0};
    p_text(&p, user);
    p_int(&p, r->prefs.default_mode);
    err = write_stmt(c, ST_PREFS_PUT, &p, NULL);
    for (int always = 0; always <= 1; always++) {
        char **v = always ? r->prefs.always : r->prefs.never;
        size_t n = always ? r->prefs.nalways : r->prefs.nnever;
        for (size_t i = 0; err == 0 && i < n; i++) {
            params_t j = {0};
            p_text(&j, user);
            p_int(&j, always);
            p_text(&j, v[i]);
            err = write_stmt(c, ST_PREFS_JID_ADD, &j, NULL);
        }
    }
    return err;
}

static int archive_purge(pg_conn_t *c, storage_req_t *r)
{
    params_t p = {0};
    p_int(&p, storage_archive_key_of_ms(r->num));
    int err = write_stmt(c, ST_ARCHIVE_PURGE, &p, NULL);
    return err ?: write_stmt(c, ST_ARCHIVE_MSG_PURGE, &p, NULL);
}

static int archive_last(pg_conn_t *c, storage_req_t *r)
{
    return read_int(c, ST_ARCHIVE_LAST, NULL, &r->num);
}

/* The sizes /metrics shows: offline messages stored, archive rows. */
static int count_rows(pg_conn_t *c, storage_req_t *r)
{
    return read_int(c, strcmp(r->name, "offline") ? ST_COUNT_ARCHIVE : ST_COUNT_OFFLINE, NULL,
                    &r->num);
}

/* DOC_* and LOG_*: $1 kind, $2 key. */
static int doc_put(pg_conn_t *c, storage_req_t *r)
{
    params_t p = {0};
    p_text(&p, r->name);
    p_text(&p, r->item.jid);
    p_text(&p, r->blob);
    return write_stmt(c, ST_DOC_PUT, &p, NULL);
}

static int doc_get(pg_conn_t *c, storage_req_t *r)
{
    PGresult *res;
    int err = user_read(c, ST_DOC_GET, r->name, r->item.jid, &res);
    if (err == 0)
        err = PQntuples(res) == 0 ? HEARTH_ENOTFOUND : cell_dup_req(res, 0, 0, &r->blob);
    PQclear(res);
    return err;
}

/* DOC_LIST (the kind in r->name) or PRIVATE_LIST (the account in r->acct.username). */
static int doc_list_by(pg_conn_t *c, storage_req_t *r, enum stmt_id id)
{
    PGresult *res;
    int err = user_read(c, id, id == ST_DOC_LIST ? r->name : r->acct.username, NULL, &res);
    if (err == 0)
        err = alloc_rows((void **)&r->docs, PQntuples(res), sizeof(*r->docs));
    for (int i = 0; err == 0 && i < PQntuples(res); i++) {
        storage_doc_t *d = &r->docs[r->docs_n++];
        err = cell_dup_req(res, i, 0, &d->key);
        err = err ?: cell_dup_req(res, i, 1, &d->xml);
    }
    PQclear(res);
    return err;
}

/* Every row of LOG_SELECT's columns (id, stamp_ms, xml, ref, author, origin) into r's entries,
 * up to the page's bounds when paged (limit and bytes; complete cleared when a row is left). */
static int log_rows(PGresult *res, storage_req_t *r, bool paged)
{
    int rows = PQntuples(res);
    int err = alloc_rows((void **)&r->entries, rows, sizeof(*r->entries));
    size_t bytes = 0;
    for (int i = 0; err == 0 && i < rows; i++) {
        size_t len = (size_t)PQgetlength(res, i, 2);
        if (paged && (r->docs_n == r->limit ||
                      (r->limit_bytes && r->docs_n > 0 && bytes + len > r->limit_bytes))) {
            r->lg.page.complete = 0;
            break;
        }
        bytes += len;
        storage_log_entry_t *x = &r->entries[r->docs_n++];
        x->id = cell_int(res, i, 0);
        x->stamp_ms = cell_int(res, i, 1);
        err = cell_dup_req(res, i, 2, &x->xml);
        err = err ?: cell_dup(res, i, 3, &x->ref);
        err = err ?: cell_dup(res, i, 4, &x->author);
        err = err ?: cell_dup(res, i, 5, &x->origin);
    }
    return err;
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

static int log_append(pg_conn_t *c, storage_req_t *r)
{
    params_t p = {0};
    p_text(&p, r->name);
    p_text(&p, r->item.jid);
    p_int(&p, r->num);
    p_text(&p, r->blob);
    return write_stmt(c, ST_LOG_APPEND, &p, NULL);
}

static int log_fetch(pg_conn_t *c, storage_req_t *r)
{
    params_t p = {0};
    p_text(&p, r->name);
    p_text(&p, r->item.jid);
    p_int(&p, r->num);
    p_size(&p, r->limit);
    PGresult *res;
    int err = exec(c, ST_LOG_FETCH, &p, &res);
    if (err == 0)
        err = log_rows(res, r, false);
    PQclear(res);
    if (err == 0)
        log_reverse(r);
    return err;
}

static int log_append_entry(pg_conn_t *c, storage_req_t *r)
{
    params_t p = {0};
    p_text(&p, r->name);
    p_text(&p, r->item.jid);
    p_int(&p, r->num);
    p_text(&p, r->blob);
    p_text(&p, r->lg.ref);
    p_text(&p, r->lg.author);
    p_text(&p, r->lg.origin);
    return write_stmt(c, ST_LOG_APPEND_ENTRY, &p, NULL);
}

/* The id of the entry named ref: ENOTFOUND when there is none. */
static int log_id(pg_conn_t *c, storage_req_t *r, const char *ref, int64_t *id)
{
    params_t p = {0};
    p_text(&p, r->name);
    p_text(&p, r->item.jid);
    p_text(&p, ref);
    PGresult *res;
    int err = exec(c, ST_LOG_ID, &p, &res);
    if (err == 0 && PQntuples(res) == 0)
        err = HEARTH_ENOTFOUND;
    else if (err == 0)
        *id = cell_int(res, 0, 0);
    PQclear(res);
    return err;
}

static int log_get(pg_conn_t *c, storage_req_t *r)
{
    params_t p = {0};
    p_text(&p, r->name);
    p_text(&p, r->item.jid);
    p_text(&p, r->lg.ref);
    PGresult *res;
    int err = exec(c, ST_LOG_GET, &p, &res);
    if (err == 0 && PQntuples(res) == 0)
        err = HEARTH_ENOTFOUND;
    else if (err == 0)
        err = log_rows(res, r, false);
    PQclear(res);
    return err;
}

static int log_replace(pg_conn_t *c, storage_req_t *r)
{
    params_t p = {0};
    p_text(&p, r->name);
    p_text(&p, r->item.jid);
    p_text(&p, r->lg.ref);
    p_text(&p, r->blob);
    int64_t changed = 0;
    int err = write_stmt(c, ST_LOG_REPLACE, &p, &changed);
    return err == 0 && changed == 0 ? HEARTH_ENOTFOUND : err;
}

/* A log read's parameters: kind, key, start, end, author, origin; then (a page) the id bounds
 * and the limit. */
static void log_params(params_t *p, const storage_req_t *r, bool page, int64_t lo, int64_t hi)
{
    p_text(p, r->name);
    p_text(p, r->item.jid);
    p_int(p, r->num);
    p_int(p, r->num2);
    p_text(p, r->lg.author);
    p_text(p, r->lg.origin);
    if (page) {
        p_int(p, lo);
        p_int(p, hi);
        p_int(p, (int64_t)r->limit + 1);
    }
}

/* As archive_query: the page past the paging position, read with one more entry to tell
 * whether it is the last one in that direction. */
static int log_query(pg_conn_t *c, storage_req_t *r)
{
    int64_t lo = 0, hi = INT64_MAX;
    int err = 0;
    if (r->lg.after != NULL)
        err = log_id(c, r, r->lg.after, &lo);
    if (err == 0 && r->lg.before != NULL && r->lg.before[0] != '\0')
        err = log_id(c, r, r->lg.before, &hi);
    if (err != 0)
        return err;
    params_t cp = {0};
    log_params(&cp, r, false, 0, 0);
    int64_t count = 0;
    err = read_int(c, ST_LOG_COUNT, &cp, &count);
    if (err != 0)
        return err;
    r->lg.page.count = (size_t)count;
    bool backward = r->lg.before != NULL && r->lg.after == NULL;
    params_t p = {0};
    log_params(&p, r, true, lo, hi);
    PGresult *res;
    err = exec(c, backward ? ST_LOG_DESC : ST_LOG_ASC, &p, &res);
    if (err != 0)
        return err;
    r->lg.page.complete = 1;
    err = log_rows(res, r, true);
    PQclear(res);
    if (err == 0 && backward)
        log_reverse(r);
    return err;
}

/* ---- room affiliations (migration 4) ---- */

static int muc_affs_put(pg_conn_t *c, storage_req_t *r)
{
    int err = user_write(c, ST_MUC_AFFS_CLEAR, r->item.jid, NULL, NULL);
    for (size_t i = 0; err == 0 && i < r->affs_n; i++) {
        const storage_muc_aff_t *a = &r->affs[i];
        params_t p = {0};
        p_text(&p, r->item.jid);
        p_text(&p, a->jid);
        p_text(&p, a->affiliation);
        p_text(&p, a->nick);
        p_text(&p, a->reason);
        p_text(&p, a->account);
        err = write_stmt(c, ST_MUC_AFF_INSERT, &p, NULL);
    }
    return err;
}

static int muc_affs_get(pg_conn_t *c, storage_req_t *r)
{
    PGresult *res;
    int err = user_read(c, ST_MUC_AFFS_GET, r->item.jid, NULL, &res);
    if (err == 0)
        err = alloc_rows((void **)&r->affs, PQntuples(res), sizeof(*r->affs));
    for (int i = 0; err == 0 && i < PQntuples(res); i++) {
        storage_muc_aff_t *a = &r->affs[r->affs_n++];
        err = cell_dup_req(res, i, 0, &a->jid);
        err = err ?: cell_dup_req(res, i, 1, &a->affiliation);
        err = err ?: cell_dup(res, i, 2, &a->nick);
        err = err ?: cell_dup(res, i, 3, &a->reason);
    }
    PQclear(res);
    return err;
}

static int muc_owned(pg_conn_t *c, storage_req_t *r)
{
    params_t p = {0};
    p_text(&p, r->item.jid);
    int64_t n = 0;
    int err = read_int(c, ST_MUC_OWNED, &p, &n);
    r->msgs_n = (size_t)n;
    return err;
}

/* ---- publish-subscribe (migration 5) ---- */

/* $1 = service, $2 = node and (unless NULL) $3 = third. */
static void ps_params(params_t *p, const storage_req_t *r, const char *third)
{
    p_text(p, r->ps.service);
    p_text(p, r->ps.node);
    if (third != NULL)
        p_text(p, third);
}

static int ps_write(pg_conn_t *c, enum stmt_id id, const storage_req_t *r, const char *third)
{
    params_t p = {0};
    ps_params(&p, r, third);
    return write_stmt(c, id, &p, NULL);
}

static int ps_load_nodes(pg_conn_t *c, storage_req_t *r)
{
    PGresult *res;
    int err = user_read(c, ST_PS_NODES, r->ps.service, NULL, &res);
    if (err == 0)
        err = alloc_rows((void **)&r->ps.nodes, PQntuples(res), sizeof(*r->ps.nodes));
    for (int i = 0; err == 0 && i < PQntuples(res); i++) {
        storage_pubsub_node_t *n = &r->ps.nodes[r->ps.nnodes++];
        err = cell_dup_req(res, i, 0, &n->node);
        err = err ?: cell_dup_req(res, i, 1, &n->config);
    }
    PQclear(res);
    return err;
}

static int ps_load_items(pg_conn_t *c, storage_req_t *r)
{
    PGresult *res;
    int err = user_read(c, ST_PS_ITEMS_META, r->ps.service, NULL, &res);
    if (err == 0)
        err = alloc_rows((void **)&r->ps.items, PQntuples(res), sizeof(*r->ps.items));
    for (int i = 0; err == 0 && i < PQntuples(res); i++) {
        storage_pubsub_item_t *it = &r->ps.items[r->ps.nitems++];
        err = cell_dup_req(res, i, 0, &it->node);
        err = err ?: cell_dup_req(res, i, 1, &it->id);
        err = err ?: cell_dup_req(res, i, 2, &it->publisher);
        it->stamp_ms = cell_int(res, i, 3);
        it->size = (size_t)cell_int(res, i, 4);
    }
    PQclear(res);
    return err;
}

/* The payloads of each node's newest item, into the rows ps_load_items read (the last row of
 * each node). Both reads are ordered by node (COLLATE "C": strcmp's order): one pass. */
static int ps_load_last(pg_conn_t *c, storage_req_t *r)
{
    params_t p = {0};
    p_text(&p, r->ps.service);
    p_size(&p, r->ps.inline_max);
    PGresult *res;
    int err = exec(c, ST_PS_LAST_PAYLOADS, &p, &res);
    size_t i = 0;
    for (int row = 0; err == 0 && row < PQntuples(res); row++) {
        const char *node = PQgetvalue(res, row, 0);
        storage_pubsub_item_t *last = NULL;
        while (i < r->ps.nitems && strcmp(r->ps.items[i].node, node) < 0)
            i++;
        while (i < r->ps.nitems && !strcmp(r->ps.items[i].node, node))
            last = &r->ps.items[i++];
        if (last != NULL && last->payload == NULL)
            err = cell_dup_req(res, row, 1, &last->payload);
    }
    PQclear(res);
    return err;
}

static int ps_load_affs(pg_conn_t *c, storage_req_t *r)
{
    PGresult *res;
    int err = user_read(c, ST_PS_AFFS, r->ps.service, NULL, &res);
    if (err == 0)
        err = alloc_rows((void **)&r->ps.affs, PQntuples(res), sizeof(*r->ps.affs));
    for (int i = 0; err == 0 && i < PQntuples(res); i++) {
        storage_pubsub_aff_t *a = &r->ps.affs[r->ps.naffs++];
        err = cell_dup_req(res, i, 0, &a->node);
        err = err ?: cell_dup_req(res, i, 1, &a->jid);
        err = err ?: cell_dup_req(res, i, 2, &a->affiliation);
    }
    PQclear(res);
    return err;
}

static int ps_load(pg_conn_t *c, storage_req_t *r)
{
    int err = ps_load_nodes(c, r);
    err = err ?: ps_load_items(c, r);
    err = err ?: ps_load_last(c, r);
    return err ?: ps_load_affs(c, r);
}

/* Keeps the node's newest r->ps.keep items. */
static int ps_trim(pg_conn_t *c, const storage_req_t *r)
{
    params_t p = {0};
    ps_params(&p, r, NULL);
    p_size(&p, r->ps.keep);
    return write_stmt(c, ST_PS_TRIM, &p, NULL);
}

/* account names the PEP owner: a foreign key, so a node for an account that is gone is refused
 * (ENOTFOUND) rather than kept without an owner. */
static int ps_node_put(pg_conn_t *c, const storage_req_t *r)
{
    params_t p = {0};
    ps_params(&p, r, NULL);
    p_text(&p, r->ps.account);
    p_text(&p, r->ps.config);
    return write_stmt(c, ST_PS_NODE_PUT, &p, NULL);
}

static int ps_publish(pg_conn_t *c, storage_req_t *r)
{
    const storage_pubsub_item_t *it = &r->ps.item;
    int err = r->ps.config != NULL ? ps_node_put(c, r) : 0;
    err = err ?: ps_write(c, ST_PS_ITEM_DELETE, r, it->id);
    if (err != 0)
        return err;
    params_t p = {0};
    ps_params(&p, r, it->id);
    p_text(&p, it->publisher);
    p_int(&p, it->stamp_ms);
    p_text(&p, it->payload);
    err = write_stmt(c, ST_PS_ITEM_INSERT, &p, NULL);
    return err ?: ps_trim(c, r);
}

/* Rows of (id, publisher, stamp_ms, payload) appended to r's items. */
static int ps_item_rows(PGresult *res, storage_req_t *r)
{
    int rows = PQntuples(res);
    if (rows == 0)
        return 0;
    storage_pubsub_item_t *v = realloc(r->ps.items, (r->ps.nitems + (size_t)rows) * sizeof(*v));
    if (v == NULL)
        return HEARTH_ENOMEM;
    r->ps.items = v;
    int err = 0;
    for (int i = 0; err == 0 && i < rows; i++) {
        storage_pubsub_item_t *it = &v[r->ps.nitems++];
        memset(it, 0, sizeof(*it));
        err = cell_dup_req(res, i, 0, &it->id);
        err = err ?: cell_dup_req(res, i, 1, &it->publisher);
        it->stamp_ms = cell_int(res, i, 2);
        err = err ?: cell_dup_req(res, i, 3, &it->payload);
        if (err == 0)
            it->size = strlen(it->payload);
    }
    return err;
}

/* The named items (each once; absent ones left out), sorted into publication order. */
static int ps_items_named(pg_conn_t *c, storage_req_t *r)
{
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
        params_t p = {0};
        ps_params(&p, r, r->ps.ids[i]);
        PGresult *res;
        err = exec(c, ST_PS_ITEM_GET, &p, &res);
        if (err == 0 && PQntuples(res) > 0) {
            seqs[r->ps.nitems] = cell_int(res, 0, 4);
            err = ps_item_rows(res, r);
        }
        PQclear(res);
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

static int ps_items(pg_conn_t *c, storage_req_t *r)
{
    if (r->ps.nids > 0)
        return ps_items_named(c, r);
    params_t p = {0};
    ps_params(&p, r, NULL);
    if (r->ps.max > 0)
        p_size(&p, r->ps.max);
    PGresult *res;
    int err = exec(c, r->ps.max > 0 ? ST_PS_ITEMS_NEWEST : ST_PS_ITEMS_ALL, &p, &res);
    if (err == 0)
        err = ps_item_rows(res, r);
    PQclear(res);
    return err;
}

static int ps_affs_set(pg_conn_t *c, storage_req_t *r)
{
    int err = 0;
    for (size_t i = 0; err == 0 && i < r->ps.naffs; i++) {
        const storage_pubsub_aff_t *a = &r->ps.affs[i];
        params_t p = {0};
        p_text(&p, r->ps.service);
        p_text(&p, a->node);
        p_text(&p, a->jid);
        if (a->affiliation != NULL) {
            p_text(&p, a->affiliation);
            p_text(&p, a->account);
        }
        err = write_stmt(c, a->affiliation ? ST_PS_AFF_PUT : ST_PS_AFF_DELETE, &p, NULL);
    }
    return err;
}

static int run_one(pg_conn_t *c, storage_req_t *r)
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
        return user_write(c, ST_REQUEST_DELETE, r->acct.username, r->item.jid, NULL);
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

/* ---- the connection ---- */

/* A fixed command without values (transaction control, a migration's text): true when it ran. */
static bool command(pg_conn_t *c, const char *sql)
{
    PGresult *res = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(res);
    PQclear(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY;
}

static bool connection_lost(const pg_conn_t *c)
{
    return c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK;
}

static void disconnect(pg_conn_t *c)
{
    PQfinish(c->pg);
    c->pg = NULL;
    memset(c->prepared, 0, sizeof(c->prepared));
}

/* A new connection (the old one, if any, closed): 0, or HEARTH_ESTORAGE with *why (malloc'd,
 * unless why is NULL). Messages from the server (NOTICEs of the migrations) are not printed. */
static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int connect_db(pg_conn_t *c, char **why)
{
    disconnect(c);
    /* The DSN is expanded in place of dbname; its own keys win over the defaults before it.
     * Keepalives and a TCP user timeout end a connection to a server that vanished without a
     * reset (a network partition): else the storage thread would wait on it for minutes. */
    const char *const keys[] = {
        "connect_timeout",  "application_name", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "dbname",          NULL};
    const char *const vals[] = {CONNECT_TIMEOUT,     "hearthd", "15", "5", "3",
                                TCP_USER_TIMEOUT_MS, c->dsn,    NULL};
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (c->pg == NULL) {
        if (why != NULL)
            *why = errmsg_printf("out of memory");
        return HEARTH_ESTORAGE;
    }
    if (PQstatus(c->pg) != CONNECTION_OK) {
        if (why != NULL) {
            const char *msg = PQerrorMessage(c->pg);
            size_t len = strlen(msg);
            while (len > 0 && (msg[len - 1] == '\n' || msg[len - 1] == ' '))
                len--;
            *why = errmsg_printf("%.*s", (int)len, msg);
            for (char *w = *why; w != NULL && *w; w++)
                if (*w == '\n' || *w == '\t')
                    *w = ' '; /* libpq's hint on a line of its own: one line in the log */
        }
        disconnect(c);
        return HEARTH_ESTORAGE;
    }
    PQsetNoticeProcessor(c->pg, quiet_notices, NULL);
    /* Times and text as the driver reads them, whatever the role's defaults. */
    if (!command(c, "SET client_encoding = 'UTF8'")) {
        if (why != NULL)
            *why = errmsg_printf("cannot set the client encoding: %s", PQerrorMessage(c->pg));
        disconnect(c);
        return HEARTH_ESTORAGE;
    }
    return 0;
}

/* Before a batch: a connection, or ESTORAGE while the server stays unreachable (one attempt per
 * delay, the delay doubling, so that the thread does not wait on every batch). */
static int ensure_connected(pg_conn_t *c)
{
    if (!connection_lost(c))
        return 0;
    int64_t now = now_ms();
    if (c->retry_delay_ms > 0 && now < c->retry_at_ms)
        return HEARTH_ESTORAGE;
    if (connect_db(c, NULL) == 0) {
        c->retry_delay_ms = 0;
        return 0;
    }
    c->retry_delay_ms = c->retry_delay_ms == 0 ? RECONNECT_FIRST_MS : c->retry_delay_ms * 2;
    if (c->retry_delay_ms > RECONNECT_MAX_MS)
        c->retry_delay_ms = RECONNECT_MAX_MS;
    c->retry_at_ms = now_ms() + c->retry_delay_ms;
    return HEARTH_ESTORAGE;
}

/* ---- the batch ---- */

static void fail_all(storage_req_t *first, int err)
{
    for (storage_req_t *r = first; r != NULL; r = r->next) {
        storage__req_clear_result(r);
        r->err = err;
    }
}

/* Starts a transaction with sql; a connection that died while idle (the server restarted) is
 * seen only now, when nothing of the batch has run, so one fresh connection may take it. */
static bool begin(pg_conn_t *c, const char *sql)
{
    if (command(c, sql))
        return true;
    return connection_lost(c) && ensure_connected(c) == 0 && command(c, sql);
}

/* An element of a PostgreSQL array literal: the text in double quotes, '"' and '\\' escaped. */
static int array_elem(hearth_buf_t *b, size_t i, const char *text)
{
    int err = hearth_buf_append_str(b, i == 0 ? "{\"" : ",\"");
    while (err == 0 && *text != '\0') {
        size_t run = strcspn(text, "\"\\");
        err = hearth_buf_append(b, text, run);
        text += run;
        if (err == 0 && *text != '\0')
            err = hearth_buf_append(b, (const char[]){'\\', *text++}, 2);
    }
    return err ?: hearth_buf_append_str(b, "\"");
}

/* The shared texts of a batch's archived messages, before the batch.
 *
 * A message's two parties are often homed on different workers, so with storage.pool_size above
 * 1 their archive writes run on two connections, and both insert the message's text under the
 * same key. Inside the lanes' batch transactions, a key one batch has inserted makes the other
 * wait for that whole batch, and two batches each holding a key the other wants deadlock:
 * PostgreSQL breaks each cycle after deadlock_timeout (1 s) by failing a request, and that party
 * lost its copy of the message (seen at 1,000 msg/s with a pool of 2: hundreds of deadlocks, a
 * delivery latency of seconds). So a batch with two or more of them first inserts the texts in
 * a short transaction of its own, in key order: two such transactions may wait for each other
 * but never in a cycle, and the batch itself then writes only each party's row (one statement
 * where there were two or three, a party). That commit does not wait for the disk
 * (synchronous_commit off): the batch's commit, later in the log, makes it durable with it; if
 * the server stops between the two, what remains is a text no archive row names, as after any
 * request that fails once its text is in. A text not stored this way (no such account, another
 * text under the key already, an id that is not a key, any error) is left to its request. Returns
 * 0, or HEARTH_ESTORAGE when the connection is lost. */
static int archive_texts_first(pg_conn_t *c, storage_req_t *first)
{
    hearth_buf_t keys = HEARTH_BUF_INIT, texts = HEARTH_BUF_INIT, users = HEARTH_BUF_INIT;
    size_t n = 0, cap = 0;
    for (storage_req_t *r = first; r != NULL; r = r->next) {
        int64_t key;
        r->msg_stored = 0;
        if (r->op == STORAGE_OP_ARCHIVE_STORE && storage_archive_key_parse(r->msg.id, &key) == 0)
            cap++;
    }
    if (cap < 2)
        return 0;
    storage_req_t **reqs = malloc(cap * sizeof(*reqs));
    int err = reqs == NULL ? HEARTH_ENOMEM : 0;
    for (storage_req_t *r = first; r != NULL && err == 0; r = r->next) {
        int64_t key;
        if (r->op != STORAGE_OP_ARCHIVE_STORE || storage_archive_key_parse(r->msg.id, &key) != 0)
            continue;
        err = hearth_buf_printf(&keys, "%s%" PRId64, n == 0 ? "{" : ",", key);
        err = err ?: array_elem(&texts, n, r->blob);
        err = err ?: array_elem(&users, n, r->acct.username);
        reqs[n++] = r;
    }
    err = err ?: hearth_buf_append_str(&keys, "}") ?: hearth_buf_append_str(&texts, "}");
    err = err ?: hearth_buf_append_str(&users, "}") ?: hearth_buf_append(&keys, "", 1);
    err = err ?: hearth_buf_append(&texts, "", 1) ?: hearth_buf_append(&users, "", 1);
    int lost = 0;
    if (err == 0) {
        PGresult *res = NULL;
        params_t p = {0};
        p_text(&p, (const char *)keys.data);
        p_text(&p, (const char *)texts.data);
        p_text(&p, (const char *)users.data);
        bool ok = begin(c, "BEGIN; SET LOCAL synchronous_commit TO off") &&
                  write_stmt(c, ST_ARCHIVE_MSG_FIRST, &p, NULL) == 0;
        p.n = 2;
        ok = ok && exec(c, ST_ARCHIVE_MSG_OURS, &p, &res) == 0;
        for (int i = 0; ok && i < PQntuples(res); i++) {
            int64_t at = cell_int(res, i, 0);
            if (at >= 1 && (size_t)at <= n)
                reqs[at - 1]->msg_stored = 1;
        }
        PQclear(res);
        if (!ok || !command(c, "COMMIT")) {
            for (size_t i = 0; i < n; i++)
                reqs[i]->msg_stored = 0;
            if (c->pg != NULL && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
                (void)command(c, "ROLLBACK");
            lost = connection_lost(c);
        }
    }
    free(reqs);
    hearth_buf_free(&keys);
    hearth_buf_free(&texts);
    hearth_buf_free(&users);
    return lost ? HEARTH_ESTORAGE : 0;
}

/* Each command on the savepoints rides with the one before or after it, in one simple query
 * (PostgreSQL runs the string's statements in order and stops at the first that fails): a
 * request costs its own statements and one round trip more, not two. */
static void pgsql_run(void *conn, storage_req_t *first)
{
    pg_conn_t *c = conn;
    if (ensure_connected(c) != 0 || archive_texts_first(c, first) != 0 ||
        !begin(c, "BEGIN; SAVEPOINT req"))
        goto lost;
    for (storage_req_t *r = first; r != NULL; r = r->next) {
        const char *then;
        r->err = run_one(c, r);
        if (r->err == 0) {
            then = r->next != NULL ? "RELEASE req; SAVEPOINT req" : "RELEASE req; COMMIT";
        } else {
            storage__req_clear_result(r);
            if (connection_lost(c))
                goto lost;
            then = r->next != NULL ? "ROLLBACK TO req; RELEASE req; SAVEPOINT req"
                                   : "ROLLBACK TO req; RELEASE req; COMMIT";
        }
        if (!command(c, then))
            goto lost; /* the COMMIT included: nothing of the batch holds */
    }
    atomic_fetch_add(&c->commits, 1);
    return;

lost:
    /* Nothing of the batch holds: every request fails, none silently. A connection in a state
     * that is not idle is dropped and the next batch connects anew. */
    if (c->pg != NULL && PQtransactionStatus(c->pg) != PQTRANS_IDLE && !command(c, "ROLLBACK"))
        disconnect(c);
    if (connection_lost(c) && c->pg != NULL)
        disconnect(c);
    fail_all(first, HEARTH_ESTORAGE);
}

/* ---- open, migrations, close ---- */

static void pgsql_close(void *conn)
{
    pg_conn_t *c = conn;
    if (c == NULL)
        return;
    disconnect(c);
    free(c->dsn);
    free(c);
}

static uint64_t pgsql_commits(void *conn)
{
    pg_conn_t *c = conn;
    return atomic_load(&c->commits);
}

/* The schema version inside the current transaction (0: none yet), or -1. The table is made
 * first when missing; a concurrent first start of two nodes is serialised by the lock below. */
static int version_get(pg_conn_t *c, bool *has_row)
{
    *has_row = false;
    if (!command(c, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)") ||
        !command(c, "LOCK TABLE schema_version IN EXCLUSIVE MODE"))
        return -1;
    PGresult *res;
    if (exec(c, ST_VERSION_GET, NULL, &res) != 0)
        return -1;
    int rows = PQntuples(res);
    int64_t v = cell_int(res, 0, 0);
    PQclear(res);
    if (rows > 1 || v < 0 || v > INT_MAX)
        return -1;
    *has_row = rows == 1;
    return (int)v;
}

/* Each migration in its own transaction, the version row moving with it. */
static int migrate(pg_conn_t *c, char **errmsg)
{
    for (;;) {
        if (!command(c, "BEGIN")) {
            *errmsg = errmsg_printf("storage: pgsql: cannot start a transaction: %s",
                                    PQerrorMessage(c->pg));
            return HEARTH_ESTORAGE;
        }
        bool has_row;
        int version = version_get(c, &has_row);
        if (version < 0) {
            *errmsg = errmsg_printf("storage: pgsql: cannot read schema_version: %s",
                                    PQerrorMessage(c->pg));
            goto fail;
        }
        if (version > SCHEMA_VERSION) {
            *errmsg = errmsg_printf("storage: pgsql: database schema version %d is newer than "
                                    "this build supports (%d); use a newer hearthd with this "
                                    "database",
                                    version, SCHEMA_VERSION);
            goto fail;
        }
        if (version == SCHEMA_VERSION)
            break;
        int next = version + 1;
        params_t p = {0};
        p_int(&p, next);
        if (!command(c, pgsql_migrations[next]) ||
            write_stmt(c, has_row ? ST_VERSION_UPDATE : ST_VERSION_INSERT, &p, NULL) != 0 ||
            !command(c, "COMMIT")) {
            *errmsg = errmsg_printf("storage: pgsql: migration %d failed: %s", next,
                                    PQerrorMessage(c->pg));
            goto fail;
        }
        atomic_fetch_add(&c->commits, 1);
    }
    if (!command(c, "COMMIT")) {
        *errmsg = errmsg_printf("storage: pgsql: %s", PQerrorMessage(c->pg));
        goto fail;
    }
    return 0;

fail:
    (void)command(c, "ROLLBACK");
    return HEARTH_ESTORAGE;
}

static int pgsql_open(const char *dsn, void **conn, char **errmsg)
{
    *conn = NULL;
    if (dsn[0] == '\0') {
        /* libpq would try its defaults (a local socket, the user's name): say what is missing. */
        *errmsg = errmsg_printf("storage: the pgsql driver needs storage.dsn (a libpq connection "
                                "string, e.g. postgresql://hearth@127.0.0.1:5432/hearth)");
        return HEARTH_ECONFIG;
    }
    pg_conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL || (c->dsn = strdup(dsn)) == NULL) {
        free(c);
        *errmsg = errmsg_printf("storage: out of memory");
        return HEARTH_ENOMEM;
    }
    char *why = NULL;
    if (connect_db(c, &why) != 0) {
        /* libpq's message names the host and port it tried; never the password. */
        *errmsg = errmsg_printf("storage: pgsql: cannot connect: %s", why ? why : "?");
        free(why);
        pgsql_close(c);
        return HEARTH_ESTORAGE;
    }
    if (migrate(c, errmsg) != 0) {
        pgsql_close(c);
        return HEARTH_ESTORAGE;
    }
    *conn = c;
    return 0;
}

const storage_driver_t storage__pgsql_driver = {
    .name = "pgsql",
    .open = pgsql_open,
    .run = pgsql_run,
    .close = pgsql_close,
    .commits = pgsql_commits,
};
