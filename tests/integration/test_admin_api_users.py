"""Accounts changed through PATCH /api/v1/users/{user} against a live hearthd: a locked account
cannot log in (SASL account-disabled with a text, told only once the password proved right) and
its sessions end with a stream error; unlocked it logs in again; the flag survives a restart;
admin granted and taken; GET /users/{user} counts the online resources; each error status."""

import os

from hearth import NS_SASL, NS_STREAM, NS_STREAMS_ERR, Client, SaslFailure, main, q
from test_admin_api import Admin, basic
from imlib import IMTestCase

USERS = {'alice': 'wonderland', 'bob': 'builder'}


class UsersPatchTest(IMTestCase):
    users = USERS

    def setUp(self):
        self.srv = self.start_server(admin__port=0, listeners=('c2s', 'admin'))

    def api(self):
        with open(os.path.join(self.srv.data_dir, 'api.key')) as f:
            return Admin(self.srv, auth='Bearer ' + f.read().strip())

    def req(self, method, path, body=None, **kw):
        return self.api().req(method, '/api/v1' + path, body, **kw)

    def ok(self, res, status=200):
        self.assertEqual(res[0], status, res[2])
        return res[2]

    def err(self, res, status):
        self.assertEqual(res[0], status, res[2])
        self.assertEqual(res[2]['status'], status)
        return res[2]['error']

    def stream_error(self, c):
        """The condition of the stream error that ends c, past the stanzas still before it."""
        while True:
            kind, elem = c.next_event(5)
            if kind == 'stanza' and elem.tag == q(NS_STREAM, 'error'):
                return [ch.tag.split('}')[1] for ch in elem
                        if ch.tag.startswith('{%s}' % NS_STREAMS_ERR)][0]
            self.assertIn(kind, ('stanza', 'header'), elem)

    def login_failure(self, user, pw):
        c = Client(self.srv)
        self.addCleanup(c.close)
        with self.assertRaises(SaslFailure) as cm:
            c.login(user, pw)
        return cm.exception

    def test_lock_ends_sessions_and_refuses_logins(self):
        a1 = self.connect(self.srv, 'alice', 'one')
        a2 = self.connect(self.srv, 'alice', 'two')
        doc = self.ok(self.req('GET', '/users/alice'))
        self.assertEqual((doc['locked'], doc['online']), (False, 2))
        doc = self.ok(self.req('PATCH', '/users/alice', {'locked': True}))
        self.assertEqual((doc['locked'], doc['admin'], doc['online']), (True, False, 0))
        for c in (a1, a2):
            self.assertEqual(self.stream_error(c), 'policy-violation')
        e = self.login_failure('alice', USERS['alice'])
        self.assertEqual(e.condition, 'account-disabled')
        self.assertIn('locked', e.element.findtext(q(NS_SASL, 'text')))
        # A wrong password is told as any other: the lock is not shown to who lacks it.
        e = self.login_failure('alice', 'not the password')
        self.assertEqual(e.condition, 'not-authorized')
        self.assertIsNone(e.element.find(q(NS_SASL, 'text')))
        self.connect(self.srv, 'bob', 'r')  # others are not affected
        # Stored: still locked after a restart; unlocked, alice is back.
        self.srv.stop()
        self.srv.start()
        self.assertEqual(self.ok(self.req('GET', '/users/alice'))['locked'], True)
        self.assertEqual(self.login_failure('alice', USERS['alice']).condition, 'account-disabled')
        doc = self.ok(self.req('PATCH', '/users/alice', {'locked': False}))
        self.assertEqual(doc['locked'], False)
        self.connect(self.srv, 'alice', 'again')
        self.assertEqual(self.ok(self.req('GET', '/users/alice'))['online'], 1)

    def test_admin_flag_and_errors(self):
        doc = self.ok(self.req('PATCH', '/users/bob@localhost', {'admin': True}))
        self.assertEqual((doc['admin'], doc['locked']), (True, False))
        bob = Admin(self.srv, auth=basic('bob', USERS['bob']))
        self.assertEqual(bob.req('GET', '/api/v1/status')[0], 200)
        self.ok(self.req('PATCH', '/users/bob', {'admin': False, 'locked': False}))
        self.assertEqual(bob.req('GET', '/api/v1/status')[0], 403)
        self.err(self.req('PATCH', '/users/nobody', {'locked': True}), 404)
        self.err(self.req('PATCH', '/users/nobody', {'admin': True}), 404)
        for body in ({}, {'locked': 'yes'}, {'admin': 1}, {'name': 'Bob'},
                     {'locked': True, 'name': 'Bob'}):
            self.err(self.req('PATCH', '/users/bob', body), 400)
        self.err(self.req('PATCH', '/users/bob', raw=b'{}', ctype='text/plain'), 415)
        self.err(self.req('PUT', '/users/bob', {'locked': True}), 405)
        # q searches as search does.
        doc = self.ok(self.req('GET', '/users?q=AL'))
        self.assertEqual([u['username'] for u in doc['users']], ['alice'])
        api = self.ok(self.req('GET', '/openapi.json'))
        self.assertIn('patch', api['paths']['/users/{name}'])


if __name__ == '__main__':
    main()
