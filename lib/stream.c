/* The XMPP stream without I/O (include/hearth/stream.h): framing (TCP, RFC 7395 WebSocket),
 * headers and their checks, stream errors and closes, the STARTTLS and restart steps, TLS in
 * between. Touches its parser, its TLS session, OpenSSL's random generator and the caller's
 * callbacks, nothing else. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/rand.h>

#include "hearth/stream.h"

/* The root every WebSocket message is parsed under: no namespace declared on it, so an element
 * that does not declare its own (RFC 7395 §3.3.3: each message is a standalone document) stays
 * in no namespace and is refused, and an undeclared prefix is an error. */
#define WS_ROOT "<ws>"
/* Random bytes in a stream id (RFC 6120 §4.7.3: unique, unpredictable): 128 bits. */
#define ID_BYTES 16
/* An XML declaration longer than this at the start of a WebSocket message is refused: the longest
 * well-formed one with single spaces is under 64 bytes. */
#define MAX_XML_DECL 256

#define XML_DECL "<?xml version='1.0'?>"
#define STREAM_NS_DECL "xmlns:stream='" HEARTH_NS_STREAMS "'"

/* What the stream does with input. */
enum in_state {
    IN_HEADER, /* waiting for the peer's header (after a start or a restart) */
    IN_OPEN,   /* the peer's stream is open: elements are delivered */
    IN_STEP,   /* an element ended a step (starttls, proceed, SASL success): input is discarded
                  until the caller calls hearth_stream_starttls or hearth_stream_restart */
    IN_CLOSED, /* the peer closed its stream */
    IN_FAILED, /* an error ended the stream, or we sent a stream error */
};

/* What the stream has written on the current stream. */
enum out_state {
    OUT_NONE,   /* no header yet (after creation or a restart) */
    OUT_OPEN,   /* our header is out */
    OUT_CLOSED, /* a close or a stream error is out, or TLS failed: nothing more is written */
};

struct hearth_stream {
    hearth_stream_cbs_t cbs;
    void *ud;
    hearth_stream_role_t role;
    hearth_stream_framing_t framing;
    char *domain, *from, *content_ns, *lang; /* owned copies */
    hearth_xml_limits_t limits;
    hearth_xml_stream_t *xml;
    hearth_tls_t *tls; /* owned; NULL until STARTTLS or direct TLS */
    enum in_state in;
    enum out_state out;
    char *id;           /* ours (server role) or the server's (client role); owned */
    int end_rc;         /* what feed returns once input is over */
    unsigned depth;     /* calls into the stream in progress: a free waits for 0 */
    bool in_feed;       /* inside hearth_stream_feed: a reset waits for its end */
    bool in_write;      /* inside the write callback */
    bool discard;       /* the rest of the current feed's input is dropped, never parsed */
    bool reset_pending; /* a fresh parser at the end of the current feed */
    bool free_pending;  /* hearth_stream_free was called inside a callback */
    bool reported;      /* close or error was reported: no more of either */
    bool secure;        /* TLS handshake done */
    bool started;       /* hearth_stream_start was called */
    /* WebSocket: the message being parsed */
    unsigned ws_elements; /* elements completed in it */
    uint64_t ws_end;      /* parser position at its end */
};

/* ---- small helpers ---- */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is(const hearth_xml_node_t *n, const char *name, const char *ns)
{
    return strcmp(n->name, name) == 0 && strcmp(n->ns, ns) == 0;
}

/* 1.x is ours; anything else, or none (pre-XMPP 0.9 streams), is not (RFC 6120 §4.7.5). */
static bool version_ok(const char *v)
{
    if (!v)
        return false;
    char *end;
    long major = strtol(v, &end, 10);
    return end != v && *end == '.' && major == 1;
}

/* A copy of s, or the default itself (static: most streams take it, and need no copy). */
static char *dup_or(const char *s, const char *dflt)
{
    return s ? strdup(s) : (char *)dflt;
}

static void free_or(char *s, const char *dflt)
{
    if (s != dflt)
        free(s);
}

static const char default_lang[] = "en", default_content_ns[] = HEARTH_NS_CLIENT;

/* The parser fills its own zero fields; the stream needs the two sizes for WebSocket messages. */
static void fill_limits(hearth_xml_limits_t *dst, const hearth_xml_limits_t *src)
{
    const hearth_xml_limits_t def = HEARTH_XML_LIMITS_DEFAULT;
    *dst = src ? *src : def;
    if (!dst->max_stanza_bytes)
        dst->max_stanza_bytes = def.max_stanza_bytes;
    if (!dst->max_header_bytes)
        dst->max_header_bytes = def.max_header_bytes;
}

