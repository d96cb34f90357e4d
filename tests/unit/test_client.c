/* Unit tests of the client library's state machines (lib/client/) against a scripted fake
 * server (fake_server.c): every byte the client sends is expected exactly, every byte the
 * server sends is written out, and the client's events are checked in order. Time moves by
 * hand (hearth__ctx_advance), never by sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "client/hooks.h"
#include "fake_server.h"
#include "hearth/client.h"

/* ---- the bytes of a conversation ---- */

#define HDR_START                                                                                  \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' "
/* The client's header: before TLS it does not name the account (RFC 6120 §4.7.1). */
#define HDR HDR_START "to='localhost' version='1.0' xml:lang='en'>"
#define HDR_FROM HDR_START "from='user@localhost' to='localhost' version='1.0' xml:lang='en'>"
#define S_HDR HDR_START "id='s1' from='localhost' version='1.0'>"
#define FEAT(x) "<stream:features>" x "</stream:features>"
#define F_STARTTLS "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
#define F_MECHS(x) "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" x "</mechanisms>"
#define MECH(m) "<mechanism>" m "</mechanism>"
#define F_CB(x) "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>" x "</sasl-channel-binding>"
#define CB(t) "<channel-binding type='" t "'/>"
#define F_BIND "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
#define F_SM "<sm xmlns='urn:xmpp:sm:3'/>"
#define F_REGISTER "<register xmlns='http://jabber.org/features/iq-register'/>"
#define STARTTLS "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define PROCEED "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define BIND_REQ(id, res)                                                                          \
    "<iq type='set' id='" id "'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" res     \
    "</resource></bind></iq>"
#define BIND_RES(id, jid)                                                                          \
    "<iq type='result' id='" id "'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>" jid       \
    "</jid></bind></iq>"
#define CLOSE_TAG "</stream:stream>"
#define PRESENCE "<presence/>"
/* PLAIN of user/pencil */
#define AUTH_PLAIN                                                                                 \
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHVzZXIAcGVuY2ls</auth>"

/* ---- fixture: certificates for localhost and for another name ---- */

static struct {
    char dir[64], cert[128], key[128], other_cert[128], other_key[128];
} fx;

static int group_setup(void **state)
{
    (void)state;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/hearth-client-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    snprintf(fx.cert, sizeof fx.cert, "%s/cert.pem", fx.dir);
    snprintf(fx.key, sizeof fx.key, "%s/key.pem", fx.dir);
    snprintf(fx.other_cert, sizeof fx.other_cert, "%s/other.pem", fx.dir);
    snprintf(fx.other_key, sizeof fx.other_key, "%s/other.key", fx.dir);
    const char *const names[] = {"localhost", "example.net"};
    const char *const other[] = {"other.example"};
    char *err = NULL;
    if (hearth_tls_generate_cert(fx.cert, fx.key, names, 2, &err) ||
        hearth_tls_generate_cert(fx.other_cert, fx.other_key, other, 1, &err)) {
        fprintf(stderr, "certificates: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    unlink(fx.cert);
    unlink(fx.key);
    unlink(fx.other_cert);
    unlink(fx.other_key);
    rmdir(fx.dir);
    OPENSSL_thread_stop();
    return 0;
}

/* The context configuration of the next start() only (its loop is the fake's); NULL:
 * defaults. */
static const hearth_ctx_config_t *next_ctx_cfg;

/* A fake server (with the localhost certificate unless other) and a client of user@localhost
 * (password pencil, resource phone) pointing at it; cfg_fn adjusts the configuration. */
static fake_t *start(bool other, void (*cfg_fn)(hearth_client_config_t *cfg))
{
    fake_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fake_init(f, other ? fx.other_cert : fx.cert, other ? fx.other_key : fx.key),
                     0);
    const hearth_ctx_config_t *cc = next_ctx_cfg;
    next_ctx_cfg = NULL; /* for this start only, even if a test fails */
    assert_non_null(fake_ctx_with(f, cc));
    hearth__ctx_fix_nonce(f->ctx, "rOprNGfwEbeRWgbNEkqO");
    hearth__ctx_seed(f->ctx, 42);
    hearth__ctx_freeze(f->ctx);
    hearth_client_config_t cfg = {
        .jid = "user@localhost/phone",
        .password = "pencil",
        .host = "127.0.0.1",
        .port = (unsigned)f->port,
        .tls_ca_file = other ? fx.other_cert : fx.cert,
    };
    if (cfg_fn)
        cfg_fn(&cfg);
    assert_int_equal(hearth_client_new(f->ctx, &cfg, &fake_events, f, &f->client), 0);
    assert_int_equal(hearth_client_connect(f->client), 0);
    return f;
}

static void finish(fake_t *f, const step_t *script)
{
    bool ok = fake_run(f, script, 10000);
    bool clean = fake_done(f);
    free(f);
    assert_true(ok);
    assert_true(clean);
}

static void no_tls(hearth_client_config_t *cfg)
{
    cfg->tls = HEARTH_TLS_DISABLED;
}

static void no_tls_plain(hearth_client_config_t *cfg)
{
    cfg->tls = HEARTH_TLS_DISABLED;
    cfg->allow_plain_without_tls = 1;
}

static void disconnect(fake_t *f)
{
    assert_int_equal(hearth_client_disconnect(f->client), 0);
}

/* ---- PLAIN ---- */

/* PLAIN over a stream without TLS is refused unless allowed: the password would cross in
 * clear. */
static void test_plain_refused_without_tls(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        SEND(S_HDR FEAT(F_MECHS(MECH("PLAIN")))),
        EXPECT(CLOSE_TAG),
        EVENT("connected"),
        EVENT("disconnected EPOLICY"),
        END,
    };
    finish(f, script);
}

/* The whole login with PLAIN allowed in clear, then an orderly logout. */
static void test_plain_login_and_logout(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls_plain);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        SEND(S_HDR FEAT(F_MECHS(MECH("SCRAM-SHA-1-PLUS") MECH("PLAIN")))),
        EXPECT(AUTH_PLAIN),
        SEND(SUCCESS),
        EXPECT(HDR),
        SEND(S_HDR FEAT(F_BIND)),
        EXPECT(BIND_REQ("h1", "phone")),
        SEND(BIND_RES("h1", "user@localhost/phone")),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        CALL(disconnect),
        EXPECT(CLOSE_TAG),
        SEND(CLOSE_TAG),
        EVENT("disconnected OK"),
        END,
    };
    finish(f, script);
}

/* ---- SCRAM: the RFC test vectors on the wire ---- */

#define RFC5802_C1 "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
#define RFC5802_S1 "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
#define RFC5802_C2                                                                                 \
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
#define RFC5802_S2 "v=rmF9pqV8S7suAoZWja4dJRkFsKQ="

#define RFC7677_C1 "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC7677_S1                                                                                 \
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC7677_C2                                                                                 \
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p="                               \
    "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC7677_S2 "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static void fix_rfc5802_nonce(fake_t *f)
{
    hearth__ctx_fix_nonce(f->ctx, "fyko+d2lbbFgONRv9qkxdawL");
}

static void scram_sha1_only(hearth_client_config_t *cfg)
{
    cfg->tls = HEARTH_TLS_DISABLED;
    cfg->sasl_mechanisms = "SCRAM-SHA-1";
}

