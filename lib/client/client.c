/* A client's life (include/hearth/client.h): configuration, the one state variable and its
 * setter, the one timer behind every deadline, losses and the decision to reconnect with
 * backoff, orderly disconnection, the deferred free. Touches its client, its connection through
 * net.c, and the context's lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

const char *const client__mech_names[M_COUNT] = {
    "SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN",
};

static const char *const state_names[] = {"idle",   "connecting", "negotiating",
                                          "online", "closing",    "waiting"};

/* ---- re-entrancy ---- */

static void destroy(hearth_client_t *c);
static void free_listeners(hearth_client_t *c);

void client__enter(hearth_client_t *c)
{
    c->depth++;
}

bool client__leave(hearth_client_t *c)
{
    if (--c->depth == 0 && c->free_pending && !c->freed) {
        destroy(c);
        return true;
    }
    return c->freed;
}

bool client__alive(hearth_client_t *c, conn_t *conn)
{
    return !c->free_pending && !c->freed && (!conn || c->conn == conn);
}

/* ---- state ---- */

void client__set_state(hearth_client_t *c, hearth_client_state_t st)
{
    if (c->state == st)
        return;
    ctx__log(c->ctx, c, HEARTH_LOG_DEBUG, "state %s -> %s", state_names[c->state], state_names[st]);
    c->state = st;
}

void client__next_id(hearth_client_t *c, char *buf, size_t size)
{
    snprintf(buf, size, "h%llu", (unsigned long long)++c->id_counter);
}

char *hearth_client_new_id(hearth_client_t *c, char *buf, size_t size)
{
    client__next_id(c, buf, size);
    return buf;
}

/* ---- the timer: the earliest of every deadline ---- */

static uint64_t earliest(const hearth_client_t *c)
{
    uint64_t t = 0;
    const uint64_t cand[] = {c->connect_deadline, c->negotiation_deadline,
                             c->close_deadline,   c->reconnect_at,
                             c->ping_at,          c->iq_first ? c->iq_first->deadline : 0};
    for (size_t i = 0; i < sizeof(cand) / sizeof(*cand); i++)
        if (cand[i] && (!t || cand[i] < t))
            t = cand[i];
    return t;
}

static void on_timer(uv_timer_t *t);

