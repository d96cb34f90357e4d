/* Growable buffers and refcounted immutable bytes (include/hearth/buf.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/buf.h"

int hearth_buf_reserve(hearth_buf_t *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1) {
        if (cap > ((size_t)-1) / 2)
            return HEARTH_ENOMEM;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p)
        return HEARTH_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int hearth_buf_append(hearth_buf_t *b, const void *data, size_t len)
{
    int rc = hearth_buf_reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int hearth_buf_append_str(hearth_buf_t *b, const char *s)
{
    return hearth_buf_append(b, s, strlen(s));
}

int hearth_buf_printf(hearth_buf_t *b, const char *fmt, ...)
{
    /* Formatted once into the room there is (made at least 128 bytes), and a second time
     * only when that was too small: measuring first doubled the cost of every call. */
    int rc = hearth_buf_reserve(b, 128);
    if (rc)
        return rc;
    size_t room = b->cap - b->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->data[b->len] = '\0';
        return HEARTH_EINVAL;
    }
    if ((size_t)n >= room) {
        if ((rc = hearth_buf_reserve(b, (size_t)n)) != 0) {
            b->data[b->len] = '\0';
            return rc;
        }
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

/* ws: tab, LF and CR as character references too (attribute values: a parser turns them into
 * spaces, XML 1.0 §3.3.3). */
static int append_escaped(hearth_buf_t *b, const char *s, size_t len, int ws)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '\t':
            if (!ws)
                continue;
            rep = "&#9;";
            break;
        case '\n':
            if (!ws)
                continue;
            rep = "&#10;";
            break;
        case '\r':
            if (!ws)
                continue;
            rep = "&#13;";
            break;
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        default:
            continue;
        }
        int rc = hearth_buf_append(b, s + start, i - start);
        if (!rc)
            rc = hearth_buf_append_str(b, rep);
        if (rc)
            return rc;
        start = i + 1;
    }
    return hearth_buf_append(b, s + start, len - start);
}

int hearth_buf_append_escaped(hearth_buf_t *b, const char *s, size_t len)
{
    return append_escaped(b, s, len, 1);
}

size_t hearth_buf_escaped_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        switch (*s) {
        case '&':
        case '"':
        case '\'':
            n += 6; /* &amp; is 5, the others 6 */
            break;
        case '<':
        case '>':
            n += 4;
            break;
        case '\t':
        case '\n':
        case '\r':
            n += 5; /* &#10; */
            break;
        default:
            n++;
        }
    }
    return n;
}

int hearth_buf_append_text_escaped(hearth_buf_t *b, const char *s, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        const char *rep;
        if (s[i] == '&')
            rep = "&amp;";
        else if (s[i] == '<')
            rep = "&lt;";
        else if (s[i] == '>')
            rep = "&gt;";
        else if (s[i] == '\r')
            rep = "&#13;"; /* a parser reads a literal CR as LF (XML 1.0 §2.11) */
        else
            continue;
        int rc = hearth_buf_append(b, s + start, i - start);
        if (!rc)
            rc = hearth_buf_append_str(b, rep);
        if (rc)
            return rc;
        start = i + 1;
    }
    return hearth_buf_append(b, s + start, len - start);
}

void hearth_buf_consume(hearth_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->data)
        b->data[b->len] = '\0';
}

void hearth_buf_reset(hearth_buf_t *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void hearth_buf_free(hearth_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *hearth_buf_steal(hearth_buf_t *b, size_t *len)
{
    char *p = b->data;
    if (!p) {
        p = calloc(1, 1);
        if (len)
            *len = 0;
        return p;
    }
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

hearth_bytes_t *hearth_bytes_new(const void *data, size_t len)
{
    hearth_bytes_t *b = malloc(sizeof(*b) + len + 1);
    if (!b)
        return NULL;
    __atomic_store_n(&b->refs, 1, __ATOMIC_RELAXED);
    b->len = len;
    if (len)
        memcpy(b->data, data, len);
    b->data[len] = '\0';
    return b;
}

hearth_bytes_t *hearth_bytes_ref(hearth_bytes_t *b)
{
    __atomic_add_fetch(&b->refs, 1, __ATOMIC_RELAXED);
    return b;
}

void hearth_bytes_unref(hearth_bytes_t *b)
{
    if (b && __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(b);
}
