/* XML for XMPP: an arena allocator, the stanza tree, its serialiser, and the stream parser over
 * expat (one per connection, restricted XML of RFC 6120 §11, bounded by hearth_xml_limits_t).
 * The parser does no I/O: bytes go in through hearth_xml_stream_feed, events come out as callbacks.
 */
#ifndef HEARTH_XML_H
#define HEARTH_XML_H

#include <stddef.h>
#include <stdint.h>

#include "hearth/buf.h"
#include "hearth/error.h"
#include "hearth/ns.h"
#include "hearth/xmpp_error.h"

/* Bump allocator: everything of one stanza lives here and is freed at once. */
typedef struct hearth_arena hearth_arena_t;
hearth_arena_t *hearth_arena_new(size_t chunk_size);   /* 0 = default (4 KiB) */
void *hearth_arena_alloc(hearth_arena_t *a, size_t n); /* 16-byte aligned, NULL on ENOMEM; large
                                                          requests get their own chunk */
char *hearth_arena_strndup(hearth_arena_t *a, const char *s, size_t n);
char *hearth_arena_strdup(hearth_arena_t *a, const char *s);
void hearth_arena_reset(hearth_arena_t *a);   /* frees everything but the first chunk */
void hearth_arena_release(hearth_arena_t *a); /* frees everything; the next alloc starts anew */
void hearth_arena_free(hearth_arena_t *a);

typedef struct hearth_xml_attr {
    const char *ns;   /* NULL for unprefixed attributes; HEARTH_NS_XML for xml:lang */
    const char *name; /* local name */
    const char *value;
    struct hearth_xml_attr *next;
} hearth_xml_attr_t;

typedef enum { HEARTH_XML_ELEMENT, HEARTH_XML_TEXT } hearth_xml_type_t;

typedef struct hearth_xml_node {
    hearth_xml_type_t type;
    const char *name; /* element local name; NULL for text */
    const char *ns;   /* element namespace URI, "" when none; NULL for text */
    const char *text; /* text nodes: unescaped content (not NUL-terminated necessarily: use
                         text_len) */
    size_t text_len;
    hearth_xml_attr_t *attrs;
    struct hearth_xml_node *parent, *children, *last_child, *next;
} hearth_xml_node_t;

/* Tree building; every string is copied into the arena. ns NULL in add_child = the parent's ns.
 * All return NULL on ENOMEM (or a NULL/non-element parent). */
hearth_xml_node_t *hearth_xml_new(hearth_arena_t *a, const char *name, const char *ns);
hearth_xml_node_t *hearth_xml_add_child(hearth_arena_t *a, hearth_xml_node_t *parent,
                                        const char *name, const char *ns);
hearth_xml_node_t *hearth_xml_add_text(hearth_arena_t *a, hearth_xml_node_t *parent,
                                       const char *text, size_t len);
/* Link an existing node (same arena) as the last child; a node still linked elsewhere is unlinked
 * first. */
void hearth_xml_append(hearth_xml_node_t *parent, hearth_xml_node_t *child);
void hearth_xml_remove(hearth_xml_node_t *child); /* unlink from its parent */
/* Unprefixed; replaces; value NULL removes. 0, HEARTH_ENOMEM or HEARTH_EINVAL. */
int hearth_xml_set_attr(hearth_arena_t *a, hearth_xml_node_t *n, const char *name,
                        const char *value);
/* ns NULL or "" = unprefixed. */
int hearth_xml_set_attr_ns(hearth_arena_t *a, hearth_xml_node_t *n, const char *ns,
                           const char *name, const char *value);
/* Unprefixed attribute or NULL. */
const char *hearth_xml_attr(const hearth_xml_node_t *n, const char *name);
const char *hearth_xml_attr_ns(const hearth_xml_node_t *n, const char *ns, const char *name);
/* Element children: name and/or ns NULL match anything. */
hearth_xml_node_t *hearth_xml_child(const hearth_xml_node_t *n, const char *name, const char *ns);
hearth_xml_node_t *hearth_xml_first_element(const hearth_xml_node_t *n);
hearth_xml_node_t *hearth_xml_next_element(const hearth_xml_node_t *n); /* next element sibling */
size_t hearth_xml_count_elements(const hearth_xml_node_t *n);
/* Concatenated direct text children, NUL-terminated, in the arena ("" when none; NULL on
 * ENOMEM). */
char *hearth_xml_text(hearth_arena_t *a, const hearth_xml_node_t *n);
/* Deep copy into a (the copy has no parent and no sibling); NULL on ENOMEM. */
hearth_xml_node_t *hearth_xml_copy(hearth_arena_t *a, const hearth_xml_node_t *n);
/* Adds the <error/> child of a stanza error (RFC 6120 §8.3.2) for cond, with a <text/> when text
 * is not NULL, as the last child of stanza and in its namespace: the tree form of
 * hearth_stanza_error_write (xmpp_error.h), the same bytes once serialised. The stanza's type
 * and addresses are the caller's. The new <error/>, or NULL on ENOMEM (stanza unchanged). */
