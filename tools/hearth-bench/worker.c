/* One hearth-bench thread: its own uv loop and hearth_ctx, and the sessions i with
 * (i - 1) % threads == id. A 10 ms tick follows the phase main sets, starts sessions at the
 * ramp rate under the concurrency bound, sends the scenario's traffic at --rate and does the
 * setup (rosters, room joins). Touches only its own sessions and histograms; the online flags,
 * room counts and counters are atomics that main and the other workers read. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "hearth/ns.h"

#define TICK_MS 10
#define MARK "hbench " /* starts every timed body or status: "hbench <send ns> <seq>" */
#define MARK_LEN (sizeof(MARK) - 1)
#define NS_MUC "http://jabber.org/protocol/muc"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"
#define NS_DELAY "urn:xmpp:delay"
#define PICK_TRIES 16 /* random draws for an online sender or peer before giving up this slot */
/* A registration refused for now (<resource-constraint/>, <wait/>-type: servers bound the
 * registrations in progress; hearthd at 64) is tried again after a delay that doubles from
 * REG_RETRY_MS up to REG_RETRY_MAX_MS, at most REG_RETRIES times. */
#define REG_RETRY_MS 50
#define REG_RETRY_MAX_MS 2000
#define REG_RETRIES 30
/* A room join refused for now (<resource-constraint/>: hearthd bounds the joins per room, 200 in
 * a burst then 100 a second) is sent again after the same growing delay, at most as many times. */

typedef enum { S_IDLE, S_NEGOTIATING, S_ONLINE, S_ENDED } sess_state_t;

struct sess {
    hearth_client_t *c;
    worker_t *w;
    unsigned idx; /* 1-based account number */
    uint8_t state;
    uint8_t registering; /* this connection is PH_REGISTER's */
    uint8_t got_registered;
    uint8_t was_online; /* this connection got online */
    uint8_t ready;      /* setup done */
    uint8_t joined;     /* muc: in its room */
    uint8_t setup_sent; /* presence: roster asked; muc: join sent */
    uint8_t reg_tries;  /* registrations refused for now, in a row */
    uint16_t both;      /* presence: contacts with subscription 'both' */
    uint8_t *contact;   /* presence: [roster_size], 1 when 'both' */
    uint64_t t0;        /* uv_hrtime at connect; a registration's retry time while waiting */
};

