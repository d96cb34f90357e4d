/* Unit tests for lib/jid.c: RFC 7622 section 3.5 examples (with the places where stringprep,
 * which Hearth deploys per XEP-0479, differs from PRECIS), preparation, limits, comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <stringprep.h>

#include "hearth/jid.h"

static const hearth_jid_t zero_jid = HEARTH_JID_INIT;

static void assert_zeroed(const hearth_jid_t *j)
{
    assert_memory_equal(j, &zero_jid, sizeof *j);
}

static void assert_opt_string(const char *got, const char *want, const char *what,
                              const char *input)
{
    if (!want) {
        if (got)
            fail_msg("%s: %s is \"%s\", expected absent", input, what, got);
        return;
    }
    if (!got || strcmp(got, want) != 0)
        fail_msg("%s: %s is \"%s\", expected \"%s\"", input, what, got ? got : "(null)", want);
}

/* Parses in (len bytes) and checks every field; node/resource NULL mean absent. */
static void check_parse_len(const char *in, size_t len, const char *node, const char *domain,
                            const char *resource)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *reason = NULL;
    char bare[4096], full[8192];
    int rc = hearth_jid_parse(in, len, &j, &reason);

    if (rc != 0)
        fail_msg("%.80s: rejected (%d): %s", in, rc, reason ? reason : "(no reason)");
    snprintf(bare, sizeof bare, "%s%s%s", node ? node : "", node ? "@" : "", domain);
    snprintf(full, sizeof full, "%s%s%s", bare, resource ? "/" : "", resource ? resource : "");
    assert_opt_string(j.node, node, "localpart", in);
    assert_opt_string(j.domain, domain, "domainpart", in);
    assert_opt_string(j.resource, resource, "resourcepart", in);
    assert_opt_string(j.bare, bare, "bare", in);
    assert_opt_string(j.full, full, "full", in);
    hearth_jid_clear(&j);
    assert_zeroed(&j);
}

static void check_parse(const char *in, const char *node, const char *domain, const char *resource)
{
    check_parse_len(in, strlen(in), node, domain, resource);
}

static void check_reject_len(const char *in, size_t len, const char *want_reason)
{
    hearth_jid_t j;
    const char *reason = NULL;
    int rc;

    memset(&j, 0xa5, sizeof j); /* parse must zero whatever was there */
    rc = hearth_jid_parse(in, len, &j, &reason);
    if (rc == 0) {
        char got[4096];
        snprintf(got, sizeof got, "%s", j.full);
        hearth_jid_clear(&j);
        fail_msg("%.80s: accepted as \"%.80s\", expected \"%s\"", in, got, want_reason);
    }
    assert_int_equal(rc, HEARTH_EINVAL);
    assert_zeroed(&j);
    assert_non_null(reason);
    if (strcmp(reason, want_reason) != 0)
        fail_msg("%.80s: reason \"%s\", expected \"%s\"", in, reason, want_reason);
    /* A NULL reason pointer is allowed. */
    assert_int_equal(hearth_jid_parse(in, len, &j, NULL), HEARTH_EINVAL);
    assert_zeroed(&j);
}

static void check_reject(const char *in, const char *want_reason)
{
    check_reject_len(in, strlen(in), want_reason);
}

/* dst = unit repeated n times; dst must be large enough. */
static char *repeat(char *dst, const char *unit, size_t n)
{
    size_t ul = strlen(unit);
    for (size_t i = 0; i < n; i++)
        memcpy(dst + i * ul, unit, ul);
    dst[n * ul] = '\0';
    return dst;
}

/* A hostname of exactly len bytes (len >= 1): labels of 63 'a' (the last shorter), dotted. */
static char *hostname_of(char *dst, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t label = len - i < 63 ? len - i : 63;
        memset(dst + i, 'a', label);
        i += label;
        if (i < len) {
            if (len - i == 1) {
                /* Never end in a dot or an empty label: shift one byte into this label. */
                dst[i - 1] = '.';
                dst[i] = 'b';
                i++;
                break;
            }
            dst[i++] = '.';
        }
    }
    dst[len] = '\0';
    return dst;
}

/* --- RFC 7622 section 3.5 ------------------------------------------------------------------- */

