/* The pubsub service's requests on nodes and items (pubsub_svc.h), on its home worker with its
 * nodes loaded: create (§8.1), configure and default (§8.2-8.3), publish with publish-options
 * (§7.1), retract (§7.2), items (§6.5), delete (§8.4), purge (§8.5); the helpers the requests
 * share (pubsub_svc_subs.c has those on subscriptions and affiliations), the owner's roster for
 * the access models that need it, and the dispatch of every request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/pubsub_svc.h"

psvc_node_t *psvc__node_get(const psvc_op_t *op, const char *name)
{
    return strmap_get(&psvc__get(op->w)->nodes, name);
}

int psvc__name_of(const hearth_xml_node_t *el, const char **out, pubsub_err_t *e)
{
    *out = hearth_xml_attr(el, "node");
    if (!*out || !**out)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "nodeid-required", NULL);
    if (!pubsub_name_ok(*out, PUBSUB_NODE_MAX))
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL, "node name too long");
    return 0;
}

/* The node op->action names; NULL after op was answered and ended (no name, no such node). */
psvc_node_t *psvc__named_node(psvc_op_t *op)
{
    pubsub_err_t e;
    const char *name;
    if (psvc__name_of(op->action, &name, &e)) {
        psvc__reject(op, &e);
        return NULL;
    }
    psvc_node_t *pn = psvc__node_get(op, name);
    if (!pn)
        psvc__refuse(op, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, NULL);
    return pn;
}

/* The node, when the requester owns it (§8: forbidden otherwise). */
psvc_node_t *psvc__owned_node(psvc_op_t *op)
{
    psvc_node_t *pn = psvc__named_node(op);
    if (pn && pubsub_node_aff(pn->n, op->requester_bare) != PUBSUB_AFF_OWNER) {
        psvc__refuse(op, HEARTH_STANZA_ERR_FORBIDDEN, NULL, NULL);
        return NULL;
    }
    return pn;
}

int psvc__is_local(const char *bare)
{
    const char *at = strchr(bare, '@');
    return at && !strcmp(at + 1, psvc__conf.server_domain);
}

/* The jid attribute of el, prepared into *out (the caller clears it); -1 after op was answered
 * (bad-request with invalid-jid when absent, jid-malformed when it is no JID). */
int psvc__jid_attr(psvc_op_t *op, const hearth_xml_node_t *el, hearth_jid_t *out)
{
    const char *jid = hearth_xml_attr(el, "jid");
    const char *why = NULL;
    if (!jid || hearth_jid_parse(jid, strlen(jid), out, &why)) {
        hearth_jid_clear(out);
        psvc__refuse(op, jid ? HEARTH_STANZA_ERR_JID_MALFORMED : HEARTH_STANZA_ERR_BAD_REQUEST,
                     jid ? NULL : "invalid-jid", why);
        return -1;
    }
    return 0;
}

/* ---- the owner's roster (access models presence and roster) ---- */

static void roster_loaded(void *ud, int err, const storage_user_t *u)
{
    psvc_op_t *op = ud;
    worker_t *w = op->w;
    psvc__back(op);
    op->roster_known = 1;
    size_t n = !err && u && u->exists ? u->nitems : 0;
    if (n && !(op->contacts = calloc(n, sizeof(*op->contacts))))
        n = 0;
    for (size_t i = 0; i < n; i++) {
        const storage_roster_item_t *it = &u->items[i];
        psvc_contact_t *c = &op->contacts[op->ncontacts];
        if (!(c->jid = strdup(it->jid)))
            break;
        op->ncontacts++;
        c->from = (it->subscription & STORAGE_SUB_FROM) != 0;
        if (it->ngroups && (c->groups = calloc(it->ngroups, sizeof(char *))))
            for (size_t k = 0; k < it->ngroups; k++)
                if ((c->groups[c->ngroups] = strdup(it->groups[k])))
                    c->ngroups++;
    }
    if (err)
        hlog(LOG_ERROR, "pubsub %s: an owner's roster could not be read: %s", psvc__conf.domain,
             hearth_strerror(err));
    op->after_roster(op);
    psvc__run(w);
}

/* fn(op) once the owner's roster is at hand, when access model m needs it: for the requester
 * (requester: 1) unless its affiliation decides, or for pn's subscribers (requester: 0). A
 * service node's 'roster' is its owner's: the first local owner's, by JID, read from storage. */
