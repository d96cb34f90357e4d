/* Unit tests for server/core/authguard.c: the three budgets (address, address and account,
 * account), what gives attempts back, regaining over time with a clock given by the test, and
 * the bound on the table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/authguard.h"

#define SEC 1000000000ull
#define MIN (60 * SEC)

static const authguard_limits_t defaults = {
    .ip_burst = 30,
    .ip_per_min = 10,
    .pair_burst = 5,
    .pair_per_min = 1,
    .account_burst = 50,
    .account_per_min = 30,
    .account_delay_ms = 2000,
};

/* One attempt at time t, settled with outcome; returns begin's result, *delay its delay. */
static int attempt(authguard_t *g, uint64_t t, const char *ip, const char *account,
                   authguard_outcome_t outcome, unsigned *delay, const char **newly)
{
    authguard_ticket_t *tk = (authguard_ticket_t *)1;
    authguard_verdict_t v;
    int rc = authguard__begin_at(g, t, ip, account, &tk, &v);
    if (rc)
        assert_null(tk);
    else
        assert_non_null(tk);
    authguard__end(g, tk, outcome);
    if (delay)
        *delay = v.delay_ms;
    if (newly)
        *newly = v.newly_throttled;
    return rc;
}

static void test_pair_budget(void **state)
{
    authguard_t *g = authguard_new(&defaults);
    assert_non_null(g);
    uint64_t t = 1000 * SEC;
    const char *newly;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(attempt(g, t, "192.0.2.1", "alice", AUTHGUARD_FAILED, NULL, &newly), 0);
        assert_null(newly);
    }
    assert_int_equal(attempt(g, t, "192.0.2.1", "alice", AUTHGUARD_FAILED, NULL, &newly),
                     HEARTH_ELIMIT);
    assert_string_equal(newly, "address and account");
    /* Said once; refused as long as it stays empty. */
    assert_int_equal(attempt(g, t, "192.0.2.1", "alice", AUTHGUARD_FAILED, NULL, &newly),
                     HEARTH_ELIMIT);
    assert_null(newly);
    /* Another account from that address, that account from another address: untouched. */
    assert_int_equal(attempt(g, t, "192.0.2.1", "bob", AUTHGUARD_SUCCEEDED, NULL, NULL), 0);
    assert_int_equal(attempt(g, t, "192.0.2.2", "alice", AUTHGUARD_SUCCEEDED, NULL, NULL), 0);
    /* One failure regained per minute; fractions do not count. */
    assert_int_equal(attempt(g, t + 59 * SEC, "192.0.2.1", "alice", AUTHGUARD_FAILED, NULL, NULL),
                     HEARTH_ELIMIT);
    assert_int_equal(attempt(g, t + MIN, "192.0.2.1", "alice", AUTHGUARD_FAILED, NULL, NULL), 0);
    assert_int_equal(attempt(g, t + MIN, "192.0.2.1", "alice", AUTHGUARD_FAILED, NULL, NULL),
                     HEARTH_ELIMIT);
    /* Regaining stops at the burst. */
    t += 60 * MIN;
    for (int i = 0; i < 5; i++)
        assert_int_equal(attempt(g, t, "192.0.2.1", "alice", AUTHGUARD_FAILED, NULL, NULL), 0);
    assert_int_equal(attempt(g, t, "192.0.2.1", "alice", AUTHGUARD_FAILED, NULL, NULL),
                     HEARTH_ELIMIT);
    authguard_free(g);
}

static void test_what_gives_back(void **state)
{
    authguard_t *g = authguard_new(&defaults);
    uint64_t t = SEC;
    /* Unchecked attempts cost nothing. */
    for (int i = 0; i < 100; i++)
        assert_int_equal(attempt(g, t, "192.0.2.1", "alice", AUTHGUARD_UNCHECKED, NULL, NULL), 0);
    /* A success refills the pair: four failures, a success, five failures more. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(attempt(g, t, "192.0.2.1", "alice", AUTHGUARD_FAILED, NULL, NULL), 0);
    assert_int_equal(attempt(g, t, "192.0.2.1", "alice", AUTHGUARD_SUCCEEDED, NULL, NULL), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(attempt(g, t, "192.0.2.1", "alice", AUTHGUARD_FAILED, NULL, NULL), 0);
    assert_int_equal(attempt(g, t, "192.0.2.1", "alice", AUTHGUARD_FAILED, NULL, NULL),
                     HEARTH_ELIMIT);
    /* Attempts in flight hold their reservation: six at once cannot all be checked. */
    authguard_ticket_t *tk[6];
    authguard_verdict_t v;
    for (int i = 0; i < 5; i++)
        assert_int_equal(authguard__begin_at(g, t, "192.0.2.9", "carol", &tk[i], &v), 0);
    assert_int_equal(authguard__begin_at(g, t, "192.0.2.9", "carol", &tk[5], &v), HEARTH_ELIMIT);
    for (int i = 0; i < 5; i++)
        authguard__end(g, tk[i], AUTHGUARD_UNCHECKED);
    assert_int_equal(authguard__begin_at(g, t, "192.0.2.9", "carol", &tk[5], &v), 0);
    authguard__end(g, tk[5], AUTHGUARD_FAILED);
    authguard__end(g, NULL, AUTHGUARD_FAILED); /* nothing to settle */
    authguard_free(g);
}

