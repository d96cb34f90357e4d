/* Stream negotiation of a client connection (RFC 6120 §4.3, §5, §7): the features, STARTTLS
 * under the TLS policy, XEP-0077 registration before login, then (in auth.c) SASL, and after
 * the restart resumption (sm.c) or bind and the legacy session. Touches its connection and
 * client. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool is(const hearth_xml_node_t *n, const char *name, const char *ns)
{
    return !strcmp(n->name, name) && !strcmp(n->ns, ns);
}

static void fail(conn_t *conn, int reason, const char *text, const char *condition)
{
    client__lost(conn->c, reason, HEARTH_STREAM_ERR_NONE, text, condition);
}

/* An element the current step does not expect: the server breaks the protocol. */
static void unexpected(conn_t *conn, const hearth_xml_node_t *el)
{
    char text[300];
    snprintf(text, sizeof(text), "unexpected <%.60s xmlns='%.120s'/> from the server", el->name,
             el->ns);
    (void)hearth_stream_error(conn->stream, HEARTH_STREAM_ERR_UNSUPPORTED_STANZA_TYPE, NULL);
    fail(conn, HEARTH_EXML, text, NULL);
}

static void send_text(conn_t *conn, const char *s, bool loggable)
{
    hearth_client_t *c = conn->c;
    (void)net__send(conn, s, strlen(s));
    if (c->log_stanzas)
        ctx__log(c->ctx, c, HEARTH_LOG_TRACE, "-> %s", loggable ? s : "(credentials)");
}

static void parse_features(conn_t *conn, const hearth_xml_node_t *el)
{
    features_t *f = &conn->feat;
    memset(f, 0, sizeof(*f));
    for (hearth_xml_node_t *n = hearth_xml_first_element(el); n; n = hearth_xml_next_element(n)) {
        if (is(n, "starttls", HEARTH_NS_TLS)) {
            f->starttls = true;
            f->starttls_required = hearth_xml_child(n, "required", HEARTH_NS_TLS) != NULL;
        } else if (is(n, "mechanisms", HEARTH_NS_SASL)) {
            for (hearth_xml_node_t *m = hearth_xml_first_element(n); m;
                 m = hearth_xml_next_element(m)) {
                if (!is(m, "mechanism", HEARTH_NS_SASL) || !m->children ||
                    m->children->type != HEARTH_XML_TEXT)
                    continue;
                const hearth_xml_node_t *t = m->children;
                for (int i = 0; i < M_COUNT; i++)
                    if (t->text_len == strlen(client__mech_names[i]) &&
                        !memcmp(t->text, client__mech_names[i], t->text_len))
                        f->mechs |= 1u << i;
            }
        } else if (is(n, "sasl-channel-binding", HEARTH_NS_SASL_CB)) {
            f->cb_announced = true;
            for (hearth_xml_node_t *b = hearth_xml_first_element(n); b;
                 b = hearth_xml_next_element(b)) {
                const char *type = hearth_xml_attr(b, "type");
                if (!is(b, "channel-binding", HEARTH_NS_SASL_CB) || !type)
                    continue;
                if (!strcmp(type, "tls-exporter"))
                    f->cb |= CB_EXPORTER;
                else if (!strcmp(type, "tls-server-end-point"))
                    f->cb |= CB_END_POINT;
            }
        } else if (is(n, "register", HEARTH_NS_REGISTER_FEATURE)) {
            f->register_ = true;
        } else if (is(n, "bind", HEARTH_NS_BIND)) {
            f->bind = true;
        } else if (is(n, "session", HEARTH_NS_SESSION)) {
            f->session_required = hearth_xml_child(n, "optional", HEARTH_NS_SESSION) == NULL;
        } else if (is(n, "sm", HEARTH_NS_SM3)) {
            f->sm = true;
        }
    }
}

/* The features after authentication, for hearth_client_stream_feature (roster versioning,
 * CSI, ...): the namespace and name of each child, NUL-separated. */
