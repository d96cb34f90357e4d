"""Interop of the message archive (XEP-0313, urn:xmpp:mam:2) with Debian's
python3-slixmpp (1.8.x): a 250-message history is made with raw harness
clients, then slixmpp's xep_0313 plugin pages through it with XEP-0059
forwards and must get all 250, in order, under the ids the recipient saw
(and the newest page going backwards)."""

import asyncio
import logging
import os
import sys
import unittest
from pathlib import Path

from hearth import Server, q, main
from imlib import NS_SID, IMClient, is_msg

try:
    import slixmpp
except ImportError:  # pragma: no cover - the package is a build dependency
    slixmpp = None

TIMEOUT = 30
N = 250

if os.environ.get('HEARTH_SLIXMPP_DEBUG'):
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)


class Bot(slixmpp.ClientXMPP if slixmpp else object):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ca_certs = Path(cafile)
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0059')
        self.register_plugin('xep_0297')
        self.register_plugin('xep_0313')
        self.started = self.loop.create_future()
        self.add_event_handler('session_start', self._on_start)
        for ev in ('failed_all_auth', 'connection_failed', 'stream_error'):
            self.add_event_handler(ev, self._fail(ev))

    async def _on_start(self, _):
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    def _fail(self, what):
        def handler(arg):
            if not self.started.done():
                self.started.set_exception(AssertionError('%s: %s' % (what, arg)))
        return handler


@unittest.skipIf(slixmpp is None, 'python3-slixmpp is not installed')
class SlixmppMamTest(unittest.TestCase):
    def setUp(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.bots = []
        self.s = Server(users={'alice': 'alice-pw', 'bob': 'bob-pw'})
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

    def run_until(self, aw, timeout=TIMEOUT):
        return self.loop.run_until_complete(asyncio.wait_for(aw, timeout))

    def make_history(self):
        """alice sends N messages to bob with raw clients; returns the bodies
        and the stanza ids bob saw."""
        a = IMClient(self.s)
        b = IMClient(self.s)
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        a.login('alice', 'alice-pw', resource='raw')
        b.login('bob', 'bob-pw', resource='raw')
        b.send('<presence/>')
        b.sync()
        bodies = ['history %03d' % i for i in range(N)]
        sids = []
        for i, body in enumerate(bodies):
            a.message('bob@localhost', body, id_='h%d' % i)
        for i in range(N):
            m = b.wait(lambda s, i=i: is_msg(s, id_='h%d' % i), what='message %d' % i)
            sids.append([x.get('id') for x in m.findall(q(NS_SID, 'stanza-id'))
                         if x.get('by') == 'bob@localhost'][0])
        a.logout()
        b.logout()
        return bodies, sids

    def bot(self, user, password):
        bot = Bot('%s@localhost/sli' % user, password, self.s.cert)
        self.bots.append(bot)
        bot.connect(('127.0.0.1', self.s.port))
        self.run_until(bot.started)
        return bot

    def collect(self, bot, reverse=False):
        async def go():
            out = []
            async for m in bot['xep_0313'].iterate(rsm={'max': 50}, reverse=reverse):
                res = m['mam_result']
                out.append((res['id'], res['forwarded']['stanza']['body']))
            return out
        return self.run_until(go(), 60)

    def test_pages_through_250(self):
        bodies, sids = self.make_history()
        bob = self.bot('bob', 'bob-pw')
        got = self.collect(bob)
        self.assertEqual(len(got), N)
        self.assertEqual([b for _, b in got], bodies)
        self.assertEqual([i for i, _ in got], sids)
        # Backwards: slixmpp 1.8.3's ResultIterator stops once first_index + items == count,
        # a rule that only holds going forwards, so with reverse=True it stops after the last
        # page (index 200 of 250) whatever the server does. Its first page is still checked:
        # the newest 50, handed back newest first.
        back = self.collect(bob, reverse=True)
        self.assertEqual([b for _, b in back], list(reversed(bodies))[:50])
        alice = self.bot('alice', 'alice-pw')
        got = self.collect(alice)
        self.assertEqual([b for _, b in got], bodies)
        # the form fields, as slixmpp asks for them
        fields = self.run_until(alice['xep_0313'].get_fields())
        self.assertTrue({'FORM_TYPE', 'with', 'start', 'end'} <= set(fields.get_fields()))


if __name__ == '__main__':
    main()
