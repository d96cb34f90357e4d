/* A client stream over a connection (c2s/conn.h): the connection's events turned into the
 * XMPP stream's (hearth_stream does the framing, STARTTLS and restarts), sends, the stream's
 * ends, the timer, back-pressure, and the move to the user's home worker. The protocol itself
 * is in stream.c; the session a stream carries in csession.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c2s/conn.h"
#include "core/log.h"

const char *conn__log_jid(const conn_t *c)
{
    if (c->cs)
        return c->cs->s.jid.full;
    return c->bare;
}

/* A worker's list is its own: touched from another thread it is corrupted without a sign and
 * crashes far away (a hand-over once unlinked from the old worker's list on the new worker,
 * found by hearth-bench under a login storm). Cheap enough to check always. */
static void check_owner(const worker_t *w)
{
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &w->thread)) {
        hlog(LOG_ERROR, "c2s: worker %u's connections touched from another thread", w->index);
        abort();
    }
}

static void link_conn(worker_t *w, conn_t *c)
{
    check_owner(w);
    c2s_worker_t *cw = c2s__worker(w);
    c->w = w;
    c->prev = NULL;
    c->next = cw->conns;
    if (cw->conns)
        cw->conns->prev = c;
    cw->conns = c;
    c->linked = 1;
}

/* On the worker whose list holds it; a no-op when it is on none (between two workers, or
 * dropped in flight). */
static void unlink_conn(conn_t *c)
{
    if (!c->linked)
        return;
    check_owner(c->w);
    c2s_worker_t *cw = c2s__worker(c->w);
    if (c->prev)
        c->prev->next = c->next;
    else if (cw->conns == c)
        cw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    c->linked = 0;
}

static void unpause(conn_t *c)
{
    if (c->read_paused) {
        c->read_paused = 0;
        c2s__worker(c->w)->npaused--;
    }
}

/* A paused stream is not read, so it cannot reach the step that moves it; should one ever
 * move, the count of paused streams stays true on the worker it leaves. */
void conn__leave_worker(conn_t *c)
{
    unpause(c);
    unlink_conn(c);
}

/* Freed once its connection is gone and nothing else holds it. */
static void maybe_free(conn_t *c)
{
    if (c->net || c->refs > 0)
        return;
    unlink_conn(c);
    auth__free(c);
    hearth_stream_free(c->xs);
    hearth_buf_free(&c->held);
    if (c->pa) {
        c->pa->conn = NULL;
        preauth__unref(c->pa);
    }
    free(c->bare);
    free(c);
}

void conn__ref(conn_t *c)
{
    c->refs++;
}

void conn__unref(conn_t *c)
{
    c->refs--;
    maybe_free(c);
}

/* The stream is over for this connection: what it carries ends with it (a session that waits
 * for a resumption was detached before). */
static void stream_over(conn_t *c)
{
    c->closing = 1;
    unpause(c);
    if (c->pa)
        c->pa->conn = NULL;
    if (c->preauth_counted) {
        server__preauth_leave(c->w->srv, conn__ip(c));
        c->preauth_counted = 0;
    }
    c2s_session_t *cs = c->cs;
    if (cs) {
        c->cs = NULL;
        cs->c = NULL;
        csession__end_later(cs);
    }
}

const char *conn__ip(const conn_t *c)
{
    return c->pa ? c->pa->ip : c->net ? c->net->ip : "?";
}

/* ---- sending ---- */

hearth_tls_t *conn__tls(const conn_t *c)
{
    hearth_tls_t *t = c->xs ? hearth_stream_tls(c->xs) : NULL;
    return t ? t : (c->net ? connection_tls(c->net) : NULL);
}

size_t conn__pending(const conn_t *c)
{
    return c->net ? connection_pending(c->net) : 0;
}

/* In RFC 7395 framing every element declares its namespace: a stanza serialised in the
 * jabber:client context (as every module writes them, once for all recipients) gets it. */
static int needs_ns(const char *data, size_t len)
{
    if (len < 3 || data[0] != '<')
        return 0;
    const char *end = memchr(data, '>', len);
    size_t n = end ? (size_t)(end - data) : len;
    return !memmem(data, n, " xmlns=", 7) && !memmem(data, n, " xmlns:", 7);
}

