/* HTTP/1.1 on the workers' loops, for the web transports (WebSocket, BOSH), XEP-0156 and the
 * web client's files, later the admin console: an HTTP connection is a transport (over TCP, or
 * TLS for https) whose requests are parsed by http-parser and routed by path. Every input is
 * bounded (headers, body, requests waiting), every refusal is an HTTP status. A request may be
 * answered later (BOSH holds them): the connection then reads nothing more until it is. */
#ifndef HEARTH_HTTP_H
#define HEARTH_HTTP_H

#include "net/connection.h"

#define HTTP_HEADERS_MAX 64            /* headers per request: more get 431 */
#define HTTP_HEADER_BYTES (16u * 1024) /* request line and headers: more get 431 */
#define HTTP_BODY_MAX (1024u * 1024)   /* a request body: more get 413 */
#define HTTP_IDLE_MS (60u * 1000)      /* a keep-alive connection idle this long is closed */

typedef struct http_request {
    connection_t *c;
    const char *method; /* "GET", "POST", ... */
    const char *path;   /* decoded of nothing, without the query */
    const char *query;  /* after '?', "" when none */
    const char *body;
    size_t body_len;
    int keep_alive;
    int secure;      /* counts as encrypted: https, or plain HTTP from a trusted proxy */
    int https;       /* came over https (here, or to the trusted proxy in front) */
    uint64_t serial; /* this request's number on its connection (answers go in order) */
    /* private */
    const char **names, **values;
    size_t nheaders;
} http_request_t;

/* A header's value (case-insensitive name), or NULL. */
const char *http_header(const http_request_t *req, const char *name);
/* Answers req: status, content type (NULL: none), extra header lines each ending in "\r\n"
 * (NULL: none), body. Adds Content-Length, the CORS headers for an allowed Origin, and
 * Connection: close when the connection will close. */
void http_respond(const http_request_t *req, int status, const char *ctype, const char *extra,
                  const char *body, size_t len);

/* A request answered later: the handler keeps the connection and the serial, and answers with
 * http_respond_later (on the connection's worker) or drops it. While one waits, the connection
 * reads no further request. */
typedef struct http_deferred {
    connection_t *c;
    uint64_t serial;
    int keep_alive;
    char origin[256]; /* for the CORS headers of the answer ("" none) */
} http_deferred_t;
void http_defer(const http_request_t *req, http_deferred_t *d); /* takes a reference on c */
/* Answers a deferred request (and drops the reference); nothing when the connection went. */
void http_respond_later(http_deferred_t *d, int status, const char *ctype, const char *body,
                        size_t len);
/* The same with extra header lines (each ending in "\r\n", NULL: none). */
void http__respond_later_with(http_deferred_t *d, int status, const char *ctype, const char *extra,
                              const char *body, size_t len);
void http_drop(http_deferred_t *d); /* without an answer: the connection closes */

/* A handler answers (now or later) and returns 0; HEARTH_ENOTFOUND lets the next route try. */
typedef int (*http_handler_fn)(http_request_t *req);
/* At start-up: requests whose path equals path (or starts with it when prefix) go to fn. */
int http__route(const char *path, int prefix, http_handler_fn fn);
void http__clear(void);

/* A request body taken as it arrives, never held whole (an upload, net/upload.c). At the end of
 * the headers the route's stream function sees the request (no body yet; what it keeps of it it
 * copies) and returns a sink; or NULL with *status 0 to have the body buffered as usual, or NULL
 * with an HTTP status to refuse it now (the connection then closes after the answer). */
typedef struct http_sink http_sink_t;
typedef struct http_sink_ops {
    /* A piece of the body: 0, or an HTTP status that refuses it now (the connection closes
     * after the answer; abort follows). The sink may pause reading (connection_pause). */
    int (*data)(http_sink_t *s, const char *data, size_t len);
    /* The body is complete: the sink answers req (now, or later through http_defer) and frees
     * itself when done. */
    void (*end)(http_sink_t *s, http_request_t *req);
    /* The request will not complete (refused, or its connection went): no further call. */
    void (*abort)(http_sink_t *s);
} http_sink_ops_t;
struct http_sink {
    const http_sink_ops_t *ops;
};
typedef http_sink_t *(*http_stream_fn)(http_request_t *req, int *status);
/* At start-up: a route whose bodies are streamed to a sink; fn answers its other requests and
 * its own CORS preflight (OPTIONS). */
