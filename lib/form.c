/* XEP-0004 data forms (include/hearth/form.h): the parser into a bounded struct, lookups, and the
 * builders. Works on trees in the caller's arena; touches nothing else. */
#include <string.h>

#include "hearth/form.h"

static const char *const TYPE_NAMES[] = {
    [HEARTH_FORM_FORM] = "form",
    [HEARTH_FORM_SUBMIT] = "submit",
    [HEARTH_FORM_CANCEL] = "cancel",
    [HEARTH_FORM_RESULT] = "result",
};

hearth_form_type_t hearth_form_type_parse(const char *s)
{
    if (!s)
        return HEARTH_FORM_UNTYPED;
    for (int t = HEARTH_FORM_FORM; t <= HEARTH_FORM_RESULT; t++)
        if (!strcmp(s, TYPE_NAMES[t]))
            return (hearth_form_type_t)t;
    return HEARTH_FORM_BADTYPE;
}

const char *hearth_form_type_name(hearth_form_type_t t)
{
    return t >= HEARTH_FORM_FORM && t <= HEARTH_FORM_RESULT ? TYPE_NAMES[t] : NULL;
}

hearth_form_type_t hearth_form_type_of(const hearth_xml_node_t *x)
{
    return x ? hearth_form_type_parse(hearth_xml_attr(x, "type")) : HEARTH_FORM_UNTYPED;
}

/* ---- parsing ---- */

typedef struct parse {
    hearth_arena_t *a;
    hearth_form_limits_t lim;
    const char *why;
} parse_t;

static int fail(parse_t *p, int rc, const char *why)
{
    p->why = why;
    return rc;
}

static int is_data(const hearth_xml_node_t *n, const char *name)
{
    return !strcmp(n->ns, HEARTH_NS_DATA) && !strcmp(n->name, name);
}

/* The direct text of n, NUL-terminated in the arena, within the text bound. */
static int text_of(parse_t *p, const hearth_xml_node_t *n, const char **out)
{
    size_t len = 0;
    for (const hearth_xml_node_t *c = n->children; c; c = c->next)
        if (c->type == HEARTH_XML_TEXT)
            len += c->text_len;
    if (len > p->lim.max_text)
        return fail(p, HEARTH_ELIMIT, "a value, label or title too long");
    char *s = hearth_arena_alloc(p->a, len + 1);
    if (!s)
        return fail(p, HEARTH_ENOMEM, NULL);
    size_t off = 0;
    for (const hearth_xml_node_t *c = n->children; c; c = c->next)
        if (c->type == HEARTH_XML_TEXT) {
            memcpy(s + off, c->text, c->text_len);
            off += c->text_len;
        }
    s[off] = '\0';
    *out = s;
    return 0;
}

/* An attribute within the text bound (NULL when absent). */
static int attr_of(parse_t *p, const hearth_xml_node_t *n, const char *name, const char **out)
{
    *out = hearth_xml_attr(n, name);
    if (*out && strlen(*out) > p->lim.max_text)
        return fail(p, HEARTH_ELIMIT, "a value, label or title too long");
    return 0;
}

static int parse_option(parse_t *p, const hearth_xml_node_t *o, hearth_form_option_t *out)
{
    int rc = attr_of(p, o, "label", &out->label);
    const hearth_xml_node_t *v = NULL;
    for (const hearth_xml_node_t *c = hearth_xml_first_element(o); c && !v;
         c = hearth_xml_next_element(c))
        if (is_data(c, "value"))
            v = c;
    if (!rc && !v)
        rc = fail(p, HEARTH_EINVAL, "an option without a value");
    return rc ?: text_of(p, v, &out->value);
}

static int parse_field(parse_t *p, const hearth_xml_node_t *f, hearth_form_field_t *out)
{
    int rc = attr_of(p, f, "var", &out->var);
    rc = rc ?: attr_of(p, f, "type", &out->type);
    rc = rc ?: attr_of(p, f, "label", &out->label);
    if (rc)
        return rc;
    if (!out->var && (!out->type || strcmp(out->type, "fixed")))
        return fail(p, HEARTH_EINVAL, "a field without var");
    size_t nv = 0, no = 0;
    for (const hearth_xml_node_t *c = hearth_xml_first_element(f); c;
         c = hearth_xml_next_element(c)) {
        if (is_data(c, "value") && ++nv > p->lim.max_values)
            return fail(p, HEARTH_ELIMIT, "too many values in a field");
        if (is_data(c, "option") && ++no > p->lim.max_options)
            return fail(p, HEARTH_ELIMIT, "too many options in a field");
    }
    const char **values = nv ? hearth_arena_alloc(p->a, nv * sizeof(*values)) : NULL;
    hearth_form_option_t *options = no ? hearth_arena_alloc(p->a, no * sizeof(*options)) : NULL;
    if ((nv && !values) || (no && !options))
        return fail(p, HEARTH_ENOMEM, NULL);
    size_t iv = 0, io = 0;
    for (const hearth_xml_node_t *c = hearth_xml_first_element(f); c && !rc;
         c = hearth_xml_next_element(c)) {
        if (is_data(c, "value"))
            rc = text_of(p, c, &values[iv++]);
        else if (is_data(c, "option"))
            rc = parse_option(p, c, &options[io++]);
        else if (is_data(c, "required"))
            out->required = 1;
    }
    out->values = values;
    out->nvalues = nv;
    out->options = options;
    out->noptions = no;
    return rc;
}

