"""MUC rooms through /api/v1/rooms against a live hearthd: created (with the XEP-0045 form's
fields and an owner), listed (stored rooms not in memory and occupied temporary ones, with q,
offset and limit), read with the same configuration form an XMPP owner gets, configured
(occupants told with status 104, a bad field refused naming it), affiliations changed (an
outcast occupant removed with 301, the last owner kept), destroyed (occupants get the destroy
presence), each error status, and the muc.default_* runtime settings applied to rooms created
after a change."""

import os
import sqlite3

from hearth import q, to_str, main, wait_for
from imlib import is_pres
from test_admin_api import Admin, basic
from test_muc import (MUC, NS_MUC_OWNER, NS_MUC_USER, NS_XDATA, MucTestCase, codes, item,
                      room_jid)


class RoomsCase(MucTestCase):
    def setUp(self):
        self.srv = self.start_server(admin__port=0, listeners=('c2s', 'admin'),
                                     admins={'root': 'rootpassword'})
        with open(os.path.join(self.srv.data_dir, 'api.key')) as f:
            self.api = Admin(self.srv, auth='Bearer ' + f.read().strip())

    def req(self, method, path, body=None, **kw):
        return self.api.req(method, '/api/v1' + path, body, **kw)

    def ok(self, res, status=200):
        code, _, doc = res
        self.assertEqual(code, status, doc)
        return doc

    def err(self, res, status):
        code, _, doc = res
        self.assertEqual(code, status, doc)
        self.assertEqual(doc['status'], status, doc)
        return doc['error']

    def stored_rooms(self):
        db = sqlite3.connect('file:%s?mode=ro' % os.path.join(self.srv.data_dir, 'hearth.db'),
                             uri=True)
        try:
            return {r[0] for r in db.execute("SELECT key FROM documents WHERE kind = 'muc.room'")}
        except sqlite3.OperationalError:
            return None
        finally:
            db.close()