static void test_rfc7622_valid(void **state)
{
    (void)state;
    check_parse("juliet@example.com", "juliet", "example.com", NULL);
    check_parse("juliet@example.com/foo", "juliet", "example.com", "foo");
    check_parse("juliet@example.com/foo bar", "juliet", "example.com", "foo bar");
    check_parse("juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar");
    check_parse("foo\\20bar@example.com", "foo\\20bar", "example.com", NULL);
    check_parse("fussball@example.com", "fussball", "example.com", NULL);
    /* stringprep's case folding maps U+00DF to "ss" (PRECIS would keep it). */
    check_parse("fu\xc3\x9f"
                "ball@example.com",
                "fussball", "example.com", NULL);
    check_parse("\xcf\x80@example.com", "\xcf\x80", "example.com", NULL); /* π */
    /* Σ folds to σ; stringprep also folds final ς to σ (PRECIS keeps the three apart). */
    check_parse("\xce\xa3@example.com/foo", "\xcf\x83", "example.com", "foo");
    check_parse("\xcf\x83@example.com/foo", "\xcf\x83", "example.com", "foo");
    check_parse("\xcf\x82@example.com/foo", "\xcf\x83", "example.com", "foo");
    check_parse("king@example.com/\xe2\x99\x9a", "king", "example.com", "\xe2\x99\x9a"); /* ♚ */
    check_parse("example.com", NULL, "example.com", NULL);
    check_parse("example.com/foobar", NULL, "example.com", "foobar");
    check_parse("a.example.com/b@example.net", NULL, "a.example.com", "b@example.net");
}

static void test_rfc7622_invalid(void **state)
{
    (void)state;
    check_reject("\"juliet\"@example.com", "localpart contains a prohibited character");
    check_reject("foo bar@example.com", "localpart contains a prohibited character");
    check_reject("juliet@example.com/", "empty resourcepart");
    check_reject("@example.com/", "empty localpart");
    check_reject("juliet@", "empty domainpart");
    check_reject("/foobar", "empty domainpart");
}

/* Two of RFC 7622's invalid examples are PRECIS rules; nodeprep, what servers deploy, accepts
 * them: NFKC turns U+2163 ROMAN NUMERAL FOUR into "IV", and symbols are allowed. */
static void test_rfc7622_precis_only_rules(void **state)
{
    (void)state;
    check_parse("henry\xe2\x85\xa3@example.com", "henryiv", "example.com", NULL);
    check_parse("\xe2\x99\x9a@example.com", "\xe2\x99\x9a", "example.com", NULL);
}

/* --- preparation ---------------------------------------------------------------------------- */

static void test_case_folding(void **state)
{
    (void)state;
    check_parse("Juliet@Example.COM/Balcony", "juliet", "example.com", "Balcony");
    check_parse("\xc3\x84"
                "B@Ex.com",
                "\xc3\xa4"
                "b",
                "ex.com", NULL); /* ÄB -> äb */
    check_parse("EXAMPLE.COM/R", NULL, "example.com", "R");
    check_parse("user@B\xc3\x9c"
                "CHER.example",
                "user",
                "b\xc3\xbc"
                "cher.example",
                NULL); /* BÜCHER -> bücher */
    /* Fullwidth letters are NFKC-normalised in every part. */
    check_parse("\xef\xbc\xa1@example.com/\xef\xbc\xa1", "a", "example.com", "A");
    /* U+00AD SOFT HYPHEN and U+200B ZERO WIDTH SPACE map to nothing. */
    check_parse("ju\xc2\xad"
                "liet@exam\xe2\x80\x8bple.com",
                "juliet", "example.com", NULL);
}

