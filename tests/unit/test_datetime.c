/* Unit tests for XEP-0082 date-times (lib/datetime.c), the one parser and formatter that the
 * archive, rooms, offline delays and XEP-0227 imports share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "hearth/datetime.h"

static int64_t parsed(const char *s)
{
    int64_t ms = 0;
    assert_int_equal(hearth_datetime_parse(s, &ms), 0);
    return ms;
}

static void test_parse(void **state)
{
    (void)state;
    assert_int_equal(parsed("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(parsed("2002-09-10T23:08:25Z"), 1031699305000);
    assert_int_equal(parsed("2002-09-10T23:08:25.5Z"), 1031699305500);
    assert_int_equal(parsed("2002-09-10T23:08:25.123456Z"), 1031699305123);
    assert_int_equal(parsed("2002-09-10T23:08:25-07:00"), 1031699305000 + 7 * 3600000);
    assert_int_equal(parsed("2002-09-11T01:08:25+02:00"), 1031699305000);
}

static void test_malformed(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "2002-09-10",
                         "2002-09-10T23:08:25",
                         "2002-09-10T23:08:25.Z",
                         "2002-09-10T23:08:25Zjunk",
                         " 2002-09-10T23:08:25Z",
                         "2002-13-10T23:08:25Z",
                         "2002-09-10T24:08:25Z",
                         "2002-09-10T23:08:25+7:00",
                         "2002-09-10T23:08:25+07:60",
                         "02-09-10T23:08:25Z"};
    int64_t ms = 42;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(hearth_datetime_parse(bad[i], &ms), -1);
    assert_int_equal(hearth_datetime_parse(NULL, &ms), -1);
    assert_int_equal(ms, 42); /* untouched */
}

static void test_format_round_trip(void **state)
{
    (void)state;
    char out[HEARTH_DATETIME_MAX];
    hearth_datetime_format(1031699305123, out, sizeof(out));
    assert_string_equal(out, "2002-09-10T23:08:25.123Z");
    assert_int_equal(parsed(out), 1031699305123);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_format_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
