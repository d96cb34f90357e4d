"""Multi-user chat (XEP-0045) against a live hearthd: the service and its
disco, rooms (instant and reserved, the configuration form), occupants,
roles and affiliations, invitations, persistence across restarts, history
and logging, destruction, XEP-0410 self-ping and bad input. Every numbered
point is driven by three or more live clients."""

import time
import unittest

from hearth import (DOMAIN, NS_CLIENT, NS_DISCO_INFO, NS_PING, NS_STANZAS, NS_STREAM, Server, main, q, to_str,
                    xml_escape)
from imlib import DELAY_STAMP, NS_DELAY, NS_SID, IMTestCase, err, is_iq, is_msg, is_pres

MUC = 'conference.' + DOMAIN
NS_MUC = 'http://jabber.org/protocol/muc'
NS_MUC_USER = NS_MUC + '#user'
NS_MUC_ADMIN = NS_MUC + '#admin'
NS_MUC_OWNER = NS_MUC + '#owner'
NS_XDATA = 'jabber:x:data'
NS_DISCO_ITEMS = 'http://jabber.org/protocol/disco#items'
NS_CONFERENCE = 'jabber:x:conference'
NS_REGISTER = 'jabber:iq:register'
ROOMCONFIG = NS_MUC + '#roomconfig'
NS_MUC_REQUEST = NS_MUC + '#request'


def room_jid(name):
    return '%s@%s' % (name, MUC)


def muc_x(s):
    return s.find(q(NS_MUC_USER, 'x'))


def codes(s):
    x = muc_x(s)
    return set() if x is None else {int(c.get('code')) for c in x.findall(q(NS_MUC_USER, 'status'))}


def item(s):
    x = muc_x(s)
    return None if x is None else x.find(q(NS_MUC_USER, 'item'))


def features(r):
    return {f.get('var') for f in r.iter(q(NS_DISCO_INFO, 'feature'))}


def form_fields(x):
    out = {}
    for f in x.findall(q(NS_XDATA, 'field')):
        out[f.get('var')] = [v.text or '' for v in f.findall(q(NS_XDATA, 'value'))]
    return out


def field_xml(var, values):
    if isinstance(values, (str, bool, int)):
        values = [values]
    vals = ''
    for v in values:
        if v is True:
            v = '1'
        elif v is False:
            v = '0'
        vals += '<value>%s</value>' % xml_escape(str(v))
    return "<field var='%s'>%s</field>" % (xml_escape(var), vals)


def submit_form(fields, form_type=True):
    inner = field_xml('FORM_TYPE', ROOMCONFIG) if form_type else ''
    for k, v in fields.items():
        inner += field_xml(k, v)
    return "<x xmlns='%s' type='submit'>%s</x>" % (NS_XDATA, inner)


def voice_form(fields, type_='submit'):
    """A muc#request data form (XEP-0045 §7.13, §8.6)."""
    inner = field_xml('FORM_TYPE', NS_MUC_REQUEST)
    for k, v in fields.items():
        inner += field_xml(k, v)
    return "<x xmlns='%s' type='%s'>%s</x>" % (NS_XDATA, type_, inner)


def voice_approval(s):
    """The fields of a voice approval form in message s, or None."""
    x = s.find(q(NS_XDATA, 'x'))
    if x is None:
        return None
    f = form_fields(x)
    return f if f.get('FORM_TYPE') == [NS_MUC_REQUEST] else None


def fnv1a(text):
    """strmap_stable_hash: FNV-1a 64, which picks the home worker of users and rooms."""
    h = 14695981039346656037
    for ch in text.encode():
        h = ((h ^ ch) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h


class MucTestCase(IMTestCase):
    users = {'alice': 'wonderland', 'bob': 'builder', 'carol': 'singer', 'dave': 'diver',
             'eve': 'listener'}

    def setUp(self):
        self.srv = self.start_server()

    def client(self, user, resource='r1'):
        return self.connect(self.srv, user, resource=resource, roster=False)

    # -- joining ---------------------------------------------------------------

    def join_send(self, c, room, nick, password=None, history=None, extra=''):
        inner = ''
        if password is not None:
            inner += '<password>%s</password>' % xml_escape(password)
        if history is not None:
            inner += '<history %s/>' % ' '.join("%s='%s'" % kv for kv in history.items())
        c.send("<presence to='%s/%s'><x xmlns='%s'>%s</x>%s</presence>"
               % (room, xml_escape(nick), NS_MUC, inner, extra))

    def join(self, c, room, nick, **kw):
        """Join and return the self-presence (status 110); fail on an error."""
        self.join_send(c, room, nick, **kw)
        me = '%s/%s' % (room, nick)
        s = c.wait(lambda s: is_pres(s, from_=me, type_='*') and (110 in codes(s) or s.get('type') == 'error'),
                   what='self-presence from %s' % me)
        self.assertNotEqual(s.get('type'), 'error', to_str(s))
        return s

    def join_error(self, c, room, nick, **kw):
        self.join_send(c, room, nick, **kw)
        me = '%s/%s' % (room, nick)
        s = c.wait(lambda s: is_pres(s, from_=me, type_='error'), what='error presence from %s' % me)
        return err(s)

    def subject_of(self, c, room):
        return c.wait(lambda s: is_msg(s, type_='groupchat') and s.get('from', '').startswith(room)
                      and s.find(q(NS_CLIENT, 'subject')) is not None, what='subject of %s' % room)

    def create(self, c, name, nick, fields=None):
        """Create a room: instant (empty submission) or configured with fields."""
        room = room_jid(name)
        s = self.join(c, room, nick)
        self.assertIn(201, codes(s), to_str(s))
        self.subject_of(c, room)
        if fields is None:
            r = c.iq('set', "<query xmlns='%s'><x xmlns='%s' type='submit'/></query>" % (NS_MUC_OWNER, NS_XDATA),
                     to=room)
        else:
            r = c.iq('set', "<query xmlns='%s'>%s</query>" % (NS_MUC_OWNER, submit_form(fields)), to=room)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        return room

    def enter(self, c, room, nick, **kw):
        """Join an existing room and consume the subject."""
        s = self.join(c, room, nick, **kw)
        self.subject_of(c, room)
        return s

    def configure(self, c, room, fields, form_type=True):
        return c.iq('set', "<query xmlns='%s'>%s</query>" % (NS_MUC_OWNER, submit_form(fields, form_type)),
                    to=room)

    def config_values(self, c, room):
        r = c.iq_ok('get', "<query xmlns='%s'/>" % NS_MUC_OWNER, to=room)
        x = r.find('%s/%s' % (q(NS_MUC_OWNER, 'query'), q(NS_XDATA, 'x')))
        self.assertIsNotNone(x, to_str(r))
        return form_fields(x)

    def say(self, c, room, body, id_=None):
        return c.message(room, body, type_='groupchat', id_=id_)

    def got_groupchat(self, c, room, nick, body):
        return c.wait(lambda s: is_msg(s, from_='%s/%s' % (room, nick), type_='groupchat')
                      and s.findtext(q(NS_CLIENT, 'body')) == body,
                      what='groupchat %r from %s' % (body, nick))

    def pres_from(self, c, room, nick, type_=None, code=None):
        return c.wait(lambda s: is_pres(s, from_='%s/%s' % (room, nick), type_=type_)
                      and (code is None or code in codes(s)),
                      what='presence %s from %s/%s%s' % (type_ or 'available', room, nick,
                                                         ' with %s' % code if code else ''))

    def admin(self, c, room, items):
        return c.iq('set', "<query xmlns='%s'>%s</query>" % (NS_MUC_ADMIN, items), to=room)

    def three(self, name='room', fields=None):
        """alice creates and owns a room; bob and carol join it. Backlogs emptied."""
        a, b, c = self.client('alice'), self.client('bob'), self.client('carol')
        room = self.create(a, name, 'Alice', fields)
        self.enter(b, room, 'Bob')
        self.enter(c, room, 'Carol')
        self.settle(a, b, c)
        for x in (a, b, c):
            x.take()
        return room, a, b, c


# ---------------------------------------------------------------------------
# 1. The service and its disco


class TestService(MucTestCase):

    def test_service_disco_info(self):
        a = self.client('alice')
        r = a.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=MUC)
        ident = r.find('%s/%s' % (q(NS_DISCO_INFO, 'query'), q(NS_DISCO_INFO, 'identity')))
        self.assertEqual((ident.get('category'), ident.get('type')), ('conference', 'text'))
        self.assertIn(NS_MUC, features(r))
        # the server lists the service among its items
        r = a.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=DOMAIN)
        self.assertIn(MUC, [i.get('jid') for i in r.iter(q(NS_DISCO_ITEMS, 'item'))])

    def test_public_rooms_listed_hidden_not(self):
        a, b, c = self.client('alice'), self.client('bob'), self.client('carol')
        self.create(a, 'open1', 'A', {'muc#roomconfig_roomname': 'Open One'})
        self.create(b, 'hidden1', 'B', {'muc#roomconfig_publicroom': False})
        self.create(a, 'pers1', 'A', {'muc#roomconfig_persistentroom': True,
                                      'muc#roomconfig_roomname': 'Kept'})
        # a locked (unconfigured) room is not listed either
        s = self.join(b, room_jid('locked1'), 'B')
        self.assertIn(201, codes(s))
        r = c.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=MUC)
        items = {i.get('jid'): i.get('name') for i in r.iter(q(NS_DISCO_ITEMS, 'item'))}
        self.assertEqual(items.get(room_jid('open1')), 'Open One')
        self.assertEqual(items.get(room_jid('pers1')), 'Kept')
        self.assertNotIn(room_jid('hidden1'), items)
        self.assertNotIn(room_jid('locked1'), items)

    def test_room_disco_info_features_and_form(self):
        a, b, c = self.client('alice'), self.client('bob'), self.client('carol')
        room = self.create(a, 'info', 'A', {'muc#roomconfig_roomname': 'Info room',
                                            'muc#roomconfig_roomdesc': 'About things',
                                            'muc#roomconfig_persistentroom': True,
                                            'muc#roomconfig_membersonly': True,
                                            'muc#roomconfig_passwordprotectedroom': True,
                                            'muc#roomconfig_roomsecret': 'pw',
                                            'muc#roomconfig_publicroom': False,
                                            'muc#roomconfig_moderatedroom': True,
                                            'muc#roomconfig_whois': 'anyone'})
        r = b.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)
        f = features(r)
        for want in (NS_MUC, 'muc_persistent', 'muc_membersonly', 'muc_passwordprotected', 'muc_hidden',
                     'muc_moderated', 'muc_nonanonymous'):
            self.assertIn(want, f)
        for unwanted in ('muc_temporary', 'muc_open', 'muc_unsecured', 'muc_public', 'muc_unmoderated',
                         'muc_semianonymous'):
            self.assertNotIn(unwanted, f)
        x = r.find('%s/%s' % (q(NS_DISCO_INFO, 'query'), q(NS_XDATA, 'x')))
        vals = form_fields(x)
        self.assertEqual(vals['FORM_TYPE'], [NS_MUC + '#roominfo'])
        self.assertEqual(vals['muc#roominfo_description'], ['About things'])
        self.assertEqual(vals['muc#roominfo_occupants'], ['1'])
        ident = r.find('%s/%s' % (q(NS_DISCO_INFO, 'query'), q(NS_DISCO_INFO, 'identity')))
        self.assertEqual(ident.get('name'), 'Info room')
        # the opposite settings
        room2 = self.create(c, 'info2', 'C')
        f = features(b.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room2))
        for want in ('muc_temporary', 'muc_open', 'muc_unsecured', 'muc_public', 'muc_unmoderated',
                     'muc_semianonymous'):
            self.assertIn(want, f)
        # no such room
        r = b.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room_jid('nothing'))
        self.assertEqual(err(r), ('cancel', 'item-not-found'))


