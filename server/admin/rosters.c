/* /api/v1/users/{user}/roster: an account's roster read and changed by an administrator, on the
 * user's home worker once its state is loaded (user__acquire), so that a change is stored and
 * pushed to the online resources that asked for the roster (RFC 6121 §2.1.6) as the user's own
 * roster set would be. */
#include <stdlib.h>
#include <string.h>

#include "hearth/jid.h"

#include "admin/internal.h"
#include "core/user.h"
#include "modules/im.h"

static const char *const SUBS[] = {"none", "to", "from", "both"};

static json_t *item_json(const storage_roster_item_t *it)
{
    json_t *groups = json_array();
    for (size_t i = 0; i < it->ngroups; i++)
        json_array_append_new(groups, json_string(it->groups[i]));
    return json_pack("{s:s, s:s?, s:s, s:s?, s:o}", "jid", it->jid, "name", it->name,
                     "subscription", SUBS[it->subscription & 3], "ask",
                     it->ask ? "subscribe" : NULL, "groups", groups);
}

typedef enum { R_GET, R_PUT, R_DELETE } roster_op_kind_t;

typedef struct roster_op {
    admin_req_t *ar;
    roster_op_kind_t kind;
    char *bare;    /* the account */
    char *contact; /* R_PUT, R_DELETE */
    json_t *body;  /* R_PUT */
    int status;
    json_t *result;
    char error[256];
} roster_op_t;

static void op_free(roster_op_t *op)
{
    free(op->bare);
    free(op->contact);
    json_decref(op->body);
    json_decref(op->result);
    free(op);
}

static void answer(worker_t *w, void *arg)
{
    (void)w;
    roster_op_t *op = arg;
    if (op->status >= 400) {
        admin__reply_error(op->ar, op->status, op->error, NULL);
    } else {
        admin__reply_json(op->ar, op->status, op->result);
        op->result = NULL;
    }
    op_free(op);
}

static void done(roster_op_t *op, int status, const char *error)
{
    op->status = status;
    if (error)
        snprintf(op->error, sizeof(op->error), "%s", error);
    if (worker__call(op->ar->w, answer, NULL, op))
        hlog(LOG_ERROR, "admin: an answer could not go back to worker %u", op->ar->w->index);
}

static int by_jid(const void *a, const void *b)
{
    return strcmp((*(storage_roster_item_t *const *)a)->jid,
                  (*(storage_roster_item_t *const *)b)->jid);
}

static void get(user_t *u, roster_op_t *op)
{
    size_t n = 0;
    storage_roster_item_t **v = calloc(u->roster.count + 1, sizeof(*v));
    if (!v) {
        done(op, 500, "out of memory");
        return;
    }
    STRMAP_FOREACH(&u->roster, e)
    {
        v[n++] = e->value;
    }
    qsort(v, n, sizeof(*v), by_jid);
    json_t *items = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(items, item_json(v[i]));
    free(v);
    char ver[32];
    snprintf(ver, sizeof(ver), "%lld", (long long)u->roster_ver);
    op->result = json_pack("{s:o, s:s}", "items", items, "version", ver);
    done(op, 200, NULL);
}

/* The body's groups: 0, or -1 after answering. *out is malloc'd (its strings too). */
static int groups_of(roster_op_t *op, json_t *g, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!g)
        return 0;
    if (!json_is_array(g) || json_array_size(g) > ROSTER_GROUPS_MAX) {
        done(op, 400, "\"groups\" is a list of at most 100 names");
        return -1;
    }
    char **v = calloc(json_array_size(g) + 1, sizeof(char *));
    size_t k = 0, i;
    json_t *e;
    json_array_foreach(g, i, e)
    {
        const char *s = json_string_value(e);
        int dup = 0;
        for (size_t j = 0; s && j < k; j++)
            dup |= !strcmp(v[j], s);
        if (!v || !s || !*s || strlen(s) > ROSTER_GROUP_MAX || dup || !(v[k] = strdup(s))) {
            for (size_t j = 0; v && j < k; j++)
                free(v[j]);
            free(v);
            done(op, 400, "a group is a name of 1 to 1023 bytes, each once");
            return -1;
        }
        k++;
    }
    *out = v;
    *n = k;
    return 0;
}

static void put(worker_t *w, user_t *u, roster_op_t *op)
{
    json_t *jn = json_object_get(op->body, "name"), *js = json_object_get(op->body, "subscription");
    const char *name = json_string_value(jn), *sub_s = json_string_value(js);
    int sub = -1;
    for (int i = 0; sub_s && i < 4; i++)
        if (!strcmp(sub_s, SUBS[i]))
            sub = i;
    if ((jn && !json_is_null(jn) && !name) || (name && strlen(name) > ROSTER_NAME_MAX) ||
        (js && sub < 0)) {
        done(op, 400,
             "\"name\" is a string of at most 1023 bytes; \"subscription\" one of none, to, "
             "from, both");
        return;
    }
    char **groups;
    size_t ng;
    if (groups_of(op, json_object_get(op->body, "groups"), &groups, &ng))
        return;
    storage_roster_item_t *it = strmap_get(&u->roster, op->contact);
    /* An item keeps what the request leaves out. */
    int keep_groups = !json_object_get(op->body, "groups") && it;
    if (!keep_groups &&
        !roster__fits(w, u, op->contact, roster__item_size(op->contact, name, groups, ng))) {
        for (size_t i = 0; i < ng; i++)
            free(groups[i]);
        free(groups);
        done(op, 409, "the roster is full (roster.max_items or roster.max_size)");
        return;
    }
    int created = !it;
    if (created && !(it = user__roster_item_new(op->contact))) {
        for (size_t i = 0; i < ng; i++)
            free(groups[i]);
        free(groups);
        done(op, 500, "out of memory");
        return;
    }
    if (!keep_groups) {
        for (size_t i = 0; i < it->ngroups; i++)
            free(it->groups[i]);
        free(it->groups);
        it->groups = groups;
        it->ngroups = ng;
    } else {
        free(groups);
    }
    if (jn) {
        free(it->name);
        it->name = name && *name ? strdup(name) : NULL;
    }
    if (sub >= 0)
        it->subscription = sub;
    roster__changed(w, u, it); /* stored and pushed */
    hlog(LOG_INFO, "admin: %s %s %s in the roster of %s", op->ar->who,
         created ? "added" : "changed", op->contact, u->bare);
    op->result = item_json(it);
    done(op, 200, NULL);
}

