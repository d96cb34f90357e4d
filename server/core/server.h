/* hearthd's shared picture: the server (read-only after start-up, but for the per-IP counter),
 * its workers (one thread and uv loop each, owning their connections and homed users), and the
 * inbox messages that are the only way state crosses from one worker to another. The layers
 * above (net, c2s, modules) keep their per-worker and per-user state in slots. */
#ifndef HEARTH_SERVER_H
#define HEARTH_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "hearth/buf.h"
#include "hearth/sasl.h"
#include "hearth/tls.h"
#include "core/authguard.h"
#include "core/config.h"
#include "core/strmap.h"
#include "storage/storage.h"

typedef struct server server_t;
typedef struct worker worker_t;
typedef struct session session_t;

typedef enum { CONFLICT_REPLACE, CONFLICT_REJECT, CONFLICT_RENAME } conflict_policy_t;

/* Settings read once from the config table at start-up (hot paths must not look up strings). */
typedef struct settings {
    const char *domain;
    const char *muc_domain;
    int tls_required;
    int plain_without_tls;
    int sasl_plain;
    unsigned idle_ping;    /* s, 0 = off */
    unsigned idle_release; /* s of quiet before a stream gives back its parser, 0 = every read */
    unsigned ping_timeout; /* s */
    unsigned preauth_timeout;
    conflict_policy_t resource_conflict;
    unsigned max_resources;
    size_t max_stanza;
    size_t max_stanza_preauth;
    unsigned auth_attempts;
    unsigned auth_fail_delay_ms;
    unsigned preauth_per_ip;
    unsigned scram_iterations;
    int registration_open;
    unsigned registration_rate_limit; /* per IP per hour, 0 = none */
    unsigned min_password;
    unsigned roster_max_items;
    size_t roster_max_size; /* bytes of the roster result */
    unsigned offline_quota;
    size_t vcard_max_size;
    size_t private_max_size;
    size_t private_max_total; /* every namespace of one account together */
    int hide_version;
    unsigned resume_timeout;         /* s, 0 = no stream-management resumption */
    size_t resume_budget;            /* bytes of detached sessions per worker */
    unsigned archive_retention_days; /* 0 = forever */
    unsigned muc_max_rooms_per_user; /* 0 = no limit */
    size_t muc_max_join_size;        /* bytes of occupants' presences in a join sequence */
    unsigned pep_max_nodes;          /* per account */
    size_t pep_max_items;            /* per node ('max') */
    size_t pep_max_item_size;        /* bytes of one payload */
    size_t pep_max_bytes;            /* bytes of payloads per account */
    size_t caps_cache_size;          /* verified XEP-0115 'ver's remembered */
    /* The configuration of a new room (muc.default_*). */
    int muc_default_persistent, muc_default_public, muc_default_members_only;
    int muc_default_moderated;
    unsigned muc_default_max_users; /* 0 = no limit */
    unsigned muc_default_history;   /* muc#maxhistoryfetch */
} settings_t;

typedef enum {
    INBOX_ROUTE,       /* a serialised stanza for a user or service homed there */
    INBOX_ROUTE_MULTI, /* one stanza for several recipients homed on this worker (fan-out) */
    INBOX_SETTLE,      /* route.to (a sender's full JID) may count route.settle_seq handled */
    INBOX_CALL,        /* call.fn(w, call.arg) there (hand-overs, work a module posts) */
    INBOX_SHUTDOWN,    /* close listeners, end every stream with <system-shutdown/> */
    INBOX_EXIT,        /* every connection is gone: close the remaining handles */
} inbox_kind_t;

typedef enum { STANZA_MESSAGE, STANZA_PRESENCE, STANZA_IQ } stanza_kind_t;

