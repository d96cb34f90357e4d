/* The pubsub service (pubsub_svc.h): the module, its state on the home worker of its domain,
 * loading from storage at the first request, the queue of requests, replies, notifications to
 * subscribers and the service's disco. Requests reach it through the router (a service domain,
 * as the MUC service's); it touches no session and no user state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/pubsub_svc.h"

psvc_conf_t psvc__conf;
static int worker_slot = -1;

/* ---- state ---- */

psvc_t *psvc__get(worker_t *w)
{
    psvc_t *s = w->slot[worker_slot];
    if (s)
        return s;
    if (!(s = calloc(1, sizeof(*s))) || strmap_init(&s->nodes)) {
        free(s);
        return NULL;
    }
    s->w = w;
    w->slot[worker_slot] = s;
    return s;
}

void psvc__subs_free(psvc_sub_t *subs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(subs[i].jid);
        free(subs[i].subid);
    }
    free(subs);
}

void psvc__node_free(psvc_node_t *pn)
{
    if (!pn)
        return;
    pubsub_node_free(pn->n);
    psvc__subs_free(pn->subs, pn->nsubs);
    free(pn);
}

static void nodes_clear(psvc_t *s)
{
    STRMAP_FOREACH(&s->nodes, e)
    {
        psvc__node_free(e->value);
        strmap_remove(&s->nodes, e->key);
    }
}

/* ---- requests ---- */

static void strv_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

void psvc__done(psvc_op_t *op)
{
    if (!op)
        return;
    hearth_arena_free(op->arena);
    free(op->requester);
    free(op->requester_bare);
    if (op->creating)
        psvc__node_free(op->node);
    free(op->id);
    free(op->payload);
    pubsub_config_clear(&op->config);
    storage_pubsub_affs_free(op->changes, op->nchanges);
    psvc__subs_free(op->subs, op->nsubs);
    strv_free(op->told, op->ntold);
    strv_free(op->states, op->ntold);
    for (size_t i = 0; i < op->ncontacts; i++) {
        free(op->contacts[i].jid);
        strv_free(op->contacts[i].groups, op->contacts[i].ngroups);
    }
    free(op->contacts);
    free(op->redirect);
    free(op);
}

/* About the bytes a tree holds in its arena. */
static size_t tree_bytes(const hearth_xml_node_t *n)
{
    size_t bytes = sizeof(*n) + n->text_len + (n->name ? strlen(n->name) : 0);
    for (const hearth_xml_attr_t *at = n->attrs; at; at = at->next)
        bytes += sizeof(*at) + strlen(at->name) + strlen(at->value);
    for (const hearth_xml_node_t *c = n->children; c; c = c->next)
        bytes += tree_bytes(c);
    return bytes;
}

static psvc_op_t *op_new(worker_t *w, const char *from, const hearth_xml_node_t *st)
{
    psvc_op_t *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->w = w;
    if (!(op->requester = strdup(from)) ||
        !(op->requester_bare = strndup(from, strcspn(from, "/"))) ||
        !(op->arena = hearth_arena_new(0)) || !(op->st = hearth_xml_copy(op->arena, st))) {
        psvc__done(op);
        return NULL;
    }
    op->cost = sizeof(*op) + tree_bytes(op->st);
    return op;
}

/* ---- the queue ---- */

void psvc__back(psvc_op_t *op)
{
    psvc_t *s = psvc__get(op->w);
    if (s && s->busy == op)
        s->busy = NULL;
}

void psvc__stored(void *ud, int err)
{
    psvc_op_t *op = ud;
    worker_t *w = op->w;
    psvc__back(op);
    op->then(op, err);
    psvc__run(w);
}

void psvc__await(psvc_op_t *op, int rc, psvc_then_fn then)
{
    if (rc) {
        psvc__fail_storage(op, rc);
        psvc__done(op);
        return;
    }
    op->then = then;
    psvc__get(op->w)->busy = op;
}

void psvc__logged(void *ud, int err)
{
    (void)ud;
    if (err)
        hlog(LOG_ERROR, "pubsub %s: a storage write failed: %s", psvc__conf.domain,
             hearth_strerror(err));
}

static void fail_waiting(psvc_t *s, hearth_stanza_error_t cond)
{
    while (s->head) {
        psvc_op_t *op = s->head;
        s->head = op->next;
        s->nops--;
        s->ops_bytes -= op->cost;
        pubsub_err_t e;
        pubsub_fail(&e, cond, NULL, NULL);
        psvc__error(op, &e);
        psvc__done(op);
    }
    s->tail = NULL;
}

/* ---- subscriptions as stored: <subscriptions><subscription jid subid [pending='1']
 * [deliver='0']/>… ---- */

