/* The router (core/router.h): stanzas from bound sessions get 'from' stamped and 'to' checked,
 * then go to the server itself (the module registry), to a service hosted here, or serialised
 * once to the addressed account's home worker; there, once the account's state is loaded, the
 * hooks for the stanza's kind take it. Bounces are built where a stanza is parsed. */
#include <stdlib.h>
#include <string.h>

#include "hearth/ns.h"

#include "core/hooks.h"
#include "core/log.h"
#include "core/module.h"
#include "core/router.h"
#include "core/user.h"

#define BARE_MAX 3072 /* a prepared bare JID: two parts of 1023 bytes each, and the '@' */

/* ---- services ---- */

#define SERVICES_MAX 8
static router_service_t services[SERVICES_MAX];
static unsigned nservices;

int router__add_service(const router_service_t *svc)
{
    if (nservices == SERVICES_MAX)
        return HEARTH_ELIMIT;
    services[nservices++] = *svc;
    return 0;
}

const router_service_t *router__service(unsigned i)
{
    return i < nservices ? &services[i] : NULL;
}

void router__clear(void)
{
    nservices = 0;
}

/* The service whose domain is the domain part of jid (full, bare or a domain), or NULL. */
static const router_service_t *service_of(const char *jid)
{
    const char *at = strchr(jid, '@');
    const char *dom = at ? at + 1 : jid;
    size_t n = strcspn(dom, "/");
    for (unsigned i = 0; i < nservices; i++)
        if (strlen(services[i].domain) == n && !strncmp(dom, services[i].domain, n))
            return &services[i];
    return NULL;
}

/* ---- stanzas ---- */

