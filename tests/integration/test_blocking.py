"""Blocking Command (XEP-0191): block list, block, unblock, unblock all,
pushes to the user's resources, what happens to stanzas from and to a
blocked JID, persistence."""

from hearth import NS_DISCO_INFO, q, to_str, main
from imlib import (NS_BLOCKING, NS_BLOCKING_ERRORS, IMTestCase, app_error, bare, err, is_block_push, is_iq,
                   is_msg, is_pres, is_sub, make_state)

AJ = 'alice@localhost'
BJ = 'bob@localhost'
CJ = 'carol@localhost'


def push_jids(s):
    el = s.find(q(NS_BLOCKING, 'block'))
    if el is None:
        el = s.find(q(NS_BLOCKING, 'unblock'))
    return el.tag.split('}')[1], sorted(i.get('jid') for i in el.findall(q(NS_BLOCKING, 'item')))


class BlockingTest(IMTestCase):
    def setUp(self):
        self.s = self.start_server()

    def test_feature_and_empty_list(self):
        a = self.connect(self.s, 'alice', 'a')
        r = a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to='localhost')
        feats = [f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))]
        self.assertIn(NS_BLOCKING, feats, to_str(r))
        self.assertEqual(a.blocklist(), [])

    def test_block_unblock_pushes(self):
        a1 = self.connect(self.s, 'alice', 'a1')
        a2 = self.connect(self.s, 'alice', 'a2')
        c = self.connect(self.s, 'carol', 'c')
        for x in (a1, a2, c):
            self.assertEqual(x.blocklist(), [])
        r = a1.block(BJ, 'dave@localhost/phone')
        self.assertEqual(r.get('type'), 'result', to_str(r))
        for x in (a1, a2):
            p = x.wait(is_block_push, what='block push')
            self.assertIn(p.get('from'), (None, AJ), to_str(p))
            self.assertEqual(push_jids(p), ('block', [BJ, 'dave@localhost/phone']))
        self.assertEqual(a2.blocklist(), [BJ, 'dave@localhost/phone'])
        r = a2.unblock(BJ)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        for x in (a1, a2):
            p = x.wait(is_block_push, what='unblock push')
            self.assertEqual(push_jids(p), ('unblock', [BJ]))
        self.assertEqual(a1.blocklist(), ['dave@localhost/phone'])
        a1.block(BJ, CJ)
        for x in (a1, a2):
            x.wait(is_block_push)
        r = a1.unblock()  # unblock all
        self.assertEqual(r.get('type'), 'result', to_str(r))
        for x in (a1, a2):
            p = x.wait(is_block_push, what='unblock-all push')
            self.assertEqual(push_jids(p), ('unblock', []))
        self.assertEqual(a2.blocklist(), [])
        self.settle(a1, c)
        c.expect_none(is_block_push, "push to another user")

    def test_errors(self):
        a = self.connect(self.s, 'alice', 'a')
        r = a.iq('set', "<block xmlns='%s'/>" % NS_BLOCKING)
        self.assertEqual((r.get('type'), err(r)[1]), ('error', 'bad-request'), to_str(r))
        r = a.block('a@b@localhost')
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertIn(err(r)[1], ('jid-malformed', 'bad-request'), to_str(r))
        a.expect_none(is_block_push, 'push after a refused block')
        self.assertEqual(a.blocklist(), [])

    def test_blocked_contact_cannot_reach_user(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        make_state(self, a, b, 'both')
        a.blocklist()
        self.assertEqual(a.block(BJ).get('type'), 'result')
        # blocking sends unavailable to the contact (XEP-0191 3.3)
        b.wait(lambda s: is_pres(s, from_=a.jid, type_='unavailable'), what='unavailable on block')
        for to in (AJ, a.jid):
            id_ = b.message(to, 'can you hear me?')
            e = b.wait(lambda s: is_msg(s, id_=id_), what='error for a blocked message')
            self.assertEqual(e.get('type'), 'error', to_str(e))
            self.assertEqual(err(e)[1], 'service-unavailable', to_str(e))
        r = b.iq('get', "<query xmlns='jabber:iq:version'/>", to=a.jid)
        self.assertEqual((r.get('type'), err(r)[1]), ('error', 'service-unavailable'), to_str(r))
        b.presence(status='still here')
        b.presence(to=a.jid, status='directed')
        b.sub('subscribe', AJ)
        self.settle(b, a, b)
        b.expect_none(lambda s: s.tag.endswith('presence') and s.get('type') == 'error', 'presence error')
        a.expect_none(lambda s: bare(s.get('from')) == BJ, 'anything from a blocked contact')
        # and bob no longer sees alice's presence
        a.presence(status='changed')
        self.settle(a, b)
        b.expect_none(lambda s: is_pres(s, from_bare=AJ), 'presence to a blocked contact')

    def test_no_unavailable_on_block_without_subscription(self):
        # XEP-0191 3.3: unavailable goes to the blocked contact only if the
        # contact may receive the user's presence (a subscription or a
        # directed presence); bob has neither
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        self.assertEqual(a.block(BJ).get('type'), 'result')
        self.settle(a, b)
        b.expect_none(lambda s: bare(s.get('from')) == AJ, 'presence to a contact without a subscription')

    def test_user_cannot_reach_blocked_contact(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        self.assertEqual(a.block(BJ).get('type'), 'result')
        self.settle(a, b)
        b.take(lambda s: is_pres(s, from_bare=AJ, type_='unavailable'))  # see the test above
        for to in (BJ, b.jid):
            id_ = a.message(to, 'to a blocked JID')
            e = a.wait(lambda s: is_msg(s, id_=id_), what='error for a message to a blocked JID')
            self.assertEqual(e.get('type'), 'error', to_str(e))
            self.assertEqual(err(e)[1], 'not-acceptable', to_str(e))
            self.assertIsNotNone(app_error(e, NS_BLOCKING_ERRORS), 'no <blocked/> condition: %s' % to_str(e))
        r = a.iq('get', "<query xmlns='jabber:iq:version'/>", to=b.jid)
        self.assertEqual((r.get('type'), err(r)[1]), ('error', 'not-acceptable'), to_str(r))
        self.assertIsNotNone(app_error(r, NS_BLOCKING_ERRORS), to_str(r))
        a.presence(to=b.jid)
        self.settle(a, b)
        b.expect_none(lambda s: bare(s.get('from')) == AJ, 'stanza to a blocked JID routed')

    def test_unblock_restores(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        make_state(self, a, b, 'both')
        a.block(BJ)
        b.wait(lambda s: is_pres(s, from_=a.jid, type_='unavailable'))
        a.unblock(BJ)
        a.sync()
        id_ = b.message(AJ, 'hello again')
        m = a.wait(lambda s: is_msg(s, id_=id_), what='message after unblock')
        self.assertEqual(m.get('from'), b.jid)
        id_ = a.message(BJ, 'welcome back')
        b.wait(lambda s: is_msg(s, id_=id_))
        a.presence(status='visible again')
        b.wait(lambda s: is_pres(s, from_=a.jid), what='presence after unblock')

    def test_full_jid_item_blocks_only_that_resource(self):
        a = self.connect(self.s, 'alice', 'a')
        b1 = self.connect(self.s, 'bob', 'b1')
        b2 = self.connect(self.s, 'bob', 'b2')
        a.block(b1.jid)
        id1 = b1.message(a.jid, 'from b1')
        e = b1.wait(lambda s: is_msg(s, id_=id1))
        self.assertEqual(e.get('type'), 'error', to_str(e))
        id2 = b2.message(a.jid, 'from b2')
        m = a.wait(lambda s: is_msg(s, id_=id2), what='message from the unblocked resource')
        self.assertEqual(m.get('from'), b2.jid)

    def test_blocked_messages_not_stored_offline(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        a.block(BJ)
        a.logout()
        id_ = b.message(AJ, 'while you were away')
        e = b.wait(lambda s: is_msg(s, id_=id_), what='error for a blocked message to an offline user')
        self.assertEqual(e.get('type'), 'error', to_str(e))
        marker = self.connect(self.s, 'carol', 'c').message(AJ, 'marker')
        a = self.connect(self.s, 'alice', 'a')
        a.wait(lambda s: is_msg(s, id_=marker), what='the marker')
        a.expect_none(lambda s: is_msg(s, id_=id_), 'blocked message stored and delivered')

    def test_persists_across_restart(self):
        a = self.connect(self.s, 'alice', 'a')
        a.block(BJ, CJ)
        a.unblock(CJ)
        a.logout()
        self.s.restart()
        a = self.connect(self.s, 'alice', 'a')
        self.assertEqual(a.blocklist(), [BJ])
        b = self.connect(self.s, 'bob', 'b')
        id_ = b.message(AJ, 'still blocked?')
        e = b.wait(lambda s: is_msg(s, id_=id_))
        self.assertEqual(e.get('type'), 'error', to_str(e))


class BlockListSizeTest(IMTestCase):
    def test_list_bounded_by_result_size(self):
        # Regression: 10,000 JIDs of about 2 KB each were accepted, a block list result of
        # 20 MB, past the output bound: every later fetch ended the session.
        s = self.start_server()
        a = self.connect(s, 'alice', 'a', roster=False, presence=False)
        node, res = 'n' * 1000, 'r' * 1000
        blocked = 0
        for batch in range(30):
            jids = ['%s%04d@localhost/%s' % (node, batch * 100 + i, res) for i in range(100)]
            r = a.block(*jids)
            if r.get('type') != 'result':
                self.assertEqual(err(r)[1], 'policy-violation', to_str(r)[-300:])
                break
            blocked += 100
        else:
            self.fail('30 batches of 100 long JIDs (6 MB) were all accepted')
        self.assertGreater(blocked, 0)
        a.take()
        self.assertEqual(len(a.blocklist()), blocked)
        a.sync()


if __name__ == '__main__':
    main()
