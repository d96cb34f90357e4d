/* The HTTP File Upload service (XEP-0363) at upload.<domain>: its disco (identity store/file,
 * the feature, max-file-size in a XEP-0128 form), slot requests checked against the size limit
 * and the user's quota, the periodic sweep of expired slots and files (worker 0), and a removed
 * account's files. The file store is core/upload.c's; PUT and GET are net/upload.c's. Disk work
 * (removals) runs on libuv's thread pool, never on a worker loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/upload.h"
#include "modules/im.h"

#define NS_UPLOAD "urn:xmpp:http:upload:0"
#define SWEEP_PERIOD_MS (10u * 60 * 1000) /* expired slots give their quota back by then */
#define SWEEP_BATCH 1024                  /* files removed per thread-pool job */

static char domain[1100];
static char url_base[1024];      /* without the trailing '/'; "" = from the HTTP listener */
static char allowed_types[1024]; /* upload.allowed_types; "" = any */
static int worker_slot = -1;

typedef struct upload_worker {
    uv_timer_t sweep; /* worker 0 only */
} upload_worker_t;

/* ---- removals off the loop ---- */

typedef struct removal {
    uv_work_t work;
    size_t n;
    char ids[SWEEP_BATCH][UPLOAD_ID_LEN + 1];
} removal_t;

static void remove_work(uv_work_t *wk)
{
    removal_t *r = wk->data;
    for (size_t i = 0; i < r->n; i++) {
        char path[4096];
        if (!upload__path(r->ids[i], ".meta", path, sizeof(path)))
            unlink(path); /* the record first: a crash between leaves bytes the scan removes */
        if (!upload__path(r->ids[i], "", path, sizeof(path)))
            unlink(path);
    }
}

static void remove_done(uv_work_t *wk, int status)
{
    (void)status;
    free(wk->data);
}

/* Takes what is to go (owner's records, or everything expired) out of the index and removes
 * its files, batch by batch. */
static void remove_files(worker_t *w, const char *owner)
{
    int more = 1;
    while (more) {
        removal_t *r = malloc(sizeof(*r));
        if (!r)
            return;
        r->n = upload__take(owner, (int64_t)time(NULL), r->ids, SWEEP_BATCH, &more);
        if (!r->n) {
            free(r);
            return;
        }
        hlog(LOG_INFO, "upload: removing %zu files%s%s", r->n, owner ? " of " : " (expired)",
             owner ? owner : "");
        r->work.data = r;
        if (uv_queue_work(&w->loop, &r->work, remove_work, remove_done)) {
            remove_work(&r->work); /* no loop to run it on: better late than never */
            free(r);
        }
    }
}

static void sweep(uv_timer_t *t)
{
    remove_files(t->data, NULL);
}

static int on_account_removed(hook_args_t *a)
{
    remove_files(a->w, a->bare); /* every worker hears it; the first one takes the records */
    return HOOK_CONTINUE;
}

/* ---- the service ---- */

static void reply_error(worker_t *w, hearth_xml_node_t *iq, hearth_arena_t *a, const char *from,
                        hearth_stanza_error_t cond, const char *text, uint64_t max_size)
{
    hearth_xml_set_attr(a, iq, "from", domain);
    hearth_xml_set_attr(a, iq, "to", from);
    hearth_xml_set_attr(a, iq, "type", "error");
    hearth_xml_node_t *e = hearth_xml_add_stanza_error(a, iq, cond, text);
    if (e && max_size) { /* XEP-0363 §5: the limit, for the client to tell its user */
        char n[32];
        snprintf(n, sizeof(n), "%llu", (unsigned long long)max_size);
        hearth_xml_node_t *big = hearth_xml_add_child(a, e, "file-too-large", NS_UPLOAD);
        hearth_xml_node_t *m = hearth_xml_add_child(a, big, "max-file-size", NS_UPLOAD);
        hearth_xml_add_text(a, m, n, strlen(n));
    }
    router__route_node(w, from, iq);
}

