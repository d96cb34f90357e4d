"""Payloads that ride on PEP with nothing specific to them in the server, tested as clients use
them: user nickname (XEP-0172), user mood (XEP-0107) and user activity (XEP-0108) published to
their nodes reach the contacts whose caps carry <node>+notify (not the others, not strangers),
arrive whole (every child kept), and are returned to a fetch; the last one reaches a contact
that logs in later. XEP-0172 also rides in a subscription request, which passes it through to
the contact, online or offline.

OMEMO 2 (XEP-0384 0.8): the device list in urn:xmpp:omemo:2:devices and one bundle per device
in urn:xmpp:omemo:2:bundles, both open (publish-options), the bundles node keeping every item
(max_items 'max'): a stranger fetches one bundle by its device id, both devices' bundles are kept,
a contact with +notify is told of the device list, and one logging in later gets the last one."""

from hearth import DOMAIN, main, q, to_str, xml_escape
from imlib import IMTestCase, make_state
import test_pep as tp
from test_pep import NS_EV, event_items, is_event, publish_xml, result_items

NICK = 'http://jabber.org/protocol/nick'
MOOD = 'http://jabber.org/protocol/mood'
ACTIVITY = 'http://jabber.org/protocol/activity'
AJ, EJ = ('%s@%s' % (u, DOMAIN) for u in ('alice', 'eve'))
OMEMO = 'urn:xmpp:omemo:2'
DEVICES = OMEMO + ':devices'
BUNDLES = OMEMO + ':bundles'


def nick(n):
    return "<nick xmlns='%s'>%s</nick>" % (NICK, xml_escape(n))


MOOD_XML = "<mood xmlns='%s'><happy/><text>sun at last</text></mood>" % MOOD
ACTIVITY_XML = ("<activity xmlns='%s'><relaxing><partying/></relaxing><text>birthday</text></activity>"
                % ACTIVITY)


class PayloadTest(IMTestCase):
    """With test_pep's helpers, without its tests."""
    users = tp.PepTest.users
    pep = tp.PepTest.pep
    ok = tp.PepTest.ok
    items = tp.PepTest.items
    no_event = tp.PepTest.no_event

    def check_node(self, node, payload, check):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk')
        b = self.pep(s, 'bob', 'b', notify=[node])
        c = self.pep(s, 'carol', 'c')  # a contact without +notify
        d = self.pep(s, 'dave', 'd', notify=[node])  # not a contact
        make_state(self, a, b, 'both')
        make_state(self, a, c, 'both')
        for x in (b, c, d):
            x.sync()
            x.take()
        self.ok(a.iq('set', publish_xml(node, payload, 'current')))
        m = b.wait(is_event(node), what='%s event' % node)
        self.assertEqual(m.get('from'), AJ, to_str(m))
        it = event_items(m, node).find(q(NS_EV, 'item'))
        self.assertEqual(it.get('id'), 'current')
        check(it)
        self.no_event(c, d)
        # a fetch by a contact gets it, as published
        got = result_items(self.ok(self.items(b, node, to=AJ)), node)
        self.assertEqual([i for i, _ in got], ['current'])
        check(got[0][1])
        # a contact that logs in later gets it as the last published item
        b.close()
        b2 = self.pep(s, 'bob', 'later', notify=[node])
        check(event_items(b2.wait(is_event(node), what='last %s at login' % node), node).find(q(NS_EV, 'item')))

    def test_nick(self):
        def check(it):
            self.assertEqual(it.find(q(NICK, 'nick')).text, 'Ally')
        self.check_node(NICK, nick('Ally'), check)

    def test_mood(self):
        def check(it):
            m = it.find(q(MOOD, 'mood'))
            self.assertEqual([c.tag for c in m], [q(MOOD, 'happy'), q(MOOD, 'text')], to_str(m))
            self.assertEqual(m.find(q(MOOD, 'text')).text, 'sun at last')
        self.check_node(MOOD, MOOD_XML, check)

    def test_activity(self):
        def check(it):
            act = it.find(q(ACTIVITY, 'activity'))
            self.assertIsNotNone(act.find(q(ACTIVITY, 'relaxing')).find(q(ACTIVITY, 'partying')), to_str(act))
            self.assertEqual(act.find(q(ACTIVITY, 'text')).text, 'birthday')
        self.check_node(ACTIVITY, ACTIVITY_XML, check)

    def test_nick_in_subscription_request(self):
        # XEP-0172 4.2: a nickname in a subscription request reaches the contact online.
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk')
        e = self.pep(s, 'eve', 'e')
        e.send("<presence to='%s' type='subscribe'>%s</presence>" % (AJ, nick('Evie')))
        r = a.wait(lambda st: st.get('type') == 'subscribe' and st.get('from') == EJ,
                   what='subscription request')
        self.assertEqual(r.findtext(q(NICK, 'nick')), 'Evie', to_str(r))


