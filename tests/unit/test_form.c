/* Unit tests for lib/form.c (XEP-0004 data forms): parsing into the struct, lookups, the bounds
 * and their errors, malformed forms, and building as a tree and as bytes (escaped) that parse
 * back to the same form. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hearth/form.h"

#define XDATA "jabber:x:data"

/* ---- helpers ---------------------------------------------------------------------------- */

typedef struct kept {
    hearth_arena_t *a;
    hearth_xml_node_t *node;
} kept_t;

static void keep_stanza(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    kept_t *k = ud;
    k->node = hearth_xml_copy(k->a, st);
}

/* xml (one element) parsed into a tree in a, as a stream parser would give it. */
static hearth_xml_node_t *tree(hearth_arena_t *a, const char *xml)
{
    static const char head[] = "<stream:stream xmlns='jabber:client' "
                               "xmlns:stream='http://etherx.jabber.org/streams'>";
    kept_t k = {a, NULL};
    hearth_xml_stream_cbs_t cbs = {.stanza = keep_stanza};
    hearth_xml_limits_t lim = HEARTH_XML_LIMITS_DEFAULT;
    lim.max_stanza_bytes = strlen(xml) + 1024;
    hearth_xml_stream_t *s = hearth_xml_stream_new(&cbs, &k, &lim);
    assert_non_null(s);
    assert_int_equal(hearth_xml_stream_feed(s, head, sizeof(head) - 1), 0);
    assert_int_equal(hearth_xml_stream_feed(s, xml, strlen(xml)), 0);
    hearth_xml_stream_free(s);
    assert_non_null(k.node);
    return k.node;
}

static int parse(hearth_arena_t *a, const char *xml, const hearth_form_limits_t *lim,
                 hearth_form_t *f, const char **why)
{
    return hearth_form_parse(a, tree(a, xml), lim, f, why);
}

static char *written(const hearth_form_t *f, const char *context_ns)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_form_write(f, context_ns, &b), 0);
    return hearth_buf_steal(&b, NULL);
}

static void assert_str_or_null(const char *got, const char *want)
{
    if (!want) {
        assert_null(got);
    } else {
        assert_non_null(got);
        assert_string_equal(got, want);
    }
}

static void assert_same_form(const hearth_form_t *x, const hearth_form_t *y)
{
    assert_int_equal(x->type, y->type);
    assert_str_or_null(x->title, y->title);
    assert_str_or_null(x->instructions, y->instructions);
    assert_int_equal(x->nfields, y->nfields);
    for (size_t i = 0; i < x->nfields; i++) {
        const hearth_form_field_t *a = &x->fields[i], *b = &y->fields[i];
        assert_str_or_null(a->var, b->var);
        assert_str_or_null(a->type, b->type);
        assert_str_or_null(a->label, b->label);
        assert_int_equal(a->required, b->required);
        assert_int_equal(a->nvalues, b->nvalues);
        for (size_t k = 0; k < a->nvalues; k++)
            assert_string_equal(a->values[k], b->values[k]);
        assert_int_equal(a->noptions, b->noptions);
        for (size_t k = 0; k < a->noptions; k++) {
            assert_str_or_null(a->options[k].label, b->options[k].label);
            assert_string_equal(a->options[k].value, b->options[k].value);
        }
    }
}

/* A form whose type attribute and body are given, in a buffer the caller frees. */
static char *form_xml(const char *type, const char *body)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_buf_printf(&b, "<x xmlns='" XDATA "'%s%s%s>%s</x>",
                                       type ? " type='" : "", type ? type : "", type ? "'" : "",
                                       body),
                     0);
    return hearth_buf_steal(&b, NULL);
}

/* n copies of piece. */
static char *repeat(const char *piece, size_t n)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(hearth_buf_append_str(&b, piece), 0);
    if (!n)
        assert_int_equal(hearth_buf_append_str(&b, ""), 0);
    return hearth_buf_steal(&b, NULL);
}

