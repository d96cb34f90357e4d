/* The libhearth client: a context on a libuv loop and any number of XMPP client connections on
 * it (thousands: each costs about 21 KiB of heap, 41 KiB with TLS, and no thread), with
 * asynchronous connect and login
 * (DNS SRV, STARTTLS or direct TLS, in-band registration, SCRAM with channel binding, bind),
 * stanza handlers, IQ tracking, ping, stream management with resumption, reconnection with
 * backoff, and blocking wrappers for small programs.
 *
 * Threads: a context and everything made from it belong to the thread that runs its loop; call
 * every function here from that thread (stanzas may cross threads: include/hearth/stanza.h).
 * Callbacks run on the loop, from inside uv_run. Results: 0 or a negative HEARTH_E* code
 * (include/hearth/error.h). Strings passed in are copied unless a comment says otherwise. */
#ifndef HEARTH_CLIENT_H
#define HEARTH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "hearth/error.h"
#include "hearth/stanza.h"
#include "hearth/xmpp_error.h"

/* ======================================================================================
 * Context
 * ====================================================================================== */

typedef struct hearth_ctx hearth_ctx_t;
typedef struct hearth_client hearth_client_t;

/* Memory for the client layer's own state (contexts, connections, queues, handlers, pending
 * IQs, output). The layers below (stanza arenas, the expat parser, OpenSSL, GNU SASL's
 * SASLprep) allocate with malloc. realloc(ud, NULL, n) must behave as malloc. */
typedef struct hearth_allocator {
    void *(*realloc)(void *ud, void *ptr, size_t size);
    void (*free)(void *ud, void *ptr);
    void *ud;
} hearth_allocator_t;

typedef enum hearth_log_level {
    HEARTH_LOG_ERROR,
    HEARTH_LOG_WARN,
    HEARTH_LOG_INFO,
    HEARTH_LOG_DEBUG,
    HEARTH_LOG_TRACE, /* stanzas, when the connection's log_stanzas is set */
} hearth_log_level_t;

/* One log line, without a newline. A line about a connection starts with "[cN jid]" (its
 * number in the context and its JID). The library writes nothing anywhere else. */
typedef void (*hearth_log_fn)(void *ud, hearth_log_level_t level, const char *line);

/* What identifies a SCRAM salted password (RFC 5802: SaltedPassword = Hi(password, salt, i)),
 * given to the context's scram_lookup and scram_store hooks. Pointers are valid during the
 * call. */
typedef struct hearth_scram_key {
    const char *hash;          /* "SHA-1" or "SHA-256" */
    const char *password;      /* as the client configuration has it (before SASLprep) */
    const unsigned char *salt; /* the server's salt, decoded */
    size_t salt_len;
    unsigned iterations;
    size_t salted_len; /* the bytes of the salted password: 20 (SHA-1) or 32 (SHA-256) */
} hearth_scram_key_t;

typedef struct hearth_ctx_config {
    /* The loop to run on; NULL: the context makes its own (run it with hearth_ctx_run or the
     * blocking wrappers; hearth_ctx_loop gives it). */
    uv_loop_t *loop;
    /* NULL: the C library's realloc and free. Copied. */
    const hearth_allocator_t *alloc;
    /* NULL: no logging. Lines above log_level are not even formatted. */
    hearth_log_fn log;
    void *log_ud;
    hearth_log_level_t log_level;
    /* SCRAM salted passwords kept, keyed by hash, password, salt and iteration count, so that a
     * reconnection (or a load generator logging in thousands of accounts that share a salt)
     * does not pay PBKDF2 again; each entry is about 150 bytes. 0: 16; -1 (as unsigned): none.
     * The oldest entry goes when it is full. */
    unsigned scram_cache;
    /* libuv writes to sockets without MSG_NOSIGNAL, so a write to a connection the server has
     * reset raises SIGPIPE, whose default kills the process. 0: hearth_ctx_new sets SIGPIPE to
     * ignored if it is at its default (a process-wide change, made once); 1: signals are left
     * alone (the program ignores or handles SIGPIPE itself). */
    int keep_sigpipe;
    /* A second level below scram_cache, kept by the program: shared by the contexts of several
     * threads, or saved between runs (hearth-bench --scram-cache), so that no login pays PBKDF2
     * for a salt seen before. On a miss in the context's own cache, scram_lookup copies
     * key->salted_len bytes into salted and returns 1, or returns 0 when it does not know the
     * key; scram_store is given every salted password the context computes. Both run on the
     * context's loop thread, must not block, and may be called from contexts on other threads
     * at the same time (shared storage needs its own lock). A salted password lets its holder
     * log in to that server as the account: keep it as safe as the password. Either may be
     * NULL; scram_ud is given to both. */
    int (*scram_lookup)(void *ud, const hearth_scram_key_t *key, unsigned char *salted);
    void (*scram_store)(void *ud, const hearth_scram_key_t *key, const unsigned char *salted);
    void *scram_ud;
} hearth_ctx_config_t;

