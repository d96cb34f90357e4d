/* Rosters (RFC 6121 §2) with versioning (XEP-0237): get, set and remove, limits on every
 * field, pushes to every interested resource. Versions are a per-user counter; each item
 * remembers the version of its last change, so a client that knows version N gets pushes of
 * only what changed since (unless something was removed since N: then the full roster). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/im.h"

static const char *sub_name(int s)
{
    switch (s) {
    case STORAGE_SUB_TO:
        return "to";
    case STORAGE_SUB_FROM:
        return "from";
    case STORAGE_SUB_BOTH:
        return "both";
    }
    return "none";
}

/* Overheads of <item jid='' name='' subscription='both' ask='subscribe' approved='true'>
 * </item> and of <group></group>, rounded up. */
#define ROSTER_ITEM_OVERHEAD 96
#define ROSTER_GROUP_OVERHEAD 16

size_t roster__item_size(const char *jid, const char *name, char *const *groups, size_t ngroups)
{
    size_t n = ROSTER_ITEM_OVERHEAD + hearth_buf_escaped_len(jid) +
               (name ? hearth_buf_escaped_len(name) : 0);
    for (size_t i = 0; i < ngroups; i++)
        n += ROSTER_GROUP_OVERHEAD + hearth_buf_escaped_len(groups[i]);
    return n;
}

static size_t item_size(const storage_roster_item_t *it)
{
    return roster__item_size(it->jid, it->name, it->groups, it->ngroups);
}

/* The size of u's roster result with the item for jid (if any) replaced by one of add bytes. */
static size_t size_with(const user_t *u, const char *jid, size_t add)
{
    size_t n = 128 + add; /* the <iq><query ver=''> around the items */
    STRMAP_FOREACH(&u->roster, e)
    {
        if (strcmp(e->key, jid))
            n += item_size(e->value);
    }
    return n;
}

int roster__fits(worker_t *w, const user_t *u, const char *jid, size_t item_bytes)
{
    const settings_t *s = &w->set;
    if (!strmap_get(&u->roster, jid) && u->roster.count >= s->roster_max_items)
        return 0;
    return size_with(u, jid, item_bytes) <= s->roster_max_size;
}

static void item_xml(hearth_arena_t *a, hearth_xml_node_t *q, const storage_roster_item_t *it,
                     int removed)
{
    hearth_xml_node_t *n = hearth_xml_add_child(a, q, "item", NULL);
    hearth_xml_set_attr(a, n, "jid", it->jid);
    if (removed) {
        hearth_xml_set_attr(a, n, "subscription", "remove");
        return;
    }
    if (it->name)
        hearth_xml_set_attr(a, n, "name", it->name);
    hearth_xml_set_attr(a, n, "subscription", sub_name(it->subscription));
    if (it->ask)
        hearth_xml_set_attr(a, n, "ask", "subscribe");
    if (it->approved)
        hearth_xml_set_attr(a, n, "approved", "true");
    for (size_t i = 0; i < it->ngroups; i++) {
        hearth_xml_node_t *g = hearth_xml_add_child(a, n, "group", NULL);
        hearth_xml_add_text(a, g, it->groups[i], strlen(it->groups[i]));
    }
}

/* Per session: it asked for the roster, so it gets pushes (the slot holds (void *)1). */
static int interest_slot = -1;

static void push(worker_t *w, user_t *u, const storage_roster_item_t *it, int removed)
{
    hearth_arena_t *a = hearth_arena_new(0);
    if (!a)
        return;
    static unsigned long long seq;
    char id[32], ver[32];
    snprintf(id, sizeof(id), "push-%llu", __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
    snprintf(ver, sizeof(ver), "%lld", (long long)u->roster_ver);
    hearth_xml_node_t *iq = hearth_xml_new(a, "iq", HEARTH_NS_CLIENT);
    hearth_xml_set_attr(a, iq, "type", "set");
    hearth_xml_set_attr(a, iq, "id", id);
    hearth_xml_node_t *q = hearth_xml_add_child(a, iq, "query", HEARTH_NS_ROSTER);
    hearth_xml_set_attr(a, q, "ver", ver);
    item_xml(a, q, it, removed);
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(iq, HEARTH_NS_CLIENT, &b) == 0) {
        hearth_bytes_t *bytes = hearth_bytes_new(b.data, b.len);
        for (session_t *s = u->sessions; bytes && s; s = s->user_next)
            if (s->slot[interest_slot])
                session__send_addressed(s, bytes, s->jid.full);
        hearth_bytes_unref(bytes);
    }
    hearth_buf_free(&b);
    hearth_arena_free(a);
}

void roster__changed(worker_t *w, user_t *u, storage_roster_item_t *it)
{
    it->ver = ++u->roster_ver;
    if (strmap_get(&u->roster, it->jid) != it)
        strmap_put(&u->roster, it->jid, it);
    if (storage_roster_put(w->srv->storage, &w->storage_target, u->node, it, it->ver,
                           user__write_done, NULL))
        hlog(LOG_ERROR, "roster of %s: storage refused the write", u->bare);
    push(w, u, it, 0);
}

