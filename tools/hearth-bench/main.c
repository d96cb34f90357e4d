/* hearth-bench: many XMPP client sessions from one process, a thread per core, each with its
 * own uv loop and hearth_ctx (tools/hearth-bench/worker.c). This file reads the command line,
 * refuses a host that is not loopback unless told, walks the workers through the phases
 * (register, connect, setup, run, drain, stop), shows progress and prints the figures: a table,
 * or JSON on stdout with --json. docs/bench-tool.md tells how to use it. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

bench_t B;

#define MAX_SESSIONS 1000000
#define MAX_THREADS 256
#define FDS_PER_THREAD 8 /* a loop's own descriptors (epoll, eventfd, signal pipe) and slack */
#define POLL_MS 50
#define PROGRESS_MS 500
#define STOP_TIMEOUT_S 15.0

static volatile sig_atomic_t interrupted;

static const char *const scenario_names[] = {"login", "idle", "chat", "presence", "muc"};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: hearth-bench --host H --port P --domain D [--user-prefix user] [--password W]\n"
        "                    [--register] --sessions N --scenario login|idle|chat|presence|muc\n"
        "                    [--rate R] --duration S [--tls] [--json] [options]\n"
        "\n"
        "Accounts PREFIX1..PREFIXN with password W log in, one session each, from this\n"
        "process; the scenario's traffic runs for S seconds; the figures follow.\n"
        "\n"
        "  --host H           server address (loopback only, unless --allow-remote)\n"
        "  --port P           c2s port (5222)\n"
        "  --domain D         the XMPP domain of the accounts\n"
        "  --user-prefix P    account names P1..PN (user)\n"
        "  --password W       every account's password (password)\n"
        "  --register         create the accounts in band first (XEP-0077); an existing\n"
        "                     account is no error\n"
        "  --sessions N       sessions (accounts), at most %d\n"
        "  --scenario S       login: log in and out once each (login rate and latency);\n"
        "                     idle: hold the sessions for --duration;\n"
        "                     chat: one-to-one messages to random online peers at --rate;\n"
        "                     presence: rosters of --roster-size contacts, then presence\n"
        "                     changes at --rate; muc: rooms of --room-size occupants,\n"
        "                     groupchat messages at --rate\n"
        "  --rate R           messages (or presence changes) per second, all sessions\n"
        "                     together (chat 100, presence 10, muc 10)\n"
        "  --duration S       seconds of traffic or hold (10; login: unused)\n"
        "  --tls              STARTTLS (required); without it no TLS at all\n"
        "  --ca FILE          trusted CAs for --tls (default: the system's)\n"
        "  --no-verify        accept any certificate (self-signed test servers)\n"
        "  --mech M           PLAIN, SCRAM-SHA-1, SCRAM-SHA-256 (or a -PLUS) only; default: the\n"
        "                     library's preference (SCRAM, -PLUS first under TLS)\n"
        "  --json             the figures as one JSON object on stdout (table on stderr)\n"
        "  --ramp R           sessions started per second (0: no pacing, the default)\n"
        "  --concurrency C    sessions negotiating at once (500)\n"
        "  --threads T        worker threads (one per core)\n"
        "  --roster-size K    presence: contacts per user, made even (10)\n"
        "  --room-size K      muc: occupants per room (50)\n"
        "  --muc-service S    muc: the rooms' service (conference.D)\n"
        "  --sources K        bind sessions to 127.0.0.1..127.0.0.K in turn, to pass 64k\n"
        "                     connections (default: one address per 1,000 sessions; 0: none)\n"
        "  --scram-cache FILE keep SCRAM salted passwords in FILE (mode 0600) between runs,\n"
        "                     so that no login pays PBKDF2 for an account seen before;\n"
        "                     they are password equivalents for that server\n"
        "  --sm               stream management (XEP-0198) on\n"
        "  --setup-timeout S  seconds for rosters or joins (60)\n"
        "  --drain S          seconds to wait for messages in flight (5)\n"
        "  --quiet            no progress line on a terminal\n"
        "  --allow-remote     allow a host that is not on this machine\n"
        "  --help             this text\n"
        "\n"
        "Exit: 0 every session established and none dropped; 1 some failed or dropped;\n"
        "2 bad arguments or a refused host; 3 the tool itself failed.\n",
        MAX_SESSIONS);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hearth-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(hearth-bench --help for usage)\n", stderr);
    exit(2);
}

