/* Unit tests for server/modules/pubsub.c, the publish-subscribe engine (XEP-0060) under PEP:
 * node configurations from forms (create/configure and publish-options), preconditions, the
 * stored form and its reading under changed bounds, items in memory with the bytes a push would
 * drop, the access models with their errors, and the order of an error's children. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/router.h"
#include "modules/pubsub.h"

#define CONFIG_TYPE "http://jabber.org/protocol/pubsub#node_config"
#define OPTIONS_TYPE "http://jabber.org/protocol/pubsub#publish-options"

/* ---- helpers ---------------------------------------------------------------------------- */

typedef struct kept {
    hearth_arena_t *a;
    hearth_xml_node_t *node;
} kept_t;

static void keep(void *ud, hearth_xml_node_t *st, hearth_arena_t *arena)
{
    kept_t *k = ud;
    (void)arena;
    k->node = hearth_xml_copy(k->a, st);
}

/* xml (one element) as a tree in a. */
static hearth_xml_node_t *tree(hearth_arena_t *a, const char *xml)
{
    kept_t k = {a, NULL};
    router__parse(xml, strlen(xml), keep, &k);
    assert_non_null(k.node);
    return k.node;
}

/* A submitted form of FORM_TYPE type with fields "var=value" (NULL-terminated), in a. */
static hearth_xml_node_t *form(hearth_arena_t *a, const char *xtype, const char *type, ...)
{
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_buf_printf(&b,
                                       "<x xmlns='jabber:x:data' type='%s'><field var='FORM_TYPE' "
                                       "type='hidden'><value>%s</value></field>",
                                       xtype, type),
                     0);
    va_list ap;
    va_start(ap, type);
    for (const char *f; (f = va_arg(ap, const char *));) {
        const char *eq = strchr(f, '=');
        assert_non_null(eq);
        assert_int_equal(hearth_buf_printf(&b, "<field var='%.*s'><value>%s</value></field>",
                                           (int)(eq - f), f, eq + 1),
                         0);
    }
    va_end(ap);
    assert_int_equal(hearth_buf_append_str(&b, "</x>"), 0);
    hearth_xml_node_t *x = tree(a, b.data);
    hearth_buf_free(&b);
    return x;
}

static const pubsub_service_t SVC = {
    .max_items = 100,
    .defaults = {.access = PUBSUB_ACCESS_PRESENCE,
                 .max_items = 1,
                 .persist_items = 1,
                 .deliver_payloads = 1,
                 .deliver_notifications = 1,
                 .send_last = PUBSUB_LAST_ON_SUB_AND_PRESENCE},
};

static void defaults(pubsub_config_t *c)
{
    assert_int_equal(pubsub_config_copy(c, &SVC.defaults), 0);
}

/* ---- configurations ----------------------------------------------------------------------- */

static void test_publish_options_configure_a_new_node(void **state)
{
    (void)state;
    hearth_arena_t *a = hearth_arena_new(0);
    pubsub_config_t c;
    pubsub_err_t e;
    defaults(&c);
    hearth_xml_node_t *x =
        form(a, "submit", OPTIONS_TYPE, "pubsub#access_model=whitelist", "pubsub#max_items=max",
             "pubsub#persist_items=true", "pubsub#send_last_published_item=never", NULL);
    assert_int_equal(pubsub_config_apply(&c, &SVC, a, x, PUBSUB_FORM_PUBLISH_OPTIONS, &e), 0);
    assert_int_equal(c.access, PUBSUB_ACCESS_WHITELIST);
    assert_true(c.max_is_max);
    assert_int_equal(pubsub_config_max_items(&c, &SVC), 100);
    assert_int_equal(c.send_last, PUBSUB_LAST_NEVER);

    /* The same options again are met; 'max' and the service's number are the same. */
    assert_int_equal(pubsub_config_check(&c, &SVC, a, x, &e), 0);
    x = form(a, "submit", OPTIONS_TYPE, "pubsub#max_items=100", NULL);
    assert_int_equal(pubsub_config_check(&c, &SVC, a, x, &e), 0);
    /* Another value, or a value the service does not take: not met. */
    x = form(a, "submit", OPTIONS_TYPE, "pubsub#access_model=open", NULL);
    assert_int_equal(pubsub_config_check(&c, &SVC, a, x, &e), -1);
    assert_int_equal(e.cond, HEARTH_STANZA_ERR_CONFLICT);
    assert_string_equal(e.app, "precondition-not-met");
    x = form(a, "submit", OPTIONS_TYPE, "pubsub#access_model=authorize", NULL);
    assert_int_equal(pubsub_config_check(&c, &SVC, a, x, &e), -1);
    assert_string_equal(e.app, "precondition-not-met");
    pubsub_config_clear(&c);
    hearth_arena_free(a);
}

