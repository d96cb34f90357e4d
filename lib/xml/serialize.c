/* Tree to bytes (include/hearth/xml.h). Elements always use default-namespace declarations, so
 * the only prefixes written are xml: and the nsN: ones generated for namespaced attributes. */
#include <stdio.h>
#include <string.h>

#include "hearth/xml.h"

static int append_attr(hearth_buf_t *out, const char *prefix, const char *name, const char *value)
{
    int rc = hearth_buf_append_str(out, " ");
    if (!rc && prefix) {
        rc = hearth_buf_append_str(out, prefix);
        if (!rc)
            rc = hearth_buf_append_str(out, ":");
    }
    if (!rc)
        rc = hearth_buf_append_str(out, name);
    if (!rc)
        rc = hearth_buf_append_str(out, "='");
    if (!rc)
        rc = hearth_buf_append_escaped(out, value, strlen(value));
    if (!rc)
        rc = hearth_buf_append_str(out, "'");
    return rc;
}

/* The generated prefix of an attribute's namespace is nsK, K the position on the element of the
 * first attribute in that namespace; that attribute also carries the declaration. */
static unsigned attr_prefix_index(const hearth_xml_node_t *n, const hearth_xml_attr_t *at,
                                  int *first)
{
    unsigned pos = 0;
    for (const hearth_xml_attr_t *b = n->attrs; b != at; b = b->next, pos++)
        if (b->ns && strcmp(b->ns, at->ns) == 0) {
            *first = 0;
            return pos;
        }
    *first = 1;
    return pos;
}

static int write_start(const hearth_xml_node_t *n, const char *scope_ns, hearth_buf_t *out)
{
    int rc = hearth_buf_append_str(out, "<");
    if (!rc)
        rc = hearth_buf_append_str(out, n->name);
    if (!rc && strcmp(n->ns, scope_ns) != 0) {
        rc = hearth_buf_append_str(out, " xmlns='");
        if (!rc)
            rc = hearth_buf_append_escaped(out, n->ns, strlen(n->ns));
        if (!rc)
            rc = hearth_buf_append_str(out, "'");
    }
    for (const hearth_xml_attr_t *at = n->attrs; at && !rc; at = at->next) {
        if (!at->ns || !*at->ns) {
            rc = append_attr(out, NULL, at->name, at->value);
        } else if (strcmp(at->ns, HEARTH_NS_XML) == 0) {
            rc = append_attr(out, "xml", at->name, at->value);
        } else if (strcmp(at->ns, HEARTH_NS_XMLNS) == 0) {
            rc = HEARTH_EINVAL; /* declarations are not attributes in the tree */
        } else {
            int first;
            char prefix[24];
            unsigned idx = attr_prefix_index(n, at, &first);
            snprintf(prefix, sizeof(prefix), "ns%u", idx);
            if (first) {
                rc = hearth_buf_printf(out, " xmlns:%s='", prefix);
                if (!rc)
                    rc = hearth_buf_append_escaped(out, at->ns, strlen(at->ns));
                if (!rc)
                    rc = hearth_buf_append_str(out, "'");
            }
            if (!rc)
                rc = append_attr(out, prefix, at->name, at->value);
        }
    }
    return rc;
}

static int write_node(const hearth_xml_node_t *n, const char *scope_ns, hearth_buf_t *out)
{
    if (n->type == HEARTH_XML_TEXT)
        /* Quotes need no escaping in text: a body keeps its JSON as the client wrote it. */
        return hearth_buf_append_text_escaped(out, n->text ? n->text : "", n->text_len);
    if (!n->name || !n->ns)
        return HEARTH_EINVAL;
    int rc = write_start(n, scope_ns, out);
    if (rc)
        return rc;
    if (!n->children)
        return hearth_buf_append_str(out, "/>");
    rc = hearth_buf_append_str(out, ">");
    for (const hearth_xml_node_t *c = n->children; c && !rc; c = c->next)
        rc = write_node(c, n->ns, out);
    if (!rc)
        rc = hearth_buf_append_str(out, "</");
    if (!rc)
        rc = hearth_buf_append_str(out, n->name);
    if (!rc)
        rc = hearth_buf_append_str(out, ">");
    return rc;
}

int hearth_xml_serialize(const hearth_xml_node_t *n, const char *context_ns, hearth_buf_t *out)
{
    if (!n || !out)
        return HEARTH_EINVAL;
    size_t start = out->len;
    int rc = write_node(n, context_ns ? context_ns : "", out);
    if (rc) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}
