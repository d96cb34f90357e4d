/* The pubsub service's subscriptions (pubsub_svc.h), on its home worker: subscribe and
 * unsubscribe (§6.1-6.2), subscription options (§6.3-6.4), the requester's subscriptions and
 * affiliations (§5.6-5.7), the owner's management of subscriptions and affiliations (§8.8-8.9),
 * an owner's answer to an authorization form (§8.6), and an account removed. A node's list of
 * subscriptions changes as a copy that is stored, then taken. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/pubsub_svc.h"

/* ---- subscriptions: copies of a node's list, changed, stored, then taken ---- */

static int subs_copy(const psvc_node_t *pn, psvc_op_t *op, size_t extra)
{
    op->subs = calloc(pn->nsubs + extra + 1, sizeof(*op->subs));
    if (!op->subs)
        return HEARTH_ENOMEM;
    for (size_t i = 0; i < pn->nsubs; i++, op->nsubs++) {
        psvc_sub_t *d = &op->subs[i];
        if (!(d->jid = strdup(pn->subs[i].jid)) || !(d->subid = strdup(pn->subs[i].subid))) {
            free(d->jid);
            return HEARTH_ENOMEM;
        }
        d->pending = pn->subs[i].pending;
        d->nodeliver = pn->subs[i].nodeliver;
    }
    return 0;
}

static void subs_remove(psvc_op_t *op, size_t i)
{
    free(op->subs[i].jid);
    free(op->subs[i].subid);
    memmove(&op->subs[i], &op->subs[i + 1], (op->nsubs - i - 1) * sizeof(*op->subs));
    op->nsubs--;
}

/* Stores op->subs as the node's list, then then(op, err). */
static void subs_save(psvc_op_t *op, psvc_then_fn then)
{
    char *doc = psvc__subs_store(op->subs, op->nsubs);
    if (!doc) {
        psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    if (strlen(doc) > STORAGE_XML_MAX) {
        free(doc);
        psvc__refuse(op, HEARTH_STANZA_ERR_POLICY_VIOLATION, "too-many-subscriptions", NULL);
        return;
    }
    worker_t *w = op->w;
    int rc = storage_doc_put(w->srv->storage, &w->storage_target, PSVC_DOC_KIND, op->node->n->name,
                             doc, psvc__stored, op);
    free(doc);
    psvc__await(op, rc, then);
}

/* The stored list is now the node's. */
static void subs_take(psvc_op_t *op)
{
    psvc_node_t *pn = op->node;
    psvc__subs_free(pn->subs, pn->nsubs);
    pn->subs = op->subs;
    pn->nsubs = pn->cap = op->nsubs;
    op->subs = NULL;
    op->nsubs = 0;
}

static long sub_find(const psvc_sub_t *subs, size_t n, const char *jid)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(subs[i].jid, jid))
            return (long)i;
    return -1;
}

static int write_sub(hearth_buf_t *b, const char *node, const psvc_sub_t *s)
{
    int rc = 0;
    rc = hearth_buf_append_str(b, "<subscription");
    if (node)
        rc = rc ?: psvc__write_attr(b, " node='", node, "'");
    rc = rc ?: psvc__write_attr(b, " jid='", s->jid, "' subid='");
    rc = rc ?: psvc__write_attr(b, "", s->subid, "'");
    return rc
               ?: hearth_buf_printf(b, " subscription='%s'/>",
                                    s->pending ? "pending" : "subscribed");
}

/* ---- subscribe (§6.1) ---- */

static int sub_options_apply(psvc_op_t *op, const hearth_xml_node_t *x, int *nodeliver,
                             pubsub_err_t *e);

static void last_read(void *ud, int err, const storage_pubsub_item_t *items, size_t n)
{
    psvc_op_t *op = ud;
    worker_t *w = op->w;
    psvc__back(op);
    pubsub_node_t *node = op->node->n;
    if (!err && n == 1 && node->nitems && !strcmp(items[0].id, node->items[node->nitems - 1].id))
        psvc__send_last(w, op->node, op->id, items[0].payload);
    psvc__done(op);
    psvc__run(w);
}

