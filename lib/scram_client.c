/* SCRAM client exchange (RFC 5802, RFC 7677) on OpenSSL for the client library: any channel
 * binding the TLS session gives (tls-exporter, tls-server-end-point), the gs2 'y' flag, and the
 * salted password computed by the caller between two steps, so that PBKDF2 can run off the
 * loop and be cached. Holds only the state of one exchange; no globals. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsasl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "scram.h"

#define HASH_MAX_LEN 32
#define CLIENT_NONCE_BYTES 18 /* 24 base64 characters, 144 bits */

typedef enum { C_START, C_WAIT_FIRST, C_WAIT_SALTED, C_WAIT_FINAL, C_DONE } c_stage_t;

struct scram_client {
    hearth_scram_hash_t hash;
    const EVP_MD *md;
    size_t hl;
    c_stage_t stage;
    char *gs2;          /* gs2 header, e.g. "p=tls-exporter,," */
    char *bare;         /* client-first-message-bare */
    char *server_first; /* as received */
    char *nonce;        /* the combined nonce from server-first */
    unsigned char salt[SCRAM_CLIENT_MAX_SALT];
    size_t salt_len;
    unsigned iterations;
    unsigned char cb[HEARTH_SASL_CB_MAX];
    size_t cb_len;
    unsigned char server_sig[HASH_MAX_LEN]; /* expected v= */
};

