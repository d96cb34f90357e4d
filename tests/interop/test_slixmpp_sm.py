"""Interop of stream management (XEP-0198) with Debian's python3-slixmpp
(1.8.x) and its xep_0198 plugin: slixmpp logs in and enables stream
management with resumption; its transport is then cut abruptly from the test
(no </stream:stream>); while it is away a raw client sends it messages; it
reconnects, and the plugin sends <resume/> by itself; it gets
'session_resumed' and every message exactly once."""

import asyncio
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

from imlib import IMClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slixlib import SlixBot, SlixTestCase, main  # noqa: E402

USERS = {'alice': 'alice-pass-1', 'bob': 'bob-pass-2'}


class Bot(SlixBot):
    plugins = ('xep_0198',)

    def __init__(self, jid, password, cafile):
        super().__init__(jid, password, cafile)
        self['xep_0198'].allow_resume = True
        self.enabled = self.loop.create_future()
        self.resumed = self.loop.create_future()
        self.inbox = []
        self.starts = 0
        self.disconnects = 0
        self.add_event_handler('sm_enabled', lambda e: self.resolve(self.enabled, e))
        self.add_event_handler('session_resumed', lambda e: self.resolve(self.resumed, e))
        self.add_event_handler('sm_failed', lambda e: self.errors.append(('sm_failed', str(e))))
        self.add_event_handler('message', self.inbox.append)
        self.add_event_handler('disconnected', self._on_disconnected)

    def setup_session(self):
        self.starts += 1
        self.send_presence(ppriority=1)

    def _on_disconnected(self, reason):
        self.disconnects += 1

    def cut(self):
        """Abrupt loss of the connection: the transport is aborted, no stream close."""
        self.transport.abort()


class SlixmppStreamManagementTest(SlixTestCase):
    bot_class = Bot
    server_args = {'users': USERS, 'c2s__resume_timeout': 60}

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
        a = self.bot('alice', 'sli')
        self.connect(a)
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
        self.connect(a)
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
