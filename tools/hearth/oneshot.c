/* hearth's commands for scripts: send one message, print the roster, join a room (and stay,
 * reading stdin, with --stay), register the account. Each logs in, does one thing, logs out in
 * order, and returns an exit code of hearth.h. Output on stdout is meant for other programs:
 * one record per line, fields separated by tabs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "hearth.h"
#include "hearth/muc.h"
#include "hearth/roster.h"

/* ---- send ---- */

typedef struct send_state {
    hearth_client_t *client;
    int pinged; /* the ping after the message came back: the server has handled it */
    int error;  /* a message error came back */
    char error_text[512];
} send_state_t;

static int on_message_error(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    send_state_t *s = ud;
    const char *text = NULL;
    hearth_stanza_error_t cond = hearth_stanza_error(st, &text);
    if (!s->error) {
        s->error = 1;
        snprintf(s->error_text, sizeof(s->error_text), "%s%s%s", hearth_stanza_error_name(cond),
                 text ? ": " : "", text ? text : "");
    }
    return HEARTH_HANDLED;
}

static void on_ping(void *ud, hearth_client_t *c, int result, hearth_stanza_t *response)
{
    send_state_t *s = ud;
    /* Any answer will do, an error too (an account that does not exist); only none is bad. */
    s->pinged = result == 0 || result == HEARTH_ESTANZA ? 1 : result;
}

static int send_done(void *ud)
{
    send_state_t *s = ud;
    hearth_client_info_t info;
    hearth_client_info(s->client, &info);
    /* With stream management, the server's ack says it handled the message (hearthd counts a
     * routed message once its destination has taken it, or bounced it: the error comes first). */
    return s->pinged < 0 || (s->pinged > 0 && (!info.sm_enabled || info.sm_unacked == 0));
}

int cmd_send(const options_t *opts, const char *to, const char *text)
{
    conn_t cn;
    conn_setup_t setup = {.need_password = 1, .no_initial_presence = 1};
    int rc = conn_init(&cn, opts, &setup);
    if (rc != EXIT_OK)
        return rc;
    send_state_t s = {.client = cn.client};
    hearth_filter_t f = {.kinds = HEARTH_STANZA_MESSAGE, .type = "error"};
    if (hearth_client_add_handler(cn.client, &f, 0, on_message_error, &s, NULL)) {
        conn_close(&cn);
        return EXIT_FAILURE_OTHER;
    }
    rc = conn_connect(&cn);
    if (rc != EXIT_OK) {
        conn_close(&cn);
        return rc;
    }
    hearth_stanza_t *m = hearth_stanza_new_message(to, "chat", text);
    int err = m ? hearth_client_send(cn.client, m) : HEARTH_EINVAL;
    if (err == HEARTH_EINVAL) {
        fail("'%s' is not a JID", to);
        conn_close(&cn);
        return EXIT_USAGE;
    }
    /* Then a ping to the recipient's bare JID, which travels the message's path (to the
     * recipient's server, which answers for the account), and the server's ack when it does
     * stream management: once both are back, so is any error the message caused at once. */
    char bare[3100];
    const char *slash = strchr(to, '/');
    snprintf(bare, sizeof(bare), "%.*s", slash ? (int)(slash - to) : (int)strlen(to), to);
    if (!err)
        err = hearth_client_ping(cn.client, bare, 0, on_ping, &s);
    if (!err)
        err = hearth_ctx_run_until(cn.ctx, send_done, &s, cn.timeout_ms);
    if (!err && s.pinged < 0)
        err = s.pinged == HEARTH_ECLOSED && cn.reason ? cn.reason : s.pinged;
    if (err) {
        rc = err == HEARTH_ETIMEOUT ? EXIT_TIMEOUT : EXIT_FAILURE_OTHER;
        fail("the message to %s may not have been sent: %s", to,
             cn.why[0] ? cn.why : hearth_strerror(err));
    } else if (s.error) {
        rc = EXIT_REFUSED;
        fail("the message to %s was refused: %s", to, s.error_text);
    }
    conn_close(&cn);
    return rc;
}

/* ---- roster ---- */

static int roster_done(void *ud)
{
    return *(int *)ud != 1;
}

static void on_roster_loaded(void *ud, hearth_roster_t *r, int result)
{
    *(int *)ud = result == 0 ? 0 : result;
}

