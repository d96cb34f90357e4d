/* Message delivery to local users (RFC 6121 §8.5) on the recipient's home worker: full JIDs,
 * bare JIDs by priority, offline storage (XEP-0160) with XEP-0203 delays under a per-user
 * quota, and the server's unique stanza id (XEP-0359) on every message it delivers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/datetime.h"
#include "core/log.h"
#include "modules/im.h"

/* Whether the address text names one of ours (prepared bare JIDs or domains): spelled in
 * another case, with a trailing dot or a resource, it is still ours; what is no JID at all
 * cannot be trusted either. */
static int names_ours(const char *jid, const char *const *ours, size_t n)
{
    if (!jid)
        return 1;
    for (size_t i = 0; i < n; i++) {
        int r = hearth_jid_names(jid, ours[i]);
        if (r != 0)
            return 1;
    }
    return 0;
}

/* Prepares a message from a client for a local user: strips forged stanza ids and claims, before
 * anything copies it (carbons, the sender's archive, which shares its text with the
 * recipient's). */
static void strip_forged(hearth_xml_node_t *st, const char *to_bare, const char *sender_bare,
                         const char *domain)
{
    const char *ids_by[] = {to_bare, sender_bare, domain};
    for (hearth_xml_node_t *n = hearth_xml_first_element(st), *next; n; n = next) {
        next = hearth_xml_next_element(n);
        /* A stanza id in the name of the recipient, the sender or the server can only be ours
         * (XEP-0359 §5). */
        if (!strcmp(n->name, "stanza-id") && !strcmp(n->ns, HEARTH_NS_SID)) {
            if (names_ours(hearth_xml_attr(n, "by"), ids_by, 3))
                hearth_xml_remove(n);
        } else if (!strcmp(n->name, "delay") && !strcmp(n->ns, HEARTH_NS_DELAY)) {
            /* A delay from this server says it held the message (offline storage): only the
             * server writes that. A client's own delay (from itself, or none) stays. */
            const char *from = hearth_xml_attr(n, "from");
            if (from && names_ours(from, &domain, 1))
                hearth_xml_remove(n);
        } else if ((!strcmp(n->ns, HEARTH_NS_CARBONS) &&
                    (!strcmp(n->name, "sent") || !strcmp(n->name, "received"))) ||
                   (!strcmp(n->ns, HEARTH_NS_MAM) && !strcmp(n->name, "result"))) {
            /* Carbon copies and archive results are written by the server of the account
             * they reach; from a client they can only be forgeries (CVE-2017-5589). */
            hearth_xml_remove(n);
        }
    }
}

/* ---- offline storage ---- */

typedef struct offline_job {
    worker_t *w;
    char *to;
    char *from;
    hearth_bytes_t *original;
    char settle_sm[24]; /* the sender's stream management counts it once committed */
    uint32_t settle_seq;
} offline_job_t;

static void offline_stored(void *ud, int err)
{
    offline_job_t *j = ud;
    if (err) {
        /* Not stored: the sender learns it (a message never vanishes). A storage failure (the
         * database gone) is the server's, not the recipient's. */
        inbox_msg_t m = {.kind = INBOX_ROUTE};
        m.u.route.kind = STANZA_MESSAGE;
        m.u.route.to = j->to;
        m.u.route.from = j->from;
        m.u.route.bytes = j->original;
        if (err == HEARTH_ELIMIT || err == HEARTH_ENOTFOUND) {
            router__bounce(j->w, &m, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE,
                           err == HEARTH_ELIMIT ? "the recipient's offline storage is full" : NULL);
        } else {
            hlog(LOG_ERROR, "offline message for %s not stored: %s", j->to, hearth_strerror(err));
            router__bounce(j->w, &m, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
                           "the message could not be stored for the offline recipient");
        }
    }
    if (j->settle_sm[0] && j->from) { /* committed (or answered): the sender may count it */
        inbox_msg_t done = {.kind = INBOX_ROUTE};
        done.u.route.from = j->from;
        strcpy(done.u.route.settle_sm, j->settle_sm);
        done.u.route.settle_seq = j->settle_seq;
        router__settle(j->w, &done);
    }
    hearth_bytes_unref(j->original);
    free(j->to);
    free(j->from);
    free(j);
}

