/* A room's archive (XEP-0313 on its bare JID), answered from its log by stanza-id; moderated
 * retraction (XEP-0425), which broadcasts the retraction and leaves a tombstone in the archive
 * and the history; occupant ids (XEP-0421). Runs on the room's home worker; storage callbacks
 * find their room again by its JID (it may have left memory meanwhile). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "hearth/datetime.h"
#include "core/log.h"
#include "modules/muc.h"

/* ---- occupant ids (XEP-0421) ---- */

/* HMAC-SHA-256 under the server's secret (kept in storage: ids survive restarts) of a label,
 * the room and the real bare JID: stable per room and user, unlinkable across rooms. */
void muc__occupant_id(worker_t *w, const char *room, const char *bare, char *out)
{
    static const char label[] = "hearth muc occupant-id";
    static const char hex[] = "0123456789abcdef";
    size_t lr = strlen(room), lb = strlen(bare);
    unsigned char *msg = malloc(sizeof(label) + lr + 1 + lb);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    memset(mac, 0, sizeof(mac));
    if (msg) {
        memcpy(msg, label, sizeof(label)); /* the NULs keep the parts apart */
        memcpy(msg + sizeof(label), room, lr + 1);
        memcpy(msg + sizeof(label) + lr + 1, bare, lb);
        if (!HMAC(EVP_sha256(), w->srv->secret, (int)sizeof(w->srv->secret), msg,
                  sizeof(label) + lr + 1 + lb, mac, &maclen))
            maclen = 0;
        free(msg);
    }
    if (maclen < MUC_OCCID_BYTES)
        hlog(LOG_ERROR, "muc: no occupant id for %s in %s", bare, room);
    for (int i = 0; i < MUC_OCCID_BYTES; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[MUC_OCCID_LEN] = '\0';
}

/* ---- replies built without the request (after storage answered) ---- */

/* An IQ result (payload NULL: empty; else a node of a) or, when cond is set, error, from the
 * room to `to`. Frees a. */
static void reply_iq(worker_t *w, hearth_arena_t *a, const char *room, const char *to,
                     const char *id, hearth_stanza_error_t cond, const char *text,
                     hearth_xml_node_t *payload)
{
    hearth_xml_node_t *iq = a ? hearth_xml_new(a, "iq", HEARTH_NS_CLIENT) : NULL;
    if (iq) {
        hearth_xml_set_attr(a, iq, "type", cond ? "error" : "result");
        hearth_xml_set_attr(a, iq, "id", id);
        hearth_xml_set_attr(a, iq, "from", room);
        hearth_xml_set_attr(a, iq, "to", to);
        if (cond)
            hearth_xml_add_stanza_error(a, iq, cond, text);
        else if (payload)
            hearth_xml_append(iq, payload);
        muc__send_node(w, to, iq);
    }
    hearth_arena_free(a);
}

/* An error (or, with HEARTH_STANZA_ERR_NONE, an empty result). */
static void reply(worker_t *w, const char *room, const char *to, const char *id,
                  hearth_stanza_error_t cond, const char *text)
{
    reply_iq(w, hearth_arena_new(0), room, to, id, cond, text, NULL);
}

static void child_text(hearth_arena_t *a, hearth_xml_node_t *parent, const char *name,
                       const char *ns, const char *text)
{
    hearth_xml_node_t *n = hearth_xml_add_child(a, parent, name, ns);
    if (n)
        hearth_xml_add_text(a, n, text, strlen(text));
}

static int app_attr(hearth_buf_t *b, const char *name, const char *value)
{
    int rc = hearth_buf_append_str(b, " ");
    rc = rc ?: hearth_buf_append_str(b, name);
    rc = rc ?: hearth_buf_append_str(b, "='");
    rc = rc ?: hearth_buf_append_escaped(b, value, strlen(value));
    return rc ?: hearth_buf_append_str(b, "'");
}

static int app_text(hearth_buf_t *b, const char *name, const char *text)
{
    int rc = hearth_buf_printf(b, "<%s>", name);
    rc = rc ?: hearth_buf_append_escaped(b, text, strlen(text));
    return rc ?: hearth_buf_printf(b, "</%s>", name);
}

/* ---- who may read the archive, and whose real JIDs they see ---- */

/* The occupant of bare's sessions with the highest role, or NULL. */
static muc_occupant_t *occupant_of_bare(const muc_room_t *r, const char *bare)
{
    muc_occupant_t *best = NULL;
    for (muc_occupant_t *o = r->occupants; o; o = o->next)
        if (!strcmp(o->bare, bare) && (!best || o->role > best->role))
            best = o;
    return best;
}

/* ---- queries ---- */

typedef struct mam_q {
    worker_t *w;
    char *room, *to, *id, *queryid; /* queryid NULL when none */
    int show_jids;                  /* the querier sees real JIDs (moderator, non-anonymous) */
    /* the query, owned here until submitted */
    char *author, *origin, *after, *before;
    int64_t start_ms, end_ms;
    size_t max;
} mam_q_t;

static void mam_q_free(mam_q_t *q)
{
    if (!q)
        return;
    free(q->room);
    free(q->to);
    free(q->id);
    free(q->queryid);
    free(q->author);
    free(q->origin);
    free(q->after);
    free(q->before);
    free(q);
}

/* <message to from><result queryid id><forwarded><delay/>the stored message</forwarded>... with
 * the stored message's namespace written out (it was stored as a stanza of the stream) and,
 * for those who may see it, the author's real JID (XEP-0313 §5.1.2) in a muc#user <item/>.
 * 0, 1 when the entry is not a stored message (left out), -1 when out of memory. */
static int result_bytes(hearth_buf_t *b, const mam_q_t *q, const storage_log_entry_t *e)
{
    static const char open[] = "<message", close[] = "</message>";
    size_t len = strlen(e->xml), lo = sizeof(open) - 1, lc = sizeof(close) - 1;
    if (len < lo + lc || strncmp(e->xml, open, lo) || (e->xml[lo] != ' ' && e->xml[lo] != '>') ||
        strcmp(e->xml + len - lc, close) || !e->ref)
        return 1;
    char stamp[64];
    hearth_datetime_format(e->stamp_ms, stamp, sizeof(stamp));
    int rc = hearth_buf_append_str(b, "<message");
    rc = rc ?: app_attr(b, "to", q->to);
    rc = rc ?: app_attr(b, "from", q->room);
    rc = rc ?: hearth_buf_append_str(b, "><result xmlns='" HEARTH_NS_MAM "'");
    if (q->queryid)
        rc = rc ?: app_attr(b, "queryid", q->queryid);
    rc = rc ?: app_attr(b, "id", e->ref);
    rc = rc
             ?: hearth_buf_append_str(b, "><forwarded xmlns='" HEARTH_NS_FORWARD
                                         "'><delay xmlns='" HEARTH_NS_DELAY "'");
    rc = rc ?: app_attr(b, "stamp", stamp);
    rc = rc ?: hearth_buf_append_str(b, "/><message xmlns='" HEARTH_NS_CLIENT "'");
    rc = rc ?: hearth_buf_append(b, e->xml + lo, len - lo - lc);
    if (q->show_jids && e->origin) {
        rc = rc ?: hearth_buf_append_str(b, "<x xmlns='" HEARTH_NS_MUC_USER "'><item");
        rc = rc ?: app_attr(b, "jid", e->origin);
        rc = rc ?: hearth_buf_append_str(b, "/></x>");
    }
    rc = rc ?: hearth_buf_append_str(b, "</message></forwarded></result></message>");
    return rc ? -1 : 0;
}

static void mam_done(void *ud, int err, const storage_log_page_t *page)
{
    mam_q_t *q = ud;
    worker_t *w = q->w;
    if (err == HEARTH_ENOTFOUND) {
        reply(w, q->room, q->to, q->id, HEARTH_STANZA_ERR_ITEM_NOT_FOUND,
              "no such item in the archive");
        mam_q_free(q);
        return;
    }
    if (err) {
        hlog(LOG_ERROR, "muc: archive query in %s failed: %s", q->room, hearth_strerror(err));
        reply(w, q->room, q->to, q->id, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        mam_q_free(q);
        return;
    }
    /* The results, then the <fin/>: all to one address, so in that order (one inbox). */
    worker__hold_posts(w);
    const char *first = NULL, *last = NULL;
    int rc = 0;
    for (size_t i = 0; i < page->n && rc >= 0; i++) {
        hearth_buf_t b = HEARTH_BUF_INIT;
        rc = result_bytes(&b, q, &page->entries[i]);
        if (rc == 0) {
            if (!first)
                first = page->entries[i].ref;
            last = page->entries[i].ref;
            hearth_bytes_t *bytes = hearth_bytes_new(b.data, b.len);
            /* Routed as a headline: never stored offline, carbon-copied or archived by the
             * querier's server, dropped when its session is gone (RFC 6121 §8.5.3.2.1). */
            if (bytes)
                muc__send_bytes(w, STANZA_MESSAGE, q->to, q->room, "headline", bytes);
            hearth_bytes_unref(bytes);
        }
        hearth_buf_free(&b);
    }
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *fin = a && rc >= 0 ? hearth_xml_new(a, "fin", HEARTH_NS_MAM) : NULL;
    if (fin) {
        hearth_xml_set_attr(a, fin, "complete", page->complete ? "true" : "false");
        hearth_xml_node_t *set = hearth_xml_add_child(a, fin, "set", HEARTH_NS_RSM);
        if (first) {
            /* No 'index' on <first>: as on personal archives (mam.c says why). */
            child_text(a, set, "first", HEARTH_NS_RSM, first);
            child_text(a, set, "last", HEARTH_NS_RSM, last);
        }
        char count[32];
        snprintf(count, sizeof(count), "%zu", page->count);
        child_text(a, set, "count", HEARTH_NS_RSM, count);
        reply_iq(w, a, q->room, q->to, q->id, HEARTH_STANZA_ERR_NONE, NULL, fin);
    } else {
        hearth_arena_free(a);
        reply(w, q->room, q->to, q->id, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
    }
    worker__release_posts(w);
    mam_q_free(q);
}

/* The query's form (XEP-0313 §6.1.1): the fields a query may carry. */
static hearth_xml_node_t *query_fields(hearth_arena_t *a)
{
    hearth_xml_node_t *res = hearth_xml_new(a, "query", HEARTH_NS_MAM);
    hearth_xml_node_t *x = hearth_form_new(a, res, HEARTH_FORM_FORM);
    hearth_form_add_form_type(a, x, HEARTH_NS_MAM);
    hearth_form_add_field(a, x, "with", "jid-single", "An occupant JID (room/nick)", NULL);
    hearth_form_add_field(a, x, "start", "text-single", "From (XEP-0082)", NULL);
    hearth_form_add_field(a, x, "end", "text-single", "Until (XEP-0082)", NULL);
    return res;
}

/* Reads the data form into q: 0, or the error (*text set). */
static hearth_stanza_error_t parse_form(worker_t *w, const muc_room_t *r, hearth_arena_t *a,
                                        const hearth_xml_node_t *x, mam_q_t *q, const char **text)
{
    (void)w;
    hearth_form_type_t type = hearth_form_type_of(x);
    if (type != HEARTH_FORM_UNTYPED && type != HEARTH_FORM_SUBMIT) {
        *text = "the form must be of type submit";
        return HEARTH_STANZA_ERR_BAD_REQUEST;
    }
    hearth_form_t form;
    int rc = hearth_form_parse(a, x, NULL, &form, text);
    if (rc)
        return rc == HEARTH_ENOMEM ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                   : HEARTH_STANZA_ERR_BAD_REQUEST;
    for (size_t i = 0; i < form.nfields; i++) {
        const char *var = form.fields[i].var;
        const char *v = form.fields[i].nvalues ? form.fields[i].values[0] : "";
        if (!var) {
            *text = "a field without var";
            return HEARTH_STANZA_ERR_BAD_REQUEST;
        }
        if (!strcmp(var, "FORM_TYPE")) {
            if (strcmp(v, HEARTH_NS_MAM)) {
                *text = "FORM_TYPE must be " HEARTH_NS_MAM;
                return HEARTH_STANZA_ERR_BAD_REQUEST;
            }
        } else if (!strcmp(var, "with")) {
            hearth_jid_t j = HEARTH_JID_INIT;
            if (hearth_jid_parse(v, strlen(v), &j, NULL)) {
                *text = "'with' is not a JID";
                return HEARTH_STANZA_ERR_BAD_REQUEST;
            }
            /* An occupant JID: what that nick said. The room itself: everything. Another
             * JID names a real user: only for those who see real JIDs. */
            int in_room = !strcmp(j.bare, r->jid);
            char **dst = in_room ? &q->author : &q->origin;
            free(q->author);
            free(q->origin);
            q->author = q->origin = NULL;
            if (!in_room && !q->show_jids) {
                hearth_jid_clear(&j);
                *text = "real JIDs are not shown in this room: 'with' takes an occupant JID";
                return HEARTH_STANZA_ERR_FORBIDDEN;
            }
            if ((!in_room || j.resource) && !(*dst = strdup(in_room ? j.full : j.bare))) {
                hearth_jid_clear(&j);
                return HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
            }
            hearth_jid_clear(&j);
        } else if (!strcmp(var, "start") || !strcmp(var, "end")) {
            int64_t ms;
            if (hearth_datetime_parse(v, &ms) != 0) {
                *text = "'start' and 'end' are XEP-0082 date-times";
                return HEARTH_STANZA_ERR_BAD_REQUEST;
            }
            if (var[0] == 's')
                q->start_ms = ms;
            else
                q->end_ms = ms;
        } else {
            *text = "unknown field";
            return HEARTH_STANZA_ERR_BAD_REQUEST;
        }
    }
    return HEARTH_STANZA_ERR_NONE;
}

/* Reads XEP-0059's <set/> into q: 0, or the error (*text set). */
static hearth_stanza_error_t parse_rsm(hearth_arena_t *a, const hearth_xml_node_t *set, mam_q_t *q,
                                       const char **text)
{
    for (hearth_xml_node_t *e = hearth_xml_first_element(set); e; e = hearth_xml_next_element(e)) {
        if (strcmp(e->ns, HEARTH_NS_RSM))
            continue;
        const char *t = hearth_xml_text(a, e);
        if (!t)
            return HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
        if (!strcmp(e->name, "max")) {
            char *end;
            unsigned long long v = strtoull(t, &end, 10);
            if (!*t || *end || !isdigit((unsigned char)*t)) {
                *text = "max is a non-negative integer";
                return HEARTH_STANZA_ERR_BAD_REQUEST;
            }
            q->max = v > MUC_MAM_MAX ? MUC_MAM_MAX : (size_t)v;
        } else if (!strcmp(e->name, "after") || !strcmp(e->name, "before")) {
            int after = e->name[0] == 'a';
            if (after && !*t) {
                *text = "after needs an id";
                return HEARTH_STANZA_ERR_BAD_REQUEST;
            }
            if (strlen(t) > STORAGE_ARCHIVE_ID_MAX) {
                *text = "no such item in the archive";
                return HEARTH_STANZA_ERR_ITEM_NOT_FOUND;
            }
            char **dst = after ? &q->after : &q->before;
            free(*dst);
            if (!(*dst = strdup(t)))
                return HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
        } else if (!strcmp(e->name, "index")) {
            *text = "paging by index is not supported; use after or before";
            return HEARTH_STANZA_ERR_FEATURE_NOT_IMPLEMENTED;
        }
    }
    return HEARTH_STANZA_ERR_NONE;
}

void muc__mam_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                 const char *from, int set)
{
    if (!muc__archiving(r)) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE,
                         "this room keeps no archive");
        return;
    }
    char *bare = hearth_arena_strndup(a, from, strcspn(from, "/"));
    muc_aff_t aff = muc__aff_of(r, bare);
    muc_occupant_t *occ = occupant_of_bare(r, bare);
    /* Occupants, and members (admins, owners) whether in the room or not; never outcasts. */
    if (!bare || aff == AFF_OUTCAST || (aff < AFF_MEMBER && !occ)) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_FORBIDDEN,
                         aff == AFF_OUTCAST ? "you are banned from this room"
                                            : "only occupants and members may read the archive");
        return;
    }
    if (!set) {
        muc__iq_result(w, iq, a, r->jid, from, query_fields(a));
        return;
    }
    hearth_xml_node_t *query = hearth_xml_first_element(iq);
    mam_q_t *q = calloc(1, sizeof(*q));
    const char *qid = hearth_xml_attr(query, "queryid");
    if (!q || !(q->room = strdup(r->jid)) || !(q->to = strdup(from)) ||
        !(q->id = strdup(hearth_xml_attr(iq, "id"))) || (qid && !(q->queryid = strdup(qid)))) {
        mam_q_free(q);
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    q->w = w;
    q->show_jids = r->cfg.whois_anyone || aff >= AFF_ADMIN || (occ && occ->role == ROLE_MODERATOR);
    q->start_ms = STORAGE_ARCHIVE_NO_START;
    q->end_ms = STORAGE_ARCHIVE_NO_END;
    q->max = MUC_MAM_DEFAULT;
    hearth_stanza_error_t err = HEARTH_STANZA_ERR_NONE;
    const char *text = NULL;
    for (hearth_xml_node_t *e = hearth_xml_first_element(query); e && !err;
         e = hearth_xml_next_element(e)) {
        if (!strcmp(e->name, "x") && !strcmp(e->ns, HEARTH_NS_DATA))
            err = parse_form(w, r, a, e, q, &text);
        else if (!strcmp(e->name, "set") && !strcmp(e->ns, HEARTH_NS_RSM))
            err = parse_rsm(a, e, q, &text);
    }
    if (err) {
        mam_q_free(q);
        muc__reply_error(w, iq, a, r->jid, from, err, text);
        return;
    }
    storage_log_query_t sq = {.author = q->author,
                              .origin = q->origin,
                              .start_ms = q->start_ms,
                              .end_ms = q->end_ms,
                              .after_ref = q->after,
                              .before_ref = q->before,
                              .max = q->max,
                              .max_bytes = MUC_MAM_PAGE_BYTES};
    int rc = storage_log_query(w->srv->storage, &w->storage_target, MUC_KIND_LOG, r->jid, &sq,
                               mam_done, q);
    if (rc) {
        mam_q_free(q);
        muc__reply_error(w, iq, a, r->jid, from,
                         rc == HEARTH_EAGAIN ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                             : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
                         NULL);
    }
}

