/* The multi-user chat service (XEP-0045) at the MUC domain: the entry point from the router, the
 * per-worker room tables (a room is touched only on its home worker), rooms waiting for storage,
 * the service's own disco, and the small directory of public rooms that disco#items reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/muc.h"

/* Per worker (core slot): the rooms homed there (jid -> muc_room_t), touched only there.
 * Delivery never re-enters a room's handling: what a room sends to an occupant homed on the
 * same worker runs on the next loop turn (the core's run queue). */
static int worker_slot = -1;

/* Public rooms (jid -> malloc'd name), for disco#items on whichever worker homes the service. */
static uv_mutex_t dir_lock;
static strmap_t dir;

/* Rooms not stored, by creator (bare JID -> (uintptr_t) count), for muc.max_rooms_per_user:
 * they live on every worker, so the count is shared (a short lock, no I/O). Stored rooms are
 * counted by storage (their owners' rows). */
static uv_mutex_t created_lock;
static strmap_t created;

static size_t created_count(const char *bare)
{
    uv_mutex_lock(&created_lock);
    size_t n = (uintptr_t)strmap_get(&created, bare);
    uv_mutex_unlock(&created_lock);
    return n;
}

static void created_add(const char *bare, int delta)
{
    uv_mutex_lock(&created_lock);
    uintptr_t n = (uintptr_t)strmap_get(&created, bare);
    if (delta > 0)
        strmap_put(&created, bare, (void *)(n + 1));
    else if (n <= 1)
        strmap_remove(&created, bare);
    else
        strmap_put(&created, bare, (void *)(n - 1));
    uv_mutex_unlock(&created_lock);
}

void muc__creator_set(muc_room_t *r, const char *bare)
{
    if (r->creator) {
        created_add(r->creator, -1);
        free(r->creator);
        r->creator = NULL;
    }
    if (bare && (r->creator = strdup(bare)))
        created_add(bare, 1);
}

const char *muc__domain(worker_t *w)
{
    return w->set.muc_domain;
}

/* ---- room table ---- */

static strmap_t *table(worker_t *w)
{
    return w->slot[worker_slot];
}

muc_room_t *muc__room_get(worker_t *w, const char *jid)
{
    strmap_t *t = table(w);
    return t ? strmap_get(t, jid) : NULL;
}

void muc__rooms_foreach(worker_t *w, muc_room_fn fn, void *arg)
{
    strmap_t *t = table(w);
    if (!t)
        return;
    STRMAP_FOREACH(t, e)
    {
        muc_room_t *r = e->value;
        if (r->state == ROOM_READY && r->exists)
            fn(w, r, arg);
    }
}

void muc__config_defaults(muc_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->publicroom = 1;
    c->allowpm = PM_ANYONE;
    c->presencebroadcast = ROLEMASK_ALL;
    c->getmemberlist = ROLEMASK_ALL;
    c->maxhistory = MUC_HISTORY_DEFAULT;
    c->canchangenick = 1;
    c->registration = 1;
    c->mam = 1; /* as Prosody: a persistent room keeps an archive unless its owner says not */
}

void muc__config_new_room(worker_t *w, muc_config_t *c)
{
    muc__config_defaults(c);
    const settings_t *s = &w->set;
    c->persistent = s->muc_default_persistent;
    c->publicroom = s->muc_default_public;
    c->membersonly = s->muc_default_members_only;
    c->moderated = s->muc_default_moderated;
    c->maxusers = s->muc_default_max_users;
    c->maxhistory = s->muc_default_history;
}

void muc__config_free(muc_config_t *c)
{
    free(c->name);
    free(c->desc);
    free(c->lang);
    free(c->secret);
    free(c->pubsub);
    memset(c, 0, sizeof(*c));
}

muc_room_t *muc__room_new(worker_t *w, const char *jid)
{
    strmap_t *t = table(w);
    muc_room_t *r = calloc(1, sizeof(*r));
    if (!t || !r || !(r->jid = strdup(jid)) || strmap_init(&r->affs) || strmap_init(&r->by_nick) ||
        strmap_init(&r->by_jid) || strmap_put(t, jid, r)) {
        if (r) {
            strmap_free(&r->affs);
            strmap_free(&r->by_nick);
            strmap_free(&r->by_jid);
            free(r->jid);
        }
        free(r);
        return NULL;
    }
    r->state = ROOM_READY;
    r->join_tokens = MUC_JOIN_BURST;
    muc__config_defaults(&r->cfg);
    return r;
}

/* A call waiting in a loading room's queue (INBOX_CALL there): muc__room_call's arguments. */
typedef struct room_call {
    worker_t *w;
    muc_room_fn fn;
    void (*fail)(worker_t *w, void *arg);
    void *arg;
} room_call_t;

