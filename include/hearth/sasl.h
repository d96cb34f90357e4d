/* SASL for both ends of a stream: SCRAM-SHA-1, SCRAM-SHA-256, their -PLUS variants and PLAIN.
 * The server side is our own on OpenSSL (channel bindings tls-exporter and tls-server-end-point,
 * which GNU SASL 2.2 cannot bind); the client side is GNU SASL's (tls-exporter only). The server
 * holds SCRAM keys only, never a password; credentials are fetched by the caller before the step
 * that needs them. */
#ifndef HEARTH_SASL_H
#define HEARTH_SASL_H

#include <stddef.h>

#include "hearth/error.h"

typedef enum { HEARTH_SCRAM_SHA1 = 1, HEARTH_SCRAM_SHA256 = 2 } hearth_scram_hash_t;
typedef struct hearth_scram_secret {
    char salt[64]; /* base64 */
    unsigned iterations;
    char stored_key[64]; /* base64 */
    char server_key[64]; /* base64 */
} hearth_scram_secret_t;
#define HEARTH_SCRAM_MIN_ITERATIONS 4096

/* Password → secret (SASLprep applied to the password with gsasl_saslprep; salt_len 16 typical).
 * HEARTH_EINVAL for an empty password, one SASLprep refuses, a salt of 0 or more than 45 bytes,
 * or iterations below HEARTH_SCRAM_MIN_ITERATIONS. PBKDF2: costly. */
int hearth_scram_secret_derive(hearth_scram_hash_t h, const char *password,
                               const unsigned char *salt, size_t salt_len, unsigned iterations,
                               hearth_scram_secret_t *out) HEARTH_MUST_CHECK;
/* Same with a fresh random 16-byte salt. */
int hearth_scram_secret_new(hearth_scram_hash_t h, const char *password, unsigned iterations,
                            hearth_scram_secret_t *out) HEARTH_MUST_CHECK;
/* Deterministic fake for unknown users: salt = first 16 bytes of HMAC-SHA256(server_secret,
 * "SHA-1" or "SHA-256" || 0 || username), random keys; iterations = HEARTH_SCRAM_MIN_ITERATIONS
 * (a server whose real secrets use another count sets out->iterations to it afterwards). */
int hearth_scram_secret_fake(hearth_scram_hash_t h, const unsigned char *server_secret,
                             size_t secret_len, const char *username,
                             hearth_scram_secret_t *out) HEARTH_MUST_CHECK;
/* 0 when password matches, HEARTH_EAUTH when not (PBKDF2: costly). Constant-time compare.
 * HEARTH_EINVAL when the secret itself is malformed. */
int hearth_scram_secret_check(hearth_scram_hash_t h, const hearth_scram_secret_t *s,
                              const char *password) HEARTH_MUST_CHECK;

/* One GNU SASL context; use from one thread at a time. GNU SASL keeps no global state, so one
 * session may step on another thread (PLAIN off the loop) while the others step on the loop. */
typedef struct hearth_sasl hearth_sasl_t;
hearth_sasl_t *hearth_sasl_new(void);
void hearth_sasl_free(hearth_sasl_t *ctx);

/* Parses the client's first message of mech ("PLAIN" or "SCRAM-*"): authcid (username as sent,
 * SCRAM's =2C/=3D unescaped; for PLAIN the authcid field) and authzid (NULL if absent/empty).
 * malloc'd. Returns HEARTH_EINVAL on malformed input (→ <malformed-request/>), *reason static.
 * For SCRAM also reports the gs2 cb flag: */
typedef struct hearth_sasl_initial {
    char *authcid;
    char *authzid;
    char cbflag;  /* SCRAM: 'n', 'y' or 'p'; 0 for PLAIN */
    char *cbname; /* SCRAM with 'p': the channel-binding type asked for; else NULL */
} hearth_sasl_initial_t;
int hearth_sasl_parse_initial(const char *mech, const char *msg, size_t len,
                              hearth_sasl_initial_t *out, const char **reason) HEARTH_MUST_CHECK;
void hearth_sasl_initial_clear(hearth_sasl_initial_t *in);

/* Mechanism name → hash (SCRAM-SHA-1[-PLUS] → SHA1, SCRAM-SHA-256[-PLUS] and PLAIN → SHA256);
 * 0 unknown. */
hearth_scram_hash_t hearth_sasl_mech_hash(const char *mech);
int hearth_sasl_mech_is_plus(const char *mech);

/* One channel binding a TLS session offers, by its RFC 5056 name: "tls-exporter" (RFC 9266, 32
 * bytes) or "tls-server-end-point" (RFC 5929, the certificate's hash, 32 to 64 bytes). */
