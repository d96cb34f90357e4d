/* Stream management (XEP-0198 v3) and the outbox under it: every stanza for the server passes
 * here; it is written at once when online and nothing waits before it, queued while there is no
 * connection, and kept until the server acknowledges it while stream management is on. Acks
 * asked and answered, resumption with resend, and what happens to the unacknowledged when a
 * session is lost (hearth_sm_lost_policy_t). Counters are 32-bit and wrap, as the XEP says. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- the ring ---- */

static out_entry_t *entry_at(const outbox_t *o, unsigned i)
{
    return o->ring[(o->head + i) % o->cap];
}

static int ring_grow(hearth_client_t *c)
{
    outbox_t *o = &c->outbox;
    unsigned cap = o->cap ? o->cap * 2 : 8;
    out_entry_t **ring = ctx__alloc(c->ctx, cap * sizeof(*ring));
    if (!ring)
        return HEARTH_ENOMEM;
    for (unsigned i = 0; i < o->count; i++)
        ring[i] = entry_at(o, i);
    ctx__free(c->ctx, o->ring);
    o->ring = ring;
    o->cap = cap;
    o->head = 0;
    return 0;
}

static void entry_free(hearth_client_t *c, out_entry_t *e)
{
    if (e->iq)
        e->iq->entry = NULL;
    ctx__free(c->ctx, e);
}

/* Removes the first entry; the caller already took what it needed from it. */
static void pop_head(hearth_client_t *c)
{
    outbox_t *o = &c->outbox;
    out_entry_t *e = entry_at(o, 0);
    o->bytes -= e->len;
    o->head = (o->head + 1) % o->cap;
    o->count--;
    if (o->written)
        o->written--;
    if (o->old_written)
        o->old_written--;
    entry_free(c, e);
    if (!o->count) {
        /* An idle client holds no ring. */
        ctx__free(c->ctx, o->ring);
        o->ring = NULL;
        o->cap = o->head = 0;
    }
}

static bool counting(const hearth_client_t *c)
{
    return c->sm_enabled || c->sm_enabling;
}

static bool online(const hearth_client_t *c)
{
    return c->state == HEARTH_CLIENT_ONLINE && c->conn && c->conn->phase == PH_ONLINE;
}

static void send_raw(hearth_client_t *c, const char *s)
{
    if (c->conn && net__send(c->conn, s, strlen(s)) == 0 && c->log_stanzas)
        ctx__log(c->ctx, c, HEARTH_LOG_TRACE, "-> %s", s);
}

static void request_ack(hearth_client_t *c)
{
    if (!c->sm_enabled || c->sm_r_outstanding || !c->sm_unrequested)
        return;
    send_raw(c, "<r xmlns='" HEARTH_NS_SM3 "'/>");
    c->sm_r_outstanding = true;
    c->sm_unrequested = 0;
}

/* Writes entry i (the first unwritten); without stream management it leaves the outbox. */
static int write_entry(hearth_client_t *c)
{
    outbox_t *o = &c->outbox;
    out_entry_t *e = entry_at(o, o->written);
    int rc = net__send(c->conn, e->data, e->len);
    if (rc)
        return rc;
    if (e->iq)
        e->iq->written = true;
    if (counting(c)) {
        o->written++;
        c->sm_unrequested++;
        if (c->sm_unrequested >= c->sm_ack_every)
            request_ack(c);
        return 0;
    }
    /* Only queued entries are ever written without counting, and they are first in line. */
    o->written++;
    if (e->iq)
        e->iq->entry = NULL;
    e->iq = NULL;
    pop_head(c);
    return 0;
}

int sm__send(hearth_client_t *c, const char *data, size_t len, pending_iq_t *iq)
{
    outbox_t *o = &c->outbox;
    bool now = online(c);
    if (now && !counting(c) && o->written == o->count) {
        /* The common case without stream management: straight out, nothing kept. */
        int rc = net__send(c->conn, data, len);
        if (!rc && iq)
            iq->written = true;
        return rc;
    }
    if (o->count >= c->sm_max_unacked || o->bytes + len > c->sm_max_unacked_bytes ||
        len > UINT32_MAX) {
        request_ack(c);
        return HEARTH_ELIMIT;
    }
    if (o->count == o->cap && ring_grow(c))
        return HEARTH_ENOMEM;
    out_entry_t *e = ctx__alloc(c->ctx, sizeof(*e) + len);
    if (!e)
        return HEARTH_ENOMEM;
    e->iq = iq;
    e->len = (uint32_t)len;
    memcpy(e->data, data, len);
    o->ring[(o->head + o->count) % o->cap] = e;
    o->count++;
    o->bytes += len;
    if (iq)
        iq->entry = e;
    /* A write error ends the connection; the entry stays for the next one. */
    if (now && o->written == o->count - 1)
        (void)write_entry(c);
    return 0;
}

void sm__write_pending(hearth_client_t *c)
{
    while (online(c) && c->outbox.written < c->outbox.count)
        if (write_entry(c))
            break;
}

