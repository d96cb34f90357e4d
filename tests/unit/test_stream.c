/* Unit tests for hearth_stream (lib/stream.c): both framings, both roles, exact bytes out, the
 * STARTTLS and restart steps with a server and a client stream wired to each other in memory,
 * limits, stream errors and the re-entrancy rules. No network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/crypto.h>

#include "hearth/stream.h"

#define DOMAIN "localhost"
#define NS_STREAMS "http://etherx.jabber.org/streams"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"

#define C_HEADER                                                                                   \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' "                \
    "xml:lang='en'>"
#define WS_OPEN "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
#define WS_CLOSE "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
#define STARTTLS "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define PROCEED "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"

/* ---- fixture: a generated certificate, a server context, a verifying client context ---- */

static struct {
    char dir[64], cert[128], key[128];
    hearth_tls_ctx_t *server, *client;
} fx;

static int group_setup(void **state)
{
    (void)state;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/hearth-stream-XXXXXX");
    if (!mkdtemp(fx.dir))
        return -1;
    snprintf(fx.cert, sizeof fx.cert, "%s/cert.pem", fx.dir);
    snprintf(fx.key, sizeof fx.key, "%s/key.pem", fx.dir);
    const char *const names[] = {DOMAIN};
    char *err = NULL;
    if (hearth_tls_generate_cert(fx.cert, fx.key, names, 1, &err) != 0 ||
        !(fx.server = hearth_tls_ctx_new_server(fx.cert, fx.key, &err)) ||
        !(fx.client = hearth_tls_ctx_new_client(fx.cert, &err))) {
        fprintf(stderr, "TLS fixture: %s\n", err ? err : "?");
        free(err);
        return -1;
    }
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    hearth_tls_ctx_free(fx.server);
    hearth_tls_ctx_free(fx.client);
    unlink(fx.cert);
    unlink(fx.key);
    rmdir(fx.dir);
    OPENSSL_thread_stop();
    return 0;
}

/* ---- a peer: one stream, everything it wrote, every event as a line of text ---- */

#define MAX_MSGS 64

typedef struct peer peer_t;
struct peer {
    hearth_stream_t *s;
    hearth_buf_t out;     /* every byte written */
    size_t taken;         /* of out, already handed to the other side */
    int taken_msgs;       /* of msgs, likewise */
    char *msgs[MAX_MSGS]; /* each write, for WebSocket framing */
    int writes;
    hearth_buf_t log; /* "open ...", "element ...", "close", "error ..." lines */
    int opens, elements, closes, errors, tls_dones;
    int err;                    /* of the error callback */
    hearth_stream_error_t cond; /* of the error callback */
    char to[64], from[64], id[64], version[16], default_ns[64];
    /* Test behaviour. */
    void (*on_open)(peer_t *p);
    void (*on_element)(peer_t *p, hearth_xml_node_t *el, hearth_arena_t *arena);
    int write_send_rc; /* what a send from inside write returned */
    int try_send_in_write;
    int feed_in_element_rc; /* what a feed from inside element returned */
    int free_at_element;    /* free the stream inside the n-th element callback */
    int free_at_open;       /* free it inside open */
    int free_at_error;      /* free it inside error */
    int authed;
    int no_starttls; /* the transport is secure (wss:): no STARTTLS offered */
};

static void copy_str(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "(none)");
}

static void p_write(void *ud, const char *data, size_t len)
{
    peer_t *p = ud;
    assert_true(len > 0);
    assert_int_equal(hearth_buf_append(&p->out, data, len), 0);
    if (p->writes < MAX_MSGS) {
        p->msgs[p->writes] = malloc(len + 1);
        assert_non_null(p->msgs[p->writes]);
        memcpy(p->msgs[p->writes], data, len);
        p->msgs[p->writes][len] = '\0';
    }
    p->writes++;
    if (p->try_send_in_write) {
        p->try_send_in_write = 0;
        p->write_send_rc = hearth_stream_send(p->s, "<x/>", 4);
    }
}

static void p_open(void *ud, const hearth_stream_header_t *h)
{
    peer_t *p = ud;
    p->opens++;
    copy_str(p->to, sizeof p->to, h->to);
    copy_str(p->from, sizeof p->from, h->from);
    copy_str(p->id, sizeof p->id, h->id);
    copy_str(p->version, sizeof p->version, h->version);
    copy_str(p->default_ns, sizeof p->default_ns, h->default_ns);
    assert_non_null(h->node);
    assert_int_equal(hearth_buf_printf(&p->log, "open to=%s\n", p->to), 0);
    if (p->free_at_open) {
        hearth_stream_free(p->s);
        p->s = NULL;
        return;
    }
    if (p->on_open)
        p->on_open(p);
}

static void p_element(void *ud, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    peer_t *p = ud;
    p->elements++;
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_xml_serialize(el, "", &b), 0);
    assert_int_equal(hearth_buf_printf(&p->log, "element %s\n", b.data), 0);
    hearth_buf_free(&b);
    p->feed_in_element_rc = hearth_stream_feed(p->s, "<a/>", 4);
    if (p->free_at_element && p->elements == p->free_at_element) {
        hearth_stream_free(p->s);
        p->s = NULL;
        return;
    }
    if (p->on_element)
        p->on_element(p, el, arena);
}

static void p_close(void *ud)
{
    peer_t *p = ud;
    p->closes++;
    assert_int_equal(hearth_buf_append_str(&p->log, "close\n"), 0);
}

static void p_error(void *ud, int err, hearth_stream_error_t cond, const char *text)
{
    peer_t *p = ud;
    p->errors++;
    p->err = err;
    p->cond = cond;
    assert_int_equal(hearth_buf_printf(&p->log, "error %s %s\n", hearth_err_name(err),
                                       cond ? hearth_stream_error_name(cond) : "-"),
                     0);
    if (p->free_at_error) {
        hearth_stream_free(p->s);
        p->s = NULL;
    }
}

static void p_tls_done(void *ud)
{
    peer_t *p = ud;
    p->tls_dones++;
    assert_true(hearth_stream_secure(p->s));
}

static const hearth_stream_cbs_t p_cbs = {p_write, p_open, p_element, p_close, p_error, p_tls_done};

static void peer_init_cfg(peer_t *p, const hearth_stream_config_t *cfg)
{
    memset(p, 0, sizeof(*p));
    p->out = (hearth_buf_t)HEARTH_BUF_INIT;
    p->log = (hearth_buf_t)HEARTH_BUF_INIT;
    p->s = hearth_stream_new(cfg, &p_cbs, p);
    assert_non_null(p->s);
}

static void peer_init(peer_t *p, hearth_stream_role_t role, hearth_stream_framing_t framing)
{
    hearth_stream_config_t cfg = {.role = role, .framing = framing, .domain = DOMAIN};
    peer_init_cfg(p, &cfg);
}

static void peer_free(peer_t *p)
{
    hearth_stream_free(p->s);
    hearth_buf_free(&p->out);
    hearth_buf_free(&p->log);
    for (int i = 0; i < p->writes && i < MAX_MSGS; i++)
        free(p->msgs[i]);
}

static const char *out_of(peer_t *p)
{
    return p->out.data ? p->out.data : "";
}

static const char *log_of(peer_t *p)
{
    return p->log.data ? p->log.data : "";
}

static int feed_str(peer_t *p, const char *s)
{
    return hearth_stream_feed(p->s, s, strlen(s));
}

static void clear_out(peer_t *p)
{
    hearth_buf_reset(&p->out);
    p->taken = 0;
}

