"""Interop of the IM core with Debian's python3-slixmpp (1.8.x): two clients
register in band (XEP-0077), log in with slixmpp's default mechanism choice,
subscribe to each other with slixmpp's roster plugin (auto_authorize and
auto_subscribe), see each other's presence and exchange messages."""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slixlib import SlixBot, SlixTestCase, main  # noqa: E402


class Bot(SlixBot):
    plugins = ('xep_0030', 'xep_0004', 'xep_0066', 'xep_0077')
    # a disconnect before registration or the session fails them at once
    fail_events = SlixBot.fail_events + ('disconnected',)

    def __init__(self, jid, password, cafile, register=False):
        super().__init__(jid, password, cafile)
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
        self.awaited.insert(0, self.registered)
        self.inbox = asyncio.Queue()
        self.available = {}   # full JID -> presence
        if register:
            self.add_event_handler('register', self._on_register)
        self.add_event_handler('message', self.inbox.put_nowait)
        self.add_event_handler('presence_available', self._on_available)
        self.add_event_handler('presence_unavailable', lambda p: self.available.pop(str(p['from']), None))

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
        self.resolve(self.registered, True)

    async def setup_session(self):
        await self.get_roster()
        self.send_presence(pstatus='slixmpp here', ppriority=1)

    def _on_available(self, p):
        self.available[str(p['from'])] = p


class SlixmppImTest(SlixTestCase):
    bot_class = Bot
    server_args = {'users': {}, 'registration__open': True, 'registration__rate_limit': 0}

    def sub_state(self, bot, jid):
        item = bot.client_roster[jid]
        return item['subscription']

    def test_register_subscribe_chat(self):
        a = self.bot('sliceA', 'home', 'apples-123', register=True)
        b = self.bot('sliceb', 'work', 'bananas-456', register=True)
        self.connect(a, b)
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
        self.connect(a, b)
        self.run_until(asyncio.gather(a.started, b.started))
        a.send_presence_subscription(pto='dora@localhost')
        self.until(lambda: 'dora@localhost' in a.client_roster
                   and self.sub_state(a, 'dora@localhost') == 'both', 'subscription both')
        for x in (a, b):
            self.run_until(x.disconnect(wait=2), 10)
        self.s.restart()
        c = self.bot('carla', 'again', 'carla-pass-1')
        self.connect(c)
        self.run_until(c.started)
        self.until(lambda: 'dora@localhost' in c.client_roster
                   and self.sub_state(c, 'dora@localhost') == 'both', 'the stored roster')


if __name__ == '__main__':
    main()
