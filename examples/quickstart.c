/* The libhearth quick start: what a typical Smack client session does, in C. It logs in,
 * lists the roster, sends its presence and a chat message, creates a room and submits the
 * room's configuration form, invites a contact, leaves and logs out. Blocking style: the
 * hearth_*_wait wrappers and hearth_ctx_run_until run the loop until each step is done.
 *
 *   quickstart [--host H] [--port P] [--ca FILE] JID PASSWORD CONTACT ROOM
 *
 * Build against an installed libhearth: cc quickstart.c $(pkg-config --cflags --libs hearth) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hearth/chat.h>
#include <hearth/client.h>
#include <hearth/muc.h>
#include <hearth/presence.h>
#include <hearth/roster.h>

/* What the callbacks tell the main program. */
struct session {
    hearth_muc_room_t *room;
    int joined;  /* 0: waiting, 1: in the room, -1: refused */
    int created; /* the room is new: configure it */
    int form;    /* 0: waiting, 1: the form came, -1: no form */
    int config;  /* 0: waiting, 1: accepted, -1: refused */
};

static int roster_loaded(void *ud)
{
    return hearth_roster_loaded(ud);
}

static int room_joined(void *ud)
{
    return ((struct session *)ud)->joined != 0;
}

static int form_done(void *ud)
{
    return ((struct session *)ud)->form != 0;
}

static int config_done(void *ud)
{
    return ((struct session *)ud)->config != 0;
}

static void on_joined(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, int result,
                      hearth_stanza_error_t cond, int created)
{
    (void)m;
    struct session *s = ud;
    if (result) {
        fprintf(stderr, "cannot join %s: %s\n", hearth_muc_room_jid(room),
                hearth_stanza_error_name(cond));
        s->room = NULL; /* freed after this returns */
        s->joined = -1;
        return;
    }
    s->joined = 1;
    s->created = created;
}

static void on_configured(void *ud, hearth_client_t *c, int result, hearth_stanza_t *resp)
{
    (void)c;
    struct session *s = ud;
    if (result == HEARTH_ESTANZA)
        fprintf(stderr, "configuration refused: %s\n",
                hearth_stanza_error_name(hearth_stanza_error(resp, NULL)));
    s->config = result ? -1 : 1;
}

/* The room's configuration form: print it, then answer it with the settings we want. Fields
 * the form does not have are not sent (each server has its own set). */
static void on_form(void *ud, hearth_muc_t *m, const char *room, int result,
                    const hearth_form_t *form)
{
    (void)m;
    struct session *s = ud;
    if (result) {
        fprintf(stderr, "no configuration form from %s: %s\n", room, hearth_strerror(result));
        s->form = -1;
        return;
    }
    printf("configuration form of %s: %zu fields\n", room, form->nfields);
    static const char *const wanted[][2] = {
        {"muc#roomconfig_roomname", "Quick start"}, {"muc#roomconfig_persistentroom", "1"},
        {"muc#roomconfig_maxusers", "20"},          {"muc#roomconfig_membersonly", "0"},
        {"muc#roomconfig_allowinvites", "1"},       {"muc#roomconfig_enablelogging", "1"},
    };
    hearth_form_field_t fields[6];
    size_t n = 0;
    for (size_t i = 0; i < 6; i++) {
        if (!hearth_form_field(form, wanted[i][0]))
            continue;
        fields[n++] =
            (hearth_form_field_t){.var = wanted[i][0], .values = &wanted[i][1], .nvalues = 1};
    }
    hearth_form_t answer = {.type = HEARTH_FORM_SUBMIT, .fields = fields, .nfields = n};
    s->form = 1;
    if (hearth_muc_submit_form(s->room, &answer, on_configured, s) != 0)
        s->config = -1;
}

static void on_subject(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *nick,
                       const char *subject)
{
    (void)ud;
    (void)m;
    (void)nick;
    if (*subject)
        printf("subject of %s: %s\n", hearth_muc_room_jid(room), subject);
}

static void on_declined(void *ud, hearth_muc_t *m, const char *room, const char *from,
                        const char *reason)
{
    (void)ud;
    (void)m;
    printf("%s declined the invitation to %s: %s\n", from, room, reason ? reason : "");
}

static int usage(const char *prog)
{
    fprintf(stderr, "usage: %s [--host H] [--port P] [--ca FILE] JID PASSWORD CONTACT ROOM\n",
            prog);
    return 2;
}