/* The server's header as it must be, with the id the stream chose. */
static char *server_header(peer_t *p)
{
    const char *id = hearth_stream_id(p->s);
    assert_non_null(id);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    char *h = NULL;
    assert_true(asprintf(&h,
                         "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                         "xmlns:stream='http://etherx.jabber.org/streams' id='%s' "
                         "from='localhost' version='1.0' xml:lang='en'>",
                         id) > 0);
    return h;
}

static char *error_bytes(const char *cond, const char *text)
{
    char *e = NULL;
    if (text)
        assert_true(asprintf(&e,
                             "<stream:error><%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                             "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>%s</text>"
                             "</stream:error></stream:stream>",
                             cond, text) > 0);
    else
        assert_true(asprintf(&e,
                             "<stream:error><%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                             "</stream:error></stream:stream>",
                             cond) > 0);
    return e;
}

/* ---- server role, TCP ---- */

static void send_starttls_features(peer_t *p)
{
    static const char f[] =
        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>";
    assert_int_equal(hearth_stream_send_features(p->s, f, sizeof(f) - 1), 0);
}

static void test_server_header(void **state)
{
    peer_t p;
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    assert_null(hearth_stream_id(p.s));
    assert_int_equal(hearth_stream_start(p.s), 0); /* nothing to do for a server */
    assert_int_equal(p.out.len, 0);
    p.on_open = send_starttls_features;
    assert_int_equal(feed_str(&p, C_HEADER), 0);
    assert_int_equal(p.opens, 1);
    assert_string_equal(p.to, "localhost");
    assert_string_equal(p.version, "1.0");
    assert_string_equal(p.default_ns, "jabber:client");
    assert_string_equal(p.from, "(none)");
    /* The header went out before the features sent from open. */
    char *h = server_header(&p);
    char *want = NULL;
    assert_true(asprintf(&want,
                         "%s<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
                         "<required/></starttls></stream:features>",
                         h) > 0);
    assert_string_equal(out_of(&p), want);
    free(want);
    free(h);

    /* A node is serialised in the content namespace: no xmlns on a stanza. */
    clear_out(&p);
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *iq = hearth_xml_new(a, "iq", "jabber:client");
    assert_int_equal(hearth_xml_set_attr(a, iq, "type", "result"), 0);
    hearth_xml_add_child(a, iq, "bind", NS_BIND);
    assert_int_equal(hearth_stream_send_node(p.s, iq), 0);
    assert_string_equal(out_of(&p),
                        "<iq type='result'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    assert_string_equal(hearth_stream_context_ns(p.s), "jabber:client");
    hearth_arena_free(a);
    assert_int_equal(p.errors, 0);
    peer_free(&p);

    /* When open sends nothing the server answers all the same; set_domain changes 'from' until
     * the header is out. */
    hearth_stream_config_t cfg = {.role = HEARTH_STREAM_SERVER, .domain = "other.example"};
    peer_init_cfg(&p, &cfg);
    assert_int_equal(hearth_stream_set_domain(p.s, DOMAIN), 0);
    assert_int_equal(feed_str(&p, C_HEADER), 0);
    h = server_header(&p);
    assert_string_equal(out_of(&p), h);
    free(h);
    assert_int_equal(hearth_stream_set_domain(p.s, "late.example"), HEARTH_EINVAL);
    peer_free(&p);
}

struct header_case {
    const char *input;
    const char *cond; /* NULL: accepted */
    int err;
};

static void test_server_header_checks(void **state)
{
    static const struct header_case cases[] = {
        /* the stream namespace */
        {"<stream:stream xmlns='jabber:client' xmlns:stream='http://wrong' to='localhost' "
         "version='1.0'>",
         "invalid-namespace", HEARTH_EXML},
        /* the root's name */
        {"<stream:foo xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
         "version='1.0'>",
         "invalid-namespace", HEARTH_EXML},
        /* the content namespace */
        {"<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
         "version='1.0'>",
         "invalid-namespace", HEARTH_EXML},
        {"<stream:stream xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>",
         "invalid-namespace", HEARTH_EXML},
        /* the version */
        {"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
         "to='localhost'>",
         "unsupported-version", HEARTH_EXML},
        {"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
         "version='2.0'>",
         "unsupported-version", HEARTH_EXML},
        {"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
         "version='1.1'>",
         NULL, 0},
        /* no 'to': the caller decides (RFC 6120 §4.7.2) */
        {"<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
         "version='1.0'>",
         NULL, 0},
        /* not XML at all, before any header */
        {"hello <stream:stream>", "not-well-formed", HEARTH_EXML},
        {"<!DOCTYPE x><stream:stream>", "restricted-xml", HEARTH_EXML},
        {"<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream>", "unsupported-encoding",
         HEARTH_EXML},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const struct header_case *c = &cases[i];
        peer_t p;
        peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
        int rc = feed_str(&p, c->input);
        if (!hearth_stream_id(p.s))
            fail_msg("case %zu: no header sent; rc %d, log %s", i, rc, log_of(&p));
        char *h = server_header(&p);
        if (!c->cond) {
            assert_int_equal(rc, 0);
            assert_int_equal(p.opens, 1);
            assert_int_equal(p.errors, 0);
            assert_string_equal(out_of(&p), h);
            free(h);
            peer_free(&p);
            continue;
        }
        assert_int_equal(rc, c->err);
        assert_int_equal(p.opens, 0);
        assert_int_equal(p.errors, 1);
        assert_int_equal(p.err, c->err);
        assert_string_equal(hearth_stream_error_name(p.cond), c->cond);
        /* Our header first, then the error and the close. */
        assert_true(strncmp(out_of(&p), h, strlen(h)) == 0);
        char *e = NULL;
        assert_true(asprintf(&e, "<stream:error><%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>",
                             c->cond) > 0);
        assert_true(strncmp(out_of(&p) + strlen(h), e, strlen(e)) == 0);
        const char *tail = "</stream:error></stream:stream>";
        assert_string_equal(out_of(&p) + p.out.len - strlen(tail), tail);
        free(e);
        free(h);
        assert_true(hearth_stream_input_closed(p.s));
        assert_true(hearth_stream_output_closed(p.s));
        /* Over: later input is ignored, sends too. */
        size_t len = p.out.len;
        assert_int_equal(feed_str(&p, "<presence/>"), c->err);
        assert_int_equal(hearth_stream_send(p.s, "<presence/>", 11), HEARTH_ECLOSED);
        assert_int_equal(hearth_stream_close(p.s), HEARTH_ECLOSED);
        assert_int_equal(p.out.len, len);
        assert_int_equal(p.errors, 1);
        peer_free(&p);
    }
}

/* The caller's own check of 'to': an error from inside open. */
static void refuse_host(peer_t *p)
{
    assert_int_equal(
        hearth_stream_error(p->s, HEARTH_STREAM_ERR_HOST_UNKNOWN, "we do not serve <that>"), 0);
}

static void test_server_host_check_is_callers(void **state)
{
    peer_t p;
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    p.on_open = refuse_host;
    const char *in = "<stream:stream xmlns='jabber:client' "
                     "xmlns:stream='http://etherx.jabber.org/streams' to='example.org' "
                     "version='1.0'><message/>";
    assert_int_equal(feed_str(&p, in), HEARTH_ECLOSED);
    assert_string_equal(p.to, "example.org");
    assert_int_equal(p.elements, 0); /* nothing read after our error */
    assert_int_equal(p.errors, 0);   /* the caller's own error is not reported back */
    char *h = server_header(&p);
    char *e = error_bytes("host-unknown", "we do not serve &lt;that&gt;");
    char *want = NULL;
    assert_true(asprintf(&want, "%s%s", h, e) > 0);
    assert_string_equal(out_of(&p), want);
    free(want);
    free(e);
    free(h);
    peer_free(&p);
}

/* The event log of an input fed in the given pieces. */
static char *run_split(const char *in, size_t len, const size_t *cuts, size_t ncuts)
{
    peer_t p;
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    size_t off = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        int rc = hearth_stream_feed(p.s, in + off, end - off);
        assert_true(rc == 0 || (rc == HEARTH_ECLOSED && end == len));
        off = end;
    }
    char *log = hearth_buf_steal(&p.log, NULL);
    peer_free(&p);
    return log;
}

