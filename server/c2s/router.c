/* Routing of stanzas from bound sessions: `from` stamped, `to` checked, then to the server
 * itself, or serialised once and handed to the addressed user's home worker (a direct call
 * when that is this worker). Bounces are built where the stanza is parsed. */
#include <stdlib.h>
#include <string.h>

#include "c2s/conn.h"
#include "core/log.h"
#include "modules/im.h"

static stanza_kind_t kind_of(const char *name)
{
    if (!strcmp(name, "message"))
        return STANZA_MESSAGE;
    if (!strcmp(name, "presence"))
        return STANZA_PRESENCE;
    return STANZA_IQ;
}

/* Turns stanza into its error reply in place: to/from swapped, type='error', an <error/>. A
 * stanza without 'to' is answered from default_from (no 'from' when NULL). */
static hearth_xml_node_t *make_error(hearth_xml_node_t *st, hearth_arena_t *arena,
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
    hearth_xml_node_t *e = hearth_xml_add_child(arena, st, "error", "jabber:client");
    hearth_xml_set_attr(arena, e, "type", hearth_stanza_error_type(cond));
    hearth_xml_add_child(arena, e, hearth_stanza_error_name(cond), HEARTH_NS_STANZA_ERRORS);
    if (text) {
        hearth_xml_node_t *t = hearth_xml_add_child(arena, e, "text", HEARTH_NS_STANZA_ERRORS);
        hearth_xml_add_text(arena, t, text, strlen(text));
    }
    return st;
}

static int is_error_type(const hearth_xml_node_t *st)
{
    const char *t = hearth_xml_attr(st, "type");
    return t && !strcmp(t, "error");
}

void router__reply_error(conn_t *c, hearth_xml_node_t *st, hearth_arena_t *arena,
                         hearth_stanza_error_t cond, const char *text)
{
    if (is_error_type(st))
        return;                                          /* never answer an error with an error */
    hearth_xml_set_attr(arena, st, "from", c->jid.full); /* so the reply goes back to it */
    if (!c->jid.full)
        hearth_xml_set_attr(arena, st, "from", NULL);
    /* RFC 6120 §10.3.3: a stanza without 'to' from a bound session is handled on behalf of its
     * account, so the error comes from the account, not the domain: without 'from', as results
     * to such requests are sent (modules.c iq_result). Clients match a reply against the
     * address they sent to. Before binding the stream's peer is the server itself. */
    make_error(st, arena, cond, text, c->bare ? NULL : c->w->srv->set.domain);
    conn__send_node(c, st);
}

void router__route(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                   const char *type, hearth_bytes_t *bytes)
{
    router__route_sid(w, kind, to, from, type, NULL, bytes);
}

static int route_full(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                      const char *type, const char *sid, conn_t *sender, hearth_bytes_t *bytes,
                      int live_only);

void router__route_sid(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                       const char *type, const char *sid, hearth_bytes_t *bytes)
{
    if (route_full(w, kind, to, from, type, sid, NULL, bytes, 0))
        hlog(LOG_ERROR, "a stanza for %s was dropped: out of memory", to);
}

int router__route_settled(worker_t *w, const char *to, const char *from, const char *type,
                          const char *sid, conn_t *sender, hearth_bytes_t *bytes)
{
    return route_full(w, STANZA_MESSAGE, to, from, type, sid, sender, bytes, 0);
}

/* Serialises a client's message and routes it with its settlement to come; when that fails
 * the client gets an error now (and its stanza settles as handled, with the error). */
