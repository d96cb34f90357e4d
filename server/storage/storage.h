/* Hearth's one storage interface: typed asynchronous calls per kind of record, run in FIFO order on
 * the storage thread and handed back to the asking loop; blocking versions for tools and start-up.
 * The lower section is the driver interface, for storage.c and the drivers (sqlite.c) only. */
#ifndef HEARTH_STORAGE_H
#define HEARTH_STORAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
    /* The connection of the pool whose FIFO queue runs this target's requests (modulo the pool
     * size): a worker gives its index, so that its requests run in the order it made them. */
    unsigned lane;
} storage_target_t;

/* driver "sqlite": dsn is the database file path; "pgsql": dsn is a libpq connection string
 * (postgresql://user@host:port/db or key=value pairs). Creates the file (or connects), runs
 * migrations, starts the thread. On failure returns HEARTH_ESTORAGE/HEARTH_ECONFIG and *errmsg
 * (malloc'd) explains. */
int storage_open(const char *driver, const char *dsn, storage_t **out,
                 char **errmsg) HEARTH_MUST_CHECK;
/* The same with pool connections, each with its own thread and queue (storage.pool_size):
 * requests of one target run in order; those of different lanes in any order. sqlite takes 1. */
#define STORAGE_POOL_MAX 64
int storage_open_pool(const char *driver, const char *dsn, unsigned pool, storage_t **out,
                      char **errmsg) HEARTH_MUST_CHECK;
unsigned storage_pool_size(const storage_t *st);
/* Whether driver takes a pool of that size (what storage_open_pool refuses first): 0, or
 * HEARTH_ECONFIG with *errmsg (malloc'd). For --check-config, before anything is opened. */
int storage_pool_check(const char *driver, unsigned pool, char **errmsg) HEARTH_MUST_CHECK;
/* hearthctl migrate: every row of the SQLite store at sqlite_path copied into the PostgreSQL
 * database at dsn, both first brought to this build's schema. The target must hold no data. One
 * transaction: on any failure the target is left as it was. Each table's count is checked on both
 * sides before the commit, and written to report (NULL: none). Nothing may write to the SQLite
 * store meanwhile (the caller holds its data directory). 0, else HEARTH_E* with *errmsg
 * (malloc'd). */
int storage_copy_to_pgsql(const char *sqlite_path, const char *dsn, FILE *report,
                          char **errmsg) HEARTH_MUST_CHECK;
/* Requests queued and not yet finished or discarded by their owner (any thread): a server
 * drains to 0 before its workers stop, so no result is handed to a loop that is gone. */
long storage_outstanding(storage_t *st);
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
    int locked;         /* migration 9: an administrator locked it (no login) */
} storage_account_t;
void storage_account_clear(storage_account_t *a);

typedef void (*storage_status_cb)(void *ud, int err); /* 0 or HEARTH_E* */
/* acct is borrowed during the call; err HEARTH_ENOTFOUND when there is no such account (acct
 * NULL). */
typedef void (*storage_account_cb)(void *ud, int err, const storage_account_t *acct);
typedef void (*storage_account_list_cb)(void *ud, int err, const storage_account_t *accts,
                                        size_t n);
/* A page of accounts and the number of all that matched (the page's size aside). */
typedef void (*storage_account_page_cb)(void *ud, int err, const storage_account_t *accts, size_t n,
                                        int64_t total);
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
int storage_account_set_locked(storage_t *st, const storage_target_t *t, const char *username,
                               int locked, storage_status_cb cb, void *ud); /* ENOTFOUND */
int storage_account_delete(storage_t *st, const storage_target_t *t, const char *username,
                           storage_status_cb cb, void *ud); /* ENOTFOUND */
int storage_account_list(storage_t *st, const storage_target_t *t, storage_account_list_cb cb,
                         void *ud); /* ordered by username */
/* Accounts whose name contains search (ASCII letters matched in either case; NULL or "": all),
 * in name order, at most limit (0..STORAGE_PAGE_MAX; 0: the count alone) from offset, with the
 * count of all that match: what a list of hundreds of thousands of accounts is paged with. */
#define STORAGE_PAGE_MAX 10000
int storage_account_page(storage_t *st, const storage_target_t *t, const char *search,
                         int64_t offset, size_t limit, storage_account_page_cb cb, void *ud);
int storage_property_get(storage_t *st, const storage_target_t *t, const char *name,
                         storage_property_cb cb, void *ud);
/* value NULL removes the property (no error when there is none). */
int storage_property_set(storage_t *st, const storage_target_t *t, const char *name,
                         const char *value, storage_status_cb cb, void *ud);

/* ---- IM records (migration 2) ---- */

/* More bounds (HEARTH_EINVAL beyond them, at submission). */
#define STORAGE_JID_MAX 3071       /* a JID (bare or full: 1023 + '@' + 1023 + '/' + 1023): bytes */
#define STORAGE_STANZA_MAX 1048576 /* offline message, stored subscription request: bytes */
#define STORAGE_XML_MAX 1048576    /* vCard, private XML: bytes */
#define STORAGE_BLOCK_MAX 10000    /* JIDs per block-list call */
#define STORAGE_GROUPS_MAX 100     /* groups per roster item */
#define STORAGE_GROUP_MAX 1023     /* roster group name, roster item name: bytes */
/* Private XML namespaces are bounded by STORAGE_NAME_MAX, a last-activity status text by
 * STORAGE_VALUE_MAX. */