void psvc__with_roster(psvc_op_t *op, psvc_node_t *pn, pubsub_access_t m, int requester,
                       void (*fn)(psvc_op_t *op))
{
    pubsub_aff_t aff = pubsub_node_aff(pn->n, op->requester_bare);
    if (op->roster_known || (m != PUBSUB_ACCESS_PRESENCE && m != PUBSUB_ACCESS_ROSTER) ||
        (requester && aff != PUBSUB_AFF_NONE && aff != PUBSUB_AFF_MEMBER) ||
        (!requester && !pn->nsubs)) {
        fn(op);
        return;
    }
    const char *owner = NULL;
    STRMAP_FOREACH(&pn->n->affs, e)
    {
        if ((pubsub_aff_t)(uintptr_t)e->value == PUBSUB_AFF_OWNER && psvc__is_local(e->key) &&
            (!owner || strcmp(e->key, owner) < 0))
            owner = e->key;
    }
    if (!owner) {
        op->roster_known = 1; /* nobody's roster: nobody but affiliates is let in */
        fn(op);
        return;
    }
    char *local = strndup(owner, strcspn(owner, "@"));
    worker_t *w = op->w;
    int rc = local
                 ? storage_user_load(w->srv->storage, &w->storage_target, local, roster_loaded, op)
                 : HEARTH_ENOMEM;
    free(local);
    op->node = pn;
    op->after_roster = fn;
    if (rc) {
        psvc__fail_storage(op, rc);
        psvc__done(op);
        return;
    }
    psvc__get(w)->busy = op;
}

/* ---- publish (§7.1) ---- */

static void publish_done(psvc_op_t *op, int err)
{
    if (err) {
        psvc__fail_storage(op, err);
        psvc__done(op);
        return;
    }
    psvc_node_t *pn = op->node;
    pubsub_node_t *n = pn->n;
    if (op->notify) { /* notification-only, without an item: nothing kept */
        hearth_buf_t b = HEARTH_BUF_INIT;
        int rc = psvc__write_attr(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB "'><publish node='",
                                  n->name, "'/></pubsub>");
        if (!rc)
            psvc__result(op, b.data);
        hearth_buf_free(&b);
        psvc__notify_item(op, pn, NULL, NULL);
        psvc__done(op);
        return;
    }
    int persist = n->config.persist_items;
    if (pubsub_node_push(n, op->id, op->size, op->stamp_ms,
                         !persist || op->size <= PSVC_LAST_INLINE ? op->payload : NULL) == 0)
        pubsub_node_trim(n, persist ? op->keep : 1);
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc =
        psvc__write_attr(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB "'><publish node='", n->name, "'>");
    rc = rc ?: pubsub_write_item(&b, op->id, NULL);
    rc = rc ?: hearth_buf_append_str(&b, "</publish></pubsub>");
    if (!rc)
        psvc__result(op, b.data);
    hearth_buf_free(&b);
    psvc__notify_item(op, pn, op->id, op->payload);
    psvc__done(op);
}

/* §4.1 and pubsub#publish_model. */
static int may_publish(const psvc_node_t *pn, const pubsub_who_t *who)
{
    switch (who->aff) {
    case PUBSUB_AFF_OUTCAST:
        return 0;
    case PUBSUB_AFF_OWNER:
    case PUBSUB_AFF_PUBLISHER:
    case PUBSUB_AFF_PUBLISH_ONLY:
        return 1;
    default:
        break;
    }
    switch (pn->n->config.publish_model) {
    case PUBSUB_PUBLISH_OPEN:
        return 1;
    case PUBSUB_PUBLISH_SUBSCRIBERS:
        return who->subscribed;
    default:
        return 0;
    }
}

