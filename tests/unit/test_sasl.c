/* Unit tests for lib/sasl.c: RFC 5802/7677 vectors checked against OpenSSL computed here, full
 * client↔server exchanges for the five mechanisms, failures (wrong password, unknown user,
 * channel-binding mismatch and downgrade), the first-message parser and the base64 helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hearth/sasl.h"
#include "scram.h"

static const char *const all_mechs[] = {"PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS",
                                        "SCRAM-SHA-256-PLUS"};
static const unsigned char server_secret[] = "test server secret, 32 bytes ok";

static void cb_fill(unsigned char cb[32], unsigned char seed)
{
    for (int i = 0; i < 32; i++)
        cb[i] = (unsigned char)(seed + i * 7);
}

/* A server offering tls-exporter with data (when not NULL) as its only binding. */
static hearth_sasl_server_t *server_new(hearth_sasl_t *ctx, const char *mech,
                                        const unsigned char *exporter)
{
    hearth_sasl_binding_t b = {"tls-exporter", exporter, 32};
    return hearth_sasl_server_new(ctx, mech, exporter ? &b : NULL, exporter ? 1 : 0);
}

static size_t b64d(const char *s, unsigned char *out, size_t cap)
{
    char *d;
    size_t n;
    assert_int_equal(hearth_base64_decode(s, strlen(s), &d, &n), 0);
    assert_true(n <= cap);
    memcpy(out, d, n);
    free(d);
    return n;
}

static char *b64e(const unsigned char *in, size_t n)
{
    char *s;
    assert_int_equal(hearth_base64_encode(in, n, &s), 0);
    return s;
}

/* ---- RFC vectors ---- */

struct vector {
    hearth_scram_hash_t h;
    const char *salt_b64;
    const char *client_first_bare, *server_first, *client_final_no_proof;
    const char *proof, *server_sig;
};