typedef struct delay_ctx {
    worker_t *w;
    user_t *u;
    inbox_msg_t *m;
} delay_ctx_t;

static void store_with_delay(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    delay_ctx_t *d = ud;
    worker_t *w = d->w;
    int64_t now = user__now_ms();
    char stamp[HEARTH_DATETIME_MAX];
    hearth_datetime_format(now, stamp, sizeof(stamp));
    hearth_xml_node_t *delay = hearth_xml_add_child(arena, st, "delay", HEARTH_NS_DELAY);
    hearth_xml_set_attr(arena, delay, "from", w->set.domain);
    hearth_xml_set_attr(arena, delay, "stamp", stamp);
    hearth_buf_t b = HEARTH_BUF_INIT;
    offline_job_t *j = calloc(1, sizeof(*j));
    if (!j || hearth_xml_serialize(st, HEARTH_NS_CLIENT, &b)) {
        free(j);
        hearth_buf_free(&b);
        return;
    }
    j->w = w;
    j->to = strdup(d->m->u.route.to);
    j->from = d->m->u.route.from ? strdup(d->m->u.route.from) : NULL;
    j->original = hearth_bytes_ref(d->m->u.route.bytes);
    strcpy(j->settle_sm, d->m->u.route.settle_sm);
    j->settle_seq = d->m->u.route.settle_seq;
    d->m->u.route.settle_deferred = 1;
    if (storage_offline_store(w->srv->storage, &w->storage_target, d->u->node, b.data, b.len, now,
                              w->set.offline_quota, offline_stored, j))
        offline_stored(j, HEARTH_ELIMIT);
    hearth_buf_free(&b);
}

static void store_offline(worker_t *w, user_t *u, inbox_msg_t *m)
{
    delay_ctx_t d = {w, u, m};
    router__parse(m->u.route.bytes->data, m->u.route.bytes->len, store_with_delay, &d);
}

/* Offline messages go out as the connection drains, never all at once: a backlog larger than
 * the output bound would cut the session, and what it had been given would be gone. Each
 * batch is removed from storage once written. */
#define OFFLINE_PUMP_BYTES (256 * 1024)

typedef struct offline_pump {
    session_t *s;
    user_t *u;
    hearth_bytes_t **msgs;
    int64_t *ids;
    size_t n, i;
} offline_pump_t;

/* Per session: its offline pump while one runs (moves with a resumption: it is the session's). */
static int pump_slot = -1;

static void pump_end(offline_pump_t *p)
{
    session_t *s = p->s;
    worker_t *w = s->w;
    if (s->slot[pump_slot] == p) {
        s->slot[pump_slot] = NULL;
        s->paced--;
    }
    p->u->offline_busy = 0;
    for (size_t k = 0; k < p->n; k++)
        hearth_bytes_unref(p->msgs[k]);
    free(p->msgs);
    free(p->ids);
    user__release(w, p->u);
    free(p);
    session__unref(s);
}

/* The next batch as the session's output drains; the pump ends with the session (what was not
 * written stays offline). */
static void pump(session_t *s, int ending)
{
    offline_pump_t *p = s->slot[pump_slot];
    if (!p)
        return;
    int64_t last = 0;
    while (!ending && p->i < p->n && im__live(s) &&
           session__output_pending(s) < OFFLINE_PUMP_BYTES) {
        session__send(s, p->msgs[p->i]->data, p->msgs[p->i]->len);
        last = p->ids[p->i++];
    }
    if (last && storage_offline_delete(s->w->srv->storage, &s->w->storage_target, p->u->node, last,
                                       user__write_done, NULL))
        hlog(LOG_ERROR, "offline messages of %s: storage refused the removal", p->u->bare);
    if (p->i >= p->n || ending || !im__live(s)) {
        if (p->n)
            hlog_conn(LOG_DEBUG, s->id, s->jid.full, "delivered %zu of %zu offline messages", p->i,
                      p->n);
        pump_end(p);
    }
}

