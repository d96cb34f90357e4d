/* libFuzzer target for the data-form parser and builders (lib/form.c): every element of every
 * stanza in the input is parsed as a form under bounds chosen by the first byte; a form that
 * parses is written, parsed again and must come back the same, and written again the same bytes;
 * a refused one must say why. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/form.h"

static const char HEAD[] = "<stream:stream xmlns='jabber:client' "
                           "xmlns:stream='http://etherx.jabber.org/streams'>";

static void must(int cond)
{
    if (!cond)
        abort();
}

static int same_str(const char *x, const char *y)
{
    return (!x && !y) || (x && y && !strcmp(x, y));
}

static void same_form(const hearth_form_t *x, const hearth_form_t *y)
{
    must(x->type == y->type && same_str(x->title, y->title) &&
         same_str(x->instructions, y->instructions) && x->nfields == y->nfields);
    for (size_t i = 0; i < x->nfields; i++) {
        const hearth_form_field_t *a = &x->fields[i], *b = &y->fields[i];
        must(same_str(a->var, b->var) && same_str(a->type, b->type) &&
             same_str(a->label, b->label) && a->required == b->required &&
             a->nvalues == b->nvalues && a->noptions == b->noptions);
        for (size_t k = 0; k < a->nvalues; k++)
            must(!strcmp(a->values[k], b->values[k]));
        for (size_t k = 0; k < a->noptions; k++)
            must(same_str(a->options[k].label, b->options[k].label) &&
                 !strcmp(a->options[k].value, b->options[k].value));
    }
}

typedef struct run {
    hearth_form_limits_t lim;
    hearth_arena_t *keep; /* the re-parsed copy's arena */
    hearth_xml_node_t *copy;
    int elements; /* bounded walk: deep inputs must not make the target slow */
} run_t;

static void keep_copy(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    run_t *r = ud;
    if (!r->copy)
        r->copy = hearth_xml_copy(r->keep, st);
}

/* bytes (one element) back into a tree in r->keep; NULL when they are not one element. */
static hearth_xml_node_t *reparse(run_t *r, const char *bytes, size_t len)
{
    hearth_xml_stream_cbs_t cbs = {.stanza = keep_copy};
    hearth_xml_limits_t lim = HEARTH_XML_LIMITS_DEFAULT;
    lim.max_stanza_bytes = len + 1024;
    r->copy = NULL;
    hearth_xml_stream_t *s = hearth_xml_stream_new(&cbs, r, &lim);
    if (!s)
        return NULL;
    (void)hearth_xml_stream_feed(s, HEAD, sizeof(HEAD) - 1);
    (void)hearth_xml_stream_feed(s, bytes, len);
    hearth_xml_stream_free(s);
    return r->copy;
}

static void try_form(run_t *r, const hearth_xml_node_t *x, hearth_arena_t *arena)
{
    hearth_form_t f;
    const char *why = NULL;
    int rc = hearth_form_parse(arena, x, &r->lim, &f, &why);
    if (rc) {
        must(rc == HEARTH_EINVAL || rc == HEARTH_ELIMIT || rc == HEARTH_ENOMEM);
        must(rc == HEARTH_ENOMEM || why);
        must(f.nfields == 0 && !f.fields);
        return;
    }
    must(f.nfields <= r->lim.max_fields);
    for (size_t i = 0; i < f.nfields; i++) {
        const hearth_form_field_t *fd = &f.fields[i];
        must(fd->var || (fd->type && !strcmp(fd->type, "fixed")));
        must(fd->nvalues <= r->lim.max_values && fd->noptions <= r->lim.max_options);
        for (size_t k = 0; k < fd->nvalues; k++)
            must(strlen(fd->values[k]) <= r->lim.max_text);
        const hearth_form_field_t *found = hearth_form_field(&f, fd->var);
        must(!fd->var || (found && found <= fd && !strcmp(found->var, fd->var)));
    }
    (void)hearth_form_form_type(&f);
    if (!hearth_form_type_name(f.type))
        return; /* untyped or of no known type: not something to write */
    hearth_buf_t once = HEARTH_BUF_INIT, twice = HEARTH_BUF_INIT;
    if (hearth_form_write(&f, "", &once) == 0) {
        hearth_arena_t *keep = hearth_arena_new(0);
        r->keep = keep;
        hearth_xml_node_t *back = keep ? reparse(r, once.data, once.len) : NULL;
        hearth_form_t g;
        hearth_form_limits_t wide = {SIZE_MAX, SIZE_MAX, SIZE_MAX, SIZE_MAX};
        if (back) {
            rc = hearth_form_parse(keep, back, &wide, &g, NULL);
            must(rc == 0 || rc == HEARTH_ENOMEM);
            if (rc == 0) {
                same_form(&f, &g);
                if (hearth_form_write(&g, "", &twice) == 0)
                    must(twice.len == once.len && !memcmp(twice.data, once.data, once.len));
            }
        }
        hearth_arena_free(keep);
    }
    hearth_buf_free(&once);
    hearth_buf_free(&twice);
}

static void walk(run_t *r, const hearth_xml_node_t *n, hearth_arena_t *arena)
{
    for (; n && r->elements < 64; n = hearth_xml_next_element(n)) {
        r->elements++;
        try_form(r, n, arena);
        walk(r, hearth_xml_first_element(n), arena);
    }
}

static void on_stanza(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    walk(ud, st, arena);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* Small bounds half the time, so that every limit is reached. */
    run_t r = {0};
    if (data[0] & 1)
        r.lim = (hearth_form_limits_t){1 + (data[0] >> 1 & 7), 1 + (data[0] >> 4 & 3),
                                       1 + (data[0] >> 6), 16};
    else
        r.lim = (hearth_form_limits_t){HEARTH_FORM_FIELDS_MAX, HEARTH_FORM_VALUES_MAX,
                                       HEARTH_FORM_OPTIONS_MAX, HEARTH_FORM_TEXT_MAX};
    hearth_xml_stream_cbs_t cbs = {.stanza = on_stanza};
    hearth_xml_limits_t lim = {16384, 1024, 32, 16};
    hearth_xml_stream_t *s = hearth_xml_stream_new(&cbs, &r, &lim);
    if (!s)
        return 0;
    (void)hearth_xml_stream_feed(s, HEAD, sizeof(HEAD) - 1);
    (void)hearth_xml_stream_feed(s, (const char *)data + 1, size - 1);
    hearth_xml_stream_free(s);
    return 0;
}
