/* Ad-hoc commands (XEP-0050) on the server's domain JID, carrying the service administration
 * commands of XEP-0133 for admin accounts only. A command session lives on its requester's home
 * worker (this module's per-worker table); work on other accounts goes through storage and their
 * home workers' inboxes, and counts, lists and announcements go to every worker and come back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/form.h"
#include "hearth/jid.h"
#include "core/config.h"
#include "modules/im.h"

#define NS_COMMANDS "http://jabber.org/protocol/commands"
#define NS_ADMIN "http://jabber.org/protocol/admin" /* XEP-0133's nodes and FORM_TYPE */

/* Command sessions one account may have open at once (over all its resources); past it a new
 * execution gets resource-constraint until one completes, is canceled or expires. */
#define ADHOC_SESSIONS_PER_USER 8
/* Command sessions one worker keeps, expired ones included (they answer session-expired until
 * swept); past it, after a sweep, resource-constraint. */
#define ADHOC_SESSIONS_PER_WORKER 4096
/* Requests of one worker waiting for storage, the pool or the other workers; past it
 * resource-constraint (commands are for admins, but an admin's client may loop). */
#define ADHOC_JOBS_PER_WORKER 64
/* JIDs one delete-user or end-user-session names; past it the command completes with an error
 * note and does nothing. */
#define ADHOC_JIDS_MAX 100
/* Entries of an online-users list; 'max_items' may ask for fewer. Past it the list is cut and a
 * warning note says so. */
#define ADHOC_LIST_MAX 10000
/* Bytes of an announcement (subject and body together); past it an error note. */
#define ADHOC_ANNOUNCE_MAX 65536

typedef enum {
    CMD_ADD_USER,
    CMD_DELETE_USER,
    CMD_END_SESSION,
    CMD_CHANGE_PASSWORD,
    CMD_REGISTERED_NUM,
    CMD_ONLINE_NUM,
    CMD_ONLINE_LIST,
    CMD_ANNOUNCE,
} cmd_id_t;

typedef struct command {
    cmd_id_t id;
    const char *node;
    const char *name;
    const char *instructions; /* of its form; NULL: it has none and completes at once */
} command_t;

static const command_t commands[] = {
    {CMD_ADD_USER, NS_ADMIN "#add-user", "Add a User", "Fill out this form to add a user."},
    {CMD_DELETE_USER, NS_ADMIN "#delete-user", "Delete a User",
     "Fill out this form to delete users."},
    {CMD_END_SESSION, NS_ADMIN "#end-user-session", "End User Session",
     "Fill out this form to end sessions: a bare JID ends all of the user's, a full JID one."},
    {CMD_CHANGE_PASSWORD, NS_ADMIN "#change-user-password", "Change User Password",
     "Fill out this form to change a user's password."},
    {CMD_REGISTERED_NUM, NS_ADMIN "#get-registered-users-num", "Get Number of Registered Users",
     NULL},
    {CMD_ONLINE_NUM, NS_ADMIN "#get-online-users-num", "Get Number of Online Users", NULL},
    {CMD_ONLINE_LIST, NS_ADMIN "#get-online-users-list", "Get List of Online Users",
     "How many online users to list at most."},
    {CMD_ANNOUNCE, NS_ADMIN "#announce", "Send Announcement to Online Users",
     "Fill out this form to make an announcement to all online users of this service."},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const command_t *command_find(const char *node)
{
    for (size_t i = 0; node && i < NCOMMANDS; i++)
        if (!strcmp(commands[i].node, node))
            return &commands[i];
    return NULL;
}

/* The fields of XEP-0133's forms this module reads: their values are copied out of the request's
 * arena, which is gone before the admin check answers. */
typedef enum {
    V_ACCOUNTJID,
    V_ACCOUNTJIDS,
    V_PASSWORD,
    V_PASSWORD_VERIFY,
    V_MAX_ITEMS,
    V_SUBJECT,
    V_ANNOUNCEMENT,
    V__COUNT
} var_t;
static const char *const var_names[V__COUNT] = {
    "accountjid", "accountjids", "password",     "password-verify",
    "max_items",  "subject",     "announcement",
};

typedef enum { ACT_EXECUTE, ACT_CANCEL, ACT_PREV, ACT_NEXT, ACT_COMPLETE, ACT_BAD } action_t;

static action_t action_parse(const char *s)
{
    static const char *const names[] = {"execute", "cancel", "prev", "next", "complete"};
    if (!s)
        return ACT_EXECUTE; /* XEP-0050 §6: absent means execute */
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i]))
            return (action_t)i;
    return ACT_BAD;
}

typedef enum { REQ_COMMAND, REQ_ITEMS, REQ_INFO } req_kind_t;

/* One request, from the handler to its reply: everything it needs, on the heap. */
typedef struct adhoc_req {
    worker_t *w;
    iq_deferred_t *d;
    req_kind_t kind;
    char *requester; /* full JID */
    char *username;  /* its account, whose admin flag decides */
    char *node;      /* the node asked for */
    const command_t *cmd;
    action_t action;
    char *sessionid; /* NULL: a new execution */
    int has_form;    /* a data form came with it */
    int form_ok;     /* ... parsed, of type submit */
    char **vals[V__COUNT];
    size_t nvals[V__COUNT];
} adhoc_req_t;

/* An open command session: the form was sent, its submission is awaited. */
typedef struct adhoc_session {
    char id[33];
    char *requester; /* full JID it is bound to */
    char *bare;
    const command_t *cmd;
    uint64_t expires; /* loop time, ms */
} adhoc_session_t;

typedef struct gather gather_t;

typedef struct adhoc_worker {
    strmap_t sessions; /* sessionid -> adhoc_session_t * */
    gather_t *gathers; /* waiting for the other workers, freed at worker_free if never done */
    unsigned jobs;     /* requests in flight (ADHOC_JOBS_PER_WORKER) */
} adhoc_worker_t;

static int worker_slot = -1;
static uint64_t session_timeout_ms; /* adhoc.session_timeout, fixed at start-up */

static adhoc_worker_t *state(worker_t *w)
{
    return w->slot[worker_slot];
}

/* ---- requests and replies ---- */

static void free_vals(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (v[i])
            explicit_bzero(v[i], strlen(v[i])); /* passwords among them */
        free(v[i]);
    }
    free(v);
}

static void req_free(adhoc_req_t *r)
{
    if (!r)
        return;
    iq_deferred_free(r->d);
    free(r->requester);
    free(r->username);
    free(r->node);
    free(r->sessionid);
    for (int i = 0; i < V__COUNT; i++)
        free_vals(r->vals[i], r->nvals[i]);
    free(r);
}

/* A job leaves the worker's count when its request is answered. */
static void job_end(adhoc_req_t *r)
{
    state(r->w)->jobs--;
    req_free(r);
}

