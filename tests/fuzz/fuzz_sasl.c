/* libFuzzer target for the server side of SASL, which reads what any client sends before it is
 * authenticated (lib/sasl.c, lib/scram.c): the first byte picks the mechanism and the channel
 * bindings offered, the rest is the client's messages separated by "\n--\n". A "%r" in the
 * second message is replaced by the nonce of the server's challenge, so that inputs reach the
 * final message's checks. Every step answers one of its documented codes, and none after the
 * exchange has ended. Base64 decoding of each message is checked on the way (encode, decode
 * gives the same bytes). PLAIN is parsed only: its check runs PBKDF2, too slow to fuzz. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/sasl.h"

static const char *const MECHS[] = {"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS",
                                    "SCRAM-SHA-256-PLUS", "PLAIN"};
static const unsigned char CB_DATA[32] = {1, 2, 3, 4, 5, 6, 7, 8};
static const unsigned char SERVER_SECRET[32] = {42};

static void must(int cond)
{
    if (!cond)
        abort();
}

static void check_base64(const char *p, size_t n)
{
    char *dec = NULL, *enc = NULL, *again = NULL;
    size_t dlen = 0, alen = 0;
    if (hearth_base64_decode(p, n, &dec, &dlen) != 0)
        return;
    must(hearth_base64_encode(dec, dlen, &enc) == 0);
    must(hearth_base64_decode(enc, strlen(enc), &again, &alen) == 0 || dlen == 0);
    if (dlen)
        must(alen == dlen && memcmp(again, dec, dlen) == 0);
    free(dec);
    free(enc);
    free(again);
}

/* "%r" in msg replaced by nonce: a malloc'd copy, its length in *len. */
static char *with_nonce(const char *msg, size_t n, const char *nonce, size_t *len)
{
    size_t nl = strlen(nonce);
    char *out = malloc(n * (nl + 1) + 1), *w = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (msg[i] == '%' && i + 1 < n && msg[i + 1] == 'r') {
            memcpy(w, nonce, nl);
            w += nl;
            i++;
        } else {
            *w++ = msg[i];
        }
    }
    *len = (size_t)(w - out);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static hearth_sasl_t *ctx;
    if (!ctx && !(ctx = hearth_sasl_new()))
        abort();
    if (size < 1)
        return 0;
    const char *mech = MECHS[data[0] % 5];
    hearth_sasl_binding_t cb[2] = {{"tls-exporter", CB_DATA, 32},
                                   {"tls-server-end-point", CB_DATA, 32}};
    size_t ncb = (data[0] >> 3) % 3;
    const char *in = (const char *)data + 1, *end = (const char *)data + size;

    /* the messages, at most four */
    const char *msg[4];
    size_t len[4], nmsg = 0;
    while (nmsg < 4) {
        const char *sep = memmem(in, (size_t)(end - in), "\n--\n", 4);
        msg[nmsg] = in;
        len[nmsg] = sep ? (size_t)(sep - in) : (size_t)(end - in);
        check_base64(msg[nmsg], len[nmsg]);
        nmsg++;
        if (!sep)
            break;
        in = sep + 4;
    }

    hearth_sasl_initial_t ini;
    const char *reason = NULL;
    int rc = hearth_sasl_parse_initial(mech, msg[0], len[0], &ini, &reason);
    must(rc == 0 || (rc == HEARTH_EINVAL && reason));
    if (rc == 0) {
        must(ini.authcid != NULL);
        hearth_sasl_initial_clear(&ini);
    }
    if (!strcmp(mech, "PLAIN"))
        return 0;

    hearth_sasl_server_t *s = hearth_sasl_server_new(ctx, mech, cb, ncb);
    if (!s)
        return 0; /* -PLUS without bindings offered */
    hearth_scram_secret_t secret;
    must(hearth_scram_secret_fake(hearth_sasl_mech_hash(mech), SERVER_SECRET, sizeof(SERVER_SECRET),
                                  "fuzz", &secret) == 0);
    hearth_sasl_server_set_secret(s, &secret);
    char nonce[256] = "";
    int ended = 0;
    for (size_t i = 0; i < nmsg; i++) {
        size_t n = len[i];
        char *m = i == 1 ? with_nonce(msg[i], len[i], nonce, &n) : NULL;
        char *out = NULL;
        size_t out_len = 0;
        rc = hearth_sasl_server_step(s, m ? m : msg[i], n, &out, &out_len);
        free(m);
        if (ended) {
            must(rc == HEARTH_ESASL);
        } else {
            must(rc == HEARTH_EAGAIN || rc == 0 || rc == HEARTH_EAUTH || rc == HEARTH_EINVAL);
            ended = rc != HEARTH_EAGAIN;
        }
        if (i == 0 && rc == HEARTH_EAGAIN && out) {
            /* "r=<nonce>,s=...,i=...": the nonce for the next message */
            must(out_len > 2 && out[0] == 'r' && out[1] == '=');
            const char *comma = memchr(out, ',', out_len);
            size_t nl = comma ? (size_t)(comma - out) - 2 : out_len - 2;
            if (nl < sizeof(nonce)) {
                memcpy(nonce, out + 2, nl);
                nonce[nl] = '\0';
            }
        }
        free(out);
    }
    hearth_sasl_server_free(s);
    return 0;
}
