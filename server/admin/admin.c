/* The administration listener: its route table on the HTTP machinery (net/http.c), the Host
 * check against DNS rebinding, authentication (API keys as Bearer tokens, administrators'
 * passwords by HTTP Basic, checked on the thread pool and throttled by core/authguard), the
 * first-run setup and the API keys. It runs on the workers' loops like any HTTP connection and
 * reaches accounts only through storage; api.c reaches users and sessions through inboxes. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "hearth/jid.h"

#include "admin/internal.h"
#include "core/datadir.h"
#include "core/log.h"

admin_state_t admin__st;

#define KEY_KIND "admin_key" /* storage documents: one per API key, by its id */
#define KEY_ID_HEX 16        /* an API key is hk_<id>_<secret>: the id in hex... */
#define KEY_SECRET_HEX 64    /* ...and 32 random bytes in hex */
#define KEY_NAME_MAX 128     /* bytes of a key's name */
#define LOCAL_KEY_PREFIX "hk_local_"

/* ---- small helpers ---- */

static void hex_of(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int admin__random_hex(char *out, size_t bytes)
{
    unsigned char buf[64];
    if (bytes > sizeof(buf) || uv_random(NULL, NULL, buf, bytes, 0, NULL))
        return HEARTH_EIO;
    hex_of(buf, bytes, out);
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

void admin__sha256(const char *s, size_t n, unsigned char out[32])
{
    unsigned int len = 32;
    EVP_Digest(s, n, out, &len, EVP_sha256(), NULL);
}

static int all_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", s[i]) || !s[i])
            return 0;
    return 1;
}

/* 127.0.0.0/8, ::1 and ::ffff:127.x.x.x: the peer's socket address, never a header's. */
int admin__loopback(const char *ip)
{
    return !strncmp(ip, "127.", 4) || !strcmp(ip, "::1") || !strncasecmp(ip, "::ffff:127.", 11);
}

void admin__memory(uint64_t *rss, uint64_t *hwm)
{
    *rss = *hwm = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    char line[256];
    unsigned long long kb;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmRSS: %llu kB", &kb) == 1)
            *rss = kb * 1024;
        else if (sscanf(line, "VmHWM: %llu kB", &kb) == 1)
            *hwm = kb * 1024;
    }
    fclose(f);
}

/* ---- answers ---- */

static const char *JSON_TYPE = "application/json";
#define NO_STORE "Cache-Control: no-store\r\n"

void admin__req_free(admin_req_t *ar)
{
    if (!ar)
        return;
    if (ar->password) {
        explicit_bzero(ar->password, strlen(ar->password));
        free(ar->password);
    }
    explicit_bzero(&ar->secret, sizeof(ar->secret));
    if (ar->ticket)
        authguard__end(ar->w->srv->guard, ar->ticket, AUTHGUARD_UNCHECKED);
    free(ar->user);
    free(ar->path);
    free(ar->query);
    if (ar->body)
        explicit_bzero(ar->body, ar->body_len); /* it may carry a password */
    free(ar->body);
    free(ar->ctype);
    if (ar->page && ar->page_free)
        ar->page_free(ar->page);
    free(ar);
}

static void reply_with(admin_req_t *ar, int status, json_t *body, const char *extra)
{
    if (ar->render) {
        ar->render(ar, status, body, extra);
        return;
    }
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (body && !text) {
        http__respond_later_with(&ar->d, 500, JSON_TYPE, NO_STORE,
                                 "{\"error\":\"out of memory\",\"status\":500}", 38);
    } else {
        char hdr[512];
        snprintf(hdr, sizeof(hdr), NO_STORE "%s", extra ? extra : "");
        http__respond_later_with(&ar->d, status, text ? JSON_TYPE : NULL, hdr, text,
                                 text ? strlen(text) : 0);
    }
    free(text);
    admin__req_free(ar);
}

void admin__reply_json(admin_req_t *ar, int status, json_t *body)
{
    reply_with(ar, status, body, NULL);
}

static json_t *error_body(int status, const char *text)
{
    return json_pack("{s:s, s:i}", "error", text, "status", status);
}

void admin__reply_error(admin_req_t *ar, int status, const char *text, const char *extra)
{
    reply_with(ar, status, error_body(status, text), extra);
}

void admin__error_now(const http_request_t *req, int status, const char *text, const char *extra)
{
    json_t *b = error_body(status, text);
    char *s = b ? json_dumps(b, JSON_COMPACT) : NULL;
    json_decref(b);
    char hdr[512];
    snprintf(hdr, sizeof(hdr), NO_STORE "%s", extra ? extra : "");
    http_respond(req, s ? status : 500, JSON_TYPE, hdr, s ? s : "{}", s ? strlen(s) : 2);
    free(s);
}

