/* SASL on a c2s stream (RFC 6120 §6): the username is taken from the client's first message,
 * the server-wide guard asked whether this address may try (core/authguard.h), the stored SCRAM
 * secret fetched from storage asynchronously (a deterministic fake one for an unknown user),
 * then the exchange steps: SCRAM on the loop (HMACs only), PLAIN on libuv's pool (PBKDF2).
 * Failures are delayed and counted per stream (too many close it) and across streams by the
 * guard. */
#include <stdlib.h>
#include <string.h>

#include "hearth/ns.h"

#include "c2s/conn.h"
#include "core/log.h"

/* An asynchronous step (storage fetch or PLAIN on the pool) remembers which exchange it
 * belongs to: a result for an aborted or replaced exchange is dropped. */
typedef struct auth_job {
    uv_work_t work;
    conn_t *c;
    unsigned gen;
    char *in;
    size_t in_len;
    int rc;
    char *out;
    size_t out_len;
    hearth_sasl_server_t *sasl; /* owned by the job while the pool steps it */
    /* PLAIN to an account with SCRAM-SHA-1 keys only (imported from another server): once the
     * password is proven, the step derives the SHA-256 keys too, and they are stored with the
     * SHA-1 ones. */
    int upgrade;
    hearth_scram_secret_t sha1;
} auth_job_t;

static void send_failure(conn_t *c, const char *cond, const char *text)
{
    char buf[320];
    snprintf(buf, sizeof(buf), "<failure xmlns='%s'><%s/>%s%s%s</failure>", HEARTH_NS_SASL, cond,
             text ? "<text xml:lang='en'>" : "", text ? text : "", text ? "</text>" : "");
    conn__send_str(c, buf);
}

/* Settles the attempt reserved with the guard (none: nothing to do). */
static void guard_end(conn_t *c, authguard_outcome_t outcome)
{
    authguard__end(c->w->srv->guard, c->guard_ticket, outcome);
    c->guard_ticket = NULL;
}

void auth__free(conn_t *c)
{
    /* An exchange ending here without a verdict (aborted, malformed, replaced, stream closed)
     * checked no password. */
    guard_end(c, AUTHGUARD_UNCHECKED);
    c->auth_check_pending = 0;
    if (c->sasl) {
        hearth_sasl_server_free(c->sasl);
        c->sasl = NULL;
    }
    free(c->sasl_mech);
    c->sasl_mech = NULL;
    free(c->authcid);
    c->authcid = NULL;
    free(c->sasl_initial);
    c->sasl_initial = NULL;
    c->sasl_initial_len = 0;
    c->sasl_need_initial = 0;
}

/* Ends the exchange with a failure that does not count as a wrong password. text is a
 * constant without markup. */
static void fail_text(conn_t *c, const char *cond, const char *text)
{
    auth__free(c);
    c->sasl_gen++;
    c->sasl_waiting = 0;
    c->state = C2S_PREAUTH;
    send_failure(c, cond, text);
}

static void fail(conn_t *c, const char *cond)
{
    fail_text(c, cond, NULL);
}

void auth__fail_now(conn_t *c)
{
    c->auth_fail_pending = 0;
    c->sasl_waiting = 0;
    if (c->auth_fail_throttled)
        send_failure(c, "temporary-auth-failure",
                     "too many failed authentication attempts; try again later");
    else
        send_failure(c, "not-authorized", NULL);
    c->auth_fail_throttled = 0;
    if (c->auth_failures >= c->w->set.auth_attempts)
        conn__stream_error(c, HEARTH_STREAM_ERR_NOT_AUTHORIZED,
                           "too many failed authentication attempts");
}

/* Wrong credentials, or (throttled) an attempt the guard refused unchecked: counted on the
 * stream, answered after the configured delay. */
static void fail_counted(conn_t *c, int throttled)
{
    c->w->stats.login_failures[worker__mech_index(c->sasl_mech)]++;
    auth__free(c);
    c->auth_fail_throttled = throttled;
    c->sasl_gen++;
    c->state = C2S_PREAUTH;
    c->auth_failures++;
    unsigned delay = c->w->set.auth_fail_delay_ms;
    if (delay == 0) {
        auth__fail_now(c);
        return;
    }
    c->auth_fail_pending = 1;
    c->sasl_waiting = 1; /* nothing more is processed until the failure is sent */
    conn__timer_in(c, delay);
}