void client__arm(hearth_client_t *c)
{
    if (c->freed)
        return;
    uint64_t due = earliest(c);
    if (!due) {
        uv_timer_stop(&c->timer);
        return;
    }
    uint64_t now = ctx__now(c->ctx);
    if (c->ctx->frozen && due > now) {
        uv_timer_stop(&c->timer); /* a test's clock: hearth__ctx_advance arms it again */
        return;
    }
    uv_timer_start(&c->timer, on_timer, due > now ? due - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
    hearth_client_t *c = t->data;
    uint64_t now = ctx__now(c->ctx);
    client__enter(c);
    if (c->connect_deadline && now >= c->connect_deadline) {
        c->connect_deadline = 0;
        client__lost(c, HEARTH_ETIMEOUT, HEARTH_STREAM_ERR_NONE,
                     "no connection within the connect timeout", NULL);
    }
    if (client__alive(c, NULL) && c->negotiation_deadline && now >= c->negotiation_deadline) {
        c->negotiation_deadline = 0;
        client__lost(c, HEARTH_ETIMEOUT, HEARTH_STREAM_ERR_NONE,
                     "the server did not finish negotiation in time", NULL);
    }
    if (client__alive(c, NULL) && c->close_deadline && now >= c->close_deadline) {
        c->close_deadline = 0;
        client__lost(c, 0, HEARTH_STREAM_ERR_NONE, "disconnected", NULL);
    }
    if (client__alive(c, NULL) && c->reconnect_at && now >= c->reconnect_at) {
        c->reconnect_at = 0;
        c->reconnects++;
        net__start(c);
    }
    if (client__alive(c, NULL))
        dispatch__iq_timeouts(c, now);
    if (client__alive(c, NULL) && c->ping_at && now >= c->ping_at) {
        c->ping_at = 0;
        if (c->state == HEARTH_CLIENT_ONLINE) {
            if (now - c->last_rx >= c->ping_interval && !c->ping_outstanding)
                dispatch__ping_server(c);
            c->ping_at = c->last_rx + c->ping_interval;
            if (c->ping_at <= now)
                c->ping_at = now + c->ping_interval;
        }
    }
    if (!client__leave(c))
        client__arm(c);
}

/* ---- going online ---- */

void client__online(hearth_client_t *c, bool resumed)
{
    conn_t *conn = c->conn;
    c->negotiation_deadline = 0;
    c->attempts = 0;
    c->was_online = true;
    c->last_rx = ctx__now(c->ctx);
    c->ping_at = c->ping_interval ? c->last_rx + c->ping_interval : 0;
    client__set_state(c, HEARTH_CLIENT_ONLINE);
    ctx__log(c->ctx, c, HEARTH_LOG_INFO, "%s (%s%s%s)", resumed ? "resumed" : "online",
             c->info_tls ? c->info_tls : "no TLS", c->info_mech ? ", " : "",
             c->info_mech ? c->info_mech : "");
    /* What waited goes first: the unacknowledged after a resumption, what was sent while
     * there was no connection. Then the application, then the initial presence. */
    sm__write_pending(c);
    CLIENT_EMIT(c, conn, online, c->full_jid, resumed);
    if (!client__alive(c, conn))
        return;
    if (!resumed && (c->initial_presence_fn || c->initial_presence)) {
        hearth_stanza_t *p = c->initial_presence_fn ? c->initial_presence_fn(c->initial_presence_ud)
                                                    : hearth_stanza_new_presence(NULL, NULL);
        int rc = p ? hearth_client_send(c, p) : c->initial_presence_fn ? 0 : HEARTH_ENOMEM;
        if (rc)
            ctx__log(c->ctx, c, HEARTH_LOG_WARN, "initial presence not sent: %s",
                     hearth_strerror(rc));
    }
    client__arm(c);
}

/* ---- losses and reconnection ---- */

/* Reasons after which trying again can help. */
static bool transient(int reason, hearth_stream_error_t cond)
{
    switch (reason) {
    case HEARTH_EDNS:
    case HEARTH_ECONNECT:
    case HEARTH_ETIMEOUT:
    case HEARTH_EIO:
    case HEARTH_ECLOSED:
    case HEARTH_ETLS:
    case HEARTH_EXML:
    case HEARTH_ELIMIT:
    case HEARTH_ENOMEM:
        return true;
    case HEARTH_ESTREAM:
        /* Replaced by another login, refused, or sent elsewhere: coming back would fight it. */
        return cond != HEARTH_STREAM_ERR_CONFLICT && cond != HEARTH_STREAM_ERR_NOT_AUTHORIZED &&
               cond != HEARTH_STREAM_ERR_HOST_UNKNOWN && cond != HEARTH_STREAM_ERR_SEE_OTHER_HOST &&
               cond != HEARTH_STREAM_ERR_POLICY_VIOLATION &&
               cond != HEARTH_STREAM_ERR_INVALID_NAMESPACE;
    default:
        return false;
    }
}

/* Exponential backoff with jitter: [base/2, base] where base doubles from the minimum. */
static unsigned backoff(hearth_client_t *c)
{
    uint64_t base = c->reconnect_min;
    for (unsigned i = 0; i < c->attempts && base < c->reconnect_max; i++)
        base *= 2;
    if (base > c->reconnect_max)
        base = c->reconnect_max;
    return (unsigned)(base / 2 + ctx__rand(c->ctx, base - base / 2 + 1));
}

void client__lost(hearth_client_t *c, int reason, hearth_stream_error_t cond, const char *text,
                  const char *condition)
{
    if (c->state == HEARTH_CLIENT_IDLE || c->state == HEARTH_CLIENT_WAITING)
        return;
    bool was_online = c->state == HEARTH_CLIENT_ONLINE || c->state == HEARTH_CLIENT_CLOSING;
    net__abandon(c);
    c->connect_deadline = c->negotiation_deadline = c->close_deadline = c->ping_at = 0;
    c->ping_outstanding = false;
    if (!was_online)
        c->attempts++;
    hearth_disconnect_info_t info = {
        .reason = reason,
        .stream_error = cond,
        .text = text ? text : hearth_strerror(reason),
        .condition = condition,
        .attempt = was_online ? 0 : c->attempts,
    };
    if (c->user_closing)
        info.reason = reason = 0;
    c->last_reason = reason;
    bool again = c->reconnect && c->was_online && !c->user_closing && transient(reason, cond) &&
                 (!c->reconnect_max_attempts || c->attempts < c->reconnect_max_attempts);
    ctx__log(c->ctx, c, reason ? HEARTH_LOG_WARN : HEARTH_LOG_INFO, "disconnected: %s%s%s%s",
             info.text, cond ? " (" : "", cond ? hearth_stream_error_name(cond) : "",
             cond ? ")" : "");
    if (again) {
        info.will_reconnect = 1;
        info.reconnect_delay_ms = backoff(c);
        c->reconnect_at = ctx__now(c->ctx) + info.reconnect_delay_ms;
        sm__connection_lost(c);
        client__set_state(c, HEARTH_CLIENT_WAITING);
    } else {
        client__set_state(c, HEARTH_CLIENT_IDLE);
        c->was_online = false;
        c->user_closing = false;
        /* Nothing more will answer: IQs fail, what waited is reported. */
        dispatch__fail_iqs(c, HEARTH_ECLOSED, false);
        if (client__alive(c, NULL))
            sm__give_up(c);
    }
    if (client__alive(c, NULL))
        CLIENT_EMIT(c, NULL, disconnected, &info);
    if (client__alive(c, NULL))
        client__arm(c);
}

/* ---- public: life cycle ---- */

static int parse_mechs(hearth_client_t *c, const char *list)
{
    static const char dflt[] =
        "SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS SCRAM-SHA-256 SCRAM-SHA-1 PLAIN";
    const char *p = list ? list : dflt;
    c->nprefs = 0;
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        size_t n = strcspn(p, " ,\t");
        if (!n)
            break;
        int found = -1;
        for (int m = 0; m < M_COUNT; m++)
            if (strlen(client__mech_names[m]) == n && !strncasecmp(p, client__mech_names[m], n))
                found = m;
        if (found < 0)
            return HEARTH_EINVAL;
        bool dup = false;
        for (unsigned i = 0; i < c->nprefs; i++)
            dup |= c->prefs[i] == (mech_t)found;
        if (!dup)
            c->prefs[c->nprefs++] = (mech_t)found;
        p += n;
    }
    return c->nprefs ? 0 : HEARTH_EINVAL;
}

