/* Personal eventing (XEP-0163) inside hearthd: every account is a pubsub service at its bare
 * JID, on the publish-subscribe engine (pubsub.h). An account's nodes live on its home worker,
 * loaded from storage at the first request for them; its requests run one at a time, in order,
 * each to the end of its storage call. Files: pep.c (the module: state, the queue, loading,
 * entry points, the last items for a resource that becomes available), pep_iq.c (the requests:
 * publish, retract, items, create, configure, delete, purge, affiliations, disco), pep_out.c
 * (replies and notifications, fanned out to the workers where recipients live). */
#ifndef HEARTH_PEP_H
#define HEARTH_PEP_H

#include "modules/im.h"
#include "modules/pep_compat.h"
#include "modules/pubsub.h"

/* Requests waiting for one account's PEP, and the bytes of their trees (a publish may be a
 * 256 KiB stanza): past either the requester gets resource-constraint. */
#define PEP_OPS_MAX 1000
#define PEP_OPS_BYTES (8u << 20)
/* A node's newest payload is kept in memory (for the last item sent at presence) up to this
 * size; a larger one is read from storage when it is needed. */
#define PEP_LAST_INLINE 16384
/* Affiliations (members, outcasts) of one node, and changes in one request: the list of them
 * always fits one reply (256 JIDs of at most 3 KiB). Past it policy-violation, nothing kept. */
#define PEP_AFFS_MAX 256
#define PEP_AFF_CHANGES_MAX 100

typedef enum { PEP_NEW, PEP_LOADING, PEP_READY } pep_state_t;
typedef enum { OP_IQ, OP_LAST } op_kind_t;

typedef struct pep_op pep_op_t;
typedef void (*op_then_fn)(pep_op_t *op, int err);

/* One request for an account's PEP, from its arrival to its reply. */
struct pep_op {
    pep_op_t *next;
    op_kind_t kind;
    worker_t *w;
    user_t *u;
    hearth_arena_t *arena;
    hearth_xml_node_t *iq; /* OP_IQ: the request, 'from' stamped */
    char *requester;       /* its full JID */
    char *requester_bare;
    char *reply_from;  /* the reply's 'from' (the request's 'to'); NULL for none */
    size_t cost;       /* bytes of the request's tree, counted while it waits */
    caps_set_t *nodes; /* OP_LAST: the nodes whose last items the requester wants */
    int on_sub;        /* OP_LAST: for a new subscription (else a resource's presence) */
    size_t next_node;  /* OP_LAST: where it goes on after a storage read */
    op_then_fn then;   /* what follows the storage call in flight */
    /* What the step after storage needs. */
    pubsub_node_t *node; /* the node (or one being created, not yet in the account's) */
    int creating;
    char *node_name; /* items: the node read from storage */
    char *id;
    char *payload;
    size_t size; /* payload bytes */
    size_t keep;
    int64_t stamp_ms;
    int notify;
    pubsub_config_t config;
    storage_pubsub_aff_t *changes;
    size_t nchanges;
    /* A request of the server's own (a conversion, pep_compat.h): no reply goes out; internal
     * hears how it ended, and what it changes is not converted back. */
    int by_server;
    pep_internal_fn internal;
    void *internal_ud;
};

/* An account's PEP, in its user slot. */
typedef struct pep_user {
    worker_t *w;
    user_t *u;
    pep_state_t state;
    strmap_t nodes; /* name -> pubsub_node_t */
    size_t bytes;   /* quota bytes of every item: payload and id */
    pep_op_t *head, *tail;
    size_t nops, ops_bytes; /* waiting (not the busy one) */
    pep_op_t *busy;         /* the request waiting for storage */
    int held;               /* u is held while anything waits */
} pep_user_t;

/* What the service is, set once at start-up; the limits are runtime settings, read from the
 * worker's w->set (pep.max_*) where they are used. */
typedef struct pep_conf {
    pubsub_service_t service;
} pep_conf_t;
extern pep_conf_t pep__conf;
extern int pep__slot;
extern int pep__wslot; /* worker slot: the worker's copy of pep__conf.service */

/* The service as w applies it now: pep__conf's, with pep.max_items as w->set has it. */
static inline const pubsub_service_t *pep__service(worker_t *w)
{
    pubsub_service_t *s = w->slot[pep__wslot];
    s->max_items = w->set.pep_max_items;
    return s;
}

static inline pep_user_t *pep__state(const user_t *u)
{
    return u->slot[pep__slot];
}

static inline int pep__is(const hearth_xml_node_t *el, const char *name, const char *ns)
{
    return el && !strcmp(el->name, name) && !strcmp(el->ns, ns);
}

/* The quota bytes of an item: its payload and its id (what listings of it take). */
static inline size_t pep__item_bytes(size_t payload, const char *id)
{
    return payload + strlen(id);
}

/* pep.c: the queue. A request ends with pep__done (which frees it); one that calls storage
 * passes pep__stored as the callback and waits with pep__await, then goes on in then. A
 * callback of its own starts with pep__back and ends with pep__run (nothing may touch u after
 * it: it may let u go). */
void pep__done(pep_op_t *op);
void pep__stored(void *ud, int err);
void pep__await(pep_op_t *op, int rc, op_then_fn then);
void pep__back(pep_op_t *op);
void pep__run(worker_t *w, user_t *u);
pubsub_who_t pep__who(const user_t *u, const char *bare, const pubsub_node_t *n);

/* pep_iq.c */
void pep__process_iq(pep_op_t *op);
/* pep.c: a node changed by a request (publish: id and payload; retract: id; purge and delete:
 * neither), for the conversions that listen (pep_compat.h). */
void pep__changed(pep_op_t *op, const pubsub_node_t *n, const char *id, const char *payload);
/* pep.c: what the conversions say of a client's publish to node (pep_compat.h): 0, or -1 with
 * *e set. */
int pep__check_publish(pep_op_t *op, const char *node, const hearth_xml_node_t *payload,
                       pubsub_err_t *e);

/* pep_out.c: replies to op's requester, notifications to u's resources and contacts. */
void pep__result(pep_op_t *op, const char *inner); /* inner: serialised, NULL for none */
void pep__result_node(pep_op_t *op, const hearth_xml_node_t *payload);
void pep__error(pep_op_t *op, const pubsub_err_t *e);
void pep__fail(pep_op_t *op, hearth_stanza_error_t cond, const char *app, const char *text);
void pep__fail_storage(pep_op_t *op, int err);
/* The error, and op is done. */
void pep__reject(pep_op_t *op, const pubsub_err_t *e);
void pep__refuse(pep_op_t *op, hearth_stanza_error_t cond, const char *app, const char *text);
int pep__write_node_attr(hearth_buf_t *b, const char *open, const char *node, const char *close);
void pep__notify_item(worker_t *w, user_t *u, const pubsub_node_t *n, const char *id,
                      const char *payload);
/* what: "purge" or "delete"; or retract_id for <items><retract/></items>. */
void pep__notify_simple(worker_t *w, user_t *u, const pubsub_node_t *n, const char *what,
                        const char *retract_id);
void pep__notify_config(worker_t *w, user_t *u, const pubsub_node_t *n);
/* n's last item (payload NULL: without it) to op's requester, with its delay. */
void pep__send_last(pep_op_t *op, const pubsub_node_t *n, const char *payload);
/* fn(to, arg) on worker to: after what from already routed there; on from itself, next turn. */
void pep__post(worker_t *from, worker_t *to, void (*fn)(worker_t *, void *), void (*drop)(void *),
               void *arg);

#endif