int hearth_form_parse(hearth_arena_t *a, const hearth_xml_node_t *x,
                      const hearth_form_limits_t *limits, hearth_form_t *out, const char **why)
{
    parse_t p = {.a = a};
    hearth_form_t f = {0};
    int rc = 0;
    if (limits)
        p.lim = *limits;
    p.lim.max_fields = p.lim.max_fields ? p.lim.max_fields : HEARTH_FORM_FIELDS_MAX;
    p.lim.max_values = p.lim.max_values ? p.lim.max_values : HEARTH_FORM_VALUES_MAX;
    p.lim.max_options = p.lim.max_options ? p.lim.max_options : HEARTH_FORM_OPTIONS_MAX;
    p.lim.max_text = p.lim.max_text ? p.lim.max_text : HEARTH_FORM_TEXT_MAX;
    if (!x || x->type != HEARTH_XML_ELEMENT || !is_data(x, "x"))
        rc = fail(&p, HEARTH_EINVAL, "not a data form");
    f.type = hearth_form_type_of(x);
    size_t nf = 0, children = 0;
    for (const hearth_xml_node_t *c = rc ? NULL : hearth_xml_first_element(x); c;
         c = hearth_xml_next_element(c)) {
        if (++children > p.lim.max_fields) {
            rc = fail(&p, HEARTH_ELIMIT, "too many fields");
            break;
        }
        nf += is_data(c, "field");
    }
    hearth_form_field_t *fields = NULL;
    if (!rc && nf && !(fields = hearth_arena_alloc(a, nf * sizeof(*fields))))
        rc = fail(&p, HEARTH_ENOMEM, NULL);
    size_t i = 0;
    for (const hearth_xml_node_t *c = rc ? NULL : hearth_xml_first_element(x); c && !rc;
         c = hearth_xml_next_element(c)) {
        if (is_data(c, "field")) {
            memset(&fields[i], 0, sizeof(fields[i]));
            rc = parse_field(&p, c, &fields[i++]);
        } else if (is_data(c, "title") && !f.title) {
            rc = text_of(&p, c, &f.title);
        } else if (is_data(c, "instructions") && !f.instructions) {
            rc = text_of(&p, c, &f.instructions);
        }
    }
    f.fields = fields;
    f.nfields = nf;
    if (rc)
        f = (hearth_form_t){0};
    *out = f;
    if (why)
        *why = rc ? p.why : NULL;
    return rc;
}

/* ---- lookups ---- */

const hearth_form_field_t *hearth_form_field(const hearth_form_t *f, const char *var)
{
    for (size_t i = 0; f && var && i < f->nfields; i++)
        if (f->fields[i].var && !strcmp(f->fields[i].var, var))
            return &f->fields[i];
    return NULL;
}

const char *hearth_form_value(const hearth_form_t *f, const char *var)
{
    const hearth_form_field_t *fd = hearth_form_field(f, var);
    return fd && fd->nvalues ? fd->values[0] : NULL;
}

const char *hearth_form_form_type(const hearth_form_t *f)
{
    return hearth_form_value(f, "FORM_TYPE");
}

/* ---- building ---- */

/* <name>text</name> in jabber:x:data as the last child of parent (<name></name> for "": the
 * bytes MUC always wrote). */
static hearth_xml_node_t *add_text_child(hearth_arena_t *a, hearth_xml_node_t *parent,
                                         const char *name, const char *text)
{
    hearth_xml_node_t *n = hearth_xml_add_child(a, parent, name, HEARTH_NS_DATA);
    if (n && text && !hearth_xml_add_text(a, n, text, strlen(text)))
        return NULL;
    return n;
}

