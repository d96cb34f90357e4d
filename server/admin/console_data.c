/* What the console shows that no worker keeps for it: the dashboard's history (every worker
 * adds its own counts to a shared ring of samples, one per HISTORY_STEP_S, on a timer of its
 * loop) and the log tail (core/log.c's ring). Both are API routes too (/api/v1/status/history,
 * /api/v1/log), so the console's pages and the API cannot disagree. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "admin/internal.h"

/* One sample per HISTORY_STEP_S seconds, HISTORY_SAMPLES kept: the last hour. */
#define HISTORY_STEP_S 10
#define HISTORY_SAMPLES 360
/* Lines one log request may ask for (the ring holds LOG_RING_LINES). */
#define LOG_TAIL_DEFAULT 200

typedef struct sample {
    int64_t slot;       /* time(NULL) / HISTORY_STEP_S of this sample, 0 unused */
    unsigned workers;   /* workers that added their part */
    uint64_t sessions;  /* bound sessions at the sample's time */
    uint64_t stanzas;   /* stanzas in and out during the step */
    uint64_t rss_bytes; /* resident memory (worker 0 reads it) */
} sample_t;

/* Workers write their parts, admin requests read: one short lock, never held across I/O. */
static sample_t ring[HISTORY_SAMPLES];
static uv_mutex_t ring_lock;
static int ring_lock_made;

typedef struct sampler {
    uv_timer_t timer;
    worker_t *w;
    uint64_t last_stanzas; /* the worker's total at its previous sample */
} sampler_t;
static sampler_t **samplers; /* [nworkers], freed after the workers stopped */
static unsigned nsamplers;

static uint64_t stanzas_total(const worker_t *w)
{
    uint64_t n = 0;
    for (int k = 0; k < 3; k++)
        n += w->stats.stanzas_in[k] + w->stats.stanzas_out[k];
    return n;
}

/* Milliseconds to the next step boundary of the wall clock (plus a little, per worker, so
 * every worker's sample of a step lands in the same slot). */
static uint64_t until_next(const worker_t *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    uint64_t step = HISTORY_STEP_S * 1000;
    return step - ms % step + 50 + (w->index % 50);
}

static void sample_tick(uv_timer_t *t)
{
    sampler_t *sp = t->data;
    worker_t *w = sp->w;
    uint64_t sessions = 0;
    STRMAP_FOREACH(&w->users, e)
    {
        user_t *u = e->value;
        for (session_t *s = u->sessions; s; s = s->user_next)
            if (s->state == SESSION_BOUND && !s->ending)
                sessions++;
    }
    uint64_t total = stanzas_total(w);
    uint64_t delta = total - sp->last_stanzas;
    sp->last_stanzas = total;
    uint64_t rss = 0, hwm = 0;
    if (w->index == 0)
        admin__memory(&rss, &hwm);
    /* The step that just ended (the timer fires just after its boundary). */
    int64_t slot = (int64_t)time(NULL) / HISTORY_STEP_S - 1;
    uv_mutex_lock(&ring_lock);
    sample_t *s = &ring[slot % HISTORY_SAMPLES];
    if (s->slot != slot)
        *s = (sample_t){.slot = slot};
    s->workers++;
    s->sessions += sessions;
    s->stanzas += delta;
    if (w->index == 0)
        s->rss_bytes = rss;
    uv_mutex_unlock(&ring_lock);
    uv_timer_start(t, sample_tick, until_next(w), 0);
}

int admin__worker_init(worker_t *w)
{
    if (!admin__st.site)
        return 0;
    if (!ring_lock_made) {
        if (uv_mutex_init(&ring_lock))
            return HEARTH_ENOMEM;
        ring_lock_made = 1;
    }
    if (!samplers) {
        if (!(samplers = calloc(w->srv->nworkers, sizeof(*samplers))))
            return HEARTH_ENOMEM;
        nsamplers = w->srv->nworkers;
    }
    sampler_t *sp = calloc(1, sizeof(*sp));
    if (!sp || w->index >= nsamplers) {
        free(sp);
        return HEARTH_ENOMEM;
    }
    samplers[w->index] = sp;
    sp->w = w;
    uv_timer_init(&w->loop, &sp->timer);
    sp->timer.data = sp;
    uv_unref((uv_handle_t *)&sp->timer); /* the loop ends without waiting for it */
    uv_timer_start(&sp->timer, sample_tick, until_next(w), 0);
    return 0;
}