static bool input_over(const hearth_stream_t *s)
{
    return s->in == IN_CLOSED || s->in == IN_FAILED;
}

static void enter(hearth_stream_t *s)
{
    s->depth++;
}

static void destroy(hearth_stream_t *s);

/* Ends a call into the stream; true when it freed the stream (do not touch s after). */
static bool leave(hearth_stream_t *s)
{
    if (--s->depth == 0 && s->free_pending) {
        destroy(s);
        return true;
    }
    return false;
}

/* ---- output ---- */

static void write_cb(hearth_stream_t *s, const char *data, size_t len)
{
    if (s->free_pending || len == 0)
        return;
    s->in_write = true;
    s->cbs.write(s->ud, data, len);
    s->in_write = false;
}

/* One piece of output (one message in WebSocket framing), through TLS when it is on. */
static int out_write(hearth_stream_t *s, const char *data, size_t len)
{
    if (!s->tls) {
        write_cb(s, data, len);
        return 0;
    }
    int rc = hearth_tls_write(s->tls, data, len);
    if (rc) {
        /* TLS is broken for good (or the caller shut it down): nothing more can go out; the
         * next feed reports the failure. */
        s->out = OUT_CLOSED;
        return rc == HEARTH_ELIMIT ? rc : HEARTH_ETLS;
    }
    return 0;
}

static int new_id(hearth_stream_t *s)
{
    unsigned char rnd[ID_BYTES];
    if (RAND_bytes(rnd, sizeof(rnd)) != 1)
        return HEARTH_EIO;
    char *id = malloc(2 * ID_BYTES + 1);
    if (!id)
        return HEARTH_ENOMEM;
    for (size_t i = 0; i < ID_BYTES; i++)
        snprintf(id + 2 * i, 3, "%02x", rnd[i]);
    free(s->id);
    s->id = id;
    return 0;
}

static int append_attr(hearth_buf_t *b, const char *name, const char *value)
{
    if (!value)
        return 0;
    int rc = hearth_buf_append_str(b, " ");
    rc = rc ?: hearth_buf_append_str(b, name);
    rc = rc ?: hearth_buf_append_str(b, "='");
    rc = rc ?: hearth_buf_append_escaped(b, value, strlen(value));
    return rc ?: hearth_buf_append_str(b, "'");
}

/* Our header for the current stream: the server's carries a fresh id and its domain as 'from',
 * the client's the domain as 'to'. */
static int send_header(hearth_stream_t *s)
{
    bool server = s->role == HEARTH_STREAM_SERVER;
    int rc = server ? new_id(s) : 0;
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (s->framing == HEARTH_STREAM_TCP)
        rc = rc
                 ?: hearth_buf_printf(&b, XML_DECL "<stream:stream xmlns='%s' " STREAM_NS_DECL,
                                      s->content_ns);
    else
        rc = rc ?: hearth_buf_append_str(&b, "<open xmlns='" HEARTH_NS_FRAMING "'");
    if (server) {
        rc = rc ?: append_attr(&b, "id", s->id);
        rc = rc ?: append_attr(&b, "from", s->domain);
    } else {
        rc = rc ?: append_attr(&b, "from", s->from);
        rc = rc ?: append_attr(&b, "to", s->domain);
    }
    rc = rc ?: hearth_buf_append_str(&b, " version='1.0'");
    rc = rc ?: append_attr(&b, "xml:lang", s->lang);
    rc = rc ?: hearth_buf_append_str(&b, s->framing == HEARTH_STREAM_TCP ? ">" : "/>");
    if (!rc) {
        s->out = OUT_OPEN;
        rc = out_write(s, b.data, b.len);
    }
    hearth_buf_free(&b);
    return rc;
}

/* Every piece of output on a stream comes after our header. */
static int ensure_header(hearth_stream_t *s)
{
    return s->out == OUT_NONE ? send_header(s) : 0;
}

/* Common checks of the send functions; 0 when they may write. */
static int may_send(hearth_stream_t *s)
{
    if (s->in_write)
        return HEARTH_EBUSY;
    if (s->free_pending || s->out == OUT_CLOSED)
        return HEARTH_ECLOSED;
    return ensure_header(s);
}

static int write_close(hearth_stream_t *s)
{
    s->out = OUT_CLOSED;
    if (s->framing == HEARTH_STREAM_TCP)
        return out_write(s, "</stream:stream>", 16);
    static const char close_el[] = "<close xmlns='" HEARTH_NS_FRAMING "'/>";
    return out_write(s, close_el, sizeof(close_el) - 1);
}

