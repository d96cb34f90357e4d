/* The c2s layer's place in a worker: its per-worker state (a core slot), the listener's
 * accept callback, and what it does at the end of each loop turn (flush output), at shutdown
 * (end every stream with <system-shutdown/>) and at exit (abort what is left). */
#include <stdlib.h>

#include "c2s/conn.h"
#include "core/log.h"

static int slot = -1;

c2s_worker_t *c2s__worker(worker_t *w)
{
    return w->slot[slot];
}

static void shutdown_streams(worker_t *w)
{
    c2s_worker_t *cw = c2s__worker(w);
    for (conn_t *c = cw->conns, *n; c; c = n) {
        n = c->next;
        if (c->moving)
            continue; /* its new worker sends the shutdown */
        conn__stream_error(c, HEARTH_STREAM_ERR_SYSTEM_SHUTDOWN, "the server is shutting down");
    }
}

/* What is left of c2s on the worker: every connection, and the timers of detached sessions
 * (the sessions end with them). */
static void exit_worker(worker_t *w)
{
    c2s_worker_t *cw = c2s__worker(w);
    for (conn_t *c = cw->conns, *n; c; c = n) {
        n = c->next;
        if (c->cs)
            csession__end(c->cs); /* now: the run queue is not run any more */
        conn__abort(c);
    }
    STRMAP_FOREACH(&w->users, e)
    {
        user_t *u = e->value;
        for (session_t *s = u->sessions, *n; s; s = n) {
            n = s->user_next;
            if (s->state == SESSION_DETACHED)
                csession__end(csession__of(s));
        }
    }
}

static const worker_layer_t c2s_layer = {
    .shutdown = shutdown_streams,
    .exit = exit_worker,
};

int c2s__init(server_t *srv)
{
    (void)srv;
    if ((slot = worker__slot_new()) < 0)
        return HEARTH_ELIMIT;
    return worker__add_layer(&c2s_layer);
}

int c2s__worker_init(worker_t *w)
{
    c2s_worker_t *cw = calloc(1, sizeof(*cw));
    if (!cw)
        return HEARTH_ENOMEM;
    cw->w = w;
    cw->sasl = hearth_sasl_new();
    if (!cw->sasl) {
        free(cw);
        return HEARTH_ESASL;
    }
    uv_timer_init(&w->loop, &cw->resume_timer);
    cw->resume_timer.data = cw;
    w->slot[slot] = cw;
    return 0;
}

void c2s__worker_free(worker_t *w)
{
    c2s_worker_t *cw = c2s__worker(w);
    if (!cw)
        return;
    hearth_sasl_free(cw->sasl);
    free(cw);
    w->slot[slot] = NULL;
}

void c2s__on_connection(uv_stream_t *listener, int status)
{
    worker_t *w = listener->loop->data;
    if (status < 0 || w->stopping)
        return;
    conn__accept(w, listener, listener->data != NULL);
}
