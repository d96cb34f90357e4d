/* The module registry: each module declares in one table what it handles (IQ payloads by
 * namespace and element, disco features, stream features) and registers its hooks in init;
 * the table of modules is given once at start-up by the program (server/modules.c), so the
 * core names no module. IQ dispatch is a hash lookup. Handlers run on the requesting
 * session's home worker with the parsed stanza; one that needs storage defers its reply
 * (iq_defer) and answers from the callback, to the session even after a resumption. */
#ifndef HEARTH_MODULE_H
#define HEARTH_MODULE_H

#include "hearth/buf.h"
#include "hearth/xml.h"
#include "hearth/xmpp_error.h"
#include "core/hooks.h"
#include "core/server.h"
#include "core/session.h"

/* Where an IQ is addressed, as seen by the dispatcher. */
enum {
    IQ_TO_SERVER = 1,  /* to the server's domain */
    IQ_TO_SELF = 2,    /* to the sender's own bare JID, or without 'to' */
    IQ_TO_ACCOUNT = 4, /* to another local account's bare JID (answered on its behalf) */
};

typedef struct iq_ctx {
    session_t *s;               /* the requesting session, on its home worker */
    worker_t *w;                /* s->w */
    hearth_xml_node_t *iq;      /* 'from' already stamped */
    hearth_xml_node_t *payload; /* the one child element */
    hearth_arena_t *arena;      /* valid until the handler returns */
    const char *to;             /* prepared bare JID or domain the IQ is for */
    int where;                  /* one IQ_TO_* */
    int set;                    /* type='set' (else 'get') */
} iq_ctx_t;

typedef void (*iq_handler_fn)(iq_ctx_t *ctx);

typedef struct iq_route {
    const char *ns;
    const char *name; /* payload element name */
    int where;        /* mask of IQ_TO_* accepted; others get service-unavailable */
    iq_handler_fn fn;
} iq_route_t;

/* A stream before authentication, as a module sees it (XEP-0077 §3 registration): replies go
 * through it while its connection is there and unauthenticated; a module that answers later
 * holds a reference. */
typedef struct preauth preauth_t;
typedef struct preauth_ops {
    void (*send)(preauth_t *p, const char *data, size_t len);
} preauth_ops_t;
struct preauth {
    const preauth_ops_t *ops;
    void *conn; /* the carrier's connection; NULL once gone, authenticated or moved */
    worker_t *w;
    uint64_t id; /* the connection's, for logs */
    int refs;
    int secure; /* encrypted (or counted as such) */
    char ip[64];
};
void preauth__send(preauth_t *p, const char *data, size_t len); /* nothing once conn is NULL */
void preauth__ref(preauth_t *p);
void preauth__unref(preauth_t *p);

/* Modules one program may give modules__init. */
#define MODULES_MAX 64

typedef struct module {
    const char *name;
    /* A boolean configuration key that switches the whole module off when false (its routes,
     * features and hooks are then never registered); NULL: always on. */
    const char *switch_key;
    const iq_route_t *iqs;               /* ends with {NULL} */
    const char *const *server_features;  /* disco#info of the server, NULL-terminated */
    const char *const *account_features; /* disco#info of accounts */
    /* Identities accounts have besides account/registered ("category/type"), NULL-terminated. */
    const char *const *account_identities;
    /* Elements for the stream features after authentication (rosterver, pre-approval, ...),
     * serialised, NULL-terminated. */
    const char *const *stream_features;
    int (*init)(server_t *srv);       /* on the main thread before workers run: hooks */
    int (*worker_init)(worker_t *w);  /* on the main thread, per worker: its state */
    void (*worker_free)(worker_t *w); /* after the worker stopped */
    /* Before authentication: 1 when the module took the IQ (answered now or later). */
    int (*preauth_iq)(preauth_t *p, hearth_xml_node_t *iq, hearth_arena_t *arena);
    /* Before authentication: appends its stream features (e.g. <register/>) to out. */
    int (*preauth_features)(preauth_t *p, hearth_buf_t *out);
} module_t;

#define MODULES_SERVER_NAME "Hearth"
#define MODULES_CAPS_NODE "urn:hearth:server"

/* modules.c */
int modules__init(server_t *srv, const module_t *const *list);
int modules__worker_init(worker_t *w);
void modules__worker_free(worker_t *w);
void modules__free(void);
/* The XEP-0115 verification string of the server's disco#info (identity and features). */
const char *modules__caps_ver(void);
/* Adds <feature var=.../> children for every module's features. */
void modules__add_features(hearth_arena_t *a, hearth_xml_node_t *query, int account);
/* Adds <identity category type/> children for every module's account identities. */
void modules__add_account_identities(hearth_arena_t *a, hearth_xml_node_t *query);
/* The modules' post-authentication stream features, appended to out. */
int modules__stream_features(hearth_buf_t *out);
/* Before authentication. */
int modules__preauth_iq(preauth_t *p, hearth_xml_node_t *iq, hearth_arena_t *arena);
int modules__preauth_features(preauth_t *p, hearth_buf_t *out);
/* An IQ from s addressed to the server, to s's own account or to another local account
 * (answered on its behalf): the checks of RFC 6120 §8.2.3, then the module's handler, or
 * service-unavailable. Results and errors for the server go to HOOK_IQ_RESULT (a module that
 * asked a session something takes its answer) and no further (the stream layer takes the answers
 * to its own pings before routing). */
void modules__iq(session_t *s, hearth_xml_node_t *iq, hearth_arena_t *arena, int where,
                 const char *to);

/* Replies. iq_result gives a result stanza (in ctx->arena) addressed back to the requester. */
hearth_xml_node_t *iq_result(iq_ctx_t *ctx);
void iq_send(iq_ctx_t *ctx, hearth_xml_node_t *reply);
void iq_error(iq_ctx_t *ctx, hearth_stanza_error_t cond, const char *text);

/* A reply to be given later: holds the session (the reply reaches it even after a
 * resumption) and what the reply needs. */
typedef struct iq_deferred {
    session_t *s;
    char *id;
    char *from; /* the reply's 'from' (the IQ's 'to'), NULL for none */
} iq_deferred_t;
iq_deferred_t *iq_defer(iq_ctx_t *ctx);
/* payload_xml: serialised child for the result, or NULL for an empty result. Frees d. */
void iq_deferred_result(iq_deferred_t *d, const char *payload_xml);
void iq_deferred_error(iq_deferred_t *d, hearth_stanza_error_t cond, const char *text);
/* The same with the serialised <error/> given (one with an application condition). Frees d. */
void iq_deferred_error_xml(iq_deferred_t *d, const char *error_xml);
void iq_deferred_free(iq_deferred_t *d);
/* A storage request that was not queued: d is dropped and an error sent now (resource-constraint
 * when the queue is full, worth a retry). what names the request in the log. */
void iq_submit_failed(iq_ctx_t *ctx, iq_deferred_t *d, int rc, const char *what);
/* In a storage callback: 0 for success or not-found; otherwise the error reply is sent (d is
 * consumed) and 1 is returned. */
int iq_storage_failed(iq_deferred_t *d, int err, const char *what);
/* The localpart of a bare JID, in the arena (the storage key of an account). */
char *iq_localpart(hearth_arena_t *a, const char *bare);

#endif
