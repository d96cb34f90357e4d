/* Resource binding (RFC 6120 §7) on the user's home worker: the resource-conflict policy,
 * the per-account resource limit, and the user's session list that routing reads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c2s/conn.h"
#include "core/log.h"

#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"

conn_t *session__find(worker_t *w, const char *bare, const char *resource)
{
    user_t *u = worker__user(w, bare, 0);
    if (!u)
        return NULL;
    for (conn_t *s = u->sessions; s; s = s->user_next)
        if (!strcmp(s->jid.resource, resource))
            return s;
    return NULL;
}

void session__unbind(conn_t *c)
{
    user_t *u = c->user;
    if (!u)
        return;
    for (conn_t **pp = &u->sessions; *pp; pp = &(*pp)->user_next) {
        if (*pp == c) {
            *pp = c->user_next;
            break;
        }
    }
    u->nsessions--;
    c->user = NULL;
    c->user_next = NULL;
    hlog_conn(LOG_DEBUG, c->id, conn__log_jid(c), "unbound");
    worker__user_drop_if_empty(c->w, u);
}

static void random_hex(char *out, size_t nbytes)
{
    unsigned char r[16];
    if (nbytes > sizeof(r))
        nbytes = sizeof(r);
    uv_random(NULL, NULL, r, nbytes, 0, NULL);
    for (size_t i = 0; i < nbytes; i++)
        snprintf(out + 2 * i, 3, "%02x", r[i]);
}

void session__bind(conn_t *c, hearth_xml_node_t *iq, hearth_arena_t *arena)
{
    const settings_t *s = &c->w->srv->set;
    hearth_xml_node_t *bind = hearth_xml_child(iq, "bind", NS_BIND);
    hearth_xml_node_t *res = hearth_xml_child(bind, "resource", NS_BIND);
    const char *want = res ? hearth_xml_text(arena, res) : "";
    char *resource = NULL;
    const char *reason = NULL;
    char gen[40];
    if (*want) {
        if (hearth_jid_resourceprep(want, strlen(want), &resource, &reason)) {
            router__reply_error(c, iq, arena, HEARTH_STANZA_ERR_BAD_REQUEST, reason);
            return;
        }
    } else {
        random_hex(gen, 8);
        resource = strdup(gen);
    }
    user_t *u = worker__user(c->w, c->bare, 1);
    if (!resource || !u) {
        free(resource);
        conn__abort(c);
        return;
    }
    conn_t *old = session__find(c->w, c->bare, resource);
    if (old) {
        switch (s->resource_conflict) {
        case CONFLICT_REPLACE:
            hlog_conn(LOG_INFO, old->id, conn__log_jid(old), "replaced by connection %llu",
                      (unsigned long long)c->id);
            conn__stream_error(old, HEARTH_STREAM_ERR_CONFLICT, "replaced by a new session");
            session__unbind(old);
            u = worker__user(c->w, c->bare, 1);
            break;
        case CONFLICT_REJECT:
            free(resource);
            router__reply_error(c, iq, arena, HEARTH_STANZA_ERR_CONFLICT,
                                "that resource is in use");
            return;
        case CONFLICT_RENAME: {
            char *renamed = NULL;
            do {
                free(renamed);
                random_hex(gen, 3);
                if (asprintf(&renamed, "%s-%s", resource, gen) < 0)
                    renamed = NULL;
            } while (renamed && session__find(c->w, c->bare, renamed));
            free(resource);
            resource = renamed;
            if (!resource) {
                conn__abort(c);
                return;
            }
            break;
        }
        }
    }
    if (!u || u->nsessions >= s->max_resources) {
        free(resource);
        router__reply_error(c, iq, arena, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT,
                            "too many resources bound for this account");
        if (u)
            worker__user_drop_if_empty(c->w, u);
        return;
    }
    hearth_jid_t jid = HEARTH_JID_INIT;
    int rc = hearth_jid_parse(c->bare, strlen(c->bare), &jid, &reason);
    hearth_jid_t full = HEARTH_JID_INIT;
    if (!rc)
        rc = hearth_jid_make(jid.node, jid.domain, resource, &full, &reason);
    hearth_jid_clear(&jid);
    free(resource);
    if (rc) {
        router__reply_error(c, iq, arena, HEARTH_STANZA_ERR_BAD_REQUEST, reason);
        worker__user_drop_if_empty(c->w, u);
        return;
    }
    c->jid = full;
    c->user = u;
    c->user_next = u->sessions;
    u->sessions = c;
    u->nsessions++;
    c->state = C2S_BOUND;

    hearth_xml_node_t *r = hearth_xml_new(arena, "iq", "jabber:client");
    hearth_xml_set_attr(arena, r, "type", "result");
    hearth_xml_set_attr(arena, r, "id", hearth_xml_attr(iq, "id"));
    hearth_xml_node_t *b = hearth_xml_add_child(arena, r, "bind", NS_BIND);
    hearth_xml_node_t *j = hearth_xml_add_child(arena, b, "jid", NULL);
    hearth_xml_add_text(arena, j, c->jid.full, strlen(c->jid.full));
    conn__send_node(c, r);
    hlog_conn(LOG_INFO, c->id, c->jid.full, "bound %s on worker %u", c->jid.full, c->w->index);
    conn__arm_timer(c);
}