static double num(const char *opt, const char *v, double lo, double hi)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (!*v || *end || errno || d != d)
        die_usage("%s: not a number: '%s'", opt, v);
    if (d < lo || d > hi)
        die_usage("%s: %s is out of range [%g, %g]", opt, v, lo, hi);
    return d;
}

static unsigned whole(const char *opt, const char *v, unsigned lo, unsigned hi)
{
    double d = num(opt, v, lo, hi);
    if (d != (double)(unsigned)d)
        die_usage("%s: not a whole number: '%s'", opt, v);
    return (unsigned)d;
}

enum {
    O_HOST = 256,
    O_PORT,
    O_DOMAIN,
    O_PREFIX,
    O_PASSWORD,
    O_REGISTER,
    O_SESSIONS,
    O_SCENARIO,
    O_RATE,
    O_DURATION,
    O_TLS,
    O_JSON,
    O_MECH,
    O_RAMP,
    O_CONC,
    O_THREADS,
    O_ROSTER,
    O_ROOM,
    O_MUC,
    O_SOURCES,
    O_CA,
    O_NOVERIFY,
    O_SM,
    O_SCRAM,
    O_SETUP,
    O_DRAIN,
    O_QUIET,
    O_REMOTE,
    O_HELP,
};

static const struct option longopts[] = {
    {"host", 1, 0, O_HOST},
    {"port", 1, 0, O_PORT},
    {"domain", 1, 0, O_DOMAIN},
    {"user-prefix", 1, 0, O_PREFIX},
    {"password", 1, 0, O_PASSWORD},
    {"register", 0, 0, O_REGISTER},
    {"sessions", 1, 0, O_SESSIONS},
    {"scenario", 1, 0, O_SCENARIO},
    {"rate", 1, 0, O_RATE},
    {"duration", 1, 0, O_DURATION},
    {"tls", 0, 0, O_TLS},
    {"json", 0, 0, O_JSON},
    {"mech", 1, 0, O_MECH},
    {"ramp", 1, 0, O_RAMP},
    {"concurrency", 1, 0, O_CONC},
    {"threads", 1, 0, O_THREADS},
    {"roster-size", 1, 0, O_ROSTER},
    {"room-size", 1, 0, O_ROOM},
    {"muc-service", 1, 0, O_MUC},
    {"sources", 1, 0, O_SOURCES},
    {"ca", 1, 0, O_CA},
    {"no-verify", 0, 0, O_NOVERIFY},
    {"sm", 0, 0, O_SM},
    {"scram-cache", 1, 0, O_SCRAM},
    {"setup-timeout", 1, 0, O_SETUP},
    {"drain", 1, 0, O_DRAIN},
    {"quiet", 0, 0, O_QUIET},
    {"allow-remote", 0, 0, O_REMOTE},
    {"help", 0, 0, O_HELP},
    {0, 0, 0, 0},
};

static const char *const mechs[] = {
    "PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", NULL};

