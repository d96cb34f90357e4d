/* SCRAM server exchange (RFC 5802, RFC 7677) on OpenSSL's HMAC and hashes, with any channel
 * binding the caller hands over (tls-exporter, tls-server-end-point), and the strict parser of
 * the client's first message. Holds only the state of one exchange; no globals. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "scram.h"

#define HASH_MAX_LEN 32
#define SERVER_NONCE_BYTES 18 /* 24 base64 characters, 144 bits from the CSPRNG */
#define MAX_BINDINGS 4        /* of the types we know; more is a caller bug */

/* ---- grammar ---- */

static bool is_alpha(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF), 0 when there is none. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return len;
}

/* value = 1*value-char: UTF-8 without NUL or ','; saslname also forbids a bare '=' (checked by
 * scram__unescape). The caller has already split on ','. */
static bool value_ok(const char *p, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_seq((const unsigned char *)p + i, n - i);
        if (l == 0 || p[i] == '\0')
            return false;
        i += l;
    }
    return true;
}

int scram__unescape(const char *p, size_t n, char **out)
{
    *out = NULL;
    if (n == 0 || n > 3 * SCRAM_MAX_IDENTITY || !value_ok(p, n))
        return HEARTH_EINVAL;
    char *s = malloc(n + 1), *w = s;
    if (!s)
        return HEARTH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '=') {
            *w++ = p[i];
        } else if (i + 2 < n && p[i + 1] == '2' && p[i + 2] == 'C') {
            *w++ = ',';
            i += 2;
        } else if (i + 2 < n && p[i + 1] == '3' && p[i + 2] == 'D') {
            *w++ = '=';
            i += 2;
        } else {
            free(s);
            return HEARTH_EINVAL;
        }
    }
    *w = '\0';
    if ((size_t)(w - s) > SCRAM_MAX_IDENTITY) {
        free(s);
        return HEARTH_EINVAL;
    }
    *out = s;
    return 0;
}

static bool saslname_ok(const char *p, size_t n)
{
    char *tmp;
    if (scram__unescape(p, n, &tmp))
        return false;
    free(tmp);
    return true;
}

/* Length of the field at p, up to the next ',' or end. */
static size_t field_len(const char *p, const char *end)
{
    const char *c = memchr(p, ',', (size_t)(end - p));
    return c ? (size_t)(c - p) : (size_t)(end - p);
}

/* printable = %x21-2B / %x2D-7E: what a nonce is made of. */
static bool nonce_ok(const char *p, size_t n)
{
    if (n == 0 || n > SCRAM_MAX_NONCE)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x21 || c > 0x7e || c == ',')
            return false;
    }
    return true;
}

/* attr-val = ALPHA "=" value, for extensions nobody here defines (ignored, RFC 5802 section 5.1,
 * but they must be well formed). */
static bool attr_val_ok(const char *p, size_t n)
{
    return n >= 3 && is_alpha((unsigned char)p[0]) && p[1] == '=' && value_ok(p + 2, n - 2);
}

