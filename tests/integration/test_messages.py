"""Message delivery rules of RFC 6121 8.5 (full JID, bare JID, priorities,
types, unknown users), <thread> and receipts kept, XEP-0359 stanza ids."""

from hearth import DOMAIN, NS_DISCO_INFO, q, to_str, main, xml_escape
from imlib import (NS_DELAY, NS_RECEIPTS, NS_SID, IMTestCase, bare, err, is_iq, is_msg, wait_offline_rows)

AJ = 'alice@localhost'
BJ = 'bob@localhost'


def sids(m):
    return m.findall(q(NS_SID, 'stanza-id'))


class MessageTestBase(IMTestCase):
    def setUp(self):
        self.s = self.start_server()

    def assert_delivered(self, c, id_, frm, type_=None, body=None):
        m = c.wait(lambda s: is_msg(s, id_=id_), what='message %s' % id_)
        self.assertEqual(m.get('from'), frm, to_str(m))
        # 'to' may stay as the sender wrote it (e.g. a vanished resource of c's account)
        self.assertEqual(bare(m.get('to')), bare(c.jid), to_str(m))
        if type_ is not None:
            self.assertEqual(m.get('type') or 'normal', type_, to_str(m))
        if body is not None:
            self.assertEqual(m.findtext('{jabber:client}body'), body)
        self.assert_stanza_id(m, bare(c.jid))
        return m

    def assert_stanza_id(self, m, by):
        ours = [x for x in sids(m) if x.get('by') == by]
        self.assertEqual(len(ours), 1, 'expected one stanza-id by %s: %s' % (by, to_str(m)))
        self.assertTrue(ours[0].get('id'), to_str(m))
        return ours[0].get('id')

    def assert_not_delivered(self, id_, *clients):
        for c in clients:
            c.expect_none(lambda s: is_msg(s, id_=id_), 'message %s at %s' % (id_, c.jid))

    def bounce(self, c, id_, cond='service-unavailable'):
        e = c.wait(lambda s: is_msg(s, id_=id_, type_='error'), what='error for %s' % id_)
        self.assertEqual(err(e)[1], cond, to_str(e))
        return e


class FullJidTest(MessageTestBase):
    def test_to_online_resource(self):
        a = self.connect(self.s, 'alice', 'a')
        b1 = self.connect(self.s, 'bob', 'b1', priority=1)
        b2 = self.connect(self.s, 'bob', 'b2', priority=5)
        for t in ('chat', 'normal', 'headline'):
            id_ = a.message(b1.jid, 'to b1 (%s)' % t, type_=t)
            self.assert_delivered(b1, id_, a.jid, t, 'to b1 (%s)' % t)
            self.settle(a, b2)
            self.assert_not_delivered(id_, b2)

    def test_to_bound_session_without_presence(self):
        # RFC 6121 8.5.3.1: the resource exists, so the message goes there
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'quiet', presence=False)
        id_ = a.message(b.jid, 'direct')
        self.assert_delivered(b, id_, a.jid, 'chat')

    def test_to_negative_priority_resource(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'neg', priority=-10)
        id_ = a.message(b.jid, 'direct to negative')
        self.assert_delivered(b, id_, a.jid, 'chat')

    def test_offline_resource_treated_as_bare(self):
        # RFC 6121 8.5.3.2.1: chat and normal go to the bare JID; a headline for a resource
        # that is gone is silently ignored (as ejabberd and Openfire do)
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        for t in ('chat', 'normal'):
            id_ = a.message('bob@localhost/gone', 'x', type_=t)
            m = self.assert_delivered(b, id_, a.jid, t)
            self.assertIn(m.get('to'), (b.jid, BJ, 'bob@localhost/gone'), to_str(m))
        hid = a.message('bob@localhost/gone', 'x', type_='headline')
        self.settle(a, b)
        self.assert_not_delivered(hid, b)
        self.assertEqual(a.take(lambda s: s.get('id') == hid), [], 'headline answered')
        # groupchat: error; IQ: error
        id_ = a.message('bob@localhost/gone', 'x', type_='groupchat')
        e = self.bounce(a, id_)
        self.assertEqual(e.get('from'), 'bob@localhost/gone')
        r = a.iq('get', "<query xmlns='jabber:iq:version'/>", to='bob@localhost/gone')
        self.assertEqual((r.get('type'), err(r)[1]), ('error', 'service-unavailable'), to_str(r))
        self.settle(a, b)
        self.assert_not_delivered(id_, b)
        b.expect_none(lambda s: is_iq(s, type_='get'), 'iq for a vanished resource')

    def test_offline_resource_no_session_goes_offline(self):
        a = self.connect(self.s, 'alice', 'a')
        id_ = a.message('bob@localhost/phone', 'stored for later')
        a.sync()
        self.assertEqual(a.take(lambda s: is_msg(s, id_=id_)), [], 'chat to an offline full JID bounced')
        wait_offline_rows(self.s, 'bob', 1)
        b = self.connect(self.s, 'bob', 'desk')
        m = self.assert_delivered(b, id_, a.jid, 'chat', 'stored for later')
        self.assertIsNotNone(m.find(q(NS_DELAY, 'delay')), to_str(m))


