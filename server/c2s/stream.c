/* The c2s protocol of RFC 6120 over a parsed stream: header checks, features, STARTTLS,
 * dispatch of SASL elements, the stream restart after SASL (and the move to the user's home
 * worker), bind/session, stanza dispatch to the router, timeouts and the server's idle pings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hearth/ns.h"

#include "c2s/conn.h"
#include "core/log.h"
#include "core/router.h"
#include "core/user.h"

/* Binding is offered on TLS 1.3 only, where tls-exporter exists (RFC 9266). tls-server-end-point
 * would work over TLS 1.2 too, but a -PLUS offer there breaks the older clients that bind only
 * tls-unique or answer 'y' to any offer (slixmpp 1.8), for little gain: they are the TLS 1.2
 * ones. */
size_t c2s__bindings(const conn_t *c, c2s_bindings_t *out)
{
    out->n = 0;
    hearth_tls_t *tls = conn__tls(c);
    if (!tls || !c->secure || hearth_tls_exporter(tls, out->exporter) != 0)
        return 0;
    out->b[out->n++] = (hearth_sasl_binding_t){"tls-exporter", out->exporter, 32};
    size_t len;
    /* None for a certificate signed with EdDSA: RFC 5929 defines no hash for it. */
    if (hearth_tls_server_end_point(tls, out->end_point, &len) == 0)
        out->b[out->n++] = (hearth_sasl_binding_t){"tls-server-end-point", out->end_point, len};
    return out->n;
}

/* What the features and auth.c agree is offered on this stream. */
int c2s__mech_offered(const conn_t *c, const char *mech)
{
    const settings_t *s = &c->w->set;
    if (!c->secure && s->tls_required)
        return 0;
    if (!strcmp(mech, "SCRAM-SHA-1") || !strcmp(mech, "SCRAM-SHA-256"))
        return 1;
    if (!strcmp(mech, "SCRAM-SHA-1-PLUS") || !strcmp(mech, "SCRAM-SHA-256-PLUS")) {
        c2s_bindings_t cb;
        return c2s__bindings(c, &cb) > 0;
    }
    if (!strcmp(mech, "PLAIN"))
        return s->sasl_plain && (c->secure || s->plain_without_tls);
    return 0;
}

static const char *const all_mechs[] = {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256",
                                        "SCRAM-SHA-1", "PLAIN"};

void c2s__send_features(conn_t *c)
{
    const settings_t *s = &c->w->set;
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = 0;
    if (c->state == C2S_WAIT_BIND) {
        rc = rc
                 ?: hearth_buf_printf(
                        &b,
                        "<bind xmlns='%s'/><session xmlns='%s'><optional/></session>"
                        "<sm xmlns='" HEARTH_NS_SM2 "'/><sm xmlns='" HEARTH_NS_SM3 "'/>"
                        "<csi xmlns='" HEARTH_NS_CSI "'/>"
                        "<c xmlns='" HEARTH_NS_CAPS "' hash='sha-1' "
                        "node='%s' ver='%s'/>",
                        HEARTH_NS_BIND, HEARTH_NS_SESSION, MODULES_CAPS_NODE, modules__caps_ver());
        rc = rc ?: modules__stream_features(&b);
    } else {
        if (!c->secure && c->w->srv->tls && hearth_stream_framing(c->xs) == HEARTH_STREAM_TCP)
            rc = rc
                     ?: hearth_buf_printf(&b, "<starttls xmlns='%s'>%s</starttls>", HEARTH_NS_TLS,
                                          s->tls_required ? "<required/>" : "");
        int any = 0, plus = 0;
        for (size_t i = 0; i < sizeof(all_mechs) / sizeof(*all_mechs); i++) {
            if (!c2s__mech_offered(c, all_mechs[i]))
                continue;
            if (!any)
                rc = rc ?: hearth_buf_printf(&b, "<mechanisms xmlns='%s'>", HEARTH_NS_SASL);
            any = 1;
            plus |= strstr(all_mechs[i], "-PLUS") != NULL;
            rc = rc ?: hearth_buf_printf(&b, "<mechanism>%s</mechanism>", all_mechs[i]);
        }
        if (any)
            rc = rc ?: hearth_buf_append_str(&b, "</mechanisms>");
        if (c->pa)
            rc = rc ?: modules__preauth_features(c->pa, &b);
        c2s_bindings_t cb;
        if (plus && c2s__bindings(c, &cb)) {
            rc = rc
                     ?: hearth_buf_append_str(&b, "<sasl-channel-binding xmlns='" HEARTH_NS_SASL_CB
                                                  "'>");
            for (size_t i = 0; i < cb.n; i++)
                rc = rc ?: hearth_buf_printf(&b, "<channel-binding type='%s'/>", cb.b[i].type);
            rc = rc ?: hearth_buf_append_str(&b, "</sasl-channel-binding>");
        }
    }
    if (rc || hearth_stream_send_features(c->xs, b.data ? b.data : "", b.len) == HEARTH_ENOMEM)
        conn__abort(c);
    hearth_buf_free(&b);
}

