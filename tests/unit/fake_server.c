/* The scripted fake server of the client library's tests (fake_server.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/hooks.h"
#include "fake_server.h"

/* ---- failure and events ---- */

static void failf(fake_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void failf(fake_t *f, const char *fmt, ...)
{
    if (f->failed)
        return;
    f->failed = true;
    int n = snprintf(f->failure, sizeof(f->failure), "step %zu: ", f->pc);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->failure + n, sizeof(f->failure) - (size_t)n, fmt, ap);
    va_end(ap);
}

void fake_event(fake_t *f, const char *fmt, ...)
{
    if (f->nevents >= FAKE_MAX_EVENTS) {
        failf(f, "too many events");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->events[f->nevents++], sizeof(f->events[0]), fmt, ap);
    va_end(ap);
}

static void ev_connected(void *ud, hearth_client_t *c)
{
    (void)c;
    fake_event(ud, "connected");
}

static void ev_registered(void *ud, hearth_client_t *c, int result)
{
    (void)c;
    fake_event(ud, "registered %s", hearth_err_name(result));
}

static void ev_online(void *ud, hearth_client_t *c, const char *jid, int resumed)
{
    (void)c;
    fake_event(ud, "%s %s", resumed ? "resumed" : "online", jid);
}

static void ev_disconnected(void *ud, hearth_client_t *c, const hearth_disconnect_info_t *info)
{
    (void)c;
    char extra[128] = "";
    if (info->stream_error)
        snprintf(extra, sizeof(extra), " <%s/>", hearth_stream_error_name(info->stream_error));
    else if (info->condition)
        snprintf(extra, sizeof(extra), " %s", info->condition);
    if (info->will_reconnect)
        snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " reconnect %u",
                 info->reconnect_delay_ms);
    fake_event(ud, "disconnected %s%s", hearth_err_name(info->reason), extra);
    if (getenv("HEARTH_TEST_LOG"))
        fprintf(stderr, "disconnected: %s\n", info->text);
}

static void ev_lost(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    (void)c;
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_stanza_serialize(st, &b) == 0)
        fake_event(ud, "lost %s", b.data);
    hearth_buf_free(&b);
}

static void ev_acked(void *ud, hearth_client_t *c, unsigned n)
{
    (void)c;
    fake_event(ud, "acked %u", n);
}

const hearth_client_events_t fake_events = {
    .connected = ev_connected,
    .registered = ev_registered,
    .online = ev_online,
    .disconnected = ev_disconnected,
    .stanza_lost = ev_lost,
    .acked = ev_acked,
};

void fake_iq_cb(void *ud, hearth_client_t *c, int result, hearth_stanza_t *resp)
{
    (void)resp;
    fake_event(hearth_client_userdata(c), "iq %s %s", (const char *)ud, hearth_err_name(result));
}

static void log_line(void *ud, hearth_log_level_t level, const char *line)
{
    (void)ud;
    fprintf(stderr, "client[%d]: %s\n", (int)level, line);
}

hearth_ctx_t *fake_ctx(fake_t *f)
{
    return fake_ctx_with(f, NULL);
}

hearth_ctx_t *fake_ctx_with(fake_t *f, const hearth_ctx_config_t *base)
{
    hearth_ctx_config_t cfg = base ? *base : (hearth_ctx_config_t){0};
    cfg.loop = &f->loop;
    if (getenv("HEARTH_TEST_LOG")) {
        cfg.log = log_line;
        cfg.log_level = HEARTH_LOG_TRACE;
    }
    if (hearth_ctx_new(&cfg, &f->ctx))
        return NULL;
    return f->ctx;
}

/* ---- the connection ---- */

static void progress(fake_t *f);

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req->data);
    free(req);
}

static void raw_write(fake_t *f, const char *data, size_t len)
{
    if (!f->conn || !len)
        return;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)f->conn, &b, 1);
    if (n == (int)len)
        return;
    size_t done = n > 0 ? (size_t)n : 0;
    uv_write_t *req = malloc(sizeof(*req));
    char *copy = malloc(len - done);
    memcpy(copy, data + done, len - done);
    req->data = copy;
    b = uv_buf_init(copy, (unsigned)(len - done));
    if (uv_write(req, (uv_stream_t *)f->conn, &b, 1, on_written) != 0) {
        free(copy);
        free(req);
    }
}

static void tls_write_raw(void *ud, const char *data, size_t len)
{
    raw_write(ud, data, len);
}

static void tls_read_plain(void *ud, const char *data, size_t len)
{
    fake_t *f = ud;
    if (hearth_buf_append(&f->in, data, len))
        failf(f, "out of memory");
}

