/* Stream management (XEP-0198, urn:xmpp:sm:3 and :2) for a c2s session: acknowledgements both
 * ways, the queue of stanzas the client has not acknowledged, detached sessions awaiting
 * resumption on the user's home worker, and what happens to unacknowledged stanzas when a
 * session ends (messages go back through delivery: another resource or offline storage). */
#ifndef HEARTH_SM_H
#define HEARTH_SM_H

#include <stdint.h>

#include "hearth/buf.h"
#include "hearth/ns.h"
#include "hearth/xml.h"

/* Stanzas the server keeps for a client that has not acknowledged them; past this the session
 * is cut (and, when resumable, detached: nothing is lost). */
#define SM_QUEUE_MAX 5000
#define SM_QUEUE_BYTES (16u * 1024 * 1024)
/* The server asks for an acknowledgement after this many unrequested stanzas. */
#define SM_REQUEST_EVERY 5
/* The client's <r/> waiting for what it sent before them to settle; past this many the newest
 * waiting one also answers for a later one (the client still gets an <a/> at least as high). */
#define SM_ACK_WAIT_MAX 32

typedef struct conn conn_t;

typedef struct sm_state {
    int enabled;
    int v2;     /* enabled with urn:xmpp:sm:2 */
    int resume; /* resumable */
    char id[24];
    /* client -> server: h counts stanzas handled in order; a message routed to another user
     * is handled only once delivered or committed to offline storage. */
    uint32_t received;
    uint32_t *pending; /* seqs routed and not yet settled, oldest first */
    size_t npending, pcap;
    uint32_t cur_seq; /* the stanza being dispatched */
    int cur_async;    /* it was routed with a settlement to come */
    /* Each <r/> is answered once every stanza received before it is settled, in order:
     * received counts at each waiting <r/>, oldest first. */
    uint32_t ack_wait[SM_ACK_WAIT_MAX];
    size_t nack_wait;
    int ack_behind; /* an <a/> went out while later stanzas were unsettled: one more when the
                     * last of them settles */
    /* server -> client */
    uint32_t out;       /* stanzas sent */
    uint32_t acked;     /* the client's last h */
    hearth_bytes_t **q; /* unacknowledged stanzas: q[qhead .. qhead + qlen), ring */
    size_t qhead, qlen, qcap;
    size_t qbytes;
    uint32_t since_request;
    int detached;         /* set through sm__mark_detached (counted in the worker's budget) */
    uint64_t detached_ms; /* since when (loop time): the oldest ends first past the budget */
    int resending;        /* after a resumption, the queue goes out as output drains */
    size_t resend_i;      /* next queue position to resend */
} sm_state_t;

typedef struct c2s_session c2s_session_t;

/* The element is one of ours (enable, r, a, resume in either namespace). */
int sm__is_sm(const hearth_xml_node_t *el);
/* Handles an SM element on a connection (bound, or authenticated for <resume/>). */
void sm__element(conn_t *c, hearth_xml_node_t *el, hearth_arena_t *arena);
/* Before auth: <resume/> and <enable/> get <failed><unexpected-request/></failed>. */
void sm__refuse(conn_t *c, hearth_xml_node_t *el);
/* Counting of a client stanza around its dispatch. */
void sm__begin_inbound(c2s_session_t *cs);
void sm__end_inbound(c2s_session_t *cs);
/* The stanza being dispatched goes elsewhere: its settlement token (1 when counted). */
int sm__defer_settle(c2s_session_t *cs, char *sm_id, uint32_t *seq);
/* A routed stanza of this session was settled (delivered, stored, bounced or dropped). */
void sm__settle(c2s_session_t *cs, uint32_t seq);
/* Counts and keeps a stanza sent to the client (a copy). Returns 0 to send it now, 1 when it
 * is kept only (detached, resending, or the session ends for a full queue). */
int sm__outbound(c2s_session_t *cs, const char *data, size_t len);
/* After a stanza went out: asks the client for an acknowledgement every few stanzas. */
void sm__after_outbound(c2s_session_t *cs);
/* The connection is lost (EOF, error, output overflow, ping timeout): 1 when its session was
 * detached for resumption (the connection is then closed), 0 when it is not kept. */
int sm__lost(conn_t *c);
/* The session ends for good: its unacknowledged messages are delivered again (another
 * resource, or offline storage). Call once it is unbound. */
void sm__reroute(c2s_session_t *cs);
void sm__free(c2s_session_t *cs);
/* Output drained during a resumption's resend: the next part of the queue. */
void sm__pump(c2s_session_t *cs);
/* Detached sessions are counted in the worker's budget (c2s.resume_budget); past it the
 * oldest end on the next loop turn. */
void sm__mark_detached(c2s_session_t *cs);
void sm__unmark_detached(c2s_session_t *cs);

#endif