static void test_unknown_fields(void **state)
{
    (void)state;
    hearth_arena_t *a = hearth_arena_new(0);
    pubsub_config_t c;
    pubsub_err_t e;
    defaults(&c);
    /* In publish-options a field the service does not know is a precondition it cannot meet
     * (XEP-0060 7.1.5); in a configuration it is ignored (another service's form sent back). */
    hearth_xml_node_t *x = form(a, "submit", OPTIONS_TYPE, "pubsub#frobnicate=1", NULL);
    assert_int_equal(pubsub_config_apply(&c, &SVC, a, x, PUBSUB_FORM_PUBLISH_OPTIONS, &e), -1);
    assert_int_equal(e.cond, HEARTH_STANZA_ERR_CONFLICT);
    assert_string_equal(e.app, "precondition-not-met");
    assert_int_equal(pubsub_config_check(&c, &SVC, a, x, &e), -1);
    x = form(a, "submit", CONFIG_TYPE, "pubsub#frobnicate=1", "pubsub#title=Mine", NULL);
    assert_int_equal(pubsub_config_apply(&c, &SVC, a, x, PUBSUB_FORM_CONFIG, &e), 0);
    assert_string_equal(c.title, "Mine");
    pubsub_config_clear(&c);
    hearth_arena_free(a);
}

