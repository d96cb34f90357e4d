/* XEP-0049 Private XML Storage: XML fragments an account keeps on the server for itself, one per
 * namespace, through storage_private_*. Only the owner's own resources reach them. Every answer
 * is deferred to the storage callback, which runs on the requester's worker. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/im.h"

#define QUERY_OPEN "<query xmlns='" HEARTH_NS_PRIVATE "'>"
#define QUERY_CLOSE "</query>"

/* A get in flight. */
typedef struct private_get {
    iq_deferred_t *d;
    char *empty; /* malloc'd: the answer when nothing is stored (the query as asked, emptied) */
} private_get_t;

/* §2.3 makes refusing reserved namespaces optional. Refused: the fragment's root must be "scoped
 * by its own namespace", so no namespace at all, jabber:iq:private itself (what an unqualified
 * child inherits) and the stanza namespaces. Other jabber:* and vcard-temp are let through: some
 * clients store data under such names, and refusing them breaks those clients for no gain. */
static int reserved_ns(const char *ns)
{
    return !*ns || !strcmp(ns, HEARTH_NS_PRIVATE) || !strcmp(ns, HEARTH_NS_CLIENT) ||
           !strcmp(ns, HEARTH_NS_SERVER);
}

static void on_get(void *ud, int err, const char *xml)
{
    private_get_t *g = ud;
    if (iq_storage_failed(g->d, err, "private XML"))
        goto out;
    if (!xml) {
        iq_deferred_result(g->d, g->empty);
        goto out;
    }
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_buf_append_str(&b, QUERY_OPEN) || hearth_buf_append_str(&b, xml) ||
        hearth_buf_append_str(&b, QUERY_CLOSE))
        iq_deferred_error(g->d, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
    else
        iq_deferred_result(g->d, b.data);
    hearth_buf_free(&b);
out:
    free(g->empty);
    free(g);
}

static private_stored_fn listener;

void private__listen(private_stored_fn fn)
{
    listener = fn;
}

/* A set in flight: what the listener hears once it is stored. */
typedef struct private_set {
    iq_deferred_t *d;
    worker_t *w;
    char *bare;
    char *ns;
    char *xml;
} private_set_t;

static void private_set_free(private_set_t *ps)
{
    free(ps->bare);
    free(ps->ns);
    free(ps->xml);
    free(ps);
}

/* ENOTFOUND on a set: the account is gone (deleted while this session lives); an IQ for an
 * account that does not exist gets service-unavailable (RFC 6121 §8.5.1). */
static void on_set(void *ud, int err)
{
    private_set_t *ps = ud;
    iq_deferred_t *d = ps->d;
    if (err == HEARTH_ENOTFOUND) {
        iq_deferred_error(d, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
    } else if (err == HEARTH_ELIMIT) {
        iq_deferred_error(d, HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
                          "private XML storage of this account is full");
    } else if (!iq_storage_failed(d, err, "private XML")) {
        iq_deferred_result(d, NULL);
        if (listener)
            listener(ps->w, ps->bare, ps->ns, ps->xml);
    }
    private_set_free(ps);
}

/* The query as asked with its children emptied, serialised (malloc'd; NULL on ENOMEM): the
 * result of a get when nothing is stored, as in §2.3's example of a retrieval. */
static char *emptied_query(iq_ctx_t *ctx)
{
    hearth_arena_t *a = ctx->arena;
    hearth_xml_node_t *q = hearth_xml_new(a, "query", HEARTH_NS_PRIVATE);
    if (!q)
        return NULL;
    for (hearth_xml_node_t *e = hearth_xml_first_element(ctx->payload); e;
         e = hearth_xml_next_element(e)) {
        hearth_xml_node_t *cp = hearth_xml_copy(a, e);
        if (!cp)
            return NULL;
        cp->children = cp->last_child = NULL;
        hearth_xml_append(q, cp);
    }
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(q, HEARTH_NS_CLIENT, &b))
        return NULL;
    return hearth_buf_steal(&b, NULL);
}