/* An error reply, with XEP-0050's application condition app (malformed-action, bad-action,
 * bad-payload, bad-sessionid, session-expired) after the text when app is not NULL: built as a
 * tree and serialised once. */
static void reply_error(adhoc_req_t *r, hearth_stanza_error_t cond, const char *app,
                        const char *text)
{
    iq_deferred_t *d = r->d;
    r->d = NULL;
    if (!d)
        return;
    if (!app) {
        iq_deferred_error(d, cond, text);
        return;
    }
    hearth_buf_t b = HEARTH_BUF_INIT;
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *iq = a ? hearth_xml_new(a, "iq", HEARTH_NS_CLIENT) : NULL;
    hearth_xml_node_t *err = iq ? hearth_xml_add_stanza_error(a, iq, cond, text) : NULL;
    if (err && hearth_xml_add_child(a, err, app, NS_COMMANDS) &&
        !hearth_xml_serialize(err, HEARTH_NS_CLIENT, &b))
        iq_deferred_error_xml(d, b.data);
    else
        iq_deferred_error(d, cond, text); /* without the detail rather than not at all */
    hearth_buf_free(&b);
    hearth_arena_free(a);
}

/* Serialises payload (NULL: an empty result) as the result of r. */
static void reply_result(adhoc_req_t *r, const hearth_xml_node_t *payload)
{
    iq_deferred_t *d = r->d;
    r->d = NULL;
    if (!d)
        return;
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (payload && hearth_xml_serialize(payload, HEARTH_NS_CLIENT, &b))
        iq_deferred_error(d, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
    else
        iq_deferred_result(d, payload ? b.data : NULL);
    hearth_buf_free(&b);
}

/* 32 hex digits from the CSPRNG: a session id nobody else can guess. */
static int new_id(char out[33])
{
    unsigned char raw[16];
    if (uv_random(NULL, NULL, raw, sizeof(raw), 0, NULL))
        return HEARTH_EIO;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

/* <command xmlns=commands node sessionid status/> in a. */
static hearth_xml_node_t *command_node(hearth_arena_t *a, const adhoc_req_t *r, const char *sid,
                                       const char *status)
{
    hearth_xml_node_t *c = hearth_xml_new(a, "command", NS_COMMANDS);
    if (c) {
        hearth_xml_set_attr(a, c, "node", r->cmd->node);
        hearth_xml_set_attr(a, c, "sessionid", sid);
        hearth_xml_set_attr(a, c, "status", status);
    }
    return c;
}

static void add_note(hearth_arena_t *a, hearth_xml_node_t *c, const char *type, const char *text)
{
    hearth_xml_node_t *n = c ? hearth_xml_add_child(a, c, "note", NULL) : NULL;
    if (n) {
        hearth_xml_set_attr(a, n, "type", type);
        hearth_xml_add_text(a, n, text, strlen(text));
    }
}

/* The command completes: status completed with a note (type info, warn or error; none when text
 * is NULL) and, when result is given, the form it fills in (built by the caller in a). */
static void complete(adhoc_req_t *r, hearth_arena_t *a, const char *sid, const char *type,
                     const char *text, hearth_xml_node_t *result)
{
    hearth_xml_node_t *c = command_node(a, r, sid, "completed");
    if (c && text)
        add_note(a, c, type, text);
    if (c && result)
        hearth_xml_append(c, result);
    if (!c) {
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        return;
    }
    reply_result(r, c);
}

/* The same with a note only, in a scratch arena; sid NULL: the request's or a fresh one. */
static void complete_note(adhoc_req_t *r, const char *type, const char *text)
{
    char fresh[33];
    const char *sid = r->sessionid;
    if (!sid)
        sid = new_id(fresh) ? "0" : fresh;
    hearth_arena_t *a = hearth_arena_new(0);
    if (!a) {
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        return;
    }
    complete(r, a, sid, type, text, NULL);
    hearth_arena_free(a);
}

/* ---- the forms of XEP-0133 ---- */

static hearth_xml_node_t *form_start(hearth_arena_t *a, hearth_form_type_t t, const char *title,
                                     const char *instructions)
{
    hearth_xml_node_t *x = hearth_form_new(a, NULL, t);
    if (title)
        hearth_form_add_title(a, x, title);
    if (instructions)
        hearth_form_add_instructions(a, x, instructions);
    hearth_form_add_form_type(a, x, NS_ADMIN);
    return x;
}

static void required_field(hearth_arena_t *a, hearth_xml_node_t *x, const char *var,
                           const char *type, const char *label)
{
    hearth_form_add_required(a, hearth_form_add_field(a, x, var, type, label, NULL));
}

/* The form a command asks for (XEP-0133 §4's fields); NULL when even its start could not be made.
 */
static hearth_xml_node_t *command_form(hearth_arena_t *a, const command_t *cmd)
{
    hearth_xml_node_t *x = form_start(a, HEARTH_FORM_FORM, cmd->name, cmd->instructions);
    hearth_xml_node_t *f;
    switch (cmd->id) {
    case CMD_ADD_USER:
        required_field(a, x, "accountjid", "jid-single",
                       "The Jabber ID for the account to be added");
        required_field(a, x, "password", "text-private", "The password for this account");
        required_field(a, x, "password-verify", "text-private", "Retype password");
        break;
    case CMD_DELETE_USER:
        required_field(a, x, "accountjids", "jid-multi",
                       "The Jabber ID(s) for the account(s) to be deleted");
        break;
    case CMD_END_SESSION:
        required_field(a, x, "accountjids", "jid-multi",
                       "The Jabber ID(s) for which to end sessions (bare: every session)");
        break;
    case CMD_CHANGE_PASSWORD:
        required_field(a, x, "accountjid", "jid-single", "The Jabber ID for this account");
        required_field(a, x, "password", "text-private", "The password for this account");
        break;
    case CMD_ONLINE_LIST:
        f = hearth_form_add_field(a, x, "max_items", "list-single", "Maximum number of items",
                                  "100");
        static const char *const sizes[] = {"25", "50", "75", "100", "150", "200", "none"};
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
            hearth_form_add_option(a, f, NULL, sizes[i]);
        break;
    case CMD_ANNOUNCE:
        hearth_form_add_field(a, x, "subject", "text-single", "Subject", NULL);
        required_field(a, x, "announcement", "text-multi", "Announcement");
        break;
    default:
        break;
    }
    return x;
}

/* The first value of a field, NULL when the form had none. */
static const char *value(const adhoc_req_t *r, var_t v)
{
    return r->nvals[v] ? r->vals[v][0] : NULL;
}

/* A JID naming an account of this server: its bare form, or NULL with *why set. */
static char *account_jid(const adhoc_req_t *r, const char *s, int allow_resource, const char **why)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *reason = NULL;
    char *out = NULL;
    if (hearth_jid_parse(s, strlen(s), &j, &reason)) {
        *why = "is not a valid JID";
        return NULL;
    }
    if (!j.node || strcmp(j.domain, r->w->set.domain))
        *why = "is not an account of this server";
    else if (j.resource && !allow_resource)
        *why = "names a resource; give the bare JID";
    else if (!(out = strdup(j.resource && allow_resource ? j.full : j.bare)))
        *why = "could not be read (out of memory)";
    hearth_jid_clear(&j);
    return out;
}

/* "text: jid" into buf for a note. */
static const char *jid_note(char *buf, size_t size, const char *jid, const char *what)
{
    snprintf(buf, size, "%.*s %s", 512, jid, what);
    return buf;
}

/* ---- command sessions ---- */

static void session_free(adhoc_session_t *s)
{
    free(s->requester);
    free(s->bare);
    free(s);
}

static void session_drop(adhoc_worker_t *aw, adhoc_session_t *s)
{
    strmap_remove(&aw->sessions, s->id);
    session_free(s);
}

/* Forgets sessions whose expiry passed more than grace ms ago. */
static void sweep(worker_t *w, uint64_t grace)
{
    adhoc_worker_t *aw = state(w);
    uint64_t now = uv_now(&w->loop);
    STRMAP_FOREACH(&aw->sessions, e)
    {
        adhoc_session_t *s = e->value;
        if (s->expires + grace < now) {
            strmap_remove(&aw->sessions, e->key);
            session_free(s);
        }
    }
}

/* A new session for r: NULL with *cond set when none can be opened. */
static adhoc_session_t *session_open(adhoc_req_t *r, hearth_stanza_error_t *cond)
{
    adhoc_worker_t *aw = state(r->w);
    uint64_t now = uv_now(&r->w->loop);
    const char *slash = strchr(r->requester, '/');
    size_t blen = slash ? (size_t)(slash - r->requester) : strlen(r->requester);
    sweep(r->w, session_timeout_ms); /* expired for as long again: session-expired told enough */
    if (aw->sessions.count >= ADHOC_SESSIONS_PER_WORKER)
        sweep(r->w, 0);
    unsigned mine = 0;
    STRMAP_FOREACH(&aw->sessions, e)
    {
        adhoc_session_t *s = e->value;
        if (s->expires >= now && strlen(s->bare) == blen && !strncmp(s->bare, r->requester, blen))
            mine++;
    }
    *cond = HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
    if (mine >= ADHOC_SESSIONS_PER_USER || aw->sessions.count >= ADHOC_SESSIONS_PER_WORKER)
        return NULL;
    *cond = HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR;
    adhoc_session_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cmd = r->cmd;
    s->expires = now + session_timeout_ms;
    s->requester = strdup(r->requester);
    s->bare = strndup(r->requester, blen);
    if (!s->requester || !s->bare || new_id(s->id) || strmap_get(&aw->sessions, s->id) ||
        strmap_put(&aw->sessions, s->id, s)) {
        session_free(s);
        return NULL;
    }
    return s;
}

/* A session ends: its open command sessions go with it (they are bound to its full JID). */
static int on_session_ending(hook_args_t *a)
{
    adhoc_worker_t *aw = state(a->w);
    if (!aw->sessions.count)
        return HOOK_CONTINUE;
    STRMAP_FOREACH(&aw->sessions, e)
    {
        adhoc_session_t *s = e->value;
        if (!strcmp(s->requester, a->s->jid.full)) {
            strmap_remove(&aw->sessions, e->key);
            session_free(s);
        }
    }
    return HOOK_CONTINUE;
}

/* ---- accounts: add, change password (derived on the pool), delete ---- */

typedef struct secret_job {
    uv_work_t work;
    adhoc_req_t *r;
    storage_account_t acct;
    char *bare;
    char *password; /* wiped once derived */
    unsigned iterations;
    int rc;
} secret_job_t;

static void secret_job_free(secret_job_t *j)
{
    if (j->password) {
        explicit_bzero(j->password, strlen(j->password));
        free(j->password);
    }
    storage_account_clear(&j->acct);
    free(j->bare);
    job_end(j->r);
    free(j);
}

static void derive_work(uv_work_t *w)
{
    secret_job_t *j = w->data;
    j->rc = register__derive(j->password, j->iterations, &j->acct);
    explicit_bzero(j->password, strlen(j->password));
}

static void on_account_written(void *ud, int err)
{
    secret_job_t *j = ud;
    adhoc_req_t *r = j->r;
    char text[600];
    int add = r->cmd->id == CMD_ADD_USER;
    if (err == HEARTH_EEXISTS) {
        complete_note(r, "error", jid_note(text, sizeof(text), j->bare, "already exists"));
    } else if (err == HEARTH_ENOTFOUND) {
        complete_note(r, "error", jid_note(text, sizeof(text), j->bare, "does not exist"));
    } else if (err) {
        hlog(LOG_ERROR, "admin %s: %s of %s failed: %s", r->requester,
             add ? "add-user" : "change-user-password", j->bare, hearth_strerror(err));
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
    } else {
        hlog(LOG_INFO, "admin %s: %s %s", r->requester,
             add ? "added account" : "changed the password of", j->bare);
        complete_note(
            r, "info",
            jid_note(text, sizeof(text), j->bare, add ? "was added" : "has a new password"));
    }
    secret_job_free(j);
}

static void derive_done(uv_work_t *w, int status)
{
    secret_job_t *j = w->data;
    adhoc_req_t *r = j->r;
    if (status || j->rc) {
        if (!status && j->rc == HEARTH_EINVAL)
            complete_note(r, "error", "password not allowed (control or unassigned characters)");
        else
            reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        secret_job_free(j);
        return;
    }
    storage_t *st = r->w->srv->storage;
    const storage_target_t *t = &r->w->storage_target;
    int rc = r->cmd->id == CMD_ADD_USER
                 ? storage_account_create(st, t, &j->acct, on_account_written, j)
                 : storage_account_set_secrets(st, t, j->acct.username, &j->acct.sha1,
                                               &j->acct.sha256, on_account_written, j);
    if (rc) {
        reply_error(r,
                    rc == HEARTH_EAGAIN ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                        : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
                    NULL, NULL);
        secret_job_free(j);
    }
}

/* add-user and change-user-password: r is taken. */
static void run_set_password(adhoc_req_t *r)
{
    const settings_t *set = &r->w->set;
    const char *jid = value(r, V_ACCOUNTJID), *pw = value(r, V_PASSWORD);
    const char *verify = value(r, V_PASSWORD_VERIFY);
    int add = r->cmd->id == CMD_ADD_USER;
    const char *why = NULL;
    char text[600];
    char *bare = account_jid(r, jid, 0, &why);
    if (!bare) {
        complete_note(r, "error", jid_note(text, sizeof(text), jid, why));
        job_end(r);
        return;
    }
    if (add && strcmp(pw, verify)) {
        free(bare);
        complete_note(r, "error", "the passwords do not match");
        job_end(r);
        return;
    }
    if (!register__password_ok(set, pw)) {
        free(bare);
        complete_note(r, "error", "the password is too short");
        job_end(r);
        return;
    }
    secret_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        free(bare);
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        job_end(r);
        return;
    }
    j->r = r;
    j->bare = bare;
    j->iterations = set->scram_iterations;
    j->acct.username = strndup(bare, strcspn(bare, "@"));
    j->password = strdup(pw);
    j->work.data = j;
    if (!j->acct.username || !j->password ||
        uv_queue_work(&r->w->loop, &j->work, derive_work, derive_done)) {
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        secret_job_free(j);
    }
}

