/* Unit tests for server/core: the config table (defaults, --set, INI files, fixed flags, the
 * default file and docs), the log line format and the data directory (lock, atomic write). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/config.h"
#include "core/datadir.h"
#include "core/log.h"

static char g_dir[64];

static int setup_dir(void **state)
{
    strcpy(g_dir, "/tmp/hearth-test-config-XXXXXX");
    assert_non_null(mkdtemp(g_dir));
    return 0;
}

static int teardown_dir(void **state)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static char *path_in(const char *name)
{
    char *p = datadir_path(g_dir, name);
    assert_non_null(p);
    return p;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void assert_contains(const char *hay, const char *needle)
{
    if (!hay || !strstr(hay, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, hay ? hay : "(null)");
}

static void test_defaults(void **state)
{
    config_t *c = config_new();
    assert_non_null(c);
    assert_string_equal(config_str(c, "server.domain"), "localhost");
    assert_int_equal(config_int(c, "server.workers"), 0);
    assert_string_equal(config_str(c, "log.level"), "info");
    assert_string_equal(config_str(c, "c2s.bind"), "0.0.0.0");
    assert_int_equal(config_int(c, "c2s.port"), 5222);
    assert_int_equal(config_int(c, "c2s.direct_tls_port"), 5223);
    assert_string_equal(config_str(c, "c2s.tls"), "required");
    assert_false(config_bool(c, "c2s.plain_without_tls"));
    assert_int_equal(config_int(c, "c2s.idle_ping"), 180);
    assert_int_equal(config_int(c, "c2s.ping_timeout"), 60);
    assert_string_equal(config_str(c, "c2s.resource_conflict"), "replace");
    assert_int_equal(config_int(c, "c2s.max_resources"), 10);
    assert_int_equal(config_int(c, "c2s.resume_timeout"), 300);
    assert_int_equal(config_int(c, "c2s.preauth_timeout"), 30);
    assert_int_equal(config_int(c, "c2s.max_stanza"), 262144);
    assert_int_equal(config_int(c, "c2s.max_stanza_preauth"), 16384);
    assert_int_equal(config_int(c, "c2s.auth_attempts"), 3);
    assert_int_equal(config_int(c, "c2s.auth_fail_delay_ms"), 1000);
    assert_true(config_bool(c, "c2s.sasl_plain"));
    assert_int_equal(config_int(c, "limits.preauth_per_ip"), 16);
    assert_false(config_bool(c, "registration.open"));
    assert_int_equal(config_int(c, "registration.rate_limit"), 5);
    assert_string_equal(config_str(c, "muc.domain"), "");
    assert_int_equal(config_int(c, "http.port"), 5280);
    assert_string_equal(config_str(c, "admin.bind"), "127.0.0.1");
    assert_int_equal(config_int(c, "admin.port"), 9090);
    assert_string_equal(config_str(c, "storage.driver"), "sqlite");
    assert_string_equal(config_str(c, "storage.dsn"), "");
    assert_string_equal(config_str(c, "tls.cert"), "");
    assert_string_equal(config_str(c, "tls.key"), "");
    assert_int_equal(config_int(c, "auth.scram_iterations"), 4096);
    assert_int_equal(config_int(c, "auth.ip_fail_burst"), 30);
    assert_int_equal(config_int(c, "auth.ip_fail_per_min"), 10);
    assert_int_equal(config_int(c, "auth.pair_fail_burst"), 5);
    assert_int_equal(config_int(c, "auth.pair_fail_per_min"), 1);
    assert_int_equal(config_int(c, "auth.account_fail_burst"), 50);
    assert_int_equal(config_int(c, "auth.account_fail_per_min"), 30);
    assert_int_equal(config_int(c, "auth.account_delay_ms"), 2000);
    assert_int_equal(config_int(c, "offline.quota"), 1000);
    assert_int_equal(config_int(c, "roster.max_items"), 1000);
    assert_int_equal(config_int(c, "roster.max_size"), 524288);
    assert_int_equal(config_int(c, "c2s.resume_budget"), 67108864);

    size_t n = 0;
    const config_key_t *keys = config_keys(&n);
    assert_true(n >= 48); /* every key below has a section, help and no fixed value */
    for (size_t i = 0; i < n; i++) {
        assert_false(config_is_fixed(c, keys[i].name));
        assert_non_null(strchr(keys[i].name, '.'));
        assert_true(strlen(keys[i].help) > 0);
    }
    assert_ptr_equal(config_key_find("c2s.port"), &keys[4]);
    assert_null(config_key_find("c2s.nope"));
    config_free(c);
}