char *psvc__subs_store(const psvc_sub_t *subs, size_t n)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<subscriptions>");
    for (size_t i = 0; !rc && i < n; i++) {
        rc = psvc__write_attr(&b, "<subscription jid='", subs[i].jid, "' subid='");
        rc = rc ?: psvc__write_attr(&b, "", subs[i].subid, "'");
        if (subs[i].pending)
            rc = rc ?: hearth_buf_append_str(&b, " pending='1'");
        if (subs[i].nodeliver)
            rc = rc ?: hearth_buf_append_str(&b, " deliver='0'");
        rc = rc ?: hearth_buf_append_str(&b, "/>");
    }
    rc = rc ?: hearth_buf_append_str(&b, "</subscriptions>");
    char *out = rc ? NULL : hearth_buf_steal(&b, NULL);
    hearth_buf_free(&b);
    return out;
}

static int sub_add(psvc_node_t *pn, const char *jid, const char *subid, int pending, int nodeliver)
{
    if (pn->nsubs == pn->cap) {
        size_t ncap = pn->cap ? pn->cap * 2 : 4;
        psvc_sub_t *v = realloc(pn->subs, ncap * sizeof(*v));
        if (!v)
            return HEARTH_ENOMEM;
        pn->subs = v;
        pn->cap = ncap;
    }
    psvc_sub_t *s = &pn->subs[pn->nsubs];
    if (!(s->jid = strdup(jid)) || !(s->subid = strdup(subid))) {
        free(s->jid);
        return HEARTH_ENOMEM;
    }
    s->pending = pending;
    s->nodeliver = nodeliver;
    pn->nsubs++;
    return 0;
}

static void subs_parsed(void *ud, hearth_xml_node_t *x, hearth_arena_t *a)
{
    psvc_node_t *pn = ud;
    (void)a;
    for (hearth_xml_node_t *c = hearth_xml_first_element(x); c; c = hearth_xml_next_element(c)) {
        const char *jid = hearth_xml_attr(c, "jid"), *subid = hearth_xml_attr(c, "subid");
        const char *pending = hearth_xml_attr(c, "pending");
        const char *deliver = hearth_xml_attr(c, "deliver");
        if (jid && subid)
            sub_add(pn, jid, subid, pending && !strcmp(pending, "1"),
                    deliver && !strcmp(deliver, "0"));
    }
}

/* ---- loading ---- */

static void subs_listed(void *ud, int err, const storage_doc_t *docs, size_t n)
{
    psvc_t *s = ud;
    if (err) {
        hlog(LOG_ERROR, "pubsub %s: subscriptions could not be loaded: %s", psvc__conf.domain,
             hearth_strerror(err));
        nodes_clear(s);
        s->state = PSVC_NEW;
        fail_waiting(s, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT);
        psvc__run(s->w);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        psvc_node_t *pn = strmap_get(&s->nodes, docs[i].key);
        if (pn)
            router__parse(docs[i].xml, strlen(docs[i].xml), subs_parsed, pn);
    }
    s->state = PSVC_READY;
    psvc__run(s->w);
}

static void loaded(void *ud, int err, const storage_pubsub_state_t *st)
{
    psvc_t *s = ud;
    worker_t *w = s->w;
    if (err) {
        hlog(LOG_ERROR, "pubsub %s could not be loaded: %s", psvc__conf.domain,
             hearth_strerror(err));
        s->state = PSVC_NEW; /* the next request tries again */
        fail_waiting(s, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT);
        psvc__run(w);
        return;
    }
    nodes_clear(s);
    for (size_t i = 0; i < st->nnodes; i++) {
        pubsub_config_t c;
        if (pubsub_config_load(&c, &psvc__conf.service, st->nodes[i].config)) {
            hlog(LOG_WARN,
                 "pubsub %s: node %s has a configuration that cannot be read; it gets "
                 "the defaults",
                 psvc__conf.domain, st->nodes[i].node);
            if (pubsub_config_copy(&c, &psvc__conf.service.defaults))
                continue;
        }
        psvc_node_t *pn = calloc(1, sizeof(*pn));
        if (!pn || !(pn->n = pubsub_node_new(st->nodes[i].node, &c)) ||
            strmap_put(&s->nodes, pn->n->name, pn)) {
            pubsub_config_clear(&c);
            psvc__node_free(pn);
        }
    }
    for (size_t i = 0; i < st->nitems; i++) {
        const storage_pubsub_item_t *it = &st->items[i];
        psvc_node_t *pn = strmap_get(&s->nodes, it->node);
        if (pn)
            pubsub_node_push(pn->n, it->id, it->size, it->stamp_ms, it->payload);
    }
    for (size_t i = 0; i < st->naffs; i++) {
        psvc_node_t *pn = strmap_get(&s->nodes, st->affs[i].node);
        pubsub_aff_t a = pubsub_aff_parse(st->affs[i].affiliation);
        if (pn && a != PUBSUB_AFF_NONE)
            strmap_put(&pn->n->affs, st->affs[i].jid, (void *)(uintptr_t)a);
    }
    if (storage_doc_list(w->srv->storage, &w->storage_target, PSVC_DOC_KIND, subs_listed, s)) {
        nodes_clear(s);
        s->state = PSVC_NEW;
        fail_waiting(s, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT);
    }
}

