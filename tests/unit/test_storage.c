/* The storage conformance suite: one set of tests run per driver. HEARTH_TEST_STORAGE names the
 * driver (sqlite, the default, on a file per test; pgsql on a fresh database per test, created
 * through the server DSN in HEARTH_TEST_PG_DSN, as scripts/pg-test-cluster.sh gives it). Tests of
 * one driver's own files and upgrades skip on the other.
 * Unit tests for server/storage: schema and migrations (1→2 upgrade included),
 * the blocking API, the asynchronous API's FIFO completion through a test inbox, batching into one
 * transaction with a savepoint per request, refusal of a newer schema, close with requests still
 * queued, and the IM records of migration 2 (roster, subscription requests, offline messages,
 * vCard, private XML, block list, last activity) with their cascade from accounts; migration 3
 * (2→3 upgrade included): the message archive with XEP-0059 paging and preferences, retention,
 * and the generic documents and logs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdint.h>

#include <cmocka.h>

#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef HEARTH_TEST_PGSQL
#include <libpq-fe.h>
#endif

#include "storage/storage.h"

/* ---- fixtures ---- */

/* The driver under test, from HEARTH_TEST_STORAGE (main). */
static const char *g_driver = "sqlite";
static bool g_pgsql;
static const char *g_pg_dsn
    __attribute__((unused)); /* pgsql: the server DSN databases are created through */

typedef struct fixture {
    char dir[64];
    char path[128]; /* sqlite: the database file */
    char db[64];    /* pgsql: this test's database */
    char dsn[1024]; /* what storage_open gets */
} fixture_t;

/* Skips the calling test unless the driver is sqlite (its files, pragmas, upgrades). */
#define SQLITE_ONLY()                                                                              \
    do {                                                                                           \
        if (g_pgsql)                                                                               \
            skip();                                                                                \
    } while (0)

#ifdef HEARTH_TEST_PGSQL
/* A connection string for database db on the server of g_pg_dsn (malloc'd into out). */
static int pg_dsn_for(const char *db, char *out, size_t size)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(g_pg_dsn, &err);
    if (opts == NULL) {
        fprintf(stderr, "HEARTH_TEST_PG_DSN: %s\n", err ? err : "?");
        PQfreemem(err);
        return -1;
    }
    size_t len = 0;
    out[0] = '\0';
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++) {
        const char *v = strcmp(o->keyword, "dbname") == 0 ? db : o->val;
        if (v == NULL || v[0] == '\0')
            continue;
        len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%s%s='", len ? " " : "",
                                o->keyword);
        for (const char *c = v; *c && len + 3 < size; c++) {
            if (*c == '\'' || *c == '\\')
                out[len++] = '\\';
            out[len++] = *c;
        }
        len += (size_t)snprintf(out + len, len < size ? size - len : 0, "'");
    }
    PQconninfoFree(opts);
    return len < size ? 0 : -1;
}

/* Runs sql on database db of the test server: 0, or -1 (printed). */
static int pg_admin_exec(const char *db, const char *sql)
{
    char dsn[1024];
    if (pg_dsn_for(db, dsn, sizeof(dsn)) != 0)
        return -1;
    PGconn *pc = PQconnectdb(dsn);
    int rc = -1;
    if (PQstatus(pc) == CONNECTION_OK) {
        PGresult *res = PQexec(pc, sql);
        ExecStatusType es = PQresultStatus(res);
        rc = es == PGRES_COMMAND_OK || es == PGRES_TUPLES_OK ? 0 : -1;
        PQclear(res);
    }
    if (rc != 0)
        fprintf(stderr, "pgsql (%s): %s: %s", db, sql, PQerrorMessage(pc));
    PQfinish(pc);
    return rc;
}
#endif

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    strcpy(f->dir, "/tmp/hearth-test-storage-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/hearth.db", f->dir);
    snprintf(f->dsn, sizeof(f->dsn), "%s", f->path);
#ifdef HEARTH_TEST_PGSQL
    if (g_pgsql) {
        static unsigned n;
        char sql[128];
        snprintf(f->db, sizeof(f->db), "hearth_conf_%ld_%u", (long)getpid(), n++);
        snprintf(sql, sizeof(sql), "CREATE DATABASE %s", f->db);
        if (pg_admin_exec("postgres", sql) != 0 || pg_dsn_for(f->db, f->dsn, sizeof(f->dsn)) != 0) {
            rmdir(f->dir);
            free(f);
            return -1;
        }
    }
#endif
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
#ifdef HEARTH_TEST_PGSQL
    if (g_pgsql && f->db[0] != '\0') {
        char sql[128];
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", f->db);
        (void)pg_admin_exec("postgres", sql);
    }
#endif
    char p[160];
    const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static storage_t *open_ok(const fixture_t *f)
{
    storage_t *st = NULL;
    char *errmsg = NULL;
    int rc = storage_open(g_driver, g_pgsql ? f->dsn : f->path, &st, &errmsg);
    if (rc != 0)
        fprintf(stderr, "storage_open: %s\n", errmsg ? errmsg : "?");
    assert_int_equal(rc, 0);
    assert_null(errmsg);
    assert_non_null(st);
    return st;
}

static void secret_set(hearth_scram_secret_t *s, const char *tag, unsigned iter)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->salt, sizeof(s->salt), "salt-%s", tag);
    s->iterations = iter;
    snprintf(s->stored_key, sizeof(s->stored_key), "stored-%s", tag);
    snprintf(s->server_key, sizeof(s->server_key), "server-%s", tag);
}

static void account_make(storage_account_t *a, char *name, int admin, const char *tag)
{
    memset(a, 0, sizeof(*a));
    a->username = name;
    a->admin = admin;
    secret_set(&a->sha1, tag, 4096);
    secret_set(&a->sha256, tag, 8192);
    a->created_at = 1700000000;
}

static void assert_secret_equal(const hearth_scram_secret_t *a, const hearth_scram_secret_t *b)
{
    assert_string_equal(a->salt, b->salt);
    assert_int_equal(a->iterations, b->iterations);
    assert_string_equal(a->stored_key, b->stored_key);
    assert_string_equal(a->server_key, b->server_key);
}

/* A single integer from the database through a separate connection. */
static int64_t db_int(const fixture_t *f, const char *sql)
{
#ifdef HEARTH_TEST_PGSQL
    if (g_pgsql) {
        PGconn *pc = PQconnectdb(f->dsn);
        assert_int_equal(PQstatus(pc), CONNECTION_OK);
        PGresult *res = PQexec(pc, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            fprintf(stderr, "%s: %s", sql, PQerrorMessage(pc));
        assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
        assert_int_equal(PQntuples(res), 1);
        int64_t v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
            v = 1; /* a boolean */
        PQclear(res);
        PQfinish(pc);
        return v;
    }
#endif
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static void db_exec(const fixture_t *f, const char *sql)
{
#ifdef HEARTH_TEST_PGSQL
    if (g_pgsql) {
        assert_int_equal(pg_admin_exec(f->db, sql), 0);
        return;
    }
#endif
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* A migration's file under server/storage/sql/<driver>/ (malloc'd), or NULL when the source tree
 * cannot be found (built from a relative __FILE__). */
static char *sql_file(const char *name)
{
    char src[512], path[700];
    snprintf(src, sizeof(src), "%s", __FILE__);
    snprintf(path, sizeof(path), "%s/../../server/storage/sql/%s/%s", dirname(src), g_driver, name);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return NULL;
    char *text = malloc(65536);
    assert_non_null(text);
    size_t len = fread(text, 1, 65535, fp);
    fclose(fp);
    text[len] = '\0';
    return text;
}

/* Every schema object but the version table, as text (malloc'd). */
static char *schema_dump(sqlite3 *db)
{
    const char *q = "SELECT group_concat(type || ' ' || name || ': ' || sql, '\n') FROM (SELECT "
                    "* FROM sqlite_master WHERE name <> 'schema_version' ORDER BY name)";
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_non_null(sqlite3_column_text(s, 0));
    char *dump = strdup((const char *)sqlite3_column_text(s, 0));
    assert_non_null(dump);
    sqlite3_finalize(s);
    return dump;
}

static char *schema_dump_file(const char *path)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    char *dump = schema_dump(db);
    sqlite3_close(db);
    return dump;
}

/* ---- a test inbox: the post function pushes, the test thread pops and finishes ---- */

#define INBOX_CAP 4096

typedef struct inbox {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    storage_req_t *items[INBOX_CAP];
    size_t head, tail; /* tail - head items, tail - head <= INBOX_CAP */
    size_t posted;
} inbox_t;

static void inbox_init(inbox_t *in)
{
    memset(in, 0, sizeof(*in));
    pthread_mutex_init(&in->mu, NULL);
    pthread_cond_init(&in->cv, NULL);
}

static void inbox_destroy(inbox_t *in)
{
    assert_int_equal(in->head, in->tail);
    pthread_cond_destroy(&in->cv);
    pthread_mutex_destroy(&in->mu);
}

static void inbox_post(void *post_ud, storage_req_t *req)
{
    inbox_t *in = post_ud;
    pthread_mutex_lock(&in->mu);
    if (in->tail - in->head < INBOX_CAP) {
        in->items[in->tail++ % INBOX_CAP] = req;
        in->posted++;
    } else {
        storage_req_discard(req); /* the test fails on the missing completion */
    }
    pthread_cond_signal(&in->cv);
    pthread_mutex_unlock(&in->mu);
}

/* Pops and finishes n requests on this thread. */
static void inbox_finish(inbox_t *in, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pthread_mutex_lock(&in->mu);
        while (in->head == in->tail)
            pthread_cond_wait(&in->cv, &in->mu);
        storage_req_t *req = in->items[in->head++ % INBOX_CAP];
        pthread_mutex_unlock(&in->mu);
        storage_req_finish(req);
    }
}

/* A gate: its post function holds the storage thread until the test opens it, so requests
 * submitted meanwhile are all queued at the storage thread's next wake-up. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool entered, open;
    storage_req_t *req;
} gate_t;

static void gate_init(gate_t *g)
{
    memset(g, 0, sizeof(*g));
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
}

static void gate_post(void *post_ud, storage_req_t *req)
{
    gate_t *g = post_ud;
    pthread_mutex_lock(&g->mu);
    g->req = req;
    g->entered = true;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_wait_entered(gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    while (!g->entered)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate_t *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_destroy(gate_t *g)
{
    storage_req_finish(g->req);
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static void ignore_status_cb(void *ud, int err)
{
    assert_int_equal(err, 0);
}

/* Blocks the storage thread of a lane in the gate's post. */
static void gate_close_on_lane(gate_t *g, storage_t *st, unsigned lane)
{
    storage_target_t t = {gate_post, g, lane};
    assert_int_equal(storage_property_set(st, &t, "gate", "1", ignore_status_cb, NULL), 0);
    gate_wait_entered(g);
}

static void gate_close_on(gate_t *g, storage_t *st)
{
    gate_close_on_lane(g, st, 0);
}

/* ---- expectations checked by the callbacks (they run on the test thread) ---- */

typedef struct expect_state {
    int next_seq;
    pthread_t thread;
} expect_state_t;

typedef struct expect {
    expect_state_t *state;
    int seq;
    int err;
    int admin;
    char username[32];
    char salt[64];
    char value[32];
    bool called;
} expect_t;

static void expect_called(expect_t *e, int err)
{
    assert_true(pthread_equal(pthread_self(), e->state->thread));
    assert_false(e->called);
    e->called = true;
    assert_int_equal(e->seq, e->state->next_seq);
    e->state->next_seq++;
    assert_int_equal(err, e->err);
}

static void expect_status_cb(void *ud, int err)
{
    expect_called(ud, err);
}

static void expect_account_cb(void *ud, int err, const storage_account_t *acct)
{
    expect_t *e = ud;
    expect_called(e, err);
    if (err != 0) {
        assert_null(acct);
        return;
    }
    assert_non_null(acct);
    assert_string_equal(acct->username, e->username);
    assert_int_equal(acct->admin, e->admin);
    assert_string_equal(acct->sha256.salt, e->salt);
}

static void expect_property_cb(void *ud, int err, const char *value)
{
    expect_t *e = ud;
    expect_called(e, err);
    if (err != 0) {
        assert_null(value);
        return;
    }
    assert_string_equal(value, e->value);
}

static expect_t *expect_new(expect_state_t *s, int err)
{
    expect_t *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->state = s;
    e->seq = -1;
    e->err = err;
    return e;
}

/* ---- tests ---- */

static void test_open_creates_schema(void **state)
{
    fixture_t *f = *state;
    storage_t *st = open_ok(f);
    storage_close(st);

    assert_int_equal(db_int(f, "SELECT count(*) FROM schema_version"), 1);
    assert_int_equal(db_int(f, "SELECT version FROM schema_version"), 9);
    if (g_pgsql) {
        assert_int_equal(
            db_int(f, "SELECT count(*) FROM information_schema.tables WHERE table_schema = "
                      "current_schema() AND table_name IN ('accounts', 'properties', "
                      "'user_state', 'roster_items', 'roster_groups', 'sub_requests', "
                      "'offline_messages', 'vcards', 'private_xml', 'blocklist', 'archive', "
                      "'archive_prefs', 'archive_prefs_jids', 'documents', 'logs', "
                      "'muc_affiliations', 'pubsub_nodes', 'pubsub_items', "
                      "'pubsub_affiliations', 'archive_msg')"),
            20);
        assert_int_equal(db_int(f, "SELECT count(*) FROM pg_indexes WHERE schemaname = "
                                   "current_schema() AND indexname IN ('archive_user_with', "
                                   "'archive_legacy', 'logs_key', 'offline_messages_user')"),
                         4);
        assert_int_equal(db_int(f, "SELECT count(*) FROM accounts"), 0);
        st = open_ok(f);
        storage_close(st);
        assert_int_equal(db_int(f, "SELECT count(*) FROM schema_version"), 1);
        return;
    }
    assert_int_equal(db_int(f, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                               "name IN ('accounts', 'properties', 'user_state', 'roster_items', "
                               "'roster_groups', 'sub_requests', 'offline_messages', 'vcards', "
                               "'private_xml', 'blocklist', 'archive', 'archive_prefs', "
                               "'archive_prefs_jids', 'documents', 'logs', 'muc_affiliations', "
                               "'pubsub_nodes', 'pubsub_items', 'pubsub_affiliations', "
                               "'archive_msg')"),
                     20);
    assert_int_equal(db_int(f, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                               "name IN ('archive_user_with', 'archive_legacy', 'logs_key')"),
                     3);
    /* The archive's time and id indexes are gone with migration 7. */
    assert_int_equal(db_int(f, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                               "name IN ('archive_user_seq', 'archive_user_stamp', "
                               "'archive_stamp')"),
                     0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND "
                               "name = 'offline_messages_user'"),
                     1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM accounts"), 0);

    /* WAL is a property of the file: it persists. */
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    sqlite3_close(db);

    /* Opening again migrates nothing and keeps one version row. */
    st = open_ok(f);
    storage_close(st);
    assert_int_equal(db_int(f, "SELECT count(*) FROM schema_version"), 1);
}

/* The reference .sql files, run in order, and the migrations embedded in sqlite.c give the same
 * schema. */