void conn__send(conn_t *c, const char *data, size_t len)
{
    if (c->closing || !c->xs)
        return; /* nothing follows the end of our stream */
    int rc;
    if (hearth_stream_framing(c->xs) == HEARTH_STREAM_WEBSOCKET && needs_ns(data, len)) {
        size_t n = strcspn(data, " />");
        hearth_buf_t b = HEARTH_BUF_INIT;
        rc = hearth_buf_append(&b, data, n);
        rc = rc ?: hearth_buf_append_str(&b, " xmlns='" HEARTH_NS_CLIENT "'");
        rc = rc ?: hearth_buf_append(&b, data + n, len - n);
        rc = rc ?: hearth_stream_send(c->xs, b.data, b.len);
        hearth_buf_free(&b);
    } else {
        rc = hearth_stream_send(c->xs, data, len);
    }
    if (rc && rc != HEARTH_ECLOSED) {
        hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "send failed: %s", hearth_strerror(rc));
        conn__abort(c);
    }
}

void conn__send_str(conn_t *c, const char *s)
{
    conn__send(c, s, strlen(s));
}

void conn__send_node(conn_t *c, const hearth_xml_node_t *n)
{
    if (c->closing || !c->xs)
        return;
    if (hearth_stream_send_node(c->xs, n) == HEARTH_ENOMEM)
        conn__abort(c);
}

/* ---- the stream's ends ---- */

/* Our output is over: the TLS close_notify after it, then the connection closes once it has
 * written everything. */
static void finish(conn_t *c)
{
    if (!c->net)
        return;
    hearth_stream_shutdown(c->xs);
    connection_close(c->net, 0);
}

void conn__stream_error(conn_t *c, hearth_stream_error_t cond, const char *text)
{
    if (c->closing)
        return;
    hlog_conn(cond == HEARTH_STREAM_ERR_SYSTEM_SHUTDOWN ? LOG_DEBUG : LOG_INFO, c->id,
              conn__log_jid(c), "stream error %s%s%s", hearth_stream_error_name(cond),
              text ? ": " : "", text ? text : "");
    if (c->xs)
        (void)hearth_stream_error(c->xs, cond, text);
    stream_over(c); /* nothing more is routed to a closing session */
    finish(c);
}

void conn__close_stream(conn_t *c)
{
    if (c->closing)
        return;
    if (c->xs)
        (void)hearth_stream_close(c->xs);
    stream_over(c);
    finish(c);
}

void conn__abort(conn_t *c)
{
    stream_over(c);
    if (c->net)
        connection_close(c->net, 1);
}

/* ---- the stream's events ---- */

static void xs_write(void *ud, const char *data, size_t len)
{
    conn_t *c = ud;
    if (c->net)
        connection_write(c->net, data, len);
}

static void xs_open(void *ud, const hearth_stream_header_t *h)
{
    c2s__on_open(ud, h);
}

static void xs_close(void *ud)
{
    conn_t *c = ud;
    hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "client closed the stream");
    conn__close_stream(c);
}

static void xs_error(void *ud, int err, hearth_stream_error_t cond, const char *text)
{
    conn_t *c = ud;
    if (cond != HEARTH_STREAM_ERR_NONE)
        hlog_conn(LOG_INFO, c->id, conn__log_jid(c), "stream error %s%s%s",
                  hearth_stream_error_name(cond), text ? ": " : "", text ? text : "");
    else
        hlog_conn(LOG_INFO, c->id, conn__log_jid(c), "%s%s%s", hearth_strerror(err),
                  text ? ": " : "", text ? text : "");
    if (err == HEARTH_ETLS || err == HEARTH_ECLOSED) {
        /* TLS failed or the peer sent close_notify: the transport is as good as gone, and a
         * session may wait for a resumption. */
        if (!sm__lost(c))
            conn__abort(c);
        return;
    }
    stream_over(c);
    finish(c);
}

