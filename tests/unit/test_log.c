/* Unit tests for the ring of recent log lines (server/core/log.c) that the admin console's log
 * tail shows: order, the level filter, the bound on lines and on a line's length, and lines
 * written from several threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include "core/log.h"

static void quiet(void)
{
    int fd = open("/dev/null", O_WRONLY);
    log_set_fd(fd);
    log_set_level(LOG_DEBUG);
}

static void order_and_levels(void **state)
{
    (void)state;
    quiet();
    hlog(LOG_INFO, "first <b>");
    hlog(LOG_WARN, "second");
    hlog(LOG_DEBUG, "third");
    hlog(LOG_ERROR, "fourth");
    log_line_t *l = NULL;
    size_t n = 0;
    assert_int_equal(log_recent(LOG_DEBUG, 4, &l, &n), 0);
    assert_int_equal(n, 4);
    assert_non_null(strstr(l[0].text, " info first <b>"));
    assert_int_equal(l[0].level, LOG_INFO);
    assert_non_null(strstr(l[3].text, " error fourth"));
    assert_null(strchr(l[3].text, '\n'));
    log_recent_free(l, n);
    /* warn and more severe only: the last two of those. */
    assert_int_equal(log_recent(LOG_WARN, 2, &l, &n), 0);
    assert_int_equal(n, 2);
    assert_non_null(strstr(l[0].text, "second"));
    assert_non_null(strstr(l[1].text, "fourth"));
    log_recent_free(l, n);
}

static void bounded(void **state)
{
    (void)state;
    quiet();
    for (int i = 0; i < LOG_RING_LINES + 50; i++)
        hlog(LOG_INFO, "line %d", i);
    log_line_t *l = NULL;
    size_t n = 0;
    assert_int_equal(log_recent(LOG_DEBUG, LOG_RING_LINES * 2, &l, &n), 0);
    assert_int_equal(n, LOG_RING_LINES);
    char want[64];
    snprintf(want, sizeof(want), " line %d", 50);
    assert_non_null(strstr(l[0].text, want));
    snprintf(want, sizeof(want), " line %d", LOG_RING_LINES + 49);
    assert_non_null(strstr(l[n - 1].text, want));
    log_recent_free(l, n);
    char big[LOG_RING_LINE_MAX * 3];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    hlog(LOG_WARN, "%s", big);
    assert_int_equal(log_recent(LOG_DEBUG, 1, &l, &n), 0);
    assert_int_equal(n, 1);
    assert_true(strlen(l[0].text) < LOG_RING_LINE_MAX);
    assert_non_null(strstr(l[0].text, "xxx [...]"));
    log_recent_free(l, n);
}

static void *writer(void *arg)
{
    for (int i = 0; i < 2000; i++)
        hlog(LOG_INFO, "thread %ld line %d", (long)(intptr_t)arg, i);
    return NULL;
}

static void threads(void **state)
{
    (void)state;
    quiet();
    /* Every line in the ring is an info line before the threads start (the earlier tests
     * left a warning there). */
    for (int i = 0; i < LOG_RING_LINES; i++)
        hlog(LOG_INFO, "before %d", i);
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, writer, (void *)(intptr_t)i);
    for (int k = 0; k < 50; k++) { /* reading while they write */
        log_line_t *l = NULL;
        size_t n = 0;
        assert_int_equal(log_recent(LOG_DEBUG, 100, &l, &n), 0);
        for (size_t i = 0; i < n; i++)
            assert_non_null(strstr(l[i].text, " info "));
        log_recent_free(l, n);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    log_line_t *l = NULL;
    size_t n = 0;
    assert_int_equal(log_recent(LOG_DEBUG, LOG_RING_LINES, &l, &n), 0);
    assert_int_equal(n, LOG_RING_LINES);
    for (size_t i = 0; i < n; i++)
        assert_non_null(strstr(l[i].text, " line "));
    log_recent_free(l, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_and_levels),
        cmocka_unit_test(bounded),
        cmocka_unit_test(threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
