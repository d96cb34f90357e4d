/* The web console: server-rendered pages on the admin listener, logged in with an
 * administrator's password into a cookie session (kept here, hashed, behind one short lock,
 * since a browser's requests land on any worker), with a CSRF token in every form. A page runs
 * the same operation as its REST route (admin__api with ar->render set) and renders the JSON
 * that route would have answered, so the console and the API cannot disagree; a form becomes
 * that route's JSON body, then a redirect with a flash message (post/redirect/get). */
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "admin/console.h"
#include "admin/internal.h"

#define COOKIE "hearth_console"
/* Console logins kept at once: a new one past this evicts the least recently used. */
#define CONSOLE_SESSIONS_MAX 128
#define FLASH_MAX 400 /* bytes of a flash message */
#define NODE_MAX 1024 /* a localpart: RFC 7622 allows 1023 bytes */
#define USERS_PAGE 25 /* users per page of the users list */
#define LOG_LINES 200 /* log lines shown unless asked otherwise */

/* ---- sessions ---- */

typedef struct csess {
    int used;
    unsigned char id_hash[32]; /* SHA-256 of the cookie's value: the value itself is not kept */
    char csrf[65];
    char node[NODE_MAX];
    uint64_t created_ms, seen_ms;
    char flash[FLASH_MAX];
    int flash_err;
} csess_t;

static csess_t sessions[CONSOLE_SESSIONS_MAX];
static uv_mutex_t sess_lock;
static int sess_lock_made;
static uint64_t idle_ms, lifetime_ms;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static int expired(const csess_t *s, uint64_t now)
{
    return now - s->seen_ms > idle_ms || now - s->created_ms > lifetime_ms;
}

/* A new session for node: its cookie value (64 hex) in token, its CSRF token in csrf. */
static int sess_new(const char *node, char token[65], char csrf[65])
{
    if (admin__random_hex(token, 32) || admin__random_hex(csrf, 32))
        return HEARTH_EIO;
    unsigned char h[32];
    admin__sha256(token, 64, h);
    uint64_t now = now_ms();
    uv_mutex_lock(&sess_lock);
    csess_t *pick = NULL;
    for (size_t i = 0; i < CONSOLE_SESSIONS_MAX; i++) {
        csess_t *s = &sessions[i];
        if (!s->used || expired(s, now)) {
            pick = s;
            break;
        }
        if (!pick || s->seen_ms < pick->seen_ms)
            pick = s;
    }
    *pick = (csess_t){.used = 1, .created_ms = now, .seen_ms = now};
    memcpy(pick->id_hash, h, 32);
    memcpy(pick->csrf, csrf, 65);
    snprintf(pick->node, sizeof(pick->node), "%s", node);
    uv_mutex_unlock(&sess_lock);
    return 0;
}

/* The session of a cookie value: its slot (under sess_lock) or NULL. Expired ones go. */
static csess_t *sess_find_locked(const unsigned char h[32])
{
    uint64_t now = now_ms();
    csess_t *found = NULL;
    for (size_t i = 0; i < CONSOLE_SESSIONS_MAX; i++) {
        csess_t *s = &sessions[i];
        if (s->used && !CRYPTO_memcmp(s->id_hash, h, 32))
            found = s;
    }
    if (found && expired(found, now)) {
        explicit_bzero(found, sizeof(*found));
        found = NULL;
    }
    if (found)
        found->seen_ms = now;
    return found;
}

static void sess_drop(const unsigned char h[32])
{
    uv_mutex_lock(&sess_lock);
    csess_t *s = sess_find_locked(h);
    if (s)
        explicit_bzero(s, sizeof(*s));
    uv_mutex_unlock(&sess_lock);
}

/* Every console session of an account (deleted, or no longer an administrator). */
void admin__console_forget(const char *node)
{
    if (!sess_lock_made)
        return;
    uv_mutex_lock(&sess_lock);
    for (size_t i = 0; i < CONSOLE_SESSIONS_MAX; i++)
        if (sessions[i].used && !strcmp(sessions[i].node, node))
            explicit_bzero(&sessions[i], sizeof(sessions[i]));
    uv_mutex_unlock(&sess_lock);
}

static void sess_flash(const unsigned char h[32], const char *text, int err)
{
    uv_mutex_lock(&sess_lock);
    csess_t *s = sess_find_locked(h);
    if (s) {
        snprintf(s->flash, sizeof(s->flash), "%s", text);
        s->flash_err = err;
    }
    uv_mutex_unlock(&sess_lock);
}

/* ---- one request ---- */

typedef struct cpage {
    int logged_in;
    unsigned char sid[32];
    char node[NODE_MAX];
    char csrf[65];
    char flash[FLASH_MAX];
    int flash_err;
    json_t *form;   /* a POST's fields (strings; a repeated name: an array of them) */
    json_t *keep;   /* an earlier answer of a page made of two */
    char *arg;      /* the path's segment (a user, a room), decoded */
    char next[512]; /* where an action goes when it worked... */
    char back[512]; /* ...and when it did not */
    char ok[FLASH_MAX];
} cpage_t;

static void cpage_free(void *p)
{
    cpage_t *cp = p;
    json_decref(cp->form);
    json_decref(cp->keep);
    free(cp->arg);
    explicit_bzero(cp, sizeof(*cp));
    free(cp);
}

static cpage_t *page_of(admin_req_t *ar)
{
    return ar->page;
}

/* The value of the session cookie in a Cookie header: 64 hex digits into out, else 0. */
static int cookie_value(const char *hdr, char out[65])
{
    size_t cl = strlen(COOKIE);
    for (const char *p = hdr; p && *p;) {
        p += strspn(p, " \t");
        size_t len = strcspn(p, ";");
        if (len == cl + 1 + 64 && !strncmp(p, COOKIE "=", cl + 1)) {
            memcpy(out, p + cl + 1, 64);
            out[64] = '\0';
            for (int i = 0; i < 64; i++)
                if (!strchr("0123456789abcdef", out[i]))
                    return 0;
            return 1;
        }
        p += len;
        if (*p)
            p++;
    }
    return 0;
}

/* Fills cp from the request's cookie when it names a live session; the flash is taken. */
static void session_of(const http_request_t *req, cpage_t *cp)
{
    char token[65];
    if (!cookie_value(http_header(req, "Cookie"), token))
        return;
    unsigned char h[32];
    admin__sha256(token, 64, h);
    explicit_bzero(token, sizeof(token));
    uv_mutex_lock(&sess_lock);
    csess_t *s = sess_find_locked(h);
    if (s) {
        cp->logged_in = 1;
        memcpy(cp->sid, h, 32);
        memcpy(cp->csrf, s->csrf, sizeof(cp->csrf));
        memcpy(cp->node, s->node, sizeof(cp->node));
        /* A page takes the flash; the dashboard script's JSON does not. */
        if (!strcmp(req->method, "GET") && strcmp(req->path, "/dashboard/history") && s->flash[0]) {
            memcpy(cp->flash, s->flash, sizeof(cp->flash));
            cp->flash_err = s->flash_err;
            s->flash[0] = '\0';
        }
    }
    uv_mutex_unlock(&sess_lock);
}

/* ---- decoding ---- */

static int hexval(int c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Percent-decoding (plus as space when form): malloc'd; NULL when malformed or when it holds a
 * NUL or (unless form) a slash. */
static char *pct_decode(const char *s, size_t n, int form)
{
    char *out = malloc(n + 1), *o = out;
    for (size_t i = 0; out && i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) {
                free(out);
                return NULL;
            }
            int hi = hexval((unsigned char)s[i + 1]), lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) {
                free(out);
                return NULL;
            }
            c = hi * 16 + lo;
            i += 2;
        } else if (form && c == '+') {
            c = ' ';
        }
        if (!c || (!form && c == '/')) {
            free(out);
            return NULL;
        }
        *o++ = (char)c;
    }
    if (out)
        *o = '\0';
    return out;
}

/* application/x-www-form-urlencoded into a JSON object; NULL when malformed. */
static json_t *form_parse(const char *body, size_t len)
{
    json_t *f = json_object();
    const char *p = body, *end = body + len;
    while (f && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(stop - p));
        if (stop > p) {
            char *k = pct_decode(p, (size_t)((eq ? eq : stop) - p), 1);
            char *v = eq ? pct_decode(eq + 1, (size_t)(stop - eq - 1), 1) : strdup("");
            json_t *js = k && v ? json_string(v) : NULL; /* NULL also when not UTF-8 */
            if (!js) {
                json_decref(f);
                f = NULL;
            } else {
                json_t *old = json_object_get(f, k);
                if (!old) {
                    json_object_set_new(f, k, js);
                } else if (json_is_array(old)) {
                    json_array_append_new(old, js);
                } else {
                    json_t *arr = json_pack("[O, o]", old, js);
                    json_object_set_new(f, k, arr);
                }
            }
            if (v)
                explicit_bzero(v, strlen(v));
            free(k);
            free(v);
        }
        p = stop + 1;
    }
    return f;
}

static const char *field(const cpage_t *cp, const char *name)
{
    json_t *v = json_object_get(cp->form, name);
    return json_is_array(v) ? json_string_value(json_array_get(v, json_array_size(v) - 1))
                            : json_string_value(v);
}

/* A query parameter, decoded (malloc'd), or NULL. */
static char *query_param(const char *q, const char *name)
{
    size_t nl = strlen(name);
    while (q && *q) {
        size_t len = strcspn(q, "&");
        if (len > nl && !strncmp(q, name, nl) && q[nl] == '=')
            return pct_decode(q + nl + 1, len - nl - 1, 1);
        q += len + (q[len] ? 1 : 0);
    }
    return NULL;
}

/* ---- answers ---- */

static const char *const NAV[][2] = {
    {"/dashboard", "Dashboard"},
    {"/users", "Users"},
    {"/sessions", "Sessions"},
    {"/rooms", "Rooms"},
    {"/settings", "Settings"},
    {"/certificate", "Certificate"},
    {"/log", "Log"},
};