static void expect_set_error(config_t *c, const char *arg, const char *needle1, const char *needle2)
{
    char *err = NULL;
    assert_int_equal(config_set_arg(c, arg, &err), HEARTH_ECONFIG);
    assert_contains(err, needle1);
    if (needle2)
        assert_contains(err, needle2);
    free(err);
}

static void test_set_types(void **state)
{
    config_t *c = config_new();
    char *err = NULL;

    /* int, with bounds at both ends */
    assert_int_equal(config_set_arg(c, "c2s.port=0", &err), 0);
    assert_int_equal(config_int(c, "c2s.port"), 0);
    assert_int_equal(config_set_arg(c, "c2s.port=-1", &err), 0);
    assert_int_equal(config_int(c, "c2s.port"), -1);
    assert_int_equal(config_set_arg(c, " c2s.port = 65535 ", &err), 0);
    assert_int_equal(config_int(c, "c2s.port"), 65535);
    expect_set_error(c, "c2s.port=65536", "c2s.port", "-1 to 65535");
    expect_set_error(c, "c2s.port=-2", "c2s.port", "'-2'");
    expect_set_error(c, "c2s.port=12ab", "c2s.port", "'12ab'");
    expect_set_error(c, "c2s.port=", "c2s.port", "integer");
    expect_set_error(c, "c2s.port=99999999999999999999999", "c2s.port", "integer");
    expect_set_error(c, "c2s.max_stanza=4095", "c2s.max_stanza", "4096 to 16777216");
    assert_int_equal(config_set_arg(c, "c2s.max_stanza=16777216", &err), 0);
    expect_set_error(c, "server.workers=257", "server.workers", "0 to 256");
    expect_set_error(c, "auth.scram_iterations=4095", "auth.scram_iterations", "4096");
    expect_set_error(c, "c2s.max_resources=0", "c2s.max_resources", "1 to 1000");
    expect_set_error(c, "c2s.auth_fail_delay_ms=10001", "c2s.auth_fail_delay_ms", "0 to 10000");
    assert_int_equal(config_int(c, "c2s.port"), 65535); /* failed sets change nothing */

    /* bool, every spelling */
    static const char *const yes[] = {"true", "yes", "on", "1", "TRUE", "Yes"};
    static const char *const no[] = {"false", "no", "off", "0", "OFF"};
    char arg[64];
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        snprintf(arg, sizeof arg, "registration.open=%s", yes[i]);
        assert_int_equal(config_set_arg(c, arg, &err), 0);
        assert_true(config_bool(c, "registration.open"));
    }
    for (size_t i = 0; i < sizeof no / sizeof *no; i++) {
        snprintf(arg, sizeof arg, "registration.open=%s", no[i]);
        assert_int_equal(config_set_arg(c, arg, &err), 0);
        assert_false(config_bool(c, "registration.open"));
    }
    expect_set_error(c, "registration.open=maybe", "registration.open", "true or false");

    /* enum: canonical spelling comes back */
    assert_int_equal(config_set_arg(c, "c2s.tls=Optional", &err), 0);
    assert_string_equal(config_str(c, "c2s.tls"), "optional");
    assert_int_equal(config_set_arg(c, "c2s.resource_conflict=rename", &err), 0);
    assert_string_equal(config_str(c, "c2s.resource_conflict"), "rename");
    assert_int_equal(config_set_arg(c, "storage.driver=pgsql", &err), 0);
    assert_string_equal(config_str(c, "storage.driver"), "pgsql");
    expect_set_error(c, "log.level=verbose", "log.level", "error, warn, info, debug");
    expect_set_error(c, "c2s.tls=sometimes", "c2s.tls", "required, optional");

    /* string, with '=' inside the value */
    assert_int_equal(config_set_arg(c, "storage.dsn=host=db user=hearth", &err), 0);
    assert_string_equal(config_str(c, "storage.dsn"), "host=db user=hearth");
    assert_int_equal(config_set_arg(c, "muc.domain=", &err), 0);
    assert_string_equal(config_str(c, "muc.domain"), "");

    /* malformed and unknown */
    expect_set_error(c, "c2s.port", "KEY=VALUE", NULL);
    expect_set_error(c, "=5", "KEY=VALUE", NULL);
    expect_set_error(c, "c2s.prot=5222", "'c2s.prot'", "did you mean 'c2s.port'");
    expect_set_error(c, "nosuch.thing=1", "unknown configuration key 'nosuch.thing'", NULL);

    /* config_set directly */
    assert_int_equal(config_set(c, "server.domain", "example.org", &err), 0);
    assert_string_equal(config_str(c, "server.domain"), "example.org");
    assert_int_equal(config_set(c, "c2s.idle_ping", "x", &err), HEARTH_ECONFIG);
    assert_contains(err, "c2s.idle_ping");
    free(err);
    err = NULL;
    assert_null(err);
    config_free(c);
}

