"""The web console's security against a live hearthd, in raw HTTP (http.client): the session
cookie's flags (HttpOnly, SameSite=Strict, Secure only over HTTPS), a new id at every login
(session fixation), CSRF tokens and Origin on every state-changing form (a refused POST changes
nothing), login throttling per address and per account (429 with Retry-After), accounts that are
no administrator refused like a wrong password, every page behind a session except login and
setup, encoded-path tricks that reach no page and no file, HTML escaping of hostile text, the
Host check on the console's routes, logout and idle expiry. Then the pages at work: a user
created from a form logs in over XMPP, shows on the sessions page with its address, TLS version
and SASL mechanism, and is kicked from there."""

import http.client
import os
import re
import ssl
import time
import unittest

from hearth import Client, Server, main, wait_for

SETTINGS = {'admin.port': '0'}
COOKIE = 'hearth_console'
# GET pages that need a session, and forms (POST) that need one and its CSRF token.
PAGES = ['/dashboard', '/dashboard/history', '/users', '/users/boss', '/sessions', '/rooms',
         '/settings', '/certificate', '/log']
FORMS = ['/logout', '/users', '/users/boss/password', '/users/boss/delete', '/sessions/kick']


class Browser:
    """One browser's view of a console: its cookie, requests on fresh connections."""

    def __init__(self, server, https=False):
        self.server = server
        self.https = https
        self.port = server.ports['admin_https' if https else 'admin']
        self.cookie = None

    def conn(self):
        if self.https:
            ctx = ssl.create_default_context(cafile=self.server.cert)
            ctx.check_hostname = False
            return http.client.HTTPSConnection('127.0.0.1', self.port, timeout=10, context=ctx)
        return http.client.HTTPConnection('127.0.0.1', self.port, timeout=10)

    def req(self, method, path, form=None, headers=None, raw=None, cookie='default'):
        h = dict(headers or {})
        c = self.cookie if cookie == 'default' else cookie
        if c:
            h['Cookie'] = '%s=%s' % (COOKIE, c)
        body = raw
        if form is not None:
            body = '&'.join('%s=%s' % (k, quote(v)) for k, v in form.items()).encode()
            h.setdefault('Content-Type', 'application/x-www-form-urlencoded')
        conn = self.conn()
        try:
            conn.request(method, path, body=body, headers=h)
            r = conn.getresponse()
            return r.status, r, r.read().decode('utf-8', 'replace')
        finally:
            conn.close()

    def login(self, user, pw, **kw):
        code, r, text = self.req('POST', '/login', {'username': user, 'password': pw}, **kw)
        set_cookie = r.getheader('Set-Cookie') or ''
        m = re.match(COOKIE + r'=([0-9a-f]{64});', set_cookie)
        if code == 303 and m:
            self.cookie = m.group(1)
        return code, r, text

    def csrf(self, path='/users'):
        code, _, text = self.req('GET', path)
        assert code == 200, (path, code, text[:500])
        return re.search(r'name="csrf" value="([0-9a-f]{64})"', text).group(1)


def quote(s):
    from urllib.parse import quote_plus
    return quote_plus(s)


class ConsoleCase(unittest.TestCase):
    def server(self, settings=None, **kw):
        st = dict(SETTINGS)
        st.update(settings or {})
        s = Server(settings=st, listeners=('c2s', 'admin') + tuple(kw.pop('extra', ())), **kw)
        self.addCleanup(s.close)
        s.start()
        return s

    def local_key(self, s):
        with open(os.path.join(s.data_dir, 'api.key')) as f:
            return f.read().strip()

    def api(self, s, method, path, body=None):
        import json
        conn = http.client.HTTPConnection('127.0.0.1', s.ports['admin'], timeout=10)
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body),
                         headers={'Authorization': 'Bearer ' + self.local_key(s),
                                  'Content-Type': 'application/json'})
            r = conn.getresponse()
            return r.status, r.read()
        finally:
            conn.close()

    def user_exists(self, s, name):
        return self.api(s, 'GET', '/api/v1/users/' + name)[0] == 200

    def assert_to_login(self, res, what):
        code, r, text = res
        self.assertEqual((code, r.getheader('Location')), (303, '/login'), what)
        self.assertEqual(text, '', what)