static void send_html(http_deferred_t *d, const http_request_t *req, int status, html_t *h,
                      const char *extra)
{
    char hdr[1024];
    snprintf(hdr, sizeof(hdr), CONSOLE_HEADERS "%s", extra ? extra : "");
    static const char OOM[] = "<!doctype html><title>Error</title><p>Out of memory.";
    const char *body = h->err ? OOM : (const char *)h->b.data;
    size_t len = h->err ? sizeof(OOM) - 1 : h->b.len;
    if (h->err)
        status = 500;
    if (d)
        http__respond_later_with(d, status, "text/html; charset=utf-8", hdr, body, len);
    else
        http_respond(req, status, "text/html; charset=utf-8", hdr, body, len);
}

/* The document around a page's content: head, header with the navigation (when logged in),
 * the flash message, the content. */
static void layout(html_t *out, const cpage_t *cp, const char *title, const char *current,
                   const html_t *content)
{
    html_f(out,
           "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
           "<title>%s · Hearth</title>\n"
           "<link rel=\"stylesheet\" href=\"/assets/console.css\">\n"
           "<script src=\"/assets/console.js\" defer></script></head><body>\n"
           "<header><a class=\"brand\" href=\"/\">Hearth</a>",
           title);
    if (cp && cp->logged_in) {
        html_f(out, "<nav>");
        for (size_t i = 0; i < sizeof(NAV) / sizeof(*NAV); i++)
            html_f(out, "<a href=\"%s\"%r>%s</a>", NAV[i][0],
                   current && !strcmp(current, NAV[i][0]) ? " aria-current=\"page\"" : "",
                   NAV[i][1]);
        html_f(out,
               "</nav><form method=\"post\" action=\"/logout\"><input type=\"hidden\" "
               "name=\"csrf\" value=\"%s\"><button>Log out</button></form>",
               cp->csrf);
    }
    html_f(out, "</header>\n<main>\n");
    if (cp && cp->flash[0])
        html_f(out, "<p class=\"flash%r\" role=\"status\">%s</p>\n", cp->flash_err ? " err" : "",
               cp->flash);
    if (content->err)
        out->err = 1;
    else if (content->b.len && hearth_buf_append(&out->b, content->b.data, content->b.len))
        out->err = 1;
    html_f(out, "</main></body></html>\n");
}

/* Answers ar with a page and frees ar. */
static void page_send(admin_req_t *ar, int status, const char *title, const char *current,
                      html_t *content, const char *extra)
{
    html_t out = {HEARTH_BUF_INIT, 0};
    layout(&out, page_of(ar), title, current, content);
    send_html(&ar->d, NULL, status, &out, extra);
    html_free(&out);
    html_free(content);
    admin__req_free(ar);
}

static void error_page(admin_req_t *ar, int status, const char *text, const char *extra)
{
    html_t c = {HEARTH_BUF_INIT, 0};
    html_f(&c, "<h1>Error %d</h1><p>%s</p><p><a href=\"/dashboard\">Back to the dashboard</a></p>",
           status, text);
    page_send(ar, status, "Error", NULL, &c, extra);
}

static void redirect_now(const http_request_t *req, const char *to, const char *extra)
{
    char hdr[1024];
    snprintf(hdr, sizeof(hdr), CONSOLE_HEADERS "Location: %s\r\n%s", to, extra ? extra : "");
    http_respond(req, 303, NULL, hdr, "", 0);
}

static void redirect(admin_req_t *ar, const char *to, const char *extra)
{
    char hdr[2048];
    snprintf(hdr, sizeof(hdr), CONSOLE_HEADERS "Location: %s\r\n%s", to, extra ? extra : "");
    http__respond_later_with(&ar->d, 303, NULL, hdr, "", 0);
    admin__req_free(ar);
}

/* An error answered before the request was taken (no session, bad token). */
static void refuse_now(const http_request_t *req, int status, const char *text)
{
    html_t h = {HEARTH_BUF_INIT, 0};
    cpage_t none = {0};
    html_t c = {HEARTH_BUF_INIT, 0};
    html_f(&c, "<h1>Error %d</h1><p>%s</p><p><a href=\"/login\">Log in</a></p>", status, text);
    layout(&h, &none, "Error", NULL, &c);
    send_html(NULL, req, status, &h, NULL);
    html_free(&h);
    html_free(&c);
}

static const char *error_text(json_t *body, const char *dflt)
{
    const char *e = json_string_value(json_object_get(body, "error"));
    return e ? e : dflt;
}

/* ---- the API, called as its routes would be ---- */

/* Runs the API's route method path?query with body (taken) as if the request had asked for it;
 * its answer goes to render. */
static void api(admin_req_t *ar, const char *method, const char *path, const char *query,
                json_t *body, admin_render_fn render)
{
    char *np = strdup(path), *nq = strdup(query ? query : "");
    char *nb = body ? json_dumps(body, JSON_COMPACT) : strdup("");
    char *nc = strdup(body ? "application/json" : "");
    json_decref(body);
    if (!np || !nq || !nb || !nc) {
        free(np);
        free(nq);
        free(nb);
        free(nc);
        render(ar, 500, json_pack("{s:s}", "error", "out of memory"), NULL);
        return;
    }
    snprintf(ar->method, sizeof(ar->method), "%s", method);
    free(ar->path);
    ar->path = np;
    free(ar->query);
    ar->query = nq;
    if (ar->body)
        explicit_bzero(ar->body, ar->body_len);
    free(ar->body);
    ar->body = nb;
    ar->body_len = strlen(nb);
    free(ar->ctype);
    ar->ctype = nc;
    free(ar->user);
    ar->user = NULL;
    ar->op = NULL;
    ar->render = render;
    admin__api(ar);
}

/* "/api/v1/" prefix + one percent-encoded segment + tail, into out. */
static void api_path(char *out, size_t cap, const char *prefix, const char *seg, const char *tail)
{
    html_t h = {HEARTH_BUF_INIT, 0};
    html_f(&h, "%r%u%r", prefix, seg, tail);
    snprintf(out, cap, "%.*s", h.err ? 0 : (int)h.b.len, h.err ? "" : (const char *)h.b.data);
    html_free(&h);
}

/* What an action does with the API's answer: a flash, then back to a page. */
static void action_done(admin_req_t *ar, int status, json_t *body, const char *extra)
{
    (void)extra;
    cpage_t *cp = page_of(ar);
    int ok = status >= 200 && status < 300;
    char text[FLASH_MAX];
    if (ok)
        snprintf(text, sizeof(text), "%s", cp->ok);
    else
        snprintf(text, sizeof(text), "Refused (%d): %s", status, error_text(body, "failed"));
    json_decref(body);
    sess_flash(cp->sid, text, !ok);
    redirect(ar, ok ? cp->next : cp->back, NULL);
}

/* ---- pages ---- */

static void card(html_t *h, const char *label, const char *value)
{
    html_f(h, "<div class=\"card\"><span>%s</span><b>%s</b></div>", label, value);
}

static void human_bytes(char *out, size_t cap, double b)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void human_duration(char *out, size_t cap, long long s)
{
    if (s < 60)
        snprintf(out, cap, "%lld s", s);
    else if (s < 3600)
        snprintf(out, cap, "%lld min %lld s", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, cap, "%lld h %lld min", s / 3600, s / 60 % 60);
    else
        snprintf(out, cap, "%lld d %lld h", s / 86400, s / 3600 % 24);
}

/* One graph of the history, drawn as the script redraws it (console_assets.c). */
static void graph(html_t *h, const char *id, const char *label, json_t *hist, const char *key)
{
    json_t *samples = json_object_get(hist, "samples");
    double span = (double)json_integer_value(json_object_get(hist, "span_s"));
    double max = 1;
    size_t i;
    json_t *s;
    json_array_foreach(samples, i, s)
    {
        double v = json_number_value(json_object_get(s, key));
        if (v > max)
            max = v;
    }
    char maxs[32];
    snprintf(maxs, sizeof(maxs), "%g", (double)((long long)(max * 10 + 0.5)) / 10);
    html_f(h,
           "<div class=\"graph\" id=\"%s\"><div>%s <span class=\"muted\">(max <span "
           "class=\"max\">%s</span>)</span></div>"
           "<svg viewBox=\"0 0 1000 100\" preserveAspectRatio=\"none\" role=\"img\" "
           "aria-label=\"%s over the last hour\"><polyline points=\"",
           id, label, maxs, label);
    double now = (double)time(NULL);
    json_array_foreach(samples, i, s)
    {
        double t = (double)json_integer_value(json_object_get(s, "t"));
        double v = json_number_value(json_object_get(s, key));
        char pt[64];
        snprintf(pt, sizeof(pt), "%s%.1f,%.1f", i ? " " : "",
                 span > 0 ? 1000 - (now - t) * 1000 / span : 0, 100 - v * 95 / max);
        html_f(h, "%s", pt);
    }
    html_f(h, "\"/></svg></div>\n");
}

static void dash_history(admin_req_t *ar, int status, json_t *hist, const char *extra)
{
    (void)extra;
    cpage_t *cp = page_of(ar);
    json_t *st = cp->keep;
    if (status != 200) { /* the numbers still show */
        json_decref(hist);
        hist = json_object();
    }
    html_t c = {HEARTH_BUF_INIT, 0};
    char v[64];
    html_f(&c, "<h1>Dashboard</h1>\n<div class=\"cards\">");
    card(&c, "Version", json_string_value(json_object_get(st, "version")));
    human_duration(v, sizeof(v), (long long)json_integer_value(json_object_get(st, "uptime_s")));
    card(&c, "Uptime", v);
    card(&c, "Domain", json_string_value(json_object_get(st, "domain")));
    snprintf(v, sizeof(v), "%lld",
             (long long)json_integer_value(json_object_get(st, "sessions_online")));
    card(&c, "Sessions online", v);
    json_t *samples = json_object_get(hist, "samples");
    json_t *last = json_array_get(samples, json_array_size(samples) - 1);
    if (last)
        snprintf(v, sizeof(v), "%.1f", json_number_value(json_object_get(last, "stanzas_per_s")));
    else
        snprintf(v, sizeof(v), "(measuring)");
    card(&c, "Stanzas per second", v);
    human_bytes(
        v, sizeof(v),
        (double)json_integer_value(json_object_get(json_object_get(st, "memory"), "rss_bytes")));
    card(&c, "Memory (resident)", v);
    snprintf(v, sizeof(v), "%s, %lld waiting", config_str(ar->w->srv->cfg, "storage.driver"),
             (long long)json_integer_value(
                 json_object_get(json_object_get(st, "storage"), "outstanding")));
    card(&c, "Database", v);
    snprintf(v, sizeof(v), "%lld",
             (long long)json_integer_value(json_object_get(st, "connections")));
    card(&c, "Connections", v);
    html_f(&c, "</div>\n<h2>The last hour</h2>\n<div id=\"graphs\">");
    graph(&c, "g-sessions", "Sessions online", hist, "sessions");
    graph(&c, "g-stanzas", "Stanzas per second", hist, "stanzas_per_s");
    html_f(&c,
           "</div><p class=\"muted\">One sample every %lld s; the graphs refresh by "
           "themselves.</p>\n",
           (long long)json_integer_value(json_object_get(hist, "step_s")));
    json_decref(hist);
    page_send(ar, 200, "Dashboard", "/dashboard", &c, NULL);
}

