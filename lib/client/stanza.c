/* Reference-counted stanzas of the client API (include/hearth/stanza.h): a tree in its own
 * arena, builders, accessors, parsing of one serialised stanza. Touches only its own memory. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Most stanzas a client builds fit in one chunk this size. */
#define STANZA_ARENA_CHUNK 1024

static bool valid_name(const char *name)
{
    return name && (!strcmp(name, "message") || !strcmp(name, "presence") || !strcmp(name, "iq"));
}

hearth_stanza_kind_t stanza__kind_of(const hearth_xml_node_t *el)
{
    if (!el || el->type != HEARTH_XML_ELEMENT || strcmp(el->ns, HEARTH_NS_CLIENT) != 0)
        return HEARTH_STANZA_OTHER;
    if (!strcmp(el->name, "message"))
        return HEARTH_STANZA_MESSAGE;
    if (!strcmp(el->name, "presence"))
        return HEARTH_STANZA_PRESENCE;
    if (!strcmp(el->name, "iq"))
        return HEARTH_STANZA_IQ;
    return HEARTH_STANZA_OTHER;
}

/* An empty stanza object with its arena; the caller sets node. */
static hearth_stanza_t *alloc_stanza(void)
{
    hearth_stanza_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->refs = 1;
    st->arena = hearth_arena_new(STANZA_ARENA_CHUNK);
    if (!st->arena) {
        free(st);
        return NULL;
    }
    return st;
}

static void destroy(hearth_stanza_t *st)
{
    hearth_arena_free(st->arena);
    free(st);
}

hearth_stanza_t *hearth_stanza_new(const char *name, const char *type, const char *to,
                                   const char *id)
{
    if (!valid_name(name))
        return NULL;
    hearth_stanza_t *st = alloc_stanza();
    if (!st)
        return NULL;
    st->node = hearth_xml_new(st->arena, name, HEARTH_NS_CLIENT);
    if (!st->node || hearth_xml_set_attr(st->arena, st->node, "type", type) ||
        hearth_xml_set_attr(st->arena, st->node, "to", to) ||
        hearth_xml_set_attr(st->arena, st->node, "id", id)) {
        destroy(st);
        return NULL;
    }
    return st;
}

int hearth_stanza_add_text_child(hearth_stanza_t *st, const char *name, const char *text)
{
    if (!st || !name || !text)
        return HEARTH_EINVAL;
    hearth_xml_node_t *n = hearth_xml_add_child(st->arena, st->node, name, HEARTH_NS_CLIENT);
    if (!n || (*text && !hearth_xml_add_text(st->arena, n, text, strlen(text))))
        return HEARTH_ENOMEM;
    return 0;
}

hearth_stanza_t *hearth_stanza_new_message(const char *to, const char *type, const char *body)
{
    hearth_stanza_t *st = hearth_stanza_new("message", type, to, NULL);
    if (st && body && hearth_stanza_add_text_child(st, "body", body)) {
        destroy(st);
        return NULL;
    }
    return st;
}

hearth_stanza_t *hearth_stanza_new_presence(const char *to, const char *type)
{
    return hearth_stanza_new("presence", type, to, NULL);
}

hearth_stanza_t *hearth_stanza_new_iq(const char *type, const char *to, const char *payload_name,
                                      const char *payload_ns, hearth_xml_node_t **payload)
{
    if (payload)
        *payload = NULL;
    if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0) ||
        (payload_name && !payload_ns))
        return NULL;
    hearth_stanza_t *st = hearth_stanza_new("iq", type, to, NULL);
    if (!st || !payload_name)
        return st;
    hearth_xml_node_t *p = hearth_xml_add_child(st->arena, st->node, payload_name, payload_ns);
    if (!p) {
        destroy(st);
        return NULL;
    }
    if (payload)
        *payload = p;
    return st;
}

