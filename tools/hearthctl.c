/* hearthctl: offline administration of a Hearth data directory (accounts). Commands work on the
 * database with the server stopped and hold <data-dir>/hearthd.lock while they run, so they
 * never write under a live hearthd. Exit 0 on success, 1 with one line on stderr otherwise. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "core/config.h"
#include "core/datadir.h"
#include "core/log.h"
#include "hearth/jid.h"
#include "hearth/sasl.h"
#include "storage/storage.h"

/* Longest password accepted, bytes: far above any real one, small enough to stay on the stack. */
#define PASSWORD_MAX 1024

static const char USAGE[] =
    "usage: hearthctl [--config FILE] [--data-dir DIR] [--set KEY=VALUE ...] COMMAND ...\n"
    "\n"
    "Offline administration; the server must be stopped (hearthctl takes the data\n"
    "directory's lock while it runs).\n"
    "\n"
    "commands:\n"
    "  adduser JID [--admin] [--password-stdin]  create an account\n"
    "  deluser JID                               delete an account\n"
    "  passwd JID [--password-stdin]             set an account's password\n"
    "  listusers                                 list accounts, one JID per line\n"
    "\n"
    "options:\n"
    "  --config FILE     config file (default <data-dir>/hearthd.conf if it exists)\n"
    "  --data-dir DIR    data directory (default ./data)\n"
    "  --set KEY=VALUE   override a config key; repeatable\n"
    "  --help, --version\n"
    "\n"
    "Passwords are read twice from the terminal without echo, or as one line from\n"
    "stdin with --password-stdin.\n";

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hearthctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

typedef struct ctl {
    config_t *cfg;
    const char *data_dir;
    int lock_fd;
    storage_t *st;
    char *domain; /* prepared server.domain */
} ctl_t;

/* ---- passwords ---- */

static struct termios g_saved_tty;
static volatile sig_atomic_t g_tty_changed;

static void restore_tty_and_die(int sig)
{
    if (g_tty_changed)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* One line into buf; the trailing newline (and a CR before it) removed. -1 on EOF/error,
 * -2 when the line does not fit. */
static int read_line(FILE *f, char *buf, size_t cap)
{
    if (!fgets(buf, (int)cap, f))
        return -1;
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    else if (n == cap - 1 && !feof(f))
        return -2;
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return 0;
}

static int prompt_noecho(const char *prompt, char *buf, size_t cap)
{
    struct termios off;
    if (tcgetattr(STDIN_FILENO, &g_saved_tty) < 0)
        return -1;
    off = g_saved_tty;
    off.c_lflag &= ~(tcflag_t)ECHO;
    off.c_lflag |= ECHONL;
    struct sigaction sa = {.sa_handler = restore_tty_and_die}, old_int, old_term, old_hup;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    fputs(prompt, stderr);
    fflush(stderr);
    int rc = -1;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &off) == 0) {
        g_tty_changed = 1;
        rc = read_line(stdin, buf, cap);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_tty);
        g_tty_changed = 0;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    return rc;
}

/* 0 with the password in buf, else 1 after printing why. */
static int get_password(const char *jid, int from_stdin, char *buf, size_t cap)
{
    if (from_stdin) {
        int r = read_line(stdin, buf, cap);
        if (r == -2) {
            fail("password too long (more than %zu bytes)", cap - 2);
            return 1;
        }
        if (r < 0 || buf[0] == '\0') {
            fail("empty password on stdin");
            return 1;
        }
        return 0;
    }
    if (!isatty(STDIN_FILENO)) {
        fail("stdin is not a terminal; use --password-stdin to give the password on stdin");
        return 1;
    }
    char again[PASSWORD_MAX + 2];
    char prompt[1200];
    snprintf(prompt, sizeof prompt, "Password for %s: ", jid);
    int rc = 1;
    int r = prompt_noecho(prompt, buf, cap);
    if (r == -2)
        fail("password too long (more than %zu bytes)", cap - 2);
    else if (r < 0)
        fail("cannot read the password from the terminal");
    else if (buf[0] == '\0')
        fail("empty password");
    else if ((r = prompt_noecho("Retype password: ", again, sizeof again)) < 0)
        fail("cannot read the password from the terminal");
    else if (strcmp(buf, again) != 0)
        fail("passwords do not match");
    else
        rc = 0;
    explicit_bzero(again, sizeof again);
    return rc;
}