static hearth_xml_node_t *result(hearth_arena_t *a, hearth_xml_node_t *iq, const char *from)
{
    hearth_xml_node_t *r = hearth_xml_new(a, "iq", HEARTH_NS_CLIENT);
    hearth_xml_set_attr(a, r, "type", "result");
    hearth_xml_set_attr(a, r, "id", hearth_xml_attr(iq, "id"));
    hearth_xml_set_attr(a, r, "from", domain);
    hearth_xml_set_attr(a, r, "to", from);
    return r;
}

static void field(hearth_arena_t *a, hearth_xml_node_t *x, const char *var, const char *type,
                  const char *value)
{
    hearth_xml_node_t *f = hearth_xml_add_child(a, x, "field", NULL);
    hearth_xml_set_attr(a, f, "var", var);
    if (type)
        hearth_xml_set_attr(a, f, "type", type);
    hearth_xml_add_text(a, hearth_xml_add_child(a, f, "value", NULL), value, strlen(value));
}

static void disco_info(worker_t *w, hearth_xml_node_t *iq, hearth_arena_t *a, const char *from)
{
    hearth_xml_node_t *r = result(a, iq, from);
    hearth_xml_node_t *q = hearth_xml_add_child(a, r, "query", HEARTH_NS_DISCO_INFO);
    hearth_xml_node_t *id = hearth_xml_add_child(a, q, "identity", NULL);
    hearth_xml_set_attr(a, id, "category", "store");
    hearth_xml_set_attr(a, id, "type", "file");
    hearth_xml_set_attr(a, id, "name", "HTTP File Upload");
    static const char *const feats[] = {HEARTH_NS_DISCO_INFO, HEARTH_NS_DISCO_ITEMS, HEARTH_NS_PING,
                                        NS_UPLOAD, NULL};
    for (int i = 0; feats[i]; i++)
        hearth_xml_set_attr(a, hearth_xml_add_child(a, q, "feature", NULL), "var", feats[i]);
    /* XEP-0128, as XEP-0363 §3 asks: the limit before the first request. */
    hearth_xml_node_t *x = hearth_xml_add_child(a, q, "x", HEARTH_NS_DATA);
    hearth_xml_set_attr(a, x, "type", "result");
    field(a, x, "FORM_TYPE", "hidden", NS_UPLOAD);
    char n[32];
    snprintf(n, sizeof(n), "%llu", (unsigned long long)upload__limits()->max_file_size);
    field(a, x, "max-file-size", NULL, n);
    router__route_node(w, from, r);
}

/* A file name kept as given (the XEP asks to keep it, its ending above all), but never one
 * that could be read as a path or break a header: no control character, no '/' or '\'. */
static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > UPLOAD_NAME_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\')
            return 0;
    return 1;
}

/* type/subtype with optional parameters, printable ASCII. */
static int type_ok(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > UPLOAD_TYPE_MAX || !strchr(s, '/') || *s == '/')
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p >= 0x7f)
            return 0;
    return 1;
}

/* ctype is in upload.allowed_types: an entry equal to it (case aside), or "family/ *" naming
 * its family. A slot without a type is allowed only when any type is. */
static int type_allowed(const char *ctype)
{
    if (!*allowed_types)
        return 1;
    if (!ctype || !*ctype)
        return 0;
    size_t clen = strcspn(ctype, ";"), fam = strcspn(ctype, "/");
    while (clen && ctype[clen - 1] == ' ')
        clen--;
    for (const char *p = allowed_types; *p;) {
        p += strspn(p, " ,");
        size_t n = strcspn(p, " ,");
        if (n == clen && !strncasecmp(p, ctype, n))
            return 1;
        if (n >= 2 && !strncmp(p + n - 2, "/*", 2) && n - 2 == fam && !strncasecmp(p, ctype, fam))
            return 1;
        p += n;
    }
    return 0;
}

static int size_parse(const char *s, uint64_t *out)
{
    if (!s || !*s || strlen(s) > 19)
        return -1;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    *out = v;
    return 0;
}

