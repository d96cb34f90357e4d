/* The presence manager (RFC 6121 §3, §4) on a libhearth client: our own presence (show, status,
 * priority), sent when a session begins and again after every reconnection; subscriptions
 * (subscribe, approve, deny, unsubscribe) and incoming requests for the application to answer;
 * the presence of every contact per resource, in a bounded cache, with the best resource by
 * priority; directed presence.
 *
 * Threads and results as in include/hearth/client.h. */
#ifndef HEARTH_PRESENCE_H
#define HEARTH_PRESENCE_H

#include <stddef.h>

#include "hearth/client.h"

typedef struct hearth_presence hearth_presence_t;

/* The <show/> of an available presence (RFC 6121 §4.7.2.1). */
typedef enum hearth_show {
    HEARTH_SHOW_NONE = 0, /* available, no <show/> ("online") */
    HEARTH_SHOW_CHAT,     /* free for chat */
    HEARTH_SHOW_AWAY,
    HEARTH_SHOW_XA, /* extended away */
    HEARTH_SHOW_DND,
} hearth_show_t;

/* "chat", "away", "xa", "dnd"; NULL for HEARTH_SHOW_NONE (and out of range). */
const char *hearth_show_name(hearth_show_t show);
/* The show named by s ("away", ...); HEARTH_SHOW_NONE for NULL or anything else. */
hearth_show_t hearth_show_parse(const char *s);

/* The presence of one resource (or of ourselves). Pointers are borrowed: valid until the
 * presence of that contact changes (the next changed event for it) or the manager is freed. */
typedef struct hearth_presence_info {
    const char *jid;      /* the full JID it came from (the bare JID when it had no resource) */
    const char *bare;     /* its bare JID (prepared) */
    const char *resource; /* NULL when it came from the bare JID */
    int available;        /* 0: this resource went offline (in the changed event only) */
    hearth_show_t show;
    const char *status; /* the first <status/>, cut to HEARTH_PRESENCE_STATUS_MAX; NULL: none */
    int priority;       /* -128..127 (RFC 6121 §4.7.2.3); 0 when absent or malformed */
} hearth_presence_info_t;

/* How incoming subscription requests are answered. */
typedef enum hearth_subscription_mode {
    /* The subscribe_request event; the application answers with hearth_presence_approve or
     * hearth_presence_deny, now or later (the default). */
    HEARTH_SUBSCRIBE_MANUAL = 0,
    HEARTH_SUBSCRIBE_ACCEPT_ALL, /* approved at once (a bot); the event is still called */
    HEARTH_SUBSCRIBE_REJECT_ALL, /* denied at once; the event is still called */
} hearth_subscription_mode_t;

/* The answers to our subscription stanzas and the contact's own changes (RFC 6121 §3). */
typedef enum hearth_subscription_change {
    HEARTH_SUBSCRIPTION_APPROVED,     /* <presence type='subscribed'/>: we see its presence */
    HEARTH_SUBSCRIPTION_DENIED,       /* 'unsubscribed': refused, or our subscription revoked */
    HEARTH_SUBSCRIPTION_UNSUBSCRIBED, /* 'unsubscribe': the contact stopped seeing ours */
} hearth_subscription_change_t;

/* Every callback may be NULL; each may call any function here except hearth_presence_free. */
typedef struct hearth_presence_events {
    /* A resource's presence changed (available, or gone with available 0). st is the stanza
     * (lent), NULL when the manager forgets presences itself: at a new session (every cached
     * presence is stale) and when the client disconnects for good. */
    void (*changed)(void *ud, hearth_presence_t *p, const hearth_presence_info_t *info,
                    hearth_stanza_t *st);
    /* jid asks to see our presence (<presence type='subscribe'/>), with its status text or
     * NULL. Under HEARTH_SUBSCRIBE_MANUAL the request waits in the list of requests until it is
     * answered (the server delivers it again at the next login if it never is). */
    void (*subscribe_request)(void *ud, hearth_presence_t *p, const char *jid, const char *status);
    /* The other subscription stanzas, from jid (a bare JID). */
    void (*subscription)(void *ud, hearth_presence_t *p, const char *jid,
                         hearth_subscription_change_t change);
    /* A presence error from jid (e.g. <remote-server-not-found/> for a contact on a domain that
     * cannot be reached, or an error answering a directed presence); its cached presences are
     * forgotten (each with a changed event). */
    void (*error)(void *ud, hearth_presence_t *p, const char *jid, hearth_stanza_error_t cond,
                  const char *text);
} hearth_presence_events_t;

/* Bounds of the cache, each with its policy: a presence from a new contact past max_contacts,
 * or from a new resource past max_resources of that contact, is not cached (the changed event
 * still reports it, and the drop is counted in hearth_presence_dropped); a status longer than
 * HEARTH_PRESENCE_STATUS_MAX bytes is cut at a character boundary; requests past max_requests
 * are not listed (the event still reports them). */
#define HEARTH_PRESENCE_MAX_CONTACTS 10000
#define HEARTH_PRESENCE_MAX_RESOURCES 16
#define HEARTH_PRESENCE_MAX_REQUESTS 256
#define HEARTH_PRESENCE_STATUS_MAX 1024

