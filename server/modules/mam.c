/* Message Archive Management (XEP-0313, urn:xmpp:mam:2) for user archives: messages with a body
 * are archived on the owner's home worker as they are accepted (incoming, under the stanza id the
 * recipient sees) and sent (outgoing, under a fresh id), as the user's preferences allow; queries
 * page (XEP-0059) through storage_archive_*. Touches only its user's state (MAM_USER(u), the
 * roster). Every archive write, query and preferences change waits for the user's preferences, in
 * order. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/datetime.h"
#include "hearth/form.h"

#include "core/log.h"
#include "modules/im.h"

#define MAM_DEFAULT_MAX 50 /* items in a page when the client gives no max */
#define MAM_MAX 250        /* hard cap: a larger max is served as this many (XEP-0059 §2.1) */
/* A page's stanzas, in bytes: the page goes out in one turn and must stay well inside the
 * output bound (CONN_MAX_OUTQ), whatever size the archived messages have. A shorter page says
 * so (complete='false') and the client asks for the next one (XEP-0059 §2.1 allows fewer). */
#define MAM_PAGE_BYTES (1024u * 1024)
/* JIDs in one preferences list: beyond it the set is refused with not-acceptable. */
#define MAM_PREFS_JIDS_MAX 1000
/* Archive writes, queries and preference requests waiting for one user's preferences: beyond it
 * archiving is skipped (logged) and requests get resource-constraint. */
#define MAM_JOBS_MAX 10000
/* The server's default when a user never set preferences. */
#define MAM_SERVER_DEFAULT STORAGE_ARCHIVE_ALWAYS

/* Retention (archive.retention_days, 0 = forever): one purge across every user's archive, at
 * once and then hourly, from a timer on the first worker that does any archive work (the module
 * starts before the workers' loops exist). */
#define RETENTION_PERIOD_MS (3600 * 1000)

typedef enum { PREFS_UNKNOWN, PREFS_LOADING, PREFS_READY } prefs_state_t;

typedef void (*job_fn)(worker_t *w, user_t *u, void *arg);
typedef struct mam_job {
    struct mam_job *next;
    job_fn fn;
    void (*drop)(void *arg); /* frees arg when the job never runs */
    void *arg;
} mam_job_t;

/* MAM_USER(u): the user's preferences once loaded, and what waits for them. */
typedef struct mam_user {
    prefs_state_t state;
    int default_mode; /* storage_archive_default_t */
    strmap_t always;  /* JID -> (void *)1 */
    strmap_t never;
    mam_job_t *head, *tail;
    size_t njobs;
} mam_user_t;

static const char *const mode_names[] = {"always", "never", "roster"};

/* ---- retention ---- */

/* Per worker (core slot): worker 0 runs the hourly purge on its loop. */
static int worker_slot = -1;
/* Per user (core slot): its preferences (mam_user_t). */
static int user_slot = -1;
#define MAM_USER(u) ((mam_user_t *)(u)->slot[user_slot])

typedef struct mam_worker {
    uv_timer_t retention; /* worker 0 only, when a retention is configured */
    int timer_open;
} mam_worker_t;

static void purged(void *ud, int err)
{
    (void)ud;
    if (err)
        hlog(LOG_ERROR, "archive retention: purge failed: %s", hearth_strerror(err));
}

static void retention_purge(uv_timer_t *t)
{
    worker_t *w = t->data;
    int64_t before = user__now_ms() - (int64_t)w->set.archive_retention_days * 86400000;
    int rc = storage_archive_purge(w->srv->storage, &w->storage_target, before, purged, NULL);
    if (rc)
        hlog(LOG_ERROR, "archive retention: purge not queued: %s", hearth_strerror(rc));
}

static int mam_worker_init(worker_t *w)
{
    mam_worker_t *mw = calloc(1, sizeof(*mw));
    if (!mw)
        return HEARTH_ENOMEM;
    w->slot[worker_slot] = mw;
    if (w->index != 0 || !w->set.archive_retention_days)
        return 0;
    if (uv_timer_init(&w->loop, &mw->retention))
        return HEARTH_EIO;
    mw->timer_open = 1;
    mw->retention.data = w;
    uv_unref((uv_handle_t *)&mw->retention); /* never what keeps a loop running */
    uv_timer_start(&mw->retention, retention_purge, 0, RETENTION_PERIOD_MS);
    hlog(LOG_INFO, "archive retention: %u days, purged hourly by worker %u",
         w->set.archive_retention_days, w->index);
    return 0;
}

/* After the worker's loop closed its handles (the timer among them). */
static void mam_worker_free(worker_t *w)
{
    free(w->slot[worker_slot]);
    w->slot[worker_slot] = NULL;
}

/* ---- per-user state ---- */

