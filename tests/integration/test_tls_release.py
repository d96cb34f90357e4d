"""A quiet TLS 1.3 session gives back its SSL object (hearth_tls_release) and goes on with
hearthd's own record layer: messages both ways after it, large ones over several records, on
STARTTLS and direct TLS; a KeyUpdate the client asks for (openssl s_client's 'K') is answered
and the session goes on; close_notify ends it cleanly; a TLS 1.2 session is never released."""

import base64
import os
import re
import select
import shutil
import ssl
import subprocess
import time
import unittest

from hearth import DOMAIN, NS_CLIENT, Server, main, q
from imlib import IMClient, is_msg, wait_offline_rows

RELEASED = r'quiet: TLS state given back'
USERS = {'alice': 'wonderland', 'bob': 'builder'}


class ReleaseTest(unittest.TestCase):
    def server(self, **settings):
        s = Server(users=USERS, settings=dict({'c2s.idle_release': '1'}, **settings))
        self.addCleanup(s.close)
        s.start()
        return s

    def login(self, s, user, **kw):
        c = IMClient(s)
        self.addCleanup(c.close)
        c.login(user, USERS[user], resource='r', **kw)
        c.roster_get()
        c.presence()
        c.sync()
        return c

    def test_messages_after_release(self):
        s = self.server()
        a = self.login(s, 'alice')
        b = self.login(s, 'bob', direct_tls=True)
        self.assertEqual(a.tls_version(), 'TLSv1.3')
        s.wait_log(RELEASED, timeout=10, count=2)
        for n, (src, dst, to) in enumerate([(a, b, 'bob'), (b, a, 'alice')] * 2):
            body = 'after the release %d \u2603' % n
            id_ = src.message('%s@%s' % (to, DOMAIN), body)
            got = dst.wait(lambda st: is_msg(st, id_=id_), what='message %d' % n)
            self.assertEqual(got.findtext(q(NS_CLIENT, 'body')), body)
        big = 'x' * 60000  # several records each way
        id_ = a.message('bob@' + DOMAIN, big)
        got = b.wait(lambda st: is_msg(st, id_=id_), what='a large message')
        self.assertEqual(got.findtext(q(NS_CLIENT, 'body')), big)
        id_ = b.message('alice@' + DOMAIN, big)
        got = a.wait(lambda st: is_msg(st, id_=id_), what='a large message back')
        self.assertEqual(got.findtext(q(NS_CLIENT, 'body')), big)
        # a clean close over the released session: the server closes its side too, the
        # session ends, and a message for alice is then kept offline
        a.logout()
        b.message('alice@' + DOMAIN, 'while you are away')
        wait_offline_rows(s, 'alice', 1)
        self.assertNotRegex(s.current_log(), r'TLS record refused|TLS write failed')

    def test_tls12_kept(self):
        s = self.server()
        c = IMClient(s)
        self.addCleanup(c.close)
        make = c.ssl_context

        def tls12():
            ctx = make()
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            return ctx
        c.ssl_context = tls12
        c.login('alice', USERS['alice'], resource='r')
        self.assertEqual(c.tls_version(), 'TLSv1.2')
        c.presence()
        c.sync()
        s.wait_log(r'quiet: parser given back', timeout=10)
        c.sync()
        self.assertNotRegex(s.current_log(), RELEASED)
        # and it still works
        b = self.login(s, 'bob')
        id_ = c.message('bob@' + DOMAIN, 'over TLS 1.2')
        b.wait(lambda st: is_msg(st, id_=id_), what='the message over TLS 1.2')


def s_client():
    return shutil.which('openssl')


class KeyUpdateTest(unittest.TestCase):
    """openssl s_client over STARTTLS: logs in by hand, waits for the release, asks for a
    KeyUpdate ('K'), then pings; the answer proves both directions' new keys."""

    def test_key_update_after_release(self):
        if not s_client():
            self.skipTest('no openssl command')
        s = Server(users=USERS, settings={'c2s.idle_release': '1'})
        self.addCleanup(s.close)
        s.start()
        p = subprocess.Popen([s_client(), 's_client', '-connect', '127.0.0.1:%d' % s.port,
                              '-starttls', 'xmpp', '-xmpphost', DOMAIN, '-tls1_3',
                              '-CAfile', s.cert, '-verify_return_error'],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (p.kill(), p.wait()))
        out = bytearray()

        def send(text):
            p.stdin.write(text.encode() + b'\n')
            p.stdin.flush()

        def expect(pattern, what, timeout=10):
            rx = re.compile(pattern.encode())
            deadline = time.monotonic() + timeout
            while not rx.search(out):
                left = deadline - time.monotonic()
                self.assertGreater(left, 0, 'timed out waiting for %s; s_client said:\n%s'
                                   % (what, out.decode('utf-8', 'replace')[-3000:]))
                r, _, _ = select.select([p.stdout], [], [], left)
                if r:
                    chunk = os.read(p.stdout.fileno(), 65536)
                    self.assertTrue(chunk, 's_client ended: %s' % out.decode('utf-8', 'replace'))
                    out.extend(chunk)
            m = rx.search(out)
            del out[:m.end()]

        expect(r'CONNECTED|Verify return code: 0', 'the TLS session')
        header = ("<stream:stream xmlns='jabber:client' "
                  "xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>" % DOMAIN)
        send(header)
        expect(r'<mechanisms', 'the mechanisms')
        plain = base64.b64encode(b'\0alice\0' + USERS['alice'].encode()).decode()
        send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>" % plain)
        expect(r'<success', 'SASL success')
        send(header)
        expect(r'<bind', 'the bind feature')
        send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
             "<resource>ku</resource></bind></iq>")
        expect(r"id=.b1.", 'the bind result')
        s.wait_log(RELEASED, timeout=10)
        # s_client takes a command letter from a read of its own: each waits for its echo
        for round_ in range(2):
            send('K')  # KeyUpdate, asking the server to update its own keys too
            expect(r'KEYUPDATE', 'the KeyUpdate sent')
            send("<iq type='get' id='p%d'><ping xmlns='urn:xmpp:ping'/></iq>" % round_)
            expect(r"id=.p%d." % round_, 'the ping result after a KeyUpdate')
        send('k')  # not asking: only the client's keys change
        expect(r'KEYUPDATE', 'the KeyUpdate sent')
        send("<iq type='get' id='p9'><ping xmlns='urn:xmpp:ping'/></iq>")
        expect(r"id=.p9.", 'the ping result after an unanswered KeyUpdate')
        self.assertNotRegex(s.current_log(), r'TLS record refused')


if __name__ == '__main__':
    main()
