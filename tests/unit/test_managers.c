/* Unit tests of the client library's managers (roster, presence, chat, MUC) against the
 * scripted fake server (fake_server.c): every byte the managers send is expected exactly, the
 * server's stanzas are written out, and the managers' events are checked in order. Time moves
 * by hand, never by sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/crypto.h>

#include "client/hooks.h"
#include "fake_server.h"
#include "hearth/chat.h"
#include "hearth/client.h"
#include "hearth/muc.h"
#include "hearth/presence.h"
#include "hearth/roster.h"

/* ---- the bytes of a login (PLAIN in clear, as in test_client.c) ---- */

#define HDR_START                                                                                  \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                   \
    "xmlns:stream='http://etherx.jabber.org/streams' "
#define HDR HDR_START "to='localhost' version='1.0' xml:lang='en'>"
#define S_HDR HDR_START "id='s1' from='localhost' version='1.0'>"
#define FEAT(x) "<stream:features>" x "</stream:features>"
#define F_BIND "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
#define F_VER "<ver xmlns='urn:xmpp:features:rosterver'/>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define AUTH_PLAIN                                                                                 \
    "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AHVzZXIAcGVuY2ls</auth>"
#define MECHS                                                                                      \
    "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"            \
    "</mechanisms>"
#define BIND(id)                                                                                   \
    EXPECT("<iq type='set' id='" id "'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"  \
           "phone</resource></bind></iq>"),                                                        \
        SEND("<iq type='result' id='" id "'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>"  \
             "user@localhost/phone</jid></bind></iq>")
/* Up to the stream's features after authentication (features: what they offer). */
#define LOGIN(features)                                                                            \
    ACCEPT, EXPECT(HDR), EVENT("connected"), SEND(S_HDR FEAT(MECHS)), EXPECT(AUTH_PLAIN),          \
        SEND(SUCCESS), EXPECT(HDR), SEND(S_HDR FEAT(features))
#define ROSTER_NS "jabber:iq:roster"
#define CLOSE_TAG "</stream:stream>"

static fake_t *start(void (*cfg_fn)(hearth_client_config_t *cfg))
{
    fake_t *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    assert_int_equal(fake_init(f, NULL, NULL), 0);
    assert_non_null(fake_ctx(f));
    hearth__ctx_seed(f->ctx, 42);
    hearth__ctx_freeze(f->ctx);
    hearth_client_config_t cfg = {
        .jid = "user@localhost/phone",
        .password = "pencil",
        .host = "127.0.0.1",
        .port = (unsigned)f->port,
        .tls = HEARTH_TLS_DISABLED,
        .allow_plain_without_tls = 1,
        .no_sm = 1,
    };
    if (cfg_fn)
        cfg_fn(&cfg);
    assert_int_equal(hearth_client_new(f->ctx, &cfg, &fake_events, f, &f->client), 0);
    return f;
}

static void go(fake_t *f)
{
    assert_int_equal(hearth_client_connect(f->client), 0);
}

static void finish(fake_t *f, const step_t *script)
{
    bool ok = fake_run(f, script, 10000);
    bool clean = fake_done(f);
    free(f);
    assert_true(ok);
    assert_true(clean);
}

static void disconnect(fake_t *f)
{
    assert_int_equal(hearth_client_disconnect(f->client), 0);
}

static void reconnecting(hearth_client_config_t *cfg)
{
    cfg->reconnect = 1;
}

/* ======================================================================================
 * roster
 * ====================================================================================== */

static void item_line(char *buf, size_t size, const hearth_roster_item_t *it)
{
    int n = snprintf(buf, size, "%s sub=%s%s%s name=%s groups=", it->jid,
                     hearth_subscription_name(it->subscription), it->ask ? " ask" : "",
                     it->approved ? " approved" : "", it->name ? it->name : "-");
    for (size_t i = 0; i < it->ngroups && n > 0 && (size_t)n < size; i++)
        n += snprintf(buf + n, size - (size_t)n, "%s%s", i ? "," : "", it->groups[i]);
}

static void r_loaded(void *ud, hearth_roster_t *r, int result)
{
    const char *ver = hearth_roster_version(r);
    fake_event(ud, "roster loaded %s n=%zu ver=%s", hearth_err_name(result), hearth_roster_count(r),
               ver ? ver : "-");
}

static void r_added(void *ud, hearth_roster_t *r, const hearth_roster_item_t *it)
{
    (void)r;
    char line[256];
    item_line(line, sizeof line, it);
    fake_event(ud, "roster added %s", line);
}

static void r_changed(void *ud, hearth_roster_t *r, const hearth_roster_item_t *it,
                      const hearth_roster_item_t *old)
{
    (void)r;
    char a[256], b[256];
    item_line(a, sizeof a, it);
    item_line(b, sizeof b, old);
    fake_event(ud, "roster changed %s (was %s)", a, b);
}

static void r_removed(void *ud, hearth_roster_t *r, const hearth_roster_item_t *it)
{
    (void)r;
    fake_event(ud, "roster removed %s", it->jid);
}

static const hearth_roster_events_t roster_events = {
    .loaded = r_loaded, .added = r_added, .changed = r_changed, .removed = r_removed};

static hearth_roster_t *add_roster(fake_t *f, const hearth_roster_config_t *cfg)
{
    hearth_roster_t *r;
    assert_int_equal(hearth_roster_new(f->client, cfg, &roster_events, f, &r), 0);
    assert_ptr_equal(hearth_roster_get(f->client), r);
    hearth_roster_t *again;
    assert_int_equal(hearth_roster_new(f->client, NULL, NULL, NULL, &again), HEARTH_EEXISTS);
    return r;
}

static void check_cache(fake_t *f)
{
    hearth_roster_t *r = hearth_roster_get(f->client);
    assert_int_equal(hearth_roster_count(r), 2);
    assert_true(hearth_roster_loaded(r));
    assert_false(hearth_roster_truncated(r));
    assert_string_equal(hearth_roster_version(r), "v4");
    assert_string_equal(hearth_roster_item_at(r, 0)->jid, "bob@localhost");
    assert_string_equal(hearth_roster_item_at(r, 1)->jid, "li@localhost");
    assert_null(hearth_roster_item_at(r, 2));
    /* Any spelling of a JID finds it: prepared, the resource ignored. */
    const hearth_roster_item_t *li = hearth_roster_find(r, "LI@LocalHost/desk");
    assert_non_null(li);
    assert_string_equal(li->name, "Li");
    assert_int_equal(li->ngroups, 1);
    assert_string_equal(li->groups[0], "Friends");
    assert_null(hearth_roster_find(r, "carol@localhost"));
    assert_null(hearth_roster_find(r, "@@"));
}

/* The roster at login with versioning (XEP-0237): ver='' the first time, the cached version
 * after a reconnection; pushes applied and answered, pushes from anyone but the account
 * refused; the cache and its version across the reconnection. */
