/* Every XML namespace hearth speaks, once: the library, hearthd and the tools name them from
 * here (HEARTH_NS_*), never as literals of their own. String literals, so that they splice into
 * constant markup: "<ping xmlns='" HEARTH_NS_PING "'/>". */
#ifndef HEARTH_NS_H
#define HEARTH_NS_H

/* XML itself. */
#define HEARTH_NS_XML "http://www.w3.org/XML/1998/namespace"
#define HEARTH_NS_XMLNS "http://www.w3.org/2000/xmlns/"

/* The stream and its negotiation (RFC 6120, RFC 7395). */
#define HEARTH_NS_STREAMS "http://etherx.jabber.org/streams"
#define HEARTH_NS_CLIENT "jabber:client"
#define HEARTH_NS_SERVER "jabber:server"
#define HEARTH_NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"
#define HEARTH_NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"
#define HEARTH_NS_STANZA_ERRORS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define HEARTH_NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define HEARTH_NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define HEARTH_NS_SASL_CB "urn:xmpp:sasl-cb:0"
#define HEARTH_NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define HEARTH_NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define HEARTH_NS_SM2 "urn:xmpp:sm:2"
#define HEARTH_NS_SM3 "urn:xmpp:sm:3"
#define HEARTH_NS_CSI "urn:xmpp:csi:0"
#define HEARTH_NS_CAPS "http://jabber.org/protocol/caps"
#define HEARTH_NS_REGISTER_FEATURE "http://jabber.org/features/iq-register"
#define HEARTH_NS_ROSTERVER "urn:xmpp:features:rosterver"
#define HEARTH_NS_PRE_APPROVAL "urn:xmpp:features:pre-approval"

/* Web transports (XEP-0124/0206) and their discovery (XEP-0156: link relations, host-meta). */
#define HEARTH_NS_HTTPBIND "http://jabber.org/protocol/httpbind"
#define HEARTH_NS_XBOSH "urn:xmpp:xbosh"
#define HEARTH_NS_ALT_WEBSOCKET "urn:xmpp:alt-connections:websocket"
#define HEARTH_NS_ALT_XBOSH "urn:xmpp:alt-connections:xbosh"
#define HEARTH_NS_XRD "http://docs.oasis-open.org/ns/xri/xrd-1.0"

/* IM (RFC 6121) and the small extensions. */
#define HEARTH_NS_ROSTER "jabber:iq:roster"
#define HEARTH_NS_REGISTER "jabber:iq:register"
#define HEARTH_NS_PRIVATE "jabber:iq:private"
#define HEARTH_NS_LAST "jabber:iq:last"
#define HEARTH_NS_VERSION "jabber:iq:version"
#define HEARTH_NS_VCARD "vcard-temp"
#define HEARTH_NS_DATA "jabber:x:data"
#define HEARTH_NS_CONFERENCE "jabber:x:conference"
#define HEARTH_NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define HEARTH_NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define HEARTH_NS_RSM "http://jabber.org/protocol/rsm"
#define HEARTH_NS_NICK "http://jabber.org/protocol/nick"
#define HEARTH_NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define HEARTH_NS_PING "urn:xmpp:ping"
#define HEARTH_NS_TIME "urn:xmpp:time"
#define HEARTH_NS_DELAY "urn:xmpp:delay"
#define HEARTH_NS_SID "urn:xmpp:sid:0"
#define HEARTH_NS_RECEIPTS "urn:xmpp:receipts"
#define HEARTH_NS_HINTS "urn:xmpp:hints"
#define HEARTH_NS_FORWARD "urn:xmpp:forward:0"
#define HEARTH_NS_CARBONS "urn:xmpp:carbons:2"
#define HEARTH_NS_MAM "urn:xmpp:mam:2"
#define HEARTH_NS_BLOCKING "urn:xmpp:blocking"
#define HEARTH_NS_BLOCKING_ERRORS "urn:xmpp:blocking:errors"

/* Publish-subscribe (XEP-0060) and personal eventing (XEP-0163), with their forms' FORM_TYPEs. */
#define HEARTH_NS_PUBSUB "http://jabber.org/protocol/pubsub"
#define HEARTH_NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
#define HEARTH_NS_PUBSUB_OWNER "http://jabber.org/protocol/pubsub#owner"
#define HEARTH_NS_PUBSUB_ERRORS "http://jabber.org/protocol/pubsub#errors"
#define HEARTH_NS_PUBSUB_NODE_CONFIG "http://jabber.org/protocol/pubsub#node_config"
#define HEARTH_NS_PUBSUB_PUBLISH_OPTIONS "http://jabber.org/protocol/pubsub#publish-options"
#define HEARTH_NS_PUBSUB_META_DATA "http://jabber.org/protocol/pubsub#meta-data"

/* Multi-user chat (XEP-0045) and its forms' FORM_TYPEs. */
#define HEARTH_NS_MUC "http://jabber.org/protocol/muc"
#define HEARTH_NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define HEARTH_NS_MUC_ADMIN "http://jabber.org/protocol/muc#admin"
#define HEARTH_NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"
#define HEARTH_NS_MUC_ROOMCONFIG "http://jabber.org/protocol/muc#roomconfig"
#define HEARTH_NS_MUC_ROOMINFO "http://jabber.org/protocol/muc#roominfo"
#define HEARTH_NS_MUC_REGISTER "http://jabber.org/protocol/muc#register"
#define HEARTH_NS_MUC_REQUEST "http://jabber.org/protocol/muc#request"
#define HEARTH_NS_MUC_STABLE_ID "http://jabber.org/protocol/muc#stable_id"

#endif
