/* hearthd: parse the command line, load the configuration, take the data directory's lock,
 * prepare TLS and storage, bind the listeners on every worker, tell a service manager it is
 * ready (sd_notify), run until SIGTERM/SIGINT, then end every stream with <system-shutdown/>
 * and stop in order. */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin/admin.h"
#include "c2s/conn.h"
#include "core/datadir.h"
#include "core/log.h"
#include "core/sdnotify.h"
#include "core/runtime.h"
#include "core/user.h"
#include "modules/im.h"
#include "net/http.h"

#define SHUTDOWN_GRACE_MS 5000

static void usage(FILE *out)
{
    fprintf(out,
            "usage: hearthd [--config FILE] [--data-dir DIR] [--set KEY=VALUE ...]\n"
            "               [--check-config] [--config-doc] [--default-config]\n"
            "               [--version] [--help]\n"
            "\n"
            "  --config FILE     configuration file (default: DIR/hearthd.conf, written on first "
            "run)\n"
            "  --data-dir DIR    database, certificate, ports file and lock (default: ./data)\n"
            "  --set KEY=VALUE   override one configuration key for this run (repeatable)\n"
            "  --check-config    validate the configuration and exit\n"
            "  --config-doc      print the configuration reference (Markdown) and exit\n"
            "  --default-config  print the commented default configuration file and exit\n"
            "  --version         print the version and exit\n"
            "  --help            print this text and exit\n");
}

typedef struct app {
    server_t srv;
    uv_loop_t *loop;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t drain;
    uv_timer_t memory;
    uv_timer_t counts; /* the table sizes for /metrics */
    uint64_t drain_deadline;
    int lock_fd;
    char *ports_path;
} app_t;

static int fail(const char *what, char *err)
{
    fprintf(stderr, "hearthd: %s%s%s\n", what, err ? ": " : "", err ? err : "");
    free(err);
    return 1;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static int load_settings(server_t *srv)
{
    config_t *c = srv->cfg;
    settings_t *s = &srv->set;
    static char domain[1024], muc[1100];
    char *prepped = NULL;
    const char *reason = NULL;
    const char *d = config_str(c, "server.domain");
    if (hearth_jid_nameprep(d, strlen(d), &prepped, &reason)) {
        fprintf(stderr, "hearthd: server.domain '%s' is not a valid domain: %s\n", d, reason);
        return -1;
    }
    snprintf(domain, sizeof(domain), "%s", prepped);
    free(prepped);
    s->domain = domain;
    const char *m = config_str(c, "muc.domain");
    if (*m)
        snprintf(muc, sizeof(muc), "%s", m);
    else
        snprintf(muc, sizeof(muc), "conference.%s", domain);
    s->muc_domain = muc;
    char *why = NULL; /* checked here too, so that --check-config says it before a start does */
    if (storage_pool_check(config_str(c, "storage.driver"),
                           (unsigned)config_int(c, "storage.pool_size"), &why) != 0) {
        fprintf(stderr, "hearthd: %s\n", why ? why : "out of memory");
        free(why);
        return -1;
    }
    settings__from_config(c, s);
    return 0;
}

/* The certificate: configured paths, or one generated on first run in the data directory. */
static int setup_tls(server_t *srv)
{
    char *cert = NULL, *key = NULL, *err = NULL;
    const char *cc = config_str(srv->cfg, "tls.cert"), *kk = config_str(srv->cfg, "tls.key");
    int generated = !*cc;
    if (asprintf(&cert, "%s", *cc ? cc : "") < 0 || asprintf(&key, "%s", *kk ? kk : "") < 0)
        return -1;
    if (generated) {
        free(cert);
        free(key);
        if (asprintf(&cert, "%s/cert.pem", srv->data_dir) < 0 ||
            asprintf(&key, "%s/key.pem", srv->data_dir) < 0)
            return -1;
        if (!file_exists(cert) || !file_exists(key)) {
            char wildcard[1100];
            snprintf(wildcard, sizeof(wildcard), "*.%s", srv->set.domain);
            const char *names[] = {srv->set.domain, wildcard, srv->set.muc_domain};
            if (hearth_tls_generate_cert(cert, key, names, 3, &err)) {
                fail("cannot generate the TLS certificate", err);
                free(cert);
                free(key);
                return -1;
            }
            hlog(LOG_INFO, "generated a self-signed certificate for %s in %s", srv->set.domain,
                 cert);
        }
    }
    srv->tls = hearth_tls_ctx_new_server(cert, key, &err);
    if (!srv->tls) {
        fail("cannot load the TLS certificate", err);
        free(cert);
        free(key);
        return -1;
    }
    srv->tls_cert_path = cert;
    srv->tls_key_path = key;
    return 0;
}

static int setup_secret(server_t *srv)
{
    char *hex = NULL;
    int rc = storage_sync_property_get(srv->storage, "server.secret", &hex);
    if (rc == 0 && hex && strlen(hex) == 64) {
        for (int i = 0; i < 32; i++)
            sscanf(hex + 2 * i, "%2hhx", &srv->secret[i]);
        free(hex);
        return 0;
    }
    free(hex);
    char buf[65];
    if (uv_random(NULL, NULL, srv->secret, sizeof(srv->secret), 0, NULL))
        return -1;
    for (int i = 0; i < 32; i++)
        snprintf(buf + 2 * i, 3, "%02x", srv->secret[i]);
    return storage_sync_property_set(srv->storage, "server.secret", buf);
}

/* Listens on the port of key on every worker: c2s streams (TCP, direct TLS when direct), or
 * HTTP (HTTPS when tls) for site (NULL: the client transports'). */
static int listen_all(app_t *a, const char *bind_key, const char *key, int *out_port, int direct,
                      int http, hearth_tls_ctx_t *tls, http_site_t *site)
{
    server_t *srv = &a->srv;
    const char *bind = config_str(srv->cfg, bind_key);
    long p = config_int(srv->cfg, key);
    *out_port = -1;
    if (p < 0)
        return 0;
    struct sockaddr_storage ss;
    if (uv_ip4_addr(bind, 0, (struct sockaddr_in *)&ss) &&
        uv_ip6_addr(bind, 0, (struct sockaddr_in6 *)&ss)) {
        fprintf(stderr, "hearthd: %s '%s' is not an IP address\n", bind_key, bind);
        return -1;
    }
    int port = (int)p;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        int rc = http && site
                     ? http__listen_site(srv->workers[i], (struct sockaddr *)&ss, &port, tls, site)
                 : http ? http__listen(srv->workers[i], (struct sockaddr *)&ss, &port, tls)
                        : worker__listen(srv->workers[i], (struct sockaddr *)&ss, &port,
                                         c2s__on_connection, direct ? (void *)1 : NULL);
        if (rc) {
            fprintf(stderr, "hearthd: cannot listen on %s port %ld (%s): %s\n", bind, p, key,
                    uv_strerror(rc));
            return -1;
        }
    }
    *out_port = port;
    return 0;
}

