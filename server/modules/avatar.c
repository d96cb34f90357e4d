/* Avatars both ways (XEP-0398): a vCard's PHOTO (XEP-0054, XEP-0153) and the XEP-0084 data and
 * metadata nodes in PEP kept the same, each converted when a client changes the other, and the
 * avatar's hash put in the account's available presence (XEP-0153 §3.2, XEP-0398 §4). Touches
 * vCards through storage, PEP through pep_compat.h, presence through HOOK_PRESENCE_OUT. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "hearth/sasl.h"
#include "core/log.h"
#include "modules/pep_compat.h"

#define NS_DATA "urn:xmpp:avatar:data"
#define NS_META "urn:xmpp:avatar:metadata"
#define NS_UPDATE "vcard-temp:x:update"
#define NS_CONVERSION "urn:xmpp:pep-vcard-conversion:0"
/* The bytes <data xmlns='urn:xmpp:avatar:data'> adds around the base64 in a PEP item. */
#define DATA_WRAP (sizeof("<data xmlns='" NS_DATA "'></data>") - 1)
#define HASH_LEN 40 /* SHA-1 in hex */

typedef enum { HASH_UNKNOWN, HASH_LOADING, HASH_KNOWN } hash_state_t;

/* Per account, in its user slot: the hash of its avatar as its vCard has it ("" for none). */
typedef struct avatar_user {
    hash_state_t state;
    char hash[HASH_LEN + 1];
} avatar_user_t;

static int slot = -1;

static avatar_user_t *state_of(user_t *u, int create)
{
    avatar_user_t *au = u->slot[slot];
    if (!au && create && (au = calloc(1, sizeof(*au))))
        u->slot[slot] = au;
    return au;
}

/* ---- photos ---- */

/* A vCard's PHOTO, as the conversion needs it: the base64 without whitespace, the image, its
 * SHA-1 in hex, its type. All malloc'd. */
typedef struct photo {
    int present; /* a PHOTO with a BINVAL */
    char *b64;
    unsigned char *bin;
    size_t len;
    char *type;
    char hash[HASH_LEN + 1];
} photo_t;

static void photo_clear(photo_t *p)
{
    free(p->b64);
    free(p->bin);
    free(p->type);
    memset(p, 0, sizeof(*p));
}

static void sha1_hex(const void *data, size_t len, char out[HASH_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out[0] = 0;
    if (EVP_Digest(data, len, md, &n, EVP_sha1(), NULL) != 1 || n != HASH_LEN / 2)
        return;
    for (unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Base64 as vCards carry it (often folded into lines) without its whitespace; malloc'd. */
static char *unfold(const char *s)
{
    char *out = malloc(strlen(s) + 1), *o = out;
    if (!out)
        return NULL;
    for (; *s; s++)
        if (!isspace((unsigned char)*s))
            *o++ = *s;
    *o = 0;
    return out;
}

/* p from b64 (folded or not): 0, HEARTH_EINVAL when it is no base64, HEARTH_ENOMEM. */
static int photo_from_base64(photo_t *p, const char *b64, const char *type)
{
    char *bin = NULL;
    size_t len = 0;
    if (!(p->b64 = unfold(b64)) || (type && *type && !(p->type = strdup(type))))
        return HEARTH_ENOMEM;
    int rc = *p->b64 ? hearth_base64_decode(p->b64, strlen(p->b64), &bin, &len) : HEARTH_EINVAL;
    if (rc)
        return rc;
    p->bin = (unsigned char *)bin;
    p->len = len;
    p->present = 1;
    sha1_hex(p->bin, p->len, p->hash);
    return 0;
}

/* The PHOTO of a parsed <vCard/>: 0 (p->present 0 when there is none, or it is a link), or
 * HEARTH_EINVAL (a BINVAL that is no base64) or HEARTH_ENOMEM. */
static int photo_of_vcard(photo_t *p, hearth_arena_t *a, const hearth_xml_node_t *vcard)
{
    memset(p, 0, sizeof(*p));
    hearth_xml_node_t *ph = vcard ? hearth_xml_child(vcard, "PHOTO", HEARTH_NS_VCARD) : NULL;
    hearth_xml_node_t *bin = ph ? hearth_xml_child(ph, "BINVAL", HEARTH_NS_VCARD) : NULL;
    hearth_xml_node_t *type = ph ? hearth_xml_child(ph, "TYPE", HEARTH_NS_VCARD) : NULL;
    if (!bin)
        return 0;
    char *b64 = hearth_xml_text(a, bin), *t = type ? hearth_xml_text(a, type) : NULL;
    if (!b64)
        return HEARTH_ENOMEM;
    int rc = photo_from_base64(p, b64, t);
    if (rc)
        photo_clear(p);
    return rc;
}

typedef struct vcard_parse {
    photo_t *p;
    int rc;
} vcard_parse_t;

static void vcard_parsed(void *ud, hearth_xml_node_t *vcard, hearth_arena_t *a)
{
    vcard_parse_t *vp = ud;
    if (!strcmp(vcard->name, "vCard") && !strcmp(vcard->ns, HEARTH_NS_VCARD))
        vp->rc = photo_of_vcard(vp->p, a, vcard);
}

/* The PHOTO of a stored vCard (NULL: none). */
static int photo_of_stored(photo_t *p, const char *xml)
{
    memset(p, 0, sizeof(*p));
    vcard_parse_t vp = {p, 0};
    if (xml)
        router__parse(xml, strlen(xml), vcard_parsed, &vp);
    return vp.rc;
}

/* What the image's first bytes say it is, for a metadata <info/> whose vCard gave no TYPE. */
static const char *sniff_type(const unsigned char *b, size_t n)
{
    if (n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8))
        return "image/png";
    if (n >= 3 && !memcmp(b, "\xff\xd8\xff", 3))
        return "image/jpeg";
    if (n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6)))
        return "image/gif";
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4))
        return "image/webp";
    return "application/octet-stream";
}