void c2s__on_open(conn_t *c, const hearth_stream_header_t *header)
{
    const settings_t *s = &c->w->set;
    /* The stream checked the namespaces and the version; the domain is ours to check. */
    const char *to = header->to;
    if (to) {
        char *dom = NULL;
        const char *reason = NULL;
        int bad = hearth_jid_nameprep(to, strlen(to), &dom, &reason) || strcmp(dom, s->domain) != 0;
        free(dom);
        if (bad) {
            conn__stream_error(c, HEARTH_STREAM_ERR_HOST_UNKNOWN,
                               "this server does not serve that domain");
            return;
        }
    }
    /* A WebSocket or BOSH stream cannot start TLS itself: without it (or a trusted proxy that
     * says the client used it) and with TLS required, no login could succeed. Say so. */
    if (!c->bare && !c->secure && s->tls_required &&
        hearth_stream_framing(c->xs) != HEARTH_STREAM_TCP) {
        conn__stream_error(c, HEARTH_STREAM_ERR_POLICY_VIOLATION,
                           "TLS is required: connect with wss:// or https:// (https.port)");
        return;
    }
    c->state = c->bare ? C2S_WAIT_BIND : C2S_PREAUTH;
    c2s__send_features(c);
}

static int is(const hearth_xml_node_t *n, const char *name, const char *ns)
{
    return strcmp(n->name, name) == 0 && strcmp(n->ns, ns) == 0;
}

static void starttls(conn_t *c)
{
    if (c->secure || conn__tls(c) || !c->w->srv->tls ||
        hearth_stream_framing(c->xs) != HEARTH_STREAM_TCP) {
        conn__send_str(c, "<failure xmlns='" HEARTH_NS_TLS "'/>");
        conn__close_stream(c);
        return;
    }
    conn__send_str(c, "<proceed xmlns='" HEARTH_NS_TLS "'/>");
    /* Whatever the client pipelined after <starttls/> is discarded, never processed. */
    int rc = hearth_stream_starttls(c->xs, c->w->srv->tls);
    if (rc) {
        hlog_conn(LOG_INFO, c->id, NULL, "STARTTLS failed: %s", hearth_strerror(rc));
        conn__abort(c);
        return;
    }
    c->state = C2S_WAIT_HEADER;
}