static void test_single_part_prep(void **state)
{
    char *out = (char *)1;
    const char *reason = NULL;
    (void)state;

    assert_int_equal(hearth_jid_nodeprep("\xc3\x84"
                                         "B",
                                         3, &out, &reason),
                     0);
    assert_string_equal(out, "\xc3\xa4"
                             "b");
    free(out);
    assert_int_equal(hearth_jid_nameprep("Example.COM.", 12, &out, &reason), 0);
    assert_string_equal(out, "example.com");
    free(out);
    assert_int_equal(hearth_jid_nameprep("[::FFFF:1.2.3.4]", 16, &out, &reason), 0);
    assert_string_equal(out, "[::ffff:1.2.3.4]");
    free(out);
    assert_int_equal(hearth_jid_resourceprep("Foo Bar/@", 9, &out, &reason), 0);
    assert_string_equal(out, "Foo Bar/@");
    free(out);
    /* Only len bytes are read. */
    assert_int_equal(hearth_jid_nodeprep("abc@def", 3, &out, &reason), 0);
    assert_string_equal(out, "abc");
    free(out);

    out = (char *)1;
    assert_int_equal(hearth_jid_nodeprep("", 0, &out, &reason), HEARTH_EINVAL);
    assert_null(out);
    assert_string_equal(reason, "empty localpart");
    assert_int_equal(hearth_jid_nameprep("", 0, &out, &reason), HEARTH_EINVAL);
    assert_string_equal(reason, "empty domainpart");
    assert_int_equal(hearth_jid_resourceprep("", 0, &out, &reason), HEARTH_EINVAL);
    assert_string_equal(reason, "empty resourcepart");
    assert_int_equal(hearth_jid_nameprep("a@b", 3, &out, NULL), HEARTH_EINVAL);
    assert_null(out);
    assert_int_equal(hearth_jid_resourceprep("\xff", 1, &out, &reason), HEARTH_EINVAL);
    assert_string_equal(reason, "invalid UTF-8");
    /* A part made only of mapped-to-nothing code points is empty after preparation. */
    assert_int_equal(hearth_jid_nodeprep("\xc2\xad", 2, &out, &reason), HEARTH_EINVAL);
    assert_string_equal(reason, "empty localpart");
}

/* --- lengths -------------------------------------------------------------------------------- */

static void test_localpart_length(void **state)
{
    static char node[4096], in[8192], want[4096];
    (void)state;

    repeat(node, "a", 1023);
    snprintf(in, sizeof in, "%s@example.com", node);
    check_parse(in, node, "example.com", NULL);
    repeat(node, "a", 1024);
    snprintf(in, sizeof in, "%s@example.com", node);
    check_reject(in, "localpart too long");

    /* The limit applies after preparation: ß becomes "ss". */
    repeat(node, "\xc3\x9f", 511);
    strcat(node, "a");
    snprintf(in, sizeof in, "%s@example.com", node);
    repeat(want, "ss", 511);
    strcat(want, "a");
    check_parse(in, want, "example.com", NULL);
    repeat(node, "\xc3\x9f", 512); /* 1024 bytes in, 1024 out */
    snprintf(in, sizeof in, "%s@example.com", node);
    check_reject(in, "localpart too long");

    /* More than 1023 bytes in, but soft hyphens map to nothing: 1023 out. */
    repeat(node, "a", 1023);
    repeat(node + 1023, "\xc2\xad", 10);
    snprintf(in, sizeof in, "%s@example.com", node);
    repeat(want, "a", 1023);
    check_parse(in, want, "example.com", NULL);
}

static void test_domainpart_length(void **state)
{
    static char dom[4096], in[8192];
    (void)state;

    hostname_of(dom, 1023);
    assert_int_equal(strlen(dom), 1023);
    check_parse(dom, NULL, dom, NULL);
    snprintf(in, sizeof in, "u@%s./r", dom); /* trailing dot beyond the limit is removed */
    check_parse(in, "u", dom, "r");
    hostname_of(dom, 1024);
    assert_int_equal(strlen(dom), 1024);
    check_reject(dom, "domainpart too long");
    snprintf(in, sizeof in, "u@%s/r", dom);
    check_reject(in, "domainpart too long");

    /* Labels: 63 bytes is the DNS limit. */
    repeat(dom, "a", 63);
    strcat(dom, ".com");
    check_parse(dom, NULL, dom, NULL);
    repeat(dom, "a", 64);
    strcat(dom, ".com");
    check_reject(dom, "domainpart label too long");
    /* For a U-label the 63 bytes bound its A-label ("xn--..."), what DNS carries: 40 x ü is
     * 80 bytes of UTF-8 but a short A-label; 63 x ü has an A-label over 63 bytes. */
    repeat(dom, "\xc3\xbc", 40);
    strcat(dom, ".com");
    check_parse(dom, NULL, dom, NULL);
    repeat(dom, "\xc3\xbc", 63);
    strcat(dom, ".com");
    check_reject(dom, "domainpart label too long");
}