hearth_stanza_t *hearth_stanza_new_iq_result(const hearth_stanza_t *request)
{
    const char *type = request ? hearth_stanza_type(request) : NULL;
    if (!request || hearth_stanza_kind(request) != HEARTH_STANZA_IQ || !type ||
        (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
        return NULL;
    return hearth_stanza_new("iq", "result", hearth_stanza_from(request),
                             hearth_stanza_id(request));
}

hearth_stanza_t *hearth_stanza_new_error(const hearth_stanza_t *request, hearth_stanza_error_t cond,
                                         const char *text)
{
    if (!request || hearth_stanza_kind(request) == HEARTH_STANZA_OTHER)
        return NULL;
    const char *type = hearth_stanza_type(request);
    if (type && !strcmp(type, "error"))
        return NULL;
    if (cond == HEARTH_STANZA_ERR_NONE)
        cond = HEARTH_STANZA_ERR_UNDEFINED_CONDITION;
    hearth_stanza_t *st = hearth_stanza_new(request->node->name, "error",
                                            hearth_stanza_from(request), hearth_stanza_id(request));
    if (!st)
        return NULL;
    hearth_xml_node_t *e = hearth_xml_add_child(st->arena, st->node, "error", HEARTH_NS_CLIENT);
    if (!e || hearth_xml_set_attr(st->arena, e, "type", hearth_stanza_error_type(cond)) ||
        !hearth_xml_add_child(st->arena, e, hearth_stanza_error_name(cond),
                              HEARTH_NS_STANZA_ERRORS))
        goto fail;
    if (text) {
        hearth_xml_node_t *t = hearth_xml_add_child(st->arena, e, "text", HEARTH_NS_STANZA_ERRORS);
        if (!t || !hearth_xml_add_text(st->arena, t, text, strlen(text)))
            goto fail;
    }
    return st;
fail:
    destroy(st);
    return NULL;
}

/* ---- parsing one stanza: the stream parser under a root that declares jabber:client ---- */

struct parse_state {
    hearth_stanza_t *st;
    int count;
    bool failed;
    const char *reason;
};

static void p_stanza(void *ud, hearth_xml_node_t *el, hearth_arena_t *arena)
{
    (void)arena;
    struct parse_state *ps = ud;
    if (++ps->count > 1 || ps->failed)
        return;
    ps->st->node = hearth_xml_copy(ps->st->arena, el);
    if (!ps->st->node) {
        ps->failed = true;
        ps->reason = "out of memory";
    }
}

static void p_error(void *ud, hearth_stream_error_t cond, const char *text)
{
    struct parse_state *ps = ud;
    ps->failed = true;
    ps->reason = cond == HEARTH_STREAM_ERR_POLICY_VIOLATION ? "too large or too deep"
                 : cond == HEARTH_STREAM_ERR_RESTRICTED_XML ? "restricted XML"
                                                            : "malformed XML";
    (void)text;
}

hearth_stanza_t *hearth_stanza_parse(const char *xml, size_t len, const char **reason)
{
    static const char root[] = "<s xmlns='" HEARTH_NS_CLIENT "'>";
    const char *why = "malformed XML";
    if (!xml || len == 0 || len > HEARTH_STANZA_PARSE_MAX) {
        if (reason)
            *reason = len > HEARTH_STANZA_PARSE_MAX ? "too large" : "empty";
        return NULL;
    }
    hearth_stanza_t *st = alloc_stanza();
    if (!st) {
        if (reason)
            *reason = "out of memory";
        return NULL;
    }
    struct parse_state ps = {.st = st};
    hearth_xml_stream_cbs_t cbs = {.stanza = p_stanza, .error = p_error};
    hearth_xml_limits_t lim = {.max_stanza_bytes = HEARTH_STANZA_PARSE_MAX + 1};
    hearth_xml_stream_t *x = hearth_xml_stream_new(&cbs, &ps, &lim);
    if (!x) {
        destroy(st);
        if (reason)
            *reason = "out of memory";
        return NULL;
    }
    (void)hearth_xml_stream_feed(x, root, sizeof(root) - 1);
    (void)hearth_xml_stream_feed(x, xml, len);
    /* Text after the element or an unfinished one: nothing complete stands alone. */
    hearth_xml_position_t pos = hearth_xml_stream_position(x);
    bool trailing = pos.fed != pos.done;
    (void)hearth_xml_stream_feed(x, "</s>", 4);
    hearth_xml_stream_free(x);
    if (ps.failed || ps.count != 1 || trailing || !st->node ||
        stanza__kind_of(st->node) == HEARTH_STANZA_OTHER) {
        if (ps.failed)
            why = ps.reason;
        else if (ps.count > 1)
            why = "more than one element";
        else if (ps.count == 1 && !trailing)
            why = "not a stanza in jabber:client";
        destroy(st);
        if (reason)
            *reason = why;
        return NULL;
    }
    return st;
}

hearth_stanza_t *hearth_stanza_copy(const hearth_stanza_t *src)
{
    if (!src)
        return NULL;
    hearth_stanza_t *st = alloc_stanza();
    if (!st)
        return NULL;
    st->node = hearth_xml_copy(st->arena, src->node);
    if (!st->node) {
        destroy(st);
        return NULL;
    }
    return st;
}

hearth_stanza_t *hearth_stanza_ref(hearth_stanza_t *st)
{
    if (!st)
        return NULL;
    if (st->lent)
        return hearth_stanza_copy(st);
    __atomic_add_fetch(&st->refs, 1, __ATOMIC_RELAXED);
    return st;
}

void hearth_stanza_unref(hearth_stanza_t *st)
{
    if (!st || st->lent)
        return;
    if (__atomic_sub_fetch(&st->refs, 1, __ATOMIC_ACQ_REL) == 0)
        destroy(st);
}

hearth_xml_node_t *hearth_stanza_node(const hearth_stanza_t *st)
{
    return st ? st->node : NULL;
}

hearth_arena_t *hearth_stanza_arena(const hearth_stanza_t *st)
{
    return st ? st->arena : NULL;
}

hearth_stanza_kind_t hearth_stanza_kind(const hearth_stanza_t *st)
{
    return st ? stanza__kind_of(st->node) : HEARTH_STANZA_OTHER;
}

const char *hearth_stanza_attr(const hearth_stanza_t *st, const char *name)
{
    return st && name ? hearth_xml_attr(st->node, name) : NULL;
}

const char *hearth_stanza_type(const hearth_stanza_t *st)
{
    return hearth_stanza_attr(st, "type");
}

const char *hearth_stanza_id(const hearth_stanza_t *st)
{
    return hearth_stanza_attr(st, "id");
}

const char *hearth_stanza_from(const hearth_stanza_t *st)
{
    return hearth_stanza_attr(st, "from");
}

const char *hearth_stanza_to(const hearth_stanza_t *st)
{
    return hearth_stanza_attr(st, "to");
}

int hearth_stanza_set_attr(hearth_stanza_t *st, const char *name, const char *value)
{
    if (!st || !name)
        return HEARTH_EINVAL;
    return hearth_xml_set_attr(st->arena, st->node, name, value);
}

hearth_xml_node_t *hearth_stanza_child(const hearth_stanza_t *st, const char *name, const char *ns)
{
    return st ? hearth_xml_child(st->node, name, ns) : NULL;
}

const char *hearth_stanza_child_text(hearth_stanza_t *st, const char *name)
{
    hearth_xml_node_t *n = st && name ? hearth_xml_child(st->node, name, HEARTH_NS_CLIENT) : NULL;
    return n ? hearth_xml_text(st->arena, n) : NULL;
}

hearth_stanza_error_t hearth_stanza_error(hearth_stanza_t *st, const char **text)
{
    if (text)
        *text = NULL;
    const char *type = hearth_stanza_type(st);
    hearth_xml_node_t *e = hearth_stanza_child(st, "error", HEARTH_NS_CLIENT);
    if (!type || strcmp(type, "error") != 0 || !e)
        return HEARTH_STANZA_ERR_NONE;
    hearth_stanza_error_t cond = HEARTH_STANZA_ERR_UNDEFINED_CONDITION;
    for (hearth_xml_node_t *n = hearth_xml_first_element(e); n; n = hearth_xml_next_element(n)) {
        if (strcmp(n->ns, HEARTH_NS_STANZA_ERRORS) != 0)
            continue;
        if (!strcmp(n->name, "text")) {
            if (text)
                *text = hearth_xml_text(st->arena, n);
            continue;
        }
        for (int i = HEARTH_STANZA_ERR_NONE + 1; i <= HEARTH_STANZA_ERR_UNEXPECTED_REQUEST; i++)
            if (!strcmp(n->name, hearth_stanza_error_name((hearth_stanza_error_t)i)))
                cond = (hearth_stanza_error_t)i;
    }
    return cond;
}

int hearth_stanza_serialize(const hearth_stanza_t *st, hearth_buf_t *out)
{
    if (!st || !out)
        return HEARTH_EINVAL;
    return hearth_xml_serialize(st->node, HEARTH_NS_CLIENT, out);
}