stanza_kind_t router__kind(const char *name)
{
    if (!strcmp(name, "message"))
        return STANZA_MESSAGE;
    if (!strcmp(name, "presence"))
        return STANZA_PRESENCE;
    return STANZA_IQ;
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

void router__parse(const char *bytes, size_t len, stanza_fn fn, void *ud)
{
    static const char head[] = "<stream:stream xmlns='" HEARTH_NS_CLIENT "' "
                               "xmlns:stream='" HEARTH_NS_STREAMS "'>";
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

hearth_xml_node_t *router__make_error(hearth_xml_node_t *st, hearth_arena_t *arena,
                                      hearth_stanza_error_t cond, const char *text,
                                      const char *default_from)
{
    const char *from = hearth_xml_attr(st, "from");
    const char *to = hearth_xml_attr(st, "to");
    const char *rfrom = to ? to : default_from;
    char *nfrom = rfrom ? hearth_arena_strdup(arena, rfrom) : NULL;
    char *nto = from ? hearth_arena_strdup(arena, from) : NULL;
    hearth_xml_set_attr(arena, st, "to", nto);
    hearth_xml_set_attr(arena, st, "from", nfrom);
    hearth_xml_set_attr(arena, st, "type", "error");
    hearth_xml_add_stanza_error(arena, st, cond, text);
    return st;
}

static int is_error_type(const hearth_xml_node_t *st)
{
    const char *t = hearth_xml_attr(st, "type");
    return t && !strcmp(t, "error");
}

void router__reply_error(session_t *s, hearth_xml_node_t *st, hearth_arena_t *arena,
                         hearth_stanza_error_t cond, const char *text)
{
    if (is_error_type(st))
        return;                                          /* never answer an error with an error */
    hearth_xml_set_attr(arena, st, "from", s->jid.full); /* so the reply goes back to it */
    /* RFC 6120 §10.3.3: a stanza without 'to' from a bound session is handled on behalf of its
     * account, so the error comes from the account, not the domain: without 'from', as results
     * to such requests are sent (iq_result). Clients match a reply against the address they
     * sent to. */
    router__make_error(st, arena, cond, text, NULL);
    session__send_node(s, st);
}

/* ---- handing over ---- */

static int split_bare(const char *to, char *bare)
{
    size_t n = strcspn(to, "/");
    if (n >= BARE_MAX)
        return HEARTH_EINVAL;
    memcpy(bare, to, n);
    bare[n] = '\0';
    return 0;
}

/* To the destination's worker: the next loop turn on this one, its inbox on another. */
static int hand_over(worker_t *w, worker_t *home, inbox_msg_t *m)
{
    int rc = home == w ? worker__run_later(w, m) : worker__post_from(w, home, m);
    if (rc)
        __atomic_add_fetch(&w->srv->dropped, 1, __ATOMIC_RELAXED);
    return rc;
}

static int route_full(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                      const char *type, const char *sid, session_t *sender, hearth_bytes_t *bytes,
                      int live_only, int has_body)
{
    char bare[BARE_MAX];
    if (split_bare(to, bare))
        return HEARTH_EINVAL;
    worker_t *home = worker__home(w->srv, bare);
    inbox_msg_t *m = calloc(1, sizeof(*m));
    if (!m || !(m->u.route.to = strdup(to)) || (from && !(m->u.route.from = strdup(from)))) {
        if (m)
            free(m->u.route.to);
        free(m);
        return HEARTH_ENOMEM; /* nothing was handed over: the sender's stanza settles now */
    }
    m->kind = INBOX_ROUTE;
    m->u.route.kind = kind;
    m->u.route.live_only = live_only;
    m->u.route.has_body = (signed char)has_body;
    m->u.route.is_error = type && !strcmp(type, "error");
    if (type && strlen(type) < sizeof(m->u.route.type))
        strcpy(m->u.route.type, type);
    if (sid && strlen(sid) < sizeof(m->u.route.sid))
        strcpy(m->u.route.sid, sid);
    m->u.route.bytes = hearth_bytes_ref(bytes);
    /* Asked last, once the message exists: from here the destination settles it. */
    char sm_id[24] = "";
    uint32_t seq = 0;
    if (sender && sender->ops->defer_settle && sender->ops->defer_settle(sender, sm_id, &seq)) {
        memcpy(m->u.route.settle_sm, sm_id, sizeof(sm_id));
        m->u.route.settle_seq = seq;
    }
    int rc = hand_over(w, home, m); /* m is gone on failure */
    if (rc && *sm_id)
        sender->ops->settled(sender, sm_id, seq); /* handed to nobody: counted now, refused */
    return rc;
}

void router__route(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                   const char *type, hearth_bytes_t *bytes)
{
    router__route_sid(w, kind, to, from, type, NULL, bytes);
}

void router__route_sid(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                       const char *type, const char *sid, hearth_bytes_t *bytes)
{
    int rc = route_full(w, kind, to, from, type, sid, NULL, bytes, 0, -1);
    if (rc)
        hlog(LOG_ERROR, "a stanza for %s was dropped: %s", to, hearth_strerror(rc));
}

int router__route_settled(worker_t *w, const char *to, const char *from, const char *type,
                          const char *sid, session_t *sender, hearth_bytes_t *bytes, int has_body)
{
    return route_full(w, STANZA_MESSAGE, to, from, type, sid, sender, bytes, 0, has_body);
}

static int has_body(const hearth_xml_node_t *st)
{
    return hearth_xml_child(st, "body", HEARTH_NS_CLIENT) != NULL;
}

static hearth_bytes_t *serialise(hearth_xml_node_t *st)
{
    hearth_buf_t out = HEARTH_BUF_INIT;
    hearth_bytes_t *bytes = NULL;
    if (hearth_xml_serialize(st, HEARTH_NS_CLIENT, &out) == 0)
        bytes = hearth_bytes_new(out.data, out.len);
    hearth_buf_free(&out);
    return bytes;
}

void router__route_node(worker_t *w, const char *to, hearth_xml_node_t *st)
{
    hearth_bytes_t *bytes = serialise(st);
    if (bytes)
        router__route(w, router__kind(st->name), to, hearth_xml_attr(st, "from"),
                      hearth_xml_attr(st, "type"), bytes);
    hearth_bytes_unref(bytes);
}

void router__reroute_node(worker_t *w, const char *to, hearth_xml_node_t *st)
{
    hearth_bytes_t *bytes = serialise(st);
    if (!bytes || route_full(w, STANZA_MESSAGE, to, hearth_xml_attr(st, "from"),
                             hearth_xml_attr(st, "type"), NULL, NULL, bytes, 1, has_body(st)))
        hlog(LOG_ERROR, "a message for %s could not go back to delivery", to);
    hearth_bytes_unref(bytes);
}

/* ---- settlement of a sender's stream-management count ---- */

void router__settle_local(worker_t *w, const char *full, const char *sm_id, uint32_t seq)
{
    size_t n = strcspn(full, "/");
    if (!full[n] || n >= BARE_MAX)
        return;
    char bare[BARE_MAX];
    memcpy(bare, full, n);
    bare[n] = '\0';
    session_t *s = session__find(w, bare, full + n + 1);
    if (s && s->ops->settled)
        s->ops->settled(s, sm_id, seq);
}

void router__settle(worker_t *w, const inbox_msg_t *m)
{
    const char *from = m->u.route.from;
    if (!m->u.route.settle_sm[0] || !from)
        return;
    char bare[BARE_MAX];
    if (split_bare(from, bare))
        return;
    worker_t *home = worker__home(w->srv, bare);
    if (home == w) {
        router__settle_local(w, from, m->u.route.settle_sm, m->u.route.settle_seq);
        return;
    }
    inbox_msg_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->u.route.to = strdup(from))) {
        free(s);
        return;
    }
    s->kind = INBOX_SETTLE;
    strcpy(s->u.route.settle_sm, m->u.route.settle_sm);
    s->u.route.settle_seq = m->u.route.settle_seq;
    worker__post_from(w, home, s);
}