static const char CONFIG_FORM[] =
    "<x xmlns='" XDATA "' type='form'>"
    "<title>Room configuration</title><title>A second title, not kept</title>"
    "<instructions>Change it.</instructions><instructions>A second paragraph.</instructions>"
    "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/muc#roomconfig</value>"
    "</field>"
    "<field type='fixed'><value>A section</value></field>"
    "<field var='name' type='text-single' label='Room name'><required/><value>Lounge</value>"
    "</field>"
    "<field var='roles' type='list-multi' label='Roles'>"
    "<option label='Moderator'><value>moderator</value></option>"
    "<option><value>visitor</value></option>"
    "<value>moderator</value><value>visitor</value></field>"
    "<field var='empty'/>"
    "<field var='blank'><value/></field>"
    "<desc>not kept</desc>"
    "<other xmlns='urn:example'><field var='not-a-field'/></other>"
    "<field var='dup'><value>first</value></field>"
    "<field var='dup'><value>second</value></field>"
    "</x>";

/* ---- parsing ----------------------------------------------------------------------------- */

static void test_parse_everything(void **state)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_form_t f;
    const char *why = "unset";
    assert_int_equal(parse(a, CONFIG_FORM, NULL, &f, &why), 0);
    assert_null(why);
    assert_int_equal(f.type, HEARTH_FORM_FORM);
    assert_string_equal(f.title, "Room configuration");
    assert_string_equal(f.instructions, "Change it.");
    assert_int_equal(f.nfields, 8); /* the extension's field is not one of them */
    assert_string_equal(hearth_form_form_type(&f), "http://jabber.org/protocol/muc#roomconfig");

    const hearth_form_field_t *fixed = &f.fields[1];
    assert_null(fixed->var);
    assert_string_equal(fixed->type, "fixed");
    assert_int_equal(fixed->nvalues, 1);

    const hearth_form_field_t *name = hearth_form_field(&f, "name");
    assert_ptr_equal(name, &f.fields[2]);
    assert_string_equal(name->type, "text-single");
    assert_string_equal(name->label, "Room name");
    assert_true(name->required);
    assert_string_equal(hearth_form_value(&f, "name"), "Lounge");

    const hearth_form_field_t *roles = hearth_form_field(&f, "roles");
    assert_false(roles->required);
    assert_int_equal(roles->nvalues, 2);
    assert_string_equal(roles->values[0], "moderator");
    assert_string_equal(roles->values[1], "visitor");
    assert_string_equal(hearth_form_value(&f, "roles"), "moderator"); /* the first */
    assert_int_equal(roles->noptions, 2);
    assert_string_equal(roles->options[0].label, "Moderator");
    assert_string_equal(roles->options[0].value, "moderator");
    assert_null(roles->options[1].label);
    assert_string_equal(roles->options[1].value, "visitor");

    /* A field without a value, and one with an empty value, are told apart. */
    const hearth_form_field_t *empty = hearth_form_field(&f, "empty");
    assert_non_null(empty);
    assert_null(empty->type);
    assert_int_equal(empty->nvalues, 0);
    assert_null(hearth_form_value(&f, "empty"));
    assert_string_equal(hearth_form_value(&f, "blank"), "");
    /* Lookups take the first of equal vars; absent vars give NULL. */
    assert_string_equal(hearth_form_value(&f, "dup"), "first");
    assert_null(hearth_form_field(&f, "not-a-field"));
    assert_null(hearth_form_value(&f, "nothing"));
    assert_null(hearth_form_field(&f, NULL));
    assert_null(hearth_form_field(NULL, "name"));
    hearth_arena_free(a);
}