static mam_user_t *mam_of(user_t *u)
{
    if (MAM_USER(u))
        return MAM_USER(u);
    mam_user_t *mu = calloc(1, sizeof(*mu));
    if (!mu)
        return NULL;
    if (strmap_init(&mu->always) || strmap_init(&mu->never)) {
        strmap_free(&mu->always);
        free(mu);
        return NULL;
    }
    mu->default_mode = MAM_SERVER_DEFAULT;
    u->slot[user_slot] = mu;
    return mu;
}

static void prefs_reset(mam_user_t *mu)
{
    STRMAP_FOREACH(&mu->always, e)
    {
        strmap_remove(&mu->always, e->key);
    }
    STRMAP_FOREACH(&mu->never, e)
    {
        strmap_remove(&mu->never, e->key);
    }
    mu->default_mode = MAM_SERVER_DEFAULT;
}

static void prefs_apply(mam_user_t *mu, const storage_archive_prefs_t *p)
{
    prefs_reset(mu);
    if (!p || !p->stored)
        return;
    mu->default_mode = p->default_mode;
    for (size_t i = 0; i < p->nalways; i++)
        if (strmap_put(&mu->always, p->always[i], (void *)1))
            hlog(LOG_ERROR, "archive preferences: out of memory");
    for (size_t i = 0; i < p->nnever; i++)
        if (strmap_put(&mu->never, p->never[i], (void *)1))
            hlog(LOG_ERROR, "archive preferences: out of memory");
}

static void user_free(user_t *u)
{
    mam_user_t *mu = MAM_USER(u);
    if (!mu)
        return;
    while (mu->head) { /* u is held while jobs wait: none are expected here */
        mam_job_t *j = mu->head;
        mu->head = j->next;
        if (j->drop)
            j->drop(j->arg);
        free(j);
    }
    strmap_free(&mu->always);
    strmap_free(&mu->never);
    free(mu);
    u->slot[user_slot] = NULL;
}

static void run_jobs(worker_t *w, user_t *u, mam_user_t *mu)
{
    while (mu->head) {
        mam_job_t *j = mu->head;
        mu->head = j->next;
        if (!mu->head)
            mu->tail = NULL;
        mu->njobs--;
        j->fn(w, u, j->arg);
        free(j);
    }
}

typedef struct load_ctx {
    worker_t *w;
    user_t *u;
} load_ctx_t;

static void prefs_loaded(void *ud, int err, const storage_archive_prefs_t *p)
{
    load_ctx_t *lc = ud;
    worker_t *w = lc->w;
    user_t *u = lc->u;
    free(lc);
    mam_user_t *mu = MAM_USER(u);
    if (err)
        hlog(LOG_ERROR, "archive preferences of %s not loaded: %s (server default used)", u->bare,
             hearth_strerror(err));
    prefs_apply(mu, err ? NULL : p);
    mu->state = PREFS_READY;
    run_jobs(w, u, mu);
    if (err)
        mu->state = PREFS_UNKNOWN; /* the next need retries */
    user__release(w, u);
}

/* Runs fn(w, u, arg) once u's preferences are known, after everything queued before it. Returns
 * 0 when it ran or is queued; otherwise an error, fn not run and arg not freed. */
static int with_prefs(worker_t *w, user_t *u, job_fn fn, void (*drop)(void *), void *arg)
{
    mam_user_t *mu = mam_of(u);
    if (!mu)
        return HEARTH_ENOMEM;
    if (mu->state == PREFS_READY && !mu->head) {
        fn(w, u, arg);
        return 0;
    }
    if (mu->njobs >= MAM_JOBS_MAX)
        return HEARTH_ELIMIT;
    mam_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return HEARTH_ENOMEM;
    j->fn = fn;
    j->drop = drop;
    j->arg = arg;
    if (mu->state == PREFS_UNKNOWN) {
        load_ctx_t *lc = calloc(1, sizeof(*lc));
        int rc = lc ? 0 : HEARTH_ENOMEM;
        if (lc) {
            lc->w = w;
            lc->u = u;
            rc = storage_archive_prefs_get(w->srv->storage, &w->storage_target, u->node,
                                           prefs_loaded, lc);
        }
        if (rc) {
            free(lc);
            free(j);
            return rc;
        }
        mu->state = PREFS_LOADING;
        user__hold(u); /* until prefs_loaded */
    }
    if (mu->tail)
        mu->tail->next = j;
    else
        mu->head = j;
    mu->tail = j;
    mu->njobs++;
    return 0;
}

/* ---- archiving ---- */

/* A message waiting to be archived. */
typedef struct archive_req {
    storage_archive_msg_t msg; /* id, with, stanza owned */
    char *peer;                /* the other party's full JID when known, else NULL */
} archive_req_t;

