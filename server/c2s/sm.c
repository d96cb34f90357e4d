/* Stream management (XEP-0198) on a c2s session; see sm.h. Counters are 32-bit and wrap, as
 * the XEP says; comparisons are made on differences. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c2s/conn.h"
#include "core/log.h"
#include "modules/im.h"

static const char *ns_of(const conn_t *c)
{
    return c->sm.v2 ? NS_SM2 : NS_SM3;
}

int sm__is_sm(const hearth_xml_node_t *el)
{
    return !strcmp(el->ns, NS_SM3) || !strcmp(el->ns, NS_SM2);
}

static void send_failed(conn_t *c, const char *ns, const char *cond, const char *extra)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "<failed xmlns='%s'%s><%s xmlns='%s'/></failed>", ns,
             extra ? extra : "", cond, HEARTH_NS_STANZA_ERRORS);
    conn__send(c, buf, strlen(buf));
}

void sm__refuse(conn_t *c, hearth_xml_node_t *el)
{
    if (!strcmp(el->name, "resume") || !strcmp(el->name, "enable"))
        send_failed(c, el->ns, "unexpected-request", NULL);
    else
        conn__stream_error(c, HEARTH_STREAM_ERR_UNSUPPORTED_STANZA_TYPE,
                           "stream management needs an authenticated session");
}

static uint32_t handled(const conn_t *c)
{
    return c->sm.npending ? c->sm.pending[0] - 1 : c->sm.received;
}

static void send_ack(conn_t *c)
{
    char buf[96];
    snprintf(buf, sizeof(buf), "<a xmlns='%s' h='%u'/>", ns_of(c), handled(c));
    conn__send(c, buf, strlen(buf));
}

/* ---- server -> client ---- */

/* ---- the worker's budget for detached sessions ---- */

/* What a detached session costs besides its queue (the connection, its TLS and parser). */
#define SM_DETACHED_OVERHEAD 16384

static void budget_add(conn_t *c, size_t n)
{
    if (c->sm.detached)
        c->w->sm_detached_bytes += n;
}

static void budget_sub(conn_t *c, size_t n)
{
    if (c->sm.detached)
        c->w->sm_detached_bytes -= n;
}

static void on_budget_timer(uv_timer_t *t)
{
    worker_t *w = t->data;
    size_t budget = w->srv->set.resume_budget;
    while (w->sm_detached_bytes > budget) {
        conn_t *oldest = NULL;
        for (conn_t *c = w->conns; c; c = c->next)
            if (c->sm.detached && !c->handles_closing &&
                (!oldest || c->sm.detached_ms < oldest->sm.detached_ms))
                oldest = c;
        if (!oldest)
            break;
        hlog_conn(LOG_WARN, oldest->id, conn__log_jid(oldest),
                  "detached sessions on this worker hold %zu bytes, over c2s.resume_budget: "
                  "the oldest ends, its %zu unacknowledged stanzas go back to delivery",
                  w->sm_detached_bytes, oldest->sm.qlen);
        conn__abort(oldest); /* unbinds now: its queue is rerouted and leaves the budget */
    }
}

/* Past the budget the oldest detached sessions end, on the next loop turn: never inside the
 * delivery that made the queue grow. */
static void budget_check(conn_t *c)
{
    worker_t *w = c->w;
    if (!c->sm.detached || w->sm_detached_bytes <= w->srv->set.resume_budget)
        return;
    if (!w->sm_budget_timer.data) {
        uv_timer_init(&w->loop, &w->sm_budget_timer);
        w->sm_budget_timer.data = w;
    }
    if (!uv_is_active((uv_handle_t *)&w->sm_budget_timer))
        uv_timer_start(&w->sm_budget_timer, on_budget_timer, 0, 0);
}

void sm__mark_detached(conn_t *c)
{
    if (c->sm.detached)
        return;
    c->sm.detached = 1;
    c->sm.detached_ms = uv_now(&c->w->loop);
    budget_add(c, c->sm.qbytes + SM_DETACHED_OVERHEAD);
    budget_check(c);
}

