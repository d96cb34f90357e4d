/* A small program on libhearth.so's public API that integration tests drive: the client's
 * configuration from the command line, commands on stdin (one per line), every event on stdout
 * as one line. It lets Python tests run the C client against a live hearthd or Prosody.
 *
 *   client_probe --jid J --password P [--host H] [--port N] [--tls required|optional|direct|
 *                disabled] [--ca FILE] [--no-verify] [--mechs LIST] [--plain-clear]
 *                [--register create|new] [--resource R] [--reconnect MIN_MS MAX_MS] [--no-sm]
 *                [--ping MS] [--iq-timeout MS] [--no-presence]
 *   commands: connect | disconnect | send XML | iq LABEL XML | ping LABEL [TO] | info | quit
 *   events:   connected | registered ERR | online JID | resumed JID | disconnected ERR ...
 *             | stanza XML | iq LABEL ERR [XML] | lost XML | acked N | info ... | error ... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "hearth/client.h"

static hearth_ctx_t *ctx;
static hearth_client_t *client;
static uv_pipe_t in;
static char line[1 << 20];
static size_t line_len;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void print_stanza(const char *what, const char *label, int rc, hearth_stanza_t *st)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (st && hearth_stanza_serialize(st, &b) != 0)
        hearth_buf_reset(&b);
    if (label)
        out("%s %s %s%s%s", what, label, hearth_err_name(rc), b.data ? " " : "",
            b.data ? b.data : "");
    else
        out("%s %s", what, b.data ? b.data : "");
    hearth_buf_free(&b);
}

/* ---- events ---- */

static void ev_connected(void *ud, hearth_client_t *c)
{
    out("connected");
}

static void ev_registered(void *ud, hearth_client_t *c, int result)
{
    out("registered %s", hearth_err_name(result));
}

static void ev_online(void *ud, hearth_client_t *c, const char *jid, int resumed)
{
    out("%s %s", resumed ? "resumed" : "online", jid);
}

static void ev_disconnected(void *ud, hearth_client_t *c, const hearth_disconnect_info_t *i)
{
    out("disconnected %s cond=%s reconnect=%s%u text=%s", hearth_err_name(i->reason),
        i->stream_error ? hearth_stream_error_name(i->stream_error)
                        : (i->condition ? i->condition : "none"),
        i->will_reconnect ? "" : "no/", i->reconnect_delay_ms, i->text);
}

static void ev_lost(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    print_stanza("lost", NULL, 0, st);
}

static void ev_acked(void *ud, hearth_client_t *c, unsigned n)
{
    out("acked %u", n);
}

static const hearth_client_events_t events = {
    .connected = ev_connected,
    .registered = ev_registered,
    .online = ev_online,
    .disconnected = ev_disconnected,
    .stanza_lost = ev_lost,
    .acked = ev_acked,
};

/* Sees every stanza first and passes it on. */
static int on_stanza(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    print_stanza("stanza", NULL, 0, st);
    return 0;
}

static void on_iq(void *ud, hearth_client_t *c, int rc, hearth_stanza_t *resp)
{
    print_stanza("iq", ud, rc, resp);
    free(ud);
}

/* ---- commands ---- */

static void command(char *cmd)
{
    char *arg = strchr(cmd, ' ');
    if (arg)
        *arg++ = '\0';
    int rc = 0;
    if (!strcmp(cmd, "connect")) {
        rc = hearth_client_connect(client);
    } else if (!strcmp(cmd, "disconnect")) {
        rc = hearth_client_disconnect(client);
    } else if (!strcmp(cmd, "send") && arg) {
        const char *why = NULL;
        hearth_stanza_t *st = hearth_stanza_parse(arg, strlen(arg), &why);
        rc = st ? hearth_client_send(client, st) : HEARTH_EINVAL;
    } else if (!strcmp(cmd, "iq") && arg && strchr(arg, ' ')) {
        char *xml = strchr(arg, ' ');
        *xml++ = '\0';
        hearth_stanza_t *st = hearth_stanza_parse(xml, strlen(xml), NULL);
        char *label = strdup(arg);
        rc = st ? hearth_client_iq(client, st, 0, on_iq, label) : HEARTH_EINVAL;
        if (rc)
            free(label);
    } else if (!strcmp(cmd, "ping") && arg) {
        char *to = strchr(arg, ' ');
        if (to)
            *to++ = '\0';
        char *label = strdup(arg);
        rc = hearth_client_ping(client, to, 0, on_iq, label);
        if (rc)
            free(label);
    } else if (!strcmp(cmd, "info")) {
        hearth_client_info_t i;
        hearth_client_info(client, &i);
        out("info jid=%s tls=%s mech=%s cb=%s sm=%d resumable=%d unacked=%u reconnects=%u",
            hearth_client_jid(client) ? hearth_client_jid(client) : "-",
            i.tls_version ? i.tls_version : "-", i.mechanism ? i.mechanism : "-",
            i.channel_binding ? i.channel_binding : "-", i.sm_enabled, i.sm_resumable, i.sm_unacked,
            i.reconnects);
    } else if (!strcmp(cmd, "quit")) {
        uv_read_stop((uv_stream_t *)&in);
        hearth_client_free(client);
        client = NULL;
        uv_close((uv_handle_t *)&in, NULL);
        return;
    } else {
        rc = HEARTH_EINVAL;
    }
    if (rc)
        out("error %s %s", cmd, hearth_err_name(rc));
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char chunk[65536];
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0) {
        command("quit");
        return;
    }
    for (ssize_t i = 0; i < n && client; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            line[line_len] = '\0';
            line_len = 0;
            command(line);
        } else if (line_len + 1 < sizeof(line)) {
            line[line_len++] = ch;
        }
    }
}

