/* The client context (include/hearth/client.h): its loop (the caller's or its own), allocator,
 * logger, the once-per-iteration output flush of every connection, the shared read buffer, the
 * TLS contexts and SCRAM salted passwords its clients share, its clock, and the blocking
 * wrappers' loop runs. Touches the loop and the clients' connections, nothing global. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "hooks.h"
#include "internal.h"

/* ---- memory ---- */

static void *std_realloc(void *ud, void *p, size_t n)
{
    (void)ud;
    return realloc(p, n);
}

static void std_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

void *ctx__realloc(hearth_ctx_t *ctx, void *p, size_t n)
{
    return ctx->alloc.realloc(ctx->alloc.ud, p, n ? n : 1);
}

void *ctx__alloc(hearth_ctx_t *ctx, size_t n)
{
    return ctx__realloc(ctx, NULL, n);
}

void *ctx__calloc(hearth_ctx_t *ctx, size_t n)
{
    void *p = ctx__alloc(ctx, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void ctx__free(hearth_ctx_t *ctx, void *p)
{
    if (p)
        ctx->alloc.free(ctx->alloc.ud, p);
}

char *ctx__strdup(hearth_ctx_t *ctx, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = ctx__alloc(ctx, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* ---- clock, randomness, log ---- */

uint64_t ctx__now(const hearth_ctx_t *ctx)
{
    return (ctx->frozen ? ctx->frozen_at : uv_now(ctx->loop)) + ctx->clock_offset;
}

/* splitmix64: cheap, good enough for jitter, and reproducible when a test seeds it. */
uint64_t ctx__rand(hearth_ctx_t *ctx, uint64_t n)
{
    if (n == 0)
        return 0;
    uint64_t z = (ctx->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return z % n;
}

int ctx__log_on(const hearth_ctx_t *ctx, hearth_log_level_t level)
{
    return ctx->log && level <= ctx->log_level;
}

void ctx__log(hearth_ctx_t *ctx, const hearth_client_t *c, hearth_log_level_t level,
              const char *fmt, ...)
{
    if (!ctx__log_on(ctx, level))
        return;
    char line[1024];
    int n = 0;
    if (c)
        n = snprintf(line, sizeof(line), "[c%u %s] ", c->no,
                     c->full_jid ? c->full_jid : (c->jid.bare ? c->jid.bare : "?"));
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    ctx->log(ctx->log_ud, level, line);
}

/* ---- output: one write per connection per loop iteration ---- */

static void on_flush(uv_idle_t *h)
{
    hearth_ctx_t *ctx = h->data;
    /* Flushing may fail a connection (and unlink it); take one at a time from the head. */
    while (ctx->dirty) {
        conn_t *conn = ctx->dirty;
        ctx__unmark_dirty(ctx, conn);
        net__flush(conn);
    }
    uv_idle_stop(&ctx->flusher);
}

void ctx__mark_dirty(hearth_ctx_t *ctx, conn_t *conn)
{
    if (conn->dirty)
        return;
    conn->dirty = true;
    conn->dirty_prev = NULL;
    conn->dirty_next = ctx->dirty;
    if (ctx->dirty)
        ctx->dirty->dirty_prev = conn;
    ctx->dirty = conn;
    if (!uv_is_active((uv_handle_t *)&ctx->flusher))
        uv_idle_start(&ctx->flusher, on_flush);
}

void ctx__unmark_dirty(hearth_ctx_t *ctx, conn_t *conn)
{
    if (!conn->dirty)
        return;
    if (conn->dirty_prev)
        conn->dirty_prev->dirty_next = conn->dirty_next;
    else
        ctx->dirty = conn->dirty_next;
    if (conn->dirty_next)
        conn->dirty_next->dirty_prev = conn->dirty_prev;
    conn->dirty = false;
    conn->dirty_prev = conn->dirty_next = NULL;
}

/* ---- shared TLS contexts: one SSL_CTX (and one trust store) for every client alike ---- */

hearth_tls_ctx_t *ctx__tls(hearth_ctx_t *ctx, const char *ca_file, int no_verify, char **err)
{
    no_verify = !!no_verify;
    if (no_verify)
        ca_file = NULL;
    for (tls_entry_t *e = ctx->tls; e; e = e->next)
        if (e->no_verify == no_verify &&
            ((!e->ca_file && !ca_file) || (e->ca_file && ca_file && !strcmp(e->ca_file, ca_file))))
            return e->tls;
    tls_entry_t *e = ctx__calloc(ctx, sizeof(*e));
    if (!e || (ca_file && !(e->ca_file = ctx__strdup(ctx, ca_file)))) {
        if (e)
            ctx__free(ctx, e);
        if (err)
            *err = strdup("out of memory");
        return NULL;
    }
    e->no_verify = no_verify;
    e->tls = no_verify ? hearth_tls_ctx_new_client(NULL, err)
                       : hearth_tls_ctx_new_client_verify(ca_file, err);
    if (!e->tls) {
        ctx__free(ctx, e->ca_file);
        ctx__free(ctx, e);
        return NULL;
    }
    e->next = ctx->tls;
    ctx->tls = e;
    return e->tls;
}

/* ---- SCRAM salted passwords ---- */

static void pw_digest(const char *password, unsigned char out[32])
{
    unsigned int n = 0;
    EVP_Digest(password, strlen(password), out, &n, EVP_sha256(), NULL);
}

static scram_entry_t *scram_find(hearth_ctx_t *ctx, hearth_scram_hash_t h, const unsigned char *d,
                                 const unsigned char *salt, size_t salt_len, unsigned iterations)
{
    for (unsigned i = 0; i < ctx->scram_n; i++) {
        scram_entry_t *e = &ctx->scram[i];
        if (e->used && e->hash == h && e->iterations == iterations && e->salt_len == salt_len &&
            !memcmp(e->salt, salt, salt_len) && !CRYPTO_memcmp(e->pw_digest, d, 32))
            return e;
    }
    return NULL;
}

static hearth_scram_key_t scram_key(hearth_scram_hash_t h, const char *password,
                                    const unsigned char *salt, size_t salt_len, unsigned iterations)
{
    return (hearth_scram_key_t){
        .hash = h == HEARTH_SCRAM_SHA1 ? "SHA-1" : "SHA-256",
        .password = password,
        .salt = salt,
        .salt_len = salt_len,
        .iterations = iterations,
        .salted_len = h == HEARTH_SCRAM_SHA1 ? 20 : 32,
    };
}

static void own_put(hearth_ctx_t *ctx, hearth_scram_hash_t h, const char *password,
                    const unsigned char *salt, size_t salt_len, unsigned iterations,
                    const unsigned char *salted)
{
    if (!ctx->scram_n || salt_len > SCRAM_CLIENT_MAX_SALT)
        return;
    unsigned char d[32];
    pw_digest(password, d);
    scram_entry_t *e = scram_find(ctx, h, d, salt, salt_len, iterations);
    if (!e) {
        e = &ctx->scram[0];
        for (unsigned i = 1; i < ctx->scram_n; i++)
            if (ctx->scram[i].used < e->used)
                e = &ctx->scram[i];
    }
    OPENSSL_cleanse(e, sizeof(*e));
    e->hash = h;
    memcpy(e->pw_digest, d, 32);
    memcpy(e->salt, salt, salt_len);
    e->salt_len = salt_len;
    e->iterations = iterations;
    memcpy(e->salted, salted, h == HEARTH_SCRAM_SHA1 ? 20 : 32);
    e->used = ++ctx->scram_tick;
    OPENSSL_cleanse(d, sizeof(d));
}

int ctx__scram_get(hearth_ctx_t *ctx, hearth_scram_hash_t h, const char *password,
                   const unsigned char *salt, size_t salt_len, unsigned iterations,
                   unsigned char *salted)
{
    if (ctx->scram_n && salt_len <= SCRAM_CLIENT_MAX_SALT) {
        unsigned char d[32];
        pw_digest(password, d);
        scram_entry_t *e = scram_find(ctx, h, d, salt, salt_len, iterations);
        OPENSSL_cleanse(d, sizeof(d));
        if (e) {
            e->used = ++ctx->scram_tick;
            memcpy(salted, e->salted, h == HEARTH_SCRAM_SHA1 ? 20 : 32);
            return 1;
        }
    }
    if (!ctx->scram_lookup)
        return 0;
    hearth_scram_key_t key = scram_key(h, password, salt, salt_len, iterations);
    if (ctx->scram_lookup(ctx->scram_ud, &key, salted) != 1)
        return 0;
    own_put(ctx, h, password, salt, salt_len, iterations, salted);
    return 1;
}

void ctx__scram_put(hearth_ctx_t *ctx, hearth_scram_hash_t h, const char *password,
                    const unsigned char *salt, size_t salt_len, unsigned iterations,
                    const unsigned char *salted)
{
    own_put(ctx, h, password, salt, salt_len, iterations, salted);
    if (ctx->scram_store) {
        hearth_scram_key_t key = scram_key(h, password, salt, salt_len, iterations);
        ctx->scram_store(ctx->scram_ud, &key, salted);
    }
}

/* ---- life cycle ---- */

static void destroy(hearth_ctx_t *ctx)
{
    for (tls_entry_t *e = ctx->tls, *next; e; e = next) {
        next = e->next;
        hearth_tls_ctx_free(e->tls);
        ctx__free(ctx, e->ca_file);
        ctx__free(ctx, e);
    }
    if (ctx->scram) {
        OPENSSL_cleanse(ctx->scram, ctx->scram_n * sizeof(*ctx->scram));
        ctx__free(ctx, ctx->scram);
    }
    ctx__free(ctx, ctx->read_buf);
    ctx__free(ctx, ctx->test_nonce);
    hearth_buf_free(&ctx->scratch);
    hearth_allocator_t a = ctx->alloc;
    a.free(a.ud, ctx);
}

void ctx__release(hearth_ctx_t *ctx)
{
    if (--ctx->live == 0 && ctx->freeing && !ctx->owns_loop)
        destroy(ctx);
}

static void on_handle_closed(uv_handle_t *h)
{
    ctx__release(h->data);
}

int hearth_ctx_new(const hearth_ctx_config_t *cfg, hearth_ctx_t **out)
{
    static const hearth_ctx_config_t none = {0};
    *out = NULL;
    if (!cfg)
        cfg = &none;
    hearth_allocator_t a = {std_realloc, std_free, NULL};
    if (cfg->alloc) {
        if (!cfg->alloc->realloc || !cfg->alloc->free)
            return HEARTH_EINVAL;
        a = *cfg->alloc;
    }
    hearth_ctx_t *ctx = a.realloc(a.ud, NULL, sizeof(*ctx));
    if (!ctx)
        return HEARTH_ENOMEM;
    memset(ctx, 0, sizeof(*ctx));
    ctx->alloc = a;
    ctx->log = cfg->log;
    ctx->log_ud = cfg->log_ud;
    ctx->log_level = cfg->log_level;
    ctx->scratch = (hearth_buf_t)HEARTH_BUF_INIT;
    ctx->scram_lookup = cfg->scram_lookup;
    ctx->scram_store = cfg->scram_store;
    ctx->scram_ud = cfg->scram_ud;
    ctx->scram_n = cfg->scram_cache == 0              ? DEF_SCRAM_CACHE
                   : cfg->scram_cache == (unsigned)-1 ? 0
                                                      : cfg->scram_cache;
    if (ctx->scram_n && !(ctx->scram = ctx__calloc(ctx, ctx->scram_n * sizeof(*ctx->scram)))) {
        a.free(a.ud, ctx);
        return HEARTH_ENOMEM;
    }
    if (!cfg->keep_sigpipe) {
        /* Only a default disposition is changed: a program's own handler stays. */
        struct sigaction sa;
        if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL &&
            !(sa.sa_flags & SA_SIGINFO)) {
            sa.sa_handler = SIG_IGN;
            (void)sigaction(SIGPIPE, &sa, NULL);
        }
    }
    if (RAND_bytes((unsigned char *)&ctx->rng, sizeof(ctx->rng)) != 1)
        ctx->rng = uv_hrtime();
    if (cfg->loop) {
        ctx->loop = cfg->loop;
    } else {
        if (uv_loop_init(&ctx->own_loop) != 0) {
            ctx__free(ctx, ctx->scram);
            a.free(a.ud, ctx);
            return HEARTH_EIO;
        }
        ctx->loop = &ctx->own_loop;
        ctx->owns_loop = true;
    }
    uv_idle_init(ctx->loop, &ctx->flusher);
    ctx->flusher.data = ctx;
    uv_timer_init(ctx->loop, &ctx->wait_timer);
    ctx->wait_timer.data = ctx;
    uv_unref((uv_handle_t *)&ctx->wait_timer);
    ctx->live = 2;
    *out = ctx;
    return 0;
}

void hearth_ctx_free(hearth_ctx_t *ctx)
{
    if (!ctx || ctx->freeing)
        return;
    /* A client inside one of its callbacks goes when that returns (it stays on the list). */
    for (hearth_client_t *c = ctx->clients, *next; c; c = next) {
        next = c->next;
        hearth_client_free(c);
    }
    ctx->freeing = true;
    uv_close((uv_handle_t *)&ctx->flusher, on_handle_closed);
    uv_close((uv_handle_t *)&ctx->wait_timer, on_handle_closed);
    if (!ctx->owns_loop)
        return; /* the last close callback frees it */
    /* Thread-pool work (DNS, PBKDF2) finishes before its callback releases the context. */
    while (ctx->live > 0)
        uv_run(ctx->loop, UV_RUN_ONCE);
    uv_loop_close(ctx->loop);
    destroy(ctx);
}

uv_loop_t *hearth_ctx_loop(const hearth_ctx_t *ctx)
{
    return ctx->loop;
}

int hearth_ctx_run(hearth_ctx_t *ctx)
{
    if (ctx->running)
        return HEARTH_EBUSY;
    ctx->running = true;
    ctx->stop = false;
    uv_run(ctx->loop, UV_RUN_DEFAULT);
    ctx->running = false;
    return 0;
}

void hearth_ctx_stop(hearth_ctx_t *ctx)
{
    ctx->stop = true;
    uv_stop(ctx->loop);
}

static void on_wait_timeout(uv_timer_t *t)
{
    hearth_ctx_t *ctx = t->data;
    ctx->wait_expired = true;
}

int hearth_ctx_run_until(hearth_ctx_t *ctx, int (*done)(void *ud), void *ud, unsigned timeout_ms)
{
    if (ctx->running)
        return HEARTH_EBUSY;
    ctx->running = true;
    ctx->stop = false;
    ctx->wait_expired = false;
    if (timeout_ms)
        uv_timer_start(&ctx->wait_timer, on_wait_timeout, timeout_ms, 0);
    int rc = 0;
    while (!done(ud)) {
        if (ctx->wait_expired) {
            rc = HEARTH_ETIMEOUT;
            break;
        }
        if (ctx->stop) {
            rc = HEARTH_ECLOSED;
            break;
        }
        /* Nothing referenced on the loop: nothing can ever make done() true. */
        if (!uv_loop_alive(ctx->loop)) {
            rc = HEARTH_ECLOSED;
            break;
        }
        uv_run(ctx->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&ctx->wait_timer);
    ctx->running = false;
    return rc;
}

/* ---- test hooks (hooks.h) ---- */

void hearth__ctx_advance(hearth_ctx_t *ctx, uint64_t ms)
{
    ctx->clock_offset += ms;
    for (hearth_client_t *c = ctx->clients; c; c = c->next)
        client__arm(c);
}

void hearth__ctx_freeze(hearth_ctx_t *ctx)
{
    ctx->frozen_at = uv_now(ctx->loop);
    ctx->frozen = true;
}

void hearth__ctx_seed(hearth_ctx_t *ctx, uint64_t seed)
{
    ctx->rng = seed;
}

void hearth__ctx_set_nameserver(hearth_ctx_t *ctx, int port)
{
    ctx->test_ns_port = port;
}

void hearth__ctx_fix_nonce(hearth_ctx_t *ctx, const char *nonce)
{
    ctx__free(ctx, ctx->test_nonce);
    ctx->test_nonce = ctx__strdup(ctx, nonce);
}
