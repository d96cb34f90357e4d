/* XEP-0227 files for hearthctl: export every account of a storage (credentials as SCRAM keys,
 * roster, pending subscription requests, vCard, private XML, offline messages), and import such
 * files (Hearth's, Prosody's, ejabberd's) with the project's XML parser, checking all of them
 * before the first write. Only through the storage interface: either driver. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "hearth/buf.h"
#include "hearth/datetime.h"
#include "hearth/jid.h"
#include "hearth/ns.h"
#include "hearth/sasl.h"
#include "hearth/xml.h"
#include "pie.h"

#define NS_PIE "urn:xmpp:pie:0"
#define NS_PIE_SCRAM "urn:xmpp:pie:0#scram"
#define NS_XINCLUDE "http://www.w3.org/2001/XInclude"
#define READ_CHUNK 65536
/* Nesting below <server-data>: host, user, vCard's deepest fields or a message's payloads sit
 * well within it. */
#define PIE_DEPTH_MAX 64
/* <xi:include> chains: ejabberd's index includes host files that include nothing; a file read
 * already is not read again, so only a long chain of distinct files reaches it. */
#define PIE_INCLUDE_DEPTH_MAX 8

static int errf(char **errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets *errmsg (the first one wins) and returns 1. */
static int errf(char **errmsg, const char *fmt, ...)
{
    if (*errmsg)
        return 1;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(errmsg, fmt, ap) < 0)
        *errmsg = NULL;
    va_end(ap);
    return 1;
}

/* Grows *v (elements of size sz, n used) so that one more fits; 0 or HEARTH_ENOMEM. */
static int grow(void **v, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 8;
    void *p = reallocarray(*v, nc, sz);
    if (!p)
        return HEARTH_ENOMEM;
    *v = p;
    *cap = nc;
    return 0;
}

/* ---- fragments stored as serialised XML (jabber:client in scope, as the modules write them) ----
 */

typedef struct fragment {
    hearth_arena_t *arena;
    hearth_xml_node_t *node; /* the copy, in arena */
} fragment_t;

static void fragment_stanza(void *ud, hearth_xml_node_t *n, hearth_arena_t *arena)
{
    (void)arena;
    fragment_t *f = ud;
    if (!f->node)
        f->node = hearth_xml_copy(f->arena, n);
}

/* The element xml holds, parsed into arena; NULL when it is not one element. */
static hearth_xml_node_t *fragment_parse(hearth_arena_t *arena, const char *xml, size_t len)
{
    static const char head[] = "<w xmlns='" HEARTH_NS_CLIENT "'>";
    fragment_t f = {arena, NULL};
    hearth_xml_stream_cbs_t cbs = {.stanza = fragment_stanza};
    hearth_xml_limits_t lim = HEARTH_XML_LIMITS_DEFAULT;
    lim.max_stanza_bytes = len + 1024;
    lim.max_depth = PIE_DEPTH_MAX;
    hearth_xml_stream_t *x = hearth_xml_stream_new(&cbs, &f, &lim);
    if (!x)
        return NULL;
    (void)hearth_xml_stream_feed(x, head, sizeof(head) - 1);
    (void)hearth_xml_stream_feed(x, xml, len);
    hearth_xml_stream_free(x);
    return f.node;
}

/* ---- export ---- */

static int add_text_child(hearth_arena_t *a, hearth_xml_node_t *parent, const char *name,
                          const char *text)
{
    hearth_xml_node_t *c = hearth_xml_add_child(a, parent, name, NULL);
    return c && hearth_xml_add_text(a, c, text, strlen(text)) ? 0 : HEARTH_ENOMEM;
}

static int add_scram(hearth_arena_t *a, hearth_xml_node_t *user, const char *mech,
                     const hearth_scram_secret_t *s)
{
    if (s->iterations == 0)
        return 0; /* no credential of that family */
    char iters[16];
    snprintf(iters, sizeof(iters), "%u", s->iterations);
    hearth_xml_node_t *c = hearth_xml_add_child(a, user, "scram-credentials", NS_PIE_SCRAM);
    if (!c || hearth_xml_set_attr(a, c, "mechanism", mech))
        return HEARTH_ENOMEM;
    int rc = add_text_child(a, c, "iter-count", iters);
    rc = rc ?: add_text_child(a, c, "salt", s->salt);
    rc = rc ?: add_text_child(a, c, "server-key", s->server_key);
    rc = rc ?: add_text_child(a, c, "stored-key", s->stored_key);
    return rc;
}

static const char *const SUBS[] = {"none", "to", "from", "both"};

static int add_roster(hearth_arena_t *a, hearth_xml_node_t *user, const storage_user_t *u)
{
    if (u->nitems == 0)
        return 0;
    hearth_xml_node_t *q = hearth_xml_add_child(a, user, "query", HEARTH_NS_ROSTER);
    char ver[24];
    snprintf(ver, sizeof(ver), "%lld", (long long)u->roster_ver);
    if (!q || hearth_xml_set_attr(a, q, "version", ver))
        return HEARTH_ENOMEM;
    for (size_t i = 0; i < u->nitems; i++) {
        const storage_roster_item_t *it = &u->items[i];
        hearth_xml_node_t *n = hearth_xml_add_child(a, q, "item", NULL);
        int sub = it->subscription >= 0 && it->subscription <= 3 ? it->subscription : 0;
        if (!n || hearth_xml_set_attr(a, n, "jid", it->jid) ||
            hearth_xml_set_attr(a, n, "subscription", SUBS[sub]) ||
            (it->name && hearth_xml_set_attr(a, n, "name", it->name)) ||
            (it->ask && hearth_xml_set_attr(a, n, "ask", "subscribe")) ||
            (it->approved && hearth_xml_set_attr(a, n, "approved", "true")))
            return HEARTH_ENOMEM;
        for (size_t g = 0; g < it->ngroups; g++)
            if (add_text_child(a, n, "group", it->groups[g]))
                return HEARTH_ENOMEM;
    }
    return 0;
}

/* Appends the stored element xml to parent; a stored value that does not parse is reported and
 * left out (the export goes on: the rest of the account is worth having). */
