/* JIDs: split per RFC 7622, each part prepared with libidn's stringprep profiles (as Prosody and
 * ejabberd deploy, XEP-0479), then RFC 7622's length rules and hostname rules for the domainpart.
 * Touches only memory: preparation runs in stack buffers, a JID is one heap block. */
#include "hearth/jid.h"

#include <arpa/inet.h>
#include <idn-free.h>
#include <idna.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <stringprep.h>

enum part { PART_NODE, PART_DOMAIN, PART_RESOURCE };

struct part_reasons {
    const char *empty;
    const char *too_long;
    const char *prohibited;
    const char *bidi;
    const char *unassigned;
    const char *normalization;
};

static const struct part_reasons reasons[] = {
    [PART_NODE] = {"empty localpart", "localpart too long",
                   "localpart contains a prohibited character",
                   "localpart violates the bidirectional text rules",
                   "localpart contains an unassigned code point", "localpart cannot be normalized"},
    [PART_DOMAIN] = {"empty domainpart", "domainpart too long",
                     "domainpart contains a prohibited character",
                     "domainpart violates the bidirectional text rules",
                     "domainpart contains an unassigned code point",
                     "domainpart cannot be normalized"},
    [PART_RESOURCE] = {"empty resourcepart", "resourcepart too long",
                       "resourcepart contains a prohibited character",
                       "resourcepart violates the bidirectional text rules",
                       "resourcepart contains an unassigned code point",
                       "resourcepart cannot be normalized"},
};

static const char R_JID_TOO_LONG[] = "JID too long";
static const char R_UTF8[] = "invalid UTF-8";
static const char R_NUL[] = "JID contains a NUL byte";
static const char R_NOMEM[] = "out of memory";
static const char R_HOSTNAME[] = "domainpart is not a valid hostname";
static const char R_EMPTY_LABEL[] = "domainpart contains an empty label";
static const char R_LABEL_LONG[] = "domainpart label too long";
static const char R_IP6[] = "domainpart is not a valid IPv6 literal";

/* Holds any accepted input plus its NUL; stringprep reports a result that does not fit (or is
 * more than one byte over HEARTH_JID_PART_MAX, room kept for a domainpart's trailing dot) as a
 * too-small buffer. */
#define PREP_BUF (HEARTH_JID_INPUT_MAX + 2)
#define LABEL_MAX 63

static int fail(const char **reason, const char *why, int err)
{
    if (reason)
        *reason = why;
    return err;
}

/* NULL when s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF) without NUL, else the reason. libidn is not trusted with malformed input. */
static const char *check_utf8(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c == 0)
            return R_NUL;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
            min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
            min = 0x10000;
        } else {
            return R_UTF8;
        }
        if (len - i - 1 < n)
            return R_UTF8;
        for (size_t k = 1; k <= n; k++) {
            unsigned b = s[i + k];
            if ((b & 0xc0) != 0x80)
                return R_UTF8;
            cp = (cp << 6) | (b & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return R_UTF8;
        i += n + 1;
    }
    return NULL;
}

/* What the three profiles do to printable ASCII (U+0020..U+007E), which is nearly every address
 * a server sees: no character maps to nothing or to more than one, NFKC leaves them alone, none
 * is right-to-left. Nodeprep folds case and prohibits the space (C.1.1) and " & ' / : < > @;
 * nameprep folds case and prohibits nothing printable (the hostname rules come after);
 * resourceprep changes nothing and prohibits nothing printable. libidn's general path costs
 * about thirty times as much (UCS-4 conversion, table lookups, normalisation), so these strings
 * take this one; unit/jid checks it against libidn for every string of one and two such
 * characters. Returns 1 when it handled in[0..len), 0 to leave it to libidn. */
static int prep_ascii(enum part p, const char *in, size_t len, char *buf, size_t *outlen,
                      const char **reason)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c > 0x7e)
            return 0;
    }
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (p == PART_NODE && strchr(" \"&'/:<>@", c) != NULL) {
            fail(reason, reasons[p].prohibited, HEARTH_EINVAL);
            return -1;
        }
        buf[i] = (p != PART_RESOURCE && c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    buf[len] = '\0';
    *outlen = len;
    return 1;
}