# ---------------------------------------------------------------------------
# 2. Occupants: join, presence, groupchat, subject, nick change, leave


class TestOccupants(MucTestCase):

    def test_instant_room_join_groupchat_leave(self):
        a, b, c = self.client('alice'), self.client('bob'), self.client('carol')
        room = room_jid('instant')
        s = self.join(a, room, 'Alice')
        self.assertEqual(codes(s), {110, 201})
        self.assertEqual((item(s).get('affiliation'), item(s).get('role')), ('owner', 'moderator'))
        # locked until configured: others get item-not-found
        self.assertEqual(self.join_error(b, room, 'Bob'), ('cancel', 'item-not-found'))
        self.subject_of(a, room)
        r = a.iq_ok('set', "<query xmlns='%s'><x xmlns='%s' type='submit'/></query>" % (NS_MUC_OWNER, NS_XDATA),
                    to=room)
        s = self.join(b, room, 'Bob')
        self.assertEqual(codes(s), {110})
        self.assertEqual((item(s).get('affiliation'), item(s).get('role')), ('none', 'participant'))
        self.assertIn(item(s).get('jid'), (None, b.jid))
        # semi-anonymous: only moderators see real JIDs
        self.assertIsNone(item(self.pres_from(b, room, 'Alice')).get('jid'))
        self.subject_of(b, room)
        # alice (moderator) sees bob's real JID
        p = self.pres_from(a, room, 'Bob')
        self.assertEqual(item(p).get('jid'), b.jid)
        self.join_send(c, room, 'Carol')
        # carol first gets the existing occupants, then herself
        seen = []
        while True:
            s = c.wait(lambda s: is_pres(s, type_='*') and s.get('from', '').startswith(room + '/'),
                       what='presence in join')
            seen.append(s.get('from'))
            if 110 in codes(s):
                break
        self.assertEqual(set(seen[:-1]), {room + '/Alice', room + '/Bob'})
        self.assertEqual(seen[-1], room + '/Carol')
        self.subject_of(c, room)
        self.pres_from(a, room, 'Carol')
        self.pres_from(b, room, 'Carol')
        # groupchat reaches everyone, the sender included, with the same id and a stanza-id
        mid = self.say(b, room, 'hello all', id_='g1')
        for x in (a, b, c):
            m = self.got_groupchat(x, room, 'Bob', 'hello all')
            self.assertEqual(m.get('id'), 'g1')
            sid = m.find(q(NS_SID, 'stanza-id'))
            self.assertIsNotNone(sid, to_str(m))
            self.assertEqual(sid.get('by'), room)
        # leaving
        c.send("<presence to='%s/Carol' type='unavailable'><status>bye</status></presence>" % room)
        s = self.pres_from(c, room, 'Carol', type_='unavailable', code=110)
        for x in (a, b):
            s = self.pres_from(x, room, 'Carol', type_='unavailable')
            self.assertEqual(s.findtext(q(NS_CLIENT, 'status')), 'bye')
            self.assertEqual(item(s).get('role'), 'none')
        # carol no longer gets messages
        self.say(a, room, 'after carol')
        self.got_groupchat(b, room, 'Alice', 'after carol')
        c.expect_none(lambda s: is_msg(s, type_='groupchat'))

    def test_occupant_leaves_when_session_ends(self):
        room, a, b, c = self.three('ends')
        c.drop()
        for x in (a, b):
            self.pres_from(x, room, 'Carol', type_='unavailable')
        # and a fresh join with the same nick works
        c2 = self.client('carol', 'r2')
        self.enter(c2, room, 'Carol')

    def test_last_occupant_leaving_destroys_temporary_room(self):
        room, a, b, c = self.three('temp')
        for x, n in ((a, 'Alice'), (b, 'Bob'), (c, 'Carol')):
            x.send("<presence to='%s/%s' type='unavailable'/>" % (room, n))
            self.pres_from(x, room, n, type_='unavailable', code=110)
        r = a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)
        self.assertEqual(err(r), ('cancel', 'item-not-found'))
        # joining again creates it again
        s = self.join(b, room, 'Bob')
        self.assertIn(201, codes(s))

    def test_nick_conflict_and_change(self):
        room, a, b, c = self.three('nicks')
        d = self.client('dave')
        self.assertEqual(self.join_error(d, room, 'Bob'), ('cancel', 'conflict'))
        # bob becomes Robert: 303 with the new nick, then the new presence
        b.send("<presence to='%s/Robert'/>" % room)
        for x in (a, b, c):
            s = self.pres_from(x, room, 'Bob', type_='unavailable', code=303)
            self.assertEqual(item(s).get('nick'), 'Robert')
            self.assertEqual(110 in codes(s), x is b)
            s = self.pres_from(x, room, 'Robert')
            self.assertEqual(110 in codes(s), x is b)
        self.say(b, room, 'as robert')
        for x in (a, b, c):
            self.got_groupchat(x, room, 'Robert', 'as robert')
        # the old nick is free again
        self.enter(d, room, 'Bob')
        # a nick change to one in use: conflict, nothing changes
        c.send("<presence to='%s/Robert'/>" % room)
        s = c.wait(lambda s: is_pres(s, from_=room + '/Robert', type_='error'))
        self.assertEqual(err(s), ('cancel', 'conflict'))

    def test_subject_on_join_and_changes(self):
        room, a, b, c = self.three('subj')
        a.send("<message to='%s' type='groupchat'><subject>Plans</subject></message>" % room)
        for x in (a, b, c):
            m = self.subject_of(x, room)
            self.assertEqual(m.get('from'), room + '/Alice')
            self.assertEqual(m.findtext(q(NS_CLIENT, 'subject')), 'Plans')
        # participants may not change it (changesubject off)
        b.send("<message to='%s' type='groupchat' id='s2'><subject>Mine</subject></message>" % room)
        e = b.wait(lambda s: is_msg(s, id_='s2', type_='error'))
        self.assertEqual(err(e), ('auth', 'forbidden'))
        # a newcomer gets the subject after presence (and history)
        d = self.client('dave')
        self.join(d, room, 'Dave')
        m = self.subject_of(d, room)
        self.assertEqual(m.findtext(q(NS_CLIENT, 'subject')), 'Plans')
        # with changesubject, participants may
        self.assertEqual(self.configure(a, room, {'muc#roomconfig_changesubject': True}).get('type'), 'result')
        b.send("<message to='%s' type='groupchat'><subject>Bob's</subject></message>" % room)
        for x in (a, c, d):
            m = x.wait(lambda s: is_msg(s, from_=room + '/Bob') and s.findtext(q(NS_CLIENT, 'subject')) == "Bob's")

    def test_presence_update_broadcast(self):
        room, a, b, c = self.three('upd')
        b.send("<presence to='%s/Bob'><show>away</show><status>lunch</status></presence>" % room)
        for x in (a, b, c):
            s = self.pres_from(x, room, 'Bob')
            self.assertEqual(s.findtext(q(NS_CLIENT, 'show')), 'away')
            self.assertEqual(s.findtext(q(NS_CLIENT, 'status')), 'lunch')


