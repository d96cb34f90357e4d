/* Persistence of rooms through storage's generic documents and logs: a persistent room is one
 * "muc.room" document keyed by its bare JID (its configuration as a submitted muc#roomconfig
 * form, its affiliations and its subject); a logged room appends every groupchat message to the
 * "muc.log" log of that key, and a room loaded from storage takes its history from there.
 * Callbacks run on the asking worker; they find their room again by its JID. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/muc.h"

#define KIND_ROOM MUC_KIND_ROOM
#define KIND_LOG MUC_KIND_LOG
#define NS_HEARTH_MUC "urn:hearth:muc:0"

typedef struct store_ud {
    worker_t *w;
    char *jid;
    char *id;      /* disco#items: the request's id ... */
    muc_rsm_t rsm; /* ... and the page it asks for (after and before owned here) */
    int migrate;   /* loading a document that still holds its affiliations */
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
    free(u->rsm.after);
    free(u->rsm.before);
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

/* History kept in a room document: what is left of storage's document bound once the
 * configuration, the subject and the markup have taken their share; older entries are
 * dropped when the room is unloaded. */
#define DOC_HISTORY_BYTES (STORAGE_XML_MAX - 64 * 1024)

/* Bytes of s[0..n) once escaped as XML text (each of & < > " ' at most 6 bytes). */
static size_t escaped_len(const char *s, size_t n)
{
    size_t out = n;
    for (size_t i = 0; i < n; i++)
        if (strchr("&<>\"'", s[i]) && s[i])
            out += 5;
    return out;
}