/* The header if none was sent, the error, the close (RFC 6120 §4.9.1.1; RFC 7395 §3.6). */
static int write_error(hearth_stream_t *s, hearth_stream_error_t cond, const char *text)
{
    int rc = ensure_header(s);
    if (rc)
        return rc;
    if (s->out == OUT_CLOSED)
        return HEARTH_ECLOSED;
    hearth_buf_t b = HEARTH_BUF_INIT;
    bool ws = s->framing == HEARTH_STREAM_WEBSOCKET;
    rc = hearth_buf_printf(&b, "<stream:error%s><%s xmlns='%s'/>", ws ? " " STREAM_NS_DECL : "",
                           hearth_stream_error_name(cond), HEARTH_NS_STREAM_ERRORS);
    if (!rc && text) {
        rc = hearth_buf_append_str(&b, "<text xmlns='" HEARTH_NS_STREAM_ERRORS "'>");
        rc = rc ?: hearth_buf_append_text_escaped(&b, text, strlen(text));
        rc = rc ?: hearth_buf_append_str(&b, "</text>");
    }
    rc = rc ?: hearth_buf_append_str(&b, "</stream:error>");
    /* TCP: one write with the close; WebSocket: each its own message. */
    if (!rc && !ws)
        rc = hearth_buf_append_str(&b, "</stream:stream>");
    if (!rc) {
        s->out = OUT_CLOSED;
        rc = out_write(s, b.data, b.len);
        if (!rc && ws && !s->free_pending)
            rc = write_close(s);
    }
    hearth_buf_free(&b);
    return rc;
}

/* ---- input: events ---- */

static int parser_reset(hearth_stream_t *s)
{
    int rc = hearth_xml_stream_reset(s->xml);
    hearth_xml_stream_set_limits(s->xml, &s->limits);
    if (!rc && s->framing == HEARTH_STREAM_WEBSOCKET)
        rc = hearth_xml_stream_feed(s->xml, WS_ROOT, sizeof(WS_ROOT) - 1);
    return rc;
}

/* The peer broke the stream (or TLS did): tell the peer when we still can, then the caller. */
static void fail(hearth_stream_t *s, int err, hearth_stream_error_t cond, const char *text)
{
    if (input_over(s) || s->free_pending)
        return;
    s->in = IN_FAILED;
    s->end_rc = err;
    s->discard = true;
    hearth_xml_stream_stop(s->xml);
    if (cond != HEARTH_STREAM_ERR_NONE && s->out != OUT_CLOSED)
        (void)write_error(s, cond, text);
    else if (cond == HEARTH_STREAM_ERR_NONE)
        s->out = OUT_CLOSED; /* TLS is gone: nothing can be written any more */
    if (!s->reported && !s->free_pending && s->cbs.error) {
        s->reported = true;
        s->cbs.error(s->ud, err, cond, text);
    }
    s->reported = true;
}

static void peer_closed(hearth_stream_t *s)
{
    if (input_over(s))
        return;
    s->in = IN_CLOSED;
    s->end_rc = HEARTH_ECLOSED;
    s->discard = true;
    hearth_xml_stream_stop(s->xml);
    if (!s->reported && !s->free_pending && s->cbs.close) {
        s->reported = true;
        s->cbs.close(s->ud);
    }
    s->reported = true;
}

/* The peer's header passed the stream's checks. */
static void got_header(hearth_stream_t *s, const hearth_xml_node_t *node, const char *default_ns)
{
    s->in = IN_OPEN;
    hearth_stream_header_t h = {
        .from = hearth_xml_attr(node, "from"),
        .to = hearth_xml_attr(node, "to"),
        .id = hearth_xml_attr(node, "id"),
        .version = hearth_xml_attr(node, "version"),
        .lang = hearth_xml_attr_ns(node, HEARTH_NS_XML, "lang"),
        .node = node,
        .default_ns = default_ns,
    };
    if (s->role == HEARTH_STREAM_CLIENT) {
        free(s->id);
        s->id = h.id ? strdup(h.id) : NULL;
        if (h.id && !s->id) {
            fail(s, HEARTH_ENOMEM, HEARTH_STREAM_ERR_RESOURCE_CONSTRAINT, "out of memory");
            return;
        }
    }
    if (s->cbs.open && !s->free_pending)
        s->cbs.open(s->ud, &h);
    /* The server answers even when the caller sent nothing from open. */
    if (s->role == HEARTH_STREAM_SERVER && s->out == OUT_NONE && !s->free_pending) {
        int rc = send_header(s);
        if (rc && rc != HEARTH_ETLS)
            fail(s, rc, HEARTH_STREAM_ERR_INTERNAL_SERVER_ERROR, "cannot open the stream");
    }
}