/* ---- moderation (XEP-0425) ---- */

typedef struct moderation {
    worker_t *w;
    char *room, *to, *id; /* the room, the moderator's real JID, the request's id */
    char *sid;            /* the retracted message's stanza-id */
    char *by, *by_occid;  /* the moderator's occupant JID and id */
    char *reason;         /* or NULL */
    int64_t stamp_ms;
} moderation_t;

static void moderation_free(moderation_t *m)
{
    if (!m)
        return;
    free(m->room);
    free(m->to);
    free(m->id);
    free(m->sid);
    free(m->by);
    free(m->by_occid);
    free(m->reason);
    free(m);
}

typedef struct tomb_ctx {
    const moderation_t *m;
    hearth_buf_t out;
    int rc;
} tomb_ctx_t;

/* The message as the archive keeps it once retracted (XEP-0425 §6): its addresses, type and
 * id, its stanza-id and author's occupant-id, and a <retracted/> naming the moderator; the body
 * and everything else that might tell what it said are gone. */
static void tombstone_of(void *ud, hearth_xml_node_t *st, hearth_arena_t *a)
{
    tomb_ctx_t *t = ud;
    const moderation_t *m = t->m;
    hearth_xml_node_t *ts = hearth_xml_new(a, "message", HEARTH_NS_CLIENT);
    if (!ts)
        return;
    static const char *const keep_attrs[] = {"from", "type", "id", NULL};
    for (int i = 0; keep_attrs[i]; i++) {
        const char *v = hearth_xml_attr(st, keep_attrs[i]);
        if (v)
            hearth_xml_set_attr(a, ts, keep_attrs[i], v);
    }
    char stamp[64];
    hearth_datetime_format(m->stamp_ms, stamp, sizeof(stamp));
    hearth_xml_node_t *rd = hearth_xml_add_child(a, ts, "retracted", MUC_NS_RETRACT);
    hearth_xml_set_attr(a, rd, "stamp", stamp);
    hearth_xml_node_t *md = hearth_xml_add_child(a, rd, "moderated", MUC_NS_MODERATE);
    hearth_xml_set_attr(a, md, "by", m->by);
    hearth_xml_set_attr(a, hearth_xml_add_child(a, md, "occupant-id", MUC_NS_OCCUPANT_ID), "id",
                        m->by_occid);
    if (m->reason) {
        hearth_xml_node_t *rs = hearth_xml_add_child(a, rd, "reason", MUC_NS_RETRACT);
        hearth_xml_add_text(a, rs, m->reason, strlen(m->reason));
    }
    for (hearth_xml_node_t *c = hearth_xml_first_element(st); c; c = hearth_xml_next_element(c))
        if ((!strcmp(c->name, "occupant-id") && !strcmp(c->ns, MUC_NS_OCCUPANT_ID)) ||
            (!strcmp(c->name, "stanza-id") && !strcmp(c->ns, HEARTH_NS_SID)))
            hearth_xml_append(ts, hearth_xml_copy(a, c));
    t->rc = hearth_xml_serialize(ts, HEARTH_NS_CLIENT, &t->out);
}

