"""Interop of a room's archive (XEP-0313 on the room's JID) and moderation (XEP-0425) with
Debian's python3-slixmpp (1.8.x): a raw harness client makes a persistent room and 60 messages
in it; slixmpp's xep_0313 plugin, joined as another user, pages through the room's archive
forwards and backwards under the stanza-ids the room gave; then the owner, in slixmpp, retracts
a message with xep_0425 (which speaks the fastened 0.2 form) and the other slixmpp client gets
the moderation event, and the archive the tombstone."""

import asyncio
import sys
from pathlib import Path

from hearth import NS_CLIENT, q
from imlib import NS_SID, IMClient, is_msg, is_pres

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slixlib import SlixBot, SlixTestCase, main, slixmpp  # noqa: E402

if slixmpp:
    from slixmpp import JID

N = 60
ROOM = 'archived@conference.localhost'
NS_MUC = 'http://jabber.org/protocol/muc'
NS_RETRACT = 'urn:xmpp:message-retract:1'


class Bot(SlixBot):
    plugins = ('xep_0030', 'xep_0045', 'xep_0059', 'xep_0297', 'xep_0313', 'xep_0421', 'xep_0424',
               'xep_0425')

    def __init__(self, jid, password, cafile):
        super().__init__(jid, password, cafile)
        self.moderated = asyncio.Queue()
        self.add_event_handler('moderated_message', self.moderated.put_nowait)

    async def setup_session(self):
        self.send_presence()


class SlixmppMucMamTest(SlixTestCase):
    bot_class = Bot
    server_args = {'users': {'alice': 'alice-pw', 'bob': 'bob-pw'}}
    timeout = 30

    def make_room(self):
        """alice (raw) creates a persistent room and says N things; returns the bodies and the
        stanza-ids the room gave them."""
        a = IMClient(self.s)
        self.raw.append(a)
        a.login('alice', 'alice-pw', resource='raw')
        a.send("<presence to='%s/Alice'><x xmlns='%s'/></presence>" % (ROOM, NS_MUC))
        a.wait(lambda s: is_pres(s, from_=ROOM + '/Alice'), what='self-presence')
        r = a.iq('set', "<query xmlns='%s#owner'><x xmlns='jabber:x:data' type='submit'>"
                 "<field var='muc#roomconfig_persistentroom'><value>1</value></field></x></query>"
                 % NS_MUC, to=ROOM)
        self.assertEqual(r.get('type'), 'result')
        bodies = ['archived %02d' % i for i in range(N)]
        sids = []
        for body in bodies:
            a.message(ROOM, body, type_='groupchat')
            m = a.wait(lambda s, body=body: is_msg(s, from_=ROOM + '/Alice', type_='groupchat')
                       and s.findtext(q(NS_CLIENT, 'body')) == body, what=body)
            sids.append([x.get('id') for x in m.findall(q(NS_SID, 'stanza-id')) if x.get('by') == ROOM][0])
        return bodies, sids

    def collect(self, bot, reverse=False):
        async def go():
            out = []
            async for m in bot['xep_0313'].iterate(jid=JID(ROOM), rsm={'max': 20}, reverse=reverse):
                res = m['mam_result']
                out.append((res['id'], res['forwarded']['stanza']['body']))
            return out
        return self.run_until(go(), 60)

    def test_room_archive_and_moderation(self):
        bodies, sids = self.make_room()
        a, b = self.bot('alice', 'slix'), self.bot('bob', 'slix')
        self.connect(a, b)
        self.run_until(asyncio.gather(a.started, b.started))
        self.run_until(b['xep_0045'].join_muc_wait(JID(ROOM), 'bob', maxstanzas=0, timeout=10))
        got = self.collect(b)
        self.assertEqual([x for _, x in got], bodies)
        self.assertEqual([i for i, _ in got], sids)
        back = self.collect(b, reverse=True)
        self.assertEqual([x for _, x in back], list(reversed(bodies)))
        fields = self.run_until(b['xep_0313'].get_fields(jid=JID(ROOM)))
        self.assertTrue({'FORM_TYPE', 'with', 'start', 'end'} <= set(fields.get_fields()))
        # the owner moderates, with slixmpp's XEP-0425 (0.2: fastened)
        self.run_until(a['xep_0045'].join_muc_wait(JID(ROOM), 'alice2', maxstanzas=0, timeout=10))
        self.run_until(a['xep_0425'].moderate(JID(ROOM), sids[3], 'off topic'))
        m = self.run_until(b.moderated.get())
        self.assertEqual(m['apply_to']['id'], sids[3])
        self.assertEqual(m['apply_to']['moderated']['by'], JID(ROOM + '/alice2'))
        got = self.collect(b)
        tomb = [m for m in got if m[0] == sids[3]]
        self.assertEqual(tomb, [(sids[3], '')])  # no body left


if __name__ == '__main__':
    main()