/* Runs the part's stringprep profile over in[0..len) into buf (PREP_BUF bytes). Unassigned code
 * points are allowed (stringprep's "query" semantics), as deployed servers do. */
static int stringprep_part(enum part p, const char *in, size_t len, char *buf, size_t *outlen,
                           const char **reason)
{
    const struct part_reasons *r = &reasons[p];
    const char *bad;
    int rc;

    if (len > HEARTH_JID_INPUT_MAX)
        return fail(reason, r->too_long, HEARTH_EINVAL);
    if ((bad = check_utf8(in, len)) != NULL)
        return fail(reason, bad, HEARTH_EINVAL);
    if (len == 0)
        return fail(reason, r->empty, HEARTH_EINVAL);
    switch (prep_ascii(p, in, len, buf, outlen, reason)) {
    case 1:
        return 0;
    case -1:
        return HEARTH_EINVAL;
    default:
        break;
    }
    memcpy(buf, in, len);
    buf[len] = '\0';
    /* The result may not exceed the part limit by more than the one byte of a trailing dot. */
    switch (p) {
    case PART_NODE:
        rc = stringprep_xmpp_nodeprep(buf, HEARTH_JID_PART_MAX + 2);
        break;
    case PART_DOMAIN:
        rc = stringprep_nameprep(buf, HEARTH_JID_PART_MAX + 2);
        break;
    default:
        rc = stringprep_xmpp_resourceprep(buf, HEARTH_JID_PART_MAX + 2);
        break;
    }
    switch (rc) {
    case STRINGPREP_OK:
        break;
    case STRINGPREP_CONTAINS_UNASSIGNED:
        return fail(reason, r->unassigned, HEARTH_EINVAL);
    case STRINGPREP_CONTAINS_PROHIBITED:
        return fail(reason, r->prohibited, HEARTH_EINVAL);
    case STRINGPREP_BIDI_BOTH_L_AND_RAL:
    case STRINGPREP_BIDI_LEADTRAIL_NOT_RAL:
    case STRINGPREP_BIDI_CONTAINS_PROHIBITED:
        return fail(reason, r->bidi, HEARTH_EINVAL);
    case STRINGPREP_TOO_SMALL_BUFFER:
        return fail(reason, r->too_long, HEARTH_EINVAL);
    case STRINGPREP_ICONV_ERROR:
        return fail(reason, R_UTF8, HEARTH_EINVAL);
    case STRINGPREP_MALLOC_ERROR:
        return fail(reason, R_NOMEM, HEARTH_ENOMEM);
    default:
        return fail(reason, r->normalization, HEARTH_EINVAL);
    }
    *outlen = strlen(buf);
    /* Mapping can remove everything (U+00AD SOFT HYPHEN maps to nothing). */
    if (*outlen == 0)
        return fail(reason, r->empty, HEARTH_EINVAL);
    return 0;
}

static int prep_simple(enum part p, const char *in, size_t len, char *buf, size_t *outlen,
                       const char **reason)
{
    int rc = stringprep_part(p, in, len, buf, outlen, reason);
    if (rc < 0)
        return rc;
    if (*outlen > HEARTH_JID_PART_MAX)
        return fail(reason, reasons[p].too_long, HEARTH_EINVAL);
    return 0;
}

static int is_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

/* One label of a prepared hostname: 1..63 bytes in its DNS (ASCII) form, letters, digits and
 * hyphens, no hyphen at either end (STD3 rules, as IDNA2003 ToASCII applies them). */
