/* The publish-subscribe engine (modules/pubsub.h): configurations read from and written as
 * XEP-0004 forms, preconditions, nodes in memory, access models, and the bytes of items, events
 * and errors. Pure functions over the caller's data; no state, no I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/datetime.h"
#include "core/router.h"
#include "modules/pubsub.h"

int pubsub_fail(pubsub_err_t *e, hearth_stanza_error_t cond, const char *app, const char *text)
{
    *e = (pubsub_err_t){cond, app, NULL, text};
    return -1;
}

const char *pubsub_err_text(const pubsub_err_t *e)
{
    return e->text ? e->text : e->app ? e->app : hearth_stanza_error_name(e->cond);
}

int pubsub_unsupported(pubsub_err_t *e, const char *feature)
{
    *e = (pubsub_err_t){HEARTH_STANZA_ERR_FEATURE_NOT_IMPLEMENTED, "unsupported", feature, NULL};
    return -1;
}

int pubsub_error_write(hearth_buf_t *out, const pubsub_err_t *e)
{
    size_t start = out->len;
    int rc =
        hearth_buf_printf(out, "<error type='%s'><%s xmlns='" HEARTH_NS_STANZA_ERRORS "'/>",
                          hearth_stanza_error_type(e->cond), hearth_stanza_error_name(e->cond));
    if (e->text) {
        rc = rc ?: hearth_buf_append_str(out, "<text xmlns='" HEARTH_NS_STANZA_ERRORS "'>");
        rc = rc ?: hearth_buf_append_text_escaped(out, e->text, strlen(e->text));
        rc = rc ?: hearth_buf_append_str(out, "</text>");
    }
    if (e->app) {
        rc = rc ?: hearth_buf_printf(out, "<%s xmlns='" HEARTH_NS_PUBSUB_ERRORS "'", e->app);
        if (e->feature)
            rc = rc ?: hearth_buf_printf(out, " feature='%s'", e->feature);
        rc = rc ?: hearth_buf_append_str(out, "/>");
    }
    rc = rc ?: hearth_buf_append_str(out, "</error>");
    if (rc && out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    return rc;
}

/* ---- configurations ---- */

static const char *const ACCESS_NAMES[] = {"open", "presence", "roster", "whitelist", "authorize"};
#define ACCESS_COUNT 5
#define PEP_ACCESS_MODELS 0xfu /* open, presence, roster, whitelist */
static const char *const PUBLISH_NAMES[] = {"publishers", "subscribers", "open"};
#define PUBLISH_COUNT 3

static unsigned access_models(const pubsub_service_t *svc)
{
    return svc && svc->access_models ? svc->access_models : PEP_ACCESS_MODELS;
}

static unsigned publish_models(const pubsub_service_t *svc)
{
    return svc && svc->publish_models ? svc->publish_models : 1u << PUBSUB_PUBLISH_PUBLISHERS;
}

const char *pubsub_access_name(pubsub_access_t m)
{
    return (unsigned)m < ACCESS_COUNT ? ACCESS_NAMES[m] : "open";
}
static const char *const SEND_LAST_NAMES[] = {"never", "on_sub", "on_sub_and_presence"};

/* The fields a node configuration has, in the order the form lists them. */
typedef enum {
    F_ACCESS,
    F_MAX_ITEMS,
    F_PERSIST,
    F_DELIVER_PAYLOADS,
    F_DELIVER_NOTIFICATIONS,
    F_NOTIFY_RETRACT,
    F_NOTIFY_DELETE,
    F_NOTIFY_CONFIG,
    F_SEND_LAST,
    F_TITLE,
    F_TYPE,
    F_GROUPS,
    F_PUBLISH_MODEL,
    F_NOTIFICATION_TYPE,
    F__COUNT
} field_t;

