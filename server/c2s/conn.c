/* Connection I/O: accept, read into the worker's shared buffer, TLS, the bounded output queue
 * (a direct write first, uv_write for the rest), timers, deferred close and the hand-over of a
 * connection to its user's home worker. The c2s protocol itself is in stream.c; the session a
 * connection carries in csession.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "c2s/conn.h"
#include "core/log.h"

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void maybe_finish_output(conn_t *c);

static const hearth_xml_stream_cbs_t xml_cbs = {
    .open = c2s__on_open,
    .stanza = c2s__on_stanza,
    .close = c2s__on_close,
    .error = c2s__on_xml_error,
};

const char *conn__log_jid(const conn_t *c)
{
    if (c->cs)
        return c->cs->s.jid.full;
    return c->bare;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    c2s_worker_t *cw = c2s__worker(c->w);
    buf->base = cw->readbuf;
    buf->len = sizeof(cw->readbuf);
}

static void link_conn(worker_t *w, conn_t *c)
{
    c2s_worker_t *cw = c2s__worker(w);
    c->w = w;
    c->prev = NULL;
    c->next = cw->conns;
    if (cw->conns)
        cw->conns->prev = c;
    cw->conns = c;
}

static void pending_remove(conn_t *c)
{
    if (!c->out_pending)
        return;
    if (c->out_prev)
        c->out_prev->out_next = c->out_next;
    else
        c2s__worker(c->w)->out_pending = c->out_next;
    if (c->out_next)
        c->out_next->out_prev = c->out_prev;
    c->out_next = c->out_prev = NULL;
    c->out_pending = 0;
}

/* The connection has output for this loop turn: its worker's check handle writes it. */
static void pending_add(conn_t *c)
{
    if (c->out_pending)
        return;
    c2s_worker_t *cw = c2s__worker(c->w);
    c->out_pending = 1;
    c->out_prev = NULL;
    c->out_next = cw->out_pending;
    if (cw->out_pending)
        cw->out_pending->out_prev = c;
    cw->out_pending = c;
    worker__turn_pending(c->w);
}

/* Off its worker (freed or handed over): never flushed there again. */
static void unlink_conn(conn_t *c)
{
    c2s_worker_t *cw = c2s__worker(c->w);
    pending_remove(c);
    if (c->prev)
        c->prev->next = c->next;
    else if (cw->conns == c)
        cw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void free_conn(conn_t *c)
{
    server_t *srv = c->w->srv;
    unlink_conn(c);
    auth__free(c);
    if (c->tls)
        hearth_tls_free(c->tls);
    if (c->xml)
        hearth_xml_stream_free(c->xml);
    hearth_buf_free(&c->outq);
    hearth_buf_free(&c->inflight);
    hearth_buf_free(&c->held);
    if (c->pa) {
        c->pa->conn = NULL;
        preauth__unref(c->pa);
    }
    free(c->bare);
    free(c);
    __atomic_sub_fetch(&srv->live_conns, 1, __ATOMIC_ACQ_REL);
}

static void maybe_free(conn_t *c)
{
    if (c->handles_open == 0 && c->refs == 0 && c->handles_closing)
        free_conn(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    c->handles_open--;
    maybe_free(c);
}

static void unpause(conn_t *c)
{
    if (c->read_paused) {
        c->read_paused = 0;
        c2s__worker(c->w)->npaused--;
    }
}

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

/* A connection stopped reading for back-pressure: the worker checks when to resume it. */
static void paused(conn_t *c)
{
    c2s_worker_t *cw = c2s__worker(c->w);
    if (cw->npaused++ == 0)
        uv_timer_start(&cw->resume_timer, on_resume_timer, 5, 5);
}

void conn__resume_reading(conn_t *c)
{
    unpause(c);
    if (!c->handles_closing && !c->handoff_detached &&
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read))
        conn__abort(c);
}

static void close_handles(conn_t *c)
{
    if (c->handles_closing)
        return;
    unpause(c);
    c->handles_closing = 1;
    c->closing = 1;
    if (c->pa)
        c->pa->conn = NULL;
    c2s_session_t *cs = c->cs;
    if (cs) { /* not detached: it ends with its connection (on the next loop turn) */
        c->cs = NULL;
        cs->c = NULL;
        csession__end_later(cs);
    }
    if (c->preauth_counted) {
        server__preauth_leave(c->w->srv, c->ip);
        c->preauth_counted = 0;
    }
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    }
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "closed");
}

