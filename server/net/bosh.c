/* BOSH (XEP-0124, XEP-0206) at /http-bind: a session of held HTTP requests is a connection
 * without a socket, whose transport carries whole elements (as RFC 7395 framing does: the
 * stream above it is the same as over a WebSocket). A request is parsed on the worker whose
 * HTTP connection read it and handed, with its answer deferred, to the worker that holds its
 * session (a table of sids, under a short lock, says which; the session moves to its user's
 * home worker after SASL like any connection); the answer goes back to the HTTP connection's
 * worker. Requests are processed in 'rid' order within the window, the last answers are kept
 * for retransmission, stanzas wait in a bounded queue for a request to carry them, and a
 * session ends by 'terminate' or after 'inactivity' seconds without a request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/ns.h"

#include "core/log.h"
#include "net/http.h"

/* Limits, each with its policy when hit. */
#define BOSH_WAIT_LIMIT 300             /* the largest bosh.max_wait */
#define BOSH_HOLD_MAX 1                 /* requests held at once; a larger 'hold' is lowered */
#define BOSH_POLLING 2                  /* the shortest interval for requests that carry nothing */
#define BOSH_QUEUE_BYTES (1024u * 1024) /* elements waiting for a request: past it, lost */
#define BOSH_CHILDREN_MAX 1000          /* elements in one request: more is a bad request */
#define BOSH_KEEP 2                     /* answers kept for retransmission (the window: hold + 1) */
#define BOSH_PARKED_MAX 8 /* requests waiting for a session in transit: more refused */

/* Settings (start-up): seconds a request may be held ('wait' is lowered to it), seconds
 * without a request held before the session ends. */
static unsigned max_wait = 60, inactivity = 60;

/* ---- the table of sessions (sid -> worker, and whether the session is moving there),
 * shared by every worker ---- */

#define IN_TRANSIT (1u << 20)

static uv_mutex_t table_lock;
static strmap_t table;

static int table_put(const char *sid, unsigned worker, int transit)
{
    uv_mutex_lock(&table_lock);
    int rc =
        strmap_put(&table, sid, (void *)(uintptr_t)((worker + 1) | (transit ? IN_TRANSIT : 0)));
    uv_mutex_unlock(&table_lock);
    return rc;
}

/* The worker holding sid (-1: none), and whether the session is on its way there. */
static int table_get(const char *sid, int *transit)
{
    uv_mutex_lock(&table_lock);
    uintptr_t v = (uintptr_t)strmap_get(&table, sid);
    uv_mutex_unlock(&table_lock);
    if (transit)
        *transit = (v & IN_TRANSIT) != 0;
    return (int)(v & (IN_TRANSIT - 1)) - 1;
}

static void table_remove(const char *sid)
{
    uv_mutex_lock(&table_lock);
    strmap_remove(&table, sid);
    uv_mutex_unlock(&table_lock);
}

/* ---- requests as they travel between workers ---- */

typedef struct bosh_req {
    worker_t *hw;      /* the HTTP connection's worker */
    http_deferred_t d; /* its answer */
    char sid[40];      /* "" to create a session */
    uint64_t rid;
    int terminate;       /* type='terminate' */
    int restart;         /* xmpp:restart='true' */
    int secure;          /* came over https or from a trusted proxy */
    int bad_to;          /* creation for another domain */
    unsigned wait, hold; /* at creation */
    char ip[64];
    char **children; /* the elements it carries, each serialised with its namespace */
    size_t nchildren;
    int hops;              /* forwarded after a move: bounded */
    struct bosh_req *next; /* parked */
} bosh_req_t;

static void req_free(bosh_req_t *r)
{
    for (size_t i = 0; i < r->nchildren; i++)
        free(r->children[i]);
    free(r->children);
    free(r);
}

/* An answer on its way back to the HTTP connection's worker. */
typedef struct bosh_answer {
    http_deferred_t d;
    char *body;
    size_t len;
} bosh_answer_t;

static void answer_here(worker_t *w, void *arg)
{
    (void)w;
    bosh_answer_t *a = arg;
    if (a->body)
        http_respond_later(&a->d, 200, "text/xml; charset=utf-8", a->body, a->len);
    else
        http_respond_later(&a->d, 503, "text/plain; charset=utf-8", "busy\n", 5);
    free(a->body);
    free(a);
}

