/* HTTP/1.1 connections (net/http.h): requests parsed by http-parser (Debian's libhttp-parser),
 * bounded, routed by path; answers in order, one request at a time (a deferred answer holds
 * the next request back); TLS under it for https; CORS for the allowed origins; the peer's
 * address taken from X-Forwarded-For only behind a trusted proxy. */
#include <ctype.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "net/http.h"

/* ---- settings and routes (start-up, read-only afterwards) ---- */

#define ROUTES_MAX 16
#define LIST_MAX 32

typedef struct route {
    const char *path;
    int prefix;
    http_handler_fn fn;
    http_stream_fn stream; /* takes request bodies as they arrive (uploads); NULL: buffered */
} route_t;

/* A route table with the listeners that serve it: the client transports' (the default one),
 * or the admin console's, which has no CORS and trusts no proxy's word on who the peer is. */
struct http_site {
    route_t routes[ROUTES_MAX];
    unsigned nroutes;
    int private; /* no CORS, no preflight, no X-Forwarded-* */
    struct http_endpoint {
        http_site_t *site;
        hearth_tls_ctx_t *ctx;
    } plain, tls; /* what each listener's data points to */
};

static http_site_t default_site;
static connection_acceptor_fn acceptor;
static char *origins[LIST_MAX]; /* allowed Origin values; "*" any */
static unsigned norigins;
static char *proxies[LIST_MAX]; /* trusted proxy addresses */
static unsigned nproxies;

static int site_route(http_site_t *site, const char *path, int prefix, http_handler_fn fn,
                      http_stream_fn stream)
{
    if (site->nroutes == ROUTES_MAX)
        return HEARTH_ELIMIT;
    site->routes[site->nroutes++] = (route_t){path, prefix, fn, stream};
    return 0;
}

int http__route(const char *path, int prefix, http_handler_fn fn)
{
    return site_route(&default_site, path, prefix, fn, NULL);
}

int http__route_stream(const char *path, int prefix, http_handler_fn fn, http_stream_fn stream)
{
    return site_route(&default_site, path, prefix, fn, stream);
}

http_site_t *http__site_new(void)
{
    http_site_t *site = calloc(1, sizeof(*site));
    if (site)
        site->private = 1;
    return site;
}

void http__site_free(http_site_t *site)
{
    free(site);
}

int http__site_route(http_site_t *site, const char *path, int prefix, http_handler_fn fn)
{
    return site_route(site, path, prefix, fn, NULL);
}

static const route_t *route_of(const http_site_t *site, const char *path)
{
    for (unsigned i = 0; i < site->nroutes; i++) {
        const route_t *r = &site->routes[i];
        size_t pl = strlen(r->path);
        if (!(r->prefix ? strncmp(path, r->path, pl) : strcmp(path, r->path)))
            return r;
    }
    return NULL;
}

void http__set_acceptor(connection_acceptor_fn fn)
{
    acceptor = fn;
}

connection_acceptor_fn http__acceptor(void)
{
    return acceptor;
}

static void free_list(char **v, unsigned *n)
{
    for (unsigned i = 0; i < *n; i++)
        free(v[i]);
    *n = 0;
}

void http__clear(void)
{
    default_site.nroutes = 0;
    acceptor = NULL;
    free_list(origins, &norigins);
    free_list(proxies, &nproxies);
}

/* A comma- or space-separated list into v. */
static int parse_list(const char *s, char **v, unsigned *n)
{
    while (s && *s) {
        s += strspn(s, ", \t");
        size_t len = strcspn(s, ", \t");
        if (!len)
            break;
        if (*n == LIST_MAX)
            return HEARTH_ELIMIT;
        if (!(v[*n] = strndup(s, len)))
            return HEARTH_ENOMEM;
        (*n)++;
        s += len;
    }
    return 0;
}

int http__init(server_t *srv)
{
    return parse_list(config_str(srv->cfg, "http.allowed_origins"), origins, &norigins)
               ?: parse_list(config_str(srv->cfg, "http.trusted_proxies"), proxies, &nproxies);
}

static int in_list(char *const *v, unsigned n, const char *s)
{
    for (unsigned i = 0; s && i < n; i++)
        if (!strcmp(v[i], "*") || !strcasecmp(v[i], s))
            return 1;
    return 0;
}

int http__origin_allowed(const char *origin)
{
    return in_list(origins, norigins, origin);
}

