/* Runtime settings (runtime.h): the config keys marked runtime, stored as server properties,
 * applied under srv->cfg_lock and handed to every worker as a settings_t copy through its
 * inbox. Touches srv->cfg, srv->cfg_stored and, before the workers run, srv->set. */
#include "core/runtime.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

void settings__from_config(const config_t *c, settings_t *s)
{
    s->tls_required = !strcmp(config_str(c, "c2s.tls"), "required");
    s->plain_without_tls = config_bool(c, "c2s.plain_without_tls");
    s->sasl_plain = config_bool(c, "c2s.sasl_plain");
    s->idle_ping = (unsigned)config_int(c, "c2s.idle_ping");
    s->idle_release = (unsigned)config_int(c, "c2s.idle_release");
    s->ping_timeout = (unsigned)config_int(c, "c2s.ping_timeout");
    s->preauth_timeout = (unsigned)config_int(c, "c2s.preauth_timeout");
    const char *rc = config_str(c, "c2s.resource_conflict");
    s->resource_conflict = !strcmp(rc, "reject")   ? CONFLICT_REJECT
                           : !strcmp(rc, "rename") ? CONFLICT_RENAME
                                                   : CONFLICT_REPLACE;
    s->max_resources = (unsigned)config_int(c, "c2s.max_resources");
    s->muc_max_rooms_per_user = (unsigned)config_int(c, "muc.max_rooms_per_user");
    s->muc_max_join_size = (size_t)config_int(c, "muc.max_join_size");
    s->max_stanza = (size_t)config_int(c, "c2s.max_stanza");
    s->max_stanza_preauth = (size_t)config_int(c, "c2s.max_stanza_preauth");
    s->auth_attempts = (unsigned)config_int(c, "c2s.auth_attempts");
    s->auth_fail_delay_ms = (unsigned)config_int(c, "c2s.auth_fail_delay_ms");
    s->preauth_per_ip = (unsigned)config_int(c, "limits.preauth_per_ip");
    s->scram_iterations = (unsigned)config_int(c, "auth.scram_iterations");
    s->registration_open = config_bool(c, "registration.open");
    s->registration_rate_limit = (unsigned)config_int(c, "registration.rate_limit");
    s->min_password = (unsigned)config_int(c, "registration.min_password");
    s->roster_max_items = (unsigned)config_int(c, "roster.max_items");
    s->roster_max_size = (size_t)config_int(c, "roster.max_size");
    s->offline_quota = (unsigned)config_int(c, "offline.quota");
    s->vcard_max_size = (size_t)config_int(c, "vcard.max_size");
    s->private_max_size = (size_t)config_int(c, "private.max_size");
    s->private_max_total = (size_t)config_int(c, "private.max_total");
    s->hide_version = config_bool(c, "server.hide_version");
    s->resume_timeout = (unsigned)config_int(c, "c2s.resume_timeout");
    s->resume_budget = (size_t)config_int(c, "c2s.resume_budget");
    s->archive_retention_days = (unsigned)config_int(c, "archive.retention_days");
    s->pep_max_nodes = (unsigned)config_int(c, "pep.max_nodes");
    s->pep_max_items = (size_t)config_int(c, "pep.max_items");
    s->pep_max_item_size = (size_t)config_int(c, "pep.max_item_size");
    s->pep_max_bytes = (size_t)config_int(c, "pep.max_bytes");
    s->caps_cache_size = (size_t)config_int(c, "caps.cache_size");
    s->muc_default_persistent = config_bool(c, "muc.default_persistent");
    s->muc_default_public = config_bool(c, "muc.default_public");
    s->muc_default_members_only = config_bool(c, "muc.default_members_only");
    s->muc_default_moderated = config_bool(c, "muc.default_moderated");
    s->muc_default_max_users = (unsigned)config_int(c, "muc.default_max_users");
    s->muc_default_history = (unsigned)config_int(c, "muc.default_history");
}

static void settings_take(worker_t *w, void *arg)
{
    w->set = *(settings_t *)arg;
    free(arg);
}

/* Under cfg_lock: the settings from cfg to every worker. Posting under the lock keeps the
 * copies in the order of the changes in every inbox, so no worker ends on an older one. */
