/* Unit tests for lib/scram_client.c, the client library's SCRAM: the RFC 5802 and RFC 7677
 * exchanges byte for byte, exchanges against lib/scram.c's server with each channel-binding
 * type and each gs2 flag, and refusals of a bad server (nonce, iteration count, signature,
 * e=, mandatory extension). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hearth/sasl.h"
#include "scram.h"

/* Runs the client through one RFC example: first message, server-first, final, verify. */
static void rfc_vector(hearth_scram_hash_t h, const char *nonce, const char *c1, const char *s1,
                       const char *c2, const char *s2)
{
    scram_client_t *c = scram__client_new(h, "user", 'n', NULL, NULL, 0, nonce);
    assert_non_null(c);
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(scram__client_first(c, &out, &len), 0);
    assert_string_equal(out, c1);
    free(out);
    const unsigned char *salt;
    size_t salt_len;
    unsigned it;
    assert_int_equal(scram__client_server_first(c, s1, strlen(s1), &salt, &salt_len, &it), 0);
    assert_int_equal(it, 4096);
    unsigned char salted[32];
    assert_int_equal(scram__salted_password(h, "pencil", salt, salt_len, it, salted), 0);
    assert_int_equal(scram__client_final(c, salted, &out, &len), 0);
    assert_string_equal(out, c2);
    free(out);
    assert_int_equal(scram__client_verify(c, s2, strlen(s2)), 0);
    scram__client_free(c);
}

static void test_rfc5802(void **state)
{
    (void)state;
    rfc_vector(HEARTH_SCRAM_SHA1, "fyko+d2lbbFgONRv9qkxdawL",
               "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
               "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
               "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
               "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=");
}

