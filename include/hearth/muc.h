/* The multi-user chat manager (XEP-0045) on a libhearth client: rooms joined with a nickname,
 * a password and history options, their occupants kept with callbacks, group chat sent and
 * received, the subject, rooms created and configured through their form (XEP-0004, see
 * include/hearth/form.h), mediated invitations (§7.8.2) sent, invitations (mediated and direct,
 * XEP-0249) and declines received, and leaving. Rooms are joined again after a reconnection
 * that could not resume the session.
 *
 * Threads and results as in include/hearth/client.h: everything runs on the client's loop
 * thread, returns 0 or a negative HEARTH_E* code and copies the strings it is given. */
#ifndef HEARTH_MUC_H
#define HEARTH_MUC_H

#include <stddef.h>

#include "hearth/client.h"
#include "hearth/form.h"
#include "hearth/presence.h"

typedef struct hearth_muc hearth_muc_t;
/* One room we are in or joining. Owned by the manager: valid from hearth_muc_join until its
 * left event returns (or its joined event, when the join failed), or the manager is freed. */
typedef struct hearth_muc_room hearth_muc_room_t;

typedef enum hearth_muc_affiliation {
    HEARTH_MUC_AFFILIATION_NONE = 0,
    HEARTH_MUC_AFFILIATION_OUTCAST,
    HEARTH_MUC_AFFILIATION_MEMBER,
    HEARTH_MUC_AFFILIATION_ADMIN,
    HEARTH_MUC_AFFILIATION_OWNER,
} hearth_muc_affiliation_t;

typedef enum hearth_muc_role {
    HEARTH_MUC_ROLE_NONE = 0,
    HEARTH_MUC_ROLE_VISITOR,
    HEARTH_MUC_ROLE_PARTICIPANT,
    HEARTH_MUC_ROLE_MODERATOR,
} hearth_muc_role_t;

/* "none", "outcast", ... and "none", "visitor", ... (NULL out of range). */
const char *hearth_muc_affiliation_name(hearth_muc_affiliation_t a);
const char *hearth_muc_role_name(hearth_muc_role_t r);

/* An occupant as the room last described it. Pointers are borrowed: valid until the next event
 * about this occupant, or until the room goes. */
typedef struct hearth_muc_occupant {
    const char *nick;
    const char *jid; /* the real full JID when the room tells it (non-anonymous, or to
                        moderators); NULL otherwise */
    hearth_muc_affiliation_t affiliation;
    hearth_muc_role_t role;
    hearth_show_t show;
    const char *status; /* NULL: none */
    int self;           /* 1: this occupant is us */
} hearth_muc_occupant_t;

/* What happened to an occupant (the occupant event). */
typedef enum hearth_muc_change {
    HEARTH_MUC_JOINED,  /* came in (also each occupant present when we join) */
    HEARTH_MUC_CHANGED, /* its presence, role or affiliation changed */
    HEARTH_MUC_LEFT,    /* went: left, kicked, banned, or renamed (new_nick) */
} hearth_muc_change_t;

/* Why we are out of a room (the left event). */
typedef enum hearth_muc_left_reason {
    HEARTH_MUC_LEFT_BY_US = 0, /* hearth_muc_leave */
    HEARTH_MUC_LEFT_KICKED,    /* status 307 */
    HEARTH_MUC_LEFT_BANNED,    /* status 301 */
    HEARTH_MUC_LEFT_REMOVED,   /* status 321 or 322: affiliation changed, members only */
    HEARTH_MUC_LEFT_SHUTDOWN,  /* status 332: the service is going down */
    HEARTH_MUC_LEFT_DESTROYED, /* the room was destroyed (<destroy/>) */
    HEARTH_MUC_LEFT_OFFLINE,   /* the client went offline for good (no reconnection) */
} hearth_muc_left_reason_t;

