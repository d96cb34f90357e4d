"""The admin listener against a live hearthd (python http.client): the Host check, first-run
setup with its token, authentication (API keys, administrators by Basic, throttling), every
route of /api/v1/ with each error status, /metrics, and encoded-path tricks that must reach
nothing without authentication."""

import base64
import http.client
import json
import os
import socket
import ssl
import stat
import threading
import time
import unittest

from hearth import Client, Server, main, wait_for

ADMIN_SETTINGS = {'admin.port': '0'}


def basic(user, pw):
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, pw)).encode()).decode()


class Admin:
    """Requests to one hearthd's admin port; each on a fresh connection unless keep."""

    def __init__(self, server, auth=None, https=False):
        self.server = server
        self.port = server.ports['admin_https' if https else 'admin']
        self.https = https
        self.auth = auth

    def conn(self):
        if self.https:
            ctx = ssl.create_default_context(cafile=self.server.cert)
            ctx.check_hostname = False
            return http.client.HTTPSConnection('127.0.0.1', self.port, timeout=10, context=ctx)
        return http.client.HTTPConnection('127.0.0.1', self.port, timeout=10)

    def req(self, method, path, body=None, auth='default', headers=None,
            ctype='application/json', raw=None):
        h = dict(headers or {})
        a = self.auth if auth == 'default' else auth
        if a:
            h['Authorization'] = a
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None and ctype:
            h['Content-Type'] = ctype
        c = self.conn()
        try:
            c.request(method, path, body=data, headers=h)
            r = c.getresponse()
            text = r.read()
            ct = r.getheader('Content-Type') or ''
            doc = json.loads(text) if ct.startswith('application/json') and text else text
            return r.status, r, doc
        finally:
            c.close()


class AdminCase(unittest.TestCase):
    def server(self, settings=None, **kw):
        st = dict(ADMIN_SETTINGS)
        st.update(settings or {})
        s = Server(settings=st, listeners=('c2s', 'admin') + tuple(kw.pop('extra', ())), **kw)
        self.addCleanup(s.close)
        s.start()
        return s

    def local_key(self, s):
        with open(os.path.join(s.data_dir, 'api.key')) as f:
            return f.read().strip()

    def assert_error(self, res, status):
        code, r, doc = res
        self.assertEqual(code, status, doc)
        self.assertIsInstance(doc, dict, doc)
        self.assertEqual(doc['status'], status)
        self.assertIsInstance(doc['error'], str)
        return r


class HostTest(AdminCase):
    def test_host_header_checked_on_every_route(self):
        s = self.server({'admin.host': 'admin.example.org', 'admin.metrics': 'open'})
        a = Admin(s, auth='Bearer ' + self.local_key(s))
        port = s.ports['admin']
        for host in ('localhost', 'localhost:%d' % port, '127.0.0.1', '127.0.0.1:%d' % port,
                     '[::1]', '[::1]:%d' % port, 'LOCALHOST', 'admin.example.org',
                     'admin.example.org:443'):
            code, _, doc = a.req('GET', '/api/v1/status', headers={'Host': host})
            self.assertEqual(code, 200, (host, doc))
        for host in ('evil.example', 'localhost.evil.example', '127.0.0.1.nip.io', 'localhost:',
                     'localhost:80x', '[::1', 'example.org', 'admin.example.org.', '::1',
                     'localhost:99999999'):
            for path in ('/api/v1/status', '/api/v1/setup', '/setup', '/metrics', '/nothing'):
                self.assert_error(a.req('GET', path, headers={'Host': host}), 421)
        # No Host at all (HTTP/1.0 style) is refused too.
        with socket.create_connection(('127.0.0.1', port), timeout=5) as sock:
            sock.sendall(b'GET /metrics HTTP/1.0\r\n\r\n')
            data = b''
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        self.assertTrue(data.startswith(b'HTTP/1.1 421 '), data)

    def test_no_cors_on_the_admin_port(self):
        s = self.server()
        a = Admin(s, auth='Bearer ' + self.local_key(s))
        code, r, _ = a.req('GET', '/api/v1/status', headers={'Origin': 'https://evil.example'})
        self.assertEqual(code, 200)
        self.assertIsNone(r.getheader('Access-Control-Allow-Origin'))
        # A preflight is not answered for the client transports' sake: it needs authentication.
        code, r, _ = a.req('OPTIONS', '/api/v1/users', auth=None,
                           headers={'Origin': 'https://evil.example',
                                    'Access-Control-Request-Method': 'POST'})
        self.assertEqual(code, 401)
        self.assertIsNone(r.getheader('Access-Control-Allow-Origin'))


