/* SASL (include/hearth/sasl.h): server sessions fed with stored SCRAM keys (SCRAM in scram.c,
 * PLAIN here), client sessions through GNU SASL, SCRAM secret derivation with OpenSSL, and the
 * first-message parser the caller needs to know whose credentials to fetch. Touches no global
 * state of its own. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsasl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "hearth/sasl.h"
#include "scram.h"

#define MAX_IDENTITY SCRAM_MAX_IDENTITY
#define SALT_NEW_LEN 16
#define SALT_MAX_LEN 45 /* base64 fits in hearth_scram_secret_t.salt with its NUL */
#define HASH_MAX_LEN 32

/* ---- base64 ---- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict check (alphabet, length a multiple of 4, at most two '=' at the end); gives the decoded
 * size. EVP_DecodeBlock alone skips whitespace and counts padding as zero bytes. */
static int b64_validate(const char *in, size_t len, size_t *decoded)
{
    if (len % 4)
        return HEARTH_EINVAL;
    size_t pad = 0;
    if (len >= 1 && in[len - 1] == '=')
        pad++;
    if (len >= 2 && in[len - 2] == '=')
        pad++;
    for (size_t i = 0; i < len - pad; i++)
        if (b64_value((unsigned char)in[i]) < 0)
            return HEARTH_EINVAL;
    *decoded = len / 4 * 3 - pad;
    return 0;
}

static int b64_decode_into(const char *in, size_t len, unsigned char *buf, size_t cap,
                           size_t *out_len)
{
    size_t n;
    if (b64_validate(in, len, &n) || n > cap)
        return HEARTH_EINVAL;
    if (len > 0) {
        unsigned char tmp[((SALT_MAX_LEN + 2) / 3) * 3 + 3];
        unsigned char *dst = n + 3 <= sizeof(tmp) ? tmp : malloc(n + 3);
        if (!dst)
            return HEARTH_ENOMEM;
        int got = EVP_DecodeBlock(dst, (const unsigned char *)in, (int)len);
        if (got < 0 || (size_t)got < n) {
            if (dst != tmp)
                free(dst);
            return HEARTH_EINVAL;
        }
        memcpy(buf, dst, n);
        OPENSSL_cleanse(dst, (size_t)got);
        if (dst != tmp)
            free(dst);
    }
    *out_len = n;
    return 0;
}

int hearth_base64_encode(const void *in, size_t len, char **out)
{
    *out = NULL;
    if (len > ((size_t)1 << 30))
        return HEARTH_ELIMIT;
    char *s = malloc((len + 2) / 3 * 4 + 1);
    if (!s)
        return HEARTH_ENOMEM;
    EVP_EncodeBlock((unsigned char *)s, in, (int)len);
    s[(len + 2) / 3 * 4] = '\0';
    *out = s;
    return 0;
}

int hearth_base64_decode(const char *in, size_t len, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (len == 1 && in[0] == '=')
        len = 0; /* RFC 6120 §6.4.2: "=" is the empty response */
    if (len > ((size_t)1 << 30))
        return HEARTH_ELIMIT;
    size_t n;
    if (b64_validate(in, len, &n))
        return HEARTH_EINVAL;
    char *buf = malloc(n + 1);
    if (!buf)
        return HEARTH_ENOMEM;
    int rc = b64_decode_into(in, len, (unsigned char *)buf, n, out_len);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    return 0;
}

static void b64_field(const unsigned char *raw, size_t len, char field[64])
{
    /* Callers keep len <= 45, so the 60 characters and the NUL fit. */
    EVP_EncodeBlock((unsigned char *)field, raw, (int)len);
}

/* ---- SCRAM secrets ---- */

static const EVP_MD *hash_md(hearth_scram_hash_t h)
{
    return scram__md(h);
}

