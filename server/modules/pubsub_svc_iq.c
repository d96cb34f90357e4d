/* The pubsub service's requests (pubsub_svc.h), on its home worker with its nodes loaded:
 * create (§8.1), configure and default (§8.2-8.3), publish with publish-options (§7.1), retract
 * (§7.2), items (§6.5), subscribe and unsubscribe (§6.1-6.2), the requester's subscriptions and
 * affiliations (§5.6-5.7), delete (§8.4), purge (§8.5), the owner's management of subscriptions
 * and affiliations (§8.8-8.9), and an owner's answer to an authorization form (§8.6). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/pubsub_svc.h"

static psvc_node_t *node_get(const psvc_op_t *op, const char *name)
{
    return strmap_get(&psvc__get(op->w)->nodes, name);
}

static int name_of(const hearth_xml_node_t *el, const char **out, pubsub_err_t *e)
{
    *out = hearth_xml_attr(el, "node");
    if (!*out || !**out)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "nodeid-required", NULL);
    if (!pubsub_name_ok(*out, PUBSUB_NODE_MAX))
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL, "node name too long");
    return 0;
}

/* The node op->action names; NULL after op was answered and ended (no name, no such node). */
static psvc_node_t *named_node(psvc_op_t *op)
{
    pubsub_err_t e;
    const char *name;
    if (name_of(op->action, &name, &e)) {
        psvc__reject(op, &e);
        return NULL;
    }
    psvc_node_t *pn = node_get(op, name);
    if (!pn)
        psvc__refuse(op, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, NULL);
    return pn;
}

/* The node, when the requester owns it (§8: forbidden otherwise). */
static psvc_node_t *owned_node(psvc_op_t *op)
{
    psvc_node_t *pn = named_node(op);
    if (pn && pubsub_node_aff(pn->n, op->requester_bare) != PUBSUB_AFF_OWNER) {
        psvc__refuse(op, HEARTH_STANZA_ERR_FORBIDDEN, NULL, NULL);
        return NULL;
    }
    return pn;
}

static int is_local(const char *bare)
{
    const char *at = strchr(bare, '@');
    return at && !strcmp(at + 1, psvc__conf.server_domain);
}

/* The jid attribute of el, prepared into *out (the caller clears it); -1 after op was answered
 * (bad-request with invalid-jid when absent, jid-malformed when it is no JID). */