static void answer_dropped(void *arg)
{
    bosh_answer_t *a = arg;
    free(a->body);
    free(a); /* the worker is gone, and its connections with it */
}

/* Sends body (taken; NULL: out of memory) as the answer of r, on its HTTP connection's worker,
 * and frees r. */
static void send_answer(bosh_req_t *r, char *body, size_t len)
{
    bosh_answer_t *a = calloc(1, sizeof(*a));
    if (!a) {
        free(body); /* the HTTP connection keeps its reference: it ends at its idle timeout */
        req_free(r);
        return;
    }
    a->d = r->d;
    a->body = body;
    a->len = len;
    worker__call(r->hw, answer_here, answer_dropped, a);
    req_free(r);
}

static void refuse(bosh_req_t *r, const char *condition)
{
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "<body xmlns='" HEARTH_NS_HTTPBIND "' type='terminate' condition='%s'/>",
                     condition);
    send_answer(r, strndup(body, (size_t)n), (size_t)n);
}

/* ---- a session ---- */

typedef struct held {
    bosh_req_t *req;
    uint64_t deadline_ms;
} held_t;

typedef struct bosh {
    connection_t *c; /* the virtual connection the stream above uses */
    char sid[40];
    char authid[64]; /* the stream id of the current header */
    unsigned wait, hold;
    uint64_t rid; /* the last request processed */
    held_t held[BOSH_HOLD_MAX + 1];
    size_t nheld;
    bosh_req_t *ahead[BOSH_HOLD_MAX + 1]; /* requests that came before their turn */
    bosh_req_t *parked;                   /* came while the session was moving */
    size_t nparked;
    int settling;           /* arrived on this worker; the parked requests go first */
    hearth_buf_t out;       /* elements waiting for a request */
    int terminated;         /* the stream closed: the next answer says so */
    const char *condition;  /* why, when it is an error */
    uint64_t idle_since_ms; /* no request held since */
    struct {
        uint64_t rid;
        char *body;
        size_t len;
    } kept[BOSH_KEEP];
    int created; /* the creation answer went out */
} bosh_t;

static bosh_t *bosh_of(connection_t *c)
{
    return c->tctx;
}

static uint64_t now_ms(worker_t *w)
{
    return uv_now(&w->loop);
}

/* Sessions of one worker (a core slot): sid -> bosh_t, and requests that came for sessions on
 * their way here. */
typedef struct bosh_worker {
    strmap_t sessions;
    strmap_t arriving; /* sid -> bosh_req_t list */
    uv_timer_t tick;
} bosh_worker_t;

static int slot = -1;

static bosh_worker_t *bw_of(worker_t *w)
{
    return w->slot[slot];
}

static void keep_answer(bosh_t *b, uint64_t rid, const char *body, size_t len)
{
    size_t i = rid % BOSH_KEEP;
    free(b->kept[i].body);
    b->kept[i].rid = rid;
    b->kept[i].len = len;
    if ((b->kept[i].body = malloc(len + 1)))
        memcpy(b->kept[i].body, body, len);
}

/* The <body/> of an answer: what waits in the queue, and for the first answer the session's
 * attributes (XEP-0124 §7.1, XEP-0206 §5). */
static char *make_body(bosh_t *b, int creation, size_t *len)
{
    hearth_buf_t out = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&out, "<body xmlns='" HEARTH_NS_HTTPBIND "'");
    if (creation)
        rc = rc
                 ?: hearth_buf_printf(&out,
                                      " sid='%s' wait='%u' hold='%u' requests='%u' inactivity='%u'"
                                      " polling='%u' ver='1.11' from='%s' authid='%s'"
                                      " xmlns:xmpp='" HEARTH_NS_XBOSH "' xmpp:version='1.0'"
                                      " xmpp:restartlogic='true'"
                                      " xmlns:stream='" HEARTH_NS_STREAMS "'",
                                      b->sid, b->wait, b->hold, b->hold + 1, inactivity,
                                      BOSH_POLLING, b->c->w->set.domain, b->authid);
    if (b->terminated) {
        rc = rc ?: hearth_buf_append_str(&out, " type='terminate'");
        if (b->condition)
            rc = rc ?: hearth_buf_printf(&out, " condition='%s'", b->condition);
    }
    if (b->out.len) {
        rc = rc ?: hearth_buf_append_str(&out, ">");
        rc = rc ?: hearth_buf_append(&out, b->out.data, b->out.len);
        rc = rc ?: hearth_buf_append_str(&out, "</body>");
    } else {
        rc = rc ?: hearth_buf_append_str(&out, "/>");
    }
    if (rc) {
        hearth_buf_free(&out);
        return NULL;
    }
    hearth_buf_reset(&b->out);
    *len = out.len;
    return out.data;
}