static const struct vector rfc5802 = {
    HEARTH_SCRAM_SHA1,
    "QSXCR+Q6sek8bf92",
    "n=user,r=fyko+d2lbbFgONRv9qkxdawL",
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j",
    "v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
    "rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

static const struct vector rfc7677 = {
    HEARTH_SCRAM_SHA256,
    "W22ZaJ0SNY7soEsUEjb6gQ==",
    "n=user,r=rOprNGfwEbeRWgbNEkqO",
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
    "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

static void check_vector(const struct vector *v)
{
    const EVP_MD *md = v->h == HEARTH_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
    int hl = EVP_MD_get_size(md);
    unsigned char salt[64], salted[64], ck[64], sk[64], stk[64], tmp[64];
    unsigned int l;
    size_t salt_len = b64d(v->salt_b64, salt, sizeof(salt));

    hearth_scram_secret_t s;
    assert_int_equal(hearth_scram_secret_derive(v->h, "pencil", salt, salt_len, 4096, &s), 0);
    assert_string_equal(s.salt, v->salt_b64);
    assert_int_equal(s.iterations, 4096);

    /* Independent computation (RFC 5802 §3). */
    assert_int_equal(PKCS5_PBKDF2_HMAC("pencil", 6, salt, (int)salt_len, 4096, md, hl, salted), 1);
    assert_non_null(HMAC(md, salted, hl, (const unsigned char *)"Client Key", 10, ck, &l));
    assert_non_null(HMAC(md, salted, hl, (const unsigned char *)"Server Key", 10, sk, &l));
    assert_int_equal(EVP_Digest(ck, (size_t)hl, stk, NULL, md, NULL), 1);
    char *e = b64e(stk, (size_t)hl);
    assert_string_equal(s.stored_key, e);
    free(e);
    e = b64e(sk, (size_t)hl);
    assert_string_equal(s.server_key, e);
    free(e);

    /* The RFC's exchange from the derived keys alone, as a server holding them verifies it. */
    char auth[512];
    snprintf(auth, sizeof(auth), "%s,%s,%s", v->client_first_bare, v->server_first,
             v->client_final_no_proof);
    unsigned char stored[64], server[64], proof[64], csig[64], ssig[64];
    assert_int_equal(b64d(s.stored_key, stored, sizeof(stored)), hl);
    assert_int_equal(b64d(s.server_key, server, sizeof(server)), hl);
    assert_int_equal(b64d(v->proof, proof, sizeof(proof)), hl);
    assert_non_null(HMAC(md, server, hl, (unsigned char *)auth, strlen(auth), ssig, &l));
    e = b64e(ssig, (size_t)hl);
    assert_string_equal(e, v->server_sig);
    free(e);
    assert_non_null(HMAC(md, stored, hl, (unsigned char *)auth, strlen(auth), csig, &l));
    for (int i = 0; i < hl; i++)
        tmp[i] = proof[i] ^ csig[i]; /* ClientKey */
    assert_memory_equal(tmp, ck, (size_t)hl);
    assert_int_equal(EVP_Digest(tmp, (size_t)hl, csig, NULL, md, NULL), 1);
    assert_memory_equal(csig, stored, (size_t)hl);

    assert_int_equal(hearth_scram_secret_check(v->h, &s, "pencil"), 0);
    assert_int_equal(hearth_scram_secret_check(v->h, &s, "pencil2"), HEARTH_EAUTH);
    assert_int_equal(hearth_scram_secret_check(v->h, &s, ""), HEARTH_EAUTH);
}

/* The RFC's example exchange replayed against our server, byte for byte: the server's nonce
 * part is fixed to the example's, everything else is computed from the derived secret. */
static void replay_vector(const struct vector *v, const char *mech)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
    unsigned char salt[64];
    size_t salt_len = b64d(v->salt_b64, salt, sizeof(salt));
    hearth_scram_secret_t secret;
    assert_int_equal(hearth_scram_secret_derive(v->h, "pencil", salt, salt_len, 4096, &secret), 0);
    /* server nonce = the server-first r= minus the client's r= */
    const char *cr = strstr(v->client_first_bare, ",r=") + 3;
    const char *sr = v->server_first + 2 + strlen(cr);
    char snonce[64];
    snprintf(snonce, sizeof(snonce), "%.*s", (int)(strchr(sr, ',') - sr), sr);

    for (int wrong = 0; wrong < 2; wrong++) {
        hearth_sasl_server_t *s = hearth_sasl_server_new(ctx, mech, NULL, 0);
        assert_non_null(s);
        hearth_sasl__server_fix_nonce(s, snonce);
        hearth_sasl_server_set_secret(s, &secret);
        char first[256], final[256], *out;
        size_t out_len;
        snprintf(first, sizeof(first), "n,,%s", v->client_first_bare);
        assert_int_equal(hearth_sasl_server_step(s, first, strlen(first), &out, &out_len),
                         HEARTH_EAGAIN);
        assert_int_equal(out_len, strlen(v->server_first));
        assert_string_equal(out, v->server_first);
        free(out);
        snprintf(final, sizeof(final), "%s,p=%s", v->client_final_no_proof, v->proof);
        if (wrong) /* one proof bit off */
            final[strlen(final) - 3] ^= 1;
        int rc = hearth_sasl_server_step(s, final, strlen(final), &out, &out_len);
        if (wrong) {
            assert_int_equal(rc, HEARTH_EAUTH);
            assert_null(out);
        } else {
            assert_int_equal(rc, 0);
            char want[128];
            snprintf(want, sizeof(want), "v=%s", v->server_sig);
            assert_int_equal(out_len, strlen(want));
            assert_string_equal(out, want);
            free(out);
        }
        /* Nothing after the end. */
        assert_int_equal(hearth_sasl_server_step(s, "x", 1, &out, &out_len), HEARTH_ESASL);
        hearth_sasl_server_free(s);
    }
    hearth_sasl_free(ctx);
}

static void test_rfc5802_vector(void **state)
{
    check_vector(&rfc5802);
    replay_vector(&rfc5802, "SCRAM-SHA-1");
}

static void test_rfc7677_vector(void **state)
{
    check_vector(&rfc7677);
    replay_vector(&rfc7677, "SCRAM-SHA-256");
}

static void test_secret_misc(void **state)
{
    hearth_scram_secret_t a, b;
    unsigned char salt[16] = {1, 2, 3};
    /* SASLprep: SOFT HYPHEN maps to nothing, so "I\u00ADX" is "IX" (RFC 4013 §3). */
    assert_int_equal(
        hearth_scram_secret_derive(HEARTH_SCRAM_SHA256, "I\xC2\xADX", salt, 16, 4096, &a), 0);
    assert_int_equal(hearth_scram_secret_derive(HEARTH_SCRAM_SHA256, "IX", salt, 16, 4096, &b), 0);
    assert_string_equal(a.stored_key, b.stored_key);
    assert_int_equal(hearth_scram_secret_check(HEARTH_SCRAM_SHA256, &a, "IX"), 0);
    /* Refused inputs. */
    assert_int_equal(hearth_scram_secret_derive(HEARTH_SCRAM_SHA256, "", salt, 16, 4096, &a),
                     HEARTH_EINVAL);
    assert_int_equal(hearth_scram_secret_derive(HEARTH_SCRAM_SHA256, "x", salt, 16, 100, &a),
                     HEARTH_EINVAL);
    assert_int_equal(hearth_scram_secret_derive(HEARTH_SCRAM_SHA256, "x", salt, 0, 4096, &a),
                     HEARTH_EINVAL);
    assert_int_equal(hearth_scram_secret_derive(3, "x", salt, 16, 4096, &a), HEARTH_EINVAL);
    /* Prohibited output (U+0007 control character). */
    assert_int_equal(hearth_scram_secret_derive(HEARTH_SCRAM_SHA256, "a\x07", salt, 16, 4096, &a),
                     HEARTH_EINVAL);
    /* New: random salt of 16 bytes. */
    assert_int_equal(hearth_scram_secret_new(HEARTH_SCRAM_SHA1, "pw", 4096, &a), 0);
    assert_int_equal(hearth_scram_secret_new(HEARTH_SCRAM_SHA1, "pw", 4096, &b), 0);
    assert_int_equal(strlen(a.salt), 24);
    assert_string_not_equal(a.salt, b.salt);
    assert_string_not_equal(a.stored_key, b.stored_key);
    assert_int_equal(strlen(a.stored_key), 28);
    assert_int_equal(hearth_scram_secret_check(HEARTH_SCRAM_SHA1, &a, "pw"), 0);
    /* A malformed stored secret is not a wrong password. */
    strcpy(b.stored_key, "!!");
    assert_int_equal(hearth_scram_secret_check(HEARTH_SCRAM_SHA1, &b, "pw"), HEARTH_EINVAL);
    assert_int_equal(hearth_scram_secret_check(HEARTH_SCRAM_SHA256, &a, "pw"), HEARTH_EINVAL);
}

static void test_fake_secret(void **state)
{
    hearth_scram_secret_t a, b, c, d, real;
    assert_int_equal(hearth_scram_secret_fake(HEARTH_SCRAM_SHA256, server_secret,
                                              sizeof(server_secret), "ghost", &a),
                     0);
    assert_int_equal(hearth_scram_secret_fake(HEARTH_SCRAM_SHA256, server_secret,
                                              sizeof(server_secret), "ghost", &b),
                     0);
    assert_int_equal(hearth_scram_secret_fake(HEARTH_SCRAM_SHA256, server_secret,
                                              sizeof(server_secret), "ghost2", &c),
                     0);
    assert_int_equal(hearth_scram_secret_fake(HEARTH_SCRAM_SHA1, server_secret,
                                              sizeof(server_secret), "ghost", &d),
                     0);
    assert_string_equal(a.salt, b.salt);
    assert_string_not_equal(a.salt, c.salt);
    assert_string_not_equal(a.salt, d.salt);
    assert_string_not_equal(a.stored_key, b.stored_key); /* keys unguessable */
    assert_int_equal(a.iterations, HEARTH_SCRAM_MIN_ITERATIONS);

    /* Salt as specified: HMAC-SHA256(server_secret, "SHA-256" 0 username)[0..16). */
    unsigned char msg[] = "SHA-256\0ghost", mac[32];
    unsigned int l;
    HMAC(EVP_sha256(), server_secret, sizeof(server_secret), msg, sizeof(msg) - 1, mac, &l);
    char *e = b64e(mac, 16);
    assert_string_equal(a.salt, e);
    free(e);

    /* Looks like a real secret. */
    assert_int_equal(hearth_scram_secret_new(HEARTH_SCRAM_SHA256, "pw", 4096, &real), 0);
    assert_int_equal(strlen(a.salt), strlen(real.salt));
    assert_int_equal(strlen(a.stored_key), strlen(real.stored_key));
    assert_int_equal(strlen(a.server_key), strlen(real.server_key));
}

/* ---- exchanges ---- */

struct account {
    const char *user;
    hearth_scram_secret_t sha1, sha256;
};

static struct account alice; /* password "correct horse" */

static int setup_accounts(void **state)
{
    alice.user = "alice";
    if (hearth_scram_secret_new(HEARTH_SCRAM_SHA1, "correct horse", 4096, &alice.sha1) ||
        hearth_scram_secret_new(HEARTH_SCRAM_SHA256, "correct horse", 4096, &alice.sha256))
        return -1;
    return 0;
}

struct run {
    const char *mech;
    const char *user, *password, *authzid;
    const unsigned char *client_cb, *server_cb;
    /* results */
    int server_rc, client_rc;
    char server_first[512]; /* SCRAM server-first message */
    char authcid[64], authzid_seen[64];
    char cbflag;
};

/* Drives one exchange as the c2s code would: parse the first message, fetch the secret (the
 * account table or a fake), set it, step until the server says done; the client checks the end. */
static void run_exchange(hearth_sasl_t *ctx, struct run *r)
{
    hearth_sasl_client_t *c =
        hearth_sasl_client_new(ctx, r->mech, r->user, r->password, r->authzid, r->client_cb, 32);
    hearth_sasl_server_t *s = server_new(ctx, r->mech, r->server_cb);
    assert_non_null(c);
    assert_non_null(s);
    assert_int_equal(hearth_sasl_server_step_is_costly(s), strcmp(r->mech, "PLAIN") == 0);

    char *out = NULL, *sout = NULL;
    size_t out_len = 0, sout_len = 0;
    int crc = hearth_sasl_client_step(c, NULL, 0, &out, &out_len);
    assert_true(crc == HEARTH_EAGAIN || crc == 0);
    assert_non_null(out);

    hearth_sasl_initial_t ini;
    const char *reason;
    assert_int_equal(hearth_sasl_parse_initial(r->mech, out, out_len, &ini, &reason), 0);
    snprintf(r->authcid, sizeof(r->authcid), "%s", ini.authcid);
    snprintf(r->authzid_seen, sizeof(r->authzid_seen), "%s", ini.authzid ? ini.authzid : "");
    r->cbflag = ini.cbflag;
    hearth_scram_secret_t secret;
    hearth_scram_hash_t h = hearth_sasl_mech_hash(r->mech);
    if (strcmp(ini.authcid, alice.user) == 0)
        secret = h == HEARTH_SCRAM_SHA1 ? alice.sha1 : alice.sha256;
    else
        assert_int_equal(
            hearth_scram_secret_fake(h, server_secret, sizeof(server_secret), ini.authcid, &secret),
            0);
    hearth_sasl_initial_clear(&ini);
    hearth_sasl_server_set_secret(s, &secret);

    r->client_rc = crc;
    int srv;
    for (int round = 0;; round++) {
        assert_true(round < 4);
        srv = hearth_sasl_server_step(s, out, out_len, &sout, &sout_len);
        free(out);
        out = NULL;
        if (round == 0 && srv == HEARTH_EAGAIN && strncmp(r->mech, "SCRAM", 5) == 0)
            snprintf(r->server_first, sizeof(r->server_first), "%.*s", (int)sout_len, sout);
        if (srv != HEARTH_EAGAIN)
            break;
        crc = hearth_sasl_client_step(c, sout, sout_len, &out, &out_len);
        free(sout);
        sout = NULL;
        r->client_rc = crc;
        if (crc != HEARTH_EAGAIN)
            break;
    }
    r->server_rc = srv;
    if (srv == 0 && sout) { /* success data: the client verifies the server */
        r->client_rc = hearth_sasl_client_step(c, sout, sout_len, &out, &out_len);
        free(out);
        out = NULL;
    }
    free(sout);
    free(out);
    hearth_sasl_server_free(s);
    hearth_sasl_client_free(c);
}

static void test_exchange_all(void **state)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
    assert_non_null(ctx);
    unsigned char cb[32];
    cb_fill(cb, 1);
    for (size_t i = 0; i < sizeof(all_mechs) / sizeof(all_mechs[0]); i++) {
        int plus = hearth_sasl_mech_is_plus(all_mechs[i]);
        /* Without binding data on either side, then (non-PLUS) with it on the server only. */
        for (int with_cb = plus; with_cb < 2; with_cb++) {
            struct run r = {.mech = all_mechs[i],
                            .user = "alice",
                            .password = "correct horse",
                            .client_cb = plus ? cb : NULL,
                            .server_cb = with_cb ? cb : NULL};
            run_exchange(ctx, &r);
            assert_int_equal(r.server_rc, 0);
            assert_int_equal(r.client_rc, 0);
            assert_string_equal(r.authcid, "alice");
            assert_string_equal(r.authzid_seen, "");
            if (strcmp(all_mechs[i], "PLAIN") != 0)
                assert_int_equal(r.cbflag, plus ? 'p' : 'n');
        }
    }
    hearth_sasl_free(ctx);
}

