/* The config table and everything derived from it: INI and --set parsing, validation, the
 * commented default file and the markdown reference. Touches only the files it is given. */
#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hearth/buf.h"

static const char *const LOG_LEVELS[] = {"error", "warn", "info", "debug", NULL};
static const char *const TLS_MODES[] = {"required", "optional", NULL};
static const char *const CONFLICTS[] = {"replace", "reject", "rename", NULL};
static const char *const DRIVERS[] = {"sqlite", "pgsql", NULL};
static const char *const METRICS_MODES[] = {"off", "open", "key", NULL};
static const char *const PUBSUB_CREATE[] = {"local", "admin", "open", NULL};

#define S(n, d, h, rt)                                                                             \
    {                                                                                              \
        n, CONFIG_STRING, d, 0, 0, NULL, h, rt                                                     \
    }
#define I(n, d, lo, hi, h, rt)                                                                     \
    {                                                                                              \
        n, CONFIG_INT, d, lo, hi, NULL, h, rt                                                      \
    }
#define B(n, d, h, rt)                                                                             \
    {                                                                                              \
        n, CONFIG_BOOL, d, 0, 0, NULL, h, rt                                                       \
    }
#define E(n, d, a, h, rt)                                                                          \
    {                                                                                              \
        n, CONFIG_ENUM, d, 0, 0, a, h, rt                                                          \
    }

