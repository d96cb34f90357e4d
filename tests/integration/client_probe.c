/* A small program on libhearth.so's public API that integration tests drive: the client's
 * configuration from the command line, commands on stdin (one per line), every event on stdout
 * as one line. It lets Python tests run the C client against a live hearthd or Prosody.
 *
 *   client_probe --jid J --password P [--host H] [--port N] [--tls required|optional|direct|
 *                disabled] [--ca FILE] [--no-verify] [--mechs LIST] [--plain-clear]
 *                [--register create|new] [--resource R] [--reconnect MIN_MS MAX_MS] [--no-sm]
 *                [--ping MS] [--iq-timeout MS] [--no-presence] [--quiet]
 *                [--managers [--receipts all|none] [--accept-all]]
 *   commands: connect | disconnect | send XML | iq LABEL XML | ping LABEL [TO] | info | quit
 *   events:   connected | registered ERR | online JID | resumed JID | disconnected ERR ...
 *             | stanza XML (not with --quiet) | iq LABEL ERR [XML] | lost XML | acked N
 *             | info ... | error ...
 * With --managers the roster, presence, chat and MUC managers are on the client, with their
 * commands (manager_command) and events (one line each, named after the manager). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "hearth/chat.h"
#include "hearth/client.h"
#include "hearth/muc.h"
#include "hearth/presence.h"
#include "hearth/roster.h"

static hearth_ctx_t *ctx;
static hearth_client_t *client;
static int quiet;
static uv_pipe_t in;
static char line[1 << 20];
static size_t line_len;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void print_stanza(const char *what, const char *label, int rc, hearth_stanza_t *st)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (st && hearth_stanza_serialize(st, &b) != 0)
        hearth_buf_reset(&b);
    if (label)
        out("%s %s %s%s%s", what, label, hearth_err_name(rc), b.data ? " " : "",
            b.data ? b.data : "");
    else
        out("%s %s", what, b.data ? b.data : "");
    hearth_buf_free(&b);
}

/* ---- events ---- */

static void ev_connected(void *ud, hearth_client_t *c)
{
    out("connected");
}

static void ev_registered(void *ud, hearth_client_t *c, int result)
{
    out("registered %s", hearth_err_name(result));
}

static void ev_online(void *ud, hearth_client_t *c, const char *jid, int resumed)
{
    out("%s %s", resumed ? "resumed" : "online", jid);
}

static void ev_disconnected(void *ud, hearth_client_t *c, const hearth_disconnect_info_t *i)
{
    out("disconnected %s cond=%s reconnect=%s%u text=%s", hearth_err_name(i->reason),
        i->stream_error ? hearth_stream_error_name(i->stream_error)
                        : (i->condition ? i->condition : "none"),
        i->will_reconnect ? "" : "no/", i->reconnect_delay_ms, i->text);
}

static void ev_lost(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    print_stanza("lost", NULL, 0, st);
}

static void ev_acked(void *ud, hearth_client_t *c, unsigned n)
{
    out("acked %u", n);
}

static const hearth_client_events_t events = {
    .connected = ev_connected,
    .registered = ev_registered,
    .online = ev_online,
    .disconnected = ev_disconnected,
    .stanza_lost = ev_lost,
    .acked = ev_acked,
};

/* Sees every stanza first and passes it on. */
static int on_stanza(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    if (!quiet)
        print_stanza("stanza", NULL, 0, st);
    return 0;
}

static void on_iq(void *ud, hearth_client_t *c, int rc, hearth_stanza_t *resp)
{
    print_stanza("iq", ud, rc, resp);
    free(ud);
}

/* ---- the managers (--managers) ---- */

static int with_managers, accept_all;
static hearth_receipt_policy_t receipts = HEARTH_RECEIPTS_CONTACTS;
static hearth_roster_t *roster;
static hearth_presence_t *presence;
static hearth_chat_t *chat;
static hearth_muc_t *muc;

static void item_text(char *buf, size_t size, const hearth_roster_item_t *it)
{
    int n = snprintf(buf, size, "%s sub=%s%s name=%s groups=", it->jid,
                     hearth_subscription_name(it->subscription), it->ask ? " ask" : "",
                     it->name ? it->name : "-");
    for (size_t i = 0; i < it->ngroups && n > 0 && (size_t)n < size; i++)
        n += snprintf(buf + n, size - (size_t)n, "%s%s", i ? "," : "", it->groups[i]);
}