/* §6.1.7: the last item to a new subscriber, read from storage when not at hand. */
static void send_last_on_sub(psvc_op_t *op, const char *jid)
{
    psvc_node_t *pn = op->node;
    pubsub_node_t *n = pn->n;
    if (!n->nitems || n->config.send_last == PUBSUB_LAST_NEVER ||
        !n->config.deliver_notifications) {
        psvc__done(op);
        return;
    }
    if (n->last_payload || !n->config.deliver_payloads) {
        psvc__send_last(op->w, pn, jid, n->last_payload);
        psvc__done(op);
        return;
    }
    free(op->id);
    const char *id = n->items[n->nitems - 1].id;
    worker_t *w = op->w;
    if (!(op->id = strdup(jid)) ||
        storage_pubsub_items(w->srv->storage, &w->storage_target, psvc__conf.domain, n->name, &id,
                             1, 0, last_read, op)) {
        psvc__done(op);
        return;
    }
    psvc__get(w)->busy = op;
}

static void subscribe_done(psvc_op_t *op, int err)
{
    if (err) {
        psvc__fail_storage(op, err);
        psvc__done(op);
        return;
    }
    subs_take(op);
    psvc_node_t *pn = op->node;
    const psvc_sub_t *sub = &pn->subs[pn->nsubs - 1];
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB "'>");
    rc = rc ?: write_sub(&b, pn->n->name, sub);
    rc = rc ?: hearth_buf_append_str(&b, "</pubsub>");
    if (!rc)
        psvc__result(op, b.data);
    hearth_buf_free(&b);
    if (sub->pending) {
        psvc__ask_owners(op->w, pn, sub);
        psvc__done(op);
        return;
    }
    char *jid = sub->nodeliver ? NULL : strdup(sub->jid);
    if (jid)
        send_last_on_sub(op, jid);
    else
        psvc__done(op);
    free(jid);
}

static void subscribe_go(psvc_op_t *op)
{
    psvc_node_t *pn = op->node;
    pubsub_who_t who = psvc__who(op, pn);
    pubsub_err_t e;
    int authorize = pn->n->config.access == PUBSUB_ACCESS_AUTHORIZE;
    if (who.aff == PUBSUB_AFF_OUTCAST || who.aff == PUBSUB_AFF_PUBLISH_ONLY) {
        psvc__refuse(op, HEARTH_STANZA_ERR_FORBIDDEN, NULL, NULL);
        return;
    }
    if (!authorize && pubsub_access(pn->n, &who, &e)) {
        psvc__reject(op, &e);
        return;
    }
    const char *jid = op->id; /* the prepared JID to subscribe */
    long old = sub_find(pn->subs, pn->nsubs, jid);
    if (old >= 0 && pn->subs[old].pending) {
        psvc__refuse(op, HEARTH_STANZA_ERR_NOT_AUTHORIZED, "pending-subscription", NULL);
        return;
    }
    if (old >= 0) { /* §6.1.6: already subscribed; one subscription per JID here */
        hearth_buf_t b = HEARTH_BUF_INIT;
        int rc = hearth_buf_append_str(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB "'>");
        rc = rc ?: write_sub(&b, pn->n->name, &pn->subs[old]);
        rc = rc ?: hearth_buf_append_str(&b, "</pubsub>");
        if (!rc)
            psvc__result(op, b.data);
        hearth_buf_free(&b);
        psvc__done(op);
        return;
    }
    if (pn->nsubs >= psvc__conf.max_subs) {
        psvc__refuse(op, HEARTH_STANZA_ERR_POLICY_VIOLATION, "too-many-subscriptions", NULL);
        return;
    }
    char subid[PSVC_SUBID_LEN];
    user__random_id(subid, sizeof(subid));
    if (subs_copy(pn, op, 1) || !(op->subs[op->nsubs].jid = strdup(jid)) ||
        !(op->subs[op->nsubs].subid = strdup(subid))) {
        if (op->subs)
            free(op->subs[op->nsubs].jid);
        psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    /* Members, publishers and owners need nobody's approval. */
    op->subs[op->nsubs].pending = authorize && who.aff == PUBSUB_AFF_NONE;
    op->subs[op->nsubs].nodeliver = op->nodeliver;
    op->nsubs++;
    subs_save(op, subscribe_done);
}

void psvc__subscribe(psvc_op_t *op)
{
    const char *name;
    pubsub_err_t e;
    hearth_xml_node_t *x = op->extra ? hearth_xml_first_element(op->extra) : NULL;
    if (x && sub_options_apply(op, x, &op->nodeliver, &e)) { /* §6.3.7: subscribe and configure */
        psvc__reject(op, &e);
        return;
    }
    if (psvc__name_of(op->action, &name, &e)) {
        psvc__reject(op, &e);
        return;
    }
    hearth_jid_t j = HEARTH_JID_INIT;
    if (psvc__jid_attr(op, op->action, &j))
        return;
    int mine = !strcmp(j.bare, op->requester_bare); /* §6.1.3.1 */
    op->id = mine ? strdup(j.full) : NULL;
    hearth_jid_clear(&j);
    if (!mine) {
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, "invalid-jid", NULL);
        return;
    }
    psvc_node_t *pn = psvc__node_get(op, name);
    if (!op->id || !pn) {
        psvc__refuse(op,
                     pn ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT : HEARTH_STANZA_ERR_ITEM_NOT_FOUND,
                     NULL, NULL);
        return;
    }
    op->node = pn;
    psvc__with_roster(op, pn, pn->n->config.access, 1, subscribe_go);
}