# ---------------------------------------------------------------------------
# 3. Reserved rooms and the configuration form


SMACK_FORM = {  # smack-session.md section 9, as that client submits it
    'muc#roomconfig_roomowners': ['alice@' + DOMAIN, 'dave@' + DOMAIN],
    'muc#roomconfig_maxusers': '20',
    'muc#roomconfig_roomname': 'Room 01',
    'muc#roomconfig_persistentroom': True,
    'muc#roomconfig_membersonly': False,
    'muc#roomconfig_allowinvites': True,
    'muc#roomconfig_enablelogging': True,
    'x-muc#roomconfig_reservednick': True,
    'x-muc#roomconfig_canchangenick': False,
    'x-muc#roomconfig_registration': False,
    'x-unknown#field': 'whatever',
}


class TestConfiguration(MucTestCase):

    def test_form_lists_every_field(self):
        a = self.client('alice')
        room = room_jid('form')
        self.join(a, room, 'A')
        vals = self.config_values(a, room)
        for var in ('FORM_TYPE', 'muc#roomconfig_roomname', 'muc#roomconfig_roomdesc', 'muc#roomconfig_lang',
                    'muc#roomconfig_enablelogging', 'muc#roomconfig_changesubject',
                    'muc#roomconfig_allowinvites', 'muc#roomconfig_allowpm', 'muc#roomconfig_maxusers',
                    'muc#roomconfig_presencebroadcast', 'muc#roomconfig_getmemberlist',
                    'muc#roomconfig_publicroom', 'muc#roomconfig_persistentroom',
                    'muc#roomconfig_moderatedroom', 'muc#roomconfig_membersonly',
                    'muc#roomconfig_passwordprotectedroom', 'muc#roomconfig_roomsecret',
                    'muc#roomconfig_whois', 'muc#roomconfig_roomadmins', 'muc#roomconfig_roomowners',
                    'muc#maxhistoryfetch', 'x-muc#roomconfig_reservednick', 'x-muc#roomconfig_canchangenick',
                    'x-muc#roomconfig_registration'):
            self.assertIn(var, vals)
        self.assertEqual(vals['FORM_TYPE'], [ROOMCONFIG])
        self.assertEqual(vals['muc#roomconfig_roomowners'], ['alice@' + DOMAIN])

    def test_smack_form_accepted_and_effective(self):
        a, b, c, d = self.client('alice'), self.client('bob'), self.client('carol'), self.client('dave')
        room = room_jid('room01')
        s = self.join(a, room, 'alice')
        self.assertIn(201, codes(s))
        r = self.configure(a, room, SMACK_FORM)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        vals = self.config_values(a, room)
        self.assertEqual(sorted(vals['muc#roomconfig_roomowners']), ['alice@' + DOMAIN, 'dave@' + DOMAIN])
        self.assertEqual(vals['muc#roomconfig_maxusers'], ['20'])
        self.assertEqual(vals['muc#roomconfig_roomname'], ['Room 01'])
        for var, want in (('muc#roomconfig_persistentroom', '1'), ('muc#roomconfig_membersonly', '0'),
                          ('muc#roomconfig_allowinvites', '1'), ('muc#roomconfig_enablelogging', '1'),
                          ('x-muc#roomconfig_reservednick', '1'), ('x-muc#roomconfig_canchangenick', '0'),
                          ('x-muc#roomconfig_registration', '0')):
            self.assertEqual(vals[var], [want], var)
        # persistent, logged
        f = features(b.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room))
        self.assertIn('muc_persistent', f)
        s = self.enter(b, room, 'bob')
        self.assertIn(170, codes(s))  # logging
        # dave is an owner too
        s = self.enter(d, room, 'dave')
        self.assertEqual(item(s).get('affiliation'), 'owner')
        # canchangenick=false: not-acceptable
        b.send("<presence to='%s/bobby'/>" % room)
        e = b.wait(lambda s: is_pres(s, from_=room + '/bobby', type_='error'))
        self.assertEqual(err(e), ('modify', 'not-acceptable'))
        # registration=false: not-allowed
        r = c.iq('get', "<query xmlns='%s'/>" % NS_REGISTER, to=room)
        self.assertEqual(err(r)[1], 'not-allowed')
        # reservednick: carol, a member with reserved nick 'caro', must use it
        r = self.admin(a, room, "<item affiliation='member' jid='carol@%s' nick='caro'/>" % DOMAIN)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.assertEqual(self.join_error(c, room, 'carol'), ('modify', 'not-acceptable'))
        self.enter(c, room, 'caro')
        # maxusers 20 took effect (seen through the form above) and the room is listed
        r = c.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=MUC)
        self.assertIn(room, [i.get('jid') for i in r.iter(q(NS_DISCO_ITEMS, 'item'))])

    def test_invalid_values_change_nothing(self):
        room, a, b, c = self.three('inval')
        before = self.config_values(a, room)
        for fields in ({'muc#roomconfig_roomname': 'X', 'muc#roomconfig_publicroom': 'maybe'},
                       {'muc#roomconfig_roomname': 'X', 'muc#roomconfig_maxusers': 'lots'},
                       {'muc#roomconfig_roomname': 'X', 'muc#roomconfig_allowpm': 'everybody'},
                       {'muc#roomconfig_roomname': 'X', 'muc#roomconfig_whois': 'nobody'},
                       {'muc#roomconfig_roomname': 'X', 'muc#roomconfig_roomowners': ['not a jid@@']},
                       {'muc#roomconfig_roomname': 'X', 'muc#roomconfig_roomowners': []},
                       {'muc#roomconfig_roomname': 'X', 'muc#roomconfig_presencebroadcast': ['king']},
                       {'muc#roomconfig_roomname': 'X', 'muc#roomconfig_passwordprotectedroom': True},
                       {'muc#roomconfig_roomname': 'X', 'muc#maxhistoryfetch': '-3'}):
            r = self.configure(a, room, fields)
            self.assertEqual(err(r), ('modify', 'not-acceptable'), '%s: %s' % (fields, to_str(r)))
        self.assertEqual(self.config_values(a, room), before)
        # malformed forms: bad-request
        for payload in ("<x xmlns='%s' type='form'/>" % NS_XDATA,
                        "<x xmlns='%s' type='submit'><field><value>1</value></field></x>" % NS_XDATA,
                        "<x xmlns='%s' type='submit'>%s</x>" % (NS_XDATA, field_xml('FORM_TYPE', 'urn:other')),
                        "<nothing xmlns='urn:x'/>"):
            r = a.iq('set', "<query xmlns='%s'>%s</query>" % (NS_MUC_OWNER, payload), to=room)
            self.assertEqual(err(r), ('modify', 'bad-request'), payload)
        # from a non-owner: forbidden, for get and set
        r = b.iq('get', "<query xmlns='%s'/>" % NS_MUC_OWNER, to=room)
        self.assertEqual(err(r), ('auth', 'forbidden'))
        r = self.configure(c, room, {'muc#roomconfig_roomname': 'Mine'})
        self.assertEqual(err(r), ('auth', 'forbidden'))
        self.assertEqual(self.config_values(a, room), before)
        # a valid change tells the occupants (104)
        self.assertEqual(self.configure(a, room, {'muc#roomconfig_roomname': 'Renamed'}).get('type'), 'result')
        for x in (b, c):
            m = x.wait(lambda s: is_msg(s, from_=room, type_='groupchat') and 104 in codes(s))

    def test_cancel_destroys_new_room(self):
        a, b, c = self.client('alice'), self.client('bob'), self.client('carol')
        room = room_jid('cancelled')
        self.join(a, room, 'A')
        r = a.iq('set', "<query xmlns='%s'><x xmlns='%s' type='cancel'/></query>" % (NS_MUC_OWNER, NS_XDATA),
                 to=room)
        self.assertEqual(r.get('type'), 'result')
        a.wait(lambda s: is_pres(s, from_=room + '/A', type_='unavailable'))
        s = self.join(b, room, 'B')
        self.assertIn(201, codes(s))  # a new room, now b's
        self.assertEqual(item(s).get('affiliation'), 'owner')
        self.assertEqual(self.join_error(c, room, 'C'), ('cancel', 'item-not-found'))

    def test_password_membersonly_maxusers_ban(self):
        a, b, c, d, e = (self.client(u) for u in ('alice', 'bob', 'carol', 'dave', 'eve'))
        room = self.create(a, 'gates', 'A', {'muc#roomconfig_passwordprotectedroom': True,
                                             'muc#roomconfig_roomsecret': 'sesame',
                                             'muc#roomconfig_maxusers': '3'})
        self.assertEqual(self.join_error(b, room, 'B'), ('auth', 'not-authorized'))
        self.assertEqual(self.join_error(b, room, 'B', password='wrong'), ('auth', 'not-authorized'))
        self.enter(b, room, 'B', password='sesame')
        self.enter(c, room, 'C', password='sesame')
        self.assertEqual(self.join_error(d, room, 'D', password='sesame'), ('cancel', 'service-unavailable'))
        # members-only: outsiders need registration
        self.assertEqual(self.configure(a, room, {'muc#roomconfig_membersonly': True,
                                                  'muc#roomconfig_maxusers': 'none'}).get('type'), 'result')
        # b and c were not members: removed with 322
        for x, n in ((b, 'B'), (c, 'C')):
            s = self.pres_from(x, room, n, type_='unavailable', code=322)
        self.assertEqual(self.join_error(e, room, 'E', password='sesame'), ('auth', 'registration-required'))
        self.assertEqual(self.admin(a, room, "<item affiliation='member' jid='eve@%s'/>" % DOMAIN).get('type'),
                         'result')
        self.enter(e, room, 'E', password='sesame')
        # outcast: forbidden
        self.assertEqual(self.admin(a, room, "<item affiliation='outcast' jid='dave@%s'><reason>spam</reason></item>"
                                    % DOMAIN).get('type'), 'result')
        self.assertEqual(self.join_error(d, room, 'D', password='sesame'), ('auth', 'forbidden'))


