/* Occupants of a room (XEP-0045 §7): joining, presence updates, nick changes and leaving;
 * groupchat messages (serialised once, routed to every occupant's real JID), subjects, private
 * messages, mediated invitations and declines, IQs to occupants (XEP-0410 self-ping). Runs on
 * the room's home worker only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/datetime.h"
#include "core/log.h"
#include "modules/muc.h"

/* ---- names and defaults ---- */

static const char *const role_names[] = {"none", "visitor", "participant", "moderator"};
static const char *const aff_names[] = {"outcast", "none", "member", "admin", "owner"};

const char *muc__role_name(muc_role_t r)
{
    return role_names[r];
}

const char *muc__aff_name(muc_aff_t a)
{
    return aff_names[a];
}

int muc__role_parse(const char *s, muc_role_t *out)
{
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, role_names[i])) {
            *out = (muc_role_t)i;
            return 0;
        }
    return -1;
}

int muc__aff_parse(const char *s, muc_aff_t *out)
{
    for (int i = 0; s && i < 5; i++)
        if (!strcmp(s, aff_names[i])) {
            *out = (muc_aff_t)i;
            return 0;
        }
    return -1;
}

muc_aff_t muc__aff_of(const muc_room_t *r, const char *bare)
{
    const muc_affiliation_t *af = strmap_get(&r->affs, bare);
    return af ? af->aff : AFF_NONE;
}

muc_role_t muc__default_role(const muc_room_t *r, muc_aff_t aff)
{
    switch (aff) {
    case AFF_OWNER:
    case AFF_ADMIN:
        return ROLE_MODERATOR;
    case AFF_MEMBER:
        return ROLE_PARTICIPANT;
    case AFF_NONE:
        return r->cfg.membersonly ? ROLE_NONE
                                  : (r->cfg.moderated ? ROLE_VISITOR : ROLE_PARTICIPANT);
    default:
        return ROLE_NONE;
    }
}

muc_occupant_t *muc__occupant_by_jid(const muc_room_t *r, const char *jid)
{
    return strmap_get(&r->by_jid, jid);
}

static int64_t now_ms(void)
{
    return user__now_ms();
}

/* ---- presence bytes ---- */

static int app_attr(hearth_buf_t *b, const char *name, const char *value)
{
    int rc = hearth_buf_append_str(b, " ");
    rc = rc ?: hearth_buf_append_str(b, name);
    rc = rc ?: hearth_buf_append_str(b, "='");
    rc = rc ?: hearth_buf_append_escaped(b, value, strlen(value));
    return rc ?: hearth_buf_append_str(b, "'");
}

static int app_codes(hearth_buf_t *b, const int *codes, int n)
{
    int rc = 0;
    for (int i = 0; i < n && !rc; i++)
        rc = hearth_buf_printf(b, "<status code='%d'/>", codes[i]);
    return rc;
}

typedef struct pres_spec {
    const char *type;  /* NULL: available */
    const char *inner; /* presence children */
    const int *codes;  /* for everyone */
    int ncodes;
    const int *self_codes; /* for the occupant itself, after 110 */
    int nself;
    const char *item_extra; /* XML inside <item/> */
    const char *newnick;    /* 303 */
    const char *x_extra;    /* XML inside <x/> after the item (<destroy/>) */
} pres_spec_t;

static hearth_bytes_t *presence_bytes(const muc_room_t *r, const muc_occupant_t *o,
                                      const pres_spec_t *p, int with_jid, int self)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<presence");
    rc = rc ?: app_attr(&b, "from", o->ojid);
    if (p->type)
        rc = rc ?: app_attr(&b, "type", p->type);
    rc = rc ?: hearth_buf_append_str(&b, ">");
    if (p->inner)
        rc = rc ?: hearth_buf_append_str(&b, p->inner);
    rc = rc ?: hearth_buf_append_str(&b, "<occupant-id xmlns='" MUC_NS_OCCUPANT_ID "'");
    rc = rc ?: app_attr(&b, "id", o->occid);
    rc = rc ?: hearth_buf_append_str(&b, "/><x xmlns='" HEARTH_NS_MUC_USER "'><item");
    rc = rc ?: app_attr(&b, "affiliation", muc__aff_name(muc__aff_of(r, o->bare)));
    rc = rc ?: app_attr(&b, "role", muc__role_name(p->type ? ROLE_NONE : o->role));
    if (with_jid)
        rc = rc ?: app_attr(&b, "jid", o->jid);
    if (p->newnick)
        rc = rc ?: app_attr(&b, "nick", p->newnick);
    if (p->item_extra && *p->item_extra) {
        rc = rc ?: hearth_buf_append_str(&b, ">");
        rc = rc ?: hearth_buf_append_str(&b, p->item_extra);
        rc = rc ?: hearth_buf_append_str(&b, "</item>");
    } else {
        rc = rc ?: hearth_buf_append_str(&b, "/>");
    }
    if (self) {
        rc = rc ?: hearth_buf_append_str(&b, "<status code='110'/>");
        rc = rc ?: app_codes(&b, p->self_codes, p->nself);
    }
    rc = rc ?: app_codes(&b, p->codes, p->ncodes);
    if (p->x_extra)
        rc = rc ?: hearth_buf_append_str(&b, p->x_extra);
    rc = rc ?: hearth_buf_append_str(&b, "</x></presence>");
    hearth_bytes_t *bytes = rc ? NULL : hearth_bytes_new(b.data, b.len);
    hearth_buf_free(&b);
    return bytes;
}

static int sees_jid(const muc_room_t *r, const muc_occupant_t *viewer)
{
    return r->cfg.whois_anyone || viewer->role == ROLE_MODERATOR;
}

static int broadcast_role(const muc_room_t *r, const muc_occupant_t *o)
{
    return (r->cfg.presencebroadcast & ROLEMASK(o->role)) != 0;
}

/* o's presence to every occupant (one serialisation per variant: with the real JID, without,
 * and o's own), o itself included when self is set. */
static void broadcast_presence(worker_t *w, muc_room_t *r, muc_occupant_t *o, const pres_spec_t *p,
                               int self, int visible)
{
    hearth_bytes_t *v_jid = NULL, *v_nojid = NULL;
    const char *type = p->type ? p->type : "";
    if (visible) {
        for (muc_occupant_t *x = r->occupants; x; x = x->next) {
            if (x == o)
                continue;
            hearth_bytes_t **v = sees_jid(r, x) ? &v_jid : &v_nojid;
            if (!*v)
                *v = presence_bytes(r, o, p, v == &v_jid, 0);
            if (*v)
                muc__send_bytes(w, STANZA_PRESENCE, x->jid, o->ojid, type, *v);
        }
    }
    if (self) {
        hearth_bytes_t *s = presence_bytes(r, o, p, 1, 1);
        if (s)
            muc__send_bytes(w, STANZA_PRESENCE, o->jid, o->ojid, type, s);
        hearth_bytes_unref(s);
    }
    hearth_bytes_unref(v_jid);
    hearth_bytes_unref(v_nojid);
}

void muc__occupant_broadcast(worker_t *w, muc_room_t *r, muc_occupant_t *o, const int *codes,
                             int ncodes, const char *item_extra)
{
    pres_spec_t p = {.inner = o->inner, .codes = codes, .ncodes = ncodes, .item_extra = item_extra};
    broadcast_presence(w, r, o, &p, 1, broadcast_role(r, o) || o->role == ROLE_MODERATOR);
}