/* ---- subscription options (§6.3, §6.4) ---- */

#define SUB_OPTIONS_TYPE HEARTH_NS_PUBSUB "#subscribe_options"

/* Submitted subscription options x into *nodeliver: 0, or -1 with bad-request and
 * invalid-options in *e. Options this service does not offer are ignored. */
static int sub_options_apply(psvc_op_t *op, const hearth_xml_node_t *x, int *nodeliver,
                             pubsub_err_t *e)
{
    hearth_form_t form;
    const char *why = NULL;
    if (!psvc__is(x, "x", HEARTH_NS_DATA) || hearth_form_parse(op->arena, x, NULL, &form, &why) ||
        form.type != HEARTH_FORM_SUBMIT ||
        (hearth_form_form_type(&form) && strcmp(hearth_form_form_type(&form), SUB_OPTIONS_TYPE)))
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "invalid-options",
                           why ? why : "a submitted pubsub#subscribe_options form is expected");
    const char *v = hearth_form_value(&form, "pubsub#deliver");
    if (!v)
        return 0;
    if (!strcmp(v, "0") || !strcmp(v, "false"))
        *nodeliver = 1;
    else if (!strcmp(v, "1") || !strcmp(v, "true"))
        *nodeliver = 0;
    else
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "invalid-options", "pubsub#deliver");
    return 0;
}

/* The options form (type form) with nodeliver's value, the last child of parent. */
static hearth_xml_node_t *sub_options_form(hearth_arena_t *a, hearth_xml_node_t *parent,
                                           int nodeliver)
{
    hearth_xml_node_t *x = hearth_form_new(a, parent, HEARTH_FORM_FORM);
    if (!x || !hearth_form_add_form_type(a, x, SUB_OPTIONS_TYPE) ||
        !hearth_form_add_field(a, x, "pubsub#deliver", "boolean", "Enable delivery?",
                               nodeliver ? "0" : "1"))
        return NULL;
    return x;
}

/* The subscription op->action names (node, jid, subid), when the requester may see it: its own
 * or, for an owner, any. Its index, or -1 after op was answered and ended. */
static long named_sub(psvc_op_t *op, psvc_node_t **out)
{
    psvc_node_t *pn = *out = psvc__named_node(op);
    if (!pn)
        return -1;
    hearth_jid_t j = HEARTH_JID_INIT;
    if (psvc__jid_attr(op, op->action, &j))
        return -1;
    int may = !strcmp(j.bare, op->requester_bare) ||
              pubsub_node_aff(pn->n, op->requester_bare) == PUBSUB_AFF_OWNER;
    long i = sub_find(pn->subs, pn->nsubs, j.full);
    hearth_jid_clear(&j);
    const char *subid = hearth_xml_attr(op->action, "subid");
    if (!may)
        psvc__refuse(op, HEARTH_STANZA_ERR_FORBIDDEN, NULL, NULL); /* §6.3.4.1 */
    else if (i < 0)
        psvc__refuse(op, HEARTH_STANZA_ERR_UNEXPECTED_REQUEST, "not-subscribed", NULL);
    else if (subid && strcmp(subid, pn->subs[i].subid))
        psvc__refuse(op, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "invalid-subid", NULL);
    else
        return i;
    return -1;
}

