/* Resource binding (RFC 6120 §7) on the user's home worker: the resource-conflict policy and
 * the per-account resource limit; a bound resource becomes a session (csession.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/ns.h"

#include "c2s/conn.h"
#include "core/hooks.h"
#include "core/log.h"
#include "core/user.h"

static void random_hex(char *out, size_t nbytes)
{
    unsigned char r[16];
    if (nbytes > sizeof(r))
        nbytes = sizeof(r);
    uv_random(NULL, NULL, r, nbytes, 0, NULL);
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

typedef struct bind_job {
    conn_t *c;
    char *id;
    char *resource; /* prepared; NULL = generate */
} bind_job_t;

static void bind_reply_error(conn_t *c, const char *id, hearth_stanza_error_t cond,
                             const char *text)
{
    hearth_arena_t *a = hearth_arena_new(0);
    if (!a)
        return;
    hearth_xml_node_t *iq = hearth_xml_new(a, "iq", HEARTH_NS_CLIENT);
    hearth_xml_set_attr(a, iq, "type", "set");
    hearth_xml_set_attr(a, iq, "id", id);
    c2s__reply_error(c, iq, a, cond, text);
    hearth_arena_free(a);
}

/* The user's state is loaded: the resource can be bound. */
static void bind_loaded(worker_t *w, user_t *u, void *arg)
{
    bind_job_t *j = arg;
    conn_t *c = j->c;
    const settings_t *s = &w->set;
    char gen[40];
    const char *reason = NULL;
    char *resource = j->resource;
    j->resource = NULL;
    if (c->closing || c->state != C2S_WAIT_BIND)
        goto out;
    if (u->state == USER_FAILED) {
        /* Storage or memory failed: the client may try the bind again. */
        bind_reply_error(c, j->id, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                         "the account could not be loaded; try again");
        goto out;
    }
    if (u->state != USER_READY) {
        /* The account went away between authentication and bind. */
        conn__stream_error(c, HEARTH_STREAM_ERR_NOT_AUTHORIZED, "the account no longer exists");
        goto out;
    }
    if (!resource) {
        random_hex(gen, 8);
        if (!(resource = strdup(gen)))
            goto oom;
    }
    session_t *old = session__find(w, c->bare, resource);
    if (old) {
        switch (s->resource_conflict) {
        case CONFLICT_REPLACE:
            hlog_conn(LOG_INFO, old->id, old->jid.full, "replaced by connection %llu",
                      (unsigned long long)c->id);
            /* Its end is decided now (it no longer counts as bound) and done next turn. */
            session__end(old, HEARTH_STREAM_ERR_CONFLICT, "replaced by a new session");
            break;
        case CONFLICT_REJECT:
            bind_reply_error(c, j->id, HEARTH_STANZA_ERR_CONFLICT, "that resource is in use");
            goto out;
        case CONFLICT_RENAME: {
            char *renamed = NULL;
            do {
                free(renamed);
                random_hex(gen, 3);
                if (asprintf(&renamed, "%s-%s", resource, gen) < 0)
                    renamed = NULL;
            } while (renamed && session__find(w, c->bare, renamed));
            free(resource);
            resource = renamed;
            if (!resource)
                goto oom;
            break;
        }
        }
    }
    unsigned live = 0;
    for (session_t *t = u->sessions; t; t = t->user_next)
        live += !t->ending;
    if (live >= s->max_resources) {
        bind_reply_error(c, j->id, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                         "too many resources bound for this account");
        goto out;
    }
    hearth_jid_t full = HEARTH_JID_INIT;
    if (hearth_jid_make(u->node, w->set.domain, resource, &full, &reason)) {
        bind_reply_error(c, j->id, HEARTH_STANZA_ERR_BAD_REQUEST, reason);
        goto out;
    }
    c2s_session_t *cs = csession__new(c, u, &full);
    if (!cs) {
        hearth_jid_clear(&full);
        goto oom;
    }
    c->state = C2S_BOUND;

    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<iq type='result' id='");
    rc = rc ?: hearth_buf_append_escaped(&b, j->id, strlen(j->id));
    rc = rc ?: hearth_buf_append_str(&b, "'><bind xmlns='" HEARTH_NS_BIND "'><jid>");
    rc = rc ?: hearth_buf_append_escaped(&b, cs->s.jid.full, strlen(cs->s.jid.full));
    rc = rc ?: hearth_buf_append_str(&b, "</jid></bind></iq>");
    if (!rc)
        conn__send(c, b.data, b.len);
    hearth_buf_free(&b);
    hook_args_t ha = {.w = w, .s = &cs->s, .u = u};
    hooks__run(HOOK_SESSION_BOUND, &ha);
    hlog_conn(LOG_INFO, c->id, cs->s.jid.full, "bound %s on worker %u", cs->s.jid.full, w->index);
    conn__arm_timer(c);
    goto out;
oom:
    bind_reply_error(c, j->id, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
out:
    free(resource);
    free(j->id);
    free(j);
    c->binding = 0;
    if (!c->closing)
        c2s__replay_held(c);
    conn__unref(c);
}

void bind__start(conn_t *c, hearth_xml_node_t *iq, hearth_arena_t *arena)
{
    hearth_xml_node_t *bind = hearth_xml_child(iq, "bind", HEARTH_NS_BIND);
    hearth_xml_node_t *res = hearth_xml_child(bind, "resource", HEARTH_NS_BIND);
    const char *want = res ? hearth_xml_text(arena, res) : "";
    const char *id = hearth_xml_attr(iq, "id");
    const char *reason = NULL;
    if (c->binding) {
        c2s__reply_error(c, iq, arena, HEARTH_STANZA_ERR_UNEXPECTED_REQUEST,
                         "a bind is already in progress");
        return;
    }
    if (!id) {
        c2s__reply_error(c, iq, arena, HEARTH_STANZA_ERR_BAD_REQUEST, "an IQ needs an id");
        return;
    }
    bind_job_t *j = calloc(1, sizeof(*j));
    if (!j || !(j->id = strdup(id))) {
        free(j);
        conn__abort(c);
        return;
    }
    if (*want && hearth_jid_resourceprep(want, strlen(want), &j->resource, &reason)) {
        free(j->id);
        free(j);
        c2s__reply_error(c, iq, arena, HEARTH_STANZA_ERR_BAD_REQUEST, reason);
        return;
    }
    j->c = c;
    conn__ref(c);
    c->binding = 1;
    user__acquire(c->w, c->bare, bind_loaded, j);
}
