/* Unit tests for server/core/upload.c: slots and their time, a PUT's claim taken once, the
 * quota counting stored files and open slots, expiry and an owner's records taken out of the
 * index, and the index rebuilt from the records on disk (leftovers removed). Times are given by
 * the test; the store lives in a temporary directory. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hearth/error.h"
#include "core/upload.h"

#define T0 1000000000
#define DAY 86400

static const unsigned char secret[32] = {1, 2, 3};
static const upload_limits_t limits = {
    .max_file_size = 1000, .quota = 2500, .expire_days = 2, .slot_ttl = 60};

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/hearth-upload-XXXXXX");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(upload__init(dir, secret, sizeof(secret), &limits), 0);
    return 0;
}

static int count_files(void)
{
    char d[128];
    snprintf(d, sizeof(d), "%s/upload", dir);
    DIR *h = opendir(d);
    int n = 0;
    for (struct dirent *e; h && (e = readdir(h));)
        n += e->d_name[0] != '.';
    if (h)
        closedir(h);
    return n;
}

static int teardown(void **state)
{
    (void)state;
    upload__free();
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* A stored file as a PUT leaves it: the bytes and the record. */
static void store(const char *id, size_t size)
{
    upload_info_t info;
    assert_int_equal(upload__claim(id, T0 + 1, &info), 0);
    char path[256];
    assert_int_equal(upload__path(id, "", path, sizeof(path)), 0);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (size_t i = 0; i < size; i++)
        fputc('x', f);
    fclose(f);
    assert_int_equal(upload__path(id, ".meta", path, sizeof(path)), 0);
    info.created = T0 + 2;
    assert_int_equal(upload__write_meta(path, &info), 0);
    upload__claim_end(id, 1, T0 + 2);
}

static void test_slot_claimed_once(void **state)
{
    (void)state;
    char id[UPLOAD_ID_LEN + 1], id2[UPLOAD_ID_LEN + 1];
    upload_info_t info;
    assert_int_equal(upload__slot_new("a@x", "a b.png", "image/png", 10, T0, id), 0);
    assert_int_equal(upload__slot_new("a@x", "a b.png", "image/png", 10, T0, id2), 0);
    assert_true(upload__id_ok(id, strlen(id)));
    assert_string_not_equal(id, id2);
    assert_int_equal(upload__get(id, T0, &info), HEARTH_ENOTFOUND); /* not stored yet */
    assert_int_equal(upload__claim(id, T0 + 1, &info), 0);
    assert_string_equal(info.name, "a b.png");
    assert_string_equal(info.owner, "a@x");
    assert_int_equal(info.size, 10);
    assert_int_equal(upload__claim(id, T0 + 1, &info), HEARTH_EEXISTS); /* a PUT under way */
    upload__claim_end(id, 0, T0 + 2);                                   /* it failed */
    assert_int_equal(upload__claim(id, T0 + 3, &info), 0);              /* a retry */
    upload__claim_end(id, 1, T0 + 4);
    assert_int_equal(upload__claim(id, T0 + 5, &info), HEARTH_EEXISTS); /* stored: once */
    assert_int_equal(upload__get(id, T0 + 5, &info), 0);
    /* The second slot's time runs out. */
    assert_int_equal(upload__claim(id2, T0 + 61, &info), HEARTH_ETIMEOUT);
    assert_int_equal(upload__claim("0123456789abcdef0123456789abcdef", T0, &info),
                     HEARTH_ENOTFOUND);
}

