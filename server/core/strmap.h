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

/* The tables hash their keys with SipHash-2-4 under a key drawn from the CSPRNG once per
 * process: keys are often chosen by users (rosters, block lists, nicknames), and an unseeded
 * hash lets them be chosen to collide in one chain. */
uint64_t strmap_hash(const char *s);
/* FNV-1a 64, the same in every process and run: picks home workers (and later nodes), which
 * must agree across threads and restarts. Never used for a table's buckets. */
uint64_t strmap_stable_hash(const char *s);
/* SipHash-2-4 of len bytes under key (exposed for its test vectors). */
uint64_t strmap__siphash(const uint64_t key[2], const void *data, size_t len);
int strmap_init(strmap_t *m);  /* allocates nothing (nor does a zeroed map): the first put does */
void strmap_free(strmap_t *m); /* frees entries, not values */
void *strmap_get(const strmap_t *m, const char *key);
int strmap_put(strmap_t *m, const char *key, void *value); /* replaces */
void *strmap_remove(strmap_t *m, const char *key);         /* returns the old value */

#define STRMAP_FOREACH(m, e)                                                                       \
    for (size_t strmap__i = 0; strmap__i < (m)->nbuckets; strmap__i++)                             \
        for (strmap_entry_t *e = (m)->buckets[strmap__i], *strmap__n = e ? e->next : NULL; e;      \
             e = strmap__n, strmap__n = e ? e->next : NULL)

#endif