/* ---- the hash in presence (XEP-0398 §4) ---- */

/* Puts hash into an available presence st: an <x/> of vcard-temp:x:update without <photo/> gets
 * one, a <photo/> with another hash gets ours, and one without x gets x when there is an
 * avatar. An empty <photo/> is the client's word (no avatar, or not ready yet: XEP-0153 §4.2)
 * and stays. 1 when st changed. */
static int inject(hearth_arena_t *a, hearth_xml_node_t *st, const char *hash)
{
    hearth_xml_node_t *x = hearth_xml_child(st, "x", NS_UPDATE);
    hearth_xml_node_t *photo = x ? hearth_xml_child(x, "photo", NS_UPDATE) : NULL;
    if (photo) {
        const char *t = hearth_xml_text(a, photo);
        if (!t || !*t || !strcmp(t, hash))
            return 0;
        photo->children = photo->last_child = NULL;
        return *hash && !hearth_xml_add_text(a, photo, hash, strlen(hash)) ? 0 : 1;
    }
    if (!x && !*hash)
        return 0;
    if ((!x && !(x = hearth_xml_add_child(a, st, "x", NS_UPDATE))) ||
        !(photo = hearth_xml_add_child(a, x, "photo", NS_UPDATE)))
        return 0;
    if (*hash)
        hearth_xml_add_text(a, photo, hash, strlen(hash));
    return 1;
}

typedef struct resend {
    session_t *s;
    const char *hash;
} resend_t;

static void resend_parsed(void *ud, hearth_xml_node_t *st, hearth_arena_t *a)
{
    resend_t *r = ud;
    if (inject(a, st, r->hash))
        router__from_session(r->s, st, a); /* as if the client sent it again: broadcast */
}

/* The hash is newly known or changed: each available resource's presence says it again, with
 * it. Directed presence (rooms) is not sent again (XEP-0398 §5: the client may). */
static void refresh_presence(user_t *u, const char *hash)
{
    for (session_t *s = u->sessions; s; s = s->user_next) {
        if (!s->available || !s->presence || !im__live(s))
            continue;
        hearth_bytes_t *p = hearth_bytes_ref(s->presence); /* a resend replaces s->presence */
        resend_t r = {s, hash};
        router__parse(p->data, p->len, resend_parsed, &r);
        hearth_bytes_unref(p);
    }
}

