/* The XMPP stream parser (include/hearth/xml.h): expat events to a header event, one tree per
 * top-level child, and a close event; RFC 6120 §11 restricted XML and the size limits are
 * enforced here. Touches only its own state, its arenas and the caller's callbacks. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <expat.h>

#include "hearth/xml.h"

/* Cannot occur in UTF-8, so never in a namespace URI or a local name. */
#define NS_SEP '\xFF'
/* Bytes handed to expat per call: bounds what expat buffers beyond a limit before we check it. */
#define FEED_SLICE 16384
/* A text scratch buffer grown past this by a large stanza is released after it. */
#define TEXT_KEEP 16384
/* expat rescans an unfinished token at every feed (Debian's 2.5 has no reparse deferral), so
 * bytes that produce no callback at all are bounded: past this, a peer dribbling one huge tag
 * would cost quadratic time. */
#define MAX_SILENT_BYTES (2 * FEED_SLICE)

/* Debian backports the reparse-deferral fix (CVE-2023-52425) into 2.5.0 without always updating
 * the header, and a security update of the shared library brings it under an existing binary: a
 * weak reference finds the function whenever the running libexpat has it. With deferral on, a
 * stanza whose last byte ends a read waits for the next read, and the client for its reply. */
extern XML_Bool XML_SetReparseDeferralEnabled(XML_Parser parser, XML_Bool enabled)
    __attribute__((weak));

enum state {
    ST_HEADER, /* waiting for the root start tag */
    ST_OPEN,   /* inside the root */
    ST_HALTED, /* error, close or stop: nothing more until reset */
};

/* Between stanzas an idle stream may give its expat parser back (hearth_xml_stream_trim):
 * expat's input buffer, its pools and the element and attribute names it has seen (kept in its
 * DTD tables even without a DTD) come to about 10 KB a stream once a client has sent a few
 * stanzas. The next feed makes a fresh parser and primes it with the root's start tag, kept from
 * the header (bounded by max_header_bytes), so that it sees the same namespace declarations; its
 * callbacks are not passed on. Making one costs about 2.5 us, so a busy stream keeps its own. */

struct hearth_xml_stream {
    hearth_xml_stream_cbs_t cbs;
    void *ud;
    hearth_xml_limits_t limits;
    XML_Parser parser;       /* NULL while released between stanzas (ST_OPEN) */
    unsigned long hash_salt; /* one per stream: a re-made parser needs no system call for it */
    XML_Index base;          /* stream offset of the parser's byte 0 (negative while priming) */
    char *root_tag;          /* the root's start tag as received, in header_arena */
    size_t root_tag_len;
    bool priming; /* the root tag is being fed again to a fresh parser */
    enum state state;
    bool in_parse;        /* inside XML_Parse: XML_StopParser is meaningful */
    bool in_callback;     /* inside a caller's callback: no feed, no reset */
    unsigned level;       /* open elements, the root included */
    unsigned ns_decls;    /* namespace declarations seen for the element about to start */
    XML_Index fed;        /* bytes given to this parser */
    unsigned long events; /* expat callbacks so far: progress inside the parser */
    size_t silent;        /* bytes fed since the last slice that produced a callback */
    XML_Index mark;       /* end of the last complete top-level unit (header, stanza, whitespace) */
    hearth_arena_t *arena;        /* the current stanza */
    hearth_arena_t *header_arena; /* the stream header, kept until reset */
    hearth_xml_node_t *stanza;
    hearth_xml_node_t *cur; /* innermost open element of the stanza */
    const char *default_ns; /* declared on the root, in header_arena */
    hearth_buf_t text;      /* adjacent character data, merged into one node */
};

static void fill_limits(hearth_xml_limits_t *dst, const hearth_xml_limits_t *src)
{
    const hearth_xml_limits_t def = HEARTH_XML_LIMITS_DEFAULT;
    *dst = src ? *src : def;
    if (!dst->max_stanza_bytes)
        dst->max_stanza_bytes = def.max_stanza_bytes;
    if (!dst->max_header_bytes)
        dst->max_header_bytes = def.max_header_bytes;
    if (!dst->max_depth)
        dst->max_depth = def.max_depth;
    if (!dst->max_attrs)
        dst->max_attrs = def.max_attrs;
}

/* Stops the parser for good and reports once. */
static void fail(hearth_xml_stream_t *s, hearth_stream_error_t cond, const char *text)
{
    if (s->state == ST_HALTED)
        return;
    s->state = ST_HALTED;
    if (s->in_parse)
        XML_StopParser(s->parser, XML_FALSE);
    if (s->cbs.error) {
        s->in_callback = true;
        s->cbs.error(s->ud, cond, text);
        s->in_callback = false;
    }
}

