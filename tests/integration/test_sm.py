"""Stream management (XEP-0198, urn:xmpp:sm:3 and :2): enabling, the <failed/>
cases, acknowledgements both ways with exact counts, the errors for a bad
<a/>, and resumption: a session whose TCP connection drops is kept for
c2s.resume_timeout seconds (contacts see no unavailable, messages queue up),
a new connection resumes it and gets every unacknowledged stanza exactly
once; when nobody resumes it the messages go to another resource or offline.

SMClient counts what it handles the way a client must: every message,
presence and iq received after <enabled/> (or <resumed/>, from the h it
reported). It answers the server's <r/> (auto_ack) and records every <a/>;
<a/> elements are also kept as stanzas so that a test can wait for them."""

import os
import re
import socket
import time

from hearth import DOMAIN, NS_STANZAS, NS_STREAM, NS_STREAMS_ERR, StreamClosed, q, to_str, main, wait_for
from imlib import (IQ, MESSAGE, PRESENCE, TIMEOUT, IMClient, IMTestCase, bare, is_iq, is_msg, is_pres,
                   make_state, note, offline_count, wait_offline_rows)

NS_SM3 = 'urn:xmpp:sm:3'
NS_SM2 = 'urn:xmpp:sm:2'
SM_NS = (NS_SM3, NS_SM2)
AJ = 'alice@localhost'
BJ = 'bob@localhost'
CJ = 'carol@localhost'
MAX32 = 2 ** 32
LOST = r'connection lost: session kept'


def sm_name(elem):
    """'r', 'a', 'enabled'... for a stream management element, else None."""
    for ns in SM_NS:
        prefix = '{%s}' % ns
        if elem.tag.startswith(prefix):
            return elem.tag[len(prefix):]
    return None


def sm_ns(elem):
    return elem.tag[1:].split('}', 1)[0] if elem.tag.startswith('{') else None


def is_sm(name):
    return lambda s: sm_name(s) == name


def is_a(s):
    return sm_name(s) == 'a'


def failed_condition(elem):
    for child in elem:
        if child.tag.startswith('{%s}' % NS_STANZAS):
            return child.tag.split('}', 1)[1]
    return None


