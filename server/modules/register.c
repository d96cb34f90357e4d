/* XEP-0077 In-Band Registration: new accounts before authentication (rate-limited per IP),
 * password change and account removal after it. SCRAM secrets are derived on libuv's pool
 * (PBKDF2 costs milliseconds) and written through storage; the only shared state is the per-IP
 * count of recent registrations, under its own lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/im.h"

#define INSTRUCTIONS "Choose a username and password for use with this server."

/* Registrations and password changes being derived or stored, server-wide. Past it a request
 * gets <resource-constraint/> at once: no client can fill libuv's pool, which SASL PLAIN also
 * needs. */
#define REG_MAX_PENDING 64
static int reg_pending; /* atomic */

/* ---- rate limit: attempts per IP over a rolling hour of one-minute slots ---- */

#define RATE_SLOTS 60
/* Addresses tracked at once. When the map is full even after expiry, registration from a new
 * address is refused with <resource-constraint/> (it fails closed) until entries expire. */
#define RATE_MAX_IPS 16384

typedef struct rate_entry {
    uint64_t newest; /* minute of the latest update */
    uint32_t total;  /* sum of slot[] */
    uint32_t slot[RATE_SLOTS];
} rate_entry_t;

static uv_mutex_t rate_lock; /* guards the three below: counter updates only, no I/O */
static strmap_t rate_ips;    /* ip -> rate_entry_t * */
static uint64_t rate_swept;  /* minute of the last expiry sweep */
static int rate_ready;       /* set once on the main thread */

static uint64_t minute_now(void)
{
    return uv_hrtime() / (60ull * 1000000000ull); /* monotonic, the same clock on every thread */
}

/* Slides the window to minute now: slots older than an hour are emptied. */
static void rate_advance(rate_entry_t *e, uint64_t now)
{
    if (now <= e->newest)
        return;
    if (now - e->newest >= RATE_SLOTS) {
        memset(e->slot, 0, sizeof(e->slot));
        e->total = 0;
    } else {
        for (uint64_t m = e->newest + 1; m <= now; m++) {
            e->total -= e->slot[m % RATE_SLOTS];
            e->slot[m % RATE_SLOTS] = 0;
        }
    }
    e->newest = now;
}

/* Under rate_lock, at most once a minute: addresses with nothing in the last hour are dropped. */
static void rate_sweep(uint64_t now)
{
    rate_swept = now;
    STRMAP_FOREACH(&rate_ips, e)
    {
        rate_entry_t *r = e->value;
        rate_advance(r, now);
        if (r->total == 0) {
            strmap_remove(&rate_ips, e->key);
            free(r);
        }
    }
}

/* Counts one attempt from ip: 0 when admitted, HEARTH_ELIMIT when ip is at its limit (or the
 * table is full), HEARTH_ENOMEM. */
static int rate_admit(const char *ip, unsigned limit)
{
    if (limit == 0)
        return 0;
    rate_entry_t *fresh = calloc(1, sizeof(*fresh)); /* allocated before the lock is taken */
    if (!fresh)
        return HEARTH_ENOMEM;
    uint64_t now = minute_now();
    int rc = 0;
    uv_mutex_lock(&rate_lock);
    if (now != rate_swept)
        rate_sweep(now);
    rate_entry_t *e = strmap_get(&rate_ips, ip);
    if (!e) {
        if (rate_ips.count >= RATE_MAX_IPS) {
            rc = HEARTH_ELIMIT;
        } else if (strmap_put(&rate_ips, ip, fresh)) {
            rc = HEARTH_ENOMEM;
        } else {
            e = fresh;
            fresh = NULL;
            e->newest = now;
        }
    }
    if (e) {
        rate_advance(e, now);
        if (e->total >= limit) {
            rc = HEARTH_ELIMIT;
        } else {
            e->slot[now % RATE_SLOTS]++;
            e->total++;
        }
    }
    uv_mutex_unlock(&rate_lock);
    free(fresh);
    return rc;
}