static void test_address_budget(void **state)
{
    authguard_t *g = authguard_new(&defaults);
    uint64_t t = SEC;
    char name[32];
    const char *newly;
    /* One password against many accounts: the address runs out after 30. */
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof(name), "user%d", i);
        assert_int_equal(attempt(g, t, "2001:db8::1", name, AUTHGUARD_FAILED, NULL, NULL), 0);
    }
    assert_int_equal(attempt(g, t, "2001:db8::1", "user99", AUTHGUARD_FAILED, NULL, &newly),
                     HEARTH_ELIMIT);
    assert_string_equal(newly, "address");
    /* Names that cannot log in count on the address only. */
    assert_int_equal(attempt(g, t, "2001:db8::1", NULL, AUTHGUARD_FAILED, NULL, NULL),
                     HEARTH_ELIMIT);
    assert_int_equal(attempt(g, t, "2001:db8::2", NULL, AUTHGUARD_FAILED, NULL, NULL), 0);
    /* Ten a minute come back. */
    t += MIN;
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof(name), "more%d", i);
        assert_int_equal(attempt(g, t, "2001:db8::1", name, AUTHGUARD_FAILED, NULL, NULL), 0);
    }
    assert_int_equal(attempt(g, t, "2001:db8::1", "more99", AUTHGUARD_FAILED, NULL, NULL),
                     HEARTH_ELIMIT);
    authguard_free(g);
}

static void test_account_budget_delays_never_refuses(void **state)
{
    authguard_t *g = authguard_new(&defaults);
    uint64_t t = SEC;
    char ip[32];
    unsigned delay;
    const char *newly;
    /* 50 failures from 25 addresses (two each, within their pair budgets). */
    for (int i = 0; i < 50; i++) {
        snprintf(ip, sizeof(ip), "198.51.100.%d", i / 2);
        assert_int_equal(attempt(g, t, ip, "alice", AUTHGUARD_FAILED, &delay, NULL), 0);
        assert_int_equal(delay, 0);
    }
    /* Then every attempt on alice waits, from any address, the owner's too; none is refused. */
    assert_int_equal(attempt(g, t, "198.51.100.200", "alice", AUTHGUARD_FAILED, &delay, &newly), 0);
    assert_int_equal(delay, 2000);
    assert_string_equal(newly, "account");
    for (int i = 0; i < 20; i++) {
        snprintf(ip, sizeof(ip), "203.0.113.%d", i);
        assert_int_equal(attempt(g, t, ip, "alice", AUTHGUARD_FAILED, &delay, &newly), 0);
        assert_int_equal(delay, 2000);
        assert_null(newly);
    }
    assert_int_equal(attempt(g, t, "192.0.2.77", "alice", AUTHGUARD_SUCCEEDED, &delay, NULL), 0);
    assert_int_equal(delay, 2000);
    /* Other accounts are not slowed. */
    assert_int_equal(attempt(g, t, "203.0.113.1", "bob", AUTHGUARD_FAILED, &delay, NULL), 0);
    assert_int_equal(delay, 0);
    /* When the guessing stops, the account recovers at 30 a minute. */
    t += 2 * SEC;
    assert_int_equal(attempt(g, t, "192.0.2.77", "alice", AUTHGUARD_SUCCEEDED, &delay, NULL), 0);
    assert_int_equal(delay, 0);
    authguard_free(g);
}

static void test_off_and_bounded(void **state)
{
    authguard_limits_t off = defaults;
    off.ip_burst = off.pair_burst = off.account_burst = 0;
    authguard_t *g = authguard_new(&off);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(attempt(g, SEC, "192.0.2.1", "alice", AUTHGUARD_FAILED, NULL, NULL), 0);
    assert_int_equal(authguard__size(g), 0);
    authguard_free(g);

    /* Many addresses and names: the table stops at its bound, the oldest going first. */
    g = authguard_new(&defaults);
    char ip[32];
    for (unsigned i = 0; i < AUTHGUARD_MAX_ENTRIES / 2; i++) {
        snprintf(ip, sizeof(ip), "10.%u.%u.%u", i >> 16, (i >> 8) & 255, i & 255);
        assert_int_equal(attempt(g, SEC + i, ip, ip, AUTHGUARD_FAILED, NULL, NULL), 0);
    }
    assert_int_equal(authguard__size(g), AUTHGUARD_MAX_ENTRIES);
    /* The newest address still remembers its failure, alice's account is fresh. */
    snprintf(ip, sizeof(ip), "10.%u.%u.%u", 0u, (AUTHGUARD_MAX_ENTRIES / 2 - 1) >> 8 & 255,
             (AUTHGUARD_MAX_ENTRIES / 2 - 1) & 255);
    for (int i = 0; i < 4; i++)
        assert_int_equal(attempt(g, 2 * SEC, ip, ip, AUTHGUARD_FAILED, NULL, NULL), 0);
    assert_int_equal(attempt(g, 2 * SEC, ip, ip, AUTHGUARD_FAILED, NULL, NULL), HEARTH_ELIMIT);
    assert_true(authguard__size(g) <= AUTHGUARD_MAX_ENTRIES);
    authguard_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pair_budget),
        cmocka_unit_test(test_what_gives_back),
        cmocka_unit_test(test_address_budget),
        cmocka_unit_test(test_account_budget_delays_never_refuses),
        cmocka_unit_test(test_off_and_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