#define HEARTH_SASL_CB_MAX 64
typedef struct hearth_sasl_binding {
    const char *type;
    const unsigned char *data;
    size_t len; /* 1 to HEARTH_SASL_CB_MAX */
} hearth_sasl_binding_t;

typedef struct hearth_sasl_server hearth_sasl_server_t;
/* mech: one of the five names. cb: the ncb (at most 4) bindings the TLS session offers, copied;
 * none (-PLUS mechanisms then fail to start) when the server offers no channel binding. NULL for
 * an unsupported mechanism or a malformed binding. A -PLUS client must name one of the types
 * (else HEARTH_EAUTH); with ncb > 0, a non-PLUS SCRAM client sending gs2 flag 'y' fails
 * (HEARTH_EAUTH: someone stripped -PLUS from our offer). */
hearth_sasl_server_t *hearth_sasl_server_new(hearth_sasl_t *ctx, const char *mech,
                                             const hearth_sasl_binding_t *cb, size_t ncb);
/* The stored secret for the user (for SCRAM-SHA-1*: the SHA-1 secret; SCRAM-SHA-256* and PLAIN:
 * the SHA-256 one, or for PLAIN the SHA-1 one when the account has only that: PLAIN tells them
 * apart by the key's size). Copied. Must be set before the step carrying the client's first
 * message. */
void hearth_sasl_server_set_secret(hearth_sasl_server_t *s, const hearth_scram_secret_t *secret);
/* PLAIN checked against SCRAM-SHA-1 keys (an account imported with those only): once the
 * password is proven, the same step derives SCRAM-SHA-256 keys with iterations, which
 * hearth_sasl_server_derived then gives (NULL before, or when nothing was derived). */
void hearth_sasl_server_derive_sha256(hearth_sasl_server_t *s, unsigned iterations);
const hearth_scram_secret_t *hearth_sasl_server_derived(const hearth_sasl_server_t *s);
int hearth_sasl_server_step_is_costly(const hearth_sasl_server_t *s); /* PLAIN: 1 */
/* One step with raw (already base64-decoded) client data; *out (malloc'd, raw, may be NULL/0
 * length) is the challenge or the success additional data. Returns HEARTH_EAGAIN (send challenge,
 * expect response), 0 (success; send <success> with *out), HEARTH_EAUTH (<not-authorized/>),
 * HEARTH_EINVAL (<malformed-request/>). Caller errors (no secret set, a step after the end) give
 * HEARTH_ESASL, allocation failure HEARTH_ENOMEM. */
int hearth_sasl_server_step(hearth_sasl_server_t *s, const char *in, size_t in_len, char **out,
                            size_t *out_len) HEARTH_MUST_CHECK;
void hearth_sasl_server_free(hearth_sasl_server_t *s);

/* Client side (client library, tests), through GNU SASL. NULL for an unsupported mechanism or
 * -PLUS without cb_data. cb_data is tls-exporter data, used by -PLUS only: with a non-PLUS SCRAM
 * mechanism the client sends 'n', never 'y' (GNU SASL 2.2.0's client fails rather than send 'y'),
 * so prefer -PLUS when offered. */
typedef struct hearth_sasl_client hearth_sasl_client_t;
hearth_sasl_client_t *hearth_sasl_client_new(hearth_sasl_t *ctx, const char *mech,
                                             const char *authcid, const char *password,
                                             const char *authzid /* NULL */,
                                             const unsigned char *cb_data, size_t cb_len);
/* Same return convention; first call with in=NULL gives the initial response. PLAIN returns 0 at
 * once (send the initial response, nothing more to check); SCRAM returns 0 after verifying the
 * server signature from <success>'s data, HEARTH_EAUTH when it does not match. */
int hearth_sasl_client_step(hearth_sasl_client_t *c, const char *in, size_t in_len, char **out,
                            size_t *out_len) HEARTH_MUST_CHECK;
void hearth_sasl_client_free(hearth_sasl_client_t *c);
/* Base64 helpers (malloc'd results, NUL-terminated). "=" alone decodes to empty (RFC 6120
 * §6.4.2). Encoding empty input gives "" (the caller writes "=" where RFC 6120 asks for it).
 * Strict: no whitespace, padding required. */
int hearth_base64_encode(const void *in, size_t len, char **out) HEARTH_MUST_CHECK;
int hearth_base64_decode(const char *in, size_t len, char **out,
                         size_t *out_len) HEARTH_MUST_CHECK; /* HEARTH_EINVAL on bad input */

#endif
