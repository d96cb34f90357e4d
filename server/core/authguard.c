/* Token buckets of failed logins (core/authguard.h): one table for the whole server, keyed by
 * address, by (address, account) and by account, under one mutex held for a lookup and a few
 * additions, never across I/O. Least recently used entries go first when the table is full. */
#include "core/authguard.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <uv.h>

#include "core/strmap.h"

/* "i" + an address (at most 45 characters for IPv6 text), or "p"/"a" + 32 hex digits of a
 * SHA-256 over the name: account names run to 1023 bytes and must not size the table. */
#define KEY_MAX 48
#define NS_PER_MIN 60e9

typedef struct entry {
    struct entry *newer, *older; /* the LRU list */
    double tokens;               /* failures still allowed; at most the bucket's burst */
    uint64_t last_ns;            /* when tokens was brought up to date */
    bool throttled;              /* said so in the log; cleared when a token is back */
    char key[KEY_MAX];
} entry_t;

struct authguard {
    authguard_limits_t lim;
    uv_mutex_t lock; /* guards everything below: lookups and arithmetic, no I/O */
    strmap_t map;    /* key -> entry_t */
    entry_t *newest, *oldest;
};

/* What one attempt took from each bucket, to give back when nothing was learnt. */
struct authguard_ticket {
    char key[3][KEY_MAX]; /* address, pair, account; "" when not counted */
    double taken[3];
};

enum { B_IP, B_PAIR, B_ACCOUNT };

authguard_t *authguard_new(const authguard_limits_t *lim)
{
    authguard_t *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->lim = *lim;
    if (strmap_init(&g->map) || uv_mutex_init(&g->lock)) {
        strmap_free(&g->map);
        free(g);
        return NULL;
    }
    return g;
}

void authguard_free(authguard_t *g)
{
    if (!g)
        return;
    STRMAP_FOREACH(&g->map, e)
    {
        free(e->value);
    }
    strmap_free(&g->map);
    uv_mutex_destroy(&g->lock);
    free(g);
}

static void hashed_key(char out[KEY_MAX], char kind, const char *a, const char *b)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char d[32];
    unsigned int dl = 0;
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(ctx, a, strlen(a) + 1) &&
             (!b || EVP_DigestUpdate(ctx, b, strlen(b))) && EVP_DigestFinal_ex(ctx, d, &dl);
    EVP_MD_CTX_free(ctx);
    out[0] = kind;
    if (!ok) /* no digest: fall back to the 64-bit map hash, good enough to keep counting */
        snprintf(out + 1, KEY_MAX - 1, "%016llx",
                 (unsigned long long)(strmap_hash(a) ^ (b ? strmap_hash(b) * 31 : 0)));
    else
        for (int i = 0; i < 16; i++)
            snprintf(out + 1 + 2 * i, 3, "%02x", d[i]);
}

static void lru_unlink(authguard_t *g, entry_t *e)
{
    if (e->newer)
        e->newer->older = e->older;
    else
        g->newest = e->older;
    if (e->older)
        e->older->newer = e->newer;
    else
        g->oldest = e->newer;
    e->newer = e->older = NULL;
}

static void lru_push(authguard_t *g, entry_t *e)
{
    e->older = g->newest;
    e->newer = NULL;
    if (g->newest)
        g->newest->newer = e;
    g->newest = e;
    if (!g->oldest)
        g->oldest = e;
}

/* The entry for key with its tokens brought up to now, created full; NULL on ENOMEM. */
static entry_t *touch(authguard_t *g, const char *key, unsigned burst, unsigned per_min,
                      uint64_t now)
{
    entry_t *e = strmap_get(&g->map, key);
    if (e) {
        lru_unlink(g, e);
        double regained = now > e->last_ns ? (double)(now - e->last_ns) * per_min / NS_PER_MIN : 0;
        e->tokens += regained;
        if (e->tokens > burst)
            e->tokens = burst;
        e->last_ns = now;
        if (e->tokens >= 1)
            e->throttled = false;
        lru_push(g, e);
        return e;
    }
    if (g->map.count >= AUTHGUARD_MAX_ENTRIES && g->oldest) {
        entry_t *old = g->oldest;
        lru_unlink(g, old);
        strmap_remove(&g->map, old->key);
        free(old);
    }
    e = calloc(1, sizeof(*e));
    if (!e)
        return NULL;
    snprintf(e->key, sizeof(e->key), "%s", key);
    e->tokens = burst;
    e->last_ns = now;
    if (strmap_put(&g->map, e->key, e)) {
        free(e);
        return NULL;
    }
    lru_push(g, e);
    return e;
}