static void r_loaded(void *ud, hearth_roster_t *r, int result)
{
    const char *ver = hearth_roster_version(r);
    out("roster-loaded %s n=%zu ver=%s", hearth_err_name(result), hearth_roster_count(r),
        ver ? (*ver ? ver : "''") : "-");
}

static void r_added(void *ud, hearth_roster_t *r, const hearth_roster_item_t *it)
{
    char text[1024];
    item_text(text, sizeof text, it);
    out("roster-added %s", text);
}

static void r_changed(void *ud, hearth_roster_t *r, const hearth_roster_item_t *it,
                      const hearth_roster_item_t *old)
{
    char text[1024];
    item_text(text, sizeof text, it);
    out("roster-changed %s", text);
}

static void r_removed(void *ud, hearth_roster_t *r, const hearth_roster_item_t *it)
{
    out("roster-removed %s", it->jid);
}

static void p_changed(void *ud, hearth_presence_t *p, const hearth_presence_info_t *i,
                      hearth_stanza_t *st)
{
    if (!i->available)
        out("presence %s gone", i->jid);
    else
        out("presence %s show=%s status=%s prio=%d", i->jid,
            i->show ? hearth_show_name(i->show) : "-", i->status ? i->status : "-", i->priority);
}

static void p_request(void *ud, hearth_presence_t *p, const char *jid, const char *status)
{
    out("subscribe-request %s", jid);
}

static void p_subscription(void *ud, hearth_presence_t *p, const char *jid,
                           hearth_subscription_change_t ch)
{
    out("subscription %s %s", jid,
        ch == HEARTH_SUBSCRIPTION_APPROVED ? "approved"
        : ch == HEARTH_SUBSCRIPTION_DENIED ? "denied"
                                           : "unsubscribed");
}

static void p_error(void *ud, hearth_presence_t *p, const char *jid, hearth_stanza_error_t cond,
                    const char *text)
{
    out("presence-error %s %s", jid, hearth_stanza_error_name(cond));
}

static int c_message(void *ud, hearth_chat_t *ch, const hearth_message_t *m)
{
    out("message %s %s id=%s body=%s thread=%s state=%s receipt=%d", m->type, m->from,
        m->id ? m->id : "-", m->body ? m->body : "-", m->thread ? m->thread : "-",
        m->state ? hearth_chat_state_name(m->state) : "-", m->receipt_requested);
    return HEARTH_CHAT_RECEIPT;
}

static void c_state(void *ud, hearth_chat_t *ch, const char *from, hearth_chat_state_t s)
{
    out("chatstate %s %s", from, hearth_chat_state_name(s));
}

static void c_receipt(void *ud, hearth_chat_t *ch, const char *from, const char *id)
{
    out("receipt %s %s", from, id);
}

static void c_error(void *ud, hearth_chat_t *ch, const char *from, const char *id,
                    hearth_stanza_error_t cond, const char *text)
{
    out("chat-error %s %s %s", from, id ? id : "-", hearth_stanza_error_name(cond));
}

static void m_joined(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, int result,
                     hearth_stanza_error_t cond, int created)
{
    out("muc-joined %s %s%s%s%s", hearth_muc_room_jid(room), hearth_err_name(result),
        cond ? " " : "", cond ? hearth_stanza_error_name(cond) : "", created ? " created" : "");
}

static void m_occupant(void *ud, hearth_muc_t *m, hearth_muc_room_t *room,
                       const hearth_muc_occupant_t *o, hearth_muc_change_t ch, const char *new_nick,
                       int code, hearth_stanza_t *st)
{
    out("muc-occupant %s %s %s role=%s aff=%s",
        ch == HEARTH_MUC_JOINED    ? "joined"
        : ch == HEARTH_MUC_CHANGED ? "changed"
                                   : "left",
        hearth_muc_room_jid(room), o->nick, hearth_muc_role_name(o->role),
        hearth_muc_affiliation_name(o->affiliation));
}

static void m_message(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *nick,
                      const char *body, const char *delay, hearth_stanza_t *st)
{
    out("muc-message %s %s%s %s", hearth_muc_room_jid(room), nick ? nick : "-",
        delay ? " (history)" : "", body);
}

