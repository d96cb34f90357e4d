/* /api/v1/properties: every config key with its value, and the runtime ones changed while
 * hearthd runs. A change is stored as the server property "config.<key>" first, then applied
 * (runtime.c hands it to every worker through its inbox). No key holds a secret today; a key
 * that did (a password, a DSN with one) would have to be left out of these listings. */
#include <stdlib.h>
#include <string.h>

#include "admin/internal.h"
#include "core/runtime.h"

static const char *const TYPE_NAMES[] = {"string", "int", "bool", "enum"};

static json_t *property_json(const runtime_view_t *v)
{
    const config_key_t *k = v->key;
    json_t *allowed = json_null();
    if (k->type == CONFIG_ENUM) {
        allowed = json_array();
        for (int i = 0; k->allowed[i]; i++)
            json_array_append_new(allowed, json_string(k->allowed[i]));
    } else if (k->type == CONFIG_BOOL) {
        allowed = json_pack("[s, s]", "true", "false");
    }
    int num = k->type == CONFIG_INT;
    return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:s, s:o, s:o, s:o}", "key", k->name,
                     "value", v->value, "default", k->def, "type", TYPE_NAMES[k->type], "runtime",
                     k->runtime, "fixed", v->fixed, "stored", v->stored, "help", k->help, "min",
                     num ? json_integer(k->min) : json_null(), "max",
                     num ? json_integer(k->max) : json_null(), "allowed", allowed);
}

static void list(admin_req_t *ar)
{
    size_t n = 0;
    const config_key_t *keys = config_keys(&n);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        runtime_view_t v;
        if (runtime__view(ar->w->srv, keys[i].name, &v) == 0)
            json_array_append_new(arr, property_json(&v));
    }
    admin__reply_json(ar, 200, json_pack("{s:o}", "properties", arr));
}

static void one(admin_req_t *ar, const char *key, int status)
{
    runtime_view_t v;
    if (runtime__view(ar->w->srv, key, &v))
        admin__reply_error(ar, 404, "no such configuration key", NULL);
    else if (status == 204)
        admin__reply_json(ar, 204, NULL);
    else
        admin__reply_json(ar, status, property_json(&v));
}

/* A refusal of runtime__check as its status: unknown 404, not changeable or fixed 409, a bad
 * value 400 (the message names the key and the bounds). */
static void refuse(admin_req_t *ar, int rc, const char *err)
{
    int status = rc == HEARTH_ENOTFOUND                      ? 404
                 : rc == HEARTH_EINVAL || rc == HEARTH_EBUSY ? 409
                 : rc == HEARTH_ECONFIG                      ? 400
                                                             : 500;
    admin__reply_error(ar, status, err ? err : hearth_strerror(rc), NULL);
}

typedef struct change {
    char *key;
    char *value; /* NULL: back to the file's or the default */
} change_t;

static void change_free(change_t *c)
{
    free(c->key);
    free(c->value);
    free(c);
}

static void stored(void *ud, int err)
{
    admin_req_t *ar = ud;
    change_t *c = ar->op;
    ar->op = NULL;
    char *msg = NULL;
    int rc = err ? err : runtime__apply(ar->w->srv, c->key, c->value, &msg);
    if (err) {
        admin__reply_error(ar, 500, "cannot store the setting", NULL);
    } else if (rc) {
        /* Refused after it was stored: only a key fixed meanwhile, which cannot happen while
         * the file is read once; the stored value then waits for a run without the file's. */
        refuse(ar, rc, msg);
    } else {
        hlog(LOG_INFO, "admin: %s set %s%s%s", ar->who, c->key, c->value ? " = " : " back",
             c->value ? c->value : "");
        one(ar, c->key, c->value ? 200 : 204);
    }
    free(msg);
    change_free(c);
}

/* The body's "value" as the config file would spell it: strings as they are, numbers and
 * booleans converted. NULL after answering. */
static char *value_of(admin_req_t *ar)
{
    json_t *b = admin__body(ar);
    if (!b)
        return NULL;
    json_t *v = json_object_get(b, "value");
    char *out = NULL;
    if (json_is_string(v))
        out = strdup(json_string_value(v));
    else if (json_is_integer(v) && asprintf(&out, "%lld", (long long)json_integer_value(v)) < 0)
        out = NULL;
    else if (json_is_boolean(v))
        out = strdup(json_is_true(v) ? "true" : "false");
    json_decref(b);
    if (!out)
        admin__reply_error(ar, 400,
                           v ? "\"value\" must be a string, an integer or a boolean"
                             : "the body needs a \"value\"",
                           NULL);
    return out;
}

static void change(admin_req_t *ar, const char *key, int unset)
{
    char *value = unset ? NULL : value_of(ar), *err = NULL;
    if (!unset && !value)
        return;
    int rc = runtime__check(ar->w->srv, key, value, &err);
    if (rc) {
        refuse(ar, rc, err);
        free(err);
        free(value);
        return;
    }
    change_t *c = calloc(1, sizeof(*c));
    char name[128];
    snprintf(name, sizeof(name), RUNTIME_PROPERTY_PREFIX "%s", key);
    if (!c || !(c->key = strdup(key))) {
        free(c);
        free(value);
        admin__reply_error(ar, 500, "out of memory", NULL);
        return;
    }
    c->value = value;
    ar->op = c;
    if (storage_property_set(ar->w->srv->storage, &ar->w->storage_target, name, value, stored,
                             ar)) {
        ar->op = NULL;
        change_free(c);
        admin__reply_error(ar, 503, "storage is busy; try again", NULL);
    }
}

int admin__properties(admin_req_t *ar, const char *p)
{
    const char *m = ar->method;
    char *key = NULL;
    if (!strcmp(p, "/properties")) {
        if (strcmp(m, "GET"))
            admin__not_allowed(ar, "GET");
        else
            list(ar);
        return 1;
    }
    if (!(key = admin__segment(p, "/properties/", "", 0)))
        return 0;
    if (!strcmp(m, "GET"))
        one(ar, key, 200);
    else if (!strcmp(m, "PUT"))
        change(ar, key, 0);
    else if (!strcmp(m, "DELETE"))
        change(ar, key, 1);
    else
        admin__not_allowed(ar, "GET, PUT, DELETE");
    free(key);
    return 1;
}
