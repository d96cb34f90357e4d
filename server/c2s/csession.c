/* The session a client connection carries (c2s/conn.h c2s_session_t): the session_t modules
 * see, with stream management and client state indication, which outlive one connection. A
 * lost connection detaches it (it waits for a resumption, its resume timer running); a
 * resumption attaches another connection; its end is decided at once and done on the next
 * loop turn, where no walk of the account's sessions is under way. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c2s/conn.h"
#include "core/hooks.h"
#include "core/log.h"

/* ---- client state indication (XEP-0352) ---- */

/* The sender of held presence (its from attribute, as our serialiser writes it). */
static size_t from_of(const char *data, size_t len, const char **from)
{
    const char *p = memmem(data, len, " from='", 7);
    const char *end = p ? memchr(p + 7, '\'', len - (size_t)(p + 7 - data)) : NULL;
    *from = p ? p + 7 : NULL;
    return end ? (size_t)(end - (p + 7)) : 0;
}

static int csi_important(const char *data, size_t len)
{
    if (len > 9 && !memcmp(data, "<presence", 9))
        return 0;
    if (len > 8 && !memcmp(data, "<message", 8) && !memmem(data, len, "<body", 5))
        return 0; /* chat states, receipts alone */
    return 1;
}

static void send_now(c2s_session_t *cs, const char *data, size_t len);

static void csi_flush(c2s_session_t *cs)
{
    hearth_bytes_t **q = cs->csi_q;
    size_t n = cs->csi_n;
    cs->csi_q = NULL;
    cs->csi_n = 0;
    for (size_t i = 0; i < n; i++) {
        if (q[i])
            send_now(cs, q[i]->data, q[i]->len);
        hearth_bytes_unref(q[i]);
    }
    free(q);
}

static int csi_hold(c2s_session_t *cs, const char *data, size_t len)
{
    if (!cs->csi_q && !(cs->csi_q = calloc(CONN_CSI_MAX, sizeof(*cs->csi_q))))
        return 0;
    if (len > 9 && !memcmp(data, "<presence", 9)) {
        const char *f, *g;
        size_t fl = from_of(data, len, &f);
        for (size_t i = 0; fl && i < cs->csi_n; i++) { /* only the newest presence matters */
            if (cs->csi_q[i] && !memcmp(cs->csi_q[i]->data, "<presence", 9) &&
                from_of(cs->csi_q[i]->data, cs->csi_q[i]->len, &g) == fl && !memcmp(f, g, fl)) {
                hearth_bytes_unref(cs->csi_q[i]);
                cs->csi_q[i] = NULL;
            }
        }
    }
    if (cs->csi_n == CONN_CSI_MAX)
        return 0;
    hearth_bytes_t *b = hearth_bytes_new(data, len);
    if (!b)
        return 0;
    cs->csi_q[cs->csi_n++] = b;
    return 1;
}

void csession__csi(c2s_session_t *cs, int active)
{
    cs->csi_inactive = !active;
    if (active)
        csi_flush(cs);
}

static void csi_free(c2s_session_t *cs)
{
    for (size_t i = 0; i < cs->csi_n; i++)
        hearth_bytes_unref(cs->csi_q[i]);
    free(cs->csi_q);
    cs->csi_q = NULL;
    cs->csi_n = 0;
}

/* ---- sending ---- */

static void send_now(c2s_session_t *cs, const char *data, size_t len)
{
    if (cs->sm.enabled && sm__outbound(cs, data, len))
        return; /* kept: detached, resending, or ending for a full queue */
    if (cs->c)
        conn__send(cs->c, data, len);
    if (cs->sm.enabled)
        sm__after_outbound(cs);
}

