/* The presence manager (include/hearth/presence.h): our own presence and the one each new
 * session begins with, subscription requests and answers, and the bounded cache of contacts'
 * presence per resource. Touches its client through the public API and, for its slot and the
 * initial presence, internal.h. */
#include <stdlib.h>
#include <string.h>

#include "hearth/jid.h"
#include "hearth/ns.h"
#include "hearth/presence.h"
#include "internal.h"

/* One resource's presence, its strings in the same allocation. */
typedef struct res {
    hearth_presence_info_t pub;
    uint64_t seq; /* arrival order, for "the most recent" */
} res_t;

typedef struct contact {
    char *bare;
    res_t **res; /* in arrival order */
    size_t n;
} contact_t;

typedef struct request {
    char *jid, *status;
} request_t;

typedef enum own_state {
    OWN_UNSET = 0, /* the client's plain initial presence (or none) */
    OWN_AVAILABLE,
    OWN_UNAVAILABLE,
} own_state_t;

struct hearth_presence {
    hearth_client_t *c;
    hearth_presence_config_t cfg;
    hearth_presence_events_t ev;
    void *ud;
    unsigned listener_id, handler_id;
    /* ours */
    own_state_t own;
    hearth_show_t show;
    char *status;
    int priority;
    int client_initial; /* the client's initial_presence when the manager came */
    hearth_presence_info_t mine;
    /* contacts, sorted by bare JID */
    contact_t *contacts;
    size_t ncontacts, cap;
    uint64_t seq;
    unsigned long dropped;
    request_t *requests;
    size_t nrequests;
};

static const char *const show_names[] = {NULL, "chat", "away", "xa", "dnd"};

const char *hearth_show_name(hearth_show_t show)
{
    return (unsigned)show < sizeof(show_names) / sizeof(show_names[0]) ? show_names[show] : NULL;
}

hearth_show_t hearth_show_parse(const char *s)
{
    for (unsigned i = 1; s && i < sizeof(show_names) / sizeof(show_names[0]); i++)
        if (!strcmp(s, show_names[i]))
            return (hearth_show_t)i;
    return HEARTH_SHOW_NONE;
}

static bool gone(const hearth_presence_t *p)
{
    return p->c->free_pending;
}

/* ---- stanzas of our own ---- */

static hearth_stanza_t *build_own(hearth_presence_t *p, const char *to)
{
    hearth_stanza_t *st = hearth_stanza_new_presence(to, NULL);
    if (!st)
        return NULL;
    const char *show = hearth_show_name(p->show);
    char prio[8];
    snprintf(prio, sizeof prio, "%d", p->priority);
    if ((show && hearth_stanza_add_text_child(st, "show", show)) ||
        (p->status && hearth_stanza_add_text_child(st, "status", p->status)) ||
        (p->priority && hearth_stanza_add_text_child(st, "priority", prio))) {
        hearth_stanza_unref(st);
        return NULL;
    }
    return st;
}

static hearth_stanza_t *build_unavailable(const char *to, const char *status)
{
    hearth_stanza_t *st = hearth_stanza_new_presence(to, "unavailable");
    if (st && status && hearth_stanza_add_text_child(st, "status", status)) {
        hearth_stanza_unref(st);
        return NULL;
    }
    return st;
}

/* What a new session begins with (called by the core after the online event). */
static hearth_stanza_t *initial_presence(void *ud)
{
    hearth_presence_t *p = ud;
    switch (p->own) {
    case OWN_AVAILABLE:
        return build_own(p, NULL);
    case OWN_UNSET:
        return p->client_initial ? hearth_stanza_new_presence(NULL, NULL) : NULL;
    default:
        return NULL;
    }
}

static void update_mine(hearth_presence_t *p)
{
    const char *full = hearth_client_jid(p->c);
    p->mine.jid = full ? full : hearth_client_bare_jid(p->c);
    p->mine.bare = hearth_client_bare_jid(p->c);
    const char *slash = full ? strchr(full, '/') : NULL;
    p->mine.resource = slash ? slash + 1 : NULL;
    p->mine.available = p->own == OWN_AVAILABLE || (p->own == OWN_UNSET && p->client_initial);
    p->mine.show = p->own == OWN_AVAILABLE ? p->show : HEARTH_SHOW_NONE;
    p->mine.status = p->own != OWN_UNSET ? p->status : NULL;
    p->mine.priority = p->own == OWN_AVAILABLE ? p->priority : 0;
}