static void parse_args(int argc, char **argv, opts_t *o)
{
    *o = (opts_t){.port = 5222,
                  .prefix = "user",
                  .password = "password",
                  .duration = 10,
                  .rate = -1,
                  .concurrency = 500,
                  .roster_size = 10,
                  .room_size = 50,
                  .sources = (unsigned)-1,
                  .setup_timeout = 60,
                  .drain = 5};
    int scenario = -1;
    static char muc[300];
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        const char *opt = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
        switch (c) {
        case O_HOST:
            o->host = optarg;
            break;
        case O_PORT:
            o->port = whole("--port", optarg, 1, 65535);
            break;
        case O_DOMAIN:
            o->domain = optarg;
            break;
        case O_PREFIX:
            o->prefix = optarg;
            break;
        case O_PASSWORD:
            o->password = optarg;
            break;
        case O_REGISTER:
            o->do_register = 1;
            break;
        case O_SESSIONS:
            o->sessions = whole("--sessions", optarg, 1, MAX_SESSIONS);
            break;
        case O_SCENARIO:
            scenario = -1;
            for (int i = 0; i < 5; i++)
                if (!strcmp(optarg, scenario_names[i]))
                    scenario = i;
            if (scenario < 0)
                die_usage("--scenario: '%s' is none of login, idle, chat, presence, muc", optarg);
            break;
        case O_RATE:
            o->rate = num("--rate", optarg, 0, 1e7);
            break;
        case O_DURATION:
            o->duration = num("--duration", optarg, 0, 1e6);
            break;
        case O_TLS:
            o->tls = 1;
            break;
        case O_JSON:
            o->json = 1;
            break;
        case O_MECH: {
            int ok = 0;
            for (int i = 0; mechs[i]; i++)
                ok |= !strcmp(optarg, mechs[i]);
            if (!ok)
                die_usage("--mech: '%s' is none of PLAIN, SCRAM-SHA-1, SCRAM-SHA-256 (-PLUS)",
                          optarg);
            o->mech = optarg;
            break;
        }
        case O_RAMP:
            o->ramp = num("--ramp", optarg, 0, 1e7);
            break;
        case O_CONC:
            o->concurrency = whole("--concurrency", optarg, 1, MAX_SESSIONS);
            break;
        case O_THREADS:
            o->threads = whole("--threads", optarg, 1, MAX_THREADS);
            break;
        case O_ROSTER:
            o->roster_size = whole("--roster-size", optarg, 0, 10000);
            break;
        case O_ROOM:
            o->room_size = whole("--room-size", optarg, 1, 100000);
            break;
        case O_MUC:
            o->muc_service = optarg;
            break;
        case O_SOURCES:
            o->sources = whole("--sources", optarg, 0, 254);
            break;
        case O_CA:
            o->ca_file = optarg;
            break;
        case O_NOVERIFY:
            o->no_verify = 1;
            break;
        case O_SM:
            o->sm = 1;
            break;
        case O_SCRAM:
            o->scram_cache = optarg;
            break;
        case O_SETUP:
            o->setup_timeout = num("--setup-timeout", optarg, 0, 1e5);
            break;
        case O_DRAIN:
            o->drain = num("--drain", optarg, 0, 1e5);
            break;
        case O_QUIET:
            o->quiet = 1;
            break;
        case O_REMOTE:
            o->allow_remote = 1;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        case ':':
            die_usage("%s needs a value", opt);
        default:
            die_usage("unknown option '%s'", opt);
        }
    }
    if (optind < argc)
        die_usage("unexpected argument '%s'", argv[optind]);
    if (!o->host)
        die_usage("--host is required");
    if (!o->domain || !*o->domain)
        die_usage("--domain is required");
    if (!o->sessions)
        die_usage("--sessions is required");
    if (scenario < 0)
        die_usage("--scenario is required");
    if (!*o->prefix || strpbrk(o->prefix, "@/ \"&'<>:"))
        die_usage("--user-prefix: '%s' cannot start a JID's localpart", o->prefix);
    if (!*o->password)
        die_usage("--password: empty");
    if (o->tls && (o->ca_file && o->no_verify))
        die_usage("--ca and --no-verify exclude each other");
    if (!o->tls && (o->ca_file || o->no_verify))
        die_usage("--ca and --no-verify need --tls");
    if (!o->tls && o->mech && strstr(o->mech, "-PLUS"))
        die_usage("--mech %s needs --tls (channel binding)", o->mech);
    o->scenario = (scenario_t)scenario;
    if (o->rate < 0)
        o->rate = o->scenario == SC_CHAT ? 100 : 10;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (!o->threads)
        o->threads = cores > 0 ? (unsigned)(cores < MAX_THREADS ? cores : MAX_THREADS) : 1;
    if (o->threads > o->sessions)
        o->threads = o->sessions;
    /* a ring with half the contacts on each side: an even count, each distinct */
    unsigned half = (o->roster_size + 1) / 2;
    if (half > (o->sessions - 1) / 2)
        half = (o->sessions - 1) / 2;
    o->roster_size = o->scenario == SC_PRESENCE ? 2 * half : 0;
    if (o->room_size > o->sessions)
        o->room_size = o->sessions;
    if (!o->muc_service) {
        snprintf(muc, sizeof(muc), "conference.%s", o->domain);
        o->muc_service = muc;
    }
}