static XML_Index event_end(const hearth_xml_stream_t *s)
{
    return s->base + XML_GetCurrentByteIndex(s->parser) + XML_GetCurrentByteCount(s->parser);
}

static bool stanza_too_large(hearth_xml_stream_t *s, XML_Index end)
{
    if (end - s->mark <= (XML_Index)s->limits.max_stanza_bytes)
        return false;
    fail(s, HEARTH_STREAM_ERR_POLICY_VIOLATION, "stanza too large");
    return true;
}

/* Splits expat's "uri<SEP>local" (or "local"). */
static void split_name(const char *qname, const char **uri, size_t *uri_len, const char **local)
{
    const char *sep = strchr(qname, NS_SEP);
    if (sep) {
        *uri = qname;
        *uri_len = (size_t)(sep - qname);
        *local = sep + 1;
    } else {
        *uri = "";
        *uri_len = 0;
        *local = qname;
    }
}

static hearth_xml_node_t *build_element(hearth_arena_t *a, const char *qname, const char **atts)
{
    const char *uri, *local;
    size_t uri_len;
    split_name(qname, &uri, &uri_len, &local);
    hearth_xml_node_t *n = hearth_arena_alloc(a, sizeof(*n));
    if (!n)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->type = HEARTH_XML_ELEMENT;
    n->name = hearth_arena_strdup(a, local);
    n->ns = hearth_arena_strndup(a, uri, uri_len);
    if (!n->name || !n->ns)
        return NULL;
    /* expat has already refused duplicates, so attributes are appended without a search. */
    hearth_xml_attr_t **tail = &n->attrs;
    for (size_t i = 0; atts[i]; i += 2) {
        hearth_xml_attr_t *at = hearth_arena_alloc(a, sizeof(*at));
        if (!at)
            return NULL;
        split_name(atts[i], &uri, &uri_len, &local);
        at->ns = uri_len ? hearth_arena_strndup(a, uri, uri_len) : NULL;
        at->name = hearth_arena_strdup(a, local);
        at->value = hearth_arena_strdup(a, atts[i + 1]);
        at->next = NULL;
        if ((uri_len && !at->ns) || !at->name || !at->value)
            return NULL;
        *tail = at;
        tail = &at->next;
    }
    return n;
}

static bool flush_text(hearth_xml_stream_t *s)
{
    if (!s->text.len || !s->cur)
        return true;
    hearth_xml_node_t *t = hearth_xml_add_text(s->arena, s->cur, s->text.data, s->text.len);
    hearth_buf_reset(&s->text);
    if (!t) {
        fail(s, HEARTH_STREAM_ERR_RESOURCE_CONSTRAINT, "out of memory");
        return false;
    }
    return true;
}

/* Copies the root's start tag, the current event, from expat's buffer (the raw bytes, which
 * carry the namespace declarations a re-made parser needs). Without XML_CONTEXT_BYTES expat has
 * no such buffer: the tag is then not kept and the parser is never released. */
static bool keep_root_tag(hearth_xml_stream_t *s)
{
    int offset = 0, size = 0;
    const char *buf = XML_GetInputContext(s->parser, &offset, &size);
    int n = XML_GetCurrentByteCount(s->parser);
    if (!buf || n <= 0 || offset < 0 || offset + n > size)
        return true;
    s->root_tag = hearth_arena_alloc(s->header_arena, (size_t)n);
    if (!s->root_tag)
        return false;
    memcpy(s->root_tag, buf + offset, (size_t)n);
    s->root_tag_len = (size_t)n;
    return true;
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
    ((hearth_xml_stream_t *)ud)->events++;
    hearth_xml_stream_t *s = ud;
    if (s->state == ST_HALTED)
        return;
    if (s->priming) { /* the root again, for a fresh parser: nothing to tell anyone */
        s->level = 1;
        return;
    }
    size_t nattrs = 0;
    while (atts[nattrs * 2])
        nattrs++;
    unsigned ns_decls = s->ns_decls;
    s->ns_decls = 0;
    if (nattrs + ns_decls > s->limits.max_attrs) {
        fail(s, HEARTH_STREAM_ERR_POLICY_VIOLATION, "too many attributes");
        return;
    }
    XML_Index end = event_end(s);

    if (s->level == 0) {
        if (end > (XML_Index)s->limits.max_header_bytes) {
            fail(s, HEARTH_STREAM_ERR_POLICY_VIOLATION, "stream header too large");
            return;
        }
        hearth_xml_node_t *header = build_element(s->header_arena, name, atts);
        if (header && !keep_root_tag(s)) {
            fail(s, HEARTH_STREAM_ERR_RESOURCE_CONSTRAINT, "out of memory");
            return;
        }
        if (!header) {
            fail(s, HEARTH_STREAM_ERR_RESOURCE_CONSTRAINT, "out of memory");
            return;
        }
        if (!s->default_ns)
            s->default_ns = "";
        s->level = 1;
        s->state = ST_OPEN;
        s->mark = end;
        if (s->cbs.open) {
            s->in_callback = true;
            s->cbs.open(s->ud, header, s->default_ns);
            s->in_callback = false;
        }
        return;
    }

    if (s->level > s->limits.max_depth) {
        fail(s, HEARTH_STREAM_ERR_POLICY_VIOLATION, "elements nested too deep");
        return;
    }
    if (stanza_too_large(s, end) || !flush_text(s))
        return;
    hearth_xml_node_t *n = build_element(s->arena, name, atts);
    if (!n) {
        fail(s, HEARTH_STREAM_ERR_RESOURCE_CONSTRAINT, "out of memory");
        return;
    }
    if (s->level == 1)
        s->stanza = n;
    else
        hearth_xml_append(s->cur, n);
    s->cur = n;
    s->level++;
}