/* Answers the oldest held request with what waits (and the session's end, once ended). */
static void answer_oldest(bosh_t *b, int creation)
{
    if (!b->nheld)
        return;
    bosh_req_t *r = b->held[0].req;
    memmove(b->held, b->held + 1, (b->nheld - 1) * sizeof(*b->held));
    if (--b->nheld == 0)
        b->idle_since_ms = now_ms(b->c->w);
    size_t len = 0;
    char *body = make_body(b, creation, &len);
    if (body)
        keep_answer(b, r->rid, body, len);
    send_answer(r, body, len);
}

/* What waits goes out with the oldest held request; an ended session answers them all. */
static void pump(bosh_t *b)
{
    if (!b->created)
        return;
    while (b->nheld && (b->out.len || b->terminated))
        answer_oldest(b, 0);
}

/* The session is over: every request it holds or keeps is answered so. */
static void session_end(bosh_t *b, const char *condition)
{
    if (!b->terminated) {
        b->terminated = 1;
        b->condition = condition;
    }
    while (b->nheld)
        answer_oldest(b, 0);
    for (size_t i = 0; i <= BOSH_HOLD_MAX; i++) {
        if (b->ahead[i])
            refuse(b->ahead[i], "item-not-found");
        b->ahead[i] = NULL;
    }
    while (b->parked) {
        bosh_req_t *r = b->parked;
        b->parked = r->next;
        refuse(r, "item-not-found");
    }
    b->nparked = 0;
}

/* ---- the transport ---- */

static int bosh_write(connection_t *c, const char *data, size_t len)
{
    bosh_t *b = bosh_of(c);
    if (!b || b->terminated)
        return HEARTH_ECLOSED;
    /* The stream's own framing: its header carries the stream id (authid), its close ends the
     * BOSH session; neither goes to the client as such (XEP-0206 §5). */
    if (len > 5 && !memcmp(data, "<open", 5)) {
        const char *id = memmem(data, len, " id='", 5);
        if (id) {
            id += 5;
            size_t n = strcspn(id, "'");
            if (n < sizeof(b->authid)) {
                memcpy(b->authid, id, n);
                b->authid[n] = '\0';
            }
        }
        return 0;
    }
    if (len > 13 && !memcmp(data, "<stream:error", 13))
        b->condition = "remote-stream-error"; /* XEP-0206 §7: the error goes in the last body */
    if (len > 6 && !memcmp(data, "<close", 6)) {
        b->terminated = 1;
        pump(b);
        return 0;
    }
    if (b->out.len + len > BOSH_QUEUE_BYTES) {
        hlog_conn(LOG_WARN, c->id, NULL, "BOSH %s: over %u bytes wait for a request: lost", b->sid,
                  BOSH_QUEUE_BYTES);
        return HEARTH_ELIMIT;
    }
    if (hearth_buf_append(&b->out, data, len))
        return HEARTH_ENOMEM;
    pump(b);
    return 0;
}

static void bosh_closing(connection_t *c)
{
    bosh_t *b = bosh_of(c);
    if (b)
        session_end(b, b->c->fail_pending ? "remote-connection-failed" : NULL);
}

