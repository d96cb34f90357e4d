/* PEP (pep.h): the module. Each account's requests wait in a queue on its home worker and run
 * one at a time; the account's nodes are loaded at the first of them. Requests of the owner come
 * straight from its session; those of others are routed to the account (HOOK_IQ_IN). A resource
 * that becomes available (or whose caps become known, or that a contact newly lets see its
 * presence) asks the accounts whose presence it sees for their last items (XEP-0163 §4.3.4). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/pep.h"

pep_conf_t pep__conf;
int pep__wslot = -1;
int pep__slot = -1;
static pep_loaded_fn loaded_listeners[PEP_LISTENERS_MAX];
static size_t nloaded;

/* ---- requests ---- */

void pep__done(pep_op_t *op)
{
    if (!op)
        return;
    if (op->internal) { /* ended without an answer (the account went): it still hears */
        pubsub_err_t e;
        pubsub_fail(&e, HEARTH_STANZA_ERR_INTERNAL_SERVER_ERROR, NULL, "the request was dropped");
        pep_internal_fn fn = op->internal;
        op->internal = NULL;
        fn(op->internal_ud, &e, NULL);
    }
    hearth_arena_free(op->arena);
    free(op->requester);
    free(op->requester_bare);
    free(op->reply_from);
    caps__unref(op->nodes);
    if (op->creating)
        pubsub_node_free(op->node);
    free(op->node_name);
    free(op->id);
    free(op->payload);
    pubsub_config_clear(&op->config);
    storage_pubsub_affs_free(op->changes, op->nchanges);
    free(op);
}

static char *bare_dup(const char *jid)
{
    return strndup(jid, strcspn(jid, "/"));
}

/* About the bytes a tree holds in its arena: names, attributes, text. Nesting is bounded by the
 * parser's depth limit. */
static size_t tree_bytes(const hearth_xml_node_t *n)
{
    size_t bytes = sizeof(*n) + n->text_len + (n->name ? strlen(n->name) : 0);
    for (const hearth_xml_attr_t *at = n->attrs; at; at = at->next)
        bytes += sizeof(*at) + strlen(at->name) + strlen(at->value);
    for (const hearth_xml_node_t *c = n->children; c; c = c->next)
        bytes += tree_bytes(c);
    return bytes;
}

/* A request for u, its tree copied out of the caller's arena. */
static pep_op_t *op_new(op_kind_t kind, const char *requester, const hearth_xml_node_t *iq)
{
    pep_op_t *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->kind = kind;
    const char *to = iq ? hearth_xml_attr(iq, "to") : NULL;
    if (!(op->requester = strdup(requester)) || !(op->requester_bare = bare_dup(requester)) ||
        (to && !(op->reply_from = strdup(to))) ||
        (iq &&
         (!(op->arena = hearth_arena_new(0)) || !(op->iq = hearth_xml_copy(op->arena, iq))))) {
        pep__done(op);
        return NULL;
    }
    op->cost = sizeof(*op) + (op->iq ? tree_bytes(op->iq) : 0);
    return op;
}

static pep_user_t *pep_of(worker_t *w, user_t *u)
{
    pep_user_t *pu = pep__state(u);
    if (pu)
        return pu;
    if (!(pu = calloc(1, sizeof(*pu))) || strmap_init(&pu->nodes)) {
        free(pu);
        return NULL;
    }
    pu->w = w;
    pu->u = u;
    u->slot[pep__slot] = pu;
    return pu;
}

static void nodes_clear(pep_user_t *pu)
{
    STRMAP_FOREACH(&pu->nodes, e)
    {
        pubsub_node_free(e->value);
        strmap_remove(&pu->nodes, e->key);
    }
    pu->bytes = 0;
}

/* ---- who asks ---- */

pubsub_who_t pep__who(const user_t *u, const char *bare, const pubsub_node_t *n)
{
    pubsub_who_t who = {0};
    who.owner = !strcmp(bare, u->bare);
    storage_roster_item_t *it = strmap_get(&u->roster, bare);
    who.presence_sub = user__sub_from(it);
    if (it) {
        who.groups = it->groups;
        who.ngroups = it->ngroups;
    }
    who.aff = who.owner ? PUBSUB_AFF_OWNER : n ? pubsub_node_aff(n, bare) : PUBSUB_AFF_NONE;
    return who;
}

