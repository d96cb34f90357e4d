"""The command-line contract of hearthd that scripts and tests rely on
(ARCHITECTURE.md, Configuration): options, --set validation, the ports
file, the data-directory lock and the generated certificate."""

import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import unittest
import warnings

from hearth import DOMAIN, Client, Server, main


def hearthd():
    path = os.environ.get('HEARTHD')
    if not path:
        raise unittest.SkipTest('HEARTHD is not set')
    return path


class CliTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix='hearth-cli-')
        self.addCleanup(shutil.rmtree, self.dir, True)

    def run_hearthd(self, *args):
        return subprocess.run([hearthd(), '--data-dir', self.dir] + list(args), capture_output=True,
                              text=True, timeout=20)

    def test_version(self):
        r = self.run_hearthd('--version')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout + r.stderr, r'hearthd \d+\.\d+')

    def test_help(self):
        r = self.run_hearthd('--help')
        self.assertEqual(r.returncode, 0, r.stderr)
        for opt in ('--config', '--data-dir', '--set', '--check-config', '--version'):
            self.assertIn(opt, r.stdout + r.stderr)

    def test_check_config(self):
        r = self.run_hearthd('--set', 'c2s.port=0', '--check-config')
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_unknown_key_named(self):
        r = self.run_hearthd('--set', 'c2s.no_such_key=1', '--check-config')
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('c2s.no_such_key', r.stderr)

    def test_unknown_key_refuses_to_start(self):
        r = self.run_hearthd('--set', 'c2s.port=0', '--set', 'bogus=1')
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('bogus', r.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.dir, 'hearthd.ports')))

    def test_out_of_bounds_value(self):
        for kv in ('c2s.port=99999', 'c2s.tls=sometimes', 'server.workers=-3', 'c2s.max_resources=0',
                   'c2s.plain_without_tls=maybe'):
            with self.subTest(kv=kv):
                r = self.run_hearthd('--set', kv, '--check-config')
                self.assertNotEqual(r.returncode, 0, kv)
                self.assertIn(kv.split('=')[0], r.stderr)

    def test_bad_option(self):
        r = self.run_hearthd('--no-such-option')
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(r.stderr.strip())


class RunningServerTest(unittest.TestCase):
    def test_ports_file(self):
        with Server() as s:
            with open(s.ports_file) as f:
                lines = f.read().splitlines()
            names = {}
            for line in lines:
                m = re.fullmatch(r'(\S+) (\d+)', line)
                self.assertIsNotNone(m, 'bad ports line %r' % line)
                names[m.group(1)] = int(m.group(2))
            self.assertEqual(names['c2s'], s.port)
            self.assertEqual(names['c2s_direct_tls'], s.tls_port)
            self.assertNotEqual(s.port, s.tls_port)
            for port in (s.port, s.tls_port):
                socket.create_connection(('127.0.0.1', port), timeout=2).close()

    def test_ready_logged_at_any_level(self):
        # Scripts wait for "ready" (and the harness does): it must not depend on log.level.
        with Server(log__level='error') as s:
            self.assertRegex(s.log_text(), r'\bready\b')
            self.assertNotIn(' info [', s.log_text())

    def test_listener_off(self):
        with Server(c2s__direct_tls_port=-1, listeners=('c2s',)) as s:
            self.assertNotIn('c2s_direct_tls', s.ports)
            c = Client(s)
            self.addCleanup(c.close)
            c.connect()
            c.open_stream()

    def test_second_instance_refused(self):
        with Server() as s:
            r = subprocess.run(s.command_line(), capture_output=True, text=True, timeout=20)
            self.assertNotEqual(r.returncode, 0)
            self.assertRegex(r.stderr, re.compile(r'running|in use|lock', re.I))
            s.assert_alive()

    def test_generated_certificate(self):
        with Server() as s:
            self.assertTrue(os.path.exists(s.cert))
            ctx = ssl.create_default_context(cafile=s.cert)
            with socket.create_connection(('127.0.0.1', s.tls_port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname=DOMAIN) as tls:
                    cert = tls.getpeercert()
            sans = [v for k, v in cert.get('subjectAltName', ()) if k == 'DNS']
            self.assertIn('localhost', sans)
            self.assertIn('*.localhost', sans)
            self.assertIn('conference.localhost', sans)
            # the certificate survives a restart (generated once)
            with open(s.cert, 'rb') as f:
                before = f.read()
            s.restart()
            with open(s.cert, 'rb') as f:
                self.assertEqual(f.read(), before)

    def test_ecdsa_certificate(self):
        with Server() as s:
            ctx = ssl.create_default_context(cafile=s.cert)
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            with socket.create_connection(('127.0.0.1', s.tls_port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname=DOMAIN) as tls:
                    name = tls.cipher()[0]
            self.assertIn('ECDSA', name)

    def test_old_tls_refused(self):
        with Server() as s:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter('ignore', DeprecationWarning)
                    ctx.minimum_version = ssl.TLSVersion.TLSv1
                    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
                ctx.set_ciphers('ALL:@SECLEVEL=0')
            except (ValueError, ssl.SSLError) as e:
                self.skipTest('this OpenSSL cannot offer TLS 1.1: %s' % e)
            with socket.create_connection(('127.0.0.1', s.tls_port), timeout=5) as raw:
                with self.assertRaises((ssl.SSLError, ConnectionResetError)) as cm:
                    ctx.wrap_socket(raw, server_hostname=DOMAIN)
            # the refusal must come from the server (an alert or a reset), not
            # from our own OpenSSL declining to offer TLS 1.1
            err = str(cm.exception)
            self.assertTrue(isinstance(cm.exception, ConnectionResetError) or 'ALERT' in err
                            or 'EOF' in err, err)
            s.assert_alive()

    def test_sigterm_exit_code(self):
        s = Server()
        s.start()
        try:
            s.stop()  # asserts exit code 0
        finally:
            s.close()

    def test_restart_same_data_dir(self):
        s = Server(users={'alice': 'pw'})
        try:
            s.start()
            first = s.port
            s.restart()
            self.assertTrue(s.port)
            c = Client(s)
            self.addCleanup(c.close)
            self.assertEqual(c.login('alice', 'pw', resource='r'), 'alice@localhost/r')
            self.assertIsNotNone(first)
        finally:
            s.close()


if __name__ == '__main__':
    main()