static int publish_check(psvc_op_t *op, psvc_node_t *pn, pubsub_err_t *e)
{
    pubsub_who_t who = psvc__who(op, pn);
    if (!may_publish(pn, &who))
        return pubsub_fail(e, HEARTH_STANZA_ERR_FORBIDDEN, NULL, NULL);
    hearth_xml_node_t *item = NULL;
    for (hearth_xml_node_t *c = hearth_xml_first_element(op->action); c;
         c = hearth_xml_next_element(c)) {
        if (!psvc__is(c, "item", HEARTH_NS_PUBSUB))
            return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "publish holds one item");
        if (item)
            return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "invalid-payload",
                               "one item per publish");
        item = c;
    }
    /* §7.1.3.6: a transient notification-only node takes publishes without an item (its
     * notifications say only that something happened); every other node one with an item. */
    const pubsub_config_t *conf = &pn->n->config;
    if (!conf->persist_items && !conf->deliver_payloads) {
        if (item)
            return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "item-forbidden", NULL);
        op->notify = 1;
        hearth_xml_node_t *x = op->extra ? hearth_xml_first_element(op->extra) : NULL;
        return op->extra ? pubsub_config_check(conf, &psvc__conf.service, op->arena, x, e) : 0;
    }
    if (!item)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "item-required", NULL);
    const char *id = hearth_xml_attr(item, "id");
    char gen[25];
    if (id && !pubsub_name_ok(id, PUBSUB_ITEM_ID_MAX))
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL,
                           *id ? "item id too long" : "an empty item id");
    if (!id) {
        user__random_id(gen, sizeof(gen));
        id = gen;
    }
    if (!(op->id = strdup(id)))
        return pubsub_fail(e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    if (pubsub_item_payload(item, psvc__conf.max_item_size, &op->payload, &op->size, e))
        return -1;
    hearth_xml_node_t *x = op->extra ? hearth_xml_first_element(op->extra) : NULL;
    if (op->extra && pubsub_config_check(&pn->n->config, &psvc__conf.service, op->arena, x, e))
        return -1;
    /* A node's items go out whole in one reply: their bytes are bounded. */
    const pubsub_node_t *n = pn->n;
    size_t keep =
        n->config.persist_items ? pubsub_config_max_items(&n->config, &psvc__conf.service) : 1;
    long old = pubsub_node_find(n, op->id);
    size_t gone = (old >= 0 ? n->items[old].size : 0) + pubsub_node_dropped_bytes(n, op->id, keep);
    if (n->bytes - gone + op->size > psvc__conf.max_node_bytes)
        return pubsub_fail(e, HEARTH_STANZA_ERR_POLICY_VIOLATION, NULL,
                           "this node's items are as large as they may be (pubsub.max_node_bytes)");
    return 0;
}

static void publish_store(psvc_op_t *op);

static void publish(psvc_op_t *op)
{
    psvc_node_t *pn = psvc__named_node(op);
    if (!pn)
        return;
    pubsub_err_t e;
    if (publish_check(op, pn, &e)) {
        psvc__reject(op, &e);
        return;
    }
    op->node = pn;
    psvc__with_roster(op, pn, pn->n->config.access, 0, publish_store);
}

static void publish_store(psvc_op_t *op)
{
    pubsub_node_t *n = op->node->n;
    op->stamp_ms = user__now_ms();
    op->keep =
        n->config.persist_items ? pubsub_config_max_items(&n->config, &psvc__conf.service) : 1;
    if (!n->config.persist_items) {
        publish_done(op, 0); /* only the newest, in memory */
        return;
    }
    worker_t *w = op->w;
    storage_pubsub_item_t it = {
        .id = op->id, .publisher = op->requester, .stamp_ms = op->stamp_ms, .payload = op->payload};
    psvc__await(op,
                storage_pubsub_publish(w->srv->storage, &w->storage_target, psvc__conf.domain, NULL,
                                       n->name, NULL, &it, op->keep, psvc__stored, op),
                publish_done);
}

/* ---- retract (§7.2) ---- */

static void retract_done(psvc_op_t *op, int err)
{
    if (err) {
        psvc__fail_storage(op, err);
        psvc__done(op);
        return;
    }
    psvc_node_t *pn = op->node;
    long i = pubsub_node_find(pn->n, op->id);
    if (i >= 0)
        pubsub_node_remove(pn->n, (size_t)i);
    psvc__result(op, NULL);
    if (op->notify)
        psvc__notify_simple(op, pn, NULL, op->id, NULL);
    psvc__done(op);
}

static void retract_store(psvc_op_t *op);

static void retract(psvc_op_t *op)
{
    psvc_node_t *pn = psvc__named_node(op);
    if (!pn)
        return;
    pubsub_aff_t aff = pubsub_node_aff(pn->n, op->requester_bare);
    if (aff != PUBSUB_AFF_OWNER && aff != PUBSUB_AFF_PUBLISHER && aff != PUBSUB_AFF_PUBLISH_ONLY) {
        psvc__refuse(op, HEARTH_STANZA_ERR_FORBIDDEN, NULL, NULL);
        return;
    }
    hearth_xml_node_t *item = hearth_xml_child(op->action, "item", HEARTH_NS_PUBSUB);
    const char *id = item ? hearth_xml_attr(item, "id") : NULL;
    if (!id || !*id) {
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, "item-required", NULL);
        return;
    }
    if (!pn->n->config.persist_items) {
        pubsub_err_t e;
        pubsub_unsupported(&e, "persistent-items");
        psvc__reject(op, &e);
        return;
    }
    if (pubsub_node_find(pn->n, id) < 0) {
        psvc__refuse(op, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, NULL);
        return;
    }
    const char *notify = hearth_xml_attr(op->action, "notify");
    op->notify = (notify && (!strcmp(notify, "true") || !strcmp(notify, "1"))) ||
                 pn->n->config.notify_retract;
    op->node = pn;
    if (!(op->id = strdup(id))) {
        psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    psvc__with_roster(op, pn, op->notify ? pn->n->config.access : PUBSUB_ACCESS_OPEN, 0,
                      retract_store);
}

