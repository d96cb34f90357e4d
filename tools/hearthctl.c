/* hearthctl: administration of a Hearth data directory. While hearthd runs (its lock is held)
 * every command goes through its admin API on loopback, authenticated by the key hearthd
 * writes to <data-dir>/api.key (or HEARTH_API_KEY); with the server stopped the account
 * commands work on the database, holding <data-dir>/hearthd.lock so that they never write under
 * a live hearthd. Exit 0 on success, 1 with one line on stderr otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
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
#include "pie.h"
#include "storage/storage.h"

/* Longest password accepted, bytes: far above any real one, small enough to stay on the stack. */
#define PASSWORD_MAX 1024
/* An answer of the admin API, bytes: past it the command fails (a page of users is far less). */
#define API_ANSWER_MAX (64u * 1024 * 1024)
#define API_TIMEOUT_S 30 /* for the connection and each read */
#define API_PAGE 1000    /* users per request when listing */

static const char LIVE[] = "live: through hearthd's admin API";
static const char OFFLINE[] = "offline: hearthd is stopped; on the database";

static const char USAGE[] =
    "usage: hearthctl [--config FILE] [--data-dir DIR] [--set KEY=VALUE ...] COMMAND ...\n"
    "\n"
    "While hearthd runs on the data directory, commands go through its admin API\n"
    "(admin.port on loopback) with the key in <data-dir>/api.key or $HEARTH_API_KEY;\n"
    "with hearthd stopped, the account commands work on the database (hearthctl\n"
    "takes the data directory's lock while it runs). Each says which path it took.\n"
    "\n"
    "commands:\n"
    "  adduser JID [--admin] [--password-stdin]  create an account\n"
    "  deluser JID                               delete an account (live: its sessions end)\n"
    "  passwd JID [--password-stdin]             set an account's password\n"
    "  listusers                                 list accounts, one JID per line\n"
    "  status                                    version, uptime, sessions (live only)\n"
    "  sessions                                  sessions online, one per line (live only)\n"
    "  kick JID                                  end a full JID's session, or every session\n"
    "                                            of a bare JID (live only)\n"
    "  announce [--subject TEXT] TEXT            a message to every online user (live only)\n"
    "  rooms                                     the MUC rooms, one per line: JID, occupants,\n"
    "                                            name (live only)\n"
    "  rooms create NAME OWNER                   a persistent room owned by OWNER (live only)\n"
    "  rooms destroy NAME                        destroy a room; occupants are told (live only)\n"
    "  get KEY                                   a configuration key's value and where it is\n"
    "                                            from\n"
    "  set KEY VALUE                             change a runtime key: live, applied at once;\n"
    "                                            offline, stored for the next start\n"
    "  unset KEY                                 forget a stored runtime key (back to the\n"
    "                                            config file's value or the default)\n"
    "  export FILE                               every account with its roster, pending\n"
    "                                            subscriptions, vCard, private XML and\n"
    "                                            offline messages as XEP-0227 (offline only;\n"
    "                                            FILE - is stdout)\n"
    "  import [--skip-existing] [--max-bytes N] FILE...\n"
    "                                            accounts from XEP-0227 files (Hearth's,\n"
    "                                            Prosody's, ejabberd's; offline only): all\n"
    "                                            are checked before anything is written; an\n"
    "                                            account that exists fails the import unless\n"
    "                                            --skip-existing leaves it as it is\n"
    "  migrate --to pgsql DSN                    copy the whole SQLite store into an empty\n"
    "                                            PostgreSQL database (offline only; one\n"
    "                                            transaction, each table's count checked;\n"
    "                                            DSN - reads it from stdin)\n"
    "\n"
    "options:\n"
    "  --config FILE     config file (default <data-dir>/hearthd.conf if it exists)\n"
    "  --data-dir DIR    data directory (default ./data)\n"
    "  --set KEY=VALUE   override a config key; repeatable\n"
    "  --help            this text\n"
    "  --version         the version\n"
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
    int live;     /* hearthd holds the lock: commands go through its admin API */
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

/* What hearthd would open (datadir_storage_dsn), malloc'd; NULL: no memory. */
static char *storage_dsn(const ctl_t *x)
{
    return datadir_storage_dsn(x->data_dir, config_str(x->cfg, "storage.driver"),
                               config_str(x->cfg, "storage.dsn"));
}

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
    int rc = x->lock_fd >= 0 ? 0 : datadir_lock(x->data_dir, &x->lock_fd, &err);
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
    char *dsn = storage_dsn(x);
    if (!dsn) {
        fail("out of memory");
        return 1;
    }
    rc = storage_open(driver, dsn, &x->st, &err);
    if (rc < 0) {
        fail("cannot open the %s database: %s", driver, err ? err : hearth_strerror(rc));
        x->st = NULL;
    }
    free(err);
    free(dsn);
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

