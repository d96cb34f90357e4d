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
#include "hearth/stream.h"
#include "c2s/sm.h"
#include "core/module.h"
#include "core/server.h"
#include "core/session.h"
#include "net/connection.h"

typedef struct conn conn_t;

/* A client's session as c2s carries it: what modules see (s, first, so that a session_t* is
 * a c2s_session_t*), and what belongs to the stream protocol but outlives one connection:
 * stream management (XEP-0198) and client state indication (XEP-0352). */
typedef struct c2s_session {
    session_t s;
    conn_t *c; /* the connection carrying it; NULL while detached */
    sm_state_t sm;
    /* While inactive, presence and messages without a body wait (the newest presence per
     * sender only) until something important is sent or the client is active again. */
    int csi_inactive;
    hearth_bytes_t **csi_q;
    size_t csi_n;
    uv_timer_t *timer; /* the resumption deadline, made at the first detach */
    int timer_open;    /* timer initialised, not yet closed */
    int end_posted;    /* the run queue holds its end */
} c2s_session_t;

/* What c2s keeps per worker (core slot): its streams, back-pressure, the SASL context, the
 * budget of detached sessions. */
typedef struct c2s_worker {
    worker_t *w;
    conn_t *conns;    /* every client stream on this loop (doubly linked) */
    unsigned npaused; /* streams whose reading waits for storage to catch up */
    uv_timer_t resume_timer;
    hearth_sasl_t *sasl;
    size_t sm_detached_bytes; /* what detached sessions hold, bounded by c2s.resume_budget */
    uv_timer_t sm_budget_timer;
    int sm_budget_timer_open;
} c2s_worker_t;

c2s_worker_t *c2s__worker(worker_t *w);
/* At start-up: the worker layer, the slot; per worker: its state. */
int c2s__init(server_t *srv);
int c2s__worker_init(worker_t *w);
void c2s__worker_free(worker_t *w);
/* The listener callback (listener->data: (void *)1 for direct TLS). */
void c2s__on_connection(uv_stream_t *listener, int status);
/* A connection a web transport made (a WebSocket after its upgrade, a BOSH session): a client
 * stream in RFC 7395 framing over it. */
void c2s__on_web_connection(connection_t *net);

typedef enum {
    C2S_WAIT_HEADER, /* waiting for the client's stream header */
    C2S_PREAUTH,     /* features sent, before SASL success */
    C2S_SASL,        /* SASL exchange in progress */
    C2S_AUTHED,      /* SASL done, restarting the stream */
    C2S_WAIT_BIND,   /* post-auth features sent, resource not bound */
    C2S_BOUND,       /* a session */
} c2s_state_t;

/* Output queue bound: a reader this far behind is cut with <policy-violation/>. */
#define CONN_MAX_OUTQ SESSION_OUTPUT_MAX
/* Storage requests outstanding past which connections stop reading, and below which they
 * read again. */
#define CONN_STORAGE_HIGH_WATER 128
/* Stanzas held for an inactive client (XEP-0352); one more flushes them. */
#define CONN_CSI_MAX 100
#define CONN_STORAGE_LOW_WATER 32

/* A client stream (RFC 6120 negotiation) over a connection: the XMPP stream (hearth_stream:
 * framing, STARTTLS, restarts), SASL, binding, liveness. It lives until its connection is gone
 * and no asynchronous work (storage, the thread pool) holds it. */
struct conn {
    worker_t *w;
    uint64_t id;         /* its connection's */
    connection_t *net;   /* NULL once the connection is gone */
    hearth_stream_t *xs; /* the XMPP stream over it */
    int refs;            /* asynchronous work holding it */
    conn_t *next, *prev; /* c2s_worker->conns */
    int linked;          /* on its worker's list (not while moving between workers) */

    int direct_tls;
    c2s_state_t state;
    int closing; /* our stream is over: nothing more is processed or sent */
    int moving;  /* going to its user's home worker */
    int preauth_counted;
    int secure;      /* encrypted (TLS, or a transport that counts as such) */
    int read_paused; /* reading stopped until storage catches up */

    /* SASL */
    hearth_sasl_server_t *sasl;
    char *sasl_mech;
    char authed_mech[24]; /* the mechanism that succeeded, kept for the admin's view */
    char *authcid;        /* prepared username once known */
    unsigned auth_failures;
    int sasl_waiting; /* storage or thread-pool work outstanding */
    int sasl_need_initial;
    int sasl_valid_user;  /* the authcid is a valid localpart (else only a fake secret fits it) */
    int cb_type_mismatch; /* the client asked for a channel binding type we do not offer */
    int acct_locked;      /* the account is locked: refused once its credentials are proven */
    char *sasl_initial;   /* the client's first message, kept until the secret arrives */
    size_t sasl_initial_len;