static void test_fixed(void **state)
{
    config_t *c = config_new();
    char *err = NULL;
    assert_false(config_is_fixed(c, "c2s.idle_ping"));
    assert_int_equal(config_set_arg(c, "c2s.idle_ping=0", &err), 0);
    assert_true(config_is_fixed(c, "c2s.idle_ping"));
    assert_false(config_is_fixed(c, "c2s.ping_timeout"));

    /* database properties do not fix, and cannot override a fixed value */
    assert_int_equal(config_set_runtime(c, "c2s.ping_timeout", "30", &err), 0);
    assert_int_equal(config_int(c, "c2s.ping_timeout"), 30);
    assert_false(config_is_fixed(c, "c2s.ping_timeout"));
    assert_int_equal(config_set_runtime(c, "c2s.idle_ping", "60", &err), HEARTH_EBUSY);
    assert_contains(err, "c2s.idle_ping");
    assert_int_equal(config_int(c, "c2s.idle_ping"), 0);
    assert_int_equal(config_set_runtime(c, "c2s.port", "1", &err), HEARTH_EINVAL);
    assert_contains(err, "c2s.port");
    assert_int_equal(config_set_runtime(c, "registration.open", "perhaps", &err), HEARTH_ECONFIG);
    assert_contains(err, "registration.open");
    free(err);
    config_free(c);
}

static void test_load_file(void **state)
{
    char *p = path_in("a.conf");
    write_text(p, "# comment\n"
                  "; another\n"
                  "[server]\n"
                  "domain = example.org\n"
                  "workers = 4\n"
                  "\n"
                  "[c2s]\n"
                  "port = 0\n"
                  "tls = optional ; inline comment\n"
                  "plain_without_tls = yes\n"
                  "[storage]\n"
                  "dsn = \"  spaced  \"\n");
    config_t *c = config_new();
    char *err = NULL;
    assert_int_equal(config_load_file(c, p, &err), 0);
    assert_null(err);
    assert_string_equal(config_str(c, "server.domain"), "example.org");
    assert_int_equal(config_int(c, "server.workers"), 4);
    assert_int_equal(config_int(c, "c2s.port"), 0);
    assert_string_equal(config_str(c, "c2s.tls"), "optional");
    assert_true(config_bool(c, "c2s.plain_without_tls"));
    assert_string_equal(config_str(c, "storage.dsn"), "  spaced  ");
    assert_true(config_is_fixed(c, "server.domain"));
    assert_true(config_is_fixed(c, "c2s.port"));
    assert_false(config_is_fixed(c, "c2s.direct_tls_port"));
    assert_int_equal(config_int(c, "c2s.direct_tls_port"), 5223);
    config_free(c);
    free(p);
}

