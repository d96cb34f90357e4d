/* Hearth's one storage interface: typed asynchronous calls per kind of record, run in FIFO order on
 * the storage thread and handed back to the asking loop; blocking versions for tools and start-up.
 * The lower section is the driver interface, for storage.c and the drivers (sqlite.c) only. */
#ifndef HEARTH_STORAGE_H
#define HEARTH_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "hearth/error.h"
#include "hearth/sasl.h"

typedef struct storage storage_t;
typedef struct storage_req storage_req_t;
/* Called on the storage thread when req is done: hand it to the loop that asked (inbox push +
 * wake). It must not block on storage (no storage_sync_* here). */
typedef void (*storage_post_fn)(void *post_ud, storage_req_t *req);
typedef struct storage_target {
    storage_post_fn post;
    void *post_ud;
} storage_target_t;

/* driver "sqlite": dsn is the database file path. Creates the file, runs migrations, starts the
 * thread. On failure returns HEARTH_ESTORAGE/HEARTH_ECONFIG and *errmsg (malloc'd) explains. */
int storage_open(const char *driver, const char *dsn, storage_t **out,
                 char **errmsg) HEARTH_MUST_CHECK;
/* Executes what is queued, stops the thread, closes. Requests already done but not yet finished
 * by their owner stay valid (owner finishes/frees them). */
void storage_close(storage_t *st);
/* On the asking thread: run the callback, free the request. */
void storage_req_finish(storage_req_t *req);
/* Free without running the callback (owner shutting down). */
void storage_req_discard(storage_req_t *req);

typedef struct storage_account {
    char *username; /* prepared localpart */
    int admin;
    hearth_scram_secret_t sha1; /* all empty and iterations 0: no credential of that kind */
    hearth_scram_secret_t sha256;
    int64_t created_at; /* unix seconds; 0 at create means "now" */
} storage_account_t;
void storage_account_clear(storage_account_t *a);

typedef void (*storage_status_cb)(void *ud, int err); /* 0 or HEARTH_E* */
/* acct is borrowed during the call; err HEARTH_ENOTFOUND when there is no such account (acct
 * NULL). */
typedef void (*storage_account_cb)(void *ud, int err, const storage_account_t *acct);
typedef void (*storage_account_list_cb)(void *ud, int err, const storage_account_t *accts,
                                        size_t n);
typedef void (*storage_property_cb)(void *ud, int err,
                                    const char *value); /* ENOTFOUND → value NULL */

/* Bounds on what a request may carry (HEARTH_EINVAL beyond them, at submission). */
#define STORAGE_NAME_MAX 1023   /* username, property name: bytes */
#define STORAGE_VALUE_MAX 65536 /* property value: bytes */
/* Requests waiting for the storage thread; beyond it submission fails with HEARTH_EAGAIN (the
 * caller decides: retry later or report a temporary failure). */
#define STORAGE_QUEUE_MAX 100000

/* Asynchronous calls: return 0 when queued (the callback will run via target), or an error now
 * (callback not run). String and struct arguments are copied. */
int storage_account_get(storage_t *st, const storage_target_t *t, const char *username,
                        storage_account_cb cb, void *ud);
int storage_account_create(storage_t *st, const storage_target_t *t, const storage_account_t *acct,
                           storage_status_cb cb, void *ud); /* EEXISTS */
int storage_account_set_secrets(storage_t *st, const storage_target_t *t, const char *username,
                                const hearth_scram_secret_t *sha1,
                                const hearth_scram_secret_t *sha256, storage_status_cb cb,
                                void *ud); /* ENOTFOUND */
int storage_account_set_admin(storage_t *st, const storage_target_t *t, const char *username,
                              int admin, storage_status_cb cb, void *ud); /* ENOTFOUND */
int storage_account_delete(storage_t *st, const storage_target_t *t, const char *username,
                           storage_status_cb cb, void *ud); /* ENOTFOUND */
int storage_account_list(storage_t *st, const storage_target_t *t, storage_account_list_cb cb,
                         void *ud); /* ordered by username */
