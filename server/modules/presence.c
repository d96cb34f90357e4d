/* Presence and subscriptions (RFC 6121 §3, §4, Appendix A). Outbound stanzas are handled on
 * the sender's home worker with its roster at hand; inbound ones on the recipient's, after its
 * state is loaded. Subscription stanzas carry the bare JIDs of both ends; presence broadcasts
 * are serialised once without 'to' and addressed per recipient when written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/im.h"

/* Directed presences one session may have outstanding (each is remembered until it ends). */
#define PRESENCE_DIRECTED_MAX 1000
/* Subscription requests waiting for an answer are stored and kept in memory while the user's
 * state is: each is kept as its sender, its status and its nickname (XEP-0172), each text cut
 * at this many bytes, and all of one account's together within SUB_REQUESTS_BYTES. Past it a
 * new request is refused with resource-constraint (its sender may ask again later). */
#define SUB_REQUEST_TEXT_MAX 1024
#define SUB_REQUESTS_BYTES (256u * 1024)

static char *bare_of(hearth_arena_t *a, const char *jid)
{
    const char *slash = strchr(jid, '/');
    return hearth_arena_strndup(a, jid, slash ? (size_t)(slash - jid) : strlen(jid));
}

static hearth_bytes_t *serialize(hearth_xml_node_t *st)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    hearth_bytes_t *bytes = NULL;
    if (hearth_xml_serialize(st, HEARTH_NS_CLIENT, &b) == 0)
        bytes = hearth_bytes_new(b.data, b.len);
    hearth_buf_free(&b);
    return bytes;
}

/* Routes presence bytes (no 'to' inside) to a local JID. */
static void route(worker_t *w, const char *to, const char *from, const char *type,
                  hearth_bytes_t *bytes)
{
    router__route(w, STANZA_PRESENCE, to, from, type, bytes);
}

void presence__send_sub(worker_t *w, user_t *u, const char *contact, const char *type)
{
    char buf[1200];
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<presence type='");
    rc = rc ?: hearth_buf_append_str(&b, type);
    rc = rc ?: hearth_buf_append_str(&b, "' from='");
    rc = rc ?: hearth_buf_append_escaped(&b, u->bare, strlen(u->bare));
    rc = rc ?: hearth_buf_append_str(&b, "'/>");
    (void)buf;
    if (!rc) {
        hearth_bytes_t *bytes = hearth_bytes_new(b.data, b.len);
        if (bytes) {
            route(w, contact, u->bare, type, bytes);
            hearth_bytes_unref(bytes);
        }
    }
    hearth_buf_free(&b);
}

void presence__drop_request(worker_t *w, user_t *u, const char *jid)
{
    char *st = strmap_remove(&u->requests, jid);
    if (!st)
        return;
    free(st);
    if (storage_request_delete(w->srv->storage, &w->storage_target, u->node, jid, user__write_done,
                               NULL))
        hlog(LOG_ERROR, "subscription requests of %s: storage refused the write", u->bare);
}

/* Each available resource's last presence, to a contact (after it was granted a subscription,
 * or in answer to its probe). */
static void send_available_to(worker_t *w, user_t *u, const char *contact)
{
    for (session_t *s = u->sessions; s; s = s->user_next)
        if (s->available && s->presence)
            route(w, contact, s->jid.full, "", s->presence);
}

void presence__send_unavailable_to(worker_t *w, user_t *u, const char *contact)
{
    for (session_t *s = u->sessions; s; s = s->user_next) {
        if (!s->available)
            continue;
        hearth_bytes_t *bytes = im__unavailable(s->jid.full);
        if (bytes)
            route(w, contact, s->jid.full, "unavailable", bytes);
        hearth_bytes_unref(bytes);
    }
}

static void deliver_available(user_t *u, hearth_bytes_t *bytes, const session_t *except)
{
    for (session_t *s = u->sessions; s; s = s->user_next)
        if (s->available && s != except)
            session__send_addressed(s, bytes, s->jid.full);
}

/* ---- outbound subscription management (RFC 6121 §3, Appendix A.2, A.4) ---- */

