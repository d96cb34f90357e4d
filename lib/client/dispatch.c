/* Stanzas in and out of an online client: sending (hearth_client_send, IQ requests with their
 * responses matched by id and sender, RFC 6120 §8.2.3 and §10.1), handlers filtered by kind,
 * type, payload, sender and id, the <service-unavailable/> answer to IQs nobody takes, and
 * XEP-0199 ping both ways. Touches its client and, through sm.c, its outbox. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- sending ---- */

static bool is_iq_request(const hearth_stanza_t *st)
{
    const char *t = hearth_stanza_type(st);
    return hearth_stanza_kind(st) == HEARTH_STANZA_IQ && t &&
           (!strcmp(t, "get") || !strcmp(t, "set"));
}

int dispatch__send(hearth_client_t *c, hearth_stanza_t *st, pending_iq_t *iq)
{
    if (c->free_pending)
        return HEARTH_ECLOSED;
    if (c->state == HEARTH_CLIENT_IDLE || c->state == HEARTH_CLIENT_CLOSING)
        return HEARTH_ECLOSED;
    hearth_buf_t *b = &c->ctx->scratch;
    hearth_buf_reset(b);
    int rc = hearth_stanza_serialize(st, b);
    if (rc)
        return rc;
    if (c->state == HEARTH_CLIENT_ONLINE && c->conn &&
        net__queued(c->conn) + b->len > c->max_send_queue)
        return HEARTH_EAGAIN;
    if (c->log_stanzas)
        ctx__log(c->ctx, c, HEARTH_LOG_TRACE, "-> %s", b->data);
    rc = sm__send(c, b->data, b->len, iq);
    /* A big stanza leaves no big scratch buffer behind. */
    if (b->cap > 65536)
        hearth_buf_free(b);
    return rc;
}

int hearth_client_send(hearth_client_t *c, hearth_stanza_t *st)
{
    int rc = st && hearth_stanza_kind(st) != HEARTH_STANZA_OTHER && !st->lent
                 ? dispatch__send(c, st, NULL)
                 : HEARTH_EINVAL;
    hearth_stanza_unref(st);
    return rc;
}

/* ---- pending IQs, sorted by deadline ---- */

static void iq_unlink(hearth_client_t *c, pending_iq_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        c->iq_first = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        c->iq_last = p->prev;
    p->prev = p->next = NULL;
    if (p->entry)
        p->entry->iq = NULL;
    p->entry = NULL;
    c->niqs--;
}

static void iq_insert(hearth_client_t *c, pending_iq_t *p)
{
    pending_iq_t *after = c->iq_last;
    while (after && after->deadline > p->deadline)
        after = after->prev;
    p->prev = after;
    p->next = after ? after->next : c->iq_first;
    if (p->next)
        p->next->prev = p;
    else
        c->iq_last = p;
    if (after)
        after->next = p;
    else
        c->iq_first = p;
    c->niqs++;
}

static void iq_free(hearth_client_t *c, pending_iq_t *p)
{
    hearth_jid_clear(&p->to);
    ctx__free(c->ctx, p);
}

/* Unlinks, calls back, frees. */
static void iq_finish(hearth_client_t *c, pending_iq_t *p, int result, hearth_stanza_t *resp)
{
    iq_unlink(c, p);
    hearth_iq_fn cb = p->cb;
    void *ud = p->ud;
    iq_free(c, p);
    if (cb)
        cb(ud, c, result, resp);
}

int hearth_client_iq(hearth_client_t *c, hearth_stanza_t *iq, unsigned timeout_ms, hearth_iq_fn cb,
                     void *ud)
{
    int rc = 0;
    pending_iq_t *p = NULL;
    if (!iq || !is_iq_request(iq) || iq->lent) {
        rc = HEARTH_EINVAL;
        goto out;
    }
    if (c->niqs >= c->max_pending_iqs) {
        rc = HEARTH_ELIMIT;
        goto out;
    }
    char idbuf[32];
    const char *id = hearth_stanza_id(iq);
    if (!id) {
        client__next_id(c, idbuf, sizeof(idbuf));
        if ((rc = hearth_stanza_set_attr(iq, "id", idbuf)))
            goto out;
        id = idbuf;
    }
    size_t idl = strlen(id);
    p = ctx__calloc(c->ctx, sizeof(*p) + idl + 1);
    if (!p) {
        rc = HEARTH_ENOMEM;
        goto out;
    }
    memcpy(p->id, id, idl + 1);
    p->cb = cb;
    p->ud = ud;
    const char *to = hearth_stanza_to(iq);
    if (to) {
        if (hearth_jid_parse(to, strlen(to), &p->to, NULL)) {
            rc = HEARTH_EINVAL;
            goto out;
        }
        p->to_self = !p->to.resource && hearth_jid_equal(&p->to, &c->jid);
    } else {
        p->to_self = true;
    }
    p->deadline = ctx__now(c->ctx) + (timeout_ms ? timeout_ms : c->iq_timeout);
    iq_insert(c, p);
    rc = dispatch__send(c, iq, p);
    if (rc) {
        iq_unlink(c, p);
        goto out;
    }
    p = NULL;
    client__arm(c);
out:
    if (p)
        iq_free(c, p);
    hearth_stanza_unref(iq);
    return rc;
}

