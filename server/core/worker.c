/* Worker threads: one uv loop each, with its own SO_REUSEPORT listeners, its connections, the
 * users homed on it, and an inbox (a mutex-guarded list + uv_async) through which everything
 * from other threads arrives: storage results, connections handed over, routed stanzas. */
#include <stdlib.h>
#include <string.h>

#include "c2s/conn.h"
#include "core/log.h"
#include "modules/im.h"

worker_t *worker__home(server_t *srv, const char *bare)
{
    return srv->workers[strmap_stable_hash(bare) % srv->nworkers];
}

static void discard(worker_t *w, inbox_msg_t *m);

void worker__post(worker_t *w, inbox_msg_t *m)
{
    m->next = NULL;
    __atomic_add_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
    uv_mutex_lock(&w->inbox_lock);
    int closed = w->inbox_closed;
    if (!closed) {
        if (w->inbox_tail)
            w->inbox_tail->next = m;
        else
            w->inbox_head = m;
        w->inbox_tail = m;
        /* Under the lock: once the worker marks its inbox closed it may close this handle,
         * so the wake-up must not race with that (a non-blocking eventfd write). */
        uv_async_send(&w->wake);
    }
    uv_mutex_unlock(&w->inbox_lock);
    if (closed) {
        hlog(LOG_WARN, "worker %u: message after exit dropped", w->index);
        discard(w, m);
        return;
    }
}

/* Appends the chain head..tail (n messages, already counted in inbox_pending) to w's inbox
 * under one lock, so that w takes all of it in one wake-up. */
static void post_chain(worker_t *w, inbox_msg_t *head, inbox_msg_t *tail)
{
    uv_mutex_lock(&w->inbox_lock);
    int closed = w->inbox_closed;
    if (!closed) {
        if (w->inbox_tail)
            w->inbox_tail->next = head;
        else
            w->inbox_head = head;
        w->inbox_tail = tail;
        uv_async_send(&w->wake);
    }
    uv_mutex_unlock(&w->inbox_lock);
    if (closed) {
        hlog(LOG_WARN, "worker %u: messages after exit dropped", w->index);
        while (head) {
            inbox_msg_t *n = head->next;
            discard(w, head);
            head = n;
        }
    }
}

