/* The chat manager on a libhearth client: one-to-one messages (RFC 6121 §5) sent and received
 * with their parsed fields, threads, delivery receipts (XEP-0184: requested, answered
 * automatically unless the application declines, reported when they come back), chat states
 * (XEP-0085: sent and received) and message errors. Group chat and invitations to rooms
 * belong to the MUC manager (include/hearth/muc.h); private messages from a room's occupants
 * come here, from the occupant's room JID (room@service/nick).
 *
 * Threads and results as in include/hearth/client.h. */
#ifndef HEARTH_CHAT_H
#define HEARTH_CHAT_H

#include <stddef.h>

#include "hearth/client.h"

typedef struct hearth_chat hearth_chat_t;

/* XEP-0085 chat states. */
typedef enum hearth_chat_state {
    HEARTH_CHAT_STATE_NONE = 0, /* no state element */
    HEARTH_CHAT_STATE_ACTIVE,
    HEARTH_CHAT_STATE_COMPOSING,
    HEARTH_CHAT_STATE_PAUSED,
    HEARTH_CHAT_STATE_INACTIVE,
    HEARTH_CHAT_STATE_GONE,
} hearth_chat_state_t;

/* "active", "composing", "paused", "inactive", "gone"; NULL for NONE and out of range. */
const char *hearth_chat_state_name(hearth_chat_state_t s);

/* A received message, parsed. Pointers are lent for the duration of the event. */
typedef struct hearth_message {
    const char *from; /* as the server stamped it (a full JID, usually) */
    const char *to;
    const char *id;   /* NULL when it had none */
    const char *type; /* "chat", "normal" (also when absent), "headline" */
    const char *body; /* NULL when none */
    const char *subject;
    const char *thread;
    const char *parent_thread; /* the thread's parent attribute, NULL when none */
    hearth_chat_state_t state; /* XEP-0085 element carried, NONE when none */
    int receipt_requested;     /* XEP-0184 <request/> */
    const char *delay;         /* XEP-0203 <delay stamp/> (sent while we were offline) */
    hearth_stanza_t *stanza;   /* the whole stanza: other payloads */
} hearth_message_t;

/* What the message event returns: whether the receipt the sender asked for goes back. */
#define HEARTH_CHAT_RECEIPT 0    /* answer it (when the receipt policy allows) */
#define HEARTH_CHAT_NO_RECEIPT 1 /* do not (e.g. the message was not shown to anyone) */

/* Every callback may be NULL; each may call any function here except hearth_chat_free. */
typedef struct hearth_chat_events {
    /* A message of type chat, normal or headline with a body or a subject (not an invitation
     * to a room). Returns
     * HEARTH_CHAT_RECEIPT or HEARTH_CHAT_NO_RECEIPT (when NULL: HEARTH_CHAT_RECEIPT). */
    int (*message)(void *ud, hearth_chat_t *ch, const hearth_message_t *m);
    /* A chat state from from: alone (a standalone notification) or with a message (after
     * the message event). */
    void (*state)(void *ud, hearth_chat_t *ch, const char *from, hearth_chat_state_t state);
    /* from received our message id (XEP-0184 <received id/>). */
    void (*receipt)(void *ud, hearth_chat_t *ch, const char *from, const char *id);
    /* Our message id (NULL when it had none) to from came back as an error (RFC 6120 §8.3:
     * <service-unavailable/> from an account that does not exist, <remote-server-not-found/>,
     * <forbidden/> when blocked, ...). */
    void (*error)(void *ud, hearth_chat_t *ch, const char *from, const char *id,
                  hearth_stanza_error_t cond, const char *text);
} hearth_chat_events_t;

/* To whom requested receipts are answered (XEP-0184 §8: a receipt tells the sender that we
 * are online, so by default only those allowed to see our presence get one). */
typedef enum hearth_receipt_policy {
    /* Senders whose roster item has subscription from or both (the roster manager's cache,
     * include/hearth/roster.h); everyone when the client has no roster manager. The default. */
    HEARTH_RECEIPTS_CONTACTS = 0,
    HEARTH_RECEIPTS_ALL,  /* every sender */
    HEARTH_RECEIPTS_NONE, /* nobody: the application answers with hearth_chat_send_receipt */
} hearth_receipt_policy_t;

typedef struct hearth_chat_config {
    hearth_receipt_policy_t receipts;
} hearth_chat_config_t;

/* A chat manager for c in its slot HEARTH_SLOT_CHAT (cfg and ev may be NULL; copied). Freed
 * with the client. HEARTH_EEXISTS, HEARTH_ENOMEM, HEARTH_EINVAL. */
int hearth_chat_new(hearth_client_t *c, const hearth_chat_config_t *cfg,
                    const hearth_chat_events_t *ev, void *ud,
                    hearth_chat_t **out) HEARTH_MUST_CHECK;
hearth_chat_t *hearth_chat_get(const hearth_client_t *c);
/* Detaches and frees the manager (NULL is fine). Not from inside its events. */
void hearth_chat_free(hearth_chat_t *ch);
hearth_client_t *hearth_chat_client(const hearth_chat_t *ch);

/* Options of an outgoing message; all zero: a chat message with a fresh id. */
typedef struct hearth_chat_options {
    const char *type;          /* NULL: "chat"; or "normal", "headline" */
    const char *id;            /* NULL: a fresh one */
    const char *thread;        /* NULL: none (hearth_chat_new_thread makes one) */
    const char *subject;       /* NULL: none */
    int request_receipt;       /* 1: XEP-0184 <request/>; the receipt event reports the answer */
    hearth_chat_state_t state; /* XEP-0085 state carried (ACTIVE with a message, usually) */
} hearth_chat_options_t;

/* Sends <message to type id><body/><subject/><thread/>, the state, the receipt request.
 * body may be NULL (a message of subject or state only). The message's id is written to id_out
 * (id_size bytes, at least 24) when it is not NULL. Errors as hearth_client_send, HEARTH_EINVAL
 * (to is not a JID, a type other than chat, normal and headline). */
int hearth_chat_send(hearth_chat_t *ch, const char *to, const char *body,
                     const hearth_chat_options_t *opts, char *id_out, size_t id_size);
/* A standalone chat state notification: <message to type='chat'><composing/></message>. */
int hearth_chat_send_state(hearth_chat_t *ch, const char *to, hearth_chat_state_t state);
/* The receipt for message id from to (<received id/>), for an application that answers them
 * itself (HEARTH_RECEIPTS_NONE, or a message it declined and then showed). */
int hearth_chat_send_receipt(hearth_chat_t *ch, const char *to, const char *id);
/* A fresh thread id (32 hex digits) written into buf (at least 33 bytes); returns buf. */
char *hearth_chat_new_thread(hearth_chat_t *ch, char *buf, size_t size);

#endif