/* Whether a response's sender is where the request went (RFC 6120 §8.1.2.1, §10.1): to the
 * account (no 'to' or its bare JID) the server answers from nothing, the bare or full JID, and
 * for a 'to'-less request some servers from the domain. */
static bool from_matches(hearth_client_t *c, const pending_iq_t *p, const char *from)
{
    if (!from)
        return p->to_self;
    hearth_jid_t f = HEARTH_JID_INIT;
    if (hearth_jid_parse(from, strlen(from), &f, NULL))
        return false;
    bool ok;
    if (p->to_self) {
        ok = (f.node && hearth_jid_bare_equal(&f, &c->jid) &&
              (!f.resource || (c->full_jid && !strcmp(f.full, c->full_jid)))) ||
             (!p->to.domain && !f.node && !f.resource && !strcmp(f.domain, c->jid.domain));
    } else {
        ok = hearth_jid_equal(&f, &p->to);
    }
    hearth_jid_clear(&f);
    return ok;
}

/* A result or error: its request's callback, when it matches one. */
static bool response(hearth_client_t *c, hearth_stanza_t *st)
{
    const char *id = hearth_stanza_id(st);
    if (!id)
        return false;
    for (pending_iq_t *p = c->iq_first; p; p = p->next) {
        if (strcmp(p->id, id) != 0)
            continue;
        if (!from_matches(c, p, hearth_stanza_from(st))) {
            ctx__log(c->ctx, c, HEARTH_LOG_WARN,
                     "IQ response %s from %s ignored: the request went to %s", id,
                     hearth_stanza_from(st) ? hearth_stanza_from(st) : "(none)",
                     p->to.full ? p->to.full : "the account");
            return true; /* spoofed: dropped, the request waits on */
        }
        const char *type = hearth_stanza_type(st);
        iq_finish(c, p, !strcmp(type, "result") ? 0 : HEARTH_ESTANZA, st);
        return true;
    }
    return false;
}

void dispatch__iq_timeouts(hearth_client_t *c, uint64_t now)
{
    while (c->iq_first && c->iq_first->deadline <= now && client__alive(c, NULL))
        iq_finish(c, c->iq_first, HEARTH_ETIMEOUT, NULL);
}

void dispatch__fail_iqs(hearth_client_t *c, int result, bool written_only)
{
    pending_iq_t *p = c->iq_first;
    while (p && client__alive(c, NULL)) {
        pending_iq_t *next = p->next;
        if (!written_only || (p->written && !p->entry)) {
            iq_finish(c, p, result, NULL);
            /* the callback may have finished others: start over from the head */
            next = c->iq_first;
            if (written_only)
                while (next && !(next->written && !next->entry))
                    next = next->next;
        }
        p = next;
    }
}

/* ---- handlers ---- */

static void handler_free(hearth_client_t *c, handler_t *h)
{
    ctx__free(c->ctx, h->type);
    ctx__free(c->ctx, h->ns);
    ctx__free(c->ctx, h->name);
    ctx__free(c->ctx, h->id_attr);
    hearth_jid_clear(&h->from);
    ctx__free(c->ctx, h);
}

static int dup_opt(hearth_ctx_t *ctx, const char *s, char **out)
{
    *out = NULL;
    if (!s)
        return 0;
    return (*out = ctx__strdup(ctx, s)) ? 0 : HEARTH_ENOMEM;
}

int hearth_client_add_handler(hearth_client_t *c, const hearth_filter_t *filter, int priority,
                              hearth_handler_fn fn, void *ud, unsigned *id)
{
    static const hearth_filter_t all = {0};
    if (!fn)
        return HEARTH_EINVAL;
    if (!filter)
        filter = &all;
    handler_t *h = ctx__calloc(c->ctx, sizeof(*h));
    if (!h)
        return HEARTH_ENOMEM;
    int rc = dup_opt(c->ctx, filter->type, &h->type);
    rc = rc ?: dup_opt(c->ctx, filter->ns, &h->ns);
    rc = rc ?: dup_opt(c->ctx, filter->name, &h->name);
    rc = rc ?: dup_opt(c->ctx, filter->id, &h->id_attr);
    if (!rc && filter->from && hearth_jid_parse(filter->from, strlen(filter->from), &h->from, NULL))
        rc = HEARTH_EINVAL;
    if (rc) {
        handler_free(c, h);
        return rc;
    }
    h->kinds = filter->kinds ? filter->kinds
                             : HEARTH_STANZA_MESSAGE | HEARTH_STANZA_PRESENCE | HEARTH_STANZA_IQ;
    h->priority = priority;
    h->fn = fn;
    h->ud = ud;
    h->id = ++c->next_handler_id;
    handler_t **pp = &c->handlers;
    while (*pp && (*pp)->priority >= priority)
        pp = &(*pp)->next;
    h->next = *pp;
    *pp = h;
    if (id)
        *id = h->id;
    return 0;
}

