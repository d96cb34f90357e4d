/* PEP's requests (pep.h), each on the owner's home worker with the account's nodes loaded:
 * publish (§7.1, with publish-options and auto-create), retract (§7.2), items (§6.5), create,
 * configure, default, delete, purge (§8), affiliations (§5.7, §8.9), and disco of the nodes and
 * their items (§5.2-5.5). Only the owner publishes and manages (XEP-0163 §2.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/pep.h"

/* ---- publish (§7.1) ---- */

static void publish_done(pep_op_t *op, int err)
{
    user_t *u = op->u;
    pep_user_t *pu = pep__state(u);
    if (err) {
        pep__fail_storage(op, err);
        pep__done(op);
        return;
    }
    pubsub_node_t *n = op->node;
    if (op->creating) {
        if (strmap_put(&pu->nodes, n->name, n)) {
            pep__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
            return;
        }
        op->creating = 0; /* the account's now */
    }
    int persist = n->config.persist_items;
    pu->bytes -= n->bytes;
    if (pubsub_node_push(n, op->id, pep__item_bytes(op->size, op->id), op->stamp_ms,
                         !persist || op->size <= PEP_LAST_INLINE ? op->payload : NULL) == 0)
        pubsub_node_trim(n, persist ? op->keep : 1);
    pu->bytes += n->bytes;
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = pep__write_node_attr(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB "'><publish node='",
                                  n->name, "'>");
    rc = rc ?: pubsub_write_item(&b, op->id, NULL);
    rc = rc ?: hearth_buf_append_str(&b, "</publish></pubsub>");
    if (!rc)
        pep__result(op, b.data);
    hearth_buf_free(&b);
    pep__notify_item(op->w, u, n, op->id, op->payload);
    pep__changed(op, n, op->id, op->payload);
    pep__done(op);
}

/* The one payload element of <item/>, serialised with its namespace (so it stands anywhere). */
static int item_payload(pep_op_t *op, const hearth_xml_node_t *item, pubsub_err_t *e)
{
    size_t n = hearth_xml_count_elements(item);
    if (n == 0)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "payload-required", NULL);
    if (n > 1)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "invalid-payload",
                           "an item holds exactly one payload element");
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(hearth_xml_first_element(item), NULL, &b)) {
        hearth_buf_free(&b);
        return pubsub_fail(e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    }
    if (b.len > op->w->set.pep_max_item_size) {
        hearth_buf_free(&b);
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "payload-too-big", NULL);
    }
    op->size = b.len;
    op->payload = hearth_buf_steal(&b, NULL);
    return 0;
}

static int node_name_of(const hearth_xml_node_t *el, const char **out, pubsub_err_t *e)
{
    *out = hearth_xml_attr(el, "node");
    if (!*out || !**out)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "nodeid-required", NULL);
    if (!pubsub_name_ok(*out, PUBSUB_NODE_MAX))
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL, "node name too long");
    return 0;
}

/* A node that does not exist yet: within the account's bound of nodes? */
static int room_for_node(const pep_user_t *pu, pubsub_err_t *e)
{
    if (pu->nodes.count < pu->w->set.pep_max_nodes)
        return 0;
    return pubsub_fail(e, HEARTH_STANZA_ERR_POLICY_VIOLATION, NULL,
                       "this account has as many PEP nodes as it may have (pep.max_nodes)");
}

