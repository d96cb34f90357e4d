/* A client connection: socket, optional TLS, XML stream parser, output queue, timers, and the
 * c2s state. Owned by one worker at a time; moved to the user's home worker after SASL.
 * Closing is deferred (marked, flushed, then the handles close and it is freed after the loop
 * turn). */
#ifndef HEARTH_CONN_H
#define HEARTH_CONN_H

#include <stdint.h>
#include <uv.h>

#include "hearth/buf.h"
#include "hearth/jid.h"
#include "hearth/sasl.h"
#include "hearth/tls.h"
#include "hearth/xml.h"
#include "hearth/xmpp_error.h"
#include "c2s/sm.h"
#include "core/server.h"

typedef struct offline_pump offline_pump_t;

typedef enum {
    C2S_WAIT_HEADER, /* waiting for the client's stream header */
    C2S_PREAUTH,     /* features sent, before SASL success */
    C2S_SASL,        /* SASL exchange in progress */
    C2S_AUTHED,      /* SASL done, restarting the stream */
    C2S_WAIT_BIND,   /* post-auth features sent, resource not bound */
    C2S_BOUND,       /* a session */
} c2s_state_t;

/* What must happen once the current read has been fully processed (never inside the parser). */
typedef enum { PENDING_NONE, PENDING_STARTTLS, PENDING_AUTHED } pending_t;

/* Output queue bound: a reader this far behind is cut with <policy-violation/>. */
#define CONN_MAX_OUTQ (4u * 1024 * 1024)
/* Storage requests outstanding past which connections stop reading, and below which they
 * read again. */
#define CONN_STORAGE_HIGH_WATER 128
/* Stanzas held for an inactive client (XEP-0352); one more flushes them. */
#define CONN_CSI_MAX 100
#define CONN_STORAGE_LOW_WATER 32

struct conn {
    worker_t *w;
    uint64_t id;
    uv_tcp_t tcp;
    uv_timer_t timer; /* pre-auth timeout, idle ping and ping timeout */
    int handles_open; /* uv handles not yet closed */
    int handles_closing;
    int refs; /* pending async work (storage, thread pool) holding the conn alive */
    char ip[64];

    conn_t *next, *prev; /* worker->conns */

    hearth_tls_t *tls;
    int direct_tls;
    hearth_xml_stream_t *xml;

    /* Output of a loop turn leaves in one write: sends only append to outq and put the
     * connection on its worker's pending list, which the worker's check handle flushes once
     * per loop turn (conn__flush_pending). */
    hearth_buf_t outq;     /* not yet handed to the socket */
    hearth_buf_t inflight; /* owned by the uv_write in progress */
    uv_write_t wreq;
    int writing;
    int out_pending;             /* on w->out_pending */
    conn_t *out_next, *out_prev; /* w->out_pending */

    c2s_state_t state;
    pending_t pending;
    int header_sent;
    int closing;   /* no more input processed; close once output is flushed */
    int close_now; /* close without waiting for output */
    int handoff;   /* moving to another worker once output is flushed */
    int handoff_detached;
    int handoff_fd;
    worker_t *handoff_target;
    int preauth_counted;
    int secure;       /* TLS established */
    int in_read;      /* inside on_read: pending actions wait for its end */
    int read_paused;  /* reading stopped until storage catches up (worker.c) */
    int fail_pending; /* a write failed: the connection is lost on the next loop turn */

    /* SASL */
    hearth_sasl_server_t *sasl;
    char *sasl_mech;
    char *authcid; /* prepared username once known */
    unsigned auth_failures;
    int sasl_waiting; /* storage or thread-pool work outstanding */
    int sasl_need_initial;
    int sasl_valid_user;  /* the authcid is a valid localpart (else only a fake secret fits it) */
    int cb_type_mismatch; /* the client asked for a channel binding type we do not offer */
    char *sasl_initial;   /* the client's first message, kept until the secret arrives */
    size_t sasl_initial_len;

    /* Session */
    char *bare;       /* authenticated bare JID */
    hearth_jid_t jid; /* bound full JID */
    user_t *user;
    conn_t *user_next;
    int binding;       /* waiting for the user's state before the bind completes */
    hearth_buf_t held; /* stanzas pipelined behind the bind, replayed once it completes */