static const struct {
    const char *var, *type, *label;
} FIELDS[F__COUNT] = {
    [F_ACCESS] = {"pubsub#access_model", "list-single", "Who may retrieve items and be notified"},
    [F_MAX_ITEMS] = {"pubsub#max_items", "text-single",
                     "Items to keep; 'max' for the most this service keeps"},
    [F_PERSIST] = {"pubsub#persist_items", "boolean", "Keep items in storage"},
    [F_DELIVER_PAYLOADS] = {"pubsub#deliver_payloads", "boolean",
                            "Deliver payloads with event notifications"},
    [F_DELIVER_NOTIFICATIONS] = {"pubsub#deliver_notifications", "boolean",
                                 "Deliver event notifications"},
    [F_NOTIFY_RETRACT] = {"pubsub#notify_retract", "boolean",
                          "Notify when items are removed from the node"},
    [F_NOTIFY_DELETE] = {"pubsub#notify_delete", "boolean", "Notify when the node is deleted"},
    [F_NOTIFY_CONFIG] = {"pubsub#notify_config", "boolean",
                         "Notify when the node's configuration changes"},
    [F_SEND_LAST] = {"pubsub#send_last_published_item", "list-single",
                     "When to send the last published item"},
    [F_TITLE] = {"pubsub#title", "text-single", "A friendly name for the node"},
    [F_TYPE] = {"pubsub#type", "text-single", "The semantic type of the node's payloads"},
    [F_GROUPS] = {"pubsub#roster_groups_allowed", "list-multi",
                  "Roster groups allowed (access model roster)"},
    [F_PUBLISH_MODEL] = {"pubsub#publish_model", "list-single", "Who may publish"},
    [F_NOTIFICATION_TYPE] = {"pubsub#notification_type", "list-single",
                             "The message type of event notifications"},
};

static int field_of(const char *var)
{
    for (int i = 0; i < F__COUNT; i++)
        if (!strcmp(FIELDS[i].var, var))
            return i;
    return -1;
}

void pubsub_config_clear(pubsub_config_t *c)
{
    free(c->title);
    free(c->type);
    for (size_t i = 0; i < c->ngroups; i++)
        free(c->groups[i]);
    free(c->groups);
    memset(c, 0, sizeof(*c));
}

static int dup_or_null(const char *s, char **out)
{
    *out = NULL;
    return s && !(*out = strdup(s)) ? HEARTH_ENOMEM : 0;
}

int pubsub_config_copy(pubsub_config_t *dst, const pubsub_config_t *src)
{
    *dst = *src;
    dst->title = dst->type = NULL;
    dst->groups = NULL;
    dst->ngroups = 0;
    int rc = dup_or_null(src->title, &dst->title) ?: dup_or_null(src->type, &dst->type);
    if (!rc && src->ngroups && !(dst->groups = calloc(src->ngroups, sizeof(char *))))
        rc = HEARTH_ENOMEM;
    for (size_t i = 0; !rc && i < src->ngroups; i++, dst->ngroups++)
        rc = dup_or_null(src->groups[i], &dst->groups[i]);
    if (rc)
        pubsub_config_clear(dst);
    return rc;
}

size_t pubsub_config_max_items(const pubsub_config_t *c, const pubsub_service_t *svc)
{
    return c->max_is_max || c->max_items > svc->max_items ? svc->max_items : c->max_items;
}

/* The setters below: 0, HEARTH_EINVAL for a value the field does not take (not-acceptable), or
 * HEARTH_ENOMEM (resource-constraint); the two must differ, HEARTH_ENOMEM being -1. */
static int parse_bool(const hearth_form_field_t *f, int *out)
{
    const char *v = f->nvalues ? f->values[0] : "false";
    if (!strcmp(v, "1") || !strcmp(v, "true"))
        *out = 1;
    else if (!strcmp(v, "0") || !strcmp(v, "false"))
        *out = 0;
    else
        return HEARTH_EINVAL;
    return 0;
}

static int parse_enum(const hearth_form_field_t *f, const char *const *names, int n)
{
    if (f->nvalues != 1)
        return -1;
    for (int i = 0; i < n; i++)
        if (!strcmp(f->values[0], names[i]))
            return i;
    return -1;
}

static int set_text(char **dst, const hearth_form_field_t *f)
{
    const char *v = f->nvalues ? f->values[0] : "";
    if (strlen(v) > PUBSUB_TEXT_MAX)
        return HEARTH_EINVAL;
    char *copy = *v ? strdup(v) : NULL;
    if (*v && !copy)
        return HEARTH_ENOMEM;
    free(*dst);
    *dst = copy;
    return 0;
}

