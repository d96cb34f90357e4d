"""Multi-user chat inside the output bound (issue 15): nothing a room or the MUC
service generates for one client passes the 4 MiB a connection may queue. The
service's room list is paged (XEP-0059 on disco#items, as XEP-0045 §6.3
allows), a room's affiliations are bounded in bytes, and an occupant's
presence a room keeps and repeats is bounded, as is the join sequence."""

from hearth import DOMAIN, NS_CLIENT, main, q, to_str, xml_escape
from imlib import NS_CAPS, caps_xml, err, is_iq, is_pres
from test_muc import (MUC, NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC_ADMIN, NS_MUC_OWNER, NS_XDATA,
                      MucTestCase, codes, field_xml, form_fields, room_jid, submit_form)

NS_RSM = 'http://jabber.org/protocol/rsm'

# What the server promises (docs/operations.md, "Multi-user chat limits").
ITEMS_PAGE_MAX = 1000            # rooms in one disco#items page
ITEMS_PAGE_BYTES = 1024 * 1024   # and bytes of <item/>s
AFF_BYTES = 1024 * 1024          # a room's affiliations: JIDs, reserved nicks, reasons
PRESENCE_KEEP = 4096             # an occupant's presence payload a room keeps and repeats
INVITES_MAX = 20                 # invitations and declines in one message to a room


def rsm(max_=None, after=None, before=None, index=None):
    inner = ''
    if max_ is not None:
        inner += '<max>%s</max>' % max_
    if after is not None:
        inner += '<after>%s</after>' % xml_escape(after)
    if before is not None:
        inner += '<before>%s</before>' % xml_escape(before) if before else '<before/>'
    if index is not None:
        inner += '<index>%s</index>' % index
    return "<set xmlns='%s'>%s</set>" % (NS_RSM, inner)


class Page:
    """A disco#items result: its items (jid, name) in order and its <set/>, if any."""

    def __init__(self, r):
        self.r = r
        query = r.find(q(NS_DISCO_ITEMS, 'query'))
        self.items = [(i.get('jid'), i.get('name')) for i in query.findall(q(NS_DISCO_ITEMS, 'item'))]
        self.jids = [j for j, _ in self.items]
        self.set = query.find(q(NS_RSM, 'set'))
        s = self.set
        self.first = s.findtext(q(NS_RSM, 'first')) if s is not None else None
        self.last = s.findtext(q(NS_RSM, 'last')) if s is not None else None
        count = s.findtext(q(NS_RSM, 'count')) if s is not None else None
        self.count = int(count) if count is not None else None
        self.size = len(to_str(r).encode())


class RoomListTestCase(MucTestCase):
    settings = {'c2s.tls': 'optional', 'muc.max_rooms_per_user': '0'}

    def create_many(self, c, names, fields):
        """Creates the rooms named, configured with fields, pipelined: every join, then every
        configuration. Returns their JIDs."""
        rooms = [room_jid(n) for n in names]
        for room in rooms:
            self.join_send(c, room, 'Owner')
        for room in rooms:
            me = room + '/Owner'
            s = c.wait(lambda s: is_pres(s, from_=me, type_='*'), what='self-presence from %s' % room[:40])
            self.assertIn(201, codes(s), to_str(s)[:300])
            self.subject_of(c, room)
        ids = []
        for room in rooms:
            id_ = c.next_id('cfg')
            c.send("<iq type='set' id='%s' to='%s'><query xmlns='%s'>%s</query></iq>"
                   % (id_, room, NS_MUC_OWNER, submit_form(fields)))
            ids.append(id_)
        for id_ in ids:
            r = c.wait(lambda s: is_iq(s, id_=id_) and s.get('type') in ('result', 'error'),
                       what='configuration result %s' % id_)
            self.assertEqual(r.get('type'), 'result', to_str(r)[:300])
        c.take()
        return rooms

    def items(self, c, paging=''):
        r = c.iq('get', "<query xmlns='%s'>%s</query>" % (NS_DISCO_ITEMS, paging), to=MUC)
        self.assertEqual(r.get('type'), 'result', to_str(r)[:500])
        return Page(r)

    def items_error(self, c, paging):
        r = c.iq('get', "<query xmlns='%s'>%s</query>" % (NS_DISCO_ITEMS, paging), to=MUC)
        self.assertEqual(r.get('type'), 'error', to_str(r)[:500])
        return err(r)


