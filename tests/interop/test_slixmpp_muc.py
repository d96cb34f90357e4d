"""Interop of hearthd's multi-user chat with Debian's python3-slixmpp (1.8.x)
and its xep_0045 plugin: one client creates a room and configures it with
the form of smack-session.md section 9 (Openfire's x-muc fields and an
unknown field included), a second joins, groupchat goes both ways, and the
owner invites a third, who declines with a reason."""

import asyncio
import logging
import os
import sys
import unittest
from pathlib import Path

from hearth import Server, main

try:
    import slixmpp
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath
except ImportError:  # pragma: no cover - the package is a build dependency
    slixmpp = None

TIMEOUT = 20
MUC_USER = '{http://jabber.org/protocol/muc#user}'
ROOM = 'room01@conference.localhost'

if os.environ.get('HEARTH_SLIXMPP_DEBUG'):
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)


class Bot(slixmpp.ClientXMPP if slixmpp else object):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ca_certs = Path(cafile)
        for p in ('xep_0030', 'xep_0004', 'xep_0045', 'xep_0082', 'xep_0203'):
            self.register_plugin(p)
        self.started = self.loop.create_future()
        self.groupchat = asyncio.Queue()
        self.invites = asyncio.Queue()
        self.declines = asyncio.Queue()
        self.add_event_handler('session_start', self._on_start)
        self.add_event_handler('groupchat_message', lambda m: self.groupchat.put_nowait(m))
        self.add_event_handler('groupchat_invite', lambda m: self.invites.put_nowait(m))
        # slixmpp 1.8.3's own decline handler looks up self.room (a typo for self.rooms) and
        # raises, so 'groupchat_decline' never fires: it is replaced by one of ours.
        self.remove_handler('MUCDecline')
        self.register_handler(Callback('HearthDecline', MatchXPath(
            '{jabber:client}message/%sx/%sdecline' % (MUC_USER, MUC_USER)), self._on_message))
        for ev in ('failed_all_auth', 'connection_failed', 'stream_error'):
            self.add_event_handler(ev, self._fail(ev))

    def _on_message(self, m):
        self.declines.put_nowait(m)

    async def _on_start(self, _):
        self.send_presence()
        if not self.started.done():
            self.started.set_result(self.boundjid.full)

    def _fail(self, what):
        def handler(arg):
            if not self.started.done():
                self.started.set_exception(AssertionError('%s: %s: %s' % (self.boundjid.bare, what, arg)))
        return handler


@unittest.skipIf(slixmpp is None, 'python3-slixmpp is not installed')
class SlixmppMucTest(unittest.TestCase):
    def setUp(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.bots = []
        self.s = Server(users={'alice': 'alice-pw-1', 'bob': 'bob-pw-2', 'carol': 'carol-pw-3'})
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

    def bot(self, user, password):
        b = Bot('%s@localhost/slix' % user, password, self.s.cert)
        self.bots.append(b)
        b.connect(('127.0.0.1', self.s.port))
        return b

    def run_until(self, aw, timeout=TIMEOUT):
        return self.loop.run_until_complete(asyncio.wait_for(aw, timeout))

    def test_create_configure_chat_invite_decline(self):
        a = self.bot('alice', 'alice-pw-1')
        b = self.bot('bob', 'bob-pw-2')
        c = self.bot('carol', 'carol-pw-3')
        self.run_until(asyncio.gather(a.started, b.started, c.started))
        muc_a = a['xep_0045']
        pres, subject, occupants, history = self.run_until(muc_a.join_muc_wait(ROOM, 'alice', timeout=10))
        self.assertIn(201, pres['muc']['status_codes'])
        self.assertIn(110, pres['muc']['status_codes'])
        self.assertEqual(pres['muc']['affiliation'], 'owner')
        form = self.run_until(muc_a.get_room_config(ROOM))
        self.assertIn('muc#roomconfig_roomname', form.get_fields())
        # the form as smack-session.md section 9 answers it
        answer = a['xep_0004'].make_form(ftype='submit')
        answer.add_field(var='FORM_TYPE', ftype='hidden', value='http://jabber.org/protocol/muc#roomconfig')
        answer.add_field(var='muc#roomconfig_roomowners', ftype='jid-multi', value=['alice@localhost'])
        answer.add_field(var='muc#roomconfig_maxusers', ftype='list-single', value='20')
        answer.add_field(var='muc#roomconfig_roomname', ftype='text-single', value='Room 01')
        for var, v in (('muc#roomconfig_persistentroom', True), ('muc#roomconfig_membersonly', False),
                       ('muc#roomconfig_allowinvites', True), ('muc#roomconfig_enablelogging', True),
                       ('x-muc#roomconfig_reservednick', True), ('x-muc#roomconfig_canchangenick', False),
                       ('x-muc#roomconfig_registration', False)):
            answer.add_field(var=var, ftype='boolean', value=v)
        answer.add_field(var='x-vendor#unknown', ftype='text-single', value='ignored')
        self.run_until(muc_a.set_room_config(ROOM, answer))
        values = self.run_until(muc_a.get_room_config(ROOM)).get_values()
        self.assertEqual(values['muc#roomconfig_roomname'], 'Room 01')
        self.assertEqual(values['muc#roomconfig_maxusers'], '20')
        for var, want in (('muc#roomconfig_persistentroom', True), ('muc#roomconfig_membersonly', False),
                          ('muc#roomconfig_allowinvites', True), ('muc#roomconfig_enablelogging', True),
                          ('x-muc#roomconfig_reservednick', True), ('x-muc#roomconfig_canchangenick', False),
                          ('x-muc#roomconfig_registration', False)):
            self.assertEqual(values[var], want, var)
        # bob joins
        pres, subject, occupants, history = self.run_until(b['xep_0045'].join_muc_wait(ROOM, 'bob', timeout=10))
        self.assertIn(170, pres['muc']['status_codes'])  # the room is logged
        self.assertEqual(pres['muc']['role'], 'participant')
        self.assertIn('alice', [str(p['from'].resource) for p in occupants])
        # groupchat both ways, each side seeing its own echo too
        a.send_message(mto=ROOM, mbody='hello from alice', mtype='groupchat')
        for bot in (b, a):
            m = self.run_until(bot.groupchat.get(), 10)
            self.assertEqual((str(m['from']), m['body']), (ROOM + '/alice', 'hello from alice'))
        b.send_message(mto=ROOM, mbody='hi alice, bob here', mtype='groupchat')
        for bot in (a, b):
            m = self.run_until(bot.groupchat.get(), 10)
            self.assertEqual((str(m['from']), m['body']), (ROOM + '/bob', 'hi alice, bob here'))
        # alice invites carol (mediated); carol declines with a reason
        muc_a.invite(ROOM, 'carol@localhost', reason='we are planning')
        inv = self.run_until(c.invites.get(), 10)
        self.assertEqual(str(inv['from']), ROOM)
        self.assertEqual(str(inv['muc']['invite']['from']), a.boundjid.full)
        self.assertEqual(inv['muc']['invite']['reason'], 'we are planning')
        c['xep_0045'].decline(ROOM, 'alice@localhost', reason='not today')
        dec = self.run_until(a.declines.get(), 10)
        el = dec.xml.find('%sx/%sdecline' % (MUC_USER, MUC_USER))
        self.assertEqual(el.get('from'), 'carol@localhost')
        self.assertEqual(el.findtext('%sreason' % MUC_USER), 'not today')


if __name__ == '__main__':
    main()
