/* What PEP (pep.h) offers the modules that convert other storage into PEP nodes and back:
 * avatars (avatar.c, XEP-0398 with XEP-0153) and bookmarks (bookmarks.c, XEP-0402 §5.3 with
 * XEP-0048 in private XML and in PEP). They check what clients publish to the nodes they convert,
 * hear of changes made by clients, and make their own changes as requests of the account itself,
 * in order with the account's other requests. */
#ifndef HEARTH_PEP_COMPAT_H
#define HEARTH_PEP_COMPAT_H

#include "modules/im.h"
#include "modules/pubsub.h"

/* How a request the server made for an account ended: e NULL for success, with inner the
 * result's serialised child (NULL: an empty result). Runs once, on the account's home worker,
 * possibly while PEP runs its queue: start nothing on the account's PEP from inside it (post
 * the next step to a later turn, pep__later). */
typedef void (*pep_internal_fn)(void *ud, const pubsub_err_t *e, const char *inner);

/* iq: a serialised <iq type='get|set'> with one pubsub child, run on u's PEP as the owner's own
 * request (u on its home worker w, loaded). What it changes is not converted back (no loop).
 * done always runs, once (now, when the request cannot even be queued). */
void pep__submit_internal(worker_t *w, user_t *u, const char *iq, size_t len, pep_internal_fn done,
                          void *ud);

typedef enum { PEP_PUBLISHED, PEP_RETRACTED, PEP_EMPTIED } pep_change_t;
/* A client changed node of u: an item published (id, payload: serialised element), retracted
 * (id), or every item gone (purge, delete). Runs inside PEP's queue: post the work (pep__later).*/
typedef void (*pep_change_fn)(worker_t *w, user_t *u, const char *node, pep_change_t what,
                              const char *id, const char *payload);
#define PEP_LISTENERS_MAX 4
void pep__listen(pep_change_fn fn); /* at start-up */

/* fn checks a client's publish to node of u before anything is stored or notified: payload is
 * the item's one element, size its serialised bytes. 0 lets it through; -1, with *e set, refuses
 * the publish with that error. A conversion's own publishes are not checked. */
typedef int (*pep_check_fn)(worker_t *w, const user_t *u, const char *node,
                            const hearth_xml_node_t *payload, size_t size, pubsub_err_t *e);
void pep__listen_check(pep_check_fn fn); /* at start-up; at most PEP_LISTENERS_MAX */

/* fn hears that u's PEP was loaded from storage (inside PEP: post the work, pep__later); for
 * what is done once an account uses PEP, not at every login. */
typedef void (*pep_loaded_fn)(worker_t *w, user_t *u);
void pep__listen_loaded(pep_loaded_fn fn); /* at start-up */
/* Whether u's PEP has an item in node: 1 or 0; -1 while its PEP is not loaded. */
int pep__has_items(const user_t *u, const char *node);

/* fn(w, arg) on w at its next loop turn (drop(arg) when that cannot be). */
void pep__later(worker_t *w, void (*fn)(worker_t *, void *), void (*drop)(void *), void *arg);

#endif
