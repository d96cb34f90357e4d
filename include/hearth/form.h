/* XEP-0004 data forms, once for the library and hearthd: a parser from an <x
 * xmlns='jabber:x:data'/> tree into a bounded struct, lookups by var, and builders that write a
 * form as a tree or as bytes (escaped by the serialiser). Everything lives in the caller's arena;
 * nothing here frees. Kept: the form's type, title and instructions (the first of each), and per
 * field var, type, label, <required/>, its values and its options. Not kept: <desc/>, <reported/>
 * and <item/> (multi-item results), and elements of other namespaces (extensions): they are
 * skipped. */
#ifndef HEARTH_FORM_H
#define HEARTH_FORM_H

#include <stddef.h>

#include "hearth/buf.h"
#include "hearth/error.h"
#include "hearth/xml.h"

/* Parse bounds. Past any of them hearth_form_parse fails with HEARTH_ELIMIT and names the bound
 * in *why; the caller answers the stanza that carried the form (MUC: not-acceptable, the archive:
 * bad-request). The bytes of everything are also bounded by the stanza the form came in. */
#define HEARTH_FORM_FIELDS_MAX                                                                     \
    256                             /* elements directly inside <x/>: fields, title, instructions, \
                                       reported, items and extensions alike */
#define HEARTH_FORM_VALUES_MAX 256  /* <value/>s of one field */
#define HEARTH_FORM_OPTIONS_MAX 256 /* <option/>s of one field */
#define HEARTH_FORM_TEXT_MAX 65536  /* bytes of any one string: a value, var, type, label, title */

/* A limit of 0 takes its default (HEARTH_FORM_*_MAX); a caller with bounds of its own (MUC's
 * configuration form, whose owner list may be long) passes them here. */
typedef struct hearth_form_limits {
    size_t max_fields;
    size_t max_values;
    size_t max_options;
    size_t max_text;
} hearth_form_limits_t;

typedef enum hearth_form_type {
    HEARTH_FORM_UNTYPED = 0, /* no type attribute (XEP-0004 requires one; each use decides) */
    HEARTH_FORM_FORM,
    HEARTH_FORM_SUBMIT,
    HEARTH_FORM_CANCEL,
    HEARTH_FORM_RESULT,
    HEARTH_FORM_BADTYPE, /* a type XEP-0004 does not define */
} hearth_form_type_t;

typedef struct hearth_form_option {
    const char *label; /* NULL when absent */
    const char *value;
} hearth_form_option_t;

typedef struct hearth_form_field {
    const char *var;           /* NULL only for a field of type 'fixed' */
    const char *type;          /* as written; NULL when absent (text-single, XEP-0004 §3.3) */
    const char *label;         /* NULL when absent */
    int required;              /* it has <required/> */
    const char *const *values; /* the text of each <value/>, in order */
    size_t nvalues;
    const hearth_form_option_t *options;
    size_t noptions;
} hearth_form_field_t;

typedef struct hearth_form {
    hearth_form_type_t type;
    const char *title;                 /* NULL when absent */
    const char *instructions;          /* the first <instructions/>; NULL when absent */
    const hearth_form_field_t *fields; /* in document order, FORM_TYPE among them */
    size_t nfields;
} hearth_form_t;

/* The type named by s (a type attribute; NULL = none), and the attribute's value for t (NULL for
 * HEARTH_FORM_UNTYPED and HEARTH_FORM_BADTYPE). */
hearth_form_type_t hearth_form_type_parse(const char *s);
const char *hearth_form_type_name(hearth_form_type_t t);
/* The type of the form x without parsing it (x's type attribute). */
hearth_form_type_t hearth_form_type_of(const hearth_xml_node_t *x);

/* Reads the data form x into *out (strings in x's tree or copied into a: valid while both are).
 * limits NULL = the defaults. Returns 0; HEARTH_EINVAL when x is not <x/> in jabber:x:data or
 * breaks XEP-0004 (a field other than 'fixed' without var, an option without a value);
 * HEARTH_ELIMIT past a bound; HEARTH_ENOMEM. On failure *out is empty and *why (when why is not
 * NULL) a short static text for the error reply, NULL on ENOMEM. */
int hearth_form_parse(hearth_arena_t *a, const hearth_xml_node_t *x,
                      const hearth_form_limits_t *limits, hearth_form_t *out,
                      const char **why) HEARTH_MUST_CHECK;

/* The first field named var, or NULL. */
const hearth_form_field_t *hearth_form_field(const hearth_form_t *f, const char *var);
/* The first value of the first field named var; NULL when there is no such field or it has no
 * value (hearth_form_field tells the two apart). */
const char *hearth_form_value(const hearth_form_t *f, const char *var);
/* The form's FORM_TYPE (XEP-0068): hearth_form_value(f, "FORM_TYPE"). */
const char *hearth_form_form_type(const hearth_form_t *f);

/* Building as a tree: strings are copied into a and escaped when serialised. Each returns the
 * element it added, or NULL on ENOMEM or when its parent is NULL, so that a chain of calls
 * needs one check at its end. */
/* <x xmlns='jabber:x:data' type=T/>, the last child of parent unless parent is NULL. t is one of
 * the four types (else NULL). */
hearth_xml_node_t *hearth_form_new(hearth_arena_t *a, hearth_xml_node_t *parent,
                                   hearth_form_type_t t);
hearth_xml_node_t *hearth_form_add_title(hearth_arena_t *a, hearth_xml_node_t *x, const char *text);
hearth_xml_node_t *hearth_form_add_instructions(hearth_arena_t *a, hearth_xml_node_t *x,
                                                const char *text);
/* <field var type label> with a <value/> when value is not NULL; var, type and label are left
 * out when NULL, and written in that order. */
hearth_xml_node_t *hearth_form_add_field(hearth_arena_t *a, hearth_xml_node_t *x, const char *var,
                                         const char *type, const char *label, const char *value);
/* The hidden FORM_TYPE field with the value ns. */
hearth_xml_node_t *hearth_form_add_form_type(hearth_arena_t *a, hearth_xml_node_t *x,
                                             const char *ns);
/* These append to a field, in the order called. */
hearth_xml_node_t *hearth_form_add_value(hearth_arena_t *a, hearth_xml_node_t *field,
                                         const char *value);
/* <option label><value/></option> (label left out when NULL). */
hearth_xml_node_t *hearth_form_add_option(hearth_arena_t *a, hearth_xml_node_t *field,
                                          const char *label, const char *value);
hearth_xml_node_t *hearth_form_add_required(hearth_arena_t *a, hearth_xml_node_t *field);

/* The whole of f as a tree (fields in order; in each: <required/>, values, options, as
 * XEP-0004's schema orders them), the last child of parent unless parent is NULL. NULL on ENOMEM
 * or when f's type is not one of the four. */
hearth_xml_node_t *hearth_form_to_xml(hearth_arena_t *a, hearth_xml_node_t *parent,
                                      const hearth_form_t *f);
/* Appends f serialised to out, escaped, with xmlns='jabber:x:data' unless context_ns (the default
 * namespace where it is written; NULL = none) is that already. 0, HEARTH_EINVAL (a type not one of
 * the four) or HEARTH_ENOMEM; on error out is left as it was. */
int hearth_form_write(const hearth_form_t *f, const char *context_ns,
                      hearth_buf_t *out) HEARTH_MUST_CHECK;

#endif