static void unmark_detached(conn_t *c)
{
    budget_sub(c, c->sm.qbytes + SM_DETACHED_OVERHEAD);
    c->sm.detached = 0;
}

static void q_drop_front(conn_t *c, size_t n)
{
    sm_state_t *sm = &c->sm;
    for (size_t i = 0; i < n && sm->qlen; i++) {
        size_t len = sm->q[sm->qhead]->len;
        sm->qbytes -= len;
        budget_sub(c, len);
        hearth_bytes_unref(sm->q[sm->qhead]);
        sm->q[sm->qhead] = NULL;
        sm->qhead = (sm->qhead + 1) % sm->qcap;
        sm->qlen--;
    }
}

static int q_push(sm_state_t *sm, hearth_bytes_t *b)
{
    if (sm->qlen == sm->qcap) {
        size_t ncap = sm->qcap ? sm->qcap * 2 : 16;
        hearth_bytes_t **nq = calloc(ncap, sizeof(*nq));
        if (!nq)
            return HEARTH_ENOMEM;
        for (size_t i = 0; i < sm->qlen; i++)
            nq[i] = sm->q[(sm->qhead + i) % sm->qcap];
        free(sm->q);
        sm->q = nq;
        sm->qcap = ncap;
        sm->qhead = 0;
    }
    sm->q[(sm->qhead + sm->qlen) % sm->qcap] = b;
    sm->qlen++;
    return 0;
}

int sm__outbound(conn_t *c, const char *data, size_t len)
{
    sm_state_t *sm = &c->sm;
    hearth_bytes_t *b = hearth_bytes_new(data, len);
    if (!b || q_push(sm, b)) {
        hearth_bytes_unref(b);
        b = NULL;
    } else {
        sm->qbytes += len;
        budget_add(c, len);
        sm->out++;
    }
    /* Past the bound the session ends; the stanza is already queued, so it goes back through
     * delivery with the rest (sm__reroute), never lost. */
    if (!b || sm->qlen > SM_QUEUE_MAX || sm->qbytes > SM_QUEUE_BYTES) {
        if (sm->detached) {
            /* No stream to end: the session ends on the next loop turn (its timer), never
             * inside the delivery that is walking the account's sessions now. */
            if (sm->resume) {
                hlog_conn(LOG_WARN, c->id, conn__log_jid(c),
                          "unacknowledged queue of a detached session full: it ends");
                sm->resume = 0;
                conn__timer_in(c, 0);
            }
            return 1;
        }
        hlog_conn(LOG_WARN, c->id, conn__log_jid(c), "unacknowledged queue full: closing");
        sm->resume = 0;
        conn__stream_error(c, HEARTH_STREAM_ERR_POLICY_VIOLATION,
                           "too many stanzas not acknowledged");
        return 1;
    }
    if (sm->detached) {
        budget_check(c);
        return 1; /* kept for the resumption */
    }
    if (sm->resending)
        return 1; /* kept; the resend pump sends it in its turn */
    sm->since_request++;
    return 0;
}

void sm__after_outbound(conn_t *c)
{
    if (c->sm.since_request >= SM_REQUEST_EVERY && !c->sm.detached && !c->closing) {
        char buf[64];
        snprintf(buf, sizeof(buf), "<r xmlns='%s'/>", ns_of(c));
        conn__send(c, buf, strlen(buf));
        c->sm.since_request = 0;
    }
}

/* The client's h: acknowledges everything up to it. 0, or -1 when h is impossible. */
static int acknowledge(conn_t *c, uint32_t h)
{
    sm_state_t *sm = &c->sm;
    uint32_t delta = h - sm->acked;
    uint32_t unacked = sm->out - sm->acked;
    if (delta > unacked)
        return -1;
    q_drop_front(c, delta);
    sm->resend_i = sm->resend_i > delta ? sm->resend_i - delta : 0;
    sm->acked = h;
    return 0;
}

