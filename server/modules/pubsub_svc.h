/* The publish-subscribe service (XEP-0060) at pubsub.<domain>, on the engine of pubsub.h:
 * nodes created explicitly, with owners, publishers and subscribers named by affiliations and
 * subscriptions. The whole service lives on the home worker of its domain; its requests run one
 * at a time, in order, each to the end of its storage calls. Files: pubsub_svc.c (the module:
 * state, loading, the queue, entry, replies and notifications, disco), pubsub_svc_iq.c (the
 * requests on nodes and items, and the dispatch), pubsub_svc_subs.c (subscriptions and
 * affiliations, and the owner's answer to an authorization form). */
#ifndef HEARTH_PUBSUB_SVC_H
#define HEARTH_PUBSUB_SVC_H

#include "modules/im.h"
#include "modules/pubsub.h"

/* Requests waiting for the service, and the bytes of their trees: past either the requester
 * gets resource-constraint. */
#define PSVC_OPS_MAX 10000
#define PSVC_OPS_BYTES (32u << 20)
/* A node's newest payload is kept in memory up to this size (sent to new subscribers). */
#define PSVC_LAST_INLINE 16384
/* Affiliations of one node, and changes in one owner request; past them policy-violation. */
#define PSVC_AFFS_MAX 1000
#define PSVC_CHANGES_MAX 100
/* Subscriptions are stored as one document per node (storage_doc_put, kind below, key the
 * node's name): the list of a node's subscriptions must fit STORAGE_XML_MAX. */
#define PSVC_DOC_KIND "pubsub-subs"
#define PSVC_SUBID_LEN 25
/* The service's own requests (an account removed), queued like a client's. */
#define PSVC_NS_INTERNAL "urn:hearth:pubsub-internal"

typedef enum { PSVC_CREATE_LOCAL, PSVC_CREATE_ADMIN, PSVC_CREATE_OPEN } psvc_create_t;

/* What the service is, set once at start-up. */
typedef struct psvc_conf {
    const char *domain;        /* the service's */
    const char *server_domain; /* its users' */
    pubsub_service_t service;
    psvc_create_t create;
    size_t max_nodes;      /* nodes one user may own */
    size_t max_item_size;  /* bytes of a payload */
    size_t max_node_bytes; /* bytes of a node's payloads */
    size_t max_subs;       /* subscriptions of one node */
} psvc_conf_t;
extern psvc_conf_t psvc__conf;

typedef struct psvc_sub {
    char *jid; /* as the subscription names it: full or bare */
    char *subid;
    int pending;   /* waits for an owner's approval (access model authorize) */
    int nodeliver; /* its option pubsub#deliver is false (§6.3): no notifications */
} psvc_sub_t;

typedef struct psvc_node {
    pubsub_node_t *n; /* its affs hold owners, publishers, members and outcasts */
    psvc_sub_t *subs;
    size_t nsubs, cap;
} psvc_node_t;

typedef enum { PSVC_NEW, PSVC_LOADING, PSVC_READY } psvc_state_t;

/* A contact in a node owner's roster, as the access models presence and roster see it. */
typedef struct psvc_contact {
    char *jid;
    int from; /* the owner's presence goes to it (subscription from or both) */
    char **groups;
    size_t ngroups;
} psvc_contact_t;

typedef struct psvc_op psvc_op_t;
typedef void (*psvc_then_fn)(psvc_op_t *op, int err);

/* One request (an IQ, or a message with an authorization form), from arrival to reply. */
struct psvc_op {
    psvc_op_t *next;
    worker_t *w;
    hearth_arena_t *arena;
    hearth_xml_node_t *st;             /* the stanza, 'from' stamped */
    hearth_xml_node_t *action, *extra; /* in st: the action, and publish-options, configure or
                                        * options beside it */
    char *requester;                   /* its full JID */
    char *requester_bare;
    size_t cost;
    psvc_then_fn then; /* what follows the storage call in flight */
    /* What the steps after storage need. */
    psvc_node_t *node;
    int creating;
    char *id;
    char *payload;
    size_t size;
    size_t keep;
    int64_t stamp_ms;
    int notify;    /* retract: notify; publish: notification-only, without an item */
    int nodeliver; /* subscribe, options: pubsub#deliver false */
    pubsub_config_t config;
    storage_pubsub_aff_t *changes;
    size_t nchanges;
    psvc_sub_t *subs; /* the node's subscriptions after the change (owned until taken) */
    size_t nsubs;
    char **told;   /* JIDs to tell of their new subscription state */
    char **states; /* each one's new state */
    size_t ntold;
    /* The owner's roster (access models presence and roster), ordered by JID. */
    int roster_known;
    psvc_contact_t *contacts;
    size_t ncontacts;
    void (*after_roster)(psvc_op_t *op);
    char *redirect;
};

/* The service's state, on its home worker. */
typedef struct psvc {
    worker_t *w;
    psvc_state_t state;
    strmap_t nodes; /* name -> psvc_node_t */
    psvc_op_t *head, *tail;
    size_t nops, ops_bytes;
    psvc_op_t *busy; /* the request waiting for storage */
} psvc_t;

