/* hearthd's log lines: formatted in memory, control characters escaped, then one write(2) so
 * concurrent lines never interleave. The level and fd are atomics; the only lock guards the
 * ring of recent lines the admin console shows, held for a copy of one line. */
#include "core/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "hearth/error.h"

static _Atomic int g_level = LOG_INFO;
static _Atomic int g_fd = 2;

static const char *const NAMES[] = {"error", "warn", "info", "debug"};

/* A line longer than this is cut and marked, so one peer cannot make us allocate without bound. */
#define LOG_LINE_MAX 16384

/* The ring of recent lines: fixed slots, so keeping a line allocates nothing. */
typedef struct ring_slot {
    log_level_t level;
    size_t len;
    char text[LOG_RING_LINE_MAX];
} ring_slot_t;
static ring_slot_t g_ring[LOG_RING_LINES];
static size_t g_ring_next;  /* the slot the next line goes to */
static size_t g_ring_count; /* slots holding a line */
static pthread_mutex_t g_ring_lock = PTHREAD_MUTEX_INITIALIZER;

static void ring_keep(log_level_t l, const char *line, size_t len)
{
    static const char CUT[] = " [...]";
    pthread_mutex_lock(&g_ring_lock);
    ring_slot_t *r = &g_ring[g_ring_next];
    r->level = l;
    if (len < sizeof(r->text)) {
        memcpy(r->text, line, len);
        r->len = len;
    } else {
        size_t keep = sizeof(r->text) - sizeof(CUT);
        while (keep && ((unsigned char)line[keep] & 0xc0) == 0x80)
            keep--; /* not inside a UTF-8 sequence */
        memcpy(r->text, line, keep);
        memcpy(r->text + keep, CUT, sizeof(CUT) - 1);
        r->len = keep + sizeof(CUT) - 1;
    }
    g_ring_next = (g_ring_next + 1) % LOG_RING_LINES;
    if (g_ring_count < LOG_RING_LINES)
        g_ring_count++;
    pthread_mutex_unlock(&g_ring_lock);
}

void log_recent_free(log_line_t *lines, size_t n)
{
    for (size_t i = 0; lines && i < n; i++)
        free(lines[i].text);
    free(lines);
}

int log_recent(log_level_t max_level, size_t limit, log_line_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (limit > LOG_RING_LINES)
        limit = LOG_RING_LINES;
    log_line_t *lines = calloc(limit ? limit : 1, sizeof(*lines));
    if (!lines)
        return HEARTH_ENOMEM;
    size_t got = 0;
    int rc = 0;
    pthread_mutex_lock(&g_ring_lock);
    /* Newest first, then turned around. */
    for (size_t k = 0; k < g_ring_count && got < limit; k++) {
        const ring_slot_t *r = &g_ring[(g_ring_next + LOG_RING_LINES - 1 - k) % LOG_RING_LINES];
        if (r->level > max_level)
            continue;
        char *t = malloc(r->len + 1);
        if (!t) {
            rc = HEARTH_ENOMEM;
            break;
        }
        memcpy(t, r->text, r->len);
        t[r->len] = '\0';
        lines[got++] = (log_line_t){r->level, t};
    }
    pthread_mutex_unlock(&g_ring_lock);
    if (rc) {
        log_recent_free(lines, got);
        return rc;
    }
    for (size_t i = 0; i < got / 2; i++) {
        log_line_t t = lines[i];
        lines[i] = lines[got - 1 - i];
        lines[got - 1 - i] = t;
    }
    *out = lines;
    *n = got;
    return 0;
}

void log_set_level(log_level_t l)
{
    atomic_store(&g_level, (int)l);
}

int log_level_parse(const char *s, log_level_t *out)
{
    for (int i = 0; i <= LOG_DEBUG; i++)
        if (s && strcasecmp(s, NAMES[i]) == 0) {
            *out = (log_level_t)i;
            return 0;
        }
    return HEARTH_EINVAL;
}

const char *log_level_name(log_level_t l)
{
    return (unsigned)l <= LOG_DEBUG ? NAMES[l] : "?";
}

int log_enabled(log_level_t l)
{
    return (int)l <= atomic_load(&g_level);
}

void log_set_fd(int fd)
{
    atomic_store(&g_fd, fd);
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void emit(log_level_t l, const char *prefix, const char *fmt, va_list ap)
{
    int saved_errno = errno; /* callers may log between a failure and reading errno */
    char msg[1024];
    char *heap = NULL;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    const char *m = msg;
    if (n >= (int)sizeof msg) {
        size_t want = (size_t)n < LOG_LINE_MAX ? (size_t)n + 1 : LOG_LINE_MAX;
        heap = malloc(want);
        if (heap) {
            vsnprintf(heap, want, fmt, ap2);
            m = heap;
        }
    } else if (n < 0) {
        m = "(log format error)";
    }
    va_end(ap2);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);

    size_t mlen = strlen(m);
    size_t cap = 64 + strlen(prefix) + mlen * 4 + 16;
    char line_stack[4096];
    char *line = cap <= sizeof line_stack ? line_stack : malloc(cap);
    if (!line) {
        free(heap);
        errno = saved_errno;
        return;
    }
    size_t o = (size_t)snprintf(line, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s",
                                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                                tm.tm_sec, ts.tv_nsec / 1000000L, log_level_name(l), prefix);
    static const char HEX[] = "0123456789abcdef";
    for (size_t i = 0; i < mlen; i++) {
        unsigned char ch = (unsigned char)m[i];
        if (ch == '\n') {
            line[o++] = '\\';
            line[o++] = 'n';
        } else if (ch == '\r') {
            line[o++] = '\\';
            line[o++] = 'r';
        } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            line[o++] = '\\';
            line[o++] = 'x';
            line[o++] = HEX[ch >> 4];
            line[o++] = HEX[ch & 15];
        } else {
            line[o++] = (char)ch;
        }
    }
    if (n >= LOG_LINE_MAX && heap) {
        memcpy(line + o, " [...]", 6);
        o += 6;
    }
    ring_keep(l, line, o);
    line[o++] = '\n';
    write_all(atomic_load(&g_fd), line, o);
    if (line != line_stack)
        free(line);
    free(heap);
    errno = saved_errno;
}

void hlog(log_level_t l, const char *fmt, ...)
{
    if (!log_enabled(l))
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(l, "", fmt, ap);
    va_end(ap);
}

void hlog_always(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit(LOG_INFO, "", fmt, ap);
    va_end(ap);
}

void hlog_conn(log_level_t l, unsigned long long conn_id, const char *jid, const char *fmt, ...)
{
    if (!log_enabled(l))
        return;
    char prefix[512];
    /* The JID comes from the peer: keep it on one line and bounded. */
    int n = snprintf(prefix, sizeof prefix, "[c2s#%llu%s%.400s] ", conn_id, jid ? " " : "",
                     jid ? jid : "");
    for (int i = 0; i < n && i < (int)sizeof prefix; i++)
        if ((unsigned char)prefix[i] < 0x20)
            prefix[i] = '?';
    va_list ap;
    va_start(ap, fmt);
    emit(l, prefix, fmt, ap);
    va_end(ap);
}