static void retract_store(psvc_op_t *op)
{
    worker_t *w = op->w;
    psvc__await(op,
                storage_pubsub_retract(w->srv->storage, &w->storage_target, psvc__conf.domain,
                                       op->node->n->name, op->id, psvc__stored, op),
                retract_done);
}

/* ---- items (§6.5) ---- */

static void items_reply(psvc_op_t *op, const char *node, const storage_pubsub_item_t *items,
                        size_t n)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = psvc__write_attr(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB "'><items node='", node, "'>");
    for (size_t i = 0; !rc && i < n; i++)
        rc = pubsub_write_item(&b, items[i].id, items[i].payload);
    rc = rc ?: hearth_buf_append_str(&b, "</items></pubsub>");
    if (!rc) {
        psvc__result(op, b.data);
        psvc__done(op);
    } else {
        psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    }
    hearth_buf_free(&b);
}

static void items_read(void *ud, int err, const storage_pubsub_item_t *items, size_t n)
{
    psvc_op_t *op = ud;
    worker_t *w = op->w;
    psvc__back(op);
    if (err) {
        psvc__fail_storage(op, err);
        psvc__done(op);
    } else {
        items_reply(op, op->node->n->name, items, n);
    }
    psvc__run(w);
}

static void items_last(psvc_op_t *op, const pubsub_node_t *n, int any)
{
    storage_pubsub_item_t it = {0};
    if (any && n->nitems && n->last_payload) {
        it.id = n->items[n->nitems - 1].id;
        it.payload = n->last_payload;
    }
    items_reply(op, n->name, &it, it.id ? 1 : 0);
}

static void items_go(psvc_op_t *op)
{
    psvc_node_t *pn = op->node;
    pubsub_node_t *n = pn->n;
    pubsub_err_t e;
    pubsub_who_t who = psvc__who(op, pn);
    if (pubsub_access(n, &who, &e)) {
        psvc__reject(op, &e);
        return;
    }
    const char *mi = hearth_xml_attr(op->action, "max_items");
    unsigned long max = 0;
    if (mi) {
        char *end;
        max = *mi >= '1' && *mi <= '9' ? strtoul(mi, &end, 10) : 0;
        if (!max || *end) {
            psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "max_items is a positive number");
            return;
        }
    }
    const char *ids[STORAGE_PUBSUB_IDS_MAX];
    size_t nids = 0;
    for (hearth_xml_node_t *c = hearth_xml_first_element(op->action); c;
         c = hearth_xml_next_element(c)) {
        const char *id = hearth_xml_attr(c, "id");
        if (!psvc__is(c, "item", HEARTH_NS_PUBSUB) || !pubsub_name_ok(id, PUBSUB_ITEM_ID_MAX) ||
            nids == STORAGE_PUBSUB_IDS_MAX) {
            psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL,
                         "items names items by id, at most 1000 of them");
            return;
        }
        ids[nids++] = id;
    }
    if (!n->config.persist_items) {
        int named = !nids; /* §6.5.5: a node that keeps no items answers with the last one */
        for (size_t i = 0; n->nitems && i < nids; i++)
            named |= !strcmp(ids[i], n->items[n->nitems - 1].id);
        items_last(op, n, named);
        return;
    }
    const char *newest = n->nitems ? n->items[n->nitems - 1].id : NULL;
    if (n->nitems == 0 || (n->last_payload && ((!nids && (max == 1 || n->nitems == 1)) ||
                                               (nids == 1 && !strcmp(ids[0], newest))))) {
        items_last(op, n, 1);
        return;
    }
    worker_t *w = op->w;
    int rc = storage_pubsub_items(w->srv->storage, &w->storage_target, psvc__conf.domain, n->name,
                                  ids, nids, max, items_read, op);
    if (rc) {
        psvc__fail_storage(op, rc);
        psvc__done(op);
        return;
    }
    psvc__get(w)->busy = op;
}

