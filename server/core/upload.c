/* The XEP-0363 file store's index and layout (core/upload.h): records by id, bytes by owner,
 * one lock held only for lookups and updates. Files live flat under <data-dir>/upload/ named by
 * their random id, so no name a user chose ever reaches a path; each has a small text record
 * beside it ("<id>.meta") from which the index is rebuilt at start-up. */
#include "core/upload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "hearth/error.h"
#include "core/log.h"
#include "core/strmap.h"

#define UPLOAD_PATH_MAX 4096

typedef struct rec {
    char id[UPLOAD_ID_LEN + 1];
    char *owner, *name, *ctype;
    uint64_t size;
    int64_t created;
    upload_state_t state;
} rec_t;

static uv_mutex_t lock; /* guards recs, used: lookups and updates only, never I/O */
static strmap_t recs;   /* id -> rec_t */
static strmap_t used;   /* owner -> uint64_t * bytes held */
static char *dir;       /* <data-dir>/upload */
static unsigned char key[64];
static size_t key_len;
static upload_limits_t limits;
static int ready;

const upload_limits_t *upload__limits(void)
{
    return &limits;
}

int upload__path(const char *id, const char *suffix, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s%s", dir, id, suffix);
    return n < 0 || (size_t)n >= len ? HEARTH_ELIMIT : 0;
}

int upload__id_ok(const char *s, size_t len)
{
    if (len != UPLOAD_ID_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

void upload__token(const char *id, char out[UPLOAD_TOKEN_LEN + 1])
{
    /* Distinct from the URL's secret: whoever is given the GET URL (the same path) cannot
     * PUT, nor can anyone once the server secret is unknown to them. */
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    char msg[UPLOAD_ID_LEN + 16];
    int n = snprintf(msg, sizeof(msg), "upload-put:%s", id);
    if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, (size_t)n, mac,
              &mac_len) ||
        mac_len != UPLOAD_TOKEN_LEN / 2) {
        memset(out, 0, UPLOAD_TOKEN_LEN + 1); /* matches no token a client can send */
        return;
    }
    hex(mac, mac_len, out);
}

/* ---- the index (lock held) ---- */

static void used_add(const char *owner, int64_t delta)
{
    uint64_t *u = strmap_get(&used, owner);
    if (!u) {
        if (delta <= 0 || !(u = calloc(1, sizeof(*u))) || strmap_put(&used, owner, u)) {
            free(u);
            return;
        }
    }
    *u = delta < 0 && (uint64_t)-delta > *u ? 0 : *u + (uint64_t)delta;
    if (!*u) {
        strmap_remove(&used, owner);
        free(u);
    }
}

static void rec_free(rec_t *r)
{
    free(r->owner);
    free(r->name);
    free(r->ctype);
    free(r);
}

static rec_t *rec_new(const char *id, const char *owner, const char *name, const char *ctype,
                      uint64_t size, int64_t created, upload_state_t state)
{
    rec_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    snprintf(r->id, sizeof(r->id), "%s", id);
    r->owner = strdup(owner);
    r->name = strdup(name);
    r->ctype = strdup(ctype);
    r->size = size;
    r->created = created;
    r->state = state;
    if (!r->owner || !r->name || !r->ctype) {
        rec_free(r);
        return NULL;
    }
    return r;
}

static int rec_add(rec_t *r)
{
    if (recs.count >= UPLOAD_FILES_MAX || strmap_put(&recs, r->id, r))
        return HEARTH_ELIMIT;
    used_add(r->owner, (int64_t)r->size);
    return 0;
}

static void rec_remove(rec_t *r)
{
    used_add(r->owner, -(int64_t)r->size);
    strmap_remove(&recs, r->id);
    rec_free(r);
}

static void info_of(const rec_t *r, upload_info_t *out)
{
    memcpy(out->id, r->id, sizeof(out->id));
    snprintf(out->owner, sizeof(out->owner), "%s", r->owner);
    snprintf(out->name, sizeof(out->name), "%s", r->name);
    snprintf(out->ctype, sizeof(out->ctype), "%s", r->ctype);
    out->size = r->size;
    out->created = r->created;
    out->state = r->state;
}

static int expired(const rec_t *r, int64_t now)
{
    if (r->state == UPLOAD_PENDING)
        return now > r->created + (int64_t)limits.slot_ttl;
    if (r->state == UPLOAD_STORED && limits.expire_days)
        return now > r->created + (int64_t)limits.expire_days * 86400;
    return 0;
}

/* ---- slots and files ---- */