/* ---- JIDs ---- */

/* Parses a bare user JID of this server: 0 with *out set, else 1 after printing why. */
static int parse_user_jid(const ctl_t *x, const char *s, hearth_jid_t *out)
{
    const char *reason = NULL;
    if (hearth_jid_parse(s, strlen(s), out, &reason) < 0) {
        fail("invalid JID '%s': %s", s, reason ? reason : "malformed");
        return 1;
    }
    const char *why = NULL;
    if (!out->node)
        why = "it has no user part (expected user@domain)";
    else if (out->resource)
        why = "it has a resource (expected a bare JID, user@domain)";
    if (why) {
        fail("invalid JID '%s': %s", s, why);
        hearth_jid_clear(out);
        return 1;
    }
    if (strcmp(out->domain, x->domain) != 0) {
        fail("JID's domain %s is not served here (server.domain is %s)", out->domain,
             config_str(x->cfg, "server.domain"));
        hearth_jid_clear(out);
        return 1;
    }
    return 0;
}

/* ---- the database, under the lock ---- */

static int ctl_open(ctl_t *x, int create_dir)
{
    char *err = NULL;
    struct stat sb;
    if (create_dir) {
        if (datadir_prepare(x->data_dir, &err) < 0) {
            fail("%s", err);
            free(err);
            return 1;
        }
    } else if (stat(x->data_dir, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
        fail("data directory %s does not exist (give the server's one with --data-dir)",
             x->data_dir);
        return 1;
    }
    int rc = datadir_lock(x->data_dir, &x->lock_fd, &err);
    if (rc == HEARTH_EBUSY) {
        fail("%s; stop it first (or use the admin console)", err);
        free(err);
        return 1;
    }
    if (rc < 0) {
        fail("%s", err);
        free(err);
        return 1;
    }
    const char *driver = config_str(x->cfg, "storage.driver");
    const char *dsn = config_str(x->cfg, "storage.dsn");
    char *default_dsn = NULL;
    if (!*dsn && strcmp(driver, "sqlite") == 0) {
        default_dsn = datadir_path(x->data_dir, "hearth.db");
        if (!default_dsn) {
            fail("out of memory");
            return 1;
        }
        dsn = default_dsn;
    }
    rc = storage_open(driver, dsn, &x->st, &err);
    if (rc < 0) {
        fail("cannot open the %s database: %s", driver, err ? err : hearth_strerror(rc));
        x->st = NULL;
    }
    free(err);
    free(default_dsn);
    return rc < 0 ? 1 : 0;
}

static void ctl_close(ctl_t *x)
{
    if (x->st)
        storage_close(x->st);
    x->st = NULL;
    datadir_unlock(x->lock_fd);
    x->lock_fd = -1;
}

/* Both SCRAM secrets for password, with auth.scram_iterations. */
static int make_secrets(const ctl_t *x, const char *password, hearth_scram_secret_t *sha1,
                        hearth_scram_secret_t *sha256)
{
    unsigned iters = (unsigned)config_int(x->cfg, "auth.scram_iterations");
    int rc = hearth_scram_secret_new(HEARTH_SCRAM_SHA1, password, iters, sha1);
    if (rc == 0)
        rc = hearth_scram_secret_new(HEARTH_SCRAM_SHA256, password, iters, sha256);
    if (rc == HEARTH_EINVAL) {
        fail("password refused (it must be non-empty and valid under SASLprep)");
        return 1;
    }
    if (rc < 0) {
        fail("cannot derive the SCRAM secrets: %s", hearth_strerror(rc));
        return 1;
    }
    return 0;
}

/* ---- commands ---- */

typedef struct cmd_args {
    const char *jid;
    int admin;
    int password_stdin;
} cmd_args_t;

static int cmd_adduser(ctl_t *x, const cmd_args_t *a)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    char password[PASSWORD_MAX + 2];
    storage_account_t acct = {0}, existing = {0};
    int status = 1;
    if (parse_user_jid(x, a->jid, &j) || ctl_open(x, 1))
        goto out;
    int rc = storage_sync_account_get(x->st, j.node, &existing);
    storage_account_clear(&existing);
    if (rc == 0) {
        fail("user %s already exists", j.bare);
        goto out;
    }
    if (rc != HEARTH_ENOTFOUND) {
        fail("cannot read account %s: %s", j.bare, hearth_strerror(rc));
        goto out;
    }
    if (get_password(j.bare, a->password_stdin, password, sizeof password))
        goto out;
    acct.username = j.node; /* borrowed; not cleared below */
    acct.admin = a->admin;
    if (make_secrets(x, password, &acct.sha1, &acct.sha256))
        goto out;
    rc = storage_sync_account_create(x->st, &acct);
    if (rc == HEARTH_EEXISTS) {
        fail("user %s already exists", j.bare);
        goto out;
    }
    if (rc < 0) {
        fail("cannot create account %s: %s", j.bare, hearth_strerror(rc));
        goto out;
    }
    fprintf(stderr, "created %s%s\n", j.bare, a->admin ? " (admin)" : "");
    status = 0;
out:
    explicit_bzero(password, sizeof password);
    explicit_bzero(&acct, sizeof acct);
    hearth_jid_clear(&j);
    return status;
}