class SetupTest(AdminCase):
    def test_first_run_setup(self):
        s = self.server()
        token_path = os.path.join(s.data_dir, 'setup.token')
        self.assertEqual(stat.S_IMODE(os.stat(token_path).st_mode), 0o600)
        with open(token_path) as f:
            token = f.read().strip()
        self.assertRegex(token, r'^[0-9a-f]{32}$')
        self.assertIn(token, s.log_text())
        a = Admin(s, auth=None)
        code, r, page = a.req('GET', '/setup')
        self.assertEqual(code, 200)
        self.assertIn(b'/api/v1/setup', page)
        self.assertTrue(r.getheader('Content-Type').startswith('text/html'))
        self.assert_error(a.req('GET', '/api/v1/setup'), 405)
        self.assert_error(a.req('POST', '/setup'), 405)
        good = {'token': token, 'username': 'root', 'password': 'root pw'}
        self.assert_error(a.req('POST', '/api/v1/setup', dict(good, token='0' * 32)), 403)
        self.assert_error(a.req('POST', '/api/v1/setup', dict(good, token='')), 403)
        self.assert_error(a.req('POST', '/api/v1/setup', {'token': token}), 400)
        self.assert_error(a.req('POST', '/api/v1/setup', raw=b'{not json'), 400)
        self.assert_error(a.req('POST', '/api/v1/setup', raw=b'[1]'), 400)
        self.assert_error(a.req('POST', '/api/v1/setup', raw=b'token=x', ctype='text/plain'),
                          415)
        self.assert_error(a.req('POST', '/api/v1/setup', dict(good, username='a b@c')), 400)
        self.assert_error(a.req('POST', '/api/v1/setup', dict(good, password='short')), 400)
        self.assertTrue(os.path.exists(token_path))
        code, _, doc = a.req('POST', '/api/v1/setup', good)
        self.assertEqual(code, 201, doc)
        self.assertEqual(doc, {'jid': 'root@localhost', 'admin': True})
        self.assertFalse(os.path.exists(token_path))
        # Gone for good: the page, the route, even with the right token.
        self.assert_error(a.req('POST', '/api/v1/setup', dict(good, username='second')), 410)
        self.assert_error(a.req('GET', '/setup'), 410)
        # The account is a real one: SCRAM keys, as registration stores them.
        c = Client(s)
        self.addCleanup(c.close)
        self.assertEqual(c.login('root', 'root pw', resource='r'), 'root@localhost/r')
        code, _, doc = a.req('GET', '/api/v1/users/root', auth=basic('root', 'root pw'))
        self.assertEqual(code, 200, doc)
        self.assertTrue(doc['admin'])
        # Still gone after a restart: an administrator exists.
        s.restart()
        self.assertFalse(os.path.exists(token_path))
        self.assert_error(Admin(s, auth=None).req('POST', '/api/v1/setup', good), 410)

    def test_no_setup_when_an_admin_exists(self):
        s = self.server(admins={'boss': 'pw'})
        self.assertFalse(os.path.exists(os.path.join(s.data_dir, 'setup.token')))
        a = Admin(s, auth=None)
        self.assert_error(a.req('GET', '/setup'), 410)
        self.assert_error(a.req('POST', '/api/v1/setup',
                                {'token': 'x', 'username': 'y', 'password': 'z'}), 410)

    def test_existing_user_cannot_be_taken_over(self):
        s = self.server(users={'alice': 'alice pw'})
        with open(os.path.join(s.data_dir, 'setup.token')) as f:
            token = f.read().strip()
        a = Admin(s, auth=None)
        self.assert_error(a.req('POST', '/api/v1/setup', {'token': token, 'username': 'alice',
                                                          'password': 'mine now'}), 409)
        c = Client(s)
        self.addCleanup(c.close)
        self.assertEqual(c.login('alice', 'alice pw', resource='r'), 'alice@localhost/r')
        # Setup is still open for a new name.
        code, _, doc = a.req('POST', '/api/v1/setup', {'token': token, 'username': 'root',
                                                       'password': 'root pw'})
        self.assertEqual(code, 201, doc)

    def test_setup_token_guesses_are_throttled(self):
        s = self.server({'auth.ip_fail_burst': '3', 'auth.ip_fail_per_min': '1'})
        with open(os.path.join(s.data_dir, 'setup.token')) as f:
            token = f.read().strip()
        a = Admin(s, auth=None)
        body = {'token': 'f' * 32, 'username': 'root', 'password': 'pw'}
        for _ in range(3):
            self.assert_error(a.req('POST', '/api/v1/setup', body), 403)
        self.assert_error(a.req('POST', '/api/v1/setup', dict(body, token=token)), 429)


