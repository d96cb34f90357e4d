/* Blocking Command (XEP-0191): the block list lives with the user on its home worker; block,
 * unblock and unblock-all are stored, pushed to every resource that asked for the list, and
 * enforced on every stanza kind in both directions (presence.c, message.c, router.c). */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/im.h"

#define BLOCK_ITEMS_MAX 1000 /* per request */
#define BLOCK_LIST_MAX 10000 /* per account: past it, policy-violation and nothing stored */
/* The block list result, in bytes: a list is always sent whole, within the output bound
 * (CONN_MAX_OUTQ) with room to spare. Past it, policy-violation and nothing stored. */
#define BLOCK_LIST_BYTES (1024u * 1024)
#define BLOCK_ITEM_OVERHEAD 16 /* <item jid=''/> */

static size_t list_bytes(const user_t *u)
{
    size_t n = 128;
    STRMAP_FOREACH(&u->blocked, e)
    {
        n += BLOCK_ITEM_OVERHEAD + hearth_buf_escaped_len(e->key);
    }
    return n;
}

int blocking__blocks(const user_t *u, const char *jid)
{
    if (!u || !jid || u->blocked.count == 0)
        return 0;
    if (strmap_get(&u->blocked, jid))
        return 1;
    char buf[3072];
    size_t n = strcspn(jid, "/");
    if (n >= sizeof(buf))
        return 0;
    memcpy(buf, jid, n);
    buf[n] = '\0';
    if (strmap_get(&u->blocked, buf))
        return 1;
    const char *at = strchr(buf, '@');
    return at && strmap_get(&u->blocked, at + 1);
}

/* Per session: it asked for the block list, so it gets pushes (the slot holds (void *)1). */
static int interest_slot = -1;

static void push(user_t *u, const char *verb, hearth_xml_node_t *payload)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<iq type='set' id='block-push'>");
    rc = rc ?: hearth_xml_serialize(payload, HEARTH_NS_CLIENT, &b);
    rc = rc ?: hearth_buf_append_str(&b, "</iq>");
    (void)verb;
    hearth_bytes_t *bytes = rc ? NULL : hearth_bytes_new(b.data, b.len);
    for (session_t *s = u->sessions; bytes && s; s = s->user_next)
        if (s->slot[interest_slot])
            session__send_addressed(s, bytes, s->jid.full);
    hearth_bytes_unref(bytes);
    hearth_buf_free(&b);
}

/* The <item jid=.../> children, prepared; NULL with an error sent when one is bad. */
static const char **items(iq_ctx_t *ctx, size_t *n)
{
    size_t k = 0, cap = hearth_xml_count_elements(ctx->payload);
    if (cap > BLOCK_ITEMS_MAX) {
        iq_error(ctx, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "too many items");
        return NULL;
    }
    const char **v = hearth_arena_alloc(ctx->arena, (cap + 1) * sizeof(char *));
    for (hearth_xml_node_t *i = hearth_xml_first_element(ctx->payload); i;
         i = hearth_xml_next_element(i)) {
        const char *js = hearth_xml_attr(i, "jid");
        hearth_jid_t j = HEARTH_JID_INIT;
        const char *reason = "item without jid";
        if (strcmp(i->name, "item") || !js || hearth_jid_parse(js, strlen(js), &j, &reason)) {
            iq_error(ctx, HEARTH_STANZA_ERR_JID_MALFORMED, reason);
            return NULL;
        }
        v[k++] = hearth_arena_strdup(ctx->arena, j.full);
        hearth_jid_clear(&j);
    }
    *n = k;
    return v;
}