/* One message for a worker's inbox or run queue; owned by it until the worker takes it. */
typedef struct inbox_msg {
    struct inbox_msg *next;
    inbox_kind_t kind;
    union {
        struct { /* INBOX_CALL; drop frees arg when the message is never handled (exit) */
            void (*fn)(worker_t *w, void *arg);
            void (*drop)(void *arg);
            void *arg;
        } call;
        struct { /* INBOX_ROUTE: a serialised stanza for a user or service homed there */
            stanza_kind_t kind;
            char *to;      /* prepared full or bare JID */
            char *from;    /* prepared JID of the sender (for bounces) */
            int is_error;  /* type='error': never bounced, never redirected */
            char type[16]; /* the stanza type attribute, "" when none or too long */
            char sid[32];  /* messages: the XEP-0359 id given for the recipient, "" none */
            /* messages: 1 when the stanza has a <body/> in jabber:client, 0 when it has none,
             * -1 when the router was not told (who needs to know parses the bytes). Lets the
             * archive take a message without parsing it again. */
            signed char has_body;
            /* Stream management of the sender: the destination settles this stanza (it was
             * delivered, stored, bounced or dropped) so the sender's h may count it. */
            char settle_sm[24];
            uint32_t settle_seq;
            int settle_deferred; /* settled later, by whoever took it over */
            int live_only;       /* a rerouted message: never to a detached session */
            char **tos;          /* INBOX_ROUTE_MULTI: the recipients (to is unused) */
            size_t ntos;
            hearth_bytes_t *bytes;
        } route;
    } u;
} inbox_msg_t;

typedef struct user user_t;
typedef void (*user_fn)(worker_t *w, user_t *u, void *arg);

/* Work waiting for a user's state to be loaded from storage, run in arrival order. */
typedef struct user_op {
    struct user_op *next;
    user_fn fn;
    void *arg;
} user_op_t;

/* USER_FAILED: its state could not be loaded (storage failed, or memory ran out): what waited
 * fails with an error (user__failure) and the next stanza for it tries again. */
typedef enum { USER_NEW, USER_LOADING, USER_READY, USER_MISSING, USER_FAILED } user_state_t;

/* Work waiting for one user's state: past this, new work fails at once (with an error to
 * whoever asked) instead of queueing without end. */
#define USER_OPS_MAX 10000
#define USER_SLOTS 4

/* A bare JID homed on a worker: everything about it lives there without locks. Its stored
 * state (roster, pending subscription requests, block list) is loaded once, before any stanza
 * for it is processed, and kept while it has sessions or work in flight. */
struct user {
    char *bare;
    char *node;          /* localpart: the storage key */
    session_t *sessions; /* bound resources, linked through session->user_next */
    unsigned nsessions;
    user_state_t state;
    int refs; /* asynchronous work holding the user */
    user_op_t *ops_head, *ops_tail;
    unsigned nops;
    strmap_t roster; /* contact bare JID -> storage_roster_item_t * */
    int64_t roster_ver, roster_deleted_ver;
    strmap_t requests; /* requester bare JID -> char * (the subscribe stanza) */
    strmap_t blocked;  /* JID -> (void *)1 */
    int64_t last_logout;
    char *last_status;
    unsigned offline_busy : 1;   /* an offline fetch is in flight */
    unsigned storage_failed : 1; /* USER_FAILED because the database answered with an error */
    void *slot[USER_SLOTS];      /* module state (user__slot_new), freed on HOOK_USER_UNLOADED */
};

/* What a layer above the core does at points of a worker's life (net: flush output at the
 * end of each loop turn, end every connection at shutdown). Registered at start-up. */
typedef struct worker_layer {
    void (*turn_end)(worker_t *w); /* after the run queue, in the check phase */
    void (*shutdown)(worker_t *w); /* INBOX_SHUTDOWN: listeners closed, streams ended */
    void (*exit)(worker_t *w);     /* INBOX_EXIT: whatever is left is aborted */
} worker_layer_t;
#define WORKER_LAYERS_MAX 4
#define WORKER_SLOTS 16