/* Whether hearthd runs on the data directory: 1 when it holds the lock (x->live), 0 when it
 * does not (the lock is then held here, so it cannot start under us), -1 after printing why
 * neither could be told. A data directory that does not exist is offline. */
static int ctl_mode(ctl_t *x)
{
    struct stat sb;
    if (stat(x->data_dir, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return 0;
    char *err = NULL;
    int rc = datadir_lock(x->data_dir, &x->lock_fd, &err);
    free(err);
    if (rc == HEARTH_EBUSY) {
        x->lock_fd = -1;
        return x->live = 1;
    }
    if (rc < 0) {
        x->lock_fd = -1;
        return 0; /* ctl_open says why when the command needs the database */
    }
    return 0;
}

/* ---- the admin API of a running hearthd ---- */

/* The admin port from <data-dir>/hearthd.ports, or -1. */
static int admin_port(const ctl_t *x)
{
    char *path = datadir_path(x->data_dir, "hearthd.ports");
    FILE *f = path ? fopen(path, "r") : NULL;
    free(path);
    int port = -1, p;
    char name[64];
    while (f && fscanf(f, "%63s %d", name, &p) == 2)
        if (!strcmp(name, "admin"))
            port = p;
    if (f)
        fclose(f);
    return port;
}

/* The key: $HEARTH_API_KEY, else <data-dir>/api.key; 0, else 1 after printing why. */
static int api_key(const ctl_t *x, char *key, size_t cap)
{
    const char *env = getenv("HEARTH_API_KEY");
    if (env && *env) {
        snprintf(key, cap, "%s", env);
        return 0;
    }
    char *path = datadir_path(x->data_dir, "api.key");
    FILE *f = path ? fopen(path, "r") : NULL;
    int r = f ? read_line(f, key, cap) : -1;
    if (f)
        fclose(f);
    if (r < 0 || !*key) {
        fail("hearthd is running but its API key %s cannot be read (%s); run hearthctl as the "
             "user hearthd runs as, or set HEARTH_API_KEY",
             path ? path : "api.key", f ? "empty" : strerror(errno));
        free(path);
        return 1;
    }
    free(path);
    return 0;
}

/* Percent-encodes everything but unreserved characters (a path segment). */
static void url_encode(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            strchr("-._~", c))
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", c);
    }
    out[o] = '\0';
}

