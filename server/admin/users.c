/* PATCH /api/v1/users/{user}: an account's flags changed by an administrator. Locking stops
 * logins (c2s/auth.c refuses a locked account once its password proved right) and ends the
 * sessions it has, on its home worker. */
#include <stdlib.h>
#include <string.h>

#include "hearth/jid.h"

#include "admin/internal.h"
#include "core/session.h"

typedef struct patch {
    char *node;
    int admin;  /* -1: unchanged */
    int locked; /* -1: unchanged */
} patch_t;

static void patch_free(patch_t *p)
{
    free(p->node);
    free(p);
}

static void ended_here(worker_t *h, home_call_t *hc)
{
    user_t *u = worker__user(h, hc->jid.bare, 0);
    for (session_t *s = u ? u->sessions : NULL; s; s = s->user_next) {
        if (s->state == SESSION_ENDED || s->ending)
            continue;
        session__end(s, HEARTH_STREAM_ERR_POLICY_VIOLATION,
                     "the account was locked by an administrator");
        hc->count++;
    }
    admin__home_return(hc);
}

static void ended_back(home_call_t *hc)
{
    admin_req_t *ar = hc->ar;
    patch_t *p = ar->op;
    ar->op = NULL;
    hlog(LOG_INFO, "admin: %s locked %s (%d session(s) ended)", ar->who, hc->jid.bare, hc->count);
    admin__user_get(ar, p->node);
    patch_free(p);
}

static void step(admin_req_t *ar);

static void written(void *ud, int err)
{
    admin_req_t *ar = ud;
    patch_t *p = ar->op;
    if (err) {
        ar->op = NULL;
        patch_free(p);
        admin__reply_error(ar, err == HEARTH_ENOTFOUND ? 404 : 500,
                           err == HEARTH_ENOTFOUND ? "no such user" : "cannot store the change",
                           NULL);
        return;
    }
    step(ar);
}

/* One storage write after the other (admin, then locked), then the sessions of a locked
 * account end, then the account as GET shows it. */
static void step(admin_req_t *ar)
{
    patch_t *p = ar->op;
    storage_t *st = ar->w->srv->storage;
    int rc = 0;
    if (p->admin >= 0) {
        int v = p->admin;
        p->admin = -1;
        hlog(LOG_INFO, "admin: %s made %s %s", ar->who, p->node, v ? "an administrator" : "a user");
        if (!v) /* no longer an administrator: logged out of the console */
            admin__console_forget(p->node);
        rc = storage_account_set_admin(st, &ar->w->storage_target, p->node, v, written, ar);
    } else if (p->locked == 2) { /* stored: the sessions end */
        hearth_jid_t jid = HEARTH_JID_INIT;
        p->locked = -1;
        if (hearth_jid_make(p->node, ar->w->set.domain, NULL, &jid, NULL)) {
            ar->op = NULL;
            patch_free(p);
            admin__reply_error(ar, 500, "stored name is not a JID", NULL);
            return;
        }
        admin__at_home(ar, &jid, ended_here, ended_back);
        return;
    } else if (p->locked >= 0) {
        int v = p->locked;
        p->locked = v ? 2 : -1;
        if (!v)
            hlog(LOG_INFO, "admin: %s unlocked %s", ar->who, p->node);
        else /* locked: logged out of the console too */
            admin__console_forget(p->node);
        rc = storage_account_set_locked(st, &ar->w->storage_target, p->node, v, written, ar);
    } else {
        ar->op = NULL;
        admin__user_get(ar, p->node);
        patch_free(p);
        return;
    }
    if (rc) {
        ar->op = NULL;
        patch_free(p);
        admin__reply_error(ar, 503, "storage is busy; try again", NULL);
    }
}

void admin__user_patch(admin_req_t *ar, const char *node)
{
    json_t *b = admin__body(ar);
    if (!b)
        return;
    json_t *admin = json_object_get(b, "admin"), *locked = json_object_get(b, "locked");
    const char *bad = NULL;
    if ((admin && !json_is_boolean(admin)) || (locked && !json_is_boolean(locked)))
        bad = "\"admin\" and \"locked\" are booleans";
    else if (json_object_get(b, "name"))
        bad = "\"name\": accounts have no display name here (it is the user's vCard)";
    else if (!admin && !locked)
        bad = "nothing to change: give \"admin\" or \"locked\"";
    patch_t *p = bad ? NULL : calloc(1, sizeof(*p));
    if (p) {
        p->admin = admin ? json_is_true(admin) : -1;
        p->locked = locked ? json_is_true(locked) : -1;
        p->node = strdup(node);
    }
    json_decref(b);
    if (bad || !p || !p->node) {
        if (p)
            patch_free(p);
        admin__reply_error(ar, bad ? 400 : 500, bad ? bad : "out of memory", NULL);
        return;
    }
    ar->op = p;
    step(ar);
}