static void test_scram_sha1_rfc5802(void **state)
{
    (void)state;
    fake_t *f = start(false, scram_sha1_only);
    fix_rfc5802_nonce(f);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        SEND(S_HDR FEAT(F_MECHS(MECH("SCRAM-SHA-256") MECH("SCRAM-SHA-1")))),
        SASL_AUTH("SCRAM-SHA-1", RFC5802_C1),
        SASL_CHALLENGE(RFC5802_S1),
        SASL_RESPONSE(RFC5802_C2),
        SASL_SUCCESS(RFC5802_S2),
        EXPECT(HDR),
        SEND(S_HDR FEAT(F_BIND)),
        EXPECT(BIND_REQ("h1", "phone")),
        SEND(BIND_RES("h1", "user@localhost/phone")),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        END,
    };
    finish(f, script);
}

static void test_scram_sha256_rfc7677(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        SEND(S_HDR FEAT(F_MECHS(MECH("SCRAM-SHA-1") MECH("SCRAM-SHA-256") MECH("PLAIN")))),
        SASL_AUTH("SCRAM-SHA-256", RFC7677_C1),
        SASL_CHALLENGE(RFC7677_S1),
        SASL_RESPONSE(RFC7677_C2),
        /* The server-final message as a challenge, answered empty (RFC 6120 §6.3.10). */
        SASL_CHALLENGE(RFC7677_S2),
        SASL_RESPONSE(""),
        SEND(SUCCESS),
        EXPECT(HDR),
        SEND(S_HDR FEAT(F_BIND)),
        EXPECT(BIND_REQ("h1", "phone")),
        SEND(BIND_RES("h1", "user@localhost/phone")),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        END,
    };
    finish(f, script);
}

/* ---- the program's SCRAM cache hooks (hearth-bench --scram-cache) ---- */

static struct {
    int lookups, stores;
    hearth_scram_key_t key; /* the last one seen; pointers copied below */
    char hash[16], password[32];
    unsigned char salt[64];
    unsigned char salted[32];
    int know; /* lookup answers with salted */
} hook;

static void hook_seen(const hearth_scram_key_t *key)
{
    hook.key = *key;
    snprintf(hook.hash, sizeof(hook.hash), "%s", key->hash);
    snprintf(hook.password, sizeof(hook.password), "%s", key->password);
    assert_true(key->salt_len <= sizeof(hook.salt));
    memcpy(hook.salt, key->salt, key->salt_len);
}

static int hook_lookup(void *ud, const hearth_scram_key_t *key, unsigned char *salted)
{
    assert_ptr_equal(ud, &hook);
    hook.lookups++;
    hook_seen(key);
    if (!hook.know)
        return 0;
    memcpy(salted, hook.salted, key->salted_len);
    return 1;
}

static void hook_store(void *ud, const hearth_scram_key_t *key, const unsigned char *salted)
{
    assert_ptr_equal(ud, &hook);
    hook.stores++;
    hook_seen(key);
    memcpy(hook.salted, salted, key->salted_len);
}

/* The RFC 7677 login, its salted password first computed and handed to scram_store, then in a
 * fresh context (an empty cache of its own) taken from scram_lookup without PBKDF2: the same
 * bytes on the wire, and nothing stored again. */
static void test_scram_cache_hooks(void **state)
{
    (void)state;
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        SEND(S_HDR FEAT(F_MECHS(MECH("SCRAM-SHA-256")))),
        SASL_AUTH("SCRAM-SHA-256", RFC7677_C1),
        SASL_CHALLENGE(RFC7677_S1),
        SASL_RESPONSE(RFC7677_C2),
        SASL_SUCCESS(RFC7677_S2),
        EXPECT(HDR),
        SEND(S_HDR FEAT(F_BIND)),
        EXPECT(BIND_REQ("h1", "phone")),
        SEND(BIND_RES("h1", "user@localhost/phone")),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        END,
    };
    /* RFC 7677's salt, decoded from W22ZaJ0SNY7soEsUEjb6gQ== */
    static const unsigned char salt[16] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e,
                                           0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81};
    unsigned char want[32];
    assert_int_equal(
        PKCS5_PBKDF2_HMAC("pencil", 6, salt, sizeof(salt), 4096, EVP_sha256(), sizeof(want), want),
        1);
    memset(&hook, 0, sizeof(hook));
    hearth_ctx_config_t cc = {
        .scram_lookup = hook_lookup, .scram_store = hook_store, .scram_ud = &hook};
    next_ctx_cfg = &cc;

    finish(start(false, no_tls), script);
    assert_int_equal(hook.lookups, 1);
    assert_int_equal(hook.stores, 1);
    assert_string_equal(hook.hash, "SHA-256");
    assert_string_equal(hook.password, "pencil");
    assert_int_equal(hook.key.salt_len, sizeof(salt));
    assert_memory_equal(hook.salt, salt, sizeof(salt));
    assert_int_equal(hook.key.iterations, 4096);
    assert_int_equal(hook.key.salted_len, 32);
    assert_memory_equal(hook.salted, want, sizeof(want));

    hook.know = 1;
    next_ctx_cfg = &cc;
    finish(start(false, no_tls), script);
    assert_int_equal(hook.lookups, 2);
    assert_int_equal(hook.stores, 1);
}

/* A server that does not know the password cannot make the signature: no login. */
static void test_scram_wrong_server_signature(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        SEND(S_HDR FEAT(F_MECHS(MECH("SCRAM-SHA-256")))),
        SASL_AUTH("SCRAM-SHA-256", RFC7677_C1),
        SASL_CHALLENGE(RFC7677_S1),
        SASL_RESPONSE(RFC7677_C2),
        SASL_SUCCESS("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G8="),
        EXPECT(CLOSE_TAG),
        EVENT("disconnected EAUTH"),
        END,
    };
    finish(f, script);
}

/* And one that sends <success/> without any signature is refused just the same. */
static void test_scram_success_without_signature(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        SEND(S_HDR FEAT(F_MECHS(MECH("SCRAM-SHA-256")))),
        SASL_AUTH("SCRAM-SHA-256", RFC7677_C1),
        SASL_CHALLENGE(RFC7677_S1),
        SASL_RESPONSE(RFC7677_C2),
        SEND(SUCCESS),
        EXPECT(CLOSE_TAG),
        EVENT("disconnected EAUTH"),
        END,
    };
    finish(f, script);
}

static void test_sasl_failure(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        SEND(S_HDR FEAT(F_MECHS(MECH("SCRAM-SHA-256")))),
        SASL_AUTH("SCRAM-SHA-256", RFC7677_C1),
        SEND("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>"
             "<text>wrong password</text></failure>"),
        EXPECT(CLOSE_TAG),
        EVENT("disconnected EAUTH not-authorized"),
        END,
    };
    finish(f, script);
}

/* ---- TLS ---- */

#define F_PRE_TLS FEAT(F_STARTTLS F_MECHS(MECH("SCRAM-SHA-1") MECH("PLAIN")))
/* The login steps after TLS up to SASL with -PLUS, run by the library's own SCRAM server with
 * the TLS session's channel bindings. */
#define TLS_STEPS(features)                                                                        \
    ACCEPT, EXPECT(HDR), EVENT("connected"), SEND(S_HDR F_PRE_TLS), EXPECT(STARTTLS),              \
        SEND(PROCEED), TLS, EXPECT(HDR_FROM), SEND(S_HDR FEAT(features))