/* Runs what waits, in order, until the queue is empty or a request waits for storage. */
void psvc__run(worker_t *w)
{
    psvc_t *s = psvc__get(w);
    if (!s)
        return;
    worker__hold_posts(w); /* what one request sends each worker leaves as one unit */
    while (!s->busy && s->head && s->state != PSVC_LOADING) {
        if (s->state == PSVC_NEW) {
            s->state = PSVC_LOADING;
            if (storage_pubsub_load(w->srv->storage, &w->storage_target, psvc__conf.domain,
                                    PSVC_LAST_INLINE, loaded, s) == 0)
                break;
            s->state = PSVC_NEW;
            fail_waiting(s, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT);
            break;
        }
        psvc_op_t *op = s->head;
        s->head = op->next;
        if (!s->head)
            s->tail = NULL;
        s->nops--;
        s->ops_bytes -= op->cost;
        op->next = NULL;
        psvc__process(op);
    }
    worker__release_posts(w);
}

static void submit(worker_t *w, psvc_op_t *op)
{
    psvc_t *s = psvc__get(w);
    if (!s || s->nops >= PSVC_OPS_MAX || s->ops_bytes + op->cost > PSVC_OPS_BYTES) {
        hlog(LOG_WARN, "pubsub %s: too many requests wait", psvc__conf.domain);
        pubsub_err_t e;
        pubsub_fail(&e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        psvc__error(op, &e);
        psvc__done(op);
        return;
    }
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    s->nops++;
    s->ops_bytes += op->cost;
    psvc__run(w);
}

/* ---- who asks ---- */

static int contact_cmp(const void *key, const void *c)
{
    return strcmp(key, ((const psvc_contact_t *)c)->jid);
}

pubsub_who_t psvc__who_of(const psvc_op_t *op, const psvc_node_t *pn, const char *bare)
{
    pubsub_who_t who = {0};
    who.aff = pn ? pubsub_node_aff(pn->n, bare) : PUBSUB_AFF_NONE;
    who.owner = who.aff == PUBSUB_AFF_OWNER;
    const psvc_contact_t *c =
        op->ncontacts ? bsearch(bare, op->contacts, op->ncontacts, sizeof(*c), contact_cmp) : NULL;
    if (c) {
        who.presence_sub = c->from;
        who.groups = c->groups;
        who.ngroups = c->ngroups;
    }
    size_t blen = strlen(bare);
    for (size_t i = 0; pn && i < pn->nsubs && !who.subscribed; i++) {
        const char *j = pn->subs[i].jid;
        who.subscribed = !pn->subs[i].pending && strcspn(j, "/") == blen && !strncmp(j, bare, blen);
    }
    return who;
}

pubsub_who_t psvc__who(const psvc_op_t *op, const psvc_node_t *pn)
{
    return psvc__who_of(op, pn, op->requester_bare);
}

/* Whether a notification of pn may go to subscription jid, as the access model says now (§4.5:
 * a subscriber of a node since closed, or no longer in the owner's roster, hears no more). The
 * models that need the owner's roster are checked when it is at hand (the request loaded it);
 * otherwise they were checked when the subscription was made. */
static int may_notify(const psvc_op_t *op, const psvc_node_t *pn, const char *jid)
{
    pubsub_access_t m = pn->n->config.access;
    if (m == PUBSUB_ACCESS_OPEN ||
        (!op->roster_known && (m == PUBSUB_ACCESS_PRESENCE || m == PUBSUB_ACCESS_ROSTER)))
        return 1;
    char *bare = strndup(jid, strcspn(jid, "/"));
    pubsub_who_t who = bare ? psvc__who_of(op, pn, bare) : (pubsub_who_t){0};
    pubsub_err_t e;
    int ok = bare && pubsub_access(pn->n, &who, &e) == 0;
    free(bare);
    return ok;
}

/* ---- replies ---- */

int psvc__write_attr(hearth_buf_t *b, const char *open, const char *value, const char *close)
{
    int rc = hearth_buf_append_str(b, open);
    rc = rc ?: hearth_buf_append_escaped(b, value, strlen(value));
    return rc ?: hearth_buf_append_str(b, close);
}

static void reply(psvc_op_t *op, const char *type, const hearth_buf_t *b)
{
    hearth_bytes_t *bytes = hearth_bytes_new(b->data, b->len);
    if (bytes)
        router__route(op->w, STANZA_IQ, op->requester, psvc__conf.domain, type, bytes);
    hearth_bytes_unref(bytes);
}

static int reply_start(hearth_buf_t *b, psvc_op_t *op, const char *type)
{
    const char *id = hearth_xml_attr(op->st, "id");
    int rc = hearth_buf_printf(b, "<iq type='%s' id='", type);
    rc = rc ?: hearth_buf_append_escaped(b, id ? id : "", id ? strlen(id) : 0);
    rc = rc ?: psvc__write_attr(b, "' from='", psvc__conf.domain, "' to='");
    return rc ?: psvc__write_attr(b, "", op->requester, "'");
}

void psvc__result(psvc_op_t *op, const char *inner)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = reply_start(&b, op, "result");
    if (inner) {
        rc = rc ?: hearth_buf_append_str(&b, ">");
        rc = rc ?: hearth_buf_append_str(&b, inner);
        rc = rc ?: hearth_buf_append_str(&b, "</iq>");
    } else {
        rc = rc ?: hearth_buf_append_str(&b, "/>");
    }
    if (!rc)
        reply(op, "result", &b);
    hearth_buf_free(&b);
}

