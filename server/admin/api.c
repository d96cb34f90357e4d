/* The REST API under /api/v1/ (JSON through jansson): status, users, sessions, announcements
 * and API keys, with the OpenAPI document that describes them. Runs on the worker that read
 * the request; accounts through storage, users' sessions on their home workers through inboxes
 * (a call there, an answer back), never by reading another worker's state. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/jid.h"

#include "admin/internal.h"
#include "modules/im.h"

/* ---- paths and queries ---- */

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* One path segment or query value, percent-decoded (plus as space when form): malloc'd, NULL
 * when malformed or when it decodes to a NUL, or to a slash unless slash (a full JID). */
char *admin__decode(const char *s, size_t n, int form, int slash)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n || hexval((unsigned char)s[i + 1]) < 0 ||
                hexval((unsigned char)s[i + 2]) < 0) {
                free(out);
                return NULL;
            }
            c = hexval((unsigned char)s[i + 1]) * 16 + hexval((unsigned char)s[i + 2]);
            i += 2;
        } else if (form && c == '+') {
            c = ' ';
        }
        if (!c || (c == '/' && !slash)) {
            free(out);
            return NULL;
        }
        *o++ = (char)c;
    }
    *o = '\0';
    return out;
}

/* The value of name in a query string, decoded (malloc'd); NULL when absent; *bad when
 * malformed. */
char *admin__query_get(const char *q, const char *name, int *bad)
{
    size_t nl = strlen(name);
    while (q && *q) {
        size_t len = strcspn(q, "&");
        if (len > nl && !strncmp(q, name, nl) && q[nl] == '=') {
            char *v = admin__decode(q + nl + 1, len - nl - 1, 1, 1);
            if (!v)
                *bad = 1;
            return v;
        }
        q += len;
        if (*q)
            q++;
    }
    return NULL;
}

int admin__query_uint(const char *q, const char *name, long dflt, long max, long *out)
{
    int bad = 0;
    char *v = admin__query_get(q, name, &bad);
    *out = dflt;
    if (bad)
        return -1;
    if (!v)
        return 0;
    char *end = NULL;
    long x = *v && isdigit((unsigned char)*v) ? strtol(v, &end, 10) : -1;
    int ok = end && !*end && x >= 0 && x <= max;
    free(v);
    if (!ok)
        return -1;
    *out = x;
    return 0;
}

static json_t *jid_of(const char *node)
{
    return json_sprintf("%s@%s", node, admin__st.srv->set.domain);
}

/* ---- calls on a user's home worker ---- */

void admin__home_call_free(home_call_t *hc)
{
    hearth_jid_clear(&hc->jid);
    json_decref(hc->result);
    if (hc->arg_free)
        hc->arg_free(hc->arg);
    free(hc);
}

static void back_run(worker_t *w, void *arg)
{
    (void)w;
    home_call_t *hc = arg;
    hc->back(hc);
    admin__home_call_free(hc);
}

/* From the home worker: the answer goes back to the request's worker. */
void admin__home_return(home_call_t *hc)
{
    if (worker__call(hc->ar->w, back_run, NULL, hc))
        hlog(LOG_ERROR, "admin: an answer could not go back to worker %u", hc->ar->w->index);
}

static void home_run(worker_t *w, void *arg)
{
    home_call_t *hc = arg;
    hc->at_home(w, hc);
}

void admin__at_home(admin_req_t *ar, hearth_jid_t *jid, void (*fn)(worker_t *, home_call_t *),
                    void (*back)(home_call_t *))
{
    home_call_t *hc = calloc(1, sizeof(*hc));
    if (!hc) {
        hearth_jid_clear(jid);
        admin__reply_error(ar, 500, "out of memory", NULL);
        return;
    }
    hc->ar = ar;
    hc->jid = *jid;
    *jid = (hearth_jid_t)HEARTH_JID_INIT;
    hc->at_home = fn;
    hc->back = back;
    hc->home = worker__home(ar->w->srv, hc->jid.bare);
    if (worker__call(hc->home, home_run, NULL, hc)) {
        admin__home_call_free(hc);
        admin__reply_error(ar, 503, "the server is busy; try again", NULL);
    }
}