static bool is_ip(const char *s)
{
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    return uv_ip4_addr(s, 0, &a4) == 0 || uv_ip6_addr(s, 0, &a6) == 0;
}

#define OR(v, d) ((v) ? (v) : (d))

static int configure(hearth_client_t *c, const hearth_client_config_t *cfg)
{
    hearth_ctx_t *ctx = c->ctx;
    if (!cfg->jid || !cfg->password)
        return HEARTH_EINVAL;
    hearth_jid_t full = HEARTH_JID_INIT;
    const char *reason = NULL;
    int rc = hearth_jid_parse(cfg->jid, strlen(cfg->jid), &full, &reason);
    if (rc)
        return rc == HEARTH_ENOMEM ? rc : HEARTH_EINVAL;
    if (!full.node) {
        hearth_jid_clear(&full);
        return HEARTH_EINVAL;
    }
    const char *res = cfg->resource ? cfg->resource : full.resource;
    if (res) {
        char *prepped = NULL;
        rc = hearth_jid_resourceprep(res, strlen(res), &prepped, &reason);
        if (!rc) {
            c->resource = ctx__strdup(ctx, prepped);
            if (!c->resource)
                rc = HEARTH_ENOMEM;
        } else if (rc != HEARTH_ENOMEM) {
            rc = HEARTH_EINVAL;
        }
        free(prepped);
    }
    if (!rc)
        rc = hearth_jid_to_bare(&full, &c->jid);
    hearth_jid_clear(&full);
    if (rc)
        return rc;
    if (cfg->bind_address && !is_ip(cfg->bind_address))
        return HEARTH_EINVAL;
    if ((rc = parse_mechs(c, cfg->sasl_mechanisms)))
        return rc;
    if ((unsigned)cfg->tls > HEARTH_TLS_DISABLED ||
        (unsigned)cfg->register_mode > HEARTH_REGISTER_CREATE_NEW ||
        (unsigned)cfg->sm_lost_policy > HEARTH_SM_RESEND)
        return HEARTH_EINVAL;
    c->password = ctx__strdup(ctx, cfg->password);
    c->host = cfg->host ? ctx__strdup(ctx, cfg->host) : NULL;
    c->bind_address = cfg->bind_address ? ctx__strdup(ctx, cfg->bind_address) : NULL;
    if (!c->password || (cfg->host && !c->host) || (cfg->bind_address && !c->bind_address))
        return HEARTH_ENOMEM;
    c->tls = cfg->tls;
    c->port = cfg->port;
    c->tls_no_verify = cfg->tls_no_verify;
    if (c->tls != HEARTH_TLS_DISABLED) {
        char *err = NULL;
        c->tls_ctx = ctx__tls(ctx, cfg->tls_ca_file, cfg->tls_no_verify, &err);
        if (!c->tls_ctx) {
            ctx__log(ctx, c, HEARTH_LOG_ERROR, "TLS: %s", err ? err : "cannot create a context");
            free(err);
            return HEARTH_ECONFIG;
        }
    }
    c->allow_plain_without_tls = cfg->allow_plain_without_tls;
    c->register_mode = cfg->register_mode;
    c->connect_timeout = OR(cfg->connect_timeout_ms, DEF_CONNECT_TIMEOUT);
    c->negotiation_timeout = OR(cfg->negotiation_timeout_ms, DEF_NEGOTIATION_TIMEOUT);
    c->iq_timeout = OR(cfg->iq_timeout_ms, DEF_IQ_TIMEOUT);
    c->ping_interval = cfg->ping_interval_ms;
    c->initial_presence = !cfg->no_initial_presence;
    c->sm_wanted = !cfg->no_sm;
    c->sm_max_unacked = OR(cfg->sm_max_unacked, DEF_SM_MAX_UNACKED);
    c->sm_max_unacked_bytes = OR(cfg->sm_max_unacked_bytes, DEF_SM_MAX_UNACKED_BYTES);
    c->sm_ack_every = OR(cfg->sm_ack_every, DEF_SM_ACK_EVERY);
    c->sm_lost_policy = cfg->sm_lost_policy;
    c->reconnect = cfg->reconnect;
    c->reconnect_min = OR(cfg->reconnect_min_ms, DEF_RECONNECT_MIN);
    c->reconnect_max = OR(cfg->reconnect_max_ms, DEF_RECONNECT_MAX);
    if (c->reconnect_max < c->reconnect_min)
        c->reconnect_max = c->reconnect_min;
    c->reconnect_max_attempts = cfg->reconnect_max_attempts;
    c->max_send_queue = OR(cfg->max_send_queue_bytes, DEF_MAX_SEND_QUEUE);
    c->max_stanza = OR(cfg->max_stanza_bytes, DEF_MAX_STANZA);
    c->max_pending_iqs = OR(cfg->max_pending_iqs, DEF_MAX_PENDING_IQS);
    c->log_stanzas = cfg->log_stanzas;
    return 0;
}

