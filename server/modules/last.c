/* Last Activity (XEP-0012): the server's uptime, and for a contact's bare JID, the seconds since
 * its last logout with the status it gave then, answered on its home worker only to entities
 * its roster lets see its presence (§4); an online contact's highest-priority resource answers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/im.h"

static uint64_t started_ms;

static int iq_in(hook_args_t *a);

static int last_init(server_t *srv)
{
    started_ms = (uint64_t)user__now_ms();
    return hooks__add(HOOK_IQ_IN, 0, iq_in);
}

static void server_last(iq_ctx_t *ctx)
{
    if (ctx->set) {
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, NULL);
        return;
    }
    char secs[32];
    snprintf(secs, sizeof(secs), "%llu",
             (unsigned long long)(((uint64_t)user__now_ms() - started_ms) / 1000));
    hearth_xml_node_t *r = iq_result(ctx);
    hearth_xml_node_t *q = hearth_xml_add_child(ctx->arena, r, "query", HEARTH_NS_LAST);
    hearth_xml_set_attr(ctx->arena, q, "seconds", secs);
    iq_send(ctx, r);
}

typedef struct last_ctx {
    worker_t *w;
    user_t *u;
    inbox_msg_t *m;
    int taken; /* a last-activity query: answered here */
} last_ctx_t;

static void answer(void *ud, hearth_xml_node_t *iq, hearth_arena_t *a)
{
    last_ctx_t *l = ud;
    user_t *u = l->u;
    const char *from = hearth_xml_attr(iq, "from");
    const char *type = hearth_xml_attr(iq, "type");
    const hearth_xml_node_t *p = hearth_xml_first_element(iq);
    if (!from || !type || (strcmp(type, "get") && strcmp(type, "set")) || !p ||
        strcmp(p->name, "query") || strcmp(p->ns, HEARTH_NS_LAST))
        return;
    l->taken = 1;
    char *bare = hearth_arena_strndup(a, from, strcspn(from, "/"));
    storage_roster_item_t *it = strmap_get(&u->roster, bare);
    hearth_stanza_error_t err = HEARTH_STANZA_ERR_NONE;
    if (u->state == USER_FAILED)
        err = HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT;
    else if (u->state != USER_READY)
        err = HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE;
    else if (strcmp(type, "get"))
        err = HEARTH_STANZA_ERR_BAD_REQUEST;
    else if (!user__sub_from(it) && strcmp(bare, u->bare))
        err = HEARTH_STANZA_ERR_FORBIDDEN;
    if (err) {
        router__bounce(l->w, l->m, err, NULL);
        return;
    }
    session_t *best = NULL;
    for (session_t *s = u->sessions; s; s = s->user_next)
        if (s->available && (!best || s->priority > best->priority))
            best = s;
    if (best) {
        session__send(best, l->m->u.route.bytes->data, l->m->u.route.bytes->len);
        return;
    }
    hearth_xml_node_t *r = hearth_xml_new(a, "iq", HEARTH_NS_CLIENT);
    hearth_xml_set_attr(a, r, "type", "result");
    hearth_xml_set_attr(a, r, "id", hearth_xml_attr(iq, "id"));
    hearth_xml_set_attr(a, r, "from", u->bare);
    hearth_xml_set_attr(a, r, "to", from);
    hearth_xml_node_t *q = hearth_xml_add_child(a, r, "query", HEARTH_NS_LAST);
    char secs[32];
    int64_t now = user__now_ms() / 1000;
    snprintf(secs, sizeof(secs), "%lld",
             (long long)(u->last_logout && now > u->last_logout ? now - u->last_logout : 0));
    hearth_xml_set_attr(a, q, "seconds", secs);
    if (u->last_status)
        hearth_xml_add_text(a, q, u->last_status, strlen(u->last_status));
    router__route_node(l->w, from, r);
}

/* An IQ for an account's bare JID reaches its home worker (the router sends every one there
 * first); last-activity queries are answered here, the others go on. */
static int iq_in(hook_args_t *a)
{
    if (strchr(a->m->u.route.to, '/'))
        return HOOK_CONTINUE;
    last_ctx_t l = {a->w, a->u, a->m, 0};
    router__parse(a->m->u.route.bytes->data, a->m->u.route.bytes->len, answer, &l);
    return l.taken ? HOOK_STOP : HOOK_CONTINUE;
}

/* To the server: its uptime. To another account: answered where that account's state lives. */
static void last_iq(iq_ctx_t *ctx)
{
    if (ctx->where == IQ_TO_SERVER) {
        server_last(ctx);
        return;
    }
    if (ctx->set) {
        iq_error(ctx, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
        return;
    }
    router__route_node(ctx->w, ctx->to, ctx->iq);
}

static const iq_route_t last_iqs[] = {
    {HEARTH_NS_LAST, "query", IQ_TO_SERVER | IQ_TO_ACCOUNT, last_iq},
    {NULL, NULL, 0, NULL},
};
static const char *const last_features[] = {HEARTH_NS_LAST, NULL};

const module_t module_last = {
    .name = "last",
    .iqs = last_iqs,
    .server_features = last_features,
    .account_features = last_features,
    .init = last_init,
};