static void archive_req_free(void *arg)
{
    archive_req_t *p = arg;
    if (!p)
        return;
    free(p->msg.id);
    free(p->msg.with);
    free(p->msg.stanza);
    free(p->peer);
    free(p);
}

/* XEP-0313 §7: the JID lists win over the default; a JID in both is never archived. */
static int allowed(const user_t *u, const mam_user_t *mu, const char *with, const char *peer)
{
    if (strmap_get(&mu->never, with) || (peer && strmap_get(&mu->never, peer)))
        return 0;
    if (strmap_get(&mu->always, with) || (peer && strmap_get(&mu->always, peer)))
        return 1;
    switch (mu->default_mode) {
    case STORAGE_ARCHIVE_NEVER:
        return 0;
    case STORAGE_ARCHIVE_ROSTER:
        return strmap_get(&u->roster, with) != NULL || !strcmp(with, u->bare);
    }
    return 1;
}

static void stored(void *ud, int err)
{
    char *id = ud;
    if (err == HEARTH_EEXISTS)
        hlog(LOG_DEBUG, "archive: id %s already stored", id);
    else if (err)
        hlog(LOG_ERROR, "archive: message %s not stored: %s", id, hearth_strerror(err));
    free(id);
}

static void archive_job(worker_t *w, user_t *u, void *arg)
{
    archive_req_t *p = arg;
    if (allowed(u, MAM_USER(u), p->msg.with, p->peer)) {
        char *id = strdup(p->msg.id);
        int rc = id ? storage_archive_store(w->srv->storage, &w->storage_target, u->node, &p->msg,
                                            stored, id)
                    : HEARTH_ENOMEM;
        if (rc) {
            hlog(LOG_ERROR, "archive of %s: message not queued: %s", u->bare, hearth_strerror(rc));
            free(id);
        }
    }
    archive_req_free(p);
}

static char *bare_dup(const char *jid)
{
    return strndup(jid, strcspn(jid, "/"));
}

/* Queues the archiving of stanza (serialised, standalone: xmlns='jabber:client' on the root). */
static void archive(worker_t *w, user_t *u, const char *id, const char *peer, int outgoing,
                    char *stanza, size_t len)
{
    archive_req_t *p = calloc(1, sizeof(*p));
    if (!p) {
        free(stanza);
        return;
    }
    p->msg.stanza = stanza;
    p->msg.len = len;
    p->msg.stamp_ms = user__now_ms();
    p->msg.outgoing = outgoing;
    p->msg.id = strdup(id);
    p->msg.with = bare_dup(peer);
    p->peer = strchr(peer, '/') ? strdup(peer) : NULL;
    int rc = p->msg.id && p->msg.with ? 0 : HEARTH_ENOMEM;
    rc = rc ?: with_prefs(w, u, archive_job, archive_req_free, p);
    if (rc) {
        hlog(LOG_ERROR, "archive of %s: message %s skipped: %s", u->bare, id, hearth_strerror(rc));
        archive_req_free(p);
    }
}

/* Worth archiving (XEP-0313 §5.1.1 leaves it to the server): a body, and not an error, a
 * headline or a groupchat message (those belong to the room's archive). */
static int worth_archiving(const hearth_xml_node_t *st)
{
    const char *type = hearth_xml_attr(st, "type");
    if (type && (!strcmp(type, "error") || !strcmp(type, "headline") || !strcmp(type, "groupchat")))
        return 0;
    return hearth_xml_child(st, "body", HEARTH_NS_CLIENT) != NULL;
}

/* The stanza serialised as a standalone element (its own xmlns='jabber:client'), malloc'd. */
static char *standalone(const hearth_xml_node_t *st, size_t *len)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(st, NULL, &b)) {
        hearth_buf_free(&b);
        return NULL;
    }
    return hearth_buf_steal(&b, len);
}

typedef struct incoming_ctx {
    worker_t *w;
    user_t *u;
    const inbox_msg_t *m;
} incoming_ctx_t;

static void incoming_parsed(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    incoming_ctx_t *ic = ud;
    const inbox_msg_t *m = ic->m;
    (void)arena;
    if (!worth_archiving(st))
        return;
    char fresh[32];
    const char *id = m->u.route.sid;
    if (!*id) { /* routed without a stanza id of ours: the archive gives one */
        user__archive_id(fresh, sizeof(fresh));
        id = fresh;
    }
    size_t len = 0;
    char *text = standalone(st, &len);
    if (text)
        archive(ic->w, ic->u, id, m->u.route.from, 0, text, len);
}

/* The standalone form of a routed message's bytes without parsing them, or NULL when they are
 * not in the form this needs. Routed bytes are the serialiser's output with jabber:client as
 * the context namespace, so the root is written "<message" and then its attributes; with no
 * context it is written "<message xmlns='jabber:client'" and then the same. */
