/* Shared by the files of server/admin/: one authenticated request in flight (admin_req_t, on
 * the worker whose loop read it), JSON answers, and the gather of something from every worker
 * through their inboxes (the only way the admin side reads a worker's state). */
#ifndef HEARTH_ADMIN_INTERNAL_H
#define HEARTH_ADMIN_INTERNAL_H

#include <jansson.h>

#include "admin/admin.h"
#include "core/log.h"
#include "core/session.h"
#include "core/user.h"

/* Request bodies the API takes, bytes: more get 413 (HTTP's own bound is 1 MiB). */
#define ADMIN_BODY_MAX (64u * 1024)
/* Users one GET /users page may hold. */
#define ADMIN_PAGE_MAX 1000
/* Bytes of an announcement's body and subject. */
#define ADMIN_ANNOUNCE_MAX 8192

typedef enum { ADMIN_METRICS_OFF, ADMIN_METRICS_OPEN, ADMIN_METRICS_KEY } admin_metrics_t;

typedef struct admin_state {
    server_t *srv;
    http_site_t *site;
    char *host; /* admin.host, "" none */
    admin_metrics_t metrics;
    uint64_t started_ms;              /* uv_hrtime at start, for the uptime */
    unsigned char local_key_hash[32]; /* SHA-256 of the key in <data-dir>/api.key */
    int local_key;                    /* 1 when there is one */
    char *key_path;                   /* <data-dir>/api.key, removed at exit */
    char *token_path;                 /* <data-dir>/setup.token */
    char setup_token[65];             /* "" once an administrator exists */
    int setup_open;                   /* atomic: no administrator yet */
    int setup_busy;                   /* atomic: a setup request is creating the account */
} admin_state_t;

extern admin_state_t admin__st;

/* How a password login ended (admin__login). */
typedef enum {
    ADMIN_LOGIN_OK,          /* the password is right and the account is an administrator */
    ADMIN_LOGIN_WRONG,       /* unknown name or wrong password */
    ADMIN_LOGIN_NOT_ADMIN,   /* the password is right, the account is no administrator */
    ADMIN_LOGIN_THROTTLED,   /* refused unchecked: too many failures (authguard) */
    ADMIN_LOGIN_UNAVAILABLE, /* storage or the thread pool failed: try again */
} admin_login_t;

typedef struct admin_req admin_req_t;
/* The console's renderer of an API answer: it takes body (NULL: none), answers ar and frees
 * it. extra: the header lines the API would have sent (NULL: none). */
typedef void (*admin_render_fn)(admin_req_t *ar, int status, json_t *body, const char *extra);

/* One request past authentication, on the worker w whose loop read it; its answer is deferred
 * (d) and given by admin__reply*, which frees it (or, for a console page, hands it to render). */
struct admin_req {
    http_deferred_t d;
    worker_t *w;
    char ip[64];
    char method[8];
    char *path;  /* as sent, without the query */
    char *query; /* "" none */
    char *body;  /* body_len bytes and a NUL */
    size_t body_len;
    char *ctype;    /* Content-Type, "" none */
    char who[1100]; /* "key <id>", "local key", or the admin's bare JID: for the log */
    char *user;     /* the authenticating user (Basic) while its password is checked */
    char *password; /* wiped once checked */
    hearth_scram_secret_t secret;
    int found; /* the user exists and is an administrator */
    int check_rc;
    authguard_ticket_t *ticket;
    uv_work_t work;
    uv_timer_t *delay;
    /* what the route keeps while it waits */
    void *op;
    /* Set by the console: the API's answer goes to render instead of the wire, so a page
     * shows exactly what the route would have answered. */
    admin_render_fn render;
    void *page; /* the console's state for this request (freed by the console) */
    void (*page_free)(void *page);
    int https; /* came over admin.https_port */
    /* What follows a password check (admin__login). */
    void (*login_done)(admin_req_t *ar, admin_login_t verdict);
};

/* Answers and frees ar. body is taken (json_decref'd); NULL: no body. */
void admin__reply_json(admin_req_t *ar, int status, json_t *body);
/* {"error": text, "status": status} with extra header lines (NULL: none). */
void admin__reply_error(admin_req_t *ar, int status, const char *text, const char *extra);
/* The same for a request not deferred yet. */
void admin__error_now(const http_request_t *req, int status, const char *text, const char *extra);
void admin__req_free(admin_req_t *ar);

/* The JSON object of ar's body: NULL after answering (415 not JSON, 400 not an object). */
json_t *admin__body(admin_req_t *ar);
/* A prepared localpart from "name" or "name@<server.domain>": malloc'd, or NULL. */
char *admin__node_of(const char *name);
int admin__loopback(const char *ip);  /* the peer's address is a loopback one */
int admin__host_ok(const char *host); /* a Host header the API answers */

/* Accounts: the secrets derived on the thread pool, then stored; done runs on ar->w with 0,
 * HEARTH_EEXISTS, HEARTH_ENOTFOUND, HEARTH_EINVAL (password refused) or another error. */
typedef void (*admin_account_done)(admin_req_t *ar, int err);
int admin__account_create(admin_req_t *ar, const char *node, const char *password, int admin,
                          admin_account_done done);
int admin__account_password(admin_req_t *ar, const char *node, const char *password,
                            admin_account_done done);

