/* Administration of a room (XEP-0045 §8-§10): roles and affiliations with the permission tables
 * of §5.1-§5.2, the owner's configuration form (§10.2, with Openfire's x-muc#roomconfig_*
 * fields), membership registration (§7.10), and destruction (§10.9). Validation happens before
 * any change: a refused request changes nothing. Runs on the room's home worker. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/muc.h"

static hearth_xml_node_t *child_text(hearth_arena_t *a, hearth_xml_node_t *parent, const char *name,
                                     const char *ns, const char *text)
{
    hearth_xml_node_t *n = hearth_xml_add_child(a, parent, name, ns);
    if (n && text)
        hearth_xml_add_text(a, n, text, strlen(text));
    return n;
}

static char *bare_of(hearth_arena_t *a, const char *jid)
{
    return hearth_arena_strndup(a, jid, strcspn(jid, "/"));
}

static void xml_escape_into(hearth_buf_t *b, const char *s)
{
    if (hearth_buf_append_escaped(b, s, strlen(s)))
        hearth_buf_reset(b);
}

/* <actor nick/><reason/> as item content. */
static char *item_extra(const char *actor_nick, const char *reason)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = 0;
    if (actor_nick) {
        rc = rc ?: hearth_buf_append_str(&b, "<actor nick='");
        if (!rc)
            xml_escape_into(&b, actor_nick);
        rc = rc ?: hearth_buf_append_str(&b, "'/>");
    }
    if (reason && *reason) {
        rc = rc ?: hearth_buf_append_str(&b, "<reason>");
        if (!rc)
            xml_escape_into(&b, reason);
        rc = rc ?: hearth_buf_append_str(&b, "</reason>");
    }
    if (rc || !b.data) {
        hearth_buf_free(&b);
        return NULL;
    }
    return hearth_buf_steal(&b, NULL);
}

/* ---- affiliations ---- */

static void aff_free(muc_affiliation_t *af)
{
    if (!af)
        return;
    free(af->nick);
    free(af->reason);
    free(af);
}

/* What one affiliation adds to the lists that show it: its <item/> in an admin list (JID,
 * reserved nick, reason and markup, the reason's namespace included), more than its <value/> in
 * the configuration form or disco#info. */
#define AFF_ITEM_BYTES 128
/* What a list or form of a room stored under older limits, with more than MUC_AFF_BYTES of
 * affiliations, gets instead (removing affiliations works as ever). */
#define AFF_OVER_TEXT "the room's affiliations are past their bound; remove some"

static size_t aff_cost(const char *bare, const char *nick, const char *reason)
{
    return AFF_ITEM_BYTES + hearth_buf_escaped_len(bare) +
           (nick ? hearth_buf_escaped_len(nick) : 0) +
           (reason ? hearth_buf_escaped_len(reason) : 0);
}

static void aff_drop(muc_room_t *r, const char *bare)
{
    muc_affiliation_t *af = strmap_remove(&r->affs, bare);
    if (af)
        r->aff_bytes -= aff_cost(bare, af->nick, af->reason);
    aff_free(af);
}

int muc__aff_set(muc_room_t *r, const char *bare, muc_aff_t aff, const char *nick,
                 const char *reason)
{
    muc_affiliation_t *af = strmap_get(&r->affs, bare);
    if (aff == AFF_NONE && !nick) {
        aff_drop(r, bare);
        return 0;
    }
    if (!af) {
        if (r->affs.count >= MUC_AFF_MAX || !(af = calloc(1, sizeof(*af))))
            return -1;
        if (strmap_put(&r->affs, bare, af)) {
            free(af);
            return -1;
        }
    } else {
        r->aff_bytes -= aff_cost(bare, af->nick, af->reason);
    }
    af->aff = aff;
    if (nick) {
        char *n = *nick ? strdup(nick) : NULL;
        free(af->nick);
        af->nick = n;
    }
    if (reason) {
        char *s = *reason ? strdup(reason) : NULL;
        free(af->reason);
        af->reason = s;
    }
    if (af->aff == AFF_NONE && !af->nick) {
        aff_free(strmap_remove(&r->affs, bare));
        return 0;
    }
    r->aff_bytes += aff_cost(bare, af->nick, af->reason);
    return 0;
}

void muc__aff_delta(const muc_room_t *r, const char *bare, muc_aff_t aff, const char *nick,
                    const char *reason, long long *dbytes, long *dcount)
{
    const muc_affiliation_t *af = strmap_get(&r->affs, bare);
    long long before = af ? (long long)aff_cost(bare, af->nick, af->reason) : 0, after = 0;
    const char *n = nick ? (*nick ? nick : NULL) : (af ? af->nick : NULL);
    const char *why = reason ? (*reason ? reason : NULL) : (af ? af->reason : NULL);
    int kept = !(aff == AFF_NONE && (!nick || !n));
    if (kept)
        after = (long long)aff_cost(bare, n, why);
    *dbytes = after - before;
    *dcount = (long)kept - (af != NULL);
}

int muc__aff_fits(const muc_room_t *r, long long dbytes, long dcount)
{
    return (dbytes <= 0 || (long long)r->aff_bytes + dbytes <= MUC_AFF_BYTES) &&
           (dcount <= 0 || (long long)r->affs.count + dcount <= MUC_AFF_MAX);
}

static unsigned count_owners(const muc_room_t *r)
{
    unsigned n = 0;
    STRMAP_FOREACH(&r->affs, e)
    {
        if (((muc_affiliation_t *)e->value)->aff == AFF_OWNER)
            n++;
    }
    return n;
}

void muc__aff_effects(worker_t *w, muc_room_t *r, const char *bare, const char *actor_nick,
                      const char *reason)
{
    muc_aff_t aff = muc__aff_of(r, bare);
    char *extra = item_extra(actor_nick, reason);
    for (muc_occupant_t *o = r->occupants, *n; o; o = n) {
        n = o->next;
        if (strcmp(o->bare, bare))
            continue;
        if (aff == AFF_OUTCAST) {
            static const int c301[] = {301};
            muc__occupant_remove(w, r, o, c301, 1, extra, NULL);
        } else if (r->cfg.membersonly && aff < AFF_MEMBER) {
            static const int c321[] = {321};
            muc__occupant_remove(w, r, o, c321, 1, extra, NULL);
        } else {
            muc_role_t role = muc__default_role(r, aff);
            if (role == ROLE_NONE)
                role = ROLE_PARTICIPANT;
            /* A visitor given voice keeps it when its affiliation does not say otherwise. */
            if (aff < AFF_ADMIN && o->role == ROLE_PARTICIPANT && role == ROLE_VISITOR)
                role = ROLE_PARTICIPANT;
            o->role = role;
            muc__occupant_broadcast(w, r, o, NULL, 0, extra);
        }
    }
    free(extra);
}

/* ---- admin IQ (§8, §9) ---- */

typedef struct change {
    int is_role;
    muc_role_t role;
    muc_aff_t aff;
    muc_occupant_t *target; /* role changes */
    char *bare;             /* affiliation changes */
    const char *nick;       /* reserved nick given with an affiliation */
    const char *reason;
} change_t;