void worker__post_from(worker_t *from, worker_t *to, inbox_msg_t *m)
{
    if (!from || from == to || from->post_hold <= 0 || !from->held_head) {
        worker__post(to, m);
        return;
    }
    /* Counted now: the shutdown drain must not see a false zero while it waits here. */
    __atomic_add_fetch(&from->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
    m->next = NULL;
    unsigned i = to->index;
    if (from->held_tail[i])
        from->held_tail[i]->next = m;
    else
        from->held_head[i] = m;
    from->held_tail[i] = m;
}

void worker__hold_posts(worker_t *w)
{
    w->post_hold++;
}

void worker__release_posts(worker_t *w)
{
    if (--w->post_hold > 0 || !w->held_head)
        return;
    for (unsigned i = 0; i < w->srv->nworkers; i++) {
        inbox_msg_t *head = w->held_head[i];
        if (!head)
            continue;
        inbox_msg_t *tail = w->held_tail[i];
        w->held_head[i] = w->held_tail[i] = NULL;
        post_chain(w->srv->workers[i], head, tail);
    }
}

static void storage_post(void *ud, storage_req_t *req)
{
    worker_t *w = ud;
    req->next = NULL;
    __atomic_add_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
    uv_mutex_lock(&w->inbox_lock);
    int closed = w->inbox_closed;
    if (!closed) {
        if (w->results_tail)
            w->results_tail->next = req;
        else
            w->results_head = req;
        w->results_tail = req;
        uv_async_send(&w->wake); /* under the lock, as in worker__post */
    }
    uv_mutex_unlock(&w->inbox_lock);
    if (closed) {
        storage_req_discard(req);
        __atomic_sub_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
    }
}

user_t *worker__user(worker_t *w, const char *bare, int create)
{
    user_t *u = strmap_get(&w->users, bare);
    if (u || !create)
        return u;
    u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    const char *at = strchr(bare, '@');
    if (!(u->bare = strdup(bare)) || !(u->node = strndup(bare, at ? (size_t)(at - bare) : 0)) ||
        strmap_init(&u->roster) || strmap_init(&u->requests) || strmap_init(&u->blocked) ||
        strmap_put(&w->users, bare, u)) {
        user__free(u);
        return NULL;
    }
    return u;
}

void worker__user_drop_if_empty(worker_t *w, user_t *u)
{
    if (u->sessions || u->refs || u->ops_head || u->state == USER_LOADING)
        return;
    strmap_remove(&w->users, u->bare);
    user__free(u);
}

static void on_resume_timer(uv_timer_t *t)
{
    worker_t *w = t->data;
    if (w->npaused && storage_outstanding(w->srv->storage) > CONN_STORAGE_LOW_WATER)
        return;
    uv_timer_stop(t);
    for (conn_t *c = w->conns, *next; c && w->npaused; c = next) {
        next = c->next;
        if (c->read_paused)
            conn__resume_reading(c);
    }
}

void worker__paused(worker_t *w)
{
    if (w->npaused++ == 0)
        uv_timer_start(&w->resume_timer, on_resume_timer, 5, 5);
}

static void on_flush_idle(uv_idle_t *h)
{
    (void)h; /* only there to keep the poll phase from blocking; the check flushes */
}

void worker__output_pending(worker_t *w)
{
    if (!uv_is_active((uv_handle_t *)&w->flush_idle) &&
        !uv_is_closing((uv_handle_t *)&w->flush_idle))
        uv_idle_start(&w->flush_idle, on_flush_idle);
}

/* After the poll phase, in which reads, inbox wake-ups and write completions ran (timers ran
 * before it): what they produced for each connection leaves in one write. */
static void on_flush_check(uv_check_t *h)
{
    worker_t *w = h->data;
    conn__flush_pending(w);
    if (!w->out_pending && uv_is_active((uv_handle_t *)&w->flush_idle))
        uv_idle_stop(&w->flush_idle);
}

static void on_listener_closed(uv_handle_t *h) {}

static void begin_shutdown(worker_t *w)
{
    if (w->stopping)
        return;
    muc__shutdown(w); /* status 332, before the sessions get <system-shutdown/> */
    w->stopping = 1;
    for (int i = 0; i < w->nlisteners; i++)
        uv_close((uv_handle_t *)&w->listeners[i], on_listener_closed);
    for (conn_t *c = w->conns, *n; c; c = n) {
        n = c->next;
        if (c->handoff)
            continue; /* its new worker sends the shutdown */
        conn__stream_error(c, HEARTH_STREAM_ERR_SYSTEM_SHUTDOWN, "the server is shutting down");
    }
}

/* After the grace period: the worker's own handles (connections are closed by then). */
static void close_any(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Frees an inbox message that will never be handled (the worker is exiting). */
static void discard(worker_t *w, inbox_msg_t *m)
{
    switch (m->kind) {
    case INBOX_ROUTE_MULTI:
        for (size_t i = 0; i < m->u.route.ntos; i++)
            free(m->u.route.tos[i]);
        free(m->u.route.tos);
        /* fall through */
    case INBOX_ROUTE:
    case INBOX_SETTLE:
    case INBOX_MUC_FORGET:
        hearth_bytes_unref(m->u.route.bytes);
        free(m->u.route.to);
        free(m->u.route.from);
        break;
    default:
        break;
    }
    free(m);
    __atomic_sub_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
}

static void on_wake(uv_async_t *a)
{
    worker_t *w = a->data;
    uv_mutex_lock(&w->inbox_lock);
    inbox_msg_t *m = w->inbox_head;
    w->inbox_head = w->inbox_tail = NULL;
    storage_req_t *r = w->results_head;
    w->results_head = w->results_tail = NULL;
    uv_mutex_unlock(&w->inbox_lock);
    while (r) {
        storage_req_t *next = r->next;
        storage_req_finish(r);
        r = next;
        __atomic_sub_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
    }
    while (m) {
        inbox_msg_t *next = m->next;
        switch (m->kind) {
        case INBOX_HANDOFF:
            conn__adopt(w, m->u.conn);
            free(m);
            break;
        case INBOX_ROUTE:
            router__deliver(w, m); /* consumes m */
            break;
        case INBOX_ROUTE_MULTI:
            router__deliver_multi(w, m); /* consumes m */
            break;
        case INBOX_SETTLE:
            router__settle_local(w, m->u.route.to, m->u.route.settle_sm, m->u.route.settle_seq);
            free(m->u.route.to);
            free(m);
            break;
        case INBOX_SHUTDOWN:
            begin_shutdown(w);
            free(m);
            break;
        case INBOX_MUC_FORGET:
            muc__forget_jid(w, m->u.route.to);
            free(m->u.route.to);
            free(m);
            break;
        case INBOX_EXIT:
            free(m);
            uv_mutex_lock(&w->inbox_lock);
            w->inbox_closed = 1;
            inbox_msg_t *rest = w->inbox_head;
            w->inbox_head = w->inbox_tail = NULL;
            storage_req_t *rr = w->results_head;
            w->results_head = w->results_tail = NULL;
            uv_mutex_unlock(&w->inbox_lock);
            while (rr) {
                storage_req_t *n = rr->next;
                storage_req_discard(rr);
                rr = n;
                __atomic_sub_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
            }
            while (rest) { /* empty after a clean drain; after the deadline, dropped */
                inbox_msg_t *n = rest->next;
                discard(w, rest);
                rest = n;
            }
            begin_shutdown(w);
            for (conn_t *c = w->conns, *n; c; c = n) { /* both handles of each, with the conn */
                n = c->next;
                conn__abort(c);
            }
            uv_walk(&w->loop, close_any, NULL);
            break;
        }
        m = next;
        /* Counted down only once handled: what it started (storage, routing) is counted by
         * then, so the shutdown drain never sees a false zero. */
        __atomic_sub_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    worker_t *w = listener->loop->data;
    if (status < 0 || w->stopping)
        return;
    conn__accept(w, listener, (int)(intptr_t)listener->data);
}

static void run(void *arg)
{
    worker_t *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Listening sockets were bound by main (port 0 resolved once, the rest on the same port). */
int worker__init(server_t *srv, worker_t *w, unsigned index)
{
    memset(w, 0, sizeof(*w));
    w->srv = srv;
    w->index = index;
    if (uv_loop_init(&w->loop))
        return HEARTH_EIO;
    w->loop.data = w;
    uv_mutex_init(&w->inbox_lock);
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_timer_init(&w->loop, &w->resume_timer);
    w->resume_timer.data = w;
    uv_check_init(&w->loop, &w->flush_check);
    w->flush_check.data = w;
    uv_check_start(&w->flush_check, on_flush_check);
    uv_idle_init(&w->loop, &w->flush_idle);
    w->flush_idle.data = w;
    w->storage_target.post = storage_post;
    w->storage_target.post_ud = w;
    if (strmap_init(&w->users))
        return HEARTH_ENOMEM;
    w->held_head = calloc(srv->nworkers, sizeof(*w->held_head));
    w->held_tail = calloc(srv->nworkers, sizeof(*w->held_tail));
    if (!w->held_head || !w->held_tail)
        return HEARTH_ENOMEM;
    w->sasl = hearth_sasl_new();
    return w->sasl ? 0 : HEARTH_ESASL;
}

int worker__listen(worker_t *w, const struct sockaddr *addr, int *port, int direct_tls)
{
    uv_tcp_t *l = &w->listeners[w->nlisteners];
    int rc = uv_tcp_init_ex(&w->loop, l, addr->sa_family);
    if (rc)
        return rc;
    l->data = (void *)(intptr_t)direct_tls;
    w->nlisteners++;
    uv_os_fd_t fd;
    int one = 1;
    if ((rc = uv_fileno((uv_handle_t *)l, &fd)) != 0)
        return rc;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)))
        return uv_translate_sys_error(errno);
    struct sockaddr_storage ss;
    memcpy(&ss, addr,
           addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
    if (ss.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)*port);
    else
        ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)*port);
    if ((rc = uv_tcp_bind(l, (struct sockaddr *)&ss, 0)) != 0)
        return rc;
    if ((rc = uv_listen((uv_stream_t *)l, 1024, on_connection)) != 0)
        return rc;
    if (*port == 0) {
        int len = sizeof(ss);
        if ((rc = uv_tcp_getsockname(l, (struct sockaddr *)&ss, &len)) != 0)
            return rc;
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    }
    return 0;
}