static void items(psvc_op_t *op)
{
    psvc_node_t *pn = psvc__named_node(op);
    if (pn) {
        op->node = pn;
        psvc__with_roster(op, pn, pn->n->config.access, 1, items_go);
    }
}

/* ---- create (§8.1) ---- */

/* Whether configuration form x asks for a collection node (XEP-0248), which this service does
 * not have: 0, or -1 with feature-not-implemented in *e. A form that does not parse is left to
 * pubsub_config_apply's errors. */
static int no_collection(psvc_op_t *op, const hearth_xml_node_t *x, pubsub_err_t *e)
{
    hearth_form_t form;
    if (!x || hearth_form_parse(op->arena, x, NULL, &form, NULL))
        return 0;
    const char *type = hearth_form_value(&form, "pubsub#node_type");
    return type && strcmp(type, "leaf") ? pubsub_unsupported(e, "collections") : 0;
}

static size_t owned_count(const psvc_op_t *op)
{
    size_t n = 0;
    STRMAP_FOREACH(&psvc__get(op->w)->nodes, e)
    {
        psvc_node_t *pn = e->value;
        n += pubsub_node_aff(pn->n, op->requester_bare) == PUBSUB_AFF_OWNER;
    }
    return n;
}

static void create_done(psvc_op_t *op, int err)
{
    psvc_t *s = psvc__get(op->w);
    psvc_node_t *pn = op->node;
    if (err || strmap_put(&s->nodes, pn->n->name, pn) ||
        strmap_put(&pn->n->affs, op->requester_bare, (void *)(uintptr_t)PUBSUB_AFF_OWNER)) {
        if (!err)
            strmap_remove(&s->nodes, pn->n->name);
        psvc__fail_storage(op, err ? err : HEARTH_ENOMEM);
        psvc__done(op);
        return;
    }
    op->creating = 0;
    if (op->notify) { /* an instant node: its name is news to the requester (§8.1.2) */
        hearth_buf_t b = HEARTH_BUF_INIT;
        int rc = psvc__write_attr(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB "'><create node='",
                                  pn->n->name, "'/></pubsub>");
        if (!rc)
            psvc__result(op, b.data);
        hearth_buf_free(&b);
    } else {
        psvc__result(op, NULL);
    }
    psvc__done(op);
}