typedef enum {
    STORAGE_SUB_NONE = 0,
    STORAGE_SUB_TO = 1,
    STORAGE_SUB_FROM = 2,
    STORAGE_SUB_BOTH = 3
} storage_sub_t;
typedef struct storage_roster_item {
    char *jid;        /* prepared bare JID of the contact */
    char *name;       /* NULL when none */
    int subscription; /* storage_sub_t */
    int ask;          /* outbound subscribe pending (ask='subscribe') */
    int approved;     /* pre-approved inbound subscription (RFC 6121 §3.4) */
    char **groups;    /* group names, ngroups of them */
    size_t ngroups;
    int64_t ver; /* roster version at which the item last changed */
} storage_roster_item_t;
/* Frees what the item holds (the struct itself is the caller's), zeroed after. */
void storage_roster_item_clear(storage_roster_item_t *it);
/* An inbound subscription request awaiting the user's answer. */
typedef struct storage_sub_request {
    char *jid;    /* bare JID of the requester */
    char *stanza; /* the <presence type='subscribe'/> as received, serialised */
} storage_sub_request_t;
typedef struct storage_user {
    int exists;                   /* 0: no such account (nothing else filled) */
    int64_t roster_ver;           /* current roster version, 0 = never changed */
    int64_t roster_deleted_ver;   /* version of the latest item removal, 0 = none */
    storage_roster_item_t *items; /* ordered by jid; each item's groups in the order stored */
    size_t nitems;
    storage_sub_request_t *requests; /* ordered by jid */
    size_t nrequests;
    char **blocked; /* XEP-0191 block list, as stored (ordered by jid) */
    size_t nblocked;
    int64_t last_logout; /* unix seconds of the last logout, 0 = never */
    char *last_status;   /* status text given then, NULL */
} storage_user_t;
void storage_user_clear(storage_user_t *u);

/* err 0 and user->exists 0 for an unknown account; user borrowed during the call. */
typedef void (*storage_user_cb)(void *ud, int err, const storage_user_t *user);
int storage_user_load(storage_t *st, const storage_target_t *t, const char *username,
                      storage_user_cb cb, void *ud);

/* Roster writes: each also sets the user's roster_ver to ver (the caller computes versions). */
/* Insert or replace by (username, jid), groups replaced; the stored item's ver is ver (item->ver
 * is not read). ENOTFOUND if no account. */
int storage_roster_put(storage_t *st, const storage_target_t *t, const char *username,
                       const storage_roster_item_t *item, int64_t ver, storage_status_cb cb,
                       void *ud);
/* Also roster_deleted_ver = ver; ENOTFOUND when no such item (or account). */
int storage_roster_delete(storage_t *st, const storage_target_t *t, const char *username,
                          const char *jid, int64_t ver, storage_status_cb cb, void *ud);
/* Insert or replace; ENOTFOUND if no account. */
int storage_request_put(storage_t *st, const storage_target_t *t, const char *username,
                        const char *jid, const char *stanza, storage_status_cb cb, void *ud);
int storage_request_delete(storage_t *st, const storage_target_t *t, const char *username,
                           const char *jid, storage_status_cb cb,
                           void *ud); /* 0 even when absent */

/* Offline messages (XEP-0160). */
typedef struct storage_offline_msg {
    int64_t id; /* increasing, never reused */
    int64_t stamp_ms;
    char *stanza; /* len bytes, followed by a NUL */
    size_t len;
} storage_offline_msg_t;
typedef void (*storage_offline_cb)(void *ud, int err, const storage_offline_msg_t *msgs, size_t n);
/* Stores one message unless the user already holds quota messages: then HEARTH_ELIMIT and nothing
 * is stored (quota 0: nothing is ever stored). HEARTH_ENOTFOUND when there is no such account.
 * When the callback runs with 0 the message is committed. 1 <= len <= STORAGE_STANZA_MAX. */
int storage_offline_store(storage_t *st, const storage_target_t *t, const char *username,
                          const char *stanza, size_t len, int64_t stamp_ms, unsigned quota,
                          storage_status_cb cb, void *ud);
/* All, oldest first (msgs borrowed during the call); none for an unknown account. */
int storage_offline_fetch(storage_t *st, const storage_target_t *t, const char *username,
                          storage_offline_cb cb, void *ud);
int storage_offline_delete(storage_t *st, const storage_target_t *t, const char *username,
                           int64_t upto_id, storage_status_cb cb, void *ud); /* ids <= upto_id */

/* vCard-temp (XEP-0054) and private XML (XEP-0049), stored as serialised XML. Setting for an
 * unknown account: ENOTFOUND; deleting what is absent: 0. */
typedef void (*storage_blob_cb)(void *ud, int err, const char *xml); /* ENOTFOUND → xml NULL */
/* 0 with xml NULL: the account exists and has no vCard; ENOTFOUND: no such account. */
int storage_vcard_get(storage_t *st, const storage_target_t *t, const char *username,
                      storage_blob_cb cb, void *ud);
int storage_vcard_set(storage_t *st, const storage_target_t *t, const char *username,
                      const char *xml /* NULL deletes */, storage_status_cb cb, void *ud);