static void dash_status(admin_req_t *ar, int status, json_t *body, const char *extra)
{
    if (status != 200) {
        error_page(ar, status, error_text(body, "no status"), extra);
        json_decref(body);
        return;
    }
    page_of(ar)->keep = body;
    api(ar, "GET", "/api/v1/status/history", "", NULL, dash_history);
}

static void dashboard(admin_req_t *ar)
{
    api(ar, "GET", "/api/v1/status", "", NULL, dash_status);
}

/* The history as JSON for the dashboard's script (the same as /api/v1/status/history). */
static void history_json(admin_req_t *ar, int status, json_t *body, const char *extra)
{
    (void)extra;
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    http__respond_later_with(&ar->d, text ? status : 500, "application/json", CONSOLE_HEADERS,
                             text ? text : "{}", text ? strlen(text) : 2);
    free(text);
    admin__req_free(ar);
}

static void dashboard_history(admin_req_t *ar)
{
    api(ar, "GET", "/api/v1/status/history", "", NULL, history_json);
}

/* The hidden field every state-changing form carries. */
static void csrf_field(html_t *h, const cpage_t *cp)
{
    html_f(h, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", cp->csrf);
}

/* ---- users ---- */

static void users_listed(admin_req_t *ar, int status, json_t *body, const char *extra)
{
    cpage_t *cp = page_of(ar);
    if (status != 200) {
        error_page(ar, status, error_text(body, "cannot list the users"), extra);
        json_decref(body);
        return;
    }
    char *q = query_param(ar->query, "search");
    long long total = (long long)json_integer_value(json_object_get(body, "total"));
    long long offset = (long long)json_integer_value(json_object_get(body, "offset"));
    html_t c = {HEARTH_BUF_INIT, 0};
    html_f(&c,
           "<h1>Users</h1>\n<form method=\"get\" action=\"/users\" class=\"row\" role=\"search\">"
           "<label>Search <input type=\"search\" name=\"q\" value=\"%s\"></label>"
           "<button>Search</button></form>\n<p class=\"muted\">%lld account(s)%r</p>\n",
           q ? q : "", total, q && *q ? " found" : "");
    html_f(&c, "<div class=\"scroll\"><table "
               "class=\"stack\"><thead><tr><th>Name</th><th>JID</th><th>Admin</th>"
               "<th>Created</th></tr></thead><tbody>\n");
    size_t i;
    json_t *u;
    json_array_foreach(json_object_get(body, "users"), i, u)
    {
        const char *name = json_string_value(json_object_get(u, "username"));
        char when[32] = "";
        time_t t = (time_t)json_integer_value(json_object_get(u, "created_at"));
        struct tm tm;
        if (t && gmtime_r(&t, &tm))
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
        html_f(&c,
               "<tr><td data-label=\"Name\"><a href=\"/users/%u\">%s</a></td><td "
               "data-label=\"JID\">%s</td><td data-label=\"Admin\">%s</td><td "
               "data-label=\"Created\">%s</td></tr>\n",
               name, name, json_string_value(json_object_get(u, "jid")),
               json_is_true(json_object_get(u, "admin")) ? "yes" : "", when);
    }
    html_f(&c, "</tbody></table></div>\n<div class=\"pager\">");
    if (offset > 0)
        html_f(&c, "<a href=\"/users?q=%u&amp;page=%lld\">Previous</a>", q ? q : "",
               offset / USERS_PAGE - 1);
    if (offset + USERS_PAGE < total)
        html_f(&c, "<a href=\"/users?q=%u&amp;page=%lld\">Next</a>", q ? q : "",
               offset / USERS_PAGE + 1);
    html_f(&c, "</div>\n<h2>New user</h2>\n<form method=\"post\" action=\"/users\">");
    csrf_field(&c, cp);
    html_f(&c, "<label>Name <input type=\"text\" name=\"username\" required "
               "autocomplete=\"off\"></label>"
               "<label>Password <input type=\"password\" name=\"password\" required "
               "autocomplete=\"new-password\"></label>"
               "<label class=\"check\"><input type=\"checkbox\" name=\"admin\" value=\"on\"> "
               "Administrator</label><button>Create</button></form>\n");
    free(q);
    json_decref(body);
    page_send(ar, 200, "Users", "/users", &c, NULL);
}

/* The API query of a list page: the search q under key, and the offset of the page asked for
 * (?page=N, 0 when absent or out of range), per_page at a time. */
static void list_query(const admin_req_t *ar, const char *key, const char *q, int per_page,
                       char *out, size_t size)
{
    char *pg = query_param(ar->query, "page");
    long page = pg ? strtol(pg, NULL, 10) : 0;
    if (page < 0 || page > 1000000)
        page = 0;
    free(pg);
    html_t h = {HEARTH_BUF_INIT, 0};
    html_f(&h, "%r=%u&offset=%ld&limit=%d", key, q ? q : "", page * per_page, per_page);
    snprintf(out, size, "%.*s", h.err ? 0 : (int)h.b.len, h.err ? "" : (const char *)h.b.data);
    html_free(&h);
}

static void users_page(admin_req_t *ar)
{
    char *q = query_param(ar->query, "search");
    if (!q)
        q = query_param(ar->query, "q");
    char query[1200];
    list_query(ar, "search", q, USERS_PAGE, query, sizeof(query));
    free(q);
    api(ar, "GET", "/api/v1/users", query, NULL, users_listed);
}

static void user_create(admin_req_t *ar)
{
    cpage_t *cp = page_of(ar);
    const char *name = field(cp, "username"), *pw = field(cp, "password");
    const char *adm = field(cp, "admin");
    char *node = name ? admin__node_of(name) : NULL;
    snprintf(cp->back, sizeof(cp->back), "/users");
    if (node) {
        api_path(cp->next, sizeof(cp->next), "/users/", node, "");
        snprintf(cp->ok, sizeof(cp->ok), "Created %s.", node);
    }
    free(node);
    api(ar, "POST", "/api/v1/users", "",
        json_pack("{s:s, s:s, s:b}", "username", name ? name : "", "password", pw ? pw : "",
                  "admin", adm && *adm),
        action_done);
}

/* A session's line in a table: where it comes from, how it is protected, a kick button. */
static void session_row(html_t *c, const cpage_t *cp, json_t *s, const char *back)
{
    const char *jid = json_string_value(json_object_get(s, "jid"));
    char idle[64];
    human_duration(idle, sizeof(idle), (long long)json_integer_value(json_object_get(s, "idle_s")));
    const char *tls = json_string_value(json_object_get(s, "tls"));
    html_f(c,
           "<tr><td data-label=\"JID\">%s</td><td data-label=\"Resource\">%s</td>"
           "<td data-label=\"IP\">%s</td><td data-label=\"TLS\">%s</td>"
           "<td data-label=\"SASL\">%s</td><td data-label=\"Transport\">%s</td>"
           "<td data-label=\"Idle\">%s</td><td data-label=\"Stream mgmt\">%s%r</td>"
           "<td><form class=\"inline\" method=\"post\" action=\"/sessions/kick\" "
           "data-confirm=\"End this session?\">",
           jid, json_string_value(json_object_get(s, "resource")),
           json_string_value(json_object_get(s, "ip")), tls && *tls ? tls : "none",
           json_string_value(json_object_get(s, "sasl")),
           json_string_value(json_object_get(s, "transport")), idle,
           json_is_true(json_object_get(s, "sm")) ? "on" : "off",
           json_is_true(json_object_get(s, "resumable")) ? " (resumable)" : "");
    csrf_field(c, cp);
    html_f(c,
           "<input type=\"hidden\" name=\"jid\" value=\"%s\"><input type=\"hidden\" "
           "name=\"back\" value=\"%s\"><button class=\"danger\">Kick</button></form></td></tr>\n",
           jid, back);
}

static void sessions_table(html_t *c, const cpage_t *cp, json_t *list, const char *back)
{
    html_f(c, "<div class=\"scroll\"><table "
              "class=\"stack\"><thead><tr><th>JID</th><th>Resource</th><th>IP</th>"
              "<th>TLS</th><th>SASL</th><th>Transport</th><th>Idle</th><th>Stream "
              "management</th><th></th></tr></thead><tbody>\n");
    size_t i;
    json_t *s;
    json_array_foreach(list, i, s) session_row(c, cp, s, back);
    html_f(c, "</tbody></table></div>\n");
}

/* The roster as a table (GET /api/v1/users/{u}/roster). */
static void roster_table(html_t *c, int status, json_t *roster)
{
    if (status != 200) {
        html_f(c, "<p class=\"muted\">The roster cannot be read (%d): %s</p>\n", status,
               error_text(roster, "failed"));
        return;
    }
    json_t *items = json_object_get(roster, "items");
    if (!json_array_size(items)) {
        html_f(c, "<p class=\"muted\">No contacts.</p>\n");
        return;
    }
    html_f(c, "<div class=\"scroll\"><table class=\"stack\"><thead><tr><th>Contact</th>"
              "<th>Name</th><th>Subscription</th><th>Groups</th></tr></thead><tbody>\n");
    size_t i, j;
    json_t *it, *g;
    json_array_foreach(items, i, it)
    {
        const char *ask = json_string_value(json_object_get(it, "ask"));
        html_f(c,
               "<tr><td data-label=\"Contact\">%s</td><td data-label=\"Name\">%s</td><td "
               "data-label=\"Subscription\">%s%r%s</td><td data-label=\"Groups\">",
               json_string_value(json_object_get(it, "jid")),
               json_string_value(json_object_get(it, "name")),
               json_string_value(json_object_get(it, "subscription")), ask ? ", asked: " : "", ask);
        json_array_foreach(json_object_get(it, "groups"), j, g)
            html_f(c, "%r%s", j ? ", " : "", json_string_value(g));
        html_f(c, "</td></tr>\n");
    }
    html_f(c, "</tbody></table></div>\n");
}

static void user_roster(admin_req_t *ar, int rstatus, json_t *roster, const char *extra)
{
    (void)extra;
    cpage_t *cp = page_of(ar);
    json_t *body = cp->keep;
    cp->keep = NULL;
    const char *name = json_string_value(json_object_get(body, "username"));
    char self[600];
    api_path(self, sizeof(self), "/users/", name, "");
    html_t c = {HEARTH_BUF_INIT, 0};
    html_f(&c, "<h1>%s</h1>\n<dl><dt>JID</dt><dd>%s</dd><dt>Administrator</dt><dd>%s</dd>", name,
           json_string_value(json_object_get(body, "jid")),
           json_is_true(json_object_get(body, "admin")) ? "yes" : "no");
    json_t *locked = json_object_get(body, "locked");
    if (locked)
        html_f(&c, "<dt>Locked</dt><dd>%s</dd>", json_is_true(locked) ? "yes" : "no");
    html_f(&c, "</dl>\n<h2>Online resources</h2>\n");
    json_t *ss = json_object_get(body, "sessions");
    if (!json_array_size(ss))
        html_f(&c, "<p class=\"muted\">Not online.</p>\n");
    else
        sessions_table(&c, cp, ss, self);
    int adm = json_is_true(json_object_get(body, "admin"));
    int lck = json_is_true(json_object_get(body, "locked"));
    html_f(&c, "<h2>Account</h2>\n<form method=\"post\" action=\"%s/flags\" class=\"row\">", self);
    csrf_field(&c, cp);
    html_f(&c,
           "<label>Administrator <select name=\"admin\"><option value=\"yes\"%r>yes</option>"
           "<option value=\"no\"%r>no</option></select></label><label>Locked (no login) <select "
           "name=\"locked\"><option value=\"yes\"%r>yes</option><option "
           "value=\"no\"%r>no</option></select></label><button>Save</button></form>\n",
           adm ? " selected" : "", adm ? "" : " selected", lck ? " selected" : "",
           lck ? "" : " selected");
    html_f(&c, "<h2>Roster</h2>\n");
    roster_table(&c, rstatus, roster);
    json_decref(roster);
    html_f(&c, "<h2>Reset the password</h2>\n<form method=\"post\" action=\"%s/password\">", self);
    csrf_field(&c, cp);
    html_f(&c, "<label>New password <input type=\"password\" name=\"password\" required "
               "autocomplete=\"new-password\"></label><button>Set</button></form>\n");
    html_f(&c,
           "<h2>Delete</h2>\n<form method=\"post\" action=\"%s/delete\" data-confirm=\"Delete "
           "%s and everything stored for it?\">",
           self, name);
    csrf_field(&c, cp);
    html_f(&c, "<label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" "
               "required> Yes, delete this account, its roster and its messages</label>"
               "<button class=\"danger\">Delete</button></form>\n");
    page_send(ar, 200, name, "/users", &c, NULL); /* name is body's */
    json_decref(body);
}

static void user_shown(admin_req_t *ar, int status, json_t *body, const char *extra)
{
    if (status != 200) {
        error_page(ar, status, error_text(body, "no such user"), extra);
        json_decref(body);
        return;
    }
    char path[NODE_MAX * 3 + 32];
    api_path(path, sizeof(path), "/api/v1/users/",
             json_string_value(json_object_get(body, "username")), "/roster");
    page_of(ar)->keep = body;
    api(ar, "GET", path, "", NULL, user_roster);
}

static void user_page(admin_req_t *ar)
{
    char path[600];
    api_path(path, sizeof(path), "/api/v1/users/", page_of(ar)->arg, "");
    api(ar, "GET", path, "", NULL, user_shown);
}

static void user_password(admin_req_t *ar)
{
    cpage_t *cp = page_of(ar);
    char path[600];
    api_path(cp->back, sizeof(cp->back), "/users/", cp->arg, "");
    snprintf(cp->next, sizeof(cp->next), "%s", cp->back);
    snprintf(cp->ok, sizeof(cp->ok), "The password of %s is changed.", cp->arg);
    api_path(path, sizeof(path), "/api/v1/users/", cp->arg, "/password");
    const char *pw = field(cp, "password");
    api(ar, "PUT", path, "", json_pack("{s:s}", "password", pw ? pw : ""), action_done);
}

static void user_flags(admin_req_t *ar)
{
    cpage_t *cp = page_of(ar);
    char path[NODE_MAX * 3 + 32];
    api_path(cp->back, sizeof(cp->back), "/users/", cp->arg, "");
    snprintf(cp->next, sizeof(cp->next), "%s", cp->back);
    const char *adm = field(cp, "admin"), *lck = field(cp, "locked");
    json_t *b = json_object();
    if (adm)
        json_object_set_new(b, "admin", json_boolean(!strcmp(adm, "yes")));
    if (lck)
        json_object_set_new(b, "locked", json_boolean(!strcmp(lck, "yes")));
    snprintf(cp->ok, sizeof(cp->ok), "%.300s: administrator %s, %s.", cp->arg,
             adm && !strcmp(adm, "yes") ? "yes" : "no",
             lck && !strcmp(lck, "yes") ? "locked" : "not locked");
    api_path(path, sizeof(path), "/api/v1/users/", cp->arg, "");
    api(ar, "PATCH", path, "", b, action_done);
}

static void user_delete(admin_req_t *ar)
{
    cpage_t *cp = page_of(ar);
    char path[600];
    api_path(cp->back, sizeof(cp->back), "/users/", cp->arg, "");
    const char *confirm = field(cp, "confirm");
    if (!confirm || strcmp(confirm, "yes")) {
        sess_flash(cp->sid, "Not deleted: tick the confirmation box.", 1);
        redirect(ar, cp->back, NULL);
        return;
    }
    snprintf(cp->next, sizeof(cp->next), "/users");
    snprintf(cp->ok, sizeof(cp->ok), "Deleted %s.", cp->arg);
    api_path(path, sizeof(path), "/api/v1/users/", cp->arg, "");
    api(ar, "DELETE", path, "", NULL, action_done);
}

/* ---- sessions ---- */

static void sessions_listed(admin_req_t *ar, int status, json_t *body, const char *extra)
{
    if (status != 200) {
        error_page(ar, status, error_text(body, "cannot list the sessions"), extra);
        json_decref(body);
        return;
    }
    html_t c = {HEARTH_BUF_INIT, 0};
    html_f(&c, "<h1>Sessions</h1>\n<p class=\"muted\">%lld online.</p>\n",
           (long long)json_integer_value(json_object_get(body, "count")));
    sessions_table(&c, page_of(ar), json_object_get(body, "sessions"), "/sessions");
    json_decref(body);
    page_send(ar, 200, "Sessions", "/sessions", &c, NULL);
}

static void sessions_page(admin_req_t *ar)
{
    api(ar, "GET", "/api/v1/sessions", "", NULL, sessions_listed);
}

/* A local page to go back to (an action's own field): a path of ours, never another site. */
static void local_back(char *out, size_t cap, const char *want, const char *dflt)
{
    int ok = want && want[0] == '/' && want[1] != '/' && want[1] != '\\' && strlen(want) < cap &&
             !strpbrk(want, "\r\n\\");
    snprintf(out, cap, "%s", ok ? want : dflt);
}

static void session_kick(admin_req_t *ar)
{
    cpage_t *cp = page_of(ar);
    const char *jid = field(cp, "jid");
    local_back(cp->back, sizeof(cp->back), field(cp, "back"), "/sessions");
    snprintf(cp->next, sizeof(cp->next), "%s", cp->back);
    snprintf(cp->ok, sizeof(cp->ok), "Ended %s.", jid ? jid : "");
    char path[3200];
    html_t h = {HEARTH_BUF_INIT, 0};
    html_f(&h, "/api/v1/sessions/%u", jid ? jid : "");
    snprintf(path, sizeof(path), "%.*s", h.err ? 0 : (int)h.b.len,
             h.err ? "" : (const char *)h.b.data);
    html_free(&h);
    api(ar, "DELETE", path, "", NULL, action_done);
}

/* ---- log ---- */

static void log_listed(admin_req_t *ar, int status, json_t *body, const char *extra)
{
    if (status != 200) {
        error_page(ar, status, error_text(body, "cannot read the log"), extra);
        json_decref(body);
        return;
    }
    static const char *const LEVELS[] = {"error", "warn", "info", "debug"};
    const char *level = json_string_value(json_object_get(body, "level"));
    json_t *lines = json_object_get(body, "lines");
    html_t c = {HEARTH_BUF_INIT, 0};
    html_f(&c, "<h1>Log</h1>\n<form method=\"get\" action=\"/log\" class=\"row\"><label>Level "
               "<select name=\"level\">");
    for (size_t i = 0; i < 4; i++)
        html_f(&c, "<option%r>%s</option>", level && !strcmp(level, LEVELS[i]) ? " selected" : "",
               LEVELS[i]);
    html_f(&c,
           "</select></label><label>Lines <input type=\"number\" name=\"n\" min=\"1\" "
           "max=\"1000\" value=\"%zu\"></label><button>Show</button></form>\n"
           "<p class=\"muted\">The last %zu line(s) at %s level or more severe, oldest first "
           "(hearthd keeps the last 1000 in memory).</p>\n<pre class=\"log\">",
           json_array_size(lines) > LOG_LINES ? json_array_size(lines) : (size_t)LOG_LINES,
           json_array_size(lines), level);
    size_t i;
    json_t *l;
    json_array_foreach(lines, i, l) html_f(&c, "<span class=\"lv-%s\">%s</span>\n",
                                           json_string_value(json_object_get(l, "level")),
                                           json_string_value(json_object_get(l, "text")));
    html_f(&c, "</pre>\n");
    json_decref(body);
    page_send(ar, 200, "Log", "/log", &c, NULL);
}

static void log_page(admin_req_t *ar)
{
    char *level = query_param(ar->query, "level");
    char *n = query_param(ar->query, "n");
    html_t h = {HEARTH_BUF_INIT, 0};
    html_f(&h, "level=%u&limit=%u", level && *level ? level : "info", n && *n ? n : "200");
    char query[256];
    snprintf(query, sizeof(query), "%.*s", h.err ? 0 : (int)h.b.len,
             h.err ? "" : (const char *)h.b.data);
    html_free(&h);
    free(level);
    free(n);
    api(ar, "GET", "/api/v1/log", query, NULL, log_listed);
}

/* ---- rooms ---- */

#define ROOMS_PAGE 25 /* rooms per page of the rooms list */

/* The localpart of a room's JID (what the console's paths name a room by), into out. */
static void room_node(char *out, size_t cap, const char *jid)
{
    snprintf(out, cap, "%.*s", jid ? (int)strcspn(jid, "@") : 0, jid ? jid : "");
}

static const char *yes_no(json_t *v)
{
    return json_is_true(v) ? "yes" : "no";
}

static void rooms_listed(admin_req_t *ar, int status, json_t *body, const char *extra)
{
    cpage_t *cp = page_of(ar);
    if (status != 200) {
        error_page(ar, status, error_text(body, "cannot list the rooms"), extra);
        json_decref(body);
        return;
    }
    char *q = query_param(ar->query, "q");
    long long total = (long long)json_integer_value(json_object_get(body, "total"));
    long long offset = (long long)json_integer_value(json_object_get(body, "offset"));
    html_t c = {HEARTH_BUF_INIT, 0};
    html_f(&c,
           "<h1>Rooms</h1>\n<form method=\"get\" action=\"/rooms\" class=\"row\" "
           "role=\"search\"><label>Search <input type=\"search\" name=\"q\" value=\"%s\">"
           "</label><button>Search</button></form>\n<p class=\"muted\">%lld room(s)</p>\n"
           "<div class=\"scroll\"><table class=\"stack\"><thead><tr><th>Room</th><th>Name</th>"
           "<th>Description</th><th>Occupants</th><th>Public</th><th>Members only</th>"
           "<th>Password</th></tr></thead><tbody>\n",
           q ? q : "", total);
    size_t i;
    json_t *r;
    json_array_foreach(json_object_get(body, "rooms"), i, r)
    {
        const char *jid = json_string_value(json_object_get(r, "jid"));
        char node[NODE_MAX];
        room_node(node, sizeof(node), jid);
        html_f(&c,
               "<tr><td data-label=\"Room\"><a href=\"/rooms/%u\">%s</a></td><td "
               "data-label=\"Name\">%s</td><td data-label=\"Description\">%s</td><td "
               "data-label=\"Occupants\">%lld</td><td data-label=\"Public\">%s</td><td "
               "data-label=\"Members only\">%s</td><td data-label=\"Password\">%s</td></tr>\n",
               node, jid, json_string_value(json_object_get(r, "name")),
               json_string_value(json_object_get(r, "description")),
               (long long)json_integer_value(json_object_get(r, "occupants")),
               yes_no(json_object_get(r, "public")), yes_no(json_object_get(r, "members_only")),
               yes_no(json_object_get(r, "password_protected")));
    }
    html_f(&c, "</tbody></table></div>\n<div class=\"pager\">");
    if (offset > 0)
        html_f(&c, "<a href=\"/rooms?q=%u&amp;page=%lld\">Previous</a>", q ? q : "",
               offset / ROOMS_PAGE - 1);
    if (offset + ROOMS_PAGE < total)
        html_f(&c, "<a href=\"/rooms?q=%u&amp;page=%lld\">Next</a>", q ? q : "",
               offset / ROOMS_PAGE + 1);
    html_f(&c, "</div>\n<h2>New room</h2>\n<form method=\"post\" action=\"/rooms\">");
    csrf_field(&c, cp);
    html_f(&c, "<label>Address (the part before @) <input type=\"text\" name=\"name\" required "
               "autocomplete=\"off\" autocapitalize=\"none\"></label>"
               "<label>Name <input type=\"text\" name=\"title\"></label>"
               "<label>Description <input type=\"text\" name=\"description\"></label>"
               "<label class=\"check\"><input type=\"checkbox\" name=\"public\" value=\"1\" "
               "checked> Listed in the directory</label>"
               "<label class=\"check\"><input type=\"checkbox\" name=\"members_only\" "
               "value=\"1\"> Members only</label><button>Create</button></form>\n");
    free(q);
    json_decref(body);
    page_send(ar, 200, "Rooms", "/rooms", &c, NULL);
}

static void rooms_page(admin_req_t *ar)
{
    char *q = query_param(ar->query, "q");
    char query[1200];
    list_query(ar, "q", q, ROOMS_PAGE, query, sizeof(query));
    free(q);
    api(ar, "GET", "/api/v1/rooms", query, NULL, rooms_listed);
}

static void room_create(admin_req_t *ar)
{
    cpage_t *cp = page_of(ar);
    const char *name = field(cp, "name"), *title = field(cp, "title");
    const char *desc = field(cp, "description"), *pub = field(cp, "public");
    const char *members = field(cp, "members_only");
    snprintf(cp->back, sizeof(cp->back), "/rooms");
    char node[NODE_MAX];
    room_node(node, sizeof(node), name ? name : "");
    api_path(cp->next, sizeof(cp->next), "/rooms/", node, "");
    snprintf(cp->ok, sizeof(cp->ok), "Created the room %.300s.", node);
    json_t *config = json_pack("{s:s, s:s, s:s, s:s}", "muc#roomconfig_roomname",
                               title ? title : "", "muc#roomconfig_roomdesc", desc ? desc : "",
                               "muc#roomconfig_publicroom", pub && *pub ? "1" : "0",
                               "muc#roomconfig_membersonly", members && *members ? "1" : "0");
    api(ar, "POST", "/api/v1/rooms", "",
        json_pack("{s:s, s:o}", "name", name ? name : "", "config",
                  config ? config : json_object()),
        action_done);
}

/* One field of the room's configuration form (XEP-0004 types, as the API lists them). The
 * input's name says how its value goes back: f. one string, m. a list (several selected), j. a
 * list of lines, p. a password (left out when empty: never shown, so empty keeps it). */
static void room_field(html_t *c, json_t *f)
{
    const char *var = json_string_value(json_object_get(f, "var"));
    const char *type = json_string_value(json_object_get(f, "type"));
    const char *label = json_string_value(json_object_get(f, "label"));
    json_t *value = json_object_get(f, "value");
    if (!var || !type || !strcmp(type, "hidden") || !strcmp(type, "fixed"))
        return;
    html_f(c, "<label>%s <span class=\"muted\">%s</span> ", label && *label ? label : var,
           label && *label ? var : "");
    if (!strcmp(type, "boolean")) {
        const char *v = json_string_value(value);
        int on = v && (!strcmp(v, "1") || !strcmp(v, "true"));
        html_f(c,
               "<select name=\"f.%s\"><option value=\"1\"%r>yes</option><option "
               "value=\"0\"%r>no</option></select>",
               var, on ? " selected" : "", on ? "" : " selected");
    } else if (!strcmp(type, "list-single") || !strcmp(type, "list-multi")) {
        int multi = !strcmp(type, "list-multi");
        if (multi) /* so that selecting none still sends the field, as an empty list */
            html_f(c, "<input type=\"hidden\" name=\"m.%s\" value=\"\">", var);
        html_f(c, "<select name=\"%r.%s\"%r>", multi ? "m" : "f", var, multi ? " multiple" : "");
        size_t i, j;
        json_t *o, *v;
        json_array_foreach(json_object_get(f, "options"), i, o)
        {
            const char *ov = json_string_value(json_object_get(o, "value"));
            const char *ol = json_string_value(json_object_get(o, "label"));
            int sel = 0;
            if (json_is_array(value)) {
                json_array_foreach(value, j, v) if (ov && json_string_value(v) &&
                                                    !strcmp(ov, json_string_value(v))) sel = 1;
            } else {
                sel = ov && json_string_value(value) && !strcmp(ov, json_string_value(value));
            }
            html_f(c, "<option value=\"%s\"%r>%s</option>", ov, sel ? " selected" : "",
                   ol && *ol ? ol : ov);
        }
        html_f(c, "</select>");
    } else if (!strcmp(type, "jid-multi") || !strcmp(type, "text-multi")) {
        html_f(c, "<textarea name=\"j.%s\" rows=\"3\">", var);
        size_t i;
        json_t *v;
        json_array_foreach(value, i, v) html_f(c, "%s\n", json_string_value(v));
        html_f(c, "</textarea>");
    } else if (!strcmp(type, "text-private")) {
        html_f(c,
               "<input type=\"password\" name=\"p.%s\" value=\"\" autocomplete=\"off\" "
               "placeholder=\"(unchanged)\">",
               var);
    } else {
        html_f(c, "<input type=\"text\" name=\"f.%s\" value=\"%s\">", var,
               json_string_value(value));
    }
    html_f(c, "</label>\n");
}

static void room_shown(admin_req_t *ar, int status, json_t *body, const char *extra)
{
    cpage_t *cp = page_of(ar);
    if (status != 200) {
        error_page(ar, status, error_text(body, "no such room"), extra);
        json_decref(body);
        return;
    }
    const char *jid = json_string_value(json_object_get(body, "jid"));
    char node[NODE_MAX], self[NODE_MAX * 3 + 16];
    room_node(node, sizeof(node), jid);
    api_path(self, sizeof(self), "/rooms/", node, "");
    const char *name = json_string_value(json_object_get(body, "name"));
    html_t c = {HEARTH_BUF_INIT, 0};
    html_f(&c,
           "<h1>%s</h1>\n<dl><dt>JID</dt><dd>%s</dd><dt>Description</dt><dd>%s</dd>"
           "<dt>Public</dt><dd>%s</dd><dt>Members only</dt><dd>%s</dd><dt>Password</dt><dd>%s</dd>"
           "<dt>Persistent</dt><dd>%s</dd></dl>\n<h2>Occupants</h2>\n",
           name && *name ? name : jid, jid, json_string_value(json_object_get(body, "description")),
           yes_no(json_object_get(body, "public")), yes_no(json_object_get(body, "members_only")),
           yes_no(json_object_get(body, "password_protected")),
           yes_no(json_object_get(body, "persistent")));
    json_t *occ = json_object_get(body, "occupants");
    size_t i;
    json_t *o;
    if (!json_array_size(occ)) {
        html_f(&c, "<p class=\"muted\">Nobody is in the room.</p>\n");
    } else {
        html_f(&c, "<div class=\"scroll\"><table class=\"stack\"><thead><tr><th>Nickname</th>"
                   "<th>JID</th><th>Role</th><th>Affiliation</th></tr></thead><tbody>\n");
        json_array_foreach(occ, i, o)
            html_f(&c,
                   "<tr><td data-label=\"Nickname\">%s</td><td data-label=\"JID\">%s</td><td "
                   "data-label=\"Role\">%s</td><td data-label=\"Affiliation\">%s</td></tr>\n",
                   json_string_value(json_object_get(o, "nick")),
                   json_string_value(json_object_get(o, "jid")),
                   json_string_value(json_object_get(o, "role")),
                   json_string_value(json_object_get(o, "affiliation")));
        html_f(&c, "</tbody></table></div>\n");
    }
    html_f(&c, "<h2>Affiliations</h2>\n<div class=\"scroll\"><table class=\"stack\"><thead><tr>"
               "<th>JID</th><th>Affiliation</th><th>Nickname</th><th></th></tr></thead><tbody>\n");
    json_array_foreach(json_object_get(body, "affiliations"), i, o)
    {
        const char *aj = json_string_value(json_object_get(o, "jid"));
        html_f(&c,
               "<tr><td data-label=\"JID\">%s</td><td data-label=\"Affiliation\">%s</td><td "
               "data-label=\"Nickname\">%s</td><td><form class=\"inline\" method=\"post\" "
               "action=\"%s/affiliation\">",
               aj, json_string_value(json_object_get(o, "affiliation")),
               json_string_value(json_object_get(o, "nick")), self);
        csrf_field(&c, cp);
        html_f(&c,
               "<input type=\"hidden\" name=\"jid\" value=\"%s\"><input type=\"hidden\" "
               "name=\"affiliation\" value=\"none\"><button>Remove</button></form></td></tr>\n",
               aj);
    }
    html_f(&c,
           "</tbody></table></div>\n<form method=\"post\" action=\"%s/affiliation\" "
           "class=\"row\">",
           self);
    csrf_field(&c, cp);
    html_f(&c, "<label>JID <input type=\"text\" name=\"jid\" required autocapitalize=\"none\">"
               "</label><label>Affiliation <select name=\"affiliation\"><option>member</option>"
               "<option>admin</option><option>owner</option><option>outcast</option></select>"
               "</label><button>Set</button></form>\n");
    html_f(&c, "<h2>Configuration</h2>\n<form method=\"post\" action=\"%s/config\">", self);
    csrf_field(&c, cp);
    json_array_foreach(json_object_get(body, "fields"), i, o) room_field(&c, o);
    html_f(&c,
           "<button>Save</button></form>\n<h2>Destroy</h2>\n<form method=\"post\" "
           "action=\"%s/destroy\" data-confirm=\"Destroy %s? Its occupants are sent "
           "away.\">",
           self, jid);
    csrf_field(&c, cp);
    html_f(&c, "<label>Reason (shown to the occupants) <input type=\"text\" name=\"reason\">"
               "</label><label class=\"check\"><input type=\"checkbox\" name=\"confirm\" "
               "value=\"yes\" required> Yes, destroy this room and what it stores</label>"
               "<button class=\"danger\">Destroy</button></form>\n");
    page_send(ar, 200, name && *name ? name : node, "/rooms", &c, NULL); /* name is body's */
    json_decref(body);
}

static void room_page(admin_req_t *ar)
{
    char path[NODE_MAX * 3 + 32];
    api_path(path, sizeof(path), "/api/v1/rooms/", page_of(ar)->arg, "");
    api(ar, "GET", path, "", NULL, room_shown);
}

/* The lines of a text box, trimmed, empty ones left out. */
static json_t *lines_of(const char *text)
{
    json_t *arr = json_array();
    for (const char *p = text; arr && p && *p;) {
        size_t n = strcspn(p, "\r\n");
        const char *a = p, *b = p + n;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a)
            json_array_append_new(arr, json_stringn(a, (size_t)(b - a)));
        p += n;
        p += strspn(p, "\r\n");
    }
    return arr;
}

