/* /metrics in Prometheus' text format (version 0.0.4): sessions by transport, stanzas in and
 * out by kind, logins and failures by mechanism, per-worker inbox and run-queue depth and loop
 * lag (each worker reports its own counters, asked through its inbox), connections, storage
 * counters and latency histogram, the sampled sizes of the offline store and the archive,
 * dropped stanzas and memory. Open, behind the API key, or off (admin.metrics). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/internal.h"

static json_t *counts(const uint64_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_integer((json_int_t)v[i]));
    return a;
}

/* On worker w: what it counts of its own (sessions by transport and state, queues, its
 * counters), as a JSON object in g->parts[i]. */
static void metrics_each(worker_t *w, admin_gather_t *g, unsigned i)
{
    json_t *sessions = json_object();
    json_int_t users = 0;
    STRMAP_FOREACH(&w->users, e)
    {
        user_t *u = e->value;
        users++;
        for (session_t *s = u->sessions; s && sessions; s = s->user_next) {
            if (s->state == SESSION_ENDED || s->ending)
                continue;
            char key[64];
            snprintf(key, sizeof(key), "%s\t%s", s->transport ? s->transport : "other",
                     s->state == SESSION_DETACHED ? "detached" : "bound");
            json_object_set_new(
                sessions, key,
                json_integer(json_integer_value(json_object_get(sessions, key)) + 1));
        }
    }
    uv_mutex_lock(&w->inbox_lock);
    json_int_t inbox = w->inbox_len;
    uv_mutex_unlock(&w->inbox_lock);
    const worker_stats_t *st = &w->stats;
    g->parts[i] = json_pack(
        "{s:o, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:I, s:I}", "sessions", sessions, "users", users,
        "inbox", inbox, "runq", (json_int_t)w->runq_len, "in", counts(st->stanzas_in, 3), "out",
        counts(st->stanzas_out, 3), "logins", counts(st->logins, WORKER_MECHS), "failures",
        counts(st->login_failures, WORKER_MECHS), "lag", (json_int_t)st->lag_last_us, "lag_max",
        (json_int_t)(st->lag_max_us > st->lag_prev_max_us ? st->lag_max_us : st->lag_prev_max_us));
}

static long long part(admin_gather_t *g, unsigned i, const char *name)
{
    return (long long)json_integer_value(json_object_get(g->parts[i], name));
}

/* The sum over the workers of element k of the array name. */
static long long sum(admin_gather_t *g, const char *name, size_t k)
{
    long long n = 0;
    for (unsigned i = 0; i < g->n; i++)
        n += (long long)json_integer_value(json_array_get(json_object_get(g->parts[i], name), k));
    return n;
}

