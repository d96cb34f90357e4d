/* Unit tests for lib/xml: arena, tree, serialiser and the stream parser (split feeds, restricted
 * XML, limits, stop and reset). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <malloc.h>
#include <string.h>

#include <cmocka.h>

#include "hearth/xml.h"

#define NS_CLIENT "jabber:client"

/* ---- helpers ---------------------------------------------------------------------------- */

static char *serialize_str(const hearth_xml_node_t *n, const char *ctx)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_xml_serialize(n, ctx, &b), 0);
    return hearth_buf_steal(&b, NULL);
}

static void assert_serializes(const hearth_xml_node_t *n, const char *ctx, const char *want)
{
    char *got = serialize_str(n, ctx);
    assert_string_equal(got, want);
    free(got);
}

/* Records every stream event as a line of text, so two runs compare with one strcmp. */
struct rec {
    hearth_xml_stream_t *s;
    hearth_buf_t log;
    int opens, stanzas, closes, errors;
    hearth_stream_error_t err;
    char errtext[128];
    char default_ns[128];
    int stop_at_stanza;          /* call stop() inside the n-th stanza callback (1-based) */
    int reset_rc;                /* what reset() returned when tried inside a callback */
    hearth_arena_t *keep;        /* copies of stanzas outliving their callback */
    hearth_xml_node_t *kept[16]; /* the first stanzas, copied */
    hearth_xml_node_t *header;   /* copy of the header */
};

static void rec_open(void *ud, const hearth_xml_node_t *header, const char *default_ns)
{
    struct rec *r = ud;
    r->opens++;
    snprintf(r->default_ns, sizeof(r->default_ns), "%s", default_ns);
    assert_int_equal(
        hearth_buf_printf(&r->log, "open {%s}%s default=%s", header->ns, header->name, default_ns),
        0);
    for (const hearth_xml_attr_t *a = header->attrs; a; a = a->next)
        assert_int_equal(
            hearth_buf_printf(&r->log, " {%s}%s=%s", a->ns ? a->ns : "", a->name, a->value), 0);
    assert_int_equal(hearth_buf_append_str(&r->log, "\n"), 0);
    if (r->keep)
        r->header = hearth_xml_copy(r->keep, header);
}

static void rec_stanza(void *ud, hearth_xml_node_t *stanza, hearth_arena_t *arena)
{
    struct rec *r = ud;
    r->stanzas++;
    assert_non_null(stanza);
    assert_null(stanza->parent);
    /* The callee may allocate in the stanza arena. */
    assert_non_null(hearth_arena_alloc(arena, 100));
    char *xml = serialize_str(stanza, r->default_ns);
    assert_int_equal(hearth_buf_printf(&r->log, "stanza %s\n", xml), 0);
    free(xml);
    if (r->keep && r->stanzas <= 16)
        r->kept[r->stanzas - 1] = hearth_xml_copy(r->keep, stanza);
    if (r->stanzas == r->stop_at_stanza) {
        r->reset_rc = hearth_xml_stream_reset(r->s);
        hearth_xml_stream_stop(r->s);
    }
}

static void rec_close(void *ud)
{
    struct rec *r = ud;
    r->closes++;
    assert_int_equal(hearth_buf_append_str(&r->log, "close\n"), 0);
}

static void rec_error(void *ud, hearth_stream_error_t cond, const char *text)
{
    struct rec *r = ud;
    r->errors++;
    r->err = cond;
    snprintf(r->errtext, sizeof(r->errtext), "%s", text ? text : "");
    assert_int_equal(hearth_buf_printf(&r->log, "error %s\n", hearth_stream_error_name(cond)), 0);
}

static const hearth_xml_stream_cbs_t rec_cbs = {rec_open, rec_stanza, rec_close, rec_error};

static void rec_init(struct rec *r, const hearth_xml_limits_t *limits)
{
    memset(r, 0, sizeof(*r));
    r->log = (hearth_buf_t)HEARTH_BUF_INIT;
    r->s = hearth_xml_stream_new(&rec_cbs, r, limits);
    assert_non_null(r->s);
}

static void rec_done(struct rec *r)
{
    hearth_xml_stream_free(r->s);
    hearth_buf_free(&r->log);
    hearth_arena_free(r->keep);
}

static const char *log_of(struct rec *r)
{
    return r->log.data ? r->log.data : "";
}

#define C2S_HEADER                                                                                 \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' "              \
    "xml:lang='en'>"

/* Parses one top-level child inside a c2s header; the copy lives in r->keep. */
static hearth_xml_node_t *parse_one(struct rec *r, const char *xml)
{
    rec_init(r, NULL);
    r->keep = hearth_arena_new(0);
    assert_int_equal(hearth_xml_stream_feed(r->s, C2S_HEADER, strlen(C2S_HEADER)), 0);
    assert_int_equal(hearth_xml_stream_feed(r->s, xml, strlen(xml)), 0);
    assert_int_equal(r->errors, 0);
    assert_int_equal(r->stanzas, 1);
    assert_non_null(r->kept[0]);
    return r->kept[0];
}

/* ---- arena -------------------------------------------------------------------------------- */