static int parse_h(const hearth_xml_node_t *el, uint32_t *h)
{
    const char *s = hearth_xml_attr(el, "h");
    if (!s || !*s)
        return -1;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > 0xffffffffULL || s[0] == '-')
        return -1;
    *h = (uint32_t)v;
    return 0;
}

static void too_high(conn_t *c, uint32_t h)
{
    char text[128];
    snprintf(text, sizeof(text), "handled-count-too-high: h=%u but only %u were sent", h,
             c->sm.out);
    conn__stream_error(c, HEARTH_STREAM_ERR_UNDEFINED_CONDITION, text);
}

/* ---- client -> server ---- */

void sm__begin_inbound(conn_t *c)
{
    if (!c->sm.enabled)
        return;
    sm_state_t *sm = &c->sm;
    sm->cur_seq = ++sm->received;
    sm->cur_async = 0;
    /* Registered before dispatch: a delivery on this worker settles it synchronously. */
    if (sm->npending == sm->pcap) {
        size_t ncap = sm->pcap ? sm->pcap * 2 : 16;
        uint32_t *np = realloc(sm->pending, ncap * sizeof(*np));
        if (!np)
            return;
        sm->pending = np;
        sm->pcap = ncap;
    }
    sm->pending[sm->npending++] = sm->cur_seq;
}

/* Answers the waiting <r/> that everything before has settled for, in order; and once the
 * client is no longer behind, an unsolicited <a/> when an earlier answer left some unsettled. */
static void answer_waiting(conn_t *c)
{
    sm_state_t *sm = &c->sm;
    if (sm->detached || c->closing)
        return;
    uint32_t h = handled(c);
    size_t done = 0;
    while (done < sm->nack_wait && (int32_t)(h - sm->ack_wait[done]) >= 0)
        done++;
    if (done) {
        memmove(sm->ack_wait, sm->ack_wait + done, (sm->nack_wait - done) * sizeof(uint32_t));
        sm->nack_wait -= done;
        for (size_t i = 0; i < done; i++)
            send_ack(c);
        if (sm->npending)
            sm->ack_behind = 1;
    } else if (sm->ack_behind && !sm->npending && !sm->nack_wait) {
        sm->ack_behind = 0;
        send_ack(c);
    }
}

static void request(conn_t *c)
{
    sm_state_t *sm = &c->sm;
    if (!sm->npending) {
        send_ack(c);
        return;
    }
    if (sm->nack_wait == SM_ACK_WAIT_MAX)
        sm->nack_wait--; /* the newest waiting answer covers this one too */
    sm->ack_wait[sm->nack_wait++] = sm->received;
}

void sm__settle(conn_t *c, uint32_t seq)
{
    sm_state_t *sm = &c->sm;
    for (size_t i = 0; i < sm->npending; i++) {
        if (sm->pending[i] != seq)
            continue;
        memmove(sm->pending + i, sm->pending + i + 1, (sm->npending - i - 1) * sizeof(uint32_t));
        sm->npending--;
        break;
    }
    answer_waiting(c);
}

void sm__end_inbound(conn_t *c)
{
    if (c->sm.enabled && !c->sm.cur_async)
        sm__settle(c, c->sm.cur_seq);
}

/* ---- enable, resume ---- */

