/* The TLS 1.3 record layer (RFC 8446 section 5) of an established connection, apart from
 * OpenSSL: what an idle connection keeps once its SSL object is freed (about 230 bytes against
 * OpenSSL's 13.8 KB). It protects and opens records with the traffic secrets the handshake left
 * (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305), follows KeyUpdate both ways, and takes alerts.
 * Nothing else of TLS happens after a handshake that hearthd accepts: anything else is refused. */
#ifndef HEARTH_TLS13REC_H
#define HEARTH_TLS13REC_H

#include <stddef.h>
#include <stdint.h>

#include "hearth/buf.h"

/* The cipher suites it takes (their IANA numbers). */
#define TLS13_AES_128_GCM_SHA256 0x1301
#define TLS13_AES_256_GCM_SHA384 0x1302
#define TLS13_CHACHA20_POLY1305_SHA256 0x1303

#define TLS13_SECRET_MAX 48    /* SHA-384's length */
#define TLS13_RECORD_MAX 16384 /* plaintext bytes in one record (2^14) */

/* Record content types and the alerts this layer sends. */
#define TLS13_CT_ALERT 21
#define TLS13_CT_HANDSHAKE 22
#define TLS13_CT_APPLICATION_DATA 23
#define TLS13_ALERT_CLOSE_NOTIFY 0
#define TLS13_ALERT_UNEXPECTED_MESSAGE 10
#define TLS13_ALERT_BAD_RECORD_MAC 20
#define TLS13_ALERT_RECORD_OVERFLOW 22
#define TLS13_ALERT_ILLEGAL_PARAMETER 47
#define TLS13_ALERT_DECODE_ERROR 50
#define TLS13_ALERT_INTERNAL_ERROR 80
#define TLS13_ALERT_NONE 255 /* the peer sent a fatal alert: close without sending one */

/* One direction: its current traffic secret, the key and IV made from it, and the sequence
 * number of its next record. */
typedef struct tls13_dir {
    unsigned char secret[TLS13_SECRET_MAX];
    unsigned char key[32];
    unsigned char iv[12];
    uint64_t seq;
} tls13_dir_t;

typedef struct tls13_rec {
    uint16_t suite;
    uint8_t hash_len; /* 32 or 48 */
    uint8_t key_len;  /* 16 or 32 */
    tls13_dir_t rd, wr;
    /* A handshake message that a record ended inside of (only KeyUpdate is taken: 5 bytes). */
    unsigned char hs[8];
    uint8_t hs_len;
} tls13_rec_t;

/* From the traffic secrets the handshake ended with (read: the peer's; write: ours; each
 * secret_len bytes, the suite's hash length) and the sequence numbers of the next record each
 * way. 0, or HEARTH_EINVAL for a suite or length it does not take. */
int tls13_rec_init(tls13_rec_t *r, uint16_t suite, const unsigned char *read_secret,
                   const unsigned char *write_secret, size_t secret_len, uint64_t read_seq,
                   uint64_t write_seq) HEARTH_MUST_CHECK;
/* The next generation of a traffic secret of hash_len bytes (32 or 48) into out: what a
 * KeyUpdate makes ("traffic upd", RFC 8446 7.2). 0, or HEARTH_EINVAL/HEARTH_ETLS. */
int tls13_next_secret(size_t hash_len, const unsigned char *secret,
                      unsigned char *out) HEARTH_MUST_CHECK;
/* The next generation of one direction's secret ("traffic upd", RFC 8446 7.2), sequence 0. */
int tls13_rec_update(const tls13_rec_t *r, tls13_dir_t *d) HEARTH_MUST_CHECK;
/* len bytes of content type as records of at most TLS13_RECORD_MAX, appended to out. */
int tls13_rec_seal(tls13_rec_t *r, uint8_t type, const void *data, size_t len,
                   hearth_buf_t *out) HEARTH_MUST_CHECK;

/* What tls13_rec_feed found. */
typedef struct tls13_feed {
    size_t used;   /* bytes of the input taken (whole records only) */
    int closed;    /* the peer sent close_notify: nothing after it is read */
    uint8_t alert; /* on HEARTH_ETLS: the alert to send before closing (or TLS13_ALERT_NONE) */
} tls13_feed_t;

/* The records complete in in[0..len): application data appended to plain, a KeyUpdate followed
 * (answered in reply when the peer asked for one), close_notify noted. A partial record at the
 * end is left (f->used stops before it). HEARTH_ETLS on anything else, with f->alert; the
 * connection must then end. */
int tls13_rec_feed(tls13_rec_t *r, const void *in, size_t len, hearth_buf_t *plain,
                   hearth_buf_t *reply, tls13_feed_t *f) HEARTH_MUST_CHECK;

/* Wipes the secrets. */
void tls13_rec_clear(tls13_rec_t *r);

#endif