static void keep_features(hearth_client_t *c, const hearth_xml_node_t *el)
{
    size_t len = 0;
    for (hearth_xml_node_t *n = hearth_xml_first_element(el); n; n = hearth_xml_next_element(n))
        len += strlen(n->ns) + strlen(n->name) + 2;
    ctx__free(c->ctx, c->features);
    c->features = len ? ctx__alloc(c->ctx, len) : NULL;
    c->features_len = c->features ? len : 0;
    char *w = c->features;
    for (hearth_xml_node_t *n = w ? hearth_xml_first_element(el) : NULL; n;
         n = hearth_xml_next_element(n)) {
        size_t a = strlen(n->ns) + 1, b = strlen(n->name) + 1;
        memcpy(w, n->ns, a);
        memcpy(w + a, n->name, b);
        w += a + b;
    }
}

/* ---- XEP-0077 ---- */

static void send_register(conn_t *conn)
{
    hearth_client_t *c = conn->c;
    client__next_id(c, conn->reg_id, sizeof(conn->reg_id));
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_printf(
        &b, "<iq type='set' id='%s'><query xmlns='" HEARTH_NS_REGISTER "'><username>",
        conn->reg_id);
    rc = rc ?: hearth_buf_append_text_escaped(&b, c->jid.node, strlen(c->jid.node));
    rc = rc ?: hearth_buf_append_str(&b, "</username><password>");
    rc = rc ?: hearth_buf_append_text_escaped(&b, c->password, strlen(c->password));
    rc = rc ?: hearth_buf_append_str(&b, "</password></query></iq>");
    if (rc) {
        hearth_buf_free(&b);
        fail(conn, rc, NULL, NULL);
        return;
    }
    send_text(conn, b.data, false);
    hearth_buf_free(&b);
    conn->phase = PH_REGISTER;
}

static void register_answer(conn_t *conn, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    hearth_client_t *c = conn->c;
    const char *type = hearth_xml_attr(el, "type");
    const char *id = hearth_xml_attr(el, "id");
    if (!is(el, "iq", HEARTH_NS_CLIENT) || !id || strcmp(id, conn->reg_id) != 0 || !type) {
        unexpected(conn, el);
        return;
    }
    int result;
    if (!strcmp(type, "result")) {
        result = 0;
    } else {
        hearth_stanza_t st = {.refs = 1, .lent = true, .arena = arena, .node = el};
        const char *text = NULL;
        hearth_stanza_error_t e = hearth_stanza_error(&st, &text);
        if (e != HEARTH_STANZA_ERR_CONFLICT || c->register_mode == HEARTH_REGISTER_CREATE_NEW) {
            char buf[400];
            snprintf(buf, sizeof(buf), "registration refused: <%s/>%s%.300s",
                     hearth_stanza_error_name(e), text ? ": " : "", text ? text : "");
            fail(conn, e == HEARTH_STANZA_ERR_CONFLICT ? HEARTH_EEXISTS : HEARTH_ESTANZA, buf,
                 hearth_stanza_error_name(e));
            return;
        }
        result = HEARTH_EEXISTS;
    }
    c->registered = true;
    ctx__log(c->ctx, c, HEARTH_LOG_INFO, "registration: %s",
             result ? "the account exists" : "account created");
    CLIENT_EMIT(c, conn, registered, result);
    if (!client__alive(c, conn))
        return;
    if (auth__start(conn) == 0)
        conn->phase = PH_AUTH;
}

/* ---- bind and session ---- */

