/* The XMPP stream without I/O (as jabberd2's sx): bytes in through hearth_stream_feed, stream
 * events and top-level elements out through callbacks, bytes out through a write callback. Two
 * framings (TCP per RFC 6120, WebSocket per RFC 7395), two roles (server, client), STARTTLS and
 * direct TLS as steps inside it, stream restarts after TLS and SASL. Shared by hearthd's c2s and
 * libhearth's client. A stream is used by one thread at a time (it may move between threads). */
#ifndef HEARTH_STREAM_H
#define HEARTH_STREAM_H

#include <stddef.h>

#include "hearth/error.h"
#include "hearth/ns.h"
#include "hearth/tls.h"
#include "hearth/xml.h"
#include "hearth/xmpp_error.h"

typedef enum hearth_stream_role {
    HEARTH_STREAM_SERVER, /* the receiving entity: answers the peer's header with its own */
    HEARTH_STREAM_CLIENT, /* the initiating entity: sends the first header */
} hearth_stream_role_t;

typedef enum hearth_stream_framing {
    /* RFC 6120 over a byte stream: <stream:stream> ... </stream:stream>; feed takes any split. */
    HEARTH_STREAM_TCP,
    /* RFC 7395: <open/>, one complete element per message, <close/>. One feed call is exactly one
     * WebSocket text message and each write call is exactly one message. No STARTTLS (TLS is the
     * transport's, wss:). */
    HEARTH_STREAM_WEBSOCKET,
} hearth_stream_framing_t;

typedef struct hearth_stream_config {
    hearth_stream_role_t role;
    hearth_stream_framing_t framing;
    /* Server: the 'from' of its header (changeable with hearth_stream_set_domain until the header
     * is sent). Client: the 'to' of its header, and the name its TLS certificate is checked
     * against. Required. Copied. */
    const char *domain;
    /* Client: the 'from' of its header (RFC 6120 §4.7.1: the bare JID, once TLS protects it);
     * NULL = none. Server: unused. Copied. */
    const char *from;
    /* The content namespace the TCP header must declare as default (NULL = "jabber:client");
     * "jabber:server" is for s2s. Copied. */
    const char *content_ns;
    /* xml:lang of our header; NULL = "en". Copied. */
    const char *lang;
    /* TCP only: TLS from the first byte (XEP-0368 direct TLS); NULL = none. A server context for
     * the server role, a client one (it offers ALPN "xmpp-client") for the client role. The
     * session takes its own reference on the context. */
    hearth_tls_ctx_t *direct_tls;
    /* Parser limits (include/hearth/xml.h); NULL = defaults. In WebSocket framing a message is
     * bounded by max_stanza_bytes (max_header_bytes while a header is expected). */
    const hearth_xml_limits_t *limits;
} hearth_stream_config_t;

/* The peer's stream header, handed to the open callback. Every pointer is valid during that
 * callback only: copy what must outlive it (the stream id stays in hearth_stream_id). */
typedef struct hearth_stream_header {
    const char *from, *to, *id, *version, *lang; /* attributes; NULL when absent */
    const hearth_xml_node_t *node; /* the whole element: <stream:stream> (its namespace and name
                                      as sent) or the WebSocket <open/> */
    const char *default_ns;        /* TCP: the default namespace declared on it; WebSocket: "" */
} hearth_stream_header_t;

/* Callbacks. write is required; any other may be NULL. open, element, close, error and tls_done
 * are called only from inside hearth_stream_feed; write from any call that sends. Callbacks may
 * call the send functions, hearth_stream_error, hearth_stream_close, hearth_stream_restart,
 * hearth_stream_starttls, and hearth_stream_free (the free is deferred: nothing more is called
 * and the memory goes when the outermost call into the stream returns). write must only take
 * the bytes: a call from inside it that would feed, send, close or take a step gets
 * HEARTH_EBUSY (hearth_stream_free is deferred there too). */
