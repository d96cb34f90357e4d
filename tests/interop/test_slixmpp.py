"""Interop with Debian's python3-slixmpp (1.8.x): two real clients log in
to hearthd and exchange a message, over STARTTLS and over direct TLS."""

import asyncio
import ssl
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slixlib import SlixBot, SlixTestCase, main  # noqa: E402


class Bot(SlixBot):
    # a disconnect before the session has started fails it at once
    fail_events = SlixBot.fail_events + ('disconnected',)

    def __init__(self, jid, password, cafile, mech=None, max_tls=None):
        super().__init__(jid, password, cafile)
        if mech:
            self['feature_mechanisms'].use_mech = mech
        if max_tls:
            self.ssl_context.maximum_version = max_tls
        self.inbox = asyncio.Queue()
        self.add_event_handler('message', self.inbox.put_nowait)


class SlixmppTest(SlixTestCase):
    bot_class = Bot
    server_args = {'users': {'alice': 'wonderland', 'bob': 'builder'}}

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
        self.connect(a, b)
        self.run_until(asyncio.gather(a.started, b.started))
        self.assertEqual(a.boundjid.full, 'alice@localhost/sa')
        self.assertEqual((a.chosen_mech, b.chosen_mech), ('SCRAM-SHA-256', 'SCRAM-SHA-256'))
        self.s.wait_log(r'authenticated alice@localhost with SCRAM-SHA-256')
        self.s.wait_log(r'authenticated bob@localhost with SCRAM-SHA-256')
        self.exchange(a, b)

    def test_direct_tls(self):
        a = self.bot('alice', 'da', mech='SCRAM-SHA-256', max_tls=ssl.TLSVersion.TLSv1_2)
        b = self.bot('bob', 'db', mech='SCRAM-SHA-256', max_tls=ssl.TLSVersion.TLSv1_2)
        self.connect(a, b, direct_tls=True)
        self.run_until(asyncio.gather(a.started, b.started))
        self.assertEqual(a.chosen_mech, 'SCRAM-SHA-256')
        self.exchange(a, b)

    def test_mixed_starttls_and_direct_tls_own_choice(self):
        # No mechanism pinned: over TLS 1.2 (no -PLUS offered) slixmpp's own
        # preference must land on SCRAM-SHA-256 at the first attempt.
        a = self.bot('alice', 'ma', max_tls=ssl.TLSVersion.TLSv1_2)
        b = self.bot('bob', 'mb', max_tls=ssl.TLSVersion.TLSv1_2)
        self.connect(a)
        self.connect(b, direct_tls=True)
        self.run_until(asyncio.gather(a.started, b.started))
        self.assertEqual((a.chosen_mech, b.chosen_mech), ('SCRAM-SHA-256', 'SCRAM-SHA-256'))
        self.assertEqual((a.sasl_failures, b.sasl_failures), ([], []))
        self.exchange(a, b)

    def test_default_settings_tls13(self):
        # slixmpp 1.8.3 as a user runs it: TLS 1.3, all mechanisms. It tries
        # SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS with p=tls-unique (hearthd
        # binds tls-exporter and tls-server-end-point; tls-unique is undefined
        # for TLS 1.3, RFC 9266): each fails uncounted, and the 'y' flag that follows is then
        # accepted on that stream since no binding type is shared (hearthd
        # commit 1a0301d). Before that change this login failed outright.
        a = self.bot('alice', 'x')
        self.connect(a)
        self.run_until(a.started)
        self.assertEqual(a.chosen_mech, 'SCRAM-SHA-256', a.sasl_failures)
        self.assertEqual([m for m, _ in a.sasl_failures], ['SCRAM-SHA-256-PLUS', 'SCRAM-SHA-1-PLUS'])
        self.s.wait_log(r'authenticated alice@localhost with SCRAM-SHA-256\b')
        b = self.bot('bob', 'y')
        self.connect(b, direct_tls=True)
        self.run_until(b.started)
        self.exchange(a, b)

if __name__ == '__main__':
    main()
