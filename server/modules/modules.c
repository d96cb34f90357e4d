/* The module registry: IQ routes from every module's table in one hash map, disco features in
 * one list (server/modules/module.h). Built once at start-up, read-only afterwards. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/im.h"

static const module_t *const modules[] = {
    &module_core, &module_roster,   &module_presence, &module_message, &module_blocking,
    &module_last, &module_register, &module_misc,     &module_vcard,   &module_private,
    &module_mam,  &module_muc,      &module_carbons,
};
#define NMODULES (sizeof(modules) / sizeof(*modules))

static strmap_t routes; /* "ns name" -> const iq_route_t * */

static void route_key(char *buf, size_t len, const char *ns, const char *name)
{
    snprintf(buf, len, "%s %s", ns, name);
}

static char caps_ver[64]; /* XEP-0115 verification string of the server's disco#info */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* XEP-0115 §5.1: identities then features, sorted, each followed by '<', SHA-1, base64. */
static int compute_caps(void)
{
    const char *feats[256];
    size_t n = 0;
    for (size_t i = 0; i < NMODULES; i++)
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

int modules__init(server_t *srv)
{
    if (compute_caps())
        return HEARTH_ENOMEM;
    if (strmap_init(&routes))
        return HEARTH_ENOMEM;
    for (size_t i = 0; i < NMODULES; i++) {
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

void modules__free(void)
{
    strmap_free(&routes);
}

int modules__dispatch_iq(iq_ctx_t *ctx)
{
    char key[512];
    route_key(key, sizeof(key), ctx->payload->ns, ctx->payload->name);
    const iq_route_t *r = strmap_get(&routes, key);
    if (!r)
        return 0;
    if (!(r->where & ctx->where)) {
        iq_error(ctx, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        return 1;
    }
    r->fn(ctx);
    return 1;
}

void modules__add_features(hearth_arena_t *a, hearth_xml_node_t *query, int account)
{
    for (size_t i = 0; i < NMODULES; i++) {
        const char *const *f = account ? modules[i]->account_features : modules[i]->server_features;
        for (; f && *f; f++) {
            hearth_xml_node_t *n = hearth_xml_add_child(a, query, "feature", NULL);
            hearth_xml_set_attr(a, n, "var", *f);
        }
    }
}

/* ---- replies ---- */

hearth_xml_node_t *iq_result(iq_ctx_t *ctx)
{
    hearth_xml_node_t *r = hearth_xml_new(ctx->arena, "iq", "jabber:client");
    hearth_xml_set_attr(ctx->arena, r, "type", "result");
    hearth_xml_set_attr(ctx->arena, r, "id", hearth_xml_attr(ctx->iq, "id"));
    if (ctx->where != IQ_TO_SELF || hearth_xml_attr(ctx->iq, "to"))
        hearth_xml_set_attr(ctx->arena, r, "from", ctx->to);
    hearth_xml_set_attr(ctx->arena, r, "to", ctx->c->jid.full);
    return r;
}

void iq_send(iq_ctx_t *ctx, hearth_xml_node_t *reply)
{
    conn__send_node(ctx->c, reply);
}

void iq_error(iq_ctx_t *ctx, hearth_stanza_error_t cond, const char *text)
{
    router__reply_error(ctx->c, ctx->iq, ctx->arena, cond, text);
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
    d->c = ctx->c;
    conn__ref(d->c);
    return d;
}

void iq_deferred_free(iq_deferred_t *d)
{
    if (!d)
        return;
    conn__unref(d->c);
    free(d->id);
    free(d->from);
    free(d);
}

static void deferred_send(iq_deferred_t *d, const char *type, const char *inner)
{
    conn_t *c = d->c;
    if (!c->closing && c->jid.full) {
        hearth_buf_t b = HEARTH_BUF_INIT;
        int rc = hearth_buf_printf(&b, "<iq type='%s' id='", type);
        rc = rc ?: hearth_buf_append_escaped(&b, d->id, strlen(d->id));
        if (d->from) {
            rc = rc ?: hearth_buf_append_str(&b, "' from='");
            rc = rc ?: hearth_buf_append_escaped(&b, d->from, strlen(d->from));
        }
        rc = rc ?: hearth_buf_append_str(&b, "' to='");
        rc = rc ?: hearth_buf_append_escaped(&b, c->jid.full, strlen(c->jid.full));
        if (inner) {
            rc = rc ?: hearth_buf_append_str(&b, "'>");
            rc = rc ?: hearth_buf_append_str(&b, inner);
            rc = rc ?: hearth_buf_append_str(&b, "</iq>");
        } else {
            rc = rc ?: hearth_buf_append_str(&b, "'/>");
        }
        if (!rc)
            conn__send_stanza(c, b.data, b.len);
        hearth_buf_free(&b);
    }
    iq_deferred_free(d);
}

void iq_submit_failed(iq_ctx_t *ctx, iq_deferred_t *d, int rc, const char *what)
{
    hlog_conn(LOG_ERROR, ctx->c->id, ctx->c->jid.full, "%s request not queued: %s", what,
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
    hlog_conn(LOG_ERROR, d->c->id, d->c->jid.full, "%s storage failed: %s", what,
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

void iq_deferred_error(iq_deferred_t *d, hearth_stanza_error_t cond, const char *text)
{
    char inner[1024];
    snprintf(inner, sizeof(inner), "<error type='%s'><%s xmlns='%s'/>%s%s%s</error>",
             hearth_stanza_error_type(cond), hearth_stanza_error_name(cond),
             HEARTH_NS_STANZA_ERRORS, text ? "<text xmlns='" HEARTH_NS_STANZA_ERRORS "'>" : "",
             text ? text : "", text ? "</text>" : "");
    deferred_send(d, "error", inner);
}