static char *dup_n(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

/* saslname: SASLprep (query profile) and ',' '=' escaped (RFC 5802 §5.1). */
static int escape_name(const char *name, char **out)
{
    *out = NULL;
    char *prepped = NULL;
    int sprc = 0;
    if (gsasl_saslprep(name, GSASL_ALLOW_UNASSIGNED, &prepped, &sprc) != GSASL_OK || !*prepped) {
        gsasl_free(prepped);
        return HEARTH_EINVAL;
    }
    size_t n = strlen(prepped);
    if (n > SCRAM_MAX_IDENTITY) {
        gsasl_free(prepped);
        return HEARTH_EINVAL;
    }
    char *s = malloc(3 * n + 1), *w = s;
    if (!s) {
        gsasl_free(prepped);
        return HEARTH_ENOMEM;
    }
    for (const char *p = prepped; *p; p++) {
        if (*p == ',') {
            memcpy(w, "=2C", 3);
            w += 3;
        } else if (*p == '=') {
            memcpy(w, "=3D", 3);
            w += 3;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
    gsasl_free(prepped);
    *out = s;
    return 0;
}

scram_client_t *scram__client_new(hearth_scram_hash_t h, const char *username, char cbflag,
                                  const char *cbname, const unsigned char *cb, size_t cb_len,
                                  const char *nonce)
{
    const EVP_MD *md = scram__md(h);
    if (!md || !username || (cbflag != 'n' && cbflag != 'y' && cbflag != 'p'))
        return NULL;
    if (cbflag == 'p' && (!cbname || !*cbname || strlen(cbname) > SCRAM_MAX_CBNAME || !cb ||
                          cb_len == 0 || cb_len > HEARTH_SASL_CB_MAX))
        return NULL;
    scram_client_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->hash = h;
    c->md = md;
    c->hl = (size_t)EVP_MD_get_size(md);
    char *user = NULL, *rnd = NULL;
    if (escape_name(username, &user))
        goto fail;
    if (!nonce) {
        unsigned char raw[CLIENT_NONCE_BYTES];
        if (RAND_bytes(raw, sizeof(raw)) != 1 || hearth_base64_encode(raw, sizeof(raw), &rnd))
            goto fail;
        nonce = rnd;
    }
    if (cbflag == 'p') {
        memcpy(c->cb, cb, cb_len);
        c->cb_len = cb_len;
        if (asprintf(&c->gs2, "p=%s,,", cbname) < 0)
            c->gs2 = NULL;
    } else {
        c->gs2 = strdup(cbflag == 'y' ? "y,," : "n,,");
    }
    if (asprintf(&c->bare, "n=%s,r=%s", user, nonce) < 0)
        c->bare = NULL;
    if (!c->gs2 || !c->bare)
        goto fail;
    free(user);
    free(rnd);
    return c;
fail:
    free(user);
    free(rnd);
    scram__client_free(c);
    return NULL;
}

int scram__client_first(scram_client_t *c, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (c->stage != C_START)
        return HEARTH_ESASL;
    if (asprintf(out, "%s%s", c->gs2, c->bare) < 0) {
        *out = NULL;
        return HEARTH_ENOMEM;
    }
    *out_len = strlen(*out);
    c->stage = C_WAIT_FIRST;
    return 0;
}

/* server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," ext] */
int scram__client_server_first(scram_client_t *c, const char *in, size_t len,
                               const unsigned char **salt, size_t *salt_len, unsigned *iterations)
{
    if (c->stage != C_WAIT_FIRST)
        return HEARTH_ESASL;
    c->stage = C_DONE; /* until it is known good */
    if (len == 0 || len > SCRAM_CLIENT_MAX_MESSAGE || memchr(in, '\0', len))
        return HEARTH_EINVAL;
    char *msg = dup_n(in, len);
    if (!msg)
        return HEARTH_ENOMEM;
    int rc = HEARTH_EINVAL;
    const char *r = NULL, *s = NULL, *i = NULL;
    char *save = NULL;
    int field = 0;
    for (char *f = strtok_r(msg, ",", &save); f; f = strtok_r(NULL, ",", &save), field++) {
        if (field == 0 && strncmp(f, "m=", 2) == 0)
            goto out; /* a mandatory extension we cannot know */
        if (field == 0 && strncmp(f, "r=", 2) == 0)
            r = f + 2;
        else if (field == 1 && strncmp(f, "s=", 2) == 0)
            s = f + 2;
        else if (field == 2 && strncmp(f, "i=", 2) == 0)
            i = f + 2;
        else if (field < 3)
            goto out;
    }
    if (!r || !s || !i)
        goto out;
    /* The server's nonce must extend ours (RFC 5802 §5.1). */
    const char *mine = strstr(c->bare, ",r=") + 3;
    size_t ml = strlen(mine);
    if (strlen(r) <= ml || strncmp(r, mine, ml) != 0 || strlen(r) > SCRAM_MAX_NONCE) {
        rc = HEARTH_EAUTH;
        goto out;
    }
    for (const char *p = r; *p; p++)
        if (*p < 0x21 || *p > 0x7e)
            goto out;
    char *end;
    unsigned long it = strtoul(i, &end, 10);
    if (*end || end == i || *i < '0' || *i > '9')
        goto out;
    /* Too few iterations make the exchange cheap to attack offline, too many are a server
     * making the client spin: both refused, as a failed login. */
    if (it < SCRAM_CLIENT_MIN_ITERATIONS || it > SCRAM_CLIENT_MAX_ITERATIONS) {
        rc = HEARTH_EAUTH;
        goto out;
    }
    char *raw = NULL;
    size_t raw_len = 0;
    if (hearth_base64_decode(s, strlen(s), &raw, &raw_len) || raw_len == 0 ||
        raw_len > sizeof(c->salt)) {
        free(raw);
        goto out;
    }
    memcpy(c->salt, raw, raw_len);
    c->salt_len = raw_len;
    free(raw);
    c->iterations = (unsigned)it;
    c->nonce = strdup(r);
    c->server_first = dup_n(in, len);
    if (!c->nonce || !c->server_first) {
        rc = HEARTH_ENOMEM;
        goto out;
    }
    *salt = c->salt;
    *salt_len = c->salt_len;
    *iterations = c->iterations;
    c->stage = C_WAIT_SALTED;
    rc = 0;
out:
    free(msg);
    return rc;
}

int scram__salted_password(hearth_scram_hash_t h, const char *password, const unsigned char *salt,
                           size_t salt_len, unsigned iterations, unsigned char *out)
{
    const EVP_MD *md = scram__md(h);
    if (!md || !password || !salt || salt_len == 0 || iterations == 0 ||
        iterations > SCRAM_CLIENT_MAX_ITERATIONS)
        return HEARTH_EINVAL;
    char *prepped = NULL;
    int sprc = 0;
    if (gsasl_saslprep(password, GSASL_ALLOW_UNASSIGNED, &prepped, &sprc) != GSASL_OK) {
        gsasl_free(prepped);
        return HEARTH_EINVAL;
    }
    int ok = scram__pbkdf2(h, prepped, strlen(prepped), salt, salt_len, iterations, out) == 0;
    OPENSSL_cleanse(prepped, strlen(prepped));
    gsasl_free(prepped);
    return ok ? 0 : HEARTH_ESASL;
}

int scram__client_final(scram_client_t *c, const unsigned char *salted, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (c->stage != C_WAIT_SALTED)
        return HEARTH_ESASL;
    c->stage = C_DONE;
    int rc = HEARTH_ENOMEM;
    size_t gl = strlen(c->gs2);
    char *cbind = NULL, *without = NULL, *auth = NULL, *proof64 = NULL;
    unsigned char *cbraw = malloc(gl + c->cb_len);
    if (!cbraw)
        goto out;
    memcpy(cbraw, c->gs2, gl);
    if (c->cb_len)
        memcpy(cbraw + gl, c->cb, c->cb_len);
    if (hearth_base64_encode(cbraw, gl + c->cb_len, &cbind))
        goto out;
    if (asprintf(&without, "c=%s,r=%s", cbind, c->nonce) < 0) {
        without = NULL;
        goto out;
    }
    if (asprintf(&auth, "%s,%s,%s", c->bare, c->server_first, without) < 0) {
        auth = NULL;
        goto out;
    }
    unsigned char ckey[HASH_MAX_LEN], stored[HASH_MAX_LEN], sig[HASH_MAX_LEN], skey[HASH_MAX_LEN],
        proof[HASH_MAX_LEN];
    unsigned int l;
    int hl = (int)c->hl;
    size_t al = strlen(auth);
    rc = HEARTH_ESASL;
    if (!HMAC(c->md, salted, hl, (const unsigned char *)"Client Key", 10, ckey, &l) ||
        !EVP_Digest(ckey, c->hl, stored, NULL, c->md, NULL) ||
        !HMAC(c->md, stored, hl, (unsigned char *)auth, al, sig, &l) ||
        !HMAC(c->md, salted, hl, (const unsigned char *)"Server Key", 10, skey, &l) ||
        !HMAC(c->md, skey, hl, (unsigned char *)auth, al, c->server_sig, &l))
        goto wipe;
    for (size_t i = 0; i < c->hl; i++)
        proof[i] = ckey[i] ^ sig[i];
    rc = hearth_base64_encode(proof, c->hl, &proof64);
    if (!rc && asprintf(out, "%s,p=%s", without, proof64) < 0) {
        *out = NULL;
        rc = HEARTH_ENOMEM;
    }
    if (!rc) {
        *out_len = strlen(*out);
        c->stage = C_WAIT_FINAL;
    }
wipe:
    OPENSSL_cleanse(ckey, sizeof(ckey));
    OPENSSL_cleanse(skey, sizeof(skey));
    OPENSSL_cleanse(proof, sizeof(proof));
out:
    free(cbraw);
    free(cbind);
    free(without);
    free(auth);
    free(proof64);
    return rc;
}

/* server-final-message = (server-error / verifier) ["," extensions] */
int scram__client_verify(scram_client_t *c, const char *in, size_t len)
{
    if (c->stage != C_WAIT_FINAL)
        return HEARTH_ESASL;
    c->stage = C_DONE;
    if (len < 3 || memchr(in, '\0', len))
        return HEARTH_EINVAL;
    if (in[0] == 'e' && in[1] == '=')
        return HEARTH_EAUTH;
    if (in[0] != 'v' || in[1] != '=')
        return HEARTH_EINVAL;
    const char *end = memchr(in, ',', len);
    size_t vl = (end ? (size_t)(end - in) : len) - 2;
    char *v = NULL;
    size_t v_len = 0;
    if (hearth_base64_decode(in + 2, vl, &v, &v_len))
        return HEARTH_EINVAL;
    int ok = v_len == c->hl && CRYPTO_memcmp(v, c->server_sig, c->hl) == 0;
    free(v);
    return ok ? 0 : HEARTH_EAUTH;
}

size_t scram__client_hash_len(const scram_client_t *c)
{
    return c->hl;
}

void scram__client_free(scram_client_t *c)
{
    if (!c)
        return;
    free(c->gs2);
    free(c->bare);
    free(c->server_first);
    free(c->nonce);
    OPENSSL_cleanse(c, sizeof(*c));
    free(c);
}
