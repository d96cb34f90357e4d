/* HTTP File Upload's HTTP side (XEP-0363 §6): PUT /upload/<id>/<name> stores the body of a slot
 * given by the upload service, once, with the slot's exact size and type and its token; GET and
 * HEAD serve what was stored, with headers that keep a browser from running it. Bodies go to
 * and come from disk in pieces through libuv's file requests (the thread pool), so a worker loop
 * never waits on the disk and no whole file is held in memory. The index is core/upload.c's. */
#include <ctype.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/upload.h"
#include "net/http.h"

#define UPLOAD_PREFIX "/upload/"
#define PUT_BUFFER_HIGH (256u * 1024) /* received, not yet on disk: past it, reading pauses */
#define GET_PIECE (64u * 1024)        /* bytes read from a file per request */
#define PATH_MAX_UPLOAD 4096

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

/* "/upload/<id>/<name>": the id (checked) into id; the name, percent-decoded, into name.
 * 0, or -1 for anything else (no other path is ever served). */
static int parse_path(const char *path, char id[UPLOAD_ID_LEN + 1], char *name, size_t cap)
{
    const char *p = path + strlen(UPLOAD_PREFIX);
    if (!upload__id_ok(p, strnlen(p, UPLOAD_ID_LEN + 1) > UPLOAD_ID_LEN ? UPLOAD_ID_LEN : 0) ||
        p[UPLOAD_ID_LEN] != '/')
        return -1;
    memcpy(id, p, UPLOAD_ID_LEN);
    id[UPLOAD_ID_LEN] = '\0';
    size_t n = 0;
    for (const char *s = p + UPLOAD_ID_LEN + 1; *s; s++) {
        int c = (unsigned char)*s;
        if (c == '%') {
            if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
                return -1;
            char h[3] = {s[1], s[2], 0};
            c = (int)strtol(h, NULL, 16);
            s += 2;
        }
        if (!c || n + 1 >= cap)
            return -1;
        name[n++] = (char)c;
    }
    name[n] = '\0';
    return n ? 0 : -1;
}

/* The stored record of the file a path names: 0, or -1 (404). A path whose name is not the
 * slot's is not the file's: ids are secrets, names are not. */
static int lookup(const char *path, int put, upload_info_t *info, int *status)
{
    char id[UPLOAD_ID_LEN + 1], name[UPLOAD_NAME_MAX * 3 + 1];
    *status = 404;
    if (parse_path(path, id, name, sizeof(name)))
        return -1;
    int rc = put ? upload__claim(id, now_s(), info) : upload__get(id, now_s(), info);
    if (rc) {
        *status = rc == HEARTH_EEXISTS ? 409 : rc == HEARTH_ETIMEOUT ? 410 : 404;
        return -1;
    }
    if (strcmp(name, info->name)) {
        if (put)
            upload__claim_end(info->id, 0, now_s());
        return -1;
    }
    return 0;
}

static void text_answer(const http_request_t *req, int status, const char *text)
{
    http_respond(req, status, "text/plain; charset=utf-8", "Access-Control-Allow-Origin: *\r\n",
                 text, strlen(text));
}

/* ---- PUT: the body to "<id>.part", then fsync, its record, and renamed to "<id>" ---- */

typedef struct put {
    http_sink_t sink;
    worker_t *w;
    connection_t *c; /* while the body comes (until end or abort) */
    upload_info_t info;
    int claimed;
    int status;        /* a refusal decided: the body is read and dropped, then answered */
    uint64_t expect;   /* Content-Length (the slot's size when accepted) */
    uint64_t written;  /* bytes on disk */
    uv_file fd;        /* -1 until open */
    int busy;          /* a file request (open, write) under way */
    int paused;        /* reading paused until the buffer is written */
    hearth_buf_t buf;  /* received, not yet handed to a write */
    hearth_buf_t wbuf; /* the write under way */
    uv_fs_t fs;
    int ended;   /* the body is complete: d holds the answer */
    int aborted; /* the request went: nobody to answer */
    int failed;  /* a disk error: 500 */
    int finishing;
    http_deferred_t d;
    uv_work_t work;
    int work_ok;
} put_t;

static void put_step(put_t *p);

static void put_free(put_t *p)
{
    hearth_buf_free(&p->buf);
    hearth_buf_free(&p->wbuf);
    free(p);
}