int storage_private_get(storage_t *st, const storage_target_t *t, const char *username,
                        const char *ns, storage_blob_cb cb, void *ud);
/* total_max > 0: ELIMIT (nothing stored) when the account's private XML would pass total_max
 * bytes, every namespace's name and XML counted. */
int storage_private_set(storage_t *st, const storage_target_t *t, const char *username,
                        const char *ns, const char *xml /* NULL deletes */, size_t total_max,
                        storage_status_cb cb, void *ud);
/* Every private XML document of an account, by namespace (each doc's key is the namespace):
 * for export; none for an unknown account. */
typedef struct storage_doc {
    char *key;
    char *xml;
} storage_doc_t;
typedef void (*storage_doc_list_cb)(void *ud, int err, const storage_doc_t *docs, size_t n);
int storage_private_list(storage_t *st, const storage_target_t *t, const char *username,
                         storage_doc_list_cb cb, void *ud);

/* Block list (XEP-0191). */
int storage_block_add(storage_t *st, const storage_target_t *t, const char *username,
                      const char *const *jids, size_t n, storage_status_cb cb,
                      void *ud); /* duplicates ignored; ENOTFOUND if no account */
int storage_block_remove(storage_t *st, const storage_target_t *t, const char *username,
                         const char *const *jids, size_t n /* 0 = all */, storage_status_cb cb,
                         void *ud); /* 0 even when absent */

/* Last activity (XEP-0012). ENOTFOUND if no account. */
int storage_last_set(storage_t *st, const storage_target_t *t, const char *username, int64_t stamp,
                     const char *status /* NULL */, storage_status_cb cb, void *ud);

/* ---- Message archive (XEP-0313) and generic documents and logs (migration 3) ---- */

#define STORAGE_ARCHIVE_ID_MAX 255      /* archive (stanza) id: bytes */
#define STORAGE_ARCHIVE_PAGE_MAX 10000  /* items per archive query */
#define STORAGE_ARCHIVE_PREFS_MAX 10000 /* JIDs in each preferences list */
#define STORAGE_KIND_MAX 64             /* document / log kind: bytes */
/* Document and log keys are bounded by STORAGE_JID_MAX, their XML by STORAGE_XML_MAX; archived
 * stanzas by STORAGE_STANZA_MAX. */

/* Archive ids. A message archived for both parties (sender and local recipient) is stored once,
 * under one 63-bit key that is also its id in both archives and the stanza id the recipient
 * sees (XEP-0359), written in decimal. The key orders the archive and carries the time:
 *   bits 62..21  milliseconds since 1970 (until 2109)
 *   bits 20..14  the generator (a worker thread; STORAGE_ARCHIVE_GEN_STORAGE for ids the
 *                storage gives itself: messages stored under an id of another form)
 *   bits 13..0   a counter within the millisecond
 * so that a time bound is a bound on the key and no index on time or on the id is needed.
 * Ids of another form (archived before migration 7) keep working: they are kept beside their
 * message and found through a partial index. */
#define STORAGE_ARCHIVE_MS_SHIFT 21
#define STORAGE_ARCHIVE_GEN_SHIFT 14
#define STORAGE_ARCHIVE_GENS 128
#define STORAGE_ARCHIVE_GEN_STORAGE (STORAGE_ARCHIVE_GENS - 1)
#define STORAGE_ARCHIVE_COUNTER_MAX ((1 << STORAGE_ARCHIVE_GEN_SHIFT) - 1)
#define STORAGE_ARCHIVE_MS_MAX (INT64_MAX >> STORAGE_ARCHIVE_MS_SHIFT)

/* The first key of millisecond ms (clamped to the representable range). */
static inline int64_t storage_archive_key_of_ms(int64_t ms)
{
    if (ms < 0)
        ms = 0;
    if (ms > STORAGE_ARCHIVE_MS_MAX)
        ms = STORAGE_ARCHIVE_MS_MAX;
    return ms << STORAGE_ARCHIVE_MS_SHIFT;
}

static inline int64_t storage_archive_ms_of_key(int64_t key)
{
    return key >> STORAGE_ARCHIVE_MS_SHIFT;
}

/* The key an id names when it is one (1..19 digits, no leading zero, within int64): 0, or -1
 * for an id of another form. */
int storage_archive_key_parse(const char *id, int64_t *key);

/* One archived message. */
typedef struct storage_archive_msg {
    char *id;         /* unique per user: the stanza id it was archived under (an archive key in
                       * decimal; another form only for messages stored before migration 7) */
    char *with;       /* bare JID of the other party */
    int64_t stamp_ms; /* read: the key's millisecond; stored: used only for an id of another
                       * form, whose key the storage then gives from it */
    int outgoing;     /* sent by the archive's owner */
    char *stanza;     /* len bytes, followed by a NUL */
    size_t len;
} storage_archive_msg_t;

/* What to read from one user's archive; unused bounds are NULL / STORAGE_ARCHIVE_NO_*. Results
 * are in archive order (oldest first) whichever the direction. */