/* ---- the connection's HTTP state ---- */

struct http_conn {
    http_parser parser;
    connection_t *c;
    const http_site_t *site; /* the routes of the listener that accepted it */
    hearth_tls_t *tls;       /* https: everything goes through it */
    int secure;              /* https, or plain HTTP from a trusted proxy (which terminates TLS) */
    int trusted;             /* the peer is a trusted proxy */
    /* The request being read: the request line's URL, then name/value pairs, in hdr as
     * NUL-terminated strings; offsets, so that hdr may grow. */
    hearth_buf_t hdr;
    size_t url_off, url_len;
    size_t query_off; /* after the URL's '?' (cut to a NUL), 0 before the cut, -1 none */
    size_t name_off[HTTP_HEADERS_MAX], value_off[HTTP_HEADERS_MAX];
    size_t nheaders;
    int in_value;
    hearth_buf_t body;
    int too_big; /* the status that ends it (431, 413), 0 while it is fine */
    int complete;
    int upgrade;
    /* Answers in order: requests are numbered; one deferred answer at a time. */
    uint64_t serial, answered;
    int deferred;
    hearth_buf_t held;     /* input read after a request complete, parsed once it is answered */
    const char *send_body; /* a long answer going out as the connection drains (cached file) */
    size_t send_off, send_len;
    int close_after;       /* Connection: close, once the answer is written */
    http_sink_t *sink;     /* the body of the request being read goes there (an upload) */
    http_source_t *source; /* the answer's body comes from there (a stored file) */
    uint64_t source_left;  /* its bytes still to come */
    int source_busy;       /* a piece was asked for and has not come yet */
    void *upper;           /* the transport above HTTP once upgraded (ws.c) */
    void (*upper_free)(void *upper);
    void (*upper_plain)(connection_t *c, const char *data, size_t len); /* its input */
};

static http_conn_t *hc_of(connection_t *c)
{
    return c->tctx;
}

hearth_tls_t *http__conn_tls(connection_t *c)
{
    return hc_of(c) ? hc_of(c)->tls : NULL;
}

int http__write_raw(connection_t *c, const char *data, size_t len)
{
    http_conn_t *hc = hc_of(c);
    if (hc->tls)
        return hearth_tls_write(hc->tls, data, len) ? HEARTH_ETLS : 0;
    return connection__queue_raw(c, data, len);
}

/* ---- answers ---- */

static const char *reason(int status)
{
    switch (status) {
    case 101:
        return "Switching Protocols";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 303:
        return "See Other";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 421:
        return "Misdirected Request";
    case 426:
        return "Upgrade Required";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    }
    return "Unknown";
}

/* The answer goes out in 256 KiB pieces as the connection drains: a file larger than the
 * output bound is served without passing it. */
#define HTTP_SEND_CHUNK (256u * 1024)

static void send_more(connection_t *c)
{
    http_conn_t *hc = hc_of(c);
    while (hc->send_body && hc->send_off < hc->send_len &&
           connection_pending(c) < HTTP_SEND_CHUNK) {
        size_t n = hc->send_len - hc->send_off;
        if (n > HTTP_SEND_CHUNK)
            n = HTTP_SEND_CHUNK;
        if (http__write_raw(c, hc->send_body + hc->send_off, n)) {
            connection__lose(c, HEARTH_EIO);
            return;
        }
        hc->send_off += n;
    }
    if (hc->send_body && hc->send_off >= hc->send_len)
        hc->send_body = NULL;
}

/* The next piece of a body from a source, while the output is low. */
static void pull(connection_t *c)
{
    http_conn_t *hc = hc_of(c);
    if (hc && hc->source && !hc->source_busy && hc->source_left &&
        connection_pending(c) < HTTP_SEND_CHUNK && c->state == CONN_OPEN) {
        hc->source_busy = 1;
        hc->source->ops->more(hc->source, c, hc->source_left);
    }
}

static void source_release(http_conn_t *hc)
{
    http_source_t *src = hc->source;
    hc->source = NULL;
    hc->source_left = 0;
    hc->source_busy = 0;
    if (src)
        src->ops->release(src);
}

static void next_request(connection_t *c);
static void plain(connection_t *c, const char *data, size_t len);

