/* Stream management (XEP-0198) of a c2s session; see sm.h. The state belongs to the session
 * and survives its connection: a resumption attaches a new connection to the same session.
 * Counters are 32-bit and wrap, as the XEP says; comparisons are made on differences. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c2s/conn.h"
#include "core/log.h"
#include "core/router.h"
#include "core/user.h"

static const char *ns_of(const c2s_session_t *cs)
{
    return cs->sm.v2 ? HEARTH_NS_SM2 : HEARTH_NS_SM3;
}

int sm__is_sm(const hearth_xml_node_t *el)
{
    return !strcmp(el->ns, HEARTH_NS_SM3) || !strcmp(el->ns, HEARTH_NS_SM2);
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

static uint32_t handled(const c2s_session_t *cs)
{
    return cs->sm.npending ? cs->sm.pending[0] - 1 : cs->sm.received;
}

/* Written only on a connection: a detached session answers nothing (<resumed/> carries h). */
static void send_ack(c2s_session_t *cs)
{
    if (!cs->c || cs->c->closing)
        return;
    char buf[96];
    snprintf(buf, sizeof(buf), "<a xmlns='%s' h='%u'/>", ns_of(cs), handled(cs));
    conn__send(cs->c, buf, strlen(buf));
}

/* ---- the worker's budget for detached sessions ---- */

/* What a detached session costs besides its queue (the session and its bookkeeping). */
#define SM_DETACHED_OVERHEAD 16384

static void budget_add(c2s_session_t *cs, size_t n)
{
    if (cs->sm.detached)
        c2s__worker(cs->s.w)->sm_detached_bytes += n;
}

static void budget_sub(c2s_session_t *cs, size_t n)
{
    if (cs->sm.detached)
        c2s__worker(cs->s.w)->sm_detached_bytes -= n;
}

/* The oldest detached session of the worker. Detached sessions hang off their users, which
 * hang off the worker's user table: walked only when the budget is passed. */
static c2s_session_t *oldest_detached(worker_t *w)
{
    c2s_session_t *oldest = NULL;
    STRMAP_FOREACH(&w->users, e)
    {
        user_t *u = e->value;
        for (session_t *s = u->sessions; s; s = s->user_next) {
            c2s_session_t *cs = csession__of(s);
            if (cs->sm.detached && !s->ending &&
                (!oldest || cs->sm.detached_ms < oldest->sm.detached_ms))
                oldest = cs;
        }
    }
    return oldest;
}

static void on_budget_timer(uv_timer_t *t)
{
    c2s_worker_t *cw = t->data;
    size_t budget = cw->w->set.resume_budget;
    while (cw->sm_detached_bytes > budget) {
        c2s_session_t *oldest = oldest_detached(cw->w);
        if (!oldest)
            break;
        hlog_conn(LOG_WARN, oldest->s.id, oldest->s.jid.full,
                  "detached sessions on this worker hold %zu bytes, over c2s.resume_budget: "
                  "the oldest ends, its %zu unacknowledged stanzas go back to delivery",
                  cw->sm_detached_bytes, oldest->sm.qlen);
        csession__end(oldest); /* its queue is rerouted and leaves the budget now */
    }
}

/* Past the budget the oldest detached sessions end, on the next loop turn: never inside the
 * delivery that made the queue grow. */
static void budget_check(c2s_session_t *cs)
{
    c2s_worker_t *cw = c2s__worker(cs->s.w);
    if (!cs->sm.detached || cw->sm_detached_bytes <= cs->s.w->set.resume_budget)
        return;
    if (!cw->sm_budget_timer_open) {
        uv_timer_init(&cs->s.w->loop, &cw->sm_budget_timer);
        cw->sm_budget_timer.data = cw;
        cw->sm_budget_timer_open = 1;
    }
    if (!uv_is_active((uv_handle_t *)&cw->sm_budget_timer))
        uv_timer_start(&cw->sm_budget_timer, on_budget_timer, 0, 0);
}

void sm__mark_detached(c2s_session_t *cs)
{
    if (cs->sm.detached)
        return;
    cs->sm.detached = 1;
    cs->sm.detached_ms = uv_now(&cs->s.w->loop);
    budget_add(cs, cs->sm.qbytes + SM_DETACHED_OVERHEAD);
    budget_check(cs);
}

void sm__unmark_detached(c2s_session_t *cs)
{
    budget_sub(cs, cs->sm.qbytes + SM_DETACHED_OVERHEAD);
    cs->sm.detached = 0;
}

/* ---- server -> client ---- */

