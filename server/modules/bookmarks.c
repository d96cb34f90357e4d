/* Bookmarks in all three places clients keep them (XEP-0402 §5.3, urn:xmpp:bookmarks:1#compat and
 * #compat-pep; XEP-0411): XEP-0048 bookmarks in private XML (XEP-0049, storage:bookmarks), the
 * same list in PEP (XEP-0223: node storage:bookmarks, one item 'current'), and XEP-0402 bookmarks
 * in PEP (one item per room in urn:xmpp:bookmarks:1), kept the same, each converted when a client
 * changes another. Touches private XML through storage and PEP through pep_compat.h. */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "modules/pep_compat.h"

#define NS_BOOKMARKS "urn:xmpp:bookmarks:1"
#define NS_STORAGE "storage:bookmarks"
#define NS_CONVERSION "urn:xmpp:bookmarks-conversion:0"
/* A list converted at once: private XML holds at most private.max_size (1 MiB) and PEP at most
 * pep.max_items per node; past this many rooms the rest is left out (and logged). */
#define BOOKMARKS_MAX 10000

/* One bookmark, as both forms have it. */
typedef struct bookmark {
    char *jid;
    char *name;
    int autojoin;
    char *nick;
    char *password;
    char *extensions; /* XEP-0402 <extensions/>, serialised: kept when private XML changes */
} bookmark_t;

typedef struct bookmarks {
    bookmark_t *v;
    size_t n, cap;
} bookmarks_t;

static void bookmarks_clear(bookmarks_t *l)
{
    for (size_t i = 0; i < l->n; i++) {
        bookmark_t *b = &l->v[i];
        free(b->jid);
        free(b->name);
        free(b->nick);
        free(b->password);
        free(b->extensions);
    }
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static bookmark_t *find(const bookmarks_t *l, const char *jid)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].jid, jid))
            return &l->v[i];
    return NULL;
}

static int str_eq(const char *a, const char *b)
{
    return (!a || !*a) ? (!b || !*b) : (b && !strcmp(a, b));
}

static int same(const bookmark_t *a, const bookmark_t *b)
{
    return a->autojoin == b->autojoin && str_eq(a->name, b->name) && str_eq(a->nick, b->nick) &&
           str_eq(a->password, b->password);
}

static char *text_of(hearth_arena_t *a, const hearth_xml_node_t *el, const char *name,
                     const char *ns)
{
    hearth_xml_node_t *c = hearth_xml_child(el, name, ns);
    char *t = c ? hearth_xml_text(a, c) : NULL;
    return t ? strdup(t) : NULL;
}

/* A <conference/> of either form (jid: the item id for XEP-0402, its attribute for XEP-0048)
 * appended to l; a repeated room keeps its first. */
static void add_conference(bookmarks_t *l, hearth_arena_t *a, const hearth_xml_node_t *c,
                           const char *jid)
{
    if (!jid || !*jid || find(l, jid) || l->n == BOOKMARKS_MAX)
        return;
    if (l->n == l->cap) {
        size_t ncap = l->cap * 2 + 8;
        bookmark_t *v = realloc(l->v, ncap * sizeof(*v));
        if (!v)
            return;
        l->v = v;
        l->cap = ncap;
    }
    bookmark_t *b = &l->v[l->n];
    memset(b, 0, sizeof(*b));
    const char *name = hearth_xml_attr(c, "name"), *aj = hearth_xml_attr(c, "autojoin");
    b->jid = strdup(jid);
    b->name = name ? strdup(name) : NULL;
    b->autojoin = aj && (!strcmp(aj, "true") || !strcmp(aj, "1"));
    b->nick = text_of(a, c, "nick", c->ns);
    b->password = text_of(a, c, "password", c->ns);
    hearth_xml_node_t *ext = hearth_xml_child(c, "extensions", NS_BOOKMARKS);
    hearth_buf_t eb = HEARTH_BUF_INIT;
    if (ext && hearth_xml_serialize(ext, NS_BOOKMARKS, &eb) == 0)
        b->extensions = hearth_buf_steal(&eb, NULL);
    hearth_buf_free(&eb);
    if (b->jid) {
        l->n++;
        return;
    }
    free(b->name);
    free(b->nick);
    free(b->password);
    free(b->extensions);
}

/* <pubsub><items><item id><conference xmlns=bookmarks:1/></item>...: the result of an items
 * request. */
