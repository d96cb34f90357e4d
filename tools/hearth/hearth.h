/* hearth, the terminal client: what its files share. The account and connection options (from
 * the command line, the environment and accounts.conf), the exit codes of docs/terminal-client.md,
 * and the entry points of the one-shot commands and of the interactive mode. */
#ifndef HEARTH_TOOL_H
#define HEARTH_TOOL_H

#include <stddef.h>

#include "hearth/client.h"

/* Exit codes: a contract for scripts, listed in `hearth --help` and docs/terminal-client.md. */
enum {
    EXIT_OK = 0,
    EXIT_FAILURE_OTHER = 1, /* anything not below: the connection broke, a stream error, I/O */
    EXIT_USAGE = 2,         /* a wrong option or argument */
    EXIT_CONFIG = 3,        /* accounts.conf unreadable, malformed or unsafe; no password */
    EXIT_UNREACHABLE = 4,   /* DNS failed, the connection was refused or timed out at TCP */
    EXIT_CERT = 5,          /* the server's certificate is not trusted for its name */
    EXIT_TLS = 6,           /* TLS failed otherwise, or the server offers nothing acceptable */
    EXIT_AUTH = 7,          /* wrong user name or password */
    EXIT_REFUSED = 8,       /* the server refused: account exists, registration closed, ... */
    EXIT_TIMEOUT = 9,       /* the server did not answer in time */
};

/* Longest password accepted, bytes (read from a file, the environment, the terminal). */
#define PASSWORD_MAX 1024
/* Longest line of interactive input and of --stay input, bytes. */
#define INPUT_LINE_MAX 8192

/* An account and how to reach it, after the config file and the options are merged. Strings
 * are owned (freed by account_free); the password is wiped. */
typedef struct account {
    char *name; /* the section of accounts.conf, NULL without one */
    char *jid;
    char *password;
    char *resource;
    char *host;
    unsigned port;
    hearth_tls_policy_t tls;
    char *cafile;
    int insecure;
    char *path; /* accounts.conf read, NULL when none */
} account_t;

/* What the command line said (borrowed from argv). */
typedef struct options {
    const char *account;
    const char *jid;
    const char *password_file;
    const char *host;
    const char *port;
    const char *tls;
    const char *cafile;
    const char *resource;
    const char *config; /* --config FILE instead of the XDG path */
    int insecure;
    int stay; /* muc join --stay */
    const char *room_password;
    unsigned timeout_ms; /* --timeout SECONDS */
    int verbose;
} options_t;

/* account.c: the account to use, from accounts.conf (opts->config, or
 * $XDG_CONFIG_HOME/hearth/accounts.conf, or ~/.config/hearth/accounts.conf) and the options;
 * need_password: also find the password (--password-file, HEARTH_PASSWORD, the file, then a
 * prompt on the terminal without echo). EXIT_OK, or an exit code after printing why. */
int account_load(const options_t *opts, int need_password, account_t *out);
void account_free(account_t *a);
/* The path accounts.conf has for this user (malloc'd), or NULL when no home is known. */
char *account_default_path(void);
/* Reads a password from the terminal without echo: 0, or -1 (no terminal, EOF). */
int account_prompt_password(const char *prompt, char *buf, size_t cap);

/* main.c: one connection of an account: its context (own loop) and client, and why it last
 * ended. */
typedef struct conn {
    account_t acct;
    hearth_ctx_t *ctx;
    hearth_client_t *client;
    unsigned timeout_ms;
    int gone;           /* disconnected with no reconnection to follow */
    int reason;         /* its HEARTH_E* code */
    char why[512];      /* the disconnected event's text */
    char condition[64]; /* its SASL or stanza error condition, "" when none */
} conn_t;

/* How a command connects. */
typedef struct conn_setup {
    hearth_register_mode_t register_mode;
    int no_initial_presence;
    int reconnect;
    int need_password; /* 0 only for commands that never log in */
} conn_setup_t;

/* Loads the account and makes the context and the client (not connected yet: add managers and
 * handlers, then conn_connect). EXIT_OK or an exit code after saying why. */
int conn_init(conn_t *cn, const options_t *opts, const conn_setup_t *setup);
/* Connects and waits until online: EXIT_OK, or the exit code after saying why. */
int conn_connect(conn_t *cn);
/* Ends the session in order (when online) and frees everything. */
void conn_close(conn_t *cn);
/* Where library log lines and notices go (stderr until the interactive mode takes over). */
extern void (*notice_sink)(const char *line);
/* The exit code for a HEARTH_E* code of a failed connection or request. */
int exit_code_of(int err);
/* "hearth: " and the message on stderr. */
void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Why a connection failed, in words, through fail(); returns its exit code. */
int report_connect_error(const conn_t *cn, int err);

/* oneshot.c: the commands for scripts; each returns an exit code. */
int cmd_send(const options_t *opts, const char *to, const char *text);
int cmd_roster(const options_t *opts);
int cmd_muc_join(const options_t *opts, const char *room, const char *nick);
int cmd_register(const options_t *opts);

/* ui.c: the interactive mode. */
int cmd_interactive(const options_t *opts);

#endif