void psvc__options_get(psvc_op_t *op)
{
    psvc_node_t *pn;
    long i = named_sub(op, &pn);
    if (i < 0)
        return;
    hearth_arena_t *a = op->arena;
    hearth_xml_node_t *p = hearth_xml_new(a, "pubsub", HEARTH_NS_PUBSUB);
    hearth_xml_node_t *o = hearth_xml_add_child(a, p, "options", NULL);
    if (o && !hearth_xml_set_attr(a, o, "node", pn->n->name) &&
        !hearth_xml_set_attr(a, o, "jid", pn->subs[i].jid) &&
        !hearth_xml_set_attr(a, o, "subid", pn->subs[i].subid) &&
        sub_options_form(a, o, pn->subs[i].nodeliver))
        psvc__result_node(op, p);
    else
        psvc__fail_storage(op, HEARTH_ENOMEM);
    psvc__done(op);
}

static void options_set_done(psvc_op_t *op, int err)
{
    if (err) {
        psvc__fail_storage(op, err);
        psvc__done(op);
        return;
    }
    subs_take(op);
    psvc__result(op, NULL);
    psvc__done(op);
}

void psvc__options_set(psvc_op_t *op)
{
    psvc_node_t *pn;
    long i = named_sub(op, &pn);
    if (i < 0)
        return;
    pubsub_err_t e;
    int nodeliver = pn->subs[i].nodeliver;
    hearth_xml_node_t *x = hearth_xml_first_element(op->action);
    if (!x) {
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, "invalid-options", NULL);
        return;
    }
    if (sub_options_apply(op, x, &nodeliver, &e)) {
        psvc__reject(op, &e);
        return;
    }
    if (subs_copy(pn, op, 0)) {
        psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    op->node = pn;
    op->subs[i].nodeliver = nodeliver;
    subs_save(op, options_set_done);
}

/* §6.4: the options a new subscription gets. */
void psvc__options_default(psvc_op_t *op)
{
    const char *node = hearth_xml_attr(op->action, "node");
    if (node && !psvc__node_get(op, node)) {
        psvc__refuse(op, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, NULL);
        return;
    }
    hearth_arena_t *a = op->arena;
    hearth_xml_node_t *p = hearth_xml_new(a, "pubsub", HEARTH_NS_PUBSUB);
    hearth_xml_node_t *d = hearth_xml_add_child(a, p, "default", NULL);
    if (d && (!node || !hearth_xml_set_attr(a, d, "node", node)) && sub_options_form(a, d, 0))
        psvc__result_node(op, p);
    else
        psvc__fail_storage(op, HEARTH_ENOMEM);
    psvc__done(op);
}

/* ---- unsubscribe (§6.2) ---- */

static void unsubscribe_done(psvc_op_t *op, int err)
{
    if (err) {
        psvc__fail_storage(op, err);
        psvc__done(op);
        return;
    }
    subs_take(op);
    psvc__result(op, NULL);
    psvc__done(op);
}

void psvc__unsubscribe(psvc_op_t *op)
{
    psvc_node_t *pn = psvc__named_node(op);
    if (!pn)
        return;
    hearth_jid_t j = HEARTH_JID_INIT;
    if (psvc__jid_attr(op, op->action, &j))
        return;
    int mine = !strcmp(j.bare, op->requester_bare);
    long i = sub_find(pn->subs, pn->nsubs, j.full);
    hearth_jid_clear(&j);
    const char *subid = hearth_xml_attr(op->action, "subid");
    if (!mine) /* §6.2.3.3 */
        psvc__refuse(op, HEARTH_STANZA_ERR_FORBIDDEN, NULL, NULL);
    else if (i < 0) /* §6.2.3.2 */
        psvc__refuse(op, HEARTH_STANZA_ERR_UNEXPECTED_REQUEST, "not-subscribed", NULL);
    else if (subid && strcmp(subid, pn->subs[i].subid)) /* §6.2.3.5 */
        psvc__refuse(op, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "invalid-subid", NULL);
    else if (subs_copy(pn, op, 0))
        psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    else {
        op->node = pn;
        subs_remove(op, (size_t)i);
        subs_save(op, unsubscribe_done);
    }
}

/* ---- the requester's subscriptions and affiliations (§5.6, §5.7) ---- */

static int bare_is(const char *jid, const char *bare)
{
    size_t n = strcspn(jid, "/");
    return strlen(bare) == n && !strncmp(jid, bare, n);
}