/* A new context; cfg may be NULL (own loop, malloc, no log). *out gets it. HEARTH_ENOMEM,
 * HEARTH_EIO (the own loop could not be made). */
int hearth_ctx_new(const hearth_ctx_config_t *cfg, hearth_ctx_t **out) HEARTH_MUST_CHECK;
/* Frees every client still on the context (without callbacks), then the context. On the
 * caller's loop the memory goes as the loop runs the close callbacks: run it until it has
 * nothing left (uv_run(loop, UV_RUN_DEFAULT) returns). On its own loop this runs it and closes
 * it. Not from inside a callback. NULL is fine. */
void hearth_ctx_free(hearth_ctx_t *ctx);
/* The loop the context runs on (borrowed). */
uv_loop_t *hearth_ctx_loop(const hearth_ctx_t *ctx);
/* Runs the context's loop until nothing is left to do (every client disconnected for good and
 * freed, or idle) or hearth_ctx_stop. 0, or HEARTH_EBUSY from inside a callback. */
int hearth_ctx_run(hearth_ctx_t *ctx);
/* Makes hearth_ctx_run / the blocking wrappers return after the current loop iteration. */
void hearth_ctx_stop(hearth_ctx_t *ctx);

/* ======================================================================================
 * Client configuration
 * ====================================================================================== */

typedef enum hearth_tls_policy {
    HEARTH_TLS_REQUIRED = 0, /* STARTTLS, and no login without it (the default) */
    HEARTH_TLS_OPTIONAL,     /* STARTTLS when offered, plaintext otherwise */
    HEARTH_TLS_DIRECT,       /* TLS from the first byte (XEP-0368; port 5223 by default) */
    HEARTH_TLS_DISABLED,     /* never TLS (local tests, a proxy that terminates TLS) */
} hearth_tls_policy_t;

typedef enum hearth_register_mode {
    HEARTH_REGISTER_NONE = 0, /* log in to an existing account */
    /* XEP-0077 in-band registration of the account before the login; an account that exists
     * already (<conflict/>) is no error: the login goes on (hearth-bench --register). */
    HEARTH_REGISTER_CREATE,
    /* The same, but <conflict/> ends the attempt with HEARTH_EEXISTS (hearth register). */
    HEARTH_REGISTER_CREATE_NEW,
} hearth_register_mode_t;

/* What happens to stanzas the server never acknowledged when a resumption fails (XEP-0198
 * <failed/>) and a new session begins. If <failed/> carries h, stanzas up to h count as
 * handled and the rest are known not to have been: they are resent in the new session under
 * either policy. Without h their fate is unknown: */
typedef enum hearth_sm_lost_policy {
    /* Report each through the stanza_lost event and drop it: the application decides (the
     * default: a resend could deliver a message twice). */
    HEARTH_SM_REPORT = 0,
    /* Send them again in the new session (at-least-once delivery; duplicates possible). */
    HEARTH_SM_RESEND,
} hearth_sm_lost_policy_t;