/* Grouped by section, in the order the default file and docs show them. */
static const config_key_t KEYS[] = {
    S("server.domain", "localhost", "XMPP domain served here (the part after @ in user JIDs).", 0),
    I("server.workers", "0", 0, 256, "Worker threads; 0 = one per CPU core.", 0),
    E("log.level", "info", LOG_LEVELS, "Least severe level written to stderr.", 1),
    S("c2s.bind", "0.0.0.0", "Address the client listeners bind to.", 0),
    I("c2s.port", "5222", -1, 65535, "Client port with STARTTLS; 0 = ephemeral, -1 = off.", 0),
    I("c2s.direct_tls_port", "5223", -1, 65535,
      "Client port with direct TLS (XEP-0368); 0 = ephemeral, -1 = off.", 0),
    E("c2s.tls", "required", TLS_MODES, "Whether clients must start TLS before authenticating.", 0),
    B("c2s.plain_without_tls", "false", "Offer SASL PLAIN on a stream that is not encrypted.", 1),
    I("c2s.idle_ping", "180", 0, 86400, "Seconds of silence before the server pings; 0 = off.", 1),
    I("c2s.idle_release", "1", 0, 3600,
      "Seconds of silence before a bound stream gives back its XML parser, empty output "
      "buffers and TLS 1.3 state (about 25 KB); 0 = after every read.",
      1),
    I("c2s.ping_timeout", "60", 1, 3600, "Seconds to wait for a ping reply before closing.", 1),
    E("c2s.resource_conflict", "replace", CONFLICTS,
      "What a second login with a resource already bound does to the first.", 1),
    I("c2s.max_resources", "10", 1, 1000, "Sessions one account may have at once.", 1),
    I("c2s.resume_timeout", "300", 0, 86400,
      "Seconds a stream-management session waits for resumption; 0 = no resumption.", 1),
    I("c2s.resume_budget", "67108864", 1048576, 17179869184,
      "Bytes that sessions waiting for resumption may hold per worker; past it the oldest end "
      "and their unacknowledged messages go to offline storage.",
      1),
    I("c2s.preauth_timeout", "30", 1, 3600,
      "Seconds a connection may take to authenticate before it is closed.", 1),
    I("c2s.max_stanza", "262144", 4096, 16777216, "Largest stanza after authentication, bytes.", 1),
    I("c2s.max_stanza_preauth", "16384", 1024, 1048576,
      "Largest stanza before authentication, bytes.", 1),
    I("c2s.auth_attempts", "3", 1, 100,
      "Failed SASL attempts on one stream before the stream is closed.", 1),
    I("c2s.auth_fail_delay_ms", "1000", 0, 10000,
      "Throttling delay added after each failed authentication, milliseconds.", 1),
    B("c2s.sasl_plain", "true", "Offer SASL PLAIN at all.", 1),
    I("limits.preauth_per_ip", "16", 0, 1000000,
      "Unauthenticated connections allowed per IP address; 0 = no limit.", 1),
    B("registration.open", "false", "Allow in-band account registration (XEP-0077).", 1),
    I("registration.rate_limit", "5", 0, 1000000,
      "Registrations allowed per IP address per hour; 0 = no limit.", 1),
    I("registration.min_password", "6", 1, 1024,
      "Shortest password accepted at registration or change, in characters.", 1),
    I("roster.max_items", "1000", 1, 100000, "Contacts one roster may hold.", 1),
    /* At most half the 4 MiB output bound (CONN_MAX_OUTQ): a roster is always sent whole. */
    I("roster.max_size", "524288", 16384, 2097152,
      "Largest roster, as the bytes of its result; a set past it gets policy-violation.", 1),
    I("offline.quota", "1000", 0, 1000000,
      "Offline messages stored per user; past it senders get service-unavailable.", 1),
    I("vcard.max_size", "65536", 1024, 1048576, "Largest vCard (XEP-0054) stored, bytes.", 1),
    I("private.max_size", "65536", 1024, 1048576,
      "Largest private XML fragment (XEP-0049) stored per namespace, bytes.", 1),
    I("private.max_total", "1048576", 4096, 16777216,
      "Private XML (XEP-0049) one account may store, all namespaces together, bytes.", 1),
    /* At most 1000 nodes and 10,000 items, so that a list of them (disco#items) stays well
     * inside the 4 MiB output bound (CONN_MAX_OUTQ). */
    I("pep.max_nodes", "100", 1, 1000,
      "PEP nodes (XEP-0163) one account may have; one more gets policy-violation.", 1),
    I("pep.max_items", "1000", 1, 10000,
      "Items one PEP node may keep (what 'max' means); a node configured for more is refused.", 1),
    I("pep.max_item_size", "131072", 1024, 1048576,
      "Largest PEP item payload, bytes; a larger one gets payload-too-big.", 1),
    /* At most half the 4 MiB output bound (CONN_MAX_OUTQ): a node's items go out whole. */
    I("pep.max_bytes", "1048576", 4096, 2097152,
      "PEP item payloads one account may keep, all nodes together, bytes; past it "
      "policy-violation and nothing is stored.",
      1),
    B("pep.vcard_conversion", "true",
      "Convert between the vCard's PHOTO and the XEP-0084 avatar (XEP-0398) and put its hash in "
      "presence (XEP-0153); false = neither, feature not advertised.",
      0),
    B("pep.bookmarks_compat", "true",
      "Convert between XEP-0048 bookmarks in private XML and XEP-0402 ones in PEP "
      "(urn:xmpp:bookmarks:1#compat); false = kept apart, feature not advertised.",
      0),
    B("pubsub.enabled", "true", "The publish-subscribe service (XEP-0060) at pubsub.domain.", 0),
    S("pubsub.domain", "", "Publish-subscribe service domain; empty = pubsub.<server.domain>.", 0),
    E("pubsub.create_policy", "local", PUBSUB_CREATE,
      "Who may create pubsub nodes: local (users of server.domain), admin (administrators), "
      "open (anyone).",
      0),
    /* At most 10,000 items, so that a list of a node's item ids (disco#items) stays well inside
     * the 4 MiB output bound (CONN_MAX_OUTQ). */
    I("pubsub.max_nodes_per_user", "100", 1, 100000,
      "Pubsub nodes one user may own; one more gets policy-violation.", 0),
    I("pubsub.max_items", "1000", 1, 10000,
      "Items one pubsub node may keep (what 'max' means); a node configured for more is "
      "refused.",
      0),
    I("pubsub.max_item_size", "65536", 1024, 1048576,
      "Largest pubsub item payload, bytes; a larger one gets payload-too-big.", 0),
    /* At most half the 4 MiB output bound (CONN_MAX_OUTQ): a node's items go out whole. */
    I("pubsub.max_node_bytes", "1048576", 4096, 2097152,
      "Item payloads one pubsub node may keep, bytes; a publish past it gets policy-violation "
      "and nothing is stored.",
      0),
    /* A node's subscriptions are stored as one document of at most 1 MiB (STORAGE_XML_MAX). */
    I("pubsub.max_subscriptions", "1000", 1, 10000,
      "Subscriptions one pubsub node may have; one more gets too-many-subscriptions.", 0),
    I("caps.cache_size", "1000", 16, 1000000,
      "Verified entity capabilities (XEP-0115) the server remembers; past it the least "
      "recently used is forgotten.",
      0),
    B("archive.enabled", "true",
      "Keep the message archive (XEP-0313); false = none: nothing is archived, the feature is "
      "not advertised and queries get service-unavailable. Archives already stored are kept.",
      0),
    I("archive.retention_days", "0", 0, 36500,
      "Days a user's archived messages (XEP-0313) are kept; 0 = forever.", 1),
    B("server.hide_version", "false",
      "Answer Software Version (XEP-0092) queries without the version and OS.", 1),
    S("muc.domain", "", "Multi-user chat domain; empty = conference.<server.domain>.", 0),
    I("muc.max_rooms_per_user", "100", 0, 1000000,
      "Rooms one account may own (stored rooms) or have created (others); 0 = no limit.", 1),
    /* The configuration a new room starts with (XEP-0045 §10.1), before its owner changes it. */
    B("muc.default_persistent", "false",
      "New rooms are persistent (muc#roomconfig_persistentroom).", 1),
    B("muc.default_public", "true",
      "New rooms are listed in the service's disco#items "
      "(muc#roomconfig_publicroom).",
      1),
    B("muc.default_members_only", "false",
      "New rooms admit members only (muc#roomconfig_membersonly).", 1),
    B("muc.default_moderated", "false", "New rooms are moderated (muc#roomconfig_moderatedroom).",
      1),
    I("muc.default_max_users", "0", 0, 100000,
      "Occupants a new room admits (muc#roomconfig_maxusers); 0 = no limit.", 1),
    /* MUC_HISTORY_MAX: what a room keeps at all. */
    I("muc.default_history", "20", 0, 100,
      "History messages a new room sends to newcomers (muc#maxhistoryfetch).", 1),
    /* At most 1.875 MiB: with its history and subject, a join sequence leaves in one write
     * well inside the 4 MiB output bound (CONN_MAX_OUTQ). */
    I("muc.max_join_size", "1966080", 16384, 1966080,
      "Largest join sequence of a room, as the bytes of the occupants' presences a newcomer "
      "gets; past it the room is full (service-unavailable), but admins and owners may pass it "
      "by a sixteenth.",
      1),
    S("http.bind", "0.0.0.0", "Address the HTTP and HTTPS listeners bind to.", 0),
    I("http.port", "5280", -1, 65535,
      "HTTP port for WebSocket, BOSH, XEP-0156 and the web client; 0 = ephemeral, -1 = off. "
      "Counts as encrypted only from http.trusted_proxies.",
      0),
    S("http.chat_root", "",
      "Directory served at /chat/ (the web client), read once at start-up, at most 64 MiB; "
      "empty = none.",
      0),
    S("http.allowed_origins", "*",
      "Origins (scheme://host[:port], comma-separated) whose pages may use BOSH and WebSocket; "
      "* = any.",
      0),
    S("http.trusted_proxies", "127.0.0.1, ::1",
      "Addresses of reverse proxies that terminate TLS: plain HTTP from them counts as "
      "encrypted, and their X-Forwarded-For names the client.",
      0),
    I("https.port", "5443", -1, 65535,
      "HTTPS port for the same (wss://, https://), with the certificate of tls.cert; "
      "0 = ephemeral, -1 = off.",
      0),
    B("upload.enabled", "true",
      "HTTP File Upload (XEP-0363) at upload.domain; false = no service: not in disco#items, "
      "nothing served under /upload/. Stored files are kept for when it is back on.",
      0),
    S("upload.domain", "", "Upload service domain; empty = upload.<server.domain>.", 0),
    S("upload.url_base", "",
      "URL at which the HTTP listener's /upload/ is reached (https://host/upload behind a "
      "TLS proxy); empty = http://<server.domain>:<http.port>/upload (https.port without "
      "http.port).",
      0),
    I("upload.max_file_size", "10485760", 1, 1099511627776,
      "Largest file one slot may hold, bytes; a larger request gets not-acceptable with "
      "file-too-large.",
      0),
    I("upload.quota_per_user", "104857600", 0, 1099511627776,
      "Bytes one account may keep (stored files and open slots); past it resource-constraint; "
      "0 = no limit.",
      0),
    I("upload.expire_days", "30", 0, 36500,
      "Days an uploaded file is served before it is removed; 0 = until the account goes.", 0),
    I("upload.slot_ttl", "300", 1, 86400, "Seconds a slot's PUT may take to begin.", 0),
    S("upload.allowed_types", "",
      "Media types a slot may be asked for, separated by spaces or commas ('image/*' for a "
      "family); empty = any. A slot for another type gets <not-acceptable/>.",
      0),
    I("bosh.max_wait", "60", 1, 300,
      "Seconds a BOSH request may be held (a larger 'wait' is lowered to it).", 0),
    I("bosh.max_inactivity", "60", 2, 3600,
      "Seconds a BOSH session may go without a request before it ends (or waits for its "
      "resumption).",
      0),
    I("adhoc.session_timeout", "600", 1, 86400,
      "Seconds an ad-hoc command session (XEP-0050) waits for its form before it expires.", 0),
    S("admin.bind", "127.0.0.1", "Address the admin console and REST API bind to.", 0),
    I("admin.port", "9090", -1, 65535, "Admin console and REST port; 0 = ephemeral, -1 = off.", 0),
    I("admin.https_port", "9091", -1, 65535,
      "The same over HTTPS with the certificate of tls.cert; 0 = ephemeral, -1 = off.", 0),
    S("admin.host", "",
      "Host name the admin API answers besides localhost, 127.0.0.1 and [::1] (DNS "
      "rebinding); empty = none.",
      0),
    E("admin.metrics", "key", METRICS_MODES,
      "/metrics on the admin port: off, open (no authentication) or key (an API key or admin).", 0),
    I("admin.session_idle", "1800", 1, 86400,
      "Seconds a console login lasts without a request before it must log in again.", 0),
    I("admin.session_lifetime", "43200", 1, 604800,
      "Seconds a console login lasts at most, however busy (then it must log in again).", 0),
    I("admin.metrics_sample", "60", 1, 86400,
      "Seconds between the counts of stored offline messages and archived rows that /metrics "
      "shows (each a COUNT over its table, on the main thread).",
      0),
    E("storage.driver", "sqlite", DRIVERS,
      "Database driver: sqlite (a file) or pgsql (PostgreSQL, in builds with libpq).", 0),
    S("storage.dsn", "",
      "sqlite: the database file, empty = <data-dir>/hearth.db; pgsql: a libpq connection "
      "string (postgresql://user@host:port/db), required.",
      0),
    I("storage.pool_size", "1", 1, 64, /* STORAGE_POOL_MAX */
      "pgsql: connections to the database, each with its own queue; a worker's requests keep "
      "their order, other workers' may complete before them. sqlite: 1.",
      0),
    S("tls.cert", "",
      "Certificate chain (PEM); empty = <data-dir>/cert.pem, generated on first run.", 0),
    S("tls.key", "", "Private key (PEM); empty = <data-dir>/key.pem, generated on first run.", 0),
    I("auth.scram_iterations", "4096", 4096, 1000000,
      "PBKDF2 iterations for newly stored SCRAM secrets.", 1),
    I("auth.ip_fail_burst", "30", 0, 1000000,
      "Failed logins one address may make (any accounts) before further attempts from it are "
      "refused unchecked; 0 = no limit.",
      0),
    I("auth.ip_fail_per_min", "10", 1, 1000000,
      "Failed logins per minute an address regains once over auth.ip_fail_burst.", 0),
    I("auth.pair_fail_burst", "5", 0, 1000000,
      "Failed logins one address may make for one account before further attempts are refused "
      "unchecked; 0 = no limit.",
      0),
    I("auth.pair_fail_per_min", "1", 1, 1000000,
      "Failed logins per minute an address regains for one account.", 0),
    I("auth.account_fail_burst", "50", 0, 1000000,
      "Failed logins for one account from all addresses before every attempt on it is delayed "
      "(never refused); 0 = no limit.",
      0),
    I("auth.account_fail_per_min", "30", 1, 1000000,
      "Failed logins per minute an account regains once over auth.account_fail_burst.", 0),
    I("auth.account_delay_ms", "2000", 0, 30000,
      "Wait before checking a login to an account over auth.account_fail_burst, milliseconds.", 0),
};