void psvc__own_subscriptions(psvc_op_t *op)
{
    const char *only = hearth_xml_attr(op->action, "node");
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB "'><subscriptions");
    if (only)
        rc = rc ?: psvc__write_attr(&b, " node='", only, "'");
    rc = rc ?: hearth_buf_append_str(&b, ">");
    STRMAP_FOREACH(&psvc__get(op->w)->nodes, e)
    {
        psvc_node_t *pn = e->value;
        if (only && strcmp(only, pn->n->name))
            continue;
        for (size_t i = 0; i < pn->nsubs; i++)
            if (bare_is(pn->subs[i].jid, op->requester_bare))
                rc = rc ?: write_sub(&b, pn->n->name, &pn->subs[i]);
    }
    rc = rc ?: hearth_buf_append_str(&b, "</subscriptions></pubsub>");
    if (!rc)
        psvc__result(op, b.data);
    hearth_buf_free(&b);
    psvc__done(op);
}

static int write_aff(hearth_buf_t *b, const char *attr, const char *value, pubsub_aff_t aff)
{
    int rc = hearth_buf_printf(b, "<affiliation %s='", attr);
    rc = rc ?: hearth_buf_append_escaped(b, value, strlen(value));
    return rc ?: hearth_buf_printf(b, "' affiliation='%s'/>", pubsub_aff_name(aff));
}

void psvc__own_affiliations(psvc_op_t *op)
{
    const char *only = hearth_xml_attr(op->action, "node");
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB "'><affiliations");
    if (only)
        rc = rc ?: psvc__write_attr(&b, " node='", only, "'");
    rc = rc ?: hearth_buf_append_str(&b, ">");
    STRMAP_FOREACH(&psvc__get(op->w)->nodes, e)
    {
        psvc_node_t *pn = e->value;
        pubsub_aff_t a = pubsub_node_aff(pn->n, op->requester_bare);
        if (a != PUBSUB_AFF_NONE && (!only || !strcmp(only, pn->n->name)))
            rc = rc ?: write_aff(&b, "node", pn->n->name, a);
    }
    rc = rc ?: hearth_buf_append_str(&b, "</affiliations></pubsub>");
    if (!rc)
        psvc__result(op, b.data);
    hearth_buf_free(&b);
    psvc__done(op);
}

/* ---- the owner's subscriptions (§8.8) ---- */

void psvc__subs_get(psvc_op_t *op)
{
    psvc_node_t *pn = psvc__owned_node(op);
    if (!pn)
        return;
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = psvc__write_attr(
        &b, "<pubsub xmlns='" HEARTH_NS_PUBSUB_OWNER "'><subscriptions node='", pn->n->name, "'>");
    for (size_t i = 0; i < pn->nsubs; i++)
        rc = rc ?: write_sub(&b, NULL, &pn->subs[i]);
    rc = rc ?: hearth_buf_append_str(&b, "</subscriptions></pubsub>");
    if (!rc)
        psvc__result(op, b.data);
    hearth_buf_free(&b);
    psvc__done(op);
}

/* Remembers that jid is to hear of its subscription's new state. */
static int tell(psvc_op_t *op, const char *jid, const char *state, size_t most)
{
    if (!op->told && (!(op->told = calloc(most, sizeof(char *))) ||
                      !(op->states = calloc(most, sizeof(char *)))))
        return HEARTH_ENOMEM;
    if (op->ntold == most)
        return 0;
    op->told[op->ntold] = strdup(jid);
    op->states[op->ntold] = strdup(state);
    if (!op->told[op->ntold] || !op->states[op->ntold]) {
        free(op->told[op->ntold]);
        free(op->states[op->ntold]);
        return HEARTH_ENOMEM;
    }
    op->ntold++;
    return 0;
}

static void subs_set_done(psvc_op_t *op, int err)
{
    if (err) {
        psvc__fail_storage(op, err);
        psvc__done(op);
        return;
    }
    subs_take(op);
    psvc__result(op, NULL);
    for (size_t i = 0; i < op->ntold; i++) { /* §8.8.4 */
        long k = sub_find(op->node->subs, op->node->nsubs, op->told[i]);
        psvc__send_sub_state(op->w, op->node->n->name, op->told[i],
                             k >= 0 ? op->node->subs[k].subid : NULL, op->states[i]);
    }
    psvc__done(op);
}

