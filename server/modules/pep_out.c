/* PEP's output (pep.h): replies to requesters, and notifications built once and handed to each
 * worker where recipients live, which gives them to the recipients' available resources that
 * want the node's notifications (XEP-0163 §4.2, §4.3). */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/pep.h"

/* ---- replies ---- */

/* To the requester: its own session straight (the owner's, on this worker), else routed. */
static void deliver_reply(pep_op_t *op, const char *type, hearth_buf_t *b)
{
    hearth_bytes_t *bytes = hearth_bytes_new(b->data, b->len);
    if (!bytes)
        return;
    if (!strcmp(op->requester_bare, op->u->bare)) {
        const char *slash = strchr(op->requester, '/');
        session_t *s = slash ? session__find(op->w, op->u->bare, slash + 1) : NULL;
        if (s)
            session__send(s, bytes->data, bytes->len);
    } else {
        router__route(op->w, STANZA_IQ, op->requester, op->u->bare, type, bytes);
    }
    hearth_bytes_unref(bytes);
}

static int reply_start(hearth_buf_t *b, pep_op_t *op, const char *type)
{
    const char *id = hearth_xml_attr(op->iq, "id");
    int rc = hearth_buf_printf(b, "<iq type='%s' id='", type);
    rc = rc ?: hearth_buf_append_escaped(b, id ? id : "", id ? strlen(id) : 0);
    if (op->reply_from) {
        rc = rc ?: hearth_buf_append_str(b, "' from='");
        rc = rc ?: hearth_buf_append_escaped(b, op->reply_from, strlen(op->reply_from));
    }
    rc = rc ?: hearth_buf_append_str(b, "' to='");
    rc = rc ?: hearth_buf_append_escaped(b, op->requester, strlen(op->requester));
    return rc ?: hearth_buf_append_str(b, "'");
}

/* A request of the server's own hears its outcome instead of a reply (once). */
static int internal_outcome(pep_op_t *op, const pubsub_err_t *e, const char *inner)
{
    if (!op->by_server)
        return 0;
    pep_internal_fn fn = op->internal;
    op->internal = NULL;
    if (fn)
        fn(op->internal_ud, e, inner);
    return 1;
}

/* A result with inner (serialised, NULL: empty). */
void pep__result(pep_op_t *op, const char *inner)
{
    if (internal_outcome(op, NULL, inner))
        return;
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = reply_start(&b, op, "result");
    if (inner) {
        rc = rc ?: hearth_buf_append_str(&b, ">");
        rc = rc ?: hearth_buf_append_str(&b, inner);
        rc = rc ?: hearth_buf_append_str(&b, "</iq>");
    } else {
        rc = rc ?: hearth_buf_append_str(&b, "/>");
    }
    if (!rc)
        deliver_reply(op, "result", &b);
    hearth_buf_free(&b);
}

void pep__result_node(pep_op_t *op, const hearth_xml_node_t *payload)
{
    hearth_buf_t inner = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(payload, HEARTH_NS_CLIENT, &inner) == 0)
        pep__result(op, inner.data);
    hearth_buf_free(&inner);
}

void pep__error(pep_op_t *op, const pubsub_err_t *e)
{
    if (internal_outcome(op, e, NULL))
        return;
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = reply_start(&b, op, "error");
    rc = rc ?: hearth_buf_append_str(&b, ">");
    rc = rc ?: pubsub_error_write(&b, e);
    rc = rc ?: hearth_buf_append_str(&b, "</iq>");
    if (!rc)
        deliver_reply(op, "error", &b);
    hearth_buf_free(&b);
}

void pep__fail(pep_op_t *op, hearth_stanza_error_t cond, const char *app, const char *text)
{
    pubsub_err_t e;
    pubsub_fail(&e, cond, app, text);
    pep__error(op, &e);
}

void pep__reject(pep_op_t *op, const pubsub_err_t *e)
{
    pep__error(op, e);
    pep__done(op);
}

void pep__refuse(pep_op_t *op, hearth_stanza_error_t cond, const char *app, const char *text)
{
    pep__fail(op, cond, app, text);
    pep__done(op);
}