static int check_label(const char *label, size_t len, const char **reason)
{
    int ascii = 1;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)label[i] >= 0x80) {
            ascii = 0;
            break;
        }
    }
    if (len == 0)
        return fail(reason, R_EMPTY_LABEL, HEARTH_EINVAL);
    if (ascii) {
        if (len > LABEL_MAX)
            return fail(reason, R_LABEL_LONG, HEARTH_EINVAL);
        for (size_t i = 0; i < len; i++) {
            if (!is_ldh((unsigned char)label[i]))
                return fail(reason, R_HOSTNAME, HEARTH_EINVAL);
        }
        if (label[0] == '-' || label[len - 1] == '-')
            return fail(reason, R_HOSTNAME, HEARTH_EINVAL);
        return 0;
    }

    /* A U-label: its A-label ("xn--...") is what DNS sees and what the 63 bytes bound. */
    char tmp[HEARTH_JID_PART_MAX + 1];
    char *ace = NULL;
    int rc;
    memcpy(tmp, label, len);
    tmp[len] = '\0';
    rc = idna_to_ascii_8z(tmp, &ace, IDNA_ALLOW_UNASSIGNED | IDNA_USE_STD3_ASCII_RULES);
    if (ace)
        idn_free(ace);
    switch (rc) {
    case IDNA_SUCCESS:
        return 0;
    case IDNA_INVALID_LENGTH:
    case IDNA_PUNYCODE_ERROR: /* libidn encodes into 63 bytes: overflow is its only failure */
        return fail(reason, R_LABEL_LONG, HEARTH_EINVAL);
    case IDNA_MALLOC_ERROR:
        return fail(reason, R_NOMEM, HEARTH_ENOMEM);
    default:
        return fail(reason, R_HOSTNAME, HEARTH_EINVAL);
    }
}

/* Replaces U+3002, U+FF0E and U+FF61 by '.', as RFC 3490 section 3.1 has label separators
 * recognised; nameprep leaves U+3002, so "a\u3002b" and "a.b" would otherwise differ. */
static size_t map_dots(char *s, size_t len)
{
    size_t r = 0, w = 0;
    while (r < len) {
        if (len - r >= 3 &&
            ((memcmp(s + r, "\xe3\x80\x82", 3) == 0) || (memcmp(s + r, "\xef\xbc\x8e", 3) == 0) ||
             (memcmp(s + r, "\xef\xbd\xa1", 3) == 0))) {
            s[w++] = '.';
            r += 3;
        } else {
            s[w++] = s[r++];
        }
    }
    s[w] = '\0';
    return w;
}

/* "[...]" accepted as written when it holds an IPv6 address (RFC 7622 section 3.2), lowercased. */
static int prep_ip_literal(const char *in, size_t len, char *buf, size_t *outlen,
                           const char **reason)
{
    char addr[INET6_ADDRSTRLEN];
    struct in6_addr a6;

    if (len < 3 || in[len - 1] != ']' || len - 2 >= sizeof addr)
        return fail(reason, R_IP6, HEARTH_EINVAL);
    memcpy(addr, in + 1, len - 2);
    addr[len - 2] = '\0';
    if (inet_pton(AF_INET6, addr, &a6) != 1)
        return fail(reason, R_IP6, HEARTH_EINVAL);
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    buf[len] = '\0';
    *outlen = len;
    return 0;
}

static int prep_domain(const char *in, size_t len, char *buf, size_t *outlen, const char **reason)
{
    const struct part_reasons *r = &reasons[PART_DOMAIN];
    struct in_addr a4;
    size_t n, start, last_start;
    int rc, numeric;

    if (len > HEARTH_JID_INPUT_MAX)
        return fail(reason, r->too_long, HEARTH_EINVAL);
    if (len > 0 && in[0] == '[') {
        const char *bad = check_utf8(in, len);
        if (bad)
            return fail(reason, bad, HEARTH_EINVAL);
        return prep_ip_literal(in, len, buf, outlen, reason);
    }
    if ((rc = stringprep_part(PART_DOMAIN, in, len, buf, &n, reason)) < 0)
        return rc;
    n = map_dots(buf, n);
    if (buf[n - 1] == '.')
        buf[--n] = '\0';
    if (n == 0)
        return fail(reason, r->empty, HEARTH_EINVAL);
    if (n > HEARTH_JID_PART_MAX)
        return fail(reason, r->too_long, HEARTH_EINVAL);
    *outlen = n;
    if (inet_pton(AF_INET, buf, &a4) == 1)
        return 0;

    start = last_start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && buf[i] != '.')
            continue;
        if ((rc = check_label(buf + start, i - start, reason)) < 0)
            return rc;
        last_start = start;
        start = i + 1;
    }
    /* An all-numeric top label is an IPv4 address gone wrong ("1.2.3.256"), not a hostname. */
    numeric = 1;
    for (size_t i = last_start; i < n; i++) {
        if (buf[i] < '0' || buf[i] > '9') {
            numeric = 0;
            break;
        }
    }
    if (numeric)
        return fail(reason, R_HOSTNAME, HEARTH_EINVAL);
    return 0;
}