/* ---- fan-out ---- */

struct route_batch {
    worker_t *w;
    inbox_msg_t **per; /* one message per destination worker, built as recipients come */
};

route_batch_t *router__batch_new(worker_t *w, stanza_kind_t kind, const char *from,
                                 const char *type, hearth_bytes_t *bytes)
{
    route_batch_t *b = calloc(1, sizeof(*b));
    if (!b || !(b->per = calloc(w->srv->nworkers, sizeof(*b->per)))) {
        free(b);
        return NULL;
    }
    b->w = w;
    for (unsigned i = 0; i < w->srv->nworkers; i++) {
        inbox_msg_t *m = calloc(1, sizeof(*m));
        if (!m)
            continue;
        m->kind = INBOX_ROUTE_MULTI;
        m->u.route.kind = kind;
        m->u.route.from = from ? strdup(from) : NULL;
        m->u.route.is_error = type && !strcmp(type, "error");
        m->u.route.has_body = -1;
        if (type && strlen(type) < sizeof(m->u.route.type))
            strcpy(m->u.route.type, type);
        m->u.route.bytes = hearth_bytes_ref(bytes);
        b->per[i] = m;
    }
    return b;
}

void router__batch_add(route_batch_t *b, const char *to)
{
    char bare[BARE_MAX];
    if (!b || split_bare(to, bare))
        return;
    inbox_msg_t *m = b->per[worker__home(b->w->srv, bare)->index];
    char **v = m ? realloc(m->u.route.tos, (m->u.route.ntos + 1) * sizeof(char *)) : NULL;
    if (!v) {
        __atomic_add_fetch(&b->w->srv->dropped, 1, __ATOMIC_RELAXED);
        return;
    }
    m->u.route.tos = v;
    if ((v[m->u.route.ntos] = strdup(to)))
        m->u.route.ntos++;
    else
        __atomic_add_fetch(&b->w->srv->dropped, 1, __ATOMIC_RELAXED);
}

static void free_multi(inbox_msg_t *m)
{
    for (size_t i = 0; i < m->u.route.ntos; i++)
        free(m->u.route.tos[i]);
    free(m->u.route.tos);
    hearth_bytes_unref(m->u.route.bytes);
    free(m->u.route.from);
    free(m);
}

void router__batch_send(route_batch_t *b)
{
    if (!b)
        return;
    for (unsigned i = 0; i < b->w->srv->nworkers; i++) {
        inbox_msg_t *m = b->per[i];
        if (!m)
            continue;
        if (!m->u.route.ntos) {
            free_multi(m);
            continue;
        }
        size_t n = m->u.route.ntos;
        if (hand_over(b->w, b->w->srv->workers[i], m))
            __atomic_add_fetch(&b->w->srv->dropped, (long)n - 1, __ATOMIC_RELAXED);
    }
    free(b->per);
    free(b);
}