static void outbound_sub(session_t *c, user_t *u, const char *contact, const char *type,
                         hearth_xml_node_t *st, hearth_arena_t *arena)
{
    worker_t *w = c->w;
    storage_roster_item_t *it = strmap_get(&u->roster, contact);
    /* Subscription stanzas travel between bare JIDs (§3.1.2). */
    hearth_xml_set_attr(arena, st, "from", u->bare);
    hearth_xml_set_attr(arena, st, "to", NULL);
    hearth_bytes_t *bytes = serialize(st);
    if (!bytes)
        return;
    if (!strcmp(type, "subscribe")) {
        if (!it) {
            if (!roster__fits(w, u, contact, roster__item_size(contact, NULL, NULL, 0))) {
                hearth_xml_set_attr(arena, st, "from", c->jid.full);
                hearth_xml_set_attr(arena, st, "to", contact);
                router__reply_error(c, st, arena, HEARTH_STANZA_ERR_POLICY_VIOLATION,
                                    "the roster is full");
                goto out;
            }
            if (!(it = user__roster_item_new(contact)))
                goto out;
            it->ask = 1;
            roster__changed(w, u, it);
        } else if (!user__sub_to(it) && !it->ask) {
            it->ask = 1;
            roster__changed(w, u, it);
        }
        route(w, contact, u->bare, type, bytes);
    } else if (!strcmp(type, "subscribed")) {
        if (strmap_get(&u->requests, contact)) {
            if (!it && !roster__fits(w, u, contact, roster__item_size(contact, NULL, NULL, 0))) {
                hearth_xml_set_attr(arena, st, "from", c->jid.full);
                hearth_xml_set_attr(arena, st, "to", contact);
                router__reply_error(c, st, arena, HEARTH_STANZA_ERR_POLICY_VIOLATION,
                                    "the roster is full");
                goto out;
            }
            if (!it && !(it = user__roster_item_new(contact)))
                goto out;
            it->subscription |= STORAGE_SUB_FROM;
            it->approved = 0;
            roster__changed(w, u, it);
            presence__drop_request(w, u, contact);
            route(w, contact, u->bare, type, bytes);
            send_available_to(w, u, contact);
        } else if (!user__sub_from(it) && !(it && it->approved)) {
            /* Pre-approval (§3.4): remembered, nothing is sent. */
            if (!it) {
                if (!roster__fits(w, u, contact, roster__item_size(contact, NULL, NULL, 0)))
                    goto out;
                if (!(it = user__roster_item_new(contact)))
                    goto out;
            }
            it->approved = 1;
            roster__changed(w, u, it);
        }
    } else if (!strcmp(type, "unsubscribe")) {
        if (it && (user__sub_to(it) || it->ask)) {
            it->subscription &= ~STORAGE_SUB_TO;
            it->ask = 0;
            roster__changed(w, u, it);
        }
        route(w, contact, u->bare, type, bytes);
    } else { /* unsubscribed: cancel or deny */
        int had_request = strmap_get(&u->requests, contact) != NULL;
        presence__drop_request(w, u, contact);
        if (it && (user__sub_from(it) || it->approved)) {
            int was_from = user__sub_from(it);
            it->subscription &= ~STORAGE_SUB_FROM;
            it->approved = 0;
            roster__changed(w, u, it);
            if (was_from) {
                route(w, contact, u->bare, type, bytes);
                presence__send_unavailable_to(w, u, contact);
            }
        } else if (had_request) {
            route(w, contact, u->bare, type, bytes);
        }
    }
out:
    hearth_bytes_unref(bytes);
}

/* ---- broadcast presence (§4.2, §4.4, §4.5) ---- */

static void broadcast(session_t *c, user_t *u, hearth_bytes_t *bytes, const char *type)
{
    /* Serialised once; one inbox message per destination worker lists its contacts. */
    route_batch_t *batch = router__batch_new(c->w, STANZA_PRESENCE, c->jid.full, type, bytes);
    STRMAP_FOREACH(&u->roster, e)
    {
        storage_roster_item_t *it = e->value;
        if (user__sub_from(it) && !blocking__blocks(u, it->jid))
            router__batch_add(batch, it->jid);
    }
    router__batch_send(batch);
    /* §4.2.2, §4.4.2: every available resource, the sender's own included. */
    deliver_available(u, bytes, NULL);
}

static void directed_forget(session_t *c)
{
    if (c->directed.buckets)
        strmap_free(&c->directed);
}