static char *standalone_from_bytes(const hearth_bytes_t *b, size_t *len)
{
    static const char root[] = "<message";
    static const char decl[] = " xmlns='" HEARTH_NS_CLIENT "'";
    const size_t rl = sizeof(root) - 1, dl = sizeof(decl) - 1;
    if (b->len <= rl || memcmp(b->data, root, rl) != 0 || !strchr(" />", b->data[rl]))
        return NULL;
    if (b->len > rl + dl && memcmp(b->data + rl, " xmlns=", 7) == 0)
        return NULL; /* written with another context: take the general path */
    char *text = malloc(b->len + dl + 1);
    if (!text)
        return NULL;
    memcpy(text, root, rl);
    memcpy(text + rl, decl, dl);
    memcpy(text + rl + dl, b->data + rl, b->len - rl);
    *len = b->len + dl;
    text[*len] = '\0';
    return text;
}

/* The stanza id the message module appended for u, taken off the end of text when it is there
 * as the serialiser writes it: the text is then the sender's archived copy, and the storage
 * keeps one for both. */
static void drop_own_sid(const user_t *u, const char *sid, char *text, size_t *len)
{
    char tail[96 + 2 * STORAGE_JID_MAX];
    int n = snprintf(tail, sizeof(tail), "<stanza-id xmlns='%s' id='%s' by='%s'/></message>",
                     HEARTH_NS_SID, sid, u->bare);
    if (n <= 0 || (size_t)n >= sizeof(tail) || (size_t)n > *len)
        return;
    char *at = text + *len - (size_t)n;
    if (memcmp(at, tail, (size_t)n) != 0)
        return;
    static const char end[] = "</message>";
    memcpy(at, end, sizeof(end));
    *len = (size_t)(at - text) + sizeof(end) - 1;
}

/* A message accepted for u (delivered or stored offline), on u's home worker; m->u.route.sid
 * is the stanza id the recipient sees and the archive key. Only messages worth archiving are
 * kept (a body). The router says whether there is one when the sender's stanza was at hand;
 * then the bytes are archived as they are, else they are parsed to find out. */
static void incoming(worker_t *w, user_t *u, const inbox_msg_t *m)
{
    if (u->state != USER_READY || !m->u.route.from || !m->u.route.bytes)
        return;
    if (m->u.route.has_body == 0)
        return;
    if (m->u.route.has_body == 1 && *m->u.route.sid) {
        size_t len = 0;
        char *text = standalone_from_bytes(m->u.route.bytes, &len);
        if (text) {
            drop_own_sid(u, m->u.route.sid, text, &len);
            archive(w, u, m->u.route.sid, m->u.route.from, 0, text, len);
            return;
        }
    }
    incoming_ctx_t ic = {w, u, m};
    router__parse(m->u.route.bytes->data, m->u.route.bytes->len, incoming_parsed, &ic);
}

/* A message sent by c's user (on its home worker), before it is routed to `to`; sid, when
 * given, is its archive key (the recipient's archive keeps it under the same). */
static void outgoing(session_t *c, hearth_xml_node_t *st, hearth_arena_t *arena, const char *to,
                     const char *sid)
{
    user_t *u = c->user;
    (void)arena;
    if (!u || u->state != USER_READY || !to || !worth_archiving(st))
        return;
    if (!strcmp(to, u->bare))
        return; /* to oneself: archived once, as it arrives */
    const char *full = hearth_xml_attr(st, "to");
    char id[32];
    if (sid && *sid)
        snprintf(id, sizeof(id), "%s", sid);
    else
        user__archive_id(id, sizeof(id));
    size_t len = 0;
    char *text = standalone(st, &len);
    if (text)
        archive(c->w, u, id, full && !strncmp(full, to, strlen(to)) ? full : to, 1, text, len);
}

/* ---- queries ---- */

typedef struct query {
    iq_deferred_t *d;
    char *queryid; /* NULL when none */
    char *with, *after, *before;
    int64_t start_ms, end_ms;
    size_t max;
} query_t;

static void query_free(void *arg)
{
    query_t *q = arg;
    if (!q)
        return;
    iq_deferred_free(q->d);
    free(q->queryid);
    free(q->with);
    free(q->after);
    free(q->before);
    free(q);
}

