/* The MUC manager (include/hearth/muc.h): rooms joined, their occupants from the room's
 * presence, group chat, subject, configuration forms, invitations and declines. Touches its
 * client through the public API and, for its slot and its pending IQs, internal.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/jid.h"
#include "hearth/muc.h"
#include "hearth/ns.h"
#include "internal.h"

typedef struct occ {
    hearth_muc_occupant_t pub; /* strings after it in the same allocation */
} occ_t;

typedef enum room_state { R_JOINING, R_JOINED, R_LEAVING } room_state_t;

struct hearth_muc_room {
    hearth_muc_t *m;
    struct hearth_muc_room *next;
    char *jid, *nick, *password, *subject;
    room_state_t state;
    bool created;
    bool dead; /* out of the room: freed when the event that says so returns */
    occ_t **occ;
    size_t nocc;
    occ_t *self;
};

struct hearth_muc {
    hearth_client_t *c;
    hearth_muc_events_t ev;
    void *ud;
    unsigned listener_id, presence_handler, message_handler;
    hearth_muc_room_t *rooms;
};

/* A form request in flight: it names its room by JID, which may be gone by the answer. */
typedef struct form_req {
    hearth_muc_t *m;
    hearth_muc_form_fn cb;
    void *ud;
    char room[];
} form_req_t;

static const char *const aff_names[] = {"none", "outcast", "member", "admin", "owner"};
static const char *const role_names[] = {"none", "visitor", "participant", "moderator"};

const char *hearth_muc_affiliation_name(hearth_muc_affiliation_t a)
{
    return (unsigned)a < sizeof(aff_names) / sizeof(aff_names[0]) ? aff_names[a] : NULL;
}

const char *hearth_muc_role_name(hearth_muc_role_t r)
{
    return (unsigned)r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : NULL;
}

static unsigned name_index(const char *const *names, unsigned n, const char *s)
{
    for (unsigned i = 0; s && i < n; i++)
        if (!strcmp(names[i], s))
            return i;
    return 0;
}

static bool gone(const hearth_muc_t *m)
{
    return m->c->free_pending;
}

/* ---- rooms ---- */

static hearth_muc_room_t *room_by_jid(const hearth_muc_t *m, const char *bare)
{
    for (hearth_muc_room_t *r = m->rooms; r; r = r->next)
        if (!strcmp(r->jid, bare))
            return r;
    return NULL;
}

static void occ_clear(hearth_muc_room_t *r)
{
    for (size_t i = 0; i < r->nocc; i++)
        ctx__free(r->m->c->ctx, r->occ[i]);
    ctx__free(r->m->c->ctx, r->occ);
    r->occ = NULL;
    r->nocc = 0;
    r->self = NULL;
}

