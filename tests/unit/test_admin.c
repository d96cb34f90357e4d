/* Unit tests for the admin listener's doors (server/admin/admin.c): which peers count as
 * loopback for the first-run setup (the socket's address, as text from libuv), and which Host
 * headers the API answers (DNS rebinding). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loopback_peers),
        cmocka_unit_test(host_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