static void test_arena(void **state)
{
    hearth_arena_t *a = hearth_arena_new(256);
    assert_non_null(a);
    for (int i = 0; i < 200; i++) {
        size_t n = (size_t)(i * 7) % 61 + 1;
        char *p = hearth_arena_alloc(a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        memset(p, 0xAB, n);
    }
    char *big = hearth_arena_alloc(a, 100000);
    assert_non_null(big);
    assert_int_equal((uintptr_t)big % 16, 0);
    memset(big, 1, 100000);
    /* Small allocations still work after a large one. */
    char *s = hearth_arena_strdup(a, "hello");
    assert_string_equal(s, "hello");
    char *t = hearth_arena_strndup(a, "abcdef", 3);
    assert_string_equal(t, "abc");
    assert_non_null(hearth_arena_alloc(a, 0));
    assert_null(hearth_arena_alloc(a, SIZE_MAX - 8));
    hearth_arena_reset(a);
    char *u = hearth_arena_strdup(a, "again");
    assert_string_equal(u, "again");
    hearth_arena_free(a);

    a = hearth_arena_new(0);
    assert_non_null(a);
    for (int i = 0; i < 10000; i++)
        assert_non_null(hearth_arena_alloc(a, 24));
    hearth_arena_free(a);
    hearth_arena_free(NULL);
}

/* ---- tree and serialiser ----------------------------------------------------------------- */

static void test_tree_build(void **state)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *m = hearth_xml_new(a, "message", NS_CLIENT);
    assert_non_null(m);
    assert_int_equal(hearth_xml_set_attr(a, m, "to", "juliet@example.com"), 0);
    assert_int_equal(hearth_xml_set_attr(a, m, "type", "chat"), 0);
    assert_int_equal(hearth_xml_set_attr(a, m, "id", "x"), 0);
    assert_int_equal(hearth_xml_set_attr(a, m, "type", "normal"), 0); /* replaces */
    assert_int_equal(hearth_xml_set_attr(a, m, "id", NULL), 0);       /* removes */
    assert_int_equal(hearth_xml_set_attr(a, m, "nothere", NULL), 0);
    assert_int_equal(hearth_xml_set_attr(a, m, NULL, "v"), HEARTH_EINVAL);
    assert_int_equal(hearth_xml_set_attr_ns(a, m, HEARTH_NS_XML, "lang", "en"), 0);
    assert_string_equal(hearth_xml_attr(m, "type"), "normal");
    assert_null(hearth_xml_attr(m, "id"));
    assert_null(hearth_xml_attr(m, "lang"));
    assert_string_equal(hearth_xml_attr_ns(m, HEARTH_NS_XML, "lang"), "en");
    assert_string_equal(hearth_xml_attr_ns(m, "", "to"), "juliet@example.com");

    hearth_xml_node_t *body = hearth_xml_add_child(a, m, "body", NULL);
    assert_string_equal(body->ns, NS_CLIENT);
    assert_non_null(hearth_xml_add_text(a, body, "Hello, ", 7));
    assert_non_null(hearth_xml_add_text(a, body, "world!xxx", 6));
    hearth_xml_node_t *x = hearth_xml_add_child(a, m, "x", "jabber:x:oob");
    hearth_xml_node_t *url = hearth_xml_add_child(a, x, "url", NULL);
    assert_string_equal(url->ns, "jabber:x:oob");
    assert_non_null(hearth_xml_add_text(a, url, "http://a/b?c=1&d=2", 18));
    hearth_xml_node_t *thread = hearth_xml_add_child(a, m, "thread", NULL);

    assert_int_equal(hearth_xml_count_elements(m), 3);
    assert_ptr_equal(hearth_xml_first_element(m), body);
    assert_ptr_equal(hearth_xml_next_element(body), x);
    assert_ptr_equal(hearth_xml_next_element(x), thread);
    assert_null(hearth_xml_next_element(thread));
    assert_ptr_equal(hearth_xml_child(m, "x", NULL), x);
    assert_ptr_equal(hearth_xml_child(m, NULL, "jabber:x:oob"), x);
    assert_ptr_equal(hearth_xml_child(m, "x", "jabber:x:oob"), x);
    assert_null(hearth_xml_child(m, "x", NS_CLIENT));
    assert_ptr_equal(hearth_xml_child(m, "thread", NS_CLIENT), thread);
    assert_string_equal(hearth_xml_text(a, body), "Hello, world!");
    assert_string_equal(hearth_xml_text(a, m), "");

    assert_serializes(m, NS_CLIENT,
                      "<message to='juliet@example.com' type='normal' xml:lang='en'>"
                      "<body>Hello, world!</body>"
                      "<x xmlns='jabber:x:oob'><url>http://a/b?c=1&amp;d=2</url></x>"
                      "<thread/></message>");
    /* Out of its namespace's context the root declares it. */
    assert_serializes(m, "",
                      "<message xmlns='jabber:client' to='juliet@example.com' type='normal' "
                      "xml:lang='en'><body>Hello, world!</body>"
                      "<x xmlns='jabber:x:oob'><url>http://a/b?c=1&amp;d=2</url></x>"
                      "<thread/></message>");

    /* Deep copy, then edit the copy only. */
    hearth_arena_t *b = hearth_arena_new(0);
    hearth_xml_node_t *c = hearth_xml_copy(b, m);
    assert_null(c->parent);
    hearth_xml_remove(hearth_xml_child(c, "x", NULL));
    assert_int_equal(hearth_xml_count_elements(c), 2);
    assert_int_equal(hearth_xml_count_elements(m), 3);
    hearth_xml_node_t *cthread = hearth_xml_child(c, "thread", NULL);
    hearth_xml_remove(cthread);
    assert_null(cthread->parent);
    assert_ptr_equal(c->last_child, hearth_xml_child(c, "body", NULL));
    hearth_xml_append(c, cthread);
    assert_ptr_equal(c->last_child, cthread);
    /* Moving a node that is linked elsewhere unlinks it first. */
    hearth_xml_node_t *cbody = hearth_xml_child(c, "body", NULL);
    hearth_xml_append(cthread, cbody);
    assert_int_equal(hearth_xml_count_elements(c), 1);
    assert_serializes(c, NS_CLIENT,
                      "<message to='juliet@example.com' type='normal' xml:lang='en'>"
                      "<thread><body>Hello, world!</body></thread></message>");
    hearth_arena_free(b);

    /* An element with no namespace under a default one undeclares it. */
    hearth_xml_node_t *q = hearth_xml_new(a, "query", "jabber:iq:roster");
    hearth_xml_add_child(a, q, "plain", "");
    assert_serializes(q, "jabber:iq:roster", "<query><plain xmlns=''/></query>");
    assert_serializes(q, NULL, "<query xmlns='jabber:iq:roster'><plain xmlns=''/></query>");

    /* Text node alone. */
    hearth_xml_node_t *tn = hearth_xml_add_text(a, q, "a<b", 3);
    assert_serializes(tn, NS_CLIENT, "a&lt;b");
    assert_null(hearth_xml_add_text(a, tn, "x", 1));
    hearth_arena_free(a);
}

static void test_serialize_escaping(void **state)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *m = hearth_xml_new(a, "message", NS_CLIENT);
    const char *nasty = "Tom & Jerry <b>\"quoted\" 'single'</b> > end";
    assert_int_equal(hearth_xml_set_attr(a, m, "id", nasty), 0);
    hearth_xml_node_t *body = hearth_xml_add_child(a, m, "body", NULL);
    hearth_xml_add_text(a, body, nasty, strlen(nasty));
    const char *zh = "你好，世界 — café ☕ 🙂";
    hearth_xml_node_t *subj = hearth_xml_add_child(a, m, "subject", NULL);
    hearth_xml_add_text(a, subj, zh, strlen(zh));
    assert_int_equal(hearth_xml_set_attr(a, subj, "title", zh), 0);

    const char *want =
        "<message id='Tom &amp; Jerry &lt;b&gt;&quot;quoted&quot; "
        "&apos;single&apos;&lt;/b&gt; &gt; end'>"
        /* in text, quotes are written as they are: only & < > are escaped */
        "<body>Tom &amp; Jerry &lt;b&gt;\"quoted\" "
        "'single'&lt;/b&gt; &gt; end</body>"
        "<subject title='你好，世界 — café ☕ 🙂'>你好，世界 — café ☕ "
        "🙂</subject>"
        "</message>";
    assert_serializes(m, NS_CLIENT, want);

    /* Round trip through the parser: the same values come back byte for byte. */
    struct rec r;
    hearth_xml_node_t *p = parse_one(&r, want);
    assert_string_equal(hearth_xml_attr(p, "id"), nasty);
    hearth_xml_node_t *pb = hearth_xml_child(p, "body", NS_CLIENT);
    assert_non_null(pb);
    /* Adjacent character data (entity references split expat's events) is one node. */
    assert_non_null(pb->children);
    assert_null(pb->children->next);
    assert_int_equal(pb->children->type, HEARTH_XML_TEXT);
    assert_int_equal(pb->children->text_len, strlen(nasty));
    assert_memory_equal(pb->children->text, nasty, strlen(nasty));
    hearth_xml_node_t *ps = hearth_xml_child(p, "subject", NULL);
    assert_string_equal(hearth_xml_text(r.keep, ps), zh);
    assert_string_equal(hearth_xml_attr(ps, "title"), zh);
    assert_serializes(p, NS_CLIENT, want);
    rec_done(&r);

    /* Namespaced attributes get a generated prefix declared on their element. */
    hearth_xml_node_t *it = hearth_xml_new(a, "item", "urn:x");
    assert_int_equal(hearth_xml_set_attr(a, it, "id", "1"), 0);
    assert_int_equal(hearth_xml_set_attr_ns(a, it, "urn:y", "foo", "a&b"), 0);
    assert_int_equal(hearth_xml_set_attr_ns(a, it, "urn:z", "foo", "c"), 0);
    assert_int_equal(hearth_xml_set_attr_ns(a, it, "urn:y", "bar", "d"), 0);
    assert_string_equal(hearth_xml_attr_ns(it, "urn:y", "foo"), "a&b");
    assert_null(hearth_xml_attr(it, "foo"));
    const char *want_it = "<item xmlns='urn:x' id='1' xmlns:ns1='urn:y' ns1:foo='a&amp;b' "
                          "xmlns:ns2='urn:z' ns2:foo='c' ns1:bar='d'/>";
    assert_serializes(it, NS_CLIENT, want_it);
    p = parse_one(&r, want_it);
    assert_string_equal(hearth_xml_attr_ns(p, "urn:y", "foo"), "a&b");
    assert_string_equal(hearth_xml_attr_ns(p, "urn:z", "foo"), "c");
    assert_string_equal(hearth_xml_attr_ns(p, "urn:y", "bar"), "d");
    assert_serializes(p, NS_CLIENT, want_it);
    rec_done(&r);

    /* A failed serialisation leaves the buffer as it was. */
    hearth_buf_t out = HEARTH_BUF_INIT;
    assert_int_equal(hearth_buf_append_str(&out, "keep"), 0);
    hearth_xml_node_t *bad = hearth_xml_new(a, "bad", "");
    hearth_xml_add_child(a, bad, "inner", NULL);
    assert_int_equal(
        hearth_xml_set_attr_ns(a, bad->children, "http://www.w3.org/2000/xmlns/", "p", "urn:p"), 0);
    assert_int_equal(hearth_xml_serialize(bad, "", &out), HEARTH_EINVAL);
    assert_string_equal(out.data, "keep");
    hearth_buf_free(&out);
    hearth_arena_free(a);
}

