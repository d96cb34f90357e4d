/* hearth's interactive mode: the contact list with presence (the roster and presence
 * managers), conversations (the chat manager), rooms (the MUC manager), and the /commands, on one
 * uv loop with the terminal of term.c. Everything shown goes through term_print, one event per
 * line, so that a line being typed is never broken. */
#include <limits.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hearth.h"
#include "hearth/chat.h"
#include "hearth/jid.h"
#include "hearth/muc.h"
#include "hearth/presence.h"
#include "hearth/roster.h"
#include "term.h"

/* Rooms one session may be in at once. */
#define UI_MAX_ROOMS 32
/* Messages of history asked for when joining a room. */
#define UI_ROOM_HISTORY 20

typedef struct ui {
    conn_t cn;
    hearth_roster_t *roster;
    hearth_presence_t *presence;
    hearth_chat_t *chat;
    hearth_muc_t *muc;
    char *current; /* the conversation lines go to: a bare JID or a room's JID */
    int quit;      /* /quit, end of input, or the session ended for good */
    int exit_code;
    int roster_shown; /* the contact list was printed once after login */
} ui_t;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    term_print(buf);
}

static void notice(const char *line)
{
    term_print(line);
}

static const char *clock_now(char *buf, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(buf, size, "%H:%M", &tm);
    return buf;
}

/* The bare part of a JID, in buf. */
static const char *bare_of(const char *jid, char *buf, size_t size)
{
    const char *slash = strchr(jid, '/');
    size_t n = slash ? (size_t)(slash - jid) : strlen(jid);
    snprintf(buf, size, "%.*s", (int)(n < size ? n : size - 1), jid);
    return buf;
}

static hearth_muc_room_t *room_of(ui_t *ui, const char *jid)
{
    char bare[3100];
    return hearth_muc_room_find(ui->muc, bare_of(jid, bare, sizeof(bare)));
}

static void update_prompt(ui_t *ui)
{
    char p[3200];
    if (ui->current)
        snprintf(p, sizeof(p), "%s> ", ui->current);
    else
        snprintf(p, sizeof(p), "> ");
    term_set_prompt(p);
}

static void set_current(ui_t *ui, const char *jid)
{
    char *c = strdup(jid);
    if (!c)
        return;
    free(ui->current);
    ui->current = c;
    update_prompt(ui);
}

/* "online", "away: lunch", "offline" */
static const char *describe(const hearth_presence_info_t *p, char *buf, size_t size)
{
    if (!p || !p->available)
        return "offline";
    const char *show = p->show == HEARTH_SHOW_NONE ? "online" : hearth_show_name(p->show);
    if (p->status && p->status[0])
        snprintf(buf, size, "%s: %s", show, p->status);
    else
        snprintf(buf, size, "%s", show);
    return buf;
}

static void show_contacts(ui_t *ui)
{
    size_t n = hearth_roster_count(ui->roster);
    say("contacts (%zu):", n);
    for (size_t i = 0; i < n; i++) {
        const hearth_roster_item_t *it = hearth_roster_item_at(ui->roster, i);
        char d[1200];
        const hearth_presence_info_t *best = hearth_presence_best(ui->presence, it->jid);
        say("  %-30s %-16s %-24s %s%s", it->jid, it->name ? it->name : "",
            describe(best, d, sizeof(d)), hearth_subscription_name(it->subscription),
            it->ask ? " (asked)" : "");
    }
    size_t nreq = hearth_presence_request_count(ui->presence);
    for (size_t i = 0; i < nreq; i++)
        say("  request from %s: /accept or /deny it",
            hearth_presence_request_at(ui->presence, i, NULL));
}

/* ---- events of the managers ---- */

static void on_roster_loaded(void *ud, hearth_roster_t *r, int result)
{
    ui_t *ui = ud;
    if (result) {
        say("! the contact list could not be fetched: %s", hearth_strerror(result));
        return;
    }
    if (!ui->roster_shown) {
        ui->roster_shown = 1;
        show_contacts(ui);
    }
}

static void on_roster_added(void *ud, hearth_roster_t *r, const hearth_roster_item_t *it)
{
    ui_t *ui = ud;
    if (ui->roster_shown)
        say("* %s is in your contacts (%s)", it->jid, hearth_subscription_name(it->subscription));
}