/* A password login: node and password (both malloc'd, taken, the password wiped) checked on the
 * thread pool against the stored SCRAM keys, throttled per address and per account by
 * core/authguard exactly as the API's Basic path; done(ar, verdict) runs on ar->w. */
void admin__login(admin_req_t *ar, char *node, char *password,
                  void (*done)(admin_req_t *ar, admin_login_t verdict));
/* A deferred request holding copies of what a route will read; NULL after answering. */
admin_req_t *admin__req_take(http_request_t *req);
/* Hex of n random bytes into out (2n+1 bytes); 0 or HEARTH_EIO. */
int admin__random_hex(char *out, size_t bytes);
void admin__sha256(const char *s, size_t n, unsigned char out[32]);

/* The console (console*.c): HEARTH_ENOTFOUND when the path is none of its own (dispatch then
 * asks for API authentication), else it answered. */
int admin__console(http_request_t *req);
int admin__console_init(server_t *srv);
/* Ends every console session of an account (deleted, or no longer an administrator). */
void admin__console_forget(const char *node);
void admin__console_free(void);
/* The first-run setup page (console.c renders it). */
int admin__setup_page(http_request_t *req);
/* Setup answers loopback peers only and only while no administrator exists: 1, or 0 after
 * answering 403 or 410. */
int admin__setup_door(http_request_t *req);
/* The API routes that the console added (console_data.c): 1 when p (after /api/v1) is one. */
int admin__api_more(admin_req_t *ar, const char *p);
void admin__data_free(void); /* the samplers, after the workers stopped */

/* API keys (admin.c): stored hashed as documents, shown once. */
void admin__key_create(admin_req_t *ar);
void admin__key_list(admin_req_t *ar);
void admin__key_delete(admin_req_t *ar, const char *id);

/* The API's routes (api.c), on ar->w once authenticated. */
void admin__api(admin_req_t *ar);
/* The metrics page (metrics.c), answered on ar->w. */
void admin__metrics(admin_req_t *ar);

/* Something from every worker: each(w, g, i) runs on worker i (its own thread) and fills
 * g->parts[i]; finish(g) runs on ar->w once all have, and answers. */
typedef struct admin_gather admin_gather_t;
struct admin_gather {
    admin_req_t *ar;
    unsigned n, done;
    void (*each)(worker_t *w, admin_gather_t *g, unsigned i);
    void (*finish)(admin_gather_t *g);
    void *arg;
    void (*arg_free)(void *arg);
    json_t **parts;
};
int admin__gather(admin_req_t *ar, void (*each)(worker_t *, admin_gather_t *, unsigned),
                  void (*finish)(admin_gather_t *), void *arg, void (*arg_free)(void *));
void admin__gather_free(admin_gather_t *g); /* and its arg; not ar */

/* Paths and queries (api.c). A path segment or query value percent-decoded (plus as space when
 * form): malloc'd, NULL when malformed or when it decodes to a NUL, or to a slash unless slash. */
char *admin__decode(const char *s, size_t n, int form, int slash);
/* The value of name in a query string, decoded (malloc'd); NULL when absent; *bad when
 * malformed. */
char *admin__query_get(const char *q, const char *name, int *bad);
/* An unsigned number in the query (dflt when absent): -1 when malformed or over max. */
int admin__query_uint(const char *q, const char *name, long dflt, long max, long *out);
/* 405 with the methods the path takes. */
void admin__not_allowed(admin_req_t *ar, const char *allow);
/* The segment after prefix in p, decoded, when p is prefix + one segment + tail exactly. */
char *admin__segment(const char *p, const char *prefix, const char *tail, int slash);

/* A call on the home worker of a bare JID (a user's or a room's), answered back on ar->w. */
typedef struct home_call home_call_t;
struct home_call {
    admin_req_t *ar;
    worker_t *home;
    hearth_jid_t jid; /* bare, or full for one session */
    void (*at_home)(worker_t *h, home_call_t *hc);
    void (*back)(home_call_t *hc); /* on ar->w, answers */
    int err;
    int count;
    json_t *result;
    void *arg; /* the route's own, freed by arg_free with the call */
    void (*arg_free)(void *arg);
};
/* jid is taken. at_home runs on the home worker and ends with admin__home_return(hc), which
 * runs back on ar->w; the call is freed after back. */
void admin__at_home(admin_req_t *ar, hearth_jid_t *jid, void (*at_home)(worker_t *, home_call_t *),
                    void (*back)(home_call_t *));
void admin__home_return(home_call_t *hc);
void admin__home_call_free(home_call_t *hc);

/* Routes in their own files, on ar->w once authenticated; p is the path after /api/v1. Each
 * returns 0 when p is not its own (nothing answered). */
int admin__properties(admin_req_t *ar, const char *p);
int admin__rooms(admin_req_t *ar, const char *p);
int admin__rosters(admin_req_t *ar, const char *p);
int admin__certificate(admin_req_t *ar, const char *p);
/* GET /users/{user} (api.c): the account, its sessions and their count; PATCH (users.c). */
void admin__user_get(admin_req_t *ar, const char *node);
void admin__user_patch(admin_req_t *ar, const char *node);

/* Resident memory (VmRSS) and its peak (VmHWM) in bytes, 0 when unknown. */
void admin__memory(uint64_t *rss, uint64_t *hwm);

#endif