/* ---- configuration ---- */

static void usage(void)
{
    fprintf(stderr, "usage: client_probe --jid J --password P [options] (see the source)\n");
    exit(2);
}

static void log_line(void *ud, hearth_log_level_t level, const char *l)
{
    fprintf(stderr, "%s\n", l);
}

int main(int argc, char **argv)
{
    hearth_client_config_t cfg = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE() (v ? (i++, v) : (usage(), ""))
        if (!strcmp(a, "--jid"))
            cfg.jid = TAKE();
        else if (!strcmp(a, "--password"))
            cfg.password = TAKE();
        else if (!strcmp(a, "--host"))
            cfg.host = TAKE();
        else if (!strcmp(a, "--port"))
            cfg.port = (unsigned)atoi(TAKE());
        else if (!strcmp(a, "--resource"))
            cfg.resource = TAKE();
        else if (!strcmp(a, "--ca"))
            cfg.tls_ca_file = TAKE();
        else if (!strcmp(a, "--no-verify"))
            cfg.tls_no_verify = 1;
        else if (!strcmp(a, "--mechs"))
            cfg.sasl_mechanisms = TAKE();
        else if (!strcmp(a, "--plain-clear"))
            cfg.allow_plain_without_tls = 1;
        else if (!strcmp(a, "--no-sm"))
            cfg.no_sm = 1;
        else if (!strcmp(a, "--no-presence"))
            cfg.no_initial_presence = 1;
        else if (!strcmp(a, "--ping"))
            cfg.ping_interval_ms = (unsigned)atoi(TAKE());
        else if (!strcmp(a, "--iq-timeout"))
            cfg.iq_timeout_ms = (unsigned)atoi(TAKE());
        else if (!strcmp(a, "--reconnect") && i + 2 < argc) {
            cfg.reconnect = 1;
            cfg.reconnect_min_ms = (unsigned)atoi(argv[++i]);
            cfg.reconnect_max_ms = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(a, "--register")) {
            const char *m = TAKE();
            cfg.register_mode =
                !strcmp(m, "new") ? HEARTH_REGISTER_CREATE_NEW : HEARTH_REGISTER_CREATE;
        } else if (!strcmp(a, "--tls")) {
            const char *m = TAKE();
            cfg.tls = !strcmp(m, "optional")   ? HEARTH_TLS_OPTIONAL
                      : !strcmp(m, "direct")   ? HEARTH_TLS_DIRECT
                      : !strcmp(m, "disabled") ? HEARTH_TLS_DISABLED
                                               : HEARTH_TLS_REQUIRED;
        } else {
            usage();
        }
    }
    hearth_ctx_config_t cc = {0};
    if (getenv("HEARTH_PROBE_LOG")) {
        cc.log = log_line;
        cc.log_level = HEARTH_LOG_TRACE;
        cfg.log_stanzas = 1;
    }
    int rc = hearth_ctx_new(&cc, &ctx);
    if (!rc)
        rc = hearth_client_new(ctx, &cfg, &events, NULL, &client);
    if (rc) {
        out("error setup %s", hearth_err_name(rc));
        hearth_ctx_free(ctx);
        return 1;
    }
    unsigned id;
    if (hearth_client_add_handler(client, NULL, 1000, on_stanza, NULL, &id))
        return 1;
    uv_pipe_init(hearth_ctx_loop(ctx), &in, 0);
    uv_pipe_open(&in, 0);
    uv_read_start((uv_stream_t *)&in, on_alloc, on_read);
    out("ready");
    (void)hearth_ctx_run(ctx);
    hearth_ctx_free(ctx);
    return 0;
}