psvc_t *psvc__get(worker_t *w); /* on the service's home worker; NULL on ENOMEM */

static inline int psvc__is(const hearth_xml_node_t *el, const char *name, const char *ns)
{
    return el && !strcmp(el->name, name) && !strcmp(el->ns, ns);
}

/* pubsub_svc.c: the queue (as pep.h's). A request ends with psvc__done; one that calls storage
 * passes psvc__stored as the callback and waits with psvc__await. */
void psvc__done(psvc_op_t *op);
void psvc__stored(void *ud, int err);
void psvc__await(psvc_op_t *op, int rc, psvc_then_fn then);
void psvc__back(psvc_op_t *op);
void psvc__run(worker_t *w);
void psvc__logged(void *ud, int err); /* a storage call whose outcome only the log needs */
/* Node state */
void psvc__node_free(psvc_node_t *pn);
void psvc__subs_free(psvc_sub_t *subs, size_t n);
char *psvc__subs_store(const psvc_sub_t *subs, size_t n); /* the stored document, malloc'd */
pubsub_who_t psvc__who(const psvc_op_t *op, const psvc_node_t *pn); /* the requester */
pubsub_who_t psvc__who_of(const psvc_op_t *op, const psvc_node_t *pn, const char *bare);
/* Replies to op's requester. */
void psvc__result(psvc_op_t *op, const char *inner); /* inner serialised; NULL: empty */
void psvc__result_node(psvc_op_t *op, const hearth_xml_node_t *payload);
void psvc__error(psvc_op_t *op, const pubsub_err_t *e);
void psvc__reject(psvc_op_t *op, const pubsub_err_t *e); /* the error, and op is done */
void psvc__refuse(psvc_op_t *op, hearth_stanza_error_t cond, const char *app, const char *text);
void psvc__fail_storage(psvc_op_t *op, int err);
/* Notifications to the node's subscribers (approved ones), built once: all of them, or only
 * those the access model still lets in (the owner's roster, when the model needs it, at hand
 * in op). */
void psvc__notify(const psvc_op_t *op, const psvc_node_t *pn, const hearth_buf_t *event, int all);
void psvc__notify_item(const psvc_op_t *op, const psvc_node_t *pn, const char *id,
                       const char *payload);
void psvc__notify_simple(const psvc_op_t *op, const psvc_node_t *pn, const char *what,
                         const char *retract_id, const char *redirect);
void psvc__notify_config(const psvc_op_t *op, const psvc_node_t *pn);
/* One message to jid: the last item of pn (with its delay), or a subscription's state. */
void psvc__send_last(worker_t *w, const psvc_node_t *pn, const char *jid, const char *payload);
void psvc__send_sub_state(worker_t *w, const char *node, const char *jid, const char *subid,
                          const char *state);
/* The authorization form (§8.6) for sub to each owner of pn. */
void psvc__ask_owners(worker_t *w, const psvc_node_t *pn, const psvc_sub_t *sub);
int psvc__write_attr(hearth_buf_t *b, const char *open, const char *value, const char *close);
void psvc__disco(psvc_op_t *op, const hearth_xml_node_t *q, int items);

/* pubsub_svc_iq.c: the dispatch, requests on nodes and items, and what requests share. The
 * functions that answer end op when they fail (NULL or -1: op was answered and is done). */
void psvc__process(psvc_op_t *op);
psvc_node_t *psvc__node_get(const psvc_op_t *op, const char *name);
/* The node attribute of el: 0, or -1 with nodeid-required (or not-acceptable) in *e. */
int psvc__name_of(const hearth_xml_node_t *el, const char **out, pubsub_err_t *e);
psvc_node_t *psvc__named_node(psvc_op_t *op); /* the node op->action names */
psvc_node_t *psvc__owned_node(psvc_op_t *op); /* the same, when the requester owns it */
int psvc__is_local(const char *bare);         /* an account of this server's domain */
int psvc__jid_attr(psvc_op_t *op, const hearth_xml_node_t *el, hearth_jid_t *out);
/* fn(op) once the node owner's roster is at hand, when access model m needs it: for the
 * requester (requester 1: unless its affiliation decides) or for pn's subscribers (0). */
void psvc__with_roster(psvc_op_t *op, psvc_node_t *pn, pubsub_access_t m, int requester,
                       void (*fn)(psvc_op_t *op));

/* pubsub_svc_subs.c: the requests on subscriptions and affiliations, each ending op. */
void psvc__subscribe(psvc_op_t *op);
void psvc__unsubscribe(psvc_op_t *op);
void psvc__options_get(psvc_op_t *op);
void psvc__options_set(psvc_op_t *op);
void psvc__options_default(psvc_op_t *op);
void psvc__own_subscriptions(psvc_op_t *op);
void psvc__own_affiliations(psvc_op_t *op);
void psvc__subs_get(psvc_op_t *op);
void psvc__subs_set(psvc_op_t *op);
void psvc__affs_get(psvc_op_t *op);
void psvc__affs_set(psvc_op_t *op);
void psvc__authorization(psvc_op_t *op); /* a message with the owner's answer (§8.6) */
void psvc__forget(psvc_op_t *op);        /* an account removed */

#endif
