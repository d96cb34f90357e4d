/* Unit tests for the TLS layer (lib/tls.c): an in-memory client and server session pumped into each
 * other, plus raw OpenSSL clients for what our client API does not offer (old protocol versions).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "hearth/buf.h"
#include "hearth/tls.h"
#include "tls13rec.h"

/* ---- fixture: a generated certificate, a server context, a verifying client context ---- */

typedef struct fixture {
    char dir[64];
    char cert[128];
    char key[128];
    hearth_tls_ctx_t *server;
    hearth_tls_ctx_t *client;
} fixture_t;

static fixture_t fx;

static const char *const cert_names[] = {"localhost", "*.localhost", "conference.localhost"};

static int group_setup(void **state)
{
    snprintf(fx.dir, sizeof fx.dir, "/tmp/hearth-tls-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    snprintf(fx.cert, sizeof fx.cert, "%s/cert.pem", fx.dir);
    snprintf(fx.key, sizeof fx.key, "%s/key.pem", fx.dir);
    char *err = NULL;
    if (hearth_tls_generate_cert(fx.cert, fx.key, cert_names, 3, &err) != 0) {
        fprintf(stderr, "generate_cert: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    fx.server = hearth_tls_ctx_new_server(fx.cert, fx.key, &err);
    if (!fx.server) {
        fprintf(stderr, "server ctx: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    fx.client = hearth_tls_ctx_new_client(fx.cert, &err);
    if (!fx.client) {
        fprintf(stderr, "client ctx: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    (void)state;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    hearth_tls_ctx_free(fx.server);
    hearth_tls_ctx_free(fx.client);
    unlink(fx.cert);
    unlink(fx.key);
    rmdir(fx.dir);
    /* OpenSSL's per-thread error state, so valgrind sees nothing left. */
    OPENSSL_thread_stop();
    return 0;
}

/* ---- peers: a session with its captured output and received plaintext ---- */

typedef struct peer {
    hearth_tls_t *t;
    hearth_buf_t out;   /* ciphertext for the other side */
    hearth_buf_t plain; /* plaintext received */
    int writes;         /* write_raw calls */
    int hs_calls;       /* handshake_done calls */
    int echo;           /* write back what arrives, from inside read_plain */
    int echo_rc;
} peer_t;

static void on_write_raw(void *ud, const char *data, size_t len)
{
    peer_t *p = ud;
    p->writes++;
    assert_int_equal(hearth_buf_append(&p->out, data, len), 0);
}

static void on_read_plain(void *ud, const char *data, size_t len)
{
    peer_t *p = ud;
    assert_true(len > 0);
    assert_int_equal(hearth_buf_append(&p->plain, data, len), 0);
    if (p->echo && p->echo_rc == 0)
        p->echo_rc = hearth_tls_write(p->t, data, len);
}

static void on_handshake_done(void *ud)
{
    peer_t *p = ud;
    p->hs_calls++;
}

static const hearth_tls_io_t peer_io = {on_write_raw, on_read_plain, on_handshake_done};

static void peer_init(peer_t *p, hearth_tls_ctx_t *ctx, const char *server_name)
{
    memset(p, 0, sizeof *p);
    p->out = (hearth_buf_t)HEARTH_BUF_INIT;
    p->plain = (hearth_buf_t)HEARTH_BUF_INIT;
    p->t = hearth_tls_new(ctx, &peer_io, p, server_name);
    assert_non_null(p->t);
}

static void peer_free(peer_t *p)
{
    hearth_tls_free(p->t);
    hearth_buf_free(&p->out);
    hearth_buf_free(&p->plain);
}

/* Move what `from` wrote into `to`, `chunk` bytes per feed (0: all at once). Returns the first
 * non-zero feed result. */
static int deliver(peer_t *from, peer_t *to, size_t chunk)
{
    size_t len = 0;
    char *data = hearth_buf_steal(&from->out, &len);
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        size_t n = chunk && chunk < len - off ? chunk : len - off;
        rc = hearth_tls_feed(to->t, data + off, n);
        off += n;
    }
    free(data);
    return rc;
}

/* Pump both ways until nothing is left to send; crc and src get the first error of each side. */
static void pump(peer_t *c, peer_t *s, size_t chunk, int *crc, int *src)
{
    int c_rc = 0, s_rc = 0;
    for (int rounds = 0; (c->out.len || s->out.len) && rounds < 10000; rounds++) {
        if (c->out.len && s_rc == 0)
            s_rc = deliver(c, s, chunk);
        else
            hearth_buf_reset(&c->out);
        if (s->out.len && c_rc == 0)
            c_rc = deliver(s, c, chunk);
        else
            hearth_buf_reset(&s->out);
    }
    if (crc)
        *crc = c_rc;
    else
        assert_int_equal(c_rc, 0);
    if (src)
        *src = s_rc;
    else
        assert_int_equal(s_rc, 0);
}

/* A verified client for "localhost" and a server, handshake done. */
static void connect_pair(peer_t *c, peer_t *s, const char *alpn, size_t chunk)
{
    peer_init(c, fx.client, "localhost");
    peer_init(s, fx.server, NULL);
    if (alpn)
        assert_int_equal(hearth_tls_set_alpn(c->t, alpn), 0);
    assert_int_equal(hearth_tls_start(c->t), 0);
    assert_true(c->out.len > 0); /* ClientHello */
    assert_int_equal(hearth_tls_start(s->t), 0);
    assert_int_equal(s->out.len, 0);
    pump(c, s, chunk, NULL, NULL);
    assert_true(hearth_tls_handshake_done(c->t));
    assert_true(hearth_tls_handshake_done(s->t));
    assert_int_equal(c->hs_calls, 1);
    assert_int_equal(s->hs_calls, 1);
}

/* ---- certificate generation ---- */

static void test_generate_cert(void **state)
{
    (void)state;
    FILE *f = fopen(fx.cert, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);

    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    assert_non_null(sans);
    assert_int_equal(sk_GENERAL_NAME_num(sans), 3);
    for (int i = 0; i < 3; i++) {
        GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        assert_int_equal(gn->type, GEN_DNS);
        const ASN1_IA5STRING *s = gn->d.dNSName;
        assert_int_equal(ASN1_STRING_length(s), strlen(cert_names[i]));
        assert_memory_equal(ASN1_STRING_get0_data(s), cert_names[i], strlen(cert_names[i]));
    }
    GENERAL_NAMES_free(sans);
    assert_int_equal(X509_check_host(x, "conference.localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(x, "example.org", 0, 0, NULL), 0);

    char cn[128];
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn) >
                0);
    assert_string_equal(cn, "localhost");
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    EVP_PKEY *pub = X509_get0_pubkey(x);
    assert_true(EVP_PKEY_is_a(pub, "EC"));
    char group[64];
    assert_int_equal(EVP_PKEY_get_group_name(pub, group, sizeof group, NULL), 1);
    assert_string_equal(group, "prime256v1");
    int days = 0, secs = 0;
    assert_int_equal(ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x), X509_get0_notAfter(x)),
                     1);
    assert_true(days >= 3650 && days <= 3653);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    assert_true(ASN1_STRING_length(serial) >= 16 && ASN1_STRING_length(serial) <= 20);
    X509_free(x);

    struct stat st;
    assert_int_equal(stat(fx.key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_generate_cert_serial_random(void **state)
{
    (void)state;
    char c2[160], k2[160];
    snprintf(c2, sizeof c2, "%s/c2.pem", fx.dir);
    snprintf(k2, sizeof k2, "%s/k2.pem", fx.dir);
    const char *one[] = {"example.org"};
    assert_int_equal(hearth_tls_generate_cert(c2, k2, one, 1, NULL), 0);
    FILE *f1 = fopen(fx.cert, "r"), *f2 = fopen(c2, "r");
    X509 *x1 = PEM_read_X509(f1, NULL, NULL, NULL), *x2 = PEM_read_X509(f2, NULL, NULL, NULL);
    fclose(f1);
    fclose(f2);
    assert_non_null(x1);
    assert_non_null(x2);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x1), X509_get0_serialNumber(x2)),
                         0);
    X509_free(x1);
    X509_free(x2);
    unlink(c2);
    unlink(k2);

    char *err = NULL;
    assert_int_equal(hearth_tls_generate_cert(c2, k2, one, 0, &err), HEARTH_EINVAL);
    assert_non_null(err);
    free(err);
    assert_int_not_equal(hearth_tls_generate_cert("/nonexistent/dir/c.pem", k2, one, 1, &err), 0);
    assert_non_null(err);
    assert_non_null(strstr(err, "/nonexistent/dir/c.pem"));
    free(err);
    unlink(k2);
}

static void test_ctx_errors(void **state)
{
    (void)state;
    char *err = NULL;
    assert_null(hearth_tls_ctx_new_server("/nonexistent.pem", fx.key, &err));
    assert_non_null(err);
    assert_non_null(strstr(err, "/nonexistent.pem"));
    free(err);
    assert_null(hearth_tls_ctx_new_server(fx.key, fx.key, NULL)); /* NULL err is allowed */
    assert_null(hearth_tls_ctx_new_client("/nonexistent-ca.pem", &err));
    assert_non_null(err);
    free(err);
}

/* ---- sessions ---- */

static void fill(char *buf, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)((i * 131 + seed) & 0xff);
}

static void exchange(peer_t *c, peer_t *s, size_t chunk)
{
    assert_int_equal(hearth_tls_write(c->t, "<stream:stream>", 15), 0);
    pump(c, s, chunk, NULL, NULL);
    assert_int_equal(s->plain.len, 15);
    assert_memory_equal(s->plain.data, "<stream:stream>", 15);
    assert_int_equal(hearth_tls_write(s->t, "<features/>", 11), 0);
    pump(c, s, chunk, NULL, NULL);
    assert_int_equal(c->plain.len, 11);
    assert_memory_equal(c->plain.data, "<features/>", 11);
    hearth_buf_reset(&c->plain);
    hearth_buf_reset(&s->plain);

    size_t big = 100 * 1024;
    char *payload = malloc(big);
    assert_non_null(payload);
    fill(payload, big, 7);
    assert_int_equal(hearth_tls_write(c->t, payload, big), 0);
    pump(c, s, chunk, NULL, NULL);
    assert_int_equal(s->plain.len, big);
    assert_memory_equal(s->plain.data, payload, big);
    fill(payload, big, 11);
    assert_int_equal(hearth_tls_write(s->t, payload, big), 0);
    pump(c, s, chunk, NULL, NULL);
    assert_int_equal(c->plain.len, big);
    assert_memory_equal(c->plain.data, payload, big);
    free(payload);
}

static void test_handshake_and_data(void **state)
{
    (void)state;
    peer_t c, s;
    connect_pair(&c, &s, NULL, 0);
    assert_string_equal(hearth_tls_version(c.t), "TLSv1.3");
    assert_string_equal(hearth_tls_version(s.t), "TLSv1.3");
    assert_null(hearth_tls_alpn(c.t));
    assert_null(hearth_tls_alpn(s.t));
    assert_string_equal(hearth_tls_error(c.t), "");
    exchange(&c, &s, 0);
    peer_free(&c);
    peer_free(&s);
}

static void test_one_byte_at_a_time(void **state)
{
    (void)state;
    peer_t c, s;
    connect_pair(&c, &s, "xmpp-client", 1);
    assert_string_equal(hearth_tls_alpn(s.t), "xmpp-client");
    exchange(&c, &s, 1);
    peer_free(&c);
    peer_free(&s);
}

static void test_alpn(void **state)
{
    (void)state;
    peer_t c, s;
    connect_pair(&c, &s, "xmpp-client", 0);
    assert_string_equal(hearth_tls_alpn(c.t), "xmpp-client");
    assert_string_equal(hearth_tls_alpn(s.t), "xmpp-client");
    peer_free(&c);
    peer_free(&s);

    /* Another protocol: the server goes on without ALPN. */
    connect_pair(&c, &s, "h2", 0);
    assert_null(hearth_tls_alpn(c.t));
    assert_null(hearth_tls_alpn(s.t));
    peer_free(&c);
    peer_free(&s);

    /* ALPN is for clients, before start. */
    peer_init(&s, fx.server, NULL);
    assert_int_equal(hearth_tls_set_alpn(s.t, "xmpp-client"), HEARTH_EINVAL);
    peer_free(&s);
    peer_init(&c, fx.client, "localhost");
    assert_int_equal(hearth_tls_set_alpn(c.t, ""), HEARTH_EINVAL);
    assert_int_equal(hearth_tls_start(c.t), 0);
    assert_int_equal(hearth_tls_set_alpn(c.t, "xmpp-client"), HEARTH_EINVAL);
    peer_free(&c);
}

static void test_exporter(void **state)
{
    (void)state;
    unsigned char a[32], b[32], a2[32], b2[32];
    peer_t c, s;
    peer_init(&c, fx.client, "localhost");
    assert_int_equal(hearth_tls_exporter(c.t, a), HEARTH_EINVAL);
    assert_null(hearth_tls_version(c.t));
    peer_free(&c);

    connect_pair(&c, &s, NULL, 0);
    assert_int_equal(hearth_tls_exporter(c.t, a), 0);
    assert_int_equal(hearth_tls_exporter(s.t, b), 0);
    assert_memory_equal(a, b, 32);
    peer_free(&c);
    peer_free(&s);

    connect_pair(&c, &s, NULL, 0);
    assert_int_equal(hearth_tls_exporter(c.t, a2), 0);
    assert_int_equal(hearth_tls_exporter(s.t, b2), 0);
    assert_memory_equal(a2, b2, 32);
    assert_memory_not_equal(a, a2, 32);
    peer_free(&c);
    peer_free(&s);
}

static void test_write_before_handshake_is_queued(void **state)
{
    (void)state;
    peer_t c, s;
    peer_init(&c, fx.client, "localhost");
    peer_init(&s, fx.server, NULL);
    assert_int_equal(hearth_tls_write(c.t, "early", 5), 0);
    assert_int_equal(hearth_tls_write(s.t, "hello", 5), 0);
    assert_int_equal(c.out.len, 0);
    assert_int_equal(hearth_tls_start(c.t), 0);
    pump(&c, &s, 0, NULL, NULL);
    assert_int_equal(s.plain.len, 5);
    assert_memory_equal(s.plain.data, "early", 5);
    assert_int_equal(c.plain.len, 5);
    assert_memory_equal(c.plain.data, "hello", 5);
    peer_free(&c);
    peer_free(&s);
}

static void test_echo_from_read_plain(void **state)
{
    (void)state;
    peer_t c, s;
    connect_pair(&c, &s, NULL, 0);
    s.echo = 1;
    assert_int_equal(hearth_tls_write(c.t, "ping", 4), 0);
    assert_int_equal(hearth_tls_write(c.t, "pong", 4), 0);
    pump(&c, &s, 0, NULL, NULL);
    assert_int_equal(s.echo_rc, 0);
    assert_int_equal(c.plain.len, 8);
    assert_memory_equal(c.plain.data, "pingpong", 8);
    peer_free(&c);
    peer_free(&s);
}

static void test_garbage_to_server(void **state)
{
    (void)state;
    peer_t s;
    peer_init(&s, fx.server, NULL);
    static const char junk[] = "<stream:stream to='localhost'>this is not TLS at all";
    assert_int_equal(hearth_tls_feed(s.t, junk, sizeof junk - 1), HEARTH_ETLS);
    assert_true(strlen(hearth_tls_error(s.t)) > 0);
    assert_int_equal(hearth_tls_feed(s.t, junk, sizeof junk - 1), HEARTH_ETLS);
    assert_int_equal(hearth_tls_write(s.t, "x", 1), HEARTH_ETLS);
    assert_false(hearth_tls_handshake_done(s.t));
    peer_free(&s);
}

static void test_close_notify(void **state)
{
    (void)state;
    peer_t c, s;
    connect_pair(&c, &s, NULL, 0);
    assert_int_equal(hearth_tls_write(c.t, "</stream:stream>", 16), 0);
    hearth_tls_shutdown(c.t);
    assert_int_equal(hearth_tls_write(c.t, "late", 4), HEARTH_ECLOSED);
    int src = 0;
    pump(&c, &s, 0, NULL, &src);
    assert_int_equal(src, HEARTH_ECLOSED);
    /* What came before the close_notify was delivered. */
    assert_int_equal(s.plain.len, 16);
    assert_memory_equal(s.plain.data, "</stream:stream>", 16);
    assert_int_equal(hearth_tls_feed(s.t, "", 0), HEARTH_ECLOSED);
    assert_int_equal(hearth_tls_write(s.t, "x", 1), HEARTH_ECLOSED);
    /* The server answers; the client sees the close too. */
    hearth_tls_shutdown(s.t);
    int crc = 0;
    pump(&c, &s, 0, &crc, &src);
    assert_int_equal(crc, HEARTH_ECLOSED);
    peer_free(&c);
    peer_free(&s);
}

static void test_verify_failures(void **state)
{
    (void)state;
    peer_t c, s;
    int crc, src;
    /* Name mismatch. */
    peer_init(&c, fx.client, "example.org");
    peer_init(&s, fx.server, NULL);
    assert_int_equal(hearth_tls_start(c.t), 0);
    pump(&c, &s, 0, &crc, &src);
    assert_int_equal(crc, HEARTH_ETLS);
    assert_non_null(strstr(hearth_tls_error(c.t), "certificate"));
    assert_false(hearth_tls_handshake_done(c.t));
    peer_free(&c);
    peer_free(&s);

    /* A wildcard name matches. */
    peer_init(&c, fx.client, "conference.localhost");
    peer_init(&s, fx.server, NULL);
    assert_int_equal(hearth_tls_start(c.t), 0);
    pump(&c, &s, 0, NULL, NULL);
    assert_true(hearth_tls_handshake_done(c.t));
    peer_free(&c);
    peer_free(&s);

    /* Untrusted certificate: another self-signed one as the CA. */
    char c2[160], k2[160];
    snprintf(c2, sizeof c2, "%s/other.pem", fx.dir);
    snprintf(k2, sizeof k2, "%s/other-key.pem", fx.dir);
    const char *names[] = {"localhost"};
    assert_int_equal(hearth_tls_generate_cert(c2, k2, names, 1, NULL), 0);
    hearth_tls_ctx_t *other = hearth_tls_ctx_new_client(c2, NULL);
    assert_non_null(other);
    peer_init(&c, other, "localhost");
    hearth_tls_ctx_free(other); /* the session keeps it alive */
    peer_init(&s, fx.server, NULL);
    assert_int_equal(hearth_tls_start(c.t), 0);
    pump(&c, &s, 0, &crc, &src);
    assert_int_equal(crc, HEARTH_ETLS);
    peer_free(&c);
    peer_free(&s);

    /* Without a CA file nothing is checked. */
    hearth_tls_ctx_t *lax = hearth_tls_ctx_new_client(NULL, NULL);
    assert_non_null(lax);
    peer_init(&c, lax, "example.org");
    peer_init(&s, fx.server, NULL);
    assert_int_equal(hearth_tls_start(c.t), 0);
    pump(&c, &s, 0, NULL, NULL);
    assert_true(hearth_tls_handshake_done(c.t));
    peer_free(&c);
    peer_free(&s);
    hearth_tls_ctx_free(lax);
    unlink(c2);
    unlink(k2);
}

/* ---- raw OpenSSL clients ---- */

/* Drive an OpenSSL client with memory BIOs against a hearth server session. Returns the
 * server's first feed error (0 if none); *client_ok says whether the client finished. */
static int raw_handshake(SSL *cl, peer_t *s, int *client_ok)
{
    BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
    assert_non_null(rb);
    assert_non_null(wb);
    SSL_set_bio(cl, rb, wb);
    int src = 0, done = 0;
    for (int i = 0; i < 20 && src == 0; i++) {
        int r = SSL_do_handshake(cl);
        done = r == 1;
        char buf[16384];
        int n;
        int sent = 0;
        while ((n = BIO_read(wb, buf, sizeof buf)) > 0 && src == 0) {
            sent = 1;
            src = hearth_tls_feed(s->t, buf, (size_t)n);
        }
        if (s->out.len) {
            BIO_write(rb, s->out.data, (int)s->out.len);
            hearth_buf_reset(&s->out);
        } else if (!sent && (done || SSL_get_error(cl, r) != SSL_ERROR_WANT_READ)) {
            break;
        }
    }
    if (src != 0)
        (void)SSL_do_handshake(cl); /* let it read the server's alert */
    *client_ok = done;
    ERR_clear_error();
    return src;
}

static void test_tls11_client_rejected(void **state)
{
    (void)state;
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(cctx);
    SSL_CTX_set_security_level(cctx, 0); /* OpenSSL 3 refuses TLS 1.1 above level 0 */
    assert_int_equal(SSL_CTX_set_cipher_list(cctx, "DEFAULT:@SECLEVEL=0"), 1);
    assert_int_equal(SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(cctx, TLS1_1_VERSION), 1);
    SSL *cl = SSL_new(cctx);
    assert_non_null(cl);
    SSL_set_connect_state(cl);
    peer_t s;
    peer_init(&s, fx.server, NULL);
    int client_ok = 0;
    int src = raw_handshake(cl, &s, &client_ok);
    assert_int_equal(src, HEARTH_ETLS);
    assert_false(client_ok);
    assert_false(hearth_tls_handshake_done(s.t));
    assert_non_null(strstr(hearth_tls_error(s.t), "protocol"));
    peer_free(&s);
    SSL_free(cl);
    SSL_CTX_free(cctx);
}

static void test_tls12_has_no_exporter(void **state)
{
    (void)state;
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(cctx);
    assert_int_equal(SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION), 1);
    SSL *cl = SSL_new(cctx);
    assert_non_null(cl);
    SSL_set_connect_state(cl);
    peer_t s;
    peer_init(&s, fx.server, NULL);
    int client_ok = 0;
    assert_int_equal(raw_handshake(cl, &s, &client_ok), 0);
    assert_true(client_ok);
    assert_true(hearth_tls_handshake_done(s.t));
    assert_string_equal(hearth_tls_version(s.t), "TLSv1.2");
    unsigned char out[32];
    assert_int_equal(hearth_tls_exporter(s.t, out), HEARTH_EINVAL);
    /* tls-server-end-point does not depend on the version. */
    unsigned char ep[HEARTH_TLS_END_POINT_MAX];
    size_t epl;
    assert_int_equal(hearth_tls_server_end_point(s.t, ep, &epl), 0);
    assert_int_equal(epl, 32);
    peer_free(&s);
    SSL_free(cl);
    SSL_CTX_free(cctx);
}

/* ---- the release of an idle TLS 1.3 server session (tls13rec in OpenSSL's place) ---- */

static void test_release(void **state)
{
    (void)state;
    peer_t c, s;
    peer_init(&c, fx.client, "localhost");
    peer_init(&s, fx.server, NULL);
    assert_int_equal(hearth_tls_release(s.t), 0); /* before the handshake: no */
    assert_int_equal(hearth_tls_start(c.t), 0);
    pump(&c, &s, 0, NULL, NULL);
    assert_int_equal(hearth_tls_release(c.t), 0); /* a client: never */
    /* half a record held: not now */
    assert_int_equal(hearth_tls_write(c.t, "<presence/>", 11), 0);
    size_t len = 0;
    char *rec = hearth_buf_steal(&c.out, &len);
    assert_int_equal(hearth_tls_feed(s.t, rec, 5), 0);
    assert_int_equal(hearth_tls_release(s.t), 0);
    assert_int_equal(hearth_tls_feed(s.t, rec + 5, len - 5), 0);
    free(rec);
    assert_int_equal(s.plain.len, 11);
    hearth_buf_reset(&s.plain);
    unsigned char ekm[32], ep[HEARTH_TLS_END_POINT_MAX];
    size_t epl;
    assert_int_equal(hearth_tls_exporter(s.t, ekm), 0);

    assert_int_equal(hearth_tls_release(s.t), 1);
    assert_int_equal(hearth_tls_release(s.t), 0); /* once */
    assert_string_equal(hearth_tls_version(s.t), "TLSv1.3");
    assert_int_equal(hearth_tls_exporter(s.t, ekm), HEARTH_EINVAL);
    assert_int_equal(hearth_tls_server_end_point(s.t, ep, &epl), HEARTH_EINVAL);
    exchange(&c, &s, 0); /* both ways, 100 KB each, after */
    hearth_buf_reset(&c.plain);
    hearth_buf_reset(&s.plain);
    exchange(&c, &s, 1); /* a byte at a time: records across feeds */
    hearth_buf_reset(&c.plain);
    hearth_buf_reset(&s.plain);

    /* garbage after the release: refused with an alert, failed for good */
    peer_t c2, s2;
    connect_pair(&c2, &s2, NULL, 0);
    assert_int_equal(hearth_tls_release(s2.t), 1);
    char junk[64];
    memset(junk, 23, sizeof junk);
    assert_int_equal(hearth_tls_feed(s2.t, junk, sizeof junk), HEARTH_ETLS);
    assert_true(s2.out.len > 0); /* the alert */
    assert_non_null(strstr(hearth_tls_error(s2.t), "refused"));
    assert_int_equal(hearth_tls_write(s2.t, "x", 1), HEARTH_ETLS);
    peer_free(&c2);
    peer_free(&s2);

    /* close_notify both ways after the release */
    assert_int_equal(hearth_tls_write(c.t, "</stream:stream>", 16), 0);
    hearth_tls_shutdown(c.t);
    int src = 0, crc = 0;
    pump(&c, &s, 0, NULL, &src);
    assert_int_equal(src, HEARTH_ECLOSED);
    assert_int_equal(s.plain.len, 16);
    assert_int_equal(hearth_tls_write(s.t, "x", 1), HEARTH_ECLOSED);
    hearth_tls_shutdown(s.t);
    pump(&c, &s, 0, &crc, &src);
    assert_int_equal(crc, HEARTH_ECLOSED);
    peer_free(&c);
    peer_free(&s);
}

/* A raw OpenSSL client against a hearth server session: what it wrote goes to the server, what
 * the server wrote back to it. */
static void raw_to_server(SSL *cl, peer_t *s)
{
    BIO *wb = SSL_get_wbio(cl);
    char buf[16384];
    int n;
    while ((n = BIO_read(wb, buf, sizeof buf)) > 0)
        assert_int_equal(hearth_tls_feed(s->t, buf, (size_t)n), 0);
}

static void server_to_raw(peer_t *s, SSL *cl)
{
    if (s->out.len)
        BIO_write(SSL_get_rbio(cl), s->out.data, (int)s->out.len);
    hearth_buf_reset(&s->out);
}

static SSL *raw_client(SSL_CTX **cctx, peer_t *s)
{
    *cctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(*cctx);
    SSL *cl = SSL_new(*cctx);
    SSL_set_connect_state(cl);
    peer_init(s, fx.server, NULL);
    return cl;
}

/* KeyUpdates before the release, asked by the client (so the server answers with its own): the
 * secrets it goes on with are the ones after them, each way. */
static void test_release_after_key_updates(void **state)
{
    (void)state;
    SSL_CTX *cctx;
    peer_t s;
    SSL *cl = raw_client(&cctx, &s);
    int ok = 0;
    assert_int_equal(raw_handshake(cl, &s, &ok), 0);
    assert_true(ok);
    char tmp[64];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(SSL_key_update(cl, SSL_KEY_UPDATE_REQUESTED), 1);
        assert_int_equal(SSL_write(cl, "ping", 4), 4);
        raw_to_server(cl, &s);
    }
    assert_int_equal(s.plain.len, 12);
    server_to_raw(&s, cl);
    /* OpenSSL owes the client its KeyUpdate until its next write: the release sends it */
    assert_int_equal(hearth_tls_release(s.t), 1);
    assert_true(s.out.len > 0);
    assert_int_equal(SSL_write(cl, "after", 5), 5);
    raw_to_server(cl, &s);
    assert_int_equal(s.plain.len, 17);
    assert_memory_equal(s.plain.data + 12, "after", 5);
    assert_int_equal(hearth_tls_write(s.t, "back", 4), 0);
    server_to_raw(&s, cl);
    assert_int_equal(SSL_read(cl, tmp, sizeof tmp), 4);
    assert_memory_equal(tmp, "back", 4);
    peer_free(&s);
    SSL_free(cl);
    SSL_CTX_free(cctx);
}

/* A client that asked for small records (RFC 6066 max_fragment_length) keeps OpenSSL, which
 * honours it. */
static void test_release_not_max_fragment_length(void **state)
{
    (void)state;
    SSL_CTX *cctx;
    peer_t s;
    SSL *cl = raw_client(&cctx, &s);
    assert_int_equal(SSL_set_tlsext_max_fragment_length(cl, TLSEXT_max_fragment_length_512), 1);
    int ok = 0;
    assert_int_equal(raw_handshake(cl, &s, &ok), 0);
    assert_true(ok);
    assert_int_equal(hearth_tls_release(s.t), 0);
    peer_free(&s);
    SSL_free(cl);
    SSL_CTX_free(cctx);
}

/* The client's first application secret, from its key log (the split KeyUpdate test). */
static unsigned char g_client_secret[TLS13_SECRET_MAX];
static size_t g_client_secret_len;

static void client_keylog(const SSL *ssl, const char *line)
{
    (void)ssl;
    if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) != 0)
        return;
    const char *h = strrchr(line, ' ') + 1;
    g_client_secret_len = 0;
    for (unsigned v; h[0] && h[1] && g_client_secret_len < TLS13_SECRET_MAX; h += 2) {
        assert_int_equal(sscanf(h, "%2x", &v), 1);
        g_client_secret[g_client_secret_len++] = (unsigned char)v;
    }
}