static void fail_auth(conn_t *c)
{
    hlog_conn(LOG_INFO, c->id, NULL, "authentication failed for '%s' with %s from %s",
              c->authcid ? c->authcid : "", c->sasl_mech ? c->sasl_mech : "?", conn__ip(c));
    guard_end(c, AUTHGUARD_FAILED);
    fail_counted(c, 0);
}

static void succeed(conn_t *c, const char *out, size_t out_len)
{
    /* Told only after the password proved right, so that a lock reveals nothing to others. */
    if (c->acct_locked) {
        hlog_conn(LOG_INFO, c->id, NULL, "%s: the account is locked", c->authcid);
        fail_text(c, "account-disabled", "this account is locked by an administrator");
        return;
    }
    char *b64 = NULL;
    if (out_len && hearth_base64_encode(out, out_len, &b64)) {
        conn__abort(c);
        return;
    }
    char *bare = NULL;
    if (asprintf(&bare, "%s@%s", c->authcid, c->w->set.domain) < 0) {
        free(b64);
        conn__abort(c);
        return;
    }
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc =
        hearth_buf_printf(&b, "<success xmlns='%s'>%s</success>", HEARTH_NS_SASL, b64 ? b64 : "");
    if (!rc)
        conn__send(c, b.data, b.len);
    hearth_buf_free(&b);
    free(b64);
    hlog_conn(LOG_INFO, c->id, bare, "authenticated %s with %s", bare, c->sasl_mech);
    c->w->stats.logins[worker__mech_index(c->sasl_mech)]++;
    guard_end(c, AUTHGUARD_SUCCEEDED);
    snprintf(c->authed_mech, sizeof(c->authed_mech), "%s", c->sasl_mech ? c->sasl_mech : "");
    auth__free(c);
    c->sasl_gen++;
    c->bare = bare;
    c->state = C2S_AUTHED;
    c->accepted_ms = uv_now(&c->w->loop); /* the bind deadline counts from here */
    if (c->preauth_counted) {
        server__preauth_leave(c->w->srv, conn__ip(c));
        c->preauth_counted = 0;
    }
    c2s__restart_stream(c);
}

static void step_result(conn_t *c, int rc, char *out, size_t out_len)
{
    if (rc == HEARTH_EAGAIN) {
        char *b64 = NULL;
        if (hearth_base64_encode(out ? out : "", out_len, &b64)) {
            conn__abort(c);
        } else {
            hearth_buf_t b = HEARTH_BUF_INIT;
            if (!hearth_buf_printf(&b, "<challenge xmlns='%s'>%s</challenge>", HEARTH_NS_SASL, b64))
                conn__send(c, b.data, b.len);
            hearth_buf_free(&b);
        }
        free(b64);
    } else if (rc == 0) {
        succeed(c, out, out_len);
    } else if (rc == HEARTH_EINVAL) {
        fail(c, "malformed-request");
    } else {
        fail_auth(c);
    }
    free(out);
}

static void plain_work(uv_work_t *w)
{
    auth_job_t *j = w->data;
    j->rc = hearth_sasl_server_step(j->sasl, j->in, j->in_len, &j->out, &j->out_len);
    if (j->rc != 0 || !hearth_sasl_server_derived(j->sasl))
        j->upgrade = 0; /* a login without the keys stands: they come at a later one */
}

static void upgrade_stored(void *ud, int err)
{
    char *user = ud;
    if (err)
        hlog(LOG_WARN, "SCRAM-SHA-256 keys for %s not stored: %s (added at a later PLAIN login)",
             user, hearth_strerror(err));
    else
        hlog(LOG_INFO,
             "%s: SCRAM-SHA-256 keys added at a PLAIN login (the account had "
             "SCRAM-SHA-1 keys only)",
             user);
    free(user);
}

static void store_upgrade(conn_t *c, auth_job_t *j)
{
    char *user = c->authcid ? strdup(c->authcid) : NULL;
    if (!user ||
        storage_account_set_secrets(c->w->srv->storage, &c->w->storage_target, user, &j->sha1,
                                    hearth_sasl_server_derived(j->sasl), upgrade_stored, user))
        free(user);
}

