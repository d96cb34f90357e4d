/* /api/v1/certificate: the server's TLS certificate shown (from its file) and replaced: the new
 * chain and key are checked (they parse, match, are valid now), written atomically over the
 * tls.cert and tls.key files, and the server's TLS context takes them for new connections
 * (open ones keep theirs). The parsing, writing and reloading run on the thread pool. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "admin/internal.h"

/* ---- reading a certificate ---- */

static json_t *name_json(X509_NAME *n)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    if (!b || X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) < 0) {
        BIO_free(b);
        return json_string("");
    }
    long len = BIO_get_mem_data(b, &data);
    json_t *j = json_stringn(data ? data : "", len > 0 ? (size_t)len : 0);
    BIO_free(b);
    return j;
}

static json_t *time_json(const ASN1_TIME *t)
{
    struct tm tm;
    char buf[32];
    if (!t || !ASN1_TIME_to_tm(t, &tm))
        return json_null();
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_string(buf);
}

static json_t *san_json(X509 *x)
{
    json_t *arr = json_array();
    GENERAL_NAMES *names = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_DNS) {
            const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
            json_array_append_new(
                arr, json_stringn((const char *)d, (size_t)ASN1_STRING_length(g->d.dNSName)));
        }
    }
    GENERAL_NAMES_free(names);
    return arr;
}

/* The first certificate of the PEM file at path, described; NULL when it cannot be read. */
static json_t *cert_json(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    if (f)
        fclose(f);
    ERR_clear_error();
    if (!x)
        return NULL;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[3 * EVP_MAX_MD_SIZE + 1] = "";
    if (X509_digest(x, EVP_sha256(), md, &mdlen))
        for (unsigned i = 0; i < mdlen; i++)
            snprintf(hex + 3 * i, 4, "%02X%s", md[i], i + 1 < mdlen ? ":" : "");
    /* Signed by its own key under its own name (X509_check_issued would also want the
     * keyCertSign usage, which a generated server certificate does not have). */
    int self = !X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) &&
               X509_verify(x, X509_get0_pubkey(x)) == 1;
    json_t *j = json_pack(
        "{s:o, s:o, s:o, s:o, s:s, s:o, s:b, s:s}", "subject", name_json(X509_get_subject_name(x)),
        "issuer", name_json(X509_get_issuer_name(x)), "not_before",
        time_json(X509_get0_notBefore(x)), "not_after", time_json(X509_get0_notAfter(x)), "sha256",
        hex, "san", san_json(x), "self_signed", self, "path", path);
    X509_free(x);
    ERR_clear_error();
    return j;
}

static void show(admin_req_t *ar)
{
    json_t *j = cert_json(ar->w->srv->tls_cert_path);
    if (!j)
        admin__reply_error(ar, 500, "the certificate file cannot be read", NULL);
    else
        admin__reply_json(ar, 200, j);
}

/* ---- replacing it (on the thread pool) ---- */

typedef struct replace {
    admin_req_t *ar;
    server_t *srv;
    char *cert, *key; /* PEM, as sent */
    uv_work_t work;
    int status;
    char error[512];
    json_t *result;
} replace_t;

static void replace_free(replace_t *r)
{
    if (r->key)
        explicit_bzero(r->key, strlen(r->key));
    free(r->cert);
    free(r->key);
    json_decref(r->result);
    free(r);
}

/* The chain and key parse, the key is the leaf's, and the leaf is valid now: 0, or 400 with
 * r->error said. */
static int check(replace_t *r)
{
    BIO *cb = BIO_new_mem_buf(r->cert, -1), *kb = BIO_new_mem_buf(r->key, -1);
    X509 *leaf = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
    EVP_PKEY *key = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    const char *why = NULL;
    if (!leaf)
        why = "\"cert\" is not a PEM certificate";
    else if (!key)
        why = "\"key\" is not a PEM private key (without a passphrase)";
    for (X509 *more; !why && (more = PEM_read_bio_X509(cb, NULL, NULL, NULL));)
        X509_free(more); /* the rest of the chain parses too */
    if (!why && ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE &&
        ERR_peek_last_error())
        why = "\"cert\" holds something after the first certificate that is not one";
    if (!why && X509_check_private_key(leaf, key) != 1)
        why = "the key does not match the certificate";
    if (!why && X509_cmp_current_time(X509_get0_notAfter(leaf)) <= 0)
        why = "the certificate has expired";
    if (!why && X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0)
        why = "the certificate is not valid yet";
    if (why)
        snprintf(r->error, sizeof(r->error), "%s", why);
    X509_free(leaf);
    EVP_PKEY_free(key);
    BIO_free(cb);
    BIO_free(kb);
    ERR_clear_error();
    return why ? 400 : 0;
}