static int send_if_online(hearth_presence_t *p, hearth_stanza_t *st)
{
    if (!st)
        return HEARTH_ENOMEM;
    if (hearth_client_state(p->c) != HEARTH_CLIENT_ONLINE) {
        hearth_stanza_unref(st);
        return 0;
    }
    return hearth_client_send(p->c, st);
}

int hearth_presence_set(hearth_presence_t *p, hearth_show_t show, const char *status, int priority)
{
    if (priority < -128 || priority > 127 || (unsigned)show > HEARTH_SHOW_DND)
        return HEARTH_EINVAL;
    char *copy = status ? ctx__strdup(p->c->ctx, status) : NULL;
    if (status && !copy)
        return HEARTH_ENOMEM;
    ctx__free(p->c->ctx, p->status);
    p->status = copy;
    p->show = show;
    p->priority = priority;
    p->own = OWN_AVAILABLE;
    update_mine(p);
    return send_if_online(p, build_own(p, NULL));
}

int hearth_presence_set_unavailable(hearth_presence_t *p, const char *status)
{
    char *copy = status ? ctx__strdup(p->c->ctx, status) : NULL;
    if (status && !copy)
        return HEARTH_ENOMEM;
    ctx__free(p->c->ctx, p->status);
    p->status = copy;
    p->own = OWN_UNAVAILABLE;
    update_mine(p);
    return send_if_online(p, build_unavailable(NULL, status));
}

const hearth_presence_info_t *hearth_presence_mine(const hearth_presence_t *p)
{
    update_mine((hearth_presence_t *)p);
    return &p->mine;
}

static int check_jid(const char *jid, hearth_jid_t *out)
{
    if (!jid || hearth_jid_parse(jid, strlen(jid), out, NULL) != 0)
        return HEARTH_EINVAL;
    return 0;
}

int hearth_presence_send_to(hearth_presence_t *p, const char *to, int available)
{
    hearth_jid_t j;
    if (check_jid(to, &j))
        return HEARTH_EINVAL;
    hearth_stanza_t *st = available ? build_own(p, j.full) : build_unavailable(j.full, NULL);
    hearth_jid_clear(&j);
    return st ? hearth_client_send(p->c, st) : HEARTH_ENOMEM;
}

/* ---- subscriptions ---- */

static int send_subscription(hearth_presence_t *p, const char *jid, const char *type,
                             const char *status)
{
    hearth_jid_t j;
    if (check_jid(jid, &j))
        return HEARTH_EINVAL;
    /* Subscriptions are between accounts (RFC 6121 §3.1.1): to the bare JID. */
    hearth_stanza_t *st = hearth_stanza_new_presence(j.bare, type);
    hearth_jid_clear(&j);
    if (st && status && hearth_stanza_add_text_child(st, "status", status)) {
        hearth_stanza_unref(st);
        st = NULL;
    }
    return st ? hearth_client_send(p->c, st) : HEARTH_ENOMEM;
}

static void request_drop(hearth_presence_t *p, const char *jid)
{
    hearth_jid_t j;
    if (check_jid(jid, &j))
        return;
    for (size_t i = 0; i < p->nrequests; i++) {
        if (!strcmp(p->requests[i].jid, j.bare)) {
            ctx__free(p->c->ctx, p->requests[i].jid);
            ctx__free(p->c->ctx, p->requests[i].status);
            memmove(p->requests + i, p->requests + i + 1,
                    (p->nrequests - i - 1) * sizeof(*p->requests));
            p->nrequests--;
            break;
        }
    }
    hearth_jid_clear(&j);
}

int hearth_presence_subscribe(hearth_presence_t *p, const char *jid, const char *status)
{
    return send_subscription(p, jid, "subscribe", status);
}

int hearth_presence_approve(hearth_presence_t *p, const char *jid)
{
    int rc = send_subscription(p, jid, "subscribed", NULL);
    if (rc == 0)
        request_drop(p, jid);
    return rc;
}

