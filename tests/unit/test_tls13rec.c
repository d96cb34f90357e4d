/* Unit tests for the TLS 1.3 record layer (lib/tls13rec.c) against OpenSSL as the peer: an
 * OpenSSL client and server shake hands over memory BIOs, the server's traffic secrets come from
 * its key log, then the server's SSL object is freed and tls13rec carries on in its place. Every
 * suite; data both ways, large and byte by byte; KeyUpdate asked by the client; close_notify;
 * tampered, oversized and unexpected records. */
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

#include <openssl/ssl.h>

#include "hearth/buf.h"
#include "hearth/tls.h"
#include "tls13rec.h"

#define CIPHERTEXT_MAX_TEST (TLS13_RECORD_MAX + 256) /* RFC 8446 5.2 */

static char g_dir[64], g_cert[128], g_key[128];

static int group_setup(void **state)
{
    (void)state;
    static const char *const names[] = {"localhost"};
    snprintf(g_dir, sizeof g_dir, "/tmp/hearth-tls13-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    snprintf(g_cert, sizeof g_cert, "%s/cert.pem", g_dir);
    snprintf(g_key, sizeof g_key, "%s/key.pem", g_dir);
    char *err = NULL;
    int rc = hearth_tls_generate_cert(g_cert, g_key, names, 1, &err);
    free(err);
    return rc;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(g_cert);
    unlink(g_key);
    rmdir(g_dir);
    return 0;
}

/* ---- a client and a server over memory BIOs ---- */

typedef struct pair {
    SSL_CTX *cctx, *sctx;
    SSL *c, *s;
    BIO *c_in, *c_out, *s_in, *s_out; /* each SSL's own ends; the test moves bytes between */
    unsigned char csecret[TLS13_SECRET_MAX], ssecret[TLS13_SECRET_MAX];
    size_t secret_len;
} pair_t;

static pair_t *g_pair; /* the key log callback's */

static int unhex(const char *h, unsigned char *out, size_t max)
{
    size_t n = 0;
    for (; h[0] && h[1] && n < max; h += 2) {
        unsigned v;
        if (sscanf(h, "%2x", &v) != 1)
            return -1;
        out[n++] = (unsigned char)v;
    }
    return (int)n;
}

static void keylog(const SSL *ssl, const char *line)
{
    (void)ssl;
    const char *sp = strrchr(line, ' ');
    if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0)
        g_pair->secret_len = (size_t)unhex(sp + 1, g_pair->csecret, TLS13_SECRET_MAX);
    else if (strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0)
        g_pair->secret_len = (size_t)unhex(sp + 1, g_pair->ssecret, TLS13_SECRET_MAX);
}

static size_t drain(BIO *from, hearth_buf_t *to)
{
    char tmp[4096];
    int n;
    size_t total = 0;
    while ((n = BIO_read(from, tmp, sizeof tmp)) > 0) {
        assert_int_equal(hearth_buf_append(to, tmp, (size_t)n), 0);
        total += (size_t)n;
    }
    return total;
}

static void move(BIO *from, BIO *to)
{
    char tmp[4096];
    int n;
    while ((n = BIO_read(from, tmp, sizeof tmp)) > 0)
        assert_int_equal(BIO_write(to, tmp, n), n);
}

