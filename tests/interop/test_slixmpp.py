"""Interop with Debian's python3-slixmpp (1.8.x): two real clients log in
to hearthd and exchange a message, over STARTTLS and over direct TLS."""

import asyncio
import logging
import os
import ssl
import sys
import unittest
from pathlib import Path

from hearth import Server, main

try:
    import slixmpp
except ImportError:  # pragma: no cover - the package is a build dependency
    slixmpp = None

USERS = {'alice': 'wonderland', 'bob': 'builder'}
TIMEOUT = 20

if os.environ.get('HEARTH_SLIXMPP_DEBUG'):
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)


class Bot(slixmpp.ClientXMPP if slixmpp else object):
    def __init__(self, jid, password, cafile, mech=None, max_tls=None):
        super().__init__(jid, password)
        self.ca_certs = Path(cafile)
        if mech:
            self['feature_mechanisms'].use_mech = mech
        if max_tls:
            self.ssl_context.maximum_version = max_tls
        self.started = self.loop.create_future()
        self.inbox = asyncio.Queue()
        self.chosen_mech = None
        self.add_event_handler('session_start', self._on_start)
        self.add_event_handler('message', self._on_message)
        self.add_event_handler('auth_success', self._on_auth)
        self.failures = []  # slixmpp tries the next mechanism after a failure
        self.add_event_handler('failed_auth', lambda f: self.failures.append(
            (self['feature_mechanisms'].mech.name, f['condition'])))
        self.add_event_handler('failed_all_auth', self._on_fail('no mechanism worked'))
        self.add_event_handler('connection_failed', self._on_fail('connection failed'))
        self.add_event_handler('stream_error', self._on_fail('stream error'))
        self.add_event_handler('disconnected', self._on_fail('disconnected'))

    def _on_start(self, _):
        if not self.started.done():
            self.started.set_result(self.boundjid.full)

    def _on_auth(self, _):
        self.chosen_mech = self['feature_mechanisms'].mech.name

    def _on_message(self, msg):
        self.inbox.put_nowait(msg)

    def _on_fail(self, what):
        def handler(arg):
            if not self.started.done():
                self.started.set_exception(AssertionError('%s: %s: %s (SASL failures so far: %s)'
                                                          % (self.boundjid.bare, what, arg, self.failures)))
        return handler