static void enable(conn_t *c, hearth_xml_node_t *el)
{
    sm_state_t *sm = &c->sm;
    if (c->state != C2S_BOUND || sm->enabled) {
        send_failed(c, el->ns, "unexpected-request", NULL);
        return;
    }
    const char *r = hearth_xml_attr(el, "resume");
    unsigned timeout = c->w->srv->set.resume_timeout;
    sm->enabled = 1;
    sm->v2 = !strcmp(el->ns, NS_SM2);
    sm->resume = r && (!strcmp(r, "true") || !strcmp(r, "1")) && timeout > 0;
    unsigned char rnd[9];
    uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL);
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(sm->id + 2 * i, 3, "%02x", rnd[i]);
    char buf[256];
    if (sm->resume)
        snprintf(buf, sizeof(buf), "<enabled xmlns='%s' id='%s' resume='true' max='%u'/>", el->ns,
                 sm->id, timeout);
    else
        snprintf(buf, sizeof(buf), "<enabled xmlns='%s' id='%s'/>", el->ns, sm->id);
    conn__send(c, buf, strlen(buf));
    hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "stream management enabled%s",
              sm->resume ? " with resumption" : "");
}

/* The new connection takes over the old session: its address, place in the user's sessions,
 * presence, interests and stream-management state; the old one is released silently. */
static void take_over(conn_t *c, conn_t *old)
{
    user_t *u = old->user;
    for (conn_t **pp = &u->sessions; *pp; pp = &(*pp)->user_next) {
        if (*pp == old) {
            *pp = c;
            c->user_next = old->user_next;
            break;
        }
    }
    c->user = u;
    old->user = NULL;
    old->user_next = NULL;
    c->jid = old->jid;
    old->jid = (hearth_jid_t)HEARTH_JID_INIT;
    c->roster_interested = old->roster_interested;
    c->blocklist_interested = old->blocklist_interested;
    c->available = old->available;
    c->priority = old->priority;
    c->presence = old->presence;
    old->presence = NULL;
    c->directed = old->directed;
    old->directed = (strmap_t){0};
    old->available = 0;
    c->carbons = old->carbons;
    unmark_detached(old); /* its queue is the new connection's, no longer detached */
    c->sm = old->sm;
    c->sm.detached = 0;
    c->sm.since_request = 0;
    c->sm.nack_wait = 0; /* requests of the lost stream: <resumed/> carries the answer */
    c->sm.ack_behind = 0;
    memset(&old->sm, 0, sizeof(old->sm));
    c->state = C2S_BOUND;
}

static void resume(conn_t *c, hearth_xml_node_t *el)
{
    const char *previd = hearth_xml_attr(el, "previd");
    uint32_t h;
    if (c->state != C2S_WAIT_BIND || c->binding) {
        send_failed(c, el->ns, "unexpected-request", NULL);
        return;
    }
    if (!previd || parse_h(el, &h)) {
        send_failed(c, el->ns, "bad-request", NULL);
        return;
    }
    /* Only the same account's sessions are searched: another user's id is simply unknown. */
    user_t *u = worker__user(c->w, c->bare, 0);
    conn_t *old = NULL;
    for (conn_t *s = u ? u->sessions : NULL; s; s = s->user_next)
        if (s->sm.enabled && s->sm.resume && !strcmp(s->sm.id, previd))
            old = s;
    if (!old) {
        send_failed(c, el->ns, "item-not-found", NULL);
        return;
    }
    if (acknowledge(old, h)) {
        char extra[48];
        snprintf(extra, sizeof(extra), " h='%u'", handled(old));
        send_failed(c, el->ns, "unexpected-request", extra);
        return;
    }
    if (!old->sm.detached) {
        hlog_conn(LOG_INFO, old->id, conn__log_jid(old), "replaced by its resumption");
        conn__detach_socket(old);
    }
    take_over(c, old);
    conn__abort(old); /* nothing of the session is left in it */
    char buf[128];
    snprintf(buf, sizeof(buf), "<resumed xmlns='%s' h='%u' previd='%s'/>", ns_of(c), handled(c),
             c->sm.id);
    conn__send(c, buf, strlen(buf));
    hlog_conn(LOG_INFO, c->id, c->jid.full, "resumed %s, resending %zu stanzas", c->jid.full,
              c->sm.qlen);
    c->sm.resend_i = 0;
    c->sm.resending = c->sm.qlen > 0;
    sm__pump(c);
    conn__arm_timer(c);
}