static int add_stored(hearth_arena_t *a, hearth_xml_node_t *parent, const char *xml,
                      const char *what, const char *user)
{
    hearth_xml_node_t *n = fragment_parse(a, xml, strlen(xml));
    if (!n) {
        fprintf(stderr, "hearthctl: export: %s of %s does not parse as XML; left out\n", what,
                user);
        return 0;
    }
    hearth_xml_append(parent, n);
    return 0;
}

static int export_user(storage_t *st, const storage_account_t *acct, FILE *out, char **errmsg)
{
    const char *name = acct->username;
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_buf_t b = HEARTH_BUF_INIT;
    storage_user_t u = {0};
    storage_doc_t *docs = NULL;
    size_t ndocs = 0, nmsgs = 0;
    storage_offline_msg_t *msgs = NULL;
    char *vcard = NULL;
    int rc = a ? 0 : HEARTH_ENOMEM;
    hearth_xml_node_t *user = rc ? NULL : hearth_xml_new(a, "user", NS_PIE);
    if (!user || hearth_xml_set_attr(a, user, "name", name))
        rc = HEARTH_ENOMEM;
    rc = rc ?: add_scram(a, user, "SCRAM-SHA-1", &acct->sha1);
    rc = rc ?: add_scram(a, user, "SCRAM-SHA-256", &acct->sha256);
    rc = rc ?: storage_sync_user_load(st, name, &u);
    rc = rc ?: add_roster(a, user, &u);
    for (size_t i = 0; rc == 0 && i < u.nrequests; i++)
        rc = add_stored(a, user, u.requests[i].stanza, "a subscription request", name);
    rc = rc ?: storage_sync_vcard_get(st, name, &vcard);
    if (rc == 0 && vcard)
        rc = add_stored(a, user, vcard, "the vCard", name);
    rc = rc ?: storage_sync_private_list(st, name, &docs, &ndocs);
    if (rc == 0 && ndocs) {
        hearth_xml_node_t *q = hearth_xml_add_child(a, user, "query", HEARTH_NS_PRIVATE);
        rc = q ? 0 : HEARTH_ENOMEM;
        for (size_t i = 0; rc == 0 && i < ndocs; i++)
            rc = add_stored(a, q, docs[i].xml, "private XML", name);
    }
    rc = rc ?: storage_sync_offline_fetch(st, name, &msgs, &nmsgs);
    if (rc == 0 && nmsgs) {
        hearth_xml_node_t *q = hearth_xml_add_child(a, user, "offline-messages", NS_PIE);
        rc = q ? 0 : HEARTH_ENOMEM;
        for (size_t i = 0; rc == 0 && i < nmsgs; i++)
            rc = add_stored(a, q, msgs[i].stanza, "an offline message", name);
    }
    if (rc == 0 && (hearth_xml_serialize(user, NS_PIE, &b) || hearth_buf_append_str(&b, "\n")))
        rc = HEARTH_ENOMEM;
    if (rc == 0 && fwrite(b.data, 1, b.len, out) != b.len)
        rc = HEARTH_EIO;
    if (rc)
        errf(errmsg, "export of %s failed: %s", name, hearth_strerror(rc));
    hearth_buf_free(&b);
    storage_user_clear(&u);
    storage_sync_docs_free(docs, ndocs);
    storage_sync_offline_free(msgs, nmsgs);
    free(vcard);
    hearth_arena_free(a);
    return rc ? 1 : 0;
}

int pie__export(storage_t *st, const char *domain, FILE *out, char **errmsg)
{
    storage_account_t *accts = NULL;
    size_t n = 0;
    *errmsg = NULL;
    int rc = storage_sync_account_list(st, &accts, &n);
    if (rc)
        return errf(errmsg, "cannot list the accounts: %s", hearth_strerror(rc));
    hearth_buf_t b = HEARTH_BUF_INIT;
    int st_rc = hearth_buf_append_str(&b, "<?xml version='1.0' encoding='UTF-8'?>\n"
                                          "<server-data xmlns='" NS_PIE "'>\n<host jid='") ||
                hearth_buf_append_escaped(&b, domain, strlen(domain)) ||
                hearth_buf_append_str(&b, "'>\n");
    int failed = st_rc || fwrite(b.data, 1, b.len, out) != b.len;
    hearth_buf_free(&b);
    if (failed)
        errf(errmsg, "cannot write the export: %s", strerror(errno));
    for (size_t i = 0; !failed && i < n; i++)
        failed = export_user(st, &accts[i], out, errmsg);
    if (!failed && fputs("</host>\n</server-data>\n", out) < 0)
        failed = errf(errmsg, "cannot write the export: %s", strerror(errno));
    for (size_t i = 0; i < n; i++)
        storage_account_clear(&accts[i]);
    free(accts);
    return failed;
}

/* ---- import: the checked model of a file ---- */

typedef struct pie_msg {
    char *stanza;
    size_t len;
    int64_t stamp_ms;
} pie_msg_t;

typedef struct pie_user {
    char *name; /* prepared localpart */
    hearth_scram_secret_t sha1, sha256;
    storage_roster_item_t *items;
    size_t nitems, items_cap; /* numbered 1..n as roster versions when written */
    storage_sub_request_t *reqs;
    size_t nreqs, reqs_cap;
    char *vcard;
    storage_doc_t *priv;
    size_t npriv, priv_cap;
    pie_msg_t *msgs;
    size_t nmsgs, msgs_cap;
    int skip; /* exists already, --skip-existing */
} pie_user_t;

static void pie_user_clear(pie_user_t *u)
{
    free(u->name);
    for (size_t i = 0; i < u->nitems; i++)
        storage_roster_item_clear(&u->items[i]);
    free(u->items);
    for (size_t i = 0; i < u->nreqs; i++) {
        free(u->reqs[i].jid);
        free(u->reqs[i].stanza);
    }
    free(u->reqs);
    free(u->vcard);
    storage_sync_docs_free(u->priv, u->npriv);
    for (size_t i = 0; i < u->nmsgs; i++)
        free(u->msgs[i].stanza);
    free(u->msgs);
    explicit_bzero(u, sizeof(*u));
}

/* The <xi:include> targets of one file, resolved against its directory (malloc'd). */
typedef struct includes {
    char **paths;
    size_t n, cap;
} includes_t;