static void pubsub_parsed(void *ud, hearth_xml_node_t *r, hearth_arena_t *a)
{
    hearth_xml_node_t *items = hearth_xml_child(r, "items", HEARTH_NS_PUBSUB);
    for (hearth_xml_node_t *it = items ? hearth_xml_first_element(items) : NULL; it;
         it = hearth_xml_next_element(it)) {
        hearth_xml_node_t *c = hearth_xml_child(it, "conference", NS_BOOKMARKS);
        if (c)
            add_conference(ud, a, c, hearth_xml_attr(it, "id"));
    }
}

/* What parsing private XML keeps besides the conferences: the rest (<url/>), serialised. */
typedef struct storage_parse {
    bookmarks_t *l;
    hearth_buf_t *rest; /* NULL: not wanted */
    int ok;
} storage_parse_t;

static void storage_parsed(void *ud, hearth_xml_node_t *s, hearth_arena_t *a)
{
    storage_parse_t *p = ud;
    if (strcmp(s->name, "storage") || strcmp(s->ns, NS_STORAGE))
        return;
    p->ok = 1;
    for (hearth_xml_node_t *c = hearth_xml_first_element(s); c; c = hearth_xml_next_element(c)) {
        if (!strcmp(c->name, "conference") && !strcmp(c->ns, NS_STORAGE))
            add_conference(p->l, a, c, hearth_xml_attr(c, "jid"));
        else if (p->rest && hearth_xml_serialize(c, NS_STORAGE, p->rest))
            p->ok = 0;
    }
}

static int write_conference(hearth_buf_t *b, const bookmark_t *m, int legacy)
{
    int rc = hearth_buf_append_str(b, legacy ? "<conference jid='"
                                             : "<conference xmlns='" NS_BOOKMARKS "'");
    if (legacy) {
        rc = rc ?: hearth_buf_append_escaped(b, m->jid, strlen(m->jid));
        rc = rc ?: hearth_buf_append_str(b, "'");
    }
    if (m->name) {
        rc = rc ?: hearth_buf_append_str(b, " name='");
        rc = rc ?: hearth_buf_append_escaped(b, m->name, strlen(m->name));
        rc = rc ?: hearth_buf_append_str(b, "'");
    }
    rc = rc ?: hearth_buf_append_str(b, m->autojoin ? " autojoin='true'>" : " autojoin='false'>");
    if (m->nick) {
        rc = rc ?: hearth_buf_append_str(b, "<nick>");
        rc = rc ?: hearth_buf_append_escaped(b, m->nick, strlen(m->nick));
        rc = rc ?: hearth_buf_append_str(b, "</nick>");
    }
    if (m->password) {
        rc = rc ?: hearth_buf_append_str(b, "<password>");
        rc = rc ?: hearth_buf_append_escaped(b, m->password, strlen(m->password));
        rc = rc ?: hearth_buf_append_str(b, "</password>");
    }
    if (!legacy && m->extensions)
        rc = rc ?: hearth_buf_append_str(b, m->extensions);
    return rc ?: hearth_buf_append_str(b, "</conference>");
}

static int items_request(hearth_buf_t *b)
{
    return hearth_buf_append_str(b, "<iq type='get' id='bookmarks'><pubsub xmlns='" HEARTH_NS_PUBSUB
                                    "'><items node='" NS_BOOKMARKS "'/></pubsub></iq>");
}

/* The PEP bookmarks from an items result; a node not there yet is none. 0, or -1 (logged). */
static int current_of(const char *bare, const pubsub_err_t *e, const char *inner, bookmarks_t *l)
{
    if (e && e->cond != HEARTH_STANZA_ERR_ITEM_NOT_FOUND) {
        hlog(LOG_ERROR, "bookmarks of %s: PEP could not be read: %s", bare,
             e->text ? e->text : hearth_stanza_error_name(e->cond));
        return -1;
    }
    if (!e && inner)
        router__parse(inner, strlen(inner), pubsub_parsed, l);
    return 0;
}

/* ---- to the XEP-0048 list in PEP ---- */

static void legacy_published(void *ud, const pubsub_err_t *e, const char *inner)
{
    char *bare = ud;
    (void)inner;
    if (e)
        hlog(LOG_WARN, "bookmarks of %s: the storage:bookmarks node could not follow: %s", bare,
             pubsub_err_text(e));
    free(bare);
}