int scram__parse_first(const char *msg, size_t len, scram_first_t *out, const char **reason)
{
    memset(out, 0, sizeof(*out));
    const char *p = msg, *end = msg + len;
#define BAD(why)                                                                                   \
    do {                                                                                           \
        *reason = why;                                                                             \
        return HEARTH_EINVAL;                                                                      \
    } while (0)

    if (len == 0)
        BAD("SCRAM: empty message");
    if (memchr(msg, '\0', len))
        BAD("SCRAM: NUL in message");
    /* gs2-cbind-flag = ("p=" cb-name) / "n" / "y" */
    size_t n = field_len(p, end);
    if (p + n == end)
        BAD("SCRAM: bad gs2 header");
    if (n == 1 && (p[0] == 'n' || p[0] == 'y')) {
        out->cbflag = p[0];
    } else if (n > 2 && p[0] == 'p' && p[1] == '=') {
        if (n - 2 > SCRAM_MAX_CBNAME)
            BAD("SCRAM: bad channel binding name");
        for (size_t i = 2; i < n; i++) {
            unsigned char c = (unsigned char)p[i];
            if (!(is_alpha(c) || (c >= '0' && c <= '9') || c == '.' || c == '-'))
                BAD("SCRAM: bad channel binding name");
        }
        out->cbflag = 'p';
        out->cbname_off = 2;
        out->cbname_len = n - 2;
    } else {
        BAD("SCRAM: bad gs2 header");
    }
    p += n + 1;
    /* [ "a=" saslname ] "," */
    n = field_len(p, end);
    if (p + n == end)
        BAD("SCRAM: bad gs2 header");
    if (n > 0) {
        if (n < 3 || p[0] != 'a' || p[1] != '=')
            BAD("SCRAM: bad gs2 header");
        if (!saslname_ok(p + 2, n - 2))
            BAD("SCRAM: bad authzid");
        out->authzid_off = (size_t)(p + 2 - msg);
        out->authzid_len = n - 2;
    }
    p += n + 1;
    out->gs2_len = (size_t)(p - msg);
    /* client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions] */
    n = field_len(p, end);
    if (n >= 2 && p[0] == 'm' && p[1] == '=')
        BAD("SCRAM: unsupported mandatory extension");
    if (n < 2 || p[0] != 'n' || p[1] != '=' || p + n == end)
        BAD("SCRAM: missing username");
    if (!saslname_ok(p + 2, n - 2))
        BAD("SCRAM: bad username");
    out->user_off = (size_t)(p + 2 - msg);
    out->user_len = n - 2;
    p += n + 1;
    n = field_len(p, end);
    if (n < 3 || p[0] != 'r' || p[1] != '=')
        BAD("SCRAM: missing nonce");
    if (!nonce_ok(p + 2, n - 2))
        BAD("SCRAM: bad nonce");
    out->nonce_off = (size_t)(p + 2 - msg);
    out->nonce_len = n - 2;
    p += n;
    while (p < end) { /* "," attr-val, each */
        p++;
        n = field_len(p, end);
        if (!attr_val_ok(p, n))
            BAD("SCRAM: bad extension");
        p += n;
    }
    return 0;
#undef BAD
}

/* ---- helpers ---- */

const EVP_MD *scram__md(hearth_scram_hash_t h)
{
    switch (h) {
    case HEARTH_SCRAM_SHA1:
        return EVP_sha1();
    case HEARTH_SCRAM_SHA256:
        return EVP_sha256();
    }
    return NULL;
}

/* Strict base64 of a wire field into a fresh buffer; "=" alone is not the empty string here. */
static int wire_b64(const char *p, size_t n, char **out, size_t *out_len)
{
    if (n == 0 || (n == 1 && p[0] == '='))
        return HEARTH_EINVAL;
    return hearth_base64_decode(p, n, out, out_len);
}

/* ---- server ---- */

typedef enum { SCRAM_WAIT_FIRST, SCRAM_WAIT_FINAL, SCRAM_DONE } scram_stage_t;

struct scram_server {
    hearth_scram_hash_t hash;
    const EVP_MD *md;
    size_t hl;
    bool plus;
    scram_stage_t stage;
    struct {
        char type[SCRAM_MAX_CBNAME + 1];
        unsigned char data[HEARTH_SASL_CB_MAX];
        size_t len;
    } cb[MAX_BINDINGS];
    size_t ncb;
    int chosen_cb; /* index into cb for 'p', else -1 */
    bool have_secret;
    hearth_scram_secret_t secret;
    char server_nonce[SCRAM_MAX_NONCE + 1]; /* "" until the first message unless fixed */
    /* Kept from the first message for the second: gs2 header, client-first-message-bare and
     * our server-first-message, and the full nonce (client's then ours). */
    char *gs2;
    size_t gs2_len;
    char *bare;
    size_t bare_len;
    char *server_first;
    size_t server_first_len;
    char *nonce;
    size_t nonce_len;
};

