/* A connection: bytes (or messages) to and from one peer, whatever carries them, in the manner
 * of Redis's connection.h. The kinds of connection are transports behind a small vtable: raw
 * TCP (TLS, when the protocol above starts it, is done above, in the stream), WebSocket
 * (RFC 6455 framing over an HTTP/1.1 connection, with or without TLS), and BOSH (no socket: a
 * session of held HTTP requests). The connection owns the output bound, the deferred close,
 * the idle timer, the hand-over to another worker, and one lifecycle state changed in one
 * place. The layer above (c2s) sees only this header. */
#ifndef HEARTH_CONNECTION_H
#define HEARTH_CONNECTION_H

#include <stdint.h>
#include <uv.h>

#include "hearth/buf.h"
#include "hearth/tls.h"
#include "core/server.h"
#include "core/session.h"

typedef struct connection connection_t;

/* One lifecycle, changed only by connection.c's set_state(). */
typedef enum {
    CONN_OPEN,    /* reading and writing */
    CONN_CLOSING, /* no more input handed up; closes once its output is written */
    CONN_MOVING,  /* handed over to another worker once its output is written */
    CONN_CLOSED,  /* handles closing; freed when they and every reference are gone */
} conn_state_t;

/* What the layer above is told. Every callback runs on the connection's worker, from the
 * loop (a read, a write completion, a timer), never inside connection_write(). */
typedef struct connection_events {
    /* Input: bytes of a byte stream, or one whole message of a message transport. */
    void (*data)(connection_t *c, const char *data, size_t len);
    /* The peer is gone, the transport failed, or the output bound was passed: no byte will
     * reach the peer any more. The layer above decides what survives (a session may wait for a
     * resumption) and the connection is closed right after the call. */
    void (*lost)(connection_t *c, int err);
    /* Everything written so far has left: paced senders may send more. */
    void (*drained)(connection_t *c);
    /* The timer set with connection_timer(). */
    void (*timer)(connection_t *c);
    /* The connection is adopted by the worker it was handed to (connection_move()). */
    void (*moved)(connection_t *c);
    /* Last call: the connection is being freed (drop every pointer to it). */
    void (*closed)(connection_t *c);
} connection_events_t;

/* A kind of connection. */
typedef struct transport {
    const char *name; /* "tcp", "websocket", "bosh" (logs) */
    int messages;     /* 1: data and writes are whole messages (WebSocket, BOSH) */
    int encrypted;    /* 1: always encrypted below the layer above (else see c->secure) */
    /* Bytes read from the socket: the transport decodes them and hands up data (or messages)
     * with connection__deliver. NULL for transports without a socket. */
    void (*read)(connection_t *c, const char *data, size_t len);
    /* Upper-layer data (a byte run, or one message) to the wire: framed, encrypted, queued with
     * connection__queue_raw. 0, or an error (the connection is then lost). */
    int (*write)(connection_t *c, const char *data, size_t len);
    /* The connection closes (its state just changed to CLOSING or CLOSED): last bytes (a TLS
     * close_notify, a WebSocket close frame), or BOSH's answer to held requests. May be NULL. */
    void (*closing)(connection_t *c);
    /* Frees tctx (the connection is being freed). May be NULL. */
    void (*free)(connection_t *c);
    /* TLS under the transport (wss, https), for channel-binding data; NULL when none. */
    hearth_tls_t *(*tls)(connection_t *c);
    /* Whether the transport can move to another worker (with its socket, if it has one). */
    int can_move;
    /* On the old worker, the moment the connection leaves it (nothing of it is touched there
     * afterwards), then on the new worker after the move, before the layer above hears of it.
     * Either may be NULL. */
    void (*leaving)(connection_t *c);
    void (*moved)(connection_t *c);
    /* The server shuts down: a connection no layer above ends by itself (an idle HTTP
     * keep-alive) closes now or after its answer. May be NULL. */
    void (*shutdown)(connection_t *c);
} transport_t;

extern const transport_t transport_tcp; /* tcp.c */

/* Output bound: past it the connection is lost (the layer above decides what survives). */
#define CONNECTION_OUTPUT_MAX SESSION_OUTPUT_MAX