/* The first <storage/> of what private XML holds (a set may store several), on its own. */
static void legacy_parsed(void *ud, hearth_xml_node_t *st, hearth_arena_t *a)
{
    hearth_buf_t *b = ud;
    (void)a;
    if (!b->len && !strcmp(st->name, "storage") && !strcmp(st->ns, NS_STORAGE) &&
        hearth_xml_serialize(st, NULL, b))
        hearth_buf_free(b);
}

/* xml, a list in XEP-0048's form, becomes the item 'current' of u's storage:bookmarks node
 * (XEP-0048 §3 through XEP-0223), notified as a client's publish is. XEP-0223's options go as
 * preconditions: a node someone made readable by others is not written (a list holds passwords).
 * Not from inside PEP's queue. */
static void legacy_publish(worker_t *w, user_t *u, const char *xml)
{
    hearth_buf_t st = HEARTH_BUF_INIT, b = HEARTH_BUF_INIT;
    router__parse(xml, strlen(xml), legacy_parsed, &st);
    char *bare = st.len ? strdup(u->bare) : NULL;
    int rc = bare ? 0 : HEARTH_ENOMEM;
    rc = rc
             ?: hearth_buf_append_str(
                    &b, "<iq type='set' id='bookmarks'><pubsub xmlns='" HEARTH_NS_PUBSUB
                        "'><publish node='" NS_STORAGE "'><item id='current'>");
    rc = rc ?: hearth_buf_append(&b, st.data, st.len);
    rc = rc
             ?: hearth_buf_append_str(
                    &b, "</item></publish><publish-options><x xmlns='jabber:x:data' type='submit'>"
                        "<field var='FORM_TYPE' type='hidden'><value>" HEARTH_NS_PUBSUB
                        "#publish-options</value></field><field var='pubsub#persist_items'><value>"
                        "true</value></field><field var='pubsub#access_model'><value>whitelist"
                        "</value></field></x></publish-options></pubsub></iq>");
    if (!rc)
        pep__submit_internal(w, u, b.data, b.len, legacy_published, bare);
    else
        free(bare);
    hearth_buf_free(&st);
    hearth_buf_free(&b);
}

/* XEP-0048 §3's list as a client publishes it to storage:bookmarks: one <storage/>, each
 * conference naming its room by a bare JID, small enough for private XML. What the conversion
 * could not carry is refused before anything is stored (XEP-0060 §7.1.3.6). */
static int legacy_check(worker_t *w, const user_t *u, const char *node,
                        const hearth_xml_node_t *payload, size_t size, pubsub_err_t *e)
{
    (void)u;
    if (strcmp(node, NS_STORAGE))
        return 0;
    if (strcmp(payload->name, "storage") || strcmp(payload->ns, NS_STORAGE))
        return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "invalid-payload",
                           "this node holds <storage xmlns='storage:bookmarks'/> (XEP-0048)");
    if (size > w->set.private_max_size)
        return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, "payload-too-big",
                           "the list would not fit private XML (private.max_size)");
    size_t n = 0;
    for (hearth_xml_node_t *c = hearth_xml_first_element(payload); c;
         c = hearth_xml_next_element(c)) {
        if (strcmp(c->name, "conference") || strcmp(c->ns, NS_STORAGE))
            continue; /* <url/>, or another namespace's: kept as it is */
        const char *jid = hearth_xml_attr(c, "jid"), *aj = hearth_xml_attr(c, "autojoin");
        hearth_jid_t j = HEARTH_JID_INIT;
        const char *why = NULL;
        int bad = !jid || hearth_jid_parse(jid, strlen(jid), &j, &why) || j.resource;
        hearth_jid_clear(&j);
        if (bad)
            return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "invalid-payload",
                               "a conference names its room's bare JID in 'jid'");
        if (aj && strcmp(aj, "true") && strcmp(aj, "false") && strcmp(aj, "1") && strcmp(aj, "0"))
            return pubsub_fail(e, HEARTH_STANZA_ERR_BAD_REQUEST, "invalid-payload",
                               "autojoin is true or false");
        if (++n > BOOKMARKS_MAX)
            return pubsub_fail(e, HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL,
                               "at most 10000 rooms in a list");
    }
    return 0;
}

/* ---- from private XML (or the XEP-0048 list in PEP) to XEP-0402 ---- */