hearth_xml_node_t *hearth_form_new(hearth_arena_t *a, hearth_xml_node_t *parent,
                                   hearth_form_type_t t)
{
    const char *type = hearth_form_type_name(t);
    if (!type)
        return NULL;
    hearth_xml_node_t *x = hearth_xml_new(a, "x", HEARTH_NS_DATA);
    if (!x || hearth_xml_set_attr(a, x, "type", type))
        return NULL;
    if (parent)
        hearth_xml_append(parent, x);
    return x;
}

hearth_xml_node_t *hearth_form_add_title(hearth_arena_t *a, hearth_xml_node_t *x, const char *text)
{
    return add_text_child(a, x, "title", text);
}

hearth_xml_node_t *hearth_form_add_instructions(hearth_arena_t *a, hearth_xml_node_t *x,
                                                const char *text)
{
    return add_text_child(a, x, "instructions", text);
}

hearth_xml_node_t *hearth_form_add_field(hearth_arena_t *a, hearth_xml_node_t *x, const char *var,
                                         const char *type, const char *label, const char *value)
{
    hearth_xml_node_t *f = hearth_xml_add_child(a, x, "field", HEARTH_NS_DATA);
    if (!f || (var && hearth_xml_set_attr(a, f, "var", var)) ||
        (type && hearth_xml_set_attr(a, f, "type", type)) ||
        (label && hearth_xml_set_attr(a, f, "label", label)))
        return NULL;
    if (value && !hearth_form_add_value(a, f, value))
        return NULL;
    return f;
}

hearth_xml_node_t *hearth_form_add_form_type(hearth_arena_t *a, hearth_xml_node_t *x,
                                             const char *ns)
{
    return hearth_form_add_field(a, x, "FORM_TYPE", "hidden", NULL, ns);
}

hearth_xml_node_t *hearth_form_add_value(hearth_arena_t *a, hearth_xml_node_t *field,
                                         const char *value)
{
    return add_text_child(a, field, "value", value ? value : "");
}

hearth_xml_node_t *hearth_form_add_option(hearth_arena_t *a, hearth_xml_node_t *field,
                                          const char *label, const char *value)
{
    hearth_xml_node_t *o = hearth_xml_add_child(a, field, "option", HEARTH_NS_DATA);
    if (!o || (label && hearth_xml_set_attr(a, o, "label", label)) ||
        !hearth_form_add_value(a, o, value))
        return NULL;
    return o;
}

hearth_xml_node_t *hearth_form_add_required(hearth_arena_t *a, hearth_xml_node_t *field)
{
    return hearth_xml_add_child(a, field, "required", HEARTH_NS_DATA);
}

static hearth_xml_node_t *field_to_xml(hearth_arena_t *a, hearth_xml_node_t *x,
                                       const hearth_form_field_t *fd)
{
    hearth_xml_node_t *f = hearth_form_add_field(a, x, fd->var, fd->type, fd->label, NULL);
    if (f && fd->required && !hearth_form_add_required(a, f))
        return NULL;
    for (size_t i = 0; f && i < fd->nvalues; i++)
        if (!hearth_form_add_value(a, f, fd->values[i]))
            return NULL;
    for (size_t i = 0; f && i < fd->noptions; i++)
        if (!hearth_form_add_option(a, f, fd->options[i].label, fd->options[i].value))
            return NULL;
    return f;
}

hearth_xml_node_t *hearth_form_to_xml(hearth_arena_t *a, hearth_xml_node_t *parent,
                                      const hearth_form_t *f)
{
    if (!f)
        return NULL;
    /* Built apart and linked when whole: running out of memory leaves parent as it was. */
    hearth_xml_node_t *x = hearth_form_new(a, NULL, f->type);
    if (x && f->title && !hearth_form_add_title(a, x, f->title))
        return NULL;
    if (x && f->instructions && !hearth_form_add_instructions(a, x, f->instructions))
        return NULL;
    for (size_t i = 0; x && i < f->nfields; i++)
        if (!field_to_xml(a, x, &f->fields[i]))
            return NULL;
    if (x && parent)
        hearth_xml_append(parent, x);
    return x;
}

int hearth_form_write(const hearth_form_t *f, const char *context_ns, hearth_buf_t *out)
{
    if (!f || !out || !hearth_form_type_name(f->type))
        return HEARTH_EINVAL;
    hearth_arena_t *a = hearth_arena_new(0);
    if (!a)
        return HEARTH_ENOMEM;
    hearth_xml_node_t *x = hearth_form_to_xml(a, NULL, f);
    int rc = x ? hearth_xml_serialize(x, context_ns, out) : HEARTH_ENOMEM;
    hearth_arena_free(a);
    return rc;
}
