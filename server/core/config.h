/* hearthd configuration: one table of keys (name, type, default, bounds, help, runtime flag)
 * drives parsing of the INI file and --set, validation, the commented default file and
 * docs/config.md. A config_t is not synchronised: one thread owns it. */
#ifndef HEARTH_CORE_CONFIG_H
#define HEARTH_CORE_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "hearth/error.h"

typedef struct config config_t;

/* A runtime key's value in the database: the server property of this prefix and the key. */
#define CONFIG_PROPERTY_PREFIX "config."

typedef enum config_type {
    CONFIG_STRING,
    CONFIG_INT,  /* long within [min, max] */
    CONFIG_BOOL, /* true/false, yes/no, on/off, 1/0 */
    CONFIG_ENUM, /* one of allowed[]; config_str gives the canonical spelling */
} config_type_t;

/* One row of the table. */
typedef struct config_key {
    const char *name; /* "section.key" */
    config_type_t type;
    const char *def;            /* default, spelt as in the file */
    long min, max;              /* CONFIG_INT bounds, inclusive */
    const char *const *allowed; /* CONFIG_ENUM: NULL-terminated */
    const char *help;           /* one line */
    int runtime;                /* may be changed while hearthd runs (database property) */
} config_key_t;

config_t *config_new(void); /* all defaults; NULL on ENOMEM */
void config_free(config_t *c);

/* Errors below return HEARTH_ECONFIG (unknown key, bad value, key outside a section, syntax),
 * HEARTH_EIO (file unreadable) or HEARTH_ENOMEM, and set *err to a malloc'd one-line message
 * that names the key (and FILE:LINE for a file). Values set here are fixed for the run. On
 * error the values applied before the failing one stay set. */
int config_load_file(config_t *c, const char *path, char **err) HEARTH_MUST_CHECK;
int config_set(config_t *c, const char *key, const char *value, char **err) HEARTH_MUST_CHECK;
/* "key=value" from --set. */
int config_set_arg(config_t *c, const char *key_eq_value, char **err) HEARTH_MUST_CHECK;

/* Load config_path (NULL = <data_dir>/hearthd.conf if it exists; data_dir NULL = "./data"),
 * then apply the --set arguments in order. Shared by hearthd and hearthctl. */
int config_from_args(config_t *c, const char *config_path, const char *data_dir, char *const *sets,
                     size_t n_sets, char **err) HEARTH_MUST_CHECK;

/* A value from a database property: not fixed. Refuses (HEARTH_EBUSY) a key fixed by the file
 * or --set, and (HEARTH_EINVAL) a key that is not runtime-changeable. */
int config_set_runtime(config_t *c, const char *key, const char *value,
                       char **err) HEARTH_MUST_CHECK;

/* Whether config_set_runtime(c, key, value) would succeed, changing nothing (value NULL: only
 * whether the key may change): HEARTH_ENOTFOUND unknown, HEARTH_EINVAL not runtime, HEARTH_EBUSY
 * fixed, HEARTH_ECONFIG a bad value (the message names the key and the bounds). */
int config_check_runtime(const config_t *c, const char *key, const char *value,
                         char **err) HEARTH_MUST_CHECK;
/* A runtime key back to its default (the database no longer holds it); the same refusals. */
int config_unset_runtime(config_t *c, const char *key, char **err) HEARTH_MUST_CHECK;
/* The key's value spelt as the file would (true/false for booleans); HEARTH_ENOTFOUND. */
int config_value_string(const config_t *c, const char *key, char *buf, size_t size);

/* Getters abort on an unknown key or a type mismatch (programming errors). config_str serves
 * CONFIG_STRING and CONFIG_ENUM; the pointer lives until that key is set again. */
const char *config_str(const config_t *c, const char *key);
long config_int(const config_t *c, const char *key);
int config_bool(const config_t *c, const char *key);
int config_is_fixed(const config_t *c, const char *key);

/* The table, for the admin console: *n rows. NULL when the key is unknown. */
const config_key_t *config_keys(size_t *n);
const config_key_t *config_key_find(const char *key);

/* Commented default file: every key, its help, allowed values and default (commented out except
 * server.domain). Created atomically; HEARTH_EEXISTS if path already exists (never clobbers). */
int config_write_default(const char *path, char **err) HEARTH_MUST_CHECK;
/* docs/config.md: a table of every key. 0 or HEARTH_EIO. */
int config_write_markdown(FILE *out);

#endif