class AuthTest(AdminCase):
    def test_authentication(self):
        s = self.server(users={'alice': 'alice pw'}, admins={'boss': 'boss pw'})
        a = Admin(s, auth=None)
        r = self.assert_error(a.req('GET', '/api/v1/status'), 401)
        self.assertIn('Basic', r.getheader('WWW-Authenticate'))
        self.assertIn('Bearer', r.getheader('WWW-Authenticate'))
        self.assert_error(a.req('GET', '/api/v1/status', auth=basic('boss', 'wrong')), 401)
        self.assert_error(a.req('GET', '/api/v1/status', auth=basic('nobody', 'x')), 401)
        self.assert_error(a.req('GET', '/api/v1/status', auth='Basic !!!'), 401)
        self.assert_error(a.req('GET', '/api/v1/status', auth='Basic ' +
                                base64.b64encode(b'no colon').decode()), 401)
        self.assert_error(a.req('GET', '/api/v1/status', auth='Digest x'), 401)
        self.assert_error(a.req('GET', '/api/v1/status', auth='Bearer hk_nothing'), 401)
        self.assert_error(a.req('GET', '/api/v1/status',
                                auth='Bearer hk_%s_%s' % ('0' * 16, '0' * 64)), 401)
        self.assert_error(a.req('GET', '/api/v1/status',
                                auth='Bearer hk_local_' + '0' * 64), 401)
        # A user that is not an administrator, with the right password.
        self.assert_error(a.req('GET', '/api/v1/status', auth=basic('alice', 'alice pw')), 403)
        self.assert_error(a.req('GET', '/api/v1/users', auth=basic('alice@localhost',
                                                                   'alice pw')), 403)
        for auth in (basic('boss', 'boss pw'), basic('boss@localhost', 'boss pw'),
                     'Bearer ' + self.local_key(s)):
            code, _, doc = a.req('GET', '/api/v1/status', auth=auth)
            self.assertEqual(code, 200, doc)

    def test_local_key_file(self):
        s = self.server()
        path = os.path.join(s.data_dir, 'api.key')
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        first = self.local_key(s)
        self.assertRegex(first, r'^hk_local_[0-9a-f]{64}$')
        s.restart()
        second = self.local_key(s)
        self.assertNotEqual(first, second)
        a = Admin(s)
        self.assert_error(a.req('GET', '/api/v1/status', auth='Bearer ' + first), 401)
        self.assertEqual(a.req('GET', '/api/v1/status', auth='Bearer ' + second)[0], 200)
        s.stop()
        self.assertFalse(os.path.exists(path))

    def test_failed_logins_throttled_per_account_and_address(self):
        s = self.server({'auth.pair_fail_burst': '3', 'auth.pair_fail_per_min': '1',
                         'auth.ip_fail_burst': '6', 'auth.ip_fail_per_min': '1'},
                        admins={'boss': 'boss pw', 'chief': 'chief pw'})
        a = Admin(s)
        for _ in range(3):
            self.assert_error(a.req('GET', '/api/v1/status', auth=basic('boss', 'guess')), 401)
        # Over the (address, account) budget: refused unchecked, even with the password.
        r = self.assert_error(a.req('GET', '/api/v1/status', auth=basic('boss', 'boss pw')),
                              429)
        self.assertEqual(r.getheader('Retry-After'), '60')
        # Another account from the same address still gets in...
        self.assertEqual(a.req('GET', '/api/v1/status', auth=basic('chief', 'chief pw'))[0],
                         200)
        # ...until the address itself is over its budget (wrong keys count there too).
        for _ in range(3):
            self.assert_error(a.req('GET', '/api/v1/status',
                                    auth='Bearer hk_%s_%s' % ('1' * 16, '2' * 64)), 401)
        self.assert_error(a.req('GET', '/api/v1/status', auth=basic('chief', 'chief pw')), 429)
        self.assert_error(a.req('GET', '/api/v1/status', auth='Bearer ' + self.local_key(s)),
                          429)


    def test_account_over_budget_is_delayed_not_refused(self):
        s = self.server({'auth.account_fail_burst': '2', 'auth.account_fail_per_min': '1',
                         'auth.account_delay_ms': '600', 'auth.pair_fail_burst': '0',
                         'auth.ip_fail_burst': '0'}, admins={'boss': 'boss pw'})
        a = Admin(s)
        for _ in range(3):
            self.assert_error(a.req('GET', '/api/v1/status', auth=basic('boss', 'guess')), 401)
        # Its owner still gets in, after the account's delay (checked on a timer, not a sleep
        # of the worker: another request meanwhile is answered at once).
        result = {}

        def owner():
            t0 = time.monotonic()
            result['code'] = a.req('GET', '/api/v1/status', auth=basic('boss', 'boss pw'))[0]
            result['took'] = time.monotonic() - t0
        t = threading.Thread(target=owner)
        t.start()
        t0 = time.monotonic()
        self.assertEqual(a.req('GET', '/api/v1/status', auth='Bearer ' + self.local_key(s))[0],
                         200)
        other = time.monotonic() - t0
        t.join(10)
        self.assertEqual(result.get('code'), 200)
        self.assertGreaterEqual(result['took'], 0.55)
        self.assertLess(other, result['took'])