typedef struct from_private {
    worker_t *w;
    char *bare;
    char *xml;       /* the private XML the client stored, or the list it published in PEP */
    int add_only;    /* the login pass: only rooms PEP lacks */
    int from_legacy; /* xml came from the storage:bookmarks node (which need not follow it) */
    bookmarks_t current;
    size_t pending; /* requests in PEP not yet answered */
} from_private_t;

static void from_private_free(void *arg)
{
    from_private_t *f = arg;
    if (!f)
        return;
    free(f->bare);
    free(f->xml);
    bookmarks_clear(&f->current);
    free(f);
}

static void change_done(void *ud, const pubsub_err_t *e, const char *inner)
{
    from_private_t *f = ud;
    (void)inner;
    if (e)
        hlog(LOG_WARN, "bookmarks of %s: a change could not be made in PEP: %s", f->bare,
             pubsub_err_text(e));
    if (--f->pending == 0)
        from_private_free(f);
}

/* One publish or retraction of f's, queued in u's PEP. */
static void change(worker_t *w, user_t *u, from_private_t *f, const bookmark_t *publish,
                   const char *retract)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    int rc = hearth_buf_append_str(
        &b, "<iq type='set' id='bookmarks'><pubsub xmlns='" HEARTH_NS_PUBSUB "'>");
    const char *id = publish ? publish->jid : retract;
    rc = rc
             ?: hearth_buf_append_str(&b, publish ? "<publish node='" NS_BOOKMARKS "'><item id='"
                                                  : "<retract node='" NS_BOOKMARKS
                                                    "' notify='true'><item id='");
    rc = rc ?: hearth_buf_append_escaped(&b, id, strlen(id));
    if (publish) {
        /* XEP-0402 §3.3's node: private, every room kept, nothing sent at login. */
        rc = rc ?: hearth_buf_append_str(&b, "'>");
        rc = rc ?: write_conference(&b, publish, 0);
        rc =
            rc
                ?: hearth_buf_append_str(
                       &b,
                       "</item></publish><publish-options><x xmlns='jabber:x:data' "
                       "type='submit'><field var='FORM_TYPE' type='hidden'><value>" HEARTH_NS_PUBSUB
                       "#publish-options</value></field><field var='pubsub#persist_items'>"
                       "<value>true</value></field><field var='pubsub#max_items'><value>max"
                       "</value></field><field var='pubsub#send_last_published_item'><value>"
                       "never</value></field><field var='pubsub#access_model'><value>"
                       "whitelist</value></field></x></publish-options></pubsub></iq>");
    } else {
        rc = rc ?: hearth_buf_append_str(&b, "'/></retract></pubsub></iq>");
    }
    if (!rc) {
        f->pending++;
        pep__submit_internal(w, u, b.data, b.len, change_done, f);
    }
    hearth_buf_free(&b);
}

/* XEP-0402 §5.3.2: the list is examined, each room that changed is published and each that
 * went is retracted (with notifications); a room that did not change is left alone. */
static void from_private_apply(worker_t *w, user_t *u, void *arg)
{
    from_private_t *f = arg;
    if (u->state != USER_READY) {
        from_private_free(f);
        return;
    }
    bookmarks_t wanted = {0};
    storage_parse_t p = {&wanted, NULL, 0};
    router__parse(f->xml, strlen(f->xml), storage_parsed, &p);
    if (!p.ok) {
        bookmarks_clear(&wanted);
        from_private_free(f);
        return;
    }
    f->pending = 1; /* this function's own, so that f outlives the loop */
    for (size_t i = 0; i < wanted.n; i++) {
        bookmark_t *now = &wanted.v[i], *was = find(&f->current, now->jid);
        if (was && (f->add_only || same(was, now)))
            continue;
        if (was && was->extensions && !now->extensions) {
            now->extensions = was->extensions; /* XEP-0048 has none: what the client kept stays */
            was->extensions = NULL;
        }
        change(w, u, f, now, NULL);
    }
    for (size_t i = 0; !f->add_only && i < f->current.n; i++)
        if (!find(&wanted, f->current.v[i].jid))
            change(w, u, f, NULL, f->current.v[i].jid);
    bookmarks_clear(&wanted);
    if (--f->pending == 0)
        from_private_free(f);
}

