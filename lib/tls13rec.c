/* The TLS 1.3 record layer of an established connection (see tls13rec.h): HKDF-Expand-Label,
 * the per-record nonce, AEAD protection of TLSInnerPlaintext, KeyUpdate and alerts, each as
 * RFC 8446 sections 5 and 7 say. OpenSSL supplies the primitives only. */
#include "tls13rec.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <string.h>

#define TAG_LEN 16
#define HEADER_LEN 5
/* A record's protected part: the inner plaintext (2^14 + its type byte) and the tag, and the
 * 255 bytes of padding a peer may add beyond it (RFC 8446 5.2: at most 2^14 + 256). */
#define CIPHERTEXT_MAX (TLS13_RECORD_MAX + 256)
#define KEY_UPDATE 24 /* HandshakeType key_update */

static const EVP_CIPHER *cipher_of(uint16_t suite)
{
    switch (suite) {
    case TLS13_AES_128_GCM_SHA256:
        return EVP_aes_128_gcm();
    case TLS13_AES_256_GCM_SHA384:
        return EVP_aes_256_gcm();
    case TLS13_CHACHA20_POLY1305_SHA256:
        return EVP_chacha20_poly1305();
    }
    return NULL;
}

/* HKDF-Expand-Label(secret, label, "", out_len) (RFC 8446 7.1). */
static int expand_label(const tls13_rec_t *r, const unsigned char *secret, const char *label,
                        unsigned char *out, size_t out_len)
{
    unsigned char info[2 + 1 + 6 + 32 + 1];
    size_t label_len = strlen(label), n = 0;
    if (label_len > 32)
        return HEARTH_EINVAL;
    info[n++] = (unsigned char)(out_len >> 8);
    info[n++] = (unsigned char)out_len;
    info[n++] = (unsigned char)(6 + label_len);
    memcpy(info + n, "tls13 ", 6);
    n += 6;
    memcpy(info + n, label, label_len);
    n += label_len;
    info[n++] = 0; /* an empty context */

    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                         r->hash_len == 48 ? "SHA384" : "SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, r->hash_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
        OSSL_PARAM_construct_end(),
    };
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    int ok = ctx != NULL && EVP_KDF_derive(ctx, out, out_len, params) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    return ok ? 0 : HEARTH_ETLS;
}

/* The key and IV of d's current secret. */
static int derive(const tls13_rec_t *r, tls13_dir_t *d)
{
    if (expand_label(r, d->secret, "key", d->key, r->key_len) != 0 ||
        expand_label(r, d->secret, "iv", d->iv, sizeof(d->iv)) != 0)
        return HEARTH_ETLS;
    return 0;
}

int tls13_rec_init(tls13_rec_t *r, uint16_t suite, const unsigned char *read_secret,
                   const unsigned char *write_secret, size_t secret_len, uint64_t read_seq,
                   uint64_t write_seq)
{
    memset(r, 0, sizeof(*r));
    if (cipher_of(suite) == NULL)
        return HEARTH_EINVAL;
    r->suite = suite;
    r->hash_len = suite == TLS13_AES_256_GCM_SHA384 ? 48 : 32;
    r->key_len = suite == TLS13_AES_128_GCM_SHA256 ? 16 : 32;
    if (secret_len != r->hash_len) {
        memset(r, 0, sizeof(*r));
        return HEARTH_EINVAL;
    }
    memcpy(r->rd.secret, read_secret, secret_len);
    memcpy(r->wr.secret, write_secret, secret_len);
    r->rd.seq = read_seq;
    r->wr.seq = write_seq;
    if (derive(r, &r->rd) != 0 || derive(r, &r->wr) != 0) {
        tls13_rec_clear(r);
        return HEARTH_ETLS;
    }
    return 0;
}

int tls13_next_secret(size_t hash_len, const unsigned char *secret, unsigned char *out)
{
    if (hash_len != 32 && hash_len != 48)
        return HEARTH_EINVAL;
    tls13_rec_t r = {.hash_len = (uint8_t)hash_len};
    return expand_label(&r, secret, "traffic upd", out, hash_len);
}

int tls13_rec_update(const tls13_rec_t *r, tls13_dir_t *d)
{
    unsigned char next[TLS13_SECRET_MAX];
    if (tls13_next_secret(r->hash_len, d->secret, next) != 0)
        return HEARTH_ETLS;
    memcpy(d->secret, next, r->hash_len);
    OPENSSL_cleanse(next, sizeof(next));
    d->seq = 0;
    return derive(r, d);
}