static void test_migration_matches_sql_file(void **state)
{
    fixture_t *f = *state;
    SQLITE_ONLY(); /* pgsql.c's migrations are built from its .sql files */
    char *m1 = sql_file("0001_accounts.sql"), *m2 = sql_file("0002_im.sql"),
         *m3 = sql_file("0003_archive.sql"), *m4 = sql_file("0004_muc_affiliations.sql"),
         *m5 = sql_file("0005_pubsub.sql"), *m6 = sql_file("0006_archive_seq.sql"),
         *m7 = sql_file("0007_archive_once.sql"), *m8 = sql_file("0008_log_refs.sql"),
         *m9 = sql_file("0009_account_locked.sql");
    if (m1 == NULL || m2 == NULL || m3 == NULL || m4 == NULL || m5 == NULL || m6 == NULL ||
        m7 == NULL || m8 == NULL || m9 == NULL) {
        free(m9);
        free(m8);
        free(m7);
        free(m6);
        free(m1);
        free(m2);
        free(m3);
        free(m4);
        free(m5);
        skip(); /* built from a relative __FILE__: no way to find the source tree */
    }
    storage_t *st = open_ok(f);
    storage_close(st);

    sqlite3 *ref = NULL;
    assert_int_equal(sqlite3_open(":memory:", &ref), SQLITE_OK);
    assert_int_equal(sqlite3_exec(ref, m1, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(ref, m2, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(ref, m3, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(ref, m4, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(ref, m5, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(ref, m6, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(ref, m7, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(ref, m8, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(ref, m9, NULL, NULL, NULL), SQLITE_OK);
    char *want = schema_dump(ref), *got = schema_dump_file(f->path);
    assert_string_equal(want, got);
    free(want);
    free(got);
    sqlite3_close(ref);
    free(m9);
    free(m1);
    free(m2);
    free(m3);
    free(m4);
    free(m5);
    free(m6);
    free(m7);
    free(m8);
}

static void test_open_errors(void **state)
{
    fixture_t *f = *state;
    storage_t *st = (storage_t *)1;
    char *errmsg = NULL;

    assert_int_equal(storage_open("mysql", f->path, &st, &errmsg), HEARTH_ECONFIG);
    assert_null(st);
    assert_non_null(errmsg);
    assert_non_null(strstr(errmsg, "mysql"));
    free(errmsg);

    char bad[200];
    snprintf(bad, sizeof(bad), "%s/no/such/dir/hearth.db", f->dir);
    if (g_pgsql) /* a server that is not there: refused at once, and said so */
        snprintf(bad, sizeof(bad), "host=127.0.0.1 port=1 dbname=%s connect_timeout=2", f->db);
    errmsg = NULL;
    assert_int_equal(storage_open(g_driver, bad, &st, &errmsg), HEARTH_ESTORAGE);
    assert_null(st);
    assert_non_null(errmsg);
    assert_non_null(strstr(errmsg, g_pgsql ? "127.0.0.1" : bad));
    free(errmsg);
}

static void test_newer_schema_refused(void **state)
{
    fixture_t *f = *state;
    storage_t *st = open_ok(f);
    storage_account_t a;
    account_make(&a, "alice", 0, "a");
    assert_int_equal(storage_sync_account_create(st, &a), 0);
    storage_close(st);

    db_exec(f, "UPDATE schema_version SET version = 999");
    char *errmsg = NULL;
    st = (storage_t *)1;
    assert_int_equal(storage_open(g_driver, f->dsn, &st, &errmsg), HEARTH_ESTORAGE);
    assert_null(st);
    assert_non_null(errmsg);
    assert_non_null(strstr(errmsg, "999"));
    assert_non_null(strstr(errmsg, "newer"));
    free(errmsg);
    /* Left as it was. */
    assert_int_equal(db_int(f, "SELECT version FROM schema_version"), 999);
    assert_int_equal(db_int(f, "SELECT count(*) FROM accounts"), 1);
}

static void test_reopen_keeps_data(void **state)
{
    fixture_t *f = *state;
    storage_t *st = open_ok(f);
    storage_account_t a;
    account_make(&a, "alice", 1, "a");
    assert_int_equal(storage_sync_account_create(st, &a), 0);
    assert_int_equal(storage_sync_property_set(st, "motd", "hello"), 0);
    storage_close(st);

    st = open_ok(f);
    storage_account_t got;
    assert_int_equal(storage_sync_account_get(st, "alice", &got), 0);
    assert_string_equal(got.username, "alice");
    assert_int_equal(got.admin, 1);
    assert_secret_equal(&got.sha1, &a.sha1);
    assert_secret_equal(&got.sha256, &a.sha256);
    assert_int_equal(got.created_at, 1700000000);
    storage_account_clear(&got);
    char *v = NULL;
    assert_int_equal(storage_sync_property_get(st, "motd", &v), 0);
    assert_string_equal(v, "hello");
    free(v);
    storage_close(st);
}

static void test_accounts_sync(void **state)
{
    fixture_t *f = *state;
    storage_t *st = open_ok(f);
    storage_account_t a, got;

    assert_int_equal(storage_sync_account_get(st, "bob", &got), HEARTH_ENOTFOUND);
    assert_null(got.username);

    /* No SHA-1 credential and created_at 0 ("now"). */
    account_make(&a, "bob", 0, "b");
    memset(&a.sha1, 0, sizeof(a.sha1));
    a.created_at = 0;
    int64_t before = time(NULL);
    assert_int_equal(storage_sync_account_create(st, &a), 0);
    assert_int_equal(storage_sync_account_create(st, &a), HEARTH_EEXISTS);
    assert_int_equal(storage_sync_account_get(st, "bob", &got), 0);
    assert_string_equal(got.username, "bob");
    assert_int_equal(got.admin, 0);
    assert_secret_equal(&got.sha1, &a.sha1);
    assert_secret_equal(&got.sha256, &a.sha256);
    assert_true(got.created_at >= before && got.created_at <= time(NULL));
    storage_account_clear(&got);
    assert_int_equal(db_int(f, "SELECT sha1_salt IS NULL AND sha1_iter IS NULL FROM accounts"), 1);

    hearth_scram_secret_t s1, s256;
    secret_set(&s1, "new1", 10000);
    secret_set(&s256, "new256", 20000);
    assert_int_equal(storage_sync_account_set_secrets(st, "bob", &s1, &s256), 0);
    assert_int_equal(storage_sync_account_set_secrets(st, "nobody", &s1, &s256), HEARTH_ENOTFOUND);
    assert_int_equal(storage_sync_account_set_admin(st, "bob", 7), 0);
    assert_int_equal(storage_sync_account_set_admin(st, "nobody", 1), HEARTH_ENOTFOUND);
    assert_int_equal(storage_sync_account_get(st, "bob", &got), 0);
    assert_int_equal(got.admin, 1);
    assert_secret_equal(&got.sha1, &s1);
    assert_secret_equal(&got.sha256, &s256);
    storage_account_clear(&got);

    /* A username is bound, never spliced into SQL. */
    const char *names[] = {"zed", "carol", "o'brien", "ann"};
    for (size_t i = 0; i < 4; i++) {
        account_make(&a, (char *)names[i], (int)(i & 1), names[i]);
        assert_int_equal(storage_sync_account_create(st, &a), 0);
    }
    storage_account_t *list = NULL;
    size_t n = 0;
    assert_int_equal(storage_sync_account_list(st, &list, &n), 0);
    assert_int_equal(n, 5);
    const char *sorted[] = {"ann", "bob", "carol", "o'brien", "zed"};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(list[i].username, sorted[i]);
        storage_account_clear(&list[i]);
    }
    free(list);

    assert_int_equal(storage_sync_account_delete(st, "bob"), 0);
    assert_int_equal(storage_sync_account_delete(st, "bob"), HEARTH_ENOTFOUND);
    assert_int_equal(storage_sync_account_get(st, "bob", &got), HEARTH_ENOTFOUND);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(storage_sync_account_delete(st, names[i]), 0);
    assert_int_equal(storage_sync_account_list(st, &list, &n), 0);
    assert_int_equal(n, 0);
    free(list);
    storage_close(st);
}

static void test_properties_sync(void **state)
{
    fixture_t *f = *state;
    storage_t *st = open_ok(f);
    char *v = (char *)1;
    assert_int_equal(storage_sync_property_get(st, "k", &v), HEARTH_ENOTFOUND);
    assert_null(v);
    assert_int_equal(storage_sync_property_set(st, "k", "one"), 0);
    assert_int_equal(storage_sync_property_set(st, "k", "two"), 0);
    assert_int_equal(storage_sync_property_set(st, "empty", ""), 0);
    assert_int_equal(storage_sync_property_get(st, "k", &v), 0);
    assert_string_equal(v, "two");
    free(v);
    assert_int_equal(storage_sync_property_get(st, "empty", &v), 0);
    assert_string_equal(v, "");
    free(v);
    assert_int_equal(db_int(f, "SELECT count(*) FROM properties"), 2);
    storage_close(st);
}

static void test_invalid_arguments(void **state)
{
    fixture_t *f = *state;
    storage_t *st = open_ok(f);
    storage_account_t a;
    account_make(&a, NULL, 0, "x");
    assert_int_equal(storage_sync_account_create(st, &a), HEARTH_EINVAL);
    a.username = "";
    assert_int_equal(storage_sync_account_create(st, &a), HEARTH_EINVAL);
    char *longname = malloc(STORAGE_NAME_MAX + 2);
    assert_non_null(longname);
    memset(longname, 'a', STORAGE_NAME_MAX + 1);
    longname[STORAGE_NAME_MAX + 1] = '\0';
    a.username = longname;
    assert_int_equal(storage_sync_account_create(st, &a), HEARTH_EINVAL);
    longname[STORAGE_NAME_MAX] = '\0';
    assert_int_equal(storage_sync_account_create(st, &a), 0);
    free(longname);
    a.username = "unterminated";
    memset(a.sha256.salt, 'x', sizeof(a.sha256.salt));
    assert_int_equal(storage_sync_account_create(st, &a), HEARTH_EINVAL);

    char *big = malloc(STORAGE_VALUE_MAX + 2);
    assert_non_null(big);
    memset(big, 'v', STORAGE_VALUE_MAX + 1);
    big[STORAGE_VALUE_MAX + 1] = '\0';
    assert_int_equal(storage_sync_property_set(st, "big", big), HEARTH_EINVAL);
    big[STORAGE_VALUE_MAX] = '\0';
    assert_int_equal(storage_sync_property_set(st, "big", big), 0);
    free(big);

    storage_target_t none = {NULL, NULL, 0};
    assert_int_equal(storage_property_set(st, &none, "k", "v", ignore_status_cb, NULL),
                     HEARTH_EINVAL);
    storage_close(st);
}

#define FIFO_USERS 200 /* 5 requests each: 1000 */

static void test_async_fifo(void **state)
{
    fixture_t *f = *state;
    storage_t *st = open_ok(f);
    inbox_t in;
    inbox_init(&in);
    storage_target_t t = {inbox_post, &in, 0};
    expect_state_t es = {0, pthread_self()};
    expect_t *all[FIFO_USERS * 5];
    int seq = 0;

    for (int i = 0; i < FIFO_USERS; i++) {
        char name[32], tag[32], prop[16], val[32];
        snprintf(name, sizeof(name), "user%04d", i);
        snprintf(tag, sizeof(tag), "u%d", i);
        snprintf(prop, sizeof(prop), "p%d", i % 7);
        snprintf(val, sizeof(val), "v%d", i);
        storage_account_t a;
        account_make(&a, name, i & 1, tag);

        expect_t *e = expect_new(&es, 0);
        assert_int_equal(storage_account_create(st, &t, &a, expect_status_cb, e), 0);
        e->seq = seq, all[seq++] = e;

        /* The get right after the create always sees it. */
        e = expect_new(&es, 0);
        snprintf(e->username, sizeof(e->username), "%s", name);
        e->admin = i & 1;
        snprintf(e->salt, sizeof(e->salt), "%s", a.sha256.salt);
        assert_int_equal(storage_account_get(st, &t, name, expect_account_cb, e), 0);
        e->seq = seq, all[seq++] = e;

        e = expect_new(&es, 0);
        assert_int_equal(storage_property_set(st, &t, prop, val, expect_status_cb, e), 0);
        e->seq = seq, all[seq++] = e;

        e = expect_new(&es, 0);
        expect_t *last = expect_new(&es, 0);
        snprintf(last->username, sizeof(last->username), "%s", name);
        last->admin = i & 1;
        snprintf(last->salt, sizeof(last->salt), "%s", a.sha256.salt);
        if (i % 3 == 0) {
            assert_int_equal(storage_account_delete(st, &t, name, expect_status_cb, e), 0);
            last->err = HEARTH_ENOTFOUND;
        } else if (i % 3 == 1) {
            assert_int_equal(storage_account_set_admin(st, &t, name, !(i & 1), expect_status_cb, e),
                             0);
            last->admin = !(i & 1);
        } else {
            hearth_scram_secret_t s1, s256;
            secret_set(&s1, "x1", 4096);
            secret_set(&s256, val, 4096);
            assert_int_equal(
                storage_account_set_secrets(st, &t, name, &s1, &s256, expect_status_cb, e), 0);
            snprintf(last->salt, sizeof(last->salt), "%s", s256.salt);
        }
        e->seq = seq, all[seq++] = e;
        assert_int_equal(storage_account_get(st, &t, name, expect_account_cb, last), 0);
        last->seq = seq, all[seq++] = last;
    }
    assert_int_equal(seq, FIFO_USERS * 5);

    inbox_finish(&in, (size_t)seq);
    assert_int_equal(es.next_seq, seq);
    for (int i = 0; i < seq; i++) {
        assert_true(all[i]->called);
        free(all[i]);
    }

    /* Properties hold the last value written; the list holds the survivors. */
    for (int k = 0; k < 7; k++) {
        int lastw = (FIFO_USERS - 1) - ((FIFO_USERS - 1 - k) % 7);
        char prop[16];
        expect_t *e = expect_new(&es, 0);
        snprintf(prop, sizeof(prop), "p%d", k);
        snprintf(e->value, sizeof(e->value), "v%d", lastw);
        e->seq = es.next_seq;
        assert_int_equal(storage_property_get(st, &t, prop, expect_property_cb, e), 0);
        inbox_finish(&in, 1);
        assert_true(e->called);
        free(e);
    }
    storage_account_t *list = NULL;
    size_t n = 0;
    assert_int_equal(storage_sync_account_list(st, &list, &n), 0);
    assert_int_equal(n, FIFO_USERS - (FIFO_USERS + 2) / 3);
    for (size_t i = 0; i < n; i++)
        storage_account_clear(&list[i]);
    free(list);

    storage_close(st);
    inbox_destroy(&in);
}

#define BATCH 300

static void test_batch_one_transaction(void **state)
{
    fixture_t *f = *state;
    storage_t *st = open_ok(f);
    storage_account_t a;
    account_make(&a, "dup", 0, "d");
    assert_int_equal(storage_sync_account_create(st, &a), 0);

    inbox_t in;
    inbox_init(&in);
    gate_t g;
    gate_init(&g);
    gate_close_on(&g, st);

    storage_stats_t before, after;
    storage__stats(st, &before);
    storage_target_t t = {inbox_post, &in, 0};
    expect_state_t es = {0, pthread_self()};
    expect_t *all[BATCH];
    for (int i = 0; i < BATCH; i++) {
        char name[32];
        expect_t *e = expect_new(&es, 0);
        e->seq = i;
        all[i] = e;
        if (i == BATCH / 2) {
            /* fails alone: the others, before and after, stay */
            e->err = HEARTH_EEXISTS;
            assert_int_equal(storage_account_create(st, &t, &a, expect_status_cb, e), 0);
            continue;
        }
        if (i % 2 == 0) {
            storage_account_t b;
            snprintf(name, sizeof(name), "batch%04d", i);
            account_make(&b, name, 0, "b");
            assert_int_equal(storage_account_create(st, &t, &b, expect_status_cb, e), 0);
        } else {
            char val[16];
            snprintf(name, sizeof(name), "prop%04d", i);
            snprintf(val, sizeof(val), "%d", i);
            assert_int_equal(storage_property_set(st, &t, name, val, expect_status_cb, e), 0);
        }
    }
    gate_open(&g);
    inbox_finish(&in, BATCH);
    storage__stats(st, &after);

    assert_int_equal(after.batches - before.batches, 1);
    assert_int_equal(after.requests - before.requests, BATCH);
    assert_int_equal(after.commits - before.commits, 1);
    for (int i = 0; i < BATCH; i++) {
        assert_true(all[i]->called);
        free(all[i]);
    }
    assert_int_equal(db_int(f, "SELECT count(*) FROM accounts"), 1 + BATCH / 2 - 1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM properties WHERE name LIKE 'prop%'"),
                     BATCH / 2);

    storage_close(st);
    gate_destroy(&g);
    inbox_destroy(&in);
}

static void *closer(void *arg)
{
    storage_close(arg);
    return NULL;
}

static void test_close_finishes_queued(void **state)
{
    fixture_t *f = *state;
    storage_t *st = open_ok(f);
    inbox_t in;
    inbox_init(&in);
    gate_t g;
    gate_init(&g);
    gate_close_on(&g, st);

    storage_target_t t = {inbox_post, &in, 0};
    expect_state_t es = {0, pthread_self()};
    expect_t *all[BATCH];
    for (int i = 0; i < BATCH; i++) {
        char name[32];
        storage_account_t b;
        snprintf(name, sizeof(name), "late%04d", i);
        account_make(&b, name, 0, "l");
        all[i] = expect_new(&es, 0);
        all[i]->seq = i;
        assert_int_equal(storage_account_create(st, &t, &b, expect_status_cb, all[i]), 0);
    }

    /* Close while they wait behind the gate: the closer blocks until the thread has run them. */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, closer, st), 0);
    usleep(50 * 1000);
    gate_open(&g);
    pthread_join(th, NULL);

    /* The storage is gone; the requests posted before it went are still the owner's. */
    assert_int_equal(in.posted, BATCH);
    inbox_finish(&in, BATCH);
    for (int i = 0; i < BATCH; i++) {
        assert_true(all[i]->called);
        free(all[i]);
    }
    gate_destroy(&g);
    inbox_destroy(&in);
    assert_int_equal(db_int(f, "SELECT count(*) FROM accounts"), BATCH);
}

/* A request done but never finished (owner shutting down) is discarded without its callback. */
static void never_cb(void *ud, int err, const storage_account_t *acct)
{
    fail();
}

static void test_discard(void **state)
{
    fixture_t *f = *state;
    storage_t *st = open_ok(f);
    storage_account_t a;
    account_make(&a, "eve", 0, "e");
    assert_int_equal(storage_sync_account_create(st, &a), 0);
    inbox_t in;
    inbox_init(&in);
    storage_target_t t = {inbox_post, &in, 0};
    assert_int_equal(storage_account_get(st, &t, "eve", never_cb, NULL), 0);
    storage_close(st);
    assert_int_equal(in.posted, 1);
    storage_req_discard(in.items[in.head++ % INBOX_CAP]);
    inbox_destroy(&in);
}

/* ---- IM records (migration 2) ---- */

/* Results of one asynchronous call, finished through the inbox on this thread. */
static int g_err;
static char *g_xml;
typedef struct fetched {
    size_t n;
    int64_t id[8];
    int64_t stamp[8];
    char stanza[8][32];
    size_t len[8];
} fetched_t;
static fetched_t g_fetched;

static void err_cb(void *ud, int err)
{
    g_err = err;
}

/* A blob get whose success may carry no XML (a vCard get for an account without one). */
static void nullable_xml_cb(void *ud, int err, const char *xml)
{
    g_err = err;
    free(g_xml);
    g_xml = xml != NULL ? strdup(xml) : NULL;
}

static void xml_cb(void *ud, int err, const char *xml)
{
    g_err = err;
    free(g_xml);
    g_xml = NULL;
    if (err != 0) {
        assert_null(xml);
        return;
    }
    assert_non_null(xml);
    g_xml = strdup(xml);
}

static void offline_cb(void *ud, int err, const storage_offline_msg_t *msgs, size_t n)
{
    g_err = err;
    memset(&g_fetched, 0, sizeof(g_fetched));
    assert_true(n <= 8);
    assert_true(n == 0 || msgs != NULL);
    g_fetched.n = n;
    for (size_t i = 0; i < n; i++) {
        g_fetched.id[i] = msgs[i].id;
        g_fetched.stamp[i] = msgs[i].stamp_ms;
        assert_true(msgs[i].len < sizeof(g_fetched.stanza[i]));
        assert_int_equal(msgs[i].stanza[msgs[i].len], '\0');
        memcpy(g_fetched.stanza[i], msgs[i].stanza, msgs[i].len);
        g_fetched.len[i] = msgs[i].len;
    }
}

/* The submission's error, or the callback's once the request came back. */
static int done(inbox_t *in, int rc)
{
    if (rc != 0)
        return rc;
    g_err = INT_MIN;
    inbox_finish(in, 1);
    return g_err;
}

typedef struct im_fixture {
    storage_t *st;
    inbox_t in;
    storage_target_t t;
} im_t;

static void im_open(im_t *x, const fixture_t *f, const char *const *users)
{
    x->st = open_ok(f);
    inbox_init(&x->in);
    x->t = (storage_target_t){inbox_post, &x->in, 0};
    for (size_t i = 0; users != NULL && users[i] != NULL; i++) {
        storage_account_t a;
        account_make(&a, (char *)users[i], 0, users[i]);
        assert_int_equal(storage_sync_account_create(x->st, &a), 0);
    }
}

static void im_close(im_t *x)
{
    storage_close(x->st);
    inbox_destroy(&x->in);
    free(g_xml);
    g_xml = NULL;
}

static storage_roster_item_t item_make(const char *jid, const char *name, int sub,
                                       const char **groups, size_t ngroups)
{
    storage_roster_item_t it = {0};
    it.jid = (char *)jid;
    it.name = (char *)name;
    it.subscription = sub;
    it.groups = (char **)groups;
    it.ngroups = ngroups;
    return it;
}

static const char *const ALICE_BOB[] = {"alice", "bob", NULL};

static void test_migrate_v1_to_v2(void **state)
{
    SQLITE_ONLY(); /* an upgrade from SQLite files of older versions */
    fixture_t *f = *state;
    char *m1 = sql_file("0001_accounts.sql");
    if (m1 == NULL)
        skip();
    /* A version-1 database as hearthd before migration 2 left it. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, m1, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
                     "INSERT INTO schema_version (version) VALUES (1);"
                     "INSERT INTO accounts (username, admin, sha256_salt, sha256_iter, "
                     "sha256_stored, sha256_server, created_at) VALUES ('alice', 1, 'salt-a', "
                     "4096, 'stored-a', 'server-a', 1600000000), ('bob', 0, NULL, NULL, NULL, "
                     "NULL, 1600000001);"
                     "INSERT INTO properties (name, value) VALUES ('motd', 'hi');",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    free(m1);

    storage_t *st = open_ok(f);
    assert_int_equal(db_int(f, "SELECT version FROM schema_version"), 9);
    assert_int_equal(db_int(f, "SELECT count(*) FROM schema_version"), 1);
    storage_account_t got;
    assert_int_equal(storage_sync_account_get(st, "alice", &got), 0);
    assert_int_equal(got.admin, 1);
    assert_string_equal(got.sha256.salt, "salt-a");
    assert_int_equal(got.created_at, 1600000000);
    storage_account_clear(&got);
    assert_int_equal(storage_sync_account_get(st, "bob", &got), 0);
    assert_int_equal(got.sha256.iterations, 0);
    storage_account_clear(&got);
    char *v = NULL;
    assert_int_equal(storage_sync_property_get(st, "motd", &v), 0);
    assert_string_equal(v, "hi");
    free(v);

    /* The new tables work for the old accounts. */
    storage_user_t u;
    assert_int_equal(storage_sync_user_load(st, "alice", &u), 0);
    assert_int_equal(u.exists, 1);
    assert_int_equal(u.nitems, 0);
    assert_int_equal(u.roster_ver, 0);
    storage_user_clear(&u);
    size_t n = 99;
    assert_int_equal(storage_sync_offline_count(st, "bob", &n), 0);
    assert_int_equal(n, 0);
    storage_close(st);

    /* Same schema as a database created at version 2. */
    fixture_t f2 = *f;
    snprintf(f2.path, sizeof(f2.path), "%s/fresh.db", f->dir);
    st = open_ok(&f2);
    storage_close(st);
    char *a = schema_dump_file(f->path), *b = schema_dump_file(f2.path);
    assert_string_equal(a, b);
    free(a);
    free(b);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s%s", f2.path, suffix[i]);
        unlink(p);
    }
}

static void test_user_load(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);
    storage_user_t u;

    /* Unknown: 0 and exists 0, nothing filled. */
    assert_int_equal(storage_sync_user_load(x.st, "nobody", &u), 0);
    assert_int_equal(u.exists, 0);
    assert_null(u.items);
    assert_null(u.last_status);
    storage_user_clear(&u);

    /* Known but empty. */
    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.exists, 1);
    assert_int_equal(u.roster_ver, 0);
    assert_int_equal(u.roster_deleted_ver, 0);
    assert_int_equal(u.nitems + u.nrequests + u.nblocked, 0);
    assert_int_equal(u.last_logout, 0);
    assert_null(u.last_status);
    storage_user_clear(&u);

    /* Full, written out of order. */
    const char *g2[] = {"Work", "Friends"};
    const char *g1[] = {"Z"};
    storage_roster_item_t it = item_make("zed@example.org", "Zed", STORAGE_SUB_BOTH, g2, 2);
    assert_int_equal(done(&x.in, storage_roster_put(x.st, &x.t, "alice", &it, 1, err_cb, NULL)), 0);
    it = item_make("amy@example.org", NULL, STORAGE_SUB_TO, NULL, 0);
    it.ask = 1;
    assert_int_equal(done(&x.in, storage_roster_put(x.st, &x.t, "alice", &it, 2, err_cb, NULL)), 0);
    it = item_make("mid@example.net", "M", STORAGE_SUB_FROM, g1, 1);
    it.approved = 7;
    assert_int_equal(done(&x.in, storage_roster_put(x.st, &x.t, "alice", &it, 3, err_cb, NULL)), 0);
    it = item_make("other@example.org", NULL, STORAGE_SUB_NONE, g1, 1);
    assert_int_equal(done(&x.in, storage_roster_put(x.st, &x.t, "bob", &it, 9, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_request_put(x.st, &x.t, "alice", "req2@example.org",
                                                     "<presence type='subscribe'/>", err_cb, NULL)),
                     0);
    assert_int_equal(done(&x.in, storage_request_put(x.st, &x.t, "alice", "req1@example.org",
                                                     "<presence/>", err_cb, NULL)),
                     0);
    const char *blk[] = {"spam@example.com", "evil.example", "a@b/c"};
    assert_int_equal(done(&x.in, storage_block_add(x.st, &x.t, "alice", blk, 3, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_last_set(x.st, &x.t, "alice", 1700000123, "gone fishing",
                                                  err_cb, NULL)),
                     0);

    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.exists, 1);
    assert_int_equal(u.roster_ver, 3);
    assert_int_equal(u.roster_deleted_ver, 0);
    assert_int_equal(u.nitems, 3);
    assert_string_equal(u.items[0].jid, "amy@example.org");
    assert_null(u.items[0].name);
    assert_int_equal(u.items[0].subscription, STORAGE_SUB_TO);
    assert_int_equal(u.items[0].ask, 1);
    assert_int_equal(u.items[0].approved, 0);
    assert_int_equal(u.items[0].ngroups, 0);
    assert_int_equal(u.items[0].ver, 2);
    assert_string_equal(u.items[1].jid, "mid@example.net");
    assert_string_equal(u.items[1].name, "M");
    assert_int_equal(u.items[1].subscription, STORAGE_SUB_FROM);
    assert_int_equal(u.items[1].ask, 0);
    assert_int_equal(u.items[1].approved, 1);
    assert_int_equal(u.items[1].ngroups, 1);
    assert_string_equal(u.items[1].groups[0], "Z");
    assert_string_equal(u.items[2].jid, "zed@example.org");
    assert_string_equal(u.items[2].name, "Zed");
    assert_int_equal(u.items[2].subscription, STORAGE_SUB_BOTH);
    assert_int_equal(u.items[2].ngroups, 2);
    assert_string_equal(u.items[2].groups[0], "Work"); /* as given */
    assert_string_equal(u.items[2].groups[1], "Friends");
    assert_int_equal(u.items[2].ver, 1);
    assert_int_equal(u.nrequests, 2);
    assert_string_equal(u.requests[0].jid, "req1@example.org");
    assert_string_equal(u.requests[0].stanza, "<presence/>");
    assert_string_equal(u.requests[1].jid, "req2@example.org");
    assert_string_equal(u.requests[1].stanza, "<presence type='subscribe'/>");
    assert_int_equal(u.nblocked, 3);
    assert_string_equal(u.blocked[0], "a@b/c");
    assert_string_equal(u.blocked[1], "evil.example");
    assert_string_equal(u.blocked[2], "spam@example.com");
    assert_int_equal(u.last_logout, 1700000123);
    assert_string_equal(u.last_status, "gone fishing");
    storage_user_clear(&u);
    assert_null(u.items);

    /* bob's are his own. */
    assert_int_equal(storage_sync_user_load(x.st, "bob", &u), 0);
    assert_int_equal(u.nitems, 1);
    assert_int_equal(u.roster_ver, 9);
    assert_int_equal(u.nrequests + u.nblocked, 0);
    storage_user_clear(&u);
    im_close(&x);
}

static void test_roster_versions(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);
    storage_user_t u;
    const char *g2[] = {"Friends", "Work"};
    const char *g1[] = {"Family"};

    storage_roster_item_t carol = item_make("carol@x", "Carol", STORAGE_SUB_BOTH, g2, 2);
    carol.ver = 999; /* not read: the stored ver is the call's */
    assert_int_equal(done(&x.in, storage_roster_put(x.st, &x.t, "alice", &carol, 1, err_cb, NULL)),
                     0);
    storage_roster_item_t dave = item_make("dave@x", NULL, STORAGE_SUB_NONE, NULL, 0);
    assert_int_equal(done(&x.in, storage_roster_put(x.st, &x.t, "alice", &dave, 2, err_cb, NULL)),
                     0);
    /* Replace carol: fields and groups. */
    carol = item_make("carol@x", NULL, STORAGE_SUB_TO, g1, 1);
    carol.ask = 1;
    carol.approved = 1;
    assert_int_equal(done(&x.in, storage_roster_put(x.st, &x.t, "alice", &carol, 3, err_cb, NULL)),
                     0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM roster_groups WHERE jid = 'carol@x'"), 1);

    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.roster_ver, 3);
    assert_int_equal(u.roster_deleted_ver, 0);
    assert_int_equal(u.nitems, 2);
    assert_string_equal(u.items[0].jid, "carol@x");
    assert_null(u.items[0].name);
    assert_int_equal(u.items[0].subscription, STORAGE_SUB_TO);
    assert_int_equal(u.items[0].ask, 1);
    assert_int_equal(u.items[0].approved, 1);
    assert_int_equal(u.items[0].ver, 3);
    assert_int_equal(u.items[0].ngroups, 1);
    assert_string_equal(u.items[0].groups[0], "Family");
    assert_int_equal(u.items[1].ver, 2);
    storage_user_clear(&u);

    /* Removal: both versions move; removing again changes nothing. */
    assert_int_equal(
        done(&x.in, storage_roster_delete(x.st, &x.t, "alice", "dave@x", 4, err_cb, NULL)), 0);
    assert_int_equal(
        done(&x.in, storage_roster_delete(x.st, &x.t, "alice", "dave@x", 5, err_cb, NULL)),
        HEARTH_ENOTFOUND);
    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.roster_ver, 4);
    assert_int_equal(u.roster_deleted_ver, 4);
    assert_int_equal(u.nitems, 1);
    storage_user_clear(&u);

    /* A later put moves roster_ver only; last activity is kept alongside. */
    assert_int_equal(done(&x.in, storage_last_set(x.st, &x.t, "alice", 1234, "bye", err_cb, NULL)),
                     0);
    assert_int_equal(done(&x.in, storage_roster_put(x.st, &x.t, "alice", &dave, 6, err_cb, NULL)),
                     0);
    assert_int_equal(
        done(&x.in, storage_roster_delete(x.st, &x.t, "alice", "carol@x", 7, err_cb, NULL)), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM roster_groups"), 0); /* went with carol */
    assert_int_equal(done(&x.in, storage_roster_put(x.st, &x.t, "alice", &carol, 8, err_cb, NULL)),
                     0);
    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.roster_ver, 8);
    assert_int_equal(u.roster_deleted_ver, 7);
    assert_int_equal(u.last_logout, 1234);
    assert_string_equal(u.last_status, "bye");
    storage_user_clear(&u);
    /* ...and last activity keeps the roster versions. */
    assert_int_equal(done(&x.in, storage_last_set(x.st, &x.t, "alice", 1300, NULL, err_cb, NULL)),
                     0);
    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.roster_ver, 8);
    assert_int_equal(u.roster_deleted_ver, 7);
    assert_int_equal(u.last_logout, 1300);
    assert_null(u.last_status);
    storage_user_clear(&u);

    /* Unknown account. */
    assert_int_equal(done(&x.in, storage_roster_put(x.st, &x.t, "nobody", &dave, 1, err_cb, NULL)),
                     HEARTH_ENOTFOUND);
    assert_int_equal(
        done(&x.in, storage_roster_delete(x.st, &x.t, "nobody", "dave@x", 1, err_cb, NULL)),
        HEARTH_ENOTFOUND);
    assert_int_equal(done(&x.in, storage_last_set(x.st, &x.t, "nobody", 1, NULL, err_cb, NULL)),
                     HEARTH_ENOTFOUND);
    assert_int_equal(db_int(f, "SELECT count(*) FROM user_state WHERE username = 'nobody'"), 0);
    assert_int_equal(storage_sync_user_load(x.st, "bob", &u), 0);
    assert_int_equal(u.roster_ver, 0);
    storage_user_clear(&u);
    im_close(&x);
}

