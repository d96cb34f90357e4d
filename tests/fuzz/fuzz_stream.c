/* libFuzzer target for hearth_stream (lib/stream.c), server role, both framings. Input: a mode
 * byte (bit 0: WebSocket framing; bits 1-3: how many split sizes follow), the split sizes, then
 * the bytes: fed in those splits (TCP) or as messages separated by NUL bytes (WebSocket). The
 * callbacks echo elements and take the steps a c2s takes (restart after <auth/>, close, error,
 * free from inside a callback). Checks: whatever the server writes parses as a server stream for
 * a client-role stream; in WebSocket framing each write is one element; in TCP framing split
 * feeds give the events of a single feed (unless a restart made the feed boundary matter). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/stream.h"

static const hearth_xml_limits_t limits = {4096, 1024, 16, 16};

static void must(int rc)
{
    if (rc && rc != HEARTH_ENOMEM)
        abort();
}

/* ---- the checker: a client-role stream reading what the server wrote ---- */

struct check {
    hearth_stream_t *c;
    int failed;
};

static void c_write(void *ud, const char *data, size_t len) {}

static void c_error(void *ud, int err, hearth_stream_error_t cond, const char *text)
{
    if (err != HEARTH_ENOMEM)
        ((struct check *)ud)->failed = 1;
}

static const hearth_stream_cbs_t c_cbs = {.write = c_write, .error = c_error};

/* One server stream's output (TCP: bytes; WebSocket: messages separated by NUL). */
static void check_output(hearth_stream_framing_t framing, const char *out, size_t len)
{
    if (len == 0)
        return;
    struct check k = {0};
    hearth_stream_config_t cfg = {
        .role = HEARTH_STREAM_CLIENT, .framing = framing, .domain = "localhost", .limits = NULL};
    k.c = hearth_stream_new(&cfg, &c_cbs, &k);
    if (!k.c)
        return;
    if (framing == HEARTH_STREAM_TCP) {
        (void)hearth_stream_feed(k.c, out, len);
    } else {
        for (size_t off = 0; off < len && !k.failed;) {
            const char *end = memchr(out + off, '\0', len - off);
            size_t n = end ? (size_t)(end - (out + off)) : len - off;
            (void)hearth_stream_feed(k.c, out + off, n);
            off += n + 1;
        }
    }
    hearth_stream_free(k.c);
    if (k.failed)
        abort();
}

/* ---- the server under test ---- */

struct run {
    hearth_stream_t *s;
    hearth_stream_framing_t framing;
    hearth_buf_t out; /* the current server stream's output */
    hearth_buf_t log; /* events */
    int restarted;    /* a restart happened inside a callback */
    int freed;
    int elements;
};

static void s_write(void *ud, const char *data, size_t len)
{
    struct run *r = ud;
    if (r->framing == HEARTH_STREAM_WEBSOCKET) {
        /* One element per message: starts with its tag, ends with its close. */
        if (len < 3 || data[0] != '<' || data[len - 1] != '>' || memchr(data, '\0', len))
            abort();
        must(hearth_buf_append(&r->out, data, len));
        must(hearth_buf_append(&r->out, "", 1));
    } else {
        must(hearth_buf_append(&r->out, data, len));
    }
}

static void s_open(void *ud, const hearth_stream_header_t *h)
{
    struct run *r = ud;
    must(hearth_buf_printf(&r->log, "open %s\n", h->to ? h->to : "-"));
    static const char f[] = "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                            "<mechanism>PLAIN</mechanism></mechanisms>";
    (void)hearth_stream_send_features(r->s, f, sizeof(f) - 1);
}

static void s_element(void *ud, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    struct run *r = ud;
    r->elements++;
    must(hearth_buf_printf(&r->log, "element {%s}%s\n", el->ns, el->name));
    if (!strcmp(el->name, "auth")) {
        /* What the c2s does on SASL success. The checker sees each stream on its own. */
        check_output(r->framing, r->out.data, r->out.len);
        hearth_buf_reset(&r->out);
        hearth_stream_set_max_stanza(r->s, 8192);
        if (hearth_stream_restart(r->s) == 0)
            r->restarted = 1;
    } else if (!strcmp(el->name, "close")) {
        (void)hearth_stream_close(r->s);
    } else if (!strcmp(el->name, "error")) {
        (void)hearth_stream_error(r->s, HEARTH_STREAM_ERR_POLICY_VIOLATION,
                                  hearth_xml_text(arena, el));
    } else if (!strcmp(el->name, "free")) {
        hearth_stream_free(r->s);
        r->freed = 1;
    } else {
        (void)hearth_stream_send_node(r->s, el);
    }
}