/* A file read already (an index and the host file it includes, both given). */
typedef struct file_id {
    dev_t dev;
    ino_t ino;
} file_id_t;

typedef struct import {
    const pie_import_opts_t *o;
    const char *path;
    hearth_xml_stream_t *x;
    char *err;
    int opened, closed, hosts;
    int root_host;        /* the file's root is a <host> (ejabberd writes one file per host) */
    char host_where[300]; /* then: that <host>, for messages */
    includes_t *includes; /* of the file being read */
    file_id_t *seen;
    size_t nseen, seen_cap;
    pie_user_t *users;
    size_t nusers, users_cap;
    hearth_arena_t *scratch; /* serialising, per element */
} import_t;

/* Stops the parse with an error about path (the element's place in the file). */
static void bad(import_t *im, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void bad(import_t *im, const char *where, const char *fmt, ...)
{
    if (im->err)
        return;
    char *what = NULL;
    va_list ap;
    va_start(ap, fmt);
    if (vasprintf(&what, fmt, ap) < 0)
        what = NULL;
    va_end(ap);
    errf(&im->err, "%s: %s: %s", im->path, where, what ? what : "out of memory");
    free(what);
    hearth_xml_stream_stop(im->x);
}

/* The element's text without surrounding whitespace, in a; NULL on ENOMEM. */
static char *trimmed_text(hearth_arena_t *a, const hearth_xml_node_t *n)
{
    char *t = hearth_xml_text(a, n);
    if (!t)
        return NULL;
    while (*t == ' ' || *t == '\t' || *t == '\n' || *t == '\r')
        t++;
    size_t l = strlen(t);
    while (l > 0 && strchr(" \t\n\r", t[l - 1]))
        t[--l] = '\0';
    return t;
}

/* n serialised with jabber:client in scope (as the modules store it): malloc'd, or NULL. */
static char *serialize_client(const hearth_xml_node_t *n, size_t *len)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(n, HEARTH_NS_CLIENT, &b)) {
        hearth_buf_free(&b);
        return NULL;
    }
    size_t l = 0;
    char *s = hearth_buf_steal(&b, &l);
    if (len)
        *len = l;
    return s;
}

/* A bare JID, prepared, malloc'd; NULL after reporting why. */
static char *bare_jid(import_t *im, const char *where, const char *attr, const char *s)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *reason = NULL;
    if (!s || !*s) {
        bad(im, where, "no %s attribute", attr);
        return NULL;
    }
    if (strlen(s) > STORAGE_JID_MAX || hearth_jid_parse(s, strlen(s), &j, &reason) < 0) {
        bad(im, where, "%s='%.80s' is not a JID: %s", attr, s,
            reason ? reason : "too long or malformed");
        return NULL;
    }
    char *out = j.resource ? NULL : strdup(j.bare);
    if (j.resource)
        bad(im, where, "%s='%.80s' has a resource (a bare JID is expected)", attr, s);
    hearth_jid_clear(&j);
    return out;
}

/* Base64 whose decoded length is within [lo, hi] and whose text fits a secret's field. */
static int b64_field(const char *s, size_t lo, size_t hi, char *field, size_t cap)
{
    char *raw = NULL;
    size_t n = 0;
    size_t l = strlen(s);
    if (l == 0 || l >= cap || hearth_base64_decode(s, l, &raw, &n))
        return -1;
    free(raw);
    if (n < lo || n > hi)
        return -1;
    memcpy(field, s, l + 1);
    return 0;
}

/* The text s decodes to from base64, when that is itself base64 of lo..hi bytes (a value encoded
 * twice), in a; else NULL. */
static char *inner_b64(hearth_arena_t *a, const char *s, size_t lo, size_t hi)
{
    char *once = NULL, *raw = NULL, *out = NULL;
    size_t n = 0, m = 0;
    if (hearth_base64_decode(s, strlen(s), &once, &n) == 0 && n > 0 && strlen(once) == n &&
        hearth_base64_decode(once, n, &raw, &m) == 0 && m >= lo && m <= hi)
        out = hearth_arena_strdup(a, once);
    free(once);
    free(raw);
    return out;
}

/* Checks one family's SCRAM values (iteration count, base64 salt and keys) and sets *s; reports
 * at w what is wrong. */
static void scram_values(import_t *im, const char *w, hearth_scram_secret_t *s, size_t keylen,
                         const char *iters, const char *salt, const char *server_key,
                         const char *stored_key, hearth_arena_t *a)
{
    if (s->iterations) {
        bad(im, w, "given twice");
        return;
    }
    char *end = NULL;
    errno = 0;
    unsigned long it = strtoul(iters, &end, 10);
    if (errno || end == iters || *end || it < 1 || it > INT32_MAX || iters[0] == '-') {
        bad(im, w, "<iter-count> '%.40s' is not a count of 1 to %d", iters, INT32_MAX);
        return;
    }
    /* ejabberd (23.01 and before) holds these values in base64 and encodes them once more when
     * it exports: when both keys are base64 of base64 of the hash's size, all three were
     * written that way. A key encoded once cannot look so (its text would be longer). */
    const char *server2 = inner_b64(a, server_key, keylen, keylen);
    const char *stored2 = inner_b64(a, stored_key, keylen, keylen);
    if (server2 && stored2) {
        const char *salt2 = inner_b64(a, salt, 1, 45);
        if (!salt2) {
            bad(im, w, "<salt> is not base64 of base64 of 1 to 45 bytes, as the keys are");
            return;
        }
        salt = salt2;
        server_key = server2;
        stored_key = stored2;
    }
    hearth_scram_secret_t v = {.iterations = (unsigned)it};
    if (b64_field(salt, 1, 45, v.salt, sizeof(v.salt)))
        bad(im, w, "<salt> is not base64 of 1 to 45 bytes");
    else if (b64_field(server_key, keylen, keylen, v.server_key, sizeof(v.server_key)))
        bad(im, w, "<server-key> is not base64 of %zu bytes", keylen);
    else if (b64_field(stored_key, keylen, keylen, v.stored_key, sizeof(v.stored_key)))
        bad(im, w, "<stored-key> is not base64 of %zu bytes", keylen);
    else
        *s = v;
}

/* The secret of mech (SCRAM-SHA-1 or -256) in u, its key length in *keylen; NULL for another
 * mechanism (reported as left out). */