static int connect_to(const char *bind, int port)
{
    struct sockaddr_storage ss = {0};
    socklen_t len;
    struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    /* A wildcard bind is reached on loopback. */
    if (!strcmp(bind, "0.0.0.0"))
        bind = "127.0.0.1";
    else if (!strcmp(bind, "::"))
        bind = "::1";
    if (inet_pton(AF_INET, bind, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        len = sizeof(*in4);
    } else if (inet_pton(AF_INET6, bind, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        len = sizeof(*in6);
    } else {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = API_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&ss, len) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* One request to the admin API: 0 with *status and *reply (the JSON answer, NULL when none;
 * the caller decrefs), else 1 after printing why. body may be NULL. */
static int api_call(const ctl_t *x, const char *method, const char *path, json_t *body, int *status,
                    json_t **reply)
{
    char key[256];
    *reply = NULL;
    int port = admin_port(x);
    if (port <= 0) {
        fail("hearthd is running on %s and its admin API is off (admin.port = -1); stop it "
             "first, or turn the admin API on",
             x->data_dir);
        return 1;
    }
    if (api_key(x, key, sizeof(key)))
        return 1;
    char *json = body ? json_dumps(body, JSON_COMPACT) : NULL;
    char *req = NULL;
    int n = asprintf(&req,
                     "%s %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer %s\r\n"
                     "Connection: close\r\nUser-Agent: hearthctl/" HEARTH_VERSION "\r\n"
                     "%sContent-Length: %zu\r\n\r\n%s",
                     method, path, key, json ? "Content-Type: application/json\r\n" : "",
                     json ? strlen(json) : 0, json ? json : "");
    explicit_bzero(key, sizeof(key));
    if (json) {
        explicit_bzero(json, strlen(json)); /* it may carry a password */
        free(json);
    }
    if (n < 0) {
        fail("out of memory");
        return 1;
    }
    const char *bind = config_str(x->cfg, "admin.bind");
    int fd = connect_to(bind, port);
    if (fd < 0) {
        explicit_bzero(req, (size_t)n);
        free(req);
        fail("cannot reach hearthd's admin API at %s port %d: %s", bind, port, strerror(errno));
        return 1;
    }
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    explicit_bzero(req, (size_t)n);
    free(req);
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = off == (size_t)n ? 0 : -1;
    while (!rc) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = cap <= API_ANSWER_MAX ? realloc(buf, cap) : NULL;
            if (!nb) {
                rc = -1;
                break;
            }
            buf = nb;
        }
        ssize_t r = recv(fd, buf + len, cap - len - 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = -1;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    int e = errno;
    close(fd);
    char *sep = buf && !rc ? (buf[len] = '\0', strstr(buf, "\r\n\r\n")) : NULL;
    if (!sep || sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
        free(buf);
        fail("no answer from hearthd's admin API at %s port %d%s%s", bind, port, rc ? ": " : "",
             rc ? strerror(e) : "");
        return 1;
    }
    sep += 4;
    if (*sep) {
        *reply = json_loads(sep, 0, NULL);
        if (!*reply) {
            free(buf);
            fail("the admin API's answer is not JSON (HTTP %d)", *status);
            return 1;
        }
    }
    free(buf);
    return 0;
}

/* A refusal the command has no words of its own for: 1 after printing it. */
static int api_refused(int status, json_t *reply)
{
    const char *why = json_string_value(json_object_get(reply, "error"));
    if (status == 401)
        fail("the admin API refused the key (HTTP 401: %s); is api.key from this run of "
             "hearthd?",
             why ? why : "unauthorized");
    else
        fail("the admin API refused: %s (HTTP %d)", why ? why : "no reason given", status);
    json_decref(reply);
    return 1;
}

/* The API's path for an account: /api/v1/users/<node><tail>. */
static void user_path(const hearth_jid_t *j, const char *tail, char *out, size_t cap)
{
    char enc[3200];
    url_encode(j->node, enc, sizeof(enc));
    snprintf(out, cap, "/api/v1/users/%s%s", enc, tail);
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
    const char *subject;
    char text[8200];      /* announce: the words of the message, joined by spaces */
    const char *words[3]; /* rooms, set, get, unset: their positional arguments */
    int nwords;
    char **rest; /* export, import: the arguments after the command, parsed by it */
    int nrest;
} cmd_args_t;

/* ---- live commands: through the admin API ---- */

static int live_adduser(ctl_t *x, const cmd_args_t *a, const hearth_jid_t *j)
{
    char password[PASSWORD_MAX + 2];
    int st = 1, status;
    json_t *reply = NULL;
    if (get_password(j->bare, a->password_stdin, password, sizeof password))
        goto out;
    json_t *body =
        json_pack("{s:s, s:s, s:b}", "username", j->node, "password", password, "admin", a->admin);
    explicit_bzero(password, sizeof password);
    int rc = body ? api_call(x, "POST", "/api/v1/users", body, &status, &reply) : 1;
    json_decref(body);
    if (rc)
        goto out;
    if (status == 409)
        fail("user %s already exists", j->bare);
    else if (status != 201) {
        api_refused(status, reply);
        reply = NULL;
    } else {
        fprintf(stderr, "created %s%s (%s)\n", j->bare, a->admin ? " (admin)" : "", LIVE);
        st = 0;
    }
out:
    explicit_bzero(password, sizeof password);
    json_decref(reply);
    return st;
}

static int live_deluser(ctl_t *x, const hearth_jid_t *j)
{
    char path[4096];
    int status;
    json_t *reply = NULL;
    user_path(j, "", path, sizeof(path));
    if (api_call(x, "DELETE", path, NULL, &status, &reply))
        return 1;
    if (status == 404) {
        json_decref(reply);
        fail("no such user %s", j->bare);
        return 1;
    }
    if (status != 204)
        return api_refused(status, reply);
    json_decref(reply);
    fprintf(stderr, "deleted %s; its sessions ended (%s)\n", j->bare, LIVE);
    return 0;
}

static int live_passwd(ctl_t *x, const cmd_args_t *a, const hearth_jid_t *j)
{
    char path[4096], password[PASSWORD_MAX + 2];
    int status;
    json_t *reply = NULL;
    /* Ask for the password only for an account that exists. */
    user_path(j, "", path, sizeof(path));
    if (api_call(x, "GET", path, NULL, &status, &reply))
        return 1;
    if (status == 404) {
        json_decref(reply);
        fail("no such user %s", j->bare);
        return 1;
    }
    if (status != 200)
        return api_refused(status, reply);
    json_decref(reply);
    reply = NULL;
    if (get_password(j->bare, a->password_stdin, password, sizeof password)) {
        explicit_bzero(password, sizeof password);
        return 1;
    }
    json_t *body = json_pack("{s:s}", "password", password);
    explicit_bzero(password, sizeof password);
    user_path(j, "/password", path, sizeof(path));
    int rc = body ? api_call(x, "PUT", path, body, &status, &reply) : 1;
    json_decref(body);
    if (rc)
        return 1;
    if (status == 404) {
        json_decref(reply);
        fail("no such user %s", j->bare);
        return 1;
    }
    if (status != 204)
        return api_refused(status, reply);
    json_decref(reply);
    fprintf(stderr, "password of %s changed (%s)\n", j->bare, LIVE);
    return 0;
}

/* Every item of a paged list route (GET route?offset=&limit=), its array under member, each
 * printed by print; *listed counts them. 0, or 1 after saying what failed. */
static int api_list(ctl_t *x, const char *route, const char *member, void (*print)(json_t *),
                    long *listed)
{
    long offset = 0, total = 0;
    *listed = 0;
    do {
        char path[128];
        int status;
        json_t *reply = NULL;
        snprintf(path, sizeof(path), "%s?offset=%ld&limit=%d", route, offset, API_PAGE);
        if (api_call(x, "GET", path, NULL, &status, &reply))
            return 1;
        if (status != 200)
            return api_refused(status, reply);
        total = (long)json_integer_value(json_object_get(reply, "total"));
        json_t *items = json_object_get(reply, member), *it;
        size_t i;
        json_array_foreach(items, i, it)
        {
            print(it);
            (*listed)++;
        }
        size_t n = json_array_size(items);
        json_decref(reply);
        if (!n)
            break;
        offset += (long)n;
    } while (offset < total);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fail("cannot write to stdout: %s", strerror(errno));
        return 1;
    }
    return 0;
}

static void print_user(json_t *u)
{
    printf("%s%s\n", json_string_value(json_object_get(u, "jid")),
           json_is_true(json_object_get(u, "admin")) ? " (admin)" : "");
}

static int live_listusers(ctl_t *x)
{
    long listed;
    if (api_list(x, "/api/v1/users", "users", print_user, &listed))
        return 1;
    fprintf(stderr, "%ld account%s (%s)\n", listed, listed == 1 ? "" : "s", LIVE);
    return 0;
}

/* The commands that exist only against a running server. */
static int offline_refused(const char *cmd)
{
    fail("%s needs a running hearthd (none holds the data directory's lock)", cmd);
    return 1;
}

static int cmd_status(ctl_t *x, const cmd_args_t *a)
{
    (void)a;
    if (!x->live)
        return offline_refused("status");
    int status;
    json_t *r = NULL;
    if (api_call(x, "GET", "/api/v1/status", NULL, &status, &r))
        return 1;
    if (status != 200)
        return api_refused(status, r);
    json_t *mem = json_object_get(r, "memory");
    printf("version: %s\ndomain: %s\nuptime_s: %lld\nsessions_online: %lld\n"
           "sessions_detached: %lld\nconnections: %lld\nworkers: %lld\nmemory_rss_bytes: %lld\n",
           json_string_value(json_object_get(r, "version")),
           json_string_value(json_object_get(r, "domain")),
           (long long)json_integer_value(json_object_get(r, "uptime_s")),
           (long long)json_integer_value(json_object_get(r, "sessions_online")),
           (long long)json_integer_value(json_object_get(r, "sessions_detached")),
           (long long)json_integer_value(json_object_get(r, "connections")),
           (long long)json_integer_value(json_object_get(r, "workers")),
           (long long)json_integer_value(json_object_get(mem, "rss_bytes")));
    json_decref(r);
    fprintf(stderr, "(%s)\n", LIVE);
    return fflush(stdout) ? 1 : 0;
}

static int cmd_sessions(ctl_t *x, const cmd_args_t *a)
{
    (void)a;
    if (!x->live)
        return offline_refused("sessions");
    int status;
    json_t *r = NULL;
    if (api_call(x, "GET", "/api/v1/sessions", NULL, &status, &r))
        return 1;
    if (status != 200)
        return api_refused(status, r);
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(r, "sessions"), i, v)
    {
        printf("%s %s %s %lld\n", json_string_value(json_object_get(v, "jid")),
               json_string_value(json_object_get(v, "state")),
               json_is_true(json_object_get(v, "available")) ? "available" : "unavailable",
               (long long)json_integer_value(json_object_get(v, "priority")));
    }
    fprintf(stderr, "%zu session%s (%s)\n", json_array_size(json_object_get(r, "sessions")),
            json_array_size(json_object_get(r, "sessions")) == 1 ? "" : "s", LIVE);
    json_decref(r);
    return fflush(stdout) ? 1 : 0;
}

static int cmd_kick(ctl_t *x, const cmd_args_t *a)
{
    if (!x->live)
        return offline_refused("kick");
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *reason = NULL;
    if (hearth_jid_parse(a->jid, strlen(a->jid), &j, &reason) < 0 || !j.node) {
        fail("invalid JID '%s': %s", a->jid, reason ? reason : "it has no user part");
        hearth_jid_clear(&j);
        return 1;
    }
    char enc[3200], path[3300];
    url_encode(j.full, enc, sizeof(enc));
    snprintf(path, sizeof(path), "/api/v1/sessions/%s", enc);
    int status, st = 1;
    json_t *r = NULL;
    if (api_call(x, "DELETE", path, NULL, &status, &r))
        goto out;
    if (status == 404) {
        fail("no session of %s", j.full);
        json_decref(r);
    } else if (status != 200) {
        api_refused(status, r);
    } else {
        fprintf(stderr, "ended %lld session(s) of %s (%s)\n",
                (long long)json_integer_value(json_object_get(r, "ended")), j.full, LIVE);
        json_decref(r);
        st = 0;
    }
out:
    hearth_jid_clear(&j);
    return st;
}

static int cmd_announce(ctl_t *x, const cmd_args_t *a)
{
    if (!x->live)
        return offline_refused("announce");
    json_t *body = a->subject ? json_pack("{s:s, s:s}", "body", a->text, "subject", a->subject)
                              : json_pack("{s:s}", "body", a->text);
    int status;
    json_t *r = NULL;
    int rc = body ? api_call(x, "POST", "/api/v1/announce", body, &status, &r) : 1;
    json_decref(body);
    if (rc)
        return 1;
    if (status != 200)
        return api_refused(status, r);
    fprintf(stderr, "sent to %lld session(s) (%s)\n",
            (long long)json_integer_value(json_object_get(r, "sent")), LIVE);
    json_decref(r);
    return 0;
}

static int cmd_adduser(ctl_t *x, const cmd_args_t *a)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    char password[PASSWORD_MAX + 2];
    storage_account_t acct = {0}, existing = {0};
    int status = 1;
    if (parse_user_jid(x, a->jid, &j))
        goto out;
    if (x->live) {
        status = live_adduser(x, a, &j);
        goto out;
    }
    if (ctl_open(x, 1))
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
    fprintf(stderr, "created %s%s (%s)\n", j.bare, a->admin ? " (admin)" : "", OFFLINE);
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
    if (parse_user_jid(x, a->jid, &j))
        goto out;
    if (x->live) {
        status = live_deluser(x, &j);
        goto out;
    }
    if (ctl_open(x, 0))
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
    fprintf(stderr, "deleted %s (%s)\n", j.bare, OFFLINE);
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
    if (parse_user_jid(x, a->jid, &j))
        goto out;
    if (x->live) {
        status = live_passwd(x, a, &j);
        goto out;
    }
    if (ctl_open(x, 0))
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
    fprintf(stderr, "password of %s changed (%s)\n", j.bare, OFFLINE);
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
    (void)a;
    storage_account_t *list = NULL;
    size_t n = 0;
    if (x->live)
        return live_listusers(x);
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
    fprintf(stderr, "%zu account%s (%s)\n", n, n == 1 ? "" : "s", OFFLINE);
    return 0;
}