static void expect_file_error(const char *text, int want_rc, const char *needle1,
                              const char *needle2)
{
    char *p = path_in("bad.conf");
    write_text(p, text);
    config_t *c = config_new();
    char *err = NULL;
    assert_int_equal(config_load_file(c, p, &err), want_rc);
    char where[128];
    snprintf(where, sizeof where, "%s:", p);
    assert_contains(err, where);
    assert_contains(err, needle1);
    if (needle2)
        assert_contains(err, needle2);
    free(err);
    config_free(c);
    free(p);
}

static void test_file_errors(void **state)
{
    expect_file_error("[c2s]\nport = 5222\n\n[c2s]\nprot = 1\n", HEARTH_ECONFIG,
                      "bad.conf:5: unknown configuration key 'c2s.prot'", "c2s.port");
    expect_file_error("port = 5222\n[c2s]\n", HEARTH_ECONFIG, "bad.conf:1: key 'port'",
                      "outside a section");
    expect_file_error("# top\n\nport = 5222\n", HEARTH_ECONFIG, ":3:", "e.g. [c2s]");
    expect_file_error("[c2s]\nport = 70000\n", HEARTH_ECONFIG, ":2:", "'70000' for c2s.port");
    expect_file_error("[c2s]\ntls = maybe\n", HEARTH_ECONFIG, ":2:", "required, optional");
    expect_file_error("[c2s]\nthis is not ini\n", HEARTH_ECONFIG, ":2: syntax error", NULL);
    /* the first error wins, whichever kind it is */
    expect_file_error("[c2s]\nnot ini\nbogus = 1\n", HEARTH_ECONFIG, ":2: syntax error", NULL);
    expect_file_error("[c2s]\nbogus = 1\nnot ini\n", HEARTH_ECONFIG, ":2: unknown", NULL);

    char long_line[400];
    memset(long_line, 'x', sizeof long_line);
    memcpy(long_line, "[storage]\ndsn = ", 16);
    strcpy(long_line + 390, "\n");
    expect_file_error(long_line, HEARTH_ECONFIG, ":2: line longer than", NULL);

    config_t *c = config_new();
    char *err = NULL;
    char *missing = path_in("missing.conf");
    assert_int_equal(config_load_file(c, missing, &err), HEARTH_EIO);
    assert_contains(err, "missing.conf");
    free(err);
    free(missing);
    config_free(c);
}

static void test_from_args(void **state)
{
    char *conf = path_in("hearthd.conf");
    write_text(conf, "[c2s]\nport = 6000\nidle_ping = 10\n");
    char *sets[] = {"c2s.port=7000", "registration.open=true"};

    config_t *c = config_new();
    char *err = NULL;
    /* NULL path: <data_dir>/hearthd.conf is used because it exists; --set wins over it */
    assert_int_equal(config_from_args(c, NULL, g_dir, sets, 2, &err), 0);
    assert_int_equal(config_int(c, "c2s.port"), 7000);
    assert_int_equal(config_int(c, "c2s.idle_ping"), 10);
    assert_true(config_bool(c, "registration.open"));
    config_free(c);

    /* no file in the data dir: defaults plus --set */
    char *empty = path_in("empty");
    assert_int_equal(mkdir(empty, 0700), 0);
    c = config_new();
    assert_int_equal(config_from_args(c, NULL, empty, sets, 1, &err), 0);
    assert_int_equal(config_int(c, "c2s.port"), 7000);
    assert_int_equal(config_int(c, "c2s.idle_ping"), 180);
    config_free(c);

    /* an explicit path must exist */
    c = config_new();
    char *missing = path_in("nope.conf");
    assert_int_equal(config_from_args(c, missing, g_dir, NULL, 0, &err), HEARTH_EIO);
    assert_contains(err, "nope.conf");
    free(err);
    err = NULL;
    config_free(c);

    c = config_new();
    char *bad[] = {"c2s.port=x"};
    assert_int_equal(config_from_args(c, conf, g_dir, bad, 1, &err), HEARTH_ECONFIG);
    assert_contains(err, "c2s.port");
    free(err);
    config_free(c);
    free(missing);
    free(empty);
    free(conf);
}