static void on_write(uv_fs_t *fs)
{
    put_t *p = fs->data;
    ssize_t n = fs->result;
    uv_fs_req_cleanup(fs);
    p->busy = 0;
    if (n < 0 || (size_t)n != p->wbuf.len) {
        hlog(LOG_ERROR, "upload: writing %s: %s", p->info.id,
             n < 0 ? uv_strerror((int)n) : "short write");
        p->failed = 1;
    } else {
        p->written += (uint64_t)n;
    }
    hearth_buf_reset(&p->wbuf);
    put_step(p);
}

static void on_open(uv_fs_t *fs)
{
    put_t *p = fs->data;
    ssize_t fd = fs->result;
    uv_fs_req_cleanup(fs);
    p->busy = 0;
    if (fd < 0) {
        hlog(LOG_ERROR, "upload: cannot create the file of %s: %s", p->info.id,
             uv_strerror((int)fd));
        p->failed = 1;
    } else {
        p->fd = (uv_file)fd;
    }
    put_step(p);
}

/* Off the loop: the file made durable, its record written, then put in place. */
static void finish_work(uv_work_t *wk)
{
    put_t *p = wk->data;
    char part[PATH_MAX_UPLOAD] = "", data[PATH_MAX_UPLOAD] = "", meta[PATH_MAX_UPLOAD] = "";
    int ok = p->fd >= 0 && !fsync(p->fd);
    if (p->fd >= 0 && close(p->fd))
        ok = 0;
    p->fd = -1;
    ok = ok && !upload__path(p->info.id, ".part", part, sizeof(part)) &&
         !upload__path(p->info.id, "", data, sizeof(data)) &&
         !upload__path(p->info.id, ".meta", meta, sizeof(meta));
    if (!*part)
        (void)upload__path(p->info.id, ".part", part, sizeof(part));
    if (ok && !p->failed && p->work_ok) {
        p->info.created = now_s();
        ok = !upload__write_meta(meta, &p->info) && !rename(part, data);
        if (!ok)
            unlink(meta);
    } else {
        ok = 0;
    }
    if (!ok && *part)
        unlink(part);
    p->work_ok = ok;
}

static void finish_done(uv_work_t *wk, int status)
{
    put_t *p = wk->data;
    int ok = status == 0 && p->work_ok;
    upload__claim_end(p->info.id, ok, now_s());
    if (ok)
        hlog(LOG_INFO, "upload: %s stored %s (%llu bytes)", p->info.owner, p->info.id,
             (unsigned long long)p->info.size);
    if (p->ended) {
        static const char created[] = "created\n", failed[] = "not stored\n";
        int st = ok ? 201 : p->status ? p->status : 500;
        const char *body = ok ? created : p->status ? "refused\n" : failed;
        http_respond_later(&p->d, st, "text/plain; charset=utf-8", body, strlen(body));
    }
    put_free(p);
}

/* Everything done with the body (stored, refused, failed or gone): the file closed and either
 * put in place or removed, the slot stored or pending again, the answer given. */
static void put_finish(put_t *p, int store)
{
    p->finishing = 1;
    p->work.data = p;
    p->work_ok = store;
    if (!p->claimed) { /* nothing was opened: answer now */
        if (p->ended) {
            const char *body = "refused\n";
            http_respond_later(&p->d, p->status ? p->status : 500, "text/plain; charset=utf-8",
                               body, strlen(body));
        }
        put_free(p);
        return;
    }
    if (uv_queue_work(&p->w->loop, &p->work, finish_work, finish_done)) {
        finish_work(&p->work); /* cannot happen with a live loop; never leak the claim */
        finish_done(&p->work, 0);
    }
}