static void private_get(iq_ctx_t *ctx, const char *user, const char *ns)
{
    private_get_t *g = calloc(1, sizeof(*g));
    if (!g || !(g->empty = emptied_query(ctx)) || !(g->d = iq_defer(ctx))) {
        if (g)
            free(g->empty);
        free(g);
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    server_t *srv = ctx->s->w->srv;
    int rc = storage_private_get(srv->storage, &ctx->s->w->storage_target, user, ns, on_get, g);
    if (rc) {
        iq_submit_failed(ctx, g->d, rc, "private XML");
        free(g->empty);
        free(g);
    }
}

/* Stores the query's children, serialised one after the other, as the fragment for ns. */
static void private_set(iq_ctx_t *ctx, const char *user, const char *ns)
{
    server_t *srv = ctx->s->w->srv;
    hearth_buf_t xml = HEARTH_BUF_INIT;
    for (hearth_xml_node_t *e = hearth_xml_first_element(ctx->payload); e;
         e = hearth_xml_next_element(e)) {
        if (hearth_xml_serialize(e, HEARTH_NS_CLIENT, &xml)) {
            hearth_buf_free(&xml);
            iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
            return;
        }
    }
    if (xml.len > ctx->s->w->set.private_max_size) {
        hearth_buf_free(&xml);
        iq_error(ctx, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "private XML too large");
        return;
    }
    private_set_t *ps = calloc(1, sizeof(*ps));
    if (ps) {
        ps->w = ctx->w;
        ps->bare = strdup(ctx->s->user->bare);
        ps->ns = strdup(ns);
        ps->xml = strdup(xml.data ? xml.data : "");
    }
    if (!ps || !ps->bare || !ps->ns || !ps->xml || !(ps->d = iq_defer(ctx))) {
        if (ps)
            private_set_free(ps);
        hearth_buf_free(&xml);
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    int rc = storage_private_set(srv->storage, &ctx->s->w->storage_target, user, ns, xml.data,
                                 ctx->s->w->set.private_max_total, on_set, ps);
    hearth_buf_free(&xml); /* storage copied it */
    if (rc) {
        iq_submit_failed(ctx, ps->d, rc, "private XML");
        private_set_free(ps);
    }
}

static void private_xml(iq_ctx_t *ctx)
{
    /* §2.3 and §3: get or set for another JID (another account, or the server) MUST fail,
     * preferably with forbidden; §4: nobody but the user's own resources. */
    if (ctx->where != IQ_TO_SELF) {
        iq_error(ctx, HEARTH_STANZA_ERR_FORBIDDEN, "private XML is only for its owner");
        return;
    }
    /* §2.3: at least one child with a proper namespace, else MUST not-acceptable; one namespace
     * per get, and a set or result "MAY contain multiple elements qualified by the same
     * namespace", so several children are accepted when they share theirs. */
    hearth_xml_node_t *first = hearth_xml_first_element(ctx->payload);
    if (!first) {
        iq_error(ctx, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "the query needs one child element");
        return;
    }
    for (hearth_xml_node_t *e = hearth_xml_next_element(first); e; e = hearth_xml_next_element(e)) {
        if (strcmp(e->ns, first->ns)) {
            iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "one namespace per request");
            return;
        }
    }
    if (reserved_ns(first->ns)) {
        iq_error(ctx, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "reserved namespace");
        return;
    }
    if (strlen(first->ns) > STORAGE_NAME_MAX) {
        iq_error(ctx, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "namespace too long");
        return;
    }
    char *user = iq_localpart(ctx->arena, ctx->s->user->bare);
    if (!user) {
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    if (ctx->set)
        private_set(ctx, user, first->ns);
    else
        private_get(ctx, user, first->ns);
}

static const iq_route_t private_iqs[] = {
    {HEARTH_NS_PRIVATE, "query", IQ_TO_SERVER | IQ_TO_SELF | IQ_TO_ACCOUNT, private_xml},
    {NULL, NULL, 0, NULL},
};
/* Advertised on accounts, where the data lives, and on the server, where clients look first. */
static const char *const private_features[] = {HEARTH_NS_PRIVATE, NULL};

const module_t module_private = {
    .name = "private",
    .iqs = private_iqs,
    .server_features = private_features,
    .account_features = private_features,
};
