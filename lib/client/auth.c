/* SASL for a client connection (RFC 6120 §6): the mechanism chosen from the configuration's
 * preferences and what the server offers, the channel-binding type (XEP-0440), PLAIN, and SCRAM
 * on lib/scram_client.c with its PBKDF2 on libuv's thread pool unless the context's cache knows
 * the salted password. A SCRAM server must prove it knows the password before the login counts.
 * Touches its connection and client, and the context's cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "internal.h"

/* PBKDF2 on the pool. The connection may go while it runs: conn is then NULL. */
typedef struct scram_work {
    uv_work_t req;
    conn_t *conn;
    hearth_ctx_t *ctx;
    hearth_scram_hash_t hash;
    char *password;
    unsigned char salt[SCRAM_CLIENT_MAX_SALT];
    size_t salt_len;
    unsigned iterations;
    unsigned char salted[32];
    int rc;
} scram_work_t;

static bool is_plus(mech_t m)
{
    return m == M_SCRAM_SHA256_PLUS || m == M_SCRAM_SHA1_PLUS;
}

static hearth_scram_hash_t hash_of(mech_t m)
{
    return m == M_SCRAM_SHA1 || m == M_SCRAM_SHA1_PLUS ? HEARTH_SCRAM_SHA1 : HEARTH_SCRAM_SHA256;
}

static void fail(conn_t *conn, int reason, const char *text, const char *condition)
{
    client__lost(conn->c, reason, HEARTH_STREAM_ERR_NONE, text, condition);
}

/* The binding data of a type the TLS session can give: 0, or -1 when it cannot. */
static int binding(conn_t *conn, unsigned type, unsigned char *out, size_t *len)
{
    hearth_tls_t *tls = hearth_stream_tls(conn->stream);
    if (type == CB_EXPORTER) {
        *len = 32;
        return hearth_tls_exporter(tls, out) == 0 ? 0 : -1;
    }
    return hearth_tls_server_end_point(tls, out, len) == 0 ? 0 : -1;
}

/* XEP-0440: the first type the server announces that this session gives. With no announcement,
 * tls-exporter where TLS 1.3 has it (RFC 9266 makes it the default there); on TLS 1.2 the old
 * default was tls-unique, which we do not do: no binding then. 0 when none. */
static unsigned pick_binding(conn_t *conn)
{
    unsigned char buf[HEARTH_SASL_CB_MAX];
    size_t len;
    if (!conn->feat.cb_announced)
        return binding(conn, CB_EXPORTER, buf, &len) == 0 ? CB_EXPORTER : 0;
    const unsigned order[] = {CB_EXPORTER, CB_END_POINT};
    for (size_t i = 0; i < 2; i++)
        if ((conn->feat.cb & order[i]) && binding(conn, order[i], buf, &len) == 0)
            return order[i];
    return 0;
}

static int send_auth(conn_t *conn, const char *mech, const char *data, size_t len)
{
    hearth_client_t *c = conn->c;
    char *b64 = NULL;
    int rc = hearth_base64_encode(data, len, &b64);
    if (rc)
        return rc;
    hearth_buf_t b = HEARTH_BUF_INIT;
    rc = hearth_buf_printf(&b, "<auth xmlns='" HEARTH_NS_SASL "' mechanism='%s'>%s</auth>", mech,
                           *b64 ? b64 : "=");
    if (!rc)
        rc = net__send(conn, b.data, b.len);
    if (c->log_stanzas)
        ctx__log(c->ctx, c, HEARTH_LOG_TRACE, "-> <auth mechanism='%s'>(credentials)</auth>", mech);
    OPENSSL_cleanse(b64, strlen(b64));
    free(b64);
    if (b.data)
        OPENSSL_cleanse(b.data, b.len);
    hearth_buf_free(&b);
    return rc;
}

static int send_response(conn_t *conn, const char *data, size_t len)
{
    char *b64 = NULL;
    int rc = hearth_base64_encode(data, len, &b64);
    if (rc)
        return rc;
    hearth_buf_t b = HEARTH_BUF_INIT;
    rc = *b64 ? hearth_buf_printf(&b, "<response xmlns='" HEARTH_NS_SASL "'>%s</response>", b64)
              : hearth_buf_append_str(&b, "<response xmlns='" HEARTH_NS_SASL "'/>");
    if (!rc)
        rc = net__send(conn, b.data, b.len);
    free(b64);
    hearth_buf_free(&b);
    return rc;
}