/* StoredKey and ServerKey (RFC 5802 §3) from an already SASLprepped password. */
static int scram_keys(hearth_scram_hash_t h, const char *prepped, const unsigned char *salt,
                      size_t salt_len, unsigned iterations, unsigned char *stored,
                      unsigned char *server)
{
    const EVP_MD *md = hash_md(h);
    int hl = EVP_MD_get_size(md);
    unsigned char salted[HASH_MAX_LEN], client[HASH_MAX_LEN];
    unsigned int l;
    int rc = HEARTH_ESASL;

    if (scram__pbkdf2(h, prepped, strlen(prepped), salt, salt_len, iterations, salted) != 0)
        goto out;
    if (!HMAC(md, salted, hl, (const unsigned char *)"Client Key", 10, client, &l))
        goto out;
    if (!EVP_Digest(client, (size_t)hl, stored, NULL, md, NULL))
        goto out;
    if (!HMAC(md, salted, hl, (const unsigned char *)"Server Key", 10, server, &l))
        goto out;
    rc = 0;
out:
    OPENSSL_cleanse(salted, sizeof(salted));
    OPENSSL_cleanse(client, sizeof(client));
    return rc;
}

/* SASLprep as a stored string (RFC 4013: unassigned code points refused), so that a password
 * accepted today keeps its meaning under a later Unicode version. */
static int prep_password(const char *password, char **out)
{
    *out = NULL;
    if (!password || !*password)
        return HEARTH_EINVAL;
    int sprc = 0;
    if (gsasl_saslprep(password, 0, out, &sprc) != GSASL_OK) {
        *out = NULL;
        return HEARTH_EINVAL;
    }
    if (!**out) {
        gsasl_free(*out);
        *out = NULL;
        return HEARTH_EINVAL;
    }
    return 0;
}

static void free_prepped(char *p)
{
    if (p) {
        OPENSSL_cleanse(p, strlen(p));
        gsasl_free(p);
    }
}

int hearth_scram_secret_derive(hearth_scram_hash_t h, const char *password,
                               const unsigned char *salt, size_t salt_len, unsigned iterations,
                               hearth_scram_secret_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!hash_md(h) || !salt || salt_len == 0 || salt_len > SALT_MAX_LEN ||
        iterations < HEARTH_SCRAM_MIN_ITERATIONS || iterations > (unsigned)INT32_MAX)
        return HEARTH_EINVAL;
    char *prepped;
    int rc = prep_password(password, &prepped);
    if (rc)
        return rc;
    unsigned char stored[HASH_MAX_LEN], server[HASH_MAX_LEN];
    rc = scram_keys(h, prepped, salt, salt_len, iterations, stored, server);
    free_prepped(prepped);
    if (rc)
        return rc;
    size_t hl = (size_t)EVP_MD_get_size(hash_md(h));
    b64_field(salt, salt_len, out->salt);
    b64_field(stored, hl, out->stored_key);
    b64_field(server, hl, out->server_key);
    out->iterations = iterations;
    return 0;
}

int hearth_scram_secret_new(hearth_scram_hash_t h, const char *password, unsigned iterations,
                            hearth_scram_secret_t *out)
{
    unsigned char salt[SALT_NEW_LEN];
    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        memset(out, 0, sizeof(*out));
        return HEARTH_ESASL;
    }
    return hearth_scram_secret_derive(h, password, salt, sizeof(salt), iterations, out);
}

int hearth_scram_secret_fake(hearth_scram_hash_t h, const unsigned char *server_secret,
                             size_t secret_len, const char *username, hearth_scram_secret_t *out)
{
    memset(out, 0, sizeof(*out));
    if (!hash_md(h) || !server_secret || secret_len == 0 || !username)
        return HEARTH_EINVAL;
    const char *label = h == HEARTH_SCRAM_SHA1 ? "SHA-1" : "SHA-256";
    size_t ll = strlen(label) + 1, ul = strlen(username);
    unsigned char *msg = malloc(ll + ul);
    if (!msg)
        return HEARTH_ENOMEM;
    memcpy(msg, label, ll); /* with its NUL: the separator */
    memcpy(msg + ll, username, ul);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml;
    unsigned char *ok = HMAC(EVP_sha256(), server_secret, (int)secret_len, msg, ll + ul, mac, &ml);
    free(msg);
    if (!ok)
        return HEARTH_ESASL;

    size_t hl = (size_t)EVP_MD_get_size(hash_md(h));
    unsigned char keys[2 * HASH_MAX_LEN];
    if (RAND_bytes(keys, (int)(2 * hl)) != 1)
        return HEARTH_ESASL;
    b64_field(mac, SALT_NEW_LEN, out->salt);
    b64_field(keys, hl, out->stored_key);
    b64_field(keys + hl, hl, out->server_key);
    out->iterations = HEARTH_SCRAM_MIN_ITERATIONS;
    OPENSSL_cleanse(keys, sizeof(keys));
    return 0;
}

