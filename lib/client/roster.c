/* The roster manager (include/hearth/roster.h): the cache of the contact list, its XEP-0237
 * version, the fetch at each new session, roster pushes answered, and the change events.
 * Touches its client through the public API and, for its slot and its pending IQs, internal.h. */
#include <stdlib.h>
#include <string.h>

#include "hearth/jid.h"
#include "hearth/ns.h"
#include "hearth/roster.h"
#include "internal.h"

/* One contact: the public view first, its strings in the same allocation after it. */
typedef struct item {
    hearth_roster_item_t pub;
    size_t bytes;  /* counted against max_bytes */
    unsigned mark; /* the fetch that last listed it */
} item_t;

struct hearth_roster {
    hearth_client_t *c;
    hearth_roster_config_t cfg;
    hearth_roster_events_t ev;
    void *ud;
    unsigned listener_id, handler_id;
    item_t **items; /* sorted by jid */
    size_t n, cap, bytes;
    char *ver; /* NULL: none known */
    unsigned mark;
    bool loaded, truncated, fetching;
};

const char *hearth_subscription_name(hearth_subscription_t s)
{
    switch (s) {
    case HEARTH_SUB_NONE:
        return "none";
    case HEARTH_SUB_TO:
        return "to";
    case HEARTH_SUB_FROM:
        return "from";
    case HEARTH_SUB_BOTH:
        return "both";
    }
    return NULL;
}

/* ---- the cache ---- */