static void occupant_unlink(muc_room_t *r, muc_occupant_t *o)
{
    for (muc_occupant_t **p = &r->occupants; *p; p = &(*p)->next)
        if (*p == o) {
            *p = o->next;
            break;
        }
    strmap_remove(&r->by_nick, o->nick);
    strmap_remove(&r->by_jid, o->jid);
    r->noccupants--;
    r->occ_bytes -= o->cost;
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

void muc__occupant_remove(worker_t *w, muc_room_t *r, muc_occupant_t *o, const int *codes,
                          int ncodes, const char *item_extra, const char *inner)
{
    int visible = broadcast_role(r, o);
    o->role = ROLE_NONE;
    pres_spec_t p = {.type = "unavailable",
                     .inner = inner,
                     .codes = codes,
                     .ncodes = ncodes,
                     .item_extra = item_extra};
    occupant_unlink(r, o);
    /* Everyone else first, then the occupant itself (it is no longer in the list). */
    hearth_bytes_t *v_jid = NULL, *v_nojid = NULL;
    if (visible || ncodes) {
        for (muc_occupant_t *x = r->occupants; x; x = x->next) {
            hearth_bytes_t **v = sees_jid(r, x) ? &v_jid : &v_nojid;
            if (!*v)
                *v = presence_bytes(r, o, &p, v == &v_jid, 0);
            if (*v)
                muc__send_bytes(w, STANZA_PRESENCE, x->jid, o->ojid, "unavailable", *v);
        }
    }
    hearth_bytes_unref(v_jid);
    hearth_bytes_unref(v_nojid);
    hearth_bytes_t *s = presence_bytes(r, o, &p, 1, 1);
    if (s)
        muc__send_bytes(w, STANZA_PRESENCE, o->jid, o->ojid, "unavailable", s);
    hearth_bytes_unref(s);
    occupant_free(o);
}

void muc__room_notice(worker_t *w, muc_room_t *r, const int *codes, int ncodes)
{
    if (!ncodes || !r->occupants)
        return;
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<message type='groupchat'");
    rc = rc ?: app_attr(&b, "from", r->jid);
    rc = rc ?: hearth_buf_printf(&b, " id='muc-%lld'", (long long)++r->next_sid);
    rc = rc ?: hearth_buf_append_str(&b, "><x xmlns='" HEARTH_NS_MUC_USER "'>");
    rc = rc ?: app_codes(&b, codes, ncodes);
    rc = rc ?: hearth_buf_append_str(&b, "</x></message>");
    hearth_bytes_t *bytes = rc ? NULL : hearth_bytes_new(b.data, b.len);
    hearth_buf_free(&b);
    if (!bytes)
        return;
    for (muc_occupant_t *x = r->occupants; x; x = x->next)
        muc__send_bytes(w, STANZA_MESSAGE, x->jid, r->jid, "groupchat", bytes);
    hearth_bytes_unref(bytes);
}

void muc__room_shutdown(worker_t *w, muc_room_t *r)
{
    static const int c332[] = {332};
    pres_spec_t p = {.type = "unavailable", .codes = c332, .ncodes = 1};
    muc_occupant_t *o;
    while ((o = r->occupants)) {
        hearth_bytes_t *s = presence_bytes(r, o, &p, 1, 1); /* 110, then 332 */
        occupant_unlink(r, o);
        if (s)
            muc__send_bytes(w, STANZA_PRESENCE, o->jid, o->ojid, "unavailable", s);
        hearth_bytes_unref(s);
        occupant_free(o);
    }
}

/* Whether c is a child a room repeats of an occupant's presence (not its own MUC elements). */
static int repeated(const hearth_xml_node_t *c)
{
    /* An occupant-id is the room's to give (XEP-0421 §4): a client's is dropped. */
    return strcmp(c->ns, HEARTH_NS_MUC) && strcmp(c->ns, HEARTH_NS_MUC_USER) &&
           strcmp(c->ns, MUC_NS_OCCUPANT_ID) &&
           !(!strcmp(c->name, "error") && !strcmp(c->ns, HEARTH_NS_CLIENT));
}

static int is_client(const hearth_xml_node_t *c, const char *name)
{
    return !strcmp(c->name, name) && !strcmp(c->ns, HEARTH_NS_CLIENT);
}

/* Appends c serialised to b when it fits in max bytes all told; 1 when it did, 0 when it did
 * not, -1 when out of memory. */
static int append_if_fits(hearth_buf_t *b, const hearth_xml_node_t *c, size_t max)
{
    hearth_buf_t one = HEARTH_BUF_INIT;
    int rc = hearth_xml_serialize(c, HEARTH_NS_CLIENT, &one) ? -1 : 0;
    if (!rc && b->len + one.len <= max)
        rc = hearth_buf_append(b, one.data, one.len) ? -1 : 1;
    hearth_buf_free(&one);
    return rc;
}

/* Appends a <status/> with the start of text (a whole UTF-8 sequence at its end) when it fits
 * in max bytes all told; the text is cut shorter until it does. */
static int append_status(hearth_buf_t *b, hearth_arena_t *a, const char *text, size_t keep,
                         size_t max)
{
    size_t n = strlen(text);
    if (n > keep)
        n = keep;
    for (;;) {
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--; /* text[n] continues a sequence: cut before its start */
        hearth_xml_node_t *st = hearth_xml_new(a, "status", HEARTH_NS_CLIENT);
        if (!st || (n && !hearth_xml_add_text(a, st, text, n)))
            return -1;
        int rc = append_if_fits(b, st, max);
        if (rc || n == 0)
            return rc;
        n /= 2;
    }
}

/* The children of a presence a room keeps and repeats (show, status, priority, caps ...),
 * serialised: all of them when they fit in MUC_PRESENCE_KEEP bytes (essential: never), else
 * show, priority and the first status (cut to MUC_STATUS_KEEP) first, then the others in their
 * order while they fit; essential: only those three, in MUC_PRESENCE_MIN bytes. */
static char *presence_inner(const hearth_xml_node_t *st, int essential)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = 0;
    for (hearth_xml_node_t *c = hearth_xml_first_element(st); c && !rc && !essential;
         c = hearth_xml_next_element(c))
        if (repeated(c) && hearth_xml_serialize(c, HEARTH_NS_CLIENT, &b))
            rc = -1;
    if (!rc && !essential && b.len <= MUC_PRESENCE_KEEP)
        goto done;
    hearth_buf_reset(&b);
    hearth_arena_t *a = hearth_arena_new(0);
    size_t max = essential ? MUC_PRESENCE_MIN : MUC_PRESENCE_KEEP;
    int status_seen = 0;
    rc = a ? 0 : -1;
    for (hearth_xml_node_t *c = hearth_xml_first_element(st); c && rc >= 0;
         c = hearth_xml_next_element(c)) {
        if (is_client(c, "show") || is_client(c, "priority")) {
            rc = append_if_fits(&b, c, max);
        } else if (is_client(c, "status") && !status_seen) {
            status_seen = 1;
            const char *text = hearth_xml_text(a, c);
            rc = text ? append_status(&b, a, text, essential ? MUC_PRESENCE_MIN : MUC_STATUS_KEEP,
                                      max)
                      : -1;
        }
    }
    for (hearth_xml_node_t *c = hearth_xml_first_element(st); c && rc >= 0 && !essential;
         c = hearth_xml_next_element(c))
        if (repeated(c) && !is_client(c, "show") && !is_client(c, "priority") &&
            !is_client(c, "status"))
            rc = append_if_fits(&b, c, max);
    hearth_arena_free(a);
done:
    if (rc < 0) {
        hearth_buf_free(&b);
        return NULL;
    }
    if (!b.data)
        return strdup("");
    return hearth_buf_steal(&b, NULL);
}

/* An occupant's presence as a newcomer gets it: the fixed markup (with the longest affiliation
 * and role), its occupant JID, its real JID (moderators see it), and its payload, counted for
 * MUC_PRESENCE_MIN at least. */
#define PRESENCE_MARKUP (160 + 56 + MUC_OCCID_LEN) /* with its <occupant-id/> */

static size_t occupant_cost(const char *ojid, const char *jid, const char *inner)
{
    size_t n = strlen(inner);
    return PRESENCE_MARKUP + hearth_buf_escaped_len(ojid) + hearth_buf_escaped_len(jid) +
           (n > MUC_PRESENCE_MIN ? n : MUC_PRESENCE_MIN);
}

/* Whether one more occupant costing cost fits r as a newcomer whose address is jid: its join
 * sequence holds every occupant's presence, each with ` to='jid'` (the recipient's worker
 * writes it), within muc.max_join_size (and its reserve for admins and owners). */