int sasl__field_decode(const char *field, unsigned char *buf, size_t cap, size_t *len)
{
    size_t n = strnlen(field, 64);
    if (n == 64)
        return HEARTH_EINVAL;
    return b64_decode_into(field, n, buf, cap, len);
}

int hearth_scram_secret_check(hearth_scram_hash_t h, const hearth_scram_secret_t *s,
                              const char *password)
{
    const EVP_MD *md = hash_md(h);
    if (!md || !s)
        return HEARTH_EINVAL;
    size_t hl = (size_t)EVP_MD_get_size(md);
    unsigned char salt[SALT_MAX_LEN], want_stored[HASH_MAX_LEN], want_server[HASH_MAX_LEN];
    size_t salt_len, l1, l2;
    if (sasl__field_decode(s->salt, salt, sizeof(salt), &salt_len) || salt_len == 0 ||
        sasl__field_decode(s->stored_key, want_stored, sizeof(want_stored), &l1) || l1 != hl ||
        sasl__field_decode(s->server_key, want_server, sizeof(want_server), &l2) || l2 != hl ||
        s->iterations < 1 || s->iterations > (unsigned)INT32_MAX)
        return HEARTH_EINVAL;

    char *prepped;
    if (prep_password(password, &prepped))
        return HEARTH_EAUTH; /* a password SASLprep refuses was never stored */
    unsigned char stored[HASH_MAX_LEN], server[HASH_MAX_LEN];
    int rc = scram_keys(h, prepped, salt, salt_len, s->iterations, stored, server);
    free_prepped(prepped);
    if (rc)
        return rc;
    int diff = CRYPTO_memcmp(stored, want_stored, hl) | CRYPTO_memcmp(server, want_server, hl);
    OPENSSL_cleanse(stored, sizeof(stored));
    OPENSSL_cleanse(server, sizeof(server));
    return diff ? HEARTH_EAUTH : 0;
}

/* ---- mechanisms ---- */

static const struct mech {
    const char *name;
    hearth_scram_hash_t hash;
    bool plus, plain;
} mechs[] = {
    {"PLAIN", HEARTH_SCRAM_SHA256, false, true},
    {"SCRAM-SHA-1", HEARTH_SCRAM_SHA1, false, false},
    {"SCRAM-SHA-1-PLUS", HEARTH_SCRAM_SHA1, true, false},
    {"SCRAM-SHA-256", HEARTH_SCRAM_SHA256, false, false},
    {"SCRAM-SHA-256-PLUS", HEARTH_SCRAM_SHA256, true, false},
};

static const struct mech *mech_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < sizeof(mechs) / sizeof(mechs[0]); i++)
        if (strcmp(mechs[i].name, name) == 0)
            return &mechs[i];
    return NULL;
}

hearth_scram_hash_t hearth_sasl_mech_hash(const char *mech)
{
    const struct mech *m = mech_find(mech);
    return m ? m->hash : 0;
}

int hearth_sasl_mech_is_plus(const char *mech)
{
    const struct mech *m = mech_find(mech);
    return m && m->plus;
}

/* ---- first-message parser ---- */

void hearth_sasl_initial_clear(hearth_sasl_initial_t *in)
{
    if (!in)
        return;
    free(in->authcid);
    free(in->authzid);
    free(in->cbname);
    in->authcid = NULL;
    in->authzid = NULL;
    in->cbname = NULL;
    in->cbflag = 0;
}

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

