"""Multi-user chat rooms as a whole against a live hearthd: the join sequence
leaving in one write (XEP-0045 §7.2), rooms nobody is in leaving memory and
coming back whole, the per-user cap on rooms, what a removed account leaves
behind in rooms, and stanza ids a room never trusts from an occupant."""

import select
import socket
import struct
import time

from hearth import DOMAIN, NS_CLIENT, NS_STANZAS, Client, main, q, to_str, wait_for, xml_escape
from imlib import NS_DELAY, NS_SID, err, is_iq, is_msg, is_pres
from test_muc import (MUC, NS_DISCO_INFO, NS_MUC_ADMIN, NS_MUC_OWNER, MucTestCase, codes, fnv1a, item,
                      room_jid)
from test_register import reg_query

# struct tcp_info (linux/tcp.h): tcpi_data_segs_in, the segments that carried data, sits at
# byte 152 (kernels since 4.6).
TCPI_DATA_SEGS_IN = 152


def data_segs_in(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < TCPI_DATA_SEGS_IN + 4:
        return None
    return struct.unpack_from('I', info, TCPI_DATA_SEGS_IN)[0]


def worker_of(jid, workers=2):
    return fnv1a(jid) % workers


class TestJoinInOneWrite(MucTestCase):
    """§7.2: the other occupants' presence, the self-presence (110), the history and the
    subject reach the newcomer in one write: a client that finishes the join on the
    self-presence must not see the join-time subject as a change made later."""

    settings = {'c2s.tls': 'optional'}

    def one_read_join(self, room_name, history):
        a = self.connect(self.srv, 'alice', resource='r1', roster=False, tls=False)
        room = self.create(a, room_name, 'Alice')
        a.send("<message to='%s' type='groupchat'><subject>Set before</subject></message>" % room)
        self.subject_of(a, room)
        for i in range(history):
            self.say(a, room, 'old %d' % i)
            self.got_groupchat(a, room, 'Alice', 'old %d' % i)
        b = self.connect(self.srv, 'bob', resource='r1', roster=False, tls=False)
        b.sync()
        b.take()  # its own presence
        self.assertEqual(b.events, [])
        before = data_segs_in(b.sock)
        if before is None:
            self.skipTest('TCP_INFO without tcpi_data_segs_in')
        self.join_send(b, room, 'Bob')
        r, _, _ = select.select([b.sock], [], [], 5)
        self.assertTrue(r, 'nothing after the join')
        b.sock.settimeout(5)
        data = b.sock.recv(1 << 20)
        segs = data_segs_in(b.sock) - before
        text = data.decode('utf-8', 'replace')
        # everything of the sequence was in that one read ...
        self.assertIn("code='110'", text)
        for i in range(history):
            self.assertIn('old %d' % i, text)
        self.assertIn('<subject>Set before</subject>', text, 'the subject came in a later read')
        self.assertTrue(text.endswith('</message>'), text[-200:])
        # ... because it left the server in one write
        self.assertEqual(segs, 1, 'the join sequence came in %d TCP segments' % segs)
        b._feed(data)
        got = []
        while b.events:
            kind, el = b.events.pop(0)
            if kind == 'stanza':
                got.append(el)
        self.assertTrue(is_pres(got[0], from_=room + '/Alice'), to_str(got[0]))
        self.assertIn(110, codes(got[1]))
        self.assertEqual([m.findtext(q(NS_CLIENT, 'body')) for m in got[2:-1]],
                         ['old %d' % i for i in range(history)])
        self.assertEqual(got[-1].findtext(q(NS_CLIENT, 'subject')), 'Set before')

    def test_join_sequence_in_one_read_room_on_the_other_worker(self):
        bob = worker_of('bob@' + DOMAIN)
        name = next('far%d' % i for i in range(100) if worker_of(room_jid('far%d' % i)) != bob)
        self.one_read_join(name, 4)

    def test_join_sequence_in_one_read_room_on_the_same_worker(self):
        bob = worker_of('bob@' + DOMAIN)
        name = next('near%d' % i for i in range(100) if worker_of(room_jid('near%d' % i)) == bob)
        self.one_read_join(name, 4)


def rss_kib(server):
    with open('/proc/%d/status' % server.proc.pid) as f:
        for line in f:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    raise AssertionError('no VmRSS for hearthd')


class TestRoomsLeaveMemory(MucTestCase):
    """Issue 15: rooms nobody is in are unloaded (everything of them is in storage) and read
    back whole before the stanza that needs them; one account may own or create only
    muc.max_rooms_per_user rooms."""

    settings = {'c2s.tls': 'optional'}
    BODY = 100000  # bytes per history message
    PER_ROOM = 8   # history messages per room: about 800 KB pinned per room before the fix

    def fill_room(self, a, name):
        room = self.create(a, name, 'Alice', {'muc#roomconfig_persistentroom': True})
        body = 'x' * self.BODY
        for i in range(self.PER_ROOM):
            self.say(a, room, body)
            self.got_groupchat(a, room, 'Alice', body)
        a.send("<presence to='%s/Alice' type='unavailable'/>" % room)
        self.pres_from(a, room, 'Alice', type_='unavailable', code=110)
        return room

    def test_empty_persistent_rooms_do_not_stay_in_memory(self):
        a = self.connect(self.srv, 'alice', roster=False, tls=False)
        for i in range(3):  # warm-up: storage caches, allocator arenas, buffers
            self.fill_room(a, 'warm%d' % i)
        a.sync()
        before = rss_kib(self.srv)
        n = 30
        for i in range(n):
            self.fill_room(a, 'heavy%d' % i)
        a.logout()
        pinned = n * self.PER_ROOM * self.BODY // 1024
        margin = pinned // 3  # a third of what the rooms' history would pin
        # a condition with a deadline: unloading and saving happen as the rooms empty
        try:
            wait_for(lambda: rss_kib(self.srv) - before < margin, 10, 'RSS back near its level')
        except AssertionError:
            self.fail('hearthd RSS grew by %d KiB (margin %d KiB, history written %d KiB) after '
                      'one user left %d persistent rooms' % (rss_kib(self.srv) - before, margin, pinned, n))
        # the rooms are all still there, history included
        b = self.connect(self.srv, 'bob', roster=False, tls=False)
        self.join(b, room_jid('heavy%d' % (n - 1)), 'Bob')
        got = b.wait_n(lambda s: is_msg(s, type_='groupchat') and s.findtext(q(NS_CLIENT, 'body')) == 'x' * self.BODY,
                       self.PER_ROOM, what='history of an unloaded room')
        self.assertEqual(len(got), self.PER_ROOM)

    def test_unloaded_room_comes_back_whole_in_one_write(self):
        a = self.connect(self.srv, 'alice', roster=False, tls=False)
        room = self.create(a, 'whole', 'Alice', {'muc#roomconfig_persistentroom': True,
                                                 'muc#roomconfig_roomname': 'Whole room',
                                                 'muc#roomconfig_membersonly': True})
        self.assertEqual(self.admin(a, room, "<item affiliation='member' jid='bob@%s' nick='Bobby'/>" % DOMAIN)
                         .get('type'), 'result')
        self.assertEqual(self.admin(a, room, "<item affiliation='admin' jid='carol@%s'/>" % DOMAIN)
                         .get('type'), 'result')
        self.assertEqual(self.admin(a, room, "<item affiliation='outcast' jid='eve@%s'/>" % DOMAIN)
                         .get('type'), 'result')
        a.send("<message to='%s' type='groupchat'><subject>Whole subject</subject></message>" % room)
        self.subject_of(a, room)
        for i in range(3):
            self.say(a, room, 'kept %d' % i)
            self.got_groupchat(a, room, 'Alice', 'kept %d' % i)
        a.send("<presence to='%s/Alice' type='unavailable'/>" % room)
        self.pres_from(a, room, 'Alice', type_='unavailable', code=110)
        self.srv.wait_log(r'muc: %s unloaded' % room)
        # back: configuration, affiliations, subject and history, the join sequence in one write
        b = self.connect(self.srv, 'bob', roster=False, tls=False)
        b.take()
        before = data_segs_in(b.sock)
        self.join_send(b, room, 'Bobby')
        r, _, _ = select.select([b.sock], [], [], 5)
        self.assertTrue(r, 'nothing after the join')
        data = b.sock.recv(1 << 20)
        segs = data_segs_in(b.sock) - before
        b._feed(data)
        got = [el for kind, el in b.events if kind == 'stanza']
        b.events = []
        self.assertEqual(segs, 1, 'the join sequence came in %d TCP segments' % segs)
        me = [s for s in got if is_pres(s, from_=room + '/Bobby')]
        self.assertEqual(len(me), 1, [to_str(s) for s in got])
        self.assertIn(110, codes(me[0]))
        self.assertEqual(item(me[0]).get('affiliation'), 'member')
        self.assertEqual([m.findtext(q(NS_CLIENT, 'body')) for m in got if m.find(q(NS_CLIENT, 'body')) is not None],
                         ['kept 0', 'kept 1', 'kept 2'])
        self.assertEqual(got[-1].findtext(q(NS_CLIENT, 'subject')), 'Whole subject')
        vals = self.config_values(a, room)
        self.assertEqual(vals['muc#roomconfig_roomname'], ['Whole room'])
        self.assertEqual(vals['muc#roomconfig_membersonly'], ['1'])
        r = self.admin(a, room, '')  # nothing to change; list the affiliations instead
        lists = {}
        for aff in ('owner', 'admin', 'member', 'outcast'):
            res = a.iq_ok('get', "<query xmlns='%s'><item affiliation='%s'/></query>" % (NS_MUC_ADMIN, aff), to=room)
            lists[aff] = sorted(i.get('jid') for i in res.iter(q(NS_MUC_ADMIN, 'item')))
        self.assertEqual(lists, {'owner': ['alice@' + DOMAIN], 'admin': ['carol@' + DOMAIN],
                                 'member': ['bob@' + DOMAIN], 'outcast': ['eve@' + DOMAIN]})
        d = self.client('dave')
        self.assertEqual(self.join_error(d, room, 'Dave'), ('auth', 'registration-required'))

    def test_room_with_full_history_is_still_saved_when_unloaded(self):
        # a history near its 1 MiB bound, of text that grows when escaped, must not make the
        # room's document too big to store (its configuration would be lost with it)
        a = self.connect(self.srv, 'alice', roster=False, tls=False)
        room = self.create(a, 'full', 'Alice', {'muc#roomconfig_persistentroom': True,
                                                'muc#roomconfig_roomname': 'Full room'})
        body = 'a&' * 20000
        for i in range(12):
            self.say(a, room, '%d %s' % (i, body))
            self.got_groupchat(a, room, 'Alice', '%d %s' % (i, body))
        a.send("<presence to='%s/Alice' type='unavailable'/>" % room)
        self.pres_from(a, room, 'Alice', type_='unavailable', code=110)
        self.srv.wait_log(r'muc: %s unloaded' % room)
        self.assertNotIn('not saved', self.srv.log_text())
        self.assertEqual(self.config_values(a, room)['muc#roomconfig_roomname'], ['Full room'])
        self.join(a, room, 'Alice')
        got = []
        while True:
            m = a.wait(lambda s: is_msg(s, type_='groupchat') and s.get('from', '').startswith(room))
            if m.find(q(NS_CLIENT, 'subject')) is not None:
                break
            got.append(int(m.findtext(q(NS_CLIENT, 'body')).split()[0]))
        self.assertTrue(got and got[-1] == 11 and got == list(range(12 - len(got), 12)), got)


class TestRoomsPerUser(MucTestCase):

    settings = {'muc.max_rooms_per_user': '3'}

    def test_cap_on_rooms_one_account_creates(self):
        a = self.client('alice')
        kept = self.create(a, 'cap1', 'Alice', {'muc#roomconfig_persistentroom': True})
        a.send("<presence to='%s/Alice' type='unavailable'/>" % kept)
        self.pres_from(a, kept, 'Alice', type_='unavailable', code=110)
        self.create(a, 'cap2', 'Alice')
        temp = self.create(a, 'cap3', 'Alice')
        self.assertEqual(self.join_error(a, room_jid('cap4'), 'Alice'), ('cancel', 'not-allowed'))
        # nothing was created: another user may take that name
        b = self.client('bob')
        self.create(b, 'cap4', 'Bob')
        # joining rooms that exist is not creating
        self.enter(a, room_jid('cap4'), 'Alice')
        # a temporary room gone with its last occupant no longer counts
        a.send("<presence to='%s/Alice' type='unavailable'/>" % temp)
        self.pres_from(a, temp, 'Alice', type_='unavailable', code=110)
        s = self.join(a, room_jid('cap5'), 'Alice')
        self.assertIn(201, codes(s))
        self.assertEqual(self.join_error(a, room_jid('cap6'), 'Alice'), ('cancel', 'not-allowed'))
        # after a restart, the stored room is still counted (storage counts its owners)
        self.srv.restart()
        a = self.client('alice')
        self.create(a, 'cap7', 'Alice')
        self.create(a, 'cap8', 'Alice')
        self.assertEqual(self.join_error(a, room_jid('cap9'), 'Alice'), ('cancel', 'not-allowed'))


class TestRemovedAccountInRooms(MucTestCase):
    """Issue 15: an account removed loses every grant in rooms; whoever registers the name
    later is a stranger there. A room left without an owner is owned by its admins, or
    destroyed when it has none (docs/protocols.md)."""

    settings = {'c2s.tls': 'optional', 'registration.open': 'true', 'registration.rate_limit': '0'}

    def owned_room(self, name, admin=True):
        a = self.client('alice')
        room = self.create(a, name, 'Alice', {'muc#roomconfig_persistentroom': True,
                                              'muc#roomconfig_membersonly': True})
        self.assertEqual(self.admin(a, room, "<item affiliation='member' jid='bob@%s'/>" % DOMAIN)
                         .get('type'), 'result')
        if admin:
            self.assertEqual(self.admin(a, room, "<item affiliation='admin' jid='carol@%s'/>" % DOMAIN)
                             .get('type'), 'result')
        return room, a

    def register_again(self, user, pw):
        c = Client(self.srv)
        self.addCleanup(c.close)
        c.connect()
        c.open_stream()
        r = c.iq('set', reg_query(user, pw))
        self.assertEqual(r.get('type'), 'result', to_str(r))
        c.close()

    def check_newcomer(self, room, pw):
        n = self.connect(self.srv, 'alice', roster=False, pw=pw)
        r = n.iq('get', "<query xmlns='%s'/>" % NS_MUC_OWNER, to=room)
        self.assertEqual(err(r), ('auth', 'forbidden'), to_str(r))
        self.assertEqual(self.join_error(n, room, 'Newcomer'), ('auth', 'registration-required'))
        return n

    def owners(self, c, room):
        res = c.iq_ok('get', "<query xmlns='%s'><item affiliation='owner'/></query>" % NS_MUC_ADMIN, to=room)
        return sorted(i.get('jid') for i in res.iter(q(NS_MUC_ADMIN, 'item')))

    def test_removed_owner_through_registration_room_in_memory(self):
        room, a = self.owned_room('gone')
        c = self.client('carol')
        self.enter(c, room, 'Carol')  # the room stays loaded
        r = a.iq('set', "<query xmlns='jabber:iq:register'><remove/></query>")
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.srv.wait_log('account alice@%s removed' % DOMAIN)
        # carol, the room's admin, becomes its owner, and sees it
        s = self.pres_from(c, room, 'Carol')
        self.assertEqual(item(s).get('affiliation'), 'owner')
        self.register_again('alice', 'a-new-password')
        self.check_newcomer(room, 'a-new-password')
        self.assertEqual(self.owners(c, room), ['carol@' + DOMAIN])

    def test_removed_owner_through_registration_room_unloaded(self):
        room, a = self.owned_room('gone2')
        a.send("<presence to='%s/Alice' type='unavailable'/>" % room)
        self.pres_from(a, room, 'Alice', type_='unavailable', code=110)
        r = a.iq('set', "<query xmlns='jabber:iq:register'><remove/></query>")
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.srv.wait_log('account alice@%s removed' % DOMAIN)
        self.register_again('alice', 'a-new-password')
        self.check_newcomer(room, 'a-new-password')
        c = self.client('carol')
        self.assertEqual(self.owners(c, room), ['carol@' + DOMAIN])
        # bob is still a member
        b = self.client('bob')
        s = self.enter(b, room, 'Bob')
        self.assertEqual(item(s).get('affiliation'), 'member')

    def test_removed_last_owner_without_admins_destroys_the_room(self):
        room, a = self.owned_room('orphan', admin=False)
        b = self.client('bob')
        self.enter(b, room, 'Bob')
        r = a.iq('set', "<query xmlns='jabber:iq:register'><remove/></query>")
        self.assertEqual(r.get('type'), 'result', to_str(r))
        s = self.pres_from(b, room, 'Bob', type_='unavailable')
        self.assertIsNotNone(s.find('.//{%s#user}destroy' % 'http://jabber.org/protocol/muc'), to_str(s))
        self.register_again('alice', 'a-new-password')
        n = self.connect(self.srv, 'alice', roster=False, pw='a-new-password')
        r = n.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)
        self.assertEqual(err(r), ('cancel', 'item-not-found'))

    def test_removed_owner_through_hearthctl_deluser(self):
        room, a = self.owned_room('offline')
        a.sync()
        self.srv.stop()
        r = self.srv.ctl('deluser', 'alice@' + DOMAIN)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.srv.adduser('alice@' + DOMAIN, 'a-new-password')
        self.srv.start()
        self.check_newcomer(room, 'a-new-password')
        c = self.client('carol')
        self.assertEqual(self.owners(c, room), ['carol@' + DOMAIN])