static void x_open(void *ud, const hearth_xml_node_t *header, const char *default_ns)
{
    hearth_stream_t *s = ud;
    if (s->framing == HEARTH_STREAM_WEBSOCKET || s->in != IN_HEADER || s->free_pending)
        return; /* WebSocket: the root every message is parsed under */
    if (strcmp(header->ns, HEARTH_NS_STREAMS) != 0 || strcmp(header->name, "stream") != 0) {
        fail(s, HEARTH_EXML, HEARTH_STREAM_ERR_INVALID_NAMESPACE,
             "the stream element must be stream in " HEARTH_NS_STREAMS);
        return;
    }
    if (strcmp(default_ns, s->content_ns) != 0) {
        char text[160];
        snprintf(text, sizeof(text), "the content namespace must be %.100s", s->content_ns);
        fail(s, HEARTH_EXML, HEARTH_STREAM_ERR_INVALID_NAMESPACE, text);
        return;
    }
    if (!version_ok(hearth_xml_attr(header, "version"))) {
        fail(s, HEARTH_EXML, HEARTH_STREAM_ERR_UNSUPPORTED_VERSION, "XMPP 1.0 is required");
        return;
    }
    got_header(s, header, default_ns);
}

/* An element after which the peer may send nothing we should read before the step is taken. */
static bool ends_step(const hearth_stream_t *s, const hearth_xml_node_t *el)
{
    if (s->role == HEARTH_STREAM_CLIENT)
        return is(el, "success", HEARTH_NS_SASL) ||
               (s->framing == HEARTH_STREAM_TCP && is(el, "proceed", HEARTH_NS_TLS));
    return s->framing == HEARTH_STREAM_TCP && is(el, "starttls", HEARTH_NS_TLS);
}

static void deliver(hearth_stream_t *s, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    if (ends_step(s, el)) {
        /* Set before the callback, which may take the step at once. */
        s->in = IN_STEP;
        s->discard = true;
        hearth_xml_stream_stop(s->xml);
    }
    if (s->cbs.element)
        s->cbs.element(s->ud, el, arena);
}

/* One element of a WebSocket message: framing checks, then <open/>, <close/> or delivery. */
static void ws_element(hearth_stream_t *s, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    /* Trailing whitespace was trimmed off the message, so an element ending before its end has
     * something after it: a second element or text. Refused before the first is delivered. */
    if (++s->ws_elements > 1 || hearth_xml_stream_position(s->xml).done != s->ws_end) {
        fail(s, HEARTH_EXML, HEARTH_STREAM_ERR_NOT_WELL_FORMED,
             "a WebSocket message must hold exactly one element");
        return;
    }
    if (!*el->ns) {
        fail(s, HEARTH_EXML, HEARTH_STREAM_ERR_INVALID_NAMESPACE,
             "each WebSocket message must declare its namespace");
        return;
    }
    if (strcmp(el->ns, HEARTH_NS_FRAMING) == 0) {
        if (strcmp(el->name, "close") == 0) {
            peer_closed(s);
        } else if (strcmp(el->name, "open") == 0 && s->in == IN_HEADER) {
            if (!version_ok(hearth_xml_attr(el, "version")))
                fail(s, HEARTH_EXML, HEARTH_STREAM_ERR_UNSUPPORTED_VERSION, "XMPP 1.0 is required");
            else
                got_header(s, el, "");
        } else {
            fail(s, HEARTH_EXML, HEARTH_STREAM_ERR_BAD_FORMAT, "unexpected framing element");
        }
        return;
    }
    if (s->in == IN_HEADER) {
        fail(s, HEARTH_EXML, HEARTH_STREAM_ERR_INVALID_NAMESPACE,
             "the stream must open with <open xmlns='" HEARTH_NS_FRAMING "'/>");
        return;
    }
    deliver(s, el, arena);
}

static void x_stanza(void *ud, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    hearth_stream_t *s = ud;
    if (s->free_pending || input_over(s) || s->in == IN_STEP)
        return;
    if (s->framing == HEARTH_STREAM_WEBSOCKET)
        ws_element(s, el, arena);
    else if (s->in == IN_OPEN)
        deliver(s, el, arena);
}

static void x_close(void *ud)
{
    hearth_stream_t *s = ud;
    if (!s->free_pending && s->framing == HEARTH_STREAM_TCP)
        peer_closed(s);
}

static void x_error(void *ud, hearth_stream_error_t cond, const char *text)
{
    hearth_stream_t *s = ud;
    /* In a WebSocket message, text beside the element makes the message not a well-formed
     * document; the parser calls it <bad-format/>, right for a TCP stream. */
    if (s->framing == HEARTH_STREAM_WEBSOCKET && cond == HEARTH_STREAM_ERR_BAD_FORMAT)
        cond = HEARTH_STREAM_ERR_NOT_WELL_FORMED;
    int err = cond == HEARTH_STREAM_ERR_POLICY_VIOLATION      ? HEARTH_ELIMIT
              : cond == HEARTH_STREAM_ERR_RESOURCE_CONSTRAINT ? HEARTH_ENOMEM
                                                              : HEARTH_EXML;
    fail(s, err, cond, text);
}

