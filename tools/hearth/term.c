/* The interactive terminal on libedit's native interface (histedit.h), driven by a uv_poll of
 * stdin. libedit 3.1 (Debian's 20221030) in EL_UNBUFFERED mode returns from el_gets after every
 * key, so the loop never blocks; a completed line ends in '\n' or '\r', and the mode is toggled
 * off and on around the line's handling, as libedit's own readline emulation does, to start the
 * next line. EL_PREP_TERM keeps the terminal in edit mode between lines: without it the keys
 * typed right after Enter are echoed by the terminal driver. Output is written over the input
 * line, which EL_REFRESH then draws again. Touches stdin, stdout and the history file. */
#include "term.h"

#include <errno.h>
#include <histedit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hearth.h"

/* History entries kept in memory and in the file. */
#define HISTORY_MAX 1000

static struct {
    uv_poll_t poll;
    int polling;
    EditLine *el;
    History *hist;
    char *history_path;
    char *prompt;
    int in_line; /* inside the line callback: the input line is not drawn */
    term_line_fn on_line;
    void *ud;
    /* without a terminal */
    char buf[INPUT_LINE_MAX];
    size_t len;
    int skipping; /* the rest of a line too long to keep */
} t;

static char *get_prompt(EditLine *el)
{
    return t.prompt ? t.prompt : "> ";
}

/* The directories of path, made as needed (mode 0700: history is private). */
static void make_dirs(const char *path)
{
    char *p = strdup(path);
    if (!p)
        return;
    for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
            break;
        *s = '/';
    }
    free(p);
}

static void write_sanitized(FILE *f, const char *text)
{
    const unsigned char *s = (const unsigned char *)text;
    for (; *s; s++) {
        if (*s == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) {
            fputc('?', f); /* a C1 control (U+0080..U+009F): CSI and friends */
            s++;
        } else if ((*s < 0x20 && *s != '\n' && *s != '\t') || *s == 0x7f) {
            fputc('?', f);
        } else {
            fputc(*s, f);
        }
    }
}

void term_print(const char *text)
{
    if (t.el && !t.in_line) {
        fputs("\r\033[K", stdout);
        write_sanitized(stdout, text);
        fputc('\n', stdout);
        fflush(stdout);
        el_set(t.el, EL_REFRESH);
    } else {
        write_sanitized(stdout, text);
        fputc('\n', stdout);
        fflush(stdout);
    }
}

void term_set_prompt(const char *prompt)
{
    char *p = strdup(prompt);
    if (!p)
        return;
    free(t.prompt);
    t.prompt = p;
    if (t.el && !t.in_line) {
        fputs("\r\033[K", stdout);
        fflush(stdout);
        el_set(t.el, EL_REFRESH);
    }
}

static void deliver(const char *line)
{
    t.in_line = 1;
    t.on_line(t.ud, line);
    t.in_line = 0;
}

static void on_key(uv_poll_t *h, int status, int events)
{
    int count = 0;
    const char *line = el_gets(t.el, &count);
    if (!line) {
        /* The terminal read 0 bytes (hung up) or failed: the level-triggered poll would call
         * again at once, so this is the end of input. */
        deliver(NULL);
        return;
    }
    if (count <= 0)
        return;
    if (count == 1 && line[0] == 4) { /* Ctrl-D on an empty line */
        fputs("\r\033[K", stdout);
        deliver(NULL);
        return;
    }
    if (line[count - 1] != '\n' && line[count - 1] != '\r')
        return;
    char *copy = strndup(line, (size_t)count - 1);
    el_set(t.el, EL_UNBUFFERED, 0);
    if (copy && copy[0]) {
        HistEvent ev;
        history(t.hist, &ev, H_ENTER, copy);
        /* Saved at every line: a signal that kills the process loses nothing. */
        if (t.history_path) {
            history(t.hist, &ev, H_SAVE, t.history_path);
            chmod(t.history_path, 0600); /* what was typed: messages, passwords of rooms */
        }
    }
    if (copy)
        deliver(copy);
    free(copy);
    if (t.el) { /* still running: start the next line */
        el_set(t.el, EL_UNBUFFERED, 1);
        el_set(t.el, EL_PREP_TERM, 1);
    }
}

/* Without a terminal: complete lines from whatever stdin is. */
static void on_data(uv_poll_t *h, int status, int events)
{
    char chunk[4096];
    ssize_t n = status < 0 ? -1 : read(STDIN_FILENO, chunk, sizeof(chunk));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        if (t.len) {
            t.buf[t.len] = '\0';
            t.len = 0;
            deliver(t.buf);
        }
        deliver(NULL);
        return;
    }
    for (ssize_t i = 0; i < n && t.on_line; i++) {
        if (chunk[i] == '\n') {
            if (!t.skipping) {
                t.buf[t.len] = '\0';
                if (t.len && t.buf[t.len - 1] == '\r')
                    t.buf[t.len - 1] = '\0';
                deliver(t.buf);
            }
            t.len = 0;
            t.skipping = 0;
        } else if (t.len + 1 < sizeof(t.buf)) {
            t.buf[t.len++] = chunk[i];
        } else if (!t.skipping) {
            term_print("hearth: input line too long: dropped");
            t.skipping = 1;
        }
        if (!t.polling)
            break;
    }
}

int term_start(uv_loop_t *loop, const char *history_path, term_line_fn on_line, void *ud)
{
    memset(&t, 0, sizeof(t));
    t.on_line = on_line;
    t.ud = ud;
    int tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
    int rc = uv_poll_init(loop, &t.poll, STDIN_FILENO);
    if (rc)
        return rc;
    t.polling = 1;
    if (tty) {
        t.el = el_init("hearth", stdin, stdout, stderr);
        t.hist = history_init();
        if (!t.el || !t.hist) {
            term_stop();
            return UV_ENOMEM;
        }
        HistEvent ev;
        history(t.hist, &ev, H_SETSIZE, HISTORY_MAX);
        history(t.hist, &ev, H_SETUNIQUE, 1);
        if (history_path) {
            t.history_path = strdup(history_path);
            make_dirs(history_path);
            history(t.hist, &ev, H_LOAD, history_path);
        }
        el_set(t.el, EL_EDITOR, "emacs");
        el_set(t.el, EL_HIST, history, t.hist);
        el_set(t.el, EL_PROMPT, get_prompt);
        /* libedit's handlers give the terminal back before a signal ends the process. */
        el_set(t.el, EL_SIGNAL, 1);
        el_source(t.el, NULL); /* the user's ~/.editrc */
        el_set(t.el, EL_UNBUFFERED, 1);
        el_set(t.el, EL_PREP_TERM, 1);
        rc = uv_poll_start(&t.poll, UV_READABLE, on_key);
    } else {
        rc = uv_poll_start(&t.poll, UV_READABLE, on_data);
    }
    if (rc)
        term_stop();
    return rc;
}

void term_stop(void)
{
    if (t.polling) {
        uv_poll_stop(&t.poll);
        uv_close((uv_handle_t *)&t.poll, NULL);
        t.polling = 0;
    }
    if (t.el) {
        el_set(t.el, EL_PREP_TERM, 0);
        el_end(t.el);
        t.el = NULL;
    }
    if (t.hist) {
        HistEvent ev;
        if (t.history_path)
            history(t.hist, &ev, H_SAVE, t.history_path);
        history_end(t.hist);
        t.hist = NULL;
    }
    free(t.history_path);
    t.history_path = NULL;
    free(t.prompt);
    t.prompt = NULL;
    t.on_line = NULL;
}