class KeysTest(AdminCase):
    def test_keys_shown_once_and_stored_hashed(self):
        s = self.server(admins={'boss': 'boss pw'})
        a = Admin(s, auth=basic('boss', 'boss pw'))
        code, _, doc = a.req('POST', '/api/v1/keys', {'name': 'monitoring'})
        self.assertEqual(code, 201, doc)
        key, kid = doc['key'], doc['id']
        self.assertRegex(key, r'^hk_[0-9a-f]{16}_[0-9a-f]{64}$')
        self.assertEqual(key[3:19], kid)
        self.assertEqual(doc['name'], 'monitoring')
        # The key works; the listing shows its name, never the key or its hash.
        k = Admin(s, auth='Bearer ' + key)
        self.assertEqual(k.req('GET', '/api/v1/status')[0], 200)
        code, _, doc = k.req('GET', '/api/v1/keys')
        self.assertEqual(code, 200)
        self.assertEqual([(x['id'], x['name'], x['by']) for x in doc['keys']],
                         [(kid, 'monitoring', 'boss@localhost')])
        self.assertNotIn(key[20:], json.dumps(doc))
        self.assertNotIn('sha256', json.dumps(doc))
        # Nothing in the database holds the secret.
        secret = key[20:]
        dump = s.db_dump()
        self.assertNotIn(secret, dump)
        self.assertIn(kid, dump)
        # A key without a name; bad bodies.
        code, _, doc2 = a.req('POST', '/api/v1/keys', {})
        self.assertEqual(code, 201)
        self.assert_error(a.req('POST', '/api/v1/keys', {'name': 5}), 400)
        self.assert_error(a.req('POST', '/api/v1/keys', {'name': 'x' * 200}), 400)
        self.assert_error(a.req('POST', '/api/v1/keys', raw=b'{', ctype='application/json'),
                          400)
        self.assert_error(a.req('POST', '/api/v1/keys', raw=b'name=x',
                                ctype='application/x-www-form-urlencoded'), 415)
        self.assert_error(a.req('PUT', '/api/v1/keys', {}), 405)
        self.assert_error(a.req('GET', '/api/v1/keys/' + kid), 405)
        # Revoked: the key stops working at once.
        self.assertEqual(a.req('DELETE', '/api/v1/keys/' + kid)[0], 204)
        self.assert_error(k.req('GET', '/api/v1/status'), 401)
        self.assert_error(a.req('DELETE', '/api/v1/keys/' + kid), 404)
        self.assert_error(a.req('DELETE', '/api/v1/keys/nothex'), 404)
        self.assertEqual([x['id'] for x in a.req('GET', '/api/v1/keys')[2]['keys']],
                         [doc2['id']])