class LoginTest(ConsoleCase):
    def test_cookie_flags_rotation_and_logout(self):
        s = self.server(users={'alice': 'alice pw'}, admins={'boss': 'boss pw'})
        b = Browser(s)
        code, r, text = b.req('GET', '/login')
        self.assertEqual(code, 200)
        self.assertIsNone(r.getheader('Set-Cookie'))
        for name in ('Content-Security-Policy', 'X-Frame-Options', 'X-Content-Type-Options',
                     'Referrer-Policy'):
            self.assertTrue(r.getheader(name), name)
        self.assertNotIn('unsafe-inline', r.getheader('Content-Security-Policy'))
        self.assertEqual(r.getheader('X-Frame-Options'), 'DENY')
        self.assertNotIn('<script>', text)  # the script is a file: no inline script
        # A wrong password and a right password of an account that is no administrator get the
        # same answer, and no cookie.
        wrong = b.login('boss', 'guess')
        not_admin = b.login('alice', 'alice pw')
        unknown = b.login('nobody', 'x')
        for code, r, text in (wrong, not_admin, unknown):
            self.assertEqual(code, 401)
            self.assertIsNone(r.getheader('Set-Cookie'))
            self.assertIn('Wrong name or password.', text)
        self.assertEqual(wrong[2], not_admin[2])
        self.assertIsNone(b.cookie)
        # The right one: a cookie that scripts cannot read and other sites cannot send.
        code, r, _ = b.login('boss@localhost', 'boss pw')
        self.assertEqual((code, r.getheader('Location')), (303, '/dashboard'))
        flags = [f.strip() for f in r.getheader('Set-Cookie').split(';')]
        self.assertEqual(flags[1:], ['Path=/', 'HttpOnly', 'SameSite=Strict'])
        self.assertEqual(b.req('GET', '/dashboard')[0], 200)
        first = b.cookie
        # Session fixation: whatever id the browser holds before a login, the login gives it
        # another, and the one it held is void after.
        code, r, _ = b.login('boss', 'boss pw')
        self.assertEqual(code, 303)
        self.assertNotEqual(b.cookie, first)
        self.assert_to_login(b.req('GET', '/dashboard', cookie=first), 'the id before login')
        planted = 'ab' * 32
        c = Browser(s)
        c.cookie = planted
        self.assert_to_login(c.req('GET', '/dashboard'), 'a planted id')
        c.login('boss', 'boss pw', cookie=planted)
        self.assertNotEqual(c.cookie, planted)
        self.assert_to_login(c.req('GET', '/dashboard', cookie=planted), 'a planted id after')
        self.assertEqual(c.req('GET', '/dashboard')[0], 200)
        # Logout needs the token too, then the cookie is void.
        self.assertEqual(b.req('POST', '/logout', {})[0], 403)
        self.assertEqual(b.req('GET', '/dashboard')[0], 200)
        code, r, _ = b.req('POST', '/logout', {'csrf': b.csrf()})
        self.assertEqual((code, r.getheader('Location')), (303, '/login'))
        self.assertIn('Max-Age=0', r.getheader('Set-Cookie'))
        self.assert_to_login(b.req('GET', '/dashboard'), 'after logout')
        self.assertEqual(c.req('GET', '/dashboard')[0], 200)  # the other login lives on
        # The API does not take the console's cookie: it keeps its own credentials.
        self.assertEqual(c.req('GET', '/api/v1/status')[0], 401)
        self.assertEqual(c.req('GET', '/api/v1/users')[0], 401)

    def test_secure_only_over_https(self):
        s = self.server({'admin.https_port': '0'}, admins={'boss': 'boss pw'}, extra=('admin_https',))
        b = Browser(s, https=True)
        code, r, _ = b.login('boss', 'boss pw')
        self.assertEqual(code, 303)
        flags = [f.strip() for f in r.getheader('Set-Cookie').split(';')]
        self.assertEqual(flags[1:], ['Path=/', 'HttpOnly', 'SameSite=Strict', 'Secure'])
        self.assertEqual(b.req('GET', '/users')[0], 200)
        code, r, _ = Browser(s).login('boss', 'boss pw')
        self.assertNotIn('Secure', r.getheader('Set-Cookie'))

    def test_throttled_per_address_and_per_account(self):
        s = self.server({'auth.pair_fail_burst': '2', 'auth.pair_fail_per_min': '1',
                         'auth.ip_fail_burst': '5', 'auth.ip_fail_per_min': '1'},
                        admins={'boss': 'boss pw', 'chief': 'chief pw', 'head': 'head pw'})
        b = Browser(s)
        for _ in range(2):
            self.assertEqual(b.login('boss', 'guess')[0], 401)
        # This account from this address: refused unchecked, even with its password.
        code, r, text = b.login('boss', 'boss pw')
        self.assertEqual(code, 429)
        self.assertEqual(r.getheader('Retry-After'), '60')
        self.assertIn('Too many failed logins', text)
        self.assertIsNone(r.getheader('Set-Cookie'))
        # Another account from here still gets in, until the address is over its budget.
        self.assertEqual(Browser(s).login('chief', 'chief pw')[0], 303)
        for name in ('x1', 'x2', 'x3'):
            self.assertEqual(b.login(name, 'guess')[0], 401)
        code, r, _ = Browser(s).login('head', 'head pw')
        self.assertEqual((code, r.getheader('Retry-After')), (429, '60'))

    def test_session_expires_when_idle(self):
        s = self.server({'admin.session_idle': '1'}, admins={'boss': 'boss pw'})
        b = Browser(s)
        b.login('boss', 'boss pw')
        self.assertEqual(b.req('GET', '/dashboard')[0], 200)
        # Every request keeps it alive, so nothing may ask while it idles: the time passing
        # is what is tested here.
        self.assertEqual(b.req('GET', '/users')[0], 200)
        time.sleep(1.5)
        self.assert_to_login(b.req('GET', '/dashboard'), 'an idle session')
        self.assert_to_login(b.req('GET', '/users'), 'an idle session, still')