static void answer(connection_t *c, int keep_alive, const char *origin, int status,
                   const char *ctype, const char *extra, const char *body, size_t len,
                   int stream_body)
{
    http_conn_t *hc = hc_of(c);
    if (c->state != CONN_OPEN)
        return;
    if (c->w->stopping)
        keep_alive = 0; /* the server shuts down: this answer is the last */
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_printf(&b, "HTTP/1.1 %d %s\r\n", status, reason(status));
    if (ctype)
        rc = rc ?: hearth_buf_printf(&b, "Content-Type: %s\r\n", ctype);
    if (status != 101)
        rc = rc ?: hearth_buf_printf(&b, "Content-Length: %zu\r\n", len);
    if (origin && *origin && !hc->site->private && in_list(origins, norigins, origin) &&
        !(extra && strstr(extra, "Access-Control-Allow-Origin"))) {
        rc = rc ?: hearth_buf_append_str(&b, "Access-Control-Allow-Origin: ");
        rc = rc ?: hearth_buf_append(&b, origin, strlen(origin));
        rc = rc ?: hearth_buf_append_str(&b, "\r\nVary: Origin\r\n");
    }
    rc = rc ?: hearth_buf_append_str(&b, "X-Content-Type-Options: nosniff\r\n");
    if (extra)
        rc = rc ?: hearth_buf_append_str(&b, extra);
    if (!keep_alive && status != 101)
        rc = rc ?: hearth_buf_append_str(&b, "Connection: close\r\n");
    rc = rc ?: hearth_buf_append_str(&b, "\r\n");
    if (!stream_body && len)
        rc = rc ?: hearth_buf_append(&b, body, len);
    rc = rc ?: http__write_raw(c, b.data, b.len);
    hearth_buf_free(&b);
    if (rc) {
        connection__lose(c, rc);
        return;
    }
    if (stream_body && len && body) {
        hc->send_body = body;
        hc->send_off = 0;
        hc->send_len = len;
        send_more(c);
    }
    hc->answered = hc->serial;
    if (!keep_alive && status != 101) {
        hc->close_after = 1;
        if (!hc->send_body && !hc->source)
            connection_close(c, 0);
        return;
    }
    if (status != 101 && !hc->deferred)
        next_request(c);
}

void http__respond_source(const http_request_t *req, int status, const char *ctype,
                          const char *extra, uint64_t len, http_source_t *src)
{
    connection_t *c = req->c;
    http_conn_t *hc = hc_of(c);
    int head = !strcmp(req->method, "HEAD");
    if (!head && len && c->state == CONN_OPEN) {
        hc->source = src;
        hc->source_left = len;
        hc->source_busy = 0;
        src = NULL;
    }
    answer(c, req->keep_alive, http_header(req, "Origin"), status, ctype, extra, NULL, (size_t)len,
           1);
    if (src)
        src->ops->release(src);
    pull(c);
}

void http__source_push(connection_t *c, const char *data, size_t len)
{
    http_conn_t *hc = hc_of(c);
    if (!hc || !hc->source || c->state != CONN_OPEN)
        return;
    hc->source_busy = 0;
    if (!len || len > hc->source_left || http__write_raw(c, data, len)) {
        source_release(hc); /* the file changed or could not be read: the answer is cut */
        connection__lose(c, HEARTH_EIO);
        return;
    }
    hc->source_left -= len;
    connection_timer(c, HTTP_IDLE_MS); /* idle is a reader that takes nothing, not a long GET */
    if (!hc->source_left)
        source_release(hc); /* the rest follows hc_drained: close, or the next request */
    else
        pull(c);
}

const char *http_header(const http_request_t *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders; i++)
        if (!strcasecmp(req->names[i], name))
            return req->values[i];
    return NULL;
}

void http_respond(const http_request_t *req, int status, const char *ctype, const char *extra,
                  const char *body, size_t len)
{
    answer(req->c, req->keep_alive, http_header(req, "Origin"), status, ctype, extra, body, len, 0);
}

void http__respond_static(const http_request_t *req, int status, const char *ctype,
                          const char *extra, const char *body, size_t len)
{
    answer(req->c, req->keep_alive, http_header(req, "Origin"), status, ctype, extra, body, len, 1);
}

void http_defer(const http_request_t *req, http_deferred_t *d)
{
    http_conn_t *hc = hc_of(req->c);
    d->c = req->c;
    d->serial = req->serial;
    d->keep_alive = req->keep_alive;
    const char *o = http_header(req, "Origin");
    snprintf(d->origin, sizeof(d->origin), "%s", o ? o : "");
    hc->deferred = 1;
    connection_ref(req->c);
}

