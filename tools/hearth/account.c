/* hearth's accounts: accounts.conf (INI through inih, one section per account) merged with the
 * command line and the environment, the password found in its sources in order, and the check
 * that a file holding a password is readable by its owner only. Touches that file, the file of
 * --password-file and the terminal (/dev/tty) only. */
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "hearth.h"

/* accounts.conf larger than this is refused: a contact list has no place there. */
#define ACCOUNTS_FILE_MAX (256 * 1024)
/* Sections kept from one file; more are an error. */
#define ACCOUNTS_MAX 64

typedef struct section {
    char *name;
    char *jid, *password, *resource, *host, *port, *tls, *cafile, *insecure;
} section_t;

typedef struct parse {
    const char *path;
    section_t sections[ACCOUNTS_MAX];
    int count;
    char *default_name;
    char err[256];
} parse_t;

static void wipe(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static void section_clear(section_t *s)
{
    free(s->name);
    free(s->jid);
    wipe(s->password);
    free(s->resource);
    free(s->host);
    free(s->port);
    free(s->tls);
    free(s->cafile);
    free(s->insecure);
    memset(s, 0, sizeof(*s));
}

static section_t *section_named(parse_t *p, const char *name)
{
    for (int i = 0; i < p->count; i++)
        if (!strcmp(p->sections[i].name, name))
            return &p->sections[i];
    return NULL;
}

/* inih calls this for every key; returns 0 to stop with an error. */
static int on_key(void *user, const char *section, const char *key, const char *value)
{
    parse_t *p = user;
    if (p->err[0])
        return 0;
    if (!section[0]) {
        if (!strcmp(key, "default")) {
            free(p->default_name);
            p->default_name = strdup(value);
            return p->default_name != NULL;
        }
        snprintf(p->err, sizeof(p->err), "unknown key '%s' outside an [account] section", key);
        return 0;
    }
    section_t *s = section_named(p, section);
    if (!s) {
        if (p->count == ACCOUNTS_MAX) {
            snprintf(p->err, sizeof(p->err), "more than %d accounts", ACCOUNTS_MAX);
            return 0;
        }
        s = &p->sections[p->count++];
        s->name = strdup(section);
        if (!s->name)
            return 0;
    }
    char **slot = !strcmp(key, "jid")        ? &s->jid
                  : !strcmp(key, "password") ? &s->password
                  : !strcmp(key, "resource") ? &s->resource
                  : !strcmp(key, "host")     ? &s->host
                  : !strcmp(key, "port")     ? &s->port
                  : !strcmp(key, "tls")      ? &s->tls
                  : !strcmp(key, "cafile")   ? &s->cafile
                  : !strcmp(key, "insecure") ? &s->insecure
                                             : NULL;
    if (!slot) {
        snprintf(p->err, sizeof(p->err), "unknown key '%s' in [%s]", key, section);
        return 0;
    }
    if (*slot) {
        snprintf(p->err, sizeof(p->err), "'%s' given twice in [%s]", key, section);
        return 0;
    }
    *slot = strdup(value);
    return *slot != NULL;
}

char *account_default_path(void)
{
    const char *xdg = getenv("XDG_CONFIG_HOME");
    const char *home = getenv("HOME");
    char buf[PATH_MAX];
    int n;
    /* The XDG base directory rule: a relative XDG_CONFIG_HOME is ignored. */
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, sizeof(buf), "%s/hearth/accounts.conf", xdg);
    else if (home && home[0])
        n = snprintf(buf, sizeof(buf), "%s/.config/hearth/accounts.conf", home);
    else
        return NULL;
    return n > 0 && (size_t)n < sizeof(buf) ? strdup(buf) : NULL;
}

/* Reads and parses path into p. EXIT_OK (also when the file does not exist and !required),
 * else an exit code after saying why. *exists tells whether it was there. */