static int set_groups(pubsub_config_t *c, const hearth_form_field_t *f)
{
    if (f->nvalues > PUBSUB_GROUPS_MAX)
        return HEARTH_EINVAL;
    char **v = f->nvalues ? calloc(f->nvalues, sizeof(char *)) : NULL;
    if (f->nvalues && !v)
        return HEARTH_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < f->nvalues; i++) {
        if (!*f->values[i] || strlen(f->values[i]) > STORAGE_GROUP_MAX)
            continue; /* no roster group has such a name: it would allow nobody */
        if (!(v[n] = strdup(f->values[i]))) {
            for (size_t k = 0; k < n; k++)
                free(v[k]);
            free(v);
            return HEARTH_ENOMEM;
        }
        n++;
    }
    for (size_t i = 0; i < c->ngroups; i++)
        free(c->groups[i]);
    free(c->groups);
    c->groups = v;
    c->ngroups = n;
    return 0;
}

/* Sets one field of c. clamp: a stored configuration, read under the service's present bounds
 * (a most of items lowered since is taken as it is now). */
static int apply_field(pubsub_config_t *c, const pubsub_service_t *svc, int id,
                       const hearth_form_field_t *f, int clamp, pubsub_err_t *e)
{
    int v, rc = 0;
    switch ((field_t)id) {
    case F_ACCESS:
        if ((v = parse_enum(f, ACCESS_NAMES, ACCESS_COUNT)) < 0 ||
            !(access_models(svc) & (1u << v)))
            return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "unsupported-access-model",
                               "an access model this service does not offer");
        c->access = (pubsub_access_t)v;
        return 0;
    case F_MAX_ITEMS: {
        const char *s = f->nvalues == 1 ? f->values[0] : "";
        if (!strcmp(s, "max")) {
            c->max_is_max = 1;
            c->max_items = svc->max_items;
            return 0;
        }
        char *end;
        unsigned long long n = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
        if (n == 0 || *end)
            return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL,
                               "pubsub#max_items is a positive number or 'max'");
        if (n > svc->max_items && !clamp)
            return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL,
                               "pubsub#max_items is past the most this service keeps ('max')");
        c->max_is_max = 0;
        c->max_items = n > svc->max_items ? svc->max_items : (size_t)n;
        return 0;
    }
    case F_PERSIST:
        rc = parse_bool(f, &c->persist_items);
        break;
    case F_DELIVER_PAYLOADS:
        rc = parse_bool(f, &c->deliver_payloads);
        break;
    case F_DELIVER_NOTIFICATIONS:
        rc = parse_bool(f, &c->deliver_notifications);
        break;
    case F_NOTIFY_RETRACT:
        rc = parse_bool(f, &c->notify_retract);
        break;
    case F_NOTIFY_DELETE:
        rc = parse_bool(f, &c->notify_delete);
        break;
    case F_NOTIFY_CONFIG:
        rc = parse_bool(f, &c->notify_config);
        break;
    case F_SEND_LAST:
        if ((v = parse_enum(f, SEND_LAST_NAMES, 3)) < 0)
            return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL,
                               "pubsub#send_last_published_item: never, on_sub or "
                               "on_sub_and_presence");
        c->send_last = (pubsub_send_last_t)v;
        return 0;
    case F_TITLE:
        rc = set_text(&c->title, f);
        break;
    case F_TYPE:
        rc = set_text(&c->type, f);
        break;
    case F_GROUPS:
        rc = set_groups(c, f);
        break;
    case F_PUBLISH_MODEL:
        /* PEP: one publisher per node (XEP-0163 §2.2), the owner. */
        if ((v = parse_enum(f, PUBLISH_NAMES, PUBLISH_COUNT)) < 0 ||
            !(publish_models(svc) & (1u << v)))
            return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL,
                               "pubsub#publish_model: a model this service does not offer");
        c->publish_model = (pubsub_publish_model_t)v;
        return 0;
    case F_NOTIFICATION_TYPE:
        if (f->nvalues != 1 || strcmp(f->values[0], "headline"))
            return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL,
                               "pubsub#notification_type: headline only");
        return 0;
    case F__COUNT:
        break;
    }
    if (rc == HEARTH_ENOMEM)
        return pubsub_fail(e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    if (rc)
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL, f->var);
    return 0;
}

