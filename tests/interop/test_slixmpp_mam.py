"""Interop of the message archive (XEP-0313, urn:xmpp:mam:2) with Debian's
python3-slixmpp (1.8.x): a 250-message history is made with raw harness
clients, then slixmpp's xep_0313 plugin pages through it with XEP-0059
forwards and must get all 250, in order, under the ids the recipient saw
(and the newest page going backwards)."""

import sys
from pathlib import Path

from hearth import q
from imlib import NS_SID, IMClient, is_msg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slixlib import SlixBot, SlixTestCase, main  # noqa: E402

N = 250


class Bot(SlixBot):
    plugins = ('xep_0030', 'xep_0059', 'xep_0297', 'xep_0313')

    async def setup_session(self):
        self.send_presence()


class SlixmppMamTest(SlixTestCase):
    bot_class = Bot
    server_args = {'users': {'alice': 'alice-pw', 'bob': 'bob-pw'}}
    timeout = 30

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

    def connected_bot(self, user):
        bot = self.bot(user, 'sli')
        self.connect(bot)
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
        bob = self.connected_bot('bob')
        got = self.collect(bob)
        self.assertEqual(len(got), N)
        self.assertEqual([b for _, b in got], bodies)
        self.assertEqual([i for i, _ in got], sids)
        # Backwards: slixmpp 1.8.3's ResultIterator stops once first index + items == count,
        # which would hold for the newest page if <first> carried an index; hearthd omits the
        # optional index, so the iterator pages through everything, newest first.
        back = self.collect(bob, reverse=True)
        self.assertEqual([b for _, b in back], list(reversed(bodies)))
        alice = self.connected_bot('alice')
        got = self.collect(alice)
        self.assertEqual([b for _, b in got], bodies)
        # the form fields, as slixmpp asks for them
        fields = self.run_until(alice['xep_0313'].get_fields())
        self.assertTrue({'FORM_TYPE', 'with', 'start', 'end'} <= set(fields.get_fields()))


if __name__ == '__main__':
    main()