void sm__element(conn_t *c, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    const char *name = el->name;
    if (!strcmp(name, "resume")) {
        resume(c, el);
        return;
    }
    if (!strcmp(name, "enable")) {
        enable(c, el);
        return;
    }
    if (!c->sm.enabled) {
        conn__stream_error(c, HEARTH_STREAM_ERR_UNSUPPORTED_STANZA_TYPE,
                           "stream management is not enabled");
        return;
    }
    if (!strcmp(name, "r")) {
        request(c);
    } else if (!strcmp(name, "a")) {
        uint32_t h;
        if (parse_h(el, &h)) {
            conn__stream_error(c, HEARTH_STREAM_ERR_UNDEFINED_CONDITION, "an <a/> needs an h");
            return;
        }
        if (acknowledge(c, h))
            too_high(c, h);
    } else {
        conn__stream_error(c, HEARTH_STREAM_ERR_UNSUPPORTED_STANZA_TYPE, NULL);
    }
}

/* ---- ends ---- */

int sm__lost(conn_t *c)
{
    if (!c->sm.enabled || !c->sm.resume || c->sm.detached || c->state != C2S_BOUND ||
        c->handles_closing || c->closing || !c->user || c->w->stopping)
        return 0; /* an ending session is not kept */
    hlog_conn(LOG_INFO, c->id, conn__log_jid(c),
              "connection lost: session kept %u s for resumption, %zu stanzas unacknowledged",
              c->w->srv->set.resume_timeout, c->sm.qlen);
    conn__detach_socket(c);
    conn__timer_in(c, (uint64_t)c->w->srv->set.resume_timeout * 1000);
    return 1;
}

typedef struct reroute {
    worker_t *w;
    const char *full;
} reroute_t;

static void reroute_one(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    reroute_t *r = ud;
    const char *type = hearth_xml_attr(st, "type");
    if (strcmp(st->name, "message") ||
        (type &&
         (!strcmp(type, "error") || !strcmp(type, "groupchat") || !strcmp(type, "headline"))))
        return; /* only what waits offline is worth delivering again */
    hearth_xml_set_attr(arena, st, "to", r->full);
    router__reroute_node(r->w, r->full, st);
}

void sm__reroute(conn_t *c)
{
    sm_state_t *sm = &c->sm;
    if (!sm->enabled || !sm->qlen || !c->jid.full)
        return;
    hlog_conn(LOG_INFO, c->id, c->jid.full, "%zu unacknowledged stanzas go back to delivery",
              sm->qlen);
    reroute_t r = {c->w, c->jid.full};
    for (size_t i = 0; i < sm->qlen; i++) {
        hearth_bytes_t *b = sm->q[(sm->qhead + i) % sm->qcap];
        im__parse(b->data, b->len, reroute_one, &r);
    }
    q_drop_front(c, sm->qlen);
}

/* The queue after a resumption, as the connection drains: all of it at once could pass the
 * output bound and cut the session again. */
#define SM_PUMP_BYTES (256 * 1024)

void sm__pump(conn_t *c)
{
    sm_state_t *sm = &c->sm;
    while (sm->resending && sm->resend_i < sm->qlen && !c->closing && !sm->detached &&
           c->outq.len + c->inflight.len < SM_PUMP_BYTES) {
        hearth_bytes_t *b = sm->q[(sm->qhead + sm->resend_i++) % sm->qcap];
        conn__send(c, b->data, b->len);
        sm->since_request++;
    }
    if (sm->resend_i >= sm->qlen) {
        sm->resending = 0;
        sm__after_outbound(c);
    }
}

void sm__free(conn_t *c)
{
    q_drop_front(c, c->sm.qlen);
    unmark_detached(c);
    free(c->sm.q);
    free(c->sm.pending);
    memset(&c->sm, 0, sizeof(c->sm));
}