static void test_sub_requests(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);
    storage_user_t u;
    assert_int_equal(
        done(&x.in, storage_request_put(x.st, &x.t, "alice", "carol@x", "<p1/>", err_cb, NULL)), 0);
    assert_int_equal(
        done(&x.in, storage_request_put(x.st, &x.t, "alice", "carol@x", "<p2/>", err_cb, NULL)), 0);
    assert_int_equal(
        done(&x.in, storage_request_put(x.st, &x.t, "alice", "amy@x", "<p3/>", err_cb, NULL)), 0);
    assert_int_equal(
        done(&x.in, storage_request_put(x.st, &x.t, "nobody", "amy@x", "<p/>", err_cb, NULL)),
        HEARTH_ENOTFOUND);
    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.nrequests, 2);
    assert_string_equal(u.requests[0].jid, "amy@x");
    assert_string_equal(u.requests[1].jid, "carol@x");
    assert_string_equal(u.requests[1].stanza, "<p2/>");
    storage_user_clear(&u);

    assert_int_equal(
        done(&x.in, storage_request_delete(x.st, &x.t, "alice", "zed@x", err_cb, NULL)), 0);
    assert_int_equal(
        done(&x.in, storage_request_delete(x.st, &x.t, "nobody", "zed@x", err_cb, NULL)), 0);
    assert_int_equal(
        done(&x.in, storage_request_delete(x.st, &x.t, "alice", "carol@x", err_cb, NULL)), 0);
    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.nrequests, 1);
    assert_string_equal(u.requests[0].jid, "amy@x");
    assert_string_equal(u.requests[0].stanza, "<p3/>");
    storage_user_clear(&u);
    im_close(&x);
}

static int offline_store(im_t *x, const char *user, const char *stanza, size_t len, int64_t stamp,
                         unsigned quota)
{
    return done(&x->in,
                storage_offline_store(x->st, &x->t, user, stanza, len, stamp, quota, err_cb, NULL));
}