/* On s's worker: what describes a session (the console's sessions page shows all of it). */
static json_t *session_json(session_t *s)
{
    session_info_t in;
    session__describe(s, &in);
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:i, s:s, s:s, s:s, s:b, s:b, s:I}", "jid",
                     s->jid.full, "resource", s->jid.resource ? s->jid.resource : "", "state",
                     s->state == SESSION_DETACHED ? "detached" : "bound", "transport",
                     s->transport ? s->transport : "other", "available", s->available, "priority",
                     s->priority, "ip", in.ip, "tls", in.tls, "sasl", in.mech, "sm", in.sm,
                     "resumable", in.resumable, "idle_s", (json_int_t)(in.idle_ms / 1000));
}

static int session_live(const session_t *s)
{
    return s->state != SESSION_ENDED && !s->ending;
}

/* ---- gather from every worker ---- */

typedef struct gather_item {
    admin_gather_t *g;
    unsigned i;
} gather_item_t;

static void gather_back(worker_t *w, void *arg)
{
    (void)w;
    admin_gather_t *g = arg;
    if (++g->done == g->n)
        g->finish(g);
}

static void gather_run(worker_t *w, void *arg)
{
    gather_item_t *it = arg;
    admin_gather_t *g = it->g;
    g->each(w, g, it->i);
    free(it);
    if (worker__call(g->ar->w, gather_back, NULL, g))
        hlog(LOG_ERROR, "admin: a worker's part could not go back");
}

void admin__gather_free(admin_gather_t *g)
{
    for (unsigned i = 0; g->parts && i < g->n; i++)
        json_decref(g->parts[i]);
    free(g->parts);
    if (g->arg_free)
        g->arg_free(g->arg);
    free(g);
}

int admin__gather(admin_req_t *ar, void (*each)(worker_t *, admin_gather_t *, unsigned),
                  void (*finish)(admin_gather_t *), void *arg, void (*arg_free)(void *))
{
    server_t *srv = ar->w->srv;
    admin_gather_t *g = calloc(1, sizeof(*g));
    if (g)
        g->parts = calloc(srv->nworkers, sizeof(*g->parts));
    if (!g || !g->parts) {
        if (g)
            free(g->parts);
        free(g);
        if (arg_free)
            arg_free(arg);
        admin__reply_error(ar, 500, "out of memory", NULL);
        return HEARTH_ENOMEM;
    }
    *g = (admin_gather_t){.ar = ar,
                          .n = srv->nworkers,
                          .each = each,
                          .finish = finish,
                          .arg = arg,
                          .arg_free = arg_free,
                          .parts = g->parts};
    for (unsigned i = 0; i < srv->nworkers; i++) {
        gather_item_t *it = malloc(sizeof(*it));
        if (it)
            *it = (gather_item_t){g, i};
        /* A part that cannot be asked for counts as given (empty): the answer still comes. */
        if (!it || worker__call(srv->workers[i], gather_run, free, it))
            gather_back(ar->w, g);
    }
    return 0;
}

/* ---- status ---- */

static void count_sessions(worker_t *w, admin_gather_t *g, unsigned i)
{
    json_int_t bound = 0, detached = 0, users = 0;
    STRMAP_FOREACH(&w->users, e)
    {
        user_t *u = e->value;
        users++;
        for (session_t *s = u->sessions; s; s = s->user_next) {
            if (!session_live(s))
                continue;
            if (s->state == SESSION_DETACHED)
                detached++;
            else
                bound++;
        }
    }
    uv_mutex_lock(&w->inbox_lock);
    json_int_t inbox = w->inbox_len;
    uv_mutex_unlock(&w->inbox_lock);
    g->parts[i] = json_pack("{s:I, s:I, s:I, s:I, s:I}", "bound", bound, "detached", detached,
                            "users", users, "inbox", inbox, "runq", (json_int_t)w->runq_len);
}