char *muc__room_doc(const muc_room_t *r)
{
    hearth_arena_t *a = hearth_arena_new(0);
    if (!a)
        return NULL;
    hearth_xml_node_t *root = hearth_xml_new(a, "room", NS_HEARTH_MUC);
    hearth_xml_set_attr(a, root, "jid", r->jid);
    /* Affiliations live in storage's muc_affiliations rows (they go with removed accounts);
     * documents written before that carried them as <aff/> children, read once. */
    hearth_xml_set_attr(a, root, "affs", "table");
    hearth_xml_node_t *x = muc__config_form(r, a);
    hearth_xml_set_attr(a, x, "type", "submit");
    for (hearth_xml_node_t *f = hearth_xml_first_element(x), *n; f; f = n) {
        n = hearth_xml_next_element(f);
        const char *var = hearth_xml_attr(f, "var");
        if (strcmp(f->name, "field") || !var || !strcmp(var, "muc#roomconfig_roomowners") ||
            !strcmp(var, "muc#roomconfig_roomadmins"))
            hearth_xml_remove(f);
    }
    hearth_xml_append(root, x);
    if (r->avatar)
        hearth_xml_set_attr(a, hearth_xml_add_child(a, root, "avatar", NS_HEARTH_MUC), "hashes",
                            r->avatar);
    if (r->subject) {
        hearth_xml_node_t *s = hearth_xml_add_child(a, root, "subject", NS_HEARTH_MUC);
        if (r->subject_nick)
            hearth_xml_set_attr(a, s, "nick", r->subject_nick);
        hearth_xml_add_text(a, s, r->subject, strlen(r->subject));
    }
    /* What is not in the log (said while the room did not log) is kept here, so that it
     * survives the room being unloaded; the rest is read back from the log. The newest that
     * fit in a document. */
    unsigned first = r->hist_len;
    size_t bytes = 0;
    while (first > 0) {
        const muc_hist_t *h = &r->hist[(r->hist_start + first - 1) % MUC_HISTORY_MAX];
        if (h->logged) {
            first--;
            continue;
        }
        size_t n = escaped_len(h->xml, h->len) + 64;
        if (bytes + n > DOC_HISTORY_BYTES)
            break;
        bytes += n;
        first--;
    }
    for (unsigned i = first; i < r->hist_len; i++) {
        const muc_hist_t *h = &r->hist[(r->hist_start + i) % MUC_HISTORY_MAX];
        if (h->logged)
            continue;
        char stamp[24];
        snprintf(stamp, sizeof(stamp), "%lld", (long long)h->stamp_ms);
        hearth_xml_node_t *e = hearth_xml_add_child(a, root, "hist", NS_HEARTH_MUC);
        hearth_xml_set_attr(a, e, "stamp", stamp);
        if (h->sid)
            hearth_xml_set_attr(a, e, "sid", h->sid);
        hearth_xml_add_text(a, e, h->xml, h->len);
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
    int with_history;
    int legacy_affs; /* out: the document carried its affiliations itself */
    int rc;
} parse_ctx_t;

static void parse_doc(void *ud, hearth_xml_node_t *root, hearth_arena_t *a)
{
    parse_ctx_t *p = ud;
    muc_room_t *r = p->r;
    if (strcmp(root->name, "room") || strcmp(root->ns, NS_HEARTH_MUC))
        return;
    hearth_xml_node_t *x = hearth_xml_child(root, "x", HEARTH_NS_DATA);
    const char *text = NULL;
    int codes[4], n = 0;
    int locked = r->locked;
    r->locked = 1; /* no notices while loading */
    if (!x || muc__config_apply(r, x, a, NULL, &text, codes, &n)) {
        r->locked = locked;
        return;
    }
    r->locked = locked;
    const char *affs = hearth_xml_attr(root, "affs");
    p->legacy_affs = !affs || strcmp(affs, "table");
    for (hearth_xml_node_t *c = hearth_xml_first_element(root); c; c = hearth_xml_next_element(c)) {
        if (!strcmp(c->name, "aff") && p->legacy_affs) {
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
        } else if (!strcmp(c->name, "avatar") && hearth_xml_attr(c, "hashes")) {
            free(r->avatar);
            r->avatar = strdup(hearth_xml_attr(c, "hashes"));
        } else if (!strcmp(c->name, "hist") && p->with_history) {
            const char *t = hearth_xml_text(a, c);
            const char *st = hearth_xml_attr(c, "stamp");
            if (t && st)
                muc__history_add(NULL, r, t, strlen(t), strtoll(st, NULL, 10),
                                 hearth_xml_attr(c, "sid"), 0, NULL, NULL, 0);
        }
    }
    p->rc = 0;
}

int muc__room_doc_parse(muc_room_t *r, const char *xml)
{
    parse_ctx_t p = {r, 0, 0, -1};
    router__parse(xml, strlen(xml), parse_doc, &p);
    return p.rc;
}

/* ---- loading: the document, the affiliations, the log; then the queued stanzas ---- */

/* Everything is in memory: a room left without an owner gets one (or goes), then the
 * stanzas that waited run, the join sequence among them written in one go. */
static void load_done(worker_t *w, muc_room_t *r, int migrate)
{
    r->hist_dirty = 0;
    if (migrate)
        muc__store_save(w, r); /* affiliations to their rows */
    if (r->exists && !r->locked)
        muc__ownerless(w, r);
    muc__room_loaded(w, r);
}

static void log_loaded(void *ud, int err, const storage_log_entry_t *e, size_t n)
{
    store_ud_t *u = ud;
    muc_room_t *r = muc__room_get(u->w, u->jid);
    if (r && r->state == ROOM_LOADING) {
        if (err)
            hlog(LOG_ERROR, "muc: history of %s not loaded: %s", u->jid, hearth_strerror(err));
        for (size_t i = 0; i < n; i++)
            muc__history_add(u->w, r, e[i].xml, strlen(e[i].xml), e[i].stamp_ms, e[i].ref, 0, NULL,
                             NULL, 1);
        muc__history_sort(r); /* the document's entries came first */
        load_done(u->w, r, u->migrate);
    }
    ud_free(u);
}

static void load_log(worker_t *w, muc_room_t *r, store_ud_t *u)
{
    /* The log whether the room writes it now or not: what it holds was said while it did. */
    if (r->cfg.maxhistory && storage_log_fetch(w->srv->storage, &w->storage_target, KIND_LOG,
                                               u->jid, 0, MUC_HISTORY_MAX, log_loaded, u) == 0)
        return; /* log_loaded finishes */
    int migrate = u->migrate;
    ud_free(u);
    load_done(w, r, migrate);
}

static void affs_loaded(void *ud, int err, const storage_muc_aff_t *affs, size_t n)
{
    store_ud_t *u = ud;
    worker_t *w = u->w;
    muc_room_t *r = muc__room_get(w, u->jid);
    if (!r || r->state != ROOM_LOADING) {
        ud_free(u);
        return;
    }
    if (err) {
        hlog(LOG_ERROR, "muc: affiliations of %s not loaded: %s", u->jid, hearth_strerror(err));
        ud_free(u);
        muc__room_failed(w, r);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        muc_aff_t aff;
        if (!muc__aff_parse(affs[i].affiliation, &aff))
            muc__aff_set(r, affs[i].jid, aff, affs[i].nick ?: "", affs[i].reason ?: "");
    }
    load_log(w, r, u);
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
    if (!xml) {
        ud_free(u);
        load_done(w, r, 0);
        return;
    }
    parse_ctx_t p = {r, 1, 0, -1};
    router__parse(xml, strlen(xml), parse_doc, &p);
    if (p.rc) {
        hlog(LOG_ERROR, "muc: the stored room %s is not readable; it is left alone", u->jid);
        ud_free(u);
        muc__room_failed(w, r);
        return;
    }
    r->exists = 1;
    r->locked = 0;
    if (p.legacy_affs) {
        u->migrate = 1;
        load_log(w, r, u);
        return;
    }
    if (storage_muc_affs_get(w->srv->storage, &w->storage_target, u->jid, affs_loaded, u) == 0)
        return;
    hlog(LOG_ERROR, "muc: storage refused to load the affiliations of %s", u->jid);
    ud_free(u);
    muc__room_failed(w, r);
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

/* The room's affiliations as storage rows: a JID of this server's domain names its account,
 * so that removing the account removes the row. */
static void save_affs(worker_t *w, muc_room_t *r)
{
    size_t n = r->affs.count, k = 0;
    storage_muc_aff_t *v = n ? calloc(n, sizeof(*v)) : NULL;
    char **accounts = n ? calloc(n, sizeof(char *)) : NULL;
    const char *domain = w->set.domain;
    if (n && (!v || !accounts)) {
        free(v);
        free(accounts);
        hlog(LOG_ERROR, "muc: affiliations of %s not saved: out of memory", r->jid);
        return;
    }
    STRMAP_FOREACH(&r->affs, e)
    {
        const muc_affiliation_t *af = e->value;
        const char *at = strchr(e->key, '@');
        v[k].jid = (char *)e->key;
        v[k].affiliation = (char *)muc__aff_name(af->aff);
        v[k].nick = af->nick;
        v[k].reason = af->reason;
        if (at && at > e->key && !strcmp(at + 1, domain))
            accounts[k] = v[k].account = strndup(e->key, (size_t)(at - e->key));
        k++;
    }
    store_ud_t *u = ud_new(w, r->jid, NULL);
    if (!u ||
        storage_muc_affs_put(w->srv->storage, &w->storage_target, r->jid, v, k, write_done, u)) {
        hlog(LOG_ERROR, "muc: affiliations of %s not saved", r->jid);
        if (u)
            ud_free(u);
    }
    for (size_t i = 0; i < k; i++)
        free(accounts[i]);
    free(accounts);
    free(v);
}

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
    } else {
        r->hist_dirty = 0;
        muc__creator_set(r, NULL); /* stored: storage counts its owners now */
    }
    free(doc);
    muc__vcard_save(w, r);
    save_affs(w, r);
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
    store_ud_t *f = ud_new(w, r->jid, NULL);
    if (f &&
        storage_muc_affs_put(w->srv->storage, &w->storage_target, r->jid, NULL, 0, write_done, f)) {
        ud_free(f);
        f = NULL;
    }
    if (!u || !l || !f)
        hlog(LOG_ERROR, "muc: storage refused to forget room %s", r->jid);
    muc__vcard_delete(w, r);
}