static void route_from_client(conn_t *c, hearth_xml_node_t *st, hearth_arena_t *arena,
                              const char *to, const char *sid)
{
    hearth_buf_t out = HEARTH_BUF_INIT;
    hearth_bytes_t *bytes = NULL;
    int rc = hearth_xml_serialize(st, "jabber:client", &out);
    if (!rc && !(bytes = hearth_bytes_new(out.data, out.len)))
        rc = HEARTH_ENOMEM;
    hearth_buf_free(&out);
    rc = rc
             ?: router__route_settled(c->w, to, c->jid.full, hearth_xml_attr(st, "type"), sid, c,
                                      bytes);
    hearth_bytes_unref(bytes);
    if (rc) {
        hlog_conn(LOG_ERROR, c->id, c->jid.full, "a message to %s was refused: %s", to,
                  hearth_strerror(rc));
        router__reply_error(c, st, arena, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
    }
}

void router__settle_local(worker_t *w, const char *full, const char *sm_id, uint32_t seq)
{
    size_t n = strcspn(full, "/");
    if (!full[n])
        return;
    char *bare = strndup(full, n);
    conn_t *c = bare ? session__find(w, bare, full + n + 1) : NULL;
    free(bare);
    if (c && c->sm.enabled && !strcmp(c->sm.id, sm_id))
        sm__settle(c, seq);
}

void router__settle(worker_t *w, const inbox_msg_t *m)
{
    const char *from = m->u.route.from;
    if (!m->u.route.settle_sm[0] || !from)
        return;
    char bare[3072];
    size_t n = strcspn(from, "/");
    if (n >= sizeof(bare))
        return;
    memcpy(bare, from, n);
    bare[n] = '\0';
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

static int route_full(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                      const char *type, const char *sid, conn_t *sender, hearth_bytes_t *bytes,
                      int live_only)
{
    const char *slash = strchr(to, '/');
    char bare[3072];
    size_t n = slash ? (size_t)(slash - to) : strlen(to);
    if (n >= sizeof(bare))
        return HEARTH_EINVAL;
    memcpy(bare, to, n);
    bare[n] = '\0';
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
    m->u.route.is_error = type && !strcmp(type, "error");
    if (type && strlen(type) < sizeof(m->u.route.type))
        strcpy(m->u.route.type, type);
    if (sid && strlen(sid) < sizeof(m->u.route.sid))
        strcpy(m->u.route.sid, sid);
    /* Marked only once the message exists: from here the destination settles it. */
    if (sender && sender->sm.enabled) {
        strcpy(m->u.route.settle_sm, sender->sm.id);
        m->u.route.settle_seq = sender->sm.cur_seq;
        sender->sm.cur_async = 1;
    }
    m->u.route.bytes = hearth_bytes_ref(bytes);
    if (home == w)
        router__deliver(w, m);
    else
        worker__post_from(w, home, m);
    return 0;
}

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
        if (type && strlen(type) < sizeof(m->u.route.type))
            strcpy(m->u.route.type, type);
        m->u.route.bytes = hearth_bytes_ref(bytes);
        b->per[i] = m;
    }
    return b;
}

void router__batch_add(route_batch_t *b, const char *to)
{
    if (!b)
        return;
    size_t n = strcspn(to, "/");
    char bare[3072];
    if (n >= sizeof(bare))
        return;
    memcpy(bare, to, n);
    bare[n] = '\0';
    inbox_msg_t *m = b->per[worker__home(b->w->srv, bare)->index];
    if (!m)
        return;
    char **v = realloc(m->u.route.tos, (m->u.route.ntos + 1) * sizeof(char *));
    if (!v)
        return;
    m->u.route.tos = v;
    if ((v[m->u.route.ntos] = strdup(to)))
        m->u.route.ntos++;
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
        if (!m->u.route.ntos)
            free_multi(m);
        else if (b->w->srv->workers[i] == b->w)
            router__deliver_multi(b->w, m);
        else
            worker__post_from(b->w, b->w->srv->workers[i], m);
    }
    free(b->per);
    free(b);
}