scram_server_t *scram__server_new(hearth_scram_hash_t h, int plus, const hearth_sasl_binding_t *cb,
                                  size_t ncb)
{
    const EVP_MD *md = scram__md(h);
    if (!md || ncb > MAX_BINDINGS || (ncb && !cb))
        return NULL;
    scram_server_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->hash = h;
    s->md = md;
    s->hl = (size_t)EVP_MD_get_size(md);
    s->plus = plus;
    s->chosen_cb = -1;
    for (size_t i = 0; i < ncb; i++) {
        size_t tl = cb[i].type ? strlen(cb[i].type) : 0;
        if (tl == 0 || tl > SCRAM_MAX_CBNAME || !cb[i].data || cb[i].len == 0 ||
            cb[i].len > HEARTH_SASL_CB_MAX) {
            free(s);
            return NULL;
        }
        memcpy(s->cb[i].type, cb[i].type, tl + 1);
        memcpy(s->cb[i].data, cb[i].data, cb[i].len);
        s->cb[i].len = cb[i].len;
    }
    s->ncb = ncb;
    return s;
}

void scram__server_set_secret(scram_server_t *s, const hearth_scram_secret_t *secret)
{
    s->secret = *secret;
    s->secret.salt[sizeof(s->secret.salt) - 1] = '\0';
    s->secret.stored_key[sizeof(s->secret.stored_key) - 1] = '\0';
    s->secret.server_key[sizeof(s->secret.server_key) - 1] = '\0';
    s->have_secret = true;
}