static void test_parse_namespaces(void **state)
{
    struct rec r;
    hearth_xml_node_t *p = parse_one(&r, "<a xmlns='x'><p:b xmlns:p='y'/><c/></a>");
    assert_string_equal(p->name, "a");
    assert_string_equal(p->ns, "x");
    hearth_xml_node_t *b = hearth_xml_first_element(p);
    assert_string_equal(b->name, "b");
    assert_string_equal(b->ns, "y");
    assert_null(b->attrs); /* declarations are not attributes */
    hearth_xml_node_t *c = hearth_xml_next_element(b);
    assert_string_equal(c->name, "c");
    assert_string_equal(c->ns, "x");
    assert_serializes(p, NS_CLIENT, "<a xmlns='x'><b xmlns='y'/><c/></a>");
    assert_serializes(p, "x", "<a><b xmlns='y'/><c/></a>");
    rec_done(&r);

    /* A stanza inherits the root's default namespace and is written without a redundant xmlns. */
    p = parse_one(&r, "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'><item "
                      "jid='a@b'/></query></iq>");
    assert_string_equal(p->ns, NS_CLIENT);
    hearth_xml_node_t *item = hearth_xml_first_element(hearth_xml_first_element(p));
    assert_string_equal(item->ns, "jabber:iq:roster");
    assert_serializes(p, NS_CLIENT,
                      "<iq type='get' id='r1'><query xmlns='jabber:iq:roster'><item "
                      "jid='a@b'/></query></iq>");
    rec_done(&r);

    /* Prefixed elements in the stream namespace and xml:lang on a stanza. */
    p = parse_one(&r, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                      "<mechanism>PLAIN</mechanism></mechanisms></stream:features>");
    assert_string_equal(p->name, "features");
    assert_string_equal(p->ns, HEARTH_NS_STREAMS);
    assert_serializes(p, NS_CLIENT,
                      "<features xmlns='http://etherx.jabber.org/streams'><mechanisms "
                      "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
                      "</mechanisms></features>");
    rec_done(&r);

    p = parse_one(&r, "<message xml:lang='fr' to='a@b'><body xml:lang='de'>Hallo</body>"
                      "<body>Salut</body></message>");
    assert_string_equal(hearth_xml_attr_ns(p, HEARTH_NS_XML, "lang"), "fr");
    assert_null(hearth_xml_attr(p, "lang"));
    assert_string_equal(p->attrs->ns, HEARTH_NS_XML);
    assert_string_equal(p->attrs->name, "lang");
    assert_null(p->attrs->next->ns);
    assert_string_equal(hearth_xml_attr_ns(hearth_xml_first_element(p), HEARTH_NS_XML, "lang"),
                        "de");
    assert_serializes(p, NS_CLIENT,
                      "<message xml:lang='fr' to='a@b'><body xml:lang='de'>Hallo</body>"
                      "<body>Salut</body></message>");
    rec_done(&r);
}

/* ---- stream events ------------------------------------------------------------------------ */

static void test_stream_header_and_close(void **state)
{
    struct rec r;
    rec_init(&r, NULL);
    r.keep = hearth_arena_new(0);
    const char *in = C2S_HEADER "<presence/><message to='a@b'><body>1</body></message>"
                                "<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>"
                                "</stream:stream>";
    assert_int_equal(hearth_xml_stream_feed(r.s, in, strlen(in)), HEARTH_ECLOSED);
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.stanzas, 3);
    assert_int_equal(r.closes, 1);
    assert_int_equal(r.errors, 0);
    assert_string_equal(log_of(&r),
                        "open {http://etherx.jabber.org/streams}stream default=jabber:client "
                        "{}to=example.com {}version=1.0 "
                        "{http://www.w3.org/XML/1998/namespace}lang=en\n"
                        "stanza <presence/>\n"
                        "stanza <message to='a@b'><body>1</body></message>\n"
                        "stanza <iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>\n"
                        "close\n");
    assert_non_null(r.header);
    assert_string_equal(r.header->name, "stream");
    assert_string_equal(r.header->ns, HEARTH_NS_STREAMS);
    assert_string_equal(hearth_xml_attr(r.header, "to"), "example.com");
    assert_string_equal(hearth_xml_attr(r.header, "version"), "1.0");
    assert_string_equal(hearth_xml_attr_ns(r.header, HEARTH_NS_XML, "lang"), "en");
    /* Closed: the rest is ignored. */
    assert_int_equal(hearth_xml_stream_feed(r.s, "<presence/>", 11), HEARTH_ECLOSED);
    assert_int_equal(r.stanzas, 3);
    rec_done(&r);

    /* A root without default namespace; bytes after the close in the same feed are dropped. */
    rec_init(&r, NULL);
    in = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'><x/></stream:stream>"
         "garbage<<<";
    assert_int_equal(hearth_xml_stream_feed(r.s, in, strlen(in)), HEARTH_ECLOSED);
    assert_string_equal(log_of(&r), "open {http://etherx.jabber.org/streams}stream default=\n"
                                    "stanza <x/>\n"
                                    "close\n");
    rec_done(&r);

    /* A wrong root is reported as it is; the caller judges it. */
    rec_init(&r, NULL);
    in = "<stream xmlns='jabber:client'>";
    assert_int_equal(hearth_xml_stream_feed(r.s, in, strlen(in)), 0);
    assert_string_equal(log_of(&r), "open {jabber:client}stream default=jabber:client\n");
    rec_done(&r);
}

