/* Library-wide error codes: one X-macro list gives the enum, the names and the messages.
 * Functions return 0 on success or a negative HEARTH_E* code. */
#ifndef HEARTH_ERROR_H
#define HEARTH_ERROR_H

#define HEARTH_ERRNO_MAP(X)                                                                        \
    X(NOMEM, 1, "out of memory")                                                                   \
    X(INVAL, 2, "invalid argument")                                                                \
    X(LIMIT, 3, "limit exceeded")                                                                  \
    X(XML, 4, "malformed XML")                                                                     \
    X(TLS, 5, "TLS failure")                                                                       \
    X(SASL, 6, "SASL failure")                                                                     \
    X(IO, 7, "input/output error")                                                                 \
    X(STORAGE, 8, "storage failure")                                                               \
    X(NOTFOUND, 9, "not found")                                                                    \
    X(EXISTS, 10, "already exists")                                                                \
    X(CONFIG, 11, "configuration error")                                                           \
    X(AGAIN, 12, "try again")                                                                      \
    X(AUTH, 13, "authentication failed")                                                           \
    X(CLOSED, 14, "closed")                                                                        \
    X(BUSY, 15, "resource busy")                                                                   \
    X(TIMEOUT, 16, "timed out")                                                                    \
    X(CONNECT, 17, "cannot connect")                                                               \
    X(DNS, 18, "name resolution failed")                                                           \
    X(STREAM, 19, "stream error from the peer")                                                    \
    X(CERT, 20, "certificate not trusted")                                                         \
    X(POLICY, 21, "refused by the security policy")                                                \
    X(STANZA, 22, "stanza error from the peer")                                                    \
    X(CONFLICT, 23, "conflict")

typedef enum hearth_errno {
    HEARTH_OK = 0,
#define HEARTH_ERRNO_ENUM(name, num, msg) HEARTH_E##name = -(num),
    HEARTH_ERRNO_MAP(HEARTH_ERRNO_ENUM)
#undef HEARTH_ERRNO_ENUM
} hearth_errno_t;

/* Static strings; unknown codes give "unknown error" / "EUNKNOWN". */
const char *hearth_strerror(int err);
const char *hearth_err_name(int err);

#if defined(__GNUC__)
#define HEARTH_MUST_CHECK __attribute__((warn_unused_result))
#else
#define HEARTH_MUST_CHECK
#endif

#endif