/* ---- the queue ---- */

static void held_as_needed(worker_t *w, user_t *u, pep_user_t *pu)
{
    int want = pu->head || pu->busy || pu->state == PEP_LOADING;
    if (want && !pu->held) {
        pu->held = 1;
        user__hold(u);
    } else if (!want && pu->held) {
        pu->held = 0;
        user__release(w, u); /* may free u, and pu with it */
    }
}

/* A storage callback of op's: u no longer waits for it. */
void pep__back(pep_op_t *op)
{
    pep_user_t *pu = pep__state(op->u);
    if (pu && pu->busy == op)
        pu->busy = NULL;
}

/* The storage call of op came back: its next step, then the requests that wait. */
void pep__stored(void *ud, int err)
{
    pep_op_t *op = ud;
    worker_t *w = op->w;
    user_t *u = op->u;
    pep__back(op);
    op->then(op, err);
    pep__run(w, u);
}

/* Waits for a storage call that was just submitted (rc 0), or fails op now. */
void pep__await(pep_op_t *op, int rc, op_then_fn then)
{
    if (rc) {
        pep__fail_storage(op, rc);
        pep__done(op);
        return;
    }
    op->then = then;
    pep__state(op->u)->busy = op;
}

/* ---- the last items (XEP-0163 §4.3.4) ---- */

static void last_items(pep_op_t *op);

/* The payload of a last item that was not at hand, read from storage. */
static void last_read(void *ud, int err, const storage_pubsub_item_t *items, size_t n)
{
    pep_op_t *op = ud;
    worker_t *w = op->w;
    user_t *u = op->u;
    pep__back(op);
    pubsub_node_t *node = strmap_get(&pep__state(u)->nodes, op->nodes->nodes[op->next_node]);
    if (err)
        hlog(LOG_ERROR, "PEP of %s: a last item could not be read: %s", u->bare,
             hearth_strerror(err));
    else if (node && node->nitems && n == 1 &&
             !strcmp(items[0].id, node->items[node->nitems - 1].id))
        pep__send_last(op, node, items[0].payload);
    op->next_node++;
    last_items(op);
    pep__run(w, u);
}

/* For each node the requester wants (op->nodes, from op->next_node on): its last item, when
 * the requester may see it. Reads from storage one at a time what is not at hand. */
static void last_items(pep_op_t *op)
{
    user_t *u = op->u;
    pep_user_t *pu = pep__state(u);
    pubsub_who_t base = pep__who(u, op->requester_bare, NULL);
    if (!base.owner && (!base.presence_sub || blocking__blocks(u, op->requester_bare))) {
        pep__done(op);
        return;
    }
    for (; op->next_node < op->nodes->n; op->next_node++) {
        pubsub_node_t *n = strmap_get(&pu->nodes, op->nodes->nodes[op->next_node]);
        if (!n || !n->nitems || !n->config.deliver_notifications)
            continue;
        pubsub_send_last_t when = n->config.send_last;
        if (when == PUBSUB_LAST_NEVER || (!op->on_sub && when != PUBSUB_LAST_ON_SUB_AND_PRESENCE))
            continue;
        pubsub_err_t e;
        pubsub_who_t who = pep__who(u, op->requester_bare, n);
        if (pubsub_access(n, &who, &e))
            continue;
        if (n->last_payload || !n->config.deliver_payloads) {
            pep__send_last(op, n, n->last_payload);
            continue;
        }
        const char *id = n->items[n->nitems - 1].id;
        worker_t *w = op->w;
        if (storage_pubsub_items(w->srv->storage, &w->storage_target, u->bare, n->name, &id, 1, 0,
                                 last_read, op) == 0) {
            pu->busy = op;
            return;
        }
    }
    pep__done(op);
}

/* ---- loading, and the queue's loop ---- */

static void fail_waiting(pep_user_t *pu, hearth_stanza_error_t cond)
{
    while (pu->head) {
        pep_op_t *op = pu->head;
        pu->head = op->next;
        pu->nops--;
        pu->ops_bytes -= op->cost;
        if (op->kind == OP_IQ)
            pep__fail(op, cond, NULL, NULL);
        pep__done(op);
    }
    pu->tail = NULL;
}

