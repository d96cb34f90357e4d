/* What HTTP serves besides the XMPP transports: XEP-0156 discovery (/.well-known/host-meta and
 * host-meta.json, naming this server's WebSocket and BOSH endpoints as the client reached it)
 * and the web client's files at /chat/ (http.chat_root). The files are read once at start-up
 * into memory (bounded), so a worker loop never waits on a disk. */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hearth/ns.h"

#include "core/log.h"
#include "net/http.h"

#define WEB_FILES_BYTES (64u * 1024 * 1024) /* the whole tree in memory; past it, refused */
#define WEB_FILES_MAX 4096
#define WEB_PATH_MAX 512

typedef struct web_file {
    char *data;
    size_t len;
    const char *ctype;
} web_file_t;

static strmap_t files; /* path under /chat/ ("index.html", "dist/converse.js") -> web_file_t */
static size_t files_bytes;

static const char *ctype_of(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".woff", "font/woff"},
        {".ttf", "font/ttf"},
        {".map", "application/json"},
        {".txt", "text/plain; charset=utf-8"},
        {".ogg", "audio/ogg"},
        {".mp3", "audio/mpeg"},
        {".wasm", "application/wasm"},
        {".webp", "image/webp"},
        {".gif", "image/gif"},
        {".jpg", "image/jpeg"},
        {".jpeg", "image/jpeg"},
        {".webmanifest", "application/manifest+json"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(*types); i++)
        if (!strcasecmp(dot, types[i].ext))
            return types[i].type;
    return "application/octet-stream";
}

static int load_file(const char *full, const char *rel)
{
    FILE *f = fopen(full, "rb");
    if (!f)
        return HEARTH_EIO;
    struct stat st;
    web_file_t *wf = NULL;
    int rc = HEARTH_ENOMEM;
    if (fstat(fileno(f), &st) || st.st_size < 0) {
        rc = HEARTH_EIO;
        goto out;
    }
    if (files_bytes + (size_t)st.st_size > WEB_FILES_BYTES || files.count >= WEB_FILES_MAX) {
        hlog(LOG_ERROR, "http.chat_root: more than %u MiB or %u files: %s not served",
             WEB_FILES_BYTES >> 20, WEB_FILES_MAX, rel);
        rc = HEARTH_ELIMIT;
        goto out;
    }
    if (!(wf = calloc(1, sizeof(*wf))) || !(wf->data = malloc((size_t)st.st_size + 1)))
        goto out;
    wf->len = fread(wf->data, 1, (size_t)st.st_size, f);
    wf->ctype = ctype_of(rel);
    if (strmap_put(&files, rel, wf))
        goto out;
    files_bytes += wf->len;
    wf = NULL;
    rc = 0;
out:
    if (wf)
        free(wf->data);
    free(wf);
    fclose(f);
    return rc;
}

/* Every regular file under dir (no hidden ones, no symbolic links followed out). */
static int load_tree(const char *dir, const char *rel)
{
    DIR *d = opendir(dir);
    if (!d)
        return HEARTH_EIO;
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char full[WEB_PATH_MAX * 2], sub[WEB_PATH_MAX];
        if (snprintf(full, sizeof(full), "%s/%s", dir, e->d_name) >= (int)sizeof(full) ||
            snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", e->d_name) >=
                (int)sizeof(sub))
            continue;
        struct stat st;
        if (lstat(full, &st))
            continue;
        if (S_ISDIR(st.st_mode))
            rc = load_tree(full, sub);
        else if (S_ISREG(st.st_mode))
            rc = load_file(full, sub) == HEARTH_ENOMEM ? HEARTH_ENOMEM : 0;
    }
    closedir(d);
    return rc;
}

