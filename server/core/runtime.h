/* Runtime settings: the config keys marked runtime, changed while hearthd runs. A change is
 * stored as the server property "config.<key>" (storage), applied to srv->cfg under
 * srv->cfg_lock, and handed to every worker through its inbox as a fresh settings_t copy, so a
 * worker's code reads its own w->set and never shares a mutable struct. A key given in the
 * config file or with --set is fixed for the run: the database value is then kept but unused. */
#ifndef HEARTH_CORE_RUNTIME_H
#define HEARTH_CORE_RUNTIME_H

#include "core/server.h"

/* Property names in storage: this prefix and the key. */
#define RUNTIME_PROPERTY_PREFIX CONFIG_PROPERTY_PREFIX

/* The fields of s that follow config keys (all but domain and muc_domain). */
void settings__from_config(const config_t *c, settings_t *s);

/* At start-up (before the workers run) and on SIGHUP (from the main thread, never a worker):
 * reads every runtime key's stored value with the blocking storage calls and applies it;
 * a key no longer stored goes back to its file or default value. Values that no longer parse
 * are logged and skipped. Then, if the workers run, hands them the new settings. */
int runtime__load(server_t *srv) HEARTH_MUST_CHECK;

/* Under cfg_lock: see config_check_runtime. */
int runtime__check(server_t *srv, const char *key, const char *value, char **err) HEARTH_MUST_CHECK;
/* Applies a value already stored (value NULL: the stored one was removed, back to the file's
 * or the default), then tells every worker. Any thread; the same refusals. */
int runtime__apply(server_t *srv, const char *key, const char *value, char **err) HEARTH_MUST_CHECK;

/* One key as the admin API shows it, read under cfg_lock. */
typedef struct runtime_view {
    const config_key_t *key;
    char value[1024];
    int fixed, stored;
} runtime_view_t;
int runtime__view(server_t *srv, const char *key, runtime_view_t *out); /* HEARTH_ENOTFOUND */

#endif