static void test_exchange_authzid(void **state)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
    for (size_t i = 0; i < 3; i++) {
        struct run r = {.mech = all_mechs[i],
                        .user = "alice",
                        .password = "correct horse",
                        .authzid = "alice@example.com"};
        run_exchange(ctx, &r);
        assert_int_equal(r.server_rc, 0); /* the authzid policy is the caller's */
        assert_int_equal(r.client_rc, 0);
        assert_string_equal(r.authzid_seen, "alice@example.com");
    }
    hearth_sasl_free(ctx);
}

static void test_exchange_wrong_password(void **state)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
    unsigned char cb[32];
    cb_fill(cb, 1);
    for (size_t i = 0; i < sizeof(all_mechs) / sizeof(all_mechs[0]); i++) {
        struct run r = {.mech = all_mechs[i],
                        .user = "alice",
                        .password = "battery staple",
                        .client_cb = hearth_sasl_mech_is_plus(all_mechs[i]) ? cb : NULL,
                        .server_cb = cb};
        run_exchange(ctx, &r);
        assert_int_equal(r.server_rc, HEARTH_EAUTH);
    }
    hearth_sasl_free(ctx);
}

/* Strip the nonce: what is left of a server-first message must not tell users apart. */
static void challenge_shape(const char *sf, char *shape, size_t cap)
{
    const char *s = strstr(sf, ",s=");
    assert_non_null(s);
    assert_true(strncmp(sf, "r=", 2) == 0);
    const char *i = strstr(s, ",i=");
    assert_non_null(i);
    snprintf(shape, cap, "r=<%zu>,s=<%zu>%s", (size_t)(s - sf - 2), (size_t)(i - s - 3), i);
}

static void test_exchange_unknown_user(void **state)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
    for (size_t i = 0; i < 5; i++) {
        if (strcmp(all_mechs[i], "PLAIN") == 0)
            continue;
        unsigned char cb[32];
        cb_fill(cb, 1);
        const unsigned char *ccb = hearth_sasl_mech_is_plus(all_mechs[i]) ? cb : NULL;
        struct run real = {.mech = all_mechs[i],
                           .user = "alice",
                           .password = "wrong",
                           .client_cb = ccb,
                           .server_cb = cb};
        struct run fake = {.mech = all_mechs[i],
                           .user = "alicf",
                           .password = "correct horse",
                           .client_cb = ccb,
                           .server_cb = cb};
        struct run fake2 = fake;
        run_exchange(ctx, &real);
        run_exchange(ctx, &fake);
        run_exchange(ctx, &fake2);
        assert_int_equal(real.server_rc, HEARTH_EAUTH);
        assert_int_equal(fake.server_rc, HEARTH_EAUTH);
        char a[128], b[128];
        challenge_shape(real.server_first, a, sizeof(a));
        challenge_shape(fake.server_first, b, sizeof(b));
        assert_string_equal(a, b);
        /* The same salt every time for the same unknown name. */
        assert_string_equal(strstr(fake.server_first, ",s="), strstr(fake2.server_first, ",s="));
    }
    /* PLAIN for an unknown user fails like a wrong password. */
    struct run p = {.mech = "PLAIN", .user = "nobody", .password = "x"};
    run_exchange(ctx, &p);
    assert_int_equal(p.server_rc, HEARTH_EAUTH);
    hearth_sasl_free(ctx);
}