static hearth_stanza_error_t check_change(const muc_room_t *r, const muc_occupant_t *actor,
                                          muc_aff_t actor_aff, const change_t *c, const char **text)
{
    muc_role_t actor_role = actor ? actor->role : ROLE_NONE;
    if (c->is_role) {
        const muc_occupant_t *t = c->target;
        muc_aff_t taff = muc__aff_of(r, t->bare);
        if (actor_role != ROLE_MODERATOR) {
            *text = "only moderators change roles";
            return HEARTH_STANZA_ERR_FORBIDDEN;
        }
        if (c->role == ROLE_MODERATOR || t->role == ROLE_MODERATOR) {
            if (actor_aff < AFF_ADMIN) {
                *text = "only admins and owners grant or revoke moderation";
                return HEARTH_STANZA_ERR_FORBIDDEN;
            }
        }
        if (c->role != ROLE_MODERATOR && taff >= AFF_ADMIN && t != actor) {
            *text = "admins and owners keep their role";
            return HEARTH_STANZA_ERR_NOT_ALLOWED;
        }
        if (c->role != ROLE_MODERATOR && taff > actor_aff) {
            *text = "the occupant's affiliation is higher than yours";
            return HEARTH_STANZA_ERR_NOT_ALLOWED;
        }
        return HEARTH_STANZA_ERR_NONE;
    }
    muc_aff_t cur = muc__aff_of(r, c->bare);
    if (actor_aff < AFF_ADMIN) {
        *text = "only admins and owners change affiliations";
        return HEARTH_STANZA_ERR_FORBIDDEN;
    }
    if (actor_aff == AFF_ADMIN) {
        if (cur >= AFF_ADMIN) {
            *text = "admins cannot change the affiliation of an admin or owner";
            return HEARTH_STANZA_ERR_NOT_ALLOWED;
        }
        if (c->aff >= AFF_ADMIN) {
            *text = "only owners grant admin or owner";
            return HEARTH_STANZA_ERR_FORBIDDEN;
        }
    }
    if (cur == AFF_OWNER && c->aff != AFF_OWNER && count_owners(r) <= 1) {
        *text = "a room keeps at least one owner";
        return HEARTH_STANZA_ERR_CONFLICT;
    }
    return HEARTH_STANZA_ERR_NONE;
}

static void admin_get(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                      const char *from, hearth_xml_node_t *item, muc_occupant_t *actor,
                      muc_aff_t actor_aff)
{
    const char *role_s = hearth_xml_attr(item, "role");
    const char *aff_s = hearth_xml_attr(item, "affiliation");
    hearth_xml_node_t *res = hearth_xml_new(a, "query", HEARTH_NS_MUC_ADMIN);
    muc_role_t role;
    muc_aff_t aff;
    if (role_s && !muc__role_parse(role_s, &role) && role != ROLE_NONE) {
        int ok = role == ROLE_MODERATOR ? actor_aff >= AFF_ADMIN
                                        : (actor && actor->role == ROLE_MODERATOR);
        if (!ok) {
            muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_FORBIDDEN, NULL);
            return;
        }
        for (muc_occupant_t *o = r->occupants; o; o = o->next) {
            if (o->role != role)
                continue;
            hearth_xml_node_t *it = hearth_xml_add_child(a, res, "item", NULL);
            hearth_xml_set_attr(a, it, "affiliation", muc__aff_name(muc__aff_of(r, o->bare)));
            hearth_xml_set_attr(a, it, "role", muc__role_name(o->role));
            hearth_xml_set_attr(a, it, "nick", o->nick);
            if (r->cfg.whois_anyone || (actor && actor->role == ROLE_MODERATOR))
                hearth_xml_set_attr(a, it, "jid", o->jid);
        }
    } else if (aff_s && !muc__aff_parse(aff_s, &aff) && aff != AFF_NONE) {
        int ok = actor_aff >= AFF_ADMIN ||
                 (aff == AFF_MEMBER && actor && (r->cfg.getmemberlist & ROLEMASK(actor->role)));
        if (!ok) {
            muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_FORBIDDEN, NULL);
            return;
        }
        if (r->aff_bytes > MUC_AFF_BYTES) {
            muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                             AFF_OVER_TEXT);
            return;
        }
        STRMAP_FOREACH(&r->affs, e)
        {
            const muc_affiliation_t *af = e->value;
            if (af->aff != aff)
                continue;
            hearth_xml_node_t *it = hearth_xml_add_child(a, res, "item", NULL);
            hearth_xml_set_attr(a, it, "affiliation", muc__aff_name(af->aff));
            hearth_xml_set_attr(a, it, "jid", e->key);
            if (af->nick)
                hearth_xml_set_attr(a, it, "nick", af->nick);
            if (af->reason)
                child_text(a, it, "reason", HEARTH_NS_MUC_ADMIN, af->reason);
        }
    } else {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_BAD_REQUEST,
                         "ask for one role or one affiliation");
        return;
    }
    muc__iq_result(w, iq, a, r->jid, from, res);
}