/* ---- rooms (live only) ---- */

static void print_room(json_t *r)
{
    printf("%s\t%lld\t%s\n", json_string_value(json_object_get(r, "jid")),
           (long long)json_integer_value(json_object_get(r, "occupants")),
           json_string_value(json_object_get(r, "name")));
}

static int rooms_list(ctl_t *x)
{
    long listed;
    if (api_list(x, "/api/v1/rooms", "rooms", print_room, &listed))
        return 1;
    fprintf(stderr, "%ld room%s (%s)\n", listed, listed == 1 ? "" : "s", LIVE);
    return 0;
}

static int cmd_rooms(ctl_t *x, const cmd_args_t *a)
{
    const char *verb = a->nwords ? a->words[0] : NULL;
    int create = verb && !strcmp(verb, "create"), destroy = verb && !strcmp(verb, "destroy");
    if ((verb && !create && !destroy) || (create && a->nwords != 3) ||
        (destroy && a->nwords != 2)) {
        fail("rooms: expected 'rooms', 'rooms create NAME OWNER' or 'rooms destroy NAME' (see "
             "hearthctl --help)");
        return 1;
    }
    if (!x->live)
        return offline_refused("rooms");
    if (!verb)
        return rooms_list(x);
    char enc[3200], path[3300];
    int status;
    json_t *r = NULL, *body = NULL;
    if (create) {
        body = json_pack("{s:s, s:s}", "name", a->words[1], "owner", a->words[2]);
        if (!body || api_call(x, "POST", "/api/v1/rooms", body, &status, &r)) {
            json_decref(body);
            return 1;
        }
        json_decref(body);
        if (status != 201)
            return api_refused(status, r);
        fprintf(stderr, "created room %s (%s)\n", json_string_value(json_object_get(r, "jid")),
                LIVE);
        json_decref(r);
        return 0;
    }
    url_encode(a->words[1], enc, sizeof(enc));
    snprintf(path, sizeof(path), "/api/v1/rooms/%s", enc);
    if (api_call(x, "DELETE", path, NULL, &status, &r))
        return 1;
    if (status != 204)
        return api_refused(status, r);
    json_decref(r);
    fprintf(stderr, "destroyed room %s (%s)\n", a->words[1], LIVE);
    return 0;
}