/* Parses x as a submitted form of kind's FORM_TYPE into *out. */
static int parse_submitted(hearth_arena_t *a, const hearth_xml_node_t *x, pubsub_form_kind_t kind,
                           hearth_form_t *out, pubsub_err_t *e)
{
    const char *why = NULL;
    if (!x || strcmp(x->name, "x") || strcmp(x->ns, HEARTH_NS_DATA))
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "a data form is expected");
    int rc = hearth_form_parse(a, x, NULL, out, &why);
    if (rc == HEARTH_ENOMEM)
        return pubsub_fail(e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    if (rc)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, why);
    if (out->type != HEARTH_FORM_SUBMIT)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "the form is not submitted");
    /* A form without FORM_TYPE is taken as the kind the request expects: XEP-0004 makes the
     * field optional, and clients send configurations without it (slixmpp's XEP-0223 plugin). */
    const char *ft = hearth_form_form_type(out);
    const char *want = kind == PUBSUB_FORM_CONFIG ? HEARTH_NS_PUBSUB_NODE_CONFIG
                                                  : HEARTH_NS_PUBSUB_PUBLISH_OPTIONS;
    if (ft && strcmp(ft, want))
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, NULL,
                           kind == PUBSUB_FORM_CONFIG ? "FORM_TYPE is not pubsub#node_config"
                                                      : "FORM_TYPE is not pubsub#publish-options");
    return 0;
}

static int apply(pubsub_config_t *c, const pubsub_service_t *svc, hearth_arena_t *a,
                 const hearth_xml_node_t *x, pubsub_form_kind_t kind, int clamp, pubsub_err_t *e)
{
    hearth_form_t form;
    if (parse_submitted(a, x, kind, &form, e))
        return -1;
    for (size_t i = 0; i < form.nfields; i++) {
        const hearth_form_field_t *f = &form.fields[i];
        if (!f->var || !strcmp(f->var, "FORM_TYPE"))
            continue;
        int id = field_of(f->var);
        if (id < 0) {
            if (kind == PUBSUB_FORM_PUBLISH_OPTIONS)
                return pubsub_fail(e, HEARTH_STANZA_ERR_CONFLICT, "precondition-not-met",
                                   "an option this service does not know");
            continue;
        }
        if (apply_field(c, svc, id, f, clamp, e))
            return -1;
    }
    return 0;
}

int pubsub_config_apply(pubsub_config_t *c, const pubsub_service_t *svc, hearth_arena_t *a,
                        const hearth_xml_node_t *x, pubsub_form_kind_t kind, pubsub_err_t *e)
{
    return apply(c, svc, a, x, kind, 0, e);
}

static int same_groups(const pubsub_config_t *a, const pubsub_config_t *b)
{
    if (a->ngroups != b->ngroups)
        return 0;
    for (size_t i = 0; i < a->ngroups; i++) {
        int found = 0;
        for (size_t k = 0; k < b->ngroups && !found; k++)
            found = !strcmp(a->groups[i], b->groups[k]);
        if (!found)
            return 0;
    }
    return 1;
}