void roster__removed(worker_t *w, user_t *u, const char *jid)
{
    storage_roster_item_t *it = strmap_remove(&u->roster, jid);
    if (!it)
        return;
    u->roster_deleted_ver = ++u->roster_ver;
    if (storage_roster_delete(w->srv->storage, &w->storage_target, u->node, it->jid, u->roster_ver,
                              user__write_done, NULL))
        hlog(LOG_ERROR, "roster of %s: storage refused the removal", u->bare);
    push(w, u, it, 1);
    user__roster_item_free(it);
}

static int by_ver(const void *a, const void *b)
{
    const storage_roster_item_t *x = *(storage_roster_item_t *const *)a;
    const storage_roster_item_t *y = *(storage_roster_item_t *const *)b;
    return x->ver < y->ver ? -1 : x->ver > y->ver;
}

static int by_jid(const void *a, const void *b)
{
    const storage_roster_item_t *x = *(storage_roster_item_t *const *)a;
    const storage_roster_item_t *y = *(storage_roster_item_t *const *)b;
    return strcmp(x->jid, y->jid);
}

/* The user's items, sorted; caller frees the array. */
static storage_roster_item_t **items(user_t *u, int (*cmp)(const void *, const void *))
{
    storage_roster_item_t **v = calloc(u->roster.count + 1, sizeof(*v));
    size_t n = 0;
    if (!v)
        return NULL;
    STRMAP_FOREACH(&u->roster, e)
    {
        v[n++] = e->value;
    }
    qsort(v, n, sizeof(*v), cmp);
    return v;
}

static int parse_ver(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || v < 0)
        return -1;
    *out = v;
    return 0;
}

static void roster_get(iq_ctx_t *ctx, user_t *u)
{
    session_t *c = ctx->s;
    hearth_arena_t *a = ctx->arena;
    c->slot[interest_slot] = (void *)1;
    const char *cv = hearth_xml_attr(ctx->payload, "ver");
    int64_t known;
    if (cv && parse_ver(cv, &known) == 0 && known <= u->roster_ver &&
        (known == u->roster_ver || known >= u->roster_deleted_ver)) {
        /* RFC 6121 §2.6.3: an empty result, then a push for each item changed since. */
        iq_send(ctx, iq_result(ctx));
        storage_roster_item_t **v = items(u, by_ver);
        for (size_t i = 0; v && i < u->roster.count; i++) {
            if (v[i]->ver <= known)
                continue;
            hearth_xml_node_t *iq = hearth_xml_new(a, "iq", HEARTH_NS_CLIENT);
            char id[48], ver[32];
            snprintf(id, sizeof(id), "push-ver-%lld", (long long)v[i]->ver);
            snprintf(ver, sizeof(ver), "%lld", (long long)v[i]->ver);
            hearth_xml_set_attr(a, iq, "type", "set");
            hearth_xml_set_attr(a, iq, "id", id);
            hearth_xml_set_attr(a, iq, "to", c->jid.full);
            hearth_xml_node_t *q = hearth_xml_add_child(a, iq, "query", HEARTH_NS_ROSTER);
            hearth_xml_set_attr(a, q, "ver", ver);
            item_xml(a, q, v[i], 0);
            session__send_node(c, iq);
        }
        free(v);
        return;
    }
    size_t size = size_with(u, "", 0);
    if (size > SESSION_OUTPUT_MAX / 2) {
        /* Only a roster stored under older, larger limits: it cannot go out whole without
         * passing the output bound, which would end the session at every login. */
        hlog_conn(LOG_WARN, c->id, c->jid.full, "roster of %zu bytes not sent", size);
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                 "the roster is too large to send; remove contacts");
        return;
    }
    hearth_xml_node_t *r = iq_result(ctx);
    hearth_xml_node_t *q = hearth_xml_add_child(a, r, "query", HEARTH_NS_ROSTER);
    char ver[32];
    snprintf(ver, sizeof(ver), "%lld", (long long)u->roster_ver);
    hearth_xml_set_attr(a, q, "ver", ver);
    storage_roster_item_t **v = items(u, by_jid);
    for (size_t i = 0; v && i < u->roster.count; i++)
        item_xml(a, q, v[i], 0);
    free(v);
    iq_send(ctx, r);
}

