"""Stream negotiation: header, features, STARTTLS, direct TLS, SASL, bind,
session, keepalive and closing, and the optional-TLS deployment."""

import ssl
import unittest

from hearth import (DOMAIN, NS_BIND, NS_SASL_CB, NS_SESSION, NS_STREAM, NS_TLS,
                    Client, Server, main, q, to_str)

USERS = {'alice': 'wonderland', 'bob': 'builder'}


class ConnectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=USERS)
        cls.server.shared = True
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def setUp(self):
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()
        self.server.assert_alive()

    def client(self):
        c = Client(self.server)
        self.clients.append(c)
        return c

    def test_header_and_features_before_tls(self):
        c = self.client().connect()
        header, features = c.open_stream()
        self.assertEqual(header.get('from'), DOMAIN)
        self.assertTrue(header.get('id'), 'stream header has no id')
        self.assertEqual(header.get('version'), '1.0')
        starttls = features.find(q(NS_TLS, 'starttls'))
        self.assertIsNotNone(starttls, to_str(features))
        self.assertIsNotNone(starttls.find(q(NS_TLS, 'required')), to_str(features))
        self.assertEqual(c.mechanisms(features), [], 'mechanisms offered before TLS: %s' % to_str(features))
        self.assertIsNone(features.find(q(NS_BIND, 'bind')))

    def test_stream_ids_differ(self):
        a = self.client().connect()
        b = self.client().connect()
        ha, _ = a.open_stream()
        hb, _ = b.open_stream()
        self.assertNotEqual(ha.get('id'), hb.get('id'))

    def test_features_after_starttls(self):
        c = self.client().connect()
        c.open_stream()
        c.starttls()
        self.assertEqual(c.tls_version(), 'TLSv1.3')
        header, features = c.open_stream()
        self.assertEqual(header.get('from'), DOMAIN)
        self.assertIsNone(features.find(q(NS_TLS, 'starttls')), 'starttls offered twice')
        mechs = c.mechanisms(features)
        for m in ('SCRAM-SHA-1', 'SCRAM-SHA-256', 'SCRAM-SHA-1-PLUS', 'SCRAM-SHA-256-PLUS', 'PLAIN'):
            self.assertIn(m, mechs, to_str(features))
        for m in ('CRAM-MD5', 'DIGEST-MD5', 'ANONYMOUS'):
            self.assertNotIn(m, mechs)
        cb = features.find(q(NS_SASL_CB, 'sasl-channel-binding'))
        self.assertIsNotNone(cb, 'no XEP-0440 feature: %s' % to_str(features))
        types = [e.get('type') for e in cb.findall(q(NS_SASL_CB, 'channel-binding'))]
        self.assertIn('tls-exporter', types)

    def test_tls12_features_consistent_and_login(self):
        # tls-exporter without TLS 1.3 (or EMS) is not a safe binding; at
        # least the -PLUS mechanisms must match what the feature advertises.
        c = self.client().connect()
        c.open_stream()
        c.send("<starttls xmlns='%s'/>" % NS_TLS)
        r = c.recv_stanza()
        self.assertEqual(r.tag, q(NS_TLS, 'proceed'))
        ctx = c.ssl_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        c.sock = ctx.wrap_socket(c.sock, server_hostname=DOMAIN)
        c.tls = True
        c._new_parser()
        _, features = c.open_stream()
        mechs = c.mechanisms(features)
        self.assertIn('SCRAM-SHA-256', mechs)
        plus = [m for m in mechs if m.endswith('-PLUS')]
        cb = features.find(q(NS_SASL_CB, 'sasl-channel-binding'))
        if plus:
            self.assertIsNotNone(cb, '-PLUS offered without XEP-0440 types: %s' % to_str(features))
        c.auth_scram('alice', USERS['alice'])

    def _login_check(self, mech, direct_tls=False):
        c = self.client()
        jid = c.login('alice', USERS['alice'], resource='m-' + mech, mech=mech, direct_tls=direct_tls)
        self.assertEqual(jid, 'alice@localhost/m-' + mech)
        self.server.wait_log(r'authenticated alice@localhost with %s\b' % mech)
        self.assertEqual(c.ping().get('type'), 'result')
        return c

    def test_login_scram_sha256(self):
        self._login_check('SCRAM-SHA-256')

    def test_login_scram_sha1(self):
        self._login_check('SCRAM-SHA-1')

    def test_login_plain(self):
        self._login_check('PLAIN')

    def test_direct_tls(self):
        c = self.client().connect(direct_tls=True)
        # ALPN is offered; a server may ignore it, but must not pick anything else
        self.assertIn(c.sock.selected_alpn_protocol(), (None, 'xmpp-client'))
        header, features = c.open_stream()
        self.assertEqual(header.get('from'), DOMAIN)
        self.assertIsNone(features.find(q(NS_TLS, 'starttls')))
        self.assertIn('SCRAM-SHA-256', c.mechanisms(features))
        c.auth_scram('bob', USERS['bob'])
        c._new_parser()
        c.open_stream()
        self.assertEqual(c.bind('dt'), 'bob@localhost/dt')

    def test_direct_tls_login(self):
        self._login_check('SCRAM-SHA-256', direct_tls=True)

    def test_features_after_auth(self):
        c = self.client()
        c.login('alice', USERS['alice'], bind=False)
        f = c.features
        self.assertIsNotNone(f.find(q(NS_BIND, 'bind')), to_str(f))
        session = f.find(q(NS_SESSION, 'session'))
        self.assertIsNotNone(session, to_str(f))
        self.assertIsNotNone(session.find(q(NS_SESSION, 'optional')), to_str(f))
        self.assertEqual(c.mechanisms(f), [])
        self.assertIsNone(f.find(q(NS_TLS, 'starttls')))

    def test_legacy_session(self):
        c = self.client()
        c.login('alice', USERS['alice'], resource='sess')
        r = c.iq('set', "<session xmlns='%s'/>" % NS_SESSION)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.assertEqual(len(list(r)), 0, 'session result not empty: %s' % to_str(r))

    def test_bind_client_resource(self):
        c = self.client()
        self.assertEqual(c.login('alice', USERS['alice'], resource='res'), 'alice@localhost/res')

    def test_bind_server_resource(self):
        c = self.client()
        jid = c.login('alice', USERS['alice'])
        self.assertTrue(jid.startswith('alice@localhost/'), jid)
        self.assertGreater(len(jid), len('alice@localhost/'))
        d = self.client()
        jid2 = d.login('alice', USERS['alice'])
        self.assertNotEqual(jid, jid2)

    def test_whitespace_keepalive(self):
        c = self.client()
        c.login('bob', USERS['bob'], resource='ka')
        for _ in range(20):
            c.send(' ')
            c.send('\n')
        c.expect_nothing(0.3)
        self.assertEqual(c.ping().get('type'), 'result')

    def test_close_handshake(self):
        c = self.client()
        c.login('bob', USERS['bob'], resource='close')
        c.close_stream()
        seen = c.expect_closed(5)
        self.assertEqual([k for k, _ in seen], ['close'], seen)

    def test_close_handshake_before_auth(self):
        c = self.client().connect()
        c.open_stream()
        c.close_stream()
        seen = c.expect_closed(5)
        self.assertEqual([k for k, _ in seen], ['close'], seen)

    def test_stanza_before_bind_rejected(self):
        # RFC 6120 7.1: a stanza after SASL but before bind is not accepted.
        c = self.client()
        c.login('alice', USERS['alice'], bind=False)
        c.send("<message to='bob@localhost'><body>x</body></message>")
        kind, elem = c.next_event()
        if kind == 'stanza' and elem.tag == q(NS_STREAM, 'error'):
            return  # not-authorized stream error: acceptable
        self.assertEqual(kind, 'stanza')
        self.assertEqual(elem.get('type'), 'error', to_str(elem))