static void test_offline(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);
    size_t n = 99;

    assert_int_equal(offline_store(&x, "nobody", "<m/>", 4, 1, 10), HEARTH_ENOTFOUND);
    assert_int_equal(storage_sync_offline_count(x.st, "nobody", &n), HEARTH_ENOTFOUND);
    assert_int_equal(n, 0);
    assert_int_equal(offline_store(&x, "alice", "<m1/>", 5, 1000, 3), 0);
    assert_int_equal(offline_store(&x, "alice", "a\0b", 3, 999, 3), 0); /* bytes, not a C string */
    assert_int_equal(offline_store(&x, "bob", "<b/>", 4, 5, 3), 0);
    assert_int_equal(offline_store(&x, "alice", "<m3/>", 5, 1002, 3), 0);
    /* At quota: refused, nothing stored. */
    assert_int_equal(offline_store(&x, "alice", "<m4/>", 5, 1003, 3), HEARTH_ELIMIT);
    assert_int_equal(offline_store(&x, "bob", "<b2/>", 5, 6, 0), HEARTH_ELIMIT);
    assert_int_equal(storage_sync_offline_count(x.st, "alice", &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(storage_sync_offline_count(x.st, "bob", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM offline_messages"), 4);

    /* Oldest first (by arrival, not stamp). */
    assert_int_equal(done(&x.in, storage_offline_fetch(x.st, &x.t, "alice", offline_cb, NULL)), 0);
    assert_int_equal(g_fetched.n, 3);
    assert_string_equal(g_fetched.stanza[0], "<m1/>");
    assert_int_equal(g_fetched.stamp[0], 1000);
    assert_int_equal(g_fetched.len[1], 3);
    assert_memory_equal(g_fetched.stanza[1], "a\0b", 3);
    assert_int_equal(g_fetched.stamp[1], 999);
    assert_string_equal(g_fetched.stanza[2], "<m3/>");
    assert_true(g_fetched.id[0] < g_fetched.id[1] && g_fetched.id[1] < g_fetched.id[2]);
    int64_t second = g_fetched.id[1], last = g_fetched.id[2];

    /* Delete up to the second: the third stays, and bob's. */
    assert_int_equal(done(&x.in, storage_offline_delete(x.st, &x.t, "alice", second, err_cb, NULL)),
                     0);
    assert_int_equal(done(&x.in, storage_offline_fetch(x.st, &x.t, "alice", offline_cb, NULL)), 0);
    assert_int_equal(g_fetched.n, 1);
    assert_string_equal(g_fetched.stanza[0], "<m3/>");
    assert_int_equal(offline_store(&x, "alice", "<m4/>", 5, 1003, 3), 0); /* room again */
    assert_int_equal(
        done(&x.in, storage_offline_delete(x.st, &x.t, "alice", INT64_MAX, err_cb, NULL)), 0);
    assert_int_equal(storage_sync_offline_count(x.st, "alice", &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(storage_sync_offline_count(x.st, "bob", &n), 0);
    assert_int_equal(n, 1);

    /* Ids are never reused, even after the newest was deleted. */
    assert_int_equal(offline_store(&x, "alice", "<m5/>", 5, 1004, 3), 0);
    assert_int_equal(done(&x.in, storage_offline_fetch(x.st, &x.t, "alice", offline_cb, NULL)), 0);
    assert_int_equal(g_fetched.n, 1);
    assert_true(g_fetched.id[0] > last + 1);

    /* Unknown or empty: 0 and none. */
    assert_int_equal(done(&x.in, storage_offline_fetch(x.st, &x.t, "nobody", offline_cb, NULL)), 0);
    assert_int_equal(g_fetched.n, 0);
    assert_int_equal(done(&x.in, storage_offline_delete(x.st, &x.t, "nobody", 100, err_cb, NULL)),
                     0);
    im_close(&x);
}

static void test_vcard_private(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);

    /* an account without a vCard: found, no XML */
    assert_int_equal(done(&x.in, storage_vcard_get(x.st, &x.t, "alice", nullable_xml_cb, NULL)), 0);
    assert_null(g_xml);
    assert_int_equal(done(&x.in, storage_vcard_set(x.st, &x.t, "alice", "<vCard><FN>A</FN></vCard>",
                                                   err_cb, NULL)),
                     0);
    assert_int_equal(done(&x.in, storage_vcard_get(x.st, &x.t, "alice", xml_cb, NULL)), 0);
    assert_string_equal(g_xml, "<vCard><FN>A</FN></vCard>");
    assert_int_equal(done(&x.in, storage_vcard_set(x.st, &x.t, "alice", "<vCard/>", err_cb, NULL)),
                     0);
    assert_int_equal(done(&x.in, storage_vcard_get(x.st, &x.t, "alice", xml_cb, NULL)), 0);
    assert_string_equal(g_xml, "<vCard/>");
    assert_int_equal(done(&x.in, storage_vcard_get(x.st, &x.t, "bob", nullable_xml_cb, NULL)), 0);
    assert_null(g_xml);
    assert_int_equal(done(&x.in, storage_vcard_set(x.st, &x.t, "alice", NULL, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_vcard_set(x.st, &x.t, "alice", NULL, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_vcard_get(x.st, &x.t, "alice", nullable_xml_cb, NULL)), 0);
    assert_null(g_xml);
    assert_int_equal(done(&x.in, storage_vcard_set(x.st, &x.t, "nobody", "<vCard/>", err_cb, NULL)),
                     HEARTH_ENOTFOUND);
    assert_int_equal(done(&x.in, storage_vcard_get(x.st, &x.t, "nobody", xml_cb, NULL)),
                     HEARTH_ENOTFOUND);
    assert_int_equal(db_int(f, "SELECT count(*) FROM vcards"), 0);

    assert_int_equal(
        done(&x.in, storage_private_get(x.st, &x.t, "alice", "storage:bookmarks", xml_cb, NULL)),
        HEARTH_ENOTFOUND);
    assert_int_equal(
        done(&x.in, storage_private_set(x.st, &x.t, "alice", "storage:bookmarks",
                                        "<storage xmlns='storage:bookmarks'/>", 0, err_cb, NULL)),
        0);
    assert_int_equal(done(&x.in, storage_private_set(x.st, &x.t, "alice", "x:y", "<q xmlns='x:y'/>",
                                                     0, err_cb, NULL)),
                     0);
    assert_int_equal(done(&x.in, storage_private_set(x.st, &x.t, "alice", "x:y",
                                                     "<q xmlns='x:y'>2</q>", 0, err_cb, NULL)),
                     0);
    assert_int_equal(
        done(&x.in, storage_private_get(x.st, &x.t, "alice", "storage:bookmarks", xml_cb, NULL)),
        0);
    assert_string_equal(g_xml, "<storage xmlns='storage:bookmarks'/>");
    assert_int_equal(done(&x.in, storage_private_get(x.st, &x.t, "alice", "x:y", xml_cb, NULL)), 0);
    assert_string_equal(g_xml, "<q xmlns='x:y'>2</q>");
    assert_int_equal(done(&x.in, storage_private_get(x.st, &x.t, "bob", "x:y", xml_cb, NULL)),
                     HEARTH_ENOTFOUND);
    assert_int_equal(
        done(&x.in, storage_private_set(x.st, &x.t, "alice", "x:y", NULL, 0, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_private_get(x.st, &x.t, "alice", "x:y", xml_cb, NULL)),
                     HEARTH_ENOTFOUND);
    assert_int_equal(
        done(&x.in, storage_private_set(x.st, &x.t, "nobody", "x:y", "<q/>", 0, err_cb, NULL)),
        HEARTH_ENOTFOUND);
    assert_int_equal(
        done(&x.in, storage_private_set(x.st, &x.t, "nobody", "x:y", NULL, 0, err_cb, NULL)), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM private_xml"), 1);
    im_close(&x);
}

static void test_block_list(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);
    storage_user_t u;
    const char *add1[] = {"b@x", "a@x", "b@x"};
    const char *add2[] = {"c@x", "a@x"};
    const char *rm[] = {"a@x", "zz@x"};

    assert_int_equal(done(&x.in, storage_block_add(x.st, &x.t, "alice", add1, 3, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_block_add(x.st, &x.t, "alice", add2, 2, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_block_add(x.st, &x.t, "alice", NULL, 0, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_block_add(x.st, &x.t, "bob", add2, 1, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_block_add(x.st, &x.t, "nobody", add2, 2, err_cb, NULL)),
                     HEARTH_ENOTFOUND);
    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.nblocked, 3);
    assert_string_equal(u.blocked[0], "a@x");
    assert_string_equal(u.blocked[1], "b@x");
    assert_string_equal(u.blocked[2], "c@x");
    storage_user_clear(&u);

    assert_int_equal(done(&x.in, storage_block_remove(x.st, &x.t, "alice", rm, 2, err_cb, NULL)),
                     0);
    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.nblocked, 2);
    assert_string_equal(u.blocked[0], "b@x");
    storage_user_clear(&u);
    assert_int_equal(done(&x.in, storage_block_remove(x.st, &x.t, "alice", NULL, 0, err_cb, NULL)),
                     0);
    assert_int_equal(done(&x.in, storage_block_remove(x.st, &x.t, "nobody", rm, 2, err_cb, NULL)),
                     0);
    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.nblocked, 0);
    storage_user_clear(&u);
    assert_int_equal(db_int(f, "SELECT count(*) FROM blocklist WHERE username = 'bob'"), 1);
    im_close(&x);
}

static char *filled(size_t len, char c)
{
    char *s = malloc(len + 1);
    assert_non_null(s);
    memset(s, c, len);
    s[len] = '\0';
    return s;
}

static void test_im_bounds(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);
    storage_t *st = x.st;
    storage_target_t *t = &x.t;

    /* Offline stanza: 1..STORAGE_STANZA_MAX bytes. */
    assert_int_equal(STORAGE_STANZA_MAX, 1048576);
    char *big = filled(STORAGE_STANZA_MAX + 1, 'm');
    assert_int_equal(
        storage_offline_store(st, t, "alice", big, STORAGE_STANZA_MAX + 1, 1, 10, err_cb, NULL),
        HEARTH_EINVAL);
    assert_int_equal(storage_offline_store(st, t, "alice", big, 0, 1, 10, err_cb, NULL),
                     HEARTH_EINVAL);
    assert_int_equal(storage_offline_store(st, t, "alice", NULL, 4, 1, 10, err_cb, NULL),
                     HEARTH_EINVAL);
    assert_int_equal(offline_store(&x, "alice", big, STORAGE_STANZA_MAX, 1, 10), 0);
    assert_int_equal(storage_offline_store(st, t, "", "<m/>", 4, 1, 10, err_cb, NULL),
                     HEARTH_EINVAL);
    assert_int_equal(storage_offline_store(st, t, NULL, "<m/>", 4, 1, 10, err_cb, NULL),
                     HEARTH_EINVAL);
    assert_int_equal(storage_offline_fetch(st, t, "alice", NULL, NULL), HEARTH_EINVAL);

    /* Subscription request stanza. */
    assert_int_equal(storage_request_put(st, t, "alice", "c@x", big, err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_request_put(st, t, "alice", "", "<p/>", err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_request_put(st, t, "alice", "c@x", NULL, err_cb, NULL), HEARTH_EINVAL);

    /* vCard and private XML. */
    big[STORAGE_XML_MAX] = '\0';
    assert_int_equal(done(&x.in, storage_vcard_set(st, t, "alice", big, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_private_set(st, t, "alice", "n", big, 0, err_cb, NULL)),
                     0);
    big[STORAGE_XML_MAX] = 'm';
    assert_int_equal(storage_vcard_set(st, t, "alice", big, err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_private_set(st, t, "alice", "n", big, 0, err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_private_set(st, t, "alice", "", "<q/>", 0, err_cb, NULL),
                     HEARTH_EINVAL);
    assert_int_equal(storage_private_get(st, t, "alice", NULL, xml_cb, NULL), HEARTH_EINVAL);
    free(big);

    /* Last activity status. */
    char *status = filled(STORAGE_VALUE_MAX + 1, 's');
    assert_int_equal(storage_last_set(st, t, "alice", 1, status, err_cb, NULL), HEARTH_EINVAL);
    free(status);

    /* Block list: at most STORAGE_BLOCK_MAX JIDs, each 1..STORAGE_JID_MAX bytes. */
    assert_int_equal(STORAGE_BLOCK_MAX, 10000);
    const char **jids = calloc(STORAGE_BLOCK_MAX + 1, sizeof(*jids));
    char(*bufs)[24] = calloc(STORAGE_BLOCK_MAX + 1, sizeof(*bufs));
    assert_non_null(jids);
    assert_non_null(bufs);
    for (size_t i = 0; i <= STORAGE_BLOCK_MAX; i++) {
        snprintf(bufs[i], sizeof(bufs[i]), "u%05zu@x", i);
        jids[i] = bufs[i];
    }
    assert_int_equal(storage_block_add(st, t, "alice", jids, STORAGE_BLOCK_MAX + 1, err_cb, NULL),
                     HEARTH_EINVAL);
    assert_int_equal(
        storage_block_remove(st, t, "alice", jids, STORAGE_BLOCK_MAX + 1, err_cb, NULL),
        HEARTH_EINVAL);
    assert_int_equal(storage_block_add(st, t, "alice", NULL, 2, err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(
        done(&x.in, storage_block_add(st, t, "alice", jids, STORAGE_BLOCK_MAX, err_cb, NULL)), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM blocklist"), STORAGE_BLOCK_MAX);
    char *longjid = filled(STORAGE_JID_MAX + 1, 'j');
    jids[1] = longjid;
    assert_int_equal(storage_block_add(st, t, "alice", jids, 2, err_cb, NULL), HEARTH_EINVAL);
    jids[1] = "";
    assert_int_equal(storage_block_add(st, t, "alice", jids, 2, err_cb, NULL), HEARTH_EINVAL);
    jids[1] = NULL;
    assert_int_equal(storage_block_remove(st, t, "alice", jids, 2, err_cb, NULL), HEARTH_EINVAL);
    free(jids);
    free(bufs);

    /* Roster items. */
    assert_int_equal(storage_roster_put(st, t, "alice", NULL, 1, err_cb, NULL), HEARTH_EINVAL);
    storage_roster_item_t it = item_make(longjid, NULL, 0, NULL, 0);
    assert_int_equal(storage_roster_put(st, t, "alice", &it, 1, err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_roster_delete(st, t, "alice", longjid, 1, err_cb, NULL),
                     HEARTH_EINVAL);
    longjid[STORAGE_JID_MAX] = '\0';
    assert_int_equal(done(&x.in, storage_roster_put(st, t, "alice", &it, 1, err_cb, NULL)), 0);
    free(longjid);
    it = item_make("c@x", NULL, STORAGE_SUB_BOTH + 1, NULL, 0);
    assert_int_equal(storage_roster_put(st, t, "alice", &it, 1, err_cb, NULL), HEARTH_EINVAL);
    it.subscription = -1;
    assert_int_equal(storage_roster_put(st, t, "alice", &it, 1, err_cb, NULL), HEARTH_EINVAL);
    it.subscription = STORAGE_SUB_BOTH;
    it.ngroups = 1; /* groups NULL */
    assert_int_equal(storage_roster_put(st, t, "alice", &it, 1, err_cb, NULL), HEARTH_EINVAL);
    const char *groups[STORAGE_GROUPS_MAX + 1];
    char gbuf[STORAGE_GROUPS_MAX + 1][8];
    for (size_t i = 0; i <= STORAGE_GROUPS_MAX; i++) {
        snprintf(gbuf[i], sizeof(gbuf[i]), "g%03zu", i);
        groups[i] = gbuf[i];
    }
    it.groups = (char **)groups;
    it.ngroups = STORAGE_GROUPS_MAX + 1;
    assert_int_equal(storage_roster_put(st, t, "alice", &it, 1, err_cb, NULL), HEARTH_EINVAL);
    it.ngroups = STORAGE_GROUPS_MAX;
    assert_int_equal(done(&x.in, storage_roster_put(st, t, "alice", &it, 2, err_cb, NULL)), 0);
    char *longgroup = filled(STORAGE_GROUP_MAX + 1, 'g');
    groups[5] = longgroup;
    assert_int_equal(storage_roster_put(st, t, "alice", &it, 1, err_cb, NULL), HEARTH_EINVAL);
    groups[5] = "";
    assert_int_equal(storage_roster_put(st, t, "alice", &it, 1, err_cb, NULL), HEARTH_EINVAL);
    longgroup[STORAGE_GROUP_MAX] = '\0';
    groups[5] = longgroup;
    assert_int_equal(done(&x.in, storage_roster_put(st, t, "alice", &it, 3, err_cb, NULL)), 0);
    it.ngroups = 0;
    it.name = longgroup;
    assert_int_equal(done(&x.in, storage_roster_put(st, t, "alice", &it, 4, err_cb, NULL)), 0);
    longgroup[STORAGE_GROUP_MAX] = 'g';
    assert_int_equal(storage_roster_put(st, t, "alice", &it, 1, err_cb, NULL), HEARTH_EINVAL);
    free(longgroup);

    storage_user_t u;
    assert_int_equal(storage_sync_user_load(st, "", &u), HEARTH_EINVAL);
    assert_int_equal(storage_user_load(st, t, "alice", NULL, NULL), HEARTH_EINVAL);
    size_t n;
    assert_int_equal(storage_sync_offline_count(st, NULL, &n), HEARTH_EINVAL);
    im_close(&x);
}

/* Deleting an account removes every IM row it owns (hearthctl deluser takes the same path). */
static const char *const IM_TABLES[] = {
    "user_state",  "roster_items", "roster_groups", "sub_requests",  "offline_messages",  "vcards",
    "private_xml", "blocklist",    "archive",       "archive_prefs", "archive_prefs_jids"};
#define N_IM_TABLES (sizeof(IM_TABLES) / sizeof(IM_TABLES[0]))

static int64_t rows_of(const fixture_t *f, const char *table, const char *user)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE username = '%s'", table, user);
    return db_int(f, sql);
}

static void im_fill(im_t *x, const char *user)
{
    const char *groups[] = {"A", "B"};
    const char *jids[] = {"b1@x", "b2@x"};
    storage_roster_item_t it = item_make("c@x", "C", STORAGE_SUB_BOTH, groups, 2);
    storage_t *st = x->st;
    storage_target_t *t = &x->t;
    assert_int_equal(done(&x->in, storage_roster_put(st, t, user, &it, 1, err_cb, NULL)), 0);
    assert_int_equal(done(&x->in, storage_request_put(st, t, user, "r@x", "<p/>", err_cb, NULL)),
                     0);
    assert_int_equal(offline_store(x, user, "<m/>", 4, 1, 10), 0);
    assert_int_equal(offline_store(x, user, "<m/>", 4, 2, 10), 0);
    assert_int_equal(done(&x->in, storage_vcard_set(st, t, user, "<vCard/>", err_cb, NULL)), 0);
    assert_int_equal(done(&x->in, storage_private_set(st, t, user, "n", "<q/>", 0, err_cb, NULL)),
                     0);
    assert_int_equal(done(&x->in, storage_block_add(st, t, user, jids, 2, err_cb, NULL)), 0);
    assert_int_equal(done(&x->in, storage_last_set(st, t, user, 5, "s", err_cb, NULL)), 0);
    storage_archive_msg_t m = {
        .id = "a1", .with = "c@x", .stamp_ms = 1, .stanza = "<m/>", .len = 4};
    assert_int_equal(done(&x->in, storage_archive_store(st, t, user, &m, err_cb, NULL)), 0);
    char *always[] = {"c@x"};
    storage_archive_prefs_t p = {
        .default_mode = STORAGE_ARCHIVE_ROSTER, .always = always, .nalways = 1};
    assert_int_equal(done(&x->in, storage_archive_prefs_set(st, t, user, &p, err_cb, NULL)), 0);
}

static void test_account_delete_cascades(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);
    im_fill(&x, "alice");
    im_fill(&x, "bob");
    for (size_t i = 0; i < N_IM_TABLES; i++) {
        assert_true(rows_of(f, IM_TABLES[i], "alice") > 0);
        assert_true(rows_of(f, IM_TABLES[i], "bob") > 0);
    }
    assert_int_equal(storage_sync_account_delete(x.st, "alice"), 0);
    for (size_t i = 0; i < N_IM_TABLES; i++) {
        assert_int_equal(rows_of(f, IM_TABLES[i], "alice"), 0);
        assert_true(rows_of(f, IM_TABLES[i], "bob") > 0);
    }
    /* And through the asynchronous call. */
    assert_int_equal(done(&x.in, storage_account_delete(x.st, &x.t, "bob", err_cb, NULL)), 0);
    for (size_t i = 0; i < N_IM_TABLES; i++) {
        char sql[80];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", IM_TABLES[i]);
        assert_int_equal(db_int(f, sql), 0);
    }
    /* A re-created account starts empty. */
    storage_account_t a;
    account_make(&a, "alice", 0, "a");
    assert_int_equal(storage_sync_account_create(x.st, &a), 0);
    storage_user_t u;
    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.exists, 1);
    assert_int_equal(u.roster_ver + u.last_logout, 0);
    assert_int_equal(u.nitems + u.nrequests + u.nblocked, 0);
    storage_user_clear(&u);
    if (!g_pgsql) /* PostgreSQL enforces foreign keys always */
        assert_int_equal(db_int(f, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    im_close(&x);
}

/* Mixed IM requests for many users, queued behind a gate so that they run as one batch: every
 * callback comes back in submission order with what the requests before it left. */
typedef struct im_expect {
    expect_t e;
    int kind; /* 0 status, 1 user, 2 offline, 3 blob */
    int exists;
    int64_t roster_ver, deleted_ver;
    size_t nitems, nblocked, nmsgs;
    char text[32]; /* blob: the xml; offline: the first stanza */
} im_expect_t;

static void im_status_cb(void *ud, int err)
{
    im_expect_t *x = ud;
    assert_int_equal(x->kind, 0);
    expect_called(&x->e, err);
}

static void im_user_cb(void *ud, int err, const storage_user_t *u)
{
    im_expect_t *x = ud;
    assert_int_equal(x->kind, 1);
    expect_called(&x->e, err);
    assert_non_null(u);
    assert_int_equal(u->exists, x->exists);
    assert_int_equal(u->roster_ver, x->roster_ver);
    assert_int_equal(u->roster_deleted_ver, x->deleted_ver);
    assert_int_equal(u->nitems, x->nitems);
    assert_int_equal(u->nblocked, x->nblocked);
}

static void im_offline_cb(void *ud, int err, const storage_offline_msg_t *msgs, size_t n)
{
    im_expect_t *x = ud;
    assert_int_equal(x->kind, 2);
    expect_called(&x->e, err);
    assert_int_equal(n, x->nmsgs);
    for (size_t i = 1; i < n; i++)
        assert_true(msgs[i - 1].id < msgs[i].id);
    if (n > 0)
        assert_string_equal(msgs[0].stanza, x->text);
}

static void im_blob_cb(void *ud, int err, const char *xml)
{
    im_expect_t *x = ud;
    assert_int_equal(x->kind, 3);
    expect_called(&x->e, err);
    if (err == 0)
        assert_string_equal(xml, x->text);
    else
        assert_null(xml);
}

#define IM_FIFO_USERS 40
#define IM_FIFO_PER 17

static void test_async_im_fifo(void **state)
{
    fixture_t *f = *state;
    storage_t *st = open_ok(f);
    inbox_t in;
    inbox_init(&in);
    gate_t g;
    gate_init(&g);
    gate_close_on(&g, st);
    storage_stats_t before, after;
    storage__stats(st, &before);

    storage_target_t t = {inbox_post, &in, 0};
    expect_state_t es = {0, pthread_self()};
    im_expect_t *all = calloc(IM_FIFO_USERS * IM_FIFO_PER, sizeof(*all));
    assert_non_null(all);
    int seq = 0;
#define NEXT(kind_, err_)                                                                          \
    (x = &all[seq], x->e.state = &es, x->e.seq = seq, x->e.err = (err_), x->kind = (kind_), seq++, \
     x)

    for (int i = 0; i < IM_FIFO_USERS; i++) {
        char name[16], vcard[32], stanza[32];
        snprintf(name, sizeof(name), "u%03d", i);
        snprintf(vcard, sizeof(vcard), "<vCard>%d</vCard>", i);
        snprintf(stanza, sizeof(stanza), "<m n='%d'/>", i);
        const char *blk[] = {"x@y", "z@y"};
        storage_roster_item_t it = item_make("c@x", NULL, STORAGE_SUB_BOTH, NULL, 0);
        storage_account_t a;
        account_make(&a, name, 0, name);
        im_expect_t *x;

        assert_int_equal(storage_account_create(st, &t, &a, im_status_cb, NEXT(0, 0)), 0);
        assert_int_equal(storage_roster_put(st, &t, name, &it, 1, im_status_cb, NEXT(0, 0)), 0);
        x = NEXT(1, 0);
        x->exists = 1, x->roster_ver = 1, x->nitems = 1;
        assert_int_equal(storage_user_load(st, &t, name, im_user_cb, x), 0);
        assert_int_equal(storage_offline_store(st, &t, name, stanza, strlen(stanza), 1, 2,
                                               im_status_cb, NEXT(0, 0)),
                         0);
        assert_int_equal(
            storage_offline_store(st, &t, name, "<m/>", 4, 2, 2, im_status_cb, NEXT(0, 0)), 0);
        assert_int_equal(storage_offline_store(st, &t, name, "<m/>", 4, 3, 2, im_status_cb,
                                               NEXT(0, HEARTH_ELIMIT)),
                         0);
        x = NEXT(2, 0);
        x->nmsgs = 2;
        snprintf(x->text, sizeof(x->text), "%s", stanza);
        assert_int_equal(storage_offline_fetch(st, &t, name, im_offline_cb, x), 0);
        assert_int_equal(storage_vcard_set(st, &t, name, vcard, im_status_cb, NEXT(0, 0)), 0);
        x = NEXT(3, 0);
        snprintf(x->text, sizeof(x->text), "%s", vcard);
        assert_int_equal(storage_vcard_get(st, &t, name, im_blob_cb, x), 0);
        assert_int_equal(storage_roster_delete(st, &t, name, "c@x", 2, im_status_cb, NEXT(0, 0)),
                         0);
        assert_int_equal(
            storage_roster_delete(st, &t, name, "c@x", 3, im_status_cb, NEXT(0, HEARTH_ENOTFOUND)),
            0);
        assert_int_equal(storage_block_add(st, &t, name, blk, 2, im_status_cb, NEXT(0, 0)), 0);
        x = NEXT(1, 0);
        x->exists = 1, x->roster_ver = 2, x->deleted_ver = 2, x->nblocked = 2;
        assert_int_equal(storage_user_load(st, &t, name, im_user_cb, x), 0);
        if (i % 2 == 0) {
            assert_int_equal(storage_account_delete(st, &t, name, im_status_cb, NEXT(0, 0)), 0);
            assert_int_equal(storage_vcard_get(st, &t, name, im_blob_cb, NEXT(3, HEARTH_ENOTFOUND)),
                             0);
            x = NEXT(1, 0); /* exists 0 */
            assert_int_equal(storage_user_load(st, &t, name, im_user_cb, x), 0);
            assert_int_equal(storage_offline_store(st, &t, name, "<m/>", 4, 4, 2, im_status_cb,
                                                   NEXT(0, HEARTH_ENOTFOUND)),
                             0);
        } else {
            assert_int_equal(
                storage_offline_delete(st, &t, name, INT64_MAX, im_status_cb, NEXT(0, 0)), 0);
            assert_int_equal(storage_offline_fetch(st, &t, name, im_offline_cb, NEXT(2, 0)), 0);
            assert_int_equal(storage_last_set(st, &t, name, 9, NULL, im_status_cb, NEXT(0, 0)), 0);
            assert_int_equal(
                storage_private_set(st, &t, name, "n", "<q/>", 0, im_status_cb, NEXT(0, 0)), 0);
        }
    }
#undef NEXT
    assert_true(seq <= IM_FIFO_USERS * IM_FIFO_PER);
    gate_open(&g);
    inbox_finish(&in, (size_t)seq);
    storage__stats(st, &after);
    assert_int_equal(es.next_seq, seq);
    for (int i = 0; i < seq; i++)
        assert_true(all[i].e.called);
    assert_int_equal(after.batches - before.batches, 1);
    assert_int_equal(after.commits - before.commits, 1);
    free(all);

    assert_int_equal(db_int(f, "SELECT count(*) FROM accounts"), IM_FIFO_USERS / 2);
    assert_int_equal(db_int(f, "SELECT count(*) FROM blocklist"), IM_FIFO_USERS);
    assert_int_equal(db_int(f, "SELECT count(*) FROM offline_messages"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM vcards"), IM_FIFO_USERS / 2);
    storage_close(st);
    gate_destroy(&g);
    inbox_destroy(&in);
}

/* ---- migration 3: the message archive, documents and logs ---- */

static void test_migrate_v2_to_v3(void **state)
{
    SQLITE_ONLY(); /* an upgrade from SQLite files of older versions */
    fixture_t *f = *state;
    char *m1 = sql_file("0001_accounts.sql"), *m2 = sql_file("0002_im.sql");
    if (m1 == NULL || m2 == NULL) {
        free(m1);
        free(m2);
        skip();
    }
    /* A version-2 database as hearthd before migration 3 left it, with IM rows. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, m1, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, m2, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
                     "INSERT INTO schema_version (version) VALUES (2);"
                     "INSERT INTO accounts (username, admin, created_at) VALUES ('alice', 0, 1);"
                     "INSERT INTO roster_items (username, jid, subscription, ver) "
                     "VALUES ('alice', 'bob@x', 3, 7);"
                     "INSERT INTO user_state (username, roster_ver) VALUES ('alice', 7);"
                     "INSERT INTO offline_messages (username, stamp_ms, stanza) "
                     "VALUES ('alice', 5, '<m/>');"
                     "INSERT INTO vcards (username, xml) VALUES ('alice', '<vCard/>');",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    free(m1);
    free(m2);

    im_t x;
    im_open(&x, f, NULL);
    assert_int_equal(db_int(f, "SELECT version FROM schema_version"), 9);
    assert_int_equal(db_int(f, "SELECT count(*) FROM schema_version"), 1);
    storage_user_t u;
    assert_int_equal(storage_sync_user_load(x.st, "alice", &u), 0);
    assert_int_equal(u.exists, 1);
    assert_int_equal(u.nitems, 1);
    assert_string_equal(u.items[0].jid, "bob@x");
    assert_int_equal(u.roster_ver, 7);
    storage_user_clear(&u);
    size_t n = 0;
    assert_int_equal(storage_sync_offline_count(x.st, "alice", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(done(&x.in, storage_vcard_get(x.st, &x.t, "alice", xml_cb, NULL)), 0);
    assert_string_equal(g_xml, "<vCard/>");
    /* The new tables work for the old account. */
    storage_archive_msg_t m = {
        .id = "i", .with = "bob@x", .stamp_ms = 1, .stanza = "<m/>", .len = 4};
    assert_int_equal(done(&x.in, storage_archive_store(x.st, &x.t, "alice", &m, err_cb, NULL)), 0);
    im_close(&x);

    /* Same schema as a database created at version 3. */
    fixture_t f2 = *f;
    snprintf(f2.path, sizeof(f2.path), "%s/fresh.db", f->dir);
    storage_t *st = open_ok(&f2);
    storage_close(st);
    char *a = schema_dump_file(f->path), *b = schema_dump_file(f2.path);
    assert_string_equal(a, b);
    free(a);
    free(b);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s%s", f2.path, suffix[i]);
        unlink(p);
    }
}

/* What an archive query gave, copied on the test thread. */
#define PAGE_CAP 16
typedef struct got_page {
    bool called;
    size_t n, count;
    int complete;
    char id[PAGE_CAP][24];
    char with[PAGE_CAP][16];
    char stanza[PAGE_CAP][32];
    size_t len[PAGE_CAP];
    int64_t stamp[PAGE_CAP];
    int outgoing[PAGE_CAP];
} got_page_t;
static got_page_t g_page;

static void archive_cb(void *ud, int err, const storage_archive_page_t *page)
{
    g_err = err;
    memset(&g_page, 0, sizeof(g_page));
    g_page.called = true;
    if (err != 0) {
        assert_null(page);
        return;
    }
    assert_non_null(page);
    assert_true(page->n <= PAGE_CAP);
    g_page.n = page->n;
    g_page.count = page->count;
    g_page.complete = page->complete;
    for (size_t i = 0; i < page->n; i++) {
        const storage_archive_msg_t *m = &page->msgs[i];
        snprintf(g_page.id[i], sizeof(g_page.id[i]), "%s", m->id);
        snprintf(g_page.with[i], sizeof(g_page.with[i]), "%s", m->with);
        assert_true(m->len < sizeof(g_page.stanza[i]));
        assert_int_equal(m->stanza[m->len], '\0');
        memcpy(g_page.stanza[i], m->stanza, m->len + 1);
        g_page.len[i] = m->len;
        g_page.stamp[i] = m->stamp_ms;
        g_page.outgoing[i] = m->outgoing;
    }
}

static int archive_store(im_t *x, const char *user, const char *id, const char *with, int64_t stamp,
                         int outgoing, const char *stanza)
{
    storage_archive_msg_t m = {.id = (char *)id,
                               .with = (char *)with,
                               .stamp_ms = stamp,
                               .outgoing = outgoing,
                               .stanza = (char *)stanza,
                               .len = strlen(stanza)};
    return done(&x->in, storage_archive_store(x->st, &x->t, user, &m, err_cb, NULL));
}

/* A query; the page in g_page. */
static int archive_q(im_t *x, const char *user, const char *with, int64_t start, int64_t end,
                     const char *after, const char *before, size_t max)
{
    storage_archive_query_t q = {.with = with,
                                 .start_ms = start,
                                 .end_ms = end,
                                 .after_id = after,
                                 .before_id = before,
                                 .max = max};
    return done(&x->in, storage_archive_query(x->st, &x->t, user, &q, archive_cb, NULL));
}

#define ALL STORAGE_ARCHIVE_NO_START, STORAGE_ARCHIVE_NO_END

/* The page's ids as "m3 m4 m5". */
static const char *page_ids(void)
{
    static char buf[PAGE_CAP * 25];
    buf[0] = '\0';
    for (size_t i = 0; i < g_page.n; i++) {
        if (i)
            strcat(buf, " ");
        strcat(buf, g_page.id[i]);
    }
    return buf;
}

static void assert_page(const char *ids, size_t count, int complete)
{
    assert_string_equal(page_ids(), ids);
    assert_int_equal(g_page.count, count);
    assert_int_equal(g_page.complete, complete);
}

static void archive_fill(im_t *x)
{
    /* alice: m0..m9, even ones with bob, odd ones with carol; stamps 1000, 1010, ... */
    for (int i = 0; i < 10; i++) {
        char id[8], st[32];
        snprintf(id, sizeof(id), "m%d", i);
        snprintf(st, sizeof(st), "<message id='%d'/>", i);
        assert_int_equal(archive_store(x, "alice", id, i % 2 ? "carol@x" : "bob@x", 1000 + i * 10,
                                       i % 3 == 0, st),
                         0);
    }
    assert_int_equal(archive_store(x, "bob", "b0", "alice@x", 1005, 0, "<message/>"), 0);
}

/* ---- migration 6: the archive's seq without AUTOINCREMENT ---- */

static void test_migrate_v5_to_v6(void **state)
{
    SQLITE_ONLY(); /* an upgrade from SQLite files of older versions */
    fixture_t *f = *state;
    const char *files[] = {"0001_accounts.sql", "0002_im.sql", "0003_archive.sql",
                           "0004_muc_affiliations.sql", "0005_pubsub.sql"};
    char *m[5];
    int missing = 0;
    for (size_t i = 0; i < 5; i++)
        missing |= (m[i] = sql_file(files[i])) == NULL;
    if (missing) {
        for (size_t i = 0; i < 5; i++)
            free(m[i]);
        skip();
    }
    /* A version-5 database with archived messages, the newest deleted: AUTOINCREMENT had
     * counted up to 3. */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(sqlite3_exec(db, m[i], NULL, NULL, NULL), SQLITE_OK);
        free(m[i]);
    }
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
                     "INSERT INTO schema_version (version) VALUES (5);"
                     "INSERT INTO accounts (username, admin, created_at) VALUES ('alice', 0, 1);"
                     "INSERT INTO archive (username, id, with_jid, stamp_ms, outgoing, stanza) "
                     "VALUES ('alice', 'a1', 'bob@x', 10, 0, '<message>1</message>'),"
                     "('alice', 'a2', 'bob@x', 20, 1, '<message>2</message>'),"
                     "('alice', 'a3', 'carol@x', 30, 0, '<message>3</message>');"
                     "DELETE FROM archive WHERE id = 'a2';"
                     "INSERT INTO logs (kind, key, stamp_ms, xml) VALUES ('muc', 'r@muc.x', 5, "
                     "'<m1/>'), ('muc', 'r@muc.x', 6, '<m2/>');",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    im_t x;
    im_open(&x, f, NULL);
    assert_int_equal(db_int(f, "SELECT version FROM schema_version"), 9);
    /* Every row kept, with its seq; the sequence row is gone with AUTOINCREMENT. */
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive"), 2);
    /* Migration 7 then kept each under its id, keyed by its time. */
    assert_int_equal(db_int(f, "SELECT seq >> 21 FROM archive WHERE legacy_id = 'a1'"), 10);
    assert_int_equal(db_int(f, "SELECT seq >> 21 FROM archive WHERE legacy_id = 'a3'"), 30);
    assert_int_equal(db_int(f, "SELECT count(*) FROM sqlite_sequence WHERE name LIKE 'archive%'"),
                     0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM sqlite_master WHERE name = 'archive_old'"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM sqlite_sequence WHERE name LIKE 'logs%'"), 0);
    assert_int_equal(db_int(f, "SELECT id FROM logs WHERE xml = '<m2/>'"), 2);
    /* Migration 8 names the log's entries by their ids. */
    assert_int_equal(db_int(f, "SELECT count(*) FROM logs WHERE ref = 'log-' || id"), 2);
    /* A new message comes after the old ones, in the archive order queries page by. */
    storage_archive_msg_t msg = {
        .id = "a4", .with = "bob@x", .stamp_ms = 40, .stanza = "<message>4</message>", .len = 20};
    assert_int_equal(done(&x.in, storage_archive_store(x.st, &x.t, "alice", &msg, err_cb, NULL)),
                     0);
    assert_int_equal(db_int(f, "SELECT seq >> 21 FROM archive WHERE legacy_id = 'a4'"), 40);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, NULL, 10), 0);
    assert_int_equal(g_page.n, 3);
    assert_string_equal(g_page.id[0], "a1");
    assert_string_equal(g_page.id[1], "a3");
    assert_string_equal(g_page.id[2], "a4");
    im_close(&x);

    /* Same schema as a database created at version 6. */
    fixture_t f2 = *f;
    snprintf(f2.path, sizeof(f2.path), "%s/fresh.db", f->dir);
    storage_t *st = open_ok(&f2);
    storage_close(st);
    char *a = schema_dump_file(f->path), *b = schema_dump_file(f2.path);
    assert_string_equal(a, b);
    free(a);
    free(b);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s%s", f2.path, suffix[i]);
        unlink(p);
    }
}

/* ---- migration 7: a message stored once for both parties, under a key carrying its time ---- */

/* The key in decimal (the last four results stay valid). */
static const char *key_text(int64_t ms, int gen, int counter)
{
    static char buf[4][24];
    static int next;
    char *b = buf[next++ % 4];
    snprintf(b, sizeof(buf[0]), "%" PRId64,
             (ms << STORAGE_ARCHIVE_MS_SHIFT) | ((int64_t)gen << STORAGE_ARCHIVE_GEN_SHIFT) |
                 counter);
    return b;
}

static void test_archive_key_parse(void **state)
{
    (void)state;
    int64_t k = -1;
    assert_int_equal(storage_archive_key_parse("0", &k), 0);
    assert_int_equal(k, 0);
    assert_int_equal(storage_archive_key_parse("9223372036854775807", &k), 0);
    assert_int_equal(k, INT64_MAX);
    const char *bad[] = {
        "",   "01",  "-1", "1a", " 1", "9223372036854775808", "99999999999999999999",
        "m1", "1.0", "+1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(storage_archive_key_parse(bad[i], &k), -1);
    assert_int_equal(storage_archive_ms_of_key(storage_archive_key_of_ms(1733472000123)),
                     1733472000123);
    assert_int_equal(storage_archive_key_of_ms(-5), 0);
}

static void test_archive_once(void **state)
{
    fixture_t *f = *state;
    im_t x;
    static const char *const users[] = {"alice", "bob", "carol", NULL};
    im_open(&x, f, users);
    const int64_t t0 = 1733472000000;
    char k1[24], k2[24];
    snprintf(k1, sizeof(k1), "%s", key_text(t0, 0, 0));
    snprintf(k2, sizeof(k2), "%s", key_text(t0, 1, 0));
    /* alice to bob: the sender's copy and the recipient's, the same text under one key. */
    assert_int_equal(archive_store(&x, "alice", k1, "bob@x", 0, 1, "<message>1</message>"), 0);
    assert_int_equal(archive_store(&x, "bob", k1, "alice@x", 0, 0, "<message>1</message>"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive_msg"), 1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive WHERE stanza IS NULL"), 2);
    /* Twice in one archive: refused, nothing changed. */
    assert_int_equal(archive_store(&x, "bob", k1, "alice@x", 0, 0, "<message>1</message>"),
                     HEARTH_EEXISTS);
    /* Another text under a key already held (the other party's copy in another form, or a
     * clock set back): the party keeps its own copy and no one sees another's. */
    assert_int_equal(archive_store(&x, "carol", k1, "dave@y", 0, 0, "<message>other</message>"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive_msg"), 1);
    assert_int_equal(archive_q(&x, "carol", NULL, ALL, NULL, NULL, 10), 0);
    assert_page(k1, 1, 1);
    assert_string_equal(g_page.stanza[0], "<message>other</message>");
    assert_int_equal(archive_q(&x, "bob", NULL, ALL, NULL, NULL, 10), 0);
    assert_page(k1, 1, 1);
    assert_string_equal(g_page.stanza[0], "<message>1</message>");
    assert_int_equal(g_page.stamp[0], t0);
    assert_int_equal(g_page.outgoing[0], 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, NULL, 10), 0);
    assert_int_equal(g_page.outgoing[0], 1);
    /* No account: nothing stored, not even the shared text. */
    assert_int_equal(archive_store(&x, "nobody", k2, "bob@x", 0, 1, "<message>2</message>"),
                     HEARTH_ENOTFOUND);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive_msg"), 1);

    /* Time bounds are key bounds: one message per 10 ms, from t0 + 10. */
    char keys[6][24];
    for (int i = 0; i < 6; i++) {
        snprintf(keys[i], sizeof(keys[i]), "%s", key_text(t0 + 10 * (i + 1), i % 3, i));
        assert_int_equal(archive_store(&x, "alice", keys[i], "bob@x", 0, 1, "<message/>"), 0);
    }
    assert_int_equal(archive_q(&x, "alice", NULL, t0 + 20, t0 + 40, NULL, NULL, 10), 0);
    char want[80];
    snprintf(want, sizeof(want), "%s %s %s", keys[1], keys[2], keys[3]);
    assert_page(want, 3, 1);
    assert_int_equal(archive_q(&x, "alice", NULL, t0 + 21, t0 + 39, NULL, NULL, 10), 0);
    assert_page(keys[2], 1, 1);
    /* Paging by a key, within the bounds. */
    assert_int_equal(
        archive_q(&x, "alice", NULL, t0 + 20, STORAGE_ARCHIVE_NO_END, keys[2], NULL, 2), 0);
    snprintf(want, sizeof(want), "%s %s", keys[3], keys[4]);
    assert_page(want, 5, 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, key_text(t0 + 15, 0, 0), NULL, 2),
                     HEARTH_ENOTFOUND);

    /* The largest key in use. */
    int64_t last = 0;
    assert_int_equal(storage_sync_archive_last(x.st, &last), 0);
    int64_t k5 = 0;
    assert_int_equal(storage_archive_key_parse(keys[5], &k5), 0);
    assert_int_equal(last, k5);

    /* alice goes: what only she held goes with her, what bob holds stays. */
    assert_int_equal(storage_sync_account_delete(x.st, "alice"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive_msg"), 1);
    assert_int_equal(archive_q(&x, "bob", NULL, ALL, NULL, NULL, 10), 0);
    assert_page(k1, 1, 1);
    assert_string_equal(g_page.stanza[0], "<message>1</message>");
    assert_int_equal(storage_sync_account_delete(x.st, "bob"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive_msg"), 0);
    im_close(&x);
}

/* The archive's reshaping (migration 7) on a version-6 database, for each driver (its own
 * migration files up to 6). */
static void test_migrate_v6_to_v7(void **state)
{
    fixture_t *f = *state;
    const char *files[] = {"0001_accounts.sql",         "0002_im.sql",     "0003_archive.sql",
                           "0004_muc_affiliations.sql", "0005_pubsub.sql", "0006_archive_seq.sql"};
    char *m[6];
    int missing = 0;
    for (size_t i = 0; i < 6; i++)
        missing |= (m[i] = sql_file(files[i])) == NULL;
    if (missing) {
        for (size_t i = 0; i < 6; i++)
            free(m[i]);
        skip();
    }
    /* A version-6 archive: random ids, one copy per party, a clock set back between a2 and a3,
     * and two messages in one millisecond. */
    const char *v6 =
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
        "INSERT INTO schema_version (version) VALUES (6);"
        "INSERT INTO accounts (username, admin, created_at) VALUES ('alice', 0, 1),"
        "('bob', 0, 1);"
        "INSERT INTO archive (seq, username, id, with_jid, stamp_ms, outgoing, stanza) "
        "VALUES (1, 'alice', 'a1', 'bob@x', 1000, 1, '<message>1</message>'),"
        "(2, 'bob', 'b1', 'alice@x', 1000, 0, '<message>1</message>'),"
        "(3, 'alice', 'a2', 'bob@x', 2000, 1, '<message>2</message>'),"
        "(4, 'alice', 'a3', 'bob@x', 1500, 0, '<message>3</message>'),"
        "(5, 'alice', 'a4', 'carol@x', 3000, 0, '<message>4</message>');";
    if (g_pgsql) {
        for (size_t i = 0; i < 6; i++) {
            db_exec(f, m[i]);
            free(m[i]);
        }
        db_exec(f, v6);
    } else {
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        for (size_t i = 0; i < 6; i++) {
            assert_int_equal(sqlite3_exec(db, m[i], NULL, NULL, NULL), SQLITE_OK);
            free(m[i]);
        }
        assert_int_equal(sqlite3_exec(db, v6, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
    }

    im_t x;
    im_open(&x, f, NULL);
    assert_int_equal(db_int(f, "SELECT version FROM schema_version"), 9);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive"), 5);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive_msg"), 5);
    /* The old order and ids, each message's time (a3's moved up to the clock before it). */
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, NULL, 10), 0);
    assert_page("a1 a2 a3 a4", 4, 1);
    assert_int_equal(g_page.stamp[0], 1000);
    assert_int_equal(g_page.stamp[1], 2000);
    assert_int_equal(g_page.stamp[2], 2000);
    assert_int_equal(g_page.stamp[3], 3000);
    assert_string_equal(g_page.stanza[2], "<message>3</message>");
    assert_int_equal(g_page.outgoing[2], 0);
    assert_string_equal(g_page.with[3], "carol@x");
    /* Paging by an old id, both ways; an unknown one is not found. */
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, "a2", NULL, 10), 0);
    assert_page("a3 a4", 4, 1);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, "a3", 10), 0);
    assert_page("a1 a2", 4, 1);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, "b1", NULL, 10), HEARTH_ENOTFOUND);
    assert_int_equal(archive_q(&x, "bob", NULL, ALL, "b1", NULL, 10), 0);
    assert_page("", 1, 1);
    /* A new message comes after the old ones. */
    const char *k = key_text(1733472000000, 0, 0);
    assert_int_equal(archive_store(&x, "alice", k, "bob@x", 0, 1, "<message>5</message>"), 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, "a4", NULL, 10), 0);
    assert_page(k, 5, 1);
    im_close(&x);

    if (g_pgsql)
        return; /* pgsql: a fresh database runs the same files (test_open_creates_schema) */
    /* Same schema as a database created at version 8. */
    fixture_t f2 = *f;
    snprintf(f2.path, sizeof(f2.path), "%s/fresh.db", f->dir);
    storage_t *st = open_ok(&f2);
    storage_close(st);
    char *a = schema_dump_file(f->path), *b = schema_dump_file(f2.path);
    assert_string_equal(a, b);
    free(a);
    free(b);
    const char *suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s%s", f2.path, suffix[i]);
        unlink(p);
    }
}

static void test_archive_query(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);
    archive_fill(&x);

    /* Everything, in archive order, with every field. */
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, NULL, 100), 0);
    assert_page("m0 m1 m2 m3 m4 m5 m6 m7 m8 m9", 10, 1);
    assert_string_equal(g_page.with[0], "bob@x");
    assert_string_equal(g_page.with[1], "carol@x");
    assert_string_equal(g_page.stanza[3], "<message id='3'/>");
    assert_int_equal(g_page.len[3], strlen("<message id='3'/>"));
    assert_int_equal(g_page.stamp[3], 1030);
    assert_int_equal(g_page.outgoing[3], 1);
    assert_int_equal(g_page.outgoing[4], 0);
    /* Exactly a page: complete, nothing beyond. */
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, NULL, 10), 0);
    assert_page("m0 m1 m2 m3 m4 m5 m6 m7 m8 m9", 10, 1);

    /* Forward paging. */
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, NULL, 3), 0);
    assert_page("m0 m1 m2", 10, 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, "m2", NULL, 3), 0);
    assert_page("m3 m4 m5", 10, 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, "m5", NULL, 3), 0);
    assert_page("m6 m7 m8", 10, 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, "m8", NULL, 3), 0);
    assert_page("m9", 10, 1);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, "m9", NULL, 3), 0);
    assert_page("", 10, 1);

    /* Backward paging: "" is the last page. */
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, "", 3), 0);
    assert_page("m7 m8 m9", 10, 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, "m7", 3), 0);
    assert_page("m4 m5 m6", 10, 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, "m4", 3), 0);
    assert_page("m1 m2 m3", 10, 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, "m1", 3), 0);
    assert_page("m0", 10, 1);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, "m0", 3), 0);
    assert_page("", 10, 1);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, "", 100), 0);
    assert_page("m0 m1 m2 m3 m4 m5 m6 m7 m8 m9", 10, 1);
    /* Both: the items between, forward. */
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, "m2", "m6", 2), 0);
    assert_page("m3 m4", 10, 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, "m2", "m6", 3), 0);
    assert_page("m3 m4 m5", 10, 1);

    /* max 0: the count only. */
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, NULL, 0), 0);
    assert_page("", 10, 0);

    /* One conversation: positions and counts within it. */
    assert_int_equal(archive_q(&x, "alice", "bob@x", ALL, NULL, NULL, 2), 0);
    assert_page("m0 m2", 5, 0);
    assert_int_equal(archive_q(&x, "alice", "bob@x", ALL, "m2", NULL, 2), 0);
    assert_page("m4 m6", 5, 0);
    assert_int_equal(archive_q(&x, "alice", "bob@x", ALL, "m6", NULL, 2), 0);
    assert_page("m8", 5, 1);
    /* Paging from an item of another conversation still places the page by archive order. */
    assert_int_equal(archive_q(&x, "alice", "bob@x", ALL, "m3", NULL, 10), 0);
    assert_page("m4 m6 m8", 5, 1);
    assert_int_equal(archive_q(&x, "alice", "carol@x", ALL, NULL, "", 2), 0);
    assert_page("m7 m9", 5, 0);
    assert_int_equal(archive_q(&x, "alice", "dave@x", ALL, NULL, NULL, 10), 0);
    assert_page("", 0, 1);

    /* Time bounds, inclusive. */
    assert_int_equal(archive_q(&x, "alice", NULL, 1020, 1050, NULL, NULL, 10), 0);
    assert_page("m2 m3 m4 m5", 4, 1);
    assert_int_equal(archive_q(&x, "alice", NULL, 1020, STORAGE_ARCHIVE_NO_END, "m5", NULL, 2), 0);
    assert_page("m6 m7", 8, 0);
    assert_int_equal(archive_q(&x, "alice", "carol@x", 1000, 1040, NULL, "", 10), 0);
    assert_page("m1 m3", 2, 1);
    assert_int_equal(archive_q(&x, "alice", NULL, 2000, STORAGE_ARCHIVE_NO_END, NULL, NULL, 10), 0);
    assert_page("", 0, 1);

    /* Unknown paging ids, and ids of someone else's archive. */
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, "nope", NULL, 3), HEARTH_ENOTFOUND);
    assert_false(g_page.called && g_page.n > 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, "b0", 3), HEARTH_ENOTFOUND);
    assert_int_equal(archive_q(&x, "bob", NULL, ALL, "m1", NULL, 3), HEARTH_ENOTFOUND);
    assert_int_equal(archive_q(&x, "bob", NULL, ALL, NULL, NULL, 3), 0);
    assert_page("b0", 1, 1);
    /* An unknown account has an empty archive. */
    assert_int_equal(archive_q(&x, "nobody", NULL, ALL, NULL, NULL, 3), 0);
    assert_page("", 0, 1);

    /* Stores: duplicate ids per user, unknown accounts. */
    assert_int_equal(archive_store(&x, "alice", "m3", "bob@x", 1, 0, "<x/>"), HEARTH_EEXISTS);
    assert_int_equal(archive_store(&x, "bob", "m3", "alice@x", 1, 0, "<x/>"), 0);
    assert_int_equal(archive_store(&x, "nobody", "z", "bob@x", 1, 0, "<x/>"), HEARTH_ENOTFOUND);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive"), 12);

    /* Bounds, at submission. */
    storage_archive_query_t q = {.start_ms = STORAGE_ARCHIVE_NO_START,
                                 .end_ms = STORAGE_ARCHIVE_NO_END,
                                 .max = STORAGE_ARCHIVE_PAGE_MAX + 1};
    assert_int_equal(storage_archive_query(x.st, &x.t, "alice", &q, archive_cb, NULL),
                     HEARTH_EINVAL);
    q.max = 1;
    q.with = "";
    assert_int_equal(storage_archive_query(x.st, &x.t, "alice", &q, archive_cb, NULL),
                     HEARTH_EINVAL);
    q.with = NULL;
    char *long_id = filled(STORAGE_ARCHIVE_ID_MAX + 1, 'i');
    q.after_id = long_id;
    assert_int_equal(storage_archive_query(x.st, &x.t, "alice", &q, archive_cb, NULL),
                     HEARTH_EINVAL);
    q.after_id = NULL;
    assert_int_equal(storage_archive_query(x.st, &x.t, "alice", NULL, archive_cb, NULL),
                     HEARTH_EINVAL);
    assert_int_equal(storage_archive_query(x.st, &x.t, "alice", &q, NULL, NULL), HEARTH_EINVAL);
    storage_archive_msg_t m = {.id = long_id, .with = "b@x", .stanza = "<m/>", .len = 4};
    assert_int_equal(storage_archive_store(x.st, &x.t, "alice", &m, err_cb, NULL), HEARTH_EINVAL);
    free(long_id);
    m.id = "ok";
    m.len = 0;
    assert_int_equal(storage_archive_store(x.st, &x.t, "alice", &m, err_cb, NULL), HEARTH_EINVAL);
    m.len = STORAGE_STANZA_MAX + 1;
    assert_int_equal(storage_archive_store(x.st, &x.t, "alice", &m, err_cb, NULL), HEARTH_EINVAL);
    m.len = 4;
    m.with = NULL;
    assert_int_equal(storage_archive_store(x.st, &x.t, "alice", &m, err_cb, NULL), HEARTH_EINVAL);
    im_close(&x);
}

