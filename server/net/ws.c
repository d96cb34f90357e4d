/* WebSocket (RFC 6455) for XMPP (RFC 7395): the upgrade of an HTTP connection at
 * /xmpp-websocket (subprotocol "xmpp"), then a transport whose input and output are whole text
 * messages, framed by wslay (Debian's libwslay: framing only, the I/O is ours). Binary frames,
 * oversized messages and protocol errors close the connection with the RFC's status codes; a
 * close frame from the peer is answered and loses the connection (a session with stream
 * management then waits for its resumption). */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "core/log.h"
#include "net/http.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef struct ws {
    wslay_event_context_ptr ctx;
    const char *in; /* the bytes wslay reads from, during ws_plain */
    size_t in_len;
    int in_recv; /* inside wslay_event_recv: writes are flushed after it */
    int close_sent;
} ws_t;

static ws_t *ws_of(connection_t *c)
{
    return http__upper(c);
}

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    (void)flags;
    connection_t *c = ud;
    ws_t *ws = ws_of(c);
    if (!ws->in_len) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < ws->in_len ? len : ws->in_len;
    memcpy(buf, ws->in, n);
    ws->in += n;
    ws->in_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    (void)flags;
    connection_t *c = ud;
    if (http__write_raw(c, (const char *)data, len)) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return (ssize_t)len;
}

static void flush(connection_t *c)
{
    ws_t *ws = ws_of(c);
    if (wslay_event_want_write(ws->ctx) && wslay_event_send(ws->ctx) < 0)
        connection__lose(c, HEARTH_EIO);
}

static void close_with(connection_t *c, uint16_t code, const char *why)
{
    ws_t *ws = ws_of(c);
    if (!ws->close_sent) {
        ws->close_sent = 1;
        /* wslay sends control frames ahead of queued messages, and nothing after a close:
         * what is queued (our <close/>) leaves first. */
        flush(c);
        (void)wslay_event_queue_close(ws->ctx, code, (const uint8_t *)why, why ? strlen(why) : 0);
        flush(c);
    }
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *ud)
{
    (void)ctx;
    connection_t *c = ud;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        connection__deliver(c, (const char *)arg->msg, arg->msg_length);
        break;
    case WSLAY_BINARY_FRAME:
        /* RFC 7395 §3.2: XMPP goes in text frames only. */
        hlog_conn(LOG_INFO, c->id, NULL, "WebSocket: binary frame refused");
        close_with(c, WSLAY_CODE_UNSUPPORTED_DATA, "XMPP over WebSocket uses text frames");
        connection__end(c, HEARTH_EXML);
        break;
    case WSLAY_CONNECTION_CLOSE:
        close_with(c, WSLAY_CODE_NORMAL_CLOSURE, NULL);
        connection__end(c, HEARTH_ECLOSED);
        break;
    default: /* pings are answered by wslay */
        break;
    }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = recv_cb,
    .send_callback = send_cb,
    .on_msg_recv_callback = on_msg,
};

/* Plaintext from the socket (after TLS for wss): frames to messages. */
static void ws_plain(connection_t *c, const char *data, size_t len)
{
    ws_t *ws = ws_of(c);
    ws->in = data;
    ws->in_len = len;
    ws->in_recv = 1;
    int rc = wslay_event_recv(ws->ctx);
    ws->in_recv = 0;
    ws->in = NULL;
    ws->in_len = 0;
    if (rc < 0) {
        hlog_conn(LOG_INFO, c->id, NULL, "WebSocket: %s",
                  rc == WSLAY_ERR_PROTO ? "protocol error" : "error");
        close_with(
            c, rc == WSLAY_ERR_PROTO ? WSLAY_CODE_PROTOCOL_ERROR : WSLAY_CODE_INTERNAL_SERVER_ERROR,
            NULL);
        connection__end(c, HEARTH_EXML);
        return;
    }
    flush(c);
    /* wslay closes by itself on a frame that breaks RFC 6455 (1002: unmasked, bad opcode or
     * length) and on a message past the bound (1009): the connection ends with it. */
    if (!ws->close_sent && wslay_event_get_close_sent(ws->ctx)) {
        ws->close_sent = 1;
        hlog_conn(LOG_INFO, c->id, NULL, "WebSocket: closed with status %u (%s)",
                  wslay_event_get_status_code_sent(ws->ctx),
                  wslay_event_get_status_code_sent(ws->ctx) == WSLAY_CODE_MESSAGE_TOO_BIG
                      ? "message too big"
                      : "protocol error");
        connection__end(c, HEARTH_EXML);
    }
}

static int ws_write(connection_t *c, const char *data, size_t len)
{
    ws_t *ws = ws_of(c);
    if (ws->close_sent)
        return HEARTH_ECLOSED;
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)data, len};
    if (wslay_event_queue_msg(ws->ctx, &m))
        return HEARTH_ENOMEM;
    if (!ws->in_recv)
        flush(c);
    return 0;
}