static void free_msg_fields(inbox_msg_t *m)
{
    if (m->kind == INBOX_CALL) { /* never run: the room is gone (load failed, shutdown) */
        room_call_t *c = m->u.call.arg;
        c->fail(c->w, c->arg);
        free(c);
        return;
    }
    hearth_bytes_unref(m->u.route.bytes);
    free(m->u.route.to);
    free(m->u.route.from);
}

static void occupant_free(muc_occupant_t *o)
{
    free(o->jid);
    free(o->bare);
    free(o->nick);
    free(o->ojid);
    free(o->inner);
    free(o);
}

static void room_clear(muc_room_t *r)
{
    muc__creator_set(r, NULL);
    free(r->cap_ok_for);
    r->cap_ok_for = NULL;
    for (muc_occupant_t *o = r->occupants, *n; o; o = n) {
        n = o->next;
        occupant_free(o);
    }
    STRMAP_FOREACH(&r->affs, e)
    {
        muc_affiliation_t *af = e->value;
        free(af->nick);
        free(af->reason);
        free(af);
    }
    strmap_free(&r->affs);
    strmap_free(&r->by_nick);
    strmap_free(&r->by_jid);
    for (unsigned i = 0; i < r->hist_len; i++) {
        free(r->hist[(r->hist_start + i) % MUC_HISTORY_MAX].xml);
        free(r->hist[(r->hist_start + i) % MUC_HISTORY_MAX].sid);
    }
    free(r->subject);
    free(r->subject_nick);
    muc__vcard_forget(r);
    muc__config_free(&r->cfg);
    for (muc_pending_t *p = r->pending_head, *n; p; p = n) {
        n = p->next;
        free_msg_fields(&p->m);
        free(p);
    }
}

void muc__room_free(worker_t *w, muc_room_t *r)
{
    strmap_t *t = table(w);
    if (t)
        strmap_remove(t, r->jid);
    muc__directory_remove(r->jid);
    room_clear(r);
    free(r->jid);
    free(r);
}

void muc__room_maybe_free(worker_t *w, muc_room_t *r)
{
    if (r->state != ROOM_READY || r->occupants || r->pending_head)
        return;
    /* A stored room nobody is in leaves memory too (else one user could pin any number of
     * them, each with up to MUC_HISTORY_BYTES of history): everything of it is in storage,
     * its history included (the log, or the document when it does not log). */
    int stored = r->exists && r->cfg.persistent && !r->locked;
    if (stored && r->hist_dirty)
        muc__store_save(w, r);
    if (stored)
        hlog(LOG_DEBUG, "muc: %s unloaded", r->jid);
    muc__room_free(w, r);
}

/* ---- directory of public rooms ---- */

void muc__directory_set(muc_room_t *r)
{
    if (!r->exists || r->locked || !r->cfg.publicroom) {
        muc__directory_remove(r->jid);
        return;
    }
    char *name = strdup(r->cfg.name && *r->cfg.name ? r->cfg.name : r->jid);
    if (!name)
        return;
    uv_mutex_lock(&dir_lock);
    char *old = strmap_get(&dir, r->jid);
    if (strmap_put(&dir, r->jid, name))
        free(name);
    else
        free(old);
    uv_mutex_unlock(&dir_lock);
}

void muc__directory_remove(const char *jid)
{
    uv_mutex_lock(&dir_lock);
    free(strmap_remove(&dir, jid));
    uv_mutex_unlock(&dir_lock);
}

/* ---- the service's room list ---- */

typedef struct listed {
    const char *jid, *name;
} listed_t;

static int listed_cmp(const void *a, const void *b)
{
    return strcmp(((const listed_t *)a)->jid, ((const listed_t *)b)->jid);
}

/* The public rooms, each once (the directory's name first: it is the current one), sorted by
 * JID; strings in a. *count rooms; NULL when out of memory. */
static listed_t *list_rooms(hearth_arena_t *a, const char **jids, const char **names, size_t n,
                            size_t *count)
{
    strmap_t seen;
    if (strmap_init(&seen))
        return NULL;
    uv_mutex_lock(&dir_lock);
    listed_t *v = hearth_arena_alloc(a, (dir.count + n + 1) * sizeof(*v));
    size_t k = 0;
    STRMAP_FOREACH(&dir, e)
    {
        if (!v)
            break;
        v[k].jid = hearth_arena_strdup(a, e->key);
        v[k].name = hearth_arena_strdup(a, e->value);
        if (!v[k].jid || !v[k].name || strmap_put(&seen, v[k].jid, (void *)1)) {
            v = NULL;
            break;
        }
        k++;
    }
    uv_mutex_unlock(&dir_lock);
    for (size_t i = 0; v && i < n; i++) {
        if (strmap_get(&seen, jids[i]))
            continue;
        v[k].jid = jids[i];
        v[k].name = names[i] && *names[i] ? names[i] : jids[i];
        if (strmap_put(&seen, jids[i], (void *)1))
            v = NULL;
        else
            k++;
    }
    strmap_free(&seen);
    if (v)
        qsort(v, k, sizeof(*v), listed_cmp);
    *count = k;
    return v;
}