class UsersTest(AdminCase):
    def test_user_routes(self):
        s = self.server(admins={'boss': 'boss pw'}, users={'zed': 'zed pw'})
        a = Admin(s, auth='Bearer ' + self.local_key(s))
        code, _, doc = a.req('POST', '/api/v1/users', {'username': 'Alice', 'password': 'alice pw'})
        self.assertEqual(code, 201, doc)
        self.assertEqual(doc, {'username': 'alice', 'jid': 'alice@localhost', 'admin': False})
        code, _, doc = a.req('POST', '/api/v1/users', {'username': 'bob@localhost',
                                                       'password': 'bob pw!', 'admin': True})
        self.assertEqual(code, 201, doc)
        self.assert_error(a.req('POST', '/api/v1/users', {'username': 'alice',
                                                          'password': 'other pw'}), 409)
        for bad in ({'username': 'carol'}, {'password': 'long enough'},
                    {'username': 'a b', 'password': 'long enough'},
                    {'username': 'c@elsewhere.example', 'password': 'long enough'},
                    {'username': 'carol', 'password': ''}, {'username': 'carol', 'password': 'x'},
                    {'username': 'carol', 'password': 'long enough', 'admin': 'yes'},
                    {'username': 'carol', 'password': 'bad\u0007pw'}):
            self.assert_error(a.req('POST', '/api/v1/users', bad), 400)
        self.assert_error(a.req('POST', '/api/v1/users', raw=b'{"username": "x"', ), 400)
        self.assert_error(a.req('POST', '/api/v1/users', raw=b'x', ctype='text/plain'), 415)
        self.assert_error(a.req('POST', '/api/v1/users', raw=b'x', ctype=None), 415)
        self.assert_error(a.req('POST', '/api/v1/users',
                                raw=json.dumps({'username': 'big', 'password': 'x' * 70000})
                                .encode()), 413)
        self.assert_error(a.req('PATCH', '/api/v1/users', {}), 405)
        # The new accounts log in.
        c = Client(s)
        self.addCleanup(c.close)
        self.assertEqual(c.login('alice', 'alice pw', resource='web'), 'alice@localhost/web')
        # Listing: search, offset, limit.
        code, _, doc = a.req('GET', '/api/v1/users')
        self.assertEqual(code, 200)
        self.assertEqual([u['username'] for u in doc['users']], ['alice', 'bob', 'boss', 'zed'])
        self.assertEqual(doc['total'], 4)
        self.assertEqual([u['admin'] for u in doc['users']], [False, True, True, False])
        code, _, doc = a.req('GET', '/api/v1/users?search=B&offset=1&limit=1')
        self.assertEqual((doc['total'], [u['username'] for u in doc['users']]), (2, ['boss']))
        code, _, doc = a.req('GET', '/api/v1/users?limit=0')
        self.assertEqual((doc['total'], doc['users']), (4, []))
        for q in ('limit=-1', 'limit=1001', 'offset=x', 'limit=', 'search=%zz'):
            self.assert_error(a.req('GET', '/api/v1/users?' + q), 400)
        # One user, with its sessions.
        code, _, doc = a.req('GET', '/api/v1/users/alice')
        self.assertEqual(code, 200, doc)
        self.assertEqual(doc['jid'], 'alice@localhost')
        self.assertEqual([x['jid'] for x in doc['sessions']], ['alice@localhost/web'])
        code, _, doc = a.req('GET', '/api/v1/users/alice%40localhost')
        self.assertEqual((code, doc['username']), (200, 'alice'))
        self.assertEqual(a.req('GET', '/api/v1/users/zed')[2]['sessions'], [])
        self.assert_error(a.req('GET', '/api/v1/users/nobody'), 404)
        self.assert_error(a.req('GET', '/api/v1/users/a%20b'), 404)
        self.assert_error(a.req('POST', '/api/v1/users/alice', {}), 405)
        # Password.
        self.assertEqual(a.req('PUT', '/api/v1/users/zed/password', {'password': 'new zed pw'})[0],
                         204)
        d = Client(s)
        self.addCleanup(d.close)
        self.assertEqual(d.login('zed', 'new zed pw', resource='r'), 'zed@localhost/r')
        self.assert_error(a.req('PUT', '/api/v1/users/nobody/password', {'password': 'long enough'}), 404)
        self.assert_error(a.req('PUT', '/api/v1/users/zed/password', {'password': 'short'}), 400)
        self.assert_error(a.req('PUT', '/api/v1/users/zed/password', {}), 400)
        self.assert_error(a.req('PUT', '/api/v1/users/zed/password', raw=b'p', ctype='text/plain'),
                          415)
        self.assert_error(a.req('GET', '/api/v1/users/zed/password'), 405)
        # Deletion ends the sessions.
        self.assertEqual(a.req('DELETE', '/api/v1/users/alice')[0], 204)
        c.assert_stream_error('not-authorized')
        self.assert_error(a.req('DELETE', '/api/v1/users/alice'), 404)
        self.assert_error(a.req('GET', '/api/v1/users/alice'), 404)
        e = Client(s)
        self.addCleanup(e.close)
        with self.assertRaises(AssertionError):
            e.login('alice', 'alice pw')

    def test_delete_leaves_nothing_behind(self):
        """As in-band <remove/> (XEP-0077 3.2): contacts are told, rows go."""
        s = self.server(users={'alice': 'a', 'bob': 'b'})
        alice = s.login('alice', 'a', resource='a')
        bob = s.login('bob', 'b', resource='b')
        self.addCleanup(alice.close)
        self.addCleanup(bob.close)
        for c in (alice, bob):
            c.send("<presence/>")
        alice.send("<presence to='bob@localhost' type='subscribe'/>")
        bob.recv_until(lambda e: e.tag.endswith('presence') and e.get('type') == 'subscribe')
        bob.send("<presence to='alice@localhost' type='subscribed'/>")
        bob.send("<presence to='alice@localhost' type='subscribe'/>")
        alice.recv_until(lambda e: e.tag.endswith('presence') and e.get('type') == 'subscribe')
        alice.send("<presence to='bob@localhost' type='subscribed'/>")
        bob.recv_until(lambda e: e.tag.endswith('presence') and
                       e.get('from') == 'alice@localhost/a' and e.get('type') is None)
        alice.send("<message to='bob@localhost'><body>kept?</body></message>")
        bob.recv_until(lambda e: e.tag.endswith('message'))
        a = Admin(s, auth='Bearer ' + self.local_key(s))
        self.assertEqual(a.req('DELETE', '/api/v1/users/alice')[0], 204)
        alice.assert_stream_error('not-authorized')
        # Both subscriptions end, as after <remove/> (no unavailable follows on either path:
        # the account's roster is gone before its sessions unbind).
        got = set()

        def seen(e):
            if e.tag.endswith('presence') and e.get('from') == 'alice@localhost':
                got.add(e.get('type'))
            return {'unsubscribe', 'unsubscribed'} <= got
        bob.recv_until(seen)
        for t in s.db_tables_with('username'):
            n = s.db_rows('SELECT count(*) FROM %s WHERE username = ?' % t, ('alice',))[0][0]
            self.assertEqual(n, 0, t)