#define STORAGE_ARCHIVE_NO_START INT64_MIN
#define STORAGE_ARCHIVE_NO_END INT64_MAX
typedef struct storage_archive_query {
    const char *with; /* bare JID, or NULL */
    int64_t start_ms; /* stamp_ms >= start_ms */
    int64_t end_ms;   /* stamp_ms <= end_ms */
    /* XEP-0059 paging, relative to an item of the user's archive (ENOTFOUND when it is not in
     * it): after_id gives the page after it; before_id the page before it, and "" the last
     * page. Without before_id the page starts at the beginning (or after after_id). */
    const char *after_id;
    const char *before_id;
    size_t max; /* items in the page, <= STORAGE_ARCHIVE_PAGE_MAX (0: count only) */
    /* Stanza bytes in the page (0: no bound): the page ends before the item that would pass
     * it, but holds at least one, and is then not complete. */
    size_t max_bytes;
} storage_archive_query_t;

typedef struct storage_archive_page {
    const storage_archive_msg_t *msgs; /* n of them, oldest first */
    size_t n;
    size_t count; /* items matching with/start/end (paging bounds ignored) */
    int complete; /* no more items in the paging direction (after the page going forward,
                   * before it for a before_id query) */
} storage_archive_page_t;
typedef void (*storage_archive_cb)(void *ud, int err, const storage_archive_page_t *page);

typedef enum {
    STORAGE_ARCHIVE_ALWAYS = 0,
    STORAGE_ARCHIVE_NEVER = 1,
    STORAGE_ARCHIVE_ROSTER = 2
} storage_archive_default_t;
typedef struct storage_archive_prefs {
    int stored;       /* 0: never set by the user (the rest is empty; the caller's default) */
    int default_mode; /* storage_archive_default_t */
    char **always;    /* bare JIDs, ordered */
    size_t nalways;
    char **never;
    size_t nnever;
} storage_archive_prefs_t;
typedef void (*storage_archive_prefs_cb)(void *ud, int err, const storage_archive_prefs_t *prefs);

/* Stores msg (id, with, stanza required; len 1..STORAGE_STANZA_MAX). ENOTFOUND if no account,
 * EEXISTS when the user's archive already holds the id (nothing stored). */
int storage_archive_store(storage_t *st, const storage_target_t *t, const char *username,
                          const storage_archive_msg_t *msg, storage_status_cb cb, void *ud);
/* One page of the user's archive (page borrowed during the call). An unknown account has an
 * empty archive; ENOTFOUND: after_id/before_id is not in it. */
int storage_archive_query(storage_t *st, const storage_target_t *t, const char *username,
                          const storage_archive_query_t *q, storage_archive_cb cb, void *ud);
/* err 0 and prefs->stored 0 when none were set (or no account). */
int storage_archive_prefs_get(storage_t *st, const storage_target_t *t, const char *username,
                              storage_archive_prefs_cb cb, void *ud);
/* Replaces the user's preferences (prefs->stored is not read). ENOTFOUND if no account. */
int storage_archive_prefs_set(storage_t *st, const storage_target_t *t, const char *username,
                              const storage_archive_prefs_t *prefs, storage_status_cb cb, void *ud);
void storage_archive_prefs_clear(storage_archive_prefs_t *p);
/* Retention: deletes every user's messages archived before before_ms. */
int storage_archive_purge(storage_t *st, const storage_target_t *t, int64_t before_ms,
                          storage_status_cb cb, void *ud);

/* Generic documents and logs, by (kind, key), for services without an account of their own
 * (multi-user chat rooms and their histories). kind: 1..STORAGE_KIND_MAX bytes; key:
 * 0..STORAGE_JID_MAX bytes; xml: 0..STORAGE_XML_MAX bytes. */
int storage_doc_put(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                    const char *xml, storage_status_cb cb, void *ud); /* insert or replace */
int storage_doc_get(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                    storage_blob_cb cb, void *ud); /* ENOTFOUND → NULL */
int storage_doc_delete(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                       storage_status_cb cb, void *ud); /* 0 even when absent */
int storage_doc_list(storage_t *st, const storage_target_t *t, const char *kind,
                     storage_doc_list_cb cb, void *ud); /* every doc of a kind, by key */
typedef struct storage_log_entry {
    int64_t id; /* increasing, never reused */
    int64_t stamp_ms;
    char *xml;
    /* Migration 8: */
    char *ref;    /* the entry's name for its owner (a room's stanza-id), unique in its log; an
                   * entry written before that is named "log-" and its id */
    char *author; /* who wrote it, as its readers see them (an occupant JID), or NULL */
    char *origin; /* who wrote it, as few may see them (a real bare JID), or NULL */
} storage_log_entry_t;
typedef void (*storage_log_cb)(void *ud, int err, const storage_log_entry_t *entries, size_t n);
int storage_log_append(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                       int64_t stamp_ms, const char *xml, storage_status_cb cb, void *ud);
/* The newest `max` entries with stamp_ms >= since_ms, returned oldest first. */
int storage_log_fetch(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                      int64_t since_ms, size_t max, storage_log_cb cb, void *ud);
int storage_log_delete(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                       storage_status_cb cb, void *ud); /* the whole log of key */

/* Named log entries (migration 8), for archives kept in a log (a room's, XEP-0313): appended
 * with a ref, paged through by refs, one replaced by its ref (a retraction's tombstone). A ref
 * is 1..STORAGE_ARCHIVE_ID_MAX bytes, an author or origin at most STORAGE_JID_MAX. */