static void test_resourcepart_length(void **state)
{
    static char res[4096], in[8192];
    (void)state;

    repeat(res, "R", 1023);
    snprintf(in, sizeof in, "u@example.com/%s", res);
    check_parse(in, "u", "example.com", res);
    repeat(res, "R", 1024);
    snprintf(in, sizeof in, "u@example.com/%s", res);
    check_reject(in, "resourcepart too long");
    /* Multibyte: 341 x € (3 bytes) = 1023. */
    repeat(res, "\xe2\x82\xac", 341);
    snprintf(in, sizeof in, "example.com/%s", res);
    check_parse(in, NULL, "example.com", res);
    repeat(res, "\xe2\x82\xac", 342);
    snprintf(in, sizeof in, "example.com/%s", res);
    check_reject(in, "resourcepart too long");
}

static void test_input_length(void **state)
{
    static char node[1100], dom[1100], res[1100], in[4096];
    (void)state;

    /* 1023 + 1 + 1023 + 1 + 1023 = 3071: the largest input, every part at its limit. */
    repeat(node, "n", 1023);
    hostname_of(dom, 1023);
    repeat(res, "r", 1023);
    snprintf(in, sizeof in, "%s@%s/%s", node, dom, res);
    assert_int_equal(strlen(in), HEARTH_JID_INPUT_MAX);
    check_parse(in, node, dom, res);
    /* One more byte is refused before any preparation, whatever it holds. */
    strcat(in, "r");
    check_reject(in, "JID too long");
    memset(in, 0xff, sizeof in);
    check_reject_len(in, sizeof in, "JID too long");
}

/* --- structure ------------------------------------------------------------------------------ */

static void test_separators(void **state)
{
    (void)state;
    check_parse("a/b@c", NULL, "a", "b@c");
    check_parse("a@b/c/d", "a", "b", "c/d");
    check_parse("a@b/c@d/e", "a", "b", "c@d/e");
    check_parse("a@b//", "a", "b", "/");
    check_reject("a@b@c", "domainpart is not a valid hostname");
    check_reject("@d", "empty localpart");
    check_reject("@", "empty localpart");
    check_reject("d/", "empty resourcepart");
    check_reject("a@d/", "empty resourcepart");
    check_reject("a@/r", "empty domainpart");
    check_reject("/", "empty domainpart");
    check_reject("", "empty domainpart");
    check_reject_len(NULL, 0, "empty domainpart");
    /* Only len bytes count. */
    check_parse_len("a@b/cdef", 5, "a", "b", "c");
}

static void test_trailing_dot(void **state)
{
    (void)state;
    check_parse("juliet@example.com./r", "juliet", "example.com", "r");
    check_parse("example.com.", NULL, "example.com", NULL);
    check_parse("Example.COM.", NULL, "example.com", NULL);
    check_reject("example.com..", "domainpart contains an empty label");
    check_reject("a@.", "empty domainpart");
    check_reject(".", "empty domainpart");
    check_reject(".example.com", "domainpart contains an empty label");
    check_reject("example..com", "domainpart contains an empty label");
    /* Ideographic and fullwidth full stops separate labels too (RFC 3490 section 3.1). */
    check_parse("u@example\xe3\x80\x82"
                "com",
                "u", "example.com", NULL);
    check_parse("u@example\xef\xbc\x8e"
                "com\xef\xbd\xa1",
                "u", "example.com", NULL);
}

static void test_ip_literals(void **state)
{
    (void)state;
    check_parse("[::1]", NULL, "[::1]", NULL);
    check_parse("user@[2001:DB8::1]/Res", "user", "[2001:db8::1]", "Res");
    /* Accepted as written, not canonicalised. */
    check_parse("[2001:0db8:0000:0000:0000:0000:0000:0001]", NULL,
                "[2001:0db8:0000:0000:0000:0000:0000:0001]", NULL);
    check_parse("[::ffff:192.0.2.1]", NULL, "[::ffff:192.0.2.1]", NULL);
    check_parse("192.0.2.1", NULL, "192.0.2.1", NULL);
    check_parse("u@192.0.2.1/r", "u", "192.0.2.1", "r");
    check_parse("192.0.2.1.", NULL, "192.0.2.1", NULL);
    check_reject("[::1", "domainpart is not a valid IPv6 literal");
    check_reject("[]", "domainpart is not a valid IPv6 literal");
    check_reject("[", "domainpart is not a valid IPv6 literal");
    check_reject("[example.com]", "domainpart is not a valid IPv6 literal");
    check_reject("[192.0.2.1]", "domainpart is not a valid IPv6 literal");
    check_reject("[fe80::1%eth0]", "domainpart is not a valid IPv6 literal");
    check_reject("[::1].", "domainpart is not a valid IPv6 literal");
    check_reject("[1:2:3:4:5:6:7:8:9]", "domainpart is not a valid IPv6 literal");
    check_reject("::1", "domainpart is not a valid hostname");
    check_reject("192.0.2.256", "domainpart is not a valid hostname");
    check_reject("example.123", "domainpart is not a valid hostname");
}