static size_t find_pos(const hearth_roster_t *r, const char *jid, bool *found)
{
    size_t lo = 0, hi = r->n;
    *found = false;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(r->items[mid]->pub.jid, jid);
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

/* A parsed <item/>, before it enters the cache (strings borrowed from the stanza). */
typedef struct parsed {
    const char *jid; /* prepared bare, owned by jid_mem */
    hearth_jid_t jid_mem;
    const char *name;
    hearth_subscription_t sub;
    bool remove;
    int ask, approved;
    const char *groups[64]; /* groups past 64 on one item are not kept (a bound of the view) */
    size_t ngroups;
} parsed_t;

/* Reads <item/>: 0, or HEARTH_EINVAL for an item that breaks RFC 6121 §2.1 (no or a bad jid,
 * an unknown subscription). */
static int parse_item(hearth_arena_t *a, const hearth_xml_node_t *el, parsed_t *p)
{
    memset(p, 0, sizeof(*p));
    const char *jid = hearth_xml_attr(el, "jid");
    if (!jid || hearth_jid_parse(jid, strlen(jid), &p->jid_mem, NULL) != 0)
        return HEARTH_EINVAL;
    if (p->jid_mem.resource) {
        hearth_jid_clear(&p->jid_mem);
        return HEARTH_EINVAL;
    }
    p->jid = p->jid_mem.bare;
    p->name = hearth_xml_attr(el, "name");
    if (p->name && !*p->name)
        p->name = NULL;
    const char *sub = hearth_xml_attr(el, "subscription");
    if (!sub || !strcmp(sub, "none"))
        p->sub = HEARTH_SUB_NONE;
    else if (!strcmp(sub, "to"))
        p->sub = HEARTH_SUB_TO;
    else if (!strcmp(sub, "from"))
        p->sub = HEARTH_SUB_FROM;
    else if (!strcmp(sub, "both"))
        p->sub = HEARTH_SUB_BOTH;
    else if (!strcmp(sub, "remove"))
        p->remove = true;
    else {
        hearth_jid_clear(&p->jid_mem);
        return HEARTH_EINVAL;
    }
    const char *ask = hearth_xml_attr(el, "ask");
    p->ask = ask && !strcmp(ask, "subscribe");
    const char *approved = hearth_xml_attr(el, "approved");
    p->approved = approved && (!strcmp(approved, "true") || !strcmp(approved, "1"));
    for (hearth_xml_node_t *g = hearth_xml_first_element(el); g; g = hearth_xml_next_element(g)) {
        if (strcmp(g->name, "group") != 0 || strcmp(g->ns, HEARTH_NS_ROSTER) != 0)
            continue;
        const char *text = hearth_xml_text(a, g);
        if (!text || !*text || p->ngroups == sizeof(p->groups) / sizeof(p->groups[0]))
            continue;
        bool dup = false;
        for (size_t i = 0; i < p->ngroups && !dup; i++)
            dup = !strcmp(p->groups[i], text);
        if (!dup)
            p->groups[p->ngroups++] = text;
    }
    return 0;
}

static item_t *item_new(hearth_roster_t *r, const parsed_t *p)
{
    size_t strs = strlen(p->jid) + 1 + (p->name ? strlen(p->name) + 1 : 0);
    for (size_t i = 0; i < p->ngroups; i++)
        strs += strlen(p->groups[i]) + 1;
    size_t size = sizeof(item_t) + p->ngroups * sizeof(char *) + strs;
    item_t *it = ctx__alloc(r->c->ctx, size);
    if (!it)
        return NULL;
    memset(it, 0, sizeof(*it));
    it->bytes = size;
    it->mark = r->mark;
    const char **groups = (const char **)(it + 1);
    char *s = (char *)(groups + p->ngroups);
    size_t len = strlen(p->jid) + 1;
    it->pub.jid = memcpy(s, p->jid, len);
    s += len;
    if (p->name) {
        len = strlen(p->name) + 1;
        it->pub.name = memcpy(s, p->name, len);
        s += len;
    }
    for (size_t i = 0; i < p->ngroups; i++) {
        len = strlen(p->groups[i]) + 1;
        groups[i] = memcpy(s, p->groups[i], len);
        s += len;
    }
    it->pub.groups = p->ngroups ? groups : NULL;
    it->pub.ngroups = p->ngroups;
    it->pub.subscription = p->sub;
    it->pub.ask = p->ask;
    it->pub.approved = p->approved;
    return it;
}

static bool same_item(const hearth_roster_item_t *a, const hearth_roster_item_t *b)
{
    if (a->subscription != b->subscription || a->ask != b->ask || a->approved != b->approved ||
        a->ngroups != b->ngroups || (!a->name != !b->name) ||
        (a->name && strcmp(a->name, b->name) != 0))
        return false;
    for (size_t i = 0; i < a->ngroups; i++)
        if (strcmp(a->groups[i], b->groups[i]) != 0)
            return false;
    return true;
}

static bool gone(const hearth_roster_t *r)
{
    return r->c->free_pending;
}

/* Puts an item into the cache (or replaces the one of its JID), with its event. */
static int cache_put(hearth_roster_t *r, const parsed_t *p)
{
    bool found;
    size_t pos = find_pos(r, p->jid, &found);
    if (found && same_item(&r->items[pos]->pub, &(hearth_roster_item_t){
                                                    .name = p->name,
                                                    .subscription = p->sub,
                                                    .ask = p->ask,
                                                    .approved = p->approved,
                                                    .groups = p->groups,
                                                    .ngroups = p->ngroups,
                                                })) {
        r->items[pos]->mark = r->mark;
        return 0;
    }
    item_t *it = item_new(r, p);
    if (!it)
        return HEARTH_ENOMEM;
    size_t bytes = r->bytes - (found ? r->items[pos]->bytes : 0) + it->bytes;
    if ((!found && r->n >= r->cfg.max_items) || bytes > r->cfg.max_bytes) {
        ctx__free(r->c->ctx, it);
        if (!r->truncated)
            ctx__log(r->c->ctx, r->c, HEARTH_LOG_WARN, "roster: %s not cached (bound reached)",
                     p->jid);
        r->truncated = true;
        return HEARTH_ELIMIT;
    }
    if (found) {
        item_t *old = r->items[pos];
        r->items[pos] = it;
        r->bytes = bytes;
        if (r->ev.changed && !gone(r))
            r->ev.changed(r->ud, r, &it->pub, &old->pub);
        ctx__free(r->c->ctx, old);
        return 0;
    }
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        item_t **items = ctx__realloc(r->c->ctx, r->items, cap * sizeof(*items));
        if (!items) {
            ctx__free(r->c->ctx, it);
            return HEARTH_ENOMEM;
        }
        r->items = items;
        r->cap = cap;
    }
    memmove(r->items + pos + 1, r->items + pos, (r->n - pos) * sizeof(*r->items));
    r->items[pos] = it;
    r->n++;
    r->bytes = bytes;
    if (r->ev.added && !gone(r))
        r->ev.added(r->ud, r, &it->pub);
    return 0;
}

