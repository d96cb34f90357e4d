/* The module registry (core/module.h): IQ routes from every module's table in one hash map,
 * disco and stream features in lists, the checks every IQ passes before a module sees it
 * (RFC 6120 §8.2.3), and the reply helpers. Built once at start-up, read-only afterwards. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/module.h"
#include "core/router.h"

/* NULL-terminated: the program's list less the modules its configuration switches off. */
static const module_t *active[MODULES_MAX + 1];
static const module_t *const *modules;
static strmap_t routes;   /* "ns name" -> const iq_route_t * */
static char caps_ver[64]; /* XEP-0115 verification string of the server's disco#info */

static void route_key(char *buf, size_t len, const char *ns, const char *name)
{
    snprintf(buf, len, "%s %s", ns, name);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* XEP-0115 §5.1: identities then features, sorted, each followed by '<', SHA-1, base64. */
static int compute_caps(void)
{
    const char *feats[256];
    size_t n = 0;
    for (size_t i = 0; modules[i]; i++)
        for (const char *const *f = modules[i]->server_features; f && *f && n < 256; f++)
            feats[n++] = *f;
    qsort(feats, n, sizeof(*feats), cmp_str);
    hearth_buf_t s = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&s, "server/im//" MODULES_SERVER_NAME "<");
    for (size_t i = 0; i < n; i++) {
        if (i && !strcmp(feats[i], feats[i - 1]))
            continue;
        rc = rc ?: hearth_buf_printf(&s, "%s<", feats[i]);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (!rc && EVP_Digest(s.data, s.len, md, &mdlen, EVP_sha1(), NULL) == 1)
        EVP_EncodeBlock((unsigned char *)caps_ver, md, (int)mdlen);
    else
        rc = HEARTH_ENOMEM;
    hearth_buf_free(&s);
    return rc;
}

const char *modules__caps_ver(void)
{
    return caps_ver;
}

int modules__init(server_t *srv, const module_t *const *list)
{
    size_t n = 0;
    for (size_t i = 0; list[i]; i++) {
        if (list[i]->switch_key && !config_bool(srv->cfg, list[i]->switch_key)) {
            hlog(LOG_INFO, "module %s: off (%s = false)", list[i]->name, list[i]->switch_key);
            continue;
        }
        if (n == MODULES_MAX)
            return HEARTH_ELIMIT;
        active[n++] = list[i];
    }
    active[n] = NULL;
    modules = active;
    if (compute_caps())
        return HEARTH_ENOMEM;
    if (strmap_init(&routes))
        return HEARTH_ENOMEM;
    for (size_t i = 0; modules[i]; i++) {
        const module_t *m = modules[i];
        for (const iq_route_t *r = m->iqs; r && r->ns; r++) {
            char key[512];
            route_key(key, sizeof(key), r->ns, r->name);
            if (strmap_get(&routes, key)) {
                hlog(LOG_ERROR, "module %s: %s is already handled", m->name, key);
                return HEARTH_EEXISTS;
            }
            if (strmap_put(&routes, key, (void *)r))
                return HEARTH_ENOMEM;
        }
        if (m->init && m->init(srv)) {
            hlog(LOG_ERROR, "module %s failed to start", m->name);
            return HEARTH_ECONFIG;
        }
    }
    return 0;
}

int modules__worker_init(worker_t *w)
{
    for (size_t i = 0; modules && modules[i]; i++)
        if (modules[i]->worker_init && modules[i]->worker_init(w)) {
            hlog(LOG_ERROR, "module %s failed to start on worker %u", modules[i]->name, w->index);
            return HEARTH_ECONFIG;
        }
    return 0;
}

void modules__worker_free(worker_t *w)
{
    for (size_t i = 0; modules && modules[i]; i++)
        if (modules[i]->worker_free)
            modules[i]->worker_free(w);
}

void modules__free(void)
{
    strmap_free(&routes);
    modules = NULL;
}

void modules__add_features(hearth_arena_t *a, hearth_xml_node_t *query, int account)
{
    for (size_t i = 0; modules[i]; i++) {
        const char *const *f = account ? modules[i]->account_features : modules[i]->server_features;
        for (; f && *f; f++) {
            hearth_xml_node_t *n = hearth_xml_add_child(a, query, "feature", NULL);
            hearth_xml_set_attr(a, n, "var", *f);
        }
    }
}

void modules__add_account_identities(hearth_arena_t *a, hearth_xml_node_t *query)
{
    for (size_t i = 0; modules[i]; i++) {
        for (const char *const *id = modules[i]->account_identities; id && *id; id++) {
            const char *slash = strchr(*id, '/');
            if (!slash)
                continue;
            hearth_xml_node_t *n = hearth_xml_add_child(a, query, "identity", NULL);
            char *cat = hearth_arena_strndup(a, *id, (size_t)(slash - *id));
            hearth_xml_set_attr(a, n, "category", cat);
            hearth_xml_set_attr(a, n, "type", slash + 1);
        }
    }
}

int modules__stream_features(hearth_buf_t *out)
{
    int rc = 0;
    for (size_t i = 0; modules[i]; i++)
        for (const char *const *f = modules[i]->stream_features; f && *f; f++)
            rc = rc ?: hearth_buf_append_str(out, *f);
    return rc;
}

int modules__preauth_iq(preauth_t *p, hearth_xml_node_t *iq, hearth_arena_t *arena)
{
    for (size_t i = 0; modules[i]; i++)
        if (modules[i]->preauth_iq && modules[i]->preauth_iq(p, iq, arena))
            return 1;
    return 0;
}

int modules__preauth_features(preauth_t *p, hearth_buf_t *out)
{
    int rc = 0;
    for (size_t i = 0; modules[i]; i++)
        if (modules[i]->preauth_features)
            rc = rc ?: modules[i]->preauth_features(p, out);
    return rc;
}

/* ---- dispatch ---- */

void modules__iq(session_t *s, hearth_xml_node_t *iq, hearth_arena_t *arena, int where,
                 const char *to)
{
    const char *type = hearth_xml_attr(iq, "type");
    const char *id = hearth_xml_attr(iq, "id");
    if (type && (!strcmp(type, "result") || !strcmp(type, "error"))) {
        /* Answers to requests of the server's own: the module that asked takes its own. */
        if (where == IQ_TO_SERVER || (where == IQ_TO_SELF && !hearth_xml_attr(iq, "to"))) {
            hook_args_t a = {.w = s->w, .s = s, .u = s->user, .st = iq, .arena = arena};
            hooks__run(HOOK_IQ_RESULT, &a);
        }
        return;
    }
    if (!id || !type || (strcmp(type, "get") && strcmp(type, "set")) ||
        hearth_xml_count_elements(iq) != 1) {
        router__reply_error(s, iq, arena, HEARTH_STANZA_ERR_BAD_REQUEST,
                            "an IQ get or set has an id and exactly one payload");
        return;
    }
    iq_ctx_t ctx = {
        .s = s,
        .w = s->w,
        .iq = iq,
        .payload = hearth_xml_first_element(iq),
        .arena = arena,
        .to = to,
        .where = where,
        .set = !strcmp(type, "set"),
    };
    char key[512];
    route_key(key, sizeof(key), ctx.payload->ns, ctx.payload->name);
    const iq_route_t *r = strmap_get(&routes, key);
    if (!r || !(r->where & where)) {
        router__reply_error(s, iq, arena, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    r->fn(&ctx);
}

/* ---- replies ---- */

hearth_xml_node_t *iq_result(iq_ctx_t *ctx)
{
    hearth_xml_node_t *r = hearth_xml_new(ctx->arena, "iq", HEARTH_NS_CLIENT);
    hearth_xml_set_attr(ctx->arena, r, "type", "result");
    hearth_xml_set_attr(ctx->arena, r, "id", hearth_xml_attr(ctx->iq, "id"));
    if (ctx->where != IQ_TO_SELF || hearth_xml_attr(ctx->iq, "to"))
        hearth_xml_set_attr(ctx->arena, r, "from", ctx->to);
    hearth_xml_set_attr(ctx->arena, r, "to", ctx->s->jid.full);
    return r;
}

void iq_send(iq_ctx_t *ctx, hearth_xml_node_t *reply)
{
    session__send_node(ctx->s, reply);
}

void iq_error(iq_ctx_t *ctx, hearth_stanza_error_t cond, const char *text)
{
    router__reply_error(ctx->s, ctx->iq, ctx->arena, cond, text);
}

iq_deferred_t *iq_defer(iq_ctx_t *ctx)
{
    iq_deferred_t *d = calloc(1, sizeof(*d));
    const char *id = hearth_xml_attr(ctx->iq, "id");
    const char *to = hearth_xml_attr(ctx->iq, "to");
    if (!d || !(d->id = strdup(id ? id : "")) || (to && !(d->from = strdup(ctx->to)))) {
        if (d)
            free(d->id);
        free(d);
        return NULL;
    }
    d->s = ctx->s;
    session__ref(d->s);
    return d;
}

void iq_deferred_free(iq_deferred_t *d)
{
    if (!d)
        return;
    session__unref(d->s);
    free(d->id);
    free(d->from);
    free(d);
}

/* The reply goes to the session even while it waits for a resumption (it is queued there
 * with what else it has not acknowledged); nothing once it has ended. */
static void deferred_send(iq_deferred_t *d, const char *type, const char *inner)
{
    session_t *s = d->s;
    if (s->state != SESSION_ENDED) {
        hearth_buf_t b = HEARTH_BUF_INIT;
        int rc = hearth_buf_printf(&b, "<iq type='%s' id='", type);
        rc = rc ?: hearth_buf_append_escaped(&b, d->id, strlen(d->id));
        if (d->from) {
            rc = rc ?: hearth_buf_append_str(&b, "' from='");
            rc = rc ?: hearth_buf_append_escaped(&b, d->from, strlen(d->from));
        }
        rc = rc ?: hearth_buf_append_str(&b, "' to='");
        rc = rc ?: hearth_buf_append_escaped(&b, s->jid.full, strlen(s->jid.full));
        if (inner) {
            rc = rc ?: hearth_buf_append_str(&b, "'>");
            rc = rc ?: hearth_buf_append_str(&b, inner);
            rc = rc ?: hearth_buf_append_str(&b, "</iq>");
        } else {
            rc = rc ?: hearth_buf_append_str(&b, "'/>");
        }
        if (!rc)
            session__send(s, b.data, b.len);
        hearth_buf_free(&b);
    }
    iq_deferred_free(d);
}

void iq_submit_failed(iq_ctx_t *ctx, iq_deferred_t *d, int rc, const char *what)
{
    hlog_conn(LOG_ERROR, ctx->s->id, ctx->s->jid.full, "%s request not queued: %s", what,
              hearth_strerror(rc));
    iq_deferred_free(d);
    iq_error(ctx,
             rc == HEARTH_EAGAIN ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                 : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
             NULL);
}

int iq_storage_failed(iq_deferred_t *d, int err, const char *what)
{
    if (!err || err == HEARTH_ENOTFOUND)
        return 0;
    hlog_conn(LOG_ERROR, d->s->id, d->s->jid.full, "%s storage failed: %s", what,
              hearth_strerror(err));
    iq_deferred_error(d, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
    return 1;
}

char *iq_localpart(hearth_arena_t *a, const char *bare)
{
    const char *at = strchr(bare, '@');
    return hearth_arena_strndup(a, bare, at ? (size_t)(at - bare) : strlen(bare));
}

void iq_deferred_result(iq_deferred_t *d, const char *payload_xml)
{
    deferred_send(d, "result", payload_xml);
}

void iq_deferred_error_xml(iq_deferred_t *d, const char *error_xml)
{
    deferred_send(d, "error", error_xml);
}

void iq_deferred_error(iq_deferred_t *d, hearth_stanza_error_t cond, const char *text)
{
    hearth_buf_t inner = HEARTH_BUF_INIT;
    if (hearth_stanza_error_write(&inner, cond, text) == 0)
        deferred_send(d, "error", inner.data);
    else
        iq_deferred_free(d); /* out of memory: dropped, as deferred_send drops it */
    hearth_buf_free(&inner);
}

/* ---- streams before authentication ---- */

void preauth__send(preauth_t *p, const char *data, size_t len)
{
    if (p->conn)
        p->ops->send(p, data, len);
}

void preauth__ref(preauth_t *p)
{
    p->refs++;
}

void preauth__unref(preauth_t *p)
{
    if (--p->refs == 0)
        free(p);
}