/* The retraction every occupant gets (XEP-0425 §4), in both versions (0.3's <retract/> and the
 * fastened <moderated/> of 0.2 that slixmpp 1.8 reads), with a stanza-id of its own (sid). */
static int retraction_bytes(hearth_buf_t *b, const moderation_t *m, const char *sid)
{
    int rc = hearth_buf_append_str(b, "<message type='groupchat'");
    rc = rc ?: app_attr(b, "from", m->room);
    rc = rc ?: app_attr(b, "id", sid);
    rc = rc ?: hearth_buf_append_str(b, "><retract xmlns='" MUC_NS_RETRACT "'");
    rc = rc ?: app_attr(b, "id", m->sid);
    rc = rc ?: hearth_buf_append_str(b, "><moderated xmlns='" MUC_NS_MODERATE "'");
    rc = rc ?: app_attr(b, "by", m->by);
    rc = rc ?: hearth_buf_append_str(b, "><occupant-id xmlns='" MUC_NS_OCCUPANT_ID "'");
    rc = rc ?: app_attr(b, "id", m->by_occid);
    rc = rc ?: hearth_buf_append_str(b, "/></moderated>");
    if (m->reason)
        rc = rc ?: app_text(b, "reason", m->reason);
    rc = rc ?: hearth_buf_append_str(b, "</retract><apply-to xmlns='" MUC_NS_FASTEN "'");
    rc = rc ?: app_attr(b, "id", m->sid);
    rc = rc ?: hearth_buf_append_str(b, "><moderated xmlns='" MUC_NS_MODERATE0 "'");
    rc = rc ?: app_attr(b, "by", m->by);
    rc = rc ?: hearth_buf_append_str(b, "><retract xmlns='" MUC_NS_RETRACT0 "'/>");
    if (m->reason)
        rc = rc ?: app_text(b, "reason", m->reason);
    rc = rc
             ?: hearth_buf_append_str(b, "</moderated></apply-to><stanza-id xmlns='" HEARTH_NS_SID
                                         "'");
    rc = rc ?: app_attr(b, "id", sid);
    rc = rc ?: app_attr(b, "by", m->room);
    rc = rc ?: hearth_buf_append_str(b, "/><store xmlns='" HEARTH_NS_HINTS "'/></message>");
    return rc;
}