/* A KeyUpdate split over two records (RFC 8446 5.1 allows it): OpenSSL keeps the first bytes
 * where no call shows them, so no release until the message is whole; then the new key. The
 * client's records are sealed with tls13rec from its logged secret. */
static void test_release_waits_for_a_split_key_update(void **state)
{
    (void)state;
    SSL_CTX *cctx;
    peer_t s;
    SSL *cl = raw_client(&cctx, &s);
    SSL_CTX_set_keylog_callback(cctx, client_keylog);
    SSL_free(cl);
    cl = SSL_new(cctx);
    SSL_set_connect_state(cl);
    int ok = 0;
    assert_int_equal(raw_handshake(cl, &s, &ok), 0);
    assert_true(ok);
    uint16_t suite = (uint16_t)(SSL_CIPHER_get_id(SSL_get_current_cipher(cl)) & 0xffff);
    tls13_rec_t crec;
    assert_int_equal(
        tls13_rec_init(&crec, suite, g_client_secret, g_client_secret, g_client_secret_len, 0, 0),
        0);
    hearth_buf_t w = HEARTH_BUF_INIT;
    assert_int_equal(tls13_rec_seal(&crec, TLS13_CT_HANDSHAKE, "\x18\x00", 2, &w), 0);
    assert_int_equal(hearth_tls_feed(s.t, w.data, w.len), 0);
    assert_int_equal(hearth_tls_release(s.t), 0); /* half a KeyUpdate held by OpenSSL */
    hearth_buf_reset(&w);
    assert_int_equal(tls13_rec_seal(&crec, TLS13_CT_HANDSHAKE, "\x00\x01\x00", 3, &w), 0);
    assert_int_equal(hearth_tls_feed(s.t, w.data, w.len), 0);
    assert_int_equal(hearth_tls_release(s.t), 1);
    assert_int_equal(tls13_rec_update(&crec, &crec.wr), 0); /* the client's new key */
    hearth_buf_reset(&w);
    assert_int_equal(tls13_rec_seal(&crec, TLS13_CT_APPLICATION_DATA, "after", 5, &w), 0);
    assert_int_equal(hearth_tls_feed(s.t, w.data, w.len), 0);
    assert_int_equal(s.plain.len, 5);
    assert_memory_equal(s.plain.data, "after", 5);
    hearth_buf_free(&w);
    tls13_rec_clear(&crec);
    peer_free(&s);
    SSL_free(cl);
    SSL_CTX_free(cctx);
}

