/* The IM core of RFC 6121 on the users' home workers: per-user state (user.c), rosters with
 * versioning (roster.c), presence and subscriptions (presence.c), message delivery with offline
 * storage and stanza ids (message.c), blocking (blocking.c), last activity (last.c).
 * Stanzas from a session are handled on its home worker (the user's state is loaded before its
 * first session is bound); stanzas to a user arrive there through the router and wait, in
 * order, for the user's state when it is not in memory. */
#ifndef HEARTH_IM_H
#define HEARTH_IM_H

#include "c2s/conn.h"
#include "modules/module.h"

#define NS_ROSTER "jabber:iq:roster"
#define NS_SID "urn:xmpp:sid:0"
#define NS_DELAY "urn:xmpp:delay"
#define NS_BLOCKING "urn:xmpp:blocking"
#define NS_BLOCKING_ERRORS "urn:xmpp:blocking:errors"
#define NS_LAST "jabber:iq:last"

/* user.c */
void user__free(user_t *u);
/* Runs fn(w, u, arg) once u's stored state is loaded (now when it already is), in order with
 * everything else waiting for u. u->state is USER_READY, or USER_MISSING for no such account. */
void user__acquire(worker_t *w, const char *bare, user_fn fn, void *arg);
void user__hold(user_t *u);
void user__release(worker_t *w, user_t *u);
/* The contacts whose roster item has subscription from/both (presence goes to them). */
int user__sub_from(const storage_roster_item_t *it);
int user__sub_to(const storage_roster_item_t *it);
/* Storage write callback that only logs a failure and releases u (pass u as ud after hold). */
void user__write_done(void *ud, int err);
int64_t user__now_ms(void);

/* 24 hex digits from the system's CSPRNG (stanza and archive ids), NUL-terminated. */
void im__random_id(char *out, size_t len);
/* <presence type='unavailable' from=full/>, serialised once for any number of recipients. */
hearth_bytes_t *im__unavailable(const char *full);
/* Parses one serialised stanza and calls fn with its tree (valid during the call). */
typedef void (*stanza_fn)(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena);
void im__parse(const char *bytes, size_t len, stanza_fn fn, void *ud);
/* Serialises st and routes it to the JID `to` (a local user's home worker, or nowhere). */
void im__route_node(worker_t *w, const char *to, hearth_xml_node_t *st);
/* Sends bytes of a stanza to a session, writing ` to='to'` into its start tag when to is
 * given (bytes must then have no 'to'): one serialisation serves every recipient. */
void im__send_addressed(conn_t *c, const hearth_bytes_t *bytes, const char *to);

/* roster.c */
extern const module_t module_roster;
/* Saves it (owned by u->roster afterwards) with a new version and pushes it. */
void roster__changed(worker_t *w, user_t *u, storage_roster_item_t *it);
void roster__removed(worker_t *w, user_t *u, const char *jid);
void roster__item_free(storage_roster_item_t *it);
storage_roster_item_t *roster__item_new(const char *jid);
/* The bytes an item takes in a roster result (an upper bound). */
size_t roster__item_size(const char *jid, const char *name, char *const *groups, size_t ngroups);
/* Whether u's roster stays within roster.max_items and roster.max_size with the item for jid
 * set to one of item_bytes. */
int roster__fits(worker_t *w, const user_t *u, const char *jid, size_t item_bytes);

/* presence.c */
extern const module_t module_presence;
void presence__from_client(conn_t *c, hearth_xml_node_t *st, hearth_arena_t *arena);
/* An inbound presence stanza for u (bytes as routed; type parsed). */
void presence__inbound(worker_t *w, user_t *u, inbox_msg_t *m);
/* The session ends: unavailable to whoever saw it available. */
void presence__session_end(conn_t *c);
/* Routes <presence type=TYPE from=u's bare to=contact/> (subscription management). */
void presence__send_sub(worker_t *w, user_t *u, const char *contact, const char *type);
/* Unavailable from each of u's available resources to contact (its subscription ended). */
void presence__send_unavailable_to(worker_t *w, user_t *u, const char *contact);
/* Forgets a stored inbound subscription request. */
void presence__drop_request(worker_t *w, user_t *u, const char *jid);

/* message.c */
extern const module_t module_message;
void message__inbound(worker_t *w, user_t *u, inbox_msg_t *m);
/* Prepares a message from a client for a local user: strips forged stanza ids, adds ours. */
void message__stamp(hearth_xml_node_t *st, hearth_arena_t *arena, const char *to_bare,
                    const char *sender_bare, const char *domain, char *id, size_t idlen);
/* Initial presence with priority >= 0: deliver what waited offline. */
void message__flush_offline(conn_t *c);
/* The connection drained (or is closing): the next batch of offline messages, if any. */
void message__offline_pump(conn_t *c);

/* blocking.c */
extern const module_t module_blocking;
int blocking__blocks(const user_t *u, const char *jid); /* jid: full, bare or domain */

/* mam.c: the message archive (XEP-0313). */
extern const module_t module_mam;
/* A message accepted for u (delivered or stored offline), on u's home worker; m->u.route.sid
 * is the stanza id the recipient sees. Only messages worth archiving are kept (a body). */
void mam__incoming(worker_t *w, user_t *u, const inbox_msg_t *m);
/* A message sent by c's user (on its home worker), before it is routed to `to`. */
void mam__outgoing(conn_t *c, hearth_xml_node_t *st, hearth_arena_t *arena, const char *to);
void mam__user_free(user_t *u); /* the module's per-user state (u->mam) */

/* muc.c: multi-user chat (XEP-0045); rooms live on their home worker (hash of the room JID). */
extern const module_t module_muc;
/* A stanza for the service or one of its rooms (m->u.route.to in the MUC domain), on the
 * room's home worker. Borrowed: the caller frees m. */
void muc__deliver(worker_t *w, inbox_msg_t *m);
/* The server shuts down (begin_shutdown, before sessions close): the rooms homed on w send each
 * occupant an unavailable presence with status 110 and 332 (best effort: occupants homed on
 * other workers may be closing already). */
void muc__shutdown(worker_t *w);
void muc__forget_jid(worker_t *w, const char *bare); /* INBOX_MUC_FORGET */

/* carbons.c (XEP-0280) */
extern const module_t module_carbons;
int carbons__eligible(const hearth_xml_node_t *st);
/* c sent st (from stamped): copies to the user's other resources that enabled carbons. */
void carbons__sent(conn_t *c, hearth_xml_node_t *st);
/* A message for u was given to the sessions in delivered: copies to the others. */
void carbons__received(user_t *u, const hearth_bytes_t *bytes, conn_t *const *delivered,
                       size_t ndelivered);

/* last.c */
extern const module_t module_last;
/* An IQ jabber:iq:last for u's bare JID from another user (routed to u's home worker). */
void last__inbound(worker_t *w, user_t *u, inbox_msg_t *m);

#endif