static void room_config(admin_req_t *ar)
{
    cpage_t *cp = page_of(ar);
    char path[NODE_MAX * 3 + 32];
    api_path(cp->back, sizeof(cp->back), "/rooms/", cp->arg, "");
    snprintf(cp->next, sizeof(cp->next), "%s", cp->back);
    snprintf(cp->ok, sizeof(cp->ok), "The configuration of %s is saved.", cp->arg);
    json_t *config = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(cp->form, k, v)
    {
        if (strlen(k) < 3 || k[1] != '.')
            continue;
        const char *var = k + 2;
        const char *one =
            json_is_array(v) ? json_string_value(json_array_get(v, 0)) : json_string_value(v);
        if (k[0] == 'f') {
            json_object_set(config, var, json_is_array(v) ? json_array_get(v, 0) : v);
        } else if (k[0] == 'p') {
            if (one && *one)
                json_object_set_new(config, var, json_string(one));
        } else if (k[0] == 'j') {
            json_object_set_new(config, var, lines_of(one));
        } else if (k[0] == 'm') {
            json_t *arr = json_array();
            size_t i;
            json_t *e;
            if (json_is_array(v)) {
                json_array_foreach(v, i, e) if (json_string_length(e)) json_array_append(arr, e);
            } else if (json_string_length(v)) {
                json_array_append(arr, v);
            }
            json_object_set_new(config, var, arr);
        }
    }
    api_path(path, sizeof(path), "/api/v1/rooms/", cp->arg, "");
    api(ar, "PUT", path, "", json_pack("{s:o}", "config", config), action_done);
}