static int parse_file(const char *path, int required, parse_t *p, int *exists)
{
    *exists = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT && !required)
            return EXIT_OK;
        fail("cannot open %s: %s", path, strerror(errno));
        return EXIT_CONFIG;
    }
    *exists = 1;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        fail("%s is not a regular file", path);
        close(fd);
        return EXIT_CONFIG;
    }
    if (st.st_size > ACCOUNTS_FILE_MAX) {
        fail("%s is larger than %d bytes", path, ACCOUNTS_FILE_MAX);
        close(fd);
        return EXIT_CONFIG;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        fail("cannot read %s: %s", path, strerror(errno));
        return EXIT_CONFIG;
    }
    p->path = path;
    int r = ini_parse_file(f, on_key, p);
    fclose(f);
    if (p->err[0]) {
        fail("%s: %s", path, p->err);
        return EXIT_CONFIG;
    }
    if (r != 0) {
        fail("%s: line %d is not 'key = value' or '[account]'", path, r);
        return EXIT_CONFIG;
    }
    /* A password that others may read is no secret: refuse rather than use it (as ssh refuses a
     * private key that others may read). */
    int has_password = 0;
    for (int i = 0; i < p->count; i++)
        has_password |= p->sections[i].password != NULL;
    if (has_password && (st.st_mode & 077)) {
        fail("%s holds a password and may be read by others (mode %04o); "
             "make it private with: chmod 600 %s",
             path, (unsigned)(st.st_mode & 07777), path);
        return EXIT_CONFIG;
    }
    if (has_password && st.st_uid != geteuid()) {
        fail("%s holds a password and belongs to another user (uid %u)", path, (unsigned)st.st_uid);
        return EXIT_CONFIG;
    }
    return EXIT_OK;
}

static int dup_opt(char **dst, const char *cmdline, const char *file)
{
    const char *v = cmdline ? cmdline : file;
    if (!v)
        return 0;
    *dst = strdup(v);
    return *dst ? 0 : -1;
}

static int parse_port(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > 65535)
        return -1;
    *out = (unsigned)v;
    return 0;
}

static int parse_tls(const char *s, hearth_tls_policy_t *out)
{
    if (!strcmp(s, "required"))
        *out = HEARTH_TLS_REQUIRED;
    else if (!strcmp(s, "optional"))
        *out = HEARTH_TLS_OPTIONAL;
    else if (!strcmp(s, "direct"))
        *out = HEARTH_TLS_DIRECT;
    else
        return -1;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcmp(s, "1"))
        *out = 1;
    else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcmp(s, "0"))
        *out = 0;
    else
        return -1;
    return 0;
}

/* ---- passwords ---- */

static struct termios saved_tty;
static volatile sig_atomic_t tty_fd = -1;