#define AFTER_AUTH                                                                                 \
    EXPECT(HDR_FROM), SEND(S_HDR FEAT(F_BIND)), EXPECT(BIND_REQ("h1", "phone")),                   \
        SEND(BIND_RES("h1", "user@localhost/phone")), EVENT("online user@localhost/phone"),        \
        EXPECT(PRESENCE)

static void check_binding(fake_t *f)
{
    hearth_client_info_t info;
    hearth_client_info(f->client, &info);
    assert_string_equal(info.tls_version, "TLSv1.3");
    assert_string_equal(info.mechanism, f->user);
    assert_string_equal(info.channel_binding, (const char *)f->user + strlen(f->user) + 1);
}

/* STARTTLS with a verified certificate, then SCRAM-SHA-256-PLUS with tls-exporter: the
 * library's server checks the binding data against its own TLS session. */
static void test_starttls_scram_plus_exporter(void **state)
{
    (void)state;
    fake_t *f = start(false, NULL);
    f->user = "SCRAM-SHA-256-PLUS\0tls-exporter";
    const step_t script[] = {
        TLS_STEPS(F_MECHS(MECH("SCRAM-SHA-256-PLUS") MECH("SCRAM-SHA-256"))
                      F_CB(CB("tls-server-end-point") CB("tls-exporter"))),
        SASL_SERVER("SCRAM-SHA-256-PLUS", "pencil"),
        AFTER_AUTH,
        CALL(check_binding),
        END,
    };
    finish(f, script);
}

/* A server announcing only tls-server-end-point (XEP-0440) gets that one. */
static void test_scram_plus_server_end_point(void **state)
{
    (void)state;
    fake_t *f = start(false, NULL);
    f->user = "SCRAM-SHA-1-PLUS\0tls-server-end-point";
    const step_t script[] = {
        TLS_STEPS(F_MECHS(MECH("SCRAM-SHA-1-PLUS") MECH("SCRAM-SHA-1"))
                      F_CB(CB("tls-server-end-point"))),
        SASL_SERVER("SCRAM-SHA-1-PLUS", "pencil"),
        AFTER_AUTH,
        CALL(check_binding),
        END,
    };
    finish(f, script);
}

/* Over TLS, a server that offers no -PLUS hears 'y': the client could have bound, so a server
 * whose -PLUS offer was stripped on the way notices (RFC 5802 §6). */
static void test_scram_y_flag(void **state)
{
    (void)state;
    fake_t *f = start(false, NULL);
    const step_t script[] = {
        TLS_STEPS(F_MECHS(MECH("SCRAM-SHA-256"))),
        SASL_AUTH("SCRAM-SHA-256", "y,,n=user,r=rOprNGfwEbeRWgbNEkqO"),
        SEND("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><aborted/></failure>"),
        EXPECT(CLOSE_TAG),
        EVENT("disconnected EAUTH aborted"),
        END,
    };
    finish(f, script);
}

/* PLAIN is fine once TLS protects it. */
static void test_starttls_plain(void **state)
{
    (void)state;
    fake_t *f = start(false, NULL);
    const step_t script[] = {
        TLS_STEPS(F_MECHS(MECH("PLAIN"))), EXPECT(AUTH_PLAIN), SEND(SUCCESS), AFTER_AUTH, END,
    };
    finish(f, script);
}

static void direct(hearth_client_config_t *cfg)
{
    cfg->tls = HEARTH_TLS_DIRECT;
}

/* XEP-0368: TLS from the first byte; the header, naming the account, comes after it. */
static void test_direct_tls(void **state)
{
    (void)state;
    fake_t *f = start(false, direct);
    const step_t script[] = {
        ACCEPT,
        TLS,
        EVENT("connected"),
        EXPECT(HDR_FROM),
        SEND(S_HDR FEAT(F_MECHS(MECH("PLAIN")))),
        EXPECT(AUTH_PLAIN),
        SEND(SUCCESS),
        AFTER_AUTH,
        END,
    };
    finish(f, script);
}

/* A certificate for another name is refused: no login, no reconnection. */
static void test_bad_certificate(void **state)
{
    (void)state;
    fake_t *f = start(true, NULL);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        SEND(S_HDR F_PRE_TLS),
        EXPECT(STARTTLS),
        SEND(PROCEED),
        TLS,
        EVENT("disconnected ECERT"),
        END,
    };
    finish(f, script);
}

static void no_verify(hearth_client_config_t *cfg)
{
    cfg->tls_no_verify = 1;
    cfg->tls_ca_file = NULL;
}

/* The explicit opt-out accepts it. */
static void test_no_verify_opt_out(void **state)
{
    (void)state;
    fake_t *f = start(true, no_verify);
    const step_t script[] = {
        TLS_STEPS(F_MECHS(MECH("PLAIN"))), EXPECT(AUTH_PLAIN), SEND(SUCCESS), AFTER_AUTH, END,
    };
    finish(f, script);
}

/* TLS required (the default) and a server that does not offer it: nothing is sent. */
static void test_tls_required_not_offered(void **state)
{
    (void)state;
    fake_t *f = start(false, NULL);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        SEND(S_HDR FEAT(F_MECHS(MECH("SCRAM-SHA-256") MECH("PLAIN")))),
        EXPECT(CLOSE_TAG),
        EVENT("disconnected EPOLICY"),
        END,
    };
    finish(f, script);
}

/* ---- bind ---- */

static void no_resource(hearth_client_config_t *cfg)
{
    no_tls_plain(cfg);
    cfg->jid = "user@localhost";
}

#define PLAIN_LOGIN                                                                                \
    ACCEPT, EXPECT(HDR), EVENT("connected"), SEND(S_HDR FEAT(F_MECHS(MECH("PLAIN")))),             \
        EXPECT(AUTH_PLAIN), SEND(SUCCESS), EXPECT(HDR)

static void test_bind_server_assigned(void **state)
{
    (void)state;
    fake_t *f = start(false, no_resource);
    const step_t script[] = {
        PLAIN_LOGIN,
        SEND(S_HDR FEAT(F_BIND)),
        EXPECT("<iq type='set' id='h1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>"),
        SEND(BIND_RES("h1", "user@localhost/4b2f")),
        EVENT("online user@localhost/4b2f"),
        EXPECT(PRESENCE),
        END,
    };
    finish(f, script);
}

static void test_bind_conflict(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls_plain);
    const step_t script[] = {
        PLAIN_LOGIN,
        SEND(S_HDR FEAT(F_BIND)),
        EXPECT(BIND_REQ("h1", "phone")),
        SEND("<iq type='error' id='h1'><error type='cancel'><conflict "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"),
        EVENT("disconnected ECONFLICT conflict"),
        END,
    };
    finish(f, script);
}

/* A bind result that names another account is a broken (or hostile) server. */
static void test_bind_other_account(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls_plain);
    const step_t script[] = {
        PLAIN_LOGIN,
        SEND(S_HDR FEAT(F_BIND)),
        EXPECT(BIND_REQ("h1", "phone")),
        SEND(BIND_RES("h1", "mallory@localhost/phone")),
        EXPECT("<stream:error><undefined-condition "
               "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text "
               "xmlns='urn:ietf:params:xml:ns:xmpp-streams'>bind result without our full "
               "JID</text></stream:error></stream:stream>"),
        EVENT("disconnected EXML"),
        END,
    };
    finish(f, script);
}

/* ---- listeners and stream features, for the managers ---- */

