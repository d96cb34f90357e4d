/* Per-user state on its home worker (core/user.h): loaded from storage once (roster, pending
 * subscription requests, block list, last activity) while work for the user waits in order;
 * freed when no session and no work holds it. */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/hooks.h"
#include "core/log.h"
#include "core/strmap.h"
#include "core/user.h"

static int nslots;

int user__slot_new(void)
{
    return nslots < USER_SLOTS ? nslots++ : -1;
}

int64_t user__now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Archive keys (storage.h, "Archive ids"): per thread, the millisecond and a counter in it, never
 * going back, on a generator number of the thread's own. The floor is the largest key stored
 * when the server started: a clock set back across a restart cannot give a key twice. */
typedef struct key_gen {
    int64_t ms;
    int counter;
    int gen; /* -1: not yet numbered */
} key_gen_t;

static _Thread_local key_gen_t key_gen = {.gen = -1};
static atomic_int key_gens;
static _Atomic int64_t key_floor;

void user__archive_key_floor(int64_t key)
{
    atomic_store(&key_floor, key);
}

int64_t user__archive_key(void)
{
    key_gen_t *g = &key_gen;
    if (g->gen < 0) {
        /* Beyond the generator numbers (more threads than a server has), threads share the last
         * one under a lock rather than risk a key twice. */
        int n = atomic_fetch_add(&key_gens, 1);
        g->gen = n < STORAGE_ARCHIVE_GEN_STORAGE - 1 ? n : STORAGE_ARCHIVE_GEN_STORAGE - 1;
        int64_t floor_ms = storage_archive_ms_of_key(atomic_load(&key_floor));
        g->ms = floor_ms;
        g->counter = STORAGE_ARCHIVE_COUNTER_MAX; /* the next key moves to a fresh millisecond */
    }
    static pthread_mutex_t shared = PTHREAD_MUTEX_INITIALIZER;
    static key_gen_t last = {.gen = STORAGE_ARCHIVE_GEN_STORAGE - 1};
    int is_shared = g->gen == STORAGE_ARCHIVE_GEN_STORAGE - 1;
    if (is_shared) {
        pthread_mutex_lock(&shared);
        g = &last;
        if (g->ms == 0) {
            g->ms = storage_archive_ms_of_key(atomic_load(&key_floor));
            g->counter = STORAGE_ARCHIVE_COUNTER_MAX;
        }
    }
    int64_t now = user__now_ms();
    if (now > g->ms) {
        g->ms = now;
        g->counter = 0;
    } else if (g->counter < STORAGE_ARCHIVE_COUNTER_MAX) {
        g->counter++;
    } else {
        g->ms++; /* the millisecond is used up (or the clock went back): borrow the next */
        g->counter = 0;
    }
    int64_t key = storage_archive_key_of_ms(g->ms) |
                  ((int64_t)g->gen << STORAGE_ARCHIVE_GEN_SHIFT) | g->counter;
    if (is_shared)
        pthread_mutex_unlock(&shared);
    return key;
}

void user__archive_id(char *out, size_t len)
{
    snprintf(out, len, "%" PRId64, user__archive_key());
}

/* Ids come from a generator per thread, seeded once from the kernel: SipHash-2-4 keyed with 128
 * random bits over a counter, a pseudo-random function, so an id says nothing of the others
 * without the key. A getrandom system call per id (one per message, for its stanza id) cost
 * more than the rest of making the id. */
typedef struct id_gen {
    uint64_t key[2];
    uint64_t counter;
    int seeded;
} id_gen_t;

static _Thread_local id_gen_t id_gen;

static void id_gen_seed(id_gen_t *g)
{
    if (uv_random(NULL, NULL, g->key, sizeof(g->key), 0, NULL) != 0) {
        /* The kernel's pool is initialised long before a server runs; should it ever fail,
         * ids are still unique from the clock and the thread, if not unpredictable. */
        g->key[0] = uv_hrtime() ^ (uintptr_t)g;
        g->key[1] = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL;
    }
    g->seeded = 1;
}