#undef S
#undef I
#undef B
#undef E

#define N_KEYS (sizeof KEYS / sizeof KEYS[0])
#define MAX_KEY_LEN 64

typedef struct config_value {
    char *s; /* CONFIG_STRING: owned; CONFIG_ENUM: points into allowed[] */
    long i;  /* CONFIG_INT, CONFIG_BOOL, CONFIG_ENUM index */
    int fixed;
} config_value_t;

struct config {
    config_value_t v[N_KEYS];
};

static const char *const BOOL_TRUE[] = {"true", "yes", "on", "1", NULL};
static const char *const BOOL_FALSE[] = {"false", "no", "off", "0", NULL};

static void set_err(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_err(char **err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    free(*err);
    *err = s;
}

static int key_index(const char *key)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(KEYS[i].name, key) == 0)
            return (int)i;
    return -1;
}

const config_key_t *config_keys(size_t *n)
{
    if (n)
        *n = N_KEYS;
    return KEYS;
}

const config_key_t *config_key_find(const char *key)
{
    int i = key ? key_index(key) : -1;
    return i < 0 ? NULL : &KEYS[i];
}

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAX_KEY_LEN || lb > MAX_KEY_LEN)
        return SIZE_MAX;
    size_t row[MAX_KEY_LEN + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The closest known key within two edits, or one whose part after the dot matches. */
static const char *suggest_key(const char *key)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < N_KEYS; i++) {
        size_t d = edit_distance(key, KEYS[i].name);
        if (d < best_d) {
            best_d = d;
            best = KEYS[i].name;
        }
    }
    if (best)
        return best;
    for (size_t i = 0; i < N_KEYS; i++) {
        const char *dot = strchr(KEYS[i].name, '.');
        const char *kdot = strrchr(key, '.');
        if (strcmp(dot + 1, kdot ? kdot + 1 : key) == 0)
            return KEYS[i].name;
    }
    return NULL;
}

