/* A scripted XMPP server for the client library's unit tests (in the manner of Mosquitto's
 * test/lib): it listens on loopback on the test's loop, and a script says, step by step, which
 * exact bytes it expects from the client, which it sends back, when TLS starts, when it drops
 * the connection, which events the client must have reported, and when time moves on. The
 * client runs on the same loop, so a whole exchange runs in one thread with no sleep. */
#ifndef HEARTH_TEST_FAKE_SERVER_H
#define HEARTH_TEST_FAKE_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "hearth/buf.h"
#include "hearth/client.h"
#include "hearth/sasl.h"
#include "hearth/tls.h"

typedef struct fake fake_t;

typedef enum step_kind {
    S_END = 0,
    S_ACCEPT,      /* take the next connection (waits for the client to connect) */
    S_EXPECT,      /* exactly these bytes from the client, next */
    S_SEND,        /* these bytes to the client */
    S_TLS,         /* TLS begins on the connection (after <proceed/>, or first for direct TLS) */
    S_SASL_EXPECT, /* <auth mechanism=arg> or <response> (arg NULL) carrying exactly text */
    S_SASL_SEND,   /* <challenge> (arg "challenge") or <success> (arg "success") carrying text */
    S_SASL_SERVER, /* a whole SCRAM exchange of mechanism arg run by lib/sasl's server with the
                      TLS session's channel bindings, password text, ending in <success/> */
    S_CLOSE,       /* the server drops the connection (FIN) */
    S_EOF,         /* the client closed the connection */
    S_EVENT,       /* the client's next event was exactly text */
    S_CALL,        /* fn(f) */
    S_ADVANCE,     /* the client context's clock moves by ms */
    S_ADVANCE_RECONNECT, /* ...by the delay of the last "disconnected ... reconnect D" event */
} step_kind_t;

typedef struct step {
    step_kind_t kind;
    const char *text;
    const char *arg;
    void (*fn)(fake_t *f);
    uint64_t ms;
} step_t;

#define ACCEPT                                                                                     \
    {                                                                                              \
        .kind = S_ACCEPT                                                                           \
    }
#define EXPECT(s)                                                                                  \
    {                                                                                              \
        .kind = S_EXPECT, .text = (s)                                                              \
    }
#define SEND(s)                                                                                    \
    {                                                                                              \
        .kind = S_SEND, .text = (s)                                                                \
    }
#define TLS                                                                                        \
    {                                                                                              \
        .kind = S_TLS                                                                              \
    }
#define SASL_AUTH(mech, s)                                                                         \
    {                                                                                              \
        .kind = S_SASL_EXPECT, .text = (s), .arg = (mech)                                          \
    }
#define SASL_RESPONSE(s)                                                                           \
    {                                                                                              \
        .kind = S_SASL_EXPECT, .text = (s)                                                         \
    }
#define SASL_CHALLENGE(s)                                                                          \
    {                                                                                              \
        .kind = S_SASL_SEND, .text = (s), .arg = "challenge"                                       \
    }
#define SASL_SUCCESS(s)                                                                            \
    {                                                                                              \
        .kind = S_SASL_SEND, .text = (s), .arg = "success"                                         \
    }
#define SASL_SERVER(mech, pw)                                                                      \
    {                                                                                              \
        .kind = S_SASL_SERVER, .text = (pw), .arg = (mech)                                         \
    }
#define CLOSE                                                                                      \
    {                                                                                              \
        .kind = S_CLOSE                                                                            \
    }
#define CLIENT_EOF                                                                                 \
    {                                                                                              \
        .kind = S_EOF                                                                              \
    }
#define EVENT(s)                                                                                   \
    {                                                                                              \
        .kind = S_EVENT, .text = (s)                                                               \
    }
#define CALL(f)                                                                                    \
    {                                                                                              \
        .kind = S_CALL, .fn = (f)                                                                  \
    }
#define ADVANCE(n)                                                                                 \
    {                                                                                              \
        .kind = S_ADVANCE, .ms = (n)                                                               \
    }
#define ADVANCE_RECONNECT                                                                          \
    {                                                                                              \
        .kind = S_ADVANCE_RECONNECT                                                                \
    }
#define END                                                                                        \
    {                                                                                              \
        .kind = S_END                                                                              \
    }

/* A DNS SRV record the fake DNS server gives (name without the trailing dot). */
typedef struct fake_srv {
    const char *name;
    unsigned prio, weight, port;
    const char *target;
} fake_srv_t;

#define FAKE_MAX_EVENTS 128
#define FAKE_MAX_PENDING 8

struct fake {
    uv_loop_t loop;
    uv_tcp_t listener;
    int port;
    hearth_tls_ctx_t *tls_ctx; /* the server's certificate */
    /* the connection the script talks on */
    uv_tcp_t *conn;
    hearth_tls_t *tls;
    bool eof;
    hearth_buf_t in; /* plaintext from the client, not yet matched */
    uv_tcp_t *pending[FAKE_MAX_PENDING];
    int npending;
    /* the script */
    const step_t *steps;
    size_t pc;
    bool failed;
    char failure[4096];
    /* SASL_SERVER's exchange */
    hearth_sasl_t *sasl;
    hearth_sasl_server_t *sasl_server;
    int sasl_stage;
    /* the client under test */
    hearth_ctx_t *ctx;
    hearth_client_t *client;
    char events[FAKE_MAX_EVENTS][512];
    int nevents, events_taken;
    uv_udp_t dns;
    bool dns_on;
    const fake_srv_t *srv; /* ends with a NULL name */
    int dns_queries;
    uv_timer_t watchdog;
    uv_prepare_t prepare;
    const char *user; /* for the test's CALL functions */
};

/* Listens on 127.0.0.1 (ephemeral port) on a fresh loop; cert/key: the server's PEM files or
 * NULL. 0 or -1. */
int fake_init(fake_t *f, const char *cert, const char *key);
/* A client context on the fake's loop, logging to stderr when HEARTH_TEST_LOG is set. */
hearth_ctx_t *fake_ctx(fake_t *f);
/* The same with the rest of the context's configuration from base (its loop is replaced). */
hearth_ctx_t *fake_ctx_with(fake_t *f, const hearth_ctx_config_t *base);
/* Events handed to hearth_client_new: each becomes a line of f->events. */
extern const hearth_client_events_t fake_events;
/* Appends an event line (also from the test's own callbacks). */
void fake_event(fake_t *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs the script to its end: true, or false with f->failure saying where and why. */
bool fake_run(fake_t *f, const step_t *steps, unsigned timeout_ms);
/* The same in two halves, for a test that runs the loop itself in between (the client's
 * blocking wrappers): the script moves on from the loop's callbacks. */
void fake_begin(fake_t *f, const step_t *steps, unsigned timeout_ms);
bool fake_end(fake_t *f);
/* Frees the client and context, closes everything, checks that no handle is left on the loop
 * (libuv's leak check). false when something leaked. */
bool fake_done(fake_t *f);
/* A DNS server on 127.0.0.1 answering SRV queries from records (NXDOMAIN for other names);
 * returns its port for hearth__ctx_set_nameserver, or -1. */
int fake_dns(fake_t *f, const fake_srv_t *records);
/* Serialises an IQ callback's outcome as an event: "iq ID RESULT". */
void fake_iq_cb(void *ud, hearth_client_t *c, int result, hearth_stanza_t *resp);

#endif
