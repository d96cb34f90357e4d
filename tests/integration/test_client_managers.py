"""The client library's managers (roster, presence, chat, MUC) against a live hearthd, through
client_probe --managers: the roster edited and kept versioned across a reconnection,
subscriptions both ways with the contact's presence per resource, chat with receipts and chat
states, and a room created, configured through its form, joined, talked in, invited to and
left. test_client_managers_prosody.py runs the same tests against Debian's Prosody."""

import re
import time
import unittest

from clientlib import TIMEOUT, Probe, Proxy
from hearth import DOMAIN, Server, main

USERS = {name: name + '-secret' for name in (
    'alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina', 'heidi', 'ivan')}
MUC = 'conference.' + DOMAIN


def rx(text):
    """A literal for a regular expression."""
    return re.escape(text)


def wait_all(probe, *patterns, timeout=TIMEOUT):
    """Lines matching every pattern, in any order (what two servers order differently, such as
    an IQ's result and the roster push it causes); other lines are passed over."""
    left = [re.compile(p) for p in patterns]
    deadline = time.monotonic() + timeout
    while left:
        while probe.pending and left:
            line = probe.pending.pop(0)
            left = [r for r in left if not r.search(line)]
        if left and not probe._read(deadline):
            raise AssertionError('%s: timed out waiting for %s; last lines: %s'
                                 % (probe.name, [r.pattern for r in left], probe.lines[-10:]))