static void test_exchange_cb_mismatch(void **state)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
    unsigned char cb1[32], cb2[32];
    cb_fill(cb1, 1);
    cb_fill(cb2, 2);
    const char *plus[] = {"SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"};
    for (int i = 0; i < 2; i++) {
        struct run r = {.mech = plus[i],
                        .user = "alice",
                        .password = "correct horse",
                        .client_cb = cb1,
                        .server_cb = cb2};
        run_exchange(ctx, &r);
        assert_int_equal(r.server_rc, HEARTH_EAUTH);
    }
    hearth_sasl_free(ctx);
}

/* A SCRAM client written here from RFC 5802 with OpenSSL: it sends what gsasl's client will not
 * ('y', tls-server-end-point) and checks the server against an implementation of its own. The
 * server offers the noffered bindings; the client sends gs2 and, after it in c=, client_cb. */
static int manual_scram_cb(hearth_sasl_t *ctx, const char *mech, const char *gs2,
                           const hearth_sasl_binding_t *offered, size_t noffered,
                           const unsigned char *client_cb, size_t client_cb_len,
                           const char *password, int *verified)
{
    hearth_scram_hash_t h = hearth_sasl_mech_hash(mech);
    const EVP_MD *md = h == HEARTH_SCRAM_SHA1 ? EVP_sha1() : EVP_sha256();
    int hl = EVP_MD_get_size(md);
    hearth_sasl_server_t *s = hearth_sasl_server_new(ctx, mech, offered, noffered);
    assert_non_null(s);
    hearth_sasl_server_set_secret(s, h == HEARTH_SCRAM_SHA1 ? &alice.sha1 : &alice.sha256);
    *verified = 0;

    const char *bare = "n=alice,r=handmadeClientNonce";
    char first[256], *sf, *v;
    size_t sfl, vl;
    snprintf(first, sizeof(first), "%s%s", gs2, bare);
    int rc = hearth_sasl_server_step(s, first, strlen(first), &sf, &sfl);
    if (rc != HEARTH_EAGAIN) {
        assert_null(sf);
        hearth_sasl_server_free(s);
        return rc;
    }
    /* r=<nonce>,s=<salt>,i=<iterations> */
    const char *ps = strstr(sf, ",s="), *pi = strstr(sf, ",i=");
    assert_non_null(ps);
    assert_non_null(pi);
    assert_true(strncmp(sf, "r=handmadeClientNonce", 21) == 0);
    char salt_b64[64];
    snprintf(salt_b64, sizeof(salt_b64), "%.*s", (int)(pi - ps - 3), ps + 3);
    unsigned char salt[64], salted[64], ck[64], stored[64], sk[64], csig[64], ssig[64];
    size_t salt_len = b64d(salt_b64, salt, sizeof(salt));
    int iter = atoi(pi + 3);
    unsigned int l;
    assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iter,
                                       md, hl, salted),
                     1);
    HMAC(md, salted, hl, (const unsigned char *)"Client Key", 10, ck, &l);
    HMAC(md, salted, hl, (const unsigned char *)"Server Key", 10, sk, &l);
    EVP_Digest(ck, (size_t)hl, stored, NULL, md, NULL);

    unsigned char cbin[256];
    size_t gl = strlen(gs2);
    assert_true(gl + client_cb_len <= sizeof(cbin));
    memcpy(cbin, gs2, gl);
    if (client_cb_len)
        memcpy(cbin + gl, client_cb, client_cb_len);
    char *cbind = b64e(cbin, gl + client_cb_len);
    char final[512], auth[1024];
    snprintf(final, sizeof(final), "c=%s,%.*s", cbind, (int)(ps - sf), sf);
    free(cbind);
    snprintf(auth, sizeof(auth), "%s,%s,%s", bare, sf, final);
    free(sf);
    HMAC(md, stored, hl, (unsigned char *)auth, strlen(auth), csig, &l);
    for (int i = 0; i < hl; i++)
        csig[i] ^= ck[i]; /* ClientProof */
    char *proof = b64e(csig, (size_t)hl);
    size_t fl = strlen(final);
    snprintf(final + fl, sizeof(final) - fl, ",p=%s", proof);
    free(proof);

    rc = hearth_sasl_server_step(s, final, strlen(final), &v, &vl);
    if (rc == 0) {
        HMAC(md, sk, hl, (unsigned char *)auth, strlen(auth), ssig, &l);
        char *want = b64e(ssig, (size_t)hl);
        assert_non_null(v);
        *verified = strlen(v) == vl && strncmp(v, "v=", 2) == 0 && strcmp(v + 2, want) == 0;
        free(want);
    }
    free(v);
    hearth_sasl_server_free(s);
    return rc;
}

static int manual_scram(hearth_sasl_t *ctx, const char *mech, const char *gs2,
                        const unsigned char *server_cb, const char *password, int *verified)
{
    hearth_sasl_binding_t b = {"tls-exporter", server_cb, 32};
    return manual_scram_cb(ctx, mech, gs2, server_cb ? &b : NULL, server_cb ? 1 : 0, NULL, 0,
                           password, verified);
}

static void test_exchange_y_downgrade(void **state)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
    unsigned char cb[32];
    cb_fill(cb, 1);
    const char *scram[] = {"SCRAM-SHA-1", "SCRAM-SHA-256"};
    int verified;
    for (int i = 0; i < 2; i++) {
        /* The independent client works with the gsasl server at all. */
        assert_int_equal(manual_scram(ctx, scram[i], "n,,", NULL, "correct horse", &verified), 0);
        assert_true(verified);
        assert_int_equal(manual_scram(ctx, scram[i], "n,,", cb, "correct horse", &verified), 0);
        assert_true(verified);
        assert_int_equal(
            manual_scram(ctx, scram[i], "n,a=alice@example.com,", cb, "correct horse", &verified),
            0);
        assert_int_equal(manual_scram(ctx, scram[i], "n,,", NULL, "wrong", &verified),
                         HEARTH_EAUTH);
        /* 'y': the client could bind but saw no -PLUS. A server that cannot bind accepts it
         * (RFC 5802 §6); one that offered -PLUS knows the offer was stripped. */
        assert_int_equal(manual_scram(ctx, scram[i], "y,,", NULL, "correct horse", &verified), 0);
        assert_true(verified);
        assert_int_equal(manual_scram(ctx, scram[i], "y,,", cb, "correct horse", &verified),
                         HEARTH_EAUTH);
        /* Our client never sends 'y' (gsasl 2.2.0 cannot): binding data on a non-PLUS
         * mechanism is ignored and the exchange still succeeds. */
        struct run r = {.mech = scram[i],
                        .user = "alice",
                        .password = "correct horse",
                        .client_cb = cb,
                        .server_cb = cb};
        run_exchange(ctx, &r);
        assert_int_equal(r.cbflag, 'n');
        assert_int_equal(r.server_rc, 0);
        assert_int_equal(r.client_rc, 0);
    }
    hearth_sasl_free(ctx);
}

/* Both binding types of XEP-0440 under both -PLUS mechanisms, from the independent client:
 * the type named in the gs2 header selects the data the server expects in c=. */