void muc__admin_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                   const char *from, int set)
{
    hearth_xml_node_t *q = hearth_xml_first_element(iq);
    muc_occupant_t *actor = muc__occupant_by_jid(r, from);
    char *actor_bare = bare_of(a, from);
    muc_aff_t actor_aff = muc__aff_of(r, actor_bare);
    size_t n = hearth_xml_count_elements(q);
    if (!n) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_BAD_REQUEST, "no item");
        return;
    }
    if (!set) {
        admin_get(w, r, iq, a, from, hearth_xml_first_element(q), actor, actor_aff);
        return;
    }
    change_t *cs = hearth_arena_alloc(a, n * sizeof(*cs));
    if (!cs)
        return;
    size_t k = 0;
    /* First every item is checked; only then is anything changed. */
    for (hearth_xml_node_t *it = hearth_xml_first_element(q); it;
         it = hearth_xml_next_element(it)) {
        change_t *c = &cs[k];
        memset(c, 0, sizeof(*c));
        const char *text = NULL;
        hearth_stanza_error_t err = HEARTH_STANZA_ERR_NONE;
        const char *role_s = hearth_xml_attr(it, "role");
        const char *aff_s = hearth_xml_attr(it, "affiliation");
        const char *nick = hearth_xml_attr(it, "nick");
        const char *jid_s = hearth_xml_attr(it, "jid");
        hearth_xml_node_t *rn = hearth_xml_child(it, "reason", HEARTH_NS_MUC_ADMIN);
        c->reason = rn ? hearth_xml_text(a, rn) : NULL;
        if (strcmp(it->name, "item") || (!role_s && !aff_s) || (role_s && aff_s)) {
            err = HEARTH_STANZA_ERR_BAD_REQUEST;
            text = "an item changes a role or an affiliation";
        } else if (role_s) {
            c->is_role = 1;
            if (muc__role_parse(role_s, &c->role) || !nick) {
                err = HEARTH_STANZA_ERR_BAD_REQUEST;
                text = "a role change names a valid role and a nick";
            } else if (!(c->target = strmap_get(&r->by_nick, nick))) {
                err = HEARTH_STANZA_ERR_ITEM_NOT_FOUND;
                text = "no such occupant";
            }
        } else {
            hearth_jid_t j = HEARTH_JID_INIT;
            if (muc__aff_parse(aff_s, &c->aff)) {
                err = HEARTH_STANZA_ERR_BAD_REQUEST;
                text = "unknown affiliation";
            } else if (jid_s) {
                if (hearth_jid_parse(jid_s, strlen(jid_s), &j, NULL)) {
                    err = HEARTH_STANZA_ERR_JID_MALFORMED;
                } else {
                    c->bare = hearth_arena_strdup(a, j.bare);
                    hearth_jid_clear(&j);
                    c->nick = nick;
                }
            } else if (nick && strmap_get(&r->by_nick, nick)) {
                muc_occupant_t *t = strmap_get(&r->by_nick, nick);
                c->bare = hearth_arena_strdup(a, t->bare);
            } else {
                err = HEARTH_STANZA_ERR_BAD_REQUEST;
                text = "an affiliation change names a jid";
            }
        }
        if (!err)
            err = check_change(r, actor, actor_aff, c, &text);
        if (err) {
            muc__reply_error(w, iq, a, r->jid, from, err, text);
            return;
        }
        k++;
    }
    long long dbytes = 0;
    long dcount = 0;
    for (size_t i = 0; i < k; i++) {
        long long b;
        long dn;
        if (cs[i].is_role)
            continue;
        /* A JID named twice is counted twice: never less than what the changes take. */
        muc__aff_delta(r, cs[i].bare, cs[i].aff, cs[i].nick, cs[i].reason ? cs[i].reason : "", &b,
                       &dn);
        dbytes += b;
        dcount += dn;
    }
    if (!muc__aff_fits(r, dbytes, dcount)) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                         "the room's affiliation lists are full");
        return;
    }
    muc__iq_result(w, iq, a, r->jid, from, NULL);
    int save = 0;
    /* An earlier item may remove the actor itself (a moderator kicking or banning itself):
     * its nick is copied now, and actor is not read again. */
    const char *actor_nick = actor ? hearth_arena_strdup(a, actor->nick) : NULL;
    for (size_t i = 0; i < k; i++) {
        change_t *c = &cs[i];
        if (c->is_role) {
            /* The target may have gone with an earlier item of the same request. */
            muc_occupant_t *t = NULL;
            for (muc_occupant_t *o = r->occupants; o; o = o->next)
                if (o == c->target)
                    t = o;
            if (!t)
                continue;
            char *extra = item_extra(actor_nick, c->reason);
            if (c->role == ROLE_NONE) {
                static const int c307[] = {307};
                muc__occupant_remove(w, r, t, c307, 1, extra, NULL);
            } else if (t->role != c->role) {
                t->role = c->role;
                muc__occupant_broadcast(w, r, t, NULL, 0, extra);
            }
            free(extra);
        } else {
            if (muc__aff_set(r, c->bare, c->aff, c->nick ? c->nick : NULL,
                             c->reason ? c->reason : ""))
                continue;
            muc__aff_effects(w, r, c->bare, actor_nick, c->reason);
            save = 1;
        }
    }
    if (save)
        muc__store_save(w, r);
}

/* ---- configuration form (§10.2) ---- */

/* A list field with its options, from a table of value and label pairs ending in NULL. */
static hearth_xml_node_t *list_field(hearth_arena_t *a, hearth_xml_node_t *x, const char *var,
                                     const char *type, const char *label, const char *const *opts)
{
    hearth_xml_node_t *f = hearth_form_add_field(a, x, var, type, label, NULL);
    for (int i = 0; f && opts[i]; i += 2)
        hearth_form_add_option(a, f, opts[i + 1], opts[i]);
    return f;
}

static const char *const pm_opts[] = {
    "anyone", "Anyone", "participants", "Anyone with voice", "moderators", "Moderators", "none",
    "Nobody", NULL};
static const char *const role_opts[] = {"moderator", "Moderator", "participant", "Participant",
                                        "visitor",   "Visitor",   NULL};
static const char *const maxusers_opts[] = {"10", "10",  "20",  "20",   "30",       "30", "50",
                                            "50", "100", "100", "none", "No limit", NULL};
static const char *const whois_opts[] = {"moderators", "Moderators only", "anyone", "Anyone", NULL};

hearth_xml_node_t *muc__config_form(const muc_room_t *r, hearth_arena_t *a)
{
    const muc_config_t *c = &r->cfg;
    hearth_xml_node_t *x = hearth_form_new(a, NULL, HEARTH_FORM_FORM);
    hearth_form_add_title(a, x, "Room configuration");
    hearth_form_add_instructions(a, x,
                                 r->locked ? "The room is locked until it is configured."
                                           : "Change the room's configuration.");
    hearth_form_add_form_type(a, x, HEARTH_NS_MUC_ROOMCONFIG);
    hearth_form_add_field(a, x, "muc#roomconfig_roomname", "text-single", "Room name",
                          c->name ? c->name : "");
    hearth_form_add_field(a, x, "muc#roomconfig_roomdesc", "text-single", "Description",
                          c->desc ? c->desc : "");
    hearth_form_add_field(a, x, "muc#roomconfig_lang", "text-single", "Language",
                          c->lang ? c->lang : "");
    hearth_form_add_field(a, x, "muc#roomconfig_enablelogging", "boolean",
                          "Log the room's messages", c->logging ? "1" : "0");
    hearth_form_add_field(a, x, "muc#roomconfig_enablearchiving", "boolean",
                          "Keep an archive of the room's messages (persistent rooms)",
                          c->mam ? "1" : "0");
    hearth_form_add_field(a, x, "muc#roomconfig_changesubject", "boolean",
                          "Occupants may change the subject", c->changesubject ? "1" : "0");
    hearth_form_add_field(a, x, "muc#roomconfig_allowinvites", "boolean",
                          "Occupants may invite others", c->allowinvites ? "1" : "0");
    hearth_xml_node_t *f = list_field(a, x, "muc#roomconfig_allowpm", "list-single",
                                      "Who may send private messages", pm_opts);
    hearth_form_add_value(a, f, pm_opts[c->allowpm * 2]);
    f = list_field(a, x, "muc#roomconfig_maxusers", "list-single", "Maximum occupants",
                   maxusers_opts);
    char n[32];
    if (c->maxusers)
        snprintf(n, sizeof(n), "%u", c->maxusers);
    else
        snprintf(n, sizeof(n), "none");
    hearth_form_add_value(a, f, n);
    f = list_field(a, x, "muc#roomconfig_presencebroadcast", "list-multi",
                   "Roles whose presence is broadcast", role_opts);
    for (int i = ROLE_VISITOR; i <= ROLE_MODERATOR; i++)
        if (c->presencebroadcast & ROLEMASK(i))
            hearth_form_add_value(a, f, muc__role_name((muc_role_t)i));
    f = list_field(a, x, "muc#roomconfig_getmemberlist", "list-multi",
                   "Roles that may retrieve the member list", role_opts);
    for (int i = ROLE_VISITOR; i <= ROLE_MODERATOR; i++)
        if (c->getmemberlist & ROLEMASK(i))
            hearth_form_add_value(a, f, muc__role_name((muc_role_t)i));
    hearth_form_add_field(a, x, "muc#roomconfig_publicroom", "boolean",
                          "List the room in the directory", c->publicroom ? "1" : "0");
    hearth_form_add_field(a, x, "muc#roomconfig_persistentroom", "boolean", "Persistent room",
                          c->persistent ? "1" : "0");
    hearth_form_add_field(a, x, "muc#roomconfig_moderatedroom", "boolean", "Moderated room",
                          c->moderated ? "1" : "0");
    hearth_form_add_field(a, x, "muc#roomconfig_membersonly", "boolean", "Members-only room",
                          c->membersonly ? "1" : "0");
    hearth_form_add_field(a, x, "muc#roomconfig_passwordprotectedroom", "boolean",
                          "Password required to enter", c->passwordprotected ? "1" : "0");
    hearth_form_add_field(a, x, "muc#roomconfig_roomsecret", "text-private", "Password",
                          c->secret ? c->secret : "");
    f = list_field(a, x, "muc#roomconfig_whois", "list-single", "Who may see real JIDs",
                   whois_opts);
    hearth_form_add_value(a, f, c->whois_anyone ? "anyone" : "moderators");
    hearth_xml_node_t *admins =
        hearth_form_add_field(a, x, "muc#roomconfig_roomadmins", "jid-multi", "Room admins", NULL);
    hearth_xml_node_t *owners =
        hearth_form_add_field(a, x, "muc#roomconfig_roomowners", "jid-multi", "Room owners", NULL);
    STRMAP_FOREACH(&r->affs, e)
    {
        const muc_affiliation_t *af = e->value;
        if (af->aff == AFF_ADMIN)
            hearth_form_add_value(a, admins, e->key);
        else if (af->aff == AFF_OWNER)
            hearth_form_add_value(a, owners, e->key);
    }
    snprintf(n, sizeof(n), "%u", c->maxhistory);
    hearth_form_add_field(a, x, "muc#maxhistoryfetch", "text-single",
                          "Maximum history messages fetched", n);
    hearth_form_add_field(a, x, "muc#roomconfig_pubsub", "text-single", "Associated pub-sub node",
                          c->pubsub ? c->pubsub : "");
    hearth_form_add_field(a, x, "x-muc#roomconfig_reservednick", "boolean",
                          "Occupants with a reserved nickname must use it",
                          c->reservednick ? "1" : "0");
    hearth_form_add_field(a, x, "x-muc#roomconfig_canchangenick", "boolean",
                          "Occupants may change nicknames", c->canchangenick ? "1" : "0");
    hearth_form_add_field(a, x, "x-muc#roomconfig_registration", "boolean",
                          "Users may register with the room", c->registration ? "1" : "0");
    return x;
}