static void publish(server_t *srv)
{
    log_level_t lvl;
    if (log_level_parse(config_str(srv->cfg, "log.level"), &lvl) == 0)
        log_set_level(lvl);
    settings_t s = srv->set;
    settings__from_config(srv->cfg, &s);
    if (!srv->workers) {
        srv->set = s; /* start-up: the workers copy it at their init */
        return;
    }
    for (unsigned i = 0; i < srv->nworkers; i++) {
        settings_t *copy = malloc(sizeof(*copy));
        if (!copy || (*copy = s, worker__call(srv->workers[i], settings_take, free, copy)))
            hlog(LOG_ERROR, "runtime settings: worker %u did not get the new values", i);
    }
}

static int key_row(const char *key)
{
    size_t n = 0;
    const config_key_t *keys = config_keys(&n);
    const config_key_t *k = config_key_find(key);
    return k ? (int)(k - keys) : -1;
}

int runtime__load(server_t *srv)
{
    size_t n = 0;
    const config_key_t *keys = config_keys(&n);
    uv_mutex_lock(&srv->cfg_lock);
    if (!srv->cfg_stored && !(srv->cfg_stored = calloc(n, 1))) {
        uv_mutex_unlock(&srv->cfg_lock);
        return HEARTH_ENOMEM;
    }
    uv_mutex_unlock(&srv->cfg_lock);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!keys[i].runtime)
            continue;
        char name[128], *value = NULL, *err = NULL;
        snprintf(name, sizeof(name), RUNTIME_PROPERTY_PREFIX "%s", keys[i].name);
        /* Blocking, but never on a worker: start-up or the main thread's SIGHUP. */
        int got = storage_sync_property_get(srv->storage, name, &value);
        if (got && got != HEARTH_ENOTFOUND) {
            hlog(LOG_ERROR, "runtime settings: cannot read %s: %s", name, hearth_strerror(got));
            rc = got;
            break;
        }
        uv_mutex_lock(&srv->cfg_lock);
        srv->cfg_stored[i] = value != NULL;
        int fixed = config_is_fixed(srv->cfg, keys[i].name);
        int set = fixed   ? 0
                  : value ? config_set_runtime(srv->cfg, keys[i].name, value, &err)
                          : config_unset_runtime(srv->cfg, keys[i].name, &err);
        uv_mutex_unlock(&srv->cfg_lock);
        if (fixed && value)
            hlog(LOG_WARN,
                 "runtime settings: %s = %s in the database is not used: the config "
                 "file or --set fixes it",
                 keys[i].name, value);
        else if (set)
            hlog(LOG_WARN, "runtime settings: %s = %s in the database is not used: %s",
                 keys[i].name, value ? value : "", err ? err : hearth_strerror(set));
        else if (value)
            hlog(LOG_INFO, "runtime settings: %s = %s (from the database)", keys[i].name, value);
        free(err);
        free(value);
    }
    uv_mutex_lock(&srv->cfg_lock);
    publish(srv);
    uv_mutex_unlock(&srv->cfg_lock);
    return rc;
}

int runtime__check(server_t *srv, const char *key, const char *value, char **err)
{
    uv_mutex_lock(&srv->cfg_lock);
    int rc = config_check_runtime(srv->cfg, key, value, err);
    uv_mutex_unlock(&srv->cfg_lock);
    return rc;
}

int runtime__apply(server_t *srv, const char *key, const char *value, char **err)
{
    int row = key_row(key);
    uv_mutex_lock(&srv->cfg_lock);
    int rc = row < 0 ? config_check_runtime(srv->cfg, key, value, err)
             : value ? config_set_runtime(srv->cfg, key, value, err)
                     : config_unset_runtime(srv->cfg, key, err);
    if (rc == 0) {
        srv->cfg_stored[row] = value != NULL;
        publish(srv);
    }
    uv_mutex_unlock(&srv->cfg_lock);
    if (rc == 0)
        hlog(LOG_INFO, "runtime settings: %s %s%s", key, value ? "= " : "back to its default",
             value ? value : "");
    return rc < 0 ? rc : row < 0 ? HEARTH_ENOTFOUND : 0;
}

int runtime__view(server_t *srv, const char *key, runtime_view_t *out)
{
    int row = key_row(key);
    if (row < 0)
        return HEARTH_ENOTFOUND;
    out->key = config_key_find(key);
    uv_mutex_lock(&srv->cfg_lock);
    config_value_string(srv->cfg, key, out->value, sizeof(out->value));
    out->fixed = config_is_fixed(srv->cfg, key);
    out->stored = srv->cfg_stored ? srv->cfg_stored[row] : 0;
    uv_mutex_unlock(&srv->cfg_lock);
    return 0;
}