static pair_t *pair_new(const char *suite)
{
    pair_t *p = calloc(1, sizeof(*p));
    assert_non_null(p);
    g_pair = p;
    p->sctx = SSL_CTX_new(TLS_server_method());
    p->cctx = SSL_CTX_new(TLS_client_method());
    assert_int_equal(SSL_CTX_use_certificate_chain_file(p->sctx, g_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(p->sctx, g_key, SSL_FILETYPE_PEM), 1);
    SSL_CTX_set_min_proto_version(p->sctx, TLS1_3_VERSION);
    SSL_CTX_set_num_tickets(p->sctx, 0); /* nothing from the server after its Finished */
    SSL_CTX_set_keylog_callback(p->sctx, keylog);
    assert_int_equal(SSL_CTX_set_ciphersuites(p->cctx, suite), 1);
    p->c = SSL_new(p->cctx);
    p->s = SSL_new(p->sctx);
    p->c_in = BIO_new(BIO_s_mem());
    p->c_out = BIO_new(BIO_s_mem());
    p->s_in = BIO_new(BIO_s_mem());
    p->s_out = BIO_new(BIO_s_mem());
    SSL_set_bio(p->c, p->c_in, p->c_out);
    SSL_set_bio(p->s, p->s_in, p->s_out);
    SSL_set_connect_state(p->c);
    SSL_set_accept_state(p->s);
    for (int i = 0; i < 10 && !(SSL_is_init_finished(p->c) && SSL_is_init_finished(p->s)); i++) {
        SSL_do_handshake(p->c);
        move(p->c_out, p->s_in);
        SSL_do_handshake(p->s);
        move(p->s_out, p->c_in);
    }
    assert_true(SSL_is_init_finished(p->c) && SSL_is_init_finished(p->s));
    assert_string_equal(SSL_get_version(p->s), "TLSv1.3");
    return p;
}

/* The server's SSL object gone; rec in its place, from the logged secrets. */
static void detach(pair_t *p, tls13_rec_t *rec, uint64_t read_seq, uint64_t write_seq)
{
    uint16_t suite = (uint16_t)(SSL_CIPHER_get_id(SSL_get_current_cipher(p->s)) & 0xffff);
    assert_int_equal(
        tls13_rec_init(rec, suite, p->csecret, p->ssecret, p->secret_len, read_seq, write_seq), 0);
    SSL_free(p->s);
    p->s = NULL;
}

static void pair_free(pair_t *p)
{
    SSL_free(p->c);
    SSL_free(p->s);
    SSL_CTX_free(p->cctx);
    SSL_CTX_free(p->sctx);
    free(p);
}

/* What the client sent, fed to rec (in pieces of step bytes; 0: at once); plain gets the data. */
static int feed_all(tls13_rec_t *rec, pair_t *p, size_t step, hearth_buf_t *plain,
                    hearth_buf_t *reply, tls13_feed_t *f)
{
    hearth_buf_t wire = HEARTH_BUF_INIT;
    drain(p->c_out, &wire);
    size_t have = 0, off = 0;
    int rc = 0;
    int closed = 0;
    while (rc == 0 && off < wire.len) {
        have = step ? (have + step > wire.len ? wire.len : have + step) : wire.len;
        rc = tls13_rec_feed(rec, wire.data + off, have - off, plain, reply, f);
        off += f->used;
        closed |= f->closed;
        if (f->closed)
            break;
    }
    f->closed = closed;
    hearth_buf_free(&wire);
    return rc;
}

static void client_reads(pair_t *p, const hearth_buf_t *wire, const char *want, size_t want_len)
{
    assert_int_equal(BIO_write(p->c_in, wire->data, (int)wire->len), (int)wire->len);
    char *got = malloc(want_len + 1);
    size_t n = 0;
    while (n < want_len) {
        int r = SSL_read(p->c, got + n, (int)(want_len - n));
        assert_true(r > 0);
        n += (size_t)r;
    }
    assert_memory_equal(got, want, want_len);
    free(got);
}

/* ---- tests ---- */

static void both_ways(const char *suite)
{
    pair_t *p = pair_new(suite);
    tls13_rec_t rec;
    detach(p, &rec, 0, 0);
    hearth_buf_t plain = HEARTH_BUF_INIT, reply = HEARTH_BUF_INIT, out = HEARTH_BUF_INIT;
    tls13_feed_t f;

    assert_int_equal(SSL_write(p->c, "<message/>", 10), 10);
    assert_int_equal(feed_all(&rec, p, 0, &plain, &reply, &f), 0);
    assert_int_equal(plain.len, 10);
    assert_memory_equal(plain.data, "<message/>", 10);
    assert_int_equal(reply.len, 0);

    assert_int_equal(tls13_rec_seal(&rec, TLS13_CT_APPLICATION_DATA, "<ok/>", 5, &out), 0);
    client_reads(p, &out, "<ok/>", 5);

    /* 100,000 bytes each way: several records, fed a byte at a time once */
    size_t big = 100000;
    char *data = malloc(big);
    for (size_t i = 0; i < big; i++)
        data[i] = (char)('a' + i % 26);
    for (size_t done = 0; done < big;) {
        int w = SSL_write(p->c, data + done, (int)(big - done));
        assert_true(w > 0);
        done += (size_t)w;
    }
    hearth_buf_reset(&plain);
    assert_int_equal(feed_all(&rec, p, 1, &plain, &reply, &f), 0);
    assert_int_equal(plain.len, big);
    assert_memory_equal(plain.data, data, big);
    hearth_buf_reset(&out);
    assert_int_equal(tls13_rec_seal(&rec, TLS13_CT_APPLICATION_DATA, data, big, &out), 0);
    assert_int_equal(rec.wr.seq, 1 + (big + TLS13_RECORD_MAX - 1) / TLS13_RECORD_MAX);
    client_reads(p, &out, data, big);
    free(data);

    hearth_buf_free(&plain);
    hearth_buf_free(&reply);
    hearth_buf_free(&out);
    tls13_rec_clear(&rec);
    pair_free(p);
}

static void test_aes128(void **state)
{
    (void)state;
    both_ways("TLS_AES_128_GCM_SHA256");
}

static void test_aes256(void **state)
{
    (void)state;
    both_ways("TLS_AES_256_GCM_SHA384");
}

static void test_chacha(void **state)
{
    (void)state;
    both_ways("TLS_CHACHA20_POLY1305_SHA256");
}

/* Records OpenSSL wrote and read before the switch count: the sequence numbers go on. */
static void test_sequence_numbers_carry_on(void **state)
{
    (void)state;
    pair_t *p = pair_new("TLS_AES_128_GCM_SHA256");
    char tmp[16];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(SSL_write(p->c, "x", 1), 1);
        move(p->c_out, p->s_in);
        assert_int_equal(SSL_read(p->s, tmp, sizeof tmp), 1);
    }
    for (int i = 0; i < 2; i++) {
        assert_int_equal(SSL_write(p->s, "y", 1), 1);
        move(p->s_out, p->c_in);
        assert_int_equal(SSL_read(p->c, tmp, sizeof tmp), 1);
    }
    tls13_rec_t rec;
    detach(p, &rec, 3, 2);
    hearth_buf_t plain = HEARTH_BUF_INIT, reply = HEARTH_BUF_INIT, out = HEARTH_BUF_INIT;
    tls13_feed_t f;
    assert_int_equal(SSL_write(p->c, "next", 4), 4);
    assert_int_equal(feed_all(&rec, p, 0, &plain, &reply, &f), 0);
    assert_int_equal(plain.len, 4);
    assert_int_equal(tls13_rec_seal(&rec, TLS13_CT_APPLICATION_DATA, "back", 4, &out), 0);
    client_reads(p, &out, "back", 4);

    /* one off: the record does not open */
    tls13_rec_t wrong;
    hearth_buf_reset(&plain);
    assert_int_equal(SSL_write(p->c, "more", 4), 4);
    hearth_buf_t wire = HEARTH_BUF_INIT;
    drain(p->c_out, &wire);
    memcpy(&wrong, &rec, sizeof(rec));
    wrong.rd.seq++;
    assert_int_equal(tls13_rec_feed(&wrong, wire.data, wire.len, &plain, &reply, &f), HEARTH_ETLS);
    assert_int_equal(f.alert, TLS13_ALERT_BAD_RECORD_MAC);
    assert_int_equal(plain.len, 0);
    assert_int_equal(tls13_rec_feed(&rec, wire.data, wire.len, &plain, &reply, &f), 0);
    assert_int_equal(plain.len, 4);
    hearth_buf_free(&wire);
    hearth_buf_free(&plain);
    hearth_buf_free(&reply);
    hearth_buf_free(&out);
    pair_free(p);
}