typedef enum {
    F_BOOL,
    F_TEXT,
    F_PRIVATE,
    F_PM,
    F_MAXUSERS,
    F_ROLES,
    F_WHOIS,
    F_JIDS,
    F_UINT
} ftype_t;

typedef struct fdef {
    const char *var;
    ftype_t type;
    size_t off; /* into muc_config_t, for the scalar fields */
} fdef_t;

#define OFF(f) offsetof(muc_config_t, f)
static const fdef_t fdefs[] = {
    {"muc#roomconfig_roomname", F_TEXT, OFF(name)},
    {"muc#roomconfig_roomdesc", F_TEXT, OFF(desc)},
    {"muc#roomconfig_lang", F_TEXT, OFF(lang)},
    {"muc#roomconfig_pubsub", F_TEXT, OFF(pubsub)},
    {"muc#roomconfig_roomsecret", F_PRIVATE, OFF(secret)},
    {"muc#roomconfig_enablelogging", F_BOOL, OFF(logging)},
    {"muc#roomconfig_enablearchiving", F_BOOL, OFF(mam)},
    {"muc#roomconfig_changesubject", F_BOOL, OFF(changesubject)},
    {"muc#roomconfig_allowinvites", F_BOOL, OFF(allowinvites)},
    {"muc#roomconfig_publicroom", F_BOOL, OFF(publicroom)},
    {"muc#roomconfig_persistentroom", F_BOOL, OFF(persistent)},
    {"muc#roomconfig_moderatedroom", F_BOOL, OFF(moderated)},
    {"muc#roomconfig_membersonly", F_BOOL, OFF(membersonly)},
    {"muc#roomconfig_passwordprotectedroom", F_BOOL, OFF(passwordprotected)},
    {"x-muc#roomconfig_reservednick", F_BOOL, OFF(reservednick)},
    {"x-muc#roomconfig_canchangenick", F_BOOL, OFF(canchangenick)},
    {"x-muc#roomconfig_registration", F_BOOL, OFF(registration)},
    {"muc#roomconfig_allowpm", F_PM, OFF(allowpm)},
    {"muc#roomconfig_maxusers", F_MAXUSERS, OFF(maxusers)},
    {"muc#roomconfig_presencebroadcast", F_ROLES, OFF(presencebroadcast)},
    {"muc#roomconfig_getmemberlist", F_ROLES, OFF(getmemberlist)},
    {"muc#roomconfig_whois", F_WHOIS, OFF(whois_anyone)},
    {"muc#maxhistoryfetch", F_UINT, OFF(maxhistory)},
    {"muc#roomconfig_roomadmins", F_JIDS, 0},
    {"muc#roomconfig_roomowners", F_JIDS, 0},
    {NULL, F_BOOL, 0},
};

static const fdef_t *fdef_find(const char *var)
{
    for (int i = 0; fdefs[i].var; i++)
        if (!strcmp(fdefs[i].var, var))
            return &fdefs[i];
    return NULL;
}

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "true")) {
        *out = 1;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "false")) {
        *out = 0;
        return 0;
    }
    return -1;
}

static int parse_uint(const char *v, unsigned max, unsigned *out)
{
    char *end;
    if (!*v || *v == '-' || *v == '+')
        return -1;
    unsigned long n = strtoul(v, &end, 10);
    if (*end || n > max)
        return -1;
    *out = (unsigned)n;
    return 0;
}

static int dup_into(char **dst, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return -1;
    free(*dst);
    *dst = s;
    return 0;
}

/* A deep copy of the text fields, so that a refused form leaves the room as it was. */
static int config_copy(muc_config_t *dst, const muc_config_t *src)
{
    *dst = *src;
    dst->name = dst->desc = dst->lang = dst->secret = dst->pubsub = NULL;
    if ((src->name && !(dst->name = strdup(src->name))) ||
        (src->desc && !(dst->desc = strdup(src->desc))) ||
        (src->lang && !(dst->lang = strdup(src->lang))) ||
        (src->secret && !(dst->secret = strdup(src->secret))) ||
        (src->pubsub && !(dst->pubsub = strdup(src->pubsub)))) {
        muc__config_free(dst);
        return -1;
    }
    return 0;
}

typedef struct jidlist {
    int given;
    size_t n;
    char **v; /* arena */
} jidlist_t;

/* The JIDs of l (none when it is not given), as a set. */
static int jid_set(strmap_t *set, const jidlist_t *l)
{
    if (strmap_init(set))
        return -1;
    for (size_t i = 0; l->given && i < l->n; i++)
        if (strmap_put(set, l->v[i], (void *)1)) {
            strmap_free(set);
            return -1;
        }
    return 0;
}

/* Whether r's affiliations stay within their bounds once the owner and admin lists replace the
 * current ones (as muc__config_apply does it: a dropped row loses its nick and reason, a listed
 * JID without a row gets one). */
