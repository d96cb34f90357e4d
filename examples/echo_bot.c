/* An echo bot on libhearth, event style: it accepts every subscription request, answers
 * receipts, and sends every chat message back to whoever sent it (same type and thread),
 * reconnecting when the connection drops, until SIGINT or SIGTERM logs it out.
 *
 *   echo_bot [--host H] [--port P] [--ca FILE] JID PASSWORD
 *
 * Build against an installed libhearth: cc echo_bot.c $(pkg-config --cflags --libs hearth) */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include <hearth/chat.h>
#include <hearth/client.h>
#include <hearth/presence.h>

struct bot {
    hearth_client_t *client;
    hearth_chat_t *chat;
    uv_signal_t sigint, sigterm;
    unsigned long echoed;
};

static void on_online(void *ud, hearth_client_t *c, const char *jid, int resumed)
{
    (void)ud;
    (void)c;
    printf("echo bot %s as %s\n", resumed ? "resumed" : "online", jid);
    fflush(stdout);
}

static void stop_signals(struct bot *b)
{
    if (!uv_is_closing((uv_handle_t *)&b->sigint)) {
        uv_close((uv_handle_t *)&b->sigint, NULL);
        uv_close((uv_handle_t *)&b->sigterm, NULL);
    }
}

static void on_disconnected(void *ud, hearth_client_t *c, const hearth_disconnect_info_t *info)
{
    (void)c;
    struct bot *b = ud;
    if (info->will_reconnect) {
        printf("connection lost (%s); again in %u ms\n", info->text, info->reconnect_delay_ms);
    } else {
        printf("logged out%s%s\n", info->reason ? ": " : "", info->reason ? info->text : "");
        stop_signals(b); /* nothing is left on the loop: hearth_ctx_run returns */
    }
    fflush(stdout);
}

/* Every chat message with a body goes back. Returning HEARTH_CHAT_RECEIPT lets the chat
 * manager answer a receipt request. */
static int on_message(void *ud, hearth_chat_t *ch, const hearth_message_t *m)
{
    struct bot *b = ud;
    if (!m->body || strcmp(m->type, "chat") != 0)
        return HEARTH_CHAT_RECEIPT;
    hearth_chat_options_t o = {.thread = m->thread, .state = HEARTH_CHAT_STATE_ACTIVE};
    int rc = hearth_chat_send(ch, m->from, m->body, &o, NULL, 0);
    if (rc)
        fprintf(stderr, "cannot answer %s: %s\n", m->from, hearth_strerror(rc));
    else
        printf("echoed message %lu to %s\n", ++b->echoed, m->from);
    fflush(stdout);
    return HEARTH_CHAT_RECEIPT;
}

static void on_subscribe(void *ud, hearth_presence_t *p, const char *jid, const char *status)
{
    (void)ud;
    (void)status;
    /* HEARTH_SUBSCRIBE_ACCEPT_ALL approved it already; ask to see theirs too. */
    (void)hearth_presence_subscribe(p, jid, NULL);
    printf("%s subscribed\n", jid);
    fflush(stdout);
}

static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    struct bot *b = h->data;
    if (hearth_client_state(b->client) == HEARTH_CLIENT_IDLE)
        stop_signals(b);
    else
        (void)hearth_client_disconnect(b->client);
}

int main(int argc, char **argv)
{
    hearth_client_config_t cfg = {.reconnect = 1};
    const char *args[2];
    int nargs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--host") && i + 1 < argc)
            cfg.host = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc)
            cfg.port = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ca") && i + 1 < argc)
            cfg.tls_ca_file = argv[++i];
        else if (nargs < 2 && argv[i][0] != '-')
            args[nargs++] = argv[i];
        else
            nargs = 3;
    }
    if (nargs != 2) {
        fprintf(stderr, "usage: %s [--host H] [--port P] [--ca FILE] JID PASSWORD\n", argv[0]);
        return 2;
    }
    cfg.jid = args[0];
    cfg.password = args[1];

    struct bot b = {0};
    hearth_ctx_t *ctx;
    hearth_client_events_t ev = {.online = on_online, .disconnected = on_disconnected};
    hearth_presence_config_t pcfg = {.subscription_mode = HEARTH_SUBSCRIBE_ACCEPT_ALL};
    hearth_presence_events_t pev = {.subscribe_request = on_subscribe};
    hearth_chat_config_t ccfg = {.receipts = HEARTH_RECEIPTS_ALL};
    hearth_chat_events_t cev = {.message = on_message};
    hearth_presence_t *presence;
    int rc = hearth_ctx_new(NULL, &ctx);
    if (rc) {
        fprintf(stderr, "no context: %s\n", hearth_strerror(rc));
        return 1;
    }
    rc = hearth_client_new(ctx, &cfg, &ev, &b, &b.client);
    if (!rc)
        rc = hearth_presence_new(b.client, &pcfg, &pev, &b, &presence);
    if (!rc)
        rc = hearth_presence_set(presence, HEARTH_SHOW_CHAT, "I repeat what you say", 0);
    if (!rc)
        rc = hearth_chat_new(b.client, &ccfg, &cev, &b, &b.chat);
    /* The first login must work; later losses reconnect. */
    if (!rc)
        rc = hearth_client_connect_wait(b.client, 30000);
    if (rc) {
        fprintf(stderr, "cannot log in: %s\n", hearth_strerror(rc));
        hearth_ctx_free(ctx);
        return 1;
    }
    uv_loop_t *loop = hearth_ctx_loop(ctx);
    uv_signal_init(loop, &b.sigint);
    uv_signal_init(loop, &b.sigterm);
    b.sigint.data = b.sigterm.data = &b;
    uv_signal_start(&b.sigint, on_signal, SIGINT);
    uv_signal_start(&b.sigterm, on_signal, SIGTERM);
    printf("ready\n");
    fflush(stdout);
    (void)hearth_ctx_run(ctx);
    printf("echoed %lu messages\n", b.echoed);
    hearth_ctx_free(ctx);
    return 0;
}