static void free_config(hearth_client_t *c)
{
    hearth_ctx_t *ctx = c->ctx;
    hearth_jid_clear(&c->jid);
    ctx__free(ctx, c->resource);
    if (c->password) {
        OPENSSL_cleanse(c->password, strlen(c->password));
        ctx__free(ctx, c->password);
    }
    ctx__free(ctx, c->host);
    ctx__free(ctx, c->bind_address);
    c->resource = c->password = c->host = c->bind_address = NULL;
}

static void on_timer_closed(uv_handle_t *h)
{
    hearth_client_t *c = h->data;
    hearth_ctx_t *ctx = c->ctx;
    ctx__free(ctx, c);
    ctx__release(ctx);
}

int hearth_client_new(hearth_ctx_t *ctx, const hearth_client_config_t *cfg,
                      const hearth_client_events_t *ev, void *ud, hearth_client_t **out)
{
    *out = NULL;
    if (!ctx || !cfg || ctx->freeing)
        return HEARTH_EINVAL;
    hearth_client_t *c = ctx__calloc(ctx, sizeof(*c));
    if (!c)
        return HEARTH_ENOMEM;
    c->ctx = ctx;
    c->ud = ud;
    c->no = ++ctx->next_no;
    if (ev)
        c->ev = *ev;
    int rc = configure(c, cfg);
    if (!rc)
        rc = dispatch__builtin(c);
    if (rc) {
        dispatch__free(c);
        free_config(c);
        ctx__free(ctx, c);
        return rc;
    }
    uv_timer_init(ctx->loop, &c->timer);
    c->timer.data = c;
    ctx->live++;
    c->next = ctx->clients;
    if (ctx->clients)
        ctx->clients->prev = c;
    ctx->clients = c;
    *out = c;
    return 0;
}