static int lists_fit(const muc_room_t *r, const jidlist_t *owners, const strmap_t *own,
                     const jidlist_t *admins, const strmap_t *adm)
{
    strmap_t dropped;
    if (strmap_init(&dropped))
        return 0;
    long long dbytes = 0;
    long dcount = 0;
    int ok = 1;
    STRMAP_FOREACH(&r->affs, e)
    {
        const muc_affiliation_t *af = e->value;
        /* An admin named in the owner list is made an owner first, and so not dropped. */
        int drop = (af->aff == AFF_OWNER && owners->given && !strmap_get(own, e->key)) ||
                   (af->aff == AFF_ADMIN && admins->given && !strmap_get(adm, e->key) &&
                    !strmap_get(own, e->key));
        if (!drop)
            continue;
        dbytes -= (long long)aff_cost(e->key, af->nick, af->reason);
        dcount--;
        if (strmap_put(&dropped, e->key, (void *)1))
            ok = 0;
    }
    for (int pass = 0; pass < 2 && ok; pass++) {
        STRMAP_FOREACH(pass ? adm : own, e)
        {
            if (pass && strmap_get(own, e->key))
                continue; /* counted with the owners */
            if (!strmap_get(&r->affs, e->key) || strmap_get(&dropped, e->key)) {
                dbytes += (long long)aff_cost(e->key, NULL, NULL);
                dcount++;
            }
        }
    }
    strmap_free(&dropped);
    return ok && muc__aff_fits(r, dbytes, dcount);
}

hearth_stanza_error_t muc__config_apply(muc_room_t *r, const hearth_xml_node_t *x,
                                        hearth_arena_t *a, const char *actor_bare,
                                        const char **text, int *changed, int *nchanged)
{
    *nchanged = 0;
    if (hearth_form_type_of(x) != HEARTH_FORM_SUBMIT) {
        *text = "the form is submitted with type='submit'";
        return HEARTH_STANZA_ERR_BAD_REQUEST;
    }
    /* Past MUC_FORM_FIELDS_MAX elements, or a list longer than a room's affiliations may be:
     * not-acceptable; a malformed form: bad-request. */
    hearth_form_limits_t lim = {.max_fields = MUC_FORM_FIELDS_MAX, .max_values = MUC_AFF_MAX};
    hearth_form_t form;
    int rc = hearth_form_parse(a, x, &lim, &form, text);
    if (rc == HEARTH_ENOMEM)
        return HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
    if (rc)
        return rc == HEARTH_ELIMIT ? HEARTH_STANZA_ERR_NOT_ACCEPTABLE
                                   : HEARTH_STANZA_ERR_BAD_REQUEST;
    muc_config_t nc;
    if (config_copy(&nc, &r->cfg))
        return HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
    jidlist_t admins = {0}, owners = {0};
    int secret_given = 0, protected_given = 0;
    hearth_stanza_error_t err = HEARTH_STANZA_ERR_NONE;
    for (size_t fi = 0; fi < form.nfields && !err; fi++) {
        const char *var = form.fields[fi].var;
        if (!var) { /* a 'fixed' one (the parser refuses others): those are not submitted */
            *text = "a field without var";
            err = HEARTH_STANZA_ERR_BAD_REQUEST;
            break;
        }
        size_t nv = form.fields[fi].nvalues;
        const char *const *vals = form.fields[fi].values;
        if (!strcmp(var, "FORM_TYPE")) {
            if (nv != 1 || strcmp(vals[0], HEARTH_NS_MUC_ROOMCONFIG)) {
                *text = "FORM_TYPE is " HEARTH_NS_MUC_ROOMCONFIG;
                err = HEARTH_STANZA_ERR_BAD_REQUEST;
            }
            continue;
        }
        const fdef_t *d = fdef_find(var);
        if (!d)
            continue; /* unknown fields are ignored */
        char *base = (char *)&nc;
        *text = var; /* names the field when it is refused */
        switch (d->type) {
        case F_BOOL: {
            int b = 0; /* XEP-0004: a boolean without a value is false */
            if (nv > 1 || (nv == 1 && parse_bool(vals[0], &b)))
                err = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
            else
                *(int *)(base + d->off) = b;
            if (d->off == OFF(passwordprotected))
                protected_given = 1;
            break;
        }
        case F_TEXT:
        case F_PRIVATE:
            if (nv > 1 || (nv == 1 && strlen(vals[0]) > MUC_TEXT_MAX))
                err = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
            else if (dup_into((char **)(base + d->off), nv ? vals[0] : ""))
                err = HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
            if (d->type == F_PRIVATE && nv == 1 && *vals[0])
                secret_given = 1;
            break;
        case F_PM: {
            int found = -1;
            for (int i = 0; nv == 1 && pm_opts[i]; i += 2)
                if (!strcmp(vals[0], pm_opts[i]))
                    found = i / 2;
            if (found < 0)
                err = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
            else
                nc.allowpm = (muc_pm_t)found;
            break;
        }
        case F_MAXUSERS:
            if (nv != 1)
                err = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
            else if (!strcmp(vals[0], "none") || !strcmp(vals[0], "0"))
                nc.maxusers = 0;
            else if (parse_uint(vals[0], 1000000, &nc.maxusers) || !nc.maxusers)
                err = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
            break;
        case F_UINT:
            if (nv != 1 || parse_uint(vals[0], 1000000, &nc.maxhistory))
                err = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
            else if (nc.maxhistory > MUC_HISTORY_MAX)
                nc.maxhistory = MUC_HISTORY_MAX;
            break;
        case F_ROLES: {
            unsigned mask = 0;
            for (size_t i = 0; i < nv && !err; i++) {
                muc_role_t role;
                if (muc__role_parse(vals[i], &role) || role == ROLE_NONE)
                    err = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
                else
                    mask |= ROLEMASK(role);
            }
            *(unsigned *)(base + d->off) = mask;
            break;
        }
        case F_WHOIS:
            if (nv != 1 || (strcmp(vals[0], "anyone") && strcmp(vals[0], "moderators")))
                err = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
            else
                nc.whois_anyone = !strcmp(vals[0], "anyone");
            break;
        case F_JIDS: {
            jidlist_t *l = !strcmp(var, "muc#roomconfig_roomowners") ? &owners : &admins;
            l->given = 1;
            l->n = 0;
            l->v = hearth_arena_alloc(a, (nv + 1) * sizeof(char *));
            for (size_t i = 0; l->v && i < nv && !err; i++) {
                hearth_jid_t j = HEARTH_JID_INIT;
                const char *s = vals[i];
                while (*s == ' ')
                    s++;
                if (!*s)
                    continue;
                if (hearth_jid_parse(s, strlen(s), &j, NULL) || !j.node) {
                    err = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
                    break;
                }
                l->v[l->n++] = hearth_arena_strdup(a, j.bare);
                hearth_jid_clear(&j);
            }
            break;
        }
        }
    }
    if (!err && owners.given && owners.n == 0) {
        *text = "a room keeps at least one owner";
        err = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
    }
    if (!err && secret_given && !protected_given)
        nc.passwordprotected = 1; /* a password alone protects the room */
    if (!err && nc.passwordprotected && (!nc.secret || !*nc.secret)) {
        *text = "a password-protected room needs a password";
        err = HEARTH_STANZA_ERR_NOT_ACCEPTABLE;
    }
    strmap_t own, adm; /* the JIDs of each list */
    int sets = !err && jid_set(&own, &owners) == 0;
    if (sets && jid_set(&adm, &admins)) {
        strmap_free(&own);
        sets = 0;
    }
    if (!err && !sets)
        err = HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
    if (!err && !lists_fit(r, &owners, &own, &admins, &adm)) {
        *text = "the room's affiliation lists are full";
        err = HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
    }
    if (err) {
        if (sets) {
            strmap_free(&own);
            strmap_free(&adm);
        }
        muc__config_free(&nc);
        return err;
    }
    *text = NULL;
    (void)actor_bare;
    /* Status codes for the occupants (§10.2.1). */
    if (!r->locked) {
        if (nc.logging != r->cfg.logging)
            changed[(*nchanged)++] = nc.logging ? 170 : 171;
        if (nc.whois_anyone != r->cfg.whois_anyone)
            changed[(*nchanged)++] = nc.whois_anyone ? 172 : 173;
        changed[(*nchanged)++] = 104;
    }
    muc__config_free(&r->cfg);
    r->cfg = nc;
    /* Owner and admin lists replace the current ones (the fields are the full lists). */
    for (int pass = 0; pass < 2; pass++) {
        jidlist_t *l = pass ? &admins : &owners;
        muc_aff_t aff = pass ? AFF_ADMIN : AFF_OWNER;
        if (!l->given)
            continue;
        char **drop = hearth_arena_alloc(a, (r->affs.count + 1) * sizeof(char *));
        size_t nd = 0;
        STRMAP_FOREACH(&r->affs, e)
        {
            const muc_affiliation_t *af = e->value;
            if (af->aff == aff && drop && !strmap_get(pass ? &adm : &own, e->key))
                drop[nd++] = hearth_arena_strdup(a, e->key);
        }
        for (size_t i = 0; i < nd; i++)
            muc__aff_set(r, drop[i], AFF_NONE, NULL, NULL);
        /* Within the bounds: lists_fit counted what this adds. */
        for (size_t i = 0; i < l->n; i++)
            if (pass == 0 || muc__aff_of(r, l->v[i]) != AFF_OWNER)
                muc__aff_set(r, l->v[i], aff, NULL, NULL);
    }
    strmap_free(&own);
    strmap_free(&adm);
    return HEARTH_STANZA_ERR_NONE;
}