static int start_plain(conn_t *conn)
{
    hearth_client_t *c = conn->c;
    size_t ul = strlen(c->jid.node), pl = strlen(c->password);
    char *msg = malloc(ul + pl + 2);
    if (!msg)
        return HEARTH_ENOMEM;
    msg[0] = '\0';
    memcpy(msg + 1, c->jid.node, ul);
    msg[1 + ul] = '\0';
    memcpy(msg + 2 + ul, c->password, pl);
    int rc = send_auth(conn, "PLAIN", msg, ul + pl + 2);
    OPENSSL_cleanse(msg, ul + pl + 2);
    free(msg);
    return rc;
}

static int start_scram(conn_t *conn, mech_t m, char cbflag, unsigned cb)
{
    hearth_client_t *c = conn->c;
    unsigned char data[HEARTH_SASL_CB_MAX];
    size_t len = 0;
    const char *cbname = NULL;
    if (cbflag == 'p') {
        cbname = cb == CB_EXPORTER ? "tls-exporter" : "tls-server-end-point";
        if (binding(conn, cb, data, &len))
            return HEARTH_ETLS;
        conn->cb_type = cbname;
    }
    conn->scram =
        scram__client_new(hash_of(m), c->jid.node, cbflag, cbname, data, len, c->ctx->test_nonce);
    if (!conn->scram)
        return HEARTH_ENOMEM;
    char *first = NULL;
    size_t fl = 0;
    int rc = scram__client_first(conn->scram, &first, &fl);
    if (!rc)
        rc = send_auth(conn, client__mech_names[m], first, fl);
    free(first);
    return rc;
}

int auth__start(conn_t *conn)
{
    hearth_client_t *c = conn->c;
    bool secure = hearth_stream_secure(conn->stream);
    unsigned cb = secure ? pick_binding(conn) : 0;
    mech_t chosen = M_COUNT;
    for (unsigned i = 0; i < c->nprefs && chosen == M_COUNT; i++) {
        mech_t m = c->prefs[i];
        if (!(conn->feat.mechs & (1u << m)))
            continue;
        if (is_plus(m) && !cb)
            continue;
        if (m == M_PLAIN && !secure && !c->allow_plain_without_tls)
            continue;
        chosen = m;
    }
    if (chosen == M_COUNT) {
        char text[300] = "no SASL mechanism in common (the server offers:";
        for (int m = 0; m < M_COUNT; m++)
            if (conn->feat.mechs & (1u << m))
                snprintf(text + strlen(text), sizeof(text) - strlen(text), " %s",
                         client__mech_names[m]);
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "%s)",
                 (conn->feat.mechs & (1u << M_PLAIN)) && !secure ? "; PLAIN is not used without TLS"
                                                                 : "");
        (void)hearth_stream_close(conn->stream);
        fail(conn, HEARTH_EPOLICY, text, NULL);
        return HEARTH_EPOLICY;
    }
    conn->mech = chosen;
    int rc;
    if (chosen == M_PLAIN) {
        rc = start_plain(conn);
    } else {
        /* RFC 5802 §6: 'y' tells a server that offered no -PLUS that we could have bound, so
         * that one whose -PLUS offer was stripped on the way notices. */
        bool server_plus =
            conn->feat.mechs & ((1u << M_SCRAM_SHA256_PLUS) | (1u << M_SCRAM_SHA1_PLUS));
        char flag = is_plus(chosen) ? 'p' : (cb && !server_plus) ? 'y' : 'n';
        rc = start_scram(conn, chosen, flag, cb);
    }
    if (rc) {
        fail(conn, rc, "cannot start SASL", NULL);
        return rc;
    }
    ctx__log(c->ctx, c, HEARTH_LOG_DEBUG, "SASL %s%s%s", client__mech_names[chosen],
             conn->cb_type ? " with " : "", conn->cb_type ? conn->cb_type : "");
    return 0;
}

