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

TIMEOUT = 10
USERS = {'alice': 'alice-pass-1', 'bob': 'bob-pass-2'}
NS_CARBONS = 'urn:xmpp:carbons:2'

if os.environ.get('HEARTH_SLIXMPP_DEBUG'):
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)


class Bot(slixmpp.ClientXMPP if slixmpp else object):
    def __init__(self, jid, password, cafile, carbons):
        super().__init__(jid, password)
        self.ca_certs = Path(cafile)
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0297')
        self.register_plugin('xep_0280')
        self.want_carbons = carbons
        self.started = self.loop.create_future()
        self.inbox = []          # every other <message/>, in arrival order
        self.wrappers = []       # every <message/> carrying <received/> or <sent/>
        self.carbons_received = []  # 'carbon_received' events (the wrapper)
        self.carbons_sent = []      # 'carbon_sent' events (the wrapper)
        self.errors = []
        self.add_event_handler('session_start', self._on_start)
        # slixmpp's own 'message' event fires only for a <message/> with a
        # top-level <body/>, which a carbon wrapper has not: see every one
        self.register_handler(Callback('every message', MatchXPath('{jabber:client}message'),
                                       self._on_message))
        self.add_event_handler('carbon_received', self.carbons_received.append)
        self.add_event_handler('carbon_sent', self.carbons_sent.append)
        for ev in ('failed_all_auth', 'connection_failed', 'stream_error'):
            self.add_event_handler(ev, self._fail(ev))

    async def _on_start(self, _):
        try:
            if self.want_carbons:
                res = await self['xep_0280'].enable(timeout=TIMEOUT)
                assert res['type'] == 'result', 'carbons enable: %s' % res
            self.send_presence(ppriority=1)
        except Exception as e:  # IqError / IqTimeout: reported to the test
            if not self.started.done():
                self.started.set_exception(AssertionError('%s: enabling carbons failed: %r'
                                                          % (self.boundjid.full, e)))
            return
        if not self.started.done():
            self.started.set_result(self.boundjid.full)

    def _on_message(self, m):
        xml = m.xml
        if (xml.find('{%s}received' % NS_CARBONS) is not None
                or xml.find('{%s}sent' % NS_CARBONS) is not None):
            self.wrappers.append(m)
        else:
            self.inbox.append(m)

    def _fail(self, what):
        def handler(arg):
            self.errors.append((what, str(arg)))
            if not self.started.done():
                self.started.set_exception(AssertionError('%s: %s: %s' % (self.boundjid.full, what, arg)))
        return handler

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


@unittest.skipIf(slixmpp is None, 'python3-slixmpp is not installed')
class SlixmppCarbonsTest(unittest.TestCase):
    def setUp(self):
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.bots = []
        self.s = Server(users=USERS)
        self.addCleanup(self.s.close)
        self.s.start()
        self.phone = self.bot('alice', 'phone', carbons=True)
        self.laptop = self.bot('alice', 'laptop', carbons=True)
        self.bob = self.bot('bob', 'desk', carbons=False)
        for b in self.bots:
            b.connect(('127.0.0.1', self.s.port))
        self.run_until(asyncio.gather(*(b.started for b in self.bots)))
        self.assertEqual(self.phone.boundjid.full, 'alice@localhost/phone')
        self.assertEqual(self.laptop.boundjid.full, 'alice@localhost/laptop')

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

    def bot(self, user, resource, carbons):
        b = Bot('%s@localhost/%s' % (user, resource), USERS[user], self.s.cert, carbons)
        self.bots.append(b)
        return b

    def run_until(self, aw, timeout=TIMEOUT):
        return self.loop.run_until_complete(asyncio.wait_for(aw, timeout))

    def until(self, cond, what, timeout=TIMEOUT):
        async def poll():
            while not cond():
                await asyncio.sleep(0.02)
        try:
            self.run_until(poll(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError('timed out after %ds waiting for %s; errors %s; wrappers seen: %s'
                                 % (timeout, what, [b.errors for b in self.bots],
                                    {b.boundjid.full: [str(w) for w in b.wrappers] for b in self.bots}))

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