void tls13_rec_clear(tls13_rec_t *r)
{
    OPENSSL_cleanse(r, sizeof(*r));
}

/* The per-record nonce: the IV with the sequence number, big-endian, XORed into its end. */
static void nonce_of(const tls13_dir_t *d, unsigned char nonce[12])
{
    memcpy(nonce, d->iv, 12);
    for (int i = 0; i < 8; i++)
        nonce[11 - i] ^= (unsigned char)(d->seq >> (8 * i));
}

/* AEAD over in[0..len) with the record header as additional data: out gets len bytes; on seal
 * the tag is written to tag, on open it is checked against tag. 0, or HEARTH_ETLS. */
static int aead(const tls13_rec_t *r, const tls13_dir_t *d, int seal, const unsigned char *hdr,
                const unsigned char *in, size_t len, unsigned char *out, unsigned char *tag)
{
    unsigned char nonce[12];
    nonce_of(d, nonce);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    int n = 0, ok = ctx != NULL &&
                    EVP_CipherInit_ex(ctx, cipher_of(r->suite), NULL, NULL, NULL, seal) == 1 &&
                    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL) == 1 &&
                    EVP_CipherInit_ex(ctx, NULL, NULL, d->key, nonce, seal) == 1 &&
                    EVP_CipherUpdate(ctx, NULL, &n, hdr, HEADER_LEN) == 1 &&
                    (len == 0 || EVP_CipherUpdate(ctx, out, &n, in, (int)len) == 1);
    if (ok && !seal)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_LEN, tag) == 1;
    ok = ok && EVP_CipherFinal_ex(ctx, out + (len ? (size_t)n : 0), &n) == 1;
    if (ok && seal)
        ok = EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_LEN, tag) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : HEARTH_ETLS;
}

int tls13_rec_seal(tls13_rec_t *r, uint8_t type, const void *data, size_t len, hearth_buf_t *out)
{
    const unsigned char *p = data;
    unsigned char inner[TLS13_RECORD_MAX + 1];
    do {
        size_t n = len > TLS13_RECORD_MAX ? TLS13_RECORD_MAX : len;
        if (r->wr.seq == UINT64_MAX)
            return HEARTH_ETLS; /* never reached: a new key long before (RFC 8446 5.3) */
        memcpy(inner, p, n);
        inner[n] = type;
        size_t body = n + 1 + TAG_LEN;
        unsigned char hdr[HEADER_LEN] = {TLS13_CT_APPLICATION_DATA, 0x03, 0x03,
                                         (unsigned char)(body >> 8), (unsigned char)body};
        int rc = hearth_buf_reserve(out, HEADER_LEN + body);
        if (rc != 0) {
            OPENSSL_cleanse(inner, n + 1);
            return rc;
        }
        unsigned char *w = (unsigned char *)out->data + out->len;
        memcpy(w, hdr, HEADER_LEN);
        if (aead(r, &r->wr, 1, hdr, inner, n + 1, w + HEADER_LEN, w + HEADER_LEN + n + 1) != 0) {
            OPENSSL_cleanse(inner, n + 1);
            return HEARTH_ETLS;
        }
        out->len += HEADER_LEN + body;
        out->data[out->len] = '\0';
        r->wr.seq++;
        p += n;
        len -= n;
    } while (len > 0);
    OPENSSL_cleanse(inner, sizeof(inner));
    return 0;
}

static int fail(tls13_feed_t *f, uint8_t alert)
{
    f->alert = alert;
    return HEARTH_ETLS;
}

/* Handshake bytes after the handshake: only KeyUpdate messages, each ending with its record (a
 * key change at a record boundary, RFC 8446 5.1); one may start in an earlier record. */