class SessionsTest(AdminCase):
    def test_list_and_kick(self):
        s = self.server(users={'alice': 'a', 'bob': 'b'}, settings={'server.workers': '3'})
        a = Admin(s, auth='Bearer ' + self.local_key(s))
        c1 = s.login('alice', 'a', resource='one')
        c2 = s.login('alice', 'a', resource='two')
        b = s.login('bob', 'b', resource='x')
        for c in (c1, c2, b):
            self.addCleanup(c.close)
        b.send('<presence/>')
        b.recv_until(lambda e: e.tag.endswith('presence'))
        wait_for(lambda: len(a.req('GET', '/api/v1/sessions')[2]['sessions']) == 3, 5)
        code, _, doc = a.req('GET', '/api/v1/sessions')
        self.assertEqual(code, 200)
        self.assertEqual(doc['count'], 3)
        byjid = {x['jid']: x for x in doc['sessions']}
        self.assertEqual(set(byjid), {'alice@localhost/one', 'alice@localhost/two',
                                      'bob@localhost/x'})
        self.assertEqual({x['transport'] for x in doc['sessions']}, {'tcp'})
        self.assertEqual({x['state'] for x in doc['sessions']}, {'bound'})
        wait_for(lambda: {x['jid']: x for x in a.req('GET', '/api/v1/sessions')[2]['sessions']}
                 ['bob@localhost/x']['available'], 5)
        self.assert_error(a.req('POST', '/api/v1/sessions', {}), 405)
        self.assert_error(a.req('GET', '/api/v1/sessions/alice@localhost/one'), 404)
        self.assert_error(a.req('GET', '/api/v1/sessions/alice@localhost%2Fone'), 405)
        code, _, doc = a.req('DELETE', '/api/v1/sessions/alice@localhost%2Fone')
        self.assertEqual((code, doc), (200, {'ended': 1}))
        c1.assert_stream_error('policy-violation')
        self.assertTrue(c2.is_open())
        self.assert_error(a.req('DELETE', '/api/v1/sessions/alice@localhost%2Fone'), 404)
        self.assert_error(a.req('DELETE', '/api/v1/sessions/nobody@localhost'), 404)
        self.assert_error(a.req('DELETE', '/api/v1/sessions/bob@elsewhere.example'), 404)
        self.assert_error(a.req('DELETE', '/api/v1/sessions/%zz'), 404)
        # A bare JID ends every session of the account.
        self.assertEqual(a.req('DELETE', '/api/v1/sessions/bob@localhost')[2], {'ended': 1})
        b.assert_stream_error('policy-violation')
        wait_for(lambda: [x['jid'] for x in a.req('GET', '/api/v1/sessions')[2]['sessions']]
                 == ['alice@localhost/two'], 5)

    def test_announce(self):
        s = self.server(users={'alice': 'a', 'bob': 'b', 'carol': 'c'})
        a = Admin(s, auth='Bearer ' + self.local_key(s))
        alice = s.login('alice', 'a', resource='r')
        bob = s.login('bob', 'b', resource='r')
        carol = s.login('carol', 'c', resource='r')  # never available: not told
        for c in (alice, bob, carol):
            self.addCleanup(c.close)
        for c in (alice, bob):
            c.send('<presence/>')
            c.recv_until(lambda e: e.tag.endswith('presence'))
        code, _, doc = a.req('POST', '/api/v1/announce',
                             {'subject': 'Maintenance', 'body': 'Back at <5> & soon'})
        self.assertEqual((code, doc), (200, {'sent': 2}))
        for c in (alice, bob):
            m = c.recv_until(lambda e: e.tag.endswith('message'))
            self.assertEqual(m.get('from'), 'localhost')
            self.assertEqual(m.get('type'), 'headline')
            self.assertTrue(m.get('to').endswith('@localhost/r'), m.get('to'))
            body = [x.text for x in m if x.tag.endswith('body')]
            self.assertEqual(body, ['Back at <5> & soon'])
        carol.expect_nothing(0.3)
        for bad in ({}, {'body': ''}, {'body': 5}, {'body': 'x', 'subject': 1},
                    {'body': 'x' * 9000}):
            self.assert_error(a.req('POST', '/api/v1/announce', bad), 400)
        self.assert_error(a.req('GET', '/api/v1/announce'), 405)
        self.assert_error(a.req('POST', '/api/v1/announce', raw=b'hi', ctype='text/plain'), 415)