int cmd_roster(const options_t *opts)
{
    conn_t cn;
    conn_setup_t setup = {.need_password = 1, .no_initial_presence = 1};
    int rc = conn_init(&cn, opts, &setup);
    if (rc != EXIT_OK)
        return rc;
    int state = 1; /* 1 loading; then 0 or the error */
    hearth_roster_events_t ev = {.loaded = on_roster_loaded};
    hearth_roster_t *roster;
    hearth_roster_config_t rcfg = {.no_versioning = 1};
    if (hearth_roster_new(cn.client, &rcfg, &ev, &state, &roster)) {
        conn_close(&cn);
        return EXIT_FAILURE_OTHER;
    }
    rc = conn_connect(&cn);
    if (rc != EXIT_OK) {
        conn_close(&cn);
        return rc;
    }
    int err = hearth_ctx_run_until(cn.ctx, roster_done, &state, cn.timeout_ms);
    if (!err)
        err = state;
    if (err) {
        fail("cannot fetch the roster: %s", hearth_strerror(err));
        conn_close(&cn);
        return exit_code_of(err);
    }
    /* One contact per line: JID, subscription (with "+ask" while our request is pending),
     * name, groups separated by commas. */
    for (size_t i = 0; i < hearth_roster_count(roster); i++) {
        const hearth_roster_item_t *it = hearth_roster_item_at(roster, i);
        printf("%s\t%s%s\t%s\t", it->jid, hearth_subscription_name(it->subscription),
               it->ask ? "+ask" : "", it->name ? it->name : "");
        for (size_t g = 0; g < it->ngroups; g++)
            printf("%s%s", g ? "," : "", it->groups[g]);
        putchar('\n');
    }
    if (fflush(stdout) != 0) {
        fail("cannot write the roster: %s", strerror(errno));
        rc = EXIT_FAILURE_OTHER;
    }
    conn_close(&cn);
    return rc;
}

/* ---- muc join ---- */

typedef struct muc_state {
    conn_t *cn;
    hearth_muc_room_t *room; /* NULL once the manager let it go */
    int joined;              /* our presence came back */
    int subject;             /* the subject came (it follows the history: the join is complete) */
    int refused;             /* the room said no */
    int out;                 /* left (or kicked) */
    int stay;
    char error[512];
    uv_poll_t input;
    int input_open;
    char line[INPUT_LINE_MAX];
    size_t line_len;
} muc_state_t;

static void muc_on_joined(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, int result,
                          hearth_stanza_error_t cond, int created)
{
    muc_state_t *s = ud;
    if (result) {
        s->refused = 1;
        s->room = NULL; /* freed after this event */
        snprintf(s->error, sizeof(s->error), "%s",
                 result == HEARTH_ESTANZA ? hearth_stanza_error_name(cond)
                                          : hearth_strerror(result));
        return;
    }
    s->joined = 1;
    /* A room we created stays locked until its owner configures it (XEP-0045 10.1.2): take
     * the default configuration, an instant room. */
    if (created)
        (void)hearth_muc_instant(room, NULL, NULL);
}

static void muc_on_error(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *id,
                         hearth_stanza_error_t cond, const char *text)
{
    fprintf(stderr, "hearth: the room refused a message: %s%s%s\n", hearth_stanza_error_name(cond),
            text ? ": " : "", text ? text : "");
}

static void muc_on_subject(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *nick,
                           const char *subject)
{
    muc_state_t *s = ud;
    if (s->subject && s->stay) {
        printf("subject\t%s\t%s\n", nick ? nick : "", subject);
        fflush(stdout);
    }
    s->subject = 1;
}

static void muc_on_message(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *nick,
                           const char *body, const char *delay, hearth_stanza_t *st)
{
    muc_state_t *s = ud;
    if (s->stay && s->subject) {
        printf("message\t%s\t%s\n", nick ? nick : "", body);
        fflush(stdout);
    }
}

static void muc_on_occupant(void *ud, hearth_muc_t *m, hearth_muc_room_t *room,
                            const hearth_muc_occupant_t *o, hearth_muc_change_t change,
                            const char *new_nick, int code, hearth_stanza_t *st)
{
    muc_state_t *s = ud;
    if (s->stay && s->subject && change != HEARTH_MUC_CHANGED) {
        printf("%s\t%s\n", change == HEARTH_MUC_JOINED ? "join" : "leave", o->nick);
        fflush(stdout);
    }
}

static void muc_on_left(void *ud, hearth_muc_t *m, hearth_muc_room_t *room,
                        hearth_muc_left_reason_t reason, const char *text)
{
    muc_state_t *s = ud;
    s->out = 1;
    s->room = NULL; /* freed after this event */
    if (reason != HEARTH_MUC_LEFT_BY_US)
        fprintf(stderr, "hearth: out of the room: %s%s%s\n",
                reason == HEARTH_MUC_LEFT_KICKED    ? "kicked"
                : reason == HEARTH_MUC_LEFT_BANNED  ? "banned"
                : reason == HEARTH_MUC_LEFT_OFFLINE ? "the connection ended"
                                                    : "the room sent us away",
                text ? ": " : "", text ? text : "");
}

static int muc_join_done(void *ud)
{
    muc_state_t *s = ud;
    return s->refused || s->out || (s->joined && s->subject) || s->cn->gone;
}

static int muc_left_done(void *ud)
{
    muc_state_t *s = ud;
    return s->out || s->cn->gone;
}

static void stop_input(muc_state_t *s)
{
    if (s->input_open) {
        uv_poll_stop(&s->input);
        uv_close((uv_handle_t *)&s->input, NULL);
        s->input_open = 0;
    }
}

