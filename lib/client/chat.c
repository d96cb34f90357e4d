/* The chat manager (include/hearth/chat.h): one-to-one messages sent with their threads,
 * receipt requests and chat states, received ones parsed and reported, receipts answered under
 * the configured policy, message errors reported. Touches its client through the public API
 * and, for its slot, internal.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/chat.h"
#include "hearth/jid.h"
#include "hearth/ns.h"
#include "hearth/roster.h"
#include "internal.h"

struct hearth_chat {
    hearth_client_t *c;
    hearth_chat_config_t cfg;
    hearth_chat_events_t ev;
    void *ud;
    unsigned handler_id;
};

static const char *const state_names[] = {NULL,     "active",   "composing",
                                          "paused", "inactive", "gone"};

const char *hearth_chat_state_name(hearth_chat_state_t s)
{
    return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ? state_names[s] : NULL;
}

static hearth_chat_state_t state_of(hearth_stanza_t *st)
{
    hearth_xml_node_t *el = hearth_stanza_child(st, NULL, HEARTH_NS_CHATSTATES);
    for (unsigned i = 1; el && i < sizeof(state_names) / sizeof(state_names[0]); i++)
        if (!strcmp(el->name, state_names[i]))
            return (hearth_chat_state_t)i;
    return HEARTH_CHAT_STATE_NONE;
}

static bool gone(const hearth_chat_t *ch)
{
    return ch->c->free_pending;
}

/* ---- sending ---- */

static int prepared(const char *jid, hearth_jid_t *out)
{
    if (!jid || hearth_jid_parse(jid, strlen(jid), out, NULL) != 0)
        return HEARTH_EINVAL;
    return 0;
}

int hearth_chat_send(hearth_chat_t *ch, const char *to, const char *body,
                     const hearth_chat_options_t *opts, char *id_out, size_t id_size)
{
    static const hearth_chat_options_t none;
    if (!opts)
        opts = &none;
    const char *type = opts->type ? opts->type : "chat";
    if (strcmp(type, "chat") != 0 && strcmp(type, "normal") != 0 && strcmp(type, "headline") != 0)
        return HEARTH_EINVAL;
    if ((unsigned)opts->state > HEARTH_CHAT_STATE_GONE)
        return HEARTH_EINVAL;
    hearth_jid_t j;
    if (prepared(to, &j))
        return HEARTH_EINVAL;
    char idbuf[32];
    const char *id = opts->id ? opts->id : hearth_client_new_id(ch->c, idbuf, sizeof idbuf);
    hearth_stanza_t *st = hearth_stanza_new("message", type, j.full, id);
    hearth_jid_clear(&j);
    if (!st)
        return HEARTH_ENOMEM;
    hearth_arena_t *a = hearth_stanza_arena(st);
    hearth_xml_node_t *n = hearth_stanza_node(st);
    const char *state = hearth_chat_state_name(opts->state);
    if ((body && hearth_stanza_add_text_child(st, "body", body)) ||
        (opts->subject && hearth_stanza_add_text_child(st, "subject", opts->subject)) ||
        (opts->thread && hearth_stanza_add_text_child(st, "thread", opts->thread)) ||
        (state && !hearth_xml_add_child(a, n, state, HEARTH_NS_CHATSTATES)) ||
        (opts->request_receipt && !hearth_xml_add_child(a, n, "request", HEARTH_NS_RECEIPTS))) {
        hearth_stanza_unref(st);
        return HEARTH_ENOMEM;
    }
    if (id_out && id_size)
        snprintf(id_out, id_size, "%s", id);
    return hearth_client_send(ch->c, st);
}