static void room_destroy(admin_req_t *ar)
{
    cpage_t *cp = page_of(ar);
    char path[NODE_MAX * 3 + 32];
    api_path(cp->back, sizeof(cp->back), "/rooms/", cp->arg, "");
    const char *confirm = field(cp, "confirm"), *reason = field(cp, "reason");
    if (!confirm || strcmp(confirm, "yes")) {
        sess_flash(cp->sid, "Not destroyed: tick the confirmation box.", 1);
        redirect(ar, cp->back, NULL);
        return;
    }
    snprintf(cp->next, sizeof(cp->next), "/rooms");
    snprintf(cp->ok, sizeof(cp->ok), "Destroyed the room %s.", cp->arg);
    api_path(path, sizeof(path), "/api/v1/rooms/", cp->arg, "");
    api(ar, "DELETE", path, "", reason && *reason ? json_pack("{s:s}", "reason", reason) : NULL,
        action_done);
}

static void room_affiliation(admin_req_t *ar)
{
    cpage_t *cp = page_of(ar);
    const char *jid = field(cp, "jid"), *aff = field(cp, "affiliation");
    api_path(cp->back, sizeof(cp->back), "/rooms/", cp->arg, "");
    snprintf(cp->next, sizeof(cp->next), "%s", cp->back);
    snprintf(cp->ok, sizeof(cp->ok), "%s is now %s.", jid ? jid : "",
             aff && strcmp(aff, "none") ? aff : "without affiliation");
    html_t h = {HEARTH_BUF_INIT, 0};
    html_f(&h, "/api/v1/rooms/%u/affiliations/%u", cp->arg, jid ? jid : "");
    char path[4096];
    snprintf(path, sizeof(path), "%.*s", h.err ? 0 : (int)h.b.len,
             h.err ? "" : (const char *)h.b.data);
    html_free(&h);
    api(ar, "PUT", path, "", json_pack("{s:s}", "affiliation", aff ? aff : ""), action_done);
}