static void set_hash(user_t *u, const char *hash)
{
    avatar_user_t *au = state_of(u, 1);
    if (!au)
        return;
    int changed = au->state != HASH_KNOWN || strcmp(au->hash, hash);
    au->state = HASH_KNOWN;
    snprintf(au->hash, sizeof(au->hash), "%s", hash);
    if (changed)
        refresh_presence(u, au->hash);
}

static void from_pep_at_login(worker_t *w, user_t *u);

typedef struct hash_load {
    worker_t *w;
    char *bare;
} hash_load_t;

static void hash_loaded(void *ud, int err, const char *xml)
{
    hash_load_t *l = ud;
    user_t *u = worker__user(l->w, l->bare, 0);
    avatar_user_t *au = u ? state_of(u, 0) : NULL;
    if (au && au->state == HASH_LOADING) {
        photo_t p;
        if (err && err != HEARTH_ENOTFOUND) {
            hlog(LOG_ERROR, "avatar of %s: the vCard could not be read: %s", l->bare,
                 hearth_strerror(err));
            au->state = HASH_UNKNOWN; /* the next presence tries again */
        } else {
            if (photo_of_stored(&p, xml))
                hlog(LOG_WARN, "avatar of %s: the vCard's PHOTO is no base64", l->bare);
            au->state = HASH_UNKNOWN; /* set_hash: newly known */
            set_hash(u, p.present ? p.hash : "");
            if (!p.present && u->state == USER_READY && pep__has_items(u, NS_META) == 1)
                from_pep_at_login(l->w, u);
            photo_clear(&p);
        }
    }
    free(l->bare);
    free(l);
}

/* Reads the hash from the vCard when it is not known: an account's first session. */
static void load_hash(worker_t *w, user_t *u)
{
    avatar_user_t *au = state_of(u, 1);
    if (!au || au->state != HASH_UNKNOWN)
        return;
    hash_load_t *l = calloc(1, sizeof(*l));
    if (!l || !(l->bare = strdup(u->bare))) {
        free(l);
        return;
    }
    l->w = w;
    au->state = HASH_LOADING;
    if (storage_vcard_get(w->srv->storage, &w->storage_target, u->node, hash_loaded, l)) {
        au->state = HASH_UNKNOWN;
        free(l->bare);
        free(l);
    }
}

static int session_bound(hook_args_t *a)
{
    if (a->s->user)
        load_hash(a->w, a->s->user);
    return HOOK_CONTINUE;
}

/* Before the presence module sends it: available presence, broadcast or directed (rooms too,
 * XEP-0398 §4). While the hash is being read, the presence goes as it is, and again with the
 * hash once it is known. */
static int presence_out(hook_args_t *a)
{
    user_t *u = a->s->user;
    if (!u || hearth_xml_attr(a->st, "type"))
        return HOOK_CONTINUE;
    avatar_user_t *au = state_of(u, 1);
    if (au && au->state == HASH_KNOWN)
        inject(a->arena, a->st, au->hash);
    else
        load_hash(a->w, u);
    return HOOK_CONTINUE;
}

static int user_unloaded(hook_args_t *a)
{
    free(a->u->slot[slot]);
    a->u->slot[slot] = NULL;
    return HOOK_CONTINUE;
}

/* ---- from PEP to the vCard (XEP-0398 §3.1) ---- */

/* One conversion into the vCard: the avatar (b64 NULL: none) and its hash. */
typedef struct to_vcard {
    worker_t *w;
    char *bare;
    char *node; /* the account's storage key */
    char *meta; /* the metadata item's payload (NULL: the avatar is gone) */
    char *id;   /* the image's id (SHA-1 hex) from its <info/> */
    char *type;
    char *b64;
    char *xml; /* the new vCard */
} to_vcard_t;

static void to_vcard_free(void *arg)
{
    to_vcard_t *t = arg;
    if (!t)
        return;
    free(t->bare);
    free(t->node);
    free(t->meta);
    free(t->id);
    free(t->type);
    free(t->b64);
    free(t->xml);
    free(t);
}

static void vcard_written(void *ud, int err)
{
    to_vcard_t *t = ud;
    user_t *u = worker__user(t->w, t->bare, 0);
    if (err)
        hlog(LOG_ERROR, "avatar of %s: the vCard could not be written: %s", t->bare,
             hearth_strerror(err));
    else if (u)
        set_hash(u, t->b64 ? t->id : "");
    to_vcard_free(t);
}