void scram__server_fix_nonce(scram_server_t *s, const char *server_nonce)
{
    snprintf(s->server_nonce, sizeof(s->server_nonce), "%s", server_nonce);
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

/* The gs2 flag against what this session offers (RFC 5802 section 6). */
static int check_binding(scram_server_t *s, const char *msg, const scram_first_t *f)
{
    if (f->cbflag == 'p') {
        if (!s->plus)
            return HEARTH_EAUTH; /* binding asked under a mechanism that has none */
        for (size_t i = 0; i < s->ncb; i++) {
            if (strlen(s->cb[i].type) == f->cbname_len &&
                memcmp(s->cb[i].type, msg + f->cbname_off, f->cbname_len) == 0) {
                s->chosen_cb = (int)i;
                return 0;
            }
        }
        return HEARTH_EAUTH; /* a type this session does not offer */
    }
    if (s->plus)
        return HEARTH_EAUTH; /* -PLUS means binding */
    if (f->cbflag == 'y' && s->ncb > 0)
        return HEARTH_EAUTH; /* we offered -PLUS: the client's 'y' says it was stripped */
    return 0;
}

static int server_first(scram_server_t *s, const char *in, size_t in_len, char **out,
                        size_t *out_len)
{
    if (!s->have_secret)
        return HEARTH_ESASL;
    scram_first_t f;
    const char *reason;
    int rc = scram__parse_first(in, in_len, &f, &reason);
    if (rc)
        return rc;
    rc = check_binding(s, in, &f);
    if (rc)
        return rc;
    /* The stored secret must be whole before anything is said about it. */
    unsigned char salt[64];
    size_t salt_len;
    if (sasl__field_decode(s->secret.salt, salt, sizeof(salt), &salt_len) || salt_len == 0 ||
        s->secret.iterations < 1 || s->secret.iterations > (unsigned)INT32_MAX)
        return HEARTH_ESASL;
    if (!s->server_nonce[0]) {
        unsigned char raw[SERVER_NONCE_BYTES];
        char *b64;
        if (RAND_bytes(raw, sizeof(raw)) != 1)
            return HEARTH_ESASL;
        rc = hearth_base64_encode(raw, sizeof(raw), &b64);
        if (rc)
            return rc;
        snprintf(s->server_nonce, sizeof(s->server_nonce), "%s", b64);
        free(b64);
    }
    size_t snl = strlen(s->server_nonce);
    s->gs2 = dup_n(in, f.gs2_len);
    s->gs2_len = f.gs2_len;
    s->bare = dup_n(in + f.gs2_len, in_len - f.gs2_len);
    s->bare_len = in_len - f.gs2_len;
    s->nonce = malloc(f.nonce_len + snl + 1);
    if (!s->gs2 || !s->bare || !s->nonce)
        return HEARTH_ENOMEM;
    memcpy(s->nonce, in + f.nonce_off, f.nonce_len);
    memcpy(s->nonce + f.nonce_len, s->server_nonce, snl + 1);
    s->nonce_len = f.nonce_len + snl;
    int n = asprintf(&s->server_first, "r=%s,s=%s,i=%u", s->nonce, s->secret.salt,
                     s->secret.iterations);
    if (n < 0) {
        s->server_first = NULL;
        return HEARTH_ENOMEM;
    }
    s->server_first_len = (size_t)n;
    *out = dup_n(s->server_first, s->server_first_len);
    if (!*out)
        return HEARTH_ENOMEM;
    *out_len = s->server_first_len;
    return HEARTH_EAGAIN;
}

/* client-final-message = "c=" base64 "," "r=" nonce ["," extensions] "," "p=" base64: checks the
 * binding and the nonce, then the proof against StoredKey; answers "v=" ServerSignature. */
static int server_final(scram_server_t *s, const char *in, size_t in_len, char **out,
                        size_t *out_len)
{
    const char *end = in + in_len;
    if (memchr(in, '\0', in_len))
        return HEARTH_EINVAL;
    /* The proof is the last attribute; everything before its comma is what the AuthMessage
     * takes (client-final-message-without-proof). */
    const char *pp = NULL;
    for (const char *q = end; q > in; q--)
        if (q[-1] == ',') {
            pp = q;
            break;
        }
    if (!pp || end - pp < 3 || pp[0] != 'p' || pp[1] != '=')
        return HEARTH_EINVAL;
    size_t wp_len = (size_t)(pp - 1 - in);

    const char *p = in, *wend = in + wp_len;
    size_t n = field_len(p, wend);
    if (n < 2 || p[0] != 'c' || p[1] != '=')
        return HEARTH_EINVAL;
    const char *c_val = p + 2;
    size_t c_len = n - 2;
    p += n;
    if (p == wend)
        return HEARTH_EINVAL;
    p++;
    n = field_len(p, wend);
    if (n < 3 || p[0] != 'r' || p[1] != '=' || !nonce_ok(p + 2, n - 2))
        return HEARTH_EINVAL;
    const char *r_val = p + 2;
    size_t r_len = n - 2;
    p += n;
    while (p < wend) {
        p++;
        n = field_len(p, wend);
        if (!attr_val_ok(p, n))
            return HEARTH_EINVAL;
        p += n;
    }

    char *cbind = NULL, *proof = NULL, *auth = NULL;
    size_t cbind_len, proof_len;
    int rc = wire_b64(c_val, c_len, &cbind, &cbind_len);
    if (!rc)
        rc = wire_b64(pp + 2, (size_t)(end - pp - 2), &proof, &proof_len);
    if (rc)
        goto out;
    if (proof_len != s->hl) {
        rc = HEARTH_EINVAL;
        goto out;
    }
    /* c= must repeat our gs2 header, followed by this session's binding data for 'p'. */
    const unsigned char *cbd = s->chosen_cb >= 0 ? s->cb[s->chosen_cb].data : NULL;
    size_t cbl = s->chosen_cb >= 0 ? s->cb[s->chosen_cb].len : 0;
    if (cbind_len != s->gs2_len + cbl || memcmp(cbind, s->gs2, s->gs2_len) != 0 ||
        (cbl && CRYPTO_memcmp(cbind + s->gs2_len, cbd, cbl) != 0)) {
        rc = HEARTH_EAUTH;
        goto out;
    }
    if (r_len != s->nonce_len || memcmp(r_val, s->nonce, r_len) != 0) {
        rc = HEARTH_EAUTH;
        goto out;
    }

    unsigned char stored[HASH_MAX_LEN], server[HASH_MAX_LEN];
    size_t l1, l2;
    if (sasl__field_decode(s->secret.stored_key, stored, sizeof(stored), &l1) || l1 != s->hl ||
        sasl__field_decode(s->secret.server_key, server, sizeof(server), &l2) || l2 != s->hl) {
        rc = HEARTH_ESASL;
        goto out;
    }
    /* AuthMessage = client-first-message-bare "," server-first-message ","
     *               client-final-message-without-proof */
    size_t auth_len = s->bare_len + 1 + s->server_first_len + 1 + wp_len;
    auth = malloc(auth_len);
    if (!auth) {
        rc = HEARTH_ENOMEM;
        goto out_keys;
    }
    memcpy(auth, s->bare, s->bare_len);
    auth[s->bare_len] = ',';
    memcpy(auth + s->bare_len + 1, s->server_first, s->server_first_len);
    auth[s->bare_len + 1 + s->server_first_len] = ',';
    memcpy(auth + s->bare_len + 2 + s->server_first_len, in, wp_len);

    unsigned char sig[HASH_MAX_LEN], key[HASH_MAX_LEN], check[HASH_MAX_LEN];
    unsigned int l;
    /* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); H(ClientKey) must be StoredKey. */
    if (!HMAC(s->md, stored, (int)s->hl, (unsigned char *)auth, auth_len, sig, &l) ||
        (unsigned)l != s->hl) {
        rc = HEARTH_ESASL;
        goto out_keys;
    }
    for (size_t i = 0; i < s->hl; i++)
        key[i] = (unsigned char)proof[i] ^ sig[i];
    if (!EVP_Digest(key, s->hl, check, NULL, s->md, NULL)) {
        rc = HEARTH_ESASL;
        goto out_keys;
    }
    if (CRYPTO_memcmp(check, stored, s->hl) != 0) {
        rc = HEARTH_EAUTH;
        goto out_keys;
    }
    if (!HMAC(s->md, server, (int)s->hl, (unsigned char *)auth, auth_len, sig, &l)) {
        rc = HEARTH_ESASL;
        goto out_keys;
    }
    char *v64;
    rc = hearth_base64_encode(sig, s->hl, &v64);
    if (!rc) {
        if (asprintf(out, "v=%s", v64) < 0) {
            *out = NULL;
            rc = HEARTH_ENOMEM;
        } else {
            *out_len = strlen(*out);
        }
        free(v64);
    }
out_keys:
    OPENSSL_cleanse(key, sizeof(key));
    OPENSSL_cleanse(stored, sizeof(stored));
    OPENSSL_cleanse(server, sizeof(server));
out:
    free(cbind);
    free(proof);
    free(auth);
    return rc;
}

int scram__server_step(scram_server_t *s, const char *in, size_t in_len, char **out,
                       size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    int rc;
    switch (s->stage) {
    case SCRAM_WAIT_FIRST:
        if (in_len == 0)
            return HEARTH_EAGAIN; /* no initial response: an empty challenge asks for it */
        rc = server_first(s, in, in_len, out, out_len);
        break;
    case SCRAM_WAIT_FINAL:
        rc = server_final(s, in, in_len, out, out_len);
        break;
    default:
        return HEARTH_ESASL;
    }
    s->stage = rc == HEARTH_EAGAIN ? SCRAM_WAIT_FINAL : SCRAM_DONE;
    if (rc != HEARTH_EAGAIN && rc != 0) {
        free(*out);
        *out = NULL;
        *out_len = 0;
    }
    return rc;
}

void scram__server_free(scram_server_t *s)
{
    if (!s)
        return;
    free(s->gs2);
    free(s->bare);
    free(s->server_first);
    free(s->nonce);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}