static void test_roster_versioned(void **state)
{
    (void)state;
    fake_t *f = start(reconnecting);
    add_roster(f, NULL);
    go(f);
    const step_t script[] = {
        LOGIN(F_BIND F_VER),
        BIND("h1"),
        EVENT("online user@localhost/phone"),
        EXPECT("<iq type='get' id='h2'><query xmlns='jabber:iq:roster' ver=''/></iq>"),
        EXPECT("<presence/>"),
        SEND("<iq type='result' id='h2' to='user@localhost/phone'><query "
             "xmlns='jabber:iq:roster' ver='v1'><item name='Li' jid='li@localhost' "
             "subscription='to'><group>Friends</group></item><item jid='bob@localhost' "
             "subscription='from'/><item ask='subscribe' jid='carol@localhost' "
             "subscription='none'/><item jid='bad@@jid'/></query></iq>"),
        EVENT("roster added li@localhost sub=to name=Li groups=Friends"),
        EVENT("roster added bob@localhost sub=from name=- groups="),
        EVENT("roster added carol@localhost sub=none ask name=- groups="),
        EVENT("roster loaded OK n=3 ver=v1"),
        /* A push (no from: the account's server) */
        SEND("<iq type='set' id='p1'><query xmlns='jabber:iq:roster' ver='v2'><item "
             "jid='bob@localhost' subscription='both' approved='true'><group>Work</group>"
             "<group>Work</group></item></query></iq>"),
        EXPECT("<iq type='result' id='p1'/>"),
        EVENT("roster changed bob@localhost sub=both approved name=- groups=Work (was "
              "bob@localhost sub=from name=- groups=)"),
        /* ... from the bare JID, removing carol */
        SEND("<iq type='set' id='p2' from='user@localhost'><query xmlns='jabber:iq:roster' "
             "ver='v3'><item jid='carol@localhost' subscription='remove'/></query></iq>"),
        EXPECT("<iq type='result' to='user@localhost' id='p2'/>"),
        EVENT("roster removed carol@localhost"),
        /* Not from the account: no push, the core says it serves nothing of the kind. */
        SEND(
            "<iq type='set' id='p3' from='mallory@localhost'><query xmlns='jabber:iq:roster'><item "
            "jid='evil@localhost'/></query></iq>"),
        EXPECT("<iq type='error' to='mallory@localhost' id='p3'><error type='cancel'>"
               "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"),
        SEND("<iq type='set' id='p4' from='user@localhost/other'><query "
             "xmlns='jabber:iq:roster'><item jid='evil@localhost'/></query></iq>"),
        EXPECT("<iq type='error' to='user@localhost/other' id='p4'><error type='cancel'>"
               "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"),
        /* Two items in one push: bad-request, nothing applied. */
        SEND("<iq type='set' id='p5'><query xmlns='jabber:iq:roster' ver='vX'><item "
             "jid='x@localhost'/><item jid='y@localhost'/></query></iq>"),
        EXPECT("<iq type='error' id='p5'><error type='modify'><bad-request "
               "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"),
        SEND("<iq type='set' id='p6'><query xmlns='jabber:iq:roster' ver='v4'><item "
             "jid='bob@localhost' subscription='both' approved='true'><group>Work</group></item>"
             "</query></iq>"),
        EXPECT("<iq type='result' id='p6'/>"),
        /* The connection drops; the next session asks for what changed since v4. */
        CLOSE,
        EVENT("disconnected ECLOSED reconnect 573"),
        ADVANCE_RECONNECT,
        LOGIN(F_BIND F_VER),
        BIND("h3"),
        EVENT("online user@localhost/phone"),
        EXPECT("<iq type='get' id='h4'><query xmlns='jabber:iq:roster' ver='v4'/></iq>"),
        EXPECT("<presence/>"),
        SEND("<iq type='result' id='h4'/>"),
        EVENT("roster loaded OK n=2 ver=v4"),
        CALL(check_cache),
        CALL(disconnect),
        EXPECT(CLOSE_TAG),
        SEND(CLOSE_TAG),
        EVENT("disconnected OK"),
        END,
    };
    finish(f, script);
}

/* Without XEP-0237 on the server no ver is sent; a full roster replaces the cache: items it
 * no longer lists are removed. */
static void refetch(fake_t *f)
{
    assert_int_equal(hearth_roster_fetch(hearth_roster_get(f->client)), 0);
    /* A fetch under way is not repeated. */
    assert_int_equal(hearth_roster_fetch(hearth_roster_get(f->client)), 0);
}

static void test_roster_unversioned_replace(void **state)
{
    (void)state;
    fake_t *f = start(NULL);
    add_roster(f, NULL);
    go(f);
    const step_t script[] = {
        LOGIN(F_BIND),
        BIND("h1"),
        EVENT("online user@localhost/phone"),
        EXPECT("<iq type='get' id='h2'><query xmlns='jabber:iq:roster'/></iq>"),
        EXPECT("<presence/>"),
        SEND("<iq type='result' id='h2'><query xmlns='jabber:iq:roster'><item jid='a@localhost' "
             "subscription='both'/><item jid='b@localhost' subscription='both'/></query></iq>"),
        EVENT("roster added a@localhost sub=both name=- groups="),
        EVENT("roster added b@localhost sub=both name=- groups="),
        EVENT("roster loaded OK n=2 ver=-"),
        CALL(refetch),
        EXPECT("<iq type='get' id='h3'><query xmlns='jabber:iq:roster'/></iq>"),
        SEND("<iq type='result' id='h3'><query xmlns='jabber:iq:roster'><item jid='b@localhost' "
             "subscription='to'/><item jid='c@localhost'/></query></iq>"),
        EVENT("roster changed b@localhost sub=to name=- groups= (was b@localhost sub=both "
              "name=- groups=)"),
        EVENT("roster added c@localhost sub=none name=- groups="),
        EVENT("roster removed a@localhost"),
        EVENT("roster loaded OK n=2 ver=-"),
        CALL(disconnect),
        EXPECT(CLOSE_TAG),
        SEND(CLOSE_TAG),
        EVENT("disconnected OK"),
        END,
    };
    finish(f, script);
}

/* Adding, renaming and removing: the IQ sets as RFC 6121 §2.3-2.5 write them, the server's
 * answers reported; the cache waits for the push. */
static void roster_set(fake_t *f)
{
    hearth_roster_t *r = hearth_roster_get(f->client);
    const char *groups[] = {"Friends", "Work"};
    assert_int_equal(
        hearth_roster_set(r, "Dave@LOCALHOST", "Dave <D>", groups, 2, fake_iq_cb, "set"), 0);
    assert_int_equal(hearth_roster_set(r, "not a jid@@", NULL, NULL, 0, NULL, NULL), HEARTH_EINVAL);
    assert_int_equal(hearth_roster_count(r), 0);
}

static void roster_remove(fake_t *f)
{
    assert_int_equal(
        hearth_roster_remove(hearth_roster_get(f->client), "dave@localhost", fake_iq_cb, "rm"), 0);
}