class TestRoomListPaging(RoomListTestCase):
    """XEP-0059 on the service's disco#items: rooms in JID order, <max/>, <after/>,
    <before/> honoured, <first/>, <last/> and <count/> in every answer to a paged query."""

    def test_paging_through_a_few_rooms(self):
        a = self.connect(self.srv, 'alice', roster=False, tls=False)
        names = ['room%02d' % i for i in (7, 3, 11, 0, 5, 9, 1, 10, 2, 8, 4, 6)]
        kept = self.create_many(a, names[:6], {'muc#roomconfig_persistentroom': True,
                                               'muc#roomconfig_roomname': 'Kept'})
        self.create_many(a, names[6:], {'muc#roomconfig_roomname': 'Here'})
        self.create_many(a, ['hidden'], {'muc#roomconfig_publicroom': False})
        for room in kept[:3]:  # unloaded: listed from storage, merged with those in memory
            a.send("<presence to='%s/Owner' type='unavailable'/>" % room)
            self.pres_from(a, room, 'Owner', type_='unavailable', code=110)
        every = sorted(room_jid(n) for n in names)

        # without <set/>: everything (it fits in one page), and no <set/> in the answer
        p = self.items(a)
        self.assertEqual(p.jids, every, 'rooms in JID order')
        self.assertIsNone(p.set)
        self.assertEqual(dict(p.items)[room_jid('room07')], 'Kept')
        self.assertEqual(dict(p.items)[room_jid('room01')], 'Here')

        # forwards, five at a time
        seen, after = [], None
        for n in (5, 5, 2):
            p = self.items(a, rsm(5, after=after))
            self.assertEqual(len(p.jids), n)
            self.assertEqual((p.first, p.last, p.count), (p.jids[0], p.jids[-1], 12))
            seen += p.jids
            after = p.last
        self.assertEqual(seen, every)
        p = self.items(a, rsm(5, after=after))  # past the end: an empty page, still counted
        self.assertEqual((p.jids, p.first, p.last, p.count), ([], None, None, 12))

        # backwards from the end
        p = self.items(a, rsm(5, before=''))
        self.assertEqual(p.jids, every[-5:])
        p = self.items(a, rsm(5, before=p.first))
        self.assertEqual(p.jids, every[-10:-5])
        p = self.items(a, rsm(5, before=p.first))
        self.assertEqual((p.jids, p.first, p.last), (every[:2], every[0], every[1]))

        # a room gone between two pages does not break paging: JID order, not a position
        p = self.items(a, rsm(3, after=room_jid('room04x')))
        self.assertEqual(p.jids, [room_jid('room05'), room_jid('room06'), room_jid('room07')])

        # the count alone; without max, the server's page
        p = self.items(a, rsm(0))
        self.assertEqual((p.jids, p.count), ([], 12))
        p = self.items(a, rsm())
        self.assertEqual((p.jids, p.count, p.first, p.last), (every, 12, every[0], every[-1]))

        # bad paging
        self.assertEqual(self.items_error(a, rsm('ten')), ('modify', 'bad-request'))
        self.assertEqual(self.items_error(a, rsm(-1)), ('modify', 'bad-request'))
        self.assertEqual(self.items_error(a, rsm(5, after='')), ('modify', 'bad-request'))
        self.assertEqual(self.items_error(a, rsm(5, index=2))[1], 'feature-not-implemented')
        a.sync()


