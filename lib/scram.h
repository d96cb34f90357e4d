/* SCRAM's wire protocol inside libhearth (not installed): the strict client-first-message parser
 * that hearth_sasl_parse_initial and the server share, and the server exchange of RFC 5802 and
 * RFC 7677 written on OpenSSL, with the channel-binding types GNU SASL 2.2 lacks. */
#ifndef HEARTH_SCRAM_H
#define HEARTH_SCRAM_H

#include <stddef.h>

#include <openssl/evp.h>

#include "hearth/sasl.h"

/* An identity longer than the longest JID (RFC 7622: 3071 bytes) is malformed, not a lookup. */
#define SCRAM_MAX_IDENTITY 3071
/* Client nonces run 16 to 48 characters in practice; a longer one is malformed (it is copied
 * into two messages and hashed). */
#define SCRAM_MAX_NONCE 512
#define SCRAM_MAX_CBNAME 64 /* the registered names are under 25 characters */

/* Where the parts of a client-first-message lie: offsets into the message, no copies. */
typedef struct scram_first {
    char cbflag;                     /* 'n', 'y' or 'p' */
    size_t cbname_off, cbname_len;   /* 'p' only */
    size_t authzid_off, authzid_len; /* escaped saslname; len 0 when absent */
    size_t gs2_len;                  /* gs2-header, both its commas included */
    size_t user_off, user_len;       /* escaped saslname */
    size_t nonce_off, nonce_len;
} scram_first_t;

/* RFC 5802 section 7's grammar, strictly: HEARTH_EINVAL with a static *reason on anything else,
 * including the reserved mandatory-extension attribute m= and invalid UTF-8 in a saslname. */
int scram__parse_first(const char *msg, size_t len, scram_first_t *out, const char **reason);
/* saslname with "=2C" and "=3D" unescaped; malloc'd; HEARTH_EINVAL for a stray '=', an empty or
 * too long name. */
int scram__unescape(const char *p, size_t n, char **out);

const EVP_MD *scram__md(hearth_scram_hash_t h); /* NULL for an unknown value */
/* PBKDF2 with HMAC-h, one block (the hash's size) into out: SCRAM's SaltedPassword of a password
 * already SASLprepped. HEARTH_EINVAL for an unknown h or 0 iterations (lib/pbkdf2.c). */
int scram__pbkdf2(hearth_scram_hash_t h, const char *pw, size_t pw_len, const unsigned char *salt,
                  size_t salt_len, unsigned iterations, unsigned char *out);
/* A base64 field of hearth_scram_secret_t into buf (at most cap bytes). */
int sasl__field_decode(const char *field, unsigned char *buf, size_t cap, size_t *len);

typedef struct scram_server scram_server_t;
/* cb: the bindings this TLS session offers (copied); plus: the mechanism is a -PLUS one. NULL on
 * ENOMEM or a binding longer than HEARTH_SASL_CB_MAX. */
scram_server_t *scram__server_new(hearth_scram_hash_t h, int plus, const hearth_sasl_binding_t *cb,
                                  size_t ncb);
/* The caller's secret; checked (base64, key sizes) at the first message. */
void scram__server_set_secret(scram_server_t *s, const hearth_scram_secret_t *secret);
/* hearth_sasl_server_step's contract for one SCRAM message (in is raw, not NUL-terminated). */
int scram__server_step(scram_server_t *s, const char *in, size_t in_len, char **out,
                       size_t *out_len);
void scram__server_free(scram_server_t *s);

void scram__server_fix_nonce(scram_server_t *s, const char *server_nonce);
/* Tests only: the server's part of the nonce, so that an RFC example exchange replays byte for
 * byte (the server draws 18 random bytes otherwise). At most SCRAM_MAX_NONCE characters. */
void hearth_sasl__server_fix_nonce(hearth_sasl_server_t *s, const char *server_nonce);

/* ---- client (the client library's; GNU SASL's client stays in sasl.c for tests) ---- */

/* The server's salt and iteration count the client accepts: RFC 7677's minimum, and a ceiling
 * that keeps one PBKDF2 under a second or so. */
#define SCRAM_CLIENT_MIN_ITERATIONS 4096
#define SCRAM_CLIENT_MAX_ITERATIONS 1000000
#define SCRAM_CLIENT_MAX_SALT 128
#define SCRAM_CLIENT_MAX_MESSAGE 4096

typedef struct scram_client scram_client_t;
/* username: the authentication identity (SASLprepped and escaped here). cbflag: 'n' (no
 * binding), 'y' (the client binds but the server seems not to) or 'p' with cbname and its data.
 * nonce: NULL for a random one (tests fix it). NULL on ENOMEM or a bad argument. */
scram_client_t *scram__client_new(hearth_scram_hash_t h, const char *username, char cbflag,
                                  const char *cbname, const unsigned char *cb, size_t cb_len,
                                  const char *nonce);
/* client-first-message (malloc'd). */
int scram__client_first(scram_client_t *c, char **out, size_t *out_len);
/* server-first-message: 0 and the salt (borrowed from c) and iteration count to derive the
 * salted password from; HEARTH_EINVAL malformed, HEARTH_EAUTH for a nonce that does not extend
 * ours or an iteration count out of bounds. */
int scram__client_server_first(scram_client_t *c, const char *in, size_t len,
                               const unsigned char **salt, size_t *salt_len, unsigned *iterations);
/* SaltedPassword = PBKDF2(SASLprep(password), salt, i) into out (the hash's size). Costly. */
int scram__salted_password(hearth_scram_hash_t h, const char *password, const unsigned char *salt,
                           size_t salt_len, unsigned iterations, unsigned char *out);
/* client-final-message (malloc'd) from the salted password. */
int scram__client_final(scram_client_t *c, const unsigned char *salted, char **out,
                        size_t *out_len);
/* server-final-message: 0 when v= is the server signature we expect, HEARTH_EAUTH when it is not
 * or the server sent e=, HEARTH_EINVAL malformed. */
int scram__client_verify(scram_client_t *c, const char *in, size_t len);
size_t scram__client_hash_len(const scram_client_t *c);
void scram__client_free(scram_client_t *c);

#endif