static void loaded(void *ud, int err, const storage_pubsub_state_t *st)
{
    pep_user_t *pu = ud;
    worker_t *w = pu->w;
    user_t *u = pu->u;
    if (err) {
        hlog(LOG_ERROR, "PEP of %s could not be loaded: %s", u->bare, hearth_strerror(err));
        pu->state = PEP_NEW; /* the next request tries again */
        fail_waiting(pu, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT);
        pep__run(w, u);
        return;
    }
    nodes_clear(pu);
    for (size_t i = 0; i < st->nnodes; i++) {
        pubsub_config_t c;
        if (pubsub_config_load(&c, pep__service(w), st->nodes[i].config)) {
            hlog(LOG_WARN,
                 "PEP of %s: node %s has a configuration that cannot be read; it "
                 "gets the defaults",
                 u->bare, st->nodes[i].node);
            if (pubsub_config_copy(&c, &pep__conf.service.defaults))
                continue;
        }
        pubsub_node_t *n = pubsub_node_new(st->nodes[i].node, &c);
        if (!n || strmap_put(&pu->nodes, n->name, n)) {
            pubsub_config_clear(&c);
            pubsub_node_free(n);
        }
    }
    for (size_t i = 0; i < st->nitems; i++) {
        const storage_pubsub_item_t *it = &st->items[i];
        pubsub_node_t *n = strmap_get(&pu->nodes, it->node);
        size_t bytes = pep__item_bytes(it->size, it->id);
        if (n && pubsub_node_push(n, it->id, bytes, it->stamp_ms, it->payload) == 0)
            pu->bytes += bytes;
    }
    for (size_t i = 0; i < st->naffs; i++) {
        pubsub_node_t *n = strmap_get(&pu->nodes, st->affs[i].node);
        pubsub_aff_t a = pubsub_aff_parse(st->affs[i].affiliation);
        if (n && a != PUBSUB_AFF_NONE)
            strmap_put(&n->affs, st->affs[i].jid, (void *)(uintptr_t)a);
    }
    pu->state = PEP_READY;
    for (size_t i = 0; i < nloaded; i++)
        loaded_listeners[i](w, u);
    pep__run(w, u);
}

/* Runs what waits for u's PEP, in order, until the queue is empty or a request waits for
 * storage. Nothing may touch u after it: it may let u go. */
void pep__run(worker_t *w, user_t *u)
{
    pep_user_t *pu = pep__state(u);
    if (!pu)
        return;
    user__hold(u); /* while we are here */
    while (!pu->busy && pu->head && pu->state != PEP_LOADING) {
        if (pu->state == PEP_NEW) {
            pu->state = PEP_LOADING;
            if (storage_pubsub_load(w->srv->storage, &w->storage_target, u->bare, PEP_LAST_INLINE,
                                    loaded, pu) == 0)
                break;
            pu->state = PEP_NEW;
            fail_waiting(pu, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT);
            break;
        }
        pep_op_t *op = pu->head;
        pu->head = op->next;
        if (!pu->head)
            pu->tail = NULL;
        pu->nops--;
        pu->ops_bytes -= op->cost;
        op->next = NULL;
        if (op->kind == OP_IQ)
            pep__process_iq(op);
        else
            last_items(op);
    }
    held_as_needed(w, u, pu);
    user__release(w, u);
}

