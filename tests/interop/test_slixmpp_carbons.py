"""Interop of Message Carbons (XEP-0280, urn:xmpp:carbons:2) with Debian's
python3-slixmpp (1.8.x) and its xep_0280 plugin: one account logged in twice
(alice/phone and alice/laptop), both resources enable carbons with
self['xep_0280'].enable(), and a third party (bob, also slixmpp) exchanges
chat messages with one of them. The other resource must see a
'carbon_received' / 'carbon_sent' event (which slixmpp only raises when the
wrapper comes from the account's own bare JID) with the original message
forwarded inside. A message marked <private xmlns='urn:xmpp:carbons:2'/> must
not be copied; that is checked with a marker message sent after it on the same
stream, whose copy does arrive, so the private one would have been seen
first."""

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slixlib import SlixBot, SlixTestCase, main, slixmpp  # noqa: E402

if slixmpp:
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath

TIMEOUT = 10
USERS = {'alice': 'alice-pass-1', 'bob': 'bob-pass-2'}
NS_CARBONS = 'urn:xmpp:carbons:2'


class Bot(SlixBot):
    plugins = ('xep_0030', 'xep_0297', 'xep_0280')

    def __init__(self, jid, password, cafile, carbons):
        super().__init__(jid, password, cafile)
        self.want_carbons = carbons
        self.inbox = []          # every other <message/>, in arrival order
        self.wrappers = []       # every <message/> carrying <received/> or <sent/>
        self.carbons_received = []  # 'carbon_received' events (the wrapper)
        self.carbons_sent = []      # 'carbon_sent' events (the wrapper)
        # slixmpp's own 'message' event fires only for a <message/> with a
        # top-level <body/>, which a carbon wrapper has not: see every one
        self.register_handler(Callback('every message', MatchXPath('{jabber:client}message'),
                                       self._on_message))
        self.add_event_handler('carbon_received', self.carbons_received.append)
        self.add_event_handler('carbon_sent', self.carbons_sent.append)

    async def setup_session(self):
        if self.want_carbons:
            res = await self['xep_0280'].enable(timeout=TIMEOUT)
            assert res['type'] == 'result', 'carbons enable: %s' % res
        self.send_presence(ppriority=1)

    def _on_message(self, m):
        xml = m.xml
        if (xml.find('{%s}received' % NS_CARBONS) is not None
                or xml.find('{%s}sent' % NS_CARBONS) is not None):
            self.wrappers.append(m)
        else:
            self.inbox.append(m)

    def chat(self, to, body, id_, private=False):
        m = self.make_message(mto=to, mbody=body, mtype='chat')
        m['id'] = id_
        if private:
            m.enable('carbon_private')
        m.send()


def fwd_of(wrapper, kind):
    """The forwarded message inside a carbon wrapper (kind 'received' or 'sent')."""
    return wrapper['carbon_' + kind]


def ids(wrappers, kind):
    return [fwd_of(w, kind)['id'] for w in wrappers]