/* One <message><result><forwarded>…</forwarded></result></message> per item. */
static int send_result(session_t *c, const char *bare, const char *queryid,
                       const storage_archive_msg_t *m)
{
    char stamp[64];
    hearth_datetime_format(m->stamp_ms, stamp, sizeof(stamp));
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<message to='");
    rc = rc ?: hearth_buf_append_escaped(&b, c->jid.full, strlen(c->jid.full));
    rc = rc ?: hearth_buf_append_str(&b, "' from='");
    rc = rc ?: hearth_buf_append_escaped(&b, bare, strlen(bare));
    rc = rc ?: hearth_buf_append_str(&b, "'><result xmlns='" HEARTH_NS_MAM "'");
    if (queryid) {
        rc = rc ?: hearth_buf_append_str(&b, " queryid='");
        rc = rc ?: hearth_buf_append_escaped(&b, queryid, strlen(queryid));
        rc = rc ?: hearth_buf_append_str(&b, "'");
    }
    rc = rc ?: hearth_buf_append_str(&b, " id='");
    rc = rc ?: hearth_buf_append_escaped(&b, m->id, strlen(m->id));
    rc = rc
             ?: hearth_buf_printf(&b,
                                  "'><forwarded xmlns='" HEARTH_NS_FORWARD
                                  "'><delay xmlns='" HEARTH_NS_DELAY "' stamp='%s'/>",
                                  stamp);
    rc = rc ?: hearth_buf_append(&b, m->stanza, m->len);
    rc = rc ?: hearth_buf_append_str(&b, "</forwarded></result></message>");
    if (!rc)
        session__send(c, b.data, b.len);
    hearth_buf_free(&b);
    return rc;
}

static void query_done(void *ud, int err, const storage_archive_page_t *page)
{
    query_t *q = ud;
    iq_deferred_t *d = q->d;
    q->d = NULL;
    if (err == HEARTH_ENOTFOUND) {
        iq_deferred_error(d, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, "no such item in the archive");
    } else if (err) {
        hlog_conn(LOG_ERROR, d->s->id, d->s->jid.full, "archive query failed: %s",
                  hearth_strerror(err));
        iq_deferred_error(d, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
    } else {
        session_t *c = d->s;
        int rc = 0;
        for (size_t i = 0; i < page->n && !rc; i++)
            rc = send_result(c, c->user->bare, q->queryid, &page->msgs[i]);
        hearth_buf_t b = HEARTH_BUF_INIT;
        rc = rc
                 ?: hearth_buf_printf(&b,
                                      "<fin xmlns='" HEARTH_NS_MAM
                                      "' complete='%s'><set xmlns='" HEARTH_NS_RSM "'>",
                                      page->complete ? "true" : "false");
        if (page->n) {
            const char *first = page->msgs[0].id, *last = page->msgs[page->n - 1].id;
            /* No 'index' on <first> (XEP-0059 makes it optional): a widely used client library
             * takes "index + items == count" for the last page, which holds for the newest
             * page when paging backwards, and stops there. */
            rc = rc ?: hearth_buf_append_str(&b, "<first>");
            rc = rc ?: hearth_buf_append_escaped(&b, first, strlen(first));
            rc = rc ?: hearth_buf_append_str(&b, "</first><last>");
            rc = rc ?: hearth_buf_append_escaped(&b, last, strlen(last));
            rc = rc ?: hearth_buf_append_str(&b, "</last>");
        }
        rc = rc ?: hearth_buf_printf(&b, "<count>%zu</count></set></fin>", page->count);
        if (rc)
            iq_deferred_error(d, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        else
            iq_deferred_result(d, b.data);
        hearth_buf_free(&b);
    }
    query_free(q);
}

static void query_job(worker_t *w, user_t *u, void *arg)
{
    query_t *q = arg;
    storage_archive_query_t sq = {.with = q->with,
                                  .start_ms = q->start_ms,
                                  .end_ms = q->end_ms,
                                  .after_id = q->after,
                                  .before_id = q->before,
                                  .max = q->max,
                                  .max_bytes = MAM_PAGE_BYTES};
    int rc =
        storage_archive_query(w->srv->storage, &w->storage_target, u->node, &sq, query_done, q);
    if (rc) {
        iq_deferred_error(q->d,
                          rc == HEARTH_EAGAIN ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                              : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
                          NULL);
        q->d = NULL;
        query_free(q);
    }
}

/* Reads the data form into q: 0, or -1 with the error sent. Every malformed or unknown thing in
 * it, and a form past hearth_form's default bounds, is a bad request. */
static int parse_form(iq_ctx_t *ctx, const hearth_xml_node_t *x, query_t *q)
{
    hearth_form_type_t type = hearth_form_type_of(x);
    if (type != HEARTH_FORM_UNTYPED && type != HEARTH_FORM_SUBMIT) {
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "the form must be of type submit");
        return -1;
    }
    hearth_form_t form;
    const char *why = NULL;
    int rc = hearth_form_parse(ctx->arena, x, NULL, &form, &why);
    if (rc) {
        iq_error(ctx,
                 rc == HEARTH_ENOMEM ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                     : HEARTH_STANZA_ERR_BAD_REQUEST,
                 why);
        return -1;
    }
    for (size_t i = 0; i < form.nfields; i++) {
        const char *var = form.fields[i].var;
        const char *v = form.fields[i].nvalues ? form.fields[i].values[0] : "";
        if (!var) {
            iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "a field without var");
            return -1;
        }
        if (!strcmp(var, "FORM_TYPE")) {
            if (strcmp(v, HEARTH_NS_MAM)) {
                iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "FORM_TYPE must be " HEARTH_NS_MAM);
                return -1;
            }
        } else if (!strcmp(var, "with")) {
            hearth_jid_t j = HEARTH_JID_INIT;
            if (hearth_jid_parse(v, strlen(v), &j, NULL)) {
                iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "'with' is not a JID");
                return -1;
            }
            free(q->with);
            q->with = strdup(j.bare);
            hearth_jid_clear(&j);
            if (!q->with) {
                iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
                return -1;
            }
        } else if (!strcmp(var, "start") || !strcmp(var, "end")) {
            int64_t ms;
            if (hearth_datetime_parse(v, &ms)) {
                iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST,
                         "'start' and 'end' are XEP-0082 date-times");
                return -1;
            }
            if (var[0] == 's')
                q->start_ms = ms;
            else
                q->end_ms = ms;
        } else {
            iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "unknown field");
            return -1;
        }
    }
    return 0;
}