/* ---- the SCRAM steps ---- */

static void scram_continue(conn_t *conn, const unsigned char *salted)
{
    char *final = NULL;
    size_t len = 0;
    int rc = scram__client_final(conn->scram, salted, &final, &len);
    if (!rc)
        rc = send_response(conn, final, len);
    free(final);
    if (rc)
        fail(conn, rc, "SCRAM failed", NULL);
    else
        conn->scram_final_sent = true;
}

static void work_run(uv_work_t *req)
{
    scram_work_t *w = req->data;
    w->rc = scram__salted_password(w->hash, w->password, w->salt, w->salt_len, w->iterations,
                                   w->salted);
}

static void work_free(scram_work_t *w)
{
    hearth_ctx_t *ctx = w->ctx;
    OPENSSL_cleanse(w->password, strlen(w->password));
    ctx__free(ctx, w->password);
    OPENSSL_cleanse(w, sizeof(*w));
    ctx__free(ctx, w);
    ctx__release(ctx);
}

static void work_done(uv_work_t *req, int status)
{
    scram_work_t *w = req->data;
    conn_t *conn = w->conn;
    if (conn && status == 0 && w->rc == 0)
        ctx__scram_put(w->ctx, w->hash, w->password, w->salt, w->salt_len, w->iterations,
                       w->salted);
    if (conn) {
        hearth_client_t *c = conn->c;
        conn->work = NULL;
        client__enter(c);
        if (status || w->rc)
            fail(conn, HEARTH_ESASL, "cannot derive the SCRAM key", NULL);
        else
            scram_continue(conn, w->salted);
        client__leave(c);
    }
    work_free(w);
}

static void server_first(conn_t *conn, const char *data, size_t len)
{
    hearth_client_t *c = conn->c;
    const unsigned char *salt;
    size_t salt_len;
    unsigned iterations;
    int rc = scram__client_server_first(conn->scram, data, len, &salt, &salt_len, &iterations);
    if (rc) {
        fail(conn, rc == HEARTH_EAUTH ? HEARTH_EAUTH : HEARTH_ESASL,
             rc == HEARTH_EAUTH ? "the server's SCRAM challenge is not acceptable"
                                : "malformed SCRAM challenge from the server",
             NULL);
        return;
    }
    unsigned char salted[32];
    hearth_scram_hash_t h = hash_of(conn->mech);
    if (ctx__scram_get(c->ctx, h, c->password, salt, salt_len, iterations, salted)) {
        scram_continue(conn, salted);
        OPENSSL_cleanse(salted, sizeof(salted));
        return;
    }
    scram_work_t *w = ctx__calloc(c->ctx, sizeof(*w));
    if (!w || !(w->password = ctx__strdup(c->ctx, c->password))) {
        ctx__free(c->ctx, w);
        fail(conn, HEARTH_ENOMEM, NULL, NULL);
        return;
    }
    w->req.data = w;
    w->conn = conn;
    w->ctx = c->ctx;
    w->hash = h;
    memcpy(w->salt, salt, salt_len);
    w->salt_len = salt_len;
    w->iterations = iterations;
    c->ctx->live++;
    conn->work = w;
    rc = uv_queue_work(c->ctx->loop, &w->req, work_run, work_done);
    if (rc) {
        conn->work = NULL;
        work_free(w);
        fail(conn, HEARTH_ESASL, "cannot queue the SCRAM key derivation", NULL);
    }
}

void auth__abandon(conn_t *conn)
{
    if (conn->work) {
        conn->work->conn = NULL;
        (void)uv_cancel((uv_req_t *)&conn->work->req);
        conn->work = NULL;
    }
    scram__client_free(conn->scram);
    conn->scram = NULL;
}

/* The payload of a SASL element: decoded, or -1 when it is not base64. */
static int payload(const hearth_xml_node_t *el, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    const hearth_xml_node_t *t = el->children;
    if (!t)
        return 0;
    if (t->type != HEARTH_XML_TEXT || t->next)
        return -1;
    return hearth_base64_decode(t->text, t->text_len, out, len) ? -1 : 0;
}