/* Every field's zero value is its default. */
typedef struct hearth_client_config {
    /* "user@domain" or "user@domain/resource". Required. */
    const char *jid;
    /* Required for login and registration. Kept (zeroed on free) for reconnections. */
    const char *password;
    /* The resource to ask for at bind; NULL: the JID's resource, or none (the server picks). */
    const char *resource;
    /* Where to connect; NULL: DNS SRV of the JID's domain (_xmpps-client._tcp for direct TLS,
     * then _xmpp-client._tcp), then the domain itself (a domain that is an IP literal is
     * connected to directly). A host name or an IP literal. */
    const char *host;
    /* 0: 5222, or 5223 with HEARTH_TLS_DIRECT. With a host, or the domain when it has no SRV
     * records; SRV records carry their own ports. */
    unsigned port;
    /* Local address to connect from (IP literal), e.g. "127.0.0.7" to spread a load generator's
     * connections over source addresses; NULL: any. */
    const char *bind_address;

    hearth_tls_policy_t tls;
    /* PEM file of trusted CAs; NULL: the system's default trust store. */
    const char *tls_ca_file;
    /* 1: accept any certificate and host name. An explicit opt-out for tests and self-signed
     * servers; every connection logs a warning. Channel binding still protects SCRAM-PLUS. */
    int tls_no_verify;

    /* SASL mechanisms by preference, separated by spaces or commas; the first the server offers
     * (and this policy allows) is used. NULL: "SCRAM-SHA-256-PLUS SCRAM-SHA-1-PLUS SCRAM-SHA-256
     * SCRAM-SHA-1 PLAIN". Known: those five. -PLUS needs TLS; the channel-binding type is the
     * first of tls-exporter (TLS 1.3 only) and tls-server-end-point that the server announces
     * (XEP-0440), tls-exporter on TLS 1.3 when it announces none. */
    const char *sasl_mechanisms;
    /* 1: PLAIN may be used without TLS (the password then crosses the network in clear). */
    int allow_plain_without_tls;

    hearth_register_mode_t register_mode;

    /* Milliseconds; 0: the default. connect: DNS and TCP (and the direct TLS handshake) of one
     * attempt (10000). negotiation: from the TCP connection to online (30000). iq: the default
     * wait for an IQ response (30000). */
    unsigned connect_timeout_ms;
    unsigned negotiation_timeout_ms;
    unsigned iq_timeout_ms;

    /* 1: no available presence after bind (the application sends its own, e.g. with status and
     * caps, or stays invisible to presence: messages to its bare JID then go offline). */
    int no_initial_presence;
    /* XEP-0199: when nothing arrived for this many ms, ping the server; no answer within
     * iq_timeout_ms drops the connection (and reconnects/resumes when set to). 0: off. Server
     * pings are always answered. */
    unsigned ping_interval_ms;

    /* XEP-0198 stream management: enabled with resumption when the server offers it, unless
     * no_sm. */
    int no_sm;
    /* Bounds of the queue of stanzas sent but not acknowledged (also what is sent while a
     * resumption is pending): at the bound hearth_client_send refuses with HEARTH_ELIMIT (the
     * stanza is dropped) and asks the server for an ack. 0: 512 stanzas, 1 MiB. */
    unsigned sm_max_unacked;
    size_t sm_max_unacked_bytes;
    /* Ask for an ack (<r/>) after this many unacknowledged stanzas; one is asked anyway at the
     * end of each loop iteration that sent stanzas. 0: 16. */
    unsigned sm_ack_every;
    hearth_sm_lost_policy_t sm_lost_policy;

    /* 1: after a connection that was online is lost (not after hearth_client_disconnect, an
     * authentication failure, a <conflict/> or another client's replacement), connect again,
     * resuming the stream-management session when there is one. Delays grow from
     * reconnect_min_ms (1000) doubling to reconnect_max_ms (60000), each drawn uniformly from
     * [delay/2, delay] (jitter, so that thousands of clients of a restarted server do not
     * return at once); reconnect_max_attempts (0: unlimited) failed attempts in a row end it. */
    int reconnect;
    unsigned reconnect_min_ms;
    unsigned reconnect_max_ms;
    unsigned reconnect_max_attempts;

    /* Bytes written to the socket but not yet taken by the kernel, plus this loop iteration's
     * output: past it hearth_client_send refuses with HEARTH_EAGAIN (the stanza is dropped):
     * the server is not reading. 0: 1 MiB. */
    size_t max_send_queue_bytes;
    /* The largest stanza accepted from the server; a bigger one ends the stream with
     * <policy-violation/>. 0: 256 KiB (before authentication 16 KiB always). */
    size_t max_stanza_bytes;
    /* IQ requests awaiting a response at once; past it hearth_client_iq refuses with
     * HEARTH_ELIMIT. 0: 1024. */
    unsigned max_pending_iqs;
    /* 1: log every stanza in and out at HEARTH_LOG_TRACE (SASL exchanges never). */
    int log_stanzas;
} hearth_client_config_t;