/* Every field's zero value is its default. */
typedef struct hearth_presence_config {
    hearth_subscription_mode_t subscription_mode;
    unsigned max_contacts;  /* 0: HEARTH_PRESENCE_MAX_CONTACTS */
    unsigned max_resources; /* 0: HEARTH_PRESENCE_MAX_RESOURCES */
    unsigned max_requests;  /* 0: HEARTH_PRESENCE_MAX_REQUESTS */
} hearth_presence_config_t;

/* A presence manager for c in its slot HEARTH_SLOT_PRESENCE (cfg and ev may be NULL; copied).
 * Freed with the client. HEARTH_EEXISTS, HEARTH_ENOMEM, HEARTH_EINVAL (a mode out of range). */
int hearth_presence_new(hearth_client_t *c, const hearth_presence_config_t *cfg,
                        const hearth_presence_events_t *ev, void *ud,
                        hearth_presence_t **out) HEARTH_MUST_CHECK;
hearth_presence_t *hearth_presence_get(const hearth_client_t *c);
/* Detaches and frees the manager (NULL is fine). Not from inside its events. */
void hearth_presence_free(hearth_presence_t *p);
hearth_client_t *hearth_presence_client(const hearth_presence_t *p);

/* ---- our own presence ---- */

/* Sets our presence and broadcasts it now when online: <presence> with <show/>, <status/>
 * (status NULL: none) and <priority/> (omitted when 0; -128..127, else HEARTH_EINVAL). Once
 * set, this presence (not the client's plain initial <presence/>) is what every new session
 * begins with, whatever the client's no_initial_presence; a resumed session keeps it without
 * a word. HEARTH_ENOMEM, and the errors of hearth_client_send when online. */
int hearth_presence_set(hearth_presence_t *p, hearth_show_t show, const char *status, int priority);
/* Goes unavailable (<presence type='unavailable'/> with the status, if any) while staying
 * connected: contacts see us offline, messages to the bare JID go offline. Until the next
 * hearth_presence_set, new sessions begin without presence. */
int hearth_presence_set_unavailable(hearth_presence_t *p, const char *status);
/* Our presence as set (jid: our full JID while online, else the bare JID; available 0 after
 * hearth_presence_set_unavailable). Before any call to hearth_presence_set it describes the
 * client's plain initial presence (available, no show, priority 0), or unavailable when the
 * client has no_initial_presence. */
const hearth_presence_info_t *hearth_presence_mine(const hearth_presence_t *p);

/* Directed presence (RFC 6121 §4.6): our current presence (available 1; the same show, status
 * and priority) or <presence type='unavailable'/> (available 0) to one JID, e.g. a contact
 * without subscription. Not remembered: it is not sent again after a reconnection. */
int hearth_presence_send_to(hearth_presence_t *p, const char *to, int available);

/* ---- subscriptions (RFC 6121 §3) ---- */

/* Asks jid to let us see its presence (<presence to type='subscribe'/>, with a <status/>
 * when status is not NULL). The answer comes as the subscription event; the roster item's
 * ask shows it pending. HEARTH_EINVAL (not a JID). */
int hearth_presence_subscribe(hearth_presence_t *p, const char *jid, const char *status);
/* Lets jid see our presence ('subscribed'): the answer to its request, or a pre-approval
 * (RFC 6121 §3.4) when it asked nothing yet. Removes its request from the list. */
int hearth_presence_approve(hearth_presence_t *p, const char *jid);
/* Refuses jid's request, or revokes the subscription it has ('unsubscribed'). Removes its
 * request from the list. */
int hearth_presence_deny(hearth_presence_t *p, const char *jid);
/* Stops seeing jid's presence ('unsubscribe'). */
int hearth_presence_unsubscribe(hearth_presence_t *p, const char *jid);

/* Requests waiting for an answer (HEARTH_SUBSCRIBE_MANUAL), oldest first. */
size_t hearth_presence_request_count(const hearth_presence_t *p);
/* The i-th requester's bare JID (and its status text, NULL when none, in *status when status
 * is not NULL), or NULL. Borrowed until the list changes. */
const char *hearth_presence_request_at(const hearth_presence_t *p, size_t i, const char **status);

/* ---- contacts' presence ---- */

/* The best available resource of a contact (bare JID, any spelling): the highest priority,
 * then the most available show (chat, none, away, xa, dnd), then the most recent; NULL when
 * none is available (offline, or unknown). Ourselves too: our other resources, and this one. */
const hearth_presence_info_t *hearth_presence_best(const hearth_presence_t *p, const char *jid);
/* Available resources of a contact in the cache, and the i-th of them (in arrival order). */
size_t hearth_presence_resource_count(const hearth_presence_t *p, const char *jid);
const hearth_presence_info_t *hearth_presence_resource_at(const hearth_presence_t *p,
                                                          const char *jid, size_t i);
/* Presences not cached at a bound since the manager was made. */
unsigned long hearth_presence_dropped(const hearth_presence_t *p);

#endif