static void on_end(void *ud, const XML_Char *name)
{
    ((hearth_xml_stream_t *)ud)->events++;
    hearth_xml_stream_t *s = ud;
    if (s->state == ST_HALTED)
        return;
    if (s->level == 1) {
        /* The root closed: whatever follows is not ours to parse. */
        s->level = 0;
        s->state = ST_HALTED;
        XML_StopParser(s->parser, XML_FALSE);
        if (s->cbs.close) {
            s->in_callback = true;
            s->cbs.close(s->ud);
            s->in_callback = false;
        }
        return;
    }
    XML_Index end = event_end(s);
    if (stanza_too_large(s, end) || !flush_text(s))
        return;
    s->level--;
    if (s->level > 1) {
        s->cur = s->cur->parent;
        return;
    }
    hearth_xml_node_t *stanza = s->stanza;
    s->stanza = s->cur = NULL;
    s->mark = end;
    if (s->cbs.stanza) {
        s->in_callback = true;
        s->cbs.stanza(s->ud, stanza, s->arena);
        s->in_callback = false;
    }
    hearth_arena_reset(s->arena);
    if (s->text.cap > TEXT_KEEP)
        hearth_buf_free(&s->text);
}

static void on_text(void *ud, const XML_Char *data, int len)
{
    ((hearth_xml_stream_t *)ud)->events++;
    hearth_xml_stream_t *s = ud;
    if (s->state == ST_HALTED || len <= 0)
        return;
    XML_Index end = event_end(s);
    if (s->level == 1) {
        /* Between stanzas only whitespace (keepalives) is allowed; it is not part of a stanza. */
        for (int i = 0; i < len; i++) {
            char c = data[i];
            if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
                fail(s, HEARTH_STREAM_ERR_BAD_FORMAT, "text outside stanzas");
                return;
            }
        }
        s->mark = end;
        return;
    }
    if (s->level < 1 || stanza_too_large(s, end))
        return;
    if (hearth_buf_append(&s->text, data, (size_t)len))
        fail(s, HEARTH_STREAM_ERR_RESOURCE_CONSTRAINT, "out of memory");
}

static void on_ns_start(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
    hearth_xml_stream_t *s = ud;
    if (s->state == ST_HALTED || s->priming)
        return;
    s->ns_decls++;
    if (s->level == 0 && !prefix) {
        s->default_ns = hearth_arena_strdup(s->header_arena, uri ? uri : "");
        if (!s->default_ns)
            fail(s, HEARTH_STREAM_ERR_RESOURCE_CONSTRAINT, "out of memory");
    }
}

static void on_xml_decl(void *ud, const XML_Char *version, const XML_Char *encoding, int standalone)
{
    hearth_xml_stream_t *s = ud;
    /* The parser was created for UTF-8 and ignores the declaration: refuse any other. */
    if (encoding && strcasecmp(encoding, "UTF-8") != 0)
        fail(s, HEARTH_STREAM_ERR_UNSUPPORTED_ENCODING, "only UTF-8 is supported");
}

static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid, const XML_Char *pubid,
                       int has_internal_subset)
{
    fail(ud, HEARTH_STREAM_ERR_RESTRICTED_XML, "DTD not allowed");
}

