/* Entity capabilities (XEP-0115) of the clients' resources, learnt from the presence they
 * broadcast, so that PEP sends each resource the notifications it asked for with
 * '<node>+notify' features (XEP-0163 §4.2). An unknown 'ver' is asked of the resource with a
 * disco#info query from the server; the answer is checked against the hash (sha-1, sha-256,
 * sha-512; §5.4) and, when it matches, remembered for the whole server in a cache of
 * caps.cache_size entries, the least recently used forgotten first. An answer that does not
 * match, or that no hash names (the legacy format), serves that resource only. Per session:
 * its caps and the query in flight (one at most: a newer 'ver' replaces it). */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/im.h"
#include "modules/pubsub.h"

/* What one disco#info answer may hold to be hashed; past it the answer is ill-formed (the
 * resource gets no notifications). A client lists some tens of each. */
#define CAPS_IDENTITIES_MAX 64
#define CAPS_FEATURES_MAX 1024
#define CAPS_FORMS_MAX 16
/* A set keeps at most this many '+notify' nodes, and this many bytes of their names. */
#define CAPS_NOTIFY_MAX 256
#define CAPS_NOTIFY_BYTES 16384
#define CAPS_VER_MAX 256 /* bytes of 'ver', 'hash'; 'node' is bounded by PUBSUB_NODE_MAX */

#define SUFFIX "+notify"

/* ---- sets ---- */

caps_set_t *caps__ref(caps_set_t *c)
{
    if (c)
        __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
    return c;
}

void caps__unref(caps_set_t *c)
{
    if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(c);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int caps__has(const caps_set_t *c, const char *node)
{
    return c && c->n && bsearch(&node, c->nodes, c->n, sizeof(char *), cmp_str) != NULL;
}

/* A set of the n names (sorted, without repeats), in one allocation; NULL on ENOMEM. */
caps_set_t *caps__set_new(const char *const *names, size_t n)
{
    size_t bytes = 0;
    for (size_t i = 0; i < n; i++)
        bytes += strlen(names[i]) + 1;
    caps_set_t *c = malloc(sizeof(*c) + n * sizeof(char *) + bytes);
    if (!c)
        return NULL;
    c->refs = 1;
    c->n = 0;
    char *p = (char *)&c->nodes[n];
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]) + 1;
        memcpy(p, names[i], len);
        c->nodes[c->n++] = p;
        p += len;
    }
    qsort(c->nodes, c->n, sizeof(char *), cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < c->n; i++)
        if (k == 0 || strcmp(c->nodes[k - 1], c->nodes[i]))
            c->nodes[k++] = c->nodes[i];
    c->n = k;
    return c;
}

/* ---- the cache, shared by every worker ---- */

typedef struct cache_entry {
    struct cache_entry *prev, *next; /* most recently used first */
    caps_set_t *set;
    char key[]; /* "hash ver" */
} cache_entry_t;

static uv_mutex_t cache_lock; /* guards the four below: lookups and inserts, no I/O */
static strmap_t cache_map;    /* key -> cache_entry_t */
static cache_entry_t *cache_head, *cache_tail;
static size_t cache_max; /* set once at start-up */

static void cache_unlink(cache_entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        cache_head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        cache_tail = e->prev;
    e->prev = e->next = NULL;
}

static void cache_front(cache_entry_t *e)
{
    e->next = cache_head;
    if (cache_head)
        cache_head->prev = e;
    cache_head = e;
    if (!cache_tail)
        cache_tail = e;
}

/* The set remembered for key (a reference), or NULL. */
static caps_set_t *cache_get(const char *key)
{
    uv_mutex_lock(&cache_lock);
    cache_entry_t *e = strmap_get(&cache_map, key);
    caps_set_t *set = NULL;
    if (e) {
        cache_unlink(e);
        cache_front(e);
        set = caps__ref(e->set);
    }
    uv_mutex_unlock(&cache_lock);
    return set;
}

static void cache_put(const char *key, caps_set_t *set)
{
    size_t len = strlen(key) + 1;
    cache_entry_t *e = malloc(sizeof(*e) + len);
    if (!e)
        return;
    memcpy(e->key, key, len);
    e->prev = e->next = NULL;
    e->set = caps__ref(set);
    uv_mutex_lock(&cache_lock);
    cache_entry_t *old = strmap_get(&cache_map, key);
    if (old || strmap_put(&cache_map, key, e)) {
        uv_mutex_unlock(&cache_lock); /* learnt meanwhile elsewhere, or no memory */
        caps__unref(e->set);
        free(e);
        return;
    }
    cache_front(e);
    cache_entry_t *evict = NULL;
    if (cache_map.count > cache_max) {
        evict = cache_tail;
        cache_unlink(evict);
        strmap_remove(&cache_map, evict->key);
    }
    uv_mutex_unlock(&cache_lock);
    if (evict) {
        caps__unref(evict->set);
        free(evict);
    }
}