static void plain_done(uv_work_t *w, int status)
{
    auth_job_t *j = w->data;
    conn_t *c = j->c;
    /* A result for an exchange that was aborted or replaced meanwhile is dropped, and must not
     * unlock the newer one. */
    if (j->gen == c->sasl_gen)
        c->sasl_waiting = 0;
    if (!c->closing && j->gen == c->sasl_gen) {
        if (j->upgrade && status == 0)
            store_upgrade(c, j);
        c->sasl = j->sasl; /* back to the connection, which frees it (auth__free) */
        j->sasl = NULL;
        step_result(c, status ? HEARTH_EAUTH : j->rc, j->out, j->out_len);
        j->out = NULL;
    }
    if (j->sasl)
        hearth_sasl_server_free(j->sasl);
    free(j->out);
    free(j->in);
    explicit_bzero(j, sizeof(*j));
    free(j);
    conn__unref(c);
}

static void on_account(void *ud, int err, const storage_account_t *acct)
{
    auth_job_t *j = ud;
    conn_t *c = j->c;
    server_t *srv = c->w->srv;
    if (c->closing || j->gen != c->sasl_gen)
        goto out;
    c->sasl_waiting = 0;
    if (err && err != HEARTH_ENOTFOUND) {
        hlog_conn(LOG_ERROR, c->id, NULL, "account lookup failed: %s", hearth_strerror(err));
        fail(c, "temporary-auth-failure");
        goto out;
    }
    c2s_bindings_t cb;
    size_t ncb = c2s__bindings(c, &cb);
    if (c->cb_type_mismatch && !hearth_sasl_mech_is_plus(c->sasl_mech))
        ncb = 0; /* accept 'y' from a client that shares no binding type with us */
    c->sasl = hearth_sasl_server_new(c2s__worker(c->w)->sasl, c->sasl_mech, cb.b, ncb);
    if (!c->sasl) {
        fail(c, "invalid-mechanism");
        goto out;
    }
    hearth_scram_hash_t h = hearth_sasl_mech_hash(c->sasl_mech);
    hearth_scram_secret_t fake;
    const hearth_scram_secret_t *secret;
    c->acct_locked = acct && acct->locked;
    if (acct) {
        secret = h == HEARTH_SCRAM_SHA1 ? &acct->sha1 : &acct->sha256;
        if (hearth_sasl_server_step_is_costly(c->sasl) && acct->sha256.iterations == 0 &&
            acct->sha1.iterations != 0) {
            /* PLAIN to an account that has SCRAM-SHA-1 keys only: checked against those; the
             * password, once proven, gives the SHA-256 keys (plain_work). SCRAM-SHA-256 stays
             * refused with not-authorized until then: there is nothing to check it against. */
            secret = &acct->sha1;
            j->upgrade = 1;
            j->sha1 = acct->sha1;
            hearth_sasl_server_derive_sha256(c->sasl, c->w->set.scram_iterations);
        }
    } else {
        if (hearth_scram_secret_fake(h, srv->secret, sizeof(srv->secret),
                                     c->authcid ? c->authcid : "", &fake)) {
            fail(c, "temporary-auth-failure");
            goto out;
        }
        fake.iterations = c->w->set.scram_iterations;
        secret = &fake;
    }
    hearth_sasl_server_set_secret(c->sasl, secret);
    if (hearth_sasl_server_step_is_costly(c->sasl)) {
        j->in = c->sasl_initial;
        j->in_len = c->sasl_initial_len;
        c->sasl_initial = NULL;
        j->work.data = j;
        /* The pool thread steps the session: the connection must not free it meanwhile (an
         * <abort/> would), so the job owns it until plain_done. */
        j->sasl = c->sasl;
        c->sasl = NULL;
        if (uv_queue_work(&c->w->loop, &j->work, plain_work, plain_done) == 0) {
            c->sasl_waiting = 1;
            return; /* the job keeps its reference to c */
        }
        c->sasl = j->sasl;
        j->sasl = NULL;
        fail(c, "temporary-auth-failure");
        goto out;
    }
    char *o = NULL;
    size_t olen = 0;
    int rc = hearth_sasl_server_step(c->sasl, c->sasl_initial, c->sasl_initial_len, &o, &olen);
    step_result(c, rc, o, olen);
out:
    free(j->in);
    free(j);
    conn__unref(c);
}

