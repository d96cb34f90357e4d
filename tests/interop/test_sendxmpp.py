"""Interop with Debian's go-sendxmpp: it logs in as alice and sends a message
to bob, who is a raw harness client; over STARTTLS and over direct TLS."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

from hearth import NS_CLIENT, Client, Server, main, q

SENDXMPP = os.environ.get('HEARTH_SENDXMPP', '/usr/bin/go-sendxmpp')
USERS = {'alice': 'wonderland', 'bob': 'builder'}


@unittest.skipUnless(os.access(SENDXMPP, os.X_OK), 'go-sendxmpp is not installed')
class SendxmppTest(unittest.TestCase):
    def setUp(self):
        self.s = Server(users=USERS)
        self.addCleanup(self.s.close)
        self.s.start()
        self.home = tempfile.mkdtemp(prefix='hearth-sendxmpp-')
        self.addCleanup(shutil.rmtree, self.home, True)
        self.bob = Client(self.s)
        self.addCleanup(self.bob.close)
        self.bob.login('bob', USERS['bob'], resource='raw')
        self.bob.send('<presence/>')
        # Round trip: the reflection of bob's own presence (RFC 6121 4.2.2)
        # arrives before the ping result and is skipped with it.
        self.assertEqual(self.bob.ping().get('type'), 'result')

    def tearDown(self):
        self.s.assert_alive()

    def sendxmpp(self, port, to, text, *extra):
        cmd = [SENDXMPP, '-u', 'alice@localhost', '-p', USERS['alice'], '-j', '127.0.0.1:%d' % port,
               '-n', '--timeout', '10'] + list(extra) + [to]
        env = dict(os.environ, HOME=self.home)
        r = subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=40, env=env)
        if r.returncode != 0:
            # once more with -d for the report
            d = subprocess.run(cmd[:1] + ['-d'] + cmd[1:], input=text, capture_output=True, text=True,
                               timeout=40, env=env)
            self.fail('go-sendxmpp exited %d: %s%s\n--- debug run ---\n%s%s'
                      % (r.returncode, r.stdout, r.stderr, d.stdout[-4000:], d.stderr[-4000:]))
        return r

    def expect_message(self, text):
        m = self.bob.recv_until(lambda s: s.tag == q(NS_CLIENT, 'message')
                                and s.find(q(NS_CLIENT, 'body')) is not None, timeout=15)
        self.assertTrue(m.get('from', '').startswith('alice@localhost/'), m.get('from'))
        self.assertEqual(m.findtext(q(NS_CLIENT, 'body')).strip(), text)
        mech = re.findall(r'authenticated alice@localhost with (\S+)', self.s.current_log())
        sys.stderr.write('NOTE: go-sendxmpp authenticated with %s\n' % mech)
        return m

    def test_starttls_to_full_jid(self):
        self.sendxmpp(self.s.port, self.bob.jid, 'hello over STARTTLS')
        self.expect_message('hello over STARTTLS')

    def test_starttls_to_bare_jid(self):
        # bob sent available presence, so a chat to the bare JID reaches him
        self.sendxmpp(self.s.port, 'bob@localhost', 'hello bare')
        self.expect_message('hello bare')

    def test_direct_tls(self):
        self.sendxmpp(self.s.tls_port, self.bob.jid, 'hello over direct TLS', '-t')
        self.expect_message('hello over direct TLS')

    def test_wrong_password_fails_cleanly(self):
        cmd = [SENDXMPP, '-u', 'alice@localhost', '-p', 'wrong', '-j', '127.0.0.1:%d' % self.s.port,
               '-n', '--timeout', '10', self.bob.jid]
        r = subprocess.run(cmd, input='nope', capture_output=True, text=True, timeout=40,
                           env=dict(os.environ, HOME=self.home))
        self.assertNotEqual(r.returncode, 0)
        self.bob.expect_nothing(0.5)


if __name__ == '__main__':
    main()
