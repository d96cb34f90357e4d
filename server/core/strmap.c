/* String-keyed hash map (server/core/strmap.h). */
#include <stdlib.h>
#include <string.h>

#include "hearth/error.h"
#include "core/strmap.h"

uint64_t strmap_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 offset basis */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

int strmap_init(strmap_t *m)
{
    m->nbuckets = 16;
    m->count = 0;
    m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
    return m->buckets ? 0 : HEARTH_ENOMEM;
}

void strmap_free(strmap_t *m)
{
    if (!m->buckets)
        return;
    for (size_t i = 0; i < m->nbuckets; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e) {
            strmap_entry_t *n = e->next;
            free(e);
            e = n;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->count = m->nbuckets = 0;
}

static strmap_entry_t **find(const strmap_t *m, const char *key, uint64_t h)
{
    strmap_entry_t **pp = &m->buckets[h & (m->nbuckets - 1)];
    while (*pp && ((*pp)->hash != h || strcmp((*pp)->key, key) != 0))
        pp = &(*pp)->next;
    return pp;
}

void *strmap_get(const strmap_t *m, const char *key)
{
    strmap_entry_t **pp = find(m, key, strmap_hash(key));
    return *pp ? (*pp)->value : NULL;
}

static void grow(strmap_t *m)
{
    size_t n = m->nbuckets * 2;
    strmap_entry_t **b = calloc(n, sizeof(*b));
    if (!b)
        return; /* keep the longer chains: still correct */
    for (size_t i = 0; i < m->nbuckets; i++) {
        strmap_entry_t *e = m->buckets[i];
        while (e) {
            strmap_entry_t *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

int strmap_put(strmap_t *m, const char *key, void *value)
{
    uint64_t h = strmap_hash(key);
    strmap_entry_t **pp = find(m, key, h);
    if (*pp) {
        (*pp)->value = value;
        return 0;
    }
    size_t klen = strlen(key);
    strmap_entry_t *e = malloc(sizeof(*e) + klen + 1);
    if (!e)
        return HEARTH_ENOMEM;
    memcpy(e->key, key, klen + 1);
    e->hash = h;
    e->value = value;
    e->next = NULL;
    *pp = e;
    if (++m->count > m->nbuckets * 2)
        grow(m);
    return 0;
}

void *strmap_remove(strmap_t *m, const char *key)
{
    strmap_entry_t **pp = find(m, key, strmap_hash(key));
    strmap_entry_t *e = *pp;
    if (!e)
        return NULL;
    *pp = e->next;
    void *v = e->value;
    free(e);
    m->count--;
    return v;
}