static int cmd_deluser(ctl_t *x, const cmd_args_t *a)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    int status = 1;
    if (parse_user_jid(x, a->jid, &j) || ctl_open(x, 0))
        goto out;
    int rc = storage_sync_account_delete(x->st, j.node);
    if (rc == HEARTH_ENOTFOUND) {
        fail("no such user %s", j.bare);
        goto out;
    }
    if (rc < 0) {
        fail("cannot delete account %s: %s", j.bare, hearth_strerror(rc));
        goto out;
    }
    fprintf(stderr, "deleted %s\n", j.bare);
    status = 0;
out:
    hearth_jid_clear(&j);
    return status;
}

static int cmd_passwd(ctl_t *x, const cmd_args_t *a)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    char password[PASSWORD_MAX + 2];
    hearth_scram_secret_t sha1 = {0}, sha256 = {0};
    storage_account_t existing = {0};
    int status = 1;
    if (parse_user_jid(x, a->jid, &j) || ctl_open(x, 0))
        goto out;
    /* Ask for the password only for an account that exists. */
    int rc = storage_sync_account_get(x->st, j.node, &existing);
    storage_account_clear(&existing);
    if (rc == HEARTH_ENOTFOUND) {
        fail("no such user %s", j.bare);
        goto out;
    }
    if (rc < 0) {
        fail("cannot read account %s: %s", j.bare, hearth_strerror(rc));
        goto out;
    }
    if (get_password(j.bare, a->password_stdin, password, sizeof password) ||
        make_secrets(x, password, &sha1, &sha256))
        goto out;
    rc = storage_sync_account_set_secrets(x->st, j.node, &sha1, &sha256);
    if (rc == HEARTH_ENOTFOUND) {
        fail("no such user %s", j.bare);
        goto out;
    }
    if (rc < 0) {
        fail("cannot set the password of %s: %s", j.bare, hearth_strerror(rc));
        goto out;
    }
    fprintf(stderr, "password of %s changed\n", j.bare);
    status = 0;
out:
    explicit_bzero(password, sizeof password);
    explicit_bzero(&sha1, sizeof sha1);
    explicit_bzero(&sha256, sizeof sha256);
    hearth_jid_clear(&j);
    return status;
}

static int cmd_listusers(ctl_t *x, const cmd_args_t *a)
{
    storage_account_t *list = NULL;
    size_t n = 0;
    if (ctl_open(x, 0))
        return 1;
    int rc = storage_sync_account_list(x->st, &list, &n);
    if (rc < 0) {
        fail("cannot list accounts: %s", hearth_strerror(rc));
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        printf("%s@%s%s\n", list[i].username, x->domain, list[i].admin ? " (admin)" : "");
        storage_account_clear(&list[i]);
    }
    free(list);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fail("cannot write to stdout: %s", strerror(errno));
        return 1;
    }
    return 0;
}

typedef struct command {
    const char *name;
    int (*run)(ctl_t *x, const cmd_args_t *a);
    int takes_jid;
    int takes_admin;
    int takes_password;
} command_t;

static const command_t COMMANDS[] = {
    {"adduser", cmd_adduser, 1, 1, 1},
    {"deluser", cmd_deluser, 1, 0, 0},
    {"passwd", cmd_passwd, 1, 0, 1},
    {"listusers", cmd_listusers, 0, 0, 0},
};