/* The client asks for new keys: the read key changes, the answer goes out under the old write
 * key, then the write key changes; data goes on both ways, and again. */
static void test_key_update_requested(void **state)
{
    (void)state;
    pair_t *p = pair_new("TLS_AES_256_GCM_SHA384");
    tls13_rec_t rec;
    detach(p, &rec, 0, 0);
    hearth_buf_t plain = HEARTH_BUF_INIT, reply = HEARTH_BUF_INIT, out = HEARTH_BUF_INIT;
    tls13_feed_t f;
    for (int round = 0; round < 2; round++) {
        unsigned char before[TLS13_SECRET_MAX];
        memcpy(before, rec.wr.secret, sizeof(before));
        assert_int_equal(SSL_key_update(p->c, SSL_KEY_UPDATE_REQUESTED), 1);
        assert_int_equal(SSL_write(p->c, "after", 5), 5);
        hearth_buf_reset(&plain);
        hearth_buf_reset(&reply);
        assert_int_equal(feed_all(&rec, p, round ? 3 : 0, &plain, &reply, &f), 0);
        assert_int_equal(plain.len, 5);
        assert_memory_equal(plain.data, "after", 5);
        assert_true(reply.len > 0); /* our KeyUpdate */
        assert_int_equal(rec.rd.seq, 1);
        assert_int_equal(rec.wr.seq, 0);
        assert_memory_not_equal(before, rec.wr.secret, rec.hash_len);
        hearth_buf_reset(&out);
        assert_int_equal(hearth_buf_append(&out, reply.data, reply.len), 0);
        assert_int_equal(tls13_rec_seal(&rec, TLS13_CT_APPLICATION_DATA, "fine", 4, &out), 0);
        client_reads(p, &out, "fine", 4);
    }
    /* not asked: the read key changes, nothing is sent */
    assert_int_equal(SSL_key_update(p->c, SSL_KEY_UPDATE_NOT_REQUESTED), 1);
    assert_int_equal(SSL_write(p->c, "quiet", 5), 5);
    hearth_buf_reset(&plain);
    hearth_buf_reset(&reply);
    assert_int_equal(feed_all(&rec, p, 0, &plain, &reply, &f), 0);
    assert_int_equal(plain.len, 5);
    assert_int_equal(reply.len, 0);
    hearth_buf_free(&plain);
    hearth_buf_free(&reply);
    hearth_buf_free(&out);
    pair_free(p);
}