void user__random_id(char *out, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    id_gen_t *g = &id_gen;
    if (!g->seeded)
        id_gen_seed(g);
    unsigned char r[16];
    for (int half = 0; half < 2; half++) {
        uint64_t in = g->counter++;
        uint64_t v = strmap__siphash(g->key, &in, sizeof(in));
        memcpy(r + 8 * half, &v, 8);
    }
    size_t k = 0;
    for (size_t i = 0; i < 12 && k + 2 < len; i++) {
        out[k++] = hex[r[i] >> 4];
        out[k++] = hex[r[i] & 15];
    }
    out[k] = '\0';
}

int user__sub_from(const storage_roster_item_t *it)
{
    return it && (it->subscription == STORAGE_SUB_FROM || it->subscription == STORAGE_SUB_BOTH);
}

int user__sub_to(const storage_roster_item_t *it)
{
    return it && (it->subscription == STORAGE_SUB_TO || it->subscription == STORAGE_SUB_BOTH);
}

storage_roster_item_t *user__roster_item_new(const char *jid)
{
    storage_roster_item_t *it = calloc(1, sizeof(*it));
    if (!it || !(it->jid = strdup(jid))) {
        free(it);
        return NULL;
    }
    return it;
}

void user__roster_item_free(storage_roster_item_t *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->ngroups; i++)
        free(it->groups[i]);
    free(it->groups);
    free(it->name);
    free(it->jid);
    free(it);
}

void user__free(user_t *u)
{
    if (!u)
        return;
    hook_args_t a = {.u = u};
    hooks__run(HOOK_USER_UNLOADED, &a);
    if (u->roster.buckets) {
        STRMAP_FOREACH(&u->roster, e)
        {
            user__roster_item_free(e->value);
        }
        strmap_free(&u->roster);
    }
    if (u->requests.buckets) {
        STRMAP_FOREACH(&u->requests, e)
        {
            free(e->value);
        }
        strmap_free(&u->requests);
    }
    strmap_free(&u->blocked);
    while (u->ops_head) {
        user_op_t *op = u->ops_head;
        u->ops_head = op->next;
        free(op);
    }
    free(u->last_status);
    free(u->bare);
    free(u->node);
    free(u);
}

hearth_stanza_error_t user__failure(const user_t *u, const char **text)
{
    if (u->storage_failed) {
        *text = "the recipient's account cannot be read now (storage failed); try again later";
        return HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR;
    }
    *text = "the recipient is not available now; try again";
    return HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
}

void user__hold(user_t *u)
{
    u->refs++;
}

void user__release(worker_t *w, user_t *u)
{
    u->refs--;
    worker__user_drop_if_empty(w, u);
}

typedef struct load_ctx {
    worker_t *w;
    char *bare;
} load_ctx_t;

/* The caller holds u: an op may end the last session, which must not free u under us. */
static void run_ops(worker_t *w, user_t *u)
{
    while (u->ops_head) {
        user_op_t *op = u->ops_head;
        u->ops_head = op->next;
        if (!u->ops_head)
            u->ops_tail = NULL;
        u->nops--;
        op->fn(w, u, op->arg);
        free(op);
    }
}

static void load_roster(user_t *u, const storage_user_t *su)
{
    for (size_t i = 0; i < su->nitems; i++) {
        const storage_roster_item_t *src = &su->items[i];
        storage_roster_item_t *it = user__roster_item_new(src->jid);
        if (!it)
            continue;
        it->name = src->name ? strdup(src->name) : NULL;
        it->subscription = src->subscription;
        it->ask = src->ask;
        it->approved = src->approved;
        it->ver = src->ver;
        it->groups = calloc(src->ngroups ? src->ngroups : 1, sizeof(char *));
        for (size_t g = 0; it->groups && g < src->ngroups; g++)
            if ((it->groups[g] = strdup(src->groups[g])))
                it->ngroups++;
        if (strmap_put(&u->roster, it->jid, it))
            user__roster_item_free(it);
    }
}

