/* What the IM modules share about accounts: the unavailable presence every module writes, and
 * what happens when an account is removed (XEP-0077 §3.2). The user's state itself is the
 * core's (core/user.c). */
#include <stdlib.h>
#include <string.h>

#include "modules/im.h"

hearth_bytes_t *im__unavailable(const char *full)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<presence type='unavailable' from='");
    rc = rc ?: hearth_buf_append_escaped(&b, full, strlen(full));
    rc = rc ?: hearth_buf_append_str(&b, "'/>");
    hearth_bytes_t *bytes = rc ? NULL : hearth_bytes_new(b.data, b.len);
    hearth_buf_free(&b);
    return bytes;
}

static void account_removed(worker_t *w, void *arg)
{
    hook_args_t a = {.w = w, .bare = arg};
    hooks__run(HOOK_ACCOUNT_REMOVED, &a);
    free(arg);
}

/* Every worker drops the grants made to bare (rooms in memory; stored rooms lost their
 * affiliation rows with the account, in the same storage call). */
static void forget_everywhere(worker_t *w, const char *bare)
{
    for (unsigned i = 0; i < w->srv->nworkers; i++) {
        char *copy = strdup(bare);
        if (!copy || worker__call(w->srv->workers[i], account_removed, free, copy))
            hlog(LOG_ERROR, "worker %u not told that %s was removed", i, bare);
    }
}

/* XEP-0077 §3.2: the account is gone. Its sessions end (so contacts see it go unavailable),
 * its contacts are told the subscriptions ended, and what was loaded is forgotten. */
void user__account_deleted(worker_t *w, const char *bare)
{
    forget_everywhere(w, bare);
    user_t *u = worker__user(w, bare, 0);
    if (!u)
        return;
    user__hold(u);
    /* The subscriptions are cancelled below, and a cancelled one first hears unavailable from
     * each available resource (RFC 6121 §3.2.2): said here, while the sessions are still
     * listed, since their ends are only scheduled and would find the roster gone. */
    STRMAP_FOREACH(&u->roster, e)
    {
        storage_roster_item_t *it = e->value;
        if (user__sub_from(it))
            presence__send_unavailable_to(w, u, it->jid);
    }
    for (session_t *s = u->sessions, *next; s; s = next) {
        next = s->user_next;
        session__end(s, HEARTH_STREAM_ERR_NOT_AUTHORIZED, "the account was removed");
    }
    STRMAP_FOREACH(&u->roster, e)
    {
        storage_roster_item_t *it = e->value;
        if (user__sub_to(it) || it->ask)
            presence__send_sub(w, u, it->jid, "unsubscribe");
        if (user__sub_from(it))
            presence__send_sub(w, u, it->jid, "unsubscribed");
        strmap_remove(&u->roster, e->key);
        user__roster_item_free(it);
    }
    STRMAP_FOREACH(&u->requests, e)
    {
        presence__send_sub(w, u, e->key, "unsubscribed");
        free(strmap_remove(&u->requests, e->key));
    }
    STRMAP_FOREACH(&u->blocked, e)
    {
        strmap_remove(&u->blocked, e->key);
    }
    u->roster_ver = u->roster_deleted_ver = 0;
    u->state = USER_MISSING;
    user__release(w, u);
}