/* Each recipient then takes the ordinary path on this worker, sharing the bytes. */
void router__deliver_multi(worker_t *w, inbox_msg_t *mm)
{
    for (size_t i = 0; i < mm->u.route.ntos; i++) {
        inbox_msg_t *m = calloc(1, sizeof(*m));
        if (!m) {
            __atomic_add_fetch(&w->srv->dropped, 1, __ATOMIC_RELAXED);
            continue;
        }
        *m = *mm;
        m->kind = INBOX_ROUTE;
        m->next = NULL;
        m->u.route.tos = NULL;
        m->u.route.ntos = 0;
        m->u.route.to = mm->u.route.tos[i];
        mm->u.route.tos[i] = NULL;
        m->u.route.from = mm->u.route.from ? strdup(mm->u.route.from) : NULL;
        m->u.route.bytes = hearth_bytes_ref(mm->u.route.bytes);
        router__deliver(w, m);
    }
    free_multi(mm);
}

/* ---- bounces on the destination's worker: the stanza is parsed back from its bytes ---- */

typedef struct bounce {
    worker_t *w;
    hearth_stanza_error_t cond;
    const char *text;
} bounce_t;

static void bounce_stanza(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    bounce_t *b = ud;
    if (is_error_type(st) || !hearth_xml_attr(st, "from"))
        return;
    const char *type = hearth_xml_attr(st, "type");
    if (!strcmp(st->name, "iq") && type && strcmp(type, "get") && strcmp(type, "set"))
        return; /* results are never bounced */
    router__make_error(st, arena, b->cond, b->text, b->w->set.domain);
    const char *to = hearth_xml_attr(st, "to");
    if (to)
        router__route_node(b->w, to, st);
}

void router__bounce(worker_t *w, const inbox_msg_t *m, hearth_stanza_error_t cond, const char *text)
{
    if (m->u.route.is_error)
        return;
    bounce_t b = {w, cond, text};
    router__parse(m->u.route.bytes->data, m->u.route.bytes->len, bounce_stanza, &b);
}

/* ---- delivery on the destination's worker ---- */

/* ---- IQs to another account's bare JID ----
 *
 * The server answers them on the account's behalf (ping, disco, vCard), with the sender's
 * session at hand, on the sender's worker. They first travel to the account's home worker,
 * behind whatever the sender sent that account before (RFC 6120 §10.1: in order), where the
 * account is looked up: for no such account the answer is service-unavailable (RFC 6121
 * §8.5.1) like any stanza's bounce; for an existing one they come back to be answered. */

typedef struct account_iq {
    char *to;   /* the account's bare JID */
    char *from; /* the asking session's full JID */
    hearth_bytes_t *bytes;
} account_iq_t;

static void account_iq_free(void *arg)
{
    account_iq_t *q = arg;
    free(q->to);
    free(q->from);
    hearth_bytes_unref(q->bytes);
    free(q);
}

typedef struct account_iq_parse {
    worker_t *w;
    account_iq_t *q;
} account_iq_parse_t;

static void account_iq_parsed(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    account_iq_parse_t *p = ud;
    char bare[BARE_MAX];
    const char *slash = strchr(p->q->from, '/');
    if (!slash || split_bare(p->q->from, bare))
        return;
    session_t *s = session__find(p->w, bare, slash + 1);
    if (s) /* else the asker has gone: nobody to answer */
        modules__iq(s, st, arena, IQ_TO_ACCOUNT, p->q->to);
}

/* Back on the asker's worker. */
static void account_iq_answer(worker_t *w, void *arg)
{
    account_iq_t *q = arg;
    account_iq_parse_t p = {w, q};
    router__parse(q->bytes->data, q->bytes->len, account_iq_parsed, &p);
    account_iq_free(q);
}

/* On the account's home worker, the account found: back to the asker's worker. Answers (type
 * result or error) to an account's bare JID are for nobody and end here, as before. */