/* Appends e (stamp_ms, xml, ref required; author, origin may be NULL; e->id is not read).
 * EEXISTS when the log already holds e->ref (nothing stored). */
int storage_log_append_entry(storage_t *st, const storage_target_t *t, const char *kind,
                             const char *key, const storage_log_entry_t *e, storage_status_cb cb,
                             void *ud);
/* What to read of one log: as storage_archive_query_t, author and origin for with. */
typedef struct storage_log_query {
    const char *author;     /* entries by this author only, or NULL */
    const char *origin;     /* entries of this origin only, or NULL */
    int64_t start_ms;       /* STORAGE_ARCHIVE_NO_START: no bound */
    int64_t end_ms;         /* STORAGE_ARCHIVE_NO_END: no bound */
    const char *after_ref;  /* the page after this entry (ENOTFOUND when not in the log) */
    const char *before_ref; /* the page before it; "" the last page */
    size_t max;             /* entries in the page, <= STORAGE_ARCHIVE_PAGE_MAX */
    size_t max_bytes;       /* xml bytes in the page (0: no bound); at least one entry */
} storage_log_query_t;
typedef struct storage_log_page {
    const storage_log_entry_t *entries; /* n of them, oldest first */
    size_t n;
    size_t count; /* entries matching author, origin, start, end */
    int complete; /* no more entries in the paging direction */
} storage_log_page_t;
typedef void (*storage_log_page_cb)(void *ud, int err, const storage_log_page_t *page);
int storage_log_query(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                      const storage_log_query_t *q, storage_log_page_cb cb, void *ud);
/* The entry named ref (one entry, or ENOTFOUND). */
int storage_log_get(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                    const char *ref, storage_log_cb cb, void *ud);
/* Replaces the xml of the entry named ref (its stamp, author and origin stay): ENOTFOUND when
 * there is none. */
int storage_log_replace(storage_t *st, const storage_target_t *t, const char *kind, const char *key,
                        const char *ref, const char *xml, storage_status_cb cb, void *ud);

/* Room affiliations (migration 4): one row per (room, bare JID). A row naming an account of
 * this server goes with the account (foreign key, ON DELETE CASCADE): removing an account,
 * from the server or from hearthctl, removes every grant made to its JID in stored rooms. */
#define STORAGE_MUC_AFFS_MAX 10000 /* rows per room: MUC_AFF_MAX */
typedef struct storage_muc_aff {
    char *jid;         /* bare JID */
    char *affiliation; /* owner, admin, member, outcast */
    char *nick;        /* reserved nickname, or NULL */
    char *reason;      /* or NULL */
    char *account;     /* put: the username when jid is of this server's domain, else NULL */
} storage_muc_aff_t;
typedef void (*storage_muc_affs_cb)(void *ud, int err, const storage_muc_aff_t *affs, size_t n);
typedef void (*storage_count_cb)(void *ud, int err, size_t n);
/* Replaces every row of room with affs (n = 0: removes them). */
int storage_muc_affs_put(storage_t *st, const storage_target_t *t, const char *room,
                         const storage_muc_aff_t *affs, size_t n, storage_status_cb cb, void *ud);
int storage_muc_affs_get(storage_t *st, const storage_target_t *t, const char *room,
                         storage_muc_affs_cb cb, void *ud); /* ordered by JID */
/* How many stored rooms jid owns. */
int storage_muc_owned_count(storage_t *st, const storage_target_t *t, const char *jid,
                            storage_count_cb cb, void *ud);

/* ---- Publish-subscribe (migration 5): nodes, their items and affiliations, for PEP services
 * (XEP-0163: the service is an account's bare JID) and pubsub services (XEP-0060: a domain).
 * A node of a PEP service names its account: it goes with the account (foreign key, ON DELETE
 * CASCADE), and its items and affiliations go with the node. ---- */

#define STORAGE_PUBSUB_IDS_MAX 1000 /* item ids one request names; also affiliation changes */
/* Node names are bounded by STORAGE_NAME_MAX, services, item ids, publishers and affiliated
 * JIDs by STORAGE_JID_MAX, a node configuration and an item's payload by STORAGE_XML_MAX. */

typedef struct storage_pubsub_node {
    char *node;
    char *config; /* the node's configuration: a serialised data form */
} storage_pubsub_node_t;

typedef struct storage_pubsub_item {
    char *node; /* a load's rows: the node it is in; elsewhere NULL */
    char *id;
    char *publisher; /* full JID of whoever published it */
    int64_t stamp_ms;
    size_t size;   /* bytes of its payload */
    char *payload; /* the serialised payload; a load gives it only for each node's newest item
                    * of at most inline_max bytes (NULL otherwise) */
} storage_pubsub_item_t;

typedef struct storage_pubsub_aff {
    char *node;
    char *jid;         /* bare JID */
    char *affiliation; /* member, outcast, publisher, ...; NULL in a change removes the row */
    char *account;     /* a change: the username when jid is of this server, else NULL (the row
                        * then goes with that account) */
} storage_pubsub_aff_t;
/* Frees n affiliation changes (each field malloc'd) and the array; NULL is fine. */
void storage_pubsub_affs_free(storage_pubsub_aff_t *v, size_t n);