static void m_subject(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *nick,
                      const char *subject)
{
    out("muc-subject %s %s %s", hearth_muc_room_jid(room), nick ? nick : "-", subject);
}

static void m_left(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, hearth_muc_left_reason_t why,
                   const char *text)
{
    out("muc-left %s %d", hearth_muc_room_jid(room), (int)why);
}

static void m_invitation(void *ud, hearth_muc_t *m, const char *room, const char *inviter,
                         const char *reason, const char *password, int direct)
{
    out("muc-invitation %s from=%s reason=%s password=%s%s", room, inviter, reason ? reason : "-",
        password ? password : "-", direct ? " direct" : "");
}

static void m_declined(void *ud, hearth_muc_t *m, const char *room, const char *from,
                       const char *reason)
{
    out("muc-declined %s from=%s reason=%s", room, from, reason ? reason : "-");
}

static void m_error(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *id,
                    hearth_stanza_error_t cond, const char *text)
{
    out("muc-error %s %s %s", hearth_muc_room_jid(room), id ? id : "-",
        hearth_stanza_error_name(cond));
}

static void m_form(void *ud, hearth_muc_t *m, const char *room, int result,
                   const hearth_form_t *form)
{
    out("muc-form %s %s fields=%zu", room, hearth_err_name(result), form ? form->nfields : 0);
    for (size_t i = 0; form && i < form->nfields; i++)
        if (form->fields[i].var)
            out("muc-form-field %s %s", form->fields[i].var,
                form->fields[i].nvalues ? form->fields[i].values[0] : "-");
}

static int add_managers(void)
{
    static const hearth_roster_events_t rev = {
        .loaded = r_loaded, .added = r_added, .changed = r_changed, .removed = r_removed};
    static const hearth_presence_events_t pev = {.changed = p_changed,
                                                 .subscribe_request = p_request,
                                                 .subscription = p_subscription,
                                                 .error = p_error};
    static const hearth_chat_events_t cev = {
        .message = c_message, .state = c_state, .receipt = c_receipt, .error = c_error};
    static const hearth_muc_events_t mev = {.joined = m_joined,
                                            .occupant = m_occupant,
                                            .message = m_message,
                                            .subject = m_subject,
                                            .left = m_left,
                                            .invitation = m_invitation,
                                            .declined = m_declined,
                                            .error = m_error};
    hearth_presence_config_t pc = {.subscription_mode = accept_all ? HEARTH_SUBSCRIBE_ACCEPT_ALL
                                                                   : HEARTH_SUBSCRIBE_MANUAL};
    hearth_chat_config_t cc = {.receipts = receipts};
    if (hearth_roster_new(client, NULL, &rev, NULL, &roster) ||
        hearth_presence_new(client, &pc, &pev, NULL, &presence) ||
        hearth_chat_new(client, &cc, &cev, NULL, &chat) || hearth_muc_new(client, &mev, NULL, &muc))
        return -1;
    return 0;
}

/* The next space-separated word of *s (NULL when none); the rest stays in *s. */
static char *word(char **s)
{
    if (!*s || !**s)
        return NULL;
    char *w = *s, *sp = strchr(w, ' ');
    if (sp) {
        *sp = '\0';
        *s = sp + 1;
    } else {
        *s = NULL;
    }
    return w;
}

static hearth_muc_room_t *room_arg(char **arg)
{
    char *jid = word(arg);
    return jid ? hearth_muc_room_find(muc, jid) : NULL;
}

/* muc-config ROOM var=value;var=value (a value of several: a,b) */
static int muc_config(hearth_muc_room_t *r, char *spec)
{
    hearth_form_field_t fields[32];
    const char *values[32][8];
    size_t n = 0;
    for (char *kv = strtok(spec, ";"); kv && n < 32; kv = strtok(NULL, ";")) {
        char *eq = strchr(kv, '=');
        if (!eq)
            return HEARTH_EINVAL;
        *eq = '\0';
        fields[n] = (hearth_form_field_t){.var = kv, .values = values[n]};
        for (char *v = eq + 1; v && fields[n].nvalues < 8;) {
            char *comma = strchr(v, ',');
            if (comma)
                *comma = '\0';
            values[n][fields[n].nvalues++] = v;
            v = comma ? comma + 1 : NULL;
        }
        n++;
    }
    hearth_form_t form = {.fields = fields, .nfields = n};
    return hearth_muc_submit_form(r, &form, on_iq, strdup("muc-config"));
}

