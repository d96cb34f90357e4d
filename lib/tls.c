/* TLS layer over OpenSSL without socket I/O (include/hearth/tls.h). A custom BIO reads straight
 * from the buffer being fed and writes straight into the write_raw callback, so an idle session
 * holds no growing memory BIO. Touches OpenSSL and the caller's callbacks, nothing else. */
#include <arpa/inet.h>
#include <pthread.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "hearth/buf.h"
#include "hearth/tls.h"
#include "tls13rec.h"

/* Plaintext written before the handshake ends waits here; past this, HEARTH_ELIMIT (the caller
 * is sending without reading and should be cut). */
#define PENDING_MAX (1024 * 1024)
#define ALPN_XMPP_CLIENT "xmpp-client"
#define EXPORTER_LABEL "EXPORTER-Channel-Binding"

struct hearth_tls_ctx {
    /* Replaced by hearth_tls_ctx_reload_server while sessions are made from it on other
     * threads: read and swapped under lock (each SSL holds its own reference to the SSL_CTX
     * it was made from, so the old one lives while they do). */
    SSL_CTX *ssl;
    pthread_mutex_t lock;
    BIO_METHOD *bio_meth;
    int is_server;
    int refs; /* atomic: the creator plus one per session */
};

typedef enum tls_state {
    TLS_HANDSHAKE,
    TLS_OPEN,
    TLS_CLOSED, /* close_notify received (one we sent shows in SSL_get_shutdown) */
    TLS_FAILED,
} tls_state_t;

struct hearth_tls {
    hearth_tls_ctx_t *ctx;
    SSL *ssl;
    hearth_tls_io_t io;
    void *ud;
    tls_state_t state;
    int started;
    int in_feed;
    /* The ciphertext being fed, read by the BIO without a copy; valid only inside feed. */
    const char *in;
    size_t in_len;
    /* Ciphertext left unread by OpenSSL when a feed ends (rare: OpenSSL reads whatever it is
     * offered); read before the next feed's bytes. Bounded by what one feed gave. */
    hearth_buf_t rest;
    size_t rest_off;
    hearth_buf_t pending; /* plaintext written before the handshake ended, <= PENDING_MAX */
    /* Both made only when there is something to hold: every idle TLS stream carried 512 bytes
     * of them. */
    char *alpn; /* selected protocol, NULL if none */
    char *err;  /* last error, NULL if none */
    /* A TLS 1.3 server session keeps track of its keys (track) while OpenSSL runs it, so that
     * once idle it can free the SSL object (13.8 KB) and go on with tls13rec alone (rec; ssl is
     * then NULL, and rin holds a record that has not fully come). */
    struct tls_track *track;
    tls13_rec_t *rec;
    hearth_buf_t rin;
    int sent_close; /* after the release: close_notify went out */
};

/* What the key log and the message callback told of a TLS 1.3 server session: the current
 * application traffic secrets each way (the first from the key log, moved on at each KeyUpdate as
 * it goes by, so that an older one is never kept), and the sequence number of the next record
 * under them. A direction counts records from its Finished on. */
typedef struct tls_track {
    unsigned char client0[TLS13_SECRET_MAX], server0[TLS13_SECRET_MAX];
    uint8_t client_len, server_len;
    uint8_t app_rd, app_wr;  /* that direction's Finished has gone by */
    uint8_t hs_partial;      /* a handshake record read whose message has not all come */
    uint64_t seq_rd, seq_wr; /* records under the current key */
    int broken;              /* something not followed: never released */
    /* Where OpenSSL stands in the ciphertext it has read: a record's header bytes so far, then
     * what is left of its body. Released only between records (OpenSSL keeps a partial record
     * where SSL_has_pending does not see it). */
    uint8_t hdr[5], hdr_have;
    uint32_t body_left;
} tls_track_t;

#define ERR_TEXT_MAX 256 /* an error text is cut there */

static void keep_err(hearth_tls_t *t, const char *text)
{
    free(t->err);
    t->err = strdup(text); /* NULL on ENOMEM: hearth_tls_error then says "" */
}

/* ---- errors ---- */

/* Append OpenSSL's queued errors ("; "-separated reasons with their detail) to buf and clear the
 * queue. */
static void append_ssl_errors(char *buf, size_t size)
{
    unsigned long e;
    const char *data = NULL;
    int flags = 0;
    size_t len = strlen(buf);
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        /* System errors carry errno as their reason and have no reason string. */
        const char *reason =
            ERR_SYSTEM_ERROR(e) ? strerror(ERR_GET_REASON(e)) : ERR_reason_error_string(e);
        char code[32];
        if (!reason) {
            snprintf(code, sizeof code, "error %lx", e);
            reason = code;
        }
        int has_data = (flags & ERR_TXT_STRING) && data && data[0];
        char one[300];
        snprintf(one, sizeof one, "%s%s%s%s", reason, has_data ? " (" : "", has_data ? data : "",
                 has_data ? ")" : "");
        /* OpenSSL repeats itself up the call chain ("system lib" after "No such file"). */
        if (strstr(buf, one) || (ERR_GET_REASON(e) == ERR_R_SYS_LIB && !has_data && len))
            continue;
        if (len + 3 < size) {
            snprintf(buf + len, size - len, "%s%s", len ? "; " : "", one);
            len = strlen(buf);
        }
    }
}