    /* Authentication and binding */
    char *bare;        /* authenticated bare JID */
    int binding;       /* waiting for the user's state before the bind completes */
    hearth_buf_t held; /* stanzas pipelined behind the bind, replayed once it completes */
    preauth_t *pa;     /* how modules reach the stream before authentication */

    /* The bound session (NULL before the bind); it may outlive this connection. */
    c2s_session_t *cs;

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
    int trimmed; /* quiet since its last read: parser and empty buffers given back */
    char ping_id[24];
};

/* conn.c */
/* The client's address (after a trusted proxy's X-Forwarded-For), while it matters: before
 * authentication (admission, failed-login throttling, logs). */
const char *conn__ip(const conn_t *c);
void conn__accept(worker_t *w, uv_stream_t *listener, int direct_tls);
/* Takes it off its worker's list as a hand-over to another worker begins, on the worker it
 * leaves (the new worker links it when it arrives). */
void conn__leave_worker(conn_t *c);
/* The TLS session under this stream (STARTTLS, direct TLS, or the transport's), or NULL. */
hearth_tls_t *conn__tls(const conn_t *c);
/* Writes bytes to the peer (through TLS when active). Copies data. */
void conn__send(conn_t *c, const char *data, size_t len);
void conn__send_str(conn_t *c, const char *s);
/* Serialises a stanza (default namespace jabber:client) and writes it (not counted: for the
 * stream before a session is bound). */
void conn__send_node(conn_t *c, const hearth_xml_node_t *n);
/* Sends a stream error (and a header first if none was sent), then closes the stream; the
 * session it carries ends. */
void conn__stream_error(conn_t *c, hearth_stream_error_t cond, const char *text);
/* Sends </stream:stream> and closes once flushed; the session it carries ends. */
void conn__close_stream(conn_t *c);
/* Closes at once (peer gone or fatal error); a session it still carries ends. */
void conn__abort(conn_t *c);
void conn__ref(conn_t *c);
void conn__unref(conn_t *c);
void conn__arm_timer(conn_t *c);
void conn__timer_in(conn_t *c, uint64_t ms);
void conn__resume_reading(conn_t *c);
/* The stream has been quiet (c2s.idle_release): its parser and empty buffers go back. */
void conn__trim(conn_t *c);
/* Bytes written and not yet taken by the client. */
size_t conn__pending(const conn_t *c);
const char *conn__log_jid(const conn_t *c);

/* stream.c: the c2s protocol over a parsed stream */
void c2s__on_open(conn_t *c, const hearth_stream_header_t *header);
void c2s__on_stanza(void *ud, hearth_xml_node_t *stanza, hearth_arena_t *arena);
void c2s__restart_stream(conn_t *c); /* after SASL success: a new stream, its home worker */
void c2s__send_features(conn_t *c);
void c2s__replay_held(conn_t *c); /* stanzas that arrived while the bind was completing */
void c2s__on_timer(conn_t *c);
void c2s__on_adopted(conn_t *c); /* on its home worker after the hand-over */
/* An error reply for st to the stream it came from (before or after the bind). */
void c2s__reply_error(conn_t *c, hearth_xml_node_t *st, hearth_arena_t *arena,
                      hearth_stanza_error_t cond, const char *text);

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

/* bind.c */
void bind__start(conn_t *c, hearth_xml_node_t *iq, hearth_arena_t *arena);

/* csession.c: the session a connection carries */
/* Makes the session for the bound jid (taken) on c, in u's list. NULL on ENOMEM. */
c2s_session_t *csession__new(conn_t *c, user_t *u, hearth_jid_t *jid);
/* The connection is gone but the session stays for a resumption (XEP-0198). */
void csession__detach(c2s_session_t *cs);
/* A resumption: c carries cs from now on (its previous connection, if any, is dropped). */
void csession__attach(c2s_session_t *cs, conn_t *c);
/* The session ends: out of its user's list (hooks), its unacknowledged messages back to
 * delivery, its connection (if any) no longer carries it. Idempotent. Only where no walk of
 * the account's sessions can be under way (a timer, the run queue); elsewhere end_later. */
void csession__end(c2s_session_t *cs);
/* The end is decided now (nothing more is delivered to it), done on the next loop turn. */
void csession__end_later(c2s_session_t *cs);
/* Output of its connection drained (paced senders go on). */
void csession__drained(c2s_session_t *cs);
void csession__csi(c2s_session_t *cs, int active); /* XEP-0352 <active/> / <inactive/> */
static inline c2s_session_t *csession__of(session_t *s)
{
    return (c2s_session_t *)s;
}

#endif
