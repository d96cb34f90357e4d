/* The stanza tree (include/hearth/xml.h): building, lookup, copy, a stanza error's <error/>. Every
 * node and string lives in the caller's arena; nothing here frees memory. */
#include <string.h>

#include "hearth/xml.h"

static hearth_xml_node_t *node_alloc(hearth_arena_t *a, hearth_xml_type_t type)
{
    hearth_xml_node_t *n = hearth_arena_alloc(a, sizeof(*n));
    if (!n)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->type = type;
    return n;
}

hearth_xml_node_t *hearth_xml_new(hearth_arena_t *a, const char *name, const char *ns)
{
    if (!name)
        return NULL;
    hearth_xml_node_t *n = node_alloc(a, HEARTH_XML_ELEMENT);
    if (!n)
        return NULL;
    n->name = hearth_arena_strdup(a, name);
    n->ns = hearth_arena_strdup(a, ns ? ns : "");
    if (!n->name || !n->ns)
        return NULL;
    return n;
}

void hearth_xml_append(hearth_xml_node_t *parent, hearth_xml_node_t *child)
{
    if (!parent || !child || parent->type != HEARTH_XML_ELEMENT)
        return;
    if (child->parent)
        hearth_xml_remove(child);
    child->parent = parent;
    child->next = NULL;
    if (parent->last_child)
        parent->last_child->next = child;
    else
        parent->children = child;
    parent->last_child = child;
}

void hearth_xml_remove(hearth_xml_node_t *child)
{
    hearth_xml_node_t *parent = child ? child->parent : NULL;
    if (!parent)
        return;
    hearth_xml_node_t *prev = NULL;
    for (hearth_xml_node_t *c = parent->children; c; prev = c, c = c->next) {
        if (c != child)
            continue;
        if (prev)
            prev->next = c->next;
        else
            parent->children = c->next;
        if (parent->last_child == c)
            parent->last_child = prev;
        break;
    }
    child->parent = NULL;
    child->next = NULL;
}

hearth_xml_node_t *hearth_xml_add_child(hearth_arena_t *a, hearth_xml_node_t *parent,
                                        const char *name, const char *ns)
{
    if (!parent || parent->type != HEARTH_XML_ELEMENT || !name)
        return NULL;
    hearth_xml_node_t *n = node_alloc(a, HEARTH_XML_ELEMENT);
    if (!n)
        return NULL;
    n->name = hearth_arena_strdup(a, name);
    /* Inheriting shares the parent's string: both live in the same arena. */
    n->ns = ns ? hearth_arena_strdup(a, ns) : parent->ns;
    if (!n->name || !n->ns)
        return NULL;
    hearth_xml_append(parent, n);
    return n;
}

hearth_xml_node_t *hearth_xml_add_text(hearth_arena_t *a, hearth_xml_node_t *parent,
                                       const char *text, size_t len)
{
    if (!parent || parent->type != HEARTH_XML_ELEMENT || (!text && len))
        return NULL;
    hearth_xml_node_t *n = node_alloc(a, HEARTH_XML_TEXT);
    if (!n)
        return NULL;
    char *t = hearth_arena_strndup(a, text ? text : "", len);
    if (!t)
        return NULL;
    n->text = t;
    n->text_len = len;
    hearth_xml_append(parent, n);
    return n;
}

static int same_ns(const char *x, const char *y)
{
    if (x && !*x)
        x = NULL;
    if (y && !*y)
        y = NULL;
    if (!x || !y)
        return x == y;
    return strcmp(x, y) == 0;
}

int hearth_xml_set_attr_ns(hearth_arena_t *a, hearth_xml_node_t *n, const char *ns,
                           const char *name, const char *value)
{
    if (!n || n->type != HEARTH_XML_ELEMENT || !name || !*name)
        return HEARTH_EINVAL;
    if (ns && !*ns)
        ns = NULL;
    hearth_xml_attr_t **pp = &n->attrs;
    for (; *pp; pp = &(*pp)->next) {
        hearth_xml_attr_t *at = *pp;
        if (strcmp(at->name, name) != 0 || !same_ns(at->ns, ns))
            continue;
        if (!value) {
            *pp = at->next;
            return 0;
        }
        const char *v = hearth_arena_strdup(a, value);
        if (!v)
            return HEARTH_ENOMEM;
        at->value = v;
        return 0;
    }
    if (!value)
        return 0;
    /* pp now points at the list's tail: appending keeps document order. */
    hearth_xml_attr_t *at = hearth_arena_alloc(a, sizeof(*at));
    if (!at)
        return HEARTH_ENOMEM;
    at->ns = ns ? hearth_arena_strdup(a, ns) : NULL;
    at->name = hearth_arena_strdup(a, name);
    at->value = hearth_arena_strdup(a, value);
    at->next = NULL;
    if ((ns && !at->ns) || !at->name || !at->value)
        return HEARTH_ENOMEM;
    *pp = at;
    return 0;
}

int hearth_xml_set_attr(hearth_arena_t *a, hearth_xml_node_t *n, const char *name,
                        const char *value)
{
    return hearth_xml_set_attr_ns(a, n, NULL, name, value);
}