void http_respond_later(http_deferred_t *d, int status, const char *ctype, const char *body,
                        size_t len)
{
    http__respond_later_with(d, status, ctype, NULL, body, len);
}

void http__respond_later_with(http_deferred_t *d, int status, const char *ctype, const char *extra,
                              const char *body, size_t len)
{
    connection_t *c = d->c;
    if (!c)
        return;
    d->c = NULL;
    http_conn_t *hc = hc_of(c);
    if (hc && c->state == CONN_OPEN) {
        hc->deferred = 0;
        answer(c, d->keep_alive, d->origin, status, ctype, extra, body, len, 0);
    }
    connection_unref(c);
}

void http_drop(http_deferred_t *d)
{
    connection_t *c = d->c;
    if (!c)
        return;
    d->c = NULL;
    connection_close(c, 0);
    connection_unref(c);
}

/* ---- parsing ---- */

static void reset_request(http_conn_t *hc)
{
    hearth_buf_reset(&hc->hdr);
    hearth_buf_reset(&hc->body);
    hc->url_off = hc->url_len = 0;
    hc->query_off = 0;
    hc->nheaders = 0;
    hc->in_value = 0;
    hc->too_big = 0;
    hc->complete = 0;
}

/* Appends to the current string in hdr; a new string starts with a NUL before it. */
static int hdr_append(http_conn_t *hc, const char *at, size_t len)
{
    if (hc->hdr.len + len + 1 > HTTP_HEADER_BYTES) {
        hc->too_big = 431;
        return 1;
    }
    return hearth_buf_append(&hc->hdr, at, len) ? (hc->too_big = 500, 1) : 0;
}