static void cache_remove_at(hearth_roster_t *r, size_t pos)
{
    item_t *it = r->items[pos];
    memmove(r->items + pos, r->items + pos + 1, (r->n - pos - 1) * sizeof(*r->items));
    r->n--;
    r->bytes -= it->bytes;
    if (r->ev.removed && !gone(r))
        r->ev.removed(r->ud, r, &it->pub);
    ctx__free(r->c->ctx, it);
}

static void set_ver(hearth_roster_t *r, const char *ver)
{
    /* A version names the whole roster: a cache with items missing is at no version. */
    char *copy = ver && !r->truncated ? ctx__strdup(r->c->ctx, ver) : NULL;
    ctx__free(r->c->ctx, r->ver);
    r->ver = copy;
}

/* ---- fetching ---- */

static void fetched(void *ud, hearth_client_t *c, int result, hearth_stanza_t *resp)
{
    hearth_roster_t *r = ud;
    r->fetching = false;
    if (result != 0) {
        ctx__log(c->ctx, c, HEARTH_LOG_WARN, "roster fetch: %s", hearth_strerror(result));
        if (r->ev.loaded)
            r->ev.loaded(r->ud, r, result);
        return;
    }
    hearth_xml_node_t *q = hearth_stanza_child(resp, "query", HEARTH_NS_ROSTER);
    if (q) {
        /* The whole roster: what it does not list left the server's. */
        r->truncated = false;
        r->mark++;
        for (hearth_xml_node_t *el = hearth_xml_first_element(q); el && !gone(r);
             el = hearth_xml_next_element(el)) {
            parsed_t p;
            if (strcmp(el->name, "item") != 0 || strcmp(el->ns, HEARTH_NS_ROSTER) != 0 ||
                parse_item(hearth_stanza_arena(resp), el, &p) != 0)
                continue;
            if (!p.remove)
                (void)cache_put(r, &p);
            hearth_jid_clear(&p.jid_mem);
        }
        for (size_t i = r->n; i-- > 0 && !gone(r);)
            if (r->items[i]->mark != r->mark)
                cache_remove_at(r, i);
        set_ver(r, hearth_xml_attr(q, "ver"));
    }
    /* An empty result: the cached version is current (XEP-0237 §2.3); pushes follow. */
    r->loaded = true;
    if (r->ev.loaded && !gone(r))
        r->ev.loaded(r->ud, r, 0);
}

int hearth_roster_fetch(hearth_roster_t *r)
{
    if (r->fetching)
        return 0;
    hearth_client_t *c = r->c;
    hearth_xml_node_t *q;
    hearth_stanza_t *iq = hearth_stanza_new_iq("get", NULL, "query", HEARTH_NS_ROSTER, &q);
    if (!iq)
        return HEARTH_ENOMEM;
    if (!r->cfg.no_versioning && hearth_client_stream_feature(c, "ver", HEARTH_NS_ROSTERVER)) {
        /* With nothing whole cached, ver='' asks for the roster and for versioning from now. */
        const char *ver = r->loaded && !r->truncated && r->ver ? r->ver : "";
        if (hearth_xml_set_attr(hearth_stanza_arena(iq), q, "ver", ver) != 0) {
            hearth_stanza_unref(iq);
            return HEARTH_ENOMEM;
        }
    }
    int rc = hearth_client_iq(c, iq, 0, fetched, r);
    if (rc == 0)
        r->fetching = true;
    return rc;
}

/* ---- pushes (RFC 6121 §2.1.6) ---- */

static void answer(hearth_client_t *c, hearth_stanza_t *st, hearth_stanza_error_t cond)
{
    hearth_stanza_t *reply =
        cond ? hearth_stanza_new_error(st, cond, NULL) : hearth_stanza_new_iq_result(st);
    if (reply)
        (void)hearth_client_send(c, reply);
}