const char *hearth_xml_attr_ns(const hearth_xml_node_t *n, const char *ns, const char *name)
{
    if (!n || !name)
        return NULL;
    for (const hearth_xml_attr_t *at = n->attrs; at; at = at->next)
        if (strcmp(at->name, name) == 0 && same_ns(at->ns, ns))
            return at->value;
    return NULL;
}

const char *hearth_xml_attr(const hearth_xml_node_t *n, const char *name)
{
    return hearth_xml_attr_ns(n, NULL, name);
}

static int element_matches(const hearth_xml_node_t *c, const char *name, const char *ns)
{
    return c->type == HEARTH_XML_ELEMENT && (!name || strcmp(c->name, name) == 0) &&
           (!ns || strcmp(c->ns, ns) == 0);
}

hearth_xml_node_t *hearth_xml_child(const hearth_xml_node_t *n, const char *name, const char *ns)
{
    if (!n)
        return NULL;
    for (hearth_xml_node_t *c = n->children; c; c = c->next)
        if (element_matches(c, name, ns))
            return c;
    return NULL;
}

hearth_xml_node_t *hearth_xml_first_element(const hearth_xml_node_t *n)
{
    return hearth_xml_child(n, NULL, NULL);
}

hearth_xml_node_t *hearth_xml_next_element(const hearth_xml_node_t *n)
{
    if (!n)
        return NULL;
    for (hearth_xml_node_t *c = n->next; c; c = c->next)
        if (c->type == HEARTH_XML_ELEMENT)
            return c;
    return NULL;
}

size_t hearth_xml_count_elements(const hearth_xml_node_t *n)
{
    size_t count = 0;
    if (!n)
        return 0;
    for (const hearth_xml_node_t *c = n->children; c; c = c->next)
        if (c->type == HEARTH_XML_ELEMENT)
            count++;
    return count;
}

char *hearth_xml_text(hearth_arena_t *a, const hearth_xml_node_t *n)
{
    if (!n)
        return hearth_arena_strdup(a, "");
    if (n->type == HEARTH_XML_TEXT)
        return hearth_arena_strndup(a, n->text, n->text_len);
    size_t len = 0;
    for (const hearth_xml_node_t *c = n->children; c; c = c->next)
        if (c->type == HEARTH_XML_TEXT)
            len += c->text_len;
    char *out = hearth_arena_alloc(a, len + 1);
    if (!out)
        return NULL;
    size_t off = 0;
    for (const hearth_xml_node_t *c = n->children; c; c = c->next) {
        if (c->type != HEARTH_XML_TEXT || !c->text_len)
            continue;
        memcpy(out + off, c->text, c->text_len);
        off += c->text_len;
    }
    out[off] = '\0';
    return out;
}

hearth_xml_node_t *hearth_xml_copy(hearth_arena_t *a, const hearth_xml_node_t *n)
{
    if (!n)
        return NULL;
    hearth_xml_node_t *c = node_alloc(a, n->type);
    if (!c)
        return NULL;
    if (n->type == HEARTH_XML_TEXT) {
        char *t = hearth_arena_strndup(a, n->text ? n->text : "", n->text_len);
        if (!t)
            return NULL;
        c->text = t;
        c->text_len = n->text_len;
        return c;
    }
    c->name = hearth_arena_strdup(a, n->name);
    c->ns = hearth_arena_strdup(a, n->ns ? n->ns : "");
    if (!c->name || !c->ns)
        return NULL;
    hearth_xml_attr_t **tail = &c->attrs;
    for (const hearth_xml_attr_t *at = n->attrs; at; at = at->next) {
        hearth_xml_attr_t *ca = hearth_arena_alloc(a, sizeof(*ca));
        if (!ca)
            return NULL;
        ca->ns = at->ns ? hearth_arena_strdup(a, at->ns) : NULL;
        ca->name = hearth_arena_strdup(a, at->name);
        ca->value = hearth_arena_strdup(a, at->value);
        ca->next = NULL;
        if ((at->ns && !ca->ns) || !ca->name || !ca->value)
            return NULL;
        *tail = ca;
        tail = &ca->next;
    }
    for (const hearth_xml_node_t *ch = n->children; ch; ch = ch->next) {
        hearth_xml_node_t *cc = hearth_xml_copy(a, ch);
        if (!cc)
            return NULL;
        hearth_xml_append(c, cc);
    }
    return c;
}

hearth_xml_node_t *hearth_xml_add_stanza_error(hearth_arena_t *a, hearth_xml_node_t *stanza,
                                               hearth_stanza_error_t cond, const char *text)
{
    if (!stanza || stanza->type != HEARTH_XML_ELEMENT)
        return NULL;
    /* Built apart and linked when whole, so that running out of memory leaves no half error. */
    hearth_xml_node_t *e = hearth_xml_new(a, "error", stanza->ns);
    if (!e || hearth_xml_set_attr(a, e, "type", hearth_stanza_error_type(cond)) ||
        !hearth_xml_add_child(a, e, hearth_stanza_error_name(cond), HEARTH_NS_STANZA_ERRORS))
        return NULL;
    if (text) {
        hearth_xml_node_t *t = hearth_xml_add_child(a, e, "text", HEARTH_NS_STANZA_ERRORS);
        if (!t || !hearth_xml_add_text(a, t, text, strlen(text)))
            return NULL;
    }
    hearth_xml_append(stanza, e);
    return e;
}
