/* The hook bus: modules register handlers on named events with a priority at start-up (higher
 * runs first); the core and the stream layers run them. A handler returns HOOK_STOP to end the
 * chain (it took the event: replied, dropped, delivered), HOOK_CONTINUE to let the next one
 * see it. Registrations are read-only once the workers run; handlers run on the worker whose
 * state the event concerns, and keep their state per worker or in session and user slots. */
#ifndef HEARTH_HOOKS_H
#define HEARTH_HOOKS_H

#include "hearth/buf.h"
#include "hearth/xml.h"
#include "core/server.h"

typedef struct session session_t;

typedef enum {
    /* Sessions, on their home worker (args: s). */
    HOOK_SESSION_BOUND,    /* bound, its bind result sent */
    HOOK_SESSION_ENDING,   /* leaving its user's list: presence goes unavailable, pumps end */
    HOOK_SESSION_DETACHED, /* its connection is gone; it waits for a resumption */
    HOOK_SESSION_RESUMED,  /* a new connection carries it */
    HOOK_SESSION_DRAINED,  /* its connection's output drained: paced senders send more */
    HOOK_SESSION_FREE,     /* the last reference is going: free what slots hold */
    /* Stanzas from a session (args: s, st with 'from' stamped, arena, to = prepared JID). */
    HOOK_STANZA_OUT,   /* any stanza for another entity, before routing (blocking) */
    HOOK_PRESENCE_OUT, /* presence: the presence module takes it */
    HOOK_MESSAGE_OUT,  /* a message for a local account, before it is routed: copies (carbons,
                        * archive); the message module then stamps its id (args: sid) */
    HOOK_IQ_RESULT,    /* an IQ result or error for the server itself (to its domain, or without
                        * 'to'): the answer to a request a module sent the session (args: s, st) */
    /* Stanzas for a local account, on its home worker once its state is loaded (args: u, m). */
    HOOK_STANZA_IN,         /* any kind, before the kind's handler (blocking) */
    HOOK_MESSAGE_IN,        /* delivery or offline storage */
    HOOK_PRESENCE_IN,       /* subscriptions, probes, presence broadcast */
    HOOK_IQ_IN,             /* an IQ for the account's bare JID or one of its resources */
    HOOK_MESSAGE_ACCEPTED,  /* delivered or stored for u (archive) */
    HOOK_MESSAGE_DELIVERED, /* given to these sessions of u (args: delivered, ndelivered) */
    /* Accounts and the server. */
    HOOK_USER_UNLOADED,   /* u leaves memory: free what its slots hold */
    HOOK_ACCOUNT_REMOVED, /* args: bare (any worker): grants given to it go */
    HOOK_SHUTDOWN,        /* the worker stops: last words before the sessions close */
    HOOK__COUNT
} hook_id_t;

enum { HOOK_CONTINUE = 0, HOOK_STOP = 1 };

typedef struct hook_args {
    worker_t *w;
    session_t *s;
    user_t *u;
    hearth_xml_node_t *st;
    hearth_arena_t *arena;
    inbox_msg_t *m;
    const char *to; /* prepared: the bare or full JID a stanza from a session goes to */
    int service;    /* that JID is a service's (a room), not a local account's */
    const char *bare;
    char *sid; /* HOOK_MESSAGE_OUT to an account: the message's archive key in decimal, its
                * stanza id for the recipient (sid_len bytes); NULL to a service */
    size_t sid_len;
    session_t *const *delivered;
    size_t ndelivered;
} hook_args_t;

typedef int (*hook_fn)(hook_args_t *a);

/* At start-up, before the workers run. HEARTH_ELIMIT past HOOKS_MAX per event. */
#define HOOKS_MAX 16
int hooks__add(hook_id_t id, int priority, hook_fn fn);
/* Runs the chain; HOOK_STOP when a handler took the event. */
int hooks__run(hook_id_t id, hook_args_t *a);
void hooks__clear(void); /* tests and shutdown */

#endif