/* Every callback may be NULL; each may call any function here except hearth_muc_free. */
typedef struct hearth_muc_events {
    /* Our join ended: result 0, in the room (created 1: the room is new and locked until its
     * owner configures it: hearth_muc_instant or hearth_muc_submit_form); or HEARTH_ESTANZA
     * with the room's error (<conflict/> for a nickname in use, <not-authorized/> for a
     * password, <registration-required/> members only, <forbidden/> banned, <item-not-found/>
     * locked, <not-allowed/> creation refused), after which the room is freed. Also called
     * after the automatic join of a new session. */
    void (*joined)(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, int result,
                   hearth_stanza_error_t cond, int created);
    /* An occupant came, changed or went. new_nick: for HEARTH_MUC_LEFT by a nickname change
     * (status 303), the new one (a JOINED event of it follows); NULL otherwise. code: the
     * status code that explains a departure (307 kicked, 301 banned, 321, 322, 332) or 0. st:
     * the presence (lent). Not called for ourselves. */
    void (*occupant)(void *ud, hearth_muc_t *m, hearth_muc_room_t *room,
                     const hearth_muc_occupant_t *occ, hearth_muc_change_t change,
                     const char *new_nick, int code, hearth_stanza_t *st);
    /* A group chat message: nick NULL when the room itself speaks; delay: the stamp of a
     * message from the room's history (XEP-0203), NULL for a live one. st is lent. */
    void (*message)(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *nick,
                    const char *body, const char *delay, hearth_stanza_t *st);
    /* The subject was set (also when we join: the room's current subject; "" when none); nick
     * NULL when unknown or the room. */
    void (*subject)(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *nick,
                    const char *subject);
    /* We are out of the room (reason, and the room's text or NULL); the room is freed after. */
    void (*left)(void *ud, hearth_muc_t *m, hearth_muc_room_t *room,
                 hearth_muc_left_reason_t reason, const char *text);
    /* An invitation to room_jid from inviter (a bare or full JID), with its reason and the
     * room's password (each NULL when none): mediated (XEP-0045 §7.8.2, direct 0) or direct
     * (XEP-0249, direct 1). Accept with hearth_muc_join, refuse with hearth_muc_decline. */
    void (*invitation)(void *ud, hearth_muc_t *m, const char *room_jid, const char *inviter,
                       const char *reason, const char *password, int direct);
    /* Our invitation to room_jid was declined by from, with its reason or NULL. */
    void (*declined)(void *ud, hearth_muc_t *m, const char *room_jid, const char *from,
                     const char *reason);
    /* A message to a room came back as an error (e.g. <forbidden/> for a visitor speaking in a
     * moderated room, <not-acceptable/> for an invitation we may not send). */
    void (*error)(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *id,
                  hearth_stanza_error_t cond, const char *text);
} hearth_muc_events_t;

/* Occupants one room keeps at most: past it an occupant is reported (its event) but not kept
 * (hearth_muc_occupant_find does not find it). */
#define HEARTH_MUC_MAX_OCCUPANTS 2000

/* A MUC manager for c in its slot HEARTH_SLOT_MUC (ev may be NULL; copied). Freed with the
 * client. HEARTH_EEXISTS, HEARTH_ENOMEM. It takes the presence from the rooms it is in, so that
 * the presence manager (include/hearth/presence.h) does not cache occupants as contacts. */
int hearth_muc_new(hearth_client_t *c, const hearth_muc_events_t *ev, void *ud,
                   hearth_muc_t **out) HEARTH_MUST_CHECK;
hearth_muc_t *hearth_muc_get(const hearth_client_t *c);
/* Frees the manager and its rooms without a word to them (leave them first to be polite). Not
 * from inside its events. NULL is fine. */
void hearth_muc_free(hearth_muc_t *m);
hearth_client_t *hearth_muc_client(const hearth_muc_t *m);

/* ---- joining and leaving ---- */

/* How to join. Every field's zero value is its default: no password, the room's own choice
 * of history. */
typedef struct hearth_muc_join_options {
    const char *password;
    int no_history;            /* 1: <history maxstanzas='0'/> */
    unsigned history_stanzas;  /* > 0: at most this many messages of history */
    unsigned history_seconds;  /* > 0: only messages of the last seconds */
    const char *history_since; /* XEP-0082 date-time: only messages after it */
} hearth_muc_join_options_t;

/* Joins room_jid (a bare JID: room@service) as nick: <presence to='room@service/nick'><x
 * xmlns='http://jabber.org/protocol/muc'>... (history, password). A room that does not exist
 * is created (the joined event says created). *room (if not NULL) gets the room; the joined
 * event tells the outcome. HEARTH_EINVAL (not a bare JID, a bad nick), HEARTH_EEXISTS (already
 * in or joining it), HEARTH_ECLOSED (not online), and the errors of hearth_client_send. */
