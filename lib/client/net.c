/* A client's way to the server and its bytes: DNS SRV (libc's resolver on libuv's thread pool),
 * address lookup (uv_getaddrinfo), TCP connect from an optional source address, the stream
 * (hearth_stream, client role) over the socket, reads into the context's shared buffer, and
 * output gathered per loop iteration and written once. Touches its client, the context's loop
 * and lists, nothing global. */
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Why libc's resolver and not c-ares: it is in libc already (no new dependency), a lookup runs
 * once per connection attempt (and never with a configured host, as a load generator has), and
 * libuv runs getaddrinfo on the same thread pool anyway. res_nquery is thread-safe with its own
 * state per call. */

#define SRV_HOST_MAX 256

typedef struct srv_rec {
    char host[SRV_HOST_MAX];
    unsigned port, prio, weight;
    bool direct;
} srv_rec_t;

typedef struct resolve_req {
    hearth_client_t *c; /* NULL once the client let go */
    hearth_ctx_t *ctx;
    bool srv;
    uv_work_t work;
    uv_getaddrinfo_t gai;
    /* SRV: the domain in, the records out */
    char domain[SRV_HOST_MAX];
    int policy;
    int ns_port; /* tests: a DNS server on 127.0.0.1 */
    srv_rec_t recs[MAX_ENDPOINTS];
    unsigned nrecs;
} resolve_req_t;

static void try_address(hearth_client_t *c);
static void next_endpoint(hearth_client_t *c);

/* ---- SRV on the thread pool ---- */

/* Appends the SRV records of name; "." (the service is decidedly not offered) is skipped. */
static void srv_query(resolve_req_t *r, const char *service, bool direct)
{
    char name[SRV_HOST_MAX + 32];
    snprintf(name, sizeof(name), "%s.%s", service, r->domain);
    struct __res_state st;
    memset(&st, 0, sizeof(st));
    if (res_ninit(&st) != 0)
        return;
    if (r->ns_port) {
        st.nscount = 1;
        st.nsaddr_list[0].sin_family = AF_INET;
        st.nsaddr_list[0].sin_port = htons((uint16_t)r->ns_port);
        st.nsaddr_list[0].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        st.retry = 1;
    }
    unsigned char ans[4096];
    int len = res_nquery(&st, name, ns_c_in, ns_t_srv, ans, sizeof(ans));
    ns_msg msg;
    if (len > 0 && ns_initparse(ans, len, &msg) == 0) {
        int n = ns_msg_count(msg, ns_s_an);
        for (int i = 0; i < n && r->nrecs < MAX_ENDPOINTS - 1; i++) {
            ns_rr rr;
            if (ns_parserr(&msg, ns_s_an, i, &rr) != 0 || ns_rr_type(rr) != ns_t_srv ||
                ns_rr_rdlen(rr) < 7)
                continue;
            const unsigned char *rd = ns_rr_rdata(rr);
            srv_rec_t *rec = &r->recs[r->nrecs];
            if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), rd + 6, rec->host, sizeof(rec->host)) <
                0)
                continue;
            if (!rec->host[0] || !strcmp(rec->host, "."))
                continue;
            rec->prio = ns_get16(rd);
            rec->weight = ns_get16(rd + 2);
            rec->port = ns_get16(rd + 4);
            rec->direct = direct;
            if (rec->port)
                r->nrecs++;
        }
    }
    res_nclose(&st);
}

static void srv_work(uv_work_t *w)
{
    resolve_req_t *r = w->data;
    if (r->policy != HEARTH_TLS_DISABLED)
        srv_query(r, "_xmpps-client._tcp", true);
    if (r->policy != HEARTH_TLS_DIRECT)
        srv_query(r, "_xmpp-client._tcp", false);
}

static void free_endpoints(hearth_client_t *c)
{
    for (unsigned i = 0; i < c->nendpoints; i++)
        ctx__free(c->ctx, c->endpoints[i].host);
    c->nendpoints = c->endpoint = 0;
}

static void add_endpoint(hearth_client_t *c, const char *host, unsigned port, bool direct)
{
    if (c->nendpoints >= MAX_ENDPOINTS)
        return;
    char *h = ctx__strdup(c->ctx, host);
    if (!h)
        return;
    c->endpoints[c->nendpoints++] = (struct endpoint){h, port, direct};
}