static void offline_fetched(void *ud, int err, const storage_offline_msg_t *msgs, size_t n)
{
    offline_pump_t *p = ud;
    session_t *s = p->s;
    if (err || !im__live(s) || n == 0 || !(p->msgs = calloc(n, sizeof(*p->msgs))) ||
        !(p->ids = calloc(n, sizeof(*p->ids)))) {
        pump_end(p);
        return;
    }
    for (size_t k = 0; k < n; k++) {
        if (!(p->msgs[p->n] = hearth_bytes_new(msgs[k].stanza, msgs[k].len)))
            break;
        p->ids[p->n++] = msgs[k].id;
    }
    s->slot[pump_slot] = p;
    s->paced++;
    pump(s, 0);
}

void message__flush_offline(session_t *s)
{
    user_t *u = s->user;
    if (!u || u->offline_busy || s->slot[pump_slot])
        return;
    offline_pump_t *p = calloc(1, sizeof(*p));
    if (!p)
        return;
    p->s = s;
    p->u = u;
    session__ref(s);
    user__hold(u);
    u->offline_busy = 1;
    if (storage_offline_fetch(s->w->srv->storage, &s->w->storage_target, u->node, offline_fetched,
                              p))
        pump_end(p);
}

/* ---- delivery ---- */

/* Whether serialised bytes carry a 'to' in their start tag (a room's broadcast does not: it
 * is serialised once and addressed per occupant). */
static int has_to(const hearth_bytes_t *b)
{
    const char *end = memchr(b->data, '>', b->len);
    size_t n = end ? (size_t)(end - b->data) : b->len;
    return memmem(b->data, n, " to='", 5) != NULL;
}

static void deliver(session_t *s, const hearth_bytes_t *b)
{
    if (has_to(b))
        session__send(s, b->data, b->len);
    else
        session__send_addressed(s, b, s->jid.full);
}

static void set_bare(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    inbox_msg_t *m = ud;
    size_t n = strcspn(m->u.route.to, "/");
    m->u.route.to[n] = '\0';
    hearth_xml_set_attr(arena, st, "to", m->u.route.to);
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(st, HEARTH_NS_CLIENT, &b) == 0) {
        hearth_bytes_t *nb = hearth_bytes_new(b.data, b.len);
        if (nb) {
            hearth_bytes_unref(m->u.route.bytes);
            m->u.route.bytes = nb;
        }
    }
    hearth_buf_free(&b);
}

static void readdress_bare(inbox_msg_t *m)
{
    router__parse(m->u.route.bytes->data, m->u.route.bytes->len, set_bare, m);
}

static void delivered(worker_t *w, user_t *u, inbox_msg_t *m, session_t *const *got, size_t n)
{
    hook_args_t a = {.w = w, .u = u, .m = m, .delivered = got, .ndelivered = n};
    hooks__run(HOOK_MESSAGE_DELIVERED, &a);
}

static void accepted(worker_t *w, user_t *u, inbox_msg_t *m)
{
    hook_args_t a = {.w = w, .u = u, .m = m};
    hooks__run(HOOK_MESSAGE_ACCEPTED, &a);
}