static void op_send(session_t *s, const char *data, size_t len)
{
    c2s_session_t *cs = csession__of(s);
    conn_t *c = cs->c;
    if (!cs->sm.enabled && (!c || c->closing))
        return; /* nothing follows </stream:stream>; with stream management it is kept */
    if (cs->csi_inactive && !cs->sm.detached) {
        if (!csi_important(data, len) && csi_hold(cs, data, len))
            return;
        csi_flush(cs); /* what waited goes first, in order */
    }
    send_now(cs, data, len);
}

/* ---- the end ---- */

static void end_now(worker_t *w, void *arg)
{
    c2s_session_t *cs = arg;
    cs->end_posted = 0;
    csession__end(cs);
    session__unref(&cs->s); /* the run queue's reference */
}

static void end_dropped(void *arg)
{
    c2s_session_t *cs = arg;
    cs->end_posted = 0;
    session__unref(&cs->s);
}

void csession__end_later(c2s_session_t *cs)
{
    if (cs->s.state == SESSION_ENDED || cs->end_posted)
        return;
    cs->s.ending = 1;
    cs->sm.resume = 0;
    inbox_msg_t *m = calloc(1, sizeof(*m));
    if (!m) {
        csession__end(cs); /* no run queue entry to be had: now, as before */
        return;
    }
    m->kind = INBOX_CALL;
    m->u.call.fn = end_now;
    m->u.call.drop = end_dropped;
    m->u.call.arg = cs;
    session__ref(&cs->s);
    cs->end_posted = 1;
    worker__run_later(cs->s.w, m);
}

static void on_timer_closed(uv_handle_t *h)
{
    c2s_session_t *cs = h->data;
    cs->timer_open = 0;
    cs->timer = NULL;
    free(h);
    session__unref(&cs->s); /* the timer's reference */
}

void csession__end(c2s_session_t *cs)
{
    if (cs->s.state == SESSION_ENDED)
        return;
    cs->s.ending = 1;
    session__ref(&cs->s); /* through the hooks */
    conn_t *c = cs->c;
    if (c) {
        c->cs = NULL;
        cs->c = NULL;
    }
    session__unbind(&cs->s);
    sm__reroute(cs); /* after the unbind: nothing comes back to this session */
    csi_free(cs);
    if (cs->timer_open && !uv_is_closing((uv_handle_t *)cs->timer))
        uv_close((uv_handle_t *)cs->timer, on_timer_closed);
    session__unref(&cs->s); /* the carrier's: it carries it no more */
    session__unref(&cs->s);
}

static void op_end(session_t *s, hearth_stream_error_t cond, const char *text)
{
    c2s_session_t *cs = csession__of(s);
    if (cs->c) {
        if (cond != HEARTH_STREAM_ERR_NONE)
            conn__stream_error(cs->c, cond, text); /* ends the session later */
        else
            conn__close_stream(cs->c);
    } else {
        csession__end_later(cs);
    }
}

/* ---- settlement ---- */

static int op_defer_settle(session_t *s, char *sm_id, uint32_t *seq)
{
    return sm__defer_settle(csession__of(s), sm_id, seq);
}

static void op_settled(session_t *s, const char *sm_id, uint32_t seq)
{
    c2s_session_t *cs = csession__of(s);
    if (cs->sm.enabled && !strcmp(cs->sm.id, sm_id))
        sm__settle(cs, seq);
}

static size_t op_output_pending(session_t *s)
{
    conn_t *c = csession__of(s)->c;
    return c && !c->closing ? conn__pending(c) : SESSION_OUTPUT_MAX;
}

static void op_free(session_t *s)
{
    c2s_session_t *cs = csession__of(s);
    sm__free(cs);
    csi_free(cs);
    free(cs);
}