/* Everyone whose affiliation or the room's rules changed gets its new role (or leaves). */
static void config_effects(worker_t *w, muc_room_t *r, int became_membersonly)
{
    for (muc_occupant_t *o = r->occupants, *n; o; o = n) {
        n = o->next;
        muc_aff_t aff = muc__aff_of(r, o->bare);
        if (became_membersonly && aff < AFF_MEMBER) {
            static const int c322[] = {322};
            muc__occupant_remove(w, r, o, c322, 1, NULL, NULL);
            continue;
        }
        muc_role_t want = muc__default_role(r, aff);
        if (want == ROLE_NONE)
            want = ROLE_PARTICIPANT;
        int changes = (aff >= AFF_ADMIN && o->role != ROLE_MODERATOR) ||
                      (aff < AFF_ADMIN && o->role == ROLE_MODERATOR && want != ROLE_MODERATOR);
        if (changes) {
            o->role = want;
            muc__occupant_broadcast(w, r, o, NULL, 0, NULL);
        }
    }
}

void muc__destroy(worker_t *w, muc_room_t *r, const char *alt, const char *reason,
                  const char *alt_password)
{
    hearth_buf_t x = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&x, "<destroy");
    if (alt) {
        rc = rc ?: hearth_buf_append_str(&x, " jid='");
        if (!rc)
            xml_escape_into(&x, alt);
        rc = rc ?: hearth_buf_append_str(&x, "'");
    }
    rc = rc ?: hearth_buf_append_str(&x, ">");
    if (reason && *reason) {
        rc = rc ?: hearth_buf_append_str(&x, "<reason>");
        if (!rc)
            xml_escape_into(&x, reason);
        rc = rc ?: hearth_buf_append_str(&x, "</reason>");
    }
    if (alt_password && *alt_password) {
        rc = rc ?: hearth_buf_append_str(&x, "<password>");
        if (!rc)
            xml_escape_into(&x, alt_password);
        rc = rc ?: hearth_buf_append_str(&x, "</password>");
    }
    rc = rc ?: hearth_buf_append_str(&x, "</destroy>");
    for (muc_occupant_t *o = r->occupants, *n; o; o = n) {
        n = o->next;
        hearth_buf_t b = HEARTH_BUF_INIT;
        int rc2 = rc ?: hearth_buf_append_str(&b, "<presence type='unavailable' from='");
        if (!rc2)
            xml_escape_into(&b, o->ojid);
        rc2 = rc2
                  ?: hearth_buf_append_str(&b, "'><x xmlns='" HEARTH_NS_MUC_USER "'>"
                                               "<item affiliation='none' role='none'/>");
        rc2 = rc2 ?: hearth_buf_append(&b, x.data, x.len);
        rc2 = rc2 ?: hearth_buf_append_str(&b, "</x></presence>");
        hearth_bytes_t *bytes = rc2 ? NULL : hearth_bytes_new(b.data, b.len);
        if (bytes)
            muc__send_bytes(w, STANZA_PRESENCE, o->jid, o->ojid, "unavailable", bytes);
        hearth_bytes_unref(bytes);
        hearth_buf_free(&b);
        free(o->jid);
        free(o->bare);
        free(o->nick);
        free(o->ojid);
        free(o->inner);
        free(o);
    }
    hearth_buf_free(&x);
    r->occupants = NULL;
    r->noccupants = 0;
    r->occ_bytes = 0;
    strmap_free(&r->by_nick);
    strmap_free(&r->by_jid);
    strmap_init(&r->by_nick);
    strmap_init(&r->by_jid);
    if (r->cfg.persistent || muc__room_logs(r))
        muc__store_delete(w, r);
    STRMAP_FOREACH(&r->affs, e)
    {
        aff_free(e->value);
    }
    strmap_free(&r->affs);
    strmap_init(&r->affs);
    r->aff_bytes = 0;
    for (unsigned i = 0; i < r->hist_len; i++) {
        free(r->hist[(r->hist_start + i) % MUC_HISTORY_MAX].xml);
        free(r->hist[(r->hist_start + i) % MUC_HISTORY_MAX].sid);
    }
    r->hist_len = r->hist_start = 0;
    r->hist_bytes = 0;
    free(r->subject);
    free(r->subject_nick);
    r->subject = r->subject_nick = NULL;
    muc__vcard_forget(r);
    muc__config_free(&r->cfg);
    muc__config_defaults(&r->cfg);
    r->exists = 0;
    r->locked = 0;
    muc__directory_remove(r->jid);
}