static void test_server_split_everywhere(void **state)
{
    const char *in =
        C_HEADER "<message to='a@localhost' type='chat'><body>caf\xc3\xa9 &amp; &lt;tea&gt;</body>"
                 "</message>\n <iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq>"
                 "<presence><status>a]]&gt;b</status></presence></stream:stream>";
    size_t len = strlen(in);
    char *whole = run_split(in, len, NULL, 0);
    assert_string_equal(whole,
                        "open to=localhost\n"
                        "element <message xmlns='jabber:client' to='a@localhost' type='chat'>"
                        "<body>caf\xc3\xa9 &amp; &lt;tea&gt;</body></message>\n"
                        "element <iq xmlns='jabber:client' type='get' id='1'>"
                        "<query xmlns='jabber:iq:roster'/></iq>\n"
                        "element <presence xmlns='jabber:client'><status>a]]&gt;b</status>"
                        "</presence>\n"
                        "close\n");
    /* Two pieces, cut at every byte. */
    for (size_t cut = 1; cut < len; cut++) {
        char *log = run_split(in, len, &cut, 1);
        assert_string_equal(log, whole);
        free(log);
    }
    /* One byte at a time. */
    size_t *cuts = malloc(len * sizeof(*cuts));
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    char *log = run_split(in, len, cuts, len - 1);
    assert_string_equal(log, whole);
    free(log);
    free(cuts);
    free(whole);
}

/* ---- the STARTTLS step ---- */

static void answer_starttls(peer_t *p, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    if (strcmp(el->name, "starttls") != 0)
        return;
    assert_int_equal(hearth_stream_send(p->s, PROCEED, strlen(PROCEED)), 0);
    assert_int_equal(hearth_stream_starttls(p->s, fx.server), 0);
}

static void test_starttls_pipelined_discarded(void **state)
{
    /* The caller takes the step later: everything after <starttls/> is dropped meanwhile. */
    peer_t p;
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    const char *in = C_HEADER STARTTLS "<message to='victim@localhost'><body>injected</body>"
                                       "</message><auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                       "mechanism='PLAIN'>AGEAYg==</auth>";
    assert_int_equal(feed_str(&p, in), 0);
    assert_int_equal(p.elements, 1);
    assert_non_null(strstr(log_of(&p), "element <starttls"));
    assert_null(strstr(log_of(&p), "injected"));
    assert_int_equal(feed_str(&p, "<presence/>"), 0); /* later plaintext too */
    assert_int_equal(p.elements, 1);
    assert_int_equal(p.errors, 0);
    assert_null(hearth_stream_tls(p.s));
    /* The step: from now on input is TLS, whatever was pipelined is gone. */
    clear_out(&p);
    assert_int_equal(hearth_stream_send(p.s, PROCEED, strlen(PROCEED)), 0);
    assert_int_equal(hearth_stream_starttls(p.s, fx.server), 0);
    assert_non_null(hearth_stream_tls(p.s));
    assert_string_equal(out_of(&p), PROCEED);
    assert_int_equal(hearth_stream_starttls(p.s, fx.server), HEARTH_EINVAL); /* once */
    /* Plaintext now is not a TLS record: a TLS failure, nothing written in clear. */
    clear_out(&p);
    assert_int_equal(feed_str(&p, "<presence/>"), HEARTH_ETLS);
    assert_int_equal(p.errors, 1);
    assert_int_equal(p.err, HEARTH_ETLS);
    assert_int_equal(p.cond, HEARTH_STREAM_ERR_NONE);
    assert_null(strstr(out_of(&p), "<stream:error"));
    assert_true(hearth_stream_output_closed(p.s));
    assert_int_equal(hearth_stream_send(p.s, "<a/>", 4), HEARTH_ECLOSED);
    peer_free(&p);

    /* The step taken from inside the element callback: the pipelined plaintext is not fed to
     * TLS either (it would fail the handshake). */
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    p.on_element = answer_starttls;
    assert_int_equal(feed_str(&p, in), 0);
    assert_int_equal(p.elements, 1);
    assert_int_equal(p.errors, 0);
    assert_non_null(hearth_stream_tls(p.s));
    assert_false(hearth_stream_secure(p.s));
    peer_free(&p);
}

/* ---- a server and a client stream wired to each other ---- */

static void take(peer_t *from, peer_t *to, int *rc)
{
    if (hearth_stream_framing(from->s ? from->s : to->s) == HEARTH_STREAM_WEBSOCKET) {
        /* One feed per message, as a WebSocket transport delivers them. */
        assert_true(from->writes <= MAX_MSGS);
        for (; from->taken_msgs < from->writes; from->taken_msgs++) {
            if (!to->s)
                continue;
            int r = feed_str(to, from->msgs[from->taken_msgs]);
            if (r && !*rc)
                *rc = r;
        }
        from->taken = from->out.len;
        return;
    }
    size_t n = from->out.len - from->taken;
    if (n == 0 || !to->s) {
        from->taken = from->out.len;
        return;
    }
    char *copy = malloc(n);
    memcpy(copy, from->out.data + from->taken, n);
    from->taken = from->out.len;
    int r = hearth_stream_feed(to->s, copy, n);
    if (r && !*rc)
        *rc = r;
    free(copy);
}

/* Until neither side has anything left to say; the first feed result that was not 0. */
static void pump(peer_t *c, peer_t *s, int *crc, int *src)
{
    int c_rc = 0, s_rc = 0;
    for (int i = 0; i < 1000; i++) {
        if (c->out.len == c->taken && s->out.len == s->taken)
            break;
        take(c, s, &s_rc);
        take(s, c, &c_rc);
    }
    if (getenv("PUMP_DEBUG"))
        fprintf(stderr, "client log:\n%s\nserver log:\n%s\n", log_of(c), log_of(s));
    if (crc)
        *crc = c_rc;
    else
        assert_int_equal(c_rc, 0);
    if (src)
        *src = s_rc;
    else
        assert_int_equal(s_rc, 0);
}

/* A small c2s: STARTTLS, then SASL (any <auth/> succeeds), then bind. */
static void server_open(peer_t *p)
{
    const char *f;
    if (!hearth_stream_secure(p->s) && !p->no_starttls)
        f = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>";
    else if (!p->authed)
        f = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
            "</mechanisms>";
    else
        f = "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>";
    assert_int_equal(hearth_stream_send_features(p->s, f, strlen(f)), 0);
}

static void server_element(peer_t *p, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    if (!strcmp(el->name, "starttls")) {
        answer_starttls(p, el, arena);
    } else if (!strcmp(el->name, "auth")) {
        static const char ok[] = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
        assert_int_equal(hearth_stream_send(p->s, ok, sizeof(ok) - 1), 0);
        p->authed = 1;
        hearth_stream_set_max_stanza(p->s, 65536);
        assert_int_equal(hearth_stream_restart(p->s), 0);
    } else if (!strcmp(el->name, "iq")) {
        hearth_xml_node_t *r = hearth_xml_new(arena, "iq", "jabber:client");
        assert_int_equal(hearth_xml_set_attr(arena, r, "type", "result"), 0);
        assert_int_equal(hearth_xml_set_attr(arena, r, "id", hearth_xml_attr(el, "id")), 0);
        assert_int_equal(hearth_stream_send_node(p->s, r), 0);
    }
}

