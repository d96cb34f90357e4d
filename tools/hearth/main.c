/* hearth, the terminal client: the command line, the help page, the exit codes, and the one
 * connection every command opens (account to client configuration, connect, why it failed in
 * words). The commands themselves are in oneshot.c and ui.c. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth.h"

static const char HELP[] =
    "NAME\n"
    "    hearth - the Hearth terminal XMPP client\n"
    "\n"
    "SYNOPSIS\n"
    "    hearth [OPTIONS]                          interactive chat\n"
    "    hearth [OPTIONS] send JID [TEXT|-]        send one message (- or no TEXT: stdin)\n"
    "    hearth [OPTIONS] roster                   print the contact list\n"
    "    hearth [OPTIONS] muc join ROOM NICK [--stay] [--room-password P]\n"
    "                                              join a room, print occupants and subject\n"
    "    hearth [OPTIONS] register                 create the account (XEP-0077)\n"
    "\n"
    "OPTIONS\n"
    "    -a, --account NAME     the [NAME] section of accounts.conf\n"
    "    -j, --jid JID          the account's address (overrides the file's jid)\n"
    "    --password-file FILE   read the password from the first line of FILE\n"
    "    --host HOST            connect here instead of the domain's DNS SRV records\n"
    "    --port PORT            port (default 5222; 5223 with --tls direct)\n"
    "    --tls MODE             required (STARTTLS, the default), optional, direct\n"
    "    --cafile FILE          trust the CA certificates of this PEM file\n"
    "    --insecure             do not check the server's certificate (tests only)\n"
    "    --resource RES         the resource to ask for (default: the server picks)\n"
    "    --config FILE          accounts file (default $XDG_CONFIG_HOME/hearth/accounts.conf,\n"
    "                           else ~/.config/hearth/accounts.conf)\n"
    "    --timeout SECONDS      give up connecting or waiting after this (default 30)\n"
    "    --stay                 muc join: stay in the room, print its messages, send the\n"
    "                           lines of stdin; leave at end of input\n"
    "    --room-password P      muc join: the room's password\n"
    "    -v, --verbose          the library's log lines on stderr\n"
    "    -h, --help             this page;  --version  the version\n"
    "\n"
    "PASSWORD\n"
    "    Taken from, in order: --password-file, the HEARTH_PASSWORD environment variable,\n"
    "    the account's 'password' in accounts.conf, else asked on the terminal without echo.\n"
    "\n"
    "ACCOUNTS FILE\n"
    "    INI sections, one per account; keys: jid, password, resource, host, port, tls,\n"
    "    cafile, insecure; 'default = NAME' before any section picks the account used\n"
    "    without --account. A file holding a password must be readable by its owner only\n"
    "    (chmod 600), else hearth refuses it. Example:\n"
    "        default = work\n"
    "        [work]\n"
    "        jid = alice@example.org\n"
    "        password = secret\n"
    "\n"
    "INTERACTIVE COMMANDS\n"
    "    /msg JID [TEXT]  switch to a conversation (and send TEXT)\n"
    "    /add JID [NAME]  add a contact and ask to see its presence\n"
    "    /accept JID      let JID see your presence (and ask for its own)\n"
    "    /deny JID        refuse JID's request, or revoke its subscription\n"
    "    /remove JID      remove a contact\n"
    "    /roster          the contact list with presence\n"
    "    /status SHOW [TEXT]  online, chat, away, xa, dnd, or offline\n"
    "    /join ROOM NICK [PASSWORD]  enter a room;  /leave  leave the current room\n"
    "    /who             the current room's occupants\n"
    "    /help, /quit     (Ctrl-D quits too)\n"
    "    A line without / goes to the current conversation or room.\n"
    "\n"
    "EXIT STATUS\n"
    "    0  success\n"
    "    1  another failure: the connection broke, a stream error, an I/O error\n"
    "    2  usage error: unknown option, missing argument, no such account\n"
    "    3  configuration error: accounts.conf unreadable, malformed, or holding a password\n"
    "       while readable by others; no password available\n"
    "    4  the server cannot be reached: name resolution failed, connection refused\n"
    "    5  the server's certificate is not trusted (use --cafile, or --insecure)\n"
    "    6  TLS failed otherwise, or the server offers no acceptable security\n"
    "    7  authentication failed: wrong user name or password\n"
    "    8  the server refused: the account exists, registration is closed, the\n"
    "       recipient or room answered with an error\n"
    "    9  timeout: no answer within --timeout\n"
    "\n"
    "FILES\n"
    "    $XDG_CONFIG_HOME/hearth/accounts.conf   accounts\n"
    "    $XDG_STATE_HOME/hearth/history          interactive input history\n"
    "                                            (default ~/.local/state/hearth/history)\n";

static const char USAGE_LINE[] =
    "usage: hearth [OPTIONS] [send JID TEXT | roster | muc join ROOM NICK | register]\n"
    "       (hearth --help for the whole page)\n";

void (*notice_sink)(const char *line);

void fail(const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(buf, sizeof(buf), "hearth: ");
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    if (notice_sink) {
        notice_sink(buf);
    } else {
        fputs(buf, stderr);
        fputc('\n', stderr);
    }
}

static void on_log(void *ud, hearth_log_level_t level, const char *line)
{
    const options_t *opts = ud;
    /* Failures are told by the command in its own words; the library's lines are for -v. */
    if (level > HEARTH_LOG_ERROR && !opts->verbose)
        return;
    if (notice_sink) {
        notice_sink(line);
    } else {
        fputs(line, stderr);
        fputc('\n', stderr);
    }
}