static const hearth_tls_io_t tls_io = {.write_raw = tls_write_raw, .read_plain = tls_read_plain};

static void send_plain(fake_t *f, const char *data, size_t len)
{
    if (f->tls) {
        if (hearth_tls_write(f->tls, data, len))
            failf(f, "TLS write failed: %s", hearth_tls_error(f->tls));
    } else {
        raw_write(f, data, len);
    }
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(size);
    buf->len = buf->base ? size : 0;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    fake_t *f = s->data;
    if ((uv_tcp_t *)s != f->conn) {
        free(buf->base);
        return;
    }
    if (n > 0) {
        if (f->tls) {
            /* A client refusing our certificate ends the connection with an alert: that is an
             * end like any other for the script (S_EOF or the client's event says the rest). */
            int rc = hearth_tls_feed(f->tls, buf->base, (size_t)n);
            if (rc) {
                f->eof = true;
                uv_read_stop(s);
            }
        } else if (hearth_buf_append(&f->in, buf->base, (size_t)n)) {
            failf(f, "out of memory");
        }
    } else if (n < 0) {
        f->eof = true;
        uv_read_stop(s);
    }
    free(buf->base);
    progress(f);
}

static void on_closed(uv_handle_t *h)
{
    free(h);
}

static void drop_conn(fake_t *f)
{
    if (!f->conn)
        return;
    hearth_tls_free(f->tls);
    f->tls = NULL;
    uv_close((uv_handle_t *)f->conn, on_closed);
    f->conn = NULL;
    f->eof = false;
    hearth_buf_reset(&f->in);
}

static void on_connection(uv_stream_t *server, int status)
{
    fake_t *f = server->data;
    if (status < 0)
        return;
    uv_tcp_t *t = malloc(sizeof(*t));
    uv_tcp_init(&f->loop, t);
    t->data = f;
    if (uv_accept(server, (uv_stream_t *)t) != 0 || f->npending >= FAKE_MAX_PENDING) {
        uv_close((uv_handle_t *)t, on_closed);
        return;
    }
    f->pending[f->npending++] = t;
    progress(f);
}

/* ---- SASL helpers: XML around base64 ---- */

static char *b64(const char *s)
{
    char *out = NULL;
    if (hearth_base64_encode(s, strlen(s), &out))
        return NULL;
    return out;
}