/* ---- settings (the runtime properties) ---- */

/* The input of one property, fitting its type. */
static void property_input(html_t *c, json_t *p)
{
    const char *type = json_string_value(json_object_get(p, "type"));
    const char *value = json_string_value(json_object_get(p, "value"));
    json_t *allowed = json_object_get(p, "allowed");
    if (json_is_array(allowed)) {
        html_f(c, "<select name=\"value\">");
        size_t i;
        json_t *a;
        json_array_foreach(allowed, i, a)
        {
            const char *v = json_string_value(a);
            html_f(c, "<option%r>%s</option>", value && v && !strcmp(v, value) ? " selected" : "",
                   v);
        }
        html_f(c, "</select>");
    } else if (type && !strcmp(type, "int")) {
        html_f(c, "<input type=\"number\" name=\"value\" value=\"%s\" min=\"%lld\" max=\"%lld\">",
               value, (long long)json_integer_value(json_object_get(p, "min")),
               (long long)json_integer_value(json_object_get(p, "max")));
    } else {
        html_f(c, "<input type=\"text\" name=\"value\" value=\"%s\">", value);
    }
}

static void property_row(html_t *c, const cpage_t *cp, json_t *p)
{
    const char *key = json_string_value(json_object_get(p, "key"));
    const char *value = json_string_value(json_object_get(p, "value"));
    int runtime = json_is_true(json_object_get(p, "runtime"));
    int fixed = json_is_true(json_object_get(p, "fixed"));
    html_f(c, "<div class=\"box\" id=\"k-%s\"><b>%s</b> <span class=\"muted\">%s</span>", key, key,
           json_string_value(json_object_get(p, "help")));
    if (!runtime || fixed) {
        html_f(c, "<p>%s <span class=\"muted\">(%s)</span></p></div>\n",
               value && *value ? value : "(empty)",
               fixed ? "fixed for this run by the configuration file or --set"
                     : "read at start: change it in the configuration file and restart");
        return;
    }
    html_f(c, "<form method=\"post\" action=\"/settings\" class=\"row\">");
    csrf_field(c, cp);
    html_f(c, "<input type=\"hidden\" name=\"key\" value=\"%s\"><label>Value ", key);
    property_input(c, p);
    html_f(c, "</label><button>Set</button></form>");
    if (json_is_true(json_object_get(p, "stored"))) {
        html_f(c, "<form method=\"post\" action=\"/settings/reset\" class=\"inline\">");
        csrf_field(c, cp);
        html_f(c,
               "<input type=\"hidden\" name=\"key\" value=\"%s\"><button>Back to the default "
               "(%s)</button></form>",
               key, json_string_value(json_object_get(p, "default")));
    }
    html_f(c, "</div>\n");
}

