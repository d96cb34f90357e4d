/* Worker threads: one uv loop each, with its own SO_REUSEPORT listeners, the users homed on
 * it, an inbox (a mutex-guarded list + uv_async) through which everything from other threads
 * arrives (storage results, connections handed over, routed stanzas), and a run queue for what
 * it makes for itself. The layers above register what they do at each loop turn's end. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/hooks.h"
#include "core/log.h"
#include "core/router.h"
#include "core/user.h"

static const worker_layer_t *layers[WORKER_LAYERS_MAX];
static unsigned nlayers;
static int nslots;

int worker__add_layer(const worker_layer_t *layer)
{
    if (nlayers == WORKER_LAYERS_MAX)
        return HEARTH_ELIMIT;
    layers[nlayers++] = layer;
    return 0;
}

int worker__slot_new(void)
{
    return nslots < WORKER_SLOTS ? nslots++ : -1;
}

const char *const worker__mech_names[WORKER_MECHS] = {
    "SCRAM-SHA-1", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS",
    "PLAIN",       "EXTERNAL",         "other",
};

int worker__mech_index(const char *mech)
{
    for (int i = 0; mech && i < WORKER_MECHS - 1; i++)
        if (!strcmp(mech, worker__mech_names[i]))
            return i;
    return WORKER_MECHS - 1;
}

worker_t *worker__home(server_t *srv, const char *bare)
{
    return srv->workers[strmap_stable_hash(bare) % srv->nworkers];
}

static void discard(worker_t *w, inbox_msg_t *m);

int worker__post(worker_t *w, inbox_msg_t *m)
{
    m->next = NULL;
    __atomic_add_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
    uv_mutex_lock(&w->inbox_lock);
    int closed = w->inbox_closed;
    /* Control messages always pass: the bound is for work, not for stopping it. */
    int full = w->inbox_len >= WORKER_INBOX_MAX && m->kind != INBOX_SHUTDOWN &&
               m->kind != INBOX_EXIT && m->kind != INBOX_CALL;
    if (!closed && !full) {
        if (w->inbox_tail)
            w->inbox_tail->next = m;
        else
            w->inbox_head = m;
        w->inbox_tail = m;
        w->inbox_len++;
        /* Under the lock: once the worker marks its inbox closed it may close this handle,
         * so the wake-up must not race with that (a non-blocking eventfd write). */
        uv_async_send(&w->wake);
    }
    uv_mutex_unlock(&w->inbox_lock);
    if (closed || full) {
        if (closed)
            hlog(LOG_WARN, "worker %u: message after exit dropped", w->index);
        discard(w, m);
        return HEARTH_EAGAIN;
    }
    return 0;
}