/* Resolves --host once (so that no session pays a lookup) and refuses anything but loopback
 * unless --allow-remote: a load generator pointed at the wrong machine is an attack. */
static void resolve_host(opts_t *o)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(o->host, NULL, &hints, &res);
    if (rc != 0)
        die_usage("--host %s: %s", o->host, gai_strerror(rc));
    const struct addrinfo *pick = NULL;
    int remote = 0;
    for (const struct addrinfo *a = res; a; a = a->ai_next) {
        int loop = 0;
        if (a->ai_family == AF_INET) {
            const struct sockaddr_in *s = (const void *)a->ai_addr;
            loop = (ntohl(s->sin_addr.s_addr) >> 24) == 127;
            if (!pick || pick->ai_family != AF_INET)
                pick = a;
        } else if (a->ai_family == AF_INET6) {
            const struct sockaddr_in6 *s = (const void *)a->ai_addr;
            loop = IN6_IS_ADDR_LOOPBACK(&s->sin6_addr);
            if (!pick)
                pick = a;
        }
        remote |= !loop;
    }
    if (!pick) {
        freeaddrinfo(res);
        die_usage("--host %s: no IPv4 or IPv6 address", o->host);
    }
    const void *in =
        pick->ai_family == AF_INET
            ? (const void *)&((const struct sockaddr_in *)(const void *)pick->ai_addr)->sin_addr
            : (const void *)&((const struct sockaddr_in6 *)(const void *)pick->ai_addr)->sin6_addr;
    inet_ntop(pick->ai_family, in, o->addr, sizeof(o->addr));
    int v4_loop = pick->ai_family == AF_INET && !strncmp(o->addr, "127.", 4);
    freeaddrinfo(res);
    if (remote && !o->allow_remote) {
        fprintf(stderr,
                "hearth-bench: --host %s (%s) is not a loopback address; refusing to load another "
                "machine without --allow-remote\n",
                o->host, o->addr);
        exit(2);
    }
    if (o->sources == (unsigned)-1) {
        unsigned k = (o->sessions + 999) / 1000;
        o->sources = k > 254 ? 254 : k == 1 ? 0 : k;
    }
    if (o->sources && !v4_loop) {
        if (o->sources != (unsigned)-1 && o->sources)
            fprintf(stderr, "hearth-bench: --sources ignored: %s is not an IPv4 loopback address\n",
                    o->addr);
        o->sources = 0;
    }
}

/* The open-file limit up to its hard bound: a session is a socket. */
static void raise_fd_limit(unsigned sessions, unsigned threads)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)sessions + (rlim_t)threads * FDS_PER_THREAD + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
        fprintf(
            stderr,
            "hearth-bench: the open-file limit (%llu, hard) holds about %llu sessions, not %u\n",
            (unsigned long long)rl.rlim_cur,
            (unsigned long long)(rl.rlim_cur > want - sessions ? rl.rlim_cur - (want - sessions)
                                                               : 0),
            sessions);
}

/* ---- measuring ourselves ---- */

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static unsigned long status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long v = 0;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, key, kl) && line[kl] == ':')
            v = strtoul(line + kl + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static double now_s(void)
{
    return (double)uv_hrtime() / 1e9;
}

#define TOTAL(field) total(offsetof(worker_t, field))
static uint64_t total(size_t off)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < B.o.threads; i++)
        v += atomic_load_explicit((atomic_uint_fast64_t *)((char *)&B.workers[i] + off),
                                  memory_order_relaxed);
    return v;
}

/* ---- phases ---- */

static double t_start;
static const char *phase_label = "";
static int show_progress;