#define AUTH_CHALLENGE "WWW-Authenticate: Bearer realm=\"hearth\", Basic realm=\"hearth\"\r\n"

/* ---- the Host header (DNS rebinding) ---- */

/* localhost, 127.0.0.1, [::1] or admin.host, with or without a port. */
int admin__host_ok(const char *h)
{
    if (!h || !*h || strlen(h) > 255)
        return 0;
    size_t n;
    if (h[0] == '[') {
        const char *close = strchr(h, ']');
        if (!close)
            return 0;
        n = (size_t)(close - h) + 1;
    } else {
        n = strcspn(h, ":");
    }
    const char *port = h + n;
    if (*port) {
        if (*port != ':' || !port[1] || strlen(port + 1) > 5)
            return 0;
        for (const char *p = port + 1; *p; p++)
            if (*p < '0' || *p > '9')
                return 0;
    }
    static const char *const known[] = {"localhost", "127.0.0.1", "[::1]"};
    for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
        if (strlen(known[i]) == n && !strncasecmp(h, known[i], n))
            return 1;
    const char *mine = admin__st.host;
    return mine && *mine && strlen(mine) == n && !strncasecmp(h, mine, n);
}

/* ---- requests past the door ---- */

static int json_ctype(const char *ct)
{
    size_t n = strlen("application/json");
    return ct && !strncasecmp(ct, "application/json", n) &&
           (!ct[n] || ct[n] == ';' || ct[n] == ' ');
}

/* A deferred request holding copies of what the route will read. NULL after answering. */
admin_req_t *admin__req_take(http_request_t *req)
{
    if (req->body_len > ADMIN_BODY_MAX) {
        admin__error_now(req, 413, "request body too large", NULL);
        return NULL;
    }
    admin_req_t *ar = calloc(1, sizeof(*ar));
    const char *ct = http_header(req, "Content-Type");
    if (ar) {
        ar->w = req->c->w;
        ar->https = req->https;
        snprintf(ar->ip, sizeof(ar->ip), "%s", req->c->ip);
        snprintf(ar->method, sizeof(ar->method), "%s", req->method);
        ar->path = strdup(req->path);
        ar->query = strdup(req->query);
        ar->ctype = strdup(ct ? ct : "");
        ar->body = malloc(req->body_len + 1);
        if (ar->body) {
            memcpy(ar->body, req->body, req->body_len);
            ar->body[req->body_len] = '\0';
            ar->body_len = req->body_len;
        }
    }
    if (!ar || !ar->path || !ar->query || !ar->ctype || !ar->body) {
        admin__req_free(ar);
        admin__error_now(req, 500, "out of memory", NULL);
        return NULL;
    }
    http_defer(req, &ar->d);
    return ar;
}

/* The JSON object of a request body: NULL after answering 415 or 400. */
json_t *admin__body(admin_req_t *ar)
{
    if (!json_ctype(ar->ctype)) {
        admin__reply_error(ar, 415, "the body must be application/json", NULL);
        return NULL;
    }
    json_error_t e;
    json_t *j = json_loadb(ar->body, ar->body_len, JSON_REJECT_DUPLICATES, &e);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        admin__reply_error(ar, 400, "the body is not a JSON object", NULL);
        return NULL;
    }
    return j;
}

/* ---- accounts: secrets derived on the pool, then stored ---- */

typedef struct account_job {
    admin_req_t *ar;
    storage_account_t acct;
    char *password;
    int rc;
    int create;
    unsigned iterations; /* read on the worker: the pool thread must not read w->set */
    admin_account_done done;
} account_job_t;

static void account_job_free(account_job_t *j)
{
    if (j->password) {
        explicit_bzero(j->password, strlen(j->password));
        free(j->password);
    }
    storage_account_clear(&j->acct);
    free(j);
}

static void account_derive(uv_work_t *wk)
{
    account_job_t *j = wk->data;
    unsigned it = j->iterations;
    j->rc = hearth_scram_secret_new(HEARTH_SCRAM_SHA1, j->password, it, &j->acct.sha1);
    if (!j->rc)
        j->rc = hearth_scram_secret_new(HEARTH_SCRAM_SHA256, j->password, it, &j->acct.sha256);
    explicit_bzero(j->password, strlen(j->password));
}

static void account_stored(void *ud, int err)
{
    account_job_t *j = ud;
    admin_req_t *ar = j->ar;
    admin_account_done done = j->done;
    account_job_free(j);
    done(ar, err);
}

