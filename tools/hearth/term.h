/* The terminal of hearth's interactive mode: a line editor with history (libedit) on the uv
 * loop, and output printed above the line being typed without disturbing it. Without a terminal
 * on stdin, plain lines are read and nothing is echoed or prompted. One terminal per process. */
#ifndef HEARTH_TOOL_TERM_H
#define HEARTH_TOOL_TERM_H

#include <uv.h>

/* A complete input line (without its end), NULL at end of input. Lent for the call. */
typedef void (*term_line_fn)(void *ud, const char *line);

/* Starts reading stdin on loop. history: the file to load history from and save it to (its
 * directory is made, mode 0700), NULL for none. 0 or a negative libuv error. */
int term_start(uv_loop_t *loop, const char *history, term_line_fn on_line, void *ud);
/* The prompt (copied). */
void term_set_prompt(const char *prompt);
/* Prints one or more lines above the input line. Control characters that could drive the
 * terminal (escape sequences in a message from the network) are shown as '?'. */
void term_print(const char *text);
/* Stops reading, saves the history, gives the terminal back as it was. Idempotent. */
void term_stop(void);

#endif