# ---------------------------------------------------------------------------
# 4. Roles and affiliations


class TestRolesAffiliations(MucTestCase):

    def test_admin_batch_that_kicks_the_actor_first(self):
        # Regression: the actor's occupant was freed by the first item (a self-kick) and its
        # nick read for the second (heap-use-after-free, any room owner could crash hearthd).
        room, a, b, c = self.three('selfkick')
        r = self.admin(a, room, "<item nick='Alice' role='none'/><item nick='Bob' role='none'/>")
        self.assertEqual(r.get('type'), 'result', to_str(r))
        self.pres_from(c, room, 'Alice', type_='unavailable', code=307)
        self.pres_from(c, room, 'Bob', type_='unavailable', code=307)
        self.assertEqual(c.ping().get('type'), 'result')  # the server is still there

    def test_kick(self):
        room, a, b, c = self.three('kick')
        r = self.admin(a, room, "<item nick='Carol' role='none'><reason>noise</reason></item>")
        self.assertEqual(r.get('type'), 'result', to_str(r))
        for x in (a, b, c):
            s = self.pres_from(x, room, 'Carol', type_='unavailable', code=307)
            self.assertEqual(item(s).get('role'), 'none')
            self.assertEqual(item(s).findtext(q(NS_MUC_USER, 'reason')), 'noise')
            actor = item(s).find(q(NS_MUC_USER, 'actor'))
            self.assertEqual(actor.get('nick'), 'Alice')
            self.assertEqual(110 in codes(s), x is c)
        # a participant cannot kick
        r = self.admin(b, room, "<item nick='Alice' role='none'/>")
        self.assertEqual(err(r), ('auth', 'forbidden'))
        # a moderator cannot kick an owner
        self.assertEqual(self.admin(a, room, "<item affiliation='admin' jid='bob@%s'/>" % DOMAIN).get('type'),
                         'result')
        s = self.pres_from(b, room, 'Bob', code=110)
        self.assertEqual((item(s).get('affiliation'), item(s).get('role')), ('admin', 'moderator'))
        r = self.admin(b, room, "<item nick='Alice' role='none'/>")
        self.assertEqual(err(r), ('cancel', 'not-allowed'))

    def test_ban_and_unban(self):
        room, a, b, c = self.three('ban')
        r = self.admin(a, room, "<item affiliation='outcast' jid='carol@%s'><reason>bye</reason></item>" % DOMAIN)
        self.assertEqual(r.get('type'), 'result')
        for x in (a, b, c):
            s = self.pres_from(x, room, 'Carol', type_='unavailable', code=301)
            self.assertEqual(item(s).get('affiliation'), 'outcast')
        self.assertEqual(self.join_error(c, room, 'Carol'), ('auth', 'forbidden'))
        r = a.iq_ok('get', "<query xmlns='%s'><item affiliation='outcast'/></query>" % NS_MUC_ADMIN, to=room)
        items = r.findall('.//' + q(NS_MUC_ADMIN, 'item'))
        self.assertEqual([(i.get('jid'), i.findtext(q(NS_MUC_ADMIN, 'reason'))) for i in items],
                         [('carol@' + DOMAIN, 'bye')])
        # a participant may not read or change the ban list
        r = b.iq('get', "<query xmlns='%s'><item affiliation='outcast'/></query>" % NS_MUC_ADMIN, to=room)
        self.assertEqual(err(r), ('auth', 'forbidden'))
        self.assertEqual(self.admin(a, room, "<item affiliation='none' jid='carol@%s'/>" % DOMAIN).get('type'),
                         'result')
        self.enter(c, room, 'Carol')

    def test_moderated_voice(self):
        room, a, b, c = self.three('moderated', fields={'muc#roomconfig_moderatedroom': True})
        d = self.client('dave')
        s = self.enter(d, room, 'Dave')
        self.assertEqual(item(s).get('role'), 'visitor')
        d.send("<message to='%s' type='groupchat' id='v1'><body>may I?</body></message>" % room)
        e = d.wait(lambda s: is_msg(s, id_='v1', type_='error'))
        self.assertEqual(err(e), ('auth', 'forbidden'))
        # voice
        self.assertEqual(self.admin(a, room, "<item nick='Dave' role='participant'/>").get('type'), 'result')
        for x in (a, b, c, d):
            x.wait(lambda s: is_pres(s, from_=room + '/Dave') and item(s).get('role') == 'participant',
                   what='dave with voice')
        self.say(d, room, 'thanks')
        for x in (a, b, c):
            self.got_groupchat(x, room, 'Dave', 'thanks')
        # voice list for moderators; participants may not ask
        r = a.iq_ok('get', "<query xmlns='%s'><item role='participant'/></query>" % NS_MUC_ADMIN, to=room)
        nicks = sorted(i.get('nick') for i in r.findall('.//' + q(NS_MUC_ADMIN, 'item')))
        self.assertIn('Dave', nicks)
        r = d.iq('get', "<query xmlns='%s'><item role='participant'/></query>" % NS_MUC_ADMIN, to=room)
        self.assertEqual(err(r), ('auth', 'forbidden'))
        # revoke
        self.assertEqual(self.admin(a, room, "<item nick='Dave' role='visitor'/>").get('type'), 'result')
        self.pres_from(d, room, 'Dave', code=110)

    def test_member_admin_owner_changes(self):
        room, a, b, c = self.three('affs')
        # admin granted by an owner only
        r = self.admin(b, room, "<item affiliation='admin' jid='carol@%s'/>" % DOMAIN)
        self.assertEqual(err(r), ('auth', 'forbidden'))
        self.assertEqual(self.admin(a, room, "<item affiliation='member' jid='bob@%s' nick='Bob'/>" % DOMAIN)
                         .get('type'), 'result')
        for x in (a, b, c):
            s = self.pres_from(x, room, 'Bob')
            self.assertEqual(item(s).get('affiliation'), 'member')
        self.assertEqual(self.admin(a, room, "<item affiliation='owner' jid='carol@%s'/>" % DOMAIN)
                         .get('type'), 'result')
        s = self.pres_from(c, room, 'Carol', code=110)
        self.assertEqual((item(s).get('affiliation'), item(s).get('role')), ('owner', 'moderator'))
        r = c.iq_ok('get', "<query xmlns='%s'><item affiliation='owner'/></query>" % NS_MUC_ADMIN, to=room)
        self.assertEqual(sorted(i.get('jid') for i in r.findall('.//' + q(NS_MUC_ADMIN, 'item'))),
                         ['alice@' + DOMAIN, 'carol@' + DOMAIN])
        r = a.iq_ok('get', "<query xmlns='%s'><item affiliation='member'/></query>" % NS_MUC_ADMIN, to=room)
        self.assertEqual([(i.get('jid'), i.get('nick')) for i in r.findall('.//' + q(NS_MUC_ADMIN, 'item'))],
                         [('bob@' + DOMAIN, 'Bob')])
        # the last owner cannot step down
        self.assertEqual(self.admin(c, room, "<item affiliation='none' jid='carol@%s'/>" % DOMAIN).get('type'),
                         'result')
        r = self.admin(a, room, "<item affiliation='admin' jid='alice@%s'/>" % DOMAIN)
        self.assertEqual(err(r), ('cancel', 'conflict'))
        # a reserved nick is taken only by its owner
        d = self.client('dave')
        b.send("<presence to='%s/Bob' type='unavailable'/>" % room)
        self.pres_from(b, room, 'Bob', type_='unavailable', code=110)
        self.assertEqual(self.join_error(d, room, 'Bob'), ('cancel', 'conflict'))

    def test_private_messages_allowpm(self):
        room, a, b, c = self.three('pm')
        b.send("<message to='%s/Carol' type='chat' id='pm1'><body>psst</body></message>" % room)
        m = c.wait(lambda s: is_msg(s, id_='pm1'))
        self.assertEqual(m.get('from'), room + '/Bob')
        self.assertIsNotNone(muc_x(m))
        self.assertEqual(self.configure(a, room, {'muc#roomconfig_allowpm': 'moderators'}).get('type'), 'result')
        b.send("<message to='%s/Carol' type='chat' id='pm2'><body>again</body></message>" % room)
        e = b.wait(lambda s: is_msg(s, id_='pm2', type_='error'))
        self.assertEqual(err(e), ('auth', 'forbidden'))
        a.send("<message to='%s/Carol' type='chat' id='pm3'><body>mod</body></message>" % room)
        c.wait(lambda s: is_msg(s, id_='pm3'))
        # to no one
        a.send("<message to='%s/Nobody' type='chat' id='pm4'><body>?</body></message>" % room)
        e = a.wait(lambda s: is_msg(s, id_='pm4', type_='error'))
        self.assertEqual(err(e), ('cancel', 'item-not-found'))