/* At exit (module_t has no teardown): the table is process-wide. */
static void rate_free(void)
{
    STRMAP_FOREACH(&rate_ips, e)
    {
        free(e->value);
    }
    strmap_free(&rate_ips);
    uv_mutex_destroy(&rate_lock);
}

static int register_init(server_t *srv)
{
    if (rate_ready)
        return 0;
    if (uv_mutex_init(&rate_lock))
        return HEARTH_ENOMEM;
    if (strmap_init(&rate_ips)) {
        uv_mutex_destroy(&rate_lock);
        return HEARTH_ENOMEM;
    }
    rate_ready = 1;
    atexit(rate_free);
    return 0;
}

static int pending_enter(void)
{
    if (__atomic_add_fetch(&reg_pending, 1, __ATOMIC_ACQ_REL) > REG_MAX_PENDING) {
        __atomic_sub_fetch(&reg_pending, 1, __ATOMIC_ACQ_REL);
        return HEARTH_ELIMIT;
    }
    return 0;
}

static void pending_leave(void)
{
    __atomic_sub_fetch(&reg_pending, 1, __ATOMIC_ACQ_REL);
}

/* ---- shared checks ---- */

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Password rule for registration and change: XEP-0077 §3.1 (an empty <password/> is missing
 * information) and §3.3 (never change to an empty password), plus the configured minimum. */
int register__password_ok(const settings_t *s, const char *pw)
{
    return *pw && utf8_chars(pw) >= s->min_password;
}

/* Registration is open on this stream: configured, and the stream encrypted unless TLS is
 * optional (XEP-0077 §10: not over a channel the server does not consider secured). */
static int allowed_here(const preauth_t *c)
{
    const settings_t *s = &c->w->set;
    return s->registration_open && (c->secure || !s->tls_required);
}

static void wipe_free(char *s)
{
    if (!s)
        return;
    explicit_bzero(s, strlen(s));
    free(s);
}

/* One registration or password change: the secrets are derived on the pool, then stored. */
typedef struct reg_job {
    uv_work_t work;
    worker_t *w;
    preauth_t *pa;          /* before authentication: the asking stream (a reference) */
    uint64_t conn_id;       /* for the log */
    iq_deferred_t *d;       /* after authentication: the pending reply (holds the session) */
    char *id;               /* before authentication: the IQ's id */
    char *bare;             /* username@domain, for the log and user__account_deleted */
    char ip[64];            /* for the log */
    storage_account_t acct; /* username; the secrets once derived */
    char *password;         /* wiped as soon as the secrets are derived */
    unsigned iterations;
    int rc;
} reg_job_t;

static void job_free(reg_job_t *j)
{
    wipe_free(j->password);
    storage_account_clear(&j->acct);
    free(j->id);
    free(j->bare);
    iq_deferred_free(j->d);
    if (j->pa)
        preauth__unref(j->pa);
    free(j);
    pending_leave();
}

int register__derive(const char *password, unsigned iterations, storage_account_t *acct)
{
    int rc = hearth_scram_secret_new(HEARTH_SCRAM_SHA1, password, iterations, &acct->sha1);
    return rc ?: hearth_scram_secret_new(HEARTH_SCRAM_SHA256, password, iterations, &acct->sha256);
}

static void derive_work(uv_work_t *w)
{
    reg_job_t *j = w->data;
    j->rc = register__derive(j->password, j->iterations, &j->acct);
    explicit_bzero(j->password, strlen(j->password));
}

/* Maps a derivation failure: HEARTH_EINVAL is a password SASLprep refuses. */
static hearth_stanza_error_t derive_error(int rc, const char **text)
{
    if (rc == HEARTH_EINVAL) {
        *text = "password not allowed (control or unassigned characters)";
        return HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
    }
    *text = NULL;
    return HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR;
}

/* ---- before authentication ---- */