typedef struct vcard_edit {
    to_vcard_t *t;
    int done;
} vcard_edit_t;

/* The stored vCard with its PHOTO replaced (or removed), into t->xml. */
static void vcard_edit(vcard_edit_t *e, hearth_xml_node_t *vcard, hearth_arena_t *a)
{
    to_vcard_t *t = e->t;
    e->done = 1;
    for (hearth_xml_node_t *c = hearth_xml_first_element(vcard), *next; c; c = next) {
        next = hearth_xml_next_element(c);
        if (!strcmp(c->name, "PHOTO") && !strcmp(c->ns, HEARTH_NS_VCARD))
            hearth_xml_remove(c);
    }
    if (t->b64) {
        hearth_xml_node_t *ph = hearth_xml_add_child(a, vcard, "PHOTO", HEARTH_NS_VCARD);
        hearth_xml_node_t *ty = ph ? hearth_xml_add_child(a, ph, "TYPE", NULL) : NULL;
        hearth_xml_node_t *bv = ph ? hearth_xml_add_child(a, ph, "BINVAL", NULL) : NULL;
        if (!bv || !hearth_xml_add_text(a, ty, t->type, strlen(t->type)) ||
            !hearth_xml_add_text(a, bv, t->b64, strlen(t->b64)))
            return;
    }
    if (!hearth_xml_first_element(vcard))
        return; /* nothing left: the vCard goes (t->xml NULL) */
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(vcard, HEARTH_NS_CLIENT, &b) == 0)
        t->xml = hearth_buf_steal(&b, NULL);
    hearth_buf_free(&b);
}

static void vcard_edit_parsed(void *ud, hearth_xml_node_t *vcard, hearth_arena_t *a)
{
    if (!strcmp(vcard->name, "vCard") && !strcmp(vcard->ns, HEARTH_NS_VCARD))
        vcard_edit(ud, vcard, a);
}

static void vcard_read(void *ud, int err, const char *xml)
{
    to_vcard_t *t = ud;
    if (err) {
        hlog(LOG_ERROR, "avatar of %s: the vCard could not be read: %s", t->bare,
             hearth_strerror(err));
        to_vcard_free(t);
        return;
    }
    static const char empty[] = "<vCard xmlns='" HEARTH_NS_VCARD "'/>";
    vcard_edit_t e = {t, 0};
    router__parse(xml ? xml : empty, xml ? strlen(xml) : sizeof(empty) - 1, vcard_edit_parsed, &e);
    if (!e.done || (t->b64 && !t->xml)) {
        hlog(LOG_ERROR, "avatar of %s: the vCard could not be changed", t->bare);
        to_vcard_free(t);
        return;
    }
    /* The avatar was taken in PEP (pep.max_item_size): one the vCard cannot hold stays out of
     * it, and the vCard, its hash and presence keep the avatar they had. */
    if (t->xml && strlen(t->xml) > t->w->set.vcard_max_size) {
        hlog(LOG_WARN,
             "avatar of %s: the vCard with it would pass vcard.max_size; it stays in PEP only",
             t->bare);
        to_vcard_free(t);
        return;
    }
    worker_t *w = t->w;
    if (storage_vcard_set(w->srv->storage, &w->storage_target, t->node, t->xml, vcard_written, t))
        vcard_written(t, HEARTH_EAGAIN);
}

static void write_vcard(to_vcard_t *t)
{
    worker_t *w = t->w;
    if (storage_vcard_get(w->srv->storage, &w->storage_target, t->node, vcard_read, t))
        vcard_read(t, HEARTH_EAGAIN, NULL);
}

static void data_parsed(void *ud, hearth_xml_node_t *r, hearth_arena_t *a)
{
    to_vcard_t *t = ud;
    hearth_xml_node_t *items = hearth_xml_child(r, "items", HEARTH_NS_PUBSUB);
    for (hearth_xml_node_t *it = items ? hearth_xml_first_element(items) : NULL; it;
         it = hearth_xml_next_element(it)) {
        const char *id = hearth_xml_attr(it, "id");
        hearth_xml_node_t *d = hearth_xml_child(it, "data", NS_DATA);
        if (d && id && !strcmp(id, t->id)) {
            char *s = hearth_xml_text(a, d);
            t->b64 = s ? unfold(s) : NULL;
            return;
        }
    }
}

