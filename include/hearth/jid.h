/* XMPP addresses (JIDs): parsing, stringprep preparation (nodeprep, nameprep, resourceprep
 * through GNU libidn, as XEP-0479 keeps them) with RFC 7622's structure and length rules, and
 * comparison. Pure functions over memory: no I/O, no globals, safe from any thread. */
#ifndef HEARTH_JID_H
#define HEARTH_JID_H

#include <stddef.h>

#include "hearth/error.h"

/* The five strings share one allocation owned by the struct: read them, never free or replace
 * one of them; release the whole with hearth_jid_clear. */
typedef struct hearth_jid {
    char *node;     /* prepared localpart, NULL when absent */
    char *domain;   /* prepared domainpart (lowercase, no trailing dot), never NULL after success */
    char *resource; /* prepared resourcepart, NULL when absent */
    char *bare;     /* "node@domain" or "domain" */
    char *full;     /* bare, or "bare/resource" */
} hearth_jid_t;

#define HEARTH_JID_INIT                                                                            \
    {                                                                                              \
        0                                                                                          \
    }

/* Longest part, in bytes of UTF-8 after preparation (RFC 7622 section 3.1). */
#define HEARTH_JID_PART_MAX 1023
/* Longest input accepted, checked before any work: three parts at their maximum. */
#define HEARTH_JID_INPUT_MAX (3 * HEARTH_JID_PART_MAX + 2)

/* Parses and prepares s[0..len). On success fills *out (caller frees with hearth_jid_clear) and
 * returns 0. On failure returns HEARTH_EINVAL (or HEARTH_ENOMEM), leaves *out zeroed and sets
 * *reason (if non-NULL) to a static string. *out is overwritten: it must not hold a live JID. */
int hearth_jid_parse(const char *s, size_t len, hearth_jid_t *out,
                     const char **reason) HEARTH_MUST_CHECK;
/* Builds from NUL-terminated parts (node and resource may be NULL, meaning absent; an empty
 * string is an empty part and rejected), preparing each. Same contract as hearth_jid_parse. */
int hearth_jid_make(const char *node, const char *domain, const char *resource, hearth_jid_t *out,
                    const char **reason) HEARTH_MUST_CHECK;
/* Deep copy; out may be in. On failure (HEARTH_ENOMEM) *out is zeroed unless out == in. */
int hearth_jid_copy(const hearth_jid_t *in, hearth_jid_t *out) HEARTH_MUST_CHECK;
/* out = bare JID of in (no resource); out may be in. Failure as for hearth_jid_copy. */
int hearth_jid_to_bare(const hearth_jid_t *in, hearth_jid_t *out) HEARTH_MUST_CHECK;
/* Frees the parts, zeroes; safe on a zeroed struct. */
void hearth_jid_clear(hearth_jid_t *j);
/* Prepared forms compared bytewise: 1 when equal, else 0. Two zeroed structs are equal. */
int hearth_jid_equal(const hearth_jid_t *a, const hearth_jid_t *b);
int hearth_jid_bare_equal(const hearth_jid_t *a, const hearth_jid_t *b);
/* Whether two JID strings (each bare or full, as written on the wire) name the same bare JID
 * once prepared: "ROOM@MUC.EXAMPLE.", "room@muc.example/x" and "room@muc.example" do. 0 when
 * either is not a valid JID (or memory runs out), so a caller deciding whether an element
 * claims to come from a given entity should treat an invalid one by its own rule. */
int hearth_jid_same_bare(const char *a, const char *b);

/* Single-part preparation with every rule the part has inside a JID (not empty, valid UTF-8,
 * the profile's prohibitions, at most HEARTH_JID_PART_MAX bytes; for the domainpart also the
 * trailing dot, IP literals and hostname labels). malloc'd NUL-terminated result in *out (free
 * it); on failure *out is NULL and *reason (if non-NULL) a static string. */
int hearth_jid_nodeprep(const char *in, size_t len, char **out,
                        const char **reason) HEARTH_MUST_CHECK;
int hearth_jid_nameprep(const char *in, size_t len, char **out,
                        const char **reason) HEARTH_MUST_CHECK;
int hearth_jid_resourceprep(const char *in, size_t len, char **out,
                            const char **reason) HEARTH_MUST_CHECK;

#endif