static void cache_free(void)
{
    for (cache_entry_t *e = cache_head, *next; e; e = next) {
        next = e->next;
        caps__unref(e->set);
        free(e);
    }
    cache_head = cache_tail = NULL;
    strmap_free(&cache_map);
    uv_mutex_destroy(&cache_lock);
}

/* ---- per session ---- */

typedef struct caps_sess {
    char *key;            /* the caps of its last broadcast presence: "hash ver", or "#node#ver"
                           * when no hash we verify names them (this resource only) */
    caps_set_t *set;      /* what it wants notifications of; NULL while unknown */
    caps_set_t *told;     /* what PEP was told it wants since it became available */
    char query[32];       /* the id of the disco#info query in flight, "" none */
    char *query_node;     /* its node: 'node#ver' */
    const EVP_MD *md;     /* the hash to check the answer with; NULL: trust it for this one */
    int broadcast;        /* the presence being handled is broadcast (set before presence.c) */
    hearth_xml_node_t *c; /* its <c/>, while it is handled */
    int available;
} caps_sess_t;

static int sess_slot = -1;
static caps_wants_fn listener; /* set once at start-up */

void caps__listen(caps_wants_fn fn)
{
    listener = fn;
}
#define CAPS(s) ((caps_sess_t *)(s)->slot[sess_slot])

caps_set_t *caps__wanted(const session_t *s)
{
    caps_sess_t *cs = CAPS(s);
    return cs ? cs->set : NULL;
}

int caps__wants(const session_t *s, const char *node)
{
    return caps__has(caps__wanted(s), node);
}

static void sess_free(session_t *s)
{
    caps_sess_t *cs = CAPS(s);
    if (!cs)
        return;
    caps__unref(cs->set);
    caps__unref(cs->told);
    free(cs->key);
    free(cs->query_node);
    free(cs);
    s->slot[sess_slot] = NULL;
}

static caps_sess_t *sess_get(session_t *s)
{
    if (!CAPS(s))
        s->slot[sess_slot] = calloc(1, sizeof(caps_sess_t));
    return CAPS(s);
}

/* The listener (PEP) hears of what the resource newly wants (the set minus what it was told
 * of). */
static void tell(session_t *s, caps_sess_t *cs)
{
    if (!cs->set || !cs->available || s->priority < 0 || cs->told == cs->set)
        return;
    const char *fresh[CAPS_NOTIFY_MAX];
    size_t n = 0;
    for (size_t i = 0; i < cs->set->n; i++)
        if (!caps__has(cs->told, cs->set->nodes[i]))
            fresh[n++] = cs->set->nodes[i];
    caps__unref(cs->told);
    cs->told = caps__ref(cs->set);
    if (n == 0)
        return;
    caps_set_t *delta = n == cs->set->n ? caps__ref(cs->set) : caps__set_new(fresh, n);
    if (delta && listener)
        listener(s, delta);
    caps__unref(delta);
}

static const EVP_MD *md_of(const char *hash)
{
    if (!hash)
        return NULL;
    if (!strcmp(hash, "sha-1"))
        return EVP_sha1();
    if (!strcmp(hash, "sha-256"))
        return EVP_sha256();
    if (!strcmp(hash, "sha-512"))
        return EVP_sha512();
    return NULL;
}