class CreateAndReadTest(RoomsCase):
    def test_create_read_and_the_owner_form(self):
        doc = self.ok(self.req('POST', '/rooms', {
            'name': 'lounge', 'owner': 'alice',
            'config': {'muc#roomconfig_roomname': 'The Lounge',
                       'muc#roomconfig_roomdesc': 'sofas',
                       'muc#roomconfig_persistentroom': True,
                       'muc#roomconfig_maxusers': 20}}), 201)
        room = room_jid('lounge')
        self.assertEqual(doc['jid'], room)
        self.assertEqual((doc['name'], doc['description'], doc['persistent'], doc['public'],
                          doc['members_only'], doc['password_protected'], doc['occupants']),
                         ('The Lounge', 'sofas', True, True, False, False, []))
        self.assertEqual(doc['affiliations'],
                         [{'jid': 'alice@localhost', 'affiliation': 'owner', 'nick': None}])
        self.assertEqual(doc['config']['muc#roomconfig_roomname'], 'The Lounge')
        self.assertEqual(doc['config']['muc#roomconfig_maxusers'], '20')
        self.assertIsInstance(doc['config']['muc#roomconfig_roomowners'], list)
        # The same fields as the owner's form over XMPP, in the same order.
        a = self.client('alice')
        self.enter(a, room, 'Alice')
        r = a.iq_ok('get', "<query xmlns='%s'/>" % NS_MUC_OWNER, to=room)
        x = r.find('%s/%s' % (q(NS_MUC_OWNER, 'query'), q(NS_XDATA, 'x')))
        xmpp = [(f.get('var'), f.get('type') or 'text-single')
                for f in x.findall(q(NS_XDATA, 'field')) if f.get('var') not in (None, 'FORM_TYPE')]
        self.assertEqual([(f['var'], f['type']) for f in doc['fields']], xmpp)
        maxusers = [f for f in doc['fields'] if f['var'] == 'muc#roomconfig_maxusers'][0]
        self.assertIn({'label': '20', 'value': '20'}, maxusers['options'])
        self.assertEqual(maxusers['value'], '20')
        # Read back with its occupant, by localpart and by JID.
        got = self.ok(self.req('GET', '/rooms/lounge'))
        self.assertEqual(got['occupants'], [{'nick': 'Alice', 'jid': 'alice@localhost/r1',
                                             'role': 'moderator', 'affiliation': 'owner'}])
        self.assertEqual(self.ok(self.req('GET', '/rooms/' + room))['jid'], room)
        wait_for(lambda: room in self.stored_rooms(), 5, 'the room stored')

    def test_create_errors(self):
        doc = self.ok(self.req('POST', '/rooms', {'name': 'dup@' + MUC, 'owner': 'bob'}), 201)
        self.assertTrue(doc['persistent'])  # the API's rooms are persistent by default
        self.err(self.req('POST', '/rooms', {'name': 'dup', 'owner': 'bob'}), 409)
        # A room keeps an owner: with an API key one must be named; an administrator asking
        # with its password owns the room it makes.
        e = self.err(self.req('POST', '/rooms', {'name': 'ownerless'}), 400)
        self.assertIn('owner', e)
        doc = self.ok(self.api.req('POST', '/api/v1/rooms', {'name': 'rooted'},
                                   auth=basic('root', 'rootpassword')), 201)
        self.assertEqual(doc['affiliations'],
                         [{'jid': 'root@localhost', 'affiliation': 'owner', 'nick': None}])
        e = self.err(self.req('POST', '/rooms', {'name': 'ok5', 'owner': 'bob', 'config': {
            'muc#roomconfig_persistentroom': False}}), 400)
        self.assertIn('muc#roomconfig_persistentroom', e)
        for body in ({}, {'name': ''}, {'name': 'x@elsewhere.example'}, {'name': 'a/b'},
                     {'name': 7}, {'name': 'ok1', 'owner': '@@'}, {'name': 'ok1', 'owner': 5}):
            self.err(self.req('POST', '/rooms', body), 400)
        e = self.err(self.req('POST', '/rooms', {'name': 'ok2', 'owner': 'bob', 'config': {
            'muc#roomconfig_maxusers': 'lots'}}), 400)
        self.assertIn('muc#roomconfig_maxusers', e)
        e = self.err(self.req('POST', '/rooms', {'name': 'ok3', 'owner': 'bob', 'config': {
            'muc#roomconfig_roomname': {'a': 1}}}), 400)
        self.assertIn('muc#roomconfig_roomname', e)
        self.err(self.req('POST', '/rooms', {'name': 'ok4', 'owner': 'bob', 'config': []}), 400)
        # None of the refused ones exists.
        for name in ('ok1', 'ok2', 'ok3', 'ok4', 'ok5', 'ownerless'):
            self.err(self.req('GET', '/rooms/' + name), 404)
        self.err(self.req('POST', '/rooms', raw=b'name=x', ctype='text/plain'), 415)
        self.err(self.req('PATCH', '/rooms'), 405)
        self.err(self.req('GET', '/rooms/nothing'), 404)
        self.err(self.req('GET', '/rooms/x@elsewhere.example'), 404)
        self.err(self.req('GET', '/rooms/a/b/c'), 404)
        self.err(self.req('POST', '/rooms/dup'), 405)
        self.err(self.req('GET', '/rooms', auth=None), 401)

    def test_openapi_describes_the_routes(self):
        api = self.ok(self.req('GET', '/openapi.json'))
        self.assertEqual(set(api['paths']['/rooms']), {'get', 'post'})
        self.assertEqual(set(api['paths']['/rooms/{room}']), {'get', 'put', 'delete'})
        self.assertEqual(set(api['paths']['/rooms/{room}/affiliations/{jid}']), {'put', 'delete'})