static void connect_again(fake_t *f)
{
    assert_int_equal(hearth_client_connect(f->client), 0);
}

static unsigned listener_id;

static void l_online(void *ud, hearth_client_t *c, const char *jid, int resumed)
{
    fake_event(ud, "listener online %s", jid);
    /* The features of the stream after authentication are known by now. */
    assert_int_equal(hearth_client_stream_feature(c, "ver", "urn:xmpp:features:rosterver"), 1);
    assert_int_equal(hearth_client_stream_feature(c, "csi", "urn:xmpp:csi:0"), 0);
}

static void l_disconnected(void *ud, hearth_client_t *c, const hearth_disconnect_info_t *i)
{
    fake_event(ud, "listener disconnected %s", hearth_err_name(i->reason));
    /* removed from inside its own event: not called again */
    assert_int_equal(hearth_client_remove_listener(c, listener_id), 0);
}

static void add_listener(hearth_client_config_t *cfg)
{
    no_tls_plain(cfg);
}

static void test_listeners_and_features(void **state)
{
    (void)state;
    fake_t *f = start(false, add_listener);
    hearth_client_events_t ev = {.online = l_online, .disconnected = l_disconnected};
    assert_int_equal(hearth_client_add_listener(f->client, &ev, f, &listener_id), 0);
    const step_t script[] = {
        PLAIN_LOGIN,
        SEND(S_HDR FEAT(F_BIND "<ver xmlns='urn:xmpp:features:rosterver'/>")),
        EXPECT(BIND_REQ("h1", "phone")),
        SEND(BIND_RES("h1", "user@localhost/phone")),
        /* listeners first, then the application */
        EVENT("listener online user@localhost/phone"),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        CLOSE,
        EVENT("listener disconnected ECLOSED"),
        EVENT("disconnected ECLOSED"),
        CALL(connect_again),
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        CLOSE,
        EVENT("disconnected ECLOSED"),
        END,
    };
    finish(f, script);
}

/* ---- online: IQs, handlers, ping ---- */

#define ONLINE_PLAIN                                                                               \
    PLAIN_LOGIN, SEND(S_HDR FEAT(F_BIND)), EXPECT(BIND_REQ("h1", "phone")),                        \
        SEND(BIND_RES("h1", "user@localhost/phone")), EVENT("online user@localhost/phone"),        \
        EXPECT(PRESENCE)

static void send_version_iq(fake_t *f)
{
    hearth_stanza_t *iq =
        hearth_stanza_new_iq("get", "pubsub.localhost", "query", "jabber:iq:version", NULL);
    assert_int_equal(hearth_client_iq(f->client, iq, 5000, fake_iq_cb, "version"), 0);
}

static void send_roster_iq(fake_t *f)
{
    hearth_stanza_t *iq = hearth_stanza_new_iq("get", NULL, "query", "jabber:iq:roster", NULL);
    assert_int_equal(hearth_client_iq(f->client, iq, 0, fake_iq_cb, "roster"), 0);
}

static int on_message(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    (void)c;
    fake_event(ud, "message from %s: %s", hearth_stanza_from(st),
               hearth_stanza_child_text(st, "body"));
    return HEARTH_HANDLED;
}

static void add_handler(fake_t *f)
{
    hearth_filter_t flt = {.kinds = HEARTH_STANZA_MESSAGE, .type = "chat", .from = "bob@localhost"};
    assert_int_equal(hearth_client_add_handler(f->client, &flt, 0, on_message, f, NULL), 0);
}

/* The response must come from where the request went (RFC 6120 §8.1.2.1): one from elsewhere
 * is dropped and the request times out; a request to the account is answered from it. */
static void test_iq_matching_and_timeout(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls_plain);
    const step_t script[] = {
        ONLINE_PLAIN,
        CALL(send_version_iq),
        EXPECT("<iq type='get' to='pubsub.localhost' id='h2'><query "
               "xmlns='jabber:iq:version'/></iq>"),
        SEND("<iq type='result' id='h2' from='mallory@localhost/x'/>"),
        ADVANCE(4999),
        CALL(send_roster_iq),
        EXPECT("<iq type='get' id='h3'><query xmlns='jabber:iq:roster'/></iq>"),
        SEND("<iq type='result' id='h3' from='user@localhost'/>"),
        EVENT("iq roster OK"),
        ADVANCE(1),
        EVENT("iq version ETIMEOUT"),
        END,
    };
    finish(f, script);
}

/* An IQ get nobody handles is answered <service-unavailable/>; a server ping is answered;
 * handlers see what their filter says, in priority order. */
static void test_incoming(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls_plain);
    const step_t script[] = {
        ONLINE_PLAIN,
        SEND("<iq type='get' id='v1' from='bob@localhost/pc'><query "
             "xmlns='jabber:iq:version'/></iq>"),
        EXPECT("<iq type='error' to='bob@localhost/pc' id='v1'><error type='cancel'>"
               "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"),
        SEND("<iq type='get' id='p1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"),
        EXPECT("<iq type='result' to='localhost' id='p1'/>"),
        /* No answer to a result or an error, even unknown ones. */
        SEND("<iq type='result' id='zz' from='localhost'/>"),
        CALL(add_handler),
        SEND("<message type='chat' from='carol@localhost/x'><body>no</body></message>"
             "<message type='chat' from='bob@localhost/pc'><body>hi</body></message>"
             "<message from='bob@localhost/pc'><body>normal</body></message>"),
        EVENT("message from bob@localhost/pc: hi"),
        END,
    };
    finish(f, script);
}

/* ---- stream errors and bad input ---- */

static void reconnecting(hearth_client_config_t *cfg)
{
    no_tls_plain(cfg);
    cfg->reconnect = 1;
}

/* <conflict/>: another login replaced this one; reconnecting would fight it. */
static void test_stream_error(void **state)
{
    (void)state;
    fake_t *f = start(false, reconnecting);
    const step_t script[] = {
        ONLINE_PLAIN,
        SEND("<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text "
             "xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced by new "
             "connection</text></stream:error></stream:stream>"),
        EXPECT(CLOSE_TAG),
        EVENT("disconnected ESTREAM <conflict/>"),
        END,
    };
    finish(f, script);
}

static void small_stanzas(hearth_client_config_t *cfg)
{
    no_tls_plain(cfg);
    cfg->max_stanza_bytes = 1024;
}

static void send_big(fake_t *f)
{
    char msg[1200];
    memset(msg, 'x', sizeof(msg));
    memcpy(msg, "<message><body>", 15);
    memcpy(msg + sizeof(msg) - 17, "</body></message>", 17);
    uv_buf_t b = uv_buf_init(msg, sizeof(msg));
    assert_int_equal(uv_try_write((uv_stream_t *)f->conn, &b, 1), (int)sizeof(msg));
}

static void test_oversized_stanza(void **state)
{
    (void)state;
    fake_t *f = start(false, small_stanzas);
    const step_t script[] = {
        ONLINE_PLAIN,
        CALL(send_big),
        EXPECT("<stream:error><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
               "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>stanza too large</text>"
               "</stream:error></stream:stream>"),
        EVENT("disconnected ELIMIT"),
        END,
    };
    finish(f, script);
}

static void test_malformed_input(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls_plain);
    const step_t script[] = {
        ONLINE_PLAIN,
        SEND("<message><body>x</bod></message>"),
        EXPECT("<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
               "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>mismatched tag</text>"
               "</stream:error></stream:stream>"),
        EVENT("disconnected EXML"),
        END,
    };
    finish(f, script);
}