hearth_xml_node_t *hearth_xml_add_stanza_error(hearth_arena_t *a, hearth_xml_node_t *stanza,
                                               hearth_stanza_error_t cond, const char *text);

/* Serialises n. context_ns is the default namespace in scope where n is written (e.g.
 * "jabber:client" for a stanza in a c2s stream; NULL = ""): an element whose ns differs from the
 * default in scope gets xmlns='...'. xml:lang and other HEARTH_NS_XML attributes use the xml:
 * prefix; other namespaced attributes get a generated prefix declared on that element. Text and
 * attribute values escaped. Appends to out; on error out is left as it was. */
int hearth_xml_serialize(const hearth_xml_node_t *n, const char *context_ns,
                         hearth_buf_t *out) HEARTH_MUST_CHECK;

/* Stream parser over expat: one per connection; a fresh expat parser at every reset.
 * A limit field of 0 takes its default. */
typedef struct hearth_xml_limits {
    size_t max_stanza_bytes; /* raw bytes of one top-level child, counted on input bytes (default
                                262144) */
    size_t max_header_bytes; /* raw bytes before the stream header is complete (default 8192) */
    unsigned max_depth;      /* element nesting below the root (default 64) */
    unsigned max_attrs;      /* per element, namespace declarations included (default 64) */
} hearth_xml_limits_t;
#define HEARTH_XML_LIMITS_DEFAULT                                                                  \
    {                                                                                              \
        262144, 8192, 64, 64                                                                       \
    }

typedef struct hearth_xml_stream_cbs {
    /* The root element opened: header has its attributes (namespaced as above); header->ns is the
     * root's namespace URI (HEARTH_NS_STREAMS when correct), header->name its local name
     * ("stream"); default_ns is the default namespace declared on the root ("" when none) — the
     * caller checks all of them. header and default_ns stay valid until reset or free. */
    void (*open)(void *ud, const hearth_xml_node_t *header, const char *default_ns);
    /* One complete top-level child. stanza and everything in arena are valid only during the call;
     * the callee may modify the tree and allocate in arena (it is reset after the call returns).
     */
    void (*stanza)(void *ud, hearth_xml_node_t *stanza, hearth_arena_t *arena);
    /* The root element closed (</stream:stream>). */
    void (*close)(void *ud);
    /* A parse or limit error; after it no more callbacks until reset, feed returns
     * HEARTH_ECLOSED. text is a short human-readable explanation (may be NULL). */
    void (*error)(void *ud, hearth_stream_error_t cond, const char *text);
} hearth_xml_stream_cbs_t;

typedef struct hearth_xml_stream hearth_xml_stream_t;
/* cbs is copied; any callback may be NULL. NULL on ENOMEM. */
hearth_xml_stream_t *hearth_xml_stream_new(const hearth_xml_stream_cbs_t *cbs, void *ud,
                                           const hearth_xml_limits_t *limits /* NULL = defaults */);
/* Feeds bytes; callbacks run synchronously inside. Returns 0, or HEARTH_ECLOSED when the stream is
 * stopped (error, close, or hearth_xml_stream_stop) — the rest of data is then discarded.
 * HEARTH_EINVAL when called from inside a callback. */
int hearth_xml_stream_feed(hearth_xml_stream_t *s, const char *data, size_t len);
/* An idle stream gives back its parser's memory (about 10 KB once a few stanzas have passed),
 * if it stands between stanzas with nothing unfinished; the next feed makes a fresh parser that
 * sees the root's namespace declarations again (about 2.5 us: for streams quiet a while, not
 * after every read). 1 when something was given back. Not from inside a callback. */
int hearth_xml_stream_trim(hearth_xml_stream_t *s);
/* Callable from inside any callback: stop processing now; bytes after the current element are
 * discarded (used for STARTTLS and SASL success, where pipelined bytes must not be processed)
 * until hearth_xml_stream_reset. */
void hearth_xml_stream_stop(hearth_xml_stream_t *s);
/* Fresh expat parser, expects a new stream header (stream restart). Must not be called from
 * inside a callback (HEARTH_EINVAL). */
int hearth_xml_stream_reset(hearth_xml_stream_t *s) HEARTH_MUST_CHECK;
void hearth_xml_stream_set_limits(hearth_xml_stream_t *s, const hearth_xml_limits_t *limits);
/* Where the parser stands in its raw input since the last reset, for framings that must know
 * where elements end (RFC 7395: one element per WebSocket message). fed: bytes given to expat so
 * far; done: bytes up to the end of the last complete top-level unit (the header, a child, the
 * whitespace between children). Inside a stanza callback done is the end of that stanza; after a
 * feed, fed > done means something is unfinished (an open child, or a token expat holds). */
typedef struct hearth_xml_position {
    uint64_t fed;
    uint64_t done;
} hearth_xml_position_t;
hearth_xml_position_t hearth_xml_stream_position(const hearth_xml_stream_t *s);
void hearth_xml_stream_free(hearth_xml_stream_t *s);

#endif
