/* /api/v1/rooms: the MUC rooms, listed, created, configured with the XEP-0045 form's fields,
 * destroyed, their affiliations changed. A room is touched only on its home worker: the request
 * is checked on the worker that read it, then runs there through muc__room_call (the room read
 * from storage first when it is not in memory), and the answer comes back through the inbox. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hearth/jid.h"
#include "hearth/ns.h"

#include "admin/internal.h"
#include "modules/muc.h"

/* Rooms one GET /rooms page may hold. */
#define ROOMS_PAGE_MAX 1000

/* ---- rooms as JSON (on the room's home worker) ---- */

static json_t *summary_of(const char *jid, const muc_config_t *c, unsigned occupants)
{
    return json_pack("{s:s, s:s, s:s, s:i, s:b, s:b, s:b, s:b}", "jid", jid, "name",
                     c->name ? c->name : "", "description", c->desc ? c->desc : "", "occupants",
                     (int)occupants, "persistent", c->persistent, "public", c->publicroom,
                     "members_only", c->membersonly, "password_protected", c->passwordprotected);
}

/* A field's values: an array for the -multi types, else one string ("" when none). */
static json_t *values_of(const hearth_form_field_t *f)
{
    if (f->type && strstr(f->type, "-multi")) {
        json_t *arr = json_array();
        for (size_t i = 0; i < f->nvalues; i++)
            json_array_append_new(arr, json_string(f->values[i]));
        return arr;
    }
    return json_string(f->nvalues ? f->values[0] : "");
}

/* The configuration form as the owner gets it (§10.2), as "config" and "fields". */
static int form_json(const muc_room_t *r, json_t *room)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *x = a ? muc__config_form(r, a) : NULL;
    hearth_form_limits_t lim = {.max_fields = MUC_FORM_FIELDS_MAX, .max_values = MUC_AFF_MAX};
    hearth_form_t form;
    if (!x || hearth_form_parse(a, x, &lim, &form, NULL)) {
        hearth_arena_free(a);
        return HEARTH_ENOMEM;
    }
    json_t *config = json_object(), *fields = json_array();
    for (size_t i = 0; i < form.nfields; i++) {
        const hearth_form_field_t *f = &form.fields[i];
        if (!f->var || !strcmp(f->var, "FORM_TYPE"))
            continue;
        json_t *opts = json_array();
        for (size_t j = 0; j < f->noptions; j++)
            json_array_append_new(opts, json_pack("{s:s, s:s}", "label",
                                                  f->options[j].label ? f->options[j].label : "",
                                                  "value", f->options[j].value));
        json_object_set_new(config, f->var, values_of(f));
        json_array_append_new(fields, json_pack("{s:s, s:s, s:s, s:o, s:o}", "var", f->var, "type",
                                                f->type ? f->type : "text-single", "label",
                                                f->label ? f->label : "", "value", values_of(f),
                                                "options", opts));
    }
    json_object_set_new(room, "config", config);
    json_object_set_new(room, "fields", fields);
    hearth_arena_free(a);
    return 0;
}