static void s_close(void *ud)
{
    struct run *r = ud;
    must(hearth_buf_append_str(&r->log, "close\n"));
    (void)hearth_stream_close(r->s);
}

static void s_error(void *ud, int err, hearth_stream_error_t cond, const char *text)
{
    struct run *r = ud;
    must(hearth_buf_printf(&r->log, "error %d %d\n", err, (int)cond));
}

static const hearth_stream_cbs_t s_cbs = {
    .write = s_write, .open = s_open, .element = s_element, .close = s_close, .error = s_error};

/* Feeds data (TCP: in pieces of the given sizes, cycled; WebSocket: NUL-separated messages);
 * returns the event log, or NULL when it may depend on the splits. */
static char *run(hearth_stream_framing_t framing, const uint8_t *data, size_t len,
                 const uint8_t *splits, size_t nsplits)
{
    struct run r = {0};
    r.framing = framing;
    r.out = (hearth_buf_t)HEARTH_BUF_INIT;
    r.log = (hearth_buf_t)HEARTH_BUF_INIT;
    hearth_stream_config_t cfg = {
        .role = HEARTH_STREAM_SERVER, .framing = framing, .domain = "localhost", .limits = &limits};
    r.s = hearth_stream_new(&cfg, &s_cbs, &r);
    if (!r.s)
        return NULL;
    const char *p = (const char *)data;
    size_t off = 0, i = 0;
    while (off < len && !r.freed) {
        size_t n;
        if (framing == HEARTH_STREAM_WEBSOCKET) {
            const char *end = memchr(p + off, '\0', len - off);
            n = end ? (size_t)(end - (p + off)) : len - off;
        } else {
            n = nsplits ? (size_t)splits[i++ % nsplits] + 1 : len;
            if (n > len - off)
                n = len - off;
        }
        int rc = hearth_stream_feed(r.s, p + off, n);
        if (rc == HEARTH_EBUSY || rc == HEARTH_EINVAL)
            abort();
        off += n + (framing == HEARTH_STREAM_WEBSOCKET);
    }
    if (!r.freed) {
        /* Whatever state it is in, these are safe and write only what may be written. */
        (void)hearth_stream_send(r.s, framing == HEARTH_STREAM_TCP ? "<a/>" : "<a xmlns='x'/>",
                                 framing == HEARTH_STREAM_TCP ? 4 : 14);
        int rc = hearth_stream_error(r.s, HEARTH_STREAM_ERR_SYSTEM_SHUTDOWN, "bye");
        if ((rc == 0 || rc == HEARTH_ECLOSED) && !hearth_stream_output_closed(r.s))
            abort();
        hearth_stream_free(r.s);
    }
    check_output(framing, r.out.data, r.out.len);
    hearth_buf_free(&r.out);
    char *log = hearth_buf_steal(&r.log, NULL);
    if (r.restarted || r.freed) {
        free(log);
        return NULL;
    }
    return log;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    hearth_stream_framing_t framing = (data[0] & 1) ? HEARTH_STREAM_WEBSOCKET : HEARTH_STREAM_TCP;
    size_t nsplits = (data[0] >> 1) & 7;
    if (size < 1 + nsplits)
        return 0;
    const uint8_t *splits = data + 1;
    const uint8_t *in = data + 1 + nsplits;
    size_t len = size - 1 - nsplits;

    char *whole = run(framing, in, len, NULL, 0);
    if (framing == HEARTH_STREAM_TCP && nsplits) {
        char *split = run(framing, in, len, splits, nsplits);
        /* Limits on unfinished input are checked at feed boundaries: errors may differ. */
        if (whole && split && !strstr(whole, "error ") && !strstr(split, "error ") &&
            strcmp(whole, split) != 0)
            abort();
        free(split);
    }
    free(whole);
    return 0;
}
