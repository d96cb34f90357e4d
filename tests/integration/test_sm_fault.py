"""Fault test for stream management acknowledgements (XEP-0198): hearthd is
killed with SIGKILL while a sender with SM enabled streams messages to an
offline user. Every message the server had acknowledged (h of an <a/> the
sender received) was committed to offline storage, so after a restart on the
same data directory the recipient gets each of them, and none twice.

The sender keeps at most WINDOW messages unacknowledged (it waits for <a/>
before going further), answers the server's <r/>, and sends its own <r/>
every 10 messages; the kill comes mid-stream, right after a burst of
BURST more messages, so that some are in flight."""

import time

from hearth import StreamClosed, main, q
from imlib import IMClient, IMTestCase, TIMEOUT, is_msg, note, offline_count

NS_SM3 = 'urn:xmpp:sm:3'
BJ = 'bob@localhost'
TOTAL = 300
WINDOW = 40
BURST = 30


class Sender(IMClient):
    """Counts what it receives (for answering <r/>) and records every <a/>."""

    def __init__(self, server=None, **kw):
        super().__init__(server, **kw)
        self.sm = False
        self.h_in = 0
        self.acks = []

    def next_event(self, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            kind, elem = super().next_event(max(deadline - time.monotonic(), 0.001))
            if kind != 'stanza':
                return kind, elem
            if elem.tag == q(NS_SM3, 'r'):
                try:
                    self.send("<a xmlns='%s' h='%d'/>" % (NS_SM3, self.h_in))
                except OSError:
                    pass
                continue
            if elem.tag == q(NS_SM3, 'a'):
                self.acks.append(int(elem.get('h')))
                continue
            if elem.tag == q(NS_SM3, 'enabled'):
                self.sm = True
            elif self.sm and elem.tag.startswith('{jabber:client}'):
                self.h_in += 1
            return kind, elem

    def top(self):
        return max(self.acks) if self.acks else 0

    def read_for(self, deadline):
        """Read (acks included) until the deadline or EOF; False at EOF."""
        while time.monotonic() < deadline:
            try:
                kind, elem = self.next_event(max(deadline - time.monotonic(), 0.001))
            except AssertionError as e:
                if isinstance(e, StreamClosed):
                    return False
                return True  # nothing more within the deadline
            if kind == 'eof':
                return False
            if kind == 'stanza':
                self.backlog.append(elem)
        return True


class SMFaultTest(IMTestCase):
    settings = {'offline.quota': 5000}

    def stream_and_kill(self, s, kill_at):
        """Streams up to TOTAL messages; SIGKILL once the acknowledged count
        reaches kill_at. Returns (ids sent, highest h acknowledged)."""
        a = Sender(s)
        self.addCleanup(a.close)
        a.login('alice', self.users['alice'], resource='sender')
        a.send("<enable xmlns='%s'/>" % NS_SM3)
        a.wait(lambda st: st.tag in (q(NS_SM3, 'enabled'), q(NS_SM3, 'failed')))
        self.assertTrue(a.sm, 'stream management not enabled')
        ids = []
        killed = False
        deadline = time.monotonic() + 60

        def send_one():
            id_ = 'fault-%03d' % (len(ids) + 1)
            a.message(BJ, 'message %d' % (len(ids) + 1), id_=id_)
            ids.append(id_)
            if len(ids) % 10 == 0:
                a.send("<r xmlns='%s'/>" % NS_SM3)

        while len(ids) < TOTAL:
            # window: wait for acks before going further
            while len(ids) - a.top() >= WINDOW:
                if time.monotonic() > deadline:
                    self.fail('no acknowledgement progress: %d sent, h=%d' % (len(ids), a.top()))
                a.read_for(min(time.monotonic() + 0.2, deadline))
            send_one()
            a.read_for(time.monotonic())  # whatever is readable now
            if a.top() >= kill_at:
                # a burst the server is still busy with when it dies
                for _ in range(min(BURST, TOTAL - len(ids))):
                    send_one()
                s.kill()
                killed = True
                break
        self.assertTrue(killed, 'all %d messages acknowledged before the kill point %d' % (TOTAL, kill_at))
        # acks the server wrote before it died are still in our socket buffer
        a.read_for(time.monotonic() + TIMEOUT)
        top = a.top()
        self.assertLessEqual(top, len(ids), 'h above the number of messages sent')
        a.close()
        return ids, top

    def run_case(self, kill_at):
        s = self.start_server()
        ids, top = self.stream_and_kill(s, kill_at)
        note('kill at h>=%d: %d sent, %d acknowledged' % (kill_at, len(ids), top))
        s.start()  # same data directory
        b = self.connect(s, 'bob', 'b', presence=False)
        b.presence()
        must = ids[:top]
        for i in must:
            b.wait(lambda st, i=i: is_msg(st, id_=i), timeout=TIMEOUT,
                   what='acknowledged message %s (h=%d)' % (i, top))
        # everything stored has been flushed once the offline table is empty
        deadline = time.monotonic() + TIMEOUT
        while offline_count(s, 'bob') != 0:
            if time.monotonic() > deadline:
                self.fail('offline rows for bob stay %r' % offline_count(s, 'bob'))
            b.pump(0.05)
        b.sync()
        rest = [m.get('id') for m in b.take(lambda st: is_msg(st))]
        got = must + rest
        dups = sorted({i for i in got if got.count(i) > 1})
        self.assertEqual(dups, [], 'delivered twice')
        unknown = [i for i in rest if i not in ids]
        self.assertEqual(unknown, [], 'messages that were never sent')
        self.assertEqual(sorted(got), ids[:len(got)], 'not a prefix of what was sent: %s' % got)
        note('delivered %d: %d acknowledged + %d committed without an ack seen' % (len(got), top, len(rest)))

    def test_kill_early(self):
        self.run_case(20)

    def test_kill_mid_stream(self):
        self.run_case(120)

    def test_kill_late(self):
        self.run_case(240)


if __name__ == '__main__':
    main()