/* The first index in v[0..n) whose JID is after jid (or, with or_equal, not before it). */
static size_t listed_search(const listed_t *v, size_t n, const char *jid, int or_equal)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v[mid].jid, jid);
        if (c < 0 || (c == 0 && !or_equal))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* <item jid='' name=''/> as serialised. */
static size_t item_bytes(const listed_t *l)
{
    return 24 + hearth_buf_escaped_len(l->jid) + hearth_buf_escaped_len(l->name);
}

static void rsm_text(hearth_arena_t *a, hearth_xml_node_t *set, const char *name, const char *s)
{
    hearth_xml_node_t *e = hearth_xml_add_child(a, set, name, HEARTH_NS_RSM);
    if (e)
        hearth_xml_add_text(a, e, s, strlen(s));
}

/* Appends to q the page rsm asks for of v[0..n) and, when asked for or when the page is not
 * everything, the <set/> that says where it is. */
static void items_page(hearth_arena_t *a, hearth_xml_node_t *q, const listed_t *v, size_t n,
                       const muc_rsm_t *rsm)
{
    size_t max = rsm->given ? rsm->max : MUC_ITEMS_PAGE_MAX, bytes = 0, start, end;
    if (rsm->before) {
        end = *rsm->before ? listed_search(v, n, rsm->before, 1) : n;
        for (start = end; start > 0 && end - start < max; start--) {
            size_t b = item_bytes(&v[start - 1]);
            if (start < end && bytes + b > MUC_ITEMS_PAGE_BYTES)
                break;
            bytes += b;
        }
    } else {
        start = rsm->after ? listed_search(v, n, rsm->after, 0) : 0;
        for (end = start; end < n && end - start < max; end++) {
            size_t b = item_bytes(&v[end]);
            if (end > start && bytes + b > MUC_ITEMS_PAGE_BYTES)
                break;
            bytes += b;
        }
    }
    for (size_t i = start; i < end; i++) {
        hearth_xml_node_t *it = hearth_xml_add_child(a, q, "item", NULL);
        hearth_xml_set_attr(a, it, "jid", v[i].jid);
        hearth_xml_set_attr(a, it, "name", v[i].name);
    }
    if (!rsm->given && end - start == n)
        return;
    hearth_xml_node_t *set = hearth_xml_add_child(a, q, "set", HEARTH_NS_RSM);
    if (end > start) {
        /* No 'index' on <first>, as on archive pages (mam.c says why). */
        rsm_text(a, set, "first", v[start].jid);
        rsm_text(a, set, "last", v[end - 1].jid);
    }
    char count[32];
    snprintf(count, sizeof(count), "%zu", n);
    rsm_text(a, set, "count", count);
}

/* ---- sending ---- */

int muc__is_muc_jid(worker_t *w, const char *to)
{
    const char *at = strchr(to, '@');
    const char *dom = at ? at + 1 : to;
    size_t n = strcspn(dom, "/");
    const char *muc = muc__domain(w);
    return strlen(muc) == n && !strncmp(dom, muc, n);
}

static stanza_kind_t kind_of(const char *name)
{
    if (!strcmp(name, "message"))
        return STANZA_MESSAGE;
    if (!strcmp(name, "presence"))
        return STANZA_PRESENCE;
    return STANZA_IQ;
}

void muc__send_bytes(worker_t *w, stanza_kind_t kind, const char *to, const char *from,
                     const char *type, hearth_bytes_t *bytes)
{
    /* Rooms never talk to rooms: it would re-enter a room from inside another's handling. */
    if (!to || muc__is_muc_jid(w, to))
        return;
    router__route(w, kind, to, from, type ? type : "", bytes);
}

void muc__send_node(worker_t *w, const char *to, hearth_xml_node_t *st)
{
    if (!to || muc__is_muc_jid(w, to))
        return;
    stanza_kind_t kind = kind_of(st->name);
    /* Presence bytes carry no 'to': the recipient's worker writes it (presence__inbound). */
    if (kind == STANZA_PRESENCE)
        for (hearth_xml_attr_t **p = &st->attrs; *p; p = &(*p)->next)
            if (!(*p)->ns && !strcmp((*p)->name, "to")) {
                *p = (*p)->next;
                break;
            }
    hearth_buf_t out = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(st, HEARTH_NS_CLIENT, &out) == 0) {
        hearth_bytes_t *bytes = hearth_bytes_new(out.data, out.len);
        if (bytes) {
            router__route(w, kind, to, hearth_xml_attr(st, "from"), hearth_xml_attr(st, "type"),
                          bytes);
            hearth_bytes_unref(bytes);
        }
    }
    hearth_buf_free(&out);
}