static int join_fits(worker_t *w, const muc_room_t *r, size_t cost, const char *jid, muc_aff_t aff)
{
    size_t max = w->set.muc_max_join_size;
    size_t limit = max + (aff >= AFF_ADMIN ? MUC_JOIN_RESERVE(max) : 0);
    size_t to = ((size_t)r->noccupants + 1) * (hearth_buf_escaped_len(jid) + 8);
    return r->occ_bytes + cost + to <= limit;
}

/* Whether an occupant's cost may go from old to cost (its presence changed). */
static int update_fits(worker_t *w, const muc_room_t *r, size_t old, size_t cost)
{
    size_t max = w->set.muc_max_join_size;
    return cost <= old || r->occ_bytes - old + cost <= max + MUC_JOIN_RESERVE(max);
}

/* ---- history ---- */

void muc__history_add(worker_t *w, muc_room_t *r, const char *xml, size_t len, int64_t stamp_ms,
                      const char *sid, int log, const char *author, const char *origin, int logged)
{
    char *copy = strndup(xml, len), *sid_copy = sid ? strdup(sid) : NULL;
    if (!copy || (sid && !sid_copy)) {
        free(copy);
        free(sid_copy);
        return;
    }
    while (r->hist_len &&
           (r->hist_len == MUC_HISTORY_MAX || r->hist_bytes + len > MUC_HISTORY_BYTES)) {
        r->hist_bytes -= r->hist[r->hist_start].len;
        free(r->hist[r->hist_start].xml);
        free(r->hist[r->hist_start].sid);
        r->hist[r->hist_start].xml = NULL;
        r->hist[r->hist_start].sid = NULL;
        r->hist_start = (r->hist_start + 1) % MUC_HISTORY_MAX;
        r->hist_len--;
    }
    muc_hist_t *h = &r->hist[(r->hist_start + r->hist_len) % MUC_HISTORY_MAX];
    h->xml = copy;
    h->sid = sid_copy;
    h->len = len;
    h->logged = logged || (log && sid && muc__room_logs(r));
    r->hist_bytes += len;
    h->stamp_ms = stamp_ms;
    r->hist_len++;
    r->hist_dirty = 1;
    if (log && sid && muc__room_logs(r))
        muc__store_log(w, r, copy, stamp_ms, sid, author, origin);
}

void muc__history_sort(muc_room_t *r)
{
    /* At most MUC_HISTORY_MAX entries, nearly in order: an insertion sort, stable. */
    for (unsigned i = 1; i < r->hist_len; i++) {
        for (unsigned j = i; j > 0; j--) {
            muc_hist_t *x = &r->hist[(r->hist_start + j - 1) % MUC_HISTORY_MAX];
            muc_hist_t *y = &r->hist[(r->hist_start + j) % MUC_HISTORY_MAX];
            if (x->stamp_ms <= y->stamp_ms)
                break;
            muc_hist_t t = *x;
            *x = *y;
            *y = t;
        }
    }
}

int muc__room_logs(const muc_room_t *r)
{
    return r->cfg.logging || muc__archiving(r);
}

int muc__archiving(const muc_room_t *r)
{
    return r->cfg.mam && r->cfg.persistent;
}

static void send_history(worker_t *w, muc_room_t *r, muc_occupant_t *o,
                         const hearth_xml_node_t *hist)
{
    long maxstanzas = r->cfg.maxhistory, maxchars = -1;
    int64_t since = -1;
    if (hist) {
        const char *v;
        if ((v = hearth_xml_attr(hist, "maxstanzas"))) {
            long n = strtol(v, NULL, 10);
            if (n >= 0 && n < maxstanzas)
                maxstanzas = n;
        }
        if ((v = hearth_xml_attr(hist, "maxchars")))
            maxchars = strtol(v, NULL, 10);
        if ((v = hearth_xml_attr(hist, "seconds"))) {
            long n = strtol(v, NULL, 10);
            if (n >= 0)
                since = now_ms() - (int64_t)n * 1000;
        }
        if ((v = hearth_xml_attr(hist, "since"))) {
            int64_t t;
            if (hearth_datetime_parse(v, &t) == 0 && t > since)
                since = t;
        }
    }
    /* Newest first to apply the limits, then sent oldest first. */
    unsigned first = r->hist_len;
    long count = 0, chars = 0;
    char stamp[64];
    while (first > 0 && count < maxstanzas) {
        const muc_hist_t *h = &r->hist[(r->hist_start + first - 1) % MUC_HISTORY_MAX];
        if (since >= 0 && h->stamp_ms < since)
            break;
        /* each sent stanza grows by its 'to' and delay: counted as sent */
        long size = (long)h->len + (long)hearth_buf_escaped_len(o->jid) + 120 +
                    2 * (long)hearth_buf_escaped_len(r->jid);
        if ((maxchars >= 0 && chars + size > maxchars) || chars + size > MUC_HISTORY_SEND_BYTES)
            break;
        chars += size;
        count++;
        first--;
    }
    for (unsigned i = first; i < r->hist_len; i++) {
        const muc_hist_t *h = &r->hist[(r->hist_start + i) % MUC_HISTORY_MAX];
        static const char open[] = "<message", close[] = "</message>";
        if (h->len < sizeof(open) + sizeof(close) || strncmp(h->xml, open, sizeof(open) - 1) ||
            strcmp(h->xml + h->len - (sizeof(close) - 1), close))
            continue;
        hearth_datetime_format(h->stamp_ms, stamp, sizeof(stamp));
        hearth_buf_t b = HEARTH_BUF_INIT;
        int rc = hearth_buf_append_str(&b, open);
        rc = rc ?: app_attr(&b, "to", o->jid);
        rc = rc
                 ?: hearth_buf_append(&b, h->xml + sizeof(open) - 1,
                                      h->len - (sizeof(open) - 1) - (sizeof(close) - 1));
        rc = rc ?: hearth_buf_append_str(&b, "<delay xmlns='" HEARTH_NS_DELAY "'");
        rc = rc ?: app_attr(&b, "stamp", stamp);
        rc = rc ?: app_attr(&b, "from", r->jid);
        rc = rc ?: hearth_buf_append_str(&b, "/></message>");
        hearth_bytes_t *bytes = rc ? NULL : hearth_bytes_new(b.data, b.len);
        hearth_buf_free(&b);
        if (bytes)
            muc__send_bytes(w, STANZA_MESSAGE, o->jid, r->jid, "groupchat", bytes);
        hearth_bytes_unref(bytes);
    }
}

static void send_subject(worker_t *w, muc_room_t *r, muc_occupant_t *o)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    char from[3200];
    if (r->subject_nick)
        snprintf(from, sizeof(from), "%s/%s", r->jid, r->subject_nick);
    else
        snprintf(from, sizeof(from), "%s", r->jid);
    int rc = hearth_buf_append_str(&b, "<message type='groupchat'");
    rc = rc ?: app_attr(&b, "from", from);
    rc = rc ?: app_attr(&b, "to", o->jid);
    rc = rc ?: hearth_buf_printf(&b, " id='subject-%lld'", (long long)++r->next_sid);
    if (r->subject && *r->subject) {
        rc = rc ?: hearth_buf_append_str(&b, "><subject>");
        rc = rc ?: hearth_buf_append_escaped(&b, r->subject, strlen(r->subject));
        rc = rc ?: hearth_buf_append_str(&b, "</subject></message>");
    } else {
        rc = rc ?: hearth_buf_append_str(&b, "><subject/></message>");
    }
    hearth_bytes_t *bytes = rc ? NULL : hearth_bytes_new(b.data, b.len);
    hearth_buf_free(&b);
    if (bytes)
        muc__send_bytes(w, STANZA_MESSAGE, o->jid, from, "groupchat", bytes);
    hearth_bytes_unref(bytes);
}

/* ---- presence ---- */

static void presence_error(worker_t *w, hearth_xml_node_t *st, hearth_arena_t *a, const char *ojid,
                           const char *from, hearth_stanza_error_t cond, const char *text)
{
    muc__reply_error(w, st, a, ojid, from, cond, text);
}