int hearth_presence_deny(hearth_presence_t *p, const char *jid)
{
    int rc = send_subscription(p, jid, "unsubscribed", NULL);
    if (rc == 0)
        request_drop(p, jid);
    return rc;
}

int hearth_presence_unsubscribe(hearth_presence_t *p, const char *jid)
{
    return send_subscription(p, jid, "unsubscribe", NULL);
}

size_t hearth_presence_request_count(const hearth_presence_t *p)
{
    return p->nrequests;
}

const char *hearth_presence_request_at(const hearth_presence_t *p, size_t i, const char **status)
{
    if (i >= p->nrequests)
        return NULL;
    if (status)
        *status = p->requests[i].status;
    return p->requests[i].jid;
}

/* ---- the cache ---- */

static size_t contact_pos(const hearth_presence_t *p, const char *bare, bool *found)
{
    size_t lo = 0, hi = p->ncontacts;
    *found = false;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(p->contacts[mid].bare, bare);
        if (cmp == 0) {
            *found = true;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static contact_t *contact_find(const hearth_presence_t *p, const char *jid)
{
    hearth_jid_t j;
    if (check_jid(jid, &j))
        return NULL;
    bool found;
    size_t pos = contact_pos(p, j.bare, &found);
    hearth_jid_clear(&j);
    return found ? &p->contacts[pos] : NULL;
}

static res_t *res_new(hearth_presence_t *p, const hearth_jid_t *j, hearth_show_t show,
                      const char *status, size_t status_len, int priority)
{
    size_t full = strlen(j->full) + 1, bare = strlen(j->bare) + 1;
    res_t *r = ctx__alloc(p->c->ctx, sizeof(*r) + full + bare + (status ? status_len + 1 : 0));
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    char *s = (char *)(r + 1);
    r->pub.jid = memcpy(s, j->full, full);
    r->pub.resource = j->resource ? r->pub.jid + bare : NULL;
    s += full;
    r->pub.bare = memcpy(s, j->bare, bare);
    s += bare;
    if (status) {
        memcpy(s, status, status_len);
        s[status_len] = '\0';
        r->pub.status = s;
    }
    r->pub.available = 1;
    r->pub.show = show;
    r->pub.priority = priority;
    r->seq = ++p->seq;
    return r;
}

static void contact_drop_at(hearth_presence_t *p, size_t pos)
{
    ctx__free(p->c->ctx, p->contacts[pos].bare);
    ctx__free(p->c->ctx, p->contacts[pos].res);
    memmove(p->contacts + pos, p->contacts + pos + 1,
            (p->ncontacts - pos - 1) * sizeof(*p->contacts));
    p->ncontacts--;
}

/* Removes resource i of contact pos and reports it gone (st may be NULL). The contact goes
 * when its last resource does. Returns whether the contact is still there. */
static bool res_gone(hearth_presence_t *p, size_t pos, size_t i, hearth_stanza_t *st)
{
    contact_t *ct = &p->contacts[pos];
    res_t *r = ct->res[i];
    memmove(ct->res + i, ct->res + i + 1, (ct->n - i - 1) * sizeof(*ct->res));
    ct->n--;
    bool left = ct->n > 0;
    if (!left)
        contact_drop_at(p, pos);
    r->pub.available = 0;
    if (p->ev.changed && !gone(p))
        p->ev.changed(p->ud, p, &r->pub, st);
    ctx__free(p->c->ctx, r);
    return left;
}

/* Every cached presence of one contact (or all: bare NULL) reported gone. */
static void forget(hearth_presence_t *p, const char *bare, hearth_stanza_t *st)
{
    if (bare) {
        bool found;
        size_t pos = contact_pos(p, bare, &found);
        while (found && res_gone(p, pos, 0, st))
            ;
        return;
    }
    while (p->ncontacts)
        while (res_gone(p, 0, 0, st))
            ;
}

/* The character boundary at or before max bytes of UTF-8 s. */
static size_t cut_utf8(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    return max;
}

static int parse_priority(const char *s)
{
    if (!s)
        return 0;
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < -128 || v > 127)
        return 0;
    return (int)v;
}

static void on_available(hearth_presence_t *p, const hearth_jid_t *j, hearth_stanza_t *st)
{
    hearth_show_t show = hearth_show_parse(hearth_stanza_child_text(st, "show"));
    const char *status = hearth_stanza_child_text(st, "status");
    size_t status_len = status ? cut_utf8(status, strlen(status), HEARTH_PRESENCE_STATUS_MAX) : 0;
    int priority = parse_priority(hearth_stanza_child_text(st, "priority"));
    res_t *r = res_new(p, j, show, status, status_len, priority);
    if (!r)
        return;
    bool found;
    size_t pos = contact_pos(p, j->bare, &found);
    if (!found && p->ncontacts >= p->cfg.max_contacts)
        goto uncached;
    if (!found) {
        if (p->ncontacts == p->cap) {
            size_t cap = p->cap ? p->cap * 2 : 16;
            contact_t *cs = ctx__realloc(p->c->ctx, p->contacts, cap * sizeof(*cs));
            if (!cs)
                goto uncached;
            p->contacts = cs;
            p->cap = cap;
        }
        char *bare = ctx__strdup(p->c->ctx, j->bare);
        if (!bare)
            goto uncached;
        memmove(p->contacts + pos + 1, p->contacts + pos,
                (p->ncontacts - pos) * sizeof(*p->contacts));
        p->contacts[pos] = (contact_t){.bare = bare};
        p->ncontacts++;
    }
    contact_t *ct = &p->contacts[pos];
    size_t i = 0;
    while (i < ct->n && strcmp(ct->res[i]->pub.jid, j->full) != 0)
        i++;
    if (i < ct->n) {
        /* A new presence of a known resource: the latest in arrival order. */
        ctx__free(p->c->ctx, ct->res[i]);
        memmove(ct->res + i, ct->res + i + 1, (ct->n - i - 1) * sizeof(*ct->res));
        ct->n--;
    } else if (ct->n >= p->cfg.max_resources) {
        if (!ct->n)
            contact_drop_at(p, pos);
        goto uncached;
    }
    res_t **rs = ctx__realloc(p->c->ctx, ct->res, (ct->n + 1) * sizeof(*rs));
    if (!rs) {
        if (!ct->n)
            contact_drop_at(p, pos);
        goto uncached;
    }
    ct->res = rs;
    ct->res[ct->n++] = r;
    if (p->ev.changed)
        p->ev.changed(p->ud, p, &r->pub, st);
    return;
uncached:
    p->dropped++;
    if (p->ev.changed)
        p->ev.changed(p->ud, p, &r->pub, st);
    ctx__free(p->c->ctx, r);
}

static void on_unavailable(hearth_presence_t *p, const hearth_jid_t *j, hearth_stanza_t *st)
{
    bool found;
    size_t pos = contact_pos(p, j->bare, &found);
    if (!found)
        return;
    if (!j->resource) {
        /* From the bare JID: no resource of it is available any more. */
        forget(p, j->bare, st);
        return;
    }
    contact_t *ct = &p->contacts[pos];
    for (size_t i = 0; i < ct->n; i++)
        if (!strcmp(ct->res[i]->pub.jid, j->full)) {
            res_gone(p, pos, i, st);
            return;
        }
}

static void on_subscribe(hearth_presence_t *p, const hearth_jid_t *j, hearth_stanza_t *st)
{
    const char *status = hearth_stanza_child_text(st, "status");
    switch (p->cfg.subscription_mode) {
    case HEARTH_SUBSCRIBE_ACCEPT_ALL:
        (void)send_subscription(p, j->bare, "subscribed", NULL);
        break;
    case HEARTH_SUBSCRIBE_REJECT_ALL:
        (void)send_subscription(p, j->bare, "unsubscribed", NULL);
        break;
    default: {
        bool listed = false;
        for (size_t i = 0; i < p->nrequests && !listed; i++)
            listed = !strcmp(p->requests[i].jid, j->bare);
        if (listed || p->nrequests >= p->cfg.max_requests)
            break;
        request_t *rq = ctx__realloc(p->c->ctx, p->requests, (p->nrequests + 1) * sizeof(*rq));
        if (!rq)
            break;
        p->requests = rq;
        char *jid = ctx__strdup(p->c->ctx, j->bare);
        char *copy = status ? ctx__strdup(p->c->ctx, status) : NULL;
        if (!jid || (status && !copy)) {
            ctx__free(p->c->ctx, jid);
            ctx__free(p->c->ctx, copy);
            break;
        }
        p->requests[p->nrequests++] = (request_t){.jid = jid, .status = copy};
        break;
    }
    }
    if (p->ev.subscribe_request)
        p->ev.subscribe_request(p->ud, p, j->bare, status);
}

static int on_presence(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    hearth_presence_t *p = ud;
    const char *from = hearth_stanza_from(st);
    hearth_jid_t j;
    /* A presence without from comes from our own account (RFC 6120 §8.1.2.1). */
    if (!from)
        from = hearth_client_bare_jid(c);
    if (hearth_jid_parse(from, strlen(from), &j, NULL) != 0)
        return 0;
    const char *type = hearth_stanza_type(st);
    if (!type)
        on_available(p, &j, st);
    else if (!strcmp(type, "unavailable"))
        on_unavailable(p, &j, st);
    else if (!strcmp(type, "subscribe"))
        on_subscribe(p, &j, st);
    else if (!strcmp(type, "subscribed") || !strcmp(type, "unsubscribed") ||
             !strcmp(type, "unsubscribe")) {
        hearth_subscription_change_t ch = !strcmp(type, "subscribed") ? HEARTH_SUBSCRIPTION_APPROVED
                                          : !strcmp(type, "unsubscribed")
                                              ? HEARTH_SUBSCRIPTION_DENIED
                                              : HEARTH_SUBSCRIPTION_UNSUBSCRIBED;
        if (p->ev.subscription)
            p->ev.subscription(p->ud, p, j.bare, ch);
    } else if (!strcmp(type, "error")) {
        const char *text;
        hearth_stanza_error_t cond = hearth_stanza_error(st, &text);
        forget(p, j.bare, st);
        if (p->ev.error && !gone(p))
            p->ev.error(p->ud, p, j.full, cond, text);
    }
    /* probe and unknown types: the server's business (RFC 6121 §4.3). */
    hearth_jid_clear(&j);
    return 0;
}

/* ---- the client's events ---- */

static void on_online(void *ud, hearth_client_t *c, const char *jid, int resumed)
{
    (void)c;
    (void)jid;
    hearth_presence_t *p = ud;
    if (resumed)
        return;
    /* A new session: the server sends every contact's presence again, and any request that
     * still waits. */
    forget(p, NULL, NULL);
    for (size_t i = 0; i < p->nrequests; i++) {
        ctx__free(p->c->ctx, p->requests[i].jid);
        ctx__free(p->c->ctx, p->requests[i].status);
    }
    p->nrequests = 0;
}

static void on_disconnected(void *ud, hearth_client_t *c, const hearth_disconnect_info_t *info)
{
    (void)c;
    hearth_presence_t *p = ud;
    if (!info->will_reconnect)
        forget(p, NULL, NULL);
}

/* ---- reading the cache ---- */

static int show_rank(hearth_show_t s)
{
    switch (s) {
    case HEARTH_SHOW_CHAT:
        return 4;
    case HEARTH_SHOW_NONE:
        return 3;
    case HEARTH_SHOW_AWAY:
        return 2;
    case HEARTH_SHOW_XA:
        return 1;
    default:
        return 0;
    }
}

const hearth_presence_info_t *hearth_presence_best(const hearth_presence_t *p, const char *jid)
{
    contact_t *ct = contact_find(p, jid);
    res_t *best = NULL;
    for (size_t i = 0; ct && i < ct->n; i++) {
        res_t *r = ct->res[i];
        if (!best || r->pub.priority > best->pub.priority ||
            (r->pub.priority == best->pub.priority &&
             (show_rank(r->pub.show) > show_rank(best->pub.show) ||
              (show_rank(r->pub.show) == show_rank(best->pub.show) && r->seq > best->seq))))
            best = r;
    }
    return best ? &best->pub : NULL;
}

size_t hearth_presence_resource_count(const hearth_presence_t *p, const char *jid)
{
    contact_t *ct = contact_find(p, jid);
    return ct ? ct->n : 0;
}

const hearth_presence_info_t *hearth_presence_resource_at(const hearth_presence_t *p,
                                                          const char *jid, size_t i)
{
    contact_t *ct = contact_find(p, jid);
    return ct && i < ct->n ? &ct->res[i]->pub : NULL;
}

unsigned long hearth_presence_dropped(const hearth_presence_t *p)
{
    return p->dropped;
}

/* ---- life ---- */

static void destroy(hearth_presence_t *p)
{
    hearth_ctx_t *ctx = p->c->ctx;
    for (size_t i = 0; i < p->ncontacts; i++) {
        for (size_t k = 0; k < p->contacts[i].n; k++)
            ctx__free(ctx, p->contacts[i].res[k]);
        ctx__free(ctx, p->contacts[i].res);
        ctx__free(ctx, p->contacts[i].bare);
    }
    ctx__free(ctx, p->contacts);
    for (size_t i = 0; i < p->nrequests; i++) {
        ctx__free(ctx, p->requests[i].jid);
        ctx__free(ctx, p->requests[i].status);
    }
    ctx__free(ctx, p->requests);
    ctx__free(ctx, p->status);
    ctx__free(ctx, p);
}

static void slot_free(void *mgr)
{
    destroy(mgr);
}

int hearth_presence_new(hearth_client_t *c, const hearth_presence_config_t *cfg,
                        const hearth_presence_events_t *ev, void *ud, hearth_presence_t **out)
{
    *out = NULL;
    if (cfg && (unsigned)cfg->subscription_mode > HEARTH_SUBSCRIBE_REJECT_ALL)
        return HEARTH_EINVAL;
    if (hearth_client_slot(c, HEARTH_SLOT_PRESENCE))
        return HEARTH_EEXISTS;
    hearth_presence_t *p = ctx__calloc(c->ctx, sizeof(*p));
    if (!p)
        return HEARTH_ENOMEM;
    p->c = c;
    if (cfg)
        p->cfg = *cfg;
    if (!p->cfg.max_contacts)
        p->cfg.max_contacts = HEARTH_PRESENCE_MAX_CONTACTS;
    if (!p->cfg.max_resources)
        p->cfg.max_resources = HEARTH_PRESENCE_MAX_RESOURCES;
    if (!p->cfg.max_requests)
        p->cfg.max_requests = HEARTH_PRESENCE_MAX_REQUESTS;
    if (ev)
        p->ev = *ev;
    p->ud = ud;
    hearth_client_events_t lev = {.online = on_online, .disconnected = on_disconnected};
    hearth_filter_t f = {.kinds = HEARTH_STANZA_PRESENCE};
    int rc = hearth_client_add_listener(c, &lev, p, &p->listener_id);
    if (rc == 0) {
        rc = hearth_client_add_handler(c, &f, 0, on_presence, p, &p->handler_id);
        if (rc)
            (void)hearth_client_remove_listener(c, p->listener_id);
    }
    if (rc) {
        ctx__free(c->ctx, p);
        return rc;
    }
    (void)client__take_slot(c, HEARTH_SLOT_PRESENCE, p, slot_free);
    p->client_initial = c->initial_presence;
    c->initial_presence_fn = initial_presence;
    c->initial_presence_ud = p;
    update_mine(p);
    *out = p;
    return 0;
}

hearth_presence_t *hearth_presence_get(const hearth_client_t *c)
{
    return c->slot_free[HEARTH_SLOT_PRESENCE] == slot_free ? c->slots[HEARTH_SLOT_PRESENCE] : NULL;
}

void hearth_presence_free(hearth_presence_t *p)
{
    if (!p)
        return;
    hearth_client_t *c = p->c;
    (void)hearth_client_remove_handler(c, p->handler_id);
    (void)hearth_client_remove_listener(c, p->listener_id);
    c->initial_presence_fn = NULL;
    c->initial_presence_ud = NULL;
    client__release_slot(c, HEARTH_SLOT_PRESENCE);
    destroy(p);
}

hearth_client_t *hearth_presence_client(const hearth_presence_t *p)
{
    return p->c;
}