static void client_element(peer_t *p, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    if (!strcmp(el->name, "features")) {
        assert_string_equal(el->ns, NS_STREAMS);
        hearth_xml_node_t *f = hearth_xml_first_element(el);
        assert_non_null(f);
        const char *send = NULL;
        if (!strcmp(f->name, "starttls"))
            send = STARTTLS;
        else if (!strcmp(f->name, "mechanisms"))
            send = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                   "AGEAYg==</auth>";
        if (!strcmp(f->name, "bind")) {
            /* A stanza as a node: written with or without its xmlns as the framing needs. */
            hearth_xml_node_t *iq = hearth_xml_new(arena, "iq", "jabber:client");
            assert_int_equal(hearth_xml_set_attr(arena, iq, "type", "set"), 0);
            assert_int_equal(hearth_xml_set_attr(arena, iq, "id", "b1"), 0);
            assert_non_null(hearth_xml_add_child(arena, iq, "bind", NS_BIND));
            assert_int_equal(hearth_stream_send_node(p->s, iq), 0);
            return;
        }
        assert_non_null(send);
        assert_int_equal(hearth_stream_send(p->s, send, strlen(send)), 0);
    } else if (!strcmp(el->name, "proceed")) {
        assert_int_equal(hearth_stream_starttls(p->s, fx.client), 0);
    } else if (!strcmp(el->name, "success")) {
        p->authed = 1;
        assert_int_equal(hearth_stream_restart(p->s), 0);
    }
}

static void wired_pair(peer_t *c, peer_t *s, hearth_stream_framing_t framing, int direct_tls)
{
    hearth_stream_config_t ccfg = {.role = HEARTH_STREAM_CLIENT,
                                   .framing = framing,
                                   .domain = DOMAIN,
                                   .direct_tls = direct_tls ? fx.client : NULL};
    hearth_stream_config_t scfg = {.role = HEARTH_STREAM_SERVER,
                                   .framing = framing,
                                   .domain = DOMAIN,
                                   .direct_tls = direct_tls ? fx.server : NULL};
    hearth_xml_limits_t preauth = {.max_stanza_bytes = 4096};
    scfg.limits = &preauth;
    peer_init_cfg(c, &ccfg);
    peer_init_cfg(s, &scfg);
    c->on_element = client_element;
    s->on_open = server_open;
    s->on_element = server_element;
}

static void test_tls_and_sasl_wired(void **state)
{
    peer_t c, s;
    wired_pair(&c, &s, HEARTH_STREAM_TCP, 0);
    assert_int_equal(hearth_stream_start(c.s), 0);
    assert_string_equal(out_of(&c), C_HEADER);
    pump(&c, &s, NULL, NULL);

    /* Three streams on each side: plain, after STARTTLS, after SASL. */
    assert_int_equal(s.opens, 3);
    assert_int_equal(c.opens, 3);
    assert_int_equal(c.tls_dones, 1);
    assert_int_equal(s.tls_dones, 1);
    assert_int_equal(c.errors + s.errors, 0);
    assert_true(hearth_stream_secure(c.s) && hearth_stream_secure(s.s));
    assert_string_equal(hearth_tls_version(hearth_stream_tls(s.s)), "TLSv1.3");
    unsigned char cb1[32], cb2[32];
    assert_int_equal(hearth_tls_exporter(hearth_stream_tls(s.s), cb1), 0);
    assert_int_equal(hearth_tls_exporter(hearth_stream_tls(c.s), cb2), 0);
    assert_memory_equal(cb1, cb2, 32);
    /* The client sees the id of the server's current header. */
    assert_string_equal(hearth_stream_id(c.s), hearth_stream_id(s.s));
    assert_string_equal(c.id, hearth_stream_id(s.s));
    /* The bind went through and came back. */
    assert_non_null(strstr(log_of(&s), "element <iq xmlns='jabber:client' type='set' id='b1'>"));
    assert_non_null(
        strstr(log_of(&c), "element <iq xmlns='jabber:client' type='result' id='b1'/>"));
    /* Nothing readable on the wire after STARTTLS. */
    const char *proceed = strstr(out_of(&s), PROCEED);
    assert_non_null(proceed);
    assert_null(strstr(proceed + strlen(PROCEED), "stream"));

    /* The close handshake, client first. */
    assert_int_equal(hearth_stream_close(c.s), 0);
    assert_int_equal(hearth_stream_close(c.s), HEARTH_ECLOSED);
    int src;
    pump(&c, &s, NULL, &src);
    assert_int_equal(src, HEARTH_ECLOSED);
    assert_int_equal(s.closes, 1);
    assert_false(hearth_stream_output_closed(s.s));
    assert_int_equal(hearth_stream_close(s.s), 0);
    int crc;
    pump(&c, &s, &crc, NULL);
    assert_int_equal(crc, HEARTH_ECLOSED);
    assert_int_equal(c.closes, 1);
    assert_true(hearth_stream_input_closed(c.s) && hearth_stream_output_closed(c.s));
    assert_true(hearth_stream_input_closed(s.s) && hearth_stream_output_closed(s.s));
    /* close_notify after the close is not news. */
    hearth_stream_shutdown(c.s);
    pump(&c, &s, NULL, &src);
    assert_int_equal(src, HEARTH_ECLOSED);
    assert_int_equal(s.errors, 0);
    peer_free(&c);
    peer_free(&s);
}

static void test_direct_tls_wired(void **state)
{
    peer_t c, s;
    wired_pair(&c, &s, HEARTH_STREAM_TCP, 1);
    assert_non_null(hearth_stream_tls(s.s));
    assert_int_equal(hearth_stream_start(c.s), 0);
    assert_null(strstr(out_of(&c), "stream"));                 /* a ClientHello, not a header */
    assert_int_equal(hearth_stream_start(c.s), HEARTH_EINVAL); /* harmless */
    pump(&c, &s, NULL, NULL);
    /* STARTTLS is not offered on a secure stream: SASL, then bind. */
    assert_int_equal(s.opens, 2);
    assert_int_equal(c.opens, 2);
    assert_int_equal(c.tls_dones, 1);
    assert_string_equal(hearth_tls_alpn(hearth_stream_tls(s.s)), "xmpp-client");
    assert_non_null(
        strstr(log_of(&c), "element <iq xmlns='jabber:client' type='result' id='b1'/>"));
    assert_int_equal(hearth_stream_starttls(c.s, fx.client), HEARTH_EINVAL);

    /* A TLS close_notify without the stream's close: the server is told. */
    hearth_stream_shutdown(c.s);
    int src;
    pump(&c, &s, NULL, &src);
    assert_int_equal(src, HEARTH_ECLOSED);
    assert_int_equal(s.errors, 1);
    assert_int_equal(s.err, HEARTH_ECLOSED);
    assert_int_equal(s.cond, HEARTH_STREAM_ERR_NONE);
    assert_int_equal(s.closes, 0);
    peer_free(&c);
    peer_free(&s);
}