static void random_sid(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[9];
    if (uv_random(NULL, NULL, raw, sizeof(raw), 0, NULL))
        memset(raw, 0, sizeof(raw)); /* uv_random reads the kernel's: does not fail in use */
    size_t k = 0;
    for (size_t i = 0; i < sizeof(raw) && k + 2 < n; i++) {
        out[k++] = hex[raw[i] >> 4];
        out[k++] = hex[raw[i] & 15];
    }
    out[k] = '\0';
}

static void logged(void *ud, int err)
{
    moderation_t *m = ud;
    if (err && err != HEARTH_ENOTFOUND)
        hlog(LOG_ERROR, "muc: tombstone of %s in %s not stored: %s", m->sid, m->room,
             hearth_strerror(err));
    moderation_free(m);
}

/* The original message (xml) is known: its tombstone replaces it in the history and the
 * archive, the retraction goes to every occupant (and into the archive), the moderator gets
 * its result. Consumes m. */
static void retract_apply(moderation_t *m, const char *xml)
{
    worker_t *w = m->w;
    tomb_ctx_t t = {m, HEARTH_BUF_INIT, -1};
    router__parse(xml, strlen(xml), tombstone_of, &t);
    if (t.rc) {
        hearth_buf_free(&t.out);
        reply(w, m->room, m->to, m->id, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
              "the message could not be retracted");
        moderation_free(m);
        return;
    }
    worker__hold_posts(w);
    muc_room_t *r = muc__room_get(w, m->room);
    if (r && r->state != ROOM_READY)
        r = NULL; /* loading again: its history comes from the log, which gets the tombstone */
    for (unsigned i = 0; r && i < r->hist_len; i++) {
        muc_hist_t *h = &r->hist[(r->hist_start + i) % MUC_HISTORY_MAX];
        char *copy;
        if (!h->sid || strcmp(h->sid, m->sid) || !(copy = strndup(t.out.data, t.out.len)))
            continue;
        r->hist_bytes = r->hist_bytes - h->len + t.out.len;
        free(h->xml);
        h->xml = copy;
        h->len = t.out.len;
        r->hist_dirty = 1;
    }
    char sid[24];
    random_sid(sid, sizeof(sid));
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (r && retraction_bytes(&b, m, sid) == 0) {
        hearth_bytes_t *bytes = hearth_bytes_new(b.data, b.len);
        if (bytes && r->occupants) {
            route_batch_t *batch =
                router__batch_new(w, STANZA_MESSAGE, m->room, "groupchat", bytes);
            for (muc_occupant_t *x = r->occupants; x; x = x->next)
                if (!muc__is_muc_jid(w, x->jid))
                    router__batch_add(batch, x->jid);
            router__batch_send(batch);
        }
        hearth_bytes_unref(bytes);
    }
    reply(w, m->room, m->to, m->id, HEARTH_STANZA_ERR_NONE, NULL);
    if (r && b.len && muc__room_logs(r))
        muc__store_log(w, r, b.data, m->stamp_ms, sid, NULL, NULL);
    /* The log may hold the message whether the room writes it now or not (ENOTFOUND: it does
     * not, and nothing is lost). */
    if (storage_log_replace(w->srv->storage, &w->storage_target, MUC_KIND_LOG, m->room, m->sid,
                            t.out.data, logged, m) == 0)
        m = NULL;
    if (r && r->hist_dirty)
        muc__store_save(w, r); /* a tombstone in the history its document keeps */
    hearth_buf_free(&b);
    hearth_buf_free(&t.out);
    moderation_free(m);
    worker__release_posts(w);
}

