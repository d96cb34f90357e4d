/* hearth-bench's SCRAM salted passwords: one table for every worker's context (the
 * scram_lookup/scram_store hooks of hearth_ctx_config_t, under a mutex), optionally loaded
 * from and saved to a file (--scram-cache) so that a run against accounts seen before pays no
 * PBKDF2 at all: servers salt each account differently, so without it every first login costs
 * the generator about 1 ms of CPU. The file holds password equivalents for that server: it is
 * written with mode 0600, and an entry counts only for the password it was made with. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "bench.h"

#define MAX_SALT 64 /* longer salts are not cached (none seen in the field) */
#define TAG_LEN 8   /* bytes of SHA-256(salt || password) that tie an entry to a password */
#define FILE_MAGIC "hbsc1"
#define MAX_ENTRIES (4u << 20) /* the table stops growing here; lookups still work */

typedef struct entry {
    unsigned char used;
    unsigned char sha1; /* 1: SHA-1, 0: SHA-256 */
    unsigned char salt_len;
    unsigned iterations;
    unsigned char salt[MAX_SALT];
    unsigned char tag[TAG_LEN];
    unsigned char salted[32];
} entry_t;

static struct {
    pthread_mutex_t lock;
    entry_t *slot;
    size_t cap, n; /* cap: a power of two, at most half full */
    int dirty;
    unsigned long hits, misses;
} T = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t hash_of(int sha1, const unsigned char *salt, size_t len, unsigned iterations)
{
    uint64_t h = 1469598103934665603ULL ^ (uint64_t)sha1 ^ ((uint64_t)iterations << 8);
    for (size_t i = 0; i < len; i++)
        h = (h ^ salt[i]) * 1099511628211ULL;
    return h;
}

static entry_t *find(int sha1, const unsigned char *salt, size_t len, unsigned iterations)
{
    if (!T.cap)
        return NULL;
    for (size_t i = hash_of(sha1, salt, len, iterations) & (T.cap - 1);;
         i = (i + 1) & (T.cap - 1)) {
        entry_t *e = &T.slot[i];
        if (!e->used)
            return e;
        if (e->sha1 == sha1 && e->iterations == iterations && e->salt_len == len &&
            !memcmp(e->salt, salt, len))
            return e;
    }
}

static int grow(void)
{
    size_t cap = T.cap ? T.cap * 2 : 1024;
    entry_t *old = T.slot, *slot = calloc(cap, sizeof(*slot));
    if (!slot)
        return -1;
    size_t old_cap = T.cap;
    T.slot = slot;
    T.cap = cap;
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].used)
            *find(old[i].sha1, old[i].salt, old[i].salt_len, old[i].iterations) = old[i];
    if (old) {
        OPENSSL_cleanse(old, old_cap * sizeof(*old));
        free(old);
    }
    return 0;
}

static void tag_of(const unsigned char *salt, size_t len, const char *password,
                   unsigned char tag[TAG_LEN])
{
    unsigned char d[32];
    unsigned int n = 0;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    if (!m || !EVP_DigestInit_ex(m, EVP_sha256(), NULL) || !EVP_DigestUpdate(m, salt, len) ||
        !EVP_DigestUpdate(m, password, strlen(password)) || !EVP_DigestFinal_ex(m, d, &n))
        memset(d, 0, sizeof(d)); /* a tag that matches nothing useful: a miss, never a wrong hit */
    EVP_MD_CTX_free(m);
    memcpy(tag, d, TAG_LEN);
}

/* Inserts or replaces; the lock is held. */
static void put(int sha1, const unsigned char *salt, size_t len, unsigned iterations,
                const unsigned char tag[TAG_LEN], const unsigned char *salted)
{
    if (len > MAX_SALT)
        return;
    if ((T.n + 1) * 2 > T.cap && (T.n >= MAX_ENTRIES || grow() != 0))
        return;
    entry_t *e = find(sha1, salt, len, iterations);
    if (!e->used)
        T.n++;
    e->used = 1;
    e->sha1 = (unsigned char)sha1;
    e->salt_len = (unsigned char)len;
    e->iterations = iterations;
    memcpy(e->salt, salt, len);
    memcpy(e->tag, tag, TAG_LEN);
    memcpy(e->salted, salted, sha1 ? 20 : 32);
    T.dirty = 1;
}