/* The URL under which the HTTP listener's /upload/ is reached. */
static void base_of(worker_t *w, char *out, size_t cap)
{
    if (*url_base)
        snprintf(out, cap, "%s", url_base);
    else if (w->srv->http_port >= 0)
        snprintf(out, cap, "http://%s:%d/upload", w->set.domain, w->srv->http_port);
    else
        snprintf(out, cap, "https://%s:%d/upload", w->set.domain, w->srv->https_port);
}

static int url_encode(hearth_buf_t *b, const char *s)
{
    int rc = 0;
    for (; !rc && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c))
            rc = hearth_buf_append(b, s, 1);
        else
            rc = hearth_buf_printf(b, "%%%02X", c);
    }
    return rc;
}

static void slot(worker_t *w, hearth_xml_node_t *iq, hearth_xml_node_t *req, hearth_arena_t *a,
                 const char *from)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *reason = NULL;
    if (hearth_jid_parse(from, strlen(from), &j, &reason) || !j.node ||
        strcmp(j.domain, w->set.domain)) {
        hearth_jid_clear(&j);
        reply_error(w, iq, a, from, HEARTH_STANZA_ERR_NOT_ALLOWED,
                    "only accounts of this server may upload", 0);
        return;
    }
    char *owner = hearth_arena_strdup(a, j.bare);
    hearth_jid_clear(&j);
    const char *name = hearth_xml_attr(req, "filename");
    const char *size_s = hearth_xml_attr(req, "size");
    const char *ctype = hearth_xml_attr(req, "content-type");
    uint64_t size = 0;
    const upload_limits_t *lim = upload__limits();
    if (!name || !name_ok(name)) {
        reply_error(w, iq, a, from, HEARTH_STANZA_ERR_BAD_REQUEST,
                    "filename: 1 to 255 bytes, no control character, '/' or '\\'", 0);
        return;
    }
    if (size_parse(size_s, &size)) {
        reply_error(w, iq, a, from, HEARTH_STANZA_ERR_BAD_REQUEST,
                    "size: the file's length in bytes", 0);
        return;
    }
    if (ctype && !type_ok(ctype)) {
        reply_error(w, iq, a, from, HEARTH_STANZA_ERR_BAD_REQUEST,
                    "content-type: a media type of at most 127 printable characters", 0);
        return;
    }
    if (!type_allowed(ctype)) {
        reply_error(w, iq, a, from, HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
                    "this service does not take files of that type (upload.allowed_types)", 0);
        return;
    }
    if (size > lim->max_file_size) {
        char text[96];
        snprintf(text, sizeof(text), "File too large. The maximum file size is %llu bytes",
                 (unsigned long long)lim->max_file_size);
        reply_error(w, iq, a, from, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, text, lim->max_file_size);
        return;
    }
    char id[UPLOAD_ID_LEN + 1];
    int rc = upload__slot_new(owner, name, ctype ? ctype : "", size, (int64_t)time(NULL), id);
    if (rc) {
        reply_error(w, iq, a, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                    rc == HEARTH_ELIMIT ? "Quota reached: older uploads must expire first"
                                        : "no slot can be given now",
                    0);
        return;
    }
    char base[1024], token[UPLOAD_TOKEN_LEN + 1];
    base_of(w, base, sizeof(base));
    upload__token(id, token);
    hearth_buf_t url = HEARTH_BUF_INIT, auth = HEARTH_BUF_INIT;
    rc = hearth_buf_printf(&url, "%s/%s/", base, id);
    rc = rc ?: url_encode(&url, name);
    rc = rc ?: hearth_buf_append(&url, "", 1);
    rc = rc ?: hearth_buf_printf(&auth, "Bearer %s", token);
    if (rc) {
        hearth_buf_free(&url);
        hearth_buf_free(&auth);
        reply_error(w, iq, a, from, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, 0);
        return;
    }
    hearth_xml_node_t *r = result(a, iq, from);
    hearth_xml_node_t *s = hearth_xml_add_child(a, r, "slot", NS_UPLOAD);
    hearth_xml_node_t *put = hearth_xml_add_child(a, s, "put", NULL);
    hearth_xml_set_attr(a, put, "url", url.data);
    hearth_xml_node_t *h = hearth_xml_add_child(a, put, "header", NULL);
    hearth_xml_set_attr(a, h, "name", "Authorization");
    hearth_xml_add_text(a, h, auth.data, auth.len);
    hearth_xml_set_attr(a, hearth_xml_add_child(a, s, "get", NULL), "url", url.data);
    router__route_node(w, from, r);
    hlog(LOG_DEBUG, "upload: slot %s for %s (%llu bytes)", id, owner, (unsigned long long)size);
    hearth_buf_free(&url);
    hearth_buf_free(&auth);
}