static const hearth_xml_stream_cbs_t xml_cbs = {
    .open = x_open,
    .stanza = x_stanza,
    .close = x_close,
    .error = x_error,
};

/* ---- input: framings ---- */

/* Skips XML whitespace; returns the new position. */
static size_t skip_space(const char *p, size_t i, size_t n)
{
    while (i < n && is_space(p[i]))
        i++;
    return i;
}

/* The value of one pseudo-attribute of an XML declaration; p[*i] is its opening quote. */
static bool decl_value(const char *p, size_t n, size_t *i, const char **val, size_t *len)
{
    if (*i >= n || (p[*i] != '\'' && p[*i] != '"'))
        return false;
    const char *end = memchr(p + *i + 1, p[*i], n - *i - 1);
    if (!end)
        return false;
    *val = p + *i + 1;
    *len = (size_t)(end - *val);
    *i = (size_t)(end - p) + 1;
    return true;
}

static bool value_is(const char *val, size_t len, const char *want)
{
    return len == strlen(want) && strncasecmp(val, want, len) == 0;
}

/* Length of an XML declaration at the start of a WebSocket message (RFC 7395 §3.3.3 allows one,
 * though it is not recommended), 0 when there is none. A malformed one sets *cond to
 * not-well-formed, an encoding other than UTF-8 to unsupported-encoding. XML 1.0 §2.8: version
 * first, then encoding and standalone, each after whitespace. */
static size_t xml_decl_len(const char *p, size_t n, hearth_stream_error_t *cond)
{
    *cond = HEARTH_STREAM_ERR_NONE;
    if (n < 6 || memcmp(p, "<?xml", 5) != 0 || !is_space(p[5]))
        return 0;
    if (n > MAX_XML_DECL)
        n = MAX_XML_DECL;
    static const char *const names[] = {"version", "encoding", "standalone"};
    size_t i = 5, next = 0; /* names[next] and later may follow */
    for (;;) {
        size_t name = skip_space(p, i, n);
        if (name + 1 < n && p[name] == '?' && p[name + 1] == '>') {
            if (next == 0)
                break; /* version is required */
            return name + 2;
        }
        if (name == i) /* no whitespace before a pseudo-attribute */
            break;
        i = name;
        while (i < n && p[i] >= 'a' && p[i] <= 'z')
            i++;
        size_t which = next;
        while (which < 3 &&
               !(i - name == strlen(names[which]) && memcmp(p + name, names[which], i - name) == 0))
            which++;
        if (which == 3 || (next == 0 && which != 0))
            break;
        i = skip_space(p, i, n);
        if (i >= n || p[i] != '=')
            break;
        i = skip_space(p, i + 1, n);
        const char *val;
        size_t len;
        if (!decl_value(p, n, &i, &val, &len))
            break;
        if (which == 0 && (len < 3 || memcmp(val, "1.", 2) != 0))
            break;
        if (which == 1 && !value_is(val, len, "UTF-8")) {
            *cond = HEARTH_STREAM_ERR_UNSUPPORTED_ENCODING;
            return 0;
        }
        if (which == 2 && !(len == 3 && !memcmp(val, "yes", 3)) &&
            !(len == 2 && !memcmp(val, "no", 2)))
            break;
        next = which + 1;
    }
    *cond = HEARTH_STREAM_ERR_NOT_WELL_FORMED;
    return 0;
}

/* One WebSocket message: exactly one complete element (RFC 7395 §3.3.3). */
static void feed_ws(hearth_stream_t *s, const char *p, size_t n)
{
    size_t limit = s->in == IN_HEADER ? s->limits.max_header_bytes : s->limits.max_stanza_bytes;
    if (n > limit) {
        fail(s, HEARTH_ELIMIT, HEARTH_STREAM_ERR_POLICY_VIOLATION, "WebSocket message too large");
        return;
    }
    hearth_stream_error_t cond;
    size_t decl = xml_decl_len(p, n, &cond);
    if (cond != HEARTH_STREAM_ERR_NONE) {
        fail(s, HEARTH_EXML, cond,
             cond == HEARTH_STREAM_ERR_UNSUPPORTED_ENCODING ? "only UTF-8 is supported"
                                                            : "malformed XML declaration");
        return;
    }
    p += decl;
    n -= decl;
    /* Whitespace after the element is insignificant, and expat would hold a trailing CR back:
     * the element must then end the message. */
    while (n > 0 && is_space(p[n - 1]))
        n--;
    if (n == 0 || p[n - 1] != '>') {
        fail(s, HEARTH_EXML, HEARTH_STREAM_ERR_NOT_WELL_FORMED,
             "a WebSocket message must hold exactly one complete element");
        return;
    }
    s->ws_elements = 0;
    s->ws_end = hearth_xml_stream_position(s->xml).fed + n;
    (void)hearth_xml_stream_feed(s->xml, p, n);
    if (s->ws_elements == 0 && !input_over(s) && !s->free_pending && s->in != IN_STEP)
        fail(s, HEARTH_EXML, HEARTH_STREAM_ERR_NOT_WELL_FORMED,
             "a WebSocket message must hold exactly one complete element");
}