/* Retention: older than the stamp goes, for every user; the rest keeps its order and ids. */
static void test_archive_purge(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);
    archive_fill(&x);
    assert_int_equal(done(&x.in, storage_archive_purge(x.st, &x.t, 1040, err_cb, NULL)), 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, NULL, 100), 0);
    assert_page("m4 m5 m6 m7 m8 m9", 6, 1);
    assert_int_equal(archive_q(&x, "bob", NULL, ALL, NULL, NULL, 100), 0);
    assert_page("", 0, 1);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, "m1", NULL, 3), HEARTH_ENOTFOUND);
    /* A purged id may be used again; items are in the order of their time. */
    assert_int_equal(archive_store(&x, "alice", "m0", "bob@x", 2000, 0, "<again/>"), 0);
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, "", 2), 0);
    assert_page("m9 m0", 7, 0);
    assert_int_equal(done(&x.in, storage_archive_purge(x.st, &x.t, INT64_MAX, err_cb, NULL)), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive_msg"), 0);
    im_close(&x);
}

static storage_archive_prefs_t g_prefs;

static void prefs_cb(void *ud, int err, const storage_archive_prefs_t *p)
{
    g_err = err;
    storage_archive_prefs_clear(&g_prefs);
    if (err != 0) {
        assert_null(p);
        return;
    }
    g_prefs.stored = p->stored;
    g_prefs.default_mode = p->default_mode;
    g_prefs.nalways = p->nalways;
    g_prefs.nnever = p->nnever;
    g_prefs.always = calloc(p->nalways + 1, sizeof(char *));
    g_prefs.never = calloc(p->nnever + 1, sizeof(char *));
    for (size_t i = 0; i < p->nalways; i++)
        g_prefs.always[i] = strdup(p->always[i]);
    for (size_t i = 0; i < p->nnever; i++)
        g_prefs.never[i] = strdup(p->never[i]);
}