static uint64_t rnd(worker_t *w)
{
    /* xorshift64*: cheap, per worker, good enough to pick peers */
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void inc(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static void note_failure(worker_t *w, int reason, const char *text)
{
    unsigned k = reason < 0 && -reason < FAIL_KINDS ? (unsigned)-reason : 0;
    inc(&w->fail_kind[k], 1);
    if (!w->fail_text) {
        snprintf(w->fail_buf, sizeof(w->fail_buf), "%s: %s", hearth_err_name(reason),
                 text ? text : "");
        w->fail_text = w->fail_buf;
    }
}

/* A setup step refused (a room join, a roster change): the sample of why, when there is none
 * yet. It is no session failure, so no kind is counted. */
static void note_setup_failure(worker_t *w, const char *what, hearth_stanza_t *st)
{
    const char *text = NULL;
    hearth_stanza_error_t e = st ? hearth_stanza_error(st, &text) : HEARTH_STANZA_ERR_NONE;
    if (!w->fail_text) {
        snprintf(w->fail_buf, sizeof(w->fail_buf), "setup: %s refused: %s%s%s", what,
                 st ? hearth_stanza_error_name(e) : "not sent", text ? ": " : "", text ? text : "");
        w->fail_text = w->fail_buf;
    }
}

/* The account number of a JID "PREFIXi@DOMAIN[/res]", 0 when it is none of ours. */
static unsigned jid_index(const char *jid)
{
    if (!jid)
        return 0;
    size_t pl = strlen(B.o.prefix);
    if (strncmp(jid, B.o.prefix, pl) != 0)
        return 0;
    const char *p = jid + pl;
    unsigned long v = 0;
    const char *d = p;
    while (*d >= '0' && *d <= '9' && v <= B.o.sessions)
        v = v * 10 + (unsigned long)(*d++ - '0');
    if (d == p || *d != '@' || v < 1 || v > B.o.sessions)
        return 0;
    size_t dl = strlen(B.o.domain);
    if (strncasecmp(d + 1, B.o.domain, dl) != 0 || (d[1 + dl] && d[1 + dl] != '/'))
        return 0;
    return (unsigned)v;
}

static void bare_jid(char *buf, size_t size, unsigned idx)
{
    snprintf(buf, size, "%s%u@%s", B.o.prefix, idx, B.o.domain);
}

static int is_online(unsigned idx)
{
    return atomic_load_explicit(&B.online[idx], memory_order_relaxed);
}

/* ---- presence scenario: contacts on a ring, roster_size / 2 on each side ---- */

static unsigned contact_of(unsigned idx, unsigned m)
{
    unsigned n = B.o.sessions, off = m / 2 + 1;
    unsigned i0 = idx - 1;
    unsigned j0 = (m % 2) ? (i0 + n - off % n) % n : (i0 + off) % n;
    return j0 + 1;
}

/* m with contact_of(idx, m) == j, or -1. */
static int contact_slot(unsigned idx, unsigned j)
{
    unsigned n = B.o.sessions, half = B.o.roster_size / 2;
    unsigned off = (j + n - idx) % n;
    if (off >= 1 && off <= half)
        return (int)((off - 1) * 2);
    if (n - off >= 1 && n - off <= half)
        return (int)((n - off - 1) * 2 + 1);
    return -1;
}

static void set_ready(sess_t *s)
{
    if (!s->ready) {
        s->ready = 1;
        inc(&s->w->n.ready, 1);
    }
}

static void mark_both(sess_t *s, unsigned j)
{
    int m = contact_slot(s->idx, j);
    if (m < 0 || !s->contact || s->contact[m])
        return;
    s->contact[m] = 1;
    if (++s->both == B.o.roster_size)
        set_ready(s);
}

/* Items of a roster result or push: those in 'both' count. */
static void read_roster(sess_t *s, hearth_stanza_t *st)
{
    hearth_xml_node_t *q = hearth_stanza_child(st, "query", HEARTH_NS_ROSTER);
    for (hearth_xml_node_t *it = q ? hearth_xml_first_element(q) : NULL; it;
         it = hearth_xml_next_element(it)) {
        const char *sub = hearth_xml_attr(it, "subscription");
        unsigned j = jid_index(hearth_xml_attr(it, "jid"));
        if (j && sub && !strcmp(sub, "both"))
            mark_both(s, j);
    }
}

static void on_roster(void *ud, hearth_client_t *c, int result, hearth_stanza_t *resp)
{
    sess_t *s = ud;
    if (result != 0 || !resp) {
        inc(&s->w->n.setup_failed, 1);
        return;
    }
    read_roster(s, resp);
    char to[320];
    for (unsigned m = 0; m < B.o.roster_size && s->c; m++) {
        if (s->contact[m])
            continue;
        bare_jid(to, sizeof(to), contact_of(s->idx, m));
        hearth_stanza_t *p = hearth_stanza_new_presence(to, "subscribe");
        if (!p || hearth_client_send(s->c, p) != 0)
            inc(&s->w->n.setup_failed, 1);
    }
    if (B.o.roster_size == 0)
        set_ready(s);
}

static void roster_setup(sess_t *s)
{
    if (!s->contact && B.o.roster_size &&
        !(s->contact = calloc(B.o.roster_size, sizeof(*s->contact)))) {
        inc(&s->w->n.setup_failed, 1);
        return;
    }
    hearth_stanza_t *iq = hearth_stanza_new_iq("get", NULL, "query", HEARTH_NS_ROSTER, NULL);
    if (!iq || hearth_client_iq(s->c, iq, 0, on_roster, s) != 0)
        inc(&s->w->n.setup_failed, 1);
}

/* Roster pushes: count what became 'both', answer as RFC 6121 §2.1.6 asks. */
static int on_roster_push(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    sess_t *s = ud;
    const char *from = hearth_stanza_from(st);
    if (from && jid_index(from) != s->idx)
        return 0; /* not from our own account: the library answers it */
    read_roster(s, st);
    hearth_stanza_t *r = hearth_stanza_new_iq_result(st);
    if (r)
        hearth_client_send(c, r);
    return HEARTH_HANDLED;
}

/* ---- muc scenario: rooms of room_size consecutive accounts ---- */

static unsigned room_of(unsigned idx)
{
    return (idx - 1) / B.o.room_size + 1;
}

static void room_jid(char *buf, size_t size, unsigned room)
{
    snprintf(buf, size, "hbench-%u@%s", room, B.o.muc_service);
}

/* The room's creator: the first of its sessions to ask. It was once "the lowest account
 * online", which two threads could each see differently: a later account, online first, created
 * the room and the first one then joined it while it was still locked (item-not-found). */
static int is_room_leader(unsigned idx)
{
    unsigned none = 0;
    atomic_uint *leader = &B.room_leader[room_of(idx)];
    return atomic_compare_exchange_strong(leader, &none, idx) || none == idx;
}

static void muc_join(sess_t *s)
{
    char to[400], room[300];
    room_jid(room, sizeof(room), room_of(s->idx));
    snprintf(to, sizeof(to), "%s/u%u", room, s->idx);
    hearth_stanza_t *p = hearth_stanza_new_presence(to, NULL);
    hearth_xml_node_t *x = NULL, *h = NULL;
    if (p)
        x = hearth_xml_add_child(hearth_stanza_arena(p), hearth_stanza_node(p), "x", NS_MUC);
    if (x)
        h = hearth_xml_add_child(hearth_stanza_arena(p), x, "history", NS_MUC);
    if (!h || hearth_xml_set_attr(hearth_stanza_arena(p), h, "maxstanzas", "0") != 0 ||
        hearth_client_send(s->c, p) != 0) {
        if (!h)
            hearth_stanza_unref(p);
        inc(&s->w->n.setup_failed, 1);
        return;
    }
    s->setup_sent = 1;
}

static void on_room_configured(void *ud, hearth_client_t *c, int result, hearth_stanza_t *resp)
{
    sess_t *s = ud;
    if (result != 0) {
        inc(&s->w->n.setup_failed, 1);
        return;
    }
    atomic_store(&B.room_ready[room_of(s->idx)], 1);
}

static int has_status(hearth_xml_node_t *x, const char *code)
{
    for (hearth_xml_node_t *st = x ? hearth_xml_first_element(x) : NULL; st;
         st = hearth_xml_next_element(st)) {
        const char *v = hearth_xml_attr(st, "code");
        if (!strcmp(st->name, "status") && v && !strcmp(v, code))
            return 1;
    }
    return 0;
}

/* Our own presence from the room (status 110): joined; 201: we created it, so accept the
 * default configuration (an instant room, XEP-0045 §10.1.2) to unlock it. */
static void muc_presence(sess_t *s, hearth_stanza_t *st, const char *type)
{
    unsigned r = room_of(s->idx);
    if (type && !strcmp(type, "error")) {
        if (!s->joined && s->reg_tries < REG_RETRIES &&
            hearth_stanza_error(st, NULL) == HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT) {
            unsigned ms = REG_RETRY_MS << (s->reg_tries < 6 ? s->reg_tries : 6);
            ms = ms > REG_RETRY_MAX_MS ? REG_RETRY_MAX_MS : ms;
            ms = ms / 2 + (unsigned)(rnd(s->w) % (ms / 2 + 1)); /* jitter: no herd */
            s->reg_tries++;
            s->t0 = uv_hrtime() + (uint64_t)ms * 1000000u; /* online: t0 is free again */
            s->setup_sent = 0;                             /* setup_some sends it again */
            return;
        }
        inc(&s->w->n.setup_failed, 1);
        note_setup_failure(s->w, "room join", st);
        return;
    }
    hearth_xml_node_t *x = hearth_stanza_child(st, "x", NS_MUC_USER);
    if (!x || !has_status(x, "110") || type || s->joined)
        return;
    s->joined = 1;
    atomic_fetch_add(&B.room_joined[r], 1);
    set_ready(s);
    if (!has_status(x, "201")) {
        atomic_store(&B.room_ready[r], 1);
        return;
    }
    char room[300];
    room_jid(room, sizeof(room), r);
    hearth_xml_node_t *q = NULL, *form = NULL;
    hearth_stanza_t *iq = hearth_stanza_new_iq("set", room, "query", NS_MUC_OWNER, &q);
    if (iq)
        form = hearth_xml_add_child(hearth_stanza_arena(iq), q, "x", HEARTH_NS_DATA);
    if (!form || hearth_xml_set_attr(hearth_stanza_arena(iq), form, "type", "submit") != 0) {
        hearth_stanza_unref(iq);
        inc(&s->w->n.setup_failed, 1);
        return;
    }
    if (hearth_client_iq(s->c, iq, 0, on_room_configured, s) != 0)
        inc(&s->w->n.setup_failed, 1);
}

/* ---- receiving ---- */

static void record(worker_t *w, const char *text)
{
    char *end = NULL;
    unsigned long long t = strtoull(text + MARK_LEN, &end, 10);
    if (end == text + MARK_LEN)
        return;
    uint64_t now = uv_hrtime();
    hist_add(&w->lat, now > t ? (now - t) / 1000 : 0);
    inc(&w->n.delivered, 1);
}

static int marked(const char *text)
{
    return text && !strncmp(text, MARK, MARK_LEN);
}

/* A marked message of an earlier run (the same accounts, in flight when it ended, then held
 * offline by the server): counted apart, or it would pass for one of this run's. The mark's
 * time is CLOCK_MONOTONIC, the same for every process. */
static int stale(const char *text)
{
    char *end = NULL;
    unsigned long long t = strtoull(text + MARK_LEN, &end, 10);
    return end != text + MARK_LEN && t < B.start_ns;
}

static int on_message(sess_t *s, hearth_stanza_t *st, const char *type)
{
    const char *body = hearth_stanza_child_text(st, "body");
    if (!marked(body))
        return 0;
    if (stale(body)) {
        inc(&s->w->n.stale, 1);
        return HEARTH_HANDLED;
    }
    if (type && !strcmp(type, "error")) {
        inc(&s->w->n.errors, 1);
        return HEARTH_HANDLED;
    }
    if (B.o.scenario == SC_MUC) {
        /* our own message reflected, or history (which we asked none of) */
        const char *from = hearth_stanza_from(st);
        const char *nick = from ? strchr(from, '/') : NULL;
        char mine[32];
        snprintf(mine, sizeof(mine), "u%u", s->idx);
        if (!nick || !strcmp(nick + 1, mine) || hearth_stanza_child(st, "delay", NS_DELAY))
            return HEARTH_HANDLED;
    }
    record(s->w, body);
    return HEARTH_HANDLED;
}

static int on_presence(sess_t *s, hearth_stanza_t *st, const char *type)
{
    const char *from = hearth_stanza_from(st);
    if (type && !strcmp(type, "subscribe")) {
        char to[320];
        unsigned j = jid_index(from);
        if (!j)
            return 0;
        bare_jid(to, sizeof(to), j);
        hearth_stanza_t *p = hearth_stanza_new_presence(to, "subscribed");
        if (p)
            hearth_client_send(s->c, p);
        return HEARTH_HANDLED;
    }
    if (B.o.scenario == SC_MUC) {
        char room[300];
        room_jid(room, sizeof(room), room_of(s->idx));
        size_t rl = strlen(room);
        if (from && !strncasecmp(from, room, rl) && (from[rl] == '/' || !from[rl]))
            muc_presence(s, st, type);
        return HEARTH_HANDLED;
    }
    if (B.o.scenario == SC_PRESENCE && !type) {
        unsigned j = jid_index(from);
        const char *status = hearth_stanza_child_text(st, "status");
        if (j && j != s->idx && marked(status))
            record(s->w, status);
        return HEARTH_HANDLED;
    }
    return 0;
}

static int on_stanza(void *ud, hearth_client_t *c, hearth_stanza_t *st)
{
    sess_t *s = ud;
    const char *type = hearth_stanza_type(st);
    switch (hearth_stanza_kind(st)) {
    case HEARTH_STANZA_MESSAGE:
        return on_message(s, st, type);
    case HEARTH_STANZA_PRESENCE:
        return on_presence(s, st, type);
    default:
        return 0;
    }
}

/* ---- sessions ---- */

static void end_session(sess_t *s)
{
    if (s->joined) {
        atomic_fetch_sub(&B.room_joined[room_of(s->idx)], 1);
        s->joined = 0;
    }
    atomic_store_explicit(&B.online[s->idx], 0, memory_order_relaxed);
    hearth_client_free(s->c);
    s->c = NULL;
}

static void ev_registered(void *ud, hearth_client_t *c, int result)
{
    sess_t *s = ud;
    s->got_registered = 1;
    inc(result == 0 ? &s->w->n.reg_created : &s->w->n.reg_existing, 1);
}

static void ev_online(void *ud, hearth_client_t *c, const char *jid, int resumed)
{
    sess_t *s = ud;
    worker_t *w = s->w;
    if (s->state == S_NEGOTIATING)
        w->negotiating--;
    s->state = S_ONLINE;
    s->was_online = 1;
    if (s->registering) {
        hearth_client_disconnect(c);
        return;
    }
    uint64_t now = uv_hrtime();
    hist_add(&w->login, (now - s->t0) / 1000);
    inc(&w->n.established, 1);
    atomic_store_explicit(&w->n.last_online_ns, now, memory_order_relaxed);
    atomic_store_explicit(&B.online[s->idx], 1, memory_order_relaxed);
    if (B.o.scenario == SC_LOGIN || atomic_load(&B.phase) >= PH_STOP)
        hearth_client_disconnect(c);
}

static void ev_disconnected(void *ud, hearth_client_t *c, const hearth_disconnect_info_t *info)
{
    sess_t *s = ud;
    worker_t *w = s->w;
    if (s->state == S_NEGOTIATING)
        w->negotiating--;
    if (s->registering) {
        const char *cond = info->condition;
        if (!s->got_registered && cond &&
            (!strcmp(cond, "resource-constraint") || !strcmp(cond, "policy-violation")) &&
            s->reg_tries < REG_RETRIES && atomic_load(&B.phase) == PH_REGISTER) {
            unsigned ms = REG_RETRY_MS << (s->reg_tries < 6 ? s->reg_tries : 6);
            ms = ms > REG_RETRY_MAX_MS ? REG_RETRY_MAX_MS : ms;
            ms = ms / 2 + (unsigned)(rnd(w) % (ms / 2 + 1)); /* jitter: no herd */
            s->reg_tries++;
            s->t0 = uv_hrtime() + (uint64_t)ms * 1000000u;
            s->state = S_IDLE;
            end_session(s);
            if (w->nretry < w->nsess)
                w->retry[w->nretry++] = s;
            return;
        }
        if (!s->got_registered) {
            inc(&w->n.reg_failed, 1);
            note_failure(w, info->reason, info->text);
        }
        inc(&w->n.reg_done, 1);
        s->state = S_IDLE;
    } else {
        if (!s->was_online) {
            inc(&w->n.failed, 1);
            note_failure(w, info->reason, info->text);
        } else if (B.o.scenario != SC_LOGIN && atomic_load(&B.phase) < PH_STOP) {
            inc(&w->n.dropped, 1);
            note_failure(w, info->reason, info->text);
        }
        inc(&w->n.closed, 1);
        s->state = S_ENDED;
    }
    end_session(s);
}

static const hearth_client_events_t events = {
    .registered = ev_registered,
    .online = ev_online,
    .disconnected = ev_disconnected,
};

static void start_session(sess_t *s, int registering)
{
    worker_t *w = s->w;
    char jid[320];
    bare_jid(jid, sizeof(jid), s->idx);
    hearth_client_config_t cfg = {
        .jid = jid,
        .password = B.o.password,
        .host = B.o.addr,
        .port = B.o.port,
        .bind_address = B.o.sources ? B.source[(s->idx - 1) % B.o.sources] : NULL,
        .tls = B.o.tls ? HEARTH_TLS_REQUIRED : HEARTH_TLS_DISABLED,
        .tls_ca_file = B.o.ca_file,
        .tls_no_verify = B.o.no_verify,
        .sasl_mechanisms = B.o.mech,
        .allow_plain_without_tls = B.o.mech && !strcmp(B.o.mech, "PLAIN"),
        .register_mode = registering ? HEARTH_REGISTER_CREATE : HEARTH_REGISTER_NONE,
        .no_initial_presence = registering || B.o.scenario == SC_LOGIN,
        .no_sm = !B.o.sm,
    };
    s->registering = (uint8_t)registering;
    s->got_registered = s->was_online = 0;
    s->t0 = uv_hrtime();
    int rc = hearth_client_new(w->ctx, &cfg, &events, s, &s->c);
    hearth_filter_t any = {.kinds = HEARTH_STANZA_MESSAGE | HEARTH_STANZA_PRESENCE};
    hearth_filter_t push = {.kinds = HEARTH_STANZA_IQ, .type = "set", .ns = HEARTH_NS_ROSTER};
    if (rc == 0 && !registering)
        rc = hearth_client_add_handler(s->c, &any, 0, on_stanza, s, NULL);
    if (rc == 0 && !registering && B.o.scenario == SC_PRESENCE)
        rc = hearth_client_add_handler(s->c, &push, 0, on_roster_push, s, NULL);
    if (rc == 0)
        rc = hearth_client_connect(s->c);
    if (rc != 0) {
        note_failure(w, rc, "cannot start the client");
        hearth_client_free(s->c);
        s->c = NULL;
        if (registering) {
            inc(&w->n.reg_failed, 1);
            inc(&w->n.reg_done, 1);
        } else {
            inc(&w->n.failed, 1);
            inc(&w->n.closed, 1);
            s->state = S_ENDED;
        }
        return;
    }
    s->state = S_NEGOTIATING;
    w->negotiating++;
    if (!registering) {
        inc(&w->n.started, 1);
        uint64_t zero = 0;
        atomic_compare_exchange_strong(&w->n.first_start_ns, &zero, s->t0);
    }
}

/* ---- pacing ---- */

/* Starts what the ramp rate and the concurrency bound allow this tick. */
static void start_some(worker_t *w, double dt, int registering)
{
    double per = B.o.ramp / B.o.threads;
    unsigned cap = B.o.concurrency / B.o.threads;
    if (cap < 1)
        cap = 1;
    if (per > 0) {
        w->credit += dt * per;
        double most = per * TICK_MS * 2 / 1000.0;
        if (w->credit > (most > 1 ? most : 1))
            w->credit = most > 1 ? most : 1;
    }
    uint64_t now = uv_hrtime();
    for (unsigned i = 0; i < w->nretry && w->negotiating < cap;) {
        sess_t *s = w->retry[i];
        if (s->t0 > now) {
            i++;
            continue;
        }
        w->retry[i] = w->retry[--w->nretry];
        start_session(s, registering);
    }
    while (w->next < w->nsess && w->negotiating < cap && (per <= 0 || w->credit >= 1)) {
        start_session(&w->sess[w->next++], registering);
        w->credit -= 1;
    }
}

static sess_t *pick_sender(worker_t *w)
{
    for (int t = 0; t < PICK_TRIES && w->nsess; t++) {
        sess_t *s = &w->sess[rnd(w) % w->nsess];
        if (s->state == S_ONLINE && s->c && (B.o.scenario == SC_CHAT || s->ready))
            return s;
    }
    return NULL;
}

static void timed_text(worker_t *w, char *buf, size_t size)
{
    snprintf(buf, size, MARK "%" PRIu64 " %u.%" PRIu64, uv_hrtime(), w->id, ++w->seq);
}

static void sent(worker_t *w, sess_t *s, hearth_stanza_t *st, uint64_t expected)
{
    if (!st) {
        inc(&w->n.send_refused, 1);
        return;
    }
    if (hearth_client_send(s->c, st) != 0) {
        inc(&w->n.send_refused, 1);
        return;
    }
    inc(&w->n.stanzas, 1);
    inc(&w->n.sent, expected);
}

static void send_one(worker_t *w)
{
    sess_t *s = pick_sender(w);
    if (!s)
        return;
    char text[96], to[320];
    if (B.o.scenario == SC_CHAT) {
        unsigned peer = 0;
        for (int t = 0; t < PICK_TRIES && !peer; t++) {
            unsigned j = (unsigned)(rnd(w) % B.o.sessions) + 1;
            if (j != s->idx && is_online(j))
                peer = j;
        }
        if (!peer)
            return;
        bare_jid(to, sizeof(to), peer);
        timed_text(w, text, sizeof(text));
        sent(w, s, hearth_stanza_new_message(to, "chat", text), 1);
    } else if (B.o.scenario == SC_PRESENCE) {
        uint64_t expected = 0;
        for (unsigned m = 0; m < B.o.roster_size; m++)
            expected += is_online(contact_of(s->idx, m));
        timed_text(w, text, sizeof(text));
        hearth_stanza_t *p = hearth_stanza_new_presence(NULL, NULL);
        if (p && hearth_stanza_add_text_child(p, "status", text) != 0) {
            hearth_stanza_unref(p);
            p = NULL;
        }
        sent(w, s, p, expected);
    } else if (B.o.scenario == SC_MUC) {
        unsigned r = room_of(s->idx);
        int in_room = atomic_load(&B.room_joined[r]);
        room_jid(to, sizeof(to), r);
        timed_text(w, text, sizeof(text));
        sent(w, s, hearth_stanza_new_message(to, "groupchat", text),
             in_room > 1 ? (uint64_t)(in_room - 1) : 0);
    }
}

static void send_some(worker_t *w, double dt)
{
    double per = B.o.rate / B.o.threads;
    if (per <= 0)
        return;
    w->credit += dt * per;
    double most = per / 10 + 1; /* catch up at most 100 ms after a slow turn */
    if (w->credit > most)
        w->credit = most;
    while (w->credit >= 1) {
        w->credit -= 1;
        send_one(w);
    }
}

static void setup_some(worker_t *w)
{
    for (unsigned i = 0; i < w->nsess; i++) {
        sess_t *s = &w->sess[i];
        if (s->state != S_ONLINE || s->setup_sent)
            continue;
        if (B.o.scenario == SC_PRESENCE) {
            s->setup_sent = 1;
            roster_setup(s);
        } else if (B.o.scenario == SC_MUC) {
            if ((atomic_load(&B.room_ready[room_of(s->idx)]) || is_room_leader(s->idx)) &&
                uv_hrtime() >= s->t0)
                muc_join(s);
        }
    }
}

/* ---- the tick ---- */

static void enter(worker_t *w, phase_t p)
{
    w->next = 0;
    /* a run's sends fall in the middle of their slots (k + ½) / rate, not at their ends: a run
     * of rate x duration = 1 per thread sends one message, not none when the run's last tick
     * comes just before the credit reaches 1 */
    w->credit = p == PH_RUN ? 0.5 : 0;
    if (p == PH_STOP) {
        for (unsigned i = 0; i < w->nsess; i++)
            if (w->sess[i].c)
                hearth_client_disconnect(w->sess[i].c);
    } else if (p == PH_EXIT) {
        uv_timer_stop(&w->tick);
        uv_close((uv_handle_t *)&w->tick, NULL);
        uv_stop(&w->loop);
    }
}

static void on_tick(uv_timer_t *t)
{
    worker_t *w = t->data;
    uint64_t now = uv_hrtime();
    double dt = (double)(now - w->last_tick_ns) / 1e9;
    w->last_tick_ns = now;
    phase_t p = (phase_t)atomic_load(&B.phase);
    if (p != w->phase) {
        w->phase = p;
        enter(w, p);
        if (p == PH_EXIT)
            return;
    }
    switch (p) {
    case PH_REGISTER:
        start_some(w, dt, 1);
        break;
    case PH_CONNECT:
        start_some(w, dt, 0);
        break;
    case PH_SETUP:
        setup_some(w);
        break;
    case PH_RUN:
        send_some(w, dt);
        break;
    default:
        break;
    }
}

void *worker_main(void *arg)
{
    worker_t *w = arg;
    w->last_tick_ns = uv_hrtime();
    w->tick.data = w;
    uv_timer_start(&w->tick, on_tick, TICK_MS, TICK_MS);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* Sessions of worker w: their numbers, and the flags they need. 0 or -1 (no memory). */
int worker_init(worker_t *w, unsigned id)
{
    w->id = id;
    w->rng = 0x9E3779B97F4A7C15ULL * (id + 1) ^ uv_hrtime();
    w->nsess = B.o.sessions / B.o.threads + (id < B.o.sessions % B.o.threads);
    w->sess = calloc(w->nsess ? w->nsess : 1, sizeof(*w->sess));
    w->retry = calloc(w->nsess ? w->nsess : 1, sizeof(*w->retry));
    if (!w->sess || !w->retry)
        return -1;
    for (unsigned i = 0; i < w->nsess; i++) {
        w->sess[i].w = w;
        w->sess[i].idx = id + 1 + i * B.o.threads;
    }
    if (uv_loop_init(&w->loop) != 0)
        return -1;
    uv_timer_init(&w->loop, &w->tick);
    /* Salted passwords go to the table all workers share (and --scram-cache keeps between
     * runs): a session's second login (after --register) or a later run pays no PBKDF2. */
    hearth_ctx_config_t cc = {
        .loop = &w->loop,
        .keep_sigpipe = 1,
        .scram_cache = (unsigned)-1, /* the shared table only: one lookup, counted */
        .scram_lookup = scram_cache_lookup,
        .scram_store = scram_cache_store,
    };
    return hearth_ctx_new(&cc, &w->ctx) == 0 ? 0 : -1;
}

/* After worker_main has returned: the context, the loop, the sessions. */
void worker_free(worker_t *w)
{
    hearth_ctx_free(w->ctx);
    w->ctx = NULL;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_loop_close(&w->loop);
    for (unsigned i = 0; i < w->nsess; i++)
        free(w->sess[i].contact);
    free(w->sess);
    free(w->retry);
    w->sess = NULL;
    w->retry = NULL;
}
