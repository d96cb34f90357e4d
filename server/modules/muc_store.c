/* Persistence of rooms through storage's generic documents and logs: a persistent room is one
 * "muc.room" document keyed by its bare JID (its configuration as a submitted muc#roomconfig
 * form, its affiliations and its subject); a logged room appends every groupchat message to the
 * "muc.log" log of that key, and a room loaded from storage takes its history from there.
 * Callbacks run on the asking worker; they find their room again by its JID. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/muc.h"

#define KIND_ROOM "muc.room"
#define KIND_LOG "muc.log"
#define NS_HEARTH_MUC "urn:hearth:muc:0"

typedef struct store_ud {
    worker_t *w;
    char *jid;
    char *id; /* disco#items: the request's id */
} store_ud_t;

static store_ud_t *ud_new(worker_t *w, const char *jid, const char *id)
{
    store_ud_t *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->w = w;
    u->jid = strdup(jid);
    u->id = id ? strdup(id) : NULL;
    if (!u->jid || (id && !u->id)) {
        free(u->jid);
        free(u->id);
        free(u);
        return NULL;
    }
    return u;
}

static void ud_free(store_ud_t *u)
{
    free(u->jid);
    free(u->id);
    free(u);
}

static void write_done(void *ud, int err)
{
    store_ud_t *u = ud;
    if (err)
        hlog(LOG_ERROR, "muc: storage write for %s failed: %s", u->jid, hearth_strerror(err));
    ud_free(u);
}

/* ---- documents ---- */

char *muc__room_doc(const muc_room_t *r)
{
    hearth_arena_t *a = hearth_arena_new(0);
    if (!a)
        return NULL;
    hearth_xml_node_t *root = hearth_xml_new(a, "room", NS_HEARTH_MUC);
    hearth_xml_set_attr(a, root, "jid", r->jid);
    hearth_xml_node_t *x = muc__config_form(r, a);
    hearth_xml_set_attr(a, x, "type", "submit");
    /* Affiliations are kept as items below, with their nicks and reasons. */
    for (hearth_xml_node_t *f = hearth_xml_first_element(x), *n; f; f = n) {
        n = hearth_xml_next_element(f);
        const char *var = hearth_xml_attr(f, "var");
        if (strcmp(f->name, "field") || !var || !strcmp(var, "muc#roomconfig_roomowners") ||
            !strcmp(var, "muc#roomconfig_roomadmins"))
            hearth_xml_remove(f);
    }
    hearth_xml_append(root, x);
    STRMAP_FOREACH(&r->affs, e)
    {
        const muc_affiliation_t *af = e->value;
        hearth_xml_node_t *it = hearth_xml_add_child(a, root, "aff", NS_HEARTH_MUC);
        hearth_xml_set_attr(a, it, "jid", e->key);
        hearth_xml_set_attr(a, it, "affiliation", muc__aff_name(af->aff));
        if (af->nick)
            hearth_xml_set_attr(a, it, "nick", af->nick);
        if (af->reason)
            hearth_xml_set_attr(a, it, "reason", af->reason);
    }
    if (r->subject) {
        hearth_xml_node_t *s = hearth_xml_add_child(a, root, "subject", NS_HEARTH_MUC);
        if (r->subject_nick)
            hearth_xml_set_attr(a, s, "nick", r->subject_nick);
        hearth_xml_add_text(a, s, r->subject, strlen(r->subject));
    }
    hearth_buf_t out = HEARTH_BUF_INIT;
    char *doc = NULL;
    if (hearth_xml_serialize(root, NULL, &out) == 0)
        doc = hearth_buf_steal(&out, NULL);
    hearth_buf_free(&out);
    hearth_arena_free(a);
    return doc;
}

typedef struct parse_ctx {
    muc_room_t *r;
    int rc;
} parse_ctx_t;