/* Pre-auth replies carry only type and id: the client has no address yet. inner may be NULL. */
static void preauth_send(preauth_t *c, const char *id, const char *type, const char *inner)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_printf(&b, "<iq type='%s'", type);
    if (id) {
        rc = rc ?: hearth_buf_append_str(&b, " id='");
        rc = rc ?: hearth_buf_append_escaped(&b, id, strlen(id));
        rc = rc ?: hearth_buf_append_str(&b, "'");
    }
    if (inner) {
        rc = rc ?: hearth_buf_append_str(&b, ">");
        rc = rc ?: hearth_buf_append_str(&b, inner);
        rc = rc ?: hearth_buf_append_str(&b, "</iq>");
    } else {
        rc = rc ?: hearth_buf_append_str(&b, "/>");
    }
    if (!rc)
        preauth__send(c, b.data, b.len);
    hearth_buf_free(&b);
}

/* The original payload is never echoed: it may hold a password (XEP-0077 §3.3). */
static void preauth_error(preauth_t *c, const char *id, hearth_stanza_error_t cond,
                          const char *text)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_stanza_error_write(&b, cond, text) == 0)
        preauth_send(c, id, "error", b.data);
    hearth_buf_free(&b);
}

/* The asking stream, while it is there and before authentication (its carrier clears conn
 * when it goes, authenticates or moves to another worker). */
static preauth_t *asking(const reg_job_t *j)
{
    return j->pa && j->pa->conn ? j->pa : NULL;
}

static void preauth_finish(reg_job_t *j, hearth_stanza_error_t cond, const char *text)
{
    preauth_t *c = asking(j);
    if (c) {
        if (cond == HEARTH_STANZA_ERR_NONE)
            preauth_send(c, j->id, "result", NULL);
        else
            preauth_error(c, j->id, cond, text);
    }
    job_free(j);
}