/* RFC 2782 order: by priority, and within one by weighted random choice. Direct TLS records
 * (XEP-0368) come before STARTTLS ones. */
static void order_records(hearth_client_t *c, resolve_req_t *r)
{
    bool used[MAX_ENDPOINTS] = {0};
    for (int pass = 0; pass < 2; pass++) {
        bool direct = pass == 0;
        for (;;) {
            unsigned best = (unsigned)-1;
            for (unsigned i = 0; i < r->nrecs; i++)
                if (!used[i] && r->recs[i].direct == direct && r->recs[i].prio < best)
                    best = r->recs[i].prio;
            if (best == (unsigned)-1)
                break;
            for (;;) {
                uint64_t total = 0;
                unsigned left = 0;
                for (unsigned i = 0; i < r->nrecs; i++)
                    if (!used[i] && r->recs[i].direct == direct && r->recs[i].prio == best) {
                        total += r->recs[i].weight + 1;
                        left++;
                    }
                if (!left)
                    break;
                uint64_t pick = ctx__rand(c->ctx, total);
                for (unsigned i = 0; i < r->nrecs; i++) {
                    if (used[i] || r->recs[i].direct != direct || r->recs[i].prio != best)
                        continue;
                    if (pick < (uint64_t)r->recs[i].weight + 1) {
                        used[i] = true;
                        add_endpoint(c, r->recs[i].host, r->recs[i].port, direct);
                        break;
                    }
                    pick -= r->recs[i].weight + 1;
                }
            }
        }
    }
}

static void srv_done(uv_work_t *w, int status)
{
    resolve_req_t *r = w->data;
    hearth_client_t *c = r->c;
    hearth_ctx_t *ctx = r->ctx;
    if (c) {
        c->resolving = NULL;
        client__enter(c);
        free_endpoints(c);
        if (status == 0)
            order_records(c, r);
        ctx__log(ctx, c, HEARTH_LOG_DEBUG, "SRV: %u endpoint(s) for %s", c->nendpoints, r->domain);
        if (c->nendpoints == 0) /* RFC 6120 §3.2.2: no SRV, then the domain itself */
            add_endpoint(c, c->jid.domain,
                         c->port                       ? c->port
                         : c->tls == HEARTH_TLS_DIRECT ? 5223
                                                       : 5222,
                         c->tls == HEARTH_TLS_DIRECT);
        c->endpoint = 0;
        if (c->nendpoints == 0)
            client__lost(c, HEARTH_ENOMEM, HEARTH_STREAM_ERR_NONE, NULL, NULL);
        else
            next_endpoint(c);
        client__leave(c);
    }
    ctx__free(ctx, r);
    ctx__release(ctx);
}

/* ---- addresses ---- */

static void on_addrinfo(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    resolve_req_t *r = req->data;
    hearth_client_t *c = r->c;
    hearth_ctx_t *ctx = r->ctx;
    if (!c) {
        uv_freeaddrinfo(res);
    } else {
        c->resolving = NULL;
        client__enter(c);
        if (status != 0 || !res) {
            struct endpoint *e = &c->endpoints[c->endpoint];
            ctx__log(ctx, c, HEARTH_LOG_INFO, "cannot resolve %s: %s", e->host,
                     status ? uv_strerror(status) : "no address");
            uv_freeaddrinfo(res);
            c->endpoint++;
            if (c->endpoint >= c->nendpoints) {
                char text[300];
                snprintf(text, sizeof(text), "cannot resolve %.200s: %s", e->host,
                         status ? uv_strerror(status) : "no address");
                client__lost(c, HEARTH_EDNS, HEARTH_STREAM_ERR_NONE, text, NULL);
            } else {
                next_endpoint(c);
            }
        } else {
            c->addrs = c->addr = res;
            try_address(c);
        }
        client__leave(c);
    }
    ctx__free(ctx, r);
    ctx__release(ctx);
}