static void sweep_handlers(hearth_client_t *c)
{
    if (c->dispatching || !c->handlers_removed)
        return;
    handler_t **pp = &c->handlers;
    while (*pp) {
        handler_t *h = *pp;
        if (!h->fn) {
            *pp = h->next;
            handler_free(c, h);
        } else {
            pp = &h->next;
        }
    }
    c->handlers_removed = false;
}

int hearth_client_remove_handler(hearth_client_t *c, unsigned id)
{
    for (handler_t *h = c->handlers; h; h = h->next) {
        if (h->id == id && h->fn) {
            h->fn = NULL;
            c->handlers_removed = true;
            sweep_handlers(c);
            return 0;
        }
    }
    return HEARTH_ENOTFOUND;
}

/* What the filters look at, computed once per stanza. */
typedef struct view {
    hearth_stanza_kind_t kind;
    const char *type;
    const char *id;
    const char *from;
    int from_state; /* 0 not parsed, 1 parsed, -1 unparsable or absent */
    hearth_jid_t from_jid;
} view_t;

static bool child_matches(const hearth_xml_node_t *el, const char *ns, const char *name)
{
    for (hearth_xml_node_t *n = hearth_xml_first_element(el); n; n = hearth_xml_next_element(n))
        if ((!ns || !strcmp(n->ns, ns)) && (!name || !strcmp(n->name, name)))
            return true;
    return false;
}

static bool from_filter(view_t *v, const hearth_jid_t *want)
{
    if (v->from_state == 0) {
        v->from_state =
            v->from && !hearth_jid_parse(v->from, strlen(v->from), &v->from_jid, NULL) ? 1 : -1;
    }
    if (v->from_state < 0)
        return false;
    const hearth_jid_t *f = &v->from_jid;
    if (want->resource)
        return hearth_jid_equal(f, want);
    if (want->node)
        return hearth_jid_bare_equal(f, want);
    return !f->node && !f->resource && !strcmp(f->domain, want->domain);
}

static bool matches(const handler_t *h, view_t *v, const hearth_xml_node_t *el)
{
    if (!(h->kinds & v->kind))
        return false;
    if (h->type) {
        const char *t = v->type;
        if (!t)
            t = v->kind == HEARTH_STANZA_MESSAGE    ? "normal"
                : v->kind == HEARTH_STANZA_PRESENCE ? "available"
                                                    : "";
        if (strcmp(t, h->type) != 0)
            return false;
    }
    if (h->id_attr && (!v->id || strcmp(v->id, h->id_attr) != 0))
        return false;
    if ((h->ns || h->name) && !child_matches(el, h->ns, h->name))
        return false;
    if (h->from.domain && !from_filter(v, &h->from))
        return false;
    return true;
}