/* data to a temporary file beside path (mode), synced: its name (malloc'd), or NULL. */
static char *write_temp(const char *path, const char *data, mode_t mode)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
        return NULL;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        free(tmp);
        return NULL;
    }
    size_t len = strlen(data), off = 0;
    int ok = fchmod(fd, mode) == 0;
    while (ok && off < len) {
        ssize_t n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        ok = n > 0;
        off += ok ? (size_t)n : 0;
    }
    ok = ok && fsync(fd) == 0;
    ok = close(fd) == 0 && ok;
    if (!ok) {
        unlink(tmp);
        free(tmp);
        return NULL;
    }
    return tmp;
}

static void replace_work(uv_work_t *wk)
{
    replace_t *r = wk->data;
    server_t *srv = r->srv;
    if ((r->status = check(r)))
        return;
    /* Both written beside their targets first, then renamed key first: the pair on disk is
     * the old or the new one but for the moment between the two renames. */
    char *kt = write_temp(srv->tls_key_path, r->key, 0600);
    char *ct = kt ? write_temp(srv->tls_cert_path, r->cert, 0644) : NULL;
    if (!ct || rename(kt, srv->tls_key_path) || rename(ct, srv->tls_cert_path)) {
        r->status = 500;
        snprintf(r->error, sizeof(r->error), "cannot write %s: %s",
                 ct ? srv->tls_cert_path : srv->tls_key_path, strerror(errno));
        if (kt)
            unlink(kt);
        if (ct)
            unlink(ct);
        free(kt);
        free(ct);
        return;
    }
    free(kt);
    free(ct);
    char *err = NULL;
    if (hearth_tls_ctx_reload_server(srv->tls, srv->tls_cert_path, srv->tls_key_path, &err)) {
        r->status = 500;
        snprintf(r->error, sizeof(r->error), "written, but not loaded: %s", err ? err : "?");
        free(err);
        return;
    }
    r->result = cert_json(srv->tls_cert_path);
    r->status = r->result ? 200 : 500;
    snprintf(r->error, sizeof(r->error), "the new certificate cannot be read back");
}

static void replace_done(uv_work_t *wk, int status)
{
    replace_t *r = wk->data;
    admin_req_t *ar = r->ar;
    if (status) {
        admin__reply_error(ar, 503, "busy; try again", NULL);
    } else if (r->status != 200) {
        admin__reply_error(ar, r->status, r->error, NULL);
    } else {
        hlog(LOG_INFO, "admin: %s replaced the certificate (%s)", ar->who,
             json_string_value(json_object_get(r->result, "subject")));
        admin__reply_json(ar, 200, r->result);
        r->result = NULL;
    }
    replace_free(r);
}

static void replace(admin_req_t *ar)
{
    json_t *b = admin__body(ar);
    if (!b)
        return;
    const char *cert = json_string_value(json_object_get(b, "cert"));
    const char *key = json_string_value(json_object_get(b, "key"));
    replace_t *r = cert && key ? calloc(1, sizeof(*r)) : NULL;
    if (r) {
        r->ar = ar;
        r->srv = ar->w->srv;
        r->cert = strdup(cert);
        r->key = strdup(key);
        r->work.data = r;
    }
    json_t *jk = json_object_get(b, "key");
    if (json_is_string(jk)) /* the body's copy of the key goes too */
        explicit_bzero((char *)json_string_value(jk), strlen(json_string_value(jk)));
    json_decref(b);
    if (!r || !r->cert || !r->key) {
        if (r)
            replace_free(r);
        admin__reply_error(ar, cert && key ? 500 : 400,
                           cert && key ? "out of memory" : "\"cert\" and \"key\" are PEM strings",
                           NULL);
        return;
    }
    if (uv_queue_work(&ar->w->loop, &r->work, replace_work, replace_done)) {
        replace_free(r);
        admin__reply_error(ar, 503, "busy; try again", NULL);
    }
}

int admin__certificate(admin_req_t *ar, const char *p)
{
    if (strcmp(p, "/certificate"))
        return 0;
    if (!strcmp(ar->method, "GET"))
        show(ar);
    else if (!strcmp(ar->method, "PUT"))
        replace(ar);
    else
        admin__not_allowed(ar, "GET, PUT");
    return 1;
}