/* ======================================================================================
 * Events
 * ====================================================================================== */

typedef enum hearth_client_state {
    HEARTH_CLIENT_IDLE,        /* created, or disconnected for good */
    HEARTH_CLIENT_CONNECTING,  /* DNS, TCP, direct TLS */
    HEARTH_CLIENT_NEGOTIATING, /* stream, STARTTLS, registration, SASL, resumption, bind */
    HEARTH_CLIENT_ONLINE,      /* bound or resumed: stanzas flow */
    HEARTH_CLIENT_CLOSING,     /* our close is sent; waiting for the server's */
    HEARTH_CLIENT_WAITING,     /* disconnected; the next attempt is scheduled */
} hearth_client_state_t;

/* Why a connection ended (the disconnected event). Pointers are valid during the call. */
typedef struct hearth_disconnect_info {
    /* 0 after hearth_client_disconnect; otherwise HEARTH_EDNS, HEARTH_ECONNECT (refused,
     * unreachable), HEARTH_ETIMEOUT (connect, negotiation or ping), HEARTH_EIO (the connection
     * broke), HEARTH_ECLOSED (the server closed the stream or the connection), HEARTH_ECERT
     * (the server's certificate was refused), HEARTH_ETLS, HEARTH_EPOLICY (the server offers
     * nothing this configuration accepts: no TLS, no mechanism), HEARTH_EAUTH (wrong
     * credentials, or a SCRAM server signature that does not verify), HEARTH_EEXISTS
     * (registration: the account exists, HEARTH_REGISTER_CREATE_NEW), HEARTH_ESTANZA
     * (registration or bind refused), HEARTH_ECONFLICT (bind: the resource is taken),
     * HEARTH_ESTREAM (the server sent a stream error), HEARTH_EXML / HEARTH_ELIMIT (the server
     * sent malformed or oversized XML), HEARTH_ENOMEM. */
    int reason;
    /* The server's stream error condition, HEARTH_STREAM_ERR_NONE when there was none (for a
     * stream error we sent because of the server's input, see reason). */
    hearth_stream_error_t stream_error;
    /* A sentence for people: the stream error's or SASL failure's text, the TLS or certificate
     * problem, the system error. Never NULL. */
    const char *text;
    /* The SASL <failure/> condition ("not-authorized", ...) or the stanza error condition of a
     * refused registration or bind; NULL otherwise. */
    const char *condition;
    /* 1 when a reconnection is scheduled in reconnect_delay_ms. */
    int will_reconnect;
    unsigned reconnect_delay_ms;
    /* Failed attempts in a row, this one included (0 when it had been online). */
    unsigned attempt;
} hearth_disconnect_info_t;