/* Unavailable to contacts, own resources and the targets of directed presence. */
static void go_unavailable(session_t *c, user_t *u, hearth_bytes_t *bytes, const char *status)
{
    worker_t *w = c->w;
    broadcast(c, u, bytes, "unavailable");
    if (c->directed.buckets) {
        STRMAP_FOREACH(&c->directed, e)
        {
            route(w, e->key, c->jid.full, "unavailable", bytes);
        }
        directed_forget(c);
    }
    c->available = 0;
    hearth_bytes_unref(c->presence);
    c->presence = NULL;
    int others = 0;
    for (session_t *s = u->sessions; s; s = s->user_next)
        others |= s != c && s->available;
    if (!others) {
        u->last_logout = user__now_ms() / 1000;
        free(u->last_status);
        u->last_status = status ? strdup(status) : NULL;
        if (storage_last_set(w->srv->storage, &w->storage_target, u->node, u->last_logout, status,
                             user__write_done, NULL))
            hlog(LOG_ERROR, "last activity of %s: storage refused the write", u->bare);
    }
}

static int parse_priority(hearth_xml_node_t *st, hearth_arena_t *arena, int *out)
{
    hearth_xml_node_t *p = hearth_xml_child(st, "priority", HEARTH_NS_CLIENT);
    *out = 0;
    if (!p)
        return 0;
    const char *t = hearth_xml_text(arena, p);
    char *end;
    long v = strtol(t, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
        end++;
    if (end == t || *end || v < -128 || v > 127)
        return -1;
    *out = (int)v;
    return 0;
}

static void initial_presence(session_t *c, user_t *u)
{
    worker_t *w = c->w;
    /* The user's other resources, seen by the new one. */
    for (session_t *s = u->sessions; s; s = s->user_next)
        if (s != c && s->available && s->presence)
            session__send_addressed(c, s->presence, c->jid.full);
    /* Probes to the contacts it is subscribed to (§4.2.2). */
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<presence type='probe' from='");
    rc = rc ?: hearth_buf_append_escaped(&b, u->bare, strlen(u->bare));
    rc = rc ?: hearth_buf_append_str(&b, "'/>");
    hearth_bytes_t *probe = rc ? NULL : hearth_bytes_new(b.data, b.len);
    hearth_buf_free(&b);
    STRMAP_FOREACH(&u->roster, e)
    {
        storage_roster_item_t *it = e->value;
        if (probe && user__sub_to(it) && !blocking__blocks(u, it->jid))
            route(w, it->jid, u->bare, "probe", probe);
    }
    hearth_bytes_unref(probe);
    /* Subscription requests that waited for the user (§3.1.3). */
    STRMAP_FOREACH(&u->requests, e)
    {
        const char *st = e->value;
        hearth_bytes_t *req = hearth_bytes_new(st, strlen(st));
        if (req)
            session__send_addressed(c, req, c->jid.full);
        hearth_bytes_unref(req);
    }
    if (c->priority >= 0)
        message__flush_offline(c);
}

static void own_presence(session_t *c, user_t *u, hearth_xml_node_t *st, hearth_arena_t *arena,
                         const char *type)
{
    int prio;
    if (parse_priority(st, arena, &prio)) {
        router__reply_error(c, st, arena, HEARTH_STANZA_ERR_BAD_REQUEST,
                            "priority is an integer from -128 to 127");
        return;
    }
    hearth_xml_set_attr(arena, st, "to", NULL);
    hearth_bytes_t *bytes = serialize(st);
    if (!bytes)
        return;
    if (type && !strcmp(type, "unavailable")) {
        if (c->available) {
            hearth_xml_node_t *sn = hearth_xml_child(st, "status", HEARTH_NS_CLIENT);
            go_unavailable(c, u, bytes, sn ? hearth_xml_text(arena, sn) : NULL);
        }
    } else {
        int initial = !c->available;
        int was_negative = c->priority < 0;
        c->available = 1;
        c->priority = prio;
        hearth_bytes_unref(c->presence);
        c->presence = hearth_bytes_ref(bytes);
        broadcast(c, u, bytes, "");
        if (initial)
            initial_presence(c, u);
        else if (was_negative && prio >= 0)
            message__flush_offline(c); /* what waited is for a non-negative priority */
    }
    hearth_bytes_unref(bytes);
}

static void from_client(session_t *c, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    user_t *u = c->user;
    const char *type = hearth_xml_attr(st, "type");
    const char *to = hearth_xml_attr(st, "to");
    if (!u)
        return;
    if (type && (!strcmp(type, "probe") || !strcmp(type, "error")) && !to)
        return;
    if (!to) {
        if (type && strcmp(type, "unavailable")) {
            router__reply_error(c, st, arena, HEARTH_STANZA_ERR_BAD_REQUEST,
                                "a subscription request needs a 'to'");
            return;
        }
        own_presence(c, u, st, arena, type);
        return;
    }
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *reason;
    if (hearth_jid_parse(to, strlen(to), &j, &reason)) {
        router__reply_error(c, st, arena, HEARTH_STANZA_ERR_JID_MALFORMED, reason);
        return;
    }
    char *contact = hearth_arena_strdup(arena, j.bare);
    int local = !strcmp(j.domain, c->w->set.domain) && j.node;
    int muc = !strcmp(j.domain, c->w->set.muc_domain) && j.node;
    hearth_jid_clear(&j);
    if (!local && !muc)
        return; /* no federation yet: presence to other domains goes nowhere */
    if (muc && type && strcmp(type, "unavailable") && strcmp(type, "error"))
        return; /* rooms take available and unavailable presence only */
    if (blocking__blocks(u, contact))
        return; /* XEP-0191 §3.6: presence to a blocked JID is not sent */
    if (type && (!strcmp(type, "subscribe") || !strcmp(type, "subscribed") ||
                 !strcmp(type, "unsubscribe") || !strcmp(type, "unsubscribed"))) {
        if (!strcmp(contact, u->bare))
            return;
        outbound_sub(c, u, contact, type, st, arena);
        return;
    }
    if (type && !strcmp(type, "probe"))
        return; /* probes are the server's business (§4.3) */
    /* Directed presence (§4.6): remembered, so that it ends with the session. */
    char *target = hearth_arena_strdup(arena, to);
    hearth_xml_set_attr(arena, st, "to", NULL);
    hearth_bytes_t *bytes = serialize(st);
    if (!bytes)
        return;
    storage_roster_item_t *it = strmap_get(&u->roster, contact);
    if (!type) {
        if (c->directed.buckets && c->directed.count >= PRESENCE_DIRECTED_MAX &&
            !strmap_get(&c->directed, target)) {
            hearth_bytes_unref(bytes);
            router__reply_error(c, st, arena, HEARTH_STANZA_ERR_POLICY_VIOLATION,
                                "too many directed presences");
            return;
        }
        if (!user__sub_from(it) && (c->directed.buckets || strmap_init(&c->directed) == 0))
            strmap_put(&c->directed, target, (void *)1);
    } else if (!strcmp(type, "unavailable") && c->directed.buckets) {
        strmap_remove(&c->directed, target);
    }
    route(c->w, target, c->jid.full, type ? type : "", bytes);
    hearth_bytes_unref(bytes);
}

static void session_end(session_t *c)
{
    user_t *u = c->user;
    if (u && c->available) {
        hearth_bytes_t *bytes = im__unavailable(c->jid.full);
        if (bytes)
            go_unavailable(c, u, bytes, NULL);
        hearth_bytes_unref(bytes);
    }
    if (u && !c->available && c->directed.buckets) {
        /* Directed presence without broadcast (a room joined before initial presence) ends
         * with the session too. */
        hearth_bytes_t *bytes = im__unavailable(c->jid.full);
        STRMAP_FOREACH(&c->directed, e)
        {
            if (bytes)
                route(c->w, e->key, c->jid.full, "unavailable", bytes);
        }
        hearth_bytes_unref(bytes);
    }
    c->available = 0;
    hearth_bytes_unref(c->presence);
    c->presence = NULL;
    directed_forget(c);
}

/* ---- inbound (on the recipient's home worker) ---- */

typedef struct inbound {
    worker_t *w;
    user_t *u;
    inbox_msg_t *m;
} inbound_t;

/* Appends the element's text cut at max bytes (on a UTF-8 character boundary), escaped. */
static int append_cut(hearth_buf_t *b, hearth_arena_t *a, hearth_xml_node_t *el, size_t max)
{
    const char *t = hearth_xml_text(a, el);
    size_t n = strlen(t);
    if (n > max) {
        n = max;
        while (n > 0 && ((unsigned char)t[n] & 0xC0) == 0x80)
            n--;
    }
    return hearth_buf_append_escaped(b, t, n);
}

typedef struct request_copy {
    const char *contact;
    char *out; /* malloc'd */
} request_copy_t;

static void copy_request(void *ud, hearth_xml_node_t *st, hearth_arena_t *a)
{
    request_copy_t *rc = ud;
    hearth_xml_node_t *status = hearth_xml_child(st, "status", HEARTH_NS_CLIENT);
    hearth_xml_node_t *nick = hearth_xml_child(st, "nick", HEARTH_NS_NICK);
    hearth_buf_t b = HEARTH_BUF_INIT;
    int err = hearth_buf_append_str(&b, "<presence from='");
    err = err ?: hearth_buf_append_escaped(&b, rc->contact, strlen(rc->contact));
    err = err ?: hearth_buf_append_str(&b, "' type='subscribe'>");
    if (status) {
        err = err ?: hearth_buf_append_str(&b, "<status>");
        err = err ?: append_cut(&b, a, status, SUB_REQUEST_TEXT_MAX);
        err = err ?: hearth_buf_append_str(&b, "</status>");
    }
    if (nick) {
        err = err ?: hearth_buf_append_str(&b, "<nick xmlns='" HEARTH_NS_NICK "'>");
        err = err ?: append_cut(&b, a, nick, SUB_REQUEST_TEXT_MAX);
        err = err ?: hearth_buf_append_str(&b, "</nick>");
    }
    err = err ?: hearth_buf_append_str(&b, "</presence>");
    if (!err)
        rc->out = strndup(b.data, b.len);
    hearth_buf_free(&b);
}

/* What u's stored subscription requests take, in bytes. */
static size_t requests_bytes(const user_t *u)
{
    size_t n = 0;
    STRMAP_FOREACH(&u->requests, e)
    {
        n += strlen(e->key) + strlen(e->value);
    }
    return n;
}

/* Keeps an inbound subscription request for u (§3.1.3): 0, or an error when it is refused. */
static int store_request(worker_t *w, user_t *u, inbox_msg_t *m, const char *contact)
{
    request_copy_t rc = {contact, NULL};
    router__parse(m->u.route.bytes->data, m->u.route.bytes->len, copy_request, &rc);
    if (!rc.out)
        return HEARTH_ENOMEM;
    if (requests_bytes(u) + strlen(contact) + strlen(rc.out) > SUB_REQUESTS_BYTES) {
        hlog(LOG_WARN, "subscription request from %s to %s refused: %u bytes of requests wait",
             contact, u->bare, SUB_REQUESTS_BYTES);
        free(rc.out);
        return HEARTH_ELIMIT;
    }
    if (strmap_put(&u->requests, contact, rc.out)) {
        free(rc.out);
        return HEARTH_ENOMEM;
    }
    if (storage_request_put(w->srv->storage, &w->storage_target, u->node, contact, rc.out,
                            user__write_done, NULL))
        hlog(LOG_ERROR, "subscription requests of %s: storage refused the write", u->bare);
    return 0;
}

/* A subscription request u cannot keep: the requester learns it with a presence error from
 * u's bare JID (resource-constraint: it may ask again later). */
static void refuse_sub(worker_t *w, user_t *u, const char *contact, const char *text)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<presence type='error' from='");
    rc = rc ?: hearth_buf_append_escaped(&b, u->bare, strlen(u->bare));
    rc = rc ?: hearth_buf_append_str(&b, "'>");
    rc = rc ?: hearth_stanza_error_write(&b, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, text);
    rc = rc ?: hearth_buf_append_str(&b, "</presence>");
    hearth_bytes_t *bytes = rc ? NULL : hearth_bytes_new(b.data, b.len);
    if (bytes)
        route(w, contact, u->bare, "error", bytes);
    hearth_bytes_unref(bytes);
    hearth_buf_free(&b);
}