int worker__start(worker_t *w)
{
    return uv_thread_create(&w->thread, run, w) ? HEARTH_EIO : 0;
}

void worker__join(worker_t *w)
{
    uv_thread_join(&w->thread);
}

void worker__free(worker_t *w)
{
    uv_run(&w->loop, UV_RUN_NOWAIT); /* let pending close callbacks run */
    if (uv_loop_close(&w->loop))
        hlog(LOG_WARN, "worker %u: loop closed with handles still open", w->index);
    STRMAP_FOREACH(&w->users, e)
    {
        user__free(e->value);
    }
    strmap_free(&w->users);
    uv_mutex_destroy(&w->inbox_lock);
    free(w->held_head);
    free(w->held_tail);
    hearth_sasl_free(w->sasl);
}

/* ---- the per-IP counter of unauthenticated connections (shared; a short lock, no I/O) ---- */

int server__preauth_enter(server_t *srv, const char *ip)
{
    if (srv->set.preauth_per_ip == 0)
        return 0;
    uv_mutex_lock(&srv->ip_lock);
    uintptr_t n = (uintptr_t)strmap_get(&srv->preauth_ips, ip);
    int refused = n >= srv->set.preauth_per_ip;
    if (!refused && strmap_put(&srv->preauth_ips, ip, (void *)(n + 1)))
        refused = 1;
    uv_mutex_unlock(&srv->ip_lock);
    return refused ? HEARTH_ELIMIT : 0;
}

void server__preauth_leave(server_t *srv, const char *ip)
{
    if (srv->set.preauth_per_ip == 0)
        return;
    uv_mutex_lock(&srv->ip_lock);
    uintptr_t n = (uintptr_t)strmap_get(&srv->preauth_ips, ip);
    if (n <= 1)
        strmap_remove(&srv->preauth_ips, ip);
    else
        strmap_put(&srv->preauth_ips, ip, (void *)(n - 1));
    uv_mutex_unlock(&srv->ip_lock);
}