static hearth_scram_secret_t *scram_slot(import_t *im, const char *where, pie_user_t *u,
                                         const char *mech, size_t *keylen)
{
    if (mech && !strcmp(mech, "SCRAM-SHA-1")) {
        *keylen = 20;
        return &u->sha1;
    }
    if (mech && !strcmp(mech, "SCRAM-SHA-256")) {
        *keylen = 32;
        return &u->sha256;
    }
    if (im->o->report)
        fprintf(im->o->report,
                "%s: %s: %s credentials left out (hearthd keeps SCRAM-SHA-1 and SCRAM-SHA-256)\n",
                im->path, where, mech ? mech : "unnamed");
    return NULL;
}

static void read_scram(import_t *im, const char *where, pie_user_t *u, hearth_xml_node_t *c,
                       hearth_arena_t *a)
{
    const char *mech = hearth_xml_attr(c, "mechanism");
    size_t keylen;
    char w[1400];
    snprintf(w, sizeof(w), "%s/<scram-credentials mechanism='%.40s'>", where, mech ? mech : "");
    hearth_scram_secret_t *s = scram_slot(im, w, u, mech, &keylen);
    if (!s)
        return;
    const char *fields[] = {"iter-count", "salt", "server-key", "stored-key"};
    char *text[4];
    for (int i = 0; i < 4; i++) {
        hearth_xml_node_t *f = hearth_xml_child(c, fields[i], NULL);
        text[i] = f ? trimmed_text(a, f) : NULL;
        if (!text[i]) {
            bad(im, w, "no <%s>", fields[i]);
            return;
        }
    }
    scram_values(im, w, s, keylen, text[0], text[1], text[2], text[3], a);
}

/* Older ejabberd exporters put SCRAM values in the password attribute:
 * "scram:[sha256,]StoredKey,ServerKey,Salt,IterationCount" (ejabberd's own import reads it so).
 * 1 when password has that shape (read into u, or reported), 0 for a password in clear. */
static int read_scram_password(import_t *im, const char *where, pie_user_t *u, const char *password,
                               hearth_arena_t *a)
{
    if (strncmp(password, "scram:", 6) != 0)
        return 0;
    char *f[5] = {0};
    size_t n = 0;
    char *copy = hearth_arena_strdup(a, password + 6);
    for (char *p = copy; p; n++) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma++ = '\0';
        if (n < 5)
            f[n] = p;
        p = comma;
    }
    const char *mech = n == 4                              ? "SCRAM-SHA-1"
                       : n == 5 && !strcmp(f[0], "sha256") ? "SCRAM-SHA-256"
                       : n == 5 && !strcmp(f[0], "sha512") ? "SCRAM-SHA-512"
                                                           : NULL;
    char w[1400];
    snprintf(w, sizeof(w), "%s/password='scram:...'", where);
    if (!copy || !mech) {
        bad(im, w,
            copy ? "not scram:[sha256,]StoredKey,ServerKey,Salt,IterationCount" : "out of memory");
        return 1;
    }
    size_t keylen;
    hearth_scram_secret_t *s = scram_slot(im, w, u, mech, &keylen);
    char **v = n == 5 ? f + 1 : f;
    if (s)
        scram_values(im, w, s, keylen, v[3], v[2], v[1], v[0], a);
    return 1;
}

static void read_roster(import_t *im, const char *where, pie_user_t *u, hearth_xml_node_t *q,
                        hearth_arena_t *a)
{
    char w[1400];
    size_t k = 0;
    for (hearth_xml_node_t *n = hearth_xml_first_element(q); n && !im->err;
         n = hearth_xml_next_element(n)) {
        k++;
        snprintf(w, sizeof(w), "%s/<query xmlns='jabber:iq:roster'>/<item> number %zu", where, k);
        if (strcmp(n->name, "item") != 0) {
            bad(im, w, "<%s> where an <item> is expected", n->name);
            return;
        }
        storage_roster_item_t it = {0};
        it.jid = bare_jid(im, w, "jid", hearth_xml_attr(n, "jid"));
        if (!it.jid)
            return;
        snprintf(w, sizeof(w), "%s/<query xmlns='jabber:iq:roster'>/<item jid='%.200s'>", where,
                 it.jid);
        for (size_t i = 0; i < u->nitems; i++)
            if (!strcmp(u->items[i].jid, it.jid)) {
                bad(im, w, "the contact is listed twice");
                free(it.jid);
                return;
            }
        const char *sub = hearth_xml_attr(n, "subscription");
        const char *ask = hearth_xml_attr(n, "ask");
        const char *appr = hearth_xml_attr(n, "approved");
        const char *name = hearth_xml_attr(n, "name");
        it.subscription = -1;
        for (int s = 0; s < 4; s++)
            if (!sub || !strcmp(sub, SUBS[s]))
                it.subscription = sub ? s : 0;
        if (it.subscription < 0)
            bad(im, w, "subscription='%.40s' is none of none, to, from, both", sub);
        else if (ask && strcmp(ask, "subscribe") != 0)
            bad(im, w, "ask='%.40s' (only 'subscribe' is defined)", ask);
        else if (name && strlen(name) > STORAGE_GROUP_MAX)
            bad(im, w, "the name is longer than %d bytes", STORAGE_GROUP_MAX);
        it.ask = ask != NULL;
        it.approved = appr && (!strcmp(appr, "true") || !strcmp(appr, "1"));
        if (!im->err && name && *name && !(it.name = strdup(name)))
            bad(im, w, "out of memory");
        for (hearth_xml_node_t *g = hearth_xml_first_element(n); g && !im->err;
             g = hearth_xml_next_element(g)) {
            if (strcmp(g->name, "group") != 0)
                continue;
            char *t = hearth_xml_text(a, g);
            if (!t || !*t) {
                bad(im, w, "an empty <group>");
            } else if (strlen(t) > STORAGE_GROUP_MAX) {
                bad(im, w, "a <group> longer than %d bytes", STORAGE_GROUP_MAX);
            } else if (it.ngroups == STORAGE_GROUPS_MAX) {
                bad(im, w, "more than %d groups", STORAGE_GROUPS_MAX);
            } else {
                char **gs = reallocarray(it.groups, it.ngroups + 1, sizeof(*gs));
                if (gs)
                    it.groups = gs;
                if (!gs || !(gs[it.ngroups] = strdup(t)))
                    bad(im, w, "out of memory");
                else
                    it.ngroups++;
            }
        }
        if (im->err || grow((void **)&u->items, &u->items_cap, u->nitems, sizeof(it))) {
            bad(im, w, "out of memory");
            storage_roster_item_clear(&it);
            return;
        }
        u->items[u->nitems++] = it;
    }
}