static int publish_check(pep_op_t *op, const hearth_xml_node_t *pub,
                         const hearth_xml_node_t *options, pubsub_err_t *e)
{
    pep_user_t *pu = pep__state(op->u);
    const char *node;
    if (node_name_of(pub, &node, e))
        return -1;
    hearth_xml_node_t *item = NULL;
    for (hearth_xml_node_t *c = hearth_xml_first_element(pub); c; c = hearth_xml_next_element(c)) {
        if (strcmp(c->name, "item") || strcmp(c->ns, HEARTH_NS_PUBSUB))
            return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "publish holds one item");
        if (item)
            return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "invalid-payload",
                               "one item per publish (XEP-0060 1.13 removed batches)");
        item = c;
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
    if (item_payload(op, item, e) ||
        pep__check_publish(op, node, hearth_xml_first_element(item), e))
        return -1;
    hearth_xml_node_t *x = options ? hearth_xml_first_element(options) : NULL;
    pubsub_node_t *n = strmap_get(&pu->nodes, node);
    if (n) {
        if (x && pubsub_config_check(&n->config, pep__service(op->w), op->arena, x, e))
            return -1;
        op->node = n;
    } else {
        if (room_for_node(pu, e))
            return -1;
        pubsub_config_t c;
        if (pubsub_config_copy(&c, &pep__conf.service.defaults))
            return pubsub_fail(e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        if (x && pubsub_config_apply(&c, pep__service(op->w), op->arena, x,
                                     PUBSUB_FORM_PUBLISH_OPTIONS, e)) {
            pubsub_config_clear(&c);
            return -1;
        }
        if (!(op->node = pubsub_node_new(node, &c))) {
            pubsub_config_clear(&c);
            return pubsub_fail(e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        }
        op->creating = 1;
    }
    n = op->node;
    op->keep =
        n->config.persist_items ? pubsub_config_max_items(&n->config, pep__service(op->w)) : 1;
    long old = pubsub_node_find(n, op->id);
    size_t gone =
        (old >= 0 ? n->items[old].size : 0) + pubsub_node_dropped_bytes(n, op->id, op->keep);
    if (pu->bytes - gone + pep__item_bytes(op->size, op->id) > op->w->set.pep_max_bytes)
        return pubsub_fail(e, HEARTH_STANZA_ERR_POLICY_VIOLATION, NULL,
                           "this account's PEP storage is full (pep.max_bytes)");
    return 0;
}

static void publish(pep_op_t *op, const hearth_xml_node_t *pub, const hearth_xml_node_t *options)
{
    pubsub_err_t e;
    if (publish_check(op, pub, options, &e)) {
        pep__reject(op, &e);
        return;
    }
    pubsub_node_t *n = op->node;
    op->stamp_ms = user__now_ms();
    worker_t *w = op->w;
    char *config = op->creating ? pubsub_config_store(&n->config) : NULL;
    if (op->creating && !config) {
        pep__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    int rc = 0;
    if (n->config.persist_items) {
        storage_pubsub_item_t it = {.id = op->id,
                                    .publisher = op->requester,
                                    .stamp_ms = op->stamp_ms,
                                    .payload = op->payload};
        rc = storage_pubsub_publish(w->srv->storage, &w->storage_target, op->u->bare, op->u->node,
                                    n->name, config, &it, op->keep, pep__stored, op);
    } else if (config) {
        /* Not kept: only the node is stored; its newest item lives in memory. */
        rc = storage_pubsub_node_put(w->srv->storage, &w->storage_target, op->u->bare, op->u->node,
                                     n->name, config, 0, pep__stored, op);
    } else {
        free(config);
        publish_done(op, 0);
        return;
    }
    free(config);
    pep__await(op, rc, publish_done);
}

/* After a node's storage write: the node, still the one the request began with, or NULL when
 * the write failed or the node went meanwhile (then the request has been answered and ended). */
static pubsub_node_t *node_after_write(pep_op_t *op, int err)
{
    pep_user_t *pu = pep__state(op->u);
    pubsub_node_t *n = strmap_get(&pu->nodes, op->node->name);
    if (err || n != op->node) {
        pep__fail_storage(op, err ? err : HEARTH_ENOTFOUND);
        pep__done(op);
        return NULL;
    }
    return n;
}

/* ---- retract (§7.2) ---- */

static void retract_done(pep_op_t *op, int err)
{
    pubsub_node_t *n = node_after_write(op, err);
    if (!n)
        return;
    pep_user_t *pu = pep__state(op->u);
    long i = pubsub_node_find(n, op->id);
    if (i >= 0) {
        pu->bytes -= n->items[i].size;
        pubsub_node_remove(n, (size_t)i);
    }
    pep__result(op, NULL);
    if (op->notify)
        pep__notify_simple(op->w, op->u, n, NULL, op->id);
    pep__changed(op, n, op->id, NULL);
    pep__done(op);
}

static void retract(pep_op_t *op, const hearth_xml_node_t *r)
{
    pep_user_t *pu = pep__state(op->u);
    pubsub_err_t e;
    const char *node;
    if (node_name_of(r, &node, &e)) {
        pep__reject(op, &e);
        return;
    }
    hearth_xml_node_t *item = hearth_xml_child(r, "item", HEARTH_NS_PUBSUB);
    const char *id = item ? hearth_xml_attr(item, "id") : NULL;
    if (!id || !*id) {
        pep__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, "item-required", NULL);
        return;
    }
    pubsub_node_t *n = strmap_get(&pu->nodes, node);
    if (n && !n->config.persist_items) {
        pubsub_unsupported(&e, "persistent-items");
        pep__reject(op, &e);
        return;
    }
    if (!n || pubsub_node_find(n, id) < 0) {
        pep__refuse(op, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, NULL);
        return;
    }
    /* §7.2.2.1: notify='true' or '1' asks for it; the node's notify_retract asks for it too. */
    const char *notify = hearth_xml_attr(r, "notify");
    op->notify =
        (notify && (!strcmp(notify, "true") || !strcmp(notify, "1"))) || n->config.notify_retract;
    op->node = n;
    if (!(op->id = strdup(id))) {
        pep__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    worker_t *w = op->w;
    pep__await(op,
               storage_pubsub_retract(w->srv->storage, &w->storage_target, op->u->bare, n->name, id,
                                      pep__stored, op),
               retract_done);
}

/* ---- items (§6.5) ---- */

static void items_reply(pep_op_t *op, const char *node, const storage_pubsub_item_t *items,
                        size_t n)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc =
        pep__write_node_attr(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB "'><items node='", node, "'>");
    for (size_t i = 0; !rc && i < n; i++)
        rc = pubsub_write_item(&b, items[i].id, items[i].payload);
    rc = rc ?: hearth_buf_append_str(&b, "</items></pubsub>");
    if (!rc)
        pep__result(op, b.data);
    else
        pep__fail(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    hearth_buf_free(&b);
}

/* Storage answered the read of a retrieval. */
static void items_read(void *ud, int err, const storage_pubsub_item_t *items, size_t n)
{
    pep_op_t *op = ud;
    worker_t *w = op->w;
    user_t *u = op->u;
    pep__back(op);
    if (err)
        pep__fail_storage(op, err);
    else
        items_reply(op, op->node_name, items, n);
    pep__done(op);
    pep__run(w, u);
}

/* The newest item, from memory, when it is all the request asks for. */
static void items_last(pep_op_t *op, const pubsub_node_t *n, int any)
{
    storage_pubsub_item_t it = {0};
    if (any && n->nitems && n->last_payload) {
        it.id = n->items[n->nitems - 1].id;
        it.payload = n->last_payload;
    }
    items_reply(op, n->name, &it, it.id ? 1 : 0);
}

static void items(pep_op_t *op, const hearth_xml_node_t *el)
{
    pep_user_t *pu = pep__state(op->u);
    pubsub_err_t e;
    const char *node;
    if (node_name_of(el, &node, &e)) {
        pep__reject(op, &e);
        return;
    }
    pubsub_node_t *n = strmap_get(&pu->nodes, node);
    if (!n) {
        pep__refuse(op, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, NULL);
        return;
    }
    pubsub_who_t who = pep__who(op->u, op->requester_bare, n);
    if (pubsub_access(n, &who, &e)) {
        pep__reject(op, &e);
        return;
    }
    const char *mi = hearth_xml_attr(el, "max_items");
    unsigned long max = 0;
    if (mi) {
        char *end;
        max = *mi >= '1' && *mi <= '9' ? strtoul(mi, &end, 10) : 0;
        if (!max || *end) {
            pep__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "max_items is a positive number");
            return;
        }
    }
    const char *ids[STORAGE_PUBSUB_IDS_MAX];
    size_t nids = 0;
    for (hearth_xml_node_t *c = hearth_xml_first_element(el); c; c = hearth_xml_next_element(c)) {
        const char *id = hearth_xml_attr(c, "id");
        if (strcmp(c->name, "item") || strcmp(c->ns, HEARTH_NS_PUBSUB) ||
            !pubsub_name_ok(id, PUBSUB_ITEM_ID_MAX) || nids == STORAGE_PUBSUB_IDS_MAX) {
            pep__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL,
                        "items names items by id, at most 1000 of them");
            return;
        }
        ids[nids++] = id;
    }
    if (!n->config.persist_items) {
        /* §6.5.5: a node that keeps no items answers with the last one. */
        int named = !nids;
        for (size_t i = 0; n->nitems && i < nids; i++)
            named |= !strcmp(ids[i], n->items[n->nitems - 1].id);
        items_last(op, n, named);
        pep__done(op);
        return;
    }
    const char *newest = n->nitems ? n->items[n->nitems - 1].id : NULL;
    if (n->nitems == 0 || (n->last_payload && ((!nids && (max == 1 || n->nitems == 1)) ||
                                               (nids == 1 && !strcmp(ids[0], newest))))) {
        items_last(op, n, 1); /* at hand: no storage read */
        pep__done(op);
        return;
    }
    if (!(op->node_name = strdup(n->name))) {
        pep__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    worker_t *w = op->w;
    int rc = storage_pubsub_items(w->srv->storage, &w->storage_target, op->u->bare, n->name, ids,
                                  nids, max, items_read, op);
    if (rc) {
        pep__fail_storage(op, rc);
        pep__done(op);
        return;
    }
    pep__state(op->u)->busy = op;
}

/* ---- create, configure, default, delete, purge (§8) ---- */

static void create_done(pep_op_t *op, int err)
{
    pep_user_t *pu = pep__state(op->u);
    if (err || strmap_put(&pu->nodes, op->node->name, op->node)) {
        pep__fail_storage(op, err ? err : HEARTH_ENOMEM);
        pep__done(op);
        return;
    }
    op->creating = 0;
    pep__result(op, NULL);
    pep__done(op);
}

static void create(pep_op_t *op, const hearth_xml_node_t *el, const hearth_xml_node_t *configure)
{
    pep_user_t *pu = pep__state(op->u);
    pubsub_err_t e;
    const char *node = hearth_xml_attr(el, "node");
    if (!node || !*node) { /* instant nodes: a PEP node is named for its payload (§2.3) */
        pep__refuse(op, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "nodeid-required", NULL);
        return;
    }
    if (node_name_of(el, &node, &e) ||
        (strmap_get(&pu->nodes, node) && pubsub_fail(&e, HEARTH_STANZA_ERR_CONFLICT, NULL, NULL)) ||
        room_for_node(pu, &e)) {
        pep__reject(op, &e);
        return;
    }
    if (configure && hearth_xml_attr(configure, "node")) {
        pep__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "configure names no node here");
        return;
    }
    pubsub_config_t c;
    hearth_xml_node_t *x = configure ? hearth_xml_first_element(configure) : NULL;
    if (pubsub_config_copy(&c, &pep__conf.service.defaults)) {
        pep__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    if (x && pubsub_config_apply(&c, pep__service(op->w), op->arena, x, PUBSUB_FORM_CONFIG, &e)) {
        pubsub_config_clear(&c);
        pep__reject(op, &e);
        return;
    }
    char *config = pubsub_config_store(&c);
    size_t keep = pubsub_config_max_items(&c, pep__service(op->w));
    if (!config || !(op->node = pubsub_node_new(node, &c))) {
        pubsub_config_clear(&c);
        free(config);
        pep__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    op->creating = 1;
    worker_t *w = op->w;
    int rc = storage_pubsub_node_put(w->srv->storage, &w->storage_target, op->u->bare, op->u->node,
                                     node, config, keep, pep__stored, op);
    free(config);
    pep__await(op, rc, create_done);
}

/* The node an owner request names: NULL after answering when there is none. */
static pubsub_node_t *owned_node(pep_op_t *op, const hearth_xml_node_t *el)
{
    pubsub_err_t e;
    const char *node;
    if (node_name_of(el, &node, &e)) {
        pep__error(op, &e);
        return NULL;
    }
    pubsub_node_t *n = strmap_get(&pep__state(op->u)->nodes, node);
    if (!n)
        pep__fail(op, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, NULL);
    return n;
}

static void configure_get(pep_op_t *op, const hearth_xml_node_t *el)
{
    pubsub_node_t *n = owned_node(op, el);
    if (n) {
        hearth_arena_t *a = op->arena;
        hearth_xml_node_t *p = hearth_xml_new(a, "pubsub", HEARTH_NS_PUBSUB_OWNER);
        hearth_xml_node_t *c = hearth_xml_add_child(a, p, "configure", NULL);
        if (c && !hearth_xml_set_attr(a, c, "node", n->name) &&
            pubsub_config_form(a, c, &n->config, HEARTH_FORM_FORM))
            pep__result_node(op, p);
        else
            pep__fail(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    }
    pep__done(op);
}

static void default_get(pep_op_t *op)
{
    hearth_arena_t *a = op->arena;
    hearth_xml_node_t *p = hearth_xml_new(a, "pubsub", HEARTH_NS_PUBSUB_OWNER);
    hearth_xml_node_t *d = hearth_xml_add_child(a, p, "default", NULL);
    if (d && pubsub_config_form(a, d, &pep__conf.service.defaults, HEARTH_FORM_FORM))
        pep__result_node(op, p);
    else
        pep__fail(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    pep__done(op);
}

static void configure_done(pep_op_t *op, int err)
{
    pubsub_node_t *n = node_after_write(op, err);
    if (!n)
        return;
    pep_user_t *pu = pep__state(op->u);
    pubsub_config_t old = n->config;
    n->config = op->config;
    op->config = old; /* freed with op */
    pu->bytes -= n->bytes;
    if (!n->config.persist_items && old.persist_items && n->nitems && !n->last_payload)
        pubsub_node_trim(n, 0); /* the stored items went, and the newest is not at hand */
    pubsub_node_trim(n, n->config.persist_items ? op->keep : 1);
    pu->bytes += n->bytes;
    pep__result(op, NULL);
    if (n->config.notify_config)
        pep__notify_config(op->w, op->u, n);
    pep__done(op);
}

static void configure_set(pep_op_t *op, const hearth_xml_node_t *el)
{
    pubsub_node_t *n = owned_node(op, el);
    if (!n) {
        pep__done(op);
        return;
    }
    hearth_xml_node_t *x = hearth_xml_first_element(el);
    if (x && hearth_form_type_of(x) == HEARTH_FORM_CANCEL && !strcmp(x->ns, HEARTH_NS_DATA)) {
        pep__result(op, NULL); /* §8.2.4: the configuration stays as it is */
        pep__done(op);
        return;
    }
    pubsub_err_t e;
    if (pubsub_config_copy(&op->config, &n->config)) {
        pep__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    if (!x) {
        pep__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "a data form is expected");
        return;
    }
    if (pubsub_config_apply(&op->config, pep__service(op->w), op->arena, x, PUBSUB_FORM_CONFIG,
                            &e)) {
        pep__reject(op, &e);
        return;
    }
    op->node = n;
    op->keep =
        op->config.persist_items ? pubsub_config_max_items(&op->config, pep__service(op->w)) : 0;
    char *config = pubsub_config_store(&op->config);
    if (!config) {
        pep__refuse(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        return;
    }
    worker_t *w = op->w;
    int rc = storage_pubsub_node_put(w->srv->storage, &w->storage_target, op->u->bare, op->u->node,
                                     n->name, config, op->keep, pep__stored, op);
    free(config);
    pep__await(op, rc, configure_done);
}

static void delete_done(pep_op_t *op, int err)
{
    pubsub_node_t *n = node_after_write(op, err);
    if (!n)
        return;
    pep_user_t *pu = pep__state(op->u);
    pep__result(op, NULL);
    if (n->config.notify_delete)
        pep__notify_simple(op->w, op->u, n, "delete", NULL); /* to whoever could see it */
    pep__changed(op, n, NULL, NULL);
    strmap_remove(&pu->nodes, n->name);
    pu->bytes -= n->bytes;
    pubsub_node_free(n);
    pep__done(op);
}

static void purge_done(pep_op_t *op, int err)
{
    pubsub_node_t *n = node_after_write(op, err);
    if (!n)
        return;
    pep_user_t *pu = pep__state(op->u);
    pu->bytes -= n->bytes;
    pubsub_node_trim(n, 0);
    pep__result(op, NULL);
    if (n->config.notify_retract) /* §8.5.2: one <purge/>, not a retraction per item */
        pep__notify_simple(op->w, op->u, n, "purge", NULL);
    pep__changed(op, n, NULL, NULL);
    pep__done(op);
}

static void delete_or_purge(pep_op_t *op, const hearth_xml_node_t *el, int purge)
{
    pubsub_node_t *n = owned_node(op, el);
    if (!n) {
        pep__done(op);
        return;
    }
    if (purge && !n->config.persist_items) {
        pubsub_err_t e;
        pubsub_unsupported(&e, "persistent-items");
        pep__reject(op, &e);
        return;
    }
    op->node = n;
    worker_t *w = op->w;
    int rc = purge ? storage_pubsub_purge(w->srv->storage, &w->storage_target, op->u->bare, n->name,
                                          pep__stored, op)
                   : storage_pubsub_node_delete(w->srv->storage, &w->storage_target, op->u->bare,
                                                n->name, pep__stored, op);
    pep__await(op, rc, purge ? purge_done : delete_done);
}

/* ---- affiliations (§5.7, §8.9) ---- */

static int write_aff(hearth_buf_t *b, const char *attr, const char *value, const char *aff)
{
    int rc = hearth_buf_printf(b, "<affiliation %s='", attr);
    rc = rc ?: hearth_buf_append_escaped(b, value, strlen(value));
    return rc ?: hearth_buf_printf(b, "' affiliation='%s'/>", aff);
}

static void affs_get(pep_op_t *op, const hearth_xml_node_t *el)
{
    pubsub_node_t *n = owned_node(op, el);
    if (!n) {
        pep__done(op);
        return;
    }
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = pep__write_node_attr(
        &b, "<pubsub xmlns='" HEARTH_NS_PUBSUB_OWNER "'><affiliations node='", n->name, "'>");
    rc = rc ?: write_aff(&b, "jid", op->u->bare, "owner");
    STRMAP_FOREACH(&n->affs, e)
    {
        rc = rc ?: write_aff(&b, "jid", e->key, pubsub_aff_name((pubsub_aff_t)(uintptr_t)e->value));
    }
    rc = rc ?: hearth_buf_append_str(&b, "</affiliations></pubsub>");
    if (!rc)
        pep__result(op, b.data);
    hearth_buf_free(&b);
    pep__done(op);
}

static void affs_set_done(pep_op_t *op, int err)
{
    pubsub_node_t *n = node_after_write(op, err);
    if (!n)
        return;
    for (size_t i = 0; i < op->nchanges; i++) {
        const storage_pubsub_aff_t *c = &op->changes[i];
        if (c->affiliation)
            strmap_put(&n->affs, c->jid, (void *)(uintptr_t)pubsub_aff_parse(c->affiliation));
        else
            strmap_remove(&n->affs, c->jid);
    }
    pep__result(op, NULL);
    pep__done(op);
}

/* One <affiliation jid affiliation/> of a change: its bare JID and what it becomes (NULL for
 * none) into c. */
static int aff_change(pep_op_t *op, const pubsub_node_t *n, const hearth_xml_node_t *el,
                      storage_pubsub_aff_t *c, pubsub_err_t *e)
{
    const char *jid = hearth_xml_attr(el, "jid"), *aff = hearth_xml_attr(el, "affiliation");
    if (strcmp(el->name, "affiliation") || strcmp(el->ns, HEARTH_NS_PUBSUB_OWNER) || !jid || !aff)
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, NULL,
                           "an affiliation names a jid and an affiliation");
    hearth_jid_t j = HEARTH_JID_INIT;
    const char *why = NULL;
    if (hearth_jid_parse(jid, strlen(jid), &j, &why))
        return pubsub_fail(e, HEARTH_STANZA_ERR_JID_MALFORMED, NULL, why);
    int rc = 0;
    if (!strcmp(j.bare, op->u->bare))
        rc = pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL,
                         "the owner stays the owner of its PEP nodes");
    else if (!strcmp(aff, "publisher") || !strcmp(aff, "publish-only"))
        rc = pubsub_unsupported(e, !strcmp(aff, "publisher") ? "publisher-affiliation"
                                                             : "publish-only-affiliation");
    else if (strcmp(aff, "member") && strcmp(aff, "outcast") && strcmp(aff, "none"))
        rc = pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL,
                         "affiliations here: member, outcast, none");
    const char *domain = op->w->set.domain;
    if (!rc && (!(c->node = strdup(n->name)) || !(c->jid = strdup(j.bare)) ||
                (strcmp(aff, "none") && !(c->affiliation = strdup(aff))) ||
                (j.node && !strcmp(j.domain, domain) && !(c->account = strdup(j.node)))))
        rc = pubsub_fail(e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    hearth_jid_clear(&j);
    return rc;
}

static void affs_set(pep_op_t *op, const hearth_xml_node_t *el)
{
    pubsub_node_t *n = owned_node(op, el);
    if (!n) {
        pep__done(op);
        return;
    }
    pubsub_err_t e;
    size_t count = hearth_xml_count_elements(el), added = 0;
    if (count > PEP_AFF_CHANGES_MAX ||
        !(op->changes = calloc(count ? count : 1, sizeof(*op->changes)))) {
        pep__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL,
                    "at most 100 affiliations in one request");
        return;
    }
    for (hearth_xml_node_t *c = hearth_xml_first_element(el); c; c = hearth_xml_next_element(c)) {
        storage_pubsub_aff_t *ch = &op->changes[op->nchanges++];
        if (aff_change(op, n, c, ch, &e)) {
            pep__reject(op, &e);
            return;
        }
        for (size_t i = 0; i + 1 < op->nchanges; i++)
            if (!strcmp(op->changes[i].jid, ch->jid)) {
                pep__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "a JID named twice");
                return;
            }
        added += ch->affiliation && !strmap_get(&n->affs, ch->jid);
    }
    if (n->affs.count + added > PEP_AFFS_MAX) {
        pep__refuse(op, HEARTH_STANZA_ERR_POLICY_VIOLATION, NULL,
                    "a node has at most 256 affiliations");
        return;
    }
    op->node = n;
    worker_t *w = op->w;
    pep__await(op,
               storage_pubsub_affs_set(w->srv->storage, &w->storage_target, op->u->bare,
                                       op->changes, op->nchanges, pep__stored, op),
               affs_set_done);
}

/* §5.7: the requester's own affiliations with the account's nodes. */
static void entity_affs(pep_op_t *op, const hearth_xml_node_t *el)
{
    pep_user_t *pu = pep__state(op->u);
    const char *only = hearth_xml_attr(el, "node");
    int owner = !strcmp(op->requester_bare, op->u->bare);
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB "'><affiliations>");
    STRMAP_FOREACH(&pu->nodes, e)
    {
        pubsub_node_t *n = e->value;
        pubsub_aff_t a = owner ? PUBSUB_AFF_OWNER : pubsub_node_aff(n, op->requester_bare);
        if (a != PUBSUB_AFF_NONE && (!only || !strcmp(only, n->name)))
            rc = rc ?: write_aff(&b, "node", n->name, pubsub_aff_name(a));
    }
    rc = rc ?: hearth_buf_append_str(&b, "</affiliations></pubsub>");
    if (!rc)
        pep__result(op, b.data);
    hearth_buf_free(&b);
    pep__done(op);
}