int hearth_chat_send_state(hearth_chat_t *ch, const char *to, hearth_chat_state_t state)
{
    if (state == HEARTH_CHAT_STATE_NONE)
        return HEARTH_EINVAL;
    hearth_jid_t j;
    if (prepared(to, &j))
        return HEARTH_EINVAL;
    const char *name = hearth_chat_state_name(state);
    hearth_stanza_t *st = name ? hearth_stanza_new("message", "chat", j.full, NULL) : NULL;
    hearth_jid_clear(&j);
    if (!name)
        return HEARTH_EINVAL;
    if (!st || !hearth_xml_add_child(hearth_stanza_arena(st), hearth_stanza_node(st), name,
                                     HEARTH_NS_CHATSTATES)) {
        hearth_stanza_unref(st);
        return HEARTH_ENOMEM;
    }
    return hearth_client_send(ch->c, st);
}

int hearth_chat_send_receipt(hearth_chat_t *ch, const char *to, const char *id)
{
    hearth_jid_t j;
    if (!id || !*id || prepared(to, &j))
        return HEARTH_EINVAL;
    char idbuf[32];
    hearth_stanza_t *st = hearth_stanza_new("message", NULL, j.full,
                                            hearth_client_new_id(ch->c, idbuf, sizeof idbuf));
    hearth_jid_clear(&j);
    hearth_xml_node_t *r =
        st ? hearth_xml_add_child(hearth_stanza_arena(st), hearth_stanza_node(st), "received",
                                  HEARTH_NS_RECEIPTS)
           : NULL;
    if (!r || hearth_xml_set_attr(hearth_stanza_arena(st), r, "id", id)) {
        hearth_stanza_unref(st);
        return HEARTH_ENOMEM;
    }
    return hearth_client_send(ch->c, st);
}

char *hearth_chat_new_thread(hearth_chat_t *ch, char *buf, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = size ? size - 1 : 0;
    if (n > 32)
        n = 32;
    for (size_t i = 0; i < n; i++)
        buf[i] = hex[ctx__rand(ch->c->ctx, 16)];
    if (size)
        buf[n] = '\0';
    return buf;
}

/* ---- receiving ---- */

/* Whether a receipt to from is allowed: it tells the sender we are online (XEP-0184 §8). */
static bool receipt_allowed(hearth_chat_t *ch, const char *from)
{
    switch (ch->cfg.receipts) {
    case HEARTH_RECEIPTS_ALL:
        return true;
    case HEARTH_RECEIPTS_NONE:
        return false;
    default: {
        hearth_roster_t *r = hearth_roster_get(ch->c);
        if (!r)
            return true;
        const hearth_roster_item_t *it = hearth_roster_find(r, from);
        return it && (it->subscription == HEARTH_SUB_FROM || it->subscription == HEARTH_SUB_BOTH);
    }
    }
}