static json_t *room_json(const muc_room_t *r, int full)
{
    json_t *j = summary_of(r->jid, &r->cfg, r->noccupants);
    if (!full || !j)
        return j;
    json_t *occ = json_array(), *affs = json_array();
    for (const muc_occupant_t *o = r->occupants; o; o = o->next)
        json_array_append_new(occ, json_pack("{s:s, s:s, s:s, s:s}", "nick", o->nick, "jid", o->jid,
                                             "role", muc__role_name(o->role), "affiliation",
                                             muc__aff_name(muc__aff_of(r, o->bare))));
    STRMAP_FOREACH(&r->affs, e)
    {
        const muc_affiliation_t *af = e->value;
        json_array_append_new(affs, json_pack("{s:s, s:s, s:s?}", "jid", e->key, "affiliation",
                                              muc__aff_name(af->aff), "nick", af->nick));
    }
    json_object_set_new(j, "locked", json_boolean(r->locked));
    json_object_set_new(j, "occupants", occ);
    json_object_set_new(j, "affiliations", affs);
    if (form_json(r, j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* ---- one room, on its home worker ---- */

typedef enum { OP_GET, OP_CREATE, OP_CONFIGURE, OP_DESTROY, OP_AFFILIATE } op_kind_t;

typedef struct room_op {
    admin_req_t *ar;
    op_kind_t kind;
    char *jid;     /* the room's bare JID */
    json_t *body;  /* the request's (config, owner, reason, alternate) */
    char *target;  /* OP_AFFILIATE: the bare JID */
    muc_aff_t aff; /* OP_AFFILIATE */
    int status;    /* the answer */
    json_t *result;
    char error[512];
} room_op_t;

static void op_free(room_op_t *op)
{
    free(op->jid);
    free(op->target);
    json_decref(op->body);
    json_decref(op->result);
    free(op);
}

static void answer(worker_t *w, void *arg)
{
    (void)w;
    room_op_t *op = arg;
    admin_req_t *ar = op->ar;
    if (op->status >= 400) {
        admin__reply_error(ar, op->status, op->error, NULL);
    } else if (op->status == 204) {
        admin__reply_json(ar, 204, NULL);
    } else {
        admin__reply_json(ar, op->status, op->result);
        op->result = NULL;
    }
    op_free(op);
}

/* From the home worker: the answer back to the request's worker. */
static void done(room_op_t *op, int status, const char *error)
{
    op->status = status;
    if (error)
        snprintf(op->error, sizeof(op->error), "%s", error);
    if (worker__call(op->ar->w, answer, NULL, op))
        hlog(LOG_ERROR, "admin: an answer could not go back to worker %u", op->ar->w->index);
}

static void failed(worker_t *w, void *arg)
{
    (void)w;
    done(arg, 503, "the room could not be read; try again");
}

/* {var: "v" | number | boolean | ["v", ...]} as a submitted muc#roomconfig form; NULL with
 * why set when a value has another type. */
static hearth_xml_node_t *form_of(hearth_arena_t *a, json_t *config, char *why, size_t n)
{
    hearth_xml_node_t *x = hearth_form_new(a, NULL, HEARTH_FORM_SUBMIT);
    if (!hearth_form_add_form_type(a, x, HEARTH_NS_MUC_ROOMCONFIG))
        return NULL;
    const char *var;
    json_t *v;
    json_object_foreach(config, var, v)
    {
        hearth_xml_node_t *f = hearth_form_add_field(a, x, var, NULL, NULL, NULL);
        size_t nv = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t i = 0; f && i < nv; i++) {
            json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
            char num[32];
            const char *s =
                json_is_string(e)    ? json_string_value(e)
                : json_is_boolean(e) ? (json_is_true(e) ? "1" : "0")
                : json_is_integer(e)
                    ? (snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(e)), num)
                    : NULL;
            if (!s) {
                snprintf(why, n,
                         "%s: a value is a string, a number, a boolean or a list of strings", var);
                return NULL;
            }
            f = hearth_form_add_value(a, f, s) ? f : NULL;
        }
        if (!f) {
            snprintf(why, n, "out of memory");
            return NULL;
        }
    }
    return x;
}

/* Applies op->body's "config" (none: an empty form, which unlocks and stores a new room).
 * 0, or the status after answering. */
static int configure(worker_t *w, muc_room_t *r, room_op_t *op)
{
    json_t *config = json_object_get(op->body, "config");
    if (config && !json_is_object(config)) {
        done(op, 400, "\"config\" is an object of form fields");
        return 400;
    }
    hearth_arena_t *a = hearth_arena_new(0);
    char why[400] = "out of memory";
    hearth_xml_node_t *x = a ? form_of(a, config, why, sizeof(why)) : NULL;
    if (!x) {
        hearth_arena_free(a);
        done(op, strcmp(why, "out of memory") ? 400 : 500, why);
        return 400;
    }
    const char *text = NULL;
    hearth_stanza_error_t err = muc__config_set(w, r, x, a, NULL, &text);
    if (err) {
        snprintf(why, sizeof(why), "the room's configuration is refused (%s): %s",
                 hearth_stanza_error_name(err), text ? text : "");
        hearth_arena_free(a);
        done(op, err == HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT ? 409 : 400, why);
        return 400;
    }
    hearth_arena_free(a);
    return 0;
}

static void create(worker_t *w, muc_room_t *r, room_op_t *op)
{
    if (r->exists) {
        done(op, 409, "the room exists");
        return;
    }
    /* As a join creates one (§10.1), but configured at once: the form given, or the defaults. */
    r->exists = 1;
    r->locked = 1;
    muc__config_free(&r->cfg);
    muc__config_new_room(w, &r->cfg);
    /* A temporary room ends when its last occupant leaves (§10.1): made here without one, it
     * would be gone at once. So the API's rooms are persistent unless the form says not. */
    r->cfg.persistent = 1;
    if (op->target && muc__aff_set(r, op->target, AFF_OWNER, NULL, NULL)) {
        muc__destroy(w, r, NULL, NULL, NULL);
        done(op, 500, "out of memory");
        return;
    }
    if (configure(w, r, op)) {
        muc__destroy(w, r, NULL, NULL, NULL);
        return;
    }
    if (!r->cfg.persistent) {
        muc__destroy(w, r, NULL, NULL, NULL);
        done(op, 400,
             "muc#roomconfig_persistentroom: a room created without occupants is persistent (a "
             "temporary one ends when its last occupant leaves)");
        return;
    }
    hlog(LOG_INFO, "admin: %s created room %s", op->ar->who, r->jid);
    op->result = room_json(r, 1);
    done(op, op->result ? 201 : 500, "out of memory");
}

static void at_room(worker_t *w, muc_room_t *r, void *arg)
{
    room_op_t *op = arg;
    if (op->kind == OP_CREATE) {
        create(w, r, op);
        return;
    }
    if (!r->exists) {
        done(op, 404, "no such room");
        return;
    }
    switch (op->kind) {
    case OP_CONFIGURE:
        if (configure(w, r, op))
            return;
        hlog(LOG_INFO, "admin: %s configured room %s", op->ar->who, r->jid);
        __attribute__((fallthrough)); /* the answer is the room as it is now */
    case OP_GET:
        op->result = room_json(r, 1);
        done(op, op->result ? 200 : 500, "out of memory");
        return;
    case OP_DESTROY: {
        const char *reason = json_string_value(json_object_get(op->body, "reason"));
        muc__destroy(w, r, op->target, reason, NULL);
        hlog(LOG_INFO, "admin: %s destroyed room %s", op->ar->who, op->jid);
        done(op, 204, NULL);
        return;
    }
    case OP_AFFILIATE: {
        const char *text = NULL;
        const char *reason = json_string_value(json_object_get(op->body, "reason"));
        hearth_stanza_error_t err = muc__aff_change(w, r, op->target, op->aff, reason, &text);
        if (err) {
            done(op, 409, text);
            return;
        }
        hlog(LOG_INFO, "admin: %s made %s %s of room %s", op->ar->who, op->target,
             muc__aff_name(op->aff), r->jid);
        op->result =
            json_pack("{s:s, s:s}", "jid", op->target, "affiliation", muc__aff_name(op->aff));
        done(op, op->aff == AFF_NONE ? 204 : 200, NULL);
        return;
    }
    case OP_CREATE:
        break;
    }
}

static void at_home(worker_t *w, void *arg)
{
    room_op_t *op = arg;
    muc__room_call(w, op->jid, at_room, failed, op);
}

static void drop(void *arg)
{
    op_free(arg); /* the server is stopping: the request ends with its connection */
}

/* Takes op: to the room's home worker. */
static void to_room(room_op_t *op)
{
    admin_req_t *ar = op->ar;
    /* On failure worker__call has dropped op already. */
    if (worker__call(worker__home(ar->w->srv, op->jid), at_home, drop, op))
        admin__reply_error(ar, 503, "the server is busy; try again", NULL);
}

/* ---- addresses ---- */

/* A room's bare JID from "localpart" or "room@<muc domain>": malloc'd, NULL when it is neither. */
static char *room_jid_of(worker_t *w, const char *name)
{
    char *s = NULL;
    if (!name || !*name || strchr(name, '/'))
        return NULL;
    if (asprintf(&s, strchr(name, '@') ? "%s" : "%s@%s", name, muc__domain(w)) < 0)
        return NULL;
    hearth_jid_t j = HEARTH_JID_INIT;
    char *out = NULL;
    if (!hearth_jid_parse(s, strlen(s), &j, NULL) && j.node && !j.resource &&
        !strcmp(j.domain, muc__domain(w)))
        out = strdup(j.bare);
    hearth_jid_clear(&j);
    free(s);
    return out;
}

/* A user's bare JID (a localpart is of server.domain): malloc'd, NULL when malformed. */
static char *bare_of(worker_t *w, const char *s)
{
    char *full = NULL;
    if (!s || !*s || asprintf(&full, strchr(s, '@') ? "%s" : "%s@%s", s, w->set.domain) < 0)
        return NULL;
    hearth_jid_t j = HEARTH_JID_INIT;
    char *out = NULL;
    if (!hearth_jid_parse(full, strlen(full), &j, NULL) && j.node && !j.resource)
        out = strdup(j.bare);
    hearth_jid_clear(&j);
    free(full);
    return out;
}

static room_op_t *op_new(admin_req_t *ar, op_kind_t kind, char *jid)
{
    room_op_t *op = calloc(1, sizeof(*op));
    if (!op) {
        free(jid);
        admin__reply_error(ar, 500, "out of memory", NULL);
        return NULL;
    }
    op->ar = ar;
    op->kind = kind;
    op->jid = jid;
    return op;
}

/* The body, or NULL after answering; an empty body is an empty object when optional. */
static json_t *body_of(admin_req_t *ar, int optional)
{
    if (optional && !ar->body_len)
        return json_object();
    return admin__body(ar);
}

static void room_create(admin_req_t *ar)
{
    json_t *b = body_of(ar, 0);
    if (!b)
        return;
    char *jid = room_jid_of(ar->w, json_string_value(json_object_get(b, "name")));
    json_t *owner = json_object_get(b, "owner");
    /* A stored room without an owner is destroyed when it is read back (muc__ownerless): the
     * owner is the one given, else the administrator asking (not an API key). */
    const char *owner_s = owner ? json_string_value(owner) : strchr(ar->who, '@') ? ar->who : NULL;
    char *owner_bare = owner_s ? bare_of(ar->w, owner_s) : NULL;
    if (!jid || !owner_bare) {
        admin__reply_error(ar, 400,
                           !jid    ? "\"name\" is a room's localpart or its JID at the MUC domain"
                           : owner ? "\"owner\" is a user's bare JID"
                                   : "\"owner\" is needed: a room keeps an owner (with an API "
                                     "key, no administrator asks)",
                           NULL);
        free(jid);
        free(owner_bare);
        json_decref(b);
        return;
    }
    room_op_t *op = op_new(ar, OP_CREATE, jid);
    if (!op) {
        free(owner_bare);
        json_decref(b);
        return;
    }
    op->body = b;
    op->target = owner_bare;
    to_room(op);
}

static void room_one(admin_req_t *ar, const char *name)
{
    const char *m = ar->method;
    op_kind_t kind = !strcmp(m, "GET")      ? OP_GET
                     : !strcmp(m, "PUT")    ? OP_CONFIGURE
                     : !strcmp(m, "DELETE") ? OP_DESTROY
                                            : (op_kind_t)-1;
    if ((int)kind < 0) {
        admin__not_allowed(ar, "GET, PUT, DELETE");
        return;
    }
    char *jid = room_jid_of(ar->w, name);
    if (!jid) {
        admin__reply_error(ar, 404, "no such room", NULL);
        return;
    }
    json_t *b = kind == OP_GET ? json_object() : body_of(ar, kind == OP_DESTROY);
    if (!b) {
        free(jid);
        return;
    }
    if (kind == OP_CONFIGURE && !json_is_object(json_object_get(b, "config"))) {
        free(jid);
        json_decref(b);
        admin__reply_error(ar, 400, "the body needs \"config\": an object of form fields", NULL);
        return;
    }
    const char *alt = json_string_value(json_object_get(b, "alternate"));
    hearth_jid_t j = HEARTH_JID_INIT;
    if (kind == OP_DESTROY &&
        ((json_object_get(b, "alternate") && !alt) ||
         (alt && hearth_jid_parse(alt, strlen(alt), &j, NULL)) ||
         (json_object_get(b, "reason") && !json_is_string(json_object_get(b, "reason"))))) {
        free(jid);
        json_decref(b);
        admin__reply_error(ar, 400, "\"alternate\" is a JID and \"reason\" a string", NULL);
        return;
    }
    room_op_t *op = op_new(ar, kind, jid);
    if (!op) {
        hearth_jid_clear(&j);
        json_decref(b);
        return;
    }
    op->body = b;
    if (alt)
        op->target = strdup(j.full);
    hearth_jid_clear(&j);
    to_room(op);
}

static void room_affiliation(admin_req_t *ar, const char *name, const char *who)
{
    int put = !strcmp(ar->method, "PUT"), del = !strcmp(ar->method, "DELETE");
    if (!put && !del) {
        admin__not_allowed(ar, "PUT, DELETE");
        return;
    }
    char *jid = room_jid_of(ar->w, name);
    if (!jid) {
        admin__reply_error(ar, 404, "no such room", NULL);
        return;
    }
    char *target = bare_of(ar->w, who);
    json_t *b = target ? body_of(ar, del) : NULL;
    muc_aff_t aff = AFF_NONE;
    const char *aff_s = put && b ? json_string_value(json_object_get(b, "affiliation")) : NULL;
    json_t *reason = b ? json_object_get(b, "reason") : NULL;
    if (!target || !b || (put && (!aff_s || muc__aff_parse(aff_s, &aff))) ||
        (reason && !json_is_string(reason))) {
        if (!target)
            admin__reply_error(ar, 400, "not a bare JID", NULL);
        else if (b)
            admin__reply_error(ar, 400,
                               "\"affiliation\" is one of owner, admin, member, outcast, none; "
                               "\"reason\" a string",
                               NULL);
        free(jid);
        free(target);
        json_decref(b);
        return;
    }
    room_op_t *op = op_new(ar, OP_AFFILIATE, jid);
    if (!op) {
        free(target);
        json_decref(b);
        return;
    }
    op->body = b;
    op->target = target;
    op->aff = aff;
    to_room(op);
}

/* ---- the list: the rooms in every worker's memory and the stored ones ---- */

typedef struct list_args {
    char *q;
    long offset, limit;
} list_args_t;

static void list_args_free(void *p)
{
    list_args_t *la = p;
    free(la->q);
    free(la);
}

static void summarise(worker_t *w, muc_room_t *r, void *arg)
{
    (void)w;
    json_array_append_new(arg, room_json(r, 0));
}

static void list_here(worker_t *w, admin_gather_t *g, unsigned i)
{
    g->parts[i] = json_array();
    muc__rooms_foreach(w, summarise, g->parts[i]);
}

static int by_jid(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "jid")),
                  json_string_value(json_object_get(*(json_t *const *)b, "jid")));
}