/* Any may be NULL. hearth_client_free may be called from any of them. */
typedef struct hearth_client_events {
    /* The TCP connection (and direct TLS) is up; negotiation begins. */
    void (*connected)(void *ud, hearth_client_t *c);
    /* XEP-0077 registration answered: 0 created, HEARTH_EEXISTS already there (mode CREATE; the
     * login goes on). */
    void (*registered)(void *ud, hearth_client_t *c, int result);
    /* Online: bound to full_jid (resumed 0; the initial presence, if any, is sent after this
     * returns, so handlers added here see every answer), or a stream-management session
     * resumed (resumed 1: unacknowledged stanzas were resent, presence and subscriptions are
     * as they were). */
    void (*online)(void *ud, hearth_client_t *c, const char *full_jid, int resumed);
    /* The connection ended; info says why and whether another attempt follows. */
    void (*disconnected)(void *ud, hearth_client_t *c, const hearth_disconnect_info_t *info);
    /* A stanza whose delivery is unknown after a failed resumption, under HEARTH_SM_REPORT
     * (lent: hearth_stanza_ref to keep it), or one still queued when the client gave up. */
    void (*stanza_lost)(void *ud, hearth_client_t *c, hearth_stanza_t *st);
    /* The server acknowledged count more stanzas (XEP-0198 <a/>). */
    void (*acked)(void *ud, hearth_client_t *c, unsigned count);
} hearth_client_events_t;

/* ======================================================================================
 * Client
 * ====================================================================================== */

/* A new client on ctx (not connected). cfg and ev are copied; ud is given to every event.
 * HEARTH_EINVAL (no JID, an unparsable JID or resource, a JID without localpart for login, an
 * unknown mechanism name, a bind address that is no IP), HEARTH_ENOMEM, HEARTH_ECONFIG (the CA
 * file cannot be read: *out stays NULL). */
int hearth_client_new(hearth_ctx_t *ctx, const hearth_client_config_t *cfg,
                      const hearth_client_events_t *ev, void *ud,
                      hearth_client_t **out) HEARTH_MUST_CHECK;
/* Starts connecting and logging in; the events tell how it goes. HEARTH_EBUSY when not idle
 * (already connecting, online, or a reconnection is scheduled). */
int hearth_client_connect(hearth_client_t *c) HEARTH_MUST_CHECK;
/* Ends the session in order: </stream:stream>, then the disconnected event (reason 0) once the
 * server closed too (or after 2 s). A scheduled reconnection is cancelled; the stream
 * management session ends (nothing is kept for resumption). No-op (0) when idle. */
int hearth_client_disconnect(hearth_client_t *c);
/* Connects again now: a scheduled reconnection (its delay skipped, e.g. when the network came
 * back) or, when online, a drop of the current connection followed by a resumption.
 * HEARTH_EINVAL when idle (use hearth_client_connect). */
int hearth_client_reconnect_now(hearth_client_t *c);
/* Frees the client at once: the socket is closed without a word, no event is called, pending
 * IQ callbacks are not called. From inside a callback the free waits for the callback's end;
 * the memory goes when the loop has run the handles' close callbacks. NULL is fine. */
void hearth_client_free(hearth_client_t *c);

hearth_client_state_t hearth_client_state(const hearth_client_t *c);
/* The bound full JID while online (and during a resumption), else NULL. Borrowed: valid until
 * the next state change. */
const char *hearth_client_jid(const hearth_client_t *c);
/* The prepared bare JID of the account (always). Borrowed, valid for the client's life. */
const char *hearth_client_bare_jid(const hearth_client_t *c);
hearth_ctx_t *hearth_client_ctx(const hearth_client_t *c);
void *hearth_client_userdata(const hearth_client_t *c);
/* Slots for code layered on the client (the roster, presence, chat and MUC managers): a
 * pointer per slot number, NULL until set. slot < HEARTH_CLIENT_SLOTS; each manager takes a
 * fixed number from this list so that no two collide. */
#define HEARTH_CLIENT_SLOTS 8
#define HEARTH_SLOT_ROSTER 0
#define HEARTH_SLOT_PRESENCE 1
#define HEARTH_SLOT_CHAT 2
#define HEARTH_SLOT_MUC 3
void *hearth_client_slot(const hearth_client_t *c, unsigned slot);
void hearth_client_set_slot(hearth_client_t *c, unsigned slot, void *value);