static void test_close_notify(void **state)
{
    (void)state;
    pair_t *p = pair_new("TLS_CHACHA20_POLY1305_SHA256");
    tls13_rec_t rec;
    detach(p, &rec, 0, 0);
    hearth_buf_t plain = HEARTH_BUF_INIT, reply = HEARTH_BUF_INIT, out = HEARTH_BUF_INIT;
    tls13_feed_t f;
    assert_int_equal(SSL_write(p->c, "bye", 3), 3);
    SSL_shutdown(p->c);
    assert_int_equal(feed_all(&rec, p, 0, &plain, &reply, &f), 0);
    assert_true(f.closed);
    assert_int_equal(plain.len, 3);
    /* ours, as the client sees it */
    unsigned char alert[2] = {1, TLS13_ALERT_CLOSE_NOTIFY};
    assert_int_equal(tls13_rec_seal(&rec, TLS13_CT_ALERT, alert, 2, &out), 0);
    assert_int_equal(BIO_write(p->c_in, out.data, (int)out.len), (int)out.len);
    char tmp[8];
    assert_int_equal(SSL_read(p->c, tmp, sizeof tmp), 0);
    assert_int_equal(SSL_get_error(p->c, 0), SSL_ERROR_ZERO_RETURN);
    hearth_buf_free(&plain);
    hearth_buf_free(&reply);
    hearth_buf_free(&out);
    pair_free(p);
}