static void test_exchange_server_end_point(void **state)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
    unsigned char exporter[32], ep[48];
    cb_fill(exporter, 1);
    for (size_t i = 0; i < sizeof(ep); i++)
        ep[i] = (unsigned char)(200 - i);
    const char *plus[] = {"SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS"};
    int verified;
    for (size_t eplen = 32; eplen <= 48; eplen += 16) { /* SHA-256 and SHA-384 certificates */
        hearth_sasl_binding_t both[] = {{"tls-exporter", exporter, 32},
                                        {"tls-server-end-point", ep, eplen}};
        for (int i = 0; i < 2; i++) {
#define RUN(gs2, offered, n, data, len, pw)                                                        \
    manual_scram_cb(ctx, plus[i], gs2, offered, n, data, len, pw, &verified)
            assert_int_equal(RUN("p=tls-server-end-point,,", both, 2, ep, eplen, "correct horse"),
                             0);
            assert_true(verified);
            assert_int_equal(RUN("p=tls-exporter,,", both, 2, exporter, 32, "correct horse"), 0);
            assert_true(verified);
            assert_int_equal(RUN("p=tls-server-end-point,a=alice@example.com,", both, 2, ep, eplen,
                                 "correct horse"),
                             0);
            /* Wrong password, the other type's data, the data cut short, a type not offered. */
            assert_int_equal(RUN("p=tls-server-end-point,,", both, 2, ep, eplen, "wrong"),
                             HEARTH_EAUTH);
            assert_int_equal(
                RUN("p=tls-server-end-point,,", both, 2, exporter, 32, "correct horse"),
                HEARTH_EAUTH);
            assert_int_equal(
                RUN("p=tls-server-end-point,,", both, 2, ep, eplen - 1, "correct horse"),
                HEARTH_EAUTH);
            assert_int_equal(RUN("p=tls-unique,,", both, 2, ep, eplen, "correct horse"),
                             HEARTH_EAUTH);
            assert_int_equal(RUN("p=tls-server-end-point,,", both, 1, ep, eplen, "correct horse"),
                             HEARTH_EAUTH);
            assert_int_equal(RUN("p=TLS-SERVER-END-POINT,,", both, 2, ep, eplen, "correct horse"),
                             HEARTH_EAUTH);
#undef RUN
        }
        /* Non-PLUS: binding refused, 'y' refused since we offer some, 'n' fine. */
        assert_int_equal(manual_scram_cb(ctx, "SCRAM-SHA-256", "p=tls-server-end-point,,", both, 2,
                                         ep, eplen, "correct horse", &verified),
                         HEARTH_EAUTH);
        assert_int_equal(manual_scram_cb(ctx, "SCRAM-SHA-256", "y,,", both, 2, NULL, 0,
                                         "correct horse", &verified),
                         HEARTH_EAUTH);
        assert_int_equal(manual_scram_cb(ctx, "SCRAM-SHA-256", "n,,", both, 2, NULL, 0,
                                         "correct horse", &verified),
                         0);
    }
    hearth_sasl_free(ctx);
}

/* A fresh SCRAM-SHA-256 server for alice with the server nonce "SN", after the client-first
 * "n,,n=alice,r=CN": then final is stepped, and its result returned. */
static int final_step(hearth_sasl_t *ctx, const char *final, size_t len)
{
    hearth_sasl_server_t *s = hearth_sasl_server_new(ctx, "SCRAM-SHA-256", NULL, 0);
    assert_non_null(s);
    hearth_sasl__server_fix_nonce(s, "SN");
    hearth_sasl_server_set_secret(s, &alice.sha256);
    char *out;
    size_t out_len;
    assert_int_equal(hearth_sasl_server_step(s, "n,,n=alice,r=CN", 15, &out, &out_len),
                     HEARTH_EAGAIN);
    assert_true(strncmp(out, "r=CNSN,s=", 9) == 0);
    free(out);
    int rc = hearth_sasl_server_step(s, final, len, &out, &out_len);
    if (rc)
        assert_null(out);
    free(out);
    hearth_sasl_server_free(s);
    return rc;
}

static void test_server_final_message_checks(void **state)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
#define FINAL(lit) final_step(ctx, lit, sizeof(lit) - 1)
#define P32 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
    /* Malformed: no proof, empty or short proof, proof not last, bad base64, order, NUL. */
    assert_int_equal(FINAL("c=biws,r=CNSN"), HEARTH_EINVAL);
    assert_int_equal(FINAL("c=biws,r=CNSN,p="), HEARTH_EINVAL);
    assert_int_equal(FINAL("c=biws,r=CNSN,p=AAAA"), HEARTH_EINVAL);
    assert_int_equal(FINAL("c=biws,p=" P32 ",r=CNSN"), HEARTH_EINVAL);
    assert_int_equal(FINAL("c=biws,r=CNSN,p=" P32 ",e=x"), HEARTH_EINVAL);
    assert_int_equal(FINAL("c=b!ws,r=CNSN,p=" P32), HEARTH_EINVAL);
    assert_int_equal(FINAL("c==,r=CNSN,p=" P32), HEARTH_EINVAL);
    assert_int_equal(FINAL("r=CNSN,c=biws,p=" P32), HEARTH_EINVAL);
    assert_int_equal(FINAL("c=biws,r=CNSN,1=x,p=" P32), HEARTH_EINVAL);
    assert_int_equal(FINAL("c=biws,r=CNSN,e=,p=" P32), HEARTH_EINVAL);
    assert_int_equal(FINAL("c=biws,r=CN SN,p=" P32), HEARTH_EINVAL);
    assert_int_equal(FINAL("c=biws,r=CNSN\0,p=" P32), HEARTH_EINVAL);
    assert_int_equal(FINAL(""), HEARTH_EINVAL);
    /* Well formed but wrong: nonce, binding ('y' where 'n' was sent), proof. */
    assert_int_equal(FINAL("c=biws,r=CNSNx,p=" P32), HEARTH_EAUTH);
    assert_int_equal(FINAL("c=biws,r=CN,p=" P32), HEARTH_EAUTH);
    assert_int_equal(FINAL("c=eSws,r=CNSN,p=" P32), HEARTH_EAUTH);
    assert_int_equal(FINAL("c=biws,r=CNSN,e=ext,p=" P32), HEARTH_EAUTH);
#undef P32
#undef FINAL
    hearth_sasl_free(ctx);
}

static int server_first_step(hearth_sasl_t *ctx, const char *mech, const unsigned char *cb,
                             const char *msg, size_t len)
{
    hearth_sasl_server_t *s = server_new(ctx, mech, cb);
    assert_non_null(s);
    hearth_sasl_server_set_secret(s, strstr(mech, "SHA-1") ? &alice.sha1 : &alice.sha256);
    char *out;
    size_t out_len;
    int rc = hearth_sasl_server_step(s, msg, len, &out, &out_len);
    if (rc != HEARTH_EAGAIN)
        assert_null(out);
    free(out);
    hearth_sasl_server_free(s);
    return rc;
}