/* The data item the metadata names, read from PEP: checked against its id (XEP-0398 §3.1
 * SHOULD), then into the vCard. */
static void data_read(void *ud, const pubsub_err_t *e, const char *inner)
{
    to_vcard_t *t = ud;
    if (e || !inner) {
        hlog(LOG_WARN, "avatar of %s: the metadata names data %s that is not in PEP", t->bare,
             t->id);
        to_vcard_free(t);
        return;
    }
    router__parse(inner, strlen(inner), data_parsed, t);
    photo_t p = {0};
    if (!t->b64 || photo_from_base64(&p, t->b64, NULL) || strcasecmp(p.hash, t->id)) {
        hlog(LOG_WARN, "avatar of %s: data %s is missing or not the image its id names", t->bare,
             t->id);
        photo_clear(&p);
        to_vcard_free(t);
        return;
    }
    if (!t->type && !(t->type = strdup(sniff_type(p.bin, p.len)))) {
        photo_clear(&p);
        to_vcard_free(t);
        return;
    }
    snprintf(t->id, strlen(t->id) + 1, "%s", p.hash); /* as the vCard's hash is written */
    photo_clear(&p);
    write_vcard(t);
}

/* The metadata's <info/> that points to no URL (XEP-0398 §3.1): its id and type into t. 0 when
 * there is one, 1 for an empty metadata (the avatar is off), -1 otherwise. */
typedef struct meta_parse {
    to_vcard_t *t;
    int rc;
} meta_parse_t;

static void meta_parsed(void *ud, hearth_xml_node_t *m, hearth_arena_t *a)
{
    meta_parse_t *mp = ud;
    (void)a;
    mp->rc = -1;
    if (strcmp(m->name, "metadata") || strcmp(m->ns, NS_META))
        return;
    int infos = 0;
    for (hearth_xml_node_t *i = hearth_xml_first_element(m); i; i = hearth_xml_next_element(i)) {
        if (strcmp(i->name, "info") || strcmp(i->ns, NS_META))
            continue;
        infos++;
        const char *id = hearth_xml_attr(i, "id"), *type = hearth_xml_attr(i, "type");
        if (hearth_xml_attr(i, "url") || !id || strlen(id) != HASH_LEN)
            continue;
        mp->t->id = strdup(id);
        mp->t->type = type && *type ? strdup(type) : NULL;
        mp->rc = mp->t->id ? 0 : -1;
        return;
    }
    mp->rc = infos ? -1 : 1;
}

static void meta_acquired(worker_t *w, user_t *u, void *arg)
{
    to_vcard_t *t = arg;
    if (u->state != USER_READY) {
        to_vcard_free(t);
        return;
    }
    if (!(t->node = strdup(u->node))) {
        to_vcard_free(t);
        return;
    }
    meta_parse_t mp = {t, t->meta ? -1 : 1}; /* no payload: the metadata went */
    if (t->meta)
        router__parse(t->meta, strlen(t->meta), meta_parsed, &mp);
    if (mp.rc == 1) { /* no avatar now: out of the vCard */
        write_vcard(t);
        return;
    }
    if (mp.rc < 0) { /* only images elsewhere (url), or no info to use: the vCard keeps its own */
        to_vcard_free(t);
        return;
    }
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<iq type='get' id='avatar'><pubsub xmlns='" HEARTH_NS_PUBSUB
                                       "'><items node='" NS_DATA "'><item id='");
    rc = rc ?: hearth_buf_append_escaped(&b, t->id, strlen(t->id));
    rc = rc ?: hearth_buf_append_str(&b, "'/></items></pubsub></iq>");
    if (rc) {
        hearth_buf_free(&b);
        to_vcard_free(t);
        return;
    }
    pep__submit_internal(w, u, b.data, b.len, data_read, t);
    hearth_buf_free(&b);
}

static void meta_later(worker_t *w, void *arg)
{
    to_vcard_t *t = arg;
    user__acquire(w, t->bare, meta_acquired, t);
}