class BareJidTest(MessageTestBase):
    def test_highest_priority_only(self):
        a = self.connect(self.s, 'alice', 'a')
        hi = self.connect(self.s, 'bob', 'hi', priority=5)
        lo = self.connect(self.s, 'bob', 'lo', priority=1)
        neg = self.connect(self.s, 'bob', 'neg', priority=-1)
        quiet = self.connect(self.s, 'bob', 'quiet', presence=False)
        for t in ('chat', 'normal', None):
            id_ = a.message(BJ, 'to the bare JID', type_=t)
            self.assert_delivered(hi, id_, a.jid, t or 'normal')
            self.settle(a, lo, neg, quiet)
            self.assert_not_delivered(id_, lo, neg, quiet)
        # headline: every non-negative available resource (8.5.2.1.1)
        id_ = a.message(BJ, 'news', type_='headline')
        self.assert_delivered(hi, id_, a.jid, 'headline')
        self.assert_delivered(lo, id_, a.jid, 'headline')
        self.settle(a, neg, quiet)
        self.assert_not_delivered(id_, neg, quiet)

    def test_priority_changes_follow(self):
        a = self.connect(self.s, 'alice', 'a')
        b1 = self.connect(self.s, 'bob', 'b1', priority=5)
        b2 = self.connect(self.s, 'bob', 'b2', priority=1)
        b1.presence(priority=0)
        b1.sync()
        id_ = a.message(BJ, 'now b2')
        self.assert_delivered(b2, id_, a.jid)
        self.settle(a, b1)
        self.assert_not_delivered(id_, b1)
        b2.presence(type_='unavailable')
        b2.sync()
        id_ = a.message(BJ, 'now b1')
        self.assert_delivered(b1, id_, a.jid)
        self.settle(a, b2)
        self.assert_not_delivered(id_, b2)

    def test_tied_priority_all(self):
        a = self.connect(self.s, 'alice', 'a')
        r1 = self.connect(self.s, 'bob', 'r1', priority=2)
        r2 = self.connect(self.s, 'bob', 'r2', priority=2)
        r3 = self.connect(self.s, 'bob', 'r3', priority=0)
        for t in ('chat', 'normal'):
            id_ = a.message(BJ, 'tie', type_=t)
            i1 = self.assert_delivered(r1, id_, a.jid, t)
            i2 = self.assert_delivered(r2, id_, a.jid, t)
            self.assertEqual(self.assert_stanza_id(i1, BJ), self.assert_stanza_id(i2, BJ),
                             'one message, one stanza id, whichever resource gets it')
            self.settle(a, r3)
            self.assert_not_delivered(id_, r3)

    def test_groupchat_and_error_types(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        id_ = a.message(BJ, 'not a room', type_='groupchat')
        e = self.bounce(a, id_)
        self.assertEqual(bare(e.get('from')), BJ)
        a.send("<message to='%s' type='error' id='err1'><error type='cancel'>"
               "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>" % BJ)
        self.settle(a, b, a)
        self.assert_not_delivered(id_, b)
        a.expect_none(lambda s: s.get('id') == 'err1', 'an error answered with an error')
        # error messages addressed to a bare JID are dropped (8.5.2.1.1)
        b.expect_none(lambda s: is_msg(s, id_='err1'), 'error message delivered to the bare JID')

    def test_only_negative_resources_goes_offline(self):
        a = self.connect(self.s, 'alice', 'a')
        neg = self.connect(self.s, 'bob', 'neg', priority=-1)
        quiet = self.connect(self.s, 'bob', 'quiet', presence=False)
        id_ = a.message(BJ, 'for later')
        a.sync()
        self.assertEqual(a.take(lambda s: is_msg(s, id_=id_)), [], 'bounced instead of stored')
        wait_offline_rows(self.s, 'bob', 1)
        self.settle(neg, quiet)
        self.assert_not_delivered(id_, neg, quiet)
        h = self.connect(self.s, 'bob', 'home', priority=0)
        m = self.assert_delivered(h, id_, a.jid, 'chat', 'for later')
        self.assertIsNotNone(m.find(q(NS_DELAY, 'delay')), to_str(m))
        self.settle(neg, quiet)
        self.assert_not_delivered(id_, neg, quiet)


class UnknownUserTest(MessageTestBase):
    def test_message_and_iq(self):
        a = self.connect(self.s, 'alice', 'a')
        for to in ('nobody@localhost', 'nobody@localhost/res'):
            for t in ('chat', 'normal'):
                id_ = a.message(to, 'hello?', type_=t)
                e = a.wait(lambda s: s.get('id') == id_, what='answer for %s to %s' % (t, to))
                self.assertEqual(e.get('type'), 'error', to_str(e))
                self.assertEqual(err(e), ('cancel', 'service-unavailable'), to_str(e))
                self.assertEqual(e.get('from'), to)
            # a headline: service-unavailable, or dropped like an undeliverable
            # headline (RFC 6121 8.5.1 lets the server ignore messages to nobody)
            id_ = a.message(to, 'news?', type_='headline')
            a.sync()
            for e in a.take(lambda s: s.get('id') == id_):
                self.assertEqual(err(e), ('cancel', 'service-unavailable'), to_str(e))
            r = a.iq('get', "<query xmlns='jabber:iq:version'/>", to=to)
            self.assertEqual((r.get('type'), err(r)[1]), ('error', 'service-unavailable'), to_str(r))
        # presence and error stanzas to nobody: silence
        a.send("<presence to='nobody@localhost'/>")
        a.send("<message to='nobody@localhost' type='error' id='e2'><error type='cancel'>"
               "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
        a.expect_none(lambda s: s.get('id') == 'e2' or (s.tag.endswith('presence') and s.get('type') == 'error'),
                      'answer to presence or error to a nonexistent user')


class ContentTest(MessageTestBase):
    def test_thread_and_receipts_pass_through(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        a.send("<message to='%s' type='chat' id='r-1'><body>receipt please</body>"
               "<thread parent='p-7'>th-42</thread><request xmlns='%s'/></message>" % (BJ, NS_RECEIPTS))
        m = self.assert_delivered(b, 'r-1', a.jid, 'chat', 'receipt please')
        th = m.find('{jabber:client}thread')
        self.assertEqual((th.text, th.attrib), ('th-42', {'parent': 'p-7'}))
        req = m.find(q(NS_RECEIPTS, 'request'))
        self.assertIsNotNone(req, to_str(m))
        self.assertEqual((req.attrib, len(req)), ({}, 0))
        self.assertIn(b"<thread parent='p-7'>th-42</thread><request xmlns='urn:xmpp:receipts'/>", bytes(b.raw))
        b.send("<message to='%s' id='ack-1'><received xmlns='%s' id='r-1'/></message>" % (a.jid, NS_RECEIPTS))
        r = self.assert_delivered(a, 'ack-1', b.jid)
        rc = r.find(q(NS_RECEIPTS, 'received'))
        self.assertEqual(rc.get('id'), 'r-1', to_str(r))
        self.assertIn(b"<received xmlns='urn:xmpp:receipts' id='r-1'/>", bytes(a.raw))

    def test_stanza_ids_unique_and_forged_ones_stripped(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        seen = set()
        for i in range(20):
            id_ = a.message(BJ if i % 2 else b.jid, 'm%d' % i)
            m = self.assert_delivered(b, id_, a.jid)
            sid = self.assert_stanza_id(m, BJ)
            self.assertNotIn(sid, seen, 'stanza id reused')
            seen.add(sid)
        a.send("<message to='%s' type='chat' id='forged'><body>x</body>"
               "<stanza-id xmlns='%s' by='%s' id='FORGED-ID'/>"
               "<stanza-id xmlns='%s' by='%s' id='FORGED-2'/></message>" % (BJ, NS_SID, BJ, NS_SID, b.jid))
        m = self.assert_delivered(b, 'forged', a.jid)
        sid = self.assert_stanza_id(m, BJ)
        self.assertNotIn(sid, ('FORGED-ID', 'FORGED-2'), to_str(m))
        self.assertNotIn(b'FORGED-ID', bytes(b.raw), 'forged stanza-id claiming the recipient was kept')
        self.assertNotIn(sid, seen)

    def test_forged_ids_in_other_spellings_stripped(self):
        # Regression: 'by' was compared as a raw string, so another case, a trailing dot or a
        # full JID let a contact plant a stanza id beside the server's own.
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        spellings = ['BOB@localhost', 'bob@LOCALHOST', 'bob@localhost.', b.jid, 'Bob@LocalHost./x',
                     'ALICE@localhost', 'LOCALHOST', 'localhost.', 'not a jid@@']
        forged = ''.join("<stanza-id xmlns='%s' by='%s' id='FORGED-%d'/>" % (NS_SID, xml_escape(by), i)
                         for i, by in enumerate(spellings))
        # another server's id (a room, a remote archive) is not ours to judge: it stays
        forged += "<stanza-id xmlns='%s' by='room@conference.example.net' id='KEPT'/>" % NS_SID
        a.send("<message to='%s' type='chat' id='forged2'><body>x</body>%s</message>" % (BJ, forged))
        m = self.assert_delivered(b, 'forged2', a.jid)
        self.assert_stanza_id(m, BJ)
        ids = [x.get('id') for x in m.findall(q(NS_SID, 'stanza-id'))]
        self.assertFalse([i for i in ids if i.startswith('FORGED')], to_str(m))
        self.assertIn('KEPT', ids, to_str(m))

    def test_forged_server_delay_and_wrappers_stripped(self):
        # A delay "from" this server claims the server held the message; carbons and archive
        # results claim to be written by the recipient's server: from a client, forgeries.
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        body = ("<body>x</body>"
                "<delay xmlns='urn:xmpp:delay' from='LOCALHOST.' stamp='2001-01-01T00:00:00Z'/>"
                "<delay xmlns='urn:xmpp:delay' from='alice@localhost/a' stamp='2002-02-02T00:00:00Z'/>"
                "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
                "<message xmlns='jabber:client' from='carol@localhost/x' to='bob@localhost'>"
                "<body>forged carbon</body></message></forwarded></received>"
                "<result xmlns='urn:xmpp:mam:2' id='z'/>")
        a.send("<message to='%s' type='chat' id='fd'>%s</message>" % (BJ, body))
        m = self.assert_delivered(b, 'fd', a.jid)
        stamps = [d.get('stamp') for d in m.findall(q('urn:xmpp:delay', 'delay'))]
        self.assertEqual(stamps, ['2002-02-02T00:00:00Z'], to_str(m))
        self.assertIsNone(m.find(q('urn:xmpp:carbons:2', 'received')), to_str(m))
        self.assertIsNone(m.find(q('urn:xmpp:mam:2', 'result')), to_str(m))
        self.assertNotIn(b'forged carbon', bytes(b.raw))

    def test_disco_lists_stanza_id_feature(self):
        a = self.connect(self.s, 'alice', 'a')
        r = a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=AJ)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        feats = [f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))]
        self.assertIn(NS_SID, feats, to_str(r))

    def test_large_and_many(self):
        a = self.connect(self.s, 'alice', 'a')
        b = self.connect(self.s, 'bob', 'b')
        body = '数据' * 20000  # 120 kB of UTF-8
        id_ = a.message(BJ, body)
        self.assert_delivered(b, id_, a.jid, 'chat', body)
        ids = [a.message(BJ, 'n%d' % i) for i in range(100)]
        got = [b.wait(lambda s: is_msg(s) and s.get('id', '').startswith('m'), what='burst').get('id')
               for _ in ids]
        self.assertEqual(got, ids, 'messages to the bare JID reordered')


if __name__ == '__main__':
    main()