void muc__reply_error(worker_t *w, hearth_xml_node_t *st, hearth_arena_t *a, const char *from,
                      const char *to, hearth_stanza_error_t cond, const char *text)
{
    const char *type = hearth_xml_attr(st, "type");
    if (type && !strcmp(type, "error"))
        return; /* never answer an error with an error */
    if (!strcmp(st->name, "iq") && type && strcmp(type, "get") && strcmp(type, "set"))
        return;
    hearth_xml_set_attr(a, st, "from", from);
    hearth_xml_set_attr(a, st, "to", to);
    hearth_xml_set_attr(a, st, "type", "error");
    hearth_xml_add_stanza_error(a, st, cond, text);
    muc__send_node(w, to, st);
}

void muc__iq_result(worker_t *w, hearth_xml_node_t *iq, hearth_arena_t *a, const char *from,
                    const char *to, hearth_xml_node_t *payload)
{
    hearth_xml_node_t *r = hearth_xml_new(a, "iq", HEARTH_NS_CLIENT);
    if (!r)
        return;
    hearth_xml_set_attr(a, r, "type", "result");
    hearth_xml_set_attr(a, r, "id", hearth_xml_attr(iq, "id"));
    hearth_xml_set_attr(a, r, "from", from);
    hearth_xml_set_attr(a, r, "to", to);
    if (payload)
        hearth_xml_append(r, payload);
    muc__send_node(w, to, r);
}

/* ---- the service itself ---- */

/* Reads XEP-0059's <set/> (NULL: none) into rsm, strings in a: 0 or the error. */
static hearth_stanza_error_t rsm_parse(hearth_arena_t *a, const hearth_xml_node_t *set,
                                       muc_rsm_t *rsm, const char **text)
{
    memset(rsm, 0, sizeof(*rsm));
    rsm->max = MUC_ITEMS_PAGE_MAX;
    if (!set)
        return HEARTH_STANZA_ERR_NONE;
    rsm->given = 1;
    for (hearth_xml_node_t *e = hearth_xml_first_element(set); e; e = hearth_xml_next_element(e)) {
        if (strcmp(e->ns, HEARTH_NS_RSM))
            continue;
        char *t = hearth_xml_text(a, e);
        if (!t)
            return HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
        if (!strcmp(e->name, "max")) {
            char *end;
            unsigned long long v = strtoull(t, &end, 10);
            if (*t < '0' || *t > '9' || *end) {
                *text = "max is a non-negative integer";
                return HEARTH_STANZA_ERR_BAD_REQUEST;
            }
            rsm->max = v > MUC_ITEMS_PAGE_MAX ? MUC_ITEMS_PAGE_MAX : (size_t)v;
        } else if (!strcmp(e->name, "after")) {
            if (!*t) {
                *text = "after needs a room JID";
                return HEARTH_STANZA_ERR_BAD_REQUEST;
            }
            rsm->after = t;
        } else if (!strcmp(e->name, "before")) {
            rsm->before = t;
        } else if (!strcmp(e->name, "index")) {
            *text = "paging by index is not supported; use after or before";
            return HEARTH_STANZA_ERR_FEATURE_NOT_IMPLEMENTED;
        }
    }
    return HEARTH_STANZA_ERR_NONE;
}