class IdleReleaseTest(unittest.TestCase):
    """A bound stream quiet for c2s.idle_release seconds gives back its XML parser; the next
    stanza goes to a fresh parser, which must still know the prefixes the client declared on its
    stream header, and the stream goes on as before."""

    def test_quiet_stream_gives_parser_back_and_goes_on(self):
        with Server(users=USERS, c2s__idle_release=1) as srv:
            c = Client(srv)
            try:
                c.connect()
                c.open_stream()
                c.starttls()
                c.open_stream()
                c.auth_scram('alice', USERS['alice'], 'SCRAM-SHA-256')
                c._new_parser()
                c.send(c.stream_header(extra="xmlns:p='urn:xmpp:ping'"))
                c.recv_header()
                c.recv_stanza()  # features
                c.bind('idle')
                for round in range(2):
                    srv.wait_log(r'alice@%s/idle\S*\] quiet: parser given back' % DOMAIN,
                                 timeout=10, count=round + 1)
                    # split over two writes: the fresh parser sees the first half alone
                    c.send("<iq type='get' id='q%d' to='%s'><p:pi" % (round, DOMAIN))
                    c.send("ng/></iq>")
                    r = c.recv_stanza()
                    self.assertEqual(r.get('id'), 'q%d' % round, to_str(r))
                    self.assertEqual(r.get('type'), 'result', to_str(r))
                self.assertEqual(c.ping().get('type'), 'result')
            finally:
                c.close()


