"""Personal eventing (XEP-0163) on every account, over XEP-0060: publish with and without item
ids, auto-create, publish-options as preconditions, items (all, max_items, by id), retract with
notify, purge, delete, node configuration, affiliations, the four access models for retrieval
and for notifications, notifications filtered by entity capabilities (XEP-0115, learnt from
presence, answered disco#info checked against the hash and cached server-wide), the last item
sent at login and to a new subscriber, bad input with the XEP's errors and nothing stored,
quotas, persistence across a restart, and an account that goes losing its nodes.

Clients here answer the server's disco#info about their caps themselves (PepClient)."""

import base64
import hashlib

from hearth import DOMAIN, NS_CLIENT, NS_STANZAS, main, q, to_str, wait_for, xml_escape
from imlib import IQ, MESSAGE, IMClient, IMTestCase, app_error, err, is_iq, make_state

NS_PS = 'http://jabber.org/protocol/pubsub'
NS_EV = NS_PS + '#event'
NS_OWNER = NS_PS + '#owner'
NS_ERRS = NS_PS + '#errors'
NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_CAPS = 'http://jabber.org/protocol/caps'
NS_DATA = 'jabber:x:data'
NS_DELAY = 'urn:xmpp:delay'
NS_REGISTER = 'jabber:iq:register'
TUNE = 'http://jabber.org/protocol/tune'
MOOD = 'http://jabber.org/protocol/mood'

AJ, BJ, CJ, DJ, EJ = ('%s@%s' % (u, DOMAIN) for u in ('alice', 'bob', 'carol', 'dave', 'eve'))
CAPS_NODE = 'https://hearth.example/pep-test'


def caps_ver(identities, features, hash_name='sha1'):
    """XEP-0115 5.1 (no extended forms)."""
    s = ''.join('%s/%s//%s<' % i for i in sorted(identities))
    s += ''.join(f + '<' for f in sorted(features))
    return base64.b64encode(hashlib.new(hash_name, s.encode()).digest()).decode()


class PepClient(IMClient):
    """An IMClient with entity capabilities: its presence carries <c/>, and it answers the
    server's disco#info about them (counting the questions)."""

    def __init__(self, server, notify=(), wrong_hash=False, **kw):
        super().__init__(server, **kw)
        self.identities = [('client', 'pc', 'hearth test')]
        self.caps_features = [NS_DISCO_INFO, NS_CAPS] + ['%s+notify' % n for n in notify]
        self.ver = caps_ver(self.identities, self.caps_features)
        self.advertised = self.ver if not wrong_hash else caps_ver(self.identities, [NS_DISCO_INFO])
        self.queries = []

    def caps(self):
        return "<c xmlns='%s' hash='sha-1' node='%s' ver='%s'/>" % (NS_CAPS, CAPS_NODE, self.advertised)

    def _auto(self, s):
        qy = s.find(q(NS_DISCO_INFO, 'query'))
        if s.tag == IQ and s.get('type') == 'get' and qy is not None and s.get('from') == DOMAIN:
            self.queries.append(qy.get('node'))
            inner = ''.join("<identity category='%s' type='%s' name='%s'/>" % i for i in self.identities)
            inner += ''.join("<feature var='%s'/>" % xml_escape(f) for f in self.caps_features)
            self.send("<iq type='result' id='%s' to='%s'><query xmlns='%s' node='%s'>%s</query></iq>"
                      % (xml_escape(s.get('id')), DOMAIN, NS_DISCO_INFO, xml_escape(qy.get('node') or ''),
                         inner))
            return True
        return super()._auto(s)


class ExampleClient(PepClient):
    """A client whose disco#info answer is given as it goes on the wire (answer), with the caps
    element given whole (c): for XEP-0115's own examples and for ill-formed answers."""

    def __init__(self, server, c, answer, **kw):
        super().__init__(server, **kw)
        self.c, self.answer = c, answer

    def caps(self):
        return self.c

    def _auto(self, s):
        qy = s.find(q(NS_DISCO_INFO, 'query'))
        if s.tag == IQ and s.get('type') == 'get' and qy is not None and s.get('from') == DOMAIN:
            self.queries.append(qy.get('node'))
            self.send("<iq type='result' id='%s' to='%s'><query xmlns='%s' node='%s'>%s</query></iq>"
                      % (xml_escape(s.get('id')), DOMAIN, NS_DISCO_INFO, xml_escape(qy.get('node') or ''),
                         self.answer))
            return True
        return IMClient._auto(self, s)


# XEP-0115 5.3, the complex generation example (identities in two languages, an extended form),
# its parts in another order than the hash takes them, and a form without a hidden FORM_TYPE,
# which 5.4 says to ignore.
PSI_NODE = 'http://psi-im.org'
PSI_VER = 'q07IKJEyjvHSyhy//CH0CxmKi8w='
PSI_ANSWER = (
    "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"
    "<identity xml:lang='el' category='client' name='\u03a8 0.11' type='pc'/>"
    "<feature var='http://jabber.org/protocol/disco#items'/>"
    "<feature var='http://jabber.org/protocol/caps'/>"
    "<feature var='http://jabber.org/protocol/muc'/>"
    "<feature var='http://jabber.org/protocol/disco#info'/>"
    "<x xmlns='jabber:x:data' type='result'>"
    "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>"
    "<field var='software_version'><value>0.11</value></field>"
    "<field var='software'><value>Psi</value></field>"
    "<field var='os_version'><value>10.5.1</value></field>"
    "<field var='os'><value>Mac</value></field>"
    "<field var='ip_version' type='text-multi'><value>ipv6</value><value>ipv4</value></field></x>"
    "<x xmlns='jabber:x:data' type='result'>"
    "<field var='FORM_TYPE'><value>urn:example:not-hidden</value></field>"
    "<field var='ignored'><value>yes</value></field></x>")


# ---- stanzas ----

def publish_xml(node, payload, item_id=None, options=None):
    idattr = " id='%s'" % xml_escape(item_id) if item_id is not None else ''
    opts = ''
    if options is not None:
        fields = ''.join("<field var='%s'><value>%s</value></field>" % (k, xml_escape(v))
                         for k, v in options.items())
        opts = ("<publish-options><x xmlns='%s' type='submit'><field var='FORM_TYPE' type='hidden'>"
                "<value>%s#publish-options</value></field>%s</x></publish-options>" % (NS_DATA, NS_PS, fields))
    return ("<pubsub xmlns='%s'><publish node='%s'><item%s>%s</item></publish>%s</pubsub>"
            % (NS_PS, xml_escape(node), idattr, payload, opts))


