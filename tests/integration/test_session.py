"""Sessions after bind: message and IQ routing, XEP-0199 pings both ways,
disco#info, resource conflicts and limits, home workers, graceful shutdown."""

import base64
import re
import sys
import threading
import time
import unittest

from hearth import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_PING, NS_STREAM, Client, Server, main, q,
                    stanza_error, to_str)

USERS = {'alice': 'wonderland', 'bob': 'builder', 'carol': 'singer'}
NS_RECEIPTS = 'urn:xmpp:receipts'


def note(text):
    sys.stderr.write('NOTE: %s\n' % text)


def is_message(s):
    return s.tag == q(NS_CLIENT, 'message')


class SessionBase(unittest.TestCase):
    users = USERS

    def start_server(self, **settings):
        s = Server(users=self.users, **settings)
        s.start()
        self.addCleanup(self._finish, s)
        return s

    def _finish(self, s):
        try:
            s.assert_alive()
        finally:
            s.close()

    def login(self, server, user, resource=None, pw=None):
        c = Client(server)
        self.addCleanup(c.close)
        c.login(user, pw or self.users[user], resource=resource)
        return c

    def ping_sync(self, c):
        """Round trip to the server; returns the stanzas that arrived before the result."""
        id_ = c.next_id('sync')
        c.send("<iq type='get' id='%s' to='%s'><ping xmlns='%s'/></iq>" % (id_, DOMAIN, NS_PING))
        before = []
        while True:
            s = c.recv_stanza()
            if s.tag == q(NS_CLIENT, 'iq') and s.get('id') == id_:
                self.assertEqual(s.get('type'), 'result', to_str(s))
                return before
            before.append(s)


class MessageTest(SessionBase):
    def setUp(self):
        self.s = self.start_server()

    def test_chat_by_full_jid(self):
        a = self.login(self.s, 'alice', 'a')
        b = self.login(self.s, 'bob', 'b')
        body = '你好，世界 — {"key": "va\'lue", "list": [1, 2, "三"]} <tag> & more'
        esc = body.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')
        a.send("<message to='%s' type='chat' id='m-1'><body>%s</body><thread parent='p-0'>th-1</thread>"
               "<request xmlns='%s'/></message>" % (b.jid, esc, NS_RECEIPTS))
        m = b.recv_until(is_message)
        self.assertEqual(m.get('from'), a.jid)
        self.assertEqual(m.get('to'), b.jid)
        self.assertEqual(m.get('id'), 'm-1')
        self.assertEqual(m.get('type'), 'chat')
        self.assertEqual(m.findtext(q(NS_CLIENT, 'body')), body)
        thread = m.find(q(NS_CLIENT, 'thread'))
        self.assertIsNotNone(thread, to_str(m))
        self.assertEqual(thread.text, 'th-1')
        self.assertEqual(thread.attrib, {'parent': 'p-0'})
        req = m.find(q(NS_RECEIPTS, 'request'))
        self.assertIsNotNone(req, to_str(m))
        self.assertEqual((req.attrib, len(req), req.text), ({}, 0, None))
        # The server adds exactly one child: its XEP-0359 stanza id in the recipient's name.
        sid = m.findall(q('urn:xmpp:sid:0', 'stanza-id'))
        self.assertEqual(len(sid), 1, to_str(m))
        self.assertEqual(sid[0].get('by'), 'bob@localhost')
        self.assertTrue(sid[0].get('id'))
        self.assertEqual(len(m), 4, 'extra children: %s' % to_str(m))
        # the Chinese text crossed the wire as UTF-8, not as character references
        self.assertIn('你好，世界'.encode('utf-8'), bytes(b.raw))
        # thread and receipt request byte-for-byte as sent
        self.assertIn(b"<thread parent='p-0'>th-1</thread><request xmlns='urn:xmpp:receipts'/>", bytes(b.raw))

    def test_many_messages_in_order(self):
        a = self.login(self.s, 'alice', 'a')
        b = self.login(self.s, 'bob', 'b')
        n = 200
        a.send(''.join("<message to='%s' type='chat' id='o%d'><body>%d</body></message>" % (b.jid, i, i)
                       for i in range(n)))
        got = []
        deadline = time.monotonic() + 10
        while len(got) < n:
            m = b.recv_until(is_message, timeout=max(deadline - time.monotonic(), 0.1))
            got.append(m.get('id'))
        self.assertEqual(got, ['o%d' % i for i in range(n)])

    def test_message_to_offline_full_jid(self):
        a = self.login(self.s, 'alice', 'a')
        a.send("<message to='bob@localhost/gone' type='chat' id='off1'><body>are you there?</body></message>")
        before = self.ping_sync(a)
        errors = [s for s in before if is_message(s) and s.get('id') == 'off1']
        if errors:
            e = errors[0]
            self.assertEqual(e.get('type'), 'error', to_str(e))
            self.assertEqual(e.get('from'), 'bob@localhost/gone', to_str(e))
            self.assertEqual(stanza_error(e), ('cancel', 'service-unavailable'), to_str(e))
            note('chat to an offline full JID: error service-unavailable')
        else:
            note('chat to an offline full JID: silently accepted (offline storage or dropped)')

    def test_chat_to_unknown_resource_of_online_user(self):
        a = self.login(self.s, 'alice', 'a')
        b = self.login(self.s, 'bob', 'home')
        a.send("<message to='bob@localhost/elsewhere' type='chat' id='ur1'><body>hi</body></message>")
        before = self.ping_sync(a)
        errs = [s for s in before if is_message(s) and s.get('id') == 'ur1']
        # RFC 6121 8.5.3.2.1: treat as addressed to the bare JID. bob/home sent
        # no presence, so it is not "available": delivery to it, offline
        # handling or service-unavailable are all within the RFC.
        delivered = b.is_open(0.3) and [e for k, e in b.events if k == 'stanza' and is_message(e)]
        if errs:
            self.assertEqual(stanza_error(errs[0]), ('cancel', 'service-unavailable'), to_str(errs[0]))
            note('chat to an unknown resource: service-unavailable')
        elif delivered:
            self.assertEqual(delivered[0].get('from'), a.jid)
            note('chat to an unknown resource: delivered to the online resource')
        else:
            note('chat to an unknown resource: silently accepted')

    def test_message_to_unknown_user(self):
        a = self.login(self.s, 'alice', 'a')
        a.send("<message to='nobody@localhost' type='chat' id='nu1'><body>x</body></message>")
        before = self.ping_sync(a)
        errs = [s for s in before if s.get('id') == 'nu1']
        if errs:
            self.assertEqual(stanza_error(errs[0]), ('cancel', 'service-unavailable'), to_str(errs[0]))

    def test_message_to_own_other_resource(self):
        a1 = self.login(self.s, 'alice', 'one')
        a2 = self.login(self.s, 'alice', 'two')
        a1.send("<message to='%s' type='chat' id='self1'><body>note to self</body></message>" % a2.jid)
        m = a2.recv_until(is_message)
        self.assertEqual((m.get('from'), m.get('id')), (a1.jid, 'self1'))