/* SASL mechanisms as the login counters know them (worker__mech_index); the last is any other. */
#define WORKER_MECHS 7
extern const char *const worker__mech_names[WORKER_MECHS];
int worker__mech_index(const char *mech);

/* What a worker counts for the metrics: changed on its own thread only, and read there (the
 * admin API asks each worker through its inbox), so plain integers, no atomics. */
typedef struct worker_stats {
    uint64_t stanzas_in[3];                /* from bound sessions, by stanza_kind_t */
    uint64_t stanzas_out[3];               /* to sessions, by stanza_kind_t */
    uint64_t logins[WORKER_MECHS];         /* SASL successes by mechanism */
    uint64_t login_failures[WORKER_MECHS]; /* SASL failures (wrong, or refused unchecked) */
    /* Loop lag: how late the worker's WORKER_LAG_MS timer fired, the last time and the most in
     * this window and the one before (a window is WORKER_LAG_WINDOW firings). */
    uint64_t lag_last_us, lag_max_us, lag_prev_max_us;
    unsigned lag_samples;
} worker_stats_t;

/* The loop-lag timer's period, and the firings a window of its maximum holds (a minute). */
#define WORKER_LAG_MS 1000
#define WORKER_LAG_WINDOW 60

struct worker {
    server_t *srv;
    unsigned index;
    /* The settings as this worker applies them: srv->set at start, then each runtime change
     * (runtime.c) arrives through the inbox, so code on the worker reads w->set, never
     * srv->set, for anything marked runtime in the config table. */
    settings_t set;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    uv_mutex_t inbox_lock;
    inbox_msg_t *inbox_head, *inbox_tail;
    /* Finished storage requests, linked through their own 'next' (under inbox_lock): posting
     * one allocates nothing, so a result (and the reference its callback releases) is never
     * lost to a failed allocation. */
    storage_req_t *results_head, *results_tail;
    long inbox_len; /* messages waiting (under inbox_lock); past WORKER_INBOX_MAX, refused */
    int inbox_closed;
    /* The run queue: work for this worker made on this worker (delivery to a user homed
     * here), run in the check phase of the loop turn, never inside the callback that made it.
     * Bounded like the inbox. */
    inbox_msg_t *runq_head, *runq_tail;
    long runq_len;
    /* While post_hold > 0, inbox messages for other workers wait here, one chain per
     * destination, and go as one unit when the hold ends: a sequence for one recipient
     * (a room's join sequence) is handled there in one wake-up, so it leaves in one write. */
    int post_hold;
    inbox_msg_t **held_head, **held_tail; /* [srv->nworkers] */
    uv_timer_t lag_timer;
    uint64_t lag_due_ns; /* when lag_timer should fire next (uv_hrtime) */
    uv_check_t turn_check;
    uv_prepare_t turn_prepare;
    uv_idle_t turn_idle;   /* active while the turn has work: the poll phase must not block */
    int turn_wanted;       /* a layer has work for the next check (worker__turn_pending) */
    uv_tcp_t listeners[8]; /* c2s, direct TLS, HTTP, HTTPS, and room to grow */
    int nlisteners;
    strmap_t users; /* bare JID -> user_t, for users homed here */
    storage_target_t storage_target;
    int stopping;
    worker_stats_t stats;
    void *slot[WORKER_SLOTS]; /* the layers' and modules' per-worker state */
};

/* Inbox and run queue bounds: a producer past them gets HEARTH_EAGAIN and answers its sender
 * with an error (resource-constraint); a fan-out counts what it could not hand over. */
#define WORKER_INBOX_MAX 1000000
#define WORKER_RUNQ_MAX 1000000

