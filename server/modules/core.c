/* The core module and the IQ entry point: XEP-0199 ping, XEP-0030 disco for the server and for
 * accounts, the legacy session; replies to the server's own pings; and the checks every IQ
 * passes before a module sees it (RFC 6120 §8.2.3: an id, get/set with exactly one child). */
#include <stdio.h>
#include <string.h>

#include "modules/module.h"

#define NS_PING "urn:xmpp:ping"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"

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
    /* The only node is the server's caps node (XEP-0115 §6.2), answered like the server. */
    if (ctx->set || (node && (ctx->where != IQ_TO_SERVER || strcmp(node, caps_node)))) {
        iq_error(ctx, ctx->set ? HEARTH_STANZA_ERR_BAD_REQUEST : HEARTH_STANZA_ERR_ITEM_NOT_FOUND,
                 NULL);
        return;
    }
    hearth_arena_t *a = ctx->arena;
    hearth_xml_node_t *r = iq_result(ctx);
    hearth_xml_node_t *q = hearth_xml_add_child(a, r, "query", NS_DISCO_INFO);
    if (node)
        hearth_xml_set_attr(a, q, "node", node);
    hearth_xml_node_t *id = hearth_xml_add_child(a, q, "identity", NULL);
    int account = ctx->where != IQ_TO_SERVER;
    if (account) {
        hearth_xml_set_attr(a, id, "category", "account");
        hearth_xml_set_attr(a, id, "type", "registered");
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
    hearth_xml_node_t *r = iq_result(ctx);
    hearth_xml_node_t *q = hearth_xml_add_child(ctx->arena, r, "query", NS_DISCO_ITEMS);
    if (ctx->where == IQ_TO_SERVER && !hearth_xml_attr(ctx->payload, "node")) {
        /* The group chat service (XEP-0045 §6.1 finds it here). */
        hearth_xml_node_t *it = hearth_xml_add_child(ctx->arena, q, "item", NULL);
        hearth_xml_set_attr(ctx->arena, it, "jid", ctx->c->w->srv->set.muc_domain);
        hearth_xml_set_attr(ctx->arena, it, "name", "Chatrooms");
    }
    iq_send(ctx, r);
}

static void session(iq_ctx_t *ctx)
{
    iq_send(ctx, iq_result(ctx));
}

static const iq_route_t core_iqs[] = {
    {NS_PING, "ping", IQ_TO_SERVER | IQ_TO_SELF | IQ_TO_ACCOUNT, ping},
    {NS_DISCO_INFO, "query", IQ_TO_SERVER | IQ_TO_SELF | IQ_TO_ACCOUNT, disco_info},
    {NS_DISCO_ITEMS, "query", IQ_TO_SERVER | IQ_TO_SELF | IQ_TO_ACCOUNT, disco_items},
    {NS_SESSION, "session", IQ_TO_SERVER | IQ_TO_SELF, session},
    {NULL, NULL, 0, NULL},
};
static const char *const core_server_features[] = {NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PING,
                                                   NS_SESSION, NULL};
static const char *const core_account_features[] = {NS_DISCO_INFO, NULL};

const module_t module_core = {
    .name = "core",
    .iqs = core_iqs,
    .server_features = core_server_features,
    .account_features = core_account_features,
};

void server_iq__handle(conn_t *c, hearth_xml_node_t *iq, hearth_arena_t *arena, int where,
                       const char *to)
{
    const char *type = hearth_xml_attr(iq, "type");
    const char *id = hearth_xml_attr(iq, "id");
    if (type && (!strcmp(type, "result") || !strcmp(type, "error"))) {
        if (c->ping_outstanding && id && !strcmp(id, c->ping_id))
            c->ping_outstanding = 0;
        return; /* replies to the server are consumed here */
    }
    if (!id || !type || (strcmp(type, "get") && strcmp(type, "set")) ||
        hearth_xml_count_elements(iq) != 1) {
        router__reply_error(c, iq, arena, HEARTH_STANZA_ERR_BAD_REQUEST,
                            "an IQ get or set has an id and exactly one payload");
        return;
    }
    iq_ctx_t ctx = {
        .c = c,
        .iq = iq,
        .payload = hearth_xml_first_element(iq),
        .arena = arena,
        .to = to,
        .where = where,
        .set = !strcmp(type, "set"),
    };
    if (!modules__dispatch_iq(&ctx))
        router__reply_error(c, iq, arena, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
}