int exit_code_of(int err)
{
    switch (err) {
    case 0:
        return EXIT_OK;
    case HEARTH_EDNS:
    case HEARTH_ECONNECT:
        return EXIT_UNREACHABLE;
    case HEARTH_ECERT:
        return EXIT_CERT;
    case HEARTH_ETLS:
    case HEARTH_EPOLICY:
        return EXIT_TLS;
    case HEARTH_EAUTH:
        return EXIT_AUTH;
    case HEARTH_EEXISTS:
    case HEARTH_ESTANZA:
    case HEARTH_ECONFLICT:
        return EXIT_REFUSED;
    case HEARTH_ETIMEOUT:
        return EXIT_TIMEOUT;
    case HEARTH_ECONFIG:
        return EXIT_CONFIG;
    default:
        return EXIT_FAILURE_OTHER;
    }
}

int report_connect_error(const conn_t *cn, int err)
{
    const account_t *a = &cn->acct;
    const char *where = a->host ? a->host : strchr(a->jid, '@') ? strchr(a->jid, '@') + 1 : a->jid;
    const char *why = cn->why[0] ? cn->why : hearth_strerror(err);
    switch (err) {
    case HEARTH_EDNS:
        fail("cannot find the server of %s: %s", where, why);
        break;
    case HEARTH_ECONNECT:
        fail("cannot reach the server %s: %s", where, why);
        break;
    case HEARTH_ECERT:
        fail("the certificate of %s is not trusted: %s (give its CA with --cafile FILE)", where,
             why);
        break;
    case HEARTH_ETLS:
        fail("TLS with %s failed: %s", where, why);
        break;
    case HEARTH_EPOLICY:
        fail("%s offers no security this client accepts: %s", where, why);
        break;
    case HEARTH_EAUTH:
        fail("authentication of %s failed: wrong user name or password%s%s%s", a->jid,
             cn->condition[0] ? " (" : "", cn->condition, cn->condition[0] ? ")" : "");
        break;
    case HEARTH_EEXISTS:
        fail("the account %s exists already", a->jid);
        break;
    case HEARTH_ESTANZA:
    case HEARTH_ECONFLICT:
        /* The library's text names the condition and carries the server's own words. */
        fail("the server refused: %s", cn->why[0]         ? cn->why
                                       : cn->condition[0] ? cn->condition
                                                          : hearth_strerror(err));
        break;
    case HEARTH_ETIMEOUT:
        fail("no answer from %s within %u s", where, cn->timeout_ms / 1000);
        break;
    default:
        fail("the connection to %s failed: %s (%s)", where, why, hearth_strerror(err));
        break;
    }
    return exit_code_of(err);
}

/* ---- the connection ---- */