/* One <subscription jid subscription/> of an owner's change, applied to op->subs. */
static int sub_change(psvc_op_t *op, const hearth_xml_node_t *el, pubsub_err_t *e)
{
    const char *state = hearth_xml_attr(el, "subscription");
    if (!psvc__is(el, "subscription", HEARTH_NS_PUBSUB_OWNER) || !state)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, NULL,
                           "a subscription names a jid and a subscription");
    const char *jid = hearth_xml_attr(el, "jid");
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *why = NULL;
    if (!jid || hearth_jid_parse(jid, strlen(jid), &j, &why)) {
        hearth_jid_clear(&j);
        return pubsub_fail(e, HEARTH_STANZA_ERR_JID_MALFORMED, NULL, why);
    }
    int rc = 0;
    long i = sub_find(op->subs, op->nsubs, j.full);
    if (!strcmp(state, "none")) {
        if (i >= 0)
            subs_remove(op, (size_t)i);
    } else if (!strcmp(state, "subscribed")) {
        if (i >= 0) {
            op->subs[i].pending = 0;
        } else if (op->nsubs >= psvc__conf.max_subs) {
            rc = pubsub_fail(e, HEARTH_STANZA_ERR_POLICY_VIOLATION, "too-many-subscriptions", NULL);
        } else {
            char subid[PSVC_SUBID_LEN];
            user__random_id(subid, sizeof(subid));
            psvc_sub_t *s = &op->subs[op->nsubs];
            if (!(s->jid = strdup(j.full)) || !(s->subid = strdup(subid))) {
                free(s->jid);
                rc = pubsub_fail(e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
            } else {
                s->pending = 0;
                op->nsubs++;
            }
        }
    } else {
        rc = pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL,
                         "an owner sets a subscription to subscribed or none");
    }
    if (!rc && tell(op, j.full, state, PSVC_CHANGES_MAX))
        rc = pubsub_fail(e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    hearth_jid_clear(&j);
    return rc;
}

void psvc__subs_set(psvc_op_t *op)
{
    psvc_node_t *pn = psvc__owned_node(op);
    if (!pn)
        return;
    size_t count = hearth_xml_count_elements(op->action);
    if (count > PSVC_CHANGES_MAX) {
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL,
                     "at most 100 subscriptions in one request");
        return;
    }
    /* The list may grow by one per change; the room is made at once. */
    if (subs_copy(pn, op, count)) {
        psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    pubsub_err_t e;
    for (hearth_xml_node_t *c = hearth_xml_first_element(op->action); c;
         c = hearth_xml_next_element(c))
        if (sub_change(op, c, &e)) {
            psvc__reject(op, &e);
            return;
        }
    op->node = pn;
    subs_save(op, subs_set_done);
}

/* ---- the owner's affiliations (§8.9) ---- */

void psvc__affs_get(psvc_op_t *op)
{
    psvc_node_t *pn = psvc__owned_node(op);
    if (!pn)
        return;
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = psvc__write_attr(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB_OWNER "'><affiliations node='",
                              pn->n->name, "'>");
    STRMAP_FOREACH(&pn->n->affs, e)
    {
        rc = rc ?: write_aff(&b, "jid", e->key, (pubsub_aff_t)(uintptr_t)e->value);
    }
    rc = rc ?: hearth_buf_append_str(&b, "</affiliations></pubsub>");
    if (!rc)
        psvc__result(op, b.data);
    hearth_buf_free(&b);
    psvc__done(op);
}

static void affs_set_finish(psvc_op_t *op, int err)
{
    if (err) {
        psvc__fail_storage(op, err);
        psvc__done(op);
        return;
    }
    pubsub_node_t *n = op->node->n;
    for (size_t i = 0; i < op->nchanges; i++) {
        const storage_pubsub_aff_t *c = &op->changes[i];
        if (c->affiliation)
            strmap_put(&n->affs, c->jid, (void *)(uintptr_t)pubsub_aff_parse(c->affiliation));
        else
            strmap_remove(&n->affs, c->jid);
    }
    if (op->subs) /* outcasts' subscriptions went */
        subs_take(op);
    psvc__result(op, NULL);
    psvc__done(op);
}

/* The affiliations are stored; the subscriptions of new outcasts go next. */
static void affs_set_stored(psvc_op_t *op, int err)
{
    if (err || !op->subs) {
        affs_set_finish(op, err);
        return;
    }
    subs_save(op, affs_set_finish);
}