static void account_iq_return(worker_t *w, const inbox_msg_t *m)
{
    const char *type = m->u.route.type;
    char bare[BARE_MAX];
    if (!strcmp(type, "result") || !strcmp(type, "error") || !m->u.route.from ||
        split_bare(m->u.route.from, bare))
        return;
    account_iq_t *q = calloc(1, sizeof(*q));
    if (!q || !(q->to = strdup(m->u.route.to)) || !(q->from = strdup(m->u.route.from))) {
        if (q)
            account_iq_free(q);
        router__bounce(w, m, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    q->bytes = hearth_bytes_ref(m->u.route.bytes);
    if (worker__call(worker__home(w->srv, bare), account_iq_answer, account_iq_free, q))
        hlog(LOG_ERROR, "an IQ from %s to %s was dropped", m->u.route.from, m->u.route.to);
}

/* An IQ no hook took: to a resource, given to that session; to an existing account's bare JID,
 * answered on its behalf (above); otherwise there is nobody to answer it (RFC 6121 §8.5). */
static void iq_default(worker_t *w, user_t *u, inbox_msg_t *m)
{
    const char *slash = strchr(m->u.route.to, '/');
    if (!slash && u->state == USER_READY) {
        account_iq_return(w, m);
        return;
    }
    session_t *s = slash && u->state == USER_READY ? session__find(w, u->bare, slash + 1) : NULL;
    if (s)
        session__send(s, m->u.route.bytes->data, m->u.route.bytes->len);
    else if (u->state == USER_FAILED) {
        const char *text;
        hearth_stanza_error_t cond = user__failure(u, &text);
        router__bounce(w, m, cond, text);
    } else
        router__bounce(w, m, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
}

static void free_route(inbox_msg_t *m)
{
    hearth_bytes_unref(m->u.route.bytes);
    free(m->u.route.to);
    free(m->u.route.from);
    free(m);
}

static void deliver_op(worker_t *w, user_t *u, void *arg)
{
    inbox_msg_t *m = arg;
    hook_args_t a = {.w = w, .u = u, .m = m};
    if (hooks__run(HOOK_STANZA_IN, &a) != HOOK_STOP) {
        switch (m->u.route.kind) {
        case STANZA_MESSAGE:
            hooks__run(HOOK_MESSAGE_IN, &a);
            break;
        case STANZA_PRESENCE:
            hooks__run(HOOK_PRESENCE_IN, &a);
            break;
        case STANZA_IQ:
            if (hooks__run(HOOK_IQ_IN, &a) != HOOK_STOP)
                iq_default(w, u, m);
            break;
        }
    }
    if (!m->u.route.settle_deferred)
        router__settle(w, m);
    free_route(m);
}

/* On the addressed user's (or room's) home worker: once its state is loaded, by kind. */
void router__deliver(worker_t *w, inbox_msg_t *m)
{
    const router_service_t *svc = service_of(m->u.route.to);
    if (svc) {
        svc->deliver(w, m); /* rooms live on their home worker too */
        router__settle(w, m);
        free_route(m);
        return;
    }
    char bare[BARE_MAX];
    if (split_bare(m->u.route.to, bare)) {
        deliver_op(w, &(user_t){.state = USER_FAILED}, m);
        return;
    }
    user__acquire(w, bare, deliver_op, m);
}

/* ---- from a bound session ---- */

/* Serialises a client's message and routes it with its settlement to come; when that fails
 * the client gets an error now (and its stanza settles as handled, with the error). */
static void route_from_session(session_t *s, hearth_xml_node_t *st, hearth_arena_t *arena,
                               const char *to, const char *sid)
{
    hearth_bytes_t *bytes = serialise(st);
    int rc = bytes ? router__route_settled(s->w, to, s->jid.full, hearth_xml_attr(st, "type"), sid,
                                           s, bytes, has_body(st))
                   : HEARTH_ENOMEM;
    hearth_bytes_unref(bytes);
    if (rc) {
        hlog_conn(LOG_ERROR, s->id, s->jid.full, "a message to %s was refused: %s", to,
                  hearth_strerror(rc));
        router__reply_error(s, st, arena, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
    }
}

static void to_service(session_t *s, hearth_xml_node_t *st, hearth_arena_t *arena,
                       const hearth_jid_t *to, stanza_kind_t kind)
{
    hearth_xml_set_attr(arena, st, "to", to->full);
    if (kind != STANZA_MESSAGE) {
        router__route_node(s->w, to->full, st);
        return;
    }
    hook_args_t a = {
        .w = s->w, .s = s, .u = s->user, .st = st, .arena = arena, .to = to->bare, .service = 1};
    if (hooks__run(HOOK_MESSAGE_OUT, &a) == HOOK_STOP)
        return;
    route_from_session(s, st, arena, to->full, NULL);
}

void router__from_session(session_t *s, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    server_t *srv = s->w->srv;
    stanza_kind_t kind = router__kind(st->name);
    s->w->stats.stanzas_in[kind]++;
    hearth_xml_set_attr(arena, st, "from", s->jid.full); /* stamped: a client never chooses it */
    hook_args_t a = {.w = s->w, .s = s, .u = s->user, .st = st, .arena = arena};
    if (kind == STANZA_PRESENCE) {
        hooks__run(HOOK_PRESENCE_OUT, &a);
        return;
    }
    const char *to_s = hearth_xml_attr(st, "to");
    if (!to_s) {
        if (kind == STANZA_IQ) {
            modules__iq(s, st, arena, IQ_TO_SELF, s->user->bare);
            return;
        }
        to_s = s->user->bare; /* RFC 6121 §8.5.1: a message without 'to' is for the sender's
                               * bare JID */
    }
    hearth_jid_t to = HEARTH_JID_INIT;
    const char *reason = NULL;
    if (hearth_jid_parse(to_s, strlen(to_s), &to, &reason)) {
        router__reply_error(s, st, arena, HEARTH_STANZA_ERR_JID_MALFORMED, reason);
        return;
    }
    if (service_of(to.domain)) {
        to_service(s, st, arena, &to, kind);
        hearth_jid_clear(&to);
        return;
    }
    if (strcmp(to.domain, srv->set.domain) != 0) {
        hearth_jid_clear(&to);
        router__reply_error(s, st, arena, HEARTH_STANZA_ERR_REMOTE_SERVER_NOT_FOUND,
                            "this server does not federate with other domains yet");
        return;
    }
    if (!to.node) {
        hearth_jid_clear(&to);
        if (kind == STANZA_IQ)
            modules__iq(s, st, arena, IQ_TO_SERVER, srv->set.domain);
        else
            router__reply_error(s, st, arena, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    a.to = to.full;
    if (hooks__run(HOOK_STANZA_OUT, &a) == HOOK_STOP) {
        hearth_jid_clear(&to);
        return;
    }
    if (kind == STANZA_IQ && !to.resource) {
        hearth_xml_set_attr(arena, st, "to", to.bare);
        const char *bare = hearth_xml_attr(st, "to");
        int self = !strcmp(to.bare, s->user->bare);
        hearth_jid_clear(&to);
        if (self)
            modules__iq(s, st, arena, IQ_TO_SELF, bare);
        else
            router__route_node(s->w, bare, st); /* by way of the account (iq_default) */
        return;
    }
    hearth_xml_set_attr(arena, st, "to", to.full);
    const char *full = hearth_xml_attr(st, "to");
    if (kind != STANZA_MESSAGE) {
        hearth_jid_clear(&to);
        router__route_node(s->w, full, st);
        return;
    }
    /* The sender's copies (carbons, its own archive) are taken before the recipient's stanza
     * id is added, by hooks of higher priority than the one that adds it. */
    /* The message's archive key: its stanza id for the recipient and the key both parties'
     * archives keep it under. */
    char sid[32];
    user__archive_id(sid, sizeof(sid));
    a.to = hearth_arena_strdup(arena, to.bare);
    a.sid = sid;
    a.sid_len = sizeof(sid);
    hearth_jid_clear(&to);
    if (hooks__run(HOOK_MESSAGE_OUT, &a) == HOOK_STOP)
        return;
    route_from_session(s, st, arena, full, *sid ? sid : NULL);
}