int hearth_client_connect(hearth_client_t *c)
{
    if (c->state != HEARTH_CLIENT_IDLE)
        return HEARTH_EBUSY;
    if (c->free_pending)
        return HEARTH_ECLOSED;
    c->attempts = 0;
    c->reconnects = 0;
    c->user_closing = false;
    net__start(c);
    return 0;
}

int hearth_client_disconnect(hearth_client_t *c)
{
    if (c->free_pending)
        return HEARTH_ECLOSED;
    c->user_closing = true;
    sm__forget(c);
    switch (c->state) {
    case HEARTH_CLIENT_IDLE:
        c->user_closing = false;
        return 0;
    case HEARTH_CLIENT_CLOSING:
        return 0;
    case HEARTH_CLIENT_WAITING: {
        /* The loss was told; this ends the waiting for good. */
        c->reconnect_at = 0;
        client__set_state(c, HEARTH_CLIENT_CONNECTING); /* so that the loss is told */
        client__enter(c);
        client__lost(c, 0, HEARTH_STREAM_ERR_NONE, "disconnected", NULL);
        client__leave(c);
        return 0;
    }
    case HEARTH_CLIENT_ONLINE:
        if (c->conn && c->conn->stream && hearth_stream_close(c->conn->stream) == 0) {
            c->conn->phase = PH_CLOSING;
            c->close_deadline = ctx__now(c->ctx) + CLOSE_WAIT_MS;
            c->ping_at = 0;
            client__set_state(c, HEARTH_CLIENT_CLOSING);
            client__arm(c);
            return 0;
        }
        /* nothing can be said in order */
        __attribute__((fallthrough));
    default:
        client__enter(c);
        client__lost(c, 0, HEARTH_STREAM_ERR_NONE, "disconnected", NULL);
        client__leave(c);
        return 0;
    }
}

int hearth_client_reconnect_now(hearth_client_t *c)
{
    if (c->free_pending)
        return HEARTH_ECLOSED;
    if (c->state == HEARTH_CLIENT_WAITING) {
        c->reconnect_at = ctx__now(c->ctx);
        client__arm(c);
        return 0;
    }
    if (c->state == HEARTH_CLIENT_ONLINE && c->reconnect) {
        client__enter(c);
        client__lost(c, HEARTH_ECLOSED, HEARTH_STREAM_ERR_NONE, "reconnecting on request", NULL);
        if (!client__leave(c) && c->state == HEARTH_CLIENT_WAITING) {
            c->reconnect_at = ctx__now(c->ctx);
            client__arm(c);
        }
        return 0;
    }
    return HEARTH_EINVAL;
}