static void test_default_file_roundtrip(void **state)
{
    char *p = path_in("default.conf");
    char *err = NULL;
    assert_int_equal(config_write_default(p, &err), 0);
    assert_null(err);

    char *text = read_text(p);
    size_t n = 0;
    const config_key_t *keys = config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        assert_contains(text, keys[i].help);
        assert_true(strlen(keys[i].help) + 2 <= 198); /* "# help" fits the reader's line */
        char line[128];
        snprintf(line, sizeof line, "%s =%s%s\n", strchr(keys[i].name, '.') + 1,
                 *keys[i].def ? " " : "", keys[i].def);
        assert_contains(text, line);
    }
    assert_contains(text, "\ndomain = localhost\n");
    assert_contains(text, "# port = 5222\n");
    assert_contains(text, "required | optional");
    assert_contains(text, "integer, 4096..1000000");
    free(text);

    config_t *loaded = config_new(), *defaults = config_new();
    assert_int_equal(config_load_file(loaded, p, &err), 0);
    for (size_t i = 0; i < n; i++) {
        const char *k = keys[i].name;
        switch (keys[i].type) {
        case CONFIG_STRING:
        case CONFIG_ENUM:
            assert_string_equal(config_str(loaded, k), config_str(defaults, k));
            break;
        case CONFIG_INT:
            assert_int_equal(config_int(loaded, k), config_int(defaults, k));
            break;
        case CONFIG_BOOL:
            assert_int_equal(config_bool(loaded, k), config_bool(defaults, k));
            break;
        }
        assert_int_equal(config_is_fixed(loaded, k), strcmp(k, "server.domain") == 0);
    }
    config_free(loaded);
    config_free(defaults);

    /* never clobbers an existing file */
    write_text(p, "[server]\ndomain = mine.example\n");
    assert_int_equal(config_write_default(p, &err), HEARTH_EEXISTS);
    assert_contains(err, "default.conf");
    free(err);
    text = read_text(p);
    assert_string_equal(text, "[server]\ndomain = mine.example\n");
    free(text);
    free(p);
}

static void test_markdown(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    assert_int_equal(config_write_markdown(f), 0);
    fclose(f);
    size_t n = 0;
    const config_key_t *keys = config_keys(&n);
    for (size_t i = 0; i < n; i++) {
        char cell[96];
        snprintf(cell, sizeof cell, "| `%s` |", keys[i].name);
        assert_contains(buf, cell);
    }
    assert_contains(buf, "| `c2s.tls` | enum | `required` | required, optional | no |");
    assert_contains(buf, "conference.&lt;server.domain&gt;");
    free(buf);
}