void psvc__result_node(psvc_op_t *op, const hearth_xml_node_t *payload)
{
    hearth_buf_t inner = HEARTH_BUF_INIT;
    if (hearth_xml_serialize(payload, HEARTH_NS_CLIENT, &inner) == 0) {
        psvc__result(op, inner.data);
    } else {
        pubsub_err_t e;
        pubsub_fail(&e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        psvc__error(op, &e);
    }
    hearth_buf_free(&inner);
}

void psvc__error(psvc_op_t *op, const pubsub_err_t *e)
{
    const char *type = hearth_xml_attr(op->st, "type");
    if (type && (!strcmp(type, "error") || !strcmp(type, "result")))
        return; /* never an error for an error */
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc;
    if (!strcmp(op->st->name, "message")) {
        rc = psvc__write_attr(&b, "<message type='error' from='", psvc__conf.domain, "' to='");
        rc = rc ?: psvc__write_attr(&b, "", op->requester, "'>");
        rc = rc ?: pubsub_error_write(&b, e);
        rc = rc ?: hearth_buf_append_str(&b, "</message>");
        hearth_bytes_t *bytes = rc ? NULL : hearth_bytes_new(b.data, b.len);
        if (bytes)
            router__route(op->w, STANZA_MESSAGE, op->requester, psvc__conf.domain, "error", bytes);
        hearth_bytes_unref(bytes);
    } else {
        rc = reply_start(&b, op, "error");
        rc = rc ?: hearth_buf_append_str(&b, ">");
        rc = rc ?: pubsub_error_write(&b, e);
        rc = rc ?: hearth_buf_append_str(&b, "</iq>");
        if (!rc)
            reply(op, "error", &b);
    }
    hearth_buf_free(&b);
}

void psvc__reject(psvc_op_t *op, const pubsub_err_t *e)
{
    psvc__error(op, e);
    psvc__done(op);
}

void psvc__refuse(psvc_op_t *op, hearth_stanza_error_t cond, const char *app, const char *text)
{
    pubsub_err_t e;
    pubsub_fail(&e, cond, app, text);
    psvc__reject(op, &e);
}

void psvc__fail_storage(psvc_op_t *op, int err)
{
    hlog(LOG_ERROR, "pubsub %s: storage failed: %s", psvc__conf.domain, hearth_strerror(err));
    pubsub_err_t e;
    pubsub_fail(&e,
                err == HEARTH_ENOTFOUND ? HEARTH_STANZA_ERR_ITEM_NOT_FOUND
                : err == HEARTH_EAGAIN || err == HEARTH_ENOMEM
                    ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                    : HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR,
                NULL, NULL);
    psvc__error(op, &e);
}

/* ---- notifications ---- */

static int event_start(hearth_buf_t *b)
{
    char id[25];
    user__random_id(id, sizeof(id));
    return pubsub_write_event_start(b, psvc__conf.domain, id);
}

/* To each JID with an approved subscription (a node has one subscription per JID, so each gets
 * one notification), serialised once and handed to each worker as one unit. */
void psvc__notify(const psvc_op_t *op, const psvc_node_t *pn, const hearth_buf_t *event, int all)
{
    worker_t *w = op->w;
    if (!pn->n->config.deliver_notifications || !pn->nsubs)
        return;
    hearth_bytes_t *bytes = hearth_bytes_new(event->data, event->len);
    route_batch_t *batch =
        bytes ? router__batch_new(w, STANZA_MESSAGE, psvc__conf.domain, "headline", bytes) : NULL;
    for (size_t i = 0; batch && i < pn->nsubs; i++)
        if (!pn->subs[i].pending && !pn->subs[i].nodeliver &&
            (all || may_notify(op, pn, pn->subs[i].jid)))
            router__batch_add(batch, pn->subs[i].jid);
    if (batch)
        router__batch_send(batch);
    hearth_bytes_unref(bytes);
}

/* <items node><item id>payload</item></items>; id NULL: <items node/> (a notification-only
 * publish without an item). */
static int write_items_event(hearth_buf_t *b, const char *node, const char *id, const char *payload)
{
    if (!id)
        return psvc__write_attr(b, "<items node='", node, "'/>");
    int rc = psvc__write_attr(b, "<items node='", node, "'>");
    rc = rc ?: pubsub_write_item(b, id, payload);
    return rc ?: hearth_buf_append_str(b, "</items>");
}

void psvc__notify_item(const psvc_op_t *op, const psvc_node_t *pn, const char *id,
                       const char *payload)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = event_start(&b);
    rc = rc
             ?: write_items_event(&b, pn->n->name, id,
                                  pn->n->config.deliver_payloads ? payload : NULL);
    rc = rc ?: pubsub_write_event_end(&b, 0, NULL);
    if (!rc)
        psvc__notify(op, pn, &b, 0);
    hearth_buf_free(&b);
}