static int on_message(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    hearth_chat_t *ch = ud;
    const char *from = hearth_stanza_from(st);
    const char *type = hearth_stanza_type(st);
    if (!from)
        from = hearth_client_bare_jid(c);
    if (type && !strcmp(type, "groupchat"))
        return 0;
    /* Invitations to rooms are the MUC manager's (include/hearth/muc.h). */
    hearth_xml_node_t *x = hearth_stanza_child(st, "x", HEARTH_NS_MUC_USER);
    if ((x && (hearth_xml_child(x, "invite", NULL) || hearth_xml_child(x, "decline", NULL))) ||
        hearth_stanza_child(st, "x", HEARTH_NS_CONFERENCE))
        return 0;
    if (type && !strcmp(type, "error")) {
        const char *text;
        hearth_stanza_error_t cond = hearth_stanza_error(st, &text);
        if (ch->ev.error)
            ch->ev.error(ch->ud, ch, from, hearth_stanza_id(st), cond, text);
        return 0;
    }
    hearth_xml_node_t *received = hearth_stanza_child(st, "received", HEARTH_NS_RECEIPTS);
    if (received) {
        const char *id = hearth_xml_attr(received, "id");
        if (id && ch->ev.receipt)
            ch->ev.receipt(ch->ud, ch, from, id);
        if (gone(ch))
            return 0;
    }
    hearth_message_t m = {
        .from = from,
        .to = hearth_stanza_to(st),
        .id = hearth_stanza_id(st),
        .type = type ? type : "normal",
        .body = hearth_stanza_child_text(st, "body"),
        .subject = hearth_stanza_child_text(st, "subject"),
        .thread = hearth_stanza_child_text(st, "thread"),
        .state = state_of(st),
        .receipt_requested = hearth_stanza_child(st, "request", HEARTH_NS_RECEIPTS) != NULL,
        .stanza = st,
    };
    hearth_xml_node_t *thread = hearth_stanza_child(st, "thread", HEARTH_NS_CLIENT);
    m.parent_thread = thread ? hearth_xml_attr(thread, "parent") : NULL;
    hearth_xml_node_t *delay = hearth_stanza_child(st, "delay", HEARTH_NS_DELAY);
    m.delay = delay ? hearth_xml_attr(delay, "stamp") : NULL;
    if (m.body || m.subject) {
        int answer = ch->ev.message ? ch->ev.message(ch->ud, ch, &m) : HEARTH_CHAT_RECEIPT;
        if (gone(ch))
            return 0;
        /* A receipt answers a message that was delivered, once: never one fetched from an
         * archive or one without an id to name. */
        if (m.receipt_requested && m.id && answer == HEARTH_CHAT_RECEIPT &&
            receipt_allowed(ch, from)) {
            int rc = hearth_chat_send_receipt(ch, from, m.id);
            if (rc)
                ctx__log(c->ctx, c, HEARTH_LOG_WARN, "receipt to %s not sent: %s", from,
                         hearth_strerror(rc));
        }
    }
    if (m.state != HEARTH_CHAT_STATE_NONE && ch->ev.state && !gone(ch))
        ch->ev.state(ch->ud, ch, from, m.state);
    return 0;
}

/* ---- life ---- */

static void slot_free(void *mgr)
{
    hearth_chat_t *ch = mgr;
    ctx__free(ch->c->ctx, ch);
}

int hearth_chat_new(hearth_client_t *c, const hearth_chat_config_t *cfg,
                    const hearth_chat_events_t *ev, void *ud, hearth_chat_t **out)
{
    *out = NULL;
    if (cfg && (unsigned)cfg->receipts > HEARTH_RECEIPTS_NONE)
        return HEARTH_EINVAL;
    if (hearth_client_slot(c, HEARTH_SLOT_CHAT))
        return HEARTH_EEXISTS;
    hearth_chat_t *ch = ctx__calloc(c->ctx, sizeof(*ch));
    if (!ch)
        return HEARTH_ENOMEM;
    ch->c = c;
    if (cfg)
        ch->cfg = *cfg;
    if (ev)
        ch->ev = *ev;
    ch->ud = ud;
    hearth_filter_t f = {.kinds = HEARTH_STANZA_MESSAGE};
    int rc = hearth_client_add_handler(c, &f, 0, on_message, ch, &ch->handler_id);
    if (rc) {
        ctx__free(c->ctx, ch);
        return rc;
    }
    (void)client__take_slot(c, HEARTH_SLOT_CHAT, ch, slot_free);
    *out = ch;
    return 0;
}

hearth_chat_t *hearth_chat_get(const hearth_client_t *c)
{
    return c->slot_free[HEARTH_SLOT_CHAT] == slot_free ? c->slots[HEARTH_SLOT_CHAT] : NULL;
}

void hearth_chat_free(hearth_chat_t *ch)
{
    if (!ch)
        return;
    (void)hearth_client_remove_handler(ch->c, ch->handler_id);
    client__release_slot(ch->c, HEARTH_SLOT_CHAT);
    ctx__free(ch->c->ctx, ch);
}

hearth_client_t *hearth_chat_client(const hearth_chat_t *ch)
{
    return ch->c;
}