static void parse_doc(void *ud, hearth_xml_node_t *root, hearth_arena_t *a)
{
    parse_ctx_t *p = ud;
    muc_room_t *r = p->r;
    if (strcmp(root->name, "room") || strcmp(root->ns, NS_HEARTH_MUC))
        return;
    hearth_xml_node_t *x = hearth_xml_child(root, "x", NS_XDATA);
    const char *text = NULL;
    int codes[4], n = 0;
    int locked = r->locked;
    r->locked = 1; /* no notices while loading */
    if (!x || muc__config_apply(r, x, a, NULL, &text, codes, &n)) {
        r->locked = locked;
        return;
    }
    r->locked = locked;
    for (hearth_xml_node_t *c = hearth_xml_first_element(root); c; c = hearth_xml_next_element(c)) {
        if (!strcmp(c->name, "aff")) {
            muc_aff_t aff;
            const char *jid = hearth_xml_attr(c, "jid");
            if (jid && !muc__aff_parse(hearth_xml_attr(c, "affiliation"), &aff))
                muc__aff_set(r, jid, aff, hearth_xml_attr(c, "nick") ?: "",
                             hearth_xml_attr(c, "reason") ?: "");
        } else if (!strcmp(c->name, "subject")) {
            const char *nick = hearth_xml_attr(c, "nick");
            free(r->subject);
            free(r->subject_nick);
            r->subject = strdup(hearth_xml_text(a, c) ?: "");
            r->subject_nick = nick ? strdup(nick) : NULL;
        }
    }
    p->rc = 0;
}

int muc__room_doc_parse(muc_room_t *r, const char *xml)
{
    parse_ctx_t p = {r, -1};
    im__parse(xml, strlen(xml), parse_doc, &p);
    return p.rc;
}

/* ---- loading ---- */

static void log_loaded(void *ud, int err, const storage_log_entry_t *e, size_t n)
{
    store_ud_t *u = ud;
    muc_room_t *r = muc__room_get(u->w, u->jid);
    if (r && r->state == ROOM_LOADING) {
        if (err)
            hlog(LOG_ERROR, "muc: history of %s not loaded: %s", u->jid, hearth_strerror(err));
        for (size_t i = 0; i < n; i++)
            muc__history_add(u->w, r, e[i].xml, strlen(e[i].xml), e[i].stamp_ms, 0);
        muc__room_loaded(u->w, r);
    }
    ud_free(u);
}

static void doc_loaded(void *ud, int err, const char *xml)
{
    store_ud_t *u = ud;
    worker_t *w = u->w;
    muc_room_t *r = muc__room_get(w, u->jid);
    if (!r || r->state != ROOM_LOADING) {
        ud_free(u);
        return;
    }
    if (err && err != HEARTH_ENOTFOUND) {
        hlog(LOG_ERROR, "muc: room %s not loaded: %s", u->jid, hearth_strerror(err));
        ud_free(u);
        muc__room_failed(w, r);
        return;
    }
    if (xml) {
        if (muc__room_doc_parse(r, xml)) {
            hlog(LOG_ERROR, "muc: the stored room %s is not readable; it is left alone", u->jid);
            ud_free(u);
            muc__room_failed(w, r);
            return;
        }
        r->exists = 1;
        r->locked = 0;
        if (r->cfg.logging && r->cfg.maxhistory &&
            storage_log_fetch(w->srv->storage, &w->storage_target, KIND_LOG, u->jid, 0,
                              MUC_HISTORY_MAX, log_loaded, u) == 0)
            return; /* log_loaded finishes */
    }
    ud_free(u);
    muc__room_loaded(w, r);
}

void muc__store_load(worker_t *w, muc_room_t *r)
{
    store_ud_t *u = ud_new(w, r->jid, NULL);
    if (u &&
        storage_doc_get(w->srv->storage, &w->storage_target, KIND_ROOM, r->jid, doc_loaded, u) == 0)
        return;
    if (u)
        ud_free(u);
    hlog(LOG_ERROR, "muc: storage refused to load %s", r->jid);
    muc__room_failed(w, r);
}