static void original_read(void *ud, int err, const storage_log_entry_t *e, size_t n)
{
    moderation_t *m = ud;
    if (err == HEARTH_ENOTFOUND || (!err && n == 0)) {
        reply(m->w, m->room, m->to, m->id, HEARTH_STANZA_ERR_ITEM_NOT_FOUND,
              "no message with that id in this room");
        moderation_free(m);
        return;
    }
    if (err) {
        hlog(LOG_ERROR, "muc: message %s of %s not read: %s", m->sid, m->room,
             hearth_strerror(err));
        reply(m->w, m->room, m->to, m->id, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        moderation_free(m);
        return;
    }
    retract_apply(m, e[0].xml);
}

void muc__moderate_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                      const char *from, hearth_xml_node_t *q)
{
    /* 0.3: <moderate id><retract/><reason/></moderate>; 0.2: <apply-to id><moderate><retract/>
     * <reason/></moderate></apply-to>. */
    int v0 = !strcmp(q->name, "apply-to");
    const char *sid = hearth_xml_attr(q, "id");
    hearth_xml_node_t *mod = v0 ? hearth_xml_child(q, "moderate", MUC_NS_MODERATE0) : q;
    hearth_xml_node_t *retract =
        mod ? hearth_xml_child(mod, "retract", v0 ? MUC_NS_RETRACT0 : MUC_NS_RETRACT) : NULL;
    hearth_xml_node_t *reason = NULL;
    if (mod)
        for (hearth_xml_node_t *c = hearth_xml_first_element(mod); c && !reason;
             c = hearth_xml_next_element(c))
            if (!strcmp(c->name, "reason"))
                reason = c;
    if (!sid || !*sid || !retract) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_BAD_REQUEST,
                         !sid || !*sid ? "the message's stanza-id is missing"
                                       : "only retraction is supported");
        return;
    }
    const char *reason_text = reason ? hearth_xml_text(a, reason) : NULL;
    if (reason_text && strlen(reason_text) > MUC_REASON_MAX) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
                         "the reason is too long");
        return;
    }
    muc_occupant_t *o = muc__occupant_by_jid(r, from);
    if (!o || o->role != ROLE_MODERATOR) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_FORBIDDEN,
                         "only moderators may retract others' messages");
        return;
    }
    if (strlen(sid) > STORAGE_ARCHIVE_ID_MAX) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_ITEM_NOT_FOUND,
                         "no message with that id in this room");
        return;
    }
    moderation_t *m = calloc(1, sizeof(*m));
    if (!m || !(m->room = strdup(r->jid)) || !(m->to = strdup(from)) ||
        !(m->id = strdup(hearth_xml_attr(iq, "id"))) || !(m->sid = strdup(sid)) ||
        !(m->by = strdup(o->ojid)) || !(m->by_occid = strdup(o->occid)) ||
        (reason_text && *reason_text && !(m->reason = strdup(reason_text)))) {
        moderation_free(m);
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    m->w = w;
    m->stamp_ms = user__now_ms();
    /* In the history: known now. Else the log has it, or nothing has. */
    for (unsigned i = 0; i < r->hist_len; i++) {
        const muc_hist_t *h = &r->hist[(r->hist_start + i) % MUC_HISTORY_MAX];
        if (h->sid && !strcmp(h->sid, sid)) {
            char *xml = strndup(h->xml, h->len);
            if (xml) {
                retract_apply(m, xml);
                free(xml);
                return;
            }
        }
    }
    if (storage_log_get(w->srv->storage, &w->storage_target, MUC_KIND_LOG, r->jid, sid,
                        original_read, m) == 0)
        return;
    moderation_free(m);
    muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_ITEM_NOT_FOUND,
                     "no message with that id in this room");
}