static void destroy(hearth_client_t *c)
{
    hearth_ctx_t *ctx = c->ctx;
    c->freed = true;
    for (unsigned i = 0; i < HEARTH_CLIENT_SLOTS; i++)
        if (c->slot_free[i]) {
            void (*fn)(void *) = c->slot_free[i];
            c->slot_free[i] = NULL;
            fn(c->slots[i]);
            c->slots[i] = NULL;
        }
    net__abandon(c);
    dispatch__free(c);
    sm__free(c);
    free_config(c);
    ctx__free(ctx, c->full_jid);
    ctx__free(ctx, c->stream_id);
    ctx__free(ctx, c->sm_id);
    ctx__free(ctx, c->features);
    c->full_jid = c->stream_id = c->sm_id = c->features = NULL;
    free_listeners(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        ctx->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void hearth_client_free(hearth_client_t *c)
{
    if (!c || c->free_pending)
        return;
    c->free_pending = true;
    if (c->depth == 0)
        destroy(c);
}

/* ---- listeners ---- */

int hearth_client_add_listener(hearth_client_t *c, const hearth_client_events_t *ev, void *ud,
                               unsigned *id)
{
    if (!ev)
        return HEARTH_EINVAL;
    listener_t *l = ctx__calloc(c->ctx, sizeof(*l));
    if (!l)
        return HEARTH_ENOMEM;
    l->ev = *ev;
    l->ud = ud;
    l->id = ++c->next_listener_id;
    listener_t **pp = &c->listeners;
    while (*pp)
        pp = &(*pp)->next;
    *pp = l;
    if (id)
        *id = l->id;
    return 0;
}

int hearth_client_remove_listener(hearth_client_t *c, unsigned id)
{
    for (listener_t *l = c->listeners; l; l = l->next) {
        if (l->id == id && !l->removed) {
            l->removed = true;
            client__sweep_listeners(c);
            return 0;
        }
    }
    return HEARTH_ENOTFOUND;
}

void client__sweep_listeners(hearth_client_t *c)
{
    if (c->emitting || c->freed)
        return;
    listener_t **pp = &c->listeners;
    while (*pp) {
        listener_t *l = *pp;
        if (l->removed) {
            *pp = l->next;
            ctx__free(c->ctx, l);
        } else {
            pp = &l->next;
        }
    }
}

bool client__hears_lost(const hearth_client_t *c)
{
    if (c->ev.stanza_lost)
        return true;
    for (const listener_t *l = c->listeners; l; l = l->next)
        if (!l->removed && l->ev.stanza_lost)
            return true;
    return false;
}

static void free_listeners(hearth_client_t *c)
{
    while (c->listeners) {
        listener_t *l = c->listeners;
        c->listeners = l->next;
        ctx__free(c->ctx, l);
    }
}

int hearth_client_stream_feature(const hearth_client_t *c, const char *name, const char *ns)
{
    if (!c->features || !name || !ns)
        return 0;
    for (size_t off = 0; off < c->features_len;) {
        const char *fns = c->features + off;
        const char *fname = fns + strlen(fns) + 1;
        if (!strcmp(fns, ns) && !strcmp(fname, name))
            return 1;
        off = (size_t)(fname + strlen(fname) + 1 - c->features);
    }
    return 0;
}

/* ---- public: state ---- */

hearth_client_state_t hearth_client_state(const hearth_client_t *c)
{
    return c->state;
}

const char *hearth_client_jid(const hearth_client_t *c)
{
    return c->full_jid;
}

const char *hearth_client_bare_jid(const hearth_client_t *c)
{
    return c->jid.bare;
}

hearth_ctx_t *hearth_client_ctx(const hearth_client_t *c)
{
    return c->ctx;
}

void *hearth_client_userdata(const hearth_client_t *c)
{
    return c->ud;
}

void *hearth_client_slot(const hearth_client_t *c, unsigned slot)
{
    return slot < HEARTH_CLIENT_SLOTS ? c->slots[slot] : NULL;
}

void hearth_client_set_slot(hearth_client_t *c, unsigned slot, void *value)
{
    if (slot < HEARTH_CLIENT_SLOTS)
        c->slots[slot] = value;
}

int client__take_slot(hearth_client_t *c, unsigned slot, void *mgr, void (*free_fn)(void *mgr))
{
    if (slot >= HEARTH_CLIENT_SLOTS || c->slots[slot])
        return HEARTH_EEXISTS;
    c->slots[slot] = mgr;
    c->slot_free[slot] = free_fn;
    return 0;
}

void client__release_slot(hearth_client_t *c, unsigned slot)
{
    if (slot < HEARTH_CLIENT_SLOTS) {
        c->slots[slot] = NULL;
        c->slot_free[slot] = NULL;
    }
}

void hearth_client_info(const hearth_client_t *c, hearth_client_info_t *out)
{
    memset(out, 0, sizeof(*out));
    out->tls_version = c->info_tls;
    out->mechanism = c->info_mech;
    out->channel_binding = c->info_cb;
    out->stream_id = c->stream_id;
    out->sm_enabled = c->sm_enabled;
    out->sm_resumable = c->sm_resumable;
    out->sm_unacked = c->outbox.count;
    out->reconnects = c->reconnects;
    out->send_queue_bytes = c->conn ? net__queued(c->conn) : 0;
}
