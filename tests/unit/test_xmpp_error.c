/* Unit tests for the stanza error builders: hearth_stanza_error_write (bytes, lib/xmpp_error.c)
 * and hearth_xml_add_stanza_error (tree, lib/xml/node.c) give the same, exact bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hearth/xml.h"
#include "hearth/xmpp_error.h"

#define STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

static char *written(hearth_stanza_error_t cond, const char *text)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_stanza_error_write(&b, cond, text), 0);
    return hearth_buf_steal(&b, NULL);
}

/* The tree form, added to an <iq/> in jabber:client and serialised in that context. */
static char *built(hearth_stanza_error_t cond, const char *text)
{
    hearth_arena_t *a = hearth_arena_new(0);
    assert_non_null(a);
    hearth_xml_node_t *iq = hearth_xml_new(a, "iq", "jabber:client");
    assert_non_null(iq);
    hearth_xml_node_t *e = hearth_xml_add_stanza_error(a, iq, cond, text);
    assert_non_null(e);
    assert_ptr_equal(e->parent, iq);
    assert_string_equal(e->ns, "jabber:client");
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_xml_serialize(e, "jabber:client", &b), 0);
    hearth_arena_free(a);
    return hearth_buf_steal(&b, NULL);
}

static void assert_both(hearth_stanza_error_t cond, const char *text, const char *want)
{
    char *w = written(cond, text), *t = built(cond, text);
    assert_string_equal(w, want);
    assert_string_equal(t, want);
    free(w);
    free(t);
}

static void test_condition_and_type(void **state)
{
    assert_both(HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL,
                "<error type='cancel'><item-not-found xmlns='" STANZAS "'/></error>");
    assert_both(HEARTH_STANZA_ERR_BAD_REQUEST, NULL,
                "<error type='modify'><bad-request xmlns='" STANZAS "'/></error>");
    assert_both(HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL,
                "<error type='wait'><resource-constraint xmlns='" STANZAS "'/></error>");
}

static void test_text_escaped(void **state)
{
    assert_both(HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "a < b & 'c' > \"d\"",
                "<error type='modify'><not-acceptable xmlns='" STANZAS "'/><text xmlns='" STANZAS
                "'>a &lt; b &amp; 'c' &gt; \"d\"</text></error>");
    assert_both(HEARTH_STANZA_ERR_FORBIDDEN, "",
                "<error type='auth'><forbidden xmlns='" STANZAS "'/><text xmlns='" STANZAS
                "'></text></error>");
}

static void test_write_appends(void **state)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_buf_append_str(&b, "<iq type='error'>"), 0);
    assert_int_equal(hearth_stanza_error_write(&b, HEARTH_STANZA_ERR_CONFLICT, NULL), 0);
    assert_int_equal(hearth_buf_append_str(&b, "</iq>"), 0);
    assert_string_equal(b.data, "<iq type='error'><error type='cancel'><conflict xmlns='" STANZAS
                                "'/></error></iq>");
    hearth_buf_free(&b);
    assert_int_equal(hearth_stanza_error_write(NULL, HEARTH_STANZA_ERR_CONFLICT, NULL),
                     HEARTH_EINVAL);
}

/* The error is in the stanza's namespace, whatever it is, and goes after the existing children. */
static void test_tree_in_stanza_namespace(void **state)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *m = hearth_xml_new(a, "message", "jabber:server");
    hearth_xml_node_t *body = hearth_xml_add_child(a, m, "body", NULL);
    hearth_xml_add_text(a, body, "hi", 2);
    assert_non_null(hearth_xml_add_stanza_error(a, m, HEARTH_STANZA_ERR_GONE, "moved"));
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_xml_serialize(m, "jabber:server", &b), 0);
    assert_string_equal(b.data, "<message><body>hi</body><error type='cancel'><gone xmlns='" STANZAS
                                "'/><text xmlns='" STANZAS "'>moved</text></error></message>");
    hearth_buf_free(&b);
    /* Not on a text node, nor on nothing. */
    assert_null(hearth_xml_add_stanza_error(a, body->children, HEARTH_STANZA_ERR_GONE, NULL));
    assert_null(hearth_xml_add_stanza_error(a, NULL, HEARTH_STANZA_ERR_GONE, NULL));
    hearth_arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_condition_and_type),
        cmocka_unit_test(test_text_escaped),
        cmocka_unit_test(test_write_appends),
        cmocka_unit_test(test_tree_in_stanza_namespace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
