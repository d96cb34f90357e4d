/* The blocking wrappers of include/hearth/client.h for small programs: they run the context's
 * loop (hearth_ctx_run_until) until a client's state or an IQ's answer says they are done.
 * Touch only the client they are given. */
#include <stdlib.h>

#include "internal.h"

static int not_connecting(void *ud)
{
    hearth_client_t *c = ud;
    return c->state == HEARTH_CLIENT_ONLINE || c->state == HEARTH_CLIENT_IDLE;
}

int hearth_client_connect_wait(hearth_client_t *c, unsigned timeout_ms)
{
    if (c->ctx->running)
        return HEARTH_EBUSY;
    if (c->state == HEARTH_CLIENT_IDLE) {
        int rc = hearth_client_connect(c);
        if (rc)
            return rc;
    }
    c->last_reason = 0;
    int rc = hearth_ctx_run_until(c->ctx, not_connecting, c, timeout_ms);
    if (rc)
        return rc;
    return c->state == HEARTH_CLIENT_ONLINE ? 0 : c->last_reason ? c->last_reason : HEARTH_ECLOSED;
}

typedef struct iq_wait {
    bool done;
    bool abandoned; /* the waiter returned first: the callback frees this */
    int result;
    hearth_stanza_t *response;
} iq_wait_t;

static void iq_answered(void *ud, hearth_client_t *c, int result, hearth_stanza_t *response)
{
    (void)c;
    iq_wait_t *w = ud;
    if (w->abandoned) {
        free(w);
        return;
    }
    w->done = true;
    w->result = result;
    if (response) {
        w->response = hearth_stanza_ref(response);
        if (!w->response)
            w->result = HEARTH_ENOMEM;
    }
}

static int iq_done(void *ud)
{
    return ((iq_wait_t *)ud)->done;
}

int hearth_client_iq_wait(hearth_client_t *c, hearth_stanza_t *iq, unsigned timeout_ms,
                          hearth_stanza_t **response)
{
    if (response)
        *response = NULL;
    if (c->ctx->running) {
        hearth_stanza_unref(iq);
        return HEARTH_EBUSY;
    }
    /* The wait lives on this stack: the IQ's own timeout must end it before we return. */
    if (!timeout_ms)
        timeout_ms = c->iq_timeout;
    iq_wait_t *w = calloc(1, sizeof(*w));
    if (!w) {
        hearth_stanza_unref(iq);
        return HEARTH_ENOMEM;
    }
    int rc = hearth_client_iq(c, iq, timeout_ms, iq_answered, w);
    if (rc) {
        free(w);
        return rc;
    }
    /* The IQ's deadline answers it; the loop's own timeout is a second guard. */
    rc = hearth_ctx_run_until(c->ctx, iq_done, w, timeout_ms + 1000);
    if (!w->done) {
        /* Still pending (the loop was stopped): the callback frees w when it comes. */
        w->abandoned = true;
        return rc ? rc : HEARTH_ETIMEOUT;
    }
    rc = w->result;
    if (response)
        *response = w->response;
    else
        hearth_stanza_unref(w->response);
    free(w);
    return rc;
}

static int idle(void *ud)
{
    return ((hearth_client_t *)ud)->state == HEARTH_CLIENT_IDLE;
}

int hearth_client_disconnect_wait(hearth_client_t *c, unsigned timeout_ms)
{
    if (c->ctx->running)
        return HEARTH_EBUSY;
    int rc = hearth_client_disconnect(c);
    if (rc)
        return rc;
    return hearth_ctx_run_until(c->ctx, idle, c, timeout_ms);
}
