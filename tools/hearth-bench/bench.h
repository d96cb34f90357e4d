/* hearth-bench, the load generator: what its files share. main.c reads the command line, runs
 * the phases and prints the figures; worker.c runs one thread's sessions on its own uv loop and
 * hearth_ctx; hist.c keeps latencies. Workers and main share only atomics (phase, counters, the
 * online flags); histograms are read by main after the workers have ended. */
#ifndef HEARTH_BENCH_H
#define HEARTH_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "hearth/client.h"

typedef enum { SC_LOGIN, SC_IDLE, SC_CHAT, SC_PRESENCE, SC_MUC } scenario_t;

/* The phases main walks the workers through; a worker acts on a change at its next tick. */
typedef enum {
    PH_INIT,
    PH_REGISTER, /* --register: one connection per account with XEP-0077, then out */
    PH_CONNECT,  /* every session logs in at the ramp rate */
    PH_SETUP,    /* presence: rosters; muc: joins */
    PH_RUN,      /* traffic at --rate for --duration (idle: the hold) */
    PH_DRAIN,    /* no more traffic; waiting for what is in flight */
    PH_STOP,     /* every session disconnects in order */
    PH_EXIT,     /* workers free their contexts and end */
} phase_t;

typedef struct opts {
    const char *host; /* as given */
    char addr[64];    /* its numeric address, what the clients connect to */
    unsigned port;
    const char *domain;
    const char *prefix;
    const char *password;
    int do_register;
    unsigned sessions;
    scenario_t scenario;
    double rate;     /* messages (chat, muc) or presence broadcasts (presence) per second, total */
    double duration; /* seconds of the hold / traffic phase */
    int tls;
    int json;
    const char *mech;     /* NULL: the library's preference list */
    double ramp;          /* sessions started per second, total; 0: no pacing */
    unsigned concurrency; /* sessions negotiating at once, total */
    unsigned threads;
    unsigned roster_size; /* presence: contacts per user (even, < sessions) */
    unsigned room_size;   /* muc: occupants per room */
    const char *muc_service;
    unsigned sources; /* source addresses 127.0.0.1 .. 127.0.0.<sources>; 0: none bound */
    const char *ca_file;
    int no_verify;
    int sm;
    double setup_timeout; /* seconds for rosters or joins */
    double drain;         /* seconds to wait for messages in flight */
    int quiet;            /* no progress line */
    int allow_remote;
    const char *scram_cache;
    /* file of salted passwords kept between runs; NULL: none */ /* a host that is not loopback
                                                                    is refused without it */
} opts_t;

/* Latencies in microseconds, log-linear buckets: exact below 64 us, then 32 buckets per
 * octave (3 % resolution) up to 2^40 us. */
#define HIST_BUCKETS 1184
typedef struct hist {
    uint64_t count;
    uint64_t max;
    uint64_t sum;
    uint32_t bucket[HIST_BUCKETS];
} hist_t;

void hist_add(hist_t *h, uint64_t us);
void hist_merge(hist_t *into, const hist_t *from);
/* The value (us) at quantile q in [0, 1]; 0 when empty. */
uint64_t hist_quantile(const hist_t *h, double q);

/* Counters a worker bumps and main reads while it runs (relaxed atomics: only sums matter). */
typedef struct counters {
    atomic_uint_fast64_t started;     /* login attempts begun (PH_CONNECT) */
    atomic_uint_fast64_t established; /* sessions online at least once */
    atomic_uint_fast64_t failed;      /* attempts that never got online */
    atomic_uint_fast64_t dropped;     /* online sessions lost before PH_STOP */
    atomic_uint_fast64_t closed;      /* sessions whose connection has ended for good */
    atomic_uint_fast64_t reg_created, reg_existing, reg_failed, reg_done;
    atomic_uint_fast64_t ready;        /* setup done (roster complete, room joined) */
    atomic_uint_fast64_t setup_failed; /* a join refused, a roster that could not be read */
    atomic_uint_fast64_t stanzas;      /* traffic stanzas sent */
    atomic_uint_fast64_t sent;         /* deliveries expected from them */
    atomic_uint_fast64_t delivered;
    atomic_uint_fast64_t errors;         /* bounced (type='error') */
    atomic_uint_fast64_t stale;          /* another run's, held offline for these accounts */
    atomic_uint_fast64_t send_refused;   /* the library refused the send (queue bounds) */
    atomic_uint_fast64_t last_online_ns; /* uv_hrtime of the latest login in PH_CONNECT */
    atomic_uint_fast64_t first_start_ns;
} counters_t;

#define FAIL_KINDS 32 /* failure reasons by -HEARTH_E* code; 0 for anything else */

typedef struct sess sess_t;

typedef struct worker {
    unsigned id;
    pthread_t thread;
    uv_loop_t loop;
    uv_timer_t tick;
    hearth_ctx_t *ctx;
    sess_t *sess; /* sessions id+1, id+1+threads, ... */
    unsigned nsess;
    unsigned next;  /* next session to start in this phase */
    sess_t **retry; /* [nsess]: registrations to try again (their t0 says when) */
    unsigned nretry;
    unsigned negotiating; /* started, not yet online or ended */
    double credit;        /* sessions (or stanzas) allowed and not yet started (sent) */
    uint64_t last_tick_ns;
    phase_t phase; /* the phase this worker has acted on */
    uint64_t rng;
    uint64_t seq;
    counters_t n;
    hist_t login; /* connect to online, PH_CONNECT */
    hist_t lat;   /* delivery latency */
    atomic_uint_fast64_t fail_kind[FAIL_KINDS];
    const char *fail_text; /* a sample of why (static or owned by fail_buf) */
    char fail_buf[200];
} worker_t;

/* Shared by every thread; set up by main before the workers start. */
typedef struct bench {
    opts_t o;
    atomic_int phase;
    worker_t *workers;
    atomic_uchar *online;     /* [sessions + 1]: session i is online */
    atomic_int *room_joined;  /* muc: [rooms + 1] occupants joined */
    atomic_int *room_ready;   /* muc: [rooms + 1] the room exists and is unlocked */
    atomic_uint *room_leader; /* muc: [rooms + 1] the session that creates it, 0 unclaimed */
    unsigned rooms;
    char (*source)[24]; /* [sources]: "127.0.0.x" */
    uint64_t start_ns;  /* uv_hrtime at start: marked messages sent before are another run's */
} bench_t;

extern bench_t B;

/* scram_cache.c: the salted passwords every worker's context shares (the hooks of
 * hearth_ctx_config_t), and the --scram-cache file. load and save: 0 or -1 (said on stderr). */
int scram_cache_lookup(void *ud, const hearth_scram_key_t *key, unsigned char *salted);
void scram_cache_store(void *ud, const hearth_scram_key_t *key, const unsigned char *salted);
void scram_cache_stats(unsigned long *hits, unsigned long *misses, size_t *entries);
int scram_cache_load(const char *path);
int scram_cache_save(const char *path);
void scram_cache_free(void);

/* worker.c. worker_init (main thread, before the thread starts): its sessions, loop and
 * context; 0 or -1. worker_main: the thread. worker_free: after the thread has ended. */
int worker_init(worker_t *w, unsigned id);
void *worker_main(void *arg);
void worker_free(worker_t *w);

#endif
