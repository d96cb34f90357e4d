/* The core module: XEP-0199 ping, XEP-0030 disco for the server and for accounts (an account's
 * nodes and items are its PEP service's: pep.c answers them), the legacy session. */
#include <stdio.h>
#include <string.h>

#include "modules/im.h"

static void ping(iq_ctx_t *ctx)
{
    if (ctx->set) {
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "ping is a get");
        return;
    }
    iq_send(ctx, iq_result(ctx));
}

static void disco_info(iq_ctx_t *ctx)
{
    const char *node = hearth_xml_attr(ctx->payload, "node");
    char caps_node[128];
    snprintf(caps_node, sizeof(caps_node), "%s#%s", MODULES_CAPS_NODE, modules__caps_ver());
    if (!ctx->set && adhoc__disco_info(ctx))
        return; /* the commands node and each command's (XEP-0050 §2) */
    /* An account's nodes are its PEP nodes (XEP-0060 §5.3). */
    if (!ctx->set && node && ctx->where != IQ_TO_SERVER) {
        pep__disco_node_info(ctx);
        return;
    }
    /* The server's only node is its caps node (XEP-0115 §6.2), answered like the server. */
    if (ctx->set || (node && (ctx->where != IQ_TO_SERVER || strcmp(node, caps_node)))) {
        iq_error(ctx, ctx->set ? HEARTH_STANZA_ERR_BAD_REQUEST : HEARTH_STANZA_ERR_ITEM_NOT_FOUND,
                 NULL);
        return;
    }
    hearth_arena_t *a = ctx->arena;
    hearth_xml_node_t *r = iq_result(ctx);
    hearth_xml_node_t *q = hearth_xml_add_child(a, r, "query", HEARTH_NS_DISCO_INFO);
    if (node)
        hearth_xml_set_attr(a, q, "node", node);
    hearth_xml_node_t *id = hearth_xml_add_child(a, q, "identity", NULL);
    int account = ctx->where != IQ_TO_SERVER;
    if (account) {
        hearth_xml_set_attr(a, id, "category", "account");
        hearth_xml_set_attr(a, id, "type", "registered");
        modules__add_account_identities(a, q);
    } else {
        hearth_xml_set_attr(a, id, "category", "server");
        hearth_xml_set_attr(a, id, "type", "im");
        hearth_xml_set_attr(a, id, "name", MODULES_SERVER_NAME);
    }
    modules__add_features(a, q, account);
    iq_send(ctx, r);
}

static void disco_items(iq_ctx_t *ctx)
{
    if (ctx->set) {
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, NULL);
        return;
    }
    if (ctx->where != IQ_TO_SERVER) {
        pep__disco_items(ctx); /* an account's items are its PEP nodes (XEP-0060 §5.2) */
        return;
    }
    if (adhoc__disco_items(ctx))
        return; /* the commands node (XEP-0050 §2.2) */
    hearth_xml_node_t *r = iq_result(ctx);
    hearth_xml_node_t *q = hearth_xml_add_child(ctx->arena, r, "query", HEARTH_NS_DISCO_ITEMS);
    /* The services hosted here, as they are switched on: the group chat service (XEP-0045
     * §6.1 finds it here), the upload service (XEP-0363 §3), ... */
    const router_service_t *svc;
    for (unsigned i = 0; !hearth_xml_attr(ctx->payload, "node") && (svc = router__service(i));
         i++) {
        if (!svc->name)
            continue;
        hearth_xml_node_t *it = hearth_xml_add_child(ctx->arena, q, "item", NULL);
        hearth_xml_set_attr(ctx->arena, it, "jid", svc->domain);
        hearth_xml_set_attr(ctx->arena, it, "name", svc->name);
    }
    iq_send(ctx, r);
}

static void session(iq_ctx_t *ctx)
{
    iq_send(ctx, iq_result(ctx));
}

static const iq_route_t core_iqs[] = {
    {HEARTH_NS_PING, "ping", IQ_TO_SERVER | IQ_TO_SELF | IQ_TO_ACCOUNT, ping},
    {HEARTH_NS_DISCO_INFO, "query", IQ_TO_SERVER | IQ_TO_SELF | IQ_TO_ACCOUNT, disco_info},
    {HEARTH_NS_DISCO_ITEMS, "query", IQ_TO_SERVER | IQ_TO_SELF | IQ_TO_ACCOUNT, disco_items},
    {HEARTH_NS_SESSION, "session", IQ_TO_SERVER | IQ_TO_SELF, session},
    {NULL, NULL, 0, NULL},
};
static const char *const core_server_features[] = {HEARTH_NS_DISCO_INFO, HEARTH_NS_DISCO_ITEMS,
                                                   HEARTH_NS_PING, HEARTH_NS_SESSION, NULL};
static const char *const core_account_features[] = {HEARTH_NS_DISCO_INFO, NULL};

const module_t module_core = {
    .name = "core",
    .iqs = core_iqs,
    .server_features = core_server_features,
    .account_features = core_account_features,
};