static void unknown_key_err(char **err, const char *where, const char *key)
{
    const char *hint = suggest_key(key);
    set_err(err, "%sunknown configuration key '%s'%s%s%s", where, key,
            hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
}

static int find_word(const char *const *list, const char *s)
{
    for (int i = 0; list[i]; i++)
        if (strcasecmp(list[i], s) == 0)
            return i;
    return -1;
}

/* Parse value for row k into *out (strings are duplicated). where prefixes the message. */
static int parse_value(const config_key_t *k, const char *value, const char *where,
                       config_value_t *out, char **err)
{
    switch (k->type) {
    case CONFIG_STRING:
        out->s = strdup(value);
        if (!out->s) {
            set_err(err, "out of memory");
            return HEARTH_ENOMEM;
        }
        return 0;
    case CONFIG_INT: {
        char *end = NULL;
        errno = 0;
        long n = strtol(value, &end, 10);
        if (*value == '\0' || isspace((unsigned char)*value) || *end != '\0' || errno == ERANGE ||
            n < k->min || n > k->max) {
            set_err(err, "%sinvalid value '%s' for %s: expected an integer from %ld to %ld", where,
                    value, k->name, k->min, k->max);
            return HEARTH_ECONFIG;
        }
        out->i = n;
        return 0;
    }
    case CONFIG_BOOL:
        if (find_word(BOOL_TRUE, value) >= 0) {
            out->i = 1;
            return 0;
        }
        if (find_word(BOOL_FALSE, value) >= 0) {
            out->i = 0;
            return 0;
        }
        set_err(err, "%sinvalid value '%s' for %s: expected true or false (or yes/no, on/off, 1/0)",
                where, value, k->name);
        return HEARTH_ECONFIG;
    case CONFIG_ENUM: {
        int i = find_word(k->allowed, value);
        if (i < 0) {
            hearth_buf_t b = HEARTH_BUF_INIT;
            for (int j = 0; k->allowed[j]; j++)
                if (hearth_buf_printf(&b, "%s%s", j ? ", " : "", k->allowed[j]) < 0)
                    break;
            set_err(err, "%sinvalid value '%s' for %s: expected one of %s", where, value, k->name,
                    b.data ? b.data : "?");
            hearth_buf_free(&b);
            return HEARTH_ECONFIG;
        }
        out->i = i;
        out->s = (char *)k->allowed[i];
        return 0;
    }
    }
    abort();
}

static void store(config_t *c, size_t idx, const config_value_t *nv, int fixed)
{
    config_value_t *v = &c->v[idx];
    if (KEYS[idx].type == CONFIG_STRING)
        free(v->s);
    v->s = nv->s;
    v->i = nv->i;
    v->fixed = fixed;
}

static int set_at(config_t *c, const char *key, const char *value, const char *where, int fixed,
                  char **err)
{
    int idx = key_index(key);
    if (idx < 0) {
        unknown_key_err(err, where, key);
        return HEARTH_ECONFIG;
    }
    config_value_t nv = {0};
    int rc = parse_value(&KEYS[idx], value, where, &nv, err);
    if (rc < 0)
        return rc;
    store(c, (size_t)idx, &nv, fixed);
    return 0;
}

config_t *config_new(void)
{
    config_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    for (size_t i = 0; i < N_KEYS; i++) {
        config_value_t nv = {0};
        char *err = NULL;
        if (parse_value(&KEYS[i], KEYS[i].def, "", &nv, &err) < 0) {
            /* A default outside its own bounds is a bug in the table, except for ENOMEM. */
            if (KEYS[i].type != CONFIG_STRING)
                abort();
            free(err);
            config_free(c);
            return NULL;
        }
        store(c, i, &nv, 0);
    }
    return c;
}

void config_free(config_t *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < N_KEYS; i++)
        if (KEYS[i].type == CONFIG_STRING)
            free(c->v[i].s);
    free(c);
}