static void service_iq(worker_t *w, hearth_xml_node_t *iq, hearth_arena_t *a, const char *from)
{
    const char *type = hearth_xml_attr(iq, "type");
    const char *svc = muc__domain(w);
    if (!type || (strcmp(type, "get") && strcmp(type, "set")))
        return;
    hearth_xml_node_t *q = hearth_xml_first_element(iq);
    if (!q || hearth_xml_count_elements(iq) != 1 || !hearth_xml_attr(iq, "id")) {
        muc__reply_error(w, iq, a, svc, from, HEARTH_STANZA_ERR_BAD_REQUEST, NULL);
        return;
    }
    int get = !strcmp(type, "get");
    if (get && !strcmp(q->ns, HEARTH_NS_DISCO_INFO) && !strcmp(q->name, "query")) {
        if (hearth_xml_attr(q, "node")) {
            muc__reply_error(w, iq, a, svc, from, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL);
            return;
        }
        hearth_xml_node_t *r = hearth_xml_new(a, "query", HEARTH_NS_DISCO_INFO);
        hearth_xml_node_t *id = hearth_xml_add_child(a, r, "identity", NULL);
        hearth_xml_set_attr(a, id, "category", "conference");
        hearth_xml_set_attr(a, id, "type", "text");
        hearth_xml_set_attr(a, id, "name", "Chatrooms");
        static const char *const feats[] = {HEARTH_NS_DISCO_INFO, HEARTH_NS_DISCO_ITEMS,
                                            HEARTH_NS_MUC,        HEARTH_NS_PING,
                                            HEARTH_NS_CONFERENCE, NULL};
        for (int i = 0; feats[i]; i++)
            hearth_xml_set_attr(a, hearth_xml_add_child(a, r, "feature", NULL), "var", feats[i]);
        muc__iq_result(w, iq, a, svc, from, r);
        return;
    }
    if (get && !strcmp(q->ns, HEARTH_NS_DISCO_ITEMS) && !strcmp(q->name, "query")) {
        if (hearth_xml_attr(q, "node")) {
            muc__reply_error(w, iq, a, svc, from, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL);
            return;
        }
        muc_rsm_t rsm = {0};
        const char *text = NULL;
        hearth_stanza_error_t err =
            rsm_parse(a, hearth_xml_child(q, "set", HEARTH_NS_RSM), &rsm, &text);
        if (err) {
            muc__reply_error(w, iq, a, svc, from, err, text);
            return;
        }
        muc__store_list_public(w, from, hearth_xml_attr(iq, "id"), &rsm);
        return;
    }
    if (get && !strcmp(q->ns, HEARTH_NS_PING) && !strcmp(q->name, "ping")) {
        muc__iq_result(w, iq, a, svc, from, NULL);
        return;
    }
    muc__reply_error(w, iq, a, svc, from, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
}

void muc__service_items_reply(worker_t *w, const char *to, const char *id, const muc_rsm_t *rsm,
                              const char **jids, const char **names, size_t n)
{
    hearth_arena_t *a = hearth_arena_new(0);
    if (!a)
        return;
    size_t count = 0;
    listed_t *v = list_rooms(a, jids, names, n, &count);
    hearth_xml_node_t *iq = hearth_xml_new(a, "iq", HEARTH_NS_CLIENT);
    hearth_xml_set_attr(a, iq, "id", id);
    hearth_xml_set_attr(a, iq, "from", muc__domain(w));
    hearth_xml_set_attr(a, iq, "to", to);
    if (!v) {
        hearth_xml_set_attr(a, iq, "type", "error");
        hearth_xml_add_stanza_error(a, iq, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
    } else {
        hearth_xml_set_attr(a, iq, "type", "result");
        items_page(a, hearth_xml_add_child(a, iq, "query", HEARTH_NS_DISCO_ITEMS), v, count, rsm);
    }
    muc__send_node(w, to, iq);
    hearth_arena_free(a);
}

/* ---- entry ---- */

typedef struct handle_ctx {
    worker_t *w;
    muc_room_t *r;
    const inbox_msg_t *m;
    const char *nick;
    int nick_modified;
} handle_ctx_t;

static void handle_stanza(void *ud, hearth_xml_node_t *st, hearth_arena_t *a)
{
    handle_ctx_t *h = ud;
    const char *from = h->m->u.route.from;
    if (!from)
        return;
    /* The prepared addresses, as the room sees them. */
    hearth_xml_set_attr(a, st, "to", h->m->u.route.to);
    hearth_xml_set_attr(a, st, "from", from);
    switch (h->m->u.route.kind) {
    case STANZA_PRESENCE:
        muc__room_presence(h->w, h->r, st, a, from, h->nick, h->nick_modified);
        break;
    case STANZA_MESSAGE:
        muc__room_message(h->w, h->r, st, a, from, h->nick);
        break;
    case STANZA_IQ:
        muc__room_iq(h->w, h->r, st, a, from, h->nick);
        break;
    }
}

static void service_stanza(void *ud, hearth_xml_node_t *st, hearth_arena_t *a)
{
    handle_ctx_t *h = ud;
    hearth_xml_set_attr(a, st, "from", h->m->u.route.from);
    service_iq(h->w, st, a, h->m->u.route.from);
}

static void room_handle(worker_t *w, muc_room_t *r, const inbox_msg_t *m, int nick_modified)
{
    const char *slash = strchr(m->u.route.to, '/');
    handle_ctx_t h = {w, r, m, slash ? slash + 1 : NULL, nick_modified};
    r->handling = m;
    router__parse(m->u.route.bytes->data, m->u.route.bytes->len, handle_stanza, &h);
    r->handling = NULL;
}

static int msg_copy(inbox_msg_t *dst, const inbox_msg_t *m)
{
    *dst = *m;
    dst->next = NULL;
    dst->u.route.to = strdup(m->u.route.to);
    dst->u.route.from = m->u.route.from ? strdup(m->u.route.from) : NULL;
    if (!dst->u.route.to || (m->u.route.from && !dst->u.route.from)) {
        free(dst->u.route.to);
        free(dst->u.route.from);
        return -1;
    }
    dst->u.route.bytes = hearth_bytes_ref(m->u.route.bytes);
    return 0;
}

static void bounce(worker_t *w, const inbox_msg_t *m, hearth_stanza_error_t cond, const char *text)
{
    if (m->u.route.kind == STANZA_PRESENCE)
        return; /* presence bytes have no 'to' to answer from; dropped */
    router__bounce(w, m, cond, text);
}

void muc__room_failed(worker_t *w, muc_room_t *r)
{
    for (muc_pending_t *p = r->pending_head, *n; p; p = n) {
        n = p->next;
        if (p->m.kind != INBOX_CALL)
            bounce(w, &p->m, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
                   "the room could not be loaded");
        free_msg_fields(&p->m);
        free(p);
    }
    r->pending_head = r->pending_tail = NULL;
    r->npending = 0;
    muc__room_free(w, r);
}

void muc__room_loaded(worker_t *w, muc_room_t *r)
{
    worker__hold_posts(w); /* each recipient's share of what the queue produces, at once */
    r->state = ROOM_READY;
    muc__directory_set(r);
    while (r->pending_head && r->state == ROOM_READY) { /* a creation check may wait again */
        muc_pending_t *p = r->pending_head;
        r->pending_head = p->next;
        if (!r->pending_head)
            r->pending_tail = NULL;
        r->npending--;
        if (p->m.kind == INBOX_CALL) {
            room_call_t *c = p->m.u.call.arg;
            c->fn(w, r, c->arg);
            free(c);
        } else {
            room_handle(w, r, &p->m, 0);
            free_msg_fields(&p->m);
        }
        free(p);
    }
    muc__room_maybe_free(w, r);
    worker__release_posts(w);
}

static void deliver(worker_t *w, inbox_msg_t *m);

/* What a room sends while handling one stanza goes to each other worker as one unit: a join
 * sequence (§7.2) is handled there in one wake-up and so written to the newcomer at once. */
void muc__deliver(worker_t *w, inbox_msg_t *m)
{
    worker__hold_posts(w);
    deliver(w, m);
    worker__release_posts(w);
}

static void deliver(worker_t *w, inbox_msg_t *m)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *reason = NULL;
    const char *to = m->u.route.to;
    if (hearth_jid_parse(to, strlen(to), &j, &reason)) {
        bounce(w, m, HEARTH_STANZA_ERR_JID_MALFORMED, reason);
        return;
    }
    size_t blen = strcspn(to, "/");
    if (strlen(j.bare) != blen || strncmp(j.bare, to, blen)) {
        /* Not prepared (directed presence keeps the client's spelling): to the right home,
         * with the nick as the client wrote it (status 210 tells it when it changes). */
        const char *slash = strchr(to, '/');
        size_t n = strlen(j.bare) + (slash ? strlen(slash) : 0) + 1;
        char *fixed = malloc(n);
        if (fixed) {
            snprintf(fixed, n, "%s%s", j.bare, slash ? slash : "");
            router__route(w, m->u.route.kind, fixed, m->u.route.from, m->u.route.type,
                          m->u.route.bytes);
            free(fixed);
        }
        hearth_jid_clear(&j);
        return;
    }
    const char *raw_slash = strchr(to, '/');
    int nick_modified = raw_slash && j.resource && strcmp(raw_slash + 1, j.resource);
    inbox_msg_t pm = *m;
    pm.u.route.to = j.full;
    if (!j.node) {
        if (m->u.route.kind == STANZA_IQ && m->u.route.from) {
            handle_ctx_t h = {w, NULL, &pm, NULL, 0};
            router__parse(m->u.route.bytes->data, m->u.route.bytes->len, service_stanza, &h);
        } else if (m->u.route.kind == STANZA_MESSAGE) {
            bounce(w, m, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        }
        hearth_jid_clear(&j);
        return;
    }
    muc_room_t *r = muc__room_get(w, j.bare);
    if (!r) {
        r = muc__room_new(w, j.bare);
        if (!r) {
            bounce(w, m, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
            hearth_jid_clear(&j);
            return;
        }
        r->state = ROOM_LOADING;
        muc_pending_t *p = calloc(1, sizeof(*p));
        if (!p || msg_copy(&p->m, &pm)) {
            free(p);
            muc__room_free(w, r);
            hearth_jid_clear(&j);
            return;
        }
        r->pending_head = r->pending_tail = p;
        r->npending = 1;
        hearth_jid_clear(&j);
        muc__store_load(w, r); /* muc__room_loaded runs the queue, now or later */
        return;
    }
    if (r->state == ROOM_LOADING) {
        muc_pending_t *p = r->npending < MUC_PENDING_MAX ? calloc(1, sizeof(*p)) : NULL;
        if (!p || msg_copy(&p->m, &pm)) {
            free(p);
            bounce(w, m, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, "the room is loading");
        } else {
            if (r->pending_tail)
                r->pending_tail->next = p;
            else
                r->pending_head = p;
            r->pending_tail = p;
            r->npending++;
        }
        hearth_jid_clear(&j);
        return;
    }
    room_handle(w, r, &pm, nick_modified);
    muc__room_maybe_free(w, r);
    hearth_jid_clear(&j);
}

void muc__room_call(worker_t *w, const char *jid, muc_room_fn fn,
                    void (*fail)(worker_t *w, void *arg), void *arg)
{
    muc_room_t *r = muc__room_get(w, jid);
    if (r && r->state == ROOM_READY) {
        worker__hold_posts(w);
        fn(w, r, arg);
        worker__release_posts(w);
        /* fn may have freed it (a destroyed room): look it up again. */
        if ((r = muc__room_get(w, jid)))
            muc__room_maybe_free(w, r);
        return;
    }
    int fresh = !r;
    if (fresh && (r = muc__room_new(w, jid)))
        r->state = ROOM_LOADING;
    muc_pending_t *p = r && r->npending < MUC_PENDING_MAX ? calloc(1, sizeof(*p)) : NULL;
    room_call_t *c = p ? malloc(sizeof(*c)) : NULL;
    if (!c) {
        free(p);
        if (r && fresh)
            muc__room_free(w, r);
        fail(w, arg);
        return;
    }
    *c = (room_call_t){w, fn, fail, arg};
    p->m.kind = INBOX_CALL;
    p->m.u.call.arg = c;
    if (r->pending_tail)
        r->pending_tail->next = p;
    else
        r->pending_head = p;
    r->pending_tail = p;
    r->npending++;
    if (fresh)
        muc__store_load(w, r); /* muc__room_loaded runs the queue, now or later */
}

/* ---- rooms per user ---- */

typedef struct cap_ud {
    worker_t *w;
    char *room, *creator;
} cap_ud_t;

static void owned_counted(void *ud, int err, size_t n)
{
    cap_ud_t *u = ud;
    muc_room_t *r = muc__room_get(u->w, u->room);
    if (r && r->state == ROOM_LOADING && !r->cap_ok_for) {
        unsigned cap = u->w->set.muc_max_rooms_per_user;
        if (err)
            hlog(LOG_ERROR, "muc: rooms of %s not counted: %s", u->creator, hearth_strerror(err));
        r->cap_full = err || n + created_count(u->creator) >= cap;
        r->cap_ok_for = u->creator;
        u->creator = NULL;
        muc__room_loaded(u->w, r);
    }
    free(u->room);
    free(u->creator);
    free(u);
}

int muc__create_check(worker_t *w, muc_room_t *r, const char *creator)
{
    unsigned cap = w->set.muc_max_rooms_per_user;
    if (!cap)
        return 0;
    if (r->cap_ok_for) {
        int same = !strcmp(r->cap_ok_for, creator);
        free(r->cap_ok_for);
        r->cap_ok_for = NULL;
        if (same)
            return r->cap_full ? -1 : 0;
    }
    if (created_count(creator) >= cap)
        return -1; /* no need to ask storage */
    /* Asked again once storage has counted: the join waits at the head of the queue. */
    muc_pending_t *p = calloc(1, sizeof(*p));
    cap_ud_t *u = calloc(1, sizeof(*u));
    int copied = p && r->handling && msg_copy(&p->m, r->handling) == 0;
    if (!copied || !u || !(u->room = strdup(r->jid)) || !(u->creator = strdup(creator))) {
        if (copied)
            free_msg_fields(&p->m);
        free(p);
        if (u) {
            free(u->room);
            free(u->creator);
        }
        free(u);
        return -1;
    }
    u->w = w;
    if (storage_muc_owned_count(w->srv->storage, &w->storage_target, creator, owned_counted, u)) {
        free_msg_fields(&p->m);
        free(p);
        free(u->room);
        free(u->creator);
        free(u);
        return -1;
    }
    p->next = r->pending_head;
    r->pending_head = p;
    if (!r->pending_tail)
        r->pending_tail = p;
    r->npending++;
    r->state = ROOM_LOADING;
    return 1;
}

/* ---- removed accounts ---- */

void muc__ownerless(worker_t *w, muc_room_t *r)
{
    unsigned owners = 0, admins = 0;
    STRMAP_FOREACH(&r->affs, e)
    {
        muc_affiliation_t *af = e->value;
        owners += af->aff == AFF_OWNER;
        admins += af->aff == AFF_ADMIN;
    }
    if (owners || !r->exists)
        return;
    if (!admins) {
        hlog(LOG_INFO, "muc: %s has no owner or admin left: destroyed", r->jid);
        muc__destroy(w, r, NULL, "the room's last owner is gone", NULL);
        return;
    }
    STRMAP_FOREACH(&r->affs, e)
    {
        muc_affiliation_t *af = e->value;
        if (af->aff != AFF_ADMIN)
            continue;
        af->aff = AFF_OWNER;
        muc__aff_effects(w, r, e->key, NULL, NULL);
    }
    hlog(LOG_INFO, "muc: %s lost its last owner: its %u admin(s) now own it", r->jid, admins);
    muc__store_save(w, r);
}

void muc__forget_jid(worker_t *w, const char *bare)
{
    strmap_t *t = table(w);
    worker__hold_posts(w);
    STRMAP_FOREACH(t, e)
    {
        muc_room_t *r = e->value;
        if (r->state != ROOM_READY || !strmap_get(&r->affs, bare))
            continue;
        muc__aff_set(r, bare, AFF_NONE, "", "");
        muc__aff_effects(w, r, bare, NULL, NULL);
        muc__ownerless(w, r);
        muc__store_save(w, r);
    }
    STRMAP_FOREACH(t, e)
    {
        muc__room_maybe_free(w, e->value);
    }
    worker__release_posts(w);
}

void muc__shutdown(worker_t *w)
{
    strmap_t *t = table(w);
    unsigned nrooms = 0;
    STRMAP_FOREACH(t, e)
    {
        muc_room_t *r = e->value;
        if (r->state != ROOM_READY || !r->occupants)
            continue;
        muc__room_shutdown(w, r);
        nrooms++;
    }
    /* Temporary rooms are gone with their occupants (removing the current entry is safe). */
    STRMAP_FOREACH(t, e)
    {
        muc__room_maybe_free(w, e->value);
    }
    if (nrooms)
        hlog(LOG_INFO, "worker %u: occupants of %u rooms told of the shutdown (332)", w->index,
             nrooms);
}

static int muc_worker_init(worker_t *w)
{
    strmap_t *t = calloc(1, sizeof(*t));
    if (!t || strmap_init(t)) {
        free(t);
        return HEARTH_ENOMEM;
    }
    w->slot[worker_slot] = t;
    return 0;
}

/* After the worker stopped: the rooms still loaded there. */
static void muc_worker_free(worker_t *w)
{
    strmap_t *t = table(w);
    if (!t)
        return;
    STRMAP_FOREACH(t, e)
    {
        muc_room_t *r = e->value;
        room_clear(r);
        free(r->jid);
        free(r);
    }
    strmap_free(t);
    free(t);
    w->slot[worker_slot] = NULL;
}

/* Once the program ends: the directory and the counts every worker shared. */
static void muc_free_shared(void)
{
    STRMAP_FOREACH(&dir, e)
    {
        free(e->value);
    }
    strmap_free(&dir);
    uv_mutex_destroy(&dir_lock);
    strmap_free(&created);
    uv_mutex_destroy(&created_lock);
}

static int on_shutdown(hook_args_t *a)
{
    muc__shutdown(a->w);
    return HOOK_CONTINUE;
}

static int on_account_removed(hook_args_t *a)
{
    muc__forget_jid(a->w, a->bare);
    return HOOK_CONTINUE;
}

static int muc_init(server_t *srv)
{
    static int once;
    router_service_t svc = {
        .domain = srv->set.muc_domain, .name = "Chatrooms", .deliver = muc__deliver};
    if ((worker_slot = worker__slot_new()) < 0 || router__add_service(&svc) ||
        hooks__add(HOOK_SHUTDOWN, 0, on_shutdown) ||
        hooks__add(HOOK_ACCOUNT_REMOVED, 0, on_account_removed))
        return -1;
    if (once++)
        return 0;
    if (uv_mutex_init(&dir_lock) || strmap_init(&dir) || uv_mutex_init(&created_lock) ||
        strmap_init(&created))
        return -1;
    atexit(muc_free_shared);
    return 0;
}

const module_t module_muc = {
    .name = "muc",
    .init = muc_init,
    .worker_init = muc_worker_init,
    .worker_free = muc_worker_free,
};