/* A realistic session as pieces; stanza pieces give the expected serialisation. */
struct piece {
    const char *in;
    const char *out; /* stanza serialisation when it differs from in */
    char kind;       /* 'h' header, 's' stanza, 'w' whitespace, 'c' close */
};

#define MAX_PIECES 16
struct session {
    const char *header_log; /* the expected open line */
    struct piece p[MAX_PIECES];
};

#define HDR_LOG_C2S                                                                                \
    "open {http://etherx.jabber.org/streams}stream default=jabber:client {}to=example.com "        \
    "{}version=1.0 {http://www.w3.org/XML/1998/namespace}lang=en\n"

static const struct session sessions[] = {
    {HDR_LOG_C2S,
     {{C2S_HEADER, NULL, 'h'},
      {"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldAByMG0zMA=="
       "</auth>",
       NULL, 's'},
      {" ", NULL, 'w'},
      {"<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"
       "balcony</resource></bind></iq>",
       NULL, 's'},
      {"\n", NULL, 'w'},
      {"<message to='romeo@example.net' type='chat' xml:lang='zh'><body>你好，世界 &amp; "
       "&lt;tag&gt; \"q\" 'a'</body></message>",
       NULL, 's'},
      {"<presence/>", NULL, 's'},
      {"</stream:stream>", NULL, 'c'}}},
    {"open {http://etherx.jabber.org/streams}stream default=jabber:client {}from=example.com "
     "{}id=++TR84Sm6A3hnt3Q065SnAbbk3Y= {}version=1.0\n",
     {{"<stream:stream\n  xmlns=\"jabber:client\"\r\n  "
       "xmlns:stream=\"http://etherx.jabber.org/streams\" from=\"example.com\"\n"
       "  id=\"++TR84Sm6A3hnt3Q065SnAbbk3Y=\" version=\"1.0\">",
       NULL, 'h'},
      {"<stream:features><starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/>"
       "</starttls></stream:features>",
       "<features xmlns='http://etherx.jabber.org/streams'><starttls "
       "xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></features>",
       's'},
      {"\r\n\t \r\n", NULL, 'w'},
      {"<message from=\"juliet@example.com/balcony\" to=\"romeo@example.net\">"
       "<body>a\r\nb<![CDATA[<raw> & ]]>&#x4F60;&#22909;</body>"
       "<x xmlns:foo='urn:foo' foo:bar='baz'/></message>",
       "<message from='juliet@example.com/balcony' to='romeo@example.net'>"
       "<body>a\nb&lt;raw&gt; &amp; 你好</body>"
       "<x xmlns:ns0='urn:foo' ns0:bar='baz'/></message>",
       's'},
      {"<iq type='result' id='r2'><query xmlns='jabber:iq:roster' ver='v1'><item "
       "jid='nurse@example.com' subscription='both'><group>Friends</group></item></query></iq>",
       NULL, 's'},
      {" \n ", NULL, 'w'},
      {"</stream:stream>", NULL, 'c'}}},
    {"open {http://etherx.jabber.org/streams}stream default=jabber:server {}to=b.example "
     "{}from=a.example {}version=1.0\n",
     {{"<?xml version='1.0' encoding='utf-8'?>\n<stream:stream xmlns='jabber:server' "
       "xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' "
       "to='b.example' from='a.example' version='1.0'>",
       NULL, 'h'},
      {"<db:result from='a.example' to='b.example'>b4835385f37fe2895af6c196b59097b16862406db8"
       "0559900d96bf6fa7d23df3</db:result>",
       "<result xmlns='jabber:server:dialback' from='a.example' to='b.example'>"
       "b4835385f37fe2895af6c196b59097b16862406db80559900d96bf6fa7d23df3</result>",
       's'},
      {"<presence from='x@a.example/r' to='y@b.example'><show>away</show><status>Über "
       "🙂</status><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' "
       "ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>",
       NULL, 's'},
      {"</stream:stream>", NULL, 'c'}}},
};

struct expect {
    char *data;
    size_t len;
    size_t header_end;
    size_t stanza_end[MAX_PIECES];
    int nstanzas;
    size_t close_end;
    hearth_buf_t log;
};

static void expect_build(const struct session *ss, struct expect *e)
{
    hearth_buf_t in = HEARTH_BUF_INIT;
    memset(e, 0, sizeof(*e));
    assert_int_equal(hearth_buf_append_str(&e->log, ss->header_log), 0);
    for (int i = 0; i < MAX_PIECES && ss->p[i].in; i++) {
        const struct piece *pc = &ss->p[i];
        assert_int_equal(hearth_buf_append_str(&in, pc->in), 0);
        switch (pc->kind) {
        case 'h':
            e->header_end = in.len;
            break;
        case 's':
            e->stanza_end[e->nstanzas++] = in.len;
            assert_int_equal(hearth_buf_printf(&e->log, "stanza %s\n", pc->out ? pc->out : pc->in),
                             0);
            break;
        case 'c':
            e->close_end = in.len;
            assert_int_equal(hearth_buf_append_str(&e->log, "close\n"), 0);
            break;
        }
    }
    e->data = hearth_buf_steal(&in, &e->len);
}

/* The events seen after `fed` bytes are exactly those whose last byte is within them. */
static void assert_events_at(const struct expect *e, const struct rec *r, size_t fed)
{
    int want = 0;
    for (int i = 0; i < e->nstanzas; i++)
        if (e->stanza_end[i] <= fed)
            want++;
    assert_int_equal(r->errors, 0);
    assert_int_equal(r->opens, fed >= e->header_end);
    assert_int_equal(r->stanzas, want);
    assert_int_equal(r->closes, fed >= e->close_end);
}

static void test_stream_split_everywhere(void **state)
{
    for (size_t si = 0; si < sizeof(sessions) / sizeof(sessions[0]); si++) {
        struct expect e;
        expect_build(&sessions[si], &e);
        struct rec r;

        /* All at once. */
        rec_init(&r, NULL);
        assert_int_equal(hearth_xml_stream_feed(r.s, e.data, e.len), HEARTH_ECLOSED);
        assert_string_equal(log_of(&r), e.log.data);
        rec_done(&r);

        /* Two feeds, split at every byte boundary. */
        for (size_t k = 0; k <= e.len; k++) {
            rec_init(&r, NULL);
            int rc = hearth_xml_stream_feed(r.s, e.data, k);
            assert_int_equal(rc, k >= e.close_end ? HEARTH_ECLOSED : 0);
            assert_events_at(&e, &r, k);
            if (k < e.len)
                assert_int_equal(hearth_xml_stream_feed(r.s, e.data + k, e.len - k),
                                 HEARTH_ECLOSED);
            assert_events_at(&e, &r, e.len);
            assert_string_equal(log_of(&r), e.log.data);
            rec_done(&r);
        }

        /* One byte at a time. */
        rec_init(&r, NULL);
        for (size_t i = 0; i < e.len; i++) {
            int rc = hearth_xml_stream_feed(r.s, e.data + i, 1);
            assert_int_equal(rc, i + 1 >= e.close_end ? HEARTH_ECLOSED : 0);
            assert_events_at(&e, &r, i + 1);
        }
        assert_string_equal(log_of(&r), e.log.data);
        rec_done(&r);

        free(e.data);
        hearth_buf_free(&e.log);
    }
}