static int same_text(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

/* Whether field id has the same value in a and b. */
static int same_field(const pubsub_config_t *a, const pubsub_config_t *b,
                      const pubsub_service_t *svc, int id)
{
    switch ((field_t)id) {
    case F_ACCESS:
        return a->access == b->access;
    case F_MAX_ITEMS:
        return pubsub_config_max_items(a, svc) == pubsub_config_max_items(b, svc);
    case F_PERSIST:
        return a->persist_items == b->persist_items;
    case F_DELIVER_PAYLOADS:
        return a->deliver_payloads == b->deliver_payloads;
    case F_DELIVER_NOTIFICATIONS:
        return a->deliver_notifications == b->deliver_notifications;
    case F_NOTIFY_RETRACT:
        return a->notify_retract == b->notify_retract;
    case F_NOTIFY_DELETE:
        return a->notify_delete == b->notify_delete;
    case F_NOTIFY_CONFIG:
        return a->notify_config == b->notify_config;
    case F_SEND_LAST:
        return a->send_last == b->send_last;
    case F_TITLE:
        return same_text(a->title, b->title);
    case F_TYPE:
        return same_text(a->type, b->type);
    case F_GROUPS:
        return same_groups(a, b);
    case F_PUBLISH_MODEL:
        return a->publish_model == b->publish_model;
    case F_NOTIFICATION_TYPE:
        return 1; /* one value only, checked when applied */
    case F__COUNT:
        break;
    }
    return 0;
}

int pubsub_config_check(const pubsub_config_t *c, const pubsub_service_t *svc, hearth_arena_t *a,
                        const hearth_xml_node_t *x, pubsub_err_t *e)
{
    hearth_form_t form;
    if (parse_submitted(a, x, PUBSUB_FORM_PUBLISH_OPTIONS, &form, e))
        return -1;
    for (size_t i = 0; i < form.nfields; i++) {
        const hearth_form_field_t *f = &form.fields[i];
        if (!f->var || !strcmp(f->var, "FORM_TYPE"))
            continue;
        int id = field_of(f->var);
        pubsub_config_t want;
        if (id < 0 || pubsub_config_copy(&want, c))
            return pubsub_fail(e, HEARTH_STANZA_ERR_CONFLICT, "precondition-not-met", NULL);
        pubsub_err_t ignored;
        int met = !apply_field(&want, svc, id, f, 0, &ignored) && same_field(&want, c, svc, id);
        pubsub_config_clear(&want);
        if (!met)
            return pubsub_fail(e, HEARTH_STANZA_ERR_CONFLICT, "precondition-not-met", f->var);
    }
    return 0;
}

static hearth_xml_node_t *add_bool(hearth_arena_t *a, hearth_xml_node_t *x, int id, int v,
                                   int labels)
{
    return hearth_form_add_field(a, x, FIELDS[id].var, labels ? FIELDS[id].type : NULL,
                                 labels ? FIELDS[id].label : NULL, v ? "1" : "0");
}

static hearth_xml_node_t *add_list(hearth_arena_t *a, hearth_xml_node_t *x, int id,
                                   const char *value, const char *const *options, int n, int labels)
{
    hearth_xml_node_t *f =
        hearth_form_add_field(a, x, FIELDS[id].var, labels ? FIELDS[id].type : NULL,
                              labels ? FIELDS[id].label : NULL, NULL);
    for (int i = 0; labels && f && i < n; i++)
        if (!hearth_form_add_option(a, f, NULL, options[i]))
            return NULL;
    return f && hearth_form_add_value(a, f, value) ? f : NULL;
}

/* The names of the models in mask, for a form's options. */
static int model_names(const char *const *names, int n, unsigned mask, const char **out)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (mask & (1u << i))
            out[k++] = names[i];
    return k;
}

hearth_xml_node_t *pubsub_config_form(hearth_arena_t *a, hearth_xml_node_t *parent,
                                      const pubsub_config_t *c, hearth_form_type_t t)
{
    return pubsub_config_form_of(a, parent, c, NULL, t);
}