/* One <affiliation jid affiliation/> of a change into c. */
static int aff_change(psvc_op_t *op, const psvc_node_t *pn, const hearth_xml_node_t *el,
                      storage_pubsub_aff_t *c, pubsub_err_t *e)
{
    const char *jid = hearth_xml_attr(el, "jid"), *aff = hearth_xml_attr(el, "affiliation");
    if (!psvc__is(el, "affiliation", HEARTH_NS_PUBSUB_OWNER) || !jid || !aff)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, NULL,
                           "an affiliation names a jid and an affiliation");
    pubsub_aff_t a = pubsub_aff_parse(aff);
    if (a == PUBSUB_AFF_NONE && strcmp(aff, "none"))
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL,
                           "affiliations: owner, publisher, publish-only, member, outcast, none");
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *why = NULL;
    if (hearth_jid_parse(jid, strlen(jid), &j, &why)) {
        hearth_jid_clear(&j);
        return pubsub_fail(e, HEARTH_STANZA_ERR_JID_MALFORMED, NULL, why);
    }
    int rc = 0;
    if (!(c->node = strdup(pn->n->name)) || !(c->jid = strdup(j.bare)) ||
        (a != PUBSUB_AFF_NONE && !(c->affiliation = strdup(aff))) ||
        (j.node && !strcmp(j.domain, psvc__conf.server_domain) && !(c->account = strdup(j.node))))
        rc = pubsub_fail(e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    hearth_jid_clear(&j);
    return rc;
}

void psvc__affs_set(psvc_op_t *op)
{
    psvc_node_t *pn = psvc__owned_node(op);
    if (!pn)
        return;
    pubsub_err_t e;
    size_t count = hearth_xml_count_elements(op->action), added = 0, owners = 0;
    if (count > PSVC_CHANGES_MAX ||
        !(op->changes = calloc(count ? count : 1, sizeof(*op->changes)))) {
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL,
                     "at most 100 affiliations in one request");
        return;
    }
    for (hearth_xml_node_t *c = hearth_xml_first_element(op->action); c;
         c = hearth_xml_next_element(c)) {
        storage_pubsub_aff_t *ch = &op->changes[op->nchanges++];
        if (aff_change(op, pn, c, ch, &e)) {
            psvc__reject(op, &e);
            return;
        }
        for (size_t i = 0; i + 1 < op->nchanges; i++)
            if (!strcmp(op->changes[i].jid, ch->jid)) {
                psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "a JID named twice");
                return;
            }
        added += ch->affiliation && !strmap_get(&pn->n->affs, ch->jid);
    }
    /* §8.9.2.4: a node keeps an owner. */
    STRMAP_FOREACH(&pn->n->affs, it)
    {
        int changed = 0;
        for (size_t i = 0; i < op->nchanges && !changed; i++)
            changed = !strcmp(op->changes[i].jid, it->key);
        owners += !changed && (pubsub_aff_t)(uintptr_t)it->value == PUBSUB_AFF_OWNER;
    }
    for (size_t i = 0; i < op->nchanges; i++)
        owners += op->changes[i].affiliation && !strcmp(op->changes[i].affiliation, "owner");
    if (!owners) {
        psvc__refuse(op, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL, "a node keeps at least one owner");
        return;
    }
    if (pn->n->affs.count + added > PSVC_AFFS_MAX) {
        psvc__refuse(op, HEARTH_STANZA_ERR_POLICY_VIOLATION, NULL,
                     "a node has at most 1000 affiliations");
        return;
    }
    /* An outcast is no subscriber (§4.1). */
    for (size_t i = 0; i < op->nchanges; i++) {
        if (!op->changes[i].affiliation || strcmp(op->changes[i].affiliation, "outcast"))
            continue;
        if (!op->subs && subs_copy(pn, op, 0)) {
            psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
            return;
        }
        for (size_t k = op->nsubs; k-- > 0;)
            if (bare_is(op->subs[k].jid, op->changes[i].jid))
                subs_remove(op, k);
    }
    op->node = pn;
    worker_t *w = op->w;
    psvc__await(op,
                storage_pubsub_affs_set(w->srv->storage, &w->storage_target, psvc__conf.domain,
                                        op->changes, op->nchanges, psvc__stored, op),
                affs_set_stored);
}