class CsrfTest(ConsoleCase):
    def test_forms_need_the_token_and_change_nothing_without_it(self):
        s = self.server(admins={'boss': 'boss pw'}, users={'alice': 'alice pw'})
        b = Browser(s)
        b.login('boss', 'boss pw')
        token = b.csrf()
        other = Browser(s)
        other.login('boss', 'boss pw')
        other_token = other.csrf()
        self.assertNotEqual(token, other_token)
        create = {'username': 'mallory', 'password': 'mallory pw'}
        for form, headers in ((create, {}), (dict(create, csrf=''), {}),
                              (dict(create, csrf='0' * 64), {}),
                              (dict(create, csrf=token[:-1]), {}),
                              (dict(create, csrf=other_token), {}),
                              (dict(create, csrf=token),
                               {'Origin': 'http://evil.example'}),
                              (dict(create, csrf=token),
                               {'Origin': 'https://127.0.0.1:%d' % b.port})):
            code, _, text = b.req('POST', '/users', form, headers=headers)
            self.assertEqual(code, 403, (form, headers))
            self.assertNotIn(token, text)
        # Form-encoded only: a JSON or text body is not a form of ours.
        self.assertEqual(b.req('POST', '/users', raw=b'csrf=%s&username=m&password=p' %
                               token.encode(), headers={'Content-Type': 'text/plain'})[0], 415)
        self.assertFalse(self.user_exists(s, 'mallory'))
        # Password, delete and kick refused the same way: alice keeps her password, her
        # account and her session.
        alice = s.login('alice', 'alice pw', resource='r')
        self.addCleanup(alice.close)
        for path, form in (('/users/alice/password', {'password': 'taken over'}),
                           ('/users/alice/delete', {'confirm': 'yes'}),
                           ('/sessions/kick', {'jid': 'alice@localhost/r'})):
            self.assertEqual(b.req('POST', path, dict(form, csrf='1' * 64))[0], 403, path)
            self.assertEqual(b.req('POST', path, form)[0], 403, path)
        self.assertTrue(alice.is_open())
        self.assertTrue(self.user_exists(s, 'alice'))
        c = Client(s)
        self.addCleanup(c.close)
        self.assertEqual(c.login('alice', 'alice pw', resource='s'), 'alice@localhost/s')
        # "null" (what a browser sends for a form under Referrer-Policy: no-referrer) is no
        # pass without the token.
        self.assertEqual(b.req('POST', '/users', create, headers={'Origin': 'null'})[0], 403)
        self.assertFalse(self.user_exists(s, 'mallory'))
        # With the token (and the page's own Origin, as a browser sends it): done.
        code, r, _ = b.req('POST', '/users', dict(create, csrf=token),
                           headers={'Origin': 'http://127.0.0.1:%d' % b.port})
        self.assertEqual((code, r.getheader('Location')), (303, '/users/mallory'))
        self.assertTrue(self.user_exists(s, 'mallory'))
        code, _, text = b.req('GET', '/users/mallory')
        self.assertIn('Created mallory.', text)  # the flash, once
        self.assertNotIn('Created mallory.', b.req('GET', '/users/mallory')[2])


