"""hearthctl's offline account commands against a data directory, checked
by logging in to a real hearthd afterwards."""

import os
import re
import subprocess
import unittest

from hearth import Client, SaslFailure, Server, main


class HearthctlTest(unittest.TestCase):
    def server(self, **kw):
        s = Server(**kw)
        self.addCleanup(s.close)
        return s

    def assert_login(self, s, user, pw, ok=True):
        c = Client(s)
        self.addCleanup(c.close)
        c.connect()
        c.open_stream()
        c.starttls()
        c.open_stream()
        if ok:
            c.auth_scram(user, pw)
            c._new_parser()
            c.open_stream()
            self.assertEqual(c.bind('ctl'), '%s@localhost/ctl' % user)
        else:
            with self.assertRaises(SaslFailure) as cm:
                c.auth_scram(user, pw)
            self.assertEqual(cm.exception.condition, 'not-authorized')
        c.close()

    def assert_fails(self, r, pattern):
        self.assertEqual(r.returncode, 1, 'stdout=%r stderr=%r' % (r.stdout, r.stderr))
        self.assertRegex(r.stderr, re.compile(pattern, re.I))

    def test_adduser_then_login(self):
        s = self.server()
        r = s.ctl('adduser', 'dave@localhost', '--password-stdin', input='s3cret pass\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        s.start()
        self.assert_login(s, 'dave', 's3cret pass')
        self.assert_login(s, 'dave', 's3cret', ok=False)
        s.wait_log(r'authenticated dave@localhost with SCRAM-SHA-256')

    def test_adduser_plain_login(self):
        s = self.server(users={'erin': 'pw-erin'})
        s.start()
        c = Client(s)
        self.addCleanup(c.close)
        self.assertEqual(c.login('erin', 'pw-erin', mech='PLAIN', resource='p'), 'erin@localhost/p')
        d = Client(s)
        self.addCleanup(d.close)
        self.assertEqual(d.login('erin', 'pw-erin', mech='SCRAM-SHA-1', resource='s1'), 'erin@localhost/s1')

    def test_duplicate_adduser(self):
        s = self.server(users={'alice': 'one'})
        s.start()
        s.stop()
        r = s.ctl('adduser', 'alice@localhost', '--password-stdin', input='two\n')
        self.assert_fails(r, r'alice@localhost.*exists|exists.*alice')
        s.start()
        self.assert_login(s, 'alice', 'one')  # the first password still holds

    def test_deluser(self):
        s = self.server(users={'alice': 'one', 'bob': 'two'})
        s.start()
        self.assert_login(s, 'alice', 'one')
        s.stop()
        r = s.ctl('deluser', 'alice@localhost')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = s.ctl('deluser', 'alice@localhost')
        self.assert_fails(r, r'no such user|not found|does not exist')
        s.start()
        self.assert_login(s, 'alice', 'one', ok=False)
        self.assert_login(s, 'bob', 'two')

    def test_passwd(self):
        s = self.server(users={'alice': 'old-pw'})
        r = s.ctl('passwd', 'alice@localhost', '--password-stdin', input='new-pw\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        s.start()
        self.assert_login(s, 'alice', 'old-pw', ok=False)
        self.assert_login(s, 'alice', 'new-pw')
        c = Client(s)
        self.addCleanup(c.close)
        c.login('alice', 'new-pw', mech='PLAIN')

    def test_passwd_unknown_user(self):
        s = self.server(users={'alice': 'pw'})
        r = s.ctl('passwd', 'zed@localhost', '--password-stdin', input='x\n')
        self.assert_fails(r, r'no such user|not found|does not exist')

    def test_listusers(self):
        s = self.server(users={'alice': 'a', 'bob': 'b'}, admins={'root': 'r'})
        r = s.ctl('listusers')
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = sorted(l.strip() for l in r.stdout.splitlines() if l.strip())
        self.assertEqual(len(lines), 3, r.stdout)
        self.assertEqual(lines[0], 'alice@localhost')
        self.assertEqual(lines[1], 'bob@localhost')
        self.assertTrue(lines[2].startswith('root@localhost'), r.stdout)
        self.assertIn('admin', lines[2])

    def test_listusers_empty(self):
        s = self.server(users={'alice': 'a'})
        s.ctl('deluser', 'alice@localhost')
        r = s.ctl('listusers')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), '')

    def test_refuses_while_running(self):
        s = self.server(users={'alice': 'a'})
        s.start()
        for args, inp in ((('adduser', 'bob@localhost', '--password-stdin'), 'b\n'),
                          (('listusers',), None),
                          (('deluser', 'alice@localhost'), None),
                          (('passwd', 'alice@localhost', '--password-stdin'), 'x\n')):
            with self.subTest(cmd=args[0]):
                r = s.ctl(*args, input=inp)
                self.assert_fails(r, r'running|in use|hearthd')
        s.assert_alive()
        self.assert_login(s, 'alice', 'a')
        self.assert_login(s, 'bob', 'b', ok=False)

    def test_second_hearthd_refuses(self):
        s = self.server()
        s.start()
        r = subprocess.run(s.command_line(), capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0)
        self.assertRegex(r.stdout + r.stderr, re.compile(r'running|in use|lock', re.I))
        s.assert_alive()

    def test_bad_jid(self):
        s = self.server()
        for jid in ('bad jid@localhost', '@localhost', 'localhost', 'a@b@localhost', 'alice@localhost/res',
                    'x' * 1100 + '@localhost', ''):
            with self.subTest(jid=jid[:40]):
                r = s.ctl('adduser', jid, '--password-stdin', input='pw\n')
                self.assert_fails(r, r'invalid|JID')

    def test_domain_not_served(self):
        s = self.server()
        r = s.ctl('adduser', 'carol@example.org', '--password-stdin', input='pw\n')
        self.assert_fails(r, r'example\.org')
        r = s.ctl('listusers')
        self.assertEqual(r.stdout.strip(), '')

    def test_jid_is_prepared(self):
        # nodeprep case-folds: Alice@LOCALHOST is alice@localhost
        s = self.server()
        r = s.ctl('adduser', 'Alice@LOCALHOST', '--password-stdin', input='pw\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        r = s.ctl('adduser', 'alice@localhost', '--password-stdin', input='pw2\n')
        self.assert_fails(r, r'exists')
        s.start()
        self.assert_login(s, 'alice', 'pw')

    def test_unknown_command(self):
        s = self.server()
        r = s.ctl('frobnicate')
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(r.stderr.strip())

    def test_empty_password_refused(self):
        s = self.server()
        r = s.ctl('adduser', 'gil@localhost', '--password-stdin', input='\n')
        self.assert_fails(r, r'password')


class HearthctlLiveTest(unittest.TestCase):
    """The same commands against a running hearthd, through its admin API and local key."""

    server = HearthctlTest.server
    assert_login = HearthctlTest.assert_login

    def live_server(self, **kw):
        s = Server(settings={'admin.port': '0'}, listeners=('c2s', 'admin'), **kw)
        self.addCleanup(s.close)
        s.start()
        return s

    def assert_live(self, r):
        self.assertEqual(r.returncode, 0, 'stdout=%r stderr=%r' % (r.stdout, r.stderr))
        self.assertIn("live: through hearthd's admin API", r.stderr)

    def assert_fails(self, r, pattern):
        self.assertEqual(r.returncode, 1, 'stdout=%r stderr=%r' % (r.stdout, r.stderr))
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertRegex(r.stderr, re.compile(pattern, re.I))

    def login(self, s, user, pw, resource):
        c = Client(s)
        self.addCleanup(c.close)
        c.login(user, pw, resource=resource)
        return c

    def test_account_commands_live(self):
        s = self.live_server(users={'alice': 'alice-pw'})
        r = s.ctl('adduser', 'bob@localhost', '--password-stdin', input='bob-password\n')
        self.assert_live(r)
        self.assertIn('created bob@localhost', r.stderr)
        r = s.ctl('adduser', 'root@localhost', '--admin', '--password-stdin', input='root-pw\n')
        self.assert_live(r)
        self.assertIn('(admin)', r.stderr)
        self.assert_fails(s.ctl('adduser', 'bob@localhost', '--password-stdin', input='other-pw\n'),
                          r'bob@localhost already exists')
        self.assert_fails(s.ctl('adduser', 'carol@localhost', '--password-stdin', input='pw\n'),
                          r'password too short')
        bob = self.login(s, 'bob', 'bob-password', 'b')
        r = s.ctl('listusers')
        self.assert_live(r)
        self.assertEqual(r.stdout.splitlines(),
                         ['alice@localhost', 'bob@localhost', 'root@localhost (admin)'])
        r = s.ctl('passwd', 'alice@localhost', '--password-stdin', input='new-alice\n')
        self.assert_live(r)
        self.assert_login(s, 'alice', 'new-alice')
        self.assert_login(s, 'alice', 'alice-pw', ok=False)
        self.assert_fails(s.ctl('passwd', 'zed@localhost', '--password-stdin', input='zed-pw\n'),
                          r'no such user zed@localhost')
        r = s.ctl('deluser', 'bob@localhost')
        self.assert_live(r)
        bob.assert_stream_error('not-authorized')
        self.assert_login(s, 'bob', 'bob-password', ok=False)
        self.assert_fails(s.ctl('deluser', 'bob@localhost'), r'no such user bob@localhost')
        self.assert_fails(s.ctl('deluser', 'bob@example.org'), r'example\.org')
        # Stopped, the same commands work on the database and say so.
        s.stop()
        r = s.ctl('listusers')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('offline: hearthd is stopped; on the database', r.stderr)
        self.assertEqual(r.stdout.splitlines(), ['alice@localhost', 'root@localhost (admin)'])
        r = s.ctl('adduser', 'dave@localhost', '--password-stdin', input='dave-pw\n')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('offline', r.stderr)
        for cmd in (('status',), ('sessions',), ('kick', 'alice@localhost'),
                    ('announce', 'hello')):
            self.assert_fails(s.ctl(*cmd), r'needs a running hearthd')

    def test_rooms_live(self):
        s = self.live_server(users={'alice': 'alice-pw'})
        r = s.ctl('rooms', 'create', 'lounge', 'alice@localhost')
        self.assert_live(r)
        self.assertIn('created room lounge@conference.localhost', r.stderr)
        self.assert_fails(s.ctl('rooms', 'create', 'lounge', 'alice@localhost'), r'room exists')
        self.assert_fails(s.ctl('rooms', 'create', 'x@elsewhere.example', 'alice'), r'HTTP 400')
        r = s.ctl('rooms')
        self.assert_live(r)
        self.assertEqual(r.stdout.splitlines(), ['lounge@conference.localhost\t0\t'])
        self.assertIn('1 room', r.stderr)
        r = s.ctl('rooms', 'destroy', 'lounge')
        self.assert_live(r)
        self.assertIn('destroyed room lounge', r.stderr)
        self.assert_fails(s.ctl('rooms', 'destroy', 'lounge'), r'no such room')
        self.assertEqual(s.ctl('rooms').stdout, '')
        for bad in (('rooms', 'create', 'x'), ('rooms', 'destroy'), ('rooms', 'rename', 'x')):
            self.assert_fails(s.ctl(*bad), r"expected 'rooms'")
        s.stop()
        self.assert_fails(s.ctl('rooms'), r'needs a running hearthd')

    def test_settings_live_and_offline(self):
        s = self.live_server(users={'alice': 'alice-pw'})
        r = s.ctl('get', 'offline.quota')
        self.assert_live(r)
        self.assertEqual(r.stdout, 'offline.quota = 1000\n')
        self.assertIn('the default', r.stderr)
        r = s.ctl('set', 'offline.quota', '7')
        self.assert_live(r)
        self.assertEqual(r.stdout, 'offline.quota = 7\n')
        self.assertIn('applied now', r.stderr)
        self.assertIn('stored in the database', s.ctl('get', 'offline.quota').stderr)
        self.assert_fails(s.ctl('set', 'offline.quota', 'many'), r'offline\.quota.*1000000')
        self.assert_fails(s.ctl('set', 'server.domain', 'example.org'),
                          r'cannot be changed while the server runs')
        self.assert_fails(s.ctl('set', 'log.level', 'warn'), r'fixed')  # the harness's --set
        self.assert_fails(s.ctl('set', 'no.such', '1'), r'unknown configuration key')
        self.assert_fails(s.ctl('set', 'offline.quota'), r'expected KEY VALUE')
        # Stopped: set writes the database and says so; the next start uses it.
        s.stop()
        r = s.ctl('set', 'registration.open', 'true')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('stored in the database for the next start', r.stderr)
        self.assertIn('offline: hearthd is stopped; on the database', r.stderr)
        r = s.ctl('get', 'offline.quota')
        self.assertEqual((r.returncode, r.stdout), (0, 'offline.quota = 7\n'), r.stderr)
        self.assertIn('offline', r.stderr)
        r = s.ctl('unset', 'offline.quota')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn('no longer stored', r.stderr)
        self.assert_fails(s.ctl('set', 'offline.quota', '-3'), r'offline\.quota')
        self.assert_fails(s.ctl('set', 'server.domain', 'x.example'), r'cannot be changed')
        s.start()
        r = s.ctl('get', 'registration.open')
        self.assert_live(r)
        self.assertEqual(r.stdout, 'registration.open = true\n')
        self.assertEqual(s.ctl('get', 'offline.quota').stdout, 'offline.quota = 1000\n')
        r = s.ctl('unset', 'registration.open')
        self.assert_live(r)
        self.assertIn('back to', r.stderr)
        self.assertEqual(s.ctl('get', 'registration.open').stdout, 'registration.open = false\n')

    def test_status_sessions_kick_announce_live(self):
        s = self.live_server(users={'alice': 'alice-pw', 'bob': 'bob-pw'})
        a1 = self.login(s, 'alice', 'alice-pw', 'one')
        a2 = self.login(s, 'alice', 'alice-pw', 'two')
        b = self.login(s, 'bob', 'bob-pw', 'b')
        b.send('<presence/>')
        b.recv_until(lambda e: e.tag.endswith('presence'))
        r = s.ctl('status')
        self.assert_live(r)
        self.assertIn('domain: localhost', r.stdout)
        self.assertIn('sessions_online: 3', r.stdout)
        r = s.ctl('sessions')
        self.assert_live(r)
        self.assertEqual(sorted(r.stdout.splitlines()),
                         ['alice@localhost/one bound unavailable 0',
                          'alice@localhost/two bound unavailable 0',
                          'bob@localhost/b bound available 0'])
        r = s.ctl('announce', '--subject', 'Notice', 'back', 'at', 'five')
        self.assert_live(r)
        self.assertIn('sent to 1 session(s)', r.stderr)
        m = b.recv_until(lambda e: e.tag.endswith('message'))
        self.assertEqual([x.text for x in m if x.tag.endswith('body')], ['back at five'])
        self.assert_fails(s.ctl('announce'), r'missing message')
        r = s.ctl('kick', 'alice@localhost/one')
        self.assert_live(r)
        self.assertIn('ended 1 session(s) of alice@localhost/one', r.stderr)
        a1.assert_stream_error('policy-violation')
        self.assertTrue(a2.is_open())
        self.assert_fails(s.ctl('kick', 'alice@localhost/one'), r'no session of alice@localhost/one')
        self.assert_live(s.ctl('kick', 'alice@localhost'))
        a2.assert_stream_error('policy-violation')

    def test_key_from_the_environment_and_stale_keys(self):
        s = self.live_server(users={'alice': 'alice-pw'})
        cmd = [s.hearthctl_path, '--data-dir', s.data_dir, '--set', 'server.domain=localhost',
               'listusers']
        env = dict(os.environ, HEARTH_API_KEY='hk_local_' + '0' * 64)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
        self.assert_fails(r, r'refused the key \(HTTP 401')
        with open(os.path.join(s.data_dir, 'api.key')) as f:
            key = f.read().strip()
        env['HEARTH_API_KEY'] = key
        os.unlink(os.path.join(s.data_dir, 'api.key'))
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
        self.assert_live(r)
        self.assertEqual(r.stdout.splitlines(), ['alice@localhost'])
        env.pop('HEARTH_API_KEY')
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
        self.assert_fails(r, r'API key .*api\.key cannot be read')

    def test_admin_api_off_refuses_clearly(self):
        s = self.server(users={'alice': 'a'})
        s.start()
        self.assert_fails(s.ctl('listusers'), r'running.*admin API is off')


if __name__ == '__main__':
    main()