hearth_xml_node_t *pubsub_config_form_of(hearth_arena_t *a, hearth_xml_node_t *parent,
                                         const pubsub_config_t *c, const pubsub_service_t *svc,
                                         hearth_form_type_t t)
{
    int labels = t == HEARTH_FORM_FORM; /* a form to fill in says what each field is */
    static const char *const headline[] = {"headline"};
    const char *access[ACCESS_COUNT], *publish[PUBLISH_COUNT];
    int naccess = model_names(ACCESS_NAMES, ACCESS_COUNT, access_models(svc), access);
    int npublish = model_names(PUBLISH_NAMES, PUBLISH_COUNT, publish_models(svc), publish);
    hearth_xml_node_t *x = hearth_form_new(a, parent, t);
    if (!x || !hearth_form_add_form_type(a, x, HEARTH_NS_PUBSUB_NODE_CONFIG))
        return NULL;
    char max[32];
    if (c->max_is_max)
        snprintf(max, sizeof(max), "max");
    else
        snprintf(max, sizeof(max), "%zu", c->max_items);
    hearth_xml_node_t *ok =
        add_list(a, x, F_ACCESS, pubsub_access_name(c->access), access, naccess, labels);
    ok = ok ? hearth_form_add_field(a, x, FIELDS[F_MAX_ITEMS].var,
                                    labels ? FIELDS[F_MAX_ITEMS].type : NULL,
                                    labels ? FIELDS[F_MAX_ITEMS].label : NULL, max)
            : NULL;
    ok = ok ? add_bool(a, x, F_PERSIST, c->persist_items, labels) : NULL;
    ok = ok ? add_bool(a, x, F_DELIVER_PAYLOADS, c->deliver_payloads, labels) : NULL;
    ok = ok ? add_bool(a, x, F_DELIVER_NOTIFICATIONS, c->deliver_notifications, labels) : NULL;
    ok = ok ? add_bool(a, x, F_NOTIFY_RETRACT, c->notify_retract, labels) : NULL;
    ok = ok ? add_bool(a, x, F_NOTIFY_DELETE, c->notify_delete, labels) : NULL;
    ok = ok ? add_bool(a, x, F_NOTIFY_CONFIG, c->notify_config, labels) : NULL;
    ok = ok ? add_list(a, x, F_SEND_LAST, SEND_LAST_NAMES[c->send_last], SEND_LAST_NAMES, 3, labels)
            : NULL;
    ok = ok ? hearth_form_add_field(a, x, FIELDS[F_TITLE].var, labels ? FIELDS[F_TITLE].type : NULL,
                                    labels ? FIELDS[F_TITLE].label : NULL, c->title ? c->title : "")
            : NULL;
    ok = ok ? hearth_form_add_field(a, x, FIELDS[F_TYPE].var, labels ? FIELDS[F_TYPE].type : NULL,
                                    labels ? FIELDS[F_TYPE].label : NULL, c->type ? c->type : "")
            : NULL;
    hearth_xml_node_t *g = ok ? hearth_form_add_field(a, x, FIELDS[F_GROUPS].var,
                                                      labels ? FIELDS[F_GROUPS].type : NULL,
                                                      labels ? FIELDS[F_GROUPS].label : NULL, NULL)
                              : NULL;
    for (size_t i = 0; g && i < c->ngroups; i++)
        if (!hearth_form_add_value(a, g, c->groups[i]))
            g = NULL;
    ok = g ? add_list(a, x, F_PUBLISH_MODEL, PUBLISH_NAMES[c->publish_model % PUBLISH_COUNT],
                      publish, npublish, labels)
           : NULL;
    ok = ok ? add_list(a, x, F_NOTIFICATION_TYPE, "headline", headline, 1, labels) : NULL;
    return ok ? x : NULL;
}

char *pubsub_config_store(const pubsub_config_t *c)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *x = a ? pubsub_config_form(a, NULL, c, HEARTH_FORM_SUBMIT) : NULL;
    hearth_buf_t b = HEARTH_BUF_INIT;
    char *out = NULL;
    if (x && hearth_xml_serialize(x, NULL, &b) == 0)
        out = hearth_buf_steal(&b, NULL);
    hearth_buf_free(&b);
    hearth_arena_free(a);
    return out;
}

typedef struct load_ctx {
    pubsub_config_t *c;
    const pubsub_service_t *svc;
    int rc;
} load_ctx_t;

static void load_parsed(void *ud, hearth_xml_node_t *x, hearth_arena_t *a)
{
    load_ctx_t *l = ud;
    pubsub_err_t e;
    l->rc = apply(l->c, l->svc, a, x, PUBSUB_FORM_CONFIG, 1, &e) ? HEARTH_EINVAL : 0;
}

int pubsub_config_load(pubsub_config_t *c, const pubsub_service_t *svc, const char *stored)
{
    if (pubsub_config_copy(c, &svc->defaults))
        return HEARTH_ENOMEM;
    load_ctx_t l = {c, svc, HEARTH_EINVAL};
    router__parse(stored, strlen(stored), load_parsed, &l);
    if (l.rc)
        pubsub_config_clear(c);
    return l.rc;
}

