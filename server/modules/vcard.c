/* XEP-0054 vcard-temp: each account's vCard, kept as the serialised <vCard/> element through
 * storage_vcard_*. Anyone may read a local account's vCard; only its owner may change it. Every
 * answer is deferred to the storage callback, which runs on the requester's worker. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/im.h"

#define EMPTY_VCARD "<vCard xmlns='" HEARTH_NS_VCARD "'/>"

static vcard_listener_t listener;

void vcard__listen(const vcard_listener_t *l)
{
    listener = *l;
}

/* A set in flight: what the listener hears once it is stored. */
typedef struct vcard_set {
    iq_deferred_t *d;
    worker_t *w;
    char *bare;
    char *xml; /* NULL: cleared */
} vcard_set_t;

/* XEP-0054 §3.1 and §3.3: an account with no vCard stored (never set, or cleared with an empty
 * <vCard/>) has an empty one, as Prosody and ejabberd answer; clients treat an error here as a
 * failure. Only an account that does not exist gets service-unavailable: the same answer as
 * RFC 6121 §8.5.1 gives any IQ to a bare JID without an account. */
static void on_get(void *ud, int err, const char *xml)
{
    iq_deferred_t *d = ud;
    if (err == HEARTH_ENOTFOUND)
        iq_deferred_error(d, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
    else if (!iq_storage_failed(d, err, "vCard"))
        iq_deferred_result(d, xml ? xml : EMPTY_VCARD);
}

/* ENOTFOUND on a set: the account is gone (deleted while this session lives); an IQ for an
 * account that does not exist gets service-unavailable (RFC 6121 §8.5.1). */
static void on_set(void *ud, int err)
{
    vcard_set_t *vs = ud;
    iq_deferred_t *d = vs->d;
    if (err == HEARTH_ENOTFOUND)
        iq_deferred_error(d, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
    else if (!iq_storage_failed(d, err, "vCard") && listener.stored)
        listener.stored(vs->w, vs->bare, vs->xml, d); /* it answers */
    else if (!err)
        iq_deferred_result(d, NULL);
    free(vs->bare);
    free(vs->xml);
    free(vs);
}

static void vcard_get(iq_ctx_t *ctx)
{
    if (ctx->where == IQ_TO_SERVER) {
        /* §3.3's note: a server may have a vCard of its own; this one has none. */
        iq_error(ctx, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL);
        return;
    }
    int own = ctx->where == IQ_TO_SELF;
    char *user = iq_localpart(ctx->arena, own ? ctx->s->user->bare : ctx->to);
    iq_deferred_t *d = user ? iq_defer(ctx) : NULL;
    if (!d) {
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    server_t *srv = ctx->s->w->srv;
    int rc = storage_vcard_get(srv->storage, &ctx->s->w->storage_target, user, on_get, d);
    if (rc)
        iq_submit_failed(ctx, d, rc, "vCard");
}

/* XEP-0054 §3.2: a set replaces the whole vCard. */
static void vcard_set(iq_ctx_t *ctx)
{
    /* §3.2: a set to a JID other than one's own bare JID MUST fail, SHOULD with forbidden or
     * not-allowed: forbidden for another account (its owner could), not-allowed for the server
     * (nobody can set the server's vCard). */
    if (ctx->where != IQ_TO_SELF) {
        iq_error(ctx,
                 ctx->where == IQ_TO_SERVER ? HEARTH_STANZA_ERR_NOT_ALLOWED
                                            : HEARTH_STANZA_ERR_FORBIDDEN,
                 "only the owner may change a vCard");
        return;
    }
    server_t *srv = ctx->s->w->srv;
    hearth_buf_t xml = HEARTH_BUF_INIT;
    /* A <vCard/> with no element inside is no vCard: the stored one is deleted, so that
     * afterwards everyone reads the empty <vCard/>, as before any set. context_ns jabber:client
     * makes the stored text carry xmlns='vcard-temp' and be usable as it is inside any c2s result.
     */
    if (hearth_xml_first_element(ctx->payload) &&
        hearth_xml_serialize(ctx->payload, HEARTH_NS_CLIENT, &xml)) {
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    if (xml.len > ctx->s->w->set.vcard_max_size) {
        hearth_buf_free(&xml);
        iq_error(ctx, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "vCard too large");
        return;
    }
    hearth_stanza_error_t cond;
    const char *text = NULL;
    if (listener.check && listener.check(ctx->s, ctx->payload, &cond, &text)) {
        hearth_buf_free(&xml);
        iq_error(ctx, cond, text);
        return;
    }
    char *user = iq_localpart(ctx->arena, ctx->s->user->bare);
    vcard_set_t *vs = user ? calloc(1, sizeof(*vs)) : NULL;
    if (vs) {
        vs->w = ctx->w;
        vs->bare = strdup(ctx->s->user->bare);
        vs->xml = xml.data ? strdup(xml.data) : NULL;
    }
    if (!vs || !vs->bare || (xml.data && !vs->xml) || !(vs->d = iq_defer(ctx))) {
        if (vs) {
            free(vs->bare);
            free(vs->xml);
        }
        free(vs);
        hearth_buf_free(&xml);
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    int rc =
        storage_vcard_set(srv->storage, &ctx->s->w->storage_target, user, xml.data, on_set, vs);
    hearth_buf_free(&xml); /* storage copied it */
    if (rc) {
        iq_submit_failed(ctx, vs->d, rc, "vCard");
        free(vs->bare);
        free(vs->xml);
        free(vs);
    }
}

static void vcard(iq_ctx_t *ctx)
{
    if (ctx->set)
        vcard_set(ctx);
    else
        vcard_get(ctx);
}

static const iq_route_t vcard_iqs[] = {
    {HEARTH_NS_VCARD, "vCard", IQ_TO_SERVER | IQ_TO_SELF | IQ_TO_ACCOUNT, vcard},
    {NULL, NULL, 0, NULL},
};
/* XEP-0054 §4: the feature on the server (it offers the protocol) and on accounts (they have
 * vCards served on their behalf). */
static const char *const vcard_features[] = {HEARTH_NS_VCARD, NULL};

const module_t module_vcard = {
    .name = "vcard",
    .iqs = vcard_iqs,
    .server_features = vcard_features,
    .account_features = vcard_features,
};