/* A client published or removed avatar metadata (XEP-0084 §4.2, §4.5). */
static void pep_changed(worker_t *w, user_t *u, const char *node, pep_change_t what, const char *id,
                        const char *payload)
{
    (void)id;
    if (strcmp(node, NS_META))
        return;
    to_vcard_t *t = calloc(1, sizeof(*t));
    if (!t || !(t->bare = strdup(u->bare)) ||
        (what == PEP_PUBLISHED && !(t->meta = strdup(payload)))) {
        to_vcard_free(t);
        return;
    }
    t->w = w;
    pep__later(w, meta_later, to_vcard_free, t);
}

/* An avatar in PEP that the vCard lacks (published before the conversion existed, or while it
 * was off): the newest metadata item, taken as if just published, when it names an image. */
static void login_meta_parsed(void *ud, hearth_xml_node_t *r, hearth_arena_t *a)
{
    to_vcard_t *t = ud;
    (void)a;
    hearth_xml_node_t *items = hearth_xml_child(r, "items", HEARTH_NS_PUBSUB);
    hearth_xml_node_t *it = items ? hearth_xml_child(items, "item", HEARTH_NS_PUBSUB) : NULL;
    hearth_xml_node_t *m = it ? hearth_xml_child(it, "metadata", NS_META) : NULL;
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (m && hearth_xml_child(m, "info", NS_META) && hearth_xml_serialize(m, NULL, &b) == 0)
        t->meta = hearth_buf_steal(&b, NULL);
    hearth_buf_free(&b);
}

static void login_meta_read(void *ud, const pubsub_err_t *e, const char *inner)
{
    to_vcard_t *t = ud;
    if (!e && inner)
        router__parse(inner, strlen(inner), login_meta_parsed, t);
    if (!t->meta) {
        to_vcard_free(t); /* no avatar in PEP either */
        return;
    }
    pep__later(t->w, meta_later, to_vcard_free, t); /* not from inside PEP's queue */
}

static void from_pep_later(worker_t *w, void *arg)
{
    to_vcard_t *t = arg;
    user_t *u = worker__user(w, t->bare, 0);
    avatar_user_t *au = u ? state_of(u, 0) : NULL;
    static const char iq[] = "<iq type='get' id='avatar'><pubsub xmlns='" HEARTH_NS_PUBSUB
                             "'><items node='" NS_META "' max_items='1'/></pubsub></iq>";
    if (au && au->state == HASH_KNOWN && !*au->hash && u->state == USER_READY)
        pep__submit_internal(w, u, iq, sizeof(iq) - 1, login_meta_read, t);
    else
        to_vcard_free(t);
}

/* PEP was loaded (a client uses it): when the vCard is known to have no PHOTO and PEP has
 * avatar metadata, the avatar goes to the vCard. The other order is hash_loaded's. Not at
 * every login: loading PEP only for this would make every login dearer. */
static void pep_loaded(worker_t *w, user_t *u)
{
    avatar_user_t *au = state_of(u, 0);
    if (!au || au->state != HASH_KNOWN || *au->hash || pep__has_items(u, NS_META) != 1)
        return;
    to_vcard_t *t = calloc(1, sizeof(*t));
    if (!t || !(t->bare = strdup(u->bare))) {
        free(t);
        return;
    }
    t->w = w;
    pep__later(w, from_pep_later, to_vcard_free, t); /* not from inside PEP's loading */
}

static void from_pep_at_login(worker_t *w, user_t *u)
{
    to_vcard_t *t = calloc(1, sizeof(*t));
    if (!t || !(t->bare = strdup(u->bare))) {
        free(t);
        return;
    }
    t->w = w;
    static const char iq[] = "<iq type='get' id='avatar'><pubsub xmlns='" HEARTH_NS_PUBSUB
                             "'><items node='" NS_META "' max_items='1'/></pubsub></iq>";
    pep__submit_internal(w, u, iq, sizeof(iq) - 1, login_meta_read, t);
}

/* ---- from the vCard to PEP (XEP-0398 §3.2) ---- */

/* Refused before anything is stored: a PHOTO that is no base64, or one too large to be an
 * avatar in PEP (pep.max_item_size). */
