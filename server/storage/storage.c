/* Driver-independent storage: request objects, the FIFO queues and their threads (one per
 * connection of the pool), the typed callbacks run on the asking thread, and the blocking
 * wrappers. Touches no database itself: the driver (struct storage_driver) executes each batch on
 * a storage thread. */
#include "storage/storage.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One connection of the driver with its thread and FIFO queue. A target's requests always go to
 * the same lane (storage_target_t.lane), so each asking loop's requests run in the order made. */
typedef struct lane {
    storage_t *st;
    void *conn;
    pthread_t thread;
    bool running; /* the thread was started (joined at close) */

    pthread_mutex_t mu; /* guards the queue and stopping; never held while running requests */
    pthread_cond_t cv;
    storage_req_t *head;
    storage_req_t *tail;
    size_t queued; /* bounded by STORAGE_QUEUE_MAX */
    bool stopping;
} lane_t;

struct storage {
    const storage_driver_t *driver;
    lane_t *lanes;
    unsigned nlanes;

    _Atomic uint64_t batches;
    _Atomic uint64_t requests;
    struct storage_pending *pending;
};

/* Requests queued and not yet finished by their owner. Requests may be finished after the
 * storage is closed and freed, so the count lives apart, freed with its last reference. */
struct storage_pending {
    _Atomic long n;
    _Atomic long refs; /* the storage, plus one per outstanding request */
    /* Latency from queued to finished (the callback about to run on the asking thread), per
     * STORAGE_LATENCY_BOUNDS_US bucket (the last: above them all), and its sum. */
    _Atomic uint64_t latency[STORAGE_LATENCY_BUCKETS];
    _Atomic uint64_t latency_sum_us;
};

