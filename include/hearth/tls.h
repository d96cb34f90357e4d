/* TLS as a layer without socket I/O (as jabberd2's sx): the connection feeds it the ciphertext it
 * read, and gets plaintext and the ciphertext to send back through callbacks. Shared by hearthd,
 * libhearth's client and the tests. A session is used by one thread at a time; a context may be
 * shared by all threads. */
#ifndef HEARTH_TLS_H
#define HEARTH_TLS_H

#include <stddef.h>

#include "hearth/error.h"

typedef struct hearth_tls_ctx hearth_tls_ctx_t;
/* Server context from PEM files. On failure NULL and *err (malloc'd message, may be NULL-pointer
 * arg) set. */
hearth_tls_ctx_t *hearth_tls_ctx_new_server(const char *cert_file, const char *key_file,
                                            char **err);
/* A new certificate and key for a server context in use: sessions made from now on use them,
 * sessions already made keep theirs. Safe while other threads make sessions from ctx. 0, or
 * HEARTH_EINVAL (not a server context) or HEARTH_ETLS (the files do not load or do not match:
 * *err says which; ctx is unchanged). */
int hearth_tls_ctx_reload_server(hearth_tls_ctx_t *ctx, const char *cert_file, const char *key_file,
                                 char **err) HEARTH_MUST_CHECK;
/* Client context; ca_file NULL = no verification. */
hearth_tls_ctx_t *hearth_tls_ctx_new_client(const char *ca_file, char **err);
/* Client context that always verifies the server's certificate (and, per session, its name):
 * against ca_file, or the system's default trust store when ca_file is NULL. */
hearth_tls_ctx_t *hearth_tls_ctx_new_client_verify(const char *ca_file, char **err);
/* Drops the caller's reference: sessions keep their context alive, so it may be freed (or
 * replaced, e.g. on a certificate reload) while sessions made from it still run. */
void hearth_tls_ctx_free(hearth_tls_ctx_t *ctx);

typedef struct hearth_tls_io {
    /* ciphertext to send to the peer; the callee copies it. Called once per TLS record (or
     * handshake message), so a connection should coalesce what it gets in one loop turn. */
    void (*write_raw)(void *ud, const char *data, size_t len);
    /* decrypted application data */
    void (*read_plain)(void *ud, const char *data, size_t len);
    /* optional: handshake finished (may call hearth_tls_write; must not free the session) */
    void (*handshake_done)(void *ud);
} hearth_tls_io_t;

typedef struct hearth_tls hearth_tls_t;
/* server_name: SNI for a client session, NULL for a server session (the ctx kind decides the
 * role). For a verifying client context the peer's certificate must match server_name (an IP
 * literal is checked against the IP SANs and not sent as SNI). NULL on ENOMEM. */
hearth_tls_t *hearth_tls_new(hearth_tls_ctx_t *ctx, const hearth_tls_io_t *io, void *ud,
                             const char *server_name);
/* Client only, before hearth_tls_start: offer this one ALPN protocol (e.g. "xmpp-client" for
 * XEP-0368 direct TLS). HEARTH_EINVAL for a server session or a bad name. */
int hearth_tls_set_alpn(hearth_tls_t *t, const char *proto) HEARTH_MUST_CHECK;
/* Client: sends ClientHello through write_raw. No-op for servers. */
int hearth_tls_start(hearth_tls_t *t) HEARTH_MUST_CHECK;
/* Feed ciphertext; runs the handshake, delivers plaintext via read_plain (possibly several calls),
 * sends what must be sent. Returns 0, or HEARTH_ETLS on a fatal error (then hearth_tls_error gives
 * the reason) or HEARTH_ECLOSED on a close_notify from the peer (plaintext before it has been
 * delivered; answer with hearth_tls_shutdown if wanted). Both are final: later feeds return the
 * same code. read_plain may call hearth_tls_write re-entrantly; it must not free t (nor feed it:
 * HEARTH_EBUSY). */
int hearth_tls_feed(hearth_tls_t *t, const char *data, size_t len) HEARTH_MUST_CHECK;
/* Encrypt and send plaintext (queued internally until the handshake is done; the queue holds at
 * most 1 MiB, beyond that HEARTH_ELIMIT). HEARTH_ETLS after a fatal error, HEARTH_ECLOSED after
 * a close_notify either way. */
int hearth_tls_write(hearth_tls_t *t, const char *data, size_t len) HEARTH_MUST_CHECK;
/* A TLS 1.3 server session with nothing under way (no partial record, no plaintext or output
 * held, no key update or shutdown pending) frees its SSL object and goes on with a record layer
 * of its own (about 250 bytes against OpenSSL's 13.8 KB): 1 when released, 0 when it is kept as
 * it is (any other session, or not now). Afterwards the exporter and the end-point hash are no
 * longer available (they serve authentication, done by then). Not from inside a callback. */
int hearth_tls_release(hearth_tls_t *t);
/* Send close_notify (nothing before the handshake is done). */
void hearth_tls_shutdown(hearth_tls_t *t);
int hearth_tls_handshake_done(const hearth_tls_t *t);
const char *hearth_tls_version(const hearth_tls_t *t); /* "TLSv1.3", ...; NULL before handshake */
const char *hearth_tls_alpn(const hearth_tls_t *t);    /* selected protocol or NULL */
/* RFC 9266 tls-exporter: 32 bytes of EKM with label "EXPORTER-Channel-Binding" and empty context.
 * Returns 0, or HEARTH_EINVAL before the handshake or when the session is not TLS 1.3 (RFC 9266
 * requires TLS 1.3 or extended master secret; we only offer it with 1.3). */
int hearth_tls_exporter(const hearth_tls_t *t, unsigned char out[32]) HEARTH_MUST_CHECK;
/* RFC 5929 tls-server-end-point: the hash of the server's certificate (a server session's own,
 * a client session's peer's) with the hash function of the certificate's signature algorithm,
 * SHA-256 where that is MD5 or SHA-1. *len gets the hash size (32 to 64). HEARTH_EINVAL before
 * the handshake, without a certificate, or when the signature uses no single hash function
 * (Ed25519, Ed448: RFC 5929 leaves the binding undefined for them). Any TLS version. */
#define HEARTH_TLS_END_POINT_MAX 64
int hearth_tls_server_end_point(const hearth_tls_t *t, unsigned char out[HEARTH_TLS_END_POINT_MAX],
                                size_t *len) HEARTH_MUST_CHECK;
const char *hearth_tls_error(const hearth_tls_t *t); /* last error text; "" if none, never NULL */
/* Client session: 1 when the handshake failed because the server's certificate was refused
 * (untrusted, expired, another name), else 0. */
int hearth_tls_cert_refused(const hearth_tls_t *t);
/* Sends nothing (call hearth_tls_shutdown first for a clean close). Not from inside a callback. */
void hearth_tls_free(hearth_tls_t *t);

/* Self-signed ECDSA P-256 certificate (SHA-256, valid 10 years, serial random) with the given DNS
 * names as subjectAltName (the first also as CN), written as PEM to cert_path and key_path (key
 * file mode 0600). */
int hearth_tls_generate_cert(const char *cert_path, const char *key_path, const char *const *names,
                             size_t n_names, char **err) HEARTH_MUST_CHECK;

#endif