/* Queues op for u (on u's home worker, u loaded) and runs what can run. */
static void submit(worker_t *w, user_t *u, pep_op_t *op)
{
    pep_user_t *pu = pep_of(w, u);
    op->w = w;
    op->u = u;
    if (!pu || pu->nops >= PEP_OPS_MAX || pu->ops_bytes + op->cost > PEP_OPS_BYTES) {
        hlog(LOG_WARN, "PEP of %s: too many requests wait", u->bare);
        if (op->kind == OP_IQ)
            pep__fail(op, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
        pep__done(op);
        return;
    }
    if (pu->tail)
        pu->tail->next = op;
    else
        pu->head = op;
    pu->tail = op;
    pu->nops++;
    pu->ops_bytes += op->cost;
    pep__run(w, u);
}

/* ---- entry points ---- */

static pep_change_fn listeners[PEP_LISTENERS_MAX];
static size_t nlisteners;

void pep__listen(pep_change_fn fn)
{
    if (nlisteners < PEP_LISTENERS_MAX)
        listeners[nlisteners++] = fn;
}

/* Only what a client did: a conversion's own changes are not converted back. */
void pep__changed(pep_op_t *op, const pubsub_node_t *n, const char *id, const char *payload)
{
    if (op->by_server)
        return;
    pep_change_t what = payload ? PEP_PUBLISHED : id ? PEP_RETRACTED : PEP_EMPTIED;
    for (size_t i = 0; i < nlisteners; i++)
        listeners[i](op->w, op->u, n->name, what, id, payload);
}

static pep_check_fn checks[PEP_LISTENERS_MAX];
static size_t nchecks;

void pep__listen_check(pep_check_fn fn)
{
    if (nchecks < PEP_LISTENERS_MAX)
        checks[nchecks++] = fn;
}

int pep__check_publish(pep_op_t *op, const char *node, const hearth_xml_node_t *payload,
                       pubsub_err_t *e)
{
    for (size_t i = 0; !op->by_server && i < nchecks; i++)
        if (checks[i](op->w, op->u, node, payload, op->size, e))
            return -1;
    return 0;
}

void pep__listen_loaded(pep_loaded_fn fn)
{
    if (nloaded < PEP_LISTENERS_MAX)
        loaded_listeners[nloaded++] = fn;
}

int pep__has_items(const user_t *u, const char *node)
{
    pep_user_t *pu = pep__state(u);
    if (!pu || pu->state != PEP_READY)
        return -1;
    pubsub_node_t *n = strmap_get(&pu->nodes, node);
    return n && n->nitems;
}

void pep__later(worker_t *w, void (*fn)(worker_t *, void *), void (*drop)(void *), void *arg)
{
    pep__post(w, w, fn, drop, arg);
}

typedef struct internal_parse {
    pep_op_t *op;
} internal_parse_t;

static void internal_parsed(void *ud, hearth_xml_node_t *iq, hearth_arena_t *arena)
{
    internal_parse_t *p = ud;
    (void)arena;
    if (!p->op->iq && (p->op->iq = hearth_xml_copy(p->op->arena, iq)))
        p->op->cost = sizeof(*p->op) + tree_bytes(p->op->iq);
}

void pep__submit_internal(worker_t *w, user_t *u, const char *iq, size_t len, pep_internal_fn done,
                          void *ud)
{
    pep_op_t *op = op_new(OP_IQ, u->bare, NULL);
    if (op) {
        op->by_server = 1;
        op->internal = done;
        op->internal_ud = ud;
        if ((op->arena = hearth_arena_new(0))) {
            internal_parse_t p = {op};
            router__parse(iq, len, internal_parsed, &p);
        }
        if (op->iq && hearth_xml_set_attr(op->arena, op->iq, "from", u->bare) == 0) {
            submit(w, u, op);
            return;
        }
        pep__done(op); /* done hears of it */
        return;
    }
    pubsub_err_t e;
    pubsub_fail(&e, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL, NULL);
    done(ud, &e, NULL);
}

/* A pubsub request from a session: its own account's here; another account's where that one
 * lives (HOOK_IQ_IN below). */
static void pep_iq(iq_ctx_t *ctx)
{
    if (ctx->where != IQ_TO_SELF) {
        router__route_node(ctx->w, ctx->to, ctx->iq);
        return;
    }
    pep_op_t *op = op_new(OP_IQ, ctx->s->jid.full, ctx->iq);
    if (!op) {
        iq_error(ctx, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    submit(ctx->w, ctx->s->user, op);
}

void pep__disco_items(iq_ctx_t *ctx)
{
    pep_iq(ctx);
}

void pep__disco_node_info(iq_ctx_t *ctx)
{
    pep_iq(ctx);
}

typedef struct iq_in_ctx {
    hook_args_t *a;
    int taken;
} iq_in_ctx_t;

static void iq_in_parsed(void *ud, hearth_xml_node_t *iq, hearth_arena_t *arena)
{
    iq_in_ctx_t *c = ud;
    hearth_xml_node_t *p = hearth_xml_first_element(iq);
    const char *type = hearth_xml_attr(iq, "type"), *from = hearth_xml_attr(iq, "from");
    if (!p || !type || !from || (strcmp(type, "get") && strcmp(type, "set")))
        return;
    /* disco#info without a node is the account's own (core.c answers it on the asker's
     * worker); with a node it is about a PEP node (XEP-0060 §5.3). */
    if (!pep__is(p, "pubsub", HEARTH_NS_PUBSUB) && !pep__is(p, "pubsub", HEARTH_NS_PUBSUB_OWNER) &&
        !pep__is(p, "query", HEARTH_NS_DISCO_ITEMS) &&
        !(pep__is(p, "query", HEARTH_NS_DISCO_INFO) && hearth_xml_attr(p, "node")))
        return;
    c->taken = 1;
    hook_args_t *a = c->a;
    if (a->u->state != USER_READY) {
        router__bounce(a->w, a->m,
                       a->u->state == USER_FAILED ? HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT
                                                  : HEARTH_STANZA_ERR_SERVICE_UNAVAILABLE,
                       NULL);
        return;
    }
    pep_op_t *op = op_new(OP_IQ, from, iq);
    if (!op) {
        router__bounce(a->w, a->m, HEARTH_STANZA_ERR_RESOURCE_CONSTRAINT, NULL);
        return;
    }
    (void)arena;
    submit(a->w, a->u, op);
}

/* A request routed to an account's bare JID, on its home worker. */
static int iq_in(hook_args_t *a)
{
    if (strchr(a->m->u.route.to, '/'))
        return HOOK_CONTINUE;
    iq_in_ctx_t c = {a, 0};
    router__parse(a->m->u.route.bytes->data, a->m->u.route.bytes->len, iq_in_parsed, &c);
    return c.taken ? HOOK_STOP : HOOK_CONTINUE;
}

/* Asks for last items, worker by worker: owners (bare JIDs) homed on the worker it goes to. */
typedef struct last_req {
    char *requester;
    caps_set_t *nodes;
    int on_sub;
    char **owners;
    size_t nowners, cap;
} last_req_t;

static void last_req_free(void *arg)
{
    last_req_t *r = arg;
    if (!r)
        return;
    free(r->requester);
    caps__unref(r->nodes);
    for (size_t i = 0; i < r->nowners; i++)
        free(r->owners[i]);
    free(r->owners);
    free(r);
}

typedef struct last_one {
    char *requester;
    caps_set_t *nodes;
    int on_sub;
} last_one_t;

static void last_acquired(worker_t *w, user_t *u, void *arg)
{
    last_one_t *l = arg;
    if (u->state == USER_READY) {
        pep_op_t *op = op_new(OP_LAST, l->requester, NULL);
        if (op) {
            op->nodes = caps__ref(l->nodes);
            op->on_sub = l->on_sub;
            submit(w, u, op);
        }
    }
    free(l->requester);
    caps__unref(l->nodes);
    free(l);
}

static void last_req_run(worker_t *w, void *arg)
{
    last_req_t *r = arg;
    for (size_t i = 0; i < r->nowners; i++) {
        last_one_t *l = calloc(1, sizeof(*l));
        if (!l || !(l->requester = strdup(r->requester))) {
            free(l);
            continue;
        }
        l->nodes = caps__ref(r->nodes);
        l->on_sub = r->on_sub;
        user__acquire(w, r->owners[i], last_acquired, l);
    }
    last_req_free(r);
}

static void last_req_add(last_req_t **per, worker_t *w, const char *owner)
{
    last_req_t *r = per[worker__home(w->srv, owner)->index];
    if (!r)
        return;
    if (r->nowners == r->cap) {
        char **v = realloc(r->owners, (r->cap * 2 + 8) * sizeof(char *));
        if (!v)
            return;
        r->owners = v;
        r->cap = r->cap * 2 + 8;
    }
    if ((r->owners[r->nowners] = strdup(owner)))
        r->nowners++;
}

/* s wants the last items of nodes from owners: its own account and each contact whose presence
 * it sees (all of them), or the one named. */
static void ask_last(session_t *s, caps_set_t *nodes, const char *only, int on_sub)
{
    worker_t *w = s->w;
    user_t *u = s->user;
    unsigned nw = w->srv->nworkers;
    last_req_t **per = calloc(nw, sizeof(*per));
    for (unsigned i = 0; per && i < nw; i++) {
        last_req_t *r = calloc(1, sizeof(*r));
        if (r && !(r->requester = strdup(s->jid.full))) {
            free(r);
            r = NULL;
        }
        if (r) {
            r->nodes = caps__ref(nodes);
            r->on_sub = on_sub;
        }
        per[i] = r;
    }
    if (!per)
        return;
    if (only) {
        last_req_add(per, w, only);
    } else {
        last_req_add(per, w, u->bare);
        STRMAP_FOREACH(&u->roster, e)
        {
            storage_roster_item_t *it = e->value;
            if (user__sub_to(it) && !blocking__blocks(u, it->jid))
                last_req_add(per, w, it->jid);
        }
    }
    for (unsigned i = 0; i < nw; i++) {
        if (per[i] && per[i]->nowners)
            pep__post(w, w->srv->workers[i], last_req_run, last_req_free, per[i]);
        else
            last_req_free(per[i]);
    }
    free(per);
}

/* s now wants notifications of nodes (caps.c): the last items published to them by its own
 * account and by the contacts whose presence it sees. */
static void resource_wants(session_t *s, caps_set_t *nodes)
{
    if (s->user && im__live(s))
        ask_last(s, nodes, NULL, 0);
}

/* A contact approved the user's subscription: it now sees the contact's presence, and so is a
 * new subscriber of its nodes (XEP-0060 §6.1.7: the last items, on_sub). Runs before the
 * presence module applies it. */
static int presence_in(hook_args_t *a)
{
    inbox_msg_t *m = a->m;
    user_t *u = a->u;
    if (u->state != USER_READY || !m->u.route.from || strcmp(m->u.route.type, "subscribed"))
        return HOOK_CONTINUE;
    char *contact = bare_dup(m->u.route.from);
    storage_roster_item_t *it = contact ? strmap_get(&u->roster, contact) : NULL;
    if (it && it->ask && !user__sub_to(it) && !blocking__blocks(u, contact))
        for (session_t *s = u->sessions; s; s = s->user_next) {
            caps_set_t *want = caps__wanted(s);
            if (want && want->n && im__live(s) && s->available && s->priority >= 0)
                ask_last(s, want, contact, 1);
        }
    free(contact);
    return HOOK_CONTINUE;
}

static int user_unloaded(hook_args_t *a)
{
    pep_user_t *pu = pep__state(a->u);
    if (!pu)
        return HOOK_CONTINUE;
    /* Nothing waits (what waits holds the user), but be thorough. */
    while (pu->head) {
        pep_op_t *op = pu->head;
        pu->head = op->next;
        pep__done(op);
    }
    nodes_clear(pu);
    strmap_free(&pu->nodes);
    free(pu);
    a->u->slot[pep__slot] = NULL;
    return HOOK_CONTINUE;
}

static void forget_affiliations(pep_user_t *pu, const char *bare)
{
    STRMAP_FOREACH(&pu->nodes, e)
    {
        strmap_remove(&((pubsub_node_t *)e->value)->affs, bare);
    }
}

/* An account is gone (its rows went with it): its own nodes leave memory, and what other
 * accounts here granted it. */
static int account_removed(hook_args_t *a)
{
    STRMAP_FOREACH(&a->w->users, e)
    {
        user_t *u = e->value;
        pep_user_t *pu = pep__state(u);
        if (!pu)
            continue;
        if (!strcmp(u->bare, a->bare)) {
            fail_waiting(pu, HEARTH_STANZA_ERR_ITEM_NOT_FOUND);
            if (!pu->busy && pu->state == PEP_READY) {
                nodes_clear(pu);
                pu->state = PEP_NEW; /* a name registered again starts empty */
            }
            continue;
        }
        forget_affiliations(pu, a->bare);
    }
    return HOOK_CONTINUE;
}

static int pep_init(server_t *srv)
{
    const settings_t *set = &srv->set;
    if ((pep__slot = user__slot_new()) < 0)
        return HEARTH_ELIMIT;
    if ((pep__wslot = worker__slot_new()) < 0)
        return HEARTH_ELIMIT;
    /* XEP-0163 §5's defaults: access by presence, payloads delivered, the last item sent on
     * presence; one item kept unless the owner says otherwise. */
    pep__conf.service = (pubsub_service_t){
        .max_items = set->pep_max_items,
        .defaults = {.access = PUBSUB_ACCESS_PRESENCE,
                     .max_items = 1,
                     .persist_items = 1,
                     .deliver_payloads = 1,
                     .deliver_notifications = 1,
                     .notify_delete = 1,
                     .send_last = PUBSUB_LAST_ON_SUB_AND_PRESENCE},
    };
    caps__listen(resource_wants);
    int rc = hooks__add(HOOK_IQ_IN, 10, iq_in);
    rc = rc ?: hooks__add(HOOK_PRESENCE_IN, 10, presence_in);
    rc = rc ?: hooks__add(HOOK_USER_UNLOADED, 0, user_unloaded);
    return rc ?: hooks__add(HOOK_ACCOUNT_REMOVED, 0, account_removed);
}

static const iq_route_t pep_iqs[] = {
    {HEARTH_NS_PUBSUB, "pubsub", IQ_TO_SELF | IQ_TO_ACCOUNT, pep_iq},
    {HEARTH_NS_PUBSUB_OWNER, "pubsub", IQ_TO_SELF | IQ_TO_ACCOUNT, pep_iq},
    {NULL, NULL, 0, NULL},
};

/* Exactly what is implemented (XEP-0060 §10, XEP-0163 §6.1). */
static const char *const pep_account_features[] = {
    HEARTH_NS_PUBSUB,
    HEARTH_NS_PUBSUB "#access-open",
    HEARTH_NS_PUBSUB "#access-presence",
    HEARTH_NS_PUBSUB "#access-roster",
    HEARTH_NS_PUBSUB "#access-whitelist",
    HEARTH_NS_PUBSUB "#auto-create",
    HEARTH_NS_PUBSUB "#auto-subscribe",
    HEARTH_NS_PUBSUB "#config-node",
    HEARTH_NS_PUBSUB "#config-node-max",
    HEARTH_NS_PUBSUB "#create-and-configure",
    HEARTH_NS_PUBSUB "#create-nodes",
    HEARTH_NS_PUBSUB "#delete-items",
    HEARTH_NS_PUBSUB "#delete-nodes",
    HEARTH_NS_PUBSUB "#filtered-notifications",
    HEARTH_NS_PUBSUB "#item-ids",
    HEARTH_NS_PUBSUB "#last-published",
    HEARTH_NS_PUBSUB "#member-affiliation",
    HEARTH_NS_PUBSUB "#meta-data",
    HEARTH_NS_PUBSUB "#modify-affiliations",
    HEARTH_NS_PUBSUB "#outcast-affiliation",
    HEARTH_NS_PUBSUB "#persistent-items",
    HEARTH_NS_PUBSUB "#presence-notifications",
    HEARTH_NS_PUBSUB "#publish",
    HEARTH_NS_PUBSUB "#publish-options",
    HEARTH_NS_PUBSUB "#purge-nodes",
    HEARTH_NS_PUBSUB "#retract-items",
    HEARTH_NS_PUBSUB "#retrieve-affiliations",
    HEARTH_NS_PUBSUB "#retrieve-default",
    HEARTH_NS_PUBSUB "#retrieve-items",
    HEARTH_NS_PUBSUB "#retrieve-subscriptions",
    NULL,
};
static const char *const pep_account_identities[] = {"pubsub/pep", NULL};

static int pep_worker_init(worker_t *w)
{
    pubsub_service_t *s = malloc(sizeof(*s));
    if (!s)
        return HEARTH_ENOMEM;
    *s = pep__conf.service; /* a shallow copy: the defaults hold no pointer of their own */
    w->slot[pep__wslot] = s;
    return 0;
}

static void pep_worker_free(worker_t *w)
{
    free(w->slot[pep__wslot]);
    w->slot[pep__wslot] = NULL;
}

const module_t module_pep = {
    .name = "pep",
    .iqs = pep_iqs,
    .account_features = pep_account_features,
    .account_identities = pep_account_identities,
    .init = pep_init,
    .worker_init = pep_worker_init,
    .worker_free = pep_worker_free,
};