static void test_prohibited(void **state)
{
    static const char *const node_bad[] = {"a\"b", "a&b", "a'b", "a/b",  "a:b",   "a<b",
                                           "a>b",  "a@b", "a b", "a\tb", "a\x7f", "\xef\xbf\xbf"};
    char *out = NULL;
    const char *reason = NULL;
    (void)state;

    for (size_t i = 0; i < sizeof node_bad / sizeof node_bad[0]; i++) {
        int rc = hearth_jid_nodeprep(node_bad[i], strlen(node_bad[i]), &out, &reason);
        if (rc != HEARTH_EINVAL)
            fail_msg("nodeprep accepted \"%s\"", node_bad[i]);
        assert_null(out);
        assert_string_equal(reason, "localpart contains a prohibited character");
    }
    check_reject("a&b@example.com", "localpart contains a prohibited character");
    check_reject("a:b@example.com", "localpart contains a prohibited character");
    check_reject("a<b>@example.com", "localpart contains a prohibited character");
    check_reject("'a'@example.com", "localpart contains a prohibited character");
    /* Resourcepart: ASCII controls, non-characters, private use; spaces are fine. */
    check_reject("u@example.com/a\x01", "resourcepart contains a prohibited character");
    check_reject("u@example.com/a\x7f", "resourcepart contains a prohibited character");
    check_reject("u@example.com/\xef\xbf\xbf", "resourcepart contains a prohibited character");
    check_reject("u@example.com/\xee\x80\x80", "resourcepart contains a prohibited character");
    /* U+3000 IDEOGRAPHIC SPACE is NFKC-mapped to a space before the prohibition check: allowed
     * in a resourcepart, prohibited in a localpart. */
    check_parse("u@example.com/\xe3\x80\x80", "u", "example.com", " ");
    check_reject("\xe3\x80\x80@example.com", "localpart contains a prohibited character");
    check_parse("u@example.com/ a b ", "u", "example.com", " a b ");
    /* Domainpart: nameprep's prohibitions, then the hostname rules for ASCII. */
    check_reject("u@exa\xc2\x85mple.com", "domainpart contains a prohibited character");
    check_reject("exa mple.com", "domainpart is not a valid hostname");
    check_reject("exa_mple.com", "domainpart is not a valid hostname");
    check_reject("-example.com", "domainpart is not a valid hostname");
    check_reject("example-.com", "domainpart is not a valid hostname");
    check_reject("exam:ple.com", "domainpart is not a valid hostname");
    check_reject("exa\x01mple.com", "domainpart is not a valid hostname");
    check_reject("b\xc3\xbc"
                 "cher_.example",
                 "domainpart is not a valid hostname");
    check_parse("ex-am-ple.com", NULL, "ex-am-ple.com", NULL);
    check_parse("xn--bcher-kva.example", NULL, "xn--bcher-kva.example", NULL);
    /* Bidirectional rules: Hebrew with Latin, or not ending in a right-to-left character. */
    check_reject("\xd7\x90"
                 "a@example.com",
                 "localpart violates the bidirectional text rules");
    check_reject("u@example.com/\xd7\x90"
                 "1",
                 "resourcepart violates the bidirectional text rules");
    check_parse("\xd7\x90\xd7\x91@example.com", "\xd7\x90\xd7\x91", "example.com", NULL);
}

static void test_invalid_utf8(void **state)
{
    static const char *const bad[] = {
        "\xff@example.com",                   /* never valid */
        "a@example.com/\xc3",                 /* truncated */
        "\xc3(@example.com",                  /* bad continuation */
        "\xc0\xaf@example.com",               /* overlong '/' */
        "\xe0\x80\xaf@example.com",           /* overlong, 3 bytes */
        "\xed\xa0\x80@example.com",           /* UTF-16 surrogate */
        "u@example.com/\xf4\x90\x80\x80",     /* above U+10FFFF */
        "u@example.com/\xf8\x88\x80\x80\x80", /* 5-byte form */
        "u@exam\x80ple.com",                  /* stray continuation */
    };
    (void)state;

    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        check_reject(bad[i], "invalid UTF-8");
    check_reject_len("a\0b@example.com", 15, "JID contains a NUL byte");
    check_reject_len("a@example.com/\0", 15, "JID contains a NUL byte");
    /* Valid 4-byte sequence (U+1F600) is fine in a resource. */
    check_parse("u@example.com/\xf0\x9f\x98\x80", "u", "example.com", "\xf0\x9f\x98\x80");
}