static int handshake(tls13_rec_t *r, const unsigned char *p, size_t n, hearth_buf_t *reply,
                     tls13_feed_t *f)
{
    for (size_t i = 0; i < n; i++) {
        if (r->hs_len >= 5)
            return fail(f, TLS13_ALERT_UNEXPECTED_MESSAGE);
        r->hs[r->hs_len++] = p[i];
        if (r->hs_len == 1 && r->hs[0] != KEY_UPDATE)
            return fail(f, TLS13_ALERT_UNEXPECTED_MESSAGE);
        if (r->hs_len == 4 && (r->hs[1] != 0 || r->hs[2] != 0 || r->hs[3] != 1))
            return fail(f, TLS13_ALERT_DECODE_ERROR);
        if (r->hs_len < 5)
            continue;
        uint8_t request = r->hs[4];
        if (request > 1)
            return fail(f, TLS13_ALERT_ILLEGAL_PARAMETER);
        if (i + 1 != n)
            return fail(f, TLS13_ALERT_UNEXPECTED_MESSAGE); /* more after a key change */
        r->hs_len = 0;
        if (tls13_rec_update(r, &r->rd) != 0)
            return fail(f, TLS13_ALERT_INTERNAL_ERROR);
        if (request == 1) {
            /* Answered under the current key, which then changes (RFC 8446 4.6.3). */
            static const unsigned char not_requested[] = {KEY_UPDATE, 0, 0, 1, 0};
            if (tls13_rec_seal(r, TLS13_CT_HANDSHAKE, not_requested, sizeof(not_requested),
                               reply) != 0 ||
                tls13_rec_update(r, &r->wr) != 0)
                return fail(f, TLS13_ALERT_INTERNAL_ERROR);
        }
    }
    return 0;
}

int tls13_rec_feed(tls13_rec_t *r, const void *in, size_t len, hearth_buf_t *plain,
                   hearth_buf_t *reply, tls13_feed_t *f)
{
    const unsigned char *p = in;
    unsigned char buf[CIPHERTEXT_MAX];
    memset(f, 0, sizeof(*f));
    while (!f->closed && len - f->used >= HEADER_LEN) {
        const unsigned char *hdr = p + f->used;
        size_t body = (size_t)hdr[3] << 8 | hdr[4];
        /* Only protected records now; the version is always 0x0303 (RFC 8446 5.1). */
        if (hdr[0] != TLS13_CT_APPLICATION_DATA || hdr[1] != 0x03 || hdr[2] != 0x03)
            return fail(f, TLS13_ALERT_UNEXPECTED_MESSAGE);
        if (body > CIPHERTEXT_MAX)
            return fail(f, TLS13_ALERT_RECORD_OVERFLOW);
        if (body < 1 + TAG_LEN)
            return fail(f, TLS13_ALERT_DECODE_ERROR);
        if (len - f->used < HEADER_LEN + body)
            break; /* the rest of this record has not come yet */
        size_t n = body - TAG_LEN;
        if (r->rd.seq == UINT64_MAX)
            return fail(f, TLS13_ALERT_INTERNAL_ERROR);
        unsigned char tag[TAG_LEN];
        memcpy(tag, hdr + HEADER_LEN + n, TAG_LEN);
        if (aead(r, &r->rd, 0, hdr, hdr + HEADER_LEN, n, buf, tag) != 0) {
            OPENSSL_cleanse(buf, n);
            return fail(f, TLS13_ALERT_BAD_RECORD_MAC);
        }
        r->rd.seq++;
        f->used += HEADER_LEN + body;
        /* The content type is the last byte that is not padding. */
        while (n > 0 && buf[n - 1] == 0)
            n--;
        if (n == 0)
            return fail(f, TLS13_ALERT_UNEXPECTED_MESSAGE);
        uint8_t type = buf[--n];
        if (n > TLS13_RECORD_MAX) {
            OPENSSL_cleanse(buf, n + 1);
            return fail(f, TLS13_ALERT_RECORD_OVERFLOW);
        }
        int rc = 0;
        if (r->hs_len > 0 && type != TLS13_CT_HANDSHAKE) {
            rc = fail(f, TLS13_ALERT_UNEXPECTED_MESSAGE); /* a handshake message cut short */
        } else if (type == TLS13_CT_APPLICATION_DATA) {
            rc = n > 0 && hearth_buf_append(plain, buf, n) != 0
                     ? fail(f, TLS13_ALERT_INTERNAL_ERROR)
                     : 0;
        } else if (type == TLS13_CT_HANDSHAKE) {
            /* never empty (RFC 8446 5.1) */
            rc = n == 0 ? fail(f, TLS13_ALERT_UNEXPECTED_MESSAGE) : handshake(r, buf, n, reply, f);
        } else if (type == TLS13_CT_ALERT) {
            if (n != 2 || buf[0] < 1 || buf[0] > 2)
                rc = fail(f, TLS13_ALERT_DECODE_ERROR);
            else if (buf[1] == TLS13_ALERT_CLOSE_NOTIFY)
                f->closed = 1;
            else
                rc = fail(f, TLS13_ALERT_NONE); /* the peer's error: close without a word */
        } else {
            rc = fail(f, TLS13_ALERT_UNEXPECTED_MESSAGE);
        }
        OPENSSL_cleanse(buf, n + 1);
        if (rc != 0)
            return rc;
    }
    return 0;
}
