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

/* An empty map holds no memory: buckets come with the first put and go with the last remove,
 * also when the last one is removed inside STRMAP_FOREACH. */
static void test_empty_map_holds_nothing(void **state)
{
    strmap_t m;
    assert_int_equal(strmap_init(&m), 0);
    assert_null(m.buckets);
    assert_null(strmap_get(&m, "a"));
    assert_null(strmap_remove(&m, "a"));
    STRMAP_FOREACH(&m, e)
    fail();
    assert_int_equal(strmap_put(&m, "a", (void *)1), 0);
    assert_int_equal(strmap_put(&m, "b", (void *)2), 0);
    assert_non_null(m.buckets);
    assert_ptr_equal(strmap_remove(&m, "a"), (void *)1);
    assert_non_null(m.buckets);
    assert_ptr_equal(strmap_remove(&m, "b"), (void *)2);
    assert_null(m.buckets);
    assert_int_equal(m.count, 0);
    for (uintptr_t i = 1; i <= 100; i++) {
        char key[16];
        snprintf(key, sizeof(key), "k%lu", (unsigned long)i);
        assert_int_equal(strmap_put(&m, key, (void *)i), 0);
    }
    size_t seen = 0;
    STRMAP_FOREACH(&m, e)
    {
        seen++;
        assert_non_null(strmap_remove(&m, e->key));
    }
    assert_int_equal(seen, 100);
    assert_null(m.buckets);
    strmap_free(&m);
}

static void test_home_hash_is_stable(void **state)
{
    /* FNV-1a 64: the home worker of a JID must not change between builds or runs. */
    assert_true(strmap_stable_hash("") == 14695981039346656037ULL);
    assert_true(strmap_stable_hash("a") == 0xaf63dc4c8601ec8cULL);
}

static void test_siphash_vectors(void **state)
{
    /* The reference vectors of the SipHash paper: key 00..0f, messages 00..(n-1). */
    uint64_t key[2] = {0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
    unsigned char msg[16];
    for (int i = 0; i < 16; i++)
        msg[i] = (unsigned char)i;
    assert_true(strmap__siphash(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
    assert_true(strmap__siphash(key, msg, 1) == 0x74f839c593dc67fdULL);
    assert_true(strmap__siphash(key, msg, 15) == 0xa129ca6149be45e5ULL);
}

/* Regression: the tables hashed with unseeded FNV-1a, so keys chosen offline (roster items,
 * blocked JIDs, nicknames) could all fall into one chain. 300 keys whose FNV-1a hashes share
 * their low 10 bits would sit in one bucket of a 256-bucket table; keyed hashing spreads them. */
static void test_chosen_collisions_spread(void **state)
{
    strmap_t m;
    assert_int_equal(strmap_init(&m), 0);
    char key[48];
    size_t found = 0;
    for (unsigned long i = 0; found < 300; i++) {
        snprintf(key, sizeof(key), "contact%lu@example.org", i);
        if ((strmap_stable_hash(key) & 1023) != 0)
            continue;
        assert_int_equal(strmap_put(&m, key, (void *)1), 0);
        found++;
    }
    assert_true(m.nbuckets <= 1024);
    size_t longest = 0;
    for (size_t b = 0; b < m.nbuckets; b++) {
        size_t n = 0;
        for (strmap_entry_t *e = m.buckets[b]; e; e = e->next)
            n++;
        longest = n > longest ? n : longest;
    }
    assert_true(longest < 20); /* about 2 expected; 300 with the unkeyed hash */
    strmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_remove_grow),
        cmocka_unit_test(test_empty_map_holds_nothing),
        cmocka_unit_test(test_home_hash_is_stable),
        cmocka_unit_test(test_siphash_vectors),
        cmocka_unit_test(test_chosen_collisions_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