static int binding_offered(const conn_t *c, const char *type)
{
    c2s_bindings_t cb;
    c2s__bindings(c, &cb);
    for (size_t i = 0; i < cb.n; i++)
        if (!strcmp(cb.b[i].type, type))
            return 1;
    return 0;
}

static void begin(conn_t *c, const char *data, size_t len)
{
    hearth_sasl_initial_t ini = {0};
    const char *reason = NULL;
    c->sasl_need_initial = 0;
    if (hearth_sasl_parse_initial(c->sasl_mech, data, len, &ini, &reason)) {
        hlog_conn(LOG_INFO, c->id, NULL, "malformed SASL %s message: %s", c->sasl_mech,
                  reason ? reason : "?");
        fail(c, "malformed-request");
        return;
    }
    if (ini.cbflag == 'p' && !binding_offered(c, ini.cbname)) {
        /* A channel-binding type we do not offer is a mismatch, not a wrong password: not
         * counted, and on this stream the client's later 'y' (it binds, but not with any type
         * we have) is no sign of a downgrade, since no type is shared (RFC 5802 §6, RFC 9266).
         * This is what lets clients that know only tls-unique in (docs/protocols.md). */
        hlog_conn(LOG_INFO, c->id, NULL, "SASL %s asked for channel binding '%s', not offered",
                  c->sasl_mech, ini.cbname);
        hearth_sasl_initial_clear(&ini);
        c->cb_type_mismatch = 1;
        fail_text(c, "not-authorized",
                  "unsupported channel binding type: the types offered are in the "
                  "sasl-channel-binding stream feature");
        return;
    }
    char *user = NULL;
    int valid = hearth_jid_nodeprep(ini.authcid, strlen(ini.authcid), &user, &reason) == 0;
    if (ini.authzid) {
        hearth_jid_t z = HEARTH_JID_INIT;
        int ok = valid && hearth_jid_parse(ini.authzid, strlen(ini.authzid), &z, &reason) == 0 &&
                 z.node && !z.resource && !strcmp(z.node, user) &&
                 !strcmp(z.domain, c->w->set.domain);
        hearth_jid_clear(&z);
        if (!ok) {
            free(user);
            hearth_sasl_initial_clear(&ini);
            fail(c, "invalid-authzid");
            return;
        }
    }
    /* An invalid username can never log in, but it still gets a challenge like any other. */
    c->authcid = valid ? user : strdup(ini.authcid);
    if (!valid)
        free(user);
    hearth_sasl_initial_clear(&ini);
    c->sasl_initial = malloc(len + 1);
    if (!c->authcid || !c->sasl_initial) {
        conn__abort(c);
        return;
    }
    memcpy(c->sasl_initial, data, len);
    c->sasl_initial_len = len;
    c->sasl_valid_user = valid;

    /* Across streams: may this address try now (core/authguard.h)? */
    authguard_verdict_t v;
    int rc = authguard__begin(c->w->srv->guard, conn__ip(c), valid ? c->authcid : NULL,
                              &c->guard_ticket, &v);
    if (v.newly_throttled && v.delay_ms)
        hlog_conn(LOG_WARN, c->id, NULL,
                  "throttling logins to account '%s': too many failures from all addresses, "
                  "each attempt now waits %u ms",
                  c->authcid, v.delay_ms);
    else if (v.newly_throttled)
        hlog_conn(LOG_WARN, c->id, NULL,
                  "throttling failed logins from %s (for '%s'): the %s is over its budget, "
                  "attempts are refused unchecked",
                  conn__ip(c), c->authcid, v.newly_throttled);
    if (rc == HEARTH_ELIMIT) {
        hlog_conn(LOG_DEBUG, c->id, NULL, "authentication for '%s' from %s refused unchecked",
                  c->authcid, conn__ip(c));
        fail_counted(c, 1);
        return;
    }
    if (rc) {
        fail(c, "temporary-auth-failure");
        return;
    }
    if (v.delay_ms) {
        c->auth_check_pending = 1;
        c->sasl_waiting = 1;
        conn__timer_in(c, v.delay_ms);
        return;
    }
    auth__check_now(c);
}

