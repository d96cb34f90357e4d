/* The router: where a stanza goes, by its destination alone. A table of destinations (the
 * server's domain, local accounts, the services hosted here such as a multi-user chat domain;
 * later remote domains and other nodes) decides; what happens there is the business of the
 * hooks and handlers registered for it. The router names no module.
 * Delivery to an account homed on the same worker runs on the next loop turn (the run queue),
 * never inside the parser, write or teardown callback that produced it; to another worker it
 * goes through that worker's inbox. Both are FIFO, so what one sender sends one recipient
 * arrives in order. */
#ifndef HEARTH_ROUTER_H
#define HEARTH_ROUTER_H

#include "hearth/jid.h"
#include "hearth/xml.h"
#include "hearth/xmpp_error.h"
#include "core/server.h"
#include "core/session.h"

/* A service hosted on this server under its own domain (a multi-user chat service). Stanzas
 * for the domain or its JIDs are delivered on the home worker of the addressed bare JID. */
typedef struct router_service {
    const char *domain; /* prepared */
    const char *name;   /* in the server's disco#items (XEP-0030 §4); NULL: not listed */
    /* On the home worker of m's bare 'to'. Borrowed: the router frees m. */
    void (*deliver)(worker_t *w, inbox_msg_t *m);
} router_service_t;
/* At start-up. */
int router__add_service(const router_service_t *svc);
/* The i-th service added (0, 1, ...), or NULL past the last. */
const router_service_t *router__service(unsigned i);
void router__clear(void);

/* A stanza from a bound session: 'from' stamped, 'to' checked, then to the server itself, a
 * service, or the addressed account's home worker (hooks on the way). */
void router__from_session(session_t *s, hearth_xml_node_t *st, hearth_arena_t *arena);

/* Hands serialised stanza bytes to the home worker of to (a prepared JID). */
void router__route(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                   const char *type, hearth_bytes_t *bytes);
/* The same, for a message carrying the stanza id sid given for its recipient. */
void router__route_sid(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                       const char *type, const char *sid, hearth_bytes_t *bytes);
/* A message whose settlement the sender's stream management waits for. Unlike the others it
 * reports failure (out of memory, a full queue): then nothing was handed over. has_body: the
 * stanza has a <body/> (1) or not (0), -1 not known (inbox_msg_t's route.has_body). */
int router__route_settled(worker_t *w, const char *to, const char *from, const char *type,
                          const char *sid, session_t *sender, hearth_bytes_t *bytes, int has_body);
/* Serialises st and routes it to the JID to. */
void router__route_node(worker_t *w, const char *to, hearth_xml_node_t *st);
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
void router__batch_send(route_batch_t *b); /* consumes b */

/* On the destination's worker (inbox and run queue). */
void router__deliver(worker_t *w, inbox_msg_t *m);       /* INBOX_ROUTE; consumes m */
void router__deliver_multi(worker_t *w, inbox_msg_t *m); /* INBOX_ROUTE_MULTI; consumes m */
void router__settle_local(worker_t *w, const char *full, const char *sm_id, uint32_t seq);
/* The destination is done with m: the sender's h may count it. */
void router__settle(worker_t *w, const inbox_msg_t *m);
/* An error reply for a routed stanza, sent back to its sender (never for errors or results). */
void router__bounce(worker_t *w, const inbox_msg_t *m, hearth_stanza_error_t cond,
                    const char *text);
/* An error reply for st (from and to swapped) to the session it came from. */
void router__reply_error(session_t *s, hearth_xml_node_t *st, hearth_arena_t *arena,
                         hearth_stanza_error_t cond, const char *text);
/* Turns st into its error reply in place: to/from swapped, type='error', an <error/>; a stanza
 * without 'to' is answered from default_from (no 'from' when NULL). */
hearth_xml_node_t *router__make_error(hearth_xml_node_t *st, hearth_arena_t *arena,
                                      hearth_stanza_error_t cond, const char *text,
                                      const char *default_from);

/* Parses one serialised stanza and calls fn with its tree (valid during the call). */
typedef void (*stanza_fn)(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena);
void router__parse(const char *bytes, size_t len, stanza_fn fn, void *ud);
stanza_kind_t router__kind(const char *name);

#endif