static void from_private_next(worker_t *w, void *arg)
{
    from_private_t *f = arg;
    user__acquire(w, f->bare, from_private_apply, f);
}

static void from_private_read(void *ud, const pubsub_err_t *e, const char *inner)
{
    from_private_t *f = ud;
    if (current_of(f->bare, e, inner, &f->current)) {
        from_private_free(f);
        return;
    }
    pep__later(f->w, from_private_next, from_private_free, f); /* not inside PEP's queue */
}

static void from_private_start(worker_t *w, user_t *u, void *arg)
{
    from_private_t *f = arg;
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (u->state != USER_READY || items_request(&b)) {
        hearth_buf_free(&b);
        from_private_free(f);
        return;
    }
    pep__submit_internal(w, u, b.data, b.len, from_private_read, f);
    hearth_buf_free(&b);
    /* XEP-0411 §3: the storage:bookmarks node follows private XML; at the login pass only when
     * it holds nothing yet (what a legacy client published there is not overwritten). */
    if (!f->from_legacy && (!f->add_only || pep__has_items(u, NS_STORAGE) == 0))
        legacy_publish(w, u, f->xml);
}

static void from_legacy_start(worker_t *w, void *arg)
{
    from_private_t *f = arg;
    user__acquire(w, f->bare, from_private_start, f);
}

/* A client stored private XML: its bookmarks go to PEP (both nodes). */
static void private_stored(worker_t *w, const char *bare, const char *ns, const char *xml)
{
    if (strcmp(ns, NS_STORAGE))
        return;
    from_private_t *f = calloc(1, sizeof(*f));
    if (!f || !(f->bare = strdup(bare)) || !(f->xml = strdup(xml))) {
        from_private_free(f);
        return;
    }
    f->w = w;
    user__acquire(w, bare, from_private_start, f);
}

/* ---- from PEP to private XML ---- */

typedef struct to_private to_private_t;

/* Per account, in its user slot: the PEP changes waiting to reach private XML, one at a time
 * (each reads private XML and writes it back: two at once would undo each other), the account
 * held while any waits; and whether this load's pass over older private XML ran. */
typedef struct bookmarks_user {
    to_private_t *head, *tail;
    int held;
    int migrated;
} bookmarks_user_t;

static int slot = -1;

static bookmarks_user_t *state_of(user_t *u)
{
    bookmarks_user_t *bu = u->slot[slot];
    if (!bu && (bu = calloc(1, sizeof(*bu))))
        u->slot[slot] = bu;
    return bu;
}

/* One change of a client's in PEP, on its way to private XML. */
struct to_private {
    to_private_t *next;
    worker_t *w;
    char *bare;
    char *node; /* the account's storage key */
    pep_change_t what;
    char *id; /* PEP_RETRACTED: the room that went */
    bookmarks_t current;
    char *legacy; /* a list a client published to storage:bookmarks: private XML becomes it */
    char *xml;    /* what was written to private XML, for the storage:bookmarks node next */
};

static void to_private_free(to_private_t *t)
{
    if (!t)
        return;
    free(t->bare);
    free(t->node);
    free(t->id);
    bookmarks_clear(&t->current);
    free(t->legacy);
    free(t->xml);
    free(t);
}

static void to_private_run(worker_t *w, void *arg);

/* The queue cannot go on (the worker's run queue is full): what waits is given up. */
static void to_private_abandon(void *arg)
{
    to_private_t *t = arg;
    worker_t *w = t->w;
    user_t *u = worker__user(w, t->bare, 0);
    bookmarks_user_t *bu = u ? u->slot[slot] : NULL;
    hlog(LOG_ERROR, "bookmarks of %s: changes in PEP not copied to private XML (worker busy)",
         t->bare);
    if (!bu) {
        to_private_free(t);
        return;
    }
    while (bu->head) {
        to_private_t *n = bu->head;
        bu->head = n->next;
        to_private_free(n);
    }
    bu->tail = NULL;
    if (bu->held) {
        bu->held = 0;
        user__release(w, u); /* may free u */
    }
}

/* t is done: the next change goes, at a later turn (t may end inside PEP's queue), or the
 * account is let go. */