static void say_line(muc_state_t *s)
{
    s->line[s->line_len] = '\0';
    if (s->line_len && s->room && hearth_muc_say(s->room, s->line, NULL, 0))
        fprintf(stderr, "hearth: cannot send to the room\n");
    s->line_len = 0;
}

/* stdin with --stay: each line to the room; end of input leaves. */
static void on_input(uv_poll_t *h, int status, int events)
{
    muc_state_t *s = h->data;
    char buf[4096];
    ssize_t n = status < 0 ? -1 : read(STDIN_FILENO, buf, sizeof(buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        say_line(s);
        stop_input(s);
        if (s->room)
            (void)hearth_muc_leave(s->room, NULL);
        return;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n')
            say_line(s);
        else if (s->line_len + 1 < sizeof(s->line))
            s->line[s->line_len++] = buf[i];
    }
}

int cmd_muc_join(const options_t *opts, const char *room, const char *nick)
{
    conn_t cn;
    conn_setup_t setup = {.need_password = 1, .no_initial_presence = 1};
    int rc = conn_init(&cn, opts, &setup);
    if (rc != EXIT_OK)
        return rc;
    muc_state_t s = {.cn = &cn, .stay = opts->stay};
    hearth_muc_events_t ev = {
        .joined = muc_on_joined,
        .occupant = muc_on_occupant,
        .message = muc_on_message,
        .subject = muc_on_subject,
        .left = muc_on_left,
        .error = muc_on_error,
    };
    hearth_muc_t *muc;
    if (hearth_muc_new(cn.client, &ev, &s, &muc)) {
        conn_close(&cn);
        return EXIT_FAILURE_OTHER;
    }
    rc = conn_connect(&cn);
    if (rc != EXIT_OK) {
        conn_close(&cn);
        return rc;
    }
    hearth_muc_join_options_t jo = {.password = opts->room_password, .no_history = 1};
    int err = hearth_muc_join(muc, room, nick, &jo, &s.room);
    if (err == HEARTH_EINVAL) {
        fail("'%s' is not a room JID (room@service) or '%s' is no nickname", room, nick);
        conn_close(&cn);
        return EXIT_USAGE;
    }
    if (!err)
        err = hearth_ctx_run_until(cn.ctx, muc_join_done, &s, cn.timeout_ms);
    if (!err && cn.gone)
        err = cn.reason ? cn.reason : HEARTH_ECLOSED;
    if (err) {
        fail("cannot join %s: %s", room,
             err == HEARTH_ETIMEOUT ? "no answer from the room" : hearth_strerror(err));
        rc = exit_code_of(err);
    } else if (s.refused || !s.room) {
        fail("the room %s refused us: %s", room, s.refused ? s.error : "sent us away");
        rc = EXIT_REFUSED;
    } else {
        /* The occupants (one per line: nick, role, affiliation, real JID when shown), then the
         * subject. */
        for (size_t i = 0; i < hearth_muc_occupant_count(s.room); i++) {
            const hearth_muc_occupant_t *o = hearth_muc_occupant_at(s.room, i);
            printf("occupant\t%s\t%s\t%s\t%s\n", o->nick, hearth_muc_role_name(o->role),
                   hearth_muc_affiliation_name(o->affiliation), o->jid ? o->jid : "");
        }
        const char *subject = hearth_muc_room_subject(s.room);
        printf("subject\t%s\n", subject ? subject : "");
        fflush(stdout);
        if (opts->stay) {
            if (uv_poll_init(hearth_ctx_loop(cn.ctx), &s.input, STDIN_FILENO) == 0) {
                s.input.data = &s;
                s.input_open = 1;
                uv_poll_start(&s.input, UV_READABLE, on_input);
            } else {
                (void)hearth_muc_leave(s.room, NULL); /* stdin is no pipe or terminal */
            }
            /* No deadline while staying: the room is left at the end of input. */
            err = hearth_ctx_run_until(cn.ctx, muc_left_done, &s, 0);
            stop_input(&s);
            if (cn.gone && !s.out) {
                fail("the connection ended: %s", cn.why[0] ? cn.why : "closed");
                rc = exit_code_of(cn.reason ? cn.reason : HEARTH_ECLOSED);
            }
        } else if (!hearth_muc_leave(s.room, NULL) &&
                   hearth_ctx_run_until(cn.ctx, muc_left_done, &s, 5000)) {
            /* No answer to the leave: the logout below ends the occupancy all the same. */
        }
    }
    stop_input(&s);
    conn_close(&cn); /* frees the manager with the client */
    return rc;
}

/* ---- register ---- */

int cmd_register(const options_t *opts)
{
    conn_t cn;
    conn_setup_t setup = {
        .need_password = 1,
        .no_initial_presence = 1,
        .register_mode = HEARTH_REGISTER_CREATE_NEW,
    };
    int rc = conn_init(&cn, opts, &setup);
    if (rc != EXIT_OK)
        return rc;
    rc = conn_connect(&cn);
    if (rc == EXIT_OK)
        printf("registered %s\n", hearth_client_bare_jid(cn.client));
    conn_close(&cn);
    return rc;
}