static void post_all(server_t *srv, inbox_kind_t kind)
{
    for (unsigned i = 0; i < srv->nworkers; i++) {
        inbox_msg_t *m = calloc(1, sizeof(*m));
        if (!m)
            continue;
        m->kind = kind;
        worker__post(srv->workers[i], m);
    }
}

static void on_drain(uv_timer_t *t)
{
    app_t *a = t->data;
    /* Connections first, then the storage results still due to the workers (writes such as
     * offline messages and roster changes outlive the sessions that made them). */
    int live = __atomic_load_n(&a->srv.live_conns, __ATOMIC_ACQUIRE);
    long pending = storage_outstanding(a->srv.storage) +
                   __atomic_load_n(&a->srv.inbox_pending, __ATOMIC_ACQUIRE);
    if ((live > 0 || pending > 0) && uv_now(a->loop) < a->drain_deadline)
        return;
    if (live > 0 || pending > 0)
        hlog(LOG_WARN, "%d connections and %ld storage requests still open after %d ms", live,
             pending, SHUTDOWN_GRACE_MS);
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    post_all(&a->srv, INBOX_EXIT);
}

/* glibc's malloc gives back only the top of a heap by itself: what quiet streams free lies
 * between live objects, in pages that stay resident. malloc_trim(0) hands whole free pages
 * inside the arenas back to the kernel (MADV_DONTNEED); it runs here, off the workers, at most
 * once per period and only after a stream gave something back. */
#define MEMORY_TRIM_MS 5000

static void on_memory_timer(uv_timer_t *t)
{
    app_t *a = t->data;
    if (__atomic_exchange_n(&a->srv.mem_released, 0, __ATOMIC_ACQ_REL))
        malloc_trim(0);
}

/* SIGHUP (systemd's ExecReload): the certificate read again from its files and the runtime
 * settings from the database. The blocking calls run here, on the main thread, never on a
 * worker. */