void nego__bind(conn_t *conn)
{
    hearth_client_t *c = conn->c;
    if (!conn->feat.bind) {
        fail(conn, HEARTH_EPOLICY, "the server offers no resource binding", NULL);
        return;
    }
    client__next_id(c, conn->bind_id, sizeof(conn->bind_id));
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_printf(&b, "<iq type='set' id='%s'><bind xmlns='" HEARTH_NS_BIND "'",
                               conn->bind_id);
    if (c->resource) {
        rc = rc ?: hearth_buf_append_str(&b, "><resource>");
        rc = rc ?: hearth_buf_append_text_escaped(&b, c->resource, strlen(c->resource));
        rc = rc ?: hearth_buf_append_str(&b, "</resource></bind></iq>");
    } else {
        rc = rc ?: hearth_buf_append_str(&b, "/></iq>");
    }
    if (!rc)
        send_text(conn, b.data, true);
    hearth_buf_free(&b);
    if (rc) {
        fail(conn, rc, NULL, NULL);
        return;
    }
    conn->phase = PH_BIND;
}

/* Bound (and the session, if one was asked): a new session begins. */
static void finish(conn_t *conn)
{
    hearth_client_t *c = conn->c;
    conn->phase = PH_ONLINE;
    hearth_stream_set_max_stanza(conn->stream, c->max_stanza);
    /* What the last session left: resent or reported (hearth_sm_lost_policy_t). */
    sm__new_session(c);
    if (!client__alive(c, conn))
        return;
    if (conn->feat.sm && c->sm_wanted)
        sm__enable(c);
    client__online(c, false);
}

static void bind_answer(conn_t *conn, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    hearth_client_t *c = conn->c;
    const char *type = hearth_xml_attr(el, "type");
    const char *id = hearth_xml_attr(el, "id");
    if (!is(el, "iq", HEARTH_NS_CLIENT) || !id || strcmp(id, conn->bind_id) != 0 || !type) {
        unexpected(conn, el);
        return;
    }
    if (strcmp(type, "result") != 0) {
        hearth_stanza_t st = {.refs = 1, .lent = true, .arena = arena, .node = el};
        const char *text = NULL;
        hearth_stanza_error_t e = hearth_stanza_error(&st, &text);
        char buf[400];
        snprintf(buf, sizeof(buf), "bind refused: <%s/>%s%.300s", hearth_stanza_error_name(e),
                 text ? ": " : "", text ? text : "");
        fail(conn, e == HEARTH_STANZA_ERR_CONFLICT ? HEARTH_ECONFLICT : HEARTH_ESTANZA, buf,
             hearth_stanza_error_name(e));
        return;
    }
    hearth_xml_node_t *b = hearth_xml_child(el, "bind", HEARTH_NS_BIND);
    hearth_xml_node_t *j = b ? hearth_xml_child(b, "jid", HEARTH_NS_BIND) : NULL;
    const char *text = j ? hearth_xml_text(arena, j) : NULL;
    hearth_jid_t full = HEARTH_JID_INIT;
    if (!text || hearth_jid_parse(text, strlen(text), &full, NULL) || !full.resource ||
        !hearth_jid_bare_equal(&full, &c->jid)) {
        hearth_jid_clear(&full);
        (void)hearth_stream_error(conn->stream, HEARTH_STREAM_ERR_UNDEFINED_CONDITION,
                                  "bind result without our full JID");
        fail(conn, HEARTH_EXML, "the bind result carries no full JID of this account", NULL);
        return;
    }
    ctx__free(c->ctx, c->full_jid);
    c->full_jid = ctx__strdup(c->ctx, full.full);
    hearth_jid_clear(&full);
    if (!c->full_jid) {
        fail(conn, HEARTH_ENOMEM, NULL, NULL);
        return;
    }
    if (conn->feat.session_required) {
        client__next_id(c, conn->session_id, sizeof(conn->session_id));
        char buf[160];
        snprintf(buf, sizeof(buf),
                 "<iq type='set' id='%s'><session xmlns='" HEARTH_NS_SESSION "'/></iq>",
                 conn->session_id);
        send_text(conn, buf, true);
        conn->phase = PH_SESSION;
        return;
    }
    finish(conn);
}