/* Marks e throttled; true the first time since it last had a token. */
static bool mark(entry_t *e)
{
    bool newly = !e->throttled;
    e->throttled = true;
    return newly;
}

int authguard__begin(authguard_t *g, const char *ip, const char *account,
                     authguard_ticket_t **ticket, authguard_verdict_t *v)
{
    return authguard__begin_at(g, uv_hrtime(), ip, account, ticket, v);
}

size_t authguard__size(authguard_t *g)
{
    uv_mutex_lock(&g->lock);
    size_t n = g->map.count;
    uv_mutex_unlock(&g->lock);
    return n;
}

int authguard__begin_at(authguard_t *g, uint64_t now, const char *ip, const char *account,
                        authguard_ticket_t **ticket, authguard_verdict_t *v)
{
    *ticket = NULL;
    v->delay_ms = 0;
    v->newly_throttled = NULL;
    const authguard_limits_t *lim = &g->lim;
    authguard_ticket_t *t = calloc(1, sizeof(*t));
    if (!t)
        return HEARTH_ENOMEM;
    if (lim->ip_burst)
        snprintf(t->key[B_IP], KEY_MAX, "i%s", ip);
    if (account && lim->pair_burst)
        hashed_key(t->key[B_PAIR], 'p', ip, account);
    if (account && lim->account_burst)
        hashed_key(t->key[B_ACCOUNT], 'a', account, NULL);
    unsigned burst[3] = {lim->ip_burst, lim->pair_burst, lim->account_burst};
    unsigned rate[3] = {lim->ip_per_min, lim->pair_per_min, lim->account_per_min};
    static const char *const names[3] = {"address", "address and account", "account"};

    entry_t *e[3] = {NULL, NULL, NULL};
    int rc = 0;
    uv_mutex_lock(&g->lock);
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (!t->key[i][0])
            continue;
        e[i] = touch(g, t->key[i], burst[i], rate[i], now);
        if (!e[i]) {
            rc = HEARTH_ENOMEM;
        } else if (e[i]->tokens < 1 && i != B_ACCOUNT) {
            if (mark(e[i]))
                v->newly_throttled = names[i];
            rc = HEARTH_ELIMIT;
        }
    }
    if (rc == 0) {
        for (int i = 0; i < 3; i++) {
            if (!e[i])
                continue;
            if (i == B_ACCOUNT && e[i]->tokens < 1) {
                /* Over the account's budget: slow everyone down, refuse no one. What is left
                 * of a token is still taken, so that the attack keeps it empty. */
                v->delay_ms = lim->account_delay_ms;
                if (mark(e[i]))
                    v->newly_throttled = names[i];
            }
            t->taken[i] = e[i]->tokens < 1 ? e[i]->tokens : 1;
            e[i]->tokens -= t->taken[i];
        }
    }
    uv_mutex_unlock(&g->lock);
    if (rc) {
        free(t);
        return rc;
    }
    *ticket = t;
    return 0;
}

void authguard__end(authguard_t *g, authguard_ticket_t *t, authguard_outcome_t outcome)
{
    if (!t)
        return;
    if (outcome != AUTHGUARD_FAILED) {
        unsigned burst[3] = {g->lim.ip_burst, g->lim.pair_burst, g->lim.account_burst};
        uv_mutex_lock(&g->lock);
        for (int i = 0; i < 3; i++) {
            if (!t->key[i][0])
                continue;
            entry_t *e = strmap_get(&g->map, t->key[i]); /* may have been evicted meanwhile */
            if (!e)
                continue;
            e->tokens += t->taken[i];
            if (outcome == AUTHGUARD_SUCCEEDED && i == B_PAIR)
                e->tokens = burst[i]; /* the owner, or someone who knows the password anyway */
            if (e->tokens > burst[i])
                e->tokens = burst[i];
            if (e->tokens >= 1)
                e->throttled = false;
        }
        uv_mutex_unlock(&g->lock);
    }
    free(t);
}