static resolve_req_t *new_req(hearth_client_t *c)
{
    resolve_req_t *r = ctx__calloc(c->ctx, sizeof(*r));
    if (!r)
        return NULL;
    r->c = c;
    r->ctx = c->ctx;
    r->work.data = r;
    r->gai.data = r;
    return r;
}

/* Looks up the current endpoint's addresses (none for an IP literal). */
static void next_endpoint(hearth_client_t *c)
{
    if (c->addrs) {
        uv_freeaddrinfo(c->addrs);
        c->addrs = c->addr = NULL;
    }
    if (c->endpoint >= c->nendpoints) {
        char text[300];
        const struct endpoint *e = c->nendpoints ? &c->endpoints[c->nendpoints - 1] : NULL;
        snprintf(text, sizeof(text), "cannot connect to %.200s port %u: %s", e ? e->host : "?",
                 e ? e->port : 0,
                 c->last_connect_error ? uv_strerror(c->last_connect_error) : "no address");
        client__lost(c, HEARTH_ECONNECT, HEARTH_STREAM_ERR_NONE, text, NULL);
        return;
    }
    resolve_req_t *r = new_req(c);
    if (!r) {
        client__lost(c, HEARTH_ENOMEM, HEARTH_STREAM_ERR_NONE, NULL, NULL);
        return;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->resolving = r;
    c->ctx->live++;
    int rc = uv_getaddrinfo(c->ctx->loop, &r->gai, on_addrinfo, c->endpoints[c->endpoint].host,
                            NULL, &hints);
    if (rc) {
        c->resolving = NULL;
        ctx__free(c->ctx, r);
        ctx__release(c->ctx);
        client__lost(c, HEARTH_EDNS, HEARTH_STREAM_ERR_NONE, uv_strerror(rc), NULL);
    }
}

/* ---- the stream's callbacks ---- */

static int out_append(conn_t *conn, const char *data, size_t len)
{
    if (conn->out_len + len > conn->out_cap) {
        size_t cap = conn->out_cap ? conn->out_cap : 512;
        while (cap < conn->out_len + len)
            cap *= 2;
        char *p = ctx__realloc(conn->ctx, conn->out, cap);
        if (!p)
            return HEARTH_ENOMEM;
        conn->out = p;
        conn->out_cap = cap;
    }
    memcpy(conn->out + conn->out_len, data, len);
    conn->out_len += len;
    ctx__mark_dirty(conn->ctx, conn);
    return 0;
}

static void s_write(void *ud, const char *data, size_t len)
{
    conn_t *conn = ud;
    if (out_append(conn, data, len) && conn->c)
        ctx__log(conn->ctx, conn->c, HEARTH_LOG_ERROR, "out of memory for output");
}

static void s_open(void *ud, const hearth_stream_header_t *h)
{
    conn_t *conn = ud;
    hearth_client_t *c = conn->c;
    if (!c)
        return;
    ctx__free(c->ctx, c->stream_id);
    c->stream_id = h->id ? ctx__strdup(c->ctx, h->id) : NULL;
}

static hearth_stream_error_t stream_error_of(const char *name)
{
    for (int i = HEARTH_STREAM_ERR_NONE + 1; i <= HEARTH_STREAM_ERR_UNSUPPORTED_VERSION; i++)
        if (!strcmp(name, hearth_stream_error_name((hearth_stream_error_t)i)))
            return (hearth_stream_error_t)i;
    return HEARTH_STREAM_ERR_UNDEFINED_CONDITION;
}

/* <stream:error>: the server ends the stream (RFC 6120 §4.9); close ours and tell. */
static void peer_stream_error(conn_t *conn, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    hearth_stream_error_t cond = HEARTH_STREAM_ERR_UNDEFINED_CONDITION;
    const char *text = NULL;
    for (hearth_xml_node_t *n = hearth_xml_first_element(el); n; n = hearth_xml_next_element(n)) {
        if (strcmp(n->ns, HEARTH_NS_STREAM_ERRORS) != 0)
            continue;
        if (!strcmp(n->name, "text"))
            text = hearth_xml_text(arena, n);
        else
            cond = stream_error_of(n->name);
    }
    (void)hearth_stream_close(conn->stream);
    char buf[600];
    snprintf(buf, sizeof(buf), "stream error <%s/>%s%.500s", hearth_stream_error_name(cond),
             text && *text ? ": " : "", text ? text : "");
    client__lost(conn->c, HEARTH_ESTREAM, cond, buf, NULL);
}

static void s_element(void *ud, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    conn_t *conn = ud;
    hearth_client_t *c = conn->c;
    if (!c || !client__alive(c, conn))
        return;
    if (!strcmp(el->name, "error") && !strcmp(el->ns, HEARTH_NS_STREAMS)) {
        peer_stream_error(conn, el, arena);
        return;
    }
    if (conn->phase == PH_ONLINE || conn->phase == PH_CLOSING) {
        if (!strcmp(el->ns, HEARTH_NS_SM3))
            sm__element(c, el);
        else
            dispatch__stanza(c, el, arena);
        return;
    }
    nego__element(conn, el, arena);
}

static void s_close(void *ud)
{
    conn_t *conn = ud;
    hearth_client_t *c = conn->c;
    if (!c || !client__alive(c, conn))
        return;
    if (conn->phase == PH_CLOSING) {
        /* Both sides closed in order: the server handled all we sent. */
        sm__all_handled(c);
        client__lost(c, 0, HEARTH_STREAM_ERR_NONE, "disconnected", NULL);
        return;
    }
    (void)hearth_stream_close(conn->stream);
    client__lost(c, HEARTH_ECLOSED, HEARTH_STREAM_ERR_NONE, "the server closed the stream", NULL);
}

static void s_error(void *ud, int err, hearth_stream_error_t cond, const char *text)
{
    conn_t *conn = ud;
    hearth_client_t *c = conn->c;
    if (!c || !client__alive(c, conn))
        return;
    char buf[400];
    if (err == HEARTH_ETLS && hearth_tls_cert_refused(hearth_stream_tls(conn->stream))) {
        err = HEARTH_ECERT;
        snprintf(buf, sizeof(buf), "the server's certificate was refused: %.300s",
                 text ? text : "");
    } else if (err == HEARTH_ETLS) {
        snprintf(buf, sizeof(buf), "TLS failed: %.300s", text ? text : "");
    } else {
        snprintf(buf, sizeof(buf), "%s from the server%s%.300s (we sent <%s/>)",
                 err == HEARTH_ELIMIT ? "input over a limit" : "bad input", text ? ": " : "",
                 text ? text : "", cond ? hearth_stream_error_name(cond) : "nothing");
    }
    client__lost(c, err, HEARTH_STREAM_ERR_NONE, buf, NULL);
}

static void s_tls_done(void *ud)
{
    conn_t *conn = ud;
    if (conn->c && client__alive(conn->c, conn))
        nego__tls_done(conn);
}

static const hearth_stream_cbs_t stream_cbs = {
    .write = s_write,
    .open = s_open,
    .element = s_element,
    .close = s_close,
    .error = s_error,
    .tls_done = s_tls_done,
};

/* ---- socket ---- */

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *conn = h->data;
    hearth_ctx_t *ctx = conn->ctx;
    ctx__free(ctx, conn->out);
    ctx__free(ctx, conn);
    ctx__release(ctx);
}