/* ---- registration (XEP-0077) ---- */

static void register_create(hearth_client_config_t *cfg)
{
    no_tls_plain(cfg);
    cfg->register_mode = HEARTH_REGISTER_CREATE;
}

static void register_new(hearth_client_config_t *cfg)
{
    no_tls_plain(cfg);
    cfg->register_mode = HEARTH_REGISTER_CREATE_NEW;
}

#define REG_REQ                                                                                    \
    "<iq type='set' id='h1'><query xmlns='jabber:iq:register'><username>user</username>"           \
    "<password>pencil</password></query></iq>"
#define REG_CONFLICT                                                                               \
    "<iq type='error' id='h1'><error type='cancel'><conflict "                                     \
    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"

/* An account that exists is no error for a load generator: the login goes on. */
static void test_register_existing_ok(void **state)
{
    (void)state;
    fake_t *f = start(false, register_create);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        SEND(S_HDR FEAT(F_MECHS(MECH("PLAIN")) F_REGISTER)),
        EXPECT(REG_REQ),
        SEND(REG_CONFLICT),
        EVENT("registered EEXISTS"),
        EXPECT(AUTH_PLAIN),
        SEND(SUCCESS),
        EXPECT(HDR),
        SEND(S_HDR FEAT(F_BIND)),
        EXPECT(BIND_REQ("h2", "phone")),
        SEND(BIND_RES("h2", "user@localhost/phone")),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        END,
    };
    finish(f, script);
}

static void test_register_new_conflict(void **state)
{
    (void)state;
    fake_t *f = start(false, register_new);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        SEND(S_HDR FEAT(F_MECHS(MECH("PLAIN")) F_REGISTER)),
        EXPECT(REG_REQ),
        SEND(REG_CONFLICT),
        EVENT("disconnected EEXISTS conflict"),
        END,
    };
    finish(f, script);
}

/* ---- stream management ---- */

#define SM_ENABLE "<enable xmlns='urn:xmpp:sm:3' resume='true'/>"
#define SM_ENABLED "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true'/>"
#define SM_R "<r xmlns='urn:xmpp:sm:3'/>"
#define MSG(body) "<message type='chat' to='bob@localhost'><body>" body "</body></message>"

static void send_three(fake_t *f)
{
    const char *bodies[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++)
        assert_int_equal(hearth_client_send(f->client, hearth_stanza_new_message(
                                                           "bob@localhost", "chat", bodies[i])),
                         0);
}

static void check_unacked(fake_t *f)
{
    hearth_client_info_t info;
    hearth_client_info(f->client, &info);
    assert_true(info.sm_enabled);
    assert_true(info.sm_resumable);
    assert_int_equal(info.sm_unacked, 2);
}

/* Online with stream management, three messages out, two stanzas acknowledged, an inbound
 * stanza handled; then the connection drops. */
#define SM_SESSION                                                                                 \
    PLAIN_LOGIN, SEND(S_HDR FEAT(F_BIND F_SM)), EXPECT(BIND_REQ("h1", "phone")),                   \
        SEND(BIND_RES("h1", "user@localhost/phone")), EXPECT(SM_ENABLE),                           \
        EVENT("online user@localhost/phone"), EXPECT(PRESENCE), SEND(SM_ENABLED), EXPECT(SM_R),    \
        CALL(send_three), EXPECT(MSG("one") MSG("two") MSG("three")),                              \
        SEND("<a xmlns='urn:xmpp:sm:3' h='2'/>"), EVENT("acked 2"), CALL(check_unacked),           \
        SEND("<message from='bob@localhost/pc' type='chat'><body>hi</body></message>"), CLOSE,     \
        EVENT("disconnected ECLOSED reconnect 573"), ADVANCE_RECONNECT, PLAIN_LOGIN,               \
        SEND(S_HDR FEAT(F_BIND F_SM)),                                                             \
        EXPECT("<resume xmlns='urn:xmpp:sm:3' h='1' previd='sm-1'/>")

/* XEP-0198 resumption: the server handled one more; the last is resent, then acked. */
static void test_sm_resume_resends(void **state)
{
    (void)state;
    fake_t *f = start(false, reconnecting);
    const step_t script[] = {
        SM_SESSION,
        SEND("<resumed xmlns='urn:xmpp:sm:3' h='3' previd='sm-1'/>"),
        EVENT("acked 1"),
        EXPECT(MSG("three") SM_R),
        EVENT("resumed user@localhost/phone"),
        SEND("<a xmlns='urn:xmpp:sm:3' h='4'/>" SM_R),
        EVENT("acked 1"),
        EXPECT("<a xmlns='urn:xmpp:sm:3' h='1'/>"),
        END,
    };
    finish(f, script);
}

static void send_iq_before_drop(fake_t *f)
{
    send_roster_iq(f);
}

/* The resumption fails without h: a new session; what the old one may or may not have handled
 * is reported (HEARTH_SM_REPORT), an IQ's callback says ECLOSED. */