/* Reads XEP-0059's <set/> into q: 0, -1 with the error sent, or 1 when an id cannot be in any
 * archive (item-not-found sent). */
static int parse_rsm(iq_ctx_t *ctx, const hearth_xml_node_t *set, query_t *q)
{
    for (hearth_xml_node_t *e = hearth_xml_first_element(set); e; e = hearth_xml_next_element(e)) {
        if (strcmp(e->ns, HEARTH_NS_RSM))
            continue;
        const char *t = hearth_xml_text(ctx->arena, e);
        if (!t) {
            iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
            return -1;
        }
        if (!strcmp(e->name, "max")) {
            char *end;
            unsigned long long v = strtoull(t, &end, 10);
            if (!*t || *end || !isdigit((unsigned char)*t)) {
                iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "max is a non-negative integer");
                return -1;
            }
            q->max = v > MAM_MAX ? MAM_MAX : (size_t)v;
        } else if (!strcmp(e->name, "after") || !strcmp(e->name, "before")) {
            int after = e->name[0] == 'a';
            if (after && !*t) {
                iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "after needs an id");
                return -1;
            }
            if (strlen(t) > STORAGE_ARCHIVE_ID_MAX) {
                iq_error(ctx, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, "no such item in the archive");
                return 1;
            }
            char **dst = after ? &q->after : &q->before;
            free(*dst);
            if (!(*dst = strdup(t))) {
                iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
                return -1;
            }
        } else if (!strcmp(e->name, "index")) {
            iq_error(ctx, HEARTH_STANZA_ERR_FEATURE_NOT_IMPLEMENTED,
                     "paging by index is not supported; use after or before");
            return -1;
        }
    }
    return 0;
}

/* The query's form (XEP-0313 §6.1.1): the fields a query may carry. */
static void query_fields(iq_ctx_t *ctx)
{
    static const char *const form_type[] = {HEARTH_NS_MAM};
    static const hearth_form_field_t fields[] = {
        {.var = "FORM_TYPE", .type = "hidden", .values = form_type, .nvalues = 1},
        {.var = "with", .type = "jid-single"},
        {.var = "start", .type = "text-single"},
        {.var = "end", .type = "text-single"},
    };
    static const hearth_form_t form = {
        .type = HEARTH_FORM_FORM, .fields = fields, .nfields = sizeof(fields) / sizeof(*fields)};
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<query xmlns='" HEARTH_NS_MAM "'>");
    rc = rc ?: hearth_form_write(&form, HEARTH_NS_MAM, &b);
    rc = rc ?: hearth_buf_append_str(&b, "</query>");
    iq_deferred_t *d = rc ? NULL : iq_defer(ctx);
    if (d)
        iq_deferred_result(d, b.data);
    else
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
    hearth_buf_free(&b);
}