static void to_private_end(to_private_t *t)
{
    worker_t *w = t->w;
    user_t *u = worker__user(w, t->bare, 0);
    bookmarks_user_t *bu = u ? u->slot[slot] : NULL;
    if (bu && bu->head == t) {
        bu->head = t->next;
        if (!bu->head)
            bu->tail = NULL;
    }
    to_private_free(t);
    if (!bu)
        return;
    if (bu->head) {
        pep__later(w, to_private_run, to_private_abandon, bu->head);
    } else if (bu->held) {
        bu->held = 0;
        user__release(w, u); /* may free u */
    }
}

static void to_private_written(void *ud, int err)
{
    to_private_t *t = ud;
    user_t *u = err || !t->xml ? NULL : worker__user(t->w, t->bare, 0);
    if (err)
        hlog(LOG_ERROR, "bookmarks of %s: private XML could not be written: %s", t->bare,
             hearth_strerror(err));
    else if (u && u->state == USER_READY) /* held while t runs; a storage callback, not PEP's */
        legacy_publish(t->w, u, t->xml);
    to_private_end(t);
}

/* Whether a room only in private XML stays there: yes, unless this change removed it. A room
 * PEP never had (stored before the conversion ran, or while it was off) is not lost. */
static int stays(const to_private_t *t, const bookmark_t *b)
{
    if (find(&t->current, b->jid))
        return 0; /* written from PEP */
    return t->what == PEP_PUBLISHED || (t->what == PEP_RETRACTED && strcmp(b->jid, t->id));
}

/* XEP-0402 §5.3.1: every item, as one <storage/> with each room's JID in its 'jid'; what else
 * the stored one holds (<url/>, rooms PEP never had) stays. */
static void to_private_read(void *ud, int err, const char *xml)
{
    to_private_t *t = ud;
    /* ENOTFOUND: nothing stored yet (or the account went, which the write below tells). */
    if (err && err != HEARTH_ENOTFOUND) {
        to_private_written(t, err);
        return;
    }
    bookmarks_t old = {0};
    hearth_buf_t rest = HEARTH_BUF_INIT, b = HEARTH_BUF_INIT;
    storage_parse_t p = {&old, &rest, 1};
    if (xml)
        router__parse(xml, strlen(xml), storage_parsed, &p);
    int rc = hearth_buf_append_str(&b, "<storage xmlns='" NS_STORAGE "'>");
    for (size_t i = 0; i < t->current.n; i++)
        rc = rc ?: write_conference(&b, &t->current.v[i], 1);
    for (size_t i = 0; i < old.n; i++)
        if (stays(t, &old.v[i]))
            rc = rc ?: write_conference(&b, &old.v[i], 1);
    if (p.ok && rest.len)
        rc = rc ?: hearth_buf_append(&b, rest.data, rest.len);
    rc = rc ?: hearth_buf_append_str(&b, "</storage>");
    bookmarks_clear(&old);
    hearth_buf_free(&rest);
    if (rc || b.len > t->w->set.private_max_size) {
        hlog(LOG_WARN, "bookmarks of %s: %s", t->bare,
             rc ? "no memory for private XML"
                : "the bookmarks would pass private.max_size in private XML; it keeps its own");
        hearth_buf_free(&b);
        to_private_end(t);
        return;
    }
    worker_t *w = t->w;
    t->xml = hearth_buf_steal(&b, NULL);
    if (!t->xml || storage_private_set(w->srv->storage, &w->storage_target, t->node, NS_STORAGE,
                                       t->xml, w->set.private_max_total, to_private_written, t))
        to_private_written(t, HEARTH_EAGAIN);
}

static void to_private_items(void *ud, const pubsub_err_t *e, const char *inner)
{
    to_private_t *t = ud;
    if (current_of(t->bare, e, inner, &t->current)) {
        to_private_end(t);
        return;
    }
    worker_t *w = t->w;
    if (storage_private_get(w->srv->storage, &w->storage_target, t->node, NS_STORAGE,
                            to_private_read, t))
        to_private_read(t, HEARTH_EAGAIN, NULL);
}

static void to_private_start(worker_t *w, user_t *u, void *arg)
{
    to_private_t *t = arg;
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (u->state == USER_READY && t->legacy && (t->node = strdup(u->node))) {
        /* the legacy list is whole: private XML becomes it (its size was checked) */
        if (storage_private_set(w->srv->storage, &w->storage_target, t->node, NS_STORAGE, t->legacy,
                                w->set.private_max_total, to_private_written, t))
            to_private_written(t, HEARTH_EAGAIN);
        return;
    }
    if (u->state != USER_READY || t->legacy || !(t->node = strdup(u->node)) || items_request(&b)) {
        hearth_buf_free(&b);
        to_private_end(t);
        return;
    }
    pep__submit_internal(w, u, b.data, b.len, to_private_items, t);
    hearth_buf_free(&b);
}