static void test_types(void **state)
{
    static const struct {
        const char *attr;
        hearth_form_type_t t;
    } cases[] = {{"form", HEARTH_FORM_FORM},     {"submit", HEARTH_FORM_SUBMIT},
                 {"cancel", HEARTH_FORM_CANCEL}, {"result", HEARTH_FORM_RESULT},
                 {NULL, HEARTH_FORM_UNTYPED},    {"Submit", HEARTH_FORM_BADTYPE},
                 {"", HEARTH_FORM_BADTYPE}};
    hearth_arena_t *a = hearth_arena_new(0);
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char *xml = form_xml(cases[i].attr, "<field var='v'><value>1</value></field>");
        hearth_xml_node_t *x = tree(a, xml);
        assert_int_equal(hearth_form_type_of(x), cases[i].t);
        assert_int_equal(hearth_form_type_parse(cases[i].attr), cases[i].t);
        /* The type is reported, not judged: each use decides which it takes. */
        hearth_form_t f;
        assert_int_equal(hearth_form_parse(a, x, NULL, &f, NULL), 0);
        assert_int_equal(f.type, cases[i].t);
        if (cases[i].t != HEARTH_FORM_UNTYPED && cases[i].t != HEARTH_FORM_BADTYPE)
            assert_string_equal(hearth_form_type_name(cases[i].t), cases[i].attr);
        else
            assert_null(hearth_form_type_name(cases[i].t));
        free(xml);
    }
    assert_int_equal(hearth_form_type_of(NULL), HEARTH_FORM_UNTYPED);
    hearth_arena_free(a);
}

/* Text split over several text nodes is one value; markup inside a value is not its text. */
static void test_value_text(void **state)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *x = hearth_form_new(a, NULL, HEARTH_FORM_SUBMIT);
    hearth_xml_node_t *f = hearth_form_add_field(a, x, "v", NULL, NULL, NULL);
    hearth_xml_node_t *v = hearth_xml_add_child(a, f, "value", XDATA);
    hearth_xml_add_text(a, v, "ab", 2);
    hearth_xml_add_child(a, v, "b", "urn:example");
    hearth_xml_add_text(a, v, "cd", 2);
    hearth_xml_add_child(a, f, "value", "urn:example"); /* not a value of this form */
    hearth_form_t form;
    assert_int_equal(hearth_form_parse(a, x, NULL, &form, NULL), 0);
    assert_int_equal(form.fields[0].nvalues, 1);
    assert_string_equal(form.fields[0].values[0], "abcd");
    hearth_arena_free(a);
}

/* ---- malformed forms ----------------------------------------------------------------------- */

static void assert_refused(const char *xml, const hearth_form_limits_t *lim, int want_rc,
                           const char *want_why)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_form_t f;
    memset(&f, 0x5a, sizeof(f));
    const char *why = NULL;
    assert_int_equal(parse(a, xml, lim, &f, &why), want_rc);
    assert_non_null(why);
    assert_string_equal(why, want_why);
    /* Nothing half-parsed is left for a caller to trip on. */
    assert_int_equal(f.type, HEARTH_FORM_UNTYPED);
    assert_int_equal(f.nfields, 0);
    assert_null(f.fields);
    assert_null(f.title);
    hearth_arena_free(a);
}

static void test_malformed(void **state)
{
    /* Not a data form: another namespace, another element. */
    assert_refused("<x xmlns='jabber:x:oob' type='submit'/>", NULL, HEARTH_EINVAL,
                   "not a data form");
    assert_refused("<form xmlns='" XDATA "' type='submit'/>", NULL, HEARTH_EINVAL,
                   "not a data form");
    /* A field without var, unless it is fixed; even in a result or when it carries no value. */
    assert_refused("<x xmlns='" XDATA "' type='submit'><field var='a'/><field><value>1</value>"
                   "</field></x>",
                   NULL, HEARTH_EINVAL, "a field without var");
    assert_refused("<x xmlns='" XDATA "' type='result'><field type='text-single'/></x>", NULL,
                   HEARTH_EINVAL, "a field without var");
    /* An option is a value with a label. */
    assert_refused("<x xmlns='" XDATA "' type='form'><field var='l' type='list-single'>"
                   "<option label='x'/></field></x>",
                   NULL, HEARTH_EINVAL, "an option without a value");
    assert_refused("<x xmlns='" XDATA "' type='form'><field var='l' type='list-single'>"
                   "<option label='x'><value xmlns='urn:example'>v</value></option></field></x>",
                   NULL, HEARTH_EINVAL, "an option without a value");

    hearth_arena_t *a = hearth_arena_new(0);
    hearth_form_t f;
    const char *why = NULL;
    assert_int_equal(hearth_form_parse(a, NULL, NULL, &f, &why), HEARTH_EINVAL);
    assert_string_equal(why, "not a data form");
    hearth_xml_node_t *t = hearth_xml_new(a, "x", XDATA);
    hearth_xml_node_t *text = hearth_xml_add_text(a, t, "x", 1);
    assert_int_equal(hearth_form_parse(a, text, NULL, &f, NULL), HEARTH_EINVAL);
    hearth_arena_free(a);
}