static void test_quota_and_take(void **state)
{
    (void)state;
    char a1[UPLOAD_ID_LEN + 1], a2[UPLOAD_ID_LEN + 1], a3[UPLOAD_ID_LEN + 1], b1[UPLOAD_ID_LEN + 1];
    assert_int_equal(upload__slot_new("a@x", "1", "", 1000, T0, a1), 0);
    assert_int_equal(upload__slot_new("a@x", "2", "", 1000, T0, a2), 0);
    assert_int_equal(upload__slot_new("a@x", "3", "", 1000, T0, a3), HEARTH_ELIMIT);
    assert_int_equal(upload__slot_new("a@x", "3", "", 500, T0, a3), 0); /* exactly the quota */
    assert_int_equal(upload__slot_new("b@x", "1", "", 1000, T0, b1), 0);
    assert_int_equal(upload__used("a@x"), 2500);
    store(a1, 1000);
    /* Expired slots give their bytes back; stored files stay until their days are over. */
    char ids[8][UPLOAD_ID_LEN + 1];
    int more = 0;
    assert_int_equal(upload__take(NULL, T0 + 61, ids, 8, &more), 0);
    assert_int_equal(upload__used("a@x"), 1000);
    assert_int_equal(upload__used("b@x"), 0);
    assert_int_equal(upload__take(NULL, T0 + 2 + 2 * DAY + 1, ids, 8, &more), 1);
    assert_string_equal(ids[0], a1);
    assert_int_equal(upload__used("a@x"), 0);
    /* An owner's records, in batches. */
    char s[3][UPLOAD_ID_LEN + 1];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(upload__slot_new("c@x", "f", "", 10, T0, s[i]), 0);
        store(s[i], 10);
    }
    size_t n = upload__take("c@x", 0, ids, 2, &more);
    assert_int_equal(n, 2);
    assert_true(more);
    n = upload__take("c@x", 0, ids, 2, &more);
    assert_int_equal(n, 1);
    assert_false(more);
    assert_int_equal(upload__used("c@x"), 0);
}

static void test_index_rebuilt_from_disk(void **state)
{
    (void)state;
    char a[UPLOAD_ID_LEN + 1], b[UPLOAD_ID_LEN + 1], pending[UPLOAD_ID_LEN + 1];
    assert_int_equal(upload__slot_new("a@x", "keep.txt", "text/plain", 5, T0, a), 0);
    store(a, 5);
    assert_int_equal(upload__slot_new("a@x", "short.txt", "", 5, T0, b), 0);
    store(b, 4); /* the bytes do not match the record: dropped at the next start */
    assert_int_equal(upload__slot_new("a@x", "open", "", 7, T0, pending), 0);
    char path[256];
    assert_int_equal(upload__path(pending, ".part", path, sizeof(path)), 0);
    FILE *f = fopen(path, "w");
    fputs("half", f);
    fclose(f);
    assert_int_equal(count_files(), 5);
    upload__free();
    /* The days of a stored file count from its record: T0 is long past, so expire never. */
    upload_limits_t forever = limits;
    forever.expire_days = 0;
    assert_int_equal(upload__init(dir, secret, sizeof(secret), &forever), 0);
    assert_int_equal(count_files(), 2);
    upload_info_t info;
    assert_int_equal(upload__get(a, T0 + 10, &info), 0);
    assert_string_equal(info.name, "keep.txt");
    assert_string_equal(info.ctype, "text/plain");
    assert_int_equal(info.size, 5);
    assert_int_equal(upload__get(b, T0 + 10, &info), HEARTH_ENOTFOUND);
    assert_int_equal(upload__claim(pending, T0 + 10, &info), HEARTH_ENOTFOUND);
    assert_int_equal(upload__used("a@x"), 5);
    size_t n = 0;
    char **owners = upload__owners(&n);
    assert_int_equal(n, 1);
    assert_string_equal(owners[0], "a@x");
    free(owners[0]);
    free(owners);
    /* With expiry, a file stored at T0 is gone at a start long after. */
    upload__free();
    assert_int_equal(upload__init(dir, secret, sizeof(secret), &limits), 0);
    assert_int_equal(count_files(), 0);
}

static void test_token(void **state)
{
    (void)state;
    char t1[UPLOAD_TOKEN_LEN + 1], t2[UPLOAD_TOKEN_LEN + 1], t3[UPLOAD_TOKEN_LEN + 1];
    upload__token("0123456789abcdef0123456789abcdef", t1);
    upload__token("0123456789abcdef0123456789abcdef", t2);
    upload__token("0123456789abcdef0123456789abcdee", t3);
    assert_int_equal(strlen(t1), UPLOAD_TOKEN_LEN);
    assert_string_equal(t1, t2);
    assert_string_not_equal(t1, t3);
    assert_false(upload__id_ok("0123456789ABCDEF0123456789abcdef", 32));
    assert_false(upload__id_ok("0123456789abcdef0123456789abcde", 31));
    assert_false(upload__id_ok("../456789abcdef0123456789abcdef0", 32));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_slot_claimed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quota_and_take, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_rebuilt_from_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_token, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