int http__route_stream(const char *path, int prefix, http_handler_fn fn, http_stream_fn stream);

/* An answer whose body is read piece by piece (a stored file) as the connection drains: more
 * asks for the next piece (at most left bytes), answered later with http__source_push on the
 * connection's worker; release ends it (sent, cut, or its connection gone): no call follows,
 * and a piece under way is dropped by the source when it comes. HEAD gets the head alone. */
typedef struct http_source http_source_t;
typedef struct http_source_ops {
    void (*more)(http_source_t *s, connection_t *c, uint64_t left);
    void (*release)(http_source_t *s);
} http_source_ops_t;
struct http_source {
    const http_source_ops_t *ops;
};
void http__respond_source(const http_request_t *req, int status, const char *ctype,
                          const char *extra, uint64_t len, http_source_t *src); /* takes src */
/* The next piece (len > 0; 0 or a short file cuts the answer and loses the connection). */
void http__source_push(connection_t *c, const char *data, size_t len);
/* The HTTP side of file upload (XEP-0363): PUT and GET under /upload/ (net/upload.c). */
int upload_http__init(server_t *srv);

/* Listening: HTTP (ctx NULL) or HTTPS on every worker. */
int http__listen(worker_t *w, const struct sockaddr *addr, int *port, hearth_tls_ctx_t *ctx);

/* A second route table for listeners of its own (the admin console and REST API): no CORS
 * headers, no preflight answered for it, and the peer's address is the socket's, whatever a
 * proxy says. Made and filled at start-up, freed after the workers stopped. */
typedef struct http_site http_site_t;
http_site_t *http__site_new(void);
void http__site_free(http_site_t *site);
int http__site_route(http_site_t *site, const char *path, int prefix, http_handler_fn fn);
/* As http__listen, for site (one plain and one TLS endpoint per site). */
int http__listen_site(worker_t *w, const struct sockaddr *addr, int *port, hearth_tls_ctx_t *ctx,
                      http_site_t *site);
/* Who takes a stream over a WebSocket after its upgrade (c2s). */
void http__set_acceptor(connection_acceptor_fn fn);
connection_acceptor_fn http__acceptor(void);
/* Settings read at start-up (http.allowed_origins, http.trusted_proxies). */
int http__init(server_t *srv);
/* Whether a request from this Origin may be answered to a page of another site (CORS, and
 * the WebSocket upgrade). */
int http__origin_allowed(const char *origin);

/* The WebSocket upgrade of an HTTP connection (ws.c): the handler of /xmpp-websocket. */
int ws__upgrade(http_request_t *req);
int ws__init(void); /* routes /xmpp-websocket to it */
/* XEP-0156 and the web client's files (web.c). */
int web__init(server_t *srv);
void web__free(void);
/* BOSH (bosh.c): the handler of /http-bind; its sessions are per worker. */
int bosh__request(http_request_t *req);
int bosh__init(server_t *srv);
int bosh__worker_init(worker_t *w);
void bosh__worker_free(worker_t *w); /* after the worker's loop has closed its handles */
void bosh__free(void);

/* A body that outlives the answer (a cached file): written as the connection drains, so a file
 * larger than the output bound is served without passing it. */
void http__respond_static(const http_request_t *req, int status, const char *ctype,
                          const char *extra, const char *body, size_t len);

/* For the protocols an HTTP connection is upgraded to (ws.c): the connection's TLS
 * (https/wss), raw bytes to the wire through it, bytes read from the socket (through TLS when
 * there is one) handed to upper_plain, and the upgraded protocol's state kept with HTTP's. */
typedef struct http_conn http_conn_t;
extern const transport_t transport_http;
hearth_tls_t *http__conn_tls(connection_t *c);
int http__write_raw(connection_t *c, const char *data, size_t len);
void http__read(connection_t *c, const char *data, size_t len);
void http__free(connection_t *c); /* the HTTP state and its upgraded protocol's */
void http__set_upper(connection_t *c, void *upper, void (*upper_free)(void *upper),
                     void (*upper_plain)(connection_t *c, const char *data, size_t len));
void *http__upper(connection_t *c);

#endif