typedef struct hearth_stream_cbs {
    /* Bytes for the peer (ciphertext once TLS is on); the callee copies them. In WebSocket
     * framing one call is one message. */
    void (*write)(void *ud, const char *data, size_t len);
    /* The peer's header arrived and passed the checks that belong to the stream: the root's
     * namespace and name (<invalid-namespace/>), the content namespace in TCP framing
     * (<invalid-namespace/>), a version of 1.x (<unsupported-version/>). What is left to the
     * caller: the server checks 'to' against the domains it serves (and may call
     * hearth_stream_set_domain, or hearth_stream_error with <host-unknown/>). In the server role
     * our header goes out when open returns, or before anything sent from inside it. */
    void (*open)(void *ud, const hearth_stream_header_t *header);
    /* One complete top-level element (a stanza, features, a SASL or TLS element, a stream error
     * from the peer). el and everything in arena are valid during the call only; the callee may
     * change the tree and allocate in arena. Steps: after delivering <starttls/> (server role) or
     * <proceed/> (client role) in TCP framing, and <success/> of SASL (client role), the stream
     * reads nothing more (the rest of the input is discarded, never parsed) until the caller
     * calls hearth_stream_starttls or hearth_stream_restart (a refusal, <failure/>, ends the
     * stream: close it). */
    void (*element)(void *ud, hearth_xml_node_t *el, hearth_arena_t *arena);
    /* The peer closed its stream (</stream:stream> or <close/>). Answer with hearth_stream_close
     * unless already closed; end the connection once both are closed. */
    void (*close)(void *ud);
    /* The stream is over for input. err: HEARTH_EXML (the peer's XML or framing is wrong),
     * HEARTH_ELIMIT (a limit was hit), HEARTH_ENOMEM, HEARTH_ETLS (TLS failed; text is its reason),
     * HEARTH_ECLOSED (TLS close_notify before the stream was closed), HEARTH_EIO (no randomness
     * for a stream id). cond is the stream error that was sent to the peer (header first, then
     * the error and the close, when our output was still open), HEARTH_STREAM_ERR_NONE when none
     * could be (TLS). End the connection once the output is written. Called at most once, and
     * never after close. */
    void (*error)(void *ud, int err, hearth_stream_error_t cond, const char *text);
    /* The TLS handshake completed (STARTTLS or direct TLS): hearth_stream_tls gives the version
     * and channel-binding data. In the client role our new header follows right after. */
    void (*tls_done)(void *ud);
} hearth_stream_cbs_t;

typedef struct hearth_stream hearth_stream_t;

/* cbs is copied. NULL on ENOMEM or an invalid config (no domain or write callback, direct TLS
 * with WebSocket framing). */
hearth_stream_t *hearth_stream_new(const hearth_stream_config_t *cfg,
                                   const hearth_stream_cbs_t *cbs, void *ud);
/* Client role: sends our header (or, with direct TLS, the ClientHello; the header follows the
 * handshake). Server role: nothing to do (0). HEARTH_EINVAL when called twice, HEARTH_EBUSY
 * inside write, HEARTH_ENOMEM, HEARTH_ETLS. */
int hearth_stream_start(hearth_stream_t *s) HEARTH_MUST_CHECK;
/* Bytes from the peer (TCP: any split; WebSocket: exactly one message). Callbacks run inside.
 * Returns 0 while the stream goes on for input; once it is over, the err of the error callback,
 * or HEARTH_ECLOSED after the peer's close, our own stream error or a free from a callback (and
 * on every later call, the input then ignored). HEARTH_EBUSY from inside a callback,
 * HEARTH_EINVAL for NULL data with a length. */
int hearth_stream_feed(hearth_stream_t *s, const char *data, size_t len) HEARTH_MUST_CHECK;
/* The stream has been quiet a while: its parser's memory goes back if it stands between stanzas
 * (hearth_xml_stream_trim). 1 when something was given back; 0 otherwise or inside a call. */
int hearth_stream_trim(hearth_stream_t *s);
/* A quiet stream's TLS 1.3 session gives back its SSL object (hearth_tls_release): 1 when it
 * did, 0 when there is none or it cannot now (not from inside a callback). */
int hearth_stream_release_tls(hearth_stream_t *s);

/* ---- sending. Before anything else, our header is sent if this stream has none yet (both
 * roles). After a stream error or a close was sent, sends are ignored (HEARTH_ECLOSED) and
 * nothing more is written. Other results: 0, HEARTH_ENOMEM, HEARTH_ETLS (TLS write failed: the
 * stream is over), HEARTH_ELIMIT (over 1 MiB waiting for the TLS handshake: over too),
 * HEARTH_EBUSY inside write. Nothing is kept: the caller's data is written or dropped. ---- */

/* Serialised top-level element(s), written as they are. TCP: in the context of the content
 * namespace (stanzas need no xmlns; hearth_stream_context_ns says which). WebSocket: exactly one
 * element, with its namespace declared on it (xmlns='jabber:client' on stanzas). */
int hearth_stream_send(hearth_stream_t *s, const char *data, size_t len);
/* A tree, serialised for this framing (in WebSocket framing its namespace is declared on it). */
int hearth_stream_send_node(hearth_stream_t *s, const hearth_xml_node_t *el);
/* <stream:features> around the given serialised children (each declaring its own namespace, as
 * <starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/> does); the stream: prefix is declared on
 * it in WebSocket framing. */
int hearth_stream_send_features(hearth_stream_t *s, const char *children, size_t len);
/* The namespace a serialised element is in scope of on this stream: the content namespace in
 * TCP framing, "" in WebSocket framing (each element declares its own). For
 * hearth_xml_serialize's context_ns before hearth_stream_send. */