/* <purge node/>, <delete node>[<redirect uri/>]</delete>, or <items node><retract id/></items>. */
void psvc__notify_simple(const psvc_op_t *op, const psvc_node_t *pn, const char *what,
                         const char *retract_id, const char *redirect)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = event_start(&b);
    if (retract_id) {
        rc = rc ?: psvc__write_attr(&b, "<items node='", pn->n->name, "'><retract id='");
        rc = rc ?: psvc__write_attr(&b, "", retract_id, "'/></items>");
    } else if (redirect) {
        rc = rc ?: psvc__write_attr(&b, "<delete node='", pn->n->name, "'><redirect uri='");
        rc = rc ?: psvc__write_attr(&b, "", redirect, "'/></delete>");
    } else {
        rc = rc ?: hearth_buf_printf(&b, "<%s", what);
        rc = rc ?: psvc__write_attr(&b, " node='", pn->n->name, "'/>");
    }
    rc = rc ?: pubsub_write_event_end(&b, 0, NULL);
    if (!rc) /* a deleted node's every subscriber hears of it */
        psvc__notify(op, pn, &b, what && !strcmp(what, "delete"));
    hearth_buf_free(&b);
}

void psvc__notify_config(const psvc_op_t *op, const psvc_node_t *pn)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = a ? event_start(&b) : HEARTH_ENOMEM;
    rc = rc ?: psvc__write_attr(&b, "<configuration node='", pn->n->name, "'>");
    if (!rc && pn->n->config.deliver_payloads) {
        hearth_xml_node_t *x =
            pubsub_config_form_of(a, NULL, &pn->n->config, &psvc__conf.service, HEARTH_FORM_RESULT);
        rc = x ? hearth_xml_serialize(x, HEARTH_NS_PUBSUB_EVENT, &b) : HEARTH_ENOMEM;
    }
    rc = rc ?: hearth_buf_append_str(&b, "</configuration>");
    rc = rc ?: pubsub_write_event_end(&b, 0, NULL);
    if (!rc)
        psvc__notify(op, pn, &b, 0);
    hearth_buf_free(&b);
    hearth_arena_free(a);
}

static void send_to(worker_t *w, const char *jid, const char *type, const hearth_buf_t *b)
{
    hearth_bytes_t *bytes = hearth_bytes_new(b->data, b->len);
    if (bytes)
        router__route(w, STANZA_MESSAGE, jid, psvc__conf.domain, type, bytes);
    hearth_bytes_unref(bytes);
}

void psvc__send_last(worker_t *w, const psvc_node_t *pn, const char *jid, const char *payload)
{
    const pubsub_item_meta_t *it = &pn->n->items[pn->n->nitems - 1];
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = event_start(&b);
    rc = rc
             ?: write_items_event(&b, pn->n->name, it->id,
                                  pn->n->config.deliver_payloads ? payload : NULL);
    rc = rc ?: pubsub_write_event_end(&b, it->stamp_ms, psvc__conf.domain);
    if (!rc)
        send_to(w, jid, "headline", &b);
    hearth_buf_free(&b);
}

/* §8.6.3, §8.8.4: a subscription's new state, to the subscriber. */
void psvc__send_sub_state(worker_t *w, const char *node, const char *jid, const char *subid,
                          const char *state)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = event_start(&b);
    rc = rc ?: psvc__write_attr(&b, "<subscription node='", node, "' jid='");
    rc = rc ?: psvc__write_attr(&b, "", jid, "'");
    if (subid)
        rc = rc ?: psvc__write_attr(&b, " subid='", subid, "'");
    rc = rc ?: hearth_buf_printf(&b, " subscription='%s'/>", state);
    rc = rc ?: pubsub_write_event_end(&b, 0, NULL);
    if (!rc)
        send_to(w, jid, "headline", &b);
    hearth_buf_free(&b);
}