static int vcard_check(session_t *s, const hearth_xml_node_t *vcard, hearth_stanza_error_t *cond,
                       const char **text)
{
    hearth_xml_node_t *ph = hearth_xml_child(vcard, "PHOTO", HEARTH_NS_VCARD);
    hearth_xml_node_t *bin = ph ? hearth_xml_child(ph, "BINVAL", HEARTH_NS_VCARD) : NULL;
    if (!bin)
        return 0;
    size_t b64 = 0, chars = 0;
    for (hearth_xml_node_t *c = bin->children; c; c = c->next) {
        if (c->type != HEARTH_XML_TEXT)
            continue;
        for (size_t i = 0; i < c->text_len; i++) {
            unsigned char ch = (unsigned char)c->text[i];
            b64 += !isspace(ch);
            chars += isalnum(ch) || ch == '+' || ch == '/' || ch == '=' || isspace(ch) ? 0 : 1;
        }
    }
    if (chars || b64 == 0 || b64 % 4) {
        *cond = HEARTH_STANZA_ERR_BAD_REQUEST;
        *text = "the PHOTO's BINVAL is not base64";
        return -1;
    }
    if (b64 + DATA_WRAP > s->w->set.pep_max_item_size) {
        *cond = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
        *text = "the PHOTO is larger than an avatar in PEP may be (pep.max_item_size), so it "
                "cannot be converted (XEP-0398); nothing was stored";
        return -1;
    }
    return 0;
}

/* One conversion into PEP: data, then metadata, then the reply to the vCard set. */
typedef struct to_pep {
    worker_t *w;
    char *bare;
    iq_deferred_t *d;
    photo_t p; /* present 0: the avatar is off */
} to_pep_t;

static void to_pep_free(void *arg)
{
    to_pep_t *t = arg;
    if (!t)
        return;
    if (t->d)
        iq_deferred_error(t->d, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                          "the vCard was stored; its PHOTO could not be published as the avatar");
    free(t->bare);
    photo_clear(&t->p);
    free(t);
}

static void to_pep_failed(to_pep_t *t, const pubsub_err_t *e)
{
    char text[512];
    snprintf(text, sizeof(text),
             "the vCard was stored, but its PHOTO could not be published as the avatar in PEP "
             "(XEP-0398): %s",
             pubsub_err_text(e));
    iq_deferred_error(t->d, e->cond, text);
    t->d = NULL;
    to_pep_free(t);
}

static void meta_published(void *ud, const pubsub_err_t *e, const char *inner)
{
    to_pep_t *t = ud;
    (void)inner;
    if (e) {
        to_pep_failed(t, e);
        return;
    }
    iq_deferred_result(t->d, NULL);
    t->d = NULL;
    to_pep_free(t);
}

static void publish(worker_t *w, user_t *u, const char *node, const char *id, const char *payload,
                    pep_internal_fn done, void *ud)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<iq type='set' id='avatar'><pubsub xmlns='" HEARTH_NS_PUBSUB
                                       "'><publish node='");
    rc = rc ?: hearth_buf_append_str(&b, node);
    rc = rc ?: hearth_buf_append_str(&b, "'><item");
    if (id) {
        rc = rc ?: hearth_buf_append_str(&b, " id='");
        rc = rc ?: hearth_buf_append_escaped(&b, id, strlen(id));
        rc = rc ?: hearth_buf_append_str(&b, "'");
    }
    rc = rc ?: hearth_buf_append_str(&b, ">");
    rc = rc ?: hearth_buf_append_str(&b, payload);
    rc = rc ?: hearth_buf_append_str(&b, "</item></publish></pubsub></iq>");
    if (rc) {
        pubsub_err_t e;
        pubsub_fail(&e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        hearth_buf_free(&b);
        done(ud, &e, NULL);
        return;
    }
    pep__submit_internal(w, u, b.data, b.len, done, ud);
    hearth_buf_free(&b);
}

