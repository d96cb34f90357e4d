"""Payloads that ride on PEP with nothing specific to them in the server, tested as clients use
them: user nickname (XEP-0172), user mood (XEP-0107) and user activity (XEP-0108) published to
their nodes reach the contacts whose caps carry <node>+notify (not the others, not strangers),
arrive whole (every child kept), and are returned to a fetch; the last one reaches a contact
that logs in later. XEP-0172 also rides in a subscription request, which passes it through to
the contact, online or offline."""

from hearth import DOMAIN, main, q, to_str, xml_escape
from imlib import IMTestCase, make_state
import test_pep as tp
from test_pep import NS_EV, event_items, is_event, publish_xml, result_items

NICK = 'http://jabber.org/protocol/nick'
MOOD = 'http://jabber.org/protocol/mood'
ACTIVITY = 'http://jabber.org/protocol/activity'
AJ, EJ = ('%s@%s' % (u, DOMAIN) for u in ('alice', 'eve'))


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


if __name__ == '__main__':
    main()