/* §8.6.1: a form for each owner to allow or deny a pending subscription. */
void psvc__ask_owners(worker_t *w, const psvc_node_t *pn, const psvc_sub_t *sub)
{
    hearth_arena_t *a = hearth_arena_new(0);
    hearth_xml_node_t *m = a ? hearth_xml_new(a, "message", HEARTH_NS_CLIENT) : NULL;
    hearth_xml_node_t *x = m ? hearth_form_new(a, m, HEARTH_FORM_FORM) : NULL;
    int ok = x && !hearth_xml_set_attr(a, m, "from", psvc__conf.domain) &&
             hearth_form_add_title(a, x, "PubSub subscriber request") &&
             hearth_form_add_instructions(
                 a, x, "To approve this subscription, set pubsub#allow to true and submit.") &&
             hearth_form_add_form_type(a, x, HEARTH_NS_PUBSUB "#subscribe_authorization") &&
             hearth_form_add_field(a, x, "pubsub#subid", "hidden", NULL, sub->subid) &&
             hearth_form_add_field(a, x, "pubsub#node", "text-single", "Node ID", pn->n->name) &&
             hearth_form_add_field(a, x, "pubsub#subscriber_jid", "jid-single",
                                   "Subscriber Address", sub->jid) &&
             hearth_form_add_field(a, x, "pubsub#allow", "boolean",
                                   "Allow this JID to subscribe to this pubsub node?", "false");
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (ok && hearth_xml_serialize(m, HEARTH_NS_CLIENT, &b) == 0) {
        STRMAP_FOREACH(&pn->n->affs, e)
        {
            if ((pubsub_aff_t)(uintptr_t)e->value == PUBSUB_AFF_OWNER)
                send_to(w, e->key, "normal", &b);
        }
    }
    hearth_buf_free(&b);
    hearth_arena_free(a);
}

/* ---- disco (XEP-0030; XEP-0060 §5) ---- */

/* Exactly what is implemented (XEP-0060 §10). */
static const char *const FEATURES[] = {
    HEARTH_NS_DISCO_INFO,
    HEARTH_NS_DISCO_ITEMS,
    HEARTH_NS_PUBSUB,
    HEARTH_NS_PUBSUB "#access-authorize",
    HEARTH_NS_PUBSUB "#access-open",
    HEARTH_NS_PUBSUB "#access-presence",
    HEARTH_NS_PUBSUB "#access-roster",
    HEARTH_NS_PUBSUB "#access-whitelist",
    HEARTH_NS_PUBSUB "#config-node",
    HEARTH_NS_PUBSUB "#config-node-max",
    HEARTH_NS_PUBSUB "#create-and-configure",
    HEARTH_NS_PUBSUB "#create-nodes",
    HEARTH_NS_PUBSUB "#delete-items",
    HEARTH_NS_PUBSUB "#delete-nodes",
    HEARTH_NS_PUBSUB "#instant-nodes",
    HEARTH_NS_PUBSUB "#item-ids",
    HEARTH_NS_PUBSUB "#last-published",
    HEARTH_NS_PUBSUB "#manage-subscriptions",
    HEARTH_NS_PUBSUB "#member-affiliation",
    HEARTH_NS_PUBSUB "#meta-data",
    HEARTH_NS_PUBSUB "#modify-affiliations",
    HEARTH_NS_PUBSUB "#outcast-affiliation",
    HEARTH_NS_PUBSUB "#persistent-items",
    HEARTH_NS_PUBSUB "#publish",
    HEARTH_NS_PUBSUB "#publish-only-affiliation",
    HEARTH_NS_PUBSUB "#publish-options",
    HEARTH_NS_PUBSUB "#publisher-affiliation",
    HEARTH_NS_PUBSUB "#purge-nodes",
    HEARTH_NS_PUBSUB "#retract-items",
    HEARTH_NS_PUBSUB "#retrieve-affiliations",
    HEARTH_NS_PUBSUB "#retrieve-default",
    HEARTH_NS_PUBSUB "#retrieve-default-sub",
    HEARTH_NS_PUBSUB "#retrieve-items",
    HEARTH_NS_PUBSUB "#retrieve-subscriptions",
    HEARTH_NS_PUBSUB "#subscribe",
    HEARTH_NS_PUBSUB "#subscription-notifications",
    HEARTH_NS_PUBSUB "#subscription-options",
    NULL,
};