/* §5.6: the requester's subscriptions. Presence is the subscription in PEP (XEP-0163 §4.1):
 * the owner, and a contact the account lets see its presence, are subscribed (by bare JID) to
 * each node they may see. */
static void entity_subs(pep_op_t *op, const hearth_xml_node_t *el)
{
    pep_user_t *pu = pep__state(op->u);
    const char *only = hearth_xml_attr(el, "node");
    pubsub_who_t base = pep__who(op->u, op->requester_bare, NULL);
    int subscribed =
        base.owner || (base.presence_sub && !blocking__blocks(op->u, op->requester_bare));
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<pubsub xmlns='" HEARTH_NS_PUBSUB "'><subscriptions>");
    STRMAP_FOREACH(&pu->nodes, e)
    {
        pubsub_node_t *n = e->value;
        pubsub_err_t ignored;
        pubsub_who_t who = pep__who(op->u, op->requester_bare, n);
        if (!subscribed || (only && strcmp(only, n->name)) || pubsub_access(n, &who, &ignored))
            continue;
        rc = rc ?: pep__write_node_attr(&b, "<subscription node='", n->name, "' jid='");
        rc =
            rc ?: pep__write_node_attr(&b, "", op->requester_bare, "' subscription='subscribed'/>");
    }
    rc = rc ?: hearth_buf_append_str(&b, "</subscriptions></pubsub>");
    if (!rc)
        pep__result(op, b.data);
    hearth_buf_free(&b);
    pep__done(op);
}

