/* Connections (net/connection.h): the socket, reading into the worker's shared buffer, the
 * bounded output queue written once per loop turn (a direct write first, uv_write for the
 * rest), the timer, the deferred close and the hand-over to another worker. What the bytes
 * mean is the transport's and the layer above's. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "net/connection.h"

/* What net keeps per worker (core slot). */
typedef struct net_worker {
    worker_t *w;
    connection_t *conns;       /* every connection of this loop (doubly linked) */
    connection_t *out_pending; /* connections with output to write at the turn's end */
    char readbuf[65536];       /* reads are handled synchronously: one buffer serves all */
} net_worker_t;

static int slot = -1;

static net_worker_t *nw_of(worker_t *w)
{
    return w->slot[slot];
}

/* ---- lifecycle ---- */

static const char *state_name(conn_state_t s)
{
    switch (s) {
    case CONN_OPEN:
        return "open";
    case CONN_CLOSING:
        return "closing";
    case CONN_MOVING:
        return "moving";
    case CONN_CLOSED:
        return "closed";
    }
    return "?";
}

/* The one place the lifecycle changes. A closed connection never opens again. */
static void set_state(connection_t *c, conn_state_t to)
{
    if (c->state == to || c->state == CONN_CLOSED)
        return;
    hlog_conn(LOG_DEBUG, c->id, NULL, "%s connection %s -> %s", c->t->name, state_name(c->state),
              state_name(to));
    c->state = to;
}

static void link_conn(worker_t *w, connection_t *c)
{
    net_worker_t *nw = nw_of(w);
    c->w = w;
    c->prev = NULL;
    c->next = nw->conns;
    if (nw->conns)
        nw->conns->prev = c;
    nw->conns = c;
}

static void pending_remove(connection_t *c)
{
    if (!c->out_pending)
        return;
    if (c->out_prev)
        c->out_prev->out_next = c->out_next;
    else
        nw_of(c->w)->out_pending = c->out_next;
    if (c->out_next)
        c->out_next->out_prev = c->out_prev;
    c->out_next = c->out_prev = NULL;
    c->out_pending = 0;
}

/* The connection has output for this loop turn: the turn's end writes it. */
static void pending_add(connection_t *c)
{
    if (c->out_pending)
        return;
    net_worker_t *nw = nw_of(c->w);
    c->out_pending = 1;
    c->out_prev = NULL;
    c->out_next = nw->out_pending;
    if (nw->out_pending)
        nw->out_pending->out_prev = c;
    nw->out_pending = c;
    worker__turn_pending(c->w);
}