static void on_roster_changed(void *ud, hearth_roster_t *r, const hearth_roster_item_t *it,
                              const hearth_roster_item_t *old)
{
    ui_t *ui = ud;
    if (ui->roster_shown && it->subscription != old->subscription)
        say("* %s: subscription %s", it->jid, hearth_subscription_name(it->subscription));
}

static void on_roster_removed(void *ud, hearth_roster_t *r, const hearth_roster_item_t *it)
{
    ui_t *ui = ud;
    if (ui->roster_shown)
        say("* %s is no longer in your contacts", it->jid);
}

static void on_presence_changed(void *ud, hearth_presence_t *p, const hearth_presence_info_t *info,
                                hearth_stanza_t *st)
{
    ui_t *ui = ud;
    if (!st) /* the manager forgetting stale presences at a new session: nothing happened */
        return;
    const char *mine = hearth_client_bare_jid(ui->cn.client);
    if (!strcmp(info->bare, mine))
        return;
    char d[1200];
    say("* %s is %s", info->bare, describe(hearth_presence_best(p, info->bare), d, sizeof(d)));
}

static void on_subscribe_request(void *ud, hearth_presence_t *p, const char *jid,
                                 const char *status)
{
    say("* %s asks to see your presence%s%s: /accept %s or /deny %s", jid, status ? ": " : "",
        status ? status : "", jid, jid);
}

static void on_subscription(void *ud, hearth_presence_t *p, const char *jid,
                            hearth_subscription_change_t change)
{
    switch (change) {
    case HEARTH_SUBSCRIPTION_APPROVED:
        say("* %s lets you see their presence", jid);
        break;
    case HEARTH_SUBSCRIPTION_DENIED:
        say("* %s does not let you see their presence", jid);
        break;
    case HEARTH_SUBSCRIPTION_UNSUBSCRIBED:
        say("* %s no longer sees your presence", jid);
        break;
    }
}

static void on_presence_error(void *ud, hearth_presence_t *p, const char *jid,
                              hearth_stanza_error_t cond, const char *text)
{
    say("! presence of %s: %s%s%s", jid, hearth_stanza_error_name(cond), text ? ": " : "",
        text ? text : "");
}

static int on_chat_message(void *ud, hearth_chat_t *ch, const hearth_message_t *m)
{
    ui_t *ui = ud;
    char t[16], bare[3100];
    hearth_muc_room_t *room = room_of(ui, m->from);
    /* A private message from a room's occupant keeps its nickname. */
    const char *who = room ? m->from : bare_of(m->from, bare, sizeof(bare));
    if (!m->body) {
        if (m->subject)
            say("[%s] %s (subject): %s", clock_now(t, sizeof(t)), who, m->subject);
        return HEARTH_CHAT_RECEIPT;
    }
    say("[%s] %s%s: %s", clock_now(t, sizeof(t)), who, m->delay ? " (delayed)" : "", m->body);
    if (!ui->current)
        set_current(ui, who);
    return HEARTH_CHAT_RECEIPT;
}

static void on_chat_error(void *ud, hearth_chat_t *ch, const char *from, const char *id,
                          hearth_stanza_error_t cond, const char *text)
{
    say("! the message to %s failed: %s%s%s", from, hearth_stanza_error_name(cond),
        text ? ": " : "", text ? text : "");
}

/* ---- rooms ---- */

static void on_room_joined(void *ud, hearth_muc_t *m, hearth_muc_room_t *r, int result,
                           hearth_stanza_error_t cond, int created)
{
    if (result) {
        say("! %s refused you: %s", hearth_muc_room_jid(r),
            result == HEARTH_ESTANZA ? hearth_stanza_error_name(cond) : hearth_strerror(result));
        return;
    }
    /* A room we created stays locked until its owner configures it (XEP-0045 10.1.2): take
     * the default configuration, an instant room, as most clients do. */
    if (created && hearth_muc_instant(r, NULL, NULL))
        say("! %s is new and could not be opened with its default configuration",
            hearth_muc_room_jid(r));
    say("* you are in %s as %s%s (%zu occupants; /who lists them)", hearth_muc_room_jid(r),
        hearth_muc_room_nick(r), created ? ", a new room" : "", hearth_muc_occupant_count(r));
}