int main(int argc, char **argv)
{
    hearth_client_config_t cfg = {
        /* The application sends its own presence, with a status, once the roster is in. */
        .no_initial_presence = 1,
        /* Ping the server after a minute of silence, as the Smack client does. */
        .ping_interval_ms = 60000,
    };
    const char *args[4];
    int nargs = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--host") && i + 1 < argc)
            cfg.host = argv[++i];
        else if (!strcmp(argv[i], "--port") && i + 1 < argc)
            cfg.port = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ca") && i + 1 < argc)
            cfg.tls_ca_file = argv[++i];
        else if (nargs < 4 && argv[i][0] != '-')
            args[nargs++] = argv[i];
        else
            return usage(argv[0]);
    }
    if (nargs != 4)
        return usage(argv[0]);
    cfg.jid = args[0];
    cfg.password = args[1];
    const char *contact = args[2], *room_jid = args[3];

    /* 1. A context, a client and its managers; then log in. */
    hearth_ctx_t *ctx;
    hearth_client_t *c;
    hearth_roster_t *roster;
    hearth_presence_t *presence;
    hearth_chat_t *chat;
    hearth_muc_t *muc;
    struct session s = {0};
    hearth_muc_events_t muc_events = {
        .joined = on_joined, .subject = on_subject, .declined = on_declined};
    int rc = hearth_ctx_new(NULL, &ctx);
    if (rc) {
        fprintf(stderr, "no context: %s\n", hearth_strerror(rc));
        return 1;
    }
    rc = hearth_client_new(ctx, &cfg, NULL, NULL, &c);
    if (!rc)
        rc = hearth_roster_new(c, NULL, NULL, NULL, &roster);
    if (!rc)
        rc = hearth_presence_new(c, NULL, NULL, NULL, &presence);
    if (!rc)
        rc = hearth_chat_new(c, NULL, NULL, NULL, &chat);
    if (!rc)
        rc = hearth_muc_new(c, &muc_events, &s, &muc);
    if (!rc)
        rc = hearth_client_connect_wait(c, 30000);
    if (rc) {
        fprintf(stderr, "cannot log in: %s\n", hearth_strerror(rc));
        hearth_ctx_free(ctx);
        return 1;
    }
    printf("online as %s\n", hearth_client_jid(c));

    /* 2. The roster is fetched at login: wait for it and list it. */
    rc = hearth_ctx_run_until(ctx, roster_loaded, roster, 10000);
    if (rc)
        goto fail;
    printf("roster: %zu contacts\n", hearth_roster_count(roster));
    for (size_t i = 0; i < hearth_roster_count(roster); i++) {
        const hearth_roster_item_t *it = hearth_roster_item_at(roster, i);
        printf("  %s%s%s%s (%s%s)\n", it->jid, it->name ? " \"" : "", it->name ? it->name : "",
               it->name ? "\"" : "", hearth_subscription_name(it->subscription),
               it->ask ? ", asked" : "");
    }

    /* 3. Available, with a status. */
    rc = hearth_presence_set(presence, HEARTH_SHOW_NONE, "Hello from libhearth", 0);
    if (rc)
        goto fail;

    /* 4. A chat message in a thread, asking for a receipt. */
    char thread[33], id[64];
    hearth_chat_options_t opts = {
        .thread = hearth_chat_new_thread(chat, thread, sizeof thread),
        .request_receipt = 1,
        .state = HEARTH_CHAT_STATE_ACTIVE,
    };
    rc = hearth_chat_send(chat, contact, "{\"text\":\"你好\"}", &opts, id, sizeof id);
    if (rc)
        goto fail;
    printf("message %s sent to %s\n", id, contact);

    /* 5. The room: join (which creates it when it does not exist), then configure it. */
    hearth_muc_join_options_t join = {.history_stanzas = 20};
    const char *at = strchr(cfg.jid, '@');
    char nick[64];
    snprintf(nick, sizeof nick, "%.*s", at ? (int)(at - cfg.jid) : 8, cfg.jid);
    rc = hearth_muc_join(muc, room_jid, nick, &join, &s.room);
    if (!rc)
        rc = hearth_ctx_run_until(ctx, room_joined, &s, 10000);
    if (rc || s.joined < 0)
        goto fail;
    printf("room %s %s as %s\n", room_jid, s.created ? "created" : "joined", nick);
    if (s.created) {
        rc = hearth_muc_fetch_form(s.room, on_form, &s);
        if (!rc)
            rc = hearth_ctx_run_until(ctx, form_done, &s, 10000);
        /* on_form answered it; on_configured tells whether the room took it. */
        if (!rc && s.form > 0)
            rc = hearth_ctx_run_until(ctx, config_done, &s, 10000);
        if (rc || s.form < 0 || s.config < 0)
            goto fail;
        printf("room %s configured\n", room_jid);
    }

    /* 6. Invite the contact (a mediated invitation: the room passes it on). */
    rc = hearth_muc_invite(s.room, contact, "Join us");
    if (rc)
        goto fail;
    printf("invited %s to %s\n", contact, room_jid);

    /* 7. Leave, go unavailable, log out. */
    (void)hearth_muc_leave(s.room, "bye");
    (void)hearth_presence_set_unavailable(presence, NULL);
    (void)hearth_client_disconnect_wait(c, 5000);
    printf("logged out\n");
    hearth_ctx_free(ctx); /* frees the client and its managers too */
    return 0;
fail:
    fprintf(stderr, "failed: %s\n", rc ? hearth_strerror(rc) : "refused");
    hearth_ctx_free(ctx);
    return 1;
}