static void ask(session_t *s, caps_sess_t *cs, const char *node, const char *ver)
{
    const char *domain = s->w->set.domain;
    free(cs->query_node);
    cs->query_node = NULL;
    hearth_buf_t qn = HEARTH_BUF_INIT;
    if (hearth_buf_printf(&qn, "%s#%s", node, ver)) {
        hearth_buf_free(&qn);
        return;
    }
    cs->query_node = hearth_buf_steal(&qn, NULL);
    char id[25];
    user__random_id(id, sizeof(id));
    snprintf(cs->query, sizeof(cs->query), "caps-%s", id);
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(&b, "<iq type='get' from='");
    rc = rc ?: hearth_buf_append_escaped(&b, domain, strlen(domain));
    rc = rc ?: hearth_buf_append_str(&b, "' to='");
    rc = rc ?: hearth_buf_append_escaped(&b, s->jid.full, strlen(s->jid.full));
    rc = rc
             ?: hearth_buf_printf(&b, "' id='%s'><query xmlns='" HEARTH_NS_DISCO_INFO "' node='",
                                  cs->query);
    rc = rc ?: hearth_buf_append_escaped(&b, cs->query_node, strlen(cs->query_node));
    rc = rc ?: hearth_buf_append_str(&b, "'/></iq>");
    if (!rc)
        session__send(s, b.data, b.len);
    else
        cs->query[0] = '\0';
    hearth_buf_free(&b);
}

/* The <c/> of a broadcast presence: new caps are looked up, or asked for. */
static void learn(session_t *s, caps_sess_t *cs, hearth_xml_node_t *c)
{
    const char *hash = hearth_xml_attr(c, "hash");
    const char *node = hearth_xml_attr(c, "node");
    const char *ver = hearth_xml_attr(c, "ver");
    if (!node || !ver || !*ver || strlen(ver) > CAPS_VER_MAX || strlen(node) > PUBSUB_NODE_MAX ||
        (hash && strlen(hash) > CAPS_VER_MAX))
        return; /* not caps we can ask about: what was known stays */
    const EVP_MD *md = md_of(hash);
    hearth_buf_t k = HEARTH_BUF_INIT;
    int rc =
        md ? hearth_buf_printf(&k, "%s %s", hash, ver) : hearth_buf_printf(&k, "#%s#%s", node, ver);
    if (rc || (cs->key && !strcmp(cs->key, k.data))) {
        hearth_buf_free(&k);
        return; /* the same caps as before */
    }
    free(cs->key);
    cs->key = hearth_buf_steal(&k, NULL);
    caps__unref(cs->set);
    cs->set = md ? cache_get(cs->key) : NULL;
    cs->query[0] = '\0';
    cs->md = md;
    if (!cs->set)
        ask(s, cs, node, ver);
}

/* Before the presence module: which presence this is (broadcast or not), and its caps. */
static int presence_before(hook_args_t *a)
{
    caps_sess_t *cs = sess_get(a->s);
    if (!cs)
        return HOOK_CONTINUE;
    const char *type = hearth_xml_attr(a->st, "type");
    cs->broadcast = !hearth_xml_attr(a->st, "to") && (!type || !strcmp(type, "unavailable"));
    cs->c = cs->broadcast ? hearth_xml_child(a->st, "c", HEARTH_NS_CAPS) : NULL;
    return HOOK_CONTINUE;
}

/* After it: what it made of the session. */
static int presence_after(hook_args_t *a)
{
    session_t *s = a->s;
    caps_sess_t *cs = CAPS(s);
    if (!cs || !cs->broadcast)
        return HOOK_CONTINUE;
    cs->broadcast = 0;
    hearth_xml_node_t *c = cs->c;
    cs->c = NULL;
    if (!s->available) {
        /* A later initial presence gets the last items again (XEP-0163 §4.3.3.2). */
        cs->available = 0;
        caps__unref(cs->told);
        cs->told = NULL;
        return HOOK_CONTINUE;
    }
    cs->available = 1;
    if (c)
        learn(s, cs, c);
    tell(s, cs);
    return HOOK_CONTINUE;
}

/* ---- checking an answer (§5) ---- */

typedef struct str_list {
    const char **v;
    size_t n, max;
} str_list_t;

static int list_add(hearth_arena_t *a, str_list_t *l, const char *s)
{
    if (l->n == l->max)
        return -1;
    if (!l->v && !(l->v = hearth_arena_alloc(a, l->max * sizeof(char *))))
        return -1;
    l->v[l->n++] = s;
    return 0;
}

static int sorted_unique(str_list_t *l)
{
    if (l->n)
        qsort(l->v, l->n, sizeof(char *), cmp_str);
    for (size_t i = 1; i < l->n; i++)
        if (!strcmp(l->v[i - 1], l->v[i]))
            return -1;
    return 0;
}

typedef struct form_text {
    const char *type; /* FORM_TYPE */
    char *text;       /* what the form adds to S */
} form_text_t;

static int cmp_form(const void *a, const void *b)
{
    return strcmp(((const form_text_t *)a)->type, ((const form_text_t *)b)->type);
}