static void as_client(hearth_xml_node_t *n);

/* A subscription request waiting for u's answer, kept in the shape the presence module stores
 * (server/modules/presence.c): the bare from, type, <status> and <nick>. Anything else the old
 * server kept goes: hearthd adds the to when it delivers the request. */
static void read_request(import_t *im, const char *where, pie_user_t *u, hearth_xml_node_t *p,
                         hearth_arena_t *a)
{
    char w[1400];
    snprintf(w, sizeof(w), "%s/<presence type='subscribe'>", where);
    char *jid = bare_jid(im, w, "from", hearth_xml_attr(p, "from"));
    if (!jid)
        return;
    hearth_xml_node_t *status = hearth_xml_child(p, "status", HEARTH_NS_CLIENT);
    hearth_xml_node_t *nick = hearth_xml_child(p, "nick", HEARTH_NS_NICK);
    hearth_xml_node_t *r = hearth_xml_new(a, "presence", HEARTH_NS_CLIENT);
    int nomem = !r || hearth_xml_set_attr(a, r, "from", jid) ||
                hearth_xml_set_attr(a, r, "type", "subscribe");
    if (!nomem && status)
        hearth_xml_append(r, status);
    if (!nomem && nick)
        hearth_xml_append(r, nick);
    size_t len = 0;
    char *stanza = nomem ? NULL : serialize_client(r, &len);
    if (!stanza || len > STORAGE_STANZA_MAX ||
        grow((void **)&u->reqs, &u->reqs_cap, u->nreqs, sizeof(*u->reqs))) {
        bad(im, w, stanza ? "larger than %d bytes" : "out of memory", STORAGE_STANZA_MAX);
        free(stanza);
        free(jid);
        return;
    }
    u->reqs[u->nreqs++] = (storage_sub_request_t){jid, stanza};
}

/* Gives n and its descendants in the pie namespace jabber:client instead: an exporter that
 * wrote <message> without its own xmlns. */
static void as_client(hearth_xml_node_t *n)
{
    if (n->type != HEARTH_XML_ELEMENT)
        return;
    if (!strcmp(n->ns, NS_PIE))
        n->ns = HEARTH_NS_CLIENT;
    for (hearth_xml_node_t *c = n->children; c; c = c->next)
        as_client(c);
}

static void read_offline(import_t *im, const char *where, pie_user_t *u, hearth_xml_node_t *q,
                         hearth_arena_t *a)
{
    char w[1400];
    size_t k = 0;
    for (hearth_xml_node_t *m = hearth_xml_first_element(q); m && !im->err;
         m = hearth_xml_next_element(m)) {
        k++;
        snprintf(w, sizeof(w), "%s/<offline-messages>/<message> number %zu", where, k);
        if (strcmp(m->name, "message") != 0 ||
            (strcmp(m->ns, HEARTH_NS_CLIENT) != 0 && strcmp(m->ns, NS_PIE) != 0)) {
            bad(im, w, "<%s xmlns='%.80s'> where a <message xmlns='jabber:client'> is expected",
                m->name, m->ns);
            return;
        }
        as_client(m);
        /* The time the message was first held: its delay, as the server that held it wrote it;
         * one without is held from now, and says so when delivered. */
        int64_t stamp = -1;
        hearth_xml_node_t *delay = hearth_xml_child(m, "delay", HEARTH_NS_DELAY);
        if (delay) {
            if (hearth_datetime_parse(hearth_xml_attr(delay, "stamp"), &stamp) != 0 || stamp < 0) {
                bad(im, w, "<delay stamp='%.40s'> is not a XEP-0082 date and time",
                    hearth_xml_attr(delay, "stamp") ? hearth_xml_attr(delay, "stamp") : "");
                return;
            }
        } else {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            stamp = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
            time_t secs = (time_t)(stamp / 1000);
            struct tm tm;
            char st[64];
            gmtime_r(&secs, &tm);
            strftime(st, sizeof(st), "%Y-%m-%dT%H:%M:%SZ", &tm);
            hearth_xml_node_t *d = hearth_xml_add_child(a, m, "delay", HEARTH_NS_DELAY);
            if (!d || hearth_xml_set_attr(a, d, "from", im->o->domain) ||
                hearth_xml_set_attr(a, d, "stamp", st)) {
                bad(im, w, "out of memory");
                return;
            }
        }
        size_t len = 0;
        char *s = serialize_client(m, &len);
        if (!s || len > STORAGE_STANZA_MAX ||
            grow((void **)&u->msgs, &u->msgs_cap, u->nmsgs, sizeof(*u->msgs))) {
            bad(im, w, s ? "larger than %d bytes" : "out of memory", STORAGE_STANZA_MAX);
            free(s);
            return;
        }
        u->msgs[u->nmsgs++] = (pie_msg_t){s, len, stamp};
    }
}

static void read_private(import_t *im, const char *where, pie_user_t *u, hearth_xml_node_t *q)
{
    char w[1400];
    for (hearth_xml_node_t *e = hearth_xml_first_element(q); e && !im->err;
         e = hearth_xml_next_element(e)) {
        snprintf(w, sizeof(w), "%s/<query xmlns='jabber:iq:private'>/<%.100s xmlns='%.200s'>",
                 where, e->name, e->ns);
        if (!*e->ns || !strcmp(e->ns, HEARTH_NS_PRIVATE) || !strcmp(e->ns, NS_PIE) ||
            !strcmp(e->ns, HEARTH_NS_CLIENT)) {
            bad(im, w, "private XML needs a namespace of its own (XEP-0049)");
            return;
        }
        if (strlen(e->ns) > STORAGE_NAME_MAX) {
            bad(im, w, "the namespace is longer than %d bytes", STORAGE_NAME_MAX);
            return;
        }
        for (size_t i = 0; i < u->npriv; i++)
            if (!strcmp(u->priv[i].key, e->ns)) {
                bad(im, w, "the namespace is given twice");
                return;
            }
        size_t len = 0;
        char *xml = serialize_client(e, &len);
        char *ns = strdup(e->ns);
        if (!xml || !ns || len > STORAGE_XML_MAX ||
            grow((void **)&u->priv, &u->priv_cap, u->npriv, sizeof(*u->priv))) {
            bad(im, w, xml && ns ? "larger than %d bytes" : "out of memory", STORAGE_XML_MAX);
            free(xml);
            free(ns);
            return;
        }
        u->priv[u->npriv++] = (storage_doc_t){ns, xml};
    }
}