static void on_loaded(void *ud, int err, const storage_user_t *su)
{
    load_ctx_t *lc = ud;
    worker_t *w = lc->w;
    user_t *u = worker__user(w, lc->bare, 0);
    free(lc->bare);
    free(lc);
    if (!u)
        return;
    if (err) {
        hlog(LOG_ERROR, "loading %s failed: %s", u->bare, hearth_strerror(err));
        u->state = USER_FAILED; /* nothing can be done for it now; the next stanza retries */
        u->storage_failed = err != HEARTH_EAGAIN && err != HEARTH_ENOMEM;
    } else if (!su->exists) {
        u->state = USER_MISSING;
    } else {
        u->state = USER_READY;
        u->roster_ver = su->roster_ver;
        u->roster_deleted_ver = su->roster_deleted_ver;
        load_roster(u, su);
        for (size_t i = 0; i < su->nrequests; i++) {
            char *st = strdup(su->requests[i].stanza);
            if (st && strmap_put(&u->requests, su->requests[i].jid, st))
                free(st);
        }
        for (size_t i = 0; i < su->nblocked; i++)
            strmap_put(&u->blocked, su->blocked[i], (void *)1);
        u->last_logout = su->last_logout;
        u->last_status = su->last_status ? strdup(su->last_status) : NULL;
    }
    u->refs++;
    run_ops(w, u);
    if (err)
        u->state = USER_NEW; /* the next stanza for it loads again */
    user__release(w, u);
}

/* Memory ran out or too much waits before fn could wait for u: fn still runs, now, with a
 * user whose state could not be had, so the work fails with an error to whoever asked and
 * releases what arg holds. */
static void acquire_failed(worker_t *w, const char *bare, user_fn fn, void *arg, const char *why)
{
    hlog(LOG_ERROR, "work for %s refused: %s", bare, why);
    user_t failed = {.bare = (char *)bare, .node = (char *)"", .state = USER_FAILED};
    fn(w, &failed, arg);
}

void user__acquire(worker_t *w, const char *bare, user_fn fn, void *arg)
{
    user_t *u = worker__user(w, bare, 1);
    if (!u) {
        acquire_failed(w, bare, fn, arg, "out of memory");
        return;
    }
    if (u->state == USER_READY || u->state == USER_MISSING) {
        u->refs++;
        fn(w, u, arg);
        user__release(w, u);
        return;
    }
    user_op_t *op = u->nops < USER_OPS_MAX ? calloc(1, sizeof(*op)) : NULL;
    if (!op) {
        const char *why = u->nops < USER_OPS_MAX ? "out of memory" : "too much work waits for it";
        worker__user_drop_if_empty(w, u); /* u may be gone from here */
        acquire_failed(w, bare, fn, arg, why);
        return;
    }
    op->fn = fn;
    op->arg = arg;
    if (u->ops_tail)
        u->ops_tail->next = op;
    else
        u->ops_head = op;
    u->ops_tail = op;
    u->nops++;
    if (u->state != USER_NEW && u->state != USER_FAILED)
        return;
    u->state = USER_LOADING;
    load_ctx_t *lc = calloc(1, sizeof(*lc));
    if (lc && (lc->bare = strdup(bare)) != NULL) {
        lc->w = w;
        if (storage_user_load(w->srv->storage, &w->storage_target, u->node, on_loaded, lc) == 0)
            return;
        free(lc->bare);
    }
    free(lc);
    /* Storage refused the request (queue full) or memory ran out: what waits fails. */
    hlog(LOG_ERROR, "cannot load %s", bare);
    u->state = USER_FAILED;
    u->storage_failed = 0;
    u->refs++;
    run_ops(w, u);
    u->state = USER_NEW;
    user__release(w, u);
}

void user__write_done(void *ud, int err)
{
    if (err)
        hlog(LOG_ERROR, "storage write failed: %s", hearth_strerror(err));
}