void conn__ref(conn_t *c)
{
    c->refs++;
}

void conn__unref(conn_t *c)
{
    c->refs--;
    if (c->refs == 0 && c->handoff && !c->handoff_detached && !c->handles_closing) {
        conn__try_handoff(c);
        return;
    }
    maybe_free(c);
}

/* Moves only when nothing refers to the connection on this worker any more: no output in
 * flight, no callback (storage, thread pool, a read in progress) that would find it gone. */
static void detach_for_handoff(conn_t *c);

void conn__try_handoff(conn_t *c)
{
    if (c->writing || c->outq.len || c->refs > 0 || c->handoff_detached || c->handles_closing)
        return;
    detach_for_handoff(c);
}

void conn__abort(conn_t *c)
{
    c->close_now = 1;
    c->closing = 1;
    close_handles(c);
}

/* ---- output ---- */

static void on_write(uv_write_t *req, int status);

/* Hands outq, less its first `done` bytes already written directly, to uv_write. */
static void start_write(conn_t *c, size_t done)
{
    hearth_buf_t tmp = c->inflight;
    c->inflight = c->outq;
    c->outq = tmp;
    hearth_buf_reset(&c->outq);
    uv_buf_t b = uv_buf_init(c->inflight.data + done, (unsigned)(c->inflight.len - done));
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc) {
        hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "write failed: %s", uv_strerror(rc));
        hearth_buf_reset(&c->inflight);
        conn__abort(c);
        return;
    }
    c->writing = 1;
}

/* Output drained: what waits for room (a resumption's resend, offline messages) goes on; what
 * waits for the end of output (a close, a hand-over) happens. */
static void drained(conn_t *c)
{
    if (c->cs && !c->closing)
        csession__drained(c->cs);
    if (!c->writing)
        maybe_finish_output(c);
}

static void on_write(uv_write_t *req, int status)
{
    conn_t *c = req->data;
    c->writing = 0;
    hearth_buf_reset(&c->inflight);
    if (status < 0) {
        if (status == UV_ECANCELED && c->handles_closing)
            return; /* the socket was closed under the write on purpose */
        hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "write: %s", uv_strerror(status));
        if (!sm__lost(c))
            conn__abort(c);
        return;
    }
    if (c->outq.len && !c->close_now) {
        pending_add(c); /* with whatever else this turn produces, in this turn's check */
        return;
    }
    drained(c);
}

static void on_timer(uv_timer_t *t);

/* A write failed (or overflowed) inside a send: the caller, TLS included, may still be using
 * the data being sent, which ending the session would free (unacknowledged stanzas go back
 * to delivery). Stop writing now; lose the connection on the next loop turn. */
static void fail_later(conn_t *c)
{
    if (c->fail_pending || c->handles_closing)
        return;
    c->fail_pending = 1;
    c->close_now = 1;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

/* One write of outq: directly as far as the socket takes it, uv_write for the rest. */
static void flush_one(conn_t *c)
{
    if (c->close_now || c->handles_closing || c->handoff_detached || c->writing)
        return; /* on_write of the write in progress puts it back on the list */
    size_t done = 0;
    if (c->outq.len) {
        uv_buf_t b = uv_buf_init(c->outq.data, (unsigned)c->outq.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "write: %s", uv_strerror(n));
            fail_later(c);
            return;
        }
        done = n > 0 ? (size_t)n : 0;
        if (done < c->outq.len) {
            start_write(c, done);
            return;
        }
        hearth_buf_reset(&c->outq);
    }
    drained(c);
}

