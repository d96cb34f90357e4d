/* A room's vCard (XEP-0054 on the room's bare JID) and its avatar (XEP-0486): owners set it,
 * anyone reads it, disco#info gives the SHA-1 of each photo in it. A persistent room's vCard is
 * a "muc.vcard" document read when asked for (its hashes are in the room's document); a
 * temporary room's stays in memory with the room. Runs on the room's home worker. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "core/log.h"
#include "hearth/sasl.h"
#include "modules/muc.h"

#define KIND_VCARD "muc.vcard"
#define EMPTY_VCARD "<vCard xmlns='" HEARTH_NS_VCARD "'/>"

void muc__vcard_forget(muc_room_t *r)
{
    free(r->vcard);
    free(r->avatar);
    r->vcard = r->avatar = NULL;
}

/* The hex SHA-1 of each <PHOTO><BINVAL/> of vc (XEP-0153's hash), space-separated, in a;
 * "" when there is none. NULL with *bad set when a BINVAL is no base64, NULL alone when out of
 * memory. */
static char *photo_hashes(hearth_arena_t *a, const hearth_xml_node_t *vc, int *bad)
{
    hearth_buf_t out = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&out, "");
    for (hearth_xml_node_t *p = hearth_xml_first_element(vc); p && !rc && !*bad;
         p = hearth_xml_next_element(p)) {
        hearth_xml_node_t *bin = !strcmp(p->name, "PHOTO") && !strcmp(p->ns, HEARTH_NS_VCARD)
                                     ? hearth_xml_child(p, "BINVAL", HEARTH_NS_VCARD)
                                     : NULL;
        const char *text = bin ? hearth_xml_text(a, bin) : NULL;
        if (!bin)
            continue;
        if (!text) {
            rc = -1;
            break;
        }
        /* Line breaks and spaces are common in BINVAL: dropped before decoding. */
        size_t n = strlen(text), k = 0;
        char *b64 = hearth_arena_alloc(a, n + 1);
        if (!b64) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < n; i++)
            if (!isspace((unsigned char)text[i]))
                b64[k++] = text[i];
        b64[k] = '\0';
        char *raw = NULL;
        size_t rawlen = 0;
        int d = hearth_base64_decode(b64, k, &raw, &rawlen);
        if (d) {
            *bad = d != HEARTH_ENOMEM;
            rc = d == HEARTH_ENOMEM ? -1 : 0;
            break;
        }
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        if (!EVP_Digest(raw, rawlen, md, &mdlen, EVP_sha1(), NULL))
            rc = -1;
        free(raw);
        if (out.len)
            rc = rc ?: hearth_buf_append_str(&out, " ");
        for (unsigned i = 0; i < mdlen && !rc; i++)
            rc = hearth_buf_printf(&out, "%02x", md[i]);
    }
    char *s = rc || *bad ? NULL : hearth_arena_strdup(a, out.data ? out.data : "");
    hearth_buf_free(&out);
    return s;
}

/* ---- reading ---- */

typedef struct vcard_get {
    worker_t *w;
    char *room, *to, *id;
} vcard_get_t;

static void vcard_get_free(vcard_get_t *g)
{
    free(g->room);
    free(g->to);
    free(g->id);
    free(g);
}

typedef struct reply_ctx {
    vcard_get_t *g;
    int sent;
} reply_ctx_t;

static void reply_parsed(void *ud, hearth_xml_node_t *vc, hearth_arena_t *a)
{
    reply_ctx_t *c = ud;
    hearth_xml_node_t *iq = hearth_xml_new(a, "iq", HEARTH_NS_CLIENT);
    if (!iq)
        return;
    hearth_xml_set_attr(a, iq, "type", "result");
    hearth_xml_set_attr(a, iq, "id", c->g->id);
    hearth_xml_set_attr(a, iq, "from", c->g->room);
    hearth_xml_set_attr(a, iq, "to", c->g->to);
    hearth_xml_append(iq, vc);
    muc__send_node(c->g->w, c->g->to, iq);
    c->sent = 1;
}