static void unlink_conn(connection_t *c)
{
    net_worker_t *nw = nw_of(c->w);
    pending_remove(c);
    if (c->prev)
        c->prev->next = c->next;
    else if (nw->conns == c)
        nw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void free_conn(connection_t *c)
{
    server_t *srv = c->w->srv;
    unlink_conn(c);
    if (c->ev && c->ev->closed)
        c->ev->closed(c);
    if (c->t->free)
        c->t->free(c);
    hearth_buf_free(&c->outq);
    hearth_buf_free(&c->inflight);
    free(c);
    __atomic_sub_fetch(&srv->live_conns, 1, __ATOMIC_ACQ_REL);
}

static void maybe_free(connection_t *c)
{
    if (c->state == CONN_CLOSED && c->handles_open == 0 && c->refs == 0 && !c->writing)
        free_conn(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    connection_t *c = h->data;
    c->handles_open--;
    maybe_free(c);
}

static void close_handles(connection_t *c)
{
    if (c->state == CONN_CLOSED)
        return;
    set_state(c, CONN_CLOSED);
    pending_remove(c);
    if (c->has_socket && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    }
    if (!uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

void connection_ref(connection_t *c)
{
    c->refs++;
}

static void try_move(connection_t *c);

void connection_unref(connection_t *c)
{
    c->refs--;
    if (c->state == CONN_MOVING)
        try_move(c);
    else
        maybe_free(c);
}

/* ---- output ---- */

static void on_timer(uv_timer_t *t);
static void maybe_finish(connection_t *c);

/* A write failed or the bound was passed inside a send: the caller (a stream, TLS) may still be
 * using what is being sent, which a lost connection's teardown would free. Stop writing now;
 * lose the connection on the next loop turn. */
void connection__lose(connection_t *c, int err)
{
    if (c->fail_pending || c->state == CONN_CLOSED)
        return;
    c->fail_pending = 1;
    c->lost_err = err;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

void connection__end(connection_t *c, int err)
{
    if (c->fail_pending || c->end_pending || c->state == CONN_CLOSED)
        return;
    c->end_pending = 1;
    c->lost_err = err;
    uv_timer_start(&c->timer, on_timer, 0, 0);
}

static void on_write(uv_write_t *req, int status);

/* An emptied output buffer keeps its memory for the next write, unless a burst (a room's join
 * sequence, a roster, offline messages) grew it past this: then it goes, or a thousand idle
 * connections would each hold their largest burst for good. */
#define CONNECTION_BUF_KEEP (16u * 1024)

static void emptied(hearth_buf_t *b)
{
    if (b->cap > CONNECTION_BUF_KEEP)
        hearth_buf_free(b);
    else
        hearth_buf_reset(b);
}

int connection_trim(connection_t *c)
{
    if (!c->outq.len)
        hearth_buf_free(&c->outq);
    if (!c->writing)
        hearth_buf_free(&c->inflight);
    /* A quiet TLS 1.3 session gives back its SSL object (13.8 KB of an idle session's 19). */
    hearth_tls_t *t = connection_tls(c);
    return t ? hearth_tls_release(t) : 0;
}

/* Hands outq, less its first `done` bytes already written directly, to uv_write. */
static void start_write(connection_t *c, size_t done)
{
    hearth_buf_t tmp = c->inflight;
    c->inflight = c->outq;
    c->outq = tmp;
    hearth_buf_reset(&c->outq);
    uv_buf_t b = uv_buf_init(c->inflight.data + done, (unsigned)(c->inflight.len - done));
    /* A request only for the writes the socket did not take at once (192 bytes that most
     * connections, most of the time, need not carry). */
    uv_write_t *req = malloc(sizeof(*req));
    int rc = req ? 0 : HEARTH_ENOMEM;
    if (req) {
        req->data = c;
        rc = uv_write(req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
        if (rc)
            free(req);
    }
    if (rc) {
        hearth_buf_reset(&c->inflight);
        connection__lose(c, rc);
        return;
    }
    c->writing = 1;
}

/* Output drained: paced senders go on; a close or a hand-over that waited for it happens. */
static void drained(connection_t *c)
{
    if (c->state == CONN_OPEN && c->ev && c->ev->drained)
        c->ev->drained(c);
    maybe_finish(c);
}

static void on_write(uv_write_t *req, int status)
{
    connection_t *c = req->data;
    free(req);
    c->writing = 0;
    emptied(&c->inflight);
    if (status < 0) {
        if (status != UV_ECANCELED || c->state != CONN_CLOSED)
            connection__lose(c, status);
        maybe_free(c);
        return;
    }
    if (c->state == CONN_CLOSED) {
        maybe_free(c);
        return;
    }
    if (c->outq.len) {
        pending_add(c); /* with whatever else this turn produces, in this turn's check */
        return;
    }
    drained(c);
}

/* One write of outq: directly as far as the socket takes it, uv_write for the rest. */
static void flush_one(connection_t *c)
{
    if (c->state == CONN_CLOSED || c->fail_pending || c->writing || !c->has_socket)
        return; /* on_write of the write in progress puts it back on the list */
    size_t done = 0;
    if (c->outq.len) {
        uv_buf_t b = uv_buf_init(c->outq.data, (unsigned)c->outq.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            connection__lose(c, n);
            return;
        }
        done = n > 0 ? (size_t)n : 0;
        if (done < c->outq.len) {
            start_write(c, done);
            return;
        }
        emptied(&c->outq);
    }
    drained(c);
}

/* The worker layer's turn end: what the turn produced for each connection leaves in one write.
 * A pump refilling a drained connection puts it back on the list. */
static void flush_pending(worker_t *w)
{
    net_worker_t *nw = nw_of(w);
    connection_t *c;
    while ((c = nw->out_pending)) {
        pending_remove(c);
        flush_one(c);
    }
}

int connection__queue_raw(connection_t *c, const char *data, size_t len)
{
    if (c->state == CONN_CLOSED || c->fail_pending || !c->has_socket)
        return HEARTH_ECLOSED;
    if (c->outq.len + len > CONNECTION_OUTPUT_MAX) {
        hlog_conn(LOG_WARN, c->id, NULL, "output queue over %u bytes: closing",
                  (unsigned)CONNECTION_OUTPUT_MAX);
        connection__lose(c, HEARTH_ELIMIT);
        return HEARTH_ELIMIT;
    }
    if (hearth_buf_append(&c->outq, data, len)) {
        connection__lose(c, HEARTH_ENOMEM);
        return HEARTH_ENOMEM;
    }
    if (!c->writing)
        pending_add(c);
    return 0;
}

void connection_write(connection_t *c, const char *data, size_t len)
{
    if (c->state == CONN_CLOSED || c->fail_pending || !len)
        return;
    int rc = c->t->write(c, data, len);
    if (rc && rc != HEARTH_ECLOSED)
        connection__lose(c, rc);
}

size_t connection_pending(const connection_t *c)
{
    return c->outq.len + c->inflight.len;
}

/* ---- closing ---- */

static void maybe_finish(connection_t *c)
{
    if (c->writing || c->outq.len)
        return;
    if (c->state == CONN_CLOSING)
        close_handles(c);
    else if (c->state == CONN_MOVING)
        try_move(c);
}

void connection_close(connection_t *c, int now)
{
    if (c->state == CONN_CLOSED)
        return;
    if (c->state == CONN_OPEN || c->state == CONN_MOVING) {
        set_state(c, CONN_CLOSING);
        if (c->t->closing)
            c->t->closing(c);
    }
    if (now || !c->has_socket || c->fail_pending) {
        close_handles(c);
        return;
    }
    if (c->out_pending) {
        pending_remove(c);
        flush_one(c); /* what was produced before the close goes first */
    }
    maybe_finish(c);
}

/* ---- timer ---- */

static void on_timer(uv_timer_t *t)
{
    connection_t *c = t->data;
    if (c->fail_pending) {
        c->fail_pending = 0;
        if (c->state != CONN_CLOSED) {
            int err = c->lost_err;
            c->fail_pending = 1; /* nothing more is written */
            if (c->ev && c->ev->lost)
                c->ev->lost(c, err);
            close_handles(c);
        }
        return;
    }
    if (c->end_pending) {
        c->end_pending = 0;
        if (c->state == CONN_OPEN) {
            if (c->ev && c->ev->lost)
                c->ev->lost(c, c->lost_err);
            connection_close(c, 0); /* after what the transport queued */
        }
        return;
    }
    if (c->state != CONN_CLOSED && c->ev && c->ev->timer)
        c->ev->timer(c);
}

void connection_timer(connection_t *c, uint64_t ms)
{
    if (c->fail_pending || c->end_pending || c->state == CONN_CLOSED)
        return; /* the pending failure keeps the timer */
    if (ms)
        uv_timer_start(&c->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&c->timer);
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    connection_t *c = h->data;
    net_worker_t *nw = nw_of(c->w);
    buf->base = nw->readbuf;
    buf->len = sizeof(nw->readbuf);
}

/* Read errors and EOF are met in a read callback, never inside a send: the connection is lost
 * right away. */
static void lose_now(connection_t *c, int err)
{
    if (c->state == CONN_CLOSED)
        return;
    c->fail_pending = 1; /* nothing more is written */
    if (c->ev && c->ev->lost)
        c->ev->lost(c, err);
    close_handles(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    connection_t *c = s->data;
    if (n < 0) {
        if (n != UV_EOF)
            hlog_conn(LOG_DEBUG, c->id, NULL, "read: %s", uv_strerror((int)n));
        lose_now(c, (int)n);
        return;
    }
    if (n == 0 || c->state != CONN_OPEN)
        return;
    connection_ref(c); /* a move or a free waits for the end of this read */
    c->t->read(c, buf->base, (size_t)n);
    connection_unref(c);
}

void connection__deliver(connection_t *c, const char *data, size_t len)
{
    if (c->state == CONN_OPEN && c->ev && c->ev->data)
        c->ev->data(c, data, len);
}

void connection_pause(connection_t *c)
{
    if (c->read_paused || !c->has_socket)
        return;
    c->read_paused = 1;
    if (c->state == CONN_OPEN)
        uv_read_stop((uv_stream_t *)&c->tcp);
}

void connection_resume(connection_t *c)
{
    if (!c->read_paused)
        return;
    c->read_paused = 0;
    if (c->state == CONN_OPEN && c->has_socket &&
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read))
        lose_now(c, HEARTH_EIO);
}

/* ---- making connections ---- */

static connection_t *make(worker_t *w, const transport_t *t, const connection_events_t *ev,
                          void *ud)
{
    connection_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    __atomic_add_fetch(&w->srv->live_conns, 1, __ATOMIC_ACQ_REL);
    c->id = __atomic_add_fetch(&w->srv->next_conn_id, 1, __ATOMIC_RELAXED);
    c->t = t;
    c->ev = ev;
    c->ud = ud;
    c->state = CONN_OPEN;
    link_conn(w, c);
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 1;
    return c;
}

connection_t *connection_accept(worker_t *w, uv_stream_t *listener, const transport_t *t,
                                const connection_events_t *ev, void *ud)
{
    connection_t *c = make(w, t, ev, ud);
    if (!c)
        return NULL;
    uv_tcp_init(&w->loop, &c->tcp);
    c->tcp.data = c;
    c->handles_open++;
    c->has_socket = 1;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp)) {
        c->ev = NULL;
        close_handles(c);
        return NULL;
    }
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->ip, sizeof(c->ip));
        else
            uv_ip4_name((struct sockaddr_in *)&ss, c->ip, sizeof(c->ip));
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) {
        c->ev = NULL;
        close_handles(c);
        return NULL;
    }
    return c;
}

connection_t *connection_new(worker_t *w, const transport_t *t, void *tctx,
                             const connection_events_t *ev, void *ud)
{
    connection_t *c = make(w, t, ev, ud);
    if (c)
        c->tctx = tctx;
    return c;
}

void connection_set_upper(connection_t *c, const connection_events_t *ev, void *ud)
{
    c->ev = ev;
    c->ud = ud;
}

hearth_tls_t *connection_tls(connection_t *c)
{
    return c->t->tls ? c->t->tls(c) : NULL;
}

int connection_secure(const connection_t *c)
{
    return c->secure || c->t->encrypted;
}

/* ---- the hand-over to another worker ---- */

static void adopt(worker_t *w, void *arg);

static void move_dropped(void *arg)
{
    connection_t *c = arg; /* the target worker exited before adopting it */
    if (c->has_socket)
        close(c->move_fd);
    if (c->ev && c->ev->closed)
        c->ev->closed(c);
    if (c->t->free)
        c->t->free(c);
    hearth_buf_free(&c->outq);
    hearth_buf_free(&c->inflight);
    __atomic_sub_fetch(&c->w->srv->live_conns, 1, __ATOMIC_ACQ_REL);
    free(c);
}

static void on_move_closed(uv_handle_t *h)
{
    connection_t *c = h->data;
    if (--c->handles_open > 0)
        return;
    unlink_conn(c);
    worker__call(c->move_target, adopt, move_dropped, c);
}

/* Moves only once nothing refers to it on this worker: no output in flight, no reference (a
 * read in progress, asynchronous work of the layer above). */
static void try_move(connection_t *c)
{
    if (c->state != CONN_MOVING || c->writing || c->outq.len || c->refs > 0 || c->fail_pending)
        return;
    if (c->has_socket) {
        uv_os_fd_t fd;
        if (uv_fileno((uv_handle_t *)&c->tcp, &fd) || (c->move_fd = dup(fd)) < 0) {
            lose_now(c, HEARTH_EIO);
            return;
        }
    }
    if (c->t->leaving)
        c->t->leaving(c);
    set_state(c, CONN_CLOSED); /* on this worker */
    if (c->has_socket)
        uv_close((uv_handle_t *)&c->tcp, on_move_closed);
    uv_close((uv_handle_t *)&c->timer, on_move_closed);
}

void connection_move(connection_t *c, worker_t *to)
{
    if (c->state != CONN_OPEN || !c->t->can_move || to == c->w)
        return;
    c->move_target = to;
    /* The peer's next bytes are for the new worker. */
    if (c->has_socket)
        uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    set_state(c, CONN_MOVING);
    if (c->out_pending) {
        pending_remove(c);
        flush_one(c);
    }
    try_move(c);
}

/* On the new worker. */
static void adopt(worker_t *w, void *arg)
{
    connection_t *c = arg;
    c->state = CONN_OPEN; /* a fresh life on this worker (the only way back to open) */
    link_conn(w, c);
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 1;
    if (c->has_socket) {
        uv_tcp_init(&w->loop, &c->tcp);
        c->tcp.data = c;
        c->handles_open++;
        if (uv_tcp_open(&c->tcp, c->move_fd)) {
            close(c->move_fd);
            lose_now(c, HEARTH_EIO);
            return;
        }
    }
    if (c->t->moved)
        c->t->moved(c);
    if (c->ev && c->ev->moved)
        c->ev->moved(c);
    if (c->state == CONN_OPEN && c->has_socket && !c->read_paused &&
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read))
        lose_now(c, HEARTH_EIO);
}

/* ---- the layer ---- */

/* Whatever is left when the worker exits: closed at once. */
static void exit_worker(worker_t *w)
{
    net_worker_t *nw = nw_of(w);
    for (connection_t *c = nw->conns, *n; c; c = n) {
        n = c->next;
        c->fail_pending = 1;
        close_handles(c);
    }
}

/* Shutdown: the layers above ended their streams; transports end what nobody above owns. */
static void shutdown_worker(worker_t *w)
{
    net_worker_t *nw = nw_of(w);
    for (connection_t *c = nw->conns, *n; c; c = n) {
        n = c->next;
        if (c->state == CONN_OPEN && c->t->shutdown)
            c->t->shutdown(c);
    }
}

static const worker_layer_t net_layer = {
    .turn_end = flush_pending,
    .shutdown = shutdown_worker,
    .exit = exit_worker,
};

int net__init(server_t *srv)
{
    (void)srv;
    if ((slot = worker__slot_new()) < 0)
        return HEARTH_ELIMIT;
    return worker__add_layer(&net_layer);
}

int net__worker_init(worker_t *w)
{
    net_worker_t *nw = calloc(1, sizeof(*nw));
    if (!nw)
        return HEARTH_ENOMEM;
    nw->w = w;
    w->slot[slot] = nw;
    return 0;
}

void net__worker_free(worker_t *w)
{
    free(w->slot[slot]);
    w->slot[slot] = NULL;
}
