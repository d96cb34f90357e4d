/* Message Carbons (XEP-0280, urn:xmpp:carbons:2): a resource that enabled carbons gets a copy
 * of what its account's other resources send and receive. Copies are always from the user's
 * own bare JID (the check clients make against CVE-2017-5589), and wrap the original in a
 * XEP-0297 forward. Only eligible messages are copied (§6): chat, normal with a body, or
 * carrying receipts or chat states; never those marked private or no-copy. */
#include <stdlib.h>
#include <string.h>

#include "modules/im.h"

/* Per session: it enabled carbons (the slot holds (void *)1). */
static int slot = -1;
#define CARBONS(s) ((s)->slot[slot] != NULL)

static void carbons_iq(iq_ctx_t *ctx)
{
    if (!ctx->set) {
        iq_error(ctx, HEARTH_STANZA_ERR_BAD_REQUEST, NULL);
        return;
    }
    ctx->s->slot[slot] = !strcmp(ctx->payload->name, "enable") ? (void *)1 : NULL;
    iq_send(ctx, iq_result(ctx));
}

int carbons__eligible(const hearth_xml_node_t *st)
{
    const char *type = hearth_xml_attr(st, "type");
    if (strcmp(st->name, "message"))
        return 0;
    if (hearth_xml_child(st, "private", HEARTH_NS_CARBONS) ||
        hearth_xml_child(st, "no-copy", HEARTH_NS_HINTS))
        return 0;
    if (hearth_xml_child(st, "received", HEARTH_NS_CARBONS) ||
        hearth_xml_child(st, "sent", HEARTH_NS_CARBONS))
        return 0; /* never a copy of a copy */
    if (type && !strcmp(type, "chat"))
        return 1;
    if ((!type || !strcmp(type, "normal")) && hearth_xml_child(st, "body", NULL))
        return 1;
    if (type && (!strcmp(type, "groupchat") || !strcmp(type, "headline") || !strcmp(type, "error")))
        return 0;
    for (hearth_xml_node_t *n = hearth_xml_first_element(st); n; n = hearth_xml_next_element(n))
        if (!strcmp(n->ns, HEARTH_NS_RECEIPTS) || !strcmp(n->ns, HEARTH_NS_CHATSTATES))
            return 1;
    return 0;
}

/* Sends one wrapped copy of original (serialised, default namespace jabber:client) to s. */
static void send_copy(session_t *s, const char *bare, const char *kind, const char *type,
                      const char *original, size_t len)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<message from='");
    rc = rc ?: hearth_buf_append_escaped(&b, bare, strlen(bare));
    rc = rc ?: hearth_buf_append_str(&b, "' to='");
    rc = rc ?: hearth_buf_append_escaped(&b, s->jid.full, strlen(s->jid.full));
    rc = rc
             ?: hearth_buf_printf(&b,
                                  "' type='%s'><%s xmlns='" HEARTH_NS_CARBONS
                                  "'><forwarded xmlns='" HEARTH_NS_FORWARD "'>",
                                  type && *type ? type : "normal", kind);
    /* Inside the forward the original keeps its own namespace: declare it on its start tag. */
    size_t n = strcspn(original, " />");
    rc = rc ?: hearth_buf_append(&b, original, n);
    rc = rc ?: hearth_buf_append_str(&b, " xmlns='" HEARTH_NS_CLIENT "'");
    rc = rc ?: hearth_buf_append(&b, original + n, len - n);
    rc = rc ?: hearth_buf_printf(&b, "</forwarded></%s></message>", kind);
    if (!rc)
        session__send(s, b.data, b.len);
    hearth_buf_free(&b);
}

static int any_target(const user_t *u, const session_t *except, const session_t *except2)
{
    for (const session_t *s = u->sessions; s; s = s->user_next)
        if (CARBONS(s) && s != except && s != except2) /* detached ones queue it for resuming */
            return 1;
    return 0;
}

/* c sent st (from stamped): copies to the user's other resources that enabled carbons. */
static void sent(session_t *c, hearth_xml_node_t *st)
{
    user_t *u = c->user;
    if (!u || !any_target(u, c, NULL) || !carbons__eligible(st))
        return;
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(st, HEARTH_NS_CLIENT, &b) == 0)
        for (session_t *s = u->sessions; s; s = s->user_next)
            if (s != c && CARBONS(s))
                send_copy(s, u->bare, "sent", hearth_xml_attr(st, "type"), b.data, b.len);
    hearth_buf_free(&b);
}

typedef struct received_ctx {
    user_t *u;
    const session_t *delivered[64]; /* sessions that got the message itself */
    size_t ndelivered;
    const hearth_bytes_t *bytes;
} received_ctx_t;

static void received_parsed(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    received_ctx_t *r = ud;
    if (!carbons__eligible(st))
        return;
    for (session_t *s = r->u->sessions; s; s = s->user_next) {
        int got = 0;
        for (size_t i = 0; i < r->ndelivered; i++)
            got |= r->delivered[i] == s;
        if (CARBONS(s) && !got)
            send_copy(s, r->u->bare, "received", hearth_xml_attr(st, "type"), r->bytes->data,
                      r->bytes->len);
    }
}

/* A message for u was given to the sessions in delivered: copies to the others. */
static void received(user_t *u, const hearth_bytes_t *bytes, session_t *const *delivered,
                     size_t ndelivered)
{
    if (!u ||
        !any_target(u, ndelivered ? delivered[0] : NULL, ndelivered > 1 ? delivered[1] : NULL))
        return;
    received_ctx_t r = {.u = u, .bytes = bytes};
    for (size_t i = 0; i < ndelivered && i < 64; i++)
        r.delivered[r.ndelivered++] = delivered[i];
    router__parse(bytes->data, bytes->len, received_parsed, &r);
}

static const iq_route_t carbons_iqs[] = {
    {HEARTH_NS_CARBONS, "enable", IQ_TO_SELF | IQ_TO_SERVER, carbons_iq},
    {HEARTH_NS_CARBONS, "disable", IQ_TO_SELF | IQ_TO_SERVER, carbons_iq},
    {NULL, NULL, 0, NULL},
};
static const char *const carbons_features[] = {HEARTH_NS_CARBONS, NULL};

static int message_out(hook_args_t *a)
{
    if (!a->service) /* messages to rooms are not copied (XEP-0280 §6) */
        sent(a->s, a->st);
    return HOOK_CONTINUE;
}

static int message_delivered(hook_args_t *a)
{
    received(a->u, a->m->u.route.bytes, a->delivered, a->ndelivered);
    return HOOK_CONTINUE;
}

static int carbons_init(server_t *srv)
{
    (void)srv;
    if ((slot = session__slot_new()) < 0)
        return HEARTH_ELIMIT;
    /* The sender's copies are taken before the recipient's stanza id is added (priority 0,
     * message.c): that id is the recipient's, not theirs. */
    return hooks__add(HOOK_MESSAGE_OUT, 100, message_out)
               ?: hooks__add(HOOK_MESSAGE_DELIVERED, 0, message_delivered);
}

const module_t module_carbons = {
    .name = "carbons",
    .iqs = carbons_iqs,
    .server_features = carbons_features,
    .init = carbons_init,
};