const char *hearth_stream_context_ns(const hearth_stream_t *s);

/* Sends a stream error (text may be NULL) and closes our stream: our header first if none was
 * sent, then <stream:error> and </stream:stream> (WebSocket: the error, then <close/>, each a
 * message). Input stops too: nothing more is parsed or reported. No error callback for it.
 * HEARTH_ECLOSED when our stream was already closed (nothing sent). */
int hearth_stream_error(hearth_stream_t *s, hearth_stream_error_t cond, const char *text);
/* Closes our stream (</stream:stream> or <close/>); input goes on until the peer's close.
 * HEARTH_ECLOSED when already closed. */
int hearth_stream_close(hearth_stream_t *s);

/* TLS close_notify (written through write) when TLS is on, after the close or the error and
 * before the transport is closed; nothing otherwise. */
void hearth_stream_shutdown(hearth_stream_t *s);

/* ---- steps ---- */

/* STARTTLS (TCP framing only), after <proceed/> was sent (server role: send it, then call this,
 * from the element callback of <starttls/> or later) or received (client role). Input after the
 * element that began the step was discarded, never parsed (STARTTLS command injection); from now
 * on input goes to TLS, whose plaintext is a new stream (a restart), and output goes through
 * TLS. Client role: the ClientHello goes out now (server name: the config's domain), our new
 * header once the handshake is done. HEARTH_EINVAL in WebSocket framing or when TLS is already on,
 * HEARTH_ECLOSED after the stream ended, HEARTH_ENOMEM, HEARTH_ETLS (the stream is over),
 * HEARTH_EBUSY inside write. */
int hearth_stream_starttls(hearth_stream_t *s, hearth_tls_ctx_t *ctx) HEARTH_MUST_CHECK;
/* Stream restart after SASL success (RFC 6120 §4.3.3; also done by STARTTLS itself): a fresh
 * parser expects the peer's new header, and our next header carries a new id (server role). Called
 * from inside a callback, the rest of that feed's input is discarded: what the client sent
 * behind its last SASL element, before it could have seen <success/>, belongs to the replaced
 * stream (RFC 6120 §6.4.6 and §5.4.3.3: knowledge from before the step is discarded); called
 * outside, the next byte fed starts the new stream. Client role: our new header is sent now.
 * HEARTH_ECLOSED after the stream ended, HEARTH_ENOMEM, HEARTH_EBUSY inside write. */
int hearth_stream_restart(hearth_stream_t *s) HEARTH_MUST_CHECK;

/* ---- settings and state ---- */

/* Server role: the 'from' of our header, until it is sent (virtual hosting: call it from open).
 * HEARTH_EINVAL once sent (or client role), HEARTH_ENOMEM. */
int hearth_stream_set_domain(hearth_stream_t *s, const char *domain) HEARTH_MUST_CHECK;
/* Client role: the 'from' of our next headers (NULL: none). RFC 6120 §4.7.1 has a client name
 * its account only once TLS protects the stream: set it from tls_done. HEARTH_EINVAL in the
 * server role, HEARTH_ENOMEM. */
int hearth_stream_set_from(hearth_stream_t *s, const char *from) HEARTH_MUST_CHECK;
/* Parser limits from now on (0 fields take their defaults). */
void hearth_stream_set_limits(hearth_stream_t *s, const hearth_xml_limits_t *limits);
/* Only the stanza bound, e.g. raised after authentication (0 = the default). */
void hearth_stream_set_max_stanza(hearth_stream_t *s, size_t max_stanza_bytes);
/* Server role: the id of our current header (NULL before it is sent); client role: the id of the
 * server's current header (NULL before it arrives, or when it had none). Valid until the next
 * restart or free. */
const char *hearth_stream_id(const hearth_stream_t *s);
/* The TLS session once STARTTLS or direct TLS began, else NULL. Borrowed: owned by the stream
 * (never free it, never write to it). For hearth_tls_version, hearth_tls_alpn and
 * hearth_tls_exporter (channel binding). */
hearth_tls_t *hearth_stream_tls(const hearth_stream_t *s);
/* 1 once the TLS handshake completed. */
int hearth_stream_secure(const hearth_stream_t *s);
/* 1 once we sent a close or a stream error (or TLS failed): nothing more is written. */
int hearth_stream_output_closed(const hearth_stream_t *s);
/* 1 once the peer closed, an error ended the stream, or we sent a stream error. */
int hearth_stream_input_closed(const hearth_stream_t *s);
hearth_stream_role_t hearth_stream_role(const hearth_stream_t *s);
hearth_stream_framing_t hearth_stream_framing(const hearth_stream_t *s);

/* Frees the stream, its parser and its TLS session; writes nothing (close first). From inside a
 * callback the free is deferred until the outermost stream call returns. NULL is fine. */
void hearth_stream_free(hearth_stream_t *s);

#endif