static void test_sm_failed_reports(void **state)
{
    (void)state;
    fake_t *f = start(false, reconnecting);
    const step_t script[] = {
        PLAIN_LOGIN,
        SEND(S_HDR FEAT(F_BIND F_SM)),
        EXPECT(BIND_REQ("h1", "phone")),
        SEND(BIND_RES("h1", "user@localhost/phone")),
        EXPECT(SM_ENABLE),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        SEND(SM_ENABLED),
        EXPECT(SM_R),
        SEND("<a xmlns='urn:xmpp:sm:3' h='1'/>"),
        EVENT("acked 1"),
        CALL(send_three),
        CALL(send_iq_before_drop),
        EXPECT(MSG("one") MSG("two") MSG(
            "three") "<iq type='get' id='h2'><query xmlns='jabber:iq:roster'/></iq>" SM_R),
        CLOSE,
        EVENT("disconnected ECLOSED reconnect 573"),
        ADVANCE_RECONNECT,
        PLAIN_LOGIN,
        SEND(S_HDR FEAT(F_BIND F_SM)),
        EXPECT("<resume xmlns='urn:xmpp:sm:3' h='0' previd='sm-1'/>"),
        SEND("<failed xmlns='urn:xmpp:sm:3'><item-not-found "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"),
        EXPECT(BIND_REQ("h3", "phone")),
        SEND(BIND_RES("h3", "user@localhost/phone")),
        EVENT("lost " MSG("one")),
        EVENT("lost " MSG("two")),
        EVENT("lost " MSG("three")),
        EVENT("iq roster ECLOSED"),
        EXPECT(SM_ENABLE),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        END,
    };
    finish(f, script);
}

/* <failed h='2'/>: the old session handled the first, so the other two are known not to have
 * been handled: resent in the new session, nothing reported. */
static void test_sm_failed_with_h_resends(void **state)
{
    (void)state;
    fake_t *f = start(false, reconnecting);
    const step_t script[] = {
        SM_SESSION,
        SEND("<failed xmlns='urn:xmpp:sm:3' h='3'><item-not-found "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"),
        EVENT("acked 1"),
        EXPECT(BIND_REQ("h2", "phone")),
        SEND(BIND_RES("h2", "user@localhost/phone")),
        EXPECT(SM_ENABLE MSG("three")),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        END,
    };
    finish(f, script);
}

/* Stanzas sent while a reconnection is pending wait for it (no stream management here). */
static void send_one(fake_t *f)
{
    assert_int_equal(
        hearth_client_send(f->client, hearth_stanza_new_message("bob@localhost", "chat", "one")),
        0);
}

static void test_queued_while_reconnecting(void **state)
{
    (void)state;
    fake_t *f = start(false, reconnecting);
    const step_t script[] = {
        ONLINE_PLAIN,
        CLOSE,
        EVENT("disconnected ECLOSED reconnect 573"),
        CALL(send_one),
        ADVANCE_RECONNECT,
        PLAIN_LOGIN,
        SEND(S_HDR FEAT(F_BIND)),
        EXPECT(BIND_REQ("h2", "phone")),
        SEND(BIND_RES("h2", "user@localhost/phone")),
        EXPECT(MSG("one")),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        END,
    };
    finish(f, script);
}

static void reconnecting_resend(hearth_client_config_t *cfg)
{
    reconnecting(cfg);
    cfg->sm_lost_policy = HEARTH_SM_RESEND;
}

/* HEARTH_SM_RESEND: what the old session may not have handled goes out again in the new one,
 * IQ requests included (their callbacks wait on for the answer). */
static void test_sm_failed_resend_policy(void **state)
{
    (void)state;
    fake_t *f = start(false, reconnecting_resend);
    const step_t script[] = {
        PLAIN_LOGIN,
        SEND(S_HDR FEAT(F_BIND F_SM)),
        EXPECT(BIND_REQ("h1", "phone")),
        SEND(BIND_RES("h1", "user@localhost/phone")),
        EXPECT(SM_ENABLE),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        SEND(SM_ENABLED),
        EXPECT(SM_R),
        SEND("<a xmlns='urn:xmpp:sm:3' h='1'/>"),
        EVENT("acked 1"),
        CALL(send_one),
        CALL(send_iq_before_drop),
        EXPECT(MSG("one") "<iq type='get' id='h2'><query xmlns='jabber:iq:roster'/></iq>" SM_R),
        CLOSE,
        EVENT("disconnected ECLOSED reconnect 573"),
        ADVANCE_RECONNECT,
        PLAIN_LOGIN,
        SEND(S_HDR FEAT(F_BIND F_SM)),
        EXPECT("<resume xmlns='urn:xmpp:sm:3' h='0' previd='sm-1'/>"),
        SEND("<failed xmlns='urn:xmpp:sm:3'><item-not-found "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>"),
        EXPECT(BIND_REQ("h3", "phone")),
        SEND(BIND_RES("h3", "user@localhost/phone")),
        EXPECT(
            SM_ENABLE MSG("one") "<iq type='get' id='h2'><query xmlns='jabber:iq:roster'/></iq>"),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        SEND("<iq type='result' id='h2'/>"),
        EVENT("iq roster OK"),
        END,
    };
    finish(f, script);
}

static void small_queue(hearth_client_config_t *cfg)
{
    no_tls_plain(cfg);
    cfg->sm_max_unacked = 3;
}

/* The unacknowledged queue is bounded: past it a send is refused and an ack asked for. */
static void send_fourth(fake_t *f)
{
    hearth_stanza_t *m = hearth_stanza_new_message("bob@localhost", "chat", "four");
    assert_int_equal(hearth_client_send(f->client, m), HEARTH_ELIMIT);
    hearth_client_info_t info;
    hearth_client_info(f->client, &info);
    assert_int_equal(info.sm_unacked, 3);
}

static void send_fourth_again(fake_t *f)
{
    assert_int_equal(
        hearth_client_send(f->client, hearth_stanza_new_message("bob@localhost", "chat", "four")),
        0);
}

static void test_sm_queue_bound(void **state)
{
    (void)state;
    fake_t *f = start(false, small_queue);
    const step_t script[] = {
        PLAIN_LOGIN,
        SEND(S_HDR FEAT(F_BIND F_SM)),
        EXPECT(BIND_REQ("h1", "phone")),
        SEND(BIND_RES("h1", "user@localhost/phone")),
        EXPECT(SM_ENABLE),
        EVENT("online user@localhost/phone"),
        EXPECT(PRESENCE),
        SEND(SM_ENABLED),
        EXPECT(SM_R),
        CALL(send_one),
        CALL(send_one),
        CALL(send_fourth),
        EXPECT(MSG("one") MSG("one")),
        SEND("<a xmlns='urn:xmpp:sm:3' h='3'/>"),
        EVENT("acked 3"),
        CALL(send_fourth_again),
        EXPECT(MSG("four") SM_R),
        END,
    };
    finish(f, script);
}

/* ---- reconnection ---- */

static void backoff_cfg(hearth_client_config_t *cfg)
{
    no_tls_plain(cfg);
    cfg->reconnect = 1;
    cfg->reconnect_min_ms = 1000;
    cfg->reconnect_max_ms = 4000;
    cfg->reconnect_max_attempts = 4;
}

/* Each delay lies in [base/2, base] with base doubling from the minimum to the maximum. */
static void check_backoff(fake_t *f)
{
    const unsigned base[] = {1000, 2000, 4000, 4000};
    int n = 0;
    for (int i = 0; i < f->nevents; i++) {
        const char *r = strstr(f->events[i], " reconnect ");
        if (!r)
            continue;
        unsigned d = (unsigned)strtoul(r + 11, NULL, 10);
        assert_true(n < 4);
        assert_true(d >= base[n] / 2 && d <= base[n]);
        n++;
    }
    assert_int_equal(n, 4);
}

#define FAILED_ATTEMPT(ev) ADVANCE_RECONNECT, ACCEPT, CLOSE, EVENT("connected"), EVENT(ev)

static void test_reconnect_backoff(void **state)
{
    (void)state;
    fake_t *f = start(false, backoff_cfg);
    const step_t script[] = {
        ONLINE_PLAIN,
        CLOSE,
        EVENT("disconnected ECLOSED reconnect 573"),
        FAILED_ATTEMPT("disconnected ECLOSED reconnect 1313"),
        FAILED_ATTEMPT("disconnected ECLOSED reconnect 2168"),
        FAILED_ATTEMPT("disconnected ECLOSED reconnect 2570"),
        /* the fourth failed attempt in a row: no more */
        FAILED_ATTEMPT("disconnected ECLOSED"),
        CALL(check_backoff),
        END,
    };
    finish(f, script);
}

/* ---- a server that closes in the middle of each step ---- */

static void reconnecting_tls(hearth_client_config_t *cfg)
{
    cfg->reconnect = 1;
}

static void test_close_mid_negotiation(void **state)
{
    (void)state;
    const step_t full[] = {
        ACCEPT,
        EXPECT(HDR),
        SEND(S_HDR F_PRE_TLS),
        EXPECT(STARTTLS),
        SEND(PROCEED),
        TLS,
        EXPECT(HDR_FROM),
        SEND(S_HDR FEAT(F_MECHS(MECH("SCRAM-SHA-256-PLUS")) F_CB(CB("tls-exporter")))),
        SASL_SERVER("SCRAM-SHA-256-PLUS", "pencil"),
        EXPECT(HDR_FROM),
        SEND(S_HDR FEAT(F_BIND)),
        EXPECT(BIND_REQ("h1", "phone")),
    };
    const size_t n = sizeof(full) / sizeof(*full);
    for (size_t cut = 1; cut <= n; cut++) {
        step_t script[32];
        memcpy(script, full, cut * sizeof(*full));
        script[cut] = (step_t)CLOSE;
        script[cut + 1] = (step_t)EVENT("connected");
        script[cut + 2] = (step_t)EVENT("disconnected ECLOSED");
        script[cut + 3] = (step_t)END;
        fake_t *f = start(false, reconnecting_tls);
        if (!fake_run(f, script, 10000))
            fprintf(stderr, "cut after step %zu\n", cut);
        assert_false(f->failed);
        assert_int_equal(hearth_client_state(f->client), HEARTH_CLIENT_IDLE);
        assert_true(fake_done(f));
        free(f);
    }
}

/* ---- the client's own keep-alive ---- */

static void keepalive(hearth_client_config_t *cfg)
{
    no_tls_plain(cfg);
    cfg->ping_interval_ms = 30000;
    cfg->iq_timeout_ms = 10000;
}

static void test_keepalive_detects_dead_server(void **state)
{
    (void)state;
    fake_t *f = start(false, keepalive);
    const step_t script[] = {
        ONLINE_PLAIN,
        ADVANCE(30000),
        EXPECT("<iq type='get' to='localhost' id='h2'><ping xmlns='urn:xmpp:ping'/></iq>"),
        SEND("<iq type='result' id='h2' from='localhost'/>"),
        /* a round trip, so that the client has read the answer before time moves */
        SEND("<iq type='get' id='s1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"),
        EXPECT("<iq type='result' to='localhost' id='s1'/>"),
        ADVANCE(30000),
        EXPECT("<iq type='get' to='localhost' id='h3'><ping xmlns='urn:xmpp:ping'/></iq>"),
        ADVANCE(10000),
        EVENT("disconnected ETIMEOUT"),
        END,
    };
    finish(f, script);
}

/* ---- the rest of the configuration ---- */

static void ip_domain(hearth_client_config_t *cfg)
{
    no_tls_plain(cfg);
    cfg->jid = "user@127.0.0.1/phone";
    cfg->host = NULL;
    cfg->bind_address = "127.0.0.2";
}

static void from_second_address(fake_t *f)
{
    struct sockaddr_storage peer;
    int len = sizeof(peer);
    assert_int_equal(uv_tcp_getpeername(f->conn, (struct sockaddr *)&peer, &len), 0);
    char ip[64];
    uv_ip4_name((struct sockaddr_in *)&peer, ip, sizeof(ip));
    assert_string_equal(ip, "127.0.0.2");
}

/* A domain that is an IP literal is connected to directly (no SRV query); the connection
 * leaves from the configured source address. */
static void test_ip_domain_and_source_address(void **state)
{
    (void)state;
    fake_t *f = start(false, ip_domain);
    const step_t script[] = {
        ACCEPT,
        CALL(from_second_address),
        EXPECT(HDR_START "to='127.0.0.1' version='1.0' xml:lang='en'>"),
        EVENT("connected"),
        CLOSE,
        EVENT("disconnected ECLOSED"),
        END,
    };
    finish(f, script);
}

/* A server that accepts and then says nothing: the negotiation deadline ends it. */
static void test_negotiation_timeout(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls_plain);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR),
        EVENT("connected"),
        ADVANCE(29999),
        SEND(S_HDR),
        ADVANCE(1),
        EVENT("disconnected ETIMEOUT"),
        CLIENT_EOF,
        END,
    };
    finish(f, script);
}