static void xs_tls_done(void *ud)
{
    conn_t *c = ud;
    hearth_tls_t *t = hearth_stream_tls(c->xs);
    c->secure = 1;
    if (c->pa)
        c->pa->secure = 1;
    hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "TLS established (%s%s%s)", hearth_tls_version(t),
              hearth_tls_alpn(t) ? ", ALPN " : "", hearth_tls_alpn(t) ? hearth_tls_alpn(t) : "");
}

static const hearth_stream_cbs_t xs_cbs = {
    .write = xs_write,
    .open = xs_open,
    .element = c2s__on_stanza,
    .close = xs_close,
    .error = xs_error,
    .tls_done = xs_tls_done,
};

/* ---- the connection's events ---- */

static void paused(conn_t *c);

static void on_data(connection_t *net, const char *data, size_t len)
{
    conn_t *c = net->ud;
    if (c->closing)
        return;
    c->last_read_ms = uv_now(&c->w->loop);
    conn__ref(c);
    int rc = hearth_stream_feed(c->xs, data, len);
    (void)rc; /* the stream's end is reported through its callbacks */
    if (!c->closing && c->state == C2S_BOUND) {
        if (!c->w->set.idle_release) {
            conn__trim(c);
        } else if (c->trimmed) { /* its timer may be set for the idle ping, far off */
            c->trimmed = 0;
            conn__arm_timer(c);
        }
    }
    if (!c->closing && !c->moving && !c->read_paused && c->net &&
        storage_outstanding(c->w->srv->storage) > CONN_STORAGE_HIGH_WATER) {
        connection_pause(c->net);
        c->read_paused = 1;
        paused(c);
    }
    conn__unref(c);
}

static void on_lost(connection_t *net, int err)
{
    conn_t *c = net->ud;
    if (err != UV_EOF && err != HEARTH_ELIMIT)
        hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "connection lost: %s",
                  err < 0 && err > -4096 ? uv_strerror(err) : hearth_strerror(err));
    if (!sm__lost(c))
        stream_over(c);
}

static void on_drained(connection_t *net)
{
    conn_t *c = net->ud;
    if (c->cs && !c->closing)
        csession__drained(c->cs);
}

static void on_timer(connection_t *net)
{
    conn_t *c = net->ud;
    if (!c->closing)
        c2s__on_timer(c);
}

/* On the new worker: the old one took it off its list when the move began
 * (conn__leave_worker). */
static void on_moved(connection_t *net)
{
    conn_t *c = net->ud;
    link_conn(net->w, c);
    c->moving = 0;
    if (c->pa)
        c->pa->w = net->w;
    c->last_read_ms = uv_now(&c->w->loop);
    if (c->w->stopping) {
        conn__stream_error(c, HEARTH_STREAM_ERR_SYSTEM_SHUTDOWN, NULL);
        return;
    }
    c2s__on_adopted(c);
}

static void on_closed(connection_t *net)
{
    conn_t *c = net->ud;
    hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "closed");
    stream_over(c);
    c->net = NULL;
    maybe_free(c);
}

static const connection_events_t conn_events = {
    .data = on_data,
    .lost = on_lost,
    .drained = on_drained,
    .timer = on_timer,
    .moved = on_moved,
    .closed = on_closed,
};

/* ---- back-pressure: a flood for storage waits in the sender's socket, not in memory ---- */

static void on_resume_timer(uv_timer_t *t)
{
    c2s_worker_t *cw = t->data;
    if (cw->npaused && storage_outstanding(cw->w->srv->storage) > CONN_STORAGE_LOW_WATER)
        return;
    uv_timer_stop(t);
    for (conn_t *c = cw->conns, *next; c && cw->npaused; c = next) {
        next = c->next;
        if (c->read_paused)
            conn__resume_reading(c);
    }
}

static void paused(conn_t *c)
{
    c2s_worker_t *cw = c2s__worker(c->w);
    if (cw->npaused++ == 0)
        uv_timer_start(&cw->resume_timer, on_resume_timer, 5, 5);
}

void conn__resume_reading(conn_t *c)
{
    unpause(c);
    if (c->net)
        connection_resume(c->net);
}

/* ---- timers ---- */