/* Each recipient then takes the ordinary path on this worker, sharing the bytes. */
void router__deliver_multi(worker_t *w, inbox_msg_t *mm)
{
    for (size_t i = 0; i < mm->u.route.ntos; i++) {
        inbox_msg_t *m = calloc(1, sizeof(*m));
        if (!m)
            break;
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

void router__reroute_node(worker_t *w, const char *to, hearth_xml_node_t *st)
{
    hearth_buf_t out = HEARTH_BUF_INIT;
    hearth_bytes_t *bytes = NULL;
    if (hearth_xml_serialize(st, "jabber:client", &out) == 0 &&
        (bytes = hearth_bytes_new(out.data, out.len)) != NULL &&
        route_full(w, STANZA_MESSAGE, to, hearth_xml_attr(st, "from"), hearth_xml_attr(st, "type"),
                   NULL, NULL, bytes, 1))
        hlog(LOG_ERROR, "a message for %s could not go back to delivery: out of memory", to);
    hearth_bytes_unref(bytes);
    hearth_buf_free(&out);
}

void im__route_node(worker_t *w, const char *to, hearth_xml_node_t *st)
{
    hearth_buf_t out = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(st, "jabber:client", &out) == 0) {
        hearth_bytes_t *bytes = hearth_bytes_new(out.data, out.len);
        if (bytes) {
            router__route(w, kind_of(st->name), to, hearth_xml_attr(st, "from"),
                          hearth_xml_attr(st, "type"), bytes);
            hearth_bytes_unref(bytes);
        }
    }
    hearth_buf_free(&out);
}

/* ---- bounces on the home worker: the stanza is parsed back from its bytes ---- */

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
    make_error(st, arena, b->cond, b->text, b->w->srv->set.domain);
    const char *to = hearth_xml_attr(st, "to");
    if (to)
        im__route_node(b->w, to, st);
}

void router__bounce(worker_t *w, const inbox_msg_t *m, hearth_stanza_error_t cond, const char *text)
{
    if (m->u.route.is_error)
        return;
    bounce_t b = {w, cond, text};
    im__parse(m->u.route.bytes->data, m->u.route.bytes->len, bounce_stanza, &b);
}