class DoorsTest(ConsoleCase):
    def test_every_page_needs_a_session(self):
        s = self.server(admins={'boss': 'boss pw'})
        for cookie in (None, 'cd' * 32, 'not hex', 'ab' * 31):
            b = Browser(s)
            b.cookie = cookie
            for path in PAGES:
                self.assert_to_login(b.req('GET', path), (cookie, path))
            for path in FORMS:
                code, _, text = b.req('POST', path, {'csrf': 'a' * 64})
                self.assertEqual(code, 403, (cookie, path))
                self.assertIn('not logged in', text)
            # Open: the root (to the login), the login page, the assets.
            code, r, _ = b.req('GET', '/')
            self.assertEqual((code, r.getheader('Location')), (303, '/login'))
            self.assertEqual(b.req('GET', '/login')[0], 200)
            code, r, js = b.req('GET', '/assets/console.js')
            self.assertEqual(code, 200)
            self.assertTrue(r.getheader('Content-Type').startswith('text/javascript'))
            self.assertEqual(r.getheader('X-Content-Type-Options'), 'nosniff')
        # Other methods on a console path: 405, with what it allows.
        code, r, _ = Browser(s).req('DELETE', '/users')
        self.assertEqual((code, r.getheader('Allow')), (405, 'GET, POST'))
        self.assertEqual(Browser(s).req('POST', '/assets/console.css', {})[0], 405)

    def test_setup_first_then_login(self):
        s = self.server()
        b = Browser(s)
        code, r, _ = b.req('GET', '/')
        self.assertEqual((code, r.getheader('Location')), (303, '/setup'))
        code, r, page = b.req('GET', '/setup')
        self.assertEqual(code, 200)
        self.assertNotIn('<script>', page)
        self.assertNotIn('unsafe-inline', r.getheader('Content-Security-Policy'))
        with open(os.path.join(s.data_dir, 'setup.token')) as f:
            token = f.read().strip()
        conn = http.client.HTTPConnection('127.0.0.1', b.port, timeout=10)
        conn.request('POST', '/api/v1/setup',
                      body=('{"token":"%s","username":"root","password":"root pw"}' % token),
                      headers={'Content-Type': 'application/json'})
        self.assertEqual(conn.getresponse().status, 201)
        conn.close()
        code, r, _ = b.req('GET', '/')
        self.assertEqual((code, r.getheader('Location')), (303, '/login'))
        self.assertEqual(b.req('GET', '/setup')[0], 410)
        self.assertEqual(b.login('root', 'root pw')[0], 303)
        code, r, _ = b.req('GET', '/')
        self.assertEqual((code, r.getheader('Location')), (303, '/dashboard'))

    def test_host_header_refused_on_console_routes(self):
        s = self.server(admins={'boss': 'boss pw'})
        b = Browser(s)
        b.login('boss', 'boss pw')
        for host in ('evil.example', 'localhost.evil.example', '127.0.0.1.nip.io'):
            for method, path in (('GET', '/'), ('GET', '/login'), ('GET', '/dashboard'),
                                 ('GET', '/users'), ('GET', '/assets/console.js'),
                                 ('POST', '/login'), ('POST', '/logout')):
                code, _, _ = b.req(method, path, {} if method == 'POST' else None,
                                   headers={'Host': host})
                self.assertEqual(code, 421, (host, method, path))
        self.assertEqual(b.req('GET', '/dashboard', headers={'Host': 'localhost'})[0], 200)

    TRICKS = [
        '/dashboard/', '//dashboard', '/./dashboard', '/Dashboard', '/dashboard;x=1',
        '/dashboard%2f', '/dashboard%00', '/%64ashboard', '/login/../dashboard',
        '/login%2f..%2fdashboard', '/login;/../dashboard', '/login/..%2fusers',
        '/setup/..%2fdashboard', '/setup%2f..%2fusers', '/assets/../dashboard',
        '/assets/..%2f..%2fetc/passwd', '/assets/%2e%2e/%2e%2e/etc/passwd',
        '/assets/%252e%252e/%252e%252e/etc/passwd', '/assets/%u002e%u002e/etc/passwd',
        '/assets/console.js/', '/assets/console.js;x', '/assets/console.js%00',
        '/assets/console.js%2f', '/assets\\console.js', '/assets/..\\..\\etc\\passwd',
        '/assets/%5c..%5cconsole.js', '/assets/', '/assets', '/assets/console.JS',
        '/assets/./console.js', '/assets//console.js', '/%2e%2e/%2e%2e/etc/passwd',
        '/users/..%2f..%2fapi/v1/status', '/users/%2e%2e%2fstatus', '/users/boss/..',
        '/users/boss/../../api/v1/users', '/users/boss;x/delete', '/users//password',
        '/users/boss/password/', '/sessions/kick/', '/sessions/../api/v1/sessions',
        '/log;level=debug', '/../../etc/passwd', '/etc/passwd', '/console.js',
    ]

    def test_path_tricks_reach_nothing(self):
        s = self.server(admins={'boss': 'boss pw'})
        with open(os.path.join(s.data_dir, 'api.key')) as f:
            secret = f.read().strip()
        anon = Browser(s)
        for path in self.TRICKS:
            for method in ('GET', 'POST'):
                code, r, text = anon.req(method, path, {} if method == 'POST' else None)
                # Nothing is served: the API's 401, the console's way to its login page, or a
                # refusal (a POST to a page that only shows).
                self.assertIn(code, (401, 303, 403, 405), (method, path, text[:200]))
                if code == 303:
                    self.assertEqual(r.getheader('Location'), '/login', path)
                self.assertNotIn('root:', text)
                self.assertNotIn(secret, text)
                self.assertNotIn('use strict', text)
        # Logged in, the same paths name nothing but the pages they would be anyway
        # (/users/..%2f... decodes to a name with a slash: no user page).
        b = Browser(s)
        b.login('boss', 'boss pw')
        for path in self.TRICKS:
            code, _, text = b.req('GET', path)
            self.assertNotEqual(code, 200, path)
            self.assertNotIn('root:', text)
            self.assertNotIn('use strict', text)
        # The assets are exactly two paths.
        self.assertEqual(anon.req('GET', '/assets/console.js')[0], 200)
        self.assertEqual(anon.req('GET', '/assets/console.css')[0], 200)