static void account_derived(uv_work_t *wk, int status)
{
    account_job_t *j = wk->data;
    admin_req_t *ar = j->ar;
    int rc = status ? HEARTH_EAGAIN : j->rc;
    storage_t *st = ar->w->srv->storage;
    if (!rc)
        rc = j->create
                 ? storage_account_create(st, &ar->w->storage_target, &j->acct, account_stored, j)
                 : storage_account_set_secrets(st, &ar->w->storage_target, j->acct.username,
                                               &j->acct.sha1, &j->acct.sha256, account_stored, j);
    if (rc) {
        admin_account_done done = j->done;
        account_job_free(j);
        done(ar, rc);
    }
}

static int account_job(admin_req_t *ar, const char *node, const char *password, int admin,
                       int create, admin_account_done done)
{
    account_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return HEARTH_ENOMEM;
    j->ar = ar;
    j->create = create;
    j->iterations = ar->w->set.scram_iterations;
    j->done = done;
    j->acct.admin = admin;
    j->acct.username = strdup(node);
    j->password = strdup(password);
    if (!j->acct.username || !j->password) {
        account_job_free(j);
        return HEARTH_ENOMEM;
    }
    ar->work.data = j;
    if (uv_queue_work(&ar->w->loop, &ar->work, account_derive, account_derived)) {
        account_job_free(j);
        return HEARTH_EAGAIN;
    }
    return 0;
}

int admin__account_create(admin_req_t *ar, const char *node, const char *password, int admin,
                          admin_account_done done)
{
    return account_job(ar, node, password, admin, 1, done);
}

int admin__account_password(admin_req_t *ar, const char *node, const char *password,
                            admin_account_done done)
{
    return account_job(ar, node, password, 0, 0, done);
}

/* A prepared localpart from a name or a JID of this domain: malloc'd, or NULL. */
char *admin__node_of(const char *name)
{
    const char *at = strchr(name, '@');
    if (at) {
        char *dom = NULL;
        int ok = !hearth_jid_nameprep(at + 1, strlen(at + 1), &dom, NULL) &&
                 !strcmp(dom, admin__st.srv->set.domain);
        free(dom);
        if (!ok)
            return NULL;
    }
    size_t n = at ? (size_t)(at - name) : strlen(name);
    char *node = NULL;
    if (!n || hearth_jid_nodeprep(name, n, &node, NULL))
        return NULL;
    return node;
}

/* ---- first-run setup ---- */

/* Setup answers loopback peers only, and only while no administrator exists. */
int admin__setup_door(http_request_t *req)
{
    if (!admin__loopback(req->c->ip)) {
        admin__error_now(req, 403, "setup answers only on loopback", NULL);
        return 0;
    }
    if (!__atomic_load_n(&admin__st.setup_open, __ATOMIC_ACQUIRE)) {
        admin__error_now(req, 410, "an administrator exists: setup is over", NULL);
        return 0;
    }
    return 1;
}

static void setup_created(admin_req_t *ar, int err)
{
    const char *node = ar->user;
    if (err) {
        __atomic_store_n(&admin__st.setup_busy, 0, __ATOMIC_RELEASE);
        if (err == HEARTH_EEXISTS)
            admin__reply_error(ar, 409, "that account exists", NULL);
        else if (err == HEARTH_EINVAL)
            admin__reply_error(ar, 400, "password refused (SASLprep)", NULL);
        else
            admin__reply_error(ar, 500, hearth_strerror(err), NULL);
        return;
    }
    __atomic_store_n(&admin__st.setup_open, 0, __ATOMIC_RELEASE);
    if (admin__st.token_path)
        unlink(admin__st.token_path);
    char jid[1100];
    snprintf(jid, sizeof(jid), "%s@%s", node, ar->w->srv->set.domain);
    hlog(LOG_INFO, "admin: first administrator %s created from %s; setup is over", jid, ar->ip);
    admin__reply_json(ar, 201, json_pack("{s:s, s:b}", "jid", jid, "admin", 1));
}