/* Bad records: each refused with its alert and nothing delivered. */
static void test_bad_records(void **state)
{
    (void)state;
    pair_t *p = pair_new("TLS_AES_128_GCM_SHA256");
    tls13_rec_t rec, fresh;
    detach(p, &rec, 0, 0);
    memcpy(&fresh, &rec, sizeof(rec));
    hearth_buf_t plain = HEARTH_BUF_INIT, reply = HEARTH_BUF_INIT, wire = HEARTH_BUF_INIT;
    tls13_feed_t f;
    assert_int_equal(SSL_write(p->c, "<message/>", 10), 10);
    drain(p->c_out, &wire);

    for (size_t i = 0; i < wire.len; i++) { /* any byte flipped: header, body or tag */
        memcpy(&rec, &fresh, sizeof(rec));
        wire.data[i] ^= 0x01;
        int rc = tls13_rec_feed(&rec, wire.data, wire.len, &plain, &reply, &f);
        if (rc == 0)
            assert_int_equal(f.used, 0); /* a longer length: the record is not complete */
        else
            assert_int_equal(rc, HEARTH_ETLS);
        wire.data[i] ^= 0x01;
        assert_int_equal(plain.len, 0);
    }
    unsigned char over[5] = {23, 3, 3, (CIPHERTEXT_MAX_TEST + 1) >> 8,
                             (CIPHERTEXT_MAX_TEST + 1) & 0xff};
    assert_int_equal(tls13_rec_feed(&rec, over, 5, &plain, &reply, &f), HEARTH_ETLS);
    assert_int_equal(f.alert, TLS13_ALERT_RECORD_OVERFLOW);
    unsigned char plain_alert[7] = {21, 3, 3, 0, 2, 1, 0}; /* unprotected: not any more */
    assert_int_equal(tls13_rec_feed(&rec, plain_alert, 7, &plain, &reply, &f), HEARTH_ETLS);
    assert_int_equal(f.alert, TLS13_ALERT_UNEXPECTED_MESSAGE);
    unsigned char short_rec[6] = {23, 3, 3, 0, 1, 0};
    assert_int_equal(tls13_rec_feed(&rec, short_rec, 6, &plain, &reply, &f), HEARTH_ETLS);
    assert_int_equal(f.alert, TLS13_ALERT_DECODE_ERROR);

    /* well protected, wrong inside: a handshake message other than KeyUpdate, an alert of three
     * bytes, a KeyUpdate asking for 2, an unknown content type, a record all padding */
    struct {
        uint8_t type;
        const char *bytes;
        size_t len;
        uint8_t alert;
    } inner[] = {
        {TLS13_CT_HANDSHAKE, "\x04\x00\x00\x01\x00", 5, TLS13_ALERT_UNEXPECTED_MESSAGE},
        {TLS13_CT_ALERT, "\x01\x00\x00", 3, TLS13_ALERT_DECODE_ERROR},
        {TLS13_CT_HANDSHAKE, "\x18\x00\x00\x01\x02", 5, TLS13_ALERT_ILLEGAL_PARAMETER},
        {TLS13_CT_HANDSHAKE, "\x18\x00\x00\x01\x00\x18", 6, TLS13_ALERT_UNEXPECTED_MESSAGE},
        {20, "\x01", 1, TLS13_ALERT_UNEXPECTED_MESSAGE},
        {0, "", 0, TLS13_ALERT_UNEXPECTED_MESSAGE},
    };
    for (size_t i = 0; i < sizeof(inner) / sizeof(inner[0]); i++) {
        /* sealed with the read direction's keys, as the peer would */
        tls13_rec_t peer;
        memcpy(&peer, &fresh, sizeof(peer));
        memcpy(&peer.wr, &fresh.rd, sizeof(peer.wr));
        hearth_buf_t bad = HEARTH_BUF_INIT;
        assert_int_equal(tls13_rec_seal(&peer, inner[i].type, inner[i].bytes, inner[i].len, &bad),
                         0);
        memcpy(&rec, &fresh, sizeof(rec));
        assert_int_equal(tls13_rec_feed(&rec, bad.data, bad.len, &plain, &reply, &f), HEARTH_ETLS);
        assert_int_equal(f.alert, inner[i].alert);
        hearth_buf_free(&bad);
    }
    assert_int_equal(plain.len, 0);
    hearth_buf_free(&plain);
    hearth_buf_free(&reply);
    hearth_buf_free(&wire);
    pair_free(p);
}

static void test_init_refuses(void **state)
{
    (void)state;
    unsigned char s[TLS13_SECRET_MAX] = {0};
    tls13_rec_t rec;
    assert_int_equal(tls13_rec_init(&rec, 0x1304, s, s, 32, 0, 0), HEARTH_EINVAL); /* CCM */
    assert_int_equal(tls13_rec_init(&rec, TLS13_AES_256_GCM_SHA384, s, s, 32, 0, 0), HEARTH_EINVAL);
    assert_int_equal(tls13_rec_init(&rec, TLS13_AES_128_GCM_SHA256, s, s, 32, 0, 0), 0);
    tls13_rec_clear(&rec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_aes128),
        cmocka_unit_test(test_aes256),
        cmocka_unit_test(test_chacha),
        cmocka_unit_test(test_sequence_numbers_carry_on),
        cmocka_unit_test(test_key_update_requested),
        cmocka_unit_test(test_close_notify),
        cmocka_unit_test(test_bad_records),
        cmocka_unit_test(test_init_refuses),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