/* ---- limits ------------------------------------------------------------------------------ */

/* A form with n of what piece makes, inside <x/> or inside one field. */
static void assert_count_limit(const char *piece, int in_field, size_t max,
                               const hearth_form_limits_t *lim, const char *why)
{
    for (size_t n = max; n <= max + 1; n++) {
        char *many = repeat(piece, n);
        char *body = many;
        if (in_field) {
            hearth_buf_t b = HEARTH_BUF_INIT;
            assert_int_equal(
                hearth_buf_printf(&b, "<field var='f' type='list-multi'>%s</field>", many), 0);
            body = hearth_buf_steal(&b, NULL);
        }
        char *xml = form_xml("submit", body);
        if (n == max) {
            hearth_arena_t *a = hearth_arena_new(0);
            hearth_form_t f;
            assert_int_equal(parse(a, xml, lim, &f, NULL), 0);
            hearth_arena_free(a);
        } else {
            assert_refused(xml, lim, HEARTH_ELIMIT, why);
        }
        if (body != many)
            free(body);
        free(many);
        free(xml);
    }
}

static void test_limits(void **state)
{
    /* The defaults. */
    assert_count_limit("<field var='f'/>", 0, HEARTH_FORM_FIELDS_MAX, NULL, "too many fields");
    /* Anything directly inside <x/> counts: the bound is on the work, not on what is kept. */
    assert_count_limit("<other xmlns='urn:example'/>", 0, HEARTH_FORM_FIELDS_MAX, NULL,
                       "too many fields");
    assert_count_limit("<value>v</value>", 1, HEARTH_FORM_VALUES_MAX, NULL,
                       "too many values in a field");
    assert_count_limit("<option><value>v</value></option>", 1, HEARTH_FORM_OPTIONS_MAX, NULL,
                       "too many options in a field");
    /* A caller's own, below and above the defaults. */
    hearth_form_limits_t lim = {.max_fields = 3, .max_values = 1000, .max_options = 2};
    assert_count_limit("<title>t</title>", 0, 3, &lim, "too many fields");
    assert_count_limit("<value>v</value>", 1, 1000, &lim, "too many values in a field");
    assert_count_limit("<option><value>v</value></option>", 1, 2, &lim,
                       "too many options in a field");

    /* Text: a value, an attribute, a title, an option's value, each on its own. */
    lim = (hearth_form_limits_t){.max_text = 8};
    static const char *const long_ones[] = {
        "<field var='f'><value>123456789</value></field>",
        "<field var='123456789'/>",
        "<field var='f' label='123456789'/>",
        "<field var='f' type='123456789'/>",
        "<title>123456789</title>",
        "<instructions>123456789</instructions>",
        "<field var='f'><option><value>123456789</value></option></field>",
        "<field var='f'><option label='123456789'><value>v</value></option></field>",
    };
    for (size_t i = 0; i < sizeof(long_ones) / sizeof(*long_ones); i++) {
        char *xml = form_xml("form", long_ones[i]);
        assert_refused(xml, &lim, HEARTH_ELIMIT, "a value, label or title too long");
        free(xml);
    }
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_form_t f;
    char *xml = form_xml("form", "<title>12345678</title><field var='12345678' label='12345678'>"
                                 "<value>12345678</value></field>");
    assert_int_equal(parse(a, xml, &lim, &f, NULL), 0);
    free(xml);
    /* The default text bound. */
    char *big = repeat("x", HEARTH_FORM_TEXT_MAX + 1);
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_buf_printf(&b, "<field var='f'><value>%s</value></field>", big), 0);
    xml = form_xml("submit", b.data);
    assert_refused(xml, NULL, HEARTH_ELIMIT, "a value, label or title too long");
    free(xml);
    big[HEARTH_FORM_TEXT_MAX] = '\0';
    hearth_buf_reset(&b);
    assert_int_equal(hearth_buf_printf(&b, "<field var='f'><value>%s</value></field>", big), 0);
    xml = form_xml("submit", b.data);
    assert_int_equal(parse(a, xml, NULL, &f, NULL), 0);
    assert_int_equal(strlen(f.fields[0].values[0]), HEARTH_FORM_TEXT_MAX);
    free(xml);
    free(big);
    hearth_buf_free(&b);
    hearth_arena_free(a);
}