void auth__check_now(conn_t *c)
{
    c->auth_check_pending = 0;
    auth_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        conn__abort(c);
        return;
    }
    j->c = c;
    j->gen = c->sasl_gen;
    conn__ref(c);
    c->sasl_waiting = 1;
    if (!c->sasl_valid_user) {
        on_account(j, HEARTH_ENOTFOUND, NULL);
        return;
    }
    if (storage_account_get(c->w->srv->storage, &c->w->storage_target, c->authcid, on_account, j)) {
        c->sasl_waiting = 0;
        free(j);
        conn__unref(c);
        fail(c, "temporary-auth-failure");
    }
}

static int decode(conn_t *c, hearth_xml_node_t *n, hearth_arena_t *arena, char **out, size_t *len)
{
    const char *text = hearth_xml_text(arena, n);
    size_t tl = strlen(text);
    /* Whitespace is not base64; but some clients wrap lines: strip it first. */
    char *clean = hearth_arena_alloc(arena, tl + 1);
    size_t k = 0;
    for (size_t i = 0; i < tl; i++)
        if (text[i] != ' ' && text[i] != '\n' && text[i] != '\r' && text[i] != '\t')
            clean[k++] = text[i];
    clean[k] = '\0';
    if (k == 0) {
        *out = NULL;
        *len = 0;
        return 0;
    }
    return hearth_base64_decode(clean, k, out, len);
}

void auth__start(conn_t *c, hearth_xml_node_t *n, hearth_arena_t *arena)
{
    const settings_t *s = &c->w->set;
    if (c->sasl_waiting) {
        conn__stream_error(c, HEARTH_STREAM_ERR_POLICY_VIOLATION, "SASL element while busy");
        return;
    }
    if (c->state == C2S_SASL) /* a new <auth/> replaces an unfinished exchange */
        auth__free(c);
    c->sasl_gen++;
    if (!c->secure && s->tls_required && c->w->srv->tls) {
        fail(c, "encryption-required");
        return;
    }
    const char *mech = hearth_xml_attr(n, "mechanism");
    if (!mech || !c2s__mech_offered(c, mech)) {
        fail(c, "invalid-mechanism");
        return;
    }
    char *data = NULL;
    size_t len = 0;
    const char *text = hearth_xml_text(arena, n);
    if (decode(c, n, arena, &data, &len)) {
        fail(c, "incorrect-encoding");
        return;
    }
    c->sasl_mech = strdup(mech);
    c->state = C2S_SASL;
    if (!*text) { /* no initial response: ask for it with an empty challenge */
        c->sasl_need_initial = 1;
        conn__send_str(c, "<challenge xmlns='" HEARTH_NS_SASL "'/>");
        free(data);
        return;
    }
    begin(c, data ? data : "", len);
    free(data);
}

void auth__response(conn_t *c, hearth_xml_node_t *n, hearth_arena_t *arena)
{
    if (c->sasl_waiting) {
        conn__stream_error(c, HEARTH_STREAM_ERR_POLICY_VIOLATION, "SASL element while busy");
        return;
    }
    if (c->state != C2S_SASL) {
        fail(c, "malformed-request");
        return;
    }
    char *data = NULL;
    size_t len = 0;
    if (decode(c, n, arena, &data, &len)) {
        fail(c, "incorrect-encoding");
        return;
    }
    if (c->sasl_need_initial) {
        begin(c, data ? data : "", len);
        free(data);
        return;
    }
    if (!c->sasl) {
        free(data);
        fail(c, "malformed-request");
        return;
    }
    char *o = NULL;
    size_t olen = 0;
    int rc = hearth_sasl_server_step(c->sasl, data ? data : "", len, &o, &olen);
    free(data);
    step_result(c, rc, o, olen);
}

void auth__abort(conn_t *c)
{
    if (c->auth_fail_pending)
        return;
    fail(c, "aborted");
}