/* Everything of one service but the payloads of older items, borrowed during the callback. */
typedef struct storage_pubsub_state {
    const storage_pubsub_node_t *nodes; /* by name */
    size_t nnodes;
    const storage_pubsub_item_t *items; /* by node, then publication order (oldest first) */
    size_t nitems;
    const storage_pubsub_aff_t *affs; /* by node, then JID */
    size_t naffs;
} storage_pubsub_state_t;
typedef void (*storage_pubsub_load_cb)(void *ud, int err, const storage_pubsub_state_t *state);
typedef void (*storage_pubsub_items_cb)(void *ud, int err, const storage_pubsub_item_t *items,
                                        size_t n);

int storage_pubsub_load(storage_t *st, const storage_target_t *t, const char *service,
                        size_t inline_max, storage_pubsub_load_cb cb, void *ud);
/* Creates node, or replaces its configuration; then keeps only its newest keep items (items
 * beyond it are removed: a configuration that lowered max_items). account: the PEP owner's
 * username, or NULL; ENOTFOUND when that account does not exist. */
int storage_pubsub_node_put(storage_t *st, const storage_target_t *t, const char *service,
                            const char *account, const char *node, const char *config, size_t keep,
                            storage_status_cb cb, void *ud);
/* The node with its items and affiliations; 0 even when absent. */
int storage_pubsub_node_delete(storage_t *st, const storage_target_t *t, const char *service,
                               const char *node, storage_status_cb cb, void *ud);
/* Stores item (item->id, publisher, payload; an item with its id is replaced, and the new one is
 * the newest), then keeps the node's newest keep items. config not NULL: the node is created
 * with it first (auto-create), in the same transaction. ENOTFOUND: no such node (or account). */
int storage_pubsub_publish(storage_t *st, const storage_target_t *t, const char *service,
                           const char *account, const char *node, const char *config,
                           const storage_pubsub_item_t *item, size_t keep, storage_status_cb cb,
                           void *ud);
/* 0 even when absent. */
int storage_pubsub_retract(storage_t *st, const storage_target_t *t, const char *service,
                           const char *node, const char *id, storage_status_cb cb, void *ud);
int storage_pubsub_purge(storage_t *st, const storage_target_t *t, const char *service,
                         const char *node, storage_status_cb cb, void *ud);
/* Items with their payloads, oldest first: those named by ids (nids > 0; absent ones are left
 * out), else the newest max (0 = all). */
int storage_pubsub_items(storage_t *st, const storage_target_t *t, const char *service,
                         const char *node, const char *const *ids, size_t nids, size_t max,
                         storage_pubsub_items_cb cb, void *ud);
/* Applies the changes (each for node and jid: set, or removed when affiliation is NULL) in one
 * transaction. */
int storage_pubsub_affs_set(storage_t *st, const storage_target_t *t, const char *service,
                            const storage_pubsub_aff_t *changes, size_t n, storage_status_cb cb,
                            void *ud);

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
int storage_sync_offline_count(storage_t *st, const char *username,
                               size_t *n); /* ENOTFOUND if no account */
/* The largest archive key in use (0 when none): the generators start past it, so that a clock
 * set back across a restart cannot give an id twice. */
int storage_sync_archive_last(storage_t *st, int64_t *key);
/* Rows of a kind, for the metrics: "offline" (messages stored for offline delivery) or "archive"
 * (archived messages, one row per archive that holds one). A COUNT over a table: sample it,
 * never per request. HEARTH_EINVAL for another name. */
int storage_sync_count(storage_t *st, const char *what, int64_t *n);
/* 0 and out->exists 0 for an unknown account; caller clears out (storage_user_clear). */
int storage_sync_user_load(storage_t *st, const char *username, storage_user_t *out);
/* For export and import (hearthctl): the asynchronous calls' contracts, blocking. */
int storage_sync_roster_put(storage_t *st, const char *username, const storage_roster_item_t *item,
                            int64_t ver);
int storage_sync_request_put(storage_t *st, const char *username, const char *jid,
                             const char *stanza);
int storage_sync_offline_store(storage_t *st, const char *username, const char *stanza, size_t len,
                               int64_t stamp_ms, unsigned quota);
/* *msgs (each stanza malloc'd) and the array: storage_sync_offline_free. */
int storage_sync_offline_fetch(storage_t *st, const char *username, storage_offline_msg_t **msgs,
                               size_t *n);
void storage_sync_offline_free(storage_offline_msg_t *msgs, size_t n);
int storage_sync_vcard_get(storage_t *st, const char *username, char **xml); /* NULL: none */
int storage_sync_vcard_set(storage_t *st, const char *username, const char *xml);
int storage_sync_private_set(storage_t *st, const char *username, const char *ns, const char *xml);
/* *docs (key: the namespace; each field malloc'd) and the array: storage_sync_docs_free. */
int storage_sync_private_list(storage_t *st, const char *username, storage_doc_t **docs, size_t *n);
void storage_sync_docs_free(storage_doc_t *docs, size_t n);

/* ---- Driver interface: storage.c and the drivers only. ---- */