static void test_release_not_tls12(void **state)
{
    (void)state;
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    assert_int_equal(SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION), 1);
    SSL *cl = SSL_new(cctx);
    SSL_set_connect_state(cl);
    peer_t s;
    peer_init(&s, fx.server, NULL);
    int client_ok = 0;
    assert_int_equal(raw_handshake(cl, &s, &client_ok), 0);
    assert_string_equal(hearth_tls_version(s.t), "TLSv1.2");
    assert_int_equal(hearth_tls_release(s.t), 0);
    peer_free(&s);
    SSL_free(cl);
    SSL_CTX_free(cctx);
}

/* ---- tls-server-end-point (RFC 5929 section 4.1) ---- */

/* A self-signed certificate for "localhost" on key, signed with md (NULL for EdDSA). */
static X509 *make_cert(EVP_PKEY *key, const EVP_MD *md)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    X509_NAME *n = X509_get_subject_name(x);
    assert_int_equal(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                                                (const unsigned char *)"localhost", -1, -1, 0),
                     1);
    assert_int_equal(X509_set_issuer_name(x, n), 1);
    assert_int_equal(X509_set_pubkey(x, key), 1);
    assert_true(X509_sign(x, key, md) > 0);
    return x;
}

/* The expected binding, computed apart from lib/tls.c: the DER hashed with md. */
static size_t der_digest(X509 *x, const EVP_MD *md, unsigned char *out)
{
    unsigned char *der = NULL;
    int dl = i2d_X509(x, &der);
    assert_true(dl > 0);
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(der, (size_t)dl, out, &n, md, NULL), 1);
    OPENSSL_free(der);
    return n;
}