static void test_server_first_message_checks(void **state)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
    unsigned char cb[32];
    cb_fill(cb, 1);
#define FIRST(mech, cbd, lit) server_first_step(ctx, mech, cbd, lit, sizeof(lit) - 1)
    assert_int_equal(FIRST("SCRAM-SHA-256", NULL, "n,,n=alice,r=abcdef"), HEARTH_EAGAIN);
    assert_int_equal(FIRST("SCRAM-SHA-256", NULL, "y,,n=alice,r=abcdef"), HEARTH_EAGAIN);
    assert_int_equal(FIRST("SCRAM-SHA-256", cb, "y,,n=alice,r=abcdef"), HEARTH_EAUTH);
    assert_int_equal(FIRST("SCRAM-SHA-1", cb, "y,,n=alice,r=abcdef"), HEARTH_EAUTH);
    assert_int_equal(FIRST("SCRAM-SHA-256", cb, "p=tls-exporter,,n=alice,r=abcdef"), HEARTH_EAUTH);
    assert_int_equal(FIRST("SCRAM-SHA-256-PLUS", cb, "n,,n=alice,r=abcdef"), HEARTH_EAUTH);
    assert_int_equal(FIRST("SCRAM-SHA-256-PLUS", cb, "y,,n=alice,r=abcdef"), HEARTH_EAUTH);
    assert_int_equal(FIRST("SCRAM-SHA-256-PLUS", cb, "p=tls-unique,,n=alice,r=abcdef"),
                     HEARTH_EAUTH);
    assert_int_equal(FIRST("SCRAM-SHA-256-PLUS", cb, "p=tls-exporter,,n=alice,r=abcdef"),
                     HEARTH_EAGAIN);
    assert_int_equal(FIRST("SCRAM-SHA-256", NULL, "n,,n=alice,r=ab\0cdef"), HEARTH_EINVAL);
    assert_int_equal(FIRST("SCRAM-SHA-256", NULL, "x,,n=alice,r=abcdef"), HEARTH_EINVAL);
    assert_int_equal(FIRST("SCRAM-SHA-256", NULL, "n,,m=x,n=alice,r=abcdef"), HEARTH_EINVAL);
    assert_int_equal(FIRST("PLAIN", NULL, "\0alice\0correct horse"), 0);
    assert_int_equal(FIRST("PLAIN", NULL, "\0alice\0wrong"), HEARTH_EAUTH);
    assert_int_equal(FIRST("PLAIN", NULL, "\0alice"), HEARTH_EINVAL);
#undef FIRST
    /* Empty initial response: an empty challenge, then the credentials. */
    hearth_sasl_server_t *s = hearth_sasl_server_new(ctx, "PLAIN", NULL, 0);
    char *out;
    size_t out_len;
    assert_int_equal(hearth_sasl_server_step(s, NULL, 0, &out, &out_len), HEARTH_EAGAIN);
    assert_int_equal(out_len, 0);
    free(out);
    hearth_sasl_server_set_secret(s, &alice.sha256);
    assert_int_equal(hearth_sasl_server_step(s, "\0alice\0correct horse", 20, &out, &out_len), 0);
    free(out);
    /* Nothing after the end. */
    assert_int_equal(hearth_sasl_server_step(s, "x", 1, &out, &out_len), HEARTH_ESASL);
    hearth_sasl_server_free(s);
    /* SCRAM without an initial response: an empty challenge, then the client-first. */
    s = hearth_sasl_server_new(ctx, "SCRAM-SHA-256", NULL, 0);
    assert_int_equal(hearth_sasl_server_step(s, NULL, 0, &out, &out_len), HEARTH_EAGAIN);
    assert_null(out);
    hearth_sasl_server_set_secret(s, &alice.sha256);
    assert_int_equal(hearth_sasl_server_step(s, "n,,n=alice,r=abc", 16, &out, &out_len),
                     HEARTH_EAGAIN);
    assert_true(out_len > 0 && strncmp(out, "r=abc", 5) == 0 && out[out_len] == '\0');
    free(out);
    /* A NUL in the client-final message is malformed. */
    assert_int_equal(hearth_sasl_server_step(s, "c=biws,r=abc\0,p=x", 18, &out, &out_len),
                     HEARTH_EINVAL);
    assert_null(out);
    hearth_sasl_server_free(s);
    /* No secret set: a caller bug, not an answer. */
    s = hearth_sasl_server_new(ctx, "SCRAM-SHA-1", NULL, 0);
    assert_int_equal(hearth_sasl_server_step(s, "n,,n=a,r=b", 10, &out, &out_len), HEARTH_ESASL);
    hearth_sasl_server_free(s);
    hearth_sasl_free(ctx);
}

static void test_session_new_refusals(void **state)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
    unsigned char cb[32];
    cb_fill(cb, 1);
    assert_null(hearth_sasl_server_new(ctx, "SCRAM-SHA-1-PLUS", NULL, 0));
    assert_null(hearth_sasl_server_new(ctx, "SCRAM-SHA-256-PLUS", NULL, 0));
    assert_null(hearth_sasl_server_new(ctx, "DIGEST-MD5", NULL, 0));
    assert_null(server_new(ctx, "CRAM-MD5", cb));
    /* Malformed bindings: no type, no data, longer than any hash. */
    unsigned char big[HEARTH_SASL_CB_MAX + 1] = {0};
    hearth_sasl_binding_t bad[] = {{NULL, cb, 32},
                                   {"tls-exporter", NULL, 32},
                                   {"tls-exporter", cb, 0},
                                   {"tls-server-end-point", big, sizeof big}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_null(hearth_sasl_server_new(ctx, "SCRAM-SHA-256-PLUS", &bad[i], 1));
    assert_null(hearth_sasl_server_new(ctx, "scram-sha-1", NULL, 0));
    assert_null(hearth_sasl_client_new(ctx, "SCRAM-SHA-1-PLUS", "a", "b", NULL, NULL, 0));
    assert_null(hearth_sasl_client_new(ctx, "ANONYMOUS", "a", "b", NULL, NULL, 0));
    assert_int_equal(hearth_sasl_mech_hash("SCRAM-SHA-1"), HEARTH_SCRAM_SHA1);
    assert_int_equal(hearth_sasl_mech_hash("SCRAM-SHA-1-PLUS"), HEARTH_SCRAM_SHA1);
    assert_int_equal(hearth_sasl_mech_hash("SCRAM-SHA-256"), HEARTH_SCRAM_SHA256);
    assert_int_equal(hearth_sasl_mech_hash("SCRAM-SHA-256-PLUS"), HEARTH_SCRAM_SHA256);
    assert_int_equal(hearth_sasl_mech_hash("PLAIN"), HEARTH_SCRAM_SHA256);
    assert_int_equal(hearth_sasl_mech_hash("SCRAM-SHA-512"), 0);
    assert_int_equal(hearth_sasl_mech_hash(NULL), 0);
    assert_true(hearth_sasl_mech_is_plus("SCRAM-SHA-256-PLUS"));
    assert_false(hearth_sasl_mech_is_plus("SCRAM-SHA-256"));
    assert_false(hearth_sasl_mech_is_plus("PLAIN"));
    hearth_sasl_free(ctx);
}

