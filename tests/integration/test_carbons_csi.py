"""Message Carbons (XEP-0280) and Client State Indication (XEP-0352) with live clients:
copies of sent and received messages to the other resources that enabled carbons, always
from the account's own bare JID; the eligibility rules and the private/no-copy hints; and an
inactive client whose presence updates and chat states wait while messages with a body do not."""
import sys
import unittest

from hearth import q, to_str
from imlib import IMTestCase, is_msg, is_pres

NS_CARBONS = 'urn:xmpp:carbons:2'
NS_FORWARD = 'urn:xmpp:forward:0'
NS_CSI = 'urn:xmpp:csi:0'
NS_CHATSTATES = 'http://jabber.org/protocol/chatstates'
AJ, BJ = 'alice@localhost', 'bob@localhost'


def carbon(s, kind):
    if s.tag != '{jabber:client}message':
        return None
    c = s.find(q(NS_CARBONS, kind))
    if c is None:
        return None
    return c.find(q(NS_FORWARD, 'forwarded')).find('{jabber:client}message')


class CarbonsTest(IMTestCase):
    def setUp(self):
        self.s = self.start_server()
        self.a1 = self.connect(self.s, 'alice', 'a1', priority=1)
        self.a2 = self.connect(self.s, 'alice', 'a2', priority=0)
        self.b = self.connect(self.s, 'bob', 'b')
        for c in (self.a1, self.a2, self.b):
            c.take()

    def enable(self, c):
        r = c.iq_ok('set', "<enable xmlns='%s'/>" % NS_CARBONS)
        self.assertEqual(r.get('type'), 'result', to_str(r))

    def test_disco_feature(self):
        r = self.a1.iq('get', "<query xmlns='http://jabber.org/protocol/disco#info'/>", to='localhost')
        feats = [f.get('var') for f in r.iter('{http://jabber.org/protocol/disco#info}feature')]
        self.assertIn(NS_CARBONS, feats)

    def test_received_copy_to_other_resource(self):
        self.enable(self.a2)
        mid = self.b.message(self.a1.jid, 'to the first resource')
        self.a1.wait(lambda s: is_msg(s, id_=mid))
        c = self.a2.wait(lambda s: carbon(s, 'received') is not None, what='received carbon')
        self.assertEqual(c.get('from'), AJ)  # never anyone else (CVE-2017-5589)
        inner = carbon(c, 'received')
        self.assertEqual((inner.get('id'), inner.get('from'), inner.get('to')),
                         (mid, self.b.jid, self.a1.jid))
        self.assertEqual(inner.findtext('{jabber:client}body'), 'to the first resource')

    def test_sent_copy(self):
        self.enable(self.a2)
        mid = self.a1.message(BJ, 'from the first resource')
        self.b.wait(lambda s: is_msg(s, id_=mid))
        c = self.a2.wait(lambda s: carbon(s, 'sent') is not None, what='sent carbon')
        self.assertEqual(c.get('from'), AJ)
        inner = carbon(c, 'sent')
        self.assertEqual((inner.get('id'), inner.get('from'), inner.get('to')),
                         (mid, self.a1.jid, BJ))

    def test_not_enabled_or_disabled_gets_nothing(self):
        self.enable(self.a2)
        self.a2.iq_ok('set', "<disable xmlns='%s'/>" % NS_CARBONS)
        self.a1.message(BJ, 'no copies')
        self.b.message(self.a1.jid, 'no copies either')
        self.a1.sync()
        self.b.sync()
        self.a2.expect_none(lambda s: carbon(s, 'sent') is not None or carbon(s, 'received') is not None,
                            'a carbon after disable')

    def test_private_and_no_copy_and_ineligible(self):
        self.enable(self.a2)
        self.a1.message(BJ, 'private', children="<private xmlns='%s'/>" % NS_CARBONS)
        self.a1.message(BJ, 'no-copy', children="<no-copy xmlns='urn:xmpp:hints'/>")
        self.a1.message(BJ, 'headline', type_='headline')
        self.a1.message(BJ, None, type_='normal')  # normal without a body
        self.a1.sync()
        self.b.sync()
        self.a2.expect_none(lambda s: carbon(s, 'sent') is not None, 'an ineligible carbon')

    def test_chat_state_is_eligible(self):
        self.enable(self.a2)
        self.a1.message(BJ, None, children="<composing xmlns='%s'/>" % NS_CHATSTATES)
        c = self.a2.wait(lambda s: carbon(s, 'sent') is not None, what='carbon of a chat state')
        self.assertIsNotNone(carbon(c, 'sent').find(q(NS_CHATSTATES, 'composing')))

    def test_bare_jid_message_copies_lower_priority(self):
        self.enable(self.a2)
        mid = self.b.message(AJ, 'to the bare JID')
        self.a1.wait(lambda s: is_msg(s, id_=mid))  # highest priority gets it
        c = self.a2.wait(lambda s: carbon(s, 'received') is not None, what='received carbon')
        self.assertEqual(carbon(c, 'received').get('id'), mid)


class CsiTest(IMTestCase):
    def test_inactive_holds_presence_and_chat_states(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'b')
        # mutual subscription so that presence flows
        a.sub('subscribe', BJ)
        b.wait(lambda x: x.get('type') == 'subscribe')
        b.sub('subscribed', AJ)
        b.sub('subscribe', AJ)
        a.wait(lambda x: x.get('type') == 'subscribe')
        a.sub('subscribed', BJ)
        a.sync()
        b.sync()
        a.take()
        a.send("<inactive xmlns='%s'/>" % NS_CSI)
        a.sync()  # the server has seen it before bob sends anything
        b.presence(status='first')
        b.presence(status='second')
        b.message(a.jid, None, children="<composing xmlns='%s'/>" % NS_CHATSTATES)
        b.sync()
        # No ping here: an IQ result is important and would flush what is held. Read what
        # arrives for a while instead (bob's stanzas were all processed before his sync).
        a.pump(0.7)
        a.expect_none(lambda x: is_pres(x, from_=b.jid) or is_msg(x), 'held while inactive',
                      sync=False)
        # an important stanza flushes what waited, in order, then itself
        mid = b.message(a.jid, 'important')
        got = a.wait(lambda x: is_msg(x, id_=mid), what='message with a body')
        earlier = a.take()
        kinds = [(x.tag.split('}')[1], x.findtext('{jabber:client}status')) for x in earlier]
        self.assertIn(('presence', 'second'), kinds)
        self.assertNotIn(('presence', 'first'), kinds)  # only the newest presence per sender
        self.assertIsNotNone(got)
        # active: later updates flow at once
        a.send("<inactive xmlns='%s'/>" % NS_CSI)
        a.sync()
        b.presence(status='third')
        b.sync()
        a.send("<active xmlns='%s'/>" % NS_CSI)
        p = a.wait(lambda x: is_pres(x, from_=b.jid), what='held presence after active')
        self.assertEqual(p.findtext('{jabber:client}status'), 'third')

    def test_feature_advertised(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        self.assertIsNotNone(a.features.find(q(NS_CSI, 'csi')), to_str(a.features))


def main():
    result = unittest.main(exit=False, verbosity=2).result
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print('%d passed, %d failed' % (result.testsRun - failed, failed))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