/* The blocking wrappers run the loop themselves; the script moves on from its callbacks. */
static void test_blocking_wrappers(void **state)
{
    (void)state;
    fake_t *f = start(false, no_tls_plain);
    hearth_client_t *c = f->client;
    const step_t script[] = {
        ONLINE_PLAIN,
        EXPECT("<iq type='get' id='h2'><query xmlns='jabber:iq:roster'/></iq>"),
        SEND("<iq type='result' id='h2'><query xmlns='jabber:iq:roster' ver='7'/></iq>"),
        EXPECT(CLOSE_TAG),
        SEND(CLOSE_TAG),
        EVENT("disconnected OK"),
        END,
    };
    fake_begin(f, script, 10000);
    assert_int_equal(hearth_client_connect_wait(c, 5000), 0);
    assert_string_equal(hearth_client_jid(c), "user@localhost/phone");
    hearth_stanza_t *resp = NULL;
    hearth_stanza_t *iq = hearth_stanza_new_iq("get", NULL, "query", "jabber:iq:roster", NULL);
    assert_int_equal(hearth_client_iq_wait(c, iq, 5000, &resp), 0);
    assert_non_null(resp);
    assert_string_equal(
        hearth_xml_attr(hearth_stanza_child(resp, "query", "jabber:iq:roster"), "ver"), "7");
    hearth_stanza_unref(resp);
    assert_int_equal(hearth_client_disconnect_wait(c, 5000), 0);
    assert_int_equal(hearth_client_state(c), HEARTH_CLIENT_IDLE);
    bool ok = fake_end(f);
    bool clean = fake_done(f);
    free(f);
    assert_true(ok);
    assert_true(clean);
}

/* ---- DNS SRV (RFC 6120 §3.2, XEP-0368) against a DNS server of the test's ---- */

static fake_srv_t srv_records[8];

/* A client of user@example.net with no host: where to go comes from SRV records. */
static fake_t *start_srv(void (*cfg_fn)(hearth_client_config_t *cfg), void (*records)(fake_t *f))
{
    fake_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fake_init(f, fx.cert, fx.key), 0);
    assert_non_null(fake_ctx(f));
    hearth__ctx_fix_nonce(f->ctx, "rOprNGfwEbeRWgbNEkqO");
    hearth__ctx_seed(f->ctx, 42);
    hearth__ctx_freeze(f->ctx);
    memset(srv_records, 0, sizeof(srv_records));
    records(f);
    int port = fake_dns(f, srv_records);
    assert_true(port > 0);
    hearth__ctx_set_nameserver(f->ctx, port);
    hearth_client_config_t cfg = {
        .jid = "user@example.net/phone",
        .password = "pencil",
        .tls_ca_file = fx.cert,
    };
    if (cfg_fn)
        cfg_fn(&cfg);
    assert_int_equal(hearth_client_new(f->ctx, &cfg, &fake_events, f, &f->client), 0);
    assert_int_equal(hearth_client_connect(f->client), 0);
    return f;
}

#define HDR_NET HDR_START "to='example.net' version='1.0' xml:lang='en'>"
#define HDR_NET_FROM                                                                               \
    HDR_START "from='user@example.net' to='example.net' version='1.0' xml:lang='en'>"

/* A closed port for a record that must be tried and fail. */
static unsigned closed_port(void)
{
    uv_loop_t loop;
    uv_tcp_t t;
    uv_loop_init(&loop);
    uv_tcp_init(&loop, &t);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&t, (struct sockaddr *)&a, 0);
    struct sockaddr_in b;
    int len = sizeof(b);
    uv_tcp_getsockname(&t, (struct sockaddr *)&b, &len);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return ntohs(b.sin_port);
}

/* _xmpp-client: the lower priority first; a refused one moves on to the next. */
static void starttls_records(fake_t *f)
{
    srv_records[0] =
        (fake_srv_t){"_xmpp-client._tcp.example.net", 10, 0, (unsigned)f->port, "127.0.0.1"};
    srv_records[1] =
        (fake_srv_t){"_xmpp-client._tcp.example.net", 0, 5, closed_port(), "127.0.0.1"};
}

