"""Interop of stream management (XEP-0198) with Debian's python3-slixmpp
(1.8.x) and its xep_0198 plugin: slixmpp logs in and enables stream
management with resumption; its transport is then cut abruptly from the test
(no </stream:stream>); while it is away a raw client sends it messages; it
reconnects, and the plugin sends <resume/> by itself; it gets
'session_resumed' and every message exactly once."""

import asyncio
import logging
import os
import sys
import unittest
from pathlib import Path
from xml.etree import ElementTree as ET

from hearth import Server, main
from imlib import IMClient

try:
    import slixmpp
except ImportError:  # pragma: no cover - the package is a build dependency
    slixmpp = None

TIMEOUT = 20
USERS = {'alice': 'alice-pass-1', 'bob': 'bob-pass-2'}

if os.environ.get('HEARTH_SLIXMPP_DEBUG'):
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)


class Bot(slixmpp.ClientXMPP if slixmpp else object):
    def __init__(self, jid, password, cafile, port):
        super().__init__(jid, password)
        self.ca_certs = Path(cafile)
        self.port = port
        self.register_plugin('xep_0198')
        self['xep_0198'].allow_resume = True
        self.started = self.loop.create_future()
        self.enabled = self.loop.create_future()
        self.resumed = self.loop.create_future()
        self.inbox = []
        self.starts = 0
        self.disconnects = 0
        self.errors = []
        self.add_event_handler('session_start', self._on_start)
        self.add_event_handler('sm_enabled', lambda e: self._done(self.enabled, e))
        self.add_event_handler('session_resumed', lambda e: self._done(self.resumed, e))
        self.add_event_handler('sm_failed', lambda e: self.errors.append(('sm_failed', str(e))))
        self.add_event_handler('message', lambda m: self.inbox.append(m))
        self.add_event_handler('disconnected', self._on_disconnected)
        for ev in ('failed_all_auth', 'connection_failed', 'stream_error'):
            self.add_event_handler(ev, lambda arg, ev=ev: self.errors.append((ev, str(arg))))

    @staticmethod
    def _done(fut, value):
        if not fut.done():
            fut.set_result(value)

    def _on_start(self, _):
        self.starts += 1
        self.send_presence(ppriority=1)
        self._done(self.started, self.boundjid.full)

    def _on_disconnected(self, reason):
        self.disconnects += 1

    def cut(self):
        """Abrupt loss of the connection: the transport is aborted, no stream close."""
        self.transport.abort()


@unittest.skipIf(slixmpp is None, 'python3-slixmpp is not installed')
class SlixmppStreamManagementTest(unittest.TestCase):
    def setUp(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.bots = []
        self.raw = []
        self.s = Server(users=USERS, c2s__resume_timeout=60)
        self.addCleanup(self.s.close)
        self.s.start()

    def tearDown(self):
        for c in self.raw:
            c.close()
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

    def until(self, cond, what, timeout=TIMEOUT):
        async def poll():
            while not cond():
                await asyncio.sleep(0.05)
        try:
            self.run_until(poll(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError('timed out after %ds waiting for %s' % (timeout, what))

    def spin(self):
        """Let slixmpp's loop run a little (it is not running between calls)."""
        self.loop.run_until_complete(asyncio.sleep(0.05))

    def raw_client(self, user, resource):
        c = IMClient(self.s)
        self.raw.append(c)
        c.login(user, USERS[user], resource=resource)
        c.presence()
        c.sync()
        return c

    def received_ids(self, bot):
        return [m['id'] for m in bot.inbox]

    def test_cut_and_resume(self):
        a = Bot('alice@localhost/sli', USERS['alice'], self.s.cert, self.s.port)
        self.bots.append(a)
        a.connect(('127.0.0.1', self.s.port))
        self.run_until(a.started)
        self.run_until(a.enabled)
        sm = a['xep_0198']
        sm_id = sm.sm_id
        self.assertTrue(sm_id, 'no SM-ID after <enabled/>')
        self.assertTrue(sm.enabled_in and sm.enabled_out)
        b = self.raw_client('bob', 'raw')
        # before the cut: one message to the full JID, handled by slixmpp
        before = b.message(a.boundjid.full, 'before the cut')
        self.until(lambda: before in self.received_ids(a), 'the message before the cut')
        # cut: the transport is aborted (asyncio closes the socket once its loop runs)
        a.cut()
        self.until(lambda: a.transport is None and a.disconnects == 1, 'slixmpp to see the connection lost', 10)
        self.s.wait_log(r'connection lost: session kept', timeout=10)
        # while it is away: to the full and the bare JID
        ids = [b.message(a.boundjid.full, 'while away %d' % i) for i in range(3)]
        ids += [b.message('alice@localhost', 'to the bare JID %d' % i) for i in range(2)]
        b.expect_none(lambda st: st.get('type') == 'error', 'error for a message to the kept session')
        # the application connects again; the xep_0198 plugin sends <resume/> itself
        a.connect(('127.0.0.1', self.s.port))
        self.run_until(a.resumed)
        self.assertEqual(sm.sm_id, sm_id, 'resumed under another SM-ID')
        self.s.wait_log(r'resumed alice@localhost/sli', timeout=10)
        self.until(lambda: all(i in self.received_ids(a) for i in ids), 'the messages sent while away')
        self.assertEqual(a.starts, 1, 'session_start again: it bound anew instead of resuming')
        self.assertEqual(a.boundjid.full, 'alice@localhost/sli')
        # nothing more comes: the server answers slixmpp's ping only after it
        # has sent whatever it had queued for it
        self.run_until(self._ping(a))
        got = self.received_ids(a)
        self.assertEqual(got.count(before), 1, 'the handled message was resent: %s' % got)
        for i in ids:
            self.assertEqual(got.count(i), 1, '%s delivered %d times: %s' % (i, got.count(i), got))
        self.assertEqual(got, [before] + ids, 'order')
        self.assertEqual(a.errors, [])
        self.assertNotIn('not resumed in time', self.s.current_log())
        # the resumed session works both ways
        a.send_message(mto='bob@localhost/raw', mbody='back', mtype='chat')
        self.spin()
        m = b.wait(lambda st: st.tag == '{jabber:client}message' and st.findtext('{jabber:client}body') == 'back',
                   timeout=10)
        self.assertEqual(m.get('from'), 'alice@localhost/sli')
        after = b.message(a.boundjid.full, 'after')
        self.until(lambda: after in self.received_ids(a), 'a message after the resumption')

    async def _ping(self, bot):
        iq = bot.Iq()
        iq['type'] = 'get'
        iq['to'] = 'localhost'
        iq.append(ET.Element('{urn:xmpp:ping}ping'))
        await iq.send(timeout=10)


if __name__ == '__main__':
    main()
