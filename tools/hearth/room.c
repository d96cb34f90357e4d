/* The occupant's side of a XEP-0045 room for hearth: one stanza handler per joined room takes
 * the room's presences and groupchat messages (before the presence and chat managers see them,
 * so that occupants are not taken for contacts) and keeps the occupant list. */
#include "room.h"

#include <stdlib.h>
#include <string.h>

#include "hearth/jid.h"
#include "hearth/ns.h"

struct room {
    hearth_client_t *client;
    char *jid;  /* prepared bare JID of the room */
    char *nick; /* our nickname as asked */
    room_events_t ev;
    void *ud;
    unsigned handler;
    int joined;
    int left;
    char *subject;
    room_occupant_t *occ; /* sorted by nick */
    size_t nocc;
};

/* Above the managers' handlers (priority 0): the room's stanzas are the room's. */
#define ROOM_HANDLER_PRIORITY 100

static void occupant_clear(room_occupant_t *o)
{
    free(o->nick);
    free(o->role);
    free(o->affiliation);
    free(o->jid);
}

static size_t find_slot(const room_t *r, const char *nick, int *found)
{
    size_t lo = 0, hi = r->nocc;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(r->occ[mid].nick, nick);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Whether a <x xmlns=muc#user/> carries <status code=code/>. */
static int has_status(const hearth_xml_node_t *x, const char *code)
{
    for (const hearth_xml_node_t *n = x ? hearth_xml_first_element(x) : NULL; n;
         n = hearth_xml_next_element(n)) {
        if (!strcmp(n->name, "status") && hearth_xml_attr(n, "code") &&
            !strcmp(hearth_xml_attr(n, "code"), code))
            return 1;
    }
    return 0;
}

static void on_instant_answer(void *ud, hearth_client_t *c, int result, hearth_stanza_t *resp)
{
    /* Nothing to do: a room that refuses stays locked, and says so to whoever tries it. */
}

static void accept_instant_room(room_t *r)
{
    hearth_xml_node_t *query;
    hearth_stanza_t *iq = hearth_stanza_new_iq("set", r->jid, "query", HEARTH_NS_MUC_OWNER, &query);
    hearth_xml_node_t *x =
        iq ? hearth_xml_add_child(hearth_stanza_arena(iq), query, "x", HEARTH_NS_DATA) : NULL;
    if (!x || hearth_xml_set_attr(hearth_stanza_arena(iq), x, "type", "submit")) {
        hearth_stanza_unref(iq);
        return;
    }
    (void)hearth_client_iq(r->client, iq, 0, on_instant_answer, NULL);
}

static void on_presence(room_t *r, hearth_stanza_t *st, const char *nick)
{
    const char *type = hearth_stanza_type(st);
    if (type && !strcmp(type, "error")) {
        const char *text = NULL;
        hearth_stanza_error_t cond = hearth_stanza_error(st, &text);
        if (!r->joined && r->ev.error)
            r->ev.error(r->ud, r, cond, text);
        return;
    }
    hearth_xml_node_t *x = hearth_stanza_child(st, "x", HEARTH_NS_MUC_USER);
    hearth_xml_node_t *item = x ? hearth_xml_child(x, "item", HEARTH_NS_MUC_USER) : NULL;
    int self = has_status(x, "110");
    int present = !(type && !strcmp(type, "unavailable"));
    room_occupant_t o = {
        .nick = (char *)nick,
        .role = (char *)(item ? hearth_xml_attr(item, "role") : NULL),
        .affiliation = (char *)(item ? hearth_xml_attr(item, "affiliation") : NULL),
        .jid = (char *)(item ? hearth_xml_attr(item, "jid") : NULL),
    };
    int found;
    size_t i = find_slot(r, nick, &found);
    if (present) {
        if (found) {
            occupant_clear(&r->occ[i]);
        } else if (r->nocc < ROOM_MAX_OCCUPANTS) {
            room_occupant_t *grown = realloc(r->occ, (r->nocc + 1) * sizeof(*grown));
            if (!grown)
                return;
            r->occ = grown;
            memmove(&r->occ[i + 1], &r->occ[i], (r->nocc - i) * sizeof(*grown));
            r->nocc++;
        } else {
            i = (size_t)-1; /* over the bound: reported, not kept */
        }
        if (i != (size_t)-1) {
            r->occ[i] = (room_occupant_t){dup_or_null(o.nick), dup_or_null(o.role),
                                          dup_or_null(o.affiliation), dup_or_null(o.jid)};
        }
    } else if (found) {
        occupant_clear(&r->occ[i]);
        memmove(&r->occ[i], &r->occ[i + 1], (r->nocc - i - 1) * sizeof(*r->occ));
        r->nocc--;
    }
    if (r->ev.occupant)
        r->ev.occupant(r->ud, r, &o, present);
    if (self && present && !r->joined) {
        r->joined = 1;
        /* A room we created stays locked until its owner configures it (XEP-0045 §10.1.2): take
         * the default configuration, an instant room, as most clients do. */
        if (has_status(x, "201"))
            accept_instant_room(r);
        if (r->ev.joined)
            r->ev.joined(r->ud, r, has_status(x, "201"));
    } else if (self && !present) {
        r->joined = 0;
        r->left = 1;
        if (r->ev.left)
            r->ev.left(r->ud, r,
                       has_status(x, "307")   ? "kicked"
                       : has_status(x, "301") ? "banned"
                       : has_status(x, "332") ? "the room's service shut down"
                                              : "left");
    }
}

static void on_message(room_t *r, hearth_stanza_t *st, const char *nick)
{
    const char *type = hearth_stanza_type(st);
    if (type && !strcmp(type, "error")) {
        const char *text = NULL;
        hearth_stanza_error_t cond = hearth_stanza_error(st, &text);
        if (r->ev.error)
            r->ev.error(r->ud, r, cond, text);
        return;
    }
    const char *body = hearth_stanza_child_text(st, "body");
    hearth_xml_node_t *subject = hearth_stanza_child(st, "subject", HEARTH_NS_CLIENT);
    if (subject && !body) {
        const char *text = hearth_stanza_child_text(st, "subject");
        free(r->subject);
        r->subject = strdup(text ? text : "");
        if (r->ev.subject)
            r->ev.subject(r->ud, r, nick, text ? text : "");
        return;
    }
    if (body && r->ev.message)
        r->ev.message(r->ud, r, nick, body,
                      hearth_stanza_child(st, "delay", HEARTH_NS_DELAY) != NULL);
}

static int on_stanza(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    room_t *r = ud;
    const char *from = hearth_stanza_from(st);
    const char *slash = from ? strchr(from, '/') : NULL;
    const char *nick = slash ? slash + 1 : NULL;
    if (hearth_stanza_kind(st) == HEARTH_STANZA_PRESENCE) {
        if (!nick)
            return 0;
        on_presence(r, st, nick);
        return HEARTH_HANDLED;
    }
    const char *type = hearth_stanza_type(st);
    /* Private messages (type chat from ROOM/NICK) go on to the chat manager. */
    if (!type || (strcmp(type, "groupchat") && strcmp(type, "error")))
        return 0;
    on_message(r, st, nick);
    return HEARTH_HANDLED;
}

int room_join(hearth_client_t *c, const char *room, const char *nick, const char *password,
              unsigned history, const room_events_t *ev, void *ud, room_t **out)
{
    *out = NULL;
    hearth_jid_t j = HEARTH_JID_INIT, full = HEARTH_JID_INIT;
    if (hearth_jid_parse(room, strlen(room), &j, NULL) || !j.node || j.resource) {
        hearth_jid_clear(&j);
        return HEARTH_EINVAL;
    }
    if (hearth_jid_make(j.node, j.domain, nick, &full, NULL)) {
        hearth_jid_clear(&j);
        return HEARTH_EINVAL;
    }
    room_t *r = calloc(1, sizeof(*r));
    int rc = HEARTH_ENOMEM;
    if (!r || !(r->jid = strdup(j.bare)) || !(r->nick = strdup(full.resource)))
        goto fail;
    r->client = c;
    if (ev)
        r->ev = *ev;
    r->ud = ud;
    hearth_filter_t f = {.kinds = HEARTH_STANZA_MESSAGE | HEARTH_STANZA_PRESENCE, .from = r->jid};
    rc = hearth_client_add_handler(c, &f, ROOM_HANDLER_PRIORITY, on_stanza, r, &r->handler);
    if (rc)
        goto fail;
    hearth_stanza_t *p = hearth_stanza_new_presence(full.full, NULL);
    hearth_xml_node_t *x =
        p ? hearth_xml_add_child(hearth_stanza_arena(p), hearth_stanza_node(p), "x", HEARTH_NS_MUC)
          : NULL;
    hearth_xml_node_t *h =
        x ? hearth_xml_add_child(hearth_stanza_arena(p), x, "history", NULL) : NULL;
    char n[16];
    snprintf(n, sizeof(n), "%u", history);
    if (!h || hearth_xml_set_attr(hearth_stanza_arena(p), h, "maxstanzas", n)) {
        hearth_stanza_unref(p);
        rc = HEARTH_ENOMEM;
        goto fail;
    }
    if (password) {
        hearth_xml_node_t *pw = hearth_xml_add_child(hearth_stanza_arena(p), x, "password", NULL);
        if (!pw || !hearth_xml_add_text(hearth_stanza_arena(p), pw, password, strlen(password))) {
            hearth_stanza_unref(p);
            rc = HEARTH_ENOMEM;
            goto fail;
        }
    }
    rc = hearth_client_send(c, p);
    if (rc)
        goto fail;
    hearth_jid_clear(&j);
    hearth_jid_clear(&full);
    *out = r;
    return 0;
fail:
    hearth_jid_clear(&j);
    hearth_jid_clear(&full);
    room_free(r);
    return rc;
}

int room_send(room_t *r, const char *body)
{
    hearth_stanza_t *m = hearth_stanza_new_message(r->jid, "groupchat", body);
    return m ? hearth_client_send(r->client, m) : HEARTH_ENOMEM;
}

int room_leave(room_t *r)
{
    char to[3200];
    snprintf(to, sizeof(to), "%s/%s", r->jid, r->nick);
    hearth_stanza_t *p = hearth_stanza_new_presence(to, "unavailable");
    return p ? hearth_client_send(r->client, p) : HEARTH_ENOMEM;
}

void room_free(room_t *r)
{
    if (!r)
        return;
    if (r->handler)
        (void)hearth_client_remove_handler(r->client, r->handler);
    for (size_t i = 0; i < r->nocc; i++)
        occupant_clear(&r->occ[i]);
    free(r->occ);
    free(r->subject);
    free(r->jid);
    free(r->nick);
    free(r);
}

const char *room_jid(const room_t *r)
{
    return r->jid;
}

const char *room_nick(const room_t *r)
{
    return r->nick;
}

int room_joined(const room_t *r)
{
    return r->joined;
}

const char *room_subject(const room_t *r)
{
    return r->subject;
}

size_t room_occupant_count(const room_t *r)
{
    return r->nocc;
}

const room_occupant_t *room_occupant_at(const room_t *r, size_t i)
{
    return i < r->nocc ? &r->occ[i] : NULL;
}