static void restore_tty_and_die(int sig)
{
    if (tty_fd >= 0)
        tcsetattr(tty_fd, TCSAFLUSH, &saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* One line from fd into buf without its line end: 0, -1 at EOF or error, -2 when too long. */
static int read_line_fd(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    for (;;) {
        char ch;
        ssize_t r = read(fd, &ch, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (n == 0)
                return -1;
            break;
        }
        if (ch == '\n')
            break;
        if (n + 1 >= cap) {
            explicit_bzero(buf, cap);
            return -2;
        }
        buf[n++] = ch;
    }
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    buf[n] = '\0';
    return 0;
}

int account_prompt_password(const char *prompt, char *buf, size_t cap)
{
    /* The terminal itself, not stdin: `hearth muc join --stay` reads stdin, and a script's pipe
     * must never be taken for a password. */
    int fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    struct termios off;
    if (tcgetattr(fd, &saved_tty) < 0) {
        close(fd);
        return -1;
    }
    off = saved_tty;
    off.c_lflag &= ~(tcflag_t)ECHO;
    off.c_lflag |= ECHONL;
    struct sigaction sa = {.sa_handler = restore_tty_and_die}, old_int, old_term, old_hup;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGHUP, &sa, &old_hup);
    int rc = -1;
    if (write(fd, prompt, strlen(prompt)) >= 0 && tcsetattr(fd, TCSAFLUSH, &off) == 0) {
        tty_fd = fd;
        rc = read_line_fd(fd, buf, cap);
        tcsetattr(fd, TCSAFLUSH, &saved_tty);
        tty_fd = -1;
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGHUP, &old_hup, NULL);
    close(fd);
    return rc == 0 ? 0 : -1;
}

/* The password of a, from its sources in order: --password-file, HEARTH_PASSWORD, the file,
 * the terminal. */
static int find_password(const options_t *opts, const char *from_file, account_t *a)
{
    char buf[PASSWORD_MAX + 2];
    if (opts->password_file) {
        int fd = open(opts->password_file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            fail("cannot open the password file %s: %s", opts->password_file, strerror(errno));
            return EXIT_CONFIG;
        }
        int r = read_line_fd(fd, buf, sizeof(buf));
        close(fd);
        if (r == -2) {
            fail("the password in %s is longer than %d bytes", opts->password_file, PASSWORD_MAX);
            return EXIT_CONFIG;
        }
        if (r < 0 || !buf[0]) {
            fail("the password file %s is empty", opts->password_file);
            return EXIT_CONFIG;
        }
        a->password = strdup(buf);
    } else if (getenv("HEARTH_PASSWORD")) {
        const char *env = getenv("HEARTH_PASSWORD");
        if (!env[0] || strlen(env) > PASSWORD_MAX) {
            fail("HEARTH_PASSWORD is empty or longer than %d bytes", PASSWORD_MAX);
            return EXIT_CONFIG;
        }
        a->password = strdup(env);
    } else if (from_file) {
        a->password = strdup(from_file);
    } else {
        char prompt[600];
        snprintf(prompt, sizeof(prompt), "Password for %.500s: ", a->jid);
        if (account_prompt_password(prompt, buf, sizeof(buf)) != 0 || !buf[0]) {
            explicit_bzero(buf, sizeof(buf));
            fail("no password for %s: give --password-file FILE, set HEARTH_PASSWORD, put "
                 "'password = ...' in accounts.conf, or run on a terminal to be asked",
                 a->jid);
            return EXIT_CONFIG;
        }
        a->password = strdup(buf);
    }
    explicit_bzero(buf, sizeof(buf));
    if (!a->password) {
        fail("out of memory");
        return EXIT_FAILURE_OTHER;
    }
    return EXIT_OK;
}

int account_load(const options_t *opts, int need_password, account_t *a)
{
    memset(a, 0, sizeof(*a));
    parse_t p = {0};
    int rc = EXIT_OK, exists = 0;
    char *path = opts->config ? strdup(opts->config) : account_default_path();
    if (path)
        rc = parse_file(path, opts->config != NULL, &p, &exists);
    if (rc != EXIT_OK)
        goto out;
    if (exists)
        a->path = strdup(path);

    /* The section: --account, else the file's 'default', else its only section. --jid alone
     * needs no file at all. */
    section_t *s = NULL;
    const char *want = opts->account ? opts->account : (opts->jid ? NULL : p.default_name);
    if (want) {
        s = section_named(&p, want);
        if (!s) {
            if (exists)
                fail("no account [%s] in %s", want, path);
            else
                fail("no account [%s]: %s does not exist", want, path ? path : "accounts.conf");
            rc = opts->account ? EXIT_USAGE : EXIT_CONFIG;
            goto out;
        }
    } else if (!opts->jid) {
        if (p.count == 1) {
            s = &p.sections[0];
        } else if (p.count > 1) {
            fail("%s has %d accounts: choose one with --account NAME or 'default = NAME'", path,
                 p.count);
            rc = EXIT_USAGE;
            goto out;
        } else {
            fail("no account: give --jid JID, or describe one in %s (see hearth --help)",
                 path ? path : "$XDG_CONFIG_HOME/hearth/accounts.conf");
            rc = EXIT_USAGE;
            goto out;
        }
    }

    section_t none = {0};
    if (!s)
        s = &none;
    if ((s->name && !(a->name = strdup(s->name))) || dup_opt(&a->jid, opts->jid, s->jid) ||
        dup_opt(&a->resource, opts->resource, s->resource) ||
        dup_opt(&a->host, opts->host, s->host) || dup_opt(&a->cafile, opts->cafile, s->cafile)) {
        fail("out of memory");
        rc = EXIT_FAILURE_OTHER;
        goto out;
    }
    if (!a->jid) {
        fail("account [%s] in %s has no 'jid'", s->name, path);
        rc = EXIT_CONFIG;
        goto out;
    }
    const char *port = opts->port ? opts->port : s->port;
    if (port && parse_port(port, &a->port)) {
        fail("%s: the port '%s' is not a number from 1 to 65535", opts->port ? "--port" : path,
             port);
        rc = opts->port ? EXIT_USAGE : EXIT_CONFIG;
        goto out;
    }
    const char *tls = opts->tls ? opts->tls : s->tls;
    if (tls && parse_tls(tls, &a->tls)) {
        fail("%s: tls '%s' is not one of required, optional, direct", opts->tls ? "--tls" : path,
             tls);
        rc = opts->tls ? EXIT_USAGE : EXIT_CONFIG;
        goto out;
    }
    a->insecure = opts->insecure;
    if (!a->insecure && s->insecure && parse_bool(s->insecure, &a->insecure)) {
        fail("%s: insecure '%s' is not true or false", path, s->insecure);
        rc = EXIT_CONFIG;
        goto out;
    }
    if (need_password)
        rc = find_password(opts, s->password, a);

out:
    for (int i = 0; i < p.count; i++)
        section_clear(&p.sections[i]);
    free(p.default_name);
    free(path);
    if (rc != EXIT_OK)
        account_free(a);
    return rc;
}

void account_free(account_t *a)
{
    free(a->name);
    free(a->jid);
    wipe(a->password);
    free(a->resource);
    free(a->host);
    free(a->cafile);
    free(a->path);
    memset(a, 0, sizeof(*a));
}
