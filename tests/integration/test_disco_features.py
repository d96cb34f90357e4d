"""Disco advertises each feature exactly when it is there (issue 12 item 5, XEP-0030 3.1).

Every feature in the server's and an account's disco#info must have a probe here: a request
that uses it and must succeed (an IQ answered with a result, not service-unavailable or
feature-not-implemented), or, for a feature that is no IQ, a check of the behaviour it names.
A feature advertised without a probe fails the test, so a new one cannot be advertised without
showing that something answers it. With the switches off (archive.enabled,
pep.vcard_conversion, pep.bookmarks_compat) their features are gone, and so is the behaviour."""

import base64
import hashlib
import re

from hearth import DOMAIN, main, q, to_str
from imlib import MESSAGE, TIMEOUT, IMTestCase, err, make_state
from hearth import wait_for

NS_INFO = 'http://jabber.org/protocol/disco#info'
NS_ITEMS = 'http://jabber.org/protocol/disco#items'
PS = 'http://jabber.org/protocol/pubsub'
OWNER = PS + '#owner'
AJ, BJ, CJ = 'alice@' + DOMAIN, 'bob@' + DOMAIN, 'carol@' + DOMAIN
NODE = 'urn:example:probe'


def form(fields, form_type):
    inner = ''.join("<field var='%s'><value>%s</value></field>" % kv for kv in fields.items())
    return ("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>%s</value>"
            "</field>%s</x>" % (form_type, inner))


def publish(node=NODE, item='p1', options=None):
    opts = ('<publish-options>%s</publish-options>' % form(options, PS + '#publish-options')) if options else ''
    return ("<pubsub xmlns='%s'><publish node='%s'><item id='%s'><probe xmlns='urn:example'/></item></publish>"
            "%s</pubsub>" % (PS, node, item, opts))


def owner(inner):
    return "<pubsub xmlns='%s'>%s</pubsub>" % (OWNER, inner)


def affs(aff):
    return owner("<affiliations node='%s'><affiliation jid='%s' affiliation='%s'/></affiliations>" % (NODE, BJ, aff))