class ListTest(RoomsCase):
    def test_list_stored_and_occupied_rooms(self):
        for name, title in (('alpha', 'Alpha'), ('beta', 'Beta talk'), ('gamma', 'Gamma')):
            self.ok(self.req('POST', '/rooms', {'name': name, 'owner': 'carol', 'config': {
                'muc#roomconfig_roomname': title, 'muc#roomconfig_persistentroom': True}}), 201)
        b = self.client('bob')
        self.create(b, 'temp', 'Bob', {'muc#roomconfig_roomname': 'Temporary',
                                       'muc#roomconfig_publicroom': False})
        doc = self.ok(self.req('GET', '/rooms'))
        self.assertEqual(doc['total'], 4)
        self.assertEqual([r['jid'] for r in doc['rooms']],
                         [room_jid(n) for n in ('alpha', 'beta', 'gamma', 'temp')])
        temp = doc['rooms'][3]
        self.assertEqual(temp, {'jid': room_jid('temp'), 'name': 'Temporary', 'description': '',
                                'occupants': 1, 'persistent': False, 'public': False,
                                'members_only': False, 'password_protected': False})
        self.assertEqual(doc['rooms'][0]['occupants'], 0)
        doc = self.ok(self.req('GET', '/rooms?q=TALK'))
        self.assertEqual(([r['jid'] for r in doc['rooms']], doc['total']), ([room_jid('beta')], 1))
        doc = self.ok(self.req('GET', '/rooms?offset=1&limit=2'))
        self.assertEqual([r['jid'] for r in doc['rooms']], [room_jid('beta'), room_jid('gamma')])
        self.assertEqual(doc['total'], 4)
        for bad in ('limit=1001', 'offset=-1', 'limit=x', 'q=%zz'):
            self.err(self.req('GET', '/rooms?' + bad), 400)


class ChangeTest(RoomsCase):
    def test_configure_live(self):
        room, a, b, c = self.three('conf')
        doc = self.ok(self.req('PUT', '/rooms/conf', {'config': {
            'muc#roomconfig_roomname': 'Renamed', 'muc#roomconfig_changesubject': True}}))
        self.assertEqual(doc['name'], 'Renamed')
        self.assertEqual(len(doc['occupants']), 3)
        for x in (a, b, c):
            m = x.wait(lambda s: s.get('from') == room and 104 in codes(s), what='status 104')
            self.assertEqual(m.get('type'), 'groupchat', to_str(m))
        e = self.err(self.req('PUT', '/rooms/conf', {'config': {
            'muc#roomconfig_whois': 'everybody'}}), 400)
        self.assertIn('muc#roomconfig_whois', e)
        e = self.err(self.req('PUT', '/rooms/conf', {'config': {
            'muc#roomconfig_roomowners': []}}), 400)
        self.assertIn('owner', e)
        self.err(self.req('PUT', '/rooms/conf', {}), 400)
        self.err(self.req('PUT', '/rooms/conf', {'config': 'x'}), 400)
        self.err(self.req('PUT', '/rooms/nothing', {'config': {}}), 404)
        self.assertEqual(self.ok(self.req('GET', '/rooms/conf'))['name'], 'Renamed')

    def test_affiliations(self):
        room, a, b, c = self.three('affs')
        doc = self.ok(self.req('PUT', '/rooms/affs/affiliations/dave@localhost',
                               {'affiliation': 'member', 'reason': 'welcome'}))
        self.assertEqual(doc, {'jid': 'dave@localhost', 'affiliation': 'member'})
        # An occupant made outcast leaves with 301, everyone sees it.
        self.ok(self.req('PUT', '/rooms/affs/affiliations/carol', {'affiliation': 'outcast'}))
        gone = c.wait(lambda s: is_pres(s, from_=room + '/Carol', type_='unavailable'),
                      what='own removal')
        self.assertIn(301, codes(gone), to_str(gone))
        a.wait(lambda s: is_pres(s, from_=room + '/Carol', type_='unavailable')
               and 301 in codes(s), what='carol banned')
        affs = {x['jid']: x['affiliation'] for x in self.ok(self.req('GET', '/rooms/affs'))['affiliations']}
        self.assertEqual(affs, {'alice@localhost': 'owner', 'dave@localhost': 'member',
                                'carol@localhost': 'outcast'})
        code, _, _ = self.req('DELETE', '/rooms/affs/affiliations/dave@localhost')
        self.assertEqual(code, 204)
        # The last owner stays.
        self.err(self.req('DELETE', '/rooms/affs/affiliations/alice@localhost'), 409)
        self.err(self.req('PUT', '/rooms/affs/affiliations/alice',
                          {'affiliation': 'member'}), 409)
        self.ok(self.req('PUT', '/rooms/affs/affiliations/bob', {'affiliation': 'owner'}))
        b.wait(lambda s: is_pres(s, from_=room + '/Bob') and
               item(s) is not None and item(s).get('affiliation') == 'owner', what='bob owner')
        self.err(self.req('PUT', '/rooms/affs/affiliations/bob', {'affiliation': 'boss'}), 400)
        self.err(self.req('PUT', '/rooms/affs/affiliations/bob', {}), 400)
        self.err(self.req('PUT', '/rooms/affs/affiliations/bob',
                          {'affiliation': 'member', 'reason': 3}), 400)
        self.err(self.req('PUT', '/rooms/affs/affiliations/a@b@c', {'affiliation': 'member'}), 400)
        self.err(self.req('PUT', '/rooms/nothing/affiliations/bob', {'affiliation': 'member'}), 404)
        self.err(self.req('GET', '/rooms/affs/affiliations/bob'), 405)

    def test_destroy(self):
        room, a, b, c = self.three('doomed', {'muc#roomconfig_persistentroom': True})
        wait_for(lambda: room in self.stored_rooms(), 5, 'the room stored')
        self.err(self.req('DELETE', '/rooms/doomed', {'alternate': 5}), 400)
        self.err(self.req('DELETE', '/rooms/doomed', {'alternate': 'a@@b'}), 400)
        code, _, _ = self.req('DELETE', '/rooms/doomed', {'reason': 'closing time',
                                                          'alternate': room_jid('next')})
        self.assertEqual(code, 204)
        for x, nick in ((a, 'Alice'), (b, 'Bob'), (c, 'Carol')):
            p = x.wait(lambda s: is_pres(s, from_=room + '/' + nick, type_='unavailable'),
                       what='destroy presence')
            d = p.find('%s/%s' % (q(NS_MUC_USER, 'x'), q(NS_MUC_USER, 'destroy')))
            self.assertIsNotNone(d, to_str(p))
            self.assertEqual(d.get('jid'), room_jid('next'))
            self.assertEqual(d.findtext(q(NS_MUC_USER, 'reason')), 'closing time')
        self.err(self.req('GET', '/rooms/doomed'), 404)
        self.err(self.req('DELETE', '/rooms/doomed'), 404)
        wait_for(lambda: room not in self.stored_rooms(), 5, 'the room forgotten')
        # A stored room not in memory is read first, then destroyed; no body needed.
        self.ok(self.req('POST', '/rooms', {'name': 'cold', 'owner': 'bob', 'config': {
            'muc#roomconfig_persistentroom': True}}), 201)
        code, _, _ = self.req('DELETE', '/rooms/cold', raw=b'', ctype=None)
        self.assertEqual(code, 204)
        wait_for(lambda: room_jid('cold') not in self.stored_rooms(), 5, 'the room forgotten')


