/* Routing of stanzas from bound sessions: `from` stamped, `to` checked, then to the server
 * itself, or serialised once and handed to the addressed user's home worker (a direct call
 * when that is this worker). Bounces are built where the stanza is parsed. */
#include <stdlib.h>
#include <string.h>

#include "c2s/conn.h"
#include "core/log.h"
#include "modules/module.h"

static stanza_kind_t kind_of(const char *name)
{
    if (!strcmp(name, "message"))
        return STANZA_MESSAGE;
    if (!strcmp(name, "presence"))
        return STANZA_PRESENCE;
    return STANZA_IQ;
}

/* Turns stanza into its error reply in place: to/from swapped, type='error', an <error/>. */
static hearth_xml_node_t *make_error(hearth_xml_node_t *st, hearth_arena_t *arena,
                                     hearth_stanza_error_t cond, const char *text,
                                     const char *default_from)
{
    const char *from = hearth_xml_attr(st, "from");
    const char *to = hearth_xml_attr(st, "to");
    char *nfrom = hearth_arena_strdup(arena, to ? to : default_from);
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
    make_error(st, arena, cond, text, c->w->srv->set.domain);
    conn__send_node(c, st);
}

static void route_bytes(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                        int is_error, hearth_bytes_t *bytes)
{
    worker_t *home;
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *reason;
    if (hearth_jid_parse(to, strlen(to), &j, &reason))
        return;
    home = worker__home(w->srv, j.bare);
    hearth_jid_clear(&j);
    inbox_msg_t *m = calloc(1, sizeof(*m));
    if (!m)
        return;
    m->kind = INBOX_ROUTE;
    m->u.route.kind = kind;
    m->u.route.to = strdup(to);
    m->u.route.from = from ? strdup(from) : NULL;
    m->u.route.is_error = is_error;
    m->u.route.bytes = hearth_bytes_ref(bytes);
    if (!m->u.route.to) {
        hearth_bytes_unref(bytes);
        free(m);
        return;
    }
    if (home == w) {
        router__deliver(w, m);
        return;
    }
    worker__post(home, m);
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
    hearth_buf_t out = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(st, "jabber:client", &out) == 0) {
        hearth_bytes_t *bytes = hearth_bytes_new(out.data, out.len);
        if (bytes) {
            route_bytes(b->w, kind_of(st->name), hearth_xml_attr(st, "to"), NULL, 1, bytes);
            hearth_bytes_unref(bytes);
        }
    }
    hearth_buf_free(&out);
}

static void bounce(worker_t *w, const hearth_bytes_t *bytes, hearth_stanza_error_t cond,
                   const char *text)
{
    static const char head[] = "<stream:stream xmlns='jabber:client' "
                               "xmlns:stream='http://etherx.jabber.org/streams'>";
    bounce_t b = {w, cond, text};
    hearth_xml_stream_cbs_t cbs = {.stanza = bounce_stanza};
    hearth_xml_stream_t *x = hearth_xml_stream_new(&cbs, &b, NULL);
    if (!x)
        return;
    (void)hearth_xml_stream_feed(x, head, sizeof(head) - 1);
    (void)hearth_xml_stream_feed(x, bytes->data, bytes->len);
    hearth_xml_stream_free(x);
}

/* Until presence arrives (the IM core), a message to a bare JID goes to every bound resource. */
void router__deliver(worker_t *w, inbox_msg_t *m)
{
    hearth_jid_t to = HEARTH_JID_INIT;
    const char *reason;
    if (hearth_jid_parse(m->u.route.to, strlen(m->u.route.to), &to, &reason))
        goto out;
    user_t *u = worker__user(w, to.bare, 0);
    conn_t *target = NULL;
    if (to.resource && u)
        target = session__find(w, to.bare, to.resource);
    if (target) {
        conn__send(target, m->u.route.bytes->data, m->u.route.bytes->len);
        goto out;
    }
    if (m->u.route.is_error)
        goto out; /* an error for a resource that is gone is dropped */
    switch (m->u.route.kind) {
    case STANZA_PRESENCE:
        break; /* presence to an unavailable resource is dropped (RFC 6121 §4.6.3) */
    case STANZA_IQ:
        bounce(w, m->u.route.bytes, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        break;
    case STANZA_MESSAGE:
        if (u && u->sessions) {
            for (conn_t *s = u->sessions; s; s = s->user_next)
                conn__send(s, m->u.route.bytes->data, m->u.route.bytes->len);
        } else {
            bounce(w, m->u.route.bytes, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE,
                   "the recipient is not online");
        }
        break;
    }
out:
    hearth_jid_clear(&to);
    hearth_bytes_unref(m->u.route.bytes);
    free(m->u.route.to);
    free(m->u.route.from);
    free(m);
}

void router__from_client(conn_t *c, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    server_t *srv = c->w->srv;
    stanza_kind_t kind = kind_of(st->name);
    hearth_xml_set_attr(arena, st, "from", c->jid.full); /* stamped: a client never chooses it */
    const char *to_s = hearth_xml_attr(st, "to");
    hearth_jid_t to = HEARTH_JID_INIT;
    const char *reason = NULL;
    if (!to_s) {
        if (kind == STANZA_IQ) {
            server_iq__handle(c, st, arena, IQ_TO_SELF, c->bare);
            return;
        }
        if (kind == STANZA_PRESENCE)
            return;     /* broadcast presence comes with the IM core */
        to_s = c->bare; /* RFC 6121 §8.5.1: a message without 'to' is for the sender's bare JID */
    }
    if (hearth_jid_parse(to_s, strlen(to_s), &to, &reason)) {
        router__reply_error(c, st, arena, HEARTH_STANZA_ERR_JID_MALFORMED, reason);
        return;
    }
    if (strcmp(to.domain, srv->set.domain) != 0) {
        int muc = !strcmp(to.domain, srv->set.muc_domain);
        hearth_jid_clear(&to);
        router__reply_error(c, st, arena,
                            muc ? HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE
                                : HEARTH_STANZA_ERR_REMOTE_SERVER_NOT_FOUND,
                            muc ? "group chat is not available yet"
                                : "this server does not federate with other domains yet");
        return;
    }
    if (!to.node) {
        hearth_jid_clear(&to);
        if (kind == STANZA_IQ)
            server_iq__handle(c, st, arena, IQ_TO_SERVER, srv->set.domain);
        else if (kind == STANZA_MESSAGE)
            router__reply_error(c, st, arena, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    if (kind == STANZA_IQ && !to.resource) {
        hearth_xml_set_attr(arena, st, "to", to.bare);
        const char *bare = hearth_xml_attr(st, "to");
        int self = !strcmp(to.bare, c->bare);
        hearth_jid_clear(&to);
        server_iq__handle(c, st, arena, self ? IQ_TO_SELF : IQ_TO_ACCOUNT, bare);
        return;
    }
    hearth_xml_set_attr(arena, st, "to", to.full);
    hearth_buf_t out = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(st, "jabber:client", &out) == 0) {
        hearth_bytes_t *bytes = hearth_bytes_new(out.data, out.len);
        if (bytes) {
            route_bytes(c->w, kind, to.full, c->jid.full, is_error_type(st), bytes);
            hearth_bytes_unref(bytes);
        }
    }
    hearth_buf_free(&out);
    hearth_jid_clear(&to);
}