# IQ probes: (type, payload, to) where to is 'server', 'account' (the asker's own bare JID) or
# None (where the feature is advertised; on the account, those in CONTACT are asked of a contact's
# account, offline, so that the server answers: XEP-0012 4 forwards to an online one's client). Each must be answered with a result, or with an error
# that says the request was understood (ANSWERED_ERRORS). Those about a PEP node run after an
# item was published to NODE.
IQ_PROBES = {
    NS_INFO: ('get', "<query xmlns='%s'/>" % NS_INFO, None),
    NS_ITEMS: ('get', "<query xmlns='%s'/>" % NS_ITEMS, None),
    'urn:xmpp:ping': ('get', "<ping xmlns='urn:xmpp:ping'/>", None),
    # XEP-0050 2.2: the commands node's items (none for a user who is not an admin)
    'http://jabber.org/protocol/commands': ('get', "<query xmlns='%s' node='http://jabber.org/protocol/commands'/>"
                                            % NS_ITEMS, 'server'),
    'urn:ietf:params:xml:ns:xmpp-session': ('set', "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>", None),
    # XEP-0191 3.2: asked of the user's own account (no 'to'), though the server advertises it
    'urn:xmpp:blocking': ('get', "<blocklist xmlns='urn:xmpp:blocking'/>", 'account'),
    # XEP-0012: the server's uptime; an account's last activity, asked by a contact
    'jabber:iq:last': ('get', "<query xmlns='jabber:iq:last'/>", None),
    'jabber:iq:register': ('get', "<query xmlns='jabber:iq:register'/>", 'server'),
    'jabber:iq:version': ('get', "<query xmlns='jabber:iq:version'/>", 'server'),
    'urn:xmpp:time': ('get', "<time xmlns='urn:xmpp:time'/>", 'server'),
    'vcard-temp': ('get', "<vCard xmlns='vcard-temp'/>", None),  # the server's own: none (item-not-found)
    'jabber:iq:private': ('get', "<query xmlns='jabber:iq:private'><x xmlns='urn:example:p'/></query>",
                          'account'),
    'urn:xmpp:mam:2': ('set', "<query xmlns='urn:xmpp:mam:2'/>", 'account'),
    'urn:xmpp:carbons:2': ('set', "<enable xmlns='urn:xmpp:carbons:2'/>", 'server'),
    PS: ('get', "<pubsub xmlns='%s'><items node='%s'/></pubsub>" % (PS, NODE), 'account'),
    PS + '#access-open': ('set', publish('urn:example:open', options={'pubsub#access_model': 'open'}), 'account'),
    PS + '#access-presence': ('set', publish('urn:example:pres', options={'pubsub#access_model': 'presence'}),
                              'account'),
    PS + '#access-roster': ('set', publish('urn:example:rost', options={'pubsub#access_model': 'roster'}),
                            'account'),
    PS + '#access-whitelist': ('set', publish('urn:example:wl', options={'pubsub#access_model': 'whitelist'}),
                               'account'),
    PS + '#auto-create': ('set', publish('urn:example:auto'), 'account'),
    PS + '#config-node': ('get', owner("<configure node='%s'/>" % NODE), 'account'),
    PS + '#config-node-max': ('set', owner("<configure node='%s'>%s</configure>"
                                           % (NODE, form({'pubsub#max_items': 'max'}, PS + '#node_config'))),
                              'account'),
    PS + '#create-and-configure': ('set', "<pubsub xmlns='%s'><create node='urn:example:cc'/><configure>%s"
                                   "</configure></pubsub>" % (PS, form({'pubsub#max_items': '5'},
                                                                      PS + '#node_config')), 'account'),
    PS + '#create-nodes': ('set', "<pubsub xmlns='%s'><create node='urn:example:new'/></pubsub>" % PS, 'account'),
    PS + '#delete-items': ('set', "<pubsub xmlns='%s'><retract node='%s'><item id='p1'/></retract></pubsub>"
                           % (PS, NODE), 'account'),
    PS + '#delete-nodes': ('set', owner("<delete node='urn:example:new'/>"), 'account'),
    PS + '#item-ids': ('set', publish(item='chosen-id'), 'account'),
    PS + '#member-affiliation': ('set', affs('member'), 'account'),
    PS + '#meta-data': ('get', "<query xmlns='%s' node='%s'/>" % (NS_INFO, NODE), 'account'),
    PS + '#modify-affiliations': ('set', affs('none'), 'account'),
    PS + '#outcast-affiliation': ('set', affs('outcast'), 'account'),
    PS + '#persistent-items': ('set', publish(item='kept', options={'pubsub#persist_items': 'true'}), 'account'),
    PS + '#publish': ('set', publish(item='again'), 'account'),
    PS + '#publish-options': ('set', publish(item='opt', options={'pubsub#persist_items': 'true'}), 'account'),
    PS + '#purge-nodes': ('set', owner("<purge node='%s'/>" % NODE), 'account'),
    PS + '#retract-items': ('set', "<pubsub xmlns='%s'><retract node='%s' notify='true'><item id='p1'/></retract>"
                            "</pubsub>" % (PS, NODE), 'account'),
    PS + '#retrieve-affiliations': ('get', "<pubsub xmlns='%s'><affiliations/></pubsub>" % PS, 'account'),
    PS + '#retrieve-default': ('get', owner('<default/>'), 'account'),
    PS + '#retrieve-subscriptions': ('get', "<pubsub xmlns='%s'><subscriptions/></pubsub>" % PS, 'account'),
    PS + '#retrieve-items': ('get', "<pubsub xmlns='%s'><items node='%s' max_items='1'/></pubsub>" % (PS, NODE),
                             'account'),
}

CONTACT = {'jabber:iq:last', 'vcard-temp'}

# Errors that still show a handler took the request: the server's own vCard does not exist
# (XEP-0054 3.3's note allows none).
ANSWERED_ERRORS = {('vcard-temp', 'server'): 'item-not-found'}

# Features that are no IQ of their own: what shows them, here or in the test named.
BEHAVIOUR = {
    'msgoffline': 'offline',
    'urn:xmpp:sid:0': 'stanza_id',
    'urn:xmpp:pep-vcard-conversion:0': 'vcard_conversion',
    'urn:xmpp:bookmarks:1#compat': 'bookmarks_compat',
    'urn:xmpp:bookmarks:1#compat-pep': 'bookmarks_compat_pep',
    'urn:xmpp:bookmarks-conversion:0': 'bookmarks_conversion',
    # Notifications, by presence subscription and filtered by caps: integration/pep
    # (test_publish_notifies_by_caps_and_presence, test_last_item_at_login_and_caps_learnt_later,
    # test_new_subscriber_gets_last_item); here, one notification to a contact with +notify.
    PS + '#auto-subscribe': 'notification',
    PS + '#filtered-notifications': 'notification',
    PS + '#presence-notifications': 'notification',
    PS + '#last-published': 'notification',
}