/* ---- disco (XEP-0030 on the account, XEP-0060 §5.2-5.5) ---- */

static void disco_items(pep_op_t *op, const hearth_xml_node_t *q)
{
    pep_user_t *pu = pep__state(op->u);
    const char *only = hearth_xml_attr(q, "node");
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<query xmlns='" HEARTH_NS_DISCO_ITEMS "'");
    pubsub_node_t *n = only ? strmap_get(&pu->nodes, only) : NULL;
    pubsub_err_t e;
    pubsub_who_t who;
    if (only) {
        /* §5.5: a node's items, named by their ids. */
        who = pep__who(op->u, op->requester_bare, n);
        if (!n || pubsub_access(n, &who, &e)) {
            hearth_buf_free(&b);
            pep__refuse(op, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, NULL);
            return;
        }
        rc = rc ?: pep__write_node_attr(&b, " node='", n->name, "'>");
        for (size_t i = 0; !rc && i < n->nitems; i++) {
            rc = pep__write_node_attr(&b, "<item jid='", op->u->bare, "' name='");
            rc = rc ?: hearth_buf_append_escaped(&b, n->items[i].id, strlen(n->items[i].id));
            rc = rc ?: hearth_buf_append_str(&b, "'/>");
        }
    } else {
        rc = rc ?: hearth_buf_append_str(&b, ">");
        STRMAP_FOREACH(&pu->nodes, e2)
        {
            pubsub_node_t *m = e2->value;
            who = pep__who(op->u, op->requester_bare, m);
            if (rc || pubsub_access(m, &who, &e))
                continue; /* XEP-0163 §6.2: only what the requester may see */
            rc = pep__write_node_attr(&b, "<item jid='", op->u->bare, "' node='");
            rc = rc ?: hearth_buf_append_escaped(&b, m->name, strlen(m->name));
            if (m->config.title) {
                rc = rc ?: hearth_buf_append_str(&b, "' name='");
                rc = rc ?: hearth_buf_append_escaped(&b, m->config.title, strlen(m->config.title));
            }
            rc = rc ?: hearth_buf_append_str(&b, "'/>");
        }
    }
    rc = rc ?: hearth_buf_append_str(&b, "</query>");
    if (!rc)
        pep__result(op, b.data);
    hearth_buf_free(&b);
    pep__done(op);
}

