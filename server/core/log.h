/* hearthd's log: one line per call on stderr, written with a single write(2) so lines from
 * different threads never interleave. Control characters in messages are escaped so a peer's
 * data cannot forge a line. Thread-safe. */
#ifndef HEARTH_CORE_LOG_H
#define HEARTH_CORE_LOG_H

#include <stddef.h>

typedef enum { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level_t;

void log_set_level(log_level_t l);
/* "error", "warn", "info", "debug" (case-insensitive): 0, else HEARTH_EINVAL. */
int log_level_parse(const char *s, log_level_t *out);
const char *log_level_name(log_level_t l);
int log_enabled(log_level_t l);
/* Where lines go (default 2, stderr); for tests. */
void log_set_fd(int fd);

/* 2026-11-25T12:00:00.123Z info message */
void hlog(log_level_t l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* 2026-11-25T12:00:00.123Z info [c2s#42 alice@localhost/phone] message (jid may be NULL) */
/* At info level whatever the threshold: lines scripts wait for ("ready", "stopped"). */
void hlog_always(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void hlog_conn(log_level_t l, unsigned long long conn_id, const char *jid, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The most recent lines written are also kept in memory for the admin console's log tail: a
 * ring of LOG_RING_LINES, each cut at LOG_RING_LINE_MAX bytes (marked " [...]"); older lines
 * are overwritten. Guarded by one mutex held only for a copy. */
#define LOG_RING_LINES 1000
#define LOG_RING_LINE_MAX 1024

typedef struct log_line {
    log_level_t level;
    char *text; /* the line as written, without its newline */
} log_line_t;
/* The last (at most) limit lines at level max_level or more severe, oldest first, in a
 * malloc'd array (*out, *n) freed with log_recent_free. HEARTH_ENOMEM, or 0. */
int log_recent(log_level_t max_level, size_t limit, log_line_t **out, size_t *n);
void log_recent_free(log_line_t *lines, size_t n);

#endif