static int hdr_start(http_conn_t *hc, size_t *off)
{
    if (hc->hdr.len + 1 > HTTP_HEADER_BYTES) {
        hc->too_big = 431;
        return 1;
    }
    if (hc->hdr.len && hearth_buf_append(&hc->hdr, "", 1)) /* ends the previous string */
        return hc->too_big = 500, 1;
    *off = hc->hdr.len;
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    http_conn_t *hc = p->data;
    if (!hc->url_len && hdr_start(hc, &hc->url_off))
        return 1;
    hc->url_len += len;
    return hdr_append(hc, at, len);
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    http_conn_t *hc = p->data;
    if (hc->in_value || !hc->nheaders) {
        if (hc->nheaders == HTTP_HEADERS_MAX) {
            hc->too_big = 431;
            return 1;
        }
        if (hdr_start(hc, &hc->name_off[hc->nheaders]))
            return 1;
        hc->value_off[hc->nheaders] = (size_t)-1;
        hc->nheaders++;
        hc->in_value = 0;
    }
    return hdr_append(hc, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    http_conn_t *hc = p->data;
    if (!hc->in_value) {
        if (hdr_start(hc, &hc->value_off[hc->nheaders - 1]))
            return 1;
        hc->in_value = 1;
    }
    return hdr_append(hc, at, len);
}

static void make_request(connection_t *c, http_request_t *req, const char **names,
                         const char **values);

/* A route that takes bodies as they come (an upload) sees the request now. */
static int stream_start(http_conn_t *hc)
{
    const char *names[HTTP_HEADERS_MAX], *values[HTTP_HEADERS_MAX];
    http_request_t req;
    make_request(hc->c, &req, names, values);
    const route_t *r = route_of(hc->site, req.path);
    if (!r || !r->stream)
        return 0;
    int status = 0;
    hc->sink = r->stream(&req, &status);
    return hc->sink ? 1 : status;
}

static int on_headers_complete(http_parser *p)
{
    http_conn_t *hc = p->data;
    if (hc->hdr.len && hearth_buf_append(&hc->hdr, "", 1))
        return hc->too_big = 500, 1;
    int st = stream_start(hc);
    if (st > 1) {
        hc->too_big = st; /* refused before its body: answered, then the connection closes */
        return 1;
    }
    if (st == 1)
        return 0; /* the sink bounds what it takes */
    if (p->content_length != (uint64_t)-1 && p->content_length > HTTP_BODY_MAX) {
        hc->too_big = 413;
        return 1;
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    http_conn_t *hc = p->data;
    if (hc->sink) {
        connection_timer(hc->c, HTTP_IDLE_MS); /* idle is no byte for a while, not a long PUT */
        int st = hc->sink->ops->data(hc->sink, at, len);
        if (st)
            hc->too_big = st;
        return st ? 1 : 0;
    }
    if (hc->body.len + len > HTTP_BODY_MAX) {
        hc->too_big = 413;
        return 1;
    }
    return hearth_buf_append(&hc->body, at, len) ? (hc->too_big = 500, 1) : 0;
}

static int on_message_complete(http_parser *p)
{
    http_conn_t *hc = p->data;
    hc->complete = 1;
    hc->upgrade = p->upgrade;
    http_parser_pause(p, 1); /* one request at a time: the rest waits for its answer */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The client's address behind a trusted proxy: the last hop its X-Forwarded-For names. */
static void forwarded_for(connection_t *c, const http_request_t *req)
{
    const char *xff = http_header(req, "X-Forwarded-For");
    if (!xff)
        return;
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    last += strspn(last, " \t");
    size_t n = strcspn(last, " \t");
    if (n && n < sizeof(c->ip)) {
        memcpy(c->ip, last, n);
        c->ip[n] = '\0';
    }
}

/* The request read so far (its headers complete); names and values hold HTTP_HEADERS_MAX. */
static void make_request(connection_t *c, http_request_t *req, const char **names,
                         const char **values)
{
    http_conn_t *hc = hc_of(c);
    size_t n = 0;
    for (size_t i = 0; i < hc->nheaders; i++) {
        if (hc->value_off[i] == (size_t)-1)
            continue;
        names[n] = hc->hdr.data + hc->name_off[i];
        values[n++] = hc->hdr.data + hc->value_off[i];
    }
    char *url = hc->url_len ? hc->hdr.data + hc->url_off : (char *)"/";
    if (!hc->query_off && hc->url_len) { /* cut once: a streamed request is seen twice */
        char *q = strchr(url, '?');
        if (q)
            *q++ = '\0';
        hc->query_off = q ? (size_t)(q - hc->hdr.data) : (size_t)-1;
    }
    *req = (http_request_t){
        .c = c,
        .method = http_method_str((enum http_method)hc->parser.method),
        .path = url,
        .query = hc->query_off && hc->query_off != (size_t)-1 ? hc->hdr.data + hc->query_off : "",
        .body = hc->body.data ? hc->body.data : "",
        .body_len = hc->body.len,
        .keep_alive = http_should_keep_alive(&hc->parser) && !hc->upgrade,
        .secure = hc->secure,
        .https = hc->tls != NULL,
        .serial = hc->serial + 1,
        .names = names,
        .values = values,
        .nheaders = n,
    };
    if (hc->trusted) { /* the proxy says who the client is, and which scheme it used */
        forwarded_for(c, req);
        const char *proto = http_header(req, "X-Forwarded-Proto");
        if (proto && !strcasecmp(proto, "https"))
            req->https = 1;
    }
}

static void dispatch(connection_t *c)
{
    http_conn_t *hc = hc_of(c);
    const char *names[HTTP_HEADERS_MAX], *values[HTTP_HEADERS_MAX];
    http_request_t req;
    make_request(c, &req, names, values);
    hc->serial++;
    if (hc->sink) { /* its body went to the sink as it came: the sink answers */
        http_sink_t *sink = hc->sink;
        hc->sink = NULL;
        sink->ops->end(sink, &req);
        return;
    }
    const http_site_t *site = hc->site;
    const route_t *own = route_of(site, req.path);
    if (!site->private && !strcmp(req.method, "OPTIONS") &&
        !(own && own->stream)) { /* CORS preflight */
        http_respond(&req, 204, NULL,
                     "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
                     "Access-Control-Allow-Headers: Content-Type\r\n"
                     "Access-Control-Max-Age: 86400\r\n",
                     NULL, 0);
        return;
    }
    for (unsigned i = 0; i < site->nroutes; i++) {
        const route_t *r = &site->routes[i];
        size_t pl = strlen(r->path);
        if (r->prefix ? strncmp(req.path, r->path, pl) : strcmp(req.path, r->path))
            continue;
        if (r->fn(&req) != HEARTH_ENOTFOUND)
            return;
    }
    static const char nf[] = "not found\n";
    http_respond(&req, 404, "text/plain; charset=utf-8", NULL, nf, sizeof(nf) - 1);
}

static void refuse(connection_t *c, int status)
{
    http_conn_t *hc = hc_of(c);
    if (hc->sink) { /* the sink refused the body, or the request went wrong under it */
        http_sink_t *sink = hc->sink;
        hc->sink = NULL;
        sink->ops->abort(sink);
    }
    char body[64];
    int n = snprintf(body, sizeof(body), "%d %s\n", status, reason(status));
    answer(c, 0, NULL, status, "text/plain; charset=utf-8", NULL, body, (size_t)n, 0);
    hc->close_after = 1;
    connection_close(c, 0);
}

/* Parses what the peer sent, one request at a time: a request answered later holds the rest
 * in held until its answer. */
static void parse(connection_t *c, const char *data, size_t len)
{
    http_conn_t *hc = hc_of(c);
    while (len && c->state == CONN_OPEN && c->t == &transport_http) {
        if (hc->deferred || hc->close_after || hc->send_body || hc->source) {
            if (hc->held.len + len > HTTP_HEADER_BYTES + HTTP_BODY_MAX) {
                refuse(c, 413);
                return;
            }
            if (hearth_buf_append(&hc->held, data, len))
                connection__lose(c, HEARTH_ENOMEM);
            return;
        }
        size_t used = http_parser_execute(&hc->parser, &parser_settings, data, len);
        enum http_errno e = HTTP_PARSER_ERRNO(&hc->parser);
        if (hc->too_big) {
            refuse(c, hc->too_big);
            return;
        }
        if (e != HPE_OK && e != HPE_PAUSED) {
            hlog_conn(LOG_DEBUG, c->id, NULL, "bad HTTP request: %s", http_errno_name(e));
            refuse(c, 400);
            return;
        }
        data += used;
        len -= used;
        if (!hc->complete)
            continue;
        http_parser_pause(&hc->parser, 0);
        int upgrade = hc->upgrade;
        connection_timer(c, HTTP_IDLE_MS);
        dispatch(c);
        reset_request(hc);
        if (upgrade) {
            if (c->t != &transport_http && len) {
                plain(c, data, len); /* the first bytes of the upgraded protocol */
                return;
            }
            if (c->t == &transport_http) {
                refuse(c, 400); /* an upgrade nobody took */
                return;
            }
            return;
        }
    }
}

/* An answer went out: the input that waited is parsed now. */
static void next_request(connection_t *c)
{
    http_conn_t *hc = hc_of(c);
    if (!hc->held.len || hc->deferred || hc->send_body || hc->source)
        return;
    hearth_buf_t held = hc->held;
    hc->held = (hearth_buf_t)HEARTH_BUF_INIT;
    parse(c, held.data, held.len);
    hearth_buf_free(&held);
}

/* ---- TLS under HTTP (https, wss) ---- */

static void tls_write_raw(void *ud, const char *data, size_t len)
{
    connection_t *c = ud;
    (void)connection__queue_raw(c, data, len);
}

/* Plaintext: HTTP requests, or the upgraded protocol's input (under the same TLS). */
static void plain(connection_t *c, const char *data, size_t len)
{
    http_conn_t *hc = hc_of(c);
    if (c->t == &transport_http)
        parse(c, data, len);
    else if (hc->upper_plain)
        hc->upper_plain(c, data, len);
}

static void tls_read_plain(void *ud, const char *data, size_t len)
{
    plain(ud, data, len);
}

static const hearth_tls_io_t tls_io = {
    .write_raw = tls_write_raw,
    .read_plain = tls_read_plain,
};

/* ---- the HTTP transport ---- */

void http__read(connection_t *c, const char *data, size_t len)
{
    http_conn_t *hc = hc_of(c);
    if (!hc->tls) {
        plain(c, data, len);
        return;
    }
    int rc = hearth_tls_feed(hc->tls, data, len);
    if (rc) {
        hlog_conn(LOG_DEBUG, c->id, NULL, "TLS: %s",
                  rc == HEARTH_ECLOSED ? "closed by the peer" : hearth_tls_error(hc->tls));
        connection__lose(c, rc);
    }
}

static int http_write(connection_t *c, const char *data, size_t len)
{
    return http__write_raw(c, data, len);
}

static void http_closing(connection_t *c)
{
    http_conn_t *hc = hc_of(c);
    if (hc->tls && !c->fail_pending)
        hearth_tls_shutdown(hc->tls); /* close_notify, best effort */
}

void http__free(connection_t *c)
{
    http_conn_t *hc = hc_of(c);
    if (!hc)
        return;
    if (hc->upper && hc->upper_free)
        hc->upper_free(hc->upper);
    if (hc->sink)
        hc->sink->ops->abort(hc->sink);
    hc->sink = NULL;
    source_release(hc);
    if (hc->tls)
        hearth_tls_free(hc->tls);
    hearth_buf_free(&hc->hdr);
    hearth_buf_free(&hc->body);
    hearth_buf_free(&hc->held);
    free(hc);
    c->tctx = NULL;
}

static hearth_tls_t *http_tls(connection_t *c)
{
    return hc_of(c) ? hc_of(c)->tls : NULL;
}

/* Shutdown: an idle keep-alive connection closes now; one with an answer due closes after it. */
static void http_shutdown(connection_t *c)
{
    http_conn_t *hc = hc_of(c);
    if (!hc->deferred && !hc->send_body && !hc->source)
        connection_close(c, 0);
}

const transport_t transport_http = {
    .name = "http",
    .read = http__read,
    .write = http_write,
    .closing = http_closing,
    .free = http__free,
    .tls = http_tls,
    .shutdown = http_shutdown,
};

/* The HTTP connection's own events (until an upgrade hands it to another layer). */
static void hc_drained(connection_t *c)
{
    http_conn_t *hc = hc_of(c);
    if (hc->send_body)
        send_more(c);
    if (hc->send_body)
        return;
    if (hc->source) {
        pull(c);
        return;
    }
    if (hc->close_after) {
        connection_close(c, 0);
        return;
    }
    next_request(c);
}

static void hc_timer(connection_t *c)
{
    if (hc_of(c)->deferred) { /* a held answer (BOSH): its session answers within 'wait' */
        connection_timer(c, HTTP_IDLE_MS);
        return;
    }
    connection_close(c, 1); /* idle keep-alive connection */
}

static const connection_events_t http_events = {
    .drained = hc_drained,
    .timer = hc_timer,
};

static void on_accept(uv_stream_t *listener, int status)
{
    worker_t *w = listener->loop->data;
    if (status < 0 || w->stopping)
        return;
    const struct http_endpoint *ep = listener->data;
    hearth_tls_ctx_t *ctx = ep->ctx;
    http_conn_t *hc = calloc(1, sizeof(*hc));
    if (!hc)
        return;
    connection_t *c = connection_accept(w, listener, &transport_http, &http_events, NULL);
    if (!c) {
        free(hc);
        return;
    }
    c->tctx = hc;
    hc->c = c;
    http_parser_init(&hc->parser, HTTP_REQUEST);
    hc->parser.data = hc;
    hc->site = ep->site;
    hc->trusted = !ep->site->private && in_list(proxies, nproxies, c->ip);
    if (ctx && !(hc->tls = hearth_tls_new(ctx, &tls_io, c, NULL))) {
        connection_close(c, 1);
        return;
    }
    /* A trusted proxy terminates TLS in front of us (RFC 7395 §9, XEP-0206 §14). */
    hc->secure = ctx != NULL || hc->trusted;
    c->secure = hc->secure;
    connection_timer(c, HTTP_IDLE_MS);
    hlog_conn(LOG_DEBUG, c->id, NULL, "HTTP%s connection from %s", ctx ? "S" : "", c->ip);
}

int http__listen_site(worker_t *w, const struct sockaddr *addr, int *port, hearth_tls_ctx_t *ctx,
                      http_site_t *site)
{
    struct http_endpoint *ep = ctx ? &site->tls : &site->plain;
    ep->site = site;
    ep->ctx = ctx;
    return worker__listen(w, addr, port, on_accept, ep);
}

int http__listen(worker_t *w, const struct sockaddr *addr, int *port, hearth_tls_ctx_t *ctx)
{
    return http__listen_site(w, addr, port, ctx, &default_site);
}

/* For ws.c: the upgraded protocol's state rides on the HTTP state (its TLS, its leftovers). */
void http__set_upper(connection_t *c, void *upper, void (*upper_free)(void *upper),
                     void (*upper_plain)(connection_t *c, const char *data, size_t len))
{
    http_conn_t *hc = hc_of(c);
    hc->upper = upper;
    hc->upper_free = upper_free;
    hc->upper_plain = upper_plain;
}

void *http__upper(connection_t *c)
{
    return hc_of(c) ? hc_of(c)->upper : NULL;
}