/* --- building, copying, comparing ----------------------------------------------------------- */

static void test_make(void **state)
{
    hearth_jid_t j;
    const char *reason = NULL;
    (void)state;

    assert_int_equal(hearth_jid_make("Juliet", "Example.COM.", "Balcony", &j, &reason), 0);
    assert_string_equal(j.full, "juliet@example.com/Balcony");
    assert_string_equal(j.bare, "juliet@example.com");
    assert_string_equal(j.node, "juliet");
    assert_string_equal(j.domain, "example.com");
    assert_string_equal(j.resource, "Balcony");
    hearth_jid_clear(&j);

    assert_int_equal(hearth_jid_make(NULL, "example.com", NULL, &j, &reason), 0);
    assert_string_equal(j.full, "example.com");
    assert_string_equal(j.bare, "example.com");
    assert_null(j.node);
    assert_null(j.resource);
    hearth_jid_clear(&j);

    /* Parts are not split again: '@' and '/' belong to the part they are given in. */
    assert_int_equal(hearth_jid_make(NULL, "example.com", "a@b/c", &j, &reason), 0);
    assert_string_equal(j.full, "example.com/a@b/c");
    hearth_jid_clear(&j);
    assert_int_equal(hearth_jid_make("a@b", "example.com", NULL, &j, &reason), HEARTH_EINVAL);
    assert_string_equal(reason, "localpart contains a prohibited character");
    assert_zeroed(&j);
    assert_int_equal(hearth_jid_make(NULL, "a/b", NULL, &j, &reason), HEARTH_EINVAL);
    assert_string_equal(reason, "domainpart is not a valid hostname");

    assert_int_equal(hearth_jid_make("", "example.com", NULL, &j, &reason), HEARTH_EINVAL);
    assert_string_equal(reason, "empty localpart");
    assert_zeroed(&j);
    assert_int_equal(hearth_jid_make("u", "example.com", "", &j, &reason), HEARTH_EINVAL);
    assert_string_equal(reason, "empty resourcepart");
    assert_int_equal(hearth_jid_make("u", NULL, "r", &j, &reason), HEARTH_EINVAL);
    assert_string_equal(reason, "empty domainpart");
    assert_int_equal(hearth_jid_make("u", "", NULL, &j, &reason), HEARTH_EINVAL);
    assert_string_equal(reason, "empty domainpart");

    {
        static char big[4000];
        repeat(big, "a", 3500);
        assert_int_equal(hearth_jid_make(big, "example.com", NULL, &j, &reason), HEARTH_EINVAL);
        assert_string_equal(reason, "localpart too long");
        assert_int_equal(hearth_jid_make("u", "example.com", big, &j, &reason), HEARTH_EINVAL);
        assert_string_equal(reason, "resourcepart too long");
        assert_int_equal(hearth_jid_make(NULL, big, NULL, &j, &reason), HEARTH_EINVAL);
        assert_string_equal(reason, "domainpart too long");
    }
}

static hearth_jid_t parse_ok(const char *s)
{
    hearth_jid_t j;
    const char *reason = NULL;
    if (hearth_jid_parse(s, strlen(s), &j, &reason) != 0)
        fail_msg("%s: %s", s, reason);
    return j;
}