void muc__owner_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                   const char *from, int set)
{
    hearth_xml_node_t *q = hearth_xml_first_element(iq);
    char *bare = bare_of(a, from);
    if (muc__aff_of(r, bare) != AFF_OWNER) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_FORBIDDEN,
                         "only owners configure a room");
        return;
    }
    if (!set) {
        if (r->aff_bytes > MUC_AFF_BYTES) {
            muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                             AFF_OVER_TEXT);
            return;
        }
        hearth_xml_node_t *res = hearth_xml_new(a, "query", HEARTH_NS_MUC_OWNER);
        hearth_xml_append(res, muc__config_form(r, a));
        muc__iq_result(w, iq, a, r->jid, from, res);
        return;
    }
    hearth_xml_node_t *destroy = hearth_xml_child(q, "destroy", HEARTH_NS_MUC_OWNER);
    if (destroy) {
        const char *alt = hearth_xml_attr(destroy, "jid");
        hearth_xml_node_t *rn = hearth_xml_child(destroy, "reason", HEARTH_NS_MUC_OWNER);
        hearth_xml_node_t *pn = hearth_xml_child(destroy, "password", HEARTH_NS_MUC_OWNER);
        hearth_jid_t j = HEARTH_JID_INIT;
        if (alt && hearth_jid_parse(alt, strlen(alt), &j, NULL)) {
            muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_JID_MALFORMED,
                             "the alternate venue is not a JID");
            return;
        }
        char *alt_p = alt ? hearth_arena_strdup(a, j.full) : NULL;
        hearth_jid_clear(&j);
        muc__destroy(w, r, alt_p, rn ? hearth_xml_text(a, rn) : NULL,
                     pn ? hearth_xml_text(a, pn) : NULL);
        muc__iq_result(w, iq, a, r->jid, from, NULL);
        return;
    }
    hearth_xml_node_t *x = hearth_xml_child(q, "x", HEARTH_NS_DATA);
    if (!x || hearth_xml_count_elements(q) != 1) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_BAD_REQUEST,
                         "expected a data form or <destroy/>");
        return;
    }
    const char *xtype = hearth_xml_attr(x, "type");
    if (xtype && !strcmp(xtype, "cancel")) {
        muc__iq_result(w, iq, a, r->jid, from, NULL);
        if (r->locked) /* §10.1.3: the new room is not wanted after all */
            muc__destroy(w, r, NULL, NULL, NULL);
        return;
    }
    const char *text = NULL;
    hearth_stanza_error_t err = muc__config_set(w, r, x, a, bare, &text);
    if (err)
        muc__reply_error(w, iq, a, r->jid, from, err, text);
    else
        muc__iq_result(w, iq, a, r->jid, from, NULL);
}

hearth_stanza_error_t muc__config_set(worker_t *w, muc_room_t *r, const hearth_xml_node_t *x,
                                      hearth_arena_t *a, const char *actor_bare, const char **text)
{
    int codes[4], ncodes = 0;
    int was_locked = r->locked, was_persistent = r->cfg.persistent,
        was_membersonly = r->cfg.membersonly;
    hearth_stanza_error_t err = muc__config_apply(r, x, a, actor_bare, text, codes, &ncodes);
    if (err)
        return err;
    r->locked = 0;
    config_effects(w, r, !was_membersonly && r->cfg.membersonly);
    if (!was_locked)
        muc__room_notice(w, r, codes, ncodes);
    if (r->cfg.persistent)
        muc__store_save(w, r);
    else if (was_persistent)
        muc__store_delete(w, r);
    muc__directory_set(r);
    return HEARTH_STANZA_ERR_NONE;
}

hearth_stanza_error_t muc__aff_change(worker_t *w, muc_room_t *r, const char *bare, muc_aff_t aff,
                                      const char *reason, const char **text)
{
    muc_aff_t cur = muc__aff_of(r, bare);
    if (cur == AFF_OWNER && aff != AFF_OWNER && count_owners(r) <= 1) {
        *text = "a room keeps at least one owner";
        return HEARTH_STANZA_ERR_CONFLICT;
    }
    long long dbytes = 0;
    long dcount = 0;
    muc__aff_delta(r, bare, aff, NULL, reason ? reason : "", &dbytes, &dcount);
    if (!muc__aff_fits(r, dbytes, dcount) ||
        muc__aff_set(r, bare, aff, NULL, reason ? reason : "")) {
        *text = "the room's affiliation lists are full";
        return HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
    }
    muc__aff_effects(w, r, bare, NULL, reason);
    if (r->cfg.persistent && !r->locked)
        muc__store_save(w, r);
    return HEARTH_STANZA_ERR_NONE;
}

/* ---- registration with a room (§7.10) ---- */

void muc__register_iq(worker_t *w, muc_room_t *r, hearth_xml_node_t *iq, hearth_arena_t *a,
                      const char *from, int set)
{
    hearth_xml_node_t *q = hearth_xml_first_element(iq);
    char *bare = bare_of(a, from);
    const muc_affiliation_t *af = strmap_get(&r->affs, bare);
    muc_aff_t aff = af ? af->aff : AFF_NONE;
    if (aff == AFF_OUTCAST) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_FORBIDDEN, NULL);
        return;
    }
    if (!set) {
        hearth_xml_node_t *res = hearth_xml_new(a, "query", HEARTH_NS_REGISTER);
        if (aff >= AFF_MEMBER && af->nick) {
            hearth_xml_add_child(a, res, "registered", HEARTH_NS_REGISTER);
            child_text(a, res, "username", HEARTH_NS_REGISTER, af->nick);
        } else if (!r->cfg.registration) {
            muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_NOT_ALLOWED,
                             "this room does not take registrations");
            return;
        } else {
            child_text(a, res, "instructions", HEARTH_NS_REGISTER,
                       "Reserve a nickname and become a member of the room.");
            hearth_xml_node_t *x = hearth_form_new(a, res, HEARTH_FORM_FORM);
            hearth_form_add_form_type(a, x, HEARTH_NS_MUC_REGISTER);
            hearth_form_add_required(a, hearth_form_add_field(a, x, "muc#register_roomnick",
                                                              "text-single", "Nickname", NULL));
        }
        muc__iq_result(w, iq, a, r->jid, from, res);
        return;
    }
    if (hearth_xml_child(q, "remove", HEARTH_NS_REGISTER)) {
        if (aff == AFF_OWNER && count_owners(r) <= 1) {
            muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_CONFLICT, NULL);
            return;
        }
        muc__aff_set(r, bare, AFF_NONE, "", NULL);
        muc__iq_result(w, iq, a, r->jid, from, NULL);
        muc__aff_effects(w, r, bare, NULL, NULL);
        muc__store_save(w, r);
        return;
    }
    if (!r->cfg.registration) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_NOT_ALLOWED,
                         "this room does not take registrations");
        return;
    }
    hearth_xml_node_t *x = hearth_xml_child(q, "x", HEARTH_NS_DATA);
    hearth_form_t form = {0};
    const char *why = NULL;
    int rc = x ? hearth_form_parse(a, x, NULL, &form, &why) : HEARTH_EINVAL;
    if (rc == HEARTH_ENOMEM) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    const char *nick = hearth_form_value(&form, "muc#register_roomnick");
    if (rc || form.type != HEARTH_FORM_SUBMIT || !nick || !*nick) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_BAD_REQUEST,
                         why ? why : "submit muc#register_roomnick");
        return;
    }
    char *prepared = NULL;
    if (hearth_jid_resourceprep(nick, strlen(nick), &prepared, NULL) ||
        strlen(prepared) > MUC_NICK_MAX) {
        free(prepared);
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_JID_MALFORMED, NULL);
        return;
    }
    int taken = 0;
    STRMAP_FOREACH(&r->affs, e)
    {
        const muc_affiliation_t *o = e->value;
        if (o->nick && !strcmp(o->nick, prepared) && strcmp(e->key, bare))
            taken = 1;
    }
    muc_occupant_t *holder = strmap_get(&r->by_nick, prepared);
    if (taken || (holder && strcmp(holder->bare, bare))) {
        free(prepared);
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_CONFLICT,
                         "that nickname is taken");
        return;
    }
    muc_aff_t new_aff = aff < AFF_MEMBER ? AFF_MEMBER : aff;
    long long dbytes;
    long dcount;
    muc__aff_delta(r, bare, new_aff, prepared, NULL, &dbytes, &dcount);
    rc = muc__aff_fits(r, dbytes, dcount) ? muc__aff_set(r, bare, new_aff, prepared, NULL) : -1;
    free(prepared);
    if (rc) {
        muc__reply_error(w, iq, a, r->jid, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                         "the room's affiliation lists are full");
        return;
    }
    muc__iq_result(w, iq, a, r->jid, from, NULL);
    if (aff < AFF_MEMBER)
        muc__aff_effects(w, r, bare, NULL, NULL);
    muc__store_save(w, r);
}