static void on_room_occupant(void *ud, hearth_muc_t *m, hearth_muc_room_t *r,
                             const hearth_muc_occupant_t *o, hearth_muc_change_t change,
                             const char *new_nick, int code, hearth_stanza_t *st)
{
    if (!hearth_muc_room_joined(r)) /* those present when we join: /who lists them */
        return;
    if (change == HEARTH_MUC_JOINED)
        say("* %s is in %s", o->nick, hearth_muc_room_jid(r));
    else if (change == HEARTH_MUC_LEFT && new_nick)
        say("* %s is now known as %s in %s", o->nick, new_nick, hearth_muc_room_jid(r));
    else if (change == HEARTH_MUC_LEFT)
        say("* %s left %s%s", o->nick, hearth_muc_room_jid(r),
            code == 307   ? " (kicked)"
            : code == 301 ? " (banned)"
                          : "");
}

static void on_room_message(void *ud, hearth_muc_t *m, hearth_muc_room_t *r, const char *nick,
                            const char *body, const char *delay, hearth_stanza_t *st)
{
    char t[16];
    say("[%s] %s <%s>%s %s", clock_now(t, sizeof(t)), hearth_muc_room_jid(r), nick ? nick : "",
        delay ? " (history)" : "", body);
}

static void on_room_subject(void *ud, hearth_muc_t *m, hearth_muc_room_t *r, const char *nick,
                            const char *subject)
{
    say("* subject of %s%s%s: %s", hearth_muc_room_jid(r), nick ? " set by " : "", nick ? nick : "",
        subject[0] ? subject : "(none)");
}

static void on_room_left(void *ud, hearth_muc_t *m, hearth_muc_room_t *r,
                         hearth_muc_left_reason_t reason, const char *text)
{
    static const char *const WHY[] = {
        [HEARTH_MUC_LEFT_BY_US] = "left",
        [HEARTH_MUC_LEFT_KICKED] = "kicked",
        [HEARTH_MUC_LEFT_BANNED] = "banned",
        [HEARTH_MUC_LEFT_REMOVED] = "removed from the members",
        [HEARTH_MUC_LEFT_SHUTDOWN] = "the service shut down",
        [HEARTH_MUC_LEFT_DESTROYED] = "the room was destroyed",
        [HEARTH_MUC_LEFT_OFFLINE] = "offline",
    };
    ui_t *ui = ud;
    if (ui->quit)
        return;
    say("* out of %s: %s%s%s", hearth_muc_room_jid(r),
        (unsigned)reason < sizeof(WHY) / sizeof(*WHY) && WHY[reason] ? WHY[reason] : "gone",
        text ? ": " : "", text ? text : "");
}

static void on_room_error(void *ud, hearth_muc_t *m, hearth_muc_room_t *r, const char *id,
                          hearth_stanza_error_t cond, const char *text)
{
    say("! %s: %s%s%s", r ? hearth_muc_room_jid(r) : "a room", hearth_stanza_error_name(cond),
        text ? ": " : "", text ? text : "");
}

static void on_room_invitation(void *ud, hearth_muc_t *m, const char *room_jid, const char *inviter,
                               const char *reason, const char *password, int direct)
{
    say("* %s invites you to %s%s%s: /join %s NICK%s%s", inviter, room_jid, reason ? ": " : "",
        reason ? reason : "", room_jid, password ? " " : "", password ? password : "");
}

/* ---- the connection's ups and downs ---- */

static void on_online(void *ud, hearth_client_t *c, const char *jid, int resumed)
{
    ui_t *ui = ud;
    if (ui->roster_shown)
        say("* online again as %s%s", jid, resumed ? " (session resumed)" : "");
}

static void on_disconnected(void *ud, hearth_client_t *c, const hearth_disconnect_info_t *info)
{
    ui_t *ui = ud;
    if (ui->quit)
        return;
    if (info->will_reconnect) {
        say("! disconnected (%s): trying again in %u s", info->text,
            (info->reconnect_delay_ms + 999) / 1000);
        return;
    }
    ui->cn.reason = info->reason;
    snprintf(ui->cn.why, sizeof(ui->cn.why), "%s", info->text);
    snprintf(ui->cn.condition, sizeof(ui->cn.condition), "%s",
             info->condition ? info->condition : "");
    say("! disconnected for good: %s", info->text);
    ui->exit_code = exit_code_of(info->reason);
    if (ui->exit_code == EXIT_OK)
        ui->exit_code = EXIT_FAILURE_OTHER;
    ui->quit = 1;
    term_stop();
}

static const hearth_client_events_t UI_CLIENT_EVENTS = {
    .online = on_online,
    .disconnected = on_disconnected,
};

/* ---- commands ---- */