static int setup_post(http_request_t *req)
{
    if (strcmp(req->method, "POST")) {
        admin__error_now(req, 405, "POST only", "Allow: POST\r\n");
        return 0;
    }
    if (!admin__setup_door(req))
        return 0;
    admin_req_t *ar = admin__req_take(req);
    if (!ar)
        return 0;
    json_t *b = admin__body(ar);
    if (!b)
        return 0;
    const char *token = json_string_value(json_object_get(b, "token"));
    const char *user = json_string_value(json_object_get(b, "username"));
    const char *pw = json_string_value(json_object_get(b, "password"));
    if (!token || !user || !pw || !*pw) {
        json_decref(b);
        admin__reply_error(ar, 400, "token, username and password are required strings", NULL);
        return 0;
    }
    authguard_ticket_t *t = NULL;
    authguard_verdict_t v = {0};
    if (authguard__begin(ar->w->srv->guard, ar->ip, NULL, &t, &v)) {
        json_decref(b);
        admin__reply_error(ar, 429, "too many failures from this address; try later", NULL);
        return 0;
    }
    size_t tl = strlen(admin__st.setup_token);
    int good = tl && strlen(token) == tl && !CRYPTO_memcmp(token, admin__st.setup_token, tl);
    authguard__end(ar->w->srv->guard, t, good ? AUTHGUARD_SUCCEEDED : AUTHGUARD_FAILED);
    if (!good) {
        json_decref(b);
        hlog(LOG_WARN, "admin: wrong setup token from %s", ar->ip);
        admin__reply_error(ar, 403, "wrong setup token", NULL);
        return 0;
    }
    char *node = admin__node_of(user);
    if (!node || strlen(pw) < ar->w->set.min_password) {
        free(node);
        json_decref(b);
        admin__reply_error(ar, 400,
                           node ? "password too short (registration.min_password)"
                                : "username is not a valid name on this server",
                           NULL);
        return 0;
    }
    int expect = 0;
    if (!__atomic_compare_exchange_n(&admin__st.setup_busy, &expect, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        free(node);
        json_decref(b);
        admin__reply_error(ar, 409, "a setup is under way", NULL);
        return 0;
    }
    ar->user = node;
    int rc = admin__account_create(ar, node, pw, 1, setup_created);
    json_decref(b);
    if (rc)
        setup_created(ar, rc);
    return 0;
}

/* ---- API keys ---- */

static void key_checked(void *ud, int err, const char *doc)
{
    admin_req_t *ar = ud;
    unsigned char h[32];
    char hex[65];
    int good = 0;
    const char *secret = ar->password + 3 + KEY_ID_HEX + 1;
    if (!err && doc) {
        json_t *j = json_loads(doc, 0, NULL);
        const char *stored = json_string_value(json_object_get(j, "sha256"));
        admin__sha256(secret, strlen(secret), h);
        hex_of(h, 32, hex);
        good = stored && strlen(stored) == 64 && !CRYPTO_memcmp(stored, hex, 64);
        json_decref(j);
    }
    authguard__end(ar->w->srv->guard, ar->ticket, good ? AUTHGUARD_SUCCEEDED : AUTHGUARD_FAILED);
    ar->ticket = NULL;
    if (!good) {
        hlog(LOG_WARN, "admin: unknown API key from %s", ar->ip);
        admin__reply_error(ar, 401, "unknown API key", AUTH_CHALLENGE);
        return;
    }
    snprintf(ar->who, sizeof(ar->who), "key %.*s", KEY_ID_HEX, ar->password + 3);
    explicit_bzero(ar->password, strlen(ar->password));
    if (!strcmp(ar->path, "/metrics"))
        admin__metrics(ar);
    else
        admin__api(ar);
}

/* hk_<id>_<secret> or the local key. */
static void auth_bearer(admin_req_t *ar, const char *token)
{
    authguard_verdict_t v = {0};
    if (authguard__begin(ar->w->srv->guard, ar->ip, NULL, &ar->ticket, &v)) {
        admin__reply_error(ar, 429, "too many failures from this address; try later", NULL);
        return;
    }
    size_t n = strlen(token);
    size_t lp = strlen(LOCAL_KEY_PREFIX);
    if (n == lp + KEY_SECRET_HEX && !strncmp(token, LOCAL_KEY_PREFIX, lp)) {
        unsigned char h[32];
        admin__sha256(token, n, h);
        int good = admin__st.local_key && !CRYPTO_memcmp(h, admin__st.local_key_hash, 32);
        authguard__end(ar->w->srv->guard, ar->ticket,
                       good ? AUTHGUARD_SUCCEEDED : AUTHGUARD_FAILED);
        ar->ticket = NULL;
        if (!good) {
            admin__reply_error(ar, 401, "unknown API key", AUTH_CHALLENGE);
            return;
        }
        snprintf(ar->who, sizeof(ar->who), "local key");
        if (!strcmp(ar->path, "/metrics"))
            admin__metrics(ar);
        else
            admin__api(ar);
        return;
    }
    if (n != 3 + KEY_ID_HEX + 1 + KEY_SECRET_HEX || strncmp(token, "hk_", 3) ||
        token[3 + KEY_ID_HEX] != '_' || !all_hex(token + 3, KEY_ID_HEX) ||
        !all_hex(token + 4 + KEY_ID_HEX, KEY_SECRET_HEX)) {
        authguard__end(ar->w->srv->guard, ar->ticket, AUTHGUARD_FAILED);
        ar->ticket = NULL;
        admin__reply_error(ar, 401, "malformed API key", AUTH_CHALLENGE);
        return;
    }
    char id[KEY_ID_HEX + 1];
    memcpy(id, token + 3, KEY_ID_HEX);
    id[KEY_ID_HEX] = '\0';
    if (!(ar->password = strdup(token)) ||
        storage_doc_get(ar->w->srv->storage, &ar->w->storage_target, KEY_KIND, id, key_checked,
                        ar)) {
        admin__reply_error(ar, 503, "storage is busy; try again", NULL);
        return;
    }
}

/* A password login: checked against the stored SCRAM-SHA-256 keys on the pool (PBKDF2). */
static void login_end(admin_req_t *ar, admin_login_t v)
{
    void (*done)(admin_req_t *, admin_login_t) = ar->login_done;
    ar->login_done = NULL;
    done(ar, v);
}

static void login_checked(uv_work_t *wk, int status)
{
    admin_req_t *ar = wk->data;
    int right = !status && ar->check_rc == 0 && ar->found;
    authguard__end(ar->w->srv->guard, ar->ticket,
                   status  ? AUTHGUARD_UNCHECKED
                   : right ? AUTHGUARD_SUCCEEDED
                           : AUTHGUARD_FAILED);
    ar->ticket = NULL;
    if (status) {
        login_end(ar, ADMIN_LOGIN_UNAVAILABLE);
    } else if (!right) {
        hlog(LOG_WARN, "admin: failed login for %s from %s", ar->user, ar->ip);
        login_end(ar, ADMIN_LOGIN_WRONG);
    } else if (ar->found != 2) {
        hlog(LOG_WARN, "admin: %s from %s is not an administrator", ar->user, ar->ip);
        login_end(ar, ADMIN_LOGIN_NOT_ADMIN);
    } else {
        snprintf(ar->who, sizeof(ar->who), "%s@%s", ar->user, ar->w->srv->set.domain);
        login_end(ar, ADMIN_LOGIN_OK);
    }
}

static void login_check(uv_work_t *wk)
{
    admin_req_t *ar = wk->data;
    ar->check_rc = hearth_scram_secret_check(HEARTH_SCRAM_SHA256, &ar->secret, ar->password);
    explicit_bzero(ar->password, strlen(ar->password));
}

static void login_account(void *ud, int err, const storage_account_t *acct)
{
    admin_req_t *ar = ud;
    server_t *srv = ar->w->srv;
    if (!err && acct && acct->sha256.iterations) {
        ar->secret = acct->sha256;
        ar->found = acct->admin && !acct->locked ? 2 : 1; /* a locked one is no administrator */
    } else if ((err && err != HEARTH_ENOTFOUND) ||
               hearth_scram_secret_fake(HEARTH_SCRAM_SHA256, srv->secret, sizeof(srv->secret),
                                        ar->user, &ar->secret)) {
        login_end(ar, ADMIN_LOGIN_UNAVAILABLE);
        return;
    } else {
        ar->secret.iterations = ar->w->set.scram_iterations; /* the same cost as a real one */
    }
    ar->work.data = ar;
    if (uv_queue_work(&ar->w->loop, &ar->work, login_check, login_checked))
        login_end(ar, ADMIN_LOGIN_UNAVAILABLE);
}

static void login_lookup(admin_req_t *ar)
{
    if (storage_account_get(ar->w->srv->storage, &ar->w->storage_target, ar->user, login_account,
                            ar))
        login_end(ar, ADMIN_LOGIN_UNAVAILABLE);
}

static void delay_closed(uv_handle_t *h)
{
    free(h);
}

static void delay_done(uv_timer_t *t)
{
    admin_req_t *ar = t->data;
    uv_close((uv_handle_t *)t, delay_closed);
    ar->delay = NULL;
    login_lookup(ar);
}

void admin__login(admin_req_t *ar, char *node, char *password,
                  void (*done)(admin_req_t *ar, admin_login_t verdict))
{
    free(ar->user);
    if (ar->password) {
        explicit_bzero(ar->password, strlen(ar->password));
        free(ar->password);
    }
    ar->user = node;
    ar->password = password;
    ar->login_done = done;
    authguard_verdict_t v = {0};
    if (authguard__begin(ar->w->srv->guard, ar->ip, node, &ar->ticket, &v)) {
        hlog(LOG_WARN, "admin: login for %s from %s refused: throttled", node, ar->ip);
        login_end(ar, ADMIN_LOGIN_THROTTLED);
        return;
    }
    if (v.delay_ms) {
        if (!(ar->delay = malloc(sizeof(*ar->delay)))) {
            login_end(ar, ADMIN_LOGIN_UNAVAILABLE);
            return;
        }
        uv_timer_init(&ar->w->loop, ar->delay);
        ar->delay->data = ar;
        uv_timer_start(ar->delay, delay_done, v.delay_ms, 0);
        return;
    }
    login_lookup(ar);
}

/* Basic: a password login, then the API (or the metrics). */
static void basic_done(admin_req_t *ar, admin_login_t v)
{
    switch (v) {
    case ADMIN_LOGIN_OK:
        if (!strcmp(ar->path, "/metrics"))
            admin__metrics(ar);
        else
            admin__api(ar);
        break;
    case ADMIN_LOGIN_WRONG:
        admin__reply_error(ar, 401, "wrong name or password", AUTH_CHALLENGE);
        break;
    case ADMIN_LOGIN_NOT_ADMIN:
        admin__reply_error(ar, 403, "not an administrator", NULL);
        break;
    case ADMIN_LOGIN_THROTTLED:
        admin__reply_error(ar, 429, "too many failures; try later", "Retry-After: 60\r\n");
        break;
    default:
        admin__reply_error(ar, 503, "storage or the thread pool failed; try again", NULL);
        break;
    }
}

static void auth_basic(admin_req_t *ar, const char *b64)
{
    char *raw = NULL;
    size_t len = 0;
    if (hearth_base64_decode(b64, strlen(b64), &raw, &len) || !raw || memchr(raw, 0, len)) {
        free(raw);
        admin__reply_error(ar, 401, "malformed Basic credentials", AUTH_CHALLENGE);
        return;
    }
    char *colon = memchr(raw, ':', len);
    char *node = NULL;
    if (colon) {
        *colon = '\0';
        node = admin__node_of(raw);
    }
    if (!node) {
        explicit_bzero(raw, len);
        free(raw);
        admin__reply_error(ar, 401, "wrong name or password", AUTH_CHALLENGE);
        return;
    }
    char *password = strdup(colon + 1);
    explicit_bzero(raw, len);
    free(raw);
    if (!password) {
        free(node);
        admin__reply_error(ar, 500, "out of memory", NULL);
        return;
    }
    admin__login(ar, node, password, basic_done);
}

static void authenticate(http_request_t *req)
{
    const char *auth = http_header(req, "Authorization");
    if (!auth) {
        admin__error_now(req, 401, "authentication required", AUTH_CHALLENGE);
        return;
    }
    admin_req_t *ar = admin__req_take(req);
    if (!ar)
        return;
    if (!strncasecmp(auth, "Bearer ", 7))
        auth_bearer(ar, auth + 7 + strspn(auth + 7, " "));
    else if (!strncasecmp(auth, "Basic ", 6))
        auth_basic(ar, auth + 6 + strspn(auth + 6, " "));
    else
        admin__reply_error(ar, 401, "Bearer or Basic authentication required", AUTH_CHALLENGE);
}

/* /metrics without authentication (admin.metrics = open). */
static void metrics_open(http_request_t *req)
{
    admin_req_t *ar = admin__req_take(req);
    if (ar) {
        snprintf(ar->who, sizeof(ar->who), "anyone");
        admin__metrics(ar);
    }
}

/* Every request: the Host check, then the doors that need no authentication (setup; metrics
 * when open), the console's pages (which have sessions of their own), then authentication. Paths
 * are compared as sent (nothing decoded): an encoded or dotted variant of an open door is just
 * another path, which needs authentication. */
static int dispatch(http_request_t *req)
{
    if (!admin__host_ok(http_header(req, "Host"))) {
        hlog_conn(LOG_INFO, req->c->id, NULL, "admin: refused Host '%s' from %s",
                  http_header(req, "Host") ? http_header(req, "Host") : "", req->c->ip);
        admin__error_now(req, 421, "unknown Host (set admin.host to the name you use)", NULL);
        return 0;
    }
    const char *p = req->path;
    if (!strcmp(p, "/setup"))
        return admin__setup_page(req);
    if (!strcmp(p, "/api/v1/setup"))
        return setup_post(req);
    /* The console's own pages (exact paths; cookie sessions, never the API's credentials). */
    if (admin__console(req) != HEARTH_ENOTFOUND)
        return 0;
    if (!strcmp(p, "/metrics") && admin__st.metrics != ADMIN_METRICS_KEY) {
        if (admin__st.metrics == ADMIN_METRICS_OFF)
            admin__error_now(req, 404, "metrics are off (admin.metrics)", NULL);
        else if (strcmp(req->method, "GET"))
            admin__error_now(req, 405, "GET only", "Allow: GET\r\n");
        else
            metrics_open(req);
        return 0;
    }
    authenticate(req);
    return 0;
}

/* ---- start-up and exit ---- */

/* Whether an account with the admin flag is stored (start-up only: a blocking read). */
static int admin_exists(server_t *srv, int *exists)
{
    storage_account_t *list = NULL;
    size_t n = 0;
    *exists = 0;
    int rc = storage_sync_account_list(srv->storage, &list, &n);
    for (size_t i = 0; i < n; i++) {
        if (list[i].admin)
            *exists = 1;
        storage_account_clear(&list[i]);
    }
    free(list);
    return rc;
}

static int write_secret_file(const char *path, const char *text)
{
    char *err = NULL;
    int rc = datadir_write_file_atomic(path, text, strlen(text), &err);
    if (rc) {
        hlog(LOG_ERROR, "admin: %s", err ? err : "cannot write a file");
        free(err);
    }
    return rc;
}

int admin__init(server_t *srv)
{
    admin_state_t *s = &admin__st;
    s->srv = srv;
    if (config_int(srv->cfg, "admin.port") < 0 && config_int(srv->cfg, "admin.https_port") < 0)
        return 0;
    s->started_ms = uv_hrtime() / 1000000;
    /* jansson seeds its hash tables on first use; here, before the workers share it. */
    json_object_seed(0);
    s->host = strdup(config_str(srv->cfg, "admin.host"));
    const char *m = config_str(srv->cfg, "admin.metrics");
    s->metrics = !strcmp(m, "off")    ? ADMIN_METRICS_OFF
                 : !strcmp(m, "open") ? ADMIN_METRICS_OPEN
                                      : ADMIN_METRICS_KEY;
    s->site = http__site_new();
    s->key_path = datadir_path(srv->data_dir, "api.key");
    s->token_path = datadir_path(srv->data_dir, "setup.token");
    if (!s->host || !s->site || !s->key_path || !s->token_path ||
        http__site_route(s->site, "/", 1, dispatch))
        return HEARTH_ENOMEM;
    int crc = admin__console_init(srv);
    if (crc)
        return crc;
    /* The local key, for hearthctl on this machine: new at every start, only its hash kept. */
    char key[sizeof(LOCAL_KEY_PREFIX) + KEY_SECRET_HEX + 2];
    memcpy(key, LOCAL_KEY_PREFIX, strlen(LOCAL_KEY_PREFIX));
    if (admin__random_hex(key + strlen(LOCAL_KEY_PREFIX), KEY_SECRET_HEX / 2))
        return HEARTH_EIO;
    admin__sha256(key, strlen(key), s->local_key_hash);
    strcat(key, "\n");
    int rc = write_secret_file(s->key_path, key);
    explicit_bzero(key, sizeof(key));
    if (rc)
        return rc;
    s->local_key = 1;
    int exists = 0;
    if ((rc = admin_exists(srv, &exists)))
        return rc;
    if (!exists) {
        if (admin__random_hex(s->setup_token, 16))
            return HEARTH_EIO;
        char line[sizeof(s->setup_token) + 1];
        size_t tl = strlen(s->setup_token);
        memcpy(line, s->setup_token, tl);
        memcpy(line + tl, "\n", 2);
        if ((rc = write_secret_file(s->token_path, line)))
            return rc;
        s->setup_open = 1;
    } else {
        unlink(s->token_path); /* a token of an earlier run is void */
    }
    return 0;
}

http_site_t *admin__site(void)
{
    return admin__st.site;
}

void admin__started(server_t *srv, int port, int https_port)
{
    (void)srv;
    if (!admin__st.site)
        return;
    hlog(LOG_INFO, "admin API on port %d (HTTPS port %d), metrics %s", port, https_port,
         admin__st.metrics == ADMIN_METRICS_OFF    ? "off"
         : admin__st.metrics == ADMIN_METRICS_OPEN ? "open"
                                                   : "behind the API key");
    if (admin__st.setup_open) {
        /* Printed once, to stderr whatever the log level: the operator needs it to begin. */
        fprintf(stderr,
                "hearthd: no administrator yet. Open http://127.0.0.1:%d/setup (or POST "
                "/api/v1/setup) with the setup token %s (also in %s)\n",
                port, admin__st.setup_token, admin__st.token_path);
        fflush(stderr);
    }
}

void admin__free(server_t *srv)
{
    (void)srv;
    admin_state_t *s = &admin__st;
    if (s->key_path && s->local_key)
        unlink(s->key_path);
    admin__console_free();
    free(s->key_path);
    free(s->token_path);
    free(s->host);
    http__site_free(s->site);
    explicit_bzero(s->setup_token, sizeof(s->setup_token));
    *s = (admin_state_t){0};
}

/* ---- API keys as routes (api.c calls these) ---- */

static void key_stored(void *ud, int err)
{
    admin_req_t *ar = ud;
    json_t *reply = ar->op;
    ar->op = NULL;
    if (err) {
        json_decref(reply);
        admin__reply_error(ar, 500, "cannot store the key", NULL);
        return;
    }
    hlog(LOG_INFO, "admin: %s created API key %s", ar->who,
         json_string_value(json_object_get(reply, "id")));
    admin__reply_json(ar, 201, reply);
}

void admin__key_create(admin_req_t *ar)
{
    json_t *b = admin__body(ar);
    if (!b)
        return;
    const char *name = json_string_value(json_object_get(b, "name"));
    if (json_object_get(b, "name") && (!name || strlen(name) > KEY_NAME_MAX)) {
        json_decref(b);
        admin__reply_error(ar, 400, "name must be a string of at most 128 bytes", NULL);
        return;
    }
    char id[KEY_ID_HEX + 1], secret[KEY_SECRET_HEX + 1], key[128];
    unsigned char h[32];
    char hex[65];
    if (admin__random_hex(id, KEY_ID_HEX / 2) || admin__random_hex(secret, KEY_SECRET_HEX / 2)) {
        json_decref(b);
        admin__reply_error(ar, 500, "no randomness", NULL);
        return;
    }
    snprintf(key, sizeof(key), "hk_%s_%s", id, secret);
    admin__sha256(secret, strlen(secret), h);
    hex_of(h, 32, hex);
    json_t *doc = json_pack("{s:s, s:s, s:I, s:s}", "name", name ? name : "", "sha256", hex,
                            "created", (json_int_t)time(NULL), "by", ar->who);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_t *reply = json_pack("{s:s, s:s, s:s}", "id", id, "key", key, "name", name ? name : "");
    explicit_bzero(key, sizeof(key));
    explicit_bzero(secret, sizeof(secret));
    json_decref(doc);
    json_decref(b);
    ar->op = reply;
    if (!text || !reply ||
        storage_doc_put(ar->w->srv->storage, &ar->w->storage_target, KEY_KIND, id, text, key_stored,
                        ar)) {
        free(text);
        json_decref(reply);
        ar->op = NULL;
        admin__reply_error(ar, 503, "storage is busy; try again", NULL);
        return;
    }
    free(text);
}

static void keys_listed(void *ud, int err, const storage_doc_t *docs, size_t n)
{
    admin_req_t *ar = ud;
    if (err) {
        admin__reply_error(ar, 500, "cannot read the keys", NULL);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *d = json_loads(docs[i].xml, 0, NULL);
        json_array_append_new(arr, json_pack("{s:s, s:O?, s:O?, s:O?}", "id", docs[i].key, "name",
                                             json_object_get(d, "name"), "created",
                                             json_object_get(d, "created"), "by",
                                             json_object_get(d, "by")));
        json_decref(d);
    }
    admin__reply_json(ar, 200, json_pack("{s:o}", "keys", arr));
}

void admin__key_list(admin_req_t *ar)
{
    if (storage_doc_list(ar->w->srv->storage, &ar->w->storage_target, KEY_KIND, keys_listed, ar))
        admin__reply_error(ar, 503, "storage is busy; try again", NULL);
}

static void key_deleted(void *ud, int err)
{
    admin_req_t *ar = ud;
    if (err)
        admin__reply_error(ar, 500, "cannot delete the key", NULL);
    else
        admin__reply_json(ar, 204, NULL);
}

static void key_found(void *ud, int err, const char *doc)
{
    admin_req_t *ar = ud;
    const char *id = ar->op;
    ar->op = NULL;
    if (err == HEARTH_ENOTFOUND || (!err && !doc)) {
        admin__reply_error(ar, 404, "no such key", NULL);
        return;
    }
    if (err || storage_doc_delete(ar->w->srv->storage, &ar->w->storage_target, KEY_KIND, id,
                                  key_deleted, ar)) {
        admin__reply_error(ar, 503, "storage failed; try again", NULL);
        return;
    }
    hlog(LOG_INFO, "admin: %s deleted API key %s", ar->who, id);
}

void admin__key_delete(admin_req_t *ar, const char *id)
{
    if (strlen(id) != KEY_ID_HEX || !all_hex(id, KEY_ID_HEX)) {
        admin__reply_error(ar, 404, "no such key", NULL);
        return;
    }
    ar->op = (void *)id; /* in ar->path, which lives as long as ar */
    if (storage_doc_get(ar->w->srv->storage, &ar->w->storage_target, KEY_KIND, id, key_found, ar))
        admin__reply_error(ar, 503, "storage is busy; try again", NULL);
}