void dispatch__stanza(hearth_client_t *c, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    hearth_stanza_kind_t kind = stanza__kind_of(el);
    if (kind == HEARTH_STANZA_OTHER) {
        ctx__log(c->ctx, c, HEARTH_LOG_DEBUG, "ignored <%s xmlns='%s'/>", el->name, el->ns);
        return;
    }
    if (c->sm_enabled)
        c->sm_in++;
    hearth_stanza_t st = {.refs = 1, .lent = true, .arena = arena, .node = el};
    if (c->log_stanzas && ctx__log_on(c->ctx, HEARTH_LOG_TRACE)) {
        hearth_buf_t b = HEARTH_BUF_INIT;
        if (!hearth_stanza_serialize(&st, &b))
            ctx__log(c->ctx, c, HEARTH_LOG_TRACE, "<- %s", b.data);
        hearth_buf_free(&b);
    }
    view_t v = {.kind = kind,
                .type = hearth_stanza_type(&st),
                .id = hearth_stanza_id(&st),
                .from = hearth_stanza_from(&st)};
    bool request =
        kind == HEARTH_STANZA_IQ && v.type && (!strcmp(v.type, "get") || !strcmp(v.type, "set"));
    if (kind == HEARTH_STANZA_IQ && !request) {
        if (!v.type || (strcmp(v.type, "result") != 0 && strcmp(v.type, "error") != 0))
            return; /* RFC 6120 §8.2.3: no other IQ type exists; never answer a response */
        if (response(c, &st))
            return;
    }
    bool handled = false;
    /* Handlers added during this dispatch wait for the next stanza. */
    unsigned newest = c->next_handler_id;
    c->dispatching++;
    for (handler_t *h = c->handlers; h && !handled; h = h->next) {
        if (!h->fn || h->id > newest || !matches(h, &v, el))
            continue;
        handled = h->fn(h->ud, c, &st) == HEARTH_HANDLED;
        if (!client__alive(c, NULL))
            break;
    }
    c->dispatching--;
    if (v.from_state > 0)
        hearth_jid_clear(&v.from_jid);
    if (!client__alive(c, NULL))
        return;
    sweep_handlers(c);
    if (request && !handled) {
        hearth_stanza_t *err =
            hearth_stanza_new_error(&st, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        if (err)
            (void)hearth_client_send(c, err);
    }
}

/* ---- ping (XEP-0199) ---- */

static int answer_ping(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    (void)ud;
    hearth_stanza_t *r = hearth_stanza_new_iq_result(st);
    if (r)
        (void)hearth_client_send(c, r);
    return HEARTH_HANDLED;
}

int dispatch__builtin(hearth_client_t *c)
{
    hearth_filter_t f = {
        .kinds = HEARTH_STANZA_IQ, .type = "get", .ns = HEARTH_NS_PING, .name = "ping"};
    return hearth_client_add_handler(c, &f, -1000, answer_ping, NULL, NULL);
}

typedef struct ping_req {
    hearth_iq_fn cb;
    void *ud;
} ping_req_t;

static void ping_answered(void *ud, hearth_client_t *c, int result, hearth_stanza_t *resp)
{
    ping_req_t pr = *(ping_req_t *)ud;
    ctx__free(c->ctx, ud);
    if (result == HEARTH_ESTANZA) {
        hearth_stanza_error_t e = hearth_stanza_error(resp, NULL);
        if (e == HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE ||
            e == HEARTH_STANZA_ERR_FEATURE_NOT_IMPLEMENTED)
            result = 0; /* XEP-0199 §4.1: it answered, so it is there */
    }
    if (pr.cb)
        pr.cb(pr.ud, c, result, resp);
}

int hearth_client_ping(hearth_client_t *c, const char *to, unsigned timeout_ms, hearth_iq_fn cb,
                       void *ud)
{
    ping_req_t *pr = ctx__alloc(c->ctx, sizeof(*pr));
    if (!pr)
        return HEARTH_ENOMEM;
    pr->cb = cb;
    pr->ud = ud;
    hearth_stanza_t *iq = hearth_stanza_new_iq("get", to, "ping", HEARTH_NS_PING, NULL);
    int rc = iq ? hearth_client_iq(c, iq, timeout_ms, ping_answered, pr) : HEARTH_ENOMEM;
    if (rc)
        ctx__free(c->ctx, pr);
    return rc;
}

/* The client's own keep-alive: no answer in time means the connection is dead. */
static void keepalive_answered(void *ud, hearth_client_t *c, int result, hearth_stanza_t *resp)
{
    (void)ud;
    (void)resp;
    c->ping_outstanding = false;
    if (result == HEARTH_ETIMEOUT && c->state == HEARTH_CLIENT_ONLINE)
        client__lost(c, HEARTH_ETIMEOUT, HEARTH_STREAM_ERR_NONE, "no answer to a ping", NULL);
}

void dispatch__ping_server(hearth_client_t *c)
{
    if (hearth_client_ping(c, c->jid.domain, c->iq_timeout, keepalive_answered, NULL) == 0)
        c->ping_outstanding = true;
}

/* ---- teardown ---- */

void dispatch__drop_iqs(hearth_client_t *c, hearth_iq_fn cb,
                        void (*free_ud)(hearth_client_t *c, void *ud))
{
    pending_iq_t *p = c->iq_first;
    while (p) {
        pending_iq_t *next = p->next;
        if (p->cb == cb) {
            void *ud = p->ud;
            iq_unlink(c, p);
            iq_free(c, p);
            if (free_ud)
                free_ud(c, ud);
        }
        p = next;
    }
}

void dispatch__free(hearth_client_t *c)
{
    while (c->iq_first) {
        pending_iq_t *p = c->iq_first;
        iq_unlink(c, p);
        /* A ping's own allocation rides in ud. */
        if (p->cb == ping_answered)
            ctx__free(c->ctx, p->ud);
        iq_free(c, p);
    }
    while (c->handlers) {
        handler_t *h = c->handlers;
        c->handlers = h->next;
        handler_free(c, h);
    }
}