void muc__store_log(worker_t *w, muc_room_t *r, const char *xml, int64_t stamp_ms, const char *sid,
                    const char *author, const char *origin)
{
    store_ud_t *u = ud_new(w, r->jid, NULL);
    storage_log_entry_t e = {.stamp_ms = stamp_ms,
                             .xml = (char *)xml,
                             .ref = (char *)sid,
                             .author = (char *)author,
                             .origin = (char *)origin};
    if (!u || storage_log_append_entry(w->srv->storage, &w->storage_target, KIND_LOG, r->jid, &e,
                                       write_done, u)) {
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
        muc__vcard_forget(&tmp);
        muc__config_free(&tmp.cfg);
    }
    muc__service_items_reply(u->w, u->jid, u->id, &u->rsm, jids, names, k);
    for (size_t i = 0; owned && i < k; i++)
        free(owned[i]);
    free(owned);
    free(jids);
    free(names);
    ud_free(u);
}

int muc__room_doc_config(const char *jid, const char *xml, muc_config_t *out)
{
    muc_room_t tmp;
    memset(&tmp, 0, sizeof(tmp));
    if (strmap_init(&tmp.affs))
        return HEARTH_ENOMEM;
    muc__config_defaults(&tmp.cfg);
    tmp.jid = (char *)jid;
    int rc = muc__room_doc_parse(&tmp, xml) ? HEARTH_EINVAL : 0;
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
    muc__vcard_forget(&tmp);
    *out = tmp.cfg;
    return rc;
}

void muc__store_list_public(worker_t *w, const char *from, const char *id, const muc_rsm_t *rsm)
{
    store_ud_t *u = ud_new(w, from, id ? id : "");
    if (u) {
        u->rsm = *rsm;
        u->rsm.after = rsm->after ? strdup(rsm->after) : NULL;
        u->rsm.before = rsm->before ? strdup(rsm->before) : NULL;
        if ((rsm->after && !u->rsm.after) || (rsm->before && !u->rsm.before)) {
            ud_free(u);
            u = NULL;
        }
    }
    if (u && storage_doc_list(w->srv->storage, &w->storage_target, KIND_ROOM, listed, u) == 0)
        return;
    if (u)
        ud_free(u);
    muc__service_items_reply(w, from, id, rsm, NULL, NULL, 0); /* what is in memory */
}