static void status_done(admin_gather_t *g)
{
    admin_req_t *ar = g->ar;
    server_t *srv = ar->w->srv;
    json_int_t bound = 0, detached = 0;
    for (unsigned i = 0; i < g->n; i++) {
        bound += json_integer_value(json_object_get(g->parts[i], "bound"));
        detached += json_integer_value(json_object_get(g->parts[i], "detached"));
    }
    uint64_t rss, hwm;
    admin__memory(&rss, &hwm);
    storage_stats_t ss;
    storage__stats(srv->storage, &ss);
    json_t *j = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:i, s:i, s:{s:I, s:I}, s:{s:I, s:I, s:I, s:I}}", "version",
        HEARTH_VERSION, "domain", srv->set.domain, "uptime_s",
        (json_int_t)((uv_hrtime() / 1000000 - admin__st.started_ms) / 1000), "sessions_online",
        bound, "sessions_detached", detached, "connections",
        __atomic_load_n(&srv->live_conns, __ATOMIC_RELAXED), "workers", (int)srv->nworkers,
        "memory", "rss_bytes", (json_int_t)rss, "peak_bytes", (json_int_t)hwm, "storage", "batches",
        (json_int_t)ss.batches, "requests", (json_int_t)ss.requests, "commits",
        (json_int_t)ss.commits, "outstanding", (json_int_t)storage_outstanding(srv->storage));
    admin__gather_free(g);
    admin__reply_json(ar, 200, j);
}

/* ---- users ---- */

typedef struct list_args {
    char *search;
    long offset, limit;
} list_args_t;