static void blocking_iq(iq_ctx_t *ctx)
{
    session_t *c = ctx->s;
    worker_t *w = c->w;
    user_t *u = c->user;
    const char *name = ctx->payload->name;
    if (!u) {
        iq_error(ctx, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL);
        return;
    }
    if (!ctx->set) {
        if (strcmp(name, "blocklist")) {
            iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, NULL);
            return;
        }
        c->slot[interest_slot] = (void *)1;
        hearth_xml_node_t *r = iq_result(ctx);
        hearth_xml_node_t *l = hearth_xml_add_child(ctx->arena, r, "blocklist", HEARTH_NS_BLOCKING);
        STRMAP_FOREACH(&u->blocked, e)
        {
            hearth_xml_node_t *i = hearth_xml_add_child(ctx->arena, l, "item", NULL);
            hearth_xml_set_attr(ctx->arena, i, "jid", e->key);
        }
        iq_send(ctx, r);
        return;
    }
    size_t n = 0;
    const char **v = items(ctx, &n);
    if (!v)
        return;
    if (!strcmp(name, "block")) {
        if (n == 0) {
            iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, "block needs at least one item");
            return;
        }
        size_t size = list_bytes(u);
        for (size_t i = 0; i < n; i++)
            if (!strmap_get(&u->blocked, v[i]))
                size += BLOCK_ITEM_OVERHEAD + hearth_buf_escaped_len(v[i]);
        if (u->blocked.count + n > BLOCK_LIST_MAX || size > BLOCK_LIST_BYTES) {
            iq_error(ctx, HEARTH_STANZA_ERR_POLICY_VIOLATION, "the block list is full");
            return;
        }
        for (size_t i = 0; i < n; i++) {
            if (strmap_get(&u->blocked, v[i]))
                continue;
            strmap_put(&u->blocked, v[i], (void *)1);
            /* §3.3: a blocked contact that saw the user's presence sees it go offline. */
            char *bare = hearth_arena_strndup(ctx->arena, v[i], strcspn(v[i], "/"));
            if (!user__sub_from(strmap_get(&u->roster, bare)))
                continue;
            for (session_t *s = u->sessions; s; s = s->user_next) {
                if (!s->available)
                    continue;
                hearth_bytes_t *bytes = im__unavailable(s->jid.full);
                if (bytes && strchr(v[i], '@'))
                    router__route(w, STANZA_PRESENCE, v[i], s->jid.full, "unavailable", bytes);
                hearth_bytes_unref(bytes);
            }
        }
        if (storage_block_add(w->srv->storage, &w->storage_target, u->node, v, n, user__write_done,
                              NULL))
            hlog(LOG_ERROR, "block list of %s: storage refused the write", u->bare);
    } else if (!strcmp(name, "unblock")) {
        if (n == 0) {
            STRMAP_FOREACH(&u->blocked, e)
            {
                strmap_remove(&u->blocked, e->key);
            }
        } else {
            for (size_t i = 0; i < n; i++)
                strmap_remove(&u->blocked, v[i]);
        }
        if (storage_block_remove(w->srv->storage, &w->storage_target, u->node, v, n,
                                 user__write_done, NULL))
            hlog(LOG_ERROR, "block list of %s: storage refused the write", u->bare);
    } else {
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, NULL);
        return;
    }
    iq_send(ctx, iq_result(ctx));
    push(u, name, ctx->payload);
}

static const iq_route_t blocking_iqs[] = {
    {HEARTH_NS_BLOCKING, "blocklist", IQ_TO_SELF, blocking_iq},
    {HEARTH_NS_BLOCKING, "block", IQ_TO_SELF, blocking_iq},
    {HEARTH_NS_BLOCKING, "unblock", IQ_TO_SELF, blocking_iq},
    {NULL, NULL, 0, NULL},
};
static const char *const blocking_features[] = {HEARTH_NS_BLOCKING, NULL};

/* A stanza from the user to someone it blocks: refused with XEP-0191 §3.5's error. */
static int stanza_out(hook_args_t *a)
{
    if (!blocking__blocks(a->u, a->to))
        return HOOK_CONTINUE;
    const char *type = hearth_xml_attr(a->st, "type");
    if (type && !strcmp(type, "error"))
        return HOOK_STOP;
    router__make_error(a->st, a->arena, HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
                       "you have blocked this contact", a->w->set.domain);
    hearth_xml_node_t *e = hearth_xml_child(a->st, "error", HEARTH_NS_CLIENT);
    hearth_xml_add_child(a->arena, e, "blocked", HEARTH_NS_BLOCKING_ERRORS);
    session__send_node(a->s, a->st);
    return HOOK_STOP;
}

/* A stanza for the user from someone it blocks: messages and IQs are answered as if there
 * were nobody (§3.4: service-unavailable), presence is dropped. */
static int stanza_in(hook_args_t *a)
{
    inbox_msg_t *m = a->m;
    if (a->u->state != USER_READY || !m->u.route.from || !blocking__blocks(a->u, m->u.route.from))
        return HOOK_CONTINUE;
    if (m->u.route.kind != STANZA_PRESENCE)
        router__bounce(a->w, m, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL);
    return HOOK_STOP;
}

static int blocking_init(server_t *srv)
{
    (void)srv;
    if ((interest_slot = session__slot_new()) < 0)
        return HEARTH_ELIMIT;
    return hooks__add(HOOK_STANZA_OUT, 100, stanza_out)
               ?: hooks__add(HOOK_STANZA_IN, 100, stanza_in);
}

const module_t module_blocking = {
    .name = "blocking",
    .iqs = blocking_iqs,
    .server_features = blocking_features,
    .account_features = blocking_features,
    .init = blocking_init,
};