/* ---- runtime settings: the admin API live, the database's properties offline ---- */

static int live_setting(ctl_t *x, const char *method, const char *key, const char *value)
{
    char enc[512], path[600];
    url_encode(key, enc, sizeof(enc));
    snprintf(path, sizeof(path), "/api/v1/properties/%s", enc);
    json_t *body = value ? json_pack("{s:s}", "value", value) : NULL, *r = NULL;
    int status;
    if ((value && !body) || api_call(x, method, path, body, &status, &r)) {
        json_decref(body);
        return 1;
    }
    json_decref(body);
    if (status == 204) {
        fprintf(stderr, "%s is back to %s (%s; applied now)\n", key,
                "its config file value or default", LIVE);
        json_decref(r);
        return 0;
    }
    if (status != 200)
        return api_refused(status, r);
    printf("%s = %s\n", key, json_string_value(json_object_get(r, "value")));
    const char *from = json_is_true(json_object_get(r, "fixed"))    ? "fixed by the config file"
                       : json_is_true(json_object_get(r, "stored")) ? "stored in the database"
                                                                    : "the default";
    fprintf(stderr, "(%s%s; %s)\n", from, !strcmp(method, "PUT") ? ", applied now" : "", LIVE);
    json_decref(r);
    return fflush(stdout) ? 1 : 0;
}