/* Plaintext from the peer: the raw input, or what TLS decrypted. */
static void parse(hearth_stream_t *s, const char *data, size_t len)
{
    if (s->discard || s->free_pending || s->in == IN_STEP || input_over(s))
        return;
    if (s->framing == HEARTH_STREAM_WEBSOCKET)
        feed_ws(s, data, len); /* even an empty message: it is not an element */
    else if (len > 0)
        (void)hearth_xml_stream_feed(s->xml, data, len);
}

/* ---- TLS ---- */

static void tls_write_raw(void *ud, const char *data, size_t len)
{
    write_cb(ud, data, len);
}

static void tls_read_plain(void *ud, const char *data, size_t len)
{
    parse(ud, data, len);
}

static void tls_handshake_done(void *ud)
{
    hearth_stream_t *s = ud;
    s->secure = true;
    if (s->cbs.tls_done && !s->free_pending)
        s->cbs.tls_done(s->ud);
    /* RFC 6120 §5.4.3.3: the initiating entity opens the new stream over TLS. */
    if (s->role == HEARTH_STREAM_CLIENT && s->out == OUT_NONE && !s->free_pending && !input_over(s))
        (void)send_header(s);
}

static const hearth_tls_io_t tls_io = {
    .write_raw = tls_write_raw,
    .read_plain = tls_read_plain,
    .handshake_done = tls_handshake_done,
};

static int tls_begin(hearth_stream_t *s, hearth_tls_ctx_t *ctx)
{
    s->tls = hearth_tls_new(ctx, &tls_io, s, s->role == HEARTH_STREAM_CLIENT ? s->domain : NULL);
    return s->tls ? 0 : HEARTH_ENOMEM;
}

/* ---- steps ---- */

/* A new stream on the same connection: a fresh parser (at the end of the current feed, whose
 * remaining input is dropped), a header expected, ours to send again. */
static int begin_restart(hearth_stream_t *s)
{
    s->in = IN_HEADER;
    s->out = OUT_NONE;
    free(s->id);
    s->id = NULL;
    if (s->in_feed) {
        s->discard = true;
        s->reset_pending = true;
        hearth_xml_stream_stop(s->xml);
        return 0;
    }
    return parser_reset(s);
}

/* The stream cannot go on and the caller learns it from a return code. */
static void give_up(hearth_stream_t *s, int rc)
{
    s->in = IN_FAILED;
    s->out = OUT_CLOSED;
    s->end_rc = rc;
    s->reported = true;
    s->discard = true;
    hearth_xml_stream_stop(s->xml);
}

int hearth_stream_starttls(hearth_stream_t *s, hearth_tls_ctx_t *ctx)
{
    if (s->in_write)
        return HEARTH_EBUSY;
    if (!ctx || s->framing != HEARTH_STREAM_TCP || s->tls)
        return HEARTH_EINVAL;
    if (s->free_pending || input_over(s) || s->out == OUT_CLOSED)
        return HEARTH_ECLOSED;
    int rc = tls_begin(s, ctx);
    if (rc)
        return rc;
    enter(s);
    rc = begin_restart(s);
    if (!rc && s->role == HEARTH_STREAM_CLIENT)
        rc = hearth_tls_start(s->tls); /* the ClientHello; our header after the handshake */
    if (rc)
        give_up(s, rc);
    leave(s);
    return rc;
}

int hearth_stream_restart(hearth_stream_t *s)
{
    if (s->in_write)
        return HEARTH_EBUSY;
    if (s->free_pending || input_over(s) || s->out == OUT_CLOSED)
        return HEARTH_ECLOSED;
    enter(s);
    int rc = begin_restart(s);
    if (!rc && s->role == HEARTH_STREAM_CLIENT)
        rc = send_header(s);
    if (rc && rc != HEARTH_ETLS)
        give_up(s, rc);
    leave(s);
    return rc;
}

