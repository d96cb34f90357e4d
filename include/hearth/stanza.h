/* Stanzas as the client library hands them over: a <message/>, <presence/> or <iq/> tree in its
 * own arena, reference-counted, with builders for what clients send and accessors for what they
 * read. The tree is the one of include/hearth/xml.h: build children with hearth_xml_add_child on
 * hearth_stanza_arena. A stanza may cross threads (the count is atomic) but is changed by one
 * thread at a time, and only while nobody else holds a reference. Allocation: malloc. */
#ifndef HEARTH_STANZA_H
#define HEARTH_STANZA_H

#include <stddef.h>

#include "hearth/error.h"
#include "hearth/xml.h"
#include "hearth/xmpp_error.h"

typedef struct hearth_stanza hearth_stanza_t;

/* The three kinds of RFC 6120 §8; usable as bits in a handler filter. */
typedef enum hearth_stanza_kind {
    HEARTH_STANZA_OTHER = 0, /* a top-level element that is no stanza */
    HEARTH_STANZA_MESSAGE = 1,
    HEARTH_STANZA_PRESENCE = 2,
    HEARTH_STANZA_IQ = 4,
} hearth_stanza_kind_t;

/* Largest serialised stanza hearth_stanza_parse accepts (the server's default stanza bound after
 * authentication). */
#define HEARTH_STANZA_PARSE_MAX (256 * 1024)

/* ---- building. Each returns a new stanza with one reference (the caller's), or NULL on ENOMEM
 * or an invalid argument. String arguments are copied; NULL leaves the attribute out. No
 * builder sets 'from': the server stamps it (RFC 6120 §8.1.2.1). ---- */

/* <name/> in jabber:client: "message", "presence" or "iq" (anything else is refused). */
hearth_stanza_t *hearth_stanza_new(const char *name, const char *type, const char *to,
                                   const char *id);
/* <message to type><body>body</body></message>; body NULL: no <body/>. */
hearth_stanza_t *hearth_stanza_new_message(const char *to, const char *type, const char *body);
/* <presence to type/>. */
hearth_stanza_t *hearth_stanza_new_presence(const char *to, const char *type);
/* <iq type to><payload_name xmlns=payload_ns/></iq>; type "get" or "set"; the id is given when
 * it is sent (hearth_client_iq) unless set before. *payload (if payload is not NULL) gets the
 * payload element to fill in; payload_name NULL: no payload. */
hearth_stanza_t *hearth_stanza_new_iq(const char *type, const char *to, const char *payload_name,
                                      const char *payload_ns, hearth_xml_node_t **payload);
/* The empty result of an IQ get or set (RFC 6120 §8.2.3): same id, 'to' = the request's 'from'
 * (none when it had none). NULL when request is no IQ get or set. */
hearth_stanza_t *hearth_stanza_new_iq_result(const hearth_stanza_t *request);
/* An error reply to request (any kind but an error itself): same name and id, type 'error',
 * 'to' = its 'from', <error type=...><cond/><text/></error> with the condition's default type
 * (text may be NULL). NULL when request has type 'error' (never answer an error). */
hearth_stanza_t *hearth_stanza_new_error(const hearth_stanza_t *request, hearth_stanza_error_t cond,
                                         const char *text);
/* Parses one serialised stanza (unprefixed elements in jabber:client, as a stream carries
 * them; at most HEARTH_STANZA_PARSE_MAX bytes). NULL on malformed input (*reason, if not NULL,
 * gets a static explanation), a second top-level element, or ENOMEM. */
hearth_stanza_t *hearth_stanza_parse(const char *xml, size_t len, const char **reason);
/* A deep copy with one reference; NULL on ENOMEM. */
hearth_stanza_t *hearth_stanza_copy(const hearth_stanza_t *st);

/* ---- references ---- */

/* A reference for the caller to keep, released with hearth_stanza_unref. Keep the returned
 * pointer: a stanza lent to a handler lives in the parser's memory only during the call, so
 * taking a reference to it returns a copy (NULL on ENOMEM); any other stanza returns itself. */
hearth_stanza_t *hearth_stanza_ref(hearth_stanza_t *st);
/* Drops one reference; the last frees the stanza. NULL is fine. Never on a lent stanza. */
void hearth_stanza_unref(hearth_stanza_t *st);

/* ---- reading and changing (borrowed pointers, valid while the stanza lives and the attribute
 * is not changed) ---- */

hearth_xml_node_t *hearth_stanza_node(const hearth_stanza_t *st);
/* The arena the tree lives in: allocate new children and text there. */
hearth_arena_t *hearth_stanza_arena(const hearth_stanza_t *st);
hearth_stanza_kind_t hearth_stanza_kind(const hearth_stanza_t *st);
/* Attributes as sent; NULL when absent. hearth_stanza_type gives the attribute, not the default
 * (an absent type means "normal" for a message, availability for a presence). */
const char *hearth_stanza_type(const hearth_stanza_t *st);
const char *hearth_stanza_id(const hearth_stanza_t *st);
const char *hearth_stanza_from(const hearth_stanza_t *st);
const char *hearth_stanza_to(const hearth_stanza_t *st);
const char *hearth_stanza_attr(const hearth_stanza_t *st, const char *name);
/* Sets (value NULL: removes) an unprefixed attribute. 0, HEARTH_ENOMEM, HEARTH_EINVAL. */
int hearth_stanza_set_attr(hearth_stanza_t *st, const char *name,
                           const char *value) HEARTH_MUST_CHECK;
/* The first child element with this name and namespace (either NULL: any); NULL when none. */
hearth_xml_node_t *hearth_stanza_child(const hearth_stanza_t *st, const char *name, const char *ns);
/* The text of the first child element of that name in jabber:client (e.g. "body", "subject",
 * "thread", "status"), NUL-terminated in the stanza's arena; NULL when there is no such child
 * (or ENOMEM). */
const char *hearth_stanza_child_text(hearth_stanza_t *st, const char *name);
/* Adds <name>text</name> in jabber:client (e.g. <body/>, <status/>); 0 or HEARTH_ENOMEM. */
int hearth_stanza_add_text_child(hearth_stanza_t *st, const char *name,
                                 const char *text) HEARTH_MUST_CHECK;
/* The condition of a type='error' stanza's <error/> (RFC 6120 §8.3); HEARTH_STANZA_ERR_NONE when
 * the stanza has no error, HEARTH_STANZA_ERR_UNDEFINED_CONDITION when the condition is unknown.
 * *text (if not NULL) gets the <text/> content or NULL (valid like the stanza). */
hearth_stanza_error_t hearth_stanza_error(hearth_stanza_t *st, const char **text);
/* Appends the serialised stanza (in the context of jabber:client: no xmlns on it) to out.
 * 0 or HEARTH_ENOMEM (out unchanged). */
int hearth_stanza_serialize(const hearth_stanza_t *st, hearth_buf_t *out) HEARTH_MUST_CHECK;

#endif