static void bosh_free(connection_t *c)
{
    bosh_t *b = bosh_of(c);
    if (!b)
        return;
    session_end(b, NULL);
    int transit = 0;
    if (table_get(b->sid, &transit) == (int)c->w->index) {
        table_remove(b->sid);
        bosh_worker_t *bw = bw_of(c->w);
        if (bw && !transit && strmap_get(&bw->sessions, b->sid) == b)
            strmap_remove(&bw->sessions, b->sid);
    }
    hearth_buf_free(&b->out);
    for (size_t i = 0; i < BOSH_KEEP; i++)
        free(b->kept[i].body);
    free(b);
    c->tctx = NULL;
}

/* The session leaves this worker (to its user's home): requests for it go to the new worker,
 * which keeps them until the session arrives. */
static void bosh_leaving(connection_t *c)
{
    bosh_t *b = bosh_of(c);
    strmap_remove(&bw_of(c->w)->sessions, b->sid);
    table_put(b->sid, c->move_target->index, 1);
}

static void take(bosh_t *b, bosh_req_t *r);

/* On the new worker, once the stream above has settled there: the requests that waited for the
 * session are taken in the order they came. */
static void take_parked(worker_t *w, void *arg)
{
    (void)w;
    connection_t *c = arg;
    bosh_t *b = bosh_of(c);
    if (b) {
        b->settling = 0;
        bosh_req_t *r;
        while ((r = b->parked)) {
            b->parked = r->next;
            b->nparked--;
            if (c->state == CONN_OPEN)
                take(b, r);
            else
                refuse(r, "item-not-found");
        }
        b->nparked = 0;
    }
    connection_unref(c);
}

static void parked_dropped(void *arg)
{
    (void)arg; /* the worker exits: its connections are closed with it */
}

/* On the new worker: the session is here. What was parked on the old worker and what came
 * here meanwhile are taken on the next loop turn (after the stream above has heard of the
 * move), with whatever comes until then behind them. */
static void bosh_moved(connection_t *c)
{
    bosh_t *b = bosh_of(c);
    bosh_worker_t *bw = bw_of(c->w);
    if (strmap_put(&bw->sessions, b->sid, b) || table_put(b->sid, c->w->index, 0)) {
        connection__lose(c, HEARTH_ENOMEM);
        return;
    }
    bosh_req_t **tail = &b->parked;
    while (*tail)
        tail = &(*tail)->next;
    *tail = strmap_remove(&bw->arriving, b->sid);
    for (bosh_req_t *r = *tail; r; r = r->next)
        b->nparked++;
    if (!b->parked)
        return;
    b->settling = 1;
    connection_ref(c);
    if (worker__call(c->w, take_parked, parked_dropped, c)) {
        connection_unref(c);
        connection__lose(c, HEARTH_ENOMEM);
    }
}

static void bosh_shutdown(connection_t *c)
{
    (void)c; /* the stream above ends it, and the session's end answers what it holds */
}

const transport_t transport_bosh = {
    .name = "bosh",
    .messages = 1,
    .write = bosh_write,
    .closing = bosh_closing,
    .free = bosh_free,
    .can_move = 1,
    .leaving = bosh_leaving,
    .moved = bosh_moved,
    .shutdown = bosh_shutdown,
};

/* ---- processing a request on its session's worker ---- */

static void deliver(bosh_t *b, const char *data, size_t len)
{
    connection__deliver(b->c, data, len);
}

static void open_stream(bosh_t *b)
{
    char open[256];
    int n =
        snprintf(open, sizeof(open), "<open xmlns='" HEARTH_NS_FRAMING "' to='%s' version='1.0'/>",
                 b->c->w->set.domain);
    deliver(b, open, (size_t)n);
}

static void hold(bosh_t *b, bosh_req_t *r)
{
    b->held[b->nheld].req = r;
    b->held[b->nheld].deadline_ms = now_ms(b->c->w) + b->wait * 1000ull;
    b->nheld++;
}