const uint64_t storage__latency_bounds_us[STORAGE_LATENCY_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void pending_unref(struct storage_pending *p)
{
    if (p && atomic_fetch_sub(&p->refs, 1) == 1)
        free(p);
}

long storage_outstanding(storage_t *st)
{
    return atomic_load(&st->pending->n);
}

static void req_done(storage_req_t *req)
{
    struct storage_pending *p = req->pending;
    req->pending = NULL;
    if (p) {
        uint64_t us = now_us() - req->queued_us;
        size_t b = 0;
        while (b < STORAGE_LATENCY_BUCKETS - 1 && us > storage__latency_bounds_us[b])
            b++;
        atomic_fetch_add(&p->latency[b], 1);
        atomic_fetch_add(&p->latency_sum_us, us);
        atomic_fetch_sub(&p->n, 1);
        pending_unref(p);
    }
}

static const storage_driver_t *const drivers[] = {&storage__sqlite_driver, &storage__pgsql_driver};

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

/* ---- the storage thread ---- */

static void *storage_thread(void *arg)
{
    lane_t *l = arg;
    storage_t *st = l->st;

    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (l->head == NULL && !l->stopping)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->head == NULL)
            break; /* stopping, and everything queued has run */
        storage_req_t *batch = l->head;
        size_t n = l->queued;
        l->head = l->tail = NULL;
        l->queued = 0;
        pthread_mutex_unlock(&l->mu);

        st->driver->run(l->conn, batch);
        atomic_fetch_add(&st->batches, 1);
        atomic_fetch_add(&st->requests, n);

        /* After the commit, in order. A posted request belongs to its owner: read next first. */
        for (storage_req_t *r = batch, *next; r != NULL; r = next) {
            next = r->next;
            r->next = NULL;
            r->post(r->post_ud, r);
        }

        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Stops and joins the lanes' threads (each runs what is queued first), then closes their
 * connections. */
static void lanes_close(storage_t *st)
{
    for (unsigned i = 0; i < st->nlanes; i++) {
        lane_t *l = &st->lanes[i];
        if (!l->running)
            continue;
        pthread_mutex_lock(&l->mu);
        l->stopping = true;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
    }
    for (unsigned i = 0; i < st->nlanes; i++)
        if (st->lanes[i].conn != NULL)
            st->driver->close(st->lanes[i].conn);
    free(st->lanes);
    st->lanes = NULL;
}

int storage_pool_check(const char *driver, unsigned pool, char **errmsg)
{
    if (pool < 1 || pool > STORAGE_POOL_MAX) {
        *errmsg =
            errmsg_printf("storage: a pool of %u connections (1 to %d)", pool, STORAGE_POOL_MAX);
        return HEARTH_ECONFIG;
    }
    if (pool > 1 && strcmp(driver, "sqlite") == 0) {
        /* One writer at a time: more connections would only wait on each other's locks. */
        *errmsg = errmsg_printf("storage: storage.pool_size is %u, but the sqlite driver has one "
                                "connection (SQLite takes one writer at a time); set it to 1 "
                                "or use pgsql",
                                pool);
        return HEARTH_ECONFIG;
    }
    return 0;
}

int storage_open(const char *driver, const char *dsn, storage_t **out, char **errmsg)
{
    return storage_open_pool(driver, dsn, 1, out, errmsg);
}

int storage_open_pool(const char *driver, const char *dsn, unsigned pool, storage_t **out,
                      char **errmsg)
{
    *out = NULL;
    *errmsg = NULL;
    if (driver == NULL || dsn == NULL) {
        *errmsg = errmsg_printf("storage: driver and dsn are required");
        return HEARTH_ECONFIG;
    }
    int rc = storage_pool_check(driver, pool, errmsg);
    if (rc != 0)
        return rc;

    const storage_driver_t *drv = NULL;
    for (size_t i = 0; i < sizeof(drivers) / sizeof(drivers[0]); i++) {
        if (strcmp(drivers[i]->name, driver) == 0)
            drv = drivers[i];
    }
    if (drv == NULL) {
        *errmsg = errmsg_printf("storage: unknown driver '%s' (known: sqlite, pgsql)", driver);
        return HEARTH_ECONFIG;
    }

    storage_t *st = calloc(1, sizeof(*st));
    if (st != NULL && (st->pending = calloc(1, sizeof(*st->pending))) == NULL) {
        free(st);
        st = NULL;
    }
    if (st == NULL) {
        *errmsg = errmsg_printf("storage: out of memory");
        return HEARTH_ENOMEM;
    }
    atomic_store(&st->pending->refs, 1);
    st->driver = drv;
    if ((st->lanes = calloc(pool, sizeof(*st->lanes))) == NULL) {
        pending_unref(st->pending);
        free(st);
        *errmsg = errmsg_printf("storage: out of memory");
        return HEARTH_ENOMEM;
    }
    st->nlanes = pool;
    /* Every connection first (the first runs the migrations), then the threads. */
    for (unsigned i = 0; i < pool && rc == 0; i++) {
        st->lanes[i].st = st;
        rc = drv->open(dsn, &st->lanes[i].conn, errmsg);
    }
    for (unsigned i = 0; i < pool && rc == 0; i++) {
        lane_t *l = &st->lanes[i];
        pthread_mutex_init(&l->mu, NULL);
        pthread_cond_init(&l->cv, NULL);
        int prc = pthread_create(&l->thread, NULL, storage_thread, l);
        if (prc != 0) {
            *errmsg = errmsg_printf("storage: cannot start a storage thread: %s", strerror(prc));
            pthread_cond_destroy(&l->cv);
            pthread_mutex_destroy(&l->mu);
            rc = HEARTH_ESTORAGE;
        } else {
            l->running = true;
        }
    }
    if (rc != 0) {
        lanes_close(st);
        pending_unref(st->pending);
        free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void storage_close(storage_t *st)
{
    if (st == NULL)
        return;
    lanes_close(st);
    pending_unref(st->pending);
    free(st);
}

unsigned storage_pool_size(const storage_t *st)
{
    return st->nlanes;
}

void storage__stats(storage_t *st, storage_stats_t *out)
{
    out->batches = atomic_load(&st->batches);
    out->requests = atomic_load(&st->requests);
    out->commits = 0;
    for (unsigned i = 0; i < st->nlanes; i++)
        out->commits += st->driver->commits(st->lanes[i].conn);
    for (size_t i = 0; i < STORAGE_LATENCY_BUCKETS; i++)
        out->latency[i] = atomic_load(&st->pending->latency[i]);
    out->latency_sum_us = atomic_load(&st->pending->latency_sum_us);
}

/* ---- requests ---- */

void storage_account_clear(storage_account_t *a)
{
    if (a == NULL)
        return;
    free(a->username);
    memset(a, 0, sizeof(*a));
}

static void strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void storage_roster_item_clear(storage_roster_item_t *it)
{
    free(it->jid);
    free(it->name);
    strv_free(it->groups, it->ngroups);
    memset(it, 0, sizeof(*it));
}

void storage_user_clear(storage_user_t *u)
{
    if (u == NULL)
        return;
    for (size_t i = 0; i < u->nitems; i++)
        storage_roster_item_clear(&u->items[i]);
    free(u->items);
    for (size_t i = 0; i < u->nrequests; i++) {
        free(u->requests[i].jid);
        free(u->requests[i].stanza);
    }
    free(u->requests);
    strv_free(u->blocked, u->nblocked);
    free(u->last_status);
    memset(u, 0, sizeof(*u));
}

static void archive_msg_clear(storage_archive_msg_t *m)
{
    free(m->id);
    free(m->with);
    free(m->stanza);
    memset(m, 0, sizeof(*m));
}

void storage_archive_prefs_clear(storage_archive_prefs_t *p)
{
    if (p == NULL)
        return;
    strv_free(p->always, p->nalways);
    strv_free(p->never, p->nnever);
    memset(p, 0, sizeof(*p));
}

static void muc_affs_free(storage_muc_aff_t *a, size_t n)
{
    for (size_t i = 0; a != NULL && i < n; i++) {
        free(a[i].jid);
        free(a[i].affiliation);
        free(a[i].nick);
        free(a[i].reason);
        free(a[i].account);
    }
    free(a);
}

static void pubsub_item_clear(storage_pubsub_item_t *it)
{
    free(it->node);
    free(it->id);
    free(it->publisher);
    free(it->payload);
    memset(it, 0, sizeof(*it));
}

static void pubsub_items_free(storage_pubsub_item_t *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++)
        pubsub_item_clear(&v[i]);
    free(v);
}

void storage_pubsub_affs_free(storage_pubsub_aff_t *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        free(v[i].node);
        free(v[i].jid);
        free(v[i].affiliation);
        free(v[i].account);
    }
    free(v);
}

static void pubsub_nodes_free(storage_pubsub_node_t *v, size_t n)
{
    for (size_t i = 0; v != NULL && i < n; i++) {
        free(v[i].node);
        free(v[i].config);
    }
    free(v);
}

void storage__req_clear_result(storage_req_t *req)
{
    if (req->op == STORAGE_OP_PUBSUB_LOAD || req->op == STORAGE_OP_PUBSUB_ITEMS) {
        pubsub_nodes_free(req->ps.nodes, req->ps.nnodes);
        pubsub_items_free(req->ps.items, req->ps.nitems);
        req->ps.nodes = NULL;
        req->ps.items = NULL;
        req->ps.nnodes = req->ps.nitems = 0;
        if (req->op == STORAGE_OP_PUBSUB_LOAD) {
            storage_pubsub_affs_free(req->ps.affs, req->ps.naffs);
            req->ps.affs = NULL;
            req->ps.naffs = 0;
        }
    }
    if (req->op == STORAGE_OP_MUC_AFFS_GET) {
        muc_affs_free(req->affs, req->affs_n);
        req->affs = NULL;
        req->affs_n = 0;
    }
    for (size_t i = 0; i < req->amsgs_n; i++)
        archive_msg_clear(&req->amsgs[i]);
    free(req->amsgs);
    req->amsgs = NULL;
    req->amsgs_n = 0;
    memset(&req->page, 0, sizeof(req->page));
    if (req->op == STORAGE_OP_ARCHIVE_PREFS_GET)
        storage_archive_prefs_clear(&req->prefs);
    for (size_t i = 0; i < req->docs_n && req->docs != NULL; i++) {
        free(req->docs[i].key);
        free(req->docs[i].xml);
    }
    free(req->docs);
    req->docs = NULL;
    for (size_t i = 0; i < req->docs_n && req->entries != NULL; i++) {
        free(req->entries[i].xml);
        free(req->entries[i].ref);
        free(req->entries[i].author);
        free(req->entries[i].origin);
    }
    free(req->entries);
    req->entries = NULL;
    req->docs_n = 0;
    if (req->op == STORAGE_OP_DOC_GET) {
        free(req->blob);
        req->blob = NULL;
    }
    storage_user_clear(&req->user);
    for (size_t i = 0; i < req->msgs_n && req->msgs != NULL; i++)
        free(req->msgs[i].stanza);
    free(req->msgs);
    req->msgs = NULL;
    req->msgs_n = 0;
    if (req->op == STORAGE_OP_VCARD_GET || req->op == STORAGE_OP_PRIVATE_GET) {
        free(req->blob);
        req->blob = NULL;
    }
    storage_account_clear(&req->result);
    for (size_t i = 0; i < req->list_n; i++)
        storage_account_clear(&req->list[i]);
    free(req->list);
    req->list = NULL;
    req->list_n = 0;
    if (req->op == STORAGE_OP_PROPERTY_GET) {
        free(req->value);
        req->value = NULL;
    }
}

void storage_req_discard(storage_req_t *req)
{
    if (req == NULL)
        return;
    req_done(req);
    storage__req_clear_result(req);
    storage_account_clear(&req->acct);
    free(req->name);
    free(req->value);
    storage_roster_item_clear(&req->item);
    free(req->blob);
    strv_free(req->jids, req->njids);
    archive_msg_clear(&req->msg);
    storage_archive_prefs_clear(&req->prefs);
    muc_affs_free(req->affs, req->affs_n);
    free(req->lg.ref);
    free(req->lg.author);
    free(req->lg.origin);
    free(req->lg.after);
    free(req->lg.before);
    free(req->ps.service);
    free(req->ps.account);
    free(req->ps.node);
    free(req->ps.config);
    strv_free(req->ps.ids, req->ps.nids);
    pubsub_item_clear(&req->ps.item);
    storage_pubsub_affs_free(req->ps.affs, req->ps.naffs);
    free(req);
}

void storage_req_finish(storage_req_t *req)
{
    if (req == NULL)
        return;
    req_done(req);
    int err = req->err;
    switch (req->op) {
    case STORAGE_OP_ACCOUNT_GET:
        req->cb.account(req->ud, err, err == 0 ? &req->result : NULL);
        break;
    case STORAGE_OP_ACCOUNT_LIST:
        req->cb.list(req->ud, err, err == 0 ? req->list : NULL, err == 0 ? req->list_n : 0);
        break;
    case STORAGE_OP_ACCOUNT_PAGE:
        req->cb.page(req->ud, err, err == 0 ? req->list : NULL, err == 0 ? req->list_n : 0,
                     err == 0 ? req->num2 : 0);
        break;
    case STORAGE_OP_PROPERTY_GET:
        req->cb.property(req->ud, err, err == 0 ? req->value : NULL);
        break;
    case STORAGE_OP_USER_LOAD:
        req->cb.user(req->ud, err, err == 0 ? &req->user : NULL);
        break;
    case STORAGE_OP_OFFLINE_FETCH:
        req->cb.offline(req->ud, err, err == 0 ? req->msgs : NULL, err == 0 ? req->msgs_n : 0);
        break;
    case STORAGE_OP_OFFLINE_COUNT:
        req->cb.count(req->ud, err, err == 0 ? req->msgs_n : 0);
        break;
    case STORAGE_OP_ARCHIVE_LAST:
    case STORAGE_OP_COUNT:
        req->cb.key(req->ud, err, err == 0 ? req->num : 0);
        break;
    case STORAGE_OP_VCARD_GET:
    case STORAGE_OP_PRIVATE_GET:
        req->cb.blob(req->ud, err, err == 0 ? req->blob : NULL);
        break;
    case STORAGE_OP_DOC_GET:
        req->cb.blob(req->ud, err, err == 0 ? req->blob : NULL);
        break;
    case STORAGE_OP_ARCHIVE_QUERY:
        req->page.msgs = req->amsgs;
        req->page.n = req->amsgs_n;
        req->cb.archive(req->ud, err, err == 0 ? &req->page : NULL);
        break;
    case STORAGE_OP_ARCHIVE_PREFS_GET:
        req->cb.prefs(req->ud, err, err == 0 ? &req->prefs : NULL);
        break;
    case STORAGE_OP_DOC_LIST:
    case STORAGE_OP_PRIVATE_LIST:
        req->cb.docs(req->ud, err, err == 0 ? req->docs : NULL, err == 0 ? req->docs_n : 0);
        break;
    case STORAGE_OP_LOG_FETCH:
    case STORAGE_OP_LOG_GET:
        req->cb.log(req->ud, err, err == 0 ? req->entries : NULL, err == 0 ? req->docs_n : 0);
        break;
    case STORAGE_OP_LOG_QUERY:
        req->lg.page.entries = req->entries;
        req->lg.page.n = req->docs_n;
        req->cb.log_page(req->ud, err, err == 0 ? &req->lg.page : NULL);
        break;
    case STORAGE_OP_MUC_AFFS_GET:
        req->cb.affs(req->ud, err, err == 0 ? req->affs : NULL, err == 0 ? req->affs_n : 0);
        break;
    case STORAGE_OP_MUC_OWNED:
        req->cb.count(req->ud, err, err == 0 ? req->msgs_n : 0);
        break;
    case STORAGE_OP_PUBSUB_LOAD: {
        storage_pubsub_state_t state = {req->ps.nodes,  req->ps.nnodes, req->ps.items,
                                        req->ps.nitems, req->ps.affs,   req->ps.naffs};
        req->cb.pubsub_load(req->ud, err, err == 0 ? &state : NULL);
        break;
    }
    case STORAGE_OP_PUBSUB_ITEMS:
        req->cb.pubsub_items(req->ud, err, err == 0 ? req->ps.items : NULL,
                             err == 0 ? req->ps.nitems : 0);
        break;
    case STORAGE_OP_ACCOUNT_CREATE:
    case STORAGE_OP_ACCOUNT_SET_SECRETS:
    case STORAGE_OP_ACCOUNT_SET_ADMIN:
    case STORAGE_OP_ACCOUNT_SET_LOCKED:
    case STORAGE_OP_ACCOUNT_DELETE:
    case STORAGE_OP_PROPERTY_SET:
    case STORAGE_OP_ROSTER_PUT:
    case STORAGE_OP_ROSTER_DELETE:
    case STORAGE_OP_REQUEST_PUT:
    case STORAGE_OP_REQUEST_DELETE:
    case STORAGE_OP_OFFLINE_STORE:
    case STORAGE_OP_OFFLINE_DELETE:
    case STORAGE_OP_VCARD_SET:
    case STORAGE_OP_PRIVATE_SET:
    case STORAGE_OP_BLOCK_ADD:
    case STORAGE_OP_BLOCK_REMOVE:
    case STORAGE_OP_LAST_SET:
    case STORAGE_OP_ARCHIVE_STORE:
    case STORAGE_OP_ARCHIVE_PREFS_SET:
    case STORAGE_OP_ARCHIVE_PURGE:
    case STORAGE_OP_DOC_PUT:
    case STORAGE_OP_DOC_DELETE:
    case STORAGE_OP_LOG_APPEND:
    case STORAGE_OP_LOG_DELETE:
    case STORAGE_OP_LOG_APPEND_ENTRY:
    case STORAGE_OP_LOG_REPLACE:
    case STORAGE_OP_MUC_AFFS_PUT:
    case STORAGE_OP_PUBSUB_NODE_PUT:
    case STORAGE_OP_PUBSUB_NODE_DELETE:
    case STORAGE_OP_PUBSUB_PUBLISH:
    case STORAGE_OP_PUBSUB_RETRACT:
    case STORAGE_OP_PUBSUB_PURGE:
    case STORAGE_OP_PUBSUB_AFFS_SET:
        req->cb.status(req->ud, err);
        break;
    }
    storage_req_discard(req);
}

static bool name_ok(const char *s)
{
    if (s == NULL)
        return false;
    size_t len = strnlen(s, STORAGE_NAME_MAX + 1);
    return len > 0 && len <= STORAGE_NAME_MAX;
}

static bool secret_ok(const hearth_scram_secret_t *s)
{
    return s != NULL && strnlen(s->salt, sizeof(s->salt)) < sizeof(s->salt) &&
           strnlen(s->stored_key, sizeof(s->stored_key)) < sizeof(s->stored_key) &&
           strnlen(s->server_key, sizeof(s->server_key)) < sizeof(s->server_key);
}

static storage_req_t *req_new(storage_op_t op, const storage_target_t *t, void *ud)
{
    storage_req_t *req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    req->op = op;
    req->post = t->post;
    req->post_ud = t->post_ud;
    req->lane = t->lane;
    req->ud = ud;
    return req;
}

/* Consumes req: queued on its target's lane, or freed on error. */
static int submit(storage_t *st, storage_req_t *req)
{
    int rc = 0;
    lane_t *l = &st->lanes[req->lane % st->nlanes];
    pthread_mutex_lock(&l->mu);
    if (l->stopping) {
        rc = HEARTH_ECLOSED;
    } else if (l->queued >= STORAGE_QUEUE_MAX) {
        rc = HEARTH_EAGAIN;
    } else {
        if (l->tail != NULL)
            l->tail->next = req;
        else
            l->head = req;
        l->tail = req;
        l->queued++;
        req->pending = st->pending;
        req->queued_us = now_us();
        atomic_fetch_add(&st->pending->refs, 1);
        atomic_fetch_add(&st->pending->n, 1);
        pthread_cond_signal(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    if (rc != 0)
        storage_req_discard(req);
    return rc;
}

static bool target_ok(storage_t *st, const storage_target_t *t, const void *cb)
{
    return st != NULL && t != NULL && t->post != NULL && cb != NULL;
}

/* A request naming one account. */
static int account_req(storage_t *st, const storage_target_t *t, storage_op_t op,
                       const char *username, void *ud, storage_req_t **out)
{
    *out = NULL;
    if (!name_ok(username))
        return HEARTH_EINVAL;
    storage_req_t *req = req_new(op, t, ud);
    if (req == NULL)
        return HEARTH_ENOMEM;
    req->acct.username = strdup(username);
    if (req->acct.username == NULL) {
        storage_req_discard(req);
        return HEARTH_ENOMEM;
    }
    *out = req;
    return 0;
}

int storage_account_get(storage_t *st, const storage_target_t *t, const char *username,
                        storage_account_cb cb, void *ud)
{
    if (!target_ok(st, t, (const void *)cb))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = account_req(st, t, STORAGE_OP_ACCOUNT_GET, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.account = cb;
    return submit(st, req);
}

int storage_account_create(storage_t *st, const storage_target_t *t, const storage_account_t *acct,
                           storage_status_cb cb, void *ud)
{
    if (!target_ok(st, t, (const void *)cb) || acct == NULL || !secret_ok(&acct->sha1) ||
        !secret_ok(&acct->sha256))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = account_req(st, t, STORAGE_OP_ACCOUNT_CREATE, acct->username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->acct.admin = acct->admin ? 1 : 0;
    req->acct.sha1 = acct->sha1;
    req->acct.sha256 = acct->sha256;
    req->acct.created_at = acct->created_at;
    return submit(st, req);
}

int storage_account_set_secrets(storage_t *st, const storage_target_t *t, const char *username,
                                const hearth_scram_secret_t *sha1,
                                const hearth_scram_secret_t *sha256, storage_status_cb cb, void *ud)
{
    if (!target_ok(st, t, (const void *)cb) || !secret_ok(sha1) || !secret_ok(sha256))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = account_req(st, t, STORAGE_OP_ACCOUNT_SET_SECRETS, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->acct.sha1 = *sha1;
    req->acct.sha256 = *sha256;
    return submit(st, req);
}

int storage_account_set_admin(storage_t *st, const storage_target_t *t, const char *username,
                              int admin, storage_status_cb cb, void *ud)
{
    if (!target_ok(st, t, (const void *)cb))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = account_req(st, t, STORAGE_OP_ACCOUNT_SET_ADMIN, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->acct.admin = admin ? 1 : 0;
    return submit(st, req);
}

int storage_account_set_locked(storage_t *st, const storage_target_t *t, const char *username,
                               int locked, storage_status_cb cb, void *ud)
{
    if (!target_ok(st, t, (const void *)cb))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = account_req(st, t, STORAGE_OP_ACCOUNT_SET_LOCKED, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->acct.locked = locked ? 1 : 0;
    return submit(st, req);
}

int storage_account_delete(storage_t *st, const storage_target_t *t, const char *username,
                           storage_status_cb cb, void *ud)
{
    if (!target_ok(st, t, (const void *)cb))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = account_req(st, t, STORAGE_OP_ACCOUNT_DELETE, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    return submit(st, req);
}

int storage_account_list(storage_t *st, const storage_target_t *t, storage_account_list_cb cb,
                         void *ud)
{
    if (!target_ok(st, t, (const void *)cb))
        return HEARTH_EINVAL;
    storage_req_t *req = req_new(STORAGE_OP_ACCOUNT_LIST, t, ud);
    if (req == NULL)
        return HEARTH_ENOMEM;
    req->cb.list = cb;
    return submit(st, req);
}

/* "%search%" for LIKE with '\\' as the escape: the search's own %, _ and \\ taken literally,
 * ASCII letters lowered (account names are stored case-folded). */
static char *like_pattern(const char *search)
{
    size_t n = search ? strlen(search) : 0;
    char *p = malloc(2 * n + 3), *w = p;
    if (p == NULL)
        return NULL;
    *w++ = '%';
    for (size_t i = 0; i < n; i++) {
        char ch = search[i];
        if (ch == '%' || ch == '_' || ch == '\\')
            *w++ = '\\';
        *w++ = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    if (n > 0)
        *w++ = '%';
    *w = '\0';
    return p;
}

int storage_account_page(storage_t *st, const storage_target_t *t, const char *search,
                         int64_t offset, size_t limit, storage_account_page_cb cb, void *ud)
{
    if (search != NULL && *search == '\0')
        search = NULL;
    if (!target_ok(st, t, (const void *)cb) || offset < 0 || limit > STORAGE_PAGE_MAX ||
        (search != NULL && !name_ok(search)))
        return HEARTH_EINVAL;
    storage_req_t *req = req_new(STORAGE_OP_ACCOUNT_PAGE, t, ud);
    if (req == NULL)
        return HEARTH_ENOMEM;
    if ((req->name = like_pattern(search)) == NULL) {
        storage_req_discard(req);
        return HEARTH_ENOMEM;
    }
    req->num = offset;
    req->limit = limit;
    req->cb.page = cb;
    return submit(st, req);
}

int storage_property_get(storage_t *st, const storage_target_t *t, const char *name,
                         storage_property_cb cb, void *ud)
{
    if (!target_ok(st, t, (const void *)cb) || !name_ok(name))
        return HEARTH_EINVAL;
    storage_req_t *req = req_new(STORAGE_OP_PROPERTY_GET, t, ud);
    if (req == NULL)
        return HEARTH_ENOMEM;
    req->cb.property = cb;
    req->name = strdup(name);
    if (req->name == NULL) {
        storage_req_discard(req);
        return HEARTH_ENOMEM;
    }
    return submit(st, req);
}

int storage_property_set(storage_t *st, const storage_target_t *t, const char *name,
                         const char *value, storage_status_cb cb, void *ud)
{
    if (!target_ok(st, t, (const void *)cb) || !name_ok(name) ||
        (value && strnlen(value, STORAGE_VALUE_MAX + 1) > STORAGE_VALUE_MAX))
        return HEARTH_EINVAL;
    storage_req_t *req = req_new(STORAGE_OP_PROPERTY_SET, t, ud);
    if (req == NULL)
        return HEARTH_ENOMEM;
    req->cb.status = cb;
    req->name = strdup(name);
    req->value = value ? strdup(value) : NULL;
    if (req->name == NULL || (value && req->value == NULL)) {
        storage_req_discard(req);
        return HEARTH_ENOMEM;
    }
    return submit(st, req);
}

/* ---- IM records ---- */

/* 1..max bytes. */
static bool text_ok(const char *s, size_t max)
{
    if (s == NULL)
        return false;
    size_t len = strnlen(s, max + 1);
    return len > 0 && len <= max;
}

/* NULL, or 0..max bytes. */
static bool opt_text_ok(const char *s, size_t max)
{
    return s == NULL || strnlen(s, max + 1) <= max;
}

static int dup_opt(const char *s, char **out)
{
    *out = NULL;
    if (s == NULL)
        return 0;
    *out = strdup(s);
    return *out != NULL ? 0 : HEARTH_ENOMEM;
}

static bool roster_item_ok(const storage_roster_item_t *it)
{
    if (it == NULL || !text_ok(it->jid, STORAGE_JID_MAX) ||
        !opt_text_ok(it->name, STORAGE_GROUP_MAX) || it->subscription < STORAGE_SUB_NONE ||
        it->subscription > STORAGE_SUB_BOTH || it->ngroups > STORAGE_GROUPS_MAX ||
        (it->ngroups > 0 && it->groups == NULL))
        return false;
    for (size_t i = 0; i < it->ngroups; i++) {
        if (!text_ok(it->groups[i], STORAGE_GROUP_MAX))
            return false;
    }
    return true;
}

static int roster_item_copy(storage_roster_item_t *dst, const storage_roster_item_t *src,
                            int64_t ver)
{
    memset(dst, 0, sizeof(*dst));
    dst->subscription = src->subscription;
    dst->ask = src->ask ? 1 : 0;
    dst->approved = src->approved ? 1 : 0;
    dst->ver = ver;
    if ((dst->jid = strdup(src->jid)) == NULL || dup_opt(src->name, &dst->name) != 0)
        goto nomem;
    if (src->ngroups > 0) {
        dst->groups = calloc(src->ngroups, sizeof(*dst->groups));
        if (dst->groups == NULL)
            goto nomem;
        dst->ngroups = src->ngroups; /* NULLs until filled: clearing is safe */
        for (size_t i = 0; i < src->ngroups; i++) {
            if ((dst->groups[i] = strdup(src->groups[i])) == NULL)
                goto nomem;
        }
    }
    return 0;

nomem:
    storage_roster_item_clear(dst);
    return HEARTH_ENOMEM;
}

/* Checks and copies a JID list of n (0 allowed) into req. */
static int jids_copy(storage_req_t *req, const char *const *jids, size_t n)
{
    if (n > STORAGE_BLOCK_MAX || (n > 0 && jids == NULL))
        return HEARTH_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!text_ok(jids[i], STORAGE_JID_MAX))
            return HEARTH_EINVAL;
    }
    if (n == 0)
        return 0;
    req->jids = calloc(n, sizeof(*req->jids));
    if (req->jids == NULL)
        return HEARTH_ENOMEM;
    req->njids = n;
    for (size_t i = 0; i < n; i++) {
        if ((req->jids[i] = strdup(jids[i])) == NULL)
            return HEARTH_ENOMEM;
    }
    return 0;
}

/* A request naming one account (and checking the target and callback); *out on 0. */
static int user_req(storage_t *st, const storage_target_t *t, const void *cb, storage_op_t op,
                    const char *username, void *ud, storage_req_t **out)
{
    *out = NULL;
    if (!target_ok(st, t, cb))
        return HEARTH_EINVAL;
    return account_req(st, t, op, username, ud, out);
}

/* Submits req unless rc says a copy failed (then frees it). */
static int submit_or_drop(storage_t *st, storage_req_t *req, int rc)
{
    if (rc != 0) {
        storage_req_discard(req);
        return rc;
    }
    return submit(st, req);
}

int storage_user_load(storage_t *st, const storage_target_t *t, const char *username,
                      storage_user_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_USER_LOAD, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.user = cb;
    return submit(st, req);
}

int storage_roster_put(storage_t *st, const storage_target_t *t, const char *username,
                       const storage_roster_item_t *item, int64_t ver, storage_status_cb cb,
                       void *ud)
{
    if (!roster_item_ok(item))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_ROSTER_PUT, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->num = ver;
    return submit_or_drop(st, req, roster_item_copy(&req->item, item, ver));
}

/* A request naming one account and one JID (in item.jid). */
static int user_jid_req(storage_t *st, const storage_target_t *t, storage_status_cb cb,
                        storage_op_t op, const char *username, const char *jid, void *ud,
                        storage_req_t **out)
{
    *out = NULL;
    if (!text_ok(jid, STORAGE_JID_MAX))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, op, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->item.jid = strdup(jid);
    if (req->item.jid == NULL) {
        storage_req_discard(req);
        return HEARTH_ENOMEM;
    }
    *out = req;
    return 0;
}

int storage_roster_delete(storage_t *st, const storage_target_t *t, const char *username,
                          const char *jid, int64_t ver, storage_status_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = user_jid_req(st, t, cb, STORAGE_OP_ROSTER_DELETE, username, jid, ud, &req);
    if (rc != 0)
        return rc;
    req->num = ver;
    return submit(st, req);
}

int storage_request_put(storage_t *st, const storage_target_t *t, const char *username,
                        const char *jid, const char *stanza, storage_status_cb cb, void *ud)
{
    if (!text_ok(stanza, STORAGE_STANZA_MAX))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = user_jid_req(st, t, cb, STORAGE_OP_REQUEST_PUT, username, jid, ud, &req);
    if (rc != 0)
        return rc;
    return submit_or_drop(st, req, dup_opt(stanza, &req->blob));
}

int storage_request_delete(storage_t *st, const storage_target_t *t, const char *username,
                           const char *jid, storage_status_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = user_jid_req(st, t, cb, STORAGE_OP_REQUEST_DELETE, username, jid, ud, &req);
    if (rc != 0)
        return rc;
    return submit(st, req);
}

int storage_offline_store(storage_t *st, const storage_target_t *t, const char *username,
                          const char *stanza, size_t len, int64_t stamp_ms, unsigned quota,
                          storage_status_cb cb, void *ud)
{
    if (stanza == NULL || len == 0 || len > STORAGE_STANZA_MAX)
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_OFFLINE_STORE, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->num = stamp_ms;
    req->quota = quota;
    req->blob = malloc(len + 1);
    if (req->blob == NULL)
        return submit_or_drop(st, req, HEARTH_ENOMEM);
    memcpy(req->blob, stanza, len);
    req->blob[len] = '\0';
    req->blob_len = len;
    return submit(st, req);
}

int storage_offline_fetch(storage_t *st, const storage_target_t *t, const char *username,
                          storage_offline_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_OFFLINE_FETCH, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.offline = cb;
    return submit(st, req);
}

int storage_offline_delete(storage_t *st, const storage_target_t *t, const char *username,
                           int64_t upto_id, storage_status_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_OFFLINE_DELETE, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->num = upto_id;
    return submit(st, req);
}

int storage_vcard_get(storage_t *st, const storage_target_t *t, const char *username,
                      storage_blob_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_VCARD_GET, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.blob = cb;
    return submit(st, req);
}

int storage_vcard_set(storage_t *st, const storage_target_t *t, const char *username,
                      const char *xml, storage_status_cb cb, void *ud)
{
    if (!opt_text_ok(xml, STORAGE_XML_MAX))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_VCARD_SET, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    return submit_or_drop(st, req, dup_opt(xml, &req->blob));
}

int storage_private_get(storage_t *st, const storage_target_t *t, const char *username,
                        const char *ns, storage_blob_cb cb, void *ud)
{
    if (!name_ok(ns))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_PRIVATE_GET, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.blob = cb;
    return submit_or_drop(st, req, dup_opt(ns, &req->name));
}

int storage_private_list(storage_t *st, const storage_target_t *t, const char *username,
                         storage_doc_list_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_PRIVATE_LIST, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.docs = cb;
    return submit(st, req);
}

int storage_private_set(storage_t *st, const storage_target_t *t, const char *username,
                        const char *ns, const char *xml, size_t total_max, storage_status_cb cb,
                        void *ud)
{
    if (total_max > INT64_MAX)
        return HEARTH_EINVAL;
    if (!name_ok(ns) || !opt_text_ok(xml, STORAGE_XML_MAX))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_PRIVATE_SET, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->num = (int64_t)total_max;
    rc = dup_opt(ns, &req->name);
    if (rc == 0)
        rc = dup_opt(xml, &req->blob);
    return submit_or_drop(st, req, rc);
}

static int block_req(storage_t *st, const storage_target_t *t, storage_op_t op,
                     const char *username, const char *const *jids, size_t n, storage_status_cb cb,
                     void *ud)
{
    if (n > STORAGE_BLOCK_MAX)
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, op, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    return submit_or_drop(st, req, jids_copy(req, jids, n));
}

int storage_block_add(storage_t *st, const storage_target_t *t, const char *username,
                      const char *const *jids, size_t n, storage_status_cb cb, void *ud)
{
    return block_req(st, t, STORAGE_OP_BLOCK_ADD, username, jids, n, cb, ud);
}

int storage_block_remove(storage_t *st, const storage_target_t *t, const char *username,
                         const char *const *jids, size_t n, storage_status_cb cb, void *ud)
{
    return block_req(st, t, STORAGE_OP_BLOCK_REMOVE, username, jids, n, cb, ud);
}

int storage_last_set(storage_t *st, const storage_target_t *t, const char *username, int64_t stamp,
                     const char *status, storage_status_cb cb, void *ud)
{
    if (!opt_text_ok(status, STORAGE_VALUE_MAX))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_LAST_SET, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->num = stamp;
    return submit_or_drop(st, req, dup_opt(status, &req->value));
}

/* ---- message archive (migration 3) ---- */

int storage_archive_store(storage_t *st, const storage_target_t *t, const char *username,
                          const storage_archive_msg_t *msg, storage_status_cb cb, void *ud)
{
    if (msg == NULL || !text_ok(msg->id, STORAGE_ARCHIVE_ID_MAX) ||
        !text_ok(msg->with, STORAGE_JID_MAX) || msg->stanza == NULL || msg->len == 0 ||
        msg->len > STORAGE_STANZA_MAX)
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_ARCHIVE_STORE, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->msg.stamp_ms = msg->stamp_ms;
    req->msg.outgoing = msg->outgoing ? 1 : 0;
    rc = dup_opt(msg->id, &req->msg.id);
    if (rc == 0)
        rc = dup_opt(msg->with, &req->msg.with);
    if (rc == 0 && (req->blob = malloc(msg->len + 1)) == NULL)
        rc = HEARTH_ENOMEM;
    if (rc == 0) {
        memcpy(req->blob, msg->stanza, msg->len);
        req->blob[msg->len] = '\0';
        req->blob_len = msg->len;
    }
    return submit_or_drop(st, req, rc);
}

int storage_archive_query(storage_t *st, const storage_target_t *t, const char *username,
                          const storage_archive_query_t *q, storage_archive_cb cb, void *ud)
{
    if (q == NULL || q->max > STORAGE_ARCHIVE_PAGE_MAX ||
        (q->with != NULL && !text_ok(q->with, STORAGE_JID_MAX)) ||
        (q->after_id != NULL && !text_ok(q->after_id, STORAGE_ARCHIVE_ID_MAX)) ||
        !opt_text_ok(q->before_id, STORAGE_ARCHIVE_ID_MAX))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_ARCHIVE_QUERY, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.archive = cb;
    req->num = q->start_ms;
    req->num2 = q->end_ms;
    req->limit = q->max;
    req->limit_bytes = q->max_bytes;
    rc = dup_opt(q->with, &req->msg.with);
    if (rc == 0)
        rc = dup_opt(q->after_id, &req->msg.id);
    if (rc == 0)
        rc = dup_opt(q->before_id, &req->name);
    return submit_or_drop(st, req, rc);
}

int storage_archive_prefs_get(storage_t *st, const storage_target_t *t, const char *username,
                              storage_archive_prefs_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_ARCHIVE_PREFS_GET, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.prefs = cb;
    return submit(st, req);
}

/* A checked copy of a JID list into *dst. */
static int strv_copy(char ***dst, size_t *dst_n, char *const *src, size_t n, size_t max_n)
{
    *dst = NULL;
    *dst_n = 0;
    if (n > max_n || (n > 0 && src == NULL))
        return HEARTH_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!text_ok(src[i], STORAGE_JID_MAX))
            return HEARTH_EINVAL;
    }
    if (n == 0)
        return 0;
    if ((*dst = calloc(n, sizeof(**dst))) == NULL)
        return HEARTH_ENOMEM;
    *dst_n = n; /* NULLs until filled: clearing is safe */
    for (size_t i = 0; i < n; i++) {
        if (((*dst)[i] = strdup(src[i])) == NULL)
            return HEARTH_ENOMEM;
    }
    return 0;
}

int storage_archive_prefs_set(storage_t *st, const storage_target_t *t, const char *username,
                              const storage_archive_prefs_t *prefs, storage_status_cb cb, void *ud)
{
    if (prefs == NULL || prefs->default_mode < STORAGE_ARCHIVE_ALWAYS ||
        prefs->default_mode > STORAGE_ARCHIVE_ROSTER ||
        prefs->nalways > STORAGE_ARCHIVE_PREFS_MAX || prefs->nnever > STORAGE_ARCHIVE_PREFS_MAX)
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_ARCHIVE_PREFS_SET, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->prefs.stored = 1;
    req->prefs.default_mode = prefs->default_mode;
    rc = strv_copy(&req->prefs.always, &req->prefs.nalways, prefs->always, prefs->nalways,
                   STORAGE_ARCHIVE_PREFS_MAX);
    if (rc == 0)
        rc = strv_copy(&req->prefs.never, &req->prefs.nnever, prefs->never, prefs->nnever,
                       STORAGE_ARCHIVE_PREFS_MAX);
    return submit_or_drop(st, req, rc);
}

int storage_archive_key_parse(const char *id, int64_t *key)
{
    size_t n = strspn(id, "0123456789");
    if (n == 0 || n > 19 || id[n] != '\0' || (id[0] == '0' && n > 1))
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (uint64_t)(id[i] - '0');
    if (v > (uint64_t)INT64_MAX)
        return -1; /* 19 digits pass it from 9,223,372,036,854,775,808 */
    *key = (int64_t)v;
    return 0;
}

int storage_archive_purge(storage_t *st, const storage_target_t *t, int64_t before_ms,
                          storage_status_cb cb, void *ud)
{
    if (!target_ok(st, t, (const void *)cb))
        return HEARTH_EINVAL;
    storage_req_t *req = req_new(STORAGE_OP_ARCHIVE_PURGE, t, ud);
    if (req == NULL)
        return HEARTH_ENOMEM;
    req->cb.status = cb;
    req->num = before_ms;
    return submit(st, req);
}

/* ---- documents and logs (migration 3) ---- */

/* A request naming (kind, key) (key NULL: kind only); *out on 0. */
static int kind_req(storage_t *st, const storage_target_t *t, const void *cb, storage_op_t op,
                    const char *kind, const char *key, int with_key, void *ud, storage_req_t **out)
{
    *out = NULL;
    if (!target_ok(st, t, cb) || !text_ok(kind, STORAGE_KIND_MAX) ||
        (with_key && (key == NULL || !opt_text_ok(key, STORAGE_JID_MAX))))
        return HEARTH_EINVAL;
    storage_req_t *req = req_new(op, t, ud);
    if (req == NULL)
        return HEARTH_ENOMEM;
    int rc = dup_opt(kind, &req->name);
    if (rc == 0 && with_key)
        rc = dup_opt(key, &req->item.jid);
    if (rc != 0) {
        storage_req_discard(req);
        return rc;
    }
    *out = req;
    return 0;
}

static bool xml_ok(const char *xml)
{
    return xml != NULL && opt_text_ok(xml, STORAGE_XML_MAX);
}

int storage_doc_put(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                    const char *xml, storage_status_cb cb, void *ud)
{
    if (!xml_ok(xml))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = kind_req(st, t, (const void *)cb, STORAGE_OP_DOC_PUT, kind, key, 1, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    return submit_or_drop(st, req, dup_opt(xml, &req->blob));
}

int storage_doc_get(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                    storage_blob_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = kind_req(st, t, (const void *)cb, STORAGE_OP_DOC_GET, kind, key, 1, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.blob = cb;
    return submit(st, req);
}

int storage_doc_delete(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                       storage_status_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = kind_req(st, t, (const void *)cb, STORAGE_OP_DOC_DELETE, kind, key, 1, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    return submit(st, req);
}

int storage_doc_list(storage_t *st, const storage_target_t *t, const char *kind,
                     storage_doc_list_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = kind_req(st, t, (const void *)cb, STORAGE_OP_DOC_LIST, kind, NULL, 0, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.docs = cb;
    return submit(st, req);
}

/* ---- room affiliations (migration 4) ---- */

static int muc_req(storage_t *st, const storage_target_t *t, const void *cb, storage_op_t op,
                   const char *jid, void *ud, storage_req_t **out)
{
    *out = NULL;
    if (!target_ok(st, t, cb) || jid == NULL || !text_ok(jid, STORAGE_JID_MAX))
        return HEARTH_EINVAL;
    storage_req_t *req = req_new(op, t, ud);
    if (req == NULL)
        return HEARTH_ENOMEM;
    int rc = dup_opt(jid, &req->item.jid);
    if (rc != 0) {
        storage_req_discard(req);
        return rc;
    }
    *out = req;
    return 0;
}

static int muc_aff_dup(const storage_muc_aff_t *a, storage_muc_aff_t *d)
{
    if (a->jid == NULL || !text_ok(a->jid, STORAGE_JID_MAX) || a->affiliation == NULL ||
        !text_ok(a->affiliation, STORAGE_NAME_MAX) ||
        (a->nick != NULL && !opt_text_ok(a->nick, STORAGE_JID_MAX)) ||
        (a->reason != NULL && !opt_text_ok(a->reason, STORAGE_VALUE_MAX)) ||
        (a->account != NULL && !name_ok(a->account)))
        return HEARTH_EINVAL;
    int rc = dup_opt(a->jid, &d->jid);
    rc = rc ?: dup_opt(a->affiliation, &d->affiliation);
    rc = rc ?: dup_opt(a->nick, &d->nick);
    rc = rc ?: dup_opt(a->reason, &d->reason);
    return rc ?: dup_opt(a->account, &d->account);
}

int storage_muc_affs_put(storage_t *st, const storage_target_t *t, const char *room,
                         const storage_muc_aff_t *affs, size_t n, storage_status_cb cb, void *ud)
{
    if (n > STORAGE_MUC_AFFS_MAX || (n && affs == NULL))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = muc_req(st, t, (const void *)cb, STORAGE_OP_MUC_AFFS_PUT, room, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    if (n && !(req->affs = calloc(n, sizeof(*req->affs))))
        rc = HEARTH_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++, req->affs_n++)
        rc = muc_aff_dup(&affs[i], &req->affs[i]);
    return submit_or_drop(st, req, rc);
}

int storage_muc_affs_get(storage_t *st, const storage_target_t *t, const char *room,
                         storage_muc_affs_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = muc_req(st, t, (const void *)cb, STORAGE_OP_MUC_AFFS_GET, room, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.affs = cb;
    return submit(st, req);
}

int storage_muc_owned_count(storage_t *st, const storage_target_t *t, const char *jid,
                            storage_count_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = muc_req(st, t, (const void *)cb, STORAGE_OP_MUC_OWNED, jid, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.count = cb;
    return submit(st, req);
}

/* ---- publish-subscribe (migration 5) ---- */

/* A request naming (service, node) (node NULL: the service only); *out on 0. */
static int pubsub_req(storage_t *st, const storage_target_t *t, const void *cb, storage_op_t op,
                      const char *service, const char *node, void *ud, storage_req_t **out)
{
    *out = NULL;
    if (!target_ok(st, t, cb) || !text_ok(service, STORAGE_JID_MAX) ||
        (node != NULL && !text_ok(node, STORAGE_NAME_MAX)))
        return HEARTH_EINVAL;
    storage_req_t *req = req_new(op, t, ud);
    if (req == NULL)
        return HEARTH_ENOMEM;
    int rc = dup_opt(service, &req->ps.service);
    rc = rc ?: dup_opt(node, &req->ps.node);
    if (rc != 0) {
        storage_req_discard(req);
        return rc;
    }
    *out = req;
    return 0;
}

int storage_pubsub_load(storage_t *st, const storage_target_t *t, const char *service,
                        size_t inline_max, storage_pubsub_load_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = pubsub_req(st, t, (const void *)cb, STORAGE_OP_PUBSUB_LOAD, service, NULL, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.pubsub_load = cb;
    req->ps.inline_max = inline_max;
    return submit(st, req);
}

int storage_pubsub_node_put(storage_t *st, const storage_target_t *t, const char *service,
                            const char *account, const char *node, const char *config, size_t keep,
                            storage_status_cb cb, void *ud)
{
    if (node == NULL || !xml_ok(config) || (account != NULL && !name_ok(account)))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc =
        pubsub_req(st, t, (const void *)cb, STORAGE_OP_PUBSUB_NODE_PUT, service, node, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->ps.keep = keep;
    rc = dup_opt(account, &req->ps.account);
    return submit_or_drop(st, req, rc ?: dup_opt(config, &req->ps.config));
}

static int pubsub_node_op(storage_t *st, const storage_target_t *t, storage_op_t op,
                          const char *service, const char *node, const char *id,
                          storage_status_cb cb, void *ud)
{
    if (node == NULL || (op == STORAGE_OP_PUBSUB_RETRACT && !text_ok(id, STORAGE_JID_MAX)))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = pubsub_req(st, t, (const void *)cb, op, service, node, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    return submit_or_drop(st, req, dup_opt(id, &req->ps.item.id));
}

int storage_pubsub_node_delete(storage_t *st, const storage_target_t *t, const char *service,
                               const char *node, storage_status_cb cb, void *ud)
{
    return pubsub_node_op(st, t, STORAGE_OP_PUBSUB_NODE_DELETE, service, node, NULL, cb, ud);
}

int storage_pubsub_retract(storage_t *st, const storage_target_t *t, const char *service,
                           const char *node, const char *id, storage_status_cb cb, void *ud)
{
    return pubsub_node_op(st, t, STORAGE_OP_PUBSUB_RETRACT, service, node, id, cb, ud);
}

int storage_pubsub_purge(storage_t *st, const storage_target_t *t, const char *service,
                         const char *node, storage_status_cb cb, void *ud)
{
    return pubsub_node_op(st, t, STORAGE_OP_PUBSUB_PURGE, service, node, NULL, cb, ud);
}

int storage_pubsub_publish(storage_t *st, const storage_target_t *t, const char *service,
                           const char *account, const char *node, const char *config,
                           const storage_pubsub_item_t *item, size_t keep, storage_status_cb cb,
                           void *ud)
{
    if (node == NULL || item == NULL || !text_ok(item->id, STORAGE_JID_MAX) ||
        !text_ok(item->publisher, STORAGE_JID_MAX) || !xml_ok(item->payload) ||
        (config != NULL && !xml_ok(config)) || (account != NULL && !name_ok(account)) || keep == 0)
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc =
        pubsub_req(st, t, (const void *)cb, STORAGE_OP_PUBSUB_PUBLISH, service, node, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->ps.keep = keep;
    req->ps.item.stamp_ms = item->stamp_ms;
    req->ps.item.size = strlen(item->payload);
    rc = dup_opt(account, &req->ps.account);
    rc = rc ?: dup_opt(config, &req->ps.config);
    rc = rc ?: dup_opt(item->id, &req->ps.item.id);
    rc = rc ?: dup_opt(item->publisher, &req->ps.item.publisher);
    return submit_or_drop(st, req, rc ?: dup_opt(item->payload, &req->ps.item.payload));
}

int storage_pubsub_items(storage_t *st, const storage_target_t *t, const char *service,
                         const char *node, const char *const *ids, size_t nids, size_t max,
                         storage_pubsub_items_cb cb, void *ud)
{
    if (node == NULL || nids > STORAGE_PUBSUB_IDS_MAX || (nids > 0 && ids == NULL))
        return HEARTH_EINVAL;
    for (size_t i = 0; i < nids; i++)
        if (!text_ok(ids[i], STORAGE_JID_MAX))
            return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = pubsub_req(st, t, (const void *)cb, STORAGE_OP_PUBSUB_ITEMS, service, node, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.pubsub_items = cb;
    req->ps.max = max;
    if (nids > 0 && (req->ps.ids = calloc(nids, sizeof(*req->ps.ids))) == NULL)
        rc = HEARTH_ENOMEM;
    for (size_t i = 0; rc == 0 && i < nids; i++, req->ps.nids++)
        rc = dup_opt(ids[i], &req->ps.ids[i]);
    return submit_or_drop(st, req, rc);
}

int storage_pubsub_affs_set(storage_t *st, const storage_target_t *t, const char *service,
                            const storage_pubsub_aff_t *changes, size_t n, storage_status_cb cb,
                            void *ud)
{
    if (n > STORAGE_PUBSUB_IDS_MAX || (n > 0 && changes == NULL))
        return HEARTH_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const storage_pubsub_aff_t *a = &changes[i];
        if (!text_ok(a->node, STORAGE_NAME_MAX) || !text_ok(a->jid, STORAGE_JID_MAX) ||
            (a->affiliation != NULL && !text_ok(a->affiliation, STORAGE_NAME_MAX)) ||
            (a->account != NULL && !name_ok(a->account)))
            return HEARTH_EINVAL;
    }
    storage_req_t *req;
    int rc =
        pubsub_req(st, t, (const void *)cb, STORAGE_OP_PUBSUB_AFFS_SET, service, NULL, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    if (n > 0 && (req->ps.affs = calloc(n, sizeof(*req->ps.affs))) == NULL)
        rc = HEARTH_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++, req->ps.naffs++) {
        rc = dup_opt(changes[i].node, &req->ps.affs[i].node);
        rc = rc ?: dup_opt(changes[i].jid, &req->ps.affs[i].jid);
        rc = rc ?: dup_opt(changes[i].affiliation, &req->ps.affs[i].affiliation);
        rc = rc ?: dup_opt(changes[i].account, &req->ps.affs[i].account);
    }
    return submit_or_drop(st, req, rc);
}

int storage_log_append(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                       int64_t stamp_ms, const char *xml, storage_status_cb cb, void *ud)
{
    if (!xml_ok(xml))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = kind_req(st, t, (const void *)cb, STORAGE_OP_LOG_APPEND, kind, key, 1, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->num = stamp_ms;
    return submit_or_drop(st, req, dup_opt(xml, &req->blob));
}

int storage_log_fetch(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                      int64_t since_ms, size_t max, storage_log_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = kind_req(st, t, (const void *)cb, STORAGE_OP_LOG_FETCH, kind, key, 1, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.log = cb;
    req->num = since_ms;
    req->limit = max;
    return submit(st, req);
}

int storage_log_delete(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                       storage_status_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = kind_req(st, t, (const void *)cb, STORAGE_OP_LOG_DELETE, kind, key, 1, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    return submit(st, req);
}

static int archive_last(storage_t *st, const storage_target_t *t, storage__key_cb cb, void *ud)
{
    if (!target_ok(st, t, (const void *)cb))
        return HEARTH_EINVAL;
    storage_req_t *req = req_new(STORAGE_OP_ARCHIVE_LAST, t, ud);
    if (req == NULL)
        return HEARTH_ENOMEM;
    req->cb.key = cb;
    return submit(st, req);
}

static int count(storage_t *st, const storage_target_t *t, const char *what, storage__key_cb cb,
                 void *ud)
{
    if (!target_ok(st, t, (const void *)cb) || !what ||
        (strcmp(what, "offline") && strcmp(what, "archive")))
        return HEARTH_EINVAL;
    storage_req_t *req = req_new(STORAGE_OP_COUNT, t, ud);
    if (req == NULL)
        return HEARTH_ENOMEM;
    req->cb.key = cb;
    if (!(req->name = strdup(what))) {
        storage_req_discard(req);
        return HEARTH_ENOMEM;
    }
    return submit(st, req);
}

int storage_log_append_entry(storage_t *st, const storage_target_t *t, const char *kind,
                             const char *key, const storage_log_entry_t *e, storage_status_cb cb,
                             void *ud)
{
    if (e == NULL || !xml_ok(e->xml) || !text_ok(e->ref, STORAGE_ARCHIVE_ID_MAX) ||
        (e->author != NULL && !text_ok(e->author, STORAGE_JID_MAX)) ||
        (e->origin != NULL && !text_ok(e->origin, STORAGE_JID_MAX)))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = kind_req(st, t, (const void *)cb, STORAGE_OP_LOG_APPEND_ENTRY, kind, key, 1, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    req->num = e->stamp_ms;
    rc = dup_opt(e->xml, &req->blob);
    rc = rc ?: dup_opt(e->ref, &req->lg.ref);
    rc = rc ?: dup_opt(e->author, &req->lg.author);
    return submit_or_drop(st, req, rc ?: dup_opt(e->origin, &req->lg.origin));
}

int storage_log_query(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                      const storage_log_query_t *q, storage_log_page_cb cb, void *ud)
{
    if (q == NULL || q->max > STORAGE_ARCHIVE_PAGE_MAX ||
        (q->author != NULL && !text_ok(q->author, STORAGE_JID_MAX)) ||
        (q->origin != NULL && !text_ok(q->origin, STORAGE_JID_MAX)) ||
        (q->after_ref != NULL && !text_ok(q->after_ref, STORAGE_ARCHIVE_ID_MAX)) ||
        (q->before_ref != NULL && !opt_text_ok(q->before_ref, STORAGE_ARCHIVE_ID_MAX)))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = kind_req(st, t, (const void *)cb, STORAGE_OP_LOG_QUERY, kind, key, 1, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.log_page = cb;
    req->num = q->start_ms;
    req->num2 = q->end_ms;
    req->limit = q->max;
    req->limit_bytes = q->max_bytes;
    rc = dup_opt(q->author, &req->lg.author);
    rc = rc ?: dup_opt(q->origin, &req->lg.origin);
    rc = rc ?: dup_opt(q->after_ref, &req->lg.after);
    return submit_or_drop(st, req, rc ?: dup_opt(q->before_ref, &req->lg.before));
}

int storage_log_get(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                    const char *ref, storage_log_cb cb, void *ud)
{
    if (!text_ok(ref, STORAGE_ARCHIVE_ID_MAX))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = kind_req(st, t, (const void *)cb, STORAGE_OP_LOG_GET, kind, key, 1, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.log = cb;
    return submit_or_drop(st, req, dup_opt(ref, &req->lg.ref));
}

int storage_log_replace(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                        const char *ref, const char *xml, storage_status_cb cb, void *ud)
{
    if (!text_ok(ref, STORAGE_ARCHIVE_ID_MAX) || !xml_ok(xml))
        return HEARTH_EINVAL;
    storage_req_t *req;
    int rc = kind_req(st, t, (const void *)cb, STORAGE_OP_LOG_REPLACE, kind, key, 1, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.status = cb;
    rc = dup_opt(xml, &req->blob);
    return submit_or_drop(st, req, rc ?: dup_opt(ref, &req->lg.ref));
}

static int offline_count(storage_t *st, const storage_target_t *t, const char *username,
                         storage__count_cb cb, void *ud)
{
    storage_req_t *req;
    int rc = user_req(st, t, (const void *)cb, STORAGE_OP_OFFLINE_COUNT, username, ud, &req);
    if (rc != 0)
        return rc;
    req->cb.count = cb;
    return submit(st, req);
}

/* ---- blocking wrappers ---- */

/* One blocking call: the storage thread posts the request here, the caller finishes it. */
typedef struct sync_call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    storage_req_t *done;
    int err;
    /* results, filled by the typed callbacks on the calling thread */
    storage_account_t *acct;
    storage_account_t *list;
    size_t list_n;
    char *value;
    storage_user_t *user;
    size_t count;
    int64_t key;
    storage_offline_msg_t *msgs; /* moved out of the request */
    storage_doc_t *docs;         /* moved out of the request */
} sync_call_t;

static void sync_init(sync_call_t *c)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
}

static void sync_post(void *post_ud, storage_req_t *req)
{
    sync_call_t *c = post_ud;
    pthread_mutex_lock(&c->mu);
    c->done = req;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* rc: what the submission returned. Waits, finishes the request here, returns its error. */
static int sync_wait(sync_call_t *c, int rc)
{
    if (rc == 0) {
        pthread_mutex_lock(&c->mu);
        while (c->done == NULL)
            pthread_cond_wait(&c->cv, &c->mu);
        pthread_mutex_unlock(&c->mu);
        storage_req_finish(c->done);
        rc = c->err;
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    return rc;
}

static void sync_status_cb(void *ud, int err)
{
    sync_call_t *c = ud;
    c->err = err;
}

static int account_copy(storage_account_t *dst, const storage_account_t *src)
{
    *dst = *src;
    dst->username = strdup(src->username);
    return dst->username != NULL ? 0 : HEARTH_ENOMEM;
}

static void sync_account_cb(void *ud, int err, const storage_account_t *acct)
{
    sync_call_t *c = ud;
    c->err = err;
    if (err == 0)
        c->err = account_copy(c->acct, acct);
}

static void sync_list_cb(void *ud, int err, const storage_account_t *accts, size_t n)
{
    sync_call_t *c = ud;
    c->err = err;
    if (err != 0 || n == 0)
        return;
    c->list = calloc(n, sizeof(*c->list));
    if (c->list == NULL) {
        c->err = HEARTH_ENOMEM;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (account_copy(&c->list[i], &accts[i]) != 0) {
            for (size_t j = 0; j < i; j++)
                storage_account_clear(&c->list[j]);
            free(c->list);
            c->list = NULL;
            c->err = HEARTH_ENOMEM;
            return;
        }
    }
    c->list_n = n;
}

static void sync_property_cb(void *ud, int err, const char *value)
{
    sync_call_t *c = ud;
    c->err = err;
    if (err == 0) {
        c->value = strdup(value);
        if (c->value == NULL)
            c->err = HEARTH_ENOMEM;
    }
}

/* Moves the result out of the request being finished (this call owns it) instead of copying. */
static void sync_user_cb(void *ud, int err, const storage_user_t *user)
{
    sync_call_t *c = ud;
    c->err = err;
    if (err == 0 && user == &c->done->user) {
        *c->user = c->done->user;
        memset(&c->done->user, 0, sizeof(c->done->user));
    }
}

static void sync_count_cb(void *ud, int err, size_t n)
{
    sync_call_t *c = ud;
    c->err = err;
    c->count = n;
}

static void sync_key_cb(void *ud, int err, int64_t key)
{
    sync_call_t *c = ud;
    c->err = err;
    c->key = key;
}

#define SYNC_TARGET(c) (&(storage_target_t){.post = sync_post, .post_ud = (c)})

int storage_sync_account_get(storage_t *st, const char *username, storage_account_t *out)
{
    sync_call_t c;
    memset(out, 0, sizeof(*out));
    sync_init(&c);
    c.acct = out;
    return sync_wait(&c, storage_account_get(st, SYNC_TARGET(&c), username, sync_account_cb, &c));
}

int storage_sync_account_create(storage_t *st, const storage_account_t *acct)
{
    sync_call_t c;
    sync_init(&c);
    return sync_wait(&c, storage_account_create(st, SYNC_TARGET(&c), acct, sync_status_cb, &c));
}

int storage_sync_account_set_secrets(storage_t *st, const char *username,
                                     const hearth_scram_secret_t *sha1,
                                     const hearth_scram_secret_t *sha256)
{
    sync_call_t c;
    sync_init(&c);
    return sync_wait(&c, storage_account_set_secrets(st, SYNC_TARGET(&c), username, sha1, sha256,
                                                     sync_status_cb, &c));
}

int storage_sync_account_set_admin(storage_t *st, const char *username, int admin)
{
    sync_call_t c;
    sync_init(&c);
    return sync_wait(
        &c, storage_account_set_admin(st, SYNC_TARGET(&c), username, admin, sync_status_cb, &c));
}

int storage_sync_account_delete(storage_t *st, const char *username)
{
    sync_call_t c;
    sync_init(&c);
    return sync_wait(&c, storage_account_delete(st, SYNC_TARGET(&c), username, sync_status_cb, &c));
}

int storage_sync_account_list(storage_t *st, storage_account_t **out, size_t *n)
{
    sync_call_t c;
    *out = NULL;
    *n = 0;
    sync_init(&c);
    int rc = sync_wait(&c, storage_account_list(st, SYNC_TARGET(&c), sync_list_cb, &c));
    if (rc == 0) {
        *out = c.list;
        *n = c.list_n;
    }
    return rc;
}

int storage_sync_property_get(storage_t *st, const char *name, char **value)
{
    sync_call_t c;
    *value = NULL;
    sync_init(&c);
    int rc = sync_wait(&c, storage_property_get(st, SYNC_TARGET(&c), name, sync_property_cb, &c));
    if (rc == 0)
        *value = c.value;
    return rc;
}

int storage_sync_count(storage_t *st, const char *what, int64_t *n)
{
    sync_call_t c;
    *n = 0;
    sync_init(&c);
    int rc = sync_wait(&c, count(st, SYNC_TARGET(&c), what, sync_key_cb, &c));
    if (rc == 0)
        *n = c.key;
    return rc;
}

int storage_sync_property_set(storage_t *st, const char *name, const char *value)
{
    sync_call_t c;
    sync_init(&c);
    return sync_wait(&c,
                     storage_property_set(st, SYNC_TARGET(&c), name, value, sync_status_cb, &c));
}

int storage_sync_archive_last(storage_t *st, int64_t *key)
{
    sync_call_t c;
    *key = 0;
    sync_init(&c);
    int rc = sync_wait(&c, archive_last(st, SYNC_TARGET(&c), sync_key_cb, &c));
    if (rc == 0)
        *key = c.key;
    return rc;
}

int storage_sync_offline_count(storage_t *st, const char *username, size_t *n)
{
    sync_call_t c;
    *n = 0;
    sync_init(&c);
    int rc = sync_wait(&c, offline_count(st, SYNC_TARGET(&c), username, sync_count_cb, &c));
    if (rc == 0)
        *n = c.count;
    return rc;
}

int storage_sync_user_load(storage_t *st, const char *username, storage_user_t *out)
{
    sync_call_t c;
    memset(out, 0, sizeof(*out));
    sync_init(&c);
    c.user = out;
    return sync_wait(&c, storage_user_load(st, SYNC_TARGET(&c), username, sync_user_cb, &c));
}

static void sync_blob_cb(void *ud, int err, const char *xml)
{
    sync_call_t *c = ud;
    c->err = err;
    if (err == 0 && xml != NULL && (c->value = strdup(xml)) == NULL)
        c->err = HEARTH_ENOMEM;
}

/* Moves the messages out of the request being finished, as sync_user_cb does. */
static void sync_offline_cb(void *ud, int err, const storage_offline_msg_t *msgs, size_t n)
{
    sync_call_t *c = ud;
    c->err = err;
    if (err == 0 && msgs == c->done->msgs) {
        c->msgs = c->done->msgs;
        c->count = n;
        c->done->msgs = NULL;
        c->done->msgs_n = 0;
    }
}

static void sync_docs_cb(void *ud, int err, const storage_doc_t *docs, size_t n)
{
    sync_call_t *c = ud;
    c->err = err;
    if (err == 0 && docs == c->done->docs) {
        c->docs = c->done->docs;
        c->count = n;
        c->done->docs = NULL;
        c->done->docs_n = 0;
    }
}

int storage_sync_roster_put(storage_t *st, const char *username, const storage_roster_item_t *item,
                            int64_t ver)
{
    sync_call_t c;
    sync_init(&c);
    return sync_wait(
        &c, storage_roster_put(st, SYNC_TARGET(&c), username, item, ver, sync_status_cb, &c));
}

int storage_sync_request_put(storage_t *st, const char *username, const char *jid,
                             const char *stanza)
{
    sync_call_t c;
    sync_init(&c);
    return sync_wait(
        &c, storage_request_put(st, SYNC_TARGET(&c), username, jid, stanza, sync_status_cb, &c));
}

int storage_sync_offline_store(storage_t *st, const char *username, const char *stanza, size_t len,
                               int64_t stamp_ms, unsigned quota)
{
    sync_call_t c;
    sync_init(&c);
    return sync_wait(&c, storage_offline_store(st, SYNC_TARGET(&c), username, stanza, len, stamp_ms,
                                               quota, sync_status_cb, &c));
}

int storage_sync_offline_fetch(storage_t *st, const char *username, storage_offline_msg_t **msgs,
                               size_t *n)
{
    sync_call_t c;
    *msgs = NULL;
    *n = 0;
    sync_init(&c);
    int rc =
        sync_wait(&c, storage_offline_fetch(st, SYNC_TARGET(&c), username, sync_offline_cb, &c));
    if (rc == 0) {
        *msgs = c.msgs;
        *n = c.count;
    } else {
        storage_sync_offline_free(c.msgs, c.count);
    }
    return rc;
}

void storage_sync_offline_free(storage_offline_msg_t *msgs, size_t n)
{
    for (size_t i = 0; i < n && msgs != NULL; i++)
        free(msgs[i].stanza);
    free(msgs);
}

int storage_sync_vcard_get(storage_t *st, const char *username, char **xml)
{
    sync_call_t c;
    *xml = NULL;
    sync_init(&c);
    int rc = sync_wait(&c, storage_vcard_get(st, SYNC_TARGET(&c), username, sync_blob_cb, &c));
    if (rc == 0)
        *xml = c.value;
    else
        free(c.value);
    return rc;
}

int storage_sync_vcard_set(storage_t *st, const char *username, const char *xml)
{
    sync_call_t c;
    sync_init(&c);
    return sync_wait(&c, storage_vcard_set(st, SYNC_TARGET(&c), username, xml, sync_status_cb, &c));
}

int storage_sync_private_set(storage_t *st, const char *username, const char *ns, const char *xml)
{
    sync_call_t c;
    sync_init(&c);
    return sync_wait(
        &c, storage_private_set(st, SYNC_TARGET(&c), username, ns, xml, 0, sync_status_cb, &c));
}

int storage_sync_private_list(storage_t *st, const char *username, storage_doc_t **docs, size_t *n)
{
    sync_call_t c;
    *docs = NULL;
    *n = 0;
    sync_init(&c);
    int rc = sync_wait(&c, storage_private_list(st, SYNC_TARGET(&c), username, sync_docs_cb, &c));
    if (rc == 0) {
        *docs = c.docs;
        *n = c.count;
    } else {
        storage_sync_docs_free(c.docs, c.count);
    }
    return rc;
}

void storage_sync_docs_free(storage_doc_t *docs, size_t n)
{
    for (size_t i = 0; i < n && docs != NULL; i++) {
        free(docs[i].key);
        free(docs[i].xml);
    }
    free(docs);
}