int storage_property_get(storage_t *st, const storage_target_t *t, const char *name,
                         storage_property_cb cb, void *ud);
int storage_property_set(storage_t *st, const storage_target_t *t, const char *name,
                         const char *value, storage_status_cb cb, void *ud);

/* Blocking versions for tools and start-up (never on a worker loop): wait on a condition variable
 * for the storage thread, then finish on the calling thread. */
int storage_sync_account_get(storage_t *st, const char *username,
                             storage_account_t *out); /* caller clears */
int storage_sync_account_create(storage_t *st, const storage_account_t *acct);
int storage_sync_account_set_secrets(storage_t *st, const char *username,
                                     const hearth_scram_secret_t *sha1,
                                     const hearth_scram_secret_t *sha256);
int storage_sync_account_set_admin(storage_t *st, const char *username, int admin);
int storage_sync_account_delete(storage_t *st, const char *username);
int storage_sync_account_list(storage_t *st, storage_account_t **out,
                              size_t *n); /* caller clears each and frees */
int storage_sync_property_get(storage_t *st, const char *name, char **value); /* malloc'd */
int storage_sync_property_set(storage_t *st, const char *name, const char *value);

/* ---- Driver interface: storage.c and the drivers only. ---- */

typedef enum storage_op {
    STORAGE_OP_ACCOUNT_GET,
    STORAGE_OP_ACCOUNT_CREATE,
    STORAGE_OP_ACCOUNT_SET_SECRETS,
    STORAGE_OP_ACCOUNT_SET_ADMIN,
    STORAGE_OP_ACCOUNT_DELETE,
    STORAGE_OP_ACCOUNT_LIST,
    STORAGE_OP_PROPERTY_GET,
    STORAGE_OP_PROPERTY_SET,
} storage_op_t;

/* One request. Arguments are set at submission and only read by the driver; results are written
 * by the driver on the storage thread and read by the owner after the post. */
struct storage_req {
    storage_req_t *next; /* queue link, owned by storage.c */
    storage_op_t op;
    storage_post_fn post;
    void *post_ud;
    union {
        storage_status_cb status;
        storage_account_cb account;
        storage_account_list_cb list;
        storage_property_cb property;
    } cb;
    void *ud;

    /* arguments */
    storage_account_t acct; /* CREATE: the account; GET, SET_*, DELETE: acct.username (and
                             * acct.admin, acct.sha1, acct.sha256 for SET_ADMIN, SET_SECRETS) */
    char *name;             /* PROPERTY_*: the name */
    char *value;            /* PROPERTY_SET: argument; PROPERTY_GET: result (NULL if none) */

    /* results */
    int err;
    storage_account_t result; /* ACCOUNT_GET, when err == 0 */
    storage_account_t *list;  /* ACCOUNT_LIST, when err == 0 */
    size_t list_n;
};

typedef struct storage_driver {
    const char *name;
    /* On the opening thread: connect, migrate. *errmsg (malloc'd) on failure. */
    int (*open)(const char *dsn, void **conn, char **errmsg);
    /* On the storage thread: run the list of requests (linked by next) in order, as one
     * transaction where the driver can, each request's failure confined to that request; set
     * every request's err and results. */
    void (*run)(void *conn, storage_req_t *first);
    void (*close)(void *conn);
    /* Transactions committed so far (tests and metrics); may be read from any thread. */
    uint64_t (*commits)(void *conn);
} storage_driver_t;

extern const storage_driver_t storage__sqlite_driver;

/* Drop a request's results (driver: a batch whose transaction was lost). */
void storage__req_clear_result(storage_req_t *req);

/* Counters for tests and metrics, read from any thread. */
typedef struct storage_stats {
    uint64_t batches;  /* wake-ups of the storage thread that ran requests */
    uint64_t requests; /* requests run */
    uint64_t commits;  /* transactions committed by the driver (migrations included) */
} storage_stats_t;
void storage__stats(storage_t *st, storage_stats_t *out);

#endif
