/* The roster manager (RFC 6121 §2, XEP-0237 versioning) on a libhearth client: the contact list
 * fetched at login, kept in a bounded cache that survives reconnections of the same client
 * (with its version, so that the next fetch asks only for what changed), roster pushes applied
 * and answered, items added, renamed, regrouped and removed, and a callback for every change.
 *
 * Threads and results as in include/hearth/client.h: everything here runs on the client's loop
 * thread, returns 0 or a negative HEARTH_E* code, and copies the strings it is given. */
#ifndef HEARTH_ROSTER_H
#define HEARTH_ROSTER_H

#include <stddef.h>

#include "hearth/client.h"

typedef struct hearth_roster hearth_roster_t;

/* The subscription attribute of an item (RFC 6121 §2.1.2.5). */
typedef enum hearth_subscription {
    HEARTH_SUB_NONE = 0, /* neither sees the other's presence */
    HEARTH_SUB_TO,       /* we see the contact's presence */
    HEARTH_SUB_FROM,     /* the contact sees ours */
    HEARTH_SUB_BOTH,
} hearth_subscription_t;

/* "none", "to", "from", "both" (NULL for a value out of range). */
const char *hearth_subscription_name(hearth_subscription_t s);

/* One contact as the cache holds it. Every pointer is borrowed: valid until the roster changes
 * (the next roster event) or the manager is freed; copy what you keep. */
typedef struct hearth_roster_item {
    const char *jid;  /* the contact's prepared bare JID: the key */
    const char *name; /* the name the user gave it; NULL when none */
    hearth_subscription_t subscription;
    int ask;                   /* 1: our subscription request is pending (ask='subscribe') */
    int approved;              /* 1: we pre-approved the contact's request (RFC 6121 §3.4) */
    const char *const *groups; /* the groups it is in, in the server's order */
    size_t ngroups;
} hearth_roster_item_t;

/* Every callback may be NULL; each runs on the loop, and may call any function here except
 * hearth_roster_free (free the client instead, which frees the manager after the callback). */
typedef struct hearth_roster_events {
    /* A fetch ended: result 0 and the cache is complete and current (it was replaced by the
     * server's roster, or the server said the cached version is current, XEP-0237 §2.3), or the
     * fetch failed (HEARTH_ESTANZA, HEARTH_ETIMEOUT, HEARTH_ECLOSED) and the cache is as it was.
     * The added, changed and removed events of what the fetch changed come before it. */
    void (*loaded)(void *ud, hearth_roster_t *r, int result);
    /* An item came into the cache (from a fetch or a push). */
    void (*added)(void *ud, hearth_roster_t *r, const hearth_roster_item_t *item);
    /* An item changed (its name, groups, subscription, ask or approval); old is how it was. */
    void (*changed)(void *ud, hearth_roster_t *r, const hearth_roster_item_t *item,
                    const hearth_roster_item_t *old);
    /* An item left the cache (removed on the server, or absent from a fetched roster). */
    void (*removed)(void *ud, hearth_roster_t *r, const hearth_roster_item_t *item);
} hearth_roster_events_t;

/* Bounds of the cache. An item past either bound is not kept (its event is not called); the
 * roster is then marked truncated, which also stops versioned fetches (the next fetch asks for
 * the whole roster). Pushes are answered all the same. */
#define HEARTH_ROSTER_MAX_ITEMS 5000
#define HEARTH_ROSTER_MAX_BYTES (4 * 1024 * 1024)

/* Every field's zero value is its default. */
typedef struct hearth_roster_config {
    /* 1: no fetch when a session begins; hearth_roster_fetch does it. */
    int no_fetch;
    /* 1: never ask for a versioned roster (XEP-0237), even when the server offers it. */
    int no_versioning;
    /* Items and bytes (the items' strings and bookkeeping) the cache holds at most; 0: the
     * defaults above. */
    unsigned max_items;
    size_t max_bytes;
} hearth_roster_config_t;

/* A roster manager for c, stored in its slot HEARTH_SLOT_ROSTER; cfg and ev may be NULL (the
 * defaults; no events) and are copied; ud is given to every event. The roster is fetched when
 * each new session begins (not after a resumption: the session and its pushes carried on), and
 * at once when c is online already. The manager is freed with the client. HEARTH_EEXISTS (c
 * has one), HEARTH_ENOMEM. */
int hearth_roster_new(hearth_client_t *c, const hearth_roster_config_t *cfg,
                      const hearth_roster_events_t *ev, void *ud,
                      hearth_roster_t **out) HEARTH_MUST_CHECK;
/* The client's roster manager, or NULL. */
hearth_roster_t *hearth_roster_get(const hearth_client_t *c);
/* Detaches and frees the manager and its cache (NULL is fine). Not from inside its events. */
void hearth_roster_free(hearth_roster_t *r);
hearth_client_t *hearth_roster_client(const hearth_roster_t *r);

/* Fetches the roster now (the loaded event tells the outcome), versioned when the server
 * offers XEP-0237 and the cache is whole. A fetch under way is not repeated (0). Errors as
 * hearth_client_iq. */
int hearth_roster_fetch(hearth_roster_t *r);

/* Adds a contact or replaces its name and groups (RFC 6121 §2.3, §2.4): an IQ set of one item;
 * name NULL: none; groups: ngroups strings (NULL when 0). The cache changes when the server's
 * push arrives, not before. cb (may be NULL) gets the server's answer (HEARTH_ESTANZA with
 * e.g. <not-acceptable/> for a name too long, <resource-constraint/> at the server's roster
 * limit). HEARTH_EINVAL (jid is not a JID), and the errors of hearth_client_iq. */
int hearth_roster_set(hearth_roster_t *r, const char *jid, const char *name,
                      const char *const *groups, size_t ngroups, hearth_iq_fn cb, void *ud);
/* Removes a contact (RFC 6121 §2.5): the server also cancels the subscriptions both ways. As
 * hearth_roster_set. */
int hearth_roster_remove(hearth_roster_t *r, const char *jid, hearth_iq_fn cb, void *ud);

/* ---- the cache (read it at any time, e.g. to draw a contact list) ---- */

/* Items in the cache. */
size_t hearth_roster_count(const hearth_roster_t *r);
/* The i-th item in order of JID (i < hearth_roster_count), or NULL. */
const hearth_roster_item_t *hearth_roster_item_at(const hearth_roster_t *r, size_t i);
/* The item of this JID (any spelling: it is prepared, its resource ignored), or NULL. */
const hearth_roster_item_t *hearth_roster_find(const hearth_roster_t *r, const char *jid);
/* 1 once a fetch completed (the cache is whole) and stays so across reconnections; 0 before. */
int hearth_roster_loaded(const hearth_roster_t *r);
/* 1 when an item was left out at a bound since the last complete fetch. */
int hearth_roster_truncated(const hearth_roster_t *r);
/* The roster version the cache is at (XEP-0237), NULL when the server gave none. Borrowed like
 * an item. */
const char *hearth_roster_version(const hearth_roster_t *r);

#endif