/* One page read by the database (storage_account_page), not the whole list filtered here. */
static void users_listed(void *ud, int err, const storage_account_t *accts, size_t n, int64_t total)
{
    admin_req_t *ar = ud;
    list_args_t *la = ar->op;
    ar->op = NULL;
    if (err) {
        free(la->search);
        free(la);
        admin__reply_error(ar, 500, "cannot list the accounts", NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr,
                              json_pack("{s:s, s:o, s:b, s:I}", "username", accts[i].username,
                                        "jid", jid_of(accts[i].username), "admin", accts[i].admin,
                                        "created_at", (json_int_t)accts[i].created_at));
    json_t *j = json_pack("{s:I, s:I, s:I, s:o}", "total", (json_int_t)total, "offset",
                          (json_int_t)la->offset, "limit", (json_int_t)la->limit, "users", arr);
    free(la->search);
    free(la);
    admin__reply_json(ar, 200, j);
}

static void users_list(admin_req_t *ar)
{
    list_args_t *la = calloc(1, sizeof(*la));
    int bad = 0;
    if (!la) {
        admin__reply_error(ar, 500, "out of memory", NULL);
        return;
    }
    la->search = admin__query_get(ar->query, "search", &bad);
    if (!la->search && !bad) /* q, as GET /rooms has it */
        la->search = admin__query_get(ar->query, "q", &bad);
    if (bad || admin__query_uint(ar->query, "offset", 0, 1L << 40, &la->offset) ||
        admin__query_uint(ar->query, "limit", 100, ADMIN_PAGE_MAX, &la->limit)) {
        free(la->search);
        free(la);
        admin__reply_error(ar, 400, "bad search, offset or limit (limit at most 1000)", NULL);
        return;
    }
    ar->op = la;
    if (storage_account_page(ar->w->srv->storage, &ar->w->storage_target, la->search, la->offset,
                             (size_t)la->limit, users_listed, ar)) {
        ar->op = NULL;
        free(la->search);
        free(la);
        admin__reply_error(ar, 503, "storage is busy; try again", NULL);
    }
}

static void user_created(admin_req_t *ar, int err)
{
    json_t *j = ar->op;
    ar->op = NULL;
    if (!err) {
        hlog(LOG_INFO, "admin: %s created %s", ar->who,
             json_string_value(json_object_get(j, "jid")));
        admin__reply_json(ar, 201, j);
        return;
    }
    json_decref(j);
    if (err == HEARTH_EEXISTS)
        admin__reply_error(ar, 409, "that account exists", NULL);
    else if (err == HEARTH_EINVAL)
        admin__reply_error(ar, 400, "password refused (control or unassigned characters)", NULL);
    else if (err == HEARTH_EAGAIN)
        admin__reply_error(ar, 503, "busy; try again", NULL);
    else
        admin__reply_error(ar, 500, hearth_strerror(err), NULL);
}

static const char *password_of(json_t *b, admin_req_t *ar)
{
    const char *pw = json_string_value(json_object_get(b, "password"));
    if (!pw || !*pw) {
        admin__reply_error(ar, 400, "password is a required non-empty string", NULL);
        return NULL;
    }
    if (strlen(pw) < ar->w->set.min_password) {
        admin__reply_error(ar, 400, "password too short (registration.min_password)", NULL);
        return NULL;
    }
    return pw;
}

static void user_create(admin_req_t *ar)
{
    json_t *b = admin__body(ar);
    if (!b)
        return;
    const char *name = json_string_value(json_object_get(b, "username"));
    json_t *adm = json_object_get(b, "admin");
    char *node = name ? admin__node_of(name) : NULL;
    if (!node || (adm && !json_is_boolean(adm))) {
        free(node);
        json_decref(b);
        admin__reply_error(ar, 400, "username must be a valid name; admin a boolean", NULL);
        return;
    }
    const char *pw = password_of(b, ar);
    if (!pw) {
        free(node);
        json_decref(b);
        return;
    }
    int admin = adm && json_is_true(adm);
    ar->op = json_pack("{s:s, s:o, s:b}", "username", node, "jid", jid_of(node), "admin", admin);
    int rc = ar->op ? admin__account_create(ar, node, pw, admin, user_created) : HEARTH_ENOMEM;
    free(node);
    json_decref(b);
    if (rc)
        user_created(ar, rc);
}

static void user_sessions_here(worker_t *h, home_call_t *hc)
{
    hc->result = json_array();
    user_t *u = worker__user(h, hc->jid.bare, 0);
    for (session_t *s = u ? u->sessions : NULL; s && hc->result; s = s->user_next)
        if (session_live(s))
            json_array_append_new(hc->result, session_json(s));
    admin__home_return(hc);
}

static void user_sessions_back(home_call_t *hc)
{
    admin_req_t *ar = hc->ar;
    json_t *j = ar->op;
    ar->op = NULL;
    json_object_set_new(j, "online",
                        json_integer(hc->result ? (json_int_t)json_array_size(hc->result) : 0));
    json_object_set_new(j, "sessions", hc->result ? json_incref(hc->result) : json_array());
    admin__reply_json(ar, 200, j);
}

static void user_got(void *ud, int err, const storage_account_t *acct)
{
    admin_req_t *ar = ud;
    if (err == HEARTH_ENOTFOUND) {
        admin__reply_error(ar, 404, "no such user", NULL);
        return;
    }
    if (err) {
        admin__reply_error(ar, 500, "cannot read the account", NULL);
        return;
    }
    hearth_jid_t jid = HEARTH_JID_INIT;
    if (hearth_jid_make(acct->username, ar->w->set.domain, NULL, &jid, NULL)) {
        admin__reply_error(ar, 500, "stored name is not a JID", NULL);
        return;
    }
    ar->op =
        json_pack("{s:s, s:s, s:b, s:b, s:I}", "username", acct->username, "jid", jid.bare, "admin",
                  acct->admin, "locked", acct->locked, "created_at", (json_int_t)acct->created_at);
    admin__at_home(ar, &jid, user_sessions_here, user_sessions_back);
}

void admin__user_get(admin_req_t *ar, const char *node)
{
    if (storage_account_get(ar->w->srv->storage, &ar->w->storage_target, node, user_got, ar))
        admin__reply_error(ar, 503, "storage is busy; try again", NULL);
}

/* Deletion as in-band <remove/> (XEP-0077 §3.2, register.c): the rows go in one storage call
 * from the home worker, then user__account_deleted there ends the sessions and tells the
 * contacts, and every worker forgets the account's grants. */
static void user_deleted_here(void *ud, int err)
{
    home_call_t *hc = ud;
    hc->err = err;
    if (!err) {
        hlog(LOG_INFO, "admin: %s deleted account %s", hc->ar->who, hc->jid.bare);
        user__account_deleted(hc->home, hc->jid.bare);
    }
    admin__home_return(hc);
}

static void user_delete_here(worker_t *h, home_call_t *hc)
{
    int rc = storage_account_delete(h->srv->storage, &h->storage_target, hc->jid.node,
                                    user_deleted_here, hc);
    if (rc) {
        hc->err = rc;
        admin__home_return(hc);
    }
}

static void user_delete_back(home_call_t *hc)
{
    if (hc->err == HEARTH_ENOTFOUND)
        admin__reply_error(hc->ar, 404, "no such user", NULL);
    else if (hc->err)
        admin__reply_error(hc->ar, 503, "storage failed; try again", NULL);
    else {
        admin__console_forget(hc->jid.node); /* a deleted administrator's console logins end */
        admin__reply_json(hc->ar, 204, NULL);
    }
}

static void user_delete(admin_req_t *ar, const char *node)
{
    hearth_jid_t jid = HEARTH_JID_INIT;
    if (hearth_jid_make(node, ar->w->set.domain, NULL, &jid, NULL)) {
        admin__reply_error(ar, 404, "no such user", NULL);
        return;
    }
    admin__at_home(ar, &jid, user_delete_here, user_delete_back);
}

static void password_set(admin_req_t *ar, int err)
{
    if (!err) {
        hlog(LOG_INFO, "admin: %s changed the password of %s", ar->who, ar->user);
        admin__reply_json(ar, 204, NULL);
    } else if (err == HEARTH_ENOTFOUND)
        admin__reply_error(ar, 404, "no such user", NULL);
    else if (err == HEARTH_EINVAL)
        admin__reply_error(ar, 400, "password refused (control or unassigned characters)", NULL);
    else
        admin__reply_error(ar, 503, "try again", NULL);
}

static void user_password(admin_req_t *ar, const char *node)
{
    json_t *b = admin__body(ar);
    if (!b)
        return;
    const char *pw = password_of(b, ar);
    if (!pw) {
        json_decref(b);
        return;
    }
    int rc = (ar->user = strdup(node)) ? admin__account_password(ar, node, pw, password_set)
                                       : HEARTH_ENOMEM;
    json_decref(b);
    if (rc)
        password_set(ar, rc);
}

/* ---- sessions ---- */

static void list_sessions(worker_t *w, admin_gather_t *g, unsigned i)
{
    json_t *arr = json_array();
    STRMAP_FOREACH(&w->users, e)
    {
        user_t *u = e->value;
        for (session_t *s = u->sessions; s && arr; s = s->user_next)
            if (session_live(s))
                json_array_append_new(arr, session_json(s));
    }
    g->parts[i] = arr;
}

static void sessions_done(admin_gather_t *g)
{
    admin_req_t *ar = g->ar;
    json_t *all = json_array();
    for (unsigned i = 0; i < g->n; i++)
        json_array_extend(all, g->parts[i]);
    admin__gather_free(g);
    admin__reply_json(
        ar, 200,
        json_pack("{s:I, s:o}", "count", (json_int_t)json_array_size(all), "sessions", all));
}

static void kick_here(worker_t *h, home_call_t *hc)
{
    user_t *u = worker__user(h, hc->jid.bare, 0);
    for (session_t *s = u ? u->sessions : NULL; s; s = s->user_next) {
        if (!session_live(s) || (hc->jid.resource && strcmp(s->jid.resource, hc->jid.resource)))
            continue;
        session__end(s, HEARTH_STREAM_ERR_POLICY_VIOLATION, "ended by an administrator");
        hc->count++;
    }
    admin__home_return(hc);
}

static void kick_back(home_call_t *hc)
{
    if (!hc->count) {
        admin__reply_error(hc->ar, 404, "no such session", NULL);
        return;
    }
    hlog(LOG_INFO, "admin: %s ended %d session(s) of %s", hc->ar->who, hc->count, hc->jid.full);
    admin__reply_json(hc->ar, 200, json_pack("{s:i}", "ended", hc->count));
}

static void kick(admin_req_t *ar, const char *jid_s)
{
    hearth_jid_t jid = HEARTH_JID_INIT;
    if (hearth_jid_parse(jid_s, strlen(jid_s), &jid, NULL) || !jid.node ||
        strcmp(jid.domain, ar->w->set.domain)) {
        hearth_jid_clear(&jid);
        admin__reply_error(ar, 404, "no such session", NULL);
        return;
    }
    admin__at_home(ar, &jid, kick_here, kick_back);
}

/* ---- announce ---- */

static void announce_here(worker_t *w, admin_gather_t *g, unsigned i)
{
    hearth_bytes_t *msg = g->arg;
    json_int_t n = 0;
    STRMAP_FOREACH(&w->users, e)
    {
        user_t *u = e->value;
        for (session_t *s = u->sessions; s; s = s->user_next)
            if (session_live(s) && s->available) {
                session__send_addressed(s, msg, s->jid.full);
                n++;
            }
    }
    g->parts[i] = json_integer(n);
}

static void announce_done(admin_gather_t *g)
{
    admin_req_t *ar = g->ar;
    json_int_t n = 0;
    for (unsigned i = 0; i < g->n; i++)
        n += json_integer_value(g->parts[i]);
    admin__gather_free(g);
    hlog(LOG_INFO, "admin: %s announced a message to %lld session(s)", ar->who, (long long)n);
    admin__reply_json(ar, 200, json_pack("{s:I}", "sent", n));
}

static void bytes_free(void *b)
{
    hearth_bytes_unref(b);
}

static void announce(admin_req_t *ar)
{
    json_t *b = admin__body(ar);
    if (!b)
        return;
    const char *body = json_string_value(json_object_get(b, "body"));
    json_t *subj = json_object_get(b, "subject");
    const char *subject = json_string_value(subj);
    if (!body || !*body || (subj && !subject) || strlen(body) > ADMIN_ANNOUNCE_MAX ||
        (subject && strlen(subject) > ADMIN_ANNOUNCE_MAX)) {
        json_decref(b);
        admin__reply_error(ar, 400, "body is a required string; subject a string (8 KiB each)",
                           NULL);
        return;
    }
    hearth_buf_t x = HEARTH_BUF_INIT;
    const char *dom = ar->w->set.domain;
    int rc = hearth_buf_append_str(&x, "<message from='");
    rc = rc ?: hearth_buf_append_escaped(&x, dom, strlen(dom));
    rc = rc ?: hearth_buf_append_str(&x, "' type='headline'>");
    if (subject) {
        rc = rc ?: hearth_buf_append_str(&x, "<subject>");
        rc = rc ?: hearth_buf_append_escaped(&x, subject, strlen(subject));
        rc = rc ?: hearth_buf_append_str(&x, "</subject>");
    }
    rc = rc ?: hearth_buf_append_str(&x, "<body>");
    rc = rc ?: hearth_buf_append_escaped(&x, body, strlen(body));
    rc = rc ?: hearth_buf_append_str(&x, "</body></message>");
    hearth_bytes_t *msg = rc ? NULL : hearth_bytes_new(x.data, x.len);
    hearth_buf_free(&x);
    json_decref(b);
    if (!msg) {
        admin__reply_error(ar, 500, "out of memory", NULL);
        return;
    }
    admin__gather(ar, announce_here, announce_done, msg, bytes_free);
}

/* ---- the OpenAPI document ---- */

static const char OPENAPI[] =
#include "admin/openapi.inc"
    ;

/* ---- routing ---- */

/* 405 with the methods the path takes. */
void admin__not_allowed(admin_req_t *ar, const char *allow)
{
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "Allow: %s\r\n", allow);
    admin__reply_error(ar, 405, "method not allowed here", hdr);
}

