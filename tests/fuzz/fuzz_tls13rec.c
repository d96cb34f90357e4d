/* libFuzzer target for the TLS 1.3 record layer (lib/tls13rec.c), which reads what any peer of an
 * idle TLS connection sends. The first byte picks the suite and the mode: raw bytes fed as they
 * are (headers, lengths, tags that do not verify), or records sealed with the peer's keys from
 * (type, length, bytes) chunks, so that inputs reach what is inside a record that opens (content
 * types, padding, alerts, KeyUpdate split across records or followed by more). The second byte is
 * the size of the pieces the wire is fed in. Every call ends in one of its documented results. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls13rec.h"

static const uint16_t SUITES[] = {TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384,
                                  TLS13_CHACHA20_POLY1305_SHA256};
static const unsigned char SECRET_R[TLS13_SECRET_MAX] = {1, 2, 3};
static const unsigned char SECRET_W[TLS13_SECRET_MAX] = {4, 5, 6};

static void must(int cond)
{
    if (!cond)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    uint16_t suite = SUITES[(data[0] >> 1) % 3];
    size_t hash_len = suite == TLS13_AES_256_GCM_SHA384 ? 48 : 32;
    size_t piece = (size_t)data[1] + 1;
    tls13_rec_t rec, peer;
    must(tls13_rec_init(&rec, suite, SECRET_R, SECRET_W, hash_len, 0, 0) == 0);
    must(tls13_rec_init(&peer, suite, SECRET_W, SECRET_R, hash_len, 0, 0) == 0);
    hearth_buf_t wire = HEARTH_BUF_INIT, plain = HEARTH_BUF_INIT, reply = HEARTH_BUF_INIT;
    const uint8_t *p = data + 2;
    size_t n = size - 2;
    if (data[0] & 1) {
        must(hearth_buf_append(&wire, p, n) == 0);
    } else {
        while (n >= 3) {
            uint8_t type = p[0];
            size_t len = (size_t)p[1] << 8 | p[2];
            p += 3;
            n -= 3;
            if (len > n)
                len = n;
            must(tls13_rec_seal(&peer, type, p, len, &wire) == 0);
            /* a well-formed KeyUpdate: the peer's keys move on as a real peer's would */
            if (type == TLS13_CT_HANDSHAKE && len == 5 && p[0] == 24 && p[1] == 0 && p[2] == 0 &&
                p[3] == 1 && p[4] <= 1)
                must(tls13_rec_update(&peer, &peer.wr) == 0);
            p += len;
            n -= len;
        }
    }
    size_t off = 0, have = 0;
    while (off < wire.len) {
        have = have + piece > wire.len ? wire.len : have + piece;
        tls13_feed_t f;
        size_t plain_before = plain.len;
        int rc = tls13_rec_feed(&rec, wire.data + off, have - off, &plain, &reply, &f);
        must(rc == 0 || rc == HEARTH_ETLS);
        must(f.used <= have - off);
        if (rc != 0) {
            must(f.alert != TLS13_ALERT_CLOSE_NOTIFY); /* an error always names its alert */
            break;
        }
        must(plain.len >= plain_before);
        off += f.used;
        if (f.closed)
            break;
        if (have == wire.len && f.used == 0)
            break; /* a partial record at the end */
    }
    hearth_buf_free(&wire);
    hearth_buf_free(&plain);
    hearth_buf_free(&reply);
    tls13_rec_clear(&rec);
    tls13_rec_clear(&peer);
    return 0;
}
