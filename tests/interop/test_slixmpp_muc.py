"""Interop of hearthd's multi-user chat with Debian's python3-slixmpp (1.8.x)
and its xep_0045 plugin: one client creates a room and configures it with
the form of smack-session.md section 9 (Openfire's x-muc fields and an
unknown field included), a second joins, groupchat goes both ways, and the
owner invites a third, who declines with a reason."""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slixlib import SlixBot, SlixTestCase, main, slixmpp  # noqa: E402

if slixmpp:
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath

MUC_USER = '{http://jabber.org/protocol/muc#user}'
ROOM = 'room01@conference.localhost'


class Bot(SlixBot):
    plugins = ('xep_0030', 'xep_0004', 'xep_0045', 'xep_0082', 'xep_0203')

    def __init__(self, jid, password, cafile):
        super().__init__(jid, password, cafile)
        self.groupchat = asyncio.Queue()
        self.invites = asyncio.Queue()
        self.declines = asyncio.Queue()
        self.add_event_handler('groupchat_message', self.groupchat.put_nowait)
        self.add_event_handler('groupchat_invite', self.invites.put_nowait)
        # slixmpp 1.8.3's own decline handler looks up self.room (a typo for self.rooms) and
        # raises, so 'groupchat_decline' never fires: it is replaced by one of ours.
        self.remove_handler('MUCDecline')
        self.register_handler(Callback('HearthDecline', MatchXPath(
            '{jabber:client}message/%sx/%sdecline' % (MUC_USER, MUC_USER)), self.declines.put_nowait))

    async def setup_session(self):
        self.send_presence()


class SlixmppMucTest(SlixTestCase):
    bot_class = Bot
    server_args = {'users': {'alice': 'alice-pw-1', 'bob': 'bob-pw-2', 'carol': 'carol-pw-3'}}

    def test_create_configure_chat_invite_decline(self):
        a, b, c = (self.bot(user, 'slix') for user in ('alice', 'bob', 'carol'))
        self.connect(a, b, c)
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
