/* Unit tests for the growable buffer, refcounted bytes, XML escaping and the error tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hearth/buf.h"
#include "hearth/error.h"
#include "hearth/xmpp_error.h"

static void test_append_and_consume(void **state)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_buf_append_str(&b, "hello"), 0);
    assert_int_equal(hearth_buf_printf(&b, " %d %s", 42, "world"), 0);
    assert_string_equal(b.data, "hello 42 world");
    assert_int_equal(b.len, 14);
    hearth_buf_consume(&b, 6);
    assert_string_equal(b.data, "42 world");
    hearth_buf_consume(&b, 100);
    assert_int_equal(b.len, 0);
    assert_string_equal(b.data, "");
    /* growth across many reallocations keeps the content */
    for (int i = 0; i < 10000; i++)
        assert_int_equal(hearth_buf_append(&b, "x", 1), 0);
    assert_int_equal(b.len, 10000);
    assert_int_equal(b.data[10000], '\0');
    size_t len = 0;
    char *p = hearth_buf_steal(&b, &len);
    assert_int_equal(len, 10000);
    assert_null(b.data);
    free(p);
    hearth_buf_free(&b);
}

/* printf formats into the room there is and again only when it did not fit: outputs shorter
 * and longer than that room, from empty and from partly filled buffers, are whole. */
static void test_printf_sizes(void **state)
{
    (void)state;
    char big[1001];
    memset(big, 'z', 1000);
    big[1000] = '\0';
    size_t widths[] = {0, 1, 100, 127, 128, 129, 200, 1000};
    for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
        for (size_t pre = 0; pre < 300; pre += 37) {
            hearth_buf_t b = HEARTH_BUF_INIT;
            for (size_t k = 0; k < pre; k++)
                assert_int_equal(hearth_buf_append(&b, "p", 1), 0);
            assert_int_equal(hearth_buf_printf(&b, "<%.*s>", (int)widths[i], big), 0);
            assert_int_equal(b.len, pre + widths[i] + 2);
            assert_int_equal(b.data[b.len], '\0');
            assert_int_equal(b.data[pre], '<');
            assert_int_equal(b.data[b.len - 1], '>');
            for (size_t k = 0; k < widths[i]; k++)
                assert_int_equal(b.data[pre + 1 + k], 'z');
            hearth_buf_free(&b);
        }
    }
}

static void test_escaping(void **state)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    const char *in = "a&b<c>d\"e'f\xe4\xbd\xa0";
    assert_int_equal(hearth_buf_append_escaped(&b, in, strlen(in)), 0);
    assert_string_equal(b.data, "a&amp;b&lt;c&gt;d&quot;e&apos;f\xe4\xbd\xa0");
    assert_true(hearth_buf_escaped_len(in) >= b.len);
    assert_true(hearth_buf_escaped_len(in) <= b.len + 1); /* &amp; counted as 6 */
    hearth_buf_reset(&b);
    assert_int_equal(hearth_buf_append_text_escaped(&b, in, strlen(in)), 0);
    assert_string_equal(b.data, "a&amp;b&lt;c&gt;d\"e'f\xe4\xbd\xa0");
    hearth_buf_reset(&b);
    assert_int_equal(hearth_buf_append_escaped(&b, "", 0), 0);
    assert_int_equal(b.len, 0);
    /* Tab, LF and CR survive a parser only as character references: in an attribute a parser
     * reads them as spaces, and a literal CR anywhere as LF (XML 1.0 §2.11, §3.3.3). */
    const char *ws = "a\tb\nc\rd";
    assert_int_equal(hearth_buf_append_escaped(&b, ws, strlen(ws)), 0);
    assert_string_equal(b.data, "a&#9;b&#10;c&#13;d");
    assert_true(hearth_buf_escaped_len(ws) >= b.len);
    hearth_buf_reset(&b);
    assert_int_equal(hearth_buf_append_text_escaped(&b, ws, strlen(ws)), 0);
    assert_string_equal(b.data, "a\tb\nc&#13;d");
    hearth_buf_free(&b);
}

static void test_bytes_refcount(void **state)
{
    hearth_bytes_t *b = hearth_bytes_new("abc", 3);
    assert_non_null(b);
    assert_int_equal(b->len, 3);
    assert_string_equal(b->data, "abc");
    hearth_bytes_t *r = hearth_bytes_ref(b);
    assert_ptr_equal(r, b);
    hearth_bytes_unref(b);
    assert_string_equal(r->data, "abc"); /* still alive: one reference left */
    hearth_bytes_unref(r);
    hearth_bytes_unref(NULL);
    hearth_bytes_t *empty = hearth_bytes_new(NULL, 0);
    assert_non_null(empty);
    assert_string_equal(empty->data, "");
    hearth_bytes_unref(empty);
}

static void test_error_tables(void **state)
{
    assert_string_equal(hearth_strerror(HEARTH_OK), "success");
    assert_string_equal(hearth_err_name(HEARTH_ENOMEM), "ENOMEM");
    assert_string_equal(hearth_strerror(HEARTH_ELIMIT), "limit exceeded");
    assert_string_equal(hearth_err_name(-999), "EUNKNOWN");
    assert_string_equal(hearth_stream_error_name(HEARTH_STREAM_ERR_RESTRICTED_XML),
                        "restricted-xml");
    assert_string_equal(hearth_stanza_error_name(HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE),
                        "service-unavailable");
    assert_string_equal(hearth_stanza_error_type(HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT), "wait");
    assert_string_equal(hearth_stanza_error_type(HEARTH_STANZA_ERR_BAD_REQUEST), "modify");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_and_consume), cmocka_unit_test(test_printf_sizes),
        cmocka_unit_test(test_escaping),           cmocka_unit_test(test_bytes_refcount),
        cmocka_unit_test(test_error_tables),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