static void progress(void)
{
    if (!show_progress)
        return;
    uint64_t est = TOTAL(n.established), closed = TOTAL(n.closed);
    fprintf(stderr, "\r\033[K[%6.1fs] %-8s", now_s() - t_start, phase_label);
    if (atomic_load(&B.phase) == PH_REGISTER)
        fprintf(stderr, " registered %" PRIu64 "/%u (new %" PRIu64 ", failed %" PRIu64 ")",
                TOTAL(n.reg_done), B.o.sessions, TOTAL(n.reg_created), TOTAL(n.reg_failed));
    else
        fprintf(stderr, " online %" PRIu64 "/%u failed %" PRIu64 " dropped %" PRIu64,
                est - (closed - TOTAL(n.failed)), B.o.sessions, TOTAL(n.failed), TOTAL(n.dropped));
    if (B.o.scenario == SC_PRESENCE || B.o.scenario == SC_MUC)
        fprintf(stderr, " ready %" PRIu64, TOTAL(n.ready));
    if (B.o.scenario >= SC_CHAT)
        fprintf(stderr, " | sent %" PRIu64 " delivered %" PRIu64, TOTAL(n.sent),
                TOTAL(n.delivered));
    fflush(stderr);
}

/* Sleeps in steps until done() or the deadline (seconds from now; < 0: none) or ^C. */
static int wait_for(int (*done)(void), double seconds)
{
    double end = now_s() + seconds, next_progress = 0;
    for (;;) {
        if (done && done())
            return 1;
        if (interrupted || (seconds >= 0 && now_s() >= end))
            return 0;
        if (now_s() >= next_progress) {
            progress();
            next_progress = now_s() + PROGRESS_MS / 1000.0;
        }
        struct timespec ts = {0, POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int registered_all(void)
{
    return TOTAL(n.reg_done) >= B.o.sessions;
}

static int connected_all(void)
{
    if (B.o.scenario == SC_LOGIN)
        return TOTAL(n.closed) >= B.o.sessions;
    return TOTAL(n.established) + TOTAL(n.failed) >= B.o.sessions;
}

static int setup_all(void)
{
    uint64_t online = TOTAL(n.established) - (TOTAL(n.closed) - TOTAL(n.failed));
    return TOTAL(n.ready) >= online;
}

static int drained(void)
{
    return TOTAL(n.delivered) + TOTAL(n.errors) >= TOTAL(n.sent);
}

static int stopped(void)
{
    return TOTAL(n.closed) >= TOTAL(n.started);
}

static void set_phase(phase_t p, const char *label)
{
    phase_label = label;
    atomic_store(&B.phase, p);
}

static void on_signal(int sig)
{
    interrupted = 1;
}

/* ---- report ---- */

typedef struct results {
    double elapsed, login_s, run_s, cpu_login, cpu_total;
    unsigned long rss_start, rss_online, rss_peak;
    hist_t login, lat;
    uint64_t fail_kind[FAIL_KINDS];
    const char *fail_text;
    unsigned long scram_hits, scram_misses;
} results_t;

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_hist(FILE *f, const hist_t *h)
{
    fprintf(f,
            "{\"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, \"max\": %.3f, \"mean\": %.3f, "
            "\"count\": %" PRIu64 "}",
            hist_quantile(h, 0.5) / 1000.0, hist_quantile(h, 0.9) / 1000.0,
            hist_quantile(h, 0.99) / 1000.0, h->max / 1000.0,
            h->count ? (double)h->sum / (double)h->count / 1000.0 : 0.0, h->count);
}

static void report_json(FILE *f, const results_t *r)
{
    uint64_t est = TOTAL(n.established), sent = TOTAL(n.sent), del = TOTAL(n.delivered);
    fprintf(f, "{\"tool\": \"hearth-bench\", \"scenario\": \"%s\", \"sessions\": %u, ",
            scenario_names[B.o.scenario], B.o.sessions);
    fprintf(f, "\"threads\": %u, \"tls\": %s, \"mechanism\": ", B.o.threads,
            B.o.tls ? "true" : "false");
    json_str(f, B.o.mech ? B.o.mech : "default");
    fprintf(f, ", \"rate\": %.3f, \"duration_s\": %.3f, \"sources\": %u,\n", B.o.rate, B.o.duration,
            B.o.sources);
    fprintf(f,
            " \"sessions_established\": %" PRIu64 ", \"sessions_failed\": %" PRIu64
            ", \"sessions_dropped\": %" PRIu64 ",\n",
            est, TOTAL(n.failed), TOTAL(n.dropped));
    fprintf(f, " \"failures\": {");
    int first = 1;
    for (int k = 0; k < FAIL_KINDS; k++)
        if (r->fail_kind[k]) {
            fprintf(f, "%s\"%s\": %" PRIu64, first ? "" : ", ", k ? hearth_err_name(-k) : "other",
                    r->fail_kind[k]);
            first = 0;
        }
    fprintf(f, "}, \"failure_sample\": ");
    if (r->fail_text)
        json_str(f, r->fail_text);
    else
        fputs("null", f);
    fprintf(f,
            ",\n \"registered\": {\"created\": %" PRIu64 ", \"existing\": %" PRIu64
            ", \"failed\": %" PRIu64 "},\n",
            TOTAL(n.reg_created), TOTAL(n.reg_existing), TOTAL(n.reg_failed));
    fprintf(f, " \"login_rate\": %.3f, \"login_latency_ms\": ",
            r->login_s > 0 ? (double)est / r->login_s : 0.0);
    json_hist(f, &r->login);
    fprintf(f, ",\n \"setup_ready\": %" PRIu64 ", \"setup_failed\": %" PRIu64 ",\n", TOTAL(n.ready),
            TOTAL(n.setup_failed));
    fprintf(f,
            " \"stanzas_sent\": %" PRIu64 ", \"messages_sent\": %" PRIu64
            ", \"messages_delivered\": %" PRIu64 ", \"messages_lost\": %" PRIu64
            ", \"messages_errors\": %" PRIu64 ", \"send_refused\": %" PRIu64
            ", \"messages_stale\": %" PRIu64 ",\n",
            TOTAL(n.stanzas), sent, del, sent > del ? sent - del : 0, TOTAL(n.errors),
            TOTAL(n.send_refused), TOTAL(n.stale));
    fprintf(f, " \"delivery_rate\": %.3f, \"latency_ms\": ",
            r->run_s > 0 ? (double)del / r->run_s : 0.0);
    json_hist(f, &r->lat);
    fprintf(f,
            ",\n \"client\": {\"rss_kib_start\": %lu, \"rss_kib_online\": %lu, "
            "\"rss_kib_peak\": %lu, \"rss_per_session_kib\": %.2f, \"cpu_s_logins\": %.3f, "
            "\"cpu_ms_per_login\": %.3f, \"cpu_s_total\": %.3f, \"scram_cache_hits\": %lu, "
            "\"scram_cache_misses\": %lu},\n",
            r->rss_start, r->rss_online, r->rss_peak,
            est && B.o.scenario != SC_LOGIN && r->rss_online > r->rss_start
                ? (double)(r->rss_online - r->rss_start) / (double)est
                : 0.0,
            r->cpu_login, est ? r->cpu_login * 1000.0 / (double)est : 0.0, r->cpu_total,
            r->scram_hits, r->scram_misses);
    fprintf(f, " \"elapsed_s\": %.3f, \"interrupted\": %s}\n", r->elapsed,
            interrupted ? "true" : "false");
}

static void row_hist(FILE *f, const char *name, const hist_t *h)
{
    fprintf(f, "%-24s p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms  (%" PRIu64 ")\n", name,
            hist_quantile(h, 0.5) / 1000.0, hist_quantile(h, 0.9) / 1000.0,
            hist_quantile(h, 0.99) / 1000.0, h->max / 1000.0, h->count);
}

static void report_table(FILE *f, const results_t *r)
{
    uint64_t est = TOTAL(n.established), sent = TOTAL(n.sent), del = TOTAL(n.delivered);
    fprintf(f, "hearth-bench: %s, %u sessions on %u threads, %s%s, %.1f s\n",
            scenario_names[B.o.scenario], B.o.sessions, B.o.threads, B.o.tls ? "TLS, " : "",
            B.o.mech ? B.o.mech : "default SASL", r->elapsed);
    if (B.o.do_register)
        fprintf(f, "%-24s %" PRIu64 " created, %" PRIu64 " existing, %" PRIu64 " failed\n",
                "accounts", TOTAL(n.reg_created), TOTAL(n.reg_existing), TOTAL(n.reg_failed));
    fprintf(f, "%-24s %" PRIu64 " established, %" PRIu64 " failed, %" PRIu64 " dropped\n",
            "sessions", est, TOTAL(n.failed), TOTAL(n.dropped));
    if (r->fail_text)
        fprintf(f, "%-24s %s\n", "first failure", r->fail_text);
    fprintf(f, "%-24s %.1f /s\n", "login rate", r->login_s > 0 ? (double)est / r->login_s : 0.0);
    row_hist(f, "login latency", &r->login);
    if (B.o.scenario == SC_PRESENCE || B.o.scenario == SC_MUC)
        fprintf(f, "%-24s %" PRIu64 " ready, %" PRIu64 " failed\n", "setup", TOTAL(n.ready),
                TOTAL(n.setup_failed));
    if (B.o.scenario >= SC_CHAT) {
        fprintf(f, "%-24s %" PRIu64 " stanzas, %" PRIu64 " deliveries expected\n", "sent",
                TOTAL(n.stanzas), sent);
        fprintf(f, "%-24s %" PRIu64 " delivered, %" PRIu64 " lost (%" PRIu64 " bounced), %.1f /s\n",
                "messages", del, sent > del ? sent - del : 0, TOTAL(n.errors),
                r->run_s > 0 ? (double)del / r->run_s : 0.0);
        row_hist(f, "delivery latency", &r->lat);
    }
    fprintf(
        f,
        "%-24s RSS %lu KiB -> %lu KiB online (%.2f KiB/session), CPU %.3f ms/login, %.2f s total\n",
        "hearth-bench itself", r->rss_start, r->rss_online,
        est && B.o.scenario != SC_LOGIN && r->rss_online > r->rss_start
            ? (double)(r->rss_online - r->rss_start) / (double)est
            : 0.0,
        est ? r->cpu_login * 1000.0 / (double)est : 0.0, r->cpu_total);
}

int main(int argc, char **argv)
{
    B.start_ns = uv_hrtime();
    parse_args(argc, argv, &B.o);
    resolve_host(&B.o);
    raise_fd_limit(B.o.sessions, B.o.threads);
    if (B.o.scram_cache && scram_cache_load(B.o.scram_cache) != 0)
        die_usage("--scram-cache %s: cannot be read", B.o.scram_cache);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    show_progress = !B.o.quiet && isatty(STDERR_FILENO);

    B.online = calloc(B.o.sessions + 1, sizeof(*B.online));
    B.workers = calloc(B.o.threads, sizeof(*B.workers));
    B.rooms = (B.o.sessions + B.o.room_size - 1) / B.o.room_size;
    B.room_joined = calloc(B.rooms + 1, sizeof(*B.room_joined));
    B.room_ready = calloc(B.rooms + 1, sizeof(*B.room_ready));
    B.room_leader = calloc(B.rooms + 1, sizeof(*B.room_leader));
    B.source = calloc(B.o.sources ? B.o.sources : 1, sizeof(*B.source));
    if (!B.online || !B.workers || !B.room_joined || !B.room_ready || !B.room_leader || !B.source) {
        fprintf(stderr, "hearth-bench: out of memory\n");
        return 3;
    }
    for (unsigned i = 0; i < B.o.sources; i++)
        snprintf(B.source[i], sizeof(B.source[i]), "127.0.0.%u", i + 1);
    atomic_store(&B.phase, PH_INIT);
    for (unsigned i = 0; i < B.o.threads; i++) {
        if (worker_init(&B.workers[i], i) != 0) {
            fprintf(stderr, "hearth-bench: cannot set up worker %u\n", i);
            return 3;
        }
    }
    for (unsigned i = 0; i < B.o.threads; i++) {
        if (pthread_create(&B.workers[i].thread, NULL, worker_main, &B.workers[i]) != 0) {
            fprintf(stderr, "hearth-bench: cannot start thread %u\n", i);
            return 3;
        }
    }

    results_t r = {0};
    t_start = now_s();
    /* no session waits forever: the library bounds each attempt (connect 10 s, negotiation
     * 30 s); this only guards against a bug */
    double settle = (B.o.ramp > 0 ? B.o.sessions / B.o.ramp : 0) + B.o.sessions / 20.0 + 120;
    if (B.o.do_register) {
        set_phase(PH_REGISTER, "register");
        wait_for(registered_all, settle);
    }
    r.rss_start = status_kib("VmRSS");
    double cpu0 = cpu_seconds();
    if (!interrupted) {
        set_phase(PH_CONNECT, B.o.scenario == SC_LOGIN ? "login" : "connect");
        wait_for(connected_all, settle);
    }
    r.cpu_login = cpu_seconds() - cpu0;
    r.rss_online = status_kib("VmRSS");
    uint64_t first = UINT64_MAX, last = 0;
    for (unsigned i = 0; i < B.o.threads; i++) {
        uint64_t a = atomic_load(&B.workers[i].n.first_start_ns);
        uint64_t b = atomic_load(&B.workers[i].n.last_online_ns);
        if (a && a < first)
            first = a;
        if (b > last)
            last = b;
    }
    r.login_s = last > first && first != UINT64_MAX ? (double)(last - first) / 1e9 : 0;
    if (!interrupted && (B.o.scenario == SC_PRESENCE || B.o.scenario == SC_MUC)) {
        set_phase(PH_SETUP, "setup");
        wait_for(setup_all, B.o.setup_timeout);
    }
    if (!interrupted && B.o.scenario != SC_LOGIN) {
        set_phase(PH_RUN, B.o.scenario == SC_IDLE ? "hold" : "run");
        double t0 = now_s();
        wait_for(NULL, B.o.duration);
        r.run_s = now_s() - t0;
        set_phase(PH_DRAIN, "drain");
        wait_for(drained, B.o.drain);
    }
    set_phase(PH_STOP, "stop");
    sig_atomic_t was_interrupted = interrupted;
    interrupted = 0; /* the orderly stop runs after ^C too; a second ^C cuts it short */
    wait_for(stopped, STOP_TIMEOUT_S);
    interrupted = interrupted || was_interrupted;
    set_phase(PH_EXIT, "exit");
    for (unsigned i = 0; i < B.o.threads; i++)
        pthread_join(B.workers[i].thread, NULL);
    if (show_progress)
        fputs("\r\033[K", stderr);
    r.elapsed = now_s() - t_start;
    r.cpu_total = cpu_seconds();
    r.rss_peak = status_kib("VmHWM"); /* the kernel updates it lazily */
    if (r.rss_peak < r.rss_online)
        r.rss_peak = r.rss_online;
    size_t scram_entries;
    scram_cache_stats(&r.scram_hits, &r.scram_misses, &scram_entries);
    for (unsigned i = 0; i < B.o.threads; i++) {
        worker_t *w = &B.workers[i];
        hist_merge(&r.login, &w->login);
        hist_merge(&r.lat, &w->lat);
        for (int k = 0; k < FAIL_KINDS; k++)
            r.fail_kind[k] += atomic_load(&w->fail_kind[k]);
        if (!r.fail_text && w->fail_text)
            r.fail_text = w->fail_text;
    }
    if (B.o.json) {
        report_table(stderr, &r);
        report_json(stdout, &r);
    } else {
        report_table(stdout, &r);
    }
    fflush(stdout);
    int ok = TOTAL(n.established) == B.o.sessions && !TOTAL(n.failed) && !TOTAL(n.dropped);
    if (B.o.scram_cache && scram_cache_save(B.o.scram_cache) != 0)
        fprintf(stderr, "hearth-bench: --scram-cache %s: not saved\n", B.o.scram_cache);
    scram_cache_free();
    for (unsigned i = 0; i < B.o.threads; i++)
        worker_free(&B.workers[i]);
    free(B.workers);
    free(B.online);
    free(B.room_joined);
    free(B.room_ready);
    free(B.room_leader);
    free(B.source);
    return ok ? 0 : 1;
}