static void on_disconnected(void *ud, hearth_client_t *c, const hearth_disconnect_info_t *info)
{
    conn_t *cn = ud;
    cn->reason = info->reason;
    snprintf(cn->why, sizeof(cn->why), "%s", info->text ? info->text : "");
    snprintf(cn->condition, sizeof(cn->condition), "%s", info->condition ? info->condition : "");
    cn->gone = !info->will_reconnect;
}

static const hearth_client_events_t CONN_EVENTS = {.disconnected = on_disconnected};

int conn_init(conn_t *cn, const options_t *opts, const conn_setup_t *setup)
{
    memset(cn, 0, sizeof(*cn));
    cn->timeout_ms = opts->timeout_ms;
    int rc = account_load(opts, setup->need_password, &cn->acct);
    if (rc != EXIT_OK)
        return rc;
    hearth_ctx_config_t ccfg = {
        .log = on_log,
        .log_ud = (void *)opts,
        .log_level = opts->verbose ? HEARTH_LOG_DEBUG : HEARTH_LOG_ERROR,
    };
    const account_t *a = &cn->acct;
    hearth_client_config_t cfg = {
        .jid = a->jid,
        .password = a->password,
        .resource = a->resource,
        .host = a->host,
        .port = a->port,
        .tls = a->tls,
        .tls_ca_file = a->cafile,
        .tls_no_verify = a->insecure,
        .register_mode = setup->register_mode,
        .no_initial_presence = setup->no_initial_presence,
        .reconnect = setup->reconnect,
        .connect_timeout_ms = opts->timeout_ms < 10000 ? opts->timeout_ms : 10000,
        .negotiation_timeout_ms = opts->timeout_ms,
        .iq_timeout_ms = opts->timeout_ms,
    };
    int err = hearth_ctx_new(&ccfg, &cn->ctx);
    if (!err)
        err = hearth_client_new(cn->ctx, &cfg, &CONN_EVENTS, cn, &cn->client);
    if (err == HEARTH_EINVAL) {
        fail("'%s' is not a JID of an account (user@domain)", a->jid);
        conn_close(cn);
        return EXIT_USAGE;
    }
    if (err == HEARTH_ECONFIG) {
        fail("cannot read the CA file %s", a->cafile ? a->cafile : "");
        conn_close(cn);
        return EXIT_CONFIG;
    }
    if (err) {
        fail("cannot set up the client: %s", hearth_strerror(err));
        conn_close(cn);
        return EXIT_FAILURE_OTHER;
    }
    return EXIT_OK;
}

int conn_connect(conn_t *cn)
{
    int err = hearth_client_connect_wait(cn->client, cn->timeout_ms);
    if (err == HEARTH_ETIMEOUT && !cn->gone) {
        /* Still trying (a scheduled reconnection, a slow negotiation): say what last failed. */
        if (cn->reason && cn->reason != HEARTH_ETIMEOUT)
            err = cn->reason;
    }
    return err ? report_connect_error(cn, err) : EXIT_OK;
}

void conn_close(conn_t *cn)
{
    if (cn->client && hearth_client_state(cn->client) != HEARTH_CLIENT_IDLE)
        (void)hearth_client_disconnect_wait(cn->client, 3000);
    hearth_ctx_free(cn->ctx); /* frees the client and its managers */
    cn->ctx = NULL;
    cn->client = NULL;
    account_free(&cn->acct);
}

/* ---- the command line ---- */

enum {
    OPT_PASSWORD_FILE = 256,
    OPT_HOST,
    OPT_PORT,
    OPT_TLS,
    OPT_CAFILE,
    OPT_INSECURE,
    OPT_RESOURCE,
    OPT_CONFIG,
    OPT_TIMEOUT,
    OPT_STAY,
    OPT_ROOM_PASSWORD,
    OPT_VERSION,
};

static const struct option LONG_OPTS[] = {
    {"account", required_argument, NULL, 'a'},
    {"jid", required_argument, NULL, 'j'},
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"tls", required_argument, NULL, OPT_TLS},
    {"cafile", required_argument, NULL, OPT_CAFILE},
    {"insecure", no_argument, NULL, OPT_INSECURE},
    {"resource", required_argument, NULL, OPT_RESOURCE},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"stay", no_argument, NULL, OPT_STAY},
    {"room-password", required_argument, NULL, OPT_ROOM_PASSWORD},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hearth: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fputs(USAGE_LINE, stderr);
    return EXIT_USAGE;
}