static const char COMMANDS_HELP[] =
    "commands:\n"
    "  /msg JID [TEXT]        switch to a conversation (and send TEXT)\n"
    "  /add JID [NAME]        add a contact and ask to see its presence\n"
    "  /accept JID            let JID see your presence (and ask for its own)\n"
    "  /deny JID              refuse JID's request, or revoke its subscription\n"
    "  /remove JID            remove a contact\n"
    "  /roster                the contact list with presence\n"
    "  /status SHOW [TEXT]    online, chat, away, xa, dnd, or offline\n"
    "  /join ROOM NICK [PASSWORD]   enter a room (it becomes the conversation)\n"
    "  /leave                 leave the current room\n"
    "  /who                   the current room's occupants\n"
    "  /quit                  log out and leave (Ctrl-D too)\n"
    "a line without / goes to the current conversation or room";

/* Splits the next word off *s (spaces between words); NULL when none. */
static char *next_word(char **s)
{
    char *p = *s;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!*p)
        return NULL;
    char *w = p;
    while (*p && *p != ' ' && *p != '\t')
        p++;
    if (*p)
        *p++ = '\0';
    while (*p == ' ' || *p == '\t')
        p++;
    *s = p;
    return w;
}

static int valid_jid(const char *s, int need_node)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    int ok = hearth_jid_parse(s, strlen(s), &j, NULL) == 0 && (!need_node || j.node);
    hearth_jid_clear(&j);
    return ok;
}

static void on_iq_answer(void *ud, hearth_client_t *c, int result, hearth_stanza_t *response)
{
    const char *what = ud;
    if (result) {
        const char *text = NULL;
        hearth_stanza_error_t cond =
            response ? hearth_stanza_error(response, &text) : HEARTH_STANZA_ERR_NONE;
        say("! %s failed: %s%s%s", what,
            cond != HEARTH_STANZA_ERR_NONE ? hearth_stanza_error_name(cond)
                                           : hearth_strerror(result),
            text ? ": " : "", text ? text : "");
    }
}

static void send_text(ui_t *ui, const char *to, const char *text)
{
    char t[16];
    hearth_muc_room_t *room = room_of(ui, to);
    int err;
    if (room && !strchr(to, '/')) {
        err = hearth_muc_say(room, text, NULL, 0); /* the room echoes it back to us */
    } else {
        hearth_chat_options_t o = {.state = HEARTH_CHAT_STATE_ACTIVE};
        err = hearth_chat_send(ui->chat, to, text, &o, NULL, 0);
        if (!err)
            say("[%s] me -> %s: %s", clock_now(t, sizeof(t)), to, text);
    }
    if (err)
        say("! not sent to %s: %s", to, hearth_strerror(err));
}

static void cmd_status(ui_t *ui, char *args)
{
    char *show = next_word(&args);
    if (!show) {
        char d[1200];
        say("your status: %s", describe(hearth_presence_mine(ui->presence), d, sizeof(d)));
        return;
    }
    const char *text = args[0] ? args : NULL;
    int err;
    if (!strcmp(show, "offline")) {
        err = hearth_presence_set_unavailable(ui->presence, text);
    } else {
        hearth_show_t s = hearth_show_parse(show);
        if (s == HEARTH_SHOW_NONE && strcmp(show, "online")) {
            say("! /status takes online, chat, away, xa, dnd or offline, not '%s'", show);
            return;
        }
        err = hearth_presence_set(ui->presence, s, text, 0);
    }
    if (err) {
        say("! status not set: %s", hearth_strerror(err));
        return;
    }
    say("* your status: %s%s%s", show, text ? ": " : "", text ? text : "");
}

static void cmd_join(ui_t *ui, char *args)
{
    char *room = next_word(&args), *nick = next_word(&args), *password = next_word(&args);
    if (!room || !nick) {
        say("! usage: /join ROOM NICK [PASSWORD]");
        return;
    }
    hearth_muc_room_t *old = room_of(ui, room);
    if (old) { /* in it, or joining it: it becomes the conversation */
        set_current(ui, hearth_muc_room_jid(old));
        return;
    }
    if (hearth_muc_room_count(ui->muc) >= UI_MAX_ROOMS) {
        say("! in %d rooms already: /leave one first", UI_MAX_ROOMS);
        return;
    }
    hearth_muc_join_options_t o = {.password = password, .history_stanzas = UI_ROOM_HISTORY};
    hearth_muc_room_t *r;
    int err = hearth_muc_join(ui->muc, room, nick, &o, &r);
    if (err) {
        say("! cannot join %s: %s", room,
            err == HEARTH_EINVAL ? "not a room JID (room@service) and nickname"
                                 : hearth_strerror(err));
        return;
    }
    set_current(ui, hearth_muc_room_jid(r));
    say("* joining %s as %s", hearth_muc_room_jid(r), hearth_muc_room_nick(r));
}