static void on_reload(uv_signal_t *s, int signum)
{
    app_t *a = s->data;
    (void)signum;
    server_t *srv = &a->srv;
    char *err = NULL;
    hlog(LOG_INFO, "received SIGHUP: reloading the certificate and the runtime settings");
    /* New TLS connections get the files' certificate; open ones keep theirs. */
    if (hearth_tls_ctx_reload_server(srv->tls, srv->tls_cert_path, srv->tls_key_path, &err))
        hlog(LOG_ERROR, "SIGHUP: the certificate was not read again (%s); the old one stays",
             err ? err : "?");
    else
        hlog(LOG_INFO, "SIGHUP: certificate read again from %s", srv->tls_cert_path);
    free(err);
    if (runtime__load(srv))
        hlog(LOG_ERROR, "SIGHUP: the runtime settings could not be read; the old ones stay");
    else
        hlog(LOG_INFO, "reloaded");
}

/* The sizes /metrics shows that need a COUNT over a table: sampled here, off the workers, with
 * the blocking storage calls, every admin.metrics_sample seconds. */
static void on_counts_timer(uv_timer_t *t)
{
    app_t *a = t->data;
    int64_t n = 0;
    if (storage_sync_count(a->srv.storage, "offline", &n) == 0)
        __atomic_store_n(&a->srv.offline_rows, n, __ATOMIC_RELAXED);
    if (storage_sync_count(a->srv.storage, "archive", &n) == 0)
        __atomic_store_n(&a->srv.archive_rows, n, __ATOMIC_RELAXED);
}