static void read_user(import_t *im, const char *host_where, hearth_xml_node_t *e, hearth_arena_t *a)
{
    char where[700];
    const char *raw = hearth_xml_attr(e, "name");
    const char *reason = NULL;
    size_t k = im->nusers + 1;
    if (!raw || !*raw) {
        snprintf(where, sizeof(where), "%s/<user> number %zu", host_where, k);
        bad(im, where, "no name attribute");
        return;
    }
    snprintf(where, sizeof(where), "%s/<user name='%.100s'>", host_where, raw);
    pie_user_t u = {0};
    if (strlen(raw) > STORAGE_NAME_MAX ||
        hearth_jid_nodeprep(raw, strlen(raw), &u.name, &reason) < 0) {
        bad(im, where, "the name is not a valid JID localpart: %s",
            reason ? reason : "too long or malformed");
        return;
    }
    for (size_t i = 0; i < im->nusers; i++)
        if (!strcmp(im->users[i].name, u.name)) {
            bad(im, where, "the account is given twice");
            pie_user_clear(&u);
            return;
        }
    const char *password = hearth_xml_attr(e, "password");
    if (password && read_scram_password(im, where, &u, password, a))
        password = NULL;
    for (hearth_xml_node_t *c = hearth_xml_first_element(e); c && !im->err;
         c = hearth_xml_next_element(c)) {
        if (!strcmp(c->name, "scram-credentials") && !strcmp(c->ns, NS_PIE_SCRAM)) {
            read_scram(im, where, &u, c, a);
        } else if (!strcmp(c->name, "query") && !strcmp(c->ns, HEARTH_NS_ROSTER)) {
            read_roster(im, where, &u, c, a);
        } else if (!strcmp(c->name, "query") && !strcmp(c->ns, HEARTH_NS_PRIVATE)) {
            read_private(im, where, &u, c);
        } else if (!strcmp(c->name, "vCard") && !strcmp(c->ns, HEARTH_NS_VCARD)) {
            size_t len = 0;
            free(u.vcard);
            u.vcard = serialize_client(c, &len);
            if (!u.vcard || len > STORAGE_XML_MAX)
                bad(im, where, "<vCard xmlns='vcard-temp'>: %s",
                    u.vcard ? "larger than the 1 MiB a vCard may take" : "out of memory");
        } else if (!strcmp(c->name, "offline-messages") && !strcmp(c->ns, NS_PIE)) {
            read_offline(im, where, &u, c, a);
        } else if (!strcmp(c->name, "presence") &&
                   (!strcmp(c->ns, HEARTH_NS_CLIENT) || !strcmp(c->ns, NS_PIE)) &&
                   hearth_xml_attr(c, "type") && !strcmp(hearth_xml_attr(c, "type"), "subscribe")) {
            /* Prosody 0.12 writes these without an xmlns of their own (in the pie namespace). */
            as_client(c);
            read_request(im, where, &u, c, a);
        } else if (im->o->report) {
            fprintf(im->o->report, "%s: %s: <%s xmlns='%.100s'> left out (not imported)\n",
                    im->path, where, c->name, c->ns);
        }
    }
    if (!im->err && password) {
        /* An older exporter's password in clear: both families from it, as adduser does. */
        int rc = hearth_scram_secret_new(HEARTH_SCRAM_SHA1, password, im->o->iterations, &u.sha1);
        rc = rc
                 ?: hearth_scram_secret_new(HEARTH_SCRAM_SHA256, password, im->o->iterations,
                                            &u.sha256);
        if (rc)
            bad(im, where, "the password attribute cannot be used: %s",
                rc == HEARTH_EINVAL ? "empty or refused by SASLprep" : hearth_strerror(rc));
    }
    if (!im->err && u.sha1.iterations == 0 && u.sha256.iterations == 0 && im->o->report)
        fprintf(im->o->report,
                "%s: %s: no credentials hearthd can use; the account cannot log in until "
                "hearthctl passwd sets a password\n",
                im->path, where);
    if (!im->err && grow((void **)&im->users, &im->users_cap, im->nusers, sizeof(u)))
        bad(im, where, "out of memory");
    if (im->err) {
        pie_user_clear(&u);
        return;
    }
    im->users[im->nusers++] = u;
}

/* Checks <host jid='...'> (the only domain accepted is server.domain) and sets im->host_where. */
static void check_host(import_t *im, const char *jid)
{
    snprintf(im->host_where, sizeof(im->host_where), "<host jid='%.200s'>", jid ? jid : "");
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *reason = NULL;
    if (!jid || hearth_jid_parse(jid, strlen(jid), &j, &reason) < 0 || j.node || j.resource) {
        bad(im, im->host_where, "the jid is not a domain%s%s", reason ? ": " : "",
            reason ? reason : "");
    } else if (strcmp(j.domain, im->o->domain) != 0) {
        bad(im, im->host_where,
            "this server is %s (server.domain); the accounts of %s are not imported "
            "here",
            im->o->domain, j.domain);
    }
    hearth_jid_clear(&j);
    im->hosts++;
}

static void on_open(void *ud, const hearth_xml_node_t *header, const char *default_ns)
{
    (void)default_ns;
    import_t *im = ud;
    im->opened = 1;
    if (!strcmp(header->name, "host") && !strcmp(header->ns, NS_PIE)) {
        im->root_host = 1;
        check_host(im, hearth_xml_attr(header, "jid"));
    } else if (strcmp(header->name, "server-data") != 0 || strcmp(header->ns, NS_PIE) != 0) {
        bad(im, "the root element",
            "<%s xmlns='%.100s'> where <server-data xmlns='" NS_PIE "'> or <host xmlns='" NS_PIE
            "'> is expected",
            header->name, header->ns);
    }
}