static void inbound(worker_t *w, user_t *u, inbox_msg_t *m)
{
    const char *type = *m->u.route.type ? m->u.route.type : "normal";
    int is_error = !strcmp(type, "error");
    if (u->state != USER_READY) {
        /* §8.5.1: no such user; every type but error is answered, so that a sender is never
         * left guessing whether a message arrived. A user whose state could not be loaded
         * exists: the sender learns that the failure is temporary. */
        const char *text = NULL;
        if (!is_error)
            router__bounce(w, m,
                           u->state == USER_FAILED ? user__failure(u, &text)
                                                   : HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE,
                           text);
        return;
    }
    const char *slash = strchr(m->u.route.to, '/');
    if (slash) {
        session_t *s = session__find(w, u->bare, slash + 1);
        if (s) {
            if (!is_error && strcmp(type, "headline") && strcmp(type, "groupchat"))
                accepted(w, u, m);
            deliver(s, m->u.route.bytes);
            delivered(w, u, m, &s, 1);
            return;
        }
        /* §8.5.3.2.1: no such resource. */
        if (is_error)
            return;
        if (!strcmp(type, "groupchat")) {
            router__bounce(w, m, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
            return;
        }
        if (!strcmp(type, "headline"))
            return; /* §8.5.3.2.1: silently ignored */
        /* Treated as sent to the bare JID: it is then addressed to the bare JID. */
        readdress_bare(m);
    }
    if (is_error)
        return;
    if (!strcmp(type, "groupchat")) {
        router__bounce(w, m, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    /* §8.5.2.1: the available resources with the highest non-negative priority (headlines go
     * to every available resource with a non-negative priority). */
    int best = -1;
    int live_only = m->u.route.live_only;
    for (session_t *s = u->sessions; s; s = s->user_next)
        if (im__live(s) && s->available && s->priority >= 0 && s->priority > best &&
            !(live_only && s->state == SESSION_DETACHED))
            best = s->priority;
    if (strcmp(type, "headline"))
        accepted(w, u, m); /* archived once it is accepted: delivered or stored */
    if (best < 0) {
        if (strcmp(type, "headline"))
            store_offline(w, u, m); /* §8.5.2.2: chat and normal wait offline */
        return;
    }
    int headline = !strcmp(type, "headline");
    session_t *got[64];
    size_t ngot = 0;
    for (session_t *s = u->sessions; s; s = s->user_next) {
        if (im__live(s) && s->available && s->priority >= 0 && (headline || s->priority == best) &&
            !(live_only && s->state == SESSION_DETACHED)) {
            deliver(s, m->u.route.bytes);
            if (ngot < 64)
                got[ngot++] = s;
        }
    }
    if (!headline)
        delivered(w, u, m, got, ngot);
}

static const char *const message_account_features[] = {HEARTH_NS_SID, "msgoffline", NULL};
static const char *const message_server_features[] = {"msgoffline", NULL};

static int message_in(hook_args_t *a)
{
    inbound(a->w, a->u, a->m);
    return HOOK_STOP;
}

/* First of the chain from a session. */
static int message_sanitise(hook_args_t *a)
{
    if (!a->service)
        strip_forged(a->st, a->to, a->s->user->bare, a->w->set.domain);
    return HOOK_CONTINUE;
}

/* Last of the chain: the recipient's stanza id, the archive key the router gave the message
 * (the sender's archive took its copy under the same key, without it). */
static int message_out(hook_args_t *a)
{
    if (!a->service && a->sid && *a->sid) {
        hearth_xml_node_t *sid = hearth_xml_add_child(a->arena, a->st, "stanza-id", HEARTH_NS_SID);
        hearth_xml_set_attr(a->arena, sid, "id", a->sid);
        hearth_xml_set_attr(a->arena, sid, "by", a->to);
    }
    return HOOK_CONTINUE;
}

static int session_drained(hook_args_t *a)
{
    pump(a->s, 0);
    return HOOK_CONTINUE;
}

static int session_ending(hook_args_t *a)
{
    pump(a->s, 1);
    return HOOK_CONTINUE;
}

static int message_init(server_t *srv)
{
    (void)srv;
    if ((pump_slot = session__slot_new()) < 0)
        return HEARTH_ELIMIT;
    /* Forgeries are stripped before carbons (100) and the archive (90) copy the message. */
    return hooks__add(HOOK_MESSAGE_IN, 0, message_in)
               ?: hooks__add(HOOK_MESSAGE_OUT, 200, message_sanitise)
               ?: hooks__add(HOOK_MESSAGE_OUT, 0, message_out)
               ?: hooks__add(HOOK_SESSION_DRAINED, 0, session_drained)
               ?: hooks__add(HOOK_SESSION_ENDING, 0, session_ending);
}

const module_t module_message = {
    .name = "message",
    .server_features = message_server_features,
    .account_features = message_account_features,
    .init = message_init,
};
