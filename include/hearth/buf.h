/* Growable byte buffer (owned by whoever holds the struct) and immutable refcounted bytes
 * (hearth_bytes_t) that may cross threads: created once, then only read and released. */
#ifndef HEARTH_BUF_H
#define HEARTH_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "hearth/error.h"

typedef struct hearth_buf {
    char *data; /* always NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
} hearth_buf_t;

#define HEARTH_BUF_INIT                                                                            \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

int hearth_buf_reserve(hearth_buf_t *b, size_t extra) HEARTH_MUST_CHECK;
int hearth_buf_append(hearth_buf_t *b, const void *data, size_t len) HEARTH_MUST_CHECK;
int hearth_buf_append_str(hearth_buf_t *b, const char *s) HEARTH_MUST_CHECK;
int hearth_buf_printf(hearth_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))) HEARTH_MUST_CHECK;
/* Append with XML escaping of & < > " ' and of tab, LF and CR as character references (safe for
 * both text and attribute values: a parser reads those three as spaces in an attribute). */
int hearth_buf_append_escaped(hearth_buf_t *b, const char *s, size_t len) HEARTH_MUST_CHECK;
/* What hearth_buf_append_escaped would append for s: at least what any escaping writes. */
size_t hearth_buf_escaped_len(const char *s);
/* Append with the escaping text content needs: & < > and CR (quotes stay as they are). */
int hearth_buf_append_text_escaped(hearth_buf_t *b, const char *s, size_t len) HEARTH_MUST_CHECK;
/* Drop the first n bytes. */
void hearth_buf_consume(hearth_buf_t *b, size_t n);
void hearth_buf_reset(hearth_buf_t *b); /* len = 0, keeps memory */
void hearth_buf_free(hearth_buf_t *b);  /* frees memory, back to HEARTH_BUF_INIT */
/* Hand the memory to the caller (NUL-terminated, free() it); the buffer is reset. */
char *hearth_buf_steal(hearth_buf_t *b, size_t *len);

/* Immutable bytes with an atomic reference count. */
typedef struct hearth_bytes {
    int refs; /* atomic */
    size_t len;
    char data[]; /* NUL-terminated */
} hearth_bytes_t;

hearth_bytes_t *hearth_bytes_new(const void *data, size_t len); /* refs = 1; NULL on ENOMEM */
hearth_bytes_t *hearth_bytes_ref(hearth_bytes_t *b);
void hearth_bytes_unref(hearth_bytes_t *b);

#endif