void conn__trim(conn_t *c)
{
    c->trimmed = 1;
    if (hearth_stream_trim(c->xs)) {
        hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "quiet: parser given back");
        __atomic_store_n(&c->w->srv->mem_released, 1, __ATOMIC_RELEASE);
    }
    /* The stream's own TLS (STARTTLS, direct TLS) or the HTTPS connection's (WebSocket). */
    int released = hearth_stream_release_tls(c->xs);
    if (c->net && connection_trim(c->net) == 1)
        released = 1;
    if (released == 1)
        hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "quiet: TLS state given back");
    if (!c->held.len)
        hearth_buf_free(&c->held);
}

void conn__timer_in(conn_t *c, uint64_t ms)
{
    if (c->net)
        connection_timer(c->net, ms ? ms : 1);
}

/* ---- making a stream ---- */

static conn_t *new_stream(worker_t *w, connection_t *net, hearth_stream_framing_t framing,
                          int direct_tls)
{
    conn_t *c = calloc(1, sizeof(*c));
    preauth_t *pa = c ? calloc(1, sizeof(*pa)) : NULL;
    if (!pa) {
        free(c);
        return NULL;
    }
    c->w = w;
    c->net = net;
    c->id = net->id;
    pa->ops = NULL;
    pa->conn = c;
    pa->w = w;
    pa->id = c->id;
    pa->refs = 1;
    memcpy(pa->ip, net->ip, sizeof(pa->ip));
    c->pa = pa;
    hearth_xml_limits_t lim = HEARTH_XML_LIMITS_DEFAULT;
    lim.max_stanza_bytes = w->set.max_stanza_preauth;
    hearth_stream_config_t cfg = {
        .role = HEARTH_STREAM_SERVER,
        .framing = framing,
        .domain = w->set.domain,
        .direct_tls = direct_tls ? w->srv->tls : NULL,
        .limits = &lim,
    };
    c->xs = hearth_stream_new(&cfg, &xs_cbs, c);
    if (!c->xs) {
        free(pa);
        free(c);
        return NULL;
    }
    c->direct_tls = direct_tls;
    c->secure = connection_secure(net);
    pa->secure = c->secure;
    link_conn(w, c);
    return c;
}

static void preauth_send(preauth_t *p, const char *data, size_t len)
{
    conn__send(p->conn, data, len);
}

static const preauth_ops_t preauth_ops = {.send = preauth_send};

/* Admission (unauthenticated connections per address) and the pre-auth deadline. */
static void start(conn_t *c)
{
    c->pa->ops = &preauth_ops;
    if (server__preauth_enter(c->w->srv, conn__ip(c), c->w->set.preauth_per_ip)) {
        hlog_conn(LOG_WARN, c->id, NULL, "refused: too many unauthenticated connections from %s",
                  conn__ip(c));
        conn__abort(c);
        return;
    }
    c->preauth_counted = 1;
    c->accepted_ms = uv_now(&c->w->loop);
    c->last_read_ms = c->accepted_ms;
    c->state = C2S_WAIT_HEADER;
    conn__arm_timer(c);
}

void conn__accept(worker_t *w, uv_stream_t *listener, int direct_tls)
{
    connection_t *net = connection_accept(w, listener, &transport_tcp, &conn_events, NULL);
    if (!net)
        return;
    conn_t *c = new_stream(w, net, HEARTH_STREAM_TCP, direct_tls);
    if (!c) {
        connection_set_upper(net, NULL, NULL);
        connection_close(net, 1);
        return;
    }
    net->ud = c;
    hlog_conn(LOG_DEBUG, c->id, NULL, "accepted from %s%s", conn__ip(c),
              direct_tls ? " (direct TLS)" : "");
    start(c);
}

void c2s__on_web_connection(connection_t *net)
{
    conn_t *c = new_stream(net->w, net, HEARTH_STREAM_WEBSOCKET, 0);
    if (!c) {
        connection_close(net, 1);
        return;
    }
    connection_set_upper(net, &conn_events, c);
    hlog_conn(LOG_DEBUG, c->id, NULL, "%s stream from %s%s", net->t->name, conn__ip(c),
              c->secure ? " (encrypted)" : "");
    start(c);
}