/* ---- building ---------------------------------------------------------------------------- */

static void test_build_tree(void **state)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *q = hearth_xml_new(a, "query", "http://jabber.org/protocol/muc#owner");
    hearth_xml_node_t *x = hearth_form_new(a, q, HEARTH_FORM_FORM);
    assert_ptr_equal(x->parent, q);
    assert_non_null(hearth_form_add_title(a, x, "Configure <room>"));
    assert_non_null(hearth_form_add_instructions(a, x, ""));
    assert_non_null(hearth_form_add_form_type(a, x, "urn:example:form"));
    hearth_xml_node_t *f = hearth_form_add_field(a, x, "pm", "list-single", "Who & how", NULL);
    assert_non_null(hearth_form_add_option(a, f, "Any'one", "anyone"));
    assert_non_null(hearth_form_add_option(a, f, NULL, "none"));
    assert_non_null(hearth_form_add_value(a, f, "anyone"));
    hearth_xml_node_t *n = hearth_form_add_field(a, x, "nick", "text-single", NULL, "");
    assert_non_null(hearth_form_add_required(a, n));
    assert_non_null(hearth_form_add_field(a, x, NULL, "fixed", NULL, "\"quoted\" <b>&amp;</b>"));
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_xml_serialize(q, NULL, &b), 0);
    assert_string_equal(
        b.data, "<query xmlns='http://jabber.org/protocol/muc#owner'>"
                "<x xmlns='jabber:x:data' type='form'><title>Configure &lt;room&gt;</title>"
                "<instructions></instructions>"
                "<field var='FORM_TYPE' type='hidden'><value>urn:example:form</value></field>"
                "<field var='pm' type='list-single' label='Who &amp; how'>"
                "<option label='Any&apos;one'><value>anyone</value></option>"
                "<option><value>none</value></option><value>anyone</value></field>"
                "<field var='nick' type='text-single'><value></value><required/></field>"
                "<field type='fixed'><value>\"quoted\" &lt;b&gt;&amp;amp;&lt;/b&gt;</value></field>"
                "</x></query>");
    hearth_buf_free(&b);
    /* What the builders made parses back, the escaped text as it was given. */
    hearth_form_t form;
    assert_int_equal(hearth_form_parse(a, x, NULL, &form, NULL), 0);
    assert_string_equal(form.title, "Configure <room>");
    assert_string_equal(hearth_form_field(&form, "pm")->label, "Who & how");
    assert_string_equal(hearth_form_field(&form, "pm")->options[0].label, "Any'one");
    assert_true(hearth_form_field(&form, "nick")->required);
    assert_string_equal(form.fields[3].values[0], "\"quoted\" <b>&amp;</b>");

    /* Only the four types; a NULL parent stops a chain without a crash. */
    assert_null(hearth_form_new(a, NULL, HEARTH_FORM_UNTYPED));
    assert_null(hearth_form_new(a, NULL, HEARTH_FORM_BADTYPE));
    assert_null(hearth_form_add_field(a, NULL, "v", NULL, NULL, "1"));
    assert_null(hearth_form_add_value(a, NULL, "1"));
    assert_null(hearth_form_add_option(a, NULL, "l", "1"));
    assert_null(hearth_form_add_required(a, NULL));
    assert_null(hearth_form_add_title(a, NULL, "t"));
    assert_null(hearth_form_add_form_type(a, NULL, "urn:x"));
    hearth_arena_free(a);
}

/* A form made by a caller as a struct, written as bytes: exact, escaped, with its namespace
 * declared only where the context does not already give it. */