static void test_tls_failure(void **state)
{
    /* The client checks the certificate against its domain: a name the certificate does not
     * carry fails the handshake on both sides, and no stream error can be sent. */
    hearth_stream_config_t ccfg = {
        .role = HEARTH_STREAM_CLIENT, .domain = "wrong.example", .direct_tls = fx.client};
    hearth_stream_config_t scfg = {
        .role = HEARTH_STREAM_SERVER, .domain = DOMAIN, .direct_tls = fx.server};
    peer_t c, s;
    peer_init_cfg(&c, &ccfg);
    peer_init_cfg(&s, &scfg);
    assert_int_equal(hearth_stream_start(c.s), 0);
    int crc, src;
    pump(&c, &s, &crc, &src);
    assert_int_equal(crc, HEARTH_ETLS);
    assert_int_equal(c.errors, 1);
    assert_int_equal(c.err, HEARTH_ETLS);
    assert_int_equal(c.cond, HEARTH_STREAM_ERR_NONE);
    assert_non_null(strstr(log_of(&c), "error ETLS -"));
    assert_int_equal(src, HEARTH_ETLS); /* the alert */
    assert_int_equal(s.opens + c.opens, 0);
    assert_false(hearth_stream_secure(c.s));
    assert_true(hearth_stream_output_closed(c.s) && hearth_stream_input_closed(c.s));
    assert_int_equal(hearth_stream_send(c.s, "<a/>", 4), HEARTH_ECLOSED);
    assert_int_equal(hearth_stream_restart(c.s), HEARTH_ECLOSED);
    peer_free(&c);
    peer_free(&s);
}

/* ---- the restart after SASL ---- */

static void succeed_auth(peer_t *p, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    if (strcmp(el->name, "auth") != 0)
        return;
    static const char ok[] = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
    assert_int_equal(hearth_stream_send(p->s, ok, sizeof(ok) - 1), 0);
    assert_int_equal(hearth_stream_restart(p->s), 0);
}

#define AUTH "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>"

static void test_restart_after_sasl(void **state)
{
    /* From inside the callback: what the client sent behind <auth/> is discarded. */
    peer_t p;
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    p.on_element = succeed_auth;
    assert_int_equal(feed_str(&p, C_HEADER AUTH "<message><body>early</body></message>" C_HEADER),
                     0);
    assert_int_equal(p.elements, 1);
    assert_int_equal(p.opens, 1);
    assert_null(hearth_stream_id(p.s)); /* a new one comes with the next header */
    char *first = strdup(p.id);
    size_t before = p.out.len;
    assert_int_equal(feed_str(&p, C_HEADER "<iq type='get' id='2'/>"), 0);
    assert_int_equal(p.opens, 2);
    assert_int_equal(p.elements, 2);
    char *h = server_header(&p);
    assert_string_equal(out_of(&p) + before, h);
    assert_string_not_equal(hearth_stream_id(p.s), first);
    free(h);
    free(first);
    peer_free(&p);

    /* From outside (an asynchronous SASL step): the next byte starts the new stream. */
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    assert_int_equal(feed_str(&p, C_HEADER AUTH), 0);
    const char *id1 = hearth_stream_id(p.s);
    char *saved = strdup(id1);
    assert_int_equal(hearth_stream_send(p.s, "<success/>", 10), 0);
    assert_int_equal(hearth_stream_restart(p.s), 0);
    assert_int_equal(feed_str(&p, C_HEADER "<presence/>"), 0);
    assert_int_equal(p.opens, 2);
    assert_int_equal(p.elements, 2);
    assert_string_not_equal(hearth_stream_id(p.s), saved);
    free(saved);
    peer_free(&p);
}

/* ---- stream errors, close ---- */

static void test_error_before_header(void **state)
{
    peer_t p;
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    assert_int_equal(hearth_stream_error(p.s, HEARTH_STREAM_ERR_CONNECTION_TIMEOUT, NULL), 0);
    char *h = server_header(&p);
    char *e = error_bytes("connection-timeout", NULL);
    char *want = NULL;
    assert_true(asprintf(&want, "%s%s", h, e) > 0);
    assert_string_equal(out_of(&p), want);
    free(want);
    free(e);
    free(h);
    /* Nothing more is written, nothing more is read. */
    size_t len = p.out.len;
    assert_int_equal(hearth_stream_send(p.s, "<a/>", 4), HEARTH_ECLOSED);
    assert_int_equal(hearth_stream_error(p.s, HEARTH_STREAM_ERR_CONFLICT, NULL), HEARTH_ECLOSED);
    assert_int_equal(hearth_stream_close(p.s), HEARTH_ECLOSED);
    assert_int_equal(feed_str(&p, C_HEADER), HEARTH_ECLOSED);
    assert_int_equal(p.out.len, len);
    assert_int_equal(p.opens + p.errors, 0);
    assert_int_equal(hearth_stream_restart(p.s), HEARTH_ECLOSED);
    peer_free(&p);
}

static void test_close_handshake(void **state)
{
    /* The client closes first. */
    peer_t p;
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    assert_int_equal(feed_str(&p, C_HEADER "<presence/></stream:stream><message/>"),
                     HEARTH_ECLOSED);
    assert_int_equal(p.closes, 1);
    assert_int_equal(p.elements, 1);
    assert_true(hearth_stream_input_closed(p.s));
    assert_false(hearth_stream_output_closed(p.s));
    assert_int_equal(hearth_stream_send(p.s, "<message/>", 10), 0); /* still allowed */
    clear_out(&p);
    assert_int_equal(hearth_stream_close(p.s), 0);
    assert_string_equal(out_of(&p), "</stream:stream>");
    assert_int_equal(feed_str(&p, "<presence/>"), HEARTH_ECLOSED);
    assert_int_equal(p.closes, 1);
    peer_free(&p);

    /* The server closes first: input goes on until the client's close. */
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    assert_int_equal(feed_str(&p, C_HEADER), 0);
    assert_int_equal(hearth_stream_close(p.s), 0);
    assert_true(hearth_stream_output_closed(p.s));
    assert_int_equal(feed_str(&p, "<message><body>last</body></message>"), 0);
    assert_int_equal(p.elements, 1);
    assert_int_equal(feed_str(&p, "</stream:stream>"), HEARTH_ECLOSED);
    assert_int_equal(p.closes, 1);
    assert_int_equal(p.errors, 0);
    peer_free(&p);
}

/* ---- limits ---- */

static void test_limits(void **state)
{
    hearth_xml_limits_t lim = {.max_stanza_bytes = 100, .max_header_bytes = 300};
    hearth_stream_config_t cfg = {.role = HEARTH_STREAM_SERVER, .domain = DOMAIN, .limits = &lim};
    char big[400];
    snprintf(big, sizeof big, "<message><body>%0200d</body></message>", 0);

    /* Before authentication: 100 bytes. */
    peer_t p;
    peer_init_cfg(&p, &cfg);
    assert_int_equal(feed_str(&p, C_HEADER "<presence/>"), 0);
    assert_int_equal(feed_str(&p, big), HEARTH_ELIMIT);
    assert_int_equal(p.cond, HEARTH_STREAM_ERR_POLICY_VIOLATION);
    assert_int_equal(p.elements, 1);
    assert_non_null(strstr(out_of(&p), "<policy-violation"));
    peer_free(&p);

    /* After it: raised. */
    peer_init_cfg(&p, &cfg);
    assert_int_equal(feed_str(&p, C_HEADER), 0);
    hearth_stream_set_max_stanza(p.s, 1000);
    assert_int_equal(feed_str(&p, big), 0);
    assert_int_equal(p.elements, 1);
    peer_free(&p);

    /* The header bound. */
    peer_init_cfg(&p, &cfg);
    char hdr[600];
    snprintf(hdr, sizeof hdr,
             "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
             "version='1.0' x='%0400d'>",
             0);
    assert_int_equal(feed_str(&p, hdr), HEARTH_ELIMIT);
    assert_int_equal(p.opens, 0);
    peer_free(&p);

    /* Depth and attributes pass through. */
    hearth_xml_limits_t lim2 = {.max_depth = 3, .max_attrs = 2};
    cfg.limits = &lim2;
    peer_init_cfg(&p, &cfg);
    assert_int_equal(feed_str(&p, C_HEADER), HEARTH_ELIMIT); /* five attributes on it */
    assert_int_equal(p.opens, 0);
    peer_free(&p);
    cfg.limits = NULL;
    peer_init_cfg(&p, &cfg);
    assert_int_equal(feed_str(&p, C_HEADER), 0);
    hearth_stream_set_limits(p.s, &lim2);
    assert_int_equal(feed_str(&p, "<a><b><c/></b></a>"), 0);
    assert_int_equal(feed_str(&p, "<a><b><c><d/></c></b></a>"), HEARTH_ELIMIT);
    peer_free(&p);
}

