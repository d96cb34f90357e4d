"""Offline messages (XEP-0160) with delay stamps (XEP-0203): what is
stored, when it is delivered, the quota, and durability across a SIGKILL."""

import calendar
import time

from hearth import q, to_str, main
from imlib import (NS_DELAY, NS_RECEIPTS, NS_SID, DELAY_STAMP, IMTestCase, IMClient, bare, err, is_msg,
                   kill_and_restart, offline_count, wait_offline_rows)

AJ = 'alice@localhost'
BJ = 'bob@localhost'


def parse_stamp(stamp):
    main_part = stamp.rstrip('Z').split('.')[0]
    return calendar.timegm(time.strptime(main_part, '%Y-%m-%dT%H:%M:%S'))


class OfflineTest(IMTestCase):
    def check_offline_copy(self, m, frm, body, t0, t1):
        self.assertEqual(m.get('from'), frm, to_str(m))
        self.assertEqual(m.findtext('{jabber:client}body'), body)
        delays = m.findall(q(NS_DELAY, 'delay'))
        self.assertEqual(len(delays), 1, 'expected one delay element: %s' % to_str(m))
        d = delays[0]
        self.assertEqual(d.get('from'), 'localhost', to_str(m))
        self.assertRegex(d.get('stamp') or '', DELAY_STAMP)
        stamp = parse_stamp(d.get('stamp'))
        self.assertGreaterEqual(stamp, int(t0) - 1, 'delay stamp before the message was sent')
        self.assertLessEqual(stamp, t1 + 1, 'delay stamp after the message was stored')
        ours = [x for x in m.findall(q(NS_SID, 'stanza-id')) if x.get('by') == BJ]
        self.assertEqual(len(ours), 1, 'offline copy without (or with several) stanza-id: %s' % to_str(m))

    def test_stored_and_delivered_once_with_delay(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        t0 = time.time()
        bodies = ['first', '第二 "two" <&>', 'third']
        ids = [a.message(BJ, body) for body in bodies]
        a.send("<message to='%s' id='normal1'><body>no type</body><thread>t-9</thread>"
               "<request xmlns='%s'/></message>" % (BJ, NS_RECEIPTS))
        ids.append('normal1')
        bodies.append('no type')
        a.sync()
        self.assertEqual(a.take(lambda st: is_msg(st)), [], 'sender got something back for offline messages')
        wait_offline_rows(s, 'bob', 4)
        t1 = time.time()
        # bound and roster fetched, but no presence yet: nothing
        b = self.connect(s, 'bob', 'b', presence=False)
        b.expect_none(is_msg, 'offline message before initial presence')
        b.presence(priority=0)
        got = [b.wait(lambda st: is_msg(st), what='offline message %d' % i) for i in range(4)]
        self.assertEqual([m.get('id') for m in got], ids, 'offline messages out of order')
        for m, body in zip(got, bodies):
            self.check_offline_copy(m, a.jid, body, t0, t1)
        self.assertEqual(got[3].findtext('{jabber:client}thread'), 't-9')
        self.assertIsNotNone(got[3].find(q(NS_RECEIPTS, 'request')))
        self.assertIn('第二'.encode(), bytes(b.raw))
        b.expect_none(is_msg, 'an offline message twice')
        wait_for_rows(self, s, 'bob', 0)
        # once only: the next login finds nothing
        b.logout()
        b = self.connect(s, 'bob', 'b2')
        b.expect_none(is_msg, 'offline messages delivered again')

    def test_negative_priority_does_not_flush(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        id_ = a.message(BJ, 'wait for non-negative')
        wait_offline_rows(s, 'bob', 1)
        b = self.connect(s, 'bob', 'b', priority=-1)
        b.expect_none(is_msg, 'offline message flushed to a negative priority')
        b.presence(priority=0)  # 0 counts as non-negative
        m = b.wait(lambda st: is_msg(st, id_=id_), what='offline message after priority 0')
        self.assertIsNotNone(m.find(q(NS_DELAY, 'delay')))

    def test_second_resource_does_not_get_them_again(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        id_ = a.message(BJ, 'once')
        wait_offline_rows(s, 'bob', 1)
        b1 = self.connect(s, 'bob', 'b1')
        b1.wait(lambda st: is_msg(st, id_=id_))
        b2 = self.connect(s, 'bob', 'b2')
        self.settle(b2, b1)
        b2.expect_none(is_msg, 'offline message to a second resource')
        b1.expect_none(is_msg, 'offline message twice')

    def test_quota(self):
        s = self.start_server(offline__quota=2)
        a = self.connect(s, 'alice', 'a')
        ids = [a.message(BJ, 'q%d' % i) for i in range(2)]
        wait_offline_rows(s, 'bob', 2)
        a.sync()
        self.assertEqual(a.take(lambda st: is_msg(st)), [])
        over = a.message(BJ, 'one too many')
        e = a.wait(lambda st: is_msg(st, id_=over), what='error for the message over the quota')
        self.assertEqual(e.get('type'), 'error', to_str(e))
        self.assertEqual(err(e)[1], 'service-unavailable', to_str(e))
        self.assertEqual(bare(e.get('from')), BJ)
        headline = a.message(BJ, 'headline over quota', type_='headline')  # not stored anyway: no error
        a.expect_none(lambda st: is_msg(st, id_=headline), 'error for a headline')
        self.assertEqual(offline_count(s, 'bob'), 2)
        b = self.connect(s, 'bob', 'b')
        got = [b.wait(lambda st: is_msg(st), what='stored message').get('id') for _ in ids]
        self.assertEqual(got, ids)
        b.expect_none(is_msg, 'message over the quota or headline delivered')
        # room again once delivered
        b.logout()
        wait_for_rows(self, s, 'bob', 0)
        id_ = a.message(BJ, 'fits again')
        a.expect_none(lambda st: is_msg(st, id_=id_, type_='error'), 'error under the quota')
        wait_offline_rows(s, 'bob', 1)

    def test_types_not_stored(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        h = a.message(BJ, 'headline', type_='headline')
        g = a.message(BJ, 'groupchat', type_='groupchat')
        a.send("<message to='%s' type='error' id='err1'><error type='cancel'>"
               "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>" % BJ)
        marker = a.message(BJ, 'marker')
        e = a.wait(lambda st: is_msg(st, id_=g), what='error for groupchat to an offline user')
        self.assertEqual(err(e)[1], 'service-unavailable', to_str(e))
        a.expect_none(lambda st: st.get('id') in (h, 'err1'), 'answer to headline or error')
        wait_offline_rows(s, 'bob', 1)
        b = self.connect(s, 'bob', 'b')
        b.wait(lambda st: is_msg(st, id_=marker), what='the marker')
        b.expect_none(is_msg, 'headline, groupchat or error from offline storage')

    def test_survives_sigkill(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        t0 = time.time()
        id_ = a.message(BJ, 'durable 持久')
        wait_offline_rows(s, 'bob', 1)  # committed
        t1 = time.time()
        kill_and_restart(s)
        b = self.connect(s, 'bob', 'b')
        m = b.wait(lambda st: is_msg(st, id_=id_), what='the message after SIGKILL and restart')
        self.check_offline_copy(m, 'alice@localhost/a', 'durable 持久', t0, t1)
        b.expect_none(is_msg, 'duplicate after restart')
        wait_for_rows(self, s, 'bob', 0)
        b.logout()
        kill_and_restart(s)
        b = self.connect(s, 'bob', 'b')
        b.expect_none(is_msg, 'delivered message back after a second SIGKILL')

    def test_session_without_presence_counts_unavailable(self):
        s = self.start_server()
        a = self.connect(s, 'alice', 'a')
        b = self.connect(s, 'bob', 'quiet', presence=False)
        id_ = a.message(BJ, 'you are not available yet')
        wait_offline_rows(s, 'bob', 1)
        b.expect_none(is_msg, 'bare-JID message to a session without presence')
        b.presence()
        m = b.wait(lambda st: is_msg(st, id_=id_), what='flushed at initial presence')
        self.assertIsNotNone(m.find(q(NS_DELAY, 'delay')))


def wait_for_rows(tc, s, user, n, timeout=5.0):
    deadline = time.monotonic() + timeout
    while True:
        c = offline_count(s, user)
        if c == n:
            return
        if time.monotonic() >= deadline:
            tc.fail('offline rows for %s: %r, expected %d' % (user, c, n))
        time.sleep(0.05)


if __name__ == '__main__':
    main()