static void test_bad_forms_and_values(void **state)
{
    (void)state;
    hearth_arena_t *a = hearth_arena_new(0);
    pubsub_config_t c;
    pubsub_err_t e;
    defaults(&c);
    static const struct {
        const char *xtype, *type, *field;
        hearth_stanza_error_t cond;
        const char *app;
    } cases[] = {
        {"form", CONFIG_TYPE, "pubsub#title=x", HEARTH_STANZA_ERR_BAD_REQUEST, NULL},
        {"submit", OPTIONS_TYPE, "pubsub#title=x", HEARTH_STANZA_ERR_BAD_REQUEST, NULL},
        {"submit", CONFIG_TYPE, "pubsub#access_model=everyone", HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
         "unsupported-access-model"},
        {"submit", CONFIG_TYPE, "pubsub#max_items=101", HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL},
        {"submit", CONFIG_TYPE, "pubsub#max_items=0", HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL},
        {"submit", CONFIG_TYPE, "pubsub#max_items=-3", HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL},
        {"submit", CONFIG_TYPE, "pubsub#max_items=7x", HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL},
        {"submit", CONFIG_TYPE, "pubsub#persist_items=maybe", HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
         NULL},
        {"submit", CONFIG_TYPE, "pubsub#publish_model=open", HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
         NULL},
        {"submit", CONFIG_TYPE, "pubsub#notification_type=normal", HEARTH_STANZA_ERR_NOT_ACCEPTABLE,
         NULL},
        {"submit", CONFIG_TYPE, "pubsub#send_last_published_item=always",
         HEARTH_STANZA_ERR_NOT_ACCEPTABLE, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hearth_xml_node_t *x = form(a, cases[i].xtype, cases[i].type, cases[i].field, NULL);
        pubsub_config_t copy;
        assert_int_equal(pubsub_config_copy(&copy, &c), 0);
        assert_int_equal(pubsub_config_apply(&copy, &SVC, a, x, PUBSUB_FORM_CONFIG, &e), -1);
        if (e.cond != cases[i].cond)
            print_error("case %zu (%s): condition %s\n", i, cases[i].field,
                        hearth_stanza_error_name(e.cond));
        assert_int_equal(e.cond, cases[i].cond);
        if (cases[i].app)
            assert_string_equal(e.app, cases[i].app);
        else
            assert_null(e.app);
        pubsub_config_clear(&copy);
    }
    /* A title past PUBSUB_TEXT_MAX is not acceptable (not a shortage of memory). */
    char title[PUBSUB_TEXT_MAX + 32];
    snprintf(title, sizeof(title), "pubsub#title=%0*d", PUBSUB_TEXT_MAX + 1, 0);
    hearth_xml_node_t *long_title = form(a, "submit", CONFIG_TYPE, title, NULL);
    assert_int_equal(pubsub_config_apply(&c, &SVC, a, long_title, PUBSUB_FORM_CONFIG, &e), -1);
    assert_int_equal(e.cond, HEARTH_STANZA_ERR_NOT_ACCEPTABLE);
    /* Without FORM_TYPE: taken as the kind expected (slixmpp's XEP-0223 configure sends so). */
    hearth_xml_node_t *bare = tree(a, "<x xmlns='jabber:x:data' type='submit'><field "
                                      "var='pubsub#access_model'><value>whitelist</value>"
                                      "</field></x>");
    assert_int_equal(pubsub_config_apply(&c, &SVC, a, bare, PUBSUB_FORM_CONFIG, &e), 0);
    assert_int_equal(c.access, PUBSUB_ACCESS_WHITELIST);
    assert_int_equal(pubsub_config_check(&c, &SVC, a, bare, &e), 0);
    /* Not a data form at all. */
    hearth_xml_node_t *x = tree(a, "<x xmlns='urn:not-a-form'/>");
    assert_int_equal(pubsub_config_apply(&c, &SVC, a, x, PUBSUB_FORM_CONFIG, &e), -1);
    assert_int_equal(e.cond, HEARTH_STANZA_ERR_BAD_REQUEST);
    pubsub_config_clear(&c);
    hearth_arena_free(a);
}

static void test_stored_and_loaded(void **state)
{
    (void)state;
    hearth_arena_t *a = hearth_arena_new(0);
    pubsub_config_t c, back;
    pubsub_err_t e;
    defaults(&c);
    hearth_xml_node_t *x =
        tree(a, "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" CONFIG_TYPE
                "</value></field><field var='pubsub#access_model'><value>roster</value></field>"
                "<field var='pubsub#roster_groups_allowed'><value>Friends &amp; Family</value>"
                "<value>Work</value></field><field var='pubsub#title'><value>&lt;What I hear&gt;"
                "</value></field><field var='pubsub#max_items'><value>50</value></field>"
                "<field var='pubsub#deliver_payloads'><value>0</value></field></x>");
    assert_int_equal(pubsub_config_apply(&c, &SVC, a, x, PUBSUB_FORM_CONFIG, &e), 0);
    char *stored = pubsub_config_store(&c);
    assert_non_null(stored);
    assert_int_equal(pubsub_config_load(&back, &SVC, stored), 0);
    assert_int_equal(back.access, PUBSUB_ACCESS_ROSTER);
    assert_int_equal(back.ngroups, 2);
    assert_string_equal(back.groups[0], "Friends & Family");
    assert_string_equal(back.groups[1], "Work");
    assert_string_equal(back.title, "<What I hear>");
    assert_int_equal(back.max_items, 50);
    assert_false(back.deliver_payloads);
    pubsub_config_clear(&back);

    /* Read under a lower most of items: taken as it is now, not refused. */
    pubsub_service_t lower = SVC;
    lower.max_items = 10;
    assert_int_equal(pubsub_config_load(&back, &lower, stored), 0);
    assert_int_equal(pubsub_config_max_items(&back, &lower), 10);
    pubsub_config_clear(&back);
    assert_int_not_equal(pubsub_config_load(&back, &SVC, "<not-a-form/>"), 0);
    free(stored);
    pubsub_config_clear(&c);
    hearth_arena_free(a);
}

/* ---- nodes --------------------------------------------------------------------------------- */

static void test_items_in_memory(void **state)
{
    (void)state;
    pubsub_config_t c;
    defaults(&c);
    pubsub_node_t *n = pubsub_node_new("urn:example", &c);
    assert_non_null(n);
    assert_int_equal(pubsub_node_push(n, "a", 10, 1, "<a/>"), 0);
    assert_int_equal(pubsub_node_push(n, "b", 20, 2, "<b/>"), 0);
    assert_int_equal(pubsub_node_push(n, "c", 30, 3, NULL), 0);
    assert_int_equal(n->bytes, 60);
    assert_null(n->last_payload); /* the newest was not at hand */
    /* Republishing an id moves it to the newest and replaces its size. */
    assert_int_equal(pubsub_node_push(n, "a", 5, 4, "<a2/>"), 0);
    assert_int_equal(n->nitems, 3);
    assert_string_equal(n->items[0].id, "b");
    assert_string_equal(n->items[2].id, "a");
    assert_int_equal(n->bytes, 55);
    assert_string_equal(n->last_payload, "<a2/>");
    /* What a push would drop under a bound of 2: the oldest (b), not the one it replaces. */
    assert_int_equal(pubsub_node_dropped_bytes(n, "d", 2), 20 + 30);
    assert_int_equal(pubsub_node_dropped_bytes(n, "c", 2), 20);
    assert_int_equal(pubsub_node_dropped_bytes(n, "c", 3), 0);
    pubsub_node_trim(n, 1);
    assert_int_equal(n->nitems, 1);
    assert_int_equal(n->bytes, 5);
    assert_string_equal(n->last_payload, "<a2/>");
    pubsub_node_remove(n, 0);
    assert_int_equal(n->nitems, 0);
    assert_null(n->last_payload);
    assert_int_equal(pubsub_node_find(n, "a"), -1);
    pubsub_node_free(n);
}

static void test_access_models(void **state)
{
    (void)state;
    pubsub_config_t c;
    defaults(&c);
    pubsub_node_t *n = pubsub_node_new("n", &c);
    assert_non_null(n);
    n->config.groups = calloc(1, sizeof(char *));
    n->config.groups[0] = strdup("Friends");
    n->config.ngroups = 1;
    char *friends[] = {"Friends"}, *work[] = {"Work"};
    pubsub_who_t owner = {.owner = 1, .aff = PUBSUB_AFF_OWNER};
    pubsub_who_t stranger = {0};
    pubsub_who_t friend = {.presence_sub = 1, .groups = friends, .ngroups = 1};
    pubsub_who_t colleague = {.presence_sub = 1, .groups = work, .ngroups = 1};
    pubsub_who_t member = {.aff = PUBSUB_AFF_MEMBER};
    pubsub_who_t outcast = {.presence_sub = 1, .aff = PUBSUB_AFF_OUTCAST};
    pubsub_err_t e;

    n->config.access = PUBSUB_ACCESS_OPEN;
    assert_int_equal(pubsub_access(n, &stranger, &e), 0);
    assert_int_equal(pubsub_access(n, &outcast, &e), -1);
    assert_int_equal(e.cond, HEARTH_STANZA_ERR_FORBIDDEN);

    n->config.access = PUBSUB_ACCESS_PRESENCE;
    assert_int_equal(pubsub_access(n, &colleague, &e), 0);
    assert_int_equal(pubsub_access(n, &stranger, &e), -1);
    assert_int_equal(e.cond, HEARTH_STANZA_ERR_NOT_AUTHORIZED);
    assert_string_equal(e.app, "presence-subscription-required");

    n->config.access = PUBSUB_ACCESS_ROSTER;
    assert_int_equal(pubsub_access(n, &friend, &e), 0);
    assert_int_equal(pubsub_access(n, &colleague, &e), -1);
    assert_string_equal(e.app, "not-in-roster-group");

    n->config.access = PUBSUB_ACCESS_WHITELIST;
    assert_int_equal(pubsub_access(n, &member, &e), 0);
    assert_int_equal(pubsub_access(n, &owner, &e), 0);
    assert_int_equal(pubsub_access(n, &friend, &e), -1);
    assert_int_equal(e.cond, HEARTH_STANZA_ERR_NOT_ALLOWED);
    assert_string_equal(e.app, "closed-node");
    pubsub_node_free(n);
}

/* A pubsub service's models: the authorize access model, publish models and the publisher
 * affiliations, offered only where the service says so (PEP keeps its four and one). */
static void test_service_models(void **state)
{
    (void)state;
    hearth_arena_t *a = hearth_arena_new(0);
    pubsub_service_t svc = SVC;
    svc.access_models = 0x1fu;
    svc.publish_models = 0x7u;
    pubsub_config_t c;
    pubsub_err_t e;
    defaults(&c);
    hearth_xml_node_t *x = form(a, "submit", CONFIG_TYPE, "pubsub#access_model=authorize",
                                "pubsub#publish_model=subscribers", NULL);
    assert_int_equal(pubsub_config_apply(&c, &SVC, a, x, PUBSUB_FORM_CONFIG, &e), -1);
    assert_string_equal(e.app, "unsupported-access-model");
    assert_int_equal(pubsub_config_apply(&c, &svc, a, x, PUBSUB_FORM_CONFIG, &e), 0);
    assert_int_equal(c.access, PUBSUB_ACCESS_AUTHORIZE);
    assert_int_equal(c.publish_model, PUBSUB_PUBLISH_SUBSCRIBERS);
    x = form(a, "submit", CONFIG_TYPE, "pubsub#publish_model=open", NULL);
    assert_int_equal(pubsub_config_apply(&c, &SVC, a, x, PUBSUB_FORM_CONFIG, &e), -1);
    assert_int_equal(e.cond, HEARTH_STANZA_ERR_NOT_ACCEPTABLE);

    /* Stored and read back; the owner's form offers the service's models. */
    char *stored = pubsub_config_store(&c);
    assert_non_null(stored);
    pubsub_config_t back;
    assert_int_equal(pubsub_config_load(&back, &svc, stored), 0);
    assert_int_equal(back.access, PUBSUB_ACCESS_AUTHORIZE);
    assert_int_equal(back.publish_model, PUBSUB_PUBLISH_SUBSCRIBERS);
    free(stored);
    hearth_buf_t b = HEARTH_BUF_INIT;
    assert_int_equal(hearth_xml_serialize(
                         pubsub_config_form_of(a, NULL, &back, &svc, HEARTH_FORM_FORM), NULL, &b),
                     0);
    assert_non_null(strstr(b.data, "<option><value>authorize</value></option>"));
    assert_non_null(strstr(b.data, "<option><value>open</value></option>"));
    hearth_buf_free(&b);
    assert_int_equal(
        hearth_xml_serialize(pubsub_config_form(a, NULL, &back, HEARTH_FORM_FORM), NULL, &b), 0);
    assert_null(strstr(b.data, "<option><value>authorize</value></option>"));
    hearth_buf_free(&b);

    /* Who sees an authorize node's items; publishers see any node's, publish-only never. */
    pubsub_node_t *n = pubsub_node_new("n", &back);
    assert_non_null(n);
    pubsub_who_t stranger = {0}, subscribed = {.subscribed = 1};
    pubsub_who_t publisher = {.aff = PUBSUB_AFF_PUBLISHER};
    pubsub_who_t only = {.aff = PUBSUB_AFF_PUBLISH_ONLY};
    assert_int_equal(pubsub_access(n, &subscribed, &e), 0);
    assert_int_equal(pubsub_access(n, &publisher, &e), 0);
    assert_int_equal(pubsub_access(n, &stranger, &e), -1);
    assert_int_equal(e.cond, HEARTH_STANZA_ERR_NOT_AUTHORIZED);
    assert_string_equal(e.app, "not-subscribed");
    n->config.access = PUBSUB_ACCESS_OPEN;
    assert_int_equal(pubsub_access(n, &only, &e), -1);
    assert_int_equal(e.cond, HEARTH_STANZA_ERR_FORBIDDEN);
    pubsub_node_free(n);
    pubsub_config_clear(&c);
    for (int i = PUBSUB_AFF_NONE; i <= PUBSUB_AFF_PUBLISH_ONLY; i++)
        assert_int_equal(pubsub_aff_parse(pubsub_aff_name((pubsub_aff_t)i)), i);
    assert_int_equal(pubsub_aff_parse("superuser"), PUBSUB_AFF_NONE);
    hearth_arena_free(a);
}

static void test_item_payload(void **state)
{
    (void)state;
    hearth_arena_t *a = hearth_arena_new(0);
    pubsub_err_t e;
    char *p = NULL;
    size_t size = 0;
    hearth_xml_node_t *it = tree(a, "<item xmlns='http://jabber.org/protocol/pubsub'>"
                                    "<e xmlns='urn:x'>hi</e></item>");
    assert_int_equal(pubsub_item_payload(it, 100, &p, &size, &e), 0);
    assert_string_equal(p, "<e xmlns='urn:x'>hi</e>");
    assert_int_equal(size, strlen(p));
    free(p);
    assert_int_equal(pubsub_item_payload(it, 10, &p, &size, &e), -1);
    assert_string_equal(e.app, "payload-too-big");
    it = tree(a, "<item xmlns='http://jabber.org/protocol/pubsub'><a xmlns='urn:x'/>"
                 "<b xmlns='urn:x'/></item>");
    assert_int_equal(pubsub_item_payload(it, 100, &p, &size, &e), -1);
    assert_string_equal(e.app, "invalid-payload");
    it = tree(a, "<item xmlns='http://jabber.org/protocol/pubsub'/>");
    assert_int_equal(pubsub_item_payload(it, 100, &p, &size, &e), -1);
    assert_string_equal(e.app, "payload-required");
    hearth_arena_free(a);
}

/* ---- bytes ----------------------------------------------------------------------------------- */

static void test_error_bytes(void **state)
{
    (void)state;
    hearth_buf_t b = HEARTH_BUF_INIT;
    pubsub_err_t e;
    pubsub_fail(&e, HEARTH_STANZA_ERR_POLICY_VIOLATION, NULL, "over <quota> & more");
    assert_int_equal(pubsub_error_write(&b, &e), 0);
    assert_string_equal(b.data, "<error type='modify'><policy-violation "
                                "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
                                "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>over &lt;quota&gt; "
                                "&amp; more</text></error>");
    b.len = 0;
    pubsub_unsupported(&e, "subscribe");
    assert_int_equal(pubsub_error_write(&b, &e), 0);
    assert_string_equal(b.data, "<error type='cancel'><feature-not-implemented "
                                "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><unsupported "
                                "xmlns='http://jabber.org/protocol/pubsub#errors' "
                                "feature='subscribe'/></error>");
    hearth_buf_free(&b);
    assert_true(pubsub_name_ok("x", 3));
    assert_false(pubsub_name_ok("", 3));
    assert_false(pubsub_name_ok("long", 3));
    assert_false(pubsub_name_ok(NULL, 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_publish_options_configure_a_new_node),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_bad_forms_and_values),
        cmocka_unit_test(test_stored_and_loaded),
        cmocka_unit_test(test_items_in_memory),
        cmocka_unit_test(test_access_models),
        cmocka_unit_test(test_service_models),
        cmocka_unit_test(test_item_payload),
        cmocka_unit_test(test_error_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