/* ---- re-entrancy ---- */

static void test_reentrancy(void **state)
{
    peer_t p;
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    /* A feed from inside a callback is refused. */
    assert_int_equal(feed_str(&p, C_HEADER "<presence/>"), 0);
    assert_int_equal(p.feed_in_element_rc, HEARTH_EBUSY);
    assert_int_equal(p.elements, 1); /* the refused <a/> was not parsed */
    /* So is a send from inside write. */
    p.try_send_in_write = 1;
    assert_int_equal(hearth_stream_send(p.s, "<y/>", 4), 0);
    assert_int_equal(p.write_send_rc, HEARTH_EBUSY);
    assert_null(strstr(out_of(&p), "<x/>"));
    peer_free(&p);

    /* A free from inside a callback waits for the feed to return; nothing more is called. */
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    p.free_at_element = 2;
    assert_int_equal(feed_str(&p, C_HEADER "<a/><b/><c/></stream:stream>"), HEARTH_ECLOSED);
    assert_null(p.s);
    assert_int_equal(p.elements, 2);
    assert_int_equal(p.closes, 0);
    peer_free(&p);

    /* From inside open (before the server's header went out) and error: nothing is written
     * after the free. */
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_TCP);
    p.free_at_open = 1;
    assert_int_equal(feed_str(&p, C_HEADER "<a/>"), HEARTH_ECLOSED);
    assert_null(p.s);
    assert_int_equal(p.out.len, 0);
    assert_int_equal(p.elements, 0);
    peer_free(&p);
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_WEBSOCKET);
    p.free_at_error = 1;
    assert_int_equal(feed_str(&p, WS_OPEN), 0);
    assert_int_equal(feed_str(&p, "<a/><b/>"), HEARTH_ECLOSED);
    assert_null(p.s);
    assert_int_equal(p.errors, 1);
    assert_int_equal(p.writes, 3); /* the stream error went out before the callback */
    peer_free(&p);

    /* The same under TLS (the free waits until OpenSSL has returned too). */
    peer_t c, s;
    wired_pair(&c, &s, HEARTH_STREAM_TCP, 1);
    s.free_at_element = 2; /* the bind <iq/>, on the stream after SASL */
    assert_int_equal(hearth_stream_start(c.s), 0);
    int src;
    pump(&c, &s, NULL, &src);
    assert_int_equal(src, HEARTH_ECLOSED);
    assert_null(s.s);
    peer_free(&c);
    peer_free(&s);

    /* Bad arguments. */
    hearth_stream_config_t cfg = {.role = HEARTH_STREAM_SERVER};
    hearth_stream_cbs_t cbs = p_cbs;
    assert_null(hearth_stream_new(&cfg, &cbs, NULL)); /* no domain */
    cfg.domain = DOMAIN;
    cbs.write = NULL;
    assert_null(hearth_stream_new(&cfg, &cbs, NULL)); /* no write */
    cfg.framing = HEARTH_STREAM_WEBSOCKET;
    cfg.direct_tls = fx.server;
    assert_null(hearth_stream_new(&cfg, &p_cbs, NULL)); /* TLS is the transport's there */
    hearth_stream_free(NULL);
}

/* ---- WebSocket framing (RFC 7395) ---- */

static char *ws_server_open(peer_t *p)
{
    char *h = NULL;
    assert_true(asprintf(&h,
                         "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='%s' "
                         "from='localhost' version='1.0' xml:lang='en'/>",
                         hearth_stream_id(p->s)) > 0);
    return h;
}

static void test_ws_open_close(void **state)
{
    peer_t p;
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_WEBSOCKET);
    p.on_open = send_starttls_features;
    assert_int_equal(feed_str(&p, WS_OPEN), 0);
    assert_int_equal(p.opens, 1);
    assert_string_equal(p.to, "localhost");
    assert_string_equal(p.default_ns, "");
    /* Each write one message: the header, then the features. */
    assert_int_equal(p.writes, 2);
    char *h = ws_server_open(&p);
    assert_string_equal(p.msgs[0], h);
    free(h);
    assert_string_equal(p.msgs[1],
                        "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                        "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
                        "</stream:features>");

    /* One stanza per message, its namespace on it; a <starttls/> is just an element here. */
    assert_int_equal(feed_str(&p, "<message xmlns='jabber:client' to='a@localhost'>"
                                  "<body>hi</body></message>"),
                     0);
    assert_int_equal(feed_str(&p, "\n <presence xmlns='jabber:client'/>\r\n"), 0);
    assert_int_equal(feed_str(&p, STARTTLS), 0);
    assert_int_equal(feed_str(&p, "<iq xmlns='jabber:client' type='get' id='1'/>"), 0);
    assert_int_equal(p.elements, 4);
    assert_non_null(strstr(log_of(&p), "element <message xmlns='jabber:client' to='a@localhost'>"
                                       "<body>hi</body></message>\n"
                                       "element <presence xmlns='jabber:client'/>\n"));
    assert_int_equal(hearth_stream_starttls(p.s, fx.server), HEARTH_EINVAL);

    /* Outbound elements declare their namespace. */
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *m = hearth_xml_new(a, "message", "jabber:client");
    hearth_xml_add_text(a, hearth_xml_add_child(a, m, "body", NULL), "yo", 2);
    assert_int_equal(hearth_stream_send_node(p.s, m), 0);
    assert_string_equal(p.msgs[p.writes - 1],
                        "<message xmlns='jabber:client'><body>yo</body></message>");
    assert_string_equal(hearth_stream_context_ns(p.s), "");
    hearth_arena_free(a);

    /* The close, both ways. */
    assert_int_equal(feed_str(&p, WS_CLOSE), HEARTH_ECLOSED);
    assert_int_equal(p.closes, 1);
    assert_int_equal(hearth_stream_close(p.s), 0);
    assert_string_equal(p.msgs[p.writes - 1], WS_CLOSE);
    assert_int_equal(p.errors, 0);
    peer_free(&p);
}

struct ws_case {
    const char *msg;
    const char *cond; /* NULL: accepted */
};