void conn__flush_pending(worker_t *w)
{
    /* A pump refilling a drained connection puts it back on the list: it is written again
     * until the socket is full (then on_write takes over) or the pump is done. */
    c2s_worker_t *cw = c2s__worker(w);
    conn_t *c;
    while ((c = cw->out_pending)) {
        pending_remove(c);
        flush_one(c);
    }
}

static void write_raw(conn_t *c, const char *data, size_t len)
{
    if (c->close_now || c->handles_closing || c->handoff_detached)
        return;
    if (c->outq.len + len > CONN_MAX_OUTQ) {
        hlog_conn(LOG_WARN, c->id, conn__log_jid(c), "output queue over %u bytes: closing",
                  CONN_MAX_OUTQ);
        /* A slow reader with stream management is detached like a dropped one (on the next
         * loop turn): nothing it had not acknowledged is lost. */
        fail_later(c);
        return;
    }
    if (hearth_buf_append(&c->outq, data, len)) {
        fail_later(c);
        return;
    }
    if (!c->writing)
        pending_add(c);
}

static void tls_write_raw(void *ud, const char *data, size_t len)
{
    write_raw(ud, data, len);
}

static void feed_xml(conn_t *c, const char *data, size_t len)
{
    if (c->closing || c->pending != PENDING_NONE || !c->xml)
        return;
    (void)hearth_xml_stream_feed(c->xml, data, len);
}

static void tls_read_plain(void *ud, const char *data, size_t len)
{
    feed_xml(ud, data, len);
}

static void tls_handshake_done(void *ud)
{
    conn_t *c = ud;
    c->secure = 1;
    if (c->pa)
        c->pa->secure = 1;
    hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "TLS established (%s%s%s)",
              hearth_tls_version(c->tls), hearth_tls_alpn(c->tls) ? ", ALPN " : "",
              hearth_tls_alpn(c->tls) ? hearth_tls_alpn(c->tls) : "");
}

static const hearth_tls_io_t tls_io = {
    .write_raw = tls_write_raw,
    .read_plain = tls_read_plain,
    .handshake_done = tls_handshake_done,
};

int conn__start_tls(conn_t *c)
{
    c->tls = hearth_tls_new(c->w->srv->tls, &tls_io, c, NULL);
    return c->tls ? 0 : HEARTH_ETLS;
}

void conn__send(conn_t *c, const char *data, size_t len)
{
    if (c->closing || c->close_now || c->handles_closing)
        return; /* nothing follows </stream:stream> */
    if (c->tls) {
        if (hearth_tls_write(c->tls, data, len)) {
            hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "TLS write failed: %s",
                      hearth_tls_error(c->tls));
            fail_later(c);
        }
        return;
    }
    write_raw(c, data, len);
}

void conn__send_str(conn_t *c, const char *s)
{
    conn__send(c, s, strlen(s));
}

void conn__send_node(conn_t *c, const hearth_xml_node_t *n)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(n, "jabber:client", &b) == 0)
        conn__send(c, b.data, b.len);
    else
        conn__abort(c);
    hearth_buf_free(&b);
}

/* ---- closing ---- */