static void process(bosh_t *b, bosh_req_t *r)
{
    b->rid = r->rid;
    if (r->restart)
        open_stream(b);
    for (size_t i = 0; i < r->nchildren && b->c->state == CONN_OPEN && !b->terminated; i++)
        deliver(b, r->children[i], strlen(r->children[i]));
    if (r->terminate && b->c->state == CONN_OPEN && !b->terminated) {
        static const char close[] = "<close xmlns='" HEARTH_NS_FRAMING "'/>";
        deliver(b, close, sizeof(close) - 1);
        b->terminated = 1; /* whatever the stream above answers, the session is over */
    }
    /* At most 'hold' requests wait: the oldest goes now, with whatever is ready (XEP-0124
     * §11); with 'hold' 0 every request is answered at once. */
    while (b->nheld && b->nheld >= b->hold)
        answer_oldest(b, 0);
    hold(b, r);
    if (!b->hold)
        answer_oldest(b, 0);
    pump(b);
    if (b->terminated && b->c->state == CONN_OPEN)
        connection_close(b->c, 0);
}

static void bad_rid(bosh_t *b, bosh_req_t *r)
{
    /* XEP-0124 §14.3: a request outside the window ends the session. */
    hlog_conn(LOG_INFO, b->c->id, NULL, "BOSH %s: rid %llu out of the window (last %llu)", b->sid,
              (unsigned long long)r->rid, (unsigned long long)b->rid);
    refuse(r, "item-not-found");
    session_end(b, "item-not-found");
    connection__lose(b->c, HEARTH_EINVAL);
}

/* A request for this session, in whatever order it came. */
static void take(bosh_t *b, bosh_req_t *r)
{
    if (b->terminated || b->c->state != CONN_OPEN) {
        refuse(r, "item-not-found");
        return;
    }
    if (r->rid <= b->rid) {
        /* A request that is still held, sent again over a new HTTP connection (the old one
         * broke, XEP-0124 §14.2): the new one is held instead, the old answered empty. */
        for (size_t i = 0; i < b->nheld; i++) {
            if (b->held[i].req->rid == r->rid) {
                hlog_conn(LOG_DEBUG, b->c->id, NULL,
                          "BOSH %s: rid %llu sent again: the new request is held", b->sid,
                          (unsigned long long)r->rid);
                bosh_req_t *old = b->held[i].req;
                b->held[i].req = r;
                send_answer(old, strdup("<body xmlns='" HEARTH_NS_HTTPBIND "'/>"),
                            sizeof("<body xmlns='" HEARTH_NS_HTTPBIND "'/>") - 1);
                return;
            }
        }
        /* Answered already: the kept answer again, if kept. */
        size_t i = r->rid % BOSH_KEEP;
        if (b->kept[i].body && b->kept[i].rid == r->rid) {
            char *copy = malloc(b->kept[i].len + 1);
            if (copy)
                memcpy(copy, b->kept[i].body, b->kept[i].len);
            send_answer(r, copy, b->kept[i].len);
            return;
        }
        bad_rid(b, r);
        return;
    }
    uint64_t window = b->hold + 1u;
    if (r->rid > b->rid + window) {
        bad_rid(b, r);
        return;
    }
    if (r->rid > b->rid + 1) { /* early: waits for those before it */
        size_t i = (size_t)(r->rid - b->rid - 2);
        if (i > BOSH_HOLD_MAX || b->ahead[i]) {
            bad_rid(b, r);
            return;
        }
        b->ahead[i] = r;
        hlog_conn(LOG_DEBUG, b->c->id, NULL, "BOSH %s: rid %llu waits for %llu", b->sid,
                  (unsigned long long)r->rid, (unsigned long long)(b->rid + 1));
        return;
    }
    process(b, r);
    while (b->ahead[0] && b->c->state == CONN_OPEN && !b->terminated) {
        bosh_req_t *next = b->ahead[0];
        memmove(b->ahead, b->ahead + 1, BOSH_HOLD_MAX * sizeof(*b->ahead));
        b->ahead[BOSH_HOLD_MAX] = NULL;
        process(b, next);
    }
}