/* Set *err (if err is not NULL) to a malloc'd message: the text plus OpenSSL's queued errors. */
static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(char **err, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char tail[768] = "";
    append_ssl_errors(tail, sizeof tail);
    if (tail[0]) {
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof buf - len, ": %s", tail);
    }
    ERR_clear_error();
    if (err)
        *err = strdup(buf);
}

static int fail(hearth_tls_t *t, const char *what)
{
    char msg[ERR_TEXT_MAX];
    snprintf(msg, sizeof msg, "%s", what);
    char tail[ERR_TEXT_MAX] = "";
    append_ssl_errors(tail, sizeof tail);
    if (t->ssl && !SSL_is_server(t->ssl)) {
        long vr = SSL_get_verify_result(t->ssl);
        if (vr != X509_V_OK) {
            size_t len = strlen(tail);
            snprintf(tail + len, sizeof tail - len, "%scertificate: %s", len ? "; " : "",
                     X509_verify_cert_error_string(vr));
        }
    }
    if (tail[0]) {
        size_t len = strlen(msg);
        snprintf(msg + len, sizeof msg - len, ": %s", tail);
    }
    keep_err(t, msg);
    t->state = TLS_FAILED;
    return HEARTH_ETLS;
}

/* ---- the BIO ---- */

/* Follows record boundaries in the ciphertext handed to OpenSSL (see tls_track_t). */
static void track_input(tls_track_t *k, const unsigned char *p, size_t n)
{
    while (n > 0) {
        if (k->body_left > 0) {
            size_t take = n < k->body_left ? n : k->body_left;
            k->body_left -= (uint32_t)take;
            p += take;
            n -= take;
            continue;
        }
        k->hdr[k->hdr_have++] = *p++;
        n--;
        if (k->hdr_have == 5) {
            k->body_left = (uint32_t)k->hdr[3] << 8 | k->hdr[4];
            k->hdr_have = 0;
        }
    }
}

static int bio_write(BIO *b, const char *data, int len)
{
    hearth_tls_t *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    t->io.write_raw(t->ud, data, (size_t)len);
    return len;
}

static int bio_read(BIO *b, char *out, int len)
{
    hearth_tls_t *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    const char *src;
    size_t avail;
    if (t->rest_off < t->rest.len) {
        src = t->rest.data + t->rest_off;
        avail = t->rest.len - t->rest_off;
    } else if (t->in_len > 0) {
        src = t->in;
        avail = t->in_len;
    } else {
        BIO_set_retry_read(b);
        return -1;
    }
    size_t n = avail < (size_t)len ? avail : (size_t)len;
    memcpy(out, src, n);
    if (t->track)
        track_input(t->track, (const unsigned char *)out, n);
    if (src == t->in) {
        t->in += n;
        t->in_len -= n;
    } else {
        t->rest_off += n;
    }
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* every write already went out through write_raw */
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *bio_method_new(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "hearth");
    if (!m)
        return NULL;
    if (!BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
        !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create)) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/* ---- following the keys of a TLS 1.3 server session ---- */

static int unhex(const char *h, unsigned char *out, size_t max)
{
    size_t n = 0;
    for (; h[0] && h[1] && h[0] != ' '; h += 2) {
        unsigned v;
        if (n == max || sscanf(h, "%2x", &v) != 1)
            return -1;
        out[n++] = (unsigned char)v;
    }
    return h[0] ? -1 : (int)n;
}

/* The first application traffic secrets, from OpenSSL's key log lines ("LABEL random secret"). */
static void keylog(const SSL *ssl, const char *line)
{
    hearth_tls_t *t = SSL_get_app_data(ssl);
    tls_track_t *k = t ? t->track : NULL;
    const char *sp = strrchr(line, ' ');
    if (!k || !sp)
        return;
    int n = 0;
    if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0) {
        n = unhex(sp + 1, k->client0, sizeof(k->client0));
        k->client_len = n > 0 ? (uint8_t)n : 0;
    } else if (strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0) {
        n = unhex(sp + 1, k->server0, sizeof(k->server0));
        k->server_len = n > 0 ? (uint8_t)n : 0;
    }
    if (n < 0)
        k->broken = 1;
}

/* Every protected record (its inner content type is reported once it is opened or sealed) and
 * every Finished and KeyUpdate message, each way. */