/* The next thing to do, after each event: open, write what came, finish. */
static void put_step(put_t *p)
{
    if (p->busy || p->finishing)
        return;
    if (p->aborted || p->failed || p->status) {
        if (p->aborted || p->ended)
            put_finish(p, 0);
        return; /* refusing: the rest of the body is read and dropped, then answered */
    }
    if (p->fd < 0) {
        char part[PATH_MAX_UPLOAD];
        if (upload__path(p->info.id, ".part", part, sizeof(part))) {
            p->failed = 1;
            put_step(p);
            return;
        }
        p->fs.data = p;
        p->busy = 1;
        if (uv_fs_open(&p->w->loop, &p->fs, part, O_WRONLY | O_CREAT | O_TRUNC, 0600, on_open)) {
            p->busy = 0;
            p->failed = 1;
            put_step(p);
        }
        return;
    }
    if (p->buf.len) {
        hearth_buf_t t = p->wbuf; /* the empty one's storage is reused */
        p->wbuf = p->buf;
        p->buf = t;
        hearth_buf_reset(&p->buf);
        uv_buf_t b = uv_buf_init(p->wbuf.data, (unsigned)p->wbuf.len);
        p->fs.data = p;
        p->busy = 1;
        if (uv_fs_write(&p->w->loop, &p->fs, p->fd, &b, 1, (int64_t)p->written, on_write)) {
            p->busy = 0;
            p->failed = 1;
            put_step(p);
            return;
        }
        if (p->paused && p->c) { /* room again */
            p->paused = 0;
            connection_resume(p->c);
        }
        return;
    }
    if (p->ended)
        put_finish(p, p->written == p->info.size);
}

static int put_data(http_sink_t *s, const char *data, size_t len)
{
    put_t *p = (put_t *)s;
    if (p->status || p->failed)
        return 0; /* dropped */
    if (hearth_buf_append(&p->buf, data, len)) {
        p->failed = 1;
        return 0;
    }
    if (p->buf.len >= PUT_BUFFER_HIGH && !p->paused && p->c) {
        p->paused = 1;
        connection_pause(p->c);
    }
    put_step(p);
    return 0;
}

static void put_end(http_sink_t *s, http_request_t *req)
{
    put_t *p = (put_t *)s;
    if (p->paused && p->c)
        connection_resume(p->c); /* HTTP holds the next request until the answer anyway */
    p->paused = 0;
    p->c = NULL;
    http_defer(req, &p->d);
    p->ended = 1;
    put_step(p);
}

static void put_abort(http_sink_t *s)
{
    put_t *p = (put_t *)s;
    p->c = NULL;
    p->paused = 0;
    p->aborted = 1;
    put_step(p);
}

static const http_sink_ops_t put_ops = {put_data, put_end, put_abort};

/* Whether the PUT's Content-Type is the slot's (media types compare case-insensitively). */
static int type_matches(const char *slot, const char *given)
{
    if (!*slot)
        return 1;
    if (!given)
        return 0;
    given += strspn(given, " \t");
    size_t n = strlen(given);
    while (n && (given[n - 1] == ' ' || given[n - 1] == '\t'))
        n--;
    return strlen(slot) == n && !strncasecmp(slot, given, n);
}

static int token_ok(const char *id, const char *auth)
{
    char want[UPLOAD_TOKEN_LEN + 1];
    upload__token(id, want);
    if (!auth || strncasecmp(auth, "Bearer ", 7))
        return 0;
    auth += 7;
    auth += strspn(auth, " ");
    if (strlen(auth) != UPLOAD_TOKEN_LEN)
        return 0;
    unsigned char diff = 0; /* the same time whatever the first wrong byte */
    for (size_t i = 0; i < UPLOAD_TOKEN_LEN; i++)
        diff |= (unsigned char)(auth[i] ^ want[i]);
    return diff == 0;
}

static http_sink_t *put_start(http_request_t *req, int *status)
{
    *status = 0;
    if (strcmp(req->method, "PUT"))
        return NULL; /* buffered as usual, then answered by upload_request */
    const char *cl = http_header(req, "Content-Length");
    char *end = NULL;
    unsigned long long len = cl ? strtoull(cl, &end, 10) : 0;
    if (!cl || end == cl || *end || http_header(req, "Transfer-Encoding")) {
        *status = 411; /* the XEP compares Content-Length with the slot */
        return NULL;
    }
    if (len > upload__limits()->max_file_size) {
        *status = 413; /* no slot is that large: refused before its body */
        return NULL;
    }
    put_t *p = calloc(1, sizeof(*p));
    if (!p) {
        *status = 503;
        return NULL;
    }
    p->sink.ops = &put_ops;
    p->w = req->c->w;
    p->c = req->c;
    p->fd = -1;
    p->expect = len;
    int st = 0;
    if (lookup(req->path, 1, &p->info, &st)) {
        p->status = st;
        return &p->sink;
    }
    p->claimed = 1;
    if (!token_ok(p->info.id, http_header(req, "Authorization")))
        p->status = 403;
    else if (len != p->info.size)
        p->status = len > p->info.size ? 413 : 400; /* XEP-0363 §6: the slot's size exactly */
    else if (!type_matches(p->info.ctype, http_header(req, "Content-Type")))
        p->status = 415;
    if (p->status) {
        upload__claim_end(p->info.id, 0, now_s()); /* the slot stays for a right PUT */
        p->claimed = 0;
        return &p->sink;
    }
    if (!*p->info.ctype) { /* the slot named none: the PUT's, if it is a plain media type */
        const char *t = http_header(req, "Content-Type");
        int plain = t && *t && strlen(t) <= UPLOAD_TYPE_MAX;
        for (const char *q = t; plain && *q; q++)
            plain = (unsigned char)*q >= 0x20 && (unsigned char)*q < 0x7f;
        snprintf(p->info.ctype, sizeof(p->info.ctype), "%s",
                 plain ? t : "application/octet-stream");
    }
    put_step(p); /* opens the file while the body comes */
    return &p->sink;
}