int config_set(config_t *c, const char *key, const char *value, char **err)
{
    return set_at(c, key, value, "", 1, err);
}

int config_set_runtime(config_t *c, const char *key, const char *value, char **err)
{
    /* Whether it may change now; the value itself is checked as it is set. */
    int rc = config_check_runtime(c, key, NULL, err);
    if (rc < 0)
        return rc == HEARTH_ENOTFOUND ? HEARTH_ECONFIG : rc;
    return set_at(c, key, value, "", 0, err);
}

int config_check_runtime(const config_t *c, const char *key, const char *value, char **err)
{
    int idx = key_index(key);
    if (idx < 0) {
        unknown_key_err(err, "", key);
        return HEARTH_ENOTFOUND;
    }
    if (!KEYS[idx].runtime) {
        set_err(err, "%s cannot be changed while the server runs; set it in the config file", key);
        return HEARTH_EINVAL;
    }
    if (c->v[idx].fixed) {
        set_err(err, "%s is fixed for this run by the config file or --set", key);
        return HEARTH_EBUSY;
    }
    if (!value)
        return 0;
    config_value_t nv = {0};
    int rc = parse_value(&KEYS[idx], value, "", &nv, err);
    if (rc == 0 && KEYS[idx].type == CONFIG_STRING)
        free(nv.s);
    return rc;
}