static void create(worker_t *w, bosh_req_t *r)
{
    connection_acceptor_fn accept = http__acceptor();
    if (r->bad_to) {
        refuse(r, "host-unknown");
        return;
    }
    bosh_t *b = calloc(1, sizeof(*b));
    unsigned char rnd[16];
    if (!b || !accept || uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL)) {
        free(b);
        refuse(r, "internal-server-error");
        return;
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(b->sid + 2 * i, 3, "%02x", rnd[i]);
    b->wait = r->wait && r->wait < max_wait ? r->wait : max_wait;
    b->hold = r->hold < BOSH_HOLD_MAX ? r->hold : BOSH_HOLD_MAX;
    b->c = connection_new(w, &transport_bosh, b, NULL, NULL);
    if (!b->c || strmap_put(&bw_of(w)->sessions, b->sid, b)) {
        if (b->c) {
            b->c->tctx = NULL;
            connection_close(b->c, 1);
        }
        free(b);
        refuse(r, "internal-server-error");
        return;
    }
    if (table_put(b->sid, w->index, 0)) {
        connection_close(b->c, 1); /* frees b */
        refuse(r, "internal-server-error");
        return;
    }
    memcpy(b->c->ip, r->ip, sizeof(b->c->ip));
    b->c->secure = r->secure;
    b->idle_since_ms = now_ms(w);
    hlog_conn(LOG_DEBUG, b->c->id, NULL, "BOSH session %s from %s%s", b->sid, r->ip,
              r->secure ? " (secure)" : "");
    accept(b->c); /* the stream above; it answers the header we give it */
    if (b->c->state != CONN_OPEN) {
        refuse(r, "internal-server-error");
        return;
    }
    open_stream(b);
    b->rid = r->rid;
    hold(b, r);
    b->created = 1;
    answer_oldest(b, 1); /* the session's attributes and the stream's features */
}

static void dropped(void *arg)
{
    bosh_req_t *r = arg; /* the worker is gone */
    req_free(r);
}

/* Keeps r for a session on its way here; its arrival takes it. */
static void park_arriving(worker_t *w, bosh_req_t *r)
{
    bosh_worker_t *bw = bw_of(w);
    bosh_req_t *list = strmap_get(&bw->arriving, r->sid);
    size_t n = 0;
    for (bosh_req_t *p = list; p; p = p->next)
        n++;
    if (n >= BOSH_PARKED_MAX) {
        refuse(r, "policy-violation");
        return;
    }
    r->next = NULL;
    if (!list) {
        if (strmap_put(&bw->arriving, r->sid, r))
            refuse(r, "internal-server-error");
        return;
    }
    while (list->next)
        list = list->next;
    list->next = r;
}

/* On the worker the table names for the sid (or, to create one, where the request was read). */
static void forward(worker_t *w, void *arg)
{
    bosh_req_t *r = arg;
    if (!*r->sid) {
        create(w, r);
        return;
    }
    int transit = 0, where = table_get(r->sid, &transit);
    if (where < 0) {
        refuse(r, "item-not-found");
        return;
    }
    if ((unsigned)where != w->index) {
        if (r->hops++ >= 8 || worker__call(w->srv->workers[where], forward, dropped, r))
            refuse(r, "item-not-found");
        return;
    }
    if (transit) {
        park_arriving(w, r);
        return;
    }
    bosh_t *b = strmap_get(&bw_of(w)->sessions, r->sid);
    if (!b) {
        refuse(r, "item-not-found");
        return;
    }
    if (b->c->state == CONN_MOVING || b->settling) { /* behind those that wait already */
        if (b->nparked >= BOSH_PARKED_MAX) {
            refuse(r, "policy-violation");
            return;
        }
        bosh_req_t **pp = &b->parked;
        while (*pp)
            pp = &(*pp)->next;
        r->next = NULL;
        *pp = r;
        b->nparked++;
        return;
    }
    /* As a socket's read does: a move or a close the stream above starts while it takes this
     * request (SASL success moves it home) happens once the request is through. */
    connection_t *c = b->c;
    connection_ref(c);
    take(b, r);
    connection_unref(c); /* may free c and b */
}

/* ---- the HTTP side: parsing a request where it was read ---- */

typedef struct parse_ctx {
    bosh_req_t *r;
    const char *domain;
    int root_ok;
    int closed; /* </body> read: the request is whole */
    int bad;
} parse_ctx_t;

static unsigned attr_uint(const hearth_xml_node_t *n, const char *name, unsigned max)
{
    const char *v = hearth_xml_attr(n, name);
    if (!v || *v < '0' || *v > '9')
        return 0;
    unsigned long x = strtoul(v, NULL, 10);
    return x > max ? max : (unsigned)x;
}