static int cmp_field(const void *a, const void *b)
{
    const hearth_form_field_t *x = *(const hearth_form_field_t *const *)a;
    const hearth_form_field_t *y = *(const hearth_form_field_t *const *)b;
    return strcmp(x->var, y->var);
}

/* One extended form's part of S (§5.1 steps 6-7); 1 when the form is to be ignored, -1 when
 * the answer is ill-formed. */
static int form_part(hearth_arena_t *a, const hearth_xml_node_t *x, form_text_t *out)
{
    hearth_form_t f;
    if (hearth_form_parse(a, x, NULL, &f, NULL))
        return -1;
    const hearth_form_field_t *ft = hearth_form_field(&f, "FORM_TYPE");
    if (!ft || !ft->type || strcmp(ft->type, "hidden") || ft->nvalues == 0)
        return 1;
    for (size_t i = 1; i < ft->nvalues; i++)
        if (strcmp(ft->values[i], ft->values[0]))
            return -1;
    const hearth_form_field_t **fields = hearth_arena_alloc(a, (f.nfields + 1) * sizeof(*fields));
    if (!fields)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < f.nfields; i++)
        if (f.fields[i].var && strcmp(f.fields[i].var, "FORM_TYPE"))
            fields[n++] = &f.fields[i];
    qsort(fields, n, sizeof(*fields), cmp_field);
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_printf(&b, "%s<", ft->values[0]);
    for (size_t i = 0; !rc && i < n; i++) {
        rc = hearth_buf_printf(&b, "%s<", fields[i]->var);
        const char **vals = hearth_arena_alloc(a, (fields[i]->nvalues + 1) * sizeof(char *));
        if (!vals) {
            rc = -1;
            break;
        }
        memcpy(vals, fields[i]->values, fields[i]->nvalues * sizeof(char *));
        qsort(vals, fields[i]->nvalues, sizeof(char *), cmp_str);
        for (size_t k = 0; !rc && k < fields[i]->nvalues; k++)
            rc = hearth_buf_printf(&b, "%s<", vals[k]);
    }
    out->type = ft->values[0];
    out->text = rc ? NULL : hearth_arena_strdup(a, b.data ? b.data : "");
    hearth_buf_free(&b);
    return out->text ? 0 : -1;
}

/* The answer's S (§5.1), and its '+notify' nodes in *notify; -1 when ill-formed (§5.4). */
static int answer_string(hearth_arena_t *a, const hearth_xml_node_t *q, hearth_buf_t *s,
                         str_list_t *notify)
{
    str_list_t ids = {NULL, 0, CAPS_IDENTITIES_MAX}, feats = {NULL, 0, CAPS_FEATURES_MAX};
    form_text_t forms[CAPS_FORMS_MAX];
    size_t nforms = 0;
    for (hearth_xml_node_t *e = hearth_xml_first_element(q); e; e = hearth_xml_next_element(e)) {
        if (!strcmp(e->ns, HEARTH_NS_DISCO_INFO) && !strcmp(e->name, "identity")) {
            const char *cat = hearth_xml_attr(e, "category"), *type = hearth_xml_attr(e, "type");
            const char *lang = hearth_xml_attr_ns(e, HEARTH_NS_XML, "lang");
            const char *name = hearth_xml_attr(e, "name");
            if (!cat || !type)
                return -1;
            hearth_buf_t b = HEARTH_BUF_INIT;
            int rc =
                hearth_buf_printf(&b, "%s/%s/%s/%s", cat, type, lang ? lang : "", name ? name : "");
            char *id = rc ? NULL : hearth_arena_strdup(a, b.data);
            hearth_buf_free(&b);
            if (!id || list_add(a, &ids, id))
                return -1;
        } else if (!strcmp(e->ns, HEARTH_NS_DISCO_INFO) && !strcmp(e->name, "feature")) {
            const char *var = hearth_xml_attr(e, "var");
            if (!var || list_add(a, &feats, var))
                return -1;
        } else if (!strcmp(e->ns, HEARTH_NS_DATA) && !strcmp(e->name, "x")) {
            if (nforms == CAPS_FORMS_MAX)
                return -1;
            int r = form_part(a, e, &forms[nforms]);
            if (r < 0)
                return -1;
            if (r == 0)
                nforms++;
        }
    }
    if (sorted_unique(&ids) || sorted_unique(&feats))
        return -1;
    qsort(forms, nforms, sizeof(*forms), cmp_form);
    for (size_t i = 1; i < nforms; i++)
        if (!strcmp(forms[i - 1].type, forms[i].type))
            return -1;
    int rc = 0;
    for (size_t i = 0; !rc && i < ids.n; i++)
        rc = hearth_buf_printf(s, "%s<", ids.v[i]);
    for (size_t i = 0; !rc && i < feats.n; i++)
        rc = hearth_buf_printf(s, "%s<", feats.v[i]);
    for (size_t i = 0; !rc && i < nforms; i++)
        rc = hearth_buf_append_str(s, forms[i].text);
    size_t bytes = 0, slen = strlen(SUFFIX);
    for (size_t i = 0; !rc && i < feats.n; i++) {
        size_t len = strlen(feats.v[i]);
        if (len <= slen || strcmp(feats.v[i] + len - slen, SUFFIX) ||
            len - slen > PUBSUB_NODE_MAX || bytes + len > CAPS_NOTIFY_BYTES ||
            notify->n == CAPS_NOTIFY_MAX)
            continue;
        bytes += len;
        list_add(a, notify, hearth_arena_strndup(a, feats.v[i], len - slen));
    }
    return rc ? -1 : 0;
}