static void test_equal(void **state)
{
    hearth_jid_t a = parse_ok("Juliet@Example.com/Balcony");
    hearth_jid_t b = parse_ok("juliet@EXAMPLE.com./Balcony");
    hearth_jid_t c = parse_ok("juliet@example.com/balcony");
    hearth_jid_t d = parse_ok("juliet@example.com");
    hearth_jid_t e = parse_ok("example.com");
    hearth_jid_t f = parse_ok("fu\xc3\x9f"
                              "ball@example.com");
    hearth_jid_t g = parse_ok("FUSSBALL@example.com");
    hearth_jid_t h = parse_ok("example.com/juliet");
    hearth_jid_t z1 = HEARTH_JID_INIT, z2 = HEARTH_JID_INIT;
    (void)state;

    assert_true(hearth_jid_equal(&a, &b));
    assert_true(hearth_jid_bare_equal(&a, &b));
    assert_false(hearth_jid_equal(&a, &c)); /* resource is case-sensitive */
    assert_true(hearth_jid_bare_equal(&a, &c));
    assert_false(hearth_jid_equal(&a, &d));
    assert_true(hearth_jid_bare_equal(&a, &d));
    assert_false(hearth_jid_bare_equal(&d, &e));
    assert_false(hearth_jid_equal(&d, &e));
    assert_true(hearth_jid_equal(&f, &g));
    assert_true(hearth_jid_bare_equal(&e, &h));
    assert_false(hearth_jid_equal(&e, &h));
    assert_true(hearth_jid_equal(&a, &a));
    assert_true(hearth_jid_equal(&z1, &z2));
    assert_false(hearth_jid_equal(&z1, &a));
    assert_false(hearth_jid_bare_equal(&a, &z1));

    hearth_jid_clear(&a);
    hearth_jid_clear(&b);
    hearth_jid_clear(&c);
    hearth_jid_clear(&d);
    hearth_jid_clear(&e);
    hearth_jid_clear(&f);
    hearth_jid_clear(&g);
    hearth_jid_clear(&h);
}

static void test_copy_and_bare(void **state)
{
    hearth_jid_t a = parse_ok("Juliet@Example.com/Balcony");
    hearth_jid_t e = parse_ok("example.com/r");
    hearth_jid_t c, b, z = HEARTH_JID_INIT, zc;
    (void)state;

    assert_int_equal(hearth_jid_copy(&a, &c), 0);
    assert_true(hearth_jid_equal(&a, &c));
    assert_ptr_not_equal(a.full, c.full);
    assert_ptr_not_equal(a.node, c.node);
    assert_string_equal(c.node, "juliet");
    assert_string_equal(c.domain, "example.com");
    assert_string_equal(c.resource, "Balcony");
    assert_string_equal(c.bare, "juliet@example.com");
    hearth_jid_clear(&a); /* the copy stands alone */
    assert_string_equal(c.full, "juliet@example.com/Balcony");

    assert_int_equal(hearth_jid_to_bare(&c, &b), 0);
    assert_string_equal(b.full, "juliet@example.com");
    assert_string_equal(b.bare, "juliet@example.com");
    assert_string_equal(b.node, "juliet");
    assert_string_equal(b.domain, "example.com");
    assert_null(b.resource);
    assert_true(hearth_jid_bare_equal(&b, &c));
    assert_false(hearth_jid_equal(&b, &c));

    /* In place. */
    assert_int_equal(hearth_jid_to_bare(&c, &c), 0);
    assert_string_equal(c.full, "juliet@example.com");
    assert_null(c.resource);
    assert_true(hearth_jid_equal(&b, &c));
    assert_int_equal(hearth_jid_copy(&c, &c), 0);
    assert_true(hearth_jid_equal(&b, &c));

    assert_int_equal(hearth_jid_to_bare(&e, &e), 0);
    assert_string_equal(e.full, "example.com");
    assert_null(e.node);
    assert_null(e.resource);

    /* A zeroed JID copies to a zeroed JID. */
    memset(&zc, 0x5a, sizeof zc);
    assert_int_equal(hearth_jid_copy(&z, &zc), 0);
    assert_zeroed(&zc);
    memset(&zc, 0x5a, sizeof zc);
    assert_int_equal(hearth_jid_to_bare(&z, &zc), 0);
    assert_zeroed(&zc);

    hearth_jid_clear(&b);
    hearth_jid_clear(&c);
    hearth_jid_clear(&e);
}

static void test_clear(void **state)
{
    hearth_jid_t j = HEARTH_JID_INIT;
    (void)state;

    hearth_jid_clear(&j);
    hearth_jid_clear(&j);
    assert_zeroed(&j);
    j = parse_ok("a@b/c");
    hearth_jid_clear(&j);
    assert_zeroed(&j);
    hearth_jid_clear(&j);
    hearth_jid_clear(NULL);
}