static void disco_info(pep_op_t *op, const hearth_xml_node_t *q)
{
    pep_user_t *pu = pep__state(op->u);
    const char *name = hearth_xml_attr(q, "node");
    pubsub_node_t *n = name ? strmap_get(&pu->nodes, name) : NULL;
    pubsub_err_t e;
    pubsub_who_t who = pep__who(op->u, op->requester_bare, n);
    if (!n || pubsub_access(n, &who, &e)) {
        pep__refuse(op, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, NULL);
        return;
    }
    hearth_arena_t *a = op->arena;
    hearth_xml_node_t *r = hearth_xml_new(a, "query", HEARTH_NS_DISCO_INFO);
    hearth_xml_set_attr(a, r, "node", n->name);
    hearth_xml_node_t *id = hearth_xml_add_child(a, r, "identity", NULL);
    hearth_xml_set_attr(a, id, "category", "pubsub");
    hearth_xml_set_attr(a, id, "type", "leaf");
    hearth_xml_node_t *f = hearth_xml_add_child(a, r, "feature", NULL);
    hearth_xml_set_attr(a, f, "var", HEARTH_NS_PUBSUB);
    /* §5.4: the node's metadata. */
    char max[32];
    snprintf(max, sizeof(max), "%zu", pubsub_config_max_items(&n->config, pep__service(op->w)));
    static const char *const access[] = {"open", "presence", "roster", "whitelist"};
    hearth_xml_node_t *x = hearth_form_new(a, r, HEARTH_FORM_RESULT);
    hearth_form_add_form_type(a, x, HEARTH_NS_PUBSUB_META_DATA);
    hearth_form_add_field(a, x, "pubsub#access_model", NULL, NULL, access[n->config.access]);
    hearth_form_add_field(a, x, "pubsub#max_items", NULL, NULL, max);
    hearth_form_add_field(a, x, "pubsub#owner", NULL, NULL, op->u->bare);
    hearth_form_add_field(a, x, "pubsub#persist_items", NULL, NULL,
                          n->config.persist_items ? "1" : "0");
    if (n->config.title)
        hearth_form_add_field(a, x, "pubsub#title", NULL, NULL, n->config.title);
    if (n->config.type)
        hearth_form_add_field(a, x, "pubsub#type", NULL, NULL, n->config.type);
    pep__result_node(op, r);
    pep__done(op);
}

