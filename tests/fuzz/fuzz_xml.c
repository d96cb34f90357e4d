/* libFuzzer target for the stream parser (lib/xml/stream.c): the input is fed in splits chosen by
 * its first bytes, every stanza is serialised and re-parsed, and a split feed must give the same
 * events as a single feed. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/xml.h"

struct fuzz_rec {
    hearth_xml_stream_t *s;
    hearth_buf_t log;
    char default_ns[256];
    int stop_at;
    int stanzas;
};

static void must(int rc)
{
    if (rc && rc != HEARTH_ENOMEM)
        abort();
}

static void f_open(void *ud, const hearth_xml_node_t *h, const char *default_ns)
{
    struct fuzz_rec *r = ud;
    size_t n = strlen(default_ns);
    if (n >= sizeof(r->default_ns))
        n = sizeof(r->default_ns) - 1;
    memcpy(r->default_ns, default_ns, n);
    r->default_ns[n] = '\0';
    must(hearth_buf_append_str(&r->log, "open "));
    must(hearth_xml_serialize(h, "", &r->log));
    must(hearth_buf_append_str(&r->log, "\n"));
}

static void f_stanza(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    struct fuzz_rec *r = ud;
    r->stanzas++;
    must(hearth_buf_append_str(&r->log, "stanza "));
    must(hearth_xml_serialize(st, r->default_ns, &r->log));
    must(hearth_buf_append_str(&r->log, "\n"));
    /* Exercise the tree API on whatever the parser built. */
    hearth_xml_node_t *c = hearth_xml_copy(arena, st);
    if (c) {
        (void)hearth_xml_text(arena, c);
        (void)hearth_xml_count_elements(c);
        hearth_xml_node_t *e = hearth_xml_first_element(c);
        if (e)
            hearth_xml_remove(e);
        if (hearth_xml_set_attr(arena, c, "id", "x") == HEARTH_EINVAL)
            abort();
        hearth_buf_t tmp = HEARTH_BUF_INIT;
        must(hearth_xml_serialize(c, "", &tmp));
        hearth_buf_free(&tmp);
    }
    if (r->stanzas == r->stop_at)
        hearth_xml_stream_stop(r->s);
}

static void f_close(void *ud)
{
    struct fuzz_rec *r = ud;
    must(hearth_buf_append_str(&r->log, "close\n"));
}

static void f_error(void *ud, hearth_stream_error_t cond, const char *text)
{
    struct fuzz_rec *r = ud;
    must(hearth_buf_printf(&r->log, "error %d\n", (int)cond));
}

static const hearth_xml_stream_cbs_t f_cbs = {f_open, f_stanza, f_close, f_error};

/* Feeds data in pieces of the given sizes (cycled); returns the event log. */
static char *run(const uint8_t *data, size_t len, const uint8_t *splits, size_t nsplits,
                 int stop_at)
{
    hearth_xml_limits_t lim = {4096, 1024, 16, 16};
    struct fuzz_rec r = {0};
    r.log = (hearth_buf_t)HEARTH_BUF_INIT;
    r.stop_at = stop_at;
    r.s = hearth_xml_stream_new(&f_cbs, &r, &lim);
    if (!r.s)
        return NULL;
    size_t off = 0, i = 0;
    while (off < len) {
        size_t n = nsplits ? (size_t)splits[i++ % nsplits] + 1 : len;
        if (n > len - off)
            n = len - off;
        if (hearth_xml_stream_feed(r.s, (const char *)data + off, n) != 0)
            break;
        off += n;
    }
    /* A restart must always give a clean parser. */
    if (hearth_xml_stream_reset(r.s) == 0)
        (void)hearth_xml_stream_feed(r.s, (const char *)data, len < 64 ? len : 64);
    hearth_xml_stream_free(r.s);
    return hearth_buf_steal(&r.log, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t nsplits = data[0] % 8;
    int stop_at = data[1] % 4;
    if (size < 2 + nsplits)
        return 0;
    const uint8_t *splits = data + 2;
    const uint8_t *xml = data + 2 + nsplits;
    size_t len = size - 2 - nsplits;

    char *whole = run(xml, len, NULL, 0, stop_at);
    char *split = run(xml, len, splits, nsplits, stop_at);
    /* Same events whatever the splits, except that limits on unfinished input are checked at
     * feed boundaries, so an error may come earlier with a different line. */
    if (whole && split && !strstr(whole, "error ") && !strstr(split, "error ") &&
        strcmp(whole, split) != 0)
        abort();
    free(whole);
    free(split);
    return 0;
}
