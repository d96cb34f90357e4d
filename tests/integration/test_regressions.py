"""Regression tests, one per fixed bug, each named for it (the bugs were found
under AddressSanitizer in review and fixed in one commit):

- test_sm_queue_full_reply_does_not_free_user: a reply that overflowed the
  unacknowledged queue (XEP-0198) ended the session and freed the user under
  the roster handler that was still using it (use-after-free).
- test_detach_inside_tls_write: a slow TLS reader with a resumable session was
  detached from inside SSL_write, and the detach freed the TLS state
  (use-after-free).
- test_plain_abort_while_pool_steps: an <abort/> during a PLAIN step on the
  thread pool freed the SASL session under the pool thread, before
  authentication (use-after-free).
- test_replaced_session_not_kept_for_resumption: a session that had already
  ended (stream error written, unbound) was still kept for resumption when
  its TCP connection went away, and leaked.
- test_sm_overflow_message_goes_offline: the stanza that overflowed the
  unacknowledged queue was dropped instead of going back to delivery with the
  rest of the queue.

The use-after-free and leak cases are caught by the sanitizer build (make
asan): an ASan or LSan report makes hearthd exit non-zero (or abort), and the
cleanup checks that hearthd is alive and exits 0. Each test also checks what a
client sees, so the non-sanitized build runs them too."""

import base64
import re
import socket
import time

from hearth import (DOMAIN, NS_CLIENT, NS_SASL, NS_STREAM, Client, Server, StreamClosed, main, q,
                    stream_error_condition, to_str, wait_for, xml_escape)
from imlib import TIMEOUT, IMTestCase, is_msg, note

NS_SM3 = 'urn:xmpp:sm:3'
NS_ROSTER = 'jabber:iq:roster'
IQ = q(NS_CLIENT, 'iq')
SM_QUEUE_MAX = 5000   # server/c2s/sm.h
LOST = r'connection lost: session kept'
PW = 'pw'


def small_rcvbuf_client(server, rcvbuf=4096):
    """A Client whose socket has a small receive buffer (set before connect),
    so that a client that does not read makes the server's output back up."""
    c = Client(server)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(('127.0.0.1', server.port))
    c.sock = s
    return c


def authenticate(c, user, password, tls):
    """Stream, optional STARTTLS, SCRAM, new stream; not bound."""
    c.open_stream()
    if tls:
        c.starttls()
        c.open_stream()
    c.auth_scram(user, password)
    c._new_parser()
    c.open_stream()