/* ---- GET and HEAD: the file in pieces as the connection drains ---- */

typedef struct get {
    http_source_t src;
    worker_t *w;
    char id[UPLOAD_ID_LEN + 1];
    connection_t *c; /* the one that asked for the piece under way */
    uv_file fd;
    uint64_t off;
    int busy;
    int released;
    uv_fs_t fs;
    char buf[GET_PIECE];
} get_t;

static void get_closed(uv_fs_t *fs)
{
    uv_fs_req_cleanup(fs);
    free(fs->data);
}

static void get_free(get_t *g)
{
    g->fs.data = g;
    if (g->fd >= 0 && !uv_fs_close(&g->w->loop, &g->fs, g->fd, get_closed))
        return;
    free(g);
}

static void get_read(get_t *g, uint64_t left);

static void on_get_read(uv_fs_t *fs)
{
    get_t *g = fs->data;
    ssize_t n = fs->result;
    uv_fs_req_cleanup(fs);
    g->busy = 0;
    if (g->released) {
        get_free(g);
        return;
    }
    if (n <= 0) {
        hlog(LOG_WARN, "upload: reading %s: %s", g->id,
             n < 0 ? uv_strerror((int)n) : "shorter than stored");
        http__source_push(g->c, NULL, 0);
        return;
    }
    g->off += (uint64_t)n;
    http__source_push(g->c, g->buf, (size_t)n); /* may release g: nothing of it after this */
}

static void on_get_open(uv_fs_t *fs)
{
    get_t *g = fs->data;
    ssize_t fd = fs->result;
    uv_fs_req_cleanup(fs);
    g->busy = 0;
    if (fd >= 0)
        g->fd = (uv_file)fd;
    if (g->released) {
        get_free(g);
        return;
    }
    if (fd < 0) {
        hlog(LOG_WARN, "upload: opening %s: %s", g->id, uv_strerror((int)fd));
        http__source_push(g->c, NULL, 0);
        return;
    }
    get_read(g, (uint64_t)-1);
}

static void get_read(get_t *g, uint64_t left)
{
    uv_buf_t b = uv_buf_init(g->buf, (unsigned)(left < sizeof(g->buf) ? left : sizeof(g->buf)));
    g->fs.data = g;
    g->busy = 1;
    if (uv_fs_read(&g->w->loop, &g->fs, g->fd, &b, 1, (int64_t)g->off, on_get_read)) {
        g->busy = 0;
        http__source_push(g->c, NULL, 0);
    }
}

static void get_more(http_source_t *s, connection_t *c, uint64_t left)
{
    get_t *g = (get_t *)s;
    g->c = c;
    if (g->fd >= 0) {
        get_read(g, left);
        return;
    }
    char path[PATH_MAX_UPLOAD];
    g->fs.data = g;
    g->busy = 1;
    if (upload__path(g->id, "", path, sizeof(path)) ||
        uv_fs_open(&g->w->loop, &g->fs, path, O_RDONLY, 0, on_get_open)) {
        g->busy = 0;
        http__source_push(c, NULL, 0);
    }
}

static void get_release(http_source_t *s)
{
    get_t *g = (get_t *)s;
    g->released = 1;
    if (!g->busy)
        get_free(g);
}

static const http_source_ops_t get_ops = {get_more, get_release};