int hearth_muc_join(hearth_muc_t *m, const char *room_jid, const char *nick,
                    const hearth_muc_join_options_t *opts, hearth_muc_room_t **room);
/* Leaves: <presence type='unavailable'> with the status (NULL: none). The left event comes
 * when the room confirms (or at once when not online). */
int hearth_muc_leave(hearth_muc_room_t *room, const char *status);

/* ---- a room ---- */

hearth_muc_room_t *hearth_muc_room_find(const hearth_muc_t *m, const char *room_jid);
/* The rooms, in the order joined. */
size_t hearth_muc_room_count(const hearth_muc_t *m);
hearth_muc_room_t *hearth_muc_room_at(const hearth_muc_t *m, size_t i);
/* The room's bare JID and our nick in it (borrowed, valid like the room). */
const char *hearth_muc_room_jid(const hearth_muc_room_t *room);
const char *hearth_muc_room_nick(const hearth_muc_room_t *room);
/* 1 once the joined event said so (and until we leave). */
int hearth_muc_room_joined(const hearth_muc_room_t *room);
/* The current subject, NULL before the room sent one. */
const char *hearth_muc_room_subject(const hearth_muc_room_t *room);
/* Occupants (ourselves included), in arrival order. */
size_t hearth_muc_occupant_count(const hearth_muc_room_t *room);
const hearth_muc_occupant_t *hearth_muc_occupant_at(const hearth_muc_room_t *room, size_t i);
const hearth_muc_occupant_t *hearth_muc_occupant_find(const hearth_muc_room_t *room,
                                                      const char *nick);
/* Our own occupant (NULL before the join completes). */
const hearth_muc_occupant_t *hearth_muc_room_self(const hearth_muc_room_t *room);

/* ---- talking ---- */

/* <message to='room' type='groupchat' id><body/></message>; the room echoes it to us as to
 * every occupant. id_out (id_size bytes, at least 24) gets the id when not NULL. */
int hearth_muc_say(hearth_muc_room_t *room, const char *body, char *id_out, size_t id_size);
/* Changes the subject (<message type='groupchat'><subject/></message>); "" clears it. */
int hearth_muc_set_subject(hearth_muc_room_t *room, const char *subject);
/* A mediated invitation (XEP-0045 §7.8.2): <message to='room'><x xmlns='...muc#user'><invite
 * to='jid'><reason/></invite></x></message>; the room passes it on (with the password). A
 * refusal comes back through the declined event. reason may be NULL. */
int hearth_muc_invite(hearth_muc_room_t *room, const char *jid, const char *reason);
/* Declines an invitation to room_jid from inviter (through the room, §7.8.2). */
int hearth_muc_decline(hearth_muc_t *m, const char *room_jid, const char *inviter,
                       const char *reason);

/* ---- configuration (XEP-0045 §10.1-10.2) ---- */

/* The room's configuration form, or why there is none: result 0 and form (lent: valid during
 * the call), or HEARTH_ESTANZA (e.g. <forbidden/> for a non-owner), HEARTH_ETIMEOUT,
 * HEARTH_ECLOSED, HEARTH_EXML (the answer held no form it could read). */
typedef void (*hearth_muc_form_fn)(void *ud, hearth_muc_t *m, const char *room_jid, int result,
                                   const hearth_form_t *form);
/* Asks the room for its configuration form (<iq type='get'><query
 * xmlns='...muc#owner'/></iq>). */
int hearth_muc_fetch_form(hearth_muc_room_t *room, hearth_muc_form_fn cb, void *ud);
/* Submits a configuration: <query xmlns='...muc#owner'><x type='submit'> with FORM_TYPE
 * muc#roomconfig and form's fields (their var and values; form->type is ignored; a FORM_TYPE
 * field in form is not repeated). Fields left out keep their values. cb (may be NULL) gets the
 * room's answer (HEARTH_ESTANZA with <not-acceptable/> for a value it refuses). */
int hearth_muc_submit_form(hearth_muc_room_t *room, const hearth_form_t *form, hearth_iq_fn cb,
                           void *ud);
/* Accepts the default configuration of a room just created (an instant room, §10.1.2: an
 * empty submitted form). */
int hearth_muc_instant(hearth_muc_room_t *room, hearth_iq_fn cb, void *ud);

#endif