/* ---- public: life cycle, input ---- */

hearth_stream_t *hearth_stream_new(const hearth_stream_config_t *cfg,
                                   const hearth_stream_cbs_t *cbs, void *ud)
{
    if (!cfg || !cbs || !cbs->write || !cfg->domain ||
        (cfg->direct_tls && cfg->framing != HEARTH_STREAM_TCP))
        return NULL;
    hearth_stream_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cbs = *cbs;
    s->ud = ud;
    s->role = cfg->role;
    s->framing = cfg->framing;
    s->in = IN_HEADER;
    s->out = OUT_NONE;
    fill_limits(&s->limits, cfg->limits);
    s->domain = strdup(cfg->domain);
    s->from = cfg->from ? strdup(cfg->from) : NULL;
    s->content_ns = dup_or(cfg->content_ns, default_content_ns);
    s->lang = dup_or(cfg->lang, default_lang);
    s->xml = hearth_xml_stream_new(&xml_cbs, s, &s->limits);
    if (!s->domain || (cfg->from && !s->from) || !s->content_ns || !s->lang || !s->xml ||
        (cfg->direct_tls && tls_begin(s, cfg->direct_tls)) || parser_reset(s)) {
        destroy(s);
        return NULL;
    }
    return s;
}

int hearth_stream_start(hearth_stream_t *s)
{
    if (s->in_write)
        return HEARTH_EBUSY;
    if (s->role != HEARTH_STREAM_CLIENT)
        return 0;
    if (s->started)
        return HEARTH_EINVAL;
    if (s->free_pending || input_over(s) || s->out == OUT_CLOSED)
        return HEARTH_ECLOSED;
    s->started = true;
    enter(s);
    int rc;
    if (s->tls) {
        rc = hearth_tls_set_alpn(s->tls, "xmpp-client");
        rc = rc ?: hearth_tls_start(s->tls);
    } else {
        rc = ensure_header(s);
    }
    if (rc && rc != HEARTH_ETLS)
        give_up(s, rc);
    leave(s);
    return rc;
}

int hearth_stream_feed(hearth_stream_t *s, const char *data, size_t len)
{
    if (s->in_feed || s->in_write)
        return HEARTH_EBUSY;
    if (!data && len)
        return HEARTH_EINVAL;
    if (input_over(s))
        return s->end_rc;
    enter(s);
    s->in_feed = true;
    s->discard = false;
    if (s->tls) {
        int rc = hearth_tls_feed(s->tls, data, len);
        if (rc == HEARTH_ECLOSED)
            fail(s, HEARTH_ECLOSED, HEARTH_STREAM_ERR_NONE, "TLS closed (close_notify)");
        else if (rc)
            fail(s, HEARTH_ETLS, HEARTH_STREAM_ERR_NONE, hearth_tls_error(s->tls));
    } else {
        parse(s, data, len);
    }
    s->in_feed = false;
    s->discard = false;
    if (s->reset_pending && !s->free_pending) {
        s->reset_pending = false;
        int rc = parser_reset(s);
        if (rc)
            fail(s, rc, HEARTH_STREAM_ERR_RESOURCE_CONSTRAINT, "cannot restart the stream");
    }
    int rc = input_over(s) ? s->end_rc : 0;
    if (leave(s))
        return HEARTH_ECLOSED;
    return rc;
}

int hearth_stream_trim(hearth_stream_t *s)
{
    if (s->depth || s->in_feed || s->in_write || s->reset_pending || !s->xml)
        return 0;
    return hearth_xml_stream_trim(s->xml);
}

int hearth_stream_release_tls(hearth_stream_t *s)
{
    if (!s->tls || s->in_feed || s->in_write || s->free_pending)
        return 0;
    return hearth_tls_release(s->tls);
}

/* ---- public: output ---- */

int hearth_stream_send(hearth_stream_t *s, const char *data, size_t len)
{
    if (!data && len)
        return HEARTH_EINVAL;
    enter(s);
    int rc = may_send(s);
    if (!rc)
        rc = out_write(s, data, len);
    leave(s);
    return rc;
}

const char *hearth_stream_context_ns(const hearth_stream_t *s)
{
    return s->framing == HEARTH_STREAM_TCP ? s->content_ns : "";
}

int hearth_stream_send_node(hearth_stream_t *s, const hearth_xml_node_t *el)
{
    if (!el)
        return HEARTH_EINVAL;
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_xml_serialize(el, hearth_stream_context_ns(s), &b);
    if (!rc)
        rc = hearth_stream_send(s, b.data, b.len);
    hearth_buf_free(&b);
    return rc;
}