class EscapingTest(ConsoleCase):
    HOSTILE = '"><script>alert(1)</script>\'<img src=x onerror=alert(2)>'

    def test_hostile_text_is_escaped(self):
        s = self.server(admins={'boss': 'boss pw'})
        b = Browser(s)
        b.login('boss', 'boss pw')
        # Reflected: the search box shows what was searched for.
        code, _, text = b.req('GET', '/users?q=' + quote(self.HOSTILE))
        self.assertEqual(code, 200)
        self.assertNotIn('<script>alert', text)
        self.assertNotIn('<img src=x', text)
        self.assertIn('&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#39;&lt;img', text)
        # A name no account can have: refused, and the flash does not echo markup.
        token = b.csrf()
        code, r, _ = b.req('POST', '/users', {'csrf': token, 'username': self.HOSTILE,
                                               'password': 'x pw'})
        self.assertEqual((code, r.getheader('Location')), (303, '/users'))
        text = b.req('GET', '/users')[2]
        self.assertIn('Refused (400)', text)
        self.assertNotIn('<script>alert', text)
        # Stored: a refused Host header is logged, and the log tail shows it escaped.
        conn = http.client.HTTPConnection('127.0.0.1', b.port, timeout=10)
        conn.request('GET', '/', headers={'Host': '<script>alert(3)</script>'})
        self.assertEqual(conn.getresponse().status, 421)
        conn.close()
        code, _, text = b.req('GET', '/log?level=debug&n=1000')
        self.assertEqual(code, 200)
        self.assertIn('refused Host &#39;&lt;script&gt;alert(3)&lt;/script&gt;&#39;', text)
        self.assertNotIn('<script>alert', text)
        # The user page of an odd but valid name, and its links, percent-encoded.
        code, r, _ = b.req('POST', '/users', {'csrf': token, 'username': 'j.doe+x%y',
                                               'password': 'x pw long'})
        self.assertEqual(r.getheader('Location'), '/users/j.doe%2Bx%25y')
        code, _, text = b.req('GET', '/users/j.doe%2Bx%25y')
        self.assertEqual(code, 200)
        self.assertIn('action="/users/j.doe%2Bx%25y/password"', text)