static void test_ws_bad_messages(void **state)
{
    static const struct ws_case cases[] = {
        {"<message xmlns='jabber:client'/><message xmlns='jabber:client'/>", "not-well-formed"},
        {"<message xmlns='jabber:client'/> <presence xmlns='jabber:client'/>", "not-well-formed"},
        {"<message xmlns='jabber:client'><body>half", "not-well-formed"},
        {"<message xmlns='jabber:client'><body>half</body>", "not-well-formed"},
        {"<message xmlns='jabber:client'/><mess", "not-well-formed"},
        {"<message xmlns='jabber:client'/><a>", "not-well-formed"},
        {"", "not-well-formed"},
        {" \r\n", "not-well-formed"},
        {"<message to='a@localhost'/>", "invalid-namespace"},
        {"hello <message xmlns='jabber:client'/>", "not-well-formed"},
        {"<message xmlns='jabber:client'/> hello", "not-well-formed"},
        {"<message xmlns='jabber:client'/>x<a/>", "not-well-formed"},
        {"<!-- hi --><message xmlns='jabber:client'/>", "restricted-xml"},
        {"<x:message xmlns='jabber:client'/>", "bad-namespace-prefix"},
        {"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
         "bad-namespace-prefix"},
        {WS_OPEN, "bad-format"},
        {"<foo xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>", "bad-format"},
        /* An XML declaration is allowed (RFC 7395 §3.3.3: not recommended). */
        {"<?xml version='1.0'?><message xmlns='jabber:client'/>", NULL},
        {"<?xml version=\"1.0\" encoding=\"utf-8\" standalone='yes' ?>\n"
         "<message xmlns='jabber:client'/>",
         NULL},
        {"<?xml version='1.0' encoding='ISO-8859-1'?><message xmlns='jabber:client'/>",
         "unsupported-encoding"},
        {"<?xml encoding='UTF-8'?><message xmlns='jabber:client'/>", "not-well-formed"},
        {"<?xml version='1.0'encoding='UTF-8'?><message xmlns='jabber:client'/>",
         "not-well-formed"},
        {"<?xml version='1.0' foo='bar'?><message xmlns='jabber:client'/>", "not-well-formed"},
        {"<?xml version='1.0'?><?xml version='1.0'?><message xmlns='jabber:client'/>",
         "not-well-formed"},
        {" <?xml version='1.0'?><message xmlns='jabber:client'/>", "not-well-formed"},
        {"<?xml version='1.0'", "not-well-formed"},
        /* Whitespace around the element is insignificant. */
        {"\n\t<message xmlns='jabber:client'/>\r\n ", NULL},
        {"<sm:r xmlns:sm='urn:xmpp:sm:3'/>", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        const struct ws_case *c = &cases[i];
        peer_t p;
        peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_WEBSOCKET);
        assert_int_equal(feed_str(&p, WS_OPEN), 0);
        assert_int_equal(p.writes, 1);
        int rc = feed_str(&p, c->msg);
        if (!c->cond) {
            if (rc || p.elements != 1)
                fail_msg("case %zu: rc %d, %d elements, log %s", i, rc, p.elements, log_of(&p));
            peer_free(&p);
            continue;
        }
        if (rc == 0 || p.errors != 1 || strcmp(hearth_stream_error_name(p.cond), c->cond) != 0)
            fail_msg("case %zu (%s): rc %d, log %s", i, c->msg, rc, log_of(&p));
        assert_int_equal(p.elements, 0); /* not even the first of two */
        /* The error and the close, each its own message (RFC 7395 §3.6). */
        assert_int_equal(p.writes, 3);
        char *e = NULL;
        assert_true(asprintf(&e,
                             "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>"
                             "<%s xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>",
                             c->cond) > 0);
        assert_true(strncmp(p.msgs[1], e, strlen(e)) == 0);
        free(e);
        assert_string_equal(p.msgs[2], WS_CLOSE);
        peer_free(&p);
    }
}

static void test_ws_limits_and_header(void **state)
{
    /* An oversize message is refused before it is parsed. */
    hearth_xml_limits_t lim = {.max_stanza_bytes = 100, .max_header_bytes = 200};
    hearth_stream_config_t cfg = {.role = HEARTH_STREAM_SERVER,
                                  .framing = HEARTH_STREAM_WEBSOCKET,
                                  .domain = DOMAIN,
                                  .limits = &lim};
    peer_t p;
    peer_init_cfg(&p, &cfg);
    assert_int_equal(feed_str(&p, WS_OPEN), 0);
    char big[300];
    snprintf(big, sizeof big, "<message xmlns='jabber:client'><body>%0100d</body></message>", 0);
    assert_int_equal(feed_str(&p, big), HEARTH_ELIMIT);
    assert_int_equal(p.cond, HEARTH_STREAM_ERR_POLICY_VIOLATION);
    assert_int_equal(p.elements, 0);
    peer_free(&p);

    /* A stanza before <open/>, a bad version, an error before any header. */
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_WEBSOCKET);
    assert_int_equal(feed_str(&p, "<message xmlns='jabber:client'/>"), HEARTH_EXML);
    assert_int_equal(p.cond, HEARTH_STREAM_ERR_INVALID_NAMESPACE);
    assert_int_equal(p.writes, 3); /* our <open/>, the error, the <close/> */
    char *h = ws_server_open(&p);
    assert_string_equal(p.msgs[0], h);
    free(h);
    peer_free(&p);
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_WEBSOCKET);
    assert_int_equal(
        feed_str(&p, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost'/>"),
        HEARTH_EXML);
    assert_int_equal(p.cond, HEARTH_STREAM_ERR_UNSUPPORTED_VERSION);
    assert_int_equal(p.opens, 0);
    peer_free(&p);
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_WEBSOCKET);
    assert_int_equal(hearth_stream_error(p.s, HEARTH_STREAM_ERR_SYSTEM_SHUTDOWN, "bye"), 0);
    assert_int_equal(p.writes, 3);
    assert_string_equal(p.msgs[1], "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>"
                                   "<system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                                   "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>bye</text>"
                                   "</stream:error>");
    assert_string_equal(p.msgs[2], WS_CLOSE);
    peer_free(&p);
}