static void test_names(void **state)
{
    assert_int_equal(hearth_jid_names("bob@example.org", "bob@example.org"), 1);
    assert_int_equal(hearth_jid_names("BOB@Example.ORG", "bob@example.org"), 1);
    assert_int_equal(hearth_jid_names("bob@example.org.", "bob@example.org"), 1);
    assert_int_equal(hearth_jid_names("bob@example.org/Phone", "bob@example.org"), 1);
    assert_int_equal(hearth_jid_names("EXAMPLE.org.", "example.org"), 1);
    assert_int_equal(hearth_jid_names("fu\xc3\x9f"
                                      "ball@example.com",
                                      "fussball@example.com"),
                     1);
    assert_int_equal(hearth_jid_names("room@muc.example/", "room@muc.example") < 0, 1);
    assert_int_equal(hearth_jid_names("alice@example.org", "bob@example.org"), 0);
    assert_int_equal(hearth_jid_names("example.org", "bob@example.org"), 0);
    assert_true(hearth_jid_names("a@@b", "bob@example.org") < 0);
    assert_true(hearth_jid_names("", "bob@example.org") < 0);
}

/* lib/jid.c prepares printable ASCII itself, without libidn: for every string of one and two
 * printable ASCII characters, in each part, the result must be libidn's. */
static int oracle(int part, const char *in, char *out)
{
    snprintf(out, 16, "%s", in);
    int rc = part == 0   ? stringprep_xmpp_nodeprep(out, 16)
             : part == 1 ? stringprep_nameprep(out, 16)
                         : stringprep_xmpp_resourceprep(out, 16);
    return rc == STRINGPREP_OK && out[0] != '\0' ? 0 : -1;
}

static void check_ascii_string(const char *str)
{
    char jid[64], want[16];
    hearth_jid_t j;
    /* localpart: '@' and '/' would split the JID elsewhere */
    if (!strpbrk(str, "@/")) {
        snprintf(jid, sizeof jid, "%s@example.org", str);
        int ok = oracle(0, str, want) == 0;
        int rc = hearth_jid_parse(jid, strlen(jid), &j, NULL);
        if (ok != (rc == 0))
            fail_msg("localpart \"%s\": libidn %s, hearth %d", str, ok ? "accepts" : "refuses", rc);
        if (rc == 0)
            assert_string_equal(j.node, want);
        hearth_jid_clear(&j);
    }
    snprintf(jid, sizeof jid, "example.org/%s", str);
    int ok = oracle(2, str, want) == 0;
    int rc = hearth_jid_parse(jid, strlen(jid), &j, NULL);
    if (ok != (rc == 0))
        fail_msg("resourcepart \"%s\": libidn %s, hearth %d", str, ok ? "accepts" : "refuses", rc);
    if (rc == 0)
        assert_string_equal(j.resource, want);
    hearth_jid_clear(&j);
    /* domainpart: the hostname rules refuse more than nameprep does; what passes must match */
    if (!strpbrk(str, "@/[")) {
        snprintf(jid, sizeof jid, "x%s", str);
        char dwant[16];
        ok = oracle(1, jid, dwant) == 0;
        rc = hearth_jid_parse(jid, strlen(jid), &j, NULL);
        if (rc == 0) {
            assert_true(ok);
            size_t n = strlen(dwant);
            if (n && dwant[n - 1] == '.')
                dwant[n - 1] = '\0';
            assert_string_equal(j.domain, dwant);
        }
        hearth_jid_clear(&j);
    }
}

static void test_ascii_matches_libidn(void **state)
{
    (void)state;
    char s[3] = {0};
    for (int a = 0x20; a <= 0x7e; a++) {
        s[0] = (char)a;
        s[1] = '\0';
        check_ascii_string(s);
        for (int b = 0x20; b <= 0x7e; b++) {
            s[1] = (char)b;
            check_ascii_string(s);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_rfc7622_valid),
        cmocka_unit_test(test_rfc7622_invalid),
        cmocka_unit_test(test_rfc7622_precis_only_rules),
        cmocka_unit_test(test_case_folding),
        cmocka_unit_test(test_single_part_prep),
        cmocka_unit_test(test_localpart_length),
        cmocka_unit_test(test_domainpart_length),
        cmocka_unit_test(test_resourcepart_length),
        cmocka_unit_test(test_input_length),
        cmocka_unit_test(test_separators),
        cmocka_unit_test(test_trailing_dot),
        cmocka_unit_test(test_ip_literals),
        cmocka_unit_test(test_prohibited),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_make),
        cmocka_unit_test(test_equal),
        cmocka_unit_test(test_copy_and_bare),
        cmocka_unit_test(test_clear),
        cmocka_unit_test(test_ascii_matches_libidn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