/* ---- nodes in memory ---- */

static const char *const AFF_NAMES[] = {"none",    "owner",     "member",
                                        "outcast", "publisher", "publish-only"};
#define AFF_COUNT 6

pubsub_aff_t pubsub_aff_parse(const char *s)
{
    for (int i = 0; s && i < AFF_COUNT; i++)
        if (!strcmp(s, AFF_NAMES[i]))
            return (pubsub_aff_t)i;
    return PUBSUB_AFF_NONE;
}

const char *pubsub_aff_name(pubsub_aff_t a)
{
    return (unsigned)a < AFF_COUNT ? AFF_NAMES[a] : "none";
}

pubsub_node_t *pubsub_node_new(const char *name, pubsub_config_t *c)
{
    pubsub_node_t *n = calloc(1, sizeof(*n));
    if (!n || !(n->name = strdup(name)) || strmap_init(&n->affs)) {
        if (n)
            free(n->name);
        free(n);
        return NULL;
    }
    n->config = *c;
    memset(c, 0, sizeof(*c));
    return n;
}

void pubsub_node_free(pubsub_node_t *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nitems; i++)
        free(n->items[i].id);
    free(n->items);
    free(n->last_payload);
    strmap_free(&n->affs);
    pubsub_config_clear(&n->config);
    free(n->name);
    free(n);
}

long pubsub_node_find(const pubsub_node_t *n, const char *id)
{
    for (size_t i = 0; i < n->nitems; i++)
        if (!strcmp(n->items[i].id, id))
            return (long)i;
    return -1;
}

void pubsub_node_remove(pubsub_node_t *n, size_t i)
{
    if (i >= n->nitems)
        return;
    if (i + 1 == n->nitems) {
        free(n->last_payload);
        n->last_payload = NULL;
    }
    n->bytes -= n->items[i].size;
    free(n->items[i].id);
    memmove(&n->items[i], &n->items[i + 1], (n->nitems - i - 1) * sizeof(*n->items));
    n->nitems--;
}

int pubsub_node_push(pubsub_node_t *n, const char *id, size_t size, int64_t stamp_ms,
                     const char *payload)
{
    char *idc = strdup(id);
    char *pc = payload ? strdup(payload) : NULL;
    long old = pubsub_node_find(n, id);
    if (!idc || (payload && !pc))
        goto nomem;
    if (old < 0 && n->nitems == n->cap) {
        size_t ncap = n->cap ? n->cap * 2 : 4;
        pubsub_item_meta_t *v = realloc(n->items, ncap * sizeof(*v));
        if (!v)
            goto nomem;
        n->items = v;
        n->cap = ncap;
    }
    if (old >= 0)
        pubsub_node_remove(n, (size_t)old);
    n->items[n->nitems++] = (pubsub_item_meta_t){idc, size, stamp_ms};
    n->bytes += size;
    free(n->last_payload);
    n->last_payload = pc;
    return 0;

nomem:
    free(idc);
    free(pc);
    return HEARTH_ENOMEM;
}

void pubsub_node_trim(pubsub_node_t *n, size_t keep)
{
    while (n->nitems > keep)
        pubsub_node_remove(n, 0);
}

size_t pubsub_node_dropped_bytes(const pubsub_node_t *n, const char *id, size_t keep)
{
    int replaced = pubsub_node_find(n, id) >= 0;
    size_t after = n->nitems - (size_t)replaced + 1;
    size_t drop = after > keep ? after - keep : 0, bytes = 0;
    for (size_t i = 0; drop > 0 && i < n->nitems; i++) {
        if (!strcmp(n->items[i].id, id))
            continue;
        bytes += n->items[i].size;
        drop--;
    }
    return bytes;
}

pubsub_aff_t pubsub_node_aff(const pubsub_node_t *n, const char *bare)
{
    return (pubsub_aff_t)(uintptr_t)strmap_get(&n->affs, bare);
}