class TestRoomListBounded(RoomListTestCase):
    """Regression: the service listed every public room in one result. 640 rooms with
    long JIDs and names made a result of 4.6 MB, past the 4 MiB output bound: whoever
    asked lost its session, every time."""

    def test_room_list_is_paged_within_the_output_bound(self):
        a = self.connect(self.srv, 'alice', roster=False, tls=False)
        name = "'" * 1024  # 6 KiB once escaped
        total = 640
        names = ['r%04d-%s' % (i, 'a' * 1000) for i in range(total)]
        kept = self.create_many(a, names[:total // 2], {'muc#roomconfig_persistentroom': True,
                                                        'muc#roomconfig_roomname': name})
        self.create_many(a, names[total // 2:], {'muc#roomconfig_roomname': name})
        for room in kept:  # these are listed from storage
            a.send("<presence to='%s/Owner' type='unavailable'/>" % room)
        a.sync()
        a.take()
        every = sorted(room_jid(n) for n in names)

        # a bounded first page, which says there is more
        b = self.connect(self.srv, 'bob', roster=False, tls=False)
        p = self.items(b)
        self.assertGreater(len(p.jids), 0)
        self.assertLess(len(p.jids), total)
        self.assertLessEqual(p.size, ITEMS_PAGE_BYTES + 4096)
        self.assertIsNotNone(p.set, 'a shortened list says so with <set/>')
        self.assertEqual((p.first, p.last, p.count), (every[0], p.jids[-1], total))
        self.assertEqual(p.jids, every[:len(p.jids)])
        self.assertEqual({n for _, n in p.items}, {name})
        b.sync()

        # paging through all of it, however large a max the client asks for
        seen, after, pages = [], None, 0
        while len(seen) < total:
            p = self.items(b, rsm(100000, after=after))
            pages += 1
            self.assertGreater(len(p.jids), 0)
            self.assertLessEqual(len(p.jids), ITEMS_PAGE_MAX)
            self.assertLessEqual(p.size, ITEMS_PAGE_BYTES + 4096)
            self.assertEqual(p.count, total)
            seen += p.jids
            after = p.last
            self.assertLess(pages, 20)
        self.assertEqual(seen, every)
        self.assertGreater(pages, 4)
        b.sync()


class TestAffiliationsBounded(MucTestCase):
    """Regression: affiliations were bounded by count only (10,000), each with a JID of up to
    3 KB and a reason of any length: the member list, the owner and admin lists of the
    configuration form and the contact JIDs of disco#info grew past the 4 MiB output bound,
    and whoever asked for them lost its session. A change that would take a room's
    affiliations past 1 MiB now gets resource-constraint and changes nothing."""

    settings = {'c2s.tls': 'optional'}

    def grant(self, c, room, affiliation, jids, reason=None):
        extra = '<reason>%s</reason>' % reason if reason else ''
        items = ''.join("<item affiliation='%s' jid='%s'>%s</item>" % (affiliation, j, extra) for j in jids)
        return self.admin(c, room, items)

    def fill(self, c, room, affiliation, batches, reason=None):
        """Grants batches of JIDs until the room refuses one: (JIDs granted, refused)."""
        granted = []
        for jids in batches:
            r = self.grant(c, room, affiliation, jids, reason)
            if r.get('type') == 'error':
                self.assertEqual(err(r), ('wait', 'resource-constraint'), to_str(r)[-400:])
                return granted, True
            granted += jids
        return granted, False

    def listed(self, c, room, affiliation):
        r = c.iq_ok('get', "<query xmlns='%s'><item affiliation='%s'/></query>" % (NS_MUC_ADMIN, affiliation),
                    to=room)
        return r.findall('%s/%s' % (q(NS_MUC_ADMIN, 'query'), q(NS_MUC_ADMIN, 'item')))

    def register(self, c, room, nick):
        form = "<x xmlns='%s' type='submit'>%s%s</x>" % (
            NS_XDATA, field_xml('FORM_TYPE', 'http://jabber.org/protocol/muc#register'),
            field_xml('muc#register_roomnick', nick))
        return c.iq('set', "<query xmlns='jabber:iq:register'>%s</query>" % form, to=room)

    def test_members_with_long_reasons(self):
        a = self.connect(self.srv, 'alice', roster=False, tls=False)
        room = self.create(a, 'members', 'Alice')
        reason = 'r' * 60000
        batches = [['m%03d@%s' % (3 * i + k, DOMAIN) for k in range(3)] for i in range(30)]  # 5.4 MB
        granted, refused = self.fill(a, room, 'member', batches, reason)
        items = self.listed(a, room, 'member')  # the session ended here, before
        self.assertTrue(refused, '%d members with %d-byte reasons granted' % (len(granted), len(reason)))
        self.assertGreater(len(granted), 3)
        self.assertEqual(sorted(i.get('jid') for i in items), sorted(granted))
        self.assertEqual({i.findtext(q(NS_MUC_ADMIN, 'reason')) for i in items}, {reason})
        # removing makes room again
        self.assertEqual(self.grant(a, room, 'none', granted[:2]).get('type'), 'result')
        self.assertEqual(self.grant(a, room, 'member', ['new@' + DOMAIN], reason).get('type'), 'result')
        self.assertEqual(len(self.listed(a, room, 'member')), len(granted) - 1)
        # the configuration form's lists are refused as well, and change nothing
        admins = ['a%03d%s@%s' % (i, 'x' * 1000, DOMAIN) for i in range(200)]
        r = self.configure(a, room, {'muc#roomconfig_roomadmins': admins})
        self.assertEqual(err(r), ('wait', 'resource-constraint'), to_str(r)[-400:])
        self.assertEqual(self.config_values(a, room)['muc#roomconfig_roomadmins'], [])
        # so is a nickname reserved by registration: the room is filled with grants as large
        # as bob's would be but for a shorter nick, until not one more fits
        medium = ['medium%03d@%s' % (i, DOMAIN) for i in range(60)]
        self.assertTrue(self.fill(a, room, 'member', [medium[i:i + 10] for i in range(0, 60, 10)], 'r' * 5000)[1])
        chars = 'abcdefghijklmnopqrstuvwxyz0123456789'
        small = ['s%s%s@%s' % (x, y, DOMAIN) for x in chars for y in chars]
        self.assertEqual(len(small[0]), len('bob@' + DOMAIN))
        for n in (100, 10, 1):
            granted_now, refused = self.fill(a, room, 'member', [small[i:i + n] for i in range(0, len(small), n)],
                                             'r' * 10)
            self.assertTrue(refused)
            small = small[len(granted_now):]
        b = self.connect(self.srv, 'bob', roster=False, tls=False)
        self.assertEqual(err(self.register(b, room, 'B' * 20)), ('wait', 'resource-constraint'))
        self.assertEqual(self.grant(a, room, 'none', granted[2:3]).get('type'), 'result')
        self.assertEqual(self.register(b, room, 'B' * 20).get('type'), 'result')
        a.sync()

    def test_owners_with_long_jids(self):
        a = self.connect(self.srv, 'alice', roster=False, tls=False)
        room = self.create(a, 'owners', 'Alice', {'muc#roomconfig_whois': 'anyone'})
        batches = [['o%04d%s@%s' % (200 * i + k, 'x' * 1000, DOMAIN) for k in range(200)]
                   for i in range(22)]  # 4.5 MB of JIDs
        granted, refused = self.fill(a, room, 'owner', batches)
        owners = set(granted) | {'alice@' + DOMAIN}
        # every list that shows them fits: the owner list, the configuration form, disco#info
        self.assertEqual({i.get('jid') for i in self.listed(a, room, 'owner')}, owners)
        self.assertTrue(refused, '%d owners with 1 KB JIDs granted' % len(granted))
        self.assertGreater(len(granted), 200)
        self.assertEqual(set(self.config_values(a, room)['muc#roomconfig_roomowners']), owners)
        b = self.connect(self.srv, 'bob', roster=False, tls=False)
        r = b.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)
        x = r.find('%s/%s' % (q(NS_DISCO_INFO, 'query'), q(NS_XDATA, 'x')))
        self.assertEqual(set(form_fields(x)['muc#roominfo_contactjid']), owners)
        a.sync()
        b.sync()

def big_presence(pad, status='here'):
    """Presence children: show, status, caps and pad bytes of an element nobody knows."""
    return ("<show>away</show><status>%s</status>%s<x xmlns='urn:example:pad'>%s</x>"
            % (status, caps_xml(), 'p' * pad))


class OccupantsTestCase(MucTestCase):
    settings = {'c2s.tls': 'optional', 'c2s.max_resources': '300'}

    def occupant(self, user, resource, room, nick, extra, more=()):
        """A new session of user joining room as nick; every client of more sees it come in."""
        c = self.connect(self.srv, user, resource=resource, roster=False, presence=False, tls=False)
        self.join_send(c, room, nick, extra=extra)
        me = '%s/%s' % (room, nick)
        s = c.wait(lambda s: is_pres(s, from_=me, type_='*') and (110 in codes(s) or s.get('type') == 'error'),
                   what='self-presence from %s' % me[:80])
        for x in more:  # read as it comes: nobody falls behind
            x.wait(lambda s: is_pres(s, from_=me), what='presence of %s' % me[:80])
            x.take()
        return c, s


class TestOccupantsBounded(OccupantsTestCase):
    """The newcomer's join sequence holds every occupant's presence (§7.2.3), and it leaves in
    one write; an occupant's presence may carry up to 256 KiB of payload."""

    def test_join_among_large_presences(self):
        # Regression: a room repeated every occupant's presence whole, payload included, in the
        # join sequence: 20 occupants with 220 KB presences made a sequence of 4.4 MB, past the
        # 4 MiB output bound, and the newcomer lost its session on joining.
        a = self.connect(self.srv, 'alice', roster=False, tls=False)
        room = self.create(a, 'crowded', 'Alice')
        clients = [a]
        for i in range(20):
            c, s = self.occupant('bob', 'r%02d' % i, room, 'B%02d' % i, big_presence(220000), clients)
            self.assertNotEqual(s.get('type'), 'error', to_str(s)[:300])
            c.take()
            clients.append(c)
        d = self.connect(self.srv, 'dave', roster=False, presence=False, tls=False)
        self.join(d, room, 'Dave')
        self.subject_of(d, room)
        d.sync()  # still connected
        got = {s.get('from'): s for s in d.take(lambda s: is_pres(s))}
        want = {'%s/B%02d' % (room, i) for i in range(20)} | {room + '/Alice'}
        self.assertEqual(set(got) - {room + '/Dave'}, want)
        for i in range(20):
            s = got['%s/B%02d' % (room, i)]
            # what says who and how it is stays; the padding goes
            self.assertEqual(s.findtext(q(NS_CLIENT, 'show')), 'away')
            self.assertEqual(s.findtext(q(NS_CLIENT, 'status')), 'here')
            self.assertIsNotNone(s.find(q(NS_CAPS, 'c')), to_str(s)[:300])
            self.assertIsNone(s.find(q('urn:example:pad', 'x')))
            self.assertLess(len(to_str(s)), PRESENCE_KEEP + 1024)
        # the others see the same, and so does the occupant itself when it changes its presence
        clients[1].send("<presence to='%s/B00'>%s</presence>" % (room, big_presence(220000, 'changed')))
        for x in clients:
            s = x.wait(lambda s: is_pres(s, from_=room + '/B00') and s.findtext(q(NS_CLIENT, 'status')) == 'changed')
            self.assertIsNone(s.find(q('urn:example:pad', 'x')))
            self.assertIsNotNone(s.find(q(NS_CAPS, 'c')))
        # a long status is cut, not dropped, when the payload is too large
        clients[2].send("<presence to='%s/B01'>%s</presence>" % (room, big_presence(150000, 's' * 100000)))
        s = d.wait(lambda s: is_pres(s, from_=room + '/B01') and s.findtext(q(NS_CLIENT, 'status')) != 'here')
        status = s.findtext(q(NS_CLIENT, 'status'))
        self.assertTrue(0 < len(status) <= 1024 and set(status) == {'s'}, len(status))
        d.sync()


class TestRoomFull(OccupantsTestCase):
    """muc.max_join_size: the occupants' presences a newcomer gets in its join sequence, its own
    address on each, stay within it. Lowered here so that a few occupants fill a room."""

    MAX = 65536
    settings = dict(OccupantsTestCase.settings, **{'muc.max_join_size': str(MAX)})

    def fill(self, room, res, pad):
        """bob's sessions join room until it refuses one: (occupants, the refused (client, error))."""
        joined = []
        for i in range(100):
            c, s = self.occupant('bob', res + '%03d' % i, room, 'B%03d' % i, big_presence(pad))
            if s.get('type') == 'error':
                self.assertEqual(err(s), ('cancel', 'service-unavailable'), to_str(s)[-300:])
                return joined, c
            # past the bound with its payload, it came in with what says who and how it is
            self.assertEqual((s.findtext(q(NS_CLIENT, 'show')), s.findtext(q(NS_CLIENT, 'status'))),
                             ('away', 'here'))
            joined.append(c)
        self.fail('%d occupants with %d-byte presences let in' % (len(joined), pad))

    def test_the_newcomers_own_address_counts(self):
        # Long addresses: each presence of the sequence carries the newcomer's. One with a short
        # address still fits where one with a long address no longer does, and an admin gets in
        # where a participant with the same address did not.
        a = self.connect(self.srv, 'alice', roster=False, tls=False)
        room = self.create(a, 'full', 'Alice', {'muc#roomconfig_presencebroadcast': ['moderator']})
        res = 'x' * 600
        joined, refused = self.fill(room, res, 3700)
        self.assertGreater(len(joined), 3)
        refused.sync()  # still connected
        carol, s = self.occupant('carol', 'r1', room, 'Carol', '')
        self.assertNotEqual(s.get('type'), 'error', to_str(s)[-300:])
        self.assertEqual(self.admin(a, room, "<item affiliation='admin' jid='eve@%s'/>" % DOMAIN).get('type'),
                         'result')
        e, s = self.occupant('eve', res + '%03d' % len(joined), room, 'E%03d' % len(joined), big_presence(3700))
        self.assertNotEqual(s.get('type'), 'error', to_str(s)[-300:])
        self.assertEqual(s.findtext(q(NS_CLIENT, 'status')), 'here')
        self.assertEqual([s.get('from') for s in e.take(lambda s: is_pres(s))], [room + '/Alice'],
                         'only moderators are repeated in this room')
        for c in (e, carol, a):
            c.sync()

    def test_presence_updates_in_a_full_room_keep_what_says_who(self):
        # A presence update is never refused: in a room whose join sequence is at its bound it
        # keeps show, priority and status, and leaves the rest.
        a = self.connect(self.srv, 'alice', roster=False, tls=False)
        room = self.create(a, 'brim', 'Alice', {'muc#roomconfig_presencebroadcast': ['moderator']})
        small = []
        for i in range(4):
            c, s = self.occupant('carol', 'c%d' % i, room, 'C%d' % i, '<show>dnd</show>')
            self.assertNotEqual(s.get('type'), 'error', to_str(s)[-300:])
            small.append(c)
        self.fill(room, 'r', 3700)
        # each update grows the room by about 3.8 KB: past the admins' share, one is cut short
        for i, c in enumerate(small):
            c.send("<presence to='%s/C%d'>%s<priority>5</priority></presence>"
                   % (room, i, big_presence(3700, 'grown')))
            s = c.wait(lambda s: is_pres(s, from_='%s/C%d' % (room, i)) and 110 in codes(s))
            self.assertEqual((s.findtext(q(NS_CLIENT, 'show')), s.findtext(q(NS_CLIENT, 'status')),
                              s.findtext(q(NS_CLIENT, 'priority'))), ('away', 'grown', '5'))
            if s.find(q('urn:example:pad', 'x')) is None:
                self.assertIsNone(s.find(q(NS_CAPS, 'c')), 'essentials only')
                break
        else:
            self.fail('four presence updates of 3.8 KB more each kept whole in a full room')
        # shrinking back is always taken
        c.send("<presence to='%s/C%d'><show>chat</show></presence>" % (room, i))
        s = c.wait(lambda s: is_pres(s, from_='%s/C%d' % (room, i)) and 110 in codes(s))
        self.assertEqual(s.findtext(q(NS_CLIENT, 'show')), 'chat')
        for c in small + [a]:
            c.sync()

class TestInvitationsBounded(MucTestCase):
    """Regression: a room sent one message per <invite/> of a message, each with the room's
    password twice (XEP-0045's and XEP-0249's) and the reason twice: a 100 KB message of 3,000
    invitations to one address became 7 MB for that address in one write, past the 4 MiB
    output bound, and the invitee lost its session."""

    settings = {'c2s.tls': 'optional'}

    def test_invitations_in_one_message_are_bounded(self):
        a = self.connect(self.srv, 'alice', roster=False, tls=False)
        c = self.connect(self.srv, 'carol', roster=False, tls=False)
        room = self.create(a, 'secret', 'Alice', {'muc#roomconfig_passwordprotectedroom': True,
                                                  'muc#roomconfig_roomsecret': 'p' * 1024})
        invite = "<invite to='carol@%s'><reason>come</reason></invite>" % DOMAIN
        a.send("<message to='%s' id='many'><x xmlns='%s#user'>%s</x></message>"
               % (room, 'http://jabber.org/protocol/muc', invite * 3000))
        a.sync()
        c.sync()  # still connected: the session ended here, before
        self.assertEqual(c.take(lambda s: s.tag == q(NS_CLIENT, 'message')), [], 'nothing of a refused message')
        r = a.wait(lambda s: s.get('id') == 'many' and s.get('type') == 'error', what='error for 3000 invitations')
        self.assertEqual(err(r), ('modify', 'not-acceptable'))
        # as many as a message may hold go out
        a.send("<message to='%s' id='some'><x xmlns='%s#user'>%s</x></message>"
               % (room, 'http://jabber.org/protocol/muc', invite * INVITES_MAX))
        got = c.wait_n(lambda s: s.find('.//{http://jabber.org/protocol/muc#user}invite') is not None,
                       INVITES_MAX, what='invitations')
        self.assertEqual(got[0].findtext('.//{http://jabber.org/protocol/muc#user}password'), 'p' * 1024)
        c.sync()
        a.sync()


if __name__ == '__main__':
    main()
