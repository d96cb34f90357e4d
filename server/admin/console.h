/* Shared by the console's files (console*.c): the HTML builder with its one escaping function,
 * the page layout, and the static assets. Everything written into a page goes through html_f,
 * whose %s escapes: raw markup has to be asked for by name (%r). */
#ifndef HEARTH_ADMIN_CONSOLE_H
#define HEARTH_ADMIN_CONSOLE_H

#include "hearth/buf.h"

/* A page being written; err sticks once a write failed (out of memory). */
typedef struct html {
    hearth_buf_t b;
    int err;
} html_t;

/* The one escaping function: & < > " ' as entities, and control characters other than tab and
 * newline (which HTML cannot show usefully) as U+FFFD. Safe in text and in quoted attributes. */
void html_esc(html_t *h, const char *s);
/* printf for pages: %s text (escaped), %r raw markup (our own, never data), %u a URL path
 * segment or query value (percent-encoded: safe anywhere), %d %ld %lld %zu %llu numbers, %%.
 * NULL strings print as "". */
void html_f(html_t *h, const char *fmt, ...);
void html_free(html_t *h);

/* The assets, served at fixed paths with their types (console_assets.c). */
typedef struct console_asset {
    const char *path;
    const char *ctype;
    const char *body;
} console_asset_t;
const console_asset_t *console__asset(const char *path);

/* The headers every console answer carries (CSP without inline script, no framing, no
 * referrer, no caching of pages); http_respond adds X-Content-Type-Options: nosniff itself. */
#define CONSOLE_HEADERS                                                                            \
    "Cache-Control: no-store\r\n"                                                                  \
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "             \
    "base-uri 'none'\r\n"                                                                          \
    "X-Frame-Options: DENY\r\n"                                                                    \
    "Referrer-Policy: no-referrer\r\n"

#endif
