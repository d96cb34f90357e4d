/* What the files of the client library share (not installed): the context, the client and its
 * connection, the outbox of stream management, and the functions one file offers the others
 * (named file__verb). Everything here runs on the context's loop thread. */
#ifndef HEARTH_CLIENT_INTERNAL_H
#define HEARTH_CLIENT_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "hearth/client.h"
#include "hearth/jid.h"
#include "hearth/ns.h"
#include "hearth/stream.h"
#include "hearth/tls.h"
#include "scram.h"

/* Defaults of hearth_client_config_t's zero fields (documented in the public header). */
#define DEF_CONNECT_TIMEOUT 10000
#define DEF_NEGOTIATION_TIMEOUT 30000
#define DEF_IQ_TIMEOUT 30000
#define DEF_SM_MAX_UNACKED 512
#define DEF_SM_MAX_UNACKED_BYTES (1024 * 1024)
#define DEF_SM_ACK_EVERY 16
#define DEF_RECONNECT_MIN 1000
#define DEF_RECONNECT_MAX 60000
#define DEF_MAX_SEND_QUEUE (1024 * 1024)
#define DEF_MAX_STANZA (256 * 1024)
#define DEF_MAX_PENDING_IQS 1024
#define DEF_SCRAM_CACHE 16
/* Before authentication the server may send us little: features and SASL exchanges. */
#define PREAUTH_MAX_STANZA (16 * 1024)
/* After our </stream:stream>, how long the server has to close its side. */
#define CLOSE_WAIT_MS 2000
/* One read from a socket; the buffer is the context's, shared by its connections. */
#define READ_BUF_SIZE 65536
/* DNS: SRV records kept per service, and endpoints tried per attempt. */
#define MAX_ENDPOINTS 16

/* ---- the context ---- */

typedef struct tls_entry {
    struct tls_entry *next;
    char *ca_file; /* NULL: the system store */
    int no_verify;
    hearth_tls_ctx_t *tls;
} tls_entry_t;

typedef struct scram_entry {
    uint64_t used; /* recency; 0 = empty */
    hearth_scram_hash_t hash;
    unsigned char pw_digest[32]; /* SHA-256 of the password: the key without the password */
    unsigned char salt[SCRAM_CLIENT_MAX_SALT];
    size_t salt_len;
    unsigned iterations;
    unsigned char salted[32];
} scram_entry_t;

typedef struct conn conn_t;

struct hearth_ctx {
    uv_loop_t *loop;
    uv_loop_t own_loop;
    bool owns_loop;
    hearth_allocator_t alloc;
    hearth_log_fn log;
    void *log_ud;
    hearth_log_level_t log_level;
    /* Output of connections is written once per loop iteration, by this handle. */
    uv_idle_t flusher;
    conn_t *dirty; /* connections with output to write (intrusive list) */
    /* hearth_ctx_run_until's timeout (unreferenced: it keeps no loop alive). */
    uv_timer_t wait_timer;
    bool wait_expired;
    bool running; /* inside hearth_ctx_run or a blocking wrapper */
    bool stop;
    char *read_buf; /* READ_BUF_SIZE, allocated at the first read */
    bool read_busy;
    hearth_client_t *clients; /* every client not yet freed */
    unsigned next_no;
    /* Things on the loop that still refer to the context: clients, connections, thread-pool
     * work, the handles above. The context's memory goes when it drops to 0 after a free. */
    unsigned live;
    bool freeing;
    tls_entry_t *tls;
    scram_entry_t *scram;
    unsigned scram_n;
    uint64_t scram_tick;
    /* the program's level below (hearth_ctx_config_t) */
    int (*scram_lookup)(void *ud, const hearth_scram_key_t *key, unsigned char *salted);
    void (*scram_store)(void *ud, const hearth_scram_key_t *key, const unsigned char *salted);
    void *scram_ud;
    /* Tests move time forward (hearth__ctx_advance) and fix the random numbers. */
    uint64_t clock_offset;
    bool frozen;
    uint64_t frozen_at;
    uint64_t rng;
    char *test_nonce;
    int test_ns_port;
    /* Serialisation scratch for outgoing stanzas. */
    hearth_buf_t scratch;
};