/* The segment after prefix in p, decoded, when p is prefix + one segment + tail exactly. */
char *admin__segment(const char *p, const char *prefix, const char *tail, int slash)
{
    size_t pl = strlen(prefix);
    if (strncmp(p, prefix, pl))
        return NULL;
    p += pl;
    size_t n = strcspn(p, "/");
    if (!n || strcmp(p + n, tail))
        return NULL;
    return admin__decode(p, n, 0, slash);
}

void admin__api(admin_req_t *ar)
{
    const char *m = ar->method, *p = ar->path;
    int get = !strcmp(m, "GET"), post = !strcmp(m, "POST"), del = !strcmp(m, "DELETE"),
        put = !strcmp(m, "PUT");
    char *seg = NULL;
    if (strncmp(p, "/api/v1/", 8)) {
        admin__reply_error(ar, 404, "no such resource", NULL);
        return;
    }
    p += 7;
    if (admin__properties(ar, p) || admin__rooms(ar, p) || admin__rosters(ar, p) ||
        admin__certificate(ar, p)) {
        ; /* answered there */
    } else if (!strcmp(p, "/status")) {
        if (!get)
            admin__not_allowed(ar, "GET");
        else
            admin__gather(ar, count_sessions, status_done, NULL, NULL);
    } else if (!strcmp(p, "/openapi.json")) {
        json_t *doc = get ? json_loads(OPENAPI, 0, NULL) : NULL;
        if (!get)
            admin__not_allowed(ar, "GET");
        else if (!doc)
            admin__reply_error(ar, 500, "the OpenAPI document is broken", NULL);
        else
            admin__reply_json(ar, 200, doc);
    } else if (!strcmp(p, "/users")) {
        if (get)
            users_list(ar);
        else if (post)
            user_create(ar);
        else
            admin__not_allowed(ar, "GET, POST");
    } else if ((seg = admin__segment(p, "/users/", "/password", 0))) {
        char *node = admin__node_of(seg);
        if (!put)
            admin__not_allowed(ar, "PUT");
        else if (!node)
            admin__reply_error(ar, 404, "no such user", NULL);
        else
            user_password(ar, node);
        free(node);
    } else if ((seg = admin__segment(p, "/users/", "", 0))) {
        char *node = admin__node_of(seg);
        int patch = !strcmp(m, "PATCH");
        if (!get && !del && !patch)
            admin__not_allowed(ar, "GET, PATCH, DELETE");
        else if (!node)
            admin__reply_error(ar, 404, "no such user", NULL);
        else if (get)
            admin__user_get(ar, node);
        else if (patch)
            admin__user_patch(ar, node);
        else
            user_delete(ar, node);
        free(node);
    } else if (!strcmp(p, "/sessions")) {
        if (!get)
            admin__not_allowed(ar, "GET");
        else
            admin__gather(ar, list_sessions, sessions_done, NULL, NULL);
    } else if ((seg = admin__segment(p, "/sessions/", "", 1))) {
        if (!del)
            admin__not_allowed(ar, "DELETE");
        else
            kick(ar, seg);
    } else if (!strcmp(p, "/announce")) {
        if (!post)
            admin__not_allowed(ar, "POST");
        else
            announce(ar);
    } else if (!strcmp(p, "/keys")) {
        if (get)
            admin__key_list(ar);
        else if (post)
            admin__key_create(ar);
        else
            admin__not_allowed(ar, "GET, POST");
    } else if (!strncmp(p, "/keys/", 6) && !strchr(p + 6, '/')) {
        if (!del)
            admin__not_allowed(ar, "DELETE");
        else
            admin__key_delete(ar, ar->path + 7 + 6);
    } else if (!admin__api_more(ar, p)) {
        admin__reply_error(ar, 404, "no such resource", NULL);
    }
    free(seg);
}