static void ws_closing(connection_t *c)
{
    /* What was queued and the close frame leave now, even inside a read: the connection
     * closes once they are written, and nothing is written after that. */
    if (!c->fail_pending)
        close_with(c, WSLAY_CODE_NORMAL_CLOSURE, NULL);
    hearth_tls_t *tls = http__conn_tls(c);
    if (tls && !c->fail_pending)
        hearth_tls_shutdown(tls);
}

static void ws_free_upper(void *upper)
{
    ws_t *ws = upper;
    wslay_event_context_free(ws->ctx);
    free(ws);
}

static hearth_tls_t *ws_tls(connection_t *c)
{
    return http__conn_tls(c);
}

const transport_t transport_websocket = {
    .name = "websocket",
    .messages = 1,
    .read = http__read,
    .write = ws_write,
    .closing = ws_closing,
    .free = http__free, /* the HTTP state, with ws as its upper */
    .tls = ws_tls,
    .can_move = 1,
};

/* ---- the upgrade ---- */

static int has_token(const char *list, const char *token)
{
    size_t tl = strlen(token);
    while (list && *list) {
        list += strspn(list, ", \t");
        size_t n = strcspn(list, ", \t");
        if (n == tl && !strncasecmp(list, token, n))
            return 1;
        list += n;
    }
    return 0;
}

static void refuse(http_request_t *req, int status, const char *why)
{
    hlog_conn(LOG_INFO, req->c->id, NULL, "WebSocket upgrade refused: %s", why);
    req->keep_alive = 0;
    http_respond(req, status, "text/plain; charset=utf-8",
                 status == 426 ? "Sec-WebSocket-Version: 13\r\n" : NULL, why, strlen(why));
}

int ws__upgrade(http_request_t *req)
{
    const char *upgrade = http_header(req, "Upgrade");
    const char *connection = http_header(req, "Connection");
    const char *key = http_header(req, "Sec-WebSocket-Key");
    const char *version = http_header(req, "Sec-WebSocket-Version");
    const char *protocol = http_header(req, "Sec-WebSocket-Protocol");
    if (strcmp(req->method, "GET")) {
        refuse(req, 405, "a WebSocket opens with GET");
        return 0;
    }
    if (!upgrade || strcasecmp(upgrade, "websocket") || !has_token(connection, "upgrade")) {
        refuse(req, 426, "this is a WebSocket endpoint");
        return 0;
    }
    if (!version || strcmp(version, "13")) {
        refuse(req, 426, "WebSocket version 13 only");
        return 0;
    }
    if (!key || strlen(key) != 24) {
        refuse(req, 400, "bad Sec-WebSocket-Key");
        return 0;
    }
    /* RFC 7395 §3.1: the subprotocol is "xmpp"; a client that does not ask for it is not
     * speaking RFC 7395. */
    if (!has_token(protocol, "xmpp")) {
        refuse(req, 400, "the WebSocket subprotocol must be xmpp");
        return 0;
    }
    const char *origin = http_header(req, "Origin");
    if (origin && !http__origin_allowed(origin)) {
        refuse(req, 403, "this Origin may not open an XMPP WebSocket here (http.allowed_origins)");
        return 0;
    }
    connection_acceptor_fn accept = http__acceptor();
    ws_t *ws = calloc(1, sizeof(*ws));
    if (!accept || !ws || wslay_event_context_server_init(&ws->ctx, &ws_callbacks, req->c)) {
        free(ws);
        refuse(req, 503, "no WebSocket now");
        return 0;
    }
    /* A message is at most a stanza (the stream checks the stanza bound itself). */
    wslay_event_config_set_max_recv_msg_length(ws->ctx, req->c->w->set.max_stanza + 1024);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char accept_key[64];
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    int ok = mctx && EVP_DigestInit_ex(mctx, EVP_sha1(), NULL) &&
             EVP_DigestUpdate(mctx, key, strlen(key)) &&
             EVP_DigestUpdate(mctx, WS_GUID, strlen(WS_GUID)) &&
             EVP_DigestFinal_ex(mctx, md, &mdlen);
    EVP_MD_CTX_free(mctx);
    if (!ok) {
        ws_free_upper(ws);
        refuse(req, 500, "no digest");
        return 0;
    }
    EVP_EncodeBlock((unsigned char *)accept_key, md, (int)mdlen);
    char extra[256];
    snprintf(extra, sizeof(extra),
             "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
             "Sec-WebSocket-Protocol: xmpp\r\n",
             accept_key);
    http_respond(req, 101, NULL, extra, NULL, 0);
    connection_t *c = req->c;
    if (c->state != CONN_OPEN) {
        ws_free_upper(ws);
        return 0;
    }
    http__set_upper(c, ws, ws_free_upper, ws_plain);
    c->t = &transport_websocket;
    connection_timer(c, 0);
    hlog_conn(LOG_DEBUG, c->id, NULL, "WebSocket from %s%s", c->ip, req->secure ? " (secure)" : "");
    c->secure = req->secure;
    accept(c); /* the layer above takes it (and its events) from here */
    return 0;
}

int ws__init(void)
{
    return http__route("/xmpp-websocket", 0, ws__upgrade);
}