static void room_unlink_free(hearth_muc_room_t *r)
{
    hearth_muc_t *m = r->m;
    for (hearth_muc_room_t **pp = &m->rooms; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    hearth_ctx_t *ctx = m->c->ctx;
    occ_clear(r);
    ctx__free(ctx, r->jid);
    ctx__free(ctx, r->nick);
    if (r->password)
        memset(r->password, 0, strlen(r->password));
    ctx__free(ctx, r->password);
    ctx__free(ctx, r->subject);
    ctx__free(ctx, r);
}

static void room_left(hearth_muc_room_t *r, hearth_muc_left_reason_t why, const char *text)
{
    hearth_muc_t *m = r->m;
    r->dead = true;
    if (m->ev.left && !gone(m))
        m->ev.left(m->ud, m, r, why, text);
    room_unlink_free(r);
}

static int send_join(hearth_muc_room_t *r, const hearth_muc_join_options_t *o)
{
    char to[3 * 1024 + 8];
    snprintf(to, sizeof to, "%s/%s", r->jid, r->nick);
    hearth_stanza_t *st = hearth_stanza_new_presence(to, NULL);
    hearth_arena_t *a = st ? hearth_stanza_arena(st) : NULL;
    hearth_xml_node_t *x =
        st ? hearth_xml_add_child(a, hearth_stanza_node(st), "x", HEARTH_NS_MUC) : NULL;
    if (!x)
        goto nomem;
    if (o && (o->no_history || o->history_stanzas || o->history_seconds || o->history_since)) {
        hearth_xml_node_t *h = hearth_xml_add_child(a, x, "history", NULL);
        char num[16];
        if (!h)
            goto nomem;
        if (o->no_history || o->history_stanzas) {
            snprintf(num, sizeof num, "%u", o->no_history ? 0 : o->history_stanzas);
            if (hearth_xml_set_attr(a, h, "maxstanzas", num))
                goto nomem;
        }
        if (!o->no_history && o->history_seconds) {
            snprintf(num, sizeof num, "%u", o->history_seconds);
            if (hearth_xml_set_attr(a, h, "seconds", num))
                goto nomem;
        }
        if (!o->no_history && o->history_since &&
            hearth_xml_set_attr(a, h, "since", o->history_since))
            goto nomem;
    }
    if (r->password) {
        hearth_xml_node_t *pw = hearth_xml_add_child(a, x, "password", NULL);
        if (!pw || !hearth_xml_add_text(a, pw, r->password, strlen(r->password)))
            goto nomem;
    }
    return hearth_client_send(r->m->c, st);
nomem:
    hearth_stanza_unref(st);
    return HEARTH_ENOMEM;
}

int hearth_muc_join(hearth_muc_t *m, const char *room_jid, const char *nick,
                    const hearth_muc_join_options_t *opts, hearth_muc_room_t **out)
{
    if (out)
        *out = NULL;
    hearth_jid_t j;
    if (!room_jid || !nick || hearth_jid_parse(room_jid, strlen(room_jid), &j, NULL) != 0)
        return HEARTH_EINVAL;
    char *res = NULL;
    int rc = HEARTH_EINVAL;
    if (j.resource || !j.node || hearth_jid_resourceprep(nick, strlen(nick), &res, NULL) != 0)
        goto out;
    rc = HEARTH_EEXISTS;
    if (room_by_jid(m, j.bare))
        goto out;
    rc = HEARTH_ECLOSED;
    if (hearth_client_state(m->c) != HEARTH_CLIENT_ONLINE)
        goto out;
    rc = HEARTH_ENOMEM;
    hearth_muc_room_t *r = ctx__calloc(m->c->ctx, sizeof(*r));
    if (!r)
        goto out;
    r->m = m;
    r->jid = ctx__strdup(m->c->ctx, j.bare);
    r->nick = ctx__strdup(m->c->ctx, res);
    r->password = opts && opts->password ? ctx__strdup(m->c->ctx, opts->password) : NULL;
    r->next = m->rooms;
    m->rooms = r;
    if (!r->jid || !r->nick || (opts && opts->password && !r->password)) {
        room_unlink_free(r);
        goto out;
    }
    rc = send_join(r, opts);
    if (rc) {
        room_unlink_free(r);
        goto out;
    }
    /* Kept in the order joined: the list was built at its head. */
    if (r->next) {
        m->rooms = r->next;
        hearth_muc_room_t *last = m->rooms;
        while (last->next)
            last = last->next;
        last->next = r;
        r->next = NULL;
    }
    if (out)
        *out = r;
out:
    free(res);
    hearth_jid_clear(&j);
    return rc;
}

int hearth_muc_leave(hearth_muc_room_t *r, const char *status)
{
    if (r->dead || r->state == R_LEAVING)
        return 0;
    if (hearth_client_state(r->m->c) != HEARTH_CLIENT_ONLINE) {
        room_left(r, HEARTH_MUC_LEFT_BY_US, NULL);
        return 0;
    }
    char to[3 * 1024 + 8];
    snprintf(to, sizeof to, "%s/%s", r->jid, r->nick);
    hearth_stanza_t *st = hearth_stanza_new_presence(to, "unavailable");
    if (!st || (status && hearth_stanza_add_text_child(st, "status", status))) {
        hearth_stanza_unref(st);
        return HEARTH_ENOMEM;
    }
    int rc = hearth_client_send(r->m->c, st);
    if (rc == 0)
        r->state = R_LEAVING;
    return rc;
}

/* ---- occupants from the room's presence ---- */

static occ_t *occ_find(const hearth_muc_room_t *r, const char *nick, size_t *pos)
{
    for (size_t i = 0; i < r->nocc; i++)
        if (!strcmp(r->occ[i]->pub.nick, nick)) {
            if (pos)
                *pos = i;
            return r->occ[i];
        }
    return NULL;
}

static occ_t *occ_new(hearth_muc_t *m, const char *nick, const char *jid, const char *status)
{
    size_t ln = strlen(nick) + 1, lj = jid ? strlen(jid) + 1 : 0,
           ls = status ? strlen(status) + 1 : 0;
    occ_t *o = ctx__alloc(m->c->ctx, sizeof(*o) + ln + lj + ls);
    if (!o)
        return NULL;
    memset(o, 0, sizeof(*o));
    char *s = (char *)(o + 1);
    o->pub.nick = memcpy(s, nick, ln);
    s += ln;
    if (jid) {
        o->pub.jid = memcpy(s, jid, lj);
        s += lj;
    }
    if (status)
        o->pub.status = memcpy(s, status, ls);
    return o;
}

/* The status codes of a muc#user <x/>, as bits of the few this manager reads. */
enum {
    C_110 = 1 << 0, /* self */
    C_201 = 1 << 1, /* created */
    C_210 = 1 << 2, /* nick changed by the room */
    C_303 = 1 << 3, /* nick change */
    C_307 = 1 << 4, /* kicked */
    C_301 = 1 << 5, /* banned */
    C_321 = 1 << 6, /* affiliation change */
    C_322 = 1 << 7, /* members only */
    C_332 = 1 << 8, /* shutdown */
};

static unsigned status_codes(const hearth_xml_node_t *x)
{
    static const struct {
        const char *code;
        unsigned bit;
    } known[] = {{"110", C_110}, {"201", C_201}, {"210", C_210}, {"303", C_303}, {"307", C_307},
                 {"301", C_301}, {"321", C_321}, {"322", C_322}, {"332", C_332}};
    unsigned bits = 0;
    for (hearth_xml_node_t *el = hearth_xml_first_element(x); el; el = hearth_xml_next_element(el))
        if (!strcmp(el->name, "status")) {
            const char *code = hearth_xml_attr(el, "code");
            for (size_t i = 0; code && i < sizeof(known) / sizeof(known[0]); i++)
                if (!strcmp(code, known[i].code))
                    bits |= known[i].bit;
        }
    return bits;
}

static int departure_code(unsigned bits)
{
    return bits & C_307   ? 307
           : bits & C_301 ? 301
           : bits & C_321 ? 321
           : bits & C_322 ? 322
           : bits & C_332 ? 332
                          : 0;
}

static void presence_error(hearth_muc_room_t *r, hearth_stanza_t *st)
{
    hearth_muc_t *m = r->m;
    if (r->state != R_JOINING)
        return;
    const char *text;
    hearth_stanza_error_t cond = hearth_stanza_error(st, &text);
    r->dead = true;
    if (m->ev.joined && !gone(m))
        m->ev.joined(m->ud, m, r, HEARTH_ESTANZA, cond, 0);
    room_unlink_free(r);
}

static void self_unavailable(hearth_muc_room_t *r, hearth_xml_node_t *x, unsigned bits,
                             hearth_stanza_t *st)
{
    hearth_xml_node_t *destroy = x ? hearth_xml_child(x, "destroy", NULL) : NULL;
    hearth_xml_node_t *reason = NULL;
    hearth_muc_left_reason_t why = HEARTH_MUC_LEFT_BY_US;
    if (destroy) {
        why = HEARTH_MUC_LEFT_DESTROYED;
        reason = hearth_xml_child(destroy, "reason", NULL);
    } else if (bits & (C_307 | C_301 | C_321 | C_322 | C_332)) {
        why = bits & C_307   ? HEARTH_MUC_LEFT_KICKED
              : bits & C_301 ? HEARTH_MUC_LEFT_BANNED
              : bits & C_332 ? HEARTH_MUC_LEFT_SHUTDOWN
                             : HEARTH_MUC_LEFT_REMOVED;
        hearth_xml_node_t *item = x ? hearth_xml_child(x, "item", NULL) : NULL;
        reason = item ? hearth_xml_child(item, "reason", NULL) : NULL;
    }
    const char *text = reason ? hearth_xml_text(hearth_stanza_arena(st), reason) : NULL;
    if (!text)
        text = hearth_stanza_child_text(st, "status");
    room_left(r, why, text);
}

static void room_presence(hearth_muc_room_t *r, const char *nick, hearth_stanza_t *st)
{
    hearth_muc_t *m = r->m;
    const char *type = hearth_stanza_type(st);
    if (type && !strcmp(type, "error")) {
        presence_error(r, st);
        return;
    }
    if (!nick)
        return; /* the room's own presence: nothing of an occupant */
    hearth_xml_node_t *x = hearth_stanza_child(st, "x", HEARTH_NS_MUC_USER);
    hearth_xml_node_t *item = x ? hearth_xml_child(x, "item", NULL) : NULL;
    unsigned bits = x ? status_codes(x) : 0;
    bool self = (bits & C_110) || !strcmp(nick, r->nick);
    bool unavailable = type && !strcmp(type, "unavailable");
    if (type && !unavailable)
        return;
    size_t pos;
    occ_t *old = occ_find(r, nick, &pos);
    if (unavailable) {
        if (self && !(bits & C_303)) {
            self_unavailable(r, x, bits, st);
            return;
        }
        const char *new_nick = bits & C_303 && item ? hearth_xml_attr(item, "nick") : NULL;
        if (self && new_nick) {
            char *copy = ctx__strdup(m->c->ctx, new_nick);
            if (copy) {
                ctx__free(m->c->ctx, r->nick);
                r->nick = copy;
            }
        }
        if (!old)
            return;
        memmove(r->occ + pos, r->occ + pos + 1, (r->nocc - pos - 1) * sizeof(*r->occ));
        r->nocc--;
        if (r->self == old)
            r->self = NULL;
        if (!self && m->ev.occupant && !gone(m))
            m->ev.occupant(m->ud, m, r, &old->pub, HEARTH_MUC_LEFT, new_nick, departure_code(bits),
                           st);
        ctx__free(m->c->ctx, old);
        return;
    }
    const char *jid = item ? hearth_xml_attr(item, "jid") : NULL;
    occ_t *o = occ_new(m, nick, jid, hearth_stanza_child_text(st, "status"));
    if (!o)
        return;
    o->pub.affiliation = name_index(aff_names, 5, item ? hearth_xml_attr(item, "affiliation") : 0);
    o->pub.role = name_index(role_names, 4, item ? hearth_xml_attr(item, "role") : 0);
    o->pub.show = hearth_show_parse(hearth_stanza_child_text(st, "show"));
    o->pub.self = self;
    bool kept = true;
    if (old) {
        r->occ[pos] = o;
    } else if (r->nocc < HEARTH_MUC_MAX_OCCUPANTS) {
        occ_t **occ = ctx__realloc(m->c->ctx, r->occ, (r->nocc + 1) * sizeof(*occ));
        if (occ) {
            r->occ = occ;
            r->occ[r->nocc++] = o;
        } else {
            kept = false;
        }
    } else {
        kept = false;
    }
    if (self) {
        if (bits & C_210) {
            /* The room gave us another nick than we asked for. */
            char *copy = ctx__strdup(m->c->ctx, nick);
            if (copy) {
                ctx__free(m->c->ctx, r->nick);
                r->nick = copy;
            }
        }
        r->self = kept ? o : NULL;
        if (bits & C_201)
            r->created = true;
        if (r->state == R_JOINING) {
            r->state = R_JOINED;
            if (m->ev.joined && !gone(m))
                m->ev.joined(m->ud, m, r, 0, HEARTH_STANZA_ERR_NONE, r->created);
        }
    } else if (m->ev.occupant && !gone(m)) {
        m->ev.occupant(m->ud, m, r, &o->pub, old ? HEARTH_MUC_CHANGED : HEARTH_MUC_JOINED, NULL, 0,
                       st);
    }
    if (old)
        ctx__free(m->c->ctx, old);
    if (!kept)
        ctx__free(m->c->ctx, o);
}

static int on_presence(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    (void)c;
    hearth_muc_t *m = ud;
    const char *from = hearth_stanza_from(st);
    hearth_jid_t j;
    if (!from || hearth_jid_parse(from, strlen(from), &j, NULL) != 0)
        return 0;
    hearth_muc_room_t *r = room_by_jid(m, j.bare);
    if (r)
        room_presence(r, j.resource, st);
    hearth_jid_clear(&j);
    /* A room's presence is the room's business, not a contact's (the presence manager). */
    return r ? HEARTH_HANDLED : 0;
}

/* ---- messages ---- */

static void invitation(hearth_muc_t *m, const char *room, hearth_xml_node_t *x, hearth_stanza_t *st)
{
    hearth_arena_t *a = hearth_stanza_arena(st);
    hearth_xml_node_t *inv = hearth_xml_child(x, "invite", NULL);
    hearth_xml_node_t *dec = hearth_xml_child(x, "decline", NULL);
    hearth_xml_node_t *el = inv ? inv : dec;
    hearth_xml_node_t *reason = hearth_xml_child(el, "reason", NULL);
    hearth_xml_node_t *pw = hearth_xml_child(x, "password", NULL);
    const char *who = hearth_xml_attr(el, "from");
    const char *why = reason ? hearth_xml_text(a, reason) : NULL;
    if (!who)
        return;
    if (inv && m->ev.invitation)
        m->ev.invitation(m->ud, m, room, who, why, pw ? hearth_xml_text(a, pw) : NULL, 0);
    else if (!inv && m->ev.declined)
        m->ev.declined(m->ud, m, room, who, why);
}

static int on_message(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    hearth_muc_t *m = ud;
    const char *from = hearth_stanza_from(st);
    hearth_jid_t j;
    if (!from || hearth_jid_parse(from, strlen(from), &j, NULL) != 0)
        return 0;
    const char *type = hearth_stanza_type(st);
    hearth_muc_room_t *r = room_by_jid(m, j.bare);
    hearth_xml_node_t *x = hearth_stanza_child(st, "x", HEARTH_NS_MUC_USER);
    hearth_xml_node_t *conf = hearth_stanza_child(st, "x", HEARTH_NS_CONFERENCE);
    if (type && !strcmp(type, "error")) {
        if (r && m->ev.error) {
            const char *text;
            hearth_stanza_error_t cond = hearth_stanza_error(st, &text);
            m->ev.error(m->ud, m, r, hearth_stanza_id(st), cond, text);
        }
    } else if (type && !strcmp(type, "groupchat")) {
        const char *subject = hearth_stanza_child_text(st, "subject");
        const char *body = hearth_stanza_child_text(st, "body");
        if (r && subject && !body) {
            char *copy = ctx__strdup(c->ctx, subject);
            if (copy) {
                ctx__free(c->ctx, r->subject);
                r->subject = copy;
            }
            if (m->ev.subject)
                m->ev.subject(m->ud, m, r, j.resource, subject);
        } else if (r && body && m->ev.message) {
            hearth_xml_node_t *delay = hearth_stanza_child(st, "delay", HEARTH_NS_DELAY);
            m->ev.message(m->ud, m, r, j.resource, body,
                          delay ? hearth_xml_attr(delay, "stamp") : NULL, st);
        }
    } else if (x && !j.resource &&
               (hearth_xml_child(x, "invite", NULL) || hearth_xml_child(x, "decline", NULL))) {
        invitation(m, j.bare, x, st);
    } else if (conf && m->ev.invitation) {
        /* XEP-0249: the room's JID in the element, the inviter in from. */
        const char *room = hearth_xml_attr(conf, "jid");
        if (room)
            m->ev.invitation(m->ud, m, room, from, hearth_xml_attr(conf, "reason"),
                             hearth_xml_attr(conf, "password"), 1);
    }
    hearth_jid_clear(&j);
    return 0;
}

static int send_room_message(hearth_muc_room_t *r, const char *type, const char *to, const char *id,
                             hearth_stanza_t **out)
{
    *out = hearth_stanza_new("message", type, to ? to : r->jid, id);
    return *out ? 0 : HEARTH_ENOMEM;
}

int hearth_muc_say(hearth_muc_room_t *r, const char *body, char *id_out, size_t id_size)
{
    if (!body)
        return HEARTH_EINVAL;
    char id[32];
    hearth_client_new_id(r->m->c, id, sizeof id);
    hearth_stanza_t *st;
    if (send_room_message(r, "groupchat", NULL, id, &st) ||
        hearth_stanza_add_text_child(st, "body", body)) {
        hearth_stanza_unref(st);
        return HEARTH_ENOMEM;
    }
    if (id_out && id_size)
        snprintf(id_out, id_size, "%s", id);
    return hearth_client_send(r->m->c, st);
}

int hearth_muc_set_subject(hearth_muc_room_t *r, const char *subject)
{
    if (!subject)
        return HEARTH_EINVAL;
    hearth_stanza_t *st;
    if (send_room_message(r, "groupchat", NULL, NULL, &st) ||
        hearth_stanza_add_text_child(st, "subject", subject)) {
        hearth_stanza_unref(st);
        return HEARTH_ENOMEM;
    }
    return hearth_client_send(r->m->c, st);
}

/* <message to=room><x muc#user><name to=to><reason/></name></x></message> */
static int send_invite_or_decline(hearth_client_t *c, const char *room, const char *name,
                                  const char *to, const char *reason)
{
    hearth_jid_t j;
    if (!to || hearth_jid_parse(to, strlen(to), &j, NULL) != 0)
        return HEARTH_EINVAL;
    char id[32];
    hearth_stanza_t *st =
        hearth_stanza_new("message", NULL, room, hearth_client_new_id(c, id, sizeof id));
    hearth_arena_t *a = st ? hearth_stanza_arena(st) : NULL;
    hearth_xml_node_t *x =
        st ? hearth_xml_add_child(a, hearth_stanza_node(st), "x", HEARTH_NS_MUC_USER) : NULL;
    hearth_xml_node_t *el = hearth_xml_add_child(a, x, name, NULL);
    hearth_xml_node_t *rs = NULL;
    int rc = el && !hearth_xml_set_attr(a, el, "to", j.full) ? 0 : HEARTH_ENOMEM;
    hearth_jid_clear(&j);
    if (rc == 0 && reason &&
        (!(rs = hearth_xml_add_child(a, el, "reason", NULL)) ||
         (*reason && !hearth_xml_add_text(a, rs, reason, strlen(reason)))))
        rc = HEARTH_ENOMEM;
    if (rc) {
        hearth_stanza_unref(st);
        return rc;
    }
    return hearth_client_send(c, st);
}

int hearth_muc_invite(hearth_muc_room_t *r, const char *jid, const char *reason)
{
    return send_invite_or_decline(r->m->c, r->jid, "invite", jid, reason);
}

int hearth_muc_decline(hearth_muc_t *m, const char *room_jid, const char *inviter,
                       const char *reason)
{
    hearth_jid_t j;
    if (!room_jid || hearth_jid_parse(room_jid, strlen(room_jid), &j, NULL) != 0)
        return HEARTH_EINVAL;
    int rc = send_invite_or_decline(m->c, j.bare, "decline", inviter, reason);
    hearth_jid_clear(&j);
    return rc;
}

/* ---- configuration ---- */

static void free_form_req(hearth_client_t *c, void *ud)
{
    ctx__free(c->ctx, ud);
}

static void form_answered(void *ud, hearth_client_t *c, int result, hearth_stanza_t *resp)
{
    form_req_t *req = ud;
    hearth_form_t form;
    const hearth_form_t *fp = NULL;
    if (result == 0) {
        hearth_xml_node_t *q = hearth_stanza_child(resp, "query", HEARTH_NS_MUC_OWNER);
        hearth_xml_node_t *x = q ? hearth_xml_child(q, "x", HEARTH_NS_DATA) : NULL;
        if (x && hearth_form_parse(hearth_stanza_arena(resp), x, NULL, &form, NULL) == 0)
            fp = &form;
        else
            result = HEARTH_EXML;
    }
    if (req->cb)
        req->cb(req->ud, req->m, req->room, result, fp);
    free_form_req(c, req);
}

static hearth_stanza_t *owner_iq(hearth_muc_room_t *r, const char *type, hearth_xml_node_t **q)
{
    return hearth_stanza_new_iq(type, r->jid, "query", HEARTH_NS_MUC_OWNER, q);
}

int hearth_muc_fetch_form(hearth_muc_room_t *r, hearth_muc_form_fn cb, void *ud)
{
    size_t len = strlen(r->jid) + 1;
    form_req_t *req = ctx__alloc(r->m->c->ctx, sizeof(*req) + len);
    hearth_stanza_t *iq = req ? owner_iq(r, "get", NULL) : NULL;
    if (!iq) {
        ctx__free(r->m->c->ctx, req);
        return HEARTH_ENOMEM;
    }
    req->m = r->m;
    req->cb = cb;
    req->ud = ud;
    memcpy(req->room, r->jid, len);
    int rc = hearth_client_iq(r->m->c, iq, 0, form_answered, req);
    if (rc)
        ctx__free(r->m->c->ctx, req);
    return rc;
}

int hearth_muc_submit_form(hearth_muc_room_t *r, const hearth_form_t *form, hearth_iq_fn cb,
                           void *ud)
{
    hearth_xml_node_t *q;
    hearth_stanza_t *iq = owner_iq(r, "set", &q);
    hearth_arena_t *a = iq ? hearth_stanza_arena(iq) : NULL;
    hearth_xml_node_t *x = iq ? hearth_form_new(a, q, HEARTH_FORM_SUBMIT) : NULL;
    if (!x || !hearth_form_add_form_type(a, x, HEARTH_NS_MUC_ROOMCONFIG))
        goto nomem;
    for (size_t i = 0; form && i < form->nfields; i++) {
        const hearth_form_field_t *fl = &form->fields[i];
        if (!fl->var || !strcmp(fl->var, "FORM_TYPE"))
            continue;
        hearth_xml_node_t *f = hearth_form_add_field(a, x, fl->var, NULL, NULL, NULL);
        if (!f)
            goto nomem;
        for (size_t k = 0; k < fl->nvalues; k++)
            if (!hearth_form_add_value(a, f, fl->values[k] ? fl->values[k] : ""))
                goto nomem;
    }
    return hearth_client_iq(r->m->c, iq, 0, cb, ud);
nomem:
    hearth_stanza_unref(iq);
    return HEARTH_ENOMEM;
}

int hearth_muc_instant(hearth_muc_room_t *r, hearth_iq_fn cb, void *ud)
{
    hearth_xml_node_t *q;
    hearth_stanza_t *iq = owner_iq(r, "set", &q);
    if (!iq || !hearth_form_new(hearth_stanza_arena(iq), q, HEARTH_FORM_SUBMIT)) {
        hearth_stanza_unref(iq);
        return HEARTH_ENOMEM;
    }
    return hearth_client_iq(r->m->c, iq, 0, cb, ud);
}

/* ---- reading ---- */

hearth_muc_room_t *hearth_muc_room_find(const hearth_muc_t *m, const char *room_jid)
{
    hearth_jid_t j;
    if (!room_jid || hearth_jid_parse(room_jid, strlen(room_jid), &j, NULL) != 0)
        return NULL;
    hearth_muc_room_t *r = room_by_jid(m, j.bare);
    hearth_jid_clear(&j);
    return r;
}

size_t hearth_muc_room_count(const hearth_muc_t *m)
{
    size_t n = 0;
    for (hearth_muc_room_t *r = m->rooms; r; r = r->next)
        n++;
    return n;
}

hearth_muc_room_t *hearth_muc_room_at(const hearth_muc_t *m, size_t i)
{
    hearth_muc_room_t *r = m->rooms;
    while (r && i--)
        r = r->next;
    return r;
}

const char *hearth_muc_room_jid(const hearth_muc_room_t *r)
{
    return r->jid;
}

const char *hearth_muc_room_nick(const hearth_muc_room_t *r)
{
    return r->nick;
}

int hearth_muc_room_joined(const hearth_muc_room_t *r)
{
    return r->state == R_JOINED && !r->dead;
}

const char *hearth_muc_room_subject(const hearth_muc_room_t *r)
{
    return r->subject;
}

size_t hearth_muc_occupant_count(const hearth_muc_room_t *r)
{
    return r->nocc;
}

const hearth_muc_occupant_t *hearth_muc_occupant_at(const hearth_muc_room_t *r, size_t i)
{
    return i < r->nocc ? &r->occ[i]->pub : NULL;
}

const hearth_muc_occupant_t *hearth_muc_occupant_find(const hearth_muc_room_t *r, const char *nick)
{
    occ_t *o = nick ? occ_find(r, nick, NULL) : NULL;
    return o ? &o->pub : NULL;
}

const hearth_muc_occupant_t *hearth_muc_room_self(const hearth_muc_room_t *r)
{
    return r->self ? &r->self->pub : NULL;
}

/* ---- the client's events ---- */

static void on_online(void *ud, hearth_client_t *c, const char *jid, int resumed)
{
    (void)c;
    (void)jid;
    hearth_muc_t *m = ud;
    if (resumed)
        return;
    /* A new session is in no room: join again what we were in (without history: it was
     * seen), and forget the rooms we were leaving. */
    hearth_muc_room_t *r = m->rooms;
    while (r && !gone(m)) {
        hearth_muc_room_t *next = r->next;
        if (r->state == R_LEAVING) {
            room_left(r, HEARTH_MUC_LEFT_BY_US, NULL);
        } else {
            occ_clear(r);
            r->state = R_JOINING;
            hearth_muc_join_options_t o = {.no_history = 1};
            if (send_join(r, &o) != 0)
                room_left(r, HEARTH_MUC_LEFT_OFFLINE, NULL);
        }
        r = next;
    }
}

static void on_disconnected(void *ud, hearth_client_t *c, const hearth_disconnect_info_t *info)
{
    (void)c;
    hearth_muc_t *m = ud;
    if (info->will_reconnect)
        return;
    while (m->rooms && !gone(m))
        room_left(m->rooms, HEARTH_MUC_LEFT_OFFLINE, NULL);
}

/* ---- life ---- */

static void destroy(hearth_muc_t *m)
{
    while (m->rooms)
        room_unlink_free(m->rooms);
    ctx__free(m->c->ctx, m);
}

static void slot_free(void *mgr)
{
    hearth_muc_t *m = mgr;
    dispatch__drop_iqs(m->c, form_answered, free_form_req);
    destroy(m);
}

int hearth_muc_new(hearth_client_t *c, const hearth_muc_events_t *ev, void *ud, hearth_muc_t **out)
{
    *out = NULL;
    if (hearth_client_slot(c, HEARTH_SLOT_MUC))
        return HEARTH_EEXISTS;
    hearth_muc_t *m = ctx__calloc(c->ctx, sizeof(*m));
    if (!m)
        return HEARTH_ENOMEM;
    m->c = c;
    if (ev)
        m->ev = *ev;
    m->ud = ud;
    hearth_client_events_t lev = {.online = on_online, .disconnected = on_disconnected};
    hearth_filter_t pf = {.kinds = HEARTH_STANZA_PRESENCE};
    hearth_filter_t mf = {.kinds = HEARTH_STANZA_MESSAGE};
    /* Above the presence manager's handler (priority 0): rooms' presence stops here. */
    int rc = hearth_client_add_listener(c, &lev, m, &m->listener_id);
    if (rc == 0)
        rc = hearth_client_add_handler(c, &pf, 10, on_presence, m, &m->presence_handler);
    if (rc == 0)
        rc = hearth_client_add_handler(c, &mf, 10, on_message, m, &m->message_handler);
    if (rc) {
        (void)hearth_client_remove_handler(c, m->presence_handler);
        (void)hearth_client_remove_listener(c, m->listener_id);
        ctx__free(c->ctx, m);
        return rc;
    }
    (void)client__take_slot(c, HEARTH_SLOT_MUC, m, slot_free);
    *out = m;
    return 0;
}

hearth_muc_t *hearth_muc_get(const hearth_client_t *c)
{
    return c->slot_free[HEARTH_SLOT_MUC] == slot_free ? c->slots[HEARTH_SLOT_MUC] : NULL;
}

void hearth_muc_free(hearth_muc_t *m)
{
    if (!m)
        return;
    hearth_client_t *c = m->c;
    dispatch__drop_iqs(c, form_answered, free_form_req);
    (void)hearth_client_remove_handler(c, m->presence_handler);
    (void)hearth_client_remove_handler(c, m->message_handler);
    (void)hearth_client_remove_listener(c, m->listener_id);
    client__release_slot(c, HEARTH_SLOT_MUC);
    destroy(m);
}

hearth_client_t *hearth_muc_client(const hearth_muc_t *m)
{
    return m->c;
}