static void on_signal(uv_signal_t *s, int signum)
{
    app_t *a = s->data;
    hlog(LOG_INFO, "received %s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    if (sdnotify("STOPPING=1"))
        hlog(LOG_WARN, "cannot tell the service manager (NOTIFY_SOCKET) that hearthd stops");
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sighup, NULL);
    uv_close((uv_handle_t *)&a->memory, NULL);
    uv_close((uv_handle_t *)&a->counts, NULL);
    post_all(&a->srv, INBOX_SHUTDOWN);
    a->drain_deadline = uv_now(a->loop) + SHUTDOWN_GRACE_MS;
    uv_timer_init(a->loop, &a->drain);
    a->drain.data = a;
    uv_timer_start(&a->drain, on_drain, 10, 10);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data-dir", required_argument, NULL, 'd'},
        {"set", required_argument, NULL, 's'},
        {"check-config", no_argument, NULL, 'k'},
        {"config-doc", no_argument, NULL, 'm'},
        {"version", no_argument, NULL, 'v'},
        {"default-config", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *data_dir = "./data";
    char **sets = calloc((size_t)argc, sizeof(char *));
    size_t nsets = 0;
    int check = 0, opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'd':
            data_dir = optarg;
            break;
        case 's':
            sets[nsets++] = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'm':
            free(sets);
            return config_write_markdown(stdout) ? 1 : 0;
        case 'D':
            free(sets);
            return config_print_default(stdout) ? 1 : 0;
        case 'v':
            printf("hearthd %s\n", HEARTH_VERSION);
            free(sets);
            return 0;
        case 'h':
            usage(stdout);
            free(sets);
            return 0;
        default:
            usage(stderr);
            free(sets);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hearthd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        free(sets);
        return 2;
    }

    static app_t a;
    server_t *srv = &a.srv;
    char *err = NULL;
    srv->cfg = config_new();
    uv_mutex_init(&srv->cfg_lock);
    srv->offline_rows = srv->archive_rows = -1;
    srv->data_dir = data_dir;
    a.lock_fd = -1;
    if (!srv->cfg)
        return fail("out of memory", NULL);
    if (config_from_args(srv->cfg, config_path, data_dir, sets, nsets, &err))
        return fail("configuration error", err);
    free(sets);
    log_level_t lvl;
    if (log_level_parse(config_str(srv->cfg, "log.level"), &lvl) == 0)
        log_set_level(lvl);
    if (load_settings(srv))
        return 1;
    if (check) {
        printf("configuration OK\n");
        config_free(srv->cfg);
        return 0;
    }

    signal(SIGPIPE, SIG_IGN); /* libuv does not */
    if (datadir_prepare(data_dir, &err))
        return fail("data directory", err);
    if (datadir_lock(data_dir, &a.lock_fd, &err))
        return fail("cannot start", err);
    char *conf_file = NULL;
    if (!config_path && asprintf(&conf_file, "%s/hearthd.conf", data_dir) >= 0) {
        if (!file_exists(conf_file)) {
            if (config_write_default(conf_file, &err))
                return fail("cannot write the default configuration", err);
            hlog(LOG_INFO, "first run: wrote the default configuration to %s", conf_file);
        }
        free(conf_file);
    }
    if (setup_tls(srv))
        return 1;

    char *dsn = datadir_storage_dsn(data_dir, config_str(srv->cfg, "storage.driver"),
                                    config_str(srv->cfg, "storage.dsn"));
    if (!dsn)
        return fail("out of memory", NULL);
    if (storage_open_pool(config_str(srv->cfg, "storage.driver"), dsn,
                          (unsigned)config_int(srv->cfg, "storage.pool_size"), &srv->storage, &err))
        return fail("cannot open storage", err);
    free(dsn);
    if (setup_secret(srv))
        return fail("cannot store the server secret", NULL);
    if (runtime__load(srv))
        return fail("cannot read the runtime settings from the database", NULL);
    int64_t last_key = 0;
    if (storage_sync_archive_last(srv->storage, &last_key))
        return fail("cannot read the message archive", NULL);
    user__archive_key_floor(last_key);
    /* c2s before net: at exit its streams end their sessions before net closes what is left. */
    if (c2s__init(srv) || net__init(srv) || modules__init(srv, modules__all))
        return fail("cannot start the modules", NULL);
    /* The web transports hand their streams to c2s. */
    http__set_acceptor(c2s__on_web_connection);
    if (http__init(srv) || ws__init() || bosh__init(srv) || web__init(srv) ||
        upload_http__init(srv))
        return fail("cannot start HTTP (see the http.* settings)", NULL);
    if (admin__init(srv))
        return fail("cannot start the admin API (see the admin.* settings)", NULL);

    long nw = config_int(srv->cfg, "server.workers");
    if (nw <= 0) {
        uv_cpu_info_t *ci;
        int n = 0;
        if (uv_cpu_info(&ci, &n) == 0)
            uv_free_cpu_info(ci, n);
        nw = n > 0 ? n : 1;
    }
    srv->nworkers = (unsigned)nw;
    srv->workers = calloc(srv->nworkers, sizeof(*srv->workers));
    uv_mutex_init(&srv->ip_lock);
    const authguard_limits_t guard = {
        .ip_burst = (unsigned)config_int(srv->cfg, "auth.ip_fail_burst"),
        .ip_per_min = (unsigned)config_int(srv->cfg, "auth.ip_fail_per_min"),
        .pair_burst = (unsigned)config_int(srv->cfg, "auth.pair_fail_burst"),
        .pair_per_min = (unsigned)config_int(srv->cfg, "auth.pair_fail_per_min"),
        .account_burst = (unsigned)config_int(srv->cfg, "auth.account_fail_burst"),
        .account_per_min = (unsigned)config_int(srv->cfg, "auth.account_fail_per_min"),
        .account_delay_ms = (unsigned)config_int(srv->cfg, "auth.account_delay_ms"),
    };
    if (!srv->workers || strmap_init(&srv->preauth_ips) || !(srv->guard = authguard_new(&guard)))
        return fail("out of memory", NULL);
    for (unsigned i = 0; i < srv->nworkers; i++) {
        srv->workers[i] = calloc(1, sizeof(worker_t));
        if (!srv->workers[i] || worker__init(srv, srv->workers[i], i) ||
            net__worker_init(srv->workers[i]) || bosh__worker_init(srv->workers[i]) ||
            c2s__worker_init(srv->workers[i]) || modules__worker_init(srv->workers[i]) ||
            admin__worker_init(srv->workers[i]))
            return fail("cannot start a worker", NULL);
    }
    int http_port = -1, https_port = -1, admin_port = -1, admin_https_port = -1;
    if (listen_all(&a, "c2s.bind", "c2s.port", &srv->c2s_port, 0, 0, NULL, NULL) ||
        listen_all(&a, "c2s.bind", "c2s.direct_tls_port", &srv->tls_port, 1, 0, NULL, NULL) ||
        listen_all(&a, "http.bind", "http.port", &http_port, 0, 1, NULL, NULL) ||
        listen_all(&a, "http.bind", "https.port", &https_port, 0, 1, srv->tls, NULL) ||
        (admin__site() &&
         (listen_all(&a, "admin.bind", "admin.port", &admin_port, 0, 1, NULL, admin__site()) ||
          listen_all(&a, "admin.bind", "admin.https_port", &admin_https_port, 0, 1, srv->tls,
                     admin__site()))))
        return 1;
    srv->http_port = http_port; /* the upload service's URLs name it */
    srv->https_port = https_port;

    a.loop = uv_default_loop();
    uv_signal_init(a.loop, &a.sigterm);
    uv_signal_init(a.loop, &a.sigint);
    uv_signal_init(a.loop, &a.sighup);
    a.sigterm.data = a.sigint.data = a.sighup.data = &a;
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sighup, on_reload, SIGHUP);

    for (unsigned i = 0; i < srv->nworkers; i++)
        if (worker__start(srv->workers[i]))
            return fail("cannot start a worker thread", NULL);

    hearth_buf_t ports = HEARTH_BUF_INIT;
    int prc = 0;
    if (srv->c2s_port >= 0)
        prc = prc ?: hearth_buf_printf(&ports, "c2s %d\n", srv->c2s_port);
    if (srv->tls_port >= 0)
        prc = prc ?: hearth_buf_printf(&ports, "c2s_direct_tls %d\n", srv->tls_port);
    if (http_port >= 0)
        prc = prc ?: hearth_buf_printf(&ports, "http %d\n", http_port);
    if (https_port >= 0)
        prc = prc ?: hearth_buf_printf(&ports, "https %d\n", https_port);
    if (admin_port >= 0)
        prc = prc ?: hearth_buf_printf(&ports, "admin %d\n", admin_port);
    if (admin_https_port >= 0)
        prc = prc ?: hearth_buf_printf(&ports, "admin_https %d\n", admin_https_port);
    if (prc || asprintf(&a.ports_path, "%s/hearthd.ports", data_dir) < 0 ||
        datadir_write_file_atomic(a.ports_path, ports.data ? ports.data : "", ports.len, &err))
        return fail("cannot write the ports file", err);
    hearth_buf_free(&ports);
    hlog(LOG_INFO,
         "hearthd %s serving %s with %u workers: c2s port %d, direct TLS port %d, HTTP port %d, "
         "HTTPS port %d",
         HEARTH_VERSION, srv->set.domain, srv->nworkers, srv->c2s_port, srv->tls_port, http_port,
         https_port);
    admin__started(srv, admin_port, admin_https_port);
    hlog_always("ready");
    if (sdnotify("READY=1"))
        hlog(LOG_WARN, "cannot tell the service manager (NOTIFY_SOCKET) that hearthd is ready");
    uv_timer_init(a.loop, &a.memory);
    a.memory.data = &a;
    uv_timer_start(&a.memory, on_memory_timer, MEMORY_TRIM_MS, MEMORY_TRIM_MS);
    uv_timer_init(a.loop, &a.counts);
    a.counts.data = &a;
    uint64_t sample_ms = (uint64_t)config_int(srv->cfg, "admin.metrics_sample") * 1000;
    uv_timer_start(&a.counts, on_counts_timer, 0, sample_ms);

    uv_run(a.loop, UV_RUN_DEFAULT);

    for (unsigned i = 0; i < srv->nworkers; i++)
        worker__join(srv->workers[i]);
    /* Whatever is still queued is written; results for stopped workers are discarded. */
    storage_close(srv->storage);
    for (unsigned i = 0; i < srv->nworkers; i++) {
        worker__free(srv->workers[i]);
        modules__worker_free(srv->workers[i]);
        c2s__worker_free(srv->workers[i]);
        bosh__worker_free(srv->workers[i]);
        net__worker_free(srv->workers[i]);
        free(srv->workers[i]);
    }
    free(srv->workers);
    modules__free();
    web__free();
    bosh__free();
    http__clear();
    admin__free(srv);
    hearth_tls_ctx_free(srv->tls);
    free(srv->tls_cert_path);
    free(srv->tls_key_path);
    unlink(a.ports_path);
    free(a.ports_path);
    strmap_free(&srv->preauth_ips);
    uv_mutex_destroy(&srv->ip_lock);
    authguard_free(srv->guard);
    uv_loop_close(a.loop);
    config_free(srv->cfg);
    free(srv->cfg_stored);
    uv_mutex_destroy(&srv->cfg_lock);
    hlog_always("stopped");
    datadir_unlock(a.lock_fd);
    return 0;
}