int upload__slot_new(const char *owner, const char *name, const char *ctype, uint64_t size,
                     int64_t now, char id_out[UPLOAD_ID_LEN + 1])
{
    unsigned char rnd[UPLOAD_ID_LEN / 2];
    if (uv_random(NULL, NULL, rnd, sizeof(rnd), 0, NULL))
        return HEARTH_EIO;
    hex(rnd, sizeof(rnd), id_out);
    rec_t *r = rec_new(id_out, owner, name, ctype, size, now, UPLOAD_PENDING);
    if (!r)
        return HEARTH_ENOMEM;
    uv_mutex_lock(&lock);
    uint64_t *u = strmap_get(&used, owner);
    int rc = limits.quota && (u ? *u : 0) + size > limits.quota ? HEARTH_ELIMIT : rec_add(r);
    uv_mutex_unlock(&lock);
    if (rc)
        rec_free(r);
    return rc;
}

int upload__claim(const char *id, int64_t now, upload_info_t *out)
{
    uv_mutex_lock(&lock);
    rec_t *r = strmap_get(&recs, id);
    int rc = 0;
    if (!r)
        rc = HEARTH_ENOTFOUND;
    else if (r->state != UPLOAD_PENDING)
        rc = HEARTH_EEXISTS;
    else if (expired(r, now))
        rc = HEARTH_ETIMEOUT;
    else {
        r->state = UPLOAD_WRITING;
        info_of(r, out);
    }
    uv_mutex_unlock(&lock);
    return rc;
}

void upload__claim_end(const char *id, int stored, int64_t now)
{
    uv_mutex_lock(&lock);
    rec_t *r = strmap_get(&recs, id);
    if (r && r->state == UPLOAD_WRITING) {
        r->state = stored ? UPLOAD_STORED : UPLOAD_PENDING;
        if (stored)
            r->created = now;
    }
    uv_mutex_unlock(&lock);
}

int upload__get(const char *id, int64_t now, upload_info_t *out)
{
    uv_mutex_lock(&lock);
    rec_t *r = strmap_get(&recs, id);
    int rc = r && r->state == UPLOAD_STORED && !expired(r, now) ? 0 : HEARTH_ENOTFOUND;
    if (!rc)
        info_of(r, out);
    uv_mutex_unlock(&lock);
    return rc;
}

size_t upload__take(const char *owner, int64_t now, char (*ids)[UPLOAD_ID_LEN + 1], size_t max,
                    int *more)
{
    size_t n = 0;
    *more = 0;
    uv_mutex_lock(&lock);
    /* Collected first: removing while walking the map would skip entries. */
    rec_t **gone = calloc(recs.count ? recs.count : 1, sizeof(*gone));
    size_t ngone = 0;
    if (gone) {
        STRMAP_FOREACH(&recs, e)
        {
            rec_t *r = e->value;
            int take =
                owner ? !strcmp(r->owner, owner) && r->state != UPLOAD_WRITING : expired(r, now);
            if (!take)
                continue;
            if (r->state == UPLOAD_STORED) {
                if (n == max) {
                    *more = 1;
                    continue;
                }
                memcpy(ids[n++], r->id, UPLOAD_ID_LEN + 1);
            }
            gone[ngone++] = r;
        }
        for (size_t i = 0; i < ngone; i++)
            rec_remove(gone[i]);
    }
    uv_mutex_unlock(&lock);
    free(gone);
    return n;
}

char **upload__owners(size_t *n)
{
    *n = 0;
    uv_mutex_lock(&lock);
    char **v = used.count ? calloc(used.count, sizeof(*v)) : NULL;
    if (v) {
        STRMAP_FOREACH(&used, e)
        {
            if ((v[*n] = strdup(e->key)))
                (*n)++;
        }
    }
    uv_mutex_unlock(&lock);
    return v;
}

uint64_t upload__used(const char *owner)
{
    uv_mutex_lock(&lock);
    uint64_t *u = strmap_get(&used, owner);
    uint64_t n = u ? *u : 0;
    uv_mutex_unlock(&lock);
    return n;
}

/* ---- records on disk ---- */

