"""Drives the C client library from Python tests: Probe runs tests/integration/client_probe.c
(libhearth.so's public API) with commands on its stdin and one event per line on its stdout;
Proxy is a TCP relay on loopback that a test can cut (RST both ways, as a dead network does) or
point at a restarted server. Standard library only."""

import os
import re
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import unittest

from hearth import free_port

TIMEOUT = 10.0


def probe_path():
    path = os.environ.get('HEARTH_CLIENT_PROBE')
    if not path:
        raise unittest.SkipTest('HEARTH_CLIENT_PROBE is not set (run through ctest)')
    return path


class Probe:
    """One client_probe process: probe.cmd('connect'); probe.expect(r'^online ')."""

    def __init__(self, *args, name='probe'):
        self.name = name
        self.args = [probe_path()] + [str(a) for a in args]
        env = dict(os.environ)
        if os.environ.get('HEARTH_TEST_LOG'):
            env['HEARTH_PROBE_LOG'] = '1'
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=None if os.environ.get('HEARTH_TEST_LOG') else
                                     subprocess.DEVNULL, env=env)
        self.buf = b''
        self.lines = []     # every line seen, for failure messages
        self.pending = []   # lines not yet taken by expect
        self.expect(r'^ready$')

    def cmd(self, line):
        self.proc.stdin.write(line.encode() + b'\n')
        self.proc.stdin.flush()

    def _read(self, deadline):
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if not r:
                return False
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                raise AssertionError('%s exited (%r); lines: %s'
                                     % (self.name, self.proc.poll(), self.lines[-20:]))
            self.buf += chunk
        line, self.buf = self.buf.split(b'\n', 1)
        line = line.decode('utf-8', 'replace')
        self.lines.append(line)
        self.pending.append(line)
        return True

    def expect(self, pattern, timeout=TIMEOUT, skip=None):
        """The next line matching pattern (lines matching skip, e.g. r'^acked ', are passed
        over; any other line in between is a failure). Returns the match."""
        rx = re.compile(pattern)
        skip_rx = re.compile(skip) if skip else None
        deadline = time.monotonic() + timeout
        while True:
            while self.pending:
                line = self.pending.pop(0)
                m = rx.search(line)
                if m:
                    return m
                if skip_rx and skip_rx.search(line):
                    continue
                raise AssertionError('%s: expected /%s/, got: %s' % (self.name, pattern, line))
            if not self._read(deadline):
                raise AssertionError('%s: timed out waiting for /%s/; last lines: %s'
                                     % (self.name, pattern, self.lines[-10:]))

    def wait_for(self, pattern, timeout=TIMEOUT):
        """The first line matching pattern, whatever comes before it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            while self.pending:
                m = rx.search(self.pending.pop(0))
                if m:
                    return m
            if not self._read(deadline):
                raise AssertionError('%s: timed out waiting for /%s/; last lines: %s'
                                     % (self.name, pattern, self.lines[-10:]))

    def info(self):
        self.cmd('info')
        m = self.wait_for(r'^info (.*)$')
        return dict(kv.split('=', 1) for kv in m.group(1).split())

    def close(self):
        if self.proc.poll() is None:
            try:
                self.cmd('quit')
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class Proxy:
    """A TCP relay from an ephemeral loopback port to target_port (changeable), run by one
    thread over select; cut() makes it end every relayed connection with RST both ways."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.peer = {}  # socket -> the socket it relays to
        self.accepted = 0
        self.closed = False
        self.cuts = 0
        self.cuts_done = 0
        self.wake_r, self.wake_w = os.pipe()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @staticmethod
    def _reset(s):
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            s.close()
        except OSError:
            pass

    def _drop(self, s):
        other = self.peer.pop(s, None)
        if other is not None:
            self.peer.pop(other, None)
            other.close()
        s.close()

    def _run(self):
        while not self.closed:
            socks = [self.listener] + list(self.peer)
            r, _, _ = select.select(socks + [self.wake_r], [], [], 1.0)
            if self.cuts_done < self.cuts:
                for s in list(self.peer):
                    self._reset(s)
                self.peer.clear()
                self.cuts_done = self.cuts
                continue
            for s in r:
                if s == self.wake_r:
                    os.read(self.wake_r, 64)
                elif s is self.listener:
                    try:
                        a, _ = self.listener.accept()
                    except OSError:
                        continue
                    try:
                        b = socket.create_connection(('127.0.0.1', self.target_port), timeout=5)
                    except OSError:
                        self._reset(a)  # as a refused connection looks through the relay
                        continue
                    self.peer[a] = b
                    self.peer[b] = a
                    self.accepted += 1
                elif s in self.peer:
                    try:
                        data = s.recv(65536)
                        if data:
                            self.peer[s].sendall(data)
                            continue
                    except OSError:
                        pass
                    self._drop(s)
        for s in list(self.peer):
            s.close()
        self.listener.close()

    def cut(self, timeout=5.0):
        """Every relayed connection ends with RST on both sides; returns once done."""
        self.cuts += 1
        os.write(self.wake_w, b'x')
        deadline = time.monotonic() + timeout
        while self.cuts_done < self.cuts:
            if time.monotonic() > deadline:
                raise AssertionError('the proxy did not cut its connections')
            time.sleep(0.01)

    def close(self):
        self.closed = True
        os.write(self.wake_w, b'x')
        self.thread.join(5)
        os.close(self.wake_r)
        os.close(self.wake_w)