/* The expected bytes of a client SASL element carrying text. */
static char *sasl_client_xml(const char *mech, const char *text)
{
    char *p = b64(text), *out = NULL;
    if (mech)
        (void)!asprintf(&out,
                        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>",
                        mech, *p ? p : "=");
    else if (*p)
        (void)!asprintf(&out, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>",
                        p);
    else
        out = strdup("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    free(p);
    return out;
}

/* A whole element of this name in f->in: its base64 payload decoded into *out; 1 done, 0 wait,
 * -1 failed. */
static int take_sasl(fake_t *f, const char *name, char **out, size_t *out_len)
{
    char close[64];
    snprintf(close, sizeof(close), "</%s>", name);
    char *data = f->in.data ? f->in.data : "";
    char *end = strstr(data, close);
    char *selfclose = NULL;
    char *gt = strchr(data, '>');
    if (gt && gt > data && gt[-1] == '/')
        selfclose = gt;
    if (!end && !selfclose)
        return 0;
    if (strncmp(data + 1, name, strlen(name)) != 0 || data[0] != '<') {
        failf(f, "expected <%s>, got: %s", name, data);
        return -1;
    }
    size_t consumed;
    *out = NULL;
    *out_len = 0;
    if (selfclose && (!end || selfclose < end)) {
        consumed = (size_t)(selfclose - data) + 1;
    } else {
        char *start = gt + 1;
        if (hearth_base64_decode(start, (size_t)(end - start), out, out_len)) {
            failf(f, "bad base64 in <%s>", name);
            return -1;
        }
        consumed = (size_t)(end - data) + strlen(close);
    }
    hearth_buf_consume(&f->in, consumed);
    return 1;
}

static void send_sasl(fake_t *f, const char *name, const char *data, size_t len)
{
    char *p = NULL;
    if (hearth_base64_encode(data, len, &p)) {
        failf(f, "out of memory");
        return;
    }
    char *xml = NULL;
    if (*p)
        (void)!asprintf(&xml, "<%s xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</%s>", name, p,
                        name);
    else
        (void)!asprintf(&xml, "<%s xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>", name);
    send_plain(f, xml, strlen(xml));
    free(xml);
    free(p);
}

/* One SCRAM exchange with the library's own server; 1 done, 0 wait. */
static int sasl_server(fake_t *f, const step_t *s)
{
    char *in = NULL, *out = NULL;
    size_t in_len = 0, out_len = 0;
    int got = take_sasl(f, f->sasl_stage == 0 ? "auth" : "response", &in, &in_len);
    if (got <= 0)
        return got < 0 ? 1 : 0;
    if (f->sasl_stage == 0) {
        hearth_sasl_binding_t cb[2];
        unsigned char exp[32], sep[HEARTH_TLS_END_POINT_MAX];
        size_t n = 0, sep_len = 0;
        if (f->tls && hearth_tls_exporter(f->tls, exp) == 0)
            cb[n++] = (hearth_sasl_binding_t){"tls-exporter", exp, 32};
        if (f->tls && hearth_tls_server_end_point(f->tls, sep, &sep_len) == 0)
            cb[n++] = (hearth_sasl_binding_t){"tls-server-end-point", sep, sep_len};
        f->sasl = hearth_sasl_new();
        f->sasl_server = hearth_sasl_server_new(f->sasl, s->arg, cb, n);
        hearth_scram_secret_t secret;
        const unsigned char salt[] = "fake-server-salt";
        if (!f->sasl_server || hearth_scram_secret_derive(hearth_sasl_mech_hash(s->arg), s->text,
                                                          salt, 16, 4096, &secret)) {
            failf(f, "cannot start the SASL server for %s", s->arg);
            free(in);
            return 1;
        }
        hearth_sasl_server_set_secret(f->sasl_server, &secret);
    }
    int rc = hearth_sasl_server_step(f->sasl_server, in, in_len, &out, &out_len);
    free(in);
    f->sasl_stage++;
    if (rc == HEARTH_EAGAIN) {
        send_sasl(f, "challenge", out, out_len);
        free(out);
        return 0;
    }
    if (rc == 0)
        send_sasl(f, "success", out, out_len);
    else
        failf(f, "SASL server step: %s", hearth_err_name(rc));
    free(out);
    hearth_sasl_server_free(f->sasl_server);
    hearth_sasl_free(f->sasl);
    f->sasl_server = NULL;
    f->sasl = NULL;
    f->sasl_stage = 0;
    return 1;
}

/* ---- a DNS server for SRV queries ---- */

static void dns_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char b[2048];
    (void)h;
    (void)size;
    *buf = uv_buf_init(b, sizeof(b));
}

static void dns_sent(uv_udp_send_t *req, int status)
{
    (void)status;
    free(req->data);
    free(req);
}

/* Appends name as DNS labels. */
static size_t put_name(unsigned char *p, const char *name)
{
    size_t n = 0;
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        p[n++] = (unsigned char)l;
        memcpy(p + n, name, l);
        n += l;
        name += l + (dot ? 1 : 0);
    }
    p[n++] = 0;
    return n;
}

static void dns_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *from,
                     unsigned flags)
{
    (void)flags;
    fake_t *f = h->data;
    if (nread < 17 || !from)
        return;
    const unsigned char *q = (const unsigned char *)buf->base;
    /* the question: labels from offset 12 */
    char name[256] = "";
    size_t i = 12, len = 0;
    while (i < (size_t)nread && q[i] && len + q[i] + 2 < sizeof(name)) {
        if (len)
            name[len++] = '.';
        memcpy(name + len, q + i + 1, q[i]);
        len += q[i];
        i += q[i] + 1;
    }
    name[len] = '\0';
    size_t qend = i + 1 + 4; /* the zero label, type, class */
    if (qend > (size_t)nread)
        return;
    f->dns_queries++;
    unsigned char *r = malloc(2048);
    memcpy(r, q, qend);
    r[2] = 0x81; /* response, recursion desired */
    r[3] = 0x80; /* recursion available, NOERROR */
    size_t n = qend;
    unsigned count = 0;
    for (const fake_srv_t *s = f->srv; s && s->name; s++) {
        if (strcmp(s->name, name) != 0)
            continue;
        unsigned char rd[300];
        size_t rl = 0;
        rd[rl++] = (unsigned char)(s->prio >> 8);
        rd[rl++] = (unsigned char)s->prio;
        rd[rl++] = (unsigned char)(s->weight >> 8);
        rd[rl++] = (unsigned char)s->weight;
        rd[rl++] = (unsigned char)(s->port >> 8);
        rd[rl++] = (unsigned char)s->port;
        rl += put_name(rd + rl, s->target);
        const unsigned char rr[] = {
            0xc0, 12, 0, 33, 0, 1, 0, 0, 0, 60, (unsigned char)(rl >> 8), (unsigned char)rl};
        memcpy(r + n, rr, sizeof(rr));
        n += sizeof(rr);
        memcpy(r + n, rd, rl);
        n += rl;
        count++;
    }
    r[6] = (unsigned char)(count >> 8);
    r[7] = (unsigned char)count;
    memset(r + 8, 0, 4);
    if (!count)
        r[3] |= 3; /* NXDOMAIN */
    uv_udp_send_t *req = malloc(sizeof(*req));
    uv_buf_t out = uv_buf_init((char *)r, (unsigned)n);
    req->data = r;
    if (uv_udp_send(req, h, &out, 1, from, dns_sent) != 0) {
        free(req);
        free(r);
        return;
    }
    /* the buffer must live until sent: freed with the request */
}