static int rate_ok(muc_room_t *r)
{
    int64_t now = now_ms();
    if (r->join_stamp_ms) {
        r->join_tokens += (double)(now - r->join_stamp_ms) * MUC_JOIN_PER_SEC / 1000.0;
        if (r->join_tokens > MUC_JOIN_BURST)
            r->join_tokens = MUC_JOIN_BURST;
    }
    r->join_stamp_ms = now;
    if (r->join_tokens < 1.0)
        return 0;
    r->join_tokens -= 1.0;
    return 1;
}

/* The bare JID that reserved nick in r, or NULL. */
static const char *nick_owner(const muc_room_t *r, const char *nick)
{
    STRMAP_FOREACH(&r->affs, e)
    {
        const muc_affiliation_t *af = e->value;
        if (af->nick && af->aff != AFF_OUTCAST && !strcmp(af->nick, nick))
            return e->key;
    }
    return NULL;
}

/* Whether bare may take nick in r: 0, or the error (conflict, not-acceptable). */
static hearth_stanza_error_t nick_allowed(const muc_room_t *r, const char *bare, const char *nick,
                                          const char **text)
{
    muc_occupant_t *holder = strmap_get(&r->by_nick, nick);
    if (holder && strcmp(holder->bare, bare)) {
        *text = "that nickname is in use";
        return HEARTH_STANZA_ERR_CONFLICT;
    }
    if (holder) {
        *text = "that nickname is in use by another of your sessions";
        return HEARTH_STANZA_ERR_CONFLICT;
    }
    const char *owner = nick_owner(r, nick);
    if (owner && strcmp(owner, bare)) {
        *text = "that nickname is reserved";
        return HEARTH_STANZA_ERR_CONFLICT;
    }
    const muc_affiliation_t *af = strmap_get(&r->affs, bare);
    if (r->cfg.reservednick && af && af->nick && strcmp(af->nick, nick)) {
        *text = "only your reserved nickname may be used in this room";
        return HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
    }
    return HEARTH_STANZA_ERR_NONE;
}

static char *make_ojid(const char *room, const char *nick)
{
    size_t n = strlen(room) + strlen(nick) + 2;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s/%s", room, nick);
    return s;
}