static void cmd_who(ui_t *ui)
{
    hearth_muc_room_t *r = ui->current ? room_of(ui, ui->current) : NULL;
    if (!r) {
        say("! the current conversation is no room");
        return;
    }
    size_t n = hearth_muc_occupant_count(r);
    say("occupants of %s (%zu):", hearth_muc_room_jid(r), n);
    for (size_t i = 0; i < n; i++) {
        const hearth_muc_occupant_t *o = hearth_muc_occupant_at(r, i);
        say("  %-20s %-12s %s", o->nick, hearth_muc_role_name(o->role),
            hearth_muc_affiliation_name(o->affiliation));
    }
    const char *subject = hearth_muc_room_subject(r);
    if (subject)
        say("subject: %s", subject[0] ? subject : "(none)");
}

static void quit(ui_t *ui)
{
    ui->quit = 1;
    term_stop();
    /* From the last: a room left while offline goes at once, and the others keep their place. */
    for (size_t i = hearth_muc_room_count(ui->muc); i-- > 0;)
        (void)hearth_muc_leave(hearth_muc_room_at(ui->muc, i), NULL);
    (void)hearth_client_disconnect(ui->cn.client);
}

static void on_line(void *ud, const char *line)
{
    ui_t *ui = ud;
    if (!line) {
        quit(ui);
        return;
    }
    char buf[INPUT_LINE_MAX];
    snprintf(buf, sizeof(buf), "%s", line);
    char *args = buf;
    while (*args == ' ')
        args++;
    if (!*args)
        return;
    if (*args != '/') {
        if (!ui->current)
            say("! no conversation yet: /msg JID TEXT, or /join ROOM NICK");
        else
            send_text(ui, ui->current, args);
        return;
    }
    char *cmd = next_word(&args);
    int err = 0;
    if (!strcmp(cmd, "/quit") || !strcmp(cmd, "/exit")) {
        quit(ui);
    } else if (!strcmp(cmd, "/help")) {
        say("%s", COMMANDS_HELP);
    } else if (!strcmp(cmd, "/roster") || !strcmp(cmd, "/contacts")) {
        show_contacts(ui);
    } else if (!strcmp(cmd, "/msg")) {
        char *to = next_word(&args);
        if (!to || !valid_jid(to, 0)) {
            say("! usage: /msg JID [TEXT]");
            return;
        }
        set_current(ui, to);
        if (args[0])
            send_text(ui, to, args);
    } else if (!strcmp(cmd, "/add")) {
        char *jid = next_word(&args);
        if (!jid || !valid_jid(jid, 0)) {
            say("! usage: /add JID [NAME]");
            return;
        }
        err = hearth_roster_set(ui->roster, jid, args[0] ? args : NULL, NULL, 0, on_iq_answer,
                                "adding the contact");
        if (!err)
            err = hearth_presence_subscribe(ui->presence, jid, NULL);
        if (!err)
            say("* asked %s to let you see their presence", jid);
    } else if (!strcmp(cmd, "/accept")) {
        char *jid = next_word(&args);
        if (!jid || !valid_jid(jid, 0)) {
            say("! usage: /accept JID");
            return;
        }
        err = hearth_presence_approve(ui->presence, jid);
        /* Mutual by default, as people expect: ask for theirs unless we have it or asked. */
        const hearth_roster_item_t *it = hearth_roster_find(ui->roster, jid);
        if (!err && !(it && (it->ask || it->subscription == HEARTH_SUB_TO ||
                             it->subscription == HEARTH_SUB_BOTH)))
            err = hearth_presence_subscribe(ui->presence, jid, NULL);
        if (!err)
            say("* %s may see your presence", jid);
    } else if (!strcmp(cmd, "/deny")) {
        char *jid = next_word(&args);
        if (!jid || !valid_jid(jid, 0)) {
            say("! usage: /deny JID");
            return;
        }
        err = hearth_presence_deny(ui->presence, jid);
        if (!err)
            say("* %s may not see your presence", jid);
    } else if (!strcmp(cmd, "/remove")) {
        char *jid = next_word(&args);
        if (!jid || !valid_jid(jid, 0)) {
            say("! usage: /remove JID");
            return;
        }
        err = hearth_roster_remove(ui->roster, jid, on_iq_answer, "removing the contact");
    } else if (!strcmp(cmd, "/status")) {
        cmd_status(ui, args);
    } else if (!strcmp(cmd, "/join")) {
        cmd_join(ui, args);
    } else if (!strcmp(cmd, "/leave")) {
        hearth_muc_room_t *r = ui->current ? room_of(ui, ui->current) : NULL;
        if (!r) {
            say("! the current conversation is no room you are in");
            return;
        }
        err = hearth_muc_leave(r, NULL);
        free(ui->current);
        ui->current = NULL;
        update_prompt(ui);
    } else if (!strcmp(cmd, "/who")) {
        cmd_who(ui);
    } else {
        say("! unknown command %s (/help lists them)", cmd);
    }
    if (err)
        say("! %s: %s", cmd, hearth_strerror(err));
}