static int jid_attr(psvc_op_t *op, const hearth_xml_node_t *el, hearth_jid_t *out)
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
static void with_roster(psvc_op_t *op, psvc_node_t *pn, pubsub_access_t m, int requester,
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
        if ((pubsub_aff_t)(uintptr_t)e->value == PUBSUB_AFF_OWNER && is_local(e->key) &&
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
    psvc_node_t *pn = named_node(op);
    if (!pn)
        return;
    pubsub_err_t e;
    if (publish_check(op, pn, &e)) {
        psvc__reject(op, &e);
        return;
    }
    op->node = pn;
    with_roster(op, pn, pn->n->config.access, 0, publish_store);
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
    psvc_node_t *pn = named_node(op);
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
    with_roster(op, pn, op->notify ? pn->n->config.access : PUBSUB_ACCESS_OPEN, 0, retract_store);
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
    psvc_node_t *pn = named_node(op);
    if (pn) {
        op->node = pn;
        with_roster(op, pn, pn->n->config.access, 1, items_go);
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
    if (node_get(op, node)) {
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
    char *local = is_local(op->requester_bare)
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
    if (!is_local(op->requester_bare)) {
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

static void subscribe(psvc_op_t *op)
{
    const char *name;
    pubsub_err_t e;
    hearth_xml_node_t *x = op->extra ? hearth_xml_first_element(op->extra) : NULL;
    if (x && sub_options_apply(op, x, &op->nodeliver, &e)) { /* §6.3.7: subscribe and configure */
        psvc__reject(op, &e);
        return;
    }
    if (name_of(op->action, &name, &e)) {
        psvc__reject(op, &e);
        return;
    }
    hearth_jid_t j = HEARTH_JID_INIT;
    if (jid_attr(op, op->action, &j))
        return;
    int mine = !strcmp(j.bare, op->requester_bare); /* §6.1.3.1 */
    op->id = mine ? strdup(j.full) : NULL;
    hearth_jid_clear(&j);
    if (!mine) {
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, "invalid-jid", NULL);
        return;
    }
    psvc_node_t *pn = node_get(op, name);
    if (!op->id || !pn) {
        psvc__refuse(op,
                     pn ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT : HEARTH_STANZA_ERR_ITEM_NOT_FOUND,
                     NULL, NULL);
        return;
    }
    op->node = pn;
    with_roster(op, pn, pn->n->config.access, 1, subscribe_go);
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
    psvc_node_t *pn = *out = named_node(op);
    if (!pn)
        return -1;
    hearth_jid_t j = HEARTH_JID_INIT;
    if (jid_attr(op, op->action, &j))
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

static void options_get(psvc_op_t *op)
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

static void options_set(psvc_op_t *op)
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
static void options_default(psvc_op_t *op)
{
    const char *node = hearth_xml_attr(op->action, "node");
    if (node && !node_get(op, node)) {
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

static void unsubscribe(psvc_op_t *op)
{
    psvc_node_t *pn = named_node(op);
    if (!pn)
        return;
    hearth_jid_t j = HEARTH_JID_INIT;
    if (jid_attr(op, op->action, &j))
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

static void own_subscriptions(psvc_op_t *op)
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

static void own_affiliations(psvc_op_t *op)
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

/* ---- configure, default (§8.2, §8.3) ---- */

static void configure_get(psvc_op_t *op)
{
    psvc_node_t *pn = owned_node(op);
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
    psvc_node_t *pn = owned_node(op);
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
    with_roster(op, pn, op->config.notify_config ? op->config.access : PUBSUB_ACCESS_OPEN, 0,
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
    psvc_node_t *pn = owned_node(op);
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
        with_roster(op, pn,
                    pn->n->config.notify_retract ? pn->n->config.access : PUBSUB_ACCESS_OPEN, 0,
                    purge_store);
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

/* ---- the owner's subscriptions (§8.8) ---- */

static void subs_get(psvc_op_t *op)
{
    psvc_node_t *pn = owned_node(op);
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

static void subs_set(psvc_op_t *op)
{
    psvc_node_t *pn = owned_node(op);
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

static void affs_get(psvc_op_t *op)
{
    psvc_node_t *pn = owned_node(op);
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

static void affs_set(psvc_op_t *op)
{
    psvc_node_t *pn = owned_node(op);
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

static void authorization(psvc_op_t *op)
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
    psvc_node_t *pn = node ? node_get(op, node) : NULL;
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

static void forget(psvc_op_t *op)
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
        subscribe(op);
    else if (set && !strcmp(name, "unsubscribe"))
        unsubscribe(op);
    else if (!set && !strcmp(name, "items"))
        items(op);
    else if (!set && !strcmp(name, "subscriptions"))
        own_subscriptions(op);
    else if (!set && !strcmp(name, "affiliations"))
        own_affiliations(op);
    else if (!strcmp(name, "options"))
        set ? options_set(op) : options_get(op);
    else if (!set && !strcmp(name, "default"))
        options_default(op);
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
        set ? subs_set(op) : subs_get(op);
    else if (!strcmp(name, "affiliations"))
        set ? affs_set(op) : affs_get(op);
    else
        psvc__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, NULL);
}

void psvc__process(psvc_op_t *op)
{
    if (psvc__is(op->st, "forget", PSVC_NS_INTERNAL)) {
        forget(op);
        return;
    }
    if (!strcmp(op->st->name, "message")) {
        authorization(op);
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