class RoutingEdgeTest(SessionBase):
    users = dict(USERS, **{'p%d' % i: 'pw%d' % i for i in range(20)})

    def setUp(self):
        self.s = self.start_server()

    def test_error_stanzas_not_bounced(self):
        # RFC 6120 8.3.1: never answer an error with an error
        a = self.login(self.s, 'alice', 'a')
        a.send("<iq type='error' id='e1' to='bob@localhost/none'><error type='cancel'>"
               "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
        a.send("<message type='error' id='e2' to='bob@localhost/none'><error type='cancel'>"
               "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
        a.send("<iq type='result' id='e3' to='localhost'/>")
        a.send("<iq type='error' id='e4' to='localhost'><error type='cancel'>"
               "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
        before = self.ping_sync(a)
        self.assertEqual([to_str(x) for x in before], [])

    def test_iq_bogus_type(self):
        a = self.login(self.s, 'alice', 'a')
        a.send("<iq type='bogus' id='bt1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        kind, e = a.next_event()
        self.assertEqual(kind, 'stanza')
        if e.tag == q(NS_STREAM, 'error'):
            a.expect_closed(5)  # a stream error (invalid-xml/bad-format) is acceptable
            return
        self.assertEqual((e.get('id'), e.get('type')), ('bt1', 'error'), to_str(e))
        self.assertEqual(stanza_error(e)[1], 'bad-request', to_str(e))

    def test_malformed_to(self):
        a = self.login(self.s, 'alice', 'a')
        r = a.iq('get', "<query xmlns='jabber:iq:version'/>", to='a@b@localhost')
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(stanza_error(r)[1], 'jid-malformed', to_str(r))
        self.assertEqual(a.ping().get('type'), 'result')

    def test_message_to_server(self):
        a = self.login(self.s, 'alice', 'a')
        a.send("<message to='localhost' type='chat' id='ms1'><body>hello server</body></message>")
        before = self.ping_sync(a)
        for x in before:  # silence or an error; never an echo
            self.assertEqual(x.get('type'), 'error', to_str(x))

    def test_second_bind_refused(self):
        a = self.login(self.s, 'alice', 'a')
        r = a.bind_iq('b')
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(a.ping().get('type'), 'result')

    def test_bad_resources(self):
        a = Client(self.s)
        self.addCleanup(a.close)
        a.login('alice', USERS['alice'], bind=False)
        r = a.bind_iq('x' * 1100)
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertIn(stanza_error(r)[1], ('bad-request', 'not-acceptable', 'jid-malformed'), to_str(r))
        self.assertEqual(a.bind('fine'), 'alice@localhost/fine')

    def test_pipelined_restart_after_sasl(self):
        # A client may send the new header, bind and more in one write right
        # after <success/>; the bytes must survive the hand-over to the home worker.
        for user in ('alice', 'bob', 'carol'):
            c = Client(self.s)
            self.addCleanup(c.close)
            c.connect()
            c.open_stream()
            c.starttls()
            c.open_stream()
            c.auth_plain(user, USERS[user])
            c._new_parser()
            c.send(Client.stream_header() +
                   "<iq type='set' id='pb'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                   "<resource>pipe</resource></bind></iq>"
                   "<iq type='get' id='pp' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
            c.recv_header()
            self.assertEqual(c.recv_stanza().tag, q(NS_STREAM, 'features'))
            r = c.recv_stanza()
            self.assertEqual((r.get('id'), r.get('type')), ('pb', 'result'), to_str(r))
            r = c.recv_stanza()
            self.assertEqual((r.get('id'), r.get('type')), ('pp', 'result'), to_str(r))

    def test_pipelined_auth_after_tls(self):
        c = Client(self.s)
        self.addCleanup(c.close)
        c.connect()
        c.open_stream()
        c.starttls()
        c.send(Client.stream_header() + "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>"
               % base64.b64encode(b'\0alice\0' + USERS['alice'].encode()).decode())
        c.recv_header()
        self.assertEqual(c.recv_stanza().tag, q(NS_STREAM, 'features'))
        r = c.recv_stanza()
        self.assertEqual(r.tag, '{urn:ietf:params:xml:ns:xmpp-sasl}success', to_str(r))

    def test_no_reauth_as_someone_else(self):
        a = self.login(self.s, 'alice', 'a')
        a.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>"
               % base64.b64encode(b'\0bob\0' + USERS['bob'].encode()).decode())
        kind, e = a.next_event()
        if kind == 'stanza' and e.tag == q(NS_STREAM, 'error'):
            a.expect_closed(5)
        else:
            self.assertNotEqual(e.tag, '{urn:ietf:params:xml:ns:xmpp-sasl}success', to_str(e))
        self.assertNotIn('authenticated bob@localhost', self.s.current_log())

    def test_concurrent_logins(self):
        n = 40
        errors = []
        clients = [None] * n
        users = ['p%d' % i for i in range(20)]  # two resources each, under c2s.max_resources

        def run(i):
            try:
                c = Client(self.s)
                clients[i] = c
                c.login(users[i % 20], self.users[users[i % 20]], resource='c%d' % i)
                if c.ping().get('type') != 'result':
                    errors.append('ping %d' % i)
            except BaseException as e:  # collected and reported below
                errors.append('%d: %r' % (i, e))
        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        for c in clients:
            if c:
                self.addCleanup(c.close)
        self.assertEqual(errors, [])
        # every session can be reached
        src = clients[0]
        for i in range(1, n):
            src.send("<message to='%s' type='chat' id='cc%d'><body>x</body></message>" % (clients[i].jid, i))
        for i in range(1, n):
            m = clients[i].recv_until(is_message, timeout=10)
            self.assertEqual((m.get('id'), m.get('from')), ('cc%d' % i, src.jid))

    def test_slow_consumer_bounded(self):
        # bob never reads; alice floods him. The server must bound bob's
        # output queue (cut bob, or push back on alice) and stay responsive.
        a = self.login(self.s, 'alice', 'a')
        b = self.login(self.s, 'bob', 'b')
        rss0 = self._rss()
        chunk = "<message to='%s' type='chat'><body>%s</body></message>" % (b.jid, 'z' * 60000)
        a.sock.settimeout(0.5)
        sent = 0
        deadline = time.monotonic() + 15
        try:
            while sent < 64 * 1024 * 1024 and time.monotonic() < deadline:
                a.sock.sendall(chunk.encode())
                sent += len(chunk)
        except (OSError, TimeoutError):
            pass  # alice pushed back (or cut): acceptable
        rss1 = self._rss()
        note('slow consumer: alice sent %d MB; hearthd RSS %d -> %d MB'
             % (sent >> 20, rss0 >> 20, rss1 >> 20))
        self.assertLess(rss1 - rss0, 256 * 1024 * 1024, 'server memory grew without bound')
        # the server still serves others
        c = self.login(self.s, 'carol', 'c')
        self.assertEqual(c.ping().get('type'), 'result')

    def _rss(self):
        with open('/proc/%d/status' % self.s.proc.pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) * 1024
        return 0


class IqTest(SessionBase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(users=USERS)
        cls.srv.shared = True
        cls.srv.start()

    @classmethod
    def tearDownClass(cls):
        cls.srv.close()

    def setUp(self):
        self.s = self.srv

    def tearDown(self):
        self.s.assert_alive()

    def test_client_pings_server(self):
        a = self.login(self.s, 'alice')
        r = a.ping()
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.assertIn(r.get('from'), (DOMAIN, None))
        self.assertEqual(len(r), 0)

    def test_disco_info(self):
        a = self.login(self.s, 'alice')
        r = a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=DOMAIN)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        query = r.find(q(NS_DISCO_INFO, 'query'))
        self.assertIsNotNone(query, to_str(r))
        ids = [(i.get('category'), i.get('type')) for i in query.findall(q(NS_DISCO_INFO, 'identity'))]
        self.assertIn(('server', 'im'), ids, to_str(r))
        features = [f.get('var') for f in query.findall(q(NS_DISCO_INFO, 'feature'))]
        self.assertIn(NS_PING, features)
        self.assertIn(NS_DISCO_INFO, features)
        self.assertEqual(len(features), len(set(features)), 'duplicate features: %s' % features)

    def test_unknown_namespace(self):
        a = self.login(self.s, 'alice')
        r = a.iq('get', "<query xmlns='urn:example:nothing-here'/>", to=DOMAIN)
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(stanza_error(r), ('cancel', 'service-unavailable'), to_str(r))

    def test_unknown_namespace_no_to(self):
        a = self.login(self.s, 'alice')
        r = a.iq('get', "<query xmlns='urn:example:nothing-here'/>")
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(stanza_error(r)[1], 'service-unavailable', to_str(r))

    def test_iq_without_child(self):
        a = self.login(self.s, 'alice')
        r = a.iq('get', '', to=DOMAIN)
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(stanza_error(r), ('modify', 'bad-request'), to_str(r))

    def test_iq_without_id(self):
        a = self.login(self.s, 'alice')
        a.send("<iq type='get' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
        before = self.ping_sync(a)
        # RFC 6120 8.1.3: id is required for IQ; a stanza error or a stream
        # error (bad-format/invalid-xml) are both reasonable. No crash, no result.
        for s in before:
            self.assertNotEqual(s.get('type'), 'result', to_str(s))

    def test_iq_routed_to_full_jid(self):
        a = self.login(self.s, 'alice', 'a')
        b = self.login(self.s, 'bob', 'b')
        a.send("<iq type='get' id='ver1' to='%s'><query xmlns='jabber:iq:version'/></iq>" % b.jid)
        got = b.recv_until(lambda s: s.tag == q(NS_CLIENT, 'iq'))
        self.assertEqual((got.get('from'), got.get('to'), got.get('id'), got.get('type')),
                         (a.jid, b.jid, 'ver1', 'get'))
        b.send("<iq type='result' id='ver1' to='%s'><query xmlns='jabber:iq:version'><name>test</name>"
               "</query></iq>" % a.jid)
        r = a.recv_until(lambda s: s.tag == q(NS_CLIENT, 'iq') and s.get('id') == 'ver1')
        self.assertEqual((r.get('type'), r.get('from')), ('result', b.jid))
        self.assertEqual(r.findtext('{jabber:iq:version}query/{jabber:iq:version}name'), 'test')

    def test_iq_to_unavailable_full_jid(self):
        a = self.login(self.s, 'alice', 'a')
        r = a.iq('get', "<query xmlns='jabber:iq:version'/>", to='bob@localhost/nowhere')
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(stanza_error(r), ('cancel', 'service-unavailable'), to_str(r))
        self.assertEqual(r.get('from'), 'bob@localhost/nowhere')

    def test_iq_to_bare_jid_unknown_namespace(self):
        a = self.login(self.s, 'alice', 'a')
        r = a.iq('get', "<query xmlns='urn:example:nothing-here'/>", to='bob@localhost')
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(stanza_error(r)[1], 'service-unavailable', to_str(r))

    def test_ping_to_own_bare_jid(self):
        # RFC 6121 8.5.2.1.3: the server answers IQs to the account's bare JID
        a = self.login(self.s, 'carol', 'c')
        r = a.ping(to='carol@localhost')
        self.assertIn(r.get('type'), ('result', 'error'), to_str(r))


class ServerPingTest(SessionBase):
    def _wait_ping(self, c, timeout):
        return c.recv_until(lambda s: s.tag == q(NS_CLIENT, 'iq') and s.get('type') == 'get'
                            and s.find(q(NS_PING, 'ping')) is not None, timeout=timeout)

    def test_answered_ping_keeps_session(self):
        s = self.start_server(c2s__idle_ping=1, c2s__ping_timeout=2)
        c = self.login(s, 'alice', 'p')
        for _ in range(2):
            p = self._wait_ping(c, 5)
            self.assertEqual(p.get('from'), DOMAIN, to_str(p))
            self.assertEqual(p.get('to'), c.jid, to_str(p))
            self.assertTrue(p.get('id'))
            c.send("<iq type='result' id='%s' to='%s'/>" % (p.get('id'), DOMAIN))
        self.assertEqual(c.ping().get('type'), 'result')

    def test_unanswered_ping_closes(self):
        s = self.start_server(c2s__idle_ping=1, c2s__ping_timeout=2)
        c = self.login(s, 'alice', 'p')
        t0 = time.monotonic()
        self._wait_ping(c, 5)
        seen = c.expect_closed(8)
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 1.0, 'closed before the ping timeout')
        for kind, e in seen:
            if kind == 'stanza' and e.tag == q(NS_STREAM, 'error'):
                note('unanswered ping: stream error %s' % to_str(e))

    def test_ping_error_reply_counts_as_alive(self):
        # XEP-0199 4.2: a client that does not support ping answers with an
        # error; that still proves the connection is alive.
        s = self.start_server(c2s__idle_ping=1, c2s__ping_timeout=2)
        c = self.login(s, 'alice', 'p')
        for _ in range(2):
            p = self._wait_ping(c, 5)
            c.send("<iq type='error' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/><error type='cancel'>"
                   "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
                   % (p.get('id'), DOMAIN))
        self.assertEqual(c.ping().get('type'), 'result')


class ResourceTest(SessionBase):
    def test_conflict_replace_default(self):
        s = self.start_server()
        a1 = self.login(s, 'alice', 'r')
        a2 = self.login(s, 'alice', 'r')
        self.assertEqual(a2.jid, 'alice@localhost/r')
        a1.assert_stream_error('conflict')
        b = self.login(s, 'bob', 'b')
        b.send("<message to='alice@localhost/r' type='chat' id='rp1'><body>which one?</body></message>")
        m = a2.recv_until(is_message)
        self.assertEqual(m.get('id'), 'rp1')

    def test_conflict_reject(self):
        s = self.start_server(c2s__resource_conflict='reject')
        a1 = self.login(s, 'alice', 'r')
        a2 = Client(s)
        self.addCleanup(a2.close)
        a2.login('alice', USERS['alice'], bind=False)
        r = a2.bind_iq('r')
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertEqual(stanza_error(r)[1], 'conflict', to_str(r))
        self.assertEqual(a1.ping().get('type'), 'result')
        # the rejected client may pick another resource
        self.assertEqual(a2.bind('r2'), 'alice@localhost/r2')

    def test_conflict_rename(self):
        s = self.start_server(c2s__resource_conflict='rename')
        a1 = self.login(s, 'alice', 'r')
        a2 = self.login(s, 'alice', 'r')
        self.assertTrue(a2.jid.startswith('alice@localhost/'), a2.jid)
        self.assertNotEqual(a2.jid, 'alice@localhost/r')
        self.assertEqual(a1.ping().get('type'), 'result')
        self.assertEqual(a2.ping().get('type'), 'result')

    def test_max_resources(self):
        s = self.start_server(c2s__max_resources=2)
        self.login(s, 'alice', 'one')
        self.login(s, 'alice', 'two')
        a3 = Client(s)
        self.addCleanup(a3.close)
        a3.login('alice', USERS['alice'], bind=False)
        r = a3.bind_iq('three')
        self.assertEqual(r.get('type'), 'error', to_str(r))
        self.assertIn(stanza_error(r)[1], ('resource-constraint', 'policy-violation'), to_str(r))
        # another user is not affected
        self.login(s, 'bob', 'one')

    def test_resourceprep(self):
        s = self.start_server()
        c = self.login(s, 'alice', 'Res\u00e9 Ω')
        self.assertEqual(c.jid, 'alice@localhost/Res\u00e9 Ω')


class WorkerTest(SessionBase):
    users = dict(USERS, **{'u%d' % i: 'pw%d' % i for i in range(12)})

    def worker_of(self, s, fulljid):
        m = s.wait_log(r'bound %s on worker (\d+)' % re.escape(fulljid))
        return int(m[-1].group(1))

    def test_resources_share_home_worker(self):
        s = self.start_server(server__workers=2)
        workers = set()
        for i in range(4):
            c = self.login(s, 'alice', 'r%d' % i)
            workers.add(self.worker_of(s, c.jid))
        self.assertEqual(len(workers), 1, 'alice homed on several workers: %s' % workers)

    def test_message_across_workers(self):
        s = self.start_server(server__workers=2)
        clients = {}
        by_worker = {}
        for i in range(12):
            c = self.login(s, 'u%d' % i, 'w')
            w = self.worker_of(s, c.jid)
            self.assertIn(w, (0, 1))
            clients[i] = c
            by_worker.setdefault(w, []).append(i)
        self.assertEqual(len(by_worker), 2, 'all 12 users on one worker: %s' % by_worker)
        x, y = clients[by_worker[0][0]], clients[by_worker[1][0]]
        for src, dst in ((x, y), (y, x)):
            src.send("<message to='%s' type='chat' id='xw'><body>across</body></message>" % dst.jid)
            m = dst.recv_until(is_message)
            self.assertEqual((m.get('from'), m.findtext(q(NS_CLIENT, 'body'))), (src.jid, 'across'))
        # and an IQ round trip across workers
        x.send("<iq type='get' id='xiq' to='%s'><query xmlns='jabber:iq:version'/></iq>" % y.jid)
        got = y.recv_until(lambda st: st.tag == q(NS_CLIENT, 'iq'))
        y.send("<iq type='result' id='xiq' to='%s'/>" % got.get('from'))
        r = x.recv_until(lambda st: st.get('id') == 'xiq')
        self.assertEqual((r.get('type'), r.get('from')), ('result', y.jid))


class ShutdownTest(SessionBase):
    def test_sigterm_system_shutdown(self):
        s = Server(users=USERS)
        s.start()
        self.addCleanup(s.close)
        a = self.login(s, 'alice', 'a')
        b = self.login(s, 'bob', 'b')
        pre = Client(s).connect()
        self.addCleanup(pre.close)
        pre.open_stream()
        tls = Client(s).connect()
        self.addCleanup(tls.close)
        tls.open_stream()
        tls.starttls()
        tls.open_stream()
        s.terminate()
        for c in (a, b, pre, tls):
            c.assert_stream_error('system-shutdown', timeout=10)
        self.assertEqual(s.wait_exit(10), 0)

    def test_sigterm_with_storage_in_flight(self):
        # Offline storage requests still queued when SIGTERM arrives must not
        # be posted to a worker that has already stopped (seen as a libuv abort
        # in worker__post from storage_thread, exit -6).
        for round_ in range(3):
            s = Server(users=USERS)
            s.start()
            self.addCleanup(s.close)
            a = Client(s)
            self.addCleanup(a.close)
            a.login('alice', USERS['alice'], resource='w')
            a.send(''.join("<message to='bob@localhost' type='chat' id='f%d'><body>offline %d</body></message>"
                           % (i, i) for i in range(300)))
            s.wait_log(r'alice@localhost/w', 5)  # no round trip: requests are still queued
            s.terminate()
            a.assert_stream_error('system-shutdown', timeout=10)
            self.assertEqual(s.wait_exit(10), 0, 'round %d' % round_)

    def test_sigterm_idle_exits_zero(self):
        s = Server(users=USERS)
        s.start()
        self.addCleanup(s.close)
        t0 = time.monotonic()
        s.stop()
        self.assertLess(time.monotonic() - t0, 5)

    def test_restart_keeps_accounts(self):
        s = Server(users=USERS)
        s.start()
        self.addCleanup(s.close)
        s.restart()
        c = self.login(s, 'alice', 'again')
        self.assertEqual(c.jid, 'alice@localhost/again')


if __name__ == '__main__':
    main()