/* A server context on x and key through the public API (files), connected to a client that does
 * not verify; both ends' bindings are returned. */
static void end_point_pair(X509 *x, EVP_PKEY *key, unsigned char *cv, size_t *cl, unsigned char *sv,
                           size_t *sl, int *crc, int *src)
{
    char cert[160], kf[160];
    snprintf(cert, sizeof cert, "%s/ep-cert.pem", fx.dir);
    snprintf(kf, sizeof kf, "%s/ep-key.pem", fx.dir);
    FILE *f = fopen(cert, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_X509(f, x), 1);
    fclose(f);
    f = fopen(kf, "w");
    assert_non_null(f);
    assert_int_equal(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    char *err = NULL;
    hearth_tls_ctx_t *sctx = hearth_tls_ctx_new_server(cert, kf, &err);
    assert_non_null(sctx);
    hearth_tls_ctx_t *cctx = hearth_tls_ctx_new_client(NULL, &err);
    assert_non_null(cctx);
    peer_t c, s;
    peer_init(&c, cctx, "localhost");
    peer_init(&s, sctx, NULL);
    assert_int_equal(hearth_tls_start(c.t), 0);
    pump(&c, &s, 0, NULL, NULL);
    assert_true(hearth_tls_handshake_done(c.t));
    *crc = hearth_tls_server_end_point(c.t, cv, cl);
    *src = hearth_tls_server_end_point(s.t, sv, sl);
    peer_free(&c);
    peer_free(&s);
    hearth_tls_ctx_free(sctx);
    hearth_tls_ctx_free(cctx);
    unlink(cert);
    unlink(kf);
}

static void test_server_end_point(void **state)
{
    (void)state;
    unsigned char a[HEARTH_TLS_END_POINT_MAX], b[HEARTH_TLS_END_POINT_MAX], want[EVP_MAX_MD_SIZE];
    size_t al = 99, bl = 99;
    peer_t c, s;
    peer_init(&c, fx.client, "localhost");
    assert_int_equal(hearth_tls_server_end_point(c.t, a, &al), HEARTH_EINVAL);
    assert_int_equal(al, 0);
    peer_free(&c);

    /* The generated certificate (ECDSA with SHA-256): both ends agree on its SHA-256. */
    connect_pair(&c, &s, NULL, 0);
    assert_int_equal(hearth_tls_server_end_point(c.t, a, &al), 0);
    assert_int_equal(hearth_tls_server_end_point(s.t, b, &bl), 0);
    FILE *f = fopen(fx.cert, "r");
    assert_non_null(f);
    X509 *gen = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(gen);
    assert_int_equal(der_digest(gen, EVP_sha256(), want), 32);
    X509_free(gen);
    assert_int_equal(al, 32);
    assert_int_equal(bl, 32);
    assert_memory_equal(a, want, 32);
    assert_memory_equal(b, want, 32);
    peer_free(&c);
    peer_free(&s);

    /* The signature's hash decides: SHA-384 and SHA-512 are used as they are, SHA-1 becomes
     * SHA-256; EdDSA has no single hash, so no binding. */
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    assert_non_null(ec);
    assert_non_null(ed);
    struct {
        EVP_PKEY *key;
        const EVP_MD *sign, *expect;
    } cases[] = {
        {ec, EVP_sha384(), EVP_sha384()},
        {ec, EVP_sha512(), EVP_sha512()},
        {ec, EVP_sha1(), EVP_sha256()},
        {ed, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        X509 *x = make_cert(cases[i].key, cases[i].sign);
        int crc, src;
        if (cases[i].sign == EVP_sha1()) {
            /* Debian's default security level refuses a SHA-1 signed certificate in a server
             * context, so only our client's view is checked, against a raw OpenSSL server. */
            SSL_CTX *rctx = SSL_CTX_new(TLS_server_method());
            assert_non_null(rctx);
            SSL_CTX_set_security_level(rctx, 0);
            assert_int_equal(SSL_CTX_use_certificate(rctx, x), 1);
            assert_int_equal(SSL_CTX_use_PrivateKey(rctx, cases[i].key), 1);
            SSL *rs = SSL_new(rctx);
            assert_non_null(rs);
            SSL_set_accept_state(rs);
            char *err = NULL;
            hearth_tls_ctx_t *cctx = hearth_tls_ctx_new_client(NULL, &err);
            assert_non_null(cctx);
            peer_init(&c, cctx, "localhost");
            assert_int_equal(hearth_tls_start(c.t), 0);
            int server_ok = 0;
            assert_int_equal(raw_handshake(rs, &c, &server_ok), 0);
            assert_true(hearth_tls_handshake_done(c.t));
            crc = hearth_tls_server_end_point(c.t, a, &al);
            src = crc;
            memcpy(b, a, sizeof b);
            bl = al;
            peer_free(&c);
            hearth_tls_ctx_free(cctx);
            SSL_free(rs);
            SSL_CTX_free(rctx);
        } else {
            end_point_pair(x, cases[i].key, a, &al, b, &bl, &crc, &src);
        }
        if (!cases[i].expect) {
            assert_int_equal(crc, HEARTH_EINVAL);
            assert_int_equal(src, HEARTH_EINVAL);
        } else {
            assert_int_equal(crc, 0);
            assert_int_equal(src, 0);
            size_t wl = der_digest(x, cases[i].expect, want);
            assert_int_equal(al, wl);
            assert_int_equal(bl, wl);
            assert_memory_equal(a, want, wl);
            assert_memory_equal(b, want, wl);
        }
        X509_free(x);
    }
    EVP_PKEY_free(ec);
    EVP_PKEY_free(ed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generate_cert),
        cmocka_unit_test(test_generate_cert_serial_random),
        cmocka_unit_test(test_ctx_errors),
        cmocka_unit_test(test_handshake_and_data),
        cmocka_unit_test(test_one_byte_at_a_time),
        cmocka_unit_test(test_alpn),
        cmocka_unit_test(test_exporter),
        cmocka_unit_test(test_write_before_handshake_is_queued),
        cmocka_unit_test(test_echo_from_read_plain),
        cmocka_unit_test(test_garbage_to_server),
        cmocka_unit_test(test_close_notify),
        cmocka_unit_test(test_verify_failures),
        cmocka_unit_test(test_tls11_client_rejected),
        cmocka_unit_test(test_tls12_has_no_exporter),
        cmocka_unit_test(test_server_end_point),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_release_not_tls12),
        cmocka_unit_test(test_release_after_key_updates),
        cmocka_unit_test(test_release_not_max_fragment_length),
        cmocka_unit_test(test_release_waits_for_a_split_key_update),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