int fake_dns(fake_t *f, const fake_srv_t *records)
{
    f->srv = records;
    uv_udp_init(&f->loop, &f->dns);
    f->dns.data = f;
    f->dns_on = true;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_udp_bind(&f->dns, (struct sockaddr *)&a, 0) ||
        uv_udp_recv_start(&f->dns, dns_alloc, dns_recv))
        return -1;
    struct sockaddr_in bound;
    int len = sizeof(bound);
    uv_udp_getsockname(&f->dns, (struct sockaddr *)&bound, &len);
    return ntohs(bound.sin_port);
}

/* ---- the script ---- */

static int expect_bytes(fake_t *f, const char *want)
{
    size_t n = strlen(want), have = f->in.len;
    size_t cmp = have < n ? have : n;
    if (cmp && memcmp(f->in.data, want, cmp) != 0) {
        failf(f, "expected:\n  %s\ngot:\n  %.*s", want, (int)have, f->in.data);
        return 1;
    }
    if (have < n) {
        if (f->eof)
            failf(f, "the client closed; expected:\n  %s\ngot:\n  %.*s", want, (int)have,
                  f->in.data ? f->in.data : "");
        return f->eof;
    }
    hearth_buf_consume(&f->in, n);
    return 1;
}

/* One step; 1 when it is done, 0 when it waits for something. */
static int step(fake_t *f, const step_t *s)
{
    switch (s->kind) {
    case S_ACCEPT:
        if (!f->npending)
            return 0;
        drop_conn(f);
        f->conn = f->pending[0];
        memmove(f->pending, f->pending + 1, --f->npending * sizeof(f->pending[0]));
        uv_read_start((uv_stream_t *)f->conn, on_alloc, on_read);
        return 1;
    case S_EXPECT:
        return expect_bytes(f, s->text);
    case S_SEND:
        send_plain(f, s->text, strlen(s->text));
        return 1;
    case S_TLS:
        f->tls = hearth_tls_new(f->tls_ctx, &tls_io, f, NULL);
        if (!f->tls)
            failf(f, "cannot start TLS");
        /* Bytes already read belong to TLS now. */
        if (f->tls && f->in.len) {
            hearth_buf_t held = f->in;
            f->in = (hearth_buf_t)HEARTH_BUF_INIT;
            if (hearth_tls_feed(f->tls, held.data, held.len))
                failf(f, "TLS: %s", hearth_tls_error(f->tls));
            hearth_buf_free(&held);
        }
        return 1;
    case S_SASL_EXPECT: {
        char *want = sasl_client_xml(s->arg, s->text);
        int rc = expect_bytes(f, want);
        free(want);
        return rc;
    }
    case S_SASL_SEND:
        send_sasl(f, s->arg, s->text, strlen(s->text));
        return 1;
    case S_SASL_SERVER:
        return sasl_server(f, s);
    case S_CLOSE:
        drop_conn(f);
        return 1;
    case S_EOF:
        return f->eof;
    case S_EVENT:
        if (f->events_taken >= f->nevents)
            return 0;
        if (strcmp(f->events[f->events_taken], s->text) != 0)
            failf(f, "expected event \"%s\", got \"%s\"", s->text, f->events[f->events_taken]);
        f->events_taken++;
        return 1;
    case S_CALL:
        s->fn(f);
        return 1;
    case S_ADVANCE:
        hearth__ctx_advance(f->ctx, s->ms);
        return 1;
    case S_ADVANCE_RECONNECT: {
        const char *last = f->events_taken ? f->events[f->events_taken - 1] : "";
        const char *r = strstr(last, " reconnect ");
        if (!r) {
            failf(f, "the last event \"%s\" schedules no reconnection", last);
            return 1;
        }
        hearth__ctx_advance(f->ctx, strtoull(r + 11, NULL, 10));
        return 1;
    }
    case S_END:
        return 0;
    }
    return 1;
}