static void failure(conn_t *conn, const hearth_xml_node_t *el)
{
    const char *cond = "not-authorized", *text = NULL;
    char *tbuf = NULL;
    for (hearth_xml_node_t *n = hearth_xml_first_element(el); n; n = hearth_xml_next_element(n)) {
        if (strcmp(n->ns, HEARTH_NS_SASL) != 0)
            continue;
        if (!strcmp(n->name, "text")) {
            if (n->children && n->children->type == HEARTH_XML_TEXT) {
                size_t l = n->children->text_len < 300 ? n->children->text_len : 300;
                tbuf = malloc(l + 1);
                if (tbuf) {
                    memcpy(tbuf, n->children->text, l);
                    tbuf[l] = '\0';
                    text = tbuf;
                }
            }
        } else {
            cond = n->name;
        }
    }
    char buf[500];
    snprintf(buf, sizeof(buf), "authentication failed (%s%s): <%.60s/>%s%s",
             client__mech_names[conn->mech], conn->cb_type ? " with binding" : "", cond,
             text ? ": " : "", text ? text : "");
    (void)hearth_stream_close(conn->stream);
    int reason = !strcmp(cond, "encryption-required") || !strcmp(cond, "mechanism-too-weak")
                     ? HEARTH_EPOLICY
                     : HEARTH_EAUTH;
    fail(conn, reason, buf, cond);
    free(tbuf);
}

static void success(conn_t *conn, const char *data, size_t len)
{
    hearth_client_t *c = conn->c;
    if (conn->scram && !conn->scram_verified) {
        if (!data || len == 0 || scram__client_verify(conn->scram, data, len) != 0) {
            /* The server did not prove it knows the password: not who we think it is. */
            (void)hearth_stream_close(conn->stream);
            fail(conn, HEARTH_EAUTH,
                 "the server's SCRAM signature does not verify: not the server that holds the "
                 "password",
                 NULL);
            return;
        }
        conn->scram_verified = true;
    }
    conn->authenticated = true;
    c->info_mech = client__mech_names[conn->mech];
    c->info_cb = conn->cb_type;
    scram__client_free(conn->scram);
    conn->scram = NULL;
    conn->phase = PH_FEATURES;
    if (hearth_stream_restart(conn->stream) != 0)
        fail(conn, HEARTH_ECLOSED, "cannot restart the stream", NULL);
}

void auth__element(conn_t *conn, hearth_xml_node_t *el)
{
    if (strcmp(el->ns, HEARTH_NS_SASL) != 0 || conn->work) {
        (void)hearth_stream_error(conn->stream, HEARTH_STREAM_ERR_UNSUPPORTED_STANZA_TYPE, NULL);
        fail(conn, HEARTH_EXML, "unexpected element during SASL", NULL);
        return;
    }
    if (!strcmp(el->name, "failure")) {
        failure(conn, el);
        return;
    }
    char *data = NULL;
    size_t len = 0;
    if (payload(el, &data, &len)) {
        (void)hearth_stream_error(conn->stream, HEARTH_STREAM_ERR_BAD_FORMAT, NULL);
        fail(conn, HEARTH_EXML, "SASL data from the server is not base64", NULL);
        return;
    }
    if (!strcmp(el->name, "success")) {
        success(conn, data, len);
    } else if (!strcmp(el->name, "challenge") && conn->scram && !conn->scram_verified) {
        if (conn->scram_final_sent) {
            /* The server-final message as a challenge: verify, answer empty (RFC 6120 §6.3.10). */
            if (scram__client_verify(conn->scram, data, len) != 0) {
                (void)hearth_stream_close(conn->stream);
                fail(conn, HEARTH_EAUTH, "the server's SCRAM signature does not verify", NULL);
            } else {
                conn->scram_verified = true;
                if (send_response(conn, "", 0))
                    fail(conn, HEARTH_ENOMEM, NULL, NULL);
            }
        } else {
            server_first(conn, data, len);
        }
    } else {
        (void)hearth_stream_error(conn->stream, HEARTH_STREAM_ERR_UNSUPPORTED_STANZA_TYPE, NULL);
        fail(conn, HEARTH_EXML, "unexpected SASL element from the server", NULL);
    }
    if (data) {
        OPENSSL_cleanse(data, len);
        free(data);
    }
}