int config_unset_runtime(config_t *c, const char *key, char **err)
{
    int rc = config_check_runtime(c, key, NULL, err);
    if (rc < 0)
        return rc == HEARTH_ENOTFOUND ? HEARTH_ECONFIG : rc;
    return set_at(c, key, config_key_find(key)->def, "", 0, err);
}

int config_value_string(const config_t *c, const char *key, char *buf, size_t size)
{
    int idx = key_index(key);
    if (idx < 0)
        return HEARTH_ENOTFOUND;
    const config_value_t *v = &c->v[idx];
    switch (KEYS[idx].type) {
    case CONFIG_INT:
        snprintf(buf, size, "%ld", v->i);
        break;
    case CONFIG_BOOL:
        snprintf(buf, size, "%s", v->i ? "true" : "false");
        break;
    default:
        snprintf(buf, size, "%s", v->s ? v->s : "");
        break;
    }
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

int config_set_arg(config_t *c, const char *key_eq_value, char **err)
{
    const char *eq = strchr(key_eq_value, '=');
    if (!eq || eq == key_eq_value) {
        set_err(err, "--set expects KEY=VALUE, got '%s'", key_eq_value);
        return HEARTH_ECONFIG;
    }
    char *copy = strdup(key_eq_value);
    if (!copy) {
        set_err(err, "out of memory");
        return HEARTH_ENOMEM;
    }
    copy[eq - key_eq_value] = '\0';
    char *key = trim(copy);
    char *value = trim(copy + (eq - key_eq_value) + 1);
    int rc = set_at(c, key, value, "--set: ", 1, err);
    free(copy);
    return rc;
}

/* INI loading. The reader counts lines so a handler error can name its line; it also stops the
 * parse after the first error and refuses lines longer than inih's buffer rather than letting
 * inih split them. */
typedef struct ini_ctx {
    config_t *c;
    FILE *f;
    const char *path;
    int line;
    int err_line; /* first error found by us, 0 = none */
    int rc;
    char **err;
} ini_ctx_t;

static char *read_line(char *str, int num, void *stream)
{
    ini_ctx_t *x = stream;
    if (x->err_line)
        return NULL;
    if (!fgets(str, num, x->f))
        return NULL;
    x->line++;
    size_t n = strlen(str);
    if (n == (size_t)num - 1 && str[n - 1] != '\n') {
        int ch = fgetc(x->f);
        if (ch == EOF)
            return str;
        ungetc(ch, x->f);
        x->err_line = x->line;
        x->rc = HEARTH_ECONFIG;
        set_err(x->err, "%s:%d: line longer than %d characters", x->path, x->line, num - 2);
        return NULL;
    }
    return str;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    ini_ctx_t *x = user;
    char where[PATH_MAX + 32];
    snprintf(where, sizeof where, "%s:%d: ", x->path, x->line);
    int rc;
    if (!section || !*section) {
        char key[MAX_KEY_LEN * 2];
        const char *hint = NULL;
        for (size_t i = 0; i < N_KEYS && !hint; i++)
            if (strcmp(strchr(KEYS[i].name, '.') + 1, name) == 0)
                hint = KEYS[i].name;
        if (hint)
            snprintf(key, sizeof key, "[%.*s]", (int)(strchr(hint, '.') - hint), hint);
        set_err(x->err, "%skey '%s' is outside a section; put it under a [section] header%s%s",
                where, name, hint ? ", e.g. " : "", hint ? key : "");
        rc = HEARTH_ECONFIG;
    } else {
        char *key = NULL;
        if (asprintf(&key, "%s.%s", section, name) < 0) {
            set_err(x->err, "out of memory");
            rc = HEARTH_ENOMEM;
        } else {
            /* Allow value = "..." for strings that would otherwise be trimmed or empty. */
            size_t n = strlen(value);
            char *v = strdup(value);
            if (!v) {
                set_err(x->err, "out of memory");
                rc = HEARTH_ENOMEM;
            } else {
                if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
                    v[n - 1] = '\0';
                    memmove(v, v + 1, n - 1);
                }
                rc = set_at(x->c, key, v, where, 1, x->err);
                free(v);
            }
            free(key);
        }
    }
    if (rc < 0) {
        x->err_line = x->line;
        x->rc = rc;
        return 0;
    }
    return 1;
}

