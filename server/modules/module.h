/* Modules: what each one handles is declared in a table (IQ payloads by namespace and element,
 * disco features), collected once at start-up; dispatch is a hash lookup, not a chain of string
 * compares. Handlers run on the requesting session's home worker with the parsed stanza; a
 * handler that needs storage defers its reply (iq_defer) and answers from the callback. */
#ifndef HEARTH_MODULE_H
#define HEARTH_MODULE_H

#include "c2s/conn.h"

/* Where an IQ is addressed, as seen by the dispatcher. */
enum {
    IQ_TO_SERVER = 1,  /* to the server's domain */
    IQ_TO_SELF = 2,    /* to the sender's own bare JID, or without 'to' */
    IQ_TO_ACCOUNT = 4, /* to another local account's bare JID (answered on its behalf) */
};

typedef struct iq_ctx {
    conn_t *c;                  /* the requesting session, bound, on its home worker */
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

typedef struct module {
    const char *name;
    const iq_route_t *iqs;               /* ends with {NULL} */
    const char *const *server_features;  /* disco#info of the server, NULL-terminated */
    const char *const *account_features; /* disco#info of accounts */
    int (*init)(server_t *srv);          /* optional, on the main thread before workers run */
} module_t;

#define MODULES_SERVER_NAME "Hearth"
#define MODULES_CAPS_NODE "urn:hearth:server"

/* modules.c */
/* The XEP-0115 verification string of the server's disco#info (identity and features). */
const char *modules__caps_ver(void);
int modules__init(server_t *srv);
void modules__free(void);
/* Returns 1 when a module took the IQ (it replied or will), 0 when nothing matched. */
int modules__dispatch_iq(iq_ctx_t *ctx);
/* Adds <feature var=.../> children for every module's features. */
void modules__add_features(hearth_arena_t *a, hearth_xml_node_t *query, int account);

/* Replies. iq_result gives a result stanza (in ctx->arena) addressed back to the requester. */
hearth_xml_node_t *iq_result(iq_ctx_t *ctx);
void iq_send(iq_ctx_t *ctx, hearth_xml_node_t *reply);
void iq_error(iq_ctx_t *ctx, hearth_stanza_error_t cond, const char *text);

/* A reply to be given later: keeps the connection alive and what the reply needs. */
typedef struct iq_deferred {
    conn_t *c;
    char *id;
    char *from; /* the reply's 'from' (the IQ's 'to'), NULL for the server */
} iq_deferred_t;
iq_deferred_t *iq_defer(iq_ctx_t *ctx);
/* payload_xml: serialised child for the result, or NULL for an empty result. Frees d. */
void iq_deferred_result(iq_deferred_t *d, const char *payload_xml);
void iq_deferred_error(iq_deferred_t *d, hearth_stanza_error_t cond, const char *text);
void iq_deferred_free(iq_deferred_t *d);
/* A storage request that was not queued: d is dropped and an error sent now (resource-constraint
 * when the queue is full, worth a retry). what names the request in the log. */
void iq_submit_failed(iq_ctx_t *ctx, iq_deferred_t *d, int rc, const char *what);
/* In a storage callback: 0 for success or not-found; otherwise the error reply is sent (d is
 * consumed) and 1 is returned. */
int iq_storage_failed(iq_deferred_t *d, int err, const char *what);
/* The localpart of a bare JID, in the arena (the storage key of an account). */
char *iq_localpart(hearth_arena_t *a, const char *bare);

/* register.c: in-band registration before authentication (XEP-0077 §3). Returns 1 when iq was
 * a registration IQ (answered now or later), 0 when it is not one. */
int register__preauth(conn_t *c, hearth_xml_node_t *iq, hearth_arena_t *arena);
/* Whether <register xmlns='http://jabber.org/features/iq-register'/> is in the pre-auth
 * features of this stream. */
int register__offered(const conn_t *c);

/* user.c (IM core): the account of bare was deleted (its rows are gone): tell its contacts as
 * XEP-0077 §3.2 says and close its sessions. Runs on bare's home worker. */
void user__account_deleted(worker_t *w, const char *bare);

/* The modules, each in its own file. */
extern const module_t module_core;     /* ping, disco, session (core.c) */
extern const module_t module_register; /* XEP-0077 (register.c) */
extern const module_t module_misc;     /* XEP-0092, XEP-0202 (misc.c) */
extern const module_t module_vcard;    /* XEP-0054 (vcard.c) */
extern const module_t module_private;  /* XEP-0049 (private.c) */

#endif