/* The section of a key: what comes before its first dot. */
static int same_section(const char *a, const char *b)
{
    size_t n = strcspn(a, ".");
    return strcspn(b, ".") == n && !strncmp(a, b, n);
}

static int by_key(const void *a, const void *b)
{
    const char *ka = json_string_value(json_object_get(*(json_t *const *)a, "key"));
    const char *kb = json_string_value(json_object_get(*(json_t *const *)b, "key"));
    return strcmp(ka ? ka : "", kb ? kb : "");
}

static void properties_listed(admin_req_t *ar, int status, json_t *body, const char *extra)
{
    if (status != 200) {
        error_page(ar, status, error_text(body, "cannot read the settings"), extra);
        json_decref(body);
        return;
    }
    cpage_t *cp = page_of(ar);
    json_t *props = json_object_get(body, "properties");
    /* By key, so that each section's keys come together under its heading. */
    size_t np = json_array_size(props);
    json_t **sorted = calloc(np ? np : 1, sizeof(*sorted));
    for (size_t k = 0; sorted && k < np; k++)
        sorted[k] = json_array_get(props, k);
    if (sorted)
        qsort(sorted, np, sizeof(*sorted), by_key);
    props = json_array();
    for (size_t k = 0; sorted && props && k < np; k++)
        json_array_append(props, sorted[k]);
    free(sorted);
    html_t c = {HEARTH_BUF_INIT, 0};
    html_f(&c, "<h1>Settings</h1>\n<p class=\"muted\">These change while hearthd runs: stored "
               "in the database, applied at once, kept across restarts.</p>\n");
    const char *section = NULL;
    size_t i, fixed = 0;
    json_t *p;
    json_array_foreach(props, i, p)
    {
        const char *key = json_string_value(json_object_get(p, "key"));
        if (!json_is_true(json_object_get(p, "runtime"))) {
            fixed++;
            continue;
        }
        if (key && (!section || !same_section(section, key))) {
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)strcspn(key, "."), key);
            html_f(&c, "<h2>%s</h2>\n", name);
            section = key;
        }
        property_row(&c, cp, p);
    }
    html_f(&c,
           "<h2>Read at start</h2>\n<details><summary>%zu settings of the configuration "
           "file</summary>\n",
           fixed);
    json_array_foreach(props, i, p) if (!json_is_true(json_object_get(p, "runtime")))
        property_row(&c, cp, p);
    html_f(&c, "</details>\n");
    json_decref(props);
    json_decref(body);
    page_send(ar, 200, "Settings", "/settings", &c, NULL);
}

static void settings_page(admin_req_t *ar)
{
    api(ar, "GET", "/api/v1/properties", "", NULL, properties_listed);
}

static void setting_change(admin_req_t *ar, int reset)
{
    cpage_t *cp = page_of(ar);
    const char *key = field(cp, "key"), *value = field(cp, "value");
    char path[600];
    api_path(path, sizeof(path), "/api/v1/properties/", key ? key : "", "");
    html_t h = {HEARTH_BUF_INIT, 0};
    html_f(&h, "/settings#k-%u", key ? key : "");
    snprintf(cp->next, sizeof(cp->next), "%.*s", h.err ? 9 : (int)h.b.len,
             h.err ? "/settings" : (const char *)h.b.data);
    html_free(&h);
    snprintf(cp->back, sizeof(cp->back), "%s", cp->next);
    if (reset) {
        snprintf(cp->ok, sizeof(cp->ok), "%s is back to its default.", key ? key : "");
        api(ar, "DELETE", path, "", NULL, action_done);
    } else {
        snprintf(cp->ok, sizeof(cp->ok), "%s is now %s.", key ? key : "", value ? value : "");
        api(ar, "PUT", path, "", json_pack("{s:s}", "value", value ? value : ""), action_done);
    }
}

static void setting_set(admin_req_t *ar)
{
    setting_change(ar, 0);
}

static void setting_reset(admin_req_t *ar)
{
    setting_change(ar, 1);
}

/* ---- the certificate ---- */

static void certificate_shown(admin_req_t *ar, int status, json_t *body, const char *extra)
{
    cpage_t *cp = page_of(ar);
    if (status != 200) {
        error_page(ar, status, error_text(body, "cannot read the certificate"), extra);
        json_decref(body);
        return;
    }
    html_t c = {HEARTH_BUF_INIT, 0};
    html_f(&c,
           "<h1>Certificate</h1>\n<p class=\"muted\">The certificate of client TLS, HTTPS and "
           "this console's HTTPS port.</p>\n<dl><dt>Subject</dt><dd>%s</dd><dt>Issuer</dt>"
           "<dd>%s%r</dd><dt>Valid from</dt><dd>%s</dd><dt>Valid until</dt><dd>%s</dd>"
           "<dt>Names</dt><dd>",
           json_string_value(json_object_get(body, "subject")),
           json_string_value(json_object_get(body, "issuer")),
           json_is_true(json_object_get(body, "self_signed")) ? " (self-signed)" : "",
           json_string_value(json_object_get(body, "not_before")),
           json_string_value(json_object_get(body, "not_after")));
    size_t i;
    json_t *n;
    json_array_foreach(json_object_get(body, "san"), i, n)
        html_f(&c, "%r%s", i ? ", " : "", json_string_value(n));
    html_f(&c, "</dd><dt>SHA-256</dt><dd>%s</dd><dt>File</dt><dd>%s</dd></dl>\n",
           json_string_value(json_object_get(body, "sha256")),
           json_string_value(json_object_get(body, "path")));
    html_f(&c, "<h2>Replace</h2>\n<form method=\"post\" action=\"/certificate\">");
    csrf_field(&c, cp);
    html_f(&c, "<label>PEM files (certificate chain and key) <input type=\"file\" id=\"pemfile\" "
               "accept=\".pem,.crt,.key,application/x-pem-file\" multiple></label>"
               "<label>Certificate chain (PEM) <textarea id=\"cert\" name=\"cert\" required "
               "spellcheck=\"false\"></textarea></label><label>Private key (PEM) <textarea "
               "id=\"key\" name=\"key\" required spellcheck=\"false\" autocomplete=\"off\">"
               "</textarea></label><button>Replace</button></form>\n<p class=\"muted\">New "
               "connections use it at once; the key must match the certificate.</p>\n");
    json_decref(body);
    page_send(ar, 200, "Certificate", "/certificate", &c, NULL);
}

static void certificate_page(admin_req_t *ar)
{
    api(ar, "GET", "/api/v1/certificate", "", NULL, certificate_shown);
}

static void certificate_replace(admin_req_t *ar)
{
    cpage_t *cp = page_of(ar);
    const char *cert = field(cp, "cert"), *key = field(cp, "key");
    snprintf(cp->back, sizeof(cp->back), "/certificate");
    snprintf(cp->next, sizeof(cp->next), "/certificate");
    snprintf(cp->ok, sizeof(cp->ok), "The certificate is replaced.");
    api(ar, "PUT", "/api/v1/certificate", "",
        json_pack("{s:s, s:s}", "cert", cert ? cert : "", "key", key ? key : ""), action_done);
}

/* ---- login, logout, the root ---- */

static void login_form(html_t *c, const char *note, int err)
{
    html_f(&*c, "<div class=\"login\"><h1>Log in</h1>\n");
    if (note)
        html_f(c, "<p class=\"flash%r\" role=\"status\">%s</p>\n", err ? " err" : "", note);
    html_f(c, "<form method=\"post\" action=\"/login\"><label>Administrator (name or JID) "
              "<input type=\"text\" name=\"username\" required autocomplete=\"username\" "
              "autocapitalize=\"none\"></label><label>Password <input type=\"password\" "
              "name=\"password\" required autocomplete=\"current-password\"></label>"
              "<button>Log in</button></form></div>\n");
}

static void login_page(admin_req_t *ar)
{
    if (page_of(ar)->logged_in) {
        redirect(ar, "/dashboard", NULL);
        return;
    }
    char *setup = query_param(ar->query, "setup");
    html_t c = {HEARTH_BUF_INIT, 0};
    if (__atomic_load_n(&admin__st.setup_open, __ATOMIC_ACQUIRE))
        html_f(&c, "<p class=\"flash\">No administrator exists yet: <a href=\"/setup\">create "
                   "the first one</a>.</p>");
    login_form(&c, setup ? "The administrator is created: log in." : NULL, 0);
    free(setup);
    page_send(ar, 200, "Log in", NULL, &c, NULL);
}

static void login_done(admin_req_t *ar, admin_login_t v)
{
    cpage_t *cp = page_of(ar);
    html_t c = {HEARTH_BUF_INIT, 0};
    if (v == ADMIN_LOGIN_OK) {
        char token[65], csrf[65];
        if (cp->logged_in) /* rotation: the id the browser had before is never the one after */
            sess_drop(cp->sid);
        if (sess_new(ar->user, token, csrf)) {
            login_form(&c, "The server has no randomness; try again.", 1);
            page_send(ar, 500, "Log in", NULL, &c, NULL);
            return;
        }
        hlog(LOG_INFO, "admin: %s logged in to the console from %s", ar->who, ar->ip);
        char cookie[256];
        snprintf(cookie, sizeof(cookie),
                 "Set-Cookie: " COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict%s\r\n", token,
                 ar->https ? "; Secure" : "");
        explicit_bzero(token, sizeof(token));
        explicit_bzero(csrf, sizeof(csrf));
        html_free(&c);
        redirect(ar, "/dashboard", cookie);
        explicit_bzero(cookie, sizeof(cookie));
        return;
    }
    cp->logged_in = 0; /* the page shows no navigation: nobody is logged in by it */
    if (v == ADMIN_LOGIN_THROTTLED) {
        login_form(&c,
                   "Too many failed logins from here or for this account: try again in a "
                   "minute.",
                   1);
        page_send(ar, 429, "Log in", NULL, &c, "Retry-After: 60\r\n");
    } else if (v == ADMIN_LOGIN_UNAVAILABLE) {
        login_form(&c, "The server is busy; try again.", 1);
        page_send(ar, 503, "Log in", NULL, &c, NULL);
    } else { /* a wrong password and an account that is no administrator look the same */
        login_form(&c, "Wrong name or password.", 1);
        page_send(ar, 401, "Log in", NULL, &c, NULL);
    }
}