/* More listeners of the events, for code layered on the client (the managers: a roster
 * manager fetches the roster when online, forgets presence when disconnected). ev is copied;
 * listeners are called in the order added, before the application's own events. *id (if not
 * NULL) gets a number for hearth_client_remove_listener. HEARTH_EINVAL, HEARTH_ENOMEM. */
int hearth_client_add_listener(hearth_client_t *c, const hearth_client_events_t *ev, void *ud,
                               unsigned *id) HEARTH_MUST_CHECK;
/* It is not called again, even later in the current event. HEARTH_ENOTFOUND. */
int hearth_client_remove_listener(hearth_client_t *c, unsigned id);

/* Whether the server offered this feature (a child of <stream:features> after authentication,
 * e.g. "ver" in "urn:xmpp:features:rosterver", "csi" in "urn:xmpp:csi:0") on the current or
 * last stream: 1 or 0. */
int hearth_client_stream_feature(const hearth_client_t *c, const char *name, const char *ns);

/* Facts about the current or last connection. */
typedef struct hearth_client_info {
    const char *tls_version;     /* "TLSv1.3", NULL without TLS */
    const char *mechanism;       /* the SASL mechanism that logged in, NULL before */
    const char *channel_binding; /* its channel-binding type, NULL for none */
    const char *stream_id;       /* the server's stream id */
    int sm_enabled;              /* XEP-0198 on */
    int sm_resumable;            /* a resumption is possible */
    unsigned sm_unacked;         /* stanzas sent and not yet acknowledged (queued ones included) */
    unsigned reconnects;         /* reconnections since hearth_client_connect */
    size_t send_queue_bytes;     /* output not yet taken by the kernel */
} hearth_client_info_t;
/* Pointers are borrowed until the next state change. */
void hearth_client_info(const hearth_client_t *c, hearth_client_info_t *out);

/* ======================================================================================
 * Sending
 * ====================================================================================== */

/* Sends a stanza. Consumes st (one reference) in every case. 'from' is left as the caller made
 * it (builders leave it out: the server stamps it). Online: written at the end of this loop
 * iteration and counted by stream management. Not online but a resumption or reconnection is
 * pending: queued (in the unacknowledged queue, under its bound) and sent once online.
 * HEARTH_ECLOSED when idle or closing, HEARTH_ELIMIT at the unacknowledged bound, HEARTH_EAGAIN
 * at the send-queue bound, HEARTH_EINVAL for an element that is no stanza, HEARTH_ENOMEM. */
int hearth_client_send(hearth_client_t *c, hearth_stanza_t *st);

/* An IQ's response, or why there is none. result: 0 (type 'result'), HEARTH_ESTANZA (type
 * 'error': hearth_stanza_error tells which), HEARTH_ETIMEOUT (no answer in time),
 * HEARTH_ECLOSED (the session ended first), HEARTH_ENOMEM. response is lent (NULL unless a
 * response came): hearth_stanza_ref to keep it. Called once per accepted request, and never
 * from inside hearth_client_iq. */
typedef void (*hearth_iq_fn)(void *ud, hearth_client_t *c, int result, hearth_stanza_t *response);
/* Sends an IQ get or set and calls cb with its response (RFC 6120 §8.2.3): the response must
 * carry the request's id and come from the address the request went to: for a request to the
 * account (no 'to', or its bare JID) from nothing, the account's bare or full JID (and, with
 * no 'to', the domain); otherwise from exactly 'to' (RFC 6120 §8.1.2.1, §10.1). Anything else
 * is logged and dropped as spoofed; the request waits on. timeout_ms 0: the configuration's
 * iq_timeout_ms. An id is added when iq has none. Consumes iq in every case. Errors as
 * hearth_client_send, plus HEARTH_EINVAL (no IQ get or set), HEARTH_ELIMIT (max_pending_iqs); cb is
 * not called when this fails. */
int hearth_client_iq(hearth_client_t *c, hearth_stanza_t *iq, unsigned timeout_ms, hearth_iq_fn cb,
                     void *ud);
/* XEP-0199 ping of to (NULL: the server); cb gets 0 for a result, and also for an error reply
 * of <service-unavailable/> or <feature-not-implemented/> from a JID that answers but does not
 * do XEP-0199 (it is reachable). */