/* After the workers' loops closed their handles (admin__free). */
void admin__data_free(void)
{
    for (unsigned i = 0; samplers && i < nsamplers; i++)
        free(samplers[i]);
    free(samplers);
    samplers = NULL;
    nsamplers = 0;
    if (ring_lock_made)
        uv_mutex_destroy(&ring_lock);
    ring_lock_made = 0;
    memset(ring, 0, sizeof(ring));
}

/* GET /api/v1/status/history: the samples of the last hour, oldest first; a step is shown
 * once every worker added its part to it (or once it is over). */
static void history(admin_req_t *ar)
{
    int64_t now = (int64_t)time(NULL) / HISTORY_STEP_S;
    unsigned n = ar->w->srv->nworkers;
    json_t *arr = json_array();
    uv_mutex_lock(&ring_lock);
    for (int64_t slot = now - HISTORY_SAMPLES; arr && slot <= now; slot++) {
        const sample_t *s = &ring[(slot + HISTORY_SAMPLES) % HISTORY_SAMPLES];
        if (s->slot != slot || !s->workers || (s->workers < n && slot >= now - 1))
            continue;
        json_array_append_new(arr, json_pack("{s:I, s:I, s:f, s:I}", "t",
                                             (json_int_t)(slot * HISTORY_STEP_S), "sessions",
                                             (json_int_t)s->sessions, "stanzas_per_s",
                                             (double)s->stanzas / HISTORY_STEP_S, "rss_bytes",
                                             (json_int_t)s->rss_bytes));
    }
    uv_mutex_unlock(&ring_lock);
    admin__reply_json(ar, 200,
                      json_pack("{s:i, s:i, s:o}", "step_s", HISTORY_STEP_S, "span_s",
                                HISTORY_STEP_S * HISTORY_SAMPLES, "samples", arr));
}

/* A query parameter's raw value (no decoding: the values taken here are plain words and
 * digits), copied into out; 0 when absent. */
static int query_word(const char *q, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    while (q && *q) {
        size_t len = strcspn(q, "&");
        if (len > nl && !strncmp(q, name, nl) && q[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl >= cap)
                vl = cap - 1;
            memcpy(out, q + nl + 1, vl);
            out[vl] = '\0';
            return 1;
        }
        q += len + (q[len] ? 1 : 0);
    }
    return 0;
}

/* GET /api/v1/log?level=warn&limit=200: the last lines of the log at that level or more
 * severe, oldest first. */
static void log_tail(admin_req_t *ar)
{
    char v[32];
    log_level_t level = LOG_DEBUG;
    long limit = LOG_TAIL_DEFAULT;
    if (query_word(ar->query, "level", v, sizeof(v)) && *v && log_level_parse(v, &level)) {
        admin__reply_error(ar, 400, "level is error, warn, info or debug", NULL);
        return;
    }
    if (query_word(ar->query, "limit", v, sizeof(v))) {
        char *end = NULL;
        limit = strtol(v, &end, 10);
        if (!*v || *end || limit < 1 || limit > LOG_RING_LINES) {
            admin__reply_error(ar, 400, "limit is a number from 1 to 1000", NULL);
            return;
        }
    }
    log_line_t *lines = NULL;
    size_t n = 0;
    if (log_recent(level, (size_t)limit, &lines, &n)) {
        admin__reply_error(ar, 500, "out of memory", NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "level", log_level_name(lines[i].level),
                                             "text", lines[i].text));
    log_recent_free(lines, n);
    admin__reply_json(
        ar, 200,
        json_pack("{s:s, s:o}", "level", log_level_name(level), "lines", arr ? arr : json_array()));
}

int admin__api_more(admin_req_t *ar, const char *p)
{
    int get = !strcmp(ar->method, "GET");
    if (!strcmp(p, "/status/history")) {
        if (get)
            history(ar);
        else
            admin__reply_error(ar, 405, "method not allowed here", "Allow: GET\r\n");
        return 1;
    }
    if (!strcmp(p, "/log")) {
        if (get)
            log_tail(ar);
        else
            admin__reply_error(ar, 405, "method not allowed here", "Allow: GET\r\n");
        return 1;
    }
    return 0;
}