static void on_created(void *ud, int err)
{
    reg_job_t *j = ud;
    if (err == HEARTH_EEXISTS) {
        hlog_conn(LOG_INFO, j->conn_id, NULL, "registration of %s from %s: already exists", j->bare,
                  j->ip);
        preauth_finish(j, HEARTH_STANZA_ERR_CONFLICT, "that username is already registered");
    } else if (err) {
        hlog_conn(LOG_ERROR, j->conn_id, NULL, "registration of %s failed: %s", j->bare,
                  hearth_strerror(err));
        preauth_finish(j, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
    } else {
        hlog_conn(LOG_INFO, j->conn_id, NULL, "registered %s from %s", j->bare, j->ip);
        preauth_finish(j, HEARTH_STANZA_ERR_NONE, NULL);
    }
}

static void create_after_work(uv_work_t *w, int status)
{
    reg_job_t *j = w->data;
    const char *text = NULL;
    if (status || j->rc) {
        hearth_stanza_error_t cond =
            derive_error(status ? HEARTH_EAGAIN : j->rc, &text); /* cancelled: shutting down */
        preauth_finish(j, cond, text);
        return;
    }
    /* The account is created even when the asker has gone: it asked, and was counted. */
    int rc =
        storage_account_create(j->w->srv->storage, &j->w->storage_target, &j->acct, on_created, j);
    if (rc) {
        hlog_conn(LOG_ERROR, j->conn_id, NULL, "registration of %s not queued: %s", j->bare,
                  hearth_strerror(rc));
        preauth_finish(j,
                       rc == HEARTH_EAGAIN ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                           : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
                       NULL);
    }
}

static void preauth_form(preauth_t *c, const char *id)
{
    preauth_send(c, id, "result",
                 "<query xmlns='" HEARTH_NS_REGISTER "'><instructions>" INSTRUCTIONS
                 "</instructions><username/><password/></query>");
}

static void preauth_set(preauth_t *c, const char *id, hearth_xml_node_t *q, hearth_arena_t *arena)
{
    const settings_t *s = &c->w->set;
    if (hearth_xml_child(q, "remove", HEARTH_NS_REGISTER)) {
        /* §3.2: nothing to cancel for an entity that has not authenticated. */
        preauth_error(c, id, HEARTH_STANZA_ERR_UNEXPECTED_REQUEST,
                      "authenticate first to cancel a registration");
        return;
    }
    hearth_xml_node_t *un = hearth_xml_child(q, "username", HEARTH_NS_REGISTER);
    hearth_xml_node_t *pn = hearth_xml_child(q, "password", HEARTH_NS_REGISTER);
    const char *user = un ? hearth_xml_text(arena, un) : NULL;
    const char *pw = pn ? hearth_xml_text(arena, pn) : NULL;
    if (!user || !*user) {
        preauth_error(c, id, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "a username is required");
        return;
    }
    if (!pw) {
        preauth_error(c, id, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "a password is required");
        return;
    }
    char *node = NULL;
    const char *reason = NULL;
    if (hearth_jid_nodeprep(user, strlen(user), &node, &reason)) {
        char text[200];
        snprintf(text, sizeof(text), "invalid username: %s", reason ? reason : "not allowed");
        preauth_error(c, id, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, text);
        return;
    }
    if (!register__password_ok(s, pw)) {
        free(node);
        preauth_error(c, id, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "password too short");
        return;
    }
    if (pending_enter()) {
        free(node);
        hlog(LOG_WARN, "registration from %s refused: too many in progress", c->ip);
        preauth_error(c, id, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                      "too many registrations in progress; try again later");
        return;
    }
    int rc = rate_admit(c->ip, s->registration_rate_limit);
    if (rc) {
        free(node);
        pending_leave();
        hlog(LOG_INFO, "registration from %s refused: rate limit", c->ip);
        preauth_error(c, id, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                      rc == HEARTH_ELIMIT ? "too many registrations from this address; try later"
                                          : NULL);
        return;
    }
    reg_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        free(node);
        pending_leave();
        preauth_error(c, id, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        return;
    }
    j->w = c->w;
    j->pa = c;
    j->conn_id = c->id;
    preauth__ref(c);
    j->acct.username = node;
    j->iterations = s->scram_iterations;
    snprintf(j->ip, sizeof(j->ip), "%s", c->ip);
    j->id = id ? strdup(id) : NULL;
    j->password = strdup(pw);
    if (asprintf(&j->bare, "%s@%s", node, s->domain) < 0)
        j->bare = NULL;
    j->work.data = j;
    if ((id && !j->id) || !j->password || !j->bare ||
        uv_queue_work(&c->w->loop, &j->work, derive_work, create_after_work)) {
        job_free(j);
        preauth_error(c, id, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
    }
}

/* Whether 'to' on a pre-auth IQ names this server. */
static int to_us(const preauth_t *c, const char *to)
{
    char *dom = NULL;
    int ok =
        hearth_jid_nameprep(to, strlen(to), &dom, NULL) == 0 && strcmp(dom, c->w->set.domain) == 0;
    free(dom);
    return ok;
}

static int preauth_iq(preauth_t *c, hearth_xml_node_t *iq, hearth_arena_t *arena)
{
    hearth_xml_node_t *q = hearth_xml_first_element(iq);
    if (!q || strcmp(q->name, "query") || strcmp(q->ns, HEARTH_NS_REGISTER))
        return 0;
    const char *to = hearth_xml_attr(iq, "to");
    if (to && !to_us(c, to))
        return 0;
    const char *type = hearth_xml_attr(iq, "type");
    const char *id = hearth_xml_attr(iq, "id");
    if (type && (!strcmp(type, "result") || !strcmp(type, "error")))
        return 1; /* we asked nothing: dropped, never answered */
    int get = type && !strcmp(type, "get"), set = type && !strcmp(type, "set");
    if ((!get && !set) || !id || hearth_xml_count_elements(iq) != 1) {
        preauth_error(c, id, HEARTH_STANZA_ERR_BAD_REQUEST,
                      "an IQ get or set has an id and exactly one payload");
        return 1;
    }
    const settings_t *s = &c->w->set;
    if (!s->registration_open) {
        /* §3.1: a host that does not support in-band registration. */
        preauth_error(c, id, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE,
                      "in-band registration is closed on this server");
        return 1;
    }
    if (!allowed_here(c)) {
        /* §3.3 and §10: the channel is not considered safe enough; retry after STARTTLS. */
        preauth_error(c, id, HEARTH_STANZA_ERR_NOT_AUTHORIZED,
                      "registration needs an encrypted stream: start TLS first");
        return 1;
    }
    if (get)
        preauth_form(c, id);
    else
        preauth_set(c, id, q, arena);
    return 1;
}

static int preauth_features(preauth_t *c, hearth_buf_t *out)
{
    return allowed_here(c)
               ? hearth_buf_append_str(out, "<register xmlns='" HEARTH_NS_REGISTER_FEATURE "'/>")
               : 0;
}

/* ---- after authentication ---- */

static void reply_error(iq_ctx_t *ctx, hearth_stanza_error_t cond, const char *text)
{
    hearth_xml_remove(ctx->payload); /* no password echoed back (§3.3) */
    iq_error(ctx, cond, text);
}

/* Answers the job's deferred IQ with an error and ends the job. */
static void job_fail(reg_job_t *j, hearth_stanza_error_t cond, const char *text)
{
    iq_deferred_error(j->d, cond, text);
    j->d = NULL;
    job_free(j);
}

/* A storage failure on an existing account's request, as the requester sees it. */
static hearth_stanza_error_t account_error(int err)
{
    return err == HEARTH_ENOTFOUND ? HEARTH_STANZA_ERR_REGISTRATION_REQUIRED
                                   : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR;
}

static void on_secrets(void *ud, int err)
{
    reg_job_t *j = ud;
    if (err) {
        hlog_conn(LOG_ERROR, j->d->s->id, j->bare, "password change failed: %s",
                  hearth_strerror(err));
        job_fail(j, account_error(err), NULL);
        return;
    }
    hlog_conn(LOG_INFO, j->d->s->id, j->bare, "password changed for %s", j->bare);
    iq_deferred_result(j->d, NULL);
    j->d = NULL;
    job_free(j);
}

static void change_after_work(uv_work_t *w, int status)
{
    reg_job_t *j = w->data;
    const char *text = NULL;
    if (status || j->rc) {
        hearth_stanza_error_t cond = derive_error(status ? HEARTH_EAGAIN : j->rc, &text);
        job_fail(j, cond, text);
        return;
    }
    int rc =
        storage_account_set_secrets(j->w->srv->storage, &j->w->storage_target, j->acct.username,
                                    &j->acct.sha1, &j->acct.sha256, on_secrets, j);
    if (rc)
        job_fail(j,
                 rc == HEARTH_EAGAIN ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                     : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
                 NULL);
}

static void on_deleted(void *ud, int err)
{
    reg_job_t *j = ud;
    if (err) {
        hlog_conn(LOG_ERROR, j->d->s->id, j->bare, "account removal failed: %s",
                  hearth_strerror(err));
        job_fail(j, account_error(err), NULL);
        return;
    }
    hlog_conn(LOG_INFO, j->d->s->id, j->bare, "account %s removed", j->bare);
    /* The result is queued before the stream errors of §3.2 that close the sessions. */
    iq_deferred_result(j->d, NULL);
    j->d = NULL;
    user__account_deleted(j->w, j->bare);
    job_free(j);
}

/* A job for the session's own account (j->d holds the connection from here on), counted in
 * reg_pending. NULL when it cannot be made, nothing left counted: the caller answers. */
static reg_job_t *session_job(iq_ctx_t *ctx)
{
    session_t *c = ctx->s;
    reg_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        pending_leave();
        return NULL;
    }
    j->w = c->w;
    j->iterations = c->w->set.scram_iterations;
    j->acct.username = strdup(c->jid.node);
    j->bare = strdup(c->user->bare);
    j->d = iq_defer(ctx);
    if (!j->acct.username || !j->bare || !j->d) {
        job_free(j);
        return NULL;
    }
    return j;
}

static void remove_account(iq_ctx_t *ctx)
{
    if (pending_enter()) {
        reply_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, "busy; try again later");
        return;
    }
    reg_job_t *j = session_job(ctx);
    if (!j) {
        reply_error(ctx, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        return;
    }
    int rc = storage_account_delete(j->w->srv->storage, &j->w->storage_target, j->acct.username,
                                    on_deleted, j);
    if (rc) {
        iq_deferred_error(j->d,
                          rc == HEARTH_EAGAIN ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                              : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
                          NULL);
        j->d = NULL;
        job_free(j);
    }
}

static void change_password(iq_ctx_t *ctx, const char *pw)
{
    if (pending_enter()) {
        reply_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, "busy; try again later");
        return;
    }
    reg_job_t *j = session_job(ctx);
    if (j && !(j->password = strdup(pw))) {
        job_free(j); /* its deferred reply is dropped: the error below answers instead */
        j = NULL;
    }
    if (!j) {
        reply_error(ctx, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        return;
    }
    j->work.data = j;
    if (uv_queue_work(&j->w->loop, &j->work, derive_work, change_after_work)) {
        iq_deferred_error(j->d, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        j->d = NULL;
        job_free(j);
    }
}

static void register_iq(iq_ctx_t *ctx)
{
    session_t *c = ctx->s;
    hearth_arena_t *a = ctx->arena;
    hearth_xml_node_t *q = ctx->payload;
    if (!ctx->set) {
        /* §3.1: an authenticated entity is registered. */
        hearth_xml_node_t *r = iq_result(ctx);
        hearth_xml_node_t *rq = hearth_xml_add_child(a, r, "query", HEARTH_NS_REGISTER);
        hearth_xml_add_child(a, rq, "registered", NULL);
        hearth_xml_node_t *u = hearth_xml_add_child(a, rq, "username", NULL);
        hearth_xml_add_text(a, u, c->jid.node, strlen(c->jid.node));
        iq_send(ctx, r);
        return;
    }
    if (hearth_xml_child(q, "remove", HEARTH_NS_REGISTER)) {
        if (hearth_xml_count_elements(q) != 1) /* §3.2 */
            reply_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST,
                        "<remove/> must be the only child of <query/>");
        else
            remove_account(ctx);
        return;
    }
    hearth_xml_node_t *un = hearth_xml_child(q, "username", HEARTH_NS_REGISTER);
    hearth_xml_node_t *pn = hearth_xml_child(q, "password", HEARTH_NS_REGISTER);
    if (!un || !pn || hearth_xml_count_elements(q) != 2) {
        /* §3.3: incomplete; and a new account cannot be registered from a session. */
        reply_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST,
                    "a password change has <username/> and <password/>; a removal <remove/>");
        return;
    }
    const char *user = hearth_xml_text(a, un);
    const char *pw = hearth_xml_text(a, pn);
    char *node = NULL;
    int mine = user && hearth_jid_nodeprep(user, strlen(user), &node, NULL) == 0 &&
               strcmp(node, c->jid.node) == 0;
    free(node);
    if (!mine) {
        reply_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "the username is not this account's");
        return;
    }
    if (!pw || !register__password_ok(&c->w->set, pw)) {
        reply_error(ctx, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "password too short");
        return;
    }
    change_password(ctx, pw);
}

static const iq_route_t register_iqs[] = {
    {HEARTH_NS_REGISTER, "query", IQ_TO_SERVER | IQ_TO_SELF, register_iq},
    {NULL, NULL, 0, NULL},
};
static const char *const register_server_features[] = {HEARTH_NS_REGISTER, NULL};

const module_t module_register = {
    .name = "register",
    .iqs = register_iqs,
    .server_features = register_server_features,
    .init = register_init,
    .preauth_iq = preauth_iq,
    .preauth_features = preauth_features,
};