int scram_cache_lookup(void *ud, const hearth_scram_key_t *key, unsigned char *salted)
{
    int sha1 = !strcmp(key->hash, "SHA-1");
    if (key->salt_len > MAX_SALT)
        return 0;
    unsigned char tag[TAG_LEN];
    tag_of(key->salt, key->salt_len, key->password, tag);
    pthread_mutex_lock(&T.lock);
    entry_t *e = find(sha1, key->salt, key->salt_len, key->iterations);
    int hit = e && e->used && !CRYPTO_memcmp(e->tag, tag, TAG_LEN);
    if (hit)
        memcpy(salted, e->salted, key->salted_len);
    hit ? T.hits++ : T.misses++;
    pthread_mutex_unlock(&T.lock);
    return hit;
}

void scram_cache_store(void *ud, const hearth_scram_key_t *key, const unsigned char *salted)
{
    unsigned char tag[TAG_LEN];
    tag_of(key->salt, key->salt_len, key->password, tag);
    pthread_mutex_lock(&T.lock);
    put(!strcmp(key->hash, "SHA-1"), key->salt, key->salt_len, key->iterations, tag, salted);
    pthread_mutex_unlock(&T.lock);
}

void scram_cache_stats(unsigned long *hits, unsigned long *misses, size_t *entries)
{
    pthread_mutex_lock(&T.lock);
    *hits = T.hits;
    *misses = T.misses;
    *entries = T.n;
    pthread_mutex_unlock(&T.lock);
}

/* ---- the file: "hbsc1 SHA-256 ITER SALT_HEX TAG_HEX SALTED_HEX" per line ---- */

static int unhex(const char *s, unsigned char *out, size_t max, size_t *len)
{
    size_t n = strlen(s);
    if (n % 2 || n / 2 > max)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    *len = n / 2;
    return 0;
}

static void hex(FILE *f, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", p[i]);
}

/* 0 (a missing file is an empty cache), or -1 with a message on stderr. */
int scram_cache_load(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return errno == ENOENT ? 0 : (perror(path), -1);
    /* each buffer holds its sscanf width plus the NUL */
    char line[512], hash[16], salt_hex[2 * MAX_SALT + 3], tag_hex[2 * TAG_LEN + 3], salted_hex[67];
    unsigned iterations;
    unsigned lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        unsigned char salt[MAX_SALT], tag[TAG_LEN], salted[32];
        size_t sl, tl, dl;
        if (sscanf(line, FILE_MAGIC " %15s %u %130s %18s %66s", hash, &iterations, salt_hex,
                   tag_hex, salted_hex) != 5 ||
            (strcmp(hash, "SHA-1") && strcmp(hash, "SHA-256")) ||
            unhex(salt_hex, salt, sizeof(salt), &sl) || unhex(tag_hex, tag, sizeof(tag), &tl) ||
            tl != TAG_LEN || unhex(salted_hex, salted, sizeof(salted), &dl) ||
            dl != (strcmp(hash, "SHA-1") ? 32u : 20u)) {
            fprintf(stderr, "hearth-bench: %s:%u: not a SCRAM cache line\n", path, lineno);
            rc = -1;
            break;
        }
        pthread_mutex_lock(&T.lock);
        put(!strcmp(hash, "SHA-1"), salt, sl, iterations, tag, salted);
        pthread_mutex_unlock(&T.lock);
        OPENSSL_cleanse(salted, sizeof(salted));
    }
    OPENSSL_cleanse(line, sizeof(line));
    OPENSSL_cleanse(salted_hex, sizeof(salted_hex));
    fclose(f);
    T.dirty = 0;
    return rc;
}

/* Writes the table when it changed: a temporary file (0600) renamed over the old. 0 or -1. */
int scram_cache_save(const char *path)
{
    if (!T.dirty)
        return 0;
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        perror(tmp);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    pthread_mutex_lock(&T.lock);
    for (size_t i = 0; i < T.cap; i++) {
        const entry_t *e = &T.slot[i];
        if (!e->used)
            continue;
        fprintf(f, FILE_MAGIC " %s %u ", e->sha1 ? "SHA-1" : "SHA-256", e->iterations);
        hex(f, e->salt, e->salt_len);
        fputc(' ', f);
        hex(f, e->tag, TAG_LEN);
        fputc(' ', f);
        hex(f, e->salted, e->sha1 ? 20 : 32);
        fputc('\n', f);
    }
    pthread_mutex_unlock(&T.lock);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        perror(path);
        unlink(tmp);
        return -1;
    }
    return 0;
}

void scram_cache_free(void)
{
    if (T.slot) {
        OPENSSL_cleanse(T.slot, T.cap * sizeof(*T.slot));
        free(T.slot);
    }
    T.slot = NULL;
    T.cap = T.n = 0;
}