static void on_entity_decl(void *ud, const XML_Char *name, int is_parameter_entity,
                           const XML_Char *value, int value_length, const XML_Char *base,
                           const XML_Char *sysid, const XML_Char *pubid, const XML_Char *notation)
{
    fail(ud, HEARTH_STREAM_ERR_RESTRICTED_XML, "entity declarations not allowed");
}

static void on_comment(void *ud, const XML_Char *data)
{
    fail(ud, HEARTH_STREAM_ERR_RESTRICTED_XML, "comments not allowed");
}

static void on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
    fail(ud, HEARTH_STREAM_ERR_RESTRICTED_XML, "processing instructions not allowed");
}

static hearth_stream_error_t map_expat_error(enum XML_Error e)
{
    switch (e) {
    case XML_ERROR_UNBOUND_PREFIX:
        return HEARTH_STREAM_ERR_BAD_NAMESPACE_PREFIX;
    case XML_ERROR_UNKNOWN_ENCODING:
    case XML_ERROR_INCORRECT_ENCODING:
        return HEARTH_STREAM_ERR_UNSUPPORTED_ENCODING;
    case XML_ERROR_UNDEFINED_ENTITY:
    case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
    case XML_ERROR_RECURSIVE_ENTITY_REF:
    case XML_ERROR_BINARY_ENTITY_REF:
    case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
        return HEARTH_STREAM_ERR_RESTRICTED_XML;
    case XML_ERROR_NO_MEMORY:
        return HEARTH_STREAM_ERR_RESOURCE_CONSTRAINT;
    default:
        return HEARTH_STREAM_ERR_NOT_WELL_FORMED;
    }
}

static XML_Parser parser_make(hearth_xml_stream_t *s)
{
    XML_Parser p = XML_ParserCreateNS("UTF-8", NS_SEP);
    if (!p)
        return NULL;
    if (s->hash_salt)
        XML_SetHashSalt(p, s->hash_salt);
    if (XML_SetReparseDeferralEnabled)
        XML_SetReparseDeferralEnabled(p, XML_FALSE);
    XML_SetUserData(p, s);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_text);
    XML_SetStartNamespaceDeclHandler(p, on_ns_start);
    XML_SetXmlDeclHandler(p, on_xml_decl);
    XML_SetStartDoctypeDeclHandler(p, on_doctype);
    XML_SetEntityDeclHandler(p, on_entity_decl);
    XML_SetCommentHandler(p, on_comment);
    XML_SetProcessingInstructionHandler(p, on_pi);
    XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
    return p;
}

static int parser_start(hearth_xml_stream_t *s)
{
    XML_Parser p = parser_make(s);
    if (!p)
        return HEARTH_ENOMEM;
    s->parser = p;
    s->base = 0;
    s->root_tag = NULL;
    s->root_tag_len = 0;
    s->state = ST_HEADER;
    s->level = 0;
    s->ns_decls = 0;
    s->fed = 0;
    s->silent = 0;
    s->mark = 0;
    s->stanza = s->cur = NULL;
    s->default_ns = NULL;
    hearth_buf_reset(&s->text);
    return 0;
}

hearth_xml_stream_t *hearth_xml_stream_new(const hearth_xml_stream_cbs_t *cbs, void *ud,
                                           const hearth_xml_limits_t *limits)
{
    hearth_xml_stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (cbs)
        s->cbs = *cbs;
    s->ud = ud;
    fill_limits(&s->limits, limits);
    /* expat salts its hash tables itself, with a system call per parser: one per stream here */
    if (getrandom(&s->hash_salt, sizeof(s->hash_salt), GRND_NONBLOCK) !=
        (ssize_t)sizeof(s->hash_salt))
        s->hash_salt = 0;
    s->arena = hearth_arena_new(0);
    /* a client's header tree is about 400 bytes; the root tag kept for a re-made parser (over
     * a quarter of a chunk) gets a chunk of its own size */
    s->header_arena = hearth_arena_new(512);
    if (!s->arena || !s->header_arena || parser_start(s) != 0) {
        hearth_xml_stream_free(s);
        return NULL;
    }
    return s;
}

/* A fresh parser that stands where the released one stood: inside the root, at offset fed. */
static int parser_resume(hearth_xml_stream_t *s)
{
    XML_Parser p = parser_make(s);
    if (!p)
        return HEARTH_ENOMEM;
    s->parser = p;
    s->priming = true;
    s->level = 0;
    s->in_parse = true;
    enum XML_Status st = XML_Parse(p, s->root_tag, (int)s->root_tag_len, XML_FALSE);
    s->in_parse = false;
    s->priming = false;
    if (st != XML_STATUS_OK || s->level != 1) { /* it parsed once already: only memory fails */
        s->level = 1;
        return HEARTH_ENOMEM;
    }
    s->base = s->fed - (XML_Index)s->root_tag_len;
    s->ns_decls = 0;
    return 0;
}