/* A storage call that failed: its error to the requester (ENOTFOUND: the account is gone). */
void pep__fail_storage(pep_op_t *op, int err)
{
    if (op->kind != OP_IQ)
        return;
    hlog(LOG_ERROR, "PEP of %s: storage failed: %s", op->u->bare, hearth_strerror(err));
    pep__fail(op,
              err == HEARTH_ENOTFOUND ? HEARTH_STANZA_ERR_ITEM_NOT_FOUND
              : err == HEARTH_EAGAIN  ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                      : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
              NULL, NULL);
}

/* ---- notifications ---- */

/* One notification for the recipients homed on one worker. */
typedef struct fanout {
    hearth_bytes_t *bytes; /* the message, without 'to' */
    char *owner;           /* the account whose PEP it comes from */
    char *node;
    char **to; /* bare JIDs */
    size_t nto, cap;
} fanout_t;

static void fanout_free(void *arg)
{
    fanout_t *f = arg;
    if (!f)
        return;
    hearth_bytes_unref(f->bytes);
    free(f->owner);
    free(f->node);
    for (size_t i = 0; i < f->nto; i++)
        free(f->to[i]);
    free(f->to);
    free(f);
}

/* On a recipient's home worker: its available resources (non-negative priority, XEP-0163
 * §4.3.2) that want the node's notifications. */
static void fanout_run(worker_t *w, void *arg)
{
    fanout_t *f = arg;
    for (size_t i = 0; i < f->nto; i++) {
        user_t *r = worker__user(w, f->to[i], 0);
        if (!r || r->state != USER_READY || blocking__blocks(r, f->owner))
            continue;
        for (session_t *s = r->sessions; s; s = s->user_next)
            if (im__live(s) && s->available && s->priority >= 0 && caps__wants(s, f->node))
                session__send_addressed(s, f->bytes, s->jid.full);
    }
    fanout_free(f);
}

/* Work for another worker, in order with what this one routes there; on this worker, the next
 * loop turn. */
void pep__post(worker_t *from, worker_t *to, void (*fn)(worker_t *, void *), void (*drop)(void *),
               void *arg)
{
    inbox_msg_t *m = calloc(1, sizeof(*m));
    if (!m) {
        drop(arg);
        return;
    }
    m->kind = INBOX_CALL;
    m->u.call.fn = fn;
    m->u.call.drop = drop;
    m->u.call.arg = arg;
    if ((to == from ? worker__run_later(from, m) : worker__post_from(from, to, m)) != 0)
        hlog(LOG_ERROR, "PEP: work for worker %u dropped (its queue is full)", to->index);
}

static void fanout_add(fanout_t **per, worker_t *w, const char *bare)
{
    fanout_t *f = per[worker__home(w->srv, bare)->index];
    if (!f)
        return;
    if (f->nto == f->cap) {
        size_t ncap = f->cap * 2 + 8;
        char **v = realloc(f->to, ncap * sizeof(char *));
        if (!v)
            return; /* that recipient misses it; memory is short */
        f->to = v;
        f->cap = ncap;
    }
    if ((f->to[f->nto] = strdup(bare)))
        f->nto++;
}

/* Event bytes (a whole <message/>, without 'to') to u's own resources and to the contacts that
 * see its presence and may see node n (XEP-0163 §4: auto-subscribe; never to one u blocks). */
static void notify(worker_t *w, user_t *u, const pubsub_node_t *n, const hearth_buf_t *event)
{
    if (!n->config.deliver_notifications)
        return;
    unsigned nw = w->srv->nworkers;
    fanout_t **per = calloc(nw, sizeof(*per));
    hearth_bytes_t *bytes = hearth_bytes_new(event->data, event->len);
    for (unsigned i = 0; per && bytes && i < nw; i++) {
        fanout_t *f = calloc(1, sizeof(*f));
        if (f && (!(f->owner = strdup(u->bare)) || !(f->node = strdup(n->name)))) {
            fanout_free(f);
            f = NULL;
        }
        if (f)
            f->bytes = hearth_bytes_ref(bytes);
        per[i] = f;
    }
    if (per && bytes) {
        fanout_add(per, w, u->bare);
        STRMAP_FOREACH(&u->roster, e)
        {
            storage_roster_item_t *it = e->value;
            pubsub_err_t ignored;
            pubsub_who_t who = pep__who(u, it->jid, n);
            if (user__sub_from(it) && !blocking__blocks(u, it->jid) &&
                !pubsub_access(n, &who, &ignored))
                fanout_add(per, w, it->jid);
        }
        for (unsigned i = 0; i < nw; i++) {
            if (per[i] && per[i]->nto)
                pep__post(w, w->srv->workers[i], fanout_run, fanout_free, per[i]);
            else
                fanout_free(per[i]);
        }
    }
    hearth_bytes_unref(bytes);
    free(per);
}