static int offline_setting(ctl_t *x, const char *verb, const char *key, const char *value)
{
    char *err = NULL, name[128], *stored = NULL;
    const config_key_t *k = config_key_find(key);
    if (!k) {
        fail("unknown configuration key '%s'", key);
        return 1;
    }
    int rc = strcmp(verb, "get") ? config_check_runtime(x->cfg, key, value, &err) : 0;
    if (rc) {
        fail("%s", err ? err : hearth_strerror(rc));
        free(err);
        return 1;
    }
    if (ctl_open(x, 0))
        return 1;
    snprintf(name, sizeof(name), CONFIG_PROPERTY_PREFIX "%s", key);
    if (!strcmp(verb, "get")) {
        rc = k->runtime ? storage_sync_property_get(x->st, name, &stored) : HEARTH_ENOTFOUND;
        if (rc && rc != HEARTH_ENOTFOUND) {
            fail("cannot read the database: %s", hearth_strerror(rc));
            return 1;
        }
        char buf[1024];
        config_value_string(x->cfg, key, buf, sizeof(buf));
        int fixed = config_is_fixed(x->cfg, key);
        printf("%s = %s\n", key, stored && !fixed ? stored : buf);
        fprintf(stderr, "(%s; %s)\n",
                fixed    ? "fixed by the config file"
                : stored ? "stored in the database"
                         : "the default",
                OFFLINE);
        free(stored);
        return fflush(stdout) ? 1 : 0;
    }
    rc = storage_sync_property_set(x->st, name, value);
    if (rc) {
        fail("cannot write the database: %s", hearth_strerror(rc));
        return 1;
    }
    if (value)
        fprintf(stderr, "%s = %s stored in the database for the next start (%s)\n", key, value,
                OFFLINE);
    else
        fprintf(stderr, "%s no longer stored in the database (%s)\n", key, OFFLINE);
    return 0;
}

static int cmd_setting(ctl_t *x, const cmd_args_t *a, const char *verb, int nwords)
{
    if (a->nwords != nwords) {
        fail("%s: expected %s (see hearthctl --help)", verb, nwords == 2 ? "KEY VALUE" : "KEY");
        return 1;
    }
    const char *key = a->words[0], *value = nwords == 2 ? a->words[1] : NULL;
    if (!x->live)
        return offline_setting(x, verb, key, value);
    return live_setting(x, !strcmp(verb, "get") ? "GET" : value ? "PUT" : "DELETE", key, value);
}

static int cmd_get(ctl_t *x, const cmd_args_t *a)
{
    return cmd_setting(x, a, "get", 1);
}

static int cmd_set(ctl_t *x, const cmd_args_t *a)
{
    return cmd_setting(x, a, "set", 2);
}

static int cmd_unset(ctl_t *x, const cmd_args_t *a)
{
    return cmd_setting(x, a, "unset", 1);
}

/* ---- XEP-0227 export and import (tools/pie.c): offline only ---- */

/* Both write or read the whole store in one go; under a live hearthd they would race its
 * writes, so they want it stopped rather than going through the admin API. */
static int refuse_live(const ctl_t *x, const char *verb)
{
    if (!x->live)
        return 0;
    fail("%s: hearthd is running on %s; stop it first (%s works on the database of a stopped "
         "server only)",
         verb, x->data_dir, verb);
    return 1;
}