int upload__write_meta(const char *path, const upload_info_t *info)
{
    char tmp[UPLOAD_PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return HEARTH_EIO;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return HEARTH_EIO;
    /* One field a line; name and type hold no control character (checked at the slot). */
    fprintf(f, "hearth-upload 1\nowner %s\nsize %llu\ncreated %lld\ntype %s\nname %s\n",
            info->owner, (unsigned long long)info->size, (long long)info->created, info->ctype,
            info->name);
    int rc = fflush(f) || fsync(fileno(f)) ? HEARTH_EIO : 0;
    if (fclose(f))
        rc = HEARTH_EIO;
    if (!rc && rename(tmp, path))
        rc = HEARTH_EIO;
    if (rc)
        unlink(tmp);
    return rc;
}

static void field_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Reads one record file into the index; 0, or an error (the caller removes the files). */
static int read_meta(const char *id, const char *path, const char *data_path, int64_t now)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return HEARTH_EIO;
    char line[UPLOAD_OWNER_MAX + 64];
    char owner[UPLOAD_OWNER_MAX + 1] = "", name[UPLOAD_NAME_MAX + 1] = "",
                                  ctype[UPLOAD_TYPE_MAX + 1] = "";
    unsigned long long size = 0;
    long long created = 0;
    int version = 0;
    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strncmp(line, "hearth-upload ", 14))
            version = atoi(line + 14);
        else if (!strncmp(line, "owner ", 6))
            field_copy(owner, sizeof(owner), line + 6);
        else if (!strncmp(line, "size ", 5))
            size = strtoull(line + 5, NULL, 10);
        else if (!strncmp(line, "created ", 8))
            created = strtoll(line + 8, NULL, 10);
        else if (!strncmp(line, "type ", 5))
            field_copy(ctype, sizeof(ctype), line + 5);
        else if (!strncmp(line, "name ", 5))
            field_copy(name, sizeof(name), line + 5);
    }
    fclose(f);
    struct stat st;
    if (version != 1 || !*owner || !*name || stat(data_path, &st) || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size != size)
        return HEARTH_EINVAL;
    rec_t *r = rec_new(id, owner, name, ctype, size, created, UPLOAD_STORED);
    if (!r)
        return HEARTH_ENOMEM;
    if (expired(r, now) || rec_add(r)) {
        rec_free(r);
        return HEARTH_ELIMIT;
    }
    return 0;
}

/* Start-up: the index from the records; whatever is not a complete, current upload goes. */
static int scan(int64_t now)
{
    DIR *d = opendir(dir);
    if (!d)
        return HEARTH_EIO;
    struct dirent *e;
    size_t kept = 0, dropped = 0;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (n[0] == '.')
            continue;
        size_t len = strlen(n);
        char path[UPLOAD_PATH_MAX], data[UPLOAD_PATH_MAX];
        if (snprintf(path, sizeof(path), "%s/%s", dir, n) >= (int)sizeof(path))
            continue;
        if (len == UPLOAD_ID_LEN && upload__id_ok(n, len))
            continue; /* a file's bytes: kept with its record, removed below without one */
        if (len == UPLOAD_ID_LEN + 5 && upload__id_ok(n, UPLOAD_ID_LEN) &&
            !strcmp(n + UPLOAD_ID_LEN, ".meta")) {
            char id[UPLOAD_ID_LEN + 1];
            memcpy(id, n, UPLOAD_ID_LEN);
            id[UPLOAD_ID_LEN] = '\0';
            if (upload__path(id, "", data, sizeof(data)))
                continue;
            if (read_meta(id, path, data, now) == 0) {
                kept++;
                continue;
            }
            unlink(data);
        }
        unlink(path); /* an unfinished upload (.part), a stale record, a temporary file */
        dropped++;
    }
    /* Bytes without a record (a crash between the two renames, or a record dropped above). */
    rewinddir(d);
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len != UPLOAD_ID_LEN || !upload__id_ok(e->d_name, len) || strmap_get(&recs, e->d_name))
            continue;
        char path[UPLOAD_PATH_MAX];
        if (upload__path(e->d_name, "", path, sizeof(path)) == 0 && !unlink(path))
            dropped++;
    }
    closedir(d);
    hlog(LOG_INFO, "upload: %zu files kept in %s, %zu leftovers removed", kept, dir, dropped);
    return 0;
}

int upload__init(const char *data_dir, const unsigned char *secret, size_t secret_len,
                 const upload_limits_t *lim)
{
    limits = *lim;
    key_len = secret_len < sizeof(key) ? secret_len : sizeof(key);
    memcpy(key, secret, key_len);
    if (asprintf(&dir, "%s/upload", data_dir) < 0) {
        dir = NULL;
        return HEARTH_ENOMEM;
    }
    if (mkdir(dir, 0700) && errno != EEXIST) {
        hlog(LOG_ERROR, "upload: cannot create %s: %s", dir, strerror(errno));
        return HEARTH_EIO;
    }
    if (uv_mutex_init(&lock))
        return HEARTH_ENOMEM;
    ready = 1;
    if (strmap_init(&recs) || strmap_init(&used))
        return HEARTH_ENOMEM;
    return scan((int64_t)time(NULL));
}

void upload__free(void)
{
    if (!ready)
        return;
    STRMAP_FOREACH(&recs, e)
    {
        rec_free(e->value);
    }
    STRMAP_FOREACH(&used, e)
    {
        free(e->value);
    }
    strmap_free(&recs);
    strmap_free(&used);
    uv_mutex_destroy(&lock);
    free(dir);
    dir = NULL;
    ready = 0;
}