int hearth_xml_stream_feed(hearth_xml_stream_t *s, const char *data, size_t len)
{
    if (s->in_callback || (!data && len))
        return HEARTH_EINVAL;
    if (len > 0 && !s->parser && s->state == ST_OPEN && parser_resume(s) != 0) {
        fail(s, HEARTH_STREAM_ERR_RESOURCE_CONSTRAINT, "out of memory");
        return HEARTH_ECLOSED;
    }
    while (len > 0) {
        if (s->state == ST_HALTED)
            return HEARTH_ECLOSED;
        size_t n = len < FEED_SLICE ? len : FEED_SLICE;
        s->fed += (XML_Index)n;
        s->in_parse = true;
        unsigned long events = s->events;
        enum XML_Status st = XML_Parse(s->parser, data, (int)n, XML_FALSE);
        s->in_parse = false;
        s->silent = events == s->events ? s->silent + n : 0;
        if (s->state == ST_HALTED)
            return HEARTH_ECLOSED;
        if (st != XML_STATUS_OK) {
            enum XML_Error e = XML_GetErrorCode(s->parser);
            fail(s, map_expat_error(e), XML_ErrorString(e));
            return HEARTH_ECLOSED;
        }
        /* expat keeps an unfinished token to itself: bound it on the raw bytes. */
        if (s->state == ST_HEADER) {
            if (s->fed > (XML_Index)s->limits.max_header_bytes) {
                fail(s, HEARTH_STREAM_ERR_POLICY_VIOLATION, "stream header too large");
                return HEARTH_ECLOSED;
            }
        } else if (stanza_too_large(s, s->fed)) {
            return HEARTH_ECLOSED;
        } else if (s->silent > MAX_SILENT_BYTES) {
            fail(s, HEARTH_STREAM_ERR_POLICY_VIOLATION, "a single tag or token is too large");
            return HEARTH_ECLOSED;
        }
        data += n;
        len -= n;
    }
    if (s->state == ST_HALTED)
        return HEARTH_ECLOSED;
    /* Between stanzas the tree's memory goes back: thousands of idle streams hold none (a busy
     * one makes it again once per read, not per stanza). */
    if (s->level == 1)
        hearth_arena_release(s->arena);
    return 0;
}

int hearth_xml_stream_trim(hearth_xml_stream_t *s)
{
    /* Only when nothing is pending in the parser: inside the root, between stanzas, every byte
     * fed accounted for by a complete unit (an unfinished tag, or a trailing byte expat holds,
     * stays with the parser that holds it). */
    if (s->in_callback || s->state != ST_OPEN || s->level != 1 || !s->root_tag ||
        s->mark != s->fed || !s->parser)
        return 0;
    XML_ParserFree(s->parser);
    s->parser = NULL;
    hearth_arena_release(s->arena);
    hearth_buf_free(&s->text);
    return 1;
}

void hearth_xml_stream_stop(hearth_xml_stream_t *s)
{
    if (s->state == ST_HALTED)
        return;
    s->state = ST_HALTED;
    if (s->in_parse)
        XML_StopParser(s->parser, XML_FALSE);
}

int hearth_xml_stream_reset(hearth_xml_stream_t *s)
{
    if (s->in_callback)
        return HEARTH_EINVAL;
    if (s->parser) {
        XML_ParserFree(s->parser);
        s->parser = NULL;
    }
    hearth_arena_reset(s->arena);
    hearth_arena_reset(s->header_arena);
    hearth_buf_free(&s->text);
    int rc = parser_start(s);
    if (rc)
        s->state = ST_HALTED;
    return rc;
}

void hearth_xml_stream_set_limits(hearth_xml_stream_t *s, const hearth_xml_limits_t *limits)
{
    fill_limits(&s->limits, limits);
}

hearth_xml_position_t hearth_xml_stream_position(const hearth_xml_stream_t *s)
{
    hearth_xml_position_t p = {(uint64_t)s->fed, (uint64_t)s->mark};
    return p;
}

void hearth_xml_stream_free(hearth_xml_stream_t *s)
{
    if (!s)
        return;
    if (s->parser)
        XML_ParserFree(s->parser);
    hearth_arena_free(s->arena);
    hearth_arena_free(s->header_arena);
    hearth_buf_free(&s->text);
    free(s);
}
