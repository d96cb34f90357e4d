/* Per-user state on its home worker: loaded from storage once (roster, pending subscription
 * requests, block list, last activity) while work for the user waits in order; freed when no
 * session and no work holds it. Also the small helpers the IM modules share. */
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core/log.h"
#include "modules/im.h"

int64_t user__now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

int user__sub_from(const storage_roster_item_t *it)
{
    return it && (it->subscription == STORAGE_SUB_FROM || it->subscription == STORAGE_SUB_BOTH);
}

int user__sub_to(const storage_roster_item_t *it)
{
    return it && (it->subscription == STORAGE_SUB_TO || it->subscription == STORAGE_SUB_BOTH);
}

void user__free(user_t *u)
{
    if (!u)
        return;
    if (u->roster.buckets) {
        STRMAP_FOREACH(&u->roster, e)
        {
            roster__item_free(e->value);
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
    mam__user_free(u);
    free(u->last_status);
    free(u->bare);
    free(u->node);
    free(u);
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
        op->fn(w, u, op->arg);
        free(op);
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
    } else if (!su->exists) {
        u->state = USER_MISSING;
    } else {
        u->state = USER_READY;
        u->roster_ver = su->roster_ver;
        u->roster_deleted_ver = su->roster_deleted_ver;
        for (size_t i = 0; i < su->nitems; i++) {
            const storage_roster_item_t *src = &su->items[i];
            storage_roster_item_t *it = roster__item_new(src->jid);
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
            strmap_put(&u->roster, it->jid, it);
        }
        for (size_t i = 0; i < su->nrequests; i++) {
            char *st = strdup(su->requests[i].stanza);
            if (st)
                strmap_put(&u->requests, su->requests[i].jid, st);
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

/* Out of memory before fn could wait for u: fn still runs, now, with a user whose state could
 * not be had, so the work fails with an error to whoever asked and releases what arg holds. */
static void acquire_failed(worker_t *w, const char *bare, user_fn fn, void *arg)
{
    hlog(LOG_ERROR, "out of memory for %s", bare);
    user_t failed = {.bare = (char *)bare, .node = (char *)"", .state = USER_FAILED};
    fn(w, &failed, arg);
}

void user__acquire(worker_t *w, const char *bare, user_fn fn, void *arg)
{
    user_t *u = worker__user(w, bare, 1);
    if (!u) {
        acquire_failed(w, bare, fn, arg);
        return;
    }
    if (u->state == USER_READY || u->state == USER_MISSING) {
        u->refs++;
        fn(w, u, arg);
        user__release(w, u);
        return;
    }
    user_op_t *op = calloc(1, sizeof(*op));
    if (!op) {
        worker__user_drop_if_empty(w, u);
        acquire_failed(w, bare, fn, arg);
        return;
    }
    op->fn = fn;
    op->arg = arg;
    if (u->ops_tail)
        u->ops_tail->next = op;
    else
        u->ops_head = op;
    u->ops_tail = op;
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

/* ---- shared helpers ---- */

void im__random_id(char *out, size_t len)
{
    unsigned char r[12];
    static const char hex[] = "0123456789abcdef";
    uv_random(NULL, NULL, r, sizeof(r), 0, NULL);
    size_t k = 0;
    for (size_t i = 0; i < sizeof(r) && k + 2 < len; i++) {
        out[k++] = hex[r[i] >> 4];
        out[k++] = hex[r[i] & 15];
    }
    out[k] = '\0';
}

hearth_bytes_t *im__unavailable(const char *full)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<presence type='unavailable' from='");
    rc = rc ?: hearth_buf_append_escaped(&b, full, strlen(full));
    rc = rc ?: hearth_buf_append_str(&b, "'/>");
    hearth_bytes_t *bytes = rc ? NULL : hearth_bytes_new(b.data, b.len);
    hearth_buf_free(&b);
    return bytes;
}

typedef struct parse_ctx {
    stanza_fn fn;
    void *ud;
} parse_ctx_t;

static void parsed(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    parse_ctx_t *p = ud;
    p->fn(p->ud, st, arena);
}

void im__parse(const char *bytes, size_t len, stanza_fn fn, void *ud)
{
    static const char head[] = "<stream:stream xmlns='jabber:client' "
                               "xmlns:stream='http://etherx.jabber.org/streams'>";
    parse_ctx_t p = {fn, ud};
    hearth_xml_stream_cbs_t cbs = {.stanza = parsed};
    hearth_xml_limits_t lim = HEARTH_XML_LIMITS_DEFAULT;
    lim.max_stanza_bytes = len + 1024;
    hearth_xml_stream_t *x = hearth_xml_stream_new(&cbs, &p, &lim);
    if (!x)
        return;
    (void)hearth_xml_stream_feed(x, head, sizeof(head) - 1);
    (void)hearth_xml_stream_feed(x, bytes, len);
    hearth_xml_stream_free(x);
}

void im__send_addressed(conn_t *c, const hearth_bytes_t *b, const char *to)
{
    if (!to) {
        conn__send_stanza(c, b->data, b->len);
        return;
    }
    /* Our serialiser writes "<name" then the attributes: the address goes right after the name. */
    size_t n = 1;
    while (n < b->len && b->data[n] != ' ' && b->data[n] != '>' && b->data[n] != '/')
        n++;
    hearth_buf_t out = HEARTH_BUF_INIT;
    int rc = hearth_buf_append(&out, b->data, n);
    rc = rc ?: hearth_buf_append_str(&out, " to='");
    rc = rc ?: hearth_buf_append_escaped(&out, to, strlen(to));
    rc = rc ?: hearth_buf_append_str(&out, "'");
    rc = rc ?: hearth_buf_append(&out, b->data + n, b->len - n);
    if (!rc)
        conn__send_stanza(c, out.data, out.len);
    hearth_buf_free(&out);
}

/* XEP-0077 §3.2: the account is gone. Its sessions end (so contacts see it go unavailable),
 * its contacts are told the subscriptions ended, and what was loaded is forgotten. */
/* Every worker's rooms in memory drop the grants made to bare (stored rooms lost their
 * affiliation rows with the account, in the same storage call). */
static void forget_in_rooms(worker_t *w, const char *bare)
{
    for (unsigned i = 0; i < w->srv->nworkers; i++) {
        inbox_msg_t *m = calloc(1, sizeof(*m));
        if (!m || !(m->u.route.to = strdup(bare))) {
            free(m);
            hlog(LOG_ERROR, "rooms not told that %s was removed: out of memory", bare);
            continue;
        }
        m->kind = INBOX_MUC_FORGET;
        worker__post(w->srv->workers[i], m);
    }
}

void user__account_deleted(worker_t *w, const char *bare)
{
    forget_in_rooms(w, bare);
    user_t *u = worker__user(w, bare, 0);
    if (!u)
        return;
    user__hold(u);
    for (conn_t *s = u->sessions, *next; s; s = next) {
        next = s->user_next;
        conn__stream_error(s, HEARTH_STREAM_ERR_NOT_AUTHORIZED, "the account was removed");
    }
    STRMAP_FOREACH(&u->roster, e)
    {
        storage_roster_item_t *it = e->value;
        if (user__sub_to(it) || it->ask)
            presence__send_sub(w, u, it->jid, "unsubscribe");
        if (user__sub_from(it))
            presence__send_sub(w, u, it->jid, "unsubscribed");
        strmap_remove(&u->roster, e->key);
        roster__item_free(it);
    }
    STRMAP_FOREACH(&u->requests, e)
    {
        presence__send_sub(w, u, e->key, "unsubscribed");
        free(strmap_remove(&u->requests, e->key));
    }
    STRMAP_FOREACH(&u->blocked, e)
    {
        strmap_remove(&u->blocked, e->key);
    }
    u->roster_ver = u->roster_deleted_ver = 0;
    u->state = USER_MISSING;
    user__release(w, u);
}