typedef enum storage_op {
    STORAGE_OP_ACCOUNT_GET,
    STORAGE_OP_ACCOUNT_CREATE,
    STORAGE_OP_ACCOUNT_SET_SECRETS,
    STORAGE_OP_ACCOUNT_SET_ADMIN,
    STORAGE_OP_ACCOUNT_SET_LOCKED,
    STORAGE_OP_ACCOUNT_DELETE,
    STORAGE_OP_ACCOUNT_LIST,
    STORAGE_OP_ACCOUNT_PAGE, /* name: the LIKE pattern; num: offset; limit; num2: the total */
    STORAGE_OP_PROPERTY_GET,
    STORAGE_OP_PROPERTY_SET,
    STORAGE_OP_USER_LOAD,
    STORAGE_OP_ROSTER_PUT,
    STORAGE_OP_ROSTER_DELETE,
    STORAGE_OP_REQUEST_PUT,
    STORAGE_OP_REQUEST_DELETE,
    STORAGE_OP_OFFLINE_STORE,
    STORAGE_OP_OFFLINE_FETCH,
    STORAGE_OP_OFFLINE_DELETE,
    STORAGE_OP_OFFLINE_COUNT, /* storage_sync_offline_count only */
    STORAGE_OP_VCARD_GET,
    STORAGE_OP_VCARD_SET,
    STORAGE_OP_PRIVATE_GET,
    STORAGE_OP_PRIVATE_SET,
    STORAGE_OP_PRIVATE_LIST,
    STORAGE_OP_BLOCK_ADD,
    STORAGE_OP_BLOCK_REMOVE,
    STORAGE_OP_LAST_SET,
    STORAGE_OP_ARCHIVE_STORE,
    STORAGE_OP_ARCHIVE_QUERY,
    STORAGE_OP_ARCHIVE_PREFS_GET,
    STORAGE_OP_ARCHIVE_PREFS_SET,
    STORAGE_OP_ARCHIVE_PURGE,
    STORAGE_OP_ARCHIVE_LAST, /* storage_sync_archive_last only */
    STORAGE_OP_COUNT,        /* storage_sync_count only: what in name, the result in num */
    STORAGE_OP_DOC_PUT,
    STORAGE_OP_DOC_GET,
    STORAGE_OP_DOC_DELETE,
    STORAGE_OP_DOC_LIST,
    STORAGE_OP_LOG_APPEND,
    STORAGE_OP_LOG_FETCH,
    STORAGE_OP_LOG_DELETE,
    STORAGE_OP_LOG_APPEND_ENTRY,
    STORAGE_OP_LOG_QUERY,
    STORAGE_OP_LOG_GET,
    STORAGE_OP_LOG_REPLACE,
    STORAGE_OP_MUC_AFFS_PUT,
    STORAGE_OP_MUC_AFFS_GET,
    STORAGE_OP_MUC_OWNED,
    STORAGE_OP_PUBSUB_LOAD,
    STORAGE_OP_PUBSUB_NODE_PUT,
    STORAGE_OP_PUBSUB_NODE_DELETE,
    STORAGE_OP_PUBSUB_PUBLISH,
    STORAGE_OP_PUBSUB_RETRACT,
    STORAGE_OP_PUBSUB_PURGE,
    STORAGE_OP_PUBSUB_ITEMS,
    STORAGE_OP_PUBSUB_AFFS_SET,
} storage_op_t;

/* OFFLINE_COUNT's callback (internal: the blocking wrapper's). */
typedef void (*storage__count_cb)(void *ud, int err, size_t n);
/* ARCHIVE_LAST's callback (internal: the blocking wrapper's). */
typedef void (*storage__key_cb)(void *ud, int err, int64_t key);

/* One request. Arguments are set at submission and only read by the driver; results are written
 * by the driver on the storage thread and read by the owner after the post. */
struct storage_req {
    storage_req_t *next;             /* queue link, owned by storage.c */
    struct storage_pending *pending; /* set once queued: outstanding until finished */
    storage_op_t op;
    uint64_t queued_us; /* CLOCK_MONOTONIC when queued: the latency histogram */
    storage_post_fn post;
    void *post_ud;
    unsigned lane; /* its target's: the queue it runs on */
    union {
        storage_status_cb status;
        storage_account_cb account;
        storage_account_list_cb list;
        storage_account_page_cb page;
        storage_property_cb property;
        storage_user_cb user;
        storage_offline_cb offline;
        storage_blob_cb blob;
        storage__count_cb count;
        storage__key_cb key;
        storage_archive_cb archive;
        storage_archive_prefs_cb prefs;
        storage_doc_list_cb docs;
        storage_log_cb log;
        storage_log_page_cb log_page;
        storage_muc_affs_cb affs;
        storage_pubsub_load_cb pubsub_load;
        storage_pubsub_items_cb pubsub_items;
    } cb;
    void *ud;