def tune(artist):
    return "<tune xmlns='%s'><artist>%s</artist></tune>" % (TUNE, xml_escape(artist))


def config_form(fields, form_type=NS_PS + '#node_config', type_='submit'):
    inner = ''
    for k, v in fields.items():
        vals = v if isinstance(v, (list, tuple)) else [v]
        inner += "<field var='%s'>%s</field>" % (k, ''.join('<value>%s</value>' % xml_escape(x) for x in vals))
    return ("<x xmlns='%s' type='%s'><field var='FORM_TYPE' type='hidden'><value>%s</value></field>%s</x>"
            % (NS_DATA, type_, form_type, inner))


BOOKMARKS = 'urn:xmpp:bookmarks:1'
ROOM1, ROOM2, ROOM3 = ('%s@conference.%s' % (r, DOMAIN) for r in ('orchard', 'cellar', 'attic'))
# What XEP-0402 3.3 asks a client to publish with: a private node (XEP-0223) of any size.
BOOKMARK_OPTIONS = {'pubsub#persist_items': 'true', 'pubsub#max_items': 'max',
                    'pubsub#send_last_published_item': 'never', 'pubsub#access_model': 'whitelist'}


def bookmark(name):
    return ("<conference xmlns='%s' name='%s' autojoin='true'><nick>al</nick></conference>"
            % (BOOKMARKS, xml_escape(name)))


def is_event(node=None, kind='items'):
    def pred(s):
        if s.tag != MESSAGE:
            return False
        ev = s.find(q(NS_EV, 'event'))
        if ev is None:
            return False
        el = ev.find(q(NS_EV, kind))
        return el is not None and (node is None or el.get('node') == node)
    return pred


def event_items(s, node):
    items = s.find(q(NS_EV, 'event')).find(q(NS_EV, 'items'))
    assert items is not None and items.get('node') == node, to_str(s)
    return items


def result_items(r, node):
    items = r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'items'))
    assert items is not None and items.get('node') == node, to_str(r)
    return [(i.get('id'), i) for i in items.findall(q(NS_PS, 'item'))]


def artists(r, node):
    return [(i, it.find(q(TUNE, 'tune')).find(q(TUNE, 'artist')).text) for i, it in result_items(r, node)]