static void service_iq(worker_t *w, hearth_xml_node_t *iq, hearth_arena_t *a, const char *from,
                       const char *to)
{
    const char *type = hearth_xml_attr(iq, "type");
    if (!type || (strcmp(type, "get") && strcmp(type, "set")))
        return; /* results and errors end here */
    hearth_xml_node_t *q = hearth_xml_first_element(iq);
    if (!q || hearth_xml_count_elements(iq) != 1) {
        reply_error(w, iq, a, from, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, 0);
        return;
    }
    int get = !strcmp(type, "get");
    if (strcmp(to, domain)) { /* nothing lives under the service's domain */
        reply_error(w, iq, a, from, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL, 0);
        return;
    }
    if (get && !strcmp(q->ns, HEARTH_NS_DISCO_INFO) && !strcmp(q->name, "query") &&
        !hearth_xml_attr(q, "node")) {
        disco_info(w, iq, a, from);
    } else if (get && !strcmp(q->ns, HEARTH_NS_DISCO_ITEMS) && !strcmp(q->name, "query") &&
               !hearth_xml_attr(q, "node")) {
        hearth_xml_node_t *r = result(a, iq, from);
        hearth_xml_add_child(a, r, "query", HEARTH_NS_DISCO_ITEMS);
        router__route_node(w, from, r);
    } else if (get && !strcmp(q->ns, HEARTH_NS_PING) && !strcmp(q->name, "ping")) {
        router__route_node(w, from, result(a, iq, from));
    } else if (get && !strcmp(q->ns, NS_UPLOAD) && !strcmp(q->name, "request")) {
        slot(w, iq, q, a, from);
    } else if (!strcmp(q->ns, NS_UPLOAD) && !strcmp(q->name, "request")) {
        reply_error(w, iq, a, from, HEARTH_STANZA_ERR_BAD_REQUEST, "a slot request is a get", 0);
    } else {
        reply_error(w, iq, a, from, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL, 0);
    }
}

typedef struct stanza_ctx {
    worker_t *w;
    const inbox_msg_t *m;
} stanza_ctx_t;

static void on_stanza(void *ud, hearth_xml_node_t *st, hearth_arena_t *a)
{
    stanza_ctx_t *c = ud;
    hearth_xml_set_attr(a, st, "from", c->m->u.route.from);
    service_iq(c->w, st, a, c->m->u.route.from, c->m->u.route.to);
}