/* The five strings in one block, full first so that freeing full frees them all. Parts are
 * already prepared; node and resource may be NULL. */
static int build(const char *node, size_t nl, const char *dom, size_t dl, const char *res,
                 size_t rl, hearth_jid_t *out)
{
    size_t bl = (node ? nl + 1 : 0) + dl;
    size_t fl = bl + (res ? rl + 1 : 0);
    size_t total = fl + 1 + bl + 1 + (node ? nl + 1 : 0) + dl + 1 + (res ? rl + 1 : 0);
    char *p = malloc(total);
    hearth_jid_t j = HEARTH_JID_INIT;

    if (!p)
        return HEARTH_ENOMEM;
    j.full = p;
    if (node) {
        memcpy(p, node, nl);
        p[nl] = '@';
        memcpy(p + nl + 1, dom, dl);
    } else {
        memcpy(p, dom, dl);
    }
    if (res) {
        p[bl] = '/';
        memcpy(p + bl + 1, res, rl);
    }
    p[fl] = '\0';
    p += fl + 1;

    j.bare = p;
    memcpy(p, j.full, bl);
    p[bl] = '\0';
    p += bl + 1;

    if (node) {
        j.node = p;
        memcpy(p, node, nl);
        p[nl] = '\0';
        p += nl + 1;
    }
    j.domain = p;
    memcpy(p, dom, dl);
    p[dl] = '\0';
    p += dl + 1;
    if (res) {
        j.resource = p;
        memcpy(p, res, rl);
        p[rl] = '\0';
    }
    *out = j;
    return 0;
}

/* Prepares the parts present (node and res may be NULL) and builds *out (already zeroed). */
static int assemble(const char *node, size_t nl, const char *dom, size_t dl, const char *res,
                    size_t rl, hearth_jid_t *out, const char **reason)
{
    char nbuf[PREP_BUF], dbuf[PREP_BUF], rbuf[PREP_BUF];
    size_t pnl = 0, pdl = 0, prl = 0;
    int rc;

    if (node && (rc = prep_simple(PART_NODE, node, nl, nbuf, &pnl, reason)) < 0)
        return rc;
    if ((rc = prep_domain(dom, dl, dbuf, &pdl, reason)) < 0)
        return rc;
    if (res && (rc = prep_simple(PART_RESOURCE, res, rl, rbuf, &prl, reason)) < 0)
        return rc;
    if ((rc = build(node ? nbuf : NULL, pnl, dbuf, pdl, res ? rbuf : NULL, prl, out)) < 0)
        return fail(reason, R_NOMEM, rc);
    return 0;
}

int hearth_jid_parse(const char *s, size_t len, hearth_jid_t *out, const char **reason)
{
    const char *slash, *at, *bad;
    size_t blen;

    memset(out, 0, sizeof *out);
    if (!s && len > 0)
        return fail(reason, "NULL JID", HEARTH_EINVAL);
    if (len > HEARTH_JID_INPUT_MAX)
        return fail(reason, R_JID_TOO_LONG, HEARTH_EINVAL);
    if ((bad = check_utf8(s, len)) != NULL)
        return fail(reason, bad, HEARTH_EINVAL);

    /* The resourcepart starts at the first '/' and may hold '@' and '/'; the localpart ends at
     * the first '@' before it. */
    slash = len ? memchr(s, '/', len) : NULL;
    blen = slash ? (size_t)(slash - s) : len;
    at = blen ? memchr(s, '@', blen) : NULL;
    if (at) {
        size_t nl = (size_t)(at - s);
        return assemble(s, nl, at + 1, blen - nl - 1, slash ? slash + 1 : NULL,
                        slash ? len - blen - 1 : 0, out, reason);
    }
    return assemble(NULL, 0, s, blen, slash ? slash + 1 : NULL, slash ? len - blen - 1 : 0, out,
                    reason);
}