static int verified(const EVP_MD *md, const hearth_buf_t *s, const char *ver)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dlen = 0;
    char b64[4 * EVP_MAX_MD_SIZE / 3 + 4];
    if (EVP_Digest(s->data ? s->data : "", s->len, d, &dlen, md, NULL) != 1)
        return 0;
    EVP_EncodeBlock((unsigned char *)b64, d, (int)dlen);
    return !strcmp(b64, ver);
}

static void answered(session_t *s, caps_sess_t *cs, hearth_xml_node_t *iq, hearth_arena_t *a)
{
    cs->query[0] = '\0';
    const char *type = hearth_xml_attr(iq, "type");
    hearth_xml_node_t *q = hearth_xml_child(iq, "query", HEARTH_NS_DISCO_INFO);
    if (!type || strcmp(type, "result") || !q) {
        hlog_conn(LOG_DEBUG, s->id, s->jid.full, "no disco#info for its caps");
        return;
    }
    hearth_buf_t str = HEARTH_BUF_INIT;
    str_list_t notify = {NULL, 0, CAPS_NOTIFY_MAX};
    if (answer_string(a, q, &str, &notify)) {
        hlog_conn(LOG_INFO, s->id, s->jid.full, "its disco#info is ill-formed (XEP-0115 §5.4)");
        hearth_buf_free(&str);
        return;
    }
    const char *space = strchr(cs->key, ' ');
    int good = cs->md && space && verified(cs->md, &str, space + 1);
    hearth_buf_free(&str);
    caps_set_t *set = caps__set_new(notify.v ? notify.v : (const char *const[]){NULL}, notify.n);
    if (!set)
        return;
    if (good)
        cache_put(cs->key, set);
    else if (cs->md)
        hlog_conn(LOG_INFO, s->id, s->jid.full,
                  "its caps hash does not match its disco#info: used for it alone");
    caps__unref(cs->set);
    cs->set = set;
    tell(s, cs);
}

static int answer_in(hook_args_t *a)
{
    caps_sess_t *cs = CAPS(a->s);
    const char *id = hearth_xml_attr(a->st, "id");
    if (!cs || !cs->query[0] || !id || strcmp(id, cs->query))
        return HOOK_CONTINUE;
    answered(a->s, cs, a->st, a->arena);
    return HOOK_STOP;
}

static int session_free(hook_args_t *a)
{
    sess_free(a->s);
    return HOOK_CONTINUE;
}

static int caps_init(server_t *srv)
{
    static int once;
    if ((sess_slot = session__slot_new()) < 0)
        return HEARTH_ELIMIT;
    int rc = hooks__add(HOOK_PRESENCE_OUT, 10, presence_before);
    rc = rc ?: hooks__add(HOOK_PRESENCE_OUT, -10, presence_after);
    rc = rc ?: hooks__add(HOOK_IQ_RESULT, 0, answer_in);
    rc = rc ?: hooks__add(HOOK_SESSION_FREE, 0, session_free);
    if (rc || once++)
        return rc;
    cache_max = srv->set.caps_cache_size;
    if (uv_mutex_init(&cache_lock) || strmap_init(&cache_map))
        return HEARTH_ENOMEM;
    atexit(cache_free);
    return 0;
}

const module_t module_caps = {
    .name = "caps",
    .init = caps_init,
};