class StatusTest(AdminCase):
    def test_status_and_openapi(self):
        s = self.server(users={'alice': 'a'})
        a = Admin(s, auth='Bearer ' + self.local_key(s))
        c = s.login('alice', 'a', resource='r')
        self.addCleanup(c.close)
        code, _, doc = a.req('GET', '/api/v1/status')
        self.assertEqual(code, 200)
        self.assertEqual(doc['domain'], 'localhost')
        self.assertRegex(doc['version'], r'^\d+\.\d+\.\d+')
        self.assertEqual(doc['sessions_online'], 1)
        self.assertEqual(doc['workers'], 2)
        self.assertGreater(doc['memory']['rss_bytes'], 1 << 20)
        self.assertGreaterEqual(doc['uptime_s'], 0)
        self.assertGreater(doc['storage']['requests'], 0)
        self.assert_error(a.req('POST', '/api/v1/status', {}), 405)
        code, _, api = a.req('GET', '/api/v1/openapi.json')
        self.assertEqual(code, 200)
        self.assertEqual(api['openapi'], '3.0.3')
        # Each route's own test file checks that its paths are described (test_admin_api_*).
        self.assertLessEqual({
            '/status', '/openapi.json', '/setup', '/users', '/users/{name}',
            '/users/{name}/password', '/sessions', '/sessions/{jid}', '/announce', '/keys',
            '/keys/{id}'}, set(api['paths']))
        self.assertEqual(set(api['paths']['/users']), {'get', 'post'})
        self.assert_error(a.req('GET', '/api/v1/nothing'), 404)
        self.assert_error(a.req('GET', '/api/v2/status'), 404)
        # / is the console's: to its login page (test_admin_console.py).
        code, r, _ = a.req('GET', '/')
        self.assertEqual((code, r.getheader('Location')), (303, '/setup'))  # no admin yet

    def test_https(self):
        s = self.server({'admin.https_port': '0'}, extra=('admin_https',))
        a = Admin(s, auth='Bearer ' + self.local_key(s), https=True)
        code, _, doc = a.req('GET', '/api/v1/status')
        self.assertEqual((code, doc['domain']), (200, 'localhost'))
        self.assert_error(a.req('GET', '/api/v1/status', headers={'Host': 'evil.example'}), 421)


