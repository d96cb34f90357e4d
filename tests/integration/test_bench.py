"""hearth-bench, the load generator, against a live hearthd on loopback with a few sessions:
every scenario, in-band registration, TLS with each mechanism, source addresses, the JSON
figures checked against each other (on an idle machine nothing is lost: delivered == sent),
a wrong password (every session failed, exit 1), a host that is not loopback (refused, exit 2)
and bad arguments (exit 2). Then the scenarios against Debian's Prosody, started by the test:
hearth-bench is a general XMPP load generator."""

import json
import os
import re
import subprocess
import unittest

from clientlib import Prosody
from hearth import DOMAIN, Server, main

RUN_TIMEOUT = 120  # seconds for one hearth-bench run (each is a few seconds)
N = 10


def bench_path():
    path = os.environ.get('HEARTH_BENCH')
    if not path:
        raise unittest.SkipTest('HEARTH_BENCH is not set (run through ctest)')
    return path


class BenchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bench = bench_path()
        cls.server = Server(settings={
            'registration.open': 'true',
            'registration.rate_limit': '0',
            'c2s.tls': 'optional',
            'c2s.plain_without_tls': 'true',
        })
        cls.server.shared = True
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def tearDown(self):
        self.server.assert_alive()

    def run_bench(self, *args, prefix='u', register=True, port=None, check=True):
        cmd = [self.bench, '--host', '127.0.0.1', '--port', str(port or self.server.port),
               '--domain', DOMAIN, '--user-prefix', prefix, '--password', 'secret-pw',
               '--json', '--quiet'] + (['--register'] if register else []) + [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        if check:
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        try:
            result = json.loads(r.stdout)
        except ValueError:
            self.fail('no JSON on stdout (rc %d): %s %s' % (r.returncode, r.stdout, r.stderr))
        return r, result

    def assert_sessions(self, res, n=N):
        self.assertEqual((res['sessions_established'], res['sessions_failed'],
                          res['sessions_dropped']), (n, 0, 0), res)
        self.assertEqual(res['login_latency_ms']['count'], n)
        self.assertGreater(res['login_rate'], 0)
        lat = res['login_latency_ms']
        self.assertTrue(0 < lat['p50'] <= lat['p90'] <= lat['p99'] <= lat['max'], lat)

    def assert_traffic(self, res, per_stanza=None):
        self.assertGreater(res['stanzas_sent'], 0, res)
        self.assertEqual(res['messages_delivered'], res['messages_sent'], res)
        self.assertEqual((res['messages_lost'], res['messages_errors'], res['send_refused']),
                         (0, 0, 0), res)
        if per_stanza is not None:
            self.assertEqual(res['messages_sent'], res['stanzas_sent'] * per_stanza, res)
        lat = res['latency_ms']
        self.assertEqual(lat['count'], res['messages_delivered'])
        self.assertTrue(0 <= lat['p50'] <= lat['p90'] <= lat['p99'] <= lat['max'], lat)
        self.assertLess(lat['max'], 5000, lat)

    # -- scenarios ---------------------------------------------------------

    def test_register_then_login_storm(self):
        r, res = self.run_bench('--sessions', N, '--scenario', 'login', prefix='login')
        self.assertEqual(res['registered'], {'created': N, 'existing': 0, 'failed': 0})
        self.assert_sessions(res)
        self.assertIn('login rate', r.stderr)  # the table goes to stderr with --json
        # again: the accounts exist, which is no error
        r, res = self.run_bench('--sessions', N, '--scenario', 'login', prefix='login')
        self.assertEqual(res['registered'], {'created': 0, 'existing': N, 'failed': 0})
        self.assert_sessions(res)
        # and without --register
        r, res = self.run_bench('--sessions', N, '--scenario', 'login', prefix='login',
                                register=False)
        self.assertEqual(res['registered'], {'created': 0, 'existing': 0, 'failed': 0})
        self.assert_sessions(res)

    def test_idle_hold(self):
        r, res = self.run_bench('--sessions', N, '--scenario', 'idle', '--duration', 1,
                                prefix='idle')
        self.assert_sessions(res)
        self.assertEqual(res['messages_sent'], 0)
        self.assertGreater(res['elapsed_s'], 1.0)
        self.assertGreater(res['client']['rss_per_session_kib'], 0)

    def test_chat(self):
        r, res = self.run_bench('--sessions', N, '--scenario', 'chat', '--rate', 50,
                                '--duration', 2, prefix='chat')
        self.assert_sessions(res)
        self.assert_traffic(res, per_stanza=1)
        # paced: about rate x duration, not a burst and not a trickle
        self.assertTrue(50 <= res['stanzas_sent'] <= 110, res['stanzas_sent'])

    def test_presence_with_rosters(self):
        # each user has 4 contacts (2 on each side of a ring): every change reaches 4
        r, res = self.run_bench('--sessions', N, '--scenario', 'presence', '--roster-size', 4,
                                '--rate', 20, '--duration', 1, prefix='pres')
        self.assert_sessions(res)
        self.assertEqual((res['setup_ready'], res['setup_failed']), (N, 0), res['failure_sample'])
        self.assert_traffic(res, per_stanza=4)
        # the rosters persist: a second run finds them complete
        r, res = self.run_bench('--sessions', N, '--scenario', 'presence', '--roster-size', 4,
                                '--rate', 20, '--duration', 1, prefix='pres')
        self.assertEqual((res['setup_ready'], res['setup_failed']), (N, 0), res['failure_sample'])
        self.assert_traffic(res, per_stanza=4)

    def test_muc_rooms(self):
        # two rooms of five: every message reaches the four others
        r, res = self.run_bench('--sessions', N, '--scenario', 'muc', '--room-size', 5,
                                '--rate', 20, '--duration', 1, prefix='muc')
        self.assert_sessions(res)
        self.assertEqual((res['setup_ready'], res['setup_failed']), (N, 0), res['failure_sample'])
        self.assert_traffic(res, per_stanza=4)

    def test_muc_room_past_the_join_burst(self):
        # 250 joining one room at once: hearthd refuses joins past a burst of 200 per room
        # (<resource-constraint/>, then 100/s); hearth-bench sends those joins again
        n = 250
        r, res = self.run_bench('--sessions', n, '--scenario', 'muc', '--room-size', n,
                                '--rate', 2, '--duration', 1, '--setup-timeout', 60, prefix='big')
        self.assert_sessions(res, n)
        self.assertEqual((res['setup_ready'], res['setup_failed']), (n, 0), res['failure_sample'])
        self.assert_traffic(res, per_stanza=n - 1)

    # -- TLS, mechanisms, sources -------------------------------------------

    def test_tls_each_mechanism(self):
        self.run_bench('--sessions', 2, '--scenario', 'login', prefix='tls')
        for mech in ('PLAIN', 'SCRAM-SHA-1', 'SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'):
            with self.subTest(mech=mech):
                r, res = self.run_bench('--sessions', 2, '--scenario', 'chat', '--rate', 20,
                                        '--duration', 0.5, '--tls', '--ca', self.server.cert,
                                        '--mech', mech, prefix='tls', register=False)
                self.assert_sessions(res, 2)
                self.assertEqual((res['tls'], res['mechanism']), (True, mech))
                self.assert_traffic(res)

    def test_source_addresses(self):
        # session i connects from 127.0.0.((i - 1) % 3 + 1): hearthd logs where each
        # registration came from
        r, res = self.run_bench('--sessions', 6, '--scenario', 'login', '--sources', 3,
                                prefix='src')
        self.assert_sessions(res, 6)
        self.assertEqual(res['sources'], 3)
        log = self.server.log_text()
        for i in range(1, 7):
            self.assertRegex(log, r'registered src%d@%s from 127\.0\.0\.%d\b'
                             % (i, re.escape(DOMAIN), (i - 1) % 3 + 1))

    def test_scram_cache_file(self):
        path = os.path.join(self.server.data_dir, 'bench-scram.cache')
        # registration computes each salted password once; the logins after it find them
        r, res = self.run_bench('--sessions', 4, '--scenario', 'login', '--mech', 'SCRAM-SHA-1',
                                '--scram-cache', path, prefix='cache')
        self.assertEqual((res['client']['scram_cache_misses'], res['client']['scram_cache_hits']),
                         (4, 4))
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        with open(path) as f:
            self.assertEqual(len(f.read().splitlines()), 4)
        # a later run pays no PBKDF2 at all
        r, res = self.run_bench('--sessions', 4, '--scenario', 'login', '--mech', 'SCRAM-SHA-1',
                                '--scram-cache', path, prefix='cache', register=False)
        self.assert_sessions(res, 4)
        self.assertEqual((res['client']['scram_cache_misses'], res['client']['scram_cache_hits']),
                         (0, 4))
        # an entry counts for its password only: another one misses (and fails to log in)
        bad = [self.bench, '--host', '127.0.0.1', '--port', str(self.server.port), '--domain',
               DOMAIN, '--user-prefix', 'cache', '--password', 'other-pw', '--sessions', '4',
               '--scenario', 'login', '--mech', 'SCRAM-SHA-1', '--scram-cache', path, '--json',
               '--quiet']
        r = subprocess.run(bad, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        self.assertEqual(r.returncode, 1, r.stderr)
        res = json.loads(r.stdout)
        self.assertEqual(res['client']['scram_cache_hits'], 0)
        self.assertEqual(res['sessions_failed'], 4)
        # a file that is no cache is refused before anything starts
        with open(path, 'w') as f:
            f.write('not a cache\n')
        r = subprocess.run(bad, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        self.assertEqual(r.returncode, 2)
        self.assertIn('not a SCRAM cache line', r.stderr)

    # -- failures ----------------------------------------------------------

    def test_wrong_password_fails_every_session(self):
        self.run_bench('--sessions', 3, '--scenario', 'login', prefix='pw')
        bad = [self.bench, '--host', '127.0.0.1', '--port', str(self.server.port), '--domain',
               DOMAIN, '--user-prefix', 'pw', '--password', 'not-the-password', '--sessions', '3',
               '--scenario', 'idle', '--duration', '1', '--json', '--quiet']
        r = subprocess.run(bad, capture_output=True, text=True, timeout=RUN_TIMEOUT)
        self.assertEqual(r.returncode, 1, r.stderr)
        res = json.loads(r.stdout)
        self.assertEqual((res['sessions_established'], res['sessions_failed']), (0, 3))
        self.assertEqual(res['failures'], {'EAUTH': 3})
        self.assertIn('not-authorized', res['failure_sample'])

    def test_server_not_listening(self):
        # a port nobody listens on (the server's own, once it is stopped, would race)
        r, res = self.run_bench('--sessions', 2, '--scenario', 'login', register=False,
                                port=1, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual((res['sessions_established'], res['sessions_failed']), (0, 2))
        self.assertEqual(res['failures'], {'ECONNECT': 2})

    def test_remote_host_refused(self):
        for host in ('192.0.2.1', '8.8.8.8'):
            r = subprocess.run([self.bench, '--host', host, '--port', '5222', '--domain', DOMAIN,
                                '--sessions', '1', '--scenario', 'idle', '--duration', '1'],
                               capture_output=True, text=True, timeout=RUN_TIMEOUT)
            self.assertEqual(r.returncode, 2)
            self.assertIn('not a loopback address', r.stderr)
            self.assertIn('--allow-remote', r.stderr)
            self.assertEqual(r.stdout, '')

    def test_bad_arguments(self):
        base = ['--host', '127.0.0.1', '--domain', DOMAIN, '--sessions', '1', '--scenario',
                'login']
        cases = [
            ([a for a in base if a not in ('--domain', DOMAIN)], '--domain is required'),
            (base[:4] + ['--scenario', 'login'], '--sessions is required'),
            (base + ['--sessions', 'many'], "--sessions: not a number: 'many'"),
            (base + ['--sessions', '0'], '--sessions: 0 is out of range'),
            (base + ['--scenario', 'storm'], "'storm' is none of"),
            (base + ['--mech', 'DIGEST-MD5'], "--mech: 'DIGEST-MD5'"),
            (base + ['--port', '70000'], '--port: 70000 is out of range'),
            (base + ['--rate'], '--rate needs a value'),
            (base + ['--frobnicate'], "unknown option '--frobnicate'"),
            (base + ['extra'], "unexpected argument 'extra'"),
            (base + ['--no-verify'], '--ca and --no-verify need --tls'),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                r = subprocess.run([self.bench] + args, capture_output=True, text=True,
                                   timeout=RUN_TIMEOUT)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(message, r.stderr)
                self.assertEqual(r.stdout, '')
        r = subprocess.run([self.bench, '--help'], capture_output=True, text=True,
                           timeout=RUN_TIMEOUT)
        self.assertEqual(r.returncode, 0)
        self.assertIn('--scenario', r.stdout)


class BenchProsodyTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.bench = bench_path()
        cls.server = Prosody({})
        with open(cls.server.config, 'a') as f:
            f.write('Component "conference.%s" "muc"\n' % DOMAIN)
        try:
            cls.server.start()
        except BaseException:
            cls.server.close(failed=True)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    run_bench = BenchTest.run_bench
    assert_sessions = BenchTest.assert_sessions
    assert_traffic = BenchTest.assert_traffic

    def tls_run(self, *args, **kw):
        return self.run_bench('--tls', '--ca', self.server.cert, *args, **kw)

    def test_scenarios(self):
        r, res = self.tls_run('--sessions', 6, '--scenario', 'login', prefix='p')
        self.assertEqual(res['registered']['created'] + res['registered']['existing'], 6)
        self.assert_sessions(res, 6)
        r, res = self.tls_run('--sessions', 6, '--scenario', 'chat', '--rate', 20,
                              '--duration', 1, prefix='p', register=False)
        self.assert_sessions(res, 6)
        self.assert_traffic(res, per_stanza=1)
        r, res = self.tls_run('--sessions', 6, '--scenario', 'presence', '--roster-size', 2,
                              '--rate', 10, '--duration', 1, prefix='p', register=False)
        self.assertEqual((res['setup_ready'], res['setup_failed']), (6, 0))
        self.assert_traffic(res, per_stanza=2)
        r, res = self.tls_run('--sessions', 6, '--scenario', 'muc', '--room-size', 3,
                              '--rate', 10, '--duration', 1, prefix='p', register=False)
        self.assertEqual((res['setup_ready'], res['setup_failed']), (6, 0))
        self.assert_traffic(res, per_stanza=2)

    def test_wrong_password(self):
        self.tls_run('--sessions', 2, '--scenario', 'login', prefix='q')
        r, res = self.tls_run('--sessions', 2, '--scenario', 'login', '--password', 'wrong',
                              prefix='q', register=False, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(res['failures'], {'EAUTH': 2})


if __name__ == '__main__':
    main()