    /* arguments */
    storage_account_t acct; /* CREATE: the account; GET, SET_*, DELETE: acct.username (and
                             * acct.admin, acct.sha1, acct.sha256 for SET_ADMIN, SET_SECRETS) */
    char *name;             /* PROPERTY_*: the name */
    char *value;            /* PROPERTY_SET: argument; PROPERTY_GET: result (NULL if none);
                             * LAST_SET: the status (NULL if none) */
    /* IM arguments (the username is acct.username) */
    storage_roster_item_t item; /* ROSTER_PUT: the item; ROSTER_DELETE, REQUEST_*: item.jid */
    char *blob;      /* REQUEST_PUT, OFFLINE_STORE: the stanza; VCARD_SET, PRIVATE_SET: the XML
                      * (NULL deletes); VCARD_GET, PRIVATE_GET: result. name: PRIVATE_*'s ns */
    size_t blob_len; /* OFFLINE_STORE */
    char **jids;     /* BLOCK_*: njids JIDs (REMOVE: 0 = all) */
    size_t njids;
    int64_t num;    /* ROSTER_*: ver; OFFLINE_STORE: stamp_ms; OFFLINE_DELETE: upto_id; LAST_SET:
                     * stamp; PRIVATE_SET: total_max */
    unsigned quota; /* OFFLINE_STORE */
    /* ARCHIVE_STORE: the message (stanza in blob/blob_len); ARCHIVE_QUERY: with, after, before
     * (msg.with, msg.id, name; NULL when absent), start/end in num/num2, max in limit */
    storage_archive_msg_t msg;
    int msg_stored; /* ARCHIVE_STORE, the pgsql driver's while it runs the batch: msg's text is
                     * under msg's key already, committed before the batch */
    int64_t num2;
    size_t limit;                  /* ARCHIVE_QUERY, LOG_FETCH: max */
    size_t limit_bytes;            /* ARCHIVE_QUERY: max_bytes */
    storage_archive_prefs_t prefs; /* ARCHIVE_PREFS_SET: argument; ARCHIVE_PREFS_GET: result */
    /* DOC_*, LOG_*: kind in name, key in item.jid, xml in blob (DOC_GET: result); LOG_APPEND:
     * stamp in num; LOG_FETCH: since in num; ARCHIVE_PURGE: before in num; ARCHIVE_LAST:
     * the result in num */

    /* results */
    int err;
    storage_account_t result; /* ACCOUNT_GET, when err == 0 */
    storage_account_t *list;  /* ACCOUNT_LIST, ACCOUNT_PAGE, when err == 0 */
    size_t list_n;
    storage_user_t user;          /* USER_LOAD, when err == 0 */
    storage_offline_msg_t *msgs;  /* OFFLINE_FETCH, when err == 0 */
    size_t msgs_n;                /* OFFLINE_FETCH, OFFLINE_COUNT */
    storage_archive_msg_t *amsgs; /* ARCHIVE_QUERY */
    storage_archive_page_t page;  /* ARCHIVE_QUERY (msgs/n set at finish) */
    size_t amsgs_n;
    storage_doc_t *docs;          /* DOC_LIST, PRIVATE_LIST */
    storage_log_entry_t *entries; /* LOG_FETCH */
    size_t docs_n;                /* DOC_LIST, LOG_FETCH */
    /* MUC_AFFS_PUT: argument, MUC_AFFS_GET: result (room in item.jid); MUC_OWNED: the JID in
     * item.jid, the count in msgs_n */
    storage_muc_aff_t *affs;
    size_t affs_n;
    /* LOG_APPEND_ENTRY, LOG_GET, LOG_REPLACE, LOG_QUERY (kind, key, xml as for LOG_*): the
     * entry's ref, author, origin (QUERY: the filters) and QUERY's paging refs; start and end in
     * num and num2, max in limit, max_bytes in limit_bytes; QUERY's page (entries set at
     * finish) */
    struct {
        char *ref, *author, *origin, *after, *before;
        storage_log_page_t page;
    } lg;
    /* PUBSUB_*: arguments (service, account, node; config: NODE_PUT's and PUBLISH's; keep: the
     * items a node keeps; ids, max: ITEMS's; inline_max: LOAD's; item: PUBLISH's; affs:
     * AFFS_SET's changes) and results (LOAD: nodes, items, affs; ITEMS: items) */
    struct {
        char *service, *account, *node, *config;
        size_t keep, max, inline_max;
        char **ids;
        size_t nids;
        storage_pubsub_item_t item;
        storage_pubsub_node_t *nodes;
        size_t nnodes;
        storage_pubsub_item_t *items;
        size_t nitems;
        storage_pubsub_aff_t *affs;
        size_t naffs;
    } ps;
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
/* pgsql.c, or pgsql_stub.c in a build without libpq (its open refuses, saying why). */
extern const storage_driver_t storage__pgsql_driver;

/* Drop a request's results (driver: a batch whose transaction was lost). */
void storage__req_clear_result(storage_req_t *req);

/* Counters for tests and metrics, read from any thread. */
/* Request latency (queued until its callback runs on the asking thread), as a histogram: the
 * upper bounds of all buckets but the last, which takes the rest. */
#define STORAGE_LATENCY_BUCKETS 15
extern const uint64_t storage__latency_bounds_us[STORAGE_LATENCY_BUCKETS - 1];
typedef struct storage_stats {
    uint64_t batches;  /* wake-ups of the storage thread that ran requests */
    uint64_t requests; /* requests run */
    uint64_t commits;  /* transactions committed by the driver (migrations included) */
    uint64_t latency[STORAGE_LATENCY_BUCKETS]; /* finished requests per bucket (not cumulative) */
    uint64_t latency_sum_us;
} storage_stats_t;
void storage__stats(storage_t *st, storage_stats_t *out);

#endif
