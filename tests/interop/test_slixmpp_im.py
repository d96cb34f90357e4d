"""Interop of the IM core with Debian's python3-slixmpp (1.8.x): two clients
register in band (XEP-0077), log in with slixmpp's default mechanism choice,
subscribe to each other with slixmpp's roster plugin (auto_authorize and
auto_subscribe), see each other's presence and exchange messages."""

import asyncio
import logging
import os
import sys
import unittest
from pathlib import Path

from hearth import Server, main

try:
    import slixmpp
except ImportError:  # pragma: no cover - the package is a build dependency
    slixmpp = None

TIMEOUT = 20

if os.environ.get('HEARTH_SLIXMPP_DEBUG'):
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)


class Bot(slixmpp.ClientXMPP if slixmpp else object):
    def __init__(self, jid, password, cafile, register=False):
        super().__init__(jid, password)
        self.ca_certs = Path(cafile)
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0004')
        self.register_plugin('xep_0066')
        self.register_plugin('xep_0077')
        self['xep_0077'].force_registration = register
        # without this an existing account would try to register again at
        # every login (the server advertises the register feature)
        self['xep_0077'].create_account = register
        if register:
            # slixmpp 1.8.3 queues every stanza until the session has started
            # ("NOT SENT" in its debug log), its own pre-auth jabber:iq:register
            # get included, so in-band registration never leaves the client.
            # Its test harness sets this flag; nothing else is sent before
            # session_start here.
            self._always_send_everything = True
        self.auto_authorize = True
        self.auto_subscribe = True
        self.registered = self.loop.create_future() if register else None
        self.started = self.loop.create_future()
        self.inbox = asyncio.Queue()
        self.available = {}   # full JID -> presence
        self.chosen_mech = None
        self.sasl_failures = []
        if register:
            self.add_event_handler('register', self._on_register)
        self.add_event_handler('session_start', self._on_start)
        self.add_event_handler('message', lambda m: self.inbox.put_nowait(m))
        self.add_event_handler('presence_available', self._on_available)
        self.add_event_handler('presence_unavailable', lambda p: self.available.pop(str(p['from']), None))
        self.add_event_handler('auth_success', lambda _: setattr(self, 'chosen_mech',
                                                                 self['feature_mechanisms'].mech.name))
        self.add_event_handler('failed_auth', lambda f: self.sasl_failures.append(
            (self['feature_mechanisms'].mech.name, f['condition'])))
        for ev in ('failed_all_auth', 'connection_failed', 'stream_error', 'disconnected'):
            self.add_event_handler(ev, self._fail(ev))

    async def _on_register(self, form):
        iq = self.Iq()
        iq['type'] = 'set'
        iq['register']['username'] = self.boundjid.user
        iq['register']['password'] = self.password
        try:
            await iq.send(timeout=10)
        except Exception as e:  # IqError / IqTimeout: reported to the test
            if not self.registered.done():
                self.registered.set_exception(AssertionError('registration of %s failed: %r'
                                                             % (self.boundjid.bare, e)))
            self.disconnect()
            return
        if not self.registered.done():
            self.registered.set_result(True)

    async def _on_start(self, _):
        await self.get_roster()
        self.send_presence(pstatus='slixmpp here', ppriority=1)
        if not self.started.done():
            self.started.set_result(self.boundjid.full)

    def _on_available(self, p):
        self.available[str(p['from'])] = p

    def _fail(self, what):
        def handler(arg):
            for fut in (self.registered, self.started):
                if fut is not None and not fut.done():
                    fut.set_exception(AssertionError('%s: %s: %s (SASL failures: %s)'
                                                     % (self.boundjid.bare, what, arg, self.sasl_failures)))
        return handler


@unittest.skipIf(slixmpp is None, 'python3-slixmpp is not installed')
class SlixmppImTest(unittest.TestCase):
    def setUp(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.bots = []
        self.s = Server(users={}, registration__open=True, registration__rate_limit=0)
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

    def bot(self, user, resource, password, register=False):
        b = Bot('%s@localhost/%s' % (user, resource), password, self.s.cert, register=register)
        self.bots.append(b)
        return b

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

    def sub_state(self, bot, jid):
        item = bot.client_roster[jid]
        return item['subscription']

    def test_register_subscribe_chat(self):
        a = self.bot('sliceA', 'home', 'apples-123', register=True)
        b = self.bot('sliceb', 'work', 'bananas-456', register=True)
        a.connect(('127.0.0.1', self.s.port))
        b.connect(('127.0.0.1', self.s.port))
        self.run_until(asyncio.gather(a.registered, b.registered))
        self.run_until(asyncio.gather(a.started, b.started))
        self.assertEqual(a.boundjid.full, 'slicea@localhost/home')  # nodeprep
        sys.stderr.write('NOTE: slixmpp chose %s / %s after failures %s / %s\n'
                         % (a.chosen_mech, b.chosen_mech, a.sasl_failures, b.sasl_failures))
        self.assertEqual((a.chosen_mech, b.chosen_mech), ('SCRAM-SHA-256', 'SCRAM-SHA-256'))
        aj, bj = a.boundjid.bare, b.boundjid.bare
        a.send_presence_subscription(pto=bj)
        self.until(lambda: bj in a.client_roster and self.sub_state(a, bj) == 'both'
                   and aj in b.client_roster and self.sub_state(b, aj) == 'both',
                   'both rosters to show subscription both')
        self.until(lambda: b.boundjid.full in a.available and a.boundjid.full in b.available,
                   'each to see the other available')
        self.assertEqual(a.available[b.boundjid.full]['status'], 'slixmpp here')
        body = 'hello from slixmpp — 你好 "quoted" <&>'
        a.send_message(mto=bj, mbody=body, mtype='chat')
        msg = self.run_until(b.inbox.get(), 10)
        self.assertEqual((str(msg['from']), msg['body'], msg['type']), (a.boundjid.full, body, 'chat'))
        b.send_message(mto=a.boundjid.full, mbody='pong', mtype='chat')
        reply = self.run_until(a.inbox.get(), 10)
        self.assertEqual((str(reply['from']), reply['body']), (b.boundjid.full, 'pong'))
        # b leaves: a sees it go
        self.run_until(b.disconnect(wait=2), 10)
        self.until(lambda: b.boundjid.full not in a.available, 'b to go unavailable at a')

    def test_registered_account_and_roster_survive_restart(self):
        a = self.bot('carla', 'x', 'carla-pass-1', register=True)
        b = self.bot('dora', 'y', 'dora-pass-2', register=True)
        a.connect(('127.0.0.1', self.s.port))
        b.connect(('127.0.0.1', self.s.port))
        self.run_until(asyncio.gather(a.started, b.started))
        a.send_presence_subscription(pto='dora@localhost')
        self.until(lambda: 'dora@localhost' in a.client_roster
                   and self.sub_state(a, 'dora@localhost') == 'both', 'subscription both')
        for x in (a, b):
            self.run_until(x.disconnect(wait=2), 10)
        self.s.restart()
        c = self.bot('carla', 'again', 'carla-pass-1')
        c.connect(('127.0.0.1', self.s.port))
        self.run_until(c.started)
        self.until(lambda: 'dora@localhost' in c.client_roster
                   and self.sub_state(c, 'dora@localhost') == 'both', 'the stored roster')


if __name__ == '__main__':
    main()