static void test_log_format(void **state)
{
    char *p = path_in("log.txt");
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    log_set_fd(fd);
    log_set_level(LOG_INFO);
    assert_true(log_enabled(LOG_WARN));
    assert_false(log_enabled(LOG_DEBUG));
    hlog(LOG_DEBUG, "hidden %d", 1);
    hlog(LOG_INFO, "ready on port %d", 5222);
    hlog_conn(LOG_WARN, 42, "alice@localhost/phone", "bad %s", "thing\nforged line");
    hlog_conn(LOG_ERROR, 7, NULL, "x");
    log_set_fd(2);
    close(fd);

    char *text = read_text(p);
    char *l1 = text, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    assert_int_equal(strlen(l3), strlen("2026-11-25T12:00:00.123Z error [c2s#7] x\n"));
    /* 2026-11-25T12:00:00.123Z */
    assert_true(l1[4] == '-' && l1[10] == 'T' && l1[19] == '.' && l1[23] == 'Z');
    assert_string_equal(strchr(l3, ' '), " error [c2s#7] x\n");
    *strchr(l1, '\n') = '\0';
    *strchr(l2, '\n') = '\0';
    assert_string_equal(strchr(l1, ' '), " info ready on port 5222");
    assert_string_equal(strchr(l2, ' '),
                        " warn [c2s#42 alice@localhost/phone] bad thing\\nforged line");
    free(text);
    free(p);

    log_level_t l;
    assert_int_equal(log_level_parse("DEBUG", &l), 0);
    assert_int_equal(l, LOG_DEBUG);
    assert_int_equal(log_level_parse("warn", &l), 0);
    assert_int_equal(l, LOG_WARN);
    assert_int_equal(log_level_parse("loud", &l), HEARTH_EINVAL);
}

static void test_datadir_prepare(void **state)
{
    char *nested = path_in("a/b/c");
    char *err = NULL;
    assert_int_equal(datadir_prepare(nested, &err), 0);
    struct stat st;
    assert_int_equal(stat(nested, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0077, 0);
    assert_int_equal(datadir_prepare(nested, &err), 0); /* exists: fine */

    char *file = path_in("plain");
    write_text(file, "x");
    assert_int_equal(datadir_prepare(file, &err), HEARTH_EIO);
    assert_contains(err, "plain");
    free(err);
    free(file);
    free(nested);
}

static void test_lock_twice(void **state)
{
    int fd1 = -1, fd2 = -1;
    char *err = NULL;
    assert_int_equal(datadir_lock(g_dir, &fd1, &err), 0);
    assert_true(fd1 >= 0);
    assert_int_equal(datadir_lock(g_dir, &fd2, &err), HEARTH_EBUSY);
    assert_int_equal(fd2, -1);
    char want[256];
    snprintf(want, sizeof want, "data directory %s is in use by a running hearthd (pid %ld)", g_dir,
             (long)getpid());
    assert_string_equal(err, want);
    free(err);
    err = NULL;
    datadir_unlock(fd1);
    assert_int_equal(datadir_lock(g_dir, &fd2, &err), 0);
    datadir_unlock(fd2);
    datadir_unlock(-1);
}

static void test_atomic_write(void **state)
{
    char *p = path_in("hearthd.ports");
    char *err = NULL;
    assert_int_equal(datadir_write_file_atomic(p, "c2s 5222\n", 9, &err), 0);
    char *text = read_text(p);
    assert_string_equal(text, "c2s 5222\n");
    free(text);
    assert_int_equal(datadir_write_file_atomic(p, "c2s 1\nadmin 2\n", 14, &err), 0);
    text = read_text(p);
    assert_string_equal(text, "c2s 1\nadmin 2\n");
    free(text);
    assert_int_equal(datadir_write_file_atomic(p, "", 0, &err), 0);
    text = read_text(p);
    assert_string_equal(text, "");
    free(text);
    free(p);

    /* no temporary left behind: only hearthd.ports in the directory besides test files */
    char cmd[160];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls '%s' | grep 'hearthd.ports.')\"", g_dir);
    assert_int_equal(system(cmd), 0);

    char *bad = path_in("no/such/dir/file");
    assert_int_equal(datadir_write_file_atomic(bad, "x", 1, &err), HEARTH_EIO);
    assert_contains(err, "no/such/dir");
    free(err);
    free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_set_types),
        cmocka_unit_test(test_fixed),
        cmocka_unit_test_setup_teardown(test_load_file, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_file_errors, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_from_args, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_default_file_roundtrip, setup_dir, teardown_dir),
        cmocka_unit_test(test_markdown),
        cmocka_unit_test_setup_teardown(test_log_format, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_datadir_prepare, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_lock_twice, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_atomic_write, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