class OptionalTlsTest(unittest.TestCase):
    def test_plain_without_tls(self):
        with Server(users=USERS, c2s__tls='optional', c2s__plain_without_tls=True) as s, Client(s) as c:
            c.connect()
            _, f = c.open_stream()
            starttls = f.find(q(NS_TLS, 'starttls'))
            self.assertIsNotNone(starttls, to_str(f))
            self.assertIsNone(starttls.find(q(NS_TLS, 'required')), to_str(f))
            self.assertIn('PLAIN', c.mechanisms(f))
            c.auth_plain('alice', USERS['alice'])
            c._new_parser()
            c.open_stream()
            self.assertEqual(c.bind('smack'), 'alice@localhost/smack')
            self.assertEqual(c.ping().get('type'), 'result')
            s.wait_log(r'authenticated alice@localhost with PLAIN')

    def test_optional_tls_no_plain_on_plaintext(self):
        with Server(users=USERS, c2s__tls='optional') as s, Client(s) as c:
            c.connect()
            _, f = c.open_stream()
            starttls = f.find(q(NS_TLS, 'starttls'))
            self.assertIsNotNone(starttls, to_str(f))
            self.assertIsNone(starttls.find(q(NS_TLS, 'required')), to_str(f))
            self.assertNotIn('PLAIN', c.mechanisms(f), to_str(f))
            # and STARTTLS still works, after which PLAIN is offered
            c.starttls()
            _, f = c.open_stream()
            self.assertIn('PLAIN', c.mechanisms(f))

    def test_optional_tls_scram_on_plaintext(self):
        with Server(users=USERS, c2s__tls='optional') as s, Client(s) as c:
            c.connect()
            _, f = c.open_stream()
            mechs = c.mechanisms(f)
            if 'SCRAM-SHA-256' not in mechs:
                self.skipTest('server offers no SCRAM on plaintext (allowed): %s' % mechs)
            self.assertFalse([m for m in mechs if m.endswith('-PLUS')], 'PLUS without TLS: %s' % mechs)
            c.auth_scram('bob', USERS['bob'])
            c._new_parser()
            c.open_stream()
            self.assertEqual(c.bind('plain-tcp'), 'bob@localhost/plain-tcp')


if __name__ == '__main__':
    main()