static void progress(fake_t *f)
{
    while (!f->failed && f->steps && f->steps[f->pc].kind != S_END) {
        if (!step(f, &f->steps[f->pc]))
            break;
        if (!f->failed)
            f->pc++;
    }
    /* Done or failed: the loop must not block in its poll any more. */
    if (f->steps && (f->failed || f->steps[f->pc].kind == S_END))
        uv_stop(&f->loop);
}

/* Before each poll: what timers did in this iteration (an event, a write) moves the script on,
 * rather than waiting for the next I/O. */
static void on_prepare(uv_prepare_t *p)
{
    progress(p->data);
}

static void on_watchdog(uv_timer_t *t)
{
    fake_t *f = t->data;
    const step_t *s = &f->steps[f->pc];
    failf(f,
          "timed out waiting (step kind %d%s%s); unmatched input: %.*s; events so far: %d "
          "(taken %d)%s%s",
          (int)s->kind, s->text ? ": " : "", s->text ? s->text : "", (int)f->in.len,
          f->in.data ? f->in.data : "", f->nevents, f->events_taken,
          f->nevents > f->events_taken ? ", next: " : "",
          f->nevents > f->events_taken ? f->events[f->events_taken] : "");
}

void fake_begin(fake_t *f, const step_t *steps, unsigned timeout_ms)
{
    f->steps = steps;
    f->pc = 0;
    uv_timer_start(&f->watchdog, on_watchdog, timeout_ms ? timeout_ms : 10000, 0);
    uv_prepare_start(&f->prepare, on_prepare);
    progress(f);
}

bool fake_end(fake_t *f)
{
    while (!f->failed && f->steps[f->pc].kind != S_END) {
        uv_run(&f->loop, UV_RUN_ONCE);
        progress(f);
    }
    uv_timer_stop(&f->watchdog);
    uv_prepare_stop(&f->prepare);
    f->steps = NULL;
    /* Let what the last step caused reach the client (a flush, a close). */
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (!f->failed && f->events_taken < f->nevents)
        failf(f, "unexpected event \"%s\"", f->events[f->events_taken]);
    /* Nothing more may have come than the script expected. */
    if (!f->failed && f->in.len)
        failf(f, "unexpected bytes from the client: %.*s", (int)f->in.len, f->in.data);
    if (f->failed)
        fprintf(stderr, "fake server: %s\n", f->failure);
    return !f->failed;
}

bool fake_run(fake_t *f, const step_t *steps, unsigned timeout_ms)
{
    fake_begin(f, steps, timeout_ms);
    return fake_end(f);
}

int fake_init(fake_t *f, const char *cert, const char *key)
{
    memset(f, 0, sizeof(*f));
    f->in = (hearth_buf_t)HEARTH_BUF_INIT;
    if (uv_loop_init(&f->loop))
        return -1;
    if (cert) {
        char *err = NULL;
        f->tls_ctx = hearth_tls_ctx_new_server(cert, key, &err);
        if (!f->tls_ctx) {
            fprintf(stderr, "fake server TLS: %s\n", err ? err : "?");
            free(err);
            return -1;
        }
    }
    uv_tcp_init(&f->loop, &f->listener);
    f->listener.data = f;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_tcp_bind(&f->listener, (struct sockaddr *)&a, 0) ||
        uv_listen((uv_stream_t *)&f->listener, 16, on_connection))
        return -1;
    struct sockaddr_in bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&f->listener, (struct sockaddr *)&bound, &len);
    f->port = ntohs(bound.sin_port);
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_prepare_init(&f->loop, &f->prepare);
    f->prepare.data = f;
    return 0;
}

static void walk_count(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h)) {
        fprintf(stderr, "left open: handle type %s\n", uv_handle_type_name(h->type));
        ++*(int *)arg;
    }
}

bool fake_done(fake_t *f)
{
    hearth_client_free(f->client);
    f->client = NULL;
    hearth_ctx_free(f->ctx);
    f->ctx = NULL;
    drop_conn(f);
    for (int i = 0; i < f->npending; i++)
        uv_close((uv_handle_t *)f->pending[i], on_closed);
    f->npending = 0;
    uv_close((uv_handle_t *)&f->listener, NULL);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_close((uv_handle_t *)&f->prepare, NULL);
    if (f->dns_on)
        uv_close((uv_handle_t *)&f->dns, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int open = 0;
    uv_walk(&f->loop, walk_count, &open);
    int rc = uv_loop_close(&f->loop);
    hearth_sasl_server_free(f->sasl_server);
    hearth_sasl_free(f->sasl);
    hearth_tls_ctx_free(f->tls_ctx);
    hearth_buf_free(&f->in);
    return open == 0 && rc == 0;
}