class SlixmppCarbonsTest(SlixTestCase):
    bot_class = Bot
    server_args = {'users': USERS}
    timeout = TIMEOUT
    poll_interval = 0.02

    def setUp(self):
        super().setUp()
        self.phone = self.bot('alice', 'phone', carbons=True)
        self.laptop = self.bot('alice', 'laptop', carbons=True)
        self.bob = self.bot('bob', 'desk', carbons=False)
        self.connect(*self.bots)
        self.run_until(asyncio.gather(*(b.started for b in self.bots)))
        self.assertEqual(self.phone.boundjid.full, 'alice@localhost/phone')
        self.assertEqual(self.laptop.boundjid.full, 'alice@localhost/laptop')

    def until_detail(self):
        return '; errors %s; wrappers seen: %s' % (
            [b.errors for b in self.bots], {b.boundjid.full: [str(w) for w in b.wrappers] for b in self.bots})

    def assert_wrapper(self, w, to):
        self.assertEqual(str(w['from']), 'alice@localhost', 'outer from of the carbon: %s' % w)
        self.assertEqual(str(w['to']), to, 'outer to of the carbon: %s' % w)

    def test_received_carbon(self):
        bob, phone, laptop = self.bob, self.phone, self.laptop
        body = 'to the phone — 你好 "q" <&>'
        bob.chat('alice@localhost/phone', body, 'rcv-1')
        self.until(lambda: laptop.carbons_received, "laptop's carbon_received")
        self.until(lambda: any(m['id'] == 'rcv-1' for m in phone.inbox), 'the message at the phone')
        w = laptop.carbons_received[0]
        self.assert_wrapper(w, 'alice@localhost/laptop')
        self.assertEqual(w['type'], 'chat')
        f = fwd_of(w, 'received')
        self.assertEqual((f['id'], str(f['from']), str(f['to']), f['body'], f['type']),
                         ('rcv-1', 'bob@localhost/desk', 'alice@localhost/phone', body, 'chat'))
        m = [m for m in phone.inbox if m['id'] == 'rcv-1'][0]
        self.assertEqual((str(m['from']), m['body']), ('bob@localhost/desk', body))
        # the message itself, not a copy, at the laptop; no copy at the phone
        self.assertEqual([m['id'] for m in laptop.inbox], [])
        self.assertEqual(ids(laptop.carbons_received, 'received'), ['rcv-1'])
        self.assertEqual(phone.carbons_received + phone.carbons_sent + laptop.carbons_sent, [])
        self.assertEqual(bob.wrappers, [])

    def test_sent_carbon(self):
        bob, phone, laptop = self.bob, self.phone, self.laptop
        body = 'from the laptop <b>&amp;</b>'
        laptop.chat('bob@localhost', body, 'snt-1')
        self.until(lambda: phone.carbons_sent, "phone's carbon_sent")
        self.until(lambda: bob.inbox, 'the message at bob')
        w = phone.carbons_sent[0]
        self.assert_wrapper(w, 'alice@localhost/phone')
        f = fwd_of(w, 'sent')
        # from: the server stamps the sender's full JID on what it sends (RFC 6120 8.1.2.1)
        self.assertEqual((f['id'], str(f['from']), str(f['to']), f['body'], f['type']),
                         ('snt-1', 'alice@localhost/laptop', 'bob@localhost', body, 'chat'))
        m = bob.inbox[0]
        self.assertEqual((m['id'], str(m['from']), m['body'], m['type']),
                         ('snt-1', 'alice@localhost/laptop', body, 'chat'))
        self.assertEqual(ids(phone.carbons_sent, 'sent'), ['snt-1'])
        # no copy back to the sender, nothing else anywhere
        self.assertEqual(laptop.carbons_sent + laptop.carbons_received + phone.carbons_received, [])
        self.assertEqual(phone.inbox + laptop.inbox, [])

    def test_private_not_copied(self):
        bob, phone, laptop = self.bob, self.phone, self.laptop
        # received side: bob -> alice/phone, private then a marker
        bob.chat('alice@localhost/phone', 'secret in', 'priv-in', private=True)
        bob.chat('alice@localhost/phone', 'marker in', 'mark-in')
        self.until(lambda: 'mark-in' in ids(laptop.carbons_received, 'received'),
                   "the marker's carbon at the laptop")
        self.until(lambda: [m['id'] for m in phone.inbox] == ['priv-in', 'mark-in'],
                   'both messages at the phone, in order')
        self.assertEqual(ids(laptop.carbons_received, 'received'), ['mark-in'])
        self.assertEqual(len(laptop.wrappers), 1, [str(w) for w in laptop.wrappers])
        # the private message keeps its hint on the way to its addressee
        self.assertIsNotNone(phone.inbox[0].xml.find('{%s}private' % NS_CARBONS))
        # sent side: alice/laptop -> bob, private then a marker
        laptop.chat('bob@localhost', 'secret out', 'priv-out', private=True)
        laptop.chat('bob@localhost', 'marker out', 'mark-out')
        self.until(lambda: 'mark-out' in ids(phone.carbons_sent, 'sent'),
                   "the marker's carbon at the phone")
        self.until(lambda: [m['id'] for m in bob.inbox] == ['priv-out', 'mark-out'],
                   'both messages at bob, in order')
        self.assertEqual(ids(phone.carbons_sent, 'sent'), ['mark-out'])
        self.assertEqual(len(phone.wrappers), 1, [str(w) for w in phone.wrappers])
        self.assertEqual(phone.carbons_received + laptop.carbons_sent, [])

    def test_disable_stops_copies(self):
        bob, phone, laptop = self.bob, self.phone, self.laptop
        res = self.run_until(phone['xep_0280'].disable(timeout=TIMEOUT))
        self.assertEqual(res['type'], 'result')
        # bob -> laptop would be copied to the phone; the marker to the phone
        # itself comes after it from the same sender
        bob.chat('alice@localhost/laptop', 'for the laptop', 'dis-1')
        bob.chat('alice@localhost/phone', 'marker', 'dis-mark')
        self.until(lambda: [m['id'] for m in phone.inbox] == ['dis-mark'], 'the marker at the phone')
        self.until(lambda: [m['id'] for m in laptop.inbox] == ['dis-1'], 'the message at the laptop')
        self.assertEqual(phone.wrappers, [], [str(w) for w in phone.wrappers])
        # the laptop still has carbons on: it gets the copy of the marker
        self.until(lambda: ids(laptop.carbons_received, 'received') == ['dis-mark'],
                   "the marker's carbon at the laptop")


if __name__ == '__main__':
    main()