static void test_archive_prefs(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);
    storage_t *st = x.st;
    storage_target_t *t = &x.t;

    assert_int_equal(done(&x.in, storage_archive_prefs_get(st, t, "alice", prefs_cb, NULL)), 0);
    assert_int_equal(g_prefs.stored, 0);
    assert_int_equal(g_prefs.nalways + g_prefs.nnever, 0);
    assert_int_equal(done(&x.in, storage_archive_prefs_get(st, t, "nobody", prefs_cb, NULL)), 0);
    assert_int_equal(g_prefs.stored, 0);

    char *always[] = {"zed@x", "amy@x", "amy@x"}; /* duplicates kept once */
    char *never[] = {"spam@x"};
    storage_archive_prefs_t p = {.default_mode = STORAGE_ARCHIVE_ROSTER,
                                 .always = always,
                                 .nalways = 3,
                                 .never = never,
                                 .nnever = 1};
    assert_int_equal(done(&x.in, storage_archive_prefs_set(st, t, "alice", &p, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_archive_prefs_get(st, t, "alice", prefs_cb, NULL)), 0);
    assert_int_equal(g_prefs.stored, 1);
    assert_int_equal(g_prefs.default_mode, STORAGE_ARCHIVE_ROSTER);
    assert_int_equal(g_prefs.nalways, 2);
    assert_string_equal(g_prefs.always[0], "amy@x");
    assert_string_equal(g_prefs.always[1], "zed@x");
    assert_int_equal(g_prefs.nnever, 1);
    assert_string_equal(g_prefs.never[0], "spam@x");
    /* bob's are his own. */
    assert_int_equal(done(&x.in, storage_archive_prefs_get(st, t, "bob", prefs_cb, NULL)), 0);
    assert_int_equal(g_prefs.stored, 0);

    /* A set replaces everything; empty lists are lists. */
    storage_archive_prefs_t p2 = {.default_mode = STORAGE_ARCHIVE_NEVER};
    assert_int_equal(done(&x.in, storage_archive_prefs_set(st, t, "alice", &p2, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_archive_prefs_get(st, t, "alice", prefs_cb, NULL)), 0);
    assert_int_equal(g_prefs.stored, 1);
    assert_int_equal(g_prefs.default_mode, STORAGE_ARCHIVE_NEVER);
    assert_int_equal(g_prefs.nalways + g_prefs.nnever, 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive_prefs_jids"), 0);
    /* A JID in both lists is kept in both (the module decides which wins). */
    char *both[] = {"x@x"};
    storage_archive_prefs_t p3 = {.default_mode = STORAGE_ARCHIVE_ALWAYS,
                                  .always = both,
                                  .nalways = 1,
                                  .never = both,
                                  .nnever = 1};
    assert_int_equal(done(&x.in, storage_archive_prefs_set(st, t, "alice", &p3, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_archive_prefs_get(st, t, "alice", prefs_cb, NULL)), 0);
    assert_int_equal(g_prefs.nalways, 1);
    assert_int_equal(g_prefs.nnever, 1);

    assert_int_equal(done(&x.in, storage_archive_prefs_set(st, t, "nobody", &p, err_cb, NULL)),
                     HEARTH_ENOTFOUND);
    /* Bounds. */
    p.default_mode = 3;
    assert_int_equal(storage_archive_prefs_set(st, t, "alice", &p, err_cb, NULL), HEARTH_EINVAL);
    p.default_mode = STORAGE_ARCHIVE_ALWAYS;
    p.nalways = STORAGE_ARCHIVE_PREFS_MAX + 1;
    assert_int_equal(storage_archive_prefs_set(st, t, "alice", &p, err_cb, NULL), HEARTH_EINVAL);
    char *empty[] = {""};
    p.always = empty;
    p.nalways = 1;
    assert_int_equal(storage_archive_prefs_set(st, t, "alice", &p, err_cb, NULL), HEARTH_EINVAL);
    storage_archive_prefs_clear(&g_prefs);
    im_close(&x);
}

/* ---- documents and logs ---- */

#define DOCS_CAP 8
static size_t g_ndocs;
static char g_docs[DOCS_CAP][2][32];

static void docs_cb(void *ud, int err, const storage_doc_t *docs, size_t n)
{
    g_err = err;
    assert_true(n <= DOCS_CAP);
    g_ndocs = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(g_docs[i][0], sizeof(g_docs[i][0]), "%s", docs[i].key);
        snprintf(g_docs[i][1], sizeof(g_docs[i][1]), "%s", docs[i].xml);
    }
}

/* Every private XML document of an account, by namespace (hearthctl export's reading). */
static void test_private_list(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);
    assert_int_equal(done(&x.in, storage_private_list(x.st, &x.t, "alice", docs_cb, NULL)), 0);
    assert_int_equal(g_ndocs, 0);
    assert_int_equal(done(&x.in, storage_private_set(x.st, &x.t, "alice", "z:z", "<z xmlns='z:z'/>",
                                                     0, err_cb, NULL)),
                     0);
    assert_int_equal(done(&x.in, storage_private_set(x.st, &x.t, "alice", "a:a", "<a xmlns='a:a'/>",
                                                     0, err_cb, NULL)),
                     0);
    assert_int_equal(done(&x.in, storage_private_set(x.st, &x.t, "bob", "b:b", "<b xmlns='b:b'/>",
                                                     0, err_cb, NULL)),
                     0);
    assert_int_equal(done(&x.in, storage_private_list(x.st, &x.t, "alice", docs_cb, NULL)), 0);
    assert_int_equal(g_ndocs, 2);
    assert_string_equal(g_docs[0][0], "a:a");
    assert_string_equal(g_docs[0][1], "<a xmlns='a:a'/>");
    assert_string_equal(g_docs[1][0], "z:z");
    assert_int_equal(done(&x.in, storage_private_list(x.st, &x.t, "nobody", docs_cb, NULL)), 0);
    assert_int_equal(g_ndocs, 0);
    /* The blocking form hands the documents over. */
    storage_doc_t *docs = NULL;
    size_t n = 0;
    assert_int_equal(storage_sync_private_list(x.st, "bob", &docs, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(docs[0].key, "b:b");
    assert_string_equal(docs[0].xml, "<b xmlns='b:b'/>");
    storage_sync_docs_free(docs, n);
    im_close(&x);
}

static void test_docs(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, NULL);
    storage_t *st = x.st;
    storage_target_t *t = &x.t;

    assert_int_equal(done(&x.in, storage_doc_get(st, t, "room", "a@muc", xml_cb, NULL)),
                     HEARTH_ENOTFOUND);
    assert_null(g_xml);
    assert_int_equal(done(&x.in, storage_doc_list(st, t, "room", docs_cb, NULL)), 0);
    assert_int_equal(g_ndocs, 0);
    assert_int_equal(done(&x.in, storage_doc_put(st, t, "room", "b@muc", "<b/>", err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_doc_put(st, t, "room", "a@muc", "<a/>", err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_doc_put(st, t, "affil", "a@muc", "<x/>", err_cb, NULL)),
                     0);
    assert_int_equal(done(&x.in, storage_doc_put(st, t, "room", "", "", err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_doc_get(st, t, "room", "a@muc", xml_cb, NULL)), 0);
    assert_string_equal(g_xml, "<a/>");
    /* Replace. */
    assert_int_equal(done(&x.in, storage_doc_put(st, t, "room", "a@muc", "<a2/>", err_cb, NULL)),
                     0);
    assert_int_equal(done(&x.in, storage_doc_get(st, t, "room", "a@muc", xml_cb, NULL)), 0);
    assert_string_equal(g_xml, "<a2/>");
    assert_int_equal(done(&x.in, storage_doc_get(st, t, "affil", "a@muc", xml_cb, NULL)), 0);
    assert_string_equal(g_xml, "<x/>");
    /* Every doc of a kind, by key. */
    assert_int_equal(done(&x.in, storage_doc_list(st, t, "room", docs_cb, NULL)), 0);
    assert_int_equal(g_ndocs, 3);
    assert_string_equal(g_docs[0][0], "");
    assert_string_equal(g_docs[0][1], "");
    assert_string_equal(g_docs[1][0], "a@muc");
    assert_string_equal(g_docs[1][1], "<a2/>");
    assert_string_equal(g_docs[2][0], "b@muc");
    /* Delete, absent or not. */
    assert_int_equal(done(&x.in, storage_doc_delete(st, t, "room", "a@muc", err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_doc_delete(st, t, "room", "a@muc", err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_doc_get(st, t, "room", "a@muc", xml_cb, NULL)),
                     HEARTH_ENOTFOUND);
    assert_int_equal(done(&x.in, storage_doc_get(st, t, "affil", "a@muc", xml_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_doc_list(st, t, "room", docs_cb, NULL)), 0);
    assert_int_equal(g_ndocs, 2);

    /* Bounds. */
    char *kind = filled(STORAGE_KIND_MAX, 'k'), *kind2 = filled(STORAGE_KIND_MAX + 1, 'k');
    char *key = filled(STORAGE_JID_MAX, 'j'), *key2 = filled(STORAGE_JID_MAX + 1, 'j');
    char *xml2 = filled(STORAGE_XML_MAX + 1, 'x');
    assert_int_equal(done(&x.in, storage_doc_put(st, t, kind, key, "<k/>", err_cb, NULL)), 0);
    assert_int_equal(storage_doc_put(st, t, kind2, "k", "<k/>", err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_doc_put(st, t, "", "k", "<k/>", err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_doc_put(st, t, "room", key2, "<k/>", err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_doc_put(st, t, "room", NULL, "<k/>", err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_doc_put(st, t, "room", "k", xml2, err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_doc_put(st, t, "room", "k", NULL, err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_doc_get(st, t, "room", key2, xml_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_doc_list(st, t, kind2, docs_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_doc_list(st, t, "room", NULL, NULL), HEARTH_EINVAL);
    free(kind);
    free(kind2);
    free(key);
    free(key2);
    free(xml2);
    im_close(&x);
}

/* ---- room affiliations (migration 4) ---- */

#define AFFS_CAP 8
static size_t g_naffs;
static char g_affs[AFFS_CAP][4][32]; /* jid, affiliation, nick, reason ("-" for NULL) */

static void affs_cb(void *ud, int err, const storage_muc_aff_t *affs, size_t n)
{
    g_err = err;
    assert_true(n <= AFFS_CAP);
    g_naffs = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(g_affs[i][0], 32, "%s", affs[i].jid);
        snprintf(g_affs[i][1], 32, "%s", affs[i].affiliation);
        snprintf(g_affs[i][2], 32, "%s", affs[i].nick ? affs[i].nick : "-");
        snprintf(g_affs[i][3], 32, "%s", affs[i].reason ? affs[i].reason : "-");
    }
}

static size_t g_count;

static void count_cb(void *ud, int err, size_t n)
{
    g_err = err;
    g_count = n;
}

/* Issue 15: a removed account's grants in stored rooms go with it, whoever removes it. */
static void test_muc_affiliations(void **state)
{
    fixture_t *f = *state;
    static const char *const users[] = {"alice", "bob", NULL};
    im_t x;
    im_open(&x, f, users);
    storage_t *st = x.st;
    storage_target_t *t = &x.t;
    storage_muc_aff_t r1[] = {
        {"alice@example.com", "owner", NULL, NULL, "alice"},
        {"bob@example.com", "member", "Bobby", "friend", "bob"},
        {"carol@example.com", "admin", NULL, NULL, "carol"}, /* no such account (yet) */
        {"dave@elsewhere.org", "outcast", NULL, "spam", NULL},
    };
    storage_muc_aff_t r2[] = {{"alice@example.com", "owner", NULL, NULL, "alice"}};
    assert_int_equal(done(&x.in, storage_muc_affs_put(st, t, "r1@muc", r1, 4, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_muc_affs_put(st, t, "r2@muc", r2, 1, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_muc_affs_get(st, t, "r1@muc", affs_cb, NULL)), 0);
    assert_int_equal(g_naffs, 4);
    assert_string_equal(g_affs[1][0], "bob@example.com");
    assert_string_equal(g_affs[1][1], "member");
    assert_string_equal(g_affs[1][2], "Bobby");
    assert_string_equal(g_affs[1][3], "friend");
    assert_string_equal(g_affs[0][2], "-");
    assert_int_equal(
        done(&x.in, storage_muc_owned_count(st, t, "alice@example.com", count_cb, NULL)), 0);
    assert_int_equal(g_count, 2);
    assert_int_equal(done(&x.in, storage_muc_owned_count(st, t, "bob@example.com", count_cb, NULL)),
                     0);
    assert_int_equal(g_count, 0);

    /* The account goes: so do its rows, in every room; the others stay. */
    assert_int_equal(storage_sync_account_delete(st, "alice"), 0);
    assert_int_equal(
        done(&x.in, storage_muc_owned_count(st, t, "alice@example.com", count_cb, NULL)), 0);
    assert_int_equal(g_count, 0);
    assert_int_equal(done(&x.in, storage_muc_affs_get(st, t, "r1@muc", affs_cb, NULL)), 0);
    assert_int_equal(g_naffs, 3);
    assert_string_equal(g_affs[0][0], "bob@example.com");
    assert_string_equal(g_affs[1][0], "carol@example.com");
    assert_string_equal(g_affs[2][0], "dave@elsewhere.org");
    assert_int_equal(done(&x.in, storage_muc_affs_get(st, t, "r2@muc", affs_cb, NULL)), 0);
    assert_int_equal(g_naffs, 0);
    /* A name registered later gets nothing back. */
    storage_account_t a;
    account_make(&a, "alice", 0, "alice");
    assert_int_equal(storage_sync_account_create(st, &a), 0);
    assert_int_equal(
        done(&x.in, storage_muc_owned_count(st, t, "alice@example.com", count_cb, NULL)), 0);
    assert_int_equal(g_count, 0);

    /* Replace, then clear. */
    assert_int_equal(done(&x.in, storage_muc_affs_put(st, t, "r1@muc", r2, 1, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_muc_affs_get(st, t, "r1@muc", affs_cb, NULL)), 0);
    assert_int_equal(g_naffs, 1);
    assert_int_equal(done(&x.in, storage_muc_affs_put(st, t, "r1@muc", NULL, 0, err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_muc_affs_get(st, t, "r1@muc", affs_cb, NULL)), 0);
    assert_int_equal(g_naffs, 0);

    /* Bounds. */
    storage_muc_aff_t bad[] = {{"x@example.com", NULL, NULL, NULL, NULL}};
    assert_int_equal(storage_muc_affs_put(st, t, "r1@muc", bad, 1, err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_muc_affs_put(st, t, "r1@muc", NULL, 1, err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_muc_affs_put(st, t, "", r2, 1, err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_muc_affs_get(st, t, NULL, affs_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_muc_owned_count(st, t, "a@b", NULL, NULL), HEARTH_EINVAL);
    im_close(&x);
}

/* ---- publish-subscribe (migration 5) ---- */

#define PS_CAP 16
static size_t g_ps_n;
static char g_ps[PS_CAP][4][64]; /* node or id, id or publisher, payload or "-", size */

static void ps_items_cb(void *ud, int err, const storage_pubsub_item_t *items, size_t n)
{
    g_err = err;
    assert_true(n <= PS_CAP);
    g_ps_n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(g_ps[i][0], 64, "%s", items[i].id);
        snprintf(g_ps[i][1], 64, "%s", items[i].publisher);
        snprintf(g_ps[i][2], 64, "%s", items[i].payload ? items[i].payload : "-");
        snprintf(g_ps[i][3], 64, "%zu", items[i].size);
        assert_null(items[i].node);
    }
}

static size_t g_ps_nodes, g_ps_affs;
static char g_ps_node[PS_CAP][64], g_ps_aff[PS_CAP][3][64];

static void ps_load_cb(void *ud, int err, const storage_pubsub_state_t *st)
{
    g_err = err;
    if (err != 0) {
        assert_null(st);
        return;
    }
    assert_true(st->nnodes <= PS_CAP && st->nitems <= PS_CAP && st->naffs <= PS_CAP);
    g_ps_nodes = st->nnodes;
    for (size_t i = 0; i < st->nnodes; i++)
        snprintf(g_ps_node[i], 64, "%s=%s", st->nodes[i].node, st->nodes[i].config);
    g_ps_n = st->nitems;
    for (size_t i = 0; i < st->nitems; i++) {
        snprintf(g_ps[i][0], 64, "%s/%s", st->items[i].node, st->items[i].id);
        snprintf(g_ps[i][1], 64, "%s", st->items[i].publisher);
        snprintf(g_ps[i][2], 64, "%s", st->items[i].payload ? st->items[i].payload : "-");
        snprintf(g_ps[i][3], 64, "%zu", st->items[i].size);
    }
    g_ps_affs = st->naffs;
    for (size_t i = 0; i < st->naffs; i++) {
        snprintf(g_ps_aff[i][0], 64, "%s", st->affs[i].node);
        snprintf(g_ps_aff[i][1], 64, "%s", st->affs[i].jid);
        snprintf(g_ps_aff[i][2], 64, "%s", st->affs[i].affiliation);
    }
}

static int ps_pub(im_t *x, const char *svc, const char *acct, const char *node, const char *config,
                  const char *id, const char *payload, size_t keep)
{
    storage_pubsub_item_t it = {0};
    it.id = (char *)id;
    it.publisher = (char *)"alice@example.com/phone";
    it.stamp_ms = 1700000000000;
    it.payload = (char *)payload;
    return done(&x->in, storage_pubsub_publish(x->st, &x->t, svc, acct, node, config, &it, keep,
                                               err_cb, NULL));
}

static void test_pubsub(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, ALICE_BOB);
    storage_t *st = x.st;
    storage_target_t *t = &x.t;
    const char *A = "alice@example.com", *B = "bob@example.com";

    /* Nothing yet. */
    assert_int_equal(done(&x.in, storage_pubsub_load(st, t, A, 100, ps_load_cb, NULL)), 0);
    assert_int_equal(g_ps_nodes + g_ps_n + g_ps_affs, 0);
    /* Publishing to a node that does not exist fails; auto-create makes it in the same call. */
    assert_int_equal(ps_pub(&x, A, "alice", "tune", NULL, "i1", "<a/>", 1), HEARTH_ENOTFOUND);
    assert_int_equal(ps_pub(&x, A, "alice", "tune", "<x1/>", "i1", "<a/>", 1), 0);
    assert_int_equal(ps_pub(&x, A, "alice", "tune", NULL, "i2", "<b/>", 1), 0); /* keeps 1 */
    assert_int_equal(
        done(&x.in, storage_pubsub_node_put(st, t, A, "alice", "list", "<x2/>", 10, err_cb, NULL)),
        0);
    for (int i = 1; i <= 4; i++) {
        char id[8], p[16];
        snprintf(id, sizeof(id), "l%d", i);
        snprintf(p, sizeof(p), "<p n='%d'/>", i);
        assert_int_equal(ps_pub(&x, A, "alice", "list", NULL, id, p, 10), 0);
    }
    /* Republishing l2 makes it the newest. */
    assert_int_equal(ps_pub(&x, A, "alice", "list", NULL, "l2", "<p n='2b'/>", 10), 0);
    assert_int_equal(
        done(&x.in, storage_pubsub_node_put(st, t, B, "bob", "tune", "<x3/>", 10, err_cb, NULL)),
        0);
    storage_pubsub_aff_t ch[] = {{"list", "bob@example.com", "member", "bob"},
                                 {"list", "carol@example.com", "outcast", NULL}};
    assert_int_equal(done(&x.in, storage_pubsub_affs_set(st, t, A, ch, 2, err_cb, NULL)), 0);

    assert_int_equal(done(&x.in, storage_pubsub_load(st, t, A, 10, ps_load_cb, NULL)), 0);
    assert_int_equal(g_ps_nodes, 2);
    assert_string_equal(g_ps_node[0], "list=<x2/>");
    assert_string_equal(g_ps_node[1], "tune=<x1/>");
    assert_int_equal(g_ps_n, 5);
    assert_string_equal(g_ps[0][0], "list/l1");
    assert_string_equal(g_ps[1][0], "list/l3");
    assert_string_equal(g_ps[2][0], "list/l4");
    assert_string_equal(g_ps[3][0], "list/l2");
    assert_string_equal(g_ps[3][2], "-"); /* 11 bytes: over inline_max */
    assert_string_equal(g_ps[3][3], "11");
    assert_string_equal(g_ps[0][2], "-"); /* not the newest */
    assert_string_equal(g_ps[4][0], "tune/i2");
    assert_string_equal(g_ps[4][1], "alice@example.com/phone");
    assert_string_equal(g_ps[4][2], "<b/>");
    assert_int_equal(g_ps_affs, 2);
    assert_string_equal(g_ps_aff[0][1], "bob@example.com");
    assert_string_equal(g_ps_aff[0][2], "member");

    /* Items: all, the newest two, named ones in publication order (absent and repeated left
     * out). */
    assert_int_equal(
        done(&x.in, storage_pubsub_items(st, t, A, "list", NULL, 0, 0, ps_items_cb, NULL)), 0);
    assert_int_equal(g_ps_n, 4);
    assert_string_equal(g_ps[3][0], "l2");
    assert_string_equal(g_ps[3][2], "<p n='2b'/>");
    assert_int_equal(
        done(&x.in, storage_pubsub_items(st, t, A, "list", NULL, 0, 2, ps_items_cb, NULL)), 0);
    assert_int_equal(g_ps_n, 2);
    assert_string_equal(g_ps[0][0], "l4");
    assert_string_equal(g_ps[1][0], "l2");
    const char *ids[] = {"l2", "nope", "l1", "l2"};
    assert_int_equal(
        done(&x.in, storage_pubsub_items(st, t, A, "list", ids, 4, 0, ps_items_cb, NULL)), 0);
    assert_int_equal(g_ps_n, 2);
    assert_string_equal(g_ps[0][0], "l1");
    assert_string_equal(g_ps[1][0], "l2");

    /* Retract, a configuration that keeps fewer items, purge. */
    assert_int_equal(done(&x.in, storage_pubsub_retract(st, t, A, "list", "l3", err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_pubsub_retract(st, t, A, "list", "l3", err_cb, NULL)), 0);
    assert_int_equal(
        done(&x.in, storage_pubsub_node_put(st, t, A, "alice", "list", "<x4/>", 1, err_cb, NULL)),
        0);
    assert_int_equal(
        done(&x.in, storage_pubsub_items(st, t, A, "list", NULL, 0, 0, ps_items_cb, NULL)), 0);
    assert_int_equal(g_ps_n, 1);
    assert_string_equal(g_ps[0][0], "l2");
    assert_int_equal(done(&x.in, storage_pubsub_purge(st, t, A, "tune", err_cb, NULL)), 0);
    assert_int_equal(
        done(&x.in, storage_pubsub_items(st, t, A, "tune", NULL, 0, 0, ps_items_cb, NULL)), 0);
    assert_int_equal(g_ps_n, 0);
    /* Deleting a node takes its items and affiliations. */
    assert_int_equal(done(&x.in, storage_pubsub_node_delete(st, t, A, "list", err_cb, NULL)), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM pubsub_items WHERE node = 'list'"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM pubsub_affiliations"), 0);

    /* An affiliation of an account goes with the account; the account's own nodes too. */
    assert_int_equal(
        done(&x.in, storage_pubsub_node_put(st, t, A, "alice", "n2", "<x/>", 1, err_cb, NULL)), 0);
    storage_pubsub_aff_t ch2[] = {{"n2", "bob@example.com", "member", "bob"}};
    assert_int_equal(done(&x.in, storage_pubsub_affs_set(st, t, A, ch2, 1, err_cb, NULL)), 0);
    assert_int_equal(storage_sync_account_delete(st, "bob"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM pubsub_affiliations"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM pubsub_nodes WHERE service = "
                               "'bob@example.com'"),
                     0);
    /* Removing an affiliation; a node for an account that is gone is refused. */
    storage_pubsub_aff_t rm[] = {{"n2", "carol@example.com", NULL, NULL}};
    assert_int_equal(done(&x.in, storage_pubsub_affs_set(st, t, A, rm, 1, err_cb, NULL)), 0);
    assert_int_equal(
        done(&x.in, storage_pubsub_node_put(st, t, B, "bob", "tune", "<x/>", 1, err_cb, NULL)),
        HEARTH_ENOTFOUND);
    assert_int_equal(storage_sync_account_delete(st, "alice"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM pubsub_nodes"), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM pubsub_items"), 0);

    /* Bounds. */
    assert_int_equal(storage_pubsub_load(st, t, "", 1, ps_load_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_pubsub_node_put(st, t, A, NULL, "", "<x/>", 1, err_cb, NULL),
                     HEARTH_EINVAL);
    assert_int_equal(storage_pubsub_node_put(st, t, A, NULL, "n", NULL, 1, err_cb, NULL),
                     HEARTH_EINVAL);
    storage_pubsub_item_t noid = {0};
    noid.publisher = (char *)"a@b";
    noid.payload = (char *)"<a/>";
    assert_int_equal(storage_pubsub_publish(st, t, A, NULL, "n", NULL, &noid, 1, err_cb, NULL),
                     HEARTH_EINVAL);
    assert_int_equal(storage_pubsub_retract(st, t, A, "n", NULL, err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_pubsub_items(st, t, A, "n", NULL, 1, 0, ps_items_cb, NULL),
                     HEARTH_EINVAL);
    storage_pubsub_aff_t badaff[] = {{"n", "", "member", NULL}};
    assert_int_equal(storage_pubsub_affs_set(st, t, A, badaff, 1, err_cb, NULL), HEARTH_EINVAL);
    im_close(&x);
}

#define LOG_CAP 8
static size_t g_nlog;
static storage_log_entry_t g_log[LOG_CAP];
static char g_log_xml[LOG_CAP][32];

static void log_cb(void *ud, int err, const storage_log_entry_t *e, size_t n)
{
    g_err = err;
    assert_true(n <= LOG_CAP);
    g_nlog = n;
    for (size_t i = 0; i < n; i++) {
        g_log[i] = e[i];
        snprintf(g_log_xml[i], sizeof(g_log_xml[i]), "%s", e[i].xml);
        g_log[i].xml = g_log_xml[i];
    }
}

static void test_logs(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, NULL);
    storage_t *st = x.st;
    storage_target_t *t = &x.t;

    assert_int_equal(done(&x.in, storage_log_fetch(st, t, "hist", "r@muc", 0, 10, log_cb, NULL)),
                     0);
    assert_int_equal(g_nlog, 0);
    for (int i = 0; i < 6; i++) {
        char xml[16];
        snprintf(xml, sizeof(xml), "<m%d/>", i);
        assert_int_equal(
            done(&x.in, storage_log_append(st, t, "hist", "r@muc", 100 + i, xml, err_cb, NULL)), 0);
    }
    assert_int_equal(
        done(&x.in, storage_log_append(st, t, "hist", "s@muc", 100, "<s/>", err_cb, NULL)), 0);
    assert_int_equal(
        done(&x.in, storage_log_append(st, t, "other", "r@muc", 100, "<o/>", err_cb, NULL)), 0);

    /* All, oldest first. */
    assert_int_equal(done(&x.in, storage_log_fetch(st, t, "hist", "r@muc", 0, 10, log_cb, NULL)),
                     0);
    assert_int_equal(g_nlog, 6);
    for (size_t i = 0; i < 6; i++) {
        char xml[16];
        snprintf(xml, sizeof(xml), "<m%zu/>", i);
        assert_string_equal(g_log[i].xml, xml);
        assert_int_equal(g_log[i].stamp_ms, 100 + (int64_t)i);
        if (i > 0)
            assert_true(g_log[i].id > g_log[i - 1].id);
    }
    /* The newest max, oldest first. */
    assert_int_equal(done(&x.in, storage_log_fetch(st, t, "hist", "r@muc", 0, 2, log_cb, NULL)), 0);
    assert_int_equal(g_nlog, 2);
    assert_string_equal(g_log[0].xml, "<m4/>");
    assert_string_equal(g_log[1].xml, "<m5/>");
    /* Since a stamp (inclusive). */
    assert_int_equal(done(&x.in, storage_log_fetch(st, t, "hist", "r@muc", 103, 10, log_cb, NULL)),
                     0);
    assert_int_equal(g_nlog, 3);
    assert_string_equal(g_log[0].xml, "<m3/>");
    assert_int_equal(done(&x.in, storage_log_fetch(st, t, "hist", "r@muc", 0, 0, log_cb, NULL)), 0);
    assert_int_equal(g_nlog, 0);
    assert_int_equal(
        done(&x.in, storage_log_fetch(st, t, "hist", "r@muc", 0, SIZE_MAX, log_cb, NULL)), 0);
    assert_int_equal(g_nlog, 6);

    /* Delete the whole log of one key; the others stay. */
    assert_int_equal(done(&x.in, storage_log_delete(st, t, "hist", "r@muc", err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_log_fetch(st, t, "hist", "r@muc", 0, 10, log_cb, NULL)),
                     0);
    assert_int_equal(g_nlog, 0);
    assert_int_equal(done(&x.in, storage_log_fetch(st, t, "hist", "s@muc", 0, 10, log_cb, NULL)),
                     0);
    assert_int_equal(g_nlog, 1);
    assert_int_equal(done(&x.in, storage_log_fetch(st, t, "other", "r@muc", 0, 10, log_cb, NULL)),
                     0);
    assert_int_equal(g_nlog, 1);
    assert_int_equal(done(&x.in, storage_log_delete(st, t, "hist", "none", err_cb, NULL)), 0);
    /* Ids are never reused. */
    int64_t last = g_log[0].id;
    assert_int_equal(
        done(&x.in, storage_log_append(st, t, "hist", "r@muc", 1, "<n/>", err_cb, NULL)), 0);
    assert_int_equal(done(&x.in, storage_log_fetch(st, t, "hist", "r@muc", 0, 10, log_cb, NULL)),
                     0);
    assert_int_equal(g_nlog, 1);
    assert_true(g_log[0].id > last);

    /* Bounds. */
    char *kind2 = filled(STORAGE_KIND_MAX + 1, 'k'), *xml2 = filled(STORAGE_XML_MAX + 1, 'x');
    assert_int_equal(storage_log_append(st, t, kind2, "k", 1, "<x/>", err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_log_append(st, t, "hist", "k", 1, xml2, err_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_log_fetch(st, t, "hist", NULL, 0, 1, log_cb, NULL), HEARTH_EINVAL);
    assert_int_equal(storage_log_delete(st, t, "", "k", err_cb, NULL), HEARTH_EINVAL);
    free(kind2);
    free(xml2);
    im_close(&x);
}

/* Named entries (migration 7): copies of what a callback saw (its strings are borrowed). */
static struct {
    int err;
    size_t n, count;
    int complete;
    char ref[LOG_CAP][32], xml[LOG_CAP][32], author[LOG_CAP][32], origin[LOG_CAP][32];
} g_lp;

static void lp_copy(int err, const storage_log_entry_t *e, size_t n)
{
    memset(&g_lp, 0, sizeof(g_lp));
    g_lp.err = err;
    g_err = err;
    assert_true(n <= LOG_CAP);
    g_lp.n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(g_lp.ref[i], 32, "%s", e[i].ref ? e[i].ref : "(null)");
        snprintf(g_lp.xml[i], 32, "%s", e[i].xml);
        snprintf(g_lp.author[i], 32, "%s", e[i].author ? e[i].author : "(null)");
        snprintf(g_lp.origin[i], 32, "%s", e[i].origin ? e[i].origin : "(null)");
    }
}

static void lp_entries_cb(void *ud, int err, const storage_log_entry_t *e, size_t n)
{
    (void)ud;
    lp_copy(err, e, n);
}

static void lp_page_cb(void *ud, int err, const storage_log_page_t *p)
{
    (void)ud;
    lp_copy(err, p ? p->entries : NULL, p ? p->n : 0);
    g_lp.count = p ? p->count : 0;
    g_lp.complete = p ? p->complete : 0;
}

/* The refs of the last page, joined by spaces. */
static const char *lp_refs(void)
{
    static char out[LOG_CAP * 33];
    out[0] = '\0';
    for (size_t i = 0; i < g_lp.n; i++) {
        if (i)
            strcat(out, " ");
        strcat(out, g_lp.ref[i]);
    }
    return out;
}

static int lq(im_t *x, const char *author, const char *origin, int64_t start, int64_t end,
              const char *after, const char *before, size_t max, size_t max_bytes)
{
    storage_log_query_t q = {author, origin, start, end, after, before, max, max_bytes};
    return done(&x->in, storage_log_query(x->st, &x->t, "muc.log", "r@muc", &q, lp_page_cb, NULL));
}

static void test_log_entries(void **state)
{
    fixture_t *f = *state;
    im_t x;
    im_open(&x, f, NULL);
    storage_t *st = x.st;
    storage_target_t *t = &x.t;
    const int64_t S = STORAGE_ARCHIVE_NO_START, E = STORAGE_ARCHIVE_NO_END;

    for (int i = 0; i < 5; i++) {
        char ref[8], xml[8];
        snprintf(ref, sizeof(ref), "r%d", i);
        snprintf(xml, sizeof(xml), "<m%d/>", i);
        storage_log_entry_t e = {.stamp_ms = 100 + i,
                                 .xml = xml,
                                 .ref = ref,
                                 .author = i % 2 ? "r@muc/B" : "r@muc/A",
                                 .origin = i % 2 ? "b@x" : "a@x"};
        assert_int_equal(
            done(&x.in, storage_log_append_entry(st, t, "muc.log", "r@muc", &e, err_cb, NULL)), 0);
    }
    /* Another log: never in this one's pages. */
    storage_log_entry_t other = {.stamp_ms = 100, .xml = "<o/>", .ref = "r1"};
    assert_int_equal(
        done(&x.in, storage_log_append_entry(st, t, "muc.log", "s@muc", &other, err_cb, NULL)), 0);
    /* A ref is unique in its log: nothing stored. */
    storage_log_entry_t dup = {.stamp_ms = 1, .xml = "<d/>", .ref = "r2"};
    assert_int_equal(
        done(&x.in, storage_log_append_entry(st, t, "muc.log", "r@muc", &dup, err_cb, NULL)),
        HEARTH_EEXISTS);

    assert_int_equal(lq(&x, NULL, NULL, S, E, NULL, NULL, 10, 0), 0);
    assert_string_equal(lp_refs(), "r0 r1 r2 r3 r4");
    assert_int_equal(g_lp.count, 5);
    assert_true(g_lp.complete);
    assert_string_equal(g_lp.xml[1], "<m1/>");
    assert_string_equal(g_lp.author[1], "r@muc/B");
    assert_string_equal(g_lp.origin[1], "b@x");
    /* Forwards, a page at a time. */
    assert_int_equal(lq(&x, NULL, NULL, S, E, NULL, NULL, 2, 0), 0);
    assert_string_equal(lp_refs(), "r0 r1");
    assert_false(g_lp.complete);
    assert_int_equal(lq(&x, NULL, NULL, S, E, "r1", NULL, 2, 0), 0);
    assert_string_equal(lp_refs(), "r2 r3");
    assert_false(g_lp.complete);
    assert_int_equal(lq(&x, NULL, NULL, S, E, "r3", NULL, 2, 0), 0);
    assert_string_equal(lp_refs(), "r4");
    assert_true(g_lp.complete);
    /* Backwards from the end, and before a ref; between two. */
    assert_int_equal(lq(&x, NULL, NULL, S, E, NULL, "", 2, 0), 0);
    assert_string_equal(lp_refs(), "r3 r4");
    assert_false(g_lp.complete);
    assert_int_equal(lq(&x, NULL, NULL, S, E, NULL, "r3", 5, 0), 0);
    assert_string_equal(lp_refs(), "r0 r1 r2");
    assert_true(g_lp.complete);
    assert_int_equal(lq(&x, NULL, NULL, S, E, "r0", "r4", 5, 0), 0);
    assert_string_equal(lp_refs(), "r1 r2 r3");
    /* Filters: author, origin, time; the count follows them. */
    assert_int_equal(lq(&x, "r@muc/B", NULL, S, E, NULL, NULL, 10, 0), 0);
    assert_string_equal(lp_refs(), "r1 r3");
    assert_int_equal(g_lp.count, 2);
    assert_int_equal(lq(&x, NULL, "a@x", S, E, NULL, NULL, 10, 0), 0);
    assert_string_equal(lp_refs(), "r0 r2 r4");
    assert_int_equal(lq(&x, NULL, NULL, 102, 103, NULL, NULL, 10, 0), 0);
    assert_string_equal(lp_refs(), "r2 r3");
    assert_int_equal(g_lp.count, 2);
    /* max 0: the count only; a byte bound keeps one entry at least. */
    assert_int_equal(lq(&x, NULL, NULL, S, E, NULL, NULL, 0, 0), 0);
    assert_int_equal(g_lp.n, 0);
    assert_int_equal(g_lp.count, 5);
    assert_false(g_lp.complete);
    assert_int_equal(lq(&x, NULL, NULL, S, E, NULL, NULL, 10, 7), 0);
    assert_string_equal(lp_refs(), "r0");
    assert_false(g_lp.complete);
    /* Unknown refs. */
    assert_int_equal(lq(&x, NULL, NULL, S, E, "nope", NULL, 10, 0), HEARTH_ENOTFOUND);
    assert_int_equal(lq(&x, NULL, NULL, S, E, NULL, "nope", 10, 0), HEARTH_ENOTFOUND);

    /* One entry by ref; replaced by ref (a tombstone), the rest kept. */
    assert_int_equal(
        done(&x.in, storage_log_get(st, t, "muc.log", "r@muc", "r3", lp_entries_cb, NULL)), 0);
    assert_int_equal(g_lp.n, 1);
    assert_string_equal(g_lp.xml[0], "<m3/>");
    assert_string_equal(g_lp.author[0], "r@muc/B");
    assert_int_equal(
        done(&x.in, storage_log_get(st, t, "muc.log", "r@muc", "nope", lp_entries_cb, NULL)),
        HEARTH_ENOTFOUND);
    assert_int_equal(
        done(&x.in, storage_log_replace(st, t, "muc.log", "r@muc", "r3", "<t/>", err_cb, NULL)), 0);
    assert_int_equal(
        done(&x.in, storage_log_replace(st, t, "muc.log", "r@muc", "nope", "<t/>", err_cb, NULL)),
        HEARTH_ENOTFOUND);
    assert_int_equal(lq(&x, NULL, NULL, S, E, NULL, NULL, 10, 0), 0);
    assert_string_equal(lp_refs(), "r0 r1 r2 r3 r4");
    assert_string_equal(g_lp.xml[3], "<t/>");
    assert_string_equal(g_lp.author[3], "r@muc/B");
    /* The history's read gives the refs too. */
    assert_int_equal(
        done(&x.in, storage_log_fetch(st, t, "muc.log", "r@muc", 0, 2, lp_entries_cb, NULL)), 0);
    assert_string_equal(lp_refs(), "r3 r4");

    /* Bounds. */
    char *ref2 = filled(STORAGE_ARCHIVE_ID_MAX + 1, 'r');
    storage_log_entry_t bad = {.stamp_ms = 1, .xml = "<x/>", .ref = ref2};
    assert_int_equal(storage_log_append_entry(st, t, "muc.log", "r@muc", &bad, err_cb, NULL),
                     HEARTH_EINVAL);
    bad.ref = NULL;
    assert_int_equal(storage_log_append_entry(st, t, "muc.log", "r@muc", &bad, err_cb, NULL),
                     HEARTH_EINVAL);
    storage_log_query_t big = {.start_ms = S, .end_ms = E, .max = STORAGE_ARCHIVE_PAGE_MAX + 1};
    assert_int_equal(storage_log_query(st, t, "muc.log", "r@muc", &big, lp_page_cb, NULL),
                     HEARTH_EINVAL);
    assert_int_equal(storage_log_get(st, t, "muc.log", "r@muc", ref2, lp_entries_cb, NULL),
                     HEARTH_EINVAL);
    assert_int_equal(storage_log_replace(st, t, "muc.log", "r@muc", "", "<x/>", err_cb, NULL),
                     HEARTH_EINVAL);
    free(ref2);
    im_close(&x);
}

/* scripts/pg-test-cluster.sh ACTION on the test's cluster (HEARTH_TEST_PG_DIR): its exit status,
 * or -1 when the cluster or the source tree cannot be found. */
static int pg_cluster(const char *action)
{
    const char *dir = getenv("HEARTH_TEST_PG_DIR");
    char src[512], cmd[1400];
    snprintf(src, sizeof(src), "%s", __FILE__);
    if (dir == NULL || src[0] != '/')
        return -1;
    snprintf(cmd, sizeof(cmd), "/bin/sh %s/../../scripts/pg-test-cluster.sh %s '%s'", dirname(src),
             action, dir);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* pgsql: a connection the server dropped while idle is replaced before the next batch runs (no
 * request fails); while the server is down every request fails at once with HEARTH_ESTORAGE,
 * none is lost or left waiting; once it is back the driver reconnects by itself. */
/* storage_account_page: a page in name order from the database, with the count of all that
 * matched; the search's %, _ and \\ are literal; ASCII letters in either case. */
typedef struct page_got {
    int calls, err;
    size_t n;
    int64_t total;
    char names[8][16];
} page_got_t;

static void page_cb(void *ud, int err, const storage_account_t *accts, size_t n, int64_t total)
{
    page_got_t *g = ud;
    g->calls++;
    g->err = err;
    g->n = n;
    g->total = total;
    for (size_t i = 0; i < n && i < 8; i++)
        snprintf(g->names[i], sizeof(g->names[i]), "%s", accts[i].username);
}

static page_got_t page_of(storage_t *st, inbox_t *in, const char *search, int64_t offset,
                          size_t limit)
{
    page_got_t g = {0};
    storage_target_t t = {inbox_post, in, 0};
    assert_int_equal(storage_account_page(st, &t, search, offset, limit, page_cb, &g), 0);
    inbox_finish(in, 1);
    assert_int_equal(g.calls, 1);
    assert_int_equal(g.err, 0);
    return g;
}

static void test_account_page(void **state)
{
    fixture_t *f = *state;
    storage_t *st = open_ok(f);
    const char *names[] = {"alice", "alina", "bob", "carol", "al_x", "al%x", "a\\l"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        storage_account_t a;
        account_make(&a, (char *)names[i], 0, names[i]);
        assert_int_equal(storage_sync_account_create(st, &a), 0);
    }
    inbox_t in;
    inbox_init(&in);
    page_got_t g = page_of(st, &in, "al", 0, 10);
    assert_int_equal(g.total, 4);
    assert_int_equal(g.n, 4);
    assert_string_equal(g.names[0], "al%x"); /* byte order */
    assert_string_equal(g.names[1], "al_x");
    assert_string_equal(g.names[2], "alice");
    assert_string_equal(g.names[3], "alina");
    g = page_of(st, &in, "AL", 1, 2);
    assert_int_equal(g.total, 4);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.names[0], "al_x");
    assert_string_equal(g.names[1], "alice");
    g = page_of(st, &in, "_", 0, 10);
    assert_int_equal(g.total, 1);
    assert_string_equal(g.names[0], "al_x");
    g = page_of(st, &in, "%", 0, 10);
    assert_int_equal(g.total, 1);
    assert_string_equal(g.names[0], "al%x");
    g = page_of(st, &in, "\\", 0, 10);
    assert_int_equal(g.total, 1);
    assert_string_equal(g.names[0], "a\\l");
    g = page_of(st, &in, NULL, 0, 3);
    assert_int_equal(g.total, 7);
    assert_int_equal(g.n, 3);
    assert_string_equal(g.names[0], "a\\l");
    g = page_of(st, &in, "", 6, 3);
    assert_int_equal(g.total, 7);
    assert_int_equal(g.n, 1);
    assert_string_equal(g.names[0], "carol");
    g = page_of(st, &in, "zed", 0, 3);
    assert_int_equal(g.total, 0);
    assert_int_equal(g.n, 0);
    g = page_of(st, &in, NULL, 100, 3);
    assert_int_equal(g.total, 7);
    assert_int_equal(g.n, 0);

    storage_target_t t = {inbox_post, &in, 0};
    g = page_of(st, &in, "a", 0, 0); /* the count alone */
    assert_int_equal(g.total, 6);
    assert_int_equal(g.n, 0);
    page_got_t none = {0};
    assert_int_equal(storage_account_page(st, &t, NULL, 0, STORAGE_PAGE_MAX + 1, page_cb, &none),
                     HEARTH_EINVAL);
    assert_int_equal(storage_account_page(st, &t, NULL, -1, 1, page_cb, &none), HEARTH_EINVAL);
    assert_int_equal(none.calls, 0);
    inbox_destroy(&in);
    storage_close(st);
}

/* storage.pool_size: each lane's requests complete in the order made, whatever the other lanes
 * do; every lane has its own connection; sqlite refuses a pool. */
#define POOL_LANES 3
#define POOL_PER_LANE 300

typedef struct pool_seen {
    int next[POOL_LANES]; /* the sequence number each lane's next completion must carry */
    int errors;
} pool_seen_t;

typedef struct pool_req {
    pool_seen_t *seen;
    int lane, seq;
} pool_req_t;

static void pool_status_cb(void *ud, int err)
{
    pool_req_t *r = ud;
    if (err != 0)
        r->seen->errors++;
    assert_int_equal(r->seq, r->seen->next[r->lane]);
    r->seen->next[r->lane]++;
    free(r);
}

static void test_pool_lanes_keep_their_order(void **state)
{
    fixture_t *f = *state;
    storage_t *st = NULL;
    char *errmsg = NULL;
    if (!g_pgsql) {
        assert_int_equal(storage_open_pool(g_driver, f->path, 2, &st, &errmsg), HEARTH_ECONFIG);
        assert_non_null(strstr(errmsg, "pool_size"));
        assert_null(st);
        free(errmsg);
        errmsg = NULL;
        assert_int_equal(storage_open_pool(g_driver, f->path, 1, &st, &errmsg), 0);
        assert_int_equal(storage_pool_size(st), 1);
        storage_close(st);
        return;
    }
    assert_int_equal(storage_open_pool(g_driver, f->dsn, 0, &st, &errmsg), HEARTH_ECONFIG);
    free(errmsg);
    errmsg = NULL;
    assert_int_equal(storage_open_pool(g_driver, f->dsn, POOL_LANES, &st, &errmsg), 0);
    assert_int_equal(storage_pool_size(st), POOL_LANES);
#ifdef HEARTH_TEST_PGSQL
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' AND application_name "
             "= 'hearthd'",
             f->db);
    assert_int_equal(db_int(f, sql), POOL_LANES);
#endif
    inbox_t in;
    inbox_init(&in);
    pool_seen_t seen = {{0}, 0};
    storage_target_t t[POOL_LANES];
    for (int l = 0; l < POOL_LANES; l++)
        t[l] = (storage_target_t){inbox_post, &in, (unsigned)l};
    /* Interleaved: each lane writes its own property, then the value it wrote last is read. */
    for (int i = 0; i < POOL_PER_LANE; i++)
        for (int l = 0; l < POOL_LANES; l++) {
            char name[16], val[16];
            snprintf(name, sizeof(name), "lane%d", l);
            snprintf(val, sizeof(val), "%d", i);
            pool_req_t *r = malloc(sizeof(*r));
            assert_non_null(r);
            *r = (pool_req_t){&seen, l, i};
            assert_int_equal(storage_property_set(st, &t[l], name, val, pool_status_cb, r), 0);
        }
    inbox_finish(&in, (size_t)POOL_LANES * POOL_PER_LANE);
    assert_int_equal(seen.errors, 0);
    for (int l = 0; l < POOL_LANES; l++) {
        assert_int_equal(seen.next[l], POOL_PER_LANE);
        char name[16], *value = NULL;
        snprintf(name, sizeof(name), "lane%d", l);
        assert_int_equal(storage_sync_property_get(st, name, &value), 0);
        assert_int_equal(atoi(value), POOL_PER_LANE - 1);
        free(value);
    }
    inbox_destroy(&in);
    storage_close(st);
}

/* Archived messages in batches on two lanes at once (pgsql: archive_texts_first). Each of 200
 * messages is stored for its sender on one lane and for its recipient on the other, the lanes
 * in opposite key order: inserted inside the two batches' transactions, the shared texts
 * deadlocked and PostgreSQL failed a request (a party's copy lost) for each cycle. In the first
 * batch also: an account that does not exist, another text under a key that is held, an id that
 * is not a key, a message twice in one archive, texts an array literal must escape. sqlite has
 * one lane: the same requests in one batch. */
#define CROSS_N 200

typedef struct cross_req {
    int want, got;
    bool called;
} cross_req_t;

static void cross_cb(void *ud, int err)
{
    cross_req_t *r = ud;
    r->got = err;
    r->called = true;
}

static void test_archive_batches_across_lanes(void **state)
{
    fixture_t *f = *state;
    const unsigned lanes = g_pgsql ? 2 : 1;
    storage_t *st = NULL;
    char *errmsg = NULL;
    assert_int_equal(storage_open_pool(g_driver, g_pgsql ? f->dsn : f->path, lanes, &st, &errmsg),
                     0);
    static const char *const users[] = {"alice", "bob", "carol"};
    for (size_t i = 0; i < 3; i++) {
        storage_account_t a;
        account_make(&a, (char *)users[i], 0, users[i]);
        assert_int_equal(storage_sync_account_create(st, &a), 0);
    }
    gate_t g[2];
    for (unsigned l = 0; l < lanes; l++) {
        gate_init(&g[l]);
        gate_close_on_lane(&g[l], st, l);
    }
    inbox_t in;
    inbox_init(&in);
    storage_target_t t[2] = {{inbox_post, &in, 0}, {inbox_post, &in, lanes - 1}};
    const int64_t t0 = 1733472000000;
    static char text[CROSS_N][64], key[CROSS_N][24];
    static cross_req_t reqs[2 * CROSS_N + 8];
    size_t n = 0;
    for (int i = 0; i < CROSS_N; i++) {
        snprintf(text[i], sizeof(text[i]), "<m>\"%d\" \\ {a,b} \xc3\xa9</m>", i);
        snprintf(key[i], sizeof(key[i]), "%s", key_text(t0 + i, 0, 0));
    }
#define STORE(lane_, user_, id_, with_, out_, stanza_, want_)                                      \
    do {                                                                                           \
        storage_archive_msg_t m = {.id = (char *)(id_),                                            \
                                   .with = (char *)(with_),                                        \
                                   .stamp_ms = t0,                                                 \
                                   .outgoing = (out_),                                             \
                                   .stanza = (char *)(stanza_),                                    \
                                   .len = strlen(stanza_)};                                        \
        reqs[n].want = (want_);                                                                    \
        assert_int_equal(storage_archive_store(st, &t[lane_], (user_), &m, cross_cb, &reqs[n]),    \
                         0);                                                                       \
        n++;                                                                                       \
    } while (0)
    /* the sender's copies in key order on lane 0, the recipient's in reverse order on lane 1 */
    for (int i = 0; i < CROSS_N; i++) {
        STORE(0, "alice", key[i], "bob@x", 1, text[i], 0);
        STORE(1, "bob", key[CROSS_N - 1 - i], "alice@x", 0, text[CROSS_N - 1 - i], 0);
    }
    const char *kx = key_text(t0 + CROSS_N, 0, 0);
    STORE(0, "nobody", kx, "bob@x", 1, "<message>x</message>", HEARTH_ENOTFOUND);
    STORE(0, "carol", key[0], "dave@y", 0, "<message>other</message>", 0);
    STORE(0, "carol", "legacy-1", "dave@y", 0, "<message>legacy</message>", 0);
    STORE(0, "alice", key[1], "bob@x", 1, text[1], HEARTH_EEXISTS);
#undef STORE
    for (unsigned l = 0; l < lanes; l++)
        gate_open(&g[l]);
    inbox_finish(&in, n);
    for (size_t i = 0; i < n; i++) {
        assert_true(reqs[i].called);
        if (reqs[i].got != reqs[i].want)
            fail_msg("request %zu: %d, not %d", i, reqs[i].got, reqs[i].want);
    }
    for (unsigned l = 0; l < lanes; l++)
        gate_destroy(&g[l]);
    inbox_destroy(&in);
    storage_close(st);

    /* Each message's text once (and the legacy one's); nothing of the refused store. */
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive_msg"), CROSS_N + 1);
    char sql[128];
    int64_t k = 0;
    assert_int_equal(storage_archive_key_parse(kx, &k), 0);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM archive_msg WHERE seq = %" PRId64, k);
    assert_int_equal(db_int(f, sql), 0);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive WHERE stanza IS NULL"),
                     2 * CROSS_N + 1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM archive WHERE stanza IS NOT NULL"), 1);
    im_t x;
    im_open(&x, f, NULL);
    assert_int_equal(archive_q(&x, "bob", NULL, ALL, NULL, NULL, 3), 0);
    assert_int_equal(g_page.count, CROSS_N);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(g_page.id[i], key[i]);
        assert_string_equal(g_page.stanza[i], text[i]);
        assert_int_equal(g_page.outgoing[i], 0);
    }
    assert_int_equal(archive_q(&x, "alice", NULL, ALL, NULL, NULL, 2), 0);
    assert_int_equal(g_page.count, CROSS_N);
    assert_string_equal(g_page.stanza[1], text[1]);
    assert_int_equal(g_page.outgoing[1], 1);
    assert_int_equal(archive_q(&x, "carol", NULL, ALL, NULL, NULL, 5), 0);
    assert_int_equal(g_page.count, 2);
    assert_string_equal(g_page.stanza[0], "<message>other</message>");
    im_close(&x);
}

static void test_pgsql_reconnect(void **state)
{
    fixture_t *f = *state;
    if (!g_pgsql)
        skip();
    storage_t *st = open_ok(f);
    storage_account_t a;
    account_make(&a, "alice", 0, "a");
    assert_int_equal(storage_sync_account_create(st, &a), 0);

    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s' AND "
             "application_name = 'hearthd'",
             f->db);
    assert_int_equal(db_int(f, sql), 1);
    storage_account_t got;
    assert_int_equal(storage_sync_account_get(st, "alice", &got), 0);
    storage_account_clear(&got);

    if (pg_cluster("pause") != 0) {
        storage_close(st);
        skip(); /* not run under pg-test-cluster.sh */
    }
    /* Down: a read and a write fail, each at once (the first attempt is refused, the next ones
     * wait for the retry delay without trying). */
    for (int i = 0; i < 3; i++) {
        time_t t0 = time(NULL);
        assert_int_equal(storage_sync_account_get(st, "alice", &got), HEARTH_ESTORAGE);
        assert_int_equal(storage_sync_property_set(st, "k", "v"), HEARTH_ESTORAGE);
        assert_true(time(NULL) - t0 <= 2);
    }
    assert_int_equal(pg_cluster("resume"), 0);
    /* Back: within the longest retry delay, and nothing that was committed is gone. */
    int rc = HEARTH_ESTORAGE;
    for (int i = 0; i < 200 && rc != 0; i++) {
        rc = storage_sync_account_get(st, "alice", &got);
        if (rc != 0)
            usleep(50 * 1000);
    }
    assert_int_equal(rc, 0);
    assert_string_equal(got.username, "alice");
    storage_account_clear(&got);
    assert_int_equal(storage_sync_property_set(st, "k", "v"), 0);
    char *v = NULL;
    assert_int_equal(storage_sync_property_get(st, "k", &v), 0);
    assert_string_equal(v, "v");
    free(v);
    storage_close(st);
}

int main(void)
{
    const char *driver = getenv("HEARTH_TEST_STORAGE");
    if (driver != NULL && driver[0] != '\0')
        g_driver = driver;
    g_pgsql = strcmp(g_driver, "pgsql") == 0;
    if (g_pgsql) {
#ifdef HEARTH_TEST_PGSQL
        g_pg_dsn = getenv("HEARTH_TEST_PG_DSN");
        if (g_pg_dsn == NULL || g_pg_dsn[0] == '\0') {
            fprintf(stderr, "HEARTH_TEST_STORAGE=pgsql needs HEARTH_TEST_PG_DSN (a server DSN; "
                            "scripts/pg-test-cluster.sh run gives one)\n");
            return 77;
        }
#else
        fprintf(stderr, "built without libpq: no pgsql driver to test\n");
        return 77;
#endif
    } else if (strcmp(g_driver, "sqlite") != 0) {
        fprintf(stderr, "HEARTH_TEST_STORAGE: unknown driver '%s'\n", g_driver);
        return 2;
    }

    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migration_matches_sql_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_accounts_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_properties_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_one_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_finishes_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1_to_v2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_entries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_muc_affiliations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_load, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roster_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sub_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vcard_private, setup, teardown),
        cmocka_unit_test_setup_teardown(test_private_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_block_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_im_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_delete_cascades, setup, teardown),
        cmocka_unit_test_setup_teardown(test_async_im_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v2_to_v3, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v5_to_v6, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_purge, setup, teardown),
        cmocka_unit_test(test_archive_key_parse),
        cmocka_unit_test_setup_teardown(test_archive_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v6_to_v7, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_prefs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_docs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pubsub, setup, teardown),
        cmocka_unit_test_setup_teardown(test_account_page, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_lanes_keep_their_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_batches_across_lanes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pgsql_reconnect, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