/* A child of <host>: an account, or something left out. */
static void host_child(import_t *im, hearth_xml_node_t *u, hearth_arena_t *a)
{
    if (strcmp(u->name, "user") != 0 || strcmp(u->ns, NS_PIE) != 0) {
        if (im->o->report)
            fprintf(im->o->report, "%s: %s: <%s xmlns='%.100s'> left out (not imported)\n",
                    im->path, im->host_where, u->name, u->ns);
        return;
    }
    read_user(im, im->host_where, u, a);
}

/* An XInclude href hearthctl follows: a relative path below the including file's directory (as
 * ejabberd writes them: a file name), no URI scheme, no "..". */
static int relative_href(const char *href)
{
    if (!*href || href[0] == '/' || strchr(href, ':') || strchr(href, '\\'))
        return 0;
    for (const char *p = href; p; p = strchr(p, '/') ? strchr(p, '/') + 1 : NULL)
        if (!strncmp(p, "..", 2) && (p[2] == '/' || p[2] == '\0'))
            return 0;
    return 1;
}

/* <xi:include href='...'/> in <server-data>: ejabberd's index of its host files. The target is
 * read after this file. */
static void read_include(import_t *im, hearth_xml_node_t *e)
{
    const char *href = hearth_xml_attr(e, "href");
    const char *parse = hearth_xml_attr(e, "parse");
    char where[300];
    snprintf(where, sizeof(where), "<xi:include href='%.200s'>", href ? href : "");
    if (!href || !*href) {
        bad(im, where, "no href attribute");
        return;
    }
    if (parse && strcmp(parse, "xml") != 0) {
        bad(im, where, "parse='%.40s' (only XML files are included)", parse);
        return;
    }
    if (hearth_xml_attr(e, "xpointer")) {
        bad(im, where, "xpointer is not supported (whole files only)");
        return;
    }
    if (!relative_href(href)) {
        bad(im, where, "not a file name relative to this file's directory");
        return;
    }
    const char *slash = strrchr(im->path, '/');
    int dirlen = slash ? (int)(slash - im->path + 1) : 0;
    char *path = NULL;
    includes_t *inc = im->includes;
    if (asprintf(&path, "%.*s%s", dirlen, im->path, href) < 0)
        path = NULL;
    if (!path || grow((void **)&inc->paths, &inc->cap, inc->n, sizeof(*inc->paths))) {
        free(path);
        bad(im, where, "out of memory");
        return;
    }
    inc->paths[inc->n++] = path;
}

static void on_element(void *ud, hearth_xml_node_t *e, hearth_arena_t *a)
{
    import_t *im = ud;
    if (im->root_host) {
        host_child(im, e, a);
    } else if (!strcmp(e->name, "include") && !strcmp(e->ns, NS_XINCLUDE)) {
        read_include(im, e);
    } else if (!strcmp(e->name, "host") && !strcmp(e->ns, NS_PIE)) {
        check_host(im, hearth_xml_attr(e, "jid"));
        for (hearth_xml_node_t *u = hearth_xml_first_element(e); u && !im->err;
             u = hearth_xml_next_element(u))
            host_child(im, u, a);
    } else if (im->o->report) {
        fprintf(im->o->report, "%s: <%s xmlns='%.100s'> left out (not imported)\n", im->path,
                e->name, e->ns);
    }
}

static void on_close(void *ud)
{
    import_t *im = ud;
    im->closed = 1;
}

static void on_error(void *ud, hearth_stream_error_t cond, const char *text)
{
    import_t *im = ud;
    (void)cond;
    if (!im->err) {
        hearth_xml_position_t pos = hearth_xml_stream_position(im->x);
        errf(&im->err, "%s: not a well-formed XEP-0227 file near byte %llu: %s", im->path,
             (unsigned long long)pos.fed, text ? text : "malformed XML");
    }
}

/* 1 when the file open as f has been read already (recorded otherwise). */
static int read_already(import_t *im, FILE *f)
{
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode))
        return 0;
    for (size_t i = 0; i < im->nseen; i++)
        if (im->seen[i].dev == sb.st_dev && im->seen[i].ino == sb.st_ino)
            return 1;
    if (grow((void **)&im->seen, &im->seen_cap, im->nseen, sizeof(*im->seen)) == 0)
        im->seen[im->nseen++] = (file_id_t){sb.st_dev, sb.st_ino};
    return 0;
}

/* Parses the open file f (path) into im->users, collecting its includes in inc. */
static void parse_file(import_t *im, const char *path, FILE *f, includes_t *inc)
{
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode) &&
        (uint64_t)sb.st_size > im->o->max_bytes) {
        errf(&im->err,
             "%s: %lld bytes, more than the %zu bytes an import file may have "
             "(--max-bytes)",
             path, (long long)sb.st_size, im->o->max_bytes);
        return;
    }
    hearth_xml_stream_cbs_t cbs = {
        .open = on_open, .stanza = on_element, .close = on_close, .error = on_error};
    hearth_xml_limits_t lim = HEARTH_XML_LIMITS_DEFAULT;
    lim.max_stanza_bytes = im->o->max_bytes;
    lim.max_depth = PIE_DEPTH_MAX;
    im->x = hearth_xml_stream_new(&cbs, im, &lim);
    im->includes = inc;
    char *buf = malloc(READ_CHUNK);
    if (!im->x || !buf) {
        free(buf);
        hearth_xml_stream_free(im->x);
        im->x = NULL;
        errf(&im->err, "out of memory");
        return;
    }
    size_t total = 0, n;
    while (!im->err && !im->closed && (n = fread(buf, 1, READ_CHUNK, f)) > 0) {
        total += n;
        if (total > im->o->max_bytes) {
            errf(&im->err, "%s: more than the %zu bytes an import file may have (--max-bytes)",
                 path, im->o->max_bytes);
            break;
        }
        (void)hearth_xml_stream_feed(im->x, buf, n);
    }
    if (!im->err && ferror(f))
        errf(&im->err, "%s: cannot read: %s", path, strerror(errno));
    if (!im->err && !im->closed)
        errf(&im->err, "%s: %s", path,
             !im->opened     ? "no XML in the file"
             : im->root_host ? "the file ends before </host>"
                             : "the file ends before </server-data>");
    if (!im->err && im->hosts == 0 && inc->n == 0)
        errf(&im->err, "%s: no <host> in <server-data>", path);
    free(buf);
    hearth_xml_stream_free(im->x);
    im->x = NULL;
    im->includes = NULL;
}