static void login_post(admin_req_t *ar)
{
    cpage_t *cp = page_of(ar);
    const char *name = field(cp, "username"), *pw = field(cp, "password");
    char *node = name ? admin__node_of(name) : NULL;
    char *password = pw && *pw ? strdup(pw) : NULL;
    if (!node || !password) {
        free(node);
        free(password);
        login_done(ar, ADMIN_LOGIN_WRONG);
        return;
    }
    admin__login(ar, node, password, login_done);
}

static void logout(admin_req_t *ar)
{
    cpage_t *cp = page_of(ar);
    sess_drop(cp->sid);
    hlog(LOG_INFO, "admin: %s logged out of the console", ar->who);
    redirect(ar, "/login",
             "Set-Cookie: " COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0\r\n");
}

static void root(admin_req_t *ar)
{
    if (__atomic_load_n(&admin__st.setup_open, __ATOMIC_ACQUIRE))
        redirect(ar, "/setup", NULL);
    else
        redirect(ar, page_of(ar)->logged_in ? "/dashboard" : "/login", NULL);
}

/* ---- the setup page (its form posts JSON to /api/v1/setup through the script) ---- */

int admin__setup_page(http_request_t *req)
{
    if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
        admin__error_now(req, 405, "GET only", "Allow: GET, HEAD\r\n");
        return 0;
    }
    if (!admin__setup_door(req))
        return 0;
    html_t h = {HEARTH_BUF_INIT, 0}, c = {HEARTH_BUF_INIT, 0};
    html_f(&c, "<div class=\"login\"><h1>First administrator</h1>\n<p>hearthd printed a setup "
               "token when it started; it is also in <code>setup.token</code> in its data "
               "directory.</p>\n<form id=\"setup\" method=\"post\" action=\"/api/v1/setup\" "
               "data-next=\"/login?setup=done\"><label>Setup token <input type=\"text\" "
               "name=\"token\" autocomplete=\"off\" required></label><label>Administrator name "
               "<input type=\"text\" name=\"username\" required autocapitalize=\"none\"></label>"
               "<label>Password <input type=\"password\" name=\"password\" required "
               "autocomplete=\"new-password\"></label><button>Create</button></form>"
               "<p id=\"out\" role=\"status\"></p></div>\n");
    cpage_t none = {0};
    layout(&h, &none, "Setup", NULL, &c);
    if (!strcmp(req->method, "HEAD"))
        h.b.len = 0;
    send_html(NULL, req, 200, &h, NULL);
    html_free(&h);
    html_free(&c);
    return 0;
}

/* ---- routing ---- */

typedef struct route {
    const char *method;
    const char *pattern; /* '*': one path segment, decoded into the page's arg */
    int open;            /* answered without a session (a session is still read) */
    void (*fn)(admin_req_t *ar);
} route_t;

static const route_t ROUTES[] = {
    {"GET", "/", 1, root},
    {"GET", "/login", 1, login_page},
    {"POST", "/login", 1, login_post},
    {"POST", "/logout", 0, logout},
    {"GET", "/dashboard", 0, dashboard},
    {"GET", "/dashboard/history", 0, dashboard_history},
    {"GET", "/users", 0, users_page},
    {"POST", "/users", 0, user_create},
    {"GET", "/users/*", 0, user_page},
    {"POST", "/users/*/password", 0, user_password},
    {"POST", "/users/*/delete", 0, user_delete},
    {"POST", "/users/*/flags", 0, user_flags},
    {"GET", "/sessions", 0, sessions_page},
    {"POST", "/sessions/kick", 0, session_kick},
    {"GET", "/rooms", 0, rooms_page},
    {"POST", "/rooms", 0, room_create},
    {"GET", "/rooms/*", 0, room_page},
    {"POST", "/rooms/*/config", 0, room_config},
    {"POST", "/rooms/*/destroy", 0, room_destroy},
    {"POST", "/rooms/*/affiliation", 0, room_affiliation},
    {"GET", "/settings", 0, settings_page},
    {"POST", "/settings", 0, setting_set},
    {"POST", "/settings/reset", 0, setting_reset},
    {"GET", "/certificate", 0, certificate_page},
    {"POST", "/certificate", 0, certificate_replace},
    {"GET", "/log", 0, log_page},
};

/* Whether path fits pattern; the '*' segment (raw) in *seg, *seg_len. */
static int match(const char *pattern, const char *path, const char **seg, size_t *seg_len)
{
    const char *star = strchr(pattern, '*');
    if (!star)
        return !strcmp(pattern, path);
    size_t pre = (size_t)(star - pattern);
    if (strncmp(pattern, path, pre))
        return 0;
    const char *s = path + pre;
    size_t n = strcspn(s, "/");
    if (!n || strcmp(s + n, star + 1))
        return 0;
    *seg = s;
    *seg_len = n;
    return 1;
}

/* An Origin header, when the browser sends one, must be this listener's own. "null" passes:
 * under Referrer-Policy: no-referrer a browser sends it for our own forms, and a page that
 * hides its origin so still lacks the session's CSRF token and, cross-site, the cookie
 * (SameSite=Strict). */
static int origin_ok(const http_request_t *req)
{
    const char *o = http_header(req, "Origin"), *host = http_header(req, "Host");
    if (!o || !strcmp(o, "null"))
        return 1;
    const char *scheme = req->https ? "https://" : "http://";
    size_t sl = strlen(scheme);
    return host && !strncasecmp(o, scheme, sl) && !strcasecmp(o + sl, host);
}

static int form_ctype(const char *ct)
{
    static const char F[] = "application/x-www-form-urlencoded";
    size_t n = sizeof(F) - 1;
    return ct && !strncasecmp(ct, F, n) && (!ct[n] || ct[n] == ';' || ct[n] == ' ');
}

int admin__console(http_request_t *req)
{
    const char *p = req->path, *m = req->method;
    const console_asset_t *asset = console__asset(p);
    if (asset) {
        if (strcmp(m, "GET")) {
            admin__error_now(req, 405, "GET only", "Allow: GET\r\n");
            return 0;
        }
        http_respond(req, 200, asset->ctype,
                     "Cache-Control: no-cache\r\n"
                     "Referrer-Policy: no-referrer\r\n",
                     asset->body, strlen(asset->body));
        return 0;
    }
    const route_t *r = NULL;
    const char *seg = NULL;
    size_t seg_len = 0;
    char allow[64] = "";
    for (size_t i = 0; i < sizeof(ROUTES) / sizeof(*ROUTES); i++) {
        if (!match(ROUTES[i].pattern, p, &seg, &seg_len))
            continue;
        if (!strcmp(ROUTES[i].method, m)) {
            r = &ROUTES[i];
            break;
        }
        snprintf(allow + strlen(allow), sizeof(allow) - strlen(allow), "%s%s", *allow ? ", " : "",
                 ROUTES[i].method);
    }
    if (!r && !*allow)
        return HEARTH_ENOTFOUND;
    if (!r) {
        char hdr[512];
        snprintf(hdr, sizeof(hdr), CONSOLE_HEADERS "Allow: %s\r\n", allow);
        http_respond(req, 405, "text/plain; charset=utf-8", hdr, "method not allowed\n", 19);
        return 0;
    }
    cpage_t *cp = calloc(1, sizeof(*cp));
    if (!cp) {
        admin__error_now(req, 500, "out of memory", NULL);
        return 0;
    }
    session_of(req, cp);
    int post = !strcmp(m, "POST");
    const char *why = NULL;
    int status = 403;
    if (!r->open && !cp->logged_in) {
        if (!post) {
            cpage_free(cp);
            redirect_now(req, "/login", NULL);
            return 0;
        }
        why = "You are not logged in (or your session ended): log in again.";
    } else if (post && !origin_ok(req)) {
        why = "This form was sent from another site.";
    } else if (post && !form_ctype(http_header(req, "Content-Type"))) {
        why = "A form must be sent as application/x-www-form-urlencoded.";
        status = 415;
    } else if (post && req->body_len > ADMIN_BODY_MAX) {
        why = "The form is too large.";
        status = 413;
    }
    if (!why && post && !(cp->form = form_parse(req->body, req->body_len))) {
        why = "The form is malformed.";
        status = 400;
    }
    if (!why && post && !r->open) {
        /* CSRF: the session's token, compared in constant time. */
        const char *t = field(cp, "csrf");
        if (!t || strlen(t) != 64 || CRYPTO_memcmp(t, cp->csrf, 64))
            why = "The form's security token is missing or wrong: reload the page and try "
                  "again.";
    }
    if (!why && seg && !(cp->arg = pct_decode(seg, seg_len, 0))) {
        why = "Malformed path.";
        status = 404;
    }
    if (why) {
        hlog(LOG_WARN, "admin: console %s %s from %s refused (%d): %s", m, p, req->c->ip, status,
             why);
        cpage_free(cp);
        refuse_now(req, status, why);
        return 0;
    }
    admin_req_t *ar = admin__req_take(req);
    if (!ar) {
        cpage_free(cp);
        return 0;
    }
    ar->page = cp;
    ar->page_free = cpage_free;
    if (cp->logged_in)
        snprintf(ar->who, sizeof(ar->who), "%s@%s", cp->node, ar->w->srv->set.domain);
    r->fn(ar);
    return 0;
}

/* ---- start and end ---- */

int admin__console_init(server_t *srv)
{
    if (!sess_lock_made) {
        if (uv_mutex_init(&sess_lock))
            return HEARTH_ENOMEM;
        sess_lock_made = 1;
    }
    idle_ms = (uint64_t)config_int(srv->cfg, "admin.session_idle") * 1000;
    lifetime_ms = (uint64_t)config_int(srv->cfg, "admin.session_lifetime") * 1000;
    return 0;
}

void admin__console_free(void)
{
    admin__data_free();
    if (sess_lock_made)
        uv_mutex_destroy(&sess_lock);
    sess_lock_made = 0;
    explicit_bzero(sessions, sizeof(sessions));
}