static void track_msg(int write_p, int version, int content_type, const void *buf, size_t len,
                      SSL *ssl, void *arg)
{
    (void)version;
    (void)ssl;
    hearth_tls_t *t = arg;
    tls_track_t *k = t ? t->track : NULL;
    if (!k)
        return;
    uint8_t *app = write_p ? &k->app_wr : &k->app_rd;
    uint64_t *seq = write_p ? &k->seq_wr : &k->seq_rd;
    if (content_type == SSL3_RT_INNER_CONTENT_TYPE) {
        if (*app)
            (*seq)++;
        /* A peer may split a handshake message over records; OpenSSL holds the start where no
         * call shows it, so the release waits for the message. */
        if (!write_p && *app && len == 1 && ((const uint8_t *)buf)[0] == SSL3_RT_HANDSHAKE)
            k->hs_partial = 1;
    } else if (content_type == SSL3_RT_HANDSHAKE && len > 0) {
        uint8_t type = ((const uint8_t *)buf)[0];
        if (!write_p)
            k->hs_partial = 0;
        if (type == SSL3_MT_FINISHED) {
            if (*app)
                k->broken = 1; /* a second Finished: not a handshake this follows */
            *app = 1;
            *seq = 0;
        } else if (type == SSL3_MT_KEY_UPDATE && *app) {
            unsigned char *secret = write_p ? k->server0 : k->client0;
            uint8_t secret_len = write_p ? k->server_len : k->client_len;
            unsigned char next[TLS13_SECRET_MAX];
            if (secret_len == 0 || tls13_next_secret(secret_len, secret, next) != 0)
                k->broken = 1;
            else
                memcpy(secret, next, secret_len);
            OPENSSL_cleanse(next, sizeof(next));
            *seq = 0;
        } else if (*app && type != SSL3_MT_NEWSESSION_TICKET) {
            k->broken = 1; /* post-handshake authentication and the like: keep OpenSSL */
        }
    }
}

/* ---- contexts ---- */

/* XEP-0368: select xmpp-client when offered; otherwise go on without ALPN. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    const size_t want = sizeof ALPN_XMPP_CLIENT - 1;
    unsigned int i = 0;
    while (i < inlen) {
        unsigned int n = in[i];
        if (n == 0 || i + 1 + n > inlen)
            break;
        if (n == want && memcmp(in + i + 1, ALPN_XMPP_CLIENT, want) == 0) {
            *out = in + i + 1;
            *outlen = (unsigned char)n;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

static hearth_tls_ctx_t *ctx_new(int is_server, char **err)
{
    hearth_tls_ctx_t *ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        set_err(err, "out of memory");
        return NULL;
    }
    ctx->is_server = is_server;
    ctx->refs = 1;
    pthread_mutex_init(&ctx->lock, NULL);
    ctx->ssl = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
    ctx->bio_meth = bio_method_new();
    if (!ctx->ssl || !ctx->bio_meth) {
        set_err(err, "cannot create TLS context");
        goto fail;
    }
    if (!SSL_CTX_set_min_proto_version(ctx->ssl, TLS1_2_VERSION)) {
        set_err(err, "cannot set TLS 1.2 as minimum");
        goto fail;
    }
    SSL_CTX_set_options(ctx->ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    /* Idle sessions give their record buffers back. */
    SSL_CTX_set_mode(ctx->ssl, SSL_MODE_RELEASE_BUFFERS);
    /* No stateful session cache: resumption, if any, is through stateless tickets. */
    SSL_CTX_set_session_cache_mode(ctx->ssl, SSL_SESS_CACHE_OFF);
    if (is_server)
        SSL_CTX_set_keylog_callback(ctx->ssl, keylog); /* kept in memory only: tls_track */
    return ctx;
fail:
    if (ctx->ssl)
        SSL_CTX_free(ctx->ssl);
    if (ctx->bio_meth)
        BIO_meth_free(ctx->bio_meth);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
    return NULL;
}

hearth_tls_ctx_t *hearth_tls_ctx_new_server(const char *cert_file, const char *key_file, char **err)
{
    if (err)
        *err = NULL;
    if (!cert_file || !key_file) {
        set_err(err, "certificate and key files are required");
        return NULL;
    }
    ERR_clear_error();
    hearth_tls_ctx_t *ctx = ctx_new(1, err);
    if (!ctx)
        return NULL;
    if (SSL_CTX_use_certificate_chain_file(ctx->ssl, cert_file) != 1) {
        set_err(err, "cannot load certificate %s", cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx->ssl, key_file, SSL_FILETYPE_PEM) != 1) {
        set_err(err, "cannot load private key %s", key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx->ssl) != 1) {
        set_err(err, "private key %s does not match certificate %s", key_file, cert_file);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx->ssl, alpn_select, NULL);
    return ctx;
fail:
    hearth_tls_ctx_free(ctx);
    return NULL;
}

int hearth_tls_ctx_reload_server(hearth_tls_ctx_t *ctx, const char *cert_file, const char *key_file,
                                 char **err)
{
    if (err)
        *err = NULL;
    if (!ctx || !ctx->is_server) {
        set_err(err, "not a server context");
        return HEARTH_EINVAL;
    }
    /* A whole new context with the same settings; only then is it swapped in. */
    hearth_tls_ctx_t *fresh = hearth_tls_ctx_new_server(cert_file, key_file, err);
    if (!fresh)
        return HEARTH_ETLS;
    pthread_mutex_lock(&ctx->lock);
    SSL_CTX *old = ctx->ssl;
    ctx->ssl = fresh->ssl;
    pthread_mutex_unlock(&ctx->lock);
    fresh->ssl = old;
    hearth_tls_ctx_free(fresh); /* and with it the old SSL_CTX, once its sessions end */
    return 0;
}