/* The text of `send`: the arguments joined by spaces, or stdin for none or "-". */
static char *message_text(int argc, char **argv)
{
    if (argc == 0 || (argc == 1 && !strcmp(argv[0], "-"))) {
        /* Bounded like a stanza: the server's default limit is 256 KiB. */
        size_t cap = 200 * 1024, len = 0;
        char *buf = malloc(cap + 1);
        if (!buf)
            return NULL;
        size_t n;
        while (len < cap && (n = fread(buf + len, 1, cap - len, stdin)) > 0)
            len += n;
        if (len == cap && fgetc(stdin) != EOF) {
            free(buf);
            fail("the message on stdin is longer than %zu bytes", cap);
            return NULL;
        }
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        buf[len] = '\0';
        return buf;
    }
    size_t total = 1;
    for (int i = 0; i < argc; i++)
        total += strlen(argv[i]) + 1;
    char *buf = malloc(total);
    if (!buf)
        return NULL;
    buf[0] = '\0';
    for (int i = 0; i < argc; i++) {
        if (i)
            strcat(buf, " ");
        strcat(buf, argv[i]);
    }
    return buf;
}

int main(int argc, char **argv)
{
    options_t opts = {.timeout_ms = 30000};
    int ch;
    while ((ch = getopt_long(argc, argv, "a:j:vh", LONG_OPTS, NULL)) != -1) {
        switch (ch) {
        case 'a':
            opts.account = optarg;
            break;
        case 'j':
            opts.jid = optarg;
            break;
        case OPT_PASSWORD_FILE:
            opts.password_file = optarg;
            break;
        case OPT_HOST:
            opts.host = optarg;
            break;
        case OPT_PORT:
            opts.port = optarg;
            break;
        case OPT_TLS:
            opts.tls = optarg;
            break;
        case OPT_CAFILE:
            opts.cafile = optarg;
            break;
        case OPT_INSECURE:
            opts.insecure = 1;
            break;
        case OPT_RESOURCE:
            opts.resource = optarg;
            break;
        case OPT_CONFIG:
            opts.config = optarg;
            break;
        case OPT_TIMEOUT: {
            char *end;
            long s = strtol(optarg, &end, 10);
            if (end == optarg || *end || s < 1 || s > 3600)
                return usage("--timeout takes seconds from 1 to 3600, not '%s'", optarg);
            opts.timeout_ms = (unsigned)s * 1000;
            break;
        }
        case OPT_STAY:
            opts.stay = 1;
            break;
        case OPT_ROOM_PASSWORD:
            opts.room_password = optarg;
            break;
        case 'v':
            opts.verbose = 1;
            break;
        case 'h':
            fputs(HELP, stdout);
            return EXIT_OK;
        case OPT_VERSION:
            printf("hearth %s\n", HEARTH_VERSION);
            return EXIT_OK;
        default:
            fputs(USAGE_LINE, stderr);
            return EXIT_USAGE;
        }
    }
    int n = argc - optind;
    char **args = argv + optind;
    if ((opts.stay || opts.room_password) && !(n >= 1 && !strcmp(args[0], "muc")))
        return usage("--stay and --room-password belong to 'muc join'");
    if (n == 0)
        return cmd_interactive(&opts);
    const char *cmd = args[0];
    if (!strcmp(cmd, "send")) {
        if (n < 2)
            return usage("send needs a JID and the text (or - for stdin)");
        char *text = message_text(n - 2, args + 2);
        if (!text)
            return EXIT_FAILURE_OTHER;
        int rc = text[0] ? cmd_send(&opts, args[1], text)
                         : usage("the message is empty: nothing to send");
        free(text);
        return rc;
    }
    if (!strcmp(cmd, "roster")) {
        if (n != 1)
            return usage("roster takes no argument");
        return cmd_roster(&opts);
    }
    if (!strcmp(cmd, "muc")) {
        if (n != 4 || strcmp(args[1], "join"))
            return usage("muc join needs a ROOM and a NICK");
        return cmd_muc_join(&opts, args[2], args[3]);
    }
    if (!strcmp(cmd, "register")) {
        if (n != 1)
            return usage("register takes no argument");
        return cmd_register(&opts);
    }
    return usage("unknown command '%s'", cmd);
}