static void maybe_finish_output(conn_t *c)
{
    if (c->writing || c->outq.len)
        return;
    if (c->closing && !c->handles_closing) {
        if (c->tls && !c->close_now) {
            hearth_tls_shutdown(c->tls); /* close_notify, best effort: one direct write */
            if (c->outq.len) {
                uv_buf_t b = uv_buf_init(c->outq.data, (unsigned)c->outq.len);
                (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
                hearth_buf_reset(&c->outq);
            }
        }
        close_handles(c);
    } else if (c->handoff && !c->handoff_detached) {
        conn__try_handoff(c);
    }
}

void conn__stream_error(conn_t *c, hearth_stream_error_t cond, const char *text)
{
    if (c->closing)
        return;
    if (!c->header_sent)
        c2s__send_header(c);
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_printf(&b, "<stream:error><%s xmlns='%s'/>", hearth_stream_error_name(cond),
                               HEARTH_NS_STREAM_ERRORS);
    if (!rc && text) {
        rc = hearth_buf_printf(&b, "<text xmlns='%s'>", HEARTH_NS_STREAM_ERRORS);
        if (!rc)
            rc = hearth_buf_append_escaped(&b, text, strlen(text));
        if (!rc)
            rc = hearth_buf_append_str(&b, "</text>");
    }
    if (!rc)
        rc = hearth_buf_append_str(&b, "</stream:error></stream:stream>");
    hlog_conn(cond == HEARTH_STREAM_ERR_SYSTEM_SHUTDOWN ? LOG_DEBUG : LOG_INFO, c->id,
              conn__log_jid(c), "stream error %s%s%s", hearth_stream_error_name(cond),
              text ? ": " : "", text ? text : "");
    if (!rc)
        conn__send(c, b.data, b.len);
    hearth_buf_free(&b);
    c->closing = 1;
    if (c->cs)
        csession__end_later(c->cs); /* nothing more is routed to a closing session */
    maybe_finish_output(c);
}

void conn__close_stream(conn_t *c)
{
    if (c->closing)
        return;
    conn__send_str(c, "</stream:stream>");
    c->closing = 1;
    if (c->cs)
        csession__end_later(c->cs);
    maybe_finish_output(c);
}

/* ---- accept, read ---- */

static int setup(worker_t *w, conn_t *c)
{
    c->id = __atomic_add_fetch(&w->srv->next_conn_id, 1, __ATOMIC_RELAXED);
    c->pa->id = c->id;
    c->tcp.data = c;
    c->timer.data = c;
    hearth_xml_limits_t lim = HEARTH_XML_LIMITS_DEFAULT;
    lim.max_stanza_bytes = w->srv->set.max_stanza_preauth;
    c->xml = hearth_xml_stream_new(&xml_cbs, c, &lim);
    return c->xml ? 0 : HEARTH_ENOMEM;
}

static void preauth_send(preauth_t *p, const char *data, size_t len)
{
    conn__send(p->conn, data, len);
}

static const preauth_ops_t preauth_ops = {.send = preauth_send};

void conn__accept(worker_t *w, uv_stream_t *listener, int direct_tls)
{
    conn_t *c = calloc(1, sizeof(*c));
    preauth_t *pa = c ? calloc(1, sizeof(*pa)) : NULL;
    if (!pa) {
        free(c);
        return;
    }
    pa->ops = &preauth_ops;
    pa->conn = c;
    pa->w = w;
    pa->refs = 1;
    c->pa = pa;
    __atomic_add_fetch(&w->srv->live_conns, 1, __ATOMIC_ACQ_REL);
    link_conn(w, c);
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->handles_open = 2;
    if (setup(w, c) || uv_accept(listener, (uv_stream_t *)&c->tcp)) {
        conn__abort(c);
        return;
    }
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof(c->ip));
        else
            uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof(c->ip));
        memcpy(pa->ip, c->ip, sizeof(pa->ip));
    }
    uv_tcp_nodelay(&c->tcp, 1);
    hlog_conn(LOG_DEBUG, c->id, NULL, "accepted from %s%s", c->ip,
              direct_tls ? " (direct TLS)" : "");
    if (server__preauth_enter(w->srv, c->ip)) {
        hlog_conn(LOG_WARN, c->id, NULL, "refused: too many unauthenticated connections from %s",
                  c->ip);
        conn__abort(c);
        return;
    }
    c->preauth_counted = 1;
    c->accepted_ms = uv_now(&w->loop);
    c->last_read_ms = c->accepted_ms;
    if (direct_tls) {
        c->direct_tls = 1;
        if (conn__start_tls(c)) {
            conn__abort(c);
            return;
        }
    }
    c->state = C2S_WAIT_HEADER;
    conn__arm_timer(c);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read))
        conn__abort(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    conn_t *c = s->data;
    if (n < 0) {
        if (n != UV_EOF)
            hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "read: %s", uv_strerror((int)n));
        if (!sm__lost(c))
            conn__abort(c);
        return;
    }
    if (n == 0 || c->closing)
        return;
    c->last_read_ms = uv_now(&c->w->loop);
    conn__ref(c);
    c->in_read = 1;
    if (c->tls) {
        int rc = hearth_tls_feed(c->tls, buf->base, (size_t)n);
        if (rc == HEARTH_ECLOSED) {
            if (!sm__lost(c))
                conn__abort(c);
        } else if (rc) {
            hlog_conn(LOG_INFO, c->id, conn__log_jid(c), "TLS failure: %s",
                      hearth_tls_error(c->tls));
            if (!sm__lost(c))
                conn__abort(c);
        }
    } else {
        feed_xml(c, buf->base, (size_t)n);
    }
    c->in_read = 0;
    if (!c->handles_closing)
        c2s__after_read(c);
    if (!c->closing && !c->handoff && !c->read_paused &&
        storage_outstanding(c->w->srv->storage) > CONN_STORAGE_HIGH_WATER) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->read_paused = 1;
        paused(c);
    }
    conn__unref(c);
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->fail_pending) {
        c->fail_pending = 0;
        if (!sm__lost(c))
            conn__abort(c);
        return;
    }
    if (c->closing)
        return;
    c2s__on_timer(c);
}