static void q_drop_front(c2s_session_t *cs, size_t n)
{
    sm_state_t *sm = &cs->sm;
    for (size_t i = 0; i < n && sm->qlen; i++) {
        size_t len = sm->q[sm->qhead]->len;
        sm->qbytes -= len;
        budget_sub(cs, len);
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

int sm__outbound(c2s_session_t *cs, const char *data, size_t len)
{
    sm_state_t *sm = &cs->sm;
    hearth_bytes_t *b = hearth_bytes_new(data, len);
    if (!b || q_push(sm, b)) {
        hearth_bytes_unref(b);
        b = NULL;
    } else {
        sm->qbytes += len;
        budget_add(cs, len);
        sm->out++;
    }
    /* Past the bound the session ends; the stanza is already queued, so it goes back through
     * delivery with the rest (sm__reroute), never lost. */
    if (!b || sm->qlen > SM_QUEUE_MAX || sm->qbytes > SM_QUEUE_BYTES) {
        if (!cs->s.ending) {
            hlog_conn(LOG_WARN, cs->s.id, cs->s.jid.full, "unacknowledged queue full: closing");
            /* Ended on the next loop turn, never inside the delivery walking the account's
             * sessions now. */
            session__end(&cs->s, HEARTH_STREAM_ERR_POLICY_VIOLATION,
                         "too many stanzas not acknowledged");
        }
        return 1;
    }
    if (sm->detached) {
        budget_check(cs);
        return 1; /* kept for the resumption */
    }
    if (sm->resending)
        return 1; /* kept; the resend pump sends it in its turn */
    sm->since_request++;
    return 0;
}

void sm__after_outbound(c2s_session_t *cs)
{
    if (cs->sm.since_request >= SM_REQUEST_EVERY && cs->c && !cs->c->closing) {
        char buf[64];
        snprintf(buf, sizeof(buf), "<r xmlns='%s'/>", ns_of(cs));
        conn__send(cs->c, buf, strlen(buf));
        cs->sm.since_request = 0;
    }
}

/* The client's h: acknowledges everything up to it. 0, or -1 when h is impossible. */
static int acknowledge(c2s_session_t *cs, uint32_t h)
{
    sm_state_t *sm = &cs->sm;
    uint32_t delta = h - sm->acked;
    uint32_t unacked = sm->out - sm->acked;
    if (delta > unacked)
        return -1;
    q_drop_front(cs, delta);
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
             c->cs->sm.out);
    conn__stream_error(c, HEARTH_STREAM_ERR_UNDEFINED_CONDITION, text);
}

/* ---- client -> server ---- */

void sm__begin_inbound(c2s_session_t *cs)
{
    sm_state_t *sm = &cs->sm;
    if (!sm->enabled)
        return;
    sm->cur_seq = ++sm->received;
    sm->cur_async = 0;
    /* Registered before dispatch: a delivery settles it by its sequence number. */
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

int sm__defer_settle(c2s_session_t *cs, char *sm_id, uint32_t *seq)
{
    sm_state_t *sm = &cs->sm;
    if (!sm->enabled)
        return 0;
    memcpy(sm_id, sm->id, sizeof(sm->id));
    *seq = sm->cur_seq;
    sm->cur_async = 1;
    return 1;
}

/* Answers the waiting <r/> that everything before has settled for, in order; and once the
 * client is no longer behind, an unsolicited <a/> when an earlier answer left some unsettled. */
static void answer_waiting(c2s_session_t *cs)
{
    sm_state_t *sm = &cs->sm;
    if (!cs->c || cs->c->closing)
        return;
    uint32_t h = handled(cs);
    size_t done = 0;
    while (done < sm->nack_wait && (int32_t)(h - sm->ack_wait[done]) >= 0)
        done++;
    if (done) {
        memmove(sm->ack_wait, sm->ack_wait + done, (sm->nack_wait - done) * sizeof(uint32_t));
        sm->nack_wait -= done;
        for (size_t i = 0; i < done; i++)
            send_ack(cs);
        if (sm->npending)
            sm->ack_behind = 1;
    } else if (sm->ack_behind && !sm->npending && !sm->nack_wait) {
        sm->ack_behind = 0;
        send_ack(cs);
    }
}

static void request(c2s_session_t *cs)
{
    sm_state_t *sm = &cs->sm;
    if (!sm->npending) {
        send_ack(cs);
        return;
    }
    if (sm->nack_wait == SM_ACK_WAIT_MAX)
        sm->nack_wait--; /* the newest waiting answer covers this one too */
    sm->ack_wait[sm->nack_wait++] = sm->received;
}

void sm__settle(c2s_session_t *cs, uint32_t seq)
{
    sm_state_t *sm = &cs->sm;
    for (size_t i = 0; i < sm->npending; i++) {
        if (sm->pending[i] != seq)
            continue;
        memmove(sm->pending + i, sm->pending + i + 1, (sm->npending - i - 1) * sizeof(uint32_t));
        sm->npending--;
        break;
    }
    answer_waiting(cs);
}

void sm__end_inbound(c2s_session_t *cs)
{
    if (cs->sm.enabled && !cs->sm.cur_async)
        sm__settle(cs, cs->sm.cur_seq);
}

/* ---- enable, resume ---- */

static void enable(conn_t *c, hearth_xml_node_t *el)
{
    c2s_session_t *cs = c->cs;
    if (c->state != C2S_BOUND || !cs || cs->sm.enabled) {
        send_failed(c, el->ns, "unexpected-request", NULL);
        return;
    }
    sm_state_t *sm = &cs->sm;
    const char *r = hearth_xml_attr(el, "resume");
    unsigned timeout = c->w->set.resume_timeout;
    sm->enabled = 1;
    sm->v2 = !strcmp(el->ns, HEARTH_NS_SM2);
    sm->resume = r && (!strcmp(r, "true") || !strcmp(r, "1")) && timeout > 0;
    user__random_id(sm->id, sizeof(sm->id));
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

static void resume(conn_t *c, hearth_xml_node_t *el)
{
    const char *previd = hearth_xml_attr(el, "previd");
    uint32_t h;
    if (c->state != C2S_WAIT_BIND || c->binding || c->cs) {
        send_failed(c, el->ns, "unexpected-request", NULL);
        return;
    }
    if (!previd || parse_h(el, &h)) {
        send_failed(c, el->ns, "bad-request", NULL);
        return;
    }
    /* Only the same account's sessions are searched: another user's id is simply unknown. */
    user_t *u = worker__user(c->w, c->bare, 0);
    c2s_session_t *old = NULL;
    for (session_t *s = u ? u->sessions : NULL; s; s = s->user_next) {
        c2s_session_t *cs = csession__of(s);
        if (cs->sm.enabled && cs->sm.resume && !s->ending && !strcmp(cs->sm.id, previd))
            old = cs;
    }
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
    csession__attach(old, c);
    char buf[128];
    snprintf(buf, sizeof(buf), "<resumed xmlns='%s' h='%u' previd='%s'/>", ns_of(old), handled(old),
             old->sm.id);
    conn__send(c, buf, strlen(buf));
    hlog_conn(LOG_INFO, c->id, old->s.jid.full, "resumed %s, resending %zu stanzas",
              old->s.jid.full, old->sm.qlen);
    old->sm.resend_i = 0;
    old->sm.resending = old->sm.qlen > 0;
    sm__pump(old);
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
    c2s_session_t *cs = c->cs;
    if (!cs || !cs->sm.enabled) {
        conn__stream_error(c, HEARTH_STREAM_ERR_UNSUPPORTED_STANZA_TYPE,
                           "stream management is not enabled");
        return;
    }
    if (!strcmp(name, "r")) {
        request(cs);
    } else if (!strcmp(name, "a")) {
        uint32_t h;
        if (parse_h(el, &h)) {
            conn__stream_error(c, HEARTH_STREAM_ERR_UNDEFINED_CONDITION, "an <a/> needs an h");
            return;
        }
        if (acknowledge(cs, h))
            too_high(c, h);
    } else {
        conn__stream_error(c, HEARTH_STREAM_ERR_UNSUPPORTED_STANZA_TYPE, NULL);
    }
}

/* ---- ends ---- */

int sm__lost(conn_t *c)
{
    c2s_session_t *cs = c->cs;
    if (!cs || !cs->sm.enabled || !cs->sm.resume || cs->s.ending || c->state != C2S_BOUND ||
        c->closing || !c->net || c->w->stopping)
        return 0; /* an ending session is not kept */
    hlog_conn(LOG_INFO, c->id, conn__log_jid(c),
              "connection lost: session kept %u s for resumption, %zu stanzas unacknowledged",
              c->w->set.resume_timeout, cs->sm.qlen);
    csession__detach(cs);
    conn__abort(c); /* the connection goes; the session no longer hangs on it */
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

void sm__reroute(c2s_session_t *cs)
{
    sm_state_t *sm = &cs->sm;
    if (!sm->enabled || !sm->qlen || !cs->s.jid.full)
        return;
    hlog_conn(LOG_INFO, cs->s.id, cs->s.jid.full, "%zu unacknowledged stanzas go back to delivery",
              sm->qlen);
    reroute_t r = {cs->s.w, cs->s.jid.full};
    for (size_t i = 0; i < sm->qlen; i++) {
        hearth_bytes_t *b = sm->q[(sm->qhead + i) % sm->qcap];
        router__parse(b->data, b->len, reroute_one, &r);
    }
    q_drop_front(cs, sm->qlen);
}

/* The queue after a resumption, as the connection drains: all of it at once could pass the
 * output bound and cut the session again. */
#define SM_PUMP_BYTES (256 * 1024)

void sm__pump(c2s_session_t *cs)
{
    sm_state_t *sm = &cs->sm;
    conn_t *c = cs->c;
    while (c && sm->resending && sm->resend_i < sm->qlen && !c->closing &&
           conn__pending(c) < SM_PUMP_BYTES) {
        hearth_bytes_t *b = sm->q[(sm->qhead + sm->resend_i++) % sm->qcap];
        conn__send(c, b->data, b->len);
        sm->since_request++;
    }
    if (sm->resend_i >= sm->qlen) {
        sm->resending = 0;
        sm__after_outbound(cs);
    }
}

void sm__free(c2s_session_t *cs)
{
    q_drop_front(cs, cs->sm.qlen);
    sm__unmark_detached(cs);
    free(cs->sm.q);
    free(cs->sm.pending);
    memset(&cs->sm, 0, sizeof(cs->sm));
}