    /* IM state of a bound session (modules/presence.c, roster.c, blocking.c) */
    int roster_interested;    /* asked for the roster: gets pushes */
    int blocklist_interested; /* asked for the block list: gets pushes */
    int available;            /* sent available presence */
    int priority;
    hearth_bytes_t *presence; /* its last available presence, from its full JID, no 'to' */
    strmap_t directed;        /* JIDs given directed available presence (buckets NULL: none) */

    int carbons;                       /* XEP-0280 enabled */
    struct offline_pump *offline_pump; /* offline messages going out as output drains */
    /* Client state indication (XEP-0352): while inactive, presence and messages without a
     * body wait (the newest presence per sender only) until something important is sent or
     * the client is active again. */
    int csi_inactive;
    hearth_bytes_t **csi_q;
    size_t csi_n;
    sm_state_t sm;

    /* Liveness */
    uint64_t accepted_ms;
    uint64_t last_read_ms;
    uint64_t ping_sent_ms;
    int auth_fail_pending;   /* a delayed SASL failure waits on the timer */
    int auth_fail_throttled; /* that failure is a refusal by the guard, nothing was checked */
    int auth_check_pending;  /* the guard delays this attempt: the check waits on the timer */
    struct authguard_ticket *guard_ticket; /* the attempt reserved with the guard, until settled */
    unsigned sasl_gen; /* bumps on every start/abort: stale async results are dropped */
    int ping_outstanding;
    char ping_id[24];
};

/* conn.c */
void conn__accept(worker_t *w, uv_stream_t *listener, int direct_tls);
void conn__adopt(worker_t *w, conn_t *c); /* INBOX_HANDOFF on the new worker */
/* Writes plaintext to the peer (through TLS when active). Copies data. */
void conn__send(conn_t *c, const char *data, size_t len);
void conn__send_str(conn_t *c, const char *s);
/* Sends a stanza (message, presence, iq): counted and kept by stream management. */
void conn__send_stanza(conn_t *c, const char *data, size_t len);
void conn__csi(conn_t *c, int active); /* XEP-0352 <active/> / <inactive/> */
/* The socket is gone but the session stays (stream management resumption): closes the TCP
 * handle and drops TLS, the parser and unsent bytes; the timer and the session remain. */
void conn__detach_socket(conn_t *c);
/* Serialises a stanza (default namespace jabber:client) and sends it. */
void conn__send_node(conn_t *c, const hearth_xml_node_t *n);
/* Sends a stream error (and a header first if none was sent), then closes the stream. */
void conn__stream_error(conn_t *c, hearth_stream_error_t cond, const char *text);
/* Sends </stream:stream> and closes once flushed. */
void conn__close_stream(conn_t *c);
/* Closes at once (peer gone or fatal error). */
void conn__abort(conn_t *c);
void conn__ref(conn_t *c);
void conn__unref(conn_t *c);
void conn__arm_timer(conn_t *c);
void conn__timer_in(conn_t *c, uint64_t ms);
int conn__start_tls(conn_t *c);
void conn__detach_for_handoff(conn_t *c);
void conn__try_handoff(conn_t *c); /* detach once output and references are done */
void conn__resume_reading(conn_t *c);
/* Once per loop turn (the worker's check handle): one write for each connection with output
 * produced since the last turn. */
void conn__flush_pending(worker_t *w);
const char *conn__log_jid(const conn_t *c);

/* stream.c: the c2s protocol over a parsed stream */
void c2s__on_open(void *ud, const hearth_xml_node_t *header, const char *default_ns);
void c2s__on_stanza(void *ud, hearth_xml_node_t *stanza, hearth_arena_t *arena);
void c2s__on_close(void *ud);
void c2s__on_xml_error(void *ud, hearth_stream_error_t cond, const char *text);
void c2s__after_read(conn_t *c);     /* runs the pending action once a read is processed */
void c2s__restart_stream(conn_t *c); /* fresh parser (after STARTTLS or SASL) */
void c2s__send_features(conn_t *c);
void c2s__send_header(conn_t *c);
void c2s__replay_held(conn_t *c); /* stanzas that arrived while the bind was completing */
void c2s__on_timer(conn_t *c);