class DefaultsTest(RoomsCase):
    def test_muc_defaults_applied_live(self):
        a = self.client('alice')
        self.create(a, 'before', 'A')
        doc = self.ok(self.req('GET', '/rooms/before'))
        self.assertEqual((doc['persistent'], doc['public']), (False, True))
        for key, value in (('muc.default_persistent', True), ('muc.default_public', False),
                           ('muc.default_max_users', 30), ('muc.default_history', 5)):
            self.ok(self.req('PUT', '/properties/' + key, {'value': value}))
        # Created by a join (on either worker) and by the API: both start from the new defaults.
        for name in ('after1', 'after2', 'after3'):
            self.create(a, name, 'A')
            doc = self.ok(self.req('GET', '/rooms/' + name))
            self.assertEqual((doc['persistent'], doc['public']), (True, False), name)
            self.assertEqual(doc['config']['muc#roomconfig_maxusers'], '30')
            self.assertEqual(doc['config']['muc#maxhistoryfetch'], '5')
        doc = self.ok(self.req('POST', '/rooms', {'name': 'api1', 'owner': 'alice'}), 201)
        self.assertEqual((doc['persistent'], doc['public']), (True, False))
        self.assertEqual(self.ok(self.req('GET', '/rooms/before'))['persistent'], False)


if __name__ == '__main__':
    main()