int hearth_client_ping(hearth_client_t *c, const char *to, unsigned timeout_ms, hearth_iq_fn cb,
                       void *ud);
/* A fresh id for a stanza ("h" and a number unique on this client). Written into buf (at least
 * 24 bytes); returns buf. */
char *hearth_client_new_id(hearth_client_t *c, char *buf, size_t size);

/* ======================================================================================
 * Receiving
 * ====================================================================================== */

/* Which stanzas a handler sees. Every field NULL/0 matches everything. */
typedef struct hearth_filter {
    unsigned kinds;   /* HEARTH_STANZA_MESSAGE | ...; 0: all three */
    const char *type; /* the type attribute; "normal" also matches a message without one,
                         "available" a presence without one */
    const char *ns;   /* a child element in this namespace (the payload: <query xmlns=...>) */
    const char *name; /* ... with this local name */
    const char *from; /* a bare JID matches it and its resources; a full JID that resource only;
                         a domain only itself; compared prepared */
    const char *id;   /* the id attribute */
} hearth_filter_t;

/* Return HEARTH_HANDLED to end dispatch (no later handler sees the stanza; an IQ get or set is
 * then yours to answer, now or later with hearth_stanza_new_iq_result or
 * hearth_stanza_new_error), 0 to pass it on. st is lent: hearth_stanza_ref to keep it. An IQ get
 * or set that no handler takes is answered with <service-unavailable/>. */
#define HEARTH_HANDLED 1
typedef int (*hearth_handler_fn)(void *ud, hearth_client_t *c, hearth_stanza_t *st);

/* Adds a handler; higher priority runs first, equal priorities in the order added; the
 * built-in XEP-0199 answer has priority -1000. The filter is copied. Handlers stay across
 * reconnections. *id (if not NULL) gets a number for hearth_client_remove_handler (> 0).
 * HEARTH_EINVAL (an unparsable from), HEARTH_ENOMEM. */
int hearth_client_add_handler(hearth_client_t *c, const hearth_filter_t *filter, int priority,
                              hearth_handler_fn fn, void *ud, unsigned *id) HEARTH_MUST_CHECK;
/* Removes it (it is not called again, even later in the current dispatch). HEARTH_ENOTFOUND. */
int hearth_client_remove_handler(hearth_client_t *c, unsigned id);

/* ======================================================================================
 * Blocking wrappers for small programs: they run the context's loop (its own, or the caller's
 * when it is not running) until the condition or the timeout. Not from inside a callback or
 * while the loop runs elsewhere (HEARTH_EBUSY). timeout_ms 0: no timeout.
 * ====================================================================================== */

/* hearth_client_connect (unless already under way) and wait until online: 0, or the
 * disconnected event's reason when the attempt failed (and no reconnection follows), or
 * HEARTH_ETIMEOUT (the client is left as it is: disconnect or free it). */
int hearth_client_connect_wait(hearth_client_t *c, unsigned timeout_ms) HEARTH_MUST_CHECK;
/* hearth_client_iq and wait: the result code of hearth_iq_fn; *response (if not NULL) gets a
 * reference to the response (release it) or NULL. */
int hearth_client_iq_wait(hearth_client_t *c, hearth_stanza_t *iq, unsigned timeout_ms,
                          hearth_stanza_t **response) HEARTH_MUST_CHECK;
/* hearth_client_disconnect and wait for the disconnected event. 0 or HEARTH_ETIMEOUT. */
int hearth_client_disconnect_wait(hearth_client_t *c, unsigned timeout_ms);
/* Runs the loop until done(ud) returns non-zero (checked after every loop iteration): 0, or
 * HEARTH_ETIMEOUT, or HEARTH_ECLOSED when the loop has nothing left to wait for. */
int hearth_ctx_run_until(hearth_ctx_t *ctx, int (*done)(void *ud), void *ud,
                         unsigned timeout_ms) HEARTH_MUST_CHECK;

#endif