/* auth.c */
void auth__start(conn_t *c, hearth_xml_node_t *auth, hearth_arena_t *arena);
void auth__response(conn_t *c, hearth_xml_node_t *resp, hearth_arena_t *arena);
void auth__abort(conn_t *c);
void auth__free(conn_t *c);
void auth__fail_now(conn_t *c);  /* the throttled failure, when its delay is over */
void auth__check_now(conn_t *c); /* the attempt the guard delayed, when its delay is over */
int c2s__mech_offered(const conn_t *c, const char *mech);
/* The channel bindings this stream offers (XEP-0440), in order of preference: tls-exporter and
 * tls-server-end-point on a TLS 1.3 stream, none otherwise (see docs/protocols.md). */
typedef struct c2s_bindings {
    unsigned char exporter[32];
    unsigned char end_point[HEARTH_TLS_END_POINT_MAX];
    hearth_sasl_binding_t b[2];
    size_t n;
} c2s_bindings_t;
size_t c2s__bindings(const conn_t *c, c2s_bindings_t *out);

/* session.c */
void session__bind(conn_t *c, hearth_xml_node_t *iq, hearth_arena_t *arena);
void session__unbind(conn_t *c); /* on close */
conn_t *session__find(worker_t *w, const char *bare, const char *resource);

/* router.c */
void router__from_client(conn_t *c, hearth_xml_node_t *stanza, hearth_arena_t *arena);
void router__deliver(worker_t *w, inbox_msg_t *m); /* INBOX_ROUTE on the home worker */
/* Hands serialised stanza bytes to the home worker of to (a direct call when that is w). */
void router__route(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                   const char *type, hearth_bytes_t *bytes);
/* The same, for a message carrying the stanza id sid given for its recipient. */
void router__route_sid(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                       const char *type, const char *sid, hearth_bytes_t *bytes);
/* A message with the sender's stream-management settlement to come. Unlike the others it
 * reports failure (out of memory): then nothing was handed over and nothing is marked. */
int router__route_settled(worker_t *w, const char *to, const char *from, const char *type,
                          const char *sid, conn_t *sender, hearth_bytes_t *bytes);
/* A message a session that ended had not acknowledged, back to delivery: to its own
 * resource, else to the account's connected resources (never to sessions that wait for a
 * resumption, where nobody reads it), else offline storage. */
void router__reroute_node(worker_t *w, const char *to, hearth_xml_node_t *st);
/* Fan-out: one stanza for many recipients, serialised once and handed to each destination
 * worker as ONE inbox message listing its recipients (not one per recipient). */
typedef struct route_batch route_batch_t;
route_batch_t *router__batch_new(worker_t *w, stanza_kind_t kind, const char *from,
                                 const char *type, hearth_bytes_t *bytes);
void router__batch_add(route_batch_t *b, const char *to);
void router__batch_send(route_batch_t *b);               /* consumes b */
void router__deliver_multi(worker_t *w, inbox_msg_t *m); /* INBOX_ROUTE_MULTI; consumes m */
/* The destination is done with m: the sender's h may count it. */
void router__settle(worker_t *w, const inbox_msg_t *m);
void router__settle_local(worker_t *w, const char *full, const char *sm_id, uint32_t seq);
/* An error reply for a routed stanza, sent back to its sender (never for errors or results). */
void router__bounce(worker_t *w, const inbox_msg_t *m, hearth_stanza_error_t cond,
                    const char *text);
/* Sends an error reply for stanza (from and to swapped) to the connection it came from. */
void router__reply_error(conn_t *c, hearth_xml_node_t *stanza, hearth_arena_t *arena,
                         hearth_stanza_error_t cond, const char *text);

/* modules/core.c: IQs addressed to the server or to a local account's bare JID. where is one
 * IQ_TO_* of modules/module.h; to is the prepared domain or bare JID. */
void server_iq__handle(conn_t *c, hearth_xml_node_t *iq, hearth_arena_t *arena, int where,
                       const char *to);

#endif