/* Closes the socket; the memory goes in the close callback. */
static void conn_close(conn_t *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    ctx__unmark_dirty(conn->ctx, conn);
    auth__abandon(conn);
    hearth_stream_free(conn->stream);
    conn->stream = NULL;
    if (conn->tcp_open) {
        uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
    } else {
        ctx__free(conn->ctx, conn->out);
        hearth_ctx_t *ctx = conn->ctx;
        ctx__free(ctx, conn);
        ctx__release(ctx);
    }
}

void net__abandon(hearth_client_t *c)
{
    if (c->resolving) {
        c->resolving->c = NULL;
        /* Only a request still queued can be cancelled; a running one ends unheeded. */
        (void)uv_cancel(c->resolving->srv ? (uv_req_t *)&c->resolving->work
                                          : (uv_req_t *)&c->resolving->gai);
        c->resolving = NULL;
    }
    if (c->addrs) {
        uv_freeaddrinfo(c->addrs);
        c->addrs = c->addr = NULL;
    }
    free_endpoints(c);
    conn_t *conn = c->conn;
    if (!conn)
        return;
    c->conn = NULL;
    conn->c = NULL;
    /* Last words (a stream error, a close) go out if the socket takes them now. */
    if (conn->connected && conn->out_len && !conn->in_flight) {
        uv_buf_t b = uv_buf_init(conn->out, (unsigned)conn->out_len);
        (void)uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
    }
    conn_close(conn);
}