/* delete-user: one storage removal per JID, answered when the last is done. */
typedef struct delete_job {
    adhoc_req_t *r;
    size_t n, pending;
    char **bares;
    int *err;
} delete_job_t;

static void delete_job_free(delete_job_t *j)
{
    for (size_t i = 0; i < j->n; i++)
        free(j->bares[i]);
    free(j->bares);
    free(j->err);
    job_end(j->r);
    free(j);
}

/* On the removed account's home worker: what in-band removal does after its storage call. */
static void account_deleted_here(worker_t *w, void *arg)
{
    user__account_deleted(w, arg);
    free(arg);
}

static void delete_finish(delete_job_t *j)
{
    hearth_buf_t ok = HEARTH_BUF_INIT, missing = HEARTH_BUF_INIT;
    int failed = 0, rc = 0;
    for (size_t i = 0; i < j->n; i++) {
        hearth_buf_t *b = !j->err[i] ? &ok : j->err[i] == HEARTH_ENOTFOUND ? &missing : NULL;
        if (!b) {
            failed = 1;
            continue;
        }
        rc = rc ?: hearth_buf_printf(b, "%s%s", b->len ? ", " : "", j->bares[i]);
    }
    if (failed || rc) {
        reply_error(j->r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
    } else {
        char fresh[33];
        hearth_arena_t *a = hearth_arena_new(0);
        hearth_xml_node_t *c =
            a ? command_node(a, j->r,
                             j->r->sessionid ? j->r->sessionid : (new_id(fresh) ? "0" : fresh),
                             "completed")
              : NULL;
        if (c && ok.len) {
            hearth_buf_t t = HEARTH_BUF_INIT;
            if (!hearth_buf_printf(&t, "deleted: %s", ok.data))
                add_note(a, c, "info", t.data);
            hearth_buf_free(&t);
        }
        if (c && missing.len) {
            hearth_buf_t t = HEARTH_BUF_INIT;
            if (!hearth_buf_printf(&t, "no such account: %s", missing.data))
                add_note(a, c, "error", t.data);
            hearth_buf_free(&t);
        }
        if (c)
            reply_result(j->r, c);
        else
            reply_error(j->r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        hearth_arena_free(a);
    }
    hearth_buf_free(&ok);
    hearth_buf_free(&missing);
    delete_job_free(j);
}

typedef struct delete_one {
    delete_job_t *j;
    size_t i;
} delete_one_t;

static void on_deleted(void *ud, int err)
{
    delete_one_t *o = ud;
    delete_job_t *j = o->j;
    worker_t *w = j->r->w;
    j->err[o->i] = err;
    if (!err) {
        const char *bare = j->bares[o->i];
        hlog(LOG_INFO, "admin %s: deleted account %s", j->r->requester, bare);
        char *copy = strdup(bare);
        if (!copy || worker__call(worker__home(w->srv, bare), account_deleted_here, free, copy))
            hlog(LOG_ERROR, "the home worker of %s was not told of its removal", bare);
    } else if (err != HEARTH_ENOTFOUND) {
        hlog(LOG_ERROR, "admin %s: deleting %s failed: %s", j->r->requester, j->bares[o->i],
             hearth_strerror(err));
    }
    free(o);
    if (--j->pending == 0)
        delete_finish(j);
}

/* The JIDs of accountjids, each checked (bare, or full when allowed): 0, or an error note sent
 * and -1 (r still the caller's). */
static int read_jids(adhoc_req_t *r, int allow_resource, char ***out, size_t *n)
{
    char text[600];
    const char *why = NULL;
    size_t count = r->nvals[V_ACCOUNTJIDS];
    if (count > ADHOC_JIDS_MAX) {
        snprintf(text, sizeof(text), "at most %d JIDs at once", ADHOC_JIDS_MAX);
        complete_note(r, "error", text);
        return -1;
    }
    char **v = calloc(count ? count : 1, sizeof(*v));
    size_t k = 0;
    for (size_t i = 0; v && i < count; i++) {
        char *bare = account_jid(r, r->vals[V_ACCOUNTJIDS][i], allow_resource, &why);
        if (!bare) {
            complete_note(r, "error", jid_note(text, sizeof(text), r->vals[V_ACCOUNTJIDS][i], why));
            free_vals(v, k);
            return -1;
        }
        int dup = 0;
        for (size_t m = 0; m < k && !dup; m++)
            dup = !strcmp(v[m], bare);
        if (dup)
            free(bare);
        else
            v[k++] = bare;
    }
    if (!v) {
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        return -1;
    }
    *out = v;
    *n = k;
    return 0;
}

static void run_delete(adhoc_req_t *r)
{
    delete_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        job_end(r);
        return;
    }
    j->r = r;
    if (read_jids(r, 0, &j->bares, &j->n)) {
        delete_job_free(j);
        return;
    }
    if (!(j->err = calloc(j->n, sizeof(*j->err)))) {
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        delete_job_free(j);
        return;
    }
    /* Every removal is queued before any can answer: the storage callbacks run on this loop,
     * after this handler. One that cannot be queued counts as failed. */
    j->pending = 1;
    for (size_t i = 0; i < j->n; i++) {
        delete_one_t *o = calloc(1, sizeof(*o));
        char node[1100];
        snprintf(node, sizeof(node), "%.*s", (int)strcspn(j->bares[i], "@"), j->bares[i]);
        if (o) {
            o->j = j;
            o->i = i;
        }
        int rc = o ? storage_account_delete(r->w->srv->storage, &r->w->storage_target, node,
                                            on_deleted, o)
                   : HEARTH_ENOMEM;
        if (rc) {
            free(o);
            j->err[i] = rc;
        } else {
            j->pending++;
        }
    }
    if (--j->pending == 0)
        delete_finish(j);
}

/* end-user-session: on each account's home worker, its sessions (or the one resource) end. */
static void end_sessions_here(worker_t *w, void *arg)
{
    char *jid = arg;
    char *slash = strchr(jid, '/');
    if (slash)
        *slash = '\0';
    user_t *u = worker__user(w, jid, 0);
    for (session_t *s = u ? u->sessions : NULL; s; s = s->user_next)
        if (!slash || !strcmp(s->jid.resource, slash + 1))
            session__end(s, HEARTH_STREAM_ERR_POLICY_VIOLATION,
                         "the session was ended by an administrator");
    free(jid);
}

static void run_end_session(adhoc_req_t *r)
{
    char **jids = NULL;
    size_t n = 0;
    if (read_jids(r, 1, &jids, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            char bare[1100];
            snprintf(bare, sizeof(bare), "%.*s", (int)strcspn(jids[i], "/"), jids[i]);
            hlog(LOG_INFO, "admin %s: ending the sessions of %s", r->requester, jids[i]);
            if (worker__call(worker__home(r->w->srv, bare), end_sessions_here, free, jids[i]))
                hlog(LOG_ERROR, "sessions of %s not ended: its worker refused", bare);
            jids[i] = NULL; /* the call owns it now */
        }
        free(jids);
        complete_note(r, "info", "the sessions named are ending");
    }
    job_end(r);
}

/* get-registered-users-num */
static void on_account_list(void *ud, int err, const storage_account_t *accts, size_t n)
{
    adhoc_req_t *r = ud;
    (void)accts;
    if (err) {
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        job_end(r);
        return;
    }
    char fresh[33], num[32];
    snprintf(num, sizeof(num), "%zu", n);
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *x = a ? form_start(a, HEARTH_FORM_RESULT, NULL, NULL) : NULL;
    hearth_form_add_field(a, x, "registeredusersnum", NULL, "The number of registered users", num);
    if (x)
        complete(r, a, new_id(fresh) ? "0" : fresh, NULL, NULL, x);
    else
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
    hearth_arena_free(a);
    job_end(r);
}

static void run_registered_num(adhoc_req_t *r)
{
    int rc = storage_account_list(r->w->srv->storage, &r->w->storage_target, on_account_list, r);
    if (rc) {
        reply_error(r,
                    rc == HEARTH_EAGAIN ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                        : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
                    NULL, NULL);
        job_end(r);
    }
}

/* ---- online users and announcements: to every worker and back ---- */

typedef enum { OP_COUNT, OP_LIST, OP_ANNOUNCE } gather_op_t;

/* On the requester's worker: the answers of the workers still out. */
struct gather {
    gather_t *next;
    adhoc_req_t *r;
    gather_op_t op;
    unsigned pending; /* workers that have not answered */
    unsigned failed;  /* workers that could not be asked */
    size_t count;
    size_t max; /* list entries wanted */
    char **jids;
    size_t njids;
    int cut; /* entries beyond max were left out */
};

/* What one worker is asked and answers; it travels there and back, and touches the gather only
 * back on the requester's worker. */
typedef struct part {
    gather_t *g;
    worker_t *origin;
    gather_op_t op;
    size_t max;
    hearth_bytes_t *msg; /* OP_ANNOUNCE: the message, serialised once, without 'to' */
    size_t count;
    char **jids;
    size_t njids;
    int cut;
} part_t;

static void part_free(void *arg)
{
    part_t *p = arg;
    hearth_bytes_unref(p->msg);
    free_vals(p->jids, p->njids);
    free(p);
}

static void gather_free(gather_t *g)
{
    free_vals(g->jids, g->njids);
    if (g->r)
        job_end(g->r);
    free(g);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void gather_finish(worker_t *w, gather_t *g)
{
    adhoc_worker_t *aw = state(w);
    for (gather_t **pp = &aw->gathers; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    adhoc_req_t *r = g->r;
    char fresh[33], num[32], text[128];
    const char *sid = r->sessionid ? r->sessionid : new_id(fresh) ? "0" : fresh;
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *c = a ? command_node(a, r, sid, "completed") : NULL;
    if (g->failed) {
        snprintf(text, sizeof(text), "%u worker(s) could not be asked: the answer is partial",
                 g->failed);
        add_note(a, c, "warn", text);
    }
    if (g->op == OP_ANNOUNCE) {
        snprintf(text, sizeof(text), "the announcement was sent to %zu session(s)", g->count);
        add_note(a, c, "info", text);
    } else {
        hearth_xml_node_t *x = c ? form_start(a, HEARTH_FORM_RESULT, NULL, NULL) : NULL;
        if (g->op == OP_COUNT) {
            snprintf(num, sizeof(num), "%zu", g->count);
            hearth_form_add_field(a, x, "onlineusersnum", NULL, "The number of online users", num);
        } else {
            qsort(g->jids, g->njids, sizeof(*g->jids), cmp_str);
            if (g->njids > g->max || g->cut) {
                snprintf(text, sizeof(text), "the list shows %zu of %zu online users",
                         g->njids < g->max ? g->njids : g->max, g->count);
                add_note(a, c, "warn", text);
            }
            hearth_xml_node_t *f = hearth_form_add_field(a, x, "onlineuserjids", "jid-multi",
                                                         "The list of all "
                                                         "online users",
                                                         NULL);
            for (size_t i = 0; i < g->njids && i < g->max; i++)
                hearth_form_add_value(a, f, g->jids[i]);
        }
        if (c && x)
            hearth_xml_append(c, x);
        else
            c = NULL;
    }
    if (c)
        reply_result(r, c);
    else
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
    hearth_arena_free(a);
    gather_free(g);
}

/* Back on the requester's worker. */
static void part_collect(worker_t *w, void *arg)
{
    part_t *p = arg;
    gather_t *g = p->g;
    g->count += p->count;
    g->cut |= p->cut;
    if (p->njids && g->njids < g->max) {
        char **v = realloc(g->jids, (g->njids + p->njids) * sizeof(*v));
        if (v) {
            g->jids = v;
            memcpy(v + g->njids, p->jids, p->njids * sizeof(*v));
            g->njids += p->njids;
            p->njids = 0;
        } else {
            g->cut = 1;
        }
    } else if (p->njids) {
        g->cut = 1;
    }
    part_free(p);
    if (--g->pending == 0)
        gather_finish(w, g);
}

/* On each worker: count, list or announce to what is homed there, then answer. */
static void part_run(worker_t *w, void *arg)
{
    part_t *p = arg;
    STRMAP_FOREACH(&w->users, e)
    {
        user_t *u = e->value;
        int online = 0;
        for (session_t *s = u->sessions; s; s = s->user_next) {
            if (!im__live(s))
                continue;
            if (p->op == OP_ANNOUNCE) {
                session__send_addressed(s, p->msg, s->jid.full);
                p->count++;
            } else if (s->state == SESSION_BOUND) {
                online = 1;
            }
        }
        if (!online)
            continue;
        p->count++;
        if (p->op != OP_LIST)
            continue;
        if (p->njids >= p->max) {
            p->cut = 1;
            continue;
        }
        char **v = p->njids % 64 ? p->jids : realloc(p->jids, (p->njids + 64) * sizeof(*v));
        char *copy = v ? strdup(u->bare) : NULL;
        if (v)
            p->jids = v;
        if (!copy) {
            p->cut = 1;
            continue;
        }
        p->jids[p->njids++] = copy;
    }
    if (worker__call(p->origin, part_collect, part_free, p))
        hlog(LOG_ERROR, "worker %u: an admin command's answer was lost", w->index);
}

/* Asks every worker; r is taken. msg: the announcement (a reference is taken per worker). */
static void gather_start(adhoc_req_t *r, gather_op_t op, size_t max, hearth_bytes_t *msg)
{
    worker_t *w = r->w;
    gather_t *g = calloc(1, sizeof(*g));
    if (!g) {
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        job_end(r);
        return;
    }
    g->r = r;
    g->op = op;
    g->max = max;
    g->next = state(w)->gathers;
    state(w)->gathers = g;
    g->pending = 1;
    for (unsigned i = 0; i < w->srv->nworkers; i++) {
        part_t *p = calloc(1, sizeof(*p));
        if (!p) {
            g->failed++;
            continue;
        }
        p->g = g;
        p->origin = w;
        p->op = op;
        p->max = max;
        p->msg = msg ? hearth_bytes_ref(msg) : NULL;
        g->pending++;
        if (worker__call(w->srv->workers[i], part_run, part_free, p)) { /* p freed */
            g->pending--;
            g->failed++;
        }
    }
    if (--g->pending == 0)
        gather_finish(w, g);
}

static void run_online_list(adhoc_req_t *r)
{
    const char *max_s = value(r, V_MAX_ITEMS);
    size_t max = ADHOC_LIST_MAX;
    if (max_s && strcmp(max_s, "none")) {
        char *end = NULL;
        unsigned long v = strtoul(max_s, &end, 10);
        if (!*max_s || *end || v == 0 || *max_s == '-') {
            complete_note(r, "error", "max_items is a positive number or none");
            job_end(r);
            return;
        }
        if (v < max)
            max = v;
    }
    gather_start(r, OP_LIST, max, NULL);
}

static void run_announce(adhoc_req_t *r)
{
    const char *subject = value(r, V_SUBJECT);
    hearth_buf_t body = HEARTH_BUF_INIT, b = HEARTH_BUF_INIT;
    int rc = 0;
    for (size_t i = 0; i < r->nvals[V_ANNOUNCEMENT]; i++)
        rc = rc ?: hearth_buf_printf(&body, "%s%s", i ? "\n" : "", r->vals[V_ANNOUNCEMENT][i]);
    if (!rc && !body.len) {
        hearth_buf_free(&body);
        complete_note(r, "error", "the announcement is empty");
        job_end(r);
        return;
    }
    if (!rc && body.len + (subject ? strlen(subject) : 0) > ADHOC_ANNOUNCE_MAX) {
        hearth_buf_free(&body);
        complete_note(r, "error", "the announcement is too long");
        job_end(r);
        return;
    }
    const char *domain = r->w->set.domain;
    rc = rc ?: hearth_buf_append_str(&b, "<message type='headline' from='");
    rc = rc ?: hearth_buf_append_escaped(&b, domain, strlen(domain));
    rc = rc ?: hearth_buf_append_str(&b, "'>");
    if (subject && *subject) {
        rc = rc ?: hearth_buf_append_str(&b, "<subject>");
        rc = rc ?: hearth_buf_append_text_escaped(&b, subject, strlen(subject));
        rc = rc ?: hearth_buf_append_str(&b, "</subject>");
    }
    rc = rc ?: hearth_buf_append_str(&b, "<body>");
    rc = rc ?: hearth_buf_append_text_escaped(&b, body.data, body.len);
    rc = rc ?: hearth_buf_append_str(&b, "</body></message>");
    hearth_bytes_t *msg = rc ? NULL : hearth_bytes_new(b.data, b.len);
    hearth_buf_free(&body);
    hearth_buf_free(&b);
    if (!msg) {
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        job_end(r);
        return;
    }
    hlog(LOG_INFO, "admin %s: announcement to every online session", r->requester);
    gather_start(r, OP_ANNOUNCE, 0, msg);
    hearth_bytes_unref(msg);
}

/* What a submitted form lacks of its command's required fields (XEP-0050's bad-payload), or
 * NULL. A field present with no value counts as absent; an empty value as given. */
static const char *missing(const adhoc_req_t *r)
{
    switch (r->cmd->id) {
    case CMD_ADD_USER:
        return !value(r, V_ACCOUNTJID) || !value(r, V_PASSWORD) || !value(r, V_PASSWORD_VERIFY)
                   ? "accountjid and both passwords are required"
                   : NULL;
    case CMD_CHANGE_PASSWORD:
        return !value(r, V_ACCOUNTJID) || !value(r, V_PASSWORD)
                   ? "accountjid and the new password are required"
                   : NULL;
    case CMD_DELETE_USER:
    case CMD_END_SESSION:
        return !r->nvals[V_ACCOUNTJIDS] ? "accountjids is required" : NULL;
    case CMD_ANNOUNCE:
        return !r->nvals[V_ANNOUNCEMENT] ? "announcement is required" : NULL;
    default:
        return NULL;
    }
}

/* The submitted (or form-less) command runs; r is taken. */
static void run(adhoc_req_t *r)
{
    switch (r->cmd->id) {
    case CMD_ADD_USER:
    case CMD_CHANGE_PASSWORD:
        run_set_password(r);
        break;
    case CMD_DELETE_USER:
        run_delete(r);
        break;
    case CMD_END_SESSION:
        run_end_session(r);
        break;
    case CMD_REGISTERED_NUM:
        run_registered_num(r);
        break;
    case CMD_ONLINE_NUM:
        gather_start(r, OP_COUNT, 0, NULL);
        break;
    case CMD_ONLINE_LIST:
        run_online_list(r);
        break;
    case CMD_ANNOUNCE:
        run_announce(r);
        break;
    }
}

/* ---- XEP-0050's flow, once the requester is known to be an admin ---- */

/* The first stage: a form (status executing), or the answer of a command without one. */
static void execute_new(adhoc_req_t *r)
{
    if (r->action != ACT_EXECUTE) {
        /* XEP-0050 §4.4: only execute starts a command; anything else names a session. */
        reply_error(r, HEARTH_STANZA_ERR_BAD_REQUEST, "bad-sessionid",
                    "only execute starts a command; other actions need a sessionid");
        job_end(r);
        return;
    }
    if (!r->cmd->instructions) {
        run(r);
        return;
    }
    hearth_stanza_error_t cond;
    adhoc_session_t *s = session_open(r, &cond);
    if (!s) {
        reply_error(r, cond, NULL,
                    cond == HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                        ? "too many open command sessions; complete or cancel one"
                        : NULL);
        job_end(r);
        return;
    }
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *c = a ? command_node(a, r, s->id, "executing") : NULL;
    hearth_xml_node_t *acts = hearth_xml_add_child(a, c, "actions", NULL);
    hearth_xml_set_attr(a, acts, "execute", "complete");
    hearth_xml_add_child(a, acts, "complete", NULL);
    hearth_xml_node_t *x = c ? command_form(a, r->cmd) : NULL;
    if (x) {
        hearth_xml_append(c, x);
        reply_result(r, c);
    } else {
        session_drop(state(r->w), s);
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
    }
    hearth_arena_free(a);
    job_end(r);
}

static void execute_in_session(adhoc_req_t *r)
{
    adhoc_worker_t *aw = state(r->w);
    adhoc_session_t *s = strmap_get(&aw->sessions, r->sessionid);
    /* Another resource's session, or another command's, is no session of this request. */
    if (!s || strcmp(s->requester, r->requester) || s->cmd != r->cmd) {
        reply_error(r, HEARTH_STANZA_ERR_BAD_REQUEST, "bad-sessionid", "no such session");
        job_end(r);
        return;
    }
    if (s->expires < uv_now(&r->w->loop)) {
        session_drop(aw, s);
        reply_error(r, HEARTH_STANZA_ERR_NOT_ALLOWED, "session-expired",
                    "the command session expired; execute the command again");
        job_end(r);
        return;
    }
    switch (r->action) {
    case ACT_CANCEL: {
        session_drop(aw, s);
        hearth_arena_t *a = hearth_arena_new(0);
        hearth_xml_node_t *c = a ? command_node(a, r, r->sessionid, "canceled") : NULL;
        if (c)
            reply_result(r, c);
        else
            reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        hearth_arena_free(a);
        job_end(r);
        return;
    }
    case ACT_PREV:
    case ACT_NEXT:
        /* One stage: its only action is complete (the session stays open). */
        reply_error(r, HEARTH_STANZA_ERR_BAD_REQUEST, "bad-action",
                    "this stage allows complete and cancel only");
        job_end(r);
        return;
    default:
        break;
    }
    /* The session stays open for a corrected submission. */
    const char *lacks = r->form_ok ? missing(r) : NULL;
    if (!r->form_ok || lacks) {
        reply_error(r, HEARTH_STANZA_ERR_BAD_REQUEST, "bad-payload",
                    lacks         ? lacks
                    : r->has_form ? "the form is not a valid submitted data form"
                                  : "submit the form to complete the command");
        job_end(r);
        return;
    }
    session_drop(aw, s); /* the command completes now, whatever its outcome */
    run(r);
}

static void command_checked(adhoc_req_t *r)
{
    if (!r->cmd) {
        reply_error(r, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, "no such command");
        job_end(r);
    } else if (r->action == ACT_BAD) {
        reply_error(r, HEARTH_STANZA_ERR_BAD_REQUEST, "malformed-action", NULL);
        job_end(r);
    } else if (!r->sessionid) {
        execute_new(r);
    } else {
        execute_in_session(r);
    }
}

/* disco#items of the commands node: the commands, to admins only (XEP-0133 §3). */
static void items_checked(adhoc_req_t *r, int admin)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *q = a ? hearth_xml_new(a, "query", HEARTH_NS_DISCO_ITEMS) : NULL;
    hearth_xml_set_attr(a, q, "node", NS_COMMANDS);
    for (size_t i = 0; admin && q && i < NCOMMANDS; i++) {
        hearth_xml_node_t *it = hearth_xml_add_child(a, q, "item", NULL);
        hearth_xml_set_attr(a, it, "jid", r->w->set.domain);
        hearth_xml_set_attr(a, it, "node", commands[i].node);
        hearth_xml_set_attr(a, it, "name", commands[i].name);
    }
    if (q)
        reply_result(r, q);
    else
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
    hearth_arena_free(a);
    job_end(r);
}

/* disco#info of a command's node (XEP-0050 §2.3); hidden from non-admins. */
static void info_checked(adhoc_req_t *r, int admin)
{
    if (!admin) {
        reply_error(r, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, NULL);
        job_end(r);
        return;
    }
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *q = a ? hearth_xml_new(a, "query", HEARTH_NS_DISCO_INFO) : NULL;
    hearth_xml_set_attr(a, q, "node", r->cmd->node);
    hearth_xml_node_t *id = hearth_xml_add_child(a, q, "identity", NULL);
    hearth_xml_set_attr(a, id, "category", "automation");
    hearth_xml_set_attr(a, id, "type", "command-node");
    hearth_xml_set_attr(a, id, "name", r->cmd->name);
    hearth_xml_set_attr(a, hearth_xml_add_child(a, q, "feature", NULL), "var", NS_COMMANDS);
    hearth_xml_set_attr(a, hearth_xml_add_child(a, q, "feature", NULL), "var", HEARTH_NS_DATA);
    if (q)
        reply_result(r, q);
    else
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
    hearth_arena_free(a);
    job_end(r);
}

/* The requester's account, read for its admin flag on every request: a flag taken away takes
 * effect at once. */
static void on_requester(void *ud, int err, const storage_account_t *acct)
{
    adhoc_req_t *r = ud;
    if (err && err != HEARTH_ENOTFOUND) {
        hlog(LOG_ERROR, "ad-hoc command from %s: account not read: %s", r->requester,
             hearth_strerror(err));
        reply_error(r, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, NULL);
        job_end(r);
        return;
    }
    int admin = !err && acct && acct->admin;
    if (r->kind == REQ_ITEMS) {
        items_checked(r, admin);
    } else if (r->kind == REQ_INFO) {
        info_checked(r, admin);
    } else if (!admin) {
        hlog(LOG_INFO, "ad-hoc command %s refused to %s: not an admin", r->node, r->requester);
        reply_error(r, HEARTH_STANZA_ERR_FORBIDDEN, NULL, "administrators only");
        job_end(r);
    } else {
        command_checked(r);
    }
}

/* Counted in the worker's jobs and holding the reply, the admin check asked; NULL after an
 * error reply. */
static adhoc_req_t *req_new(iq_ctx_t *ctx, req_kind_t kind, const char *node)
{
    adhoc_worker_t *aw = state(ctx->w);
    if (aw->jobs >= ADHOC_JOBS_PER_WORKER) {
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, "too many commands in progress");
        return NULL;
    }
    adhoc_req_t *r = calloc(1, sizeof(*r));
    if (!r) {
        iq_error(ctx, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        return NULL;
    }
    aw->jobs++;
    r->w = ctx->w;
    r->kind = kind;
    r->cmd = command_find(node);
    r->requester = strdup(ctx->s->jid.full);
    r->username = strdup(ctx->s->jid.node);
    r->node = node ? strdup(node) : NULL;
    if (!r->requester || !r->username || (node && !r->node)) {
        iq_error(ctx, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        job_end(r);
        return NULL;
    }
    return r;
}

static void ask_admin(iq_ctx_t *ctx, adhoc_req_t *r)
{
    if (!(r->d = iq_defer(ctx))) {
        iq_error(ctx, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        job_end(r);
        return;
    }
    int rc = storage_account_get(ctx->w->srv->storage, &ctx->w->storage_target, r->username,
                                 on_requester, r);
    if (rc) {
        reply_error(r,
                    rc == HEARTH_EAGAIN ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                        : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
                    NULL, NULL);
        job_end(r);
    }
}

/* Copies the values of the fields this module reads out of the submitted form. */
static int copy_form(adhoc_req_t *r, const hearth_form_t *f)
{
    for (int v = 0; v < V__COUNT; v++) {
        const hearth_form_field_t *fl = hearth_form_field(f, var_names[v]);
        if (!fl || !fl->nvalues)
            continue;
        if (!(r->vals[v] = calloc(fl->nvalues, sizeof(char *))))
            return HEARTH_ENOMEM;
        for (size_t i = 0; i < fl->nvalues; i++) {
            if (!(r->vals[v][i] = strdup(fl->values[i])))
                return HEARTH_ENOMEM;
            r->nvals[v]++;
        }
    }
    return 0;
}

static void command_iq(iq_ctx_t *ctx)
{
    hearth_xml_node_t *cmd = ctx->payload;
    if (!ctx->set) {
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "commands are executed with an IQ set");
        return;
    }
    const char *node = hearth_xml_attr(cmd, "node");
    if (!node) {
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "a command names its node");
        return;
    }
    adhoc_req_t *r = req_new(ctx, REQ_COMMAND, node);
    if (!r)
        return;
    r->action = action_parse(hearth_xml_attr(cmd, "action"));
    const char *sid = hearth_xml_attr(cmd, "sessionid");
    hearth_xml_node_t *x = hearth_xml_child(cmd, "x", HEARTH_NS_DATA);
    int rc = 0;
    if (sid && !(r->sessionid = strdup(sid)))
        rc = HEARTH_ENOMEM;
    if (!rc && x) {
        hearth_form_t f;
        r->has_form = 1;
        if (hearth_form_parse(ctx->arena, x, NULL, &f, NULL) == 0 && f.type == HEARTH_FORM_SUBMIT) {
            r->form_ok = 1;
            rc = copy_form(r, &f);
        }
    }
    hearth_xml_remove(ctx->payload); /* nothing of it (passwords) in an error reply */
    if (rc) {
        iq_error(ctx, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        job_end(r);
        return;
    }
    ask_admin(ctx, r);
}

/* core.c's disco asks here first. */
int adhoc__disco_items(iq_ctx_t *ctx)
{
    const char *node = hearth_xml_attr(ctx->payload, "node");
    if (worker_slot < 0 || ctx->where != IQ_TO_SERVER || !node || strcmp(node, NS_COMMANDS))
        return 0;
    adhoc_req_t *r = req_new(ctx, REQ_ITEMS, NULL);
    if (r)
        ask_admin(ctx, r);
    return 1;
}

int adhoc__disco_info(iq_ctx_t *ctx)
{
    const char *node = hearth_xml_attr(ctx->payload, "node");
    if (worker_slot < 0 || ctx->where != IQ_TO_SERVER || !node)
        return 0;
    if (!strcmp(node, NS_COMMANDS)) {
        /* The list's own node (XEP-0050 §2.2): the same for everyone. */
        hearth_arena_t *a = ctx->arena;
        hearth_xml_node_t *res = iq_result(ctx);
        hearth_xml_node_t *q = hearth_xml_add_child(a, res, "query", HEARTH_NS_DISCO_INFO);
        hearth_xml_set_attr(a, q, "node", NS_COMMANDS);
        hearth_xml_node_t *id = hearth_xml_add_child(a, q, "identity", NULL);
        hearth_xml_set_attr(a, id, "category", "automation");
        hearth_xml_set_attr(a, id, "type", "command-list");
        hearth_xml_set_attr(a, id, "name", "Commands");
        iq_send(ctx, res);
        return 1;
    }
    if (!command_find(node))
        return 0;
    adhoc_req_t *r = req_new(ctx, REQ_INFO, node);
    if (r)
        ask_admin(ctx, r);
    return 1;
}

/* ---- registration ---- */

static int adhoc_init(server_t *srv)
{
    if ((worker_slot = worker__slot_new()) < 0)
        return HEARTH_ELIMIT;
    session_timeout_ms = (uint64_t)config_int(srv->cfg, "adhoc.session_timeout") * 1000;
    return hooks__add(HOOK_SESSION_ENDING, 0, on_session_ending);
}

static int adhoc_worker_init(worker_t *w)
{
    adhoc_worker_t *aw = calloc(1, sizeof(*aw));
    if (!aw || strmap_init(&aw->sessions)) {
        free(aw);
        return HEARTH_ENOMEM;
    }
    w->slot[worker_slot] = aw;
    return 0;
}

/* After the worker stopped: whatever never finished (a gather whose answers were lost to the
 * shutdown) goes unanswered. */
static void adhoc_worker_free(worker_t *w)
{
    adhoc_worker_t *aw = state(w);
    if (!aw)
        return;
    STRMAP_FOREACH(&aw->sessions, e)
    {
        session_free(e->value);
    }
    strmap_free(&aw->sessions);
    while (aw->gathers) {
        gather_t *g = aw->gathers;
        aw->gathers = g->next;
        free_vals(g->jids, g->njids);
        req_free(g->r);
        free(g);
    }
    free(aw);
    w->slot[worker_slot] = NULL;
}

static const iq_route_t adhoc_iqs[] = {
    {NS_COMMANDS, "command", IQ_TO_SERVER, command_iq},
    {NULL, NULL, 0, NULL},
};
static const char *const adhoc_server_features[] = {NS_COMMANDS, NULL};

const module_t module_adhoc = {
    .name = "adhoc",
    .iqs = adhoc_iqs,
    .server_features = adhoc_server_features,
    .init = adhoc_init,
    .worker_init = adhoc_worker_init,
    .worker_free = adhoc_worker_free,
};