static void disco_info(psvc_op_t *op, const char *node)
{
    psvc_t *s = psvc__get(op->w);
    hearth_arena_t *a = op->arena;
    hearth_xml_node_t *r = hearth_xml_new(a, "query", HEARTH_NS_DISCO_INFO);
    hearth_xml_node_t *id = hearth_xml_add_child(a, r, "identity", NULL);
    hearth_xml_set_attr(a, id, "category", "pubsub");
    if (!node) {
        hearth_xml_set_attr(a, id, "type", "service");
        hearth_xml_set_attr(a, id, "name", "Publish-Subscribe");
        for (const char *const *f = FEATURES; *f; f++)
            hearth_xml_set_attr(a, hearth_xml_add_child(a, r, "feature", NULL), "var", *f);
        psvc__result_node(op, r);
        psvc__done(op);
        return;
    }
    psvc_node_t *pn = strmap_get(&s->nodes, node);
    if (!pn) {
        psvc__refuse(op, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, NULL);
        return;
    }
    hearth_xml_set_attr(a, r, "node", node);
    hearth_xml_set_attr(a, id, "type", "leaf");
    hearth_xml_set_attr(a, hearth_xml_add_child(a, r, "feature", NULL), "var", HEARTH_NS_PUBSUB);
    /* §5.4: the node's metadata. */
    const pubsub_config_t *c = &pn->n->config;
    char max[32];
    snprintf(max, sizeof(max), "%zu", pubsub_config_max_items(c, &psvc__conf.service));
    hearth_xml_node_t *x = hearth_form_new(a, r, HEARTH_FORM_RESULT);
    hearth_form_add_form_type(a, x, HEARTH_NS_PUBSUB_META_DATA);
    hearth_form_add_field(a, x, "pubsub#access_model", NULL, NULL, pubsub_access_name(c->access));
    hearth_form_add_field(a, x, "pubsub#max_items", NULL, NULL, max);
    hearth_xml_node_t *owners =
        hearth_form_add_field(a, x, "pubsub#owner", "jid-multi", NULL, NULL);
    STRMAP_FOREACH(&pn->n->affs, e)
    {
        if ((pubsub_aff_t)(uintptr_t)e->value == PUBSUB_AFF_OWNER)
            hearth_form_add_value(a, owners, e->key);
    }
    hearth_form_add_field(a, x, "pubsub#persist_items", NULL, NULL, c->persist_items ? "1" : "0");
    if (c->title)
        hearth_form_add_field(a, x, "pubsub#title", NULL, NULL, c->title);
    if (c->type)
        hearth_form_add_field(a, x, "pubsub#type", NULL, NULL, c->type);
    psvc__result_node(op, r);
    psvc__done(op);
}

static void disco_items(psvc_op_t *op, const char *node)
{
    psvc_t *s = psvc__get(op->w);
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<query xmlns='" HEARTH_NS_DISCO_ITEMS "'");
    if (node) {
        /* §5.5: a node's items, by id, to whoever may retrieve them (the access models that
         * need the owner's roster count as not: disco is no way around them). */
        psvc_node_t *pn = strmap_get(&s->nodes, node);
        pubsub_who_t who = psvc__who(op, pn);
        pubsub_err_t e;
        if (!pn || pubsub_access(pn->n, &who, &e)) {
            hearth_buf_free(&b);
            psvc__refuse(op, HEARTH_STANZA_ERR_ITEM_NOT_FOUND, NULL, NULL);
            return;
        }
        rc = rc ?: psvc__write_attr(&b, " node='", node, "'>");
        for (size_t i = 0; !rc && i < pn->n->nitems; i++) {
            rc = psvc__write_attr(&b, "<item jid='", psvc__conf.domain, "' name='");
            rc = rc ?: psvc__write_attr(&b, "", pn->n->items[i].id, "'/>");
        }
    } else {
        rc = rc ?: hearth_buf_append_str(&b, ">");
        STRMAP_FOREACH(&s->nodes, e)
        {
            psvc_node_t *pn = e->value;
            rc = rc ?: psvc__write_attr(&b, "<item jid='", psvc__conf.domain, "' node='");
            rc = rc ?: hearth_buf_append_escaped(&b, pn->n->name, strlen(pn->n->name));
            if (pn->n->config.title)
                rc = rc ?: psvc__write_attr(&b, "' name='", pn->n->config.title, "");
            rc = rc ?: hearth_buf_append_str(&b, "'/>");
        }
    }
    rc = rc ?: hearth_buf_append_str(&b, "</query>");
    if (!rc)
        psvc__result(op, b.data);
    hearth_buf_free(&b);
    psvc__done(op);
}

void psvc__disco(psvc_op_t *op, const hearth_xml_node_t *q, int items)
{
    const char *node = hearth_xml_attr(q, "node");
    if (items)
        disco_items(op, node);
    else
        disco_info(op, node);
}

/* ---- entry ---- */

typedef struct in_ctx {
    worker_t *w;
    inbox_msg_t *m;
} in_ctx_t;