static int chat_file(http_request_t *req)
{
    if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
        http_respond(req, 405, "text/plain; charset=utf-8", "Allow: GET, HEAD\r\n", "GET only\n",
                     9);
        return 0;
    }
    const char *rel = req->path + strlen("/chat/");
    char index[WEB_PATH_MAX];
    size_t n = strlen(rel);
    if (!n || rel[n - 1] == '/') { /* a directory: its index.html */
        if (snprintf(index, sizeof(index), "%sindex.html", rel) >= (int)sizeof(index))
            index[0] = '\0';
        rel = index;
    }
    web_file_t *wf = !*rel || strstr(rel, "..") ? NULL : strmap_get(&files, rel);
    if (!wf) {
        static const char nf[] = "no such file\n";
        http_respond(req, 404, "text/plain; charset=utf-8", NULL, nf, sizeof(nf) - 1);
        return 0;
    }
    http__respond_static(req, 200, wf->ctype, "Cache-Control: no-cache\r\n", wf->data,
                         strcmp(req->method, "HEAD") ? wf->len : 0);
    return 0;
}

static int chat_redirect(http_request_t *req)
{
    http_respond(req, 301, NULL, "Location: /chat/\r\n", NULL, 0);
    return 0;
}

/* The Host the client used, if it is a plausible host[:port] (it goes into the answer). */
static const char *host_of(const http_request_t *req)
{
    const char *h = http_header(req, "Host");
    if (!h || !*h || strlen(h) > 255)
        return NULL;
    for (const char *p = h; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr(".-:[]", *p)))
            return NULL;
    return h;
}

static int host_meta(http_request_t *req, int json)
{
    const char *host = host_of(req);
    if (!host) {
        http_respond(req, 400, "text/plain; charset=utf-8", NULL, "bad Host\n", 9);
        return 0;
    }
    const char *s = req->https ? "s" : "";
    char body[1024];
    int n;
    if (json)
        n = snprintf(body, sizeof(body),
                     "{\"links\":[{\"rel\":\"" HEARTH_NS_ALT_WEBSOCKET "\","
                     "\"href\":\"ws%s://%s/xmpp-websocket\"},"
                     "{\"rel\":\"" HEARTH_NS_ALT_XBOSH "\","
                     "\"href\":\"http%s://%s/http-bind\"}]}",
                     s, host, s, host);
    else
        n = snprintf(body, sizeof(body),
                     "<?xml version='1.0' encoding='utf-8'?>\n"
                     "<XRD xmlns='" HEARTH_NS_XRD "'>\n"
                     "  <Link rel='" HEARTH_NS_ALT_WEBSOCKET "' "
                     "href='ws%s://%s/xmpp-websocket'/>\n"
                     "  <Link rel='" HEARTH_NS_ALT_XBOSH "' href='http%s://%s/http-bind'/>\n"
                     "</XRD>\n",
                     s, host, s, host);
    /* Any page may discover the endpoints (XEP-0156 §3.2). */
    http_respond(req, 200, json ? "application/json" : "application/xrd+xml; charset=utf-8",
                 "Access-Control-Allow-Origin: *\r\n", body, (size_t)n);
    return 0;
}

static int host_meta_xml(http_request_t *req)
{
    return host_meta(req, 0);
}

static int host_meta_json(http_request_t *req)
{
    return host_meta(req, 1);
}

int web__init(server_t *srv)
{
    if (strmap_init(&files))
        return HEARTH_ENOMEM;
    const char *root = config_str(srv->cfg, "http.chat_root");
    if (root && *root) {
        int rc = load_tree(root, "");
        if (rc) {
            hlog(LOG_ERROR, "http.chat_root %s: %s", root, hearth_strerror(rc));
            return rc;
        }
        hlog(LOG_INFO, "serving %zu files (%zu KiB) of %s at /chat/", files.count,
             files_bytes >> 10, root);
    }
    return http__route("/.well-known/host-meta", 0, host_meta_xml)
               ?: http__route("/.well-known/host-meta.json", 0, host_meta_json)
               ?: http__route("/chat", 0, chat_redirect)
               ?: http__route("/chat/", 1, chat_file);
}

void web__free(void)
{
    if (!files.buckets)
        return;
    STRMAP_FOREACH(&files, e)
    {
        web_file_t *wf = e->value;
        free(wf->data);
        free(wf);
    }
    strmap_free(&files);
    files_bytes = 0;
}