static int parse_plain(const char *msg, size_t len, hearth_sasl_initial_t *out, const char **reason)
{
    const char *end = msg + len;
    const char *z1 = memchr(msg, '\0', len);
    const char *z2 = z1 ? memchr(z1 + 1, '\0', (size_t)(end - z1 - 1)) : NULL;
    if (!z2) {
        *reason = "PLAIN: missing field";
        return HEARTH_EINVAL;
    }
    if (memchr(z2 + 1, '\0', (size_t)(end - z2 - 1))) {
        *reason = "PLAIN: too many fields";
        return HEARTH_EINVAL;
    }
    size_t zl = (size_t)(z1 - msg), cl = (size_t)(z2 - z1 - 1), pl = (size_t)(end - z2 - 1);
    if (cl == 0) {
        *reason = "PLAIN: empty authcid";
        return HEARTH_EINVAL;
    }
    if (pl == 0) {
        *reason = "PLAIN: empty password";
        return HEARTH_EINVAL;
    }
    if (cl > MAX_IDENTITY || zl > MAX_IDENTITY) {
        *reason = "PLAIN: identity too long";
        return HEARTH_EINVAL;
    }
    out->authcid = dup_n(z1 + 1, cl);
    out->authzid = zl ? dup_n(msg, zl) : NULL;
    if (!out->authcid || (zl && !out->authzid)) {
        hearth_sasl_initial_clear(out);
        return HEARTH_ENOMEM;
    }
    return 0;
}

static int parse_scram(const char *msg, size_t len, hearth_sasl_initial_t *out, const char **reason)
{
    scram_first_t f;
    int rc = scram__parse_first(msg, len, &f, reason);
    if (rc)
        return rc;
    out->cbflag = f.cbflag;
    rc = scram__unescape(msg + f.user_off, f.user_len, &out->authcid);
    if (!rc && f.authzid_len)
        rc = scram__unescape(msg + f.authzid_off, f.authzid_len, &out->authzid);
    if (!rc && f.cbflag == 'p' && !(out->cbname = dup_n(msg + f.cbname_off, f.cbname_len)))
        rc = HEARTH_ENOMEM;
    if (rc)
        hearth_sasl_initial_clear(out);
    return rc;
}

int hearth_sasl_parse_initial(const char *mech, const char *msg, size_t len,
                              hearth_sasl_initial_t *out, const char **reason)
{
    static const char *unused;
    if (!reason)
        reason = &unused;
    *reason = NULL;
    memset(out, 0, sizeof(*out));
    const struct mech *m = mech_find(mech);
    if (!m) {
        *reason = "unknown mechanism";
        return HEARTH_EINVAL;
    }
    if (!msg || len == 0) {
        *reason = "empty message";
        return HEARTH_EINVAL;
    }
    return m->plain ? parse_plain(msg, len, out, reason) : parse_scram(msg, len, out, reason);
}

/* ---- sessions ---- */

struct hearth_sasl {
    Gsasl *gs;
};

/* The server side keeps no GNU SASL session: SCRAM runs in scram.c, PLAIN here. */
struct hearth_sasl_server {
    const struct mech *mech;
    scram_server_t *scram; /* SCRAM mechanisms */
    bool have_secret;      /* PLAIN */
    bool done;
    hearth_scram_secret_t secret;   /* PLAIN: the SHA-256 one, or the SHA-1 one of an account
                                     * that has no other (imported from another server) */
    hearth_scram_hash_t plain_hash; /* which of the two secret is, told by its key's size */
    unsigned derive_iterations;     /* PLAIN on SHA-1 keys: derive SHA-256 ones (0: no) */
    bool derived;
    hearth_scram_secret_t sha256; /* derived: the SHA-256 keys of the proven password */
};

struct hearth_sasl_client {
    Gsasl_session *sess;
    char *authcid, *password, *authzid, *cb_b64;
    bool done;
};

static int client_callback(Gsasl_session *sess, hearth_sasl_client_t *c, Gsasl_property prop)
{
    const char *val = NULL;
    switch (prop) {
    case GSASL_AUTHID:
        val = c->authcid;
        break;
    case GSASL_PASSWORD:
        val = c->password;
        break;
    case GSASL_AUTHZID:
        val = c->authzid;
        break;
    case GSASL_CB_TLS_EXPORTER:
        val = c->cb_b64;
        break;
    default:
        break;
    }
    if (!val)
        return GSASL_NO_CALLBACK;
    return gsasl_property_set(sess, prop, val);
}

static int callback(Gsasl *gs, Gsasl_session *sess, Gsasl_property prop)
{
    hearth_sasl_client_t *c = sess ? gsasl_session_hook_get(sess) : NULL;
    return c ? client_callback(sess, c, prop) : GSASL_NO_CALLBACK;
}