static int cmd_export(ctl_t *x, const cmd_args_t *a)
{
    if (a->nrest != 1 || (a->rest[0][0] == '-' && a->rest[0][1] != '\0')) {
        fail("export: expected FILE (see hearthctl --help)");
        return 1;
    }
    if (refuse_live(x, "export") || ctl_open(x, 0))
        return 1;
    const char *path = a->rest[0];
    int to_stdout = !strcmp(path, "-");
    FILE *out = to_stdout ? stdout : fopen(path, "wx");
    if (!out) {
        fail("export: cannot create %s: %s%s", path, strerror(errno),
             errno == EEXIST ? " (an export never overwrites a file)" : "");
        return 1;
    }
    char *err = NULL;
    int rc = pie__export(x->st, x->domain, out, &err);
    if (!to_stdout && fclose(out) != 0 && rc == 0) {
        rc = 1;
        err = strdup("cannot write the file");
    } else if (to_stdout && fflush(out) != 0 && rc == 0) {
        rc = 1;
        err = strdup("cannot write to stdout");
    }
    if (rc) {
        fail("export: %s", err ? err : "out of memory");
        if (!to_stdout)
            unlink(path); /* no half file that looks like an export */
    } else {
        fprintf(stderr, "exported to %s (%s)\n", to_stdout ? "stdout" : path, OFFLINE);
    }
    free(err);
    return rc;
}

static int cmd_import(ctl_t *x, const cmd_args_t *a)
{
    pie_import_opts_t o = {.domain = x->domain,
                           .iterations = (unsigned)config_int(x->cfg, "auth.scram_iterations"),
                           .max_bytes = PIE_FILE_MAX_DEFAULT,
                           .report = stderr};
    const char **files = calloc((size_t)a->nrest + 1, sizeof(*files));
    size_t nfiles = 0;
    if (!files) {
        fail("out of memory");
        return 1;
    }
    int rc = 1;
    for (int i = 0; i < a->nrest; i++) {
        const char *s = a->rest[i];
        if (!strcmp(s, "--skip-existing")) {
            o.skip_existing = 1;
        } else if (!strcmp(s, "--max-bytes")) {
            char *end = NULL;
            unsigned long long v = i + 1 < a->nrest ? strtoull(a->rest[i + 1], &end, 10) : 0;
            if (!end || *end || v == 0 || v > SIZE_MAX / 2) {
                fail("import: --max-bytes needs a positive number of bytes");
                goto out;
            }
            o.max_bytes = (size_t)v;
            i++;
        } else if (s[0] == '-' && s[1] != '\0') {
            fail("import: unknown option %s (see hearthctl --help)", s);
            goto out;
        } else {
            files[nfiles++] = s;
        }
    }
    if (nfiles == 0) {
        fail("import: expected FILE... (see hearthctl --help)");
        goto out;
    }
    if (refuse_live(x, "import") || ctl_open(x, 0))
        goto out;
    char *err = NULL;
    rc = pie__import(x->st, files, nfiles, &o, &err);
    if (rc)
        fail("import: %s", err ? err : "out of memory");
    else
        fprintf(stderr, "(%s)\n", OFFLINE);
    free(err);
out:
    free(files);
    return rc;
}

/* migrate --to pgsql DSN: the whole SQLite store into an empty PostgreSQL database. DSN "-" is
 * read as one line from stdin, so that a password in it stays out of the process list (libpq's
 * PGPASSWORD and ~/.pgpass work too). */
