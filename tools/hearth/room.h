/* A multi-user chat room as hearth uses it (XEP-0045, the occupant's side only): join with a
 * nickname and an optional password, the occupants and their roles as presence tells them, the
 * subject, groupchat messages in and out, leave. Small on purpose: the library's MUC manager
 * (include/hearth/muc.h, when it lands) is the general one. Runs on the client's loop. */
#ifndef HEARTH_TOOL_ROOM_H
#define HEARTH_TOOL_ROOM_H

#include <stddef.h>

#include "hearth/client.h"

/* Occupants remembered per room; more are counted but not listed. */
#define ROOM_MAX_OCCUPANTS 2000

typedef struct room room_t;

typedef struct room_occupant {
    char *nick;
    char *role;        /* moderator, participant, visitor */
    char *affiliation; /* owner, admin, member, none */
    char *jid;         /* the real JID when the room shows it, else NULL */
} room_occupant_t;

/* Any may be NULL. Strings are lent for the call. */
typedef struct room_events {
    /* Our own presence came back (status 110): we are in. created: the room was new (201). */
    void (*joined)(void *ud, room_t *r, int created);
    /* The room refused us (before joined), or an error about a message of ours. */
    void (*error)(void *ud, room_t *r, hearth_stanza_error_t cond, const char *text);
    void (*occupant)(void *ud, room_t *r, const room_occupant_t *o, int present);
    /* delayed: history sent on join (XEP-0203). */
    void (*message)(void *ud, room_t *r, const char *nick, const char *body, int delayed);
    /* nick NULL: set by the room itself (or unknown). subject "" when none. */
    void (*subject)(void *ud, room_t *r, const char *nick, const char *subject);
    /* We are out: we left, were kicked or banned, or the room went away. */
    void (*left)(void *ud, room_t *r, const char *why);
} room_events_t;

/* Sends the join presence to ROOM/NICK; history: messages of history to ask for (0: none).
 * HEARTH_EINVAL (not a room JID or nickname), HEARTH_ENOMEM, or hearth_client_send's errors. */
int room_join(hearth_client_t *c, const char *room, const char *nick, const char *password,
              unsigned history, const room_events_t *ev, void *ud, room_t **out);
/* A groupchat message to the room. */
int room_send(room_t *r, const char *body);
/* The unavailable presence to the room (the left event follows when the room answers). */
int room_leave(room_t *r);
/* Stops listening and frees (no event). NULL is fine. */
void room_free(room_t *r);

const char *room_jid(const room_t *r);
const char *room_nick(const room_t *r);
int room_joined(const room_t *r);
/* The subject, NULL before the room sent one. */
const char *room_subject(const room_t *r);
size_t room_occupant_count(const room_t *r);
/* In order of nickname. */
const room_occupant_t *room_occupant_at(const room_t *r, size_t i);

#endif