hearth_tls_ctx_t *hearth_tls_ctx_new_client(const char *ca_file, char **err)
{
    if (err)
        *err = NULL;
    ERR_clear_error();
    hearth_tls_ctx_t *ctx = ctx_new(0, err);
    if (!ctx)
        return NULL;
    if (ca_file) {
        if (SSL_CTX_load_verify_locations(ctx->ssl, ca_file, NULL) != 1) {
            set_err(err, "cannot load CA file %s", ca_file);
            hearth_tls_ctx_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

hearth_tls_ctx_t *hearth_tls_ctx_new_client_verify(const char *ca_file, char **err)
{
    if (ca_file)
        return hearth_tls_ctx_new_client(ca_file, err);
    if (err)
        *err = NULL;
    ERR_clear_error();
    hearth_tls_ctx_t *ctx = ctx_new(0, err);
    if (!ctx)
        return NULL;
    if (SSL_CTX_set_default_verify_paths(ctx->ssl) != 1) {
        set_err(err, "cannot load the system's trusted certificates");
        hearth_tls_ctx_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx->ssl, SSL_VERIFY_PEER, NULL);
    return ctx;
}

void hearth_tls_ctx_free(hearth_tls_ctx_t *ctx)
{
    if (!ctx || __atomic_sub_fetch(&ctx->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    SSL_CTX_free(ctx->ssl);
    BIO_meth_free(ctx->bio_meth);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

/* ---- sessions ---- */

hearth_tls_t *hearth_tls_new(hearth_tls_ctx_t *ctx, const hearth_tls_io_t *io, void *ud,
                             const char *server_name)
{
    if (!ctx || !io || !io->write_raw || !io->read_plain)
        return NULL;
    hearth_tls_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->io = *io;
    t->ud = ud;
    t->state = TLS_HANDSHAKE;
    t->rest = (hearth_buf_t)HEARTH_BUF_INIT;
    t->pending = (hearth_buf_t)HEARTH_BUF_INIT;
    ERR_clear_error();
    pthread_mutex_lock(&ctx->lock);
    SSL_CTX *sc = ctx->ssl;
    SSL_CTX_up_ref(sc);
    pthread_mutex_unlock(&ctx->lock);
    t->ssl = SSL_new(sc);
    SSL_CTX_free(sc); /* the SSL holds its own reference */
    if (!t->ssl)
        goto fail;
    BIO *bio = BIO_new(ctx->bio_meth);
    if (!bio)
        goto fail;
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio); /* one reference, owned by ssl */
    if (ctx->is_server) {
        SSL_set_accept_state(t->ssl);
        if ((t->track = calloc(1, sizeof(*t->track))) == NULL)
            goto fail;
        SSL_set_app_data(t->ssl, t);
        SSL_set_msg_callback(t->ssl, track_msg);
        SSL_set_msg_callback_arg(t->ssl, t);
    } else {
        SSL_set_connect_state(t->ssl);
        if (server_name && server_name[0]) {
            unsigned char addr[16];
            int is_ip = inet_pton(AF_INET, server_name, addr) == 1 ||
                        inet_pton(AF_INET6, server_name, addr) == 1;
            /* RFC 6066: no IP literals in SNI. */
            if (!is_ip && !SSL_set_tlsext_host_name(t->ssl, server_name))
                goto fail;
            if (SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER) {
                int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), server_name)
                               : SSL_set1_host(t->ssl, server_name);
                if (!ok)
                    goto fail;
            }
        }
    }
    __atomic_add_fetch(&ctx->refs, 1, __ATOMIC_RELAXED);
    t->ctx = ctx;
    return t;
fail:
    ERR_clear_error();
    if (t->ssl)
        SSL_free(t->ssl);
    free(t->track);
    free(t);
    return NULL;
}

int hearth_tls_set_alpn(hearth_tls_t *t, const char *proto)
{
    size_t n = proto ? strlen(proto) : 0;
    if (!t || !t->ssl || SSL_is_server(t->ssl) || t->started || n == 0 || n > 255)
        return HEARTH_EINVAL;
    unsigned char wire[256];
    wire[0] = (unsigned char)n;
    memcpy(wire + 1, proto, n);
    /* SSL_set_alpn_protos returns 0 on success. */
    if (SSL_set_alpn_protos(t->ssl, wire, (unsigned)(n + 1)) != 0) {
        ERR_clear_error();
        return HEARTH_ENOMEM;
    }
    return 0;
}

static int write_now(hearth_tls_t *t, const char *data, size_t len)
{
    while (len > 0) {
        size_t done = 0;
        ERR_clear_error();
        /* The BIO takes every byte, so SSL_write_ex completes or fails for good. */
        if (SSL_write_ex(t->ssl, data, len, &done) != 1)
            return fail(t, "TLS write failed");
        data += done;
        len -= done;
    }
    return 0;
}

static void track_free(hearth_tls_t *t)
{
    if (t->track) {
        OPENSSL_cleanse(t->track, sizeof(*t->track));
        free(t->track);
        t->track = NULL;
    }
}

static int on_handshake_done(hearth_tls_t *t)
{
    t->state = TLS_OPEN;
    if (t->track && SSL_version(t->ssl) != TLS1_3_VERSION)
        track_free(t); /* only TLS 1.3 sessions are released */
    const unsigned char *p = NULL;
    unsigned int n = 0;
    SSL_get0_alpn_selected(t->ssl, &p, &n);
    if (p && n > 0 && !t->alpn && (t->alpn = malloc(n + 1))) {
        memcpy(t->alpn, p, n);
        t->alpn[n] = '\0';
    }
    if (t->pending.len > 0) {
        hearth_buf_t q = t->pending;
        t->pending = (hearth_buf_t)HEARTH_BUF_INIT;
        int rc = write_now(t, q.data, q.len);
        hearth_buf_free(&q);
        if (rc)
            return rc;
    }
    if (t->io.handshake_done)
        t->io.handshake_done(t->ud);
    return 0;
}

/* Run the handshake as far as the input allows. */
static int handshake(hearth_tls_t *t)
{
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return on_handshake_done(t);
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ)
        return 0;
    return fail(t, "TLS handshake failed");
}

int hearth_tls_start(hearth_tls_t *t)
{
    if (!t)
        return HEARTH_EINVAL;
    if (!t->ssl || SSL_is_server(t->ssl) || t->started || t->state != TLS_HANDSHAKE)
        return t->state == TLS_FAILED ? HEARTH_ETLS : 0;
    t->started = 1;
    return handshake(t);
}

/* Decrypt what the input holds, handing plaintext to read_plain. Anything OpenSSL writes on the
 * way (alerts, TLS 1.3 tickets, KeyUpdate answers) already went out through the BIO. */
static int read_all(hearth_tls_t *t)
{
    char buf[16384];
    while (t->state == TLS_OPEN) {
        size_t n = 0;
        ERR_clear_error();
        if (SSL_read_ex(t->ssl, buf, sizeof buf, &n) == 1) {
            t->io.read_plain(t->ud, buf, n);
            continue;
        }
        switch (SSL_get_error(t->ssl, 0)) {
        case SSL_ERROR_WANT_READ:
            return 0;
        case SSL_ERROR_ZERO_RETURN:
            t->state = TLS_CLOSED;
            return HEARTH_ECLOSED;
        default:
            return fail(t, "TLS read failed");
        }
    }
    /* read_plain wrote and the write failed, or the caller shut the session down. */
    return t->state == TLS_FAILED ? HEARTH_ETLS : 0;
}

/* Keep what OpenSSL left unread for the next feed; drop the input pointer, which dies with the
 * feed. */
static int keep_rest(hearth_tls_t *t, int rc)
{
    if (rc != 0) {
        hearth_buf_free(&t->rest);
        t->rest_off = 0;
    } else if (t->in_len > 0) {
        int arc = hearth_buf_append(&t->rest, t->in, t->in_len);
        if (arc) {
            keep_err(t, "out of memory keeping unread ciphertext");
            t->state = TLS_FAILED;
            rc = HEARTH_ETLS;
        }
    } else if (t->rest_off >= t->rest.len) {
        hearth_buf_free(&t->rest); /* idle sessions hold no buffer */
        t->rest_off = 0;
    } else if (t->rest_off > 0) {
        hearth_buf_consume(&t->rest, t->rest_off);
        t->rest_off = 0;
    }
    t->in = NULL;
    t->in_len = 0;
    return rc;
}

/* ---- after the release: tls13rec in place of OpenSSL ---- */

static int rec_send(hearth_tls_t *t, uint8_t type, const void *data, size_t len)
{
    hearth_buf_t out = HEARTH_BUF_INIT;
    int rc = tls13_rec_seal(t->rec, type, data, len, &out);
    if (rc == 0)
        t->io.write_raw(t->ud, out.data, out.len);
    hearth_buf_free(&out);
    if (rc != 0) {
        keep_err(t, "TLS write failed");
        t->state = TLS_FAILED;
        return HEARTH_ETLS;
    }
    return 0;
}

static int rec_feed(hearth_tls_t *t, const char *data, size_t len)
{
    const char *in = data;
    size_t n = len;
    if (t->rin.len > 0) {
        if (hearth_buf_append(&t->rin, data, len))
            return fail(t, "out of memory");
        in = t->rin.data;
        n = t->rin.len;
    }
    hearth_buf_t plain = HEARTH_BUF_INIT, reply = HEARTH_BUF_INIT;
    tls13_feed_t f;
    int rc = tls13_rec_feed(t->rec, in, n, &plain, &reply, &f);
    t->in_feed = 1;
    /* Our KeyUpdate, before anything new; nothing at all once our close_notify went out. */
    if (reply.len > 0 && !t->sent_close)
        t->io.write_raw(t->ud, reply.data, reply.len);
    if (plain.len > 0)
        t->io.read_plain(t->ud, plain.data, plain.len);
    t->in_feed = 0;
    OPENSSL_cleanse(plain.data ? plain.data : "", plain.len);
    hearth_buf_free(&plain);
    hearth_buf_free(&reply);
    if (rc != 0) {
        if (f.alert != TLS13_ALERT_NONE && !t->sent_close) {
            unsigned char alert[2] = {2, f.alert};
            (void)rec_send(t, TLS13_CT_ALERT, alert, sizeof(alert));
        }
        hearth_buf_free(&t->rin);
        char msg[64];
        snprintf(msg, sizeof msg, "TLS record refused (alert %u)", (unsigned)f.alert);
        keep_err(t, msg);
        t->state = TLS_FAILED;
        return HEARTH_ETLS;
    }
    if (f.closed) {
        hearth_buf_free(&t->rin);
        t->state = TLS_CLOSED;
        return HEARTH_ECLOSED;
    }
    /* A record not fully come stays for the next feed; an idle session holds no buffer. */
    if (in == t->rin.data) {
        hearth_buf_consume(&t->rin, f.used);
        if (t->rin.len == 0)
            hearth_buf_free(&t->rin);
    } else if (f.used < n && hearth_buf_append(&t->rin, in + f.used, n - f.used)) {
        return fail(t, "out of memory");
    }
    return t->state == TLS_FAILED ? HEARTH_ETLS : 0;
}

int hearth_tls_release(hearth_tls_t *t)
{
    tls_track_t *k = t ? t->track : NULL;
    if (!k || !t->ssl || t->state != TLS_OPEN || t->in_feed || k->broken || !k->app_rd ||
        !k->app_wr || k->client_len == 0 || k->client_len != k->server_len)
        return 0;
    /* A KeyUpdate OpenSSL owes the peer would go out with its next write: send it now (asking
     * nothing back, as OpenSSL would). */
    if (SSL_get_key_update_type(t->ssl) != SSL_KEY_UPDATE_NONE) {
        ERR_clear_error();
        if (SSL_key_update(t->ssl, SSL_KEY_UPDATE_NOT_REQUESTED) == 1)
            (void)SSL_do_handshake(t->ssl);
        ERR_clear_error();
    }
    /* Nothing held inside OpenSSL or here: no partial record, no plaintext, no pending output
     * or key update, no shutdown under way. */
    if (k->hdr_have > 0 || k->body_left > 0 || k->hs_partial || t->rest_off < t->rest.len ||
        t->pending.len > 0 || SSL_has_pending(t->ssl) || SSL_pending(t->ssl) > 0 ||
        SSL_get_shutdown(t->ssl) != 0 || SSL_get_key_update_type(t->ssl) != SSL_KEY_UPDATE_NONE)
        return 0;
    /* RFC 6066's max_fragment_length, which TLS 1.3 keeps: tls13rec writes full records. */
    if (SSL_SESSION_get_max_fragment_length(SSL_get0_session(t->ssl)) !=
        TLSEXT_max_fragment_length_DISABLED) {
        track_free(t);
        return 0;
    }
    uint16_t suite = (uint16_t)(SSL_CIPHER_get_id(SSL_get_current_cipher(t->ssl)) & 0xffff);
    tls13_rec_t *rec = malloc(sizeof(*rec));
    if (!rec)
        return 0;
    int rc = tls13_rec_init(rec, suite, k->client0, k->server0, k->client_len, 0, 0);
    if (rc != 0) { /* a suite it does not take (CCM): keep OpenSSL */
        tls13_rec_clear(rec);
        free(rec);
        track_free(t);
        return 0;
    }
    rec->rd.seq = k->seq_rd;
    rec->wr.seq = k->seq_wr;
    t->rec = rec;
    track_free(t);
    SSL_free(t->ssl);
    t->ssl = NULL;
    hearth_buf_free(&t->rest);
    t->rest_off = 0;
    return 1;
}

int hearth_tls_feed(hearth_tls_t *t, const char *data, size_t len)
{
    if (!t || (!data && len))
        return HEARTH_EINVAL;
    if (t->in_feed)
        return HEARTH_EBUSY;
    if (t->state == TLS_FAILED)
        return HEARTH_ETLS;
    if (t->state == TLS_CLOSED)
        return HEARTH_ECLOSED;
    if (t->rec)
        return rec_feed(t, data, len);
    if (t->rest_off < t->rest.len) {
        /* Older bytes come first: queue these behind them (rare; see struct hearth_tls). */
        if (hearth_buf_append(&t->rest, data, len))
            return fail(t, "out of memory");
    } else {
        t->in = data;
        t->in_len = len;
    }
    t->in_feed = 1;
    int rc = 0;
    if (t->state == TLS_HANDSHAKE) {
        t->started = 1;
        rc = handshake(t);
    }
    if (rc == 0 && t->state == TLS_OPEN)
        rc = read_all(t);
    t->in_feed = 0;
    return keep_rest(t, rc);
}

int hearth_tls_write(hearth_tls_t *t, const char *data, size_t len)
{
    if (!t || (!data && len))
        return HEARTH_EINVAL;
    if (t->state == TLS_FAILED)
        return HEARTH_ETLS;
    if (t->rec)
        return t->state == TLS_CLOSED || t->sent_close ? HEARTH_ECLOSED
               : len == 0                              ? 0
                          : rec_send(t, TLS13_CT_APPLICATION_DATA, data, len);
    if (t->state == TLS_CLOSED || (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        return HEARTH_ECLOSED;
    if (len == 0)
        return 0;
    if (t->state == TLS_HANDSHAKE) {
        if (len > PENDING_MAX - t->pending.len)
            return HEARTH_ELIMIT;
        return hearth_buf_append(&t->pending, data, len);
    }
    return write_now(t, data, len);
}

int hearth_tls_handshake_done(const hearth_tls_t *t)
{
    /* TLS_CLOSED is reached only from TLS_OPEN. */
    return t && (t->state == TLS_OPEN || t->state == TLS_CLOSED);
}

void hearth_tls_shutdown(hearth_tls_t *t)
{
    if (t && t->rec) {
        if (!t->sent_close && t->state != TLS_FAILED) {
            static const unsigned char close_notify[2] = {1, TLS13_ALERT_CLOSE_NOTIFY};
            t->sent_close = 1;
            (void)rec_send(t, TLS13_CT_ALERT, close_notify, sizeof(close_notify));
        }
        return;
    }
    if (!hearth_tls_handshake_done(t) || (SSL_get_shutdown(t->ssl) & SSL_SENT_SHUTDOWN))
        return;
    ERR_clear_error();
    /* Returns 0 (sent, peer's not yet seen) or 1; either way close_notify went through the BIO. */
    if (SSL_shutdown(t->ssl) < 0)
        ERR_clear_error();
}

const char *hearth_tls_version(const hearth_tls_t *t)
{
    if (t && t->rec)
        return "TLSv1.3";
    return hearth_tls_handshake_done(t) ? SSL_get_version(t->ssl) : NULL;
}

const char *hearth_tls_alpn(const hearth_tls_t *t)
{
    return t ? t->alpn : NULL;
}

int hearth_tls_exporter(const hearth_tls_t *t, unsigned char out[32])
{
    if (!hearth_tls_handshake_done(t) || !t->ssl || SSL_version(t->ssl) != TLS1_3_VERSION)
        return HEARTH_EINVAL;
    ERR_clear_error();
    if (SSL_export_keying_material(t->ssl, out, 32, EXPORTER_LABEL, sizeof EXPORTER_LABEL - 1,
                                   (const unsigned char *)"", 0, 1) != 1) {
        ERR_clear_error();
        return HEARTH_EINVAL;
    }
    return 0;
}

int hearth_tls_server_end_point(const hearth_tls_t *t, unsigned char out[HEARTH_TLS_END_POINT_MAX],
                                size_t *len)
{
    *len = 0;
    if (!hearth_tls_handshake_done(t) || !t->ssl)
        return HEARTH_EINVAL;
    X509 *x = t->ctx->is_server ? SSL_get_certificate(t->ssl) : SSL_get0_peer_certificate(t->ssl);
    int mdnid = NID_undef;
    /* The signature's own digest (RSA-PSS included); NID_undef for EdDSA, which hashes inside. */
    if (!x || X509_get_signature_info(x, &mdnid, NULL, NULL, NULL) != 1 || mdnid == NID_undef) {
        ERR_clear_error();
        return HEARTH_EINVAL;
    }
    const EVP_MD *md =
        mdnid == NID_md5 || mdnid == NID_sha1 ? EVP_sha256() : EVP_get_digestbynid(mdnid);
    unsigned int n = 0;
    if (!md || EVP_MD_get_size(md) > HEARTH_TLS_END_POINT_MAX || X509_digest(x, md, out, &n) != 1) {
        ERR_clear_error();
        return HEARTH_EINVAL;
    }
    *len = n;
    return 0;
}

const char *hearth_tls_error(const hearth_tls_t *t)
{
    return t && t->err ? t->err : "";
}

int hearth_tls_cert_refused(const hearth_tls_t *t)
{
    return t && t->ssl && t->state == TLS_FAILED && !SSL_is_server(t->ssl) &&
           (SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER) &&
           SSL_get_verify_result(t->ssl) != X509_V_OK;
}

void hearth_tls_free(hearth_tls_t *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    track_free(t);
    if (t->rec) {
        tls13_rec_clear(t->rec);
        free(t->rec);
    }
    hearth_buf_free(&t->rin);
    hearth_buf_free(&t->rest);
    hearth_buf_free(&t->pending);
    hearth_tls_ctx_free(t->ctx);
    free(t->alpn);
    free(t->err);
    free(t);
}

/* ---- self-signed certificate ---- */

static int add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (!ext)
        return 0;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* Built from the names directly, not from a "DNS:a,DNS:b" string, so a name cannot smuggle in
 * another entry. */
static int add_san(X509 *x, const char *const *names, size_t n_names)
{
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    if (!gens)
        return 0;
    int ok = 0;
    for (size_t i = 0; i < n_names; i++) {
        GENERAL_NAME *gn = GENERAL_NAME_new();
        ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
        if (!gn || !ia5 || !ASN1_STRING_set(ia5, names[i], (int)strlen(names[i]))) {
            GENERAL_NAME_free(gn);
            ASN1_IA5STRING_free(ia5);
            goto out;
        }
        GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
        if (!sk_GENERAL_NAME_push(gens, gn)) {
            GENERAL_NAME_free(gn);
            goto out;
        }
    }
    ok = X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) == 1;
out:
    GENERAL_NAMES_free(gens);
    return ok;
}

static int write_pem(const char *path, mode_t mode, EVP_PKEY *key, X509 *cert)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return 0;
    /* An existing file keeps its mode through O_CREAT: set it. */
    if (fchmod(fd, mode) != 0) {
        close(fd);
        return 0;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        return 0;
    }
    int ok =
        key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) : PEM_write_X509(f, cert);
    if (fclose(f) != 0)
        ok = 0;
    return ok;
}

int hearth_tls_generate_cert(const char *cert_path, const char *key_path, const char *const *names,
                             size_t n_names, char **err)
{
    if (err)
        *err = NULL;
    if (!cert_path || !key_path || !names || n_names == 0) {
        set_err(err, "certificate path, key path and at least one name are required");
        return HEARTH_EINVAL;
    }
    for (size_t i = 0; i < n_names; i++) {
        if (!names[i] || !names[i][0] || strlen(names[i]) > 253) {
            set_err(err, "invalid certificate name #%zu", i + 1);
            return HEARTH_EINVAL;
        }
    }
    ERR_clear_error();
    int rc = HEARTH_ETLS;
    X509 *x = NULL;
    BIGNUM *bn = NULL;
    EVP_PKEY *key = EVP_EC_gen("P-256");
    if (!key) {
        set_err(err, "cannot generate a P-256 key");
        goto out;
    }
    x = X509_new();
    bn = BN_new();
    if (!x || !bn) {
        set_err(err, "out of memory");
        rc = HEARTH_ENOMEM;
        goto out;
    }
    /* RFC 5280: serial positive, at most 20 octets; 159 random bits. */
    ASN1_INTEGER *serial = X509_get_serialNumber(x);
    if (!X509_set_version(x, X509_VERSION_3) ||
        !BN_rand(bn, 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) || !BN_to_ASN1_INTEGER(bn, serial) ||
        !X509_gmtime_adj(X509_getm_notBefore(x), 0) ||
        !X509_time_adj_ex(X509_getm_notAfter(x), 3650, 0, NULL) || !X509_set_pubkey(x, key)) {
        set_err(err, "cannot fill in the certificate");
        goto out;
    }
    /* The CN field is at most 64 characters; a longer first name lives in the SAN only. */
    X509_NAME *subject = X509_get_subject_name(x);
    size_t cn_len = strlen(names[0]);
    int name_ok =
        cn_len <= 64
            ? X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                         (const unsigned char *)names[0], (int)cn_len, -1, 0)
            : X509_NAME_add_entry_by_NID(subject, NID_organizationName, MBSTRING_UTF8,
                                         (const unsigned char *)"Hearth", -1, -1, 0);
    if (!name_ok || !X509_set_issuer_name(x, subject)) {
        set_err(err, "cannot set the certificate subject");
        goto out;
    }
    if (!add_ext(x, NID_basic_constraints, "critical,CA:FALSE") ||
        !add_ext(x, NID_key_usage, "critical,digitalSignature") ||
        !add_ext(x, NID_ext_key_usage, "serverAuth,clientAuth") ||
        !add_ext(x, NID_subject_key_identifier, "hash") || !add_san(x, names, n_names)) {
        set_err(err, "cannot add certificate extensions");
        goto out;
    }
    if (!X509_sign(x, key, EVP_sha256())) {
        set_err(err, "cannot sign the certificate");
        goto out;
    }
    if (!write_pem(key_path, 0600, key, NULL)) {
        set_err(err, "cannot write %s: %s", key_path, strerror(errno));
        goto out;
    }
    if (!write_pem(cert_path, 0644, NULL, x)) {
        set_err(err, "cannot write %s: %s", cert_path, strerror(errno));
        unlink(key_path);
        goto out;
    }
    rc = 0;
out:
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(key);
    ERR_clear_error();
    return rc;
}