static void on_body_open(void *ud, const hearth_xml_node_t *h, const char *default_ns)
{
    (void)default_ns;
    parse_ctx_t *p = ud;
    bosh_req_t *r = p->r;
    if (strcmp(h->name, "body") || strcmp(h->ns, HEARTH_NS_HTTPBIND)) {
        p->bad = 1;
        return;
    }
    p->root_ok = 1;
    const char *sid = hearth_xml_attr(h, "sid");
    const char *rid = hearth_xml_attr(h, "rid");
    const char *type = hearth_xml_attr(h, "type");
    const char *to = hearth_xml_attr(h, "to");
    const char *restart = hearth_xml_attr_ns(h, HEARTH_NS_XBOSH, "restart");
    if (!rid || *rid < '0' || *rid > '9' || (sid && strlen(sid) >= sizeof(r->sid))) {
        p->bad = 1;
        return;
    }
    char *end;
    r->rid = strtoull(rid, &end, 10);
    if (*end || !r->rid || r->rid > (1ull << 53)) {
        p->bad = 1;
        return;
    }
    snprintf(r->sid, sizeof(r->sid), "%s", sid ? sid : "");
    r->terminate = type && !strcmp(type, "terminate");
    r->restart = restart && (!strcmp(restart, "true") || !strcmp(restart, "1"));
    r->wait = attr_uint(h, "wait", BOSH_WAIT_LIMIT);
    r->hold = attr_uint(h, "hold", BOSH_HOLD_MAX);
    r->bad_to = !sid && to && strcasecmp(to, p->domain);
}

/* Children of <body/> are jabber:client stanzas (XEP-0206 §8): one that inherited BOSH's
 * namespace is taken as one. */
static void fix_ns(hearth_xml_node_t *n)
{
    if (n->ns && !strcmp(n->ns, HEARTH_NS_HTTPBIND))
        n->ns = HEARTH_NS_CLIENT;
    for (hearth_xml_node_t *k = n->children; k; k = k->next)
        if (k->name)
            fix_ns(k);
}

static void on_child(void *ud, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    (void)arena;
    parse_ctx_t *p = ud;
    bosh_req_t *r = p->r;
    if (p->bad || r->nchildren == BOSH_CHILDREN_MAX) {
        p->bad = 1;
        return;
    }
    fix_ns(el);
    hearth_buf_t b = HEARTH_BUF_INIT;
    char **v = realloc(r->children, (r->nchildren + 1) * sizeof(*v));
    if (v)
        r->children = v;
    if (!v || hearth_xml_serialize(el, "", &b) || hearth_buf_append(&b, "", 1)) {
        hearth_buf_free(&b);
        p->bad = 1;
        return;
    }
    r->children[r->nchildren++] = b.data;
}

static void on_body_close(void *ud)
{
    ((parse_ctx_t *)ud)->closed = 1;
}

static void on_parse_error(void *ud, hearth_stream_error_t cond, const char *text)
{
    (void)cond;
    (void)text;
    ((parse_ctx_t *)ud)->bad = 1;
}

static void respond_terminate(http_request_t *req, const char *condition)
{
    char body[256];
    int n = snprintf(body, sizeof(body),
                     "<body xmlns='" HEARTH_NS_HTTPBIND "' type='terminate' condition='%s'/>",
                     condition);
    http_respond(req, 200, "text/xml; charset=utf-8", NULL, body, (size_t)n);
}

