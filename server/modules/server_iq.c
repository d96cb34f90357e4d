/* IQs the server answers itself: XEP-0199 ping, XEP-0030 disco for the server and (on the
 * user's behalf) for accounts, the legacy session, and the replies to the server's own pings.
 * Unknown payloads get service-unavailable, malformed IQs bad-request (RFC 6120 §8.2.3). */
#include <string.h>

#include "c2s/conn.h"

#define NS_PING "urn:xmpp:ping"
#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"

static const char *const server_features[] = {
    NS_DISCO_INFO,
    NS_DISCO_ITEMS,
    NS_PING,
    "urn:ietf:params:xml:ns:xmpp-session",
};

static hearth_xml_node_t *result(conn_t *c, hearth_xml_node_t *iq, hearth_arena_t *arena,
                                 const char *from)
{
    hearth_xml_node_t *r = hearth_xml_new(arena, "iq", "jabber:client");
    hearth_xml_set_attr(arena, r, "type", "result");
    hearth_xml_set_attr(arena, r, "id", hearth_xml_attr(iq, "id"));
    hearth_xml_set_attr(arena, r, "from", from);
    hearth_xml_set_attr(arena, r, "to", c->jid.full);
    return r;
}

static void disco_info(conn_t *c, hearth_xml_node_t *iq, hearth_xml_node_t *q,
                       hearth_arena_t *arena, const char *from, int on_behalf)
{
    if (hearth_xml_attr(q, "node")) {
        router__reply_error(c, iq, arena, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL);
        return;
    }
    hearth_xml_node_t *r = result(c, iq, arena, from);
    hearth_xml_node_t *qr = hearth_xml_add_child(arena, r, "query", NS_DISCO_INFO);
    hearth_xml_node_t *id = hearth_xml_add_child(arena, qr, "identity", NULL);
    if (on_behalf) {
        hearth_xml_set_attr(arena, id, "category", "account");
        hearth_xml_set_attr(arena, id, "type", "registered");
        hearth_xml_node_t *f = hearth_xml_add_child(arena, qr, "feature", NULL);
        hearth_xml_set_attr(arena, f, "var", NS_DISCO_INFO);
    } else {
        hearth_xml_set_attr(arena, id, "category", "server");
        hearth_xml_set_attr(arena, id, "type", "im");
        hearth_xml_set_attr(arena, id, "name", "Hearth");
        for (size_t i = 0; i < sizeof(server_features) / sizeof(*server_features); i++) {
            hearth_xml_node_t *f = hearth_xml_add_child(arena, qr, "feature", NULL);
            hearth_xml_set_attr(arena, f, "var", server_features[i]);
        }
    }
    conn__send_node(c, r);
}

void server_iq__handle(conn_t *c, hearth_xml_node_t *iq, hearth_arena_t *arena, int on_behalf)
{
    const char *type = hearth_xml_attr(iq, "type");
    const char *id = hearth_xml_attr(iq, "id");
    const char *from = on_behalf ? c->bare : c->w->srv->set.domain;
    if (on_behalf && hearth_xml_attr(iq, "to"))
        from = hearth_xml_attr(iq, "to");
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
    hearth_xml_node_t *q = hearth_xml_first_element(iq);
    int get = !strcmp(type, "get");
    if (!strcmp(q->ns, NS_PING) && !strcmp(q->name, "ping") && get) {
        conn__send_node(c, result(c, iq, arena, from));
    } else if (!strcmp(q->ns, NS_DISCO_INFO) && !strcmp(q->name, "query") && get) {
        disco_info(c, iq, q, arena, from, on_behalf);
    } else if (!strcmp(q->ns, NS_DISCO_ITEMS) && !strcmp(q->name, "query") && get) {
        hearth_xml_node_t *r = result(c, iq, arena, from);
        hearth_xml_add_child(arena, r, "query", NS_DISCO_ITEMS);
        conn__send_node(c, r);
    } else if (!strcmp(q->ns, NS_SESSION) && !strcmp(q->name, "session") && !get && !on_behalf) {
        conn__send_node(c, result(c, iq, arena, from));
    } else {
        router__reply_error(c, iq, arena, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
    }
}