hearth_sasl_t *hearth_sasl_new(void)
{
    hearth_sasl_t *ctx = calloc(1, sizeof(*ctx));
    if (!ctx)
        return NULL;
    if (gsasl_init(&ctx->gs) != GSASL_OK) {
        free(ctx);
        return NULL;
    }
    gsasl_callback_set(ctx->gs, callback);
    return ctx;
}

void hearth_sasl_free(hearth_sasl_t *ctx)
{
    if (!ctx)
        return;
    gsasl_done(ctx->gs);
    free(ctx);
}

static int map_gsasl(int rc)
{
    switch (rc) {
    case GSASL_OK:
        return 0;
    case GSASL_NEEDS_MORE:
        return HEARTH_EAGAIN;
    case GSASL_MALLOC_ERROR:
        return HEARTH_ENOMEM;
    case GSASL_MECHANISM_PARSE_ERROR:
    case GSASL_BASE64_ERROR:
        return HEARTH_EINVAL;
    default:
        return HEARTH_EAUTH;
    }
}

/* One gsasl_step; the output is copied so that the caller frees it with free(). */
static int do_step(Gsasl_session *sess, const char *in, size_t in_len, char **out, size_t *out_len)
{
    char *o = NULL;
    size_t ol = 0;
    int rc = map_gsasl(gsasl_step(sess, in ? in : "", in ? in_len : 0, &o, &ol));
    if ((rc == 0 || rc == HEARTH_EAGAIN) && o && ol > 0) {
        *out = dup_n(o, ol);
        if (!*out)
            rc = HEARTH_ENOMEM;
        else
            *out_len = ol;
    }
    gsasl_free(o);
    return rc;
}

hearth_sasl_server_t *hearth_sasl_server_new(hearth_sasl_t *ctx, const char *mech,
                                             const hearth_sasl_binding_t *cb, size_t ncb)
{
    const struct mech *m = mech_find(mech);
    if (!ctx || !m || (m->plus && ncb == 0))
        return NULL;
    hearth_sasl_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->mech = m;
    if (!m->plain && !(s->scram = scram__server_new(m->hash, m->plus, cb, ncb))) {
        free(s);
        return NULL;
    }
    return s;
}

void hearth_sasl_server_set_secret(hearth_sasl_server_t *s, const hearth_scram_secret_t *secret)
{
    if (s->scram) {
        scram__server_set_secret(s->scram, secret);
        return;
    }
    s->secret = *secret;
    s->secret.salt[sizeof(s->secret.salt) - 1] = '\0';
    s->secret.stored_key[sizeof(s->secret.stored_key) - 1] = '\0';
    s->secret.server_key[sizeof(s->secret.server_key) - 1] = '\0';
    s->have_secret = true;
    unsigned char key[64];
    size_t kl = 0;
    s->plain_hash = sasl__field_decode(s->secret.stored_key, key, sizeof(key), &kl) == 0 && kl == 20
                        ? HEARTH_SCRAM_SHA1
                        : HEARTH_SCRAM_SHA256;
}

void hearth_sasl_server_derive_sha256(hearth_sasl_server_t *s, unsigned iterations)
{
    s->derive_iterations = iterations;
}

const hearth_scram_secret_t *hearth_sasl_server_derived(const hearth_sasl_server_t *s)
{
    return s->derived ? &s->sha256 : NULL;
}

void hearth_sasl__server_fix_nonce(hearth_sasl_server_t *s, const char *server_nonce)
{
    if (s->scram)
        scram__server_fix_nonce(s->scram, server_nonce);
}

int hearth_sasl_server_step_is_costly(const hearth_sasl_server_t *s)
{
    return s->mech->plain;
}

/* PLAIN (RFC 4616): authzid NUL authcid NUL password, checked against the stored SCRAM-SHA-256
 * secret, or the SCRAM-SHA-1 one when that is all the account has (PBKDF2, hence costly); the
 * caller fetched that secret for the same authcid. */