static void publish_meta(worker_t *w, user_t *u, void *arg)
{
    to_pep_t *t = arg;
    if (u->state != USER_READY) {
        to_pep_free(t);
        return;
    }
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc;
    if (t->p.present) {
        const char *type = t->p.type ? t->p.type : sniff_type(t->p.bin, t->p.len);
        rc = hearth_buf_printf(&b, "<metadata xmlns='" NS_META "'><info bytes='%zu' id='%s' type='",
                               t->p.len, t->p.hash);
        rc = rc ?: hearth_buf_append_escaped(&b, type, strlen(type));
        rc = rc ?: hearth_buf_append_str(&b, "'/></metadata>");
    } else {
        rc = hearth_buf_append_str(&b, "<metadata xmlns='" NS_META "'/>"); /* XEP-0084 §4.5 */
    }
    if (rc) {
        hearth_buf_free(&b);
        to_pep_free(t);
        return;
    }
    publish(w, u, NS_META, t->p.present ? t->p.hash : NULL, b.data, meta_published, t);
    hearth_buf_free(&b);
}

static void meta_next(worker_t *w, void *arg)
{
    to_pep_t *t = arg;
    user__acquire(w, t->bare, publish_meta, t);
}

static void data_published(void *ud, const pubsub_err_t *e, const char *inner)
{
    to_pep_t *t = ud;
    (void)inner;
    if (e) {
        to_pep_failed(t, e);
        return;
    }
    pep__later(t->w, meta_next, to_pep_free, t); /* not from inside PEP's queue */
}

static void publish_data(worker_t *w, user_t *u, void *arg)
{
    to_pep_t *t = arg;
    if (u->state != USER_READY) {
        to_pep_free(t);
        return;
    }
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<data xmlns='" NS_DATA "'>");
    rc = rc ?: hearth_buf_append_str(&b, t->p.b64);
    rc = rc ?: hearth_buf_append_str(&b, "</data>");
    if (rc) {
        hearth_buf_free(&b);
        to_pep_free(t);
        return;
    }
    publish(w, u, NS_DATA, t->p.hash, b.data, data_published, t);
    hearth_buf_free(&b);
}

/* A client's vCard is stored (its check passed). Its avatar, when it changed, goes to PEP
 * before the client hears the result; the same avatar again changes nothing. */
static void vcard_stored(worker_t *w, const char *bare, const char *xml, iq_deferred_t *d)
{
    to_pep_t *t = calloc(1, sizeof(*t));
    if (!t || !(t->bare = strdup(bare))) {
        free(t);
        iq_deferred_result(d, NULL); /* stored; only the conversion is lost */
        hlog(LOG_ERROR, "avatar of %s: no memory to convert the vCard", bare);
        return;
    }
    t->w = w;
    t->d = d;
    if (photo_of_stored(&t->p, xml)) { /* checked before: only memory */
        to_pep_free(t);
        return;
    }
    user_t *u = worker__user(w, bare, 0);
    avatar_user_t *au = u ? state_of(u, 1) : NULL;
    const char *now = t->p.present ? t->p.hash : "";
    int same = au && au->state == HASH_KNOWN && !strcmp(au->hash, now);
    if (u)
        set_hash(u, now);
    if (same) {
        iq_deferred_result(d, NULL);
        t->d = NULL;
        to_pep_free(t);
        return;
    }
    if (t->p.present)
        user__acquire(w, bare, publish_data, t);
    else
        user__acquire(w, bare, publish_meta, t);
}

/* ---- the module ---- */

static int avatar_init(server_t *srv)
{
    (void)srv;
    if ((slot = user__slot_new()) < 0)
        return HEARTH_ELIMIT;
    static const vcard_listener_t listener = {vcard_check, vcard_stored};
    vcard__listen(&listener);
    pep__listen(pep_changed);
    pep__listen_loaded(pep_loaded);
    int rc = hooks__add(HOOK_PRESENCE_OUT, 20, presence_out);
    rc = rc ?: hooks__add(HOOK_SESSION_BOUND, 0, session_bound);
    return rc ?: hooks__add(HOOK_USER_UNLOADED, 0, user_unloaded);
}

/* XEP-0398 §2: on the account, exactly while the conversion runs. */
static const char *const avatar_account_features[] = {NS_CONVERSION, NULL};

const module_t module_avatar = {
    .name = "avatar",
    .switch_key = "pep.vcard_conversion",
    .account_features = avatar_account_features,
    .init = avatar_init,
};
