/* Unit tests for the admin listener's doors (server/admin/admin.c): which peers count as
 * loopback for the first-run setup (the socket's address, as text from libuv), and which Host
 * headers the API answers (DNS rebinding). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "admin/console.h"
#include "admin/internal.h"

static void loopback_peers(void **state)
{
    (void)state;
    const char *yes[] = {"127.0.0.1", "127.0.0.2",        "127.255.255.254",
                         "::1",       "::ffff:127.0.0.1", "::FFFF:127.1.2.3"};
    const char *no[] = {"10.0.0.1",        "192.168.1.2", "::2", "::", "0.0.0.0",    "1.127.0.0",
                        "::ffff:10.0.0.1", "fe80::1",     "127", "",   "1270.0.0.1", "::1:1"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
        assert_true(admin__loopback(yes[i]));
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
        assert_false(admin__loopback(no[i]));
}

static void host_header(void **state)
{
    (void)state;
    admin__st.host = "console.example.org";
    const char *yes[] = {"localhost",  "localhost:9090",      "LocalHost",
                         "127.0.0.1",  "127.0.0.1:1",         "[::1]",
                         "[::1]:9090", "console.example.org", "CONSOLE.example.org:443"};
    const char *no[] = {NULL,
                        "",
                        "localhost.",
                        "localhost:",
                        "localhost:x",
                        "localhost:123456",
                        "localhost:90:90",
                        "evil.example",
                        "localhost.evil.example",
                        "127.0.0.1.nip.io",
                        "127.0.0.2",
                        "::1",
                        "[::1",
                        "[::2]",
                        "[::1]x",
                        "console.example.org.evil",
                        "example.org",
                        "localhost@evil"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(*yes); i++)
        assert_true(admin__host_ok(yes[i]));
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
        assert_false(admin__host_ok(no[i]));
    admin__st.host = "";
    assert_false(admin__host_ok("console.example.org"));
    assert_false(admin__host_ok(":80"));
    admin__st.host = NULL;
}

/* The console's one escaping function, through html_f: %s escapes, %u percent-encodes, %r is
 * the only way to write markup. */
static void html_escaping(void **state)
{
    (void)state;
    html_t h = {HEARTH_BUF_INIT, 0};
    html_f(&h, "<p title=\"%s\">%s</p><a href=\"/users/%u\">%r</a> %d %lld %zu 100%%",
           "\"><script>alert('x')</script>", "a & b <i>", "j.doe+x%y/../", "<b>ok</b>", -3,
           (long long)1 << 40, (size_t)7);
    assert_false(h.err);
    const char *want = "<p title=\"&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;\">"
                       "a &amp; b &lt;i&gt;</p><a href=\"/users/j.doe%2Bx%25y%2F..%2F\">"
                       "<b>ok</b></a> -3 1099511627776 7 100%";
    assert_int_equal(h.b.len, strlen(want));
    assert_memory_equal(h.b.data, want, h.b.len);
    html_free(&h);
    /* Control characters (but tab and newline) cannot reach a page; NULL prints nothing. */
    html_t c = {HEARTH_BUF_INIT, 0};
    html_f(&c, "[%s][%s][%u]",
           "a\x01"
           "b\tc\nd\x7f",
           (const char *)NULL, (const char *)NULL);
    assert_false(c.err);
    const char *cw = "[a\xef\xbf\xbd"
                     "b\tc\nd\xef\xbf\xbd][][]";
    assert_int_equal(c.b.len, strlen(cw));
    assert_memory_equal(c.b.data, cw, c.b.len);
    html_free(&c);
    /* A format it does not know is an error, never output. */
    html_t e = {HEARTH_BUF_INIT, 0};
    html_f(&e, "%x", 1);
    assert_true(e.err);
    html_free(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loopback_peers),
        cmocka_unit_test(host_header),
        cmocka_unit_test(html_escaping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