static void test_ws_restart_after_sasl(void **state)
{
    peer_t p;
    peer_init(&p, HEARTH_STREAM_SERVER, HEARTH_STREAM_WEBSOCKET);
    p.on_element = succeed_auth;
    assert_int_equal(feed_str(&p, WS_OPEN), 0);
    char *id1 = strdup(hearth_stream_id(p.s));
    assert_int_equal(feed_str(&p, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                                  "mechanism='PLAIN'>AGEAYg==</auth>"),
                     0);
    assert_int_equal(p.writes, 2); /* the header, the success */
    /* A stanza now is not an <open/>. */
    peer_t q;
    peer_init(&q, HEARTH_STREAM_SERVER, HEARTH_STREAM_WEBSOCKET);
    q.on_element = succeed_auth;
    assert_int_equal(feed_str(&q, WS_OPEN), 0);
    assert_int_equal(feed_str(&q, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"), 0);
    assert_int_equal(feed_str(&q, "<presence xmlns='jabber:client'/>"), HEARTH_EXML);
    assert_int_equal(q.cond, HEARTH_STREAM_ERR_INVALID_NAMESPACE);
    peer_free(&q);
    /* The new <open/>: a new header with a new id. */
    assert_int_equal(feed_str(&p, WS_OPEN), 0);
    assert_int_equal(p.opens, 2);
    assert_int_equal(p.writes, 3);
    char *h = ws_server_open(&p);
    assert_string_equal(p.msgs[2], h);
    assert_string_not_equal(hearth_stream_id(p.s), id1);
    free(h);
    free(id1);
    assert_int_equal(feed_str(&p, "<presence xmlns='jabber:client'/>"), 0);
    assert_int_equal(p.elements, 2);
    peer_free(&p);
}

static void test_ws_wired(void **state)
{
    /* Client and server in WebSocket framing: SASL (no STARTTLS offered on wss:), then bind. */
    peer_t c, s;
    wired_pair(&c, &s, HEARTH_STREAM_WEBSOCKET, 0);
    assert_int_equal(hearth_stream_start(c.s), 0);
    assert_int_equal(c.writes, 1);
    assert_string_equal(c.msgs[0], "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' "
                                   "to='localhost' version='1.0' xml:lang='en'/>");
    s.no_starttls = 1;
    pump(&c, &s, NULL, NULL);
    /* Two streams each side (before and after SASL), the bind answered. */
    assert_int_equal(s.opens, 2);
    assert_int_equal(c.opens, 2);
    assert_string_equal(hearth_stream_id(c.s), hearth_stream_id(s.s));
    assert_string_equal(c.default_ns, "");
    assert_non_null(
        strstr(log_of(&c), "element <iq xmlns='jabber:client' type='result' id='b1'/>"));
    /* Every write was one complete message. */
    for (int i = 0; i < s.writes && i < MAX_MSGS; i++)
        assert_true(s.msgs[i][0] == '<' && s.msgs[i][strlen(s.msgs[i]) - 1] == '>');
    /* The client sends in its framing: a node gets its namespace. */
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *m = hearth_xml_new(a, "message", "jabber:client");
    assert_int_equal(hearth_stream_send_node(c.s, m), 0);
    hearth_arena_free(a);
    pump(&c, &s, NULL, NULL);
    assert_non_null(strstr(log_of(&s), "element <message xmlns='jabber:client'/>"));
    assert_int_equal(hearth_stream_close(c.s), 0);
    int src;
    pump(&c, &s, NULL, &src);
    assert_int_equal(src, HEARTH_ECLOSED);
    assert_int_equal(s.closes, 1);
    assert_int_equal(hearth_stream_close(s.s), 0);
    int crc;
    pump(&c, &s, &crc, NULL);
    assert_int_equal(crc, HEARTH_ECLOSED);
    assert_int_equal(c.closes, 1);
    assert_int_equal(c.errors + s.errors, 0);
    peer_free(&c);
    peer_free(&s);
}

/* ---- client role ---- */

#define S_HEADER_ID(id)                                                                            \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' id='" id "' from='localhost' "                \
    "version='1.0' xml:lang='en'>"

static void test_client_role(void **state)
{
    hearth_stream_config_t cfg = {
        .role = HEARTH_STREAM_CLIENT, .domain = DOMAIN, .from = "juliet@localhost"};
    peer_t p;
    peer_init_cfg(&p, &cfg);
    assert_int_equal(hearth_stream_set_domain(p.s, "x"), HEARTH_EINVAL);
    assert_int_equal(hearth_stream_start(p.s), 0);
    assert_string_equal(out_of(&p), "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                                    "xmlns:stream='http://etherx.jabber.org/streams' "
                                    "from='juliet@localhost' to='localhost' version='1.0' "
                                    "xml:lang='en'>");
    assert_int_equal(hearth_stream_start(p.s), HEARTH_EINVAL); /* once */
    assert_null(hearth_stream_id(p.s));
    assert_int_equal(feed_str(&p, S_HEADER_ID("s1") "<stream:features><mechanisms "
                                                    "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                                                    "<mechanism>PLAIN</mechanism></mechanisms>"
                                                    "</stream:features>"),
                     0);
    assert_string_equal(hearth_stream_id(p.s), "s1");
    assert_string_equal(p.from, "localhost");
    assert_int_equal(p.elements, 1);
    assert_non_null(strstr(log_of(&p), "element <features xmlns='http://etherx.jabber.org/"
                                       "streams'><mechanisms"));
    /* <success/> ends a step: what the server sent behind it is not read. */
    clear_out(&p);
    assert_int_equal(feed_str(&p, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
                                  "<message><body>injected</body></message>"),
                     0);
    assert_int_equal(p.elements, 2);
    assert_int_equal(feed_str(&p, "<presence/>"), 0);
    assert_int_equal(p.elements, 2);
    /* Restart: our new header goes out now, the server's is expected. */
    assert_int_equal(hearth_stream_restart(p.s), 0);
    assert_non_null(strstr(out_of(&p), "<stream:stream "));
    assert_null(hearth_stream_id(p.s));
    assert_int_equal(feed_str(&p, S_HEADER_ID("s2") "<stream:features/>"), 0);
    assert_string_equal(hearth_stream_id(p.s), "s2");
    assert_int_equal(p.opens, 2);
    assert_int_equal(p.elements, 3);
    peer_free(&p);

    /* A server header that is not XMPP 1.0: the client says so (its header is already out). */
    peer_init(&p, HEARTH_STREAM_CLIENT, HEARTH_STREAM_TCP);
    assert_int_equal(hearth_stream_start(p.s), 0);
    clear_out(&p);
    assert_int_equal(feed_str(&p, "<stream:stream xmlns='jabber:client' "
                                  "xmlns:stream='http://etherx.jabber.org/streams' id='x'>"),
                     HEARTH_EXML);
    assert_int_equal(p.cond, HEARTH_STREAM_ERR_UNSUPPORTED_VERSION);
    char *e = error_bytes("unsupported-version", "XMPP 1.0 is required");
    assert_string_equal(out_of(&p), e);
    free(e);
    peer_free(&p);

    /* <proceed/> ends a step too: no plaintext after it is read (STARTTLS injection). */
    peer_init(&p, HEARTH_STREAM_CLIENT, HEARTH_STREAM_TCP);
    assert_int_equal(hearth_stream_start(p.s), 0);
    assert_int_equal(
        feed_str(&p, S_HEADER_ID("s1") PROCEED "<stream:features><mechanisms/></stream:features>"),
        0);
    assert_int_equal(p.elements, 1);
    assert_non_null(strstr(log_of(&p), "element <proceed"));
    clear_out(&p);
    assert_int_equal(hearth_stream_starttls(p.s, fx.client), 0);
    assert_true(p.out.len > 0); /* the ClientHello */
    assert_null(strstr(out_of(&p), "stream"));
    peer_free(&p);

    /* A WebSocket client: <open/>, and the server's <open/>. */
    peer_init(&p, HEARTH_STREAM_CLIENT, HEARTH_STREAM_WEBSOCKET);
    assert_int_equal(hearth_stream_start(p.s), 0);
    assert_string_equal(p.msgs[0], "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' "
                                   "to='localhost' version='1.0' xml:lang='en'/>");
    assert_int_equal(feed_str(&p, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' id='w1' "
                                  "from='localhost' version='1.0'/>"),
                     0);
    assert_string_equal(hearth_stream_id(p.s), "w1");
    assert_int_equal(feed_str(&p, "<stream:features xmlns:stream='http://etherx.jabber.org/"
                                  "streams'/>"),
                     0);
    assert_int_equal(p.elements, 1);
    peer_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_header),
        cmocka_unit_test(test_server_header_checks),
        cmocka_unit_test(test_server_host_check_is_callers),
        cmocka_unit_test(test_server_split_everywhere),
        cmocka_unit_test(test_starttls_pipelined_discarded),
        cmocka_unit_test(test_tls_and_sasl_wired),
        cmocka_unit_test(test_direct_tls_wired),
        cmocka_unit_test(test_tls_failure),
        cmocka_unit_test(test_restart_after_sasl),
        cmocka_unit_test(test_error_before_header),
        cmocka_unit_test(test_close_handshake),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_reentrancy),
        cmocka_unit_test(test_ws_open_close),
        cmocka_unit_test(test_ws_bad_messages),
        cmocka_unit_test(test_ws_limits_and_header),
        cmocka_unit_test(test_ws_restart_after_sasl),
        cmocka_unit_test(test_ws_wired),
        cmocka_unit_test(test_client_role),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