static void create_go(psvc_op_t *op)
{
    pubsub_err_t e;
    const char *node = hearth_xml_attr(op->action, "node");
    char gen[40];
    if (!node || !*node) { /* §8.1.2: an instant node, named by the service */
        char id[25];
        user__random_id(id, sizeof(id));
        snprintf(gen, sizeof(gen), "node-%s", id);
        node = gen;
        op->notify = 1;
    } else if (!pubsub_name_ok(node, PUBSUB_NODE_MAX)) {
        psvc__refuse(op, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL, "node name too long");
        return;
    }
    if (psvc__node_get(op, node)) {
        psvc__refuse(op, HEARTH_STANZA_ERR_CONFLICT, NULL, NULL);
        return;
    }
    if (owned_count(op) >= psvc__conf.max_nodes) {
        psvc__refuse(op, HEARTH_STANZA_ERR_POLICY_VIOLATION, NULL,
                     "you own as many nodes as one may here (pubsub.max_nodes_per_user)");
        return;
    }
    if (op->extra && hearth_xml_attr(op->extra, "node")) {
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "configure names no node here");
        return;
    }
    pubsub_config_t c;
    hearth_xml_node_t *x = op->extra ? hearth_xml_first_element(op->extra) : NULL;
    if (pubsub_config_copy(&c, &psvc__conf.service.defaults)) {
        psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    if (x && (no_collection(op, x, &e) ||
              pubsub_config_apply(&c, &psvc__conf.service, op->arena, x, PUBSUB_FORM_CONFIG, &e))) {
        pubsub_config_clear(&c);
        psvc__reject(op, &e);
        return;
    }
    char *config = pubsub_config_store(&c);
    size_t keep = pubsub_config_max_items(&c, &psvc__conf.service);
    psvc_node_t *pn = calloc(1, sizeof(*pn));
    storage_pubsub_aff_t owner = {
        .node = (char *)node, .jid = op->requester_bare, .affiliation = "owner"};
    char *local = psvc__is_local(op->requester_bare)
                      ? strndup(op->requester_bare, strcspn(op->requester_bare, "@"))
                      : NULL;
    owner.account = local;
    if (!config || !pn || !(pn->n = pubsub_node_new(node, &c))) {
        pubsub_config_clear(&c);
        free(config);
        free(local);
        psvc__node_free(pn);
        psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    op->node = pn;
    op->creating = 1;
    worker_t *w = op->w;
    /* Two writes in storage's order: the node, then its owner (whose row needs the node). */
    int rc = storage_pubsub_node_put(w->srv->storage, &w->storage_target, psvc__conf.domain, NULL,
                                     node, config, keep, psvc__logged, NULL);
    rc = rc
             ?: storage_pubsub_affs_set(w->srv->storage, &w->storage_target, psvc__conf.domain,
                                        &owner, 1, psvc__stored, op);
    free(config);
    free(local);
    psvc__await(op, rc, create_done);
}

static void creator_checked(void *ud, int err, const storage_account_t *acct)
{
    psvc_op_t *op = ud;
    worker_t *w = op->w;
    psvc__back(op);
    if (err && err != HEARTH_ENOTFOUND) {
        psvc__fail_storage(op, err);
        psvc__done(op);
    } else if (err || !acct || !acct->admin) {
        psvc__refuse(op, HEARTH_STANZA_ERR_FORBIDDEN, NULL,
                     "only administrators create nodes here (pubsub.create_policy)");
    } else {
        create_go(op);
    }
    psvc__run(w);
}

/* pubsub.create_policy: who may create nodes. */
static void create(psvc_op_t *op)
{
    if (psvc__conf.create == PSVC_CREATE_OPEN) {
        create_go(op);
        return;
    }
    if (!psvc__is_local(op->requester_bare)) {
        psvc__refuse(op, HEARTH_STANZA_ERR_FORBIDDEN, NULL,
                     "only users of this server create nodes here");
        return;
    }
    if (psvc__conf.create == PSVC_CREATE_LOCAL) {
        create_go(op);
        return;
    }
    char *local = strndup(op->requester_bare, strcspn(op->requester_bare, "@"));
    worker_t *w = op->w;
    int rc =
        local ? storage_account_get(w->srv->storage, &w->storage_target, local, creator_checked, op)
              : HEARTH_ENOMEM;
    free(local);
    if (rc) {
        psvc__fail_storage(op, rc);
        psvc__done(op);
        return;
    }
    psvc__get(w)->busy = op;
}

/* ---- configure, default (§8.2, §8.3) ---- */

static void configure_get(psvc_op_t *op)
{
    psvc_node_t *pn = psvc__owned_node(op);
    if (!pn)
        return;
    hearth_arena_t *a = op->arena;
    hearth_xml_node_t *p = hearth_xml_new(a, "pubsub", HEARTH_NS_PUBSUB_OWNER);
    hearth_xml_node_t *c = hearth_xml_add_child(a, p, "configure", NULL);
    if (c && !hearth_xml_set_attr(a, c, "node", pn->n->name) &&
        pubsub_config_form_of(a, c, &pn->n->config, &psvc__conf.service, HEARTH_FORM_FORM))
        psvc__result_node(op, p);
    else
        psvc__fail_storage(op, HEARTH_ENOMEM);
    psvc__done(op);
}

static void default_get(psvc_op_t *op)
{
    hearth_arena_t *a = op->arena;
    hearth_xml_node_t *p = hearth_xml_new(a, "pubsub", HEARTH_NS_PUBSUB_OWNER);
    hearth_xml_node_t *d = hearth_xml_add_child(a, p, "default", NULL);
    if (d && pubsub_config_form_of(a, d, &psvc__conf.service.defaults, &psvc__conf.service,
                                   HEARTH_FORM_FORM))
        psvc__result_node(op, p);
    else
        psvc__fail_storage(op, HEARTH_ENOMEM);
    psvc__done(op);
}

static void configure_done(psvc_op_t *op, int err)
{
    if (err) {
        psvc__fail_storage(op, err);
        psvc__done(op);
        return;
    }
    pubsub_node_t *n = op->node->n;
    pubsub_config_t old = n->config;
    n->config = op->config;
    op->config = old; /* freed with op */
    if (!n->config.persist_items && old.persist_items && n->nitems && !n->last_payload)
        pubsub_node_trim(n, 0); /* the stored items went, and the newest is not at hand */
    pubsub_node_trim(n, n->config.persist_items ? op->keep : 1);
    psvc__result(op, NULL);
    if (n->config.notify_config) /* §8.2.5.1 */
        psvc__notify_config(op, op->node);
    psvc__done(op);
}

static void configure_store(psvc_op_t *op);

static void configure_set(psvc_op_t *op)
{
    psvc_node_t *pn = psvc__owned_node(op);
    if (!pn)
        return;
    hearth_xml_node_t *x = hearth_xml_first_element(op->action);
    if (x && hearth_form_type_of(x) == HEARTH_FORM_CANCEL && !strcmp(x->ns, HEARTH_NS_DATA)) {
        psvc__result(op, NULL); /* §8.2.4: the configuration stays as it is */
        psvc__done(op);
        return;
    }
    pubsub_err_t e;
    if (!x) {
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "a data form is expected");
        return;
    }
    if (pubsub_config_copy(&op->config, &pn->n->config)) {
        psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    if (no_collection(op, x, &e) || pubsub_config_apply(&op->config, &psvc__conf.service, op->arena,
                                                        x, PUBSUB_FORM_CONFIG, &e)) {
        psvc__reject(op, &e);
        return;
    }
    op->node = pn;
    op->keep =
        op->config.persist_items ? pubsub_config_max_items(&op->config, &psvc__conf.service) : 0;
    psvc__with_roster(op, pn, op->config.notify_config ? op->config.access : PUBSUB_ACCESS_OPEN, 0,
                      configure_store);
}

static void configure_store(psvc_op_t *op)
{
    psvc_node_t *pn = op->node;
    char *config = pubsub_config_store(&op->config);
    if (!config) {
        psvc__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    worker_t *w = op->w;
    int rc = storage_pubsub_node_put(w->srv->storage, &w->storage_target, psvc__conf.domain, NULL,
                                     pn->n->name, config, op->keep, psvc__stored, op);
    free(config);
    psvc__await(op, rc, configure_done);
}

/* ---- delete, purge (§8.4, §8.5) ---- */

static void delete_done(psvc_op_t *op, int err)
{
    if (err) {
        psvc__fail_storage(op, err);
        psvc__done(op);
        return;
    }
    psvc_node_t *pn = op->node;
    psvc__result(op, NULL);
    if (pn->n->config.notify_delete)
        psvc__notify_simple(op, pn, "delete", NULL, op->redirect);
    strmap_remove(&psvc__get(op->w)->nodes, pn->n->name);
    psvc__node_free(pn);
    psvc__done(op);
}

static void purge_done(psvc_op_t *op, int err)
{
    if (err) {
        psvc__fail_storage(op, err);
        psvc__done(op);
        return;
    }
    psvc_node_t *pn = op->node;
    pubsub_node_trim(pn->n, 0);
    psvc__result(op, NULL);
    if (pn->n->config.notify_retract) /* §8.5.2: one <purge/>, not a retraction per item */
        psvc__notify_simple(op, pn, "purge", NULL, NULL);
    psvc__done(op);
}

static void purge_store(psvc_op_t *op);

static void delete_or_purge(psvc_op_t *op, int purge)
{
    psvc_node_t *pn = psvc__owned_node(op);
    if (!pn)
        return;
    if (purge && !pn->n->config.persist_items) {
        pubsub_err_t e;
        pubsub_unsupported(&e, "persistent-items");
        psvc__reject(op, &e);
        return;
    }
    hearth_xml_node_t *r =
        purge ? NULL : hearth_xml_child(op->action, "redirect", HEARTH_NS_PUBSUB_OWNER);
    const char *uri = r ? hearth_xml_attr(r, "uri") : NULL;
    if (uri && (strlen(uri) > PUBSUB_TEXT_MAX || !(op->redirect = strdup(uri)))) {
        psvc__refuse(op, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL, "redirect uri too long");
        return;
    }
    op->node = pn;
    if (purge) {
        psvc__with_roster(op, pn,
                          pn->n->config.notify_retract ? pn->n->config.access : PUBSUB_ACCESS_OPEN,
                          0, purge_store);
        return;
    }
    /* Deleted: every subscriber hears of it, whatever the owner's roster says now. */
    worker_t *w = op->w;
    storage_t *st = w->srv->storage;
    int rc =
        storage_doc_delete(st, &w->storage_target, PSVC_DOC_KIND, pn->n->name, psvc__logged, NULL);
    rc = rc
             ?: storage_pubsub_node_delete(st, &w->storage_target, psvc__conf.domain, pn->n->name,
                                           psvc__stored, op);
    psvc__await(op, rc, delete_done);
}

static void purge_store(psvc_op_t *op)
{
    worker_t *w = op->w;
    psvc__await(op,
                storage_pubsub_purge(w->srv->storage, &w->storage_target, psvc__conf.domain,
                                     op->node->n->name, psvc__stored, op),
                purge_done);
}

/* ---- dispatch ---- */

/* <pubsub xmlns='…pubsub'>: one action, with publish-options after a publish, configure after a
 * create, options after a subscribe. */
static void pubsub_request(psvc_op_t *op, const hearth_xml_node_t *p, int set)
{
    hearth_xml_node_t *a = hearth_xml_first_element(p);
    hearth_xml_node_t *b = a ? hearth_xml_next_element(a) : NULL;
    if (!a || (b && hearth_xml_next_element(b)) || strcmp(a->ns, HEARTH_NS_PUBSUB) ||
        (b && !(set && ((psvc__is(a, "publish", HEARTH_NS_PUBSUB) &&
                         psvc__is(b, "publish-options", HEARTH_NS_PUBSUB)) ||
                        (psvc__is(a, "create", HEARTH_NS_PUBSUB) &&
                         psvc__is(b, "configure", HEARTH_NS_PUBSUB)) ||
                        (psvc__is(a, "subscribe", HEARTH_NS_PUBSUB) &&
                         psvc__is(b, "options", HEARTH_NS_PUBSUB)))))) {
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "one pubsub action per request");
        return;
    }
    op->action = a;
    op->extra = b;
    const char *name = a->name;
    if (set && !strcmp(name, "publish"))
        publish(op);
    else if (set && !strcmp(name, "retract"))
        retract(op);
    else if (set && !strcmp(name, "create"))
        create(op);
    else if (set && !strcmp(name, "subscribe"))
        psvc__subscribe(op);
    else if (set && !strcmp(name, "unsubscribe"))
        psvc__unsubscribe(op);
    else if (!set && !strcmp(name, "items"))
        items(op);
    else if (!set && !strcmp(name, "subscriptions"))
        psvc__own_subscriptions(op);
    else if (!set && !strcmp(name, "affiliations"))
        psvc__own_affiliations(op);
    else if (!strcmp(name, "options"))
        set ? psvc__options_set(op) : psvc__options_get(op);
    else if (!set && !strcmp(name, "default"))
        psvc__options_default(op);
    else
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, NULL);
}