static void join(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                 const char *from, const char *nick, int nick_modified)
{
    const char *ojid = hearth_xml_attr(st, "to");
    hearth_xml_node_t *x = hearth_xml_child(st, "x", HEARTH_NS_MUC);
    char *bare = hearth_arena_strndup(a, from, strcspn(from, "/"));
    const char *text = NULL;
    hearth_stanza_error_t err = HEARTH_STANZA_ERR_NONE;
    int created = 0;
    if (strlen(nick) > MUC_NICK_MAX) {
        presence_error(w, st, a, ojid, from, HEARTH_STANZA_ERR_JID_MALFORMED, "nickname too long");
        return;
    }
    if (!r->exists) {
        /* muc.max_rooms_per_user: §10.1.1's answer when creation is not allowed. */
        int chk = muc__create_check(w, r, bare);
        if (chk > 0)
            return; /* handled again once storage has counted */
        if (chk < 0) {
            presence_error(w, st, a, ojid, from, HEARTH_STANZA_ERR_NOT_ALLOWED,
                           "you may not create more rooms (muc.max_rooms_per_user)");
            return;
        }
    }
    if (!rate_ok(r)) {
        presence_error(w, st, a, ojid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                       "too many join attempts in this room; try again shortly");
        return;
    }
    muc_aff_t aff = AFF_NONE;
    if (!r->exists) {
        /* §10.1: a new room, locked until its owner configures it. */
        r->exists = 1;
        r->locked = 1;
        created = 1;
        muc__config_new_room(w, &r->cfg);
        if (muc__aff_set(r, bare, AFF_OWNER, NULL, NULL)) {
            r->exists = 0;
            presence_error(w, st, a, ojid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
            return;
        }
        aff = AFF_OWNER;
        muc__creator_set(r, bare);
    } else {
        aff = muc__aff_of(r, bare);
        const char *pw = NULL;
        hearth_xml_node_t *pn = x ? hearth_xml_child(x, "password", HEARTH_NS_MUC) : NULL;
        if (pn)
            pw = hearth_xml_text(a, pn);
        if (r->locked && aff != AFF_OWNER) {
            err = HEARTH_STANZA_ERR_ITEM_NOT_FOUND;
            text = "the room is being configured";
        } else if (aff == AFF_OUTCAST) {
            err = HEARTH_STANZA_ERR_FORBIDDEN;
            text = "you are banned from this room";
        } else if (r->cfg.membersonly && aff < AFF_MEMBER) {
            err = HEARTH_STANZA_ERR_REGISTRATION_REQUIRED;
            text = "this room is for members only";
        } else if (r->cfg.passwordprotected && aff < AFF_OWNER &&
                   (!pw || !r->cfg.secret || strcmp(pw, r->cfg.secret))) {
            err = HEARTH_STANZA_ERR_NOT_AUTHORIZED;
            text = "a password is required";
        } else if ((err = nick_allowed(r, bare, nick, &text))) {
        } else if (r->cfg.maxusers && r->noccupants >= r->cfg.maxusers && aff < AFF_ADMIN) {
            err = HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE;
            text = "the room is full";
        }
        if (err) {
            presence_error(w, st, a, ojid, from, err, text);
            return;
        }
    }
    muc_occupant_t *o = calloc(1, sizeof(*o));
    if (!o || !(o->jid = strdup(from)) || !(o->bare = strdup(bare)) || !(o->nick = strdup(nick)) ||
        !(o->ojid = make_ojid(r->jid, nick)) || !(o->inner = presence_inner(st, 0))) {
        if (o)
            occupant_free(o);
        presence_error(w, st, a, ojid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    muc__occupant_id(w, r->jid, bare, o->occid);
    /* The newcomer's join sequence must fit (§7.2.10 for a room full of presence): with all of
     * its payload, else with what says who and how it is. */
    o->cost = occupant_cost(o->ojid, o->jid, o->inner);
    if (!join_fits(w, r, o->cost, from, aff)) {
        free(o->inner);
        o->cost = (o->inner = presence_inner(st, 1)) ? occupant_cost(o->ojid, o->jid, o->inner) : 0;
    }
    if (!o->inner || !join_fits(w, r, o->cost, from, aff)) {
        int full = o->inner != NULL; /* a new room is never full: its creator is alone */
        occupant_free(o);
        presence_error(w, st, a, ojid, from,
                       full ? HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE
                            : HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                       full ? "the room is full" : NULL);
        return;
    }
    if (strmap_put(&r->by_nick, nick, o) || strmap_put(&r->by_jid, from, o)) {
        strmap_remove(&r->by_nick, nick);
        strmap_remove(&r->by_jid, from);
        occupant_free(o);
        presence_error(w, st, a, ojid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    o->role = muc__default_role(r, aff);
    if (o->role == ROLE_NONE)
        o->role = ROLE_PARTICIPANT;
    /* Existing occupants to the newcomer (§7.2.3). */
    pres_spec_t plain = {0};
    for (muc_occupant_t *x2 = r->occupants; x2; x2 = x2->next) {
        if (!broadcast_role(r, x2) && x2->role != ROLE_MODERATOR)
            continue;
        plain.inner = x2->inner;
        hearth_bytes_t *b = presence_bytes(r, x2, &plain, sees_jid(r, o), 0);
        if (b)
            muc__send_bytes(w, STANZA_PRESENCE, o->jid, x2->ojid, "", b);
        hearth_bytes_unref(b);
    }
    o->next = r->occupants;
    r->occupants = o;
    r->noccupants++;
    r->occ_bytes += o->cost;
    int self_codes[5], ns = 0;
    if (r->cfg.whois_anyone)
        self_codes[ns++] = 100;
    if (r->cfg.logging)
        self_codes[ns++] = 170;
    if (created)
        self_codes[ns++] = 201;
    if (nick_modified)
        self_codes[ns++] = 210;
    pres_spec_t p = {.inner = o->inner, .self_codes = self_codes, .nself = ns};
    broadcast_presence(w, r, o, &p, 1, broadcast_role(r, o) || o->role == ROLE_MODERATOR);
    if (!created) {
        hearth_xml_node_t *h = x ? hearth_xml_child(x, "history", HEARTH_NS_MUC) : NULL;
        send_history(w, r, o, h);
    }
    send_subject(w, r, o);
    muc__directory_set(r);
}

static void nick_change(worker_t *w, muc_room_t *r, muc_occupant_t *o, hearth_xml_node_t *st,
                        hearth_arena_t *a, const char *nick, int nick_modified)
{
    const char *ojid = hearth_xml_attr(st, "to");
    const char *text = NULL;
    hearth_stanza_error_t err = HEARTH_STANZA_ERR_NONE;
    if (strlen(nick) > MUC_NICK_MAX) {
        err = HEARTH_STANZA_ERR_JID_MALFORMED;
        text = "nickname too long";
    } else if (!r->cfg.canchangenick && muc__aff_of(r, o->bare) < AFF_ADMIN) {
        err = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
        text = "nickname changes are not allowed in this room";
    } else {
        err = nick_allowed(r, o->bare, nick, &text);
    }
    if (err) {
        muc__reply_error(w, st, a, ojid, o->jid, err, text);
        return;
    }
    char *newnick = strdup(nick), *newojid = make_ojid(r->jid, nick);
    char *inner = presence_inner(st, 0);
    size_t cost = newojid && inner ? occupant_cost(newojid, o->jid, inner) : 0;
    if (newojid && inner && !update_fits(w, r, o->cost, cost)) {
        free(inner);
        inner = presence_inner(st, 1);
        cost = inner ? occupant_cost(newojid, o->jid, inner) : 0;
    }
    if (!newnick || !newojid || !inner || !update_fits(w, r, o->cost, cost)) {
        /* A longer nick in a room full of presence (a shorter one always fits). */
        if (newnick && newojid && inner)
            muc__reply_error(w, st, a, ojid, o->jid, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                             "the room is full");
        free(newnick);
        free(newojid);
        free(inner);
        return;
    }
    static const int c303[] = {303};
    pres_spec_t p = {.type = "unavailable", .codes = c303, .ncodes = 1, .newnick = nick};
    /* The unavailable carries the occupant's role in the item per §7.6: it stays in the room. */
    muc_role_t role = o->role;
    broadcast_presence(w, r, o, &p, 1, broadcast_role(r, o) || role == ROLE_MODERATOR);
    strmap_remove(&r->by_nick, o->nick);
    free(o->nick);
    free(o->ojid);
    free(o->inner);
    o->nick = newnick;
    o->ojid = newojid;
    o->inner = inner;
    r->occ_bytes = r->occ_bytes - o->cost + cost;
    o->cost = cost;
    strmap_put(&r->by_nick, o->nick, o);
    int self_codes[1], ns = 0;
    if (nick_modified)
        self_codes[ns++] = 210;
    pres_spec_t q = {.inner = o->inner, .self_codes = self_codes, .nself = ns};
    broadcast_presence(w, r, o, &q, 1, broadcast_role(r, o) || role == ROLE_MODERATOR);
}

void muc__room_presence(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                        const char *from, const char *nick, int nick_modified)
{
    const char *type = hearth_xml_attr(st, "type");
    muc_occupant_t *o = muc__occupant_by_jid(r, from);
    if (type && !strcmp(type, "unavailable")) {
        if (o) {
            char *inner = presence_inner(st, 0);
            muc__occupant_remove(w, r, o, NULL, 0, NULL, inner);
            free(inner);
        }
        return;
    }
    if (type && !strcmp(type, "error")) {
        if (o) { /* the occupant's server says it is gone (§18.1) */
            static const int c333[] = {333};
            muc__occupant_remove(w, r, o, c333, 1, NULL, NULL);
        }
        return;
    }
    if (type)
        return; /* probes and subscriptions are not for rooms */
    if (!nick) {
        /* §7.2.1: a join needs a nickname. */
        muc__reply_error(w, st, a, r->jid, from, HEARTH_STANZA_ERR_JID_MALFORMED,
                         "a nickname is required");
        return;
    }
    if (!o) {
        join(w, r, st, a, from, nick, nick_modified);
        return;
    }
    if (strcmp(o->nick, nick)) {
        nick_change(w, r, o, st, a, nick, nick_modified);
        return;
    }
    /* A presence update (§7.7): repeated to everyone; in a room full of presence, what says
     * who and how it is (its cost is never more than the occupant's was). */
    char *inner = presence_inner(st, 0);
    size_t cost = inner ? occupant_cost(o->ojid, o->jid, inner) : 0;
    if (inner && !update_fits(w, r, o->cost, cost)) {
        free(inner);
        inner = presence_inner(st, 1);
        cost = inner ? occupant_cost(o->ojid, o->jid, inner) : 0;
    }
    if (!inner)
        return;
    free(o->inner);
    o->inner = inner;
    r->occ_bytes = r->occ_bytes - o->cost + cost;
    o->cost = cost;
    muc__occupant_broadcast(w, r, o, NULL, 0, NULL);
}

/* ---- messages ---- */

static void random_id(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[9];
    uv_random(NULL, NULL, raw, sizeof(raw), 0, NULL);
    size_t k = 0;
    for (size_t i = 0; i < sizeof(raw) && k + 2 < n; i++) {
        out[k++] = hex[raw[i] >> 4];
        out[k++] = hex[raw[i] & 15];
    }
    out[k] = '\0';
}

/* Whether jid (an attribute an occupant wrote) claims to be r or the MUC service: prepared
 * JIDs compared, so "ROOM@MUC.EXAMPLE.", "room@muc.example/nick" and the service domain all
 * count; a value that is no JID at all is nobody's and is treated as a claim too. */
static int claims_room(worker_t *w, const muc_room_t *r, const char *jid, int or_service)
{
    if (!jid)
        return 0;
    return hearth_jid_names(jid, r->jid) != 0 ||
           (or_service && hearth_jid_names(jid, muc__domain(w)) != 0);
}

/* Drops what an occupant's stanza claims the room added: stanza ids by the room, delays from
 * the room or the service, occupant ids (XEP-0421 §4), and in a groupchat message (groupchat
 * set) every delay and muc#user <x/> (in the archive, its <item jid/> would name a real JID,
 * XEP-0313 §5.1.2) and moderation or retraction markup (XEP-0425 §6: only the room's count). */
static void strip_claims(worker_t *w, const muc_room_t *r, hearth_xml_node_t *st, int groupchat)
{
    int all_delays = groupchat;
    for (hearth_xml_node_t *c = hearth_xml_first_element(st), *n; c; c = n) {
        n = hearth_xml_next_element(c);
        if (!strcmp(c->name, "stanza-id") && !strcmp(c->ns, HEARTH_NS_SID) &&
            claims_room(w, r, hearth_xml_attr(c, "by"), 1))
            hearth_xml_remove(c);
        else if (!strcmp(c->ns, MUC_NS_OCCUPANT_ID))
            hearth_xml_remove(c);
        else if (groupchat &&
                 (!strcmp(c->ns, HEARTH_NS_MUC_USER) || !strcmp(c->ns, MUC_NS_MODERATE) ||
                  !strcmp(c->ns, MUC_NS_MODERATE0) || !strcmp(c->ns, MUC_NS_FASTEN) ||
                  (!strcmp(c->ns, MUC_NS_RETRACT) &&
                   (!strcmp(c->name, "retracted") ||
                    hearth_xml_child(c, "moderated", MUC_NS_MODERATE)))))
            hearth_xml_remove(c); /* an occupant's own retraction (XEP-0424) passes */
        else if (!strcmp(c->name, "delay") && !strcmp(c->ns, HEARTH_NS_DELAY) &&
                 (all_delays || claims_room(w, r, hearth_xml_attr(c, "from"), 1)))
            hearth_xml_remove(c);
    }
}

static void groupchat(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                      muc_occupant_t *o)
{
    hearth_xml_node_t *subject = hearth_xml_child(st, "subject", HEARTH_NS_CLIENT);
    hearth_xml_node_t *body = hearth_xml_child(st, "body", HEARTH_NS_CLIENT);
    if (o->role == ROLE_VISITOR) {
        muc__reply_error(w, st, a, r->jid, o->jid, HEARTH_STANZA_ERR_FORBIDDEN,
                         "visitors may not speak in this room");
        return;
    }
    if (subject && !body) {
        int may =
            o->role == ROLE_MODERATOR || (r->cfg.changesubject && o->role >= ROLE_PARTICIPANT);
        char *text = hearth_xml_text(a, subject);
        if (!may) {
            muc__reply_error(w, st, a, r->jid, o->jid, HEARTH_STANZA_ERR_FORBIDDEN,
                             "you may not change the subject");
            return;
        }
        if (!text || strlen(text) > MUC_SUBJECT_MAX) {
            muc__reply_error(w, st, a, r->jid, o->jid, HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
                             "subject too long");
            return;
        }
        char *s = strdup(text), *n = strdup(o->nick);
        if (!s || !n) {
            free(s);
            free(n);
            return;
        }
        free(r->subject);
        free(r->subject_nick);
        r->subject = s;
        r->subject_nick = n;
        muc__store_save(w, r);
    }
    /* One serialisation for every occupant: from the occupant JID, no 'to'. */
    hearth_xml_set_attr(a, st, "from", o->ojid);
    hearth_xml_set_attr(a, st, "to", NULL);
    strip_claims(w, r, st, 1);
    hearth_xml_set_attr(a, hearth_xml_add_child(a, st, "occupant-id", MUC_NS_OCCUPANT_ID), "id",
                        o->occid);
    char sid[24];
    random_id(sid, sizeof(sid));
    if (body) {
        hearth_xml_node_t *s = hearth_xml_add_child(a, st, "stanza-id", HEARTH_NS_SID);
        hearth_xml_set_attr(a, s, "id", sid);
        hearth_xml_set_attr(a, s, "by", r->jid);
    }
    hearth_buf_t out = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(st, HEARTH_NS_CLIENT, &out)) {
        hearth_buf_free(&out);
        return;
    }
    hearth_bytes_t *bytes = hearth_bytes_new(out.data, out.len);
    if (bytes) {
        /* Serialised once; one inbox message per destination worker (ARCHITECTURE.md). */
        route_batch_t *batch = router__batch_new(w, STANZA_MESSAGE, o->ojid, "groupchat", bytes);
        for (muc_occupant_t *x = r->occupants; x; x = x->next)
            if (!muc__is_muc_jid(w, x->jid))
                router__batch_add(batch, x->jid);
        router__batch_send(batch);
        if (body)
            muc__history_add(w, r, out.data, out.len, now_ms(), sid, 1, o->ojid, o->bare, 0);
    }
    hearth_bytes_unref(bytes);
    hearth_buf_free(&out);
}

static void private_message(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                            muc_occupant_t *o, const char *nick)
{
    const char *ojid = hearth_xml_attr(st, "to");
    muc_occupant_t *t = strmap_get(&r->by_nick, nick);
    if (!t) {
        muc__reply_error(w, st, a, ojid, o->jid, HEARTH_STANZA_ERR_ITEM_NOT_FOUND,
                         "no such occupant");
        return;
    }
    int ok = 0;
    switch (r->cfg.allowpm) {
    case PM_ANYONE:
        ok = 1;
        break;
    case PM_PARTICIPANTS:
        ok = o->role >= ROLE_PARTICIPANT;
        break;
    case PM_MODERATORS:
        ok = o->role == ROLE_MODERATOR;
        break;
    case PM_NONE:
        break;
    }
    if (!ok) {
        muc__reply_error(w, st, a, ojid, o->jid, HEARTH_STANZA_ERR_FORBIDDEN,
                         "private messages are not allowed here");
        return;
    }
    hearth_xml_set_attr(a, st, "from", o->ojid);
    hearth_xml_set_attr(a, st, "to", t->jid);
    strip_claims(w, r, st, 0);
    hearth_xml_set_attr(a, hearth_xml_add_child(a, st, "occupant-id", MUC_NS_OCCUPANT_ID), "id",
                        o->occid);
    if (!hearth_xml_child(st, "x", HEARTH_NS_MUC_USER))
        hearth_xml_add_child(a, st, "x", HEARTH_NS_MUC_USER); /* §7.5: marks it as from a room */
    muc__send_node(w, t->jid, st);
}

static hearth_xml_node_t *child_text(hearth_arena_t *a, hearth_xml_node_t *parent, const char *name,
                                     const char *ns, const char *text)
{
    hearth_xml_node_t *n = hearth_xml_add_child(a, parent, name, ns);
    if (n && text)
        hearth_xml_add_text(a, n, text, strlen(text));
    return n;
}

/* §7.8.2 mediated invitations and §7.8.3 declines, in a muc#user <x/> to the room. */
static void invitations(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                        const char *from, hearth_xml_node_t *x)
{
    muc_occupant_t *o = muc__occupant_by_jid(r, from);
    char *bare = hearth_arena_strndup(a, from, strcspn(from, "/"));
    int nvalid = 0, n = 0;
    for (hearth_xml_node_t *c = hearth_xml_first_element(x); c; c = hearth_xml_next_element(c))
        n += !strcmp(c->name, "invite") || !strcmp(c->name, "decline");
    if (n > MUC_INVITES_MAX) {
        muc__reply_error(w, st, a, r->jid, from, HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
                         "too many invitations in one message");
        return;
    }
    for (hearth_xml_node_t *c = hearth_xml_first_element(x); c; c = hearth_xml_next_element(c)) {
        int invite = !strcmp(c->name, "invite"), decline = !strcmp(c->name, "decline");
        if (!invite && !decline)
            continue;
        const char *to_s = hearth_xml_attr(c, "to");
        hearth_jid_t to = HEARTH_JID_INIT;
        if (!to_s || hearth_jid_parse(to_s, strlen(to_s), &to, NULL)) {
            muc__reply_error(w, st, a, r->jid, from, HEARTH_STANZA_ERR_JID_MALFORMED,
                             "an invitation or decline needs a valid 'to'");
            return;
        }
        hearth_xml_node_t *reason = hearth_xml_child(c, "reason", HEARTH_NS_MUC_USER);
        const char *reason_text = reason ? hearth_xml_text(a, reason) : NULL;
        char *target = hearth_arena_strdup(a, to.full),
             *target_bare = hearth_arena_strdup(a, to.bare);
        hearth_jid_clear(&to);
        if (invite) {
            if (!o) {
                muc__reply_error(w, st, a, r->jid, from, HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
                                 "only occupants may invite");
                return;
            }
            muc_aff_t aff = muc__aff_of(r, bare);
            if (r->cfg.membersonly && !r->cfg.allowinvites && aff < AFF_ADMIN) {
                muc__reply_error(w, st, a, r->jid, from, HEARTH_STANZA_ERR_FORBIDDEN,
                                 "only admins may invite to this room");
                return;
            }
            if (r->cfg.membersonly && muc__aff_of(r, target_bare) == AFF_NONE) {
                /* §7.8.2: the invitee becomes a member, or is not invited at all. */
                long long dbytes;
                long dcount;
                muc__aff_delta(r, target_bare, AFF_MEMBER, NULL, NULL, &dbytes, &dcount);
                if (!muc__aff_fits(r, dbytes, dcount) ||
                    muc__aff_set(r, target_bare, AFF_MEMBER, NULL, NULL)) {
                    muc__reply_error(w, st, a, r->jid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                                     "the room's affiliation lists are full");
                    return;
                }
                muc__store_save(w, r);
            }
        }
        hearth_xml_node_t *m = hearth_xml_new(a, "message", HEARTH_NS_CLIENT);
        hearth_xml_set_attr(a, m, "from", r->jid);
        hearth_xml_set_attr(a, m, "to", target);
        const char *id = hearth_xml_attr(st, "id");
        if (id)
            hearth_xml_set_attr(a, m, "id", id);
        hearth_xml_node_t *nx = hearth_xml_add_child(a, m, "x", HEARTH_NS_MUC_USER);
        hearth_xml_node_t *el = hearth_xml_add_child(a, nx, c->name, HEARTH_NS_MUC_USER);
        hearth_xml_set_attr(a, el, "from", invite ? from : bare);
        if (reason)
            child_text(a, el, "reason", HEARTH_NS_MUC_USER, reason_text);
        hearth_xml_node_t *cont = hearth_xml_child(c, "continue", HEARTH_NS_MUC_USER);
        if (cont)
            hearth_xml_append(el, hearth_xml_copy(a, cont));
        if (invite && r->cfg.passwordprotected && r->cfg.secret)
            child_text(a, nx, "password", HEARTH_NS_MUC_USER, r->cfg.secret);
        if (invite) {
            /* XEP-0249's element too, for clients that only know direct invitations. */
            hearth_xml_node_t *dx = hearth_xml_add_child(a, m, "x", HEARTH_NS_CONFERENCE);
            hearth_xml_set_attr(a, dx, "jid", r->jid);
            if (reason_text)
                hearth_xml_set_attr(a, dx, "reason", reason_text);
            if (r->cfg.passwordprotected && r->cfg.secret)
                hearth_xml_set_attr(a, dx, "password", r->cfg.secret);
        }
        muc__send_node(w, target, m);
        nvalid++;
    }
    if (!nvalid)
        muc__reply_error(w, st, a, r->jid, from, HEARTH_STANZA_ERR_BAD_REQUEST, NULL);
}

static int error_is_gone(const hearth_xml_node_t *st)
{
    hearth_xml_node_t *e = hearth_xml_child(st, "error", HEARTH_NS_CLIENT);
    if (!e)
        return 0;
    static const char *const gone[] = {"service-unavailable",     "recipient-unavailable",
                                       "remote-server-not-found", "gone",
                                       "item-not-found",          NULL};
    for (int i = 0; gone[i]; i++)
        if (hearth_xml_child(e, gone[i], HEARTH_NS_STANZA_ERRORS))
            return 1;
    return 0;
}

void muc__room_message(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                       const char *from, const char *nick)
{
    const char *type = hearth_xml_attr(st, "type");
    if (!type)
        type = "normal";
    muc_occupant_t *o = muc__occupant_by_jid(r, from);
    if (!strcmp(type, "error")) {
        /* A groupchat or private message bounced by an occupant's server: it is gone. */
        if (o && error_is_gone(st)) {
            static const int c333[] = {333};
            muc__occupant_remove(w, r, o, c333, 1, NULL, NULL);
        }
        return;
    }
    if (!r->exists || (r->locked && !o)) {
        muc__reply_error(w, st, a, r->jid, from, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, "no such room");
        return;
    }
    if (nick) {
        if (!strcmp(type, "groupchat")) {
            muc__reply_error(w, st, a, hearth_xml_attr(st, "to"), from,
                             HEARTH_STANZA_ERR_BAD_REQUEST,
                             "groupchat messages go to the room, not to an occupant");
            return;
        }
        if (!o) {
            muc__reply_error(w, st, a, hearth_xml_attr(st, "to"), from,
                             HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "you are not in this room");
            return;
        }
        private_message(w, r, st, a, o, nick);
        return;
    }
    hearth_xml_node_t *x = hearth_xml_child(st, "x", HEARTH_NS_MUC_USER);
    if (x && (hearth_xml_child(x, "invite", HEARTH_NS_MUC_USER) ||
              hearth_xml_child(x, "decline", HEARTH_NS_MUC_USER))) {
        invitations(w, r, st, a, from, x);
        return;
    }
    hearth_xml_node_t *x_form = hearth_xml_child(st, "x", HEARTH_NS_DATA);
    if (x_form && strcmp(type, "groupchat")) {
        hearth_form_t form;
        const char *why = NULL;
        int rc = hearth_form_parse(a, x_form, NULL, &form, &why);
        if (rc) {
            muc__reply_error(w, st, a, r->jid, from,
                             rc == HEARTH_ENOMEM ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                                 : HEARTH_STANZA_ERR_BAD_REQUEST,
                             why);
            return;
        }
        const char *ft = hearth_form_form_type(&form);
        if (ft && !strcmp(ft, HEARTH_NS_MUC_REQUEST)) {
            muc__voice_form(w, r, st, a, from, &form); /* §7.13, §8.6 */
            return;
        }
    }
    if (strcmp(type, "groupchat")) {
        muc__reply_error(w, st, a, r->jid, from, HEARTH_STANZA_ERR_BAD_REQUEST,
                         "messages to a room are of type groupchat");
        return;
    }
    if (!o) {
        muc__reply_error(w, st, a, r->jid, from, HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
                         "you are not in this room");
        return;
    }
    groupchat(w, r, st, a, o);
}

/* ---- IQs ---- */

static void add_feature(hearth_arena_t *a, hearth_xml_node_t *q, const char *var)
{
    hearth_xml_set_attr(a, hearth_xml_add_child(a, q, "feature", NULL), "var", var);
}

static void room_info(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                      const char *from, hearth_xml_node_t *q)
{
    const char *node = hearth_xml_attr(q, "node");
    hearth_xml_node_t *res = hearth_xml_new(a, "query", HEARTH_NS_DISCO_INFO);
    if (node && !strcmp(node, "x-roomuser-item")) {
        /* §7.12: the requester's reserved nickname, if any. */
        hearth_xml_set_attr(a, res, "node", node);
        char *bare = hearth_arena_strndup(a, from, strcspn(from, "/"));
        const muc_affiliation_t *af = strmap_get(&r->affs, bare);
        if (af && af->nick) {
            hearth_xml_node_t *id = hearth_xml_add_child(a, res, "identity", NULL);
            hearth_xml_set_attr(a, id, "category", "conference");
            hearth_xml_set_attr(a, id, "name", af->nick);
            hearth_xml_set_attr(a, id, "type", "text");
        }
        muc__iq_result(w, iq, a, r->jid, from, res);
        return;
    }
    if (node) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL);
        return;
    }
    const muc_config_t *c = &r->cfg;
    hearth_xml_node_t *id = hearth_xml_add_child(a, res, "identity", NULL);
    hearth_xml_set_attr(a, id, "category", "conference");
    hearth_xml_set_attr(a, id, "type", "text");
    hearth_xml_set_attr(a, id, "name", c->name && *c->name ? c->name : r->jid);
    add_feature(a, res, HEARTH_NS_MUC);
    add_feature(a, res, HEARTH_NS_DISCO_INFO);
    add_feature(a, res, HEARTH_NS_PING);
    add_feature(a, res, HEARTH_NS_MUC_STABLE_ID);
    add_feature(a, res, HEARTH_NS_SID);
    add_feature(a, res, MUC_NS_OCCUPANT_ID);
    add_feature(a, res, MUC_NS_MODERATE);
    add_feature(a, res, MUC_NS_MODERATE0);
    if (muc__archiving(r))
        add_feature(a, res, HEARTH_NS_MAM);
    add_feature(a, res, HEARTH_NS_VCARD);
    if (c->registration)
        add_feature(a, res, HEARTH_NS_REGISTER);
    add_feature(a, res, c->persistent ? "muc_persistent" : "muc_temporary");
    add_feature(a, res, c->membersonly ? "muc_membersonly" : "muc_open");
    add_feature(a, res, c->passwordprotected ? "muc_passwordprotected" : "muc_unsecured");
    add_feature(a, res, c->publicroom ? "muc_public" : "muc_hidden");
    add_feature(a, res, c->moderated ? "muc_moderated" : "muc_unmoderated");
    add_feature(a, res, c->whois_anyone ? "muc_nonanonymous" : "muc_semianonymous");
    /* XEP-0128: the room information form. */
    hearth_xml_node_t *x = hearth_form_new(a, res, HEARTH_FORM_RESULT);
    hearth_form_add_form_type(a, x, HEARTH_NS_MUC_ROOMINFO);
    hearth_form_add_field(a, x, "muc#roominfo_description", "text-single", "Description",
                          c->desc ? c->desc : "");
    hearth_form_add_field(a, x, "muc#roomconfig_roomname", "text-single", "Name",
                          c->name ? c->name : "");
    hearth_form_add_field(a, x, "muc#roominfo_subject", "text-single", "Subject",
                          r->subject ? r->subject : "");
    hearth_form_add_field(a, x, "muc#roominfo_subjectmod", "boolean",
                          "Occupants may change the subject", c->changesubject ? "1" : "0");
    char n[32];
    snprintf(n, sizeof(n), "%u", r->noccupants);
    hearth_form_add_field(a, x, "muc#roominfo_occupants", "text-single", "Number of occupants", n);
    hearth_form_add_field(a, x, "muc#roominfo_lang", "text-single", "Language",
                          c->lang ? c->lang : "");
    snprintf(n, sizeof(n), "%u", c->maxhistory);
    hearth_form_add_field(a, x, "muc#maxhistoryfetch", "text-single", "Maximum history fetched", n);
    hearth_form_add_field(a, x, "muc#roomconfig_allowinvites", "boolean", "Occupants may invite",
                          c->allowinvites ? "1" : "0");
    static const char *const pm[] = {"anyone", "participants", "moderators", "none"};
    hearth_form_add_field(a, x, "muc#roomconfig_allowpm", "list-single", "Private messages",
                          pm[c->allowpm]);
    hearth_xml_node_t *cj = hearth_form_add_field(a, x, "muc#roominfo_contactjid", "jid-multi",
                                                  "Contact addresses", NULL);
    /* Within MUC_AFF_BYTES, but for a room stored under older limits. */
    size_t listed = 0;
    if (c->whois_anyone)
        STRMAP_FOREACH(&r->affs, e)
        {
            const muc_affiliation_t *af = e->value;
            if (af->aff != AFF_OWNER || listed > MUC_AFF_BYTES)
                continue;
            hearth_form_add_value(a, cj, e->key);
            listed += hearth_buf_escaped_len(e->key) + 16;
        }
    if (c->pubsub && *c->pubsub)
        hearth_form_add_field(a, x, "muc#roominfo_pubsub", "text-single", "Associated node",
                              c->pubsub);
    if (r->avatar) { /* XEP-0486 §3.3 */
        hearth_xml_node_t *av = hearth_form_add_field(a, x, "muc#roominfo_avatarhash", "text-multi",
                                                      "Avatar hash", NULL);
        char *hashes = hearth_arena_strdup(a, r->avatar), *save = NULL;
        for (char *h = hashes ? strtok_r(hashes, " ", &save) : NULL; h;
             h = strtok_r(NULL, " ", &save))
            hearth_form_add_value(a, av, h);
    }
    muc__iq_result(w, iq, a, r->jid, from, res);
}

static void room_items(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                       const char *from)
{
    hearth_xml_node_t *res = hearth_xml_new(a, "query", HEARTH_NS_DISCO_ITEMS);
    /* Occupant JIDs only to occupants (§6.5 leaves it to the room; privacy first). */
    if (muc__occupant_by_jid(r, from))
        for (muc_occupant_t *o = r->occupants; o; o = o->next) {
            if (!broadcast_role(r, o))
                continue;
            hearth_xml_node_t *it = hearth_xml_add_child(a, res, "item", NULL);
            hearth_xml_set_attr(a, it, "jid", o->ojid);
            hearth_xml_set_attr(a, it, "name", o->nick);
        }
    muc__iq_result(w, iq, a, r->jid, from, res);
}

static void room_bare_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                         const char *from, int set)
{
    hearth_xml_node_t *q = hearth_xml_first_element(iq);
    if (!q || hearth_xml_count_elements(iq) != 1 || !hearth_xml_attr(iq, "id")) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_BAD_REQUEST, NULL);
        return;
    }
    char *bare = hearth_arena_strndup(a, from, strcspn(from, "/"));
    int owner = muc__aff_of(r, bare) == AFF_OWNER;
    if (!r->exists || (r->locked && !owner)) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, "no such room");
        return;
    }
    if (!strcmp(q->ns, HEARTH_NS_DISCO_INFO) && !strcmp(q->name, "query") && !set) {
        room_info(w, r, iq, a, from, q);
    } else if (!strcmp(q->ns, HEARTH_NS_DISCO_ITEMS) && !strcmp(q->name, "query") && !set) {
        room_items(w, r, iq, a, from);
    } else if (!strcmp(q->ns, HEARTH_NS_MUC_ADMIN) && !strcmp(q->name, "query")) {
        muc__admin_iq(w, r, iq, a, from, set);
    } else if (!strcmp(q->ns, HEARTH_NS_MUC_OWNER) && !strcmp(q->name, "query")) {
        muc__owner_iq(w, r, iq, a, from, set);
    } else if (!strcmp(q->ns, HEARTH_NS_REGISTER) && !strcmp(q->name, "query")) {
        muc__register_iq(w, r, iq, a, from, set);
    } else if (!strcmp(q->ns, HEARTH_NS_PING) && !strcmp(q->name, "ping") && !set) {
        muc__iq_result(w, iq, a, r->jid, from, NULL);
    } else if (!strcmp(q->ns, HEARTH_NS_VCARD) && !strcmp(q->name, "vCard")) {
        muc__vcard_iq(w, r, iq, a, from, set);
    } else if (!strcmp(q->ns, HEARTH_NS_MAM) && !strcmp(q->name, "query")) {
        muc__mam_iq(w, r, iq, a, from, set);
    } else if (set && ((!strcmp(q->ns, MUC_NS_MODERATE) && !strcmp(q->name, "moderate")) ||
                       (!strcmp(q->ns, MUC_NS_FASTEN) && !strcmp(q->name, "apply-to")))) {
        muc__moderate_iq(w, r, iq, a, from, q);
    } else {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
    }
}