static void roster_set(iq_ctx_t *ctx, user_t *u)
{
    worker_t *w = ctx->s->w;
    hearth_arena_t *a = ctx->arena;
    hearth_xml_node_t *item = hearth_xml_first_element(ctx->payload);
    if (!item || strcmp(item->name, "item") || strcmp(item->ns, HEARTH_NS_ROSTER) ||
        hearth_xml_next_element(item)) {
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "a roster set has exactly one item");
        return;
    }
    const char *js = hearth_xml_attr(item, "jid");
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *reason = "missing jid";
    if (!js || hearth_jid_parse(js, strlen(js), &j, &reason)) {
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, reason);
        return;
    }
    if (j.resource) {
        hearth_jid_clear(&j);
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "a roster item is a bare JID");
        return;
    }
    char *jid = hearth_arena_strdup(a, j.bare);
    hearth_jid_clear(&j);
    if (!strcmp(jid, u->bare)) {
        iq_error(ctx, HEARTH_STANZA_ERR_NOT_ALLOWED, "your own JID is not a contact");
        return;
    }
    storage_roster_item_t *it = strmap_get(&u->roster, jid);
    const char *sub = hearth_xml_attr(item, "subscription");
    if (sub && !strcmp(sub, "remove")) {
        if (!it) {
            iq_error(ctx, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL);
            return;
        }
        /* RFC 6121 §2.5.2: the subscriptions both ways end with the item. */
        if (user__sub_to(it) || it->ask)
            presence__send_sub(w, u, jid, "unsubscribe");
        if (user__sub_from(it) || strmap_get(&u->requests, jid))
            presence__send_sub(w, u, jid, "unsubscribed");
        if (user__sub_from(it))
            presence__send_unavailable_to(w, u, jid);
        presence__drop_request(w, u, jid);
        iq_send(ctx, iq_result(ctx));
        roster__removed(w, u, jid);
        return;
    }
    const char *name = hearth_xml_attr(item, "name");
    if (name && strlen(name) > ROSTER_NAME_MAX) {
        iq_error(ctx, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "name too long");
        return;
    }
    size_t ng = 0;
    for (hearth_xml_node_t *g = hearth_xml_first_element(item); g; g = hearth_xml_next_element(g))
        if (!strcmp(g->name, "group"))
            ng++;
    if (ng > ROSTER_GROUPS_MAX) {
        iq_error(ctx, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "too many groups");
        return;
    }
    char **groups = hearth_arena_alloc(a, (ng + 1) * sizeof(char *));
    size_t k = 0;
    for (hearth_xml_node_t *g = hearth_xml_first_element(item); g; g = hearth_xml_next_element(g)) {
        if (strcmp(g->name, "group"))
            continue;
        char *t = hearth_xml_text(a, g);
        if (!*t || strlen(t) > ROSTER_GROUP_MAX) {
            iq_error(ctx, HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
                     *t ? "group name too long" : "empty group name");
            return;
        }
        for (size_t i = 0; i < k; i++) {
            if (!strcmp(groups[i], t)) {
                iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "duplicate group");
                return;
            }
        }
        groups[k++] = t;
    }
    /* Bounded by count and by the size of the roster result, so that the roster can always
     * be sent whole (within the output bound): a set that would pass either is refused. */
    if (!roster__fits(w, u, jid, roster__item_size(jid, name, groups, k))) {
        iq_error(ctx, HEARTH_STANZA_ERR_POLICY_VIOLATION,
                 !it && u->roster.count >= w->set.roster_max_items
                     ? "the roster is full"
                     : "the roster would be too large");
        return;
    }
    int created = 0;
    if (!it) {
        if (!(it = user__roster_item_new(jid))) {
            iq_error(ctx, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
            return;
        }
        created = 1;
    }
    char **ng_arr = calloc(k ? k : 1, sizeof(char *));
    char *nname = name && *name ? strdup(name) : NULL;
    if (!ng_arr || (name && *name && !nname)) {
        free(ng_arr);
        free(nname);
        if (created)
            user__roster_item_free(it);
        iq_error(ctx, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        return;
    }
    for (size_t i = 0; i < it->ngroups; i++)
        free(it->groups[i]);
    free(it->groups);
    free(it->name);
    it->groups = ng_arr;
    it->ngroups = 0;
    for (size_t i = 0; i < k; i++)
        if ((ng_arr[i] = strdup(groups[i])))
            it->ngroups++;
    it->name = nname;
    iq_send(ctx, iq_result(ctx));
    roster__changed(w, u, it);
}

static void roster_iq(iq_ctx_t *ctx)
{
    user_t *u = ctx->s->user;
    if (!u) {
        iq_error(ctx, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        return;
    }
    if (ctx->set)
        roster_set(ctx, u);
    else
        roster_get(ctx, u);
}

static const iq_route_t roster_iqs[] = {
    {HEARTH_NS_ROSTER, "query", IQ_TO_SELF, roster_iq},
    {NULL, NULL, 0, NULL},
};

static int roster_init(server_t *srv)
{
    (void)srv;
    return (interest_slot = session__slot_new()) < 0 ? HEARTH_ELIMIT : 0;
}

static const char *const roster_stream_features[] = {"<ver xmlns='" HEARTH_NS_ROSTERVER "'/>",
                                                     NULL};

const module_t module_roster = {
    .name = "roster",
    .iqs = roster_iqs,
    .stream_features = roster_stream_features,
    .init = roster_init,
};
