/* Sessions (core/session.h): the user's list, lookup by resource, references, and sending
 * through the carrier's operations. What a session carries for modules lives in its slots,
 * released by the modules on HOOK_SESSION_FREE. */
#include <stdlib.h>
#include <string.h>

#include "core/hooks.h"
#include "core/log.h"
#include "core/session.h"
#include "core/user.h"

static int nslots;

int session__slot_new(void)
{
    return nslots < SESSION_SLOTS ? nslots++ : -1;
}

void session__init(session_t *s, worker_t *w, user_t *u, hearth_jid_t *jid,
                   const session_ops_t *ops, uint64_t id)
{
    s->ops = ops;
    s->w = w;
    s->id = id;
    s->jid = *jid;
    *jid = (hearth_jid_t)HEARTH_JID_INIT;
    s->user = u;
    s->state = SESSION_BOUND;
    s->refs = 1;
    s->user_next = u->sessions;
    u->sessions = s;
    u->nsessions++;
    user__hold(u);
}

void session__unbind(session_t *s)
{
    if (s->state == SESSION_ENDED)
        return;
    user_t *u = s->user;
    for (session_t **pp = &u->sessions; *pp; pp = &(*pp)->user_next) {
        if (*pp == s) {
            *pp = s->user_next;
            break;
        }
    }
    u->nsessions--;
    s->user_next = NULL;
    s->state = SESSION_ENDED;
    hook_args_t a = {.w = s->w, .s = s, .u = u};
    hooks__run(HOOK_SESSION_ENDING, &a);
    hlog_conn(LOG_DEBUG, s->id, s->jid.full, "unbound");
}

void session__ref(session_t *s)
{
    s->refs++;
}

void session__unref(session_t *s)
{
    if (--s->refs > 0)
        return;
    session__unbind(s); /* a carrier drops its reference only once it has ended it */
    hook_args_t a = {.w = s->w, .s = s, .u = s->user};
    hooks__run(HOOK_SESSION_FREE, &a);
    user_t *u = s->user;
    worker_t *w = s->w;
    hearth_bytes_unref(s->presence);
    if (s->directed.buckets)
        strmap_free(&s->directed);
    hearth_jid_clear(&s->jid);
    if (s->ops && s->ops->free)
        s->ops->free(s);
    else
        free(s);
    user__release(w, u);
}

session_t *session__find(worker_t *w, const char *bare, const char *resource)
{
    user_t *u = worker__user(w, bare, 0);
    if (!u)
        return NULL;
    for (session_t *s = u->sessions; s; s = s->user_next)
        if (!s->ending && !strcmp(s->jid.resource, resource))
            return s;
    return NULL;
}

void session__send(session_t *s, const char *data, size_t len)
{
    if (s->state == SESSION_ENDED)
        return;
    if (len > 1) /* our serialiser's bytes: '<' and the stanza's name */
        s->w->stats.stanzas_out[data[1] == 'm'   ? STANZA_MESSAGE
                                : data[1] == 'p' ? STANZA_PRESENCE
                                                 : STANZA_IQ]++;
    s->ops->send(s, data, len);
}

void session__send_node(session_t *s, const hearth_xml_node_t *n)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(n, HEARTH_NS_CLIENT, &b) == 0)
        session__send(s, b.data, b.len);
    else
        hlog_conn(LOG_ERROR, s->id, s->jid.full, "a stanza could not be serialised");
    hearth_buf_free(&b);
}

void session__send_addressed(session_t *s, const hearth_bytes_t *b, const char *to)
{
    if (!to) {
        session__send(s, b->data, b->len);
        return;
    }
    /* Our serialiser writes "<name" then the attributes: the address goes right after it. */
    size_t n = 1;
    while (n < b->len && b->data[n] != ' ' && b->data[n] != '>' && b->data[n] != '/')
        n++;
    hearth_buf_t out = HEARTH_BUF_INIT;
    int rc = hearth_buf_append(&out, b->data, n);
    rc = rc ?: hearth_buf_append_str(&out, " to='");
    rc = rc ?: hearth_buf_append_escaped(&out, to, strlen(to));
    rc = rc ?: hearth_buf_append_str(&out, "'");
    rc = rc ?: hearth_buf_append(&out, b->data + n, b->len - n);
    if (!rc)
        session__send(s, out.data, out.len);
    hearth_buf_free(&out);
}

void session__end(session_t *s, hearth_stream_error_t cond, const char *text)
{
    if (s->state != SESSION_ENDED && !s->ending)
        s->ops->end(s, cond, text);
}

const char *session__log_jid(const session_t *s)
{
    return s->jid.full;
}

size_t session__output_pending(session_t *s)
{
    if (s->state != SESSION_BOUND || s->ending || !s->ops->output_pending)
        return SESSION_OUTPUT_MAX;
    return s->ops->output_pending(s);
}

void session__describe(session_t *s, session_info_t *out)
{
    memset(out, 0, sizeof(*out));
    if (s->ops->describe && s->state == SESSION_BOUND)
        s->ops->describe(s, out);
}