static void inbound_sub(worker_t *w, user_t *u, inbox_msg_t *m, const char *contact)
{
    const char *type = m->u.route.type;
    storage_roster_item_t *it = strmap_get(&u->roster, contact);
    hearth_bytes_t *bytes = m->u.route.bytes;
    if (!strcmp(type, "subscribe")) {
        if (user__sub_from(it)) {
            presence__send_sub(w, u, contact, "subscribed"); /* already granted (§3.1.3) */
        } else if (it && it->approved) {
            it->approved = 0;
            it->subscription |= STORAGE_SUB_FROM;
            roster__changed(w, u, it);
            presence__send_sub(w, u, contact, "subscribed");
            send_available_to(w, u, contact);
        } else if (!strmap_get(&u->requests, contact)) {
            int err = store_request(w, u, m, contact);
            if (err) {
                refuse_sub(w, u, contact,
                           err == HEARTH_ELIMIT ? "too many subscription requests wait for this "
                                                  "contact; try again later"
                                                : NULL);
                return;
            }
            deliver_available(u, bytes, NULL);
        }
    } else if (!strcmp(type, "subscribed")) {
        if (it && it->ask) {
            it->ask = 0;
            it->subscription |= STORAGE_SUB_TO;
            roster__changed(w, u, it);
            deliver_available(u, bytes, NULL);
        }
    } else if (!strcmp(type, "unsubscribe")) {
        int had = strmap_get(&u->requests, contact) != NULL;
        presence__drop_request(w, u, contact);
        if (user__sub_from(it)) {
            it->subscription &= ~STORAGE_SUB_FROM;
            roster__changed(w, u, it);
            deliver_available(u, bytes, NULL);
            /* §3.3.3: the contact no longer sees the user's presence: it goes unavailable. */
            presence__send_unavailable_to(w, u, contact);
        } else if (had) {
            deliver_available(u, bytes, NULL);
        }
    } else if (!strcmp(type, "unsubscribed")) {
        if (it && (user__sub_to(it) || it->ask)) {
            it->subscription &= ~STORAGE_SUB_TO;
            it->ask = 0;
            roster__changed(w, u, it);
            deliver_available(u, bytes, NULL);
        }
    }
}