class SMClient(IMClient):
    """IMClient that counts handled stanzas for XEP-0198."""

    def __init__(self, server=None, rcvbuf=None, **kw):
        super().__init__(server, **kw)
        self.rcvbuf = rcvbuf
        self.ns = None           # the SM namespace once enabled or resumed
        self.sm_id = None
        self.h_in = 0            # stanzas handled since <enabled/>, mod 2^32
        self.inlog = []          # (tag, id, from) of each counted stanza, in order
        self.auto_ack = True     # answer the server's <r/>
        self.requests = []       # (h_in, ns) at each <r/> from the server
        self.acks = []           # h of each <a/> from the server
        self._resume_h = None
        self.enabled_elem = None

    # -- socket ---------------------------------------------------------------

    def connect(self, port=None, direct_tls=False, timeout=5):
        if not self.rcvbuf:
            return super().connect(port=port, direct_tls=direct_tls, timeout=timeout)
        # a small receive buffer set before connect(): a slow reader fills up quickly
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.settimeout(timeout)
        sock.connect((self.host, port or self.server.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        return self

    # -- counting -------------------------------------------------------------

    def next_event(self, timeout=5):
        deadline = time.monotonic() + timeout
        while True:
            kind, elem = super().next_event(max(deadline - time.monotonic(), 0.001))
            if kind != 'stanza':
                return kind, elem
            name = sm_name(elem)
            if name == 'r':
                self.requests.append((self.h_in, sm_ns(elem)))
                if self.auto_ack:
                    try:
                        self.send_a()
                    except OSError:
                        pass  # the server has closed: nothing to answer
                continue
            if name == 'a':
                h = elem.get('h')
                self.acks.append(int(h) if h is not None and h.isdigit() else h)
            elif name == 'enabled':
                self.ns = sm_ns(elem)
                self.sm_id = elem.get('id')
                self.enabled_elem = elem
                self.h_in = 0
                self.inlog = []
            elif name == 'resumed':
                self.ns = sm_ns(elem)
                self.sm_id = elem.get('previd')
                self.h_in = self._resume_h
            elif self.ns and elem.tag in (IQ, MESSAGE, PRESENCE):
                self.h_in = (self.h_in + 1) % MAX32
                self.inlog.append((elem.tag, elem.get('id'), elem.get('from')))
            return kind, elem

    # -- stream management ----------------------------------------------------

    def send_a(self, h=None):
        self.send("<a xmlns='%s' h='%d'/>" % (self.ns or NS_SM3, self.h_in if h is None else h))

    def send_r(self):
        self.send("<r xmlns='%s'/>" % (self.ns or NS_SM3))

    def enable(self, resume=True, ns=NS_SM3, expect='enabled'):
        attr = " resume='true'" if resume else ''
        self.send("<enable xmlns='%s'%s/>" % (ns, attr))
        r = self.wait(lambda s: s.tag in (q(ns, 'enabled'), q(ns, 'failed')), what='<enabled/> or <failed/>')
        if expect and sm_name(r) != expect:
            raise AssertionError('%s: expected <%s/>, got %s' % (self.jid, expect, to_str(r)))
        return r

    def resume(self, previd, h, ns=NS_SM3):
        self._resume_h = h % MAX32
        self.send("<resume xmlns='%s' previd='%s' h='%d'/>" % (ns, previd, h))
        return self.wait(lambda s: s.tag in (q(ns, 'resumed'), q(ns, 'failed')), what='<resumed/> or <failed/>')

    def request_ack(self, want=None, timeout=TIMEOUT):
        """<r/>, then the <a/> elements until one has h == want (or the first one
        when want is None); returns the list of h values seen."""
        self.take(is_a)  # stale answers to earlier requests
        self.send_r()
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            a = self.wait(is_a, max(deadline - time.monotonic(), 0.01),
                          'an <a/> with h=%s (seen %s)' % (want, seen))
            seen.append(int(a.get('h')))
            if want is None or seen[-1] == want:
                return seen

    def read_until_closed(self, timeout=TIMEOUT):
        """Everything up to EOF; returns the stanzas (stream errors included)."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                kind, elem = self.next_event(max(deadline - time.monotonic(), 0.01))
            except StreamClosed:
                return seen
            if kind in ('eof', 'close'):
                if kind == 'eof':
                    return seen
                continue
            if kind == 'stanza':
                seen.append(elem)


class SMTestCase(IMTestCase):
    settings = {'c2s.resume_timeout': 30}

    def sm_client(self, server, user, resource=None, roster=True, presence=True, priority=None,
                  resume=True, ns=NS_SM3, auto_ack=True, rcvbuf=None):
        """Logged in and bound; roster and presence as asked; SM enabled."""
        c = SMClient(server, rcvbuf=rcvbuf)
        self.addCleanup(c.close)
        c.user = user
        c.password = self.users[user]
        c.login(user, c.password, resource=resource)
        if roster:
            c.roster_get()
        if presence:
            c.presence(priority=priority)
        c.sync()
        c.auto_ack = auto_ack
        el = c.enable(resume=resume, ns=ns)
        self.assertEqual(sm_ns(el), ns)
        return c

    def reconnect(self, server, user):
        """A new connection of user, authenticated, not bound."""
        c = SMClient(server)
        self.addCleanup(c.close)
        c.user = user
        c.password = self.users[user]
        c.login(user, c.password, bind=False)
        return c

    def resume(self, server, old, h=None, ns=NS_SM3):
        """Resume old's session on a new connection; checks <resumed/>."""
        c = self.reconnect(server, old.user)
        r = c.resume(old.sm_id, old.h_in if h is None else h, ns=ns)
        self.assertEqual(r.tag, q(ns, 'resumed'), 'resumption failed: %s' % to_str(r))
        self.assertEqual(r.get('previd'), old.sm_id, to_str(r))
        c.jid = old.jid
        return c, r

    def drop(self, server, c, count=1, rst=False):
        """Cut c's TCP connection without closing the stream; waits until the
        server has detached the session (count-th such log line)."""
        if rst:
            c.reset()
        else:
            c.drop()
        server.wait_log(LOST, timeout=TIMEOUT, count=count)

    def msgs(self, c, ids, what='message'):
        """Wait for the messages with these ids (in any order) and return them."""
        got = {}
        for i in ids:
            got[i] = c.wait(lambda s, i=i: is_msg(s, id_=i), what='%s %s' % (what, i))
        return got

    def assert_once(self, c, expect_ids, what):
        """After a sync: the messages c received (and not yet taken) are exactly
        expect_ids, each once, in that order."""
        c.sync()
        got = [m.get('id') for m in c.take(lambda s: is_msg(s))]
        dups = sorted({i for i in got if got.count(i) > 1})
        self.assertEqual(dups, [], '%s: delivered more than once: %s (all: %s)' % (what, dups, got))
        self.assertEqual(got, list(expect_ids), '%s: wrong set or order' % what)


# --------------------------------------------------------------------------


class EnableTest(SMTestCase):
    def test_features_after_auth_only(self):
        s = self.start_server()
        c = SMClient(s)
        self.addCleanup(c.close)
        c.connect()
        _, f = c.open_stream()
        self.assertIsNone(f.find(q(NS_SM3, 'sm')), 'sm offered before TLS/auth: %s' % to_str(f))
        c.starttls()
        _, f = c.open_stream()
        self.assertIsNone(f.find(q(NS_SM3, 'sm')), 'sm offered before auth: %s' % to_str(f))
        self.assertIsNone(f.find(q(NS_SM2, 'sm')), 'sm:2 offered before auth: %s' % to_str(f))
        c.auth_scram('alice', self.users['alice'])
        c._new_parser()
        _, f = c.open_stream()
        self.assertIsNotNone(f.find(q(NS_SM3, 'sm')), 'no <sm xmlns=sm:3/> after auth: %s' % to_str(f))
        self.assertIsNotNone(f.find(q(NS_SM2, 'sm')), 'no <sm xmlns=sm:2/> after auth: %s' % to_str(f))

    def test_enable_sm3_with_resume(self):
        s = self.start_server(c2s__resume_timeout=3)
        c = self.sm_client(s, 'alice', 'r')
        e = c.enabled_elem
        self.assertEqual(e.get('resume'), 'true', to_str(e))
        self.assertEqual(e.get('max'), '3', to_str(e))
        self.assertTrue(e.get('id'), 'no id: %s' % to_str(e))
        self.assertRegex(e.get('id'), r'^[\x21-\x7e]{8,4000}$')
        # another session gets another id
        d = self.sm_client(s, 'alice', 'r2')
        self.assertNotEqual(d.sm_id, c.sm_id)
        self.assertEqual(c.request_ack(), [0])
        c.sync()

    def test_enable_sm2(self):
        s = self.start_server(c2s__resume_timeout=3)
        c = self.sm_client(s, 'alice', 'r', ns=NS_SM2, roster=False, presence=False)
        self.assertEqual(c.enabled_elem.tag, q(NS_SM2, 'enabled'))
        self.assertTrue(c.enabled_elem.get('id'))
        self.assertEqual(c.enabled_elem.get('resume'), 'true')
        for _ in range(6):
            c.sync()
        self.assertEqual(c.requests, [(5, NS_SM2)], 'the server asks in the sm:2 namespace after 5 stanzas')
        a = c.request_ack()
        self.assertEqual(a, [6])
        self.assertEqual(c.acks, [6])
        # the <a/> was in sm:2 too
        self.assertIn(("<a xmlns='%s' h='6'/>" % NS_SM2).encode(), bytes(c.raw).replace(b'"', b"'"))
        # resumption in sm:2
        self.drop(s, c)
        n, r = self.resume(s, c, ns=NS_SM2)
        self.assertEqual(r.tag, q(NS_SM2, 'resumed'))
        self.assertEqual(r.get('h'), '6', to_str(r))
        n.sync()

    def test_enable_without_resume(self):
        s = self.start_server(c2s__resume_timeout=3)
        a = self.sm_client(s, 'alice', 'r', resume=False)
        self.assertIsNone(a.enabled_elem.get('resume'), to_str(a.enabled_elem))
        self.assertIsNone(a.enabled_elem.get('max'), to_str(a.enabled_elem))
        b = self.connect(s, 'bob', 'b')
        make_state(self, a, b, 'both')
        full = a.jid
        a.drop()
        # not resumable: the session ends at the drop, contacts see it go at once
        b.wait(lambda st: is_pres(st, from_=full, type_='unavailable'), timeout=TIMEOUT,
               what='unavailable at the drop of a non-resumable session')
        self.assertNotRegex(s.current_log(), LOST)
        n = self.reconnect(s, 'alice')
        r = n.resume(a.sm_id, a.h_in)
        self.assertEqual(r.tag, q(NS_SM3, 'failed'), to_str(r))
        self.assertEqual(failed_condition(r), 'item-not-found', to_str(r))
        n.bind('again')
        n.sync()

    def test_resume_timeout_zero_disables_resumption(self):
        s = self.start_server(c2s__resume_timeout=0)
        a = self.sm_client(s, 'alice', 'r', resume=True)
        self.assertNotEqual(a.enabled_elem.get('resume'), 'true', to_str(a.enabled_elem))
        a.sync()

    def test_enable_twice_fails(self):
        s = self.start_server()
        for ns in (NS_SM3, NS_SM2):
            with self.subTest(ns=ns):
                c = self.sm_client(s, 'alice', 'twice-' + ns[-1], ns=ns)
                r = c.enable(ns=ns, expect='failed')
                self.assertEqual(failed_condition(r), 'unexpected-request', to_str(r))
                c.sync()  # the stream stays open
                c.request_ack()

    def test_enable_before_bind_fails_then_bind_and_enable(self):
        s = self.start_server()
        c = self.reconnect(s, 'alice')
        r = c.enable(expect='failed')
        self.assertEqual(failed_condition(r), 'unexpected-request', to_str(r))
        self.assertEqual(r.tag, q(NS_SM3, 'failed'))
        c.bind('late')
        c.enable()
        c.sync()
        self.assertEqual(c.request_ack(), [1])

    def test_before_auth_fails_and_stream_stays(self):
        s = self.start_server()
        for elem, ns in (("<enable xmlns='%s' resume='true'/>", NS_SM3),
                         ("<resume xmlns='%s' previd='abc' h='0'/>", NS_SM3),
                         ("<enable xmlns='%s'/>", NS_SM2),
                         ("<resume xmlns='%s' previd='abc' h='0'/>", NS_SM2)):
            with self.subTest(elem=elem % ns):
                c = SMClient(s)
                self.addCleanup(c.close)
                c.connect()
                c.open_stream()
                c.starttls()
                c.open_stream()
                c.send(elem % ns)
                r = c.recv_stanza()
                self.assertEqual(r.tag, q(ns, 'failed'), to_str(r))
                self.assertEqual(failed_condition(r), 'unexpected-request', to_str(r))
                # still open: authentication works on the same stream
                c.auth_scram('alice', self.users['alice'])
                c._new_parser()
                c.open_stream()
                c.bind()
                c.sync()
                c.close()

    def test_resume_on_bound_stream_fails(self):
        s = self.start_server()
        a = self.sm_client(s, 'alice', 'r')
        c = self.sm_client(s, 'alice', 'other')
        r = c.resume(a.sm_id, 0)
        self.assertEqual(r.tag, q(NS_SM3, 'failed'), to_str(r))
        self.assertEqual(failed_condition(r), 'unexpected-request', to_str(r))
        c.sync()
        a.sync()  # the session named was not touched


class AckTest(SMTestCase):
    def test_h_counts_client_stanzas(self):
        s = self.start_server()
        b = self.connect(s, 'bob', 'b')
        a = self.sm_client(s, 'alice', 'r', roster=False, presence=False)
        self.assertEqual(a.request_ack(), [0], 'nothing handled right after <enable/>')
        # synchronous ones: answered at once, and the first <a/> already counts them
        a.send("<iq type='get' id='p1' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % DOMAIN)
        a.send("<iq type='get' id='p2'><query xmlns='jabber:iq:roster'/></iq>")
        a.send('<presence/>')
        self.assertEqual(a.request_ack(), [3])
        # a mix that includes routed messages (settled later)
        n = 3
        a.message(BJ, 'to bare')                                   # delivered to bob
        a.message(b.jid, 'to full')                                # delivered to bob
        a.message(CJ, 'to offline carol')                          # committed offline
        a.message('nobody@localhost', 'no such user')              # bounced
        a.message(a.jid, 'to myself', type_='normal')              # delivered to us
        a.send("<presence to='%s'/>" % b.jid)                      # directed presence
        a.send("<iq type='get' id='v1' to='%s'><query xmlns='jabber:iq:version'/></iq>" % b.jid)
        a.send("<message to='%s' type='headline' id='hl'><body>h</body></message>" % BJ)
        a.send("<iq type='get' id='p3' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % DOMAIN)
        n += 9
        seen = a.request_ack(want=n)
        self.assertEqual(seen, sorted(seen), 'h went backwards: %s' % seen)
        self.assertTrue(all(h <= n for h in seen), seen)
        a.sync()
        n += 1
        self.assertEqual(a.request_ack(), [n], 'after a sync everything is handled')
        # a burst of messages to an offline user, counted once committed
        for i in range(20):
            a.message(CJ, 'burst %d' % i)
        n += 20
        seen = a.request_ack(want=n, timeout=10)
        self.assertTrue(all(x <= y for x, y in zip(seen, seen[1:])) and seen[-1] == n, seen)
        wait_offline_rows(s, 'carol', 21)
        self.assertEqual(offline_count(s, 'carol'), 21)
        # SM elements themselves are not counted
        a.take(is_a)
        a.send_r()
        a.send_r()
        self.assertEqual([int(x.get('h')) for x in a.wait_n(is_a, 2)], [n, n])
        a.sync()
        self.assertEqual(a.take(is_a), [], 'more <a/> than <r/>')

    def test_r_answered_once_everything_before_it_settled(self):
        # Regression: 40 messages to an offline contact with an <r/> after every fifth; each
        # <r/> used to be answered at once with whatever was committed so far, so the last
        # answer said h=21 and half of what was sent stayed unacknowledged (resent after a
        # reconnect). Each answer now waits for the stanzas before its <r/>.
        s = self.start_server()
        a = self.sm_client(s, 'alice', 'r', roster=False, presence=False)
        a.take(is_a)
        a.send_r()
        self.assertEqual(int(a.wait(is_a).get('h')), 0)
        out = ''
        for i in range(40):
            out += "<message to='%s' id='o%d' type='chat'><body>offline %d</body></message>" % (CJ, i, i)
            if i % 5 == 4:
                out += "<r xmlns='%s'/>" % NS_SM3
        a.send(out)  # one write: the server reads it all before any commit returns
        acks = [int(x.get('h')) for x in a.wait_n(is_a, 8, timeout=15)]
        self.assertEqual(acks, [5, 10, 15, 20, 25, 30, 35, 40])
        self.assertEqual(offline_count(s, 'carol'), 40, 'acknowledged means committed')
        a.sync()
        self.assertEqual(a.take(is_a), [], 'no <a/> beyond one per <r/>')

    def test_unsolicited_a_when_settlement_catches_up(self):
        # An <r/> between two messages is answered once the first settles; the second settles
        # afterwards and the server says so without being asked.
        s = self.start_server()
        a = self.sm_client(s, 'alice', 'r', roster=False, presence=False)
        a.take(is_a)
        a.send("<message to='%s' id='u1'><body>1</body></message><r xmlns='%s'/>"
               "<message to='%s' id='u2'><body>2</body></message>" % (CJ, NS_SM3, CJ))
        acks = [int(a.wait(is_a, timeout=10).get('h'))]
        if acks[0] == 1:
            acks.append(int(a.wait(is_a, timeout=10).get('h')))
        self.assertEqual(acks[-1], 2, acks)
        self.assertTrue(acks[0] >= 1, acks)

    def test_server_requests_acks_every_5(self):
        s = self.start_server()
        a = self.sm_client(s, 'alice', 'r', roster=False, presence=False)
        for _ in range(12):
            a.sync()
        self.assertEqual(a.requests, [(5, NS_SM3), (10, NS_SM3)],
                         'expected an <r/> after the 5th and the 10th stanza')
        a.sync()  # answers accepted: no stream error
        # the queue was emptied by our answers: a resumption with h=13 resends nothing
        a.send_a()
        self.drop(s, a)
        n, r = self.resume(s, a)
        self.assertEqual(r.get('h'), str(13), 'resumed h: the 13 pings we sent')
        n.sync()
        left = [x for x in n.take() if not is_a(x)]
        self.assertEqual(left, [], 'resent after everything was acknowledged: %s' % n.dump(left))
        self.assertEqual(n.inlog[-1][0], IQ)

    def test_a_too_high_is_a_stream_error(self):
        s = self.start_server()
        cases = [('one more', lambda c: c.h_in + 1),
                 ('2^32-1', lambda c: MAX32 - 1),
                 ('far ahead', lambda c: c.h_in + 1000)]
        for i, (name, h) in enumerate(cases):
            with self.subTest(case=name):
                c = self.sm_client(s, 'alice', 'high%d' % i, auto_ack=False)
                c.sync()
                c.send_a()  # exactly what was sent: fine
                c.sync()
                c.send_a(h(c))
                self.expect_undefined(c, 'handled-count-too-high')

    def test_a_without_or_with_bad_h_is_a_stream_error(self):
        s = self.start_server()
        for i, bad in enumerate(("<a xmlns='%s'/>", "<a xmlns='%s' h=''/>", "<a xmlns='%s' h='-1'/>",
                                 "<a xmlns='%s' h='x1'/>", "<a xmlns='%s' h='4294967296'/>")):
            with self.subTest(a=bad):
                c = self.sm_client(s, 'alice', 'noh%d' % i)
                c.sync()
                c.send(bad % NS_SM3)
                self.expect_undefined(c)

    def expect_undefined(self, c, text_prefix=None):
        deadline = time.monotonic() + TIMEOUT
        while True:
            kind, elem = c.next_event(max(deadline - time.monotonic(), 0.01))
            if kind == 'stanza' and elem.tag == q(NS_STREAM, 'error'):
                break
            if kind in ('eof', 'close'):
                self.fail('stream ended without a stream error')
        conds = [ch.tag for ch in elem if ch.tag != q(NS_STREAMS_ERR, 'text')]
        self.assertEqual(conds, [q(NS_STREAMS_ERR, 'undefined-condition')], to_str(elem))
        if text_prefix:
            text = elem.findtext(q(NS_STREAMS_ERR, 'text')) or ''
            self.assertTrue(text.startswith(text_prefix), 'stream error text %r' % text)
        c.read_until_closed()


class ResumeTest(SMTestCase):
    def test_drop_and_resume_full_and_bare(self):
        """Messages to the full and the bare JID while detached, and those the
        client had received but not acknowledged, come exactly once; those it
        had acknowledged are not resent; contacts see nothing of it."""
        s = self.start_server()
        a = self.sm_client(s, 'alice', 'phone', auto_ack=False)
        b = self.connect(s, 'bob', 'desk')
        make_state(self, a, b, 'both')
        full = a.jid
        first = [b.message(full, 'f1'), b.message(AJ, 'f2'), b.message(full, 'f3')]
        self.msgs(a, first)
        a.sync()
        a.send_a()              # acknowledges everything so far
        acked = a.h_in
        second = [b.message(AJ, 's1'), b.message(full, 's2')]
        self.msgs(a, second)    # received, not acknowledged
        server_h = a.request_ack()[-1]  # what the server counts of ours (no message among them)
        lost = a.inlog[acked:]
        a.take()
        self.drop(s, a)
        # while detached: accepted and kept, from both JIDs' senders
        third = []
        for i in range(3):
            third.append(b.message(full, 't-full-%d' % i))
            third.append(b.message(AJ, 't-bare-%d' % i))
        b.expect_none(lambda st: is_msg(st, type_='error'), 'error for a message to a detached session')
        b.expect_none(lambda st: is_pres(st, from_bare=AJ, type_='*'), 'presence change at the drop')
        n, r = self.resume(s, a, h=acked)
        self.assertEqual(r.get('h'), str(server_h), 'resumed h is the server count of our stanzas')
        s.wait_log(r'resumed alice@localhost/phone')
        n.sync()
        k = server_h + 1  # our stanzas as the server counts them, by hand from here
        resent = [x for x in n.inlog if x[0] == MESSAGE]
        self.assertEqual(n.inlog[:len(lost)], lost, 'what was received unacknowledged comes first, as before')
        self.assertEqual([x[1] for x in resent], second + third)
        self.assert_once(n, second + third, 'after resumption')
        k += 1
        for x in n.inlog:
            if x[0] == MESSAGE:
                self.assertEqual(x[2], b.jid)
        # the resumed session is the same one: same full JID, presence kept
        b.expect_none(lambda st: is_pres(st, from_bare=AJ, type_='*'), 'presence change at resumption')
        more = b.message(full, 'after')
        n.wait(lambda st: is_msg(st, id_=more))
        back = n.message(BJ, 'from the resumed session')
        k += 1
        m = b.wait(lambda st: is_msg(st, id_=back))
        self.assertEqual(m.get('from'), full)
        # counters continue: h on both sides, then a second drop and resumption
        # with everything acknowledged resends nothing
        self.assertEqual(n.request_ack(want=k)[-1], k)
        n.sync()
        k += 1
        n.send_a()
        self.drop(s, n, count=2)
        m2, r2 = self.resume(s, n)
        self.assertEqual(r2.get('h'), str(k))
        m2.sync()
        self.assertEqual([x for x in m2.take() if not is_a(x)], [], 'resent although acknowledged')
        self.assertNotIn('not resumed in time', s.current_log())

    def test_resume_with_everything_handled_resends_only_new(self):
        s = self.start_server()
        a = self.sm_client(s, 'alice', 'r', auto_ack=False)
        b = self.connect(s, 'bob', 'b')
        seen = [b.message(AJ, 'seen %d' % i) for i in range(3)]
        self.msgs(a, seen)
        a.sync()
        a.take()
        self.drop(s, a, rst=True)  # RST this time
        new = [b.message(a.jid, 'new %d' % i) for i in range(4)]
        b.sync()
        n, _ = self.resume(s, a)  # h = all we handled, though never acknowledged
        self.assert_once(n, new, 'only what we had not seen')

    def test_old_connection_still_open_is_closed(self):
        s = self.start_server()
        a = self.sm_client(s, 'alice', 'r')
        b = self.connect(s, 'bob', 'b')
        one = b.message(a.jid, 'one')
        a.wait(lambda st: is_msg(st, id_=one))
        a.sync()
        n, _ = self.resume(s, a)
        a.read_until_closed()  # the old stream is ended
        self.assertTrue(a.eof)
        s.wait_log(r'resumed alice@localhost/r')
        two = b.message(a.jid, 'two')
        n.wait(lambda st: is_msg(st, id_=two))
        self.assert_once(n, [], 'old message resent')
        n.request_ack()

    def test_resume_of_another_users_id(self):
        s = self.start_server()
        a = self.sm_client(s, 'alice', 'r')
        self.drop(s, a)
        x = self.reconnect(s, 'bob')
        r = x.resume(a.sm_id, a.h_in)
        self.assertEqual(r.tag, q(NS_SM3, 'failed'), to_str(r))
        self.assertEqual(failed_condition(r), 'item-not-found', to_str(r))
        self.assertEqual(x.bind('b'), 'bob@localhost/b')
        x.sync()
        # an unknown id
        y = self.reconnect(s, 'alice')
        r = y.resume('no-such-id', 0)
        self.assertEqual(failed_condition(r), 'item-not-found', to_str(r))
        # alice's session is still there for her
        n, _ = self.resume(s, a)
        n.sync()

    def test_resume_with_h_too_high_fails_and_keeps_session(self):
        s = self.start_server()
        a = self.sm_client(s, 'alice', 'r', auto_ack=False)
        a.sync()
        self.drop(s, a)
        x = self.reconnect(s, 'alice')
        r = x.resume(a.sm_id, a.h_in + 5)
        self.assertEqual(sm_name(r), 'failed', to_str(r))
        x.close()
        n, _ = self.resume(s, a)
        n.sync()

    def test_resume_after_expiry(self):
        s = self.start_server(c2s__resume_timeout=1)
        a = self.sm_client(s, 'alice', 'r')
        self.drop(s, a)
        s.wait_log('not resumed in time', timeout=TIMEOUT)
        n = self.reconnect(s, 'alice')
        r = n.resume(a.sm_id, a.h_in)
        self.assertEqual(r.tag, q(NS_SM3, 'failed'), to_str(r))
        self.assertEqual(failed_condition(r), 'item-not-found', to_str(r))
        self.assertEqual(n.bind('r'), 'alice@localhost/r', 'bind after a failed resumption')
        n.roster_get()
        n.presence()
        n.sync()
        n.enable()
        n.request_ack()


class ExpiryTest(SMTestCase):
    settings = {'c2s.resume_timeout': 2}

    def test_presence_kept_until_timeout(self):
        s = self.start_server()
        a = self.sm_client(s, 'alice', 'r')
        b = self.connect(s, 'bob', 'b')
        make_state(self, a, b, 'both')
        full = a.jid
        t0 = time.monotonic()
        self.drop(s, a)
        b.expect_none(lambda st: is_pres(st, from_bare=AJ, type_='*'), 'presence at the drop')
        u = b.wait(lambda st: is_pres(st, from_=full, type_='unavailable'), timeout=10,
                   what='unavailable once the resumption timeout passed')
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 1.9, 'unavailable %.2fs after the drop, timeout is 2s' % elapsed)
        s.wait_log('not resumed in time')
        self.assertIsNotNone(u)

    def test_not_resumed_messages_go_offline(self):
        s = self.start_server()
        a = self.sm_client(s, 'alice', 'phone', auto_ack=False)
        b = self.connect(s, 'bob', 'b')
        full = a.jid
        acked = [b.message(AJ, 'acked %d' % i) for i in range(3)]
        self.msgs(a, acked)
        a.sync()
        a.send_a()
        unacked = [b.message(full, 'u-full'), b.message(AJ, 'u-bare')]
        self.msgs(a, unacked)
        self.drop(s, a)
        later = [b.message(full, 'l-full'), b.message(AJ, 'l-bare'),
                 b.message(AJ, 'l-normal', type_=None)]
        b.sync()
        self.assertEqual(offline_count(s, 'alice') or 0, 0, 'stored while the session is kept')
        s.wait_log('not resumed in time', timeout=10)
        want = unacked + later
        wait_offline_rows(s, 'alice', len(want))
        b.sync()
        self.assertEqual(offline_count(s, 'alice'), len(want))
        b.expect_none(lambda st: is_msg(st, type_='error'), 'error for a message of an expired session')
        # next login: with presence, each once; the acknowledged ones not again
        n = self.connect(s, 'alice', 'desk', presence=False)
        n.expect_none(is_msg, 'offline messages before presence')
        n.presence()
        self.msgs(n, want, 'offline copy of')
        wait_for(lambda: offline_count(s, 'alice') == 0, TIMEOUT, 'offline rows removed')
        self.assert_once(n, [], 'after the offline delivery')

    def test_clean_close_redelivers_to_other_resource(self):
        s = self.start_server()
        a1 = self.sm_client(s, 'alice', 'one', priority=5, auto_ack=False)
        a2 = self.connect(s, 'alice', 'two', priority=0)
        b = self.connect(s, 'bob', 'b')
        ids = [b.message(AJ, 'bare 1'), b.message(a1.jid, 'full 1'), b.message(AJ, 'bare 2')]
        self.msgs(a1, ids)
        a2.expect_none(is_msg, 'bare-JID message to the lower priority resource')
        a1.send('</stream:stream>')
        a1.read_until_closed()
        self.msgs(a2, ids, 'redelivered')
        self.assert_once(a2, [], 'redelivered')
        self.assertNotRegex(s.current_log(), LOST)

    def test_expired_goes_to_other_resource(self):
        s = self.start_server()
        a1 = self.sm_client(s, 'alice', 'one', priority=5, auto_ack=False)
        a2 = self.connect(s, 'alice', 'two', priority=0)
        b = self.connect(s, 'bob', 'b')
        self.drop(s, a1)
        ids = [b.message(AJ, 'bare 1'), b.message(a1.jid, 'full 1')]
        b.sync()
        a2.expect_none(is_msg, 'message to the detached resource delivered elsewhere at once')
        s.wait_log('not resumed in time', timeout=10)
        self.msgs(a2, ids, 'redelivered after expiry')
        self.assert_once(a2, [], 'redelivered after expiry')
        self.assertEqual(offline_count(s, 'alice') or 0, 0)


class DetachedBudgetTest(SMTestCase):
    """Regression: five detached sessions of one account each held its unacknowledged queue
    (up to 16 MiB) for the whole resume window; one user could pin about 90 MB. Past
    c2s.resume_budget per worker the oldest detached sessions end and what they held goes to
    offline storage."""

    BODY = 'y' * 200000  # over glibc's mmap threshold: freed memory leaves the process
    PER = 50             # 10 MB per detached session

    def test_oldest_detached_sessions_end_past_the_budget(self):
        # A fixed mmap threshold, so that RSS follows what the server holds (glibc otherwise
        # raises it after the first large free, and freed heap is not given back).
        old_env = os.environ.get('MALLOC_MMAP_THRESHOLD_')
        os.environ['MALLOC_MMAP_THRESHOLD_'] = '131072'
        try:
            s = self.start_server(**{'c2s.resume_budget': 16 * 1024 * 1024,
                                     'c2s.resume_timeout': 300})
        finally:
            if old_env is None:
                del os.environ['MALLOC_MMAP_THRESHOLD_']
            else:
                os.environ['MALLOC_MMAP_THRESHOLD_'] = old_env
        a = self.connect(s, 'alice', 'a', roster=False, presence=False)
        base = s.rss_kib()
        bobs = []
        for i in range(5):
            b = self.sm_client(s, 'bob', 'b%d' % i, presence=False, auto_ack=False)
            self.drop(s, b, count=i + 1)
            for k in range(self.PER):
                a.message(b.jid, '%d-%d %s' % (i, k, self.BODY), id_='m%d-%d' % (i, k))
            a.sync()
            bobs.append(b)
        # two sessions of 10 MB are over 16 MiB: each new one ends the one before, whose
        # messages go offline; only the newest is left
        wait_offline_rows(s, 'bob', 4 * self.PER, timeout=60)
        s.wait_log('over c2s.resume_budget', count=4)
        # Every message is also archived for both parties, and those writes may still be
        # queued for the storage thread (200 KB each) on a loaded machine. The storage thread
        # runs requests in order and each user's archive requests wait in order: an archive
        # query by each party, answered, comes after all of them. (Bob asks from a session
        # without presence, to which nothing offline is sent.)
        q = self.connect(s, 'bob', 'q', roster=False, presence=False)
        for c in (a, q):
            c.iq_ok('set', "<query xmlns='urn:xmpp:mam:2'><set xmlns="
                    "'http://jabber.org/protocol/rsm'><max>1</max></set></query>", timeout=60)
        q.close()
        grown = (s.rss_kib() - base) / 1024.0
        note('RSS grew %.1f MiB with 50 MB sent to five detached sessions' % grown)
        if 'ASAN_OPTIONS' not in os.environ:  # ASan's quarantine keeps what was freed in RSS
            self.assertLess(grown, 30, 'RSS grew %.1f MiB: detached queues are not bounded' % grown)
        self.assertEqual(offline_count(s, 'bob'), 4 * self.PER)
        for b in bobs[:4]:
            c = self.reconnect(s, 'bob')
            r = c.resume(b.sm_id, 0)
            self.assertEqual(failed_condition(r), 'item-not-found', to_str(r)[:300])
        n, _ = self.resume(s, bobs[4], h=bobs[4].h_in)
        got = self.msgs(n, ['m4-%d' % k for k in range(self.PER)], 'kept for resumption')
        self.assertEqual(len(got), self.PER)


class SlowReaderTest(SMTestCase):
    N = 1300  # x 8 KB: past the 4 MiB output queue plus what the kernel buffers (up to 4 MiB)
    BODY = 'x' * 8000

    def flood(self, s, b, to):
        ids = []
        for i in range(self.N):
            ids.append(b.message(to, '%d %s' % (i, self.BODY), id_='flood-%d' % i))
        return ids

    def detached_reader(self, s, **kw):
        a = self.sm_client(s, 'alice', 'slow', rcvbuf=4096, **kw)
        a.sync()
        b = self.connect(s, 'bob', 'b')
        t0 = time.monotonic()
        ids = self.flood(s, b, AJ)
        s.wait_log(r'output queue over \d+ bytes', timeout=30)
        s.wait_log(LOST, timeout=TIMEOUT)
        b.sync()
        note('flood of %d x %d bytes detached the reader after %.1fs'
             % (self.N, len(self.BODY), time.monotonic() - t0))
        return a, b, ids

    def test_slow_reader_detached_then_resumed(self):
        s = self.start_server()
        a, b, ids = self.detached_reader(s)
        n, _ = self.resume(s, a)
        got = []
        deadline = time.monotonic() + 60
        while len(got) < len(ids):
            m = n.wait(lambda st: is_msg(st), max(deadline - time.monotonic(), 0.01),
                       'flood message %d of %d' % (len(got) + 1, len(ids)))
            got.append(m.get('id'))
        self.assertEqual(got, ids, 'resent in order, each once')
        self.assert_once(n, [], 'after the flood')
        n.request_ack()

    def test_slow_reader_not_resumed_goes_offline(self):
        s = self.start_server(c2s__resume_timeout=1, offline__quota=5000)
        a, b, ids = self.detached_reader(s)
        a.close()
        s.wait_log('not resumed in time', timeout=10)
        wait_offline_rows(s, 'alice', len(ids), timeout=30)
        self.assertEqual(offline_count(s, 'alice'), len(ids))
        n = self.connect(s, 'alice', 'again')
        got = []
        deadline = time.monotonic() + 60
        while len(got) < len(ids):
            m = n.wait(lambda st: is_msg(st), max(deadline - time.monotonic(), 0.01),
                       'offline flood message %d of %d' % (len(got) + 1, len(ids)))
            got.append(m.get('id'))
        self.assertEqual(sorted(got), sorted(ids))
        self.assertEqual(len(set(got)), len(got))


if __name__ == '__main__':
    main()