struct connection {
    worker_t *w;
    uint64_t id; /* for logs: [c2s#id ...] */
    char ip[64]; /* the peer's address (the client's, behind a trusted proxy) */
    const transport_t *t;
    void *tctx; /* the transport's state */
    int secure; /* encrypted below the layer above, or counted as such (trusted proxy) */
    conn_state_t state;
    int refs; /* asynchronous work that will come back to it */

    const connection_events_t *ev; /* the layer above */
    void *ud;                      /* the layer above's object */
    /* private to connection.c and the transports */
    connection_t *next, *prev; /* the worker's connections */
    uv_tcp_t tcp;              /* not used by BOSH */
    int has_socket;
    uv_timer_t timer;
    int handles_open;
    hearth_buf_t outq, inflight; /* bytes not yet handed to the socket / owned by uv_write */
    int writing;
    int out_pending; /* on the worker's list of output to flush at the turn's end */
    connection_t *out_next, *out_prev;
    int read_paused;
    int fail_pending; /* lost on the next loop turn */
    int end_pending;  /* ended by the transport: lost on the next loop turn, output flushed */
    int lost_err;
    worker_t *move_target;
    int move_fd;
};

/* At start-up: the net layer's slot and worker layer; per worker: its state. */
int net__init(server_t *srv);
int net__worker_init(worker_t *w);
void net__worker_free(worker_t *w);

/* A connection over an accepted socket with transport t (the caller's listener callback). ev/ud:
 * the layer above (reading starts on the next loop turn, so it may set ud after this returns).
 * NULL when it cannot be made (the socket is then closed). */
connection_t *connection_accept(worker_t *w, uv_stream_t *listener, const transport_t *t,
                                const connection_events_t *ev, void *ud);
/* The layer above that takes a connection a transport made (a WebSocket after its upgrade, a
 * BOSH session): it sets ev and ud (connection_set_upper) and may write right away. */
typedef void (*connection_acceptor_fn)(connection_t *c);
void connection_set_upper(connection_t *c, const connection_events_t *ev, void *ud);
/* A connection without a socket (BOSH), owned by its transport. */
connection_t *connection_new(worker_t *w, const transport_t *t, void *tctx,
                             const connection_events_t *ev, void *ud);
/* Takes data (copied): to the transport, which frames and queues it; written once per loop
 * turn. Nothing after close. Past the output bound the connection is lost on the next loop
 * turn (never inside this call). */
void connection_write(connection_t *c, const char *data, size_t len);
/* Closes once the output is written (CLOSING), or at once (now). */
void connection_close(connection_t *c, int now);
/* Hands the connection to worker to once its output is written and no reference holds it:
 * its socket and transport state move; ev->moved runs there. */
void connection_move(connection_t *c, worker_t *to);
void connection_ref(connection_t *c);
void connection_unref(connection_t *c);
/* One timer per connection for the layer above: ev->timer after ms; 0 stops it. */
void connection_timer(connection_t *c, uint64_t ms);
/* The layer above found the connection quiet: emptied output buffers go back to the allocator
 * (a drained buffer otherwise keeps up to CONNECTION_BUF_KEEP for the next write), and a TLS 1.3
 * session its SSL object (hearth_tls_release): 1 when that happened, else 0. */
int connection_trim(connection_t *c);
/* Bytes written and not yet taken by the peer. */
size_t connection_pending(const connection_t *c);
/* Back-pressure: stop or resume reading. */
void connection_pause(connection_t *c);
void connection_resume(connection_t *c);
/* TLS under the transport (wss, https), or NULL. */
hearth_tls_t *connection_tls(connection_t *c);
int connection_secure(const connection_t *c); /* encrypted, or counted as such */

/* For transports: input to hand up, a lost peer, raw bytes for the socket. */
void connection__deliver(connection_t *c, const char *data, size_t len);
void connection__lose(connection_t *c, int err); /* on the next loop turn */
/* The transport ended its protocol itself (a WebSocket close frame): on the next loop turn
 * the layer above hears it as lost, and what the transport queued still leaves before the
 * connection closes. */
void connection__end(connection_t *c, int err);
int connection__queue_raw(connection_t *c, const char *data, size_t len);

#endif