/* The stored vCard (xml, NULL: the empty one) to the asker. */
static void vcard_reply(vcard_get_t *g, const char *xml)
{
    const char *v = xml ? xml : EMPTY_VCARD;
    reply_ctx_t c = {g, 0};
    router__parse(v, strlen(v), reply_parsed, &c);
    if (c.sent)
        return;
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *iq = a ? hearth_xml_new(a, "iq", HEARTH_NS_CLIENT) : NULL;
    if (iq) {
        hearth_xml_set_attr(a, iq, "type", "error");
        hearth_xml_set_attr(a, iq, "id", g->id);
        hearth_xml_set_attr(a, iq, "from", g->room);
        hearth_xml_set_attr(a, iq, "to", g->to);
        hearth_xml_add_stanza_error(a, iq, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        muc__send_node(g->w, g->to, iq);
    }
    hearth_arena_free(a);
}

static void vcard_read(void *ud, int err, const char *xml)
{
    vcard_get_t *g = ud;
    if (err && err != HEARTH_ENOTFOUND)
        hlog(LOG_ERROR, "muc: vCard of %s not read: %s", g->room, hearth_strerror(err));
    vcard_reply(g, err ? NULL : xml);
    vcard_get_free(g);
}

/* ---- writing ---- */

static void vcard_written(void *ud, int err)
{
    char *room = ud;
    if (err)
        hlog(LOG_ERROR, "muc: vCard of %s not stored: %s", room, hearth_strerror(err));
    free(room);
}

/* A persistent room's vCard (xml; NULL: none) to storage. */
static void vcard_store(worker_t *w, muc_room_t *r, const char *xml)
{
    char *room = strdup(r->jid);
    int rc = !room ? HEARTH_ENOMEM
             : xml ? storage_doc_put(w->srv->storage, &w->storage_target, KIND_VCARD, r->jid, xml,
                                     vcard_written, room)
                   : storage_doc_delete(w->srv->storage, &w->storage_target, KIND_VCARD, r->jid,
                                        vcard_written, room);
    if (rc) {
        hlog(LOG_ERROR, "muc: vCard of %s not stored: %s", r->jid, hearth_strerror(rc));
        free(room);
    }
}

void muc__vcard_save(worker_t *w, muc_room_t *r)
{
    if (!r->vcard || !r->cfg.persistent)
        return;
    vcard_store(w, r, r->vcard); /* a temporary room made persistent: its vCard to storage */
    free(r->vcard);
    r->vcard = NULL;
}

void muc__vcard_delete(worker_t *w, muc_room_t *r)
{
    vcard_store(w, r, NULL);
    muc__vcard_forget(r);
}

void muc__vcard_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                   const char *from, int set)
{
    hearth_xml_node_t *vc = hearth_xml_first_element(iq);
    if (!set) {
        vcard_get_t *g = calloc(1, sizeof(*g));
        if (!g || !(g->room = strdup(r->jid)) || !(g->to = strdup(from)) ||
            !(g->id = strdup(hearth_xml_attr(iq, "id")))) {
            if (g)
                vcard_get_free(g);
            muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
            return;
        }
        g->w = w;
        if (!r->cfg.persistent || r->vcard) {
            vcard_reply(g, r->vcard);
            vcard_get_free(g);
        } else if (storage_doc_get(w->srv->storage, &w->storage_target, KIND_VCARD, r->jid,
                                   vcard_read, g)) {
            vcard_get_free(g);
            muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        }
        return;
    }
    char *bare = hearth_arena_strndup(a, from, strcspn(from, "/"));
    if (muc__aff_of(r, bare) != AFF_OWNER) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_FORBIDDEN,
                         "only owners may set a room's vCard");
        return;
    }
    /* A <vCard/> with nothing inside removes it (XEP-0486 §3.2), as for accounts. */
    hearth_buf_t xml = HEARTH_BUF_INIT;
    int empty = !hearth_xml_first_element(vc);
    if (!empty && hearth_xml_serialize(vc, HEARTH_NS_CLIENT, &xml)) {
        hearth_buf_free(&xml);
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    if (xml.len > w->set.vcard_max_size) {
        hearth_buf_free(&xml);
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
                         "vCard too large");
        return;
    }
    int bad = 0;
    char *hashes = photo_hashes(a, vc, &bad);
    char *avatar = hashes && *hashes ? strdup(hashes) : NULL;
    char *copy = !empty && !r->cfg.persistent ? strdup(xml.data) : NULL;
    if (!hashes || (hashes && *hashes && !avatar) || (!empty && !r->cfg.persistent && !copy)) {
        free(avatar);
        free(copy);
        hearth_buf_free(&xml);
        muc__reply_error(w, iq, a, r->jid, from,
                         bad ? HEARTH_STANZA_ERR_BAD_REQUEST
                             : HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                         bad ? "a PHOTO's BINVAL is not base64" : NULL);
        return;
    }
    muc__vcard_forget(r);
    r->vcard = copy;
    r->avatar = avatar;
    if (r->cfg.persistent) {
        vcard_store(w, r, empty ? NULL : xml.data);
        muc__store_save(w, r); /* the hashes live in the room's document */
    }
    hearth_buf_free(&xml);
    muc__iq_result(w, iq, a, r->jid, from, NULL);
    static const int c104[] = {104}; /* §3.2: the room's information changed */
    muc__room_notice(w, r, c104, 1);
}