static void test_rfc7677(void **state)
{
    (void)state;
    rfc_vector(HEARTH_SCRAM_SHA256, "rOprNGfwEbeRWgbNEkqO", "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
               "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
               "i=4096",
               "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9"
               "ytag9zjfMHgsqmmiz7AndVQ=",
               "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
}

/* ---- against the library's server ---- */

static unsigned char exporter[32], end_point[48];

/* One exchange; returns the server's result (0 = logged in) and, through *client_rc, whether
 * the client accepted the server's signature. */
static int exchange(const char *mech, char flag, const char *cbname, const char *password,
                    int *client_rc)
{
    hearth_sasl_binding_t offered[] = {{"tls-exporter", exporter, 32},
                                       {"tls-server-end-point", end_point, 48}};
    hearth_sasl_t *ctx = hearth_sasl_new();
    hearth_sasl_server_t *s = hearth_sasl_server_new(ctx, mech, offered, 2);
    assert_non_null(s);
    hearth_scram_hash_t h = hearth_sasl_mech_hash(mech);
    hearth_scram_secret_t secret;
    const unsigned char salt[] = "0123456789abcdef";
    assert_int_equal(hearth_scram_secret_derive(h, "s3cret", salt, 16, 4096, &secret), 0);
    hearth_sasl_server_set_secret(s, &secret);
    const unsigned char *cb = NULL;
    size_t cb_len = 0;
    if (cbname) {
        bool exp = !strcmp(cbname, "tls-exporter");
        cb = exp ? exporter : end_point;
        cb_len = exp ? 32 : 48;
    }
    scram_client_t *c = scram__client_new(h, "alice", flag, cbname, cb, cb_len, NULL);
    assert_non_null(c);
    char *out = NULL, *sout = NULL;
    size_t len = 0, slen = 0;
    assert_int_equal(scram__client_first(c, &out, &len), 0);
    int rc = hearth_sasl_server_step(s, out, len, &sout, &slen);
    free(out);
    *client_rc = HEARTH_ESASL;
    if (rc == HEARTH_EAGAIN) {
        const unsigned char *st;
        size_t st_len;
        unsigned it;
        assert_int_equal(scram__client_server_first(c, sout, slen, &st, &st_len, &it), 0);
        unsigned char salted[32];
        assert_int_equal(scram__salted_password(h, password, st, st_len, it, salted), 0);
        assert_int_equal(scram__client_final(c, salted, &out, &len), 0);
        free(sout);
        sout = NULL;
        rc = hearth_sasl_server_step(s, out, len, &sout, &slen);
        free(out);
        if (rc == 0)
            *client_rc = scram__client_verify(c, sout, slen);
    }
    free(sout);
    scram__client_free(c);
    hearth_sasl_server_free(s);
    hearth_sasl_free(ctx);
    return rc;
}

static void test_against_server(void **state)
{
    (void)state;
    for (int i = 0; i < 32; i++)
        exporter[i] = (unsigned char)(i * 3 + 1);
    for (int i = 0; i < 48; i++)
        end_point[i] = (unsigned char)(i * 5 + 2);
    int crc;
    assert_int_equal(exchange("SCRAM-SHA-1", 'n', NULL, "s3cret", &crc), 0);
    assert_int_equal(crc, 0);
    assert_int_equal(exchange("SCRAM-SHA-256", 'n', NULL, "s3cret", &crc), 0);
    assert_int_equal(crc, 0);
    assert_int_equal(exchange("SCRAM-SHA-256-PLUS", 'p', "tls-exporter", "s3cret", &crc), 0);
    assert_int_equal(crc, 0);
    assert_int_equal(exchange("SCRAM-SHA-1-PLUS", 'p', "tls-server-end-point", "s3cret", &crc), 0);
    assert_int_equal(crc, 0);
    /* A wrong password: the server refuses the proof. */
    assert_int_equal(exchange("SCRAM-SHA-256", 'n', NULL, "wrong", &crc), HEARTH_EAUTH);
    /* 'y' to a server that offers -PLUS: the downgrade is noticed (RFC 5802 §6). */
    assert_int_equal(exchange("SCRAM-SHA-256", 'y', NULL, "s3cret", &crc), HEARTH_EAUTH);
}

/* ---- a bad server ---- */

static scram_client_t *after_first(void)
{
    scram_client_t *c = scram__client_new(HEARTH_SCRAM_SHA256, "user", 'n', NULL, NULL, 0, "abc");
    char *out = NULL;
    size_t len;
    assert_int_equal(scram__client_first(c, &out, &len), 0);
    free(out);
    return c;
}

static int server_first(const char *msg)
{
    scram_client_t *c = after_first();
    const unsigned char *salt;
    size_t salt_len;
    unsigned it;
    int rc = scram__client_server_first(c, msg, strlen(msg), &salt, &salt_len, &it);
    scram__client_free(c);
    return rc;
}

static void test_bad_server_first(void **state)
{
    (void)state;
    assert_int_equal(server_first("r=abcdef,s=c2FsdA==,i=4096"), 0);
    /* The nonce must extend ours, not replace it or merely repeat it. */
    assert_int_equal(server_first("r=xyzdef,s=c2FsdA==,i=4096"), HEARTH_EAUTH);
    assert_int_equal(server_first("r=abc,s=c2FsdA==,i=4096"), HEARTH_EAUTH);
    /* Too few iterations make an offline attack cheap; too many make the client spin. */
    assert_int_equal(server_first("r=abcdef,s=c2FsdA==,i=4095"), HEARTH_EAUTH);
    assert_int_equal(server_first("r=abcdef,s=c2FsdA==,i=1000001"), HEARTH_EAUTH);
    assert_int_equal(server_first("r=abcdef,s=c2FsdA==,i=-5"), HEARTH_EINVAL);
    assert_int_equal(server_first("r=abcdef,s=c2FsdA==,i=12x"), HEARTH_EINVAL);
    assert_int_equal(server_first("m=ext,r=abcdef,s=c2FsdA==,i=4096"), HEARTH_EINVAL);
    assert_int_equal(server_first("r=abcdef,s=!!!,i=4096"), HEARTH_EINVAL);
    assert_int_equal(server_first("s=c2FsdA==,r=abcdef,i=4096"), HEARTH_EINVAL);
    assert_int_equal(server_first(""), HEARTH_EINVAL);
}

static void test_bad_server_final(void **state)
{
    (void)state;
    const char *finals[] = {"e=invalid-proof", "v=AAAA", "x=1", "v=!!"};
    const int want[] = {HEARTH_EAUTH, HEARTH_EAUTH, HEARTH_EINVAL, HEARTH_EINVAL};
    for (size_t i = 0; i < sizeof(finals) / sizeof(*finals); i++) {
        scram_client_t *c = after_first();
        const unsigned char *salt;
        size_t salt_len;
        unsigned it;
        const char *s1 = "r=abcdef,s=c2FsdA==,i=4096";
        assert_int_equal(scram__client_server_first(c, s1, strlen(s1), &salt, &salt_len, &it), 0);
        unsigned char salted[32] = {0};
        char *out = NULL;
        size_t len;
        assert_int_equal(scram__client_final(c, salted, &out, &len), 0);
        free(out);
        assert_int_equal(scram__client_verify(c, finals[i], strlen(finals[i])), want[i]);
        /* One verdict per exchange. */
        assert_int_equal(scram__client_verify(c, finals[i], strlen(finals[i])), HEARTH_ESASL);
        scram__client_free(c);
    }
}

static void test_username_escaped(void **state)
{
    (void)state;
    scram_client_t *c =
        scram__client_new(HEARTH_SCRAM_SHA256, "a,b=c", 'y', NULL, NULL, 0, "nonce");
    char *out = NULL;
    size_t len;
    assert_int_equal(scram__client_first(c, &out, &len), 0);
    assert_string_equal(out, "y,,n=a=2Cb=3Dc,r=nonce");
    free(out);
    scram__client_free(c);
    /* -PLUS needs its data; a bad flag is refused. */
    assert_null(scram__client_new(HEARTH_SCRAM_SHA256, "a", 'p', "tls-exporter", NULL, 0, NULL));
    assert_null(scram__client_new(HEARTH_SCRAM_SHA256, "a", 'x', NULL, NULL, 0, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc5802),          cmocka_unit_test(test_rfc7677),
        cmocka_unit_test(test_against_server),   cmocka_unit_test(test_bad_server_first),
        cmocka_unit_test(test_bad_server_final), cmocka_unit_test(test_username_escaped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