# ---------------------------------------------------------------------------
# 5. Invitations


class TestInvitations(MucTestCase):

    def test_mediated_invite_and_decline(self):
        a, b, c = self.client('alice'), self.client('bob'), self.client('carol')
        room = self.create(a, 'inv', 'Alice', {'muc#roomconfig_passwordprotectedroom': True,
                                              'muc#roomconfig_roomsecret': 'cauldron'})
        a.send("<message to='%s' id='i1'><x xmlns='%s'><invite to='bob@%s'><reason>join us</reason></invite>"
               "</x></message>" % (room, NS_MUC_USER, DOMAIN))
        m = b.wait(lambda s: is_msg(s, from_=room) and muc_x(s) is not None, what='invitation')
        inv = muc_x(m).find(q(NS_MUC_USER, 'invite'))
        self.assertEqual(inv.get('from'), a.jid)
        self.assertEqual(inv.findtext(q(NS_MUC_USER, 'reason')), 'join us')
        self.assertEqual(muc_x(m).findtext(q(NS_MUC_USER, 'password')), 'cauldron')
        # bob declines; alice hears it with the reason
        b.send("<message to='%s'><x xmlns='%s'><decline to='%s'><reason>busy</reason></decline></x></message>"
               % (room, NS_MUC_USER, 'alice@' + DOMAIN))
        m = a.wait(lambda s: is_msg(s, from_=room) and muc_x(s) is not None
                   and muc_x(s).find(q(NS_MUC_USER, 'decline')) is not None, what='decline')
        dec = muc_x(m).find(q(NS_MUC_USER, 'decline'))
        self.assertEqual(dec.get('from'), 'bob@' + DOMAIN)
        self.assertEqual(dec.findtext(q(NS_MUC_USER, 'reason')), 'busy')
        # carol, not in the room, may not invite
        c.send("<message to='%s' id='i2'><x xmlns='%s'><invite to='bob@%s'/></x></message>"
               % (room, NS_MUC_USER, DOMAIN))
        e = c.wait(lambda s: is_msg(s, id_='i2', type_='error'))
        self.assertEqual(err(e), ('modify', 'not-acceptable'))

    def test_members_only_invite_adds_member(self):
        a, b, c = self.client('alice'), self.client('bob'), self.client('carol')
        room = self.create(a, 'club', 'Alice', {'muc#roomconfig_membersonly': True,
                                               'muc#roomconfig_allowinvites': True})
        self.assertEqual(self.join_error(b, room, 'Bob'), ('auth', 'registration-required'))
        a.send("<message to='%s'><x xmlns='%s'><invite to='bob@%s'/></x></message>" % (room, NS_MUC_USER, DOMAIN))
        b.wait(lambda s: is_msg(s, from_=room) and muc_x(s) is not None, what='invitation')
        self.enter(b, room, 'Bob')
        # without allowinvites, only admins invite
        self.assertEqual(self.configure(a, room, {'muc#roomconfig_allowinvites': False}).get('type'), 'result')
        b.send("<message to='%s' id='i3'><x xmlns='%s'><invite to='carol@%s'/></x></message>"
               % (room, NS_MUC_USER, DOMAIN))
        e = b.wait(lambda s: is_msg(s, id_='i3', type_='error'))
        self.assertEqual(err(e), ('auth', 'forbidden'))
        self.assertEqual(self.join_error(c, room, 'Carol'), ('auth', 'registration-required'))

    def test_direct_invitation_passes_through(self):
        a, b, c = self.client('alice'), self.client('bob'), self.client('carol')
        room = self.create(a, 'direct', 'Alice')
        for x in (b, c):
            a.send("<message to='%s' id='d-%s'><x xmlns='%s' jid='%s' reason='come'/></message>"
                   % (x.jid, x.user, NS_CONFERENCE, room))
            m = x.wait(lambda s: is_msg(s, id_='d-' + x.user), what='direct invitation')
            d = m.find(q(NS_CONFERENCE, 'x'))
            self.assertEqual((d.get('jid'), d.get('reason')), (room, 'come'))
            self.assertEqual(m.get('from'), a.jid)
            self.enter(x, room, x.user)