static int on_push(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    hearth_roster_t *r = ud;
    /* Only the account's server speaks for its roster: a push from anyone else is not one (the
     * core answers it <service-unavailable/>, as for an unknown request). */
    const char *from = hearth_stanza_from(st);
    if (from) {
        hearth_jid_t j;
        if (hearth_jid_parse(from, strlen(from), &j, NULL) != 0)
            return 0;
        bool ours = !j.resource && !strcmp(j.bare, hearth_client_bare_jid(c));
        hearth_jid_clear(&j);
        if (!ours) {
            ctx__log(c->ctx, c, HEARTH_LOG_WARN, "roster push from %s ignored", from);
            return 0;
        }
    }
    hearth_xml_node_t *q = hearth_stanza_child(st, "query", HEARTH_NS_ROSTER);
    hearth_xml_node_t *el = hearth_xml_first_element(q);
    parsed_t p;
    if (!el || hearth_xml_count_elements(q) != 1 || strcmp(el->name, "item") != 0 ||
        parse_item(hearth_stanza_arena(st), el, &p) != 0) {
        answer(c, st, HEARTH_STANZA_ERR_BAD_REQUEST);
        return HEARTH_HANDLED;
    }
    answer(c, st, HEARTH_STANZA_ERR_NONE);
    if (p.remove) {
        bool found;
        size_t pos = find_pos(r, p.jid, &found);
        if (found)
            cache_remove_at(r, pos);
    } else {
        (void)cache_put(r, &p);
    }
    hearth_jid_clear(&p.jid_mem);
    if (!gone(r)) {
        const char *ver = hearth_xml_attr(q, "ver");
        if (ver)
            set_ver(r, ver);
    }
    return HEARTH_HANDLED;
}

/* ---- the client's events ---- */

static void on_online(void *ud, hearth_client_t *c, const char *jid, int resumed)
{
    (void)c;
    (void)jid;
    hearth_roster_t *r = ud;
    /* A resumed session missed no push; a new one starts from the server's roster. A fetch of
     * the old session is answered to it no more (its callback reports ECLOSED). */
    if (!resumed && !r->cfg.no_fetch) {
        int rc = hearth_roster_fetch(r);
        if (rc)
            ctx__log(r->c->ctx, r->c, HEARTH_LOG_WARN, "roster fetch not sent: %s",
                     hearth_strerror(rc));
    }
}

/* ---- life ---- */

static void destroy(hearth_roster_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        ctx__free(r->c->ctx, r->items[i]);
    ctx__free(r->c->ctx, r->items);
    ctx__free(r->c->ctx, r->ver);
    ctx__free(r->c->ctx, r);
}

/* The client is being destroyed: its handlers and listeners go with it. */
static void slot_free(void *mgr)
{
    hearth_roster_t *r = mgr;
    dispatch__drop_iqs(r->c, fetched, NULL);
    destroy(r);
}

int hearth_roster_new(hearth_client_t *c, const hearth_roster_config_t *cfg,
                      const hearth_roster_events_t *ev, void *ud, hearth_roster_t **out)
{
    *out = NULL;
    if (hearth_client_slot(c, HEARTH_SLOT_ROSTER))
        return HEARTH_EEXISTS;
    hearth_roster_t *r = ctx__calloc(c->ctx, sizeof(*r));
    if (!r)
        return HEARTH_ENOMEM;
    r->c = c;
    if (cfg)
        r->cfg = *cfg;
    if (!r->cfg.max_items)
        r->cfg.max_items = HEARTH_ROSTER_MAX_ITEMS;
    if (!r->cfg.max_bytes)
        r->cfg.max_bytes = HEARTH_ROSTER_MAX_BYTES;
    if (ev)
        r->ev = *ev;
    r->ud = ud;
    hearth_client_events_t lev = {.online = on_online};
    hearth_filter_t f = {
        .kinds = HEARTH_STANZA_IQ, .type = "set", .ns = HEARTH_NS_ROSTER, .name = "query"};
    int rc = hearth_client_add_listener(c, &lev, r, &r->listener_id);
    if (rc == 0) {
        rc = hearth_client_add_handler(c, &f, 0, on_push, r, &r->handler_id);
        if (rc)
            (void)hearth_client_remove_listener(c, r->listener_id);
    }
    if (rc) {
        ctx__free(c->ctx, r);
        return rc;
    }
    (void)client__take_slot(c, HEARTH_SLOT_ROSTER, r, slot_free);
    if (c->state == HEARTH_CLIENT_ONLINE && !r->cfg.no_fetch)
        (void)hearth_roster_fetch(r);
    *out = r;
    return 0;
}

hearth_roster_t *hearth_roster_get(const hearth_client_t *c)
{
    return c->slot_free[HEARTH_SLOT_ROSTER] == slot_free ? c->slots[HEARTH_SLOT_ROSTER] : NULL;
}