int config_load_file(config_t *c, const char *path, char **err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(err, "cannot open config file %s: %s", path, strerror(errno));
        return HEARTH_EIO;
    }
    ini_ctx_t x = {.c = c, .f = f, .path = path, .err = err};
    int r = ini_parse_stream(read_line, &x, on_key, &x);
    int read_error = ferror(f);
    fclose(f);
    if (x.err_line && (r <= 0 || r >= x.err_line))
        return x.rc;
    if (r < 0) {
        set_err(err, "%s: out of memory while parsing", path);
        return HEARTH_ENOMEM;
    }
    if (r > 0) {
        set_err(err, "%s:%d: syntax error (expected [section] or key = value)", path, r);
        return HEARTH_ECONFIG;
    }
    if (read_error) {
        set_err(err, "cannot read config file %s", path);
        return HEARTH_EIO;
    }
    return 0;
}

int config_from_args(config_t *c, const char *config_path, const char *data_dir, char *const *sets,
                     size_t n_sets, char **err)
{
    int rc = 0;
    char *def_path = NULL;
    if (!config_path) {
        if (asprintf(&def_path, "%s/hearthd.conf", data_dir ? data_dir : "./data") < 0) {
            set_err(err, "out of memory");
            return HEARTH_ENOMEM;
        }
        if (access(def_path, F_OK) == 0)
            config_path = def_path;
    }
    if (config_path)
        rc = config_load_file(c, config_path, err);
    for (size_t i = 0; rc == 0 && i < n_sets; i++)
        rc = config_set_arg(c, sets[i], err);
    free(def_path);
    return rc;
}

static const config_value_t *value_of(const config_t *c, const char *key, int want_a, int want_b)
{
    int idx = key_index(key);
    if (idx < 0 || ((int)KEYS[idx].type != want_a && (int)KEYS[idx].type != want_b)) {
        fprintf(stderr, "config: %s key '%s'\n", idx < 0 ? "unknown" : "wrong type for", key);
        abort();
    }
    return &c->v[idx];
}

const char *config_str(const config_t *c, const char *key)
{
    return value_of(c, key, CONFIG_STRING, CONFIG_ENUM)->s;
}

long config_int(const config_t *c, const char *key)
{
    return value_of(c, key, CONFIG_INT, CONFIG_INT)->i;
}

int config_bool(const config_t *c, const char *key)
{
    return (int)value_of(c, key, CONFIG_BOOL, CONFIG_BOOL)->i;
}

int config_is_fixed(const config_t *c, const char *key)
{
    int idx = key_index(key);
    if (idx < 0) {
        fprintf(stderr, "config: unknown key '%s'\n", key);
        abort();
    }
    return c->v[idx].fixed;
}

/* "integer, 0..256", "one of: a, b", "true/false", "string" */
static int describe_allowed(hearth_buf_t *b, const config_key_t *k, const char *sep)
{
    switch (k->type) {
    case CONFIG_STRING:
        return hearth_buf_append_str(b, "string");
    case CONFIG_INT:
        return hearth_buf_printf(b, "integer, %ld..%ld", k->min, k->max);
    case CONFIG_BOOL:
        return hearth_buf_append_str(b, "true/false");
    case CONFIG_ENUM:
        for (int j = 0; k->allowed[j]; j++)
            if (hearth_buf_printf(b, "%s%s", j ? sep : "", k->allowed[j]) < 0)
                return HEARTH_ENOMEM;
        return 0;
    }
    return 0;
}

static int render_default(hearth_buf_t *b)
{
    int rc = hearth_buf_append_str(
        b, "# Hearth configuration (hearthd.conf).\n"
           "#\n"
           "# Every key is listed with its help, allowed values and default. Uncomment a line\n"
           "# to change it. A value set in this file or with --set KEY=VALUE is fixed for the\n"
           "# run: keys marked \"runtime\" can otherwise be changed from the admin console, and\n"
           "# the console shows them as fixed. Unknown keys are an error.\n");
    const char *section = NULL;
    size_t section_len = 0;
    for (size_t i = 0; rc == 0 && i < N_KEYS; i++) {
        const config_key_t *k = &KEYS[i];
        const char *dot = strchr(k->name, '.');
        size_t slen = (size_t)(dot - k->name);
        if (!section || slen != section_len || strncmp(section, k->name, slen) != 0) {
            section = k->name;
            section_len = slen;
            rc = hearth_buf_printf(b, "\n[%.*s]\n", (int)slen, k->name);
        }
        if (rc == 0)
            rc = hearth_buf_printf(b, "\n# %s\n# (", k->help);
        if (rc == 0)
            rc = describe_allowed(b, k, " | ");
        if (rc == 0)
            rc = hearth_buf_printf(b, "%s)\n%s%s =%s%s\n", k->runtime ? "; runtime" : "",
                                   strcmp(k->name, "server.domain") == 0 ? "" : "# ", dot + 1,
                                   *k->def ? " " : "", k->def);
    }
    return rc;
}