struct server {
    /* Owned by the main thread until the workers start; after that only under cfg_lock
     * (runtime.c), which the admin API and SIGHUP take to change runtime keys. */
    config_t *cfg;
    uv_mutex_t cfg_lock;
    unsigned char *cfg_stored; /* per config_keys() row: the database holds a value for it */
    /* The settings at start-up: the fields no runtime key changes (domain, ...) are read from
     * here by any thread; the rest only before the workers start (then w->set). */
    settings_t set;
    const char *data_dir;
    storage_t *storage;
    hearth_tls_ctx_t *tls; /* its certificate replaced in place (hearth_tls_ctx_reload_server) */
    char *tls_cert_path, *tls_key_path; /* the files it was loaded from (PUT certificate, SIGHUP) */
    unsigned char secret[32];           /* fake SCRAM salts for unknown users */
    worker_t **workers;
    unsigned nworkers;
    int c2s_port, tls_port; /* bound ports, -1 when off */
    int http_port;          /* bound, -1 when off; set before the workers start */
    int https_port;         /* the same */
    uint64_t next_conn_id;  /* atomic */
    int live_conns;         /* atomic: connections not yet freed, in transit included */
    long inbox_pending;     /* atomic: inbox messages posted and not yet handled */
    long dropped;           /* atomic: stanzas not handed over (full queues, memory) */
    int mem_released;       /* atomic: a quiet stream gave memory back since the last trim */
    /* atomic: stored offline messages and archive rows, sampled every admin.metrics_sample
     * seconds by the main thread (a COUNT each); -1 before the first sample */
    int64_t offline_rows, archive_rows;
    uv_mutex_t ip_lock;   /* guards preauth_ips only: a counter update, no I/O */
    strmap_t preauth_ips; /* ip -> (uintptr_t) unauthenticated connections */
    authguard_t *guard;   /* failed logins across streams (has its own lock) */
};

/* worker.c */
int worker__init(server_t *srv, worker_t *w, unsigned index);
/* At start-up: a layer's callbacks at points of every worker's life. */
int worker__add_layer(const worker_layer_t *layer);
/* At start-up: an index into every worker's slot[] for a layer's or module's state; -1 when
 * none is left. */
int worker__slot_new(void);
/* Binds a SO_REUSEPORT listener on w's loop; *port 0 is resolved to the bound port. on_accept
 * runs on w's loop for each connection (listener->data is ud). */
int worker__listen(worker_t *w, const struct sockaddr *addr, int *port, uv_connection_cb on_accept,
                   void *ud);
int worker__start(worker_t *w);
/* Any thread; consumes m. HEARTH_EAGAIN (m consumed, not posted) past WORKER_INBOX_MAX. */
int worker__post(worker_t *w, inbox_msg_t *m);
/* From worker `from` (its own thread): as worker__post, but held while from holds posts. */
int worker__post_from(worker_t *from, worker_t *to, inbox_msg_t *m);
void worker__hold_posts(worker_t *w);
void worker__release_posts(worker_t *w); /* the last release posts what was held */
/* On w's own thread: m runs on the next turn of w's loop. HEARTH_EAGAIN past the bound. */
int worker__run_later(worker_t *w, inbox_msg_t *m);
/* Posts fn(to, arg) to worker to (any thread); drop(arg) if it is never run. */
int worker__call(worker_t *to, void (*fn)(worker_t *w, void *arg), void (*drop)(void *arg),
                 void *arg);
/* The end of this loop turn has work (output to flush): the poll phase will not block. */
void worker__turn_pending(worker_t *w);
worker_t *worker__home(server_t *srv, const char *bare);
void worker__join(worker_t *w);
void worker__free(worker_t *w);
user_t *worker__user(worker_t *w, const char *bare, int create);
/* Frees u when nothing holds it any more (no session, no work, not loading). */
void worker__user_drop_if_empty(worker_t *w, user_t *u);
/* Frees an inbox message that will not be handled. */
void worker__discard(worker_t *w, inbox_msg_t *m);

/* Per-IP count of unauthenticated connections: 0 when admitted. */
int server__preauth_enter(server_t *srv, const char *ip, unsigned limit); /* 0: none */
void server__preauth_leave(server_t *srv, const char *ip);

#endif