class TestForgedClaims(MucTestCase):
    """Issue 15: an occupant's stanza ids and delays that name the room (or the service) in
    any spelling are the room's to write, never the occupant's: compared as prepared JIDs."""

    def test_forged_stanza_ids_in_groupchat(self):
        room, a, b, c = self.three('sid')
        spellings = [room.upper(), room + '.', room + '/Alice', room.upper() + './X', room + '/',
                     room.replace('sid@', 'SID@')]
        for i, by in enumerate(spellings):
            body = 'forged %d' % i
            a.message(room, body, type_='groupchat',
                      children="<stanza-id xmlns='%s' by='%s' id='FORGED'/>" % (NS_SID, xml_escape(by)))
            for x in (b, c):
                m = self.got_groupchat(x, room, 'Alice', body)
                ids = m.findall(q(NS_SID, 'stanza-id'))
                self.assertEqual(len(ids), 1, to_str(m))
                self.assertEqual(ids[0].get('by'), room, to_str(m))
                self.assertNotEqual(ids[0].get('id'), 'FORGED', to_str(m))
        # a stanza id by someone else is not the room's business
        a.message(room, 'other', type_='groupchat',
                  children="<stanza-id xmlns='%s' by='alice@%s' id='MINE'/>" % (NS_SID, DOMAIN))
        m = self.got_groupchat(b, room, 'Alice', 'other')
        self.assertEqual(sorted((e.get('by'), e.get('id') == 'MINE') for e in m.findall(q(NS_SID, 'stanza-id'))),
                         sorted([(room, False), ('alice@' + DOMAIN, True)]))

    def test_forged_claims_in_private_messages(self):
        room, a, b, c = self.three('pm')
        forged = ("<stanza-id xmlns='%s' by='%s' id='FORGED'/>"
                  "<delay xmlns='%s' from='%s' stamp='2001-01-01T00:00:00Z'/>"
                  "<delay xmlns='%s' from='%s.' stamp='2001-01-01T00:00:00Z'/>"
                  % (NS_SID, room.upper(), NS_DELAY, MUC.upper(), NS_DELAY, room))
        a.message(room + '/Bob', 'psst', type_='chat', children=forged)
        m = b.wait(lambda s: is_msg(s, from_=room + '/Alice') and s.findtext(q(NS_CLIENT, 'body')) == 'psst',
                   what='private message')
        self.assertEqual(m.findall(q(NS_DELAY, 'delay')), [], to_str(m))
        self.assertEqual([e for e in m.findall(q(NS_SID, 'stanza-id')) if e.get('id') == 'FORGED'], [], to_str(m))


if __name__ == '__main__':
    main()