/* Command arguments in any order; 0, else 1 after printing why. */
static int parse_command_args(const command_t *cmd, int argc, char **argv, cmd_args_t *a)
{
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (cmd->takes_admin && strcmp(s, "--admin") == 0)
            a->admin = 1;
        else if (cmd->takes_password && strcmp(s, "--password-stdin") == 0)
            a->password_stdin = 1;
        else if (s[0] == '-' && s[1] != '\0') {
            fail("%s: unknown option %s (see hearthctl --help)", cmd->name, s);
            return 1;
        } else if (cmd->takes_jid && !a->jid)
            a->jid = s;
        else {
            fail("%s: unexpected argument '%s' (see hearthctl --help)", cmd->name, s);
            return 1;
        }
    }
    if (cmd->takes_jid && !a->jid) {
        fail("%s: missing JID (see hearthctl --help)", cmd->name);
        return 1;
    }
    return 0;
}

/* --opt VALUE or --opt=VALUE: the value, advancing *i past it; NULL when s is not opt. */
static const char *option_value(const char *opt, int argc, char **argv, int *i, int *missing)
{
    size_t n = strlen(opt);
    const char *s = argv[*i];
    if (strncmp(s, opt, n) != 0)
        return NULL;
    if (s[n] == '=')
        return s + n + 1;
    if (s[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

int main(int argc, char **argv)
{
    const char *config_path = NULL, *data_dir = "./data";
    char **sets = calloc((size_t)argc, sizeof *sets);
    size_t n_sets = 0;
    int i = 1, status = 1;
    ctl_t x = {.lock_fd = -1};
    char *err = NULL;
    hearth_jid_t dom = HEARTH_JID_INIT;
    if (!sets) {
        fail("out of memory");
        return 1;
    }

    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *s = argv[i], *v;
        int missing = 0;
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(USAGE, stdout);
            status = 0;
            goto out;
        } else if (strcmp(s, "--version") == 0 || strcmp(s, "-V") == 0) {
            printf("hearthctl %s\n", HEARTH_VERSION);
            status = 0;
            goto out;
        } else if (strcmp(s, "--") == 0) {
            i++;
            break;
        } else if ((v = option_value("--config", argc, argv, &i, &missing)))
            config_path = v;
        else if ((v = option_value("--data-dir", argc, argv, &i, &missing)))
            data_dir = v;
        else if ((v = option_value("--set", argc, argv, &i, &missing)))
            sets[n_sets++] = (char *)v;
        else if (missing) {
            fail("option %s needs a value (see hearthctl --help)", s);
            goto out;
        } else {
            fail("unknown option %s (see hearthctl --help)", s);
            goto out;
        }
    }
    if (i >= argc) {
        fputs(USAGE, stderr);
        goto out;
    }
    const command_t *cmd = NULL;
    for (size_t k = 0; k < sizeof COMMANDS / sizeof COMMANDS[0]; k++)
        if (strcmp(argv[i], COMMANDS[k].name) == 0)
            cmd = &COMMANDS[k];
    if (!cmd) {
        fail("unknown command '%s' (see hearthctl --help)", argv[i]);
        goto out;
    }
    cmd_args_t args = {0};
    if (parse_command_args(cmd, argc - i - 1, argv + i + 1, &args))
        goto out;

    x.data_dir = data_dir;
    x.cfg = config_new();
    if (!x.cfg) {
        fail("out of memory");
        goto out;
    }
    if (config_from_args(x.cfg, config_path, data_dir, sets, n_sets, &err) < 0) {
        fail("%s", err ? err : "configuration error");
        goto out;
    }
    /* Storage logs through hlog: keep a tool quiet unless asked for more. */
    log_level_t level = LOG_WARN;
    if (config_is_fixed(x.cfg, "log.level") &&
        log_level_parse(config_str(x.cfg, "log.level"), &level) < 0)
        level = LOG_WARN;
    log_set_level(level);

    const char *domain = config_str(x.cfg, "server.domain");
    const char *reason = NULL;
    if (hearth_jid_parse(domain, strlen(domain), &dom, &reason) < 0 || dom.node || dom.resource) {
        fail("server.domain '%s' is not a valid domain%s%s", domain, reason ? ": " : "",
             reason ? reason : "");
        goto out;
    }
    x.domain = dom.domain;
    status = cmd->run(&x, &args);
out:
    ctl_close(&x);
    config_free(x.cfg);
    hearth_jid_clear(&dom);
    free(err);
    free(sets);
    return status;
}