/* ---- the mode ---- */

/* $XDG_STATE_HOME/hearth/history, else ~/.local/state/hearth/history; NULL when no home. */
static char *history_path(void)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    char buf[PATH_MAX];
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(buf, sizeof(buf), "%s/hearth/history", xdg);
    else if (home && home[0])
        n = snprintf(buf, sizeof(buf), "%s/.local/state/hearth/history", home);
    else
        return NULL;
    return n > 0 && (size_t)n < sizeof(buf) ? strdup(buf) : NULL;
}

static int ui_done(void *ud)
{
    ui_t *ui = ud;
    return ui->quit && hearth_client_state(ui->cn.client) == HEARTH_CLIENT_IDLE;
}

static int make_managers(ui_t *ui)
{
    hearth_roster_events_t rev = {
        .loaded = on_roster_loaded,
        .added = on_roster_added,
        .changed = on_roster_changed,
        .removed = on_roster_removed,
    };
    hearth_presence_events_t pev = {
        .changed = on_presence_changed,
        .subscribe_request = on_subscribe_request,
        .subscription = on_subscription,
        .error = on_presence_error,
    };
    hearth_chat_events_t cev = {.message = on_chat_message, .error = on_chat_error};
    hearth_muc_events_t mev = {
        .joined = on_room_joined,
        .occupant = on_room_occupant,
        .message = on_room_message,
        .subject = on_room_subject,
        .left = on_room_left,
        .invitation = on_room_invitation,
        .error = on_room_error,
    };
    hearth_client_t *c = ui->cn.client;
    if (hearth_roster_new(c, NULL, &rev, ui, &ui->roster) ||
        hearth_presence_new(c, NULL, &pev, ui, &ui->presence) ||
        hearth_chat_new(c, NULL, &cev, ui, &ui->chat) || hearth_muc_new(c, &mev, ui, &ui->muc) ||
        hearth_client_add_listener(c, &UI_CLIENT_EVENTS, ui, NULL))
        return -1;
    return 0;
}

int cmd_interactive(const options_t *opts)
{
    setlocale(LC_CTYPE, ""); /* libedit edits characters of the terminal's encoding */
    ui_t ui = {0};
    conn_setup_t setup = {.need_password = 1, .reconnect = 1};
    int rc = conn_init(&ui.cn, opts, &setup);
    if (rc != EXIT_OK)
        return rc;
    if (make_managers(&ui)) {
        fail("out of memory");
        conn_close(&ui.cn);
        return EXIT_FAILURE_OTHER;
    }
    rc = conn_connect(&ui.cn);
    if (rc != EXIT_OK) {
        conn_close(&ui.cn);
        return rc;
    }
    char *hist = history_path();
    notice_sink = notice;
    int err = term_start(hearth_ctx_loop(ui.cn.ctx), hist, on_line, &ui);
    free(hist);
    if (err) {
        notice_sink = NULL;
        fail("cannot read the terminal: %s", uv_strerror(err));
        conn_close(&ui.cn);
        return EXIT_FAILURE_OTHER;
    }
    say("hearth: online as %s (/help for commands)", hearth_client_jid(ui.cn.client));
    update_prompt(&ui);
    err = hearth_ctx_run_until(ui.cn.ctx, ui_done, &ui, 0);
    term_stop();
    notice_sink = NULL;
    free(ui.current);
    rc = ui.exit_code;
    conn_close(&ui.cn);
    return rc;
}