def next_stanza(c, deadline, what):
    """The next top-level element before the deadline; SM <r/> requests are
    skipped without an answer (the tests keep everything unacknowledged)."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError('timed out waiting for %s' % what)
        kind, elem = c.next_event(remaining)
        if kind == 'header':
            continue
        if kind != 'stanza':
            raise StreamClosed('stream ended (%s) while waiting for %s; raw tail: %r'
                               % (kind, what, c._tail()))
        if elem.tag == q(NS_SM3, 'r'):
            continue
        return elem


def enable_sm(c, resume=False):
    c.send("<enable xmlns='%s'%s/>" % (NS_SM3, " resume='true'" if resume else ''))
    el = next_stanza(c, time.monotonic() + TIMEOUT, '<enabled/>')
    if el.tag != q(NS_SM3, 'enabled'):
        raise AssertionError('stream management not enabled: %s' % to_str(el))
    return el


def fill_sm_queue(c, n=SM_QUEUE_MAX, batch=500):
    """Sends n pings and waits for their n results without ever acknowledging
    them: the server's unacknowledged queue then holds exactly n stanzas, and
    the next stanza it sends to c overflows it."""
    sent = got = 0
    deadline = time.monotonic() + 30
    while sent < n:
        k = min(batch, n - sent)
        c.send(''.join("<iq type='get' id='fill-%d' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>"
                       % (sent + i, DOMAIN) for i in range(k)))
        sent += k
        while got < sent:
            el = next_stanza(c, deadline, 'ping result %d of %d' % (got + 1, n))
            if el.tag == IQ and el.get('type') == 'result' and (el.get('id') or '').startswith('fill-'):
                got += 1
            else:
                raise AssertionError('unexpected while filling the queue: %s' % to_str(el))


def read_to_end(c, timeout=TIMEOUT):
    """Every element up to the end of the stream (EOF); returns them."""
    seen = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError('stream still open after %.1fs; saw %s'
                                 % (timeout, [to_str(e)[:200] for e in seen[-5:]]))
        kind, elem = c.next_event(remaining)
        if kind == 'eof':
            return seen
        if kind == 'close':
            try:
                c.send('</stream:stream>')
            except OSError:
                pass
        elif kind == 'stanza':
            seen.append(elem)


def stream_errors(elems):
    return [stream_error_condition(e) for e in elems if e.tag == q(NS_STREAM, 'error')]


def conn_id(server, full_jid):
    """The id of the (first) connection that bound full_jid, from the log."""
    m = server.wait_log(r'\[c2s#(\d+) [^\]]*\] bound %s on worker' % re.escape(full_jid))
    return int(m[0].group(1))


def conn_lines(server, cid):
    return [l for l in server.current_log().splitlines() if '[c2s#%d ' % cid in l or '[c2s#%d]' % cid in l]


class RegressionTest(IMTestCase):
    users = {'alice': PW, 'bob': PW}
    settings = {'c2s.tls': 'optional'}

    def assert_alice_works(self, s):
        """A fresh session of alice: login, roster, ping."""
        c = self.connect(s, 'alice', 'check', tls=False)
        c.sync()

    # -- handover_list_race -------------------------------------------------

    def test_handover_links_on_each_workers_own_thread(self):
        """A connection handed to its user's home worker after SASL left the old worker's
        list on the new worker's thread, racing the old worker's own changes to that list: a
        login storm (hearth-bench, 10,000 sessions) ended in a heap-use-after-free in
        unlink_conn. hearthd now checks that a worker's list is touched only by its thread, so
        the first hand-over of the old code aborts it; logins are repeated until the log shows
        hand-overs (the kernel spreads connections over the two workers)."""
        s = self.start_server()
        moved = 0
        for i in range(40):
            user = ('alice', 'bob')[i % 2]
            c = self.connect(s, user, 'h%d' % i, tls=False, roster=False)
            c.close()
            moved = len(re.findall(r'moving to home worker', s.current_log()))
            if moved >= 3:
                break
        self.assertGreaterEqual(moved, 3, 'no hand-over in 40 logins')
        s.assert_alive()
        self.assert_alice_works(s)

    # -- account_iq_order ---------------------------------------------------

    def test_iq_to_an_account_in_order_and_refused_when_there_is_none(self):
        """An IQ to another account's bare JID (a ping, disco, vCard) was answered at once on
        the sender's worker: 'result' for a ping to an account that does not exist (RFC 6121
        §8.5.1 says service-unavailable), and before the bounce of a message sent to that
        address just before it (RFC 6120 §10.1: stanzas to one entity are handled in order).
        Found by the terminal client's tests (hearth send waited with a ping)."""
        s = self.start_server()
        a = self.connect(s, 'alice', 'a', tls=False, roster=False)
        for i in range(10):
            a.send("<message to='nobody%d@%s' id='m%d' type='chat'><body>x</body></message>"
                   % (i, DOMAIN, i))
            a.send("<iq to='nobody%d@%s' id='p%d' type='get'><ping xmlns='urn:xmpp:ping'/></iq>"
                   % (i, DOMAIN, i))
            got = [a.recv_until(lambda st: st.get('id') in ('m%d' % i, 'p%d' % i), TIMEOUT)
                   for _ in range(2)]
            self.assertEqual([g.get('id') for g in got], ['m%d' % i, 'p%d' % i],
                             'the ping was answered before the message bounced')
            self.assertEqual(got[1].get('type'), 'error', to_str(got[1]))
            self.assertIsNotNone(got[1].find('.//{urn:ietf:params:xml:ns:xmpp-stanzas}'
                                             'service-unavailable'), to_str(got[1]))
        # An existing account is still answered on its behalf, from its bare JID (its last
        # activity, a query that took every IQ routed to an account before, only to contacts).
        r = a.iq('get', "<ping xmlns='urn:xmpp:ping'/>", to='bob@' + DOMAIN)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.assertEqual(r.get('from'), 'bob@' + DOMAIN)
        # disco#info to no such account said it was a registered account
        r = a.iq('get', "<query xmlns='http://jabber.org/protocol/disco#info'/>",
                 to='nobody@' + DOMAIN)
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertIsNotNone(r.find('.//{urn:ietf:params:xml:ns:xmpp-stanzas}'
                                    'service-unavailable'), to_str(r))

    # -- uaf_roster ---------------------------------------------------------

    def test_sm_queue_full_reply_does_not_free_user(self):
        s = self.start_server()
        a = Client(s)
        self.addCleanup(a.close)
        a.login('alice', PW, resource='r1', tls=False)
        enable_sm(a)
        fill_sm_queue(a)
        # The roster reply is the stanza over the bound: the session ends while the roster
        # handler is still running with the user's state.
        a.send("<iq type='get' id='ros'><query xmlns='%s' ver='0'/></iq>" % NS_ROSTER)
        seen = read_to_end(a)
        self.assertIn('policy-violation', stream_errors(seen),
                      'no policy-violation stream error; saw %s' % [to_str(e)[:200] for e in seen[-3:]])
        s.wait_log(r'unacknowledged queue full: closing')
        s.wait_log(r'\[c2s#\d+ alice@localhost/r1\] unbound')
        s.assert_alive()
        self.assert_alice_works(s)

    # -- uaf_tls ------------------------------------------------------------

    def test_detach_inside_tls_write(self):
        s = self.start_server(**{'c2s.tls': 'required'})
        a = small_rcvbuf_client(s)
        self.addCleanup(a.close)
        authenticate(a, 'alice', PW, tls=True)
        jid = a.bind('r1')
        sm_id = enable_sm(a, resume=True).get('id')
        self.assertTrue(sm_id, 'no resumption id')
        # Messages to ourselves that we never read: the server's TLS output backs up past its
        # bound while it writes, and the resumable session is detached there.
        body = 'x' * 100000
        a.sock.settimeout(0.5)
        sent = 0
        deadline = time.monotonic() + 20
        while sent < 200 and time.monotonic() < deadline:
            try:
                a.send("<message to='%s' type='chat' id='big-%d'><body>%s</body></message>"
                       % (jid, sent, body))
            except (OSError, socket.timeout):
                break  # the server stopped reading (detached) or closed
            sent += 1
            if re.search(LOST, s.current_log()):
                break
        s.wait_log(r'output queue over \d+ bytes: closing', timeout=TIMEOUT)
        s.wait_log(LOST, timeout=TIMEOUT)
        a.reset()
        s.assert_alive()
        # The kept session resumes on a new TLS connection and resends everything from the
        # first unacknowledged stanza, in order, before the answer to a ping sent after the
        # resumption (kept behind the resend).
        b = Client(s)
        self.addCleanup(b.close)
        b.login('alice', PW, bind=False)
        b.send("<resume xmlns='%s' previd='%s' h='0'/>" % (NS_SM3, xml_escape(sm_id)))
        r = next_stanza(b, time.monotonic() + TIMEOUT, '<resumed/>')
        self.assertEqual(r.tag, q(NS_SM3, 'resumed'), to_str(r))
        b.send("<iq type='get' id='after' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>" % DOMAIN)
        ids = []
        deadline = time.monotonic() + 4 * TIMEOUT
        while True:
            m = next_stanza(b, deadline, 'the resent messages, then the ping result')
            if m.tag == IQ and m.get('id') == 'after':
                break
            self.assertEqual(m.tag, q(NS_CLIENT, 'message'), to_str(m)[:300])
            self.assertEqual(len(m.findtext(q(NS_CLIENT, 'body')) or ''), len(body), m.get('id'))
            ids.append(m.get('id'))
        self.assertGreater(len(ids), 0, 'nothing resent')
        self.assertEqual(ids, ['big-%d' % i for i in range(len(ids))], 'resent out of order or with gaps')
        # Everything read: the stream ends cleanly. (Not a reset during the resend: that hits a
        # different use-after-free, still open: the abort frees the queued stanza that the
        # resend pump is passing to SSL_write.)
        b.send('</stream:stream>')
        read_to_end(b)
        s.assert_alive()

    # -- uaf_plain ----------------------------------------------------------

    def test_reset_during_resumption_resend(self):
        # A client resumes with a large unacknowledged queue and resets its connection while
        # the server's resend is inside SSL_write: the failed write ended the session at once,
        # sending the queue back to delivery and freeing the stanza being encrypted.
        s = self.start_server()
        a = small_rcvbuf_client(s)
        self.addCleanup(a.close)
        authenticate(a, 'alice', self.users['alice'], tls=True)
        jid = a.bind('r1')
        sm_id = enable_sm(a, resume=True).get('id')
        a.sock.settimeout(0.5)
        for i in range(200):
            try:
                a.send("<message to='%s' type='chat' id='big-%d'><body>%s</body></message>"
                       % (jid, i, 'x' * 100000))
            except OSError:
                break
            if 'connection lost: session kept' in s.current_log():
                break
        s.wait_log('connection lost: session kept')
        a.reset()
        b = Client(s)
        self.addCleanup(b.close)
        b.login('alice', self.users['alice'], bind=False)
        b.send("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>" % sm_id)
        r = next_stanza(b, time.monotonic() + 5, 'resumed')
        self.assertEqual(r.tag, '{urn:xmpp:sm:3}resumed', to_str(r))
        b.reset()  # RST while the server resends
        # the session is kept again for resumption (or ends); either way the server lives on
        s.wait_log(r'resumed alice@localhost/r1')
        c = self.connect(s, 'bob', 'after')
        self.assertEqual(c.ping().get('type'), 'result')

    def test_plain_abort_while_pool_steps(self):
        s = Server(**{'c2s.tls': 'optional', 'c2s.plain_without_tls': 'true'})
        self.addCleanup(s.close)
        # A costly password hash: each PLAIN check takes a while on the thread pool.
        r = s.ctl('--set', 'auth.scram_iterations=1000000', 'adduser', 'alice@localhost',
                  '--password-stdin', input=PW + '\n')
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        s.start()
        self.addCleanup(self._finish, s)

        def plain(c, password):
            payload = base64.b64encode(('\0alice\0%s' % password).encode()).decode()
            c.send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>" % (NS_SASL, payload))

        # How long a PLAIN check takes: the window in which an <abort/> meets the pool.
        c0 = Client(s)
        self.addCleanup(c0.close)
        c0.connect()
        c0.open_stream()
        t0 = time.monotonic()
        plain(c0, PW)
        ok = c0.recv_stanza(timeout=30)
        window = time.monotonic() - t0
        self.assertEqual(ok.tag, q(NS_SASL, 'success'), to_str(ok))
        note('PLAIN check takes %.3fs' % window)
        self.assertGreater(window, 0.1, 'PLAIN check too fast (%.3fs) to abort during it' % window)

        a = Client(s)
        self.addCleanup(a.close)
        a.connect()
        a.open_stream()
        for i in range(4):
            plain(a, 'wrong')
            time.sleep(window / 4)  # inside the pool step, far from both ends
            a.send("<abort xmlns='%s'/>" % NS_SASL)
            f = a.recv_stanza(timeout=TIMEOUT)
            self.assertEqual(f.tag, q(NS_SASL, 'failure'), 'round %d: %s' % (i, to_str(f)))
            self.assertIsNotNone(f.find(q(NS_SASL, 'aborted')), 'round %d: %s' % (i, to_str(f)))
        # The aborted checks' results, dropped, must not answer or unlock anything: the next
        # exchange gets exactly its own answer.
        plain(a, PW)
        ok = a.recv_stanza(timeout=30)
        self.assertEqual(ok.tag, q(NS_SASL, 'success'), to_str(ok))
        a._new_parser()
        a.open_stream()
        a.bind('r1')
        r = a.ping()
        self.assertEqual(r.get('type'), 'result', to_str(r))
        a.expect_nothing(0.3)  # no late answer for an aborted exchange
        s.assert_alive()

    # -- leak_detach --------------------------------------------------------

    def test_replaced_session_not_kept_for_resumption(self):
        s = Server(users=self.users, **self.settings)
        self.addCleanup(s.close)  # the test stops it itself
        s.start()
        a = small_rcvbuf_client(s)
        self.addCleanup(a.close)
        authenticate(a, 'alice', PW, tls=False)
        jid = a.bind('r1')
        aid = conn_id(s, jid)
        enable_sm(a, resume=True)
        # Output that a (not reading) backs up, short of the output bound.
        body = 'x' * 50000
        for i in range(70):
            a.send("<message to='%s' type='chat' id='m%d'><body>%s</body></message>" % (jid, i, body))
        # a's stanzas are handled in order: when bob has a's marker, all of the above are in
        # a's output.
        bob = self.connect(s, 'bob', 'b', tls=False)
        a.send("<message to='bob@localhost/b' type='chat' id='marker'><body>.</body></message>")
        bob.wait(lambda st: is_msg(st, id_='marker'), what="alice's marker message")
        # The same resource binds elsewhere: a's session gets a conflict stream error and is
        # unbound; then its TCP connection goes away.
        b = self.connect(s, 'alice', 'r1', tls=False)
        s.wait_log(r'\[c2s#%d [^\]]*\] unbound' % aid)
        a.close()

        def after_unbound():
            lines = conn_lines(s, aid)
            at = [i for i, l in enumerate(lines) if l.endswith('] unbound')]
            rest = lines[at[-1]:] if at else []
            done = any(l.endswith('] closed') or re.search(LOST, l) for l in rest)
            return rest if done else None
        rest = wait_for(after_unbound, TIMEOUT, 'connection %d closed (or kept) after unbound' % aid)
        kept = [l for l in rest if re.search(LOST, l)]
        self.assertEqual(kept, [], 'an ended session was kept for resumption:\n%s' % '\n'.join(rest))
        b.sync()
        # The session must be gone at exit too (it leaked): hearthd stops cleanly, exit 0.
        b.close()
        s.stop()

    # -- sm_loss ------------------------------------------------------------

    def test_sm_overflow_message_goes_offline(self):
        s = self.start_server()
        a = Client(s)
        self.addCleanup(a.close)
        ja = a.login('alice', PW, resource='r1', tls=False)
        enable_sm(a)
        fill_sm_queue(a)
        b = self.connect(s, 'bob', 'b', tls=False)
        b.message(ja, 'the overflowing one', id_='overflow-1')
        seen = read_to_end(a)
        self.assertIn('policy-violation', stream_errors(seen),
                      'no policy-violation stream error; saw %s' % [to_str(e)[:200] for e in seen[-3:]])
        s.wait_log(r'\[c2s#\d+ alice@localhost/r1\] unbound')
        # What alice's session had not acknowledged goes back to delivery: no resource is
        # left, so the message waits offline and comes with alice's next presence.
        a2 = self.connect(s, 'alice', 'r2', tls=False, presence=False)
        a2.presence()
        m = a2.wait(lambda st: is_msg(st, id_='overflow-1'), timeout=TIMEOUT, what='the overflowing message')
        self.assertEqual(m.findtext(q(NS_CLIENT, 'body')), 'the overflowing one', to_str(m))
        a2.sync()
        again = a2.take(lambda st: is_msg(st, id_='overflow-1'))
        self.assertEqual(again, [], 'delivered twice')
        b.sync()
        errors = b.take(lambda st: st.get('type') == 'error')
        self.assertEqual(errors, [], 'the sender got an error: %s' % b.dump(errors))


if __name__ == '__main__':
    main()