def devices_xml(*ids):
    return "<devices xmlns='%s'>%s</devices>" % (OMEMO, ''.join("<device id='%d'/>" % i for i in ids))


def bundle_xml(dev):
    # XEP-0384 5.3.2's shape: signed prekey, its signature, identity key, prekeys (base64 made up)
    return ("<bundle xmlns='%s'><spk id='%d'>c3BrLSVk</spk><spks>c3Brcw==</spks><ik>aWstJWQ=</ik>"
            "<prekeys><pk id='1'>cGsx</pk><pk id='2'>cGsy</pk></prekeys></bundle>" % (OMEMO, dev))


def device_ids(it):
    return sorted(int(d.get('id')) for d in it.find(q(OMEMO, 'devices')).findall(q(OMEMO, 'device')))


class OmemoTest(IMTestCase):
    users = tp.PepTest.users
    pep = tp.PepTest.pep
    ok = tp.PepTest.ok
    items = tp.PepTest.items
    no_event = tp.PepTest.no_event

    def test_omemo2_devices_and_bundles(self):
        s = self.start_server()
        a = self.pep(s, 'alice', 'desk')
        a2 = self.pep(s, 'alice', 'phone')  # the account's second device
        b = self.pep(s, 'bob', 'b', notify=[DEVICES])
        e = self.pep(s, 'eve', 'e', notify=[DEVICES])  # not in alice's roster
        make_state(self, a, b, 'both')
        c1 = self.pep(s, 'carol', 'first')
        make_state(self, a, c1, 'both')
        c1.close()  # carol comes back later
        for x in (b, e):
            x.sync()
            x.take()
        open_ = {'pubsub#access_model': 'open'}
        many = {'pubsub#access_model': 'open', 'pubsub#max_items': 'max'}
        # the first device: its list and its bundle
        self.ok(a.iq('set', publish_xml(DEVICES, devices_xml(1111), 'current', open_)))
        self.assertEqual(device_ids(event_items(b.wait(is_event(DEVICES), what='device list'), DEVICES)
                                    .find(q(NS_EV, 'item'))), [1111])
        self.ok(a.iq('set', publish_xml(BUNDLES, bundle_xml(1111), '1111', many)))
        # the second device adds itself to the list and publishes its bundle beside the first
        self.ok(a2.iq('set', publish_xml(DEVICES, devices_xml(1111, 2222), 'current', open_)))
        m = b.wait(is_event(DEVICES), what='device list with two devices')
        self.assertEqual(m.get('from'), AJ, to_str(m))
        self.assertEqual(device_ids(event_items(m, DEVICES).find(q(NS_EV, 'item'))), [1111, 2222])
        self.ok(a2.iq('set', publish_xml(BUNDLES, bundle_xml(2222), '2222', many)))
        self.no_event(e)  # a stranger is told nothing, +notify or not
        b.expect_none(is_event(BUNDLES), 'a bundle event without +notify for it')

        # a stranger (no subscription, not in the roster) fetches one bundle by its device id
        got = result_items(self.ok(self.items(e, BUNDLES, to=AJ, inner="<item id='2222'/>")), BUNDLES)
        self.assertEqual([i for i, _ in got], ['2222'])
        spk = got[0][1].find(q(OMEMO, 'bundle')).find(q(OMEMO, 'spk'))
        self.assertEqual(spk.get('id'), '2222', to_str(got[0][1]))
        # both bundles are kept, and the device list is open too
        got = result_items(self.ok(self.items(e, BUNDLES, to=AJ)), BUNDLES)
        self.assertEqual(sorted(i for i, _ in got), ['1111', '2222'])
        got = result_items(self.ok(self.items(e, DEVICES, to=AJ)), DEVICES)
        self.assertEqual(device_ids(got[0][1]), [1111, 2222])
        # a contact that logs in later gets the last device list
        c = self.pep(s, 'carol', 'later', notify=[DEVICES])
        it = event_items(c.wait(is_event(DEVICES), what='last device list at login'), DEVICES).find(q(NS_EV, 'item'))
        self.assertEqual((it.get('id'), device_ids(it)), ('current', [1111, 2222]))


if __name__ == '__main__':
    main()