/* ---- voice requests (§7.13) and their approval (§8.6) ---- */

/* A visitor asks for voice: the approval form goes to every moderator. */
static void voice_request(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                          muc_occupant_t *o, const hearth_form_t *form)
{
    const char *role = hearth_form_value(form, "muc#role");
    const char *text = NULL;
    hearth_stanza_error_t err = HEARTH_STANZA_ERR_NONE;
    int64_t now = user__now_ms();
    if (!role || strcmp(role, "participant")) {
        err = HEARTH_STANZA_ERR_BAD_REQUEST;
        text = "a voice request asks for the participant role";
    } else if (!r->cfg.moderated) {
        err = HEARTH_STANZA_ERR_NOT_ALLOWED;
        text = "voice requests are for moderated rooms; everyone has voice here";
    } else if (o->role != ROLE_VISITOR) {
        err = HEARTH_STANZA_ERR_NOT_ALLOWED;
        text = "only visitors request voice; you have it";
    } else if (o->voice_req_ms && now - o->voice_req_ms < MUC_VOICE_GAP_MS) {
        err = HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
        text = "wait a little before asking for voice again";
    }
    if (err) {
        muc__reply_error(w, st, a, r->jid, o->jid, err, text);
        return;
    }
    o->voice_req_ms = now;
    hearth_xml_node_t *m = hearth_xml_new(a, "message", HEARTH_NS_CLIENT);
    if (!m)
        return;
    char id[48];
    snprintf(id, sizeof(id), "voice-%lld", (long long)++r->next_sid);
    hearth_xml_set_attr(a, m, "from", r->jid);
    hearth_xml_set_attr(a, m, "id", id);
    hearth_xml_node_t *f = hearth_form_new(a, m, HEARTH_FORM_FORM);
    hearth_form_add_title(a, f, "Voice request");
    hearth_form_add_instructions(
        a, f,
        "To approve this request for voice, set \"Grant voice to this person?\" and submit "
        "the form. To skip this request, cancel.");
    hearth_form_add_form_type(a, f, HEARTH_NS_MUC_REQUEST);
    static const char *const role_opt[] = {"participant", "Participant", NULL};
    hearth_xml_node_t *rf = list_field(a, f, "muc#role", "list-single", "Requested role", role_opt);
    hearth_form_add_value(a, rf, "participant");
    hearth_form_add_field(a, f, "muc#jid", "jid-single", "User ID", o->jid);
    hearth_form_add_field(a, f, "muc#roomnick", "text-single", "Room nickname", o->nick);
    hearth_form_add_field(a, f, "muc#request_allow", "boolean", "Grant voice to this person?",
                          "false");
    for (muc_occupant_t *mod = r->occupants; mod; mod = mod->next) {
        if (mod->role != ROLE_MODERATOR)
            continue;
        hearth_xml_set_attr(a, m, "to", mod->jid);
        muc__send_node(w, mod->jid, m);
    }
}

/* A moderator submits the approval form: voice is granted as by a role change to participant
 * (§8.4), or nothing happens when it is denied. */
static void voice_approve(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                          muc_occupant_t *o, const hearth_form_t *form, const char *allow_s)
{
    int allow = 0;
    if (o->role != ROLE_MODERATOR) {
        muc__reply_error(w, st, a, r->jid, o->jid, HEARTH_STANZA_ERR_FORBIDDEN,
                         "only moderators approve voice requests");
        return;
    }
    if (!allow_s || parse_bool(allow_s, &allow)) {
        muc__reply_error(w, st, a, r->jid, o->jid, HEARTH_STANZA_ERR_BAD_REQUEST,
                         "muc#request_allow is a boolean");
        return;
    }
    const char *jid_s = hearth_form_value(form, "muc#jid");
    const char *nick = hearth_form_value(form, "muc#roomnick");
    muc_occupant_t *t = NULL;
    if (jid_s && *jid_s) {
        /* The real JID first: the nick may have changed, or passed to someone else. */
        hearth_jid_t j = HEARTH_JID_INIT;
        if (hearth_jid_parse(jid_s, strlen(jid_s), &j, NULL)) {
            muc__reply_error(w, st, a, r->jid, o->jid, HEARTH_STANZA_ERR_JID_MALFORMED,
                             "muc#jid is not a valid JID");
            return;
        }
        t = muc__occupant_by_jid(r, j.full);
        hearth_jid_clear(&j);
    } else if (nick && *nick) {
        t = strmap_get(&r->by_nick, nick);
    } else {
        muc__reply_error(w, st, a, r->jid, o->jid, HEARTH_STANZA_ERR_BAD_REQUEST,
                         "the form names no occupant (muc#jid or muc#roomnick)");
        return;
    }
    if (!allow)
        return; /* denied: the request is simply dropped */
    if (!t) {
        muc__reply_error(w, st, a, r->jid, o->jid, HEARTH_STANZA_ERR_ITEM_NOT_FOUND,
                         "no such occupant");
        return;
    }
    if (t->role != ROLE_VISITOR)
        return; /* it has voice already (another moderator approved), nothing changes */
    change_t c = {.is_role = 1, .role = ROLE_PARTICIPANT, .target = t};
    const char *text = NULL;
    hearth_stanza_error_t err = check_change(r, o, muc__aff_of(r, o->bare), &c, &text);
    if (err) {
        muc__reply_error(w, st, a, r->jid, o->jid, err, text);
        return;
    }
    t->role = ROLE_PARTICIPANT;
    char *extra = item_extra(o->nick, NULL);
    muc__occupant_broadcast(w, r, t, NULL, 0, extra);
    free(extra);
}

void muc__voice_form(worker_t *w, muc_room_t *r, hearth_xml_node_t *st, hearth_arena_t *a,
                     const char *from, const hearth_form_t *form)
{
    muc_occupant_t *o = muc__occupant_by_jid(r, from);
    if (!o) {
        muc__reply_error(w, st, a, r->jid, from, HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
                         "you are not in this room");
        return;
    }
    if (form->type != HEARTH_FORM_SUBMIT) {
        muc__reply_error(w, st, a, r->jid, from, HEARTH_STANZA_ERR_BAD_REQUEST,
                         "the form is submitted with type='submit'");
        return;
    }
    if (hearth_form_field(form, "muc#request_allow"))
        voice_approve(w, r, st, a, o, form,
                      hearth_form_value(form, "muc#request_allow")); /* §8.6 */
    else
        voice_request(w, r, st, a, o, form); /* §7.13 */
}
