/* Users on their home worker (core/server.h struct user): loaded from storage once, before any
 * work for them runs, with the work waiting in order (bounded); held while sessions or work
 * need them; module state in slots. */
#ifndef HEARTH_USER_H
#define HEARTH_USER_H

#include "core/server.h"
#include "hearth/xmpp_error.h"

/* Runs fn(w, u, arg) once u's stored state is loaded (now when it already is), in order with
 * everything else waiting for u. u->state is USER_READY, USER_MISSING for no such account, or
 * USER_FAILED when its state could not be had (storage failed, memory, too much waiting):
 * then fn answers with a temporary error. fn always runs, once. */
void user__acquire(worker_t *w, const char *bare, user_fn fn, void *arg);
void user__hold(user_t *u);
void user__release(worker_t *w, user_t *u);
void user__free(user_t *u);
/* The error for what was sent to a USER_FAILED user: internal-server-error when the database
 * failed (the issue of a stopped PostgreSQL), resource-constraint when the server was out of
 * room (queue full, memory); *text says to try again. */
hearth_stanza_error_t user__failure(const user_t *u, const char **text);
/* Reserves a slot index for a module's per-user state (start-up); -1 when none is left. */
int user__slot_new(void);
/* The contacts whose roster item has subscription from/both (presence goes to them). */
int user__sub_from(const storage_roster_item_t *it);
int user__sub_to(const storage_roster_item_t *it);
storage_roster_item_t *user__roster_item_new(const char *jid);
void user__roster_item_free(storage_roster_item_t *it);
/* Storage write callback that only logs a failure. */
void user__write_done(void *ud, int err);
int64_t user__now_ms(void);
/* 24 hex digits from a pseudo-random function keyed from the kernel, NUL-terminated. */
void user__random_id(char *out, size_t len);
/* A fresh archive key (storage.h, "Archive ids"), in decimal for user__archive_id (len >= 20):
 * the stanza id a message gets, under which both parties archive it. */
int64_t user__archive_key(void);
void user__archive_id(char *out, size_t len);
/* The largest key already stored (start-up, before any worker runs). */
void user__archive_key_floor(int64_t key);

#endif