@unittest.skipIf(slixmpp is None, 'python3-slixmpp is not installed')
class SlixmppTest(unittest.TestCase):
    def setUp(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.bots = []
        self.s = Server(users=USERS)
        self.addCleanup(self.s.close)
        self.s.start()

    def tearDown(self):
        for b in self.bots:
            try:
                self.loop.run_until_complete(asyncio.wait_for(b.disconnect(wait=1), 5))
            except Exception:
                b.abort()
        for b in self.bots:
            b.abort()
        pending = asyncio.all_tasks(self.loop)
        for t in pending:
            t.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()
        asyncio.set_event_loop(None)
        self.s.assert_alive()

    def bot(self, user, resource, **kw):
        b = Bot('%s@localhost/%s' % (user, resource), USERS[user], self.s.cert, **kw)
        self.bots.append(b)
        return b

    def run_until(self, aw, timeout=TIMEOUT):
        return self.loop.run_until_complete(asyncio.wait_for(aw, timeout))

    def exchange(self, a, b):
        body = 'hello from slixmpp — 你好 "quoted" <&>'
        a.send_message(mto=b.boundjid.full, mbody=body, mtype='chat')
        msg = self.run_until(b.inbox.get(), 10)
        self.assertEqual(str(msg['from']), a.boundjid.full)
        self.assertEqual(msg['body'], body)
        self.assertEqual(msg['type'], 'chat')
        b.send_message(mto=a.boundjid.full, mbody='pong', mtype='chat')
        reply = self.run_until(a.inbox.get(), 10)
        self.assertEqual(str(reply['from']), b.boundjid.full)
        self.assertEqual(reply['body'], 'pong')

    def test_starttls_scram_sha256(self):
        # TLS 1.2 so that the server offers no -PLUS: slixmpp 1.8 only knows
        # tls-unique, and with a channel-binding-capable socket it sends the
        # gs2 flag 'y', which a server advertising -PLUS must refuse (RFC 5802
        # 6). test_default_settings covers what slixmpp does unconstrained.
        a = self.bot('alice', 'sa', mech='SCRAM-SHA-256', max_tls=ssl.TLSVersion.TLSv1_2)
        b = self.bot('bob', 'sb', mech='SCRAM-SHA-256', max_tls=ssl.TLSVersion.TLSv1_2)
        a.connect(('127.0.0.1', self.s.port))
        b.connect(('127.0.0.1', self.s.port))
        self.run_until(asyncio.gather(a.started, b.started))
        self.assertEqual(a.boundjid.full, 'alice@localhost/sa')
        self.assertEqual((a.chosen_mech, b.chosen_mech), ('SCRAM-SHA-256', 'SCRAM-SHA-256'))
        self.s.wait_log(r'authenticated alice@localhost with SCRAM-SHA-256')
        self.s.wait_log(r'authenticated bob@localhost with SCRAM-SHA-256')
        self.exchange(a, b)

    def test_direct_tls(self):
        a = self.bot('alice', 'da', mech='SCRAM-SHA-256', max_tls=ssl.TLSVersion.TLSv1_2)
        b = self.bot('bob', 'db', mech='SCRAM-SHA-256', max_tls=ssl.TLSVersion.TLSv1_2)
        a.connect(('127.0.0.1', self.s.tls_port), use_ssl=True)
        b.connect(('127.0.0.1', self.s.tls_port), use_ssl=True)
        self.run_until(asyncio.gather(a.started, b.started))
        self.assertEqual(a.chosen_mech, 'SCRAM-SHA-256')
        self.exchange(a, b)

    def test_mixed_starttls_and_direct_tls_own_choice(self):
        # No mechanism pinned: over TLS 1.2 (no -PLUS offered) slixmpp's own
        # preference must land on SCRAM-SHA-256 at the first attempt.
        a = self.bot('alice', 'ma', max_tls=ssl.TLSVersion.TLSv1_2)
        b = self.bot('bob', 'mb', max_tls=ssl.TLSVersion.TLSv1_2)
        a.connect(('127.0.0.1', self.s.port))
        b.connect(('127.0.0.1', self.s.tls_port), use_ssl=True)
        self.run_until(asyncio.gather(a.started, b.started))
        self.assertEqual((a.chosen_mech, b.chosen_mech), ('SCRAM-SHA-256', 'SCRAM-SHA-256'))
        self.assertEqual((a.failures, b.failures), ([], []))
        self.exchange(a, b)

    def test_default_settings_tls13(self):
        # slixmpp 1.8.3 as a user runs it: TLS 1.3, all mechanisms. It tries
        # SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS with p=tls-unique (hearthd
        # binds only tls-exporter; tls-unique is undefined for TLS 1.3, RFC
        # 9266): each fails uncounted, and the 'y' flag that follows is then
        # accepted on that stream since no binding type is shared (hearthd
        # commit 1a0301d). Before that change this login failed outright.
        a = self.bot('alice', 'x')
        a.connect(('127.0.0.1', self.s.port))
        self.run_until(a.started)
        self.assertEqual(a.chosen_mech, 'SCRAM-SHA-256', a.failures)
        self.assertEqual([m for m, _ in a.failures], ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS'])
        self.s.wait_log(r'authenticated alice@localhost with SCRAM-SHA-256\b')
        b = self.bot('bob', 'y')
        b.connect(('127.0.0.1', self.s.tls_port), use_ssl=True)
        self.run_until(b.started)
        self.exchange(a, b)

if __name__ == '__main__':
    main()
