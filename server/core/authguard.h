/* Failed-login throttling across streams and workers: a server-wide table of token buckets per
 * address, per (address, account) and per account, behind one short lock (streams from one
 * address land on any worker, so no per-worker state would see them all). */
#ifndef HEARTH_AUTHGUARD_H
#define HEARTH_AUTHGUARD_H

#include <stddef.h>
#include <stdint.h>

#include "hearth/error.h"

/* A burst of 0 turns that bucket off. Rates are failures regained per minute. */
typedef struct authguard_limits {
    unsigned ip_burst, ip_per_min;
    unsigned pair_burst, pair_per_min;
    unsigned account_burst, account_per_min;
    unsigned account_delay_ms; /* wait before checking while the account is over its budget */
} authguard_limits_t;

/* Entries kept, least recently used evicted first: about 6 MiB at most. Eviction forgets a
 * bucket's debt; reaching it takes that many distinct addresses and names, each within its own
 * budget. */
#define AUTHGUARD_MAX_ENTRIES 32768

typedef struct authguard authguard_t;
typedef struct authguard_ticket authguard_ticket_t;

authguard_t *authguard_new(const authguard_limits_t *lim); /* NULL on ENOMEM */
void authguard_free(authguard_t *g);

typedef struct authguard_verdict {
    unsigned delay_ms; /* the account is over its budget: check only after this long */
    /* Set when this call put a bucket over its budget (log it once): "address", "address and
     * account" or "account". */
    const char *newly_throttled;
} authguard_verdict_t;

/* Before a password is checked, any thread. account NULL counts the address only (a name that
 * can never log in). Returns 0 with *ticket holding one attempt reserved on each bucket (to be
 * given back by authguard__end), or HEARTH_ELIMIT (*ticket NULL, nothing reserved): the address
 * or the pair is over its budget and the attempt must be refused without checking anything.
 * The account's budget never refuses: it only asks for a delay, so that its owner, coming from
 * another address, still gets in while others guess. HEARTH_ENOMEM when no ticket can be
 * allocated. */
int authguard__begin(authguard_t *g, const char *ip, const char *account,
                     authguard_ticket_t **ticket, authguard_verdict_t *v) HEARTH_MUST_CHECK;

/* The same at a given time (monotonic nanoseconds, as uv_hrtime), for tests. */
int authguard__begin_at(authguard_t *g, uint64_t now_ns, const char *ip, const char *account,
                        authguard_ticket_t **ticket, authguard_verdict_t *v) HEARTH_MUST_CHECK;
size_t authguard__size(authguard_t *g); /* buckets held, for tests */

typedef enum {
    AUTHGUARD_FAILED,    /* the password was checked and was wrong: the attempt stays spent */
    AUTHGUARD_SUCCEEDED, /* given back; the (address, account) pair starts afresh */
    AUTHGUARD_UNCHECKED, /* nothing was checked (aborted, malformed, closed): given back */
} authguard_outcome_t;
/* Settles and frees the ticket (NULL: nothing to do). */
void authguard__end(authguard_t *g, authguard_ticket_t *ticket, authguard_outcome_t outcome);

#endif