# ---------------------------------------------------------------------------
# 6. History, logging, persistence


class TestHistoryPersistence(MucTestCase):

    def test_history_on_join(self):
        room, a, b, c = self.three('hist')
        for i in range(5):
            self.say(a if i % 2 == 0 else b, room, 'm%d' % i)
        # a and b live on different workers: the room's order is what every occupant sees
        order = [c.wait(lambda s: is_msg(s, type_='groupchat')).findtext(q(NS_CLIENT, 'body')) for i in range(5)]
        self.assertEqual(sorted(order), ['m0', 'm1', 'm2', 'm3', 'm4'])
        d = self.client('dave')
        self.join(d, room, 'Dave')
        got = []
        while True:
            m = d.wait(lambda s: is_msg(s, type_='groupchat') and s.get('from', '').startswith(room))
            if m.find(q(NS_CLIENT, 'subject')) is not None:
                break
            delay = m.find(q(NS_DELAY, 'delay'))
            self.assertIsNotNone(delay, to_str(m))
            self.assertEqual(delay.get('from'), room)
            self.assertRegex(delay.get('stamp'), DELAY_STAMP)
            got.append(m.findtext(q(NS_CLIENT, 'body')))
        self.assertEqual(got, order)

        def history(client, nick, **h):
            self.join(client, room, nick, history=h)
            out = []
            while True:
                m = client.wait(lambda s: is_msg(s, type_='groupchat') and s.get('from', '').startswith(room))
                if m.find(q(NS_CLIENT, 'subject')) is not None:
                    return out
                out.append(m.findtext(q(NS_CLIENT, 'body')))
        e = self.client('eve')
        self.assertEqual(history(e, 'E1', maxstanzas='2'), order[3:])
        e.send("<presence to='%s/E1' type='unavailable'/>" % room)
        self.pres_from(e, room, 'E1', type_='unavailable', code=110)
        self.assertEqual(history(e, 'E2', maxchars='0'), [])
        e.send("<presence to='%s/E2' type='unavailable'/>" % room)
        self.pres_from(e, room, 'E2', type_='unavailable', code=110)
        self.assertEqual(history(e, 'E3', since='2999-01-01T00:00:00Z'), [])
        e.send("<presence to='%s/E3' type='unavailable'/>" % room)
        self.pres_from(e, room, 'E3', type_='unavailable', code=110)
        self.assertEqual(len(history(e, 'E4', seconds='3600')), 5)

    def test_persistent_room_survives_restart(self):
        a, b, c = self.client('alice'), self.client('bob'), self.client('carol')
        room = self.create(a, 'keep', 'Alice', {'muc#roomconfig_persistentroom': True,
                                               'muc#roomconfig_roomname': 'Kept room',
                                               'muc#roomconfig_enablelogging': True,
                                               'muc#roomconfig_membersonly': True})
        self.assertEqual(self.admin(a, room, "<item affiliation='member' jid='bob@%s' nick='Bobby'/>" % DOMAIN)
                         .get('type'), 'result')
        self.assertEqual(self.admin(a, room, "<item affiliation='admin' jid='carol@%s'/>" % DOMAIN)
                         .get('type'), 'result')
        a.send("<message to='%s' type='groupchat'><subject>Kept subject</subject></message>" % room)
        self.subject_of(a, room)
        self.say(a, room, 'before restart')
        self.got_groupchat(a, room, 'Alice', 'before restart')
        a.sync()
        self.srv.restart()
        a, b, c = self.client('alice'), self.client('bob'), self.client('carol')
        vals = self.config_values(a, room)
        self.assertEqual(vals['muc#roomconfig_roomname'], ['Kept room'])
        self.assertEqual(vals['muc#roomconfig_membersonly'], ['1'])
        s = self.join(b, room, 'Bobby')
        self.assertEqual(item(s).get('affiliation'), 'member')
        self.assertIn(170, codes(s))
        m = b.wait(lambda s: is_msg(s, type_='groupchat') and s.findtext(q(NS_CLIENT, 'body')) == 'before restart',
                   what='history from the log')
        self.assertIsNotNone(m.find(q(NS_DELAY, 'delay')))
        m = self.subject_of(b, room)
        self.assertEqual(m.findtext(q(NS_CLIENT, 'subject')), 'Kept subject')
        s = self.enter(c, room, 'Carol')
        self.assertEqual(item(s).get('affiliation'), 'admin')
        d = self.client('dave')
        self.assertEqual(self.join_error(d, room, 'Dave'), ('auth', 'registration-required'))
        r = d.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_ITEMS, to=MUC)
        self.assertIn(room, [i.get('jid') for i in r.iter(q(NS_DISCO_ITEMS, 'item'))])
        # made temporary again: forgotten at the next restart
        self.assertEqual(self.configure(a, room, {'muc#roomconfig_persistentroom': False}).get('type'), 'result')
        self.srv.restart()
        a = self.client('alice')
        r = a.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)
        self.assertEqual(err(r), ('cancel', 'item-not-found'))

    def test_temporary_room_gone_after_restart_and_self_ping(self):
        room, a, b, c = self.three('ping')
        # XEP-0410: joined occupants get a result, others not-acceptable
        r = b.iq('get', "<ping xmlns='%s'/>" % NS_PING, to=room + '/Bob')
        self.assertEqual(r.get('type'), 'result', to_str(r))
        d = self.client('dave')
        r = d.iq('get', "<ping xmlns='%s'/>" % NS_PING, to=room + '/Bob')
        self.assertEqual(err(r), ('modify', 'not-acceptable'))
        r = b.iq('get', "<ping xmlns='%s'/>" % NS_PING, to=room + '/Nobody')
        self.assertEqual(err(r)[1], 'item-not-found')
        # after a restart, the self-ping says not joined any more
        self.srv.restart()
        b = self.client('bob')
        r = b.iq('get', "<ping xmlns='%s'/>" % NS_PING, to=room + '/Bob')
        self.assertEqual(err(r)[1] in ('not-acceptable', 'item-not-found'), True, to_str(r))


# ---------------------------------------------------------------------------
# 7. Destruction


