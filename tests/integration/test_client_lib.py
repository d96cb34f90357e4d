"""The C client library (libhearth.so) against a live hearthd, through client_probe: login
with each SASL mechanism (and channel-binding type), certificate checks, bind, IQ round trips,
ping both ways, messages between two clients, in-band registration, stream-management
resumption after the network drops the TCP connection, and reconnection after a server
restart."""

import unittest

from clientlib import TIMEOUT, Probe, Proxy
from hearth import DOMAIN, Server, main, wait_for

USERS = {'alice': 'wonderland', 'bob': 'builder'}


class ClientLibTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=USERS, settings={'c2s.plain_without_tls': 'false'})
        cls.server.shared = True
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def setUp(self):
        self.probes = []

    def tearDown(self):
        # A probe that crashed or leaked (under ASan) exits non-zero.
        codes = [(p.name, p.close()) for p in self.probes]
        self.assertEqual([c for c in codes if c[1] != 0], [])
        self.server.assert_alive()

    def probe(self, user='alice', *extra, port=None, server=None, password=None):
        server = server or self.server
        args = ['--jid', '%s@%s/probe' % (user, DOMAIN),
                '--password', password or USERS.get(user, 'x'),
                '--host', '127.0.0.1', '--port', port or server.port, '--ca', server.cert]
        p = Probe(*(args + list(extra)), name=user)
        self.probes.append(p)
        return p

    def login(self, user='alice', *extra, **kw):
        p = self.probe(user, *extra, **kw)
        p.cmd('connect')
        p.expect(r'^connected$')
        p.expect(r'^online %s@%s/probe$' % (user, DOMAIN))
        return p

    # -- login ------------------------------------------------------------

    def test_each_mechanism(self):
        want = [('SCRAM-SHA-256-PLUS', 'tls-exporter'), ('SCRAM-SHA-1-PLUS', 'tls-exporter'),
                ('SCRAM-SHA-256', '-'), ('SCRAM-SHA-1', '-'), ('PLAIN', '-')]
        for mech, cb in want:
            with self.subTest(mech=mech):
                p = self.login('alice', '--mechs', mech)
                info = p.info()
                self.assertEqual((info['mech'], info['cb'], info['tls']), (mech, cb, 'TLSv1.3'))
                p.close()

    def test_direct_tls(self):
        p = self.login('alice', '--tls', 'direct', port=self.server.tls_port)
        self.assertEqual(p.info()['mech'], 'SCRAM-SHA-256-PLUS')

    def test_wrong_password(self):
        p = self.probe('alice', '--mechs', 'SCRAM-SHA-256', password='looking-glass')
        p.cmd('connect')
        p.expect(r'^connected$')
        p.expect(r'^disconnected EAUTH cond=not-authorized reconnect=no/0 ')

    def test_certificate_checked(self):
        # The server's self-signed certificate is in no system store.
        p = Probe('--jid', 'alice@%s' % DOMAIN, '--password', USERS['alice'], '--host',
                  '127.0.0.1', '--port', self.server.port, name='alice')
        self.probes.append(p)
        p.cmd('connect')
        p.expect(r'^connected$')
        p.expect(r'^disconnected ECERT .*certificate')
        q = Probe('--jid', 'alice@%s' % DOMAIN, '--password', USERS['alice'], '--host',
                  '127.0.0.1', '--port', self.server.port, '--no-verify', name='alice2')
        self.probes.append(q)
        q.cmd('connect')
        q.expect(r'^connected$')
        q.expect(r'^online alice@%s/' % DOMAIN)

    def test_server_assigned_resource(self):
        p = Probe('--jid', 'bob@%s' % DOMAIN, '--password', USERS['bob'], '--host', '127.0.0.1',
                  '--port', self.server.port, '--ca', self.server.cert, name='bob')
        self.probes.append(p)
        p.cmd('connect')
        p.expect(r'^connected$')
        m = p.expect(r'^online bob@%s/(\S+)$' % DOMAIN)
        self.assertTrue(m.group(1))

    # -- stanzas ----------------------------------------------------------

    def test_iq_round_trip_and_ping(self):
        p = self.login('alice')
        p.cmd("iq roster <iq type='get'><query xmlns='jabber:iq:roster'/></iq>")
        p.wait_for(r"^iq roster OK <iq .*type='result'")
        p.cmd("iq disco <iq type='get' to='%s'><query "
              "xmlns='http://jabber.org/protocol/disco#info'/></iq>" % DOMAIN)
        p.wait_for(r"^iq disco OK .*urn:xmpp:ping")
        p.cmd('ping p1')
        p.wait_for(r'^iq p1 OK')
        # An IQ to nobody: the server answers for the absent account.
        p.cmd("iq gone <iq type='get' to='nobody@%s/x'><query xmlns='jabber:iq:version'/></iq>"
              % DOMAIN)
        p.wait_for(r'^iq gone ESTANZA ')

    def test_message_between_clients(self):
        a = self.login('alice')
        b = self.login('bob')
        a.cmd("send <message to='bob@%s' type='chat' id='m1'><body>hello 你好</body></message>"
              % DOMAIN)
        m = b.wait_for(r"^stanza (<message .*</message>)$")
        self.assertIn("from='alice@%s/probe'" % DOMAIN, m.group(1))
        self.assertIn('<body>hello 你好</body>', m.group(1))

    def test_server_pings_answered(self):
        with Server(users=USERS, settings={'c2s.idle_ping': '1', 'c2s.ping_timeout': '2'}) as srv:
            p = self.login('alice', server=srv)
            # A second ping comes only if the first was answered (else the server closes).
            p.wait_for(r"^stanza <iq .*<ping xmlns='urn:xmpp:ping'/>", timeout=10)
            p.wait_for(r"^stanza <iq .*<ping xmlns='urn:xmpp:ping'/>", timeout=10)
            self.assertEqual(p.info()['jid'], 'alice@%s/probe' % DOMAIN)
            p.close()

    # -- registration -----------------------------------------------------

    def test_register(self):
        with Server(settings={'registration.open': 'true',
                              'registration.rate_limit': '0'}) as srv:
            p = Probe('--jid', 'carol@%s/probe' % DOMAIN, '--password', 'secret-carol',
                      '--host', '127.0.0.1', '--port', srv.port, '--ca', srv.cert,
                      '--register', 'create', name='carol')
            self.probes.append(p)
            p.cmd('connect')
            p.expect(r'^connected$')
            p.expect(r'^registered OK$')
            p.expect(r'^online carol@%s/probe$' % DOMAIN)
            p.close()
            # Again: the account exists, which is no error for this mode.
            q = Probe('--jid', 'carol@%s/probe' % DOMAIN, '--password', 'secret-carol',
                      '--host', '127.0.0.1', '--port', srv.port, '--ca', srv.cert,
                      '--register', 'create', name='carol2')
            self.probes.append(q)
            q.cmd('connect')
            q.expect(r'^connected$')
            q.expect(r'^registered EEXISTS$')
            q.expect(r'^online carol@%s/probe$' % DOMAIN)
            q.close()
            r = Probe('--jid', 'carol@%s/probe' % DOMAIN, '--password', 'secret-carol',
                      '--host', '127.0.0.1', '--port', srv.port, '--ca', srv.cert,
                      '--register', 'new', name='carol3')
            self.probes.append(r)
            r.cmd('connect')
            r.expect(r'^connected$')
            r.expect(r'^disconnected EEXISTS cond=conflict ')

    # -- stream management and reconnection -------------------------------

    def test_resumption_after_the_network_drops(self):
        proxy = Proxy(self.server.port)
        self.addCleanup(proxy.close)
        a = self.login('alice', '--reconnect', '100', '200', port=proxy.port)
        wait_for(lambda: a.info()['resumable'] == '1', TIMEOUT, 'stream management on')
        b = self.login('bob')
        proxy.cut()
        a.wait_for(r'^disconnected EIO .*reconnect=\d+ ')
        # While alice is away: bob writes to her (the server keeps her session), and she
        # writes to him (her library queues it).
        b.cmd("send <message to='alice@%s/probe' type='chat'><body>while away</body></message>"
              % DOMAIN)
        a.cmd("send <message to='bob@%s/probe' type='chat'><body>queued</body></message>"
              % DOMAIN)
        a.wait_for(r'^resumed alice@%s/probe$' % DOMAIN)
        a.wait_for(r"^stanza <message .*<body>while away</body>")
        b.wait_for(r"^stanza <message .*<body>queued</body>")
        self.assertEqual(a.info()['reconnects'], '1')
        self.assertGreaterEqual(proxy.accepted, 2)

    def test_reconnect_after_server_restart(self):
        with Server(users=USERS) as srv:
            proxy = Proxy(srv.port)
            self.addCleanup(proxy.close)
            a = self.login('alice', '--reconnect', '100', '400', port=proxy.port, server=srv)
            srv.stop()
            a.wait_for(r'^disconnected \S+ .*reconnect=\d+ ')
            srv.start()
            proxy.target_port = srv.port
            # The restarted server has no session to resume: a new one is bound.
            a.wait_for(r'^online alice@%s/probe$' % DOMAIN, timeout=20)
            a.cmd('ping after')
            a.wait_for(r'^iq after OK')
            a.close()


if __name__ == '__main__':
    main()