/* ---- an owner's answer to an authorization form (§8.6) ---- */

static void authorized(psvc_op_t *op, int err)
{
    if (err) {
        psvc__fail_storage(op, err);
        psvc__done(op);
        return;
    }
    subs_take(op);
    long k = sub_find(op->node->subs, op->node->nsubs, op->told[0]);
    psvc__send_sub_state(op->w, op->node->n->name, op->told[0],
                         k >= 0 ? op->node->subs[k].subid : NULL, op->states[0]);
    psvc__done(op);
}

void psvc__authorization(psvc_op_t *op)
{
    hearth_xml_node_t *x = NULL;
    for (hearth_xml_node_t *c = hearth_xml_first_element(op->st); c && !x;
         c = hearth_xml_next_element(c))
        if (psvc__is(c, "x", HEARTH_NS_DATA))
            x = c;
    hearth_form_t form;
    const char *why = NULL;
    if (!x || hearth_form_parse(op->arena, x, NULL, &form, &why) ||
        form.type != HEARTH_FORM_SUBMIT || !hearth_form_form_type(&form) ||
        strcmp(hearth_form_form_type(&form), HEARTH_NS_PUBSUB "#subscribe_authorization")) {
        psvc__refuse(op, x ? HEARTH_STANZA_ERR_BAD_REQUEST : HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE,
                     NULL, x ? "not a submitted subscribe_authorization form" : NULL);
        return;
    }
    const char *node = hearth_form_value(&form, "pubsub#node");
    const char *subid = hearth_form_value(&form, "pubsub#subid");
    const char *jid = hearth_form_value(&form, "pubsub#subscriber_jid");
    const char *allow = hearth_form_value(&form, "pubsub#allow");
    psvc_node_t *pn = node ? psvc__node_get(op, node) : NULL;
    if (!pn || !jid || !allow) {
        psvc__refuse(op, pn ? HEARTH_STANZA_ERR_BAD_REQUEST : HEARTH_STANZA_ERR_ITEM_NOT_FOUND,
                     NULL, NULL);
        return;
    }
    if (pubsub_node_aff(pn->n, op->requester_bare) != PUBSUB_AFF_OWNER) {
        psvc__refuse(op, HEARTH_STANZA_ERR_FORBIDDEN, NULL, NULL);
        return;
    }
    long i = -1;
    for (size_t k = 0; k < pn->nsubs && i < 0; k++)
        if (pn->subs[k].pending && !strcmp(pn->subs[k].jid, jid) &&
            (!subid || !strcmp(pn->subs[k].subid, subid)))
            i = (long)k;
    if (i < 0) {
        psvc__refuse(op, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, "no such pending subscription");
        return;
    }
    int yes = !strcmp(allow, "1") || !strcmp(allow, "true");
    op->node = pn;
    if (subs_copy(pn, op, 0) || tell(op, jid, yes ? "subscribed" : "none", 1)) {
        psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    if (yes)
        op->subs[i].pending = 0;
    else
        subs_remove(op, (size_t)i);
    subs_save(op, authorized);
}

/* ---- an account removed ---- */

void psvc__forget(psvc_op_t *op)
{
    const char *bare = hearth_xml_attr(op->st, "jid");
    worker_t *w = op->w;
    STRMAP_FOREACH(&psvc__get(w)->nodes, e)
    {
        psvc_node_t *pn = e->value;
        strmap_remove(&pn->n->affs, bare); /* its rows went with the account */
        size_t before = pn->nsubs;
        for (size_t k = pn->nsubs; k-- > 0;) {
            if (!bare_is(pn->subs[k].jid, bare))
                continue;
            free(pn->subs[k].jid);
            free(pn->subs[k].subid);
            memmove(&pn->subs[k], &pn->subs[k + 1], (pn->nsubs - k - 1) * sizeof(*pn->subs));
            pn->nsubs--;
        }
        char *doc = pn->nsubs == before ? NULL : psvc__subs_store(pn->subs, pn->nsubs);
        if (doc && storage_doc_put(w->srv->storage, &w->storage_target, PSVC_DOC_KIND, pn->n->name,
                                   doc, psvc__logged, NULL))
            hlog(LOG_ERROR, "pubsub %s: the subscriptions of %s to %s stay stored",
                 psvc__conf.domain, bare, pn->n->name);
        free(doc);
    }
    psvc__done(op);
}