static int plain_step(hearth_sasl_server_t *s, const char *in, size_t in_len)
{
    hearth_sasl_initial_t ini = {0};
    const char *reason;
    int rc = hearth_sasl_parse_initial("PLAIN", in, in_len, &ini, &reason);
    hearth_sasl_initial_clear(&ini);
    if (rc)
        return rc;
    const char *z1 = memchr(in, '\0', in_len); /* the parse found both separators */
    const char *z2 = memchr(z1 + 1, '\0', in_len - (size_t)(z1 + 1 - in));
    size_t off = (size_t)(z2 + 1 - in);
    char *password = dup_n(in + off, in_len - off);
    if (!password)
        return HEARTH_ENOMEM;
    rc = hearth_scram_secret_check(s->plain_hash, &s->secret, password);
    if (rc == 0 && s->plain_hash == HEARTH_SCRAM_SHA1 && s->derive_iterations)
        s->derived = hearth_scram_secret_new(HEARTH_SCRAM_SHA256, password, s->derive_iterations,
                                             &s->sha256) == 0;
    OPENSSL_cleanse(password, in_len - off);
    free(password);
    if (rc == HEARTH_ENOMEM)
        return rc;
    return rc == 0 ? 0 : HEARTH_EAUTH; /* a malformed stored secret lets no one in either */
}

int hearth_sasl_server_step(hearth_sasl_server_t *s, const char *in, size_t in_len, char **out,
                            size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (s->done)
        return HEARTH_ESASL;
    if (!in)
        in_len = 0;
    int rc;
    if (s->scram) {
        rc = scram__server_step(s->scram, in, in_len, out, out_len);
    } else if (in_len == 0) {
        rc = HEARTH_EAGAIN; /* no initial response: an empty challenge asks for it */
    } else {
        rc = s->have_secret ? plain_step(s, in, in_len) : HEARTH_ESASL;
    }
    if (rc != HEARTH_EAGAIN)
        s->done = true;
    return rc;
}

void hearth_sasl_server_free(hearth_sasl_server_t *s)
{
    if (!s)
        return;
    scram__server_free(s->scram);
    OPENSSL_cleanse(&s->secret, sizeof(s->secret));
    OPENSSL_cleanse(&s->sha256, sizeof(s->sha256));
    free(s);
}

static void free_secret_str(char *p)
{
    if (p) {
        OPENSSL_cleanse(p, strlen(p));
        free(p);
    }
}

hearth_sasl_client_t *hearth_sasl_client_new(hearth_sasl_t *ctx, const char *mech,
                                             const char *authcid, const char *password,
                                             const char *authzid, const unsigned char *cb_data,
                                             size_t cb_len)
{
    const struct mech *m = mech_find(mech);
    if (!ctx || !m || !authcid || !password || (m->plus && (!cb_data || cb_len == 0)))
        return NULL;
    hearth_sasl_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->authcid = strdup(authcid);
    c->password = strdup(password);
    if (!c->authcid || !c->password)
        goto fail;
    if (authzid && *authzid && !(c->authzid = strdup(authzid)))
        goto fail;
    /* Only -PLUS gets the data: gsasl 2.2.0's non-PLUS SCRAM client given binding data fails
     * its first step (GSASL_AUTHENTICATION_ERROR) instead of sending 'y'. */
    if (m->plus && hearth_base64_encode(cb_data, cb_len, &c->cb_b64))
        goto fail;
    if (gsasl_client_start(ctx->gs, m->name, &c->sess) != GSASL_OK) {
        c->sess = NULL;
        goto fail;
    }
    gsasl_session_hook_set(c->sess, c);
    return c;
fail:
    hearth_sasl_client_free(c);
    return NULL;
}

int hearth_sasl_client_step(hearth_sasl_client_t *c, const char *in, size_t in_len, char **out,
                            size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (c->done)
        return HEARTH_ESASL;
    int rc = do_step(c->sess, in, in_len, out, out_len);
    if (rc != HEARTH_EAGAIN)
        c->done = true;
    if (rc && rc != HEARTH_EAGAIN) {
        free(*out);
        *out = NULL;
        *out_len = 0;
    }
    return rc;
}

void hearth_sasl_client_free(hearth_sasl_client_t *c)
{
    if (!c)
        return;
    if (c->sess)
        gsasl_finish(c->sess);
    free(c->authcid);
    free_secret_str(c->password);
    free(c->authzid);
    free(c->cb_b64);
    free(c);
}