static void session_answer(conn_t *conn, hearth_xml_node_t *el)
{
    const char *type = hearth_xml_attr(el, "type");
    const char *id = hearth_xml_attr(el, "id");
    if (!is(el, "iq", HEARTH_NS_CLIENT) || !id || strcmp(id, conn->session_id) != 0 || !type) {
        unexpected(conn, el);
        return;
    }
    if (strcmp(type, "result") != 0) {
        fail(conn, HEARTH_ESTANZA, "session establishment refused", NULL);
        return;
    }
    finish(conn);
}

/* ---- features ---- */

static void features(conn_t *conn)
{
    hearth_client_t *c = conn->c;
    const features_t *f = &conn->feat;
    if (conn->authenticated) {
        if (c->sm_resumable && c->sm_id && f->sm)
            sm__resume(c);
        else
            nego__bind(conn);
        return;
    }
    bool secure = hearth_stream_secure(conn->stream);
    if (!secure && f->starttls &&
        (c->tls == HEARTH_TLS_REQUIRED || c->tls == HEARTH_TLS_OPTIONAL)) {
        send_text(conn, "<starttls xmlns='" HEARTH_NS_TLS "'/>", true);
        conn->phase = PH_STARTTLS;
        return;
    }
    if (!secure && c->tls == HEARTH_TLS_REQUIRED) {
        (void)hearth_stream_close(conn->stream);
        fail(conn, HEARTH_EPOLICY, "the server does not offer TLS (STARTTLS)", NULL);
        return;
    }
    if (!secure && f->starttls_required) {
        (void)hearth_stream_close(conn->stream);
        fail(conn, HEARTH_EPOLICY, "the server requires TLS, which this configuration disables",
             NULL);
        return;
    }
    if (c->register_mode != HEARTH_REGISTER_NONE && !c->registered) {
        send_register(conn);
        return;
    }
    if (auth__start(conn) == 0)
        conn->phase = PH_AUTH;
}

void nego__tls_done(conn_t *conn)
{
    hearth_client_t *c = conn->c;
    hearth_tls_t *tls = hearth_stream_tls(conn->stream);
    c->info_tls = hearth_tls_version(tls);
    /* RFC 6120 §4.7.1: the account's name in our header, now that TLS protects it. */
    if (hearth_stream_set_from(conn->stream, c->jid.bare) != 0) {
        fail(conn, HEARTH_ENOMEM, NULL, NULL);
        return;
    }
    if (c->tls_no_verify)
        ctx__log(c->ctx, c, HEARTH_LOG_WARN,
                 "the server's certificate was not checked (tls_no_verify)");
    conn->phase = PH_FEATURES;
}

void nego__element(conn_t *conn, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    switch (conn->phase) {
    case PH_FEATURES:
        if (!is(el, "features", HEARTH_NS_STREAMS)) {
            unexpected(conn, el);
            return;
        }
        parse_features(conn, el);
        if (conn->authenticated)
            keep_features(conn->c, el);
        features(conn);
        return;
    case PH_STARTTLS:
        if (is(el, "proceed", HEARTH_NS_TLS)) {
            conn->phase = PH_TLS;
            int rc = hearth_stream_starttls(conn->stream, conn->c->tls_ctx);
            if (rc)
                fail(conn, rc == HEARTH_ENOMEM ? rc : HEARTH_ETLS, "cannot start TLS", NULL);
        } else if (is(el, "failure", HEARTH_NS_TLS)) {
            fail(conn, HEARTH_ETLS, "the server refused STARTTLS", NULL);
        } else {
            unexpected(conn, el);
        }
        return;
    case PH_REGISTER:
        register_answer(conn, el, arena);
        return;
    case PH_AUTH:
        auth__element(conn, el);
        return;
    case PH_RESUME:
        if (!strcmp(el->ns, HEARTH_NS_SM3))
            sm__element(conn->c, el);
        else
            unexpected(conn, el);
        return;
    case PH_BIND:
        bind_answer(conn, el, arena);
        return;
    case PH_SESSION:
        session_answer(conn, el);
        return;
    default:
        unexpected(conn, el);
        return;
    }
}