static void test_write_struct(void **state)
{
    static const char *const ft[] = {"urn:xmpp:mam:2"};
    static const char *const multi[] = {"a@example.org", "b'<c>@example.org"};
    static const hearth_form_option_t opts[] = {{"Yes & no", "1"}, {NULL, "0"}};
    const hearth_form_field_t fields[] = {
        {.var = "FORM_TYPE", .type = "hidden", .values = ft, .nvalues = 1},
        {.var = "with", .type = "jid-multi", .values = multi, .nvalues = 2, .required = 1},
        {.var = "flag", .type = "list-single", .label = "Flag", .options = opts, .noptions = 2},
        {.var = "end"},
    };
    hearth_form_t f = {.type = HEARTH_FORM_RESULT,
                       .title = "T&T",
                       .instructions = "Say \"hi\"",
                       .fields = fields,
                       .nfields = 4};
    static const char want_body[] =
        " type='result'><title>T&amp;T</title><instructions>Say \"hi\"</instructions>"
        "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
        "<field var='with' type='jid-multi'><required/><value>a@example.org</value>"
        "<value>b'&lt;c&gt;@example.org</value></field>"
        "<field var='flag' type='list-single' label='Flag'>"
        "<option label='Yes &amp; no'><value>1</value></option><option><value>0</value></option>"
        "</field><field var='end'/></x>";
    char *got = written(&f, "urn:xmpp:mam:2");
    char want[1024];
    snprintf(want, sizeof(want), "<x xmlns='jabber:x:data'%s", want_body);
    assert_string_equal(got, want);
    free(got);
    got = written(&f, XDATA);
    snprintf(want, sizeof(want), "<x%s", want_body);
    assert_string_equal(got, want);
    free(got);

    /* Appends; leaves out as it was when it refuses. */
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_buf_append_str(&b, "<query>"), 0);
    f.type = HEARTH_FORM_UNTYPED;
    assert_int_equal(hearth_form_write(&f, NULL, &b), HEARTH_EINVAL);
    f.type = HEARTH_FORM_BADTYPE;
    assert_int_equal(hearth_form_write(&f, NULL, &b), HEARTH_EINVAL);
    assert_string_equal(b.data, "<query>");
    f.type = HEARTH_FORM_SUBMIT;
    assert_int_equal(hearth_form_write(&f, NULL, &b), 0);
    assert_int_equal(strncmp(b.data, "<query><x xmlns='jabber:x:data' type='submit'>", 46), 0);
    hearth_buf_free(&b);
    assert_int_equal(hearth_form_write(NULL, NULL, &b), HEARTH_EINVAL);
    assert_int_equal(hearth_form_write(&f, NULL, NULL), HEARTH_EINVAL);
    hearth_arena_t *a = hearth_arena_new(0);
    assert_null(hearth_form_to_xml(a, NULL, NULL));
    hearth_arena_free(a);
}

/* parse -> write -> parse gives the same form, and writing it again the same bytes. */
static void test_round_trip(void **state)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_form_t first, second;
    assert_int_equal(parse(a, CONFIG_FORM, NULL, &first, NULL), 0);
    char *bytes = written(&first, NULL);
    assert_int_equal(parse(a, bytes, NULL, &second, NULL), 0);
    assert_same_form(&first, &second);
    char *again = written(&second, NULL);
    assert_string_equal(bytes, again);
    free(again);
    free(bytes);

    /* The tree form, attached to a parent, reads the same. */
    hearth_xml_node_t *q = hearth_xml_new(a, "query", "urn:example");
    hearth_xml_node_t *x = hearth_form_to_xml(a, q, &first);
    assert_non_null(x);
    assert_ptr_equal(hearth_xml_child(q, "x", XDATA), x);
    assert_int_equal(hearth_form_parse(a, x, NULL, &second, NULL), 0);
    assert_same_form(&first, &second);
    hearth_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_everything), cmocka_unit_test(test_types),
        cmocka_unit_test(test_value_text),       cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),           cmocka_unit_test(test_build_tree),
        cmocka_unit_test(test_write_struct),     cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