int hearth_jid_make(const char *node, const char *domain, const char *resource, hearth_jid_t *out,
                    const char **reason)
{
    /* strnlen bounds the scan; anything longer is rejected by the part's own length check. */
    size_t nl = node ? strnlen(node, HEARTH_JID_INPUT_MAX + 1) : 0;
    size_t dl = domain ? strnlen(domain, HEARTH_JID_INPUT_MAX + 1) : 0;
    size_t rl = resource ? strnlen(resource, HEARTH_JID_INPUT_MAX + 1) : 0;

    memset(out, 0, sizeof *out);
    return assemble(node, nl, domain ? domain : "", dl, resource, rl, out, reason);
}

int hearth_jid_copy(const hearth_jid_t *in, hearth_jid_t *out)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    int rc = 0;

    if (in->domain)
        rc = build(in->node, in->node ? strlen(in->node) : 0, in->domain, strlen(in->domain),
                   in->resource, in->resource ? strlen(in->resource) : 0, &j);
    if (rc < 0) {
        if (out != in)
            memset(out, 0, sizeof *out);
        return rc;
    }
    if (out == in)
        hearth_jid_clear(out);
    *out = j;
    return 0;
}

int hearth_jid_to_bare(const hearth_jid_t *in, hearth_jid_t *out)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    int rc = 0;

    if (in->domain)
        rc = build(in->node, in->node ? strlen(in->node) : 0, in->domain, strlen(in->domain), NULL,
                   0, &j);
    if (rc < 0) {
        if (out != in)
            memset(out, 0, sizeof *out);
        return rc;
    }
    if (out == in)
        hearth_jid_clear(out);
    *out = j;
    return 0;
}

void hearth_jid_clear(hearth_jid_t *j)
{
    if (!j)
        return;
    free(j->full);
    memset(j, 0, sizeof *j);
}

static int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Whole strings suffice: a prepared localpart holds no '@' and a domainpart no '@' or '/'. */
int hearth_jid_equal(const hearth_jid_t *a, const hearth_jid_t *b)
{
    return str_eq(a->full, b->full);
}

int hearth_jid_bare_equal(const hearth_jid_t *a, const hearth_jid_t *b)
{
    return str_eq(a->bare, b->bare);
}

int hearth_jid_names(const char *s, const char *bare)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *reason;
    int rc = hearth_jid_parse(s, strlen(s), &j, &reason);
    if (rc < 0)
        return rc;
    rc = str_eq(j.bare, bare);
    hearth_jid_clear(&j);
    return rc;
}

static int dup_result(const char *buf, size_t n, char **out, const char **reason)
{
    char *p = malloc(n + 1);
    if (!p)
        return fail(reason, R_NOMEM, HEARTH_ENOMEM);
    memcpy(p, buf, n + 1);
    *out = p;
    return 0;
}

int hearth_jid_nodeprep(const char *in, size_t len, char **out, const char **reason)
{
    char buf[PREP_BUF];
    size_t n;
    int rc;

    *out = NULL;
    if (!in && len > 0)
        return fail(reason, "NULL localpart", HEARTH_EINVAL);
    if ((rc = prep_simple(PART_NODE, in, len, buf, &n, reason)) < 0)
        return rc;
    return dup_result(buf, n, out, reason);
}

int hearth_jid_nameprep(const char *in, size_t len, char **out, const char **reason)
{
    char buf[PREP_BUF];
    size_t n;
    int rc;

    *out = NULL;
    if (!in && len > 0)
        return fail(reason, "NULL domainpart", HEARTH_EINVAL);
    if ((rc = prep_domain(in ? in : "", len, buf, &n, reason)) < 0)
        return rc;
    return dup_result(buf, n, out, reason);
}

int hearth_jid_resourceprep(const char *in, size_t len, char **out, const char **reason)
{
    char buf[PREP_BUF];
    size_t n;
    int rc;

    *out = NULL;
    if (!in && len > 0)
        return fail(reason, "NULL resourcepart", HEARTH_EINVAL);
    if ((rc = prep_simple(PART_RESOURCE, in, len, buf, &n, reason)) < 0)
        return rc;
    return dup_result(buf, n, out, reason);
}