/* Returns 1 when cmd was a manager's command (its result in *rc). */
static int manager_command(const char *cmd, char *arg, int *rc)
{
    if (!with_managers)
        return 0;
    *rc = HEARTH_EINVAL;
    if (!strcmp(cmd, "roster")) {
        for (size_t i = 0; i < hearth_roster_count(roster); i++) {
            char text[1024];
            item_text(text, sizeof text, hearth_roster_item_at(roster, i));
            out("roster-item %s", text);
        }
        const char *ver = hearth_roster_version(roster);
        out("roster-end n=%zu ver=%s", hearth_roster_count(roster), ver ? ver : "-");
        *rc = 0;
    } else if (!strcmp(cmd, "roster-set")) {
        char *jid = word(&arg), *name = word(&arg), *groups = word(&arg);
        const char *g[8];
        size_t ng = 0;
        for (char *t = groups ? strtok(groups, ",") : NULL; t && ng < 8; t = strtok(NULL, ","))
            g[ng++] = t;
        if (jid)
            *rc = hearth_roster_set(roster, jid, name && strcmp(name, "-") ? name : NULL, g, ng,
                                    on_iq, strdup("roster-set"));
    } else if (!strcmp(cmd, "roster-remove") && arg) {
        *rc = hearth_roster_remove(roster, arg, on_iq, strdup("roster-remove"));
    } else if (!strcmp(cmd, "presence")) {
        char *show = word(&arg), *prio = word(&arg);
        if (show && prio)
            *rc = hearth_presence_set(presence, hearth_show_parse(show), arg, atoi(prio));
    } else if (!strcmp(cmd, "unavailable")) {
        *rc = hearth_presence_set_unavailable(presence, arg);
    } else if (!strcmp(cmd, "subscribe") && arg) {
        *rc = hearth_presence_subscribe(presence, arg, NULL);
    } else if (!strcmp(cmd, "approve") && arg) {
        *rc = hearth_presence_approve(presence, arg);
    } else if (!strcmp(cmd, "deny") && arg) {
        *rc = hearth_presence_deny(presence, arg);
    } else if (!strcmp(cmd, "unsubscribe") && arg) {
        *rc = hearth_presence_unsubscribe(presence, arg);
    } else if (!strcmp(cmd, "best") && arg) {
        const hearth_presence_info_t *b = hearth_presence_best(presence, arg);
        if (b)
            out("best %s %s show=%s prio=%d", arg, b->jid,
                b->show ? hearth_show_name(b->show) : "-", b->priority);
        else
            out("best %s none", arg);
        *rc = 0;
    } else if (!strcmp(cmd, "chat")) {
        char *to = word(&arg);
        char id[64];
        hearth_chat_options_t o = {
            .thread = "t1", .request_receipt = 1, .state = HEARTH_CHAT_STATE_ACTIVE};
        if (to && arg) {
            *rc = hearth_chat_send(chat, to, arg, &o, id, sizeof id);
            if (*rc == 0)
                out("sent %s", id);
        }
    } else if (!strcmp(cmd, "state")) {
        char *to = word(&arg);
        hearth_chat_state_t s = HEARTH_CHAT_STATE_NONE;
        for (int i = 1; i <= HEARTH_CHAT_STATE_GONE && arg; i++)
            if (!strcmp(arg, hearth_chat_state_name((hearth_chat_state_t)i)))
                s = (hearth_chat_state_t)i;
        if (to)
            *rc = hearth_chat_send_state(chat, to, s);
    } else if (!strcmp(cmd, "muc-join")) {
        char *room = word(&arg), *nick = word(&arg);
        hearth_muc_join_options_t o = {.password = arg, .history_stanzas = 10};
        if (room && nick)
            *rc = hearth_muc_join(muc, room, nick, &o, NULL);
    } else if (!strncmp(cmd, "muc-", 4)) {
        hearth_muc_room_t *r = NULL;
        const char *sub = cmd + 4;
        if (!strcmp(sub, "decline")) {
            char *room = word(&arg), *inviter = word(&arg);
            *rc = room && inviter ? hearth_muc_decline(muc, room, inviter, arg) : HEARTH_EINVAL;
            return 1;
        }
        r = room_arg(&arg);
        if (!r) {
            *rc = HEARTH_ENOTFOUND;
        } else if (!strcmp(sub, "form")) {
            *rc = hearth_muc_fetch_form(r, m_form, NULL);
        } else if (!strcmp(sub, "config") && arg) {
            *rc = muc_config(r, arg);
        } else if (!strcmp(sub, "instant")) {
            *rc = hearth_muc_instant(r, on_iq, strdup("muc-instant"));
        } else if (!strcmp(sub, "say") && arg) {
            *rc = hearth_muc_say(r, arg, NULL, 0);
        } else if (!strcmp(sub, "subject") && arg) {
            *rc = hearth_muc_set_subject(r, arg);
        } else if (!strcmp(sub, "invite")) {
            char *jid = word(&arg);
            *rc = jid ? hearth_muc_invite(r, jid, arg) : HEARTH_EINVAL;
        } else if (!strcmp(sub, "leave")) {
            *rc = hearth_muc_leave(r, arg);
        } else if (!strcmp(sub, "occupants")) {
            for (size_t i = 0; i < hearth_muc_occupant_count(r); i++) {
                const hearth_muc_occupant_t *o = hearth_muc_occupant_at(r, i);
                out("muc-occupant-item %s %s role=%s aff=%s%s", hearth_muc_room_jid(r), o->nick,
                    hearth_muc_role_name(o->role), hearth_muc_affiliation_name(o->affiliation),
                    o->self ? " self" : "");
            }
            out("muc-occupants-end %zu", hearth_muc_occupant_count(r));
            *rc = 0;
        }
    } else {
        return 0;
    }
    return 1;
}