void muc__room_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                  const char *from, const char *nick)
{
    const char *type = hearth_xml_attr(st, "type");
    if (!type)
        return;
    int req = !strcmp(type, "get") || !strcmp(type, "set");
    if (!nick) {
        if (req)
            room_bare_iq(w, r, st, a, from, !strcmp(type, "set"));
        return;
    }
    const char *ojid = hearth_xml_attr(st, "to");
    muc_occupant_t *o = muc__occupant_by_jid(r, from);
    muc_occupant_t *t = r->exists ? strmap_get(&r->by_nick, nick) : NULL;
    if (!req) {
        /* A reply to an IQ we relayed: back to the occupant it is addressed to. */
        if (o && t) {
            hearth_xml_set_attr(a, st, "from", o->ojid);
            hearth_xml_set_attr(a, st, "to", t->jid);
            muc__send_node(w, t->jid, st);
        }
        return;
    }
    if (!o) {
        /* XEP-0410 §3: not joined (also what a self-ping learns after a server restart). */
        muc__reply_error(w, st, a, ojid, from, HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
                         "you are not in this room");
        return;
    }
    if (!t) {
        muc__reply_error(w, st, a, ojid, from, HEARTH_STANZA_ERR_ITEM_NOT_FOUND,
                         "no such occupant");
        return;
    }
    hearth_xml_node_t *q = hearth_xml_first_element(st);
    if (t == o && q && !strcmp(q->ns, HEARTH_NS_PING) && !strcmp(q->name, "ping")) {
        muc__iq_result(w, st, a, ojid, from, NULL); /* XEP-0410: still joined */
        return;
    }
    /* §7.x: IQs between occupants travel through the room under occupant JIDs. */
    hearth_xml_set_attr(a, st, "from", o->ojid);
    hearth_xml_set_attr(a, st, "to", t->jid);
    muc__send_node(w, t->jid, st);
}