void *ctx__alloc(hearth_ctx_t *ctx, size_t n);
void *ctx__calloc(hearth_ctx_t *ctx, size_t n);
void *ctx__realloc(hearth_ctx_t *ctx, void *p, size_t n);
void ctx__free(hearth_ctx_t *ctx, void *p);
char *ctx__strdup(hearth_ctx_t *ctx, const char *s);
/* The context's clock (the loop's, moved by tests), in ms. */
uint64_t ctx__now(const hearth_ctx_t *ctx);
/* Uniform in [0, n) (0 for n = 0); not for secrets. */
uint64_t ctx__rand(hearth_ctx_t *ctx, uint64_t n);
void ctx__log(hearth_ctx_t *ctx, const hearth_client_t *c, hearth_log_level_t level,
              const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int ctx__log_on(const hearth_ctx_t *ctx, hearth_log_level_t level);
/* A shared client TLS context for these settings (owned by the context). NULL with *err. */
hearth_tls_ctx_t *ctx__tls(hearth_ctx_t *ctx, const char *ca_file, int no_verify, char **err);
/* The SCRAM cache (the context's own, then the program's hooks): 1 and the salted password
 * when known. put keeps one in both. */
int ctx__scram_get(hearth_ctx_t *ctx, hearth_scram_hash_t h, const char *password,
                   const unsigned char *salt, size_t salt_len, unsigned iterations,
                   unsigned char *salted);
void ctx__scram_put(hearth_ctx_t *ctx, hearth_scram_hash_t h, const char *password,
                    const unsigned char *salt, size_t salt_len, unsigned iterations,
                    const unsigned char *salted);
void ctx__mark_dirty(hearth_ctx_t *ctx, conn_t *conn);
void ctx__unmark_dirty(hearth_ctx_t *ctx, conn_t *conn);
/* One thing less on the loop; frees the context when it was the last after a free. */
void ctx__release(hearth_ctx_t *ctx);

/* ---- a connection: one TCP connection of a client, from connect to close ---- */

/* Where negotiation stands on the current stream. */
typedef enum phase {
    PH_NONE,     /* no stream yet (TCP connecting) */
    PH_FEATURES, /* waiting for <stream:features> */
    PH_STARTTLS, /* <starttls/> sent, waiting for <proceed/> */
    PH_TLS,      /* TLS handshake */
    PH_REGISTER, /* XEP-0077 request sent */
    PH_AUTH,     /* SASL exchange */
    PH_RESUME,   /* <resume/> sent */
    PH_BIND,     /* bind request sent */
    PH_SESSION,  /* legacy session request sent */
    PH_ONLINE,   /* stanzas flow */
    PH_CLOSING,  /* our close is out */
} phase_t;

/* Mechanisms we know, in the bit order of the masks below. */
typedef enum mech {
    M_SCRAM_SHA256_PLUS,
    M_SCRAM_SHA1_PLUS,
    M_SCRAM_SHA256,
    M_SCRAM_SHA1,
    M_PLAIN,
    M_COUNT,
} mech_t;
extern const char *const client__mech_names[M_COUNT];

#define CB_EXPORTER 1
#define CB_END_POINT 2

typedef struct features {
    bool starttls, starttls_required, register_, bind, session_required, sm;
    unsigned mechs; /* bit per mech_t */
    unsigned cb;    /* CB_* announced (XEP-0440) */
    bool cb_announced;
} features_t;

struct conn {
    hearth_client_t *c; /* NULL once the client let go of it (it is closing) */
    hearth_ctx_t *ctx;
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    bool tcp_open;  /* tcp initialised (must be closed) */
    bool connected; /* TCP connected */
    bool closing;   /* uv_close called */
    bool eof;       /* the server's side is done */
    bool direct_tls;
    hearth_stream_t *stream;
    phase_t phase;
    features_t feat;
    bool authenticated;
    /* output of this loop iteration, and bytes handed to uv_write and not yet done */
    char *out;
    size_t out_len, out_cap;
    size_t in_flight;
    conn_t *dirty_prev, *dirty_next;
    bool dirty;
    /* SASL */
    mech_t mech;
    const char *cb_type;
    scram_client_t *scram;
    bool scram_final_sent;
    bool scram_verified;
    struct scram_work *work; /* PBKDF2 running on the pool */
    /* ids of negotiation IQs */
    char reg_id[24], bind_id[24], session_id[24];
};

/* ---- stream management's outbox: stanzas sent and not acknowledged, and stanzas waiting for a
 * connection. A ring of pointers; each entry one allocation. ---- */

typedef struct pending_iq pending_iq_t;

typedef struct out_entry {
    pending_iq_t *iq; /* the IQ request this is, while it waits for its response */
    uint32_t len;
    char data[];
} out_entry_t;

typedef struct outbox {
    out_entry_t **ring;
    unsigned cap, head, count; /* entries [head, head+count) modulo cap */
    unsigned written;          /* of count, already written on the current connection */
    unsigned old_written;      /* of count, written on an earlier connection (fate unknown) */
    size_t bytes;
} outbox_t;

struct pending_iq {
    pending_iq_t *prev, *next; /* sorted by deadline */
    uint64_t deadline;
    hearth_iq_fn cb;
    void *ud;
    out_entry_t *entry; /* its request in the outbox, NULL once acknowledged or written */
    bool written;       /* the request went out on some connection */
    hearth_jid_t to;    /* zeroed when the request had no 'to' */
    bool to_self;       /* 'to' was absent or the account's bare JID */
    char id[];
};

typedef struct handler {
    struct handler *next; /* by priority, highest first */
    unsigned id;
    int priority;
    hearth_handler_fn fn; /* NULL once removed */
    void *ud;
    unsigned kinds;
    char *type, *ns, *name, *id_attr;
    hearth_jid_t from; /* zeroed when no from filter */
} handler_t;

/* Code layered on the client (the managers) hears its events too. */
typedef struct listener {
    struct listener *next;
    unsigned id;
    bool removed;
    hearth_client_events_t ev;
    void *ud;
} listener_t;

struct hearth_client {
    hearth_ctx_t *ctx;
    hearth_client_t *prev, *next; /* the context's list */
    unsigned no;
    void *ud;
    hearth_client_events_t ev;
    listener_t *listeners;
    unsigned next_listener_id;
    unsigned emitting; /* removed listeners are freed once this is back to 0 */
    void *slots[HEARTH_CLIENT_SLOTS];
    /* A manager's destructor per slot: called when the client is destroyed, before its IQs and
     * handlers go, so that the manager frees what rides in its pending IQs. */
    void (*slot_free[HEARTH_CLIENT_SLOTS])(void *mgr);
    /* The presence manager's say on the presence a new session begins with (replacing the plain
     * <presence/> of initial_presence): NULL from it sends none. */
    hearth_stanza_t *(*initial_presence_fn)(void *ud);
    void *initial_presence_ud;
    /* the features of the stream after authentication: "ns name" pairs, NUL-separated */
    char *features;
    size_t features_len;

    /* configuration, resolved */
    hearth_jid_t jid; /* the account: bare JID (resource stripped) */
    char *resource;   /* asked at bind, NULL: server's choice */
    char *password;
    char *host;
    unsigned port;
    char *bind_address;
    hearth_tls_policy_t tls;
    hearth_tls_ctx_t *tls_ctx; /* the context's, shared */
    int tls_no_verify;
    mech_t prefs[M_COUNT];
    unsigned nprefs;
    int allow_plain_without_tls;
    hearth_register_mode_t register_mode;
    unsigned connect_timeout, negotiation_timeout, iq_timeout, ping_interval;
    int initial_presence, sm_wanted, reconnect, log_stanzas;
    unsigned sm_max_unacked, sm_ack_every, reconnect_min, reconnect_max, reconnect_max_attempts;
    size_t sm_max_unacked_bytes, max_send_queue, max_stanza;
    unsigned max_pending_iqs;
    hearth_sm_lost_policy_t sm_lost_policy;

    /* state */
    hearth_client_state_t state;
    conn_t *conn;
    char *full_jid;
    bool was_online;   /* online since the last hearth_client_connect: losses reconnect */
    bool registered;   /* XEP-0077 done once: reconnections skip it */
    bool user_closing; /* hearth_client_disconnect */
    unsigned attempts; /* failed attempts in a row */
    int last_reason;   /* of the last disconnected event (the blocking wrappers return it) */
    unsigned reconnects;
    uint64_t id_counter;
    const char *info_mech, *info_cb, *info_tls;
    char *stream_id;

    /* connecting: endpoints from SRV or the configuration, addresses of the current one */
    struct endpoint {
        char *host;
        unsigned port;
        bool direct_tls;
    } endpoints[MAX_ENDPOINTS];
    unsigned nendpoints, endpoint;
    struct addrinfo *addrs, *addr;
    struct resolve_req *resolving; /* SRV or getaddrinfo under way */
    int last_connect_error;        /* libuv code of the last failed address */

    /* deadlines (ctx__now ms; 0 = none) and their one timer */
    uv_timer_t timer;
    uint64_t connect_deadline, negotiation_deadline, close_deadline, reconnect_at, ping_at;
    bool ping_outstanding;
    uint64_t last_rx;

    /* stream management */
    bool sm_enabling, sm_enabled, sm_resumable;
    char *sm_id;
    uint32_t sm_acked;       /* the server's h: stanzas of ours it handled */
    uint32_t sm_in;          /* stanzas we handled from the server */
    unsigned sm_unrequested; /* stanzas written since the last <r/> */
    bool sm_r_outstanding;
    bool sm_h_known; /* a <failed/> said how many stanzas the old session handled */
    outbox_t outbox;

    /* IQs and handlers */
    pending_iq_t *iq_first, *iq_last;
    unsigned niqs;
    handler_t *handlers;
    unsigned next_handler_id;
    unsigned dispatching; /* removed handlers are freed once this is back to 0 */
    bool handlers_removed;

    /* re-entrancy: a free from inside a callback waits for depth 0 */
    unsigned depth;
    bool free_pending;
    bool freed; /* destroy ran; waiting for the timer's close */
};

/* client.c */
/* Calls an event on every listener, then the application; stops when the client is freed or
 * its connection changes (conn NULL: only freed). */
#define CLIENT_EMIT(c, conn, name, ...)                                                            \
    do {                                                                                           \
        (c)->emitting++;                                                                           \
        for (listener_t *l_ = (c)->listeners; l_ && client__alive((c), (conn)); l_ = l_->next)     \
            if (!l_->removed && l_->ev.name)                                                       \
                l_->ev.name(l_->ud, (c), ##__VA_ARGS__);                                           \
        if (client__alive((c), (conn)) && (c)->ev.name)                                            \
            (c)->ev.name((c)->ud, (c), ##__VA_ARGS__);                                             \
        (c)->emitting--;                                                                           \
        client__sweep_listeners(c);                                                                \
    } while (0)
void client__sweep_listeners(hearth_client_t *c);
/* Whether the client wants stanza_lost reports (any listener or the application). */
bool client__hears_lost(const hearth_client_t *c);
void client__enter(hearth_client_t *c);
/* true when the client is gone (freed): touch nothing of it after. */
bool client__leave(hearth_client_t *c);
/* The connection broke or negotiation failed: tell, reconnect or give up. */
void client__lost(hearth_client_t *c, int reason, hearth_stream_error_t cond, const char *text,
                  const char *condition);
void client__set_state(hearth_client_t *c, hearth_client_state_t st);
void client__arm(hearth_client_t *c);
void client__online(hearth_client_t *c, bool resumed);
/* Calls the event if the client is not being freed; false when the client must not be touched
 * further by the caller's current operation (freed or its connection changed). */
bool client__alive(hearth_client_t *c, conn_t *conn);
void client__next_id(hearth_client_t *c, char *buf, size_t size);
/* The managers (roster.c, presence.c, chat.c, muc.c) take their slot with a destructor;
 * HEARTH_EEXISTS when the slot is taken. */
int client__take_slot(hearth_client_t *c, unsigned slot, void *mgr, void (*free_fn)(void *mgr));
void client__release_slot(hearth_client_t *c, unsigned slot);

/* net.c */
void net__start(hearth_client_t *c);
void net__abandon(hearth_client_t *c);
/* Output for the server: through the stream (TLS and framing). */
int net__send(conn_t *conn, const char *data, size_t len);
size_t net__queued(const conn_t *conn);
void net__flush(conn_t *conn);

/* negotiate.c */
void nego__element(conn_t *conn, hearth_xml_node_t *el, hearth_arena_t *arena);
void nego__tls_done(conn_t *conn);
/* auth.c */
int auth__start(conn_t *conn);
void auth__element(conn_t *conn, hearth_xml_node_t *el);
void auth__abandon(conn_t *conn);

/* sm.c: the outbox and XEP-0198 */
/* A serialised stanza for the server: written now when online and nothing waits before it,
 * else queued; kept until acknowledged while stream management is on. */
int sm__send(hearth_client_t *c, const char *data, size_t len, pending_iq_t *iq);
/* Writes what waits in the outbox (after going online or resuming). */
void sm__write_pending(hearth_client_t *c);
/* An element in urn:xmpp:sm:3 while online or resuming. */
void sm__element(hearth_client_t *c, hearth_xml_node_t *el);
void sm__enable(hearth_client_t *c);
void sm__resume(hearth_client_t *c);
void sm__before_flush(hearth_client_t *c);
/* The connection is gone and another attempt follows. */
void sm__connection_lost(hearth_client_t *c);
/* A new session was bound (no resumption): what the old one left is resent or reported. */
void sm__new_session(hearth_client_t *c);
/* No more attempts: everything waiting is reported lost. */
void sm__give_up(hearth_client_t *c);
/* No resumption of this session any more (an orderly disconnect). */
void sm__forget(hearth_client_t *c);
/* Both sides closed in order: everything written was handled. */
void sm__all_handled(hearth_client_t *c);
void sm__free(hearth_client_t *c);

/* dispatch.c */
void dispatch__stanza(hearth_client_t *c, hearth_xml_node_t *el, hearth_arena_t *arena);
void dispatch__iq_timeouts(hearth_client_t *c, uint64_t now);
/* Calls pending IQs' callbacks with result: all, or only those whose request went out and is
 * no longer in the outbox (their response went to a session that is gone). */
void dispatch__fail_iqs(hearth_client_t *c, int result, bool written_only);
void dispatch__free(hearth_client_t *c);
int dispatch__builtin(hearth_client_t *c);
void dispatch__ping_server(hearth_client_t *c);
/* Forgets the pending IQs whose callback is cb, without calling it; free_ud (may be NULL) gets
 * each one's ud: a manager going away takes its requests with it. */
void dispatch__drop_iqs(hearth_client_t *c, hearth_iq_fn cb,
                        void (*free_ud)(hearth_client_t *c, void *ud));
/* Serialises and sends (the path of hearth_client_send). */
int dispatch__send(hearth_client_t *c, hearth_stanza_t *st, pending_iq_t *iq);

/* negotiate.c */
void nego__bind(conn_t *conn);

/* stanza.c. A stanza lent to handlers sits on the stack over the parser's tree and arena. */
struct hearth_stanza {
    int refs; /* atomic */
    bool lent;
    hearth_arena_t *arena;
    hearth_xml_node_t *node;
};
hearth_stanza_kind_t stanza__kind_of(const hearth_xml_node_t *el);

#endif