static void mam_query(iq_ctx_t *ctx)
{
    if (ctx->where != IQ_TO_SELF) {
        iq_error(ctx, HEARTH_STANZA_ERR_FORBIDDEN, "only the owner may query an archive");
        return;
    }
    if (!ctx->set) {
        query_fields(ctx);
        return;
    }
    user_t *u = ctx->s->user;
    query_t *q = calloc(1, sizeof(*q));
    if (!u || !q) {
        free(q);
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    q->start_ms = STORAGE_ARCHIVE_NO_START;
    q->end_ms = STORAGE_ARCHIVE_NO_END;
    q->max = MAM_DEFAULT_MAX;
    const char *qid = hearth_xml_attr(ctx->payload, "queryid");
    if (qid && !(q->queryid = strdup(qid))) {
        query_free(q);
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    for (hearth_xml_node_t *e = hearth_xml_first_element(ctx->payload); e;
         e = hearth_xml_next_element(e)) {
        int rc = 0;
        if (!strcmp(e->name, "x") && !strcmp(e->ns, HEARTH_NS_DATA))
            rc = parse_form(ctx, e, q);
        else if (!strcmp(e->name, "set") && !strcmp(e->ns, HEARTH_NS_RSM))
            rc = parse_rsm(ctx, e, q);
        if (rc) {
            query_free(q);
            return;
        }
    }
    q->d = iq_defer(ctx);
    int rc = q->d ? with_prefs(ctx->s->w, u, query_job, query_free, q) : HEARTH_ENOMEM;
    if (rc) {
        query_free(q);
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
    }
}

/* ---- preferences ---- */

typedef struct prefs_req {
    iq_deferred_t *d;
    storage_archive_prefs_t p; /* for a set: what was asked */
    int set;
} prefs_req_t;

static void prefs_req_free(void *arg)
{
    prefs_req_t *r = arg;
    if (!r)
        return;
    iq_deferred_free(r->d);
    for (size_t i = 0; i < r->p.nalways; i++)
        free(r->p.always[i]);
    for (size_t i = 0; i < r->p.nnever; i++)
        free(r->p.never[i]);
    free(r->p.always);
    free(r->p.never);
    free(r);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int list_xml(hearth_buf_t *b, const char *name, const strmap_t *m)
{
    const char **v = calloc(m->count + 1, sizeof(*v));
    if (!v)
        return HEARTH_ENOMEM;
    size_t n = 0;
    STRMAP_FOREACH(m, e)
    {
        v[n++] = e->key;
    }
    qsort(v, n, sizeof(*v), cmp_str);
    int rc = hearth_buf_printf(b, "<%s>", name);
    for (size_t i = 0; i < n && !rc; i++) {
        rc = hearth_buf_append_str(b, "<jid>");
        rc = rc ?: hearth_buf_append_escaped(b, v[i], strlen(v[i]));
        rc = rc ?: hearth_buf_append_str(b, "</jid>");
    }
    rc = rc ?: hearth_buf_printf(b, "</%s>", name);
    free(v);
    return rc;
}

static void prefs_reply(iq_deferred_t *d, const mam_user_t *mu)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_printf(&b, "<prefs xmlns='" HEARTH_NS_MAM "' default='%s'>",
                               mode_names[mu->default_mode]);
    rc = rc ?: list_xml(&b, "always", &mu->always);
    rc = rc ?: list_xml(&b, "never", &mu->never);
    rc = rc ?: hearth_buf_append_str(&b, "</prefs>");
    if (rc)
        iq_deferred_error(d, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
    else
        iq_deferred_result(d, b.data);
    hearth_buf_free(&b);
}

typedef struct prefs_write {
    iq_deferred_t *d;
    worker_t *w;
    user_t *u;
} prefs_write_t;

static void prefs_written(void *ud, int err)
{
    prefs_write_t *pw = ud;
    if (err) {
        hlog(LOG_ERROR, "archive preferences of %s not stored: %s", pw->u->bare,
             hearth_strerror(err));
        iq_deferred_error(pw->d, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
    } else if (MAM_USER(pw->u)) {
        prefs_reply(pw->d, MAM_USER(pw->u));
    } else {
        iq_deferred_result(pw->d, NULL);
    }
    user__release(pw->w, pw->u);
    free(pw);
}

/* Applied to the cache at once, so that what is archived from now on follows them; the answer
 * waits for the write. */
static void prefs_job(worker_t *w, user_t *u, void *arg)
{
    prefs_req_t *r = arg;
    mam_user_t *mu = MAM_USER(u);
    if (!r->set) {
        prefs_reply(r->d, mu);
        r->d = NULL;
        prefs_req_free(r);
        return;
    }
    prefs_write_t *pw = calloc(1, sizeof(*pw));
    int rc = pw ? storage_archive_prefs_set(w->srv->storage, &w->storage_target, u->node, &r->p,
                                            prefs_written, pw)
                : HEARTH_ENOMEM;
    if (rc) {
        free(pw);
        iq_deferred_error(r->d,
                          rc == HEARTH_EAGAIN ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                              : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
                          NULL);
        r->d = NULL;
        prefs_req_free(r);
        return;
    }
    r->p.stored = 1;
    prefs_apply(mu, &r->p);
    pw->d = r->d;
    pw->w = w;
    pw->u = u;
    user__hold(u);
    r->d = NULL;
    prefs_req_free(r);
}

/* Reads <always/> or <never/>: 0, or -1 with the error sent. */
static int parse_list(iq_ctx_t *ctx, const hearth_xml_node_t *list, char ***out, size_t *n)
{
    size_t cap = hearth_xml_count_elements(list);
    if (cap > MAM_PREFS_JIDS_MAX) {
        iq_error(ctx, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "too many JIDs");
        return -1;
    }
    if (cap == 0)
        return 0;
    if (!(*out = calloc(cap, sizeof(**out)))) {
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return -1;
    }
    for (hearth_xml_node_t *e = hearth_xml_first_element(list); e; e = hearth_xml_next_element(e)) {
        if (strcmp(e->name, "jid") || strcmp(e->ns, HEARTH_NS_MAM))
            continue;
        const char *t = hearth_xml_text(ctx->arena, e);
        hearth_jid_t j = HEARTH_JID_INIT;
        const char *reason = NULL;
        if (!t || hearth_jid_parse(t, strlen(t), &j, &reason)) {
            iq_error(ctx, HEARTH_STANZA_ERR_JID_MALFORMED, reason);
            return -1;
        }
        (*out)[*n] = strdup(j.full);
        hearth_jid_clear(&j);
        if (!(*out)[*n]) {
            iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static void mam_prefs(iq_ctx_t *ctx)
{
    if (ctx->where != IQ_TO_SELF) {
        iq_error(ctx, HEARTH_STANZA_ERR_FORBIDDEN, "only the owner may see or change preferences");
        return;
    }
    user_t *u = ctx->s->user;
    prefs_req_t *r = calloc(1, sizeof(*r));
    if (!u || !r) {
        free(r);
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    r->set = ctx->set;
    if (r->set) {
        const char *def = hearth_xml_attr(ctx->payload, "default");
        int mode = -1;
        for (int i = 0; def && i < 3; i++)
            if (!strcmp(def, mode_names[i]))
                mode = i;
        if (mode < 0) {
            prefs_req_free(r);
            iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "default must be always, never or roster");
            return;
        }
        r->p.default_mode = mode;
        hearth_xml_node_t *always = hearth_xml_child(ctx->payload, "always", HEARTH_NS_MAM);
        hearth_xml_node_t *never = hearth_xml_child(ctx->payload, "never", HEARTH_NS_MAM);
        if ((always && parse_list(ctx, always, &r->p.always, &r->p.nalways)) ||
            (never && parse_list(ctx, never, &r->p.never, &r->p.nnever))) {
            prefs_req_free(r);
            return;
        }
    }
    r->d = iq_defer(ctx);
    int rc = r->d ? with_prefs(ctx->s->w, u, prefs_job, prefs_req_free, r) : HEARTH_ENOMEM;
    if (rc) {
        prefs_req_free(r);
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
    }
}

/* ---- the module ---- */

static const iq_route_t mam_iqs[] = {
    {HEARTH_NS_MAM, "query", IQ_TO_SELF | IQ_TO_ACCOUNT, mam_query},
    {HEARTH_NS_MAM, "prefs", IQ_TO_SELF | IQ_TO_ACCOUNT, mam_prefs},
    {NULL, NULL, 0, NULL},
};
static const char *const mam_features[] = {HEARTH_NS_MAM, NULL};

static int message_out(hook_args_t *a)
{
    outgoing(a->s, a->st, a->arena, a->to, a->sid);
    return HOOK_CONTINUE;
}

static int message_accepted(hook_args_t *a)
{
    incoming(a->w, a->u, a->m);
    return HOOK_CONTINUE;
}

static int user_unloaded(hook_args_t *a)
{
    user_free(a->u);
    return HOOK_CONTINUE;
}

static int mam_init(server_t *srv)
{
    (void)srv;
    if ((worker_slot = worker__slot_new()) < 0 || (user_slot = user__slot_new()) < 0)
        return HEARTH_ELIMIT;
    /* The sender's copy is taken before the recipient's stanza id is added (message.c). */
    return hooks__add(HOOK_MESSAGE_OUT, 90, message_out)
               ?: hooks__add(HOOK_MESSAGE_ACCEPTED, 0, message_accepted)
               ?: hooks__add(HOOK_USER_UNLOADED, 0, user_unloaded);
}

const module_t module_mam = {
    .name = "mam",
    .switch_key = "archive.enabled",
    .iqs = mam_iqs,
    .server_features = mam_features,
    .account_features = mam_features,
    .init = mam_init,
    .worker_init = mam_worker_init,
    .worker_free = mam_worker_free,
};