class Prosody:
    """Debian's Prosody on loopback from a configuration of its own in a temporary directory
    (as root it needs run_as_root), with a certificate for localhost, STARTTLS required and
    direct TLS. By default registration is open, with stream management and ping; modules and
    options (Lua lines) say otherwise."""

    BINARY = '/usr/bin/prosody'
    CTL = '/usr/bin/prosodyctl'
    MODULES = ('roster', 'saslauth', 'tls', 'disco', 'ping', 'register', 'smacks')
    OPTIONS = 'allow_registration = true\nmin_seconds_between_registrations = 0\n'

    def __init__(self, users, muc=None, modules=MODULES, options=OPTIONS):
        if not os.access(self.BINARY, os.X_OK):
            raise unittest.SkipTest('Prosody is not installed (apt-get install prosody)')
        import tempfile
        self.dir = tempfile.mkdtemp(prefix='hearth-prosody-')
        self.data = os.path.join(self.dir, 'data')
        self.cert = os.path.join(self.dir, 'cert.pem')
        self.key = os.path.join(self.dir, 'key.pem')
        subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                        'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
                        '-addext', 'subjectAltName=DNS:localhost', '-days', '2',
                        '-keyout', self.key, '-out', self.cert], check=True,
                       capture_output=True)
        self.port = free_port()
        self.tls_port = free_port()
        self.config = os.path.join(self.dir, 'prosody.cfg.lua')
        os.makedirs(self.data)
        disabled = ('s2s', 's2s_auth_certs') + (() if 'offline' in modules else ('offline',))
        lua_list = lambda names: ', '.join('"%s"' % n for n in names)
        with open(self.config, 'w') as f:
            f.write('''-- written by tests/integration/clientlib.py
run_as_root = true
daemonize = false
pidfile = "{d}/prosody.pid"
data_path = "{d}/data"
interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {port} }}
c2s_direct_tls_ports = {{ {tls_port} }}
s2s_ports = {{ }}
http_ports = {{ }}
https_ports = {{ }}
log = {{ debug = "{d}/prosody.log" }}
modules_enabled = {{ {modules} }}
modules_disabled = {{ {disabled} }}
authentication = "internal_hashed"
c2s_require_encryption = true
c2s_direct_tls_ssl = {{ certificate = "{cert}", key = "{key}" }}
'''.format(d=self.dir, port=self.port, tls_port=self.tls_port, cert=self.cert, key=self.key,
           modules=lua_list(modules), disabled=lua_list(disabled)))
            f.write(options)
            f.write('VirtualHost "localhost"\n  ssl = {{ certificate = "{cert}", key = "{key}" }}\n'
                    .format(cert=self.cert, key=self.key))
            if muc:
                # Multi-user chat on a component of that name (rooms locked until configured,
                # as XEP-0045 asks; invitations on).
                f.write('Component "%s" "muc"\n  muc_room_locking = true\n' % muc)
        for user, pw in users.items():
            self.register(user, pw)
        self.proc = None

    def register(self, user, pw):
        subprocess.run([self.CTL, '--config', self.config, 'register', user, 'localhost', pw],
                       check=True, capture_output=True, timeout=30)

    def start(self):
        out = open(os.path.join(self.dir, 'prosody.out'), 'wb')
        self.proc = subprocess.Popen([self.BINARY, '-F', '--config', self.config],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise AssertionError('prosody exited (%d): %s' % (self.proc.returncode,
                                                                  self.log()[-3000:]))
            try:
                socket.create_connection(('127.0.0.1', self.tls_port), timeout=1).close()
                socket.create_connection(('127.0.0.1', self.port), timeout=1).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError('prosody is not listening: %s' % self.log()[-3000:])
                time.sleep(0.05)

    def log(self):
        text = ''
        for name in ('prosody.out', 'prosody.log'):
            try:
                with open(os.path.join(self.dir, name), errors='replace') as f:
                    text += f.read()
            except FileNotFoundError:
                pass
        return text

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self, failed=False):
        self.stop()
        if failed:
            sys.stderr.write('----- prosody log -----\n%s\n' % self.log()[-20000:])
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)