static int event_start(hearth_buf_t *b, const user_t *u)
{
    char id[25];
    user__random_id(id, sizeof(id));
    return pubsub_write_event_start(b, u->bare, id);
}

int pep__write_node_attr(hearth_buf_t *b, const char *open, const char *node, const char *close)
{
    int rc = hearth_buf_append_str(b, open);
    rc = rc ?: hearth_buf_append_escaped(b, node, strlen(node));
    return rc ?: hearth_buf_append_str(b, close);
}

/* <items node><item id>payload</item></items> (payload NULL: without it). */
static int write_items_event(hearth_buf_t *b, const char *node, const char *id, const char *payload)
{
    int rc = pep__write_node_attr(b, "<items node='", node, "'>");
    rc = rc ?: pubsub_write_item(b, id, payload);
    return rc ?: hearth_buf_append_str(b, "</items>");
}

void pep__notify_item(worker_t *w, user_t *u, const pubsub_node_t *n, const char *id,
                      const char *payload)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = event_start(&b, u);
    rc = rc ?: write_items_event(&b, n->name, id, n->config.deliver_payloads ? payload : NULL);
    rc = rc ?: pubsub_write_event_end(&b, 0, NULL);
    if (!rc)
        notify(w, u, n, &b);
    hearth_buf_free(&b);
}

/* An event whose only child is <name node='...'/> (purge, delete) or <items node><retract/>. */
void pep__notify_simple(worker_t *w, user_t *u, const pubsub_node_t *n, const char *what,
                        const char *retract_id)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = event_start(&b, u);
    if (retract_id) {
        rc = rc ?: pep__write_node_attr(&b, "<items node='", n->name, "'><retract id='");
        rc = rc ?: hearth_buf_append_escaped(&b, retract_id, strlen(retract_id));
        rc = rc ?: hearth_buf_append_str(&b, "'/></items>");
    } else {
        rc = rc ?: hearth_buf_printf(&b, "<%s", what);
        rc = rc ?: pep__write_node_attr(&b, " node='", n->name, "'/>");
    }
    rc = rc ?: pubsub_write_event_end(&b, 0, NULL);
    if (!rc)
        notify(w, u, n, &b);
    hearth_buf_free(&b);
}

void pep__notify_config(worker_t *w, user_t *u, const pubsub_node_t *n)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = a ? event_start(&b, u) : HEARTH_ENOMEM;
    rc = rc ?: pep__write_node_attr(&b, "<configuration node='", n->name, "'>");
    if (!rc && n->config.deliver_payloads) {
        hearth_xml_node_t *x = pubsub_config_form(a, NULL, &n->config, HEARTH_FORM_RESULT);
        rc = x ? hearth_xml_serialize(x, HEARTH_NS_PUBSUB_EVENT, &b) : HEARTH_ENOMEM;
    }
    rc = rc ?: hearth_buf_append_str(&b, "</configuration>");
    rc = rc ?: pubsub_write_event_end(&b, 0, NULL);
    if (!rc)
        notify(w, u, n, &b);
    hearth_buf_free(&b);
    hearth_arena_free(a);
}

void pep__send_last(pep_op_t *op, const pubsub_node_t *n, const char *payload)
{
    const pubsub_item_meta_t *it = &n->items[n->nitems - 1];
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = event_start(&b, op->u);
    rc = rc ?: write_items_event(&b, n->name, it->id, n->config.deliver_payloads ? payload : NULL);
    rc = rc ?: pubsub_write_event_end(&b, it->stamp_ms, op->u->bare);
    hearth_bytes_t *bytes = rc ? NULL : hearth_bytes_new(b.data, b.len);
    if (bytes)
        router__route(op->w, STANZA_MESSAGE, op->requester, op->u->bare, "headline", bytes);
    hearth_bytes_unref(bytes);
    hearth_buf_free(&b);
}
