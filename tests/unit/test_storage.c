/* Unit tests for server/storage (sqlite driver): schema and migrations, the blocking API, the
 * asynchronous API's FIFO completion through a test inbox, batching into one transaction with a
 * savepoint per request, refusal of a newer schema, and close with requests still queued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <libgen.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/storage.h"

/* ---- fixtures ---- */

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture_t;

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
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
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
    int rc = storage_open("sqlite", f->path, &st, &errmsg);
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
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
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

/* Blocks the storage thread in the gate's post. */
static void gate_close_on(gate_t *g, storage_t *st)
{
    storage_target_t t = {gate_post, g};
    assert_int_equal(storage_property_set(st, &t, "gate", "1", ignore_status_cb, NULL), 0);
    gate_wait_entered(g);
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
    assert_int_equal(db_int(f, "SELECT version FROM schema_version"), 1);
    assert_int_equal(db_int(f, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                               "name IN ('accounts', 'properties')"),
                     2);
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

/* The reference .sql file and the migration embedded in sqlite.c give the same schema. */
static void test_migration_matches_sql_file(void **state)
{
    fixture_t *f = *state;
    char src[512], path[600];
    snprintf(src, sizeof(src), "%s", __FILE__);
    snprintf(path, sizeof(path), "%s/../../server/storage/sql/sqlite/0001_accounts.sql",
             dirname(src));
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        skip(); /* built from a relative __FILE__: no way to find the source tree */
    }
    char text[8192];
    size_t len = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[len] = '\0';

    storage_t *st = open_ok(f);
    storage_close(st);

    const char *q = "SELECT group_concat(type || ' ' || name || ': ' || sql, '\n') FROM (SELECT "
                    "* FROM sqlite_master WHERE name <> 'schema_version' ORDER BY name)";
    sqlite3 *ref = NULL, *db = NULL;
    sqlite3_stmt *s1 = NULL, *s2 = NULL;
    assert_int_equal(sqlite3_open(":memory:", &ref), SQLITE_OK);
    assert_int_equal(sqlite3_exec(ref, text, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(ref, q, -1, &s1, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, q, -1, &s2, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s1), SQLITE_ROW);
    assert_int_equal(sqlite3_step(s2), SQLITE_ROW);
    assert_non_null(sqlite3_column_text(s1, 0));
    assert_string_equal((const char *)sqlite3_column_text(s1, 0),
                        (const char *)sqlite3_column_text(s2, 0));
    sqlite3_finalize(s1);
    sqlite3_finalize(s2);
    sqlite3_close(ref);
    sqlite3_close(db);
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
    errmsg = NULL;
    assert_int_equal(storage_open("sqlite", bad, &st, &errmsg), HEARTH_ESTORAGE);
    assert_null(st);
    assert_non_null(errmsg);
    assert_non_null(strstr(errmsg, bad));
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
    assert_int_equal(storage_open("sqlite", f->path, &st, &errmsg), HEARTH_ESTORAGE);
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

    storage_target_t none = {NULL, NULL};
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
    storage_target_t t = {inbox_post, &in};
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
    storage_target_t t = {inbox_post, &in};
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

    storage_target_t t = {inbox_post, &in};
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
    storage_target_t t = {inbox_post, &in};
    assert_int_equal(storage_account_get(st, &t, "eve", never_cb, NULL), 0);
    storage_close(st);
    assert_int_equal(in.posted, 1);
    storage_req_discard(in.items[in.head++ % INBOX_CAP]);
    inbox_destroy(&in);
}

int main(void)
{
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