int worker__call(worker_t *to, void (*fn)(worker_t *w, void *arg), void (*drop)(void *arg),
                 void *arg)
{
    inbox_msg_t *m = calloc(1, sizeof(*m));
    if (!m) {
        if (drop)
            drop(arg);
        return HEARTH_ENOMEM;
    }
    m->kind = INBOX_CALL;
    m->u.call.fn = fn;
    m->u.call.drop = drop;
    m->u.call.arg = arg;
    return worker__post(to, m);
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
        for (inbox_msg_t *m = head; m; m = m->next)
            w->inbox_len++;
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

int worker__post_from(worker_t *from, worker_t *to, inbox_msg_t *m)
{
    if (!from || from == to || from->post_hold <= 0 || !from->held_head)
        return worker__post(to, m);
    /* Counted now: the shutdown drain must not see a false zero while it waits here. */
    __atomic_add_fetch(&from->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
    m->next = NULL;
    unsigned i = to->index;
    if (from->held_tail[i])
        from->held_tail[i]->next = m;
    else
        from->held_head[i] = m;
    from->held_tail[i] = m;
    return 0;
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

static void on_turn_idle(uv_idle_t *h)
{
    (void)h; /* only there to keep the poll phase from blocking; the check does the work */
}

void worker__turn_pending(worker_t *w)
{
    w->turn_wanted = 1;
    if (!uv_is_active((uv_handle_t *)&w->turn_idle) && !uv_is_closing((uv_handle_t *)&w->turn_idle))
        uv_idle_start(&w->turn_idle, on_turn_idle);
}

int worker__run_later(worker_t *w, inbox_msg_t *m)
{
    if (w->runq_len >= WORKER_RUNQ_MAX) {
        worker__discard(w, m);
        return HEARTH_EAGAIN;
    }
    __atomic_add_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
    m->next = NULL;
    if (w->runq_tail)
        w->runq_tail->next = m;
    else
        w->runq_head = m;
    w->runq_tail = m;
    w->runq_len++;
    worker__turn_pending(w);
    return 0;
}

static void handle(worker_t *w, inbox_msg_t *m);

/* After the poll phase, in which reads, inbox wake-ups and write completions ran (timers ran
 * before it): first the work made for this worker during the turn, in order (what it makes
 * in turn runs in the same pass), then what each layer does at the end of a turn (net: what
 * the turn produced for each connection leaves in one write). */
static void on_turn_check(uv_check_t *h)
{
    worker_t *w = h->data;
    inbox_msg_t *m;
    w->turn_wanted = 0; /* set again by whatever still has work after this turn */
    while ((m = w->runq_head)) {
        w->runq_head = m->next;
        if (!w->runq_head)
            w->runq_tail = NULL;
        w->runq_len--;
        handle(w, m);
        __atomic_sub_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
    }
    for (unsigned i = 0; i < nlayers; i++)
        if (layers[i]->turn_end)
            layers[i]->turn_end(w);
}

/* Before the poll phase: the idle handle (which keeps poll from blocking) stays only while
 * the next check has work: run queue entries, or a layer that asked again during the last
 * check or since (close callbacks run after the check). */
static void on_turn_prepare(uv_prepare_t *h)
{
    worker_t *w = h->data;
    if (!w->runq_head && !w->turn_wanted && uv_is_active((uv_handle_t *)&w->turn_idle))
        uv_idle_stop(&w->turn_idle);
}

static void on_listener_closed(uv_handle_t *h) {}

static void end_streams(worker_t *w, void *arg)
{
    (void)arg;
    for (unsigned i = 0; i < nlayers; i++)
        if (layers[i]->shutdown)
            layers[i]->shutdown(w);
}

static void begin_shutdown(worker_t *w)
{
    if (w->stopping)
        return;
    hook_args_t a = {.w = w};
    hooks__run(HOOK_SHUTDOWN, &a); /* last words (rooms: status 332) before streams end */
    w->stopping = 1;
    for (int i = 0; i < w->nlisteners; i++)
        uv_close((uv_handle_t *)&w->listeners[i], on_listener_closed);
    /* The streams end after what the last words made for sessions here (run queue, in order). */
    inbox_msg_t *m = calloc(1, sizeof(*m));
    if (m) {
        m->kind = INBOX_CALL;
        m->u.call.fn = end_streams;
        if (worker__run_later(w, m) == 0)
            return;
    }
    end_streams(w, NULL);
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
        hearth_bytes_unref(m->u.route.bytes);
        free(m->u.route.to);
        free(m->u.route.from);
        break;
    case INBOX_CALL:
        if (m->u.call.drop)
            m->u.call.drop(m->u.call.arg);
        break;
    default:
        break;
    }
    free(m);
    __atomic_sub_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
}

void worker__discard(worker_t *w, inbox_msg_t *m)
{
    /* Counted as posted, so that discard's count-down balances. */
    __atomic_add_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
    discard(w, m);
}

static void exit_worker(worker_t *w)
{
    uv_mutex_lock(&w->inbox_lock);
    w->inbox_closed = 1;
    inbox_msg_t *rest = w->inbox_head;
    w->inbox_head = w->inbox_tail = NULL;
    w->inbox_len = 0;
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
    while ((rest = w->runq_head)) {
        w->runq_head = rest->next;
        discard(w, rest);
    }
    w->runq_tail = NULL;
    w->runq_len = 0;
    begin_shutdown(w);
    for (unsigned i = 0; i < nlayers; i++)
        if (layers[i]->exit)
            layers[i]->exit(w);
    uv_walk(&w->loop, close_any, NULL);
}

/* One message of the inbox or the run queue; consumes m. */
static void handle(worker_t *w, inbox_msg_t *m)
{
    switch (m->kind) {
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
    case INBOX_CALL:
        m->u.call.fn(w, m->u.call.arg);
        free(m);
        break;
    case INBOX_SHUTDOWN:
        begin_shutdown(w);
        free(m);
        break;
    case INBOX_EXIT:
        free(m);
        exit_worker(w);
        break;
    }
}

static void on_wake(uv_async_t *a)
{
    worker_t *w = a->data;
    uv_mutex_lock(&w->inbox_lock);
    inbox_msg_t *m = w->inbox_head;
    w->inbox_head = w->inbox_tail = NULL;
    w->inbox_len = 0;
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
        int exiting = m->kind == INBOX_EXIT;
        handle(w, m);
        /* Counted down only once handled: what it started (storage, routing) is counted by
         * then, so the shutdown drain never sees a false zero. */
        __atomic_sub_fetch(&w->srv->inbox_pending, 1, __ATOMIC_ACQ_REL);
        if (exiting) {
            while (next) { /* taken before the exit: not handled any more */
                inbox_msg_t *n = next->next;
                discard(w, next);
                next = n;
            }
            break;
        }
        m = next;
    }
}

/* The loop's lateness: a timer that knows when it should have fired. What delays it (long
 * callbacks, a flood of inbox messages) delays everything else on the worker. */
static void on_lag_timer(uv_timer_t *t)
{
    worker_t *w = t->data;
    uint64_t now = uv_hrtime();
    uint64_t late = now > w->lag_due_ns ? (now - w->lag_due_ns) / 1000 : 0;
    worker_stats_t *st = &w->stats;
    st->lag_last_us = late;
    if (late > st->lag_max_us)
        st->lag_max_us = late;
    if (++st->lag_samples >= WORKER_LAG_WINDOW) {
        st->lag_prev_max_us = st->lag_max_us;
        st->lag_max_us = 0;
        st->lag_samples = 0;
    }
    w->lag_due_ns = now + (uint64_t)WORKER_LAG_MS * 1000000u;
}

static void run(void *arg)
{
    worker_t *w = arg;
    uv_update_time(&w->loop);
    w->lag_due_ns = uv_hrtime() + (uint64_t)WORKER_LAG_MS * 1000000u;
    uv_timer_start(&w->lag_timer, on_lag_timer, WORKER_LAG_MS, WORKER_LAG_MS);
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* Listening sockets were bound by main (port 0 resolved once, the rest on the same port). */
int worker__init(server_t *srv, worker_t *w, unsigned index)
{
    memset(w, 0, sizeof(*w));
    w->srv = srv;
    w->index = index;
    w->set = srv->set;
    if (uv_loop_init(&w->loop))
        return HEARTH_EIO;
    w->loop.data = w;
    uv_mutex_init(&w->inbox_lock);
    uv_async_init(&w->loop, &w->wake, on_wake);
    w->wake.data = w;
    uv_check_init(&w->loop, &w->turn_check);
    w->turn_check.data = w;
    uv_check_start(&w->turn_check, on_turn_check);
    uv_prepare_init(&w->loop, &w->turn_prepare);
    w->turn_prepare.data = w;
    uv_prepare_start(&w->turn_prepare, on_turn_prepare);
    uv_timer_init(&w->loop, &w->lag_timer);
    uv_unref((uv_handle_t *)&w->lag_timer); /* it never keeps the loop alive by itself */
    w->lag_timer.data = w;
    uv_idle_init(&w->loop, &w->turn_idle);
    w->turn_idle.data = w;
    w->storage_target.post = storage_post;
    w->storage_target.post_ud = w;
    w->storage_target.lane = index; /* each worker's requests in its own order */
    if (strmap_init(&w->users))
        return HEARTH_ENOMEM;
    w->held_head = calloc(srv->nworkers, sizeof(*w->held_head));
    w->held_tail = calloc(srv->nworkers, sizeof(*w->held_tail));
    if (!w->held_head || !w->held_tail)
        return HEARTH_ENOMEM;
    return 0;
}

int worker__listen(worker_t *w, const struct sockaddr *addr, int *port, uv_connection_cb on_accept,
                   void *ud)
{
    if (w->nlisteners == (int)(sizeof(w->listeners) / sizeof(*w->listeners)))
        return UV_ENOBUFS;
    uv_tcp_t *l = &w->listeners[w->nlisteners];
    int rc = uv_tcp_init_ex(&w->loop, l, addr->sa_family);
    if (rc)
        return rc;
    l->data = ud;
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
    if ((rc = uv_listen((uv_stream_t *)l, 1024, on_accept)) != 0)
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
    inbox_msg_t *m;
    while ((m = w->runq_head)) { /* made during the exit itself: never run */
        w->runq_head = m->next;
        discard(w, m);
    }
    w->runq_tail = NULL;
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
}

/* ---- the per-IP counter of unauthenticated connections (shared; a short lock, no I/O) ---- */

int server__preauth_enter(server_t *srv, const char *ip, unsigned limit)
{
    /* Counted even without a limit: limits.preauth_per_ip may be set while the connection
     * waits, and its leave must find it. */
    uv_mutex_lock(&srv->ip_lock);
    uintptr_t n = (uintptr_t)strmap_get(&srv->preauth_ips, ip);
    int refused = limit && n >= limit;
    if (!refused && strmap_put(&srv->preauth_ips, ip, (void *)(n + 1)))
        refused = 1;
    uv_mutex_unlock(&srv->ip_lock);
    return refused ? HEARTH_ELIMIT : 0;
}

void server__preauth_leave(server_t *srv, const char *ip)
{
    uv_mutex_lock(&srv->ip_lock);
    uintptr_t n = (uintptr_t)strmap_get(&srv->preauth_ips, ip);
    if (n <= 1)
        strmap_remove(&srv->preauth_ips, ip);
    else
        strmap_put(&srv->preauth_ips, ip, (void *)(n - 1));
    uv_mutex_unlock(&srv->ip_lock);
}