class PagesTest(ConsoleCase):
    def test_user_created_logs_in_is_seen_and_kicked(self):
        s = self.server(admins={'boss': 'boss pw'})
        b = Browser(s)
        b.login('boss', 'boss pw')
        token = b.csrf()
        code, r, _ = b.req('POST', '/users', {'csrf': token, 'username': 'carol',
                                               'password': 'carol pw'})
        self.assertEqual((code, r.getheader('Location')), (303, '/users/carol'))
        c = Client(s)
        self.addCleanup(c.close)
        self.assertEqual(c.login('carol', 'carol pw', resource='phone'), 'carol@localhost/phone')
        code, _, page = b.req('GET', '/sessions')
        self.assertEqual(code, 200)
        row = re.search(r'<tr><td data-label="JID">carol@localhost/phone</td>.*?</tr>', page).group(0)
        cells = re.findall(r'<td[^>]*>([^<]*)</td>', row)
        self.assertEqual(cells[:7], ['carol@localhost/phone', 'phone', '127.0.0.1', c.tls_version(),
                                     'SCRAM-SHA-256', 'tcp', cells[6]])
        self.assertRegex(cells[6], r'^\d+ s$')
        self.assertIn('1 online', page)
        # The user's page lists it too.
        self.assertIn('<td data-label="JID">carol@localhost/phone</td>',
                      b.req('GET', '/users/carol')[2])
        # Kick: the stream ends with a stream error, the page says so.
        code, r, _ = b.req('POST', '/sessions/kick', {'csrf': token,
                                                      'jid': 'carol@localhost/phone',
                                                      'back': '/sessions'})
        self.assertEqual((code, r.getheader('Location')), (303, '/sessions'))
        c.assert_stream_error('policy-violation')
        page = b.req('GET', '/sessions')[2]
        self.assertIn('Ended carol@localhost/phone.', page)
        self.assertNotIn('>carol@localhost/phone</td>', page)
        # A kick's way back is a page of ours, never another site.
        code, r, _ = b.req('POST', '/sessions/kick', {'csrf': token, 'jid': 'carol@localhost/x',
                                                      'back': '//evil.example/'})
        self.assertEqual(r.getheader('Location'), '/sessions')
        self.assertIn('Refused (404)', b.req('GET', '/sessions')[2])
        # Password reset and delete (with its confirmation box).
        code, r, _ = b.req('POST', '/users/carol/password', {'csrf': token, 'password': 'new pw'})
        self.assertEqual(r.getheader('Location'), '/users/carol')
        c2 = Client(s)
        self.addCleanup(c2.close)
        self.assertEqual(c2.login('carol', 'new pw', resource='r'), 'carol@localhost/r')
        code, r, _ = b.req('POST', '/users/carol/delete', {'csrf': token})
        self.assertEqual(r.getheader('Location'), '/users/carol')
        self.assertTrue(self.user_exists(s, 'carol'))
        code, r, _ = b.req('POST', '/users/carol/delete', {'csrf': token, 'confirm': 'yes'})
        self.assertEqual(r.getheader('Location'), '/users')
        self.assertFalse(self.user_exists(s, 'carol'))
        self.assertIn('Deleted carol.', b.req('GET', '/users')[2])
        # The dashboard's numbers and its history, as the API has them.
        code, _, dash = b.req('GET', '/dashboard')
        self.assertIn('<span>Domain</span><b>localhost</b>', dash)
        self.assertIn('<polyline points="', dash)
        code, r, hist = b.req('GET', '/dashboard/history')
        self.assertEqual((code, r.getheader('Content-Type')), (200, 'application/json'))
        self.assertIn('"step_s":10', hist)

    def test_lock_and_administrator_flag(self):
        s = self.server(admins={'boss': 'boss pw', 'chief': 'chief pw', 'head': 'head pw'},
                        users={'alice': 'alice pw'})
        b, c, h = Browser(s), Browser(s), Browser(s)
        for br, name in ((b, 'boss'), (c, 'chief'), (h, 'head')):
            self.assertEqual(br.login(name, name + ' pw')[0], 303)
        token = b.csrf()
        alice = s.login('alice', 'alice pw', resource='r')
        self.addCleanup(alice.close)
        page = b.req('GET', '/users/alice')[2]
        self.assertIn('<option value="no" selected>no</option></select></label><label>Locked', page)
        code, r, _ = b.req('POST', '/users/alice/flags', {'csrf': token, 'admin': 'no',
                                                          'locked': 'yes'})
        self.assertEqual((code, r.getheader('Location')), (303, '/users/alice'))
        self.assertIn('alice: administrator no, locked.', b.req('GET', '/users/alice')[2])
        self.assertTrue(json_of(self.api(s, 'GET', '/api/v1/users/alice'))['locked'])
        alice.assert_stream_error('policy-violation')  # her session ends at once
        with self.assertRaises(AssertionError):
            Client(s).login('alice', 'alice pw', resource='again')
        # An administrator made a user, or locked, is logged out of the console at once and
        # cannot log in again (the same answer as a wrong password).
        b.req('POST', '/users/chief/flags', {'csrf': token, 'admin': 'no', 'locked': 'no'})
        self.assertFalse(json_of(self.api(s, 'GET', '/api/v1/users/chief'))['admin'])
        self.assert_to_login(c.req('GET', '/dashboard'), 'a former administrator')
        self.assertEqual(Browser(s).login('chief', 'chief pw')[0], 401)
        b.req('POST', '/users/head/flags', {'csrf': token, 'admin': 'yes', 'locked': 'yes'})
        self.assert_to_login(h.req('GET', '/dashboard'), 'a locked administrator')
        code, _, text = Browser(s).login('head', 'head pw')
        self.assertEqual(code, 401)
        self.assertIn('Wrong name or password.', text)
        # Deleted: the same.
        b.req('POST', '/users/head/flags', {'csrf': token, 'admin': 'yes', 'locked': 'no'})
        self.assertEqual(h.login('head', 'head pw')[0], 303)
        b.req('POST', '/users/head/delete', {'csrf': token, 'confirm': 'yes'})
        self.assert_to_login(h.req('GET', '/dashboard'), 'a deleted administrator')
        self.assertEqual(b.req('GET', '/dashboard')[0], 200)

    def test_certificate_shown_and_replaced(self):
        from test_admin_api_certificate import make_cert
        s = self.server(admins={'boss': 'boss pw'})
        b = Browser(s)
        b.login('boss', 'boss pw')
        before = json_of(self.api(s, 'GET', '/api/v1/certificate'))
        code, _, page = b.req('GET', '/certificate')
        self.assertEqual(code, 200)
        self.assertIn('<dt>SHA-256</dt><dd>%s</dd>' % before['sha256'], page)
        self.assertIn('id="pemfile"', page)
        token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
        pem, kpem, _ = make_cert('<new>.example', names=('localhost', 'new.example'))
        other_pem, other_key, _ = make_cert('other.example')
        code, r, _ = b.req('POST', '/certificate', {'csrf': token, 'cert': pem, 'key': other_key})
        self.assertEqual((code, r.getheader('Location')), (303, '/certificate'))
        self.assertIn('Refused (400)', b.req('GET', '/certificate')[2])
        self.assertEqual(json_of(self.api(s, 'GET', '/api/v1/certificate'))['sha256'],
                         before['sha256'])
        b.req('POST', '/certificate', {'csrf': token, 'cert': pem, 'key': kpem})
        page = b.req('GET', '/certificate')[2]
        self.assertIn('The certificate is replaced.', page)
        self.assertIn('CN=\\&lt;new\\&gt;.example', page)  # RFC 2253 escapes
        self.assertIn('<dt>Names</dt><dd>localhost, new.example</dd>', page)
        self.assertNotEqual(json_of(self.api(s, 'GET', '/api/v1/certificate'))['sha256'],
                            before['sha256'])

    def test_settings_change_live(self):
        s = self.server(admins={'boss': 'boss pw'})
        b = Browser(s)
        b.login('boss', 'boss pw')
        code, _, page = b.req('GET', '/settings')
        self.assertEqual(code, 200)
        token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page).group(1)
        box = re.search(r'<div class="box" id="k-registration.open">.*?</div>', page, re.S).group(0)
        self.assertIn('<option selected>false</option>', box)
        # Keys given on the command line are fixed for the run: shown, not editable.
        fixed = re.search(r'<div class="box" id="k-limits.preauth_per_ip">.*?</div>', page, re.S)
        self.assertNotIn('<form', fixed.group(0))
        self.assertIn('fixed for this run', fixed.group(0))
        code, r, _ = b.req('POST', '/settings', {'csrf': token, 'key': 'registration.open',
                                                 'value': 'true'})
        self.assertEqual((code, r.getheader('Location')), (303, '/settings#k-registration.open'))
        self.assertEqual(json_of(self.api(s, 'GET', '/api/v1/properties/registration.open'))['value'],
                         'true')
        page = b.req('GET', '/settings')[2]
        self.assertIn('registration.open is now true.', page)
        # Applied live: in-band registration (XEP-0077) is open now.
        c = Client(s)
        self.addCleanup(c.close)
        c.connect()
        c.open_stream()
        c.starttls()
        c.open_stream()
        reply = c.iq('set', "<query xmlns='jabber:iq:register'><username>newbie</username>"
                     "<password>newbie pw</password></query>", to=None)
        self.assertEqual(reply.get('type'), 'result')
        self.assertTrue(self.user_exists(s, 'newbie'))
        # A bad value: refused, nothing changed; back to the default.
        b.req('POST', '/settings', {'csrf': token, 'key': 'registration.open', 'value': 'maybe'})
        self.assertIn('Refused (400)', b.req('GET', '/settings')[2])
        code, r, _ = b.req('POST', '/settings/reset', {'csrf': token, 'key': 'registration.open'})
        self.assertEqual(code, 303)
        self.assertEqual(json_of(self.api(s, 'GET', '/api/v1/properties/registration.open'))['value'],
                         'false')

    def test_rooms_and_roster(self):
        hostile = EscapingTest.HOSTILE
        s = self.server(admins={'boss': 'boss pw'}, users={'alice': 'alice pw'})
        b = Browser(s)
        b.login('boss', 'boss pw')
        token = b.csrf('/rooms')
        code, r, _ = b.req('POST', '/rooms', {'csrf': token, 'name': 'lounge', 'title': hostile,
                                              'description': 'for <b>everyone</b>',
                                              'public': '1'})
        self.assertEqual((code, r.getheader('Location')), (303, '/rooms/lounge'))
        room = json_of(self.api(s, 'GET', '/api/v1/rooms/lounge'))
        self.assertEqual(room['name'], hostile)
        self.assertIn({'jid': 'boss@localhost', 'affiliation': 'owner', 'nick': None},
                      room['affiliations'])
        page = b.req('GET', '/rooms/lounge')[2]
        self.assertIn('Created the room lounge.', page)
        # Hostile room names and descriptions, escaped on the list and on the room's page.
        for path in ('/rooms', '/rooms/lounge', '/rooms?q=' + quote(hostile)):
            code, _, page = b.req('GET', path)
            self.assertEqual(code, 200, path)
            self.assertNotIn('<script>alert', page)
            self.assertNotIn('<b>everyone', page)
            self.assertIn('&lt;script&gt;alert(1)&lt;/script&gt;', page, path)
        # The form is the XEP-0045 owner form's fields, each as its type asks.
        page = b.req('GET', '/rooms/lounge')[2]
        self.assertIn('<select name="f.muc#roomconfig_maxusers">', page)
        self.assertIn('<select name="m.muc#roomconfig_presencebroadcast" multiple>', page)
        self.assertIn('<textarea name="j.muc#roomconfig_roomowners" rows="3">boss@localhost\n'
                      '</textarea>', page)
        self.assertIn('name="p.muc#roomconfig_roomsecret" value=""', page)
        form = {'csrf': token, 'f.muc#roomconfig_roomname': 'The lounge',
                'f.muc#roomconfig_maxusers': '20', 'f.muc#roomconfig_membersonly': '1',
                'j.muc#roomconfig_roomowners': 'boss@localhost\r\n',
                'j.muc#roomconfig_roomadmins': ' alice@localhost \r\n\r\n',
                'p.muc#roomconfig_roomsecret': ''}
        body = '&'.join('%s=%s' % (quote(k), quote(v)) for k, v in form.items())
        body += '&m.muc%23roomconfig_presencebroadcast=&m.muc%23roomconfig_presencebroadcast=moderator'
        code, r, _ = b.req('POST', '/rooms/lounge/config', raw=body.encode(),
                           headers={'Content-Type': 'application/x-www-form-urlencoded'})
        self.assertEqual((code, r.getheader('Location')), (303, '/rooms/lounge'))
        page = b.req('GET', '/rooms/lounge')[2]
        self.assertIn('The configuration of lounge is saved.', page)
        config = json_of(self.api(s, 'GET', '/api/v1/rooms/lounge'))['config']
        self.assertEqual(config['muc#roomconfig_roomname'], 'The lounge')
        self.assertEqual(config['muc#roomconfig_maxusers'], '20')
        self.assertEqual(config['muc#roomconfig_membersonly'], '1')
        self.assertEqual(config['muc#roomconfig_presencebroadcast'], ['moderator'])
        self.assertEqual(config['muc#roomconfig_roomadmins'], ['alice@localhost'])
        # A refused configuration says why and changes nothing.
        b.req('POST', '/rooms/lounge/config', {'csrf': token, 'f.muc#roomconfig_maxusers': 'lots'})
        self.assertIn('Refused (400)', b.req('GET', '/rooms/lounge')[2])
        # Affiliations: set, then removed.
        code, r, _ = b.req('POST', '/rooms/lounge/affiliation', {'csrf': token,
                                                                  'jid': 'carol@localhost',
                                                                  'affiliation': 'member'})
        self.assertEqual(code, 303)
        affs = json_of(self.api(s, 'GET', '/api/v1/rooms/lounge'))['affiliations']
        self.assertIn({'jid': 'carol@localhost', 'affiliation': 'member', 'nick': None}, affs)
        b.req('POST', '/rooms/lounge/affiliation', {'csrf': token, 'jid': 'carol@localhost',
                                                    'affiliation': 'none'})
        affs = json_of(self.api(s, 'GET', '/api/v1/rooms/lounge'))['affiliations']
        self.assertNotIn('carol@localhost', [a['jid'] for a in affs])
        # Destroy: only with the box ticked.
        code, r, _ = b.req('POST', '/rooms/lounge/destroy', {'csrf': token})
        self.assertEqual(r.getheader('Location'), '/rooms/lounge')
        self.assertEqual(self.api(s, 'GET', '/api/v1/rooms/lounge')[0], 200)
        code, r, _ = b.req('POST', '/rooms/lounge/destroy', {'csrf': token, 'confirm': 'yes',
                                                             'reason': 'closing'})
        self.assertEqual(r.getheader('Location'), '/rooms')
        self.assertEqual(self.api(s, 'GET', '/api/v1/rooms/lounge')[0], 404)
        self.assertIn('Destroyed the room lounge.', b.req('GET', '/rooms')[2])
        self.assertEqual(b.req('GET', '/rooms/lounge')[0], 404)
        # The roster on the user's page.
        self.assertEqual(self.api(s, 'PUT', '/api/v1/users/alice/roster/bob@localhost',
                                  {'name': 'Bob <the builder>', 'groups': ['Work', 'Friends']})[0],
                         200)
        page = b.req('GET', '/users/alice')[2]
        self.assertIn('<td data-label="Contact">bob@localhost</td><td data-label="Name">Bob '
                      '&lt;the builder&gt;</td><td data-label="Subscription">none</td>'
                      '<td data-label="Groups">Work, Friends</td>', page)