class PepTest(IMTestCase):
    users = {'alice': 'wonderland', 'bob': 'builder', 'carol': 'singer', 'dave': 'diver', 'eve': 'evening'}

    # -- helpers ------------------------------------------------------------

    def pep(self, server, user, resource, notify=(), presence=True, priority=None, **kw):
        """A PepClient logged in, roster asked, available with caps (and its caps settled)."""
        c = PepClient(server, notify=notify, **kw)
        self.addCleanup(c.close)
        c.user = user
        c.password = self.users[user]
        c.login(user, c.password, resource=resource)
        r = c.roster_get()
        self.assertEqual(r.get('type'), 'result', to_str(r))
        if presence:
            c.presence(children=c.caps(), priority=priority)
            c.sync()
            c.sync()  # a disco#info the server asked is answered and taken by then
        return c

    def ok(self, r):
        self.assertEqual(r.get('type'), 'result', to_str(r))
        return r

    def assert_error(self, r, cond, app=None, etype=None):
        self.assertEqual(r.get('type'), 'error', to_str(r))
        got = err(r)
        self.assertEqual(got[1], cond, to_str(r))
        if etype:
            self.assertEqual(got[0], etype, to_str(r))
        a = app_error(r, NS_ERRS)
        if app is None:
            self.assertIsNone(a, to_str(r))
        else:
            self.assertIsNotNone(a, to_str(r))
            self.assertEqual(a.tag, q(NS_ERRS, app), to_str(r))
        return a

    def items(self, c, node, to=None, extra='', inner=''):
        return c.iq('get', "<pubsub xmlns='%s'><items node='%s'%s>%s</items></pubsub>"
                    % (NS_PS, xml_escape(node), extra, inner), to=to)

    def configure(self, c, node, fields):
        return c.iq('set', "<pubsub xmlns='%s'><configure node='%s'>%s</configure></pubsub>"
                    % (NS_OWNER, xml_escape(node), config_form(fields)))

    def config_of(self, c, node):
        r = self.ok(c.iq('get', "<pubsub xmlns='%s'><configure node='%s'/></pubsub>" % (NS_OWNER, node)))
        x = r.find(q(NS_OWNER, 'pubsub')).find(q(NS_OWNER, 'configure')).find(q(NS_DATA, 'x'))
        return {f.get('var'): [v.text or '' for v in f.findall(q(NS_DATA, 'value'))]
                for f in x.findall(q(NS_DATA, 'field'))}

    def no_event(self, *clients):
        for c in clients:
            c.expect_none(is_event(), 'pubsub event')

    def setup_contacts(self, s, alice, **others):
        """alice in a 'both' subscription with each of the other clients."""
        for c in others.values():
            make_state(self, alice, c, 'both')

    # -- publishing and notifications ---------------------------------------

    def test_publish_notifies_by_caps_and_presence(self):
        s = self.start_server()
        a1 = self.pep(s, 'alice', 'desk', notify=[TUNE])
        a2 = self.pep(s, 'alice', 'phone', notify=[MOOD])  # does not want tunes
        b = self.pep(s, 'bob', 'b', notify=[TUNE])
        c = self.pep(s, 'carol', 'c', notify=[MOOD])
        d = self.pep(s, 'dave', 'd', notify=[TUNE])  # not in alice's roster
        make_state(self, a1, b, 'both')
        make_state(self, a1, c, 'both')
        for x in (a2,):
            x.take()

        r = self.ok(a1.iq('set', publish_xml(TUNE, tune('Finzi'))))
        pub = r.find(q(NS_PS, 'pubsub')).find(q(NS_PS, 'publish'))
        self.assertEqual(pub.get('node'), TUNE)
        item_id = pub.find(q(NS_PS, 'item')).get('id')
        self.assertTrue(item_id, to_str(r))  # generated and told (XEP-0060 7.1.2)

        for x in (a1, b):
            m = x.wait(is_event(TUNE), what='tune event')
            self.assertEqual(m.get('from'), AJ, to_str(m))
            self.assertEqual(m.get('to'), x.jid, to_str(m))
            self.assertEqual(m.get('type'), 'headline', to_str(m))
            it = event_items(m, TUNE).find(q(NS_EV, 'item'))
            self.assertEqual(it.get('id'), item_id)
            self.assertEqual(it.find(q(TUNE, 'tune')).find(q(TUNE, 'artist')).text, 'Finzi')
        self.no_event(a2, c, d)

        # Bob's second resource without caps, and one with negative priority, get nothing.
        b2 = self.pep(s, 'bob', 'nocaps', presence=False)
        b2.presence()
        b3 = self.pep(s, 'bob', 'neg', notify=[TUNE], priority=-1)
        b.take()
        self.ok(a1.iq('set', publish_xml(TUNE, tune('Byrd'), 'second')))
        b.wait(is_event(TUNE), what='second tune event')
        self.no_event(b2, b3)

    def test_last_item_at_login_and_caps_learnt_later(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk', notify=[TUNE])
        b = self.pep(s, 'bob', 'b', notify=[TUNE])
        make_state(self, a, b, 'both')
        self.ok(a.iq('set', publish_xml(TUNE, tune('Tallis'), 'it1')))
        a.wait(is_event(TUNE))
        b.wait(is_event(TUNE))
        b.logout()

        # A user who logs in later gets the last item, with its delay (XEP-0163 4.3.4).
        b = self.pep(s, 'bob', 'later', notify=[TUNE])
        m = b.wait(is_event(TUNE), what='last published item at login')
        self.assertEqual(m.get('from'), AJ)
        self.assertEqual(event_items(m, TUNE).find(q(NS_EV, 'item')).get('id'), 'it1')
        self.assertIsNotNone(m.find(q(NS_DELAY, 'delay')), to_str(m))
        # The owner's own new resource too.
        a2 = self.pep(s, 'alice', 'other', notify=[TUNE])
        a2.wait(is_event(TUNE), what='own last item at login')
        # Carol is no contact: nothing, whatever her caps say.
        c = self.pep(s, 'carol', 'c', notify=[TUNE])
        self.no_event(c)

        # Caps that change to want the node: the last item follows (and only once).
        m2 = self.pep(s, 'bob', 'mood', notify=[MOOD])
        self.no_event(m2)
        m2.caps_features.append(TUNE + '+notify')
        m2.ver = m2.advertised = caps_ver(m2.identities, m2.caps_features)
        m2.presence(children=m2.caps())
        m2.wait(is_event(TUNE), what='last item once the caps ask for it')
        m2.presence(children=m2.caps(), status='again')
        self.no_event(m2)

    def test_notifications_without_payloads_on_a_node_that_keeps_items(self):
        # XEP-0060 7.1.2.2 / 6.5: deliver_payloads off and persist_items on: the event names the
        # item (no payload), a fetch returns it, and the last item at login comes without it too.
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk')
        b = self.pep(s, 'bob', 'b', notify=[TUNE])
        make_state(self, a, b, 'both')
        self.ok(a.iq('set', "<pubsub xmlns='%s'><create node='%s'/><configure>%s</configure></pubsub>"
                     % (NS_PS, TUNE, config_form({'pubsub#persist_items': '1', 'pubsub#deliver_payloads': '0',
                                                  'pubsub#max_items': '5'}))))
        b.sync()
        b.take()
        self.ok(a.iq('set', publish_xml(TUNE, tune('Byrd'), 'np1')))
        it = event_items(b.wait(is_event(TUNE), what='notification without payload'), TUNE).find(q(NS_EV, 'item'))
        self.assertEqual((it.get('id'), list(it), it.text), ('np1', [], None), to_str(it))
        self.assertEqual(artists(self.ok(self.items(b, TUNE, to=AJ)), TUNE), [('np1', 'Byrd')])
        self.ok(a.iq('set', publish_xml(TUNE, tune('Dowland'), 'np2')))
        b.wait(is_event(TUNE))
        self.assertEqual(artists(self.ok(self.items(b, TUNE, to=AJ)), TUNE), [('np1', 'Byrd'), ('np2', 'Dowland')])
        b.logout()
        b = self.pep(s, 'bob', 'later', notify=[TUNE])
        m = b.wait(is_event(TUNE), what='last item at login')
        it = event_items(m, TUNE).find(q(NS_EV, 'item'))
        self.assertEqual((it.get('id'), list(it)), ('np2', []), to_str(m))
        self.assertIsNotNone(m.find(q(NS_DELAY, 'delay')), to_str(m))

    def test_last_item_from_an_owner_who_is_offline(self):
        # PEP is persistent: a contact that comes online gets the last item even when the owner
        # has no session and its account is not loaded (here after a restart).
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk', notify=[TUNE])
        b = self.pep(s, 'bob', 'b', notify=[TUNE])
        make_state(self, a, b, 'both')
        self.ok(a.iq('set', publish_xml(TUNE, tune('Gibbons'), 'g1')))
        b.wait(is_event(TUNE))
        a.logout()
        b.logout()
        s.restart()
        b = self.pep(s, 'bob', 'again', notify=[TUNE])
        m = b.wait(is_event(TUNE), what='last item from an offline owner')
        self.assertEqual(m.get('from'), AJ)
        it = event_items(m, TUNE).find(q(NS_EV, 'item'))
        self.assertEqual((it.get('id'), it.find(q(TUNE, 'tune')).find(q(TUNE, 'artist')).text), ('g1', 'Gibbons'))
        self.assertIsNotNone(m.find(q(NS_DELAY, 'delay')), to_str(m))

    def test_caps_cache_and_hash_check(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk', notify=[TUNE])
        self.assertEqual(len(a.queries), 1, a.queries)
        self.assertEqual(a.queries[0], '%s#%s' % (CAPS_NODE, a.ver))
        # Same caps on another resource (another worker too): no question, the cache knows.
        b = self.pep(s, 'bob', 'b', notify=[TUNE])
        self.assertEqual(b.queries, [])
        make_state(self, a, b, 'both')
        # A client whose hash does not match its features: asked each time, never cached, but
        # its own features still count for it.
        c1 = self.pep(s, 'carol', 'c1', notify=[TUNE], wrong_hash=True)
        c2 = self.pep(s, 'carol', 'c2', notify=[TUNE], wrong_hash=True)
        self.assertEqual(len(c1.queries), 1)
        self.assertEqual(len(c2.queries), 1)
        make_state(self, a, c1, 'both')
        c2.take()
        self.ok(a.iq('set', publish_xml(TUNE, tune('Dowland'))))
        for x in (a, b, c1, c2):
            x.wait(is_event(TUNE), what='tune event')
        # A client that never answers the question gets nothing, and nothing breaks.
        d = IMClient(s)
        self.addCleanup(d.close)
        d.login('dave', self.users['dave'], resource='mute')
        d.presence(children="<c xmlns='%s' hash='sha-1' node='x' ver='unknown-ver='/>" % NS_CAPS)
        qy = d.wait(lambda st: is_iq(st, 'get') and st.find(q(NS_DISCO_INFO, 'query')) is not None,
                    what='caps question')
        self.assertEqual(qy.get('from'), DOMAIN)
        self.assertEqual(qy.find(q(NS_DISCO_INFO, 'query')).get('node'), 'x#unknown-ver=')
        d.sync()

    def test_caps_verified_as_xep_0115_computes_it(self):
        s = self.start_server()

        def psi(user, resource, hash_name='sha-1', ver=PSI_VER, answer=PSI_ANSWER):
            c = ExampleClient(s, "<c xmlns='%s' hash='%s' node='%s' ver='%s'/>" % (NS_CAPS, hash_name, PSI_NODE, ver),
                              answer)
            self.addCleanup(c.close)
            c.login(user, self.users[user], resource=resource)
            c.presence(children=c.caps())
            c.sync()
            c.sync()
            return c
        # 5.3's example, forms and all: verified, so the second client with it is not asked.
        a = psi('alice', 'psi')
        self.assertEqual(a.queries, ['%s#%s' % (PSI_NODE, PSI_VER)])
        b = psi('bob', 'psi')
        self.assertEqual(b.queries, [])
        # The same answer under sha-256: verified and cached as well.
        ver256 = base64.b64encode(hashlib.sha256(
            ('client/pc/el/\u03a8 0.11<client/pc/en/Psi 0.11<http://jabber.org/protocol/caps<'
             'http://jabber.org/protocol/disco#info<http://jabber.org/protocol/disco#items<'
             'http://jabber.org/protocol/muc<urn:xmpp:dataforms:softwareinfo<ip_version<ipv4<ipv6<os<Mac<'
             'os_version<10.5.1<software<Psi<software_version<0.11<').encode()).digest()).decode()
        c = psi('carol', 'psi', 'sha-256', ver256)
        self.assertEqual(len(c.queries), 1)
        d = psi('dave', 'psi', 'sha-256', ver256)
        self.assertEqual(d.queries, [])
        self.assertNotIn('does not match', s.current_log())
        # An answer that names a feature twice is ill-formed (5.4): not cached, asked again.
        twice = PSI_ANSWER + "<feature var='http://jabber.org/protocol/muc'/>"
        e1 = psi('eve', 'one', ver='bm90LXRoZS1zYW1lLXZlcg==', answer=twice)
        e2 = psi('eve', 'two', ver='bm90LXRoZS1zYW1lLXZlcg==', answer=twice)
        self.assertEqual((len(e1.queries), len(e2.queries)), (1, 1))
        s.wait_log('ill-formed', count=2)

    def test_publish_options(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk')
        node = 'urn:example:omemo-like'
        # Auto-created with the options as its configuration.
        self.ok(a.iq('set', publish_xml(node, tune('One'), 'current',
                                        {'pubsub#access_model': 'open', 'pubsub#max_items': 'max'})))
        cfg = self.config_of(a, node)
        self.assertEqual(cfg['pubsub#access_model'], ['open'])
        self.assertEqual(cfg['pubsub#max_items'], ['max'])
        # Met: published.
        self.ok(a.iq('set', publish_xml(node, tune('Two'), 'current', {'pubsub#access_model': 'open'})))
        # Not met: conflict / precondition-not-met, nothing stored.
        r = a.iq('set', publish_xml(node, tune('Three'), 'current', {'pubsub#access_model': 'presence'}))
        self.assert_error(r, 'conflict', 'precondition-not-met', 'cancel')
        r = a.iq('set', publish_xml(node, tune('Four'), 'other', {'pubsub#max_items': '5'}))
        self.assert_error(r, 'conflict', 'precondition-not-met')
        # An option this service does not know is refused (7.1.5).
        r = a.iq('set', publish_xml(node, tune('Five'), 'other', {'pubsub#frobnicate': '1'}))
        self.assert_error(r, 'conflict', 'precondition-not-met')
        self.assertEqual(artists(self.ok(self.items(a, node)), node), [('current', 'Two')])
        # 'max' and the service's number are the same precondition.
        self.ok(a.iq('set', publish_xml(node, tune('Six'), 'current', {'pubsub#max_items': '1000'})))

    def test_max_items_above_the_cap(self):
        s = self.start_server(pep__max_items='20')
        a = self.pep(s, 'alice', 'desk')
        n = 'urn:example:capped'
        # publish-options (auto-create) asking for more than pep.max_items: not-acceptable, no node
        self.assert_error(a.iq('set', publish_xml(n, tune('x'), 'x', {'pubsub#max_items': '21'})), 'not-acceptable')
        self.assert_error(self.items(a, n), 'item-not-found')
        # the cap itself, and 'max', are fine, and read back as given
        self.ok(a.iq('set', publish_xml(n, tune('x'), 'x', {'pubsub#max_items': '20'})))
        self.assertEqual(self.config_of(a, n)['pubsub#max_items'], ['20'])
        self.ok(a.iq('set', publish_xml(n + ':max', tune('x'), 'x', {'pubsub#max_items': 'max'})))
        self.assertEqual(self.config_of(a, n + ':max')['pubsub#max_items'], ['max'])
        # configuring above it too
        self.assert_error(self.configure(a, n, {'pubsub#max_items': '21'}), 'not-acceptable')
        self.assertEqual(self.config_of(a, n)['pubsub#max_items'], ['20'])

    def test_max_items_and_retrieval(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk')
        n = 'urn:example:list'
        for i, who in enumerate(['A', 'B', 'C']):
            self.ok(a.iq('set', publish_xml(n, tune(who), 'i%d' % i, {'pubsub#max_items': '2'})))
        self.assertEqual(artists(self.ok(self.items(a, n)), n), [('i1', 'B'), ('i2', 'C')])
        self.assertEqual(artists(self.ok(self.items(a, n, extra=" max_items='1'")), n), [('i2', 'C')])
        by_id = self.ok(self.items(a, n, inner="<item id='i1'/><item id='nope'/>"))
        self.assertEqual(artists(by_id, n), [('i1', 'B')])
        # Republishing an id replaces the item and makes it the newest.
        self.ok(a.iq('set', publish_xml(n, tune('B2'), 'i1')))
        self.assertEqual(artists(self.ok(self.items(a, n)), n), [('i2', 'C'), ('i1', 'B2')])
        # A node configured for fewer items drops the oldest.
        self.ok(self.configure(a, n, {'pubsub#max_items': '1'}))
        self.assertEqual(artists(self.ok(self.items(a, n)), n), [('i1', 'B2')])
        # Default: one item.
        self.ok(a.iq('set', publish_xml(TUNE, tune('x'), 'a')))
        self.ok(a.iq('set', publish_xml(TUNE, tune('y'), 'b')))
        self.assertEqual(artists(self.ok(self.items(a, TUNE)), TUNE), [('b', 'y')])
        self.assert_error(self.items(a, 'no-such-node'), 'item-not-found')
        self.assert_error(self.items(a, n, extra=" max_items='zero'"), 'bad-request')

    def test_retract_with_notify(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk', notify=[TUNE])
        b = self.pep(s, 'bob', 'b', notify=[TUNE])
        make_state(self, a, b, 'both')
        self.ok(a.iq('set', publish_xml(TUNE, tune('one'), 'x1', {'pubsub#max_items': '5'})))
        self.ok(a.iq('set', publish_xml(TUNE, tune('two'), 'x2')))
        for x in (a, b):
            x.wait_n(is_event(TUNE), 2)
        self.ok(a.iq('set', "<pubsub xmlns='%s'><retract node='%s' notify='true'><item id='x1'/></retract></pubsub>"
                     % (NS_PS, TUNE)))
        for x in (a, b):
            m = x.wait(is_event(TUNE), what='retract event')
            r = event_items(m, TUNE).find(q(NS_EV, 'retract'))
            self.assertIsNotNone(r, to_str(m))
            self.assertEqual(r.get('id'), 'x1')
        # Without notify (and notify_retract off): retracted silently.
        self.ok(a.iq('set', "<pubsub xmlns='%s'><retract node='%s'><item id='x2'/></retract></pubsub>"
                     % (NS_PS, TUNE)))
        self.no_event(a, b)
        self.assertEqual(result_items(self.ok(self.items(a, TUNE)), TUNE), [])
        # With notify_retract on, a retraction notifies without asking.
        self.ok(self.configure(a, TUNE, {'pubsub#notify_retract': 'true'}))
        self.ok(a.iq('set', publish_xml(TUNE, tune('three'), 'x3')))
        b.wait(is_event(TUNE))
        self.ok(a.iq('set', "<pubsub xmlns='%s'><retract node='%s'><item id='x3'/></retract></pubsub>"
                     % (NS_PS, TUNE)))
        m = b.wait(is_event(TUNE), what='retract event by configuration')
        self.assertIsNotNone(event_items(m, TUNE).find(q(NS_EV, 'retract')))
        # Errors: no such item; no item id; not the owner.
        r = a.iq('set', "<pubsub xmlns='%s'><retract node='%s'><item id='gone'/></retract></pubsub>" % (NS_PS, TUNE))
        self.assert_error(r, 'item-not-found')
        r = a.iq('set', "<pubsub xmlns='%s'><retract node='%s'><item/></retract></pubsub>" % (NS_PS, TUNE))
        self.assert_error(r, 'bad-request', 'item-required')
        r = b.iq('set', "<pubsub xmlns='%s'><retract node='%s'><item id='x1'/></retract></pubsub>" % (NS_PS, TUNE),
                 to=AJ)
        self.assert_error(r, 'forbidden')

    def test_purge_delete_and_configuration_events(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk', notify=[TUNE])
        b = self.pep(s, 'bob', 'b', notify=[TUNE])
        make_state(self, a, b, 'both')
        self.ok(a.iq('set', publish_xml(TUNE, tune('one'), 'p1', {'pubsub#notify_retract': '1'})))
        b.wait(is_event(TUNE))
        self.ok(a.iq('set', "<pubsub xmlns='%s'><purge node='%s'/></pubsub>" % (NS_OWNER, TUNE)))
        m = b.wait(is_event(TUNE, 'purge'), what='purge event')
        self.assertEqual(result_items(self.ok(self.items(a, TUNE)), TUNE), [])
        self.ok(self.configure(a, TUNE, {'pubsub#notify_config': '1', 'pubsub#title': 'What I hear'}))
        m = b.wait(is_event(TUNE, 'configuration'), what='configuration event')
        x = m.find(q(NS_EV, 'event')).find(q(NS_EV, 'configuration')).find(q(NS_DATA, 'x'))
        self.assertIsNotNone(x, to_str(m))
        self.ok(a.iq('set', "<pubsub xmlns='%s'><delete node='%s'/></pubsub>" % (NS_OWNER, TUNE)))
        b.wait(is_event(TUNE, 'delete'), what='delete event')
        self.assert_error(self.items(a, TUNE), 'item-not-found')
        self.assert_error(a.iq('set', "<pubsub xmlns='%s'><delete node='%s'/></pubsub>" % (NS_OWNER, TUNE)),
                          'item-not-found')
        # Owner requests from someone else.
        self.assert_error(b.iq('set', "<pubsub xmlns='%s'><purge node='x'/></pubsub>" % NS_OWNER, to=AJ),
                          'forbidden')
        # Create, then create again.
        self.ok(a.iq('set', "<pubsub xmlns='%s'><create node='made'/><configure>%s</configure></pubsub>"
                     % (NS_PS, config_form({'pubsub#access_model': 'whitelist'}))))
        self.assertEqual(self.config_of(a, 'made')['pubsub#access_model'], ['whitelist'])
        self.assert_error(a.iq('set', "<pubsub xmlns='%s'><create node='made'/></pubsub>" % NS_PS), 'conflict')
        self.assert_error(a.iq('set', "<pubsub xmlns='%s'><create/></pubsub>" % NS_PS), 'not-acceptable',
                          'nodeid-required')
        d = self.ok(a.iq('get', "<pubsub xmlns='%s'><default/></pubsub>" % NS_OWNER))
        self.assertIsNotNone(d.find(q(NS_OWNER, 'pubsub')).find(q(NS_OWNER, 'default')).find(q(NS_DATA, 'x')))

    # -- access models ------------------------------------------------------

    def test_access_models(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk')
        b = self.pep(s, 'bob', 'b', notify=['n-presence', 'n-roster', 'n-white', 'n-open'])
        c = self.pep(s, 'carol', 'c', notify=['n-presence', 'n-roster', 'n-white', 'n-open'])
        d = self.pep(s, 'dave', 'd', notify=['n-presence', 'n-roster', 'n-white', 'n-open'])
        make_state(self, a, b, 'both')
        make_state(self, a, c, 'from')  # carol sees alice's presence, alice not hers
        self.ok(a.roster_set(BJ, groups=['Friends']))
        self.ok(a.roster_set(CJ, groups=['Work']))
        for who in ('open', 'presence', 'roster', 'white'):
            opts = {'pubsub#access_model': 'whitelist' if who == 'white' else who}
            if who == 'roster':
                opts['pubsub#roster_groups_allowed'] = 'Friends'
            self.ok(a.iq('set', publish_xml('n-' + who, tune(who), 'i', opts)))

        def got(cl):
            cl.sync()
            return sorted(m.find(q(NS_EV, 'event')).find(q(NS_EV, 'items')).get('node')
                          for m in cl.take(is_event()))
        # Notifications: presence subscribers for open and presence; Friends for roster; nobody
        # but the owner for the whitelist.
        self.assertEqual(got(b), ['n-open', 'n-presence', 'n-roster'])
        self.assertEqual(got(c), ['n-open', 'n-presence'])
        self.assertEqual(got(d), [])

        def retrieve(cl, node):
            return self.items(cl, node, to=AJ)
        # open: anyone, even a stranger.
        self.assertEqual(artists(self.ok(retrieve(d, 'n-open')), 'n-open'), [('i', 'open')])
        # presence: only who sees alice's presence.
        self.ok(retrieve(b, 'n-presence'))
        self.ok(retrieve(c, 'n-presence'))
        self.assert_error(retrieve(d, 'n-presence'), 'not-authorized', 'presence-subscription-required', 'auth')
        # roster: subscribers in an allowed group.
        self.ok(retrieve(b, 'n-roster'))
        self.assert_error(retrieve(c, 'n-roster'), 'not-authorized', 'not-in-roster-group')
        self.assert_error(retrieve(d, 'n-roster'), 'not-authorized', 'not-in-roster-group')
        # whitelist: members only; the owner puts them there.
        self.assert_error(retrieve(b, 'n-white'), 'not-allowed', 'closed-node', 'cancel')
        r = a.iq('set', "<pubsub xmlns='%s'><affiliations node='n-white'><affiliation jid='%s' affiliation='member'/>"
                 "<affiliation jid='%s' affiliation='outcast'/></affiliations></pubsub>" % (NS_OWNER, BJ, DJ))
        self.ok(r)
        affs = self.ok(a.iq('get', "<pubsub xmlns='%s'><affiliations node='n-white'/></pubsub>" % NS_OWNER))
        listed = {x.get('jid'): x.get('affiliation') for x in affs.iter(q(NS_OWNER, 'affiliation'))}
        self.assertEqual(listed, {AJ: 'owner', BJ: 'member', DJ: 'outcast'})
        self.ok(retrieve(b, 'n-white'))
        self.assert_error(retrieve(d, 'n-white'), 'forbidden')
        self.ok(a.iq('set', publish_xml('n-white', tune('white2'), 'i')))
        self.assertEqual(got(b), ['n-white'])
        self.assertEqual(got(c), [])
        # Bob's own view of his affiliations (5.7).
        mine = self.ok(b.iq('get', "<pubsub xmlns='%s'><affiliations/></pubsub>" % NS_PS, to=AJ))
        self.assertEqual([(x.get('node'), x.get('affiliation')) for x in mine.iter(q(NS_PS, 'affiliation'))],
                         [('n-white', 'member')])
        # disco#items lists only what the requester may see (XEP-0163 6.2).
        items = self.ok(d.iq('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=AJ))
        self.assertEqual(sorted(i.get('node') for i in items.iter(q(NS_DISCO_ITEMS, 'item'))), ['n-open'])
        items = self.ok(a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=AJ))
        self.assertEqual(len(list(items.iter(q(NS_DISCO_ITEMS, 'item')))), 4)
        info = self.ok(d.iq('get', "<query xmlns='%s' node='n-open'/>" % NS_DISCO_INFO, to=AJ))
        ident = info.find(q(NS_DISCO_INFO, 'query')).find(q(NS_DISCO_INFO, 'identity'))
        self.assertEqual((ident.get('category'), ident.get('type')), ('pubsub', 'leaf'))
        self.assert_error(d.iq('get', "<query xmlns='%s' node='n-presence'/>" % NS_DISCO_INFO, to=AJ),
                          'item-not-found')
        # Subscriptions of one's own are not taken here (presence is the subscription).
        self.assert_error(d.iq('set', "<pubsub xmlns='%s'><subscribe node='n-open' jid='%s'/></pubsub>"
                               % (NS_PS, d.jid), to=AJ), 'feature-not-implemented', 'unsupported')

    def test_account_disco(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk')
        info = self.ok(a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=AJ))
        ids = [(i.get('category'), i.get('type')) for i in info.iter(q(NS_DISCO_INFO, 'identity'))]
        self.assertIn(('pubsub', 'pep'), ids)
        feats = {f.get('var') for f in info.iter(q(NS_DISCO_INFO, 'feature'))}
        for f in ('publish', 'publish-options', 'auto-create', 'retrieve-items', 'access-open',
                  'access-presence', 'access-roster', 'access-whitelist', 'filtered-notifications',
                  'last-published', 'delete-items', 'purge-nodes', 'config-node', 'persistent-items'):
            self.assertIn('%s#%s' % (NS_PS, f), feats)
        self.assertNotIn(NS_PS + '#subscribe', feats)  # not implemented: not advertised

    # -- private nodes (XEP-0223) as bookmarks use them (XEP-0402) -------------

    def test_bookmarks_in_a_private_node(self):
        s = self.start_server()
        desk = self.pep(s, 'alice', 'desk', notify=[BOOKMARKS])
        phone = self.pep(s, 'alice', 'phone', notify=[BOOKMARKS])
        b = self.pep(s, 'bob', 'b', notify=[BOOKMARKS])
        make_state(self, desk, b, 'both')
        phone.take()

        # XEP-0402 3.3: one item per room, its id the room's JID, with these publish-options.
        def add(c, room, name):
            return c.iq('set', publish_xml(BOOKMARKS, bookmark(name), room, BOOKMARK_OPTIONS))
        self.ok(add(desk, ROOM1, 'Orchard'))
        for c in (desk, phone):  # the owner's resources that want the node are told
            m = c.wait(is_event(BOOKMARKS), what='bookmark event')
            it = event_items(m, BOOKMARKS).find(q(NS_EV, 'item'))
            self.assertEqual(it.get('id'), ROOM1)
            self.assertEqual(it.find(q(BOOKMARKS, 'conference')).get('name'), 'Orchard')
        self.no_event(b)  # a contact, even one with +notify: the node is private
        self.ok(add(phone, ROOM2, 'Cellar'))  # the same options again: the precondition holds
        for c in (desk, phone):
            c.wait(is_event(BOOKMARKS), what='second bookmark event')
        cfg = self.config_of(desk, BOOKMARKS)
        self.assertEqual((cfg['pubsub#access_model'], cfg['pubsub#max_items'], cfg['pubsub#persist_items'],
                          cfg['pubsub#send_last_published_item']), (['whitelist'], ['max'], ['1'], ['never']))

        # All of them, in publication order, to the owner; nothing to anyone else.
        got = self.ok(self.items(desk, BOOKMARKS))
        self.assertEqual([(i, it.find(q(BOOKMARKS, 'conference')).get('name'))
                          for i, it in result_items(got, BOOKMARKS)], [(ROOM1, 'Orchard'), (ROOM2, 'Cellar')])
        self.assert_error(self.items(b, BOOKMARKS, to=AJ), 'not-allowed', 'closed-node', 'cancel')
        items = self.ok(b.iq('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=AJ))
        self.assertEqual(list(items.iter(q(NS_DISCO_ITEMS, 'item'))), [])

        # A resource that comes later fetches them; nothing is pushed (send_last never).
        later = self.pep(s, 'alice', 'later', notify=[BOOKMARKS])
        self.no_event(later)
        self.assertEqual(len(result_items(self.ok(self.items(later, BOOKMARKS)), BOOKMARKS)), 2)

        # Options that contradict the node: conflict / precondition-not-met, nothing stored.
        r = later.iq('set', publish_xml(BOOKMARKS, bookmark('Open'), ROOM3,
                                        dict(BOOKMARK_OPTIONS, **{'pubsub#access_model': 'open'})))
        self.assert_error(r, 'conflict', 'precondition-not-met', 'cancel')
        self.assertEqual(len(result_items(self.ok(self.items(later, BOOKMARKS)), BOOKMARKS)), 2)

        # XEP-0402 3.4: a removal is a retraction with notify, told to the owner's resources.
        self.ok(later.iq('set', "<pubsub xmlns='%s'><retract node='%s' notify='true'><item id='%s'/></retract>"
                         "</pubsub>" % (NS_PS, BOOKMARKS, ROOM1)))
        for c in (desk, phone, later):
            m = c.wait(is_event(BOOKMARKS), what='bookmark retraction')
            self.assertEqual(event_items(m, BOOKMARKS).find(q(NS_EV, 'retract')).get('id'), ROOM1)
        self.no_event(b)

        # Kept across a restart.
        for c in (desk, phone, later, b):
            c.close()
        s.restart()
        a = self.pep(s, 'alice', 'again')
        self.assertEqual([i for i, _ in result_items(self.ok(self.items(a, BOOKMARKS)), BOOKMARKS)], [ROOM2])

    # -- a new subscriber ----------------------------------------------------

    def test_new_subscriber_gets_last_item(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk')
        self.ok(a.iq('set', publish_xml(TUNE, tune('Purcell'), 'lp')))
        e = self.pep(s, 'eve', 'e', notify=[TUNE])
        self.no_event(e)
        e.sub('subscribe', AJ)
        a.wait(lambda st: st.get('type') == 'subscribe' and st.get('from') == EJ)
        a.sub('subscribed', EJ)
        m = e.wait(is_event(TUNE), what='last item for a new subscriber')
        self.assertEqual(event_items(m, TUNE).find(q(NS_EV, 'item')).get('id'), 'lp')

    # -- bad input -------------------------------------------------------------

    def test_bad_input_stores_nothing(self):
        s = self.start_server(**{'pep.max_item_size': '1024', 'pep.max_nodes': '3', 'pep.max_bytes': '4096'})
        a = self.pep(s, 'alice', 'desk')
        b = self.pep(s, 'bob', 'b')
        make_state(self, a, b, 'both')
        n = 'urn:example:bad'

        def nothing_stored(node=n):
            self.assert_error(self.items(a, node), 'item-not-found')

        # Malformed forms.
        bad_opts = ("<pubsub xmlns='%s'><publish node='%s'><item>%s</item></publish>"
                    "<publish-options><x xmlns='urn:not-a-form'/></publish-options></pubsub>" % (NS_PS, n, tune('x')))
        self.assert_error(a.iq('set', bad_opts), 'bad-request')
        wrong_type = publish_xml(n, tune('x')).replace('</pubsub>', '<publish-options>%s</publish-options></pubsub>'
                                                       % config_form({'pubsub#access_model': 'open'}))
        self.assert_error(a.iq('set', wrong_type), 'bad-request')  # FORM_TYPE node_config
        not_submit = publish_xml(n, tune('x')).replace('</pubsub>', '<publish-options>%s</publish-options></pubsub>'
                                                       % config_form({}, NS_PS + '#publish-options', 'form'))
        self.assert_error(a.iq('set', not_submit), 'bad-request')
        no_var = publish_xml(n, tune('x')).replace(
            '</pubsub>', "<publish-options><x xmlns='%s' type='submit'><field><value>1</value></field></x>"
            "</publish-options></pubsub>" % NS_DATA)
        self.assert_error(a.iq('set', no_var), 'bad-request')
        nothing_stored()
        # Unknown access model.
        r = a.iq('set', publish_xml(n, tune('x'), 'i', {'pubsub#access_model': 'everyone'}))
        self.assert_error(r, 'not-acceptable', 'unsupported-access-model')
        r = a.iq('set', publish_xml(n, tune('x'), 'i', {'pubsub#max_items': '-3'}))
        self.assert_error(r, 'not-acceptable')
        r = a.iq('set', publish_xml(n, tune('x'), 'i', {'pubsub#persist_items': 'maybe'}))
        self.assert_error(r, 'not-acceptable')  # a bad value, not a shortage of memory
        nothing_stored()
        # Items past the size limit.
        r = a.iq('set', publish_xml(n, "<big xmlns='urn:example'>%s</big>" % ('x' * 2000)))
        self.assert_error(r, 'not-acceptable', 'payload-too-big')
        nothing_stored()
        # A publish to another user's PEP node.
        r = b.iq('set', publish_xml(n, tune('intruder')), to=AJ)
        self.assert_error(r, 'forbidden', etype='auth')
        nothing_stored()
        # Shapes the XEP refuses.
        self.assert_error(a.iq('set', "<pubsub xmlns='%s'><publish><item>%s</item></publish></pubsub>"
                               % (NS_PS, tune('x'))), 'bad-request', 'nodeid-required')
        self.assert_error(a.iq('set', "<pubsub xmlns='%s'><publish node='%s'/></pubsub>" % (NS_PS, n)),
                          'bad-request', 'item-required')
        self.assert_error(a.iq('set', "<pubsub xmlns='%s'><publish node='%s'><item/></publish></pubsub>" % (NS_PS, n)),
                          'bad-request', 'payload-required')
        self.assert_error(a.iq('set', "<pubsub xmlns='%s'><publish node='%s'><item>%s%s</item></publish></pubsub>"
                               % (NS_PS, n, tune('1'), tune('2'))), 'bad-request', 'invalid-payload')
        nothing_stored()
        # A configuration with a bad value changes nothing.
        self.ok(a.iq('set', publish_xml(n, tune('ok'), 'k')))
        self.assert_error(self.configure(a, n, {'pubsub#access_model': 'bogus'}), 'not-acceptable',
                          'unsupported-access-model')
        self.assert_error(self.configure(a, n, {'pubsub#max_items': '100001'}), 'not-acceptable')
        self.assert_error(a.iq('set', "<pubsub xmlns='%s'><configure node='%s'><x xmlns='%s' type='submit'>"
                               "<field var='FORM_TYPE'><value>urn:wrong</value></field></x></configure></pubsub>"
                               % (NS_OWNER, n, NS_DATA)), 'bad-request')
        self.assertEqual(self.config_of(a, n)['pubsub#access_model'], ['presence'])
        # Quotas: nodes, then bytes; past them a clear error and nothing stored.
        self.ok(a.iq('set', publish_xml('q2', tune('2'))))
        self.ok(a.iq('set', publish_xml('q3', tune('3'))))
        r = a.iq('set', publish_xml('q4', tune('4')))
        self.assert_error(r, 'policy-violation')
        self.assertIn('pep.max_nodes', r.find(q(NS_CLIENT, 'error')).find(q(NS_STANZAS, 'text')).text)
        nothing_stored('q4')
        self.ok(self.configure(a, 'q2', {'pubsub#max_items': '10'}))
        payload = "<big xmlns='urn:example'>%s</big>" % ('y' * 900)
        for i in range(4):
            self.ok(a.iq('set', publish_xml('q2', payload, 'b%d' % i)))
        r = a.iq('set', publish_xml('q2', payload, 'b4'))
        self.assert_error(r, 'policy-violation')
        self.assertEqual([i for i, _ in result_items(self.ok(self.items(a, 'q2')), 'q2')][1:],
                         ['b0', 'b1', 'b2', 'b3'])
        # Replacing an item within the quota is fine.
        self.ok(a.iq('set', publish_xml('q2', payload, 'b0')))

    # -- persistence ------------------------------------------------------------

    def test_persistence_across_restart(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk')
        b = self.pep(s, 'bob', 'b', notify=[TUNE])
        make_state(self, a, b, 'both')
        self.ok(a.iq('set', publish_xml(TUNE, tune('before'), 't1', {'pubsub#max_items': '3',
                                                                      'pubsub#access_model': 'open'})))
        self.ok(a.iq('set', publish_xml(TUNE, tune('before2'), 't2')))
        self.ok(a.iq('set', publish_xml('urn:example:volatile', tune('gone'), 'v', {'pubsub#persist_items': '0'})))
        self.ok(a.iq('set', "<pubsub xmlns='%s'><affiliations node='%s'><affiliation jid='%s' affiliation='outcast'/>"
                     "</affiliations></pubsub>" % (NS_OWNER, TUNE, DJ)))
        a.close()
        b.close()
        s.restart()
        a = self.pep(s, 'alice', 'desk2')
        self.assertEqual(artists(self.ok(self.items(a, TUNE)), TUNE), [('t1', 'before'), ('t2', 'before2')])
        cfg = self.config_of(a, TUNE)
        self.assertEqual((cfg['pubsub#access_model'], cfg['pubsub#max_items']), (['open'], ['3']))
        # A node that keeps no items is there, empty.
        self.assertEqual(result_items(self.ok(self.items(a, 'urn:example:volatile')), 'urn:example:volatile'), [])
        d = self.pep(s, 'dave', 'd')
        self.assert_error(self.items(d, TUNE, to=AJ), 'forbidden')
        b = self.pep(s, 'bob', 'b2', notify=[TUNE])
        m = b.wait(is_event(TUNE), what='last item after a restart')
        self.assertEqual(event_items(m, TUNE).find(q(NS_EV, 'item')).get('id'), 't2')

    # -- accounts that go --------------------------------------------------------

    def test_removed_account_loses_nodes(self):
        s = self.start_server(**{'registration.open': 'true', 'registration.rate_limit': '0'})
        a = self.pep(s, 'alice', 'desk')
        b = self.pep(s, 'bob', 'b')
        self.ok(a.iq('set', publish_xml(TUNE, tune('mine'), 'm', {'pubsub#access_model': 'whitelist'})))
        self.ok(a.iq('set', "<pubsub xmlns='%s'><affiliations node='%s'><affiliation jid='%s' affiliation='member'/>"
                     "</affiliations></pubsub>" % (NS_OWNER, TUNE, BJ)))
        self.ok(b.iq('set', publish_xml(MOOD, "<mood xmlns='%s'><happy/></mood>" % MOOD, 'x')))
        def rows(sql, *args):
            return s.db_rows(sql, args)[0][0]
        self.assertEqual(rows("SELECT count(*) FROM pubsub_nodes WHERE service = ?", BJ), 1)
        self.assertEqual(rows("SELECT count(*) FROM pubsub_affiliations WHERE jid = ?", BJ), 1)
        self.ok(b.iq('set', "<query xmlns='%s'><remove/></query>" % NS_REGISTER))
        s.wait_log('account bob@%s removed' % DOMAIN)
        wait_for(lambda: rows("SELECT count(*) FROM pubsub_nodes WHERE service = ?", BJ) == 0, 5, 'nodes gone')
        self.assertEqual(rows("SELECT count(*) FROM pubsub_items WHERE service = ?", BJ), 0)
        self.assertEqual(rows("SELECT count(*) FROM pubsub_affiliations WHERE jid = ?", BJ), 0)
        affs = self.ok(a.iq('get', "<pubsub xmlns='%s'><affiliations node='%s'/></pubsub>" % (NS_OWNER, TUNE)))
        self.assertEqual([x.get('jid') for x in affs.iter(q(NS_OWNER, 'affiliation'))], [AJ])
        # Whoever registers the name later starts with nothing, and is no member.
        c = IMClient(s)
        self.addCleanup(c.close)
        c.connect()
        c.open_stream()
        c.starttls()
        c.open_stream()
        self.ok(c.iq('set', "<query xmlns='%s'><username>bob</username><password>new-bob-pw</password></query>"
                     % NS_REGISTER))
        c.close()
        nb = IMClient(s)
        self.addCleanup(nb.close)
        nb.login('bob', 'new-bob-pw', resource='new')
        self.assert_error(self.items(nb, MOOD), 'item-not-found')
        self.assert_error(self.items(nb, TUNE, to=AJ), 'not-allowed', 'closed-node')


if __name__ == '__main__':
    main()