static void check_dns_queries(fake_t *f)
{
    /* _xmpp-client only: with TLS disabled, _xmpps-client is not asked */
    assert_int_equal(f->dns_queries, 1);
}

static void test_srv_starttls(void **state)
{
    (void)state;
    fake_t *f = start_srv(no_tls_plain, starttls_records);
    const step_t script[] = {
        ACCEPT,
        EXPECT(HDR_NET),
        EVENT("connected"),
        CALL(check_dns_queries),
        CLOSE,
        EVENT("disconnected ECLOSED"),
        END,
    };
    finish(f, script);
}

/* _xmpps-client (XEP-0368): direct TLS to that port, before any _xmpp-client record; the
 * certificate must name the domain, not the record's target. */
static void direct_records(fake_t *f)
{
    srv_records[0] =
        (fake_srv_t){"_xmpp-client._tcp.example.net", 0, 0, closed_port(), "127.0.0.1"};
    srv_records[1] =
        (fake_srv_t){"_xmpps-client._tcp.example.net", 5, 0, (unsigned)f->port, "127.0.0.1"};
}

static void test_srv_direct_tls(void **state)
{
    (void)state;
    fake_t *f = start_srv(NULL, direct_records);
    const step_t script[] = {
        ACCEPT,
        TLS,
        EVENT("connected"),
        EXPECT(HDR_NET_FROM),
        SEND(S_HDR FEAT(F_MECHS(MECH("PLAIN")))),
        EXPECT("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
               "mechanism='PLAIN'>AHVzZXIAcGVuY2ls</auth>"),
        SEND(SUCCESS),
        EXPECT(HDR_NET_FROM),
        SEND(S_HDR FEAT(F_BIND)),
        EXPECT(BIND_REQ("h1", "phone")),
        SEND(BIND_RES("h1", "user@example.net/phone")),
        EVENT("online user@example.net/phone"),
        EXPECT(PRESENCE),
        END,
    };
    finish(f, script);
}

/* No SRV record at all: the domain itself (localhost, from /etc/hosts: no query leaves the
 * machine), on the configured port. */
static fake_t *fallback_fake;

static void fallback_cfg(hearth_client_config_t *cfg)
{
    no_tls_plain(cfg);
    cfg->jid = "user@localhost/phone";
    cfg->port = (unsigned)fallback_fake->port;
}

/* No records; the fake's port for the configuration. */
static void remember(fake_t *f)
{
    fallback_fake = f;
}

static void test_srv_none_falls_back_to_domain(void **state)
{
    (void)state;
    fake_t *f = start_srv(fallback_cfg, remember);
    const step_t script[] = {
        ACCEPT, EXPECT(HDR), EVENT("connected"), CLOSE, EVENT("disconnected ECLOSED"), END,
    };
    finish(f, script);
}

/* ---- stanzas ---- */

static void test_stanza_api(void **state)
{
    (void)state;
    const char *why = NULL;
    const char *xml =
        "<iq type='get' id='a1' from='bob@localhost/pc'><query xmlns='jabber:iq:version'/></iq>";
    hearth_stanza_t *st = hearth_stanza_parse(xml, strlen(xml), &why);
    assert_non_null(st);
    assert_int_equal(hearth_stanza_kind(st), HEARTH_STANZA_IQ);
    hearth_stanza_t *r = hearth_stanza_new_iq_result(st);
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_stanza_serialize(r, &b), 0);
    assert_string_equal(b.data, "<iq type='result' to='bob@localhost/pc' id='a1'/>");
    hearth_buf_reset(&b);
    hearth_stanza_t *e = hearth_stanza_new_error(st, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, "gone");
    assert_int_equal(hearth_stanza_serialize(e, &b), 0);
    assert_string_equal(b.data, "<iq type='error' to='bob@localhost/pc' id='a1'><error "
                                "type='cancel'><item-not-found "
                                "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
                                "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text></error>"
                                "</iq>");
    const char *text = NULL;
    assert_int_equal(hearth_stanza_error(e, &text), HEARTH_STANZA_ERR_ITEM_NOT_FOUND);
    assert_string_equal(text, "gone");
    assert_null(hearth_stanza_new_error(e, HEARTH_STANZA_ERR_CONFLICT, NULL)); /* never */
    hearth_stanza_t *k = hearth_stanza_ref(st);
    assert_ptr_equal(k, st);
    hearth_stanza_unref(k);
    hearth_stanza_unref(st);
    hearth_stanza_unref(r);
    hearth_stanza_unref(e);
    hearth_buf_free(&b);
    /* Not one stanza: refused with a reason. */
    assert_null(hearth_stanza_parse("<message/><message/>", 20, &why));
    assert_string_equal(why, "more than one element");
    assert_null(hearth_stanza_parse("<foo/>", 6, &why));
    assert_null(hearth_stanza_parse("<message>", 9, &why));
    assert_null(hearth_stanza_parse("<message><a:b/></message>", 25, &why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_refused_without_tls),
        cmocka_unit_test(test_plain_login_and_logout),
        cmocka_unit_test(test_listeners_and_features),
        cmocka_unit_test(test_scram_sha1_rfc5802),
        cmocka_unit_test(test_scram_sha256_rfc7677),
        cmocka_unit_test(test_scram_cache_hooks),
        cmocka_unit_test(test_scram_wrong_server_signature),
        cmocka_unit_test(test_scram_success_without_signature),
        cmocka_unit_test(test_sasl_failure),
        cmocka_unit_test(test_starttls_scram_plus_exporter),
        cmocka_unit_test(test_scram_plus_server_end_point),
        cmocka_unit_test(test_scram_y_flag),
        cmocka_unit_test(test_starttls_plain),
        cmocka_unit_test(test_direct_tls),
        cmocka_unit_test(test_bad_certificate),
        cmocka_unit_test(test_no_verify_opt_out),
        cmocka_unit_test(test_tls_required_not_offered),
        cmocka_unit_test(test_bind_server_assigned),
        cmocka_unit_test(test_bind_conflict),
        cmocka_unit_test(test_bind_other_account),
        cmocka_unit_test(test_iq_matching_and_timeout),
        cmocka_unit_test(test_incoming),
        cmocka_unit_test(test_stream_error),
        cmocka_unit_test(test_oversized_stanza),
        cmocka_unit_test(test_malformed_input),
        cmocka_unit_test(test_register_existing_ok),
        cmocka_unit_test(test_register_new_conflict),
        cmocka_unit_test(test_sm_resume_resends),
        cmocka_unit_test(test_sm_failed_reports),
        cmocka_unit_test(test_sm_failed_with_h_resends),
        cmocka_unit_test(test_sm_failed_resend_policy),
        cmocka_unit_test(test_sm_queue_bound),
        cmocka_unit_test(test_queued_while_reconnecting),
        cmocka_unit_test(test_reconnect_backoff),
        cmocka_unit_test(test_close_mid_negotiation),
        cmocka_unit_test(test_keepalive_detects_dead_server),
        cmocka_unit_test(test_ip_domain_and_source_address),
        cmocka_unit_test(test_negotiation_timeout),
        cmocka_unit_test(test_blocking_wrappers),
        cmocka_unit_test(test_stanza_api),
        cmocka_unit_test(test_srv_starttls),
        cmocka_unit_test(test_srv_direct_tls),
        cmocka_unit_test(test_srv_none_falls_back_to_domain),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