/* ---- dispatch ---- */

static void unsupported(pep_op_t *op, const char *feature)
{
    pubsub_err_t e;
    pubsub_unsupported(&e, feature);
    pep__reject(op, &e);
}

static int owner_only(pep_op_t *op)
{
    if (!strcmp(op->requester_bare, op->u->bare))
        return 1;
    /* XEP-0163 §2.2: one publisher per node, the account itself. */
    pep__refuse(op, HEARTH_STANZA_ERR_FORBIDDEN, NULL, NULL);
    return 0;
}

/* <pubsub xmlns='…pubsub'>: its action, with publish-options after a publish and configure
 * after a create. */
static void pubsub_request(pep_op_t *op, const hearth_xml_node_t *p, int set)
{
    hearth_xml_node_t *a = hearth_xml_first_element(p);
    hearth_xml_node_t *b = a ? hearth_xml_next_element(a) : NULL;
    if (!a || (b && hearth_xml_next_element(b)) || strcmp(a->ns, HEARTH_NS_PUBSUB) ||
        (b && !(set && ((pep__is(a, "publish", HEARTH_NS_PUBSUB) &&
                         pep__is(b, "publish-options", HEARTH_NS_PUBSUB)) ||
                        (pep__is(a, "create", HEARTH_NS_PUBSUB) &&
                         pep__is(b, "configure", HEARTH_NS_PUBSUB)))))) {
        pep__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "one pubsub action per request");
        return;
    }
    const char *name = a->name;
    if (set && !strcmp(name, "publish")) {
        if (owner_only(op))
            publish(op, a, b);
    } else if (set && !strcmp(name, "retract")) {
        if (owner_only(op))
            retract(op, a);
    } else if (set && !strcmp(name, "create")) {
        if (owner_only(op))
            create(op, a, b);
    } else if (!set && !strcmp(name, "items")) {
        items(op, a);
    } else if (!set && !strcmp(name, "affiliations")) {
        entity_affs(op, a);
    } else if (!strcmp(name, "subscribe") || !strcmp(name, "unsubscribe")) {
        unsupported(op, "subscribe"); /* presence is the subscription here (XEP-0163 §4.1) */
    } else if (!set && !strcmp(name, "subscriptions")) {
        entity_subs(op, a);
    } else if (!strcmp(name, "options") || !strcmp(name, "default")) {
        unsupported(op, "subscription-options");
    } else {
        pep__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, NULL);
    }
}