static void preauth_stanza(conn_t *c, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    if (is(st, "starttls", HEARTH_NS_TLS)) {
        if (c->state == C2S_SASL) {
            conn__stream_error(c, HEARTH_STREAM_ERR_POLICY_VIOLATION,
                               "STARTTLS during a SASL exchange");
            return;
        }
        starttls(c);
    } else if (is(st, "auth", HEARTH_NS_SASL)) {
        auth__start(c, st, arena);
    } else if (is(st, "response", HEARTH_NS_SASL)) {
        auth__response(c, st, arena);
    } else if (is(st, "abort", HEARTH_NS_SASL)) {
        auth__abort(c);
    } else if (sm__is_sm(st)) {
        sm__refuse(c, st);
    } else if (is(st, "iq", HEARTH_NS_CLIENT) && c->state == C2S_PREAUTH && c->pa &&
               modules__preauth_iq(c->pa, st, arena)) {
        return;
    } else {
        conn__stream_error(c, HEARTH_STREAM_ERR_NOT_AUTHORIZED, "authenticate first");
    }
}

static void session_iq(c2s_session_t *cs, hearth_xml_node_t *iq, hearth_arena_t *arena)
{
    hearth_xml_node_t *r = hearth_xml_new(arena, "iq", HEARTH_NS_CLIENT);
    hearth_xml_set_attr(arena, r, "type", "result");
    hearth_xml_set_attr(arena, r, "id", hearth_xml_attr(iq, "id"));
    session__send_node(&cs->s, r);
}

void c2s__reply_error(conn_t *c, hearth_xml_node_t *st, hearth_arena_t *arena,
                      hearth_stanza_error_t cond, const char *text)
{
    const char *type = hearth_xml_attr(st, "type");
    if (type && !strcmp(type, "error"))
        return; /* never answer an error with an error */
    if (c->cs) {
        router__reply_error(&c->cs->s, st, arena, cond, text);
        return;
    }
    hearth_xml_set_attr(arena, st, "from", NULL);
    /* Before binding, a stanza without 'to' goes to the server: its errors come from the
     * domain, or from nobody once authenticated (RFC 6120 §10.3.3: the account's). */
    router__make_error(st, arena, cond, text, c->bare ? NULL : c->w->set.domain);
    conn__send_node(c, st);
}

/* Pipelined behind the bind (XEP-0305 style): kept, bounded, replayed in order. */
static void c2s__hold(conn_t *c, hearth_xml_node_t *st)
{
    if (c->held.len > c->w->set.max_stanza || hearth_xml_serialize(st, HEARTH_NS_CLIENT, &c->held))
        conn__stream_error(c, HEARTH_STREAM_ERR_POLICY_VIOLATION,
                           "too much sent before the bind completed");
}

static void bound_stanza(conn_t *c, c2s_session_t *cs, hearth_xml_node_t *st,
                         hearth_arena_t *arena);

void c2s__on_stanza(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    conn_t *c = ud;
    if (c->closing)
        return;
    switch (c->state) {
    case C2S_WAIT_HEADER:
    case C2S_AUTHED:
        return;
    case C2S_PREAUTH:
    case C2S_SASL:
        preauth_stanza(c, st, arena);
        return;
    case C2S_WAIT_BIND:
    case C2S_BOUND:
        break;
    }
    if (!strcmp(st->ns, HEARTH_NS_CSI) &&
        (!strcmp(st->name, "active") || !strcmp(st->name, "inactive"))) {
        if (c->cs)
            csession__csi(c->cs, !strcmp(st->name, "active"));
        return;
    }
    if (sm__is_sm(st)) {
        if (c->binding) {
            c2s__hold(c, st); /* a <resume/> or <enable/> right behind the bind waits for it */
            return;
        }
        sm__element(c, st, arena);
        return;
    }
    if (strcmp(st->ns, HEARTH_NS_CLIENT) != 0 ||
        (strcmp(st->name, "iq") && strcmp(st->name, "message") && strcmp(st->name, "presence"))) {
        conn__stream_error(c, HEARTH_STREAM_ERR_UNSUPPORTED_STANZA_TYPE, NULL);
        return;
    }
    hearth_xml_node_t *payload = hearth_xml_first_element(st);
    const char *type = hearth_xml_attr(st, "type");
    int is_iq_set = !strcmp(st->name, "iq") && type && !strcmp(type, "set") && payload;
    if (is_iq_set && is(payload, "bind", HEARTH_NS_BIND)) {
        if (c->state == C2S_WAIT_BIND)
            bind__start(c, st, arena);
        else
            c2s__reply_error(c, st, arena, HEARTH_STANZA_ERR_NOT_ALLOWED,
                             "a resource is already bound on this stream");
        return;
    }
    if (c->binding) {
        c2s__hold(c, st);
        return;
    }
    if (c->state == C2S_WAIT_BIND) {
        if (is_iq_set && is(payload, "session", HEARTH_NS_SESSION)) {
            c2s__reply_error(c, st, arena, HEARTH_STANZA_ERR_NOT_ALLOWED, "bind a resource first");
            return;
        }
        conn__stream_error(c, HEARTH_STREAM_ERR_NOT_AUTHORIZED, "bind a resource first");
        return;
    }
    /* The session's end is only ever decided during the dispatch (it happens on the next
     * loop turn), so it and its user stay valid throughout; held for the handlers anyway. */
    c2s_session_t *cs = c->cs;
    if (!cs || cs->s.ending)
        return;
    session__ref(&cs->s);
    sm__begin_inbound(cs);
    bound_stanza(c, cs, st, arena);
    sm__end_inbound(cs);
    session__unref(&cs->s);
}