/* Types a browser shows without running anything; any other is served as bytes to save. */
static int inline_type(const char *t)
{
    static const char *const safe[] = {
        "image/png",  "image/jpeg", "image/gif",  "image/webp",      "image/avif",
        "image/bmp",  "audio/ogg",  "audio/mpeg", "audio/mp4",       "audio/aac",
        "audio/opus", "audio/webm", "audio/wav",  "audio/flac",      "video/mp4",
        "video/webm", "video/ogg",  "text/plain", "application/pdf",
    };
    size_t n = strcspn(t, "; \t");
    for (size_t i = 0; i < sizeof(safe) / sizeof(*safe); i++)
        if (strlen(safe[i]) == n && !strncasecmp(t, safe[i], n))
            return 1;
    return 0;
}

/* RFC 6266: a quoted ASCII fallback and the exact name in RFC 8187's encoding. */
static int disposition(hearth_buf_t *b, const char *kind, const char *name)
{
    int rc = hearth_buf_printf(b, "Content-Disposition: %s; filename=\"", kind);
    for (const char *s = name; !rc && *s; s++) {
        unsigned char c = (unsigned char)*s;
        char o = c >= 0x20 && c < 0x7f && c != '"' && c != '\\' ? (char)c : '_';
        rc = hearth_buf_append(b, &o, 1);
    }
    rc = rc ?: hearth_buf_append_str(b, "\"; filename*=UTF-8''");
    for (const char *s = name; !rc && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || strchr("!#$&+-.^_`|~", c))
            rc = hearth_buf_append(b, s, 1);
        else
            rc = hearth_buf_printf(b, "%%%02X", c);
    }
    return rc ?: hearth_buf_append_str(b, "\r\n");
}

static int upload_request(http_request_t *req)
{
    if (!strcmp(req->method, "OPTIONS")) { /* CORS preflight: any page may PUT with a token */
        http_respond(req, 204, NULL,
                     "Access-Control-Allow-Origin: *\r\n"
                     "Access-Control-Allow-Methods: GET, HEAD, PUT, OPTIONS\r\n"
                     "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
                     "Access-Control-Max-Age: 86400\r\n",
                     NULL, 0);
        return 0;
    }
    if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
        http_respond(req, 405, "text/plain; charset=utf-8",
                     "Allow: GET, HEAD, PUT, OPTIONS\r\nAccess-Control-Allow-Origin: *\r\n",
                     "GET, HEAD or PUT\n", 17);
        return 0;
    }
    upload_info_t *info = malloc(sizeof(*info));
    int st = 0;
    if (!info) {
        text_answer(req, 503, "out of memory\n");
        return 0;
    }
    if (lookup(req->path, 0, info, &st)) {
        free(info);
        text_answer(req, 404, "no such file\n");
        return 0;
    }
    get_t *g = calloc(1, sizeof(*g));
    hearth_buf_t extra = HEARTH_BUF_INIT;
    int show = inline_type(info->ctype);
    /* Nothing served here may run: no script, no plugin, no frame, even for a type a
     * browser renders; anything else is a download. */
    int rc = !g;
    rc = rc
             ?: hearth_buf_append_str(&extra,
                                      "Content-Security-Policy: default-src 'none'; "
                                      "img-src 'self'; media-src 'self'; sandbox\r\n"
                                      "Access-Control-Allow-Origin: *\r\n"
                                      "Cache-Control: public, max-age=31536000, immutable\r\n");
    rc = rc ?: disposition(&extra, show ? "inline" : "attachment", info->name);
    if (rc) {
        free(g);
        free(info);
        hearth_buf_free(&extra);
        text_answer(req, 503, "out of memory\n");
        return 0;
    }
    g->src.ops = &get_ops;
    g->w = req->c->w;
    g->fd = -1;
    memcpy(g->id, info->id, sizeof(g->id));
    http__respond_source(req, 200, show ? info->ctype : "application/octet-stream", extra.data,
                         info->size, &g->src);
    hearth_buf_free(&extra);
    free(info);
    return 0;
}

int upload_http__init(server_t *srv)
{
    if (!config_bool(srv->cfg, "upload.enabled") || !upload__limits()->max_file_size)
        return 0; /* off, or without a listener to name (the service is not there either) */
    return http__route_stream(UPLOAD_PREFIX, 1, upload_request, put_start);
}