static int matches(json_t *room, const char *q)
{
    return !q || !*q || strcasestr(json_string_value(json_object_get(room, "jid")), q) ||
           strcasestr(json_string_value(json_object_get(room, "name")), q);
}

static void listed(void *ud, int err, const storage_doc_t *docs, size_t n)
{
    admin_gather_t *g = ud;
    admin_req_t *ar = g->ar;
    list_args_t *la = g->arg;
    if (err) {
        admin__gather_free(g);
        admin__reply_error(ar, 500, "cannot list the stored rooms", NULL);
        return;
    }
    json_t *all = json_object(); /* jid -> summary: memory's (with occupants) over storage's */
    for (size_t i = 0; i < n; i++) {
        muc_config_t c;
        if (muc__room_doc_config(docs[i].key, docs[i].xml, &c) == 0)
            json_object_set_new(all, docs[i].key, summary_of(docs[i].key, &c, 0));
        muc__config_free(&c);
    }
    for (unsigned w = 0; w < g->n; w++) {
        size_t k;
        json_t *room;
        json_array_foreach(g->parts[w], k, room)
        {
            json_object_set(all, json_string_value(json_object_get(room, "jid")), room);
        }
    }
    size_t total = 0, count = json_object_size(all);
    json_t **v = calloc(count + 1, sizeof(*v));
    const char *key;
    json_t *room;
    json_object_foreach(all, key, room)
    {
        if (v && matches(room, la->q))
            v[total++] = room;
    }
    json_t *page = json_array();
    if (v)
        qsort(v, total, sizeof(*v), by_jid);
    for (size_t i = (size_t)la->offset; v && i < total && i < (size_t)(la->offset + la->limit); i++)
        json_array_append(page, v[i]);
    free(v);
    json_decref(all);
    admin__gather_free(g);
    admin__reply_json(ar, 200,
                      json_pack("{s:o, s:I, s:I, s:I}", "rooms", page, "total", (json_int_t)total,
                                "offset", (json_int_t)la->offset, "limit", (json_int_t)la->limit));
}

