/* String-keyed hash map (server/core/strmap.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "hearth/error.h"
#include "core/strmap.h"

uint64_t strmap_stable_hash(const char *s)
{
    uint64_t h = 14695981039346656037ULL; /* FNV-1a 64 offset basis */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

/* ---- SipHash-2-4 (Aumasson and Bernstein), keyed per process ---- */

static uint64_t sip_key[2];
static uv_once_t sip_once = UV_ONCE_INIT;

static void sip_seed(void)
{
    /* getrandom blocks only before the kernel's pool is initialised, long before a server
     * starts; on failure the time and address space layout are better than a constant. */
    if (uv_random(NULL, NULL, sip_key, sizeof(sip_key), 0, NULL) != 0) {
        sip_key[0] = (uint64_t)uv_hrtime() ^ (uintptr_t)&sip_key;
        sip_key[1] = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ULL ^ (uintptr_t)&sip_once;
    }
}

#define ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND(v0, v1, v2, v3)                                                                   \
    do {                                                                                           \
        v0 += v1, v1 = ROTL(v1, 13), v1 ^= v0, v0 = ROTL(v0, 32);                                  \
        v2 += v3, v3 = ROTL(v3, 16), v3 ^= v2;                                                     \
        v0 += v3, v3 = ROTL(v3, 21), v3 ^= v0;                                                     \
        v2 += v1, v1 = ROTL(v1, 17), v1 ^= v2, v2 = ROTL(v2, 32);                                  \
    } while (0)

uint64_t strmap__siphash(const uint64_t key[2], const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t v0 = key[0] ^ 0x736f6d6570736575ULL, v1 = key[1] ^ 0x646f72616e646f6dULL;
    uint64_t v2 = key[0] ^ 0x6c7967656e657261ULL, v3 = key[1] ^ 0x7465646279746573ULL;
    uint64_t m;
    size_t left = len;
    for (; left >= 8; p += 8, left -= 8) {
        memcpy(&m, p, 8); /* the hash is defined little-endian; these machines are */
        v3 ^= m;
        SIPROUND(v0, v1, v2, v3);
        SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    uint64_t b = (uint64_t)len << 56;
    for (size_t i = 0; i < left; i++)
        b |= (uint64_t)p[i] << (8 * i);
    v3 ^= b;
    SIPROUND(v0, v1, v2, v3);
    SIPROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    for (int i = 0; i < 4; i++)
        SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t strmap_hash(const char *s)
{
    uv_once(&sip_once, sip_seed);
    return strmap__siphash(sip_key, s, strlen(s));
}

/* Buckets are made by the first put and go with the last remove: most maps (a user's directed
 * presences, a session's module state) stay empty, and thousands of idle ones would each hold
 * 128 bytes of empty buckets. */
#define STRMAP_FIRST_BUCKETS 16

int strmap_init(strmap_t *m)
{
    m->buckets = NULL;
    m->nbuckets = 0;
    m->count = 0;
    return 0;
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
    if (!m->buckets)
        return NULL; /* a map never initialised (zeroed) is empty */
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
    if (!m->buckets) {
        if (!(m->buckets = calloc(STRMAP_FIRST_BUCKETS, sizeof(*m->buckets))))
            return HEARTH_ENOMEM;
        m->nbuckets = STRMAP_FIRST_BUCKETS;
    }
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
    if (!m->buckets)
        return NULL;
    strmap_entry_t **pp = find(m, key, strmap_hash(key));
    strmap_entry_t *e = *pp;
    if (!e)
        return NULL;
    *pp = e->next;
    void *v = e->value;
    free(e);
    if (--m->count == 0)
        strmap_free(m);
    return v;
}