class MetricsTest(AdminCase):
    def parse(self, text):
        values = {}
        for line in text.decode().splitlines():
            if line and not line.startswith('#'):
                name, value = line.rsplit(' ', 1)
                values[name] = float(value)
        return values

    def test_metrics_behind_the_key(self):
        s = self.server(users={'alice': 'a'})
        a = Admin(s, auth='Bearer ' + self.local_key(s))
        self.assert_error(a.req('GET', '/metrics', auth=None), 401)
        c = s.login('alice', 'a', resource='r')
        self.addCleanup(c.close)
        code, r, text = a.req('GET', '/metrics')
        self.assertEqual(code, 200)
        self.assertTrue(r.getheader('Content-Type').startswith('text/plain; version=0.0.4'))
        m = self.parse(text)
        self.assertEqual(m['hearth_sessions{transport="tcp",state="bound"}'], 1)
        self.assertEqual(m['hearth_sessions{transport="websocket",state="bound"}'], 0)
        self.assertEqual(m['hearth_logins_total{mechanism="SCRAM-SHA-256"}'], 1)
        self.assertEqual(m['hearth_login_failures_total{mechanism="SCRAM-SHA-256"}'], 0)
        # Counters move: a failed PLAIN login, a successful one, stanzas both ways.
        bad = Client(s)
        self.addCleanup(bad.close)
        with self.assertRaises(AssertionError):
            bad.login('alice', 'wrong', mech='PLAIN')
        d = Client(s)
        self.addCleanup(d.close)
        d.login('alice', 'a', mech='PLAIN', resource='p')
        c.send("<presence/>")
        c.recv_until(lambda e: e.tag.endswith('presence'))
        c.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
        c.recv_until(lambda e: e.tag.endswith('iq'))
        m2 = self.parse(a.req('GET', '/metrics')[2])
        self.assertEqual(m2['hearth_logins_total{mechanism="PLAIN"}'], 1)
        self.assertEqual(m2['hearth_login_failures_total{mechanism="PLAIN"}'], 1)
        self.assertEqual(m2['hearth_sessions{transport="tcp",state="bound"}'], 2)
        for kind in ('presence', 'iq'):
            self.assertGreaterEqual(m2['hearth_stanzas_in_total{kind="%s"}' % kind]
                                    - m.get('hearth_stanzas_in_total{kind="%s"}' % kind, 0), 1)
            self.assertGreaterEqual(m2['hearth_stanzas_out_total{kind="%s"}' % kind]
                                    - m.get('hearth_stanzas_out_total{kind="%s"}' % kind, 0), 1)
        self.assertIn('hearth_worker_inbox_depth{worker="0"}', m)
        self.assertIn('hearth_worker_inbox_depth{worker="1"}', m)
        self.assertGreater(m['hearth_storage_requests_total'], 0)
        self.assertGreater(m['hearth_memory_resident_bytes'], 1 << 20)
        self.assert_error(a.req('POST', '/metrics', {}), 405)

    def test_metrics_open_and_off(self):
        s = self.server({'admin.metrics': 'open'})
        code, _, text = Admin(s, auth=None).req('GET', '/metrics')
        self.assertEqual(code, 200)
        self.assertIn('hearth_uptime_seconds', self.parse(text))
        # Open means the metrics only: the API still needs a key.
        self.assert_error(Admin(s, auth=None).req('GET', '/api/v1/status'), 401)
        t = self.server({'admin.metrics': 'off'})
        self.assert_error(Admin(t, auth='Bearer ' + self.local_key(t)).req('GET', '/metrics'),
                          404)


class PathTricksTest(AdminCase):
    TRICKS = [
        '/api/v1/setup/..%2fusers', '/api/v1/setup/../users', '/api/v1/setup%2f..%2fusers',
        '/api/v1/%2e%2e/api/v1/users', '/api/v1/users/..%2f..%2fstatus',
        '/api/v1/users;jsessionid=1', '/api/v1/setup;x=1', '/api/v1/setup;/../users',
        '/metrics/../api/v1/users', '/metrics;x', '/%61pi/v1/users', '/api/v1/%252e%252e/users',
        '/setup/../api/v1/users', '/setup%2f..%2fapi/v1/users', '//api/v1/users',
        '/api/v1/users%00', '/api/v1/setup/%u002e%u002e/users', '/API/V1/USERS',
        '/api/v1/Setup', '/api/v1/setup/', '/setup/', '/setup.html', '/api/v1/users/alice',
        '/api/v1/keys', '/api/v1/status/../setup', '/api/v1/setup%3b', '/./api/v1/users',
        '/api/v1/./users', '/api/v1/users/%2e%2e/status', '/%2e%2e/%2e%2e/etc/passwd',
    ]

    def test_tricks_reach_nothing_without_authentication(self):
        s = self.server(users={'alice': 'a'})
        a = Admin(s, auth=None)
        for path in self.TRICKS:
            for method in ('GET', 'POST', 'DELETE'):
                code, _, doc = a.req(method, path, body={} if method == 'POST' else None)
                self.assertEqual(code, 401, (method, path, doc))
        # Authenticated, the same paths name nothing that exists (alice's is a real route).
        k = Admin(s, auth='Bearer ' + self.local_key(s))
        for path in self.TRICKS:
            code, _, doc = k.req('GET', path)
            if path in ('/api/v1/users/alice', '/api/v1/keys'):
                self.assertEqual(code, 200, path)
            else:
                self.assertIn(code, (404, 405), (path, doc))
        # Nothing was created or removed by any of it.
        code, _, doc = k.req('GET', '/api/v1/users')
        self.assertEqual([u['username'] for u in doc['users']], ['alice'])


if __name__ == '__main__':
    main()