typedef struct write_req {
    uv_write_t req;
    conn_t *conn;
    char *data;
    size_t len;
} write_req_t;

static void on_written(uv_write_t *req, int status)
{
    write_req_t *w = req->data;
    conn_t *conn = w->conn;
    conn->in_flight -= w->len;
    ctx__free(conn->ctx, w->data);
    ctx__free(conn->ctx, w);
    hearth_client_t *c = conn->c;
    if (status < 0 && c && !conn->closing) {
        client__enter(c);
        char text[200];
        snprintf(text, sizeof(text), "write failed: %s", uv_strerror(status));
        client__lost(c, HEARTH_EIO, HEARTH_STREAM_ERR_NONE, text, NULL);
        client__leave(c);
    }
}

void net__flush(conn_t *conn)
{
    hearth_client_t *c = conn->c;
    if (conn->closing || !conn->connected)
        return;
    if (c && c->conn == conn && conn->phase == PH_ONLINE)
        sm__before_flush(c);
    if (!conn->out_len)
        return;
    size_t done = 0;
    if (!conn->in_flight) {
        uv_buf_t b = uv_buf_init(conn->out, (unsigned)conn->out_len);
        int n = uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
        if (n > 0)
            done = (size_t)n;
        else if (n < 0 && n != UV_EAGAIN && c) {
            client__enter(c);
            char text[200];
            snprintf(text, sizeof(text), "write failed: %s", uv_strerror(n));
            client__lost(c, HEARTH_EIO, HEARTH_STREAM_ERR_NONE, text, NULL);
            client__leave(c);
            return;
        }
    }
    if (done == conn->out_len) {
        /* An idle connection holds no output buffer. */
        ctx__free(conn->ctx, conn->out);
        conn->out = NULL;
        conn->out_len = conn->out_cap = 0;
        return;
    }
    /* The rest goes with a write request that owns the buffer; a fresh one takes new output. */
    write_req_t *w = ctx__calloc(conn->ctx, sizeof(*w));
    if (!w)
        goto nomem;
    if (done) {
        memmove(conn->out, conn->out + done, conn->out_len - done);
        conn->out_len -= done;
    }
    w->conn = conn;
    w->data = conn->out;
    w->len = conn->out_len;
    w->req.data = w;
    conn->out = NULL;
    conn->out_len = conn->out_cap = 0;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&conn->tcp, &b, 1, on_written);
    if (rc) {
        ctx__free(conn->ctx, w->data);
        ctx__free(conn->ctx, w);
        if (c) {
            client__enter(c);
            client__lost(c, HEARTH_EIO, HEARTH_STREAM_ERR_NONE, uv_strerror(rc), NULL);
            client__leave(c);
        }
        return;
    }
    conn->in_flight += w->len;
    return;
nomem:
    if (c) {
        client__enter(c);
        client__lost(c, HEARTH_ENOMEM, HEARTH_STREAM_ERR_NONE, NULL, NULL);
        client__leave(c);
    }
}

size_t net__queued(const conn_t *conn)
{
    return conn->out_len + conn->in_flight;
}