void sm__before_flush(hearth_client_t *c)
{
    request_ack(c);
}

/* ---- acknowledgements ---- */

/* The server handled stanzas up to h. false when h is more than was sent (a broken server). */
static bool ack(hearth_client_t *c, uint32_t h)
{
    uint32_t n = h - c->sm_acked;
    if (n > c->outbox.count)
        return false;
    for (uint32_t i = 0; i < n; i++)
        pop_head(c);
    c->sm_acked = h;
    if (n)
        CLIENT_EMIT(c, NULL, acked, n);
    return true;
}

static bool parse_h(const hearth_xml_node_t *el, uint32_t *h)
{
    const char *s = hearth_xml_attr(el, "h");
    if (!s || *s < '0' || *s > '9')
        return false;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || v > UINT32_MAX)
        return false;
    *h = (uint32_t)v;
    return true;
}

static void too_high(hearth_client_t *c, uint32_t h)
{
    char text[160];
    snprintf(text, sizeof(text), "You acknowledged %u stanzas, but I only sent %u so far.",
             (unsigned)(h - c->sm_acked), c->outbox.count);
    if (c->conn && c->conn->stream)
        (void)hearth_stream_error(c->conn->stream, HEARTH_STREAM_ERR_UNDEFINED_CONDITION, text);
    client__lost(c, HEARTH_ESTREAM, HEARTH_STREAM_ERR_NONE, text, NULL);
}

/* ---- enable, resume ---- */

void sm__enable(hearth_client_t *c)
{
    send_raw(c, "<enable xmlns='" HEARTH_NS_SM3 "' resume='true'/>");
    c->sm_enabling = true;
    c->sm_acked = 0;
    c->sm_in = 0;
    c->sm_unrequested = 0;
    c->sm_r_outstanding = false;
}

void sm__resume(hearth_client_t *c)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "<resume xmlns='" HEARTH_NS_SM3 "' h='%u' previd='",
             (unsigned)c->sm_in);
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, buf);
    rc = rc ?: hearth_buf_append_escaped(&b, c->sm_id, strlen(c->sm_id));
    rc = rc ?: hearth_buf_append_str(&b, "'/>");
    if (!rc) {
        (void)net__send(c->conn, b.data, b.len);
        if (c->log_stanzas)
            ctx__log(c->ctx, c, HEARTH_LOG_TRACE, "-> %s", b.data);
    }
    hearth_buf_free(&b);
    c->conn->phase = PH_RESUME;
    if (rc)
        client__lost(c, rc, HEARTH_STREAM_ERR_NONE, NULL, NULL);
}

static void enabled(hearth_client_t *c, hearth_xml_node_t *el)
{
    c->sm_enabling = false;
    c->sm_enabled = true;
    const char *resume = hearth_xml_attr(el, "resume");
    const char *id = hearth_xml_attr(el, "id");
    ctx__free(c->ctx, c->sm_id);
    c->sm_id = NULL;
    c->sm_resumable =
        id && resume && (!strcmp(resume, "true") || !strcmp(resume, "1")) && strlen(id) < 256;
    if (c->sm_resumable && !(c->sm_id = ctx__strdup(c->ctx, id)))
        c->sm_resumable = false;
    ctx__log(c->ctx, c, HEARTH_LOG_DEBUG, "stream management on%s",
             c->sm_resumable ? " (resumable)" : "");
    request_ack(c);
}

/* <enable/> refused: what was written is gone without acks; queued stays queued. */
static void enable_failed(hearth_client_t *c)
{
    c->sm_enabling = false;
    ctx__log(c->ctx, c, HEARTH_LOG_INFO, "stream management refused by the server");
    while (c->outbox.written > 0) {
        out_entry_t *e = entry_at(&c->outbox, 0);
        if (e->iq)
            e->iq->entry = NULL;
        e->iq = NULL;
        pop_head(c);
    }
}

static void resumed(hearth_client_t *c, hearth_xml_node_t *el)
{
    uint32_t h;
    if (!parse_h(el, &h)) {
        client__lost(c, HEARTH_EXML, HEARTH_STREAM_ERR_NONE, "<resumed/> without a valid h", NULL);
        return;
    }
    c->outbox.written = 0;
    c->outbox.old_written = 0;
    if (!ack(c, h)) {
        too_high(c, h);
        return;
    }
    if (!client__alive(c, NULL))
        return;
    c->sm_enabled = true;
    c->sm_unrequested = 0;
    c->sm_r_outstanding = false;
    c->conn->phase = PH_ONLINE;
    hearth_stream_set_max_stanza(c->conn->stream, c->max_stanza);
    client__online(c, true);
}

/* <failed/> of a resumption: a new session will be bound; h, when given, says which of ours
 * the old one handled (XEP-0198 §4: treat it as an <a/>). */