static void owner_request(pep_op_t *op, const hearth_xml_node_t *p, int set)
{
    hearth_xml_node_t *a = hearth_xml_first_element(p);
    if (!a || hearth_xml_next_element(a) || strcmp(a->ns, HEARTH_NS_PUBSUB_OWNER)) {
        pep__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, "one pubsub#owner action per request");
        return;
    }
    if (!owner_only(op))
        return;
    const char *name = a->name;
    if (!strcmp(name, "configure"))
        set ? configure_set(op, a) : configure_get(op, a);
    else if (!set && !strcmp(name, "default"))
        default_get(op);
    else if (set && (!strcmp(name, "delete") || !strcmp(name, "purge")))
        delete_or_purge(op, a, !strcmp(name, "purge"));
    else if (!strcmp(name, "affiliations"))
        set ? affs_set(op, a) : affs_get(op, a);
    else if (!strcmp(name, "subscriptions"))
        unsupported(op, "manage-subscriptions");
    else {
        pep__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, NULL);
    }
}

void pep__process_iq(pep_op_t *op)
{
    const char *type = hearth_xml_attr(op->iq, "type");
    int set = type && !strcmp(type, "set");
    hearth_xml_node_t *p = hearth_xml_first_element(op->iq);
    if (pep__is(p, "pubsub", HEARTH_NS_PUBSUB))
        pubsub_request(op, p, set);
    else if (pep__is(p, "pubsub", HEARTH_NS_PUBSUB_OWNER))
        owner_request(op, p, set);
    else if (!set && pep__is(p, "query", HEARTH_NS_DISCO_ITEMS))
        disco_items(op, p);
    else if (!set && pep__is(p, "query", HEARTH_NS_DISCO_INFO))
        disco_info(op, p);
    else {
        pep__refuse(op, HEARTH_STANZA_ERR_BAD_REQUEST, NULL, NULL);
    }
}
