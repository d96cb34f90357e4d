"""The C client library (libhearth.so) against Debian's Prosody, started by the test on
loopback with its own configuration: the library is a general XMPP client, not one that only
speaks to hearthd. The same scenarios as test_client_lib.py where Prosody has the feature."""

import unittest

from clientlib import TIMEOUT, Probe, Prosody, Proxy
from hearth import DOMAIN, main, wait_for

USERS = {'alice': 'wonderland', 'bob': 'builder'}


class ClientProsodyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Prosody(USERS)
        try:
            cls.server.start()
        except BaseException:
            cls.server.close(failed=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def setUp(self):
        self.probes = []

    def tearDown(self):
        # A probe that crashed or leaked (under ASan) exits non-zero.
        codes = [(p.name, p.close()) for p in self.probes]
        self.assertEqual([c for c in codes if c[1] != 0], [])

    def probe(self, user, *extra, port=None, password=None):
        p = Probe('--jid', '%s@%s/probe' % (user, DOMAIN), '--password',
                  password or USERS.get(user, 'x'), '--host', '127.0.0.1', '--port',
                  port or self.server.port, '--ca', self.server.cert, *extra, name=user)
        self.probes.append(p)
        return p

    def login(self, user, *extra, **kw):
        p = self.probe(user, *extra, **kw)
        p.cmd('connect')
        p.expect(r'^connected$')
        p.expect(r'^online %s@%s/probe$' % (user, DOMAIN))
        return p

    def test_login_mechanisms(self):
        for mech in ('SCRAM-SHA-1', 'PLAIN'):
            with self.subTest(mech=mech):
                p = self.login('alice', '--mechs', mech)
                info = p.info()
                self.assertEqual((info['mech'], info['tls']), (mech, 'TLSv1.3'))
                p.close()

    def test_direct_tls(self):
        p = self.login('alice', '--tls', 'direct', port=self.server.tls_port)
        self.assertEqual(p.info()['tls'], 'TLSv1.3')

    def test_wrong_password(self):
        p = self.probe('alice', password='nope')
        p.cmd('connect')
        p.expect(r'^connected$')
        p.expect(r'^disconnected EAUTH cond=not-authorized ')

    def test_iq_ping_and_messages(self):
        a = self.login('alice')
        b = self.login('bob')
        a.cmd("iq roster <iq type='get'><query xmlns='jabber:iq:roster'/></iq>")
        a.wait_for(r'^iq roster OK ')
        a.cmd('ping p1 %s' % DOMAIN)
        a.wait_for(r'^iq p1 OK')
        a.cmd("send <message to='bob@%s/probe' type='chat'><body>hello 你好</body></message>"
              % DOMAIN)
        m = b.wait_for(r'^stanza (<message .*</message>)$')
        self.assertIn("from='alice@%s/probe'" % DOMAIN, m.group(1))
        self.assertIn('<body>hello 你好</body>', m.group(1))

    def test_register(self):
        p = self.probe('dave', '--register', 'create', password='secret-dave')
        p.cmd('connect')
        p.expect(r'^connected$')
        p.expect(r'^registered OK$')
        p.expect(r'^online dave@%s/probe$' % DOMAIN)
        p.close()
        q = self.probe('dave', '--register', 'create', password='secret-dave')
        q.cmd('connect')
        q.expect(r'^connected$')
        q.expect(r'^registered EEXISTS$')
        q.expect(r'^online dave@%s/probe$' % DOMAIN)

    def test_resumption_after_the_network_drops(self):
        proxy = Proxy(self.server.port)
        self.addCleanup(proxy.close)
        a = self.login('alice', '--reconnect', '100', '200', port=proxy.port)
        wait_for(lambda: a.info()['resumable'] == '1', TIMEOUT, 'stream management on')
        b = self.login('bob')
        proxy.cut()
        a.wait_for(r'^disconnected EIO .*reconnect=\d+ ')
        b.cmd("send <message to='alice@%s/probe' type='chat'><body>while away</body></message>"
              % DOMAIN)
        a.cmd("send <message to='bob@%s/probe' type='chat'><body>queued</body></message>"
              % DOMAIN)
        a.wait_for(r'^resumed alice@%s/probe$' % DOMAIN)
        a.wait_for(r'^stanza <message .*<body>while away</body>')
        b.wait_for(r'^stanza <message .*<body>queued</body>')

    def test_reconnect_after_restart(self):
        proxy = Proxy(self.server.port)
        self.addCleanup(proxy.close)
        a = self.login('alice', '--reconnect', '100', '400', port=proxy.port)
        self.server.stop()
        a.wait_for(r'^disconnected \S+ .*reconnect=\d+ ')
        self.server.start()
        a.wait_for(r'^online alice@%s/probe$' % DOMAIN, timeout=20)
        a.cmd('ping after %s' % DOMAIN)
        a.wait_for(r'^iq after OK')


if __name__ == '__main__':
    main()