static void to_private_run(worker_t *w, void *arg)
{
    to_private_t *t = arg;
    user__acquire(w, t->bare, to_private_start, t); /* held: runs now */
}

/* t queued for u's private XML, after the changes before it. */
static void to_private_queue(worker_t *w, user_t *u, bookmarks_user_t *bu, to_private_t *t)
{
    t->w = w;
    if (bu->tail) {
        bu->tail->next = t;
        bu->tail = t;
        return;
    }
    bu->head = bu->tail = t;
    if (!bu->held) {
        bu->held = 1;
        user__hold(u);
    }
    pep__later(w, to_private_run, to_private_abandon, t);
}

/* A client published a list to storage:bookmarks (checked by legacy_check): private XML becomes
 * it, and the XEP-0402 items follow it as they follow a list stored in private XML. A retraction
 * there, a purge or a delete is left alone: a list gone says nothing of which rooms went. */
static void legacy_changed(worker_t *w, user_t *u, const char *payload)
{
    bookmarks_user_t *bu = state_of(u);
    to_private_t *t = bu ? calloc(1, sizeof(*t)) : NULL;
    if (!t || !(t->bare = strdup(u->bare)) || !(t->legacy = strdup(payload))) {
        to_private_free(t);
        return;
    }
    t->what = PEP_PUBLISHED;
    to_private_queue(w, u, bu, t);
    from_private_t *f = calloc(1, sizeof(*f));
    if (!f || !(f->bare = strdup(u->bare)) || !(f->xml = strdup(payload))) {
        from_private_free(f);
        return;
    }
    f->w = w;
    f->from_legacy = 1;
    pep__later(w, from_legacy_start, from_private_free, f); /* not inside PEP's queue */
}

/* A client changed its PEP bookmarks: private XML follows, after the changes before it (each
 * reads every item after its own change in PEP's queue), and storage:bookmarks follows that. */
static void pep_changed(worker_t *w, user_t *u, const char *node, pep_change_t what, const char *id,
                        const char *payload)
{
    if (!strcmp(node, NS_STORAGE) && what == PEP_PUBLISHED) {
        legacy_changed(w, u, payload);
        return;
    }
    if (strcmp(node, NS_BOOKMARKS))
        return;
    bookmarks_user_t *bu = state_of(u);
    to_private_t *t = bu ? calloc(1, sizeof(*t)) : NULL;
    if (!t || !(t->bare = strdup(u->bare)) || (id && !(t->id = strdup(id)))) {
        to_private_free(t);
        return;
    }
    t->what = what;
    to_private_queue(w, u, bu, t);
}

/* ---- at login: rooms kept only in private XML (or only in storage:bookmarks) go to XEP-0402 ----
 */

typedef struct migrate {
    worker_t *w;
    char *bare;
} migrate_t;

/* The newest item's <storage/> of a storage:bookmarks items result, serialised into f->xml. */
static void legacy_items_parsed(void *ud, hearth_xml_node_t *r, hearth_arena_t *a)
{
    from_private_t *f = ud;
    hearth_xml_node_t *items = hearth_xml_child(r, "items", HEARTH_NS_PUBSUB), *st = NULL;
    (void)a;
    for (hearth_xml_node_t *it = items ? hearth_xml_first_element(items) : NULL; it;
         it = hearth_xml_next_element(it))
        st = hearth_xml_child(it, "storage", NS_STORAGE); /* items come oldest first */
    hearth_buf_t b = HEARTH_BUF_INIT;
    if (st && hearth_xml_serialize(st, NULL, &b) == 0)
        f->xml = hearth_buf_steal(&b, NULL);
    hearth_buf_free(&b);
}

static void legacy_items_read(void *ud, const pubsub_err_t *e, const char *inner)
{
    from_private_t *f = ud;
    if (!e && inner)
        router__parse(inner, strlen(inner), legacy_items_parsed, f);
    if (!f->xml) {
        from_private_free(f);
        return;
    }
    pep__later(f->w, from_legacy_start, from_private_free, f); /* not inside PEP's queue */
}