static void test_client_rejects_bad_server_signature(void **state)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
    hearth_sasl_client_t *c =
        hearth_sasl_client_new(ctx, "SCRAM-SHA-256", "alice", "correct horse", NULL, NULL, 0);
    hearth_sasl_server_t *s = hearth_sasl_server_new(ctx, "SCRAM-SHA-256", NULL, 0);
    hearth_sasl_server_set_secret(s, &alice.sha256);
    char *o1, *o2, *o3, *o4, *o5;
    size_t l1, l2, l3, l4, l5;
    assert_int_equal(hearth_sasl_client_step(c, NULL, 0, &o1, &l1), HEARTH_EAGAIN);
    assert_int_equal(hearth_sasl_server_step(s, o1, l1, &o2, &l2), HEARTH_EAGAIN);
    assert_int_equal(hearth_sasl_client_step(c, o2, l2, &o3, &l3), HEARTH_EAGAIN);
    assert_int_equal(hearth_sasl_server_step(s, o3, l3, &o4, &l4), 0);
    assert_true(l4 > 2 && o4[0] == 'v' && o4[1] == '=');
    o4[2] = o4[2] == 'A' ? 'B' : 'A';
    assert_int_equal(hearth_sasl_client_step(c, o4, l4, &o5, &l5), HEARTH_EAUTH);
    assert_null(o5);
    free(o1);
    free(o2);
    free(o3);
    free(o4);
    hearth_sasl_server_free(s);
    hearth_sasl_client_free(c);
    hearth_sasl_free(ctx);
}

static void test_exchange_escaped_username(void **state)
{
    hearth_sasl_t *ctx = hearth_sasl_new();
    hearth_sasl_client_t *c =
        hearth_sasl_client_new(ctx, "SCRAM-SHA-1", "a,b=c", "pw", "x,y=z", NULL, 0);
    char *out;
    size_t len;
    assert_int_equal(hearth_sasl_client_step(c, NULL, 0, &out, &len), HEARTH_EAGAIN);
    assert_non_null(strstr(out, "n=a=2Cb=3Dc,"));
    hearth_sasl_initial_t ini;
    assert_int_equal(hearth_sasl_parse_initial("SCRAM-SHA-1", out, len, &ini, NULL), 0);
    assert_string_equal(ini.authcid, "a,b=c");
    assert_string_equal(ini.authzid, "x,y=z");
    hearth_sasl_initial_clear(&ini);
    free(out);
    hearth_sasl_client_free(c);
    hearth_sasl_free(ctx);
}

/* ---- parser ---- */

static int parse(const char *mech, const char *msg, size_t len, hearth_sasl_initial_t *out)
{
    const char *reason = NULL;
    int rc = hearth_sasl_parse_initial(mech, msg, len, out, &reason);
    if (rc) {
        assert_non_null(reason);
        assert_null(out->authcid);
        assert_null(out->authzid);
    }
    return rc;
}
#define PARSE(mech, lit, out) parse(mech, lit, sizeof(lit) - 1, out)