/* ---- errors ------------------------------------------------------------------------------- */

struct bad_case {
    const char *in;
    hearth_stream_error_t cond;
    int stanzas_before; /* complete stanzas before the error */
};

static void check_bad(const struct bad_case *c, const hearth_xml_limits_t *limits, size_t step)
{
    struct rec r;
    rec_init(&r, limits);
    size_t len = strlen(c->in), off = 0;
    int rc = 0;
    while (off < len && rc == 0) {
        size_t n = len - off < step ? len - off : step;
        rc = hearth_xml_stream_feed(r.s, c->in + off, n);
        off += n;
    }
    if (rc != HEARTH_ECLOSED || r.errors != 1 || r.err != c->cond)
        print_error("input: %s\nstep %zu: rc %d errors %d cond %s (%s)\n", c->in, step, rc,
                    r.errors, hearth_stream_error_name(r.err), r.errtext);
    assert_int_equal(rc, HEARTH_ECLOSED);
    assert_int_equal(r.errors, 1);
    assert_int_equal(r.err, c->cond);
    assert_int_equal(r.stanzas, c->stanzas_before);
    assert_int_equal(r.closes, 0);
    /* Nothing more after an error. */
    assert_int_equal(hearth_xml_stream_feed(r.s, "<a/>", 4), HEARTH_ECLOSED);
    assert_int_equal(r.errors, 1);
    rec_done(&r);
}

#define HDR                                                                                        \
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "        \
    "to='example.com' version='1.0'>"