int config_write_default(const char *path, char **err)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    char *tmp = NULL;
    int fd = -1, rc = render_default(&b);
    if (rc < 0) {
        set_err(err, "out of memory");
        goto out;
    }
    if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
        tmp = NULL;
        set_err(err, "out of memory");
        rc = HEARTH_ENOMEM;
        goto out;
    }
    fd = mkstemp(tmp);
    if (fd < 0) {
        set_err(err, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        tmp = NULL;
        rc = HEARTH_EIO;
        goto out;
    }
    size_t off = 0;
    while (off < b.len) {
        ssize_t w = write(fd, b.data + off, b.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            set_err(err, "cannot write %s: %s", tmp, strerror(errno));
            rc = HEARTH_EIO;
            goto out;
        }
        off += (size_t)w;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        fd = -1;
        set_err(err, "cannot write %s: %s", tmp, strerror(errno));
        rc = HEARTH_EIO;
        goto out;
    }
    fd = -1;
    /* link() fails on an existing target, so an operator's file is never replaced. */
    if (link(tmp, path) < 0) {
        int e = errno;
        rc = e == EEXIST ? HEARTH_EEXISTS : HEARTH_EIO;
        set_err(err, "cannot create %s: %s", path, strerror(e));
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    hearth_buf_free(&b);
    return rc;
}

int config_print_default(FILE *out)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = render_default(&b);
    if (rc == 0 && fwrite(b.data, 1, b.len, out) != b.len)
        rc = HEARTH_EIO;
    hearth_buf_free(&b);
    return rc < 0 ? rc : ferror(out) ? HEARTH_EIO : 0;
}

/* Markdown table cells: '|' would end the cell, '<' would start HTML. */
static void md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|')
            fputs("\\|", out);
        else if (*s == '<')
            fputs("&lt;", out);
        else if (*s == '>')
            fputs("&gt;", out);
        else
            fputc(*s, out);
    }
}

int config_write_markdown(FILE *out)
{
    fputs("# Configuration reference\n\n"
          "Generated from the config table by `hearthd --config-doc`; do not edit by hand.\n\n"
          "Keys live in an INI file (`[c2s]` then `port = 5222` sets `c2s.port`), default\n"
          "`<data-dir>/hearthd.conf`, or are given as `--set c2s.port=5222`. A value given either\n"
          "way is fixed for the run; keys marked *runtime* can otherwise be changed while the\n"
          "server runs (admin console, REST API). Booleans accept `true`/`false`, `yes`/`no`,\n"
          "`on`/`off`, `1`/`0`; enum values are case-insensitive. In the file a value may be\n"
          "put in double quotes to keep leading or trailing spaces. Unknown keys are an error.\n\n"
          "| Key | Type | Default | Allowed | Runtime | Description |\n"
          "|---|---|---|---|---|---|\n",
          out);
    static const char *const TYPE_NAMES[] = {"string", "integer", "boolean", "enum"};
    for (size_t i = 0; i < N_KEYS; i++) {
        const config_key_t *k = &KEYS[i];
        hearth_buf_t b = HEARTH_BUF_INIT;
        int rc = k->type == CONFIG_STRING ? hearth_buf_append_str(&b, "text")
                                          : describe_allowed(&b, k, ", ");
        if (rc < 0) {
            hearth_buf_free(&b);
            return HEARTH_ENOMEM;
        }
        fprintf(out, "| `%s` | %s | %s%s%s | ", k->name, TYPE_NAMES[k->type], *k->def ? "`" : "",
                *k->def ? k->def : "(empty)", *k->def ? "`" : "");
        if (k->type == CONFIG_INT)
            fprintf(out, "%ld .. %ld", k->min, k->max);
        else if (b.data)
            md_cell(out, b.data);
        fprintf(out, " | %s | ", k->runtime ? "yes" : "no");
        md_cell(out, k->help);
        fputs(" |\n", out);
        hearth_buf_free(&b);
    }
    return ferror(out) ? HEARTH_EIO : 0;
}
