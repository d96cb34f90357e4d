/* The IM modules of RFC 6121 on the users' home workers: rosters with versioning (roster.c),
 * presence and subscriptions (presence.c), message delivery with offline storage and stanza ids
 * (message.c), blocking (blocking.c), last activity (last.c), carbons, the archive, multi-user
 * chat, and the small ones. They see sessions, users and the router through the core's headers
 * only (never a connection or a stream), register on its hooks in their init, and call each
 * other through this header. */
#ifndef HEARTH_IM_H
#define HEARTH_IM_H

#include "hearth/ns.h"

#include "core/hooks.h"
#include "core/log.h"
#include "core/module.h"
#include "core/router.h"
#include "core/session.h"
#include "core/user.h"

/* <presence type='unavailable' from=full/>, serialised once for any number of recipients. */
hearth_bytes_t *im__unavailable(const char *full);
/* Whether a session still takes stanzas (bound or waiting for a resumption, end not decided). */
static inline int im__live(const session_t *s)
{
    return s->state != SESSION_ENDED && !s->ending;
}

/* user.c (IM core): the account of bare was deleted (its rows are gone): tell its contacts as
 * XEP-0077 §3.2 says, end its sessions, and have every worker drop what grants it had. Runs on
 * bare's home worker. */
void user__account_deleted(worker_t *w, const char *bare);

/* roster.c */
extern const module_t module_roster;
/* A roster item's bounds: a longer name or group, or more groups, get not-acceptable. */
#define ROSTER_NAME_MAX 1023
#define ROSTER_GROUP_MAX 1023
#define ROSTER_GROUPS_MAX 100
/* Saves it (owned by u->roster afterwards) with a new version and pushes it. */
void roster__changed(worker_t *w, user_t *u, storage_roster_item_t *it);
void roster__removed(worker_t *w, user_t *u, const char *jid);
/* The bytes an item takes in a roster result (an upper bound). */
size_t roster__item_size(const char *jid, const char *name, char *const *groups, size_t ngroups);
/* Whether u's roster stays within roster.max_items and roster.max_size with the item for jid
 * set to one of item_bytes. */
int roster__fits(worker_t *w, const user_t *u, const char *jid, size_t item_bytes);

/* presence.c */
extern const module_t module_presence;
/* Routes <presence type=TYPE from=u's bare to=contact/> (subscription management). */
void presence__send_sub(worker_t *w, user_t *u, const char *contact, const char *type);
/* Unavailable from each of u's available resources to contact (its subscription ended). */
void presence__send_unavailable_to(worker_t *w, user_t *u, const char *contact);
/* Forgets a stored inbound subscription request. */
void presence__drop_request(worker_t *w, user_t *u, const char *jid);

/* message.c */
extern const module_t module_message;
/* Initial presence with priority >= 0: deliver what waited offline. */
void message__flush_offline(session_t *s);

/* blocking.c */
extern const module_t module_blocking;
int blocking__blocks(const user_t *u, const char *jid); /* jid: full, bare or domain */

/* mam.c: the message archive (XEP-0313). */
extern const module_t module_mam;

/* muc.c: multi-user chat (XEP-0045); rooms live on their home worker (hash of the room JID). */
extern const module_t module_muc;

/* carbons.c (XEP-0280) */
extern const module_t module_carbons;
int carbons__eligible(const hearth_xml_node_t *st);

/* last.c */
extern const module_t module_last;

/* caps.c: the entity capabilities (XEP-0115) of each resource, learnt from its broadcast
 * presence: the nodes it wants notifications of ('<node>+notify'). A set is immutable once
 * made and shared (the server's cache, sessions, other workers) by its atomic count. */
typedef struct caps_set {
    int refs;
    size_t n;
    const char *nodes[]; /* sorted (i;octet), without repeats; the names follow in the block */
} caps_set_t;
extern const module_t module_caps;
caps_set_t *caps__set_new(const char *const *names, size_t n); /* NULL on ENOMEM */
caps_set_t *caps__ref(caps_set_t *c);
void caps__unref(caps_set_t *c);
int caps__has(const caps_set_t *c, const char *node);
/* What s wants notifications of (borrowed), NULL while unknown; whether it wants node's. */
caps_set_t *caps__wanted(const session_t *s);
int caps__wants(const session_t *s, const char *node);
/* At start-up: fn hears when an available resource (non-negative priority) newly wants
 * notifications of nodes (borrowed: a reference is taken when kept), on the session's worker. */
typedef void (*caps_wants_fn)(session_t *s, caps_set_t *nodes);
void caps__listen(caps_wants_fn fn);

/* pep.c: personal eventing (XEP-0163) on every account. disco for an account is answered by
 * PEP: its nodes (#items), a node's information (#info with a node). */
extern const module_t module_pep;
/* pubsub_svc.c: the pubsub service (XEP-0060) at pubsub.<domain>. */
extern const module_t module_pubsub_svc;
void pep__disco_items(iq_ctx_t *ctx);
void pep__disco_node_info(iq_ctx_t *ctx);

/* avatar.c (XEP-0398, XEP-0153) and bookmarks.c (XEP-0402 §5.3 with XEP-0048): conversions
 * between PEP and the vCard or private XML (pep_compat.h). */
extern const module_t module_avatar;
extern const module_t module_bookmarks;

/* register.c: the password rule of XEP-0077 (not empty, the configured minimum length) and the
 * SCRAM-SHA-1 and -256 secrets of a password with a fresh salt each (PBKDF2, milliseconds: on
 * libuv's pool, never on a loop), for every way an account gets a password. */
int register__password_ok(const settings_t *s, const char *pw);
int register__derive(const char *password, unsigned iterations, storage_account_t *acct);

/* adhoc.c: ad-hoc commands (XEP-0050) with service administration (XEP-0133) for admin
 * accounts. The server's disco asks it first about the commands node and each command's node:
 * 1 when it took the IQ (answered now or later), 0 when the node is not its. */
extern const module_t module_adhoc;
int adhoc__disco_items(iq_ctx_t *ctx);
int adhoc__disco_info(iq_ctx_t *ctx);

/* core.c (ping, disco, session), register.c, misc.c, vcard.c, private.c */
extern const module_t module_core;
extern const module_t module_register;
extern const module_t module_misc;
extern const module_t module_vcard;
extern const module_t module_private;

/* vcard.c: what gives a vCard set a meaning elsewhere (XEP-0398, avatar.c) listens. check runs
 * before the vCard is stored: non-zero refuses the set with *cond and *text, nothing stored.
 * stored runs once it is (xml NULL: the vCard was cleared), and owns the deferred reply. */
typedef struct vcard_listener {
    int (*check)(session_t *s, const hearth_xml_node_t *vcard, hearth_stanza_error_t *cond,
                 const char **text);
    void (*stored)(worker_t *w, const char *bare, const char *xml, iq_deferred_t *d);
} vcard_listener_t;
void vcard__listen(const vcard_listener_t *l); /* at start-up; one listener */

/* private.c: fn hears each fragment a client stored (on the account's home worker, after the
 * reply), for conversions (XEP-0402 §5.3, bookmarks.c). */
typedef void (*private_stored_fn)(worker_t *w, const char *bare, const char *ns, const char *xml);
void private__listen(private_stored_fn fn); /* at start-up; one listener */

/* all.c: every module, in the order they register (NULL-terminated). */
extern const module_t *const modules__all[];

#endif
