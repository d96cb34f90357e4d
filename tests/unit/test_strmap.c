/* Unit tests for the string-keyed hash map used for users, rooms and per-IP counters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "core/strmap.h"

static void test_put_get_remove_grow(void **state)
{
    strmap_t m;
    assert_int_equal(strmap_init(&m), 0);
    char key[32];
    for (uintptr_t i = 1; i <= 5000; i++) { /* many growths */
        snprintf(key, sizeof(key), "user%lu@localhost", (unsigned long)i);
        assert_int_equal(strmap_put(&m, key, (void *)i), 0);
    }
    assert_int_equal(m.count, 5000);
    for (uintptr_t i = 1; i <= 5000; i++) {
        snprintf(key, sizeof(key), "user%lu@localhost", (unsigned long)i);
        assert_ptr_equal(strmap_get(&m, key), (void *)i);
    }
    assert_null(strmap_get(&m, "nobody@localhost"));
    assert_int_equal(strmap_put(&m, "user1@localhost", (void *)7), 0); /* replaces */
    assert_int_equal(m.count, 5000);
    assert_ptr_equal(strmap_get(&m, "user1@localhost"), (void *)7);
    assert_ptr_equal(strmap_remove(&m, "user1@localhost"), (void *)7);
    assert_null(strmap_remove(&m, "user1@localhost"));
    assert_int_equal(m.count, 4999);
    size_t seen = 0;
    STRMAP_FOREACH(&m, e)
    {
        strmap_remove(&m, e->key); /* removal while iterating is allowed */
        seen++;
    }
    assert_int_equal(seen, 4999);
    assert_int_equal(m.count, 0);
    strmap_free(&m);
}

static void test_hash_is_stable(void **state)
{
    /* FNV-1a 64: the home worker of a JID must not change between builds or runs. */
    assert_true(strmap_hash("") == 14695981039346656037ULL);
    assert_true(strmap_hash("a") == 0xaf63dc4c8601ec8cULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_remove_grow),
        cmocka_unit_test(test_hash_is_stable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