static void iq_inbound(worker_t *w, user_t *u, inbox_msg_t *m)
{
    const char *slash = strchr(m->u.route.to, '/');
    if (u->state == USER_READY && m->u.route.from && blocking__blocks(u, m->u.route.from)) {
        router__bounce(w, m, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    if (!slash) {
        last__inbound(w, u, m); /* the only IQ routed to a bare JID (router__from_client) */
        return;
    }
    conn_t *s = u->state == USER_READY ? session__find(w, u->bare, slash + 1) : NULL;
    if (s)
        conn__send_stanza(s, m->u.route.bytes->data, m->u.route.bytes->len);
    else
        router__bounce(w, m,
                       u->state == USER_FAILED ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                               : HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE,
                       NULL);
}

static void deliver_op(worker_t *w, user_t *u, void *arg)
{
    inbox_msg_t *m = arg;
    switch (m->u.route.kind) {
    case STANZA_MESSAGE:
        message__inbound(w, u, m);
        break;
    case STANZA_PRESENCE:
        presence__inbound(w, u, m);
        break;
    case STANZA_IQ:
        iq_inbound(w, u, m);
        break;
    }
    if (!m->u.route.settle_deferred)
        router__settle(w, m);
    hearth_bytes_unref(m->u.route.bytes);
    free(m->u.route.to);
    free(m->u.route.from);
    free(m);
}

/* On the addressed user's home worker: once its state is loaded, by stanza kind. */
void router__deliver(worker_t *w, inbox_msg_t *m)
{
    const char *at = strchr(m->u.route.to, '@');
    const char *dom = at ? at + 1 : m->u.route.to;
    const char *muc = w->srv->set.muc_domain;
    size_t ml = strlen(muc);
    if (!strncmp(dom, muc, ml) && (dom[ml] == '\0' || dom[ml] == '/')) {
        muc__deliver(w, m); /* rooms live on their home worker too */
        router__settle(w, m);
        hearth_bytes_unref(m->u.route.bytes);
        free(m->u.route.to);
        free(m->u.route.from);
        free(m);
        return;
    }
    size_t n = strcspn(m->u.route.to, "/");
    char *bare = strndup(m->u.route.to, n);
    if (!bare) {
        deliver_op(w, &(user_t){.state = USER_FAILED}, m);
        return;
    }
    user__acquire(w, bare, deliver_op, m);
    free(bare);
}

static void reply_blocked(conn_t *c, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    make_error(st, arena, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "you have blocked this contact",
               c->w->srv->set.domain);
    hearth_xml_node_t *e = hearth_xml_child(st, "error", "jabber:client");
    hearth_xml_add_child(arena, e, "blocked", NS_BLOCKING_ERRORS);
    conn__send_node(c, st);
}

void router__from_client(conn_t *c, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    server_t *srv = c->w->srv;
    stanza_kind_t kind = kind_of(st->name);
    hearth_xml_set_attr(arena, st, "from", c->jid.full); /* stamped: a client never chooses it */
    if (kind == STANZA_PRESENCE) {
        presence__from_client(c, st, arena);
        return;
    }
    const char *to_s = hearth_xml_attr(st, "to");
    hearth_jid_t to = HEARTH_JID_INIT;
    const char *reason = NULL;
    if (!to_s) {
        if (kind == STANZA_IQ) {
            server_iq__handle(c, st, arena, IQ_TO_SELF, c->bare);
            return;
        }
        to_s = c->bare; /* RFC 6121 §8.5.1: a message without 'to' is for the sender's bare JID */
    }
    if (hearth_jid_parse(to_s, strlen(to_s), &to, &reason)) {
        router__reply_error(c, st, arena, HEARTH_STANZA_ERR_JID_MALFORMED, reason);
        return;
    }
    if (!strcmp(to.domain, srv->set.muc_domain)) {
        /* To the group chat service or one of its rooms: handled on the room's worker. */
        hearth_xml_set_attr(arena, st, "to", to.full);
        if (kind == STANZA_MESSAGE) {
            mam__outgoing(c, st, arena, to.bare);
            route_from_client(c, st, arena, to.full, NULL);
        } else {
            im__route_node(c->w, to.full, st);
        }
        hearth_jid_clear(&to);
        return;
    }
    if (strcmp(to.domain, srv->set.domain) != 0) {
        hearth_jid_clear(&to);
        router__reply_error(c, st, arena, HEARTH_STANZA_ERR_REMOTE_SERVER_NOT_FOUND,
                            "this server does not federate with other domains yet");
        return;
    }
    if (!to.node) {
        hearth_jid_clear(&to);
        if (kind == STANZA_IQ)
            server_iq__handle(c, st, arena, IQ_TO_SERVER, srv->set.domain);
        else
            router__reply_error(c, st, arena, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    if (blocking__blocks(c->user, to.full)) {
        hearth_jid_clear(&to);
        if (!is_error_type(st))
            reply_blocked(c, st, arena);
        return;
    }
    if (kind == STANZA_IQ && !to.resource) {
        hearth_xml_set_attr(arena, st, "to", to.bare);
        const char *bare = hearth_xml_attr(st, "to");
        int self = !strcmp(to.bare, c->bare);
        hearth_xml_node_t *q = hearth_xml_first_element(st);
        hearth_jid_clear(&to);
        const char *type = hearth_xml_attr(st, "type");
        if (!self && q && !strcmp(q->ns, NS_LAST) && type && !strcmp(type, "get")) {
            im__route_node(c->w, bare, st); /* answered where the contact's state lives */
            return;
        }
        server_iq__handle(c, st, arena, self ? IQ_TO_SELF : IQ_TO_ACCOUNT, bare);
        return;
    }
    hearth_xml_set_attr(arena, st, "to", to.full);
    if (kind != STANZA_MESSAGE) {
        im__route_node(c->w, to.full, st);
        hearth_jid_clear(&to);
        return;
    }
    /* The sender's copies (carbons, its own archive) are taken before the recipient's stanza
     * id is added: that id is the recipient's, not theirs. */
    carbons__sent(c, st);
    mam__outgoing(c, st, arena, to.bare);
    char sid[32];
    message__stamp(st, arena, to.bare, c->bare, srv->set.domain, sid, sizeof(sid));
    route_from_client(c, st, arena, to.full, sid);
    hearth_jid_clear(&to);
}