/* The client's answer to the server's idle ping (XEP-0199): liveness, nothing to route. */
static int ping_answer(conn_t *c, hearth_xml_node_t *st)
{
    const char *type = hearth_xml_attr(st, "type");
    const char *id = hearth_xml_attr(st, "id");
    const char *to = hearth_xml_attr(st, "to");
    if (!c->ping_outstanding || strcmp(st->name, "iq") || !type ||
        (strcmp(type, "result") && strcmp(type, "error")) || !id || strcmp(id, c->ping_id))
        return 0;
    if (to && strcmp(to, c->w->set.domain))
        return 0;
    c->ping_outstanding = 0;
    return 1;
}

static void bound_stanza(conn_t *c, c2s_session_t *cs, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    hearth_xml_node_t *payload = hearth_xml_first_element(st);
    const char *type = hearth_xml_attr(st, "type");
    int is_iq_set = !strcmp(st->name, "iq") && type && !strcmp(type, "set") && payload;
    if (is_iq_set && is(payload, "session", HEARTH_NS_SESSION) && !hearth_xml_attr(st, "to")) {
        session_iq(cs, st, arena);
        return;
    }
    if (ping_answer(c, st))
        return;
    router__from_session(&cs->s, st, arena);
}

static void replay_one(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    c2s__on_stanza(ud, st, arena);
}

void c2s__replay_held(conn_t *c)
{
    if (!c->held.len)
        return;
    hearth_buf_t held = c->held;
    c->held = (hearth_buf_t)HEARTH_BUF_INIT;
    router__parse(held.data, held.len, replay_one, c);
    hearth_buf_free(&held);
}

/* After SASL success: the client starts a new stream (RFC 6120 §6.4.6), with the stanza bound
 * of an authenticated one, on its user's home worker: the connection moves there once what was
 * written here has left (its next bytes, the new header, are read there). */
void c2s__restart_stream(conn_t *c)
{
    if (hearth_stream_restart(c->xs)) {
        conn__abort(c);
        return;
    }
    hearth_stream_set_max_stanza(c->xs, c->w->set.max_stanza);
    c->state = C2S_AUTHED;
    if (c->pa) { /* authenticated: what modules held of the stream before is gone */
        c->pa->conn = NULL;
        preauth__unref(c->pa);
        c->pa = NULL;
    }
    worker_t *home = worker__home(c->w->srv, c->bare);
    if (home == c->w || !c->net || !c->net->t->can_move) {
        conn__arm_timer(c);
        return;
    }
    hlog_conn(LOG_DEBUG, c->id, c->bare, "moving to home worker %u", home->index);
    c->moving = 1;
    conn__leave_worker(c); /* here, on this worker's thread; the new one links it */
    connection_move(c->net, home);
}