int bosh__request(http_request_t *req)
{
    if (strcmp(req->method, "POST")) {
        static const char msg[] = "BOSH takes POST\n";
        http_respond(req, 405, "text/plain; charset=utf-8", "Allow: POST, OPTIONS\r\n", msg,
                     sizeof(msg) - 1);
        return 0;
    }
    bosh_req_t *r = calloc(1, sizeof(*r));
    if (!r) {
        http_respond(req, 503, "text/plain; charset=utf-8", NULL, "busy\n", 5);
        return 0;
    }
    server_t *srv = req->c->w->srv;
    parse_ctx_t p = {.r = r, .domain = srv->set.domain};
    hearth_xml_stream_cbs_t cbs = {
        .open = on_body_open, .stanza = on_child, .close = on_body_close, .error = on_parse_error};
    hearth_xml_limits_t lim = HEARTH_XML_LIMITS_DEFAULT;
    lim.max_stanza_bytes = req->c->w->set.max_stanza;
    hearth_xml_stream_t *x = hearth_xml_stream_new(&cbs, &p, &lim);
    int rc = x ? hearth_xml_stream_feed(x, req->body, req->body_len) : HEARTH_ENOMEM;
    hearth_xml_stream_free(x);
    if ((rc && rc != HEARTH_ECLOSED) || !p.root_ok || !p.closed || p.bad) {
        hlog_conn(LOG_INFO, req->c->id, NULL, "BOSH: bad request from %s", req->c->ip);
        req_free(r);
        respond_terminate(req, "bad-request");
        return 0;
    }
    r->hw = req->c->w;
    r->secure = req->secure;
    memcpy(r->ip, req->c->ip, sizeof(r->ip));
    worker_t *to = req->c->w;
    if (*r->sid) {
        int where = table_get(r->sid, NULL);
        if (where < 0) {
            req_free(r);
            respond_terminate(req, "item-not-found");
            return 0;
        }
        to = srv->workers[where];
    }
    http_defer(req, &r->d);
    if (worker__call(to, forward, dropped, r)) /* the next loop turn, even on this worker */
        http_respond_later(&r->d, 503, "text/plain; charset=utf-8", "busy\n", 5);
    return 0;
}

/* ---- deadlines ---- */

/* Checked on each worker every second: held requests past 'wait' answered empty, sessions
 * without a request held for 'inactivity' seconds lost. (The connection's own timer belongs
 * to the stream above.) */
static void on_tick(uv_timer_t *t)
{
    worker_t *w = t->data;
    uint64_t now = now_ms(w);
    STRMAP_FOREACH(&bw_of(w)->sessions, e)
    {
        bosh_t *b = e->value;
        if (b->c->state != CONN_OPEN)
            continue;
        while (b->nheld && b->held[0].deadline_ms <= now)
            answer_oldest(b, 0);
        if (!b->nheld && now - b->idle_since_ms > inactivity * 1000ull) {
            hlog_conn(LOG_INFO, b->c->id, NULL, "BOSH %s: no request for %u s: lost", b->sid,
                      inactivity);
            b->terminated = 1;
            connection__lose(b->c, HEARTH_ECLOSED);
        }
    }
}

int bosh__worker_init(worker_t *w)
{
    bosh_worker_t *bw = calloc(1, sizeof(*bw));
    if (!bw || strmap_init(&bw->sessions) || strmap_init(&bw->arriving)) {
        if (bw)
            strmap_free(&bw->sessions);
        free(bw);
        return HEARTH_ENOMEM;
    }
    w->slot[slot] = bw;
    uv_timer_init(&w->loop, &bw->tick);
    bw->tick.data = w;
    uv_unref((uv_handle_t *)&bw->tick);
    uv_timer_start(&bw->tick, on_tick, 1000, 1000);
    return 0;
}

/* After the worker's loop closed every handle. */
void bosh__worker_free(worker_t *w)
{
    bosh_worker_t *bw = bw_of(w);
    if (!bw)
        return;
    STRMAP_FOREACH(&bw->arriving, e)
    {
        bosh_req_t *r = e->value, *n;
        for (; r; r = n) {
            n = r->next;
            req_free(r);
        }
    }
    strmap_free(&bw->arriving);
    strmap_free(&bw->sessions);
    free(bw);
    w->slot[slot] = NULL;
}

int bosh__init(server_t *srv)
{
    max_wait = (unsigned)config_int(srv->cfg, "bosh.max_wait");
    inactivity = (unsigned)config_int(srv->cfg, "bosh.max_inactivity");
    if ((slot = worker__slot_new()) < 0)
        return HEARTH_ELIMIT;
    if (uv_mutex_init(&table_lock) || strmap_init(&table))
        return HEARTH_ENOMEM;
    return http__route("/http-bind", 0, bosh__request);
}

void bosh__free(void)
{
    strmap_free(&table);
    uv_mutex_destroy(&table_lock);
}