class TestDestroy(MucTestCase):

    def test_destroy_with_alternate_venue(self):
        room, a, b, c = self.three('doomed', fields={'muc#roomconfig_persistentroom': True})
        r = b.iq('set', "<query xmlns='%s'><destroy jid='%s'/></query>" % (NS_MUC_OWNER, room_jid('new')),
                 to=room)
        self.assertEqual(err(r), ('auth', 'forbidden'))
        r = a.iq('set', "<query xmlns='%s'><destroy jid='%s'><reason>moved</reason></destroy></query>"
                 % (NS_MUC_OWNER, room_jid('new')), to=room)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        for x, n in ((a, 'Alice'), (b, 'Bob'), (c, 'Carol')):
            s = self.pres_from(x, room, n, type_='unavailable')
            d = muc_x(s).find(q(NS_MUC_USER, 'destroy'))
            self.assertEqual(d.get('jid'), room_jid('new'))
            self.assertEqual(d.findtext(q(NS_MUC_USER, 'reason')), 'moved')
        r = b.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)
        self.assertEqual(err(r), ('cancel', 'item-not-found'))
        self.srv.restart()
        b = self.client('bob')
        r = b.iq('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)
        self.assertEqual(err(r), ('cancel', 'item-not-found'))


# ---------------------------------------------------------------------------
# 7b. Voice requests (§7.13) and their approval (§8.6)


class TestVoiceRequests(MucTestCase):

    def room_sync(self, c, room):
        """A round trip through the room: what it sent c before is in c's backlog."""
        c.iq_ok('get', "<query xmlns='%s'/>" % NS_DISCO_INFO, to=room)

    def test_voice_request_round_trip(self):
        # alice owns a moderated room, carol is made admin (a second moderator), bob and dave
        # are visitors
        room, a, b, c = self.three('voicereq', fields={'muc#roomconfig_moderatedroom': True})
        self.assertEqual(self.admin(a, room, "<item affiliation='admin' jid='carol@%s'/>" % DOMAIN).get('type'),
                         'result')
        for x in (a, b, c):
            x.wait(lambda s: is_pres(s, from_=room + '/Carol') and item(s).get('role') == 'moderator',
                   what='carol as moderator')
        d = self.client('dave')
        self.assertEqual(item(self.enter(d, room, 'Dave')).get('role'), 'visitor')
        self.settle(a, b, c, d)
        for x in (a, b, c, d):
            x.take()
        b.send("<message to='%s' id='vr1'>%s</message>" % (room, voice_form({'muc#role': 'participant'})))
        # every moderator gets the approval form, naming bob
        for x in (a, c):
            s = x.wait(lambda s: is_msg(s, from_=room) and voice_approval(s) is not None,
                       what='voice approval form')
            self.assertEqual(s.find(q(NS_XDATA, 'x')).get('type'), 'form', to_str(s))
            f = voice_approval(s)
            self.assertEqual(f['muc#role'], ['participant'])
            self.assertEqual(f['muc#jid'], [b.jid])
            self.assertEqual(f['muc#roomnick'], ['Bob'])
            self.assertIn(f['muc#request_allow'], (['false'], ['0']))
        # visitors do not, nor does the requester
        for x in (b, d):
            self.room_sync(x, room)
            x.expect_none(lambda s: is_msg(s) and voice_approval(s) is not None, 'approval form', sync=False)
        # carol denies: nothing changes, bob still may not speak
        c.send("<message to='%s' id='deny'>%s</message>"
               % (room, voice_form({'muc#role': 'participant', 'muc#jid': b.jid, 'muc#roomnick': 'Bob',
                                    'muc#request_allow': 'false'})))
        self.room_sync(c, room)
        b.send("<message to='%s' type='groupchat' id='v1'><body>may I?</body></message>" % room)
        e = b.wait(lambda s: is_msg(s, id_='v1', type_='error'))
        self.assertEqual(err(e), ('auth', 'forbidden'))
        # a visitor cannot approve (itself or anyone)
        d.send("<message to='%s' id='self'>%s</message>"
               % (room, voice_form({'muc#role': 'participant', 'muc#roomnick': 'Dave',
                                    'muc#request_allow': 'true'})))
        e = d.wait(lambda s: is_msg(s, id_='self', type_='error'))
        self.assertEqual(err(e), ('auth', 'forbidden'))
        # alice approves: bob's new role goes to everyone, as for a voice grant
        a.send("<message to='%s' id='ok'>%s</message>"
               % (room, voice_form({'muc#role': 'participant', 'muc#jid': b.jid, 'muc#roomnick': 'Bob',
                                    'muc#request_allow': 'true'})))
        for x in (a, b, c, d):
            s = x.wait(lambda s: is_pres(s, from_=room + '/Bob') and item(s).get('role') == 'participant',
                       what='bob with voice')
            self.assertIsNone(s.get('type'), to_str(s))
            if x is b:
                self.assertIn(110, codes(s))
        self.say(b, room, 'thanks')
        for x in (a, c, d):
            self.got_groupchat(x, room, 'Bob', 'thanks')
        # an approval for someone who already has voice changes nothing
        for x in (a, c, d):
            x.take()
        c.send("<message to='%s' id='again'>%s</message>"
               % (room, voice_form({'muc#jid': b.jid, 'muc#request_allow': '1'})))
        self.room_sync(c, room)
        for x in (a, c, d):
            self.room_sync(x, room)
            x.expect_none(lambda s: is_pres(s, from_=room + '/Bob'), 'presence of bob', sync=False)
        # bob has voice now: another request is refused
        b.send("<message to='%s' id='vr2'>%s</message>" % (room, voice_form({'muc#role': 'participant'})))
        e = b.wait(lambda s: is_msg(s, id_='vr2', type_='error'))
        self.assertEqual(err(e), ('cancel', 'not-allowed'))

    def test_voice_request_refusals(self):
        room, a, b, c = self.three('openvoice')
        # an unmoderated room: everyone has voice, there is nothing to request
        b.send("<message to='%s' id='u1'>%s</message>" % (room, voice_form({'muc#role': 'participant'})))
        e = b.wait(lambda s: is_msg(s, id_='u1', type_='error'))
        self.assertEqual(err(e), ('cancel', 'not-allowed'))
        # not an occupant
        d = self.client('dave')
        d.send("<message to='%s' id='u2'>%s</message>" % (room, voice_form({'muc#role': 'participant'})))
        e = d.wait(lambda s: is_msg(s, id_='u2', type_='error'))
        self.assertEqual(err(e), ('modify', 'not-acceptable'))
        # moderated now (occupants keep their roles), carol made a visitor: a role other than
        # participant, a form not submitted and a second request too soon are refused
        self.assertEqual(self.configure(a, room, {'muc#roomconfig_moderatedroom': True}).get('type'), 'result')
        self.assertEqual(self.admin(a, room, "<item nick='Carol' role='visitor'/>").get('type'), 'result')
        self.pres_from(c, room, 'Carol', code=110)
        c.send("<message to='%s' id='u3'>%s</message>" % (room, voice_form({'muc#role': 'moderator'})))
        e = c.wait(lambda s: is_msg(s, id_='u3', type_='error'))
        self.assertEqual(err(e), ('modify', 'bad-request'))
        c.send("<message to='%s' id='u4'>%s</message>" % (room, voice_form({'muc#role': 'participant'}, 'form')))
        e = c.wait(lambda s: is_msg(s, id_='u4', type_='error'))
        self.assertEqual(err(e), ('modify', 'bad-request'))
        c.send("<message to='%s' id='u5'>%s</message>" % (room, voice_form({'muc#role': 'participant'})))
        s = a.wait(lambda s: is_msg(s, from_=room) and voice_approval(s) is not None, what='approval form')
        self.assertEqual(voice_approval(s)['muc#roomnick'], ['Carol'])
        c.send("<message to='%s' id='u6'>%s</message>" % (room, voice_form({'muc#role': 'participant'})))
        e = c.wait(lambda s: is_msg(s, id_='u6', type_='error'))
        self.assertEqual(err(e), ('wait', 'resource-constraint'))
        # bob (a participant) approving is refused; a moderator naming nobody is a bad request
        b.send("<message to='%s' id='u7'>%s</message>"
               % (room, voice_form({'muc#roomnick': 'Carol', 'muc#request_allow': 'true'})))
        e = b.wait(lambda s: is_msg(s, id_='u7', type_='error'))
        self.assertEqual(err(e), ('auth', 'forbidden'))
        a.send("<message to='%s' id='u8'>%s</message>" % (room, voice_form({'muc#request_allow': 'true'})))
        e = a.wait(lambda s: is_msg(s, id_='u8', type_='error'))
        self.assertEqual(err(e), ('modify', 'bad-request'))
        a.send("<message to='%s' id='u9'>%s</message>"
               % (room, voice_form({'muc#roomnick': 'Nobody', 'muc#request_allow': 'true'})))
        e = a.wait(lambda s: is_msg(s, id_='u9', type_='error'))
        self.assertEqual(err(e), ('cancel', 'item-not-found'))
        # the approval by nick alone works
        a.send("<message to='%s' id='u10'>%s</message>"
               % (room, voice_form({'muc#roomnick': 'Carol', 'muc#request_allow': 'true'})))
        for x in (a, b, c):
            x.wait(lambda s: is_pres(s, from_=room + '/Carol') and item(s).get('role') == 'participant',
                   what='carol with voice')


# ---------------------------------------------------------------------------
# 7c. Shutdown (status 332)


def before_stream_error(c, timeout=10):
    """The stanzas c receives before a <stream:error/>, which is left for assert_stream_error."""
    got = c.take()
    deadline = time.monotonic() + timeout
    while True:
        while not c.events and not c.eof:
            if not c._recv_some(deadline) and time.monotonic() >= deadline:
                raise AssertionError('%s: no stream error within %.0fs; got %s' % (c.jid, timeout, c.dump(got)))
        if not c.events:
            return got
        kind, elem = c.events[0]
        if kind == 'stanza' and elem.tag == q(NS_STREAM, 'error'):
            return got
        c.events.pop(0)
        if kind == 'stanza':
            got.append(elem)


class TestShutdown(MucTestCase):

    def setUp(self):
        # Stopped by the test: closed (not asserted alive) at cleanup.
        self.srv = Server(users=self.users)
        self.srv.start()
        self.addCleanup(self.srv.close)

    def test_occupants_get_332_at_shutdown(self):
        n = int(self.srv.settings['server.workers'])
        home = lambda jid: fnv1a(jid) % n
        alice_home = home('alice@' + DOMAIN)
        name = next(x for x in ('shut%d' % i for i in range(1000)) if home(room_jid(x)) == alice_home)
        # an occupant homed with the room, and one elsewhere when there is one
        others = [u for u in ('bob', 'carol', 'dave') if home(u + '@' + DOMAIN) != alice_home][:1]
        others += [u for u in ('bob', 'carol', 'dave') if home(u + '@' + DOMAIN) == alice_home][:1]
        a = self.client('alice')
        room = self.create(a, name, 'Alice')
        occ = [(a, 'Alice', True)]
        for u in others:
            x = self.client(u)
            self.enter(x, room, u.capitalize())
            occ.append((x, u.capitalize(), home(u + '@' + DOMAIN) == alice_home))
        self.settle(*[x for x, _, _ in occ])
        for x, _, _ in occ:
            x.take()
        self.srv.terminate()
        for x, nick, same in occ:
            got = before_stream_error(x)
            mine = [s for s in got if is_pres(s, from_='%s/%s' % (room, nick), type_='unavailable')]
            if same:
                self.assertEqual(len(mine), 1, x.dump(got))
            for s in mine:  # best effort for occupants homed elsewhere; right when it arrives
                self.assertEqual(codes(s), {110, 332}, to_str(s))
                self.assertEqual(item(s).get('role'), 'none', to_str(s))
            x.assert_stream_error('system-shutdown', timeout=10)
        self.assertEqual(self.srv.wait_exit(10), 0)
        self.assertRegex(self.srv.current_log(), r'told of the shutdown \(332\)')


# ---------------------------------------------------------------------------
# 8. Bad input


class TestBadInput(MucTestCase):

    def test_non_occupant_and_wrong_types(self):
        room, a, b, c = self.three('bad')
        d = self.client('dave')
        d.send("<message to='%s' type='groupchat' id='b1'><body>hi</body></message>" % room)
        e = d.wait(lambda s: is_msg(s, id_='b1', type_='error'))
        self.assertEqual(err(e), ('modify', 'not-acceptable'))
        d.send("<message to='%s/Bob' type='chat' id='b2'><body>hi</body></message>" % room)
        e = d.wait(lambda s: is_msg(s, id_='b2', type_='error'))
        self.assertEqual(err(e), ('modify', 'not-acceptable'))
        b.send("<message to='%s/Carol' type='groupchat' id='b3'><body>hi</body></message>" % room)
        e = b.wait(lambda s: is_msg(s, id_='b3', type_='error'))
        self.assertEqual(err(e), ('modify', 'bad-request'))
        # a message to a room that does not exist
        d.send("<message to='%s' type='groupchat' id='b4'><body>hi</body></message>" % room_jid('none'))
        e = d.wait(lambda s: is_msg(s, id_='b4', type_='error'))
        self.assertEqual(err(e), ('cancel', 'item-not-found'))
        # join without a nick
        d.send("<presence to='%s'><x xmlns='%s'/></presence>" % (room, NS_MUC))
        e = d.wait(lambda s: is_pres(s, from_=room, type_='error'))
        self.assertEqual(err(e), ('modify', 'jid-malformed'))
        # admin items without role or affiliation
        r = self.admin(a, room, "<item nick='Bob'/>")
        self.assertEqual(err(r), ('modify', 'bad-request'))
        r = a.iq('set', "<query xmlns='%s'/>" % NS_MUC_ADMIN, to=room)
        self.assertEqual(err(r), ('modify', 'bad-request'))
        # nobody was disturbed
        for x in (a, b, c):
            x.expect_none(lambda s: is_msg(s, type_='groupchat') and s.findtext(q(NS_CLIENT, 'body')) == 'hi')

    def test_join_rate_limit(self):
        room, a, b, c = self.three('rate')
        self.assertEqual(self.configure(a, room, {'muc#roomconfig_roomsecret': 'right'}).get('type'), 'result')
        d = self.client('dave')
        n = 400
        for i in range(n):
            self.join_send(d, room, 'D%d' % i, password='wrong')
        conds = []
        for i in range(n):
            s = d.wait(lambda s, i=i: is_pres(s, from_='%s/D%d' % (room, i), type_='error'),
                       what='answer to join %d' % i)
            conds.append(err(s)[1])
        self.assertIn('not-authorized', conds)
        self.assertIn('resource-constraint', conds)
        self.assertLessEqual(conds.count('not-authorized'), 300)

    def test_ghost_removed_when_its_server_bounces(self):
        room, a, b, c = self.three('ghost')
        # an error presence from an occupant removes it (333)
        c.send("<presence to='%s/Carol' type='error'><error type='cancel'><gone xmlns='%s'/></error></presence>"
               % (room, NS_STANZAS))
        for x in (a, b):
            self.pres_from(x, room, 'Carol', type_='unavailable', code=333)

    def test_registration_and_reserved_nick(self):
        room, a, b, c = self.three('reg')
        r = b.iq_ok('get', "<query xmlns='%s'/>" % NS_REGISTER, to=room)
        self.assertIsNotNone(r.find('.//' + q(NS_XDATA, 'x')))
        form = "<x xmlns='%s' type='submit'>%s%s</x>" % (NS_XDATA, field_xml('FORM_TYPE', NS_MUC + '#register'),
                                                         field_xml('muc#register_roomnick', 'Bob'))
        r = b.iq('set', "<query xmlns='%s'>%s</query>" % (NS_REGISTER, form), to=room)
        self.assertEqual(r.get('type'), 'result', to_str(r))
        s = self.pres_from(a, room, 'Bob')
        self.assertEqual(item(s).get('affiliation'), 'member')
        # carol cannot register the same nick
        form2 = form.replace("'submit'>", "'submit'>", 1)
        r = c.iq('set', "<query xmlns='%s'>%s</query>" % (NS_REGISTER, form2), to=room)
        self.assertEqual(err(r), ('cancel', 'conflict'))
        # x-roomuser-item tells bob his reserved nick
        r = b.iq_ok('get', "<query xmlns='%s' node='x-roomuser-item'/>" % NS_DISCO_INFO, to=room)
        ident = r.find('.//' + q(NS_DISCO_INFO, 'identity'))
        self.assertEqual(ident.get('name'), 'Bob')
        r = b.iq_ok('get', "<query xmlns='%s'/>" % NS_REGISTER, to=room)
        self.assertIsNotNone(r.find('.//' + q(NS_REGISTER, 'registered')))


if __name__ == '__main__':
    main()
