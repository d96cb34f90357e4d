/* A session: a bound full JID on its user's home worker, whatever carries it (a client
 * connection on this worker today; a connection elsewhere, a web transport, another node
 * later). Modules address sessions only through this header: they never see the connection,
 * the transport or the stream protocol behind one. A session lives in its user's list from
 * bind to end; what waits for it (a deferred IQ reply) holds a reference. */
#ifndef HEARTH_SESSION_H
#define HEARTH_SESSION_H

#include <stdint.h>

#include "hearth/buf.h"
#include "hearth/jid.h"
#include "hearth/xml.h"
#include "hearth/xmpp_error.h"
#include "core/server.h"

typedef struct session session_t;

/* What an administrator sees of a session beyond its JID (the carrier fills it in). */
typedef struct session_info {
    char ip[64];      /* the client's address, "" when detached */
    char tls[16];     /* "TLSv1.3", ... ; "" when not over TLS (or detached) */
    char mech[24];    /* the SASL mechanism it logged in with, "" unknown */
    int sm;           /* stream management (XEP-0198) enabled */
    int resumable;    /* ...and resumable */
    uint64_t idle_ms; /* since the client last sent anything; 0 when unknown */
} session_info_t;

typedef enum {
    SESSION_BOUND,    /* a connection carries it */
    SESSION_DETACHED, /* its connection is gone; it waits for a resumption (XEP-0198) */
    SESSION_ENDED,    /* out of its user's list; freed when nothing holds it */
} session_state_t;

/* What the carrier of a session does for it (c2s for client connections). */
typedef struct session_ops {
    /* A stanza for the client: counted, queued or written by the carrier. Copies data. */
    void (*send)(session_t *s, const char *data, size_t len);
    /* Ends the session: a stream error when cond is not HEARTH_STREAM_ERR_NONE, else a clean
     * close; the carrier sets ending now and unbinds it (session__unbind) on the next loop
     * turn. Never unbinds synchronously: the caller may be walking the user's sessions. */
    void (*end)(session_t *s, hearth_stream_error_t cond, const char *text);
    /* The stanza the client sent that is being handled now goes to another worker or to
     * storage: when the carrier counts stanzas (stream management), it gives the token the
     * destination settles with (sm_id, at most 24 bytes with the NUL, and seq) and returns 1,
     * and counts the stanza only once settled; 0 when it does not count. */
    int (*defer_settle)(session_t *s, char *sm_id, uint32_t *seq);
    /* That stanza was settled by its destination: delivered, stored, bounced or dropped. */
    void (*settled)(session_t *s, const char *sm_id, uint32_t seq);
    /* Bytes written for the client and not yet taken by it (its connection's output queue);
     * SESSION_OUTPUT_MAX while detached. Paced senders (offline delivery) send more only
     * while it is low, and again on HOOK_SESSION_DRAINED, which runs only while s->paced is
     * non-zero (a sender counts itself there while it waits). */
    size_t (*output_pending)(session_t *s);
    /* The last reference went: the carrier frees s and what it allocated around it. */
    void (*free)(session_t *s);
    /* Optional: fills in what the admin console shows of it (zeroed by the caller). */
    void (*describe)(session_t *s, session_info_t *out);
} session_ops_t;

/* Per-module state on a session: an index from session__slot_new at start-up. */
#define SESSION_SLOTS 8

/* The output bound of any carrier: a client this far behind is cut (or, with stream
 * management, detached). What the server generates for one request stays well under it. */
#define SESSION_OUTPUT_MAX (4u * 1024 * 1024)

struct session {
    const session_ops_t *ops;
    worker_t *w;
    uint64_t id;      /* for logs: the id of the connection that bound it */
    hearth_jid_t jid; /* the bound full JID */
    user_t *user;     /* its account, held while the session is in the user's list */
    session_t *user_next;
    session_state_t state;
    int ending; /* its end is decided (done on the next loop turn): deliver nothing new to it */
    int paced;  /* paced senders waiting for HOOK_SESSION_DRAINED (the hook runs only then) */
    int refs;
    const char *transport; /* what carries it now ("tcp", "websocket", "bosh"), for metrics */
    /* Presence (RFC 6121 §4), on the session because every module reads it. */
    int available;            /* sent available presence */
    int priority;             /* of its last available presence */
    hearth_bytes_t *presence; /* that presence, from its full JID, no 'to' */
    strmap_t directed;        /* JIDs given directed available presence (buckets NULL: none) */
    void *slot[SESSION_SLOTS];
};

/* Reserves a slot index for a module (start-up, main thread); -1 when none is left. */
int session__slot_new(void);

/* The carrier binds s (zeroed memory it owns, often the first member of a larger object of
 * its own) to jid (taken over; cleared in the caller) and adds it to u's list, holding u.
 * refs is 1: the carrier's. The last unref calls ops->free, which frees that memory. */
void session__init(session_t *s, worker_t *w, user_t *u, hearth_jid_t *jid,
                   const session_ops_t *ops, uint64_t id);
/* The carrier's session ends: out of the user's list, the session-ending hook runs (presence
 * unavailable, module state released). Idempotent. */
void session__unbind(session_t *s);
void session__ref(session_t *s);
void session__unref(session_t *s);

/* The session of u's resource, or NULL (one whose end is decided is not found). */
session_t *session__find(worker_t *w, const char *bare, const char *resource);

/* Sends to the session: counted by stream management, held while its client is inactive
 * (XEP-0352), queued while it is detached. Nothing is sent once it has ended. Copies. */
void session__send(session_t *s, const char *data, size_t len);
/* Serialises n (default namespace jabber:client) and sends it. */
void session__send_node(session_t *s, const hearth_xml_node_t *n);
/* Sends b, writing ` to='to'` into its start tag when to is given (b must then have no 'to':
 * one serialisation serves every recipient, as our serialiser writes the start tag). */
void session__send_addressed(session_t *s, const hearth_bytes_t *b, const char *to);
/* Ends it (a stream error when cond is not HEARTH_STREAM_ERR_NONE): decided now, done on the
 * next loop turn, so that it is safe inside a walk of the account's sessions. */
void session__end(session_t *s, hearth_stream_error_t cond, const char *text);

const char *session__log_jid(const session_t *s);
/* What the carrier tells of s (session_info_t), on s's worker. */
void session__describe(session_t *s, session_info_t *out);
size_t session__output_pending(session_t *s);

#endif