/* Reads one file into im->users, then the files it includes (by: the file that included it, or
 * NULL); 0, or 1 with im->err set. */
static int read_file(import_t *im, const char *path, const char *by, int depth)
{
    if (depth > PIE_INCLUDE_DEPTH_MAX)
        return errf(&im->err, "%s: included more than %d files deep", path, PIE_INCLUDE_DEPTH_MAX);
    FILE *f = fopen(path, "rb");
    if (!f)
        return errf(&im->err, "%s: cannot open: %s%s%s", path, strerror(errno),
                    by ? ", included by " : "", by ? by : "");
    if (read_already(im, f)) {
        fclose(f);
        if (im->o->report)
            fprintf(im->o->report, "%s: read already\n", path);
        return 0;
    }
    includes_t inc = {0};
    im->path = path;
    im->opened = im->closed = im->hosts = im->root_host = 0;
    parse_file(im, path, f, &inc);
    fclose(f);
    for (size_t i = 0; i < inc.n && !im->err; i++)
        read_file(im, inc.paths[i], path, depth + 1);
    for (size_t i = 0; i < inc.n; i++)
        free(inc.paths[i]);
    free(inc.paths);
    im->path = path;
    return im->err ? 1 : 0;
}

/* ---- import: writing ---- */

/* Everything of u but the account itself; HEARTH_E* naming nothing (the caller says whose). */
static int write_user_data(storage_t *st, const pie_user_t *u, const char **what)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < u->nitems; i++) {
        *what = "a roster item";
        rc = storage_sync_roster_put(st, u->name, &u->items[i], (int64_t)i + 1);
    }
    for (size_t i = 0; rc == 0 && i < u->nreqs; i++) {
        *what = "a subscription request";
        rc = storage_sync_request_put(st, u->name, u->reqs[i].jid, u->reqs[i].stanza);
    }
    if (rc == 0 && u->vcard) {
        *what = "the vCard";
        rc = storage_sync_vcard_set(st, u->name, u->vcard);
    }
    for (size_t i = 0; rc == 0 && i < u->npriv; i++) {
        *what = "private XML";
        rc = storage_sync_private_set(st, u->name, u->priv[i].key, u->priv[i].xml);
    }
    for (size_t i = 0; rc == 0 && i < u->nmsgs; i++) {
        *what = "an offline message";
        /* No quota: what the old server held is kept, however much. */
        rc = storage_sync_offline_store(st, u->name, u->msgs[i].stanza, u->msgs[i].len,
                                        u->msgs[i].stamp_ms, UINT_MAX);
    }
    return rc;
}

static void free_users(import_t *im)
{
    for (size_t i = 0; i < im->nusers; i++)
        pie_user_clear(&im->users[i]);
    free(im->users);
    im->users = NULL;
    im->nusers = 0;
}

int pie__import(storage_t *st, const char *const *paths, size_t npaths,
                const pie_import_opts_t *opts, char **errmsg)
{
    import_t im = {.o = opts};
    *errmsg = NULL;
    for (size_t i = 0; i < npaths && !im.err; i++)
        read_file(&im, paths[i], NULL, 0);
    /* Nothing is written before every file has been read and every account checked. */
    size_t skipped = 0;
    for (size_t i = 0; i < im.nusers && !im.err; i++) {
        storage_account_t a = {0};
        int rc = storage_sync_account_get(st, im.users[i].name, &a);
        storage_account_clear(&a);
        if (rc == HEARTH_ENOTFOUND)
            continue;
        if (rc)
            errf(&im.err, "cannot read the database: %s", hearth_strerror(rc));
        else if (!opts->skip_existing)
            errf(&im.err,
                 "the account %s@%s exists already; nothing was imported (--skip-existing "
                 "imports the others and leaves it as it is)",
                 im.users[i].name, opts->domain);
        else {
            im.users[i].skip = 1;
            skipped++;
        }
    }
    size_t created = 0, items = 0, msgs = 0;
    for (size_t i = 0; i < im.nusers && !im.err; i++) {
        pie_user_t *u = &im.users[i];
        if (u->skip) {
            if (opts->report)
                fprintf(opts->report, "skipped %s@%s: the account exists already\n", u->name,
                        opts->domain);
            continue;
        }
        storage_account_t a = {.username = u->name, .sha1 = u->sha1, .sha256 = u->sha256};
        const char *what = "the account";
        int rc = storage_sync_account_create(st, &a);
        if (rc == 0)
            created = i + 1;
        rc = rc ?: write_user_data(st, u, &what);
        if (rc) {
            errf(&im.err,
                 "writing %s of %s@%s failed: %s; the accounts this import created are "
                 "removed again",
                 what, u->name, opts->domain, hearth_strerror(rc));
            break;
        }
        items += u->nitems;
        msgs += u->nmsgs;
        if (opts->report)
            fprintf(opts->report, "imported %s@%s: %zu contacts, %zu offline messages%s%s\n",
                    u->name, opts->domain, u->nitems, u->nmsgs, u->vcard ? ", a vCard" : "",
                    u->sha256.iterations ? ""
                    : u->sha1.iterations ? " (SCRAM-SHA-1 keys only: SCRAM-SHA-256 after the "
                                           "next PLAIN login)"
                                         : " (no usable credentials)");
    }
    if (im.err) {
        /* Undo: the accounts created so far go, with whatever was written for them. */
        for (size_t i = 0; i < created; i++)
            if (!im.users[i].skip)
                (void)storage_sync_account_delete(st, im.users[i].name);
    } else if (opts->report) {
        fprintf(opts->report,
                "%zu accounts imported (%zu contacts, %zu offline messages), %zu "
                "skipped\n",
                im.nusers - skipped, items, msgs, skipped);
    }
    free_users(&im);
    free(im.seen);
    *errmsg = im.err;
    return im.err ? 1 : 0;
}