static void owner_request(psvc_op_t *op, const hearth_xml_node_t *p, int set)
{
    hearth_xml_node_t *a = hearth_xml_first_element(p);
    if (!a || hearth_xml_next_element(a) || strcmp(a->ns, HEARTH_NS_PUBSUB_OWNER)) {
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL,
                     "one pubsub#owner action per request");
        return;
    }
    op->action = a;
    const char *name = a->name;
    if (!strcmp(name, "configure"))
        set ? configure_set(op) : configure_get(op);
    else if (!set && !strcmp(name, "default"))
        default_get(op);
    else if (set && (!strcmp(name, "delete") || !strcmp(name, "purge")))
        delete_or_purge(op, !strcmp(name, "purge"));
    else if (!strcmp(name, "subscriptions"))
        set ? psvc__subs_set(op) : psvc__subs_get(op);
    else if (!strcmp(name, "affiliations"))
        set ? psvc__affs_set(op) : psvc__affs_get(op);
    else
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, NULL);
}

void psvc__process(psvc_op_t *op)
{
    if (psvc__is(op->st, "forget", PSVC_NS_INTERNAL)) {
        psvc__forget(op);
        return;
    }
    if (!strcmp(op->st->name, "message")) {
        psvc__authorization(op);
        return;
    }
    const char *type = hearth_xml_attr(op->st, "type");
    int set = type && !strcmp(type, "set");
    hearth_xml_node_t *p = hearth_xml_first_element(op->st);
    if (p && hearth_xml_next_element(p))
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "an IQ holds one element");
    else if (psvc__is(p, "pubsub", HEARTH_NS_PUBSUB))
        pubsub_request(op, p, set);
    else if (psvc__is(p, "pubsub", HEARTH_NS_PUBSUB_OWNER))
        owner_request(op, p, set);
    else if (!set && psvc__is(p, "query", HEARTH_NS_DISCO_INFO))
        psvc__disco(op, p, 0);
    else if (!set && psvc__is(p, "query", HEARTH_NS_DISCO_ITEMS))
        psvc__disco(op, p, 1);
    else
        psvc__refuse(op, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL, NULL);
}