class ApiTest(ConsoleCase):
    """The two API routes the console's pages run: /api/v1/status/history and /api/v1/log."""

    def test_history_and_log_routes(self):
        s = self.server(admins={'boss': 'boss pw'})
        code, body = self.api(s, 'GET', '/api/v1/status/history')
        self.assertEqual(code, 200)
        doc = json_of((code, body))
        self.assertEqual((doc['step_s'], doc['span_s']), (10, 3600))
        self.assertIsInstance(doc['samples'], list)
        self.assertEqual(self.api(s, 'POST', '/api/v1/status/history', {})[0], 405)
        self.assertEqual(self.api(s, 'POST', '/api/v1/log', {})[0], 405)
        # A line only the log can hold, then the tail at each level.
        conn = http.client.HTTPConnection('127.0.0.1', s.ports['admin'], timeout=10)
        conn.request('GET', '/', headers={'Host': 'marker.example'})
        self.assertEqual(conn.getresponse().status, 421)
        conn.close()
        doc = json_of(self.api(s, 'GET', '/api/v1/log?level=info&limit=1000'))
        self.assertEqual(doc['level'], 'info')
        self.assertTrue(any("refused Host 'marker.example'" in l['text'] for l in doc['lines']))
        self.assertTrue(all(l['level'] in ('error', 'warn', 'info') for l in doc['lines']))
        doc = json_of(self.api(s, 'GET', '/api/v1/log?limit=3'))
        self.assertEqual(len(doc['lines']), 3)
        doc = json_of(self.api(s, 'GET', '/api/v1/log?level=error'))
        self.assertFalse(any('marker.example' in l['text'] for l in doc['lines']))
        for q in ('level=loud', 'limit=0', 'limit=1001', 'limit=x', 'limit='):
            self.assertEqual(self.api(s, 'GET', '/api/v1/log?' + q)[0], 400, q)
        # Authentication as for every route; described in the OpenAPI document.
        conn = http.client.HTTPConnection('127.0.0.1', s.ports['admin'], timeout=10)
        conn.request('GET', '/api/v1/log')
        self.assertEqual(conn.getresponse().status, 401)
        conn.close()
        api = json_of(self.api(s, 'GET', '/api/v1/openapi.json'))
        self.assertEqual(set(api['paths']['/log']), {'get'})
        self.assertEqual(set(api['paths']['/status/history']), {'get'})


def json_of(res):
    import json
    return json.loads(res[1])


if __name__ == '__main__':
    main()