/* Every worker has listed its rooms: now the stored ones, on the request's worker (g is
 * the finisher's to free: listed does). */
static void list_gathered(admin_gather_t *g)
{
    admin_req_t *ar = g->ar;
    if (storage_doc_list(ar->w->srv->storage, &ar->w->storage_target, MUC_KIND_ROOM, listed, g)) {
        admin__gather_free(g);
        admin__reply_error(ar, 503, "storage is busy; try again", NULL);
    }
}

static void rooms_list(admin_req_t *ar)
{
    list_args_t *la = calloc(1, sizeof(*la));
    int bad = 0;
    if (!la) {
        admin__reply_error(ar, 500, "out of memory", NULL);
        return;
    }
    la->q = admin__query_get(ar->query, "q", &bad);
    if (bad || admin__query_uint(ar->query, "offset", 0, 1L << 40, &la->offset) ||
        admin__query_uint(ar->query, "limit", 100, ROOMS_PAGE_MAX, &la->limit)) {
        list_args_free(la);
        admin__reply_error(ar, 400, "bad q, offset or limit (limit at most 1000)", NULL);
        return;
    }
    admin__gather(ar, list_here, list_gathered, la, list_args_free);
}

int admin__rooms(admin_req_t *ar, const char *p)
{
    char *room = NULL, *who = NULL;
    if (!strcmp(p, "/rooms")) {
        if (!strcmp(ar->method, "GET"))
            rooms_list(ar);
        else if (!strcmp(ar->method, "POST"))
            room_create(ar);
        else
            admin__not_allowed(ar, "GET, POST");
        return 1;
    }
    if (strncmp(p, "/rooms/", 7))
        return 0;
    const char *rest = p + 7, *slash = strchr(rest, '/');
    if (!slash) {
        if (!(room = admin__decode(rest, strlen(rest), 0, 0)))
            admin__reply_error(ar, 404, "no such room", NULL);
        else
            room_one(ar, room);
    } else if (!strncmp(slash, "/affiliations/", 14) && slash[14] && !strchr(slash + 14, '/') &&
               (room = admin__decode(rest, (size_t)(slash - rest), 0, 0)) &&
               (who = admin__decode(slash + 14, strlen(slash + 14), 0, 0))) {
        room_affiliation(ar, room, who);
    } else {
        admin__reply_error(ar, 404, "no such resource", NULL);
    }
    free(room);
    free(who);
    return 1;
}