void conn__timer_in(conn_t *c, uint64_t ms)
{
    if (c->fail_pending)
        return; /* the pending failure keeps the timer */
    if (!c->handles_closing)
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---- hand-over to another worker ---- */

static void adopt(worker_t *w, void *arg);

static void handoff_dropped(void *arg)
{
    conn_t *c = arg; /* the target worker exited before adopting it */
    close(c->handoff_fd);
    server_t *srv = c->w->srv;
    if (c->pa) {
        c->pa->conn = NULL;
        preauth__unref(c->pa);
    }
    auth__free(c);
    if (c->tls)
        hearth_tls_free(c->tls);
    if (c->xml)
        hearth_xml_stream_free(c->xml);
    hearth_buf_free(&c->outq);
    hearth_buf_free(&c->inflight);
    hearth_buf_free(&c->held);
    free(c->bare);
    free(c);
    __atomic_sub_fetch(&srv->live_conns, 1, __ATOMIC_ACQ_REL);
}

static void on_handoff_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    worker_t *target = c->handoff_target;
    unlink_conn(c);
    worker__call(target, adopt, handoff_dropped, c);
}

/* Output is flushed: release the socket from this loop (keeping a dup of the descriptor) and
 * post the connection to its home worker. */
static void detach_for_handoff(conn_t *c)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) || (c->handoff_fd = dup(fd)) < 0) {
        conn__abort(c);
        return;
    }
    c->handoff_detached = 1;
    unpause(c);
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_handoff_closed);
    uv_close((uv_handle_t *)&c->timer, on_handoff_closed);
}

/* On the new worker. */
static void adopt(worker_t *w, void *arg)
{
    conn_t *c = arg;
    link_conn(w, c);
    if (c->pa)
        c->pa->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->handoff = 0;
    c->handoff_detached = 0;
    if (uv_tcp_open(&c->tcp, c->handoff_fd)) {
        close(c->handoff_fd);
        conn__abort(c);
        return;
    }
    c->last_read_ms = uv_now(&w->loop);
    if (w->stopping) {
        conn__stream_error(c, HEARTH_STREAM_ERR_SYSTEM_SHUTDOWN, NULL);
        return;
    }
    c2s__on_adopted(c);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read))
        conn__abort(c);
}