/* ---- commands ---- */

static void command(char *cmd)
{
    char *arg = strchr(cmd, ' ');
    if (arg)
        *arg++ = '\0';
    int rc = 0;
    if (!strcmp(cmd, "connect")) {
        rc = hearth_client_connect(client);
    } else if (!strcmp(cmd, "disconnect")) {
        rc = hearth_client_disconnect(client);
    } else if (!strcmp(cmd, "send") && arg) {
        const char *why = NULL;
        hearth_stanza_t *st = hearth_stanza_parse(arg, strlen(arg), &why);
        rc = st ? hearth_client_send(client, st) : HEARTH_EINVAL;
    } else if (!strcmp(cmd, "iq") && arg && strchr(arg, ' ')) {
        char *xml = strchr(arg, ' ');
        *xml++ = '\0';
        hearth_stanza_t *st = hearth_stanza_parse(xml, strlen(xml), NULL);
        char *label = strdup(arg);
        rc = st ? hearth_client_iq(client, st, 0, on_iq, label) : HEARTH_EINVAL;
        if (rc)
            free(label);
    } else if (!strcmp(cmd, "ping") && arg) {
        char *to = strchr(arg, ' ');
        if (to)
            *to++ = '\0';
        char *label = strdup(arg);
        rc = hearth_client_ping(client, to, 0, on_iq, label);
        if (rc)
            free(label);
    } else if (!strcmp(cmd, "info")) {
        hearth_client_info_t i;
        hearth_client_info(client, &i);
        out("info jid=%s tls=%s mech=%s cb=%s sm=%d resumable=%d unacked=%u reconnects=%u",
            hearth_client_jid(client) ? hearth_client_jid(client) : "-",
            i.tls_version ? i.tls_version : "-", i.mechanism ? i.mechanism : "-",
            i.channel_binding ? i.channel_binding : "-", i.sm_enabled, i.sm_resumable, i.sm_unacked,
            i.reconnects);
    } else if (manager_command(cmd, arg, &rc)) {
        /* done */
    } else if (!strcmp(cmd, "quit")) {
        uv_read_stop((uv_stream_t *)&in);
        hearth_client_free(client);
        client = NULL;
        uv_close((uv_handle_t *)&in, NULL);
        return;
    } else {
        rc = HEARTH_EINVAL;
    }
    if (rc)
        out("error %s %s", cmd, hearth_err_name(rc));
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char chunk[65536];
    *buf = uv_buf_init(chunk, sizeof(chunk));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0) {
        command("quit");
        return;
    }
    for (ssize_t i = 0; i < n && client; i++) {
        char ch = buf->base[i];
        if (ch == '\n') {
            line[line_len] = '\0';
            line_len = 0;
            command(line);
        } else if (line_len + 1 < sizeof(line)) {
            line[line_len++] = ch;
        }
    }
}