static void test_parse_plain(void **state)
{
    hearth_sasl_initial_t in;
    assert_int_equal(PARSE("PLAIN", "\0juliet\0secret", &in), 0);
    assert_string_equal(in.authcid, "juliet");
    assert_null(in.authzid);
    assert_int_equal(in.cbflag, 0);
    hearth_sasl_initial_clear(&in);
    assert_int_equal(PARSE("PLAIN", "juliet@example.com\0juliet\0se,cr=et", &in), 0);
    assert_string_equal(in.authcid, "juliet");
    assert_string_equal(in.authzid, "juliet@example.com");
    hearth_sasl_initial_clear(&in);
    hearth_sasl_initial_clear(&in); /* twice is harmless */

    assert_int_equal(PARSE("PLAIN", "juliet", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("PLAIN", "\0juliet", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("PLAIN", "\0\0secret", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("PLAIN", "\0juliet\0", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("PLAIN", "\0juliet\0sec\0ret", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("PLAIN", "", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("LOGIN", "\0juliet\0secret", &in), HEARTH_EINVAL);
}

static void test_parse_scram(void **state)
{
    hearth_sasl_initial_t in;
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL", &in), 0);
    assert_string_equal(in.authcid, "user");
    assert_null(in.authzid);
    assert_int_equal(in.cbflag, 'n');
    hearth_sasl_initial_clear(&in);

    assert_int_equal(PARSE("SCRAM-SHA-256", "y,a=admin@x=2Cy,n=us=3Der=2C,r=abc,e=ext", &in), 0);
    assert_string_equal(in.authcid, "us=er,");
    assert_string_equal(in.authzid, "admin@x,y");
    assert_int_equal(in.cbflag, 'y');
    hearth_sasl_initial_clear(&in);

    assert_int_equal(PARSE("SCRAM-SHA-256-PLUS", "p=tls-exporter,,n=u,r=abc", &in), 0);
    assert_int_equal(in.cbflag, 'p');
    assert_string_equal(in.cbname, "tls-exporter");
    hearth_sasl_initial_clear(&in);
    assert_null(in.cbname);
    assert_int_equal(PARSE("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=u,r=abc", &in), 0);
    assert_string_equal(in.cbname, "tls-server-end-point");
    hearth_sasl_initial_clear(&in);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=j\xC3\xBCrgen,r=abc,x=\xE2\x82\xAC", &in), 0);
    assert_string_equal(in.authcid, "j\xC3\xBCrgen");
    assert_null(in.cbname);
    hearth_sasl_initial_clear(&in);
    /* RFC 5802 section 7: UTF-8 only, extensions ALPHA "=" 1*value-char, printable nonce. */
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=\xFF,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=\xC0\xAF,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=\xED\xA0\x80,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=\xC3,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,a=\xF5\x80\x80\x80,n=u,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=u,r=abc,1=x", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=u,r=abc,e=", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=u,r=abc,ee=x", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=u,r=abc,", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=u,r=abc,e=\xFF", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=u,r=ab\x7F", &in), HEARTH_EINVAL);
    char longer[SCRAM_MAX_NONCE + 32];
    int ln = snprintf(longer, sizeof(longer), "n,,n=u,r=");
    memset(longer + ln, 'x', SCRAM_MAX_NONCE);
    assert_int_equal(parse("SCRAM-SHA-1", longer, (size_t)ln + SCRAM_MAX_NONCE, &in), 0);
    hearth_sasl_initial_clear(&in);
    longer[ln + SCRAM_MAX_NONCE] = 'x';
    assert_int_equal(parse("SCRAM-SHA-1", longer, (size_t)ln + SCRAM_MAX_NONCE + 1, &in),
                     HEARTH_EINVAL);

    /* Malformed. */
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=user", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=user,", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=user,r=", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,n=user,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n=user,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "q,,n=user,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "F,n,,n=user,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "p=,,n=user,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "p=tls_x,,n=user,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "nn,,n=user,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,b=x,n=user,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,a=,n=user,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,a=x=2,n=user,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=us=er,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=user=2,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=user=,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=user,r=a bc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,m=ext,n=user,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=us\0er,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,,n=user,r=abc\0", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,a=x\0,n=user,r=abc", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", ",", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n", &in), HEARTH_EINVAL);
    assert_int_equal(PARSE("SCRAM-SHA-1", "n,", &in), HEARTH_EINVAL);
}

/* ---- base64 ---- */

static void test_base64(void **state)
{
    char *s;
    size_t n;
    assert_int_equal(hearth_base64_encode("", 0, &s), 0);
    assert_string_equal(s, "");
    free(s);
    assert_int_equal(hearth_base64_encode("f", 1, &s), 0);
    assert_string_equal(s, "Zg==");
    free(s);
    assert_int_equal(hearth_base64_encode("foob", 4, &s), 0);
    assert_string_equal(s, "Zm9vYg==");
    free(s);
    assert_int_equal(hearth_base64_encode("\0\xff\xfe", 3, &s), 0);
    assert_string_equal(s, "AP/+");
    free(s);

    assert_int_equal(hearth_base64_decode("=", 1, &s, &n), 0);
    assert_int_equal(n, 0);
    assert_string_equal(s, "");
    free(s);
    assert_int_equal(hearth_base64_decode("", 0, &s, &n), 0);
    assert_int_equal(n, 0);
    free(s);
    assert_int_equal(hearth_base64_decode("Zm9vYmFy", 8, &s, &n), 0);
    assert_int_equal(n, 6);
    assert_string_equal(s, "foobar");
    free(s);
    assert_int_equal(hearth_base64_decode("Zm9vYg==", 8, &s, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(s, "foob");
    free(s);
    assert_int_equal(hearth_base64_decode("Zm9vYmE=", 8, &s, &n), 0);
    assert_int_equal(n, 5);
    assert_string_equal(s, "fooba");
    free(s);
    assert_int_equal(hearth_base64_decode("AP/+", 4, &s, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(s, "\0\xff\xfe", 3);
    assert_int_equal(s[3], '\0');
    free(s);

    const char *bad[] = {"Zm9",  "Zm9vY", "Zm 9v", "Zm9v\n", "Zm=v", "Z===",
                         "====", "==",    "Zm9*",  "Zg=",    "=Zg=", "Zm9vYg=\0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        s = (char *)1;
        assert_int_equal(hearth_base64_decode(bad[i], strlen(bad[i]), &s, &n), HEARTH_EINVAL);
        assert_null(s);
    }
    assert_int_equal(hearth_base64_decode("Zm9v\0Zm9v", 9, &s, &n), HEARTH_EINVAL);

    /* Round trip over all byte values. */
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t len = 0; len <= 256; len += 37) {
        char *enc, *dec;
        assert_int_equal(hearth_base64_encode(all, len, &enc), 0);
        assert_int_equal(hearth_base64_decode(enc, strlen(enc), &dec, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(dec, all, len);
        free(enc);
        free(dec);
    }
}

/* scram__pbkdf2 gives OpenSSL's PKCS5_PBKDF2_HMAC output byte for byte: RFC 6070's SHA-1 vector,
 * then both hashes over keys around the block size (hashed when longer, RFC 2104), empty and
 * long salts, and iteration counts of one, two and SCRAM's 4,096. */
static void test_pbkdf2_matches_openssl(void **state)
{
    (void)state;
    unsigned char got[32], want[32];
    static const unsigned char rfc6070[20] = {0x4b, 0x00, 0x79, 0x01, 0xb7, 0x65, 0x48,
                                              0x9a, 0xbe, 0xad, 0x49, 0xd9, 0x26, 0xf7,
                                              0x21, 0xd0, 0x65, 0xa4, 0x29, 0xc1};
    assert_int_equal(scram__pbkdf2(HEARTH_SCRAM_SHA1, "password", 8, (const unsigned char *)"salt",
                                   4, 4096, got),
                     0);
    assert_memory_equal(got, rfc6070, sizeof(rfc6070));

    char pw[201];
    unsigned char salt[100];
    for (size_t i = 0; i < sizeof(pw); i++)
        pw[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < sizeof(salt); i++)
        salt[i] = (unsigned char)(i * 7);
    const size_t pw_lens[] = {0, 1, 20, 63, 64, 65, 200};
    const size_t salt_lens[] = {0, 16, 100};
    const unsigned iters[] = {1, 2, 4096};
    for (int hi = 0; hi < 2; hi++) {
        hearth_scram_hash_t h = hi ? HEARTH_SCRAM_SHA256 : HEARTH_SCRAM_SHA1;
        const EVP_MD *md = hi ? EVP_sha256() : EVP_sha1();
        int hl = EVP_MD_get_size(md);
        for (size_t a = 0; a < sizeof(pw_lens) / sizeof(pw_lens[0]); a++)
            for (size_t b = 0; b < sizeof(salt_lens) / sizeof(salt_lens[0]); b++)
                for (size_t c = 0; c < sizeof(iters) / sizeof(iters[0]); c++) {
                    assert_int_equal(PKCS5_PBKDF2_HMAC(pw, (int)pw_lens[a], salt, (int)salt_lens[b],
                                                       (int)iters[c], md, hl, want),
                                     1);
                    memset(got, 0, sizeof(got));
                    assert_int_equal(
                        scram__pbkdf2(h, pw, pw_lens[a], salt, salt_lens[b], iters[c], got), 0);
                    assert_memory_equal(got, want, (size_t)hl);
                }
    }
    assert_int_equal(scram__pbkdf2(HEARTH_SCRAM_SHA1, "p", 1, salt, 4, 0, got), HEARTH_EINVAL);
    assert_int_equal(scram__pbkdf2((hearth_scram_hash_t)9, "p", 1, salt, 4, 1, got), HEARTH_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pbkdf2_matches_openssl),
        cmocka_unit_test(test_rfc5802_vector),
        cmocka_unit_test(test_rfc7677_vector),
        cmocka_unit_test(test_secret_misc),
        cmocka_unit_test(test_fake_secret),
        cmocka_unit_test(test_exchange_all),
        cmocka_unit_test(test_exchange_authzid),
        cmocka_unit_test(test_exchange_wrong_password),
        cmocka_unit_test(test_exchange_unknown_user),
        cmocka_unit_test(test_exchange_cb_mismatch),
        cmocka_unit_test(test_exchange_y_downgrade),
        cmocka_unit_test(test_server_first_message_checks),
        cmocka_unit_test(test_exchange_server_end_point),
        cmocka_unit_test(test_server_final_message_checks),
        cmocka_unit_test(test_session_new_refusals),
        cmocka_unit_test(test_client_rejects_bad_server_signature),
        cmocka_unit_test(test_exchange_escaped_username),
        cmocka_unit_test(test_parse_plain),
        cmocka_unit_test(test_parse_scram),
        cmocka_unit_test(test_base64),
    };
    return cmocka_run_group_tests(tests, setup_accounts, NULL);
}