int pubsub_access(const pubsub_node_t *n, const pubsub_who_t *who, pubsub_err_t *e)
{
    if (who->owner)
        return 0;
    if (who->aff == PUBSUB_AFF_OUTCAST || who->aff == PUBSUB_AFF_PUBLISH_ONLY)
        return pubsub_fail(e, HEARTH_STANZA_ERR_FORBIDDEN, NULL, NULL);
    if (who->aff == PUBSUB_AFF_OWNER || who->aff == PUBSUB_AFF_PUBLISHER)
        return 0; /* XEP-0060 §4.1: they retrieve items under any access model */
    switch (n->config.access) {
    case PUBSUB_ACCESS_OPEN:
        return 0;
    case PUBSUB_ACCESS_PRESENCE:
        if (who->presence_sub)
            return 0;
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_AUTHORIZED, "presence-subscription-required",
                           NULL);
    case PUBSUB_ACCESS_ROSTER:
        for (size_t i = 0; who->presence_sub && i < who->ngroups; i++)
            for (size_t k = 0; k < n->config.ngroups; k++)
                if (!strcmp(who->groups[i], n->config.groups[k]))
                    return 0;
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_AUTHORIZED, "not-in-roster-group", NULL);
    case PUBSUB_ACCESS_WHITELIST:
        if (who->aff == PUBSUB_AFF_MEMBER)
            return 0;
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ALLOWED, "closed-node", NULL);
    case PUBSUB_ACCESS_AUTHORIZE:
        if (who->subscribed || who->aff == PUBSUB_AFF_MEMBER)
            return 0;
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_AUTHORIZED, "not-subscribed", NULL);
    }
    return pubsub_fail(e, HEARTH_STANZA_ERR_FORBIDDEN, NULL, NULL);
}

/* ---- bytes ---- */

int pubsub_write_item(hearth_buf_t *b, const char *id, const char *payload)
{
    int rc = hearth_buf_append_str(b, "<item id='");
    rc = rc ?: hearth_buf_append_escaped(b, id, strlen(id));
    if (!payload)
        return rc ?: hearth_buf_append_str(b, "'/>");
    rc = rc ?: hearth_buf_append_str(b, "'>");
    rc = rc ?: hearth_buf_append_str(b, payload);
    return rc ?: hearth_buf_append_str(b, "</item>");
}

int pubsub_write_event_start(hearth_buf_t *b, const char *from, const char *id)
{
    int rc = hearth_buf_append_str(b, "<message from='");
    rc = rc ?: hearth_buf_append_escaped(b, from, strlen(from));
    rc = rc ?: hearth_buf_append_str(b, "' type='headline' id='");
    rc = rc ?: hearth_buf_append_escaped(b, id, strlen(id));
    return rc ?: hearth_buf_append_str(b, "'><event xmlns='" HEARTH_NS_PUBSUB_EVENT "'>");
}

int pubsub_write_event_end(hearth_buf_t *b, int64_t stamp_ms, const char *delay_from)
{
    int rc = hearth_buf_append_str(b, "</event>");
    if (stamp_ms > 0) {
        char stamp[HEARTH_DATETIME_MAX];
        hearth_datetime_format(stamp_ms, stamp, sizeof(stamp));
        rc = rc ?: hearth_buf_append_str(b, "<delay xmlns='" HEARTH_NS_DELAY "' from='");
        rc = rc ?: hearth_buf_append_escaped(b, delay_from, strlen(delay_from));
        rc = rc ?: hearth_buf_printf(b, "' stamp='%s'/>", stamp);
    }
    return rc ?: hearth_buf_append_str(b, "</message>");
}

int pubsub_item_payload(const hearth_xml_node_t *item, size_t max, char **out, size_t *size,
                        pubsub_err_t *e)
{
    size_t n = hearth_xml_count_elements(item);
    if (n == 0)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "payload-required", NULL);
    if (n > 1)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "invalid-payload",
                           "an item holds exactly one payload element");
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(hearth_xml_first_element(item), NULL, &b)) {
        hearth_buf_free(&b);
        return pubsub_fail(e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    }
    if (b.len > max) {
        hearth_buf_free(&b);
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "payload-too-big", NULL);
    }
    *size = b.len;
    *out = hearth_buf_steal(&b, NULL);
    return 0;
}

int pubsub_name_ok(const char *s, size_t max)
{
    return s && *s && strnlen(s, max + 1) <= max;
}