/* ---- writing ---- */

void muc__store_save(worker_t *w, muc_room_t *r)
{
    if (!r->exists || r->locked || !r->cfg.persistent)
        return;
    char *doc = muc__room_doc(r);
    store_ud_t *u = doc ? ud_new(w, r->jid, NULL) : NULL;
    if (!u || storage_doc_put(w->srv->storage, &w->storage_target, KIND_ROOM, r->jid, doc,
                              write_done, u)) {
        hlog(LOG_ERROR, "muc: room %s not saved", r->jid);
        if (u)
            ud_free(u);
    }
    free(doc);
}

void muc__store_delete(worker_t *w, muc_room_t *r)
{
    store_ud_t *u = ud_new(w, r->jid, NULL);
    if (u &&
        storage_doc_delete(w->srv->storage, &w->storage_target, KIND_ROOM, r->jid, write_done, u)) {
        ud_free(u);
        u = NULL;
    }
    store_ud_t *l = ud_new(w, r->jid, NULL);
    if (l &&
        storage_log_delete(w->srv->storage, &w->storage_target, KIND_LOG, r->jid, write_done, l)) {
        ud_free(l);
        l = NULL;
    }
    if (!u || !l)
        hlog(LOG_ERROR, "muc: storage refused to forget room %s", r->jid);
}

void muc__store_log(worker_t *w, muc_room_t *r, const char *xml, size_t len, int64_t stamp_ms)
{
    (void)len;
    store_ud_t *u = ud_new(w, r->jid, NULL);
    if (!u || storage_log_append(w->srv->storage, &w->storage_target, KIND_LOG, r->jid, stamp_ms,
                                 xml, write_done, u)) {
        hlog(LOG_ERROR, "muc: message not logged in %s", r->jid);
        if (u)
            ud_free(u);
    }
}

/* ---- the service's disco#items ---- */

static void listed(void *ud, int err, const storage_doc_t *docs, size_t n)
{
    store_ud_t *u = ud;
    const char **jids = calloc(n + 1, sizeof(char *));
    const char **names = calloc(n + 1, sizeof(char *));
    char **owned = calloc(n + 1, sizeof(char *));
    size_t k = 0;
    if (err)
        hlog(LOG_ERROR, "muc: stored rooms not listed: %s", hearth_strerror(err));
    for (size_t i = 0; !err && jids && names && owned && i < n; i++) {
        muc_room_t tmp;
        memset(&tmp, 0, sizeof(tmp));
        if (strmap_init(&tmp.affs))
            continue;
        muc__config_defaults(&tmp.cfg);
        tmp.jid = docs[i].key;
        if (muc__room_doc_parse(&tmp, docs[i].xml) == 0 && tmp.cfg.publicroom) {
            jids[k] = docs[i].key;
            owned[k] = tmp.cfg.name ? strdup(tmp.cfg.name) : NULL;
            names[k] = owned[k];
            k++;
        }
        STRMAP_FOREACH(&tmp.affs, e)
        {
            muc_affiliation_t *af = e->value;
            free(af->nick);
            free(af->reason);
            free(af);
        }
        strmap_free(&tmp.affs);
        free(tmp.subject);
        free(tmp.subject_nick);
        muc__config_free(&tmp.cfg);
    }
    muc__service_items_reply(u->w, u->jid, u->id, jids, names, k);
    for (size_t i = 0; owned && i < k; i++)
        free(owned[i]);
    free(owned);
    free(jids);
    free(names);
    ud_free(u);
}

void muc__store_list_public(worker_t *w, const char *from, const char *id)
{
    store_ud_t *u = ud_new(w, from, id ? id : "");
    if (u && storage_doc_list(w->srv->storage, &w->storage_target, KIND_ROOM, listed, u) == 0)
        return;
    if (u)
        ud_free(u);
    muc__service_items_reply(w, from, id, NULL, NULL, 0); /* what is in memory */
}