int net__send(conn_t *conn, const char *data, size_t len)
{
    if (!conn->stream)
        return HEARTH_ECLOSED;
    return hearth_stream_send(conn->stream, data, len);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn_t *conn = h->data;
    hearth_ctx_t *ctx = conn->ctx;
    if (!ctx->read_buf)
        ctx->read_buf = ctx__alloc(ctx, READ_BUF_SIZE);
    *buf = uv_buf_init(ctx->read_buf, ctx->read_buf ? READ_BUF_SIZE : 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    conn_t *conn = s->data;
    hearth_client_t *c = conn->c;
    if (!c || conn->closing || nread == 0)
        return;
    client__enter(c);
    if (nread > 0) {
        c->last_rx = ctx__now(c->ctx);
        /* An end of input is told through the stream's callbacks. */
        int rc = hearth_stream_feed(conn->stream, conn->ctx->read_buf, (size_t)nread);
        (void)rc;
    } else if (nread == UV_EOF) {
        conn->eof = true;
        if (conn->phase == PH_CLOSING)
            client__lost(c, 0, HEARTH_STREAM_ERR_NONE, "disconnected", NULL);
        else
            client__lost(c, HEARTH_ECLOSED, HEARTH_STREAM_ERR_NONE,
                         "the server closed the connection", NULL);
    } else {
        char text[200];
        snprintf(text, sizeof(text), "connection lost: %s", uv_strerror((int)nread));
        client__lost(c, HEARTH_EIO, HEARTH_STREAM_ERR_NONE, text, NULL);
    }
    client__leave(c);
}

/* TCP is up: the stream begins (its header, or the ClientHello of direct TLS). */
static void connected(hearth_client_t *c, conn_t *conn)
{
    const struct endpoint *e = &c->endpoints[c->endpoint];
    conn->connected = true;
    conn->direct_tls = e->direct_tls;
    c->connect_deadline = 0;
    if (c->addrs) {
        uv_freeaddrinfo(c->addrs);
        c->addrs = c->addr = NULL;
    }
    hearth_xml_limits_t lim = {.max_stanza_bytes = PREAUTH_MAX_STANZA};
    hearth_stream_config_t sc = {
        .role = HEARTH_STREAM_CLIENT,
        .framing = HEARTH_STREAM_TCP,
        .domain = c->jid.domain,
        .direct_tls = conn->direct_tls ? c->tls_ctx : NULL,
        .limits = &lim,
    };
    conn->stream = hearth_stream_new(&sc, &stream_cbs, conn);
    if (!conn->stream) {
        client__lost(c, HEARTH_ENOMEM, HEARTH_STREAM_ERR_NONE, NULL, NULL);
        return;
    }
    conn->phase = conn->direct_tls ? PH_TLS : PH_FEATURES;
    uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
    c->negotiation_deadline = ctx__now(c->ctx) + c->negotiation_timeout;
    client__set_state(c, HEARTH_CLIENT_NEGOTIATING);
    ctx__log(c->ctx, c, HEARTH_LOG_DEBUG, "connected to %s port %u%s", e->host, e->port,
             conn->direct_tls ? " (direct TLS)" : "");
    CLIENT_EMIT(c, conn, connected);
    if (!client__alive(c, conn))
        return;
    int rc = hearth_stream_start(conn->stream);
    if (rc)
        client__lost(c, rc == HEARTH_ETLS ? HEARTH_ETLS : rc, HEARTH_STREAM_ERR_NONE,
                     "cannot start the stream", NULL);
    else
        client__arm(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    conn_t *conn = req->data;
    hearth_client_t *c = conn->c;
    if (!c || conn->closing)
        return;
    client__enter(c);
    if (status == 0) {
        connected(c, conn);
    } else {
        ctx__log(c->ctx, c, HEARTH_LOG_INFO, "connect to %s failed: %s",
                 c->endpoints[c->endpoint].host, uv_strerror(status));
        c->last_connect_error = status;
        c->conn = NULL;
        conn->c = NULL;
        conn_close(conn);
        if (c->addr)
            c->addr = c->addr->ai_next;
        try_address(c);
    }
    client__leave(c);
}

/* Connects to the current address, or moves on to the next endpoint when none is left. */
static void try_address(hearth_client_t *c)
{
    while (c->addr && c->addr->ai_family != AF_INET && c->addr->ai_family != AF_INET6)
        c->addr = c->addr->ai_next;
    if (!c->addr) {
        c->endpoint++;
        next_endpoint(c);
        return;
    }
    struct endpoint *e = &c->endpoints[c->endpoint];
    conn_t *conn = ctx__calloc(c->ctx, sizeof(*conn));
    if (!conn) {
        client__lost(c, HEARTH_ENOMEM, HEARTH_STREAM_ERR_NONE, NULL, NULL);
        return;
    }
    conn->ctx = c->ctx;
    conn->c = c;
    c->ctx->live++;
    c->conn = conn;
    int rc = uv_tcp_init(c->ctx->loop, &conn->tcp);
    if (rc) {
        c->conn = NULL;
        conn->c = NULL;
        conn_close(conn);
        client__lost(c, HEARTH_EIO, HEARTH_STREAM_ERR_NONE, uv_strerror(rc), NULL);
        return;
    }
    conn->tcp_open = true;
    conn->tcp.data = conn;
    conn->connect_req.data = conn;
    struct sockaddr_storage sa;
    memcpy(&sa, c->addr->ai_addr, c->addr->ai_addrlen);
    ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)e->port); /* same offset in v6 */
    if (c->bind_address) {
        struct sockaddr_storage local;
        if (uv_ip4_addr(c->bind_address, 0, (struct sockaddr_in *)&local) != 0)
            uv_ip6_addr(c->bind_address, 0, (struct sockaddr_in6 *)&local);
        rc = uv_tcp_bind(&conn->tcp, (struct sockaddr *)&local, 0);
        if (rc) {
            char text[200];
            snprintf(text, sizeof(text), "cannot bind to %s: %s", c->bind_address, uv_strerror(rc));
            c->conn = NULL;
            conn->c = NULL;
            conn_close(conn);
            client__lost(c, HEARTH_ECONNECT, HEARTH_STREAM_ERR_NONE, text, NULL);
            return;
        }
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    rc = uv_tcp_connect(&conn->connect_req, &conn->tcp, (struct sockaddr *)&sa, on_connect);
    if (rc) {
        c->last_connect_error = rc;
        c->conn = NULL;
        conn->c = NULL;
        conn_close(conn);
        c->addr = c->addr->ai_next;
        try_address(c);
        return;
    }
    c->connect_deadline = ctx__now(c->ctx) + c->connect_timeout;
    client__arm(c);
}

/* ---- an attempt ---- */

void net__start(hearth_client_t *c)
{
    client__set_state(c, HEARTH_CLIENT_CONNECTING);
    c->last_connect_error = 0;
    c->info_tls = c->info_mech = c->info_cb = NULL;
    free_endpoints(c);
    c->connect_deadline = ctx__now(c->ctx) + c->connect_timeout;
    client__arm(c);
    bool direct = c->tls == HEARTH_TLS_DIRECT;
    /* An IP literal as the domain has no SRV records to look up (RFC 6120 §3.2.1). */
    char literal[64] = "";
    const char *d = c->jid.domain;
    size_t dl = strlen(d);
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    if (dl > 2 && dl < sizeof(literal) && d[0] == '[' && d[dl - 1] == ']')
        snprintf(literal, sizeof(literal), "%.*s", (int)(dl - 2), d + 1);
    else if (dl < sizeof(literal))
        snprintf(literal, sizeof(literal), "%s", d);
    bool is_literal = uv_ip4_addr(literal, 0, &a4) == 0 || uv_ip6_addr(literal, 0, &a6) == 0;
    if (c->host || is_literal) {
        add_endpoint(c, c->host ? c->host : literal,
                     c->port  ? c->port
                     : direct ? 5223
                              : 5222,
                     direct);
        if (!c->nendpoints) {
            client__lost(c, HEARTH_ENOMEM, HEARTH_STREAM_ERR_NONE, NULL, NULL);
            return;
        }
        next_endpoint(c);
        return;
    }
    resolve_req_t *r = new_req(c);
    if (!r) {
        client__lost(c, HEARTH_ENOMEM, HEARTH_STREAM_ERR_NONE, NULL, NULL);
        return;
    }
    r->srv = true;
    r->policy = c->tls;
    r->ns_port = c->ctx->test_ns_port;
    snprintf(r->domain, sizeof(r->domain), "%s", c->jid.domain);
    c->resolving = r;
    c->ctx->live++;
    int rc = uv_queue_work(c->ctx->loop, &r->work, srv_work, srv_done);
    if (rc) {
        c->resolving = NULL;
        ctx__free(c->ctx, r);
        ctx__release(c->ctx);
        client__lost(c, HEARTH_EDNS, HEARTH_STREAM_ERR_NONE, uv_strerror(rc), NULL);
    }
}
