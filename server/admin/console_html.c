/* The console's HTML builder: the one escaping function and a printf whose %s escapes, so a
 * name from the database (a user's, a room's, a log line) cannot become markup. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/console.h"

static void put(html_t *h, const char *s, size_t n)
{
    if (!h->err && n && hearth_buf_append(&h->b, s, n))
        h->err = 1;
}

void html_esc(html_t *h, const char *s)
{
    if (!s)
        return;
    const char *run = s;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        const char *ent = NULL;
        switch (c) {
        case '&':
            ent = "&amp;";
            break;
        case '<':
            ent = "&lt;";
            break;
        case '>':
            ent = "&gt;";
            break;
        case '"':
            ent = "&quot;";
            break;
        case '\'':
            ent = "&#39;";
            break;
        default:
            if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f)
                ent = "\xef\xbf\xbd";
        }
        if (ent) {
            put(h, run, (size_t)(p - run));
            put(h, ent, strlen(ent));
            run = p + 1;
        }
    }
    put(h, run, strlen(run));
}

/* Percent-encoding of everything but unreserved characters (RFC 3986 §2.3). */
static void url(html_t *h, const char *s)
{
    static const char HEX[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("-._~", *p)) {
            put(h, (const char *)p, 1);
        } else {
            char e[3] = {'%', HEX[*p >> 4], HEX[*p & 15]};
            put(h, e, 3);
        }
    }
}

void html_f(html_t *h, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const char *run = fmt;
    for (const char *p = fmt; *p; p++) {
        if (*p != '%')
            continue;
        put(h, run, (size_t)(p - run));
        char num[32];
        const char *q = p + 1;
        if (*q == 's') {
            html_esc(h, va_arg(ap, const char *));
        } else if (*q == 'r') {
            const char *r = va_arg(ap, const char *);
            put(h, r ? r : "", r ? strlen(r) : 0);
        } else if (*q == 'u') {
            url(h, va_arg(ap, const char *));
        } else if (*q == 'd') {
            put(h, num, (size_t)snprintf(num, sizeof(num), "%d", va_arg(ap, int)));
        } else if (!strncmp(q, "ld", 2)) {
            put(h, num, (size_t)snprintf(num, sizeof(num), "%ld", va_arg(ap, long)));
            q++;
        } else if (!strncmp(q, "lld", 3)) {
            put(h, num, (size_t)snprintf(num, sizeof(num), "%lld", va_arg(ap, long long)));
            q += 2;
        } else if (!strncmp(q, "llu", 3)) {
            put(h, num, (size_t)snprintf(num, sizeof(num), "%llu", va_arg(ap, unsigned long long)));
            q += 2;
        } else if (!strncmp(q, "zu", 2)) {
            put(h, num, (size_t)snprintf(num, sizeof(num), "%zu", va_arg(ap, size_t)));
            q++;
        } else if (*q == '%') {
            put(h, "%", 1);
        } else {
            h->err = 1; /* a format this does not know: a bug, never output */
            break;
        }
        p = q;
        run = p + 1;
    }
    if (!h->err)
        put(h, run, strlen(run));
    va_end(ap);
}

void html_free(html_t *h)
{
    hearth_buf_free(&h->b);
}