static void deliver(worker_t *w, inbox_msg_t *m)
{
    if (!m->u.route.from)
        return;
    if (m->u.route.kind == STANZA_IQ) {
        stanza_ctx_t c = {w, m};
        router__parse(m->u.route.bytes->data, m->u.route.bytes->len, on_stanza, &c);
    } else if (m->u.route.kind == STANZA_MESSAGE) {
        router__bounce(w, m, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
    } /* presence: nothing to do with it */
}

/* ---- start-up ---- */

/* Files of accounts removed while the server was stopped (hearthctl deluser): no hook ran for
 * them, so they go now. Start-up, before the workers: blocking calls are fine here. */
static void drop_orphans(server_t *srv)
{
    size_t n = 0;
    char **owners = upload__owners(&n);
    for (size_t i = 0; i < n; i++) {
        const char *at = strchr(owners[i], '@');
        storage_account_t acct = {0};
        char *user = at ? strndup(owners[i], (size_t)(at - owners[i])) : NULL;
        if (user && !strcmp(at + 1, srv->set.domain) &&
            storage_sync_account_get(srv->storage, user, &acct) == HEARTH_ENOTFOUND) {
            int more = 1;
            while (more) {
                char ids[64][UPLOAD_ID_LEN + 1];
                size_t k = upload__take(owners[i], 0, ids, 64, &more);
                for (size_t j = 0; j < k; j++) {
                    char path[4096];
                    if (!upload__path(ids[j], ".meta", path, sizeof(path)))
                        unlink(path);
                    if (!upload__path(ids[j], "", path, sizeof(path)))
                        unlink(path);
                }
                if (!k)
                    break;
            }
            hlog(LOG_INFO, "upload: files of %s removed (the account is gone)", owners[i]);
        }
        storage_account_clear(&acct);
        free(user);
        free(owners[i]);
    }
    free(owners);
}

static int upload_init(server_t *srv)
{
    config_t *cfg = srv->cfg;
    const char *d = config_str(cfg, "upload.domain");
    if (*d)
        snprintf(domain, sizeof(domain), "%s", d);
    else
        snprintf(domain, sizeof(domain), "upload.%s", srv->set.domain);
    snprintf(allowed_types, sizeof(allowed_types), "%s", config_str(cfg, "upload.allowed_types"));
    const char *b = config_str(cfg, "upload.url_base");
    snprintf(url_base, sizeof(url_base), "%s", b);
    size_t n = strlen(url_base);
    while (n && url_base[n - 1] == '/')
        url_base[--n] = '\0';
    if (!*url_base && config_int(cfg, "http.port") < 0 && config_int(cfg, "https.port") < 0) {
        /* Nowhere to PUT: no service rather than slots nobody can use. */
        hlog(LOG_INFO, "upload: off (no HTTP listener and no upload.url_base)");
        return 0;
    }
    upload_limits_t lim = {
        .max_file_size = (uint64_t)config_int(cfg, "upload.max_file_size"),
        .quota = (uint64_t)config_int(cfg, "upload.quota_per_user"),
        .expire_days = (unsigned)config_int(cfg, "upload.expire_days"),
        .slot_ttl = (unsigned)config_int(cfg, "upload.slot_ttl"),
    };
    router_service_t svc = {.domain = domain, .name = "HTTP File Upload", .deliver = deliver};
    int rc = upload__init(srv->data_dir, srv->secret, sizeof(srv->secret), &lim);
    if (rc)
        return rc;
    atexit(upload__free);
    drop_orphans(srv);
    if ((worker_slot = worker__slot_new()) < 0 || router__add_service(&svc) ||
        hooks__add(HOOK_ACCOUNT_REMOVED, 0, on_account_removed))
        return HEARTH_ELIMIT;
    hlog(LOG_INFO, "upload: service %s, files up to %llu bytes", domain,
         (unsigned long long)lim.max_file_size);
    return 0;
}

static int upload_worker_init(worker_t *w)
{
    if (worker_slot < 0)
        return 0; /* off */
    upload_worker_t *uw = calloc(1, sizeof(*uw));
    if (!uw)
        return HEARTH_ENOMEM;
    w->slot[worker_slot] = uw;
    if (w->index != 0)
        return 0;
    if (uv_timer_init(&w->loop, &uw->sweep))
        return HEARTH_EIO;
    uw->sweep.data = w;
    uv_unref((uv_handle_t *)&uw->sweep); /* never what keeps a loop running */
    uv_timer_start(&uw->sweep, sweep, SWEEP_PERIOD_MS, SWEEP_PERIOD_MS);
    return 0;
}

/* After the worker's loop closed its handles (the timer among them). */
static void upload_worker_free(worker_t *w)
{
    if (worker_slot < 0)
        return;
    free(w->slot[worker_slot]);
    w->slot[worker_slot] = NULL;
}

const module_t module_upload = {
    .name = "upload",
    .switch_key = "upload.enabled",
    .init = upload_init,
    .worker_init = upload_worker_init,
    .worker_free = upload_worker_free,
};