/* One timer per connection: before authentication it is the pre-auth deadline (and the delay
 * of a throttled SASL failure); once bound it schedules the idle ping and its timeout, and the
 * moment a quiet stream gives its memory back (c2s.idle_release). It is lazy: a read does not
 * move it; when it fires it looks at the time of the last read. */
void conn__arm_timer(conn_t *c)
{
    if (c->closing || !c->net)
        return;
    const settings_t *s = &c->w->set;
    uint64_t now = uv_now(&c->w->loop);
    if (c->state != C2S_BOUND) {
        uint64_t deadline = c->accepted_ms + (uint64_t)s->preauth_timeout * 1000;
        conn__timer_in(c, deadline > now ? deadline - now : 1);
        return;
    }
    if (c->ping_outstanding) {
        conn__timer_in(c, (uint64_t)s->ping_timeout * 1000);
        return;
    }
    uint64_t due = UINT64_MAX;
    if (s->idle_ping)
        due = c->last_read_ms + (uint64_t)s->idle_ping * 1000;
    if (s->idle_release && !c->trimmed) {
        uint64_t trim_at = c->last_read_ms + (uint64_t)s->idle_release * 1000;
        due = trim_at < due ? trim_at : due;
    }
    if (due == UINT64_MAX) {
        connection_timer(c->net, 0);
        return;
    }
    conn__timer_in(c, due > now ? due - now : 1);
}

void c2s__on_adopted(conn_t *c)
{
    conn__arm_timer(c);
}

void c2s__on_timer(conn_t *c)
{
    const settings_t *s = &c->w->set;
    uint64_t now = uv_now(&c->w->loop);
    if (c->auth_fail_pending) {
        auth__fail_now(c);
        if (!c->closing)
            conn__arm_timer(c);
        return;
    }
    if (c->auth_check_pending) {
        auth__check_now(c);
        if (!c->closing)
            conn__arm_timer(c);
        return;
    }
    if (c->state != C2S_BOUND) {
        if (now >= c->accepted_ms + (uint64_t)s->preauth_timeout * 1000) {
            conn__stream_error(c, HEARTH_STREAM_ERR_CONNECTION_TIMEOUT,
                               "no session established in time");
            return;
        }
        conn__arm_timer(c);
        return;
    }
    if (!c->trimmed && s->idle_release && now >= c->last_read_ms + (uint64_t)s->idle_release * 1000)
        conn__trim(c);
    if (c->ping_outstanding) {
        if (c->last_read_ms > c->ping_sent_ms) {
            c->ping_outstanding = 0; /* anything from the client proves it alive */
        } else {
            if (!sm__lost(c))
                conn__stream_error(c, HEARTH_STREAM_ERR_CONNECTION_TIMEOUT, "ping not answered");
            return;
        }
    } else if (s->idle_ping && now >= c->last_read_ms + (uint64_t)s->idle_ping * 1000) {
        static unsigned long long seq;
        snprintf(c->ping_id, sizeof(c->ping_id), "ping-%llu",
                 __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED));
        hearth_buf_t b = HEARTH_BUF_INIT;
        int rc = hearth_buf_printf(&b, "<iq from='%s' to='", s->domain);
        const char *full = c->cs ? c->cs->s.jid.full : "";
        rc = rc ?: hearth_buf_append_escaped(&b, full, strlen(full));
        rc = rc
                 ?: hearth_buf_printf(
                        &b, "' id='%s' type='get'><ping xmlns='" HEARTH_NS_PING "'/></iq>",
                        c->ping_id);
        if (!rc && c->cs)
            session__send(&c->cs->s, b.data, b.len);
        hearth_buf_free(&b);
        c->ping_outstanding = 1;
        c->ping_sent_ms = now;
    }
    conn__arm_timer(c);
}