static void op_describe(session_t *s, session_info_t *out)
{
    c2s_session_t *cs = csession__of(s);
    conn_t *c = cs->c;
    out->sm = cs->sm.enabled;
    out->resumable = cs->sm.enabled && cs->sm.resume;
    if (!c || !c->net)
        return;
    snprintf(out->ip, sizeof(out->ip), "%s", c->net->ip);
    hearth_tls_t *tls = conn__tls(c);
    const char *v = tls ? hearth_tls_version(tls) : NULL;
    snprintf(out->tls, sizeof(out->tls), "%s", v ? v : "");
    snprintf(out->mech, sizeof(out->mech), "%s", c->authed_mech);
    uint64_t now = uv_now(&c->w->loop);
    out->idle_ms = now > c->last_read_ms ? now - c->last_read_ms : 0;
}

static const session_ops_t c2s_session_ops = {
    .send = op_send,
    .end = op_end,
    .defer_settle = op_defer_settle,
    .settled = op_settled,
    .output_pending = op_output_pending,
    .free = op_free,
    .describe = op_describe,
};

/* ---- life ---- */

c2s_session_t *csession__new(conn_t *c, user_t *u, hearth_jid_t *jid)
{
    c2s_session_t *cs = calloc(1, sizeof(*cs));
    if (!cs)
        return NULL;
    session__init(&cs->s, c->w, u, jid, &c2s_session_ops, c->id);
    cs->s.transport = c->net ? c->net->t->name : "tcp";
    cs->c = c;
    c->cs = cs;
    return cs;
}

static void on_resume_timeout(uv_timer_t *t)
{
    c2s_session_t *cs = t->data;
    hlog_conn(LOG_INFO, cs->s.id, cs->s.jid.full, "not resumed in time: session ends");
    csession__end(cs);
}

void csession__detach(c2s_session_t *cs)
{
    conn_t *c = cs->c;
    if (c) {
        c->cs = NULL;
        cs->c = NULL;
    }
    cs->s.state = SESSION_DETACHED;
    cs->sm.resending = 0;
    sm__mark_detached(cs);
    if (!cs->timer_open) {
        /* Most sessions never wait for a resumption: the timer is made for those that do. */
        if (!(cs->timer = malloc(sizeof(*cs->timer)))) {
            hlog_conn(LOG_WARN, cs->s.id, cs->s.jid.full, "out of memory: session ends");
            csession__end_later(cs);
            return;
        }
        uv_timer_init(&cs->s.w->loop, cs->timer);
        cs->timer->data = cs;
        cs->timer_open = 1;
        session__ref(&cs->s); /* held until the timer's handle is closed */
    }
    uv_timer_start(cs->timer, on_resume_timeout, (uint64_t)cs->s.w->set.resume_timeout * 1000, 0);
    hook_args_t a = {.w = cs->s.w, .s = &cs->s, .u = cs->s.user};
    hooks__run(HOOK_SESSION_DETACHED, &a);
}

void csession__attach(c2s_session_t *cs, conn_t *c)
{
    conn_t *old = cs->c;
    if (old) {
        hlog_conn(LOG_INFO, old->id, cs->s.jid.full, "replaced by its resumption");
        old->cs = NULL;
        cs->c = NULL;
        conn__abort(old);
    }
    if (cs->timer_open)
        uv_timer_stop(cs->timer);
    sm__unmark_detached(cs);
    cs->s.state = SESSION_BOUND;
    cs->s.transport = c->net ? c->net->t->name : "tcp";
    cs->c = c;
    c->cs = cs;
    c->state = C2S_BOUND;
    cs->sm.since_request = 0;
    cs->sm.nack_wait = 0; /* requests of the lost stream: <resumed/> carries the answer */
    cs->sm.ack_behind = 0;
    hook_args_t a = {.w = cs->s.w, .s = &cs->s, .u = cs->s.user};
    hooks__run(HOOK_SESSION_RESUMED, &a);
}

void csession__drained(c2s_session_t *cs)
{
    if (cs->sm.resending)
        sm__pump(cs);
    if (!cs->s.paced)
        return; /* nobody waits: most writes of a busy session end here */
    hook_args_t a = {.w = cs->s.w, .s = &cs->s, .u = cs->s.user};
    hooks__run(HOOK_SESSION_DRAINED, &a);
}