class ManagerTests:
    """The tests; a subclass starts the server (cls.server with port and cert)."""

    def setUp(self):
        self.probes = []

    def tearDown(self):
        # A probe that crashed or leaked (under ASan) exits non-zero.
        codes = [(p.name, p.close()) for p in self.probes]
        self.assertEqual([c for c in codes if c[1] != 0], [])

    def probe(self, user, *extra, port=None):
        p = Probe('--jid', '%s@%s/probe' % (user, DOMAIN), '--password', USERS[user],
                  '--host', '127.0.0.1', '--port', port or self.server.port,
                  '--ca', self.server.cert, '--managers', '--quiet', *extra, name=user)
        self.probes.append(p)
        return p

    def login(self, user, *extra, **kw):
        p = self.probe(user, *extra, **kw)
        p.cmd('connect')
        p.wait_for(r'^online %s@%s/probe$' % (user, DOMAIN))
        p.wait_for(r'^roster-loaded OK ')
        return p

    def test_roster_subscriptions_and_presence(self):
        a, b = self.login('alice'), self.login('bob')
        bob, alice = 'bob@' + DOMAIN, 'alice@' + DOMAIN
        a.cmd('roster-set %s Bob Friends,Work' % bob)
        # groups in the server's order: Prosody keeps them as a set
        groups = '(Friends,Work|Work,Friends)'
        wait_all(a, r'^roster-added %s sub=none name=Bob groups=%s$' % (rx(bob), groups),
                 r'^iq roster-set OK')
        a.cmd('subscribe ' + bob)
        a.wait_for(r'^roster-changed %s sub=none ask name=Bob' % rx(bob))
        b.wait_for(r'^subscribe-request %s$' % rx(alice))
        b.cmd('approve ' + alice)
        # the contact's presence comes once we may see it
        wait_all(a, r'^subscription %s approved$' % rx(bob),
                 r'^roster-changed %s sub=to name=Bob groups=%s$' % (rx(bob), groups),
                 r'^presence %s/probe show=- status=- prio=0$' % rx(bob))
        b.wait_for(r'^roster-(added|changed) %s sub=from ' % rx(alice))
        b.cmd('presence away 3 at lunch')
        a.wait_for(r'^presence %s/probe show=away status=at lunch prio=3$' % rx(bob))
        a.cmd('best ' + bob)
        a.wait_for(r'^best %s %s/probe show=away prio=3$' % (rx(bob), rx(bob)))
        b.cmd('unavailable gone fishing')
        a.wait_for(r'^presence %s/probe gone$' % rx(bob))
        a.cmd('best ' + bob)
        a.wait_for(r'^best %s none$' % rx(bob))
        # removing the contact cancels the subscriptions both ways
        a.cmd('roster-remove ' + bob)
        wait_all(a, r'^roster-removed %s$' % rx(bob), r'^iq roster-remove OK')
        b.wait_for(r'^roster-(changed|removed) %s' % rx(alice))
        a.cmd('roster')
        a.wait_for(r'^roster-end n=0 ')

    def test_roster_kept_across_a_reconnection(self):
        """A new session after the network dropped (no stream management, so no resumption)
        fetches the roster with the cached version: the server answers that nothing changed
        (XEP-0237), so no item is added again."""
        proxy = Proxy(self.server.port)
        self.addCleanup(proxy.close)
        h = self.login('heidi', '--reconnect', '100', '200', '--no-sm', port=proxy.port)
        ivan = 'ivan@' + DOMAIN
        h.cmd('roster-set %s Ivan' % ivan)
        wait_all(h, r'^roster-added %s sub=none name=Ivan groups=$' % rx(ivan),
                 r'^iq roster-set OK')
        h.cmd('roster')
        ver = h.wait_for(r'^roster-end n=1 ver=(\S+)$').group(1)
        self.assertNotEqual(ver, '-', 'the server offers roster versioning')
        mark = len(h.lines)
        proxy.cut()
        h.wait_for(r'^disconnected EIO ')
        h.wait_for(r'^online heidi@%s/probe$' % DOMAIN)
        h.wait_for(r'^roster-loaded OK n=1 ver=%s$' % rx(ver))
        self.assertEqual([l for l in h.lines[mark:] if l.startswith('roster-added')], [])

    def test_chat_receipts_states_and_errors(self):
        c, d = self.login('carol'), self.login('dave', '--receipts', 'all')
        carol, dave = 'carol@%s/probe' % DOMAIN, 'dave@%s/probe' % DOMAIN
        c.cmd('chat %s hello 你好 <&>' % dave)
        mid = c.wait_for(r'^sent (\S+)$').group(1)
        d.wait_for(r'^message chat %s id=%s body=hello 你好 <&> thread=t1 state=active '
                   r'receipt=1$' % (rx(carol), rx(mid)))
        c.wait_for(r'^receipt %s %s$' % (rx(dave), rx(mid)))
        c.cmd('state %s composing' % dave)
        d.wait_for(r'^chatstate %s composing$' % rx(carol))
        # carol answers receipts only to contacts who may see her presence: dave is none
        d.cmd('chat %s back' % carol)
        c.wait_for(r'^message chat %s id=\S+ body=back .* receipt=1$' % rx(dave))
        c.cmd('chat %s marker' % dave)
        c.wait_for(r'^sent \S+$')
        d.wait_for(r'^message chat %s id=\S+ body=marker ' % rx(carol))
        self.assertEqual([l for l in d.lines if l.startswith('receipt ')], [])
        # a message to nobody comes back as an error
        c.cmd('chat nobody@%s hi' % DOMAIN)
        mid = c.wait_for(r'^sent (\S+)$').group(1)
        c.wait_for(r'^chat-error nobody@%s %s service-unavailable$' % (rx(DOMAIN), rx(mid)))

    def test_room_created_configured_joined_invited_left(self):
        e, f, g = self.login('erin'), self.login('frank'), self.login('gina')
        room = 'plans@' + MUC
        e.cmd('muc-join %s Erin' % room)
        e.wait_for(r'^muc-joined %s OK created$' % rx(room))
        e.cmd('muc-form ' + room)
        e.wait_for(r'^muc-form %s OK fields=\d+$' % rx(room))
        e.wait_for(r'^muc-form-field muc#roomconfig_roomname ')
        e.cmd('muc-config %s muc#roomconfig_roomname=Planning;muc#roomconfig_persistentroom=1;'
              'muc#roomconfig_allowinvites=1' % room)
        e.wait_for(r'^iq muc-config OK')
        # a mediated invitation, accepted
        e.cmd('muc-invite %s frank@%s join us' % (room, DOMAIN))
        # The inviter: its real JID (hearthd), or its occupant JID in a room that does not show
        # real JIDs to everyone (Prosody 0.12).
        inviter = r'(erin@%s(/probe)?|%s/Erin)' % (rx(DOMAIN), rx(room))
        f.wait_for(r'^muc-invitation %s from=%s reason=join us password=-$' % (rx(room), inviter))
        f.cmd('muc-join %s Frank' % room)
        f.wait_for(r'^muc-occupant joined %s Erin role=moderator aff=owner$' % rx(room))
        f.wait_for(r'^muc-joined %s OK$' % rx(room))
        e.wait_for(r'^muc-occupant joined %s Frank role=participant ' % rx(room))
        f.cmd('muc-say %s hello all' % room)
        e.wait_for(r'^muc-message %s Frank hello all$' % rx(room))
        f.wait_for(r'^muc-message %s Frank hello all$' % rx(room))
        e.cmd('muc-subject %s new plans' % room)
        f.wait_for(r'^muc-subject %s Erin new plans$' % rx(room))
        f.cmd('muc-occupants ' + room)
        f.wait_for(r'^muc-occupants-end 2$')
        # another, declined
        e.cmd('muc-invite %s gina@%s' % (room, DOMAIN))
        g.wait_for(r'^muc-invitation %s from=%s ' % (rx(room), inviter))
        g.cmd('muc-decline %s erin@%s busy' % (room, DOMAIN))
        e.wait_for(r'^muc-declined %s from=gina@%s(/probe)? reason=busy$'
                   % (rx(room), rx(DOMAIN)))
        # a nickname in use
        g.cmd('muc-join %s Erin' % room)
        g.wait_for(r'^muc-joined %s ESTANZA conflict$' % rx(room))
        # leaving
        f.cmd('muc-leave %s bye' % room)
        f.wait_for(r'^muc-left %s 0$' % rx(room))
        e.wait_for(r'^muc-occupant left %s Frank ' % rx(room))


class ManagersHearthdTest(ManagerTests, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(users=USERS)
        cls.server.shared = True
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def tearDown(self):
        ManagerTests.tearDown(self)
        self.server.assert_alive()


if __name__ == '__main__':
    main()