PNG = b'\x89PNG\r\n\x1a\n' + bytes(range(32))


def features(c, to):
    r = c.iq('get', "<query xmlns='%s'/>" % NS_INFO, to=to)
    assert r.get('type') == 'result', to_str(r)
    return [f.get('var') for f in r.iter(q(NS_INFO, 'feature'))]


class DiscoFeaturesTest(IMTestCase):
    users = {'alice': 'wonderland', 'bob': 'builder', 'carol': 'singer'}

    def probe_iq(self, a, b, feature, where):
        type_, payload, to = IQ_PROBES[feature]
        if to is None:
            to = where
        target = CJ if to == 'account' and feature in CONTACT else AJ
        r = a.iq(type_, payload, to=DOMAIN if to == 'server' else target)
        if r.get('type') == 'error' and err(r)[1] == ANSWERED_ERRORS.get((feature, to)):
            return
        self.assertEqual(r.get('type'), 'result', '%s advertised on the %s, its probe failed: %s'
                         % (feature, where, to_str(r)))

    # -- behaviours ----------------------------------------------------------

    def offline(self, s, a, b):
        # bob gone for the server too before alice writes, or the message may reach the session
        # still closing and be lost with it
        b.logout()
        s.wait_log(r'\[c2s#\d+ %s\] unbound' % re.escape(b.jid))
        a.message(BJ, 'while you were out', id_='off1')
        a.sync()
        b2 = self.connect(s, 'bob', 'again')
        m = b2.wait(lambda st: st.tag == MESSAGE and st.get('id') == 'off1', what='offline message')
        self.assertEqual(m.findtext(q('jabber:client', 'body')), 'while you were out')
        return b2

    def stanza_id(self, s, a, b):
        b.message(AJ, 'hello', id_='sid1')
        m = a.wait(lambda st: st.tag == MESSAGE and st.get('id') == 'sid1', what='message')
        sid = m.find(q('urn:xmpp:sid:0', 'stanza-id'))
        self.assertIsNotNone(sid, to_str(m))
        self.assertEqual(sid.get('by'), AJ)

    def vcard_conversion(self, s, a, b):
        self.assertEqual(a.iq('set', "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>%s</BINVAL>"
                              "</PHOTO></vCard>" % base64.b64encode(PNG).decode()).get('type'), 'result')
        r = a.iq('get', "<pubsub xmlns='%s'><items node='urn:xmpp:avatar:metadata'/></pubsub>" % PS)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        ids = [i.get('id') for i in r.iter(q(PS, 'item'))]
        self.assertEqual(ids, [hashlib.sha1(PNG).hexdigest()])

    def bookmarks_compat(self, s, a, b):
        self.assertEqual(a.iq('set', "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>"
                              "<conference jid='room@conference.%s' autojoin='true'/></storage></query>"
                              % DOMAIN).get('type'), 'result')

        def there():
            r = a.iq('get', "<pubsub xmlns='%s'><items node='urn:xmpp:bookmarks:1'/></pubsub>" % PS)
            return r.get('type') == 'result' and [i.get('id') for i in r.iter(q(PS, 'item'))]
        self.assertEqual(wait_for(there, TIMEOUT, 'the bookmark in PEP'), ['room@conference.%s' % DOMAIN])

    def bookmarks_compat_pep(self, s, a, b):
        # XEP-0402 5.3: a XEP-0048 list published to storage:bookmarks reaches XEP-0402
        room = 'pepcompat@conference.%s' % DOMAIN
        r = a.iq('set', "<pubsub xmlns='%s'><publish node='storage:bookmarks'><item id='current'><storage "
                 "xmlns='storage:bookmarks'><conference jid='%s' autojoin='true'/></storage></item></publish>"
                 "</pubsub>" % (PS, room))
        self.assertEqual(r.get('type'), 'result', to_str(r))

        def there():
            r = a.iq('get', "<pubsub xmlns='%s'><items node='urn:xmpp:bookmarks:1'/></pubsub>" % PS)
            return r.get('type') == 'result' and room in [i.get('id') for i in r.iter(q(PS, 'item'))]
        wait_for(there, TIMEOUT, 'the legacy PEP bookmark in XEP-0402')

    def bookmarks_conversion(self, s, a, b):
        # XEP-0411 3: private XML reaches the storage:bookmarks node
        room = 'conversion@conference.%s' % DOMAIN
        self.assertEqual(a.iq('set', "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>"
                              "<conference jid='%s' autojoin='true'/></storage></query>" % room).get('type'),
                         'result')

        def there():
            r = a.iq('get', "<pubsub xmlns='%s'><items node='storage:bookmarks'/></pubsub>" % PS)
            return r.get('type') == 'result' and [c.get('jid') for c in r.iter(q('storage:bookmarks', 'conference'))
                                                  ] == [room]
        wait_for(there, TIMEOUT, 'the private XML bookmark in PEP')

    def notification(self, s, a, b):
        pass  # run once, in test_every_feature_is_backed (below)

    # -- tests ---------------------------------------------------------------

    def test_every_feature_is_backed(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        make_state(self, a, b, 'both')
        c = self.connect(s, 'carol', 'c')
        make_state(self, a, c, 'both')
        c.logout()
        advertised = {'server': features(a, DOMAIN), 'account': features(a, AJ)}
        for where, feats in advertised.items():
            self.assertEqual(len(feats), len(set(feats)), 'a feature listed twice on the %s: %s' % (where, feats))
            unknown = [f for f in feats if f not in IQ_PROBES and f not in BEHAVIOUR]
            self.assertEqual(unknown, [], 'advertised on the %s with no probe in test_disco_features: add '
                             'one that shows something answers it' % where)
        # The node the PEP probes use, with an item, and a contact that wants its notifications.
        self.assertEqual(a.iq('set', publish()).get('type'), 'result')
        for where, feats in advertised.items():
            for f in feats:
                if f in IQ_PROBES:
                    if f in (PS + '#delete-items', PS + '#retract-items', PS + '#purge-nodes'):
                        a.iq('set', publish())  # the item they remove is there again
                    if f == PS + '#delete-nodes':
                        a.iq('set', "<pubsub xmlns='%s'><create node='urn:example:new'/></pubsub>" % PS)
                    self.probe_iq(a, b, f, where)
        done = set()
        for f in advertised['server'] + advertised['account']:
            name = BEHAVIOUR.get(f)
            if name and name not in done:
                done.add(name)
                b = getattr(self, name)(s, a, b) or b
        if 'notification' in done:  # a contact's resource with +notify caps is told of a publish
            self.notified(s, a)

    def notified(self, s, a):
        from test_pep import PepClient, is_event
        c = PepClient(s, notify=['urn:example:notify'])
        self.addCleanup(c.close)
        c.login('bob', 'builder', resource='caps')
        c.roster_get()
        c.presence(children=c.caps())
        c.sync()
        c.sync()
        self.assertEqual(a.iq('set', publish('urn:example:notify', 'n1')).get('type'), 'result')
        c.wait(is_event('urn:example:notify'), what='notification to a contact with +notify')

    def test_switched_off_features_are_gone(self):
        s = self.start_server(archive__enabled=False, pep__vcard_conversion=False, pep__bookmarks_compat=False)
        a = self.connect(s, 'alice', 'a')
        gone = {'urn:xmpp:mam:2', 'urn:xmpp:pep-vcard-conversion:0', 'urn:xmpp:bookmarks:1#compat',
                'urn:xmpp:bookmarks:1#compat-pep', 'urn:xmpp:bookmarks-conversion:0'}
        for to in (DOMAIN, AJ):
            self.assertEqual(gone & set(features(a, to)), set(), to)
        r = a.iq('set', "<query xmlns='urn:xmpp:mam:2'/>")
        self.assertEqual(err(r)[1], 'service-unavailable', to_str(r))
        self.assertEqual(a.iq('set', "<vCard xmlns='vcard-temp'><PHOTO><BINVAL>%s</BINVAL></PHOTO></vCard>"
                              % base64.b64encode(PNG).decode()).get('type'), 'result')
        r = a.iq('get', "<pubsub xmlns='%s'><items node='urn:xmpp:avatar:metadata'/></pubsub>" % PS)
        self.assertEqual(err(r)[1], 'item-not-found', to_str(r))


if __name__ == '__main__':
    main()