static void legacy_items_start(worker_t *w, user_t *u, void *arg)
{
    static const char iq[] = "<iq type='get' id='bookmarks'><pubsub xmlns='" HEARTH_NS_PUBSUB
                             "'><items node='" NS_STORAGE "'/></pubsub></iq>";
    from_private_t *f = arg;
    if (u->state != USER_READY || pep__has_items(u, NS_STORAGE) != 1) {
        from_private_free(f);
        return;
    }
    pep__submit_internal(w, u, iq, sizeof(iq) - 1, legacy_items_read, f);
}

static void migrate_read(void *ud, int err, const char *xml)
{
    migrate_t *m = ud;
    bookmarks_t l = {0};
    storage_parse_t p = {&l, NULL, 0};
    if (!err && xml)
        router__parse(xml, strlen(xml), storage_parsed, &p);
    int from_private = p.ok && l.n;
    from_private_t *f = calloc(1, sizeof(*f));
    if (f && (!(f->bare = strdup(m->bare)) || (from_private && !(f->xml = strdup(xml))))) {
        from_private_free(f);
        f = NULL;
    }
    if (f) {
        f->w = m->w;
        f->add_only = 1;
        /* Nothing in private XML: the list a legacy client kept in PEP, if any, instead. */
        f->from_legacy = !from_private;
        user__acquire(m->w, m->bare, from_private ? from_private_start : legacy_items_start, f);
    }
    bookmarks_clear(&l);
    free(m->bare);
    free(m);
}

/* As XEP-0411 advises: what was kept in private XML before (or while the conversion was off)
 * is in PEP by the time a client looks there, that is once the account's PEP is loaded (not at
 * every login: reading private XML at each would make every login dearer). Once per account
 * load, when the XEP-0402 node has no item yet; only rooms PEP lacks are added. With no room in
 * private XML, the storage:bookmarks list is taken instead (private XML gets its rooms at the
 * next change, which keeps what else it holds). */
static void migrate_later(worker_t *w, void *arg)
{
    migrate_t *m = arg;
    user_t *u = worker__user(w, m->bare, 0);
    if (!u || u->state != USER_READY ||
        storage_private_get(w->srv->storage, &w->storage_target, u->node, NS_STORAGE, migrate_read,
                            m)) {
        free(m->bare);
        free(m);
    }
}

static void migrate_drop(void *arg)
{
    migrate_t *m = arg;
    free(m->bare);
    free(m);
}

static void pep_loaded(worker_t *w, user_t *u)
{
    bookmarks_user_t *bu = state_of(u);
    if (!bu || bu->migrated || pep__has_items(u, NS_BOOKMARKS) != 0)
        return;
    bu->migrated = 1;
    migrate_t *m = calloc(1, sizeof(*m));
    if (!m || !(m->bare = strdup(u->bare))) {
        free(m);
        return;
    }
    m->w = w;
    pep__later(w, migrate_later, migrate_drop, m); /* not from inside PEP's loading */
}

static int user_unloaded(hook_args_t *a)
{
    bookmarks_user_t *bu = a->u->slot[slot];
    if (!bu)
        return HOOK_CONTINUE;
    while (bu->head) { /* nothing waits (what waits holds the user), but be thorough */
        to_private_t *t = bu->head;
        bu->head = t->next;
        to_private_free(t);
    }
    free(bu);
    a->u->slot[slot] = NULL;
    return HOOK_CONTINUE;
}

/* ---- the module ---- */

static int bookmarks_init(server_t *srv)
{
    (void)srv;
    if ((slot = user__slot_new()) < 0)
        return HEARTH_ELIMIT;
    private__listen(private_stored);
    pep__listen(pep_changed);
    pep__listen_check(legacy_check);
    pep__listen_loaded(pep_loaded);
    return hooks__add(HOOK_USER_UNLOADED, 0, user_unloaded);
}

/* XEP-0402 §5.3 and XEP-0411 §2: on the account, exactly while the conversion runs. */
static const char *const bookmarks_account_features[] = {
    NS_BOOKMARKS "#compat", NS_BOOKMARKS "#compat-pep", NS_CONVERSION, NULL};

const module_t module_bookmarks = {
    .name = "bookmarks",
    .switch_key = "pep.bookmarks_compat",
    .account_features = bookmarks_account_features,
    .init = bookmarks_init,
};