/* ---- configuration ---- */

static void usage(void)
{
    fprintf(stderr, "usage: client_probe --jid J --password P [options] (see the source)\n");
    exit(2);
}

static void log_line(void *ud, hearth_log_level_t level, const char *l)
{
    fprintf(stderr, "%s\n", l);
}

int main(int argc, char **argv)
{
    hearth_client_config_t cfg = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE() (v ? (i++, v) : (usage(), ""))
        if (!strcmp(a, "--jid"))
            cfg.jid = TAKE();
        else if (!strcmp(a, "--password"))
            cfg.password = TAKE();
        else if (!strcmp(a, "--host"))
            cfg.host = TAKE();
        else if (!strcmp(a, "--port"))
            cfg.port = (unsigned)atoi(TAKE());
        else if (!strcmp(a, "--resource"))
            cfg.resource = TAKE();
        else if (!strcmp(a, "--ca"))
            cfg.tls_ca_file = TAKE();
        else if (!strcmp(a, "--no-verify"))
            cfg.tls_no_verify = 1;
        else if (!strcmp(a, "--mechs"))
            cfg.sasl_mechanisms = TAKE();
        else if (!strcmp(a, "--plain-clear"))
            cfg.allow_plain_without_tls = 1;
        else if (!strcmp(a, "--no-sm"))
            cfg.no_sm = 1;
        else if (!strcmp(a, "--no-presence"))
            cfg.no_initial_presence = 1;
        else if (!strcmp(a, "--quiet"))
            quiet = 1;
        else if (!strcmp(a, "--managers"))
            with_managers = 1;
        else if (!strcmp(a, "--accept-all"))
            accept_all = 1;
        else if (!strcmp(a, "--receipts")) {
            const char *m = TAKE();
            receipts = !strcmp(m, "all") ? HEARTH_RECEIPTS_ALL : HEARTH_RECEIPTS_NONE;
        } else if (!strcmp(a, "--ping"))
            cfg.ping_interval_ms = (unsigned)atoi(TAKE());
        else if (!strcmp(a, "--iq-timeout"))
            cfg.iq_timeout_ms = (unsigned)atoi(TAKE());
        else if (!strcmp(a, "--reconnect") && i + 2 < argc) {
            cfg.reconnect = 1;
            cfg.reconnect_min_ms = (unsigned)atoi(argv[++i]);
            cfg.reconnect_max_ms = (unsigned)atoi(argv[++i]);
        } else if (!strcmp(a, "--register")) {
            const char *m = TAKE();
            cfg.register_mode =
                !strcmp(m, "new") ? HEARTH_REGISTER_CREATE_NEW : HEARTH_REGISTER_CREATE;
        } else if (!strcmp(a, "--tls")) {
            const char *m = TAKE();
            cfg.tls = !strcmp(m, "optional")   ? HEARTH_TLS_OPTIONAL
                      : !strcmp(m, "direct")   ? HEARTH_TLS_DIRECT
                      : !strcmp(m, "disabled") ? HEARTH_TLS_DISABLED
                                               : HEARTH_TLS_REQUIRED;
        } else {
            usage();
        }
    }
    hearth_ctx_config_t cc = {0};
    if (getenv("HEARTH_PROBE_LOG")) {
        cc.log = log_line;
        cc.log_level = HEARTH_LOG_TRACE;
        cfg.log_stanzas = 1;
    }
    int rc = hearth_ctx_new(&cc, &ctx);
    if (!rc)
        rc = hearth_client_new(ctx, &cfg, &events, NULL, &client);
    if (rc) {
        out("error setup %s", hearth_err_name(rc));
        hearth_ctx_free(ctx);
        return 1;
    }
    unsigned id;
    if (hearth_client_add_handler(client, NULL, 1000, on_stanza, NULL, &id))
        return 1;
    if (with_managers && add_managers() != 0)
        return 1;
    uv_pipe_init(hearth_ctx_loop(ctx), &in, 0);
    uv_pipe_open(&in, 0);
    uv_read_start((uv_stream_t *)&in, on_alloc, on_read);
    out("ready");
    (void)hearth_ctx_run(ctx);
    hearth_ctx_free(ctx);
    return 0;
}