static void inbound(worker_t *w, user_t *u, inbox_msg_t *m)
{
    const char *type = m->u.route.type;
    const char *from = m->u.route.from;
    if (u->state != USER_READY || !from)
        return; /* presence for no account is dropped (RFC 6121 §4.3.2, §3.1.3) */
    hearth_arena_t *a = hearth_arena_new(0);
    if (!a)
        return;
    char *contact = bare_of(a, from);
    if (blocking__blocks(u, from))
        goto out;
    if (!strcmp(type, "subscribe") || !strcmp(type, "subscribed") || !strcmp(type, "unsubscribe") ||
        !strcmp(type, "unsubscribed")) {
        inbound_sub(w, u, m, contact);
        goto out;
    }
    if (!strcmp(type, "probe")) {
        storage_roster_item_t *it = strmap_get(&u->roster, contact);
        if (user__sub_from(it))
            send_available_to(w, u, contact);
        goto out;
    }
    const char *slash = strchr(m->u.route.to, '/');
    if (slash) {
        session_t *s = session__find(w, u->bare, slash + 1);
        if (s)
            session__send_addressed(s, m->u.route.bytes, s->jid.full);
    } else {
        /* To the bare JID, errors included: a refused subscription request comes back so. */
        deliver_available(u, m->u.route.bytes, NULL);
    }
out:
    hearth_arena_free(a);
}

/* The chain goes on: what follows (entity capabilities) sees what this made of the session. */
static int presence_out(hook_args_t *a)
{
    from_client(a->s, a->st, a->arena);
    return HOOK_CONTINUE;
}

static int presence_in(hook_args_t *a)
{
    inbound(a->w, a->u, a->m);
    return HOOK_STOP;
}

static int session_ending(hook_args_t *a)
{
    session_end(a->s);
    return HOOK_CONTINUE;
}

static int presence_init(server_t *srv)
{
    (void)srv;
    return hooks__add(HOOK_PRESENCE_OUT, 0, presence_out) ?: hooks__add(HOOK_PRESENCE_IN, 0,
                                                                          presence_in)
                                                              ?: hooks__add(HOOK_SESSION_ENDING,
                                                                            100, session_ending);
}

static const char *const presence_stream_features[] = {"<sub xmlns='" HEARTH_NS_PRE_APPROVAL "'/>",
                                                       NULL};

const module_t module_presence = {
    .name = "presence",
    .stream_features = presence_stream_features,
    .init = presence_init,
};