int hearth_stream_send_features(hearth_stream_t *s, const char *children, size_t len)
{
    if (!children && len)
        return HEARTH_EINVAL;
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, s->framing == HEARTH_STREAM_TCP
                                           ? "<stream:features>"
                                           : "<stream:features " STREAM_NS_DECL ">");
    rc = rc ?: hearth_buf_append(&b, children ? children : "", len);
    rc = rc ?: hearth_buf_append_str(&b, "</stream:features>");
    if (!rc)
        rc = hearth_stream_send(s, b.data, b.len);
    hearth_buf_free(&b);
    return rc;
}

int hearth_stream_error(hearth_stream_t *s, hearth_stream_error_t cond, const char *text)
{
    if (s->in_write)
        return HEARTH_EBUSY;
    if (s->free_pending || s->out == OUT_CLOSED)
        return HEARTH_ECLOSED;
    if (cond == HEARTH_STREAM_ERR_NONE)
        cond = HEARTH_STREAM_ERR_UNDEFINED_CONDITION;
    enter(s);
    int rc = write_error(s, cond, text);
    /* Nothing the peer sends after our error is read (RFC 6120 §4.9.1.1: the stream is over). */
    if (!input_over(s)) {
        s->in = IN_FAILED;
        s->end_rc = HEARTH_ECLOSED;
    }
    s->reported = true;
    s->discard = true;
    hearth_xml_stream_stop(s->xml);
    leave(s);
    return rc;
}

int hearth_stream_close(hearth_stream_t *s)
{
    if (s->in_write)
        return HEARTH_EBUSY;
    if (s->free_pending || s->out == OUT_CLOSED)
        return HEARTH_ECLOSED;
    enter(s);
    int rc = ensure_header(s);
    if (!rc && s->out != OUT_CLOSED)
        rc = write_close(s);
    leave(s);
    return rc;
}

void hearth_stream_shutdown(hearth_stream_t *s)
{
    if (!s->tls || s->in_write || s->free_pending)
        return;
    enter(s);
    hearth_tls_shutdown(s->tls);
    leave(s);
}

/* ---- public: settings, state ---- */

int hearth_stream_set_domain(hearth_stream_t *s, const char *domain)
{
    if (!domain || s->role != HEARTH_STREAM_SERVER || s->out != OUT_NONE)
        return HEARTH_EINVAL;
    char *d = strdup(domain);
    if (!d)
        return HEARTH_ENOMEM;
    free(s->domain);
    s->domain = d;
    return 0;
}

int hearth_stream_set_from(hearth_stream_t *s, const char *from)
{
    if (s->role != HEARTH_STREAM_CLIENT)
        return HEARTH_EINVAL;
    char *f = NULL;
    if (from && !(f = strdup(from)))
        return HEARTH_ENOMEM;
    free(s->from);
    s->from = f;
    return 0;
}

void hearth_stream_set_limits(hearth_stream_t *s, const hearth_xml_limits_t *limits)
{
    fill_limits(&s->limits, limits);
    hearth_xml_stream_set_limits(s->xml, &s->limits);
}

void hearth_stream_set_max_stanza(hearth_stream_t *s, size_t max_stanza_bytes)
{
    hearth_xml_limits_t l = s->limits;
    l.max_stanza_bytes = max_stanza_bytes;
    hearth_stream_set_limits(s, &l);
}

const char *hearth_stream_id(const hearth_stream_t *s)
{
    return s->id;
}

hearth_tls_t *hearth_stream_tls(const hearth_stream_t *s)
{
    return s->tls;
}

int hearth_stream_secure(const hearth_stream_t *s)
{
    return s->secure;
}

int hearth_stream_output_closed(const hearth_stream_t *s)
{
    return s->out == OUT_CLOSED;
}

int hearth_stream_input_closed(const hearth_stream_t *s)
{
    return input_over(s);
}

hearth_stream_role_t hearth_stream_role(const hearth_stream_t *s)
{
    return s->role;
}

hearth_stream_framing_t hearth_stream_framing(const hearth_stream_t *s)
{
    return s->framing;
}

static void destroy(hearth_stream_t *s)
{
    hearth_tls_free(s->tls);
    hearth_xml_stream_free(s->xml);
    free(s->domain);
    free(s->from);
    free_or(s->content_ns, default_content_ns);
    free_or(s->lang, default_lang);
    free(s->id);
    free(s);
}

void hearth_stream_free(hearth_stream_t *s)
{
    if (!s)
        return;
    if (s->depth > 0) {
        /* Inside a callback: nothing more is called; the outermost call frees on its way out. */
        s->free_pending = true;
        s->discard = true;
        hearth_xml_stream_stop(s->xml);
        return;
    }
    destroy(s);
}
