"""Rosters through /api/v1/users/{user}/roster against a live hearthd: read, an item added or
changed (stored, and pushed to the online resources that asked for the roster, RFC 6121
2.1.6), removed (pushed as subscription='remove', the subscriptions ending), for an account
online or not, and each error status (unknown user or contact, bad body, full roster)."""

import os

from hearth import main, to_str
from imlib import IMTestCase, is_push, push_item
from test_admin_api import Admin

BOB = 'bob@localhost'


class RosterTest(IMTestCase):
    def setUp(self):
        self.srv = self.start_server(admin__port=0, listeners=('c2s', 'admin'))
        with open(os.path.join(self.srv.data_dir, 'api.key')) as f:
            self.api = Admin(self.srv, auth='Bearer ' + f.read().strip())

    def req(self, method, path, body=None, **kw):
        return self.api.req(method, '/api/v1' + path, body, **kw)

    def ok(self, res, status=200):
        self.assertEqual(res[0], status, res[2])
        return res[2]

    def err(self, res, status):
        self.assertEqual(res[0], status, res[2])
        self.assertEqual(res[2]['status'], status)
        return res[2]['error']

    def test_changes_pushed_to_online_resources(self):
        a1 = self.connect(self.srv, 'alice', 'one')
        a2 = self.connect(self.srv, 'alice', 'two', roster=False)  # never asked: no push
        doc = self.ok(self.req('PUT', '/users/alice/roster/' + BOB,
                               {'name': 'Bob', 'groups': ['Friends', 'Work']}))
        self.assertEqual(doc, {'jid': BOB, 'name': 'Bob', 'subscription': 'none', 'ask': None,
                               'groups': ['Friends', 'Work']})
        p = a1.wait(lambda s: is_push(s, BOB), what='roster push')
        self.assertEqual(push_item(p)['groups'], ['Friends', 'Work'])
        self.assertEqual(push_item(p)['name'], 'Bob')
        a2.expect_none(lambda s: is_push(s), 'push to a resource that never asked')
        doc = self.ok(self.req('GET', '/users/alice/roster'))
        self.assertEqual(doc['items'], [{'jid': BOB, 'name': 'Bob', 'subscription': 'none',
                                         'ask': None, 'groups': ['Friends', 'Work']}])
        ver = doc['version']
        self.assertIsInstance(ver, str)
        # Only what is given changes; the version moves on.
        doc = self.ok(self.req('PUT', '/users/alice@localhost/roster/' + BOB,
                               {'subscription': 'both'}))
        self.assertEqual((doc['name'], doc['groups'], doc['subscription']),
                         ('Bob', ['Friends', 'Work'], 'both'))
        p = a1.wait(lambda s: is_push(s, BOB) and push_item(s)['subscription'] == 'both',
                    what='push with both')
        self.assertNotEqual(self.ok(self.req('GET', '/users/alice/roster'))['version'], ver)
        code, _, _ = self.req('DELETE', '/users/alice/roster/' + BOB)
        self.assertEqual(code, 204)
        p = a1.wait(lambda s: is_push(s, BOB) and push_item(s)['subscription'] == 'remove',
                    what='removal push')
        self.assertEqual(self.ok(self.req('GET', '/users/alice/roster'))['items'], [])
        r = a1.roster_get()
        self.assertEqual(r.get('type'), 'result', to_str(r))

    def test_offline_account_and_errors(self):
        self.ok(self.req('PUT', '/users/carol/roster/dave@localhost', {'groups': []}))
        c = self.connect(self.srv, 'carol', 'r', roster=False, presence=False)
        items = c.roster_get()
        self.assertIn('dave@localhost', to_str(items))
        self.err(self.req('GET', '/users/nobody/roster'), 404)
        self.err(self.req('PUT', '/users/nobody/roster/' + BOB, {}), 404)
        self.err(self.req('DELETE', '/users/carol/roster/' + BOB), 404)
        self.err(self.req('PUT', '/users/carol/roster/carol@localhost', {}), 400)
        self.err(self.req('PUT', '/users/carol/roster/a@b/c', {}), 404)
        self.err(self.req('PUT', '/users/carol/roster/@@', {}), 400)
        for body in ({'name': 5}, {'name': 'x' * 1024}, {'groups': 'Friends'},
                     {'groups': ['a', 'a']}, {'groups': ['']}, {'groups': [3]},
                     {'groups': ['g%d' % i for i in range(101)]},
                     {'subscription': 'all'}):
            self.err(self.req('PUT', '/users/carol/roster/' + BOB, body), 400)
        self.err(self.req('PUT', '/users/carol/roster/' + BOB, raw=b'{}', ctype='text/plain'),
                 415)
        self.err(self.req('POST', '/users/carol/roster'), 405)
        self.err(self.req('GET', '/users/carol/roster/' + BOB), 405)
        self.err(self.req('GET', '/users/carol/roster/', {}), 404)
        # roster.max_items lowered live: one more item is refused, a change to one is not.
        self.ok(self.req('PUT', '/properties/roster.max_items', {'value': 1}))
        self.err(self.req('PUT', '/users/carol/roster/' + BOB, {}), 409)
        self.ok(self.req('PUT', '/users/carol/roster/dave@localhost', {'name': 'Dave'}))
        self.assertEqual([i['jid'] for i in self.ok(self.req('GET', '/users/carol/roster'))['items']],
                         ['dave@localhost'])

    def test_openapi_describes_the_routes(self):
        api = self.ok(self.req('GET', '/openapi.json'))
        self.assertEqual(set(api['paths']['/users/{name}/roster']), {'get'})
        self.assertEqual(set(api['paths']['/users/{name}/roster/{jid}']), {'put', 'delete'})


if __name__ == '__main__':
    main()
