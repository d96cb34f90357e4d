/* A string-keyed hash map with separate chaining: keys are copied, values are borrowed.
 * Not thread-safe: each map belongs to one thread (or is guarded by its owner's lock). */
#ifndef HEARTH_STRMAP_H
#define HEARTH_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct strmap_entry {
    struct strmap_entry *next;
    uint64_t hash;
    void *value;
    char key[];
} strmap_entry_t;

typedef struct strmap {
    strmap_entry_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
} strmap_t;

uint64_t strmap_hash(const char *s); /* FNV-1a 64, also used to pick home workers */
int strmap_init(strmap_t *m);
void strmap_free(strmap_t *m); /* frees entries, not values */
void *strmap_get(const strmap_t *m, const char *key);
int strmap_put(strmap_t *m, const char *key, void *value); /* replaces */
void *strmap_remove(strmap_t *m, const char *key);         /* returns the old value */

#define STRMAP_FOREACH(m, e)                                                                       \
    for (size_t strmap__i = 0; strmap__i < (m)->nbuckets; strmap__i++)                             \
        for (strmap_entry_t *e = (m)->buckets[strmap__i], *strmap__n = e ? e->next : NULL; e;      \
             e = strmap__n, strmap__n = e ? e->next : NULL)

#endif