static int cmd_migrate(ctl_t *x, const cmd_args_t *a)
{
    const char *to = NULL, *dsn = NULL;
    for (int i = 0; i < a->nrest; i++) {
        if (!strcmp(a->rest[i], "--to") && i + 1 < a->nrest) {
            to = a->rest[++i];
        } else if (a->rest[i][0] == '-' && a->rest[i][1] != '\0') {
            fail("migrate: unknown option %s (see hearthctl --help)", a->rest[i]);
            return 1;
        } else if (!dsn) {
            dsn = a->rest[i];
        } else {
            fail("migrate: one DSN expected, got '%s' too (see hearthctl --help)", a->rest[i]);
            return 1;
        }
    }
    if (!to || !dsn) {
        fail("migrate: expected --to pgsql DSN (see hearthctl --help)");
        return 1;
    }
    if (strcmp(to, "pgsql") != 0) {
        fail("migrate: cannot migrate to '%s': the only target is pgsql (from the SQLite store)",
             to);
        return 1;
    }
    const char *driver = config_str(x->cfg, "storage.driver");
    if (strcmp(driver, "sqlite") != 0) {
        fail("migrate: storage.driver is %s already; migrate copies a SQLite store", driver);
        return 1;
    }
    char line[4096];
    if (!strcmp(dsn, "-")) {
        if (read_line(stdin, line, sizeof line) != 0 || !*line) {
            fail("migrate: no connection string on stdin");
            return 1;
        }
        dsn = line;
    }
    /* Opened once through the driver, so that a store of an older build is migrated first, and
     * held: hearthd cannot start on it while it is copied. */
    if (refuse_live(x, "migrate") || ctl_open(x, 0))
        return 1;
    storage_close(x->st);
    x->st = NULL;
    char *path = storage_dsn(x);
    char *err = NULL;
    int rc = path ? storage_copy_to_pgsql(path, dsn, stdout, &err) : HEARTH_ENOMEM;
    if (rc) {
        fail("migrate: %s; the target is left as it was", err ? err : hearth_strerror(rc));
    } else {
        fflush(stdout);
        fprintf(stderr,
                "migrated %s to PostgreSQL (%s); it is left as it was. To run hearthd on the "
                "copy, set storage.driver = pgsql and storage.dsn to the connection string "
                "given\n",
                path, OFFLINE);
    }
    explicit_bzero(line, sizeof line);
    free(err);
    free(path);
    return rc ? 1 : 0;
}

typedef struct command {
    const char *name;
    int (*run)(ctl_t *x, const cmd_args_t *a);
    int takes_jid;
    int takes_admin;
    int takes_password;
    int takes_text;  /* announce: --subject TEXT and the words of the message */
    int takes_words; /* positional arguments, at most this many (cmd_args_t.words) */
    int takes_rest;  /* the command parses its own arguments (cmd_args_t.rest) */
} command_t;

static const command_t COMMANDS[] = {
    {"adduser", cmd_adduser, 1, 1, 1, 0, 0, 0}, {"deluser", cmd_deluser, 1, 0, 0, 0, 0, 0},
    {"passwd", cmd_passwd, 1, 0, 1, 0, 0, 0},   {"listusers", cmd_listusers, 0, 0, 0, 0, 0, 0},
    {"status", cmd_status, 0, 0, 0, 0, 0, 0},   {"sessions", cmd_sessions, 0, 0, 0, 0, 0, 0},
    {"kick", cmd_kick, 1, 0, 0, 0, 0, 0},       {"announce", cmd_announce, 0, 0, 0, 1, 0, 0},
    {"rooms", cmd_rooms, 0, 0, 0, 0, 3, 0},     {"get", cmd_get, 0, 0, 0, 0, 1, 0},
    {"set", cmd_set, 0, 0, 0, 0, 2, 0},         {"unset", cmd_unset, 0, 0, 0, 0, 1, 0},
    {"export", cmd_export, 0, 0, 0, 0, 0, 1},   {"import", cmd_import, 0, 0, 0, 0, 0, 1},
    {"migrate", cmd_migrate, 0, 0, 0, 0, 0, 1},
};

/* Command arguments in any order; 0, else 1 after printing why. */
static int parse_command_args(const command_t *cmd, int argc, char **argv, cmd_args_t *a)
{
    if (cmd->takes_rest) {
        a->rest = argv;
        a->nrest = argc;
        return 0;
    }
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (cmd->takes_admin && strcmp(s, "--admin") == 0)
            a->admin = 1;
        else if (cmd->takes_password && strcmp(s, "--password-stdin") == 0)
            a->password_stdin = 1;
        else if (cmd->takes_text && strcmp(s, "--subject") == 0) {
            if (i + 1 >= argc) {
                fail("%s: --subject needs a value (see hearthctl --help)", cmd->name);
                return 1;
            }
            a->subject = argv[++i];
        } else if (cmd->takes_text && s[0] != '-') {
            size_t have = strlen(a->text);
            if (have + strlen(s) + 2 > sizeof(a->text)) {
                fail("%s: the message is too long (at most %zu bytes)", cmd->name,
                     sizeof(a->text) - 8);
                return 1;
            }
            snprintf(a->text + have, sizeof(a->text) - have, "%s%s", have ? " " : "", s);
        } else if (s[0] == '-' && s[1] != '\0' && !(cmd->takes_words && a->nwords)) {
            fail("%s: unknown option %s (see hearthctl --help)", cmd->name, s);
            return 1;
        } else if (cmd->takes_words && a->nwords < cmd->takes_words)
            a->words[a->nwords++] = s;
        else if (cmd->takes_jid && !a->jid)
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
    if (cmd->takes_text && !a->text[0]) {
        fail("%s: missing message (see hearthctl --help)", cmd->name);
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
    ctl_mode(&x);
    status = cmd->run(&x, &args);
out:
    ctl_close(&x);
    config_free(x.cfg);
    hearth_jid_clear(&dom);
    free(err);
    free(sets);
    return status;
}