static void parsed(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    in_ctx_t *c = ud;
    (void)arena;
    psvc_op_t *op = op_new(c->w, c->m->u.route.from, st);
    if (!op) {
        router__bounce(c->w, c->m, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    submit(c->w, op);
}

/* From the router, on the service's home worker: IQs (get, set) and messages (an owner's
 * answer to an authorization form) to the service's domain. */
static void deliver(worker_t *w, inbox_msg_t *m)
{
    const char *to = m->u.route.to;
    stanza_kind_t kind = m->u.route.kind;
    if (kind == STANZA_PRESENCE || m->u.route.is_error || !m->u.route.from)
        return; /* presence to the service means nothing here */
    if (strcmp(to, psvc__conf.domain)) {
        router__bounce(w, m, HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE, NULL); /* no such entity */
        return;
    }
    const char *type = m->u.route.type;
    if (kind == STANZA_IQ && strcmp(type, "get") && strcmp(type, "set"))
        return; /* results and errors: the service asks nobody anything */
    if (kind == STANZA_MESSAGE && !strcmp(type, "headline"))
        return;
    in_ctx_t c = {w, m};
    router__parse(m->u.route.bytes->data, m->u.route.bytes->len, parsed, &c);
}

/* An account is gone (its affiliation rows went with it): on the service's home worker, its
 * affiliations and subscriptions leave memory and the stored subscription lists, in order with
 * the requests (a name registered again starts with nothing). */
static int account_removed(hook_args_t *a)
{
    worker_t *w = a->w;
    if (worker__home(w->srv, psvc__conf.domain) != w)
        return HOOK_CONTINUE;
    hearth_arena_t *arena = hearth_arena_new(0);
    hearth_xml_node_t *f = arena ? hearth_xml_new(arena, "forget", PSVC_NS_INTERNAL) : NULL;
    psvc_op_t *op = f && !hearth_xml_set_attr(arena, f, "jid", a->bare)
                        ? op_new(w, psvc__conf.domain, f)
                        : NULL;
    hearth_arena_free(arena);
    if (op)
        submit(w, op);
    else
        hlog(LOG_ERROR, "pubsub %s: %s was removed but keeps its subscriptions until a restart",
             psvc__conf.domain, a->bare);
    return HOOK_CONTINUE;
}

static int psvc_worker_init(worker_t *w)
{
    w->slot[worker_slot] = NULL;
    return 0;
}

static void psvc_worker_free(worker_t *w)
{
    psvc_t *s = w->slot[worker_slot];
    if (!s)
        return;
    while (s->head) {
        psvc_op_t *op = s->head;
        s->head = op->next;
        psvc__done(op);
    }
    nodes_clear(s);
    strmap_free(&s->nodes);
    free(s);
    w->slot[worker_slot] = NULL;
}

static int psvc_init(server_t *srv)
{
    static char domain[1100];
    const config_t *cfg = srv->cfg;
    const char *d = config_str(cfg, "pubsub.domain");
    if (*d)
        snprintf(domain, sizeof(domain), "%s", d);
    else
        snprintf(domain, sizeof(domain), "pubsub.%s", srv->set.domain);
    const char *policy = config_str(cfg, "pubsub.create_policy");
    psvc__conf = (psvc_conf_t){
        .domain = domain,
        .server_domain = srv->set.domain,
        .create = !strcmp(policy, "admin")  ? PSVC_CREATE_ADMIN
                  : !strcmp(policy, "open") ? PSVC_CREATE_OPEN
                                            : PSVC_CREATE_LOCAL,
        .max_nodes = (size_t)config_int(cfg, "pubsub.max_nodes_per_user"),
        .max_item_size = (size_t)config_int(cfg, "pubsub.max_item_size"),
        .max_node_bytes = (size_t)config_int(cfg, "pubsub.max_node_bytes"),
        .max_subs = (size_t)config_int(cfg, "pubsub.max_subscriptions"),
        /* XEP-0060 §16.4's defaults where it gives them: open access, publishers publish, the
         * items kept, payloads delivered, the last item sent to a new subscriber. */
        .service = {.max_items = (size_t)config_int(cfg, "pubsub.max_items"),
                    .access_models = 0x1fu, /* the five of pubsub_access_t */
                    .publish_models = 0x7u,
                    .defaults = {.access = PUBSUB_ACCESS_OPEN,
                                 .max_items = 10,
                                 .persist_items = 1,
                                 .deliver_payloads = 1,
                                 .deliver_notifications = 1,
                                 .notify_retract = 1,
                                 .notify_delete = 1,
                                 .notify_config = 0,
                                 .send_last = PUBSUB_LAST_ON_SUB,
                                 .publish_model = PUBSUB_PUBLISH_PUBLISHERS}},
    };
    if (psvc__conf.service.defaults.max_items > psvc__conf.service.max_items)
        psvc__conf.service.defaults.max_items = psvc__conf.service.max_items;
    router_service_t svc = {.domain = domain, .deliver = deliver, .name = "Publish-Subscribe"};
    if ((worker_slot = worker__slot_new()) < 0 || router__add_service(&svc) ||
        hooks__add(HOOK_ACCOUNT_REMOVED, 0, account_removed))
        return -1;
    return 0;
}

const module_t module_pubsub_svc = {
    .name = "pubsub",
    .switch_key = "pubsub.enabled",
    .init = psvc_init,
    .worker_init = psvc_worker_init,
    .worker_free = psvc_worker_free,
};
