/* Bump allocator for one stanza's tree (include/hearth/xml.h): chunks freed all at once.
 * The first chunk survives a reset so a connection's steady state does no malloc per stanza;
 * a release gives it back too (an idle stream holds none), and the next allocation makes it
 * again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/xml.h"

#define ARENA_DEFAULT_CHUNK 4096
#define ARENA_ALIGN 16

struct chunk {
    struct chunk *next;
    size_t cap; /* bytes usable in data, alignment slack included */
    size_t used;
    char data[];
};

struct hearth_arena {
    struct chunk *first; /* kept by reset; NULL after a release */
    struct chunk *cur;   /* bump allocations come from here (NULL with first) */
    size_t chunk_size;
};

static struct chunk *chunk_new(size_t cap)
{
    if (cap > SIZE_MAX - sizeof(struct chunk))
        return NULL;
    struct chunk *c = malloc(sizeof(*c) + cap);
    if (!c)
        return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

/* Aligned pointer for n bytes in c, or NULL when it does not fit. */
static void *chunk_take(struct chunk *c, size_t n)
{
    uintptr_t base = (uintptr_t)c->data;
    uintptr_t p = (base + c->used + (ARENA_ALIGN - 1)) & ~(uintptr_t)(ARENA_ALIGN - 1);
    size_t off = (size_t)(p - base);
    if (off > c->cap || c->cap - off < n)
        return NULL;
    c->used = off + n;
    return (void *)p;
}

hearth_arena_t *hearth_arena_new(size_t chunk_size)
{
    if (chunk_size == 0)
        chunk_size = ARENA_DEFAULT_CHUNK;
    if (chunk_size < 64)
        chunk_size = 64;
    hearth_arena_t *a = malloc(sizeof(*a));
    if (!a)
        return NULL;
    a->chunk_size = chunk_size;
    a->first = a->cur = chunk_new(chunk_size);
    if (!a->first) {
        free(a);
        return NULL;
    }
    return a;
}

void *hearth_arena_alloc(hearth_arena_t *a, size_t n)
{
    if (n > SIZE_MAX / 2)
        return NULL;
    if (!a->first && !(a->first = a->cur = chunk_new(a->chunk_size)))
        return NULL;
    void *p = chunk_take(a->cur, n);
    if (p)
        return p;
    if (n + ARENA_ALIGN > a->chunk_size / 4) {
        /* Large: a chunk of its own, linked after cur so cur keeps serving small requests. */
        struct chunk *c = chunk_new(n + ARENA_ALIGN);
        if (!c)
            return NULL;
        c->next = a->cur->next;
        a->cur->next = c;
        return chunk_take(c, n);
    }
    struct chunk *c = chunk_new(a->chunk_size);
    if (!c)
        return NULL;
    /* Insert after cur (large chunks may already follow it). */
    c->next = a->cur->next;
    a->cur->next = c;
    a->cur = c;
    return chunk_take(c, n);
}

char *hearth_arena_strndup(hearth_arena_t *a, const char *s, size_t n)
{
    char *p = hearth_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *hearth_arena_strdup(hearth_arena_t *a, const char *s)
{
    return hearth_arena_strndup(a, s, strlen(s));
}

void hearth_arena_reset(hearth_arena_t *a)
{
    if (!a->first)
        return;
    struct chunk *c = a->first->next;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    a->first->next = NULL;
    a->first->used = 0;
    a->cur = a->first;
}

void hearth_arena_release(hearth_arena_t *a)
{
    hearth_arena_reset(a);
    free(a->first);
    a->first = a->cur = NULL;
}

void hearth_arena_free(hearth_arena_t *a)
{
    if (!a)
        return;
    hearth_arena_reset(a);
    free(a->first);
    free(a);
}
