/* /metrics in Prometheus' text format (version 0.0.4): sessions, connections, per-worker inbox
 * and run-queue depth (each worker counts its own, asked through its inbox), storage counters,
 * dropped stanzas and memory. Open, behind the API key, or off (admin.metrics). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/internal.h"

static void metrics_each(worker_t *w, admin_gather_t *g, unsigned i)
{
    json_int_t bound = 0, detached = 0, users = 0;
    STRMAP_FOREACH(&w->users, e)
    {
        user_t *u = e->value;
        users++;
        for (session_t *s = u->sessions; s; s = s->user_next) {
            if (s->state == SESSION_ENDED || s->ending)
                continue;
            if (s->state == SESSION_DETACHED)
                detached++;
            else
                bound++;
        }
    }
    uv_mutex_lock(&w->inbox_lock);
    json_int_t inbox = w->inbox_len;
    uv_mutex_unlock(&w->inbox_lock);
    g->parts[i] =
        json_pack("[I, I, I, I, I]", bound, detached, users, inbox, (json_int_t)w->runq_len);
}

static long long part(admin_gather_t *g, unsigned i, size_t k)
{
    return (long long)json_integer_value(json_array_get(g->parts[i], k));
}

static void metrics_done(admin_gather_t *g)
{
    admin_req_t *ar = g->ar;
    server_t *srv = ar->w->srv;
    hearth_buf_t b = HEARTH_BUF_INIT;
    long long bound = 0, detached = 0, users = 0;
    for (unsigned i = 0; i < g->n; i++) {
        bound += part(g, i, 0);
        detached += part(g, i, 1);
        users += part(g, i, 2);
    }
    storage_stats_t ss;
    storage__stats(srv->storage, &ss);
    uint64_t rss, hwm;
    admin__memory(&rss, &hwm);
    int rc = hearth_buf_printf(
        &b,
        "# HELP hearth_info Build information.\n# TYPE hearth_info gauge\n"
        "hearth_info{version=\"%s\"} 1\n"
        "# HELP hearth_uptime_seconds Seconds since hearthd started.\n"
        "# TYPE hearth_uptime_seconds gauge\nhearth_uptime_seconds %llu\n"
        "# HELP hearth_sessions Client sessions, by state.\n# TYPE hearth_sessions gauge\n"
        "hearth_sessions{state=\"bound\"} %lld\nhearth_sessions{state=\"detached\"} %lld\n"
        "# HELP hearth_users_loaded Accounts whose state is in memory.\n"
        "# TYPE hearth_users_loaded gauge\nhearth_users_loaded %lld\n"
        "# HELP hearth_connections Open connections of every kind.\n"
        "# TYPE hearth_connections gauge\nhearth_connections %d\n"
        "# HELP hearth_stanzas_dropped_total Stanzas not handed over (full queues, memory).\n"
        "# TYPE hearth_stanzas_dropped_total counter\nhearth_stanzas_dropped_total %ld\n"
        "# HELP hearth_storage_batches_total Wake-ups of the storage thread that ran requests.\n"
        "# TYPE hearth_storage_batches_total counter\nhearth_storage_batches_total %llu\n"
        "# HELP hearth_storage_requests_total Storage requests run.\n"
        "# TYPE hearth_storage_requests_total counter\nhearth_storage_requests_total %llu\n"
        "# HELP hearth_storage_commits_total Transactions committed.\n"
        "# TYPE hearth_storage_commits_total counter\nhearth_storage_commits_total %llu\n"
        "# HELP hearth_storage_outstanding Storage requests queued and not finished.\n"
        "# TYPE hearth_storage_outstanding gauge\nhearth_storage_outstanding %ld\n"
        "# HELP hearth_memory_resident_bytes Resident memory (VmRSS).\n"
        "# TYPE hearth_memory_resident_bytes gauge\nhearth_memory_resident_bytes %llu\n"
        "# HELP hearth_memory_resident_peak_bytes Peak resident memory (VmHWM).\n"
        "# TYPE hearth_memory_resident_peak_bytes gauge\nhearth_memory_resident_peak_bytes "
        "%llu\n"
        "# HELP hearth_worker_inbox_depth Messages waiting in a worker's inbox.\n"
        "# TYPE hearth_worker_inbox_depth gauge\n",
        HEARTH_VERSION, (unsigned long long)((uv_hrtime() / 1000000 - admin__st.started_ms) / 1000),
        bound, detached, users, __atomic_load_n(&srv->live_conns, __ATOMIC_RELAXED),
        __atomic_load_n(&srv->dropped, __ATOMIC_RELAXED), (unsigned long long)ss.batches,
        (unsigned long long)ss.requests, (unsigned long long)ss.commits,
        storage_outstanding(srv->storage), (unsigned long long)rss, (unsigned long long)hwm);
    for (unsigned i = 0; i < g->n; i++)
        rc = rc
                 ?: hearth_buf_printf(&b, "hearth_worker_inbox_depth{worker=\"%u\"} %lld\n", i,
                                      part(g, i, 3));
    rc = rc
             ?: hearth_buf_append_str(&b, "# HELP hearth_worker_runq_depth Work waiting in a "
                                          "worker's run queue.\n"
                                          "# TYPE hearth_worker_runq_depth gauge\n");
    for (unsigned i = 0; i < g->n; i++)
        rc = rc
                 ?: hearth_buf_printf(&b, "hearth_worker_runq_depth{worker=\"%u\"} %lld\n", i,
                                      part(g, i, 4));
    admin__gather_free(g);
    if (rc) {
        hearth_buf_free(&b);
        admin__reply_error(ar, 500, "out of memory", NULL);
        return;
    }
    http__respond_later_with(&ar->d, 200, "text/plain; version=0.0.4; charset=utf-8",
                             "Cache-Control: no-store\r\n", b.data, b.len);
    hearth_buf_free(&b);
    admin__req_free(ar);
}

void admin__metrics(admin_req_t *ar)
{
    if (strcmp(ar->method, "GET")) {
        admin__reply_error(ar, 405, "GET only", "Allow: GET\r\n");
        return;
    }
    admin__gather(ar, metrics_each, metrics_done, NULL, NULL);
}