static void test_roster_set_and_remove(void **state)
{
    (void)state;
    fake_t *f = start(NULL);
    hearth_roster_config_t cfg = {.no_fetch = 1};
    add_roster(f, &cfg);
    go(f);
    const step_t script[] = {
        LOGIN(F_BIND),
        BIND("h1"),
        EVENT("online user@localhost/phone"),
        EXPECT("<presence/>"),
        CALL(roster_set),
        EXPECT("<iq type='set' id='h2'><query xmlns='jabber:iq:roster'><item jid='dave@localhost' "
               "name='Dave &lt;D&gt;'><group>Friends</group><group>Work</group></item></query>"
               "</iq>"),
        SEND("<iq type='set' id='p1'><query xmlns='jabber:iq:roster'><item jid='dave@localhost' "
             "name='Dave &lt;D&gt;' subscription='none'><group>Friends</group><group>Work"
             "</group></item></query></iq><iq type='result' id='h2'/>"),
        EXPECT("<iq type='result' id='p1'/>"),
        EVENT("roster added dave@localhost sub=none name=Dave <D> groups=Friends,Work"),
        EVENT("iq set OK"),
        CALL(roster_remove),
        EXPECT("<iq type='set' id='h3'><query xmlns='jabber:iq:roster'><item jid='dave@localhost' "
               "subscription='remove'/></query></iq>"),
        SEND("<iq type='error' id='h3'><error type='cancel'><item-not-found "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"),
        EVENT("iq rm ESTANZA"),
        CALL(disconnect),
        EXPECT(CLOSE_TAG),
        SEND(CLOSE_TAG),
        EVENT("disconnected OK"),
        END,
    };
    finish(f, script);
}

/* At the cache's bound an item is left out and the roster marked truncated; a truncated cache
 * is at no version, so the next fetch asks for everything (ver=''). */
static void check_truncated(fake_t *f)
{
    hearth_roster_t *r = hearth_roster_get(f->client);
    assert_true(hearth_roster_truncated(r));
    assert_null(hearth_roster_version(r));
    assert_int_equal(hearth_roster_count(r), 2);
}

static void test_roster_bound(void **state)
{
    (void)state;
    fake_t *f = start(NULL);
    hearth_roster_config_t cfg = {.max_items = 2};
    add_roster(f, &cfg);
    go(f);
    const step_t script[] = {
        LOGIN(F_BIND F_VER),
        BIND("h1"),
        EVENT("online user@localhost/phone"),
        EXPECT("<iq type='get' id='h2'><query xmlns='jabber:iq:roster' ver=''/></iq>"),
        EXPECT("<presence/>"),
        SEND("<iq type='result' id='h2'><query xmlns='jabber:iq:roster' ver='v9'><item "
             "jid='a@localhost'/><item jid='b@localhost'/><item jid='c@localhost'/></query></iq>"),
        EVENT("roster added a@localhost sub=none name=- groups="),
        EVENT("roster added b@localhost sub=none name=- groups="),
        EVENT("roster loaded OK n=2 ver=-"),
        CALL(check_truncated),
        /* A push beyond the bound is answered all the same. */
        SEND("<iq type='set' id='p1'><query xmlns='jabber:iq:roster' ver='v10'><item "
             "jid='d@localhost'/></query></iq>"),
        EXPECT("<iq type='result' id='p1'/>"),
        CALL(check_truncated),
        CALL(refetch),
        EXPECT("<iq type='get' id='h3'><query xmlns='jabber:iq:roster' ver=''/></iq>"),
        CALL(disconnect),
        EXPECT(CLOSE_TAG),
        SEND(CLOSE_TAG),
        EVENT("roster loaded ECLOSED n=2 ver=-"),
        EVENT("disconnected OK"),
        END,
    };
    finish(f, script);
}

/* ======================================================================================
 * presence
 * ====================================================================================== */

static void p_changed(void *ud, hearth_presence_t *p, const hearth_presence_info_t *i,
                      hearth_stanza_t *st)
{
    (void)p;
    if (!i->available)
        fake_event(ud, "presence %s gone%s", i->jid, st ? "" : " (forgotten)");
    else
        fake_event(ud, "presence %s show=%s status=%s prio=%d", i->jid,
                   i->show ? hearth_show_name(i->show) : "-", i->status ? i->status : "-",
                   i->priority);
}

static void p_request(void *ud, hearth_presence_t *p, const char *jid, const char *status)
{
    (void)p;
    fake_event(ud, "subscribe request %s %s", jid, status ? status : "-");
}

static void p_subscription(void *ud, hearth_presence_t *p, const char *jid,
                           hearth_subscription_change_t ch)
{
    (void)p;
    fake_event(ud, "subscription %s %s", jid,
               ch == HEARTH_SUBSCRIPTION_APPROVED ? "approved"
               : ch == HEARTH_SUBSCRIPTION_DENIED ? "denied"
                                                  : "unsubscribed");
}

static void p_error(void *ud, hearth_presence_t *p, const char *jid, hearth_stanza_error_t cond,
                    const char *text)
{
    (void)p;
    fake_event(ud, "presence error %s %s %s", jid, hearth_stanza_error_name(cond),
               text ? text : "-");
}

static const hearth_presence_events_t presence_events = {.changed = p_changed,
                                                         .subscribe_request = p_request,
                                                         .subscription = p_subscription,
                                                         .error = p_error};

static hearth_presence_t *add_presence(fake_t *f, const hearth_presence_config_t *cfg)
{
    hearth_presence_t *p;
    assert_int_equal(hearth_presence_new(f->client, cfg, &presence_events, f, &p), 0);
    return p;
}

static void check_best_phone(fake_t *f)
{
    hearth_presence_t *p = hearth_presence_get(f->client);
    const hearth_presence_info_t *b = hearth_presence_best(p, "Bob@localhost");
    assert_non_null(b);
    assert_string_equal(b->jid, "bob@localhost/phone");
    assert_string_equal(b->resource, "phone");
    assert_string_equal(b->bare, "bob@localhost");
    assert_int_equal(b->show, HEARTH_SHOW_AWAY);
    assert_int_equal(hearth_presence_resource_count(p, "bob@localhost"), 2);
    assert_null(hearth_presence_best(p, "nobody@localhost"));
    const hearth_presence_info_t *me = hearth_presence_mine(p);
    assert_string_equal(me->jid, "user@localhost/phone");
    assert_int_equal(me->show, HEARTH_SHOW_DND);
    assert_int_equal(me->priority, 5);
    assert_string_equal(me->status, "in a meeting");
}

static void check_best_pc(fake_t *f)
{
    hearth_presence_t *p = hearth_presence_get(f->client);
    const hearth_presence_info_t *b = hearth_presence_best(p, "bob@localhost");
    assert_non_null(b);
    assert_string_equal(b->jid, "bob@localhost/pc");
    assert_int_equal(hearth_presence_resource_count(p, "bob@localhost"), 1);
    assert_int_equal(hearth_presence_request_count(p), 1);
    const char *status;
    assert_string_equal(hearth_presence_request_at(p, 0, &status), "carol@localhost");
    assert_string_equal(status, "it's Carol");
}

static void approve_carol(fake_t *f)
{
    hearth_presence_t *p = hearth_presence_get(f->client);
    assert_int_equal(hearth_presence_approve(p, "carol@localhost/laptop"), 0);
    assert_int_equal(hearth_presence_request_count(p), 0);
    assert_int_equal(hearth_presence_subscribe(p, "dave@localhost", "hi, Dave"), 0);
    assert_int_equal(hearth_presence_deny(p, "eve@localhost"), 0);
    assert_int_equal(hearth_presence_unsubscribe(p, "frank@localhost"), 0);
    assert_int_equal(hearth_presence_send_to(p, "room@muc.localhost/me", 1), 0);
    assert_int_equal(hearth_presence_subscribe(p, "@@", NULL), HEARTH_EINVAL);
}

static void go_away(fake_t *f)
{
    hearth_presence_t *p = hearth_presence_get(f->client);
    assert_int_equal(hearth_presence_set(p, HEARTH_SHOW_AWAY, NULL, -1), 0);
    assert_int_equal(hearth_presence_set(p, HEARTH_SHOW_AWAY, NULL, 128), HEARTH_EINVAL);
    assert_int_equal(hearth_presence_set_unavailable(p, "bye"), 0);
    assert_int_equal(hearth_presence_mine(p)->available, 0);
}

static void set_dnd(fake_t *f)
{
    hearth_presence_t *p = hearth_presence_get(f->client);
    assert_int_equal(hearth_presence_set(p, HEARTH_SHOW_DND, "in a meeting", 5), 0);
    assert_int_equal(hearth_presence_mine(p)->available, 1);
}

/* Our presence, set before login, is what the session begins with (not <presence/>); the
 * presence of a contact's resources, the best of them, subscriptions both ways, a presence
 * error, unavailable. */
static void test_presence(void **state)
{
    (void)state;
    fake_t *f = start(NULL);
    add_presence(f, NULL);
    set_dnd(f);
    go(f);
    const step_t script[] = {
        LOGIN(F_BIND),
        BIND("h1"),
        EVENT("online user@localhost/phone"),
        EXPECT("<presence><show>dnd</show><status>in a meeting</status><priority>5</priority>"
               "</presence>"),
        SEND("<presence from='bob@localhost/pc'><priority>1</priority></presence>"
             "<presence from='bob@localhost/phone'><show>away</show><status>on the "
             "road</status><priority>5</priority></presence>"
             "<presence from='user@localhost/phone'><show>dnd</show><priority>5</priority>"
             "</presence>"),
        EVENT("presence bob@localhost/pc show=- status=- prio=1"),
        EVENT("presence bob@localhost/phone show=away status=on the road prio=5"),
        EVENT("presence user@localhost/phone show=dnd status=- prio=5"),
        CALL(check_best_phone),
        SEND("<presence from='bob@localhost/phone' type='unavailable'/>"
             "<presence from='carol@localhost' type='subscribe'><status>it's "
             "Carol</status></presence>"
             "<presence from='carol@localhost' type='subscribe'/>"),
        EVENT("presence bob@localhost/phone gone"),
        EVENT("subscribe request carol@localhost it's Carol"),
        EVENT("subscribe request carol@localhost -"),
        CALL(check_best_pc),
        CALL(approve_carol),
        EXPECT("<presence type='subscribed' to='carol@localhost'/>"
               "<presence type='subscribe' to='dave@localhost'><status>hi, Dave</status>"
               "</presence>"
               "<presence type='unsubscribed' to='eve@localhost'/>"
               "<presence type='unsubscribe' to='frank@localhost'/>"
               "<presence to='room@muc.localhost/me'><show>dnd</show><status>in a "
               "meeting</status><priority>5</priority></presence>"),
        SEND("<presence from='dave@localhost' type='subscribed'/>"
             "<presence from='frank@localhost' type='unsubscribed'/>"
             "<presence from='gina@localhost' type='unsubscribe'/>"
             "<presence from='bob@localhost' type='error'><error type='cancel'>"
             "<remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>"
             "</presence>"),
        EVENT("subscription dave@localhost approved"),
        EVENT("subscription frank@localhost denied"),
        EVENT("subscription gina@localhost unsubscribed"),
        EVENT("presence bob@localhost/pc gone"),
        EVENT("presence error bob@localhost remote-server-not-found -"),
        CALL(go_away),
        EXPECT("<presence><show>away</show><priority>-1</priority></presence>"
               "<presence type='unavailable'><status>bye</status></presence>"),
        CALL(disconnect),
        EXPECT(CLOSE_TAG),
        SEND(CLOSE_TAG),
        EVENT("presence user@localhost/phone gone (forgotten)"),
        EVENT("disconnected OK"),
        END,
    };
    finish(f, script);
}

/* A bot accepts every request at once; the event still tells. The client's
 * no_initial_presence holds while the manager's own presence is unset. */
static void no_presence(hearth_client_config_t *cfg)
{
    cfg->no_initial_presence = 1;
}

static void ping_from_server(fake_t *f)
{
    (void)f;
}

static void test_presence_accept_all(void **state)
{
    (void)state;
    fake_t *f = start(no_presence);
    hearth_presence_config_t cfg = {.subscription_mode = HEARTH_SUBSCRIBE_ACCEPT_ALL,
                                    .max_resources = 1};
    hearth_presence_t *p = add_presence(f, &cfg);
    assert_int_equal(hearth_presence_mine(p)->available, 0);
    go(f);
    const step_t script[] = {
        LOGIN(F_BIND),
        BIND("h1"),
        EVENT("online user@localhost/phone"),
        CALL(ping_from_server),
        SEND("<iq type='get' id='ping1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"),
        /* No presence went before the ping's answer. */
        EXPECT("<iq type='result' to='localhost' id='ping1'/>"),
        SEND("<presence from='carol@localhost/x' type='subscribe'/>"
             "<presence from='bob@localhost/a'/><presence from='bob@localhost/b'/>"),
        EXPECT("<presence type='subscribed' to='carol@localhost'/>"),
        EVENT("subscribe request carol@localhost -"),
        EVENT("presence bob@localhost/a show=- status=- prio=0"),
        /* Past max_resources: reported, not cached, counted. */
        EVENT("presence bob@localhost/b show=- status=- prio=0"),
        CALL(disconnect),
        EXPECT(CLOSE_TAG),
        SEND(CLOSE_TAG),
        EVENT("presence bob@localhost/a gone (forgotten)"),
        EVENT("disconnected OK"),
        END,
    };
    bool ok = fake_run(f, script, 10000);
    assert_int_equal(hearth_presence_dropped(p), 1);
    bool clean = fake_done(f);
    free(f);
    assert_true(ok);
    assert_true(clean);
}

/* ======================================================================================
 * chat
 * ====================================================================================== */

static int c_message(void *ud, hearth_chat_t *ch, const hearth_message_t *m)
{
    (void)ch;
    fake_event(ud, "message %s %s id=%s body=%s thread=%s%s%s state=%s receipt=%d delay=%s",
               m->type, m->from, m->id ? m->id : "-", m->body ? m->body : "-",
               m->thread ? m->thread : "-", m->parent_thread ? " parent=" : "",
               m->parent_thread ? m->parent_thread : "",
               m->state ? hearth_chat_state_name(m->state) : "-", m->receipt_requested,
               m->delay ? m->delay : "-");
    /* A message whose body says so is declined: no receipt. */
    return m->body && !strcmp(m->body, "unseen") ? HEARTH_CHAT_NO_RECEIPT : HEARTH_CHAT_RECEIPT;
}

static void c_state(void *ud, hearth_chat_t *ch, const char *from, hearth_chat_state_t s)
{
    (void)ch;
    fake_event(ud, "state %s %s", from, hearth_chat_state_name(s));
}

static void c_receipt(void *ud, hearth_chat_t *ch, const char *from, const char *id)
{
    (void)ch;
    fake_event(ud, "receipt %s %s", from, id);
}

static void c_error(void *ud, hearth_chat_t *ch, const char *from, const char *id,
                    hearth_stanza_error_t cond, const char *text)
{
    (void)ch;
    fake_event(ud, "chat error %s %s %s %s", from, id ? id : "-", hearth_stanza_error_name(cond),
               text ? text : "-");
}

static const hearth_chat_events_t chat_events = {
    .message = c_message, .state = c_state, .receipt = c_receipt, .error = c_error};

static void chat_send(fake_t *f)
{
    hearth_chat_t *ch = hearth_chat_get(f->client);
    char thread[33], id[32];
    hearth_chat_new_thread(ch, thread, sizeof thread);
    assert_int_equal(strlen(thread), 32);
    hearth_chat_options_t o = {
        .thread = "t-1", .request_receipt = 1, .state = HEARTH_CHAT_STATE_ACTIVE};
    assert_int_equal(hearth_chat_send(ch, "bob@localhost", "你好 <&>", &o, id, sizeof id), 0);
    assert_string_equal(id, "h3");
    hearth_chat_options_t n = {.type = "normal", .id = "mine", .subject = "S"};
    assert_int_equal(hearth_chat_send(ch, "bob@localhost/pc", "b", &n, NULL, 0), 0);
    assert_int_equal(hearth_chat_send_state(ch, "bob@localhost", HEARTH_CHAT_STATE_COMPOSING), 0);
    hearth_chat_options_t bad = {.type = "groupchat"};
    assert_int_equal(hearth_chat_send(ch, "bob@localhost", "x", &bad, NULL, 0), HEARTH_EINVAL);
    assert_int_equal(hearth_chat_send(ch, "@bad", "x", NULL, NULL, 0), HEARTH_EINVAL);
}

static void roster_with_bob(fake_t *f)
{
    (void)f;
}

/* Messages out with thread, receipt request and chat state; messages in parsed; receipts
 * answered to contacts who may see our presence, not to strangers nor to a declined message;
 * receipts and standalone states reported; an error reported. */
static void test_chat(void **state)
{
    (void)state;
    fake_t *f = start(NULL);
    add_roster(f, NULL);
    hearth_chat_t *ch;
    assert_int_equal(hearth_chat_new(f->client, NULL, &chat_events, f, &ch), 0);
    go(f);
    const step_t script[] = {
        LOGIN(F_BIND),
        BIND("h1"),
        EVENT("online user@localhost/phone"),
        EXPECT("<iq type='get' id='h2'><query xmlns='jabber:iq:roster'/></iq>"),
        EXPECT("<presence/>"),
        SEND("<iq type='result' id='h2'><query xmlns='jabber:iq:roster'><item "
             "jid='bob@localhost' subscription='both'/><item jid='li@localhost' "
             "subscription='to'/></query></iq>"),
        EVENT("roster added bob@localhost sub=both name=- groups="),
        EVENT("roster added li@localhost sub=to name=- groups="),
        EVENT("roster loaded OK n=2 ver=-"),
        CALL(roster_with_bob),
        CALL(chat_send),
        EXPECT("<message type='chat' to='bob@localhost' id='h3'><body>你好 &lt;&amp;&gt;</body>"
               "<thread>t-1</thread><active xmlns='http://jabber.org/protocol/chatstates'/>"
               "<request xmlns='urn:xmpp:receipts'/></message>"
               "<message type='normal' to='bob@localhost/pc' id='mine'><body>b</body><subject>S"
               "</subject></message>"
               "<message type='chat' to='bob@localhost'><composing "
               "xmlns='http://jabber.org/protocol/chatstates'/></message>"),
        /* bob (subscription both) asks for a receipt: answered. */
        SEND("<message type='chat' from='bob@localhost/pc' to='user@localhost/phone' id='m1'>"
             "<body>hi</body><thread parent='t0'>t-2</thread><active "
             "xmlns='http://jabber.org/protocol/chatstates'/><request "
             "xmlns='urn:xmpp:receipts'/></message>"),
        EVENT("message chat bob@localhost/pc id=m1 body=hi thread=t-2 parent=t0 state=active "
              "receipt=1 delay=-"),
        EVENT("state bob@localhost/pc active"),
        EXPECT("<message to='bob@localhost/pc' id='h4'><received xmlns='urn:xmpp:receipts' "
               "id='m1'/></message>"),
        /* li (subscription to: may not see our presence), a stranger, a declined message: no
         * receipt; then a ping's answer is the next thing sent. */
        SEND("<message type='chat' from='li@localhost/x' id='m2'><body>a</body><request "
             "xmlns='urn:xmpp:receipts'/></message>"
             "<message from='stranger@localhost/x' id='m3'><body>b</body><delay "
             "xmlns='urn:xmpp:delay' stamp='2026-01-01T00:00:00Z'/><request "
             "xmlns='urn:xmpp:receipts'/></message>"
             "<message type='chat' from='bob@localhost/pc' id='m4'><body>unseen</body><request "
             "xmlns='urn:xmpp:receipts'/></message>"
             "<iq type='get' id='ping1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"),
        EVENT("message chat li@localhost/x id=m2 body=a thread=- state=- receipt=1 delay=-"),
        EVENT("message normal stranger@localhost/x id=m3 body=b thread=- state=- receipt=1 "
              "delay=2026-01-01T00:00:00Z"),
        EVENT("message chat bob@localhost/pc id=m4 body=unseen thread=- state=- receipt=1 "
              "delay=-"),
        EXPECT("<iq type='result' to='localhost' id='ping1'/>"),
        /* A standalone state, a receipt, an error, a groupchat message (not ours), an
         * invitation (the MUC manager's). */
        SEND("<message type='chat' from='bob@localhost/pc'><composing "
             "xmlns='http://jabber.org/protocol/chatstates'/></message>"
             "<message from='bob@localhost/pc' id='r1'><received xmlns='urn:xmpp:receipts' "
             "id='h3'/></message>"
             "<message type='error' from='nobody@localhost' id='h9'><error type='cancel'>"
             "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no such user</text></error></message>"
             "<message type='groupchat' from='room@muc.localhost/x'><body>g</body></message>"
             "<message from='room@muc.localhost'><x "
             "xmlns='http://jabber.org/protocol/muc#user'><invite from='bob@localhost'/></x>"
             "<body>come</body></message>"
             "<message type='headline' from='localhost'><subject>news</subject></message>"),
        EVENT("state bob@localhost/pc composing"),
        EVENT("receipt bob@localhost/pc h3"),
        EVENT("chat error nobody@localhost h9 service-unavailable no such user"),
        EVENT("message headline localhost id=- body=- thread=- state=- receipt=0 delay=-"),
        CALL(disconnect),
        EXPECT(CLOSE_TAG),
        SEND(CLOSE_TAG),
        EVENT("disconnected OK"),
        END,
    };
    finish(f, script);
}

/* HEARTH_RECEIPTS_NONE: the application answers itself, with hearth_chat_send_receipt. */
static void answer_receipt(fake_t *f)
{
    assert_int_equal(hearth_chat_send_receipt(hearth_chat_get(f->client), "bob@localhost/pc", "m1"),
                     0);
}

static void test_chat_receipts_by_hand(void **state)
{
    (void)state;
    fake_t *f = start(NULL);
    hearth_chat_config_t cfg = {.receipts = HEARTH_RECEIPTS_NONE};
    hearth_chat_t *ch;
    assert_int_equal(hearth_chat_new(f->client, &cfg, &chat_events, f, &ch), 0);
    go(f);
    const step_t script[] = {
        LOGIN(F_BIND),
        BIND("h1"),
        EVENT("online user@localhost/phone"),
        EXPECT("<presence/>"),
        SEND("<message type='chat' from='bob@localhost/pc' id='m1'><body>hi</body><request "
             "xmlns='urn:xmpp:receipts'/></message>"),
        EVENT("message chat bob@localhost/pc id=m1 body=hi thread=- state=- receipt=1 delay=-"),
        CALL(answer_receipt),
        EXPECT("<message to='bob@localhost/pc' id='h2'><received xmlns='urn:xmpp:receipts' "
               "id='m1'/></message>"),
        CALL(disconnect),
        EXPECT(CLOSE_TAG),
        SEND(CLOSE_TAG),
        EVENT("disconnected OK"),
        END,
    };
    finish(f, script);
}

/* A manager freed before its client, with a fetch under way: the fetch's answer finds no
 * manager and nothing leaks (the test's leak check and ASan). */
static void free_roster(fake_t *f)
{
    hearth_roster_free(hearth_roster_get(f->client));
    assert_null(hearth_roster_get(f->client));
    hearth_presence_free(hearth_presence_get(f->client));
    hearth_chat_free(hearth_chat_get(f->client));
}

static void test_managers_freed_early(void **state)
{
    (void)state;
    fake_t *f = start(NULL);
    add_roster(f, NULL);
    add_presence(f, NULL);
    hearth_chat_t *ch;
    assert_int_equal(hearth_chat_new(f->client, NULL, &chat_events, f, &ch), 0);
    go(f);
    const step_t script[] = {
        LOGIN(F_BIND),
        BIND("h1"),
        EVENT("online user@localhost/phone"),
        EXPECT("<iq type='get' id='h2'><query xmlns='jabber:iq:roster'/></iq>"),
        EXPECT("<presence/>"),
        CALL(free_roster),
        SEND("<iq type='result' id='h2'><query xmlns='jabber:iq:roster'><item "
             "jid='bob@localhost'/></query></iq>"
             "<presence from='bob@localhost/pc'/>"
             "<message type='chat' from='bob@localhost/pc' id='m1'><body>hi</body><request "
             "xmlns='urn:xmpp:receipts'/></message>"
             "<iq type='get' id='ping1' from='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"),
        /* No receipt, no event: the ping's answer comes next. */
        EXPECT("<iq type='result' to='localhost' id='ping1'/>"),
        CALL(disconnect),
        EXPECT(CLOSE_TAG),
        SEND(CLOSE_TAG),
        EVENT("disconnected OK"),
        END,
    };
    finish(f, script);
}

/* The client freed with managers on it, from inside a manager's event. */
static void free_client_in_event(void *ud, hearth_roster_t *r, const hearth_roster_item_t *it)
{
    (void)it;
    fake_t *f = ud;
    fake_event(f, "freeing");
    hearth_client_free(hearth_roster_client(r));
    f->client = NULL;
}

static void test_client_freed_in_manager_event(void **state)
{
    (void)state;
    fake_t *f = start(NULL);
    hearth_roster_events_t ev = {.added = free_client_in_event, .loaded = r_loaded};
    hearth_roster_t *r;
    assert_int_equal(hearth_roster_new(f->client, NULL, &ev, f, &r), 0);
    add_presence(f, NULL);
    go(f);
    const step_t script[] = {
        LOGIN(F_BIND),
        BIND("h1"),
        EVENT("online user@localhost/phone"),
        EXPECT("<iq type='get' id='h2'><query xmlns='jabber:iq:roster'/></iq>"),
        EXPECT("<presence/>"),
        SEND("<iq type='result' id='h2'><query xmlns='jabber:iq:roster'><item "
             "jid='a@localhost'/><item jid='b@localhost'/></query></iq>"),
        EVENT("freeing"),
        CLIENT_EOF,
        END,
    };
    finish(f, script);
}

/* ======================================================================================
 * MUC
 * ====================================================================================== */

#define ROOM "room@muc.localhost"
#define MUC_USER "http://jabber.org/protocol/muc#user"
#define OCC(nick, attrs, extra)                                                                    \
    "<presence from='" ROOM "/" nick "'><x xmlns='" MUC_USER "'><item " attrs "/>" extra           \
    "</x></presence>"

static void m_joined(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, int result,
                     hearth_stanza_error_t cond, int created)
{
    (void)m;
    fake_event(ud, "muc joined %s %s%s%s%s", hearth_muc_room_jid(room), hearth_err_name(result),
               cond ? " " : "", cond ? hearth_stanza_error_name(cond) : "",
               created ? " created" : "");
}

static void m_occupant(void *ud, hearth_muc_t *m, hearth_muc_room_t *room,
                       const hearth_muc_occupant_t *o, hearth_muc_change_t ch, const char *new_nick,
                       int code, hearth_stanza_t *st)
{
    (void)m;
    (void)room;
    (void)st;
    fake_event(ud, "muc occupant %s %s jid=%s %s/%s%s%s code=%d",
               ch == HEARTH_MUC_JOINED    ? "joined"
               : ch == HEARTH_MUC_CHANGED ? "changed"
                                          : "left",
               o->nick, o->jid ? o->jid : "-", hearth_muc_affiliation_name(o->affiliation),
               hearth_muc_role_name(o->role), new_nick ? " new=" : "", new_nick ? new_nick : "",
               code);
}

static void m_message(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *nick,
                      const char *body, const char *delay, hearth_stanza_t *st)
{
    (void)m;
    (void)room;
    (void)st;
    fake_event(ud, "muc message %s: %s%s%s", nick ? nick : "(room)", body, delay ? " at " : "",
               delay ? delay : "");
}

static void m_subject(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *nick,
                      const char *subject)
{
    (void)m;
    fake_event(ud, "muc subject %s by %s: '%s' now '%s'", hearth_muc_room_jid(room),
               nick ? nick : "-", subject, hearth_muc_room_subject(room));
}

static void m_left(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, hearth_muc_left_reason_t why,
                   const char *text)
{
    (void)m;
    fake_event(ud, "muc left %s %d %s", hearth_muc_room_jid(room), (int)why, text ? text : "-");
}

static void m_invitation(void *ud, hearth_muc_t *m, const char *room, const char *inviter,
                         const char *reason, const char *password, int direct)
{
    (void)m;
    fake_event(ud, "muc invitation %s from %s reason=%s password=%s%s", room, inviter,
               reason ? reason : "-", password ? password : "-", direct ? " direct" : "");
}

static void m_declined(void *ud, hearth_muc_t *m, const char *room, const char *from,
                       const char *reason)
{
    (void)m;
    fake_event(ud, "muc declined %s by %s: %s", room, from, reason ? reason : "-");
}

static void m_error(void *ud, hearth_muc_t *m, hearth_muc_room_t *room, const char *id,
                    hearth_stanza_error_t cond, const char *text)
{
    (void)m;
    fake_event(ud, "muc error %s %s %s %s", hearth_muc_room_jid(room), id ? id : "-",
               hearth_stanza_error_name(cond), text ? text : "-");
}

static const hearth_muc_events_t muc_events = {.joined = m_joined,
                                               .occupant = m_occupant,
                                               .message = m_message,
                                               .subject = m_subject,
                                               .left = m_left,
                                               .invitation = m_invitation,
                                               .declined = m_declined,
                                               .error = m_error};

static hearth_muc_room_t *the_room(fake_t *f)
{
    hearth_muc_room_t *r = hearth_muc_room_find(hearth_muc_get(f->client), ROOM);
    assert_non_null(r);
    return r;
}

static void muc_join(fake_t *f)
{
    hearth_muc_t *m = hearth_muc_get(f->client);
    hearth_muc_join_options_t o = {.password = "cauldron",
                                   .history_stanzas = 5,
                                   .history_seconds = 60,
                                   .history_since = "2026-01-01T00:00:00Z"};
    hearth_muc_room_t *r;
    assert_int_equal(hearth_muc_join(m, "Room@MUC.localhost", "Alice", &o, &r), 0);
    assert_int_equal(hearth_muc_join(m, ROOM, "Other", NULL, NULL), HEARTH_EEXISTS);
    assert_int_equal(hearth_muc_join(m, ROOM "/nick", "Other", NULL, NULL), HEARTH_EINVAL);
    assert_int_equal(hearth_muc_join(m, "muc.localhost", "Other", NULL, NULL), HEARTH_EINVAL);
    assert_ptr_equal(the_room(f), r);
    assert_false(hearth_muc_room_joined(r));
    assert_null(hearth_muc_room_self(r));
}

static void form_cb(void *ud, hearth_muc_t *m, const char *room, int result,
                    const hearth_form_t *form)
{
    (void)m;
    fake_event(ud, "muc form %s %s fields=%zu name=%s", room, hearth_err_name(result),
               form ? form->nfields : 0,
               form ? hearth_form_value(form, "muc#roomconfig_roomname") : "-");
}

static void muc_fetch_form(fake_t *f)
{
    assert_int_equal(hearth_muc_fetch_form(the_room(f), form_cb, f), 0);
}

static void muc_submit(fake_t *f)
{
    const char *name[] = {"Room 1"};
    const char *max[] = {"20"};
    const char *owners[] = {"user@localhost", "bob@localhost"};
    const char *ft[] = {"ignored"};
    hearth_form_field_t fields[] = {
        {.var = "FORM_TYPE", .values = ft, .nvalues = 1},
        {.var = "muc#roomconfig_roomname", .values = name, .nvalues = 1},
        {.var = "muc#roomconfig_maxusers", .values = max, .nvalues = 1},
        {.var = "muc#roomconfig_roomowners", .values = owners, .nvalues = 2},
    };
    hearth_form_t form = {.fields = fields, .nfields = 4};
    assert_int_equal(hearth_muc_submit_form(the_room(f), &form, fake_iq_cb, "submit"), 0);
}

static void muc_talk(fake_t *f)
{
    hearth_muc_room_t *r = the_room(f);
    char id[32];
    assert_int_equal(hearth_muc_say(r, "hello <all>", id, sizeof id), 0);
    assert_string_equal(id, "h4");
    assert_int_equal(hearth_muc_set_subject(r, "plans"), 0);
    assert_int_equal(hearth_muc_invite(r, "carol@localhost", "join us"), 0);
    assert_int_equal(hearth_muc_invite(r, "@bad", NULL), HEARTH_EINVAL);
    assert_int_equal(hearth_muc_decline(hearth_muc_get(f->client), "other@muc.localhost",
                                        "dave@localhost", NULL),
                     0);
    assert_int_equal(hearth_muc_occupant_count(r), 2);
    const hearth_muc_occupant_t *bob = hearth_muc_occupant_find(r, "Bob");
    assert_non_null(bob);
    assert_string_equal(bob->jid, "bob@localhost/pc");
    assert_int_equal(hearth_muc_room_self(r)->affiliation, HEARTH_MUC_AFFILIATION_OWNER);
    assert_true(hearth_muc_room_joined(r));
}

static void muc_leave(fake_t *f)
{
    assert_int_equal(hearth_muc_leave(the_room(f), "bye"), 0);
}

static void muc_join_two(fake_t *f)
{
    hearth_muc_t *m = hearth_muc_get(f->client);
    assert_int_equal(hearth_muc_join(m, "busy@muc.localhost", "Alice", NULL, NULL), 0);
    hearth_muc_join_options_t o = {.no_history = 1};
    assert_int_equal(hearth_muc_join(m, "doomed@muc.localhost", "Alice", &o, NULL), 0);
    assert_int_equal(hearth_muc_room_count(m), 2);
}

static void muc_check_none(fake_t *f)
{
    assert_int_equal(hearth_muc_room_count(hearth_muc_get(f->client)), 0);
    /* The room's presence never reached the presence manager. */
    assert_int_equal(hearth_presence_resource_count(hearth_presence_get(f->client), ROOM), 0);
}

/* A room created and configured through its form, its occupants, group chat with history,
 * the subject, invitations both ways, nick changes and kicks, leaving; a join refused; a room
 * destroyed under us. */
static void test_muc(void **state)
{
    (void)state;
    fake_t *f = start(NULL);
    add_presence(f, NULL);
    hearth_muc_t *m;
    assert_int_equal(hearth_muc_new(f->client, &muc_events, f, &m), 0);
    assert_ptr_equal(hearth_muc_get(f->client), m);
    go(f);
    const step_t script[] = {
        LOGIN(F_BIND),
        BIND("h1"),
        EVENT("online user@localhost/phone"),
        EXPECT("<presence/>"),
        CALL(muc_join),
        EXPECT("<presence to='" ROOM "/Alice'><x xmlns='http://jabber.org/protocol/muc'><history "
               "maxstanzas='5' seconds='60' since='2026-01-01T00:00:00Z'/><password>cauldron"
               "</password></x></presence>"),
        SEND(OCC("Bob", "affiliation='member' role='participant' jid='bob@localhost/pc'", "")
                 OCC("Alice", "affiliation='owner' role='moderator'",
                     "<status code='110'/><status code='201'/>")),
        EVENT("muc occupant joined Bob jid=bob@localhost/pc member/participant code=0"),
        EVENT("muc joined " ROOM " OK created"),
        CALL(muc_fetch_form),
        EXPECT("<iq type='get' to='" ROOM "' id='h2'><query "
               "xmlns='http://jabber.org/protocol/muc#owner'/></iq>"),
        SEND("<iq type='result' from='" ROOM "' id='h2'><query "
             "xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' "
             "type='form'><field var='FORM_TYPE' type='hidden'><value>"
             "http://jabber.org/protocol/muc#roomconfig</value></field><field "
             "var='muc#roomconfig_roomname' type='text-single'><value>room</value></field>"
             "</x></query></iq>"),
        EVENT("muc form " ROOM " OK fields=2 name=room"),
        CALL(muc_submit),
        EXPECT("<iq type='set' to='" ROOM "' id='h3'><query "
               "xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' "
               "type='submit'><field var='FORM_TYPE' type='hidden'><value>"
               "http://jabber.org/protocol/muc#roomconfig</value></field><field "
               "var='muc#roomconfig_roomname'><value>Room 1</value></field><field "
               "var='muc#roomconfig_maxusers'><value>20</value></field><field "
               "var='muc#roomconfig_roomowners'><value>user@localhost</value><value>"
               "bob@localhost</value></field></x></query></iq>"),
        SEND("<iq type='result' from='" ROOM "' id='h3'/>"),
        EVENT("iq submit OK"),
        /* history, then the subject, then live messages */
        SEND("<message type='groupchat' from='" ROOM "/Bob'><body>old</body><delay "
             "xmlns='urn:xmpp:delay' stamp='2026-01-01T10:00:00Z' from='" ROOM "'/></message>"
             "<message type='groupchat' from='" ROOM "'><subject/></message>"
             "<message type='groupchat' from='" ROOM "/Bob'><body>new</body></message>"),
        EVENT("muc message Bob: old at 2026-01-01T10:00:00Z"),
        EVENT("muc subject " ROOM " by -: '' now ''"),
        EVENT("muc message Bob: new"),
        CALL(muc_talk),
        EXPECT("<message type='groupchat' to='" ROOM "' id='h4'><body>hello &lt;all&gt;</body>"
               "</message><message type='groupchat' to='" ROOM "'><subject>plans</subject>"
               "</message><message to='" ROOM "' id='h5'><x xmlns='" MUC_USER "'><invite "
               "to='carol@localhost'><reason>join us</reason></invite></x></message>"
               "<message to='other@muc.localhost' id='h6'><x xmlns='" MUC_USER "'><decline "
               "to='dave@localhost'/></x></message>"),
        SEND("<message type='groupchat' from='" ROOM "/Alice'><subject>plans</subject></message>"
             "<message from='" ROOM "'><x xmlns='" MUC_USER "'><decline "
             "from='carol@localhost'><reason>busy</reason></decline></x></message>"
             "<message from='" ROOM "'><x xmlns='" MUC_USER "'><invite "
             "from='bob@localhost/pc'><reason>again</reason></invite><password>cauldron"
             "</password></x></message>"
             "<message from='eve@localhost/x'><x xmlns='jabber:x:conference' "
             "jid='party@muc.localhost' reason='fun'/></message>"
             "<message type='error' from='" ROOM "' id='h4'><error type='auth'><forbidden "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>"),
        EVENT("muc subject " ROOM " by Alice: 'plans' now 'plans'"),
        EVENT("muc declined " ROOM " by carol@localhost: busy"),
        EVENT("muc invitation " ROOM " from bob@localhost/pc reason=again password=cauldron"),
        EVENT("muc invitation party@muc.localhost from eve@localhost/x reason=fun password=- "
              "direct"),
        EVENT("muc error " ROOM " h4 forbidden -"),
        /* Bob becomes Robert, then is kicked */
        SEND("<presence type='unavailable' from='" ROOM "/Bob'><x xmlns='" MUC_USER "'><item "
             "nick='Robert' affiliation='member' role='participant'/><status code='303'/></x>"
             "</presence>" OCC("Robert", "affiliation='member' role='participant'", "")
                 OCC("Robert", "affiliation='member' role='visitor'",
                     "") "<presence type='unavailable' from='" ROOM "/Robert'><x xmlns='" MUC_USER
                         "'><item "
                         "affiliation='member' role='none'/><status code='307'/></x></presence>"),
        EVENT("muc occupant left Bob jid=bob@localhost/pc member/participant new=Robert code=0"),
        EVENT("muc occupant joined Robert jid=- member/participant code=0"),
        EVENT("muc occupant changed Robert jid=- member/visitor code=0"),
        EVENT("muc occupant left Robert jid=- member/visitor code=307"),
        CALL(muc_leave),
        EXPECT("<presence type='unavailable' to='" ROOM "/Alice'><status>bye</status></presence>"),
        SEND("<presence type='unavailable' from='" ROOM "/Alice'><x xmlns='" MUC_USER "'><item "
             "affiliation='owner' role='none'/><status code='110'/></x></presence>"),
        EVENT("muc left " ROOM " 0 -"),
        CALL(muc_join_two),
        EXPECT("<presence to='busy@muc.localhost/Alice'><x "
               "xmlns='http://jabber.org/protocol/muc'/></presence>"
               "<presence to='doomed@muc.localhost/Alice'><x "
               "xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"),
        SEND("<presence type='error' from='busy@muc.localhost/Alice'><error type='cancel'>"
             "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>"
             "<presence from='doomed@muc.localhost/Alice'><x xmlns='" MUC_USER "'><item "
             "affiliation='member' role='participant'/><status code='110'/></x></presence>"
             "<presence type='unavailable' from='doomed@muc.localhost/Alice'><x xmlns='" MUC_USER
             "'><item affiliation='none' role='none'/><destroy><reason>closing</reason></destroy>"
             "<status code='110'/></x></presence>"),
        EVENT("muc joined busy@muc.localhost ESTANZA conflict"),
        EVENT("muc joined doomed@muc.localhost OK"),
        EVENT("muc left doomed@muc.localhost 5 closing"),
        CALL(muc_check_none),
        CALL(disconnect),
        EXPECT(CLOSE_TAG),
        SEND(CLOSE_TAG),
        EVENT("disconnected OK"),
        END,
    };
    finish(f, script);
}

static void muc_join_plain(fake_t *f)
{
    assert_int_equal(hearth_muc_join(hearth_muc_get(f->client), ROOM, "Alice", NULL, NULL), 0);
}

/* A new session after the connection dropped: the room is joined again, without history; when
 * the client gives up, the room is left (OFFLINE). A form request pending when the client is
 * freed goes with it. */
static void muc_fetch_and_give_up(fake_t *f)
{
    assert_int_equal(hearth_muc_fetch_form(the_room(f), form_cb, f), 0);
}

static void test_muc_rejoin(void **state)
{
    (void)state;
    fake_t *f = start(reconnecting);
    hearth_muc_t *m;
    assert_int_equal(hearth_muc_new(f->client, &muc_events, f, &m), 0);
    go(f);
    const step_t script[] = {
        LOGIN(F_BIND),
        BIND("h1"),
        EVENT("online user@localhost/phone"),
        EXPECT("<presence/>"),
        CALL(muc_join_plain),
        EXPECT("<presence to='" ROOM "/Alice'><x xmlns='http://jabber.org/protocol/muc'/>"
               "</presence>"),
        SEND(OCC("Alice", "affiliation='member' role='participant'", "<status code='110'/>")),
        EVENT("muc joined " ROOM " OK"),
        CLOSE,
        EVENT("disconnected ECLOSED reconnect 573"),
        ADVANCE_RECONNECT,
        LOGIN(F_BIND),
        BIND("h2"),
        EVENT("online user@localhost/phone"),
        EXPECT("<presence to='" ROOM "/Alice'><x xmlns='http://jabber.org/protocol/muc'><history "
               "maxstanzas='0'/></x></presence>"),
        EXPECT("<presence/>"),
        SEND(OCC("Alice", "affiliation='member' role='participant'", "<status code='110'/>")),
        EVENT("muc joined " ROOM " OK"),
        CALL(muc_fetch_and_give_up),
        EXPECT("<iq type='get' to='" ROOM "' id='h3'><query "
               "xmlns='http://jabber.org/protocol/muc#owner'/></iq>"),
        END,
    };
    finish(f, script);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roster_versioned),
        cmocka_unit_test(test_roster_unversioned_replace),
        cmocka_unit_test(test_roster_set_and_remove),
        cmocka_unit_test(test_roster_bound),
        cmocka_unit_test(test_presence),
        cmocka_unit_test(test_presence_accept_all),
        cmocka_unit_test(test_chat),
        cmocka_unit_test(test_chat_receipts_by_hand),
        cmocka_unit_test(test_managers_freed_early),
        cmocka_unit_test(test_client_freed_in_manager_event),
        cmocka_unit_test(test_muc),
        cmocka_unit_test(test_muc_rejoin),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    OPENSSL_thread_stop();
    return rc;
}