static void del(worker_t *w, user_t *u, roster_op_t *op)
{
    storage_roster_item_t *it = strmap_get(&u->roster, op->contact);
    if (!it) {
        done(op, 404, "no such contact in the roster");
        return;
    }
    /* As the user's own removal (RFC 6121 §2.5.2): the subscriptions both ways end. */
    if (user__sub_to(it) || it->ask)
        presence__send_sub(w, u, op->contact, "unsubscribe");
    if (user__sub_from(it) || strmap_get(&u->requests, op->contact))
        presence__send_sub(w, u, op->contact, "unsubscribed");
    if (user__sub_from(it))
        presence__send_unavailable_to(w, u, op->contact);
    presence__drop_request(w, u, op->contact);
    roster__removed(w, u, op->contact);
    hlog(LOG_INFO, "admin: %s removed %s from the roster of %s", op->ar->who, op->contact, u->bare);
    done(op, 204, NULL);
}

static void acquired(worker_t *w, user_t *u, void *arg)
{
    roster_op_t *op = arg;
    if (u->state == USER_MISSING)
        done(op, 404, "no such user");
    else if (u->state != USER_READY)
        done(op, 503, "the account could not be read; try again");
    else if (op->kind == R_GET)
        get(u, op);
    else if (op->kind == R_PUT)
        put(w, u, op);
    else
        del(w, u, op);
}

static void at_home(worker_t *w, void *arg)
{
    roster_op_t *op = arg;
    user__acquire(w, op->bare, acquired, op);
}

static void drop(void *arg)
{
    op_free(arg);
}

/* A contact's bare JID from the path: malloc'd, NULL when it is not one. */
static char *contact_of(const char *s)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    char *out = NULL;
    if (!hearth_jid_parse(s, strlen(s), &j, NULL) && !j.resource)
        out = strdup(j.bare);
    hearth_jid_clear(&j);
    return out;
}

static void roster_route(admin_req_t *ar, const char *user, const char *contact)
{
    const char *m = ar->method;
    roster_op_kind_t kind = !contact && !strcmp(m, "GET")     ? R_GET
                            : contact && !strcmp(m, "PUT")    ? R_PUT
                            : contact && !strcmp(m, "DELETE") ? R_DELETE
                                                              : (roster_op_kind_t)-1;
    if ((int)kind < 0) {
        admin__not_allowed(ar, contact ? "PUT, DELETE" : "GET");
        return;
    }
    char *node = admin__node_of(user);
    if (!node) {
        admin__reply_error(ar, 404, "no such user", NULL);
        return;
    }
    roster_op_t *op = calloc(1, sizeof(*op));
    if (!op || asprintf(&op->bare, "%s@%s", node, ar->w->set.domain) < 0) {
        free(node);
        free(op);
        admin__reply_error(ar, 500, "out of memory", NULL);
        return;
    }
    free(node);
    op->ar = ar;
    op->kind = kind;
    if (contact && (!(op->contact = contact_of(contact)) || !strcmp(op->contact, op->bare))) {
        op_free(op);
        admin__reply_error(ar, 400, "a contact is a bare JID other than the user's own", NULL);
        return;
    }
    if (kind == R_PUT && !(op->body = admin__body(ar))) {
        op_free(op);
        return;
    }
    /* On failure worker__call has dropped op already. */
    if (worker__call(worker__home(ar->w->srv, op->bare), at_home, drop, op))
        admin__reply_error(ar, 503, "the server is busy; try again", NULL);
}

int admin__rosters(admin_req_t *ar, const char *p)
{
    if (strncmp(p, "/users/", 7))
        return 0;
    const char *rest = p + 7, *slash = strchr(rest, '/');
    if (!slash || strncmp(slash, "/roster", 7) || (slash[7] && slash[7] != '/'))
        return 0;
    char *user = admin__decode(rest, (size_t)(slash - rest), 0, 0), *contact = NULL;
    const char *c = slash[7] ? slash + 8 : NULL;
    if (!user || (c && (!*c || strchr(c, '/') || !(contact = admin__decode(c, strlen(c), 0, 0)))))
        admin__reply_error(ar, 404, "no such resource", NULL);
    else
        roster_route(ar, user, contact);
    free(user);
    free(contact);
    return 1;
}