void hearth_roster_free(hearth_roster_t *r)
{
    if (!r)
        return;
    hearth_client_t *c = r->c;
    dispatch__drop_iqs(c, fetched, NULL);
    (void)hearth_client_remove_handler(c, r->handler_id);
    (void)hearth_client_remove_listener(c, r->listener_id);
    client__release_slot(c, HEARTH_SLOT_ROSTER);
    destroy(r);
}

hearth_client_t *hearth_roster_client(const hearth_roster_t *r)
{
    return r->c;
}

/* ---- changing the roster ---- */

static int prepared_bare(const char *jid, hearth_jid_t *out)
{
    if (!jid || hearth_jid_parse(jid, strlen(jid), out, NULL) != 0)
        return HEARTH_EINVAL;
    if (out->resource) {
        hearth_jid_clear(out);
        return HEARTH_EINVAL;
    }
    return 0;
}

int hearth_roster_set(hearth_roster_t *r, const char *jid, const char *name,
                      const char *const *groups, size_t ngroups, hearth_iq_fn cb, void *ud)
{
    hearth_jid_t j;
    if (prepared_bare(jid, &j) != 0 || (ngroups && !groups))
        return HEARTH_EINVAL;
    hearth_xml_node_t *q, *item;
    hearth_stanza_t *iq = hearth_stanza_new_iq("set", NULL, "query", HEARTH_NS_ROSTER, &q);
    hearth_arena_t *a = iq ? hearth_stanza_arena(iq) : NULL;
    int rc = HEARTH_ENOMEM;
    if (!iq || !(item = hearth_xml_add_child(a, q, "item", NULL)) ||
        hearth_xml_set_attr(a, item, "jid", j.bare) ||
        hearth_xml_set_attr(a, item, "name", name && *name ? name : NULL))
        goto out;
    for (size_t i = 0; i < ngroups; i++) {
        hearth_xml_node_t *g = hearth_xml_add_child(a, item, "group", NULL);
        if (!groups[i] || !*groups[i]) {
            rc = HEARTH_EINVAL;
            goto out;
        }
        if (!g || !hearth_xml_add_text(a, g, groups[i], strlen(groups[i])))
            goto out;
    }
    hearth_jid_clear(&j);
    return hearth_client_iq(r->c, iq, 0, cb, ud);
out:
    hearth_jid_clear(&j);
    hearth_stanza_unref(iq);
    return rc;
}

int hearth_roster_remove(hearth_roster_t *r, const char *jid, hearth_iq_fn cb, void *ud)
{
    hearth_jid_t j;
    if (prepared_bare(jid, &j) != 0)
        return HEARTH_EINVAL;
    hearth_xml_node_t *q, *item;
    hearth_stanza_t *iq = hearth_stanza_new_iq("set", NULL, "query", HEARTH_NS_ROSTER, &q);
    hearth_arena_t *a = iq ? hearth_stanza_arena(iq) : NULL;
    if (!iq || !(item = hearth_xml_add_child(a, q, "item", NULL)) ||
        hearth_xml_set_attr(a, item, "jid", j.bare) ||
        hearth_xml_set_attr(a, item, "subscription", "remove")) {
        hearth_jid_clear(&j);
        hearth_stanza_unref(iq);
        return HEARTH_ENOMEM;
    }
    hearth_jid_clear(&j);
    return hearth_client_iq(r->c, iq, 0, cb, ud);
}

/* ---- reading the cache ---- */

size_t hearth_roster_count(const hearth_roster_t *r)
{
    return r->n;
}

const hearth_roster_item_t *hearth_roster_item_at(const hearth_roster_t *r, size_t i)
{
    return i < r->n ? &r->items[i]->pub : NULL;
}

const hearth_roster_item_t *hearth_roster_find(const hearth_roster_t *r, const char *jid)
{
    hearth_jid_t j;
    if (!jid || hearth_jid_parse(jid, strlen(jid), &j, NULL) != 0)
        return NULL;
    bool found;
    size_t pos = find_pos(r, j.bare, &found);
    hearth_jid_clear(&j);
    return found ? &r->items[pos]->pub : NULL;
}

int hearth_roster_loaded(const hearth_roster_t *r)
{
    return r->loaded;
}

int hearth_roster_truncated(const hearth_roster_t *r)
{
    return r->truncated;
}

const char *hearth_roster_version(const hearth_roster_t *r)
{
    return r->ver;
}