static void test_stream_restricted_xml(void **state)
{
    static const struct bad_case cases[] = {
        {"<?xml version='1.0'?><!DOCTYPE stream:stream>" HDR, HEARTH_STREAM_ERR_RESTRICTED_XML, 0},
        {"<!DOCTYPE foo [<!ENTITY x 'lol'>]>" HDR, HEARTH_STREAM_ERR_RESTRICTED_XML, 0},
        {"<!ENTITY x 'lol'>" HDR, HEARTH_STREAM_ERR_NOT_WELL_FORMED, 0},
        {HDR "<message><!ENTITY x 'lol'></message>", HEARTH_STREAM_ERR_NOT_WELL_FORMED, 0},
        {HDR "<message/><!DOCTYPE x>", HEARTH_STREAM_ERR_NOT_WELL_FORMED, 1},
        {"<!-- hi -->" HDR, HEARTH_STREAM_ERR_RESTRICTED_XML, 0},
        {HDR "<presence/><!-- hi --><presence/>", HEARTH_STREAM_ERR_RESTRICTED_XML, 1},
        {HDR "<message><body>a<!-- hi -->b</body></message>", HEARTH_STREAM_ERR_RESTRICTED_XML, 0},
        {"<?foo?>" HDR, HEARTH_STREAM_ERR_RESTRICTED_XML, 0},
        {HDR "<message><?foo bar?></message>", HEARTH_STREAM_ERR_RESTRICTED_XML, 0},
        {HDR "<?foo?>", HEARTH_STREAM_ERR_RESTRICTED_XML, 0},
        {HDR "<message>&lol;</message>", HEARTH_STREAM_ERR_RESTRICTED_XML, 0},
        {"<?xml version='1.0' encoding='ISO-8859-1'?>" HDR, HEARTH_STREAM_ERR_UNSUPPORTED_ENCODING,
         0},
        {"<?xml version='1.0' encoding='UTF-16'?>" HDR, HEARTH_STREAM_ERR_UNSUPPORTED_ENCODING, 0},
        {HDR "<message><body>caf\xE9</body></message>", HEARTH_STREAM_ERR_NOT_WELL_FORMED, 0},
        {HDR "<message><body></message>", HEARTH_STREAM_ERR_NOT_WELL_FORMED, 0},
        {HDR "<presence/><message to='a' to='b'/>", HEARTH_STREAM_ERR_NOT_WELL_FORMED, 1},
        {HDR "<message to=a/>", HEARTH_STREAM_ERR_NOT_WELL_FORMED, 0},
        {HDR "<presence/></stream:foo>", HEARTH_STREAM_ERR_NOT_WELL_FORMED, 1},
        {" <?xml version='1.0'?>" HDR, HEARTH_STREAM_ERR_NOT_WELL_FORMED, 0},
        {HDR "<?xml version='1.0'?>", HEARTH_STREAM_ERR_NOT_WELL_FORMED, 0},
        {"<stream:stream xmlns='jabber:client'>", HEARTH_STREAM_ERR_BAD_NAMESPACE_PREFIX, 0},
        {HDR "<foo:message/>", HEARTH_STREAM_ERR_BAD_NAMESPACE_PREFIX, 0},
        {HDR "<message foo:to='a'/>", HEARTH_STREAM_ERR_BAD_NAMESPACE_PREFIX, 0},
        {HDR "hello", HEARTH_STREAM_ERR_BAD_FORMAT, 0},
        {HDR "<presence/>  x <presence/>", HEARTH_STREAM_ERR_BAD_FORMAT, 1},
        {HDR "<![CDATA[x]]>", HEARTH_STREAM_ERR_BAD_FORMAT, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        check_bad(&cases[i], NULL, SIZE_MAX);
        check_bad(&cases[i], NULL, 1);
        check_bad(&cases[i], NULL, 7);
    }
}

static void test_stream_limits(void **state)
{
    hearth_xml_limits_t lim = {1024, 512, 3, 4};
    char *big = malloc(16384);

    /* A single large text. */
    size_t n = (size_t)snprintf(big, 16384, HDR "<message><body>");
    memset(big + n, 'x', 2000);
    strcpy(big + n + 2000, "</body></message>");
    struct bad_case c = {big, HEARTH_STREAM_ERR_POLICY_VIOLATION, 0};
    check_bad(&c, &lim, SIZE_MAX);
    check_bad(&c, &lim, 100);
    check_bad(&c, &lim, 1);

    /* Just under the limit passes: the stanza is exactly 1024 bytes. */
    struct rec r;
    rec_init(&r, &lim);
    assert_int_equal(hearth_xml_stream_feed(r.s, HDR, strlen(HDR)), 0);
    n = (size_t)snprintf(big, 16384, "<message><body>");
    memset(big + n, 'y', 1024 - n - strlen("</body></message>"));
    strcpy(big + 1024 - strlen("</body></message>"), "</body></message>");
    assert_int_equal(strlen(big), 1024);
    assert_int_equal(hearth_xml_stream_feed(r.s, big, 1024), 0);
    assert_int_equal(r.stanzas, 1);
    /* Keepalives between stanzas do not count towards the next one. */
    for (int i = 0; i < 30; i++)
        assert_int_equal(hearth_xml_stream_feed(r.s, " \n \n \n \n \n \n \n \n \n \n", 20), 0);
    assert_int_equal(hearth_xml_stream_feed(r.s, big, 1024), 0);
    assert_int_equal(r.stanzas, 2);
    /* The count is on raw bytes whatever the feeds: exactly 1024 passes one byte at a time... */
    for (size_t i = 0; i < 1024; i++)
        assert_int_equal(hearth_xml_stream_feed(r.s, big + i, 1), 0);
    assert_int_equal(r.stanzas, 3);
    assert_int_equal(r.errors, 0);
    /* ...and one byte more (an escaped '&' in the text) does not. */
    big[20] = '&';
    memmove(big + 21, "amp;", 4);
    memmove(big + 25, big + 24, 1024 - 24 + 1);
    assert_int_equal(strlen(big), 1025);
    int rc = 0;
    for (size_t i = 0; i < 1025 && rc == 0; i++)
        rc = hearth_xml_stream_feed(r.s, big + i, 1);
    assert_int_equal(rc, HEARTH_ECLOSED);
    assert_int_equal(r.stanzas, 3);
    assert_int_equal(r.err, HEARTH_STREAM_ERR_POLICY_VIOLATION);
    assert_string_equal(r.errtext, "stanza too large");
    rec_done(&r);

    /* An unfinished start tag, fed in pieces: expat reports nothing, the raw count catches it
     * on the very feed that crosses the limit. */
    rec_init(&r, &lim);
    assert_int_equal(hearth_xml_stream_feed(r.s, HDR "<presence/>", strlen(HDR) + 11), 0);
    assert_int_equal(hearth_xml_stream_feed(r.s, "<message to='", 13), 0);
    size_t total = 13;
    memset(big, 'a', 100);
    rc = 0;
    while (rc == 0) {
        rc = hearth_xml_stream_feed(r.s, big, 100);
        total += 100;
        if (rc == 0)
            assert_true(total <= 1024);
        assert_true(total < 1024 + 100 + 1);
    }
    assert_int_equal(rc, HEARTH_ECLOSED);
    assert_int_equal(r.errors, 1);
    assert_int_equal(r.err, HEARTH_STREAM_ERR_POLICY_VIOLATION);
    assert_string_equal(r.errtext, "stanza too large");
    rec_done(&r);

    /* With the default 256 KiB stanza limit, one tag that produces no parser callback is still
     * cut at 32 KiB: expat rescans it at every feed, so it must not grow to the stanza limit. */
    rec_init(&r, NULL);
    assert_int_equal(hearth_xml_stream_feed(r.s, HDR "<presence/>", strlen(HDR) + 11), 0);
    assert_int_equal(hearth_xml_stream_feed(r.s, "<message to='", 13), 0);
    memset(big, 'a', 1000);
    rc = 0;
    total = 13;
    while (rc == 0 && total < 100000) {
        rc = hearth_xml_stream_feed(r.s, big, 1000);
        total += 1000;
    }
    assert_int_equal(rc, HEARTH_ECLOSED);
    assert_true(total <= 2 * 16384 + 1000 + 13);
    assert_int_equal(r.err, HEARTH_STREAM_ERR_POLICY_VIOLATION);
    assert_string_equal(r.errtext, "a single tag or token is too large");
    rec_done(&r);
    /* A long text is not a single token: 100 KiB of body in 1000-byte feeds passes. */
    rec_init(&r, NULL);
    assert_int_equal(hearth_xml_stream_feed(r.s, HDR "<message><body>", strlen(HDR) + 15), 0);
    memset(big, 't', 1000);
    for (int i = 0; i < 100; i++)
        assert_int_equal(hearth_xml_stream_feed(r.s, big, 1000), 0);
    assert_int_equal(hearth_xml_stream_feed(r.s, "</body></message>", 17), 0);
    assert_int_equal(r.stanzas, 1);
    assert_int_equal(r.errors, 0);
    rec_done(&r);

    /* The same in one big feed. */
    n = (size_t)snprintf(big, 16384, HDR "<message to='");
    memset(big + n, 'b', 8000 - n);
    big[8000] = '\0';
    c = (struct bad_case){big, HEARTH_STREAM_ERR_POLICY_VIOLATION, 0};
    check_bad(&c, &lim, SIZE_MAX);
    check_bad(&c, &lim, 333);

    /* Header too large, complete or not. */
    n = (size_t)snprintf(big, 16384,
                         "<stream:stream xmlns='jabber:client' "
                         "xmlns:stream='http://etherx.jabber.org/streams' to='");
    memset(big + n, 'h', 600);
    strcpy(big + n + 600, "'>");
    c = (struct bad_case){big, HEARTH_STREAM_ERR_POLICY_VIOLATION, 0};
    check_bad(&c, &lim, SIZE_MAX);
    check_bad(&c, &lim, 50);
    big[n + 600] = '\0';
    check_bad(&c, &lim, SIZE_MAX);
    check_bad(&c, &lim, 50);
    hearth_xml_limits_t deflim = HEARTH_XML_LIMITS_DEFAULT;
    n = (size_t)snprintf(big, 16384,
                         "<stream:stream xmlns='jabber:client' "
                         "xmlns:stream='http://etherx.jabber.org/streams' to='");
    memset(big + n, 'h', 8200);
    big[n + 8200] = '\0';
    check_bad(&c, &deflim, 1000);

    /* Depth: three levels below the root pass, four do not. */
    rec_init(&r, &lim);
    const char *ok = HDR "<a><b><c/></b></a>";
    assert_int_equal(hearth_xml_stream_feed(r.s, ok, strlen(ok)), 0);
    assert_int_equal(r.stanzas, 1);
    rec_done(&r);
    c = (struct bad_case){HDR "<a/><a><b><c><d/></c></b></a>", HEARTH_STREAM_ERR_POLICY_VIOLATION,
                          1};
    check_bad(&c, &lim, SIZE_MAX);
    check_bad(&c, &lim, 1);

    /* Attributes (namespace declarations count): four pass, five do not. */
    rec_init(&r, &lim);
    ok = HDR "<a x='1' y='2' z='3' w='4'/><b xmlns='u' x='1' y='2' z='3'/>";
    assert_int_equal(hearth_xml_stream_feed(r.s, ok, strlen(ok)), 0);
    assert_int_equal(r.stanzas, 2);
    assert_int_equal(r.errors, 0);
    rec_done(&r);
    c = (struct bad_case){HDR "<a x='1' y='2' z='3' w='4' v='5'/>",
                          HEARTH_STREAM_ERR_POLICY_VIOLATION, 0};
    check_bad(&c, &lim, SIZE_MAX);
    c = (struct bad_case){HDR "<a xmlns='q' y='2' z='3' w='4' v='5'/>",
                          HEARTH_STREAM_ERR_POLICY_VIOLATION, 0};
    check_bad(&c, &lim, 1);
    c = (struct bad_case){HDR "<a><b x='1' y='2' z='3' w='4' v='5'/></a>",
                          HEARTH_STREAM_ERR_POLICY_VIOLATION, 0};
    check_bad(&c, &lim, SIZE_MAX);
    /* The header's own attributes count too (it has 4 with its declarations). */
    c = (struct bad_case){HDR, HEARTH_STREAM_ERR_POLICY_VIOLATION, 0};
    hearth_xml_limits_t lim2 = {1024, 512, 3, 3};
    check_bad(&c, &lim2, SIZE_MAX);

    /* Limits change at run time (larger stanzas after authentication). */
    rec_init(&r, &lim);
    assert_int_equal(hearth_xml_stream_feed(r.s, HDR, strlen(HDR)), 0);
    hearth_xml_stream_set_limits(r.s, NULL);
    n = (size_t)snprintf(big, 16384, "<message><body>");
    memset(big + n, 'z', 4000);
    strcpy(big + n + 4000, "</body></message>");
    assert_int_equal(hearth_xml_stream_feed(r.s, big, strlen(big)), 0);
    assert_int_equal(r.stanzas, 1);
    assert_int_equal(r.errors, 0);
    rec_done(&r);

    free(big);
}

/* ---- stop and reset ----------------------------------------------------------------------- */

static void test_stream_stop_reset(void **state)
{
    struct rec r;
    rec_init(&r, NULL);
    r.stop_at_stanza = 1;
    const char *in = HDR "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
                         "<message><body>pipelined</body></message><presence/>";
    assert_int_equal(hearth_xml_stream_feed(r.s, in, strlen(in)), HEARTH_ECLOSED);
    assert_int_equal(r.reset_rc, HEARTH_EINVAL); /* not from inside a callback */
    assert_int_equal(r.opens, 1);
    assert_int_equal(r.stanzas, 1);
    assert_int_equal(r.errors, 0);
    assert_int_equal(hearth_xml_stream_feed(r.s, "<presence/>", 11), HEARTH_ECLOSED);
    assert_int_equal(r.stanzas, 1);

    /* Stream restart: a fresh header, a different default namespace even. */
    assert_int_equal(hearth_xml_stream_reset(r.s), 0);
    r.stop_at_stanza = 0;
    const char *in2 = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' "
                      "xmlns:stream='http://etherx.jabber.org/streams' to='b'>"
                      "<presence/></stream:stream>";
    assert_int_equal(hearth_xml_stream_feed(r.s, in2, strlen(in2)), HEARTH_ECLOSED);
    assert_int_equal(r.opens, 2);
    assert_int_equal(r.stanzas, 2);
    assert_int_equal(r.closes, 1);
    assert_string_equal(r.default_ns, "jabber:server");

    /* Reset after an error and after a close works the same. */
    assert_int_equal(hearth_xml_stream_reset(r.s), 0);
    assert_int_equal(hearth_xml_stream_feed(r.s, "<!-- x -->", 10), HEARTH_ECLOSED);
    assert_int_equal(r.errors, 1);
    assert_int_equal(hearth_xml_stream_reset(r.s), 0);
    assert_int_equal(hearth_xml_stream_feed(r.s, HDR "<a/>", strlen(HDR) + 4), 0);
    assert_int_equal(r.opens, 3);
    assert_int_equal(r.stanzas, 3);
    /* Reset in the middle of a stanza drops it. */
    assert_int_equal(hearth_xml_stream_feed(r.s, "<message><body>half", 19), 0);
    assert_int_equal(hearth_xml_stream_reset(r.s), 0);
    assert_int_equal(hearth_xml_stream_feed(r.s, HDR "<b/>", strlen(HDR) + 4), 0);
    assert_int_equal(r.opens, 4);
    assert_int_equal(r.stanzas, 4);
    assert_int_equal(r.errors, 1);

    /* stop() outside a callback: the next feed is refused. */
    hearth_xml_stream_stop(r.s);
    assert_int_equal(hearth_xml_stream_feed(r.s, "<c/>", 4), HEARTH_ECLOSED);
    assert_int_equal(r.stanzas, 4);
    rec_done(&r);

    /* stop() inside the stanza callback when the rest arrives one byte at a time. */
    rec_init(&r, NULL);
    r.stop_at_stanza = 2;
    in = HDR "<a/><b/><c/><d/>";
    int rc = 0;
    for (size_t i = 0; i < strlen(in) && rc == 0; i++)
        rc = hearth_xml_stream_feed(r.s, in + i, 1);
    assert_int_equal(rc, HEARTH_ECLOSED);
    assert_int_equal(r.stanzas, 2);
    rec_done(&r);

    /* No callbacks at all is fine. */
    hearth_xml_stream_t *s = hearth_xml_stream_new(NULL, NULL, NULL);
    assert_non_null(s);
    assert_int_equal(hearth_xml_stream_feed(s, HDR "<a/>", strlen(HDR) + 4), 0);
    assert_int_equal(hearth_xml_stream_feed(s, "</stream:stream>", 16), HEARTH_ECLOSED);
    hearth_xml_stream_free(s);
}

/* The input position that RFC 7395 framing relies on to find where each element ends. */
struct pos_rec {
    hearth_xml_stream_t *s;
    int stanzas;
    uint64_t done_at[4];
};

static void pos_stanza(void *ud, hearth_xml_node_t *stanza, hearth_arena_t *arena)
{
    struct pos_rec *r = ud;
    if (r->stanzas < 4)
        r->done_at[r->stanzas] = hearth_xml_stream_position(r->s).done;
    r->stanzas++;
}

static void test_stream_position(void **state)
{
    const hearth_xml_stream_cbs_t cbs = {.stanza = pos_stanza};
    struct pos_rec r = {0};
    r.s = hearth_xml_stream_new(&cbs, &r, NULL);
    assert_non_null(r.s);
    hearth_xml_position_t p = hearth_xml_stream_position(r.s);
    assert_true(p.fed == 0 && p.done == 0);

    const uint64_t h = strlen(HDR);
    assert_int_equal(hearth_xml_stream_feed(r.s, HDR, h), 0);
    p = hearth_xml_stream_position(r.s);
    assert_true(p.fed == h && p.done == h);

    /* Two children in one feed: inside each callback, done is the end of that child. */
    assert_int_equal(hearth_xml_stream_feed(r.s, "<a/><b>x</b>", 12), 0);
    assert_int_equal(r.stanzas, 2);
    assert_true(r.done_at[0] == h + 4 && r.done_at[1] == h + 12);
    p = hearth_xml_stream_position(r.s);
    assert_true(p.fed == h + 12 && p.done == h + 12);

    /* An open child, then an unfinished start tag expat keeps to itself: both unfinished. */
    assert_int_equal(hearth_xml_stream_feed(r.s, "<c><d/>", 7), 0);
    p = hearth_xml_stream_position(r.s);
    assert_true(p.fed == h + 19 && p.done == h + 12);
    assert_int_equal(hearth_xml_stream_feed(r.s, "</c>", 4), 0);
    p = hearth_xml_stream_position(r.s);
    assert_true(p.fed == h + 23 && p.done == h + 23);
    assert_int_equal(hearth_xml_stream_feed(r.s, "<e", 2), 0);
    p = hearth_xml_stream_position(r.s);
    assert_true(p.fed == h + 25 && p.done == h + 23);
    assert_int_equal(r.stanzas, 3);

    /* A reset starts counting again. */
    assert_int_equal(hearth_xml_stream_reset(r.s), 0);
    p = hearth_xml_stream_position(r.s);
    assert_true(p.fed == 0 && p.done == 0);
    hearth_xml_stream_free(r.s);
}

/* Between stanzas an idle stream gives its expat parser back (trim) and makes a fresh one on the
 * next feed: prefixes declared on the root still resolve, positions and the stanza limit still
 * count from the stream's start, an unfinished tag keeps its parser, and what the stream holds
 * while idle is small. */
#define IDLE_HDR                                                                                   \
    "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "        \
    "xmlns:x='urn:example:x' to='example.com' version='1.0'>"
static const char *const idle_stanzas[] = {
    "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource>"
    "</bind></iq>",
    "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>"
    "<priority>1</priority><status>here</status><show>chat</show></presence>",
    "<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>",
    "<message to='a@example.com' type='chat' id='m1'><body>hi</body><active "
    "xmlns='http://jabber.org/protocol/chatstates'/><x:thing x:attr='1'/></message>",
    "<iq type='get' id='r1'><query xmlns='jabber:iq:roster' ver='1'/></iq>",
};

static void test_stream_idle_releases_parser(void **state)
{
    struct rec r;
    rec_init(&r, NULL);
    assert_int_equal(hearth_xml_stream_trim(r.s), 0); /* no header yet */
    assert_int_equal(hearth_xml_stream_feed(r.s, IDLE_HDR, strlen(IDLE_HDR)), 0);
    uint64_t fed = strlen(IDLE_HDR);
    for (size_t i = 0; i < sizeof(idle_stanzas) / sizeof(idle_stanzas[0]); i++) {
        assert_int_equal(hearth_xml_stream_trim(r.s), 1);
        assert_int_equal(hearth_xml_stream_trim(r.s), 0); /* nothing left to give */
        assert_int_equal(hearth_xml_stream_feed(r.s, idle_stanzas[i], strlen(idle_stanzas[i])), 0);
        fed += strlen(idle_stanzas[i]);
        hearth_xml_position_t p = hearth_xml_stream_position(r.s);
        assert_true(p.fed == fed && p.done == fed);
    }
    /* The root's prefix, in a stanza split over three feeds after an idle stretch. */
    assert_int_equal(hearth_xml_stream_trim(r.s), 1);
    assert_int_equal(hearth_xml_stream_feed(r.s, "<x:y", 4), 0);
    assert_int_equal(hearth_xml_stream_trim(r.s), 0); /* expat holds "<x:y" */
    assert_int_equal(hearth_xml_stream_feed(r.s, " a='1'><x:z", 11), 0);
    assert_int_equal(hearth_xml_stream_trim(r.s), 0); /* inside a stanza */
    assert_int_equal(hearth_xml_stream_feed(r.s, "/></x:y>", 8), 0);
    assert_int_equal(hearth_xml_stream_trim(r.s), 1);
    assert_int_equal(hearth_xml_stream_feed(r.s, " \n", 2), 0); /* a keepalive */
    assert_int_equal(hearth_xml_stream_trim(r.s), 1);
    assert_int_equal(hearth_xml_stream_feed(r.s, "<x:w/>", 6), 0);
    assert_int_equal(r.errors, 0);
    assert_int_equal(r.stanzas, 7);
    assert_non_null(strstr(log_of(&r), "stanza <w xmlns='urn:example:x'/>\n"));
    assert_non_null(strstr(log_of(&r), "stanza <y xmlns='urn:example:x' a='1'><z/></y>\n"));
    assert_non_null(strstr(log_of(&r), "<thing xmlns='urn:example:x' xmlns:ns0='urn:example:x' "
                                       "ns0:attr='1'/>"));
    rec_done(&r);

    /* The stanza limit counts from where the stanza starts, not from the fresh parser's start. */
    hearth_xml_limits_t lim = HEARTH_XML_LIMITS_DEFAULT;
    lim.max_stanza_bytes = 64;
    rec_init(&r, &lim);
    assert_int_equal(hearth_xml_stream_feed(r.s, IDLE_HDR, strlen(IDLE_HDR)), 0);
    const char *fits = "<message><body>0123456789012345678901234567890</body></message>";
    assert_true(strlen(fits) <= 64);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(hearth_xml_stream_feed(r.s, fits, strlen(fits)), 0);
        assert_int_equal(hearth_xml_stream_trim(r.s), 1);
    }
    assert_int_equal(r.errors, 0);
    const char *big = "<message><body>01234567890123456789012345678901234567890123456789</body>";
    assert_int_equal(hearth_xml_stream_feed(r.s, big, strlen(big)), HEARTH_ECLOSED);
    assert_int_equal(r.errors, 1);
    assert_int_equal(r.err, HEARTH_STREAM_ERR_POLICY_VIOLATION);
    rec_done(&r);

    /* The restart after SASL: the new stream's own header is the one a fresh parser is primed
     * with (a prefix of the old header is unbound). */
    rec_init(&r, NULL);
    assert_int_equal(hearth_xml_stream_feed(r.s, IDLE_HDR, strlen(IDLE_HDR)), 0);
    assert_int_equal(hearth_xml_stream_feed(r.s, "<a/>", 4), 0);
    assert_int_equal(hearth_xml_stream_trim(r.s), 1);
    assert_int_equal(hearth_xml_stream_reset(r.s), 0);
    assert_int_equal(hearth_xml_stream_feed(r.s, HDR, strlen(HDR)), 0);
    assert_int_equal(hearth_xml_stream_feed(r.s, "<b/>", 4), 0);
    assert_int_equal(hearth_xml_stream_trim(r.s), 1);
    assert_int_equal(hearth_xml_stream_feed(r.s, "<x:c/>", 6), HEARTH_ECLOSED);
    assert_int_equal(r.err, HEARTH_STREAM_ERR_BAD_NAMESPACE_PREFIX);
    rec_done(&r);

#ifndef __SANITIZE_ADDRESS__ /* ASan's allocator is not the one mallinfo2 describes */
    /* What idle streams hold, heap bytes each: expat's buffer, pools and name tables (about
     * 10 KB after these stanzas) are not among them. */
    enum { N = 64 };
    struct rec *rs = calloc(N, sizeof(*rs));
    assert_non_null(rs);
    size_t before = mallinfo2().uordblks;
    for (int k = 0; k < N; k++) {
        rec_init(&rs[k], NULL);
        assert_int_equal(hearth_xml_stream_feed(rs[k].s, IDLE_HDR, strlen(IDLE_HDR)), 0);
        for (size_t i = 0; i < sizeof(idle_stanzas) / sizeof(idle_stanzas[0]); i++)
            assert_int_equal(
                hearth_xml_stream_feed(rs[k].s, idle_stanzas[i], strlen(idle_stanzas[i])), 0);
        assert_int_equal(hearth_xml_stream_trim(rs[k].s), 1);
        hearth_buf_free(&rs[k].log); /* the test's own record, not the stream's */
    }
    size_t per_stream = (mallinfo2().uordblks - before) / N;
    print_message("idle stream: %zu heap bytes\n", per_stream);
    assert_true(per_stream < 2048);
    for (int k = 0; k < N; k++)
        rec_done(&rs[k]);
    free(rs);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arena),
        cmocka_unit_test(test_tree_build),
        cmocka_unit_test(test_serialize_escaping),
        cmocka_unit_test(test_parse_namespaces),
        cmocka_unit_test(test_stream_header_and_close),
        cmocka_unit_test(test_stream_split_everywhere),
        cmocka_unit_test(test_stream_restricted_xml),
        cmocka_unit_test(test_stream_limits),
        cmocka_unit_test(test_stream_stop_reset),
        cmocka_unit_test(test_stream_position),
        cmocka_unit_test(test_stream_idle_releases_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