static void resume_failed(hearth_client_t *c, hearth_xml_node_t *el)
{
    uint32_t h;
    if (parse_h(el, &h)) {
        c->outbox.written = 0;
        if (ack(c, h)) {
            c->sm_h_known = true;
            c->outbox.old_written = 0;
        }
        if (!client__alive(c, NULL))
            return;
    }
    ctx__log(c->ctx, c, HEARTH_LOG_INFO, "resumption refused: a new session");
    c->sm_resumable = false;
    c->sm_enabled = false;
    ctx__free(c->ctx, c->sm_id);
    c->sm_id = NULL;
    nego__bind(c->conn);
}

void sm__element(hearth_client_t *c, hearth_xml_node_t *el)
{
    conn_t *conn = c->conn;
    if (!strcmp(el->name, "r")) {
        if (c->sm_enabled) {
            char buf[64];
            snprintf(buf, sizeof(buf), "<a xmlns='" HEARTH_NS_SM3 "' h='%u'/>", (unsigned)c->sm_in);
            send_raw(c, buf);
        }
    } else if (!strcmp(el->name, "a")) {
        uint32_t h;
        if (!c->sm_enabled)
            return;
        if (!parse_h(el, &h)) {
            client__lost(c, HEARTH_EXML, HEARTH_STREAM_ERR_NONE, "<a/> without a valid h", NULL);
            return;
        }
        c->sm_r_outstanding = false;
        if (!ack(c, h))
            too_high(c, h);
    } else if (!strcmp(el->name, "enabled") && c->sm_enabling) {
        enabled(c, el);
    } else if (!strcmp(el->name, "resumed") && conn && conn->phase == PH_RESUME) {
        resumed(c, el);
    } else if (!strcmp(el->name, "failed")) {
        if (conn && conn->phase == PH_RESUME)
            resume_failed(c, el);
        else if (c->sm_enabling)
            enable_failed(c);
    }
}

/* ---- losses ---- */

void sm__connection_lost(hearth_client_t *c)
{
    outbox_t *o = &c->outbox;
    if (o->written > o->old_written)
        o->old_written = o->written;
    o->written = 0;
    c->sm_enabled = c->sm_enabling = false;
    c->sm_unrequested = 0;
    c->sm_r_outstanding = false;
}

static void report_lost(hearth_client_t *c, out_entry_t *e)
{
    if (e->iq || !client__hears_lost(c))
        return; /* an IQ's callback tells its loss */
    hearth_stanza_t *st = hearth_stanza_parse(e->data, e->len, NULL);
    if (!st)
        return;
    st->lent = true;
    CLIENT_EMIT(c, NULL, stanza_lost, st);
    st->lent = false;
    hearth_stanza_unref(st);
}

void sm__new_session(hearth_client_t *c)
{
    outbox_t *o = &c->outbox;
    /* Written to a session that is gone, fate unknown: reported, unless resent by policy. */
    unsigned unknown = c->sm_h_known || c->sm_lost_policy == HEARTH_SM_RESEND ? 0 : o->old_written;
    for (unsigned i = 0; i < unknown && o->count && client__alive(c, NULL); i++) {
        out_entry_t *e = entry_at(o, 0);
        /* Detach first: the report may send, and the ring may move. */
        o->ring[o->head] = NULL;
        o->bytes -= e->len;
        o->head = (o->head + 1) % o->cap;
        o->count--;
        if (o->old_written)
            o->old_written--;
        report_lost(c, e);
        entry_free(c, e);
    }
    o->old_written = 0;
    o->written = 0;
    c->sm_h_known = false;
    c->sm_acked = 0;
    c->sm_in = 0;
    if (client__alive(c, NULL))
        dispatch__fail_iqs(c, HEARTH_ECLOSED, true);
}

void sm__give_up(hearth_client_t *c)
{
    outbox_t *o = &c->outbox;
    while (o->count && client__alive(c, NULL)) {
        out_entry_t *e = entry_at(o, 0);
        o->ring[o->head] = NULL;
        o->bytes -= e->len;
        o->head = (o->head + 1) % o->cap;
        o->count--;
        report_lost(c, e);
        entry_free(c, e);
    }
    if (!o->count) {
        ctx__free(c->ctx, o->ring);
        memset(o, 0, sizeof(*o));
    }
    sm__forget(c);
    c->sm_enabled = c->sm_enabling = false;
    c->sm_acked = c->sm_in = 0;
}

void sm__forget(hearth_client_t *c)
{
    c->sm_resumable = false;
    ctx__free(c->ctx, c->sm_id);
    c->sm_id = NULL;
}

void sm__all_handled(hearth_client_t *c)
{
    while (c->outbox.written > 0)
        pop_head(c);
    sm__forget(c);
}

void sm__free(hearth_client_t *c)
{
    outbox_t *o = &c->outbox;
    for (unsigned i = 0; i < o->count; i++)
        entry_free(c, entry_at(o, i));
    ctx__free(c->ctx, o->ring);
    memset(o, 0, sizeof(*o));
}