static int family(hearth_buf_t *b, const char *name, const char *type, const char *help)
{
    return hearth_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Storage requests from queued to callback, as a Prometheus histogram (cumulative buckets). */
static int latency(hearth_buf_t *b, const storage_stats_t *ss)
{
    int rc = family(b, "hearth_storage_latency_seconds", "histogram",
                    "Storage requests, from queued to their callback on the asking thread.");
    uint64_t cum = 0;
    for (size_t i = 0; rc == 0 && i < STORAGE_LATENCY_BUCKETS; i++) {
        cum += ss->latency[i];
        if (i < STORAGE_LATENCY_BUCKETS - 1)
            rc = hearth_buf_printf(b, "hearth_storage_latency_seconds_bucket{le=\"%g\"} %llu\n",
                                   (double)storage__latency_bounds_us[i] / 1e6,
                                   (unsigned long long)cum);
        else
            rc = hearth_buf_printf(b, "hearth_storage_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
                                   (unsigned long long)cum);
    }
    rc = rc
             ?: hearth_buf_printf(b, "hearth_storage_latency_seconds_sum %.6f\n",
                                  (double)ss->latency_sum_us / 1e6);
    return rc
               ?: hearth_buf_printf(b, "hearth_storage_latency_seconds_count %llu\n",
                                    (unsigned long long)cum);
}

/* The sampled table sizes (main.c), once there is a sample. */
static int sizes(hearth_buf_t *b, server_t *srv)
{
    int64_t offline = __atomic_load_n(&srv->offline_rows, __ATOMIC_RELAXED);
    int64_t archive = __atomic_load_n(&srv->archive_rows, __ATOMIC_RELAXED);
    int rc = 0;
    if (offline >= 0)
        rc = family(b, "hearth_offline_messages", "gauge",
                    "Messages stored for offline delivery (sampled every admin.metrics_sample "
                    "seconds).")
                 ?: hearth_buf_printf(b, "hearth_offline_messages %lld\n", (long long)offline);
    if (archive >= 0)
        rc = rc
                 ?: family(b, "hearth_archive_rows", "gauge",
                           "Archived messages, one row per archive holding one (sampled every "
                           "admin.metrics_sample seconds).")
                 ?: hearth_buf_printf(b, "hearth_archive_rows %lld\n", (long long)archive);
    return rc;
}

static void metrics_done(admin_gather_t *g)
{
    admin_req_t *ar = g->ar;
    server_t *srv = ar->w->srv;
    hearth_buf_t b = HEARTH_BUF_INIT;
    long long users = 0;
    json_t *sessions = json_object();
    for (unsigned i = 0; i < g->n; i++) {
        users += part(g, i, "users");
        const char *key;
        json_t *v;
        json_object_foreach(json_object_get(g->parts[i], "sessions"), key, v)
        {
            json_object_set_new(sessions, key,
                                json_integer(json_integer_value(json_object_get(sessions, key)) +
                                             json_integer_value(v)));
        }
    }
    storage_stats_t ss;
    storage__stats(srv->storage, &ss);
    uint64_t rss, hwm;
    admin__memory(&rss, &hwm);
    static const char *const kinds[] = {"message", "presence", "iq"};
    int rc = family(&b, "hearth_info", "gauge", "Build information.");
    rc = rc ?: hearth_buf_printf(&b, "hearth_info{version=\"%s\"} 1\n", HEARTH_VERSION);
    rc = rc ?: family(&b, "hearth_uptime_seconds", "gauge", "Seconds since hearthd started.");
    rc = rc
             ?: hearth_buf_printf(
                    &b, "hearth_uptime_seconds %llu\n",
                    (unsigned long long)((uv_hrtime() / 1000000 - admin__st.started_ms) / 1000));
    rc = rc
             ?: family(&b, "hearth_sessions", "gauge",
                       "Client sessions, by transport and state (detached: awaiting resumption).");
    /* Both states of every transport, zeros included, so that a series never vanishes. */
    static const char *const transports[] = {"tcp", "websocket", "bosh"};
    for (size_t t = 0; t < 3; t++)
        for (int d = 0; d < 2; d++) {
            char key[64];
            snprintf(key, sizeof(key), "%s\t%s", transports[t], d ? "detached" : "bound");
            rc = rc
                     ?: hearth_buf_printf(
                            &b, "hearth_sessions{transport=\"%s\",state=\"%s\"} %lld\n",
                            transports[t], d ? "detached" : "bound",
                            (long long)json_integer_value(json_object_get(sessions, key)));
            json_object_del(sessions, key);
        }
    const char *key;
    json_t *v;
    json_object_foreach(sessions, key, v)
    {
        const char *tab = strchr(key, '\t');
        if (tab)
            rc = rc
                     ?: hearth_buf_printf(
                            &b, "hearth_sessions{transport=\"%.*s\",state=\"%s\"} %lld\n",
                            (int)(tab - key), key, tab + 1, (long long)json_integer_value(v));
    }
    json_decref(sessions);
    rc = rc
             ?: family(&b, "hearth_stanzas_in_total", "counter",
                       "Stanzas received from bound sessions, by kind.");
    for (size_t k = 0; k < 3; k++)
        rc = rc
                 ?: hearth_buf_printf(&b, "hearth_stanzas_in_total{kind=\"%s\"} %lld\n", kinds[k],
                                      sum(g, "in", k));
    rc = rc
             ?: family(&b, "hearth_stanzas_out_total", "counter",
                       "Stanzas sent to sessions, by kind.");
    for (size_t k = 0; k < 3; k++)
        rc = rc
                 ?: hearth_buf_printf(&b, "hearth_stanzas_out_total{kind=\"%s\"} %lld\n", kinds[k],
                                      sum(g, "out", k));
    rc = rc ?: family(&b, "hearth_logins_total", "counter", "Successful logins, by mechanism.");
    for (size_t k = 0; k < WORKER_MECHS; k++)
        rc = rc
                 ?: hearth_buf_printf(&b, "hearth_logins_total{mechanism=\"%s\"} %lld\n",
                                      worker__mech_names[k], sum(g, "logins", k));
    rc = rc
             ?: family(&b, "hearth_login_failures_total", "counter",
                       "Failed logins (wrong credentials, or refused by the throttle), by "
                       "mechanism.");
    for (size_t k = 0; k < WORKER_MECHS; k++)
        rc = rc
                 ?: hearth_buf_printf(&b, "hearth_login_failures_total{mechanism=\"%s\"} %lld\n",
                                      worker__mech_names[k], sum(g, "failures", k));
    rc = rc ?: family(&b, "hearth_users_loaded", "gauge", "Accounts whose state is in memory.");
    rc = rc ?: hearth_buf_printf(&b, "hearth_users_loaded %lld\n", users);
    rc = rc ?: family(&b, "hearth_connections", "gauge", "Open connections of every kind.");
    rc = rc
             ?: hearth_buf_printf(&b, "hearth_connections %d\n",
                                  __atomic_load_n(&srv->live_conns, __ATOMIC_RELAXED));
    rc = rc
             ?: family(&b, "hearth_stanzas_dropped_total", "counter",
                       "Stanzas not handed over (full queues, memory).");
    rc = rc
             ?: hearth_buf_printf(&b, "hearth_stanzas_dropped_total %ld\n",
                                  __atomic_load_n(&srv->dropped, __ATOMIC_RELAXED));
    rc = rc
             ?: family(&b, "hearth_storage_batches_total", "counter",
                       "Wake-ups of the storage thread that ran requests.");
    rc = rc
             ?: hearth_buf_printf(&b, "hearth_storage_batches_total %llu\n",
                                  (unsigned long long)ss.batches);
    rc = rc ?: family(&b, "hearth_storage_requests_total", "counter", "Storage requests run.");
    rc = rc
             ?: hearth_buf_printf(&b, "hearth_storage_requests_total %llu\n",
                                  (unsigned long long)ss.requests);
    rc = rc ?: family(&b, "hearth_storage_commits_total", "counter", "Transactions committed.");
    rc = rc
             ?: hearth_buf_printf(&b, "hearth_storage_commits_total %llu\n",
                                  (unsigned long long)ss.commits);
    rc = rc
             ?: family(&b, "hearth_storage_outstanding", "gauge",
                       "Storage requests queued and not finished.");
    rc = rc
             ?: hearth_buf_printf(&b, "hearth_storage_outstanding %ld\n",
                                  storage_outstanding(srv->storage));
    rc = rc ?: family(&b, "hearth_memory_resident_bytes", "gauge", "Resident memory (VmRSS).");
    rc =
        rc ?: hearth_buf_printf(&b, "hearth_memory_resident_bytes %llu\n", (unsigned long long)rss);
    rc = rc
             ?: family(&b, "hearth_memory_resident_peak_bytes", "gauge",
                       "Peak resident memory (VmHWM).");
    rc = rc
             ?: hearth_buf_printf(&b, "hearth_memory_resident_peak_bytes %llu\n",
                                  (unsigned long long)hwm);
    rc = rc
             ?: family(&b, "hearth_worker_inbox_depth", "gauge",
                       "Messages waiting in a worker's inbox.");
    for (unsigned i = 0; i < g->n; i++)
        rc = rc
                 ?: hearth_buf_printf(&b, "hearth_worker_inbox_depth{worker=\"%u\"} %lld\n", i,
                                      part(g, i, "inbox"));
    rc = rc
             ?: family(&b, "hearth_worker_runq_depth", "gauge",
                       "Work waiting in a worker's run queue.");
    for (unsigned i = 0; i < g->n; i++)
        rc = rc
                 ?: hearth_buf_printf(&b, "hearth_worker_runq_depth{worker=\"%u\"} %lld\n", i,
                                      part(g, i, "runq"));
    rc = rc
             ?: family(&b, "hearth_worker_loop_lag_seconds", "gauge",
                       "How late a worker's once-a-second timer last fired.");
    for (unsigned i = 0; i < g->n; i++)
        rc = rc
                 ?: hearth_buf_printf(&b, "hearth_worker_loop_lag_seconds{worker=\"%u\"} %.6f\n", i,
                                      (double)part(g, i, "lag") / 1e6);
    rc = rc
             ?: family(&b, "hearth_worker_loop_lag_max_seconds", "gauge",
                       "The most a worker's timer was late in the last one to two minutes.");
    for (unsigned i = 0; i < g->n; i++)
        rc =
            rc
                ?: hearth_buf_printf(&b, "hearth_worker_loop_lag_max_seconds{worker=\"%u\"} %.6f\n",
                                     i, (double)part(g, i, "lag_max") / 1e6);
    rc = rc ?: latency(&b, &ss);
    rc = rc ?: sizes(&b, srv);
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
